//! Every HTTP decision of `src/http/mod.rs`, proved against the real binaries: stages 01, 02 and 05
//! (blocking), 06 (the event loop) and 07 (persistent connections).
//!
//! Each table row is one request as a client would send it. For every row and every stage the
//! test asserts the status (and the `Allow` header where it matters), and reads every response
//! with a strict parser (httparse). A stage that closes after a response (01-06, and 07 when its
//! response says `Connection: close`) must send exactly one response and then close cleanly
//! (FIN, not a reset: the client gets to read the error even when it sent more than we read).
//! A connection that stage 07 keeps must carry a further request, answered in order. Then the
//! process is still alive, a normal request is still served, and descriptor and thread counts
//! return to where they were.
//!
//! The client never half-closes here: a rejected request must be answered while the client
//! is still connected and possibly still sending, and its read timeout ([`ANSWER_WITHIN`]) is
//! far below stage 05's header deadline, so "answered at once" cannot pass by timing out.

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::{Responses, Stage};

/// Whether a stage may keep a connection open after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reuse {
    /// One request per connection (stages 01-06).
    Never,
    /// Persistent connections (stage 07).
    KeepAlive,
}

/// Stages run with no simulated work; the header deadlines are far beyond [`ANSWER_WITHIN`].
const STAGES: [(&str, &[&str], Reuse); 9] = [
    (
        env!("CARGO_BIN_EXE_01_single"),
        &["--work-ms", "0", "--quiet"],
        Reuse::Never,
    ),
    (
        env!("CARGO_BIN_EXE_02_thread_per_conn"),
        &["--work-ms", "0", "--quiet"],
        Reuse::Never,
    ),
    (
        env!("CARGO_BIN_EXE_05_timeouts"),
        &["--work-ms", "0", "--quiet", "--header-timeout-ms", "30000"],
        Reuse::Never,
    ),
    (
        env!("CARGO_BIN_EXE_06_event_loop"),
        &["--work-ms", "0", "--quiet", "--header-timeout-ms", "30000"],
        Reuse::Never,
    ),
    (
        env!("CARGO_BIN_EXE_07_keep_alive"),
        &["--work-ms", "0", "--quiet", "--header-timeout-ms", "30000"],
        Reuse::KeepAlive,
    ),
    (
        env!("CARGO_BIN_EXE_08_cpu_pool"),
        &["--work-ms", "0", "--quiet", "--header-timeout-ms", "30000"],
        Reuse::KeepAlive,
    ),
    (
        env!("CARGO_BIN_EXE_09_loop_per_core"),
        &[
            "--work-ms",
            "0",
            "--quiet",
            "--header-timeout-ms",
            "30000",
            "--loops",
            "2",
        ],
        Reuse::KeepAlive,
    ),
    (
        env!("CARGO_BIN_EXE_11_tokio"),
        &[
            "--work-ms",
            "0",
            "--quiet",
            "--header-timeout-ms",
            "30000",
            "--workers",
            "2",
        ],
        Reuse::KeepAlive,
    ),
    (
        env!("CARGO_BIN_EXE_10_async"),
        &[
            "--work-ms",
            "0",
            "--quiet",
            "--header-timeout-ms",
            "30000",
            "--loops",
            "2",
        ],
        Reuse::KeepAlive,
    ),
];

/// How long a client waits for an answer before the row fails as "not answered".
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// How the client puts its bytes on the wire.
#[derive(Clone, Copy, Debug)]
enum Send {
    /// One `write` call: the server may read only part of it before answering.
    AtOnce,
    /// This many pieces, each its own segment, 20 ms apart.
    Pieces(usize),
    /// Two segments, 20 ms apart, split before this byte.
    SplitAt(usize),
}

/// One request and what it must get.
struct Case {
    what: &'static str,
    bytes: Vec<u8>,
    send: Send,
    status: u16,
    /// A header the response must carry, e.g. `Allow` on a 405.
    header: Option<(&'static str, &'static str)>,
}

fn case(what: &'static str, bytes: impl Into<Vec<u8>>, status: u16) -> Case {
    Case {
        what,
        bytes: bytes.into(),
        send: Send::AtOnce,
        status,
        header: None,
    }
}

impl Case {
    fn in_pieces(mut self, pieces: usize) -> Case {
        self.send = Send::Pieces(pieces);
        self
    }

    fn split_at(mut self, at: usize) -> Case {
        self.send = Send::SplitAt(at);
        self
    }

    fn allow(mut self) -> Case {
        self.header = Some(("Allow", "GET, HEAD"));
        self
    }
}

/// `GET / HTTP/1.1` with Host and `extra` header lines (each ending in CRLF).
fn get_with(extra: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: t\r\n{extra}\r\n").into_bytes()
}

/// `METHOD / HTTP/1.1` with Host, `extra` header lines, and then `body` bytes.
fn request(method: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{method} / HTTP/1.1\r\nHost: t\r\n{extra}\r\n").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A request whose one header line makes the head exactly `total` bytes long.
fn head_of_exactly(total: usize) -> Vec<u8> {
    let start = b"GET / HTTP/1.1\r\nHost: t\r\nX-Pad: ";
    let end = b"\r\n\r\n";
    let mut bytes = start.to_vec();
    bytes.resize(total - end.len(), b'a');
    bytes.extend_from_slice(end);
    assert_eq!(bytes.len(), total);
    bytes
}

/// A request whose request line (without its CRLF) is exactly `len` bytes long.
fn request_line_of(len: usize) -> Vec<u8> {
    let fixed = "GET / HTTP/1.1".len();
    let target = format!("/{}", "a".repeat(len - fixed));
    let bytes = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes();
    assert_eq!(bytes.iter().position(|&b| b == b'\r'), Some(len));
    bytes
}

/// A request with `count` header lines in all, Host included.
fn with_header_lines(count: usize) -> Vec<u8> {
    let extra: String = (1..count).map(|i| format!("X-{i}: v\r\n")).collect();
    get_with(&extra)
}

/// Sends the case to `stage` and checks everything the module docs promise for it.
fn check(stage: &Stage, case: &Case, reuse: Reuse) {
    let label = format!("{} on {}", case.what, stage_name(stage));
    let mut stream = stage.connect();
    stream.set_read_timeout(Some(ANSWER_WITHIN)).unwrap();
    stream.set_nodelay(true).unwrap();
    match case.send {
        Send::AtOnce => stream.write_all(&case.bytes).unwrap(),
        Send::Pieces(pieces) => {
            for piece in case.bytes.chunks(case.bytes.len().div_ceil(pieces)) {
                stream.write_all(piece).unwrap();
                thread::sleep(Duration::from_millis(20));
            }
        }
        Send::SplitAt(at) => {
            stream.write_all(&case.bytes[..at]).unwrap();
            thread::sleep(Duration::from_millis(20));
            stream.write_all(&case.bytes[at..]).unwrap();
        }
    }
    let head_only = case.bytes.starts_with(b"HEAD ");
    let mut responses = Responses::new(&mut stream);
    let reply = match responses.next(head_only) {
        Ok(Some(reply)) => reply,
        other => panic!("{label}: no response: {other:?}"),
    };
    assert_eq!(reply.status, case.status, "{label}: {:?}", reply.body);
    if let Some((name, value)) = case.header {
        assert_eq!(reply.header(name), Some(value), "{label}");
    }
    let closes = reuse == Reuse::Never || reply.header("Connection") == Some("close");
    if closes {
        // Exactly one response, then a clean close: FIN, no more bytes, no reset.
        match responses.next(false) {
            Ok(None) => {}
            other => {
                panic!("{label}: the server must close cleanly after its one answer; got {other:?}")
            }
        }
    } else {
        // Kept open: the connection carries the next request, answered after the first.
        responses
            .stream()
            .write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let next = match responses.next(false) {
            Ok(Some(next)) => next,
            other => panic!("{label}: no answer on the kept connection: {other:?}"),
        };
        assert_eq!(next.status, 200, "{label}: the request after it");
        assert_eq!(
            next.header("Content-Type"),
            Some("application/json"),
            "{label}"
        );
        assert!(
            matches!(responses.next(false), Ok(None)),
            "{label}: closed after it"
        );
    }
    assert!(stage.alive(), "{label}: the stage died");
}

fn stage_name(stage: &Stage) -> String {
    format!("stage pid {} ({})", stage.pid(), stage.addr)
}

/// Runs every case of `table` against every stage of [`STAGES`], checking after each that a
/// normal request is served and that descriptors and threads are back to their baseline.
fn run_table(table: &[Case]) {
    run_table_on(table, &STAGES);
}

fn run_table_on(table: &[Case], stages: &[(&str, &[&str], Reuse)]) {
    for &(bin, args, reuse) in stages {
        let stage = Stage::start(bin, args);
        // Counted before any request: a connection thread of stage 02 may outlive its answer.
        let baseline = stage.usage();
        assert_eq!(stage.get("/").status, 200);
        for case in table {
            check(&stage, case, reuse);
            let normal = stage.get("/");
            assert_eq!(
                normal.status, 200,
                "{} on {bin}: normal request after it",
                case.what
            );
            let now = stage.usage_back_to(baseline);
            assert!(
                now.fds <= baseline.fds && now.threads <= baseline.threads,
                "{} on {bin}: leaked: {now:?} after, {baseline:?} before",
                case.what
            );
        }
        let stats = stage.stats();
        assert!(stats["served"] >= 2 * table.len() as u64, "{stats:?}");
    }
}

/// Request line (RFC 9112 §3): exactly `method SP target SP version`; a method is a
/// case-sensitive token; the target is origin-form, absolute-form or `*`; the version is
/// HTTP/1.0 or HTTP/1.1. Otherwise 400, 505 for a well-formed other version, 501 for an
/// unknown method and 405 + `Allow` for a known method other than GET and HEAD.
#[test]
#[rustfmt::skip] // one row per line reads as the table it is
fn request_line_decisions() {
    run_table(&[
        case("plain GET", get_with(""), 200),
        case("HEAD", request("HEAD", "", b""), 200),
        case("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 200),
        case("absolute-form target", "GET http://t/ HTTP/1.1\r\nHost: t\r\n\r\n", 200),
        case("query string", "GET /?q=1 HTTP/1.1\r\nHost: t\r\n\r\n", 200),
        case("empty lines before the request line", [b"\r\n\n\r\n".as_slice(), &get_with("")].concat(), 200),
        case("unknown path", "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", 404),
        case("lower-case method is another, unknown method", "get / HTTP/1.1\r\nHost: t\r\n\r\n", 501),
        case("unknown method", request("BREW", "", b""), 501),
        case("POST", request("POST", "Content-Length: 0\r\n", b""), 405).allow(),
        case("PUT", request("PUT", "", b""), 405).allow(),
        case("DELETE", request("DELETE", "", b""), 405).allow(),
        case("PATCH", request("PATCH", "", b""), 405).allow(),
        case("TRACE", request("TRACE", "", b""), 405).allow(),
        case("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", 405).allow(),
        case("CONNECT authority-form", "CONNECT t:443 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        case("two spaces", "GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        case("trailing space", "GET / HTTP/1.1 \r\nHost: t\r\n\r\n", 400),
        case("leading space", " GET / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        case("tabs instead of spaces", "GET\t/\tHTTP/1.1\r\nHost: t\r\n\r\n", 400),
        case("HTTP/0.9 style, no version", "GET /\r\n\r\n", 400),
        case("method not a token", "G(T / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        case("target without slash", "GET x HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        case("space inside the target", "GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        case("non-ASCII target", b"GET /\xff HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        case("NUL in the target", b"GET /\0 HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        case("version without minor", "GET / HTTP/1\r\nHost: t\r\n\r\n", 400),
        case("lower-case version", "GET / http/1.1\r\nHost: t\r\n\r\n", 400),
        case("version with two dots", "GET / HTTP/1.1.1\r\nHost: t\r\n\r\n", 400),
        case("HTTP/2.0", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        case("HTTP/3.0", "GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505),
        case("HTTP/1.2 is served as HTTP/1.1", "GET / HTTP/1.2\r\nHost: t\r\n\r\n", 200),
        case("HTTP/1.9 without Host, like HTTP/1.1", "GET / HTTP/1.9\r\n\r\n", 400),
        case("HTTP/0.9 with a version", "GET / HTTP/0.9\r\n\r\n", 505),
        case("a request line in pieces", get_with(""), 200).in_pieces(5),
    ]);
}

/// Header lines (RFC 9112 §5, RFC 9110 §5.5): a token name, the colon right after it, a value
/// without control bytes other than tab; bytes 0x80-0xFF are kept; obs-fold and a bare CR are
/// rejected; HTTP/1.1 needs exactly one valid Host (RFC 9112 §3.2).
#[test]
#[rustfmt::skip] // one row per line reads as the table it is
fn header_decisions() {
    run_table(&[
        case("no space after the colon", "GET / HTTP/1.1\r\nHost:t\r\n\r\n", 200),
        case("whitespace around the value", get_with("X-A: \t v \t\r\n"), 200),
        case("empty value", get_with("X-Empty:\r\n"), 200),
        case("tab inside the value", get_with("X-A: a\tb\r\n"), 200),
        case("UTF-8 in a value (obs-text bytes)", get_with("X-A: caf\u{e9}\r\n"), 200),
        case("non-UTF-8 value (obs-text)", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: \xff\xfe\r\n\r\n".to_vec(), 200),
        case("bare LF line endings", "GET / HTTP/1.1\nHost: t\nX-A: b\n\n", 200),
        case("mixed CRLF and LF", "GET / HTTP/1.1\r\nHost: t\nX-A: b\r\n\n", 200),
        case("empty Host (allowed by RFC 9112 §3.2)", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 200),
        case("Host with a port", "GET / HTTP/1.1\r\nHost: t:80\r\n\r\n", 200),
        case("space before the colon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
        case("space inside the name", get_with("X A: b\r\n"), 400),
        case("empty name", get_with(": b\r\n"), 400),
        case("name not a token", get_with("X(A): b\r\n"), 400),
        case("non-ASCII name", get_with("\u{c4}: b\r\n"), 400),
        case("no colon", get_with("X-A b\r\n"), 400),
        case("obs-fold with a space", get_with("X-A: b\r\n c\r\n"), 400),
        case("obs-fold with a tab", get_with("X-A: b\r\n\tc\r\n"), 400),
        case("bare CR in a value", get_with("X-A: b\rc\r\n"), 400),
        case("bare CR at the end of a value", get_with("X-A: b\r\r\n"), 400),
        case("form feed around a value", get_with("X-A: \x0cb\x0c\r\n"), 400),
        case("NUL in a value", get_with("X-A: b\0c\r\n"), 400),
        case("DEL in a value", get_with("X-A: b\x7fc\r\n"), 400),
        case("ESC in a value", get_with("X-A: b\x1bc\r\n"), 400),
        case("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
        case("two Host lines", get_with("Host: t\r\n"), 400),
        case("two Host lines in HTTP/1.0", "GET / HTTP/1.0\r\nHost: t\r\nHost: u\r\n\r\n", 400),
        case("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        case("Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    ]);
}

/// Limits: a request line over 8 KiB is 414 (RFC 9112 section 3 asks for at least 8000
/// octets), a head over 16 KiB or with over 64 header lines
/// is 431; the caps hold whether the bytes come at once or in pieces. Exactly at a cap is
/// still served.
#[test]
#[rustfmt::skip] // one row per line reads as the table it is
fn limit_decisions() {
    let mut big_header = get_with("X-Big: ");
    big_header.truncate(big_header.len() - 2);
    big_header.resize(32 * 1024, b'a');
    big_header.extend_from_slice(b"\r\n\r\n");
    run_table(&[
        case("request line of exactly 8192 bytes", request_line_of(8192), 404),
        case("request line of 8193 bytes", request_line_of(8193), 414),
        case("request line of 8192 bytes in pieces", request_line_of(8192), 404)
        .in_pieces(7),
        case("request line of 8193 bytes in pieces", request_line_of(8193), 414)
        .in_pieces(7),
        case("request line of 8192 bytes, its CR and LF apart", request_line_of(8192), 404).split_at(8193),
        case("empty lines, then a 8192-byte request line", [b"\r\n\r\n".as_slice(), &request_line_of(8192)].concat(), 404).split_at(8196),
        case("a 20 KB target at once", request_line_of(20 * 1024), 414),
        case("a TLS handshake is not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), 400),
        case("binary garbage without a line end", vec![0u8; 100], 400),
        case("head of exactly 16384 bytes", head_of_exactly(16384), 200),
        case("head of 16385 bytes", head_of_exactly(16385), 431),
        case("head of 16384 bytes in pieces", head_of_exactly(16384), 200).in_pieces(9),
        case("a 32 KB header at once", big_header.clone(), 431),
        case("a 32 KB header in pieces", big_header, 431).in_pieces(16),
        case("64 header lines", with_header_lines(64), 200),
        case("65 header lines", with_header_lines(65), 431),
        case("20 KB of empty lines", "\r\n".repeat(10 * 1024), 400),
        case("10 KB of letters, no line end", "x".repeat(10 * 1024), 400),
        case("10 KB of 0xFF", vec![0xff; 10 * 1024], 400),
    ]);
}

/// Framing (RFC 9112 §6.3) is judged before the method: a POST with a broken Content-Length
/// is 400, not 405. Content-Length must be digits, without sign, fit in u64, and agree with
/// any other Content-Length. Transfer-Encoding must end in `chunked` (400 otherwise, and next
/// to a Content-Length, and in HTTP/1.0); a coding before it that we do not know is 501.
#[test]
#[rustfmt::skip] // one row per line reads as the table it is
fn framing_decisions() {
    run_table(&[
        case("POST, Content-Length not a number", request("POST", "Content-Length: abc\r\n", b""), 400),
        case("POST, negative Content-Length", request("POST", "Content-Length: -1\r\n", b""), 400),
        case("POST, signed Content-Length", request("POST", "Content-Length: +5\r\n", b""), 400),
        case("POST, hex Content-Length", request("POST", "Content-Length: 0x10\r\n", b""), 400),
        case("POST, empty Content-Length", request("POST", "Content-Length:\r\n", b""), 400),
        case("POST, Content-Length over u64", request("POST", "Content-Length: 99999999999999999999\r\n", b""), 400),
        case("POST, two different Content-Lengths", request("POST", "Content-Length: 1\r\nContent-Length: 2\r\n", b"ab"), 400),
        case("POST, a list of different values", request("POST", "Content-Length: 1, 2\r\n", b"ab"), 400),
        case("POST, two equal Content-Lengths", request( "POST", "Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
            405,
        )
        .allow(),
        case("POST, a list of equal values", request("POST", "Content-Length: 5, 5\r\n", b"hello"), 405)
        .allow(),
        case("POST, Transfer-Encoding: chunked", request( "POST", "Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
            405,
        )
        .allow(),
        case("GET, Transfer-Encoding: chunked", request("GET", "Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 200),
        case("GET, gzip then chunked", request("GET", "Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"), 501),
        case("GET, chunked then gzip", request("GET", "Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"), 400),
        case("GET, chunked twice", request("GET", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
        case("GET, Transfer-Encoding: identity", request("GET", "Transfer-Encoding: identity\r\n", b""), 400),
        case("HTTP/1.0 with Transfer-Encoding", "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        case("POST, Transfer-Encoding and Content-Length", request( "POST", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"hello"),
            400,
        ),
        case("POST without Host", "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400),
        case("POST, body over 64 KiB declared", request("POST", "Content-Length: 70000\r\n", b""), 413),
    ]);
}

/// Bodies: a valid Content-Length up to 64 KiB, or a chunked body with up to 64 KiB of data,
/// is read and thrown away, so the client reads the whole response; more is 413, and a chunk
/// that breaks the framing is 400. A refused request (405, 501, 400, 413) is answered at once,
/// without waiting for a body the client has not sent.
#[test]
#[rustfmt::skip] // one row per line reads as the table it is
fn body_decisions() {
    let body_32k = vec![b'b'; 32 * 1024];
    let body_64k = vec![b'b'; 64 * 1024];
    let chunks_64k = [b"8000\r\n".as_slice(), &body_32k, b"\r\n8000\r\n", &body_32k, b"\r\n0\r\n\r\n"].concat();
    let chunks_over = [b"8000\r\n".as_slice(), &body_32k, b"\r\n8000\r\n", &body_32k, b"\r\n1\r\nb\r\n0\r\n\r\n"].concat();
    let chunked = |body: &[u8]| request("GET", "Transfer-Encoding: chunked\r\n", body);
    run_table(&[
        case("GET with a small body", request("GET", "Content-Length: 5\r\n", b"hello"), 200),
        case("GET with a 32 KB body at once", request("GET", "Content-Length: 32768\r\n", &body_32k), 200),
        case("GET with exactly 64 KiB of body", request("GET", "Content-Length: 65536\r\n", &body_64k), 200),
        case("GET with a body in pieces", request("GET", "Content-Length: 32768\r\n", &body_32k), 200)
        .in_pieces(8),
        case("HEAD with a body", request("HEAD", "Content-Length: 3\r\n", b"abc"), 200),
        case("GET with 64 KiB + 1 declared", request("GET", "Content-Length: 65537\r\n", b""), 413),
        case("POST waiting to send its body", request("POST", "Content-Length: 1000\r\n", b""), 405)
        .allow(),
        case("unknown method waiting to send its body", request("BREW", "Content-Length: 1000\r\n", b""), 501),
        case("broken Content-Length waiting to send", request("GET", "Content-Length: x\r\n", b""), 400),
        case("GET with a chunked body", chunked(b"5\r\nhello\r\n0\r\n\r\n"), 200),
        case("GET with a chunked body in pieces", chunked(b"5;a=b\r\nhello\r\n1\r\n!\r\n0\r\nX-T: v\r\n\r\n"), 200)
        .in_pieces(9),
        case("GET with chunks of exactly 64 KiB in all", chunked(&chunks_64k), 200),
        case("GET with chunks of 64 KiB + 1 in all", chunked(&chunks_over), 413),
        case("GET with a chunk size that is not hex", chunked(b"5x\r\nhello\r\n0\r\n\r\n"), 400),
        case("GET with chunk data longer than its size", chunked(b"3\r\nhello\r\n0\r\n\r\n"), 400),
        case("GET with a folded trailer", chunked(b"0\r\nX: a\r\n b\r\n\r\n"), 400),
        case("GET with Expect and its body already sent", request("GET", "Expect: 100-continue\r\nContent-Length: 5\r\n", b"hello"), 200),
        case("huge body not yet sent", request("GET", "Content-Length: 1000000\r\n", b""), 413),
    ]);
}

/// Errors are answered while the client may still be sending, and the connection is closed
/// gracefully (FIN, then what the client still sends is read and thrown away), so the client
/// reads the whole error instead of a reset, up to 64 KiB beyond what the server read.
#[test]
#[rustfmt::skip] // one row per line reads as the table it is
fn errors_are_readable_even_when_the_client_sent_more() {
    let mut header_20k = get_with("X-Big: ");
    header_20k.truncate(header_20k.len() - 2);
    header_20k.resize(20 * 1024, b'a');
    header_20k.extend_from_slice(b"\r\n\r\n");
    let mut header_60k = header_20k.clone();
    header_60k.splice(30..30, vec![b'a'; 40 * 1024]);
    let body_32k = vec![b'b'; 32 * 1024];
    let body_50k = vec![b'b'; 50 * 1024];
    run_table(&[
        case("a 20 KB header at once", header_20k, 431),
        case("a 60 KB header at once", header_60k, 431),
        case("a 20 KB target at once", request_line_of(20 * 1024), 414),
        case("POST with a 32 KB body at once", request("POST", "Content-Length: 32768\r\n", &body_32k), 405)
        .allow(),
        case("PUT with a 50 KB body at once", request("PUT", "Content-Length: 51200\r\n", &body_50k), 405)
        .allow(),
        case("unknown method with a 32 KB body", request("BREW", "Content-Length: 32768\r\n", &body_32k), 501),
        case("broken Content-Length and a 32 KB body", request("POST", "Content-Length: 3x\r\n", &body_32k), 400),
        case("too large a body, 50 KB of it sent", request("POST", "Content-Length: 100000\r\n", &body_50k), 413),
        case("POST with 32 KB of chunks", request("POST", "Transfer-Encoding: chunked\r\n", &body_32k), 405)
        .allow(),
        case("bad chunks and then 32 KB more", request("GET", "Transfer-Encoding: chunked\r\n", &[b"zz\r\n".as_slice(), &body_32k].concat()), 400),
        case("32 KB of garbage", vec![b'x'; 32 * 1024], 400),
        case("a bad request line, then 32 KB more", [b"HELLO\r\n".as_slice(), &body_32k].concat(), 400),
    ]);
}

/// One request per connection (stages 01-06): whatever follows the first request (a second
/// request, the rest of a body, garbage) is ignored, and exactly one response comes back.
/// Stage 07 answers the second request too (`tests/stage07_keep_alive.rs`).
#[test]
#[rustfmt::skip] // one row per line reads as the table it is
fn one_request_per_connection() {
    let two = [get_with(""), get_with("")].concat();
    let body_then_request = [
        request("GET", "Content-Length: 5\r\n", b"hello"),
        get_with(""),
    ]
    .concat();
    let then_garbage = [get_with(""), vec![0xff; 4000]].concat();
    let error_then_request = [b"GET / HTTP/9.9\r\nHost: t\r\n\r\n".to_vec(), get_with("")].concat();
    let one_request_stages: Vec<_> = STAGES.into_iter().filter(|s| s.2 == Reuse::Never).collect();
    let table = [
        case("two requests in one write", two.clone(), 200),
        case("two requests in pieces", two, 200).in_pieces(4),
        case("a body and then a second request", body_then_request, 200),
        case("a request and then 4 KB of garbage", then_garbage, 200),
        case("a 505 and then a valid request", error_then_request, 505),
    ];
    run_table_on(&table, &one_request_stages);
}
