//! Just enough HTTP/1.1 to answer a request properly: read the head, parse it, frame a response.
//!
//! TCP delivers a stream of bytes, not messages. HTTP/1.1 puts the framing on top: a request
//! *head* (request line, header lines, an empty line), then a body whose length the head
//! declares, by `Content-Length` or by the chunked transfer coding. This module finds the end
//! of the head across any number of reads ([`Input`]), parses it without copying (a
//! [`Request`] borrows from the read buffer), says how its body is framed (the body itself is
//! read and thrown away by [`crate::http::body`]), and writes responses with an exact
//! `Content-Length`.
//!
//! [`Input`] is fed by whoever reads the socket: [`read_head`] with a blocking reader in
//! stages 01-05, the event loop with non-blocking reads in stages 06 and 07. One parser, two
//! ways of waiting for bytes.
//!
//! Introduced in chapter 0 (`docs/00-the-cafe.md`).
//!
//! # Decisions, with the part of RFC 9112 / RFC 9110 behind each
//!
//! | case | answer | RFC |
//! |---|---|---|
//! | request line not `method SP target SP version`, or extra/other spaces | 400 | 9112 §3 |
//! | method not a token (methods are case-sensitive: `get` is a different, unknown method) | 400 | 9110 §9.1 |
//! | target not origin-form (`/…`), absolute-form (`http://…`) or `*` | 400 | 9112 §3.2 |
//! | version not `HTTP/DIGIT.DIGIT` | 400 | 9112 §2.3 |
//! | `HTTP/1.x` with x above 1 (`HTTP/1.2`) | served as HTTP/1.1, the highest 1.x we speak | 9110 §2.5 |
//! | version well formed with another major version (`HTTP/2.0`, `HTTP/0.9`) | 505 | 9110 §2.5, §15.6.6 |
//! | request line longer than [`MAX_REQUEST_LINE`] | 414 (400 if it is not even a method and a `/`) | 9112 §3 |
//! | a request line still arriving whose method already is not a token (a TLS handshake, binary) | 400 at once, not at its line end | 9112 §3 |
//! | empty lines before the request line | ignored (400 if they fill the [`MAX_HEAD`] buffer) | 9112 §2.2 |
//! | header name not a token, or whitespace before the colon | 400 | 9112 §5.1 |
//! | header value with a control byte other than tab (NUL, bare CR, DEL…), at its ends too: only spaces and tabs are trimmed | 400 | 9110 §5.5, §5.6.3 |
//! | header value bytes 0x80–0xFF (not UTF-8) | accepted, kept as bytes | 9110 §5.5 (obs-text) |
//! | a line starting with space or tab (obs-fold) | 400 | 9112 §5.2 |
//! | a line ending in bare LF instead of CRLF | accepted | 9112 §2.2 |
//! | head (request line + headers) over [`MAX_HEAD`] bytes or [`MAX_HEADERS`] lines | 431 | RFC 6585 §5 |
//! | HTTP/1.1 without Host; any request with two Host lines or an invalid Host | 400 | 9112 §3.2 |
//! | `Transfer-Encoding` and `Content-Length` both present | 400 | 9112 §6.1, §6.3 |
//! | `Transfer-Encoding` in an HTTP/1.0 request | 400 (its framing cannot be trusted) | 9112 §6.1 |
//! | `Transfer-Encoding` whose last coding is not `chunked` (or `chunked` twice, or not a list of tokens) | 400 | 9112 §6.1, §6.3 |
//! | `Transfer-Encoding: chunked` | the chunked body is decoded and thrown away (see [`crate::http::body`]) | 9112 §7.1 |
//! | another coding before `chunked` (`gzip, chunked`) | 501 | 9112 §6.1 |
//! | `Content-Length` not digits, signed, too big for u64, or several different values | 400 | 9112 §6.3 |
//! | `Content-Length` over [`MAX_BODY`], or chunked data over it | 413 | 9110 §15.5.14 |
//! | `Expect: 100-continue` (HTTP/1.1) on a request whose body we will read | `100 Continue` first, then the body is read | 9110 §10.1.1 |
//! | `Expect: 100-continue` on a request refused anyway | the final status at once, without waiting for the body | 9110 §10.1.1 |
//! | `Expect: 100-continue` in HTTP/1.0, or another expectation | ignored | 9110 §10.1.1 |
//! | method unknown | 501 | 9110 §9.1 |
//! | method known but not GET or HEAD | 405 with `Allow: GET, HEAD` | 9110 §15.5.6 |
//! | stage 08: the request computes, and `--cpu-queue` orders already wait for the kitchen | 503 with `Retry-After: 1`, then closed | 9110 §15.6.4, §10.2.3 |
//! | a response that may be kept by caches (`/stats` changes with every request) | `Cache-Control: no-store` | 9111 §5.2.2.5 |
//!
//! Persistent connections (stage 07; stages 01-06 close after every response, and say so):
//!
//! | case | answer | RFC |
//! |---|---|---|
//! | an HTTP/1.1 request | the connection is kept: no `Connection` header, `Keep-Alive: timeout=N` says for how long | 9112 §9.3 |
//! | `Connection: close` from the client | the response says `Connection: close`, then the connection closes | 9112 §9.6 |
//! | HTTP/1.0 without `Connection: keep-alive` | closed after the response, which says so | 9112 §9.3 |
//! | HTTP/1.0 with `Connection: keep-alive` | kept; the response says `Connection: keep-alive` | 9112 §9.3, Appendix C.2.2 |
//! | bytes after a request and its body | the next request (pipelining): answered in order, one at a time | 9112 §9.3.2 |
//! | a refused request (its body unread), a 408, the `--max-requests`th request, or Ctrl-C | `Connection: close`, then closed | 9112 §9.6 |
//! | no byte of a next request within `--keep-alive-ms` | closed quietly, without a response | 9112 §9.5 |
//! | empty lines between two requests | not a request: the connection stays idle | 9112 §2.2 |
//! | a request read before Ctrl-C, not yet started (pipelined) | answered, with `Connection: close` | 9112 §9.6 |
//! | Ctrl-C while a response that keeps the connection is written | written as framed; the connection, idle after it, is then closed quietly (a client sends its next request on a new one) | 9112 §9.5 |
//! | `--max-conns` reached with kept connections idle | the one idle the longest is closed quietly to make room | 9112 §9.5 |
//!
//! Deadlines (stage 05 on):
//!
//! | case | answer | RFC |
//! |---|---|---|
//! | part of a request, not all of it, by `--header-timeout-ms` | 408, `Connection: close` | 9110 §15.5.9 |
//! | no byte of a request by `--header-timeout-ms` (empty lines count as none) | stage 05: 408, as chapter 5 shows; the event loop (06, 07): closed quietly, as nginx and Go's net/http do, since there is no request to answer | 9110 §15.5.9, 9112 §9.5 |
//! | the response not written by `--write-timeout-ms` | the connection is closed (nothing else can be said) | 9112 §9.5 |
//!
//! Framing (Host, Transfer-Encoding, Content-Length) is judged before the method, so a POST
//! with a broken Content-Length gets 400, not 405: the server cannot tell where such a message
//! ends (RFC 9112 §6.3). A valid body is read and thrown away so the client is not reset while
//! it is still sending. A request that is rejected is answered at once, without waiting for its
//! body. Stages 01 to 06 read one request per connection: anything after it is ignored and the
//! connection is closed after exactly one response (`Connection: close`); stage 07 reads the
//! bytes after a request as the next one.
//!
//! Every answer above is the same however the bytes are split into reads, and no answer needs
//! more than [`MAX_HEAD`] bytes from the client (`tests/parser_props.rs` checks both on
//! generated inputs). After an error the handler closes gracefully, so the client reads the
//! answer rather than a reset (see `handler.rs`); `tests/robust_*.rs` prove each row above
//! against the real binaries.

use std::fmt::Write as _;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::time::Duration;

pub mod body;
pub mod handler;

pub use body::Framing;

/// The most bytes a request head may have, request line included. Browsers send 1-2 KiB; it
/// must hold the longest request line ([`MAX_REQUEST_LINE`]) and a few headers after it. It
/// is also the most the read buffer grows to: memory per connection stays bounded however
/// the bytes arrive.
pub const MAX_HEAD: usize = 16 * 1024;
/// The read buffer's first size. Most heads fit (curl's is under 100 bytes), and a
/// connection that has sent nothing yet holds 1 KiB instead of [`MAX_HEAD`]: with a thread
/// per connection, that is most of what an idle client costs.
pub const FIRST_READ: usize = 1024;
// read_request's `clamp(FIRST_READ, MAX_HEAD)` would panic the other way round.
const _: () = assert!(FIRST_READ <= MAX_HEAD);
/// The longest request line; a longer one is answered 414 as soon as it is seen. RFC 9112
/// section 3 recommends accepting at least 8000 octets; nginx's default is 8 KiB too.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
const _: () = assert!(MAX_REQUEST_LINE >= 8000 && MAX_REQUEST_LINE < MAX_HEAD);
/// The most header lines in one request.
pub const MAX_HEADERS: usize = 64;
/// The largest body read and discarded; larger declared bodies are answered 413.
pub const MAX_BODY: u64 = 64 * 1024;

/// The request methods of RFC 9110 (and PATCH, RFC 5789). Any other token is "unknown" (501).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
}

impl Method {
    fn from_token(token: &[u8]) -> Option<Method> {
        Some(match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"CONNECT" => Method::Connect,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            _ => return None,
        })
    }
}

/// The two versions this server speaks. `HTTP/1.2` and up are read as [`Version::Http11`]:
/// a minor version only adds what a 1.1 recipient may ignore (RFC 9110 §2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// One header line. Values are bytes: RFC 9110 allows bytes that are not UTF-8 (obs-text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// A parsed request head, borrowing from the buffer it was read into.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The request line as sent, for the log.
    pub line: &'a str,
    /// `None` for a well-formed method token that is not one of [`Method`]'s.
    pub method: Option<Method>,
    pub target: &'a str,
    pub version: Version,
    pub headers: Vec<Header<'a>>,
    /// Where the body ends: no body, `Content-Length`, or chunked.
    pub framing: Framing,
    /// HTTP/1.1 with `Expect: 100-continue`: the client waits for our go-ahead before it sends
    /// the body.
    pub expect_continue: bool,
    /// What the `Connection` header asked for.
    pub connection: ConnectionOptions,
}

/// The options of a request's `Connection` header that decide whether the connection stays
/// open after the response (RFC 9112 §9.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// `close`: the client will send nothing more.
    pub close: bool,
    /// `keep-alive`: an HTTP/1.0 client asking for a persistent connection.
    pub keep_alive: bool,
}

impl Request<'_> {
    /// The path of the target, without the query and without an absolute-form's
    /// `scheme://authority`: `/stats?x=1` and `http://host/stats` both give `/stats`.
    pub fn path(&self) -> &str {
        let mut target = self.target;
        if let Some(rest) = target
            .strip_prefix("http://")
            .or(target.strip_prefix("https://"))
        {
            target = rest.find('/').map_or("/", |slash| &rest[slash..]);
        }
        target.split(['?', '#']).next().unwrap_or(target)
    }

    /// The value of the first header named `name` (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value)
    }

    /// Whether the client is ready for another request on this connection after the
    /// response: HTTP/1.1 unless it said `close`, HTTP/1.0 only if it said `keep-alive`
    /// (RFC 9112 §9.3).
    pub fn wants_persistence(&self) -> bool {
        !self.connection.close && (self.version == Version::Http11 || self.connection.keep_alive)
    }

    /// The elements of every `name` header line together, as one comma-separated list
    /// (RFC 9110 §5.3): empty elements dropped, optional whitespace trimmed.
    fn list(&self, name: &'static str) -> impl Iterator<Item = &[u8]> + '_ {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .flat_map(|h| h.value.split(|&b| b == b','))
            .map(trim_ows)
            .filter(|item| !item.is_empty())
    }
}

/// A status line this server can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    ContentTooLarge,
    UriTooLong,
    HeaderFieldsTooLarge,
    NotImplemented,
    ServiceUnavailable,
    VersionNotSupported,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::ContentTooLarge => 413,
            Status::UriTooLong => 414,
            Status::HeaderFieldsTooLarge => 431,
            Status::NotImplemented => 501,
            Status::ServiceUnavailable => 503,
            Status::VersionNotSupported => 505,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::ContentTooLarge => "Content Too Large",
            Status::UriTooLong => "URI Too Long",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::NotImplemented => "Not Implemented",
            Status::ServiceUnavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

/// Why a request was refused: the status to answer with and a sentence for the body and log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: Status,
    pub why: &'static str,
}

fn reject(status: Status, why: &'static str) -> Rejection {
    Rejection { status, why }
}

/// How reading a request can fail.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed before sending a complete request: nothing to answer.
    Closed,
    /// A read deadline passed (stage 05); the caller may still answer 408.
    TimedOut,
    /// The bytes are not an acceptable request; answer with the rejection's status.
    Rejected(Rejection),
    /// The connection failed (reset, ...).
    Io(io::Error),
}

impl From<Rejection> for ReadError {
    fn from(rejection: Rejection) -> Self {
        ReadError::Rejected(rejection)
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            // set_read_timeout reports an expired timeout as WouldBlock on Unix, TimedOut on
            // Windows.
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ReadError::TimedOut,
            _ => ReadError::Io(e),
        }
    }
}

/// The bytes a connection has received and not yet used up: a request head on its way in,
/// then whatever follows it (the start of a body, or of the next request).
///
/// Whoever reads the socket asks for [`Input::space`], reads into it, and reports the count
/// to [`Input::received`], which judges what it can as early as it can and says when the head
/// is complete. The buffer is allocated on the first read, starts at [`FIRST_READ`] bytes and
/// doubles when a head does not fit, up to [`MAX_HEAD`]: never more, so memory per connection
/// is bounded however the bytes arrive.
#[derive(Debug, Default)]
pub struct Input {
    buf: Vec<u8>,
    filled: usize,
    /// How far the search for the head's end has looked, so each read scans only new bytes.
    scanned: usize,
    /// Whether the request line has been judged already.
    line_checked: bool,
}

impl Input {
    pub const fn new() -> Input {
        Input {
            buf: Vec::new(),
            filled: 0,
            scanned: 0,
            line_checked: false,
        }
    }

    /// The bytes received and not yet consumed.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Room for the next read. Refused (431, or 400) when the buffer is at [`MAX_HEAD`] and
    /// full, which only happens while a head is still incomplete.
    pub fn space(&mut self) -> Result<&mut [u8], Rejection> {
        if self.filled == self.buf.len() {
            if self.filled >= MAX_HEAD {
                return Err(too_large(self.bytes()));
            }
            let size = (2 * self.filled).clamp(FIRST_READ, MAX_HEAD);
            self.buf.resize(size, 0);
        }
        Ok(&mut self.buf[self.filled..])
    }

    /// Takes note of `n` bytes just read into [`Input::space`], judges what it can, and
    /// returns the length of the head once all of it is here.
    pub fn received(&mut self, n: usize) -> Result<Option<usize>, Rejection> {
        self.filled = (self.filled + n).min(self.buf.len());
        self.head_len()
    }

    /// The length of the head at the front, if it is complete. Judges the request line as
    /// soon as it is complete and, while it is not, as soon as it can no longer become valid:
    /// garbage (a TLS handshake, say) is answered at once rather than after the client gives
    /// up.
    pub fn head_len(&mut self) -> Result<Option<usize>, Rejection> {
        let bytes = &self.buf[..self.filled];
        if !self.line_checked {
            match first_line(bytes) {
                Some(line) => {
                    parse_request_line(line)?;
                    self.line_checked = true;
                }
                None => check_partial_line(bytes)?,
            }
        }
        if let Some(end) = find_head_end(bytes, self.scanned) {
            return Ok(Some(end));
        }
        // Resume the scan a few bytes back: the end marker may straddle two reads.
        self.scanned = self.filled.saturating_sub(3);
        Ok(None)
    }

    /// Takes in `bytes` read elsewhere (at most [`FIRST_READ`] into an empty input), without
    /// judging them yet. The event loop reads a connection's first bytes into a buffer on its
    /// stack, so that a connection that has sent nothing holds no buffer at all.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), Rejection> {
        let space = self.space()?;
        let n = bytes.len().min(space.len());
        space[..n].copy_from_slice(&bytes[..n]);
        self.fill(n);
        Ok(())
    }

    /// Whether any byte of a request has arrived. Empty lines before a request line are not
    /// part of it (RFC 9112 section 2.2: a server ignores at least one), so a kept connection
    /// that sent a stray CRLF after its last request is still idle, not a request begun.
    pub fn holds_a_request(&self) -> bool {
        // A lone CR at the end may be the first half of one more empty line.
        !matches!(skip_empty_lines(self.bytes()), b"" | b"\r")
    }

    /// Takes note of `n` bytes read into [`Input::space`] without judging them: a body's bytes.
    pub fn fill(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.buf.len());
    }

    /// The request line, once it has arrived whole and is valid (for the log).
    pub fn request_line(&self) -> Option<&str> {
        if !self.line_checked {
            return None;
        }
        first_line(self.bytes()).and_then(|line| std::str::from_utf8(line).ok())
    }

    /// Forgets the first `n` bytes (a head, or body bytes thrown away) and moves what follows
    /// to the front, where the next request starts.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.filled);
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
        self.scanned = 0;
        self.line_checked = false;
    }

    /// Gives the buffer's memory back when nothing is in it: an idle keep-alive connection
    /// (stage 07) then costs no buffer at all until its next request starts.
    pub fn release(&mut self) {
        if self.filled == 0 {
            self.buf = Vec::new();
        }
    }
}

/// Reads from `reader` into `input` until a whole request head is there; returns its length.
///
/// Reads as often as it takes: a head that arrives one byte per segment is fine. A head
/// already complete in `input` (a pipelined request, stage 07) is returned without reading.
pub fn read_head<R: Read>(reader: &mut R, input: &mut Input) -> Result<usize, ReadError> {
    if !input.is_empty() {
        if let Some(len) = input.head_len().map_err(ReadError::Rejected)? {
            return Ok(len);
        }
    }
    loop {
        let space = input.space().map_err(ReadError::Rejected)?;
        let n = match reader.read(space) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if let Some(len) = input.received(n).map_err(ReadError::Rejected)? {
            return Ok(len);
        }
    }
}

/// [`read_head`], then [`parse_head`]: the request, and how many bytes arrived after its head
/// (the start of the body, or whatever the client sent next).
pub fn read_request<'i, R: Read>(
    reader: &mut R,
    input: &'i mut Input,
) -> Result<(Request<'i>, usize), ReadError> {
    let head_len = read_head(reader, input)?;
    let input: &'i Input = input; // done reading: the request borrows the bytes it was parsed from
    let request = parse_head(&input.bytes()[..head_len]).map_err(ReadError::Rejected)?;
    Ok((request, input.filled - head_len))
}

/// A head that hit the buffer's end: 431, unless the request line has not even ended.
fn too_large(bytes: &[u8]) -> Rejection {
    match first_line(bytes) {
        Some(_) => reject(Status::HeaderFieldsTooLarge, "request head over 16 KiB"),
        // The unfinished line itself is within its cap (check_partial_line saw to that), so
        // empty lines before it are what filled the buffer.
        None => reject(
            Status::BadRequest,
            "over 16 KiB of empty lines before the request line",
        ),
    }
}

/// A request line that has not ended yet: is it already too long, or can it no longer be a
/// request line? Only what the complete line would also be refused for is judged here, so
/// the answer does not depend on how the bytes were split into reads.
fn check_partial_line(bytes: &[u8]) -> Result<(), Rejection> {
    let pending = skip_empty_lines(bytes);
    // A CR at the very end may be the first half of the line's CRLF.
    let pending = pending.strip_suffix(b"\r").unwrap_or(pending);
    if pending.len() > MAX_REQUEST_LINE {
        return Err(line_too_long(pending));
    }
    let method = pending.split(|&b| b == b' ').next().unwrap_or_default();
    // Only token bytes before the first space, and that space not first.
    let method_ok =
        method.iter().all(|&b| is_tchar(b)) && (!method.is_empty() || pending.is_empty());
    if !method_ok {
        return Err(reject(Status::BadRequest, "method is not a token"));
    }
    Ok(())
}

/// A request line over [`MAX_REQUEST_LINE`]: 414 if it is at least trying to be a request
/// line (a method, then a target starting with `/`), 400 otherwise.
fn line_too_long(line: &[u8]) -> Rejection {
    if looks_like_request_line(line) {
        reject(Status::UriTooLong, "request line over 8 KiB")
    } else {
        reject(Status::BadRequest, "no request line in the first 8 KiB")
    }
}

/// `METHOD /` at the start: a long line that is at least trying to be a request.
fn looks_like_request_line(bytes: &[u8]) -> bool {
    let method_len = bytes.iter().take_while(|&&b| is_tchar(b)).count();
    method_len > 0 && bytes[method_len..].starts_with(b" /")
}

/// RFC 9112 §2.2: a server should ignore empty lines received before the request line.
fn skip_empty_lines(mut bytes: &[u8]) -> &[u8] {
    loop {
        if let Some(rest) = bytes.strip_prefix(b"\r\n") {
            bytes = rest;
        } else if let Some(rest) = bytes.strip_prefix(b"\n") {
            bytes = rest;
        } else {
            return bytes;
        }
    }
}

/// The request line, once its line ending has arrived (without the CRLF or LF).
fn first_line(bytes: &[u8]) -> Option<&[u8]> {
    let bytes = skip_empty_lines(bytes);
    let lf = bytes.iter().position(|&b| b == b'\n')?;
    Some(bytes[..lf].strip_suffix(b"\r").unwrap_or(&bytes[..lf]))
}

/// Where the head ends (just past its empty line), searching from `from`. Accepts CRLF and
/// bare LF line endings, so `\r\n\r\n`, `\n\n` and `\n\r\n` all end a head.
pub fn find_head_end(bytes: &[u8], from: usize) -> Option<usize> {
    let start = bytes.len() - skip_empty_lines(bytes).len();
    let from = from.max(start);
    let mut i = from;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'\n') {
        let lf = i + offset;
        // The line before this LF is empty if it starts right after an earlier LF (with an
        // optional CR in between). The first line (lf == start) is never the end.
        let line_start = match bytes[..lf].last() {
            Some(b'\r') => lf - 1,
            _ => lf,
        };
        if line_start > start && bytes[line_start - 1] == b'\n' {
            return Some(lf + 1);
        }
        i = lf + 1;
    }
    None
}

/// Parses a complete head (as found by [`find_head_end`]).
pub fn parse_head(head: &[u8]) -> Result<Request<'_>, Rejection> {
    let head = skip_empty_lines(head);
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let line = lines.next().unwrap_or_default();
    let (method, target, version) = parse_request_line(line)?;

    let mut headers = Vec::with_capacity(16);
    for line in lines {
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(reject(
                Status::HeaderFieldsTooLarge,
                "more than 64 header lines",
            ));
        }
        headers.push(parse_header_line(line)?);
    }

    let mut request = Request {
        // parse_request_line checked every byte is visible ASCII or a space.
        line: std::str::from_utf8(line).unwrap_or_default(),
        method,
        target,
        version,
        headers,
        framing: Framing::None,
        expect_continue: false,
        connection: ConnectionOptions::default(),
    };
    check_host(&request)?;
    request.framing = framing(&request)?;
    let connection = ConnectionOptions {
        close: request
            .list("connection")
            .any(|o| o.eq_ignore_ascii_case(b"close")),
        keep_alive: request
            .list("connection")
            .any(|o| o.eq_ignore_ascii_case(b"keep-alive")),
    };
    // A 1.0 client cannot know 100 Continue, so its Expect is ignored (RFC 9110 §10.1.1).
    let expect_continue = request.version == Version::Http11
        && request
            .list("expect")
            .any(|e| e.eq_ignore_ascii_case(b"100-continue"));
    request.connection = connection;
    request.expect_continue = expect_continue;
    Ok(request)
}

type RequestLine<'a> = (Option<Method>, &'a str, Version);

fn parse_request_line(line: &[u8]) -> Result<RequestLine<'_>, Rejection> {
    if line.len() > MAX_REQUEST_LINE {
        return Err(line_too_long(line));
    }
    let bad = |why| reject(Status::BadRequest, why);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("request line is not METHOD SP TARGET SP VERSION"));
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(bad("method is not a token"));
    }
    let target_ok = !target.is_empty()
        && target.iter().all(|&b| b.is_ascii_graphic())
        && (target[0] == b'/'
            || target == b"*"
            || target.starts_with(b"http://")
            || target.starts_with(b"https://"));
    if !target_ok {
        return Err(bad("target is not /path, http://host/path or *"));
    }
    let version = match version {
        b"HTTP/1.0" => Version::Http10,
        // 1.1, and any higher 1.x: processed as the highest 1.x we speak (RFC 9110 §2.5).
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if minor.is_ascii_digit() => {
            Version::Http11
        }
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(reject(
                Status::VersionNotSupported,
                "only HTTP/1.x is spoken here",
            ))
        }
        _ => return Err(bad("version is not HTTP/x.y")),
    };
    // The target is visible ASCII (checked above), so it is valid UTF-8.
    let target = std::str::from_utf8(target).map_err(|_| bad("target is not ASCII"))?;
    Ok((Method::from_token(method), target, version))
}

/// `name: value`, checked as RFC 9112 §5 says. Also used for the trailer lines of a chunked
/// body.
pub(crate) fn parse_header_line(line: &[u8]) -> Result<Header<'_>, Rejection> {
    let bad = |why| reject(Status::BadRequest, why);
    if line[0] == b' ' || line[0] == b'\t' {
        return Err(bad("folded header line (obs-fold)"));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(bad("header line without a colon"))?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(bad(
            "header name is not a token (or has a space before the colon)",
        ));
    }
    let value = trim_ows(&line[colon + 1..]);
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(bad("control byte in a header value"));
    }
    Ok(Header { name, value })
}

/// Strips optional whitespace (RFC 9110 §5.6.3: spaces and tabs, nothing else) from both
/// ends. `trim_ascii` would also take a CR or a form feed, and let a control byte through.
fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Exactly one valid Host in HTTP/1.1, at most one in HTTP/1.0 (RFC 9112 §3.2).
fn check_host(request: &Request<'_>) -> Result<(), Rejection> {
    let bad = |why| reject(Status::BadRequest, why);
    let mut hosts = 0;
    for header in &request.headers {
        if header.name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            let valid = header
                .value
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b));
            if !valid {
                return Err(bad("invalid Host"));
            }
        }
    }
    if hosts > 1 {
        return Err(bad("more than one Host"));
    }
    if hosts == 0 && request.version == Version::Http11 {
        return Err(bad("HTTP/1.1 request without Host"));
    }
    Ok(())
}

/// Transfer-Encoding and Content-Length: where the body ends (RFC 9112 §6.3). Anything
/// ambiguous is refused, since a server that guesses where one message ends can be made to
/// read the rest as a second, smuggled request.
fn framing(request: &Request<'_>) -> Result<Framing, Rejection> {
    let bad = |why| reject(Status::BadRequest, why);
    let has = |name: &str| {
        request
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
    };
    let mut content_length: Option<u64> = None;
    for header in &request.headers {
        if header.name.eq_ignore_ascii_case(b"content-length") {
            // A list of identical values ("5, 5") is allowed; different values are not.
            for item in header.value.split(|&b| b == b',') {
                let n =
                    parse_content_length(trim_ows(item)).ok_or(bad("invalid Content-Length"))?;
                if content_length.is_some_and(|seen| seen != n) {
                    return Err(bad("Content-Length values differ"));
                }
                content_length = Some(n);
            }
        }
    }
    if has("transfer-encoding") {
        if content_length.is_some() {
            return Err(bad("both Transfer-Encoding and Content-Length"));
        }
        if request.version == Version::Http10 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        let codings: Vec<&[u8]> = request.list("transfer-encoding").collect();
        let Some((last, before)) = codings.split_last() else {
            return Err(bad("empty Transfer-Encoding"));
        };
        if !codings.iter().all(|c| c.iter().all(|&b| is_tchar(b))) {
            return Err(bad("Transfer-Encoding is not a list of codings"));
        }
        if !last.eq_ignore_ascii_case(b"chunked") {
            return Err(bad("chunked is not the last transfer coding"));
        }
        if before.iter().any(|c| c.eq_ignore_ascii_case(b"chunked")) {
            return Err(bad("chunked applied twice"));
        }
        if !before.is_empty() {
            return Err(reject(
                Status::NotImplemented,
                "only the chunked transfer coding is supported",
            ));
        }
        return Ok(Framing::Chunked);
    }
    match content_length {
        Some(n) if n > MAX_BODY => Err(reject(Status::ContentTooLarge, "body over 64 KiB")),
        Some(0) | None => Ok(Framing::None),
        Some(n) => Ok(Framing::Length(n)),
    }
}

/// `1*DIGIT`, no sign, no overflow.
fn parse_content_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// RFC 9110 §5.6.2: `tchar`, the characters of a token (method, header name).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// After answering a request whose bytes were not all read, a server keeps reading and
/// throwing away what the client still sends, so that the client reads the answer rather
/// than a reset (closing a socket with unread bytes makes the kernel send RST): for at most
/// this long in all...
pub const LINGER: Duration = Duration::from_millis(500);
/// ... but only while the client is still sending: a pause this long ends it sooner (a client
/// that has sent everything and just waits costs this much, not all of `LINGER`)...
pub const LINGER_IDLE: Duration = Duration::from_millis(50);
/// ... and for at most this many bytes.
pub const LINGER_BYTES: usize = 64 * 1024;

/// The interim response that tells a client waiting under `Expect: 100-continue` to send its
/// body (RFC 9110 §15.2.1).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Whether the connection stays open after a response, and what its headers say about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// `Connection: close`: this is the last response on the connection (every response of
    /// stages 01-06).
    Close,
    /// The connection stays open for the next request (stage 07). HTTP/1.1 needs no header
    /// for that; an HTTP/1.0 client is told `Connection: keep-alive`. Either way
    /// `Keep-Alive: timeout=N` says how many seconds an idle connection is kept.
    KeepAlive { idle: Duration, http10: bool },
}

/// What the handler decided to send.
#[derive(Debug)]
pub struct Response {
    pub status: Status,
    pub content_type: &'static str,
    /// Shared, not copied: every `GET /` of a run answers with the same body (the server's
    /// `--body-bytes` of text), and a connection that writes it slowly must not pin a copy of
    /// its own. Cloning an `Arc` is a count, not a copy.
    pub body: Arc<str>,
    /// HEAD: the same headers as GET, but no body bytes.
    pub head_only: bool,
    /// `Cache-Control: no-store`: an answer that is stale a moment later (`/stats`) must not
    /// be kept by a cache in between.
    pub no_store: bool,
    pub persistence: Persistence,
}

impl Response {
    pub fn text(status: Status, body: impl Into<Arc<str>>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            head_only: false,
            no_store: false,
            persistence: Persistence::Close,
        }
    }

    pub fn json(body: String) -> Response {
        Response {
            content_type: "application/json",
            ..Response::text(Status::Ok, body)
        }
    }

    /// The response to a refused request: its status and, in the body, why.
    pub fn rejection(rejection: Rejection) -> Response {
        let Rejection { status, why } = rejection;
        Response::text(
            status,
            format!("{} {}: {why}\n", status.code(), status.reason()),
        )
    }

    /// The response as it goes on the wire: a head written for it (status line, headers,
    /// empty line) and the shared body after it.
    pub fn frame(&self, date: &str) -> Framed {
        let mut head = String::with_capacity(192);
        let status = self.status;
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nDate: {date}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            status.code(),
            status.reason(),
            self.content_type,
            self.body.len(),
        );
        if self.no_store {
            head.push_str("Cache-Control: no-store\r\n");
        }
        match self.persistence {
            Persistence::Close => head.push_str("Connection: close\r\n"),
            Persistence::KeepAlive { idle, http10 } => {
                if http10 {
                    head.push_str("Connection: keep-alive\r\n");
                }
                if idle.as_secs() > 0 {
                    let _ = write!(head, "Keep-Alive: timeout={}\r\n", idle.as_secs());
                }
            }
        }
        if status == Status::MethodNotAllowed {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        // Stage 08's kitchen is full: worth asking again in a second, not at once.
        if status == Status::ServiceUnavailable {
            head.push_str("Retry-After: 1\r\n");
        }
        head.push_str("\r\n");
        Framed {
            head: head.into_bytes(),
            body: if self.head_only {
                None
            } else {
                Some(Arc::clone(&self.body))
            },
        }
    }
}

/// A response ready to write: its own head (a couple of hundred bytes) and the shared body.
/// A connection writing a 20 MB body to a client that reads slowly holds the head and a
/// pointer, not 20 MB: the body exists once however many connections are writing it.
#[derive(Debug)]
pub struct Framed {
    head: Vec<u8>,
    /// `None` for HEAD.
    body: Option<Arc<str>>,
}

impl Framed {
    /// An interim response, all head and no body: `100 Continue`.
    pub fn interim(head: &[u8]) -> Framed {
        Framed {
            head: head.to_vec(),
            body: None,
        }
    }

    /// Bytes in all, head and body.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.as_ref().map_or(0, |body| body.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes what is left after the first `sent` bytes with one vectored write (`writev`), so
    /// the head and the start of the body leave in one segment without first being copied
    /// into one buffer. Returns how many bytes the write took; 0 only if nothing was left.
    pub fn write_from(&self, out: &mut impl Write, sent: usize) -> io::Result<usize> {
        out.write_vectored(&self.slices(sent))
    }

    /// What is left after the first `sent` bytes, as the two slices of one vectored write:
    /// for an asynchronous write (stages 10 and 11), which takes the slices themselves.
    pub fn slices(&self, sent: usize) -> [IoSlice<'_>; 2] {
        let body = self.body.as_deref().map_or(&[][..], str::as_bytes);
        let (head, body) = match sent.checked_sub(self.head.len()) {
            None => (self.head.get(sent..).unwrap_or_default(), body),
            Some(into_body) => (&[][..], body.get(into_body..).unwrap_or_default()),
        };
        [IoSlice::new(head), IoSlice::new(body)]
    }

    /// All the bytes in one buffer, copied: for tests and tools, not for the server.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = self.head.clone();
        if let Some(body) = &self.body {
            bytes.extend_from_slice(body.as_bytes());
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a complete head and returns just the status of what went wrong.
    fn status_of(head: &[u8]) -> Result<(), u16> {
        parse_head(head).map(|_| ()).map_err(|r| r.status.code())
    }

    #[test]
    fn a_simple_get_parses_into_its_parts() {
        let request =
            parse_head(b"GET /stats?x=1 HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n").unwrap();
        assert_eq!(request.method, Some(Method::Get));
        assert_eq!(request.target, "/stats?x=1");
        assert_eq!(request.path(), "/stats");
        assert_eq!(request.version, Version::Http11);
        assert_eq!(request.line, "GET /stats?x=1 HTTP/1.1");
        assert_eq!(
            request.headers,
            vec![
                Header {
                    name: b"Host",
                    value: b"a"
                },
                Header {
                    name: b"X-Empty",
                    value: b""
                },
            ]
        );
        assert_eq!(request.header("host"), Some(&b"a"[..]));
    }

    #[test]
    fn the_end_of_the_head_is_found_with_crlf_or_bare_lf() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"", None),
            (b"GET / HTTP/1.1\r\n", None),
            (b"GET / HTTP/1.1\r\n\r\n", Some(18)),
            (b"GET / HTTP/1.1\n\n", Some(16)),
            (b"GET / HTTP/1.1\nHost: a\n\r\nextra", Some(25)),
            (b"\r\n\r\nGET / HTTP/1.0\r\n\r\n", Some(22)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", None),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                find_head_end(bytes, 0),
                *want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn every_decision_in_the_module_docs_holds() {
        let cases: &[(&[u8], Result<(), u16>)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.0\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.1\nHost: a\n\n", Ok(())),
            (b"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9 \xff\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n", Ok(())),
            (b"\r\n", Err(400)),
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", Err(400)),
            (b"GET /\r\n\r\n", Err(400)),
            (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", Err(400)),
            (b"GET x HTTP/1.1\r\nHost: a\r\n\r\n", Err(400)),
            (b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", Err(400)),
            (b"GET / HTTP/1\r\nHost: a\r\n\r\n", Err(400)),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Err(505)),
            (b"GET / HTTP/0.9\r\n\r\n", Err(505)),
            (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.2\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: \x0ca\x0c\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: \t a \t\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999\r\n\r\n", Err(413)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Err(501)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", Err(501)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", Err(400)),
            (b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Err(400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", Err(400)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", Err(400)),
        ];
        for (head, want) in cases {
            assert_eq!(
                status_of(head),
                *want,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn methods_are_case_sensitive_and_unknown_ones_are_kept_apart() {
        let post = parse_head(b"POST / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(post.method, Some(Method::Post));
        let lower = parse_head(b"get / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(lower.method, None);
        let brew = parse_head(b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(brew.method, None);
    }

    /// Feeds `bytes` to read_request through a reader that hands out `chunk` bytes per read.
    fn read_in_chunks(bytes: &[u8], chunk: usize) -> Result<u16, String> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut input = Input::new();
        match read_request(&mut Trickle(bytes, chunk), &mut input) {
            Ok(_) => Ok(200),
            Err(ReadError::Rejected(r)) => Ok(r.status.code()),
            Err(other) => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn a_head_split_into_pieces_reads_the_same_as_one_piece() {
        let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n";
        for chunk in [1, 2, 3, 7, 64, 8192] {
            assert_eq!(read_in_chunks(request, chunk), Ok(200), "chunk {chunk}");
        }
    }

    #[test]
    fn the_buffer_starts_small_and_grows_to_the_cap_only_for_a_big_head() {
        /// Hands out `bytes`, remembering how much room each read offered.
        struct Offered<'a>(&'a [u8], Vec<usize>);
        impl Read for Offered<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                self.1.push(out.len());
                let n = self.0.len().min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut input = Input::new();
        let mut small = Offered(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Vec::new());
        assert!(read_request(&mut small, &mut input).is_ok());
        assert_eq!(small.1, [FIRST_READ]);
        assert_eq!(input.buf.len(), FIRST_READ);

        // A 15000-byte head: 1 KiB, then the buffer doubles to 2, 4, 8 and 16 KiB.
        let mut big = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        big.resize(15000 - 4, b'a');
        big.extend_from_slice(b"\r\n\r\n");
        let mut big = Offered(&big, Vec::new());
        let mut input = Input::new();
        match read_request(&mut big, &mut input) {
            Ok((request, 0)) => assert_eq!(request.line, "GET / HTTP/1.1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(big.1, [1024, 1024, 2048, 4096, 8192]);
        assert_eq!(input.buf.len(), MAX_HEAD);
    }

    #[test]
    fn reading_stops_at_the_caps() {
        let mut big_header = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        big_header.resize(32 * 1024, b'a');
        assert_eq!(read_in_chunks(&big_header, 1000), Ok(431));
        let mut long_target = b"GET /".to_vec();
        long_target.resize(MAX_REQUEST_LINE + 1000, b'a');
        assert_eq!(read_in_chunks(&long_target, 1000), Ok(414));
        assert_eq!(read_in_chunks(&[0xff; 5000], 1000), Ok(400));
        assert_eq!(read_in_chunks(b"", 1), Err("Closed".into()));
        assert_eq!(
            read_in_chunks(b"GET / HTTP/1.1\r\nHost", 1),
            Err("Closed".into())
        );
        // A broken request line is answered before the rest of the head arrives.
        assert_eq!(read_in_chunks(b"HELLO\r\nHost: a\r\n", 4), Ok(400));
    }

    #[test]
    fn a_line_that_cannot_become_a_request_is_refused_before_it_ends() {
        // A TLS ClientHello, and bytes that start like a request and then go wrong: no line
        // end ever comes, yet each is answered 400 instead of waiting.
        assert_eq!(read_in_chunks(b"\x16\x03\x01\x02\x00\x01", 1), Ok(400));
        assert_eq!(read_in_chunks(b"GE\0T", 1), Ok(400));
        assert_eq!(read_in_chunks(b" GET", 1), Ok(400));
        // What can still become a request is waited for.
        assert_eq!(read_in_chunks(b"\r\nGET /", 1), Err("Closed".into()));
        assert_eq!(read_in_chunks(b"GET / HTTP/1.1\r", 1), Err("Closed".into()));
        // A line of exactly MAX_REQUEST_LINE bytes is fine even when its CR arrives alone.
        let mut longest = b"GET /".to_vec();
        longest.resize(MAX_REQUEST_LINE - " HTTP/1.1".len(), b'a');
        longest.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(read_in_chunks(&longest, MAX_REQUEST_LINE + 1), Ok(200));
    }

    #[test]
    fn responses_are_framed_exactly() {
        let bytes = Response::text(Status::Ok, "Hello World\n")
            .frame("D")
            .to_vec();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 12\r\nConnection: close\r\n\r\nHello World\n"
        );
        let mut head = Response::text(Status::Ok, "Hello World\n");
        head.head_only = true;
        assert!(String::from_utf8(head.frame("D").to_vec())
            .unwrap()
            .ends_with("Content-Length: 12\r\nConnection: close\r\n\r\n"));
        let not_allowed =
            Response::rejection(reject(Status::MethodNotAllowed, "only GET and HEAD"));
        assert!(String::from_utf8(not_allowed.frame("D").to_vec())
            .unwrap()
            .contains("\r\nAllow: GET, HEAD\r\n"));
    }

    /// Every response of one body shares it: framing it for a thousand connections copies
    /// the head, never the body. And a write that takes a few bytes at a time, from any
    /// offset, puts exactly the head then the body on the wire.
    #[test]
    fn a_framed_response_shares_its_body_and_writes_from_any_offset() {
        let body: Arc<str> = Arc::from("Hello World\n".repeat(1000));
        let response = Response::text(Status::Ok, Arc::clone(&body));
        let framed: Vec<Framed> = (0..1000).map(|_| response.frame("D")).collect();
        assert_eq!(Arc::strong_count(&body), 1 + 1 + 1000, "shared, not copied");
        let expected = framed[0].to_vec();
        assert!(expected.ends_with(body.as_bytes()));
        /// Takes at most 7 bytes per write, as a full send buffer would.
        struct Dribble(Vec<u8>);
        impl Write for Dribble {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let n = buf.len().min(7);
                self.0.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut wire = Dribble(Vec::new());
        let mut sent = 0;
        while sent < framed[0].len() {
            sent += framed[0].write_from(&mut wire, sent).unwrap();
        }
        assert_eq!(wire.0, expected);
        assert_eq!(framed[0].write_from(&mut wire, sent).unwrap(), 0);
    }

    #[test]
    fn framing_expect_and_connection_are_read_from_the_head() {
        fn parse(head: &[u8]) -> Request<'_> {
            parse_head(head).unwrap()
        }
        let plain = parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(plain.framing, Framing::None);
        assert!(!plain.expect_continue);
        assert!(
            plain.wants_persistence(),
            "HTTP/1.1 is persistent by default"
        );
        let sized = parse(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(sized.framing, Framing::Length(5));
        let empty = parse(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(empty.framing, Framing::None);
        let chunked = parse(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(chunked.framing, Framing::Chunked);
        let expect = parse(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n");
        assert!(expect.expect_continue);
        let expect_10 = parse(b"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
        assert!(!expect_10.expect_continue, "ignored in HTTP/1.0");
        let close = parse(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n");
        assert!(close.connection.close && !close.wants_persistence());
        let old = parse(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!old.wants_persistence(), "HTTP/1.0 closes unless it asks");
        let old_keep = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(old_keep.wants_persistence());
    }

    #[test]
    fn input_keeps_what_follows_a_head_for_the_next_request() {
        let mut input = Input::new();
        let two = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c";
        let space = input.space().unwrap();
        space[..two.len()].copy_from_slice(two);
        let first = input.received(two.len()).unwrap().unwrap();
        assert_eq!(parse_head(&input.bytes()[..first]).unwrap().target, "/a");
        input.consume(first);
        let second = input.head_len().unwrap().unwrap();
        assert_eq!(parse_head(&input.bytes()[..second]).unwrap().target, "/b");
        input.consume(second);
        assert_eq!(
            input.head_len(),
            Ok(None),
            "the third head is not complete yet"
        );
        assert_eq!(input.bytes(), b"GET /c");
        input.consume(6);
        assert!(input.is_empty());
        input.release();
        assert_eq!(
            input.buf.capacity(),
            0,
            "an empty input gives its memory back"
        );
    }

    #[test]
    fn keep_alive_and_cache_headers_are_framed_exactly() {
        let mut stats = Response::json("{}\n".into());
        stats.no_store = true;
        assert_eq!(
            String::from_utf8(stats.frame("D").to_vec()).unwrap(),
            "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: application/json\r\n\
             Content-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{}\n"
        );
        let mut kept = Response::text(Status::Ok, "hi");
        kept.persistence = Persistence::KeepAlive {
            idle: Duration::from_millis(5000),
            http10: false,
        };
        assert!(String::from_utf8(kept.frame("D").to_vec())
            .unwrap()
            .ends_with("Content-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nhi"));
        kept.persistence = Persistence::KeepAlive {
            idle: Duration::from_millis(500),
            http10: true,
        };
        assert!(String::from_utf8(kept.frame("D").to_vec())
            .unwrap()
            .ends_with("Content-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"));
    }
}
