//! Every stage shuts down gracefully on Ctrl-C (SIGINT), SIGTERM and SIGHUP: the door closes at
//! once, the requests in progress finish, the summary is printed once, and a second signal
//! ends the process as an uncaught Ctrl-C would (killed by SIGINT). A closed stdout changes
//! none of it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::thread;
use std::time::{Duration, Instant};

use common::{fds_back_to, read_to_close, settled_stats, Reply, Stage, PATIENCE};

const STAGES: &[(&str, &str)] = common::ALL_STAGES;
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

/// Ctrl-C while a request is in progress: that request still gets its 200, a client that
/// connects after the signal is refused at once (the listener is closed, not merely no longer
/// accepted from), and the process prints its summary and exits 0.
#[test]
fn ctrl_c_finishes_the_request_in_progress_then_exits_0() {
    thread::scope(|scope| {
        for (name, bin) in STAGES {
            scope.spawn(move || {
                let stage = Stage::start(bin, &["--work-ms", "600", "--quiet"]);
                let mut in_progress = stage.connect();
                in_progress.write_all(GET).unwrap();
                thread::sleep(Duration::from_millis(200));
                stage.interrupt();
                thread::sleep(Duration::from_millis(100));
                let late = TcpStream::connect(stage.addr);
                assert_eq!(
                    late.map(|_| ()).map_err(|e| e.kind()),
                    Err(std::io::ErrorKind::ConnectionRefused),
                    "{name}: a client after Ctrl-C must be refused"
                );
                let reply = Reply::parse(&read_to_close(&mut in_progress));
                assert_eq!(reply.status, 200, "{name}");
                let (status, stdout) = stage.wait_exit(PATIENCE);
                assert!(status.success(), "{name} exited with {status}");
                assert!(
                    stdout.starts_with(&format!("{name} stopped after "))
                        && stdout.contains(": served 1, peak in flight 1"),
                    "{name}: {stdout:?}"
                );
                assert_eq!(stdout.lines().count(), 1, "{name}: one summary: {stdout:?}");
            });
        }
    });
}

/// The flags that make each blocking stage serve one client at a time, so that a second one
/// waits in the kernel's backlog.
const ONE_AT_A_TIME: [(&str, &[&str]); 10] = [
    (env!("CARGO_BIN_EXE_01_single"), &[]),
    (env!("CARGO_BIN_EXE_03_semaphore"), &["--max-conns", "1"]),
    (
        env!("CARGO_BIN_EXE_04_thread_pool"),
        &["--workers", "1", "--queue", "0"],
    ),
    (
        env!("CARGO_BIN_EXE_05_timeouts"),
        &["--workers", "1", "--queue", "0"],
    ),
    (env!("CARGO_BIN_EXE_06_event_loop"), &["--max-conns", "1"]),
    (env!("CARGO_BIN_EXE_07_keep_alive"), &["--max-conns", "1"]),
    (env!("CARGO_BIN_EXE_08_cpu_pool"), &["--max-conns", "1"]),
    (
        env!("CARGO_BIN_EXE_09_loop_per_core"),
        &["--max-conns", "1", "--loops", "1"],
    ),
    (
        env!("CARGO_BIN_EXE_10_async"),
        &["--max-conns", "1", "--loops", "1"],
    ),
    (
        env!("CARGO_BIN_EXE_11_tokio"),
        &["--max-conns", "1", "--workers", "1"],
    ),
];

/// A client still waiting in the backlog when Ctrl-C comes is reset at once: nobody had
/// started on it, and a reset tells it to try elsewhere instead of waiting out the drain. The
/// client in progress still gets its answer, after the reset.
#[test]
fn clients_waiting_in_the_backlog_are_reset_when_the_door_closes() {
    thread::scope(|scope| {
        for (bin, flags) in ONE_AT_A_TIME {
            scope.spawn(move || {
                let args = [&["--work-ms", "800", "--quiet"], flags].concat();
                let stage = Stage::start(bin, &args);
                let mut served = stage.connect();
                served.write_all(GET).unwrap();
                thread::sleep(Duration::from_millis(150));
                let mut waiting = stage.connect();
                waiting.write_all(GET).unwrap();
                thread::sleep(Duration::from_millis(150));
                stage.interrupt();
                let mut byte = [0u8; 1];
                let waited = waiting.read(&mut byte).map_err(|e| e.kind());
                let reset_at = Instant::now();
                assert_eq!(
                    waited,
                    Err(std::io::ErrorKind::ConnectionReset),
                    "{bin}: the waiting client must be reset"
                );
                let reply = Reply::parse(&read_to_close(&mut served));
                assert_eq!(reply.status, 200, "{bin}");
                assert!(
                    reset_at.elapsed() > Duration::from_millis(100),
                    "{bin}: the reset came only when the request in progress was done"
                );
                let (status, _) = stage.wait_exit(PATIENCE);
                assert!(status.success(), "{bin}: {status}");
            });
        }
    });
}

/// `stage | head -1`, then SIGTERM: the summary cannot be written, and that is no reason to
/// panic. The process exits 0 as usual (it used to panic and exit 101).
#[test]
fn a_closed_stdout_is_no_reason_to_panic() {
    for (name, bin) in STAGES {
        let mut stage = Stage::start(bin, &["--work-ms", "0", "--quiet"]);
        assert_eq!(stage.get("/").status, 200);
        stage.close_stdout();
        stage.signal("TERM");
        let log = {
            let deadline = Instant::now() + PATIENCE;
            while stage.alive() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            stage.stderr()
        };
        let (status, _) = stage.wait_exit(PATIENCE);
        assert_eq!(status.code(), Some(0), "{name}: {status}; log: {log}");
        assert!(!log.contains("panicked"), "{name}: {log}");
    }
}

/// Stage 03 with its one permit held by a client that never sends: after Ctrl-C the accept
/// loop is stuck waiting for a permit, so the watchdog ends the process once the drain limit
/// has passed. It prints the summary, once, saying it cut the idle connection, and exits 1,
/// with stdout open or closed (a closed one used to panic the watchdog, leaving the process up
/// until a second signal).
#[test]
fn the_watchdog_ends_a_stuck_drain_and_prints_the_summary_once() {
    for close_stdout in [false, true] {
        let mut stage = Stage::start(
            env!("CARGO_BIN_EXE_03_semaphore"),
            &["--max-conns", "1", "--drain-ms", "300", "--quiet"],
        );
        let _idle = stage.connect();
        thread::sleep(Duration::from_millis(100));
        if close_stdout {
            stage.close_stdout();
        }
        let started = Instant::now();
        stage.interrupt();
        let (status, stdout) = stage.wait_exit(PATIENCE);
        let took = started.elapsed();
        assert_eq!(status.code(), Some(1), "{status}");
        assert!(took >= Duration::from_millis(300), "ended in {took:?}");
        if !close_stdout {
            assert_eq!(stdout.matches(" stopped after ").count(), 1, "{stdout:?}");
            assert!(
                stdout.contains("cut 1 connection(s) still open after the 300 ms drain limit"),
                "{stdout:?}"
            );
        }
    }
}

/// A second signal, whichever of the three, ends the process at once, killed by SIGINT as if
/// Ctrl-C had never been caught: a shell then sees 130, and a script's loop stops. Mixed pairs
/// count too (SIGTERM then Ctrl-C). The log says "signal": ctrlc does not tell which one came.
#[test]
fn a_second_signal_ends_the_process_as_ctrl_c_would() {
    let pairs = [
        ("INT", "INT"),
        ("TERM", "TERM"),
        ("HUP", "HUP"),
        ("TERM", "INT"),
    ];
    for (bin, (first, second)) in [
        env!("CARGO_BIN_EXE_01_single"),
        env!("CARGO_BIN_EXE_06_event_loop"),
    ]
    .into_iter()
    .flat_map(|bin| pairs.map(|pair| (bin, pair)))
    {
        let stage = Stage::start(bin, &["--work-ms", "5000"]);
        let mut in_progress = stage.connect();
        in_progress.write_all(GET).unwrap();
        thread::sleep(Duration::from_millis(100));
        stage.signal(first);
        assert!(
            stage.wait_for_log("signal: no longer accepting"),
            "{}",
            stage.stderr()
        );
        stage.signal(second);
        let started = Instant::now();
        assert!(
            stage.wait_for_log("signal again: exiting now, cutting 1 open connection(s)"),
            "{}",
            stage.stderr()
        );
        let log = stage.stderr();
        let (status, _) = stage.wait_exit(PATIENCE);
        let took = started.elapsed();
        let case = format!("{bin}, SIG{first} then SIG{second}");
        assert_eq!(status.signal(), Some(2), "{case}: {status}");
        assert!(
            took < Duration::from_secs(3),
            "{case}: not at once: {took:?}"
        );
        assert!(!log.contains("panicked"), "{case}: {log}");
    }
}

/// The signals are handled on a thread that ctrlc starts and names `ctrl-c`: stage 01 runs on
/// exactly two threads, `main` (named after the program) and `ctrl-c`, as chapter 1 says.
#[test]
fn the_signal_thread_is_named_ctrl_c() {
    let stage = Stage::start(env!("CARGO_BIN_EXE_01_single"), &["--work-ms", "0"]);
    let expected = ["01_single", "ctrl-c"];
    assert_eq!(stage.thread_names(&expected), expected);
}

/// Thirty connections that open and close without a byte do not disturb a stage: no error is
/// counted, a normal request is served after them, and no descriptor is left behind.
#[test]
fn empty_connections_are_harmless() {
    thread::scope(|scope| {
        for (name, bin) in STAGES {
            scope.spawn(move || {
                let stage = Stage::start(bin, &["--work-ms", "0"]);
                let fds = stage.fds();
                for _ in 0..30 {
                    drop(stage.connect());
                }
                assert_eq!(stage.get("/").status, 200, "{name}");
                let stats = settled_stats(&stage);
                assert_eq!(stats["errors"], 0, "{name}: {}", stage.stderr());
                assert!(
                    stats["accepted"] >= 32,
                    "{name}: 30 empty, 1 GET, 1+ /stats: {stats:?}"
                );
                assert_eq!(
                    stats["connections_open"], 1,
                    "{name}: only this /stats is open"
                );
                assert_eq!(fds_back_to(&stage, fds), fds, "{name} leaked descriptors");
            });
        }
    });
}
