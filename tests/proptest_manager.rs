//! Model-based property tests of token acquisition: the sans-IO
//! [`TokenManager`] and [`Acquirer`] against [`MockServer`]s on a virtual
//! clock, under random schedules, with and without background refresh.
//!
//! A [`Pair`] owns the machines and the mock servers (as quinn's test `Pair`
//! owns two endpoints) and moves time itself: no threads, no runtime, no
//! sleeping. A schedule is a list of [`Op`]s: time passing, callers asking
//! for a token, faults scripted into the next token request (every
//! [`Fault`] of the mock, slow replies, transport failures), the token
//! lifetime the provider issues (seconds to days), key rotations,
//! resource-server rejections and resets. After every event the pair
//! compares the machines with a small reference [`Model`] written from the
//! documented rules, and checks these invariants:
//!
//! - no token is handed out at or after its expiry minus the safety margin,
//!   and one that is handed out is still live at the provider when its
//!   response travelled no longer than that margin;
//! - at most one token request is in flight;
//! - each fetch starts no earlier than its predecessor's outcome allows:
//!   half the token's lifetime after a success, the backoff after a
//!   transient failure, the whole hold-off after a permanent one (no retry
//!   storm), unless a rejection or a reset intervened; the total number of
//!   requests stays within the bound that follows;
//! - after the faults stop, a token is obtained within the backoff bound.
//!
//! Each property runs `PROPTEST_CASES` cases (default 256, a few seconds in
//! a debug build); run a longer search with, for example,
//! `PROPTEST_CASES=2000 cargo test --release --test proptest_manager`.
//! Failures are saved to `proptest-regressions/proptest_manager.txt`, which
//! is committed and replayed first on every run.
#![cfg(feature = "mock")]

use std::collections::VecDeque;
use std::sync::LazyLock;
use std::time::{Duration, Instant, UNIX_EPOCH};

use http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use service_auth::acquire::{Acquirer, Awaiting, Step};
use service_auth::credentials::{Algorithm, KeyRing, SigningKey};
use service_auth::endpoint::{Issuer, TokenEndpoint, UrlPolicy};
use service_auth::error::{TokenError, TransportError, TransportErrorKind};
use service_auth::flow::{
    ClientAssertion, ClientAuth, ClientCredentials, JwtBearer, RequestOptions,
};
use service_auth::manager::{
    CachedToken, Error, FetchId, Generation, RefreshPolicy, TokenManager, TokenState, Wake,
};
use service_auth::method::{Endpoints, Method};
use service_auth::mock::{Fault, MockServer, SecretMethod};
use service_auth::response::{MAX_LIFETIME, UNKNOWN_LIFETIME};
use service_auth::rng::Rng;
use service_auth::secret::{ClientSecret, PersonalAccessToken};
use service_auth::time::Now;
use service_auth::token::Token;

const ISSUER: &str = "https://mock.service-auth.test";
const USER: &str = "service-user-1";
const BASIC_CLIENT: &str = "basic-client";
const POST_CLIENT: &str = "post-client";
const KEY_CLIENT: &str = "key-client";
const SECRET: &str = "client-secret-1";
const PAT: &str = "pat-0123456789abcdef";
/// 2023-11-14T22:13:20Z, where every schedule starts.
const UNIX_START: u64 = 1_700_000_000;
/// Tolerance for the floating-point jitter arithmetic of the manager.
const JITTER_SLACK: Duration = Duration::from_micros(1);

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/proptest_manager.txt"
        )))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Keys: two registered at the provider, one not
// ---------------------------------------------------------------------------

struct KeyDef {
    pem: String,
    kid: &'static str,
    registered: bool,
}

static KEYS: LazyLock<Vec<KeyDef>> = LazyLock::new(|| {
    [
        (Algorithm::EdDsa, "key-1", true),
        (Algorithm::Es256, "key-2", true),
        (Algorithm::EdDsa, "key-unregistered", false),
    ]
    .into_iter()
    .map(|(algorithm, kid, registered)| {
        let key = SigningKey::generate(algorithm, kid).expect("generates");
        let pem = key.to_pkcs8_pem().expect("encodes").to_string();
        KeyDef {
            pem,
            kid,
            registered,
        }
    })
    .collect()
});

fn signing_key(index: usize) -> SigningKey {
    let def = &KEYS[index % KEYS.len()];
    SigningKey::from_pem(&def.pem, def.kid).expect("parses")
}

// ---------------------------------------------------------------------------
// Schedules
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum MethodKind {
    JwtBearer,
    SecretBasic,
    SecretPost,
    ClientAssertion,
    PersonalAccessToken,
}

impl MethodKind {
    fn uses_keys(self) -> bool {
        matches!(self, Self::JwtBearer | Self::ClientAssertion)
    }
}

#[derive(Clone, Debug)]
struct Scenario {
    method: MethodKind,
    discover: bool,
    background: bool,
    policy: RefreshPolicy,
    /// The lifetimes the provider issues, one mock server each.
    lifetimes: Vec<Duration>,
    /// How long every request takes on the network, each way together.
    latency: Duration,
    seed: u64,
    ops: Vec<Op>,
}

#[derive(Clone, Debug)]
enum Op {
    /// Time passes.
    Advance(Span),
    /// A caller asks for a token.
    Ask,
    /// The answer to a coming token request is scripted.
    Script(Scripted),
    /// The provider issues tokens of the lifetime at this index from now on.
    UseLifetime(usize),
    /// The key ring's key is replaced by the key at this index.
    Rotate(usize),
    /// A resource server rejects the current token, or an older one.
    Invalidate { stale: bool },
    /// The user calls `reset`.
    Reset,
}

/// How far time moves, relative to what matters at that moment.
#[derive(Clone, Copy, Debug)]
enum Span {
    Millis(u64),
    /// A multiple of the lifetime the provider currently issues.
    Lifetimes(f64),
    /// A multiple of the permanent hold-off.
    HoldOffs(f64),
}

#[derive(Clone, Debug, PartialEq)]
enum Scripted {
    Mock(Fault),
    TransportFailure,
}

fn lifetime() -> impl Strategy<Value = Duration> {
    prop_oneof![
        2 => 1u64..60,
        2 => 60u64..3600,
        1 => 3600u64..86_400,
        1 => 86_400u64..3 * 86_400,
    ]
    .prop_map(Duration::from_secs)
}

fn policy() -> impl Strategy<Value = RefreshPolicy> {
    (
        0u64..600,
        prop_oneof![Just(0.0), 0.0f64..=1.0],
        0u64..30,
        1u64..5000,
        0u64..120,
        1u64..900,
    )
        .prop_map(|(margin, jitter, safety, initial_ms, max, hold_off)| {
            let mut policy = RefreshPolicy::default();
            policy.margin = Duration::from_secs(margin);
            policy.jitter = jitter;
            policy.safety = Duration::from_secs(safety);
            policy.backoff_initial = Duration::from_millis(initial_ms);
            policy.backoff_max = Duration::from_secs(max);
            policy.permanent_hold_off = Duration::from_secs(hold_off);
            policy
        })
}

fn status() -> impl Strategy<Value = StatusCode> {
    prop::sample::select(vec![
        200u16, 201, 204, 301, 400, 401, 403, 404, 405, 408, 410, 429, 500, 502, 503, 504,
    ])
    .prop_map(|code| StatusCode::from_u16(code).expect("a valid status"))
}

fn scripted() -> impl Strategy<Value = Scripted> {
    let seconds = |max: u64| (0u64..max * 1000).prop_map(Duration::from_millis);
    prop_oneof![
        3 => status().prop_map(|s| Scripted::Mock(Fault::Status(s))),
        2 => seconds(120)
            .prop_map(|retry_after| Scripted::Mock(Fault::RateLimited { retry_after })),
        1 => Just(Scripted::Mock(Fault::Html)),
        1 => Just(Scripted::Mock(Fault::MalformedJson)),
        1 => Just(Scripted::Mock(Fault::TruncatedJson)),
        1 => Just(Scripted::Mock(Fault::EmptyBody)),
        1 => Just(Scripted::Mock(Fault::WrongTokenType)),
        1 => Just(Scripted::Mock(Fault::MissingExpiresIn)),
        1 => Just(Scripted::Mock(Fault::ZeroExpiresIn)),
        1 => Just(Scripted::Mock(Fault::StringExpiresIn)),
        2 => seconds(30).prop_map(|delay| Scripted::Mock(Fault::Delay(delay))),
        2 => prop::sample::select(vec![
            "invalid_client", "invalid_grant", "invalid_scope", "server_error",
            "temporarily_unavailable", "slow_down",
        ])
        .prop_map(|code| Scripted::Mock(Fault::OAuthError(code))),
        2 => Just(Scripted::TransportFailure),
    ]
}

fn span() -> impl Strategy<Value = Span> {
    prop_oneof![
        3 => (0u64..5000).prop_map(Span::Millis),
        4 => (0.0f64..1.5).prop_map(Span::Lifetimes),
        1 => (0.0f64..1.5).prop_map(Span::HoldOffs),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => span().prop_map(Op::Advance),
        6 => Just(Op::Ask),
        4 => scripted().prop_map(Op::Script),
        1 => (0usize..3).prop_map(Op::UseLifetime),
        1 => (0usize..3).prop_map(Op::Rotate),
        1 => any::<bool>().prop_map(|stale| Op::Invalidate { stale }),
        1 => Just(Op::Reset),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let method = prop::sample::select(vec![
        MethodKind::JwtBearer,
        MethodKind::SecretBasic,
        MethodKind::SecretPost,
        MethodKind::ClientAssertion,
        MethodKind::PersonalAccessToken,
    ]);
    let latency = prop_oneof![Just(0u64), 1u64..2000].prop_map(Duration::from_millis);
    (
        (method, any::<bool>(), any::<bool>(), policy()),
        (
            proptest::collection::vec(lifetime(), 1..4),
            latency,
            any::<u64>(),
        ),
        proptest::collection::vec(op(), 1..60),
    )
        .prop_map(
            |((method, discover, background, policy), (lifetimes, latency, seed), ops)| Scenario {
                method,
                discover,
                background,
                policy,
                lifetimes,
                latency,
                seed,
                ops,
            },
        )
}

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

/// What one token request will end in, predicted when it is sent.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Token {
        lifetime: Option<Duration>,
        known: bool,
    },
    Failure {
        permanent: bool,
        retry_after: Option<Duration>,
    },
}

#[derive(Clone, Debug)]
struct ModelToken {
    index: usize,
    expires: Option<Instant>,
    serve_until: Option<Instant>,
    refresh_bounds: Option<(Instant, Instant)>,
    /// Learnt from the manager once checked against `refresh_bounds`.
    refresh_at: Option<Instant>,
}

#[derive(Clone, Debug)]
struct ModelFailure {
    permanent: bool,
    /// The next fetch may start at some instant in `[lo, hi]`; learnt
    /// exactly (`lo == hi`) from the manager's deadline when it shows it.
    lo: Instant,
    hi: Instant,
}

/// The reference: the documented rules of `RefreshPolicy`, the response
/// parser and the mock server, kept as plain data.
#[derive(Debug)]
struct Model {
    policy: RefreshPolicy,
    method: MethodKind,
    discover: bool,
    latency: Duration,
    lifetime: Duration,
    key_registered: bool,
    metadata_known: bool,
    faults: VecDeque<Scripted>,
    cached: Option<ModelToken>,
    generations: usize,
    failure: Option<ModelFailure>,
    in_flight: Option<ModelFetch>,
    token_requests: usize,
    discovery_requests: usize,
    issued: usize,
}

#[derive(Clone, Debug)]
struct ModelFetch {
    /// When the response to the request now travelling arrives.
    arrives: Instant,
    /// `None` while discovery is in flight.
    outcome: Option<Outcome>,
}

impl Model {
    fn new(scenario: &Scenario) -> Self {
        Self {
            policy: scenario.policy.clone().normalized(),
            method: scenario.method,
            discover: scenario.discover,
            latency: scenario.latency,
            lifetime: scenario.lifetimes[0],
            key_registered: true,
            metadata_known: !scenario.discover,
            faults: VecDeque::new(),
            cached: None,
            generations: 0,
            failure: None,
            in_flight: None,
            token_requests: 0,
            discovery_requests: 0,
            issued: 0,
        }
    }

    fn is_fresh(&self, now: Instant) -> bool {
        self.cached
            .as_ref()
            .is_some_and(|token| match token.expires {
                None => true,
                Some(_) => now < token.refresh_at.expect("synced after caching"),
            })
    }

    fn servable(&self, now: Instant) -> Option<&ModelToken> {
        self.cached
            .as_ref()
            .filter(|token| token.serve_until.is_none_or(|until| now < until))
    }

    /// Whether a failure keeps a fetch from starting; `None` when the model
    /// cannot tell yet (the manager's answer then teaches it).
    fn blocked(&self, now: Instant) -> Option<bool> {
        match &self.failure {
            None => Some(false),
            Some(failure) if now < failure.lo => Some(true),
            Some(failure) if now >= failure.hi => Some(false),
            Some(_) => None,
        }
    }

    /// Whether `poll_fetch(now)` starts a fetch.
    fn fetch_due(&self, now: Instant) -> Option<bool> {
        if self.in_flight.is_some() || self.is_fresh(now) {
            return Some(false);
        }
        self.blocked(now).map(|blocked| !blocked)
    }

    /// Learns from the manager whether a failure blocks at `now`.
    fn learn_blocked(&mut self, now: Instant, blocked: bool) {
        let Some(failure) = &mut self.failure else {
            return;
        };
        if blocked {
            failure.lo = failure.lo.max(now + Duration::from_nanos(1));
        } else {
            failure.hi = failure.hi.min(now);
        }
        assert!(
            failure.lo <= failure.hi,
            "the manager's backoff left its bounds"
        );
    }

    /// A fetch starts at `now`: the first request is discovery or the token
    /// request. Returns the outcome when it is known at once (a personal
    /// access token needs no request).
    fn start(&mut self, now: Instant) -> Option<Outcome> {
        if self.method == MethodKind::PersonalAccessToken {
            return Some(Outcome::Token {
                lifetime: None,
                known: true,
            });
        }
        if !self.metadata_known {
            self.discovery_requests += 1;
            self.in_flight = Some(ModelFetch {
                arrives: now + self.latency,
                outcome: None,
            });
        } else {
            self.send_token_request(now);
        }
        None
    }

    /// The token request is sent at `now`: which answer it will get.
    fn send_token_request(&mut self, now: Instant) {
        let scripted = self.faults.pop_front();
        let (outcome, delay) = match &scripted {
            Some(Scripted::TransportFailure) => (
                Outcome::Failure {
                    permanent: false,
                    retry_after: None,
                },
                Duration::ZERO,
            ),
            Some(Scripted::Mock(fault)) => {
                self.token_requests += 1;
                (self.answer(Some(fault)), delay_of(fault))
            }
            None => {
                self.token_requests += 1;
                (self.answer(None), Duration::ZERO)
            }
        };
        self.in_flight = Some(ModelFetch {
            arrives: now + self.latency + delay,
            outcome: Some(outcome),
        });
    }

    /// The mock's answer to a token request with `fault` scripted, as the
    /// library reads it (`service_auth::response` rules).
    fn answer(&mut self, fault: Option<&Fault>) -> Outcome {
        let transient = Outcome::Failure {
            permanent: false,
            retry_after: None,
        };
        let permanent = Outcome::Failure {
            permanent: true,
            retry_after: None,
        };
        let replaced = match fault {
            Some(Fault::Status(status)) => Some(self.status_outcome(*status)),
            Some(Fault::RateLimited { retry_after }) => Some(Outcome::Failure {
                permanent: false,
                retry_after: Some(Duration::from_secs(retry_after.as_secs_f64().ceil() as u64)),
            }),
            Some(Fault::Html | Fault::MalformedJson | Fault::EmptyBody) => Some(transient.clone()),
            Some(Fault::OAuthError(code)) => {
                let rfc = [
                    "invalid_request",
                    "invalid_client",
                    "invalid_grant",
                    "unauthorized_client",
                    "unsupported_grant_type",
                    "invalid_scope",
                ];
                Some(if rfc.contains(code) {
                    permanent.clone()
                } else {
                    transient.clone()
                })
            }
            _ => None,
        };
        if let Some(outcome) = replaced {
            return outcome;
        }
        if self.method.uses_keys() && !self.key_registered {
            // invalid_grant (the grant) or invalid_client (client assertion).
            return permanent;
        }
        self.issued += 1;
        let stated = Outcome::Token {
            lifetime: Some(self.lifetime.min(MAX_LIFETIME)),
            known: true,
        };
        match fault {
            Some(Fault::TruncatedJson | Fault::ZeroExpiresIn) => transient,
            Some(Fault::WrongTokenType) => permanent,
            Some(Fault::MissingExpiresIn) => Outcome::Token {
                lifetime: Some(UNKNOWN_LIFETIME),
                known: false,
            },
            _ => stated,
        }
    }

    fn status_outcome(&mut self, status: StatusCode) -> Outcome {
        let transient = status.is_success()
            || status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT;
        let moved = [
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::GONE,
        ];
        if self.discover && moved.contains(&status) {
            self.metadata_known = false;
        }
        Outcome::Failure {
            permanent: !transient,
            retry_after: None,
        }
    }

    /// The response travelling now arrives at `now`: discovery leads to the
    /// token request, a token response ends the fetch with its outcome.
    fn arrive(&mut self, now: Instant) -> Option<Outcome> {
        let fetch = self.in_flight.take().expect("a fetch in flight");
        assert_eq!(fetch.arrives, now);
        match fetch.outcome {
            None => {
                self.metadata_known = true;
                self.send_token_request(now);
                None
            }
            Some(outcome) => Some(outcome),
        }
    }

    /// A fetch ends at `now` with `outcome`.
    fn complete(&mut self, outcome: &Outcome, now: Instant) {
        self.in_flight = None;
        match outcome {
            Outcome::Token { lifetime, .. } => {
                self.failure = None;
                self.cached = Some(self.schedule(*lifetime, now));
                self.generations += 1;
            }
            Outcome::Failure {
                permanent,
                retry_after,
            } => self.fail(*permanent, *retry_after, now),
        }
    }

    fn fail(&mut self, permanent: bool, retry_after: Option<Duration>, now: Instant) {
        let policy = &self.policy;
        let (lo, hi) = if permanent {
            (policy.permanent_hold_off, policy.permanent_hold_off)
        } else {
            let floor = retry_after
                .unwrap_or_default()
                .min(policy.permanent_hold_off);
            (
                policy.backoff_initial.max(floor),
                policy.backoff_max.max(floor),
            )
        };
        self.failure = Some(ModelFailure {
            permanent,
            lo: now + lo,
            hi: now + hi,
        });
    }

    /// The rules of `RefreshPolicy` for a token that arrives at `now`.
    fn schedule(&self, lifetime: Option<Duration>, now: Instant) -> ModelToken {
        let index = self.generations;
        let Some(lifetime) = lifetime else {
            return ModelToken {
                index,
                expires: None,
                serve_until: None,
                refresh_bounds: None,
                refresh_at: None,
            };
        };
        let expires = now + lifetime;
        let serve_until = expires - self.policy.safety.min(lifetime / 10);
        let window = self.policy.margin.min(lifetime / 2);
        let earliest = now + lifetime / 2;
        let latest = (expires - window).max(earliest).min(serve_until);
        let jittered = expires
            .checked_sub(window + window.mul_f64(self.policy.jitter))
            .unwrap_or(now)
            .max(earliest)
            .min(serve_until);
        ModelToken {
            index,
            expires: Some(expires),
            serve_until: Some(serve_until),
            refresh_bounds: Some((jittered.checked_sub(JITTER_SLACK).unwrap_or(now), latest)),
            refresh_at: None,
        }
    }
}

fn delay_of(fault: &Fault) -> Duration {
    match fault {
        Fault::Delay(delay) => *delay,
        _ => Duration::ZERO,
    }
}

// ---------------------------------------------------------------------------
// The pair: machines, mock servers and the virtual clock
// ---------------------------------------------------------------------------

/// What travels back to the acquirer.
enum Payload {
    Response(http::Response<Vec<u8>>),
    TransportFailure,
}

struct InFlight {
    fetch: FetchId,
    awaiting: Awaiting,
    payload: Payload,
    arrives: Instant,
}

/// How a fetch ended, for the rule on when the next may start.
#[derive(Clone, Copy, Debug)]
enum Ended {
    Token { lifetime: Option<Duration> },
    Transient { floor: Duration },
    Permanent,
}

/// Everything the invariants remember about the past.
#[derive(Debug, Default)]
struct History {
    last_end: Option<(Instant, Ended)>,
    reset_since: bool,
    rejected_since: bool,
    fetches: usize,
    resets: usize,
    rejections: usize,
    served: usize,
}

struct Pair {
    scenario: Scenario,
    manager: TokenManager,
    acquirer: Acquirer,
    keys: KeyRing,
    servers: Vec<MockServer>,
    server: usize,
    faults: VecDeque<Scripted>,
    now: Now,
    start: Instant,
    in_flight: Vec<InFlight>,
    waiters: usize,
    /// Per generation: the server that issued it and how long its response
    /// travelled after the server handled the request.
    generations: Vec<(Generation, usize, Duration)>,
    /// The server that handled the last token request, and when.
    handled: (usize, Instant),
    discovery_requests: usize,
    model: Model,
    history: History,
}

impl Pair {
    fn new(scenario: Scenario) -> Self {
        let keys = KeyRing::new(signing_key(0));
        let policy = UrlPolicy::https_only();
        let issuer = Issuer::parse(ISSUER, policy).expect("the issuer parses");
        let method = method(scenario.method, &keys, &issuer);
        let endpoints = if scenario.discover {
            Endpoints::Discover(issuer)
        } else {
            let url = format!("{ISSUER}/oauth/v2/token");
            let token_endpoint = TokenEndpoint::parse(&url, policy).expect("parses");
            Endpoints::Fixed {
                issuer: Some(issuer),
                token_endpoint,
            }
        };
        let mut root = Rng::from_seed(scenario.seed);
        let manager = TokenManager::new(scenario.policy.clone(), Rng::from_seed(root.next_u64()));
        let acquirer = Acquirer::new(
            method,
            endpoints,
            RequestOptions::default(),
            Rng::from_seed(root.next_u64()),
        );
        let servers = scenario
            .lifetimes
            .iter()
            .map(|lifetime| server(*lifetime, root.next_u64()))
            .collect();
        let start = Instant::now();
        let now = Now::new(start, UNIX_EPOCH + Duration::from_secs(UNIX_START));
        let model = Model::new(&scenario);
        Self {
            scenario,
            manager,
            acquirer,
            keys,
            servers,
            server: 0,
            faults: VecDeque::new(),
            now,
            start,
            in_flight: Vec::new(),
            waiters: 0,
            generations: Vec::new(),
            handled: (0, start),
            discovery_requests: 0,
            model,
            history: History::default(),
        }
    }

    fn instant(&self) -> Instant {
        self.now.instant()
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Advance(span) => {
                let by = self.span(span);
                self.drive_until(self.instant() + by);
            }
            Op::Ask => self.ask(),
            Op::Script(scripted) => {
                self.faults.push_back(scripted.clone());
                self.model.faults.push_back(scripted);
            }
            Op::UseLifetime(index) => {
                self.server = index % self.servers.len();
                self.model.lifetime = self.scenario.lifetimes[self.server];
            }
            Op::Rotate(index) => self.rotate(index),
            Op::Invalidate { stale } => self.invalidate(stale),
            Op::Reset => {
                self.manager.reset();
                self.model.failure = None;
                self.history.reset_since = true;
                self.history.resets += 1;
            }
        }
        // Zero-latency answers arrive at once.
        self.drive_until(self.instant());
        self.check();
    }

    fn span(&self, span: Span) -> Duration {
        let lifetime = self.model.lifetime.min(MAX_LIFETIME);
        let by = match span {
            Span::Millis(ms) => Duration::from_millis(ms),
            Span::Lifetimes(f) => lifetime.mul_f64(f),
            Span::HoldOffs(f) => self.model.policy.permanent_hold_off.mul_f64(f),
        };
        // A background refresher fetches about twice per lifetime; a cap
        // keeps a one-second token and a long hold-off from making a case
        // of thousands of fetches.
        if self.scenario.background {
            by.min(lifetime.min(UNKNOWN_LIFETIME) * 40)
        } else {
            by
        }
    }

    fn rotate(&mut self, index: usize) {
        if !self.scenario.method.uses_keys() {
            return;
        }
        self.keys.replace(signing_key(index));
        self.model.key_registered = KEYS[index % KEYS.len()].registered;
    }

    fn invalidate(&mut self, stale: bool) {
        let now = self.instant();
        let Some(&(generation, _, _)) = self
            .generations
            .len()
            .checked_sub(1 + usize::from(stale))
            .and_then(|index| self.generations.get(index))
        else {
            return;
        };
        let accepted = self.manager.invalidate(generation, now);
        let model_accepts = !stale
            && self
                .model
                .servable(now)
                .is_some_and(|token| token.index + 1 == self.generations.len());
        assert_eq!(accepted, model_accepts, "invalidate(stale: {stale})");
        if !accepted {
            return;
        }
        let token = self.model.cached.take().expect("accepted, so cached");
        self.history.rejected_since = true;
        self.history.rejections += 1;
        if token.expires.is_none() {
            // A personal access token cannot be refreshed: held off.
            self.model.fail(true, None, now);
            self.history.last_end = Some((now, Ended::Permanent));
            self.history.reset_since = false;
        }
    }

    /// A caller asks, as the drivers' slow path does: start a fetch if one
    /// is due, then take what the manager offers.
    fn ask(&mut self) {
        let now = self.instant();
        let lease_covers = self.manager.lease().is_some_and(|lease| lease.covers(now));
        let fetch = self.manager.poll_fetch(now);
        self.expect_fetch(fetch.is_some(), now);
        assert!(
            !(lease_covers && fetch.is_some()),
            "the lease promised that no fetch was due"
        );
        if let Some(fetch) = fetch {
            self.start_fetch(fetch);
        }
        match self.manager.token(now) {
            TokenState::Fresh(cached) | TokenState::RefreshDue(cached) => {
                let cached = std::sync::Arc::clone(cached);
                self.serve(&cached);
            }
            TokenState::Pending => {
                assert!(
                    self.model.in_flight.is_some(),
                    "pending with nothing in flight"
                );
                assert!(self.model.servable(now).is_none());
                self.waiters += 1;
            }
            TokenState::Unavailable(error) => {
                assert!(!lease_covers, "a covering lease but no token");
                assert!(self.model.servable(now).is_none() && self.model.in_flight.is_none());
                let failure = self.model.failure.as_ref().expect("a failure blocks");
                match error {
                    Error::HeldOff { .. } => assert!(failure.permanent),
                    Error::BackingOff { .. } => assert!(!failure.permanent),
                    other => panic!("unexpected unavailability: {other}"),
                }
                self.model.learn_blocked(now, true);
            }
            other => panic!("unexpected token state {other:?}"),
        }
    }

    /// Compares `poll_fetch`'s decision with the model's.
    fn expect_fetch(&mut self, started: bool, now: Instant) {
        match self.model.fetch_due(now) {
            Some(due) => assert_eq!(started, due, "poll_fetch at +{:?}", now - self.start),
            None => self.model.learn_blocked(now, !started),
        }
        if started {
            self.check_fetch_start(now);
        }
    }

    /// The rule on when a fetch may start after the previous one ended.
    fn check_fetch_start(&mut self, now: Instant) {
        let history = &mut self.history;
        history.fetches += 1;
        let policy = &self.model.policy;
        if let Some((ended, how)) = history.last_end {
            let earliest = match how {
                Ended::Token { lifetime } if !history.rejected_since => {
                    let Some(lifetime) = lifetime else {
                        panic!("a fetch after a token that never expires, with no rejection");
                    };
                    Some(ended + lifetime / 2)
                }
                Ended::Transient { floor } if !history.reset_since => {
                    Some(ended + policy.backoff_initial.max(floor))
                }
                // One request per hold-off, however often callers ask.
                Ended::Permanent if !history.reset_since => Some(ended + policy.permanent_hold_off),
                _ => None,
            };
            if let Some(earliest) = earliest {
                assert!(
                    now >= earliest,
                    "fetch {:?} too early after {how:?}",
                    now - ended
                );
            }
        }
    }

    fn start_fetch(&mut self, fetch: FetchId) {
        let now = self.now;
        let known = self.model.start(now.instant());
        let step = self.acquirer.start(now);
        match (step, known) {
            (Step::Done(result), Some(outcome)) => self.complete(fetch, result, &outcome),
            (Step::Send { awaiting, request }, None) => self.send(fetch, awaiting, request),
            (step, known) => panic!("acquirer {step:?}, model {known:?}"),
        }
    }

    /// Sends `request`: to the current mock server, with the next scripted
    /// fault, or nowhere when a transport failure is scripted.
    fn send(&mut self, fetch: FetchId, awaiting: Awaiting, request: http::Request<Vec<u8>>) {
        let now = self.now;
        let is_token = request.method() == http::Method::POST;
        let scripted = if is_token {
            self.faults.pop_front()
        } else {
            None
        };
        let server = &self.servers[self.server];
        let (payload, delay) = match scripted {
            Some(Scripted::TransportFailure) => (Payload::TransportFailure, Duration::ZERO),
            other => {
                if let Some(Scripted::Mock(fault)) = other {
                    server.push_fault(fault);
                }
                let reply = server.respond(request, now);
                assert_eq!(server.pending_faults(), 0);
                (
                    Payload::Response(reply.response),
                    reply.delay.unwrap_or_default(),
                )
            }
        };
        if is_token {
            self.handled = (self.server, now.instant());
        } else {
            self.discovery_requests += 1;
        }
        let arrives = now.instant() + self.scenario.latency + delay;
        let model = self
            .model
            .in_flight
            .as_ref()
            .expect("the model sent it too");
        assert_eq!(arrives, model.arrives, "arrival of the response");
        self.in_flight.push(InFlight {
            fetch,
            awaiting,
            payload,
            arrives,
        });
        assert!(self.in_flight.len() <= 1, "two token requests in flight");
    }

    /// Moves the clock to `target`, handling every arrival and (with
    /// background refresh) every deadline on the way, in order.
    fn drive_until(&mut self, target: Instant) {
        for _ in 0..100_000 {
            let arrival = self.in_flight.first().map(|f| f.arrives);
            let deadline = if self.scenario.background {
                self.manager.poll_timeout().map(|(at, _)| at)
            } else {
                None
            };
            let next = [arrival, deadline].into_iter().flatten().min();
            let Some(next) = next.filter(|at| *at <= target) else {
                self.move_to(target);
                self.manager.handle_timeout(target);
                return;
            };
            self.move_to(next);
            if arrival == Some(next) {
                self.arrive();
            } else {
                self.timeout();
            }
            self.check();
        }
        panic!("more than 100000 events before {:?}", target - self.start);
    }

    fn move_to(&mut self, at: Instant) {
        let now = self.instant();
        if at > now {
            self.now = self.now.advance(at - now);
        }
    }

    /// A deadline of `poll_timeout` passed: what a background refresher does.
    fn timeout(&mut self) {
        let now = self.instant();
        self.manager.handle_timeout(now);
        let fetch = self.manager.poll_fetch(now);
        self.expect_fetch(fetch.is_some(), now);
        if let Some(fetch) = fetch {
            self.start_fetch(fetch);
        }
        if let Some((at, wake)) = self.manager.poll_timeout() {
            assert!(at > now, "deadline {wake} at {at:?} not cleared at {now:?}");
        }
    }

    fn arrive(&mut self) {
        let flight = self.in_flight.remove(0);
        let now = self.now;
        let predicted = self.model.arrive(now.instant());
        let step = match flight.payload {
            Payload::Response(response) => {
                self.acquirer
                    .handle_response(flight.awaiting, response, now)
            }
            Payload::TransportFailure => {
                let error = TransportError::from_kind(TransportErrorKind::Connect);
                Step::Done(Err(error.into()))
            }
        };
        match (step, predicted) {
            (Step::Send { awaiting, request }, None) => self.send(flight.fetch, awaiting, request),
            (Step::Done(result), Some(outcome)) => self.complete(flight.fetch, result, &outcome),
            (step, predicted) => panic!("acquirer {step:?}, model {predicted:?}"),
        }
    }

    /// A fetch ends: the manager takes the result, the waiters get it.
    fn complete(&mut self, fetch: FetchId, result: Result<Token, TokenError>, outcome: &Outcome) {
        let now = self.instant();
        check_result(&result, outcome);
        let (server, handled_at) = self.handled;
        let transit = now.saturating_duration_since(handled_at);
        let handed = self.manager.handle_result(fetch, result, now);
        self.model.complete(outcome, now);
        self.history.reset_since = false;
        self.history.rejected_since = false;
        let ended = match outcome {
            Outcome::Token { lifetime, .. } => Ended::Token {
                lifetime: *lifetime,
            },
            Outcome::Failure {
                permanent: true, ..
            } => Ended::Permanent,
            Outcome::Failure { retry_after, .. } => Ended::Transient {
                floor: retry_after
                    .unwrap_or_default()
                    .min(self.model.policy.permanent_hold_off),
            },
        };
        self.history.last_end = Some((now, ended));

        if let Ok(cached) = &handed {
            self.generations
                .push((cached.generation(), server, transit));
        }
        self.learn_schedule();
        let waiters = std::mem::take(&mut self.waiters);
        for _ in 0..waiters {
            match &handed {
                Ok(cached) => self.serve(cached),
                Err(Error::Token(error)) => {
                    let Outcome::Failure { permanent, .. } = outcome else {
                        panic!("the waiters got {error} for a token");
                    };
                    assert_eq!(error.retry().is_transient(), !permanent);
                }
                Err(other) => panic!("the waiters got {other}"),
            }
        }
    }

    /// Checks the manager's schedule against the model's bounds, then lets
    /// the model adopt the manager's draw.
    fn learn_schedule(&mut self) {
        let now = self.instant();
        let cached = self.manager.cached().cloned();
        match (&mut self.model.cached, cached) {
            (Some(model), Some(cached)) => {
                assert_eq!(model.expires, cached.expires_at());
                assert_eq!(model.serve_until, cached.serve_until());
                if let Some((lo, hi)) = model.refresh_bounds {
                    let at = cached.refresh_at().expect("an expiring token refreshes");
                    assert!(lo <= at && at <= hi, "refresh point outside its window");
                }
                model.refresh_at = cached.refresh_at();
            }
            (None, None) => {}
            // The manager drops an unservable token at its next timeout.
            (Some(model), None) if model.serve_until.is_some_and(|until| until <= now) => {}
            (model, manager) => panic!("cached: model {model:?}, manager {manager:?}"),
        }
        if self.manager.is_fetching() {
            return;
        }
        let Some(failure) = &mut self.model.failure else {
            return;
        };
        match self.manager.poll_timeout() {
            Some((at, Wake::Backoff | Wake::HoldOff)) => {
                assert!(
                    failure.lo <= at && at <= failure.hi,
                    "backoff outside its bounds"
                );
                failure.lo = at;
                failure.hi = at;
            }
            Some((at, Wake::Expiry)) => failure.lo = failure.lo.max(at),
            _ => {}
        }
    }

    /// A token handed to a caller: the invariants of serving.
    fn serve(&mut self, cached: &CachedToken) {
        let now = self.instant();
        self.history.served += 1;
        let model = self
            .model
            .servable(now)
            .expect("the model has a servable token");
        assert_eq!(model.index + 1, self.model.generations);
        assert_eq!(
            cached.generation(),
            self.generations.last().expect("issued").0
        );
        assert!(cached.header_value().is_some());
        let Some(expires) = cached.expires_at() else {
            assert_eq!(cached.access_token().secret(), PAT);
            return;
        };
        // The core invariant: never at or after expiry minus the margin.
        let lifetime = expires - cached.received_at();
        let margin = self.model.policy.safety.min(lifetime / 10);
        assert!(
            now < expires - margin,
            "token served {:?} before expiry",
            expires - now
        );

        // The provider still honours it, when the response travelled no
        // longer than the margin (expiry counts from arrival, see
        // `service_auth::time::Now`) and it stated the lifetime.
        let &(_, server, transit) = self.generations.last().expect("issued");
        if cached.lifetime_known() && transit <= margin {
            let request = http::Request::get(format!("{ISSUER}/resource"))
                .header(
                    "authorization",
                    cached.header_value().expect("checked").clone(),
                )
                .body(Vec::new())
                .expect("a valid request");
            let response = self.servers[server].handle(request, self.now);
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "the provider refused a served token"
            );
        }
    }

    /// The checks after every event.
    fn check(&mut self) {
        let now = self.instant();
        assert!(self.in_flight.len() <= 1);
        assert_eq!(self.manager.is_fetching(), self.model.in_flight.is_some());
        assert_eq!(
            self.in_flight.len(),
            usize::from(self.model.in_flight.is_some())
        );
        let token_requests: usize = self.servers.iter().map(MockServer::token_requests).sum();
        let issued: usize = self.servers.iter().map(MockServer::issued_tokens).sum();
        assert_eq!(token_requests, self.model.token_requests, "token requests");
        assert_eq!(
            self.discovery_requests, self.model.discovery_requests,
            "discovery requests"
        );
        assert_eq!(issued, self.model.issued, "issued tokens");
        let last_error = self.manager.last_error().map(|e| e.retry().is_transient());
        let model_error = self.model.failure.as_ref().map(|f| !f.permanent);
        assert_eq!(last_error, model_error, "the last error's retry advice");
        if let Some(lease) = self.manager.lease()
            && lease.covers(now)
        {
            assert!(
                lease.token().is_servable(now),
                "a lease covers an unservable token"
            );
        }
        self.learn_schedule();
    }

    /// The faults stop and the key is a registered one: a token must come
    /// within the bound that the backoff rules give.
    fn recover(&mut self) {
        self.faults.clear();
        self.model.faults.clear();
        self.rotate(0);
        let now = self.instant();
        let policy = &self.model.policy;
        let wait = |failure: Option<&ModelFailure>, from: Instant| {
            failure.map_or(from, |failure| failure.hi.max(from))
        };
        let free_at = match &self.model.in_flight {
            Some(fetch) => {
                let arrives = match fetch.outcome {
                    None => fetch.arrives + self.scenario.latency,
                    Some(_) => fetch.arrives,
                };
                match &fetch.outcome {
                    Some(Outcome::Failure {
                        permanent: true, ..
                    }) => arrives + policy.permanent_hold_off,
                    Some(Outcome::Failure { retry_after, .. }) => {
                        let floor = retry_after
                            .unwrap_or_default()
                            .min(policy.permanent_hold_off);
                        arrives + policy.backoff_max.max(floor)
                    }
                    _ => arrives,
                }
            }
            None => wait(self.model.failure.as_ref(), now),
        };
        // Discovery may have to run again, then the token request.
        let bound = free_at + self.scenario.latency * 2;
        for _ in 0..64 {
            let served_before = self.history.served;
            self.ask();
            self.drive_until(self.instant());
            if self.history.served > served_before {
                assert!(
                    self.instant() <= bound,
                    "recovered {:?} late",
                    self.instant() - bound
                );
                return;
            }
            let arrival = self.in_flight.first().map(|f| f.arrives);
            let deadline = self.manager.poll_timeout().map(|(at, _)| at);
            let blocked_until = self.model.failure.as_ref().map(|f| f.hi);
            let next = [arrival, deadline, blocked_until]
                .into_iter()
                .flatten()
                .filter(|at| *at > self.instant())
                .min()
                .expect("something to wait for");
            self.drive_until(next);
            self.check();
        }
        panic!("no token after the faults stopped");
    }

    /// The total request count against the bound the schedule implies.
    fn check_totals(&self) {
        let history = &self.history;
        let discovery = self
            .servers
            .iter()
            .flat_map(MockServer::requests)
            .filter(|request| request.path.ends_with("openid-configuration"))
            .count();
        assert_eq!(
            discovery, self.discovery_requests,
            "discovery requests the servers saw"
        );
        let token_requests: usize = self.servers.iter().map(MockServer::token_requests).sum();
        assert!(token_requests <= history.fetches);
        assert!(self.model.discovery_requests <= history.fetches);
        let policy = &self.model.policy;
        let shortest_life = self
            .scenario
            .lifetimes
            .iter()
            .map(|l| (*l).min(MAX_LIFETIME).min(UNKNOWN_LIFETIME) / 2)
            .min()
            .expect("a lifetime");
        let gap = policy
            .backoff_initial
            .min(policy.permanent_hold_off)
            .min(shortest_life)
            .max(Duration::from_millis(1));
        let elapsed = self.instant() - self.start;
        let bound = 2
            + history.resets
            + history.rejections
            + usize::try_from(elapsed.as_nanos() / gap.as_nanos()).unwrap_or(usize::MAX);
        assert!(
            history.fetches <= bound,
            "{} fetches, bound {bound}",
            history.fetches
        );
    }
}

/// The library's reading of the answer matches the model's prediction.
fn check_result(result: &Result<Token, TokenError>, outcome: &Outcome) {
    match (result, outcome) {
        (Ok(token), Outcome::Token { lifetime, known }) => {
            assert_eq!(token.lifetime(), *lifetime);
            assert_eq!(token.lifetime_known(), *known);
        }
        (
            Err(error),
            Outcome::Failure {
                permanent,
                retry_after,
            },
        ) => {
            let retry = error.retry();
            assert_eq!(retry.is_transient(), !permanent, "{error}");
            if let Some(after) = retry_after {
                assert_eq!(
                    retry,
                    service_auth::error::RetryAdvice::Transient {
                        after: Some(*after)
                    }
                );
            }
            assert!(!error.to_string().contains(SECRET));
        }
        (result, outcome) => panic!("library {result:?}, model {outcome:?}"),
    }
}

fn method(kind: MethodKind, keys: &KeyRing, issuer: &Issuer) -> Method {
    match kind {
        MethodKind::JwtBearer => {
            Method::from(JwtBearer::new(USER, keys.clone(), issuer).scopes(["openid"]))
        }
        MethodKind::SecretBasic => Method::from(ClientCredentials::new(
            BASIC_CLIENT,
            ClientAuth::SecretBasic(ClientSecret::new(SECRET)),
        )),
        MethodKind::SecretPost => Method::from(ClientCredentials::new(
            POST_CLIENT,
            ClientAuth::SecretPost(ClientSecret::new(SECRET)),
        )),
        MethodKind::ClientAssertion => Method::from(ClientCredentials::new(
            KEY_CLIENT,
            ClientAuth::PrivateKeyJwt(ClientAssertion::new(keys.clone())),
        )),
        MethodKind::PersonalAccessToken => Method::from(PersonalAccessToken::new(PAT)),
    }
}

/// A mock server issuing tokens of `lifetime`, with every method's
/// principal registered (both registered keys, not the third).
fn server(lifetime: Duration, seed: u64) -> MockServer {
    let mut builder = MockServer::builder(ISSUER)
        .token_lifetime(lifetime)
        .personal_access_token(PAT)
        .seed(seed);
    for (index, def) in KEYS.iter().enumerate() {
        if def.registered {
            let public = signing_key(index).public_key();
            builder = builder
                .service_user(USER, public.clone())
                .client_key(KEY_CLIENT, public);
        }
    }
    builder
        .client_secret(BASIC_CLIENT, SECRET, SecretMethod::Basic)
        .client_secret(POST_CLIENT, SECRET, SecretMethod::Post)
        .build()
}

fn run(scenario: Scenario) {
    let ops = scenario.ops.clone();
    let mut pair = Pair::new(scenario);
    for op in ops {
        pair.run(op);
    }
    pair.recover();
    pair.check_totals();
}

proptest! {
    #![proptest_config(config())]

    /// Random schedules keep every invariant and match the model.
    #[test]
    fn schedules_match_the_model_and_keep_the_invariants(scenario in scenario()) {
        run(scenario);
    }
}

/// A permanent failure is held off whatever the policy says: a
/// `permanent_hold_off` of zero must not turn `invalid_client` into a busy
/// loop against the provider, just as `backoff_initial` is kept above zero.
#[test]
fn zero_hold_off_still_holds_off_permanent_errors() {
    let mut policy = RefreshPolicy::default();
    policy.permanent_hold_off = Duration::ZERO;
    let mut manager = TokenManager::new(policy, Rng::from_seed(1));
    let now = Instant::now();
    let fetch = manager.poll_fetch(now).expect("the first fetch is due");
    let error = TokenError::PersonalAccessTokenRejected;
    manager
        .handle_failure(fetch, error, now)
        .expect("own fetch");
    assert!(
        manager.poll_fetch(now).is_none(),
        "a permanent error was retried in the same instant"
    );
}
