//! # Stage 06: one thread, many customers: an event loop
//!
//! **The idea.** One thread serves every connection, and it never waits on any one of them.
//! Every socket is non-blocking and watched by one poller (`mio::Poll`: epoll on Linux, kqueue
//! on macOS). The loop sleeps in `poll` until some socket is ready or the earliest timer is
//! due, then does, for each ready socket, only what can be done at once: accept, read what
//! has arrived, write what fits. Each connection's progress is written down as a state machine
//! (`src/event_loop/conn.rs`) instead of being kept in a blocked thread; the work and every deadline are
//! timers in the same loop.
//!
//! **The cafe.** One barista who never stands and waits: she takes the next order while the
//! machine brews, and hands each coffee over when its timer rings.
//!
//! **Changed since stage 05.** Not a new limit but a new model, so the diff is large: the
//! accept loop becomes an event loop, the pool and the semaphore are gone, the simulated work
//! is a timer, the deadlines of stage 05 are timers, and `--max-conns` bounds the connections
//! held (10 000 by default) the way stage 03 bounded them: at the limit, stop accepting.
//!
//! **Run it.** `cargo run --release --bin 06_event_loop`, then a hundred curls at once: all of
//! them answer after about a second, from one thread (`ps -T`: that one and `ctrl-c`).
//!
//! **What breaks next.** Each connection still carries one request: every request pays for a
//! TCP handshake and leaves a closed connection behind. Stage 07 keeps connections open for the
//! next request. And work that computes (`--cpu-ms`) stalls every connection on the loop.
//! (Chapter 6: `docs/06-event-loop.md`.)

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

const STAGE: &str = "06_event_loop";
/// The tokens of the listener and of Ctrl-C's waker; connections get the slab's indexes.
const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
/// The most clients accepted in one turn of the loop. Each is served as it is accepted (its
/// request has usually arrived with it), so under a flood of new connections a loop that
/// accepted until the backlog was empty could keep accepting while the connections it holds
/// wait for their turn: 200 clients reconnecting as fast as they are answered keep refilling it.
const ACCEPTS_PER_TURN: usize = 64;

/// One thread, many connections: an event loop.
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
}

fn main() -> Result<ExitCode, StartError> {
    let Flags {
        common,
        max_conns,
        header_timeout,
        write_timeout,
    } = Flags::parse();
    let config = Config {
        max_conns,
        header_timeout,
        write_timeout,
        ..common.config(&[Flag::MaxHeld, Flag::HeaderTimeout, Flag::WriteTimeout])
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
    let server = Server::start_event_loop(STAGE, config, local, waker)?;
    let mut conns = Connections::new(&server, Reuse::Never);
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
