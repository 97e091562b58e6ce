//! Running out: descriptors, threads, and a crowd of 1500 clients at once. None of them takes
//! a stage down, and each stage serves normally again once the pressure is gone, with its
//! descriptor and thread counts back where they were.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{read_until_end, Ending, Launch, Reply, Stage, PATIENCE};

const STAGE02: &str = env!("CARGO_BIN_EXE_02_thread_per_conn");
const GET: &[u8] = common::GET_CLOSE;

/// Asserts that descriptors and threads return to `baseline`.
fn assert_back_to(stage: &Stage, baseline: common::Usage, what: &str) {
    let now = stage.usage_back_to(baseline);
    assert!(
        now.fds <= baseline.fds && now.threads <= baseline.threads,
        "{what}: {now:?} after, {baseline:?} before"
    );
}

/// Out of descriptors: stage 02 under `ulimit -n 64` with 100 idle clients. `accept()` fails
/// with EMFILE once 64 descriptors are open; the loop logs it and backs off (5 ms doubling to
/// 1 s), so it stays up and uses almost no CPU while saturated, instead of retrying in a hot
/// loop. Once the clients leave it serves again, and its counts return to the baseline.
#[test]
fn stage02_out_of_descriptors_backs_off_and_recovers() {
    let stage = Stage::start_with(
        STAGE02,
        &["--work-ms", "0", "--quiet"],
        Launch {
            ulimit: Some("-n 64"),
            ..Launch::default()
        },
    );
    // Counted before any request: a connection thread of stage 02 may outlive its answer.
    let baseline = stage.usage();
    assert_eq!(stage.get("/").status, 200);

    let idle: Vec<TcpStream> = (0..100).map(|_| stage.connect()).collect();
    assert!(
        stage.wait_for_log("accept failed: Too many open files"),
        "never ran out of descriptors: {:?}",
        stage.usage()
    );
    // Every descriptor number under the limit is in use (descriptors the stage inherited
    // above it, from whoever started the test, may come on top).
    assert!(stage.fds() >= 64, "saturated: {:?}", stage.usage());

    // While saturated: a second of wall time costs well under 0.2 s of CPU, and the loop
    // retries a handful of times, not thousands.
    let errors_before = stage.stderr().matches("accept failed").count();
    let cpu_before = stage.cpu_time();
    let started = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let cpu = stage.cpu_time() - cpu_before;
    let wall = started.elapsed();
    let retries = stage.stderr().matches("accept failed").count() - errors_before;
    assert!(
        cpu.as_secs_f64() < 0.2 * wall.as_secs_f64(),
        "{cpu:?} of CPU in {wall:?} while saturated"
    );
    assert!(retries <= 10, "{retries} accept retries in {wall:?}");
    eprintln!("saturated: {cpu:?} of CPU and {retries} accept retries in {wall:?}");
    assert!(stage.alive());

    drop(idle);
    assert_eq!(
        stage.get("/").status,
        200,
        "serves again once clients leave"
    );
    assert!(stage.alive());
    assert_back_to(&stage, baseline, "after 100 idle clients left");
}

/// The stack every thread gets under [`thread_exhaustion_launch`]'s environment: 512 MiB.
const BIG_STACK_KIB: u64 = 512 * 1024;

/// Out of threads: `thread::Builder::spawn` fails when a new thread's stack cannot be mapped.
/// As root, RLIMIT_NPROC is not enforced, so the address space is capped instead: every
/// thread gets a 512 MiB stack (RUST_MIN_STACK, read by std for threads without an explicit
/// size) and `ulimit -v` leaves room for two connection threads beyond what the stage has at
/// start, not three. MALLOC_ARENA_MAX=1 keeps glibc from reserving 64 MiB arenas per thread,
/// so stacks are the only thing the cap counts in large amounts.
fn thread_exhaustion_env() -> [(&'static str, &'static str); 2] {
    [("RUST_MIN_STACK", "536870912"), ("MALLOC_ARENA_MAX", "1")]
}

/// Thread exhaustion in stage 02: with two idle clients holding the two threads there is room
/// for, a third connection cannot get a thread. The failed spawn is logged, that connection
/// is dropped (closed without an answer), and the server stays up; when the idle clients
/// leave, their threads end and the next client is served.
#[test]
fn stage02_out_of_threads_drops_the_connection_and_recovers() {
    let env = thread_exhaustion_env();
    let args = ["--work-ms", "0", "--quiet"];
    // The same stage, unlimited, tells how much address space it has at start (its Ctrl-C
    // thread's big stack included).
    let at_start_kib = {
        let probe = Stage::start_with(
            STAGE02,
            &args,
            Launch {
                env: &env,
                ..Launch::default()
            },
        );
        probe.vm_size_kib()
    };
    let limit = format!("-v {}", at_start_kib + BIG_STACK_KIB * 5 / 2);
    let stage = Stage::start_with(
        STAGE02,
        &args,
        Launch {
            ulimit: Some(&limit),
            env: &env,
        },
    );
    let baseline = stage.usage();
    assert_eq!(stage.get("/").status, 200, "one connection thread fits");
    // That connection's thread must be gone, its stack free to be reused, before the idle
    // clients come: otherwise the second of them finds no room.
    assert_back_to(&stage, baseline, "after the first request");

    let idle = [stage.connect(), stage.connect()];
    let deadline = Instant::now() + PATIENCE;
    while stage.threads() < baseline.threads + 2 {
        assert!(
            Instant::now() < deadline,
            "idle clients never got threads: {:?}, {} KiB of {limit}; log: {}",
            stage.usage(),
            stage.vm_size_kib(),
            stage.stderr()
        );
        thread::sleep(Duration::from_millis(5));
    }

    let mut third = stage.connect();
    third.write_all(GET).unwrap();
    let (raw, ending) = read_until_end(&mut third);
    assert!(
        raw.is_empty(),
        "dropped without an answer: {:?}",
        String::from_utf8_lossy(&raw)
    );
    assert!(
        matches!(ending, Ending::Eof | Ending::Reset),
        "closed, not left hanging: {ending:?}"
    );
    assert!(
        stage.wait_for_log("cannot start a thread: Resource temporarily unavailable"),
        "{}",
        stage.stderr()
    );
    assert!(stage.alive());

    // Thirty more at once, while no thread can start: the loop pauses after each failure (5 ms,
    // doubling), so in half a second it fails a handful of times, not thirty, and the rest wait
    // in the backlog instead of being accepted and reset at full speed.
    let failures = || stage.stderr().matches("cannot start a thread").count();
    let before = failures();
    let crowd: Vec<TcpStream> = (0..30).map(|_| stage.connect()).collect();
    thread::sleep(Duration::from_millis(500));
    let in_half_a_second = failures() - before;
    assert!(
        (1..=10).contains(&in_half_a_second),
        "{in_half_a_second} failed spawns in 0.5 s for 30 clients"
    );
    drop(crowd);

    drop(idle);
    let deadline = Instant::now() + PATIENCE;
    while stage.threads() > baseline.threads {
        assert!(
            Instant::now() < deadline,
            "idle clients' threads never ended"
        );
        thread::sleep(Duration::from_millis(5));
    }
    // The crowd's connections, closed on our side, may still be in the backlog: the server
    // accepts each, and each takes a thread for a moment (to read end-of-file) or finds none.
    // A request that comes meanwhile may be dropped the same way, so ask until one is served
    // (the backlog is first come, first served: when ours is accepted, the crowd's all were),
    // then let the last of their threads end before /stats needs one.
    let deadline = Instant::now() + PATIENCE;
    let answer = loop {
        let mut stream = stage.connect();
        let _ = stream.write_all(GET);
        let (raw, _) = read_until_end(&mut stream);
        if !raw.is_empty() {
            break Reply::parse(&raw);
        }
        assert!(
            Instant::now() < deadline,
            "never served again: {}",
            stage.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(answer.status, 200, "serves again once threads are free");
    assert_back_to(&stage, baseline, "after the crowd");
    let stats = common::settled_stats(&stage);
    assert_eq!(
        stats["errors"],
        failures() as u64,
        "each failed spawn is counted once"
    );
    assert_eq!(
        stats["connections_open"], 1,
        "only the /stats request: {stats:?}"
    );
    assert!(stage.alive());
    assert_back_to(&stage, baseline, "after the idle clients left");
}

/// How one client of a burst fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Fate {
    /// A complete response with this status, then a clean close.
    Answered(u16),
    /// Refused cleanly: the connection failed, or closed with not a byte of an answer.
    Refused,
}

/// `clients` threads connect at the same moment (a barrier), wait until all of them are
/// connected (a second barrier), then each sends `GET /` and reads the whole answer. So all
/// the connections are open at once, not merely started together. Anything other than a
/// complete answer or a clean refusal fails the test.
fn burst(stage: &Stage, clients: usize) -> Vec<Fate> {
    let addr = stage.addr;
    let start = Arc::new(Barrier::new(clients));
    let all_connected = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let start = Arc::clone(&start);
            let all_connected = Arc::clone(&all_connected);
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    start.wait();
                    let connected = TcpStream::connect_timeout(&addr, PATIENCE);
                    all_connected.wait();
                    let Ok(mut stream) = connected else {
                        return Fate::Refused;
                    };
                    stream.set_read_timeout(Some(PATIENCE)).unwrap();
                    if stream.write_all(GET).is_err() {
                        return Fate::Refused;
                    }
                    let (raw, ending) = read_until_end(&mut stream);
                    if raw.is_empty() && matches!(ending, Ending::Eof | Ending::Reset) {
                        return Fate::Refused;
                    }
                    assert_eq!(ending, Ending::Eof, "{:?}", String::from_utf8_lossy(&raw));
                    let reply = Reply::parse(&raw);
                    assert_eq!(
                        reply.body.len().to_string(),
                        reply.header("Content-Length").unwrap()
                    );
                    Fate::Answered(reply.status)
                })
                .expect("a client thread")
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// 1500 clients connect to `bin` at once (no simulated work): the stage does not crash, every
/// client is answered 200 or refused cleanly, a normal request is served afterwards and the
/// descriptor and thread counts return to their baseline.
///
/// The listen backlog is raised to 2048 so that all 1500 handshakes complete while the stage
/// waits for the first requests (which come only once everyone is connected); with the
/// default 1024 the rest would sit in SYN retries until their connect timed out.
fn survives_a_burst(bin: &str) {
    const CLIENTS: usize = 1500;
    let args = ["--work-ms", "0", "--quiet", "--backlog", "2048"];
    let stage = Stage::start(bin, &args);
    // Counted before any request: a connection thread of stage 02 may outlive its answer.
    let baseline = stage.usage();
    assert_eq!(stage.get("/").status, 200);

    let fates = burst(&stage, CLIENTS);
    let answered = fates.iter().filter(|&&f| f == Fate::Answered(200)).count();
    let refused = fates.iter().filter(|&&f| f == Fate::Refused).count();
    assert_eq!(answered + refused, CLIENTS, "{fates:?}");
    assert!(answered > 0, "nobody was served");
    assert!(stage.alive(), "the stage died");

    assert_eq!(stage.get("/").status, 200, "serves after the burst");
    let stats = common::settled_stats(&stage);
    // The two normal requests, every answered client, and the /stats polls of settled_stats.
    assert!(stats["served"] >= answered as u64 + 2, "{stats:?}");
    assert_eq!(
        stats["connections_open"], 1,
        "only the /stats request: {stats:?}"
    );
    eprintln!("{bin}: {answered} answered, {refused} refused; {stats:?}");
    assert_back_to(&stage, baseline, "after the burst");
}

/// Stage 01 takes the 1500 one at a time; the rest wait in the backlog.
#[test]
fn stage01_survives_1500_clients_at_once() {
    survives_a_burst(env!("CARGO_BIN_EXE_01_single"));
}

/// Stage 02 starts a thread for each of the 1500: 1500 threads at once.
#[test]
fn stage02_survives_1500_clients_at_once() {
    survives_a_burst(STAGE02);
}

/// Stage 03 serves 4 at once; the rest wait in the backlog.
#[test]
fn stage03_survives_1500_clients_at_once() {
    survives_a_burst(env!("CARGO_BIN_EXE_03_semaphore"));
}

/// Stage 04's 4 workers and queue of 16 take the 1500 in turn.
#[test]
fn stage04_survives_1500_clients_at_once() {
    survives_a_burst(env!("CARGO_BIN_EXE_04_thread_pool"));
}

/// Stage 05 likewise; a header deadline starts only when a worker picks a client up, so
/// waiting in the backlog costs nobody a 408.
#[test]
fn stage05_survives_1500_clients_at_once() {
    survives_a_burst(env!("CARGO_BIN_EXE_05_timeouts"));
}

/// Stage 06 accepts all 1500 on its one thread.
#[test]
fn stage06_survives_1500_clients_at_once() {
    survives_a_burst(env!("CARGO_BIN_EXE_06_event_loop"));
}

/// Stage 07 likewise, each client asking to close after its answer.
#[test]
fn stage07_survives_1500_clients_at_once() {
    survives_a_burst(env!("CARGO_BIN_EXE_07_keep_alive"));
}

/// Stage 08 likewise.
#[test]
fn stage08_survives_1500_clients_at_once() {
    survives_a_burst(env!("CARGO_BIN_EXE_08_cpu_pool"));
}

/// Stage 10 likewise, on every runtime.
#[test]
fn stage10_survives_1500_clients_at_once() {
    survives_a_burst(env!("CARGO_BIN_EXE_10_async"));
}

/// Stage 11 likewise, on tokio.
#[test]
fn stage11_survives_1500_clients_at_once() {
    survives_a_burst(env!("CARGO_BIN_EXE_11_tokio"));
}

/// Stage 09 likewise, on every loop.
#[test]
fn stage09_survives_1500_clients_at_once() {
    survives_a_burst(env!("CARGO_BIN_EXE_09_loop_per_core"));
}

/// Out of descriptors on the event loop: stage 06 under `ulimit -n 64` (soft and hard) with
/// 100 idle clients. It cannot raise its limit, says so at start, and holds only what the
/// limit allows (64 less its reserve); the rest wait in the backlog. While saturated the loop
/// does not spin (almost no CPU), and once the clients leave it serves again.
#[test]
fn stage06_out_of_descriptors_holds_what_it_can_without_spinning() {
    let stage = Stage::start_with(
        env!("CARGO_BIN_EXE_06_event_loop"),
        &["--work-ms", "0", "--quiet", "--header-timeout-ms", "60000"],
        Launch {
            ulimit: Some("-n 64"),
            ..Launch::default()
        },
    );
    assert!(
        stage.wait_for_log("holding at most 32 connections"),
        "{}",
        stage.stderr()
    );
    let baseline = stage.usage();
    let idle: Vec<TcpStream> = (0..100).map(|_| stage.connect()).collect();
    let deadline = Instant::now() + PATIENCE;
    while stage.fds() < baseline.fds + 32 {
        assert!(
            Instant::now() < deadline,
            "never held 32: {:?}",
            stage.usage()
        );
        thread::sleep(Duration::from_millis(10));
    }
    let cpu_before = stage.cpu_time();
    let started = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let cpu = stage.cpu_time() - cpu_before;
    assert!(
        cpu.as_secs_f64() < 0.2 * started.elapsed().as_secs_f64(),
        "{cpu:?} of CPU in a second while saturated"
    );
    assert_eq!(
        stage.fds(),
        baseline.fds + 32,
        "held exactly what the limit allows"
    );
    assert_eq!(
        stage.threads(),
        baseline.threads,
        "one thread for all of them"
    );
    drop(idle);
    assert_eq!(stage.get("/").status, 200, "serves again once they leave");
    assert_back_to(&stage, baseline, "after the idle clients left");
}
