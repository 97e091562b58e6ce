//! Stage 10 serves each connection as an `async fn` on a runtime of our own, one runtime per
//! core: the story of stage 05, the scale of stage 09.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{read_to_close, wait_for_stat, Reply, Responses, Stage, GET_CLOSE};

const BIN: &str = env!("CARGO_BIN_EXE_10_async");
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
const STATS: &[u8] = b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// The stage with `loops` runtimes, one cook, no log lines, and `extra` flags.
fn start(loops: &str, extra: &[&str]) -> Stage {
    let args = [&["--loops", loops, "--cpu-threads", "1", "--quiet"], extra].concat();
    Stage::start(BIN, &args)
}

/// Two hundred clients, each with 500 ms of waiting work, on one runtime: they overlap (all
/// answered in a few times 500 ms, not 200 times), and the process has exactly its threads:
/// main, the signal thread, the one runtime and the one cook.
#[test]
fn two_hundred_clients_overlap_on_one_runtime() {
    let stage = start("1", &["--work-ms", "500", "--backlog", "1024"]);
    let expected = ["10_async", "cook-0", "ctrl-c", "loop-0"];
    assert_eq!(stage.thread_names(&expected), expected);
    let started = Instant::now();
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let mut stream = stage.connect();
            stream.write_all(GET_CLOSE).unwrap();
            thread::spawn(move || Reply::parse(&read_to_close(&mut stream)).status)
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap(), 200);
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(stage.stats()["peak_in_flight"] >= 150);
    assert_eq!(stage.threads(), 4);
}

/// Keep-alive as in stage 07: a hundred requests on one connection, then pipelined requests
/// answered in order, each exact.
#[test]
fn kept_connections_and_pipelined_requests_in_order() {
    let stage = start("2", &["--work-ms", "0"]);
    let mut stream = stage.connect();
    let mut responses = Responses::new(&mut stream);
    for _ in 0..100 {
        responses.stream().write_all(GET).unwrap();
        let reply = responses.next(false).unwrap().unwrap();
        assert_eq!(
            reply.without_date(),
            "HTTP/1.1 200 OK\r\nDate: DATE\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 12\r\nKeep-Alive: timeout=5\r\n\r\nHello World\n"
        );
    }
    let pipelined = [GET, b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n", GET].concat();
    responses.stream().write_all(&pipelined).unwrap();
    let statuses: Vec<u16> = (0..3)
        .map(|_| responses.next(false).unwrap().unwrap().status)
        .collect();
    assert_eq!(statuses, [200, 404, 200]);
    let stats = stage.stats();
    assert_eq!(stats["accepted"], 2, "this connection and the /stats one");
    assert_eq!(stats["keep_alive_reuses"], 102);
}

/// Tricklers are cut with 408 at their deadline, a client that sends nothing is closed
/// quietly at it, and neither delays a normal request meanwhile.
#[test]
fn tricklers_get_408_and_the_silent_are_closed_at_the_deadline() {
    let stage = start("1", &["--work-ms", "0", "--header-timeout-ms", "1000"]);
    let mut trickler = stage.connect();
    trickler.write_all(b"GET / HT").unwrap();
    let mut silent = stage.connect();
    let started = Instant::now();
    thread::sleep(Duration::from_millis(300));
    trickler.write_all(b"TP/1").unwrap();
    assert_eq!(stage.get("/").status, 200);
    let reply = Reply::parse(&read_to_close(&mut trickler));
    assert_eq!(reply.status, 408);
    let (rest, ending) = common::read_until_end(&mut silent);
    assert_eq!((rest.len(), ending), (0, common::Ending::Eof));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(800), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(common::settled_stats(&stage)["timeouts"], 2);
}

/// A request and its FIN sent together: the answer, then the end at once, not after the
/// keep-alive timer (the runtime reads before it waits, so the FIN cannot be lost).
#[test]
fn a_fin_that_comes_with_the_request_closes_the_connection_at_once() {
    let stage = start("1", &["--work-ms", "0", "--keep-alive-ms", "4000"]);
    let mut clients: Vec<TcpStream> = (0..50).map(|_| stage.connect()).collect();
    let sent = Instant::now();
    for client in &mut clients {
        client.write_all(STATS).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
    }
    for client in &mut clients {
        let (bytes, ending) = common::read_until_end(client);
        assert_eq!(ending, common::Ending::Eof);
        assert_eq!(Reply::parse(&bytes).status, 200);
    }
    let took = sent.elapsed();
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

/// Stage 08's kitchen as a future: while 400 ms of computing cooks, `/stats` is answered at
/// once by the same runtime.
#[test]
fn the_runtime_answers_while_the_kitchen_cooks() {
    let stage = start("1", &["--work-ms", "0", "--cpu-ms", "400"]);
    let mut cooking = stage.connect();
    cooking.write_all(GET_CLOSE).unwrap();
    wait_for_stat(&stage, "kitchen_cooking", 1);
    let asked = Instant::now();
    let stats = stage.stats();
    assert!(asked.elapsed() < Duration::from_millis(250));
    assert_eq!(stats["kitchen_cooking"], 1);
    assert_eq!(Reply::parse(&read_to_close(&mut cooking)).status, 200);
}

/// Two thousand connections that send nothing are two thousand tasks, not threads: the
/// process keeps its threads, and a normal request is answered meanwhile.
#[test]
fn two_thousand_silent_connections_add_no_thread() {
    let stage = start("2", &["--header-timeout-ms", "60000", "--backlog", "4096"]);
    common::two_thousand_silent_connections(&stage);
}

/// Ctrl-C with idle kept connections and a request in progress: the idle ones are closed at
/// once (each awaits `stopped()` beside its next request), the one in progress finishes with
/// `Connection: close`, and the process exits 0.
#[test]
fn ctrl_c_closes_the_idle_and_finishes_the_busy() {
    let stage = start("2", &["--work-ms", "600", "--drain-ms", "20000"]);
    let regulars = common::idle_regulars(&stage, 40);
    let mut busy = stage.connect();
    busy.write_all(GET).unwrap();
    wait_for_stat(&stage, "in_flight", 1);
    common::ctrl_c_closes_the_idle_and_finishes_the_busy(stage, regulars, busy);
}

/// Stage 07's rule on tasks: with `--max-conns 2` held by two regulars idle between
/// requests, a third client is served at once; the one idle the longest was asked to leave
/// (counted in `idle_closed_for_room`), and the other keeps its connection.
#[test]
fn at_the_bound_the_longest_idle_regular_makes_room() {
    let stage = start(
        "1",
        &[
            "--work-ms",
            "0",
            "--max-conns",
            "2",
            "--keep-alive-ms",
            "5000",
        ],
    );
    common::the_longest_idle_regular_makes_room(&stage);
}
