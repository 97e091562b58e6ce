//! The command line: what to load, how hard, for how long, and how to report it.
//!
//! Declared like the stages' flags (`src/config.rs` at the top of the repository): one struct,
//! [`Flags`], that clap's derive turns into the parser, `--help` (each doc comment is a flag's
//! line, with the reason for its default) and the errors, which exit with status 2. One rule
//! clap cannot say is checked after it, in [`parse`]: a flag that belongs to one scenario is
//! refused in the others, since a flag the run would ignore is more likely a mistake than a
//! wish. Parsing is a pure function of the arguments, so the tests can check it without
//! starting anything.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{RangedU64ValueParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::url::Url;

/// What the clients do: `--scenario`. Each doc comment is the scenario's line in `--help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// --clients healthy clients, one request at a time each
    Normal,
    /// --flood clients at once, more than a stage has threads
    Flood,
    /// --clients healthy clients while --idle connections send nothing
    Idle,
    /// --clients healthy clients among --idle idle and --trickle trickling connections, which
    /// come back as soon as they are cut
    Siege,
    /// --clients healthy clients while --held idle connections are held open by a few threads
    Held,
}

impl Scenario {
    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Normal => "normal",
            Scenario::Flood => "flood",
            Scenario::Idle => "idle",
            Scenario::Siege => "siege",
            Scenario::Held => "held",
        }
    }
}

/// Everything the command line can say.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub url: Url,
    pub scenario: Scenario,
    /// Healthy clients in `normal` and `idle`.
    pub clients: usize,
    /// Healthy clients in `flood`.
    pub flood: usize,
    /// Connections that send nothing, in `idle` and `siege`.
    pub idle: usize,
    /// In `idle`: an idle connection the server closes is opened again at once (in `siege`
    /// always).
    pub idle_reconnect: bool,
    /// Connections that send a request a byte at a time, in `siege`.
    pub trickle: usize,
    /// The pause between two bytes of a trickling request.
    pub trickle_every: Duration,
    /// Idle connections held open in `held`, and how many are opened per second.
    pub held: usize,
    pub held_rate: u64,
    /// HTTP/1.1 persistent connections: no `Connection: close`, reuse when the server agrees.
    pub keep_alive: bool,
    /// One more client asking this path (`--probe-path`), with latencies of its own.
    pub probe_path: Option<String>,
    /// The probe's pace: a request every this long, or at once after a slower answer.
    pub probe_every: Duration,
    /// Requests per second from all clients together (the open loop); `None`: closed loop.
    pub rate: Option<f64>,
    /// Stop after this many requests in total (all clients together).
    pub requests: Option<u64>,
    /// Stop after this long. `None` only when `--requests` bounds the run instead.
    pub duration: Option<Duration>,
    pub connect_timeout: Duration,
    /// The whole request: connect, send, and read the last byte of the response.
    pub timeout: Duration,
    /// Print the JSON object on stdout instead of the report.
    pub json: bool,
    /// Also write the JSON object to this file.
    pub json_file: Option<PathBuf>,
    /// The server's process id, to sample its threads and memory from `/proc`.
    pub pid: Option<u32>,
    /// Ask the server for `GET /stats` after the run (and during it, for the live view and
    /// `--series`).
    pub server_stats: bool,
    /// One CSV row per request, written here after the run.
    pub trace: Option<PathBuf>,
    /// The run sampled every 100 ms, as CSV, written here after the run.
    pub series: Option<PathBuf>,
    /// The live view on stderr when it is a terminal (`--no-live` turns it off).
    pub live: bool,
}

impl Options {
    /// How many clients send requests (not counting idle connections).
    pub fn healthy_clients(&self) -> usize {
        match self.scenario {
            Scenario::Flood => self.flood,
            _ => self.clients,
        }
    }

    /// How many connections sit idle, each on a thread of its own.
    pub fn idle_clients(&self) -> usize {
        match self.scenario {
            Scenario::Idle | Scenario::Siege => self.idle,
            _ => 0,
        }
    }

    /// How many connections trickle their request.
    pub fn trickle_clients(&self) -> usize {
        match self.scenario {
            Scenario::Siege => self.trickle,
            _ => 0,
        }
    }

    /// How many idle connections are held from a few threads.
    pub fn held_connections(&self) -> usize {
        match self.scenario {
            Scenario::Held => self.held,
            _ => 0,
        }
    }

    /// Whether idle and trickling connections come back when cut.
    pub fn reconnect(&self) -> bool {
        self.idle_reconnect || self.scenario == Scenario::Siege
    }

    /// Descriptors the run needs at once: one per connection, and a few for `/proc`, the
    /// files written, `/stats` and the probe.
    pub fn descriptors_needed(&self) -> u64 {
        (self.healthy_clients()
            + self.idle_clients()
            + self.trickle_clients()
            + self.held_connections()
            + 32) as u64
    }
}

/// Headings of `--help`.
const TARGET: &str = "Target";
const LOAD: &str = "Load";
const REPORT: &str = "Report";

/// The first lines of `--help`.
const ABOUT: &str = "\
loadgen: many clients asking one server for a page, and what they saw

Each client is a thread that connects, sends one HTTP/1.1 GET, reads the whole response (by \
Content-Length), checks the status, closes, and starts again: a closed loop, so a slow server \
slows its clients down instead of being buried under requests. With --rate the requests run on \
a timetable instead (an open loop). On Linux the client threads run as SCHED_BATCH, so that \
their wake-ups do not preempt the server they share the cores with.";

/// Upper bounds that keep a typo from starting a run nobody wants.
const MAX_CLIENTS: u64 = 10_000;
const MAX_HELD: u64 = 100_000;
/// One request every 100 s at the slowest: a timetable that still fits in a run.
const MIN_RATE: f64 = 0.01;
const MAX_RATE: f64 = 1_000_000.0;
const MAX_DURATION_S: f64 = 3600.0;
const MAX_TIMEOUT_MS: u64 = 600_000;

/// The command line as clap reads it; [`parse`] turns it into [`Options`].
#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = ABOUT,
    help_template = "{about-with-newline}\nUsage: {name} [OPTIONS]\n\n{all-args}{after-help}",
    after_help = after_help(),
    // A flag given twice keeps its last value: load_test.sh's flags, then the user's.
    args_override_self = true,
    max_term_width = 100
)]
pub struct Flags {
    /// Page to GET, http://HOST:PORT/PATH; loopback only, since a load generator aimed at
    /// someone else's machine is an attack
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:1729/",
          value_parser = Url::parse, help_heading = TARGET)]
    url: Url,

    #[arg(long, value_enum, value_name = "S", default_value_t = Scenario::Normal,
          help = scenarios(), hide_possible_values = true, help_heading = LOAD)]
    scenario: Scenario,

    /// Healthy clients (all but flood); a few per core is plenty to keep a fast server busy.
    /// With --rate, the connections available to the timetable: make it larger than rate x
    /// expected latency, or requests wait for a free client
    #[arg(long, value_name = "C", default_value_t = 10,
          value_parser = count(1..=MAX_CLIENTS), help_heading = LOAD)]
    clients: usize,

    /// Clients in the flood scenario; enough that a thread per connection shows in the
    /// server's thread count
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = count(1..=MAX_CLIENTS), help_heading = LOAD)]
    flood: usize,

    /// Idle connections in idle and siege; more than the stages' 4 workers, so they can hold
    /// every one
    #[arg(long, value_name = "K", default_value_t = 8,
          value_parser = count(0..=MAX_CLIENTS), help_heading = LOAD)]
    idle: usize,

    /// In idle: an idle connection the server closes connects again at once (always so in
    /// siege)
    #[arg(long, help_heading = LOAD)]
    idle_reconnect: bool,

    /// In siege: connections that send a valid request one byte at a time; with the idle ones,
    /// four times the 4 workers of stages 04-05, so that they hold every worker even while
    /// some are reconnecting
    #[arg(long, value_name = "T", default_value_t = 8,
          value_parser = count(0..=MAX_CLIENTS), help_heading = LOAD)]
    trickle: usize,

    /// In siege: the pause between two bytes; a request of about 80 bytes then takes 16 s,
    /// far beyond a header deadline
    #[arg(long = "trickle-ms", value_name = "MS", default_value = "200",
          value_parser = millis(), help_heading = LOAD)]
    trickle_every: Duration,

    /// In held: idle connections held open, from one thread that polls them; enough to be far
    /// beyond a thread per connection
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = count(1..=MAX_HELD), help_heading = LOAD)]
    held: usize,

    /// In held: connections opened per second, so that a server that starts a thread per
    /// connection (about 40 us each) keeps up; 10 000 then take 5 s
    #[arg(long, value_name = "R", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..=100_000), help_heading = LOAD)]
    held_rate: u64,

    /// HTTP/1.1 persistent connections: no Connection: close, and each client sends its next
    /// request on the same connection while the server keeps it open; in held, each held
    /// connection makes one request first, so it is held as an idle kept connection. Without
    /// it, a connection per request
    #[arg(long, help_heading = LOAD)]
    keep_alive: bool,

    /// One more client, apart from the others, asking PATH on the same server (e.g. /stats)
    /// throughout the run, with --keep-alive if they have it; its latency gets a line of its
    /// own and its requests count nowhere else. It shows what the load does to a request that
    /// needs no work
    #[arg(long, value_name = "PATH", value_parser = probe_path, help_heading = LOAD)]
    probe_path: Option<String>,

    /// With --probe-path: a request every MS, or at once after a slower answer; 100 ms gives
    /// 80 answers in 8 s and adds no load worth counting
    #[arg(long = "probe-every-ms", value_name = "MS", default_value = "100",
          value_parser = millis(), help_heading = LOAD)]
    probe_every: Duration,

    /// Open loop: R requests per second from all clients together, each due at start + i/R
    /// whatever the server does; latency counts from when a request was due, so a stall shows
    /// as the wait it caused. Without it, the closed loop
    #[arg(long, value_name = "R", value_parser = per_second, help_heading = LOAD)]
    rate: Option<f64>,

    /// Stop after N requests from all clients together
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..),
          help_heading = LOAD)]
    requests: Option<u64>,

    /// Stop after S seconds, decimals allowed; requests still running then are counted as
    /// unfinished. Given --requests and not this, only the requests end the run
    #[arg(long, value_name = "S", default_value = "10", value_parser = seconds,
          help_heading = LOAD)]
    duration: Duration,

    /// How long a connect may take
    #[arg(long = "connect-timeout-ms", value_name = "MS", default_value = "3000",
          value_parser = millis(), help_heading = LOAD)]
    connect_timeout: Duration,

    /// How long one request may take, connect to last byte; longer than stage 05's 5 s header
    /// deadline, so idle shows 05 recovering
    #[arg(long = "timeout-ms", value_name = "MS", default_value = "10000",
          value_parser = millis(), help_heading = LOAD)]
    timeout: Duration,

    /// Print one JSON object (keys below) instead of the report
    #[arg(long, help_heading = REPORT)]
    json: bool,

    /// Also write the JSON object to FILE
    #[arg(long, value_name = "FILE", help_heading = REPORT)]
    json_file: Option<PathBuf>,

    /// Sample /proc/PID/status during the run: the server's peak threads and peak memory
    /// (Linux only)
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..),
          help_heading = REPORT)]
    pid: Option<u32>,

    /// Never ask the server for GET /stats (after the run, and during it for the live view
    /// and --series)
    #[arg(long, help_heading = REPORT)]
    no_server_stats: bool,

    #[arg(long, value_name = "FILE", help = trace_help(), help_heading = REPORT)]
    trace: Option<PathBuf>,

    #[arg(long, value_name = "FILE", help = series_help(), help_heading = REPORT)]
    series: Option<PathBuf>,

    /// No live view, even when stderr is a terminal. Without it: the live view on a terminal,
    /// elsewhere a progress line every 5 s of a run longer than that
    #[arg(long, help_heading = REPORT)]
    no_live: bool,
}

/// `--scenario`'s help: each scenario's name and its doc comment, one a line.
fn scenarios() -> String {
    let lines: Vec<String> = Scenario::value_variants()
        .iter()
        .filter_map(ValueEnum::to_possible_value)
        .map(|value| {
            let help = value.get_help().map(ToString::to_string);
            format!("{}: {}", value.get_name(), help.unwrap_or_default())
        })
        .collect();
    lines.join(";\n")
}

fn trace_help() -> String {
    format!(
        "One CSV row per request of every client, written after the run (at most {} rows), \
         with the columns\n{}",
        // A no-break space between the groups of digits: clap wraps lines at spaces.
        crate::live::grouped(crate::trace::CAP).replace(' ', "\u{a0}"),
        columns(crate::trace::HEADER)
    )
}

fn series_help() -> String {
    format!(
        "The run sampled every 100 ms, as CSV, with the columns\n{}",
        columns(crate::watch::HEADER)
    )
}

/// A CSV header cut after a comma into lines that fit beside the flags in 100 columns (clap
/// wraps only at spaces, and a header has none).
fn columns(header: &str) -> String {
    let mut lines = vec![String::new()];
    for column in header.split_inclusive(',') {
        if let Some(line) = lines.last_mut().filter(|l| l.len() + column.len() <= 60) {
            line.push_str(column);
        } else {
            lines.push(column.to_string());
        }
    }
    lines.join("\n")
}

/// The end of `--help`: the exit status, and the keys of the `--json` object.
fn after_help() -> &'static str {
    "\
Exit status: 0 when the run took place (whatever the server answered), 1 when the server
cannot be reached, the run cannot start or a file asked for cannot be written (the report
is printed all the same), 2 on a bad command line.

JSON keys (one object, no nesting; null where a value is not known):
  url scenario clients idle idle_reconnect   what was asked
  trickle trickle_ms held keep_alive rate
  requests_limit duration_limit_s            the stop conditions (null = none)
  connect_timeout_ms timeout_ms              the timeouts
  elapsed_s                                  the run: --duration, or until the last
                                             response
  sent ok failed unfinished                  requests: sent = ok + failed + unfinished
  refused reset timeout bad_status other     failed, by kind
  due late not_started                       open loop: requests due before the end,
                                             started over 1 ms late, due but never
                                             started (null in the closed loop)
  connections retries                        connections the healthy clients opened;
                                             requests sent again after an idle close
  rps                                        ok responses per second of elapsed_s
  min_ms p50_ms p90_ms p99_ms max_ms mean_ms latency of ok responses
  idle_connects idle_cut                     idle connections opened, and closed by
                                             the server
  trickle_connects trickle_cut trickle_done  trickling connections opened, cut, and
                                             requests answered in full
  held_established held_failed held_not_tried held_cut
                                             held connections
  pid peak_threads peak_rss_kb               from /proc/PID/status (with --pid)
  server_stage server_accepted server_served server_errors server_timeouts
  server_peak_in_flight server_peak_connections_open
                                             from the server's GET /stats after the run
  server_peak_kitchen_queued server_peak_kitchen_cooking server_kitchen_full
                                             from /stats, for a server with a kitchen
                                             (stage 08): its peaks, and requests it
                                             turned away because its queue was full
  stats_polls                                GET /stats sent during the run (counted by
                                             the server among its connections)
  probe_path probe_every_ms probe_sent probe_ok probe_failed probe_unfinished
  probe_min_ms probe_p50_ms probe_p90_ms probe_p99_ms probe_max_ms
                                             the --probe-path client's requests and
                                             the latency of its ok ones (null without)"
}

/// A whole number in `range`, for a `usize` field.
fn count(range: std::ops::RangeInclusive<u64>) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(range)
}

/// Whole milliseconds from 1 to [`MAX_TIMEOUT_MS`], as a `Duration`.
fn millis() -> impl TypedValueParser<Value = Duration> {
    RangedU64ValueParser::<u64>::new()
        .range(1..=MAX_TIMEOUT_MS)
        .map(Duration::from_millis)
}

/// `--duration`: seconds, decimals allowed, above 0 and at most an hour.
fn seconds(value: &str) -> Result<Duration, String> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= MAX_DURATION_S => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "expected seconds above 0 and up to {MAX_DURATION_S}, e.g. 5 or 0.5"
        )),
    }
}

/// `--probe-path`: a path as a request line carries it.
fn probe_path(value: &str) -> Result<String, String> {
    crate::url::check_path(value).map(|()| value.to_string())
}

/// `--rate`: requests per second, decimals allowed.
fn per_second(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(r) if (MIN_RATE..=MAX_RATE).contains(&r) => Ok(r),
        _ => Err(format!(
            "expected requests per second from {MIN_RATE} to {MAX_RATE}, e.g. 200 or 0.5"
        )),
    }
}

/// The `--help` text (the tests read the JSON keys from it).
#[cfg(test)]
pub fn help() -> String {
    Flags::command().render_help().to_string()
}

/// Parses a command line (the program's name first). `--help` comes back as an error too, of
/// the kind that `exit()` prints on stdout with status 0.
pub fn parse<I, T>(args: I) -> Result<Options, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = Flags::command();
    let matches = command.try_get_matches_from_mut(args)?;
    let flags = Flags::from_arg_matches(&matches)?;
    let given = Given(&matches);
    flags_fit_the_scenario(&flags, &given)
        .map_err(|message| command.error(ErrorKind::ArgumentConflict, message))?;
    if given.flag("probe_every") && flags.probe_path.is_none() {
        return Err(command.error(
            ErrorKind::ArgumentConflict,
            "'--probe-every-ms' paces the probe: it goes with '--probe-path PATH'",
        ));
    }
    Ok(Options {
        url: flags.url,
        scenario: flags.scenario,
        clients: flags.clients,
        flood: flags.flood,
        idle: flags.idle,
        idle_reconnect: flags.idle_reconnect,
        trickle: flags.trickle,
        trickle_every: flags.trickle_every,
        held: flags.held,
        held_rate: flags.held_rate,
        keep_alive: flags.keep_alive,
        probe_path: flags.probe_path,
        probe_every: flags.probe_every,
        rate: flags.rate,
        requests: flags.requests,
        // Without either limit a run would never end; with only --requests, each request is
        // still bounded by --timeout-ms, so the run is too.
        duration: match (given.flag("duration"), flags.requests) {
            (false, Some(_)) => None,
            _ => Some(flags.duration),
        },
        connect_timeout: flags.connect_timeout,
        timeout: flags.timeout,
        json: flags.json,
        json_file: flags.json_file,
        pid: flags.pid,
        server_stats: !flags.no_server_stats,
        trace: flags.trace,
        series: flags.series,
        live: !flags.no_live,
    })
}

/// Which flags the command line gave, as opposed to those left at their defaults.
struct Given<'a>(&'a ArgMatches);

impl Given<'_> {
    /// `id` is the field's name in [`Flags`].
    fn flag(&self, id: &str) -> bool {
        self.0.value_source(id) == Some(ValueSource::CommandLine)
    }
}

/// A flag that the chosen scenario would ignore is refused, with the scenarios it belongs to.
fn flags_fit_the_scenario(flags: &Flags, given: &Given<'_>) -> Result<(), String> {
    let scenario = flags.scenario;
    let only_in = |id: &str, flag: &str, wanted: &[Scenario]| {
        if given.flag(id) && !wanted.contains(&scenario) {
            let names: Vec<&str> = wanted.iter().map(|s| s.name()).collect();
            Err(format!(
                "'{flag}' applies to --scenario {}, not {}",
                names.join(" or "),
                scenario.name()
            ))
        } else {
            Ok(())
        }
    };
    only_in("flood", "--flood", &[Scenario::Flood])?;
    only_in("idle", "--idle", &[Scenario::Idle, Scenario::Siege])?;
    if flags.idle_reconnect && scenario == Scenario::Siege {
        return Err("'--idle-reconnect' is always on in --scenario siege; leave it out".into());
    }
    only_in("idle_reconnect", "--idle-reconnect", &[Scenario::Idle])?;
    only_in("trickle", "--trickle", &[Scenario::Siege])?;
    only_in("trickle_every", "--trickle-ms", &[Scenario::Siege])?;
    only_in("held", "--held", &[Scenario::Held])?;
    only_in("held_rate", "--held-rate", &[Scenario::Held])?;
    if given.flag("clients") && scenario == Scenario::Flood {
        return Err(
            "in --scenario flood the number of clients is '--flood N', not '--clients'".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_list(list: &[&str]) -> Result<Options, clap::Error> {
        parse(std::iter::once("loadgen").chain(list.iter().copied()))
    }

    /// The error a refused command line prints, which must exit with status 2.
    fn message(list: &[&str]) -> String {
        match parse_list(list) {
            Err(error) => {
                assert_eq!(error.exit_code(), 2, "{list:?}: {error}");
                error.to_string()
            }
            Ok(options) => panic!("{list:?} should be refused, gave {options:?}"),
        }
    }

    /// No flags: every value is the default the help shows.
    #[test]
    fn no_arguments_give_the_documented_defaults() {
        let options = parse_list(&[]).unwrap();
        assert_eq!(options.url.authority, "127.0.0.1:1729");
        assert_eq!(options.url.path, "/");
        assert_eq!(options.scenario, Scenario::Normal);
        assert_eq!(options.healthy_clients(), 10);
        assert_eq!(options.idle_clients(), 0);
        assert_eq!(options.requests, None);
        assert_eq!(options.duration, Some(Duration::from_secs(10)));
        assert_eq!(options.timeout, Duration::from_secs(10));
        assert!(options.server_stats && !options.json);
        let help = help();
        assert!(help.contains("[default: http://127.0.0.1:1729/]"));
        assert!(help.contains("[default: 10000]"));
    }

    /// `--flag VALUE` and `--flag=VALUE` both work.
    #[test]
    fn both_spellings_of_a_value_are_accepted() {
        let options = parse_list(&[
            "--url=http://127.0.0.1:40000/stats",
            "--clients",
            "50",
            "--duration=0.5",
            "--json",
        ])
        .unwrap();
        assert_eq!(options.url.authority, "127.0.0.1:40000");
        assert_eq!(options.clients, 50);
        assert_eq!(options.duration, Some(Duration::from_millis(500)));
        assert!(options.json);
    }

    /// `--requests` without `--duration` runs until the requests are done; with both, both apply.
    #[test]
    fn requests_alone_lift_the_default_duration() {
        let options = parse_list(&["--requests", "100"]).unwrap();
        assert_eq!((options.requests, options.duration), (Some(100), None));
        let both = parse_list(&["--requests", "100", "--duration", "3"]).unwrap();
        assert_eq!(both.duration, Some(Duration::from_secs(3)));
    }

    /// Each scenario counts the clients of its own flags.
    #[test]
    fn each_scenario_counts_its_own_clients() {
        let flood = parse_list(&["--scenario", "flood", "--flood", "200"]).unwrap();
        assert_eq!((flood.healthy_clients(), flood.idle_clients()), (200, 0));
        let idle = parse_list(&["--scenario", "idle", "--idle-reconnect"]).unwrap();
        assert_eq!((idle.healthy_clients(), idle.idle_clients()), (10, 8));
        assert!(idle.idle_reconnect);
    }

    /// A flag of another scenario is refused, naming the scenarios it belongs to.
    #[test]
    fn a_flag_for_another_scenario_is_refused() {
        assert!(message(&["--idle", "3"]).contains("applies to --scenario idle"));
        assert!(message(&["--idle-reconnect"]).contains("applies to --scenario idle"));
        assert!(message(&["--flood", "3"]).contains("applies to --scenario flood"));
        assert!(message(&["--scenario", "flood", "--clients", "3"]).contains("--flood N"));
    }

    /// A value of the wrong shape or out of range is refused, naming the flag.
    #[test]
    fn bad_values_name_the_flag() {
        for (list, needle) in [
            (&["--clients", "0"][..], "'--clients <C>'"),
            (&["--clients", "many"][..], "'--clients <C>'"),
            (&["--duration", "0"][..], "'--duration <S>'"),
            (&["--duration=-1"][..], "'--duration <S>'"),
            (&["--timeout-ms", "0"][..], "'--timeout-ms <MS>'"),
            (
                &["--scenario", "storm"][..],
                "[possible values: normal, flood, idle, siege, held]",
            ),
            (&["--url", "https://127.0.0.1/"][..], "'--url <URL>'"),
            (
                &["--requests"][..],
                "a value is required for '--requests <N>'",
            ),
            (&["--json=yes"][..], "unexpected value 'yes' for '--json'"),
            (&["--bogus", "1"][..], "unexpected argument '--bogus'"),
            (&["--bogus"][..], "unexpected argument '--bogus'"),
            (&["stray"][..], "unexpected argument 'stray'"),
        ] {
            assert!(
                message(list).contains(needle),
                "{list:?}: {}",
                message(list)
            );
        }
    }

    /// A mistyped flag gets clap's suggestion and a pointer to `--help`, not the help itself.
    #[test]
    fn a_mistyped_flag_gets_a_suggestion() {
        let text = message(&["--client", "3"]);
        assert!(
            text.contains("tip: a similar argument exists: '--clients'"),
            "{text}"
        );
        assert!(
            text.ends_with("For more information, try '--help'.\n"),
            "{text}"
        );
        assert!(text.lines().count() <= 5, "{text}");
    }

    /// siege and held count their side connections, and only they reconnect or hold.
    #[test]
    fn the_new_scenarios_count_their_connections() {
        let siege = parse_list(&["--scenario", "siege", "--trickle", "3"]).unwrap();
        assert_eq!(
            (
                siege.healthy_clients(),
                siege.idle_clients(),
                siege.trickle_clients(),
                siege.held_connections()
            ),
            (10, 8, 3, 0)
        );
        assert!(siege.reconnect(), "siege always reconnects");
        assert_eq!(siege.trickle_every, Duration::from_millis(200));
        let held = parse_list(&["--scenario", "held", "--clients", "4"]).unwrap();
        assert_eq!(
            (held.healthy_clients(), held.held_connections()),
            (4, 10_000)
        );
        assert_eq!(held.idle_clients() + held.trickle_clients(), 0);
        assert_eq!(held.descriptors_needed(), 4 + 10_000 + 32);
        assert!(!held.reconnect());
        // Zero idle or trickling connections is a siege of one kind only.
        let trickle_only = parse_list(&["--scenario=siege", "--idle=0"]).unwrap();
        assert_eq!(trickle_only.idle_clients(), 0);
    }

    /// The switches and the report files are read, and off by default.
    #[test]
    fn keep_alive_rate_trace_series_and_live_are_read() {
        let options = parse_list(&[
            "--keep-alive",
            "--rate",
            "250.5",
            "--trace",
            "t.csv",
            "--series=s.csv",
            "--no-live",
        ])
        .unwrap();
        assert!(options.keep_alive && !options.live);
        assert_eq!(options.rate, Some(250.5));
        assert_eq!(options.trace, Some(PathBuf::from("t.csv")));
        assert_eq!(options.series, Some(PathBuf::from("s.csv")));
        let plain = parse_list(&[]).unwrap();
        assert!(!plain.keep_alive && plain.live && plain.rate.is_none());
        assert_eq!((plain.trace, plain.series), (None, None));
    }

    /// siege's and held's flags are refused in other scenarios; rates and counts are bounded.
    #[test]
    fn flags_of_the_new_scenarios_are_refused_elsewhere() {
        assert!(message(&["--trickle", "3"]).contains("applies to --scenario siege"));
        assert!(message(&["--trickle-ms", "3"]).contains("applies to --scenario siege"));
        assert!(message(&["--held", "3"]).contains("applies to --scenario held"));
        assert!(message(&["--held-rate", "3"]).contains("applies to --scenario held"));
        assert!(message(&["--scenario", "held", "--idle", "3"])
            .contains("applies to --scenario idle or siege, not held"));
        assert!(message(&["--scenario", "siege", "--idle-reconnect"]).contains("always on"));
        for (list, needle) in [
            (&["--rate", "0"][..], "'--rate <R>'"),
            (&["--rate", "0.001"][..], "from 0.01 to"),
            (&["--rate", "NaN"][..], "'--rate <R>'"),
            (&["--rate", "fast"][..], "'--rate <R>'"),
            (&["--scenario", "held", "--held", "0"][..], "'--held <N>'"),
            (
                &["--scenario", "siege", "--trickle-ms", "0"][..],
                "'--trickle-ms <MS>'",
            ),
            (&["--scenario", "storm"][..], "invalid value 'storm'"),
        ] {
            assert!(message(list).contains(needle), "{list:?}");
        }
    }

    /// The help shows both CSV headers whole, cut only after a comma, and no line of it is
    /// wider than 100 columns.
    #[test]
    fn the_help_shows_the_csv_columns_and_fits_100_columns() {
        let help = help();
        for header in [crate::trace::HEADER, crate::watch::HEADER] {
            let shown: String = columns(header).split_whitespace().collect();
            assert_eq!(shown, header);
            let in_help: String = help.split_whitespace().collect();
            assert!(in_help.contains(header), "{header} not whole in:\n{help}");
        }
        for line in help.lines() {
            assert!(line.chars().count() <= 100, "too wide: {line}");
        }
    }

    /// Each scenario's line in `--scenario`'s help is its doc comment, under the name the
    /// command line and the report use.
    #[test]
    fn the_scenarios_are_named_and_explained() {
        let help = help();
        for scenario in Scenario::value_variants() {
            let value = scenario.to_possible_value().unwrap();
            assert_eq!(value.get_name(), scenario.name());
            assert!(help.contains(&format!("{}: --", scenario.name())), "{help}");
            let parsed = parse_list(&["--scenario", scenario.name()]).unwrap();
            assert_eq!(parsed.scenario, *scenario);
        }
    }

    /// `--probe-path` takes a path and `--probe-every-ms` its pace; the pace alone is refused,
    /// and so is a path that would break the request line.
    #[test]
    fn the_probe_takes_a_path_and_a_pace() {
        let plain = parse_list(&[]).unwrap();
        assert_eq!(plain.probe_path, None);
        assert_eq!(plain.probe_every, Duration::from_millis(100));
        let probe = parse_list(&["--probe-path", "/stats", "--probe-every-ms=20"]).unwrap();
        assert_eq!(probe.probe_path.as_deref(), Some("/stats"));
        assert_eq!(probe.probe_every, Duration::from_millis(20));
        assert!(message(&["--probe-every-ms", "20"]).contains("goes with '--probe-path PATH'"));
        assert!(message(&["--probe-path", "stats"]).contains("'--probe-path <PATH>'"));
        assert!(message(&["--probe-path", "/a b"]).contains("spaces or control characters"));
        assert!(message(&["--probe-path", "/s", "--probe-every-ms", "0"])
            .contains("'--probe-every-ms <MS>'"));
    }

    /// `--help` and `-h` end in a help, printed on stdout with status 0, even after other
    /// flags; a flag given twice keeps its last value.
    #[test]
    fn help_is_not_an_error() {
        for list in [&["-h"][..], &["--clients", "3", "--help"]] {
            let error = parse_list(list).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::DisplayHelp);
            assert_eq!(error.exit_code(), 0);
        }
        let twice = parse_list(&["--clients", "3", "--clients=4"]).unwrap();
        assert_eq!(twice.clients, 4);
    }
}
