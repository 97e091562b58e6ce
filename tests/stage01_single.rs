//! Stage 01 serves one connection at a time.

mod common;

use std::time::Duration;

use common::{concurrent_gets, Stage};

/// Three clients at once with 300 ms of work each take at least 3 x 300 ms in all, and
/// `/stats` confirms nobody was ever served alongside anyone else.
#[test]
fn requests_are_served_one_after_another() {
    let stage = Stage::start(
        env!("CARGO_BIN_EXE_01_single"),
        &["--work-ms", "300", "--quiet"],
    );
    let (statuses, took) = concurrent_gets(&stage, 3);
    assert_eq!(statuses, [200, 200, 200]);
    assert!(
        took >= Duration::from_millis(850),
        "three requests in {took:?}: they overlapped"
    );
    let stats = stage.stats();
    assert_eq!(stats["peak_in_flight"], 1);
    assert_eq!(stats["served"], 3);
    assert_eq!(stats["accepted"], 4, "three requests and this /stats");
}

/// `--help` lists the flags with their defaults and exits 0; a bad flag exits 2 naming it,
/// without the help screen (`tests/flags.rs` checks every stage).
#[test]
fn flags_are_explained_and_checked() {
    let bin = env!("CARGO_BIN_EXE_01_single");
    let help = std::process::Command::new(bin)
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.contains("--work-ms <MS>") && text.contains("[default: 1000]"),
        "{text}"
    );
    let bad = std::process::Command::new(bin)
        .args(["--max-conns", "3"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(
        stderr,
        "error: unexpected argument '--max-conns' found\n\nFor more information, try '--help'.\n"
    );
}

/// A port already in use is one clear sentence on stderr and exit code 1.
#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_01_single"))
        .args(["--addr", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "cannot listen on {addr}: the address is already in use"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
