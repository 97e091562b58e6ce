//! # Stage 07: regulars who keep their table: persistent HTTP/1.1 connections
//!
//! **The idea.** An HTTP/1.1 connection is persistent by default (RFC 9112 section 9.3): after
//! a response the client may send its next request on the same connection, and skip the TCP
//! handshake. On the event loop of stage 06 an idle connection costs about 0.4 KiB of the
//! process and 3.7 KiB of the kernel, not a thread, so this is where keeping connections open
//! pays. After each response a connection goes back to reading; the bytes after a request (and
//! its body) are the start of the next one, so pipelined requests are answered one after
//! another, in order, one at a time.
//!
//! **The cafe.** Regulars keep their table and order again; the barista shows them the door
//! only when they have sat idle too long.
//!
//! **Changed since stage 06.** The connections are kept (`Reuse::KeepAlive`), for at most
//! `--max-requests` requests each, and closed when idle for `--keep-alive-ms`; the state
//! machine gains its `Idle` state (`src/event_loop/conn.rs`). A response says
//! `Connection: close` only when the connection closes after it: when the client asked, for
//! HTTP/1.0 unless it asked for keep-alive, at `--max-requests`, after an error, and after
//! Ctrl-C.
//!
//! **Run it.** `cargo run --release --bin 07_keep_alive`, then
//! `curl -v http://localhost:1729/ http://localhost:1729/stats`: curl says it reuses the
//! connection, and `/stats` shows two requests on one accepted connection.
//!
//! **What breaks next.** One thread: work that computes (`--cpu-ms`) still stalls every
//! connection on the loop. Stage 08 hands it to a kitchen of threads.
//! (Chapter 7: `docs/07-keep-alive.md`.)

use std::io::ErrorKind;
use std::process::ExitCode;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use clap::Parser;
use tcp_server::config::{self, Common, Config, Flag};
use tcp_server::event_loop::conn::Reuse;
use tcp_server::event_loop::connections::Connections;
use tcp_server::{listener, logging, Server, StartError};

const STAGE: &str = "07_keep_alive";
/// The tokens of the listener and of Ctrl-C's waker; connections get the slab's indexes.
const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
/// The most clients accepted in one turn of the loop. Each is served as it is accepted (its
/// request has usually arrived with it), so under a flood of new connections a loop that
/// accepted until the backlog was empty could keep accepting while the connections it holds
/// wait for their turn: 200 clients reconnecting as fast as they are answered keep refilling it.
const ACCEPTS_PER_TURN: usize = 64;

/// The event loop, keeping each connection open for the next request.
#[derive(Parser)]
#[command(name = STAGE)]
struct Flags {
    #[command(flatten)]
    common: Common,
    /// Connections held at once, each a descriptor, about 0.4 KiB here and 3.7 KiB in the
    /// kernel; at the limit the rest wait in the backlog
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = config::count(1..=1_000_000))]
    max_conns: usize,
    /// Total time to send the request, head and body; generous for people, short for idlers
    #[arg(long = "header-timeout-ms", value_name = "MS", default_value = "5000",
          value_parser = config::millis(1..=600_000))]
    header_timeout: Duration,
    /// Total time to write a response to a client that reads slowly or not at all
    #[arg(long = "write-timeout-ms", value_name = "MS", default_value = "5000",
          value_parser = config::millis(1..=600_000))]
    write_timeout: Duration,
    /// How long an idle persistent connection is kept; short, since a kept connection holds a
    /// descriptor and a client may never come back
    #[arg(long = "keep-alive-ms", value_name = "MS", default_value = "5000",
          value_parser = config::millis(1..=600_000))]
    keep_alive: Duration,
    /// Requests on one connection before the server closes it, so no client keeps one for ever
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    max_requests: u64,
}

fn main() -> Result<ExitCode, StartError> {
    let Flags {
        common,
        max_conns,
        header_timeout,
        write_timeout,
        keep_alive,
        max_requests,
    } = Flags::parse();
    let config = Config {
        max_conns,
        header_timeout,
        write_timeout,
        keep_alive,
        max_requests,
        ..common.config(&[
            Flag::MaxHeld,
            Flag::HeaderTimeout,
            Flag::WriteTimeout,
            Flag::KeepAlive,
        ])
    };
    // socket() + bind() + listen() as in every stage; then non-blocking: accept() may never
    // wait, or every connection would wait with it.
    let listener = listener::bind(config.addr, config.backlog)
        .map_err(|e| StartError::Bind(config.addr, e))?;
    listener
        .set_nonblocking(true)
        .map_err(StartError::Listener)?;
    let mut listener = TcpListener::from_std(listener);
    // The poller watches every socket registered with it, each under a token of our choice.
    let mut poll = Poll::new().map_err(StartError::Poll)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(StartError::Poll)?;
    let waker = Waker::new(poll.registry(), WAKER).map_err(StartError::Poll)?;
    let local = listener.local_addr().map_err(StartError::Listener)?;
    // After a response, the connection stays open for the next request.
    let reuse = Reuse::KeepAlive {
        idle: config.keep_alive,
        max_requests: config.max_requests,
    };
    let server = Server::start_event_loop(STAGE, config, local, waker)?;
    let mut conns = Connections::new(&server, reuse);
    server.announce();

    let mut events = Events::with_capacity(1024);
    let mut backlog_waiting = false;
    loop {
        // Sleep until a socket is ready or the earliest timer is due; not at all while clients
        // are still waiting in the backlog.
        let timeout = if backlog_waiting && conns.has_room() {
            Some(Duration::ZERO)
        } else {
            conns.next_timeout()
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            logging::warn(format_args!("poll failed: {e}"));
            break;
        }
        for event in events.iter() {
            match event.token() {
                // Clients are waiting in the backlog: they are accepted below.
                LISTENER => backlog_waiting = true,
                // Ctrl-C: seen at the end of the turn.
                WAKER => {}
                // Read or write that connection until WouldBlock. A spurious event, or one
                // for a connection closed a moment ago, does nothing.
                _ => conns.ready(event),
            }
        }
        // Deadlines that have passed: work that is done, clients that are too slow.
        conns.fire_timers();
        // Accept until WouldBlock: the events are edge-triggered, so the listener will not
        // say again that clients are waiting. At most ACCEPTS_PER_TURN, then the others have
        // their turn and the next turn accepts more. At --max-conns the rest stay in the
        // backlog, and are taken as soon as a connection closes.
        let mut accepted = 0;
        while backlog_waiting && conns.has_room() && accepted < ACCEPTS_PER_TURN {
            match listener.accept() {
                Ok((stream, peer)) => {
                    conns.open(poll.registry(), stream, peer);
                    accepted += 1;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => backlog_waiting = false,
                // One failed accept never closes the cafe: accepting pauses, on a timer.
                Err(e) => conns.accept_failed(&e),
            }
        }
        if server.shutting_down() {
            break;
        }
    }
    // Ctrl-C: close the door (new clients are refused, those in the backlog are reset), then
    // let the requests in progress finish on this same loop, at most --drain-ms.
    drop(listener);
    conns.finish_in_progress(&mut poll, &mut events);
    Ok(server.finish())
}
