//! Stage 04 serves from a fixed pool of threads behind a bounded queue.

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::{concurrent_gets, read_to_close, Reply, Stage};

const BIN: &str = env!("CARGO_BIN_EXE_04_thread_pool");

/// Forty clients against three workers: the process has the same threads before and after,
/// and no more than three requests were ever in progress.
#[test]
fn the_thread_count_stays_flat() {
    let stage = Stage::start(BIN, &["--workers", "3", "--work-ms", "50", "--quiet"]);
    let before = stage.threads();
    assert!(before >= 4, "main + 3 workers at least, got {before}");
    let (statuses, _) = concurrent_gets(&stage, 40);
    assert_eq!(statuses, [200; 40]);
    assert_eq!(stage.threads(), before);
    let stats = stage.stats();
    assert!(stats["peak_in_flight"] <= 3, "{stats:?}");
    assert_eq!(stats["served"], 40);
}

/// One worker and one queue slot: never more than two connections accepted at once; the
/// other clients wait in the backlog and are all served in the end.
#[test]
fn the_queue_is_bounded() {
    let stage = Stage::start(
        BIN,
        &[
            "--workers",
            "1",
            "--queue",
            "1",
            "--work-ms",
            "100",
            "--quiet",
        ],
    );
    let (statuses, _) = concurrent_gets(&stage, 6);
    assert_eq!(statuses, [200; 6]);
    let stats = stage.stats();
    assert!(stats["peak_connections_open"] <= 2, "{stats:?}");
    assert_eq!(stats["peak_in_flight"], 1);
}

/// Why stage 05 exists: two clients that connect and say nothing hold both workers, and a
/// third, well-behaved client is not served until they leave.
#[test]
fn idle_clients_starve_the_pool() {
    let stage = Stage::start(BIN, &["--workers", "2", "--work-ms", "0", "--quiet"]);
    let idlers = [stage.connect(), stage.connect()];
    thread::sleep(Duration::from_millis(200));
    let mut client = stage.connect();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let starved = std::io::Read::read(&mut client, &mut byte);
    assert!(
        starved.is_err(),
        "served while both workers were held: {starved:?}"
    );
    // The idlers leave; the waiting client is served at last.
    drop(idlers);
    client.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let started = Instant::now();
    let reply = Reply::parse(&read_to_close(&mut client));
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A client that sends two requests in one write and then neither reads nor closes (what
/// `slowhttptest -X -k 2` does) is answered once, and then costs its worker only a short
/// lingering close: while bytes keep coming the worker drains them, but a pause of 50 ms ends
/// the linger, instead of a flat 500 ms. With one worker, a normal client behind two such
/// clients waits about 2 x 50 ms, not 2 x 500 ms.
#[test]
fn a_client_that_pipelines_and_waits_holds_a_worker_only_briefly() {
    let stage = Stage::start(
        BIN,
        &[
            "--workers",
            "1",
            "--queue",
            "4",
            "--work-ms",
            "0",
            "--quiet",
        ],
    );
    let two = b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut pipeliners: Vec<_> = (0..2)
        .map(|_| {
            let mut stream = stage.connect();
            stream.write_all(two).unwrap();
            stream
        })
        .collect();
    thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    let mut normal = stage.connect();
    normal
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let reply = Reply::parse(&read_to_close(&mut normal));
    let took = started.elapsed();
    assert_eq!(reply.status, 200);
    assert!(
        took < Duration::from_millis(700),
        "waited {took:?} behind two lingering closes"
    );
    for stream in &mut pipeliners {
        let reply = Reply::parse(&read_to_close(stream));
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.body, "Hello World\n",
            "one response, nothing after it"
        );
    }
}
