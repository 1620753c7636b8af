//! Clock skew between the host and the provider, learned from the token
//! endpoint's `Date` header and applied to the assertions signed later.
//!
//! An assertion's `iat` and `exp` are read by the provider's clock. ZITADEL
//! refuses an `iat` more than a second in its future, and a short client
//! assertion is expired on arrival when the host clock runs behind by more
//! than its lifetime. The `iat` backdate
//! ([`DEFAULT_IAT_BACKDATE`](crate::flow::token::DEFAULT_IAT_BACKDATE)) absorbs a
//! few seconds; [`ClockSkew`] covers the rest.
//!
//! # How the offset is measured
//!
//! Every response of an origin server with a clock carries a `Date` (RFC
//! 9110 §6.6.1), whole seconds of the provider's time, set while the
//! response was generated. The offset is `Date - (host wall clock when the
//! response arrived)`, floored to whole seconds. Since `Date` is truncated
//! and the response arrives after it was generated, this never exceeds the
//! true `provider - host`: corrected assertions are dated at or before the
//! provider's own time, the safe side of ZITADEL's rule.
//!
//! The estimate follows the most recent measurement, with a dead band: a
//! measurement within [`CALIBRATION_THRESHOLD`] of the offset in use changes
//! nothing, because the `Date`'s one-second resolution and the network delay
//! make smaller differences noise, and the backdate covers them anyway. A
//! measurement beyond [`MAX_CLOCK_OFFSET`] is refused (with a warning): a
//! host clock that far off needs setting, and a `Date` that far off is more
//! likely broken than true.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
//! use service_auth::skew::{Calibration, ClockOffset, ClockSkew};
//! use service_auth::time::Now;
//!
//! let provider = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let host = provider + Duration::from_millis(30_400); // the host runs 30.4 s ahead
//!
//! let mut skew = ClockSkew::new();
//! let calibration = skew.observe(provider, host);
//! assert_eq!(
//!     calibration,
//!     Calibration::Adjusted { from: ClockOffset::ZERO, to: ClockOffset::from_seconds(-31) }
//! );
//! assert_eq!(skew.offset().to_string(), "31 s ahead of");
//!
//! // An assertion signed at host time `host` is dated by the provider's clock.
//! let corrected = skew.correct(Now::new(Instant::now(), host));
//! assert!(corrected.wall() <= provider);
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{debug, trace, warn};

use crate::error::{ProviderError, RetryAdvice};
use crate::response::server_date;
use crate::time::Now;

/// The largest offset that is corrected: one hour. A `Date` further from the
/// host clock is refused, and an assertion refused for its times then ends in
/// a [`ClockSkewError`] that asks for the host clock to be set.
pub const MAX_CLOCK_OFFSET: Duration = Duration::from_secs(60 * 60);

/// The smallest change of the offset acted on: two seconds, the `Date`
/// header's one-second resolution plus a second of network delay.
pub const CALIBRATION_THRESHOLD: Duration = Duration::from_secs(2);

/// Offsets from this size on are logged at `warn` when learned: no host kept
/// in step by NTP is ten seconds off.
pub const WARN_CLOCK_OFFSET: Duration = Duration::from_secs(10);

/// How far the provider's clock is ahead of the host's, in whole seconds:
/// positive when the host clock is behind, negative when it is ahead.
///
/// `Display` says how the host clock stands against the provider's, so that
/// it reads in "the host clock is … the provider's": `30 s behind`,
/// `30 s ahead of`, or `level with`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockOffset(i64);

impl ClockOffset {
    /// No offset.
    pub const ZERO: Self = Self(0);

    /// An offset of `seconds` (provider minus host).
    pub const fn from_seconds(seconds: i64) -> Self {
        Self(seconds)
    }

    /// The offset in seconds (provider minus host).
    pub const fn seconds(self) -> i64 {
        self.0
    }

    /// The offset measured from a provider's `server_date` and the host's
    /// wall clock when the response `arrived`: `server_date - arrived`,
    /// floored to whole seconds (see the [module documentation](self) for
    /// why this errs on the safe side). Saturates at the ends of `i64`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use service_auth::skew::ClockOffset;
    ///
    /// let date = UNIX_EPOCH + Duration::from_secs(1_000);
    /// let arrived = UNIX_EPOCH + Duration::from_millis(970_200);
    /// assert_eq!(ClockOffset::between(date, arrived).seconds(), 29);
    /// let arrived = UNIX_EPOCH + Duration::from_millis(1_000_200);
    /// assert_eq!(ClockOffset::between(date, arrived).seconds(), -1);
    /// ```
    pub fn between(server_date: SystemTime, arrived: SystemTime) -> Self {
        let nanos = signed_nanos(server_date) - signed_nanos(arrived);
        let seconds = nanos.div_euclid(1_000_000_000);
        let saturated = seconds.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
        // The clamp above keeps the value inside `i64`.
        Self(i64::try_from(saturated).unwrap_or_default())
    }

    /// The size of the offset, whatever its direction.
    pub fn magnitude(self) -> Duration {
        Duration::from_secs(self.0.unsigned_abs())
    }

    /// `wall` moved by the offset: a host reading turned into the provider's
    /// time. A result outside `SystemTime`'s range leaves `wall` unchanged.
    pub fn apply(self, wall: SystemTime) -> SystemTime {
        let shifted = if self.0 >= 0 {
            wall.checked_add(self.magnitude())
        } else {
            wall.checked_sub(self.magnitude())
        };
        shifted.unwrap_or(wall)
    }

    /// Whether `self` and `other` differ by [`CALIBRATION_THRESHOLD`] or more.
    pub fn differs_from(self, other: Self) -> bool {
        self.0.abs_diff(other.0) >= CALIBRATION_THRESHOLD.as_secs()
    }

    fn is_refused(self) -> bool {
        self.magnitude() > MAX_CLOCK_OFFSET
    }
}

impl fmt::Display for ClockOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.unsigned_abs();
        match self.0.signum() {
            1 => write!(f, "{seconds} s behind"),
            -1 => write!(f, "{seconds} s ahead of"),
            _ => f.write_str("level with"),
        }
    }
}

/// The sans-IO estimator of the provider's clock offset.
///
/// Feed it the `Date` of each response from the token endpoint with
/// [`observe`](Self::observe) (or [`observe_response`](Self::observe_response)),
/// and pass the [`Now`] of each assertion through [`correct`](Self::correct)
/// before signing. [`Acquirer`](crate::acquire::Acquirer) does both.
///
/// Only the wall-clock part of a `Now` is corrected: deadlines and token
/// expiry stay on the host's monotonic clock.
#[derive(Clone, Debug)]
pub struct ClockSkew {
    offset: ClockOffset,
    enabled: bool,
}

/// What one measurement did to a [`ClockSkew`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Calibration {
    /// The measurement is within [`CALIBRATION_THRESHOLD`] of the offset in
    /// use, which stays.
    Unchanged {
        /// The offset measured.
        measured: ClockOffset,
    },
    /// The offset in use changed.
    Adjusted {
        /// The offset used until now.
        from: ClockOffset,
        /// The offset used from now on.
        to: ClockOffset,
    },
    /// The measurement is beyond [`MAX_CLOCK_OFFSET`] and was ignored.
    Refused {
        /// The offset measured.
        measured: ClockOffset,
    },
    /// The estimator is [disabled](ClockSkew::disabled).
    Disabled,
}

impl ClockSkew {
    /// An estimator with no offset yet.
    pub fn new() -> Self {
        Self {
            offset: ClockOffset::ZERO,
            enabled: true,
        }
    }

    /// An estimator that ignores every measurement: assertions are dated by
    /// the host clock and the `iat` backdate alone.
    pub fn disabled() -> Self {
        Self {
            offset: ClockOffset::ZERO,
            enabled: false,
        }
    }

    /// Whether measurements are taken into account.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The offset in use.
    pub fn offset(&self) -> ClockOffset {
        self.offset
    }

    /// `now` with its wall clock moved to the provider's time, for signing
    /// an assertion; the monotonic part is unchanged.
    pub fn correct(&self, now: Now) -> Now {
        Now::new(now.instant(), self.offset.apply(now.wall()))
    }

    /// Takes one measurement: the provider's `server_date` against the
    /// host's wall clock when the response `arrived`. Logs an adjustment at
    /// `debug` (at `warn` from [`WARN_CLOCK_OFFSET`] on) and a refusal at
    /// `warn`.
    pub fn observe(&mut self, server_date: SystemTime, arrived: SystemTime) -> Calibration {
        if !self.enabled {
            return Calibration::Disabled;
        }
        let measured = ClockOffset::between(server_date, arrived);
        if measured.is_refused() {
            warn!(
                offset_seconds = measured.seconds(),
                limit_seconds = MAX_CLOCK_OFFSET.as_secs(),
                "the provider's Date header is too far from the host clock to correct; ignored"
            );
            return Calibration::Refused { measured };
        }
        if !measured.differs_from(self.offset) {
            trace!(
                offset_seconds = measured.seconds(),
                "provider clock measured; offset unchanged"
            );
            return Calibration::Unchanged { measured };
        }
        let from = std::mem::replace(&mut self.offset, measured);
        log_adjustment(from, measured);
        Calibration::Adjusted { from, to: measured }
    }

    /// Takes a measurement from `response`'s `Date` header, if it has a
    /// valid one; see [`observe`](Self::observe).
    pub fn observe_response<B>(
        &mut self,
        response: &http::Response<B>,
        arrived: SystemTime,
    ) -> Option<Calibration> {
        Some(self.observe(server_date(response)?, arrived))
    }
}

impl Default for ClockSkew {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a provider's `error_description` blames the assertion's times:
/// issued in the future, not yet valid, expired, or a named time claim.
///
/// Matches the wording of ZITADEL ("issuedAt of token is in the future"),
/// oidc-provider ("jwt issued in the future"), Keycloak ("Token is not
/// active"), Entra ID ("not within its valid time range"), and this crate's
/// mock server, case-insensitively and by whole words, so "associated" does
/// not count as `iat`.
///
/// # Examples
///
/// ```
/// use service_auth::skew::mentions_assertion_time;
///
/// assert!(mentions_assertion_time("issuedAt of token is in the future"));
/// assert!(mentions_assertion_time("Client assertion is not within its valid time range."));
/// assert!(!mentions_assertion_time("no key is associated with this kid"));
/// ```
pub fn mentions_assertion_time(description: &str) -> bool {
    const WORDS: [&str; 8] = [
        "future", "expired", "iat", "exp", "nbf", "issuedat", "clock", "skew",
    ];
    const PHRASES: [&str; 3] = ["not yet valid", "not active", "time range"];
    let lower = description.to_lowercase();
    let mut words = lower.split(|c: char| !c.is_alphanumeric());
    words.any(|word| WORDS.contains(&word)) || PHRASES.iter().any(|p| lower.contains(p))
}

/// The provider refused an assertion for its times, and its `Date` header
/// shows the host clock is off.
///
/// Arises only after [`Acquirer`](crate::acquire::Acquirer) could not fix
/// the refusal with its one immediate retry: either the offset is beyond
/// [`MAX_CLOCK_OFFSET`] (permanent: the host clock must be set), or the
/// provider refused the corrected assertion too while its `Date` moved again
/// (transient: the next assertion uses the newest offset).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{provider}; the host clock appears to be {offset} the provider's (from its Date header){}",
    advice(*corrected)
)]
pub struct ClockSkewError {
    // Boxed so that this variant does not make every `TokenError` larger.
    provider: Box<ProviderError>,
    offset: ClockOffset,
    corrected: bool,
}

impl ClockSkewError {
    pub(crate) fn new(provider: ProviderError, offset: ClockOffset, corrected: bool) -> Self {
        Self {
            provider: Box::new(provider),
            offset,
            corrected,
        }
    }

    /// The provider's refusal.
    pub fn provider(&self) -> &ProviderError {
        &self.provider
    }

    /// The offset measured from the provider's `Date` header.
    pub fn offset(&self) -> ClockOffset {
        self.offset
    }

    /// Whether later assertions are corrected by this offset; `false` when
    /// it is beyond [`MAX_CLOCK_OFFSET`].
    pub fn is_corrected(&self) -> bool {
        self.corrected
    }

    /// What retrying can achieve: a corrected offset may let the next
    /// assertion through; an offset too large to correct needs the host
    /// clock set first.
    pub fn retry(&self) -> RetryAdvice {
        if self.corrected {
            RetryAdvice::Transient { after: None }
        } else {
            RetryAdvice::Permanent
        }
    }
}

fn advice(corrected: bool) -> String {
    if corrected {
        "; the next assertion is corrected".to_owned()
    } else {
        format!(
            ", more than the {} s this library corrects: set the host clock right (NTP)",
            MAX_CLOCK_OFFSET.as_secs()
        )
    }
}

fn log_adjustment(from: ClockOffset, to: ClockOffset) {
    if to.magnitude() >= WARN_CLOCK_OFFSET {
        warn!(
            offset_seconds = to.seconds(),
            previous_seconds = from.seconds(),
            "the host clock is off from the provider's (by its Date header); assertions are \
             corrected, but the host clock should be set right (NTP)"
        );
    } else {
        debug!(
            offset_seconds = to.seconds(),
            previous_seconds = from.seconds(),
            "clock offset to the provider calibrated from its Date header"
        );
    }
}

/// Nanoseconds since the Unix epoch, negative before it.
fn signed_nanos(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i128::try_from(since.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => i128::try_from(before.duration().as_nanos()).map_or(i128::MIN, |n| -n),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use http::StatusCode;

    use super::*;
    use crate::error::ErrorCode;

    const BASE: u64 = 1_700_000_000;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(BASE) + Duration::from_millis(millis)
    }

    fn seconds(n: i64) -> ClockOffset {
        ClockOffset::from_seconds(n)
    }

    #[test]
    fn measurement_floors_towards_the_safe_side() {
        // Provider and host in step: `Date` is truncated and the response
        // arrives later, so the measurement is at most zero.
        assert_eq!(ClockOffset::between(at(0), at(0)), seconds(0));
        assert_eq!(ClockOffset::between(at(0), at(1)), seconds(-1));
        assert_eq!(ClockOffset::between(at(0), at(999)), seconds(-1));
        // Host 30.4 s ahead, behind.
        assert_eq!(ClockOffset::between(at(0), at(30_400)), seconds(-31));
        assert_eq!(ClockOffset::between(at(30_000), at(400)), seconds(29));
        // Before the epoch.
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(ClockOffset::between(before, UNIX_EPOCH), seconds(-2));
        assert_eq!(ClockOffset::between(UNIX_EPOCH, before), seconds(1));
    }

    #[test]
    fn measurement_saturates() {
        let span = Duration::from_secs(i64::MAX.unsigned_abs() / 2 + 1);
        if let (Some(far), Some(past)) =
            (UNIX_EPOCH.checked_add(span), UNIX_EPOCH.checked_sub(span))
        {
            assert_eq!(ClockOffset::between(far, past).seconds(), i64::MAX);
            assert_eq!(ClockOffset::between(past, far).seconds(), i64::MIN);
        }
        let offset = ClockOffset::from_seconds(i64::MIN);
        assert_eq!(offset.magnitude(), Duration::from_secs(1 << 63));
        let offset = ClockOffset::from_seconds(i64::MAX);
        assert_eq!(offset.apply(at(0)), at(0), "out of range leaves the time");
    }

    #[test]
    fn apply_moves_the_wall_clock_both_ways() {
        assert_eq!(seconds(30).apply(at(0)), at(30_000));
        assert_eq!(seconds(-30).apply(at(30_000)), at(0));
        assert_eq!(ClockOffset::ZERO.apply(at(5)), at(5));
    }

    #[test]
    fn display_reads_as_the_host_against_the_provider() {
        assert_eq!(seconds(30).to_string(), "30 s behind");
        assert_eq!(seconds(-7).to_string(), "7 s ahead of");
        assert_eq!(ClockOffset::ZERO.to_string(), "level with");
    }

    #[test]
    fn small_differences_are_noise() {
        let mut skew = ClockSkew::new();
        for arrived in [0, 500, 999] {
            let calibration = skew.observe(at(0), at(arrived));
            assert!(
                matches!(calibration, Calibration::Unchanged { .. }),
                "{calibration:?}"
            );
        }
        assert_eq!(skew.offset(), ClockOffset::ZERO);
        assert!(seconds(2).differs_from(ClockOffset::ZERO));
        assert!(!seconds(-1).differs_from(ClockOffset::ZERO));
    }

    #[test]
    fn follows_the_latest_significant_measurement() {
        let mut skew = ClockSkew::new();
        assert_eq!(
            skew.observe(at(0), at(30_200)),
            Calibration::Adjusted {
                from: ClockOffset::ZERO,
                to: seconds(-31)
            }
        );
        // Within the dead band of the offset in use: kept.
        assert_eq!(
            skew.observe(at(0), at(29_500)),
            Calibration::Unchanged {
                measured: seconds(-30)
            }
        );
        assert_eq!(skew.offset(), seconds(-31));
        // The host clock was set right: back to zero.
        assert_eq!(
            skew.observe(at(10_000), at(10_100)),
            Calibration::Adjusted {
                from: seconds(-31),
                to: seconds(-1)
            }
        );
    }

    #[test]
    fn absurd_offsets_are_refused_and_change_nothing() {
        let mut skew = ClockSkew::new();
        skew.observe(at(0), at(40_000));
        let limit = MAX_CLOCK_OFFSET.as_secs();
        let far_ahead = at(0) + Duration::from_secs(limit + 1);
        assert_eq!(
            skew.observe(far_ahead, at(0)),
            Calibration::Refused {
                measured: ClockOffset::from_seconds(3601)
            }
        );
        assert_eq!(
            skew.observe(UNIX_EPOCH, at(0)),
            Calibration::Refused {
                measured: ClockOffset::from_seconds(-1_700_000_000)
            }
        );
        assert_eq!(skew.offset(), seconds(-40));
        // Exactly the limit is still corrected.
        let at_limit = at(0) + MAX_CLOCK_OFFSET;
        assert!(matches!(
            skew.observe(at_limit, at(0)),
            Calibration::Adjusted { to, .. } if to == seconds(3600)
        ));
    }

    #[test]
    fn disabled_estimator_ignores_everything() {
        let mut skew = ClockSkew::disabled();
        assert!(!skew.is_enabled());
        assert_eq!(skew.observe(at(0), at(60_000)), Calibration::Disabled);
        assert_eq!(skew.offset(), ClockOffset::ZERO);
        assert!(ClockSkew::default().is_enabled());
    }

    #[test]
    fn correct_moves_only_the_wall_clock() {
        let mut skew = ClockSkew::new();
        skew.observe(at(0), at(30_000));
        let instant = Instant::now();
        let corrected = skew.correct(Now::new(instant, at(30_000)));
        assert_eq!(corrected.instant(), instant);
        assert_eq!(corrected.wall(), at(0));
    }

    #[test]
    fn observe_response_reads_the_date_header() {
        let mut skew = ClockSkew::new();
        let date = httpdate::fmt_http_date(at(0));
        let response = http::Response::builder()
            .header(http::header::DATE, date)
            .body(())
            .unwrap();
        assert_eq!(
            skew.observe_response(&response, at(20_000)),
            Some(Calibration::Adjusted {
                from: ClockOffset::ZERO,
                to: seconds(-20)
            })
        );
        for bad in ["yesterday", "", "Sun, 06 Nov 1994 08:49:37"] {
            let response = http::Response::builder()
                .header(http::header::DATE, bad)
                .body(())
                .unwrap();
            assert_eq!(skew.observe_response(&response, at(0)), None, "{bad}");
        }
        assert_eq!(skew.observe_response(&http::Response::new(()), at(0)), None);
    }

    #[test]
    fn time_refusals_are_recognised() {
        for text in [
            "the assertion was issued in the future: iat is 25 s ahead of the server clock",
            "jwt issued in the future",
            "assertion issued in the future",
            "issuedAt of token is in the future",
            "issuedAt of token is to old",
            "token has expired",
            "Token is not active",
            "AADSTS700024: Client assertion is not within its valid time range.",
            "the client assertion is not valid for another 30 s (nbf); check the host clock",
            "claim `iat` must not be in the future",
        ] {
            assert!(mentions_assertion_time(text), "{text}");
        }
        for text in [
            "no key is associated with this kid",
            "invalid client secret",
            "aud must contain the issuer",
            "unknown key id (kid)",
            "expiry policy",
            "",
        ] {
            assert!(!mentions_assertion_time(text), "{text}");
        }
    }

    fn refusal() -> ProviderError {
        ProviderError {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::InvalidGrant,
            description: Some("assertion issued in the future".to_owned()),
            uri: None,
            retry_after: None,
        }
    }

    #[test]
    fn error_reports_the_offset_and_what_to_do() {
        let corrected = ClockSkewError::new(refusal(), seconds(-30), true);
        let shown = corrected.to_string();
        assert!(shown.starts_with(&refusal().to_string()), "{shown}");
        assert!(
            shown.ends_with(
                "; the host clock appears to be 30 s ahead of the provider's (from its Date \
                 header); the next assertion is corrected"
            ),
            "{shown}"
        );
        assert_eq!(corrected.retry(), RetryAdvice::Transient { after: None });
        assert!(corrected.is_corrected());
        assert_eq!(corrected.offset(), seconds(-30));
        assert_eq!(corrected.provider(), &refusal());

        let refused = ClockSkewError::new(refusal(), seconds(7200), false);
        let shown = refused.to_string();
        assert!(
            shown.ends_with(
                "the host clock appears to be 7200 s behind the provider's (from its Date \
                 header), more than the 3600 s this library corrects: set the host clock \
                 right (NTP)"
            ),
            "{shown}"
        );
        assert_eq!(refused.retry(), RetryAdvice::Permanent);
    }
}
