//! Stage 06 serves every connection from one thread: an event loop over non-blocking sockets,
//! with the work and every deadline as timers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{read_to_close, send_in_pieces, Reply, Responses, Stage, GET_CLOSE, PATIENCE};

const BIN: &str = env!("CARGO_BIN_EXE_06_event_loop");

/// The stage with no simulated work and no log lines, and `extra` flags.
fn start(extra: &[&str]) -> Stage {
    let args = [&["--work-ms", "0", "--quiet"], extra].concat();
    Stage::start(BIN, &args)
}

/// Two thousand connections that send nothing are all accepted and held, a normal request is
/// answered while they are, and the process has exactly the threads it had before them: main
/// and the signal thread.
#[test]
fn two_thousand_silent_connections_are_held_by_one_thread() {
    let stage = start(&["--header-timeout-ms", "60000", "--backlog", "4096"]);
    let before = stage.usage();
    assert_eq!(before.threads, 2, "main and ctrl-c");
    let silent: Vec<TcpStream> = (0..2000).map(|_| stage.connect()).collect();
    let deadline = Instant::now() + PATIENCE;
    while stage.fds() < before.fds + 2000 {
        assert!(
            Instant::now() < deadline,
            "not all held: {:?}",
            stage.usage()
        );
        thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    assert_eq!(stage.get("/").status, 200);
    let took = started.elapsed();
    let stats = stage.stats();
    assert!(stats["connections_open"] >= 2001, "{stats:?}");
    assert_eq!(stage.threads(), before.threads, "no thread per connection");
    eprintln!("a request among 2000 silent connections: {took:?}");
    drop(silent);
}

/// Two hundred clients, 500 ms of work each: all answered 200, together in far less than
/// 200 x 500 ms, with nearly all of them in flight at once on one serving thread.
#[test]
fn two_hundred_clients_with_500_ms_of_work_overlap_on_one_thread() {
    let stage = Stage::start(BIN, &["--work-ms", "500", "--quiet"]);
    let threads = stage.threads();
    let (statuses, took) = common::concurrent_gets(&stage, 200);
    assert_eq!(statuses, [200; 200]);
    assert!(took >= Duration::from_millis(490), "{took:?}");
    assert!(
        took < Duration::from_secs(10),
        "two hundred requests took {took:?}"
    );
    let stats = stage.stats();
    assert!(stats["peak_in_flight"] >= 190, "{stats:?}");
    assert_eq!(stage.threads(), threads);
}

/// A hundred clients trickling a request one byte every 200 ms do not delay a normal client,
/// and each is cut with 408 at its total deadline (not before 0.8 of it), counted in
/// `timeouts`.
#[test]
fn tricklers_are_cut_at_their_deadline_and_delay_nobody() {
    let stage = start(&["--header-timeout-ms", "2000"]);
    let request = b"GET / HTTP/1.1\r\nHost: a-slow-client.example\r\n\r\n";
    let mut tricklers: Vec<TcpStream> = (0..100)
        .map(|_| {
            let stream = stage.connect();
            stream.set_nodelay(true).unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    let mut normal_took = None;
    for (i, &byte) in request.iter().enumerate().take(12) {
        for stream in &mut tricklers {
            let _ = stream.write_all(&[byte]);
        }
        if i == 3 {
            assert_eq!(stage.stats()["timeouts"], 0, "cut early");
            let asked = Instant::now();
            assert_eq!(stage.get("/").status, 200);
            normal_took = Some(asked.elapsed());
        }
        thread::sleep(Duration::from_millis(200));
    }
    // 12 bytes at 200 ms: about 2.4 s, past the 2 s deadline.
    let mut answered = 0;
    for stream in &mut tricklers {
        let reply = Reply::parse(&read_to_close(stream));
        assert_eq!(reply.status, 408);
        answered += 1;
    }
    let took = started.elapsed();
    assert_eq!(answered, 100);
    assert!(took >= Duration::from_millis(1600), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert_eq!(stage.stats()["timeouts"], 100);
    let normal_took = normal_took.unwrap();
    assert!(
        normal_took < Duration::from_secs(1),
        "the normal client waited {normal_took:?}"
    );
}

/// Work that computes (`--cpu-ms`) runs on the loop's one thread, so five clients are served
/// one after another; work that waits (`--work-ms`) is a timer, and five overlap.
#[test]
fn computing_stalls_the_loop_but_waiting_does_not() {
    let computing = start(&["--cpu-ms", "100"]);
    let (statuses, took) = common::concurrent_gets(&computing, 5);
    assert_eq!(statuses, [200; 5]);
    assert!(
        took >= Duration::from_millis(480),
        "five 100 ms computations in {took:?}"
    );

    let waiting = Stage::start(BIN, &["--work-ms", "100", "--quiet"]);
    let (statuses, _) = common::concurrent_gets(&waiting, 5);
    assert_eq!(statuses, [200; 5]);
    assert_eq!(
        waiting.stats()["peak_in_flight"],
        5,
        "all five waited at once"
    );
}

/// A request in twenty pieces, 20 ms apart: each piece is one readable event, read to
/// `WouldBlock`; the head is complete only with the last one.
#[test]
fn a_request_in_many_pieces_is_assembled_across_events() {
    let stage = start(&[]);
    let mut stream = stage.connect();
    send_in_pieces(&mut stream, GET_CLOSE, 20, Duration::from_millis(20));
    let reply = Reply::parse(&read_to_close(&mut stream));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "Hello World\n");
}

/// A response of 4 MB does not fit in the socket's send buffer: the loop writes what fits,
/// waits for a writable event, and goes on, serving other clients meanwhile. A client that
/// reads slowly gets every byte, in order.
#[test]
fn a_response_larger_than_the_send_buffer_goes_out_through_writable_events() {
    let size = 4_000_000;
    let stage = start(&["--body-bytes", &size.to_string()]);
    let mut slow = stage.connect();
    slow.write_all(GET_CLOSE).unwrap();
    thread::sleep(Duration::from_millis(100));
    // While the big response waits for the slow reader, another client is served at once.
    let started = Instant::now();
    assert_eq!(stage.get("/stats").status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut got = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match slow.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("after {} bytes: {e}", got.len()),
        }
        if got.len() < 1_000_000 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    let reply = Reply::parse(&got);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), size);
    assert!(reply.body.starts_with("Hello World\nHello World\n"));
    assert_eq!(reply.body.matches("Hello World\n").count(), size / 12);
}

/// A client that asks for a large response and never reads it is cut at the write deadline
/// (`--write-timeout-ms`, total, not per write), counted in `timeouts`.
#[test]
fn a_client_that_stops_reading_is_cut_at_the_write_deadline() {
    let stage = start(&["--body-bytes", "8000000", "--write-timeout-ms", "2000"]);
    let mut stuck = stage.connect();
    stuck.write_all(GET_CLOSE).unwrap();
    let started = Instant::now();
    thread::sleep(Duration::from_millis(1400));
    assert_eq!(
        stage.stats()["timeouts"],
        0,
        "cut before 0.7 of the deadline"
    );
    common::wait_for_stat(&stage, "timeouts", 1);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "cut at {took:?}");
    assert_eq!(
        stage.stats()["connections_open"],
        1,
        "only the /stats request"
    );
    drop(stuck);
}

/// `--max-conns 3` with three silent connections held: a fourth client waits in the backlog,
/// unanswered, and is served as soon as one of the three leaves.
#[test]
fn at_max_conns_the_rest_wait_in_the_backlog() {
    let stage = start(&["--max-conns", "3", "--header-timeout-ms", "60000"]);
    let mut silent: Vec<TcpStream> = (0..3).map(|_| stage.connect()).collect();
    thread::sleep(Duration::from_millis(100));
    let mut waiting = stage.connect();
    waiting.write_all(GET_CLOSE).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        waiting.read(&mut byte).is_err(),
        "answered while all three places were taken"
    );
    silent.pop();
    waiting.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut responses = Responses::new(&mut waiting);
    let reply = responses.next(false).unwrap().unwrap();
    assert_eq!(reply.status, 200);
    drop(silent);
    let stats = common::settled_stats(&stage);
    assert!(stats["peak_connections_open"] <= 3, "{stats:?}");
}

/// The server's resident memory in KiB (VmRSS in /proc/PID/status).
fn rss_kib(stage: &Stage) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", stage.pid())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Twenty clients ask for a 20 MB body and read none of it: every response is stuck in
/// `Writing`, and each holds its own head and a pointer to the one shared body, not a copy of
/// it. The process grows by far less than one body per client (a copy each would be 400 MB).
#[test]
fn a_client_that_does_not_read_pins_no_copy_of_the_body() {
    const BODY: usize = 20_000_000;
    let body = BODY.to_string();
    let stage = start(&["--body-bytes", &body, "--write-timeout-ms", "60000"]);
    assert_eq!(
        stage.get("/").body.len(),
        BODY,
        "the body is shared once built"
    );
    let before = rss_kib(&stage);
    let clients: Vec<TcpStream> = (0..20)
        .map(|_| {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket.connect(&stage.addr.into()).unwrap();
            let mut stream: TcpStream = socket.into();
            stream.write_all(GET_CLOSE).unwrap();
            stream
        })
        .collect();
    common::wait_for_stat(&stage, "in_flight", 20);
    let grown_mib = rss_kib(&stage).saturating_sub(before) / 1024;
    assert!(
        grown_mib < 60,
        "20 stalled writers of a 20 MB body grew the process by {grown_mib} MiB"
    );
    drop(clients);
}

/// After an accept error (out of descriptors) paused accepting, Ctrl-C's drain waits for the
/// request in progress without spinning: the pause that has ended is no reason to poll with a
/// zero timeout. The process uses well under a core during a second of the drain.
#[test]
fn the_drain_after_an_accept_error_does_not_spin() {
    let stage = Stage::start(BIN, &["--work-ms", "3000", "--drain-ms", "10000"]);
    let mut in_progress = stage.connect();
    in_progress.write_all(GET_CLOSE).unwrap();
    common::wait_for_stat(&stage, "in_flight", 1);
    // No descriptor left for one more connection: a new descriptor takes the lowest free
    // number, which must be below the limit.
    let used: std::collections::BTreeSet<u64> =
        std::fs::read_dir(format!("/proc/{}/fd", stage.pid()))
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect();
    let lowest_free = (0..).find(|fd| !used.contains(fd)).unwrap();
    let limit = libc::rlimit {
        rlim_cur: lowest_free,
        rlim_max: lowest_free,
    };
    // SAFETY: prlimit reads the struct it is given, on our stack, and writes nothing (no old
    // limit asked for); it changes only the stage's limit.
    let changed = unsafe {
        libc::prlimit(
            stage.pid() as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(changed, 0, "prlimit: {}", std::io::Error::last_os_error());
    let _refused = TcpStream::connect(stage.addr).unwrap();
    assert!(stage.wait_for_log("accept failed"), "{}", stage.stderr());
    stage.interrupt();
    thread::sleep(Duration::from_millis(300));
    let cpu_before = stage.cpu_time();
    let wall = Instant::now();
    thread::sleep(Duration::from_millis(1000));
    let used = stage.cpu_time().saturating_sub(cpu_before);
    assert!(stage.alive(), "still draining the request in progress");
    assert!(
        used < Duration::from_millis(300),
        "the drain used {used:?} of CPU in {:?}",
        wall.elapsed()
    );
    let reply = Reply::parse(&read_to_close(&mut in_progress));
    assert_eq!(reply.status, 200);
}

/// A connection that sends not one byte of a request (empty lines do not count) is closed at
/// its header deadline without an answer, as nginx and Go's net/http do: there is no request
/// to answer. It is counted in `timeouts`. One that sent part of a request gets its 408
/// (`tricklers_are_cut_at_their_deadline_and_delay_nobody`).
#[test]
fn a_connection_that_sends_nothing_is_closed_quietly_at_its_deadline() {
    let stage = start(&["--header-timeout-ms", "800"]);
    let mut silent = stage.connect();
    let mut blank = stage.connect();
    blank.write_all(b"\r\n\r\n").unwrap();
    let started = Instant::now();
    for stream in [&mut silent, &mut blank] {
        let (bytes, ending) = common::read_until_end(stream);
        assert_eq!(ending, common::Ending::Eof);
        assert_eq!(String::from_utf8_lossy(&bytes), "", "no 408 for nothing");
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(640), "closed early: {took:?}");
    assert!(took < Duration::from_secs(4), "closed late: {took:?}");
    assert_eq!(common::settled_stats(&stage)["timeouts"], 2);
}
