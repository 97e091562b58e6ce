//! Stage 10's runtime: what `async fn` needs to run, in three small parts and the sockets.
//!
//! An `async fn` is compiled into a state machine, a [`Future`](std::future::Future): each
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
pub mod time;

pub use executor::{spawn, Runtime};

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
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 16];
            let cut = timeout(Duration::from_millis(100), async move {
                stream.read(&mut buf).await
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
            let (mut stream, _) = listener.accept().await.unwrap();
            // Let both the bytes and the FIN arrive before the first read.
            sleep(Duration::from_millis(50)).await;
            let mut buf = [0u8; 16];
            let n = stream.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"ping");
            stream.write_all(b"pong").await.unwrap();
            let end = timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
            assert!(matches!(end, Ok(Ok(0))), "the FIN was not lost");
        });
        assert_eq!(client.join().unwrap(), b"pong");
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
