//! Stage 10's runtime: what `async fn` needs to run, in three small parts and the sockets.
//!
//! An `async fn` is compiled into a state machine, a [`Future`]: each
//! `.await` is a state, and `poll` moves it on as far as it can go, then returns `Pending`
//! after arranging to be woken. Stage 06 wrote that machine by hand (`src/event_loop/conn.rs`);
//! here the compiler writes it, and this module is what drives it:
//!
//! | part | file | what it does | stage 06's counterpart |
//! |---|---|---|---|
//! | executor | [`executor`] | tasks in a slab, a queue of those that are ready, `spawn`, `block_on` | the loop's `for event in events` |
//! | reactor | [`reactor`] | the mio poller; a socket's read and write wakers; the events that wake them | `Connections::ready` |
//! | timers | [`time`] | `sleep` and `timeout`, on a map of deadlines; the poll's timeout is the earliest | `src/event_loop/timers.rs` |
//! | sockets | [`net`] | `TcpListener::accept`, `TcpStream::read` and `write`, as futures | `Conn::read`, `Conn::write` |
//! | a bound | [`sync`] | `Semaphore`: at most N connections, a place for each | stage 03's semaphore |
//!
//! One runtime runs on one thread (stage 10 starts one per core, as stage 09 starts loops),
//! so a task is never moved between threads and needs no `Send`. A [`std::task::Waker`] may
//! be used from any thread, though: stage 08's kitchen wakes tasks from its cooks, so a wake
//! puts the task on a queue behind a `Mutex` and rings the poller's `mio::Waker` if the
//! runtime is asleep.
//!
//! The names are tokio's on purpose (`spawn`, `net::TcpListener`, `time::{sleep, timeout}`):
//! stage 11 runs the same code on tokio, and its diff is about the runtime, not the spelling.
//!
//! Introduced in chapter 10 (`docs/10-async.md`).

pub mod executor;
pub mod net;
pub mod reactor;
pub mod sync;
pub mod time;

pub use executor::{spawn, yield_now, Runtime};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Which of two futures finished first, with its output.
#[derive(Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Runs `a` and `b` together and returns the output of the first to finish (`a` if both are
/// ready); the other is dropped unfinished. tokio spells it `select!`; a function is enough
/// here, and it runs on any runtime (stage 11 uses it on tokio).
///
/// Both must be `Unpin`, so that `Race` holds them as they are, with no pinning of its own:
/// an `async fn` race would keep each future twice (the argument, and its pinned copy), and
/// what a connection's task holds while it waits is its memory. A future that is not `Unpin`
/// (an `async fn`'s) is passed pinned where it lives: `race(pin!(work), stream.readable())`.
pub fn race<A, B>(a: A, b: B) -> Race<A, B>
where
    A: Future + Unpin,
    B: Future + Unpin,
{
    Race { a, b }
}

/// The future of [`race`].
#[derive(Debug)]
pub struct Race<A, B> {
    a: A,
    b: B,
}

impl<A, B> Future for Race<A, B>
where
    A: Future + Unpin,
    B: Future + Unpin,
{
    type Output = Either<A::Output, B::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(output) = Pin::new(&mut self.a).poll(cx) {
            return Poll::Ready(Either::Left(output));
        }
        Pin::new(&mut self.b).poll(cx).map(Either::Right)
    }
}

#[cfg(test)]
mod tests {
    use super::executor::current;
    use super::net::TcpListener;
    use super::time::{sleep, timeout, Elapsed};
    use super::*;
    use std::cell::Cell;
    use std::future::poll_fn;
    use std::io::{Read, Write};
    use std::rc::Rc;
    use std::task::Poll;
    use std::time::{Duration, Instant};

    fn listener() -> std::net::TcpListener {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap()
    }

    /// A task woken three times before it runs again is polled once more, not three times;
    /// and a task that has finished is gone, however many wakers of it are still around.
    #[test]
    fn a_woken_task_runs_once_per_turn_and_a_finished_one_is_gone() {
        let runtime = Runtime::new().unwrap();
        let polls = Rc::new(Cell::new(0));
        let counted = Rc::clone(&polls);
        let kept = Rc::new(Cell::new(None));
        let keep = Rc::clone(&kept);
        runtime.block_on(async move {
            spawn(poll_fn(move |cx| {
                counted.set(counted.get() + 1);
                if counted.get() == 1 {
                    cx.waker().wake_by_ref();
                    cx.waker().wake_by_ref();
                    cx.waker().wake_by_ref();
                    keep.set(Some(cx.waker().clone()));
                    return Poll::Pending;
                }
                Poll::Ready(())
            }));
            sleep(Duration::from_millis(20)).await;
            assert_eq!(current().unwrap().tasks(), 0, "the finished task is gone");
        });
        assert_eq!(polls.get(), 2);
        assert!(kept.take().is_some(), "its waker outlived it, harmlessly");
    }

    /// `timeout` gives `Elapsed` at its deadline, not before, and drops the future it ran:
    /// an `accept` that found nobody is abandoned, and the socket a task held is closed.
    #[test]
    fn timeout_fires_at_its_deadline_and_drops_the_inner_future() {
        let runtime = Runtime::new().unwrap();
        let std_listener = listener();
        let addr = std_listener.local_addr().unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            let started = Instant::now();
            let nobody = timeout(Duration::from_millis(100), listener.accept()).await;
            assert!(matches!(nobody, Err(Elapsed)));
            let took = started.elapsed();
            assert!(took >= Duration::from_millis(100), "{took:?}");
            assert!(took < Duration::from_secs(2), "{took:?}");
            // A client connects; the server task holds its socket, waiting for bytes that
            // never come, until the timeout drops it: the client sees the end.
            let client = std::thread::spawn(move || {
                let mut client = std::net::TcpStream::connect(addr).unwrap();
                let mut rest = Vec::new();
                client.read_to_end(&mut rest).unwrap();
                rest
            });
            let (stream, _) = listener.accept().await.unwrap();
            let cut = timeout(Duration::from_millis(100), async move {
                let mut buf = [0u8; 16];
                loop {
                    match stream.try_read(&mut buf) {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            stream.readable().await?;
                        }
                        read => return read,
                    }
                }
            })
            .await;
            assert!(cut.is_err());
            assert_eq!(
                client.join().unwrap(),
                b"",
                "closed when the read was dropped"
            );
        });
    }

    /// Ten thousand tasks asleep at once are ten thousand entries in the slab and ten thousand
    /// timers, on the one thread that runs `block_on` (the runtime starts none), and they all
    /// wake. (The stage's test counts the threads of the process.)
    #[test]
    fn ten_thousand_sleeping_tasks_hold_no_thread_each() {
        let runtime = Runtime::new().unwrap();
        let woke = Rc::new(Cell::new(0));
        let counted = Rc::clone(&woke);
        runtime.block_on(async move {
            let thread = std::thread::current().id();
            for _ in 0..10_000 {
                let counted = Rc::clone(&counted);
                spawn(async move {
                    sleep(Duration::from_millis(50)).await;
                    assert_eq!(std::thread::current().id(), thread);
                    counted.set(counted.get() + 1);
                });
            }
            sleep(Duration::from_millis(10)).await;
            assert_eq!(current().unwrap().tasks(), 10_000);
            assert_eq!(current().unwrap().timers.borrow().count(), 10_000);
            sleep(Duration::from_millis(200)).await;
        });
        assert_eq!(woke.get(), 10_000);
    }

    /// A request and its FIN that arrive together, in one event: the server reads the request,
    /// answers, and its next read finds the end at once (it reads before it waits).
    #[test]
    fn a_fin_that_comes_with_the_request_is_seen() {
        let runtime = Runtime::new().unwrap();
        let std_listener = listener();
        let addr = std_listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            client.write_all(b"ping").unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).unwrap();
            answer
        });
        runtime.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            // Let both the bytes and the FIN arrive before the first read.
            sleep(Duration::from_millis(50)).await;
            let mut buf = [0u8; 16];
            stream.readable().await.unwrap();
            let n = stream.try_read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"ping");
            stream.writable().await.unwrap();
            let sent = stream.try_write_vectored(&[std::io::IoSlice::new(b"pong")]);
            assert_eq!(sent.unwrap(), 4);
            let end = timeout(Duration::from_secs(2), stream.readable()).await;
            assert!(matches!(end, Ok(Ok(()))), "the FIN was not lost");
            assert_eq!(stream.try_read(&mut buf).unwrap(), 0, "and it is the end");
        });
        assert_eq!(client.join().unwrap(), b"pong");
    }

    /// The tempting wrong future: one that returns `Pending` without leaving its waker
    /// anywhere. Nothing wakes its task when it becomes ready (here, a flag another thread
    /// sets at 20 ms): alone, it would sleep for ever; beside a 300 ms timeout, it finishes at
    /// 300 ms, when the timer happens to wake the task. The right one leaves its waker where
    /// the setter finds it, and finishes at once.
    #[test]
    fn a_future_that_forgets_its_waker_sleeps_for_ever() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let runtime = Runtime::new().unwrap();
        runtime.block_on(async {
            let flag = Arc::new(AtomicBool::new(false));
            let set = Arc::clone(&flag);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                set.store(true, Ordering::SeqCst);
            });
            // Wrong: Pending, and nobody to wake it.
            let forgetful = poll_fn(|_| match flag.load(Ordering::SeqCst) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            });
            // Its flag is set at 20 ms, but it is polled again only when the timeout's own
            // timer wakes the task, at 300 ms: that is the only reason it ever finishes.
            let started = Instant::now();
            let _ = timeout(Duration::from_millis(300), forgetful).await;
            let waited = started.elapsed();
            assert!(waited >= Duration::from_millis(290), "{waited:?}");

            let ready = Arc::new(AtomicBool::new(false));
            let waker_slot: Arc<Mutex<Option<std::task::Waker>>> = Arc::default();
            let (set, slot) = (Arc::clone(&ready), Arc::clone(&waker_slot));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                set.store(true, Ordering::SeqCst);
                if let Some(waker) = slot.lock().unwrap().take() {
                    waker.wake();
                }
            });
            // Right: the waker is left where the one who makes it ready will find it.
            let faithful = poll_fn(|cx| {
                let mut slot = waker_slot.lock().unwrap();
                if ready.load(Ordering::SeqCst) {
                    return Poll::Ready(());
                }
                *slot = Some(cx.waker().clone());
                Poll::Pending
            });
            let started = Instant::now();
            assert!(timeout(Duration::from_secs(2), faithful).await.is_ok());
            let waited = started.elapsed();
            assert!(waited < Duration::from_millis(250), "{waited:?}");
        });
    }

    /// The other tempting wrong version: `std::thread::sleep` inside an `async fn`. It holds
    /// the runtime's only thread, so every other task waits with it, as `--cpu-ms` stalls an
    /// event loop: a 10 ms timer of another task fires only after the 300 ms sleep.
    #[test]
    fn a_blocking_sleep_stops_the_whole_runtime() {
        let runtime = Runtime::new().unwrap();
        let started = Instant::now();
        let late = Rc::new(Cell::new(Duration::ZERO));
        let noted = Rc::clone(&late);
        runtime.block_on(async move {
            spawn(async move {
                sleep(Duration::from_millis(10)).await;
                noted.set(started.elapsed());
            });
            spawn(async {
                std::thread::sleep(Duration::from_millis(300)); // wrong: blocks the thread
            });
            sleep(Duration::from_millis(400)).await;
        });
        assert!(late.get() >= Duration::from_millis(300), "{:?}", late.get());
    }

    /// A waker used from another thread (a cook of the kitchen) wakes a runtime that sleeps
    /// in its poller with no timer: the wake rings the poller.
    #[test]
    fn a_wake_from_another_thread_rings_the_poller() {
        let runtime = Runtime::new().unwrap();
        let started = Instant::now();
        runtime.block_on(async {
            let mut sent = false;
            poll_fn(|cx| {
                if sent {
                    return Poll::Ready(());
                }
                sent = true;
                let waker = cx.waker().clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    waker.wake();
                });
                Poll::Pending
            })
            .await;
        });
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
