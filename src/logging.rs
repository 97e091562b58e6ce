//! One line per request, and one per connection that ended without one, on stderr.
//!
//! Each line starts with the time and the name of the thread that wrote it, so the log shows
//! a stage's structure: everything on `main` in stages 01, 06 and 07, `conn-17` in 02 and 03,
//! `worker-3` in 04 and 05. A line is formatted first and written with one call, so lines from
//! many threads never interleave. Writing to a closed stderr fails quietly: a log line is never
//! a reason to stop serving.
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::fmt::Display;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use crate::clock::Utc;

/// `2026-11-25T19:40:01.123Z worker-3 127.0.0.1:50412 "GET / HTTP/1.1" 200 1001ms, queued 12ms`
///
/// `took` runs from when the request was picked up (by a thread in stages 01-05, from the
/// first byte of the request in the event loop) to when its response was written; `queued`
/// is the time before that, between `accept()` and the pick-up (a pool's queue, stage 04).
/// A client that waited in the kernel's backlog waited longer still; only it can tell.
pub fn request(peer: SocketAddr, line: &str, status: u16, took: Duration, queued: Duration) {
    emit(format_args!(
        "{peer} \"{}\" {status} {}ms, queued {}ms",
        line.escape_debug(),
        took.as_millis(),
        queued.as_millis()
    ));
}

/// A request whose client left before its work was done: the work was skipped.
pub fn abandoned(peer: SocketAddr, line: &str, took: Duration) {
    emit(format_args!(
        "{peer} \"{}\" abandoned: the client left after {}ms, before its answer",
        line.escape_debug(),
        took.as_millis()
    ));
}

/// A connection that closed without sending a whole request, and how long it was held.
pub fn no_request(peer: SocketAddr, held: Duration) {
    emit(format_args!(
        "{peer} closed without a request after {}ms",
        held.as_millis()
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
