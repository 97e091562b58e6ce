//! # Stage 02: a thread per connection
//!
//! **The idea.** Hand each accepted connection to a new thread and go straight back to
//! `accept()`. Requests overlap: while one thread waits on its work, others serve theirs.
//!
//! **The cafe.** Hire a barista for every customer who walks in.
//!
//! **Changed since stage 01.** The accept loop no longer serves the connection itself; it
//! spawns a named thread (`conn-N`) with `thread::Builder`, which reports a failed spawn as
//! an error instead of panicking. A failed spawn drops that one connection; accepting goes on.
//!
//! **Run it.** `cargo run --release --bin 02_thread_per_conn`, then run several curls at once:
//! they all answer after about a second.
//!
//! **What breaks next.** Nothing bounds the threads. A thousand clients mean a thousand
//! threads, each with its own stack, and the machine, not the server, decides when to stop.
//! Stage 03 bounds how many are served at once. (Chapter 2: `docs/02-thread-per-conn.md`.)

use std::process::ExitCode;
use std::thread;

use clap::Parser;
use tcp_server::config::Common;
use tcp_server::{handle_connection, listener, AcceptBackoff, Server, StartError};

const STAGE: &str = "02_thread_per_conn";

/// A thread per connection.
#[derive(Parser)]
#[command(name = STAGE)]
struct Flags {
    #[command(flatten)]
    common: Common,
}

fn main() -> Result<ExitCode, StartError> {
    let Flags { common } = Flags::parse();
    let config = common.config(&[]);
    // socket() + bind() + listen(): from here on the kernel completes TCP handshakes for us
    // and queues the connections in the listen backlog until we accept() them.
    let listener = listener::bind(config.addr, config.backlog)
        .map_err(|e| StartError::Bind(config.addr, e))?;
    let server = Server::start(STAGE, config, &listener)?;
    server.announce();

    let mut backoff = AcceptBackoff::new();
    loop {
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
            .spawn(move || handle_connection(conn));
        // Out of threads or memory: this one customer is turned away, the cafe stays open.
        // The next would be turned away too, so pause before accepting again.
        if let Err(e) = spawned {
            server.connection_error(peer, "cannot start a thread", &e);
            backoff.pause();
        }
    }
    Ok(server.finish())
}
