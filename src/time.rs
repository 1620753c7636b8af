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
