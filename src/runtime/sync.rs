//! A counting semaphore for tasks: stage 03's, with `.await` instead of a `Condvar`.
//!
//! `acquire_owned` waits for a place and returns a permit that gives it back when dropped;
//! a task that waits holds no thread, only its waker in the queue. Safe to share between
//! threads (a `Mutex` inside), like tokio's `sync::Semaphore`, whose names it mirrors.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

/// At most `permits` holders at once.
#[derive(Debug)]
pub struct Semaphore {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    free: usize,
    /// The tasks waiting for a place, first come first served.
    waiting: VecDeque<Waker>,
}

/// Never made: the semaphore is never closed. It is here so that the code that acquires
/// reads the same on tokio, where a closed semaphore is an error.
#[derive(Debug)]
pub struct AcquireError;

/// No place is free now.
#[derive(Debug)]
pub struct TryAcquireError;

/// A place held; dropping it gives the place back and wakes the next task waiting.
#[derive(Debug)]
pub struct OwnedSemaphorePermit {
    semaphore: Arc<Semaphore>,
    count: usize,
}

impl Semaphore {
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Mutex::new(State {
                free: permits,
                waiting: VecDeque::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One place if one is free now, without waiting.
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        {
            let mut state = self.state();
            if state.free == 0 {
                return Err(TryAcquireError);
            }
            state.free -= 1;
        }
        Ok(OwnedSemaphorePermit {
            semaphore: self,
            count: 1,
        })
    }

    /// Waits for one place.
    pub async fn acquire_owned(self: Arc<Self>) -> Result<OwnedSemaphorePermit, AcquireError> {
        self.acquire_many_owned(1).await
    }

    /// Waits until `count` places are free at once, and takes them all (the drain waits
    /// this way for every connection to finish).
    pub async fn acquire_many_owned(
        self: Arc<Self>,
        count: u32,
    ) -> Result<OwnedSemaphorePermit, AcquireError> {
        let count = count as usize; // u32 as tokio's: a count of places fits either way
        poll_fn(|cx| {
            let mut state = self.state();
            if state.free >= count {
                state.free -= count;
                return Poll::Ready(());
            }
            if !state
                .waiting
                .iter()
                .any(|waker| waker.will_wake(cx.waker()))
            {
                state.waiting.push_back(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
        Ok(OwnedSemaphorePermit {
            semaphore: self,
            count,
        })
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        let mut state = self.semaphore.state();
        state.free += self.count;
        // Wake them all: each looks again, and those that find no place wait again. Few wait
        // at once here (the accept loop, the drain), so this is simpler than counting.
        for waker in state.waiting.drain(..) {
            waker.wake();
        }
    }
}
