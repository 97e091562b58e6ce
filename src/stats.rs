//! Counters every stage keeps, served as JSON on `GET /stats`.
//!
//! They are what the tests and `load_test.sh` read to prove a stage's idea with structure
//! rather than stopwatches: stage 01's `peak_in_flight` is 1, stage 03's never exceeds
//! `--max-conns`, stage 04's `peak_connections_open` never exceeds workers + queue.
//!
//! Atomics, not a `Mutex`: every request touches them, and a lock shared by all connections
//! would serialise the very threads the later stages add. Every operation is `Relaxed`: each
//! counter is a number on its own, read to be printed, and nothing else in memory is published
//! through it, so no ordering with other memory is needed. (A `Relaxed` `fetch_add` or
//! `fetch_max` is still atomic: no increment is lost and no peak is missed.)
//!
//! Introduced in chapter 1 (`docs/01-single.md`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::config::Flag;

/// A level that goes up and down (open connections, busy threads) and remembers its peak.
#[derive(Debug, Default)]
pub struct Gauge {
    current: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    /// Goes up by one; goes down again when the guard is dropped, whatever path the caller takes.
    pub fn enter(&self) -> GaugeGuard<'_> {
        self.up();
        GaugeGuard(self)
    }

    /// Goes up by one; the caller must call [`Gauge::down`] exactly once later.
    pub fn up(&self) {
        let now = self.current.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    /// Goes up by one unless it is already at `limit`; whether it went up. Safe when several
    /// threads add at once (stage 09's loops share the kitchen's queue): the check and the
    /// add are one atomic step, so the limit holds exactly.
    pub fn try_up(&self, limit: usize) -> bool {
        let added = self
            .current
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                (now < limit).then_some(now + 1)
            });
        match added {
            Ok(before) => {
                self.peak.fetch_max(before + 1, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    pub fn down(&self) {
        self.current.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

/// Stage 09: one loop's share of the counters, so that `/stats` shows how the kernel spread
/// the clients among the loops. Each on cache lines of its own (`align(128)`): two loops'
/// counters side by side in one line would make every count on one core wait for the other.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct LoopStats {
    /// Connections this loop accepted.
    pub accepted: AtomicU64,
    /// Connections this loop holds now, and at most.
    pub connections_open: Gauge,
    /// Request heads this loop read.
    pub requests: AtomicU64,
    /// Times this loop was told clients were waiting and found none to accept: another loop
    /// had taken them (the thundering herd of one listener shared by every loop).
    pub accept_misses: AtomicU64,
}

/// Holds a [`Gauge`] up by one while it lives.
#[derive(Debug)]
pub struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.down();
    }
}

/// The counters of one server.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    /// Connections `accept()` returned and the stage took on.
    pub accepted: AtomicU64,
    /// Responses written in full, whatever their status. "Written" means handed to the kernel:
    /// the bytes are in the socket's send buffer, which says nothing about whether the client
    /// is still there to read them.
    pub served: AtomicU64,
    /// Connections that ended in an I/O error (reset, failed write) or could not be handed off.
    pub errors: AtomicU64,
    /// Connections cut by a deadline (stage 05 on).
    pub timeouts: AtomicU64,
    /// Requests whose client had left before their work was done, so the work was skipped.
    pub abandoned: AtomicU64,
    /// Request heads read (stage 07: several per connection).
    pub requests: AtomicU64,
    /// Requests that came on a connection that had already carried one (stage 07).
    pub keep_alive_reuses: AtomicU64,
    /// Idle kept connections closed at `--max-conns` to make room for a new client (stage 07).
    pub idle_closed_for_room: AtomicU64,
    /// Stage 08: orders handed to the kitchen and waiting for a cook.
    pub kitchen_queued: Gauge,
    /// Stage 08: orders a cook is computing right now.
    pub kitchen_cooking: Gauge,
    /// Stage 08: orders refused because `--cpu-queue` orders were already waiting (503).
    pub kitchen_full: AtomicU64,
    /// Stage 09: each loop's own counters; empty in the other stages.
    pub loops: Vec<LoopStats>,
    /// Accepted and not yet closed: includes connections waiting in a queue.
    pub connections_open: Gauge,
    /// Being handled by a thread right now: the number of baristas at work.
    pub in_flight: Gauge,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            accepted: AtomicU64::new(0),
            served: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            keep_alive_reuses: AtomicU64::new(0),
            idle_closed_for_room: AtomicU64::new(0),
            kitchen_queued: Gauge::default(),
            kitchen_cooking: Gauge::default(),
            kitchen_full: AtomicU64::new(0),
            loops: Vec::new(),
            connections_open: Gauge::default(),
            in_flight: Gauge::default(),
        }
    }
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A counter's value now.
pub fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Stats {
    /// Counters for a server of `loops` event loops (stage 09), or of one (0).
    pub fn for_loops(loops: usize) -> Stats {
        Stats {
            loops: (0..loops).map(|_| LoopStats::default()).collect(),
            ..Stats::default()
        }
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// The `/stats` body. `timeouts` for stages that have deadlines, `requests`,
    /// `keep_alive_reuses` and `idle_closed_for_room` for stage 07 on, the kitchen's figures
    /// for stage 08 on: each stage shows the counters that mean something there.
    pub fn to_json(&self, stage: &str, extra: &[Flag]) -> String {
        let with_timeouts = extra.contains(&Flag::HeaderTimeout);
        let with_keep_alive = extra.contains(&Flag::KeepAlive);
        let with_kitchen = extra.contains(&Flag::Kitchen);
        let mut json = format!(
            "{{\"stage\":\"{stage}\",\"uptime_ms\":{},\"accepted\":{},\"served\":{},\
             \"connections_open\":{},\"peak_connections_open\":{},\"in_flight\":{},\
             \"peak_in_flight\":{},\"errors\":{},\"abandoned\":{}",
            self.uptime().as_millis(),
            load(&self.accepted),
            load(&self.served),
            self.connections_open.current(),
            self.connections_open.peak(),
            self.in_flight.current(),
            self.in_flight.peak(),
            load(&self.errors),
            load(&self.abandoned),
        );
        if with_timeouts {
            let _ = write!(json, ",\"timeouts\":{}", load(&self.timeouts));
        }
        if with_keep_alive {
            let _ = write!(
                json,
                ",\"requests\":{},\"keep_alive_reuses\":{},\"idle_closed_for_room\":{}",
                load(&self.requests),
                load(&self.keep_alive_reuses),
                load(&self.idle_closed_for_room)
            );
        }
        if with_kitchen {
            let _ = write!(
                json,
                ",\"kitchen_queued\":{},\"peak_kitchen_queued\":{},\"kitchen_cooking\":{},\
                 \"peak_kitchen_cooking\":{},\"kitchen_full\":{}",
                self.kitchen_queued.current(),
                self.kitchen_queued.peak(),
                self.kitchen_cooking.current(),
                self.kitchen_cooking.peak(),
                load(&self.kitchen_full)
            );
        }
        for (i, lane) in self.loops.iter().enumerate() {
            let _ = write!(
                json,
                ",\"loop_{i}_accepted\":{},\"loop_{i}_connections_open\":{},\
                 \"loop_{i}_requests\":{},\"loop_{i}_accept_misses\":{}",
                load(&lane.accepted),
                lane.connections_open.current(),
                load(&lane.requests),
                load(&lane.accept_misses),
            );
        }
        json.push_str("}\n");
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gauge_remembers_its_peak_after_going_down() {
        let gauge = Gauge::default();
        {
            let _a = gauge.enter();
            let _b = gauge.enter();
            assert_eq!(gauge.current(), 2);
        }
        let _c = gauge.enter();
        assert_eq!((gauge.current(), gauge.peak()), (1, 2));
    }

    /// Eight threads adding to a gauge bounded at 100, ten thousand tries each: it stops at
    /// exactly 100, never past it, and its peak says so.
    #[test]
    fn try_up_never_passes_its_limit_when_threads_race() {
        let gauge = Gauge::default();
        let added = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        if gauge.try_up(100) {
                            added.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(added.into_inner(), 100);
        assert_eq!((gauge.current(), gauge.peak()), (100, 100));
    }

    #[test]
    fn json_has_every_field_in_order() {
        let stats = Stats::default();
        bump(&stats.accepted);
        let json = stats.to_json("01_single", &[]);
        assert!(
            json.starts_with("{\"stage\":\"01_single\",\"uptime_ms\":"),
            "{json}"
        );
        assert!(
            json.ends_with(
                ",\"accepted\":1,\"served\":0,\"connections_open\":0,\"peak_connections_open\":0,\
             \"in_flight\":0,\"peak_in_flight\":0,\"errors\":0,\"abandoned\":0}\n"
            ),
            "{json}"
        );
        assert!(stats
            .to_json("05_timeouts", &[Flag::HeaderTimeout])
            .ends_with(",\"abandoned\":0,\"timeouts\":0}\n"));
        assert!(stats.to_json("07_keep_alive", &[Flag::HeaderTimeout, Flag::KeepAlive]).ends_with(
            ",\"timeouts\":0,\"requests\":0,\"keep_alive_reuses\":0,\"idle_closed_for_room\":0}\n"
        ));
    }
}
