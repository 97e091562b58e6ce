//! Graceful Ctrl-C: stop accepting at once, let the requests in progress finish, then exit.
//!
//! The first Ctrl-C (or SIGTERM) sets a flag. The accept loop only looks at the flag when
//! `accept()` returns, and `accept()` blocks until a client connects, so the signal handler
//! *becomes* that client: it opens a connection to our own listener. `accept()` returns it,
//! the loop sees the flag and leaves. No polling, no non-blocking sockets.
//!
//! The stage then waits for the open connections to finish, at most `--drain-ms`, prints a
//! one-line summary and exits 0. A second Ctrl-C exits at once. If the accept loop cannot
//! even get back to its flag (stage 03's loop waiting for a permit that idle clients hold), a
//! watchdog thread ends the process once the drain limit has passed.
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::logging;
use crate::server::Server;

/// Exit code after a second Ctrl-C: 128 + SIGINT, what shells report for a killed program.
const EXIT_INTERRUPTED: u8 = 130;
/// How long the watchdog allows past the drain limit before it ends the process itself.
const WATCHDOG_GRACE: Duration = Duration::from_secs(1);

/// Installs the handler for Ctrl-C and SIGTERM. It runs on a thread of `ctrlc`'s, once per
/// signal, so it must return quickly: the second signal is handled by the next call.
pub(crate) fn install(server: &Arc<Server>) -> Result<(), ctrlc::Error> {
    let server = Arc::clone(server);
    ctrlc::set_handler(move || on_signal(&server))
}

fn on_signal(server: &Arc<Server>) {
    let open = server.stats.connections_open.current();
    if server.stopping.swap(true, Ordering::AcqRel) {
        logging::warn(format_args!(
            "second Ctrl-C: exiting now, cutting {open} open connection(s)"
        ));
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    }
    *server
        .stop_requested
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    logging::warn(format_args!(
        "Ctrl-C: no longer accepting; waiting up to {} ms for {open} open connection(s) \
         (Ctrl-C again to quit now)",
        server.config.drain.as_millis()
    ));
    // Wake the accept loop: it is blocked in accept() and only checks the flag when that
    // returns. The connection is closed straight away; the loop drops it unanswered.
    if let Err(e) = TcpStream::connect_timeout(&server.wake_addr, Duration::from_secs(1)) {
        logging::warn(format_args!(
            "could not wake the accept loop ({e}); the watchdog will end the process"
        ));
    }
    let watched = Arc::clone(server);
    let spawned = thread::Builder::new()
        .name("shutdown-watchdog".into())
        .spawn(move || watchdog(&watched));
    if let Err(e) = spawned {
        logging::warn(format_args!("could not start the shutdown watchdog: {e}"));
    }
}

/// Ends the process if the accept loop has not finished draining in time.
fn watchdog(server: &Server) {
    thread::sleep(server.config.drain + WATCHDOG_GRACE);
    let code = summary(server);
    std::process::exit(i32::from(code));
}

/// Waits until no connection is open or the drain limit has passed, prints the summary and
/// returns the exit code: 0 if everything finished, 1 if connections had to be cut.
pub(crate) fn drain(server: &Server) -> ExitCode {
    let since = server
        .stop_requested
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .unwrap_or_else(Instant::now);
    let until = since + server.config.drain;
    // Polling is fine here: it runs once, at the end, and a 10 ms step is invisible.
    while server.stats.connections_open.current() > 0 && Instant::now() < until {
        thread::sleep(Duration::from_millis(10));
    }
    ExitCode::from(summary(server))
}

/// Prints `01_single stopped after 12.3 s: served 42, peak in flight 1` on stdout.
fn summary(server: &Server) -> u8 {
    let stats = &server.stats;
    let cut = stats.connections_open.current();
    let mut line = format!(
        "{} stopped after {:.1} s: served {}, peak in flight {}",
        server.stage,
        stats.uptime().as_secs_f64(),
        stats.served.load(Ordering::Relaxed),
        stats.in_flight.peak(),
    );
    if cut > 0 {
        line.push_str(&format!(
            ", cut {cut} connection(s) still open after the {} ms drain limit",
            server.config.drain.as_millis()
        ));
    }
    println!("{line}");
    u8::from(cut > 0)
}
