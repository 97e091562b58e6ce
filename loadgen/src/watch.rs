//! The run over time: one thread samples it every 100 ms, for `--series`, for the live view
//! and for the plain progress line.
//!
//! A sample puts together what can be seen from outside the server, so that it means the
//! same for every stage: the accept queue from the kernel ([`crate::proc_net`]), the
//! clients' own states ([`crate::board`]), the server's threads and memory from
//! `/proc/PID/status`. The server's own `in_flight` and `connections_open` (and a kitchen's
//! orders from stage 08 on, each loop's figures in stages 09 and 10) come from its `GET /stats`, asked by a second thread with a 200 ms
//! timeout, so that a stage that cannot answer in time (stage 01, busy with one client) leaves
//! those cells empty instead of holding up the samples.
//!
//! Both threads are started before the client threads step aside (`SCHED_BATCH`), so their
//! ticks stay on time; both stop when the board says the run is over.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::board::Board;
use crate::client::{self, Target};
use crate::live::{self, Screen, View};
use crate::proc_status;
use crate::response::json_u64;

/// One row of `--series`, exactly.
pub const HEADER: &str =
    "t_ms,outside,inside,done,failed,threads,rss_kb,in_flight,connections_open";

/// The sampling period.
pub const TICK: Duration = Duration::from_millis(100);
/// The live view is redrawn on the first tick after each quarter of a second.
const DRAW_EVERY: Duration = Duration::from_millis(250);
/// Without a live view, a run longer than this prints a progress line this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long `GET /stats` may take during the run before its cells are left empty.
pub const STATS_TIMEOUT: Duration = Duration::from_millis(200);
/// After `/stats` did not answer in time, the pause before asking again.
const STATS_BACKOFF: Duration = Duration::from_secs(1);
/// A bound on every loop here, whatever the board says.
const LONGEST: Duration = Duration::from_secs(2 * 3600 + 600);

/// What the run looked like at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Since the start line; `None` before it.
    pub elapsed: Option<Duration>,
    /// The accept queue.
    pub outside: Option<u64>,
    /// Healthy clients connected and waiting for their answer, less those `outside`.
    pub inside: Option<u64>,
    /// Healthy clients still in `connect()`.
    pub connecting: u64,
    /// Healthy requests answered with 2xx so far (`done` in the series).
    pub ok: u64,
    pub failed: u64,
    pub threads: Option<u64>,
    pub rss_kb: Option<u64>,
    pub in_flight: Option<u64>,
    pub connections_open: Option<u64>,
    /// The server's kitchen (stage 08), when its `/stats` has one; the live view only.
    pub kitchen: Option<KitchenNow>,
    /// Each event loop's figures (stages 09 and 10), in the loops' order; empty for a server
    /// with one loop or none. The live view only.
    pub loops: Vec<LoopNow>,
    /// Idle, trickling and held connections opened so far.
    pub side_opened: u64,
}

/// A kitchen's orders at one moment, from `/stats`: `kitchen_cooking`, `kitchen_queued`,
/// and `kitchen_full`, the requests turned away so far because its queue was full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KitchenNow {
    pub cooking: u64,
    pub queued: u64,
    pub full: u64,
}

/// One event loop's figures at one moment, from `/stats`: `loop_N_accepted`,
/// `loop_N_connections_open` and `loop_N_requests`, counted since the server started. They
/// show how the kernel spread the clients over the loops (`SO_REUSEPORT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopNow {
    pub accepted: u64,
    pub connections_open: u64,
    pub requests: u64,
}

/// A bound on the loops read from one answer: the stages allow `--loops` up to 1024.
const MOST_LOOPS: usize = 1024;

/// What one answer to `GET /stats` said, of what the samples show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Answer {
    in_flight: Option<u64>,
    connections_open: Option<u64>,
    kitchen: Option<KitchenNow>,
    loops: Vec<LoopNow>,
}

impl Answer {
    fn parse(body: &str) -> Answer {
        let cooking = json_u64(body, "kitchen_cooking");
        let queued = json_u64(body, "kitchen_queued");
        let kitchen = match (cooking, queued) {
            (Some(cooking), Some(queued)) => Some(KitchenNow {
                cooking,
                queued,
                full: json_u64(body, "kitchen_full").unwrap_or(0),
            }),
            _ => None,
        };
        // loop_0_..., loop_1_...: as many as the server lists, in order.
        let loops = (0..MOST_LOOPS)
            .map_while(|i| {
                Some(LoopNow {
                    accepted: json_u64(body, &format!("loop_{i}_accepted"))?,
                    connections_open: json_u64(body, &format!("loop_{i}_connections_open"))?,
                    requests: json_u64(body, &format!("loop_{i}_requests"))?,
                })
            })
            .collect();
        Answer {
            in_flight: json_u64(body, "in_flight"),
            connections_open: json_u64(body, "connections_open"),
            kitchen,
            loops,
        }
    }

    /// Puts what the answer says into a sample.
    fn fill(self, sample: &mut Sample) {
        (sample.in_flight, sample.connections_open) = (self.in_flight, self.connections_open);
        sample.kitchen = self.kitchen;
        sample.loops = self.loops;
    }
}

/// A sample and the moment it was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub at: Instant,
    pub sample: Sample,
}

impl Row {
    /// The CSV line, without its newline; `t_ms` is signed milliseconds since `start`.
    pub fn line(&self, start: Instant) -> String {
        let t_ms = match self.at.checked_duration_since(start) {
            Some(after) => after.as_millis() as i64,
            None => -(start.duration_since(self.at).as_millis() as i64),
        };
        let s = &self.sample;
        let cell = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
        format!(
            "{t_ms},{},{},{},{},{},{},{},{}",
            cell(s.outside),
            cell(s.inside),
            s.ok,
            s.failed,
            cell(s.threads),
            cell(s.rss_kb),
            cell(s.in_flight),
            cell(s.connections_open),
        )
    }
}

/// What the watcher does with its samples.
#[derive(Clone, Copy, Debug)]
pub struct Watch<'a> {
    pub board: &'a Board,
    /// The server's listening address, to find its accept queue.
    pub target: SocketAddr,
    pub pid: Option<u32>,
    /// Keep every sample for `--series`.
    pub series: bool,
    /// Draw the live view on stderr (a terminal).
    pub live: bool,
    /// Without the live view: print a progress line every 5 s of a longer run.
    pub progress: bool,
    pub view: View,
}

impl Watch<'_> {
    /// Whether the kernel and `/proc` need reading at all (not for the progress line alone).
    fn looks_inside(&self) -> bool {
        self.series || self.live
    }

    /// Whether there is any reason for the thread to run.
    pub fn wanted(&self) -> bool {
        self.series || self.live || self.progress
    }
}

/// The latest answer of the `/stats` thread: `None` until one came, or when the last
/// attempt got no answer in time.
#[derive(Debug, Default)]
pub struct Latest {
    values: Mutex<Option<Answer>>,
    /// `GET /stats` requests sent, which the server counts among its connections.
    pub polls: AtomicU64,
}

impl Latest {
    fn set(&self, values: Option<Answer>) {
        *self.values.lock().unwrap_or_else(PoisonError::into_inner) = values;
    }

    fn get(&self) -> Option<Answer> {
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Asks the server for `/stats` every `every` until the run is over, keeping the latest
/// `in_flight`, `connections_open`, kitchen and loops in `latest`.
pub fn poll_stats(board: &Board, target: &Target<'_>, every: Duration, latest: &Latest) {
    let give_up = Instant::now() + LONGEST;
    let mut next = Instant::now();
    while !board.is_over() && Instant::now() < give_up {
        latest.polls.fetch_add(1, Ordering::Relaxed);
        let answer = client::fetch_text(target, STATS_TIMEOUT).map(|body| Answer::parse(&body));
        // After no answer, wait a second: a stage too busy to answer (01 with a queue) would
        // otherwise get a connection every period that it must still accept and answer
        // after we gave up, each one a place in its queue.
        let pause = if answer.is_some() {
            every
        } else {
            STATS_BACKOFF
        };
        latest.set(answer);
        next = (next + pause).max(Instant::now());
        sleep_until(next, board);
    }
}

/// Samples until the run is over; returns the samples kept for `--series`.
pub fn watch(watch: &Watch<'_>, latest: &Latest) -> Vec<Row> {
    let board = watch.board;
    let began = Instant::now();
    let give_up = began + LONGEST;
    let mut rows = Vec::new();
    let mut screen = Screen::default();
    let mut next_draw = began;
    let mut next_progress = PROGRESS_EVERY;
    let mut next = began + TICK;
    let mut aligned = false;
    loop {
        sleep_until(next, board);
        let now = Instant::now();
        if board.is_over() || now >= give_up {
            break;
        }
        let start = board.start();
        // Once the start line is crossed, ticks fall on its multiples of 100 ms.
        next = match start {
            Some(start) if !aligned => {
                aligned = true;
                let ticks = now.duration_since(start).as_millis() / TICK.as_millis() + 1;
                let tick = start + TICK * ticks as u32;
                // Not two samples a millisecond apart where the two rhythms meet.
                if tick - now < TICK / 2 {
                    tick + TICK
                } else {
                    tick
                }
            }
            _ => next + TICK,
        };
        let sample = take_sample(watch, latest, start, now);
        if watch.live && now >= next_draw {
            next_draw = now + DRAW_EVERY - TICK / 2;
            let frame = screen.frame(&live::render(&sample, &watch.view));
            let _ = std::io::stderr().write_all(frame.as_bytes());
        }
        if let (true, Some(elapsed)) = (watch.progress, sample.elapsed) {
            let longer = watch.view.duration.is_none_or(|d| d > next_progress);
            if elapsed >= next_progress && longer {
                next_progress += PROGRESS_EVERY;
                let line = live::progress_line(&sample, &watch.view);
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
        if watch.series {
            rows.push(Row { at: now, sample });
        }
    }
    // Nothing half-drawn is left for the report to be printed over.
    let _ = std::io::stderr().write_all(screen.clear().as_bytes());
    rows
}

fn take_sample(watch: &Watch<'_>, latest: &Latest, start: Option<Instant>, now: Instant) -> Sample {
    let counts = watch.board.counts();
    let mut sample = Sample {
        elapsed: start.map(|start| now.saturating_duration_since(start)),
        connecting: counts.connecting,
        ok: counts.ok,
        failed: counts.failed,
        side_opened: watch.board.side_opened.load(Ordering::Relaxed),
        ..Sample::default()
    };
    if watch.looks_inside() {
        sample.outside = crate::proc_net::accept_queue(watch.target);
        sample.inside = sample.outside.map(|o| counts.waiting.saturating_sub(o));
        if let Some(status) = watch.pid.and_then(proc_status::read) {
            (sample.threads, sample.rss_kb) = (status.threads, status.rss_kb);
        }
        if let Some(answer) = latest.get() {
            answer.fill(&mut sample);
        }
    }
    sample
}

/// Sleeps until `when`, in slices, so that the end of the run is noticed within one.
pub fn sleep_until(when: Instant, board: &Board) {
    while !board.is_over() {
        let Some(left) = when.checked_duration_since(Instant::now()) else {
            return;
        };
        thread::sleep(left.min(TICK / 2));
    }
}

/// Writes the series: the header, then one line per sample, times since `start`.
pub fn write(out: &mut impl Write, start: Instant, rows: &[Row]) -> std::io::Result<()> {
    writeln!(out, "{HEADER}")?;
    for row in rows {
        writeln!(out, "{}", row.line(start))?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header is the one the chart script reads, and a row fills it in order, with
    /// empty cells for what is not known and negative times before the start line.
    #[test]
    fn series_rows_follow_the_header() {
        assert_eq!(
            HEADER,
            "t_ms,outside,inside,done,failed,threads,rss_kb,in_flight,connections_open"
        );
        let start = Instant::now() + Duration::from_secs(1);
        let known = Row {
            at: start + Duration::from_millis(300),
            sample: Sample {
                outside: Some(112),
                inside: Some(4),
                ok: 1234,
                failed: 2,
                threads: Some(6),
                rss_kb: Some(2400),
                in_flight: Some(4),
                connections_open: Some(116),
                ..Sample::default()
            },
        };
        let early = Row {
            at: start - Duration::from_millis(250),
            sample: Sample::default(),
        };
        let mut out = Vec::new();
        write(&mut out, start, &[early, known]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{HEADER}\n-250,,,0,0,,,,\n300,112,4,1234,2,6,2400,4,116\n")
        );
    }

    /// A stage 08 `/stats` gives the kitchen's orders; an earlier stage's gives no kitchen.
    #[test]
    fn a_kitchen_is_read_from_stats_when_there_is_one() {
        let stage08 = "{\"stage\":\"08_cpu_pool\",\"connections_open\":21,\"in_flight\":20,\
                       \"kitchen_queued\":18,\"peak_kitchen_queued\":19,\"kitchen_cooking\":2,\
                       \"peak_kitchen_cooking\":2,\"kitchen_full\":3}";
        assert_eq!(
            Answer::parse(stage08),
            Answer {
                in_flight: Some(20),
                connections_open: Some(21),
                kitchen: Some(KitchenNow {
                    cooking: 2,
                    queued: 18,
                    full: 3
                }),
                loops: Vec::new(),
            }
        );
        let stage07 = "{\"stage\":\"07_keep_alive\",\"connections_open\":3,\"in_flight\":1}";
        assert_eq!(Answer::parse(stage07).kitchen, None);
    }

    /// A stage 09 `/stats` (two loops, a kitchen) gives each loop's figures, in order, and the
    /// live view draws a line for each, below the kitchen's; stage 11's, one runtime shared by
    /// its workers, gives none, and its frame is the frame of every stage before 09.
    #[test]
    fn each_loop_is_read_from_stats_and_drawn() {
        let stage09 = "{\"stage\":\"09_loop_per_core\",\"uptime_ms\":5120,\"accepted\":2412,\
                       \"served\":96390,\"connections_open\":51,\"peak_connections_open\":52,\
                       \"in_flight\":3,\"peak_in_flight\":9,\"errors\":0,\"abandoned\":0,\
                       \"timeouts\":0,\"requests\":96391,\"keep_alive_reuses\":93979,\
                       \"idle_closed_for_room\":0,\"kitchen_queued\":0,\
                       \"peak_kitchen_queued\":0,\"kitchen_cooking\":0,\
                       \"peak_kitchen_cooking\":0,\"kitchen_full\":0,\
                       \"loop_0_accepted\":1190,\"loop_0_connections_open\":24,\
                       \"loop_0_requests\":50112,\"loop_0_accept_misses\":0,\
                       \"loop_1_accepted\":1222,\"loop_1_connections_open\":27,\
                       \"loop_1_requests\":46279,\"loop_1_accept_misses\":0}\n";
        let answer = Answer::parse(stage09);
        assert_eq!(
            answer.loops,
            [
                LoopNow {
                    accepted: 1_190,
                    connections_open: 24,
                    requests: 50_112
                },
                LoopNow {
                    accepted: 1_222,
                    connections_open: 27,
                    requests: 46_279
                },
            ]
        );
        let mut sample = Sample {
            elapsed: Some(Duration::from_millis(3_200)),
            outside: Some(0),
            inside: Some(3),
            ok: 96_300,
            ..Sample::default()
        };
        answer.fill(&mut sample);
        let view = View {
            duration: Some(Duration::from_secs(8)),
            requests: None,
            pid: false,
            stats: true,
            side_planned: 0,
        };
        assert_eq!(
            live::render(&sample, &view)[3..],
            [
                "  server            in flight 3 (/stats)   threads, RSS: give --pid",
                "  kitchen           0 cooking   0 waiting   0 turned away",
                "  loop 0            24 open   1 190 accepted   50 112 requests (52%)",
                "  loop 1            27 open   1 222 accepted   46 279 requests (48%)",
                "  served 96 300   failed 0   3.2 s of 8.0 s",
            ]
        );
        let stage11 = "{\"stage\":\"11_tokio\",\"connections_open\":3,\"in_flight\":1,\
                       \"kitchen_queued\":0,\"kitchen_cooking\":0,\"kitchen_full\":0}";
        let mut sample = Sample::default();
        Answer::parse(stage11).fill(&mut sample);
        assert!(sample.loops.is_empty());
        assert_eq!(live::render(&sample, &view).len(), live::LINES + 1);
    }

    /// The sampler stops by itself when the run is over, and samples every 100 ms until
    /// then; its /stats thread too.
    #[test]
    fn the_watcher_samples_until_the_run_is_over() {
        let board = Board::new(2);
        let view = View {
            duration: None,
            requests: None,
            pid: false,
            stats: false,
            side_planned: 0,
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let watch = Watch {
            board: &board,
            target: listener.local_addr().unwrap(),
            pid: Some(std::process::id()),
            series: true,
            live: false,
            progress: false,
            view,
        };
        let latest = Latest::default();
        board.set_start(Instant::now());
        let rows = thread::scope(|scope| {
            let watcher = scope.spawn(|| super::watch(&watch, &latest));
            thread::sleep(Duration::from_millis(550));
            board.set_over();
            watcher.join().unwrap()
        });
        assert!((1..=6).contains(&rows.len()), "{} rows", rows.len());
        for row in &rows {
            assert!(row.sample.threads.unwrap() >= 1);
            assert_eq!(row.sample.in_flight, None);
            if cfg!(target_os = "linux") {
                assert_eq!((row.sample.outside, row.sample.inside), (Some(0), Some(0)));
            }
        }
    }
}
