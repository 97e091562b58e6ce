//! Command-line flags, spelled the same in every stage.
//!
//! Every stage takes the common flags (`--addr`, `--work-ms`, `--quiet`, `--drain-ms`); a stage
//! names the extra ones its idea needs (`--max-conns` from stage 03 on, and so on) and rejects
//! the rest, so `--help` of a stage lists exactly the knobs that stage has.
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// A flag that only some stages accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// `--max-conns N`: stage 03's semaphore.
    MaxConns,
    /// `--workers N`: stage 04's pool size.
    Workers,
    /// `--queue Q`: stage 04's bounded queue in front of the workers.
    Queue,
    /// `--header-timeout-ms MS`: stage 05's deadline for the request head.
    HeaderTimeout,
    /// `--write-timeout-ms MS`: stage 05's limit on a stalled write.
    WriteTimeout,
}

/// Everything a stage can be told on its command line.
///
/// Fields of flags a stage does not accept keep their defaults and are simply not used.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen. Loopback by default so nothing outside this machine reaches a
    /// teaching server; port 0 asks the kernel for any free port (tests and scripts use it).
    pub addr: SocketAddr,
    /// Simulated processing time per request: what makes one-at-a-time visible.
    pub work: Duration,
    /// No per-request log lines (load tests would spend their time printing).
    pub quiet: bool,
    /// How long Ctrl-C waits for connections in progress before giving up on them.
    pub drain: Duration,
    /// Length of the kernel's queue of connections not yet accepted (the listen backlog).
    pub backlog: u32,
    /// Stage 03+: how many connections are served at once.
    pub max_conns: usize,
    /// Stage 04+: how many worker threads the pool has.
    pub workers: usize,
    /// Stage 04+: how many accepted connections may wait for a free worker.
    pub queue: usize,
    /// Stage 05: the total time a client has to send its request head.
    pub header_timeout: Duration,
    /// Stage 05: how long one write may stall on a client that stopped reading.
    pub write_timeout: Duration,
    /// The stage-only flags this stage accepted (used by `/stats` and `--help`).
    pub extra: &'static [Flag],
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 1729)),
            work: Duration::from_millis(1000),
            quiet: false,
            drain: Duration::from_millis(10_000),
            backlog: 1024,
            max_conns: 4,
            workers: 4,
            queue: 16,
            header_timeout: Duration::from_millis(5000),
            write_timeout: Duration::from_millis(5000),
            extra: &[],
        }
    }
}

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

/// One flag's line in `--help`: spelling, value name, default and the reason for it.
struct Spec {
    name: &'static str,
    value: &'static str,
    default: &'static str,
    help: &'static str,
    only: Option<Flag>,
}

const SPECS: &[Spec] = &[
    Spec {
        name: "--addr",
        value: "ADDR",
        default: "127.0.0.1:1729",
        help: "address to listen on; loopback keeps a teaching server private, port 0 picks a free port",
        only: None,
    },
    Spec {
        name: "--work-ms",
        value: "MS",
        default: "1000",
        help: "simulated work per request; a second is long enough to see two curls wait for each other",
        only: None,
    },
    Spec {
        name: "--max-conns",
        value: "N",
        default: "4",
        help: "connections served at once; small enough to watch the rest wait in the backlog",
        only: Some(Flag::MaxConns),
    },
    Spec {
        name: "--workers",
        value: "N",
        default: "4",
        help: "threads in the pool; about the core count, since the work here is short",
        only: Some(Flag::Workers),
    },
    Spec {
        name: "--queue",
        value: "Q",
        default: "16",
        help: "accepted connections that may wait for a worker; beyond it clients wait in the backlog",
        only: Some(Flag::Queue),
    },
    Spec {
        name: "--header-timeout-ms",
        value: "MS",
        default: "5000",
        help: "total time to send the request head; generous for people, short for idlers",
        only: Some(Flag::HeaderTimeout),
    },
    Spec {
        name: "--write-timeout-ms",
        value: "MS",
        default: "5000",
        help: "how long one write may stall on a client that stopped reading",
        only: Some(Flag::WriteTimeout),
    },
    Spec {
        name: "--backlog",
        value: "N",
        default: "1024",
        help: "connections the kernel queues before accept(); std's 128 overflows at 200 clients",
        only: None,
    },
    Spec {
        name: "--drain-ms",
        value: "MS",
        default: "10000",
        help: "on Ctrl-C, how long to wait for requests in progress before cutting them",
        only: None,
    },
    Spec {
        name: "--quiet",
        value: "",
        default: "",
        help: "no per-request log lines (for load tests)",
        only: None,
    },
];

/// Parses the process's arguments; on `--help` prints the usage and exits 0, on a bad flag
/// prints one line naming it plus the usage and exits 2.
pub fn from_args(stage: &str, extra: &'static [Flag]) -> Config {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(extra, &args) {
        Ok(config) => config,
        Err(ArgsError::Help) => {
            print!("{}", usage(stage, extra));
            std::process::exit(0);
        }
        Err(ArgsError::Bad(message)) => {
            eprintln!("{stage}: {message}\n");
            eprint!("{}", usage(stage, extra));
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
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Err(ArgsError::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (arg.as_str(), None),
        };
        let spec = SPECS
            .iter()
            .find(|spec| spec.name == name && spec.only.is_none_or(|f| extra.contains(&f)))
            .ok_or_else(|| ArgsError::Bad(format!("unknown flag '{name}'")))?;
        if spec.value.is_empty() {
            if inline.is_some() {
                return Err(ArgsError::Bad(format!("'{name}' takes no value")));
            }
            config.quiet = true;
            continue;
        }
        let value = match inline.or_else(|| args.next().cloned()) {
            Some(value) => value,
            None => {
                return Err(ArgsError::Bad(format!(
                    "'{name}' needs a value ({})",
                    spec.value
                )))
            }
        };
        apply(&mut config, name, &value)?;
    }
    Ok(config)
}

fn apply(config: &mut Config, name: &str, value: &str) -> Result<(), ArgsError> {
    let bad = |what: &str| ArgsError::Bad(format!("invalid value '{value}' for '{name}': {what}"));
    let millis = |max: u64| match value.parse::<u64>() {
        Ok(ms) if ms <= max => Ok(Duration::from_millis(ms)),
        _ => Err(bad(&format!("expected whole milliseconds from 0 to {max}"))),
    };
    let positive_millis = |max: u64| match millis(max)? {
        d if d.is_zero() => Err(bad("must be at least 1")),
        d => Ok(d),
    };
    let count = |min: usize, max: usize| match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad(&format!("expected a whole number from {min} to {max}"))),
    };
    match name {
        "--addr" => {
            config.addr = value
                .parse()
                .map_err(|_| bad("expected IP:PORT, e.g. 127.0.0.1:1729 or [::1]:0"))?
        }
        "--work-ms" => config.work = millis(600_000)?,
        "--drain-ms" => config.drain = millis(600_000)?,
        "--backlog" => config.backlog = count(1, 65_535)? as u32,
        "--max-conns" => config.max_conns = count(1, 100_000)?,
        "--workers" => config.workers = count(1, 1024)?,
        "--queue" => config.queue = count(0, 100_000)?,
        "--header-timeout-ms" => config.header_timeout = positive_millis(600_000)?,
        "--write-timeout-ms" => config.write_timeout = positive_millis(600_000)?,
        // SPECS and this match list the same names; parse() only calls us with a known one.
        _ => return Err(ArgsError::Bad(format!("unknown flag '{name}'"))),
    }
    Ok(())
}

/// The `--help` text: every flag this stage accepts, its default and why.
pub fn usage(stage: &str, extra: &[Flag]) -> String {
    let mut out = format!("Usage: {stage} [OPTIONS]\n\nOptions:\n");
    for spec in SPECS
        .iter()
        .filter(|spec| spec.only.is_none_or(|f| extra.contains(&f)))
    {
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
        assert!(!config.quiet);
        let help = usage("01_single", &[]);
        assert!(help.contains("--addr ADDR"));
        assert!(help.contains("[default: 127.0.0.1:1729]"));
        assert!(!help.contains("--max-conns"), "stage 01 has no semaphore");
    }

    #[test]
    fn both_spellings_of_a_value_are_accepted() {
        let config = parse(
            &[],
            &args(&["--work-ms", "0", "--addr=127.0.0.1:0", "--quiet"]),
        )
        .unwrap();
        assert_eq!(config.work, Duration::ZERO);
        assert_eq!(config.addr.port(), 0);
        assert!(config.quiet);
    }

    #[test]
    fn a_stage_rejects_flags_it_does_not_have() {
        let err = parse(&[], &args(&["--max-conns", "2"])).unwrap_err();
        assert_eq!(err, ArgsError::Bad("unknown flag '--max-conns'".into()));
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
