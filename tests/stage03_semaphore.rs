//! Stage 03 serves at most `--max-conns` connections at once; the rest wait in the backlog.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{concurrent_gets, read_to_close, Reply, Stage};

/// Six clients, two permits, 300 ms of work: three rounds of two, so at least 3 x 300 ms,
/// and never more than two in progress.
#[test]
fn at_most_max_conns_are_served_at_once() {
    let stage = Stage::start(
        env!("CARGO_BIN_EXE_03_semaphore"),
        &["--max-conns", "2", "--work-ms", "300", "--quiet"],
    );
    let (statuses, took) = concurrent_gets(&stage, 6);
    assert_eq!(statuses, [200; 6]);
    assert!(
        took >= Duration::from_millis(850),
        "six requests in {took:?}: more than two at once"
    );
    assert!(
        took < Duration::from_millis(3000),
        "six requests in {took:?}: fewer than two at once"
    );
    let stats = stage.stats();
    assert_eq!(stats["peak_in_flight"], 2);
    assert!(stats["peak_connections_open"] <= 2, "{stats:?}");
}

/// Clients who give up while they wait in the backlog (three `curl -m` against one permit)
/// are not worked for: when their turn comes the server sees they have closed, skips the work
/// and counts them as `abandoned`. Only the one client still there is served.
#[test]
fn clients_who_gave_up_are_not_worked_for() {
    let stage = Stage::start(
        env!("CARGO_BIN_EXE_03_semaphore"),
        &["--max-conns", "1", "--work-ms", "600", "--quiet"],
    );
    let get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let started = std::time::Instant::now();
    let mut first = stage.connect();
    first.write_all(get).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..2 {
        // Sends its request, waits in the backlog, and gives up.
        let mut impatient = stage.connect();
        impatient.write_all(get).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        drop(impatient);
    }
    assert_eq!(Reply::parse(&read_to_close(&mut first)).status, 200);
    // Poll /stats until both are counted; each earlier /stats answer is served too.
    let mut polls = 0;
    let stats = loop {
        let stats = stage.stats();
        if stats["abandoned"] >= 2 || polls == 500 {
            break stats;
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed();
    assert_eq!(stats["abandoned"], 2, "{stats:?}");
    assert_eq!(
        stats["served"],
        1 + polls,
        "only the client who stayed, and {polls} /stats: {stats:?}"
    );
    // Working for the two who left would have taken two more rounds of 600 ms.
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}
