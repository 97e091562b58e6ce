//! # Stage 01: one customer at a time
//!
//! **The idea.** A TCP server is a loop: listen on a port, `accept()` a connection, read the
//! request, do the work, write the response, close, and go back to `accept()`.
//!
//! **The cafe.** One barista takes an order, makes the coffee, hands it over, and only then
//! looks up at the next customer in line.
//!
//! **Run it.** `cargo run --release --bin 01_single`, then `curl -v http://localhost:1729/`
//! in another terminal. Try two curls at once: the second waits for the first.
//!
//! **What breaks next.** With one second of work per request, this server answers one request
//! per second, however many clients wait and however many cores sit idle. Stage 02 gives
//! every connection its own thread. (Chapter 1: `docs/01-single.md`.)

use std::process::ExitCode;

use clap::Parser;
use tcp_server::config::Common;
use tcp_server::{handle_connection, listener, AcceptBackoff, Server, StartError};

const STAGE: &str = "01_single";

/// One connection at a time: each is served before the next is accepted.
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
        // Serve it right here, on the main thread: nobody else is accepted meanwhile.
        handle_connection(server.open(stream, peer));
    }
    Ok(server.finish())
}
