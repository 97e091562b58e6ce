//! # tcp_server: the shared parts of eleven teaching TCP servers
//!
//! Each stage in `src/bin/` is one idea. In stages 01-05 its `main` binds a listener, loops on
//! `accept()` and hands each connection off; in stages 06-09 it runs an event loop over
//! non-blocking sockets (09: one per core); in stages 10 and 11 each connection is an
//! `async fn`, on a runtime of our own (10) or on tokio (11). Everything around that skeleton
//! lives here, as small functions and types with plain names, so a stage's file holds only its
//! idea.
//!
//! ## Layout
//!
//! The folders are the models; the files beside them are the server every stage shares.
//!
//! | module | what it does | chapter |
//! |---|---|---|
//! | [`http`] | the HTTP every stage speaks: reads a request head across any number of reads, parses it, frames responses | 0 |
//! | [`http::body`] | where a request body ends: `Content-Length` or chunked, read and thrown away | 0 |
//! | [`http::handler`] | [`route`](http::handler::route): what to answer, and how much work comes first | 0 |
//! | [`blocking`] | the blocking stages (01-05): a thread waits on each connection | 1-5 |
//! | [`blocking::handle`] | [`handle_connection`]: read, route, work, write, on the calling thread | 1 |
//! | [`blocking::semaphore`] | [`Semaphore`], a counting semaphore on `Mutex` + `Condvar` | 3 |
//! | [`blocking::deadline`] | [`Deadlines`], a reader and a writer that never wait past a deadline | 5 |
//! | [`event_loop`] | the event loop (06-09): one thread, many non-blocking sockets | 6-9 |
//! | [`event_loop::conn`] | one connection as a state machine: from an event to the `read()` it causes | 6 |
//! | [`event_loop::connections`] | every connection by token, their timers, the bound, the end at Ctrl-C | 6 |
//! | [`event_loop::slab`] | a `Vec` with reusable slots: a connection's index is its token | 6 |
//! | [`event_loop::timers`] | the deadlines, in a heap | 6 |
//! | [`event_loop::kitchen`] | a rayon pool that computes off the loop; a `Waker` brings results back | 8 |
//! | [`config`] | the flags every stage shares ([`Common`](config::Common), for clap), and the [`Config`](config::Config) they become | 1 |
//! | [`server`] | [`Server`] (shared state), [`Connection`], start-up errors | 1 |
//! | [`stats`] | counters and peaks behind `GET /stats` | 1 |
//! | [`logging`] | one line per request on stderr, with the thread's name | 1 |
//! | [`listener`] | binding with a backlog; [`AcceptBackoff`]: an accept error is logged and retried, never fatal | 1 |
//! | [`shutdown`] | graceful Ctrl-C: close the door, drain, summary | 1 |
//! | [`limits`] | the descriptor limit, and what it allows the event loop to hold | 6 |
//! | [`runtime`] | stage 10's runtime: executor, reactor, timers, sockets as futures | 10 |
//! | [`regulars`] | stages 10-11: the idle kept connections, so the bound can make room | 10 |
//! | [`clock`] | UTC timestamps for logs and the `Date` header | - |
//!
//! Chapters are in `docs/`; chapter N explains stage `0N_*`.

pub mod blocking;
pub mod clock;
pub mod config;
pub mod event_loop;
pub mod http;
pub mod limits;
pub mod listener;
pub mod logging;
pub mod regulars;
pub mod runtime;
pub mod server;
pub mod shutdown;
pub mod stats;

pub use blocking::{handle_connection, Deadlines, Semaphore};
pub use listener::AcceptBackoff;
pub use server::{Connection, Server, StartError};
