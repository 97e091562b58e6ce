//! The smallest complete async runtime, and a hello server on it (chapter 10), in one file.
//!
//! A connection is an `async fn`, read top to bottom; the compiler makes each `.await` a state
//! of a future. Three parts run the futures on one thread: the executor polls the tasks that
//! were woken, the reactor wakes a task when its socket is ready, the timers when its deadline
//! comes. In the cafe: each order is a recipe card that marks every place to wait; the barista
//! puts a card aside at "wait", and the bell for that card puts it back on the pile.
//!
//! `cargo run --example tiny_runtime [-- PORT]` serves http://127.0.0.1:1731/ (or PORT), with a
//! second of work per request. Stage 10 adds what a server open to anybody needs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener as StdListener};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{event::Source, Events, Interest, Registry, Token};

const WORK: Duration = Duration::from_secs(1);
/// The blank line that ends a request's head.
const END: &[u8] = b"\r\n\r\n";
/// A head that never ends must not grow without bound.
const MAX_HEAD: usize = 8192;
/// The answer to any request: no parser looks at what was asked.
pub const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nHello World\n";

fn main() -> io::Result<()> {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "1731".into());
    let port: u16 = arg
        .parse()
        .map_err(|_| io::Error::other(format!("not a port: {arg}")))?;
    let listener = StdListener::bind((Ipv4Addr::LOCALHOST, port))?;
    let addr = listener.local_addr()?;
    writeln!(io::stdout(), "tiny_runtime listening on http://{addr}")?;
    serve_on(listener, WORK, &AtomicBool::new(false))
}

/// Answers every request on `listener` with `ANSWER`, `work` after its blank line, until `stop`
/// is set (seen after each accept). The accept loop is the main task; each connection a task.
pub fn serve_on(listener: StdListener, work: Duration, stop: &AtomicBool) -> io::Result<()> {
    listener.set_nonblocking(true)?; // an accept that waited would stop every task
    block_on(async {
        let mut listener = Async::new(TcpListener::from_std(listener))?;
        while !stop.load(Ordering::Relaxed) {
            match listener.accept().await {
                Ok(stream) => spawn(serve(stream, work))?,
                // Out of descriptors, say: the client waits in the backlog, and trying again at
                // once would only fail again.
                Err(_) => sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(())
    })
}

/// One connection's whole story, top to bottom. At each `.await` it may wait, and while it
/// waits the thread serves the others.
async fn serve(mut stream: Async<TcpStream>, work: Duration) {
    let (mut head, mut buf) = (Vec::new(), [0u8; 1024]);
    while !head.windows(END.len()).any(|w| w == END) {
        match stream.read(&mut buf).await {
            Ok(n @ 1..) if head.len() < MAX_HEAD => head.extend_from_slice(&buf[..n]),
            _ => return, // the client left (0 bytes), the connection broke, or the head is endless
        }
    }
    sleep(work).await; // a timer, not a sleeping thread
    let _ = stream.write_all(ANSWER).await; // an error only means the client has gone
} // dropping the stream closes the connection

// ---- The executor: the tasks, the ready queue, `spawn` and `block_on`. ----

/// Boxed, so that futures of any type share one table; pinned, because an `async fn`'s state
/// may hold a reference into itself (`buf`, read into across an `.await`) and must not move.
type Task = Pin<Box<dyn Future<Output = ()>>>;
/// The main future's id, and the bell's token. Tasks and sockets are numbered from 1 and never
/// reused, so a late wake or event for one that has gone finds nothing.
const MAIN: usize = 0;

/// Where wakes go. Every `Waker` holds it, and a `Waker` may be used on any thread.
struct Queue {
    ready: mpsc::Sender<usize>,
    /// Ends the runtime's wait in `poll`, where a wake from another thread would find it. Rung
    /// on every wake, so the runtime never waits while a task is ready.
    bell: mio::Waker,
}

/// A task's `Waker` puts the task's id on the queue. std makes a `Waker` of this `Arc`
/// (`std::task::Wake`), so no unsafe code is needed.
struct TaskWaker(usize, Arc<Queue>);

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        // Both fail only once the runtime has ended, when there is nobody left to wake.
        let _ = self.1.ready.send(self.0);
        let _ = self.1.bell.wake();
    }
}

/// What a task finds on its thread without a handle, as in tokio: how `spawn`, `sleep` and the
/// sockets reach the runtime they run on. One runtime per thread.
struct Runtime {
    registry: Registry,
    queue: Arc<Queue>,
    last: usize,
    /// Every task but the main one, by id; out of the table while it is being polled.
    tasks: HashMap<usize, Task>,
    /// By token: the waker of the task waiting to read, and of the one waiting to write.
    sockets: HashMap<Token, [Option<Waker>; 2]>,
    /// Sorted by deadline: the first one is the poll's timeout.
    timers: Vec<(Instant, Waker)>,
}

thread_local!(static RUNTIME: RefCell<Option<Runtime>> = const { RefCell::new(None) });

/// Runs `f` on this thread's runtime. No `f` polls or drops a task, which might call `with`
/// again and find the `RefCell` already borrowed.
fn with<T>(f: impl FnOnce(&mut Runtime) -> T) -> io::Result<T> {
    let done = RUNTIME.with_borrow_mut(|rt| rt.as_mut().map(f));
    done.ok_or_else(|| io::Error::other("not inside block_on"))
}

/// Runs `task` alongside the others, from a first poll on the next turn.
pub fn spawn(task: impl Future<Output = ()> + 'static) -> io::Result<()> {
    with(|rt| {
        rt.last += 1;
        rt.tasks.insert(rt.last, Box::pin(task));
        Waker::from(Arc::new(TaskWaker(rt.last, Arc::clone(&rt.queue)))).wake();
    })
}

/// Runs `main`, and the tasks it spawns, until `main` ends; the tasks left then are dropped.
pub fn block_on(main: impl Future<Output = io::Result<()>>) -> io::Result<()> {
    let mut poll = mio::Poll::new()?;
    let (ready, woken) = mpsc::channel();
    let queue = Arc::new(Queue {
        ready,
        bell: mio::Waker::new(poll.registry(), Token(MAIN))?,
    });
    RUNTIME.set(Some(Runtime {
        registry: poll.registry().try_clone()?,
        queue: Arc::clone(&queue),
        last: MAIN,
        tasks: HashMap::new(),
        sockets: HashMap::new(),
        timers: Vec::new(),
    }));
    let (mut main, mut events) = (pin!(main), Events::with_capacity(256));
    Waker::from(Arc::new(TaskWaker(MAIN, Arc::clone(&queue)))).wake();
    let result = 'run: loop {
        // Poll each task woken so far, once. One woken meanwhile waits for the next turn, so a
        // task that keeps waking itself cannot shut the sockets and timers out.
        for id in woken.try_iter().collect::<Vec<_>>() {
            let waker = Waker::from(Arc::new(TaskWaker(id, Arc::clone(&queue))));
            let cx = &mut Context::from_waker(&waker);
            if id == MAIN {
                if let Poll::Ready(result) = main.as_mut().poll(cx) {
                    break 'run result;
                }
            } else if let Ok(Some(mut task)) = with(|rt| rt.tasks.remove(&id)) {
                if task.as_mut().poll(cx).is_pending() {
                    let _ = with(|rt| rt.tasks.insert(id, task));
                } // else it is dropped here, and with it the sockets it owns
            }
        }
        // The only wait, for everything at once: a socket, the earliest deadline, the bell.
        let earliest = with(|rt| rt.timers.first().map(|(t, _)| *t)).unwrap_or_default();
        let timeout = earliest.map(|t| t.saturating_duration_since(Instant::now()));
        match poll.poll(&mut events, timeout) {
            Err(e) if e.kind() != ErrorKind::Interrupted => break Err(e),
            _ => {}
        }
        let _ = with(|rt| rt.react(&events));
    };
    RUNTIME.take(); // and with it the tasks left and every waker
    result
}

/// Ends once `duration` has passed: a deadline among the timers, not a sleeping thread.
pub async fn sleep(duration: Duration) {
    let until = Instant::now() + duration;
    poll_fn(|cx| {
        if Instant::now() >= until {
            return Poll::Ready(());
        }
        // Filed at each poll: a poll for another reason only adds a wake for nothing.
        let _ = with(|rt| {
            let at = rt.timers.partition_point(|(t, _)| *t <= until);
            rt.timers.insert(at, (until, cx.waker().clone()));
        });
        Poll::Pending
    })
    .await
}

// ---- The reactor: sockets registered once, and each accept, read and write a future. ----

const READ: usize = 0;
const WRITE: usize = 1;

impl Runtime {
    /// What `poll` found: each event wakes the task waiting on that socket in that direction
    /// (an error wakes both), and each deadline passed wakes its task.
    fn react(&mut self, events: &Events) {
        for event in events {
            let Some(wakers) = self.sockets.get_mut(&event.token()) else {
                continue; // the bell: it only ended the wait
            };
            let read = event.is_readable() || event.is_read_closed() || event.is_error();
            let write = event.is_writable() || event.is_write_closed() || event.is_error();
            for (slot, ready) in wakers.iter_mut().zip([read, write]) {
                if let Some(waker) = slot.take_if(|_| ready) {
                    waker.wake();
                }
            }
        }
        let due = self.timers.partition_point(|(t, _)| *t <= Instant::now());
        self.timers.drain(..due).for_each(|(_, waker)| waker.wake());
    }
}

/// A non-blocking socket registered once, for both directions, edge-triggered: an event comes
/// when the socket becomes ready, not while it stays ready.
pub struct Async<S: Source> {
    source: S,
    token: Token,
}

impl<S: Source> Async<S> {
    pub fn new(mut source: S) -> io::Result<Async<S>> {
        let both = Interest::READABLE | Interest::WRITABLE;
        let token = with(|rt| {
            rt.last += 1;
            let token = Token(rt.last);
            rt.registry
                .register(&mut source, token, both)
                .map(|()| token)
        })??; // not inside block_on, or the poller said no
        Ok(Async { source, token })
    }

    /// Runs `op` until it does not say `WouldBlock`, waiting for the socket in between. The
    /// edge-triggered rule lives here, once: a task waits only after `WouldBlock`, never while
    /// bytes are there, for which no event would come.
    async fn io<T>(
        &mut self,
        dir: usize,
        mut op: impl FnMut(&mut S) -> io::Result<T>,
    ) -> io::Result<T> {
        poll_fn(|cx| match op(&mut self.source) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                // The socket's next event in this direction wakes the task.
                let waker = cx.waker().clone();
                with(|rt| rt.sockets.entry(self.token).or_default()[dir] = Some(waker))?;
                Poll::Pending
            }
            done => Poll::Ready(done),
        })
        .await
    }
}

impl<S: Source> Drop for Async<S> {
    fn drop(&mut self) {
        // Closing the socket takes it out of the poller; its wakers must go too.
        let _ = with(|rt| rt.sockets.remove(&self.token));
    }
}

impl Async<TcpListener> {
    pub async fn accept(&mut self) -> io::Result<Async<TcpStream>> {
        Async::new(self.io(READ, |l| l.accept()).await?.0)
    }
}

impl Async<TcpStream> {
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io(READ, |s| s.read(buf)).await
    }

    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.io(WRITE, |s| s.write(buf)).await? {
                0 => return Err(ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }
}
