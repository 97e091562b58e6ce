//! Just enough HTTP/1.1 to answer a request properly: read the head, parse it, frame a response.
//!
//! TCP delivers a stream of bytes, not messages. HTTP/1.1 puts the framing on top: a request
//! *head* (request line, header lines, an empty line), then a body whose length the head
//! declares. This module finds the end of the head across any number of reads, parses it
//! without copying (a [`Request`] borrows from the read buffer), and writes responses with an
//! exact `Content-Length` and `Connection: close`.
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
//! | version well formed but not 1.0 or 1.1 | 505 | 9110 §15.6.6 |
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
//! | `Transfer-Encoding` present | 501 (400 if `Content-Length` is present too) | 9112 §6.1, §6.3 |
//! | `Content-Length` not digits, signed, too big for u64, or several different values | 400 | 9112 §6.3 |
//! | `Content-Length` over [`MAX_BODY`] | 413 | 9110 §15.5.14 |
//! | method unknown | 501 | 9110 §9.1 |
//! | method known but not GET or HEAD | 405 with `Allow: GET, HEAD` | 9110 §15.5.6 |
//!
//! Framing (Host, Transfer-Encoding, Content-Length) is judged before the method, so a POST
//! with a broken Content-Length gets 400, not 405: the server cannot tell where such a message
//! ends (RFC 9112 §6.3). A valid body is read and thrown away so the client is not reset while
//! it is still sending. A request that is rejected is answered at once, without waiting for its
//! body. Only one request is read per connection: anything after it is ignored and the
//! connection is closed after exactly one response.
//!
//! Every answer above is the same however the bytes are split into reads, and no answer needs
//! more than [`MAX_HEAD`] bytes from the client (`tests/parser_props.rs` checks both on
//! generated inputs). After an error the handler closes gracefully, so the client reads the
//! answer rather than a reset (see `handler.rs`); `tests/robust_*.rs` prove each row above
//! against the real binaries.

use std::fmt::Write as _;
use std::io::{self, Read};

/// The most bytes a request head may have, request line included. Browsers send 1-2 KiB;
/// 8 KiB is what many servers allow. It is also the most the read buffer grows to: memory
/// per connection stays bounded however the bytes arrive.
pub const MAX_HEAD: usize = 8 * 1024;
/// The read buffer's first size. Most heads fit (curl's is under 100 bytes), and a
/// connection that has sent nothing yet holds 1 KiB instead of [`MAX_HEAD`]: with a thread
/// per connection, that is most of what an idle client costs.
pub const FIRST_READ: usize = 1024;
// read_request's `clamp(FIRST_READ, MAX_HEAD)` would panic the other way round.
const _: () = assert!(FIRST_READ <= MAX_HEAD);
/// The longest request line; a longer one is answered 414 as soon as it is seen.
pub const MAX_REQUEST_LINE: usize = 4 * 1024;
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

/// The two versions this server speaks.
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
    /// Declared body length (0 when there is no Content-Length).
    pub content_length: u64,
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

/// How reading a request head can fail.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed before sending a complete head: nothing to answer, nothing to log.
    Closed,
    /// A read deadline passed (stage 05); the caller may still answer 408.
    TimedOut,
    /// The bytes are not an acceptable request; answer with the rejection's status.
    Rejected(Rejection),
    /// The connection failed (reset, ...).
    Io(io::Error),
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

/// Reads from `reader` into `buf` until a whole request head is there, then parses it.
///
/// Returns the request and how many bytes arrived after its head (the start of the body, or
/// whatever the client sent next). Reads as often as it takes: a head that arrives one byte per segment is
/// fine. `buf` starts at [`FIRST_READ`] bytes and doubles when a head does not fit, up to
/// [`MAX_HEAD`]: never more, so memory per connection is bounded.
pub fn read_request<'b, R: Read>(
    reader: &mut R,
    buf: &'b mut Vec<u8>,
) -> Result<(Request<'b>, usize), ReadError> {
    buf.clear();
    let mut filled = 0;
    let mut scanned = 0;
    let mut line_checked = false;
    let head_len = loop {
        if filled == buf.len() {
            if filled == MAX_HEAD {
                return Err(ReadError::Rejected(too_large(&buf[..filled])));
            }
            let size = (2 * filled).clamp(FIRST_READ, MAX_HEAD);
            buf.resize(size, 0);
        }
        let n = match reader.read(&mut buf[filled..]) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        filled += n;
        // Judge the request line as soon as it is complete, and while it is not, as soon as
        // it can no longer become valid: garbage (a TLS handshake, say) is answered at once
        // rather than after the client gives up.
        if !line_checked {
            match first_line(&buf[..filled]) {
                Some(line) => {
                    parse_request_line(line).map_err(ReadError::Rejected)?;
                    line_checked = true;
                }
                None => check_partial_line(&buf[..filled]).map_err(ReadError::Rejected)?,
            }
        }
        if let Some(end) = find_head_end(&buf[..filled], scanned) {
            break end;
        }
        // Resume the scan a few bytes back: the end marker may straddle two reads.
        scanned = filled.saturating_sub(3);
    };
    let buf: &'b [u8] = buf; // done writing: the request borrows the bytes it was parsed from
    let request = parse_head(&buf[..head_len]).map_err(ReadError::Rejected)?;
    Ok((request, filled - head_len))
}

/// Reads and discards `len` body bytes, of which `already` arrived with the head.
pub fn discard_body<R: Read>(reader: &mut R, len: u64, already: usize) -> Result<(), ReadError> {
    let mut left = len.saturating_sub(already as u64);
    if left == 0 {
        return Ok(());
    }
    // On the heap, and only when there is a body: on the stack it would widen the frame of
    // every connection's thread, bodies or not, and an idle thread would pay for its pages.
    let mut scratch = vec![0u8; 4096];
    while left > 0 {
        let want = scratch
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        match reader.read(&mut scratch[..want]) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => left -= n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A head that hit the buffer's end: 431, unless the request line has not even ended.
fn too_large(bytes: &[u8]) -> Rejection {
    match first_line(bytes) {
        Some(_) => reject(Status::HeaderFieldsTooLarge, "request head over 8 KiB"),
        // The unfinished line itself is within its cap (check_partial_line saw to that), so
        // empty lines before it are what filled the buffer.
        None => reject(
            Status::BadRequest,
            "over 8 KiB of empty lines before the request line",
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
        reject(Status::UriTooLong, "request line over 4 KiB")
    } else {
        reject(Status::BadRequest, "no request line in the first 4 KiB")
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
        content_length: 0,
    };
    check_framing(&mut request)?;
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
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(reject(
                Status::VersionNotSupported,
                "only HTTP/1.0 and HTTP/1.1",
            ))
        }
        _ => return Err(bad("version is not HTTP/x.y")),
    };
    // The target is visible ASCII (checked above), so it is valid UTF-8.
    let target = std::str::from_utf8(target).map_err(|_| bad("target is not ASCII"))?;
    Ok((Method::from_token(method), target, version))
}

fn parse_header_line(line: &[u8]) -> Result<Header<'_>, Rejection> {
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

/// Host, Transfer-Encoding and Content-Length: how the message is framed and addressed.
fn check_framing(request: &mut Request<'_>) -> Result<(), Rejection> {
    let bad = |why| reject(Status::BadRequest, why);
    let mut hosts = 0;
    let mut transfer_encoding = false;
    let mut content_length: Option<u64> = None;
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
        } else if header.name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
        } else if header.name.eq_ignore_ascii_case(b"content-length") {
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
    if hosts > 1 {
        return Err(bad("more than one Host"));
    }
    if hosts == 0 && request.version == Version::Http11 {
        return Err(bad("HTTP/1.1 request without Host"));
    }
    if transfer_encoding {
        return Err(match content_length {
            Some(_) => bad("both Transfer-Encoding and Content-Length"),
            None => reject(Status::NotImplemented, "Transfer-Encoding is not supported"),
        });
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return Err(reject(Status::ContentTooLarge, "body over 64 KiB"));
    }
    request.content_length = content_length;
    Ok(())
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

/// What the handler decided to send. Bodies are short, so the response is written in one go.
#[derive(Debug)]
pub struct Response {
    pub status: Status,
    pub content_type: &'static str,
    pub body: String,
    /// HEAD: the same headers as GET, but no body bytes.
    pub head_only: bool,
}

impl Response {
    pub fn text(status: Status, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            head_only: false,
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

    /// The bytes on the wire: status line, headers, empty line, body.
    pub fn to_bytes(&self, date: &str) -> Vec<u8> {
        let mut head = String::with_capacity(160 + self.body.len());
        let status = self.status;
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nDate: {date}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            status.code(),
            status.reason(),
            self.content_type,
            self.body.len(),
        );
        if status == Status::MethodNotAllowed {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(self.body.as_bytes());
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
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", Err(501)),
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
        let mut buf = Vec::new();
        match read_request(&mut Trickle(bytes, chunk), &mut buf) {
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
        let mut buf = Vec::new();
        let mut small = Offered(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Vec::new());
        assert!(read_request(&mut small, &mut buf).is_ok());
        assert_eq!(small.1, [FIRST_READ]);
        assert_eq!(buf.len(), FIRST_READ);

        // A 7000-byte head: 1 KiB, then the buffer doubles to 2, 4 and 8 KiB.
        let mut big = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        big.resize(7000 - 4, b'a');
        big.extend_from_slice(b"\r\n\r\n");
        let mut big = Offered(&big, Vec::new());
        match read_request(&mut big, &mut buf) {
            Ok((request, 0)) => assert_eq!(request.line, "GET / HTTP/1.1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(big.1, [1024, 1024, 2048, 4096]);
        assert_eq!(buf.len(), MAX_HEAD);
    }

    #[test]
    fn reading_stops_at_the_caps() {
        let mut big_header = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        big_header.resize(16 * 1024, b'a');
        assert_eq!(read_in_chunks(&big_header, 1000), Ok(431));
        let mut long_target = b"GET /".to_vec();
        long_target.resize(5000, b'a');
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
        let bytes = Response::text(Status::Ok, "Hello World\n").to_bytes("D");
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 12\r\nConnection: close\r\n\r\nHello World\n"
        );
        let mut head = Response::text(Status::Ok, "Hello World\n");
        head.head_only = true;
        assert!(String::from_utf8(head.to_bytes("D"))
            .unwrap()
            .ends_with("Content-Length: 12\r\nConnection: close\r\n\r\n"));
        let not_allowed =
            Response::rejection(reject(Status::MethodNotAllowed, "only GET and HEAD"));
        assert!(String::from_utf8(not_allowed.to_bytes("D"))
            .unwrap()
            .contains("\r\nAllow: GET, HEAD\r\n"));
    }
}
