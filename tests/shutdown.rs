//! Every stage shuts down gracefully on Ctrl-C and shrugs off clients that send nothing.

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::{fds_back_to, read_to_close, settled_stats, Reply, Stage, PATIENCE};

const STAGES: [(&str, &str); 5] = common::ALL_STAGES;

/// Ctrl-C while a request is in progress: that request still gets its 200, a request that
/// comes after the signal is not served, the process prints its summary and exits 0.
#[test]
fn ctrl_c_finishes_the_request_in_progress_then_exits_0() {
    thread::scope(|scope| {
        for (name, bin) in STAGES {
            scope.spawn(move || {
                let stage = Stage::start(bin, &["--work-ms", "600", "--quiet"]);
                let mut in_progress = stage.connect();
                in_progress
                    .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                    .unwrap();
                thread::sleep(Duration::from_millis(200));
                stage.interrupt();
                thread::sleep(Duration::from_millis(100));
                // A newcomer is refused or closed without an answer.
                let late = std::net::TcpStream::connect(stage.addr).map(|mut s| {
                    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                    s.set_read_timeout(Some(PATIENCE)).unwrap();
                    read_to_close(&mut s)
                });
                assert!(
                    late.map_or(true, |bytes| bytes.is_empty()),
                    "{name} served a request after Ctrl-C"
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
            });
        }
    });
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
