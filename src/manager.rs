//! The token manager: a sans-IO policy that owns the cached access token.
//!
//! [`TokenManager`] decides, for a `now` it is given, whether the cached token
//! may be served, when a new one should be fetched (ahead of expiry, with
//! jitter), and how long to wait after a failure. It performs no IO, reads no
//! clock and draws randomness only from the [`Rng`] it was built with, so one
//! seed and one sequence of inputs reproduce one sequence of decisions.
//!
//! The drivers (`Authenticator` on tokio, `BlockingAuthenticator` on
//! threads) run the exchanges; this module says when.
//!
//! # Clock domain
//!
//! Every deadline is a monotonic [`Instant`]. A token's expiry is the
//! `Instant` its response was handled at plus `expires_in` (see
//! [`Now`](crate::time::Now)). Where `Instant` stops during system suspend,
//! a token can outlive its expiry across a suspend; the safety margin does
//! not cover that, and [`TokenManager::invalidate`] after a resource server's
//! `401` is the recovery.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{RetryAdvice, TokenError};
use crate::rng::Rng;
use crate::time::{Clock, Deadline};
use crate::token::Token;

/// The longest duration the policy accepts for any of its settings.
///
/// Clamping to a year keeps every `Instant + Duration` the manager computes
/// far inside the range of the platform's clock.
const MAX_POLICY_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// When to refresh, how long to serve, and how to wait after failures.
///
/// Build it with [`RefreshPolicy::default`] and change the fields you need:
///
/// ```
/// # use std::time::Duration;
/// # use service_auth::manager::RefreshPolicy;
/// let mut policy = RefreshPolicy::default();
/// policy.margin = Duration::from_secs(120);
/// ```
///
/// # Rules
///
/// For a token that arrived at `R` and expires at `E` (lifetime `L = E - R`):
///
/// - it is served until `E - min(safety, L / 10)` and never after;
/// - it is refreshed at `E - w - j`, where `w = min(margin, L / 2)` and `j` is
///   drawn uniformly from `[0, jitter × w)` once per token; the point is
///   clamped into `[R + L / 2, E - min(safety, L / 10)]`;
/// - a token without expiry (a personal access token) is never refreshed;
/// - a token whose lifetime the provider did not state follows the same rules
///   on the expiry the response parser assumed.
///
/// After a transient failure the next attempt waits a decorrelated-jitter
/// backoff: `min(backoff_max, uniform(backoff_initial, 3 × previous))`,
/// starting from `backoff_initial`, and at least the provider's
/// `Retry-After` (itself capped at `permanent_hold_off`). After a permanent
/// failure no attempt is made for `permanent_hold_off`, or until
/// [`TokenManager::reset`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// How long before expiry to refresh, at most half the token's lifetime.
    /// Default 60 s.
    pub margin: Duration,
    /// How much earlier than `margin` a refresh may randomly start, as a
    /// fraction of the refresh window, so that many instances started
    /// together do not refresh together. Clamped to `[0, 1]`. Default 0.25.
    pub jitter: f64,
    /// How long before expiry a token stops being served, at most a tenth of
    /// its lifetime: covers the time the token spends travelling to the
    /// resource server and small clock differences. Default 5 s.
    pub safety: Duration,
    /// The first backoff after a transient failure, and the shortest. Default 1 s.
    pub backoff_initial: Duration,
    /// The longest backoff after transient failures. Default 30 s.
    pub backoff_max: Duration,
    /// How long to make no attempt after a permanent failure (a wrong secret,
    /// an unknown key), unless [`TokenManager::reset`] is called. Default 5 min.
    pub permanent_hold_off: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            margin: Duration::from_secs(60),
            jitter: 0.25,
            safety: Duration::from_secs(5),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            permanent_hold_off: Duration::from_secs(5 * 60),
        }
    }
}

impl RefreshPolicy {
    /// The policy with every value brought into range: durations at most a
    /// year, `jitter` in `[0, 1]` (0 when not a number), a non-zero
    /// `backoff_initial`, `backoff_max >= backoff_initial` and
    /// `permanent_hold_off >= backoff_max`.
    #[must_use]
    pub fn normalized(mut self) -> Self {
        for value in [
            &mut self.margin,
            &mut self.safety,
            &mut self.backoff_initial,
            &mut self.backoff_max,
            &mut self.permanent_hold_off,
        ] {
            *value = (*value).min(MAX_POLICY_DURATION);
        }
        self.jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        // A zero backoff would turn a failing provider into a busy loop.
        self.backoff_initial = self.backoff_initial.max(Duration::from_millis(1));
        self.backoff_max = self.backoff_max.max(self.backoff_initial);
        // A permanent error is retried no sooner than a transient one.
        self.permanent_hold_off = self.permanent_hold_off.max(self.backoff_max);
        self
    }
}

/// The number of a token in the sequence a manager has cached: 1 for the
/// first, one more for each after it.
///
/// A resource server's rejection names the generation it rejected, so that
/// callers that all saw the same token cause at most one refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(u64);

impl Generation {
    /// The generation as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Permission to run one token acquisition, handed out by
/// [`TokenManager::poll_fetch`] and consumed by
/// [`TokenManager::handle_token`] or [`TokenManager::handle_failure`].
///
/// It cannot be copied, so each fetch has exactly one result.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a fetch that is never completed blocks every later fetch"]
pub struct FetchId {
    manager: u64,
    serial: u64,
}

impl FetchId {
    /// The fetch's number within its manager, for logs.
    pub fn serial(&self) -> u64 {
        self.serial
    }
}

/// Why a deadline from [`TokenManager::poll_timeout`] exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Wake {
    /// The cached token reaches its refresh point: a fetch becomes due.
    RefreshAhead,
    /// A backoff after a transient failure ends: a fetch may start again.
    Backoff,
    /// The cached token stops being servable (its expiry minus the safety margin).
    Expiry,
    /// A hold-off after a permanent failure ends: a fetch may start again.
    HoldOff,
}

impl Wake {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RefreshAhead => "refresh ahead",
            Self::Backoff => "backoff",
            Self::Expiry => "expiry",
            Self::HoldOff => "hold-off",
        }
    }
}

impl fmt::Display for Wake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cached token with its generation and the points in time that govern it.
/// Dereferences to the [`Token`].
///
/// `Debug` shows the generation, the schedule and the token's redacted
/// `Debug`, never the token itself.
pub struct CachedToken {
    token: Token,
    /// `Bearer <token>`, built once, marked sensitive; `None` when the token
    /// holds characters a header cannot carry.
    header: Option<http::HeaderValue>,
    generation: Generation,
    refresh_at: Option<Instant>,
    serve_until: Option<Instant>,
}

impl CachedToken {
    /// The token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The `Authorization` header value `Bearer <token>`, marked sensitive;
    /// `None` when the token holds characters a header cannot carry (the
    /// response parser refuses such tokens).
    pub fn header_value(&self) -> Option<&http::HeaderValue> {
        self.header.as_ref()
    }

    /// The token's generation.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// When a refresh becomes due; `None` for a token that never expires.
    pub fn refresh_at(&self) -> Option<Instant> {
        self.refresh_at
    }

    /// The first instant at which the token is no longer served; `None` for
    /// a token that never expires.
    pub fn serve_until(&self) -> Option<Instant> {
        self.serve_until
    }

    /// Whether the token may be served at `now`.
    pub fn is_servable(&self, now: Instant) -> bool {
        self.serve_until.is_none_or(|until| now < until)
    }

    /// Whether the token may be served at `now` with no refresh due.
    pub fn is_fresh(&self, now: Instant) -> bool {
        // `refresh_at <= serve_until`, so a fresh token is also servable.
        self.refresh_at.is_none_or(|at| now < at)
    }
}

impl Deref for CachedToken {
    type Target = Token;

    fn deref(&self) -> &Token {
        &self.token
    }
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &self.token)
            .field("generation", &self.generation)
            .field("refresh_at", &self.refresh_at)
            .field("serve_until", &self.serve_until)
            .finish_non_exhaustive()
    }
}

/// The cached token and how long callers may be given it without asking the
/// manager: what the drivers publish for their lock-free fast path.
///
/// Before [`until`](Self::until), [`TokenManager::token`] answers with this
/// token and [`TokenManager::poll_fetch`] has nothing to start, as long as no
/// input (a fetch result, [`TokenManager::invalidate`],
/// [`TokenManager::reset`]) changes the manager; a driver republishes the
/// lease after every input.
#[derive(Clone, Debug)]
pub struct Lease {
    token: Arc<CachedToken>,
    until: Option<Instant>,
}

impl Lease {
    /// The token.
    pub fn token(&self) -> &Arc<CachedToken> {
        &self.token
    }

    /// The first instant at which the manager must be asked again; `None`
    /// for never (a token that never expires).
    pub fn until(&self) -> Option<Instant> {
        self.until
    }

    /// Whether the token may be handed out at `now` without asking the manager.
    #[inline]
    pub fn covers(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// A [`Lease`] as the drivers publish it to their cached-token path: its
/// deadline converted once for the driver's clock (see [`Deadline`]), so
/// that a read costs one cheap clock reading.
#[derive(Debug)]
pub struct PublishedLease {
    lease: Lease,
    deadline: Deadline,
}

impl PublishedLease {
    /// Publishes `lease` for reads on `clock`.
    pub fn new(lease: Lease, clock: &dyn Clock) -> Self {
        let deadline = Deadline::new(lease.until(), clock);
        Self { lease, deadline }
    }

    /// The lease.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The token, while `clock` is before the lease's end.
    #[inline]
    pub fn current(&self, clock: &dyn Clock) -> Option<&Arc<CachedToken>> {
        self.deadline.is_ahead(clock).then(|| self.lease.token())
    }
}

/// What the manager can offer a caller at some `now`.
#[derive(Debug)]
#[non_exhaustive]
pub enum TokenState<'a> {
    /// A token to serve; no refresh is due.
    Fresh(&'a Arc<CachedToken>),
    /// A token to serve; a refresh is due, and either in flight or startable
    /// with [`TokenManager::poll_fetch`] (unless a backoff or hold-off is
    /// running, in which case the token is served until it stops being
    /// servable).
    RefreshDue(&'a Arc<CachedToken>),
    /// No token to serve; a fetch is in flight or may start now: wait for its
    /// result.
    Pending,
    /// No token to serve and no fetch may start before a backoff or hold-off
    /// ends: give the caller this error.
    Unavailable(Error),
}

/// Why a driver could not hand out an access token.
///
/// `Clone`, so that every caller waiting on one fetch gets its own copy; the
/// [`TokenError`] inside is shared, not copied.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token request made for this caller failed.
    #[error(transparent)]
    Token(Arc<TokenError>),
    /// A recent token request failed with a transient error, no valid token
    /// is cached, and the next request waits for a backoff to end.
    #[error(
        "no access token available: the last token request failed and the next one is due in {} ms; last error: {last}",
        retry_in.as_millis()
    )]
    BackingOff {
        /// The error of the last token request.
        last: Arc<TokenError>,
        /// How long until the next request may start.
        retry_in: Duration,
    },
    /// A token request failed with a permanent error (a wrong secret, an
    /// unknown key, a rejected personal access token); no request is made
    /// until the hold-off ends or `reset()` is called.
    #[error(
        "no access token available: token requests are held off for {} s after a permanent error; fix the configuration and call `reset()`; last error: {last}",
        retry_in.as_secs()
    )]
    HeldOff {
        /// The error of the last token request.
        last: Arc<TokenError>,
        /// How long until the next request may start on its own.
        retry_in: Duration,
    },
    /// The access token holds characters an `Authorization` header cannot
    /// carry (the response parser refuses such tokens, so this indicates a
    /// custom token source).
    #[error("the access token cannot be carried in an `Authorization` header")]
    InvalidHeader,
    /// The fetch ended without a result: the async runtime shut down, or
    /// the transport panicked.
    #[error(
        "the token request ended without a result (the runtime shut down or the transport panicked); retry on a running runtime"
    )]
    FetchAborted,
}

impl Error {
    /// The error of the token request behind this one, if any.
    pub fn token_error(&self) -> Option<&TokenError> {
        match self {
            Self::Token(last) | Self::BackingOff { last, .. } | Self::HeldOff { last, .. } => {
                Some(&**last)
            }
            Self::InvalidHeader | Self::FetchAborted => None,
        }
    }

    /// What retrying can achieve.
    pub fn retry(&self) -> RetryAdvice {
        match self {
            Self::Token(last) => last.retry(),
            Self::BackingOff { retry_in, .. } => RetryAdvice::Transient {
                after: Some(*retry_in),
            },
            Self::HeldOff { .. } | Self::InvalidHeader => RetryAdvice::Permanent,
            Self::FetchAborted => RetryAdvice::Transient { after: None },
        }
    }
}

impl From<TokenError> for Error {
    fn from(error: TokenError) -> Self {
        Self::Token(Arc::new(error))
    }
}

/// A result handed to a manager for a fetch it has not in flight: a bug in
/// the driver, not a provider fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "fetch {serial} is not in flight on this token manager; a driver passed a result to the wrong manager"
)]
pub struct FetchMismatch {
    /// The serial of the fetch the result belonged to.
    pub serial: u64,
}

/// The policy machine that owns the cached access token.
///
/// # Driving it
///
/// The manager is a value that a driver feeds with inputs and drains of
/// outputs, passing `now` every time:
///
/// - inputs: [`handle_token`](Self::handle_token) and
///   [`handle_failure`](Self::handle_failure) (the result of a fetch),
///   [`handle_timeout`](Self::handle_timeout) (a deadline passed),
///   [`invalidate`](Self::invalidate) (a resource server rejected a token),
///   [`reset`](Self::reset) (the configuration was fixed);
/// - outputs: [`poll_fetch`](Self::poll_fetch) (start a token acquisition
///   now), [`poll_timeout`](Self::poll_timeout) (when to call
///   `handle_timeout` next, and why), and [`token`](Self::token) (what to
///   give a caller).
///
/// After every input, drain in this order: first `poll_fetch(now)` (at most
/// one fetch is ever in flight, so a single call suffices), then
/// `poll_timeout()`, then answer waiting callers from `token(now)`. A caller
/// arriving between inputs needs only `token(now)`, plus `poll_fetch(now)`
/// when the state is [`TokenState::Pending`] or [`TokenState::RefreshDue`].
///
/// Single flight is enforced here: `poll_fetch` returns `None` while a fetch
/// is in flight, and the [`FetchId`] it hands out must come back exactly once
/// ([`handle_result`](Self::handle_result) takes either outcome and returns
/// what the waiting callers get).
///
/// A driver with a lock-free read path publishes [`lease`](Self::lease)
/// after every input: until the lease's deadline, a caller can be given its
/// token without touching the manager.
///
/// # Implementation note
///
/// The manager keeps no timers of its own: every answer is computed from the
/// `now` passed in, so a driver that never calls `handle_timeout` still gets
/// correct answers from `token` and `poll_fetch`; `handle_timeout` only
/// retires passed deadlines so that `poll_timeout` moves on.
///
/// ```
/// use std::time::{Duration, Instant};
/// use service_auth::manager::{RefreshPolicy, TokenManager, TokenState, Wake};
/// use service_auth::rng::Rng;
/// use service_auth::secret::AccessToken;
/// use service_auth::token::Token;
///
/// let start = Instant::now();
/// let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(1));
///
/// // 1. Nothing is cached: a fetch is due at once.
/// let fetch = manager.poll_fetch(start).expect("a fetch is due");
/// // 2. The driver runs the exchange and hands back the token.
/// let expires = start + Duration::from_secs(3600);
/// let token = Token::new(AccessToken::new("t"), start, Some(expires), true, None);
/// let generation = manager.handle_token(fetch, token, start)?;
/// // 3. The token is served, and the next deadline says when to refresh.
/// assert!(matches!(manager.token(start), TokenState::Fresh(_)));
/// let (at, wake) = manager.poll_timeout().expect("a refresh is scheduled");
/// assert_eq!(wake, Wake::RefreshAhead);
/// assert!(at <= expires - Duration::from_secs(60));
/// # let _ = generation;
/// # Ok::<(), service_auth::manager::FetchMismatch>(())
/// ```
#[derive(Debug)]
pub struct TokenManager {
    policy: RefreshPolicy,
    rng: Rng,
    /// Tags this manager's [`FetchId`]s so a foreign one is recognised.
    id: u64,
    cached: Option<Arc<CachedToken>>,
    last_generation: u64,
    in_flight: Option<u64>,
    next_serial: u64,
    failure: Option<Failure>,
}

/// The last failure since the last success.
#[derive(Debug)]
struct Failure {
    error: Arc<TokenError>,
    /// Consecutive transient failures; 0 after a permanent one.
    attempts: u32,
    /// The last backoff drawn, the seed of the next one.
    backoff: Duration,
    /// When the next fetch may start; `None` once that point has passed
    /// and been handled.
    retry_at: Option<Instant>,
}

impl Failure {
    fn is_permanent(&self) -> bool {
        self.attempts == 0
    }

    fn blocks(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    fn wake(&self) -> Wake {
        if self.is_permanent() {
            Wake::HoldOff
        } else {
            Wake::Backoff
        }
    }
}

impl TokenManager {
    /// A manager with nothing cached, following `policy` (normalised with
    /// [`RefreshPolicy::normalized`]) and drawing jitter from `rng`.
    pub fn new(policy: RefreshPolicy, mut rng: Rng) -> Self {
        let id = rng.next_u64();
        Self {
            policy: policy.normalized(),
            rng,
            id,
            cached: None,
            last_generation: 0,
            in_flight: None,
            next_serial: 1,
            failure: None,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    /// The cached token, servable or not.
    pub fn cached(&self) -> Option<&Arc<CachedToken>> {
        self.cached.as_ref()
    }

    /// The cached token with the instant until which callers may be given it
    /// without asking the manager; `None` when nothing is cached.
    ///
    /// That instant is the refresh point while nothing is in flight or
    /// blocked; the end of a backoff or hold-off (but not before the refresh
    /// point) while one runs; and the end of servability while a fetch is in
    /// flight. It is never later than [`CachedToken::serve_until`].
    pub fn lease(&self) -> Option<Lease> {
        let cached = self.cached.as_ref()?;
        let blocked_until = self.failure.as_ref().and_then(|failure| failure.retry_at);
        let until = match (self.in_flight, cached.refresh_at, cached.serve_until) {
            (_, None, _) | (_, _, None) => None,
            (Some(_), Some(_), serve_until) => serve_until,
            (None, Some(refresh_at), Some(serve_until)) => {
                let blocked = blocked_until.map_or(refresh_at, |at| at.max(refresh_at));
                Some(blocked.min(serve_until))
            }
        };
        Some(Lease {
            token: Arc::clone(cached),
            until,
        })
    }

    /// Whether a fetch is in flight.
    pub fn is_fetching(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The error of the last fetch, when it failed.
    pub fn last_error(&self) -> Option<&TokenError> {
        self.failure.as_ref().map(|failure| &*failure.error)
    }

    /// What a caller can be given at `now`.
    pub fn token(&self, now: Instant) -> TokenState<'_> {
        if let Some(cached) = self.cached.as_ref().filter(|c| c.is_servable(now)) {
            return if cached.is_fresh(now) {
                TokenState::Fresh(cached)
            } else {
                TokenState::RefreshDue(cached)
            };
        }
        if self.in_flight.is_some() {
            return TokenState::Pending;
        }
        match &self.failure {
            Some(failure) if failure.blocks(now) => {
                TokenState::Unavailable(unavailable(failure, now))
            }
            _ => TokenState::Pending,
        }
    }

    /// Starts a fetch if one is due at `now`: nothing servable is cached, or
    /// the cached token's refresh point has passed; and no fetch is in
    /// flight, and no backoff or hold-off is running.
    #[must_use = "a fetch handed out must be run and its result handed back"]
    pub fn poll_fetch(&mut self, now: Instant) -> Option<FetchId> {
        if self.in_flight.is_some() || self.failure.as_ref().is_some_and(|f| f.blocks(now)) {
            return None;
        }
        if self
            .cached
            .as_ref()
            .is_some_and(|cached| cached.is_fresh(now))
        {
            return None;
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        self.in_flight = Some(serial);
        tracing::trace!(
            fetch = serial,
            cached = self.cached.is_some(),
            "starting token fetch"
        );
        Some(FetchId {
            manager: self.id,
            serial,
        })
    }

    /// Caches `token`, the result of `fetch`, as the newest generation and
    /// schedules its refresh. Clears any backoff or hold-off.
    ///
    /// # Errors
    ///
    /// [`FetchMismatch`] when `fetch` came from another manager: a bug in
    /// the driver. The token is then ignored.
    pub fn handle_token(
        &mut self,
        fetch: FetchId,
        token: Token,
        now: Instant,
    ) -> Result<Generation, FetchMismatch> {
        self.complete(fetch)?;
        self.failure = None;
        self.last_generation += 1;
        let generation = Generation(self.last_generation);
        let cached = self.schedule(token, generation);
        log_scheduled(&cached, now);
        self.cached = Some(Arc::new(cached));
        Ok(generation)
    }

    /// Records that `fetch` failed with `error` and decides when to try
    /// again. A cached token that is still servable keeps being served.
    ///
    /// # Errors
    ///
    /// [`FetchMismatch`] when `fetch` came from another manager: a bug in
    /// the driver. The error is then ignored.
    pub fn handle_failure(
        &mut self,
        fetch: FetchId,
        error: TokenError,
        now: Instant,
    ) -> Result<(), FetchMismatch> {
        self.fail(fetch, Arc::new(error), now)
    }

    fn fail(
        &mut self,
        fetch: FetchId,
        error: Arc<TokenError>,
        now: Instant,
    ) -> Result<(), FetchMismatch> {
        let serial = fetch.serial;
        self.complete(fetch)?;
        let previous = self.failure.take();
        let failure = match error.retry() {
            RetryAdvice::Transient { after } => self.transient(error, previous, after, now),
            RetryAdvice::Permanent => self.permanent(error, now),
        };
        tracing::debug!(
            fetch = serial,
            error = %failure.error,
            permanent = failure.is_permanent(),
            attempts = failure.attempts,
            retry_in_ms = wait_ms(failure.retry_at, now),
            serving_cached = self.cached.as_ref().is_some_and(|c| c.is_servable(now)),
            "token fetch failed"
        );
        self.failure = Some(failure);
        Ok(())
    }

    /// Hands the result of `fetch` to [`handle_token`](Self::handle_token)
    /// or [`handle_failure`](Self::handle_failure), and returns what the
    /// callers waiting on that fetch get: the new token, or the error.
    ///
    /// A [`FetchMismatch`] (a driver bug) is logged and reported to the
    /// waiters as [`Error::FetchAborted`].
    pub fn handle_result(
        &mut self,
        fetch: FetchId,
        result: Result<Token, TokenError>,
        now: Instant,
    ) -> Result<Arc<CachedToken>, Error> {
        let handled = match result {
            Ok(token) => self.handle_token(fetch, token, now).map(|_| Ok(())),
            Err(error) => {
                let error = Arc::new(error);
                let shared = Arc::clone(&error);
                self.fail(fetch, shared, now)
                    .map(|()| Err(Error::Token(error)))
            }
        };
        match handled {
            Ok(Ok(())) => self.cached.clone().ok_or(Error::FetchAborted),
            Ok(Err(error)) => Err(error),
            Err(mismatch) => {
                tracing::warn!(
                    fetch = mismatch.serial,
                    "fetch result for another token manager"
                );
                Err(Error::FetchAborted)
            }
        }
    }

    /// Handles the deadlines that have passed at `now`: drops a token that is
    /// no longer servable and ends a backoff or hold-off. A refresh that has
    /// become due is then returned by [`poll_fetch`](Self::poll_fetch).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(cached) = self.cached.take_if(|cached| !cached.is_servable(now)) {
            tracing::debug!(generation = cached.generation.0, "cached token expired");
        }
        if let Some(failure) = &mut self.failure
            && failure.retry_at.is_some_and(|at| at <= now)
        {
            failure.retry_at = None;
            tracing::debug!(wake = %failure.wake(), "token fetches allowed again");
        }
    }

    /// The next deadline at which [`handle_timeout`](Self::handle_timeout)
    /// has work to do, with the reason; `None` when nothing will happen
    /// without an input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, Wake)> {
        let expiry = self
            .cached
            .as_ref()
            .and_then(|cached| cached.serve_until)
            .map(|at| (at, Wake::Expiry));
        let next = if self.in_flight.is_some() {
            None
        } else if let Some(failure) = &self.failure
            && let Some(at) = failure.retry_at
        {
            Some((at, failure.wake()))
        } else {
            self.cached
                .as_ref()
                .and_then(|cached| cached.refresh_at)
                .map(|at| (at, Wake::RefreshAhead))
        };
        match (expiry, next) {
            (Some(a), Some(b)) => Some(if b.0 <= a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// Drops the cached token if it is of `generation`, because a resource
    /// server rejected it; returns whether it was dropped. A rejection of an
    /// older generation is ignored: a newer token is already cached.
    ///
    /// A token that never expires (a personal access token) cannot be
    /// refreshed, so its rejection is a permanent failure:
    /// [`TokenError::PersonalAccessTokenRejected`], held off like any other.
    ///
    /// Each accepted invalidation costs one token request; a resource server
    /// that rejects every token therefore turns each rejected call into one
    /// token request (callers that saw the same generation share it).
    pub fn invalidate(&mut self, generation: Generation, now: Instant) -> bool {
        let Some(cached) = self
            .cached
            .take_if(|cached| cached.generation == generation)
        else {
            tracing::trace!(
                generation = generation.0,
                "ignoring rejection of an older token"
            );
            return false;
        };
        tracing::debug!(
            generation = generation.0,
            "cached token rejected by a resource server"
        );
        if cached.token.expires_at().is_none() {
            let error = Arc::new(TokenError::PersonalAccessTokenRejected);
            self.failure = Some(self.permanent(error, now));
        }
        true
    }

    /// Lifts a backoff or hold-off: the next fetch may start at once. Call it
    /// after fixing the configuration (a new secret or key).
    pub fn reset(&mut self) {
        if self.failure.take().is_some() {
            tracing::debug!("token fetch backoff lifted by reset");
        }
    }

    fn complete(&mut self, fetch: FetchId) -> Result<(), FetchMismatch> {
        if fetch.manager != self.id || self.in_flight != Some(fetch.serial) {
            return Err(FetchMismatch {
                serial: fetch.serial,
            });
        }
        self.in_flight = None;
        Ok(())
    }

    fn schedule(&mut self, token: Token, generation: Generation) -> CachedToken {
        let header = token.header_value().ok();
        let Some(expires_at) = token.expires_at() else {
            return CachedToken {
                token,
                header,
                generation,
                refresh_at: None,
                serve_until: None,
            };
        };
        let received_at = token.received_at();
        let lifetime = expires_at.saturating_duration_since(received_at);
        let safety = self.policy.safety.min(lifetime / 10);
        let serve_until = expires_at.checked_sub(safety).unwrap_or(received_at);

        let window = self.policy.margin.min(lifetime / 2);
        let extra = window.mul_f64(self.policy.jitter * self.rng.next_fraction());
        let earliest = received_at + lifetime / 2;
        let refresh_at = expires_at
            .checked_sub(window + extra)
            .unwrap_or(received_at)
            .max(earliest)
            .min(serve_until);
        CachedToken {
            token,
            header,
            generation,
            refresh_at: Some(refresh_at),
            serve_until: Some(serve_until),
        }
    }

    fn transient(
        &mut self,
        error: Arc<TokenError>,
        previous: Option<Failure>,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Failure {
        let (attempts, last) = match previous {
            Some(failure) if !failure.is_permanent() => (failure.attempts, failure.backoff),
            _ => (0, self.policy.backoff_initial),
        };
        let backoff = self.decorrelated(last);
        let floor = retry_after
            .unwrap_or_default()
            .min(self.policy.permanent_hold_off);
        Failure {
            error,
            attempts: attempts.saturating_add(1),
            backoff,
            retry_at: Some(later(now, backoff.max(floor))),
        }
    }

    fn permanent(&self, error: Arc<TokenError>, now: Instant) -> Failure {
        Failure {
            error,
            attempts: 0,
            backoff: Duration::ZERO,
            retry_at: Some(later(now, self.policy.permanent_hold_off)),
        }
    }

    /// Decorrelated jitter: uniform in `[initial, 3 × last]`, capped.
    fn decorrelated(&mut self, last: Duration) -> Duration {
        let low = self.policy.backoff_initial;
        let high = last.saturating_mul(3).max(low);
        let span = (high - low).as_secs_f64() * self.rng.next_fraction();
        let drawn = low + Duration::try_from_secs_f64(span).unwrap_or(high - low);
        drawn.min(self.policy.backoff_max)
    }
}

/// `now + by`; the policy caps durations at a year, so the sum stays in range.
fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by).unwrap_or(now)
}

fn unavailable(failure: &Failure, now: Instant) -> Error {
    let last = Arc::clone(&failure.error);
    let retry_in = failure
        .retry_at
        .map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
    if failure.is_permanent() {
        Error::HeldOff { last, retry_in }
    } else {
        Error::BackingOff { last, retry_in }
    }
}

fn wait_ms(at: Option<Instant>, now: Instant) -> u64 {
    let wait = at.map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
}

fn log_scheduled(cached: &CachedToken, now: Instant) {
    let secs = |at: Option<Instant>| at.map(|at| at.saturating_duration_since(now).as_secs());
    tracing::debug!(
        generation = cached.generation.0,
        lifetime_s = cached.token.lifetime().map(|l| l.as_secs()),
        lifetime_known = cached.token.lifetime_known(),
        refresh_in_s = secs(cached.refresh_at),
        serve_for_s = secs(cached.serve_until),
        "access token cached"
    );
}
