//! The open loop's timetable: with `--rate R`, request `i` is due at `start + i / R`,
//! whatever the server does.
//!
//! In the closed loop (the default) a client sends its next request when the previous one is
//! answered, so a server that stalls is sent nothing while it stalls, and the requests that
//! real users would have made in that time are never made, never measured: the stall shows
//! as a handful of slow requests instead of as the queue of waiting users it really caused.
//! Gil Tene called this *coordinated omission* ("How NOT to measure latency"); wrk2 is the
//! load generator he wrote to avoid it, and this is its idea, on threads.
//!
//! The clients pull from the timetable: a free client takes the next request, sleeps until
//! it is due, and sends it. When every client is busy, the due requests wait until one is
//! free, and each one's latency is counted from when it was *due*, so the wait it spent
//! behind a stalled server is part of its latency, as it would be for a user. The only
//! shared state is one counter, the next request to hand out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A request that starts more than this after its due time is counted as late: a client was
/// not free (or not woken) in time.
pub const LATE: Duration = Duration::from_millis(1);

/// When each request is due, and which one is next.
#[derive(Debug)]
pub struct Timetable {
    /// Requests per second, from all clients together.
    rate: f64,
    /// `--requests`: no request beyond this many.
    limit: Option<u64>,
    next: AtomicU64,
}

impl Timetable {
    /// `rate` must be above zero (the command line sees to it).
    pub fn new(rate: f64, limit: Option<u64>) -> Timetable {
        Timetable {
            rate,
            limit,
            next: AtomicU64::new(0),
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// How long after the start request `i` is due. Rounded to the nanosecond from one
    /// division, so that request 3 at 100 per second is due at exactly 30 ms.
    pub fn offset(&self, i: u64) -> Duration {
        Duration::from_nanos((i as f64 * 1e9 / self.rate).round() as u64)
    }

    /// Hands out the next request: its number, or `None` when `--requests` are all out.
    pub fn take(&self) -> Option<u64> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.limit {
            Some(limit) if i >= limit => None,
            _ => Some(i),
        }
    }

    /// How many requests were due strictly before `elapsed`: the ones a run of that length
    /// should have started.
    pub fn due_within(&self, elapsed: Duration) -> u64 {
        // A first guess from the rate, then corrected against `offset` itself, so that this
        // count and the clients' own "is it due before the end?" always agree.
        let mut n = (elapsed.as_secs_f64() * self.rate).ceil() as u64;
        while n > 0 && self.offset(n - 1) >= elapsed {
            n -= 1;
        }
        while self.offset(n) < elapsed {
            n += 1;
        }
        self.limit.map_or(n, |limit| n.min(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Request i is due at exactly i / rate.
    #[test]
    fn requests_are_due_at_i_over_the_rate() {
        let table = Timetable::new(100.0, None);
        assert_eq!(table.offset(0), Duration::ZERO);
        assert_eq!(table.offset(3), Duration::from_millis(30));
        assert_eq!(table.offset(29), Duration::from_millis(290));
        let third = Timetable::new(3.0, None);
        assert_eq!(third.offset(1), Duration::from_nanos(333_333_333));
        assert_eq!(third.offset(3), Duration::from_secs(1));
    }

    /// A run of one second at 100 per second has 100 due requests: 0 to 99, since request
    /// 100 is due exactly at the end.
    #[test]
    fn due_counts_stop_before_the_end() {
        let table = Timetable::new(100.0, None);
        assert_eq!(table.due_within(Duration::from_secs(1)), 100);
        assert_eq!(table.due_within(Duration::from_micros(1_000_001)), 101);
        assert_eq!(table.due_within(Duration::ZERO), 0);
        assert_eq!(table.due_within(Duration::from_nanos(1)), 1);
        assert_eq!(
            Timetable::new(3.0, None).due_within(Duration::from_millis(500)),
            2
        );
        assert_eq!(
            Timetable::new(100.0, Some(30)).due_within(Duration::from_secs(1)),
            30
        );
    }

    /// `--requests` bounds what is handed out, in order.
    #[test]
    fn the_limit_bounds_what_is_handed_out() {
        let table = Timetable::new(10.0, Some(3));
        let taken: Vec<Option<u64>> = (0..5).map(|_| table.take()).collect();
        assert_eq!(taken, [Some(0), Some(1), Some(2), None, None]);
    }
}
