//! Sockets as futures: `accept`, `readable` and `writable`, beside `try_read` and
//! `try_write_vectored`, which never wait, on the runtime of the current thread.
//!
//! Each wait looks first and waits only when the socket says `WouldBlock` (see
//! [`crate::runtime::reactor`]). A socket is registered with the reactor when it is made and
//! taken off when it is dropped. The names and shapes are tokio's, so that stage 11's
//! `serve` is stage 10's.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::executor;
use crate::runtime::reactor::Direction;

/// A listening socket on this thread's runtime.
pub struct TcpListener {
    inner: mio::net::TcpListener,
    token: usize,
}

impl TcpListener {
    /// Takes a bound listener onto this thread's runtime (it is made non-blocking here).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        let mut inner = mio::net::TcpListener::from_std(listener);
        let token = executor::current()?
            .reactor
            .borrow_mut()
            .register(&mut inner)?;
        Ok(TcpListener { inner, token })
    }

    /// The next client: waits until one is in the backlog.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = poll_fn(|cx| {
            let result = self.inner.accept();
            ready_or_wait(result, self.token, Direction::Read, cx)
        })
        .await?;
        Ok((TcpStream::new(stream)?, peer))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        forget(&mut self.inner, self.token);
    }
}

/// A connection on this thread's runtime.
pub struct TcpStream {
    inner: mio::net::TcpStream,
    token: usize,
}

impl TcpStream {
    fn new(mut inner: mio::net::TcpStream) -> io::Result<TcpStream> {
        let token = executor::current()?
            .reactor
            .borrow_mut()
            .register(&mut inner)?;
        Ok(TcpStream { inner, token })
    }

    /// Waits until a read may not block: bytes or the client's FIN, or an error. Ready at once
    /// unless a read has said `WouldBlock` since the poller last reported the socket; it may
    /// then be ready with nothing to read (a read that finds nothing clears it again). It
    /// holds no buffer while it waits, only a reference to the socket.
    pub fn readable(&self) -> Ready<'_> {
        Ready {
            stream: self,
            direction: Direction::Read,
        }
    }

    /// Reads what is here now, without waiting: `WouldBlock` if nothing is, which also tells
    /// the reactor to wait for the next event before saying the socket is readable again.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.clear_on_would_block((&self.inner).read(buf), Direction::Read)
    }

    /// Waits until a write may not block: room in the send buffer, as [`TcpStream::readable`].
    pub fn writable(&self) -> Ready<'_> {
        Ready {
            stream: self,
            direction: Direction::Write,
        }
    }

    /// Writes what fits now of `bufs`, in one `writev`, without waiting: `WouldBlock` if
    /// nothing does.
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.clear_on_would_block((&self.inner).write_vectored(bufs), Direction::Write)
    }

    fn clear_on_would_block(&self, result: io::Result<usize>, way: Direction) -> io::Result<usize> {
        if matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            if let Ok(core) = executor::current() {
                core.reactor.borrow_mut().clear(self.token, way);
            }
        }
        result
    }
}

/// The future of [`TcpStream::readable`] and [`TcpStream::writable`].
pub struct Ready<'a> {
    stream: &'a TcpStream,
    direction: Direction,
}

impl Future for Ready<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match executor::current() {
            Ok(core) => {
                let mut reactor = core.reactor.borrow_mut();
                match reactor.poll_ready(self.stream.token, self.direction, cx.waker()) {
                    true => Poll::Ready(Ok(())),
                    false => Poll::Pending,
                }
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for TcpStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        forget(&mut self.inner, self.token);
    }
}

/// A system call's result, or `Pending` with the task's waker left with the reactor when it
/// said `WouldBlock`. A call interrupted by a signal is tried again at once.
fn ready_or_wait<T>(
    result: io::Result<T>,
    token: usize,
    direction: Direction,
    cx: &mut Context<'_>,
) -> Poll<io::Result<T>> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => match executor::current() {
            Ok(core) => {
                let mut reactor = core.reactor.borrow_mut();
                reactor.clear(token, direction);
                if reactor.poll_ready(token, direction, cx.waker()) {
                    cx.waker().wake_by_ref(); // cannot happen: nothing set it since
                }
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        result => Poll::Ready(result),
    }
}

/// Takes a socket off its runtime's reactor, if the runtime is still there.
fn forget(socket: &mut impl mio::event::Source, token: usize) {
    if let Ok(core) = executor::current() {
        if let Ok(mut reactor) = core.reactor.try_borrow_mut() {
            reactor.deregister(socket, token);
        }
    }
}
