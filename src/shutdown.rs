//! Graceful Ctrl-C: close the door at once, let the requests in progress finish, then exit.
//!
//! Ctrl-C is SIGINT; `kill` and service managers send SIGTERM; closing the terminal sends
//! SIGHUP. All three are caught (by `signal-hook`, on a thread of its own, `signals`), and
//! the log names the one that came. The first one:
//!
//! 1. sets a flag that the stage's loop checks whenever it wakes up;
//! 2. closes the door. A blocking stage (01-05) sleeps in `accept()`, so the signal thread
//!    shuts the listening socket down (`shutdown(2)`). On Linux that stops the listener at
//!    once: a client that connects from now on is refused, the clients still waiting in the
//!    backlog are reset (nobody has started on them; a reset tells them at once to try again
//!    elsewhere), and the blocked `accept()` returns an error, after which the loop sees the
//!    flag and leaves. Where `shutdown(2)` cannot stop a listener (macOS), the signal thread
//!    wakes `accept()` with a connection of its own instead. An event loop (06, 07) is woken
//!    through its poll's `Waker` and closes its listener itself;
//! 3. starts a watchdog. The stage waits for the connections in progress to finish, at most
//!    `--drain-ms`, prints a one-line summary and exits 0 (1 if it had to cut connections).
//!    If the loop cannot even get back to its flag (stage 03 waiting for a permit that idle
//!    clients hold), the watchdog ends the process once the drain limit has passed.
//!
//! Whoever ends the process (the stage's `main`, or the watchdog) prints the summary, once.
//! A second signal ends the process at once *by that signal*: the handler is reset to the
//! default and the signal raised again, so a shell sees "killed by SIGINT" (status 130) or
//! SIGTERM (143), and a script's loop stops instead of going on.
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::logging;
use crate::server::Server;
use crate::stats::load;

/// How long the watchdog allows past the drain limit before it ends the process itself.
const WATCHDOG_GRACE: Duration = Duration::from_secs(1);

/// How the signal thread gets the loop's attention.
#[derive(Debug)]
pub(crate) enum Wake {
    /// A blocking accept loop: close this handle on its listening socket (taken on the first
    /// signal).
    Close(Mutex<Option<TcpListener>>),
    /// An event loop: wake its poll.
    Poll(mio::Waker),
}

impl Wake {
    pub(crate) fn close(listener: TcpListener) -> Wake {
        Wake::Close(Mutex::new(Some(listener)))
    }
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP: a thread that waits for them and calls
/// [`on_signal`] for each, so the handling itself is ordinary code, not a signal handler.
pub(crate) fn install(server: &Arc<Server>) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let server = Arc::clone(server);
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                on_signal(&server, signal);
            }
        })?;
    Ok(())
}

/// The signal's name for the log: Ctrl-C is what a learner pressed to send SIGINT.
fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "Ctrl-C (SIGINT)",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

fn on_signal(server: &Arc<Server>, signal: i32) {
    let open = server.stats.connections_open.current();
    if server.stopping.swap(true, Ordering::SeqCst) {
        logging::warn(format_args!(
            "{} again: exiting now, cutting {open} open connection(s)",
            name(signal)
        ));
        // Die of this signal, as if it had never been caught.
        let _ = signal_hook::low_level::emulate_default_handler(signal);
        // Not reached: the default action of all three signals ends the process.
        std::process::exit(128 + signal);
    }
    *server
        .stop_requested
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    logging::warn(format_args!(
        "{}: no longer accepting; waiting up to {} ms for {open} open connection(s) \
         (send it again to quit now)",
        name(signal),
        server.config.drain.as_millis()
    ));
    wake(server);
    let watched = Arc::clone(server);
    let spawned = thread::Builder::new()
        .name("shutdown-watchdog".into())
        .spawn(move || watchdog(&watched));
    if let Err(e) = spawned {
        logging::warn(format_args!("could not start the shutdown watchdog: {e}"));
    }
}

/// Closes the door of a blocking stage, or wakes an event loop.
fn wake(server: &Server) {
    match &server.wake {
        Wake::Close(door) => {
            let taken = door.lock().unwrap_or_else(PoisonError::into_inner).take();
            let Some(listener) = taken else { return };
            // Linux: the listener stops, refuses new clients, resets the backlog and ends the
            // blocked accept() with EINVAL. The handle itself closes when it is dropped here.
            if socket2::SockRef::from(&listener)
                .shutdown(Shutdown::Read)
                .is_ok()
            {
                return;
            }
            // Elsewhere: wake the blocked accept() with a connection of our own, which the
            // loop drops unanswered once it has seen the flag.
            if let Err(e) =
                TcpStream::connect_timeout(&reachable(server.local), Duration::from_secs(1))
            {
                logging::warn(format_args!(
                    "could not wake the accept loop ({e}); the watchdog will end the process"
                ));
            }
        }
        Wake::Poll(waker) => {
            if let Err(e) = waker.wake() {
                logging::warn(format_args!(
                    "could not wake the event loop ({e}); the watchdog will end the process"
                ));
            }
        }
    }
}

/// Our listener's address in a form we can connect to: a wildcard bind (0.0.0.0 or ::) is
/// reached through loopback.
fn reachable(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

/// Ends the process if the loop has not finished draining in time.
fn watchdog(server: &Server) {
    thread::sleep(server.config.drain + WATCHDOG_GRACE);
    // If main got there first, it is returning with its own code: let it.
    if let Some(code) = end(server) {
        std::process::exit(i32::from(code));
    }
}

/// When the drain must be over: `--drain-ms` after the first signal.
pub fn drain_deadline(server: &Server) -> Instant {
    let since = server
        .stop_requested
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .unwrap_or_else(Instant::now);
    since + server.config.drain
}

/// Waits until no connection is open or the drain limit has passed, prints the summary and
/// returns the exit code: 0 if everything finished, 1 if connections had to be cut.
pub(crate) fn drain(server: &Server) -> ExitCode {
    let until = drain_deadline(server);
    // Polling is fine here: it runs once, at the end, and a 10 ms step is invisible.
    while server.stats.connections_open.current() > 0 && Instant::now() < until {
        thread::sleep(Duration::from_millis(10));
    }
    match end(server) {
        Some(code) => ExitCode::from(code),
        // The watchdog printed the summary and is ending the process; returning from main
        // as well would run the process's exit twice at the same time.
        None => loop {
            thread::park();
        },
    }
}

/// Prints the summary and returns the exit code, for the first caller only (`None` after).
fn end(server: &Server) -> Option<u8> {
    let mut ended = server.ended.lock().unwrap_or_else(PoisonError::into_inner);
    if ended.is_some() {
        return None;
    }
    let cut = server.stats.connections_open.current();
    // A closed stdout (`01_single | head -1`) is no reason to panic; the code still counts.
    let _ = io::stdout().write_all(summary(server, cut).as_bytes());
    let code = u8::from(cut > 0);
    *ended = Some(code);
    Some(code)
}

/// `01_single stopped after 12.3 s: served 42, peak in flight 1`, and what else happened.
fn summary(server: &Server, cut: usize) -> String {
    let stats = &server.stats;
    let mut line = format!(
        "{} stopped after {:.1} s: served {}, peak in flight {}",
        server.stage,
        stats.uptime().as_secs_f64(),
        load(&stats.served),
        stats.in_flight.peak(),
    );
    if server.config.has(crate::config::Flag::KeepAlive) {
        let (requests, accepted) = (load(&stats.requests), load(&stats.accepted));
        line.push_str(&format!(
            ", {requests} request(s) on {accepted} connection(s) ({:.1} per connection)",
            requests as f64 / accepted.max(1) as f64
        ));
    }
    let abandoned = load(&stats.abandoned);
    if abandoned > 0 {
        line.push_str(&format!(", {abandoned} abandoned by their clients"));
    }
    if cut > 0 {
        line.push_str(&format!(
            ", cut {cut} connection(s) still open after the {} ms drain limit",
            server.config.drain.as_millis()
        ));
    }
    line.push('\n');
    line
}
