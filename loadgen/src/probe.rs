//! `--probe-path`: one more client, apart from the others, asking another path of the same
//! server throughout the run.
//!
//! The healthy clients say what the server does for the requests that make the load. The
//! probe says what that load does to someone else: a client whose request needs no work
//! (`GET /stats`) waits for nothing but the server's attention. An event loop that computes
//! (`--cpu-ms`, stage 07) keeps it waiting behind every request that computes; one that hands
//! the computing to a pool (stage 08) answers it at once. The probe is paced (a request every
//! `--probe-every-ms`) so that it measures the load without adding to it, and its counts and
//! latencies are its own: they appear in no other line of the report.

use std::time::{Duration, Instant};

use crate::board::Slot;
use crate::client::{Client, Phases, Target};
use crate::run::{Shared, Tally, RESPONSE_BUFFER};
use crate::trace::End;

/// The probe: what it asks, and how often.
#[derive(Clone, Copy, Debug)]
pub struct Probe<'a> {
    /// The same server as the healthy clients, another request (another path).
    pub target: Target<'a>,
    /// A request every this long; after an answer slower than that, the next goes at once.
    pub every: Duration,
}

/// Asks from the start line to the end of the run, one request at a time; returns what it
/// saw. Latency counts from the send, as for a healthy client in the closed loop.
pub fn probe(shared: &Shared<'_>, probe: &Probe<'_>) -> Tally {
    // Its answers' latency is the measurement: its wake-ups must not wait their turn.
    crate::sched::step_forward();
    let mut tally = Tally::default();
    let Some(start) = shared.wait_for_start() else {
        return tally;
    };
    let plan = shared.plan;
    let run_end = plan.duration.map(|d| start + d);
    // Not on the board: the live view's counts are the healthy clients'.
    let slot = Slot::default();
    let mut client = Client::new(probe.target, RESPONSE_BUFFER);
    let mut due = start;
    loop {
        crate::watch::sleep_until(due, shared.board);
        let began = Instant::now();
        if shared.over() || run_end.is_some_and(|end| began >= end) {
            break;
        }
        tally.sent += 1;
        let timeout_at = began + plan.timeout;
        let deadline = run_end.map_or(timeout_at, |end| end.min(timeout_at));
        let result = client.request(deadline, &slot, &mut Phases::default());
        let end = tally.settle(result, began, Instant::now(), run_end, deadline, timeout_at);
        if end == End::Failed(crate::client::Failure::Refused) {
            std::thread::sleep(crate::run::REFUSED_PAUSE);
        }
        due = (due + probe.every).max(Instant::now());
    }
    tally.connections = client.connections;
    tally.retries = client.retries;
    tally
}
