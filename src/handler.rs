//! Handling one connection: read a request, do the work, write the response, close.
//!
//! Every stage calls [`handle_connection`]; the stages differ only in *which thread* calls it
//! and *when*. It never panics and never returns an error: whatever goes wrong with one
//! connection is logged with its peer and ends that connection only.
//!
//! Routes: `GET /` (and `HEAD /`) does the simulated work, then says `Hello World`;
//! `GET /stats` answers at once with the counters; anything else is 404.
//!
//! Introduced in chapter 0 (`docs/00-the-cafe.md`).

use std::io::Write;
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use crate::clock::Utc;
use crate::deadline::DeadlineReader;
use crate::http::{self, Method, ReadError, Rejection, Response, Status};
use crate::logging;
use crate::server::{Connection, Server};
use crate::stats::bump;

/// After answering a request we did not read in full, how long to keep reading (and throwing
/// away) what the client still sends, so it reads our answer instead of a reset.
const LINGER: Duration = Duration::from_millis(500);
/// ... and how many bytes at most.
const LINGER_BYTES: usize = 64 * 1024;

/// Serves one connection from start to close. The socket closes when `conn` is dropped at
/// the end of this function.
pub fn handle_connection(conn: Connection) {
    let server: &Server = &conn.server;
    let _busy = server.stats.in_flight.enter();
    let started = Instant::now();

    if let Some(deadlines) = conn.deadlines {
        if let Err(e) = conn.stream.set_write_timeout(Some(deadlines.write)) {
            server.connection_error(conn.peer, "cannot set the write timeout", &e);
            return;
        }
    }
    // The deadline starts when a thread picks the connection up: time spent waiting in a
    // queue is ours, not the client's.
    let deadline = conn.deadlines.map(|d| started + d.header);
    let mut reader = DeadlineReader::new(&conn.stream, deadline);
    let mut buf = Vec::new();

    let (response, line, linger) = match http::read_request(&mut reader, &mut buf) {
        Ok((request, after_head)) => match answer(&request, after_head, &mut reader, server) {
            Ok((response, linger)) => (response, request.line, linger),
            Err(ReadError::Closed) => return,
            Err(error) => return read_failed(&conn, error, started),
        },
        Err(ReadError::Closed) => return, // closed before a whole head: nothing to answer
        Err(error) => return read_failed(&conn, error, started),
    };
    send(&conn, &response, line, started);
    if linger {
        close_gracefully(&conn);
    }
}

/// Decides the response to a well-formed request. Returns it and whether unread bytes may
/// be left on the connection.
fn answer(
    request: &http::Request<'_>,
    after_head: usize,
    reader: &mut DeadlineReader<'_>,
    server: &Server,
) -> Result<(Response, bool), ReadError> {
    let head_only = match request.method {
        Some(Method::Get) => false,
        Some(Method::Head) => true,
        // Refused at once, without waiting for a body: the client's remaining bytes are
        // drained by close_gracefully.
        Some(_) => {
            return Ok((
                refuse(
                    Status::MethodNotAllowed,
                    "only GET and HEAD are served here",
                ),
                true,
            ))
        }
        None => return Ok((refuse(Status::NotImplemented, "unknown method"), true)),
    };
    // We serve no bodies, but a client that sent one must not be reset while sending it.
    http::discard_body(reader, request.content_length, after_head)?;
    let pipelined = after_head as u64 > request.content_length;

    let mut response = match request.path() {
        "/" => {
            // The simulated work: a database call, a template, a slow upstream. Sleeping
            // keeps a thread busy without using a core, like waiting on I/O does.
            thread::sleep(server.config.work);
            Response::text(Status::Ok, "Hello World\n")
        }
        "/stats" => Response::json(server.stats_json()),
        _ => Response::text(Status::NotFound, "404 Not Found: try / or /stats\n"),
    };
    response.head_only = head_only;
    Ok((response, pipelined))
}

fn refuse(status: Status, why: &'static str) -> Response {
    Response::rejection(Rejection { status, why })
}

/// Answers what can be answered after a failed read (408, 4xx) and logs the rest.
fn read_failed(conn: &Connection, error: ReadError, started: Instant) {
    let server: &Server = &conn.server;
    let response = match error {
        ReadError::Closed => return,
        ReadError::Io(e) => return server.connection_error(conn.peer, "read failed", &e),
        ReadError::Rejected(rejection) => Response::rejection(rejection),
        ReadError::TimedOut => {
            bump(&server.stats.timeouts);
            let ms = conn.deadlines.map_or(0, |d| d.header.as_millis());
            Response::text(
                Status::RequestTimeout,
                format!("408 Request Timeout: no complete request within {ms} ms\n"),
            )
        }
    };
    send(conn, &response, "-", started);
    close_gracefully(conn);
}

/// Writes the whole response, counts it and logs the request line.
fn send(conn: &Connection, response: &Response, line: &str, started: Instant) {
    let server: &Server = &conn.server;
    let bytes = response.to_bytes(&Utc::now().http_format());
    let mut stream = &conn.stream;
    if let Err(e) = stream.write_all(&bytes) {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            bump(&server.stats.timeouts);
        }
        return server.connection_error(conn.peer, "write failed", &e);
    }
    bump(&server.stats.served);
    if !server.config.quiet {
        logging::request(conn.peer, line, response.status.code(), started.elapsed());
    }
}

/// Closes without a reset: sends FIN, then reads and discards what the client still sends,
/// for at most [`LINGER`] and [`LINGER_BYTES`].
///
/// Closing a socket that has unread bytes makes the kernel send RST, and a client that gets
/// RST may throw away our response before reading it.
fn close_gracefully(conn: &Connection) {
    if conn.stream.shutdown(Shutdown::Write).is_err() {
        return; // already gone
    }
    let mut reader = DeadlineReader::new(&conn.stream, Some(Instant::now() + LINGER));
    let mut scratch = vec![0u8; 4096]; // on the heap, for the reason given in discard_body
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match std::io::Read::read(&mut reader, &mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}
