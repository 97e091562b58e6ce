//! The executor: tasks, the queue of those that are ready, and the loop that runs them.
//!
//! A task is a future with nobody waiting for its result: a boxed `dyn Future<Output = ()>`
//! in a slab, its index its id. Its [`Waker`] is made from [`Wake`] on an `Arc` (no `unsafe`):
//! waking it puts its id on the ready queue, once however often it is woken before it runs.
//! [`Runtime::block_on`] runs the main future and every task it spawns: it polls the ready
//! tasks, fires the timers that are due, and asks the reactor for events, sleeping in the
//! poller only when no task is ready. That is the whole of it: an event loop whose state
//! machines the compiler wrote.
//!
//! The runtime of the current thread is found through a thread-local, as tokio's is, so
//! that [`spawn`], `time::sleep` and the sockets need no handle passed around.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use crate::event_loop::slab::Slab;
use crate::runtime::reactor::Reactor;
use crate::runtime::time::Timers;

/// The id the main future of [`Runtime::block_on`] wakes with; tasks get the slab's indexes.
const MAIN: usize = usize::MAX;

/// A runtime for one thread, made on the thread that runs it (it is not `Send`: its tasks
/// stay on that thread).
pub struct Runtime {
    core: Rc<Core>,
}

/// Everything a runtime owns, shared (on its own thread) by the executor, the sockets and the
/// timers through the thread-local.
pub(crate) struct Core {
    tasks: RefCell<Slab<Task>>,
    pub(crate) ready: Arc<Ready>,
    pub(crate) reactor: RefCell<Reactor>,
    pub(crate) timers: RefCell<Timers>,
}

/// A spawned future and its waker. `future` is `None` while the task is being polled: it is
/// taken out, so that the task may spawn others (which borrows the slab) as it runs.
struct Task {
    future: Option<Pin<Box<dyn Future<Output = ()>>>>,
    waker: Arc<TaskWaker>,
}

/// The ready queue: ids of woken tasks. Behind a `Mutex`, since a waker may be used from any
/// thread; `parked` says the runtime sleeps in the poller, so a wake must ring it.
pub(crate) struct Ready {
    ids: Mutex<VecDeque<usize>>,
    parked: AtomicBool,
    poller: mio::Waker,
}

impl Ready {
    fn push(&self, id: usize) {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(id);
        // SeqCst on both sides: either the runtime sees this id before it parks, or this
        // sees it parked and rings it.
        if self.parked.swap(false, Ordering::SeqCst) {
            // Nothing to do if it fails: the runtime's next timer or event finds the task.
            let _ = self.poller.wake();
        }
    }

    fn take(&self, into: &mut VecDeque<usize>) {
        let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut *ids, into);
    }

    fn is_empty(&self) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

/// What a task's [`Waker`] is: its id and the queue to put it on.
struct TaskWaker {
    id: usize,
    ready: Arc<Ready>,
    /// Already on the queue: a second wake before it runs adds nothing.
    queued: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.ready.push(self.id);
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// The runtime of this thread, for the sockets and the timers. Outside of
/// [`Runtime::block_on`] there is none, and they fail with this error.
pub(crate) fn current() -> io::Result<Rc<Core>> {
    CURRENT
        .with(|current| current.borrow().clone())
        .ok_or_else(|| io::Error::other("not inside a runtime::Runtime::block_on"))
}

/// Starts `future` as a task of this thread's runtime; it runs when `block_on` next looks at
/// the ready queue. Outside of a runtime the future is dropped, with a warning.
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    match current() {
        Ok(core) => core.spawn(Box::pin(future)),
        Err(e) => crate::logging::warn(format_args!("spawn: {e}")),
    }
}

/// Lets the other ready tasks run before this one goes on: a task that always has more to do
/// (a client pipelining requests, a flood of clients to accept) would otherwise keep the
/// thread, since nothing it awaits ever makes it wait.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

impl Runtime {
    /// A runtime with its own poller.
    pub fn new() -> io::Result<Runtime> {
        let reactor = Reactor::new()?;
        let poller = reactor.waker()?;
        Ok(Runtime {
            core: Rc::new(Core {
                tasks: RefCell::new(Slab::new()),
                ready: Arc::new(Ready {
                    ids: Mutex::new(VecDeque::new()),
                    parked: AtomicBool::new(false),
                    poller,
                }),
                reactor: RefCell::new(reactor),
                timers: RefCell::new(Timers::default()),
            }),
        })
    }

    /// Runs `main`, and every task spawned meanwhile, until `main` is done; returns its
    /// output. Tasks still pending then are dropped with the runtime.
    pub fn block_on<F: Future>(&self, main: F) -> F::Output {
        let _inside = Inside::enter(&self.core);
        let core = &self.core;
        let main_task = Arc::new(TaskWaker {
            id: MAIN,
            ready: Arc::clone(&core.ready),
            queued: AtomicBool::new(true),
        });
        let main_waker = Waker::from(Arc::clone(&main_task));
        let mut main = pin!(main);
        let mut batch = VecDeque::from([MAIN]);
        loop {
            // The tasks woken since the last turn, each polled once; those they wake wait
            // for the next turn, so one busy task cannot starve the poller.
            while let Some(id) = batch.pop_front() {
                if id == MAIN {
                    main_task.queued.store(false, Ordering::SeqCst);
                    if let Poll::Ready(output) =
                        main.as_mut().poll(&mut Context::from_waker(&main_waker))
                    {
                        return output;
                    }
                } else {
                    core.run(id);
                }
            }
            core.timers.borrow_mut().fire(Instant::now());
            // Sleep in the poller only if nothing is ready, and only until the next timer.
            core.ready.parked.store(true, Ordering::SeqCst);
            let timeout = if core.ready.is_empty() {
                core.timers.borrow().timeout(Instant::now())
            } else {
                Some(std::time::Duration::ZERO)
            };
            if let Err(e) = core.reactor.borrow_mut().poll(timeout) {
                crate::logging::warn(format_args!("the runtime's poll failed: {e}"));
            }
            core.ready.parked.store(false, Ordering::SeqCst);
            core.timers.borrow_mut().fire(Instant::now());
            core.ready.take(&mut batch);
        }
    }
}

impl Core {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()>>>) {
        let mut tasks = self.tasks.borrow_mut();
        // The waker needs the id, and the id is known once the task is in the slab.
        let id = tasks.insert(Task {
            future: Some(future),
            waker: Arc::new(TaskWaker {
                id: MAIN,
                ready: Arc::clone(&self.ready),
                queued: AtomicBool::new(true),
            }),
        });
        if let Some(task) = tasks.get_mut(id) {
            task.waker = Arc::new(TaskWaker {
                id,
                ready: Arc::clone(&self.ready),
                queued: AtomicBool::new(true),
            });
        }
        drop(tasks);
        self.ready.push(id);
    }

    /// Polls task `id` once, if it is still there: a stale wake (for a task that has ended,
    /// or for an id a newer task has since) is a spurious poll, which futures allow.
    fn run(&self, id: usize) {
        let (future, waker) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(task) = tasks.get_mut(id) else {
                return;
            };
            (task.future.take(), Arc::clone(&task.waker))
        };
        let Some(mut future) = future else {
            return;
        };
        waker.queued.store(false, Ordering::SeqCst);
        let waker = Waker::from(waker);
        let done = future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        let mut tasks = self.tasks.borrow_mut();
        if done {
            tasks.remove(id);
        } else if let Some(task) = tasks.get_mut(id) {
            task.future = Some(future);
        }
    }

    /// How many tasks there are: for the tests.
    #[cfg(test)]
    pub(crate) fn tasks(&self) -> usize {
        self.tasks.borrow().len()
    }
}

/// Makes a runtime the current one for as long as it lives.
struct Inside;

impl Inside {
    fn enter(core: &Rc<Core>) -> Inside {
        CURRENT.with(|current| *current.borrow_mut() = Some(Rc::clone(core)));
        Inside
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        CURRENT.with(|current| current.borrow_mut().take());
    }
}
