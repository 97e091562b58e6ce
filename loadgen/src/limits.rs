//! loadgen's own descriptor limit, raised to the hard limit at start.
//!
//! Every connection is a file descriptor, and a process may have only `RLIMIT_NOFILE` of
//! them: the *soft* limit, usually 1024, which a process may raise itself up to the *hard*
//! limit set by the administrator. `--scenario held` keeps ten thousand connections open,
//! a flood a thousand, so the generator raises its soft limit as far as it may (as
//! `ulimit -n "$(ulimit -Hn)"` would in a shell) and says so when that is still too few.

/// Raises the soft limit on open files to the hard limit; returns the soft limit now in
/// force, or `None` where it cannot be read (not Linux).
#[cfg(target_os = "linux")]
pub fn raise_open_files() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, initialised rlimit that outlives both calls; getrlimit
    // writes it, setrlimit only reads `raised`. Neither touches any other memory.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // An unlimited hard limit cannot be the soft one for open files (the kernel caps it
        // at fs.nr_open); then the soft limit stays where it was.
        if limit.rlim_cur < limit.rlim_max && libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 here, but u32 on 32-bit targets
    Some(limit.rlim_cur as u64)
}

/// Elsewhere the limit is left alone and not known.
#[cfg(not(target_os = "linux"))]
pub fn raise_open_files() -> Option<u64> {
    None
}

/// The line to print when the limit is below what the run needs, or `None`.
pub fn shortfall(limit: Option<u64>, needed: u64) -> Option<String> {
    let limit = limit?;
    (limit < needed).then(|| {
        format!(
            "the open-file limit is {limit}, below the {needed} descriptors this run needs \
             (one per connection, and a few more): connects beyond it will fail with \"too \
             many open files\"; raise the hard limit (ulimit -Hn, as root) to give it more"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After raising, the soft limit is the hard one (or as close as the kernel allows).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let soft = raise_open_files().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as in raise_open_files, a valid rlimit for getrlimit to fill.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        #[allow(clippy::unnecessary_cast)] // as above
        let current = limit.rlim_cur as u64;
        assert_eq!(soft, current);
        assert!(limit.rlim_cur == limit.rlim_max || limit.rlim_max == libc::RLIM_INFINITY);
    }

    #[test]
    fn a_shortfall_is_said_in_one_line() {
        assert_eq!(shortfall(Some(20_000), 10_100), None);
        assert_eq!(shortfall(None, 10_100), None);
        let line = shortfall(Some(1024), 10_100).unwrap();
        assert!(line.starts_with("the open-file limit is 1024, below the 10100"));
        assert!(!line.contains('\n'));
    }
}
