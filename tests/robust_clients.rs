//! Clients that misbehave at the TCP level: they leave early, reset, or half-close. Proved
//! against stages 01, 02 and 05 (blocking) and 06 and 07 (the event loop); none of these can
//! hang stage 01, because each client either closes or finishes its request.
//!
//! The two models differ in one place: a blocking stage looks for a client that left only
//! before the work, the event loop also while the work runs (an event tells it). So a client
//! that resets or half-closes during the work is abandoned by the event loop, while a blocking
//! stage finishes the work and writes its answer (which fails, for a reset).
//!
//! For every row and stage: what the client sees (an answer, a prompt close, or nothing since
//! it left), what the server counts as an error (a reset is logged with the peer; a plain
//! close is not an error), that the process is alive, that a normal request is served next,
//! and that descriptor and thread counts return to their baseline.

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::{close_with_reset, finish_sending, read_until_end, Ending, Reply, Stage};

/// 200 ms of work, so a client can leave while its request is being worked on: it leaves
/// 30 ms after sending, which leaves 170 ms for a busy machine to be late.
const WORK_MS: &str = "200";
const LEAVE_AFTER_MS: u64 = 30;
/// Half way through the work: long after the server has read the request and started.
const HALF_CLOSE_AFTER_MS: u64 = 100;

/// "Promptly": far below stage 05's 30 s header deadline, and stages 01-02 have none at all.
const PROMPTLY: Duration = Duration::from_secs(3);

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
const PARTIAL_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHo";
const PARTIAL_BODY: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789";

/// What the client saw.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// It left before any answer could come.
    Nothing,
    /// An answer with this status, then a clean close.
    Answer(u16),
    /// A clean close with no answer, within [`PROMPTLY`].
    PromptClose,
}

/// One misbehaving client: what it does, what it must see, and how many errors the server
/// logs for it.
struct Case {
    what: &'static str,
    client: fn(&Stage) -> Seen,
    seen: Seen,
    errors: u64,
}

/// Connects, sends `bytes` (if any) and pauses so the server is reading or working on it.
fn connect_and_send(stage: &Stage, bytes: &[u8], pause_ms: u64) -> std::net::TcpStream {
    let mut stream = stage.connect();
    stream.set_nodelay(true).unwrap();
    if !bytes.is_empty() {
        stream.write_all(bytes).unwrap();
    }
    thread::sleep(Duration::from_millis(pause_ms));
    stream
}

/// Sends `bytes`, waits `pause_ms`, half-closes and reads what comes back.
fn half_close_after(stage: &Stage, bytes: &[u8], pause_ms: u64) -> Seen {
    let mut stream = connect_and_send(stage, bytes, pause_ms);
    stream.set_read_timeout(Some(PROMPTLY)).unwrap();
    let started = Instant::now();
    finish_sending(&stream);
    let (raw, ending) = read_until_end(&mut stream);
    assert_eq!(ending, Ending::Eof, "{:?}", String::from_utf8_lossy(&raw));
    if raw.is_empty() {
        assert!(started.elapsed() < PROMPTLY);
        Seen::PromptClose
    } else {
        Seen::Answer(Reply::parse(&raw).status)
    }
}

/// How the stage waits: a thread per request (01-05), or an event loop (06, 07).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Model {
    Blocking,
    EventLoop,
}

fn cases(model: Model) -> Vec<Case> {
    let event_loop = model == Model::EventLoop;
    vec![
        Case {
            what: "closes before sending anything",
            client: |stage| {
                drop(connect_and_send(stage, b"", 20));
                Seen::Nothing
            },
            seen: Seen::Nothing,
            errors: 0,
        },
        Case {
            what: "closes in the middle of the head",
            client: |stage| {
                drop(connect_and_send(stage, PARTIAL_HEAD, 20));
                Seen::Nothing
            },
            seen: Seen::Nothing,
            errors: 0,
        },
        Case {
            what: "closes in the middle of the body",
            client: |stage| {
                drop(connect_and_send(stage, PARTIAL_BODY, 20));
                Seen::Nothing
            },
            seen: Seen::Nothing,
            errors: 0,
        },
        Case {
            // The FIN arrives during the work; the answer is written into a socket whose
            // peer has gone, which the server cannot tell from a successful write.
            what: "closes while its request is worked on",
            client: |stage| {
                drop(connect_and_send(stage, GET, LEAVE_AFTER_MS));
                Seen::Nothing
            },
            seen: Seen::Nothing,
            errors: 0,
        },
        Case {
            what: "resets before sending anything",
            client: |stage| {
                close_with_reset(connect_and_send(stage, b"", 20));
                Seen::Nothing
            },
            seen: Seen::Nothing,
            errors: 1,
        },
        Case {
            what: "resets in the middle of the head",
            client: |stage| {
                close_with_reset(connect_and_send(stage, PARTIAL_HEAD, 20));
                Seen::Nothing
            },
            seen: Seen::Nothing,
            errors: 1,
        },
        Case {
            what: "resets in the middle of the body",
            client: |stage| {
                close_with_reset(connect_and_send(stage, PARTIAL_BODY, 20));
                Seen::Nothing
            },
            seen: Seen::Nothing,
            errors: 1,
        },
        Case {
            // The reset arrives during the work: a blocking stage writes its answer, which
            // fails and is logged; the event loop is told at once and abandons the request.
            what: "resets while its request is worked on",
            client: |stage| {
                close_with_reset(connect_and_send(stage, GET, LEAVE_AFTER_MS));
                Seen::Nothing
            },
            seen: Seen::Nothing,
            errors: if event_loop { 0 } else { 1 },
        },
        Case {
            // The server answers 405, then drains what the client still sends; the reset cuts
            // the drain short, which is no error: the answer was delivered.
            what: "resets during the drain after a refused request",
            client: |stage| {
                let mut request =
                    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n".to_vec();
                request.resize(request.len() + 32768, b'b');
                let mut stream = connect_and_send(stage, &request, 0);
                let mut status_line = [0u8; 12];
                std::io::Read::read_exact(&mut stream, &mut status_line).unwrap();
                close_with_reset(stream);
                assert_eq!(&status_line, b"HTTP/1.1 405");
                Seen::Answer(405)
            },
            seen: Seen::Answer(405),
            errors: 0,
        },
        Case {
            // Half-closed once the work has started: the blocking stages look for a client
            // that left only before the work, so it gets its answer; the event loop sees the
            // FIN at once and, since TCP cannot tell it from a client that left, abandons it.
            what: "half-closes while its request is worked on",
            client: |stage| half_close_after(stage, GET, HALF_CLOSE_AFTER_MS),
            seen: if event_loop {
                Seen::PromptClose
            } else {
                Seen::Answer(200)
            },
            errors: 0,
        },
        Case {
            what: "half-closes after a bad request",
            client: |stage| half_close_after(stage, b"HELLO\r\n\r\n", 0),
            seen: Seen::Answer(400),
            errors: 0,
        },
        Case {
            what: "half-closes without sending anything",
            client: |stage| half_close_after(stage, b"", 0),
            seen: Seen::PromptClose,
            errors: 0,
        },
        Case {
            what: "half-closes in the middle of the head",
            client: |stage| half_close_after(stage, PARTIAL_HEAD, 0),
            seen: Seen::PromptClose,
            errors: 0,
        },
        Case {
            what: "half-closes in the middle of the body",
            client: |stage| half_close_after(stage, PARTIAL_BODY, 0),
            seen: Seen::PromptClose,
            errors: 0,
        },
    ]
}

/// Runs every misbehaving client of [`cases`] against one stage: the client sees what it
/// should, a reset is logged as one error and a plain close as none, and the stage serves a
/// normal request next with no descriptor or thread left behind.
fn run_cases(bin: &str, extra: &[&str], model: Model) {
    let args = [&["--work-ms", WORK_MS, "--quiet"], extra].concat();
    let stage = Stage::start(bin, &args);
    // Counted before any request: a connection thread of stage 02 may outlive its answer.
    let baseline = stage.usage();
    assert_eq!(stage.get("/").status, 200);
    for case in cases(model) {
        let label = format!("client {} ({bin})", case.what);
        let errors_before = stage.stats()["errors"];
        assert_eq!((case.client)(&stage), case.seen, "{label}");
        // Wait until the server is done with that connection before reading the counters.
        let now = stage.usage_back_to(baseline);
        assert!(
            now.fds <= baseline.fds && now.threads <= baseline.threads,
            "{label}: leaked: {now:?} after, {baseline:?} before"
        );
        let stats = common::settled_stats(&stage);
        assert_eq!(
            stats["errors"] - errors_before,
            case.errors,
            "{label}: errors counted; log: {}",
            stage.stderr()
        );
        assert_eq!(
            stats["connections_open"], 1,
            "{label}: only the /stats request"
        );
        assert!(stage.alive(), "{label}: the stage died");
        assert_eq!(
            stage.get("/").status,
            200,
            "{label}: normal request after it"
        );
        let now = stage.usage_back_to(baseline);
        assert!(
            now.fds <= baseline.fds && now.threads <= baseline.threads,
            "{label}: leaked: {now:?} after, {baseline:?} before"
        );
    }
    let log = stage.stderr();
    assert!(
        log.contains("read failed: Connection reset by peer"),
        "{log}"
    );
    // The clients that left during the work: the event loop abandons all three (closed,
    // reset, half-closed); a blocking stage worked for them, and its write to the reset one
    // failed.
    let abandoned = stage.stats()["abandoned"];
    match model {
        Model::Blocking => {
            assert!(log.contains("write failed: "), "{log}");
            assert_eq!(abandoned, 0);
        }
        Model::EventLoop => assert_eq!(abandoned, 3, "{log}"),
    }
}

/// Stage 01 serves one connection at a time, yet no client of [`cases`] can hold it.
#[test]
fn stage01_survives_clients_that_leave_early_reset_or_half_close() {
    run_cases(env!("CARGO_BIN_EXE_01_single"), &[], Model::Blocking);
}

/// Stage 02: the same clients, each on a thread of its own.
#[test]
fn stage02_survives_clients_that_leave_early_reset_or_half_close() {
    run_cases(
        env!("CARGO_BIN_EXE_02_thread_per_conn"),
        &[],
        Model::Blocking,
    );
}

/// Stage 05, with a header deadline far beyond [`PROMPTLY`]: a half-closed partial request
/// is closed because the client finished, not because the deadline passed.
#[test]
fn stage05_survives_clients_that_leave_early_reset_or_half_close() {
    run_cases(
        env!("CARGO_BIN_EXE_05_timeouts"),
        &["--header-timeout-ms", "30000"],
        Model::Blocking,
    );
}

/// Stage 06: the same clients, all on one thread.
#[test]
fn stage06_survives_clients_that_leave_early_reset_or_half_close() {
    run_cases(
        env!("CARGO_BIN_EXE_06_event_loop"),
        &["--header-timeout-ms", "30000"],
        Model::EventLoop,
    );
}

/// Stage 07: the same, on connections it would keep open.
#[test]
fn stage07_survives_clients_that_leave_early_reset_or_half_close() {
    run_cases(
        env!("CARGO_BIN_EXE_07_keep_alive"),
        &["--header-timeout-ms", "30000"],
        Model::EventLoop,
    );
}

/// Stage 10: the same, each client a task on one of two runtimes.
#[test]
fn stage10_survives_clients_that_leave_early_reset_or_half_close() {
    run_cases(
        env!("CARGO_BIN_EXE_10_async"),
        &[
            "--header-timeout-ms",
            "30000",
            "--cpu-ms",
            "20",
            "--loops",
            "2",
        ],
        Model::EventLoop,
    );
}

/// Stage 11: the same, each client a task on tokio's two workers.
#[test]
fn stage11_survives_clients_that_leave_early_reset_or_half_close() {
    run_cases(
        env!("CARGO_BIN_EXE_11_tokio"),
        &[
            "--header-timeout-ms",
            "30000",
            "--cpu-ms",
            "20",
            "--workers",
            "2",
        ],
        Model::EventLoop,
    );
}

/// Stage 09: the same, on two loops.
#[test]
fn stage09_survives_clients_that_leave_early_reset_or_half_close() {
    run_cases(
        env!("CARGO_BIN_EXE_09_loop_per_core"),
        &[
            "--header-timeout-ms",
            "30000",
            "--cpu-ms",
            "20",
            "--loops",
            "2",
        ],
        Model::EventLoop,
    );
}

/// Stage 08: the same, with the work computed by the kitchen, so that clients leave while
/// their order cooks.
#[test]
fn stage08_survives_clients_that_leave_early_reset_or_half_close() {
    run_cases(
        env!("CARGO_BIN_EXE_08_cpu_pool"),
        &["--header-timeout-ms", "30000", "--cpu-ms", "20"],
        Model::EventLoop,
    );
}
