//! A counting semaphore: at most N permits out at once, the rest of the callers wait.
//!
//! std has no semaphore, and it takes a dozen lines on `Mutex` + `Condvar`: the mutex guards
//! the count of free permits, the condition variable lets a waiter sleep until a permit is
//! returned. A [`Permit`] gives its slot back when dropped, so it is returned on every path:
//! a normal response, an early `return`, an error, even a panic unwinding.
//!
//! Introduced in chapter 3 (`docs/03-semaphore.md`); stage 04 reuses it to bound its queue.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// At most `permits` holders at once. Cloning gives another handle to the same semaphore.
#[derive(Clone, Debug)]
pub struct Semaphore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Permits not handed out.
    free: Mutex<usize>,
    /// Signalled each time a permit comes back.
    returned: Condvar,
}

impl Inner {
    fn free(&self) -> MutexGuard<'_, usize> {
        // Poisoning means a thread panicked while holding the lock. Nothing here can panic
        // between lock and unlock (a compare and an add), so the count is still right.
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One slot of a [`Semaphore`], returned when dropped. It can be moved to another thread.
#[derive(Debug)]
#[must_use = "the permit is returned as soon as it is dropped"]
pub struct Permit {
    inner: Arc<Inner>,
}

impl Semaphore {
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            inner: Arc::new(Inner {
                free: Mutex::new(permits),
                returned: Condvar::new(),
            }),
        }
    }

    /// Waits until a permit is free, then takes it.
    pub fn acquire(&self) -> Permit {
        let mut free = self.inner.free();
        // A loop, not an `if`: wake-ups can be spurious, and another waiter may have taken
        // the permit between the signal and our turn on the lock.
        while *free == 0 {
            free = self
                .inner
                .returned
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Permit {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Takes a permit if one is free right now.
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut free = self.inner.free();
        if *free == 0 {
            return None;
        }
        *free -= 1;
        Some(Permit {
            inner: Arc::clone(&self.inner),
        })
    }

    /// Permits free right now (already stale when read; for stats and tests).
    pub fn available(&self) -> usize {
        *self.inner.free()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        *self.inner.free() += 1;
        // One permit came back, so one waiter can go on.
        self.inner.returned.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;
    use std::time::Duration;

    #[test]
    fn never_more_than_n_holders() {
        let semaphore = Semaphore::new(3);
        let holders = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (semaphore, holders, peak) = (semaphore.clone(), holders.clone(), peak.clone());
                thread::spawn(move || {
                    for _ in 0..20 {
                        let _permit = semaphore.acquire();
                        let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        thread::sleep(Duration::from_micros(200));
                        holders.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(semaphore.available(), 3, "every permit came back");
    }

    #[test]
    fn a_waiter_wakes_when_a_permit_is_dropped() {
        let semaphore = Semaphore::new(1);
        let held = semaphore.acquire();
        assert!(semaphore.try_acquire().is_none());
        let waiter = {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                let _permit = semaphore.acquire();
            })
        };
        thread::sleep(Duration::from_millis(50));
        assert!(
            !waiter.is_finished(),
            "the waiter must block while the permit is held"
        );
        drop(held);
        waiter.join().unwrap();
        assert_eq!(semaphore.available(), 1);
    }

    #[test]
    fn a_permit_comes_back_even_when_its_holder_panics() {
        let semaphore = Semaphore::new(1);
        let clone = semaphore.clone();
        let result = thread::spawn(move || {
            let _permit = clone.acquire();
            panic!("the handler blew up");
        })
        .join();
        assert!(result.is_err());
        assert_eq!(semaphore.available(), 1);
    }
}
