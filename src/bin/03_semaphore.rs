//! # Stage 03: only N at once
//!
//! **The idea.** Bound how many connections are served at once with a counting semaphore.
//! The accept loop takes a permit *before* it calls `accept()`, and the permit travels with
//! the connection into its thread, to be returned when the connection is closed.
//!
//! **The cafe.** Only N baristas; when all are busy, the next customers wait outside the door.
//!
//! **Changed since stage 02.** A `Semaphore` of `--max-conns` permits; the loop takes one
//! before `accept()`, and the connection's thread drops it after the socket is closed.
//!
//! **Run it.** `cargo run --release --bin 03_semaphore -- --max-conns 2`, then five curls at
//! once: two answer after a second, two more after two seconds, the last after three.
//!
//! **What breaks next.** Every connection still costs a new thread, created and destroyed
//! each time. Stage 04 keeps a fixed crew of threads and feeds them from a queue.
//! (Chapter 3: `docs/03-semaphore.md`.)

use std::process::ExitCode;
use std::thread;

use clap::Parser;
use tcp_server::config::{self, Common, Config, Flag};
use tcp_server::{handle_connection, listener, AcceptBackoff, Semaphore, Server, StartError};

const STAGE: &str = "03_semaphore";

/// A thread per connection, at most --max-conns served at once.
#[derive(Parser)]
#[command(name = STAGE)]
struct Flags {
    #[command(flatten)]
    common: Common,
    /// Connections served at once; small enough to watch the rest wait in the backlog
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = config::count(1..=100_000))]
    max_conns: usize,
}

fn main() -> Result<ExitCode, StartError> {
    let Flags { common, max_conns } = Flags::parse();
    let config = Config {
        max_conns,
        ..common.config(&[Flag::MaxConns])
    };
    // socket() + bind() + listen(): from here on the kernel completes TCP handshakes for us
    // and queues the connections in the listen backlog until we accept() them.
    let listener = listener::bind(config.addr, config.backlog)
        .map_err(|e| StartError::Bind(config.addr, e))?;
    let permits = Semaphore::new(config.max_conns);
    let server = Server::start(STAGE, config, &listener)?;
    server.announce();

    let mut backoff = AcceptBackoff::new();
    loop {
        // Wait for a free barista *before* accepting. While all N are busy we do not call
        // accept(), so new clients wait in the kernel's listen backlog ("outside the door"),
        // costing us no thread and no memory. Accepting first and then waiting would hold
        // every waiting client as an open socket in our process, with no bound at all.
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
        // Hand the connection to a thread of its own and go straight back to accept().
        let conn = server.open(stream, peer);
        let spawned = thread::Builder::new()
            .name(format!("conn-{}", conn.id))
            .spawn(move || {
                handle_connection(conn);
                // Only now, with the socket closed and no longer counted as open, may the
                // next client come in.
                drop(permit);
            });
        // Out of threads or memory: this one customer is turned away, the cafe stays open.
        // The next would be turned away too, so pause before accepting again.
        if let Err(e) = spawned {
            server.connection_error(peer, "cannot start a thread", &e);
            backoff.pause();
        }
    }
    Ok(server.finish())
}
