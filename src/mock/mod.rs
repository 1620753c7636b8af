//! A strict mock authorization server, for tests, examples and benchmarks.
//!
//! [`MockServer`] is sans-IO first: [`MockServer::handle`] takes an
//! `http::Request<Vec<u8>>` and the current [`Now`] and returns the
//! `http::Response<Vec<u8>>` a provider would send. It opens no socket, reads
//! no clock, and draws its access tokens from a seedable [`Rng`], so unit
//! tests, property tests and fuzz targets drive it with a virtual clock and
//! get the same bytes for the same seed. Around that core it is also a
//! [`Transport`](crate::transport::Transport) and a
//! [`BlockingTransport`](crate::transport::BlockingTransport) that read time
//! from a [`Clock`], and it can be served over HTTP/1.1 on 127.0.0.1 with
//! [`MockServer::serve_loopback`] or [`MockServerBuilder::serve_loopback`].
//!
//! # Endpoints
//!
//! - `GET {issuer}/.well-known/openid-configuration`: the discovery document.
//! - `POST {issuer}/oauth/v2/token`: an access token, or an RFC 6749 §5.2 error.
//! - `GET {issuer}/resource` with `Authorization: Bearer …`: 200 for a live
//!   access token it issued or a registered personal access token, else 401.
//!
//! A request in absolute form must name the issuer's scheme and authority;
//! a request in origin form (`/oauth/v2/token`, as on the loopback server) is
//! matched on its path alone, so clients may reach the server through an
//! address that differs from its issuer.
//!
//! # What the token endpoint checks
//!
//! It is as strict as a real provider, and stricter where a lenient check
//! would hide a client bug. Every rejection is an RFC 6749 §5.2 JSON error
//! with the matching code and an `error_description` that says what was
//! wrong; none repeats an assertion or a secret.
//!
//! - `POST` only (405 otherwise), `Content-Type:
//!   application/x-www-form-urlencoded`, no query string, each parameter at
//!   most once (RFC 6749 §3.2).
//! - Exactly one client authentication method per request (RFC 6749 §2.3):
//!   `client_secret_basic` (the id and secret form-urlencoded before base64,
//!   RFC 6749 §2.3.1), `client_secret_post`, or a client assertion
//!   (`private_key_jwt`, RFC 7523 §2.2), and the one the client was
//!   registered with. A `client_id` without credentials is refused: this
//!   server has no public clients.
//! - Assertions (RFC 7523 §3) are verified with the registered key named by
//!   the header's `kid`, with the key's own `alg`; `iss` and `sub` name the
//!   registered service user or client; `aud` contains the issuer (or the
//!   token endpoint for client assertions, see [`AudienceRule`]); `exp` lies
//!   in the future; `iat` is at most 1 s ahead of the server clock (ZITADEL's
//!   rule) and at most 1 h old; a client assertion's `jti` is never accepted
//!   twice.
//! - Scopes must be among the allowed ones.
//!
//! A success carries `access_token`, `token_type: "Bearer"`, `expires_in`
//! and, when one was requested, `scope`, with `Cache-Control: no-store`.
//! Every response carries a `Date` header from the [`Now`] passed in, so
//! clients can learn the server's clock offset.
//!
//! # Faults
//!
//! [`MockServer::push_fault`] scripts the answer to the next token request:
//! server errors, rate limiting, HTML and malformed bodies, odd `expires_in`
//! values, slow answers. See [`Fault`].
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//!
//! use service_auth::credentials::{Algorithm, SigningKey};
//! use service_auth::mock::{MockServer, SecretMethod};
//! use service_auth::time::Now;
//!
//! let key = SigningKey::generate(Algorithm::Es256, "key-1")?;
//! let server = MockServer::builder("https://mock.service-auth.test")
//!     .service_user("service-user-1", key.public_key())
//!     .client_secret("client-1", "s3cret", SecretMethod::Basic)
//!     .token_lifetime(Duration::from_secs(300))
//!     .seed(7)
//!     .build();
//!
//! // client_secret_basic: base64("client-1:s3cret"), both parts form-urlencoded first.
//! let request = http::Request::post(server.token_endpoint())
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .header("authorization", "Basic Y2xpZW50LTE6czNjcmV0")
//!     .body(b"grant_type=client_credentials".to_vec())?;
//! let response = server.handle(request, Now::new(Instant::now(), SystemTime::now()));
//!
//! assert_eq!(response.status(), 200);
//! assert_eq!(server.issued_tokens(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client_auth;
mod delay;
mod fault;
mod jwt;
mod record;
mod resource;
mod serve;
mod token;
mod transport;
mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use http::{Method, StatusCode, Uri};

use crate::credentials::PublicKey;
use crate::endpoint::{Issuer, UrlPolicy};
use crate::rng::Rng;
use crate::secret::{ClientSecret, PersonalAccessToken};
use crate::time::{Clock, Now, SystemClock};

pub use fault::Fault;
pub use record::{ClientAuthMethod, RecordedRequest};
pub use serve::ServeHandle;

/// The path of the token endpoint below the issuer (ZITADEL's).
const TOKEN_PATH: &str = "/oauth/v2/token";
/// The path of the discovery document below the issuer (OIDC Discovery §4).
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The path of the protected resource below the issuer.
const RESOURCE_PATH: &str = "/resource";
/// The grant type of private key JWT as an authorization grant (RFC 7523 §2.1).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The client assertion type of private key JWT client authentication (RFC 7523 §2.2).
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The scopes allowed unless [`MockServerBuilder::allowed_scopes`] says otherwise.
const DEFAULT_SCOPES: [&str; 4] = [
    "openid",
    "profile",
    "email",
    "urn:zitadel:iam:org:project:id:zitadel:aud",
];

/// How a client registered with a secret sends it (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretMethod {
    /// `client_secret_basic`: `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

impl SecretMethod {
    /// The method's name in discovery documents (RFC 8414 §2).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
        }
    }
}

/// Which `aud` a client assertion must carry (RFC 7523 §3 leaves it to the
/// server: some providers want the token endpoint, some the issuer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudienceRule {
    /// `aud` contains the token endpoint URL (Keycloak, Okta, Azure AD).
    TokenEndpoint,
    /// `aud` contains the issuer.
    Issuer,
    /// `aud` contains the token endpoint or the issuer.
    #[default]
    Either,
}

/// A response together with the delay a scripted [`Fault::Delay`] asks for.
///
/// `Debug` shows the status, the body length and the delay: the body may
/// hold an access token.
#[must_use = "the response is what the server answers"]
pub struct Reply {
    /// The response.
    pub response: http::Response<Vec<u8>>,
    /// How long to hold the response back before delivering it, if at all.
    pub delay: Option<Duration>,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.response.status())
            .field("body_len", &self.response.body().len())
            .field("delay", &self.delay)
            .finish()
    }
}

/// The mock authorization server. See the [module docs](self).
///
/// A cheap handle: clones share the same registrations, recorded requests,
/// issued tokens and scripted faults. `Send` and `Sync`; every method takes
/// `&self`.
#[derive(Clone)]
pub struct MockServer {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    state: Mutex<State>,
    clock: RwLock<Arc<dyn Clock>>,
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("issuer", &self.inner.config.issuer)
            .field("token_requests", &self.token_requests())
            .field("issued_tokens", &self.issued_tokens())
            .finish_non_exhaustive()
    }
}

impl MockServer {
    /// Starts the configuration of a server whose issuer is `issuer`, for
    /// example `"https://mock.service-auth.test"`.
    ///
    /// The issuer is normalised as [`Issuer::parse`] does (lowercase scheme
    /// and host, no default port, no trailing slash); `http://` is accepted
    /// for loopback hosts. Text that is not such a URL is used as given, and
    /// clients will refuse it.
    pub fn builder(issuer: &str) -> MockServerBuilder {
        MockServerBuilder::new(issuer)
    }

    /// The issuer, as it must appear in an assertion's `aud` and in the
    /// discovery document.
    pub fn issuer(&self) -> &str {
        &self.inner.config.issuer
    }

    /// The token endpoint: `{issuer}/oauth/v2/token`.
    pub fn token_endpoint(&self) -> String {
        self.inner.config.token_endpoint.clone()
    }

    /// The discovery document's URL: `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}{DISCOVERY_PATH}", self.inner.config.issuer)
    }

    /// The protected resource: `{issuer}/resource`.
    pub fn resource_url(&self) -> String {
        format!("{}{RESOURCE_PATH}", self.inner.config.issuer)
    }

    /// Answers `request` as the server would at `now`.
    ///
    /// This is the whole server, pure apart from its recorded state: the
    /// request is recorded, a scripted fault is consumed when the request is
    /// a token request, and a successful token request issues a token. A
    /// [`Fault::Delay`] is not applied here (there is no clock to wait on);
    /// use [`MockServer::respond`] to learn it.
    pub fn handle(&self, request: http::Request<Vec<u8>>, now: Now) -> http::Response<Vec<u8>> {
        self.respond(request, now).response
    }

    /// Answers `request` as [`MockServer::handle`] does, and also returns how
    /// long a scripted [`Fault::Delay`] asks to hold the response back.
    pub fn respond(&self, request: http::Request<Vec<u8>>, now: Now) -> Reply {
        let config = &self.inner.config;
        let mut record = RecordedRequest::start(&request, now);
        let (mut response, delay) = match config.route(request.uri()) {
            Route::Token => self.token_request(&request, now, &mut record),
            Route::Discovery => (resource::discovery(config, request.method()), None),
            Route::Resource => (self.resource_request(&request, now, &mut record), None),
            Route::NotFound => (wire::not_found(), None),
        };
        wire::set_date(&mut response, now);

        record.status = response.status();
        tracing::debug!(
            method = %record.method,
            path = %record.path,
            status = response.status().as_u16(),
            error = record.error.as_deref(),
            "mock server answered"
        );
        self.state().record(record, config.recording_limit);
        Reply { response, delay }
    }

    /// Scripts the answer to a coming token request (a `POST` to the token
    /// endpoint): faults apply one per token request, first in, first out.
    pub fn push_fault(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// Scripts several faults in order, e.g.
    /// `Fault::Status(StatusCode::SERVICE_UNAVAILABLE).repeat(3)` for the next
    /// three token requests.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state().faults.extend(faults);
    }

    /// How many scripted faults are still waiting for a token request.
    pub fn pending_faults(&self) -> usize {
        self.state().faults.len()
    }

    /// Drops the scripted faults that have not been applied yet.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Every request handled so far, in order (at most the builder's
    /// [`recording_limit`](MockServerBuilder::recording_limit) most recent).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.iter().cloned().collect()
    }

    /// How many `POST`s reached the token endpoint, failed ones included.
    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }

    /// How many access tokens the server has issued.
    pub fn issued_tokens(&self) -> usize {
        self.state().issued_count
    }

    /// Revokes every access token issued so far: the resource endpoint
    /// rejects them from now on. Tokens issued later are not affected.
    pub fn revoke_all(&self) {
        self.state().tokens.clear();
    }

    /// Sets the clock that the transports and the loopback server read
    /// (by default [`SystemClock`]). Tests pass a
    /// [`ManualClock`](crate::time::ManualClock).
    pub fn set_clock(&self, clock: impl Clock) {
        let mut current = self
            .inner
            .clock
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *current = Arc::new(clock);
    }

    /// Reads the configured clock.
    pub fn now(&self) -> Now {
        let clock = self
            .inner
            .clock
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        clock.now()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in a test thread: every
        // update is a single push, insert or counter increment.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn token_request(
        &self,
        request: &http::Request<Vec<u8>>,
        now: Now,
        record: &mut RecordedRequest,
    ) -> (http::Response<Vec<u8>>, Option<Duration>) {
        record.observe_token_request(request);
        let fault = if request.method() == Method::POST {
            let mut state = self.state();
            state.token_requests += 1;
            state.faults.pop_front()
        } else {
            None
        };
        record.fault.clone_from(&fault);

        if let Some(fault) = &fault
            && let Some(response) = fault.replacement()
        {
            record.error = fault.error_code().map(str::to_owned);
            return (response, None);
        }
        let outcome =
            token::check(&self.inner.config, request, now).and_then(|grant| self.issue(grant, now));
        let response = match outcome {
            Ok(issued) => wire::token_response(&issued, fault.as_ref()),
            Err(rejection) => {
                record.error = Some(rejection.code.to_owned());
                rejection.into_response()
            }
        };
        (response, fault.and_then(|fault| fault.delay()))
    }

    fn issue(&self, grant: token::Grant, now: Now) -> Result<wire::Issued, wire::Rejection> {
        let config = &self.inner.config;
        let mut state = self.state();
        if let Some(jti) = &grant.replay_guard {
            state.remember_jti(jti, now)?;
        }
        let access_token = state.rng.next_id();
        let expires_at = now.instant().checked_add(config.token_lifetime);
        state.store_token(
            access_token.clone(),
            LiveToken {
                subject: grant.subject.clone(),
                scope: grant.scope.clone(),
                expires_at,
            },
            now,
        );
        Ok(wire::Issued {
            access_token,
            lifetime: config.token_lifetime,
            scope: grant.scope,
        })
    }

    fn resource_request(
        &self,
        request: &http::Request<Vec<u8>>,
        now: Now,
        record: &mut RecordedRequest,
    ) -> http::Response<Vec<u8>> {
        let config = &self.inner.config;
        let outcome = resource::bearer(request).and_then(|presented| {
            if let Some(token) = self.state().live_token(presented, now) {
                return Ok(token);
            }
            config.personal_access_token(presented)
        });
        match outcome {
            Ok(access) => {
                record.client_id = Some(access.subject.clone());
                resource::granted(&access)
            }
            Err(refusal) => {
                record.error = refusal.error_code().map(str::to_owned);
                refusal.into_response()
            }
        }
    }
}

/// The configuration of a [`MockServer`], finished with [`build`](Self::build).
#[must_use = "a builder does nothing until `build` or `serve_loopback`"]
pub struct MockServerBuilder {
    issuer: String,
    users: BTreeMap<String, Vec<PublicKey>>,
    clients: BTreeMap<String, RegisteredClient>,
    personal_access_tokens: Vec<PersonalAccessToken>,
    token_lifetime: Duration,
    allowed_scopes: BTreeSet<String>,
    audience: AudienceRule,
    seed: Option<u64>,
    recording_limit: usize,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for MockServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServerBuilder")
            .field("issuer", &self.issuer)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("clients", &self.clients.keys().collect::<Vec<_>>())
            .field("token_lifetime", &self.token_lifetime)
            .finish_non_exhaustive()
    }
}

impl MockServerBuilder {
    fn new(issuer: &str) -> Self {
        let issuer = match Issuer::parse(issuer, UrlPolicy::dangerous_allow_http_loopback()) {
            Ok(parsed) => parsed.as_str().to_owned(),
            Err(_) => issuer.trim_end_matches('/').to_owned(),
        };
        Self {
            issuer,
            users: BTreeMap::new(),
            clients: BTreeMap::new(),
            personal_access_tokens: Vec::new(),
            token_lifetime: Duration::from_secs(3600),
            allowed_scopes: DEFAULT_SCOPES.iter().map(|&s| s.to_owned()).collect(),
            audience: AudienceRule::default(),
            seed: None,
            recording_limit: usize::MAX,
            clock: Arc::new(SystemClock),
        }
    }

    /// Registers a key of service user `user_id`, for the jwt-bearer grant
    /// (RFC 7523 §2.1): the assertion's `iss` and `sub` are `user_id` and its
    /// header's `kid` names this key. Call again with another key to give
    /// the user several (key rotation).
    pub fn service_user(mut self, user_id: &str, key: PublicKey) -> Self {
        self.users.entry(user_id.to_owned()).or_default().push(key);
        self
    }

    /// Registers client `client_id` with `secret`, sent the way `method`
    /// says, for the client credentials grant.
    pub fn client_secret(mut self, client_id: &str, secret: &str, method: SecretMethod) -> Self {
        let client = self.clients.entry(client_id.to_owned()).or_default();
        client.secret = Some((ClientSecret::new(secret), method));
        self
    }

    /// Registers a key of client `client_id`, for private key JWT client
    /// authentication (RFC 7523 §2.2) with the client credentials grant.
    /// Call again to give the client several keys.
    pub fn client_key(mut self, client_id: &str, key: PublicKey) -> Self {
        let client = self.clients.entry(client_id.to_owned()).or_default();
        client.keys.push(key);
        self
    }

    /// Registers a personal access token, accepted by the resource endpoint.
    pub fn personal_access_token(mut self, token: &str) -> Self {
        self.personal_access_tokens
            .push(PersonalAccessToken::new(token));
        self
    }

    /// How long issued access tokens live (default one hour); `expires_in`
    /// carries it in whole seconds.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// The scopes a token request may ask for, replacing the default
    /// `openid`, `profile`, `email` and
    /// `urn:zitadel:iam:org:project:id:zitadel:aud`.
    pub fn allowed_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Which `aud` client assertions must carry (default [`AudienceRule::Either`]).
    pub fn client_assertion_audience(mut self, rule: AudienceRule) -> Self {
        self.audience = rule;
        self
    }

    /// Seeds the generator of access tokens: the same seed issues the same
    /// tokens in the same order. Without a seed the generator is seeded from
    /// the operating system.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Keeps at most `limit` recorded requests, dropping the oldest (default:
    /// all of them). Long benchmarks against a served mock set a limit to
    /// keep memory flat.
    pub fn recording_limit(mut self, limit: usize) -> Self {
        self.recording_limit = limit;
        self
    }

    /// The clock the transports and the loopback server read (default
    /// [`SystemClock`]); see [`MockServer::set_clock`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Finishes the configuration.
    pub fn build(self) -> MockServer {
        let rng = self.seed.map_or_else(Rng::from_entropy, Rng::from_seed);
        let clock = Arc::clone(&self.clock);
        MockServer {
            inner: Arc::new(Inner {
                config: Config::new(self),
                state: Mutex::new(State::new(rng)),
                clock: RwLock::new(clock),
            }),
        }
    }
}

/// A client registered for the client credentials grant.
#[derive(Default)]
struct RegisteredClient {
    secret: Option<(ClientSecret, SecretMethod)>,
    keys: Vec<PublicKey>,
}

/// What the server was configured with; never changes after `build`.
struct Config {
    issuer: String,
    token_endpoint: String,
    /// The issuer's scheme and authority, for requests in absolute form.
    origin: Option<(String, String)>,
    /// The issuer's path ("" for none), the prefix of every endpoint path.
    base_path: String,
    users: BTreeMap<String, Vec<PublicKey>>,
    clients: BTreeMap<String, RegisteredClient>,
    personal_access_tokens: Vec<PersonalAccessToken>,
    token_lifetime: Duration,
    allowed_scopes: BTreeSet<String>,
    audience: AudienceRule,
    recording_limit: usize,
}

/// Which endpoint a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Token,
    Discovery,
    Resource,
    NotFound,
}

impl Config {
    fn new(builder: MockServerBuilder) -> Self {
        let issuer = builder.issuer;
        let parsed = issuer.parse::<Uri>().ok();
        let origin = parsed.as_ref().and_then(|uri| {
            let scheme = uri.scheme_str()?.to_ascii_lowercase();
            let authority = uri.authority()?.as_str().to_ascii_lowercase();
            Some((scheme, authority))
        });
        let base_path = parsed
            .as_ref()
            .map(|uri| uri.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Self {
            token_endpoint: format!("{issuer}{TOKEN_PATH}"),
            issuer,
            origin,
            base_path,
            users: builder.users,
            clients: builder.clients,
            personal_access_tokens: builder.personal_access_tokens,
            token_lifetime: builder.token_lifetime,
            allowed_scopes: builder.allowed_scopes,
            audience: builder.audience,
            recording_limit: builder.recording_limit,
        }
    }

    fn route(&self, uri: &Uri) -> Route {
        if let Some(authority) = uri.authority() {
            let Some((scheme, expected)) = &self.origin else {
                return Route::NotFound;
            };
            let same_scheme = uri
                .scheme_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme));
            if !same_scheme || !authority.as_str().eq_ignore_ascii_case(expected) {
                return Route::NotFound;
            }
        }
        let Some(path) = uri.path().strip_prefix(self.base_path.as_str()) else {
            return Route::NotFound;
        };
        match path {
            TOKEN_PATH => Route::Token,
            DISCOVERY_PATH => Route::Discovery,
            RESOURCE_PATH => Route::Resource,
            _ => Route::NotFound,
        }
    }

    fn personal_access_token(&self, presented: &str) -> Result<LiveToken, resource::Refusal> {
        let known = self
            .personal_access_tokens
            .iter()
            .any(|pat| wire::constant_time_eq(pat.secret(), presented));
        if !known {
            return Err(resource::Refusal::UnknownToken);
        }
        Ok(LiveToken {
            subject: "personal access token".to_owned(),
            scope: None,
            expires_at: None,
        })
    }
}

/// An access token the resource endpoint accepts.
#[derive(Clone, Debug)]
struct LiveToken {
    /// The service user or client it was issued to.
    subject: String,
    scope: Option<String>,
    /// `None`: never (personal access tokens, or a lifetime past `Instant`'s range).
    expires_at: Option<Instant>,
}

/// What the server remembers between requests.
struct State {
    rng: Rng,
    faults: VecDeque<Fault>,
    requests: VecDeque<RecordedRequest>,
    token_requests: usize,
    issued_count: usize,
    /// Live access tokens by value; lookups only, so the order never shows.
    tokens: HashMap<String, LiveToken>,
    /// Client assertion ids seen, with the assertion's `exp`: an id can be
    /// forgotten once its assertion has expired, because it is refused then anyway.
    seen_jtis: BTreeMap<(String, String), f64>,
    /// Sizes at which expired entries are next swept out.
    sweep_tokens_at: usize,
    sweep_jtis_at: usize,
}

/// The smallest table size at which expired entries are swept.
const SWEEP_MIN: usize = 1024;

impl State {
    fn new(rng: Rng) -> Self {
        Self {
            rng,
            faults: VecDeque::new(),
            requests: VecDeque::new(),
            token_requests: 0,
            issued_count: 0,
            tokens: HashMap::new(),
            seen_jtis: BTreeMap::new(),
            sweep_tokens_at: SWEEP_MIN,
            sweep_jtis_at: SWEEP_MIN,
        }
    }

    fn record(&mut self, request: RecordedRequest, limit: usize) {
        if limit == 0 {
            return;
        }
        while self.requests.len() >= limit {
            self.requests.pop_front();
        }
        self.requests.push_back(request);
    }

    /// Refuses a client assertion whose `jti` was accepted before (RFC 7523 §3, item 7).
    fn remember_jti(
        &mut self,
        jti: &client_auth::ReplayGuard,
        now: Now,
    ) -> Result<(), wire::Rejection> {
        let key = (jti.client_id.clone(), jti.jti.clone());
        if self.seen_jtis.contains_key(&key) {
            return Err(wire::Rejection::invalid_client(format!(
                "the client assertion's jti {} was already used by client {}; sign a new \
                 assertion with a fresh jti for every request (RFC 7523 section 3)",
                wire::quoted(&jti.jti),
                wire::quoted(&jti.client_id),
            )));
        }
        if self.seen_jtis.len() >= self.sweep_jtis_at {
            let now_seconds = jwt::seconds_since_epoch(now);
            self.seen_jtis.retain(|_, expires| *expires > now_seconds);
            self.sweep_jtis_at = (self.seen_jtis.len() * 2).max(SWEEP_MIN);
        }
        self.seen_jtis.insert(key, jti.expires);
        Ok(())
    }

    fn store_token(&mut self, access_token: String, token: LiveToken, now: Now) {
        if self.tokens.len() >= self.sweep_tokens_at {
            self.tokens.retain(|_, live| live.is_live(now));
            self.sweep_tokens_at = (self.tokens.len() * 2).max(SWEEP_MIN);
        }
        self.tokens.insert(access_token, token);
        self.issued_count += 1;
    }

    fn live_token(&self, presented: &str, now: Now) -> Option<LiveToken> {
        self.tokens
            .get(presented)
            .filter(|token| token.is_live(now))
            .cloned()
    }
}

impl LiveToken {
    fn is_live(&self, now: Now) -> bool {
        self.expires_at
            .is_none_or(|expires| now.instant() < expires)
    }
}

/// The status of an error response with `code`.
fn status_for_code(code: &str) -> StatusCode {
    // RFC 6749 §5.2: 400 for every code, except that a failed client
    // authentication answers 401 (always here, so that clients can rely on it).
    if code == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    }
}
