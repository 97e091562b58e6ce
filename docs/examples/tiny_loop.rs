//! The smallest complete event-loop server (chapter 6): one thread serves every connection.
//!
//! The sockets are non-blocking and registered with one poller (mio; epoll on Linux). The loop
//! sleeps until a socket is ready or the earliest work is done, does what it can without
//! waiting, and sleeps again. A connection is a state in a table, not a thread. In the cafe:
//! one barista, who takes the next order while the machine brews.
//!
//! `cargo run --example tiny_loop [-- PORT]` serves http://127.0.0.1:1730/ (or PORT), with a
//! second of work per request. Stage 06 adds what a server open to anybody needs.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener as StdListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(0);
const WORK: Duration = Duration::from_secs(1);
/// The blank line that ends a request's head.
const END: &[u8] = b"\r\n\r\n";
/// A head that never ends must not grow without bound.
const MAX_HEAD: usize = 8192;
/// The answer to any request: no parser looks at what was asked.
pub const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nHello World\n";

/// Where a connection is. No thread waits on its behalf, so its progress must be data.
enum State {
    /// Reading the request, up to its blank line.
    Reading(Vec<u8>),
    /// The simulated work, done at this moment: a timer, not a sleeping thread.
    Working(Instant),
    /// Writing `ANSWER`, of which this many bytes are sent.
    Writing(usize),
}

fn main() -> io::Result<()> {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "1730".into());
    let port: u16 = arg
        .parse()
        .map_err(|_| io::Error::other(format!("not a port: {arg}")))?;
    let listener = StdListener::bind((Ipv4Addr::LOCALHOST, port))?;
    let addr = listener.local_addr()?;
    writeln!(io::stdout(), "tiny_loop listening on http://{addr}")?;
    serve(listener, WORK, &AtomicBool::new(false))
}

/// Answers every request on `listener` with `ANSWER`, `work` after its blank line, until
/// `stop` is set (seen once per turn of the loop).
pub fn serve(listener: StdListener, work: Duration, stop: &AtomicBool) -> io::Result<()> {
    // Non-blocking: accept() may never wait, or every connection would wait with it.
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(256);
    // The connections, each with its state, by the token its events will carry.
    let mut conns: HashMap<Token, (TcpStream, State)> = HashMap::new();
    let mut next = 1;
    while !stop.load(Ordering::Relaxed) {
        // The only wait, for everything at once: any socket, or the earliest work done.
        let now = Instant::now();
        let earliest = conns.values().filter_map(|(_, state)| match state {
            State::Working(until) => Some(*until),
            _ => None,
        });
        let timeout = earliest.min().map(|t| t.saturating_duration_since(now));
        match poll.poll(&mut events, timeout) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            result => result?,
        }
        let now = Instant::now();
        for event in events.iter() {
            let token = event.token();
            if token != LISTENER {
                // A connection is ready: move it on. A token already closed does nothing.
                if let Some((stream, state)) = conns.get_mut(&token) {
                    if !advance(stream, state, now, work) {
                        conns.remove(&token); // dropping the stream closes it
                    }
                }
                continue;
            }
            // Edge-triggered: this one event may stand for many clients, and no other event
            // will come for them. So accept until WouldBlock.
            loop {
                let mut stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // Out of descriptors, say: the next client to arrive tries again.
                    Err(_) => break,
                };
                let token = Token(next);
                next += 1;
                let both = Interest::READABLE | Interest::WRITABLE;
                if poll.registry().register(&mut stream, token, both).is_ok() {
                    conns.insert(token, (stream, State::Reading(Vec::new())));
                }
            }
        }
        // The timer: whoever's work is done starts writing the answer.
        conns.retain(|_, (stream, state)| match state {
            State::Working(until) if *until <= now => advance(stream, state, now, work),
            _ => true,
        });
    }
    Ok(())
}

/// Moves a connection on as far as it can go without waiting. False once it is finished
/// (answered, gone or broken): then it is dropped, which closes it.
fn advance(stream: &mut TcpStream, state: &mut State, now: Instant, work: Duration) -> bool {
    loop {
        *state = match state {
            State::Reading(head) => match read_until_would_block(stream, head) {
                Ok(()) if head.windows(4).any(|w| w == END) => State::Working(now + work),
                Ok(()) => return true, // not all there yet: its next bytes bring an event
                Err(_) => return false,
            },
            State::Working(until) if *until <= now => State::Writing(0),
            State::Working(_) => return true,
            // Write until WouldBlock too; a full send buffer brings a writable event later.
            State::Writing(sent) => match stream.write(&ANSWER[*sent..]) {
                Ok(n) if *sent + n == ANSWER.len() => return false,
                Ok(n) => State::Writing(*sent + n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            },
        };
    }
}

/// Reads all the bytes there are. Edge-triggered: bytes left unread now bring no event later.
fn read_until_would_block(stream: &mut TcpStream, head: &mut Vec<u8>) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    while head.len() <= MAX_HEAD {
        match stream.read(&mut buf) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()), // the client left
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Err(ErrorKind::InvalidData.into())
}
