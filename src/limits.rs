//! The descriptor limit, and how many connections it lets the event loop hold (stages 06, 07).
//!
//! Every open socket is a file descriptor, and a process may have at most `RLIMIT_NOFILE` of
//! them (`ulimit -n`). The limit has two values: the *soft* one, which is enforced, and the
//! *hard* one, up to which a process may raise its own soft limit without privileges. Shells
//! often start programs with a soft limit of 1024 and a far higher hard one, a leftover from
//! the days of `select()`, which cannot watch descriptors above 1023. An event loop on
//! epoll or kqueue has no such limit, so it raises its soft limit to the hard one at start, as
//! nginx (`worker_rlimit_nofile`) and Go's runtime do. If even the hard limit is below what
//! `--max-conns` needs, the stage says so in one line and holds fewer connections: accepting
//! beyond the limit would fail anyway, with EMFILE.
//!
//! The two calls std does not have, `getrlimit` and `setrlimit`, come from `libc`.
//!
//! Introduced in chapter 6 (`docs/06-event-loop.md`).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::logging;

/// Descriptors kept for everything but connections: stdin, stdout, stderr, the listener, the
/// poller and its waker, the signal thread's pipe, and a margin.
pub const RESERVED: u64 = 32;

/// The soft and hard descriptor limits of this process.
pub fn descriptors() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct it is given, which lives on our stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Raises the soft descriptor limit to the hard one; returns the soft limit now in force.
pub fn raise_descriptors() -> io::Result<u64> {
    let (soft, hard) = descriptors()?;
    if soft >= hard {
        return Ok(soft);
    }
    let limit = libc::rlimit {
        rlim_cur: hard,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct it is given; lowering nothing, it cannot harm
    // the descriptors already open.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(hard)
}

/// How many connections the event loop may hold: `wanted` (`--max-conns`), or fewer if the
/// descriptor limit, raised as far as it goes, is lower. Says so in one line when it is, once
/// per process: stage 09 asks once for each of its loops.
pub fn connections_allowed(wanted: usize) -> usize {
    let soft = match raise_descriptors().or_else(|_| descriptors().map(|(soft, _)| soft)) {
        Ok(soft) => soft,
        Err(e) => {
            logging::warn(format_args!("cannot read the descriptor limit ({e})"));
            return wanted;
        }
    };
    let room = usize::try_from(soft.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
    if room >= wanted {
        return wanted;
    }
    let room = room.max(1);
    static SAID: AtomicBool = AtomicBool::new(false);
    if SAID.swap(true, Ordering::Relaxed) {
        return room;
    }
    logging::warn(format_args!(
        "--max-conns {wanted} needs {} descriptors, but this process may open only {soft} \
         (ulimit -n): holding at most {room} connections",
        wanted as u64 + RESERVED
    ));
    room
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_can_be_raised_to_the_hard_one() {
        let (soft, hard) = descriptors().unwrap();
        assert!(soft <= hard);
        assert_eq!(raise_descriptors().unwrap(), hard);
        assert_eq!(descriptors().unwrap(), (hard, hard));
        assert_eq!(connections_allowed(10), 10);
    }
}
