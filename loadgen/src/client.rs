//! One request, the client's half of the conversation: connect (or reuse the connection
//! kept from the last one), send, read, and close unless the connection is kept.
//!
//! This is what a stage's `handle_connection` talks to. Every step has a deadline, because
//! a load generator that waits forever on one stuck server measures nothing: the connect
//! gets `--connect-timeout-ms`, and the whole exchange must be over by its deadline, however
//! the response trickles in (the same idea as stage 05's `DeadlineReader`, from this side).
//!
//! A successful request allocates nothing: the request bytes are built once per run and the
//! read buffer once per client thread, so the generator spends its time in the kernel, like
//! the server. It does read the clock at each step ([`Phases`]), a few tens of nanoseconds
//! each, so that `--trace` can say where the time went.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::board::{Slot, State};
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

/// Failed requests (or connects), counted by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failures([u64; Failure::ALL.len()]);

impl Failures {
    pub fn count(&mut self, kind: Failure) {
        self.0[kind as usize] += 1;
    }

    pub fn get(&self, kind: Failure) -> u64 {
        self.0[kind as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    pub fn add(&mut self, other: Failures) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
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
    /// Keep the connection for the next request when the server allows it (`--keep-alive`;
    /// `request` then has no `Connection: close`).
    pub keep_alive: bool,
}

/// When each step of one request happened, for `--trace`; `None` for a step not reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phases {
    /// Sent over a connection kept from the previous request.
    pub reused: bool,
    pub connect: Option<Instant>,
    pub connected: Option<Instant>,
    pub sent: Option<Instant>,
    pub first_byte: Option<Instant>,
    /// The status line's code, whatever it was.
    pub status: Option<u16>,
}

/// One healthy client's side of the conversation: its connection, when it keeps one, and
/// its read buffer, both kept from one request to the next.
#[derive(Debug)]
pub struct Client<'a> {
    target: Target<'a>,
    /// The connection the last response left open, with `--keep-alive`.
    kept: Option<TcpStream>,
    buf: Vec<u8>,
    /// Connections this client opened (handshakes the server had to do).
    pub connections: u64,
    /// Requests sent again on a fresh connection because the server had closed the kept one.
    pub retries: u64,
}

impl<'a> Client<'a> {
    /// `buffer` bytes must hold a response head.
    pub fn new(target: Target<'a>, buffer: usize) -> Client<'a> {
        Client {
            target,
            kept: None,
            buf: vec![0; buffer.max(1)],
            connections: 0,
            retries: 0,
        }
    }

    /// Sends one request and reads its whole response, all before `deadline`. Returns the
    /// status of a 2xx response; any other status is [`Failure::BadStatus`]. `phases` says
    /// when each step happened; `slot` tells the live view where the client is.
    ///
    /// A kept connection is used first. A server may close an idle connection at any moment,
    /// and its close can cross our request on the wire (RFC 9112 section 9.3.1): then the
    /// request meets an end of file or a reset before the first byte of an answer. A GET is
    /// safe to repeat, so it is sent once more on a fresh connection and counted in
    /// `retries`, not as a failure. Any other error on a kept connection is a failure.
    pub fn request(
        &mut self,
        deadline: Instant,
        slot: &Slot,
        phases: &mut Phases,
    ) -> Result<u16, Failed> {
        if let Some(stream) = self.kept.take() {
            *phases = Phases {
                reused: true,
                ..Phases::default()
            };
            match self.exchange(stream, deadline, slot, phases) {
                Err(failed) if failed.kind == Failure::Reset && phases.first_byte.is_none() => {
                    self.retries += 1;
                }
                result => return result,
            }
        }
        *phases = Phases {
            connect: Some(Instant::now()),
            ..Phases::default()
        };
        slot.set(State::Connecting);
        let stream = connect(self.target.addr, self.target.connect_timeout, deadline)?;
        phases.connected = Some(Instant::now());
        self.connections += 1;
        self.exchange(stream, deadline, slot, phases)
    }

    /// Sends the request on `stream` and reads the answer; keeps the stream if it may carry
    /// the next request, else drops it, which closes it.
    fn exchange(
        &mut self,
        stream: TcpStream,
        deadline: Instant,
        slot: &Slot,
        phases: &mut Phases,
    ) -> Result<u16, Failed> {
        slot.set(State::Waiting);
        phases.sent = Some(Instant::now());
        (&stream).write_all(self.target.request)?;
        let (head, exact) =
            read_response(&stream, deadline, &mut self.buf, &mut phases.first_byte)?;
        phases.status = Some(head.status);
        // More bytes than the response: the framing cannot be trusted for another request.
        if self.target.keep_alive && head.persistent() && exact {
            self.kept = Some(stream);
        }
        if (200..300).contains(&head.status) {
            Ok(head.status)
        } else {
            Err(failed(Failure::BadStatus, "status is not 2xx"))
        }
    }
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

/// Reads the head, then the body, discarding the body as it comes. Sets `first_byte` when
/// the first byte arrives. Returns the head, and whether exactly the response was read (no
/// byte beyond its `Content-Length`).
pub fn read_response(
    stream: &TcpStream,
    deadline: Instant,
    buf: &mut [u8],
    first_byte: &mut Option<Instant>,
) -> Result<(Head, bool), Failed> {
    let mut filled = 0;
    let head = loop {
        if filled == buf.len() {
            return Err(failed(Failure::Other, "response head too large"));
        }
        let n = read_before(stream, deadline, &mut buf[filled..])?;
        if n == 0 {
            return Err(failed(Failure::Reset, "closed before a whole response"));
        }
        if filled == 0 {
            *first_byte = Some(Instant::now());
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
        if let Some(length) = head.content_length {
            if body_read >= length {
                return Ok((head, body_read == length));
            }
        }
        let n = read_before(stream, deadline, buf)?;
        match (n, head.content_length) {
            // No Content-Length: the server's close marks the end of the body.
            (0, None) => return Ok((head, true)),
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
            if let Some(length) = head.content_length {
                if bytes.len() >= body_end(head.len, length)? {
                    break;
                }
            }
        }
    }
    let head = response::parse_head(&bytes).ok()??;
    let end = match head.content_length {
        Some(length) => body_end(head.len, length)?,
        // No Content-Length: the body ran to the server's close.
        None => bytes.len(),
    };
    (head.status == 200 && bytes.len() >= end)
        .then(|| String::from_utf8_lossy(&bytes[head.len..end]).into_owned())
}

/// Where a body of `length` bytes that follows a head of `head_len` bytes ends; `None` if
/// that is past any memory (the length is the server's word: it may be anything).
fn body_end(head_len: usize, length: u64) -> Option<usize> {
    usize::try_from(length).ok()?.checked_add(head_len)
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

    fn target(addr: SocketAddr) -> Target<'static> {
        Target {
            addr,
            request: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            connect_timeout: Duration::from_secs(2),
            keep_alive: false,
        }
    }

    fn request_to(addr: SocketAddr) -> Result<u16, Failure> {
        let mut client = Client::new(target(addr), 1024);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut phases = Phases::default();
        client
            .request(deadline, &Slot::default(), &mut phases)
            .map_err(|f| f.kind)
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
        let mut client = Client::new(target(listener.local_addr().unwrap()), 1024);
        let started = Instant::now();
        let mut phases = Phases::default();
        let deadline = started + Duration::from_millis(200);
        let result = client.request(deadline, &Slot::default(), &mut phases);
        assert_eq!(result.map_err(|f| f.kind), Err(Failure::Timeout));
        assert!(started.elapsed() >= Duration::from_millis(200));
        // Connected and sent, but not one byte came back.
        assert!(phases.connected.is_some() && phases.sent.is_some());
        assert_eq!((phases.first_byte, phases.status), (None, None));
        drop(listener);
    }

    /// Every step of a request is stamped, in order, and the status is kept.
    #[test]
    fn the_phases_of_a_request_are_in_order() {
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nHello World\n");
        let mut client = Client::new(target(addr), 1024);
        let mut phases = Phases::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            client
                .request(deadline, &Slot::default(), &mut phases)
                .map_err(|f| f.kind),
            Ok(200)
        );
        let steps = [
            phases.connect,
            phases.connected,
            phases.sent,
            phases.first_byte,
        ];
        let steps: Vec<Instant> = steps.into_iter().map(Option::unwrap).collect();
        assert!(
            steps.windows(2).all(|pair| pair[0] <= pair[1]),
            "{phases:?}"
        );
        assert_eq!((phases.reused, phases.status), (false, Some(200)));
        assert_eq!((client.connections, client.retries), (1, 0));
    }

    /// `/stats` comes back as its body text.
    #[test]
    fn fetch_text_returns_the_body() {
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"a\":1}\n\n");
        let target = Target {
            request: b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n",
            ..target(addr)
        };
        assert_eq!(
            fetch_text(&target, Duration::from_secs(5)).as_deref(),
            Some("{\"a\":1}\n\n")
        );
    }

    /// A `Content-Length` no memory could hold is a failed fetch, not a panic.
    #[test]
    fn fetch_text_refuses_an_impossible_length() {
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n{}");
        let target = Target {
            request: b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n",
            ..target(addr)
        };
        assert_eq!(fetch_text(&target, Duration::from_secs(5)), None);
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
