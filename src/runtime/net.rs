//! Sockets as futures: `accept`, `readable`, `read`, `write_vectored`, on the runtime of the
//! current thread.
//!
//! Each operation tries the system call first and waits only when it says `WouldBlock`
//! (see [`crate::runtime::reactor`]). A socket is registered with the reactor when it is made
//! and taken off when it is dropped. The method names and shapes are tokio's.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr};
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

    /// Waits until a read would not block: bytes or the client's FIN (`Ok`), or an error. It looks
    /// first (a peek of one byte that never waits), so bytes that are already here are never
    /// waited for; and it holds no buffer while it waits, only a reference to the socket.
    pub fn readable(&self) -> Readable<'_> {
        Readable { stream: self }
    }

    /// Reads what is here now, without waiting: `WouldBlock` if nothing is.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.inner).read(buf)
    }

    /// Reads at least one byte (0 at the end), waiting until some come.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            let result = (&self.inner).read(buf);
            ready_or_wait(result, self.token, Direction::Read, cx)
        })
        .await
    }

    /// Writes some of `bufs`, in one `writev`, waiting while the send buffer is full.
    pub async fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        poll_fn(|cx| {
            let result = (&self.inner).write_vectored(bufs);
            ready_or_wait(result, self.token, Direction::Write, cx)
        })
        .await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_vectored(&[IoSlice::new(buf)]).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Closes one side (or both) of the connection: `Write` sends FIN.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }
}

/// The future of [`TcpStream::readable`].
pub struct Readable<'a> {
    stream: &'a TcpStream,
}

impl Future for Readable<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = self.stream;
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        let peeked = socket2::SockRef::from(&stream.inner)
            .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT);
        // Bytes or the end: the next read says which. An error (a reset) is said now: the
        // peek has taken it from the socket, and the next read would find only the end.
        ready_or_wait(peeked.map(|_| ()), stream.token, Direction::Read, cx)
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
                core.reactor.borrow_mut().wait(token, direction, cx.waker());
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
