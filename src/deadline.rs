//! Stage 05's deadlines: a reader that never waits past a point in time.
//!
//! `set_read_timeout` bounds each `read()` call, not the whole request. A client that sends
//! one byte every second never trips a 5-second read timeout, and it can keep a worker busy
//! for as long as it likes. A *deadline* is a point in time: before every read the time left
//! is recomputed and set as that read's timeout, so however the bytes trickle in, the request
//! head must be complete by the deadline.
//!
//! Introduced in chapter 5 (`docs/05-timeouts.md`).

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The two limits of stage 05.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// Total time from the first read to the end of the request head.
    pub header: Duration,
    /// Longest a single write may stall (a client that stopped reading).
    pub write: Duration,
}

/// Reads from a socket, failing with `TimedOut` once the deadline has passed.
///
/// Without a deadline (stages 01-04) it is a plain read that waits as long as the client
/// likes: exactly the weakness stage 05 fixes.
#[derive(Debug)]
pub struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Option<Instant>,
}

impl<'a> DeadlineReader<'a> {
    pub fn new(stream: &'a TcpStream, deadline: Option<Instant>) -> Self {
        DeadlineReader { stream, deadline }
    }
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            // set_read_timeout(Some(ZERO)) is an error (zero would mean "no timeout" to the
            // OS), so an expired deadline is reported here instead of asked of the kernel.
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
            }
            self.stream.set_read_timeout(Some(left))?;
        }
        let mut stream = self.stream;
        stream.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::thread;

    /// A peer trickling a byte every 50 ms never trips a 100 ms per-read timeout, but a 300 ms
    /// deadline cuts it off after about 300 ms.
    #[test]
    fn a_trickling_peer_is_cut_at_the_deadline_not_later() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let trickler = thread::spawn(move || {
            let mut client = TcpStream::connect(addr).unwrap();
            for _ in 0..40 {
                if client.write_all(b"x").is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        let (server_side, _) = listener.accept().unwrap();
        let started = Instant::now();
        let mut reader =
            DeadlineReader::new(&server_side, Some(started + Duration::from_millis(300)));
        let mut byte = [0u8; 1];
        let error = loop {
            match reader.read(&mut byte) {
                Ok(0) => panic!("peer closed before the deadline"),
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        let took = started.elapsed();
        assert!(
            matches!(
                error.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            "{error}"
        );
        assert!(
            took >= Duration::from_millis(290),
            "cut too early: {took:?}"
        );
        assert!(took < Duration::from_millis(1500), "cut too late: {took:?}");
        drop(server_side);
        trickler.join().unwrap();
    }
}
