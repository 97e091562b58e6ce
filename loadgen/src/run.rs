//! Running the load: client threads, a start line, the two loops, and the tallies.
//!
//! In the closed loop (the default) every client is a thread that sends a request, waits
//! for its whole response, and sends the next. A slow server therefore slows its clients
//! down, as real users waiting for a page are, instead of being sent more than it can take.
//! In the open loop (`--rate`) requests are due on a timetable instead ([`Timetable`]), and
//! the clients are the connections available to send them.
//!
//! The clients keep their counts to themselves ([`Tally`]: counters and a latency
//! [`Histogram`], and with `--trace` a list of [`Record`]s) and hand them back when they
//! finish; what is shared is the request budget (or the timetable's next request), as one
//! atomic, and each client's own slot on the [`Board`], which only that client writes. So
//! the generator adds no lock that its own threads would queue on, and it measures the
//! server, not itself.
//!
//! Order matters when idle, trickling or held connections surround the healthy ones: they
//! are opened first, and the healthy clients only start once they are all connected, so
//! they are ahead in the server's queue, exactly as slow clients who got there first would
//! be.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex, PoisonError};
use std::thread::{self, Scope};
use std::time::{Duration, Instant};

use crate::board::{Board, Slot};
use crate::client::{Client, Failed, Failure, Failures, Phases, Target};
use crate::held::{self, HeldTally};
use crate::histogram::Histogram;
use crate::idle::{self, SideTally};
use crate::probe::{self, Probe};
use crate::schedule::{Timetable, LATE};
use crate::trace::{At, Budget, Clock, End, Kind, Record, Recorder};

/// Client threads do little on their stacks; a small one lets a flood of a thousand start.
const CLIENT_STACK: usize = 256 * 1024;
/// Room for a response head (the stages send about 150 bytes of head).
pub const RESPONSE_BUFFER: usize = 8 * 1024;
/// After a refused connect, which fails in microseconds, a short pause so a client does not
/// spin on a server that is gone.
pub const REFUSED_PAUSE: Duration = Duration::from_millis(10);
/// A bound on waiting for the start line or for a run without a time limit, so that no loop
/// in here can wait forever.
pub const LONGEST_WAIT: Duration = Duration::from_secs(2 * 3600);

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    pub target: Target<'a>,
    /// Healthy clients: in the open loop, the connections available to the timetable.
    pub clients: usize,
    /// Connections that send nothing.
    pub idle: usize,
    /// An idle or trickling connection the server closes is opened again at once.
    pub idle_reconnect: bool,
    /// Connections that send a request one byte at a time.
    pub trickle: usize,
    /// The pause between two bytes of a trickling request.
    pub trickle_every: Duration,
    /// Idle connections held from a few threads (`--scenario held`).
    pub held: usize,
    /// Held connections opened per second.
    pub held_rate: f64,
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    /// The longest one request may take.
    pub timeout: Duration,
    /// Requests per second in the open loop; `None` for the closed loop.
    pub rate: Option<f64>,
    /// Keep a [`Record`] per request for `--trace`.
    pub trace: bool,
    /// One more client asking another path (`--probe-path`), counted apart.
    pub probe: Option<Probe<'a>>,
}

/// What some clients saw.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub sent: u64,
    pub ok: u64,
    /// Failed requests, by kind.
    pub failed: Failures,
    /// Still waiting for their response when the run's time was up.
    pub unfinished: u64,
    /// Latencies of the ok responses: from the send in the closed loop, from the due time in
    /// the open loop.
    pub latency: Histogram,
    /// The first failure of kind "other", as an example for the report.
    pub first_other: Option<String>,
    /// Connections opened: one per request without keep-alive, far fewer with it.
    pub connections: u64,
    /// Requests sent again after the server closed a kept connection.
    pub retries: u64,
    /// In the open loop: requests that started more than [`LATE`] after they were due.
    pub late: u64,
}

impl Tally {
    fn count_failure(&mut self, failure: &Failed) {
        self.failed.count(failure.kind);
        if failure.kind == Failure::Other && self.first_other.is_none() {
            self.first_other = Some(failure.error.to_string());
        }
    }

    /// Counts how one request ended and says how: ok (its latency from `from`), failed, or
    /// unfinished, when the end of the run (not the request's own timeout at `timeout_at`)
    /// cut it short. `deadline` is the earlier of the two that the request was given.
    pub fn settle(
        &mut self,
        result: Result<u16, Failed>,
        from: Instant,
        done: Instant,
        run_end: Option<Instant>,
        deadline: Instant,
        timeout_at: Instant,
    ) -> End {
        let end = match result {
            // The kernel counts a read timeout in clock ticks, so a response can still land a
            // few milliseconds after the run's end; like any other late one it is unfinished
            // (stage 01 with 100 ms of work showed 20 responses in a 2 s run, room for 19).
            Ok(_) if run_end.is_some_and(|end| done > end) => End::Unfinished,
            Ok(_) => {
                self.ok += 1;
                self.latency.record(done - from);
                End::Ok
            }
            // The run's end, not the request's own timeout, cut this one short.
            Err(failure)
                if failure.kind == Failure::Timeout
                    && deadline < timeout_at
                    && done >= deadline =>
            {
                End::Unfinished
            }
            Err(failure) => {
                self.count_failure(&failure);
                End::Failed(failure.kind)
            }
        };
        if end == End::Unfinished {
            self.unfinished += 1;
        }
        end
    }

    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.failed.add(other.failed);
        self.unfinished += other.unfinished;
        self.latency.merge(&other.latency);
        self.first_other = self.first_other.take().or(other.first_other);
        self.connections += other.connections;
        self.retries += other.retries;
        self.late += other.late;
    }
}

/// The open loop's own counts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OpenLoop {
    pub rate: f64,
    /// Requests due before the end of the run.
    pub due: u64,
    /// Due, but never started: every client was still busy when the run ended.
    pub not_started: u64,
}

/// The rows for `--trace`: a list per thread, in client order, written after the run.
#[derive(Debug, Default)]
pub struct Trace {
    /// The start line on the trace's clock.
    pub start: Option<At>,
    pub groups: Vec<Vec<Record>>,
    /// Rows the cap kept out.
    pub dropped: u64,
}

impl Trace {
    fn add(&mut self, recorder: Recorder<'_>) {
        self.dropped += recorder.dropped;
        if !recorder.rows.is_empty() {
            self.groups.push(recorder.rows);
        }
    }

    pub fn rows(&self) -> impl Iterator<Item = &Record> {
        self.groups.iter().flatten()
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    pub tally: Tally,
    pub idle: SideTally,
    pub trickle: SideTally,
    pub held: HeldTally,
    /// The `--probe-path` client's counts; `None` without one.
    pub probe: Option<Tally>,
    /// `None` in the closed loop.
    pub open_loop: Option<OpenLoop>,
    /// From the start line to the end of the run: the duration, or the last response.
    pub elapsed: Duration,
    /// Threads that could not be started (the others ran).
    pub spawn_errors: usize,
    pub trace: Trace,
}

/// The start line: every client waits here until all are ready, then they go together.
struct Gate {
    opened: Mutex<Option<Instant>>,
    signal: Condvar,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            opened: Mutex::new(None),
            signal: Condvar::new(),
        }
    }

    /// Lets everyone go, telling them when the run started.
    fn open(&self, start: Instant) {
        *self.opened.lock().unwrap_or_else(PoisonError::into_inner) = Some(start);
        self.signal.notify_all();
    }

    /// Waits for [`Gate::open`]; `None` if it never comes.
    fn wait(&self) -> Option<Instant> {
        let guard = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .signal
            .wait_timeout_while(guard, LONGEST_WAIT, |opened| opened.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// What the threads share: the start line, the request budget and a few counters.
pub struct Shared<'p> {
    pub plan: &'p Plan<'p>,
    pub board: &'p Board,
    pub clock: Clock,
    pub budget: Option<&'p Budget>,
    gate: Gate,
    /// Requests handed out so far, against `--requests`, in the closed loop.
    issued: AtomicU64,
    timetable: Option<&'p Timetable>,
    /// Idle and trickling connections that have made their first connect attempt.
    pub side_ready: AtomicUsize,
}

impl Shared<'_> {
    /// Takes one request from the budget, if any is left.
    fn take_request(&self) -> bool {
        match self.plan.requests {
            Some(limit) => self.issued.fetch_add(1, Ordering::Relaxed) < limit,
            None => true,
        }
    }

    /// Whether the healthy clients are done: idle connections stop too.
    pub fn over(&self) -> bool {
        self.board.is_over()
    }

    /// Waits for the start line; `None` if it never comes.
    pub fn wait_for_start(&self) -> Option<Instant> {
        self.gate.wait()
    }

    /// The end of a timed run, once the start line is crossed.
    pub fn run_end(&self) -> Option<Instant> {
        Some(self.board.start()? + self.plan.duration?)
    }
}

/// Runs the plan and returns what the clients saw. `board` is where they show what they are
/// doing while they do it.
pub fn run(plan: &Plan<'_>, board: &Board) -> Outcome {
    let budget = Budget::new(crate::trace::CAP);
    let timetable = plan.rate.map(|rate| Timetable::new(rate, plan.requests));
    let shared = Shared {
        plan,
        board,
        clock: Clock::new(),
        budget: plan.trace.then_some(&budget),
        gate: Gate::new(),
        issued: AtomicU64::new(0),
        timetable: timetable.as_ref(),
        side_ready: AtomicUsize::new(0),
    };
    let shared = &shared;
    let mut spawn_errors = 0;
    let mut trace = Trace::default();
    // Healthy clients are numbered from 0, then idle, trickling and held connections.
    let (first_idle, first_trickle) = (plan.clients, plan.clients + plan.idle);
    let first_held = first_trickle + plan.trickle;

    let outcome = thread::scope(|scope| {
        let (held_tally, holder) = start_held(scope, shared, first_held, &mut trace);
        spawn_errors += held_tally.spawn_errors;

        let idlers: Vec<_> = (0..plan.idle)
            .filter_map(|i| {
                spawn(scope, format!("idle-{i}"), move || {
                    idle::idle(shared, first_idle + i)
                })
            })
            .collect();
        let tricklers: Vec<_> = (0..plan.trickle)
            .filter_map(|i| {
                spawn(scope, format!("trickle-{i}"), move || {
                    idle::trickle(shared, first_trickle + i)
                })
            })
            .collect();
        spawn_errors += plan.idle + plan.trickle - idlers.len() - tricklers.len();
        wait_for_side(shared, idlers.len() + tricklers.len());

        let clients: Vec<_> = (0..plan.clients)
            .filter_map(|i| spawn(scope, format!("client-{i}"), move || healthy(shared, i)))
            .collect();
        spawn_errors += plan.clients - clients.len();
        let prober = plan.probe.as_ref().and_then(|probe| {
            let prober = spawn(scope, "probe".into(), move || probe::probe(shared, probe));
            spawn_errors += usize::from(prober.is_none());
            prober
        });

        let start = Instant::now();
        board.set_start(start);
        trace.start = Some(shared.clock.at(start));
        shared.gate.open(start);

        let mut tally = Tally::default();
        for handle in clients {
            if let Ok((client_tally, recorder)) = handle.join() {
                tally.merge(client_tally);
                trace.add(recorder);
            }
        }
        // No response can complete after the run's end, so a timed run lasted exactly its
        // duration, however long the last clients took to notice.
        let elapsed = plan
            .duration
            .map_or(start.elapsed(), |d| start.elapsed().min(d));
        board.set_over();

        let mut side = [SideTally::default(); 2];
        for (tally, handles) in side.iter_mut().zip([idlers, tricklers]) {
            for handle in handles {
                if let Ok((one, recorder)) = handle.join() {
                    tally.add(one);
                    trace.add(recorder);
                }
            }
        }
        let probe = prober.and_then(|handle| handle.join().ok());
        let mut held_tally = held_tally;
        if let Some(holder) = holder {
            if let Ok((cut, recorder)) = holder.join() {
                held_tally.cut = cut;
                trace.add(recorder);
            }
        }
        let open_loop = timetable.as_ref().map(|table| {
            let due = table.due_within(elapsed);
            OpenLoop {
                rate: table.rate(),
                due,
                not_started: due.saturating_sub(tally.sent),
            }
        });
        Outcome {
            tally,
            idle: side[0],
            trickle: side[1],
            held: held_tally,
            probe,
            open_loop,
            elapsed,
            spawn_errors,
            trace: Trace::default(),
        }
    });
    Outcome { trace, ..outcome }
}

type Holder<'scope> = thread::ScopedJoinHandle<'scope, (u64, Recorder<'scope>)>;

/// Opens the held connections, if any, before anyone else starts: one thread to hold them,
/// a few to open them (joined here, so this returns when the opening is over).
fn start_held<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    shared: &'scope Shared<'env>,
    first: usize,
    trace: &mut Trace,
) -> (HeldTally, Option<Holder<'scope>>) {
    let plan = shared.plan;
    let mut tally = HeldTally {
        asked: plan.held as u64,
        ..HeldTally::default()
    };
    if plan.held == 0 {
        return (tally, None);
    }
    let (sender, receiver) = mpsc::channel();
    let Some(holder) = spawn(scope, "held".into(), move || held::hold(shared, receiver)) else {
        tally.spawn_errors += 1;
        tally.not_tried = plan.held as u64;
        return (tally, None);
    };
    let opening = held::Opening::new(shared, first);
    // The openers live only through the opening, in a scope of their own.
    thread::scope(|openers_scope| {
        let opening = &opening;
        let openers: Vec<_> = (0..held::OPENERS)
            .filter_map(|j| {
                let sender = sender.clone();
                spawn(openers_scope, format!("held-open-{j}"), move || {
                    held::open(shared, opening, sender)
                })
            })
            .collect();
        drop(sender);
        tally.spawn_errors += held::OPENERS - openers.len();
        for handle in openers {
            if let Ok((one, recorder)) = handle.join() {
                tally.add(&one);
                trace.add(recorder);
            }
        }
    });
    // Tickets no opener took, when none could be started at all.
    tally.not_tried += opening.left();
    (tally, Some(holder))
}

/// Starts a named thread with a small stack; a thread that cannot start is counted, not fatal.
fn spawn<'scope, 'env, T: Send + 'scope>(
    scope: &'scope Scope<'scope, 'env>,
    name: String,
    body: impl FnOnce() -> T + Send + 'scope,
) -> Option<thread::ScopedJoinHandle<'scope, T>> {
    thread::Builder::new()
        .name(name)
        .stack_size(CLIENT_STACK)
        .spawn_scoped(scope, body)
        .ok()
}

/// Waits (bounded) until every idle and trickling connection has tried its first connect.
fn wait_for_side(shared: &Shared<'_>, count: usize) {
    let give_up = Instant::now() + shared.plan.target.connect_timeout + Duration::from_secs(1);
    while shared.side_ready.load(Ordering::Acquire) < count && Instant::now() < give_up {
        thread::sleep(Duration::from_millis(2));
    }
}

/// Sleeps until `when` (a due time, which is always before the end of the run).
fn sleep_until(when: Instant) {
    if let Some(left) = when.checked_duration_since(Instant::now()) {
        thread::sleep(left);
    }
}

/// One healthy client: requests until the budget, the timetable or the time is used up.
fn healthy<'s>(shared: &'s Shared<'s>, index: usize) -> (Tally, Recorder<'s>) {
    let plan = shared.plan;
    let mut tally = Tally::default();
    let mut recorder = Recorder::new(shared.budget);
    let Some(start) = shared.gate.wait() else {
        return (tally, recorder);
    };
    let spare = Slot::default();
    let slot = shared.board.slot(index).unwrap_or(&spare);
    let run_end = plan.duration.map(|d| start + d);
    let mut client = Client::new(plan.target, RESPONSE_BUFFER);
    for request in 0..u32::MAX {
        // Which request, and from when its latency counts.
        let due = match shared.timetable {
            None if shared.take_request() => None,
            None => break,
            Some(table) => {
                let Some(i) = table.take() else {
                    break;
                };
                // Never due within the run (or beyond any run's length, when only
                // --requests bounds it): neither is any later one.
                let due = match start.checked_add(table.offset(i)) {
                    Some(due) if due < run_end.unwrap_or(start + LONGEST_WAIT) => due,
                    _ => break,
                };
                sleep_until(due);
                Some(due)
            }
        };
        let began = Instant::now();
        if run_end.is_some_and(|end| began >= end) {
            break;
        }
        tally.sent += 1;
        if due.is_some_and(|due| began > due + LATE) {
            tally.late += 1;
        }
        let timeout_at = began + plan.timeout;
        let deadline = run_end.map_or(timeout_at, |end| end.min(timeout_at));
        let mut phases = Phases::default();
        let result = client.request(deadline, slot, &mut phases);
        let done = Instant::now();
        let from = due.unwrap_or(began);
        let end = tally.settle(result, from, done, run_end, deadline, timeout_at);
        slot.finish(match end {
            End::Ok => Some(true),
            End::Unfinished => None,
            _ => Some(false),
        });
        let mut record = Record::new(index, Kind::Healthy, request);
        record.set_phases(&shared.clock, &phases);
        record.scheduled = shared.clock.maybe(due);
        (record.done, record.end) = (shared.clock.at(done), end);
        recorder.push(record);
        if end == End::Failed(Failure::Refused) {
            thread::sleep(REFUSED_PAUSE);
        }
    }
    tally.connections = client.connections;
    tally.retries = client.retries;
    (tally, recorder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::Arc;

    /// A tiny thread-per-connection server on a free loopback port: each connection is
    /// handed to `serve` on a thread of its own. Returns its address and how many
    /// connections it accepted.
    fn server(serve: fn(TcpStream)) -> (SocketAddr, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&accepted);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let conn = conn.unwrap();
                count.fetch_add(1, Ordering::Relaxed);
                thread::spawn(move || serve(conn));
            }
        });
        (addr, accepted)
    }

    /// Reads one request head (up to the blank line); false if the client closed first.
    fn read_head(conn: &mut TcpStream) -> bool {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match conn.read(&mut byte) {
                Ok(1..) => head.push(byte[0]),
                _ => return false,
            }
        }
        true
    }

    /// Reads a request, answers 200.
    fn hello_server() -> SocketAddr {
        server(|mut conn| {
            // An idle client sends nothing: this read waits until it hangs up.
            if read_head(&mut conn) {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n");
            }
        })
        .0
    }

    fn plan(addr: SocketAddr) -> Plan<'static> {
        Plan {
            target: Target {
                addr,
                request: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                connect_timeout: Duration::from_secs(2),
                keep_alive: false,
            },
            clients: 4,
            idle: 0,
            idle_reconnect: false,
            trickle: 0,
            trickle_every: Duration::from_millis(200),
            held: 0,
            held_rate: 2000.0,
            requests: Some(100),
            duration: None,
            timeout: Duration::from_secs(5),
            rate: None,
            trace: false,
            probe: None,
        }
    }

    fn run_plan(plan: &Plan<'_>) -> Outcome {
        run(plan, &Board::new(plan.clients))
    }

    /// `--requests N` sends exactly N requests however many clients share them.
    #[test]
    fn the_request_budget_is_shared_exactly() {
        let outcome = run_plan(&plan(hello_server()));
        assert_eq!(outcome.tally.sent, 100);
        assert_eq!(outcome.tally.ok, 100);
        assert_eq!(outcome.tally.failed.total(), 0);
        assert_eq!(outcome.tally.latency.count(), 100);
        assert_eq!(outcome.spawn_errors, 0);
        // Without keep-alive, every request opened a connection of its own.
        assert_eq!((outcome.tally.connections, outcome.tally.retries), (100, 0));
        assert!(outcome.open_loop.is_none());
    }

    /// Requests still waiting when the time is up are unfinished, not failed.
    #[test]
    fn a_silent_server_leaves_requests_unfinished_at_the_end() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut plan = plan(listener.local_addr().unwrap());
        plan.requests = None;
        plan.duration = Some(Duration::from_millis(300));
        let outcome = run_plan(&plan);
        assert_eq!(
            outcome.tally.sent, 4,
            "one request per client, never answered"
        );
        assert_eq!(outcome.tally.unfinished, 4);
        assert_eq!((outcome.tally.ok, outcome.tally.failed.total()), (0, 0));
        assert!(outcome.elapsed >= Duration::from_millis(300));
    }

    /// Idle connections are opened, held, and counted.
    #[test]
    fn idle_connections_are_held_until_the_end() {
        let mut plan = plan(hello_server());
        plan.idle = 3;
        let outcome = run_plan(&plan);
        assert_eq!(outcome.tally.ok, 100);
        // This server has no deadlines: nobody was cut.
        assert_eq!(
            outcome.idle,
            SideTally {
                connects: 3,
                cut: 0,
                done: 0
            }
        );
    }

    /// A 100 ms deadline for the whole request head, like stage 05: 200 if it came in
    /// time, else 408 and close.
    fn deadline_server() -> SocketAddr {
        server(|mut conn| {
            let deadline = Instant::now() + Duration::from_millis(100);
            let mut head = Vec::new();
            let mut chunk = [0u8; 256];
            let reply: &[u8] = loop {
                if head.ends_with(b"\r\n\r\n") {
                    break b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                }
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n";
                };
                conn.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                match conn.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                    Err(_) => {}
                }
            };
            let _ = conn.write_all(reply);
        })
        .0
    }

    /// An idler cut by a deadline stays away, unless told to reconnect.
    #[test]
    fn cut_idlers_reconnect_only_when_asked() {
        let addr = deadline_server();
        let mut plan = plan(addr);
        plan.idle = 2;
        plan.requests = None;
        plan.duration = Some(Duration::from_millis(800));
        let once = run_plan(&plan);
        assert_eq!(
            once.idle,
            SideTally {
                connects: 2,
                cut: 2,
                done: 0
            }
        );
        assert!(once.tally.ok > 0);

        plan.idle_reconnect = true;
        let again = run_plan(&plan);
        assert!(again.idle.cut >= 4, "{:?}", again.idle);
        assert!(again.idle.connects >= again.idle.cut);
    }

    /// Answers every request on a connection until the client closes it.
    fn keep_alive_server() -> (SocketAddr, Arc<AtomicU64>) {
        server(|mut conn| {
            while read_head(&mut conn) {
                if conn
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n")
                    .is_err()
                {
                    return;
                }
            }
        })
    }

    /// Against a server that keeps connections open, one client's 20 requests need one
    /// handshake: the server accepted one connection.
    #[test]
    fn keep_alive_reuses_one_connection_for_every_request() {
        let (addr, accepted) = keep_alive_server();
        let mut plan = plan(addr);
        (plan.clients, plan.requests) = (1, Some(20));
        plan.target.keep_alive = true;
        let outcome = run_plan(&plan);
        assert_eq!((outcome.tally.ok, outcome.tally.failed.total()), (20, 0));
        assert_eq!((outcome.tally.connections, outcome.tally.retries), (1, 0));
        assert_eq!(accepted.load(Ordering::Relaxed), 1);
    }

    /// A server that says `Connection: close` gets a new connection for every request,
    /// keep-alive or not, and nothing is retried.
    #[test]
    fn connection_close_means_a_connection_per_request() {
        let (addr, accepted) = server(|mut conn| {
            if read_head(&mut conn) {
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nhi\n",
                );
            }
        });
        let mut plan = plan(addr);
        (plan.clients, plan.requests) = (2, Some(12));
        plan.target.keep_alive = true;
        let outcome = run_plan(&plan);
        assert_eq!((outcome.tally.ok, outcome.tally.failed.total()), (12, 0));
        assert_eq!((outcome.tally.connections, outcome.tally.retries), (12, 0));
        assert_eq!(accepted.load(Ordering::Relaxed), 12);
    }

    /// An HTTP/1.0 server that does not say keep-alive closes after each response too.
    #[test]
    fn an_http10_answer_is_not_kept() {
        let (addr, _) = server(|mut conn| {
            if read_head(&mut conn) {
                let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nhi\n");
            }
        });
        let mut plan = plan(addr);
        (plan.clients, plan.requests) = (1, Some(5));
        plan.target.keep_alive = true;
        let outcome = run_plan(&plan);
        assert_eq!((outcome.tally.ok, outcome.tally.connections), (5, 5));
    }

    /// A server that closes an idle connection without a word (here: right after each
    /// response, without `Connection: close`) makes every request after a client's first
    /// meet a closed connection. Each is sent again on a fresh one: no failures, every one
    /// counted as a retry, and one connection per request.
    #[test]
    fn an_idle_close_is_retried_not_failed() {
        let (addr, accepted) = server(|mut conn| {
            if read_head(&mut conn) {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n");
            }
        });
        let mut plan = plan(addr);
        (plan.clients, plan.requests) = (1, Some(10));
        plan.target.keep_alive = true;
        let outcome = run_plan(&plan);
        assert_eq!((outcome.tally.ok, outcome.tally.failed.total()), (10, 0));
        assert_eq!((outcome.tally.connections, outcome.tally.retries), (10, 9));
        assert_eq!(accepted.load(Ordering::Relaxed), 10);
    }

    /// Three clients, thirty requests: thirty rows, each client's numbered from 0 in order,
    /// every phase stamped and in order, the status and no failure.
    #[test]
    fn the_trace_has_a_row_per_request_with_ordered_phases() {
        let mut plan = plan(hello_server());
        (plan.clients, plan.requests, plan.trace) = (3, Some(30), true);
        let outcome = run_plan(&plan);
        let start = outcome.trace.start.unwrap();
        let rows: Vec<Vec<String>> = outcome
            .trace
            .rows()
            .map(|r| r.line(start).split(',').map(str::to_string).collect())
            .collect();
        assert_eq!(rows.len(), 30);
        let mut per_client = [0u32; 3];
        for row in &rows {
            assert_eq!(row.len(), 12, "{row:?}");
            let client: usize = row[0].parse().unwrap();
            assert_eq!(row[1], "healthy");
            assert_eq!(row[2], per_client[client].to_string(), "requests in order");
            per_client[client] += 1;
            assert_eq!((row[3].as_str(), row[4].as_str()), ("0", ""), "{row:?}");
            let times: Vec<i64> = row[5..10].iter().map(|t| t.parse().unwrap()).collect();
            assert!(times[0] >= 0, "after the start line: {row:?}");
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "{row:?}");
            assert_eq!((row[10].as_str(), row[11].as_str()), ("200", ""));
        }
        assert_eq!(per_client.iter().sum::<u32>(), 30);
        assert_eq!(outcome.trace.dropped, 0);
    }

    /// Idle connections get a row per connection they opened, numbered after the healthy
    /// clients, with times before the start line and `cut` when the server closed them.
    #[test]
    fn idle_connections_are_traced_with_their_cut() {
        let mut plan = plan(deadline_server());
        (plan.clients, plan.idle, plan.trace) = (2, 2, true);
        (plan.requests, plan.duration) = (None, Some(Duration::from_millis(400)));
        let outcome = run_plan(&plan);
        let start = outcome.trace.start.unwrap();
        let idle: Vec<String> = outcome
            .trace
            .rows()
            .filter(|r| r.kind == Kind::Idle)
            .map(|r| r.line(start))
            .collect();
        assert_eq!(idle.len(), 2, "{idle:?}");
        for line in idle {
            let row: Vec<&str> = line.split(',').collect();
            assert!(row[0] == "2" || row[0] == "3", "{line}");
            assert_eq!((row[1], row[2], row[7]), ("idle", "0", ""), "{line}");
            assert!(row[5].parse::<i64>().unwrap() < 0, "opened first: {line}");
            assert_eq!((row[10], row[11]), ("408", "cut"), "{line}");
        }
    }

    /// A server that answers at once, except that from 200 ms after its first request it
    /// holds every answer until 700 ms: a 500 ms stall, like a pause of the world.
    fn stalling_server() -> SocketAddr {
        let first: Arc<Mutex<Option<Instant>>> = Arc::default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                let first = Arc::clone(&first);
                thread::spawn(move || {
                    if !read_head(&mut conn) {
                        return;
                    }
                    let now = Instant::now();
                    let first = *first.lock().unwrap().get_or_insert(now);
                    let (from, to) = (
                        first + Duration::from_millis(200),
                        first + Duration::from_millis(700),
                    );
                    if now >= from && now < to {
                        thread::sleep(to - now);
                    }
                    thread::sleep(Duration::from_millis(5));
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                });
            }
        });
        addr
    }

    /// Coordinated omission, shown with counts. Against a server that stalls for 500 ms:
    /// the open loop still has its 100 requests due in 1 s at 100 per second, and the ones
    /// due during the stall count the wait from their due time, so the slowest take at
    /// least 400 ms and so does p99. The closed loop's two clients sit through the stall
    /// with one request each, and sent nothing else meanwhile: with 5 ms per answer they
    /// cannot send more than (1000 - 500) / 5 + 2 requests, however fast the machine.
    #[test]
    fn the_open_loop_counts_the_stall_the_closed_loop_omits() {
        let mut open = plan(stalling_server());
        (open.clients, open.requests) = (4, None);
        (open.duration, open.rate) = (Some(Duration::from_secs(1)), Some(100.0));
        let seen = run_plan(&open);
        let open_loop = seen.open_loop.unwrap();
        assert_eq!(open_loop.due, 100);
        assert_eq!(seen.tally.sent + open_loop.not_started, 100);
        let lat = &seen.tally.latency;
        assert!(lat.max().unwrap() >= Duration::from_millis(400), "{lat:?}");
        assert!(lat.percentile(0.99).unwrap() >= Duration::from_millis(400));
        assert!(seen.tally.late > 0, "requests waited for a free client");

        let mut closed = plan(stalling_server());
        (closed.clients, closed.requests) = (2, None);
        closed.duration = Some(Duration::from_secs(1));
        let seen = run_plan(&closed);
        assert!(
            seen.tally.sent <= 2 * (500 / 5 + 2),
            "sent {}",
            seen.tally.sent
        );
        assert!(seen.tally.latency.max().unwrap() >= Duration::from_millis(400));
    }

    /// The open loop with `--requests`: exactly that many, due every 10 ms at 100 per
    /// second, each row's scheduled time exactly its due time.
    #[test]
    fn the_open_loop_sends_its_timetable_exactly() {
        let mut plan = plan(hello_server());
        (plan.clients, plan.requests, plan.rate, plan.trace) = (3, Some(30), Some(100.0), true);
        let outcome = run_plan(&plan);
        assert_eq!((outcome.tally.sent, outcome.tally.ok), (30, 30));
        let open_loop = outcome.open_loop.unwrap();
        assert_eq!((open_loop.due, open_loop.not_started), (30, 0));
        let start = outcome.trace.start.unwrap();
        let mut scheduled: Vec<i64> = outcome
            .trace
            .rows()
            .map(|r| r.line(start).split(',').nth(4).unwrap().parse().unwrap())
            .collect();
        scheduled.sort_unstable();
        assert_eq!(scheduled, (0..30).map(|i| i * 10_000).collect::<Vec<i64>>());
        // Thirty requests 10 ms apart take at least 290 ms.
        assert!(outcome.elapsed >= Duration::from_millis(290));
    }

    /// Trickling connections send one byte at a time; a server with a deadline cuts them,
    /// and they come back at once.
    #[test]
    fn tricklers_are_cut_by_a_deadline_and_come_back() {
        let mut plan = plan(deadline_server());
        (plan.clients, plan.trickle, plan.idle_reconnect) = (1, 2, true);
        plan.trickle_every = Duration::from_millis(20);
        (plan.requests, plan.duration) = (None, Some(Duration::from_millis(700)));
        let outcome = run_plan(&plan);
        assert!(outcome.trickle.cut >= 4, "{:?}", outcome.trickle);
        assert!(outcome.trickle.connects >= outcome.trickle.cut);
        assert_eq!(outcome.trickle.done, 0);
        assert!(outcome.tally.ok > 0);
    }

    /// Without a deadline, a trickled request is answered in the end.
    #[test]
    fn a_trickled_request_is_answered_by_a_patient_server() {
        let mut plan = plan(hello_server());
        (plan.clients, plan.trickle) = (1, 1);
        plan.trickle_every = Duration::from_millis(2);
        (plan.requests, plan.duration) = (None, Some(Duration::from_millis(600)));
        let outcome = run_plan(&plan);
        assert!(outcome.trickle.done >= 1, "{:?}", outcome.trickle);
        assert_eq!(outcome.trickle.cut, 0);
    }

    /// Held connections are opened from a few threads and held until the end.
    #[test]
    fn held_connections_are_opened_and_held() {
        let mut plan = plan(hello_server());
        (plan.clients, plan.held, plan.trace) = (2, 50, true);
        let outcome = run_plan(&plan);
        assert_eq!(outcome.tally.ok, 100);
        let held = outcome.held;
        assert_eq!((held.asked, held.established, held.cut), (50, 50, 0));
        assert_eq!((held.failed.total(), held.not_tried), (0, 0));
        let idle_rows = outcome
            .trace
            .rows()
            .filter(|r| r.kind == Kind::Idle)
            .count();
        assert_eq!(idle_rows, 50);
    }

    /// Held connections a server closes are seen as cut.
    #[test]
    fn held_connections_cut_by_the_server_are_counted() {
        let mut plan = plan(deadline_server());
        (plan.clients, plan.held) = (1, 20);
        (plan.requests, plan.duration) = (None, Some(Duration::from_millis(500)));
        let outcome = run_plan(&plan);
        assert_eq!((outcome.held.established, outcome.held.cut), (20, 20));
    }

    /// The probe asks its own path on a pace of its own, and is counted apart: against a
    /// server that answers `/` after 40 ms and `/stats` at once, the probe's 20 ms pace over
    /// 600 ms gives it at least 15 answers (every one a `/stats` the server saw), each faster
    /// than any healthy client's, and the healthy clients' counts hold none of them.
    #[test]
    fn the_probe_asks_its_own_path_and_is_counted_apart() {
        static STATS_SEEN: AtomicU64 = AtomicU64::new(0);
        let (addr, _) = server(|mut conn| {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match conn.read(&mut byte) {
                    Ok(1..) => head.push(byte[0]),
                    _ => return,
                }
            }
            if head.starts_with(b"GET /stats HTTP/1.1\r\n") {
                STATS_SEEN.fetch_add(1, Ordering::Relaxed);
            } else {
                thread::sleep(Duration::from_millis(40));
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n");
        });
        let request = b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut plan = plan(addr);
        (plan.clients, plan.requests) = (2, None);
        plan.duration = Some(Duration::from_millis(600));
        plan.probe = Some(Probe {
            target: Target {
                request,
                ..plan.target
            },
            every: Duration::from_millis(20),
        });
        let outcome = run_plan(&plan);
        let probe = outcome.probe.unwrap();
        assert!(probe.ok >= 15, "{probe:?}");
        assert_eq!(probe.failed.total(), 0);
        assert_eq!(probe.sent, probe.ok + probe.unfinished);
        // Every /stats the server saw came from the probe (the clients ask for /).
        assert_eq!(STATS_SEEN.load(Ordering::Relaxed), probe.sent);
        assert_eq!(probe.connections, probe.sent, "a connection per request");
        let healthy = &outcome.tally;
        assert!(probe.latency.max().unwrap() < healthy.latency.min().unwrap());
        // Two clients at 40 ms a request: at most 2 x 600 / 40 answers, none of them the probe's.
        assert!(healthy.ok <= 30, "{healthy:?}");
        assert!(healthy.latency.min().unwrap() >= Duration::from_millis(40));
        // Without a probe there is no probe tally.
        plan.probe = None;
        plan.duration = Some(Duration::from_millis(100));
        assert!(run_plan(&plan).probe.is_none());
    }

    /// Tallies add up field by field.
    #[test]
    fn tallies_merge() {
        let mut a = Tally {
            sent: 3,
            ok: 2,
            connections: 1,
            ..Tally::default()
        };
        a.failed.count(Failure::Reset);
        let mut b = Tally {
            sent: 2,
            unfinished: 1,
            connections: 2,
            retries: 1,
            late: 1,
            ..Tally::default()
        };
        b.failed.count(Failure::Other);
        b.first_other = Some("boom".into());
        a.merge(b);
        assert_eq!((a.sent, a.ok, a.unfinished, a.failed.total()), (5, 2, 1, 2));
        assert_eq!((a.connections, a.retries, a.late), (3, 1, 1));
        assert_eq!(a.failed.get(Failure::Other), 1);
        assert_eq!(a.first_other.as_deref(), Some("boom"));
    }
}
