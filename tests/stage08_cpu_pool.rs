//! Stage 08 hands the work that computes (`--cpu-ms`) to a kitchen, a pool of threads, and
//! takes the results back through the loop's waker: the loop itself never computes.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{read_to_close, wait_for_stat, Reply, Stage, GET_CLOSE, PATIENCE};

const BIN: &str = env!("CARGO_BIN_EXE_08_cpu_pool");
const STAGE07: &str = env!("CARGO_BIN_EXE_07_keep_alive");
const STATS: &[u8] = b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// The stage with no waiting work and no log lines, and `extra` flags.
fn start(extra: &[&str]) -> Stage {
    let args = [&["--work-ms", "0", "--quiet"], extra].concat();
    Stage::start(BIN, &args)
}

/// Sends `request` on a new connection and returns, on its own thread, the answer and when it
/// was complete.
fn ask(stage: &Stage, request: &'static [u8]) -> thread::JoinHandle<(Reply, Instant)> {
    let mut stream = stage.connect();
    stream.write_all(request).unwrap();
    thread::spawn(move || {
        let answer = read_to_close(&mut stream);
        (Reply::parse(&answer), Instant::now())
    })
}

/// Four requests of 200 ms of computing, with two cooks: two cook at once (the kitchen's peak
/// is 2), so the four take at least two rounds, 400 ms; and `/stats`, asked while the kitchen
/// is full, is answered before any of them, since the loop computes nothing.
#[test]
fn the_loop_answers_while_the_kitchen_cooks() {
    let stage = start(&["--cpu-ms", "200", "--cpu-threads", "2"]);
    let started = Instant::now();
    let cooking: Vec<_> = (0..4).map(|_| ask(&stage, GET_CLOSE)).collect();
    wait_for_stat(&stage, "kitchen_cooking", 2);
    let (stats, stats_at) = ask(&stage, STATS).join().unwrap();
    assert_eq!(stats.status, 200);
    let answered: Vec<Instant> = cooking
        .into_iter()
        .map(|client| {
            let (reply, at) = client.join().unwrap();
            assert_eq!(reply.status, 200);
            assert_eq!(reply.body, "Hello World\n");
            at
        })
        .collect();
    let first = answered.iter().min().unwrap();
    let last = answered.iter().max().unwrap();
    assert!(stats_at < *first, "/stats waited for the kitchen");
    let took = last.duration_since(started);
    assert!(took >= Duration::from_millis(380), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    let stats = common::settled_stats(&stage);
    assert_eq!(stats["peak_kitchen_cooking"], 2, "two cooks at once");
    assert_eq!(stats["kitchen_full"], 0);
}

/// The stall chapter 8 starts from: stage 07 computes on its loop, so a `/stats` asked while
/// a request computes waits until that computing is done.
#[test]
fn stage07_makes_stats_wait_for_the_computing_in_front_of_it() {
    let stage = Stage::start(STAGE07, &["--work-ms", "0", "--quiet", "--cpu-ms", "400"]);
    let computing = ask(&stage, GET_CLOSE);
    thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    let (stats, stats_at) = ask(&stage, STATS).join().unwrap();
    let (hello, _) = computing.join().unwrap();
    assert_eq!((stats.status, hello.status), (200, 200));
    // The computing had 300 ms left when /stats was asked: it waited for most of it. (A
    // lower bound only: which client thread reads its answer first is the scheduler's.)
    let waited = stats_at.duration_since(asked);
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
}

/// With one cook and room for one waiting order, a third order is refused at once with 503,
/// `Retry-After: 1` and `Connection: close`, counted in `kitchen_full`; the two orders taken
/// are served, and so is a request afterwards.
#[test]
fn past_cpu_queue_the_answer_is_503_with_retry_after() {
    let stage = start(&["--cpu-ms", "300", "--cpu-threads", "1", "--cpu-queue", "1"]);
    let cooked = ask(&stage, GET_CLOSE);
    wait_for_stat(&stage, "kitchen_cooking", 1);
    let queued = ask(&stage, GET_CLOSE);
    wait_for_stat(&stage, "kitchen_queued", 1);
    let asked = Instant::now();
    let (refused, _) = ask(&stage, GET_CLOSE).join().unwrap();
    assert!(
        asked.elapsed() < Duration::from_millis(250),
        "refused at once"
    );
    let body = "503 Service Unavailable: the kitchen is full; try again in a second\n";
    assert_eq!(
        refused.without_date(),
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nDate: DATE\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
             Connection: close\r\nRetry-After: 1\r\n\r\n{body}",
            body.len()
        )
    );
    assert_eq!(cooked.join().unwrap().0.status, 200);
    assert_eq!(queued.join().unwrap().0.status, 200);
    assert_eq!(ask(&stage, GET_CLOSE).join().unwrap().0.status, 200);
    let stats = common::settled_stats(&stage);
    assert_eq!(stats["kitchen_full"], 1);
    assert_eq!(stats["peak_kitchen_queued"], 1);
}

/// A client that leaves while its order cooks: the connection is closed at once and counted
/// as abandoned (a computation cannot be stopped, so the order finishes), and when its dish
/// comes back it finds a newer connection on the same token and does nothing to it: that
/// connection gets exactly its own answer. Descriptors return to where they were.
#[test]
fn a_dish_for_a_client_that_left_is_dropped() {
    let stage = start(&["--cpu-ms", "300", "--cpu-threads", "1"]);
    let baseline = stage.fds();
    let mut leaving = stage.connect();
    leaving.write_all(GET_CLOSE).unwrap();
    wait_for_stat(&stage, "kitchen_cooking", 1);
    drop(leaving);
    wait_for_stat(&stage, "abandoned", 1);
    // Likely on the token the one who left had: its dish must not be served here.
    let mut next = stage.connect();
    next.write_all(GET_CLOSE).unwrap();
    let answer = read_to_close(&mut next);
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
    assert_eq!(Reply::parse(&answer).status, 200);
    drop(next);
    assert!(common::fds_back_to(&stage, baseline) <= baseline);
    let stats = common::settled_stats(&stage);
    assert_eq!(stats["abandoned"], 1);
    assert_eq!(stats["kitchen_cooking"], 0);
}

/// Ctrl-C while one order cooks and one waits: the listener closes, both orders are finished
/// and answered with `Connection: close`, and the process exits 0.
#[test]
fn ctrl_c_lets_the_kitchen_finish_its_orders() {
    let stage = start(&["--cpu-ms", "400", "--cpu-threads", "1"]);
    let get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let clients: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = stage.connect();
            stream.write_all(get).unwrap();
            stream
        })
        .collect();
    wait_for_stat(&stage, "kitchen_queued", 1);
    stage.interrupt();
    for mut stream in clients {
        let reply = Reply::parse(&read_to_close(&mut stream));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("Connection"), Some("close"));
    }
    let (status, _) = stage.wait_exit(PATIENCE);
    assert!(status.success(), "{status}");
}

/// The kitchen is `--cpu-threads` threads, started up front and named `cook-N`; with the loop
/// and the signal thread that is all the process has, however many requests compute.
#[test]
fn the_kitchen_is_exactly_its_cooks() {
    let stage = start(&["--cpu-threads", "3", "--cpu-ms", "50"]);
    assert_eq!(stage.threads(), 1 + 1 + 3, "main, ctrl-c and three cooks");
    let clients: Vec<_> = (0..20).map(|_| ask(&stage, GET_CLOSE)).collect();
    for client in clients {
        assert_eq!(client.join().unwrap().0.status, 200);
    }
    assert_eq!(stage.threads(), 5);
    let expected = ["08_cpu_pool", "cook-0", "cook-1", "cook-2", "ctrl-c"];
    assert_eq!(stage.thread_names(&expected), expected);
}

/// `--cpu-threads 0` turns the kitchen off: no cook is started, and the loop computes as
/// stage 07's did. `GET /` is answered exactly as ever, and a `/stats` asked while a request
/// computes waits until that computing is done (the stall of the test above, in this
/// binary); nothing is queued or refused, and the computing in place counts as cooking.
#[test]
fn with_no_cooks_the_loop_computes_as_stage07_did() {
    let stage = start(&["--cpu-ms", "400", "--cpu-threads", "0"]);
    let expected = ["08_cpu_pool", "ctrl-c"];
    assert_eq!(stage.thread_names(&expected), expected);
    let (hello, _) = ask(&stage, GET_CLOSE).join().unwrap();
    assert_eq!(
        hello.without_date(),
        "HTTP/1.1 200 OK\r\nDate: DATE\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 12\r\nConnection: close\r\n\r\nHello World\n"
    );
    let computing = ask(&stage, GET_CLOSE);
    thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    let (stats, stats_at) = ask(&stage, STATS).join().unwrap();
    assert_eq!(computing.join().unwrap().0.status, 200);
    assert_eq!(stats.status, 200);
    // The computing had 300 ms left when /stats was asked (a lower bound only, as above).
    let waited = stats_at.duration_since(asked);
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    let stats = common::settled_stats(&stage);
    assert_eq!(stats["peak_kitchen_cooking"], 1);
    assert_eq!(stats["peak_kitchen_queued"], 0);
    assert_eq!(stats["kitchen_full"], 0);
    assert_eq!(stage.thread_names(&expected), expected);
}
