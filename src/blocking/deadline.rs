//! Stage 05's deadlines: reads and writes that never wait past a point in time.
//!
//! `set_read_timeout` bounds each `read()` call, not the whole request. A client that sends
//! one byte every second never trips a 5-second read timeout, and it can keep a worker busy
//! for as long as it likes. A *deadline* is a point in time: before every read the time left
//! is recomputed and set as that read's timeout, so however the bytes trickle in, the request
//! must be complete by the deadline.
//!
//! Writing has the same trap. `set_write_timeout` plus `write_all` restarts the timeout on
//! every partial write, so a client that reads a few bytes now and then keeps a worker
//! writing for ever. [`write_all_by`] recomputes the time left before every write, like the
//! reader: the whole response must be written by its deadline.
//!
//! Introduced in chapter 5 (`docs/05-timeouts.md`).

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::http::Framed;

/// The two limits of stage 05 (and of the event loop's timers in stages 06 and 07).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// Total time to receive the request, head and body (`--header-timeout-ms`: named for the
    /// head, which is what a slow client mostly holds back).
    pub request: Duration,
    /// Total time to write the response (`--write-timeout-ms`).
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

/// The time left until `deadline`, as a socket timeout: `TimedOut` once it has passed.
/// (`set_read_timeout(Some(ZERO))` is an error, since zero would mean "no timeout" to the OS,
/// so an expired deadline is reported here instead of asked of the kernel.)
fn time_left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
    }
    Ok(left)
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            self.stream.set_read_timeout(Some(time_left(deadline)?))?;
        }
        let mut stream = self.stream;
        stream.read(buf)
    }
}

/// Writes all of `out`, failing with `TimedOut` if that is not done by `deadline`.
///
/// Without a deadline it writes as long as the client takes to read.
pub fn write_all_by(stream: &TcpStream, out: &Framed, deadline: Option<Instant>) -> io::Result<()> {
    let mut stream = stream;
    let mut sent = 0;
    while sent < out.len() {
        if let Some(deadline) = deadline {
            stream.set_write_timeout(Some(time_left(deadline)?))?;
        }
        match out.write_from(&mut stream, sent) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // set_write_timeout reports an expired timeout as WouldBlock on Unix.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "write deadline passed",
                ))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{SocketAddr, TcpListener};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
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

    /// A connected pair whose server side has a small send buffer, and a client that reads 1 KiB
    /// every 20 ms through a small receive window until `stop` is set: a write of megabytes
    /// always makes a little progress, and never finishes soon.
    fn slow_reader() -> (TcpStream, Arc<AtomicBool>, thread::JoinHandle<()>) {
        use socket2::{Domain, Socket, Type};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let reader = thread::spawn(move || {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            // Before connect, so the window the client offers is small from the start.
            socket.set_recv_buffer_size(4096).unwrap();
            socket.connect(&addr.into()).unwrap();
            let mut client: TcpStream = socket.into();
            let mut chunk = [0u8; 1024];
            while !stopped.load(Ordering::Relaxed) {
                if matches!(client.read(&mut chunk), Ok(0) | Err(_)) {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        let (server_side, _) = listener.accept().unwrap();
        socket2::SockRef::from(&server_side)
            .set_send_buffer_size(4096)
            .unwrap();
        (server_side, stop, reader)
    }

    /// The tempting version: a write timeout of 300 ms and `write_all`. Every partial write
    /// starts the 300 ms over, so against a client that reads a little every 20 ms it is still
    /// writing after 1.5 s (and would be for a minute).
    #[test]
    fn a_slow_reader_never_trips_a_per_write_timeout() {
        let (server_side, stop, reader) = slow_reader();
        server_side
            .set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let writer = thread::spawn(move || {
            let mut stream = &server_side;
            let result = stream.write_all(&vec![b'x'; 4 * 1024 * 1024]);
            (result.map_err(|e| e.kind()), server_side)
        });
        thread::sleep(Duration::from_millis(1500));
        assert!(
            !writer.is_finished(),
            "a per-write timeout should not have stopped this write"
        );
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        let _ = writer.join().unwrap();
    }

    /// The same client against a 300 ms write *deadline* is cut at the deadline.
    #[test]
    fn a_slow_reader_is_cut_at_the_write_deadline() {
        let (server_side, stop, reader) = slow_reader();
        let started = Instant::now();
        let result = write_all_by(
            &server_side,
            &Framed::interim(&vec![b'x'; 4 * 1024 * 1024]),
            Some(started + Duration::from_millis(300)),
        );
        let took = started.elapsed();
        assert_eq!(result.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
        assert!(took >= Duration::from_millis(290), "cut early: {took:?}");
        assert!(took < Duration::from_millis(1500), "cut late: {took:?}");
        stop.store(true, Ordering::Relaxed);
        drop(server_side);
        reader.join().unwrap();
    }
}
