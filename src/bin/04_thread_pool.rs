//! # Stage 04: a fixed crew fed by a queue
//!
//! **The idea.** Start `--workers` threads once and give them connections through a queue,
//! instead of creating a thread per connection. The queue is bounded: the acceptor takes a
//! permit before `accept()` from a semaphore of `workers + queue`, so at most `workers`
//! connections are being served and at most `queue` wait for a worker; everyone else waits
//! in the kernel's backlog.
//!
//! **The cafe.** A fixed crew takes orders from a queue at the counter; when the queue is
//! full, new customers wait outside.
//!
//! **Changed since stage 03.** A rayon `ThreadPool` of named threads (`worker-N`) replaces
//! `thread::Builder`; `pool.spawn` puts the connection on the pool's queue. The semaphore
//! now bounds workers + queue. The process's thread count no longer grows with the clients.
//!
//! **Run it.** `cargo run --release --bin 04_thread_pool -- --workers 2 --queue 2`, then
//! check `/proc/<pid>/task` or `ps -T` under load: always the same threads.
//!
//! **What breaks next.** A client that connects and sends nothing holds a worker forever.
//! `--workers` idle clients, and nobody else is served. Stage 05 gives every client a deadline.
//! (Chapter 4: `docs/04-thread-pool.md`.)

use std::process::ExitCode;

use clap::Parser;
use tcp_server::config::{self, Common, Config, Flag};
use tcp_server::{handle_connection, listener, AcceptBackoff, Semaphore, Server, StartError};

const STAGE: &str = "04_thread_pool";

/// A pool of --workers threads, fed by a queue of at most --queue connections.
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
}

fn main() -> Result<ExitCode, StartError> {
    let Flags {
        common,
        workers,
        queue,
    } = Flags::parse();
    let config = Config {
        workers,
        queue,
        ..common.config(&[Flag::Workers, Flag::Queue])
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
        // Put the connection on the pool's queue; the first free worker takes it.
        let conn = server.open(stream, peer);
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
