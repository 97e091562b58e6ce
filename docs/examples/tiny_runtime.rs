//! The smallest complete async runtime (an executor, a reactor, a timer) and a hello server
//! on it, in one file: chapter 10's first listing. `cargo run --example tiny_runtime` serves
//! http://127.0.0.1:1731/ with a second of work per request.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpListener as StdListener;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{event::Source, Events, Interest, Token};

pub const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nHello World\n";

fn main() -> io::Result<()> {
    let listener = StdListener::bind("127.0.0.1:1731")?;
    let addr = listener.local_addr()?;
    writeln!(io::stdout(), "tiny_runtime listening on http://{addr}")?;
    serve_on(listener, Duration::from_secs(1), &AtomicBool::new(false))
}

/// The accept loop is the main task, each connection a task of its own, until `stop`.
pub fn serve_on(listener: StdListener, work: Duration, stop: &AtomicBool) -> io::Result<()> {
    listener.set_nonblocking(true)?; // an accept that waited would stop every task
    block_on(async {
        let mut listener = Async::new(TcpListener::from_std(listener))?;
        while !stop.load(Ordering::Relaxed) {
            spawn(serve(listener.accept().await?, work))?;
        }
        Ok(())
    })
}

/// One connection's whole story, top to bottom; while it waits at an `.await`, others run.
async fn serve(mut stream: Async<TcpStream>, work: Duration) {
    let (mut head, mut buf) = (Vec::new(), [0u8; 1024]);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(n @ 1..) if head.len() < 8192 => head.extend_from_slice(&buf[..n]),
            _ => return, // the client left (0 bytes), or broke, or the head never ends
        }
    }
    sleep(work).await; // a timer, not a sleeping thread
    let _ = stream.write_all(ANSWER).await; // an error only means the client has gone
} // dropping the stream closes the connection

// ---- The executor: tasks, the ready queue, `spawn`, and `block_on` with its timers ----

/// Boxed, so that futures of any type share one table; pinned, because an `async fn`'s state
/// may hold a reference into itself (`buf`, read into across an `.await`) and must not move.
type Task = Pin<Box<dyn Future<Output = ()>>>;
/// Where wakes go, from any thread: the ready queue, and a bell that ends the wait in `poll`.
type Queue = (mpsc::Sender<usize>, mio::Waker);

/// A task's `Waker`, which std makes of this `Arc` (`std::task::Wake`): no unsafe code.
struct TaskWaker(usize, Arc<Queue>);

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        let (ready, bell) = &*self.1;
        let _ = ready.send(self.0); // fails once the runtime has ended: nobody to wake
        let _ = bell.wake();
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(1); // ids of tasks and sockets (0: main, the bell)

struct Runtime {
    poll: mio::Poll,
    queue: Arc<Queue>,
    tasks: HashMap<usize, (Task, Waker)>, // not the main one, nor the one being polled
    sockets: HashMap<Token, [Option<Waker>; 2]>, // who waits to read, and who to write
    timers: Vec<(Instant, Waker)>,        // sorted: the first is the poll's timeout
}

thread_local!(static RUNTIME: RefCell<Option<Runtime>> = const { RefCell::new(None) });

/// This thread's runtime. No `f` polls or drops a task, which might call `with` again.
fn with<T>(f: impl FnOnce(&mut Runtime) -> T) -> io::Result<T> {
    let done = RUNTIME.with_borrow_mut(|rt| rt.as_mut().map(f));
    done.ok_or_else(|| io::Error::other("not inside block_on"))
}

pub fn spawn(task: impl Future<Output = ()> + 'static) -> io::Result<()> {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    with(|rt| {
        let waker = Waker::from(Arc::new(TaskWaker(id, Arc::clone(&rt.queue))));
        waker.wake_by_ref(); // its first poll, on the next turn
        rt.tasks.insert(id, (Box::pin(task), waker));
    })
}

pub fn block_on(main: impl Future<Output = io::Result<()>>) -> io::Result<()> {
    let (poll, (ready, woken)) = (mio::Poll::new()?, mpsc::channel());
    let queue = Arc::new((ready, mio::Waker::new(poll.registry(), Token(0))?));
    let main_waker = Waker::from(Arc::new(TaskWaker(0, Arc::clone(&queue))));
    RUNTIME.set(Some(Runtime {
        poll,
        queue,
        tasks: HashMap::new(),
        sockets: HashMap::new(),
        timers: Vec::new(),
    }));
    let (mut main, main_cx) = (pin!(main), &mut Context::from_waker(&main_waker));
    let mut events = Events::with_capacity(256);
    main_waker.wake_by_ref();
    let result = 'run: loop {
        // Each task woken so far, polled once; one woken meanwhile waits for the next turn.
        for id in woken.try_iter().collect::<Vec<_>>() {
            if id == 0 {
                if let Poll::Ready(result) = main.as_mut().poll(main_cx) {
                    break 'run result;
                }
            } else if let Ok(Some((mut task, waker))) = with(|rt| rt.tasks.remove(&id)) {
                let cx = &mut Context::from_waker(&waker);
                if task.as_mut().poll(cx).is_pending() {
                    let _ = with(|rt| rt.tasks.insert(id, (task, waker)));
                } // else it is dropped here, with the sockets it owns
            }
        }
        if let Err(e) = with(|rt| react(rt, &mut events)).and_then(|reacted| reacted) {
            break Err(e);
        }
    };
    RUNTIME.take(); // and with it the tasks left and every waker
    result
}

pub async fn sleep(duration: Duration) {
    let until = Instant::now() + duration;
    poll_fn(|cx| {
        if Instant::now() >= until {
            return Poll::Ready(());
        }
        let _ = with(|rt| {
            let at = rt.timers.partition_point(|(t, _)| *t <= until);
            rt.timers.insert(at, (until, cx.waker().clone()));
        });
        Poll::Pending
    })
    .await
}

// ---- The reactor: the one wait, and sockets whose accept, read and write are futures ----

/// The one wait, for a socket, the first deadline or the bell; then the wakes they bring.
fn react(rt: &mut Runtime, events: &mut Events) -> io::Result<()> {
    let first = rt.timers.first().map(|(t, _)| *t);
    let timeout = first.map(|t| t.saturating_duration_since(Instant::now()));
    match rt.poll.poll(events, timeout) {
        Err(e) if e.kind() != ErrorKind::Interrupted => return Err(e),
        _ => {}
    }
    for event in events.iter() {
        let Some(wakers) = rt.sockets.get_mut(&event.token()) else {
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
    let due = rt.timers.partition_point(|(t, _)| *t <= Instant::now());
    rt.timers.drain(..due).for_each(|(_, waker)| waker.wake());
    Ok(())
}

pub struct Async<S: Source> {
    source: S,
    token: Token,
}

impl<S: Source> Async<S> {
    pub fn new(mut source: S) -> io::Result<Async<S>> {
        let token = Token(NEXT.fetch_add(1, Ordering::Relaxed));
        let both = Interest::READABLE | Interest::WRITABLE;
        with(|rt| rt.poll.registry().register(&mut source, token, both))??;
        Ok(Async { source, token })
    }

    /// Tries `op`, and waits for the socket's next event in direction `dir` (0 read, 1 write)
    /// only when it says `WouldBlock`: the edge-triggered rule, kept here once.
    async fn io<T>(
        &mut self,
        dir: usize,
        mut op: impl FnMut(&mut S) -> io::Result<T>,
    ) -> io::Result<T> {
        poll_fn(|cx| match op(&mut self.source) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let waker = Some(cx.waker().clone());
                with(|rt| rt.sockets.entry(self.token).or_default()[dir] = waker)?;
                Poll::Pending
            }
            done => Poll::Ready(done),
        })
        .await
    }
}

impl<S: Source> Drop for Async<S> {
    fn drop(&mut self) {
        let _ = with(|rt| rt.sockets.remove(&self.token)); // closing it takes it off the poller
    }
}

impl Async<TcpListener> {
    pub async fn accept(&mut self) -> io::Result<Async<TcpStream>> {
        Async::new(self.io(0, |l| l.accept()).await?.0)
    }
}

impl Async<TcpStream> {
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io(0, |s| s.read(buf)).await
    }

    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.io(1, |s| s.write(buf)).await? {
                0 => return Err(ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }
}
