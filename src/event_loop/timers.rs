//! The event loop's deadlines (stages 06 and 07): a heap of when each connection next needs
//! the loop's attention, even if it sends nothing.
//!
//! A blocking stage bounds a wait by handing the kernel a timeout with each `read()`. One
//! thread serving thousands of sockets cannot: it waits for all of them at once, in one
//! `poll`. So the deadlines are data. Each is `(when, token, id)` in a binary heap ordered by
//! `when`, and the loop's poll timeout is the earliest of them: the loop sleeps until a socket
//! is ready or that moment comes, whichever is first.
//!
//! Timers are never removed from the heap. When a connection closes, or its deadline moves,
//! its old entries stay until they come due, and are then checked and dropped: the
//! connection at `token` must still be the one with this `id` (the token may have been given
//! to a newer connection meanwhile) and its deadline must really have passed. Adding is
//! O(log n), looking at the earliest is O(1), and a cancelled timer costs nothing until it
//! comes due.
//!
//! Why a heap and not a timer wheel: a wheel (slots per tick, as the Linux kernel and tokio
//! keep them) adds and removes in O(1) and wins for hundreds of thousands of timers that are
//! mostly cancelled; it rounds every deadline to its tick. At ten thousand connections a heap
//! is a few comparisons per change, exact to the microsecond, and twenty lines long.
//!
//! Introduced in chapter 6 (`docs/06-event-loop.md`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A heap of `(when, token, id)`, earliest first.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Timers {
    pub fn new() -> Timers {
        Timers::default()
    }

    /// Asks for attention for the connection at `token`, numbered `id`, at `when`.
    pub fn add(&mut self, when: Instant, token: usize, id: u64) {
        self.heap.push(Reverse((when, token, id)));
    }

    /// How long the loop may sleep before the earliest timer is due; `None` if there is none.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse((when, _, _))| when.saturating_duration_since(now))
    }

    /// Takes the earliest timer if it is due at `now`: its token and id.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, usize, u64)> {
        match self.heap.peek() {
            Some(Reverse((when, _, _))) if *when <= now => self.heap.pop().map(|Reverse(t)| t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_come_due_earliest_first_and_only_when_due() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut timers = Timers::new();
        assert_eq!(
            timers.timeout(now),
            None,
            "no timer: sleep until a socket is ready"
        );
        timers.add(now + ms(30), 1, 10);
        timers.add(now + ms(10), 2, 20);
        timers.add(now + ms(20), 1, 11);
        assert_eq!(timers.timeout(now), Some(ms(10)));
        assert_eq!(timers.pop_due(now), None, "nothing is due yet");
        assert_eq!(timers.pop_due(now + ms(25)), Some((now + ms(10), 2, 20)));
        assert_eq!(timers.pop_due(now + ms(25)), Some((now + ms(20), 1, 11)));
        assert_eq!(timers.pop_due(now + ms(25)), None);
        assert_eq!(
            timers.timeout(now + ms(40)),
            Some(Duration::ZERO),
            "overdue: do not sleep"
        );
        assert_eq!(
            timers.pop_due(now + ms(40)),
            Some((now + ms(30), 1, 10)),
            "one left"
        );
        assert_eq!(timers.pop_due(now + ms(40)), None);
    }
}
