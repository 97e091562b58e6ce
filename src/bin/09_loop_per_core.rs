//! # Stage 09: every core: one event loop per core, the shape of nginx
//!
//! **The idea.** One event loop uses one core, however many the machine has. So run one loop
//! per core (`--loops`, as many as there are cores), each on a thread of its own with its own
//! poller, its own connections and its own listening socket. All the listeners are bound to
//! the same port with `SO_REUSEPORT`, and the kernel gives each new connection to one of them
//! by a hash of the connection's addresses and ports: each loop accepts only its own clients
//! and nothing is handed from one loop to another. The loops share the server's counters
//! (atomics), the kitchen of stage 08 (one pool, each loop with its own hatch and bell), and
//! Ctrl-C (every loop's waker is rung). nginx's worker processes, HAProxy's and Envoy's threads
//! use a machine this way.
//!
//! **The cafe.** Several counters, a barista at each, and a doorman who sends each new customer
//! to a counter and never changes his mind: a customer stays with the counter he was sent to.
//!
//! **Changed since stage 08.** The loop of stage 08's `main` becomes a function, `run_loop`,
//! and `main` opens one listener per loop (`listener::bind_per_loop`), starts a thread per loop,
//! and waits for them. Each loop's table holds its share of `--max-conns` (`on_loop`).
//! `/stats` shows each loop's figures (`loop_N_accepted`...). `--shared-listener` runs the
//! tempting wrong version: one listener registered with every loop's poller.
//!
//! **Run it.** `cargo run --release --bin 09_loop_per_core`, then a few hundred requests and
//! `curl http://localhost:1729/stats`: `loop_0_accepted` and `loop_1_accepted` show how the
//! kernel spread the clients; `ps -T` shows `loop-0`, `loop-1` and the cooks.
//!
//! **What breaks next.** The kernel's choice is final: a loop whose clients are busy stays busy
//! while another is idle, and nothing moves work between them. And every connection's story is
//! a hand-written state machine, hard to read and easy to get wrong. Stage 10 lets the compiler
//! write it: `async fn`. (Chapter 9: `docs/09-loop-per-core.md`.)

use std::io::ErrorKind;
use std::net::TcpListener as StdListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use clap::Parser;
use tcp_server::config::{self, Common, Config, Flag};
use tcp_server::event_loop::conn::Reuse;
use tcp_server::event_loop::connections::Connections;
use tcp_server::event_loop::kitchen::Kitchen;
use tcp_server::{listener, logging, Server, StartError};

const STAGE: &str = "09_loop_per_core";
/// The tokens of a loop's listener and of its waker (Ctrl-C, and the kitchen's bell);
/// connections get the slab's indexes.
const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
/// The most clients accepted in one turn of a loop (see stage 06).
const ACCEPTS_PER_TURN: usize = 64;

/// Stage 08's event loop, one per core, each with a listener of its own on the same port.
#[derive(Parser)]
#[command(name = STAGE)]
struct Flags {
    #[command(flatten)]
    common: Common,
    /// Connections held at once, each a descriptor, about 0.4 KiB here and 3.7 KiB in the
    /// kernel; each loop holds its share, and at it the rest wait in its backlog
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
    /// Event loops, each on a thread of its own with its own listener; more loops than cores
    /// only take turns on them [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = config::count(1..=1024))]
    loops: Option<usize>,
    /// The tempting wrong version: one listener shared by every loop, so every loop wakes for
    /// every new client and all but one find nobody (counted in accept_misses)
    #[arg(long)]
    shared_listener: bool,
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
        loops,
        shared_listener,
    } = Flags::parse();
    let cpu_threads = cpu_threads.unwrap_or_else(config::cores);
    let loops = loops.unwrap_or_else(config::cores);
    let config = Config {
        max_conns,
        header_timeout,
        write_timeout,
        keep_alive,
        max_requests,
        cpu_threads,
        cpu_queue: cpu_queue.unwrap_or(32 * cpu_threads),
        loops,
        ..common.config(&[
            Flag::MaxHeld,
            Flag::HeaderTimeout,
            Flag::WriteTimeout,
            Flag::KeepAlive,
            Flag::Kitchen,
            Flag::Loops,
        ])
    };
    // Only Linux spreads the connections of SO_REUSEPORT sockets among them.
    let spreads = cfg!(target_os = "linux");
    if !spreads && !shared_listener {
        logging::warn(format_args!(
            "SO_REUSEPORT does not spread connections on this system: one listener for all loops"
        ));
    }
    // One listening socket per loop, all on one port (SO_REUSEPORT): the kernel spreads the
    // new connections among them. Or, the wrong version, one socket that every loop watches.
    let listeners = if shared_listener || !spreads {
        let one = listener::bind(config.addr, config.backlog)
            .map_err(|e| StartError::Bind(config.addr, e))?;
        (0..loops)
            .map(|_| one.try_clone())
            .collect::<Result<Vec<_>, _>>()
            .map_err(StartError::Listener)?
    } else {
        listener::bind_per_loop(config.addr, config.backlog, loops)
            .map_err(|e| StartError::Bind(config.addr, e))?
    };
    let local = listeners[0].local_addr().map_err(StartError::Listener)?;
    // Each loop's poller and its waker, made here so that Ctrl-C can ring every waker.
    let mut polls = Vec::with_capacity(loops);
    let mut wakers = Vec::with_capacity(loops);
    for _ in 0..loops {
        let poll = Poll::new().map_err(StartError::Poll)?;
        let waker = Waker::new(poll.registry(), WAKER).map_err(StartError::Poll)?;
        polls.push(poll);
        wakers.push(Arc::new(waker));
    }
    let server = Server::start_event_loops(STAGE, config, local, wakers.clone())?;
    // One kitchen for the whole process; each loop gets its own hatch, rung by its own waker.
    let kitchen = Kitchen::open(&server)?;
    let reuse = Reuse::KeepAlive {
        idle: server.config.keep_alive,
        max_requests: server.config.max_requests,
    };
    let mut running = Vec::with_capacity(loops);
    for (lane, ((poll, listener), waker)) in
        polls.into_iter().zip(listeners).zip(wakers).enumerate()
    {
        let conns = Connections::new(&server, reuse)
            .with_kitchen(kitchen.hatch(waker))
            .on_loop(lane);
        let server = Arc::clone(&server);
        let thread = thread::Builder::new()
            .name(format!("loop-{lane}"))
            .spawn(move || run_loop(&server, poll, listener, conns))
            .map_err(StartError::Thread)?;
        running.push(thread);
    }
    server.announce();
    for thread in running {
        if thread.join().is_err() {
            logging::warn(format_args!("an event loop ended with a panic"));
        }
    }
    Ok(server.finish())
}

/// One event loop: stage 08's, on its own poller, listener and connections, until Ctrl-C; then
/// it closes its listener and finishes its requests in progress.
fn run_loop(server: &Server, mut poll: Poll, listener: StdListener, mut conns: Connections) {
    // Non-blocking: accept() may never wait, or every connection would wait with it.
    if let Err(e) = listener.set_nonblocking(true) {
        logging::warn(format_args!("a loop cannot use its listener: {e}"));
        return;
    }
    let mut listener = TcpListener::from_std(listener);
    if let Err(e) = poll
        .registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
    {
        logging::warn(format_args!("a loop cannot watch its listener: {e}"));
        return;
    }
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
        // What the kitchen has cooked for this loop: those answers go out now.
        conns.serve_cooked();
        // Accept until WouldBlock (edge-triggered), at most ACCEPTS_PER_TURN. With its own
        // listener a loop is woken only for its own clients.
        let mut accepted = 0;
        while backlog_waiting && conns.has_room() && accepted < ACCEPTS_PER_TURN {
            match listener.accept() {
                Ok((stream, peer)) => {
                    conns.open(poll.registry(), stream, peer);
                    accepted += 1;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Woken for clients another loop took: only with a shared listener.
                    if accepted == 0 {
                        conns.accept_missed();
                    }
                    backlog_waiting = false;
                }
                // One failed accept never closes the cafe: accepting pauses, on a timer.
                Err(e) => conns.accept_failed(&e),
            }
        }
        if server.shutting_down() {
            break;
        }
    }
    // Ctrl-C: close this loop's door, then let its requests in progress finish.
    drop(listener);
    conns.finish_in_progress(&mut poll, &mut events);
}
