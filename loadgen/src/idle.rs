//! The connections that are not measured: idle ones, which connect and say nothing, and
//! trickling ones, which send a valid request one byte at a time.
//!
//! Both are what a thread-per-connection server cannot defend against without deadlines:
//! each holds a thread (a worker of stage 04) while it takes nothing but time. Stage 05's
//! header deadline cuts them, and with `--idle-reconnect` (always in `--scenario siege`)
//! they come straight back, so that even 05 spends its workers on them one deadline after
//! another, while an event loop (stage 06) keeps them all at the price of a few bytes each.
//!
//! Each is a thread of its own, as a healthy client is; there are only a few of them (8 by
//! default). The ten thousand of `--scenario held` are held differently (`crate::held`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{self, Failure};
use crate::response;
use crate::run::{Shared, LONGEST_WAIT, REFUSED_PAUSE, RESPONSE_BUFFER};
use crate::trace::{End, Kind, Record, Recorder};

/// How often an idle or trickling connection looks up to see whether the run is over.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// What happened to some idle or trickling connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SideTally {
    /// Connections opened (more than there are connections when they reconnect).
    pub connects: u64,
    /// Closed by the server, usually after answering 408.
    pub cut: u64,
    /// Trickled requests that were answered in full (a server without deadlines).
    pub done: u64,
}

impl SideTally {
    pub fn add(&mut self, other: SideTally) {
        self.connects += other.connects;
        self.cut += other.cut;
        self.done += other.done;
    }
}

/// How long a side connection may go on: the run, then one request's timeout, so that one
/// that never notices the end still stops.
fn give_up(shared: &Shared<'_>) -> Instant {
    let plan = shared.plan;
    Instant::now() + plan.duration.unwrap_or(LONGEST_WAIT) + plan.timeout
}

/// Connects once for a side connection, stamps the row and counts the connect; `None` (and
/// the row finished) if the connect failed. After a connection's first try, whatever came
/// of it, the healthy clients may start: they wait for every side connection's.
fn connect(
    shared: &Shared<'_>,
    record: &mut Record,
    until: Instant,
    tally: &mut SideTally,
) -> Option<TcpStream> {
    let target = &shared.plan.target;
    record.connect = shared.clock.at(Instant::now());
    let result = client::connect(target.addr, target.connect_timeout, until);
    if record.request == 0 {
        shared.side_ready.fetch_add(1, Ordering::Release);
    }
    match result {
        Ok(stream) => {
            record.connected = shared.clock.at(Instant::now());
            shared.board.side_opened.fetch_add(1, Ordering::Relaxed);
            tally.connects += 1;
            Some(stream)
        }
        Err(failed) => {
            record.done = shared.clock.at(Instant::now());
            record.end = End::Failed(failed.kind);
            None
        }
    }
}

/// One idle connection: connect, send nothing, and hold on until the run is over. With
/// `--idle-reconnect`, connect again as soon as the server closes it. One row per connect.
pub fn idle<'s>(shared: &'s Shared<'s>, index: usize) -> (SideTally, Recorder<'s>) {
    let mut tally = SideTally::default();
    let mut recorder = Recorder::new(shared.budget);
    let until = give_up(shared);
    for connect_number in 0..u32::MAX {
        if shared.over() || Instant::now() >= until {
            break;
        }
        let mut record = Record::new(index, Kind::Idle, connect_number);
        let Some(stream) = connect(shared, &mut record, until, &mut tally) else {
            recorder.push(record);
            thread::sleep(REFUSED_PAUSE);
            continue;
        };
        let cut = hold(shared, &stream, until, &mut record);
        record.done = shared.clock.at(Instant::now());
        recorder.push(record);
        if !cut {
            break;
        }
        tally.cut += 1;
        if !shared.plan.idle_reconnect {
            break;
        }
    }
    (tally, recorder)
}

/// Keeps an idle connection open. Returns `true` if the server closed it (or answered, which
/// for a request never sent can only be a 408), `false` if the run ended first.
fn hold(shared: &Shared<'_>, stream: &TcpStream, until: Instant, record: &mut Record) -> bool {
    if stream.set_read_timeout(Some(IDLE_POLL)).is_err() {
        record.end = End::Cut;
        return true;
    }
    let mut scratch = [0u8; 512];
    while !shared.over() && Instant::now() < until {
        match wait_for(stream, &mut scratch, record, shared) {
            Heard::Nothing | Heard::Bytes => continue,
            Heard::Closed => {
                record.end = End::Cut;
                return true;
            }
        }
    }
    false
}

/// What one short read on a side connection heard.
enum Heard {
    /// Nothing within the poll interval: still open.
    Nothing,
    /// Some bytes (the server's answer, usually a 408).
    Bytes,
    /// The end of the connection: closed or reset by the server.
    Closed,
}

/// One read of at most [`IDLE_POLL`]; stamps the first byte and the status in `record`.
fn wait_for(
    stream: &TcpStream,
    scratch: &mut [u8],
    record: &mut Record,
    shared: &Shared<'_>,
) -> Heard {
    let mut stream = stream;
    match stream.read(scratch) {
        Err(e) if Failure::of(&e) == Failure::Timeout => Heard::Nothing,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Heard::Nothing,
        Ok(0) | Err(_) => Heard::Closed,
        Ok(n) => {
            if record.first_byte == crate::trace::At::NONE {
                record.first_byte = shared.clock.at(Instant::now());
                record.status = response::status_of(&scratch[..n]);
            }
            Heard::Bytes
        }
    }
}

/// One trickling connection: sends the request a byte every `--trickle-ms`, then reads the
/// answer like a healthy client would, and starts again; cut, it comes back at once (in
/// `siege`, always). One row per request attempt.
pub fn trickle<'s>(shared: &'s Shared<'s>, index: usize) -> (SideTally, Recorder<'s>) {
    let mut tally = SideTally::default();
    let mut recorder = Recorder::new(shared.budget);
    let until = give_up(shared);
    let mut buf = vec![0u8; RESPONSE_BUFFER];
    for attempt in 0..u32::MAX {
        if shared.over() || Instant::now() >= until {
            break;
        }
        let mut record = Record::new(index, Kind::Trickle, attempt);
        let Some(stream) = connect(shared, &mut record, until, &mut tally) else {
            recorder.push(record);
            thread::sleep(REFUSED_PAUSE);
            continue;
        };
        let end = drip(shared, &stream, until, &mut record, &mut buf);
        (record.done, record.end) = (shared.clock.at(Instant::now()), end);
        recorder.push(record);
        match end {
            End::Ok => tally.done += 1,
            End::Cut => {
                tally.cut += 1;
                if !shared.plan.idle_reconnect {
                    break;
                }
            }
            End::Unfinished => break,
            End::Failed(_) => {}
        }
    }
    (tally, recorder)
}

/// Sends the request byte by byte, listening between bytes for the server's answer or
/// close; then reads the response. Says how the attempt ended.
fn drip(
    shared: &Shared<'_>,
    stream: &TcpStream,
    until: Instant,
    record: &mut Record,
    buf: &mut [u8],
) -> End {
    let plan = shared.plan;
    if stream.set_read_timeout(Some(IDLE_POLL)).is_err() {
        return End::Failed(Failure::Other);
    }
    record.sent = shared.clock.at(Instant::now());
    let mut scratch = [0u8; 512];
    for (i, byte) in plan.target.request.iter().enumerate() {
        let mut writer = stream;
        if writer.write_all(std::slice::from_ref(byte)).is_err() {
            return End::Cut;
        }
        if i + 1 == plan.target.request.len() {
            break; // the request is whole: no pause, the answer is next
        }
        // The pause between bytes is spent listening, in short reads, so that a cut (or the
        // end of the run) is seen within one poll interval.
        let next_byte = Instant::now() + plan.trickle_every;
        while Instant::now() < next_byte {
            if shared.over() || Instant::now() >= until {
                return End::Unfinished;
            }
            let left = next_byte.saturating_duration_since(Instant::now());
            if stream
                .set_read_timeout(Some(left.clamp(Duration::from_micros(1), IDLE_POLL)))
                .is_err()
            {
                return End::Failed(Failure::Other);
            }
            match wait_for(stream, &mut scratch, record, shared) {
                Heard::Nothing => {}
                // An answer before the request is whole is a 408 on its way to a close.
                Heard::Bytes => {}
                Heard::Closed => return End::Cut,
            }
        }
    }
    // The whole request is out: the answer is read like a healthy client's, within
    // --timeout-ms and the run.
    let deadline = [
        Some(until),
        shared.run_end(),
        Some(Instant::now() + plan.timeout),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(until);
    let mut first_byte = None;
    let result = client::read_response(stream, deadline, buf, &mut first_byte);
    if record.first_byte == crate::trace::At::NONE {
        record.first_byte = shared.clock.maybe(first_byte);
    }
    match result {
        Ok((head, _)) => {
            record.status = Some(head.status);
            if (200..300).contains(&head.status) {
                End::Ok
            } else {
                End::Failed(Failure::BadStatus)
            }
        }
        Err(_) if shared.over() || shared.run_end().is_some_and(|end| Instant::now() >= end) => {
            End::Unfinished
        }
        Err(failed) if failed.kind == Failure::Reset => End::Cut,
        Err(failed) => End::Failed(failed.kind),
    }
}
