//! One connection of the event loop (stages 06 and 07), as a state machine.
//!
//! A blocking stage keeps a connection's progress in its thread: the line of code the thread
//! is waiting on *is* the state ("reading the head", "sleeping through the work"). An event
//! loop has one thread for all its connections, so it cannot wait on any of them; each
//! connection's progress is written down instead, as a [`State`], and the loop moves it along
//! whenever its socket is ready or its timer is due:
//!
//! ```text
//!  accept                          head complete           work's timer          all written
//!    │                                  │                       │                    │
//!    ▼      bytes, until the head       ▼   (a body: read       ▼                    ▼
//!  Head ─────────────────────────────► Body ─ and discard) ──► Working ─────────► Writing ──┐
//!    ▲  │ deadline: 408, then ─────────────────────────────────────────────────────►  │     │
//!    │  ▼ end-of-file: closed                                                         │     │
//!    │                                                          Closed ◄── Lingering ◄┘     │
//!    │                                                                                      │
//!    └──── first byte ───── Idle ◄──── stage 07: the connection stays open ─────────────────┘
//!                            │ idle too long: closed quietly
//! ```
//!
//! [`Conn::advance`] does everything that can be done without waiting: it reads until the
//! socket says `WouldBlock`, writes until it says `WouldBlock`, moves from state to state, and
//! returns when the connection must wait for its socket or its timer. mio's events are
//! edge-triggered: a socket that is not drained to `WouldBlock` may never be reported ready
//! again (chapter 6 shows that bug). So `advance` never stops reading or writing while there is
//! more, and calling it when nothing is ready is harmless: a spurious event costs one
//! `WouldBlock`.
//!
//! Everything HTTP comes from the modules the blocking stages use: [`Input`] and
//! [`http::parse_head`] read the head, [`handler::route`] decides the answer, [`Body`] finds
//! the end of a body, [`Response::to_bytes`] frames the answer. One parser, one router.
//!
//! Introduced in chapter 6 (`docs/06-event-loop.md`); chapter 7 adds keep-alive.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::clock::Utc;
use crate::http::body::Body;
use crate::http::handler::{self, compute_for, peer_has_left, Route};
use crate::http::{self, Input, Persistence, Rejection, Response, Status, Version};
use crate::logging;
use crate::server::Server;
use crate::stats::bump;

/// After answering a request whose bytes we did not all read, keep reading and throwing away
/// what the client still sends for at most this long, so it reads our answer, not a reset...
const LINGER: Duration = Duration::from_millis(500);
/// ... but only while it keeps sending: a pause this long ends it.
const LINGER_IDLE: Duration = Duration::from_millis(50);
/// ... and at most this many bytes.
const LINGER_BYTES: usize = 64 * 1024;
/// The most state changes one call of `advance` makes, so one busy connection (a client
/// pipelining requests as fast as it can) cannot hold the loop for ever: after them the loop
/// serves the others and comes back (a timer due at once, see `Connections::settle`).
const STEPS_PER_TURN: usize = 64;

/// Whether a connection may carry more than one request: the idea of stage 07.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// One request per connection, then close (stage 06, like every blocking stage).
    Never,
    /// Persistent connections (stage 07): after a response, read the next request; close an
    /// idle connection after `idle`, and any connection after `max_requests`.
    KeepAlive { idle: Duration, max_requests: u64 },
}

/// Where a connection is, with exactly the data that step needs.
#[derive(Debug)]
pub enum State {
    /// Reading a request head. `since`: when the request began, at `accept()` for the first
    /// request and at the first byte of each later one (stage 07). The whole request is due by
    /// `since + --header-timeout-ms`.
    Head { since: Instant },
    /// Between two requests of a persistent connection (stage 07), nothing received since the
    /// last response: closed quietly once it has been idle for `--keep-alive-ms`.
    Idle { since: Instant },
    /// Reading the request's body to its end and throwing it away, by `by`. `go_ahead`: bytes
    /// of `100 Continue` still to write, before the client sends the body.
    Body {
        body: Body,
        go_ahead: usize,
        by: Instant,
        reply: Reply,
    },
    /// The simulated work is under way; the answer is written when the timer fires at `until`.
    Working { until: Instant, reply: Reply },
    /// Writing `out[sent..]`, which must be done by `by`; then `after`.
    Writing {
        out: Vec<u8>,
        sent: usize,
        by: Instant,
        after: After,
        logged: Logged,
    },
    /// FIN sent; reading and throwing away what the client still sends, until `until`, or a
    /// quiet spell that reaches `quiet_by`, or `LINGER_BYTES`.
    Lingering {
        until: Instant,
        quiet_by: Instant,
        drained: usize,
    },
    /// Done: the connection is to be dropped.
    Closed,
}

impl State {
    /// Whether a request is being handled, from its head read to its response written: the
    /// stage's `in_flight`.
    fn in_flight(&self) -> bool {
        matches!(
            self,
            State::Body { .. } | State::Working { .. } | State::Writing { .. }
        )
    }
}

/// A request on its way to its answer.
#[derive(Debug)]
pub struct Reply {
    response: Response,
    /// The work still to do before the answer (`--work-ms` and `--cpu-ms`).
    work: Duration,
    cpu: Duration,
    /// The client may still be sending (a body we did not read): linger before closing.
    unread: bool,
    logged: Logged,
}

/// What the log line of a request says.
#[derive(Debug)]
pub struct Logged {
    line: String,
    status: u16,
    /// When the request began: the time in the log runs from here.
    started: Instant,
}

/// What to do once a response is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Close; if the client may still be sending, linger first.
    Close { unread: bool },
    /// Read the next request (stage 07).
    KeepReading,
}

/// What one step of the state machine comes to.
enum Next {
    /// The connection must wait, in this state, for its socket or its timer.
    Wait(State),
    /// It moved on: take the next step at once.
    Go(State),
}

/// How a read went.
enum Got {
    Bytes,
    /// The bytes break the request (judged as they come): answer this.
    Rejected(Rejection),
    WouldBlock,
    /// The client closed its side.
    Eof,
    /// An error, logged already.
    Failed,
}

/// What the state machine needs to know of its surroundings.
#[derive(Clone, Copy, Debug)]
pub struct Cx<'a> {
    pub server: &'a Server,
    pub reuse: Reuse,
    /// Ctrl-C came: finish what is in progress, start nothing new, keep nothing open.
    pub draining: bool,
}

/// One connection: its socket, its state and its bytes.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Unique over the whole run (the stage's accepted count), unlike the token, which a newer
    /// connection may get once this one is closed: a timer carries both.
    pub id: u64,
    state: State,
    input: Input,
    /// Requests this connection has carried so far.
    requests: u64,
    /// The earliest timer in the heap for this connection, so that a deadline that only moved
    /// later needs no new one.
    pub(crate) armed: Option<Instant>,
    /// Whether the socket may hold bytes not read yet: false once a read comes back short (the
    /// kernel gave all it had), true again with every event that says it is readable.
    maybe_more: bool,
}

impl Conn {
    /// A connection just accepted: its first request is due within `--header-timeout-ms`.
    pub fn new(stream: TcpStream, peer: SocketAddr, id: u64, now: Instant) -> Conn {
        Conn {
            stream,
            peer,
            id,
            state: State::Head { since: now },
            input: Input::new(),
            requests: 0,
            armed: None,
            maybe_more: true,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether Ctrl-C need not wait for this connection: it has sent nothing of a request (a
    /// new connection, or an idle persistent one).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head { .. } | State::Idle { .. }) && self.input.is_empty()
    }

    /// When the loop must next look at this connection, even if its socket stays quiet.
    pub fn deadline(&self, cx: Cx<'_>) -> Option<Instant> {
        match &self.state {
            State::Head { since } => Some(*since + cx.server.config.header_timeout),
            State::Idle { since } => match cx.reuse {
                Reuse::KeepAlive { idle, .. } => Some(*since + idle),
                Reuse::Never => None,
            },
            State::Body { by, .. } | State::Writing { by, .. } => Some(*by),
            State::Working { until, .. } => Some(*until),
            State::Lingering {
                until, quiet_by, ..
            } => Some((*until).min(*quiet_by)),
            State::Closed => None,
        }
    }

    /// Moves the connection along with `step`, which gets the current state by value and
    /// returns the next one. The stage's count of requests in flight follows from the two
    /// states, so no flag can disagree with it. Returns whether to take another step.
    fn transition(&mut self, cx: Cx<'_>, step: impl FnOnce(&mut Conn, State) -> Next) -> bool {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let was_in_flight = state.in_flight();
        let (next, go_on) = match step(self, state) {
            Next::Wait(state) => (state, false),
            Next::Go(state) => (state, true),
        };
        let gauge = &cx.server.stats.in_flight;
        match (was_in_flight, next.in_flight()) {
            (false, true) => gauge.up(),
            (true, false) => gauge.down(),
            _ => {}
        }
        self.state = next;
        go_on && !self.is_closed()
    }

    /// Closes the connection now; the table drops it once it sees it closed.
    pub fn close(&mut self, cx: Cx<'_>) {
        self.transition(cx, |_, _| Next::Go(State::Closed));
    }

    /// Does everything that can be done now without waiting, and returns when the connection
    /// must wait for its socket or its timer, or is closed: `false`. Returns `true` if it
    /// stopped only because its turn was over (`STEPS_PER_TURN`) with more to do: then no
    /// event will come for what is left (the bytes are already here), so the caller must
    /// come back to it soon, as an edge-triggered loop must.
    pub fn advance(&mut self, cx: Cx<'_>, now: Instant) -> bool {
        for _ in 0..STEPS_PER_TURN {
            if !self.transition(cx, |conn, state| conn.step(cx, now, state)) {
                return false;
            }
        }
        true
    }

    /// An event came for the socket. `readable`: bytes (or an end, or an error) may have come
    /// since the last read, whatever the state was then. If it says the client has closed its
    /// side while the work was under way, nobody waits for the answer any more.
    pub fn on_event(&mut self, cx: Cx<'_>, readable: bool, read_closed: bool) {
        self.maybe_more |= readable || read_closed;
        if read_closed && matches!(self.state, State::Working { .. }) {
            self.transition(cx, |conn, state| {
                if let State::Working { reply, .. } = &state {
                    abandoned(cx, conn.peer, &reply.logged);
                }
                Next::Go(State::Closed)
            });
        }
    }

    /// The connection's deadline has passed: answer 408, end the work, close an idle
    /// connection, give up on a write or a linger. Then go on from there.
    pub fn on_deadline(&mut self, cx: Cx<'_>, now: Instant) -> bool {
        self.transition(cx, |conn, state| conn.expire(cx, now, state));
        self.advance(cx, now)
    }

    /// How one state moves on, if it can without waiting.
    fn step(&mut self, cx: Cx<'_>, now: Instant, state: State) -> Next {
        match state {
            State::Idle { since } => self.idle(cx, now, since),
            State::Head { since } => self.head(cx, now, since),
            State::Body {
                body,
                go_ahead,
                by,
                reply,
            } => self.body(cx, now, body, go_ahead, by, reply),
            State::Working { .. } | State::Closed => Next::Wait(state),
            State::Writing {
                out,
                sent,
                by,
                after,
                logged,
            } => self.write(cx, now, out, sent, by, after, logged),
            State::Lingering {
                until,
                quiet_by,
                drained,
            } => self.linger(now, until, quiet_by, drained),
        }
    }

    /// What a passed deadline does to each state.
    fn expire(&mut self, cx: Cx<'_>, now: Instant, state: State) -> Next {
        match state {
            State::Head { since } => {
                let line = self.input.request_line().unwrap_or("-").to_string();
                Next::Go(self.time_out(cx, now, line, since))
            }
            State::Body { reply, .. } => {
                let Logged { line, started, .. } = reply.logged;
                Next::Go(self.time_out(cx, now, line, started))
            }
            // No 408 to a client that has sent nothing since its last response.
            State::Idle { .. } => Next::Go(State::Closed),
            State::Working { reply, .. } => Next::Go(self.respond(cx, now, reply)),
            State::Writing { .. } => {
                bump(&cx.server.stats.timeouts);
                cx.server.connection_error(
                    self.peer,
                    "write failed",
                    &"the response was not written within --write-timeout-ms",
                );
                Next::Go(State::Closed)
            }
            State::Lingering { .. } | State::Closed => Next::Go(State::Closed),
        }
    }

    /// Stage 07, between requests: bytes already here (a pipelined request) or the first new
    /// byte start the next request; its deadline counts from now.
    fn idle(&mut self, cx: Cx<'_>, now: Instant, since: Instant) -> Next {
        if !self.input.is_empty() {
            return Next::Go(State::Head { since: now });
        }
        // The last read was short: the client had sent nothing more then, and whatever it
        // sends now brings a readable event. Reading at once would mostly find nothing, and a
        // quick client's next request, when it is there, would jump ahead of the others'.
        if !self.maybe_more {
            return Next::Wait(State::Idle { since });
        }
        match self.read_some(cx) {
            Got::Bytes => Next::Go(State::Head { since: now }),
            Got::Rejected(rejection) => Next::Go(self.reject(cx, now, now, rejection)),
            Got::WouldBlock => Next::Wait(State::Idle { since }),
            Got::Eof | Got::Failed => Next::Go(State::Closed),
        }
    }

    /// Reads until the request head is complete, then starts on the request.
    fn head(&mut self, cx: Cx<'_>, now: Instant, since: Instant) -> Next {
        loop {
            match self.input.head_len() {
                Ok(Some(head_len)) => return Next::Go(self.start(cx, now, since, head_len)),
                Ok(None) => {}
                Err(rejection) => return Next::Go(self.reject(cx, now, since, rejection)),
            }
            match self.read_some(cx) {
                Got::Bytes => {}
                Got::Rejected(rejection) => {
                    return Next::Go(self.reject(cx, now, since, rejection))
                }
                Got::WouldBlock => return Next::Wait(State::Head { since }),
                Got::Eof => {
                    // The client left before a whole request: nothing to answer.
                    if self.requests == 0 && !cx.server.config.quiet {
                        logging::no_request(self.peer, now.duration_since(since));
                    }
                    return Next::Go(State::Closed);
                }
                Got::Failed => return Next::Go(State::Closed),
            }
        }
    }

    /// One read of what the socket has into `input`, judged as the head's bytes.
    fn read_some(&mut self, cx: Cx<'_>) -> Got {
        if self.input.is_empty() {
            return self.read_first(cx);
        }
        let space = match self.input.space() {
            Ok(space) => space,
            Err(rejection) => return Got::Rejected(rejection),
        };
        let arrived = read_now(&mut self.stream, space, &mut self.maybe_more);
        self.judge(cx, arrived, |input, n| input.received(n))
    }

    /// The first bytes of a request, read into a buffer on the stack and copied in only when
    /// there are some: a connection that has sent nothing (ten thousand idle ones, say) holds
    /// no buffer of its own.
    fn read_first(&mut self, cx: Cx<'_>) -> Got {
        let mut first = [0u8; http::FIRST_READ];
        let arrived = read_now(&mut self.stream, &mut first, &mut self.maybe_more);
        self.judge(cx, arrived, |input, n| input.push(&first[..n]))
    }

    /// What a read of the head brought, once `take` has put its bytes into `input`.
    fn judge(
        &mut self,
        cx: Cx<'_>,
        arrived: Arrived,
        take: impl FnOnce(&mut Input, usize) -> Result<Option<usize>, Rejection>,
    ) -> Got {
        match arrived {
            Arrived::Bytes(n) => match take(&mut self.input, n) {
                Ok(_) => Got::Bytes,
                Err(rejection) => Got::Rejected(rejection),
            },
            Arrived::End => Got::Eof,
            Arrived::Nothing => Got::WouldBlock,
            Arrived::Error(e) => {
                cx.server.connection_error(self.peer, "read failed", &e);
                Got::Failed
            }
        }
    }

    /// A complete head is at the front of `input`: parse it, route it, and start on it.
    fn start(&mut self, cx: Cx<'_>, now: Instant, since: Instant, head_len: usize) -> State {
        let server = cx.server;
        bump(&server.stats.requests);
        if self.requests > 0 {
            bump(&server.stats.keep_alive_reuses);
        }
        self.requests += 1;
        let request = match http::parse_head(&self.input.bytes()[..head_len]) {
            Ok(request) => request,
            Err(rejection) => return self.reject(cx, now, since, rejection),
        };
        let line = request.line.to_string();
        let (framing, expect_continue) = (request.framing, request.expect_continue);
        // Stage 07 keeps the connection if the client wants it, it is below --max-requests,
        // and Ctrl-C has not come.
        let persistence = match cx.reuse {
            Reuse::KeepAlive { idle, max_requests }
                if request.wants_persistence() && self.requests < max_requests && !cx.draining =>
            {
                Persistence::KeepAlive {
                    idle,
                    http10: request.version == Version::Http10,
                }
            }
            _ => Persistence::Close,
        };
        let plan = match handler::route(&request, server) {
            // Refused at once, without reading its body: so the connection cannot be kept.
            Route::Refuse(response) => {
                let reply = reply(response, line, since, true);
                return self.respond(cx, now, reply);
            }
            Route::Serve(plan) => plan,
        };
        self.input.consume(head_len);
        let mut reply = reply(plan.response, line, since, false);
        reply.response.persistence = persistence;
        (reply.work, reply.cpu) = (plan.work, plan.cpu);
        let body = Body::new(framing);
        if body.is_done() {
            return self.work(cx, now, reply);
        }
        // The client waits for our go-ahead before it sends the body (RFC 9110 §10.1.1).
        let go_ahead = if expect_continue && self.input.is_empty() {
            http::CONTINUE.len()
        } else {
            0
        };
        State::Body {
            body,
            go_ahead,
            by: since + server.config.header_timeout,
            reply,
        }
    }

    /// Writes the `100 Continue` go-ahead if one is due, then reads the body to its end.
    fn body(
        &mut self,
        cx: Cx<'_>,
        now: Instant,
        mut body: Body,
        mut go_ahead: usize,
        by: Instant,
        reply: Reply,
    ) -> Next {
        while go_ahead > 0 {
            let start = http::CONTINUE.len() - go_ahead;
            match self.stream.write(&http::CONTINUE[start..]) {
                Ok(n) if n > 0 => go_ahead -= n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Next::Wait(State::Body {
                        body,
                        go_ahead,
                        by,
                        reply,
                    })
                }
                Ok(_) | Err(_) => {
                    cx.server
                        .connection_error(self.peer, "write failed", &"100 Continue");
                    return Next::Go(State::Closed);
                }
            }
        }
        loop {
            match body.take(self.input.bytes()) {
                Ok(taken) => self.input.consume(taken),
                Err(rejection) => {
                    let Logged { line, started, .. } = reply.logged;
                    let refused = self::reply(Response::rejection(rejection), line, started, true);
                    return Next::Go(self.respond(cx, now, refused));
                }
            }
            if body.is_done() {
                return Next::Go(self.work(cx, now, reply));
            }
            // Everything in `input` was body, so it is empty and has room.
            let Ok(space) = self.input.space() else {
                return Next::Go(State::Closed);
            };
            match read_now(&mut self.stream, space, &mut self.maybe_more) {
                Arrived::Bytes(n) => self.input.fill(n),
                Arrived::End => return Next::Go(State::Closed),
                Arrived::Nothing => {
                    return Next::Wait(State::Body {
                        body,
                        go_ahead,
                        by,
                        reply,
                    });
                }
                Arrived::Error(e) => {
                    cx.server.connection_error(self.peer, "read failed", &e);
                    return Next::Go(State::Closed);
                }
            }
        }
    }

    /// Starts the work of a request: the computing part right now, on this thread (which
    /// stalls every other connection: that is `--cpu-ms`'s lesson), the waiting part as a
    /// timer. No thread sleeps.
    fn work(&mut self, cx: Cx<'_>, now: Instant, reply: Reply) -> State {
        if reply.work.is_zero() && reply.cpu.is_zero() {
            return self.respond(cx, now, reply);
        }
        // A client that has already gone wants no work.
        if peer_has_left(&self.stream) {
            abandoned(cx, self.peer, &reply.logged);
            return State::Closed;
        }
        compute_for(reply.cpu);
        State::Working {
            until: Instant::now() + reply.work,
            reply,
        }
    }

    /// Frames the response and starts writing it, by `--write-timeout-ms` from now.
    fn respond(&mut self, cx: Cx<'_>, now: Instant, mut reply: Reply) -> State {
        if cx.draining {
            reply.response.persistence = Persistence::Close;
        }
        let after = match reply.response.persistence {
            Persistence::KeepAlive { .. } => After::KeepReading,
            Persistence::Close => After::Close {
                unread: reply.unread,
            },
        };
        let out = reply.response.to_bytes(&Utc::now().http_format());
        let logged = Logged {
            status: reply.response.status.code(),
            ..reply.logged
        };
        State::Writing {
            out,
            sent: 0,
            by: now + cx.server.config.write_timeout,
            after,
            logged,
        }
    }

    /// Answers a request that cannot be served with the rejection's status, then closes.
    fn reject(&mut self, cx: Cx<'_>, now: Instant, since: Instant, rejection: Rejection) -> State {
        let line = self.input.request_line().unwrap_or("-").to_string();
        self.respond(
            cx,
            now,
            reply(Response::rejection(rejection), line, since, true),
        )
    }

    /// Answers 408 to a request that did not arrive in time.
    fn time_out(&mut self, cx: Cx<'_>, now: Instant, line: String, started: Instant) -> State {
        bump(&cx.server.stats.timeouts);
        let ms = cx.server.config.header_timeout.as_millis();
        let response = Response::text(
            Status::RequestTimeout,
            format!("408 Request Timeout: no complete request within {ms} ms\n"),
        );
        self.respond(cx, now, reply(response, line, started, true))
    }

    /// Writes until the response is out or the socket's send buffer is full.
    #[allow(clippy::too_many_arguments)] // the fields of State::Writing, by value
    fn write(
        &mut self,
        cx: Cx<'_>,
        now: Instant,
        out: Vec<u8>,
        mut sent: usize,
        by: Instant,
        after: After,
        logged: Logged,
    ) -> Next {
        while sent < out.len() {
            match self.stream.write(&out[sent..]) {
                Ok(0) => {
                    cx.server
                        .connection_error(self.peer, "write failed", &"wrote nothing");
                    return Next::Go(State::Closed);
                }
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The send buffer is full: a writable event says when there is room again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Next::Wait(State::Writing {
                        out,
                        sent,
                        by,
                        after,
                        logged,
                    })
                }
                Err(e) => {
                    cx.server.connection_error(self.peer, "write failed", &e);
                    return Next::Go(State::Closed);
                }
            }
        }
        // Served: in the kernel's send buffer, which says nothing of the client reading it.
        bump(&cx.server.stats.served);
        if !cx.server.config.quiet {
            let took = now.duration_since(logged.started);
            logging::request(self.peer, &logged.line, logged.status, took, Duration::ZERO);
        }
        match after {
            After::KeepReading if !cx.draining => {
                // An idle connection keeps no buffer: stage 07's idle regulars cost little.
                self.input.release();
                Next::Go(State::Idle { since: now })
            }
            // Nothing left unread that we know of: close. (As in the blocking stages, bytes
            // the client sent after what we read would make the close a reset; a client
            // that pipelines to a server that does not keep connections gets one.)
            After::KeepReading | After::Close { unread: false } if self.input.is_empty() => {
                Next::Go(State::Closed)
            }
            After::KeepReading | After::Close { .. } => {
                // FIN first, then read what the client still sends, so it is not reset.
                if self.stream.shutdown(Shutdown::Write).is_err() {
                    return Next::Go(State::Closed);
                }
                Next::Go(State::Lingering {
                    until: now + LINGER,
                    quiet_by: now + LINGER_IDLE,
                    drained: self.input.bytes().len(),
                })
            }
        }
    }

    /// Reads and throws away what the client still sends after our FIN, while it sends.
    fn linger(
        &mut self,
        now: Instant,
        until: Instant,
        mut quiet_by: Instant,
        mut drained: usize,
    ) -> Next {
        let mut scratch = [0u8; 4096];
        while drained < LINGER_BYTES {
            match read_now(&mut self.stream, &mut scratch, &mut self.maybe_more) {
                Arrived::Bytes(n) => {
                    drained += n;
                    quiet_by = now + LINGER_IDLE;
                }
                Arrived::Nothing => {
                    return Next::Wait(State::Lingering {
                        until,
                        quiet_by,
                        drained,
                    })
                }
                // Closing anyway: an error needs no line of its own.
                Arrived::End | Arrived::Error(_) => return Next::Go(State::Closed),
            }
        }
        Next::Go(State::Closed)
    }
}

/// What one read of a non-blocking socket gave.
enum Arrived {
    /// Some bytes, at least one.
    Bytes(usize),
    /// The client has closed its side: nothing more will come.
    End,
    /// Nothing now (`WouldBlock`): the next readable event says when.
    Nothing,
    Error(io::Error),
}

/// One read into `buf`, read again if a signal interrupted it. It keeps `maybe_more`, which
/// spares the loop a read that would find nothing: a read that fills `buf` may have left
/// bytes behind, a shorter one took all the kernel had (what comes later brings an event).
fn read_now(stream: &mut TcpStream, buf: &mut [u8], maybe_more: &mut bool) -> Arrived {
    loop {
        return match stream.read(buf) {
            Ok(0) => Arrived::End,
            Ok(n) => {
                *maybe_more = n == buf.len();
                Arrived::Bytes(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *maybe_more = false;
                Arrived::Nothing
            }
            Err(e) => Arrived::Error(e),
        };
    }
}

fn reply(response: Response, line: String, started: Instant, unread: bool) -> Reply {
    Reply {
        logged: Logged {
            line,
            status: response.status.code(),
            started,
        },
        response,
        work: Duration::ZERO,
        cpu: Duration::ZERO,
        unread,
    }
}

fn abandoned(cx: Cx<'_>, peer: SocketAddr, logged: &Logged) {
    bump(&cx.server.stats.abandoned);
    if !cx.server.config.quiet {
        logging::abandoned(peer, &logged.line, logged.started.elapsed());
    }
}
