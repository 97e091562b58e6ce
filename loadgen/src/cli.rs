//! The command line: what to load, how hard, for how long, and how to report it.
//!
//! Hand-written like the stages' own flags (`src/config.rs`): `--flag VALUE` or
//! `--flag=VALUE`, every default shown in `--help` with its reason. Parsing is a pure
//! function of the arguments, so the tests can check it without starting anything.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::url::Url;

/// What the clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// `--clients` healthy clients, one request at a time each.
    Normal,
    /// `--flood` healthy clients, all at once: more connections than a stage has threads.
    Flood,
    /// `--clients` healthy clients measured while `--idle` connections say nothing.
    Idle,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Normal => "normal",
            Scenario::Flood => "flood",
            Scenario::Idle => "idle",
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
    /// Connections that send nothing, in `idle`.
    pub idle: usize,
    /// In `idle`: an idle connection the server closes is opened again at once.
    pub idle_reconnect: bool,
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
    /// Ask the server for `GET /stats` after the run.
    pub server_stats: bool,
}

impl Options {
    /// How many clients send requests (not counting idle connections).
    pub fn healthy_clients(&self) -> usize {
        match self.scenario {
            Scenario::Flood => self.flood,
            Scenario::Normal | Scenario::Idle => self.clients,
        }
    }

    /// How many connections sit idle.
    pub fn idle_clients(&self) -> usize {
        match self.scenario {
            Scenario::Idle => self.idle,
            Scenario::Normal | Scenario::Flood => 0,
        }
    }
}

/// Defaults, each with its reason in [`usage`].
pub const DEFAULT_URL: &str = "http://127.0.0.1:1729/";
pub const DEFAULT_CLIENTS: usize = 10;
pub const DEFAULT_FLOOD: usize = 1000;
pub const DEFAULT_IDLE: usize = 8;
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3000);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);

/// Upper bounds that keep a typo from starting a run nobody wants.
const MAX_CLIENTS: usize = 10_000;
const MAX_DURATION_S: f64 = 3600.0;
const MAX_TIMEOUT_MS: u64 = 600_000;

/// What parsing can end in, other than [`Options`].
#[derive(Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// `--help` or `-h`: print [`usage`] and exit 0.
    Help,
    /// A flag that does not exist, a missing value, a value that does not parse.
    Bad(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Help => f.write_str("help requested"),
            ArgsError::Bad(message) => f.write_str(message),
        }
    }
}

/// Flags that take no value.
const SWITCHES: &[&str] = &["--idle-reconnect", "--json", "--no-server-stats"];
/// Flags that take one.
const WITH_VALUES: &[&str] = &[
    "--url",
    "--scenario",
    "--clients",
    "--flood",
    "--idle",
    "--requests",
    "--duration",
    "--connect-timeout-ms",
    "--timeout-ms",
    "--json-file",
    "--pid",
];

/// Parses the arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Options, ArgsError> {
    let mut url = None;
    let mut scenario = Scenario::Normal;
    let mut clients = None;
    let mut flood = None;
    let mut idle = None;
    let mut idle_reconnect = false;
    let mut requests = None;
    let mut duration = None;
    let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut json = false;
    let mut json_file = None;
    let mut pid = None;
    let mut server_stats = true;

    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Err(ArgsError::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg.as_str(), None),
        };
        if SWITCHES.contains(&name) {
            if inline.is_some() {
                return Err(bad(format!("'{name}' takes no value")));
            }
            match name {
                "--idle-reconnect" => idle_reconnect = true,
                "--json" => json = true,
                _ => server_stats = false,
            }
            continue;
        }
        if !name.starts_with("--") {
            return Err(bad(format!("unexpected argument '{arg}'")));
        }
        if !WITH_VALUES.contains(&name) {
            return Err(bad(format!("unknown flag '{name}' (see --help)")));
        }
        let Some(value) = inline.or_else(|| args.next().map(String::as_str)) else {
            return Err(bad(format!("'{name}' needs a value")));
        };
        match name {
            "--url" => url = Some(Url::parse(value).map_err(|e| invalid(name, value, &e))?),
            "--scenario" => {
                scenario = match value {
                    "normal" => Scenario::Normal,
                    "flood" => Scenario::Flood,
                    "idle" => Scenario::Idle,
                    _ => return Err(invalid(name, value, "expected normal, flood or idle")),
                }
            }
            "--clients" => clients = Some(count(name, value, 1, MAX_CLIENTS)?),
            "--flood" => flood = Some(count(name, value, 1, MAX_CLIENTS)?),
            "--idle" => idle = Some(count(name, value, 1, MAX_CLIENTS)?),
            "--requests" => requests = Some(count(name, value, 1, usize::MAX)? as u64),
            "--duration" => duration = Some(seconds(name, value)?),
            "--connect-timeout-ms" => connect_timeout = millis(name, value)?,
            "--timeout-ms" => timeout = millis(name, value)?,
            "--json-file" => json_file = Some(PathBuf::from(value)),
            "--pid" => pid = Some(count(name, value, 1, u32::MAX as usize)? as u32),
            // WITH_VALUES and this match list the same names.
            _ => return Err(bad(format!("unknown flag '{name}' (see --help)"))),
        }
    }

    // A flag that the chosen scenario would ignore is more likely a mistake than a wish.
    let only_in = |given: bool, flag: &str, wanted: Scenario| {
        if given && scenario != wanted {
            Err(bad(format!(
                "'{flag}' applies to --scenario {}, not {}",
                wanted.name(),
                scenario.name()
            )))
        } else {
            Ok(())
        }
    };
    only_in(flood.is_some(), "--flood", Scenario::Flood)?;
    only_in(idle.is_some(), "--idle", Scenario::Idle)?;
    only_in(idle_reconnect, "--idle-reconnect", Scenario::Idle)?;
    if clients.is_some() && scenario == Scenario::Flood {
        return Err(bad(
            "in --scenario flood the number of clients is '--flood N', not '--clients'".into(),
        ));
    }

    Ok(Options {
        url: match url {
            Some(url) => url,
            None => Url::parse(DEFAULT_URL).map_err(|e| invalid("--url", DEFAULT_URL, &e))?,
        },
        scenario,
        clients: clients.unwrap_or(DEFAULT_CLIENTS),
        flood: flood.unwrap_or(DEFAULT_FLOOD),
        idle: idle.unwrap_or(DEFAULT_IDLE),
        idle_reconnect,
        // Without either limit a run would never end; with only --requests, each request
        // is still bounded by --timeout-ms, so the run is too.
        duration: match (duration, requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (duration, _) => duration,
        },
        requests,
        connect_timeout,
        timeout,
        json,
        json_file,
        pid,
        server_stats,
    })
}

fn bad(message: String) -> ArgsError {
    ArgsError::Bad(message)
}

fn invalid(name: &str, value: &str, why: &str) -> ArgsError {
    bad(format!("invalid value '{value}' for '{name}': {why}"))
}

fn count(name: &str, value: &str, min: usize, max: usize) -> Result<usize, ArgsError> {
    match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            name,
            value,
            &format!("expected a whole number from {min} to {max}"),
        )),
    }
}

fn seconds(name: &str, value: &str) -> Result<Duration, ArgsError> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= MAX_DURATION_S => Ok(Duration::from_secs_f64(s)),
        _ => Err(invalid(
            name,
            value,
            &format!("expected seconds above 0 and up to {MAX_DURATION_S}, e.g. 5 or 0.5"),
        )),
    }
}

fn millis(name: &str, value: &str) -> Result<Duration, ArgsError> {
    match value.parse::<u64>() {
        Ok(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(invalid(
            name,
            value,
            &format!("expected whole milliseconds from 1 to {MAX_TIMEOUT_MS}"),
        )),
    }
}

/// The `--help` text, including the keys of the `--json` object.
pub fn usage() -> String {
    format!(
        "\
loadgen: many clients asking one server for a page, and what they saw

Usage: loadgen [OPTIONS]

Each client is a thread that connects, sends one HTTP/1.1 GET, reads the whole response
(by Content-Length), checks the status, closes, and starts again: a closed loop, so a
slow server slows its clients down instead of being buried under requests. On Linux the
client threads run as SCHED_BATCH, so that their wake-ups do not preempt the server they
share the cores with.

Target:
  --url URL                 page to GET, http://HOST:PORT/PATH; loopback only, since a load
                            generator aimed at someone else's machine is an attack
                            [default: {DEFAULT_URL}]
Load:
  --scenario S              normal: --clients healthy clients;
                            flood: --flood clients at once, more than a stage has threads;
                            idle: --clients healthy clients while --idle connections send
                            nothing [default: normal]
  --clients C               healthy clients (normal, idle); a few per core is plenty to
                            keep a fast server busy [default: {DEFAULT_CLIENTS}]
  --flood N                 clients in the flood scenario; enough that a thread per
                            connection shows in the server's thread count [default: {DEFAULT_FLOOD}]
  --idle K                  idle connections in the idle scenario; more than the stages'
                            4 workers, so they can hold every one [default: {DEFAULT_IDLE}]
  --idle-reconnect          an idle connection the server closes connects again at once
  --requests N              stop after N requests from all clients together [default: none]
  --duration S              stop after S seconds, decimals allowed; requests still running
                            then are counted as unfinished [default: {}, none if only
                            --requests is given]
  --connect-timeout-ms MS   how long a connect may take [default: {}]
  --timeout-ms MS           how long one request may take, connect to last byte; longer
                            than stage 05's 5 s header deadline, so idle shows 05
                            recovering [default: {}]
Report:
  --json                    print one JSON object (keys below) instead of the report
  --json-file FILE          also write the JSON object to FILE
  --pid PID                 sample /proc/PID/status during the run: the server's peak
                            threads and peak memory (Linux only)
  --no-server-stats         do not ask the server for GET /stats after the run
  -h, --help                print this help

Exit status: 0 when the run took place (whatever the server answered), 1 when the server
cannot be reached or the run cannot start, 2 on a bad command line.

JSON keys (one object, no nesting; null where a value is not known):
  url scenario clients idle idle_reconnect   what was asked
  requests_limit duration_limit_s            the stop conditions (null = none)
  connect_timeout_ms timeout_ms              the timeouts
  elapsed_s                                  the run: --duration, or until the last
                                             response
  sent ok failed unfinished                  requests: sent = ok + failed + unfinished
  refused reset timeout bad_status other     failed, by kind
  rps                                        ok responses per second of elapsed_s
  min_ms p50_ms p90_ms p99_ms max_ms mean_ms latency of ok responses
  idle_connects idle_cut                     idle connections opened, and closed by
                                             the server
  pid peak_threads peak_rss_kb               from /proc/PID/status (with --pid)
  server_stage server_accepted server_served server_errors server_timeouts
  server_peak_in_flight server_peak_connections_open
                                             from the server's GET /stats after the run
",
        DEFAULT_DURATION.as_secs(),
        DEFAULT_CONNECT_TIMEOUT.as_millis(),
        DEFAULT_TIMEOUT.as_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_list(list: &[&str]) -> Result<Options, ArgsError> {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn message(list: &[&str]) -> String {
        match parse_list(list) {
            Err(ArgsError::Bad(message)) => message,
            other => panic!("{list:?} should be refused, gave {other:?}"),
        }
    }

    #[test]
    fn no_arguments_give_the_documented_defaults() {
        let options = parse_list(&[]).unwrap();
        assert_eq!(options.url.authority, "127.0.0.1:1729");
        assert_eq!(options.url.path, "/");
        assert_eq!(options.scenario, Scenario::Normal);
        assert_eq!(options.healthy_clients(), DEFAULT_CLIENTS);
        assert_eq!(options.idle_clients(), 0);
        assert_eq!(options.requests, None);
        assert_eq!(options.duration, Some(DEFAULT_DURATION));
        assert_eq!(options.timeout, Duration::from_secs(10));
        assert!(options.server_stats && !options.json);
        let help = usage();
        assert!(help.contains("[default: http://127.0.0.1:1729/]"));
        assert!(help.contains("[default: 10000]"));
    }

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

    #[test]
    fn requests_alone_lift_the_default_duration() {
        let options = parse_list(&["--requests", "100"]).unwrap();
        assert_eq!((options.requests, options.duration), (Some(100), None));
        let both = parse_list(&["--requests", "100", "--duration", "3"]).unwrap();
        assert_eq!(both.duration, Some(Duration::from_secs(3)));
    }

    #[test]
    fn each_scenario_counts_its_own_clients() {
        let flood = parse_list(&["--scenario", "flood", "--flood", "200"]).unwrap();
        assert_eq!((flood.healthy_clients(), flood.idle_clients()), (200, 0));
        let idle = parse_list(&["--scenario", "idle", "--idle-reconnect"]).unwrap();
        assert_eq!((idle.healthy_clients(), idle.idle_clients()), (10, 8));
        assert!(idle.idle_reconnect);
    }

    #[test]
    fn a_flag_for_another_scenario_is_refused() {
        assert!(message(&["--idle", "3"]).contains("applies to --scenario idle"));
        assert!(message(&["--idle-reconnect"]).contains("applies to --scenario idle"));
        assert!(message(&["--flood", "3"]).contains("applies to --scenario flood"));
        assert!(message(&["--scenario", "flood", "--clients", "3"]).contains("--flood N"));
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (list, needle) in [
            (&["--clients", "0"][..], "'--clients'"),
            (&["--clients", "many"][..], "'--clients'"),
            (&["--duration", "0"][..], "'--duration'"),
            (&["--duration", "-1"][..], "'--duration'"),
            (&["--timeout-ms", "0"][..], "'--timeout-ms'"),
            (&["--scenario", "storm"][..], "normal, flood or idle"),
            (&["--url", "https://127.0.0.1/"][..], "'--url'"),
            (&["--requests"][..], "needs a value"),
            (&["--json=yes"][..], "takes no value"),
            (&["--bogus", "1"][..], "unknown flag '--bogus'"),
            (&["--bogus"][..], "unknown flag '--bogus'"),
            (&["stray"][..], "unexpected argument 'stray'"),
        ] {
            assert!(
                message(list).contains(needle),
                "{list:?}: {}",
                message(list)
            );
        }
    }

    #[test]
    fn help_is_not_an_error() {
        assert_eq!(parse_list(&["-h"]).unwrap_err(), ArgsError::Help);
        assert_eq!(
            parse_list(&["--clients", "3", "--help"]).unwrap_err(),
            ArgsError::Help
        );
    }
}
