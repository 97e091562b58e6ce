//! One request, the client's half of the conversation: connect, send, read, close.
//!
//! This is what a stage's `handle_connection` talks to. Every step has a deadline, because
//! a load generator that waits forever on one stuck server measures nothing: the connect
//! gets `--connect-timeout-ms`, and the whole exchange must be over by its deadline, however
//! the response trickles in (the same idea as stage 05's `DeadlineReader`, from this side).
//!
//! A successful request allocates nothing: the request bytes are built once per run and the
//! read buffer once per client thread, so the generator spends its time in the kernel, like
//! the server.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::response::{self, Head};

/// Why a request failed, in the words of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Nobody listens on the port (or its backlog is full on some systems): `ECONNREFUSED`.
    Refused,
    /// The server cut the connection (`ECONNRESET`, `EPIPE`) or closed it before a whole
    /// response.
    Reset,
    /// The connect or the whole request took longer than allowed.
    Timeout,
    /// A complete response whose status is not 2xx.
    BadStatus,
    /// Anything else: a response we cannot parse, no free local port, too many open files...
    Other,
}

impl Failure {
    pub const ALL: [Failure; 5] = [
        Failure::Refused,
        Failure::Reset,
        Failure::Timeout,
        Failure::BadStatus,
        Failure::Other,
    ];

    /// The name used in the report and as the JSON key.
    pub fn name(self) -> &'static str {
        match self {
            Failure::Refused => "refused",
            Failure::Reset => "reset",
            Failure::Timeout => "timeout",
            Failure::BadStatus => "bad_status",
            Failure::Other => "other",
        }
    }

    /// Sorts an I/O error into one of the kinds.
    pub fn of(error: &io::Error) -> Failure {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => Failure::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Failure::Reset,
            // A read timeout shows up as WouldBlock on Unix and TimedOut on Windows.
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Failure::Timeout,
            _ => Failure::Other,
        }
    }
}

/// A failed request: its kind, and what happened, for the report's first example.
#[derive(Debug)]
pub struct Failed {
    pub kind: Failure,
    pub error: io::Error,
}

impl From<io::Error> for Failed {
    fn from(error: io::Error) -> Failed {
        Failed {
            kind: Failure::of(&error),
            error,
        }
    }
}

fn failed(kind: Failure, why: &str) -> Failed {
    Failed {
        kind,
        error: io::Error::other(why.to_string()),
    }
}

/// Where to send, and how long to allow.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub addr: SocketAddr,
    pub request: &'a [u8],
    pub connect_timeout: Duration,
}

/// Sends one request and reads its whole response, all before `deadline`. Returns the status
/// of a 2xx response; any other status is [`Failure::BadStatus`].
///
/// `buf` is the caller's, reused for every request; the response head must fit in it.
pub fn get(target: &Target<'_>, deadline: Instant, buf: &mut [u8]) -> Result<u16, Failed> {
    let stream = connect(target.addr, target.connect_timeout, deadline)?;
    (&stream).write_all(target.request)?;
    let head = read_response(&stream, deadline, buf)?;
    if (200..300).contains(&head.status) {
        Ok(head.status)
    } else {
        Err(failed(Failure::BadStatus, "status is not 2xx"))
    }
    // `stream` is dropped here, which closes the socket: one request per connection.
}

/// Connects, giving up at the connect timeout or the deadline, whichever comes first.
///
/// A plain `TcpStream::connect` has no limit: when a server's listen backlog is full, Linux
/// drops our handshake and retries it for minutes.
pub fn connect(
    addr: SocketAddr,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<TcpStream, Failed> {
    let allowed = connect_timeout.min(time_left(deadline)?);
    Ok(TcpStream::connect_timeout(&addr, allowed)?)
}

/// Reads the head, then the body, discarding the body as it comes.
fn read_response(stream: &TcpStream, deadline: Instant, buf: &mut [u8]) -> Result<Head, Failed> {
    let mut filled = 0;
    let head = loop {
        if filled == buf.len() {
            return Err(failed(Failure::Other, "response head too large"));
        }
        let n = read_before(stream, deadline, &mut buf[filled..])?;
        if n == 0 {
            return Err(failed(Failure::Reset, "closed before a whole response"));
        }
        filled += n;
        match response::parse_head(&buf[..filled]) {
            Ok(Some(head)) => break head,
            Ok(None) => continue,
            Err(malformed) => return Err(failed(Failure::Other, malformed.0)),
        }
    };
    let mut body_read = (filled - head.len) as u64;
    loop {
        if head
            .content_length
            .is_some_and(|length| body_read >= length)
        {
            return Ok(head);
        }
        let n = read_before(stream, deadline, buf)?;
        match (n, head.content_length) {
            // No Content-Length: the server's close marks the end of the body.
            (0, None) => return Ok(head),
            (0, Some(_)) => return Err(failed(Failure::Reset, "closed before the whole body")),
            _ => body_read += n as u64,
        }
    }
}

/// One `read`, allowed to wait only until the deadline.
fn read_before(stream: &TcpStream, deadline: Instant, buf: &mut [u8]) -> Result<usize, Failed> {
    stream.set_read_timeout(Some(time_left(deadline)?))?;
    let mut stream = stream;
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return Ok(result?),
        }
    }
}

/// The time until `deadline`, or a timeout if it has passed. Never zero: a zero timeout
/// means "no timeout" to the socket API.
fn time_left(deadline: Instant) -> Result<Duration, Failed> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(left) if left >= Duration::from_micros(1) => Ok(left),
        _ => Err(failed(Failure::Timeout, "deadline passed")),
    }
}

/// `GET` a small page (the server's `/stats`) and return its body as text, or `None` if the
/// server does not answer 200 in time.
pub fn fetch_text(target: &Target<'_>, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(target.addr, target.connect_timeout, deadline).ok()?;
    stream.write_all(target.request).ok()?;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    // Bounded by the deadline (every read) and by size: /stats is one short line.
    while bytes.len() < 64 * 1024 {
        match read_before(&stream, deadline, &mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
        if let Ok(Some(head)) = response::parse_head(&bytes) {
            let end = head.content_length.map(|n| head.len + n as usize);
            if end.is_some_and(|end| bytes.len() >= end) {
                break;
            }
        }
    }
    let head = response::parse_head(&bytes).ok()??;
    let end = head
        .content_length
        .map_or(bytes.len(), |n| head.len + n as usize);
    (head.status == 200 && bytes.len() >= end)
        .then(|| String::from_utf8_lossy(&bytes[head.len..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A one-shot server on a free port that answers the first connection with `reply`.
    fn serve_once(reply: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = conn.read(&mut request);
            // Send in two pieces, so the head is split across reads.
            let (a, b) = reply.split_at(reply.len() / 2);
            conn.write_all(a).unwrap();
            thread::sleep(Duration::from_millis(20));
            let _ = conn.write_all(b);
        });
        addr
    }

    fn request_to(addr: SocketAddr) -> Result<u16, Failure> {
        let target = Target {
            addr,
            request: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            connect_timeout: Duration::from_secs(2),
        };
        let mut buf = [0u8; 1024];
        get(&target, Instant::now() + Duration::from_secs(5), &mut buf).map_err(|f| f.kind)
    }

    /// A response split across reads is put back together and its status checked.
    #[test]
    fn a_whole_response_in_pieces_is_ok() {
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nHello World\n");
        assert_eq!(request_to(addr), Ok(200));
    }

    /// A status outside 2xx is a failure of its own kind.
    #[test]
    fn a_408_is_a_bad_status() {
        let addr = serve_once(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(request_to(addr), Err(Failure::BadStatus));
    }

    /// A body cut short is the server closing on us, not a success.
    #[test]
    fn a_short_body_is_a_reset() {
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
        assert_eq!(request_to(addr), Err(Failure::Reset));
    }

    /// Connecting to a port nobody listens on is "refused".
    #[test]
    fn a_closed_port_is_refused() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap(); // the listener is dropped: the port is closed again
        assert_eq!(request_to(addr), Err(Failure::Refused));
    }

    /// A server that accepts and never answers is a timeout at the deadline.
    #[test]
    fn silence_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = Target {
            addr: listener.local_addr().unwrap(),
            request: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            connect_timeout: Duration::from_secs(2),
        };
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        let result = get(&target, started + Duration::from_millis(200), &mut buf);
        assert_eq!(result.map_err(|f| f.kind), Err(Failure::Timeout));
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(listener);
    }

    /// `/stats` comes back as its body text.
    #[test]
    fn fetch_text_returns_the_body() {
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"a\":1}\n\n");
        let target = Target {
            addr,
            request: b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n",
            connect_timeout: Duration::from_secs(2),
        };
        assert_eq!(
            fetch_text(&target, Duration::from_secs(5)).as_deref(),
            Some("{\"a\":1}\n\n")
        );
    }

    /// Error kinds map onto the report's words.
    #[test]
    fn io_errors_sort_into_kinds() {
        let kind = |k| Failure::of(&io::Error::from(k));
        assert_eq!(kind(io::ErrorKind::ConnectionRefused), Failure::Refused);
        assert_eq!(kind(io::ErrorKind::ConnectionReset), Failure::Reset);
        assert_eq!(kind(io::ErrorKind::BrokenPipe), Failure::Reset);
        assert_eq!(kind(io::ErrorKind::WouldBlock), Failure::Timeout);
        assert_eq!(kind(io::ErrorKind::AddrNotAvailable), Failure::Other);
    }
}
