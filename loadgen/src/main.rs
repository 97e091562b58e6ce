//! # loadgen: the client side of the conversation
//!
//! The stages in `src/bin/` each serve customers their own way; this program *is* the
//! customers. It starts many client threads that each connect, send one HTTP/1.1 GET, read
//! the whole response, close, and start again, then reports what they saw: how many were
//! served, how many failed and why, how fast, and how long they waited.
//!
//! It is written like the servers: `std` threads and blocking sockets, no async runtime, and
//! one dependency for the one call std lacks (`libc`'s `sched_setscheduler`, see [`sched`]).
//! A thread per client is plenty for a few thousand clients, and it keeps the client as easy
//! to read as the server it talks to.
//!
//! It lives in a crate of its own (`loadgen/`, a member of the workspace) so that
//! `cargo run --bin` in the repository lists only the five stages. Run it with
//! `cargo run --release -p loadgen -- --help`, or through `./load_test.sh`.
//!
//! ## Layout
//!
//! | module | what it does |
//! |---|---|
//! | [`cli`] | the flags, their defaults and `--help` |
//! | [`url`] | `http://HOST:PORT/PATH`, loopback only, and the request bytes |
//! | [`client`] | one request: connect, send, read by `Content-Length`, close; failure kinds |
//! | [`response`] | finding the end of a response head, its status and `Content-Length` |
//! | [`run`] | the client threads, idle connections, the start line, the tallies |
//! | [`histogram`] | latencies in buckets: percentiles and the chart from fixed memory |
//! | [`proc_status`] | the server's threads and memory from `/proc/PID/status` |
//! | [`report`] | the text report and the `--json` object |
//! | [`sched`] | the client threads' scheduling policy: they step aside for the server |

mod cli;
mod client;
mod histogram;
mod proc_status;
mod report;
mod response;
mod run;
mod sched;
mod url;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cli::{ArgsError, Options};
use client::Target;
use report::{Report, ServerStats};

/// How long the server gets to answer `GET /stats` after the run. Stage 01 still working
/// through a backlog, or stage 04 with idle clients holding every worker, may not make it.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match cli::parse(&args) {
        Ok(options) => options,
        Err(ArgsError::Help) => {
            print!("{}", cli::usage());
            return ExitCode::SUCCESS;
        }
        Err(ArgsError::Bad(message)) => {
            eprintln!("loadgen: {message}\n(loadgen --help lists the flags)");
            return ExitCode::from(2);
        }
    };
    match run_and_report(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loadgen: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_and_report(options: &Options) -> Result<(), String> {
    let addr = options.url.resolve_loopback()?;
    let request = options.url.request();
    let target = Target {
        addr,
        request: &request,
        connect_timeout: options.connect_timeout,
    };
    check_reachable(options, &target)?;

    let sampler = options.pid.and_then(|pid| {
        let longest = options.duration.unwrap_or(Duration::from_secs(3600)) + options.timeout;
        let sampler = proc_status::Sampler::start(pid, longest);
        if sampler.is_none() {
            eprintln!("loadgen: cannot read /proc/{pid}/status; peak threads and memory: n/a");
        }
        sampler
    });

    // Before the client threads start, so that every one inherits it. The /proc sampler,
    // started above, keeps the default policy: its 20 ms ticks stay on time.
    sched::step_aside();
    let plan = run::Plan {
        target,
        clients: options.healthy_clients(),
        idle: options.idle_clients(),
        idle_reconnect: options.idle_reconnect,
        requests: options.requests,
        duration: options.duration,
        timeout: options.timeout,
        progress: std::io::stderr().is_terminal(),
    };
    let outcome = run::run(&plan);

    let peaks = match (sampler, options.pid) {
        (Some(sampler), Some(pid)) => Some(sampler.finish(pid)),
        _ => None,
    };
    let server = options
        .server_stats
        .then(|| server_stats(options, addr))
        .flatten();
    let report = Report {
        options,
        outcome: &outcome,
        peaks,
        server,
    };

    let json = report.json();
    if let Some(path) = &options.json_file {
        std::fs::write(path, format!("{json}\n"))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if options.json {
        println!("{json}");
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

/// One connection before the run, so that a server that is not there gets a sentence
/// instead of thousands of "refused".
fn check_reachable(options: &Options, target: &Target<'_>) -> Result<(), String> {
    let deadline = Instant::now() + options.connect_timeout;
    match client::connect(target.addr, options.connect_timeout, deadline) {
        Ok(_) => Ok(()),
        Err(failed) => Err(format!(
            "cannot reach {} ({}): {}. Is the server running? Start one with \
             `cargo run --release --bin 01_single` (it listens on 127.0.0.1:1729), \
             or give its address with --url.",
            options.url, target.addr, failed.error
        )),
    }
}

/// Asks the server for its counters.
fn server_stats(options: &Options, addr: std::net::SocketAddr) -> Option<ServerStats> {
    let request = options.url.with_path("/stats").request();
    let target = Target {
        addr,
        request: &request,
        connect_timeout: options.connect_timeout,
    };
    client::fetch_text(&target, STATS_TIMEOUT).map(|body| ServerStats::parse(&body))
}
