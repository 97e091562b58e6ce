//! Turning a run into words and numbers: the text report, and the `--json` object.
//!
//! Both come from one [`Report`], so they cannot disagree. The JSON object is flat (no
//! nesting) with unique keys, so a shell script can pick a value out with `sed` as easily as
//! `jq` can; `--help` lists the keys.

use std::fmt::Write as _;
use std::time::Duration;

use crate::cli::Options;
use crate::client::Failure;
use crate::histogram::Histogram;
use crate::proc_status::Peaks;
use crate::response::{json_str, json_u64};
use crate::run::Outcome;

/// Rows in the latency chart, and the width of its longest bar.
const CHART_ROWS: usize = 12;
const CHART_WIDTH: usize = 40;

/// What the server said about itself on `GET /stats` after the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub stage: Option<String>,
    pub accepted: Option<u64>,
    pub served: Option<u64>,
    pub errors: Option<u64>,
    pub timeouts: Option<u64>,
    pub peak_in_flight: Option<u64>,
    pub peak_connections_open: Option<u64>,
}

impl ServerStats {
    pub fn parse(json: &str) -> ServerStats {
        ServerStats {
            stage: json_str(json, "stage").map(str::to_string),
            accepted: json_u64(json, "accepted"),
            served: json_u64(json, "served"),
            errors: json_u64(json, "errors"),
            timeouts: json_u64(json, "timeouts"),
            peak_in_flight: json_u64(json, "peak_in_flight"),
            peak_connections_open: json_u64(json, "peak_connections_open"),
        }
    }
}

/// Everything known after a run.
pub struct Report<'a> {
    pub options: &'a Options,
    pub outcome: &'a Outcome,
    /// `None` when no `--pid` was given or `/proc` could not be read.
    pub peaks: Option<Peaks>,
    /// `None` when `/stats` was not asked for or did not answer.
    pub server: Option<ServerStats>,
}

impl Report<'_> {
    /// Ok responses per second of the run.
    pub fn rps(&self) -> f64 {
        let seconds = self.outcome.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.outcome.tally.ok as f64 / seconds
        } else {
            0.0
        }
    }

    /// The report a person reads.
    pub fn text(&self) -> String {
        let (o, t) = (self.options, &self.outcome.tally);
        let lat = &t.latency;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "loadgen: GET {}  scenario {}, {} clients{}, {}",
            o.url,
            o.scenario.name(),
            o.healthy_clients(),
            match o.idle_clients() {
                0 => String::new(),
                k if o.idle_reconnect => format!(" + {k} idle (reconnecting)"),
                k => format!(" + {k} idle"),
            },
            limits(o),
        );
        let _ = writeln!(
            out,
            "  requests    {} sent: {} ok, {} failed, {} unfinished when time was up",
            t.sent,
            t.ok,
            t.failed_total(),
            t.unfinished
        );
        let mut kinds = String::new();
        for kind in Failure::ALL {
            let _ = write!(
                kinds,
                "{} {}, ",
                kind.name().replace('_', " "),
                t.failed(kind)
            );
        }
        let _ = writeln!(out, "  failed      {}", kinds.trim_end_matches(", "));
        if let Some(example) = &t.first_other {
            let _ = writeln!(out, "              first 'other': {example}");
        }
        if self.outcome.spawn_errors > 0 {
            let _ = writeln!(
                out,
                "  warning     {} client threads could not be started",
                self.outcome.spawn_errors
            );
        }
        let _ = writeln!(
            out,
            "  throughput  {:.1} req/s (ok responses over {:.2} s)",
            self.rps(),
            self.outcome.elapsed.as_secs_f64()
        );
        let _ = writeln!(out, "  latency     {}", latency_line(lat));
        if o.idle_clients() > 0 {
            let _ = writeln!(
                out,
                "  idle        {} connections opened, {} closed by the server",
                self.outcome.idle.connects, self.outcome.idle.cut
            );
        }
        let _ = writeln!(out, "  process     {}", self.process_line());
        let _ = writeln!(out, "  /stats      {}", self.stats_line());
        if lat.count() > 0 {
            out.push('\n');
            out.push_str(&chart(lat));
        }
        out
    }

    fn process_line(&self) -> String {
        match (self.options.pid, self.peaks) {
            (None, _) => "n/a (give --pid PID for peak threads and memory)".into(),
            (Some(pid), None) => format!("pid {pid}: n/a (no /proc/{pid}/status to read)"),
            (Some(pid), Some(peaks)) => format!(
                "pid {pid}: peak {} threads, peak RSS {}",
                or_na(peaks.threads),
                peaks.rss_kb.map_or("n/a".into(), mib)
            ),
        }
    }

    fn stats_line(&self) -> String {
        match &self.server {
            None if !self.options.server_stats => "not asked (--no-server-stats)".into(),
            None => format!(
                "n/a (no answer to GET /stats within {} s)",
                crate::STATS_TIMEOUT.as_secs()
            ),
            Some(s) => {
                let mut line = format!(
                    "{}: accepted {}, served {}, peak in flight {}, peak open {}, errors {}",
                    s.stage.as_deref().unwrap_or("server"),
                    or_na(s.accepted),
                    or_na(s.served),
                    or_na(s.peak_in_flight),
                    or_na(s.peak_connections_open),
                    or_na(s.errors),
                );
                if let Some(timeouts) = s.timeouts {
                    let _ = write!(line, ", timeouts {timeouts}");
                }
                line
            }
        }
    }

    /// The one-line JSON object; `--help` documents the keys.
    pub fn json(&self) -> String {
        let (o, t) = (self.options, &self.outcome.tally);
        let lat = &t.latency;
        let server = self.server.clone().unwrap_or_default();
        let peaks = self.peaks.unwrap_or_default();
        let mut fields: Vec<(&str, String)> = vec![
            ("url", string(&o.url.to_string())),
            ("scenario", string(o.scenario.name())),
            ("clients", o.healthy_clients().to_string()),
            ("idle", o.idle_clients().to_string()),
            ("idle_reconnect", o.idle_reconnect.to_string()),
            ("requests_limit", number(o.requests)),
            (
                "duration_limit_s",
                o.duration
                    .map_or("null".into(), |d| decimal(d.as_secs_f64())),
            ),
            (
                "connect_timeout_ms",
                o.connect_timeout.as_millis().to_string(),
            ),
            ("timeout_ms", o.timeout.as_millis().to_string()),
            ("elapsed_s", decimal(self.outcome.elapsed.as_secs_f64())),
            ("sent", t.sent.to_string()),
            ("ok", t.ok.to_string()),
            ("failed", t.failed_total().to_string()),
            ("unfinished", t.unfinished.to_string()),
        ];
        for kind in Failure::ALL {
            fields.push((kind.name(), t.failed(kind).to_string()));
        }
        fields.extend([
            ("rps", decimal(self.rps())),
            ("min_ms", millis(lat.min())),
            ("p50_ms", millis(lat.percentile(0.50))),
            ("p90_ms", millis(lat.percentile(0.90))),
            ("p99_ms", millis(lat.percentile(0.99))),
            ("max_ms", millis(lat.max())),
            ("mean_ms", millis(lat.mean())),
            ("idle_connects", self.outcome.idle.connects.to_string()),
            ("idle_cut", self.outcome.idle.cut.to_string()),
            ("pid", number(o.pid.map(u64::from))),
            ("peak_threads", number(peaks.threads)),
            ("peak_rss_kb", number(peaks.rss_kb)),
            (
                "server_stage",
                server.stage.as_deref().map_or("null".into(), string),
            ),
            ("server_accepted", number(server.accepted)),
            ("server_served", number(server.served)),
            ("server_errors", number(server.errors)),
            ("server_timeouts", number(server.timeouts)),
            ("server_peak_in_flight", number(server.peak_in_flight)),
            (
                "server_peak_connections_open",
                number(server.peak_connections_open),
            ),
        ]);
        let body: Vec<String> = fields
            .iter()
            .map(|(key, value)| format!("\"{key}\":{value}"))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

/// "for 10.0 s", "100 requests", or both.
fn limits(o: &Options) -> String {
    match (o.requests, o.duration) {
        (Some(n), Some(d)) => format!("{n} requests or {:.1} s", d.as_secs_f64()),
        (Some(n), None) => format!("{n} requests"),
        (None, Some(d)) => format!("{:.1} s", d.as_secs_f64()),
        (None, None) => "no limit".into(),
    }
}

fn latency_line(lat: &Histogram) -> String {
    if lat.count() == 0 {
        return "n/a (no ok responses)".into();
    }
    format!(
        "min {}  p50 {}  p90 {}  p99 {}  max {}  (mean {})",
        ms(lat.min()),
        ms(lat.percentile(0.50)),
        ms(lat.percentile(0.90)),
        ms(lat.percentile(0.99)),
        ms(lat.max()),
        ms(lat.mean()),
    )
}

/// The latency chart: one row per range, a bar as long as its count.
fn chart(lat: &Histogram) -> String {
    let rows = lat.rows(CHART_ROWS);
    let tallest = rows.iter().map(|r| r.count).max().unwrap_or(1).max(1);
    let mut out = String::from("  latency of ok responses\n");
    for row in rows {
        // Round up, so a row with any responses at all shows at least one mark.
        let bar = (row.count * CHART_WIDTH as u64).div_ceil(tallest) as usize;
        let _ = writeln!(
            out,
            "  {:>10} to {:>10}  {:<width$}  {}",
            ms(Some(row.from)),
            ms(Some(row.to)),
            "#".repeat(bar),
            row.count,
            width = CHART_WIDTH
        );
    }
    out
}

/// A latency for people: three significant digits or so, always in milliseconds so that
/// rows and stages compare at a glance.
pub fn ms(d: Option<Duration>) -> String {
    let Some(d) = d else {
        return "n/a".into();
    };
    let ms = d.as_secs_f64() * 1000.0;
    match ms {
        ms if ms < 10.0 => format!("{ms:.2} ms"),
        ms if ms < 100.0 => format!("{ms:.1} ms"),
        ms => format!("{ms:.0} ms"),
    }
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

fn or_na(value: Option<u64>) -> String {
    value.map_or("n/a".into(), |v| v.to_string())
}

fn number(value: Option<u64>) -> String {
    value.map_or("null".into(), |v| v.to_string())
}

fn decimal(value: f64) -> String {
    format!("{value:.3}")
}

fn millis(d: Option<Duration>) -> String {
    d.map_or("null".into(), |d| decimal(d.as_secs_f64() * 1000.0))
}

/// A JSON string, with the characters JSON requires escaped.
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli;
    use crate::run::{IdleTally, Tally};

    fn options(list: &[&str]) -> Options {
        cli::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn outcome() -> Outcome {
        let mut tally = Tally {
            sent: 12,
            ok: 10,
            unfinished: 1,
            ..Tally::default()
        };
        tally.failed[Failure::Timeout as usize] = 1;
        for n in 1..=10 {
            tally.latency.record(Duration::from_millis(n * 10));
        }
        Outcome {
            tally,
            idle: IdleTally::default(),
            elapsed: Duration::from_secs(2),
            spawn_errors: 0,
        }
    }

    #[test]
    fn latencies_read_like_a_person_would_write_them() {
        assert_eq!(ms(Some(Duration::from_micros(1234))), "1.23 ms");
        assert_eq!(ms(Some(Duration::from_micros(45_670))), "45.7 ms");
        assert_eq!(ms(Some(Duration::from_millis(1002))), "1002 ms");
        assert_eq!(ms(None), "n/a");
    }

    #[test]
    fn json_is_one_flat_object_with_the_documented_keys() {
        let options = options(&["--url", "http://127.0.0.1:9/a\"b", "--pid", "42"]);
        let outcome = outcome();
        let stats = "{\"stage\":\"02_thread_per_conn\",\"accepted\":13,\"served\":11,\
                     \"peak_in_flight\":9,\"errors\":0}";
        let report = Report {
            options: &options,
            outcome: &outcome,
            peaks: Some(Peaks {
                threads: Some(7),
                rss_kb: None,
            }),
            server: Some(ServerStats::parse(stats)),
        };
        let json = report.json();
        assert!(json.starts_with("{\"url\":\"http://127.0.0.1:9/a\\\"b\",\"scenario\":\"normal\","));
        for expected in [
            "\"sent\":12,\"ok\":10,\"failed\":1,\"unfinished\":1,",
            "\"refused\":0,\"reset\":0,\"timeout\":1,\"bad_status\":0,\"other\":0,",
            "\"rps\":5.000,",
            "\"min_ms\":10.000,",
            "\"max_ms\":100.000,",
            "\"requests_limit\":null,\"duration_limit_s\":10.000,",
            "\"pid\":42,\"peak_threads\":7,\"peak_rss_kb\":null,",
            "\"server_stage\":\"02_thread_per_conn\",\"server_accepted\":13,",
            "\"server_timeouts\":null,\"server_peak_in_flight\":9,",
        ] {
            assert!(json.contains(expected), "{expected} not in {json}");
        }
        assert!(json.ends_with('}') && !json.contains('\n'));
        // Every key the help promises is there.
        let help = cli::usage();
        let keys_section = help.split("JSON keys").nth(1).unwrap();
        for word in keys_section.split_whitespace() {
            if word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                && word.contains('_')
            {
                assert!(json.contains(&format!("\"{word}\":")), "{word} missing");
            }
        }
    }

    #[test]
    fn the_text_report_has_counts_percentiles_and_a_chart() {
        let options = options(&[]);
        let outcome = outcome();
        let report = Report {
            options: &options,
            outcome: &outcome,
            peaks: None,
            server: None,
        };
        let text = report.text();
        assert!(
            text.contains("12 sent: 10 ok, 1 failed, 1 unfinished"),
            "{text}"
        );
        assert!(text.contains("timeout 1, bad status 0"), "{text}");
        assert!(text.contains("throughput  5.0 req/s"), "{text}");
        assert!(text.contains("min 10.0 ms"), "{text}");
        assert!(text.contains("give --pid PID"), "{text}");
        assert!(text.contains("latency of ok responses"), "{text}");
        let bars: Vec<&str> = text.lines().filter(|l| l.contains(" ms to ")).collect();
        assert!(!bars.is_empty() && bars.len() <= CHART_ROWS, "{text}");
        // The tallest row gets the whole width; an empty row gets no mark.
        assert!(text.contains(&"#".repeat(CHART_WIDTH)), "{text}");
        for bar in bars {
            assert_eq!(bar.contains('#'), !bar.ends_with(" 0"), "{bar}");
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
