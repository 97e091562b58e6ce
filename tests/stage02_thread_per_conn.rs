//! Stage 02 gives every connection its own thread, so requests overlap.

mod common;

use std::time::Duration;

use common::{concurrent_gets, Stage};

/// Eight clients with 500 ms of work each all finish in far less than 8 x 500 ms, and
/// `/stats` shows all eight were in progress at the same moment.
#[test]
fn requests_overlap() {
    let stage = Stage::start(
        env!("CARGO_BIN_EXE_02_thread_per_conn"),
        &["--work-ms", "500", "--quiet"],
    );
    let (statuses, took) = concurrent_gets(&stage, 8);
    assert_eq!(statuses, [200; 8]);
    assert!(took >= Duration::from_millis(490));
    assert!(
        took < Duration::from_millis(2500),
        "eight requests took {took:?}: not in parallel"
    );
    let stats = stage.stats();
    assert_eq!(stats["peak_in_flight"], 8);
    assert_eq!(stats["served"], 8);
}

/// Threads come and go with the connections: after the burst, the count is back down.
#[test]
fn connection_threads_end_with_their_connection() {
    let stage = Stage::start(
        env!("CARGO_BIN_EXE_02_thread_per_conn"),
        &["--work-ms", "100", "--quiet"],
    );
    let before = stage.threads();
    let (statuses, _) = concurrent_gets(&stage, 20);
    assert!(statuses.iter().all(|&s| s == 200));
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while stage.threads() > before {
        assert!(std::time::Instant::now() < deadline, "threads did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
}
