//! Stage 08's kitchen: work that computes leaves the event loop.
//!
//! An event loop must never compute for long: while it does, every other connection waits
//! (chapter 6 measures it with `--cpu-ms`). So the loop hands each order that computes to the
//! kitchen, a rayon pool of `--cpu-threads` cooks, and goes on serving. A cook computes the
//! order, puts the finished dish on the loop's pass (a channel) and rings its bell (the loop's
//! `mio::Waker`). The bell wakes the loop's `poll`, and the loop takes every dish that is
//! ready and moves its connection on to writing. Node's libuv work queue, nginx's thread
//! pools and tokio's `spawn_blocking` are this idea.
//!
//! A [`Kitchen`] is the cooks; a [`Hatch`] is one loop's window onto them: its pass and its
//! bell. Stage 08 has one loop and one hatch; stage 09 shares one kitchen among its loops,
//! each with a hatch of its own, so a dish goes back to the loop that ordered it.
//!
//! What is shared, and why it is safe: the pool (rayon's, built for it), a pass (an `mpsc`
//! channel: many cooks send, its loop alone receives), a bell (a `Waker`, made to be rung
//! from any thread), and the kitchen's gauges in the server's stats (atomics). A connection is
//! never shared: a cook knows only its token and its number, and its loop alone touches it.
//!
//! The kitchen is bounded like every queue in this book: at most `--cpu-queue` orders wait for
//! a cook. Past that the loop answers `503 Service Unavailable` with `Retry-After` at once,
//! rather than let the queue, and every client's wait, grow without limit.
//!
//! Who the cooks are is the kitchen's business, not the loop's: a rayon pool (stages 08-11),
//! threads lent by someone else (stage 11's `--spawn-blocking`: tokio's blocking pool), or
//! nobody (`--cpu-threads 0`): then whoever takes an order computes it at once, on its own
//! thread, as stage 07's loop did, so one binary shows both. With nobody to wait for there is
//! no queue: `--cpu-queue` means nothing, no order is refused, `kitchen_queued` stays 0, and
//! `kitchen_cooking` counts the requests computing in place.
//!
//! Introduced in chapter 8 (`docs/08-cpu-pool.md`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::http::handler::compute_for;
use crate::logging;
use crate::server::{Server, StartError};
use crate::stats::bump;

/// An order, and the dish that comes back for it: which connection it is for. The token alone
/// is not enough: the connection may leave while its order cooks and its token go to a newer
/// connection; the number says whose it is (the same rule as the timers').
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    pub token: usize,
    pub id: u64,
}

/// The kitchen is full: `--cpu-queue` orders are already waiting for a cook.
#[derive(Debug)]
pub struct Full;

/// An order on its way to a cook: the computing, the stats, and what to do when it is done.
pub type Job = Box<dyn FnOnce() + Send>;

/// The cooks, shared by every loop of the process.
#[derive(Debug)]
pub struct Kitchen {
    /// Who computes; `None` (`--cpu-threads 0`): whoever takes the order, at once.
    cooks: Option<Cooks>,
    /// The most orders that may wait for a cook (`--cpu-queue`).
    queue: usize,
    server: Arc<Server>,
}

/// Threads that compute orders, each handed over as a [`Job`].
enum Cooks {
    /// Our own: a rayon pool of `--cpu-threads` threads, `cook-0`, `cook-1`...
    Pool(rayon::ThreadPool),
    /// Someone else's, reached through the function that hands them a job.
    Lent(Box<dyn Fn(Job) + Send + Sync>),
}

impl std::fmt::Debug for Cooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cooks::Pool(pool) => write!(f, "Pool({} threads)", pool.current_num_threads()),
            Cooks::Lent(_) => f.write_str("Lent"),
        }
    }
}

impl Kitchen {
    /// Starts `--cpu-threads` cooks, or none for `--cpu-threads 0`. A thread that cannot be
    /// started is a start-up error.
    pub fn open(server: &Arc<Server>) -> Result<Arc<Kitchen>, StartError> {
        let cooks = match server.config.cpu_threads {
            0 => None,
            threads => Some(Cooks::Pool(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("cook-{i}"))
                    .build()
                    .map_err(StartError::Pool)?,
            )),
        };
        Ok(Kitchen::with(cooks, server))
    }

    /// A kitchen whose cooks are threads kept by someone else: `hand` gives each of them a
    /// job to run (stage 11 hands them to tokio's `spawn_blocking`). How many threads there
    /// are is theirs to bound; the queue's bound, the gauges and the waking stay here.
    pub fn with_cooks(
        server: &Arc<Server>,
        hand: impl Fn(Job) + Send + Sync + 'static,
    ) -> Arc<Kitchen> {
        Kitchen::with(Some(Cooks::Lent(Box::new(hand))), server)
    }

    fn with(cooks: Option<Cooks>, server: &Arc<Server>) -> Arc<Kitchen> {
        Arc::new(Kitchen {
            cooks,
            queue: server.config.cpu_queue,
            server: Arc::clone(server),
        })
    }

    /// Stages 10 and 11: an order as a future. `cpu` of computing is handed to a cook at once
    /// (or refused, if `--cpu-queue` orders wait); the future is ready when the cook is done,
    /// and the cook wakes the task that awaits it, from its own thread. Dropped before that
    /// (the client left), the order still cooks, as nothing can stop a computation, and
    /// nobody is woken. With no cooks (`--cpu-threads 0`) the task's own thread computes it
    /// here, and the future is ready at once.
    pub fn order(self: &Arc<Kitchen>, cpu: Duration) -> Result<Cooking, Full> {
        let dish = Arc::new(Dish::default());
        let cooked = Arc::clone(&dish);
        self.take(cpu, move || {
            cooked.done.store(true, Ordering::SeqCst);
            let waiting = cooked
                .waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(waker) = waiting {
                waker.wake();
            }
        })?;
        Ok(Cooking { dish })
    }

    /// Takes an order of `cpu` of computing, if fewer than `--cpu-queue` wait: a cook computes
    /// it on a thread of the pool, then calls `done` there. The queue's place is held from now
    /// until a cook starts; the stats count the order waiting, then cooking. With no cooks,
    /// the order is computed here and now, and `done` called, before this returns.
    fn take(&self, cpu: Duration, done: impl FnOnce() + Send + 'static) -> Result<(), Full> {
        let stats = &self.server.stats;
        let Some(cooks) = &self.cooks else {
            // Nobody to wait for, so no queue: the caller's thread is the cook, and every
            // other connection it serves waits meanwhile (stage 07's stall).
            cook(&self.server, cpu);
            done();
            return Ok(());
        };
        // One atomic step: several loops (stage 09) may order at once, and the bound holds.
        if !stats.kitchen_queued.try_up(self.queue) {
            bump(&stats.kitchen_full);
            return Err(Full);
        }
        let server = Arc::clone(&self.server);
        let job = move || {
            server.stats.kitchen_queued.down();
            cook(&server, cpu);
            done();
        };
        match cooks {
            Cooks::Pool(pool) => pool.spawn(job),
            Cooks::Lent(hand) => hand(Box::new(job)),
        }
        Ok(())
    }

    /// A window onto the kitchen for one loop: dishes come back on its pass, and `bell`, the
    /// loop's waker, is rung for each.
    pub fn hatch(self: &Arc<Kitchen>, bell: Arc<mio::Waker>) -> Hatch {
        let (pass, ready) = mpsc::channel();
        Hatch {
            kitchen: Arc::clone(self),
            pass,
            ready,
            bell,
        }
    }
}

/// Computes `cpu`, counted as cooking meanwhile.
fn cook(server: &Server, cpu: Duration) {
    let _cooking = server.stats.kitchen_cooking.enter();
    compute_for(cpu);
}

/// A dish being cooked for a task: done yet, and whom to wake when it is.
#[derive(Debug, Default)]
struct Dish {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// The future of [`Kitchen::order`]: ready when the cook is done.
#[derive(Debug)]
pub struct Cooking {
    dish: Arc<Dish>,
}

impl Future for Cooking {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.dish.done.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        let mut waiting = self
            .dish
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Looked at again under the lock, which the cook takes after setting `done`.
        if self.dish.done.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *waiting = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// One loop's window onto the kitchen: where its orders go in and its dishes come out.
#[derive(Debug)]
pub struct Hatch {
    kitchen: Arc<Kitchen>,
    /// The pass: cooks send finished orders on it...
    pass: Sender<Order>,
    /// ... and the loop takes them off it.
    ready: Receiver<Order>,
    /// Wakes the loop's `poll` (the same waker Ctrl-C rings).
    bell: Arc<mio::Waker>,
}

impl Hatch {
    /// Hands an order to the kitchen: `cpu` of computing for the connection in `order`. A
    /// cook computes it on a thread of the pool, puts it on the pass and rings the bell; the
    /// loop does not wait for any of that. Refused when `--cpu-queue` orders already wait.
    /// With no cooks (`--cpu-threads 0`) the loop computes it here, before this returns, and
    /// finds the dish on its pass on its next turn.
    pub fn cook(&self, order: Order, cpu: Duration) -> Result<(), Full> {
        let pass = self.pass.clone();
        let bell = Arc::clone(&self.bell);
        self.kitchen.take(cpu, move || {
            // The loop may be gone (its drain is over): then nobody takes the dish.
            if pass.send(order).is_ok() {
                if let Err(e) = bell.wake() {
                    logging::warn(format_args!("a cook could not ring the bell: {e}"));
                }
            }
        })
    }

    /// The next dish on the pass, if one is ready; never waits.
    pub fn next_ready(&self) -> Option<Order> {
        self.ready.try_recv().ok()
    }
}
