//! [`Authenticator`]: access tokens for async code on tokio.
//!
//! It drives the sans-IO [`TokenManager`] and [`Acquirer`] with any
//! [`Transport`]. Reading a cached token takes no lock; fetching runs in a
//! spawned task, so a caller that goes away cannot cancel the fetch that
//! other callers are waiting for.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};

use crate::acquire::{Acquirer, Settings, Step, builder_setters, debug_driver};
use crate::credentials::KeyRing;
use crate::error::{TokenError, TransportError, TransportErrorKind};
use crate::flow::ConfigError;
use crate::manager::{CachedToken, Error, FetchId, Generation, PublishedLease};
use crate::manager::{TokenManager, TokenState};
use crate::method::{Endpoints, Method};
use crate::time::Clock;
use crate::token::Token;
use crate::transport::{DynTransport, Transport};
#[cfg(doc)]
use crate::{flow::RequestOptions, manager::RefreshPolicy};

/// A thread-safe source of access tokens for async code.
///
/// `Clone` (a reference count), `Send` and `Sync`, with no type parameters:
/// store it in application state and clone it into every task. Every clone
/// shares one cached token.
///
/// - Reading a cached token that needs no refresh takes no lock: one atomic
///   load and one clock reading.
/// - When a token must be fetched, exactly one request goes out however many
///   tasks are asking (single flight); every waiting task gets its result or
///   a copy of its error.
/// - The fetch runs in a task of its own: a caller dropped mid-flight does
///   not cancel it for the others.
/// - When a refresh is due but the cached token is still valid, callers get
///   the valid token at once and the refresh runs in the background.
/// - With background refresh (on by default) a task keeps the token fresh
///   ahead of expiry, so callers do not wait while the provider answers; it
///   holds only a weak reference and ends when the last clone is dropped.
///
/// The refresh rules (margin, jitter, backoff, hold-off) are those of
/// [`RefreshPolicy`]; see [`TokenManager`].
///
/// # Runtime
///
/// Fetches and background refresh are spawned on the tokio runtime the
/// authenticator is used from. Called outside a tokio runtime, a fetch runs
/// inside the calling future instead (and dropping that future abandons
/// it), and background refresh is off when the authenticator is built
/// outside a runtime. Background refresh sleeps on tokio's timer: build the
/// runtime with `enable_time` (or `enable_all`, as `#[tokio::main]` does).
///
/// # Examples
///
/// ```
/// use service_auth::authenticator::Authenticator;
/// use service_auth::endpoint::{Issuer, UrlPolicy};
/// use service_auth::flow::{ClientAuth, ClientCredentials};
/// use service_auth::method::{Endpoints, Method};
/// use service_auth::mock::{MockServer, SecretMethod};
/// use service_auth::secret::ClientSecret;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = MockServer::builder("https://auth.example.com")
///     .client_secret("svc", "s3cret", SecretMethod::Basic)
///     .build();
/// let issuer = Issuer::parse("https://auth.example.com", UrlPolicy::https_only())?;
/// let method = Method::from(ClientCredentials::new(
///     "svc",
///     ClientAuth::SecretBasic(ClientSecret::new("s3cret")),
/// ));
/// let auth = Authenticator::new(method, Endpoints::Discover(issuer), server);
///
/// let mut request = http::Request::get("https://api.example.com/v1/things").body(())?;
/// let generation = auth.authorize(&mut request).await?;
/// assert!(request.headers()["authorization"].is_sensitive());
/// // After a 401 from the resource server:
/// auth.invalidate(generation);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

/// Configures an [`Authenticator`]; from [`Authenticator::builder`].
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct AuthenticatorBuilder {
    settings: Settings,
}

struct Inner {
    /// What the fast path reads: republished after every manager input.
    lease: ArcSwapOption<PublishedLease>,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn DynTransport>,
    state: Mutex<State>,
    /// Used by the one fetch in flight only, and never across an `await`.
    acquirer: Mutex<Acquirer>,
    method_name: &'static str,
    /// The signing keys, shared with the method inside the acquirer.
    key_ring: Option<KeyRing>,
    background: Option<Arc<Notify>>,
}

struct State {
    manager: TokenManager,
    /// Where the fetch in flight will publish its outcome.
    in_flight: Option<watch::Receiver<Option<Outcome>>>,
}

type Outcome = Result<Arc<CachedToken>, Error>;

/// What a caller on the slow path does next.
enum Next {
    /// Return this.
    Done(Outcome),
    /// Wait for the fetch in flight, after running it when it is given.
    Wait {
        waiter: watch::Receiver<Option<Outcome>>,
        inline: Option<FetchTask>,
    },
}

impl Authenticator {
    /// An authenticator for `method` at `endpoints` over `transport`, with
    /// the default [`RefreshPolicy`], request options, system clock, an
    /// entropy seed and background refresh.
    ///
    /// The configuration is not checked here: call [`Method::validate`]
    /// first, or use [`builder`](Self::builder), whose `build` does.
    pub fn new(method: Method, endpoints: Endpoints, transport: impl Transport + Clone) -> Self {
        Self::from_settings(Settings::new(method, endpoints), Arc::new(transport))
    }

    /// A builder for an authenticator for `method` at `endpoints`.
    pub fn builder(method: Method, endpoints: Endpoints) -> AuthenticatorBuilder {
        AuthenticatorBuilder {
            settings: Settings::new(method, endpoints),
        }
    }

    /// A valid access token: the cached one, or a new one when none is
    /// cached or the cached one is too close to expiry.
    ///
    /// # Errors
    ///
    /// [`Error::Token`] when the fetch this call waited for failed;
    /// [`Error::BackingOff`] or [`Error::HeldOff`] when no token is cached
    /// and a recent failure holds fetches back; [`Error::FetchAborted`] when
    /// the fetch ended without a result (the runtime shut down, or the
    /// transport panicked).
    pub async fn token(&self) -> Result<Arc<CachedToken>, Error> {
        match self.inner.cached_fresh() {
            Some(token) => Ok(token),
            // Boxed: the slow path's state is large, and keeping it out of
            // this future keeps the cached path as cheap as a plain call.
            None => Box::pin(self.inner.token_slow()).await,
        }
    }

    /// Sets `Authorization: Bearer <token>` on `request`, marked sensitive,
    /// and returns the token's generation for [`invalidate`](Self::invalidate).
    ///
    /// # Errors
    ///
    /// Those of [`token`](Self::token), and [`Error::InvalidHeader`].
    pub async fn authorize<B>(&self, request: &mut http::Request<B>) -> Result<Generation, Error> {
        let token = self.token().await?;
        let value = token.header_value().ok_or(Error::InvalidHeader)?;
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value.clone());
        Ok(token.generation())
    }

    /// Reports that a resource server rejected the token of `generation`
    /// (a `401`): it is dropped, and the next call fetches a new one. Reports
    /// of an older generation are ignored, so many tasks that saw the same
    /// rejected token cause one fetch.
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

    fn from_settings(settings: Settings, transport: Arc<dyn DynTransport>) -> Self {
        let background = settings.background.then(|| Arc::new(Notify::new()));
        let method_name = settings.method.name();
        let key_ring = settings.method.key_ring().cloned();
        let (manager, acquirer, clock) = settings.into_parts();
        let inner = Arc::new(Inner {
            lease: ArcSwapOption::empty(),
            clock,
            transport,
            state: Mutex::new(State {
                manager,
                in_flight: None,
            }),
            acquirer: Mutex::new(acquirer),
            method_name,
            key_ring,
            background: background.clone(),
        });
        if let Some(notify) = background {
            start_background(&inner, notify);
        }
        Self { inner }
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let background = inner.background.is_some();
        debug_driver(
            f,
            "Authenticator",
            inner.method_name,
            &inner.lease,
            background,
        )
    }
}

impl AuthenticatorBuilder {
    builder_setters! {
        /// Whether a background task refreshes the token ahead of expiry;
        /// default on. Off, the first call after the refresh point starts the
        /// refresh in a task of its own and still returns the valid token.
    }

    /// Checks the configuration and builds the authenticator.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] from [`Method::validate`] or
    /// [`RequestOptions::validate`].
    pub fn build(self, transport: impl Transport + Clone) -> Result<Authenticator, ConfigError> {
        self.settings.validate()?;
        Ok(Authenticator::from_settings(
            self.settings,
            Arc::new(transport),
        ))
    }
}

impl fmt::Debug for AuthenticatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings.debug_builder(f, "AuthenticatorBuilder")
    }
}

impl Inner {
    /// The fast path: the published token, if the lease covers now.
    #[inline]
    fn cached_fresh(&self) -> Option<Arc<CachedToken>> {
        let lease = self.lease.load();
        lease.as_ref()?.current(&*self.clock).map(Arc::clone)
    }

    async fn token_slow(self: &Arc<Self>) -> Outcome {
        loop {
            let (mut waiter, inline) = match self.serve_or_wait() {
                Next::Done(outcome) => return outcome,
                Next::Wait { waiter, inline } => (waiter, inline),
            };
            if let Some(task) = inline {
                task.run().await;
            }
            let outcome = match waiter.wait_for(Option::is_some).await {
                Ok(outcome) => outcome.clone(),
                Err(_closed) => Some(Err(Error::FetchAborted)),
            };
            let now = self.clock.instant();
            match outcome {
                // A caller that ran a refresh inline still has the valid token.
                Some(Err(error)) => return self.servable(now).ok_or(error),
                Some(Ok(cached)) if cached.is_servable(now) => return Ok(cached),
                _ => {}
            }
        }
    }

    /// Under the state lock: serves the caller, or says which fetch to wait
    /// for, together with that fetch when there was no runtime to spawn it
    /// on and the caller must run it.
    fn serve_or_wait(self: &Arc<Self>) -> Next {
        let now = self.clock.instant();
        let mut state = self.lock_state();
        let inline = state
            .manager
            .poll_fetch(now)
            .and_then(|fetch| self.spawn_fetch(&mut state, fetch));
        self.publish(&state.manager);
        if let (Some(task), Some(waiter)) = (inline, &state.in_flight) {
            return Next::Wait {
                waiter: waiter.clone(),
                inline: Some(task),
            };
        }
        match state.manager.token(now) {
            TokenState::Fresh(cached) | TokenState::RefreshDue(cached) => {
                Next::Done(Ok(Arc::clone(cached)))
            }
            TokenState::Unavailable(error) => Next::Done(Err(error)),
            TokenState::Pending => match &state.in_flight {
                Some(waiter) => Next::Wait {
                    waiter: waiter.clone(),
                    inline: None,
                },
                None => Next::Done(Err(Error::FetchAborted)),
            },
        }
    }

    fn servable(&self, now: Instant) -> Option<Arc<CachedToken>> {
        match self.lock_state().manager.token(now) {
            TokenState::Fresh(cached) | TokenState::RefreshDue(cached) => Some(Arc::clone(cached)),
            _ => None,
        }
    }

    /// Starts `fetch` in a task of its own; returns it instead when there is
    /// no tokio runtime to spawn it on.
    fn spawn_fetch(self: &Arc<Self>, state: &mut State, fetch: FetchId) -> Option<FetchTask> {
        let (sender, receiver) = watch::channel(None);
        state.in_flight = Some(receiver);
        let task = FetchTask {
            inner: Arc::clone(self),
            fetch: Some(fetch),
            sender: Some(sender),
        };
        match Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(task.run());
                None
            }
            Err(_) => Some(task),
        }
    }

    async fn acquire(&self) -> Result<Token, TokenError> {
        let mut step = self.lock_acquirer().start(self.clock.now());
        loop {
            let (awaiting, request) = match step {
                Step::Send { awaiting, request } => (awaiting, request),
                Step::Done(result) => return result,
            };
            let response = self.transport.send_boxed(request).await;
            let now = self.clock.now();
            step = match response {
                Ok(response) => self
                    .lock_acquirer()
                    .handle_response(awaiting, response, now),
                Err(error) => Step::Done(Err(error.into())),
            };
        }
    }

    fn with_manager(&self, input: impl FnOnce(&mut TokenManager, Instant)) {
        let now = self.clock.instant();
        let mut state = self.lock_state();
        input(&mut state.manager, now);
        self.publish(&state.manager);
        drop(state);
        self.wake_background();
    }

    /// One round of the background task: handles deadlines, starts a due
    /// fetch, and says how long to sleep.
    fn tick(self: &Arc<Self>) -> (Option<Duration>, Option<FetchTask>) {
        let now = self.clock.instant();
        let mut state = self.lock_state();
        state.manager.handle_timeout(now);
        let inline = state
            .manager
            .poll_fetch(now)
            .and_then(|fetch| self.spawn_fetch(&mut state, fetch));
        self.publish(&state.manager);
        let sleep = state.manager.poll_timeout().map(|(at, wake)| {
            let sleep = at.saturating_duration_since(now);
            tracing::trace!(wake = %wake, sleep_ms = millis(sleep), "background refresh sleeps");
            sleep
        });
        (sleep, inline)
    }

    fn publish(&self, manager: &TokenManager) {
        self.lease.store(
            manager
                .lease()
                .map(|lease| Arc::new(PublishedLease::new(lease, &*self.clock))),
        );
    }

    fn wake_background(&self) {
        if let Some(notify) = &self.background {
            notify.notify_one();
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic: every change is one
        // manager call, made while no user code runs.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_acquirer(&self) -> MutexGuard<'_, Acquirer> {
        self.acquirer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Lets the background task notice at once that it is no longer needed.
        self.wake_background();
    }
}

/// The fetch in flight. If it is dropped before completing (the runtime shut
/// down, the transport panicked), it completes the fetch as failed, so the
/// manager can start another and waiters are released.
struct FetchTask {
    inner: Arc<Inner>,
    fetch: Option<FetchId>,
    sender: Option<watch::Sender<Option<Outcome>>>,
}

impl FetchTask {
    async fn run(mut self) {
        let result = self.inner.acquire().await;
        self.finish(result, None);
    }

    /// Hands the result to the manager and the outcome to the waiters (or
    /// `waiters_get`, when given).
    fn finish(&mut self, result: Result<Token, TokenError>, waiters_get: Option<Error>) {
        let Some(fetch) = self.fetch.take() else {
            return;
        };
        let now = self.inner.clock.instant();
        let mut state = self.inner.lock_state();
        let outcome = state.manager.handle_result(fetch, result, now);
        self.inner.publish(&state.manager);
        state.in_flight = None;
        drop(state);

        let outcome = waiters_get.map_or(outcome, Err);
        if let Some(sender) = self.sender.take() {
            sender.send_replace(Some(outcome));
        }
        self.inner.wake_background();
    }
}

impl Drop for FetchTask {
    fn drop(&mut self) {
        if self.fetch.is_some() {
            let error =
                TransportError::new(TransportErrorKind::Other, "the token fetch was abandoned");
            self.finish(Err(error.into()), Some(Error::FetchAborted));
        }
    }
}

fn start_background(inner: &Arc<Inner>, notify: Arc<Notify>) {
    let Ok(runtime) = Handle::try_current() else {
        tracing::debug!("built outside a tokio runtime; background refresh is off");
        return;
    };
    let weak: Weak<Inner> = Arc::downgrade(inner);
    runtime.spawn(async move {
        loop {
            let (sleep, inline) = {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                inner.tick()
            };
            if let Some(task) = inline {
                task.run().await;
            }
            // Sleeps without keeping the authenticator alive.
            match sleep {
                Some(sleep) => drop(tokio::time::timeout(sleep, notify.notified()).await),
                None => notify.notified().await,
            }
        }
    });
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
