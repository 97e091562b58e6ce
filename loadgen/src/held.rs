//! `--scenario held`: ten thousand idle connections, opened by a few threads and held by
//! one.
//!
//! An idle connection costs an event-loop server a few hundred bytes and a thread-per-
//! connection server a thread. To show that, the generator must not pay a thread per
//! connection itself: threads count against the machine's `kernel.pid_max` (32 768 here),
//! which the server's own threads share. So the connections are opened by [`OPENERS`]
//! threads at a bounded rate (`--held-rate`, so that a server that accepts slowly is not
//! buried in a burst it never sees in practice), each connect bounded by
//! `--connect-timeout-ms` and the whole opening by its own deadline, so that a server whose
//! backlog is full (stage 01 holding one idle connection forever) does not stall the run:
//! what could not connect in time is counted, not waited for.
//!
//! Then one thread holds them all: non-blocking sockets watched with `poll(2)` (on Linux,
//! through `libc`, in one small function), which says which of them the server closed. A
//! closed one is counted as cut and not opened again: the count held is what the scenario
//! measures.
//!
//! With `--keep-alive`, each held connection first sends one request and reads its answer,
//! so that what is held is an idle persistent connection, the regular between two orders of
//! stage 07. A server that closes after its answer has cut it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{self, Failures};
use crate::response;
use crate::run::{Shared, LONGEST_WAIT};
use crate::trace::{At, End, Kind, Record, Recorder};

/// Threads that open the held connections: several, so that one connect stuck on a full
/// backlog does not hold up the rest.
pub const OPENERS: usize = 4;
/// How long the holder sleeps in `poll` when nothing happens.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// ... and while connections are still coming in from the openers.
const POLL_WAIT_OPENING: Duration = Duration::from_millis(10);
/// Reads of one connection per wake-up, so that a server that talks without end cannot
/// keep the holder from the others.
const READS_PER_WAKE: usize = 16;

/// What happened to the held connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeldTally {
    /// `--held`.
    pub asked: u64,
    /// Connects that succeeded: the server's kernel completed the handshake.
    pub established: u64,
    /// Connects that failed, by kind.
    pub failed: Failures,
    /// Never tried: the opening's deadline came first.
    pub not_tried: u64,
    /// Closed by the server while held.
    pub cut: u64,
    /// Opener or holder threads that could not be started.
    pub spawn_errors: usize,
}

impl HeldTally {
    /// Adds one opener's counts.
    pub fn add(&mut self, other: &HeldTally) {
        self.established += other.established;
        self.failed.add(other.failed);
        self.not_tried += other.not_tried;
    }
}

/// The tickets the openers share: connection `i` may be opened from `began + i / rate`.
#[derive(Debug)]
pub struct Opening {
    next: AtomicU64,
    count: u64,
    rate: f64,
    began: Instant,
    /// Nothing is started after this, and no connect lasts beyond it: the time the rate
    /// needs, plus one connect timeout.
    ends: Instant,
    /// The client number of connection 0 (after the healthy clients).
    first: usize,
}

impl Opening {
    pub fn new(shared: &Shared<'_>, first: usize) -> Opening {
        let plan = shared.plan;
        let began = Instant::now();
        let count = plan.held as u64;
        let spread = Duration::from_secs_f64(count as f64 / plan.held_rate);
        Opening {
            next: AtomicU64::new(0),
            count,
            rate: plan.held_rate,
            began,
            ends: began + spread + plan.target.connect_timeout,
            first,
        }
    }

    /// Tickets nobody took.
    pub fn left(&self) -> u64 {
        self.count
            .saturating_sub(self.next.load(Ordering::Relaxed).min(self.count))
    }
}

/// A connection on its way to the holder, with its row.
#[derive(Debug)]
pub struct Opened {
    stream: TcpStream,
    record: Record,
}

/// One opener: takes tickets until they are all out, connects each at its time, and hands
/// the connection to the holder. Failed connects are counted and traced here.
pub fn open<'s>(
    shared: &'s Shared<'s>,
    opening: &Opening,
    holder: Sender<Opened>,
) -> (HeldTally, Recorder<'s>) {
    let target = &shared.plan.target;
    let mut tally = HeldTally::default();
    let mut recorder = Recorder::new(shared.budget);
    loop {
        let i = opening.next.fetch_add(1, Ordering::Relaxed);
        if i >= opening.count {
            break;
        }
        let due = opening.began + Duration::from_secs_f64(i as f64 / opening.rate);
        if due >= opening.ends {
            tally.not_tried += 1;
            continue;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let mut record = Record::new(opening.first + i as usize, Kind::Idle, 0);
        let now = Instant::now();
        if now >= opening.ends {
            tally.not_tried += 1;
            continue;
        }
        record.connect = shared.clock.at(now);
        let connected = client::connect(target.addr, target.connect_timeout, opening.ends)
            .and_then(|stream| {
                // The holder must never block on one connection.
                stream.set_nonblocking(true)?;
                Ok(stream)
            });
        let connected = connected.and_then(|stream| {
            if target.keep_alive {
                regular(shared, &stream, opening.ends, &mut record)?;
            }
            Ok(stream)
        });
        match connected {
            Ok(stream) => {
                if record.connected == At::NONE {
                    record.connected = shared.clock.at(Instant::now());
                }
                tally.established += 1;
                shared.board.side_opened.fetch_add(1, Ordering::Relaxed);
                // If the holder is gone, the connection closes here; it was established.
                let _ = holder.send(Opened { stream, record });
            }
            Err(failed) => {
                tally.failed.count(failed.kind);
                record.done = shared.clock.at(Instant::now());
                record.end = End::Failed(failed.kind);
                recorder.push(record);
            }
        }
    }
    (tally, recorder)
}

/// `--keep-alive`: one request and its whole answer on a held connection before it goes idle.
/// An answer that closes the connection (or any failure) makes it not held.
fn regular(
    shared: &Shared<'_>,
    stream: &TcpStream,
    deadline: Instant,
    record: &mut Record,
) -> Result<(), client::Failed> {
    record.connected = shared.clock.at(Instant::now());
    // Blocking for this one exchange; the holder gets it non-blocking.
    stream.set_nonblocking(false)?;
    record.sent = shared.clock.at(Instant::now());
    (&*stream).write_all(shared.plan.target.request)?;
    let mut buf = [0u8; 1024];
    let mut first_byte = None;
    let (head, exact) = client::read_response(stream, deadline, &mut buf, &mut first_byte)?;
    if let Some(at) = first_byte {
        record.first_byte = shared.clock.at(at);
    }
    record.status = Some(head.status);
    stream.set_nonblocking(true)?;
    if head.persistent() && exact {
        Ok(())
    } else {
        Err(client::Failed::from(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "the server closes after its answer",
        )))
    }
}

/// The holder: takes in what the openers open, watches every connection for the server's
/// close, and at the end of the run lets them all go. Returns how many the server cut.
pub fn hold<'s>(shared: &'s Shared<'s>, opened: Receiver<Opened>) -> (u64, Recorder<'s>) {
    let mut recorder = Recorder::new(shared.budget);
    let mut held: Vec<Opened> = Vec::new();
    let mut poller = Poller::default();
    let mut scratch = [0u8; 512];
    let mut opening = true;
    let mut cut = 0;
    // The opening, then the run, then one request's timeout: a bound the end of the run
    // always comes before.
    let plan = shared.plan;
    let give_up = Instant::now()
        + Duration::from_secs_f64(plan.held as f64 / plan.held_rate)
        + plan.target.connect_timeout
        + plan.duration.unwrap_or(LONGEST_WAIT)
        + plan.timeout;
    loop {
        while opening {
            match opened.try_recv() {
                Ok(one) => {
                    poller.add(&one.stream);
                    held.push(one);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => opening = false,
            }
        }
        if shared.over() || Instant::now() >= give_up {
            break;
        }
        poller.wait(if opening {
            POLL_WAIT_OPENING
        } else {
            POLL_WAIT
        });
        // Backwards, so that swap_remove moves only connections already looked at.
        for i in (0..held.len()).rev() {
            if !poller.ready(i) || still_open(shared, &mut held[i], &mut scratch) {
                continue;
            }
            let mut gone = held.swap_remove(i);
            poller.swap_remove(i);
            (gone.record.done, gone.record.end) = (shared.clock.at(Instant::now()), End::Cut);
            recorder.push(gone.record);
            cut += 1;
        }
    }
    // The run is over: every connection still here was held to the end.
    let done = shared.clock.at(Instant::now());
    for mut one in held {
        one.record.done = done;
        recorder.push(one.record);
    }
    (cut, recorder)
}

/// Reads what a connection has (never blocking): `false` once the server has closed it.
fn still_open(shared: &Shared<'_>, one: &mut Opened, scratch: &mut [u8]) -> bool {
    for _ in 0..READS_PER_WAKE {
        match (&one.stream).read(scratch) {
            Ok(0) => return false,
            Ok(n) => {
                if one.record.first_byte == At::NONE {
                    one.record.first_byte = shared.clock.at(Instant::now());
                    one.record.status = response::status_of(&scratch[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Which held connections have something to say: `poll(2)` on Linux.
#[cfg(target_os = "linux")]
#[derive(Debug, Default)]
struct Poller {
    /// One entry per held connection, in the same order.
    fds: Vec<libc::pollfd>,
}

#[cfg(target_os = "linux")]
impl Poller {
    fn add(&mut self, stream: &TcpStream) {
        use std::os::fd::AsRawFd;
        self.fds.push(libc::pollfd {
            fd: stream.as_raw_fd(),
            // Readable covers the close too (a read would return 0); errors and hang-ups
            // are reported whatever is asked.
            events: libc::POLLIN,
            revents: 0,
        });
    }

    fn swap_remove(&mut self, i: usize) {
        self.fds.swap_remove(i);
    }

    fn ready(&self, i: usize) -> bool {
        self.fds.get(i).is_some_and(|fd| fd.revents != 0)
    }

    /// Waits until a connection has an event, or `timeout`.
    fn wait(&mut self, timeout: Duration) {
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fds` is an exclusively borrowed, initialised array of `fds.len()` pollfd
        // structs that lives through the call; poll(2) reads `fd` and `events` of each and
        // writes only their `revents`. An fd closed meanwhile cannot be: each one belongs to
        // a TcpStream in `held`, removed from both lists together.
        let n = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            // EINTR or ENOMEM: no events this time (revents would be stale), and no spin.
            for fd in &mut self.fds {
                fd.revents = 0;
            }
            thread::sleep(timeout);
        }
    }
}

/// Elsewhere, every connection is looked at (a non-blocking read each) every half second.
#[cfg(not(target_os = "linux"))]
#[derive(Debug, Default)]
struct Poller;

#[cfg(not(target_os = "linux"))]
impl Poller {
    fn add(&mut self, _stream: &TcpStream) {}

    fn swap_remove(&mut self, _i: usize) {}

    fn ready(&self, _i: usize) -> bool {
        true
    }

    fn wait(&mut self, timeout: Duration) {
        thread::sleep(timeout.max(Duration::from_millis(500)));
    }
}
