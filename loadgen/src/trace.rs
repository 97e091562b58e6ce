//! `--trace FILE`: one CSV row per request of every client, written after the run.
//!
//! A percentile says how slow the slow requests were; a trace says *when* and *where* the
//! time went: waiting for the handshake, for the first byte, for the last. Recording must
//! not change what it records, so each client appends to a `Vec` of its own (a few tens of
//! bytes per request, no lock, no I/O), times are kept as microseconds since one [`Clock`],
//! and the file is written once every client has finished.
//!
//! The total is capped at [`CAP`] rows (128 MiB of 64-byte records): a client takes rows from
//! the shared budget [`CHUNK`] at a time, so that the budget costs one atomic operation per
//! thousand requests; what the cap cut is counted and the report says so.
//!
//! The columns are fixed (a chart script reads them): see [`HEADER`] and the loadgen README.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::client::{Failure, Phases};

/// The first line of the file, exactly.
pub const HEADER: &str = "client,kind,request,reused,scheduled_us,connect_us,connected_us,\
                          sent_us,first_byte_us,done_us,status,failure";

/// At most this many rows in one trace.
pub const CAP: u64 = 2_000_000;
/// Rows a client takes from the budget at once.
const CHUNK: u64 = 1024;

/// The time base of a run: every time in a record is microseconds since `base`, taken before
/// anything else, so idle connections opened before the start line have times too.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base: Instant,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            base: Instant::now(),
        }
    }

    pub fn at(&self, t: Instant) -> At {
        At(t.saturating_duration_since(self.base).as_micros() as u64)
    }

    pub fn maybe(&self, t: Option<Instant>) -> At {
        t.map_or(At::NONE, |t| self.at(t))
    }
}

/// Microseconds since the run's [`Clock`] base, or [`At::NONE`]: eight bytes, not sixteen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At(u64);

impl At {
    pub const NONE: At = At(u64::MAX);
    /// The clock's base itself.
    pub const ZERO: At = At(0);

    /// Signed microseconds since `start` (also an [`At`]), or `None`.
    fn since(self, start: At) -> Option<i64> {
        (self != At::NONE).then(|| self.0 as i64 - start.0 as i64)
    }
}

/// Which kind of client a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Healthy,
    Idle,
    Trickle,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Healthy => "healthy",
            Kind::Idle => "idle",
            Kind::Trickle => "trickle",
        }
    }
}

/// How a row ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// A 2xx response; for an idle connection, held until the run ended.
    Ok,
    Failed(Failure),
    /// Still waiting when the run ended.
    Unfinished,
    /// An idle or trickling connection the server closed.
    Cut,
}

impl End {
    /// The `failure` column.
    pub fn name(self) -> &'static str {
        match self {
            End::Ok => "",
            End::Failed(failure) => failure.name(),
            End::Unfinished => "unfinished",
            End::Cut => "cut",
        }
    }
}

/// One row. Times are [`At`]s, converted to the start line only when the file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub client: u32,
    pub kind: Kind,
    pub request: u32,
    pub reused: bool,
    pub scheduled: At,
    pub connect: At,
    pub connected: At,
    pub sent: At,
    pub first_byte: At,
    pub done: At,
    pub status: Option<u16>,
    pub end: End,
}

impl Record {
    /// A row with nothing reached yet.
    pub fn new(client: usize, kind: Kind, request: u32) -> Record {
        Record {
            client: client as u32,
            kind,
            request,
            reused: false,
            scheduled: At::NONE,
            connect: At::NONE,
            connected: At::NONE,
            sent: At::NONE,
            first_byte: At::NONE,
            done: At::NONE,
            status: None,
            end: End::Ok,
        }
    }

    /// Fills the steps a [`crate::client::Client`] stamped.
    pub fn set_phases(&mut self, clock: &Clock, phases: &Phases) {
        self.reused = phases.reused;
        self.connect = clock.maybe(phases.connect);
        self.connected = clock.maybe(phases.connected);
        self.sent = clock.maybe(phases.sent);
        self.first_byte = clock.maybe(phases.first_byte);
        self.status = phases.status;
    }

    /// The CSV line, without its newline; times relative to `start`.
    pub fn line(&self, start: At) -> String {
        let time = |at: At| at.since(start).map_or(String::new(), |t| t.to_string());
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            self.client,
            self.kind.name(),
            self.request,
            u8::from(self.reused),
            time(self.scheduled),
            time(self.connect),
            time(self.connected),
            time(self.sent),
            time(self.first_byte),
            time(self.done),
            self.status.map_or(String::new(), |s| s.to_string()),
            self.end.name(),
        )
    }
}

/// The rows left under [`CAP`], shared by every client of a run.
#[derive(Debug)]
pub struct Budget {
    taken: AtomicU64,
    cap: u64,
}

impl Budget {
    pub fn new(cap: u64) -> Budget {
        Budget {
            taken: AtomicU64::new(0),
            cap,
        }
    }

    /// Up to `n` more rows; fewer, or none, near the cap.
    fn reserve(&self, n: u64) -> u64 {
        let before = self.taken.fetch_add(n, Ordering::Relaxed);
        self.cap.saturating_sub(before).min(n)
    }
}

/// One client's rows. Does nothing when there is no `--trace`.
#[derive(Debug)]
pub struct Recorder<'a> {
    budget: Option<&'a Budget>,
    left: u64,
    pub rows: Vec<Record>,
    /// Rows the cap kept out.
    pub dropped: u64,
}

impl<'a> Recorder<'a> {
    pub fn new(budget: Option<&'a Budget>) -> Recorder<'a> {
        Recorder {
            budget,
            left: 0,
            rows: Vec::new(),
            dropped: 0,
        }
    }

    pub fn push(&mut self, record: Record) {
        let Some(budget) = self.budget else {
            return;
        };
        if self.left == 0 {
            self.left = budget.reserve(CHUNK);
            // Room for the whole chunk at once: no reallocation for the next CHUNK requests.
            self.rows.reserve(self.left as usize);
        }
        if self.left == 0 {
            self.dropped += 1;
            return;
        }
        self.left -= 1;
        self.rows.push(record);
    }
}

/// Writes the header and every row, times relative to `start`; returns the rows written.
pub fn write<'r>(
    out: &mut impl Write,
    start: At,
    rows: impl IntoIterator<Item = &'r Record>,
) -> io::Result<u64> {
    writeln!(out, "{HEADER}")?;
    let mut written = 0;
    for row in rows {
        writeln!(out, "{}", row.line(start))?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The header is the one the chart script reads, column for column.
    #[test]
    fn the_header_is_exactly_the_documented_one() {
        assert_eq!(
            HEADER,
            "client,kind,request,reused,scheduled_us,connect_us,connected_us,sent_us,\
             first_byte_us,done_us,status,failure"
        );
        assert_eq!(HEADER.split(',').count(), 12);
    }

    /// Times are microseconds since the start line; steps not reached are empty cells; an
    /// idle connection opened before the start line has negative times.
    #[test]
    fn rows_are_written_relative_to_the_start_line() {
        let clock = Clock::new();
        let t = |us| clock.at(clock.base + Duration::from_micros(us));
        let start = t(1_000);
        let mut ok = Record::new(2, Kind::Healthy, 7);
        (ok.connect, ok.connected, ok.sent) = (t(1_010), t(1_050), t(1_051));
        (ok.first_byte, ok.done, ok.status) = (t(1_300), t(1_301), Some(200));
        let mut reused = Record::new(0, Kind::Healthy, 1);
        (reused.reused, reused.scheduled, reused.sent) = (true, t(2_000), t(2_004));
        (reused.done, reused.end) = (t(12_000), End::Failed(Failure::Timeout));
        let mut idle = Record::new(3, Kind::Idle, 0);
        (idle.connect, idle.connected, idle.first_byte) = (t(200), t(260), t(5_000));
        (idle.done, idle.status, idle.end) = (t(5_001), Some(408), End::Cut);
        let mut out = Vec::new();
        assert_eq!(write(&mut out, start, [&ok, &reused, &idle]).unwrap(), 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "{HEADER}\n\
                 2,healthy,7,0,,10,50,51,300,301,200,\n\
                 0,healthy,1,1,1000,,,1004,,11000,,timeout\n\
                 3,idle,0,0,,-800,-740,,4000,4001,408,cut\n"
            )
        );
    }

    /// A record is 64 bytes, so the cap bounds the trace at 128 MiB.
    #[test]
    fn a_record_is_64_bytes() {
        assert_eq!(std::mem::size_of::<Record>(), 64);
    }

    /// The cap is shared: two recorders together never keep more than it, and what they
    /// could not keep is counted.
    #[test]
    fn the_cap_bounds_all_recorders_together() {
        let budget = Budget::new(CHUNK + 10);
        let (mut a, mut b) = (Recorder::new(Some(&budget)), Recorder::new(Some(&budget)));
        for i in 0..2000 {
            a.push(Record::new(0, Kind::Healthy, i));
            b.push(Record::new(1, Kind::Healthy, i));
        }
        assert_eq!(a.rows.len() + b.rows.len(), (CHUNK + 10) as usize);
        assert_eq!(a.dropped + b.dropped, 4000 - CHUNK - 10);
        let mut off = Recorder::new(None);
        off.push(Record::new(0, Kind::Healthy, 0));
        assert_eq!((off.rows.len(), off.dropped), (0, 0));
    }
}
