//! Running the load: client threads, idle connections, a start line, and the tallies.
//!
//! Every client is a thread in a closed loop: send a request, wait for its whole response,
//! send the next. A slow server therefore slows its clients down, as real users waiting for
//! a page are, instead of being sent more than it can take.
//!
//! The clients keep their counts to themselves ([`Tally`]: counters and a latency
//! [`Histogram`]) and hand them back when they finish; only the request budget and the
//! progress counter are shared, as atomics. So the generator adds no lock that its own
//! threads would queue on, and it measures the server, not itself.
//!
//! Order matters for the `idle` scenario: idle connections are opened first and the healthy
//! clients only start once they are all connected, so the idlers are ahead in the server's
//! queue, exactly as a slow client who got there first would be.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::{self, Scope};
use std::time::{Duration, Instant};

use crate::client::{self, Failed, Failure, Target};
use crate::histogram::Histogram;

/// Client threads do little on their stacks; a small one lets a flood of a thousand start.
const CLIENT_STACK: usize = 256 * 1024;
/// Room for a response head (the stages send about 150 bytes of head).
const RESPONSE_BUFFER: usize = 8 * 1024;
/// After a refused connect, which fails in microseconds, a short pause so a client does not
/// spin on a server that is gone.
const REFUSED_PAUSE: Duration = Duration::from_millis(10);
/// How often an idle connection looks up to see whether the run is over.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// A bound on waiting for the start line or for a run without a time limit, so that no loop
/// in here can wait forever.
const LONGEST_WAIT: Duration = Duration::from_secs(2 * 3600);

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    pub target: Target<'a>,
    /// Healthy clients.
    pub clients: usize,
    /// Connections that send nothing.
    pub idle: usize,
    pub idle_reconnect: bool,
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    /// The longest one request may take.
    pub timeout: Duration,
    /// Redraw a progress line on stderr.
    pub progress: bool,
}

/// What some clients saw.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub sent: u64,
    pub ok: u64,
    /// Failed requests, indexed like [`Failure::ALL`].
    pub failed: [u64; 5],
    /// Still waiting for their response when the run's time was up.
    pub unfinished: u64,
    /// Latencies of the ok responses.
    pub latency: Histogram,
    /// The first failure of kind "other", as an example for the report.
    pub first_other: Option<String>,
}

impl Tally {
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().sum()
    }

    pub fn failed(&self, kind: Failure) -> u64 {
        self.failed[kind as usize]
    }

    fn count_failure(&mut self, failure: Failed) {
        self.failed[failure.kind as usize] += 1;
        if failure.kind == Failure::Other && self.first_other.is_none() {
            self.first_other = Some(failure.error.to_string());
        }
    }

    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        for (mine, theirs) in self.failed.iter_mut().zip(other.failed) {
            *mine += theirs;
        }
        self.unfinished += other.unfinished;
        self.latency.merge(&other.latency);
        self.first_other = self.first_other.take().or(other.first_other);
    }
}

/// What happened to the idle connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleTally {
    /// Connections opened (more than `--idle` with `--idle-reconnect`).
    pub connects: u64,
    /// Closed by the server, usually after answering 408.
    pub cut: u64,
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    pub tally: Tally,
    pub idle: IdleTally,
    /// From the start line to the end of the run: the duration, or the last response.
    pub elapsed: Duration,
    /// Client threads that could not be started (the others ran).
    pub spawn_errors: usize,
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
struct Shared<'p> {
    plan: &'p Plan<'p>,
    gate: Gate,
    /// Requests handed out so far, against `--requests`.
    issued: AtomicU64,
    /// Requests finished, for the progress line.
    done: AtomicU64,
    /// Idle connections that have made their first connect attempt.
    idle_ready: AtomicUsize,
    /// Set when the healthy clients are done: idle connections and progress stop.
    over: AtomicBool,
}

impl Shared<'_> {
    /// Takes one request from the budget, if any is left.
    fn take_request(&self) -> bool {
        match self.plan.requests {
            Some(limit) => self.issued.fetch_add(1, Ordering::Relaxed) < limit,
            None => true,
        }
    }
}

/// Runs the plan and returns what the clients saw.
pub fn run(plan: &Plan<'_>) -> Outcome {
    let shared = Shared {
        plan,
        gate: Gate::new(),
        issued: AtomicU64::new(0),
        done: AtomicU64::new(0),
        idle_ready: AtomicUsize::new(0),
        over: AtomicBool::new(false),
    };
    let shared = &shared;
    let mut spawn_errors = 0;

    thread::scope(|scope| {
        let idlers: Vec<_> = (0..plan.idle)
            .filter_map(|i| spawn(scope, format!("idle-{i}"), move || idle(shared)))
            .collect();
        spawn_errors += plan.idle - idlers.len();
        wait_for_idlers(shared, idlers.len());

        let clients: Vec<_> = (0..plan.clients)
            .filter_map(|i| spawn(scope, format!("client-{i}"), move || healthy(shared)))
            .collect();
        spawn_errors += plan.clients - clients.len();

        let start = Instant::now();
        shared.gate.open(start);
        if plan.progress {
            spawn(scope, "progress".into(), move || progress(shared, start));
        }

        let mut tally = Tally::default();
        for handle in clients {
            if let Ok(client_tally) = handle.join() {
                tally.merge(client_tally);
            }
        }
        // No response can complete after the run's end, so a timed run lasted exactly its
        // duration, however long the last clients took to notice.
        let elapsed = plan
            .duration
            .map_or(start.elapsed(), |d| start.elapsed().min(d));
        shared.over.store(true, Ordering::Release);

        let mut idle_tally = IdleTally::default();
        for handle in idlers {
            if let Ok(one) = handle.join() {
                idle_tally.connects += one.connects;
                idle_tally.cut += one.cut;
            }
        }
        Outcome {
            tally,
            idle: idle_tally,
            elapsed,
            spawn_errors,
        }
    })
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

/// Waits (bounded) until every idle connection has tried its first connect.
fn wait_for_idlers(shared: &Shared<'_>, idlers: usize) {
    let give_up = Instant::now() + shared.plan.target.connect_timeout + Duration::from_secs(1);
    while shared.idle_ready.load(Ordering::Acquire) < idlers && Instant::now() < give_up {
        thread::sleep(Duration::from_millis(2));
    }
}

/// One healthy client: requests in a closed loop until the budget or the time is used up.
fn healthy(shared: &Shared<'_>) -> Tally {
    let plan = shared.plan;
    let mut tally = Tally::default();
    let Some(start) = shared.gate.wait() else {
        return tally;
    };
    let run_end = plan.duration.map(|d| start + d);
    let mut buf = vec![0u8; RESPONSE_BUFFER];
    while shared.take_request() {
        let began = Instant::now();
        if run_end.is_some_and(|end| began >= end) {
            break;
        }
        tally.sent += 1;
        let timeout_at = began + plan.timeout;
        let deadline = run_end.map_or(timeout_at, |end| end.min(timeout_at));
        match client::get(&plan.target, deadline, &mut buf) {
            // The kernel counts a read timeout in clock ticks, so a response can still land a
            // few milliseconds after the run's end; like any other late one it is unfinished
            // (stage 01 with 100 ms of work showed 20 responses in a 2 s run, room for 19).
            Ok(_) if run_end.is_some_and(|end| Instant::now() > end) => tally.unfinished += 1,
            Ok(_) => {
                tally.ok += 1;
                tally.latency.record(began.elapsed());
            }
            // The run's end, not the request's own timeout, cut this one short.
            Err(failure) if failure.kind == Failure::Timeout && deadline < timeout_at => {
                if Instant::now() >= deadline {
                    tally.unfinished += 1;
                } else {
                    tally.count_failure(failure);
                }
            }
            Err(failure) => {
                if failure.kind == Failure::Refused {
                    thread::sleep(REFUSED_PAUSE);
                }
                tally.count_failure(failure);
            }
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

/// One idle connection: connect, send nothing, and hold on until the run is over. With
/// `--idle-reconnect`, connect again as soon as the server closes it.
fn idle(shared: &Shared<'_>) -> IdleTally {
    let plan = shared.plan;
    let mut tally = IdleTally::default();
    let give_up = Instant::now() + plan.duration.unwrap_or(LONGEST_WAIT) + plan.timeout;
    let mut first = true;
    while !shared.over.load(Ordering::Acquire) && Instant::now() < give_up {
        let connected = client::connect(plan.target.addr, plan.target.connect_timeout, give_up);
        if first {
            shared.idle_ready.fetch_add(1, Ordering::Release);
            first = false;
        }
        let Ok(stream) = connected else {
            thread::sleep(REFUSED_PAUSE);
            continue;
        };
        tally.connects += 1;
        if hold(shared, &stream, give_up) {
            tally.cut += 1;
            if !plan.idle_reconnect {
                break;
            }
        }
    }
    tally
}

/// Keeps an idle connection open. Returns `true` if the server closed it (or answered, which
/// for a request never sent can only be a 408), `false` if the run ended first.
fn hold(shared: &Shared<'_>, stream: &std::net::TcpStream, give_up: Instant) -> bool {
    if stream.set_read_timeout(Some(IDLE_POLL)).is_err() {
        return true;
    }
    let mut scratch = [0u8; 512];
    let mut stream = stream;
    while !shared.over.load(Ordering::Acquire) && Instant::now() < give_up {
        match stream.read(&mut scratch) {
            Err(e) if Failure::of(&e) == Failure::Timeout => continue, // still idle
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // Read whatever the server says until it closes; then this idler is cut.
            Ok(n) if n > 0 => continue,
            _ => return true,
        }
    }
    false
}

/// Redraws `done/total  rate  elapsed` on stderr until the healthy clients finish.
fn progress(shared: &Shared<'_>, start: Instant) {
    let plan = shared.plan;
    let mut stderr = std::io::stderr();
    let total = plan.requests.map_or(String::new(), |n| format!("/{n}"));
    let of_time = plan
        .duration
        .map_or(String::new(), |d| format!("/{:.1}", d.as_secs_f64()));
    let (mut last_done, mut last_at) = (0, start);
    while !shared.over.load(Ordering::Acquire) && start.elapsed() < LONGEST_WAIT {
        thread::sleep(PROGRESS_EVERY);
        let done = shared.done.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate = (done - last_done) as f64 / now.duration_since(last_at).as_secs_f64();
        (last_done, last_at) = (done, now);
        let _ = write!(
            stderr,
            "\r  {done}{total} requests  {rate:>8.0} req/s  {:.1}{of_time} s   ",
            start.elapsed().as_secs_f64()
        );
    }
    // Clear the line so the report starts on a clean one.
    let _ = write!(stderr, "\r{:70}\r", "");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddr, TcpListener, TcpStream};

    /// A tiny thread-per-connection server on a free loopback port: each connection is
    /// handed to `serve` on a thread of its own.
    fn server(serve: fn(TcpStream)) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let conn = conn.unwrap();
                thread::spawn(move || serve(conn));
            }
        });
        addr
    }

    /// Reads a request, answers 200.
    fn hello_server() -> SocketAddr {
        server(|mut conn| {
            let mut request = [0u8; 1024];
            // An idle client sends nothing: this read waits until it hangs up.
            if let Ok(1..) = conn.read(&mut request) {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n");
            }
        })
    }

    fn plan(addr: SocketAddr) -> Plan<'static> {
        Plan {
            target: Target {
                addr,
                request: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                connect_timeout: Duration::from_secs(2),
            },
            clients: 4,
            idle: 0,
            idle_reconnect: false,
            requests: Some(100),
            duration: None,
            timeout: Duration::from_secs(5),
            progress: false,
        }
    }

    /// `--requests N` sends exactly N requests however many clients share them.
    #[test]
    fn the_request_budget_is_shared_exactly() {
        let outcome = run(&plan(hello_server()));
        assert_eq!(outcome.tally.sent, 100);
        assert_eq!(outcome.tally.ok, 100);
        assert_eq!(outcome.tally.failed_total(), 0);
        assert_eq!(outcome.tally.latency.count(), 100);
        assert_eq!(outcome.spawn_errors, 0);
    }

    /// Requests still waiting when the time is up are unfinished, not failed.
    #[test]
    fn a_silent_server_leaves_requests_unfinished_at_the_end() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut plan = plan(listener.local_addr().unwrap());
        plan.requests = None;
        plan.duration = Some(Duration::from_millis(300));
        let outcome = run(&plan);
        assert_eq!(
            outcome.tally.sent, 4,
            "one request per client, never answered"
        );
        assert_eq!(outcome.tally.unfinished, 4);
        assert_eq!((outcome.tally.ok, outcome.tally.failed_total()), (0, 0));
        assert!(outcome.elapsed >= Duration::from_millis(300));
    }

    /// Idle connections are opened, held, and counted.
    #[test]
    fn idle_connections_are_held_until_the_end() {
        let mut plan = plan(hello_server());
        plan.idle = 3;
        let outcome = run(&plan);
        assert_eq!(outcome.tally.ok, 100);
        // This server has no deadlines: nobody was cut.
        assert_eq!(
            outcome.idle,
            IdleTally {
                connects: 3,
                cut: 0
            }
        );
    }

    /// A 100 ms deadline for the request, like stage 05: 200 if it came in time, else 408.
    fn deadline_server() -> SocketAddr {
        server(|mut conn| {
            conn.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut request = [0u8; 1024];
            let reply: &[u8] = match conn.read(&mut request) {
                Ok(1..) => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                _ => b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n",
            };
            let _ = conn.write_all(reply);
        })
    }

    /// An idler cut by a deadline stays away, unless told to reconnect.
    #[test]
    fn cut_idlers_reconnect_only_when_asked() {
        let addr = deadline_server();
        let mut plan = plan(addr);
        plan.idle = 2;
        plan.requests = None;
        plan.duration = Some(Duration::from_millis(800));
        let once = run(&plan);
        assert_eq!(
            once.idle,
            IdleTally {
                connects: 2,
                cut: 2
            }
        );
        assert!(once.tally.ok > 0);

        plan.idle_reconnect = true;
        let again = run(&plan);
        assert!(again.idle.cut >= 4, "{:?}", again.idle);
        assert!(again.idle.connects >= again.idle.cut);
    }

    /// Tallies add up field by field.
    #[test]
    fn tallies_merge() {
        let mut a = Tally {
            sent: 3,
            ok: 2,
            ..Tally::default()
        };
        a.failed[Failure::Reset as usize] = 1;
        let mut b = Tally {
            sent: 2,
            unfinished: 1,
            ..Tally::default()
        };
        b.failed[Failure::Other as usize] = 1;
        b.first_other = Some("boom".into());
        a.merge(b);
        assert_eq!((a.sent, a.ok, a.unfinished, a.failed_total()), (5, 2, 1, 2));
        assert_eq!(a.failed(Failure::Other), 1);
        assert_eq!(a.first_other.as_deref(), Some("boom"));
    }
}
