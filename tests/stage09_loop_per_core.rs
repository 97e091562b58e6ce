//! Stage 09 runs one event loop per core, each with its own listener on the same port
//! (`SO_REUSEPORT`): the kernel spreads the clients, and each loop serves only its own.

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::{read_to_close, wait_for_stat, Reply, Responses, Stage, GET_CLOSE};

const BIN: &str = env!("CARGO_BIN_EXE_09_loop_per_core");
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

/// The stage with `loops` loops, one cook, no simulated work and no log lines, and `extra`.
fn start(loops: &str, extra: &[&str]) -> Stage {
    let args = [
        &[
            "--loops",
            loops,
            "--cpu-threads",
            "1",
            "--work-ms",
            "0",
            "--quiet",
        ],
        extra,
    ]
    .concat();
    Stage::start(BIN, &args)
}

/// With `--loops 2`, two hundred clients at once are spread by the kernel over both loops:
/// each accepts some, and their counts add up to the server's. The process has exactly its
/// two loop threads, `main` (waiting for them), the signal thread and the one cook.
#[test]
fn the_kernel_spreads_the_clients_over_the_loops() {
    let stage = start("2", &[]);
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
    let stats = common::settled_stats(&stage);
    let (first, second) = (stats["loop_0_accepted"], stats["loop_1_accepted"]);
    assert!(first > 0 && second > 0, "{first} and {second}");
    assert_eq!(first + second, stats["accepted"]);
    // The program's name is cut to 15 bytes in a thread's name.
    let expected = ["09_loop_per_cor", "cook-0", "ctrl-c", "loop-0", "loop-1"];
    assert_eq!(stage.thread_names(&expected), expected);
}

/// The context switches of the loop threads so far (Linux: voluntary_ctxt_switches of each
/// `loop-N` thread in /proc): each is a wake-up of that loop.
fn loop_wake_ups(stage: &Stage) -> u64 {
    std::fs::read_dir(format!("/proc/{}/task", stage.pid()))
        .unwrap()
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            if !name.starts_with("loop-") {
                return None;
            }
            let status = std::fs::read_to_string(path.join("status")).ok()?;
            status
                .lines()
                .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .sum()
}

/// Two hundred clients one after another, then the loops' wake-ups and missed accepts.
fn wake_ups_for_200_clients(stage: &Stage) -> (u64, u64) {
    let before = loop_wake_ups(stage);
    for _ in 0..200 {
        let mut stream = stage.connect();
        stream.write_all(GET_CLOSE).unwrap();
        assert_eq!(Reply::parse(&read_to_close(&mut stream)).status, 200);
    }
    let stats = common::settled_stats(stage);
    let misses = stats["loop_0_accept_misses"] + stats["loop_1_accept_misses"];
    (loop_wake_ups(stage) - before, misses)
}

/// With a listener of its own, a loop is woken only for its own clients: no loop ever finds
/// the backlog empty after being told it was not. With one listener watched by every loop
/// (`--shared-listener`, the tempting wrong version) every client is served too, by whichever
/// loop takes it first; what it costs (the wake-ups of the thundering herd) depends on the
/// kernel and the moment, so chapter 9 measures it rather than this test.
#[test]
fn a_listener_per_loop_wakes_only_its_own_loop() {
    let own = start("2", &[]);
    let (_, own_misses) = wake_ups_for_200_clients(&own);
    assert_eq!(own_misses, 0, "a loop woken for another's client");
    let shared = start("2", &["--shared-listener"]);
    let _ = wake_ups_for_200_clients(&shared);
    let stats = common::settled_stats(&shared);
    assert_eq!(
        stats["served"],
        stats["accepted"] - 1,
        "all served but this /stats"
    );
}

/// A second stage 09 on a port another one serves is refused at start, as every stage is:
/// `SO_REUSEPORT` would otherwise let it join the port's group and take half the clients.
#[test]
fn a_second_server_on_the_same_port_is_refused() {
    let first = start("2", &[]);
    let second = std::process::Command::new(BIN)
        .args(["--addr", &first.addr.to_string()])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
    assert_eq!(first.get("/stats").status, 200);
}

/// Pipelined requests are answered in order, on whichever loop holds the connection, and the
/// connection is kept, as in stage 07.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let stage = start("2", &[]);
    let mut stream = stage.connect();
    stream
        .write_all(&[GET, b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n", GET].concat())
        .unwrap();
    let mut responses = Responses::new(&mut stream);
    let statuses: Vec<u16> = (0..3)
        .map(|_| responses.next(false).unwrap().unwrap().status)
        .collect();
    assert_eq!(statuses, [200, 404, 200]);
    assert_eq!(stage.stats()["keep_alive_reuses"], 2);
}

/// Two thousand connections that send nothing are held by the loops, spread over both, with
/// not one thread more, and a normal request is answered meanwhile.
#[test]
fn two_thousand_silent_connections_add_no_thread() {
    let stage = start("2", &["--header-timeout-ms", "60000", "--backlog", "4096"]);
    let stats = common::two_thousand_silent_connections(&stage);
    assert!(stats["loop_0_connections_open"] > 0 && stats["loop_1_connections_open"] > 0);
}

/// Ctrl-C with idle kept connections on both loops and a request in progress: every loop's
/// idle connections are closed at once, the request in progress finishes with
/// `Connection: close`, and the process exits 0.
#[test]
fn ctrl_c_wakes_every_loop() {
    let stage = start("2", &["--cpu-ms", "600", "--drain-ms", "20000"]);
    let regulars = common::idle_regulars(&stage, 40);
    let stats = stage.stats();
    assert!(stats["loop_0_connections_open"] > 0 && stats["loop_1_connections_open"] > 0);
    let mut busy = stage.connect();
    busy.write_all(GET).unwrap();
    wait_for_stat(&stage, "kitchen_cooking", 1);
    common::ctrl_c_closes_the_idle_and_finishes_the_busy(stage, regulars, busy);
}

/// `--loops 1` is stage 08: one loop thread, and `/stats` is answered while the kitchen cooks.
#[test]
fn one_loop_is_stage_08() {
    let stage = start("1", &["--cpu-ms", "300"]);
    let mut cooking = stage.connect();
    cooking.write_all(GET_CLOSE).unwrap();
    wait_for_stat(&stage, "kitchen_cooking", 1);
    let asked = Instant::now();
    let stats = stage.stats();
    assert!(asked.elapsed() < Duration::from_millis(250));
    assert_eq!(stats["loop_0_accepted"], stats["accepted"]);
    assert_eq!(Reply::parse(&read_to_close(&mut cooking)).status, 200);
    let expected = ["09_loop_per_cor", "cook-0", "ctrl-c", "loop-0"];
    assert_eq!(stage.thread_names(&expected), expected);
}
