//! The event loop's parts (stages 06-09): one thread, many non-blocking sockets. Stage 09 runs
//! one loop per core, each with its own [`connections::Connections`]; stage 08's kitchen is
//! also what stages 10 and 11 compute with.
//!
//! | module | what it does | chapter |
//! |---|---|---|
//! | [`conn`] | one connection, as a state machine: from an event to the `read()` it causes | 6 |
//! | [`connections`] | every connection by token, their timers, the bound, the end at Ctrl-C | 6 |
//! | [`slab`] | a `Vec` with reusable slots: a connection's index is its token | 6 |
//! | [`timers`] | the deadlines, in a heap; the poll's timeout is the earliest | 6 |
//! | [`kitchen`] | a rayon pool that computes off the loop, and the bell that brings results back | 8 |

pub mod conn;
pub mod connections;
pub mod kitchen;
pub mod slab;
pub mod timers;
