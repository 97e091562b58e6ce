//! Command-line flags: the ones every stage shares, and what a stage's flags become.
//!
//! Each stage declares its own command line in its own file: a `#[derive(Parser)]` struct
//! (clap's derive) that flattens [`Common`], the flags every stage has, and adds the flags of
//! its idea (`--max-conns` in stage 03, `--workers` in stage 04...). Each field's doc comment
//! is its line in `--help`, with the reason for its default. From that struct clap makes the
//! parser, the help, the "a similar argument exists" tip for a mistyped flag, and the errors,
//! which exit with status 2; a flag of another stage is simply unknown here. The stage then
//! turns its values into a [`Config`], the one type the rest of the library reads.
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use clap::builder::{RangedU64ValueParser, TypedValueParser};
use clap::Args;

/// A flag that only some stages have. A stage lists its own in [`Config::extra`], so that
/// `/stats` and the summary show the counters that mean something there.
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
    /// `--cpu-threads N` and `--cpu-queue Q`: stage 08's kitchen, the pool that computes.
    Kitchen,
    /// `--loops N`: stage 09's event loops, one per core.
    Loops,
}

/// Everything a stage can be told on its command line, as the library reads it.
///
/// Fields of flags a stage does not have are zero (see [`Common::config`]): no code of that
/// stage reads them.
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
    /// Stage 08: the kitchen's threads, which compute `--cpu-ms` off the event loop.
    pub cpu_threads: usize,
    /// Stage 08: the most orders that may wait for a free cook.
    pub cpu_queue: usize,
    /// Stage 09: how many event loops run, each on a thread of its own (0: one, on `main`).
    pub loops: usize,
    /// The stage-only flags this stage has (used by `/stats` and the summary).
    pub extra: &'static [Flag],
}

/// What `GET /` says (repeated, or cut, to `--body-bytes`).
pub const HELLO: &str = "Hello World\n";

impl Config {
    /// Whether this stage has `flag`.
    pub fn has(&self, flag: Flag) -> bool {
        self.extra.contains(&flag)
    }
}

/// What the signals do, said once at the end of every stage's `--help`.
pub const SIGNALS: &str = "Ctrl-C (SIGINT), SIGTERM or SIGHUP: stop gracefully (new clients \
    refused, requests in progress finish, at most --drain-ms). A second one, any of the three: \
    stop at once, killed by SIGINT (exit status 130).";

/// The flags every stage has.
///
/// Its `#[command]` settings apply to the command line of every stage that flattens it.
#[derive(Args, Clone, Debug)]
#[command(
    // Stage NN_name's help: what the stage does, its usage, its flags, and what signals do.
    help_template = "{about-with-newline}\nUsage: {name} [OPTIONS]\n\n{all-args}{after-help}",
    after_help = SIGNALS,
    // A flag given twice keeps its last value, so that a script's flags can be overridden by
    // the ones a user adds after them (`./load_test.sh -- --header-timeout-ms 60000`).
    args_override_self = true,
    // The reasons wrap at 100 columns, or at the terminal's width if that is narrower.
    max_term_width = 100
)]
pub struct Common {
    /// Address to listen on; loopback keeps a teaching server private, port 0 picks a free port
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1729")]
    pub addr: SocketAddr,

    /// Simulated work per request that waits, like a database call; a second is long enough
    /// to see two curls wait for each other
    #[arg(long = "work-ms", value_name = "MS", default_value = "1000",
          value_parser = millis(0..=600_000))]
    pub work: Duration,

    /// Simulated work per request that computes: a busy loop on the serving thread, which no
    /// other client can use meanwhile
    #[arg(long = "cpu-ms", value_name = "MS", default_value = "0",
          value_parser = millis(0..=60_000))]
    pub cpu: Duration,

    /// Size of the GET / body (Hello World, repeated); past the socket's send buffer a write
    /// must wait for the client to read
    #[arg(long, value_name = "N", default_value_t = HELLO.len(),
          value_parser = count(0..=64 * 1024 * 1024))]
    pub body_bytes: usize,

    /// Connections the kernel queues before accept(); std's 128 overflows at 200 clients
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub backlog: u32,

    /// When stopping gracefully (see below), how long to wait for requests in progress before
    /// cutting them
    #[arg(long = "drain-ms", value_name = "MS", default_value = "10000",
          value_parser = millis(0..=600_000))]
    pub drain: Duration,

    /// No per-request log lines (for load tests)
    #[arg(long)]
    pub quiet: bool,
}

impl Common {
    /// The [`Config`] of a stage with these flags and the stage-only flags `extra`. The fields
    /// of stage-only flags are zero here; the stage sets its own from its flags.
    pub fn config(self, extra: &'static [Flag]) -> Config {
        Config {
            addr: self.addr,
            work: self.work,
            cpu: self.cpu,
            body_bytes: self.body_bytes,
            quiet: self.quiet,
            drain: self.drain,
            backlog: self.backlog,
            max_conns: 0,
            workers: 0,
            queue: 0,
            header_timeout: Duration::ZERO,
            write_timeout: Duration::ZERO,
            keep_alive: Duration::ZERO,
            max_requests: 0,
            cpu_threads: 0,
            cpu_queue: 0,
            loops: 0,
            extra,
        }
    }
}

/// The number of cores this process may use: the default size of a pool that computes
/// (stage 08's kitchen). More threads than cores only take turns on them.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A whole number of milliseconds in `range`, as a `Duration`: `value_parser = millis(1..=9)`.
/// A value out of range is an error that names the flag and the range.
pub fn millis(range: RangeInclusive<u64>) -> impl TypedValueParser<Value = Duration> {
    RangedU64ValueParser::<u64>::new()
        .range(range)
        .map(Duration::from_millis)
}

/// A whole number in `range`, for a `usize` field (clap's own `value_parser!(u64).range(..)`
/// is for the fixed-size integers).
pub fn count(range: RangeInclusive<u64>) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// A stage with only the common flags, as stages 01 and 02 are.
    #[derive(Parser, Debug)]
    #[command(name = "01_single")]
    struct Plain {
        #[command(flatten)]
        common: Common,
    }

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let args = std::iter::once("01_single").chain(args.iter().copied());
        Plain::try_parse_from(args).map(|plain| plain.common.config(&[]))
    }

    /// With no flags, every value is the default its help line shows.
    #[test]
    fn defaults_match_the_help_text() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.addr.to_string(), "127.0.0.1:1729");
        assert_eq!(config.work, Duration::from_millis(1000));
        assert_eq!(config.cpu, Duration::ZERO);
        assert_eq!(config.body_bytes, HELLO.len());
        assert_eq!(config.backlog, 1024);
        assert_eq!(config.drain, Duration::from_millis(10_000));
        assert!(!config.quiet);
        let help = Plain::command().render_help().to_string();
        assert!(help.contains("--addr <ADDR>"), "{help}");
        assert!(help.contains("[default: 127.0.0.1:1729]"), "{help}");
        assert!(help.contains("[default: 12]"), "{help}");
        // clap wraps the text at the terminal's width: compare it with the lines joined.
        let flat = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat(&help).ends_with(&flat(SIGNALS)), "{help}");
    }

    /// `--flag VALUE` and `--flag=VALUE` both work, and a switch takes no value.
    #[test]
    fn both_spellings_of_a_value_are_accepted() {
        let config = parse(&[
            "--work-ms",
            "0",
            "--addr=127.0.0.1:0",
            "--quiet",
            "--cpu-ms=5",
        ])
        .unwrap();
        assert_eq!(config.work, Duration::ZERO);
        assert_eq!(config.cpu, Duration::from_millis(5));
        assert_eq!(config.addr.port(), 0);
        assert!(config.quiet);
        assert!(parse(&["--quiet=yes"]).is_err());
    }

    /// A flag given twice keeps its last value: a script's default can be overridden.
    #[test]
    fn the_last_of_a_repeated_flag_wins() {
        let config = parse(&["--work-ms", "5", "--work-ms=7", "--quiet", "--quiet"]).unwrap();
        assert_eq!(config.work, Duration::from_millis(7));
        assert!(config.quiet);
    }

    /// Values out of range or of the wrong shape are refused, naming the flag.
    #[test]
    fn bad_values_name_the_flag() {
        for (args, needle) in [
            (&["--work-ms", "soon"][..], "'--work-ms <MS>'"),
            (&["--work-ms", "600001"][..], "'--work-ms <MS>'"),
            (&["--addr", "localhost"][..], "'--addr <ADDR>'"),
            (&["--backlog", "0"][..], "'--backlog <N>'"),
            (&["--body-bytes=-1"][..], "'--body-bytes <N>'"),
            (&["--work-ms"][..], "'--work-ms <MS>'"),
        ] {
            let error = parse(args).unwrap_err().to_string();
            assert!(error.contains(needle), "{args:?}: {error}");
        }
    }

    /// The stage-only fields are zero until the stage sets them from its own flags.
    #[test]
    fn stage_only_fields_start_at_zero() {
        let config = parse(&[]).unwrap();
        assert_eq!((config.max_conns, config.workers, config.queue), (0, 0, 0));
        assert_eq!(config.header_timeout, Duration::ZERO);
        assert!(!config.has(Flag::KeepAlive));
    }
}
