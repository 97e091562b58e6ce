//! The blocking stages' parts (01-05): a thread per connection at a time, which waits.
//!
//! | module | what it does | chapter |
//! |---|---|---|
//! | [`handle`] | [`handle_connection`]: read, route, work, write, on the calling thread | 1 |
//! | [`semaphore`] | [`Semaphore`], a counting semaphore on `Mutex` + `Condvar` | 3 |
//! | [`deadline`] | [`Deadlines`], a reader and a writer that never wait past a deadline | 5 |

pub mod deadline;
pub mod handle;
pub mod semaphore;

pub use deadline::Deadlines;
pub use handle::handle_connection;
pub use semaphore::Semaphore;
