//! CPU clocks: the whole process, and one thread (the token endpoint's), so
//! that the client's share can be told apart from the server's.

use std::time::Duration;

/// CPU time of a clock id, or zero when the clock cannot be read.
fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time (user + system) used by every thread of this process so far.
pub fn process() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// A handle on one thread's CPU clock, readable from any thread.
#[derive(Clone, Copy, Debug)]
pub struct ThreadClock {
    id: libc::clockid_t,
}

impl ThreadClock {
    /// The clock of the calling thread.
    pub fn current() -> Option<Self> {
        let mut id: libc::clockid_t = 0;
        // SAFETY: pthread_self() is always a valid thread of this process and
        // `id` is writable.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
        (rc == 0).then_some(Self { id })
    }

    /// CPU time the thread has used so far (zero once it has ended).
    pub fn read(&self) -> Duration {
        clock(self.id)
    }
}
