//! What every stage shares around its accept loop: start-up, the connection hand-off record,
//! and the end.
//!
//! A stage's `main` binds the listener, runs the accept loop (or the event loop) and decides
//! how each connection is handed off; that is the lesson, so it stays in the stage's file.
//! [`Server`] holds what the loop and the handler share (the configuration, the counters,
//! whether Ctrl-C was pressed), and [`Connection`] is one accepted socket on its way to a
//! handler.
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::blocking::deadline::Deadlines;
use crate::config::{Config, HELLO};
use crate::event_loop::slab::Slab;
use crate::logging;
use crate::shutdown::{self, Wake};
use crate::stats::{bump, Stats};

/// State shared by the accept loop and every connection of one stage.
#[derive(Debug)]
pub struct Server {
    pub stage: &'static str,
    pub config: Config,
    pub stats: Stats,
    /// Where the stage listens, as the start-up line says.
    pub local: SocketAddr,
    /// Set by the first Ctrl-C; the loop checks it whenever it wakes up.
    pub(crate) stopping: AtomicBool,
    /// The tasks awaiting [`Server::stopped`] (stages 10 and 11), woken by the first signal.
    pub(crate) stop_waiters: Mutex<Slab<std::task::Waker>>,
    /// When the first Ctrl-C came, to bound the drain.
    pub(crate) stop_requested: Mutex<Option<Instant>>,
    /// How Ctrl-C gets the loop's attention: close the listener, or wake the poll.
    pub(crate) wake: Wake,
    /// The exit code, once main or the shutdown watchdog has ended the process: whichever
    /// comes first prints the summary, and only it.
    pub(crate) ended: Mutex<Option<u8>>,
    /// The `GET /` body, made once: `--body-bytes` of "Hello World\n" repeated.
    pub(crate) hello: Arc<str>,
}

/// Why a stage could not start. `main` returns it, so it is printed as one sentence on stderr
/// and the process exits with code 1.
pub enum StartError {
    /// The address does not bind: usually another process already listens on it.
    Bind(SocketAddr, io::Error),
    /// The listener has no local address, or cannot be made non-blocking or shared.
    Listener(io::Error),
    /// The signal handlers (Ctrl-C, SIGTERM, SIGHUP) could not be installed.
    Signals(io::Error),
    /// The worker pool could not be built (stage 04 on): no threads left?
    Pool(rayon::ThreadPoolBuildError),
    /// The event loop's poller could not be created or could not take the listener (06, 07).
    Poll(io::Error),
    /// A loop's thread could not be started (stage 09).
    Thread(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bind(addr, e) if e.kind() == io::ErrorKind::AddrInUse => write!(
                f,
                "cannot listen on {addr}: the address is already in use (is another stage \
                 still running? stop it, or choose another port with --addr 127.0.0.1:0)"
            ),
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Listener(e) => write!(f, "cannot set up the listening socket: {e}"),
            StartError::Signals(e) => write!(f, "cannot install the Ctrl-C handler: {e}"),
            StartError::Pool(e) => write!(f, "cannot start the worker threads: {e}"),
            StartError::Poll(e) => write!(f, "cannot set up the event loop: {e}"),
            StartError::Thread(e) => write!(f, "cannot start an event loop's thread: {e}"),
        }
    }
}

/// `main` returning `Err` prints the error with `{:?}`; make that the readable sentence.
impl fmt::Debug for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Server {
    /// Sets up the shared state for a bound listener of a blocking stage (01-05) and installs
    /// the signal handlers. On Ctrl-C the listener is closed, which also ends a blocked
    /// `accept()` (see `shutdown.rs`).
    pub fn start(
        stage: &'static str,
        config: Config,
        listener: &TcpListener,
    ) -> Result<Arc<Server>, StartError> {
        let local = listener.local_addr().map_err(StartError::Listener)?;
        let door = listener.try_clone().map_err(StartError::Listener)?;
        Server::start_waking(stage, config, local, Wake::close(door))
    }

    /// The same for an event loop (06-08): on Ctrl-C, `waker` wakes its poll, and the loop
    /// closes the listener itself.
    pub fn start_event_loop(
        stage: &'static str,
        config: Config,
        local: SocketAddr,
        waker: impl Into<Arc<mio::Waker>>,
    ) -> Result<Arc<Server>, StartError> {
        Server::start_waking(stage, config, local, Wake::Poll(waker.into()))
    }

    /// The same for several event loops (stage 09): on Ctrl-C every loop's waker is rung.
    pub fn start_event_loops(
        stage: &'static str,
        config: Config,
        local: SocketAddr,
        wakers: Vec<Arc<mio::Waker>>,
    ) -> Result<Arc<Server>, StartError> {
        Server::start_waking(stage, config, local, Wake::Polls(wakers))
    }

    /// The same for tasks on a runtime (stages 10 and 11): on Ctrl-C the tasks awaiting
    /// [`Server::stopped`] are woken; each runtime closes its own listener.
    pub fn start_tasks(
        stage: &'static str,
        config: Config,
        local: SocketAddr,
    ) -> Result<Arc<Server>, StartError> {
        Server::start_waking(stage, config, local, Wake::Tasks)
    }

    fn start_waking(
        stage: &'static str,
        config: Config,
        local: SocketAddr,
        wake: Wake,
    ) -> Result<Arc<Server>, StartError> {
        let hello = HELLO
            .chars()
            .cycle()
            .take(config.body_bytes)
            .collect::<String>()
            .into();
        let stats = Stats::for_loops(config.loops);
        let server = Arc::new(Server {
            stage,
            config,
            stats,
            local,
            stopping: AtomicBool::new(false),
            stop_waiters: Mutex::new(Slab::new()),
            stop_requested: Mutex::new(None),
            wake,
            ended: Mutex::new(None),
            hello,
        });
        shutdown::install(&server).map_err(StartError::Signals)?;
        Ok(server)
    }

    /// Prints the start-up line, `01_single listening on http://127.0.0.1:1729`, once the
    /// stage is ready to serve. Tests and scripts wait for it, so it is flushed at once.
    pub fn announce(&self) {
        let mut out = io::stdout().lock();
        // If stdout is closed nobody is reading the line; serving can go on regardless.
        let _ = writeln!(out, "{} listening on http://{}", self.stage, self.local);
        let _ = out.flush();
    }

    /// Whether Ctrl-C (or SIGTERM, SIGHUP) asked the stage to stop.
    pub fn shutting_down(&self) -> bool {
        // SeqCst: the signal thread sets this flag, then closes the listener or wakes the
        // poll; a loop woken by that must see the flag already set.
        self.stopping.load(Ordering::SeqCst)
    }

    /// Takes on a freshly accepted socket: counts it and wraps it for the handler.
    pub fn open(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) -> Connection {
        Connection {
            stream,
            peer,
            id: self.opened(),
            deadlines: None,
            accepted: Instant::now(),
            server: Arc::clone(self),
        }
    }

    /// Counts a connection as accepted and open; returns its number (1 for the first).
    pub fn opened(&self) -> u64 {
        self.stats.connections_open.up();
        self.stats.accepted.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts a connection as closed (the event loop; a [`Connection`] does it when dropped).
    pub fn closed(&self) {
        self.stats.connections_open.down();
    }

    /// Logs a connection that could not be handed off (no thread for it) and counts it.
    pub fn connection_error(&self, peer: SocketAddr, what: &str, error: &dyn fmt::Display) {
        bump(&self.stats.errors);
        logging::connection_error(peer, what, error);
    }

    /// The `/stats` body.
    pub fn stats_json(&self) -> String {
        self.stats.to_json(self.stage, self.config.extra)
    }

    /// After the loop: waits for open connections (bounded by `--drain-ms`), prints the
    /// summary and gives the process's exit code.
    pub fn finish(&self) -> ExitCode {
        shutdown::drain(self)
    }
}

/// One accepted connection on its way to a handler, in this thread or another (stages
/// 01-05). It counts as open until it is dropped.
#[derive(Debug)]
pub struct Connection {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// 1 for the first connection accepted, 2 for the next...: names the thread in stage 02.
    pub id: u64,
    /// Stage 05 only: limits on how long the client may keep us waiting.
    pub deadlines: Option<Deadlines>,
    /// When `accept()` returned it: the log shows how long it then waited for a thread.
    pub accepted: Instant,
    pub server: Arc<Server>,
}

impl Connection {
    /// Stage 05: the request must arrive, and the response be written, by deadlines.
    pub fn with_deadlines(mut self, deadlines: Deadlines) -> Connection {
        self.deadlines = Some(deadlines);
        self
    }
}

impl Drop for Connection {
    /// The connection stops counting as open here, and its socket closes a moment later,
    /// when the fields are dropped after this body. Nothing depends on that order: what
    /// bounds the sockets a stage holds is its permit (stages 03-05), which the stage drops
    /// only after the whole `Connection`, socket included.
    fn drop(&mut self) {
        self.server.closed();
    }
}
