//! # Stage 05: deadlines
//!
//! **The idea.** Give every client a deadline. The request head must arrive in full within
//! `--header-timeout-ms` of a worker picking the connection up, however slowly the bytes
//! trickle in, and no write may stall longer than `--write-timeout-ms`. A client that misses
//! its deadline gets `408 Request Timeout` and is closed, and the worker moves on.
//!
//! **The cafe.** Customers who stand at the counter and never order are shown the door.
//!
//! **Changed since stage 04.** Each connection is handed to the pool `with_deadlines`; the
//! handler then reads through a `DeadlineReader` (`src/blocking/deadline.rs`), which recomputes the
//! time left before every read. `/stats` gains `timeouts`.
//!
//! **Run it.** `cargo run --release --bin 05_timeouts -- --header-timeout-ms 2000`, then
//! `nc localhost 1729` and type nothing: after two seconds the server answers 408 and closes.
//!
//! **What breaks next.** Each waiting client still holds a whole thread until its deadline.
//! Idle clients that reconnect as soon as they are cut keep the workers busy anyway: the
//! limit of one blocked thread per connection. Stage 06 waits for all of them with one thread,
//! an event loop. (Chapter 5: `docs/05-timeouts.md`.)

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tcp_server::config::{self, Common, Config, Flag};
use tcp_server::{
    handle_connection, listener, AcceptBackoff, Deadlines, Semaphore, Server, StartError,
};

const STAGE: &str = "05_timeouts";

/// The pool, with a deadline for every request and every response.
#[derive(Parser)]
#[command(name = STAGE)]
struct Flags {
    #[command(flatten)]
    common: Common,
    /// Threads in the pool; about the core count, since the work here is short
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = config::count(1..=1024))]
    workers: usize,
    /// Accepted connections that may wait for a worker; beyond it clients wait in the backlog
    #[arg(long, value_name = "Q", default_value_t = 16, value_parser = config::count(0..=100_000))]
    queue: usize,
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
        workers,
        queue,
        header_timeout,
        write_timeout,
    } = Flags::parse();
    let config = Config {
        workers,
        queue,
        header_timeout,
        write_timeout,
        ..common.config(&[
            Flag::Workers,
            Flag::Queue,
            Flag::HeaderTimeout,
            Flag::WriteTimeout,
        ])
    };
    // socket() + bind() + listen(): from here on the kernel completes TCP handshakes for us
    // and queues the connections in the listen backlog until we accept() them.
    let listener = listener::bind(config.addr, config.backlog)
        .map_err(|e| StartError::Bind(config.addr, e))?;
    // The crew: all threads start now, before the first client, and live until exit.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.workers)
        .thread_name(|i| format!("worker-{i}"))
        .build()
        .map_err(StartError::Pool)?;
    // rayon's own queue has no limit; this semaphore is what bounds it.
    let permits = Semaphore::new(config.workers + config.queue);
    let deadlines = Deadlines {
        request: config.header_timeout,
        write: config.write_timeout,
    };
    let server = Server::start(STAGE, config, &listener)?;
    server.announce();

    let mut backoff = AcceptBackoff::new();
    loop {
        // Wait for a free place (a worker or a queue slot) *before* accepting, so a full
        // queue leaves new clients in the kernel's listen backlog, not in our memory.
        let permit = permits.acquire();
        // Take the next connection from the backlog, waiting if there is none.
        let accepted = listener.accept();
        // Ctrl-C closes the listener, which ends a blocked accept() (see shutdown.rs).
        if server.shutting_down() {
            break;
        }
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // One failed accept never closes the cafe: log it, pause, try again.
            Err(e) => {
                backoff.wait(&e);
                continue;
            }
        };
        // Put the connection on the pool's queue with its deadlines; a client that keeps
        // a worker waiting past them is answered 408 and closed.
        let conn = server.open(stream, peer).with_deadlines(deadlines);
        pool.spawn(move || {
            handle_connection(conn);
            // Only now, with the socket closed and no longer counted as open, may the
            // next client come in.
            drop(permit);
        });
    }
    // Dropping a rayon pool does not wait for its jobs; finish() waits until every queued
    // and running connection is closed (at most --drain-ms) before main returns.
    Ok(server.finish())
}
