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
    /// `--clients` healthy clients surrounded by `--idle` idle and `--trickle` trickling
    /// connections that come back as soon as the server cuts them.
    Siege,
    /// `--clients` healthy clients measured while `--held` idle connections are held open.
    Held,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Normal,
        Scenario::Flood,
        Scenario::Idle,
        Scenario::Siege,
        Scenario::Held,
    ];

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
    /// files written and `/stats`.
    pub fn descriptors_needed(&self) -> u64 {
        (self.healthy_clients()
            + self.idle_clients()
            + self.trickle_clients()
            + self.held_connections()
            + 32) as u64
    }
}

/// Defaults, each with its reason in [`usage`].
pub const DEFAULT_URL: &str = "http://127.0.0.1:1729/";
pub const DEFAULT_CLIENTS: usize = 10;
pub const DEFAULT_FLOOD: usize = 1000;
pub const DEFAULT_IDLE: usize = 8;
pub const DEFAULT_TRICKLE: usize = 8;
pub const DEFAULT_TRICKLE_MS: u64 = 200;
pub const DEFAULT_HELD: usize = 10_000;
pub const DEFAULT_HELD_RATE: u64 = 2_000;
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3000);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);

/// Upper bounds that keep a typo from starting a run nobody wants.
const MAX_CLIENTS: usize = 10_000;
const MAX_HELD: usize = 100_000;
/// One request every 100 s at the slowest: a timetable that still fits in a run.
const MIN_RATE: f64 = 0.01;
const MAX_RATE: f64 = 1_000_000.0;
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
const SWITCHES: &[&str] = &[
    "--idle-reconnect",
    "--json",
    "--no-server-stats",
    "--keep-alive",
    "--no-live",
];
/// Flags that take one.
const WITH_VALUES: &[&str] = &[
    "--url",
    "--scenario",
    "--clients",
    "--flood",
    "--idle",
    "--trickle",
    "--trickle-ms",
    "--held",
    "--held-rate",
    "--rate",
    "--requests",
    "--duration",
    "--connect-timeout-ms",
    "--timeout-ms",
    "--json-file",
    "--pid",
    "--trace",
    "--series",
];

/// Parses the arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Options, ArgsError> {
    let mut url = None;
    let mut scenario = Scenario::Normal;
    let mut clients = None;
    let mut flood = None;
    let mut idle = None;
    let mut idle_reconnect = false;
    let mut trickle = None;
    let mut trickle_ms = None;
    let mut held = None;
    let mut held_rate = None;
    let mut keep_alive = false;
    let mut rate = None;
    let mut trace = None;
    let mut series = None;
    let mut live = true;
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
                "--keep-alive" => keep_alive = true,
                "--no-live" => live = false,
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
                scenario = Scenario::ALL
                    .into_iter()
                    .find(|s| s.name() == value)
                    .ok_or_else(|| {
                        invalid(name, value, "expected normal, flood, idle, siege or held")
                    })?;
            }
            "--clients" => clients = Some(count(name, value, 1, MAX_CLIENTS)?),
            "--flood" => flood = Some(count(name, value, 1, MAX_CLIENTS)?),
            "--idle" => idle = Some(count(name, value, 0, MAX_CLIENTS)?),
            "--trickle" => trickle = Some(count(name, value, 0, MAX_CLIENTS)?),
            "--trickle-ms" => trickle_ms = Some(millis(name, value)?),
            "--held" => held = Some(count(name, value, 1, MAX_HELD)?),
            "--held-rate" => held_rate = Some(count(name, value, 1, 100_000)? as u64),
            "--rate" => rate = Some(per_second(name, value)?),
            "--requests" => requests = Some(count(name, value, 1, usize::MAX)? as u64),
            "--duration" => duration = Some(seconds(name, value)?),
            "--connect-timeout-ms" => connect_timeout = millis(name, value)?,
            "--timeout-ms" => timeout = millis(name, value)?,
            "--json-file" => json_file = Some(PathBuf::from(value)),
            "--pid" => pid = Some(count(name, value, 1, u32::MAX as usize)? as u32),
            "--trace" => trace = Some(PathBuf::from(value)),
            "--series" => series = Some(PathBuf::from(value)),
            // WITH_VALUES and this match list the same names.
            _ => return Err(bad(format!("unknown flag '{name}' (see --help)"))),
        }
    }

    // A flag that the chosen scenario would ignore is more likely a mistake than a wish.
    let only_in = |given: bool, flag: &str, wanted: &[Scenario]| {
        if given && !wanted.contains(&scenario) {
            let names: Vec<&str> = wanted.iter().map(|s| s.name()).collect();
            Err(bad(format!(
                "'{flag}' applies to --scenario {}, not {}",
                names.join(" or "),
                scenario.name()
            )))
        } else {
            Ok(())
        }
    };
    only_in(flood.is_some(), "--flood", &[Scenario::Flood])?;
    only_in(idle.is_some(), "--idle", &[Scenario::Idle, Scenario::Siege])?;
    if idle_reconnect && scenario == Scenario::Siege {
        return Err(bad(
            "'--idle-reconnect' is always on in --scenario siege; leave it out".into(),
        ));
    }
    only_in(idle_reconnect, "--idle-reconnect", &[Scenario::Idle])?;
    only_in(trickle.is_some(), "--trickle", &[Scenario::Siege])?;
    only_in(trickle_ms.is_some(), "--trickle-ms", &[Scenario::Siege])?;
    only_in(held.is_some(), "--held", &[Scenario::Held])?;
    only_in(held_rate.is_some(), "--held-rate", &[Scenario::Held])?;
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
        trickle: trickle.unwrap_or(DEFAULT_TRICKLE),
        trickle_every: trickle_ms.unwrap_or(Duration::from_millis(DEFAULT_TRICKLE_MS)),
        held: held.unwrap_or(DEFAULT_HELD),
        held_rate: held_rate.unwrap_or(DEFAULT_HELD_RATE),
        keep_alive,
        rate,
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
        trace,
        series,
        live,
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

fn per_second(name: &str, value: &str) -> Result<f64, ArgsError> {
    match value.parse::<f64>() {
        Ok(r) if (MIN_RATE..=MAX_RATE).contains(&r) => Ok(r),
        _ => Err(invalid(
            name,
            value,
            &format!("expected requests per second from {MIN_RATE} to {MAX_RATE}, e.g. 200 or 0.5"),
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
slow server slows its clients down instead of being buried under requests. With --rate
the requests run on a timetable instead (an open loop). On Linux the client threads run
as SCHED_BATCH, so that their wake-ups do not preempt the server they share the cores
with.

Target:
  --url URL                 page to GET, http://HOST:PORT/PATH; loopback only, since a load
                            generator aimed at someone else's machine is an attack
                            [default: {DEFAULT_URL}]
Load:
  --scenario S              normal: --clients healthy clients;
                            flood: --flood clients at once, more than a stage has threads;
                            idle: --clients healthy clients while --idle connections send
                            nothing;
                            siege: --clients healthy clients among --idle idle and --trickle
                            trickling connections, which come back as soon as they are cut;
                            held: --clients healthy clients while --held idle connections
                            are held open by a few threads [default: normal]
  --clients C               healthy clients (all but flood); a few per core is plenty to
                            keep a fast server busy. With --rate, the connections available
                            to the timetable: make it larger than rate x expected latency,
                            or requests wait for a free client [default: {DEFAULT_CLIENTS}]
  --flood N                 clients in the flood scenario; enough that a thread per
                            connection shows in the server's thread count [default: {DEFAULT_FLOOD}]
  --idle K                  idle connections in idle and siege; more than the stages'
                            4 workers, so they can hold every one [default: {DEFAULT_IDLE}]
  --idle-reconnect          in idle: an idle connection the server closes connects again at
                            once (always so in siege)
  --trickle T               in siege: connections that send a valid request one byte at a
                            time; with the idle ones, four times the 4 workers of stages
                            04-05, so that they hold every worker even while some are
                            reconnecting [default: {DEFAULT_TRICKLE}]
  --trickle-ms MS           in siege: the pause between two bytes; a request of about 80
                            bytes then takes 16 s, far beyond a header deadline
                            [default: {DEFAULT_TRICKLE_MS}]
  --held N                  in held: idle connections held open, from one thread that
                            polls them; enough to be far beyond a thread per connection
                            [default: {DEFAULT_HELD}]
  --held-rate R             in held: connections opened per second, so that a server that
                            starts a thread per connection (about 40 us each) keeps up;
                            10 000 then take 5 s [default: {DEFAULT_HELD_RATE}]
  --keep-alive              HTTP/1.1 persistent connections: no Connection: close, and each
                            client sends its next request on the same connection while the
                            server keeps it open; in held, each held connection makes one
                            request first, so it is held as an idle kept connection
                            [default: off, a connection per request]
  --rate R                  open loop: R requests per second from all clients together,
                            each due at start + i/R whatever the server does; latency counts
                            from when a request was due, so a stall shows as the wait it
                            caused [default: none, the closed loop]
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
  --no-server-stats         never ask the server for GET /stats (after the run, and during
                            it for the live view and --series)
  --trace FILE              one CSV row per request of every client, written after the run
                            (at most {TRACE_CAP} rows), with the columns
{TRACE_HEADER}
  --series FILE             the run sampled every 100 ms, as CSV, with the columns
{SERIES_HEADER}
  --no-live                 no live view, even when stderr is a terminal [default: live view
                            on a terminal; elsewhere a progress line every 5 s of a run
                            longer than that]
  -h, --help                print this help

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
  stats_polls                                GET /stats sent during the run (counted by
                                             the server among its connections)
",
        DEFAULT_DURATION.as_secs(),
        DEFAULT_CONNECT_TIMEOUT.as_millis(),
        DEFAULT_TIMEOUT.as_millis(),
        TRACE_HEADER = columns(crate::trace::HEADER),
        TRACE_CAP = crate::live::grouped(crate::trace::CAP),
        SERIES_HEADER = columns(crate::watch::HEADER),
    )
}

/// A CSV header for the help: cut after a comma into lines that fit the help's 92 columns,
/// indented under the flags' descriptions.
fn columns(header: &str) -> String {
    const INDENT: &str = "                            ";
    let mut lines = vec![String::new()];
    for column in header.split_inclusive(',') {
        if let Some(line) = lines.last_mut().filter(|l| l.len() + column.len() <= 58) {
            line.push_str(column);
        } else {
            lines.push(column.to_string());
        }
    }
    lines
        .iter()
        .map(|line| format!("{INDENT}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
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
            (
                &["--scenario", "storm"][..],
                "normal, flood, idle, siege or held",
            ),
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
        assert_eq!(
            siege.trickle_every,
            Duration::from_millis(DEFAULT_TRICKLE_MS)
        );
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
            (&["--rate", "0"][..], "'--rate'"),
            (&["--rate", "0.001"][..], "from 0.01 to"),
            (&["--rate", "NaN"][..], "'--rate'"),
            (&["--rate", "fast"][..], "'--rate'"),
            (&["--scenario", "held", "--held", "0"][..], "'--held'"),
            (
                &["--scenario", "siege", "--trickle-ms", "0"][..],
                "'--trickle-ms'",
            ),
            (&["--scenario", "storm"][..], "siege or held"),
        ] {
            assert!(message(list).contains(needle), "{list:?}");
        }
    }

    /// The help shows both CSV headers whole, cut only after a comma, and no line of it is
    /// wider than 92 columns.
    #[test]
    fn the_help_shows_the_csv_columns_and_fits_92_columns() {
        let help = usage();
        for header in [crate::trace::HEADER, crate::watch::HEADER] {
            let shown: String = columns(header).split_whitespace().collect();
            assert_eq!(shown, header);
        }
        for line in help.lines() {
            assert!(line.chars().count() <= 92, "too wide: {line}");
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
