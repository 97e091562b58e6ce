//! The event loop's connections (stages 06 and 07): every [`Conn`] by token, their timers, the
//! bound on how many are held, and the end at Ctrl-C.
//!
//! The stage's `main` runs the loop: it polls, hands each event to [`Connections::ready`],
//! fires the timers that are due, and accepts while [`Connections::has_room`]. This module is
//! the bookkeeping around that loop, so the loop itself stays in view:
//!
//! - a connection is kept in a [`Slab`], its index is its mio [`Token`];
//! - after anything happens to a connection, `Connections::settle` drops it if it is closed
//!   or makes sure a timer is set for its next deadline;
//! - `--max-conns` is stage 03's bound again, kept the same way: at the limit the loop stops
//!   accepting, so new clients wait in the kernel's backlog, and it accepts again as soon as
//!   one connection closes. The descriptor limit may lower it (see `src/limits.rs`). Stage 07
//!   adds one thing: at the limit, the connection that has been idle the longest between two
//!   requests is closed to make room, so idle regulars cannot lock new clients out (nginx
//!   does the same, "reusing connections");
//! - an accept error that costs a pause (out of descriptors, say) pauses accepting until a
//!   timer says so: the loop must never sleep, nor spin on an error that repeats.
//!
//! Introduced in chapter 6 (`docs/06-event-loop.md`).

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::event_loop::conn::{Conn, Cx, Reuse};
use crate::event_loop::kitchen::Hatch;
use crate::event_loop::slab::Slab;
use crate::event_loop::timers::Timers;
use crate::listener::AcceptBackoff;
use crate::server::Server;
use crate::stats::bump;
use crate::{limits, logging, shutdown};

/// Every connection of an event loop, and what it takes to keep them.
#[derive(Debug)]
pub struct Connections {
    around: Around,
    slab: Slab<Conn>,
    timers: Timers,
    /// Stage 07: the connections idle between two requests, as `(since, token, id)`, the
    /// longest idle first: the one to close when the bound is reached.
    idle: BTreeSet<(Instant, usize, u64)>,
    /// `--max-conns`, or fewer if the descriptor limit is lower.
    max: usize,
    backoff: AcceptBackoff,
    /// No accepting until then: the pause after an accept error.
    accept_paused_until: Option<Instant>,
}

/// What every connection's state machine is told ([`Cx`]), kept apart from the slab so that a
/// connection can be borrowed from the slab while its context is borrowed from here.
#[derive(Debug)]
struct Around {
    server: Arc<Server>,
    reuse: Reuse,
    /// Ctrl-C came: finish what is in progress, keep nothing open.
    draining: bool,
    /// Stage 08: where computing goes, and where it comes back.
    kitchen: Option<Hatch>,
    /// Stage 09: which of the server's loops this is.
    lane: Option<usize>,
}

impl Around {
    fn cx(&self) -> Cx<'_> {
        Cx {
            server: &self.server,
            reuse: self.reuse,
            draining: self.draining,
            kitchen: self.kitchen.as_ref(),
            lane: self.lane.and_then(|i| self.server.stats.loops.get(i)),
        }
    }
}

impl Connections {
    /// An empty table for `server`; `reuse` says whether a connection may carry more than one
    /// request (stage 07) or not (stage 06).
    pub fn new(server: &Arc<Server>, reuse: Reuse) -> Connections {
        Connections {
            around: Around {
                server: Arc::clone(server),
                reuse,
                draining: false,
                kitchen: None,
                lane: None,
            },
            slab: Slab::new(),
            timers: Timers::new(),
            idle: BTreeSet::new(),
            max: limits::connections_allowed(server.config.max_conns),
            backoff: AcceptBackoff::new(),
            accept_paused_until: None,
        }
    }

    /// Stage 08: computing goes to the kitchen through `hatch` instead of being done on the
    /// loop.
    pub fn with_kitchen(mut self, hatch: Hatch) -> Connections {
        self.around.kitchen = Some(hatch);
        self
    }

    /// Stage 09: this table is loop number `lane` of the server's `--loops`: it holds at most
    /// its share of `--max-conns`, and counts what it does in that loop's figures. A loop
    /// bounds only its own connections, since the loops never wait for one another: a loop at
    /// its share leaves its clients in its own listener's backlog, as stage 06 does.
    pub fn on_loop(mut self, lane: usize) -> Connections {
        let loops = self.around.server.config.loops.max(1);
        self.max = (self.max / loops).max(1);
        self.around.lane = Some(lane);
        self
    }

    /// Stage 09: the loop was told clients were waiting, and found none: another loop took
    /// them (only with one listener shared by every loop).
    pub fn accept_missed(&self) {
        if let Some(lane) = self.around.cx().lane {
            bump(&lane.accept_misses);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Whether another connection may be accepted now: not pausing after an accept error,
    /// and below the limit, or at it with an idle kept connection to close for room.
    pub fn has_room(&mut self) -> bool {
        if let Some(until) = self.accept_paused_until {
            if Instant::now() < until {
                return false;
            }
            self.accept_paused_until = None;
        }
        self.slab.len() < self.max || self.close_longest_idle()
    }

    /// Stage 07, at the limit: closes the connection idle the longest, if any, so a new client
    /// is not locked out by regulars who only sit. Returns whether one was closed.
    fn close_longest_idle(&mut self) -> bool {
        let Some(&(since, token, id)) = self.idle.first() else {
            return false;
        };
        match self.slab.get_mut(token) {
            Some(conn) if conn.id == id => {
                conn.close(self.around.cx());
                bump(&self.around.server.stats.idle_closed_for_room);
                self.settle(token, false);
            }
            // Cannot happen (`settle` takes a connection off the list when it closes), but a
            // stale entry must not stay first for ever.
            _ => {
                self.idle.remove(&(since, token, id));
            }
        }
        self.slab.len() < self.max
    }

    /// Takes on an accepted connection: watches its socket, and reads what it sent already.
    pub fn open(&mut self, registry: &Registry, stream: TcpStream, peer: SocketAddr) {
        let now = Instant::now();
        let cx = self.around.cx();
        let id = cx.server.opened();
        let token = self.slab.insert(Conn::new(stream, peer, id, now));
        let Some(conn) = self.slab.get_mut(token) else {
            return;
        };
        conn.token = token;
        // Readable and writable, once for the connection's whole life: with edge-triggered
        // events, an interest that is always there costs nothing until something changes.
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = registry.register(&mut conn.stream, Token(token), interest) {
            cx.server
                .connection_error(peer, "cannot watch the connection", &e);
            self.slab.remove(token);
            cx.server.closed();
            return;
        }
        if let Some(lane) = cx.lane {
            bump(&lane.accepted);
            lane.connections_open.up();
        }
        let more = conn.run(cx, now);
        self.settle(token, more);
    }

    /// `accept()` failed: log it and, unless the error was about that one client only, stop
    /// accepting for a while (a timer, not a sleep).
    pub fn accept_failed(&mut self, error: &io::Error) {
        if let Some(pause) = self.backoff.after(error) {
            self.accept_paused_until = Some(Instant::now() + pause);
        }
    }

    /// An event for a connection: move it along. An event for a token no connection has (a
    /// spurious one, or one for a connection closed a moment ago) does nothing.
    pub fn ready(&mut self, event: &Event) {
        let token = event.token().0;
        let cx = self.around.cx();
        let Some(conn) = self.slab.get_mut(token) else {
            return;
        };
        let readable = event.is_readable() || event.is_error();
        conn.note_event(readable, event.is_read_closed());
        let more = conn.run(cx, Instant::now());
        self.settle(token, more);
    }

    /// Acts on every deadline that has passed.
    pub fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some((when, token, id)) = self.timers.pop_due(now) {
            let cx = self.around.cx();
            let Some(conn) = self.slab.get_mut(token) else {
                continue; // that connection is gone
            };
            if conn.id != id {
                continue; // the token now belongs to a newer connection
            }
            if conn.armed == Some(when) {
                conn.armed = None;
            }
            // A deadline that has passed acts; a timer for a deadline that has since moved
            // later, or one set to come back to a connection with more to do, moves the
            // connection along as an event would.
            let more = if conn.deadline(cx).is_some_and(|deadline| deadline <= now) {
                conn.on_deadline(cx, now)
            } else {
                conn.run(cx, now)
            };
            self.settle(token, more);
        }
    }

    /// Stage 08: the kitchen's bell rang. Takes every dish that is ready and moves its
    /// connection on. A dish for a connection that has left, or whose token now belongs to a
    /// newer connection, finds no connection of its number, and is dropped.
    pub fn serve_cooked(&mut self) {
        let now = Instant::now();
        while let Some(order) = self.around.kitchen.as_ref().and_then(Hatch::next_ready) {
            let cx = self.around.cx();
            let Some(conn) = self.slab.get_mut(order.token) else {
                continue;
            };
            if conn.id != order.id {
                continue;
            }
            let more = conn.on_cooked(cx, now);
            self.settle(order.token, more);
        }
    }

    /// How long the loop may sleep: until the earliest timer, or the end of an accept pause.
    /// `None`: until a socket is ready, however long that takes. A pause that has ended counts
    /// no more: a zero timeout for it on every turn would make the loop spin.
    pub fn next_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let pause = self
            .accept_paused_until
            .filter(|&until| until > now)
            .map(|until| until - now);
        match (self.timers.timeout(now), pause) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// After a connection moved: drop it if it closed, or make sure a timer is set for its
    /// next deadline. `more`: it stopped with more to do and no event to come for it, so a
    /// timer due at once brings the loop back to it after the others have had their turn.
    fn settle(&mut self, token: usize, more: bool) {
        let cx = self.around.cx();
        let Some(conn) = self.slab.get_mut(token) else {
            return;
        };
        let idle_since = if conn.is_closed() {
            None
        } else {
            conn.idle_since()
        };
        if conn.listed_idle != idle_since {
            if let Some(since) = conn.listed_idle {
                self.idle.remove(&(since, token, conn.id));
            }
            if let Some(since) = idle_since {
                self.idle.insert((since, token, conn.id));
            }
            conn.listed_idle = idle_since;
        }
        if conn.is_closed() {
            // Dropping the socket closes it, which also takes it off the poller's list.
            self.slab.remove(token);
            cx.server.closed();
            if let Some(lane) = cx.lane {
                lane.connections_open.down();
            }
            return;
        }
        let next = if more {
            Some(Instant::now())
        } else {
            conn.deadline(cx)
        };
        if let Some(when) = next {
            // A later deadline is found by the earlier timer, which is checked when it fires.
            if conn.armed.is_none_or(|armed| when < armed) {
                self.timers.add(when, token, conn.id);
                conn.armed = Some(when);
            }
        }
    }

    /// After Ctrl-C, with the listener closed: closes the connections that have sent nothing
    /// (new ones, and idle persistent ones: nobody waits on them), lets the others finish
    /// their requests, with `Connection: close`, and returns when none is left or
    /// `--drain-ms` has passed. Whatever is still open then is cut when the process ends.
    pub fn finish_in_progress(&mut self, poll: &mut Poll, events: &mut Events) {
        self.around.draining = true;
        // Nothing is accepted any more: a pause after an accept error must not shorten the
        // waits below.
        self.accept_paused_until = None;
        for token in self.slab.keys() {
            if let Some(conn) = self.slab.get_mut(token) {
                if conn.is_idle() {
                    conn.close(self.around.cx());
                }
            }
            self.settle(token, false);
        }
        let until = shutdown::drain_deadline(&self.around.server);
        while !self.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let timeout = self.next_timeout().map_or(left, |t| t.min(left));
            if let Err(e) = poll.poll(events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                logging::warn(format_args!("poll failed while draining: {e}"));
                break;
            }
            for event in events.iter() {
                self.ready(event);
            }
            self.fire_timers();
            self.serve_cooked();
        }
    }
}
