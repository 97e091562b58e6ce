//! A thread pool written out in full: the idea inside stage 04's rayon pool, small enough to
//! read in one sitting.
//!
//! Chapter 4 (`docs/04-thread-pool.md`) walks through it. `tests/docs.rs` compiles this file
//! as a module and runs it, so the code the chapter shows is code that builds and works.
//!
//! Three parts: a *queue* of jobs (a bounded channel), *workers* (threads that loop taking the
//! next job), and *shutdown* (dropping the pool closes the queue; each worker finishes what is
//! queued, sees the queue closed, and returns).

use std::any::Any;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

/// A job is any closure that a worker can run once, on another thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed crew of threads taking jobs from one bounded queue.
pub struct TinyPool {
    /// The sending end of the queue. `None` once the pool is being dropped: closing the
    /// channel is how the workers learn that no more jobs will come.
    queue: Option<SyncSender<Job>>,
    /// Kept so that dropping the pool can wait for every worker to finish.
    workers: Vec<JoinHandle<()>>,
}

/// The pool has no workers left to run a job.
#[derive(Debug, PartialEq, Eq)]
pub struct PoolClosed;

impl TinyPool {
    /// Starts `workers` threads that share one queue holding at most `capacity` jobs.
    pub fn new(workers: usize, capacity: usize) -> io::Result<TinyPool> {
        let (queue, jobs) = mpsc::sync_channel::<Job>(capacity);
        // A channel has one receiving end, and every worker needs it: the mutex lets exactly
        // one idle worker at a time wait on it, so each job is taken by exactly one worker.
        let jobs = Arc::new(Mutex::new(jobs));
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let jobs = Arc::clone(&jobs);
            // Builder, not thread::spawn: running out of threads is an error to report, not a
            // panic. On error the workers started so far see the queue close and exit.
            let handle = thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || work(&jobs))?;
            handles.push(handle);
        }
        Ok(TinyPool {
            queue: Some(queue),
            workers: handles,
        })
    }

    /// Puts a job on the queue. When the queue is full this waits for a free slot: the
    /// caller slows down instead of the queue growing without limit (back-pressure).
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) -> Result<(), PoolClosed> {
        let queue = self.queue.as_ref().ok_or(PoolClosed)?;
        queue.send(Box::new(job)).map_err(|_| PoolClosed)
    }
}

/// A worker's whole life: take the next job, run it, repeat until the queue is closed.
fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        // The lock guard is a temporary of this statement, so the lock is released as soon as
        // recv() returns, before the job runs. Holding it while running the job would let
        // only one worker work at a time.
        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = next else {
            // The pool was dropped and the queue is empty: nothing more will come.
            return;
        };
        // A job that panics must not take its worker with it, or a few bad jobs would leave
        // the pool with nobody to run the rest.
        if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(job)) {
            eprintln!(
                "{}: a job panicked: {}",
                thread::current().name().unwrap_or("worker"),
                panic_message(&panic)
            );
        }
    }
}

fn panic_message(panic: &Box<dyn Any + Send>) -> &str {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "(not a string)"
    }
}

impl Drop for TinyPool {
    fn drop(&mut self) {
        // Closing the queue is the stop signal; jobs already queued still run.
        drop(self.queue.take());
        for worker in self.workers.drain(..) {
            // A worker ends only by returning (panics in jobs are caught), so there is no
            // panic to pass on here.
            let _ = worker.join();
        }
    }
}
