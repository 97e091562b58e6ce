//! Command-line flags, spelled the same in every stage.
//!
//! Every stage takes the common flags (`--addr`, `--work-ms`, `--cpu-ms`, `--quiet`, ...); a
//! stage names the extra ones its idea needs (`--max-conns` from stage 03 on, and so on) and
//! rejects the rest, so `--help` of a stage lists exactly the knobs that stage has.
//!
//! Each flag is one row of [`SPECS`]: its spelling, its default, the reason for the default,
//! and the function that sets it. The defaults are set by those same functions from the same
//! text `--help` prints, so the help can never say one default while the code uses another.
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// A flag that only some stages accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// `--max-conns N`: stage 03's semaphore, 4 by default.
    MaxConns,
    /// `--workers N`: stage 04's pool size.
    Workers,
    /// `--queue Q`: stage 04's bounded queue in front of the workers.
    Queue,
    /// `--header-timeout-ms MS`: stage 05's deadline for the request.
    HeaderTimeout,
    /// `--write-timeout-ms MS`: stage 05's deadline for writing the response.
    WriteTimeout,
    /// `--max-conns N` of the event loop (stages 06 and 07): connections held, 10 000 by default.
    MaxHeld,
    /// `--keep-alive-ms MS` and `--max-requests N`: stage 07's persistent connections.
    KeepAlive,
}

impl Flag {
    /// The stages that have this flag, for the message about a flag this stage lacks.
    fn stages(self) -> &'static str {
        match self {
            Flag::MaxConns => "03_semaphore",
            Flag::Workers | Flag::Queue => "04_thread_pool and 05_timeouts",
            Flag::HeaderTimeout | Flag::WriteTimeout => {
                "05_timeouts, 06_event_loop and 07_keep_alive"
            }
            Flag::MaxHeld => "06_event_loop and 07_keep_alive",
            Flag::KeepAlive => "07_keep_alive",
        }
    }
}

/// Everything a stage can be told on its command line.
///
/// Fields of flags a stage does not accept keep the values of [`Config::default`] and are
/// simply not used.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen. Loopback by default so nothing outside this machine reaches a
    /// teaching server; port 0 asks the kernel for any free port (tests and scripts use it).
    pub addr: SocketAddr,
    /// Simulated work per request that *waits* (a sleep, or a timer in the event loop): what
    /// makes one-at-a-time visible.
    pub work: Duration,
    /// Simulated work per request that *computes*: a busy loop on the serving thread.
    pub cpu: Duration,
    /// The size of the `GET /` body.
    pub body_bytes: usize,
    /// No per-request log lines (load tests would spend their time printing).
    pub quiet: bool,
    /// How long Ctrl-C waits for connections in progress before giving up on them.
    pub drain: Duration,
    /// Length of the kernel's queue of connections not yet accepted (the listen backlog).
    pub backlog: u32,
    /// Stage 03: how many connections are served at once; stages 06-07: held at once.
    pub max_conns: usize,
    /// Stage 04+: how many worker threads the pool has.
    pub workers: usize,
    /// Stage 04+: how many accepted connections may wait for a worker.
    pub queue: usize,
    /// Stage 05+: the total time a client has to send its request, head and body.
    pub header_timeout: Duration,
    /// Stage 05+: the total time to write a response.
    pub write_timeout: Duration,
    /// Stage 07: how long an idle persistent connection is kept.
    pub keep_alive: Duration,
    /// Stage 07: the most requests on one connection.
    pub max_requests: u64,
    /// The stage-only flags this stage accepted (used by `/stats` and `--help`).
    pub extra: &'static [Flag],
}

impl Default for Config {
    /// The values of the common flags' defaults; [`parse`] then sets every flag the stage has
    /// from its own default in [`SPECS`].
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 1729)),
            work: Duration::from_millis(1000),
            cpu: Duration::ZERO,
            body_bytes: HELLO.len(),
            quiet: false,
            drain: Duration::from_millis(10_000),
            backlog: 1024,
            max_conns: 4,
            workers: 4,
            queue: 16,
            header_timeout: Duration::from_millis(5000),
            write_timeout: Duration::from_millis(5000),
            keep_alive: Duration::from_millis(5000),
            max_requests: 1000,
            extra: &[],
        }
    }
}

/// What `GET /` says (repeated, or cut, to `--body-bytes`).
pub const HELLO: &str = "Hello World\n";

impl Config {
    /// Whether this stage accepts `flag`.
    pub fn has(&self, flag: Flag) -> bool {
        self.extra.contains(&flag)
    }
}

/// What parsing the command line can end in, other than a `Config`.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// `--help` or `-h`: print the usage and exit 0.
    Help,
    /// A flag that does not exist (here), a missing value or a value that does not parse.
    Bad(String),
}

/// One flag: its line in `--help` (spelling, value name, default and the reason for it) and
/// how its value is set.
pub struct Spec {
    pub name: &'static str,
    /// The value's name in `--help`; empty for a switch that takes none.
    pub value: &'static str,
    /// The default, as typed on a command line; empty for a switch (off).
    pub default: &'static str,
    pub help: &'static str,
    /// The stages that have it: `None` for every stage.
    pub only: Option<Flag>,
    /// Sets the flag from its value (the empty string for a switch).
    set: fn(&mut Config, &str) -> Result<(), String>,
}

/// Every flag of every stage.
pub const SPECS: &[Spec] = &[
    Spec {
        name: "--addr",
        value: "ADDR",
        default: "127.0.0.1:1729",
        help: "address to listen on; loopback keeps a teaching server private, port 0 picks a free port",
        only: None,
        set: |c, v| {
            c.addr = v
                .parse()
                .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:1729 or [::1]:0".to_string())?;
            Ok(())
        },
    },
    Spec {
        name: "--work-ms",
        value: "MS",
        default: "1000",
        help: "simulated work per request that waits, like a database call; a second is long enough to see two curls wait for each other",
        only: None,
        set: |c, v| {
            c.work = millis(v, 0, 600_000)?;
            Ok(())
        },
    },
    Spec {
        name: "--cpu-ms",
        value: "MS",
        default: "0",
        help: "simulated work per request that computes: a busy loop on the serving thread, which no other client can use meanwhile",
        only: None,
        set: |c, v| {
            c.cpu = millis(v, 0, 60_000)?;
            Ok(())
        },
    },
    Spec {
        name: "--body-bytes",
        value: "N",
        default: "12",
        help: "size of the GET / body (Hello World, repeated); past the socket's send buffer a write must wait for the client to read",
        only: None,
        set: |c, v| {
            c.body_bytes = count(v, 0, 64 * 1024 * 1024)?;
            Ok(())
        },
    },
    Spec {
        name: "--max-conns",
        value: "N",
        default: "4",
        help: "connections served at once; small enough to watch the rest wait in the backlog",
        only: Some(Flag::MaxConns),
        set: |c, v| {
            c.max_conns = count(v, 1, 100_000)?;
            Ok(())
        },
    },
    Spec {
        name: "--max-conns",
        value: "N",
        default: "10000",
        help: "connections held at once, each a descriptor and a few hundred bytes; at the limit the rest wait in the backlog",
        only: Some(Flag::MaxHeld),
        set: |c, v| {
            c.max_conns = count(v, 1, 1_000_000)?;
            Ok(())
        },
    },
    Spec {
        name: "--workers",
        value: "N",
        default: "4",
        help: "threads in the pool; about the core count, since the work here is short",
        only: Some(Flag::Workers),
        set: |c, v| {
            c.workers = count(v, 1, 1024)?;
            Ok(())
        },
    },
    Spec {
        name: "--queue",
        value: "Q",
        default: "16",
        help: "accepted connections that may wait for a worker; beyond it clients wait in the backlog",
        only: Some(Flag::Queue),
        set: |c, v| {
            c.queue = count(v, 0, 100_000)?;
            Ok(())
        },
    },
    Spec {
        name: "--header-timeout-ms",
        value: "MS",
        default: "5000",
        help: "total time to send the request, head and body; generous for people, short for idlers",
        only: Some(Flag::HeaderTimeout),
        set: |c, v| {
            c.header_timeout = positive_millis(v)?;
            Ok(())
        },
    },
    Spec {
        name: "--write-timeout-ms",
        value: "MS",
        default: "5000",
        help: "total time to write a response to a client that reads slowly or not at all",
        only: Some(Flag::WriteTimeout),
        set: |c, v| {
            c.write_timeout = positive_millis(v)?;
            Ok(())
        },
    },
    Spec {
        name: "--keep-alive-ms",
        value: "MS",
        default: "5000",
        help: "how long an idle persistent connection is kept; short, since a kept connection holds a descriptor and a client may never come back",
        only: Some(Flag::KeepAlive),
        set: |c, v| {
            c.keep_alive = positive_millis(v)?;
            Ok(())
        },
    },
    Spec {
        name: "--max-requests",
        value: "N",
        default: "1000",
        help: "requests on one connection before the server closes it, so no client keeps one for ever",
        only: Some(Flag::KeepAlive),
        set: |c, v| {
            c.max_requests = count(v, 1, 1_000_000_000)? as u64;
            Ok(())
        },
    },
    Spec {
        name: "--backlog",
        value: "N",
        default: "1024",
        help: "connections the kernel queues before accept(); std's 128 overflows at 200 clients",
        only: None,
        set: |c, v| {
            c.backlog = count(v, 1, 65_535)? as u32;
            Ok(())
        },
    },
    Spec {
        name: "--drain-ms",
        value: "MS",
        default: "10000",
        help: "on Ctrl-C, how long to wait for requests in progress before cutting them",
        only: None,
        set: |c, v| {
            c.drain = millis(v, 0, 600_000)?;
            Ok(())
        },
    },
    Spec {
        name: "--quiet",
        value: "",
        default: "",
        help: "no per-request log lines (for load tests)",
        only: None,
        set: |c, _| {
            c.quiet = true;
            Ok(())
        },
    },
];

fn millis(value: &str, min: u64, max: u64) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(ms) if (min..=max).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(format!("expected whole milliseconds from {min} to {max}")),
    }
}

fn positive_millis(value: &str) -> Result<Duration, String> {
    millis(value, 1, 600_000).map_err(|e| match value.parse::<u64>() {
        Ok(0) => "must be at least 1".to_string(),
        _ => e,
    })
}

fn count(value: &str, min: usize, max: usize) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from {min} to {max}")),
    }
}

/// The flags `extra` gives a stage, in `--help` order.
fn specs_for(extra: &[Flag]) -> impl Iterator<Item = &'static Spec> + '_ {
    SPECS
        .iter()
        .filter(move |spec| spec.only.is_none_or(|f| extra.contains(&f)))
}

/// Parses the process's arguments; on `--help` prints the usage and exits 0, on a bad flag
/// prints one line naming it plus the usage and exits 2. A closed stdout or stderr is no
/// reason to panic: the exit code still says how it went.
pub fn from_args(stage: &str, extra: &'static [Flag]) -> Config {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(extra, &args) {
        Ok(config) => config,
        Err(ArgsError::Help) => {
            let _ = std::io::stdout().write_all(usage(stage, extra).as_bytes());
            std::process::exit(0);
        }
        Err(ArgsError::Bad(message)) => {
            let text = format!("{stage}: {message}\n\n{}", usage(stage, extra));
            let _ = std::io::stderr().write_all(text.as_bytes());
            std::process::exit(2);
        }
    }
}

/// Parses `args` (without the program name). Accepts `--flag VALUE` and `--flag=VALUE`.
pub fn parse(extra: &'static [Flag], args: &[String]) -> Result<Config, ArgsError> {
    let mut config = Config {
        extra,
        ..Config::default()
    };
    for spec in specs_for(extra).filter(|spec| !spec.default.is_empty()) {
        (spec.set)(&mut config, spec.default).map_err(|why| {
            ArgsError::Bad(format!(
                "default '{}' of '{}': {why}",
                spec.default, spec.name
            ))
        })?;
    }
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Err(ArgsError::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (arg.as_str(), None),
        };
        let spec = specs_for(extra)
            .find(|spec| spec.name == name)
            .ok_or_else(|| ArgsError::Bad(unknown(name)))?;
        let value = if spec.value.is_empty() {
            if inline.is_some() {
                return Err(ArgsError::Bad(format!("'{name}' takes no value")));
            }
            String::new()
        } else {
            match inline.or_else(|| args.next().cloned()) {
                Some(value) => value,
                None => {
                    return Err(ArgsError::Bad(format!(
                        "'{name}' needs a value ({})",
                        spec.value
                    )))
                }
            }
        };
        (spec.set)(&mut config, &value).map_err(|why| {
            ArgsError::Bad(format!("invalid value '{value}' for '{name}': {why}"))
        })?;
    }
    Ok(config)
}

/// "unknown flag", and which stages have it if some other stage does.
fn unknown(name: &str) -> String {
    let elsewhere: Vec<&str> = SPECS
        .iter()
        .filter(|spec| spec.name == name)
        .filter_map(|spec| spec.only.map(Flag::stages))
        .collect();
    match elsewhere[..] {
        [] => format!("unknown flag '{name}'"),
        [one] => format!("unknown flag '{name}' (not in this stage; {one} has it)"),
        ref several => format!(
            "unknown flag '{name}' (not in this stage; {} have it)",
            several.join(", ")
        ),
    }
}

/// The `--help` text: every flag this stage accepts, its default and why.
pub fn usage(stage: &str, extra: &[Flag]) -> String {
    let mut out = format!("Usage: {stage} [OPTIONS]\n\nOptions:\n");
    for spec in specs_for(extra) {
        let flag = format!("{} {}", spec.name, spec.value);
        let _ = write!(out, "  {flag:<24}{}", spec.help);
        if !spec.default.is_empty() {
            let _ = write!(out, " [default: {}]", spec.default);
        }
        out.push('\n');
    }
    out.push_str("  -h, --help              print this help\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_match_the_help_text() {
        let config = parse(&[], &[]).unwrap();
        assert_eq!(config.addr.to_string(), "127.0.0.1:1729");
        assert_eq!(config.work, Duration::from_millis(1000));
        assert_eq!(config.cpu, Duration::ZERO);
        assert_eq!(config.body_bytes, HELLO.len());
        assert!(!config.quiet);
        let help = usage("01_single", &[]);
        assert!(help.contains("--addr ADDR"));
        assert!(help.contains("[default: 127.0.0.1:1729]"));
        assert!(!help.contains("--max-conns"), "stage 01 has no semaphore");
    }

    /// `--max-conns` is 4 in stage 03 and 10 000 in the event loop, each as its help says.
    #[test]
    fn a_flag_can_have_a_default_per_stage() {
        assert_eq!(parse(&[Flag::MaxConns], &[]).unwrap().max_conns, 4);
        assert_eq!(parse(&[Flag::MaxHeld], &[]).unwrap().max_conns, 10_000);
        assert!(usage("06_event_loop", &[Flag::MaxHeld]).contains("[default: 10000]"));
    }

    /// Every default in SPECS is a value its own flag accepts: the help cannot promise a
    /// default the parser would refuse.
    #[test]
    fn every_default_parses() {
        for spec in SPECS.iter().filter(|s| !s.default.is_empty()) {
            let mut config = Config::default();
            assert_eq!(
                (spec.set)(&mut config, spec.default),
                Ok(()),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn both_spellings_of_a_value_are_accepted() {
        let config = parse(
            &[],
            &args(&[
                "--work-ms",
                "0",
                "--addr=127.0.0.1:0",
                "--quiet",
                "--cpu-ms=5",
            ]),
        )
        .unwrap();
        assert_eq!(config.work, Duration::ZERO);
        assert_eq!(config.cpu, Duration::from_millis(5));
        assert_eq!(config.addr.port(), 0);
        assert!(config.quiet);
    }

    /// A switch sets its own field and nothing else (`--quiet` used to be set by *any*
    /// switch, which a second switch would have turned into a bug).
    #[test]
    fn a_switch_sets_only_its_own_field() {
        let quiet = parse(&[], &args(&["--quiet"])).unwrap();
        let plain = parse(&[], &[]).unwrap();
        assert!(quiet.quiet && !plain.quiet);
        assert_eq!(
            format!(
                "{:?}",
                Config {
                    quiet: false,
                    ..quiet
                }
            ),
            format!("{plain:?}")
        );
    }

    #[test]
    fn a_stage_rejects_flags_it_does_not_have_and_says_who_has_them() {
        let err = parse(&[], &args(&["--max-conns", "2"])).unwrap_err();
        assert_eq!(
            err,
            ArgsError::Bad(
                "unknown flag '--max-conns' (not in this stage; 03_semaphore, 06_event_loop \
                 and 07_keep_alive have it)"
                    .into()
            )
        );
        let err = parse(&[], &args(&["--keep-alive-ms", "2"])).unwrap_err();
        assert_eq!(
            err,
            ArgsError::Bad(
                "unknown flag '--keep-alive-ms' (not in this stage; 07_keep_alive has it)".into()
            )
        );
        let err = parse(&[], &args(&["--bogus"])).unwrap_err();
        assert_eq!(err, ArgsError::Bad("unknown flag '--bogus'".into()));
        let config = parse(&[Flag::MaxConns], &args(&["--max-conns", "2"])).unwrap();
        assert_eq!(config.max_conns, 2);
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (list, needle) in [
            (&["--work-ms", "soon"][..], "'--work-ms'"),
            (&["--addr", "localhost"][..], "'--addr'"),
            (&["--work-ms"][..], "needs a value"),
            (&["--quiet=yes"][..], "takes no value"),
            (&["--bogus"][..], "unknown flag '--bogus'"),
        ] {
            match parse(&[], &args(list)) {
                Err(ArgsError::Bad(message)) => assert!(message.contains(needle), "{message}"),
                other => panic!("{list:?} gave {other:?}"),
            }
        }
        let zero = parse(&[Flag::HeaderTimeout], &args(&["--header-timeout-ms", "0"]));
        assert!(matches!(zero, Err(ArgsError::Bad(m)) if m.contains("at least 1")));
        let no_workers = parse(&[Flag::Workers], &args(&["--workers", "0"]));
        assert!(matches!(no_workers, Err(ArgsError::Bad(_))));
    }

    #[test]
    fn help_is_not_an_error_exit() {
        assert_eq!(parse(&[], &args(&["--help"])).unwrap_err(), ArgsError::Help);
        assert_eq!(parse(&[], &args(&["-h"])).unwrap_err(), ArgsError::Help);
    }
}
