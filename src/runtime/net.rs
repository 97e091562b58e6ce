//! Sockets as futures: `accept`, `readable` and `writable`, beside `try_read` and
//! `try_write_vectored`, which never wait, on the runtime of the current thread.
//!
//! Each wait looks first and waits only when the socket says `WouldBlock` (see
//! [`crate::runtime::reactor`]). A socket is registered with the reactor when it is made and
//! taken off when it is dropped. The names and shapes are tokio's, so that stage 11's
//! `serve` is stage 10's.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
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

    /// Waits until a write would not block: room in the send buffer. Tries first, like
    /// [`TcpStream::readable`]: an empty write asks the socket without sending anything.
    pub fn writable(&self) -> Writable<'_> {
        Writable { stream: self }
    }

    /// Writes what fits now of `bufs`, in one `writev`, without waiting: `WouldBlock` if
    /// nothing does.
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&self.inner).write_vectored(bufs)
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

/// The future of [`TcpStream::writable`].
pub struct Writable<'a> {
    stream: &'a TcpStream,
}

impl Future for Writable<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = self.stream;
        // Look first, as `readable` does: poll(2) with no wait says whether the send buffer
        // has room, or the socket has failed (the next write then says how).
        let mut look = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&stream.inner),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: poll(2) reads and writes the one pollfd it is given, which lives on this
        // stack for the whole call; a timeout of 0 means it never waits.
        let found = unsafe { libc::poll(&mut look, 1, 0) };
        let looked = match found {
            n if n < 0 => Err(io::Error::last_os_error()),
            0 => Err(io::ErrorKind::WouldBlock.into()),
            _ => Ok(()),
        };
        ready_or_wait(looked, stream.token, Direction::Write, cx)
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
