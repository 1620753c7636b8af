//! Time as the core sees it: a value passed in, never read.
//!
//! Every flow and the token manager take a [`Now`]: a monotonic [`Instant`]
//! for deadlines (token expiry, refresh, backoff) and a wall-clock
//! [`SystemTime`] for what goes on the wire (the assertion's `iat` and `exp`,
//! the `Date` header). Only the drivers read a clock, through [`Clock`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One reading of both clocks, taken together.
///
/// Token expiry lives in the monotonic domain: an access token that arrives
/// with `expires_in = 300` expires 300 s after the [`Instant`] of the `Now`
/// at which its response was handled. On platforms where `Instant` stops
/// during system suspend, a token can outlive its expiry across a suspend;
/// the token manager's safety margin does not cover that, and a resource
/// server's 401 followed by [`invalidate`](crate::manager::TokenManager::invalidate)
/// is the recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    instant: Instant,
    wall: SystemTime,
}

impl Now {
    /// Builds a reading from its two parts.
    pub fn new(instant: Instant, wall: SystemTime) -> Self {
        Self { instant, wall }
    }

    /// The monotonic part, for deadlines.
    pub fn instant(&self) -> Instant {
        self.instant
    }

    /// The wall-clock part, for what goes on the wire.
    pub fn wall(&self) -> SystemTime {
        self.wall
    }

    /// Whole seconds since the Unix epoch of the wall-clock part; 0 before 1970.
    pub fn unix_seconds(&self) -> u64 {
        self.wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
    }

    /// The same reading moved forward on both clocks.
    #[must_use]
    pub fn advance(self, by: Duration) -> Self {
        Self {
            instant: self.instant + by,
            wall: self.wall + by,
        }
    }
}

/// A source of [`Now`] readings, for the drivers that need one.
pub trait Clock: Send + Sync + 'static {
    /// Reads both clocks.
    fn now(&self) -> Now;

    /// Reads the monotonic clock alone, for the drivers' hot path, which
    /// needs no wall-clock time. Must agree with `now().instant()`.
    fn instant(&self) -> Instant {
        self.now().instant()
    }

    /// Reads a cheap, possibly coarse, monotonic clock in nanoseconds, for
    /// the drivers' cached-token path; `None` when there is none, and then
    /// the drivers use [`instant`](Self::instant).
    ///
    /// The reading may lag the true monotonic time by up to [`COARSE_LAG`],
    /// never lead it, and only differences between readings mean anything.
    fn coarse_nanos(&self) -> Option<u64> {
        None
    }
}

/// How far [`Clock::coarse_nanos`] may lag the monotonic clock. Linux's
/// coarse clock advances once per scheduler tick (1 to 10 ms).
pub const COARSE_LAG: Duration = Duration::from_millis(10);

/// A deadline that can be checked on the clock's coarse reading.
///
/// Checking `now < until` costs a full monotonic clock read (tens of
/// nanoseconds on a virtual machine); the drivers check every cached-token
/// read against a deadline, so they convert it once, when the token is
/// published, into the coarse domain, shortened by [`COARSE_LAG`] so that
/// the coarse check never passes after `until`. Only a coarse reading past
/// that shortened deadline falls back to the precise clock.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    until: Option<Instant>,
    coarse_until: Option<u64>,
}

impl Deadline {
    /// `until` (`None`: never) converted for `clock`.
    pub fn new(until: Option<Instant>, clock: &dyn Clock) -> Self {
        let coarse_until = until.and_then(|until| {
            let coarse_now = clock.coarse_nanos()?;
            let left = until
                .saturating_duration_since(clock.instant())
                .saturating_sub(COARSE_LAG);
            let left = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX);
            Some(coarse_now.saturating_add(left))
        });
        Self {
            until,
            coarse_until,
        }
    }

    /// Whether `clock` is still before the deadline.
    #[inline]
    pub fn is_ahead(&self, clock: &dyn Clock) -> bool {
        let Some(until) = self.until else {
            return true;
        };
        if let (Some(coarse_until), Some(coarse_now)) = (self.coarse_until, clock.coarse_nanos())
            && coarse_now < coarse_until
        {
            // The coarse reading lags by at most COARSE_LAG, which the
            // coarse deadline already gave up: the true time is before `until`.
            return true;
        }
        clock.instant() < until
    }
}

/// The operating system's clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Now {
        // The one place the library reads the real clocks.
        Now::new(Instant::now(), SystemTime::now())
    }

    fn instant(&self) -> Instant {
        Instant::now()
    }

    #[cfg(target_os = "linux")]
    fn coarse_nanos(&self) -> Option<u64> {
        // CLOCK_MONOTONIC_COARSE: the monotonic clock as of the last
        // scheduler tick, read from the vDSO without touching the TSC.
        let time = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
        let seconds = u64::try_from(time.tv_sec).ok()?;
        let nanos = u64::try_from(time.tv_nsec).ok()?;
        Some(seconds.saturating_mul(1_000_000_000).saturating_add(nanos))
    }
}

/// A clock that moves only when told to: for deterministic tests.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<Now>>,
}

impl ManualClock {
    /// Starts the clock at `start`.
    pub fn new(start: Now) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves both clocks forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now = now.advance(by);
    }

    /// Sets the wall clock alone, as a clock step or a skewed host would.
    pub fn set_wall(&self, wall: SystemTime) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now = Now::new(now.instant(), wall);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Now {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock whose coarse reading lags its instant by a set amount.
    struct LaggingClock {
        base: Instant,
        elapsed: Mutex<Duration>,
        lag: Duration,
    }

    impl LaggingClock {
        fn set(&self, elapsed: Duration) {
            *self.elapsed.lock().unwrap() = elapsed;
        }
    }

    impl Clock for LaggingClock {
        fn now(&self) -> Now {
            let instant = self.base + *self.elapsed.lock().unwrap();
            Now::new(instant, UNIX_EPOCH)
        }

        fn coarse_nanos(&self) -> Option<u64> {
            let elapsed = self.elapsed.lock().unwrap().saturating_sub(self.lag);
            Some(1_000_000_000 + u64::try_from(elapsed.as_nanos()).unwrap())
        }
    }

    #[test]
    fn a_deadline_never_passes_late_whatever_the_coarse_lag() {
        let base = Instant::now();
        let until = base + Duration::from_secs(10);
        for lag_ms in [0, 1, 4, 10] {
            let clock = LaggingClock {
                base,
                elapsed: Mutex::new(Duration::ZERO),
                lag: Duration::from_millis(lag_ms),
            };
            let deadline = Deadline::new(Some(until), &clock);
            for ms in [0, 5_000, 9_989, 9_990, 9_999, 10_000, 10_001, 20_000] {
                clock.set(Duration::from_millis(ms));
                let expected = base + Duration::from_millis(ms) < until;
                assert_eq!(
                    deadline.is_ahead(&clock),
                    expected,
                    "lag {lag_ms} ms, at {ms} ms"
                );
            }
        }
    }

    #[test]
    fn a_deadline_without_coarse_clock_or_end_is_checked_precisely() {
        let start = Now::new(Instant::now(), UNIX_EPOCH);
        let clock = ManualClock::new(start);
        let deadline = Deadline::new(Some(start.instant() + Duration::from_secs(1)), &clock);
        assert!(deadline.is_ahead(&clock));
        clock.advance(Duration::from_secs(1));
        assert!(!deadline.is_ahead(&clock));
        assert!(Deadline::new(None, &clock).is_ahead(&clock));
    }

    #[test]
    fn the_system_clock_coarse_reading_does_not_lead_the_monotonic_clock() {
        let clock = SystemClock;
        let Some(first) = clock.coarse_nanos() else {
            return; // no coarse clock on this platform: nothing to compare
        };
        let deadline = Deadline::new(Some(clock.instant() + Duration::from_secs(60)), &clock);
        assert!(deadline.is_ahead(&clock));
        let second = clock.coarse_nanos().unwrap();
        assert!(second >= first);
    }
}
