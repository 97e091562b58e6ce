//! Opening the listening socket, and surviving a failed `accept()`.
//!
//! [`bind`] is `TcpListener::bind` with one more knob: the length of the listen backlog, the
//! kernel's queue of connections whose handshake is complete but that nobody has accepted yet.
//! std always asks for 128. When more clients than that connect at once, Linux drops the
//! extra SYNs and the clients retransmit after a second: a latency stall no error reports.
//!
//! `accept()` fails for reasons that say nothing about the server: a client reset before we
//! got to it, or the process is out of file descriptors (EMFILE) because too many
//! connections are open. A naive loop either exits on the first error, closing the cafe for
//! everyone, or retries at once and spins a core at 100% until a descriptor frees up. The
//! back-off here tells the two kinds apart. Errors that belong to one client (a reset, and
//! the network errors that accept(2)'s NOTES say to treat like EAGAIN) are retried at once.
//! The others are logged and paused on, the pause doubling up to a second while they keep
//! coming. The blocking stages sleep the pause; the event loop, which must never sleep, sets
//! a timer for it instead.
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use crate::logging;

/// `socket()`, `bind()` and `listen(backlog)`: a listening socket, as `TcpListener::bind`
/// makes, with the backlog we choose. The kernel caps it at `net.core.somaxconn`.
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    open(addr, backlog, false)
}

/// Stage 09: one listening socket per loop, all on one address, each with `SO_REUSEPORT`. The
/// kernel gives each new connection to one of them, chosen by a hash of the connection's
/// addresses and ports, so each loop accepts from its own queue and wakes only for its own
/// clients. The first socket picks the port (when `addr` asks for port 0); the others join it.
/// Only Linux spreads connections this way: macOS and the BSDs give them all to one socket.
pub fn bind_per_loop(addr: SocketAddr, backlog: u32, loops: usize) -> io::Result<Vec<TcpListener>> {
    // SO_REUSEPORT lets any process of the same user join a port's group: a second server
    // started by mistake on the same port would silently take half the clients. So look
    // first: if something already answers there, the address is in use, as for every stage.
    if addr.port() != 0
        && std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    {
        return Err(io::ErrorKind::AddrInUse.into());
    }
    let first = open(addr, backlog, true)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..loops {
        listeners.push(open(addr, backlog, true)?);
    }
    Ok(listeners)
}

fn open(addr: SocketAddr, backlog: u32, reuse_port: bool) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does on Unix: a restarted stage can bind its port again at once, even while
    // connections of the previous run linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    socket.bind(&addr.into())?;
    // The flag's range (1..=65535) fits an i32.
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// Remembers how long to pause after the next accept error.
#[derive(Debug)]
pub struct AcceptBackoff {
    pause: Duration,
    last_error: Option<Instant>,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff::new()
    }
}

/// Whether a failed `accept()` was about one client only, so the next one may well succeed.
fn only_that_client(error: &io::Error) -> bool {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) {
        return true;
    }
    // accept(2), NOTES: on Linux, accept() passes on the pending network errors of the new
    // connection; retry them as EAGAIN. (They are not in io::ErrorKind on our Rust version.)
    let network = [
        libc::ENETDOWN,
        libc::EPROTO,
        libc::ENOPROTOOPT,
        libc::EHOSTDOWN,
        #[cfg(target_os = "linux")]
        libc::ENONET,
        libc::EHOSTUNREACH,
        libc::EOPNOTSUPP,
        libc::ENETUNREACH,
    ];
    error
        .raw_os_error()
        .is_some_and(|code| network.contains(&code))
}

impl AcceptBackoff {
    pub fn new() -> AcceptBackoff {
        AcceptBackoff {
            pause: FIRST_PAUSE,
            last_error: None,
        }
    }

    /// Called with the error `accept()` returned: `None` to try the next connection at once,
    /// or the pause to take first, in which case the error is logged.
    pub fn after(&mut self, error: &io::Error) -> Option<Duration> {
        if only_that_client(error) {
            return None;
        }
        let pause = self.next();
        logging::warn(format_args!(
            "accept failed: {error}; retrying in {} ms",
            pause.as_millis()
        ));
        Some(pause)
    }

    /// The blocking loops: [`AcceptBackoff::after`], then sleep the pause it gives.
    pub fn wait(&mut self, error: &io::Error) {
        if let Some(pause) = self.after(error) {
            thread::sleep(pause);
        }
    }

    /// After a connection could not be handed off (stages 02 and 03: no thread for it). The
    /// next one would fail the same way, so pause before accepting it, as after an accept
    /// error, instead of accepting and resetting clients at full speed.
    pub fn pause(&mut self) {
        thread::sleep(self.next());
    }

    /// The pause to take now; the one after it is twice as long, up to a second.
    fn next(&mut self) -> Duration {
        // A quiet spell since the last error starts the back-off over.
        if self
            .last_error
            .is_some_and(|at| at.elapsed() > 2 * LONGEST_PAUSE)
        {
            self.pause = FIRST_PAUSE;
        }
        let pause = self.pause;
        self.last_error = Some(Instant::now());
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        pause
    }

    /// The pause the next error will cause (for tests).
    pub fn next_pause(&self) -> Duration {
        self.pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_second_and_skip_client_resets() {
        let mut backoff = AcceptBackoff::new();
        backoff.wait(&io::Error::from(io::ErrorKind::ConnectionAborted));
        assert_eq!(
            backoff.next_pause(),
            FIRST_PAUSE,
            "a client's reset costs no pause"
        );
        for code in [
            libc::EPROTO,
            libc::ENETUNREACH,
            libc::EHOSTUNREACH,
            libc::ENETDOWN,
        ] {
            assert_eq!(
                backoff.after(&io::Error::from_raw_os_error(code)),
                None,
                "accept(2)'s network error {code} is retried at once"
            );
        }
        assert_eq!(backoff.next_pause(), FIRST_PAUSE);
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(backoff.after(&emfile), Some(FIRST_PAUSE));
        assert_eq!(backoff.next_pause(), FIRST_PAUSE * 2);
        backoff.pause = FIRST_PAUSE;
        backoff.wait(&emfile);
        backoff.wait(&emfile);
        assert_eq!(backoff.next_pause(), FIRST_PAUSE * 4);
        backoff.pause = LONGEST_PAUSE / 2 + Duration::from_millis(1);
        backoff.wait(&emfile);
        assert_eq!(
            backoff.next_pause(),
            LONGEST_PAUSE,
            "never more than a second"
        );
    }
}
