//! Stage 07 keeps HTTP/1.1 connections open: one connection carries many requests, framed one
//! after another, and closes only when it must.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{send_in_pieces, Reply, Responses, Stage, PATIENCE};

const BIN: &str = env!("CARGO_BIN_EXE_07_keep_alive");
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

fn start(extra: &[&str]) -> Stage {
    let args = [&["--work-ms", "0", "--quiet"], extra].concat();
    Stage::start(BIN, &args)
}

/// Reads the next response on a kept connection; panics with what went wrong.
fn next(responses: &mut Responses<'_>) -> Reply {
    match responses.next(false) {
        Ok(Some(reply)) => reply,
        other => panic!("no response: {other:?}"),
    }
}

/// A connection whose receive buffer (and, with `send_too`, send buffer) is 4 KiB: set before
/// connecting, since the window is agreed in the handshake.
fn connect_with_small_buffers(stage: &Stage, send_too: bool) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    if send_too {
        socket.set_send_buffer_size(4096).unwrap();
    }
    socket.connect(&stage.addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// A hundred requests on one connection get a hundred correct responses, each saying the
/// connection stays open (and for how long); the server accepted that one connection.
#[test]
fn a_hundred_requests_on_one_connection() {
    let stage = start(&[]);
    let mut stream = stage.connect();
    let mut responses = Responses::new(&mut stream);
    for _ in 0..100 {
        responses.stream().write_all(GET).unwrap();
        let reply = next(&mut responses);
        assert_eq!(
            reply.without_date(),
            "HTTP/1.1 200 OK\r\nDate: DATE\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 12\r\nKeep-Alive: timeout=5\r\n\r\nHello World\n"
        );
    }
    let stats = stage.stats();
    assert_eq!(
        stats["accepted"], 2,
        "the kept connection and this /stats: {stats:?}"
    );
    assert_eq!(stats["requests"], 101);
    assert_eq!(stats["keep_alive_reuses"], 99);
}

/// Three requests in one write get three responses, in order, each exact; then a request
/// split into five segments on the same connection is assembled and answered too.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let stage = start(&[]);
    let mut stream = stage.connect();
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut responses = Responses::new(&mut stream);
    let first = next(&mut responses);
    assert_eq!(
        first.without_date(),
        "HTTP/1.1 404 Not Found\r\nDate: DATE\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 31\r\nKeep-Alive: timeout=5\r\n\r\n404 Not Found: try / or /stats\n"
    );
    assert_eq!(next(&mut responses).body, "Hello World\n");
    let head = responses.next(true).unwrap().unwrap();
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    send_in_pieces(
        responses.stream(),
        b"GET /later HTTP/1.1\r\nHost: t\r\n\r\n",
        5,
        Duration::from_millis(20),
    );
    assert_eq!(next(&mut responses).status, 404);
}

/// A body is read to its end by its framing, and the next request starts right after it:
/// with a `Content-Length` body, and with a chunked one (with a trailer).
#[test]
fn the_next_request_starts_where_the_body_ends() {
    let stage = start(&[]);
    for body_request in [
        &b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"[..],
        &b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"[..],
    ] {
        let mut stream = stage.connect();
        let bytes = [body_request, b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n"].concat();
        stream.write_all(&bytes).unwrap();
        let mut responses = Responses::new(&mut stream);
        assert_eq!(next(&mut responses).status, 200);
        assert_eq!(next(&mut responses).status, 404, "the request after the body");
    }
}

/// The connection closes after the response, which says so, when the client asks
/// (`Connection: close`), for HTTP/1.0 unless it asked for keep-alive, and at
/// `--max-requests`.
#[test]
fn the_connection_closes_when_it_must_and_says_so() {
    let stage = start(&["--max-requests", "3"]);
    let closes = |request: &[u8]| {
        let mut stream = stage.connect();
        stream.write_all(request).unwrap();
        let mut responses = Responses::new(&mut stream);
        let reply = next(&mut responses);
        assert_eq!(reply.header("Connection"), Some("close"));
        assert!(matches!(responses.next(false), Ok(None)), "closed after it");
    };
    closes(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    closes(b"GET / HTTP/1.0\r\n\r\n");

    // HTTP/1.0 that asks for keep-alive is kept, and told so.
    let mut stream = stage.connect();
    stream
        .write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut responses = Responses::new(&mut stream);
    assert_eq!(
        next(&mut responses).header("Connection"),
        Some("keep-alive")
    );

    // The third request on one connection is its last.
    let mut stream = stage.connect();
    let mut responses = Responses::new(&mut stream);
    for n in 1..=3 {
        responses.stream().write_all(GET).unwrap();
        let reply = next(&mut responses);
        let says = reply.header("Connection");
        assert_eq!(
            says,
            if n < 3 { None } else { Some("close") },
            "request {n}"
        );
    }
    assert!(
        matches!(responses.next(false), Ok(None)),
        "closed after the third"
    );
}

/// An idle kept connection is closed quietly, no 408, no earlier than 0.8 x and no later than
/// `--keep-alive-ms` + 1 s after its last response.
#[test]
fn an_idle_connection_is_closed_quietly_at_its_idle_timer() {
    let stage = start(&["--keep-alive-ms", "1000"]);
    let mut stream = stage.connect();
    stream.write_all(GET).unwrap();
    let mut responses = Responses::new(&mut stream);
    assert_eq!(next(&mut responses).status, 200);
    let answered = Instant::now();
    assert!(
        matches!(responses.next(false), Ok(None)),
        "closed, with no answer"
    );
    let idle = answered.elapsed();
    assert!(idle >= Duration::from_millis(800), "closed early: {idle:?}");
    assert!(idle <= Duration::from_millis(2000), "closed late: {idle:?}");
    assert_eq!(
        stage.stats()["timeouts"],
        0,
        "closing an idle connection is no timeout"
    );
}

/// The header deadline starts at the first byte of each request, not at accept: a client that
/// starts a second request and stalls gets 408 at its header deadline from that byte.
#[test]
fn a_second_request_that_stalls_gets_408_at_its_own_deadline() {
    let stage = start(&["--header-timeout-ms", "1000", "--keep-alive-ms", "10000"]);
    let mut stream = stage.connect();
    stream.write_all(GET).unwrap();
    let mut responses = Responses::new(&mut stream);
    assert_eq!(next(&mut responses).status, 200);
    // Idle well past the header deadline: that is the idle timer's business, not the head's.
    thread::sleep(Duration::from_millis(1500));
    responses.stream().write_all(b"GET / HT").unwrap();
    let started = Instant::now();
    let reply = next(&mut responses);
    let took = started.elapsed();
    assert_eq!(reply.status, 408);
    assert_eq!(reply.header("Connection"), Some("close"));
    assert!(took >= Duration::from_millis(800), "cut early: {took:?}");
    assert!(took <= Duration::from_millis(2500), "cut late: {took:?}");
}

/// A request that arrives while the previous answer is still being written is answered too.
/// After an answer the loop does not read again if its last read came back short; the
/// readable event for this request came during the writing, and must not be lost.
#[test]
fn a_request_sent_during_the_previous_answer_is_answered() {
    let body = 8 * 1024 * 1024;
    let stage = start(&["--body-bytes", &body.to_string()]);
    // A small receive buffer: the 8 MiB answer cannot all be sent.
    let mut stream = connect_with_small_buffers(&stage, false);
    stream.write_all(GET).unwrap();
    let mut first = [0u8; 4096];
    stream.read_exact(&mut first).unwrap();
    thread::sleep(Duration::from_millis(200));
    // `served` counts an answer once all of it is in the kernel's send buffer.
    assert_eq!(
        stage.stats()["served"],
        0,
        "the first answer is still being written"
    );
    stream
        .write_all(b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(200));
    let head_end = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut rest = vec![0u8; body - (first.len() - head_end)];
    stream.read_exact(&mut rest).unwrap();
    let mut responses = Responses::new(&mut stream);
    assert_eq!(
        next(&mut responses).status,
        404,
        "the second request's answer"
    );
}

/// Reading stops while a response is pending, so a client cannot queue unbounded work: one
/// that pipelines requests without reading the answers soon finds its sends blocked (the
/// kernel buffers on both sides are full), having had only a bounded number of them read.
/// Then it reads, and every request that was read is answered, in order.
#[test]
fn a_client_that_does_not_read_cannot_queue_unbounded_work() {
    let stage = start(&["--write-timeout-ms", "60000"]);
    // Small buffers on our side, so the push-back comes soon.
    let mut stream = connect_with_small_buffers(&stage, true);
    stream.set_nonblocking(true).unwrap();
    let mut sent = 0u64;
    let started = Instant::now();
    // Send requests until the kernel takes no more.
    loop {
        match stream.write(GET) {
            Ok(n) if n == GET.len() => sent += 1,
            Ok(_) => break, // a partial write: the buffers are full
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{sent} requests and never pushed back"
        );
    }
    // The server reads no more while its answers wait for us: the count stays put.
    thread::sleep(Duration::from_millis(300));
    let read = stage.stats()["requests"];
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        stage.stats()["requests"],
        read + 1,
        "only our own /stats was read meanwhile"
    );
    assert!(read < sent, "read {read} of {sent}");
    eprintln!("sent {sent} requests, the server read {read} of them and stopped");
    stream.set_nonblocking(false).unwrap();
    let mut responses = Responses::new(&mut stream);
    for _ in 0..read.min(50) {
        assert_eq!(next(&mut responses).status, 200);
    }
}

/// Ctrl-C with 50 idle kept connections and one request in progress: the idle ones are closed
/// at once (they must not hold the drain), the request in progress gets its 200 with
/// `Connection: close`, and the process exits 0 long before `--drain-ms`.
#[test]
fn ctrl_c_closes_idle_regulars_and_finishes_the_request_in_progress() {
    let stage = Stage::start(BIN, &["--work-ms", "800", "--quiet", "--drain-ms", "20000"]);
    let mut regulars: Vec<_> = (0..50)
        .map(|_| {
            let mut stream = stage.connect();
            stream
                .write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    for stream in &mut regulars {
        let mut responses = Responses::new(stream);
        assert_eq!(next(&mut responses).status, 200);
    }
    let mut in_progress = stage.connect();
    in_progress.write_all(GET).unwrap();
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    stage.interrupt();
    for stream in &mut regulars {
        let mut byte = [0u8; 1];
        assert_eq!(
            stream.read(&mut byte).map_err(|e| e.kind()),
            Ok(0),
            "closed at once"
        );
    }
    let idle_closed = started.elapsed();
    let mut responses = Responses::new(&mut in_progress);
    let reply = next(&mut responses);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Connection"), Some("close"));
    let (status, stdout) = stage.wait_exit(PATIENCE);
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        idle_closed < Duration::from_millis(600),
        "idle ones waited {idle_closed:?}"
    );
    assert!(
        stdout.contains("51 request(s) on 51 connection(s)"),
        "the summary counts requests per connection: {stdout:?}"
    );
}

/// Five hundred pipelined requests, more than one turn of the loop answers (the state machine
/// yields after 64 steps, so one client cannot hold the loop): no event will come for bytes
/// that are already there, so the loop comes back to the connection by itself, and every
/// request is answered, in order.
#[test]
fn more_pipelined_requests_than_one_turn_are_all_answered() {
    let stage = start(&[]);
    let mut stream = stage.connect();
    let mut writer = stream.try_clone().unwrap();
    let sending = thread::spawn(move || {
        let mut all = Vec::new();
        for i in 0..500 {
            all.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        }
        writer.write_all(&all).unwrap();
    });
    let mut responses = Responses::new(&mut stream);
    for _ in 0..500 {
        assert_eq!(next(&mut responses).status, 404);
    }
    sending.join().unwrap();
    assert_eq!(stage.stats()["requests"], 501);
}

/// Fifty clients each send a request and their FIN in one burst, while the loop is busy, so
/// that one event reports both. Each gets its answer and then its end at once, not after the
/// keep-alive timer: the FIN is remembered even though the read of the request came back
/// short, so no connection holds its descriptor and its place for `--keep-alive-ms`.
#[test]
fn a_fin_that_comes_with_the_request_closes_the_connection_at_once() {
    let stage = start(&["--keep-alive-ms", "4000", "--cpu-ms", "300"]);
    let mut clients: Vec<TcpStream> = (0..50).map(|_| stage.connect()).collect();
    common::wait_for_stat(&stage, "connections_open", 51);
    // Keep the loop computing for 300 ms, so the bursts below wait for it together.
    let mut staller = stage.connect();
    staller.write_all(GET).unwrap();
    thread::sleep(Duration::from_millis(50));
    let sent = Instant::now();
    for client in &mut clients {
        client
            .write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
    }
    for client in &mut clients {
        let (bytes, ending) = common::read_until_end(client);
        assert_eq!(ending, common::Ending::Eof);
        assert_eq!(Reply::parse(&bytes).status, 200);
    }
    let took = sent.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "the ends came after {took:?}: the keep-alive timer, not the FIN, closed them"
    );
}

/// With `--max-conns 2` held by two regulars idle between requests, a third client is served
/// at once: the one idle the longest is closed to make room (counted in
/// `idle_closed_for_room`), and the other regular keeps its connection.
#[test]
fn at_the_bound_the_longest_idle_regular_makes_room() {
    let stage = start(&["--max-conns", "2", "--keep-alive-ms", "5000"]);
    common::the_longest_idle_regular_makes_room(&stage);
}

/// Empty lines between two requests are not a request (RFC 9112 section 2.2): a regular who
/// sends a stray CRLF after its answer stays idle, and is closed quietly at its idle timer,
/// without the 408 a request begun and not finished would get. A request after the empty
/// line is answered as usual.
#[test]
fn a_stray_empty_line_between_requests_leaves_the_connection_idle() {
    let stage = start(&["--keep-alive-ms", "800", "--header-timeout-ms", "5000"]);
    let mut stream = stage.connect();
    stream.write_all(GET).unwrap();
    assert_eq!(next(&mut Responses::new(&mut stream)).status, 200);
    stream.write_all(b"\r\n").unwrap();
    thread::sleep(Duration::from_millis(100));
    stream.write_all(GET).unwrap();
    assert_eq!(next(&mut Responses::new(&mut stream)).status, 200);
    let idle_from = Instant::now();
    stream.write_all(b"\r\n").unwrap();
    let (rest, ending) = common::read_until_end(&mut stream);
    assert_eq!(ending, common::Ending::Eof);
    assert_eq!(String::from_utf8_lossy(&rest), "", "closed quietly, no 408");
    let took = idle_from.elapsed();
    assert!(took >= Duration::from_millis(600), "closed early: {took:?}");
    assert!(
        took < Duration::from_millis(3000),
        "closed at the header deadline: {took:?}"
    );
}

/// Ctrl-C comes while a response framed to keep the connection is still being written (the
/// client reads slowly), with a second request pipelined behind it. The second request is
/// in progress as far as the client knows: it is answered, with `Connection: close`, and only
/// then is the connection closed. The first response may not take its word back, but it is
/// never the last one on the connection without saying so and without a reason: the
/// connection closes after a response that says `Connection: close`.
#[test]
fn a_request_pipelined_behind_a_response_cut_by_ctrl_c_is_answered_with_close() {
    let stage = Stage::start(
        BIN,
        &[
            "--work-ms",
            "0",
            "--quiet",
            "--body-bytes",
            "20000000",
            "--drain-ms",
            "20000",
        ],
    );
    let mut stream = connect_with_small_buffers(&stage, false);
    stream.write_all(&[GET, GET].concat()).unwrap();
    common::wait_for_stat(&stage, "in_flight", 1);
    stage.interrupt();
    thread::sleep(Duration::from_millis(200));
    let mut responses = Responses::new(&mut stream);
    let first = next(&mut responses);
    assert_eq!((first.status, first.header("Connection")), (200, None));
    let second = next(&mut responses);
    assert_eq!(second.status, 200);
    assert_eq!(second.header("Connection"), Some("close"));
    assert!(
        matches!(responses.next(false), Ok(None)),
        "then the connection closes"
    );
    let (status, _) = stage.wait_exit(PATIENCE);
    assert!(status.success(), "{status}");
}
