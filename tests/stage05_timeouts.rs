//! Stage 05 gives every client a deadline, so idle and slow clients cannot hold the workers.

mod common;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use common::{read_to_close, Reply, Stage};

const BIN: &str = env!("CARGO_BIN_EXE_05_timeouts");

/// The same two idle clients that starve stage 04 are cut after the 1 s header deadline,
/// and the third client is served within about 1 s + its work.
#[test]
fn idle_clients_no_longer_starve_the_pool() {
    let stage = Stage::start(
        BIN,
        &[
            "--workers",
            "2",
            "--header-timeout-ms",
            "1000",
            "--work-ms",
            "100",
            "--quiet",
        ],
    );
    let idlers = [stage.connect(), stage.connect()];
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let mut client = stage.connect();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let reply = Reply::parse(&read_to_close(&mut client));
    let took = started.elapsed();
    assert_eq!(reply.status, 200);
    assert!(
        took >= Duration::from_millis(700),
        "served before the idlers' deadline: {took:?}"
    );
    assert!(took < Duration::from_millis(2600), "took {took:?}");
    drop(idlers);
}

/// A client that sends nothing is answered 408 and closed: no earlier than 0.8 x the
/// deadline, no later than the deadline + 1 s.
#[test]
fn a_silent_client_gets_408_at_the_deadline() {
    let stage = Stage::start(BIN, &["--header-timeout-ms", "1000", "--quiet"]);
    let started = Instant::now();
    let mut idle = stage.connect();
    let reply = Reply::parse(&read_to_close(&mut idle));
    let took = started.elapsed();
    assert_eq!(reply.status, 408);
    assert_eq!(reply.header("Connection"), Some("close"));
    assert!(took >= Duration::from_millis(800), "cut early: {took:?}");
    assert!(took <= Duration::from_millis(2000), "cut late: {took:?}");
    assert_eq!(stage.stats()["timeouts"], 1);
}

/// A client trickling one byte every 200 ms never waits 200 ms on any single read, yet it is
/// cut at the total deadline, not later. Both cut clients are counted in `/stats`.
#[test]
fn a_trickling_client_is_cut_at_the_total_deadline() {
    let stage = Stage::start(BIN, &["--header-timeout-ms", "1000", "--quiet"]);
    let mut idle = stage.connect();
    let mut trickler = stage.connect();
    trickler.set_nodelay(true).unwrap();
    trickler
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let request = b"GET / HTTP/1.1\r\nHost: a-very-slow-client.example\r\n\r\n";
    let mut answer = Vec::new();
    for byte in request {
        if trickler.write_all(&[*byte]).is_err() {
            break;
        }
        let mut chunk = [0u8; 1024];
        match trickler.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => continue, // nothing yet: send the next byte
        }
    }
    answer.extend(read_to_close(&mut trickler));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(800), "cut early: {took:?}");
    assert!(
        took <= Duration::from_millis(2000),
        "cut at {took:?}, long after the deadline"
    );
    assert_eq!(Reply::parse(&answer).status, 408);
    read_to_close(&mut idle);
    assert_eq!(stage.stats()["timeouts"], 2);
}

/// The deadline is for receiving the request; the simulated work does not count against it.
#[test]
fn work_longer_than_the_deadline_is_still_served() {
    let stage = Stage::start(
        BIN,
        &["--header-timeout-ms", "200", "--work-ms", "500", "--quiet"],
    );
    assert_eq!(stage.get("/").status, 200);
    assert_eq!(stage.stats()["timeouts"], 0);
}

/// The deadline covers the whole request, head and body: a client whose head arrives at once
/// but whose body trickles is cut at the same deadline, and the log shows its request line
/// (it used to show "-", as if no request had come).
#[test]
fn a_slow_body_is_cut_at_the_same_deadline() {
    let stage = Stage::start(BIN, &["--header-timeout-ms", "1000", "--work-ms", "0"]);
    let mut client = stage.connect();
    client.set_nodelay(true).unwrap();
    let started = Instant::now();
    client
        .write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut answer = Vec::new();
    for _ in 0..50 {
        if client.write_all(b"b").is_err() {
            break;
        }
        let mut chunk = [0u8; 1024];
        match client.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => continue,
        }
    }
    answer.extend(read_to_close(&mut client));
    let took = started.elapsed();
    assert_eq!(Reply::parse(&answer).status, 408);
    assert!(took >= Duration::from_millis(800), "cut early: {took:?}");
    assert!(took <= Duration::from_millis(2500), "cut late: {took:?}");
    assert!(
        stage.wait_for_log("\"GET /slow HTTP/1.1\" 408"),
        "{}",
        stage.stderr()
    );
}

/// A well-behaved `Expect: 100-continue` client is not cut by a short deadline: it gets its
/// go-ahead at once, so it sends its body at once.
#[test]
fn expect_100_continue_beats_a_short_deadline() {
    let stage = Stage::start(
        BIN,
        &["--header-timeout-ms", "300", "--work-ms", "0", "--quiet"],
    );
    let mut client = stage.connect();
    client
        .write_all(
            b"GET / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap();
    let mut go_ahead = [0u8; 25];
    client.read_exact(&mut go_ahead).unwrap();
    assert_eq!(&go_ahead, b"HTTP/1.1 100 Continue\r\n\r\n");
    client.write_all(b"abc").unwrap();
    assert_eq!(Reply::parse(&read_to_close(&mut client)).status, 200);
    assert_eq!(stage.stats()["timeouts"], 0);
}
