//! Stage 03 serves at most `--max-conns` connections at once; the rest wait in the backlog.

mod common;

use std::time::Duration;

use common::{concurrent_gets, Stage};

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
