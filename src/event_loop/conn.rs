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
//!                                                  │             ▲ stage 08: the kitchen's
//!                                                  └─► Cooking ──┘ bell (`--cpu-ms`)
//!    ▲  │ deadline: 408 (nothing sent: closed) ─────────────────────────────────────► │     │
//!    │  ▼ end-of-file: closed                                                         │     │
//!    │                                                          Closed ◄── Lingering ◄┘     │
//!    │                                                                                      │
//!    └── a request's first byte ── Idle ◄──── stage 07: the connection stays open ──────────┘
//!                                   │ idle too long, Ctrl-C, or room needed: closed quietly
//! ```
//!
//! From an event to the `read()` it causes is three calls: the table's
//! [`ready`](crate::event_loop::connections::Connections::ready) calls [`Conn::run`], which
//! calls the step of the state the connection is in (`head`, say), which calls `read`, the one
//! place a request's bytes are read. Each returns one thing: `run` whether it must come back,
//! a step the [`Next`] state, `read` what [`Arrived`].
//!
//! `run` does everything that can be done without waiting: it reads until the socket says
//! `WouldBlock`, writes until it says `WouldBlock`, moves from state to state, and returns when
//! the connection must wait for its socket or its timer. mio's events are edge-triggered: a
//! socket that is not drained to `WouldBlock` may never be reported ready again (chapter 6
//! shows that bug). So `run` never stops reading or writing while there is more, and running
//! when nothing is ready is harmless: a spurious event costs one `WouldBlock`. One exception,
//! kept in one place (`Conn::may_read`): stage 07 does not read between requests after a
//! read that came back short.
//!
//! What stage 07 adds to the machine is marked "Stage 07" below: [`Reuse`], the `Idle` state
//! and its step, the choice of persistence in `start`, and where `write` goes after a response.
//! Stage 08 adds the `Cooking` state: the computing part of the work is done by the kitchen
//! ([`crate::event_loop::kitchen`]), and `work` hands it over instead of computing.
//!
//! Everything HTTP comes from the modules the blocking stages use: [`Input`] and
//! [`http::parse_head`] read the head, [`handler::route`] decides the answer, [`Body`] finds
//! the end of a body, [`Response::frame`] frames the answer. One parser, one router.
//!
//! Introduced in chapter 6 (`docs/06-event-loop.md`); chapter 7 adds keep-alive.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::clock::Utc;
use crate::event_loop::kitchen::{Full, Hatch, Order};
use crate::http::body::Body;
use crate::http::handler::{self, compute_for, peer_has_left, Route};
use crate::http::{
    self, Framed, Input, Persistence, Rejection, Request, Response, Status, Version,
};
use crate::http::{LINGER, LINGER_BYTES, LINGER_IDLE};
use crate::logging;
use crate::server::Server;
use crate::stats::{bump, LoopStats};

/// The most state changes one call of `run` makes, so one busy connection (a client
/// pipelining requests as fast as it can) cannot hold the loop for ever: after them the loop
/// serves the others and comes back (a timer due at once, see `Connections::settle`).
const STEPS_PER_TURN: usize = 64;

/// Stage 07: whether a connection may carry more than one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// One request per connection, then close (stage 06, like every blocking stage).
    Never,
    /// Persistent connections (stage 07): after a response, read the next request; close an
    /// idle connection after `idle`, and any connection after `max_requests`.
    KeepAlive { idle: Duration, max_requests: u64 },
}

impl Reuse {
    /// Whether the connection stays open after the response to `request`, its `requests`th:
    /// stage 07 keeps it if the client wants it, it is below `--max-requests`, and Ctrl-C has
    /// not come (`draining`).
    pub fn persistence(self, request: &Request<'_>, requests: u64, draining: bool) -> Persistence {
        match self {
            Reuse::KeepAlive { idle, max_requests }
                if request.wants_persistence() && requests < max_requests && !draining =>
            {
                Persistence::KeepAlive {
                    idle,
                    http10: request.version == Version::Http10,
                }
            }
            _ => Persistence::Close,
        }
    }
}

/// Where a connection is, with exactly the data that step needs.
#[derive(Debug)]
pub enum State {
    /// Reading a request head. `since`: when the request began, at `accept()` for the first
    /// request and at the first byte of each later one (stage 07). The whole request is due by
    /// `since + --header-timeout-ms`.
    Head { since: Instant },
    /// Stage 07: between two requests of a persistent connection, no byte of the next one
    /// received yet: closed quietly once it has been idle for `--keep-alive-ms`.
    Idle { since: Instant },
    /// Reading the request's body to its end and throwing it away, by `by`. `go_ahead`: bytes
    /// of `100 Continue` still to write, before the client sends the body.
    Body {
        body: Body,
        go_ahead: usize,
        by: Instant,
        reply: Reply,
    },
    /// Stage 08: the kitchen is computing the request's `--cpu-ms`; its bell brings the
    /// connection back (`Conn::on_cooked`). No deadline: a computation cannot be stopped, and
    /// the bound on the kitchen's queue bounds the wait.
    Cooking { reply: Reply },
    /// The simulated work is under way; the answer is written when the timer fires at `until`.
    Working { until: Instant, reply: Reply },
    /// Writing `out` from byte `sent` on, which must be done by `by`; then `after`. The body
    /// in `out` is shared with every other response of the same body, not a copy.
    Writing {
        out: Framed,
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
            State::Body { .. }
                | State::Cooking { .. }
                | State::Working { .. }
                | State::Writing { .. }
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
    /// Stage 07: read the next request.
    KeepReading,
}

/// What one step of the state machine comes to.
pub enum Next {
    /// The connection must wait, in this state, for its socket or its timer.
    Wait(State),
    /// It moved on: take the next step at once.
    Go(State),
}

/// What one read of the socket gave.
pub enum Arrived {
    /// Some bytes, at least one, now in `input`.
    Bytes,
    /// Nothing now (`WouldBlock`): the next readable event says when.
    Nothing,
    /// The client has closed its side: nothing more will come.
    End,
    /// No room for more: the head is too large. Answer this.
    Refused(Rejection),
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
    /// Stage 08: where computing goes; `None` in 06 and 07, which compute on the loop.
    pub kitchen: Option<&'a Hatch>,
    /// Stage 09: this loop's own counters; `None` with a single loop.
    pub lane: Option<&'a LoopStats>,
}

/// One connection: its socket, its state and its bytes.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Unique over the whole run (the stage's accepted count), unlike the token, which a newer
    /// connection may get once this one is closed: a timer carries both.
    pub id: u64,
    /// Its index in the table, which its events and the kitchen's orders carry.
    pub(crate) token: usize,
    state: State,
    input: Input,
    /// Requests this connection has carried so far.
    requests: u64,
    /// The earliest timer in the heap for this connection, so that a deadline that only moved
    /// later needs no new one.
    pub(crate) armed: Option<Instant>,
    /// Since when this connection is in the table's list of idle ones (stage 07), if it is.
    pub(crate) listed_idle: Option<Instant>,
    /// Whether the socket may hold bytes not read yet: false once a read comes back short (the
    /// kernel gave all it had), true again with every event that says it is readable.
    maybe_more: bool,
    /// The client's FIN has been reported. It stays: an end does not un-arrive, and the event
    /// that reported it may be the one that brought the last request too.
    fin: bool,
}

impl Conn {
    /// A connection just accepted: its first request is due within `--header-timeout-ms`.
    pub fn new(stream: TcpStream, peer: SocketAddr, id: u64, now: Instant) -> Conn {
        Conn {
            stream,
            peer,
            id,
            token: 0,
            state: State::Head { since: now },
            input: Input::new(),
            requests: 0,
            armed: None,
            listed_idle: None,
            maybe_more: true,
            fin: false,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether no byte of a request has come since the connection opened or its last
    /// response (empty lines do not count): Ctrl-C need not wait for it, and at `--max-conns`
    /// the longest idle one makes room for a new client.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head { .. } | State::Idle { .. })
            && !self.input.holds_a_request()
    }

    /// Stage 07: since when a kept connection has been idle between two requests.
    pub fn idle_since(&self) -> Option<Instant> {
        match self.state {
            State::Idle { since } if !self.input.holds_a_request() => Some(since),
            _ => None,
        }
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
            State::Cooking { .. } => None,
            State::Lingering {
                until, quiet_by, ..
            } => Some((*until).min(*quiet_by)),
            State::Closed => None,
        }
    }

    /// An event came for the socket: note what it says. `readable`: bytes (or an end, or an
    /// error) may have come since the last read. `read_closed`: the client's FIN is in.
    pub fn note_event(&mut self, readable: bool, read_closed: bool) {
        self.maybe_more |= readable || read_closed;
        self.fin |= read_closed;
    }

    /// Whether a read now could find anything. A read that came back short took all the
    /// kernel had, and what arrives later brings a readable event; but a FIN that arrived in
    /// the same event as the bytes before it brings no event of its own, so once reported it
    /// always makes a read worth it. Only stage 07's `Idle` asks: every other state reads until
    /// `WouldBlock`.
    fn may_read(&self) -> bool {
        self.maybe_more || self.fin
    }

    /// Does everything that can be done now without waiting, state after state, and returns
    /// when the connection must wait for its socket or its timer, or is closed: `false`.
    /// Returns `true` if it stopped only because its turn was over (`STEPS_PER_TURN`) with
    /// more to do: then no event will come for what is left (the bytes are already here), so
    /// the caller must come back to it soon, as an edge-triggered loop must.
    pub fn run(&mut self, cx: Cx<'_>, now: Instant) -> bool {
        for _ in 0..STEPS_PER_TURN {
            let state = std::mem::replace(&mut self.state, State::Closed);
            let was_in_flight = state.in_flight();
            let next = match state {
                State::Head { since } => self.head(cx, now, since),
                State::Idle { since } => self.idle(cx, now, since),
                State::Body {
                    body,
                    go_ahead,
                    by,
                    reply,
                } => self.body(cx, now, body, go_ahead, by, reply),
                // The client closed its side while the work was under way: nobody waits for
                // the answer any more (nginx's 499).
                // (Stage 08: the order still cooks, as nothing can stop a computation; its
                // dish, when it comes, finds no connection of this number and is dropped.)
                State::Working { reply, .. } | State::Cooking { reply } if self.fin => {
                    abandoned(cx, self.peer, &reply.logged);
                    Next::Go(State::Closed)
                }
                State::Working { .. } | State::Cooking { .. } | State::Closed => Next::Wait(state),
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
            };
            if !self.enter(cx, was_in_flight, next) {
                return false;
            }
        }
        true
    }

    /// The connection's deadline has passed: answer 408, end the work, close an idle
    /// connection, give up on a write or a linger. Then go on from there.
    pub fn on_deadline(&mut self, cx: Cx<'_>, now: Instant) -> bool {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let was_in_flight = state.in_flight();
        let next = self.expire(cx, now, state);
        self.enter(cx, was_in_flight, next);
        self.run(cx, now)
    }

    /// Stage 08: the kitchen's bell rang with this connection's order: the computing is done,
    /// and the waiting part of the work (`--work-ms`) comes next, or the answer.
    pub fn on_cooked(&mut self, cx: Cx<'_>, now: Instant) -> bool {
        if !matches!(self.state, State::Cooking { .. }) {
            return false;
        }
        if let State::Cooking { reply } = std::mem::replace(&mut self.state, State::Closed) {
            let next = self.wait_for_work(cx, now, reply);
            self.enter(cx, true, Next::Go(next));
        }
        self.run(cx, now)
    }

    /// Closes the connection now; the table drops it once it sees it closed.
    pub fn close(&mut self, cx: Cx<'_>) {
        let was_in_flight = self.state.in_flight();
        self.enter(cx, was_in_flight, Next::Go(State::Closed));
    }

    /// Makes `next` the connection's state. The stage's count of requests in flight follows
    /// from the old state and the new one, so no flag can disagree with it. Returns whether to
    /// take another step.
    fn enter(&mut self, cx: Cx<'_>, was_in_flight: bool, next: Next) -> bool {
        let (state, go_on) = match next {
            Next::Wait(state) => (state, false),
            Next::Go(state) => (state, true),
        };
        let gauge = &cx.server.stats.in_flight;
        match (was_in_flight, state.in_flight()) {
            (false, true) => gauge.up(),
            (true, false) => gauge.down(),
            _ => {}
        }
        self.state = state;
        go_on && !self.is_closed()
    }

    /// What a passed deadline does to each state.
    fn expire(&mut self, cx: Cx<'_>, now: Instant, state: State) -> Next {
        match state {
            // Not a byte of a request in all that time: there is nothing to answer, so the
            // connection is closed without one, as nginx and Go's net/http do.
            State::Head { since } if !self.input.holds_a_request() => {
                bump(&cx.server.stats.timeouts);
                if !cx.server.config.quiet {
                    logging::no_request(self.peer, now.duration_since(since));
                }
                Next::Go(State::Closed)
            }
            State::Head { since } => {
                let line = self.input.request_line().unwrap_or("-").to_string();
                Next::Go(self.time_out(cx, now, line, since))
            }
            State::Body { reply, .. } => {
                let Logged { line, started, .. } = reply.logged;
                Next::Go(self.time_out(cx, now, line, started))
            }
            // Stage 07: no 408 to a client that has sent nothing since its last response.
            State::Idle { .. } => Next::Go(State::Closed),
            State::Working { reply, .. } => Next::Go(self.respond(cx, now, reply)),
            // No deadline is set for it; a timer from an earlier state finds it waiting.
            State::Cooking { reply } => Next::Wait(State::Cooking { reply }),
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

    /// Reads until the request head is complete, then starts on the request.
    fn head(&mut self, cx: Cx<'_>, now: Instant, since: Instant) -> Next {
        loop {
            match self.input.head_len() {
                Ok(Some(head_len)) => return Next::Go(self.start(cx, now, since, head_len)),
                Ok(None) => {}
                Err(rejection) => return Next::Go(self.reject(cx, now, since, rejection)),
            }
            match self.read(cx) {
                Arrived::Bytes => {}
                Arrived::Nothing => return Next::Wait(State::Head { since }),
                Arrived::End => {
                    // The client left before a whole request: nothing to answer.
                    if self.requests == 0 && !cx.server.config.quiet {
                        logging::no_request(self.peer, now.duration_since(since));
                    }
                    return Next::Go(State::Closed);
                }
                Arrived::Refused(rejection) => {
                    return Next::Go(self.reject(cx, now, since, rejection))
                }
                Arrived::Failed => return Next::Go(State::Closed),
            }
        }
    }

    /// Stage 07, between requests: the first byte of a request (already here when pipelined)
    /// starts it, and its deadline counts from now. Empty lines are not a request. Ctrl-C
    /// closes an idle connection, even one whose last response said it would stay open: no
    /// request is in progress on it, and a persistent connection may be closed whenever it is
    /// idle (RFC 9112 section 9.5); its client sends its next request on a new one.
    fn idle(&mut self, cx: Cx<'_>, now: Instant, since: Instant) -> Next {
        loop {
            if self.input.holds_a_request() {
                return Next::Go(State::Head { since: now });
            }
            if cx.draining {
                return Next::Go(State::Closed);
            }
            // The last read was short: the client had sent nothing more then, and whatever it
            // sends now brings a readable event. Reading at once would mostly find nothing,
            // and a quick client's next request, when it is there, would jump ahead of the
            // others'.
            if !self.may_read() {
                return Next::Wait(State::Idle { since });
            }
            match self.read(cx) {
                Arrived::Bytes => {}
                Arrived::Nothing => return Next::Wait(State::Idle { since }),
                Arrived::End | Arrived::Failed => return Next::Go(State::Closed),
                Arrived::Refused(rejection) => {
                    return Next::Go(self.reject(cx, now, now, rejection))
                }
            }
        }
    }

    /// One read of the socket into `input`: the only place the event loop reads a request's
    /// bytes, so the short-read rule ([`Conn::may_read`]) is kept here and nowhere else. An
    /// empty input is read into a buffer on the stack first and copied in only when bytes came:
    /// a connection that has sent nothing (ten thousand idle ones, say) holds no buffer.
    fn read(&mut self, cx: Cx<'_>) -> Arrived {
        let mut first = [0u8; http::FIRST_READ];
        let into_first = self.input.is_empty();
        let buf = if into_first {
            &mut first[..]
        } else {
            match self.input.space() {
                Ok(space) => space,
                Err(rejection) => return Arrived::Refused(rejection),
            }
        };
        let asked = buf.len();
        let result = loop {
            match self.stream.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => break result,
            }
        };
        match result {
            Ok(0) => Arrived::End,
            Ok(n) => {
                self.maybe_more = n == asked;
                if into_first {
                    if let Err(rejection) = self.input.push(&first[..n]) {
                        return Arrived::Refused(rejection);
                    }
                } else {
                    self.input.fill(n);
                }
                Arrived::Bytes
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.maybe_more = false;
                Arrived::Nothing
            }
            Err(e) => {
                cx.server.connection_error(self.peer, "read failed", &e);
                Arrived::Failed
            }
        }
    }

    /// A complete head is at the front of `input`: parse it, route it, and start on it.
    fn start(&mut self, cx: Cx<'_>, now: Instant, since: Instant, head_len: usize) -> State {
        let server = cx.server;
        bump(&server.stats.requests);
        if let Some(lane) = cx.lane {
            bump(&lane.requests);
        }
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
        let persistence = cx.reuse.persistence(&request, self.requests, cx.draining);
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
            // Everything in `input` was body, so it is empty now and has room.
            match self.read(cx) {
                Arrived::Bytes => {}
                Arrived::Nothing => {
                    return Next::Wait(State::Body {
                        body,
                        go_ahead,
                        by,
                        reply,
                    });
                }
                Arrived::End | Arrived::Refused(_) | Arrived::Failed => {
                    return Next::Go(State::Closed)
                }
            }
        }
    }

    /// Starts the work of a request. The computing part: in stages 06 and 07 right now, on
    /// this thread, which stalls every other connection (that is `--cpu-ms`'s lesson); in
    /// stage 08 handed to the kitchen. The waiting part is a timer. No thread sleeps.
    fn work(&mut self, cx: Cx<'_>, now: Instant, mut reply: Reply) -> State {
        if reply.work.is_zero() && reply.cpu.is_zero() {
            return self.respond(cx, now, reply);
        }
        // A client that has already gone wants no work.
        if self.fin || peer_has_left(&self.stream) {
            abandoned(cx, self.peer, &reply.logged);
            return State::Closed;
        }
        let cpu = std::mem::take(&mut reply.cpu);
        if let (Some(kitchen), false) = (cx.kitchen, cpu.is_zero()) {
            let order = Order {
                token: self.token,
                id: self.id,
            };
            return match kitchen.cook(order, cpu) {
                Ok(()) => State::Cooking { reply },
                Err(Full) => {
                    let Logged { line, started, .. } = reply.logged;
                    let busy = Response::text(
                        Status::ServiceUnavailable,
                        "503 Service Unavailable: the kitchen is full; try again in a second\n",
                    );
                    self.respond(cx, now, self::reply(busy, line, started, false))
                }
            };
        }
        compute_for(cpu);
        self.wait_for_work(cx, Instant::now(), reply)
    }

    /// The waiting part of the work (`--work-ms`): a timer, or the answer if there is none.
    fn wait_for_work(&mut self, cx: Cx<'_>, now: Instant, reply: Reply) -> State {
        if reply.work.is_zero() {
            return self.respond(cx, now, reply);
        }
        State::Working {
            until: now + reply.work,
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
        let out = reply.response.frame(&Utc::now().http_format());
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
        out: Framed,
        mut sent: usize,
        by: Instant,
        after: After,
        logged: Logged,
    ) -> Next {
        while sent < out.len() {
            match out.write_from(&mut self.stream, sent) {
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
            // Stage 07: the connection stays open for the next request. An idle connection
            // keeps no buffer: stage 07's idle regulars cost little.
            After::KeepReading => {
                self.input.release();
                Next::Go(State::Idle { since: now })
            }
            // Nothing left unread that we know of: close. (As in the blocking stages, bytes
            // the client sent after what we read would make the close a reset; a client
            // that pipelines to a server that does not keep connections gets one.)
            After::Close { unread: false } if self.input.is_empty() => Next::Go(State::Closed),
            After::Close { .. } => {
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
            match self.stream.read(&mut scratch) {
                Ok(0) => return Next::Go(State::Closed),
                Ok(n) => {
                    drained += n;
                    quiet_by = now + LINGER_IDLE;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Next::Wait(State::Lingering {
                        until,
                        quiet_by,
                        drained,
                    })
                }
                // Closing anyway: an error needs no line of its own.
                Err(_) => return Next::Go(State::Closed),
            }
        }
        Next::Go(State::Closed)
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
