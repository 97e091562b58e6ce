//! The reactor: the mio poller, and for each socket the wakers of the tasks waiting on it.
//!
//! A socket is registered once, for reading and writing, edge-triggered, as in stage 06. For
//! each direction the reactor keeps a *readiness*: set when the poller reports the socket,
//! cleared when a read (or write) says `WouldBlock`. A task waits only while the readiness
//! is clear, leaving its waker here; the next event sets it and wakes the task, which tries
//! again. That is chapter 6's edge-triggered rule in one place: a readiness is cleared only
//! by a `WouldBlock`, so a task never waits for bytes that are already there, and a FIN that
//! came with the last request is never lost (the readiness it set stays until a read finds
//! the end). It starts set: a new socket is tried before anyone waits on it. tokio keeps its
//! readiness the same way.

use std::io;
use std::task::Waker;
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Poll, Token};

use crate::event_loop::slab::Slab;

/// The token of the poller's own waker, rung when a task is woken from another thread.
const WAKE: Token = Token(usize::MAX);

/// Which way a task waits on a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// The poller and the waiting tasks, by the token each socket was registered with.
pub struct Reactor {
    poll: Poll,
    events: Events,
    sockets: Slab<Waiting>,
}

/// One socket's readiness and its waiting tasks, for each direction.
struct Waiting {
    readable: bool,
    writable: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Default for Waiting {
    fn default() -> Waiting {
        Waiting {
            readable: true,
            writable: true,
            reader: None,
            writer: None,
        }
    }
}

impl Reactor {
    pub fn new() -> io::Result<Reactor> {
        Ok(Reactor {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            sockets: Slab::new(),
        })
    }

    /// The poller's waker: rung, it ends a `poll` that sleeps.
    pub fn waker(&self) -> io::Result<mio::Waker> {
        mio::Waker::new(self.poll.registry(), WAKE)
    }

    /// Watches `socket` for reading and writing; returns its token.
    pub fn register(&mut self, socket: &mut impl Source) -> io::Result<usize> {
        let token = self.sockets.insert(Waiting::default());
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(socket, Token(token), interest)
        {
            self.sockets.remove(token);
            return Err(e);
        }
        Ok(token)
    }

    /// Forgets the socket at `token` (it is about to be closed, which takes it off the
    /// poller's list); a waker still stored for it is dropped.
    pub fn deregister(&mut self, socket: &mut impl Source, token: usize) {
        let _ = self.poll.registry().deregister(socket);
        self.sockets.remove(token);
    }

    /// Whether the socket at `token` may be ready in `direction`: if not, the task of
    /// `waker` waits here until an event says it may.
    pub fn poll_ready(&mut self, token: usize, direction: Direction, waker: &Waker) -> bool {
        let Some(waiting) = self.sockets.get_mut(token) else {
            return true; // not registered: let the system call say what is wrong
        };
        let (ready, slot) = match direction {
            Direction::Read => (waiting.readable, &mut waiting.reader),
            Direction::Write => (waiting.writable, &mut waiting.writer),
        };
        if ready {
            return true;
        }
        match slot {
            Some(stored) if stored.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
        false
    }

    /// A read (or write) of the socket at `token` said `WouldBlock`: it is not ready in that
    /// direction until the poller says so again.
    pub fn clear(&mut self, token: usize, direction: Direction) {
        if let Some(waiting) = self.sockets.get_mut(token) {
            match direction {
                Direction::Read => waiting.readable = false,
                Direction::Write => waiting.writable = false,
            }
        }
    }

    /// Waits for events, at most `timeout` (`None`: until one comes), and wakes the tasks
    /// waiting on each socket reported. An error or a hang-up wakes both directions: the
    /// tasks' next read or write sees it.
    pub fn poll(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self.poll.poll(&mut self.events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            result => result?,
        }
        for event in self.events.iter() {
            if event.token() == WAKE {
                continue; // only to end the sleep: the woken task is on the ready queue
            }
            let Some(waiting) = self.sockets.get_mut(event.token().0) else {
                continue;
            };
            let failed = event.is_error();
            if event.is_readable() || event.is_read_closed() || failed {
                waiting.readable = true;
                if let Some(reader) = waiting.reader.take() {
                    reader.wake();
                }
            }
            if event.is_writable() || event.is_write_closed() || failed {
                waiting.writable = true;
                if let Some(writer) = waiting.writer.take() {
                    writer.wake();
                }
            }
        }
        Ok(())
    }
}
