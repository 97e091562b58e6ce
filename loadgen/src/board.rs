//! The scoreboard: what each healthy client is doing right now, for the live view and
//! `--series`.
//!
//! The sampler must see the run from outside the server (so that it works for stage 01,
//! which cannot answer `/stats` while it serves), and must not slow the clients down. So each
//! client owns one [`Slot`] and is the only thread that writes it: a plain store, no
//! read-modify-write, no lock. Slots are a cache line each, so that one client's stores do
//! not evict its neighbours' lines. The sampler reads them all every 100 ms; a reading may
//! be a few microseconds old, which a 100 ms sample cannot tell apart.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Where a healthy client is in its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Between requests (or waiting for its turn in the open loop's timetable).
    Between = 0,
    /// In `connect()`: the server's kernel has not completed the handshake yet.
    Connecting = 1,
    /// Connected (or its request sent on a kept-alive connection) and waiting for the answer.
    Waiting = 2,
}

/// One client's entry. Written by that client only.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Slot {
    state: AtomicU8,
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Slot {
    pub fn set(&self, state: State) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// The request is over: back to [`State::Between`], and one more ok or failed.
    pub fn finish(&self, ok: Option<bool>) {
        self.set(State::Between);
        let counter = match ok {
            Some(true) => &self.ok,
            Some(false) => &self.failed,
            None => return, // unfinished: neither
        };
        // Only this client writes the slot, so load-and-store cannot lose a count.
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// The whole board, shared by reference between the clients and the sampler.
#[derive(Debug)]
pub struct Board {
    slots: Vec<Slot>,
    /// The start line, once it is crossed.
    start: OnceLock<Instant>,
    /// Set when the healthy clients are done: everything that watches the run stops.
    over: AtomicBool,
    /// Idle, trickling and held connections opened so far, for the view before the start.
    pub side_opened: AtomicU64,
}

/// The board added up at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub connecting: u64,
    pub waiting: u64,
    pub ok: u64,
    pub failed: u64,
}

impl Board {
    pub fn new(clients: usize) -> Board {
        Board {
            slots: (0..clients).map(|_| Slot::default()).collect(),
            start: OnceLock::new(),
            over: AtomicBool::new(false),
            side_opened: AtomicU64::new(0),
        }
    }

    /// Client `index`'s slot; `None` beyond the board, which is made for every healthy
    /// client.
    pub fn slot(&self, index: usize) -> Option<&Slot> {
        self.slots.get(index)
    }

    pub fn set_start(&self, start: Instant) {
        let _ = self.start.set(start);
    }

    pub fn start(&self) -> Option<Instant> {
        self.start.get().copied()
    }

    pub fn set_over(&self) {
        self.over.store(true, Ordering::Release);
    }

    pub fn is_over(&self) -> bool {
        self.over.load(Ordering::Acquire)
    }

    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for slot in &self.slots {
            match slot.state.load(Ordering::Relaxed) {
                1 => counts.connecting += 1,
                2 => counts.waiting += 1,
                _ => {}
            }
            counts.ok += slot.ok.load(Ordering::Relaxed);
            counts.failed += slot.failed.load(Ordering::Relaxed);
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The board adds up what each client published, whatever state each one is in.
    #[test]
    fn counts_add_up_the_slots() {
        let board = Board::new(3);
        let slot = |i| board.slot(i).unwrap();
        slot(0).set(State::Connecting);
        slot(1).set(State::Waiting);
        slot(2).set(State::Waiting);
        slot(2).finish(Some(true));
        slot(2).finish(Some(false));
        slot(2).finish(None);
        assert!(board.slot(3).is_none());
        assert_eq!(
            board.counts(),
            Counts {
                connecting: 1,
                waiting: 1,
                ok: 1,
                failed: 1
            }
        );
        assert_eq!(std::mem::size_of::<Slot>(), 64);
    }
}
