//! [`BlockingAuthenticator`]: access tokens on plain threads, with no async
//! runtime.
//!
//! It drives the sans-IO [`TokenManager`] and [`Acquirer`] with any
//! [`BlockingTransport`], using only `std`: a lock-free read of the cached
//! token on the hot path, a mutex and a condition variable for single flight.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::acquire::{Acquirer, Settings, Step, builder_setters, debug_driver};
use crate::credentials::KeyRing;
use crate::error::{TokenError, TransportError, TransportErrorKind};
use crate::flow::ConfigError;
use crate::manager::{CachedToken, Error, FetchId, Generation, PublishedLease};
use crate::manager::{TokenManager, TokenState};
use crate::method::{Endpoints, Method};
use crate::time::Clock;
use crate::token::Token;
use crate::transport::BlockingTransport;
#[cfg(doc)]
use crate::{flow::RequestOptions, manager::RefreshPolicy};

/// A thread-safe source of access tokens for code without an async runtime.
///
/// Cheap to clone (a reference count); every clone shares one cached token.
///
/// - Reading a cached token that needs no refresh takes no lock: one atomic
///   load and one clock reading.
/// - When a token must be fetched, exactly one request goes out however many
///   threads are asking (single flight): one thread fetches, the others wait
///   for its result or its error.
/// - When a refresh is due but the cached token is still valid, callers get
///   the valid token at once and the refresh runs on another thread.
/// - With background refresh (on by default) a thread keeps the token fresh
///   ahead of expiry, so callers do not wait while the provider answers; it
///   holds only a weak reference and ends when the last clone is dropped.
///
/// The refresh rules (margin, jitter, backoff, hold-off) are those of
/// [`RefreshPolicy`]; see [`TokenManager`].
///
/// # Examples
///
/// ```
/// use service_auth::blocking::BlockingAuthenticator;
/// use service_auth::method::{Endpoints, Method};
/// use service_auth::secret::PersonalAccessToken;
/// # use service_auth::endpoint::{TokenEndpoint, UrlPolicy};
/// # struct NoNetwork;
/// # impl service_auth::transport::BlockingTransport for NoNetwork {
/// #     fn send(&self, _: http::Request<Vec<u8>>)
/// #         -> Result<http::Response<Vec<u8>>, service_auth::error::TransportError> {
/// #         unreachable!("a personal access token needs no request")
/// #     }
/// # }
/// # let endpoint = TokenEndpoint::parse("https://auth.example.com/token", UrlPolicy::https_only())?;
/// # let endpoints = Endpoints::Fixed { issuer: None, token_endpoint: endpoint };
///
/// let method = Method::from(PersonalAccessToken::new("pat-1234"));
/// let auth = BlockingAuthenticator::new(method, endpoints, NoNetwork);
/// let mut request = http::Request::new(());
/// let generation = auth.authorize(&mut request)?;
/// assert!(request.headers()["authorization"].is_sensitive());
/// # let _ = generation;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BlockingAuthenticator {
    inner: Arc<Inner>,
}

/// Configures a [`BlockingAuthenticator`]; from [`BlockingAuthenticator::builder`].
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct BlockingAuthenticatorBuilder {
    settings: Settings,
}

struct Inner {
    /// What the fast path reads: republished after every manager input.
    lease: ArcSwapOption<PublishedLease>,
    clock: Arc<dyn Clock>,
    transport: Box<dyn BlockingTransport>,
    state: Mutex<State>,
    /// Signalled whenever a fetch completes.
    completed: Condvar,
    /// Used by the one fetch in flight only.
    acquirer: Mutex<Acquirer>,
    method_name: &'static str,
    /// The signing keys, shared with the method inside the acquirer.
    key_ring: Option<KeyRing>,
    background: Option<Arc<Wakeup>>,
}

struct State {
    manager: TokenManager,
    /// How many fetches have completed; waiters wait for it to change.
    completions: u64,
    /// What the last completed fetch gave its waiters.
    last_outcome: Option<Outcome>,
}

type Outcome = Result<Arc<CachedToken>, Error>;

impl BlockingAuthenticator {
    /// An authenticator for `method` at `endpoints` over `transport`, with
    /// the default [`RefreshPolicy`], request options, system clock, an
    /// entropy seed and background refresh.
    ///
    /// The configuration is not checked here: call [`Method::validate`]
    /// first, or use [`builder`](Self::builder), whose `build` does.
    pub fn new(method: Method, endpoints: Endpoints, transport: impl BlockingTransport) -> Self {
        Self::from_settings(Settings::new(method, endpoints), Box::new(transport))
    }

    /// A builder for an authenticator for `method` at `endpoints`.
    pub fn builder(method: Method, endpoints: Endpoints) -> BlockingAuthenticatorBuilder {
        BlockingAuthenticatorBuilder {
            settings: Settings::new(method, endpoints),
        }
    }

    /// A valid access token: the cached one, or a new one when none is
    /// cached or the cached one is too close to expiry. Blocks while a token
    /// must be fetched.
    ///
    /// # Errors
    ///
    /// [`Error::Token`] when the fetch made for this call failed;
    /// [`Error::BackingOff`] or [`Error::HeldOff`] when no token is cached
    /// and a recent failure holds fetches back; [`Error::FetchAborted`] when
    /// the transport panicked.
    pub fn token(&self) -> Result<Arc<CachedToken>, Error> {
        if let Some(token) = self
            .inner
            .lease
            .load()
            .as_ref()
            .and_then(|lease| lease.current(&*self.inner.clock))
        {
            return Ok(Arc::clone(token));
        }
        self.inner.token_slow()
    }

    /// Sets `Authorization: Bearer <token>` on `request`, marked sensitive,
    /// and returns the token's generation for [`invalidate`](Self::invalidate).
    ///
    /// # Errors
    ///
    /// Those of [`token`](Self::token), and [`Error::InvalidHeader`].
    pub fn authorize<B>(&self, request: &mut http::Request<B>) -> Result<Generation, Error> {
        let token = self.token()?;
        let value = token.header_value().ok_or(Error::InvalidHeader)?;
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value.clone());
        Ok(token.generation())
    }

    /// Reports that a resource server rejected the token of `generation`
    /// (a `401`): it is dropped, and the next call fetches a new one. Reports
    /// of an older generation are ignored.
    pub fn invalidate(&self, generation: Generation) {
        self.inner.with_manager(|manager, now| {
            manager.invalidate(generation, now);
        });
    }

    /// Lifts a backoff or a hold-off after a permanent error: the next call
    /// may fetch at once. Call it after fixing the configuration, for
    /// example after replacing a key in the [`KeyRing`].
    pub fn reset(&self) {
        self.inner.with_manager(|manager, _| manager.reset());
    }

    /// The method's name: "private key JWT", "client credentials" or
    /// "personal access token".
    pub fn method_name(&self) -> &'static str {
        self.inner.method_name
    }

    /// The keys that sign assertions, for the private key JWT methods.
    ///
    /// Replacing the key ([`KeyRing::replace`], or
    /// [`KeyRing::replace_from_key_file`] to re-read a key file) takes
    /// effect at the next token request; the cached token keeps being
    /// served meanwhile, so no caller fails. `examples/key_rotation.rs`
    /// shows a rotation.
    pub fn key_ring(&self) -> Option<&KeyRing> {
        self.inner.key_ring.as_ref()
    }

    fn from_settings(settings: Settings, transport: Box<dyn BlockingTransport>) -> Self {
        let background = settings.background;
        let method_name = settings.method.name();
        let key_ring = settings.method.key_ring().cloned();
        let (manager, acquirer, clock) = settings.into_parts();
        let wakeup = background.then(|| Arc::new(Wakeup::default()));
        let inner = Arc::new(Inner {
            lease: ArcSwapOption::empty(),
            clock,
            transport,
            state: Mutex::new(State {
                manager,
                completions: 0,
                last_outcome: None,
            }),
            completed: Condvar::new(),
            acquirer: Mutex::new(acquirer),
            method_name,
            key_ring,
            background: wakeup.clone(),
        });
        if let Some(wakeup) = wakeup {
            start_background(&inner, wakeup);
        }
        Self { inner }
    }
}

impl fmt::Debug for BlockingAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let background = inner.background.is_some();
        debug_driver(
            f,
            "BlockingAuthenticator",
            inner.method_name,
            &inner.lease,
            background,
        )
    }
}

impl BlockingAuthenticatorBuilder {
    builder_setters! {
        /// Whether a background thread refreshes the token ahead of expiry;
        /// default on. Off, the first call after the refresh point starts the
        /// refresh on a short-lived thread and still returns the valid token.
    }

    /// Checks the configuration and builds the authenticator.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] from [`Method::validate`] or
    /// [`RequestOptions::validate`].
    pub fn build(
        self,
        transport: impl BlockingTransport,
    ) -> Result<BlockingAuthenticator, ConfigError> {
        self.settings.validate()?;
        Ok(BlockingAuthenticator::from_settings(
            self.settings,
            Box::new(transport),
        ))
    }
}

impl fmt::Debug for BlockingAuthenticatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings
            .debug_builder(f, "BlockingAuthenticatorBuilder")
    }
}

impl Inner {
    fn token_slow(self: &Arc<Self>) -> Outcome {
        let mut state = self.lock_state();
        loop {
            let now = self.clock.instant();
            if let Some(fetch) = state.manager.poll_fetch(now) {
                self.publish(&state.manager);
                let serving = servable(state.manager.token(now));
                drop(state);
                let guard = FetchGuard::new(self, fetch);
                if let Some(cached) = serving {
                    guard.run_on_thread();
                    return Ok(cached);
                }
                match guard.run() {
                    Ok(cached) if cached.is_servable(self.clock.instant()) => {
                        return Ok(cached);
                    }
                    Ok(_) => {}
                    Err(error) => return Err(error),
                }
                state = self.lock_state();
                continue;
            }
            let seen = match state.manager.token(now) {
                TokenState::Fresh(cached) | TokenState::RefreshDue(cached) => {
                    return Ok(Arc::clone(cached));
                }
                TokenState::Unavailable(error) => return Err(error),
                TokenState::Pending => state.completions,
            };
            while state.completions == seen {
                state = self
                    .completed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let now = self.clock.instant();
            match &state.last_outcome {
                Some(Err(error)) => return Err(error.clone()),
                Some(Ok(cached)) if cached.is_servable(now) => return Ok(Arc::clone(cached)),
                _ => {}
            }
        }
    }

    /// Runs one acquisition on this thread. The acquirer's lock is held
    /// throughout, but only the one fetch in flight ever takes it.
    // `TokenError` is the flows' error type; it is moved once, into the manager.
    #[allow(clippy::result_large_err)]
    fn acquire(&self) -> Result<Token, TokenError> {
        let mut acquirer = self.acquirer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut step = acquirer.start(self.clock.now());
        loop {
            let (awaiting, request) = match step {
                Step::Send { awaiting, request } => (awaiting, request),
                Step::Done(result) => return result,
            };
            let response = self.transport.send(request);
            let now = self.clock.now();
            step = match response {
                Ok(response) => acquirer.handle_response(awaiting, response, now),
                Err(error) => Step::Done(Err(error.into())),
            };
        }
    }

    /// Hands the fetch's result to the manager and releases the waiters with
    /// the outcome, or with `waiters_get` when given.
    fn complete(
        &self,
        fetch: FetchId,
        result: Result<Token, TokenError>,
        waiters_get: Option<Error>,
    ) -> Outcome {
        let now = self.clock.instant();
        let mut state = self.lock_state();
        let outcome = state.manager.handle_result(fetch, result, now);
        let outcome = waiters_get.map_or(outcome, Err);
        self.publish(&state.manager);
        state.completions += 1;
        state.last_outcome = Some(outcome.clone());
        drop(state);
        self.completed.notify_all();
        self.wake_background();
        outcome
    }

    fn with_manager(&self, input: impl FnOnce(&mut TokenManager, Instant)) {
        let now = self.clock.instant();
        let mut state = self.lock_state();
        input(&mut state.manager, now);
        self.publish(&state.manager);
        drop(state);
        self.wake_background();
    }

    /// One round of the background thread: handles deadlines, runs a due
    /// fetch on this thread, and says how long to sleep.
    fn tick(self: &Arc<Self>) -> Option<Duration> {
        loop {
            let now = self.clock.instant();
            let mut state = self.lock_state();
            state.manager.handle_timeout(now);
            let fetch = state.manager.poll_fetch(now);
            self.publish(&state.manager);
            let Some(fetch) = fetch else {
                let (at, wake) = state.manager.poll_timeout()?;
                let sleep = at.saturating_duration_since(now);
                tracing::trace!(wake = %wake, sleep_ms = millis(sleep), "background refresh sleeps");
                return Some(sleep);
            };
            drop(state);
            // The outcome reaches waiters through `complete`.
            let _outcome = FetchGuard::new(self, fetch).run();
        }
    }

    fn publish(&self, manager: &TokenManager) {
        self.lease.store(
            manager
                .lease()
                .map(|lease| Arc::new(PublishedLease::new(lease, &*self.clock))),
        );
    }

    fn wake_background(&self) {
        if let Some(wakeup) = &self.background {
            wakeup.wake();
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic: every change is one
        // manager call, made while no user code runs.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Lets the background thread notice at once that it is no longer needed.
        self.wake_background();
    }
}

/// A fetch in flight. If it is dropped before completing (the transport
/// panicked, or no thread could be started for it), it completes the fetch
/// as failed, so the manager can start another and waiters are released.
struct FetchGuard {
    inner: Arc<Inner>,
    fetch: Option<FetchId>,
}

impl FetchGuard {
    fn new(inner: &Arc<Inner>, fetch: FetchId) -> Self {
        Self {
            inner: Arc::clone(inner),
            fetch: Some(fetch),
        }
    }

    fn run(mut self) -> Outcome {
        let result = self.inner.acquire();
        match self.fetch.take() {
            Some(fetch) => self.inner.complete(fetch, result, None),
            None => Err(Error::FetchAborted),
        }
    }

    fn run_on_thread(self) {
        let spawned = thread::Builder::new()
            .name("service-auth-refresh".into())
            .spawn(move || drop(self.run()));
        if let Err(error) = spawned {
            // The guard inside the closure has completed the fetch as failed.
            tracing::debug!(%error, "no thread for the token refresh");
        }
    }
}

impl Drop for FetchGuard {
    fn drop(&mut self) {
        let Some(fetch) = self.fetch.take() else {
            return;
        };
        let error = TransportError::new(TransportErrorKind::Other, "the token fetch was abandoned");
        let _ = (self.inner).complete(fetch, Err(error.into()), Some(Error::FetchAborted));
    }
}

/// Wakes the background thread early: a fetch completed, a token was
/// invalidated, a backoff was lifted, or the authenticator was dropped.
#[derive(Default)]
struct Wakeup {
    woken: Mutex<bool>,
    signal: Condvar,
}

impl Wakeup {
    fn wake(&self) {
        *self.woken.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.signal.notify_one();
    }

    /// Sleeps until woken or `timeout` passes (forever for `None`).
    fn wait(&self, timeout: Option<Duration>) {
        let woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        let mut woken = match timeout {
            Some(timeout) => {
                self.signal
                    .wait_timeout_while(woken, timeout, |woken| !*woken)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .signal
                .wait_while(woken, |woken| !*woken)
                .unwrap_or_else(PoisonError::into_inner),
        };
        *woken = false;
    }
}

fn start_background(inner: &Arc<Inner>, wakeup: Arc<Wakeup>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let spawned = thread::Builder::new()
        .name("service-auth-background".into())
        .spawn(move || {
            loop {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let sleep = inner.tick();
                // Sleep without keeping the authenticator alive.
                drop(inner);
                wakeup.wait(sleep);
            }
        });
    if let Err(error) = spawned {
        tracing::debug!(%error, "no thread for background refresh; refreshing on demand");
    }
}

fn servable(state: TokenState<'_>) -> Option<Arc<CachedToken>> {
    match state {
        TokenState::Fresh(cached) | TokenState::RefreshDue(cached) => Some(Arc::clone(cached)),
        _ => None,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
