//! What does starting a thread cost on this machine, and what lowers it?
//!
//! A standalone experiment for stages 02 and 03, which start a thread per connection. It is
//! not part of the workspace build: `bench/thread_start.sh` compiles it with `rustc -O` and
//! runs it. Three measurements, each for several stack sizes:
//!
//! 1. **spawn + join**: start a thread that does what a connection's thread does to its stack
//!    (zero an 8 KiB read buffer, as `handle_connection` does), wait for it, repeat. The time
//!    per thread is the whole life of a thread: clone, stack, signal stack, name, exit.
//! 2. **spawn and go on**: the accept loop of stage 02 does not wait for its threads, so start
//!    them back to back and wait only for the last; threads overlap as in the stage.
//! 3. **memory per live thread**: start N threads that touch their buffer and then block, as
//!    held connections do, and read the growth of the process's RSS.
//!
//! Usage: `thread_start [THREADS] [HELD]` (defaults 5000 and 2000).

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The stage's read buffer (`http::MAX_HEAD`), zeroed on the thread's stack.
const READ_BUFFER: usize = 8 * 1024;
/// The handler's scratch buffer for draining a connection before closing it.
const SCRATCH: usize = 4 * 1024;
/// glibc's default thread stack is 8 MiB (RLIMIT_STACK), but Rust asks for 2 MiB.
const STACKS: [(&str, Option<usize>); 4] = [
    ("2 MiB (std default)", None),
    ("256 KiB", Some(256 * 1024)),
    ("64 KiB", Some(64 * 1024)),
    ("32 KiB", Some(32 * 1024)),
];
const ROUNDS: usize = 5;

fn builder(stack: Option<usize>, name: Option<String>) -> thread::Builder {
    let mut builder = thread::Builder::new();
    if let Some(size) = stack {
        builder = builder.stack_size(size);
    }
    if let Some(name) = name {
        builder = builder.name(name);
    }
    builder
}

/// What a connection's thread does to its stack before it blocks in `read`: its frame holds
/// the zeroed read buffer. Separate functions, never inlined, so that a frame without the
/// buffer really has none (Rust touches every page of a large frame on entry: stack probes).
#[inline(never)]
fn use_stack_like_a_handler(touch: bool) {
    if touch {
        with_buffer(|| ());
    } else {
        without_buffer(|| ());
    }
}

#[inline(never)]
fn with_buffer(then: impl FnOnce()) {
    let mut buf = [0u8; READ_BUFFER];
    black_box(&mut buf);
    then();
    black_box(&buf);
}

#[inline(never)]
fn with_two_buffers(then: impl FnOnce()) {
    let mut buf = [0u8; READ_BUFFER];
    let mut scratch = [0u8; SCRATCH];
    black_box(&mut buf);
    black_box(&mut scratch);
    then();
    black_box(&buf);
    black_box(&scratch);
}

#[inline(never)]
fn without_buffer(then: impl FnOnce()) {
    black_box(());
    then();
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Microseconds per thread, started and joined one at a time.
fn spawn_join(threads: usize, stack: Option<usize>, named: bool, touch: bool) -> f64 {
    let started = Instant::now();
    for i in 0..threads {
        let name = named.then(|| format!("conn-{i}"));
        let handle = builder(stack, name)
            .spawn(move || use_stack_like_a_handler(touch))
            .expect("spawn");
        handle.join().expect("join");
    }
    started.elapsed().as_secs_f64() * 1e6 / threads as f64
}

/// Microseconds per thread, started back to back without waiting (like stage 02's loop).
fn spawn_detached(threads: usize, stack: Option<usize>, named: bool, touch: bool) -> f64 {
    let left = Arc::new(AtomicUsize::new(threads));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let started = Instant::now();
    for i in 0..threads {
        let name = named.then(|| format!("conn-{i}"));
        let (left, done_tx) = (Arc::clone(&left), done_tx.clone());
        builder(stack, name)
            .spawn(move || {
                use_stack_like_a_handler(touch);
                if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                    let _ = done_tx.send(());
                }
            })
            .expect("spawn");
    }
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("threads finish");
    let per = started.elapsed().as_secs_f64() * 1e6 / threads as f64;
    // Let the last threads exit before the next measurement.
    thread::sleep(Duration::from_millis(50));
    per
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// What a held connection's thread has on its stack while it waits.
#[derive(Clone, Copy)]
enum Frame {
    /// No buffer at all: the least a blocked thread can cost.
    Empty,
    /// The 8 KiB read buffer, as `handle_connection` has.
    Buffer,
    /// The read buffer and the 4 KiB drain buffer in one frame (if they were inlined together).
    TwoBuffers,
}

/// KiB of RSS per thread while `held` threads are alive and blocked.
fn rss_per_thread(held: usize, stack: Option<usize>, frame: Frame) -> f64 {
    let before = rss_kib();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
    let ready = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(held);
    for i in 0..held {
        let (ready, release_rx) = (Arc::clone(&ready), Arc::clone(&release_rx));
        let handle = builder(stack, Some(format!("conn-{i}")))
            .spawn(move || {
                // Blocked, like a thread waiting in read() on an idle connection.
                let block = || {
                    ready.fetch_add(1, Ordering::AcqRel);
                    let _ = release_rx.lock().map(|rx| rx.recv());
                };
                match frame {
                    Frame::Empty => without_buffer(block),
                    Frame::Buffer => with_buffer(block),
                    Frame::TwoBuffers => with_two_buffers(block),
                }
            })
            .expect("spawn");
        handles.push(handle);
    }
    while ready.load(Ordering::Acquire) < held {
        thread::sleep(Duration::from_millis(5));
    }
    let during = rss_kib();
    drop(release_tx);
    for handle in handles {
        handle.join().expect("join");
    }
    (during.saturating_sub(before)) as f64 / held as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // A child run: one memory measurement in a fresh process, so that no stack cached by
    // glibc from an earlier measurement is counted as already there.
    if args.first().map(String::as_str) == Some("memory") {
        let held: usize = args[1].parse().expect("held");
        let stack: usize = args[2].parse().expect("stack");
        let frame = match args[3].as_str() {
            "empty" => Frame::Empty,
            "buffer" => Frame::Buffer,
            _ => Frame::TwoBuffers,
        };
        let stack = (stack > 0).then_some(stack);
        println!("{:.1}", rss_per_thread(held, stack, frame));
        return;
    }
    let threads: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let held: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    println!(
        "thread start cost: {threads} threads per measurement, median of {ROUNDS} rounds; \
         each thread zeroes an {} KiB buffer on its stack unless said otherwise; \
         microseconds per thread",
        READ_BUFFER / 1024
    );
    println!(
        "{:<22} {:>16} {:>16} {:>16} {:>16}",
        "stack", "spawn+join", "+ name", "no buffer", "back to back"
    );
    for (label, stack) in STACKS {
        let join = median(
            (0..ROUNDS)
                .map(|_| spawn_join(threads, stack, false, true))
                .collect(),
        );
        let named = median(
            (0..ROUNDS)
                .map(|_| spawn_join(threads, stack, true, true))
                .collect(),
        );
        let bare = median(
            (0..ROUNDS)
                .map(|_| spawn_join(threads, stack, false, false))
                .collect(),
        );
        let detached = median(
            (0..ROUNDS)
                .map(|_| spawn_detached(threads, stack, true, true))
                .collect(),
        );
        println!("{label:<22} {join:>16.1} {named:>16.1} {bare:>16.1} {detached:>16.1}");
    }
    println!();
    println!(
        "memory: {held} live threads blocked after using their stack; RSS growth per thread, \
         each measured in a fresh process"
    );
    println!(
        "{:<22} {:>16} {:>16} {:>16}",
        "stack", "no buffer KiB", "8 KiB KiB", "8 + 4 KiB KiB"
    );
    let me = std::env::current_exe().expect("own path");
    let child = |stack: Option<usize>, touch: &str| -> String {
        let output = std::process::Command::new(&me)
            .args([
                "memory",
                &held.to_string(),
                &stack.unwrap_or(0).to_string(),
                touch,
            ])
            .output()
            .expect("run a child");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    for (label, stack) in STACKS {
        let empty = child(stack, "empty");
        let buffer = child(stack, "buffer");
        let two = child(stack, "two");
        println!("{label:<22} {empty:>16} {buffer:>16} {two:>16}");
    }
}
