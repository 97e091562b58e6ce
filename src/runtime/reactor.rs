//! The reactor: the mio poller, and for each socket the wakers of the tasks waiting on it.
//!
//! A socket is registered once, for reading and writing, edge-triggered, as in stage 06. A
//! task that reads (or writes) and gets `WouldBlock` leaves its waker here for that direction
//! and returns `Pending`; when the poller reports the socket, the waker is taken and woken, and
//! the task tries again. That order, *try first, wait only on `WouldBlock`*, is the whole of
//! chapter 6's edge-triggered rule, in one place: a task never waits for bytes that are
//! already there, since it reads before it waits; and a FIN that came with the last request
//! is never lost, since the next read finds it. (Stage 07 keeps a note of short reads and of
//! the FIN to skip one read per request; this runtime spends the read instead.)

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

/// Who waits on one socket, for each direction.
#[derive(Default)]
struct Waiting {
    reader: Option<Waker>,
    writer: Option<Waker>,
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

    /// The task of `waker` waits for the socket at `token` to be ready in `direction`.
    pub fn wait(&mut self, token: usize, direction: Direction, waker: &Waker) {
        let Some(waiting) = self.sockets.get_mut(token) else {
            // Not registered: wake at once rather than never.
            waker.wake_by_ref();
            return;
        };
        let slot = match direction {
            Direction::Read => &mut waiting.reader,
            Direction::Write => &mut waiting.writer,
        };
        match slot {
            Some(stored) if stored.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
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
                if let Some(reader) = waiting.reader.take() {
                    reader.wake();
                }
            }
            if event.is_writable() || event.is_write_closed() || failed {
                if let Some(writer) = waiting.writer.take() {
                    writer.wake();
                }
            }
        }
        Ok(())
    }
}
