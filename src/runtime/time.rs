//! Deadlines: `sleep` and `timeout`, on one ordered map of timers per runtime.
//!
//! A timer is `(when, number) -> waker` in a `BTreeMap`, earliest first; the runtime's poll
//! sleeps at most until the first one, and wakes every task whose timer has come. Unlike the
//! heap of stage 06, an entry is removed when its [`Sleep`] is dropped: a `timeout` around a
//! read that finished in time (nearly every one) leaves nothing behind, so a busy keep-alive
//! server does not pile up dead timers.

use std::collections::BTreeMap;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::runtime::executor;

/// The timers of one runtime.
#[derive(Default)]
pub struct Timers {
    waiting: BTreeMap<(Instant, u64), Waker>,
    /// Numbers the timers, so that two with the same deadline are two entries.
    next: u64,
}

impl Timers {
    fn add(&mut self, when: Instant, waker: Waker) -> u64 {
        self.next += 1;
        self.waiting.insert((when, self.next), waker);
        self.next
    }

    fn remove(&mut self, when: Instant, number: u64) {
        self.waiting.remove(&(when, number));
    }

    /// How many timers are set: for the tests.
    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.waiting.len()
    }

    /// How long the runtime may sleep before the first timer; `None` if there is none.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.waiting
            .keys()
            .next()
            .map(|(when, _)| when.saturating_duration_since(now))
    }

    /// Wakes the task of every timer that has come; their `Sleep`s find their time passed.
    pub fn fire(&mut self, now: Instant) {
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            entry.remove().wake();
        }
    }
}

/// Waits until `duration` has passed.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Waits until `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

/// The future of [`sleep`]: ready once its deadline has passed.
#[derive(Debug)]
pub struct Sleep {
    deadline: Instant,
    /// The number of its timer, once it has one.
    timer: Option<u64>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let Ok(core) = executor::current() else {
            // No runtime to wake us: the deadline can only be waited for by polling again.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        };
        let mut timers = core.timers.borrow_mut();
        let key = self.timer.map(|number| (self.deadline, number));
        // Polled again before its time: keep the timer, with this poll's waker.
        if let Some(stored) = key.and_then(|key| timers.waiting.get_mut(&key)) {
            if !stored.will_wake(cx.waker()) {
                *stored = cx.waker().clone();
            }
            return Poll::Pending;
        }
        self.timer = Some(timers.add(self.deadline, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let (Some(number), Ok(core)) = (self.timer, executor::current()) {
            if let Ok(mut timers) = core.timers.try_borrow_mut() {
                timers.remove(self.deadline, number);
            }
        }
    }
}

/// `future` did not finish in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

/// Runs `future` for at most `duration`: its output, or [`Elapsed`], in which case the future
/// is dropped unfinished (and with it whatever it held: a socket it owned is closed).
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    timeout_at(Instant::now() + duration, future).await
}

/// The same, until `deadline`. Both futures are pinned inside this one (`pin!`), so a
/// deadline costs no allocation and no `unsafe`.
pub async fn timeout_at<F: Future>(deadline: Instant, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let mut sleep = pin!(sleep_until(deadline));
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        sleep.as_mut().poll(cx).map(|()| Err(Elapsed))
    })
    .await
}
