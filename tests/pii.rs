//! The TRACE leak test: every event and span field the library (and the
//! mock) records at any level, across every method, discovery, refresh,
//! invalidation and every failure class, with both authenticators and the
//! loopback transports, must be free of every planted secret: the client
//! secret, its Basic header, fragments of the private keys, the assertions,
//! the access tokens, the personal access token. Errors returned to the
//! caller are checked the same way, in `Display` and `Debug`.
//!
//! The capture is a global subscriber (so that events on threads the
//! authenticators spawn are seen too); the tests take turns with a lock and
//! each starts from an empty capture. Each test also checks that the capture
//! holds the non-secret facts it should (method names, statuses, expiry), so
//! that capturing nothing cannot pass.
#![cfg(all(feature = "mock", feature = "tokio"))]

mod config_support;

use std::fmt::{Debug, Write as _};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use config_support::{ISSUER, Spy, TempDir, pem_chunks};
use http::StatusCode;
use service_auth::authenticator::Authenticator;
use service_auth::blocking::BlockingAuthenticator;
use service_auth::config::Config;
use service_auth::credentials::{Algorithm, SigningKey};
use service_auth::manager::CachedToken;
use service_auth::mock::{Fault, MockServer, SecretMethod};
use service_auth::rng::Rng;
use service_auth::secret::{ClientSecret, PersonalAccessToken};
use service_auth::time::{Clock, ManualClock, Now};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const CLIENT: &str = "svc-pii";
const SECRET: &str = "planted-secret-c0ffee-1234";
const PAT: &str = "planted-pat-deadbeef-5678";
const USER: &str = "service-user-pii";
const SEED: u64 = 11;
const HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------- capture

/// Every formatted event and span field, in order.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn push(&self, line: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

struct CaptureLayer(Lines);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = format!("{} {}:", meta.level(), meta.target());
        event.record(&mut Fields(&mut line));
        self.0.push(line);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut line = format!("span {}:", attrs.metadata().name());
        attrs.record(&mut Fields(&mut line));
        self.0.push(line);
    }

    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut line = "span record:".to_owned();
        values.record(&mut Fields(&mut line));
        self.0.push(line);
    }
}

/// Writes every field, raw: strings as they are, errors with their sources.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.0, " {}={value} ({value:?})", field.name());
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(self.0, " caused by {cause}");
            source = cause.source();
        }
    }
}

/// Installs the capturing subscriber once, and serialises the tests.
fn capture() -> (MutexGuard<'static, ()>, &'static Lines) {
    static LINES: OnceLock<Lines> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let lines = LINES.get_or_init(|| {
        let lines = Lines::default();
        let subscriber = Registry::default().with(CaptureLayer(lines.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        lines
    });
    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    lines.take();
    (turn, lines)
}

// ------------------------------------------------------------ the checks

/// What one test planted, and what it got back.
#[derive(Default)]
struct Ledger {
    secrets: Vec<String>,
    /// `Display` and `Debug` of everything returned to the caller.
    returned: Vec<String>,
}

impl Ledger {
    fn new() -> Self {
        let mut ledger = Self::default();
        ledger.plant(SECRET);
        ledger.plant(PAT);
        // The mock draws every access token it issues from a generator
        // seeded with SEED, including tokens whose response a fault spoils.
        let mut issued = Rng::from_seed(SEED);
        for _ in 0..256 {
            ledger.plant(issued.next_id());
        }
        ledger
    }

    fn plant(&mut self, secret: impl Into<String>) {
        self.secrets.push(secret.into());
    }

    fn plant_key(&mut self, pem: &str) {
        self.secrets.extend(pem_chunks(pem));
    }

    fn token(&mut self, token: &CachedToken) {
        self.plant(token.access_token().secret());
        self.returned.push(format!("{token:?} {:?}", **token));
    }

    fn error(&mut self, error: &impl std::error::Error) {
        let mut text = format!("{error} {error:?}");
        let mut source = error.source();
        while let Some(cause) = source {
            let _ = write!(text, " {cause}");
            source = cause.source();
        }
        self.returned.push(text);
    }

    fn debug(&mut self, value: &impl Debug) {
        self.returned.push(format!("{value:?}"));
    }

    /// Plants what the spy saw go out: assertions, client secrets in
    /// bodies and Basic headers.
    fn sent(&mut self, spy: &Spy) {
        for request in spy.seen() {
            for (name, value) in request.form() {
                if matches!(
                    name.as_str(),
                    "assertion" | "client_assertion" | "client_secret"
                ) {
                    self.plant(value);
                }
            }
            if let Some(value) = request.headers.get(http::header::AUTHORIZATION) {
                let value = value.to_str().expect("ascii");
                self.plant(
                    value
                        .trim_start_matches("Basic ")
                        .trim_start_matches("Bearer "),
                );
            }
        }
    }

    /// Fails on any leak, and on a capture that misses `expected`.
    fn check(&self, lines: &[String], expected: &[&str]) {
        assert!(lines.len() > 10, "too little was captured: {lines:#?}");
        let captured = lines.join("\n");
        for needle in expected {
            assert!(
                captured.contains(needle),
                "`{needle}` never logged:\n{captured}"
            );
        }
        for (what, text) in [("log", &captured), ("returned", &self.returned.join("\n"))] {
            for secret in &self.secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{what} leaks `{secret}`:\n{text}"
                );
            }
            if let Some(at) = jwt_at(text) {
                panic!("{what} holds something like a JWT at {at}:\n{text}");
            }
        }
    }
}

/// Where `text` holds `eyJ` and more than 20 base64url characters: every
/// JWT starts so (a base64url-encoded JSON object).
fn jwt_at(text: &str) -> Option<usize> {
    text.match_indices("eyJ")
        .find(|(at, _)| {
            let run = text[*at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .count();
            run > 20
        })
        .map(|(at, _)| at)
}

// --------------------------------------------------------------- the world

/// The mock, its clock, the keys it knows, and the key files on disk.
struct World {
    clock: ManualClock,
    server: MockServer,
    spy: Spy,
    key_file: std::path::PathBuf,
    client_key_file: std::path::PathBuf,
    _dir: TempDir,
}

impl World {
    fn new(ledger: &mut Ledger) -> Self {
        let clock = ManualClock::new(Now::new(Instant::now(), SystemTime::now()));
        let dir = TempDir::new("pii");
        let account = config_support::service_account(Algorithm::Rs256, "user-key", USER);
        let client = config_support::application(Algorithm::Es256, "client-key", "app-client");
        ledger.plant_key(&account.pem);
        ledger.plant_key(&client.pem);
        let key_file = dir.write("service-account.json", &account.json, 0o600);
        let client_key_file = dir.write("application.json", &client.json, 0o600);
        let server = MockServer::builder(ISSUER)
            .service_user(USER, account.public)
            .client_key("app-client", client.public)
            .client_secret(CLIENT, SECRET, SecretMethod::Basic)
            .client_secret("post-client", SECRET, SecretMethod::Post)
            .personal_access_token(PAT)
            .token_lifetime(HOUR)
            .seed(SEED)
            .clock(clock.clone())
            .build();
        let spy = Spy::new(server.clone());
        Self {
            clock,
            server,
            spy,
            key_file,
            client_key_file,
            _dir: dir,
        }
    }

    /// One configuration per method (and per client authentication).
    fn configs(&self) -> Vec<Config> {
        vec![
            Config::client_credentials(ISSUER, CLIENT, ClientSecret::new(SECRET)),
            Config::client_credentials(ISSUER, "post-client", ClientSecret::new(SECRET))
                .client_auth(service_auth::config::ClientSecretAuth::Post),
            Config::private_key_jwt(ISSUER, &self.key_file),
            Config::private_key_jwt(ISSUER, &self.client_key_file),
            Config::personal_access_token(Some(ISSUER), PersonalAccessToken::new(PAT)),
        ]
    }

    fn authenticator(&self, config: Config) -> Authenticator {
        config
            .resolve()
            .expect("valid")
            .authenticator()
            .clock(self.clock.clone())
            .seed(SEED)
            .background_refresh(false)
            .build(self.spy.clone())
            .expect("valid")
    }

    fn blocking(&self, config: Config) -> BlockingAuthenticator {
        config
            .resolve()
            .expect("valid")
            .blocking_authenticator()
            .clock(self.clock.clone())
            // Another seed than the async one: the mock refuses a replayed jti.
            .seed(SEED + 1)
            .background_refresh(false)
            .build(self.spy.clone())
            .expect("valid")
    }
}

/// The failure classes of the token endpoint, as scripted faults.
fn faults() -> Vec<Fault> {
    vec![
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
        Fault::Status(StatusCode::BAD_GATEWAY),
        Fault::RateLimited {
            retry_after: Duration::from_secs(3),
        },
        Fault::Html,
        Fault::MalformedJson,
        Fault::TruncatedJson,
        Fault::EmptyBody,
        Fault::WrongTokenType,
        Fault::MissingExpiresIn,
        Fault::ZeroExpiresIn,
        Fault::StringExpiresIn,
        Fault::Delay(Duration::from_millis(5)),
        Fault::OAuthError("invalid_client"),
        Fault::OAuthError("invalid_grant"),
        Fault::OAuthError("temporarily_unavailable"),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

// ----------------------------------------------------------------- tests

#[test]
fn every_method_with_discovery_refresh_and_invalidation() {
    let (_turn, lines) = capture();
    let mut ledger = Ledger::new();
    let world = World::new(&mut ledger);

    runtime().block_on(async {
        for config in world.configs() {
            let auth = world.authenticator(config);
            ledger.debug(&auth);
            let first = auth.token().await.expect("a token");
            assert_eq!(
                first.access_token().secret().len() == 32,
                auth.method_name() != "personal access token",
                "the mock's tokens are the ids the ledger planted"
            );
            ledger.token(&first);

            let mut request = http::Request::get(world.server.resource_url())
                .body(Vec::new())
                .expect("a request");
            auth.authorize(&mut request).await.expect("authorized");
            ledger.debug(&request);
            let response = world.server.handle(request, world.clock.now());
            assert_eq!(response.status(), StatusCode::OK);

            // A personal access token cannot be replaced: its invalidation
            // is an error that says so.
            auth.invalidate(first.generation());
            match auth.token().await {
                Ok(second) => ledger.token(&second),
                Err(error) if auth.method_name() == "personal access token" => {
                    ledger.error(&error);
                    continue;
                }
                Err(error) => panic!("a new token after invalidation: {error}"),
            }
            world.clock.advance(HOUR + Duration::from_secs(60));
            let third = auth.token().await.expect("a refreshed token after expiry");
            ledger.token(&third);
        }
    });

    for config in world.configs() {
        let auth = world.blocking(config);
        ledger.debug(&auth);
        let first = auth.token().expect("a token");
        ledger.token(&first);
        auth.invalidate(first.generation());
        match auth.token() {
            Ok(second) => ledger.token(&second),
            Err(error) if auth.method_name() == "personal access token" => {
                ledger.error(&error);
                continue;
            }
            Err(error) => panic!("a new token after invalidation: {error}"),
        }
        world.clock.advance(HOUR + Duration::from_secs(60));
        ledger.token(&auth.token().expect("a refreshed token"));
    }

    ledger.sent(&world.spy);
    ledger.debug(&world.server.requests());
    ledger.check(
        &lines.take(),
        &[
            "client credentials",
            "private key JWT",
            "discovery response received",
            "status=200",
            "expires_in_secs=3600",
            "assertion signed",
            "client assertion signed",
            "key_id=user-key",
            "access token cached",
        ],
    );
}

#[test]
fn every_failure_class() {
    let (_turn, lines) = capture();
    let mut ledger = Ledger::new();
    let world = World::new(&mut ledger);

    runtime().block_on(async {
        let configs = world.configs();
        for config in configs.into_iter().take(4) {
            let auth = world.authenticator(config);
            for fault in faults() {
                auth.reset();
                let fresh = auth.token().await.expect("a token before the fault");
                ledger.token(&fresh);
                world.server.push_fault(fault);
                auth.invalidate(fresh.generation());
                match auth.token().await {
                    Ok(token) => ledger.token(&token),
                    Err(error) => ledger.error(&error),
                }
            }
        }
    });

    for config in world.configs().into_iter().take(2) {
        let auth = world.blocking(config);
        for fault in faults() {
            auth.reset();
            let fresh = auth.token().expect("a token before the fault");
            ledger.token(&fresh);
            world.server.push_fault(fault);
            auth.invalidate(fresh.generation());
            match auth.token() {
                Ok(token) => ledger.token(&token),
                Err(error) => ledger.error(&error),
            }
        }
    }

    ledger.sent(&world.spy);
    ledger.check(
        &lines.take(),
        &[
            "status=500",
            "status=429",
            "status=401",
            "invalid_client",
            "token request failed",
            "transient=true",
            "transient=false",
        ],
    );
}

#[test]
fn wrong_credentials_unknown_keys_bad_scopes_and_a_foreign_issuer() {
    let (_turn, lines) = capture();
    let mut ledger = Ledger::new();
    let world = World::new(&mut ledger);
    ledger.plant("planted-wrong-secret-9999");
    let stranger = SigningKey::generate(Algorithm::EdDsa, "unknown-kid").expect("key");
    ledger.plant_key(&stranger.to_pem().expect("pem"));

    let failing = vec![
        Config::client_credentials(
            ISSUER,
            CLIENT,
            ClientSecret::new("planted-wrong-secret-9999"),
        ),
        Config::private_key_jwt_client(ISSUER, "app-client", stranger),
        Config::client_credentials(ISSUER, CLIENT, ClientSecret::new(SECRET)).scopes(["admin"]),
        Config::client_credentials("https://foreign.example", CLIENT, ClientSecret::new(SECRET)),
        Config::personal_access_token(Some(ISSUER), PersonalAccessToken::new(PAT))
            .token_endpoint(format!("{ISSUER}/oauth/v2/token")),
    ];
    runtime().block_on(async {
        for config in failing.clone() {
            let auth = world.authenticator(config);
            match auth.token().await {
                Ok(token) => ledger.token(&token),
                Err(error) => ledger.error(&error),
            }
            // A second call meets the backoff or hold-off, with its own error.
            if let Err(error) = auth.token().await {
                ledger.error(&error);
            }
        }
    });
    for config in failing {
        let auth = world.blocking(config);
        if let Err(error) = auth.token() {
            ledger.error(&error);
        }
    }

    ledger.sent(&world.spy);
    ledger.check(
        &lines.take(),
        &[
            "invalid_client",
            "invalid_scope",
            "status=401",
            "status=400",
        ],
    );
}

#[cfg(feature = "reqwest")]
#[test]
fn the_reqwest_transport_over_loopback() {
    let (_turn, lines) = capture();
    let mut ledger = Ledger::new();
    let server = MockServer::builder("http://localhost")
        .client_secret(CLIENT, SECRET, SecretMethod::Basic)
        .seed(SEED)
        .build();
    let handle = server.serve_loopback().expect("serve on 127.0.0.1");

    runtime().block_on(async {
        let auth =
            Config::client_credentials("http://localhost", CLIENT, ClientSecret::new(SECRET))
                .dangerous_allow_http_loopback()
                .connect_address(handle.local_addr())
                .build_reqwest()
                .expect("valid");
        ledger.token(&auth.token().await.expect("a token"));
        server.push_fault(Fault::OAuthError("invalid_client"));
        auth.invalidate(auth.token().await.expect("cached").generation());
        if let Err(error) = auth.token().await {
            ledger.error(&error);
        }
    });

    ledger.check(
        &lines.take(),
        &["response received", "status=200", "http://localhost"],
    );
}

#[cfg(feature = "blocking")]
#[test]
fn the_ureq_transport_over_loopback() {
    let (_turn, lines) = capture();
    let mut ledger = Ledger::new();
    let server = MockServer::builder("http://localhost")
        .client_secret(CLIENT, SECRET, SecretMethod::Post)
        .seed(SEED)
        .build();
    let handle = server.serve_loopback().expect("serve on 127.0.0.1");

    let auth = Config::client_credentials("http://localhost", CLIENT, ClientSecret::new(SECRET))
        .client_auth(service_auth::config::ClientSecretAuth::Post)
        .dangerous_allow_http_loopback()
        .connect_address(handle.local_addr())
        .build_ureq()
        .expect("valid");
    ledger.token(&auth.token().expect("a token"));
    server.push_fault(Fault::Html);
    auth.invalidate(auth.token().expect("cached").generation());
    if let Err(error) = auth.token() {
        ledger.error(&error);
    }

    ledger.check(&lines.take(), &["response received", "status=200"]);
}

#[test]
fn the_checker_catches_leaks() {
    let (_turn, _lines) = capture();
    let mut ledger = Ledger::new();
    let key = SigningKey::generate(Algorithm::EdDsa, "k").expect("key");
    let pem = key.to_pem().expect("pem").to_string();
    ledger.plant_key(&pem);
    let filler: Vec<String> = (0..20).map(|i| format!("DEBUG event {i}")).collect();
    let chunk = pem_chunks(&pem).remove(0);
    for leak in [
        format!("DEBUG secret={SECRET}"),
        format!("TRACE key={chunk}"),
        "DEBUG assertion=eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln".to_owned(),
    ] {
        let mut lines = filler.clone();
        lines.push(leak.clone());
        let caught = std::panic::catch_unwind(|| ledger.check(&lines, &[]));
        assert!(caught.is_err(), "not caught: {leak}");
    }
    let caught = std::panic::catch_unwind(|| ledger.check(&[], &[]));
    assert!(caught.is_err(), "an empty capture must fail");
    ledger.check(&filler, &["event 3"]);
}
