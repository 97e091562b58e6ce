//! The server's threads and memory, read from `/proc/PID/status` while the load runs.
//!
//! Linux keeps a text file per process with, among much else, `Threads:` (how many it has
//! now), `VmRSS:` (memory in RAM now) and `VmHWM:` (the most it ever had: the "high water
//! mark"). Threads come and go between two reads, so they are sampled often and the largest
//! count kept; memory's peak the kernel keeps for us. Elsewhere there is no such file and
//! both stay unknown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often threads are counted: often enough to catch stage 02's short-lived threads in
/// bulk, rarely enough to cost the machine nothing.
const EVERY: Duration = Duration::from_millis(20);

/// One reading of the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub threads: Option<u64>,
    pub rss_kb: Option<u64>,
    pub peak_rss_kb: Option<u64>,
}

/// The largest values seen over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peaks {
    pub threads: Option<u64>,
    pub rss_kb: Option<u64>,
}

impl Peaks {
    fn add(&mut self, sample: Sample) {
        let higher = |a: Option<u64>, b: Option<u64>| a.max(b);
        self.threads = higher(self.threads, sample.threads);
        self.rss_kb = higher(self.rss_kb, sample.peak_rss_kb.or(sample.rss_kb));
    }
}

/// Picks `Threads:`, `VmRSS:` and `VmHWM:` out of the file's text.
pub fn parse(status: &str) -> Sample {
    let mut sample = Sample::default();
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        // "VmRSS:	    3124 kB": the number is the first word.
        let number = value.split_whitespace().next().and_then(|n| n.parse().ok());
        match key {
            "Threads" => sample.threads = number,
            "VmRSS" => sample.rss_kb = number,
            "VmHWM" => sample.peak_rss_kb = number,
            _ => {}
        }
    }
    sample
}

/// Reads the file once; `None` if it is not there (no such process, or not Linux).
pub fn read(pid: u32) -> Option<Sample> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .map(|text| parse(&text))
}

/// A thread that samples until [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Peaks>>,
}

impl Sampler {
    /// Starts sampling `pid`, or returns `None` if its status cannot be read at all.
    pub fn start(pid: u32, limit: Duration) -> Option<Sampler> {
        let first = read(pid)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::Builder::new()
            .name("proc-sampler".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut peaks = Peaks::default();
                peaks.add(first);
                // Bounded twice: by the stop flag, and by the longest a run can last.
                let give_up = Instant::now() + limit;
                while !flag.load(Ordering::Acquire) && Instant::now() < give_up {
                    thread::sleep(EVERY);
                    match read(pid) {
                        Some(sample) => peaks.add(sample),
                        None => break, // the server has exited
                    }
                }
                peaks
            })
            .ok()?;
        Some(Sampler {
            stop,
            handle: Some(handle),
        })
    }

    /// Takes one last sample and returns the peaks.
    pub fn finish(mut self, pid: u32) -> Peaks {
        self.stop.store(true, Ordering::Release);
        let mut peaks = self
            .handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if let Some(sample) = read(pid) {
            peaks.add(sample);
        }
        peaks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\t04_thread_pool\nState:\tS (sleeping)\nVmHWM:\t    4200 kB\n\
                          VmRSS:\t    3124 kB\nThreads:\t6\nSigQ:\t0/63414\n";

    #[test]
    fn the_three_fields_are_found_by_name() {
        let sample = parse(STATUS);
        assert_eq!(
            sample,
            Sample {
                threads: Some(6),
                rss_kb: Some(3124),
                peak_rss_kb: Some(4200)
            }
        );
        assert_eq!(parse("Name:\tx\n"), Sample::default());
    }

    #[test]
    fn peaks_keep_the_largest_thread_count_and_the_high_water_mark() {
        let mut peaks = Peaks::default();
        peaks.add(parse(STATUS));
        peaks.add(parse("Threads:\t1004\nVmRSS:\t9000 kB\nVmHWM:\t9100 kB\n"));
        peaks.add(parse("Threads:\t5\nVmRSS:\t3000 kB\nVmHWM:\t9100 kB\n"));
        assert_eq!(
            peaks,
            Peaks {
                threads: Some(1004),
                rss_kb: Some(9100)
            }
        );
    }

    /// Our own process always has a status file on Linux.
    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_can_be_read() {
        let sample = read(std::process::id()).unwrap();
        assert!(sample.threads.unwrap() >= 1);
        assert!(sample.rss_kb.unwrap() > 0);
    }
}
