//! Serving one connection on a thread that waits: the handler of stages 01-05.
//!
//! [`handle_connection`] is what "serving a connection" means in stages 01-05; they differ
//! only in *which thread* calls it and *when*. It reads the request (by stage 05's deadline),
//! asks [`route`] what to answer, sleeps for the work, and writes the response. It never
//! panics and never returns an error: whatever goes wrong with one connection is logged with
//! its peer and ends that connection only.
//!
//! Introduced in chapter 1 (`docs/01-single.md`); stage 05 gives it deadlines.

use std::io::Read;
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use crate::blocking::deadline::{write_all_by, DeadlineReader};
use crate::clock::Utc;
use crate::http::body::Body;
use crate::http::handler::{compute_for, peer_has_left, route, Route};
use crate::http::{self, Framed, Input, ReadError, Response, Status};
use crate::http::{LINGER, LINGER_BYTES, LINGER_IDLE};
use crate::logging;
use crate::server::{Connection, Server};
use crate::stats::bump;

/// A response on its way out, with what the log and the close need to know about it.
struct Answer {
    response: Response,
    /// The request line, for the log ("-" when none arrived).
    line: String,
    /// The client may still be sending (a body we did not read, a second request): close
    /// gracefully, not with a reset.
    unread: bool,
}

/// How reading and routing a request ended.
enum Outcome {
    /// Send this now.
    Answer(Answer),
    /// The request and its body are read: do the work, then send the answer.
    Work {
        work: Duration,
        cpu: Duration,
        answer: Answer,
    },
    /// The client closed before sending a complete request: nothing to answer.
    Gone,
    /// The connection failed, which is logged already.
    Failed,
}

/// Serves one connection from start to close (stages 01-05). The socket closes when `conn` is
/// dropped at the end of this function.
pub fn handle_connection(conn: Connection) {
    let server: &Server = &conn.server;
    let _busy = server.stats.in_flight.enter();
    let picked_up = Instant::now();
    // Stage 05: one deadline for the whole request, from when a thread picks the connection
    // up. Time spent waiting in a queue is ours, not the client's.
    let deadline = conn.deadlines.map(|d| picked_up + d.request);
    let mut reader = DeadlineReader::new(&conn.stream, deadline);
    let mut input = Input::new();

    let answer = match read_request(&conn, &mut reader, &mut input) {
        Outcome::Answer(answer) => answer,
        Outcome::Work { work, cpu, answer } => {
            // A client may give up while it waits for us (in stage 03's backlog, in stage 04's
            // queue): then nobody wants the work. A closed peer shows as end-of-file.
            if peer_has_left(&conn.stream) {
                bump(&server.stats.abandoned);
                if !server.config.quiet {
                    logging::abandoned(conn.peer, &answer.line, picked_up.elapsed());
                }
                return;
            }
            // Sleeping keeps a thread busy without using a core, like waiting on a database
            // does; computing keeps the core busy too.
            compute_for(cpu);
            thread::sleep(work);
            answer
        }
        Outcome::Gone => {
            if !server.config.quiet {
                logging::no_request(conn.peer, picked_up.elapsed());
            }
            return;
        }
        Outcome::Failed => return,
    };
    if send(&conn, &answer, picked_up) && answer.unread {
        close_gracefully(&conn);
    }
}

/// Reads a request head, routes it, and reads (and throws away) the body of a request that
/// will be served.
fn read_request(conn: &Connection, reader: &mut DeadlineReader<'_>, input: &mut Input) -> Outcome {
    let server: &Server = &conn.server;
    let head_len = match http::read_head(reader, input) {
        Ok(head_len) => head_len,
        Err(error) => return read_failed(conn, error, input.request_line().unwrap_or("-")),
    };
    bump(&server.stats.requests);
    let request = match http::parse_head(&input.bytes()[..head_len]) {
        Ok(request) => request,
        Err(rejection) => {
            let line = input.request_line().unwrap_or("-").to_string();
            return Outcome::Answer(Answer {
                response: Response::rejection(rejection),
                line,
                unread: true,
            });
        }
    };
    let line = request.line.to_string();
    let (framing, expect_continue) = (request.framing, request.expect_continue);
    let plan = match route(&request, server) {
        // Refused at once, without waiting for a body: close_gracefully drains what comes.
        Route::Refuse(response) => {
            return Outcome::Answer(Answer {
                response,
                line,
                unread: true,
            })
        }
        Route::Serve(plan) => plan,
    };
    input.consume(head_len);

    // We serve no bodies, but a client that sent one must not be reset while sending it.
    let mut body = Body::new(framing);
    if expect_continue && !body.is_done() && input.is_empty() {
        // The client waits for our go-ahead before it sends the body (RFC 9110 §10.1.1).
        let write_deadline = conn.deadlines.map(|d| Instant::now() + d.write);
        if let Err(e) = write_all_by(
            &conn.stream,
            &Framed::interim(http::CONTINUE),
            write_deadline,
        ) {
            write_failed(conn, &e);
            return Outcome::Failed;
        }
    }
    if let Err(error) = read_body(reader, input, &mut body) {
        return read_failed(conn, error, &line);
    }
    let answer = Answer {
        response: plan.response,
        line,
        unread: !input.is_empty(),
    };
    if plan.work.is_zero() && plan.cpu.is_zero() {
        return Outcome::Answer(answer);
    }
    Outcome::Work {
        work: plan.work,
        cpu: plan.cpu,
        answer,
    }
}

/// Reads the body to its end, throwing it away. Whatever follows it stays in `input`.
fn read_body<R: Read>(reader: &mut R, input: &mut Input, body: &mut Body) -> Result<(), ReadError> {
    loop {
        let taken = body.take(input.bytes()).map_err(ReadError::Rejected)?;
        input.consume(taken);
        if body.is_done() {
            return Ok(());
        }
        // Everything in `input` was body, so it is empty and has room.
        let space = input.space().map_err(ReadError::Rejected)?;
        match reader.read(space) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => input.fill(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// What a failed read comes to: an answer (408, 4xx), nothing (the client left), or a logged
/// error.
fn read_failed(conn: &Connection, error: ReadError, line: &str) -> Outcome {
    let server: &Server = &conn.server;
    let response = match error {
        ReadError::Closed => return Outcome::Gone,
        ReadError::Io(e) => {
            server.connection_error(conn.peer, "read failed", &e);
            return Outcome::Failed;
        }
        ReadError::Rejected(rejection) => Response::rejection(rejection),
        ReadError::TimedOut => {
            bump(&server.stats.timeouts);
            let ms = conn.deadlines.map_or(0, |d| d.request.as_millis());
            Response::text(
                Status::RequestTimeout,
                format!("408 Request Timeout: no complete request within {ms} ms\n"),
            )
        }
    };
    Outcome::Answer(Answer {
        response,
        line: line.to_string(),
        unread: true,
    })
}

/// Writes the whole response (by the write deadline, in stage 05), counts it and logs the
/// request line. Returns whether it was written.
fn send(conn: &Connection, answer: &Answer, picked_up: Instant) -> bool {
    let server: &Server = &conn.server;
    let response = &answer.response;
    let out = response.frame(&Utc::now().http_format());
    let write_deadline = conn.deadlines.map(|d| Instant::now() + d.write);
    if let Err(e) = write_all_by(&conn.stream, &out, write_deadline) {
        write_failed(conn, &e);
        return false;
    }
    // "Served" means in the kernel's send buffer; whether the client reads it is its business.
    bump(&server.stats.served);
    if !server.config.quiet {
        logging::request(
            conn.peer,
            &answer.line,
            response.status.code(),
            picked_up.elapsed(),
            picked_up.duration_since(conn.accepted),
        );
    }
    true
}

fn write_failed(conn: &Connection, error: &std::io::Error) {
    let server: &Server = &conn.server;
    if error.kind() == std::io::ErrorKind::TimedOut {
        bump(&server.stats.timeouts);
    }
    server.connection_error(conn.peer, "write failed", error);
}

/// Closes without a reset: sends FIN, then reads and discards what the client still sends,
/// while it sends, for at most [`LINGER`] and [`LINGER_BYTES`].
///
/// Closing a socket that has unread bytes makes the kernel send RST, and a client that gets
/// RST may throw away our response before reading it.
fn close_gracefully(conn: &Connection) {
    if conn.stream.shutdown(Shutdown::Write).is_err() {
        return; // already gone
    }
    let until = Instant::now() + LINGER;
    let mut scratch = vec![0u8; 4096]; // on the heap: on the stack it would widen every thread's frame
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let deadline = until.min(Instant::now() + LINGER_IDLE);
        let mut reader = DeadlineReader::new(&conn.stream, Some(deadline));
        match reader.read(&mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}
