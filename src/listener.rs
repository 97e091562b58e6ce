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
//! back-off here logs the error and sleeps, doubling the pause up to a second while errors
//! keep coming.
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
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does on Unix: a restarted stage can bind its port again at once, even while
    // connections of the previous run linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
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

impl AcceptBackoff {
    pub fn new() -> AcceptBackoff {
        AcceptBackoff {
            pause: FIRST_PAUSE,
            last_error: None,
        }
    }

    /// Called with the error `accept()` returned: logs it and pauses before the next try.
    pub fn wait(&mut self, error: &io::Error) {
        // A connection that was reset or aborted before we accepted it is that client's
        // problem, not ours: try the next one straight away.
        if matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
        ) {
            return;
        }
        // A quiet spell since the last error starts the back-off over.
        if self
            .last_error
            .is_some_and(|at| at.elapsed() > 2 * LONGEST_PAUSE)
        {
            self.pause = FIRST_PAUSE;
        }
        logging::warn(format_args!(
            "accept failed: {error}; retrying in {} ms",
            self.pause.as_millis()
        ));
        thread::sleep(self.pause);
        self.last_error = Some(Instant::now());
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
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
        let emfile = io::Error::other("Too many open files");
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
