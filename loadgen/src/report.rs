//! Turning a run into words and numbers: the text report, and the `--json` object.
//!
//! Both come from one [`Report`], so they cannot disagree. The JSON object is flat (no
//! nesting) with unique keys, so a shell script can pick a value out with `sed` as easily as
//! `jq` can; `--help` lists the keys.
//!
//! Two lines are there to make an idea visible. `loop` says whether latency was counted
//! from the send (closed loop) or from when the request was due (open loop), and how many
//! due requests never got a client. `connections` puts the handshakes next to the
//! requests: one each without keep-alive, or against a server that closes; a handful with
//! keep-alive against one that keeps them.

use std::fmt::Write as _;
use std::time::Duration;

use crate::cli::Options;
use crate::client::Failure;
use crate::histogram::Histogram;
use crate::live::grouped;
use crate::proc_status::Peaks;
use crate::response::{json_str, json_u64};
use crate::run::{Outcome, Tally};

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
    /// A server with a kitchen (stage 08): its peaks, and the requests it turned away (503).
    pub peak_kitchen_queued: Option<u64>,
    pub peak_kitchen_cooking: Option<u64>,
    pub kitchen_full: Option<u64>,
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
            peak_kitchen_queued: json_u64(json, "peak_kitchen_queued"),
            peak_kitchen_cooking: json_u64(json, "peak_kitchen_cooking"),
            kitchen_full: json_u64(json, "kitchen_full"),
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
    /// Rows written to `--trace`, when it was given and written.
    pub trace_rows: Option<u64>,
    /// Samples written to `--series`.
    pub series_rows: Option<u64>,
    /// `GET /stats` requests sent during the run (live view, `--series`).
    pub stats_polls: u64,
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
        let mut around = String::new();
        if o.idle_clients() > 0 {
            let _ = write!(around, " + {} idle", o.idle_clients());
        }
        if o.trickle_clients() > 0 {
            let _ = write!(around, " + {} trickling", o.trickle_clients());
        }
        if o.reconnect() && !around.is_empty() {
            around.push_str(" (reconnecting)");
        }
        if o.held_connections() > 0 {
            let _ = write!(around, " + {} held", grouped(o.held_connections() as u64));
        }
        let _ = writeln!(
            out,
            "loadgen: GET {}  scenario {}, {} clients{around}, {}{}, {}",
            o.url,
            o.scenario.name(),
            o.healthy_clients(),
            match o.rate {
                None => "closed loop".to_string(),
                Some(rate) => format!("open loop at {} req/s", per_second(rate)),
            },
            if o.keep_alive { ", keep-alive" } else { "" },
            limits(o),
        );
        let _ = writeln!(
            out,
            "  requests    {} sent: {} ok, {} failed, {} unfinished when time was up",
            t.sent,
            t.ok,
            t.failed.total(),
            t.unfinished
        );
        let mut kinds = String::new();
        for kind in Failure::ALL {
            let _ = write!(
                kinds,
                "{} {}, ",
                kind.name().replace('_', " "),
                t.failed.get(kind)
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
        out.push_str(&self.probe_lines());
        out.push_str(&self.loop_lines());
        let requests_per_connection = if t.connections > 0 {
            format!("{:.1}", t.sent as f64 / t.connections as f64)
        } else {
            "n/a".into()
        };
        let _ = writeln!(
            out,
            "  connections {} opened for {} requests ({requests_per_connection} requests per \
             connection), {} retried after an idle close",
            t.connections, t.sent, t.retries
        );
        if o.idle_clients() > 0 {
            let _ = writeln!(
                out,
                "  idle        {} connections opened, {} closed by the server",
                self.outcome.idle.connects, self.outcome.idle.cut
            );
        }
        if o.trickle_clients() > 0 {
            let trickle = &self.outcome.trickle;
            let _ = writeln!(
                out,
                "  trickle     a byte every {} ms: {} connections opened, {} cut by the \
                 server, {} requests answered",
                o.trickle_every.as_millis(),
                trickle.connects,
                trickle.cut,
                trickle.done
            );
        }
        if o.held_connections() > 0 {
            out.push_str(&self.held_line());
        }
        let _ = writeln!(out, "  process     {}", self.process_line());
        let _ = writeln!(out, "  /stats      {}", self.stats_line());
        if let (Some(rows), Some(path)) = (self.trace_rows, &o.trace) {
            let cut = match self.outcome.trace.dropped {
                0 => String::new(),
                n => format!(
                    "; cut at {} rows, {} more requests not recorded",
                    grouped(crate::trace::CAP),
                    grouped(n)
                ),
            };
            let _ = writeln!(out, "  trace       {rows} rows in {}{cut}", path.display());
        }
        if let (Some(rows), Some(path)) = (self.series_rows, &o.series) {
            let _ = writeln!(
                out,
                "  series      {rows} samples, one every 100 ms, in {}",
                path.display()
            );
        }
        if lat.count() > 0 {
            out.push('\n');
            out.push_str(&chart(lat));
        }
        out
    }

    /// The `--probe-path` client: what it asked, what came of it, and its own latencies.
    fn probe_lines(&self) -> String {
        let (Some(path), Some(probe)) = (&self.options.probe_path, &self.outcome.probe) else {
            return String::new();
        };
        format!(
            "  probe       GET {path} every {} ms, beside the clients: {} sent: {} ok, {} failed, \
             {} unfinished\n              latency {}\n",
            self.options.probe_every.as_millis(),
            probe.sent,
            probe.ok,
            probe.failed.total(),
            probe.unfinished,
            latency_line(&probe.latency)
        )
    }

    /// Which loop, and in the open loop what became of the timetable.
    fn loop_lines(&self) -> String {
        let Some(open) = self.outcome.open_loop else {
            return "  loop        closed: next request once the last is answered; latency from \
                    the send\n"
                .into();
        };
        let t = &self.outcome.tally;
        format!(
            "  loop        open: {} req/s on a timetable, {} clients; latency from the due \
             time\n              {} due: {} started ({} more than 1 ms late), {} never \
             started, {} unfinished\n",
            per_second(open.rate),
            self.options.healthy_clients(),
            open.due,
            t.sent,
            t.late,
            open.not_started,
            t.unfinished
        )
    }

    fn held_line(&self) -> String {
        let held = &self.outcome.held;
        let mut kinds = Vec::new();
        for kind in Failure::ALL {
            if held.failed.get(kind) > 0 {
                kinds.push(format!(
                    "{} {}",
                    kind.name().replace('_', " "),
                    held.failed.get(kind)
                ));
            }
        }
        let why = if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        };
        format!(
            "  held        {} asked: {} established, {} failed{why}, {} not tried in time; \
             {} closed by the server\n",
            grouped(held.asked),
            grouped(held.established),
            grouped(held.failed.total()),
            grouped(held.not_tried),
            grouped(held.cut)
        )
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
                if let Some(full) = s.kitchen_full {
                    let _ = write!(
                        line,
                        "; kitchen: peak {} cooking, peak {} waiting, {full} turned away (503)",
                        or_na(s.peak_kitchen_cooking),
                        or_na(s.peak_kitchen_queued)
                    );
                }
                if self.stats_polls > 0 {
                    let _ = write!(
                        line,
                        " (counting our {} GET /stats during the run)",
                        self.stats_polls
                    );
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
            ("idle_reconnect", o.reconnect().to_string()),
            ("trickle", o.trickle_clients().to_string()),
            (
                "trickle_ms",
                match o.trickle_clients() {
                    0 => "null".into(),
                    _ => o.trickle_every.as_millis().to_string(),
                },
            ),
            ("held", o.held_connections().to_string()),
            ("keep_alive", o.keep_alive.to_string()),
            ("rate", o.rate.map_or("null".into(), decimal)),
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
            ("failed", t.failed.total().to_string()),
            ("unfinished", t.unfinished.to_string()),
        ];
        for kind in Failure::ALL {
            fields.push((kind.name(), t.failed.get(kind).to_string()));
        }
        let open = self.outcome.open_loop;
        let held = &self.outcome.held;
        fields.extend([
            ("due", number(open.map(|o| o.due))),
            ("late", number(open.map(|_| t.late))),
            ("not_started", number(open.map(|o| o.not_started))),
            ("connections", t.connections.to_string()),
            ("retries", t.retries.to_string()),
            ("rps", decimal(self.rps())),
            ("min_ms", millis(lat.min())),
            ("p50_ms", millis(lat.percentile(0.50))),
            ("p90_ms", millis(lat.percentile(0.90))),
            ("p99_ms", millis(lat.percentile(0.99))),
            ("max_ms", millis(lat.max())),
            ("mean_ms", millis(lat.mean())),
            ("idle_connects", self.outcome.idle.connects.to_string()),
            ("idle_cut", self.outcome.idle.cut.to_string()),
            (
                "trickle_connects",
                self.outcome.trickle.connects.to_string(),
            ),
            ("trickle_cut", self.outcome.trickle.cut.to_string()),
            ("trickle_done", self.outcome.trickle.done.to_string()),
            ("held_established", held.established.to_string()),
            ("held_failed", held.failed.total().to_string()),
            ("held_not_tried", held.not_tried.to_string()),
            ("held_cut", held.cut.to_string()),
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
            (
                "server_peak_kitchen_queued",
                number(server.peak_kitchen_queued),
            ),
            (
                "server_peak_kitchen_cooking",
                number(server.peak_kitchen_cooking),
            ),
            ("server_kitchen_full", number(server.kitchen_full)),
            ("stats_polls", self.stats_polls.to_string()),
        ]);
        let probe = self
            .outcome
            .probe
            .as_ref()
            .filter(|_| o.probe_path.is_some());
        let probe_count = |count: fn(&Tally) -> u64| number(probe.map(count));
        let probe_ms =
            |at: fn(&Histogram) -> Option<Duration>| millis(probe.and_then(|p| at(&p.latency)));
        fields.extend([
            (
                "probe_path",
                o.probe_path.as_deref().map_or("null".into(), string),
            ),
            (
                "probe_every_ms",
                number(
                    o.probe_path
                        .as_ref()
                        .map(|_| o.probe_every.as_millis() as u64),
                ),
            ),
            ("probe_sent", probe_count(|p| p.sent)),
            ("probe_ok", probe_count(|p| p.ok)),
            ("probe_failed", probe_count(|p| p.failed.total())),
            ("probe_unfinished", probe_count(|p| p.unfinished)),
            ("probe_min_ms", probe_ms(Histogram::min)),
            ("probe_p50_ms", probe_ms(|l| l.percentile(0.50))),
            ("probe_p90_ms", probe_ms(|l| l.percentile(0.90))),
            ("probe_p99_ms", probe_ms(|l| l.percentile(0.99))),
            ("probe_max_ms", probe_ms(Histogram::max)),
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

/// A rate as given: `100`, or `0.5` when it has decimals.
fn per_second(rate: f64) -> String {
    if rate.fract() == 0.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate}")
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
    use crate::held::HeldTally;
    use crate::idle::SideTally;
    use crate::run::{OpenLoop, Tally, Trace};

    fn options(list: &[&str]) -> Options {
        cli::parse(std::iter::once("loadgen").chain(list.iter().copied())).unwrap()
    }

    fn outcome() -> Outcome {
        let mut tally = Tally {
            sent: 12,
            ok: 10,
            unfinished: 1,
            ..Tally::default()
        };
        tally.failed.count(Failure::Timeout);
        for n in 1..=10 {
            tally.latency.record(Duration::from_millis(n * 10));
        }
        tally.connections = 11;
        Outcome {
            tally,
            idle: SideTally::default(),
            trickle: SideTally::default(),
            held: HeldTally::default(),
            probe: None,
            open_loop: None,
            elapsed: Duration::from_secs(2),
            spawn_errors: 0,
            trace: Trace::default(),
        }
    }

    fn report<'a>(options: &'a Options, outcome: &'a Outcome) -> Report<'a> {
        Report {
            options,
            outcome,
            peaks: None,
            server: None,
            trace_rows: None,
            series_rows: None,
            stats_polls: 0,
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
            peaks: Some(Peaks {
                threads: Some(7),
                rss_kb: None,
            }),
            server: Some(ServerStats::parse(stats)),
            stats_polls: 3,
            ..report(&options, &outcome)
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
            "\"keep_alive\":false,\"rate\":null,",
            "\"due\":null,\"late\":null,\"not_started\":null,\"connections\":11,\"retries\":0,",
            "\"trickle\":0,\"trickle_ms\":null,\"held\":0,",
            "\"stats_polls\":3,",
            "\"server_peak_kitchen_queued\":null,\"server_peak_kitchen_cooking\":null,",
            "\"probe_path\":null,\"probe_every_ms\":null,\"probe_sent\":null,",
            "\"probe_p99_ms\":null,\"probe_max_ms\":null}",
        ] {
            assert!(json.contains(expected), "{expected} not in {json}");
        }
        assert!(json.ends_with('}') && !json.contains('\n'));
        // Every key the help promises is there.
        let help = cli::help();
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
        let text = report(&options, &outcome).text();
        assert!(
            text.contains("12 sent: 10 ok, 1 failed, 1 unfinished"),
            "{text}"
        );
        assert!(text.contains("timeout 1, bad status 0"), "{text}");
        assert!(text.contains("throughput  5.0 req/s"), "{text}");
        assert!(text.contains("min 10.0 ms"), "{text}");
        assert!(text.contains("give --pid PID"), "{text}");
        assert!(
            text.contains("scenario normal, 10 clients, closed loop, 10.0 s"),
            "{text}"
        );
        assert!(
            text.contains("\n  loop        closed: next request once the last is answered"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n  connections 11 opened for 12 requests (1.1 requests per connection), \
                 0 retried after an idle close\n"
            ),
            "{text}"
        );
        assert!(text.contains("latency of ok responses"), "{text}");
        let bars: Vec<&str> = text.lines().filter(|l| l.contains(" ms to ")).collect();
        assert!(!bars.is_empty() && bars.len() <= CHART_ROWS, "{text}");
        // The tallest row gets the whole width; an empty row gets no mark.
        assert!(text.contains(&"#".repeat(CHART_WIDTH)), "{text}");
        for bar in bars {
            assert_eq!(bar.contains('#'), !bar.ends_with(" 0"), "{bar}");
        }
    }

    /// The open loop says what became of its timetable, in the text and in the JSON.
    #[test]
    fn the_open_loop_reports_due_late_and_never_started() {
        let options = options(&["--rate", "100", "--keep-alive", "--duration", "2"]);
        let mut outcome = outcome();
        outcome.tally.late = 3;
        outcome.tally.retries = 2;
        outcome.open_loop = Some(OpenLoop {
            rate: 100.0,
            due: 200,
            not_started: 188,
        });
        let report = report(&options, &outcome);
        let text = report.text();
        assert!(
            text.contains("10 clients, open loop at 100 req/s, keep-alive, 2.0 s"),
            "{text}"
        );
        assert!(
            text.contains(
                "              200 due: 12 started (3 more than 1 ms late), 188 never started, \
                 1 unfinished\n"
            ),
            "{text}"
        );
        assert!(text.contains("2 retried after an idle close"), "{text}");
        let json = report.json();
        assert!(
            json.contains("\"keep_alive\":true,\"rate\":100.000,"),
            "{json}"
        );
        assert!(
            json.contains("\"due\":200,\"late\":3,\"not_started\":188,"),
            "{json}"
        );
    }

    /// Siege and held say what their extra connections went through.
    #[test]
    fn siege_and_held_have_lines_of_their_own() {
        let options_siege = options(&["--scenario", "siege", "--trickle", "2"]);
        let mut outcome = outcome();
        outcome.idle = SideTally {
            connects: 12,
            cut: 4,
            done: 0,
        };
        outcome.trickle = SideTally {
            connects: 6,
            cut: 4,
            done: 1,
        };
        let text = report(&options_siege, &outcome).text();
        assert!(
            text.contains("10 clients + 8 idle + 2 trickling (reconnecting), closed loop"),
            "{text}"
        );
        assert!(
            text.contains("  idle        12 connections opened, 4 closed by the server\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "  trickle     a byte every 200 ms: 6 connections opened, 4 cut by the server, \
                 1 requests answered\n"
            ),
            "{text}"
        );
        let json = report(&options_siege, &outcome).json();
        assert!(
            json.contains("\"trickle_connects\":6,\"trickle_cut\":4,\"trickle_done\":1,"),
            "{json}"
        );

        let options_held = options(&["--scenario", "held"]);
        outcome.held = HeldTally {
            asked: 10_000,
            established: 9_990,
            failed: {
                let mut failed = crate::client::Failures::default();
                (0..10).for_each(|_| failed.count(Failure::Timeout));
                failed
            },
            not_tried: 0,
            cut: 3,
            spawn_errors: 0,
        };
        let text = report(&options_held, &outcome).text();
        assert!(
            text.contains("10 clients + 10 000 held, closed loop"),
            "{text}"
        );
        assert!(
            text.contains(
                "  held        10 000 asked: 9 990 established, 10 failed (timeout 10), \
                 0 not tried in time; 3 closed by the server\n"
            ),
            "{text}"
        );
        let json = report(&options_held, &outcome).json();
        assert!(
            json.contains(
                "\"held_established\":9990,\"held_failed\":10,\"held_not_tried\":0,\"held_cut\":3,"
            ),
            "{json}"
        );
    }

    /// The probe gets two lines of its own, its counts and its latencies, apart from the
    /// healthy clients' (which stay as they were), and its keys in the JSON.
    #[test]
    fn the_probe_has_its_own_lines_and_keys() {
        let options = options(&["--probe-path", "/stats", "--probe-every-ms", "50"]);
        let mut outcome = outcome();
        let mut probe = Tally {
            sent: 41,
            ok: 40,
            unfinished: 1,
            ..Tally::default()
        };
        for n in 1..=40 {
            probe.latency.record(Duration::from_micros(n * 100));
        }
        outcome.probe = Some(probe);
        let report = report(&options, &outcome);
        let text = report.text();
        assert!(
            text.contains(
                "\n  probe       GET /stats every 50 ms, beside the clients: 41 sent: 40 ok, \
                 0 failed, 1 unfinished\n              latency min 0.10 ms  p50 "
            ),
            "{text}"
        );
        assert!(text.contains("12 sent: 10 ok, 1 failed"), "{text}");
        assert!(text.contains("max 4.00 ms  (mean "), "{text}");
        let json = report.json();
        for expected in [
            "\"probe_path\":\"/stats\",\"probe_every_ms\":50,\"probe_sent\":41,\"probe_ok\":40,",
            "\"probe_failed\":0,\"probe_unfinished\":1,\"probe_min_ms\":0.100,",
            "\"probe_max_ms\":4.000}",
            "\"sent\":12,\"ok\":10,",
        ] {
            assert!(json.contains(expected), "{expected} not in {json}");
        }
        // Without the probe, the text says nothing of it.
        let plain = self::options(&[]);
        assert!(!self::report(&plain, &outcome).text().contains("probe"));
    }

    /// A server with a kitchen (stage 08) has its peaks and its 503s on the /stats line and
    /// in the JSON; one without has neither.
    #[test]
    fn a_kitchen_shows_on_the_stats_line() {
        let options = options(&[]);
        let outcome = outcome();
        let stats = "{\"stage\":\"08_cpu_pool\",\"accepted\":9,\"served\":8,\"errors\":0,\
                     \"kitchen_queued\":0,\"peak_kitchen_queued\":18,\"kitchen_cooking\":0,\
                     \"peak_kitchen_cooking\":2,\"kitchen_full\":5}";
        let report = Report {
            server: Some(ServerStats::parse(stats)),
            ..report(&options, &outcome)
        };
        assert!(
            report.text().contains(
                "errors 0; kitchen: peak 2 cooking, peak 18 waiting, 5 turned away (503)\n"
            ),
            "{}",
            report.text()
        );
        assert!(report.json().contains(
            "\"server_peak_kitchen_queued\":18,\"server_peak_kitchen_cooking\":2,\
             \"server_kitchen_full\":5,"
        ));
        let without = Report {
            server: Some(ServerStats::parse("{\"stage\":\"07_keep_alive\"}")),
            ..report
        };
        assert!(!without.text().contains("kitchen"));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
