//! # Stage 08: the kitchen: work that computes leaves the event loop
//!
//! **The idea.** The event loop must never compute for long: while it computes, every other
//! connection waits. So a request's computing (`--cpu-ms`) is handed to a pool of
//! `--cpu-threads` threads (rayon's, as many as there are cores) and the loop goes on serving.
//! When a thread is done, it puts the result on a channel and wakes the loop through the same
//! `mio::Waker` that Ctrl-C uses; the loop takes every finished result and writes the answers
//! (`src/event_loop/kitchen.rs`). The waiting part of the work (`--work-ms`) stays a timer.
//!
//! **The cafe.** The barista never cooks. She passes each order that needs cooking to the
//! kitchen and takes the next; when a dish is ready the kitchen rings a bell, and she serves it.
//!
//! **Changed since stage 07.** A kitchen is opened and given to the connections
//! (`with_kitchen`), and the loop serves what the kitchen has cooked on every turn
//! (`serve_cooked`); the state machine gains its `Cooking` state. At most `--cpu-queue` orders
//! wait for a cook; past that a request is answered `503` with `Retry-After: 1`.
//!
//! **Run it.** `cargo run --release --bin 08_cpu_pool -- --cpu-ms 200`, then five curls at once
//! and `curl http://localhost:1729/stats` meanwhile: `/stats` answers at once, while stage 07
//! makes it wait for the computing in front of it.
//!
//! **What breaks next.** One loop: the loop itself uses one core of many, however many cooks
//! the kitchen has. Stage 09 runs a loop per core. (Chapter 8: `docs/08-cpu-pool.md`.)

use std::io::ErrorKind;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use clap::Parser;
use tcp_server::config::{self, Common, Config, Flag};
use tcp_server::event_loop::conn::Reuse;
use tcp_server::event_loop::connections::Connections;
use tcp_server::event_loop::kitchen::Kitchen;
use tcp_server::{listener, logging, Server, StartError};

const STAGE: &str = "08_cpu_pool";
/// The tokens of the listener and of the waker (Ctrl-C, and the kitchen's bell); connections
/// get the slab's indexes.
const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
/// The most clients accepted in one turn of the loop. Each is served as it is accepted (its
/// request has usually arrived with it), so under a flood of new connections a loop that
/// accepted until the backlog was empty could keep accepting while the connections it holds
/// wait for their turn: 200 clients reconnecting as fast as they are answered keep refilling it.
const ACCEPTS_PER_TURN: usize = 64;

/// The event loop of stage 07, with a kitchen that computes for it.
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
    /// The kitchen's threads, which compute --cpu-ms off the loop; more threads than cores
    /// only adds switching; 0: no kitchen, the loop computes, as stage 07 [default: the number
    /// of cores]
    #[arg(long, value_name = "N", value_parser = config::count(0..=1024))]
    cpu_threads: Option<usize>,
    /// Orders that may wait for a free cook; past it a request gets 503 at once, not a wait
    /// of more than that many orders' computing; no queue, and no 503, with no cooks
    /// [default: 32 per thread]
    #[arg(long, value_name = "Q", value_parser = config::count(1..=1_000_000))]
    cpu_queue: Option<usize>,
}

fn main() -> Result<ExitCode, StartError> {
    let Flags {
        common,
        max_conns,
        header_timeout,
        write_timeout,
        keep_alive,
        max_requests,
        cpu_threads,
        cpu_queue,
    } = Flags::parse();
    let cpu_threads = cpu_threads.unwrap_or_else(config::cores);
    let config = Config {
        max_conns,
        header_timeout,
        write_timeout,
        keep_alive,
        max_requests,
        cpu_threads,
        cpu_queue: cpu_queue.unwrap_or(32 * cpu_threads),
        ..common.config(&[
            Flag::MaxHeld,
            Flag::HeaderTimeout,
            Flag::WriteTimeout,
            Flag::KeepAlive,
            Flag::Kitchen,
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
    // One waker per poll: Ctrl-C rings it, and so does the kitchen when a dish is ready.
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(StartError::Poll)?);
    let local = listener.local_addr().map_err(StartError::Listener)?;
    // After a response, the connection stays open for the next request.
    let reuse = Reuse::KeepAlive {
        idle: config.keep_alive,
        max_requests: config.max_requests,
    };
    let server = Server::start_event_loop(STAGE, config, local, Arc::clone(&waker))?;
    // The kitchen: its cooks compute, and ring this loop's waker when an order is done.
    let kitchen = Kitchen::open(&server)?;
    let mut conns = Connections::new(&server, reuse).with_kitchen(kitchen.hatch(waker));
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
                // Ctrl-C, seen at the end of the turn, or the kitchen's bell: below.
                WAKER => {}
                // Read or write that connection until WouldBlock. A spurious event, or one
                // for a connection closed a moment ago, does nothing.
                _ => conns.ready(event),
            }
        }
        // Deadlines that have passed: work that is done, clients that are too slow.
        conns.fire_timers();
        // What the kitchen has cooked: those answers go out now.
        conns.serve_cooked();
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
