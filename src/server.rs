//! What every stage shares around its accept loop: start-up, the connection hand-off record,
//! and the end.
//!
//! A stage's `main` binds the listener, runs the accept loop and decides how each connection
//! is handed off; that is the lesson, so it stays in the stage's file. [`Server`] holds what
//! the loop and the handler share (the configuration, the counters, whether Ctrl-C was
//! pressed), and [`Connection`] is one accepted socket on its way to a handler.
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Config, Flag};
use crate::deadline::Deadlines;
use crate::stats::{bump, Stats};
use crate::{logging, shutdown};

/// State shared by the accept loop and every connection of one stage.
#[derive(Debug)]
pub struct Server {
    pub stage: &'static str,
    pub config: Config,
    pub stats: Stats,
    /// Set by the first Ctrl-C; the accept loop checks it after every `accept()`.
    pub(crate) stopping: AtomicBool,
    /// When the first Ctrl-C came, to bound the drain.
    pub(crate) stop_requested: std::sync::Mutex<Option<Instant>>,
    /// An address that reaches our own listener, to wake a blocked `accept()` on Ctrl-C.
    pub(crate) wake_addr: SocketAddr,
}

/// Why a stage could not start. `main` returns it, so it is printed as one sentence on stderr
/// and the process exits with code 1.
pub enum StartError {
    /// The address does not bind: usually another process already listens on it.
    Bind(SocketAddr, io::Error),
    /// The listener has no local address (should not happen once bound).
    LocalAddr(io::Error),
    /// The Ctrl-C handler could not be installed.
    Signals(ctrlc::Error),
    /// The worker pool could not be built (stage 04 on): no threads left?
    Pool(rayon::ThreadPoolBuildError),
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
            StartError::LocalAddr(e) => write!(f, "cannot read the listening address: {e}"),
            StartError::Signals(e) => write!(f, "cannot install the Ctrl-C handler: {e}"),
            StartError::Pool(e) => write!(f, "cannot start the worker threads: {e}"),
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
    /// Sets up the shared state for a bound listener and installs the Ctrl-C handler.
    pub fn start(
        stage: &'static str,
        config: Config,
        listener: &TcpListener,
    ) -> Result<Arc<Server>, StartError> {
        let local = listener.local_addr().map_err(StartError::LocalAddr)?;
        let server = Arc::new(Server {
            stage,
            config,
            stats: Stats::default(),
            stopping: AtomicBool::new(false),
            stop_requested: std::sync::Mutex::new(None),
            wake_addr: reachable(local),
        });
        shutdown::install(&server).map_err(StartError::Signals)?;
        Ok(server)
    }

    /// Prints the start-up line, `01_single listening on http://127.0.0.1:1729`, once the
    /// stage is ready to serve. Tests and scripts wait for it, so it is flushed at once.
    pub fn announce(&self, listener: &TcpListener) {
        let addr = listener.local_addr().unwrap_or(self.wake_addr);
        let mut out = io::stdout().lock();
        // If stdout is closed nobody is reading the line; serving can go on regardless.
        let _ = writeln!(out, "{} listening on http://{addr}", self.stage);
        let _ = out.flush();
    }

    /// Whether Ctrl-C (or SIGTERM) asked the stage to stop accepting.
    pub fn shutting_down(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Takes on a freshly accepted socket: counts it and wraps it for the handler.
    pub fn open(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) -> Connection {
        let id = self.stats.accepted.fetch_add(1, Ordering::Relaxed) + 1;
        self.stats.connections_open.up();
        Connection {
            stream,
            peer,
            id,
            deadlines: None,
            server: Counted(Arc::clone(self)),
        }
    }

    /// Logs a connection that could not be handed off (no thread for it) and counts it.
    pub fn connection_error(&self, peer: SocketAddr, what: &str, error: &dyn fmt::Display) {
        bump(&self.stats.errors);
        logging::connection_error(peer, what, error);
    }

    /// The `/stats` body.
    pub fn stats_json(&self) -> String {
        self.stats
            .to_json(self.stage, self.config.has(Flag::HeaderTimeout))
    }

    /// After the accept loop: waits for open connections (bounded by `--drain-ms`), prints
    /// the summary and gives the process's exit code.
    pub fn finish(&self) -> ExitCode {
        shutdown::drain(self)
    }
}

/// Our listener's address in a form we can connect to: a wildcard bind (0.0.0.0 or ::) is
/// reached through loopback.
fn reachable(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

/// One accepted connection on its way to a handler, in this thread or another.
///
/// Its fields drop in order: the socket closes first, then the connection stops counting as
/// open. A permit held next to it (stages 03-05) must outlive it, so that "open" never
/// exceeds the permits.
#[derive(Debug)]
pub struct Connection {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// 1 for the first connection accepted, 2 for the next...: names the thread in stage 02.
    pub id: u64,
    /// Stage 05 only: limits on how long the client may keep us waiting.
    pub deadlines: Option<Deadlines>,
    /// The shared server; counts this connection as open until it is dropped.
    pub server: Counted,
}

impl Connection {
    /// Stage 05: read the request head by a deadline and bound every write.
    pub fn with_deadlines(mut self, deadlines: Deadlines) -> Connection {
        self.deadlines = Some(deadlines);
        self
    }
}

/// A handle on the [`Server`] that counts one connection as open while it lives.
#[derive(Debug)]
pub struct Counted(Arc<Server>);

impl std::ops::Deref for Counted {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.0
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.stats.connections_open.down();
    }
}
