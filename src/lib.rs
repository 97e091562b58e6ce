//! # tcp_server: the shared parts of five teaching TCP servers
//!
//! Each stage in `src/bin/` is one idea: its `main` binds a listener, loops on `accept()` and
//! hands each connection off. Everything around that skeleton lives here, as small functions
//! with plain names, so a stage's file holds only its idea.
//!
//! ## Layout
//!
//! | module | what it does | chapter |
//! |---|---|---|
//! | [`http`] | reads a request head across any number of reads, parses it, frames responses | 0 |
//! | [`handler`] | [`handle_connection`]: read, route, simulated work, respond, close | 0 |
//! | [`config`] | the command-line flags, the same spelling in every stage | 1 |
//! | [`server`] | [`Server`] (shared state), [`Connection`], start-up errors | 1 |
//! | [`stats`] | counters and peaks behind `GET /stats` | 1 |
//! | [`logging`] | one line per request on stderr, with the thread's name | 1 |
//! | [`listener`] | [`AcceptBackoff`]: an accept error is logged and retried, never fatal | 1 |
//! | [`shutdown`] | graceful Ctrl-C: stop accepting, drain, summary | 1 |
//! | [`semaphore`] | [`Semaphore`], a counting semaphore on `Mutex` + `Condvar` | 3 |
//! | [`deadline`] | [`Deadlines`] and a reader that never waits past a deadline | 5 |
//! | [`clock`] | UTC timestamps for logs and the `Date` header | - |
//!
//! Chapters are in `docs/`; chapter N explains stage `0N_*`.

pub mod clock;
pub mod config;
pub mod deadline;
pub mod handler;
pub mod http;
pub mod listener;
pub mod logging;
pub mod semaphore;
pub mod server;
pub mod shutdown;
pub mod stats;

pub use deadline::Deadlines;
pub use handler::handle_connection;
pub use listener::AcceptBackoff;
pub use semaphore::Semaphore;
pub use server::{Connection, Server, StartError};
