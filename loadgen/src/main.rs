//! # loadgen: the client side of the conversation
//!
//! The stages in `src/bin/` each serve customers their own way; this program *is* the
//! customers. It starts many client threads that each connect, send one HTTP/1.1 GET, read
//! the whole response, close (or, with `--keep-alive`, keep the connection), and start
//! again, in a closed loop or on a timetable (`--rate`), then reports what they saw: how
//! many were served, how many failed and why, how fast, and how long they waited. While it
//! runs, a live view on the terminal shows the queue outside the server's door.
//!
//! It is written like the servers: `std` threads and blocking sockets, no async runtime, and
//! one dependency on Linux for the calls std lacks (`libc`'s `sched_setscheduler`, see
//! [`sched`]; `setrlimit`, see [`limits`]; `poll`, see [`held`]). A thread per client is
//! plenty for a few thousand clients, and it keeps the client as easy to read as the server
//! it talks to; only the ten thousand connections of `--scenario held` share a thread.
//!
//! It lives in a crate of its own (`loadgen/`, a member of the workspace) so that
//! `cargo run --bin` in the repository lists only the stages. Run it with
//! `cargo run --release -p loadgen -- --help`, or through `./load_test.sh`.
//!
//! ## Layout
//!
//! | module | what it does |
//! |---|---|
//! | [`cli`] | the flags (clap), their defaults and `--help`; which flags fit which scenario |
//! | [`url`] | `http://HOST:PORT/PATH`, loopback only, and the request bytes |
//! | [`client`] | one request: connect or reuse, send, read by `Content-Length`; failure kinds |
//! | [`response`] | a response head: status, `Content-Length`, whether the connection stays |
//! | [`run`] | the healthy clients, both loops, the start line, the tallies |
//! | [`schedule`] | the open loop's timetable: request i is due at start + i / rate |
//! | [`idle`] | idle and trickling connections, a thread each |
//! | [`held`] | `--scenario held`: thousands of idle connections held by one thread |
//! | [`probe`] | `--probe-path`: one more client asking another path, counted apart |
//! | [`board`] | what each client is doing right now, for the sampler |
//! | [`watch`] | the run sampled every 100 ms: `--series`, the live view, progress lines |
//! | [`live`] | the live view's picture and its redrawing in place |
//! | [`proc_net`] | the accept queue, from `/proc/net/tcp` |
//! | [`proc_status`] | the server's threads and memory from `/proc/PID/status` |
//! | [`trace`] | `--trace`: a row per request, kept per client, written after the run |
//! | [`histogram`] | latencies in buckets: percentiles and the chart from fixed memory |
//! | [`report`] | the text report and the `--json` object |
//! | [`limits`] | loadgen's own open-file limit, raised to the hard limit |
//! | [`sched`] | the client threads' scheduling policy: they step aside for the server |

mod board;
mod cli;
mod client;
mod held;
mod histogram;
mod idle;
mod limits;
mod live;
mod probe;
mod proc_net;
mod proc_status;
mod report;
mod response;
mod run;
mod sched;
mod schedule;
mod trace;
mod url;
mod watch;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use board::Board;
use cli::Options;
use client::Target;
use live::View;
use report::{Report, ServerStats};
use watch::{Latest, Watch};

/// How long the server gets to answer `GET /stats` after the run. Stage 01 still working
/// through a backlog, or stage 04 with idle clients holding every worker, may not make it.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the live view alone asks for `/stats` (`--series` asks every sample).
const LIVE_STATS_EVERY: Duration = Duration::from_millis(250);

fn main() -> ExitCode {
    // --help prints the help and exits 0; a bad command line prints clap's error and exits 2.
    let options = cli::parse(std::env::args_os()).unwrap_or_else(|error| error.exit());
    match run_and_report(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            warn(&message);
            ExitCode::FAILURE
        }
    }
}

/// A line on stderr; if stderr is closed there is nobody to tell, and no reason to panic.
fn warn(message: &str) {
    let _ = writeln!(io::stderr().lock(), "loadgen: {message}");
}

fn run_and_report(options: &Options) -> Result<(), String> {
    if let Some(line) = limits::shortfall(limits::raise_open_files(), options.descriptors_needed())
    {
        warn(&line);
    }
    let addr = options.url.resolve_loopback()?;
    let request = options.url.request(options.keep_alive);
    let target = Target {
        addr,
        request: &request,
        connect_timeout: options.connect_timeout,
        keep_alive: options.keep_alive,
    };
    check_reachable(options, &target)?;
    // Before the run, so that a path that cannot be written is said in a second, not after
    // an hour of load.
    let trace_file = options.trace.as_deref().map(create).transpose()?;
    let series_file = options.series.as_deref().map(create).transpose()?;

    let sampler = options.pid.and_then(|pid| {
        let longest = options.duration.unwrap_or(Duration::from_secs(3600)) + options.timeout;
        let sampler = proc_status::Sampler::start(pid, longest);
        if sampler.is_none() {
            warn(&format!(
                "cannot read /proc/{pid}/status; peak threads and memory: n/a"
            ));
        }
        sampler
    });

    let board = Board::new(options.healthy_clients());
    let live = options.live && io::stderr().is_terminal();
    let watch = Watch {
        board: &board,
        target: addr,
        pid: options.pid,
        series: options.series.is_some(),
        live,
        progress: !live,
        view: View {
            duration: options.duration,
            requests: options.requests,
            pid: options.pid.is_some(),
            stats: options.server_stats,
            side_planned: (options.idle_clients()
                + options.trickle_clients()
                + options.held_connections()) as u64,
        },
    };
    let stats_request = options.url.with_path("/stats").request(false);
    let stats_target = Target {
        request: &stats_request,
        keep_alive: false,
        ..target
    };
    let probe_request = options
        .probe_path
        .as_deref()
        .map(|path| options.url.with_path(path).request(options.keep_alive));
    let probe = probe_request.as_deref().map(|request| probe::Probe {
        target: Target { request, ..target },
        every: options.probe_every,
    });
    let latest = Latest::default();
    let plan = run::Plan {
        target,
        clients: options.healthy_clients(),
        idle: options.idle_clients(),
        idle_reconnect: options.reconnect(),
        trickle: options.trickle_clients(),
        trickle_every: options.trickle_every,
        held: options.held_connections(),
        held_rate: options.held_rate as f64,
        requests: options.requests,
        duration: options.duration,
        timeout: options.timeout,
        rate: options.rate,
        trace: options.trace.is_some(),
        probe,
    };

    let (outcome, rows) = thread::scope(|scope| {
        if options.server_stats && (watch.live || watch.series) {
            let every = if watch.series {
                watch::TICK
            } else {
                LIVE_STATS_EVERY
            };
            let (board, stats_target, latest) = (&board, &stats_target, &latest);
            let started = thread::Builder::new()
                .name("stats".into())
                .spawn_scoped(scope, move || {
                    watch::poll_stats(board, stats_target, every, latest)
                });
            if started.is_err() {
                warn("cannot start the /stats thread: in_flight and connections_open unknown");
            }
        }
        // Started before the client threads step aside, like the /proc sampler above, so
        // that its 100 ms ticks stay on time.
        let watcher = watch.wanted().then(|| {
            let (watch, latest) = (&watch, &latest);
            thread::Builder::new()
                .name("watch".into())
                .spawn_scoped(scope, move || watch::watch(watch, latest))
        });
        let watcher = match watcher {
            Some(Ok(handle)) => Some(handle),
            Some(Err(_)) => {
                warn("cannot start the sampling thread: no live view, no --series");
                None
            }
            None => None,
        };
        // Before the client threads start, so that every one inherits it.
        sched::step_aside();
        // It ends by marking the board over, which stops the watcher and the /stats thread.
        let outcome = run::run(&plan, &board);
        let rows = watcher
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default();
        (outcome, rows)
    });

    let peaks = match (sampler, options.pid) {
        (Some(sampler), Some(pid)) => Some(sampler.finish(pid)),
        _ => None,
    };
    // The server's counters, asked once the run is over.
    let server = options
        .server_stats
        .then(|| client::fetch_text(&stats_target, STATS_TIMEOUT))
        .flatten()
        .map(|body| ServerStats::parse(&body));

    // The files first: a file that cannot be written is said after the report, which is
    // printed all the same.
    let mut problems = Vec::new();
    let trace_rows = trace_file.and_then(|file| {
        let start = outcome.trace.start.unwrap_or(trace::At::ZERO);
        let mut out = BufWriter::new(file);
        trace::write(&mut out, start, outcome.trace.rows())
            .map_err(|e| problems.push(cannot_write(options.trace.as_deref(), &e)))
            .ok()
    });
    let series_rows = series_file.and_then(|file| {
        let start = board
            .start()
            .or(rows.first().map(|row| row.at))
            .unwrap_or_else(Instant::now);
        let mut out = BufWriter::new(file);
        watch::write(&mut out, start, &rows)
            .map(|()| rows.len() as u64)
            .map_err(|e| problems.push(cannot_write(options.series.as_deref(), &e)))
            .ok()
    });
    let report = Report {
        options,
        outcome: &outcome,
        peaks,
        server,
        trace_rows,
        series_rows,
        stats_polls: latest.polls.load(std::sync::atomic::Ordering::Relaxed),
    };

    let json = report.json();
    if let Some(path) = &options.json_file {
        if let Err(e) = std::fs::write(path, format!("{json}\n")) {
            problems.push(cannot_write(Some(path), &e));
        }
    }
    // A reader that went away (`loadgen | head`) loses the rest of the report, nothing more.
    let printed = if options.json {
        format!("{json}\n")
    } else {
        report.text()
    };
    let _ = io::stdout().write_all(printed.as_bytes());
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("\nloadgen: ")),
    }
}

fn create(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn cannot_write(path: Option<&Path>, error: &io::Error) -> String {
    let path = path.map_or(String::new(), |p| p.display().to_string());
    format!("cannot write {path}: {error}")
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
