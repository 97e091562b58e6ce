//! The generator's threads step aside for the server: `SCHED_BATCH` on Linux.
//!
//! The generator and the server share the machine's cores. Every response wakes one client
//! thread, and Linux lets a thread that just woke up preempt the one that is running, so a
//! server thread is interrupted by the responses it sends itself: the more client threads,
//! the more interruptions. Against a single-threaded server (stage 01, `--work-ms 0`) this
//! cost `loadgen` a quarter of the rate `wrk` reached, which has two threads with an event
//! loop each and so few wake-ups (`bench/README.md` has the figures).
//!
//! `SCHED_BATCH` marks a thread as throughput work: it still gets its fair share of the CPU,
//! but its wake-ups no longer preempt the running thread. The policy is set once, in `main`,
//! before any thread starts; threads inherit it from the thread that creates them. No
//! privilege is needed to lower one's own priority this way. Elsewhere this does nothing.
//!
//! One thread takes the default policy back: `--probe-path`'s, which measures how soon the
//! server answers one request now and then. As `SCHED_BATCH`, its own wake-up would wait for
//! a running thread's time slice (milliseconds, when every core computes), and that wait
//! would be counted against the server. Ten wake-ups a second preempt nobody for long.

/// Puts the calling thread, and every thread it starts from now on, in `SCHED_BATCH`.
/// Returns whether the scheduler agreed.
#[cfg(target_os = "linux")]
pub fn step_aside() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, initialised sched_param that outlives the call, which only
    // reads it; pid 0 means the calling thread.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0 }
}

/// Other systems keep their default policy.
#[cfg(not(target_os = "linux"))]
pub fn step_aside() -> bool {
    false
}

/// Puts the calling thread back in the default policy, `SCHED_OTHER`: its wake-ups preempt
/// again. Returns whether the scheduler agreed.
#[cfg(target_os = "linux")]
pub fn step_forward() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: as in `step_aside`.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) == 0 }
}

/// Other systems never left their default policy.
#[cfg(not(target_os = "linux"))]
pub fn step_forward() -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The policy sticks to the thread and is inherited by the threads it starts.
    #[test]
    fn batch_is_set_and_inherited() {
        std::thread::spawn(|| {
            assert!(step_aside());
            // SAFETY: pid 0 is the calling thread; the call has no other argument.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_BATCH);
            // SAFETY: as above, in the child thread.
            let child = std::thread::spawn(|| unsafe { libc::sched_getscheduler(0) });
            assert_eq!(child.join().unwrap(), libc::SCHED_BATCH);
            // Back to the default, without privilege; its own threads follow it again.
            assert!(step_forward());
            // SAFETY: as above.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }
}
