//! Stage 11 runs stage 10's `serve` on tokio's multi-thread runtime: one pool of workers that
//! share the ready tasks, one listener, one I/O driver.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{read_to_close, wait_for_stat, Reply, Responses, Stage, GET_CLOSE, PATIENCE};

const BIN: &str = env!("CARGO_BIN_EXE_11_tokio");
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
const STATS: &[u8] = b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// The stage with `workers` workers, one cook, no log lines, and `extra` flags.
fn start(workers: &str, extra: &[&str]) -> Stage {
    let args = [
        &["--workers", workers, "--cpu-threads", "1", "--quiet"],
        extra,
    ]
    .concat();
    Stage::start(BIN, &args)
}

/// Two hundred clients with 500 ms of waiting work overlap on two workers, and the process
/// has exactly its threads: main, the signal thread, the two workers and the one cook. (tokio
/// starts a thread for blocking work only when asked; this stage never asks.)
#[test]
fn two_hundred_clients_overlap_on_two_workers() {
    let stage = start("2", &["--work-ms", "500", "--backlog", "1024"]);
    let expected = ["11_tokio", "cook-0", "ctrl-c", "worker-0", "worker-1"];
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
    assert_eq!(stage.thread_names(&expected), expected);
}

/// Keep-alive and pipelining as in stage 07, on tokio: a hundred requests on one connection,
/// then three pipelined ones answered in order.
#[test]
fn kept_connections_and_pipelined_requests_in_order() {
    let stage = start("2", &["--work-ms", "0"]);
    let mut stream = stage.connect();
    let mut responses = Responses::new(&mut stream);
    for _ in 0..100 {
        responses.stream().write_all(GET).unwrap();
        assert_eq!(responses.next(false).unwrap().unwrap().status, 200);
    }
    let pipelined = [GET, b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n", GET].concat();
    responses.stream().write_all(&pipelined).unwrap();
    let statuses: Vec<u16> = (0..3)
        .map(|_| responses.next(false).unwrap().unwrap().status)
        .collect();
    assert_eq!(statuses, [200, 404, 200]);
    assert_eq!(stage.stats()["keep_alive_reuses"], 102);
}

/// `--current-thread`: tokio's one-thread runtime, the shape of one runtime of stage 10. No
/// worker thread: main runs the accept loop and every task, and still serves kept and
/// pipelined requests in order while the one cook computes for another client.
#[test]
fn current_thread_runs_every_task_on_main() {
    let stage = Stage::start(
        BIN,
        &[
            "--current-thread",
            "--cpu-threads",
            "1",
            "--cpu-ms",
            "400",
            "--work-ms",
            "0",
            "--quiet",
        ],
    );
    let expected = ["11_tokio", "cook-0", "ctrl-c"];
    assert_eq!(stage.thread_names(&expected), expected);
    let mut cooking = stage.connect();
    cooking.write_all(GET_CLOSE).unwrap();
    wait_for_stat(&stage, "kitchen_cooking", 1);
    let mut stream = stage.connect();
    let mut responses = Responses::new(&mut stream);
    let pipelined = [
        &b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n",
    ]
    .concat();
    responses.stream().write_all(&pipelined).unwrap();
    let statuses: Vec<u16> = (0..2)
        .map(|_| responses.next(false).unwrap().unwrap().status)
        .collect();
    assert_eq!(statuses, [200, 404]);
    assert_eq!(
        stage.stats()["kitchen_cooking"],
        1,
        "answered while it cooks"
    );
    assert_eq!(Reply::parse(&read_to_close(&mut cooking)).status, 200);
    assert_eq!(stage.thread_names(&expected), expected);
}

/// Tricklers get 408 at the deadline; a connection that sends nothing is closed quietly; the
/// FIN that comes with a request closes its connection at once.
#[test]
fn deadlines_and_the_fin_that_comes_with_the_request() {
    let stage = start("2", &["--work-ms", "0", "--header-timeout-ms", "1000"]);
    let mut trickler = stage.connect();
    trickler.write_all(b"GET / HT").unwrap();
    let mut silent = stage.connect();
    let mut leaving = stage.connect();
    leaving.write_all(STATS).unwrap();
    leaving.shutdown(std::net::Shutdown::Write).unwrap();
    let (bytes, ending) = common::read_until_end(&mut leaving);
    assert_eq!(
        (Reply::parse(&bytes).status, ending),
        (200, common::Ending::Eof)
    );
    assert_eq!(Reply::parse(&read_to_close(&mut trickler)).status, 408);
    let (rest, ending) = common::read_until_end(&mut silent);
    assert_eq!((rest.len(), ending), (0, common::Ending::Eof));
    assert_eq!(common::settled_stats(&stage)["timeouts"], 2);
}

/// The kitchen on tokio: while 400 ms of computing cooks, `/stats` is answered at once.
#[test]
fn the_workers_answer_while_the_kitchen_cooks() {
    let stage = start("1", &["--work-ms", "0", "--cpu-ms", "400"]);
    let mut cooking = stage.connect();
    cooking.write_all(GET_CLOSE).unwrap();
    wait_for_stat(&stage, "kitchen_cooking", 1);
    let asked = Instant::now();
    assert_eq!(stage.stats()["kitchen_cooking"], 1);
    assert!(asked.elapsed() < Duration::from_millis(250));
    assert_eq!(Reply::parse(&read_to_close(&mut cooking)).status, 200);
}

/// Two thousand silent connections are tasks: the thread count does not grow.
#[test]
fn two_thousand_silent_connections_add_no_thread() {
    let stage = start("2", &["--header-timeout-ms", "60000", "--backlog", "4096"]);
    common::two_thousand_silent_connections(&stage);
}

/// Ctrl-C: idle kept connections closed at once, the request in progress finished with
/// `Connection: close`, exit 0.
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
        "2",
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

/// The stage with `workers` workers and no kitchen (`--cpu-threads 0`): a request computes
/// 1500 ms on the worker that runs its task, and holds it meanwhile.
fn start_without_kitchen(workers: &str) -> Stage {
    Stage::start(
        BIN,
        &[
            "--workers",
            workers,
            "--cpu-threads",
            "0",
            "--cpu-ms",
            "1500",
            "--work-ms",
            "0",
            "--quiet",
        ],
    )
}

/// A new connection whose `GET /` goes with it, read on a thread of its own: its answer's
/// status line, and when it came. Sent at once, the request is there when the new task is
/// first run, so the task computes on a worker taken from the shared queue.
fn computing_client(stage: &Stage) -> thread::JoinHandle<(String, Instant)> {
    let mut stream = TcpStream::connect(stage.addr).unwrap();
    stream.write_all(GET_CLOSE).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    thread::spawn(move || {
        let answer = read_to_close(&mut stream);
        (status_line(&answer), Instant::now())
    })
}

/// Three `GET /stats`, one after another on one kept connection: each answer's status line
/// and when it came.
fn three_stats(stage: &Stage) -> Vec<(String, Instant)> {
    let mut stream = stage.connect();
    let mut responses = Responses::new(&mut stream);
    (0..3)
        .map(|_| {
            responses
                .stream()
                .write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let reply = responses.next(false).unwrap().unwrap();
            (status_line(&reply.raw), Instant::now())
        })
        .collect()
}

fn status_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.split("\r\n").next().unwrap_or_default().to_string()
}

/// Work stealing, shown by the order of answers: with two workers and no kitchen, a request
/// that computes for 1500 ms holds one worker, and another connection's three requests, sent
/// 100 ms later, are all answered by the other worker before it.
#[test]
fn with_two_workers_one_computing_request_does_not_stop_the_others() {
    let stage = start_without_kitchen("2");
    let computing = computing_client(&stage);
    thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    let stats = three_stats(&stage);
    let (hello, hello_at) = computing.join().unwrap();
    assert_eq!(hello, "HTTP/1.1 200 OK");
    for (line, at) in &stats {
        assert_eq!(line, "HTTP/1.1 200 OK");
        assert!(*at < hello_at, "a /stats came after the computing request");
    }
    let took = stats[2].1.duration_since(asked);
    assert!(took < Duration::from_millis(1000), "{took:?}");
}

/// The contrast: with one worker, the request that computes holds the only worker, and the
/// other connection's first answer waits for it (it had about 1400 ms left).
#[test]
fn with_one_worker_one_computing_request_stops_the_others() {
    let stage = start_without_kitchen("1");
    let computing = computing_client(&stage);
    thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    let stats = three_stats(&stage);
    let (hello, _) = computing.join().unwrap();
    assert_eq!(hello, "HTTP/1.1 200 OK");
    for (line, _) in &stats {
        assert_eq!(line, "HTTP/1.1 200 OK");
    }
    let waited = stats[0].1.duration_since(asked);
    assert!(waited >= Duration::from_millis(1000), "{waited:?}");
}

/// What stealing does not cover: a worker shares its ready tasks, not the I/O driver it polls.
/// A request that comes on a kept connection is woken by the worker polling the driver, which
/// runs it itself; computing, it polls no more, and the other worker, asleep, is not told: no
/// socket is watched, and another client's first answer waits for the computing (tokio 1.53).
#[test]
fn with_two_workers_a_kept_connection_that_computes_stops_the_others() {
    let stage = start_without_kitchen("2");
    let mut kept = stage.connect();
    kept.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut responses = Responses::new(&mut kept);
    assert_eq!(responses.next(false).unwrap().unwrap().status, 200);
    // Both workers back asleep: one on the driver, the other without it.
    thread::sleep(Duration::from_millis(200));
    responses.stream().write_all(GET).unwrap();
    thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    let stats = three_stats(&stage);
    assert_eq!(responses.next(false).unwrap().unwrap().status, 200);
    for (line, _) in &stats {
        assert_eq!(line, "HTTP/1.1 200 OK");
    }
    let waited = stats[0].1.duration_since(asked);
    assert!(waited >= Duration::from_millis(1000), "{waited:?}");
}

/// `--spawn-blocking`: the cooks are tokio's blocking pool, capped at `--cpu-threads`. No
/// thread waits for work up front; while three orders cook, two `blocking-N` threads compute
/// (the third order waits in the kitchen's queue) and no `cook-N` exists. All answered 200.
#[test]
fn spawn_blocking_cooks_on_tokios_blocking_threads() {
    let stage = Stage::start(
        BIN,
        &[
            "--workers",
            "2",
            "--cpu-threads",
            "2",
            "--spawn-blocking",
            "--cpu-ms",
            "400",
            "--work-ms",
            "0",
            "--quiet",
        ],
    );
    let idle = ["11_tokio", "ctrl-c", "worker-0", "worker-1"];
    assert_eq!(stage.thread_names(&idle), idle);
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let mut stream = stage.connect();
            stream.write_all(GET_CLOSE).unwrap();
            thread::spawn(move || Reply::parse(&read_to_close(&mut stream)))
        })
        .collect();
    wait_for_stat(&stage, "kitchen_cooking", 2);
    let cooking = [
        "11_tokio",
        "blocking-0",
        "blocking-1",
        "ctrl-c",
        "worker-0",
        "worker-1",
    ];
    assert_eq!(stage.thread_names(&cooking), cooking);
    for client in clients {
        let reply = client.join().unwrap();
        assert_eq!(status_line(&reply.raw), "HTTP/1.1 200 OK");
        assert_eq!(reply.body, "Hello World\n");
    }
    let stats = common::settled_stats(&stage);
    assert_eq!(stats["peak_kitchen_cooking"], 2, "capped at --cpu-threads");
    // The third order waited for a cook (the first two, too, for as long as a thread takes
    // to start: a peak of 1 to 3).
    assert!(stats["peak_kitchen_queued"] >= 1);
    assert_eq!(stats["kitchen_full"], 0);
}

/// `--spawn-blocking` needs cooks: with `--cpu-threads 0` it is refused, status 2.
#[test]
fn spawn_blocking_without_cooks_is_refused() {
    let out = std::process::Command::new(BIN)
        .args(["--spawn-blocking", "--cpu-threads", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: --spawn-blocking needs cooks: --cpu-threads 0 has none\n"),
        "{stderr}"
    );
}
