//! The live view: a small picture of the cafe, redrawn on stderr while the run goes on.
//!
//! ```text
//!   outside the door  ●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●●● 112
//!   inside            ○○○○ 4
//!                     ● ○ one person each
//!   server            in flight 4 (/stats)   threads 6   RSS 2.4 MiB
//!   served 1 234   failed 0   3.2 s of 8.0 s
//! ```
//!
//! A server with a kitchen (stage 08, whose `/stats` counts the orders it computes off its
//! event loop) gets one more line, below the server's: orders being computed, orders waiting
//! for a free thread, and requests turned away (503) because too many were waiting.
//!
//! ```text
//!   kitchen           2 cooking   18 waiting   0 turned away
//! ```
//!
//! A server of several event loops (stages 09 and 10, whose `/stats` has `loop_N_accepted`,
//! `loop_N_connections_open` and `loop_N_requests`) gets a line per loop below those: the
//! connections it holds now, those it accepted and the requests it read since the server
//! started, and its share of all the loops' requests. The kernel chose which loop each
//! client went to (`SO_REUSEPORT`), and a kept connection stays on its loop, so the shares
//! show how evenly it spread them. Past eight loops, the eighth line sums the rest.
//!
//! ```text
//!   loop 0            24 open   1 190 accepted   50 112 requests (52%)
//!   loop 1            27 open   1 222 accepted   46 279 requests (48%)
//! ```
//!
//! *Outside the door* is the listening socket's accept queue: connections the kernel has
//! completed and the server has not accepted yet. *Inside* are the healthy clients that are
//! connected and still waiting for their answer, less the ones still outside. Both come from
//! outside the server (the kernel, and the clients' own [`crate::board`]), so the picture is
//! the same for stage 01, which is too busy to answer `/stats`, as for the others.
//!
//! Everything here is a pure function of one [`Sample`], so the tests can check the exact
//! lines; [`Screen`] turns them into plain ANSI cursor movements (up, clear line), no
//! terminal library. When stderr is not a terminal, [`progress_line`] is printed instead
//! every 5 seconds of a longer run.

use std::time::Duration;

use crate::watch::{LoopNow, Sample};

/// Lines in a frame; one more when the server has a kitchen, and one per loop (up to
/// [`LOOP_LINES`]). [`Screen`] wipes what a shorter frame leaves of a longer one.
pub const LINES: usize = 5;
/// The most lines the loops get, so that a frame fits a terminal whatever `--loops` is.
pub const LOOP_LINES: usize = 8;
/// The widest line; a loop's share is left out of a line that would be wider.
const WIDTH: usize = 80;
/// Glyphs in the longest bar: with the labels and the count, a line fits 80 columns.
const BAR_WIDTH: u64 = 48;

/// What the view needs to know about the run besides the sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    /// `--pid` was given: threads and RSS are known, or the server is gone.
    pub pid: bool,
    /// `/stats` is asked during the run (not with `--no-server-stats`).
    pub stats: bool,
    /// Idle, trickling and held connections to open before the start line.
    pub side_planned: u64,
}

/// The frame for one sample: [`LINES`] lines, one more for a kitchen, one per loop, none
/// wider than 80 columns.
pub fn render(sample: &Sample, view: &View) -> Vec<String> {
    let scale = scale_for(sample.outside.unwrap_or(0).max(sample.inside.unwrap_or(0)));
    let bar = |glyph: &str, count: Option<u64>, unknown: &str| match count {
        None => format!("? ({unknown})"),
        Some(0) => "0".to_string(),
        Some(n) => format!(
            "{} {}",
            glyph.repeat(n.div_ceil(scale) as usize),
            grouped(n)
        ),
    };
    let mut legend = if scale == 1 {
        "● ○ one person each".to_string()
    } else {
        format!("● ○ {} people each", grouped(scale))
    };
    if sample.connecting > 0 {
        // Clients whose handshake the server's kernel has not completed: not even in the
        // queue yet, because it is full (a SYN dropped is retried a second later).
        legend += &format!(
            "; {} knocking (connect() pending)",
            grouped(sample.connecting)
        );
    }
    let in_flight = match (view.stats, sample.in_flight) {
        (false, _) => "in flight n/a".to_string(),
        (true, Some(n)) => format!("in flight {} (/stats)", grouped(n)),
        (true, None) => "in flight ? (/stats late)".to_string(),
    };
    let process = match (view.pid, sample.threads, sample.rss_kb) {
        (false, _, _) => "threads, RSS: give --pid".to_string(),
        (true, threads, rss) => format!(
            "threads {}   RSS {}",
            threads.map_or("?".into(), grouped),
            rss.map_or("?".into(), |kb| format!("{:.1} MiB", kb as f64 / 1024.0))
        ),
    };
    let last = match sample.elapsed {
        None => format!(
            "  opening {} of {} connections before the start line",
            grouped(sample.side_opened),
            grouped(view.side_planned)
        ),
        Some(elapsed) => format!(
            "  served {}   failed {}{}   {}",
            grouped(sample.ok),
            grouped(sample.failed),
            view.requests
                .map_or(String::new(), |n| format!("   of {} requests", grouped(n))),
            clock(elapsed, view.duration)
        ),
    };
    let mut lines = Vec::with_capacity(LINES + 1);
    lines.extend([
        format!(
            "  outside the door  {}",
            bar("●", sample.outside, "no /proc/net/tcp")
        ),
        format!(
            "  inside            {}",
            bar("○", sample.inside, "needs the door's count")
        ),
        format!("                    {legend}"),
        format!("  server            {in_flight}   {process}"),
    ]);
    if let Some(kitchen) = sample.kitchen {
        lines.push(format!(
            "  kitchen           {} cooking   {} waiting   {} turned away",
            grouped(kitchen.cooking),
            grouped(kitchen.queued),
            grouped(kitchen.full)
        ));
    }
    lines.extend(loop_lines(&sample.loops));
    lines.push(last);
    lines
}

/// A line per loop; past [`LOOP_LINES`] loops, the last line sums the rest.
fn loop_lines(loops: &[LoopNow]) -> Vec<String> {
    let total: u64 = loops.iter().map(|l| l.requests).sum();
    let line = |label: String, of: &[LoopNow]| {
        let sum = |f: fn(&LoopNow) -> u64| of.iter().map(f).sum::<u64>();
        let requests = sum(|l| l.requests);
        let line = format!(
            "  {label:<18}{} open   {} accepted   {} requests",
            grouped(sum(|l| l.connections_open)),
            grouped(sum(|l| l.accepted)),
            grouped(requests)
        );
        // Rounded to the nearest percent; none before any request.
        let share = requests
            .saturating_mul(100)
            .saturating_add(total / 2)
            .checked_div(total)
            .map_or(String::new(), |percent| format!(" ({percent}%)"));
        if line.chars().count() + share.chars().count() <= WIDTH {
            line + &share
        } else {
            line
        }
    };
    if loops.len() <= LOOP_LINES {
        return loops
            .iter()
            .enumerate()
            .map(|(i, one)| line(format!("loop {i}"), std::slice::from_ref(one)))
            .collect();
    }
    let shown = LOOP_LINES - 1;
    let mut lines: Vec<String> = loops[..shown]
        .iter()
        .enumerate()
        .map(|(i, one)| line(format!("loop {i}"), std::slice::from_ref(one)))
        .collect();
    lines.push(line(
        format!("loops {shown}-{}", loops.len() - 1),
        &loops[shown..],
    ));
    lines
}

/// The plain line printed every 5 seconds when there is no live view.
pub fn progress_line(sample: &Sample, view: &View) -> String {
    let elapsed = sample.elapsed.unwrap_or_default();
    let requests = sample.ok + sample.failed;
    format!(
        "loadgen: {}: {} requests so far{} ({} ok, {} failed)\n",
        clock(elapsed, view.duration),
        grouped(requests),
        view.requests
            .map_or(String::new(), |n| format!(" of {}", grouped(n))),
        grouped(sample.ok),
        grouped(sample.failed),
    )
}

/// "3.2 s of 8.0 s", or "3.2 s" when the run is bounded by requests only.
fn clock(elapsed: Duration, duration: Option<Duration>) -> String {
    let elapsed = elapsed.as_secs_f64();
    match duration {
        Some(d) => format!("{elapsed:.1} s of {:.1} s", d.as_secs_f64()),
        None => format!("{elapsed:.1} s"),
    }
}

/// How many people one glyph stands for: 1, 2, 5, 10, 20, 50... the first that keeps the
/// longer bar within [`BAR_WIDTH`].
fn scale_for(largest: u64) -> u64 {
    let mut scale = 1;
    for step in [2, 5, 10].into_iter().cycle() {
        if largest.div_ceil(scale) <= BAR_WIDTH {
            break;
        }
        // 1, 2, 5, 10, 20, 50...: the steps of each decade, times the decade.
        let decade = 10u64.pow(scale.ilog10());
        scale = decade.saturating_mul(step);
    }
    scale
}

/// `1234567` as `1 234 567`, as the report prints counts people read at a glance.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The terminal side: frames drawn over each other in place.
#[derive(Debug, Default)]
pub struct Screen {
    /// Lines of the frame on screen now, with the cursor on the line below them.
    drawn: usize,
}

impl Screen {
    /// The bytes that replace the frame on screen (if any) with `lines`: up to the first
    /// line, then each line cleared and written, and below a shorter frame than the last,
    /// the rest of the screen wiped. The cursor ends below the frame, so that if the run is
    /// interrupted the shell's prompt starts on a line of its own.
    pub fn frame(&mut self, lines: &[String]) -> String {
        let mut out = self.up();
        for line in lines {
            out.push_str("\r\x1b[2K");
            out.push_str(line);
            out.push('\n');
        }
        if lines.len() < self.drawn {
            out.push_str("\x1b[J");
        }
        self.drawn = lines.len();
        out
    }

    /// The bytes that wipe the frame, leaving the cursor where it began.
    pub fn clear(&mut self) -> String {
        let mut out = self.up();
        if self.drawn > 0 {
            out.push_str("\x1b[J");
        }
        self.drawn = 0;
        out
    }

    fn up(&self) -> String {
        if self.drawn > 0 {
            format!("\x1b[{}A", self.drawn)
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::KitchenNow;

    fn view() -> View {
        View {
            duration: Some(Duration::from_secs(8)),
            requests: None,
            pid: true,
            stats: true,
            side_planned: 0,
        }
    }

    fn sample() -> Sample {
        Sample {
            elapsed: Some(Duration::from_millis(3_200)),
            outside: Some(20),
            inside: Some(4),
            connecting: 0,
            ok: 1_234,
            failed: 0,
            threads: Some(6),
            rss_kb: Some(2_458),
            in_flight: Some(4),
            connections_open: Some(4),
            kitchen: None,
            loops: Vec::new(),
            side_opened: 0,
        }
    }

    /// The example of the module's header, line for line.
    #[test]
    fn a_frame_is_the_picture_of_one_sample() {
        assert_eq!(
            render(&sample(), &view()),
            [
                format!("  outside the door  {} 20", "●".repeat(20)),
                "  inside            ○○○○ 4".to_string(),
                "                    ● ○ one person each".to_string(),
                "  server            in flight 4 (/stats)   threads 6   RSS 2.4 MiB".to_string(),
                "  served 1 234   failed 0   3.2 s of 8.0 s".to_string(),
            ]
        );
    }

    /// A server with a kitchen gets a line for it, below the server's: its orders cooking
    /// and waiting, and the requests turned away; it fits 80 columns with the largest
    /// numbers a stage allows (1024 threads, a queue of a million).
    #[test]
    fn a_kitchen_gets_a_line_of_its_own() {
        let mut busy = sample();
        busy.kitchen = Some(KitchenNow {
            cooking: 2,
            queued: 18,
            full: 0,
        });
        let lines = render(&busy, &view());
        assert_eq!(lines.len(), LINES + 1);
        assert_eq!(
            lines[4],
            "  kitchen           2 cooking   18 waiting   0 turned away"
        );
        assert_eq!(lines[5], "  served 1 234   failed 0   3.2 s of 8.0 s");
        busy.kitchen = Some(KitchenNow {
            cooking: 1_024,
            queued: 1_000_000,
            full: 12_345_678,
        });
        let line = &render(&busy, &view())[4];
        assert_eq!(
            line,
            "  kitchen           1 024 cooking   1 000 000 waiting   12 345 678 turned away"
        );
        assert!(line.chars().count() <= 80, "{line}");
        assert_eq!(render(&sample(), &view()).len(), LINES);
    }

    /// Each loop gets a line below the server's (and the kitchen's, when there is one), with
    /// its share of the loops' requests; past eight loops the eighth line sums the rest, and
    /// the largest counts a run reaches still fit 80 columns.
    #[test]
    fn each_loop_gets_a_line_with_its_share() {
        let mut spread = sample();
        spread.loops = vec![
            LoopNow {
                accepted: 3,
                connections_open: 1,
                requests: 1
            };
            2
        ];
        spread.loops[1] = LoopNow {
            accepted: 12,
            connections_open: 10,
            requests: 3,
        };
        let lines = render(&spread, &view());
        assert_eq!(lines.len(), LINES + 2);
        assert_eq!(
            lines[4..],
            [
                "  loop 0            1 open   3 accepted   1 requests (25%)",
                "  loop 1            10 open   12 accepted   3 requests (75%)",
                "  served 1 234   failed 0   3.2 s of 8.0 s",
            ]
        );
        // Before the first request, no share.
        spread.loops = vec![LoopNow::default(); 2];
        assert_eq!(
            render(&spread, &view())[4],
            "  loop 0            0 open   0 accepted   0 requests"
        );
        // Twelve loops: seven lines of their own, the eighth for loops 7 to 11.
        spread.loops = (0..12)
            .map(|i| LoopNow {
                accepted: 10,
                connections_open: i,
                requests: 100,
            })
            .collect();
        let lines = render(&spread, &view());
        assert_eq!(lines.len(), LINES + LOOP_LINES);
        assert_eq!(
            lines[10],
            "  loop 6            6 open   10 accepted   100 requests (8%)"
        );
        assert_eq!(
            lines[11],
            "  loops 7-11        45 open   50 accepted   500 requests (42%)"
        );
        // The most a loop holds (the default --max-conns), and an hour at 300 000 req/s;
        // then as much over 1024 loops, where the eighth line sums 1017 of them.
        let big = LoopNow {
            accepted: 123_456_789,
            connections_open: 10_000,
            requests: 1_234_567_890,
        };
        let per_loop = |n: u64| n.div_ceil(1000);
        let small = LoopNow {
            accepted: per_loop(big.accepted),
            connections_open: per_loop(big.connections_open),
            requests: per_loop(big.requests),
        };
        for loops in [vec![big; 2], vec![small; 1024]] {
            spread.loops = loops;
            for line in render(&spread, &view()) {
                assert!(line.chars().count() <= 80, "{} wide: {line}", line.len());
            }
        }
    }

    /// A crowd is drawn to scale, and the legend says what one glyph is worth.
    #[test]
    fn a_crowd_is_scaled_to_fit_80_columns() {
        let mut crowd = sample();
        (crowd.outside, crowd.inside, crowd.connecting) = (Some(1_000), Some(7), 40);
        let lines = render(&crowd, &view());
        assert_eq!(
            lines[0],
            format!("  outside the door  {} 1 000", "●".repeat(20))
        );
        assert_eq!(lines[1], "  inside            ○ 7");
        assert_eq!(
            lines[2],
            "                    ● ○ 50 people each; 40 knocking (connect() pending)"
        );
        // The largest numbers a run can have still fit.
        let view = View {
            duration: Some(Duration::from_secs(3600)),
            requests: Some(10_000_000),
            ..view()
        };
        (crowd.elapsed, crowd.connecting, crowd.ok) =
            (Some(Duration::from_secs(3600)), 10_000, 1_234_567);
        (crowd.in_flight, crowd.threads, crowd.rss_kb) =
            (Some(10_000), Some(10_010), Some(1_264_128));
        for big in [49, 100, 101, 65_535, 1_000_000] {
            crowd.outside = Some(big);
            for line in render(&crowd, &view) {
                assert!(line.chars().count() <= 80, "{} wide: {line}", line.len());
            }
        }
    }

    /// What is not known says why, instead of a number that would be wrong.
    #[test]
    fn unknowns_are_marked() {
        let mut unknown = sample();
        (unknown.outside, unknown.inside, unknown.in_flight) = (None, None, None);
        let view = View {
            pid: false,
            requests: Some(10_000),
            duration: None,
            ..view()
        };
        let lines = render(&unknown, &view);
        assert_eq!(lines[0], "  outside the door  ? (no /proc/net/tcp)");
        assert_eq!(
            lines[3],
            "  server            in flight ? (/stats late)   threads, RSS: give --pid"
        );
        assert_eq!(
            lines[4],
            "  served 1 234   failed 0   of 10 000 requests   3.2 s"
        );
    }

    /// Before the start line, the last line counts the connections being opened.
    #[test]
    fn before_the_start_the_opening_is_shown() {
        let mut early = sample();
        (early.elapsed, early.side_opened) = (None, 4_312);
        let view = View {
            side_planned: 10_000,
            ..view()
        };
        assert_eq!(
            render(&early, &view)[4],
            "  opening 4 312 of 10 000 connections before the start line"
        );
    }

    #[test]
    fn the_progress_line_says_time_and_requests() {
        assert_eq!(
            progress_line(&sample(), &view()),
            "loadgen: 3.2 s of 8.0 s: 1 234 requests so far (1 234 ok, 0 failed)\n"
        );
    }

    #[test]
    fn scales_go_1_2_5_10() {
        let scales: Vec<u64> = [0, 48, 49, 96, 97, 240, 241, 480, 481, 4800, 4801]
            .into_iter()
            .map(scale_for)
            .collect();
        assert_eq!(scales, [1, 1, 2, 2, 5, 5, 10, 10, 20, 100, 200]);
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1 000");
        assert_eq!(grouped(1_234_567), "1 234 567");
    }

    /// Each frame goes back up over the last one and clears each line before writing it;
    /// clearing goes back up and wipes to the end of the screen.
    #[test]
    fn frames_overwrite_each_other_in_place() {
        let mut screen = Screen::default();
        let lines = ["a".to_string(), "b".to_string()];
        assert_eq!(screen.frame(&lines), "\r\x1b[2Ka\n\r\x1b[2Kb\n");
        assert_eq!(screen.frame(&lines), "\x1b[2A\r\x1b[2Ka\n\r\x1b[2Kb\n");
        assert_eq!(screen.clear(), "\x1b[2A\x1b[J");
        assert_eq!(screen.clear(), "");
    }

    /// A frame shorter than the last (a kitchen line gone with a late `/stats`) wipes the
    /// line it no longer covers.
    #[test]
    fn a_shorter_frame_wipes_what_is_left_below_it() {
        let mut screen = Screen::default();
        let three = ["a".to_string(), "b".to_string(), "c".to_string()];
        screen.frame(&three);
        assert_eq!(
            screen.frame(&three[..2]),
            "\x1b[3A\r\x1b[2Ka\n\r\x1b[2Kb\n\x1b[J"
        );
        assert_eq!(
            screen.frame(&three),
            "\x1b[2A\r\x1b[2Ka\n\r\x1b[2Kb\n\r\x1b[2Kc\n"
        );
    }
}
