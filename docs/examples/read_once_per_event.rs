//! Chapter 6's tempting wrong version: an event loop that reads a connection once per event.
//!
//! Everything else is right (the listener is drained to `WouldBlock`, the sockets are
//! non-blocking), but a readable event is answered with one `read` into a small buffer. mio's
//! events are edge-triggered: the poller reports a socket when new bytes *arrive*, not while
//! bytes are *waiting*. A request longer than one read, sent in one go, arrives in one edge;
//! the first read takes part of it, and no event ever comes for the rest. The client waits
//! for an answer to a request the server never finishes reading.
//!
//! The tests in `tests/docs.rs` run it: the same request is answered when it is sent a few
//! bytes at a time (an edge per piece), and never when it is sent at once.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";

/// Serves until `stop` is set: answers every request head with `ANSWER`, reading each
/// connection once per event, 16 bytes at a time.
pub fn serve(listener: std::net::TcpListener, stop: &AtomicBool) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: HashMap<Token, (TcpStream, Vec<u8>)> = HashMap::new();
    let mut events = Events::with_capacity(64);
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(20)))?;
        for event in events.iter() {
            if event.token() == LISTENER {
                // Right: accept until WouldBlock.
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            next += 1;
                            poll.registry().register(
                                &mut stream,
                                Token(next),
                                Interest::READABLE,
                            )?;
                            conns.insert(Token(next), (stream, Vec::new()));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let Some((stream, head)) = conns.get_mut(&event.token()) else {
                continue;
            };
            // Wrong: one read per event. The bytes after these 16 wait in the kernel, and
            // the edge that announced them has been used up.
            let mut chunk = [0u8; 16];
            match stream.read(&mut chunk) {
                Ok(0) => {
                    conns.remove(&event.token());
                }
                Ok(n) => {
                    head.extend_from_slice(&chunk[..n]);
                    if head.windows(4).any(|w| w == b"\r\n\r\n") {
                        let _ = stream.write_all(ANSWER);
                        conns.remove(&event.token());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    conns.remove(&event.token());
                }
            }
        }
    }
    Ok(())
}
