//! What every stage answers, byte for byte: the shared handler seen from a client.
//! Run against stages 01 and 02 (stages 03-05 use the same handler) and 06, the event loop,
//! which uses the same router and parser. Stage 07's kept connections are in its own tests.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{read_to_close, send_in_pieces, Reply, Stage};

const STAGES: [&str; 3] = [
    env!("CARGO_BIN_EXE_01_single"),
    env!("CARGO_BIN_EXE_02_thread_per_conn"),
    env!("CARGO_BIN_EXE_06_event_loop"),
];

fn start(bin: &str) -> Stage {
    Stage::start(bin, &["--work-ms", "0", "--quiet"])
}

/// `GET /` gets exactly these bytes (the Date value aside): status line, four headers with
/// an exact Content-Length, an empty line and the 12-byte body.
#[test]
fn get_root_is_hello_world_byte_for_byte() {
    for bin in STAGES {
        let stage = start(bin);
        let reply = stage.get("/");
        assert_eq!(
            reply.without_date(),
            "HTTP/1.1 200 OK\r\nDate: DATE\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 12\r\nConnection: close\r\n\r\nHello World\n"
        );
        let date = reply.header("Date").unwrap();
        assert!(
            date.ends_with(" GMT") && date.len() == 29,
            "IMF-fixdate: {date:?}"
        );
    }
}

/// HEAD has the same headers as GET, including Content-Length: 12, and no body.
#[test]
fn head_has_get_headers_and_no_body() {
    for bin in STAGES {
        let stage = start(bin);
        let reply = Reply::parse(&stage.exchange(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("Content-Length"), Some("12"));
        assert_eq!(reply.body, "");
    }
}

/// Unknown paths are 404; a query string does not change routing.
#[test]
fn routing_is_by_path_only() {
    let stage = start(STAGES[0]);
    let missing = stage.get("/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("Connection"), Some("close"));
    assert_eq!(
        missing.header("Content-Length"),
        Some(missing.body.len().to_string().as_str())
    );
    assert_eq!(stage.get("/?name=x").body, "Hello World\n");
    assert_eq!(
        stage.get("/stats?pretty").header("Content-Type"),
        Some("application/json")
    );
}

/// A known method other than GET and HEAD is 405 and says what is allowed.
#[test]
fn post_is_405_with_allow() {
    let stage = start(STAGES[0]);
    let reply = Reply::parse(
        &stage.exchange(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"),
    );
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("Allow"), Some("GET, HEAD"));
    let unknown = Reply::parse(&stage.exchange(b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n"));
    assert_eq!(unknown.status, 501);
}

/// Garbage is a 400 whose body says why; HTTP/1.1 without Host is 400 too.
#[test]
fn garbage_is_400() {
    for bin in STAGES {
        let stage = start(bin);
        let reply = Reply::parse(&stage.exchange(b"hello there\r\n\r\n"));
        assert_eq!(reply.status, 400);
        assert!(
            reply.body.starts_with("400 Bad Request: "),
            "{:?}",
            reply.body
        );
        assert_eq!(
            Reply::parse(&stage.exchange(b"GET / HTTP/1.1\r\n\r\n")).status,
            400
        );
        assert_eq!(
            Reply::parse(&stage.exchange(b"GET / HTTP/3.0\r\nHost: t\r\n\r\n")).status,
            505
        );
    }
}

/// A 32 KB header is refused with 431, and the client gets to read it (no reset).
#[test]
fn a_32_kb_header_is_431() {
    for bin in STAGES {
        let stage = start(bin);
        let mut request = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
        request.resize(32 * 1024, b'a');
        request.extend_from_slice(b"\r\n\r\n");
        let reply = Reply::parse(&stage.exchange(&request));
        assert_eq!(reply.status, 431);
    }
}

/// A request split into four TCP segments, 50 ms apart, is read whole and answered 200.
#[test]
fn a_request_in_four_pieces_gets_200() {
    for bin in STAGES {
        let stage = start(bin);
        let mut stream = stage.connect();
        send_in_pieces(
            &mut stream,
            b"GET / HTTP/1.1\r\nHost: pieces\r\n\r\n",
            4,
            Duration::from_millis(50),
        );
        let reply = Reply::parse(&read_to_close(&mut stream));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "Hello World\n");
    }
}

/// Bare LF line endings are tolerated, and HTTP/1.0 needs no Host.
#[test]
fn bare_lf_and_http_1_0_are_served() {
    let stage = start(STAGES[0]);
    assert_eq!(
        Reply::parse(&stage.exchange(b"GET / HTTP/1.1\nHost: t\n\n")).status,
        200
    );
    assert_eq!(
        Reply::parse(&stage.exchange(b"GET / HTTP/1.0\r\n\r\n")).status,
        200
    );
}

/// A client that connects and closes without a complete request gets nothing and leaves no
/// error in the log or the counters.
#[test]
fn a_client_that_leaves_early_causes_no_noise() {
    for bin in STAGES {
        let stage = Stage::start(bin, &["--work-ms", "0"]);
        drop(stage.connect());
        let mut partial = stage.connect();
        partial.write_all(b"GET / HTT").unwrap();
        drop(partial);
        let stats = stage.stats();
        assert_eq!(stats["errors"], 0);
        assert!(!stage.stderr().contains("failed"), "{}", stage.stderr());
    }
}

/// The log has one line per request with the thread's name, the request line and status.
#[test]
fn each_request_is_logged_with_its_thread() {
    let stage = Stage::start(STAGES[1], &["--work-ms", "0"]);
    stage.get("/nope");
    let _ = stage.stats();
    let log = stage.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("\"GET /nope HTTP/1.1\" 404"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(" conn-1 127.0.0.1:"), "{line}");
}

/// `Expect: 100-continue`: the client sends the head and waits for a go-ahead before it sends
/// its body. The server sends `100 Continue` at once (curl would otherwise wait a second for
/// it), reads the body, and answers. A request refused anyway gets its final status at once,
/// with no `100 Continue` before it (RFC 9110 §10.1.1).
#[test]
fn expect_100_continue_gets_a_go_ahead_at_once() {
    for bin in STAGES {
        let stage = start(bin);
        let mut stream = stage.connect();
        stream
            .write_all(
                b"GET / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            )
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut go_ahead = [0u8; 25];
        std::io::Read::read_exact(&mut stream, &mut go_ahead).expect("100 Continue within 0.5 s");
        assert_eq!(&go_ahead, b"HTTP/1.1 100 Continue\r\n\r\n");
        stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
        stream.write_all(b"hello").unwrap();
        let reply = Reply::parse(&read_to_close(&mut stream));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "Hello World\n");

        let refused = stage.exchange(
            b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        );
        assert!(
            refused.starts_with(b"HTTP/1.1 405 "),
            "{:?}",
            String::from_utf8_lossy(&refused)
        );
    }
}

/// `/stats` changes with every request, so no cache may keep it: `Cache-Control: no-store`.
/// The page itself carries no such header.
#[test]
fn stats_are_never_cached() {
    let stage = start(STAGES[0]);
    assert_eq!(
        stage.get("/stats").header("Cache-Control"),
        Some("no-store")
    );
    assert_eq!(stage.get("/").header("Cache-Control"), None);
}

/// `--body-bytes` sets the size of the page: "Hello World\n" repeated, cut at N bytes.
#[test]
fn the_body_size_is_a_flag() {
    let stage = Stage::start(
        STAGES[0],
        &["--work-ms", "0", "--quiet", "--body-bytes", "30"],
    );
    let reply = stage.get("/");
    assert_eq!(reply.header("Content-Length"), Some("30"));
    assert_eq!(reply.body, "Hello World\nHello World\nHello ");
}
