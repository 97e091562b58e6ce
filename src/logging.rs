//! One line per request, and one per connection error, on stderr.
//!
//! Each line starts with the time and the name of the thread that wrote it, so the log shows
//! a stage's structure: everything on `main` in stage 01, `conn-17` in 02 and 03, `worker-3`
//! in 04 and 05. A line is formatted first and written with one call, so lines from many
//! threads never interleave.
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::fmt::Display;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use crate::clock::Utc;

/// `2026-11-25T19:40:01.123Z conn-3 127.0.0.1:50412 "GET / HTTP/1.1" 200 1001ms`
pub fn request(peer: SocketAddr, line: &str, status: u16, took: Duration) {
    let millis = took.as_secs_f64() * 1000.0;
    emit(format_args!(
        "{peer} \"{}\" {status} {millis:.0}ms",
        line.escape_debug()
    ));
}

/// A connection that failed: logged with its peer, then dropped. One customer never closes
/// the cafe.
pub fn connection_error(peer: SocketAddr, what: &str, error: &dyn Display) {
    emit(format_args!("{peer} {what}: {error}"));
}

/// Anything else worth a line: accept errors, shutdown progress.
pub fn warn(message: impl Display) {
    emit(format_args!("{message}"));
}

fn emit(message: std::fmt::Arguments<'_>) {
    let thread = std::thread::current();
    let line = format!(
        "{} {} {message}\n",
        Utc::now().log_format(),
        thread.name().unwrap_or("?")
    );
    // Nothing sensible is left to do when stderr itself is gone.
    let _ = std::io::stderr().write_all(line.as_bytes());
}
