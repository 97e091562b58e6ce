//! Graceful Ctrl-C: close the door at once, let the requests in progress finish, then exit.
//!
//! Ctrl-C is SIGINT; `kill` and service managers send SIGTERM; closing the terminal sends
//! SIGHUP. All three are caught by the `ctrlc` crate, which runs our handler as ordinary code
//! on a thread of its own, named `ctrl-c`, not inside a signal handler. It does not say which
//! of the three came, so the log says "signal". The first one:
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
//! A second signal, whichever of the three, ends the process at once as an uncaught Ctrl-C
//! would: SIGINT gets its default action back and is raised, so a shell sees "killed by
//! SIGINT" (status 130), and a script running the stage in a loop stops at a second Ctrl-C
//! instead of going on to the next round.
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

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
    /// An event loop: wake its poll. Shared: stage 08's kitchen rings the same waker.
    Poll(Arc<mio::Waker>),
    /// Stage 09's loops: wake every one of them.
    Polls(Vec<Arc<mio::Waker>>),
    /// Tasks (stages 10 and 11): those awaiting [`Server::stopped`] are woken, nothing else.
    Tasks,
}

impl Wake {
    pub(crate) fn close(listener: TcpListener) -> Wake {
        Wake::Close(Mutex::new(Some(listener)))
    }
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP. ctrlc starts the thread that runs
/// [`on_signal`] for each of them, so the handling itself is ordinary code.
pub(crate) fn install(server: &Arc<Server>) -> io::Result<()> {
    let server = Arc::clone(server);
    ctrlc::set_handler(move || on_signal(&server)).map_err(|e| match e {
        ctrlc::Error::System(e) => e,
        other => io::Error::other(other),
    })
}

fn on_signal(server: &Arc<Server>) {
    let open = server.stats.connections_open.current();
    if server.stopping.swap(true, Ordering::SeqCst) {
        logging::warn(format_args!(
            "signal again: exiting now, cutting {open} open connection(s)"
        ));
        die_of_sigint();
    }
    *server
        .stop_requested
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    logging::warn(format_args!(
        "signal: no longer accepting; waiting up to {} ms for {open} open connection(s) \
         (another Ctrl-C, SIGTERM or SIGHUP quits now)",
        server.config.drain.as_millis()
    ));
    wake(server);
    server.wake_the_stopped();
    let watched = Arc::clone(server);
    let spawned = thread::Builder::new()
        .name("shutdown-watchdog".into())
        .spawn(move || watchdog(&watched));
    if let Err(e) = spawned {
        logging::warn(format_args!("could not start the shutdown watchdog: {e}"));
    }
}

/// Ends the process as an uncaught Ctrl-C would, whichever signal came. Ctrl-C in a terminal
/// reaches the shell too; a shell that then sees its child killed by SIGINT stops as well,
/// where after an ordinary exit code it would go on with its script.
fn die_of_sigint() -> ! {
    // SAFETY: plain libc calls with valid arguments. `signal` replaces ctrlc's handler for
    // SIGINT with the default action (ending the process); the mask is cleared in case whoever
    // started us blocked SIGINT; `raise` sends it to this thread, and so ends the process.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        let mut only_sigint = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut only_sigint);
        libc::sigaddset(&mut only_sigint, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &only_sigint, std::ptr::null_mut());
        libc::raise(libc::SIGINT);
    }
    // Not reached; if it were, 130 is what a shell reports for a process killed by SIGINT.
    std::process::exit(128 + libc::SIGINT);
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
        Wake::Poll(waker) => wake_loop(waker),
        Wake::Polls(wakers) => wakers.iter().for_each(|waker| wake_loop(waker)),
        Wake::Tasks => {}
    }
}

fn wake_loop(waker: &mio::Waker) {
    if let Err(e) = waker.wake() {
        logging::warn(format_args!(
            "could not wake an event loop ({e}); the watchdog will end the process"
        ));
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

/// How long is left of `--drain-ms` since the first signal (stages 10 and 11 wait this long
/// for their connections, whichever runtime's clock they use).
pub fn drain_left(server: &Server) -> Duration {
    drain_deadline(server).saturating_duration_since(Instant::now())
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

/// Shutdown as a value a task can await (stages 10 and 11): ready once the first signal has
/// come. Made by [`Server::stopped`].
#[derive(Debug)]
pub struct Stopped<'a> {
    server: &'a Server,
    /// Its place among the server's waiting wakers, once it has one.
    key: Option<usize>,
}

impl Server {
    /// Resolves once Ctrl-C (or SIGTERM, SIGHUP) has come. A task awaits it beside what it
    /// is doing (the accept loop beside `accept`, an idle connection beside its next
    /// request), as mini-redis passes shutdown to every task: no loop polls a flag.
    pub fn stopped(&self) -> Stopped<'_> {
        Stopped {
            server: self,
            key: None,
        }
    }

    /// Wakes every task awaiting [`Server::stopped`].
    fn wake_the_stopped(&self) {
        let mut waiting = self
            .stop_waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for key in waiting.keys() {
            if let Some(waker) = waiting.remove(key) {
                waker.wake();
            }
        }
    }
}

impl std::future::Future for Stopped<'_> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let server = self.server;
        let mut waiting = server
            .stop_waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Looked at under the lock, which the signal takes after setting the flag: either
        // this sees the flag, or the signal sees this waker.
        if server.shutting_down() {
            if let Some(key) = self.key.take() {
                waiting.remove(key);
            }
            return std::task::Poll::Ready(());
        }
        match self.key.and_then(|key| waiting.get_mut(key)) {
            Some(stored) if stored.will_wake(cx.waker()) => {}
            Some(stored) => *stored = cx.waker().clone(),
            None => {
                let key = waiting.insert(cx.waker().clone());
                drop(waiting);
                self.key = Some(key);
            }
        }
        std::task::Poll::Pending
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.server
                .stop_waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(key);
        }
    }
}
