//! What a shared counter costs: nanoseconds per `fetch_add` when one thread counts alone, when
//! two threads count on one shared atomic, and when each counts on its own, in one cache line
//! or in lines of their own.
//!
//! For chapter 9, whose loops share the server's counters (`src/stats.rs`). An atomic add is
//! one instruction, but before a core may write a cache line it must own it: when two cores
//! write the same line, it moves from one core's cache to the other's at (almost) every
//! write, and each move costs about as much as a trip to the other core. Two counters that
//! happen to sit in one line move it as well, although no value is shared (false sharing);
//! that is why `LoopStats` is aligned to 128 bytes (two 64-byte lines, since some x86 cores
//! fetch lines in pairs).
//!
//! Four cases, each timed over `--increments` Relaxed `fetch_add`s per thread, the median of
//! `--rounds` rounds:
//! 1. one thread, its own counter;
//! 2. two threads, one shared `AtomicU64`;
//! 3. two threads, each its own counter, both in one 64-byte line;
//! 4. two threads, each its own counter on 128 bytes of its own, as `LoopStats`.
//!
//! The threads are pinned to two different cores (`sched_setaffinity`), so that case 2 really
//! is two cores and not two threads taking turns on one; where pinning is not possible the
//! table says so. Run by `bench/contention.sh`; alone:
//! `cargo run --release --example contention -- [--increments N] [--rounds R]`.

use std::hint::black_box;
use std::io;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::thread;
use std::time::Duration;
#[cfg(not(target_os = "linux"))]
use std::time::Instant;

/// Enough for a round to last most of a tenth of a second here; all rounds of all cases
/// take about two seconds.
const INCREMENTS: u64 = 10_000_000;
const ROUNDS: usize = 5;
/// The counting threads' start word.
const WAIT: u8 = 0;
const GO: u8 = 1;
const STOP: u8 = 2;

/// Two counters side by side in one 64-byte cache line.
#[derive(Default)]
#[repr(C, align(64))]
struct OneLine {
    first: AtomicU64,
    second: AtomicU64,
}

/// A counter on 128 bytes of its own, as `LoopStats` is.
#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

fn main() -> ExitCode {
    let (mut increments, mut rounds, mut unknown) = (Some(INCREMENTS), Some(ROUNDS), false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--increments" => increments = args.next().and_then(|n| n.parse().ok()),
            "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()),
            _ => unknown = true,
        }
    }
    let (Some(increments @ 1..), Some(rounds @ 1..=100), false) = (increments, rounds, unknown)
    else {
        eprintln!(
            "usage: contention [--increments N (default {INCREMENTS})] \
             [--rounds R (1 to 100, default {ROUNDS})]"
        );
        return ExitCode::from(2);
    };
    match measure(increments, rounds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("contention: {e}");
            ExitCode::FAILURE
        }
    }
}

fn measure(increments: u64, rounds: usize) -> io::Result<()> {
    let cores = two_cores();
    let pinned = AtomicBool::new(cores.is_some());
    let run = |counters: &[&AtomicU64]| -> io::Result<f64> {
        let mut each = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            each.push(ns_per_increment(counters, increments, cores, &pinned)?);
        }
        each.sort_by(f64::total_cmp);
        Ok(each[rounds / 2])
    };
    let alone = AtomicU64::new(0);
    let shared = AtomicU64::new(0);
    let line = OneLine::default();
    let (left, right) = (Padded::default(), Padded::default());
    let cases = [
        ("one thread, its own counter", run(&[&alone])?),
        ("two threads, one shared counter", run(&[&shared, &shared])?),
        (
            "two threads, own counters in one 64-byte line",
            run(&[&line.first, &line.second])?,
        ),
        (
            "two threads, own counters 128 bytes apart",
            run(&[&left.0, &right.0])?,
        ),
    ];
    let placement = match (cores, pinned.load(Ordering::Relaxed)) {
        (Some((a, b)), true) => format!("threads pinned to cores {a} and {b}"),
        _ => "threads NOT pinned (fewer than two cores allowed, or no sched_setaffinity)".into(),
    };
    println!(
        "{increments} Relaxed fetch_add per thread, median of {rounds} rounds; {placement}; \
         ns per increment: a thread's CPU time / its increments"
    );
    println!(
        "{:<48} {:>16} {:>14}",
        "case", "ns per increment", "x one thread"
    );
    let one = cases[0].1;
    for (name, ns) in cases {
        println!("{name:<48} {ns:>16.2} {:>14.1}", ns / one);
    }
    Ok(())
}

/// Each counter counted by a thread of its own, all starting together; the mean over the
/// threads of each one's time per increment.
fn ns_per_increment(
    counters: &[&AtomicU64],
    increments: u64,
    cores: Option<(usize, usize)>,
    pinned: &AtomicBool,
) -> io::Result<f64> {
    // Every thread waits for the word to start, so that they count at the same time; if one
    // cannot be spawned, the word is to stop, and the others end without counting.
    let word = AtomicU8::new(WAIT);
    let times = thread::scope(|scope| {
        let mut running = Vec::with_capacity(counters.len());
        for (i, &counter) in counters.iter().enumerate() {
            let word = &word;
            let core = cores.map(|(a, b)| if i % 2 == 0 { a } else { b });
            let spawned = thread::Builder::new()
                .name(format!("count-{i}"))
                .spawn_scoped(scope, move || {
                    if core.is_none_or(|core| !pin_to(core)) {
                        pinned.store(false, Ordering::Relaxed);
                    }
                    while word.load(Ordering::Acquire) == WAIT {
                        thread::yield_now();
                    }
                    (word.load(Ordering::Acquire) == GO).then(|| count(counter, increments))
                });
            match spawned {
                Ok(thread) => running.push(thread),
                Err(e) => {
                    word.store(STOP, Ordering::Release);
                    return Err(e);
                }
            }
        }
        word.store(GO, Ordering::Release);
        running
            .into_iter()
            .map(|thread| match thread.join() {
                Ok(Some(time)) => Ok(time),
                _ => Err(io::Error::other("a counting thread did not count")),
            })
            .collect::<io::Result<Vec<Duration>>>()
    })?;
    let mean = times.iter().map(Duration::as_secs_f64).sum::<f64>() / times.len() as f64;
    Ok(mean * 1e9 / increments as f64)
}

/// The loop being measured: nothing but the increments.
#[inline(never)]
fn count(counter: &AtomicU64, increments: u64) -> Duration {
    let counter = black_box(counter);
    let began = cpu_time();
    for _ in 0..increments {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    cpu_time().saturating_sub(began)
}

/// The CPU time of the calling thread: on a machine shared with other programs, the time
/// they take from it while it is descheduled is not its increments' cost. A core stalled
/// waiting for a cache line is still this thread's time, so contention counts.
#[cfg(target_os = "linux")]
fn cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the pointer is to a timespec we own; the clock id is a constant Linux has.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Elsewhere, the time since the first call: other programs' time counts too.
#[cfg(not(target_os = "linux"))]
fn cpu_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// The first two cores this process may run on, if it may run on two.
#[cfg(target_os = "linux")]
fn two_cores() -> Option<(usize, usize)> {
    // SAFETY: cpu_set_t is plain data, for which all zeroes is the empty set; the kernel
    // writes at most size_of::<cpu_set_t>() bytes into it, the size we pass.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the pointer and the size describe `set`.
    let got = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if got != 0 {
        return None;
    }
    // SAFETY: CPU_ISSET reads the set, for cores below CPU_SETSIZE only.
    let mut allowed =
        (0..libc::CPU_SETSIZE as usize).filter(|&core| unsafe { libc::CPU_ISSET(core, &set) });
    Some((allowed.next()?, allowed.next()?))
}

#[cfg(not(target_os = "linux"))]
fn two_cores() -> Option<(usize, usize)> {
    None
}

/// Pins the calling thread to one core; whether it worked.
#[cfg(target_os = "linux")]
fn pin_to(core: usize) -> bool {
    // SAFETY: as in two_cores: an empty set, then one core below CPU_SETSIZE added to it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: pid 0 is this thread; the pointer and the size describe `set`.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn pin_to(_core: usize) -> bool {
    false
}
