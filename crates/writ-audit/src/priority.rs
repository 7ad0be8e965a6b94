//! The writing threads' scheduling priority.
//!
//! A log's writer works in bursts: every turn it seals and writes what
//! queued, and now and then SQLite copies its WAL into the database. On
//! a busy core, a burst at the deciding threads' priority holds the core
//! for the scheduler's slice, and the decisions that arrive meanwhile
//! wait behind it. With a higher nice value the scheduler hands the core
//! back to a deciding thread as soon as one has work, and the writer
//! catches up in the time between: the records are written all the same
//! (a full queue still makes the deciding threads wait for room).

/// The highest nice value there is (the lowest priority).
pub const MAX_NICE: u8 = 19;

/// Raises the calling thread's nice value by `by` (at most to
/// [`MAX_NICE`]) and returns the thread's new value. Linux only (where a
/// nice value is a thread's own); elsewhere, and when `by` is 0, nothing
/// changes and `None` is returned. Raising a nice value needs no
/// privilege; a failure leaves the thread as it was (`None`).
#[must_use]
pub fn lower_this_thread(by: u8) -> Option<i32> {
    if by == 0 {
        return None;
    }
    imp::lower(by)
}

#[cfg(target_os = "linux")]
mod imp {
    pub(super) fn lower(by: u8) -> Option<i32> {
        use rustix::process::{getpriority_process, setpriority_process};
        // `None`: the calling thread (Linux keeps a nice value per thread).
        let now = getpriority_process(None).ok()?;
        let want = now
            .saturating_add(i32::from(by))
            .min(i32::from(super::MAX_NICE));
        setpriority_process(None, want).ok()?;
        Some(want)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn lower(_by: u8) -> Option<i32> {
        None
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking: unwrap says what broke"
)]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> i32 {
        rustix::process::getpriority_process(None).unwrap()
    }

    #[test]
    fn a_thread_lowers_itself_and_no_other() {
        let before = nice_of_this_thread();
        let (inside, after) = std::thread::spawn(|| {
            let start = nice_of_this_thread();
            let got = lower_this_thread(3);
            (got, nice_of_this_thread() - start)
        })
        .join()
        .unwrap();
        assert_eq!(
            after,
            3.min(19 - before),
            "the thread's own nice value rose"
        );
        assert_eq!(inside, Some((before + 3).min(19)));
        assert_eq!(nice_of_this_thread(), before, "the caller's is unchanged");
        // 0 changes nothing; a large step stops at 19.
        let (zero, big) = std::thread::spawn(|| {
            let zero = lower_this_thread(0);
            (zero, lower_this_thread(200))
        })
        .join()
        .unwrap();
        assert_eq!(zero, None);
        assert_eq!(big, Some(19));
    }
}
