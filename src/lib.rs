//! # tcp_server: the shared parts of seven teaching TCP servers
//!
//! Each stage in `src/bin/` is one idea. In stages 01-05 its `main` binds a listener, loops on
//! `accept()` and hands each connection off; in stages 06 and 07 it runs an event loop over
//! non-blocking sockets. Everything around that skeleton lives here, as small functions and
//! types with plain names, so a stage's file holds only its idea.
//!
//! ## Layout
//!
//! | module | what it does | chapter |
//! |---|---|---|
//! | [`http`] | reads a request head across any number of reads, parses it, frames responses | 0 |
//! | [`body`] | where a request body ends: `Content-Length` or chunked, read and thrown away | 0 |
//! | [`handler`] | [`route`](handler::route) (what to answer, how much work), and [`handle_connection`] for the blocking stages | 0 |
//! | [`config`] | the command-line flags, the same spelling in every stage | 1 |
//! | [`server`] | [`Server`] (shared state), [`Connection`], start-up errors | 1 |
//! | [`stats`] | counters and peaks behind `GET /stats` | 1 |
//! | [`logging`] | one line per request on stderr, with the thread's name | 1 |
//! | [`listener`] | [`AcceptBackoff`]: an accept error is logged and retried, never fatal | 1 |
//! | [`shutdown`] | graceful Ctrl-C: close the door, drain, summary | 1 |
//! | [`semaphore`] | [`Semaphore`], a counting semaphore on `Mutex` + `Condvar` | 3 |
//! | [`deadline`] | [`Deadlines`], a reader and a writer that never wait past a deadline | 5 |
//! | [`conn`] | one connection of the event loop, as a state machine | 6 |
//! | [`connections`] | the event loop's connections by token, their timers, the bound, the end | 6 |
//! | [`slab`] | a `Vec` with reusable slots: a connection's index is its token | 6 |
//! | [`timers`] | the event loop's deadlines, in a heap | 6 |
//! | [`limits`] | the descriptor limit, and what it allows the event loop to hold | 6 |
//! | [`clock`] | UTC timestamps for logs and the `Date` header | - |
//!
//! Chapters are in `docs/`; chapter N explains stage `0N_*`.

pub mod body;
pub mod clock;
pub mod config;
pub mod conn;
pub mod connections;
pub mod deadline;
pub mod handler;
pub mod http;
pub mod limits;
pub mod listener;
pub mod logging;
pub mod semaphore;
pub mod server;
pub mod shutdown;
pub mod slab;
pub mod stats;
pub mod timers;

pub use deadline::Deadlines;
pub use handler::handle_connection;
pub use listener::AcceptBackoff;
pub use semaphore::Semaphore;
pub use server::{Connection, Server, StartError};
