//! Stages 10 and 11: the connections idle between two requests, oldest first, so that at
//! `--max-conns` the one idle the longest can be asked to leave and make room (stage 07's
//! rule, which `src/event_loop/connections.rs` keeps for the event loops).
//!
//! An idle connection's task awaits [`Regulars::asked_to_leave`] beside its next request; the
//! accept loop, finding no place free, calls [`Regulars::make_room`]. Safe to share between
//! threads (a `Mutex` inside): stage 11's tasks run on any worker.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// The idle connections of one accept loop.
#[derive(Debug, Default)]
pub struct Regulars {
    /// `(since, number)` of each idle connection, oldest first, with its task's waker;
    /// `None` once it has been asked to leave.
    idle: Mutex<BTreeMap<(Instant, u64), Option<Waker>>>,
    next: AtomicU64,
}

impl Regulars {
    fn idle(&self) -> MutexGuard<'_, BTreeMap<(Instant, u64), Option<Waker>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ready when this connection, idle since now, is asked to leave to make room. Dropped
    /// (its next request came, or its timer), it is off the list.
    pub fn asked_to_leave(&self) -> AskedToLeave<'_> {
        AskedToLeave {
            regulars: self,
            key: (Instant::now(), self.next.fetch_add(1, Ordering::Relaxed)),
            listed: false,
        }
    }

    /// Asks the connection idle the longest to leave; false if none is idle.
    pub fn make_room(&self) -> bool {
        let mut idle = self.idle();
        let oldest = idle.iter_mut().find_map(|(_, waker)| waker.take());
        match oldest {
            Some(waker) => {
                drop(idle);
                waker.wake();
                true
            }
            None => false,
        }
    }
}

/// The future of [`Regulars::asked_to_leave`].
#[derive(Debug)]
pub struct AskedToLeave<'a> {
    regulars: &'a Regulars,
    key: (Instant, u64),
    listed: bool,
}

impl Future for AskedToLeave<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let key = self.key;
        let mut idle = self.regulars.idle();
        match idle.get_mut(&key) {
            // Asked: its waker was taken.
            Some(None) => Poll::Ready(()),
            Some(Some(waker)) => {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                Poll::Pending
            }
            None if self.listed => Poll::Ready(()),
            None => {
                idle.insert(key, Some(cx.waker().clone()));
                drop(idle);
                self.listed = true;
                Poll::Pending
            }
        }
    }
}

impl Drop for AskedToLeave<'_> {
    fn drop(&mut self) {
        if self.listed {
            self.regulars.idle().remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicU64);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Of three idle connections, `make_room` asks the oldest, then the next; one that is
    /// no longer idle (dropped) is never asked; with none idle, there is no room to make.
    #[test]
    fn the_oldest_idle_connection_is_asked_first() {
        let regulars = Regulars::default();
        let woken: Vec<Arc<Count>> = (0..3).map(|_| Arc::new(Count(AtomicU64::new(0)))).collect();
        let mut waiting: Vec<_> = (0..3)
            .map(|_| Box::pin(regulars.asked_to_leave()))
            .collect();
        for (future, count) in waiting.iter_mut().zip(&woken) {
            let waker = Waker::from(Arc::clone(count));
            assert!(future
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending());
        }
        drop(waiting.remove(1)); // the middle one sends a request: off the list
        assert!(regulars.make_room());
        assert_eq!(woken[0].0.load(Ordering::SeqCst), 1, "the oldest first");
        assert!(regulars.make_room());
        assert_eq!(woken[2].0.load(Ordering::SeqCst), 1);
        assert_eq!(woken[1].0.load(Ordering::SeqCst), 0, "never asked");
        assert!(!regulars.make_room(), "none idle any more");
        let waker = Waker::from(Arc::clone(&woken[0]));
        let asked = waiting[0].as_mut().poll(&mut Context::from_waker(&waker));
        assert!(asked.is_ready());
    }
}
