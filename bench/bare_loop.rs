//! A bare event loop, for `bench/bare_loop.sh` and `bench/compare.sh` only: the least a
//! thread on mio can do per request, to tell what the stages' event loops cost from what the
//! machine costs.
//!
//! It accepts, reads until it has a blank line, writes one fixed response and, unless run
//! with `keep-alive`, closes. No parser, no timers, no limits, no logging, no shutdown: not a
//! server to learn from (stage 06 is that), a floor to measure against. It answers anything
//! that ends in `\r\n\r\n` with the same 200 response.
//!
//! It listens with the stages' backlog (1024, `--backlog` to change it), not std's 128: with
//! 200 clients connecting at once, a shorter queue would drop SYNs the stages accept, and the
//! floor would not be measured under the same conditions.
//!
//! With `--threads N` it runs N such loops, each on a thread of its own with its own poller
//! and its own listening socket, all on one address with `SO_REUSEPORT`, as stage 09 runs its
//! `--loops`: the floor for a loop per core. One thread (the default) binds without
//! `SO_REUSEPORT`, as it always did.
//!
//! `cargo run --release --example bare_loop -- --addr 127.0.0.1:0 [--keep-alive]
//! [--backlog N] [--threads N]` prints `bare_loop listening on http://ADDR`, as the stages do.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tcp_server::listener;

const LISTENER: Token = Token(0);
const BODY: &str = "Hello World\n";
/// The stages' default `--backlog` (`src/config.rs`).
const BACKLOG: u32 = 1024;
/// Stage 09's bound on `--loops`.
const MOST_THREADS: usize = 1024;

fn main() -> ExitCode {
    let (mut addr, mut keep_alive, mut backlog, mut threads, mut unknown) =
        (None, false, Some(BACKLOG), Some(1), false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().and_then(|a| a.parse::<SocketAddr>().ok()),
            "--keep-alive" => keep_alive = true,
            "--backlog" => backlog = args.next().and_then(|n| n.parse::<u32>().ok()),
            "--threads" => threads = args.next().and_then(|n| n.parse::<usize>().ok()),
            _ => unknown = true,
        }
    }
    let (Some(addr), Some(backlog @ 1..), Some(threads @ 1..=MOST_THREADS), false) =
        (addr, backlog, threads, unknown)
    else {
        eprintln!(
            "usage: bare_loop --addr IP:PORT [--keep-alive] [--backlog N (default {BACKLOG})] \
             [--threads N (1 to {MOST_THREADS}, default 1)]"
        );
        return ExitCode::from(2);
    };
    match serve(addr, keep_alive, backlog, threads) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_loop: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Binds a listener per thread on one address (the first picks the port when asked for port
/// 0, the others join its `SO_REUSEPORT` group), starts a loop on each and waits for them.
fn serve(addr: SocketAddr, keep_alive: bool, backlog: u32, threads: usize) -> io::Result<()> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: {connection}\r\n\r\n{BODY}",
        BODY.len()
    );
    // The stages' own binding (src/listener.rs): one socket, or one per loop as stage 09 opens.
    let listeners = if threads == 1 {
        vec![listener::bind(addr, backlog)?]
    } else {
        listener::bind_per_loop(addr, backlog, threads)?
    };
    let local = match listeners.first() {
        Some(first) => first.local_addr()?,
        None => return Err(io::Error::other("no listener was opened")),
    };
    // A loop returns only on an error of its poller: the first one to say so ends the process.
    let (ended, first_end) = mpsc::channel();
    for (i, listener) in listeners.into_iter().enumerate() {
        let (response, ended) = (response.clone(), ended.clone());
        thread::Builder::new()
            .name(format!("loop-{i}"))
            .spawn(move || {
                // mio's from_std expects a non-blocking socket and does not make it one.
                let run = listener.set_nonblocking(true).and_then(|()| {
                    run_loop(TcpListener::from_std(listener), &response, keep_alive)
                });
                let _ = ended.send(run);
            })?;
    }
    drop(ended);
    // Stdout is line-buffered: the line is out before the first accept. A closed stdout is
    // no reason to stop serving.
    let _ = writeln!(io::stdout(), "bare_loop listening on http://{local}");
    first_end
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("every loop ended without a word")))
}

/// One loop: its own poller, its own listener and its own connections.
fn run_loop(mut listener: TcpListener, response: &str, keep_alive: bool) -> io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: HashMap<Token, (TcpStream, Vec<u8>)> = HashMap::new();
    let mut next = 1;
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let token = Token(next);
                            next += 1;
                            if poll
                                .registry()
                                .register(&mut stream, token, Interest::READABLE)
                                .is_ok()
                            {
                                conns.insert(token, (stream, Vec::new()));
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        // Out of descriptors, a reset client: try again at the next event.
                        Err(_) => break,
                    }
                }
                continue;
            }
            let token = event.token();
            let done = match conns.get_mut(&token) {
                Some((stream, input)) => serve_ready(stream, input, response, keep_alive),
                None => false,
            };
            if done {
                conns.remove(&token);
            }
        }
    }
}

/// Reads until WouldBlock and answers every complete head; true when the connection is done.
fn serve_ready(stream: &mut TcpStream, input: &mut Vec<u8>, response: &str, keep: bool) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    while let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") {
        input.drain(..end + 4);
        // The response is small enough for an empty send buffer; a short write ends the
        // connection, which a floor to measure against can afford.
        if !matches!(stream.write(response.as_bytes()), Ok(n) if n == response.len()) || !keep {
            return true;
        }
    }
    false
}
