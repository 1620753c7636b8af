//! The structured fuzz targets: inputs decoded with `arbitrary` into whole
//! exchanges, so that the fuzzer spends its time on plausible responses and
//! requests rather than on JSON syntax.

use std::sync::LazyLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use service_auth::acquire::{Acquirer, Awaiting, Step};
use service_auth::credentials::{Algorithm, KeyRing, SigningKey};
use service_auth::endpoint::{Issuer, TokenEndpoint, UrlPolicy};
use service_auth::error::{TokenError, TransportError, TransportErrorKind};
use service_auth::flow::{
    ClientAssertion, ClientAuth, ClientCredentials, Discovery, JwtBearer, RequestOptions,
};
use service_auth::manager::{FetchId, RefreshPolicy, TokenManager, TokenState};
use service_auth::method::{Endpoints, Method as AuthMethod};
use service_auth::mock::{Fault, MockServer, SecretMethod};
use service_auth::response::parse_token_response;
use service_auth::rng::Rng;
use service_auth::secret::{ClientSecret, PersonalAccessToken};
use service_auth::time::Now;

use crate::bytes::{check_discovery_message, now};

const ISSUER: &str = "https://auth.example.com";
const TOKEN_ENDPOINT: &str = "https://auth.example.com/oauth/v2/token";
const USER: &str = "service-user";
const BASIC_CLIENT: &str = "basic-client";
const POST_CLIENT: &str = "post-client";
const KEY_CLIENT: &str = "key-client";
/// The registered client secret: it must never come back in a response.
const SECRET: &str = "registered-secret-9f8e7d6c";
const PAT: &str = "pat-0123456789abcdef";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Keys made once per process: generating them per input would dominate.
struct Keys {
    user: KeyRing,
    client: KeyRing,
    user_es256: SigningKey,
    user_eddsa: SigningKey,
    client_eddsa: SigningKey,
    stranger: SigningKey,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let key = |algorithm, kid| match SigningKey::generate(algorithm, kid) {
        Ok(key) => key,
        Err(error) => panic!("key generation failed: {error}"),
    };
    Keys {
        user: KeyRing::new(key(Algorithm::Es256, "user-es256")),
        client: KeyRing::new(key(Algorithm::EdDsa, "client-eddsa")),
        user_es256: key(Algorithm::Es256, "user-es256"),
        user_eddsa: key(Algorithm::EdDsa, "user-eddsa"),
        client_eddsa: key(Algorithm::EdDsa, "client-eddsa"),
        stranger: key(Algorithm::EdDsa, "user-eddsa"),
    }
});

// ---------------------------------------------------------------------------
// flow_responses
// ---------------------------------------------------------------------------

/// A whole acquisition history: a method, a refresh policy, and a sequence
/// of fuzzer-chosen events, responses among them.
#[derive(Arbitrary, Debug)]
pub struct FlowInput {
    method: MethodChoice,
    discover: bool,
    background: bool,
    policy: PolicyChoice,
    rounds: Vec<Round>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum MethodChoice {
    JwtBearer,
    SecretBasic,
    SecretPost,
    ClientAssertion,
    PersonalAccessToken,
}

#[derive(Arbitrary, Debug)]
struct PolicyChoice {
    margin_s: u16,
    jitter: u8,
    safety_s: u8,
    backoff_initial_ms: u16,
    backoff_max_s: u16,
    hold_off_s: u16,
}

#[derive(Arbitrary, Debug)]
enum Round {
    /// A caller asks for a token (and may start a fetch).
    Ask,
    /// The response to the request in flight.
    Respond(FuzzResponse),
    /// The request in flight fails below HTTP.
    TransportFailure,
    /// Time passes, in milliseconds.
    Advance(u32),
    /// A resource server rejects the cached token.
    Invalidate,
    /// The user calls `reset`.
    Reset,
}

#[derive(Arbitrary, Debug)]
struct FuzzResponse {
    status: u16,
    content_type: Option<ContentType>,
    retry_after: Option<RetryAfter>,
    body: Body,
}

#[derive(Arbitrary, Debug)]
enum ContentType {
    Json,
    Html,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum RetryAfter {
    Seconds(u32),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Body {
    Empty,
    Raw(Vec<u8>),
    Token(TokenBody),
    Error(ErrorBody),
    Discovery(DiscoveryBody),
}

#[derive(Arbitrary, Debug)]
struct TokenBody {
    access_token: Text,
    token_type: Option<TokenType>,
    expires_in: Option<ExpiresIn>,
    scope: Option<String>,
    refresh_token: bool,
}

#[derive(Arbitrary, Debug)]
enum Text {
    Plausible(u32),
    Raw(String),
    Number(i64),
}

#[derive(Arbitrary, Debug)]
enum TokenType {
    Bearer,
    Lower,
    Mac,
    Raw(String),
    Number(i64),
}

#[derive(Arbitrary, Debug)]
enum ExpiresIn {
    Int(i64),
    Unsigned(u64),
    IntString(i64),
    Raw(String),
    Float(f64),
    Null,
}

#[derive(Arbitrary, Debug)]
struct ErrorBody {
    code: ErrorCodeChoice,
    description: Option<String>,
    uri: Option<String>,
}

#[derive(Arbitrary, Debug)]
enum ErrorCodeChoice {
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    ServerError,
    Raw(String),
    NotAString(i64),
}

#[derive(Arbitrary, Debug)]
struct DiscoveryBody {
    issuer: IssuerChoice,
    token_endpoint: EndpointChoice,
}

#[derive(Arbitrary, Debug)]
enum IssuerChoice {
    Ours,
    TrailingSlash,
    UpperCase,
    Raw(String),
    Missing,
}

#[derive(Arbitrary, Debug)]
enum EndpointChoice {
    Ours,
    Http,
    Raw(String),
    Missing,
}

/// Drives a token manager and an acquirer through `input`, checking after
/// every round that no token past its serving limit is handed out and that
/// every error message is free of control characters.
pub fn flow_responses(input: FlowInput) {
    let Some(mut driver) = FlowDriver::new(&input) else {
        return;
    };
    for round in input.rounds.into_iter().take(48) {
        driver.round(round);
        driver.check();
    }
}

struct FlowDriver {
    manager: TokenManager,
    acquirer: Acquirer,
    background: bool,
    now: Now,
    in_flight: Option<(FetchId, Awaiting)>,
}

impl FlowDriver {
    fn new(input: &FlowInput) -> Option<Self> {
        let policy = UrlPolicy::https_only();
        let issuer = Issuer::parse(ISSUER, policy).ok()?;
        let endpoint = TokenEndpoint::parse(TOKEN_ENDPOINT, policy).ok()?;
        let method = method(input.method, &issuer);
        let endpoints = if input.discover {
            Endpoints::Discover(issuer)
        } else {
            Endpoints::Fixed {
                issuer: Some(issuer),
                token_endpoint: endpoint,
            }
        };
        let choice = &input.policy;
        let mut policy = RefreshPolicy::default();
        policy.margin = Duration::from_secs(choice.margin_s.into());
        policy.jitter = f64::from(choice.jitter) / 200.0;
        policy.safety = Duration::from_secs(choice.safety_s.into());
        policy.backoff_initial = Duration::from_millis(choice.backoff_initial_ms.into());
        policy.backoff_max = Duration::from_secs(choice.backoff_max_s.into());
        policy.permanent_hold_off = Duration::from_secs(choice.hold_off_s.into());
        let options = RequestOptions::default();
        Some(Self {
            manager: TokenManager::new(policy, Rng::from_seed(1)),
            acquirer: Acquirer::new(method, endpoints, options, Rng::from_seed(2)),
            background: input.background,
            now: now(),
            in_flight: None,
        })
    }

    fn round(&mut self, round: Round) {
        match round {
            Round::Ask => {
                self.start_fetch();
                let _ = self.manager.token(self.now.instant());
            }
            Round::Respond(response) => {
                if let Some((fetch, awaiting)) = self.in_flight.take() {
                    let step = self
                        .acquirer
                        .handle_response(awaiting, response.build(), self.now);
                    self.step(fetch, step);
                }
            }
            Round::TransportFailure => {
                if let Some((fetch, _awaiting)) = self.in_flight.take() {
                    let error = TransportError::from_kind(TransportErrorKind::Timeout);
                    self.complete(fetch, Err(error.into()));
                }
            }
            Round::Advance(ms) => {
                self.now = self.now.advance(Duration::from_millis(ms.into()));
                self.manager.handle_timeout(self.now.instant());
                if self.background {
                    self.start_fetch();
                }
            }
            Round::Invalidate => {
                if let Some(generation) = self.manager.cached().map(|c| c.generation()) {
                    let _ = self.manager.invalidate(generation, self.now.instant());
                }
            }
            Round::Reset => self.manager.reset(),
        }
    }

    fn start_fetch(&mut self) {
        if let Some(fetch) = self.manager.poll_fetch(self.now.instant()) {
            assert!(
                self.in_flight.is_none(),
                "a second fetch while one is in flight"
            );
            let step = self.acquirer.start(self.now);
            self.step(fetch, step);
        }
    }

    fn step(&mut self, fetch: FetchId, step: Step) {
        match step {
            Step::Send { awaiting, request } => {
                check_request(&request);
                self.in_flight = Some((fetch, awaiting));
            }
            Step::Done(result) => self.complete(fetch, result),
        }
    }

    fn complete(&mut self, fetch: FetchId, result: Result<service_auth::token::Token, TokenError>) {
        match &result {
            Ok(token) => assert!(token.header_value().is_ok()),
            // Discovery's error may hold the refused token endpoint URL as
            // the provider sent it (see `check_discovery_message`).
            Err(error) => check_discovery_message(error),
        }
        let now = self.now.instant();
        let outcome = self.manager.handle_result(fetch, result, now);
        if let Ok(cached) = outcome {
            assert!(
                cached.is_servable(now),
                "a fresh token is servable on arrival"
            );
        }
    }

    fn check(&self) {
        let now = self.now.instant();
        assert_eq!(self.manager.is_fetching(), self.in_flight.is_some());
        match self.manager.token(now) {
            TokenState::Fresh(cached) | TokenState::RefreshDue(cached) => {
                assert!(cached.is_servable(now), "an unservable token was offered");
                if let Some(until) = cached.serve_until() {
                    let expires = cached.expires_at().unwrap_or(until);
                    assert!(until <= expires);
                }
            }
            TokenState::Unavailable(error) => match error.token_error() {
                Some(last) => check_discovery_message(last),
                None => assert!(!error.to_string().chars().any(char::is_control)),
            },
            _ => {}
        }
        if let Some(lease) = self.manager.lease()
            && lease.covers(now)
        {
            assert!(
                lease.token().is_servable(now),
                "a lease covers an unservable token"
            );
        }
    }
}

fn method(choice: MethodChoice, issuer: &Issuer) -> AuthMethod {
    let keys = &*KEYS;
    let secret = || ClientSecret::new(SECRET);
    match choice {
        MethodChoice::JwtBearer => {
            AuthMethod::from(JwtBearer::new(USER, keys.user.clone(), issuer).scopes(["openid"]))
        }
        MethodChoice::SecretBasic => AuthMethod::from(ClientCredentials::new(
            BASIC_CLIENT,
            ClientAuth::SecretBasic(secret()),
        )),
        MethodChoice::SecretPost => AuthMethod::from(ClientCredentials::new(
            POST_CLIENT,
            ClientAuth::SecretPost(secret()),
        )),
        MethodChoice::ClientAssertion => AuthMethod::from(ClientCredentials::new(
            KEY_CLIENT,
            ClientAuth::PrivateKeyJwt(ClientAssertion::new(keys.client.clone())),
        )),
        MethodChoice::PersonalAccessToken => AuthMethod::from(PersonalAccessToken::new(PAT)),
    }
}

/// Every request a flow builds goes to our issuer's host over HTTPS, and
/// carries no secret in a header that is not marked sensitive.
fn check_request(request: &http::Request<Vec<u8>>) {
    assert_eq!(request.uri().scheme_str(), Some("https"));
    assert_eq!(request.uri().host(), Some("auth.example.com"));
    if let Some(authorization) = request.headers().get(header::AUTHORIZATION) {
        assert!(authorization.is_sensitive());
    }
    assert!(request.method() == Method::GET || request.method() == Method::POST);
}

impl FuzzResponse {
    fn build(self) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(self.body.bytes());
        *response.status_mut() =
            StatusCode::from_u16(100 + self.status % 500).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        let content_type = match self.content_type {
            None => None,
            Some(ContentType::Json) => Some("application/json".to_owned()),
            Some(ContentType::Html) => Some("text/html; charset=utf-8".to_owned()),
            Some(ContentType::Raw(text)) => Some(text),
        };
        if let Some(value) = content_type.and_then(|text| HeaderValue::from_str(&text).ok()) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        let retry_after = match self.retry_after {
            None => None,
            Some(RetryAfter::Seconds(seconds)) => Some(seconds.to_string()),
            Some(RetryAfter::Raw(text)) => Some(text),
        };
        if let Some(value) = retry_after.and_then(|text| HeaderValue::from_str(&text).ok()) {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl Body {
    fn bytes(self) -> Vec<u8> {
        let value = match self {
            Self::Empty => return Vec::new(),
            Self::Raw(bytes) => return bytes,
            Self::Token(token) => token.json(),
            Self::Error(error) => error.json(),
            Self::Discovery(discovery) => discovery.json(),
        };
        value.to_string().into_bytes()
    }
}

impl TokenBody {
    fn json(self) -> Value {
        let mut fields = serde_json::Map::new();
        let access_token = match self.access_token {
            Text::Plausible(n) => json!(format!("at-{n:08x}")),
            Text::Raw(text) => json!(text),
            Text::Number(n) => json!(n),
        };
        fields.insert("access_token".into(), access_token);
        if let Some(kind) = self.token_type {
            let value = match kind {
                TokenType::Bearer => json!("Bearer"),
                TokenType::Lower => json!("bearer"),
                TokenType::Mac => json!("MAC"),
                TokenType::Raw(text) => json!(text),
                TokenType::Number(n) => json!(n),
            };
            fields.insert("token_type".into(), value);
        }
        if let Some(expires_in) = self.expires_in {
            let value = match expires_in {
                ExpiresIn::Int(n) => json!(n),
                ExpiresIn::Unsigned(n) => json!(n),
                ExpiresIn::IntString(n) => json!(n.to_string()),
                ExpiresIn::Raw(text) => json!(text),
                ExpiresIn::Float(x) => {
                    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
                }
                ExpiresIn::Null => Value::Null,
            };
            fields.insert("expires_in".into(), value);
        }
        if let Some(scope) = self.scope {
            fields.insert("scope".into(), json!(scope));
        }
        if self.refresh_token {
            fields.insert("refresh_token".into(), json!("rt-secret"));
        }
        Value::Object(fields)
    }
}

impl ErrorBody {
    fn json(self) -> Value {
        let code = match self.code {
            ErrorCodeChoice::InvalidClient => json!("invalid_client"),
            ErrorCodeChoice::InvalidGrant => json!("invalid_grant"),
            ErrorCodeChoice::InvalidScope => json!("invalid_scope"),
            ErrorCodeChoice::ServerError => json!("server_error"),
            ErrorCodeChoice::Raw(text) => json!(text),
            ErrorCodeChoice::NotAString(n) => json!(n),
        };
        json!({
            "error": code,
            "error_description": self.description,
            "error_uri": self.uri,
        })
    }
}

impl DiscoveryBody {
    fn json(self) -> Value {
        let mut fields = serde_json::Map::new();
        let issuer = match self.issuer {
            IssuerChoice::Ours => Some(ISSUER.to_owned()),
            IssuerChoice::TrailingSlash => Some(format!("{ISSUER}/")),
            IssuerChoice::UpperCase => Some(ISSUER.to_uppercase()),
            IssuerChoice::Raw(text) => Some(text),
            IssuerChoice::Missing => None,
        };
        if let Some(issuer) = issuer {
            fields.insert("issuer".into(), json!(issuer));
        }
        let endpoint = match self.token_endpoint {
            EndpointChoice::Ours => Some(TOKEN_ENDPOINT.to_owned()),
            EndpointChoice::Http => Some(TOKEN_ENDPOINT.replace("https", "http")),
            EndpointChoice::Raw(text) => Some(text),
            EndpointChoice::Missing => None,
        };
        if let Some(endpoint) = endpoint {
            fields.insert("token_endpoint".into(), json!(endpoint));
        }
        Value::Object(fields)
    }
}

// ---------------------------------------------------------------------------
// mock_server_request
// ---------------------------------------------------------------------------

/// A sequence of requests, with scripted faults, into one mock server.
#[derive(Arbitrary, Debug)]
pub struct MockInput {
    faults: Vec<FaultChoice>,
    requests: Vec<MockRequest>,
}

#[derive(Arbitrary, Debug)]
enum FaultChoice {
    Status(u16),
    RateLimited(u32),
    Html,
    MalformedJson,
    TruncatedJson,
    EmptyBody,
    WrongTokenType,
    MissingExpiresIn,
    ZeroExpiresIn,
    StringExpiresIn,
    Delay(u16),
    InvalidClient,
    ServerError,
}

#[derive(Arbitrary, Debug)]
struct MockRequest {
    method: MethodName,
    target: Target,
    query: Option<String>,
    content_type: Option<RequestContentType>,
    authorization: Option<Authorization>,
    body: RequestBody,
    advance_s: u16,
}

#[derive(Arbitrary, Debug)]
enum MethodName {
    Get,
    Post,
    Head,
    Put,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Target {
    Token,
    Discovery,
    Resource,
    TokenAbsolute,
    TokenOtherHost,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum RequestContentType {
    Form,
    FormCharset,
    Json,
    Twice,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Authorization {
    Basic {
        id: Id,
        secret: Secret,
        encode: bool,
    },
    BasicRaw(String),
    Bearer(BearerChoice),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone)]
enum Id {
    User,
    BasicClient,
    PostClient,
    KeyClient,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Secret {
    Registered,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum BearerChoice {
    Issued(u8),
    Pat,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum RequestBody {
    Raw(Vec<u8>),
    Form(Vec<(Param, ParamValue)>),
}

#[derive(Arbitrary, Debug)]
enum Param {
    GrantType,
    Assertion,
    ClientAssertion,
    ClientAssertionType,
    ClientId,
    ClientSecret,
    Scope,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum ParamValue {
    JwtBearerGrant,
    ClientCredentials,
    AssertionType,
    Id(Id),
    Secret(Secret),
    Jwt(Box<JwtChoice>),
    Scope(Vec<ScopeChoice>),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum ScopeChoice {
    OpenId,
    Profile,
    Zitadel,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct JwtChoice {
    key: KeyChoice,
    alg: Option<String>,
    kid: Option<String>,
    crit: bool,
    iss: Id,
    sub: Option<Id>,
    aud: Audience,
    iat: Option<ClaimTime>,
    exp: Option<ClaimTime>,
    nbf: Option<ClaimTime>,
    jti: Option<String>,
    signature: SignatureChoice,
}

#[derive(Arbitrary, Debug)]
enum KeyChoice {
    UserEs256,
    UserEdDsa,
    Client,
    Stranger,
}

#[derive(Arbitrary, Debug)]
enum Audience {
    Issuer,
    TokenEndpoint,
    Both,
    Raw(String),
    Number(i64),
    Missing,
}

#[derive(Arbitrary, Debug)]
enum ClaimTime {
    Offset(i32),
    Float(f64),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum SignatureChoice {
    Valid,
    Empty,
    FlipBit(u16),
    Raw(String),
}

/// Hands every request of `input` to one mock server, checking that each
/// answer is well formed, that a token it issues is one the library
/// accepts, and that the registered secret never comes back.
pub fn mock_server_request(input: MockInput) {
    let keys = &*KEYS;
    let server = MockServer::builder(ISSUER)
        .service_user(USER, keys.user_es256.public_key())
        .service_user(USER, keys.user_eddsa.public_key())
        .client_secret(BASIC_CLIENT, SECRET, SecretMethod::Basic)
        .client_secret(POST_CLIENT, SECRET, SecretMethod::Post)
        .client_key(KEY_CLIENT, keys.client_eddsa.public_key())
        .personal_access_token(PAT)
        .token_lifetime(Duration::from_secs(300))
        .seed(3)
        .build();
    for fault in input.faults.into_iter().take(4) {
        server.push_fault(fault.into_fault());
    }
    let mut now = now();
    let mut issued: Vec<String> = Vec::new();
    let mut all_public = String::new();
    for request in input.requests.into_iter().take(8) {
        now = now.advance(Duration::from_secs(request.advance_s.into()));
        let Some((request, public_text)) = request.build(now, &issued) else {
            continue;
        };
        all_public.push_str(&public_text);
        let is_token_post =
            request.method() == Method::POST && routes_to(&request, "/oauth/v2/token");
        let is_discovery = routes_to(&request, "/.well-known/openid-configuration");
        let faults_before = server.pending_faults();
        let response = server.handle(request, now);

        assert!(
            response.headers().contains_key(header::DATE),
            "no Date header"
        );
        check_no_secret(&response, &public_text);
        let faulted = server.pending_faults() < faults_before;
        if is_token_post && !faulted {
            check_token_answer(&response, now, &mut issued);
        }
        if is_discovery && response.status() == StatusCode::OK {
            check_discovery_answer(response);
        }
    }
    let recorded = format!("{:?}", server.requests());
    assert!(
        !recorded.contains(SECRET) || all_public.contains(SECRET),
        "a recorded request shows the registered secret"
    );
}

/// Whether the server routes `request` to the endpoint at `path`: a request
/// in absolute form must name the issuer's scheme and authority.
fn routes_to(request: &http::Request<Vec<u8>>, path: &str) -> bool {
    let uri = request.uri();
    let ours = uri.authority().is_none_or(|authority| {
        let https = uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"));
        https && authority.as_str().eq_ignore_ascii_case("auth.example.com")
    });
    ours && uri.path() == path
}

/// An unfaulted answer of the token endpoint is a token the library accepts
/// or an RFC 6749 §5.2 error.
fn check_token_answer(response: &http::Response<Vec<u8>>, now: Now, issued: &mut Vec<String>) {
    let status = response.status();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return;
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(response.body()) else {
        panic!("the token endpoint answered {status} without a JSON object");
    };
    if status == StatusCode::OK {
        let token = parse_token_response(response, now);
        let Ok(token) = token else {
            panic!("the library refuses the mock's own token: {token:?}");
        };
        issued.push(token.access_token().secret().to_owned());
        return;
    }
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED,
        "unexpected status {status}"
    );
    assert!(matches!(body.get("error"), Some(Value::String(_))));
}

/// The mock's discovery document is one the library's discovery accepts.
fn check_discovery_answer(response: http::Response<Vec<u8>>) {
    let policy = UrlPolicy::https_only();
    let Ok(issuer) = Issuer::parse(ISSUER, policy) else {
        panic!("the fixed issuer parses");
    };
    let (awaiting, _request) = Discovery::new(issuer, policy).request();
    let metadata = awaiting.handle_response(response);
    let Ok(metadata) = metadata else {
        panic!("the library refuses the mock's discovery document: {metadata:?}");
    };
    assert_eq!(metadata.token_endpoint().as_str(), TOKEN_ENDPOINT);
}

/// The registered secret may come back only where the request itself put it
/// in a place that is not secret (a client id, a path).
fn check_no_secret(response: &http::Response<Vec<u8>>, public_text: &str) {
    let body = String::from_utf8_lossy(response.body());
    if body.contains(SECRET) {
        assert!(
            public_text.contains(SECRET),
            "the mock echoed the registered secret"
        );
    }
}

impl FaultChoice {
    fn into_fault(self) -> Fault {
        match self {
            Self::Status(code) => {
                Fault::Status(StatusCode::from_u16(200 + code % 400).unwrap_or(StatusCode::OK))
            }
            Self::RateLimited(ms) => Fault::RateLimited {
                retry_after: Duration::from_millis(ms.into()),
            },
            Self::Html => Fault::Html,
            Self::MalformedJson => Fault::MalformedJson,
            Self::TruncatedJson => Fault::TruncatedJson,
            Self::EmptyBody => Fault::EmptyBody,
            Self::WrongTokenType => Fault::WrongTokenType,
            Self::MissingExpiresIn => Fault::MissingExpiresIn,
            Self::ZeroExpiresIn => Fault::ZeroExpiresIn,
            Self::StringExpiresIn => Fault::StringExpiresIn,
            Self::Delay(ms) => Fault::Delay(Duration::from_millis(ms.into())),
            Self::InvalidClient => Fault::OAuthError("invalid_client"),
            Self::ServerError => Fault::OAuthError("server_error"),
        }
    }
}

impl MockRequest {
    /// The request, and the text of its parts that are not secret.
    fn build(self, now: Now, issued: &[String]) -> Option<(http::Request<Vec<u8>>, String)> {
        let mut public_text = String::new();
        let method = match self.method {
            MethodName::Get => Method::GET,
            MethodName::Post => Method::POST,
            MethodName::Head => Method::HEAD,
            MethodName::Put => Method::PUT,
            MethodName::Other(name) => Method::from_bytes(name.as_bytes()).ok()?,
        };
        let mut uri = match self.target {
            Target::Token => "/oauth/v2/token".to_owned(),
            Target::Discovery => "/.well-known/openid-configuration".to_owned(),
            Target::Resource => "/resource".to_owned(),
            Target::TokenAbsolute => TOKEN_ENDPOINT.to_owned(),
            Target::TokenOtherHost => "https://other.example.com/oauth/v2/token".to_owned(),
            Target::Raw(text) => text,
        };
        if let Some(query) = self.query {
            uri.push('?');
            uri.push_str(&query);
        }
        public_text.push_str(&uri);
        let mut request = http::Request::builder().method(method).uri(uri);
        let content_type = match self.content_type {
            None => None,
            Some(RequestContentType::Form) => Some("application/x-www-form-urlencoded".to_owned()),
            Some(RequestContentType::FormCharset) => {
                Some("application/x-www-form-urlencoded; charset=UTF-8".to_owned())
            }
            Some(RequestContentType::Json) => Some("application/json".to_owned()),
            Some(RequestContentType::Twice) => {
                request = request.header(header::CONTENT_TYPE, "text/plain");
                Some("application/x-www-form-urlencoded".to_owned())
            }
            Some(RequestContentType::Raw(text)) => Some(text),
        };
        if let Some(content_type) = content_type {
            public_text.push_str(&content_type);
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(authorization) = self.authorization {
            let value = authorization.value(issued, &mut public_text)?;
            request = request.header(header::AUTHORIZATION, value);
        }
        let body = self.body.bytes(now, &mut public_text);
        let request = request.body(body).ok()?;
        Some((request, public_text))
    }
}

impl Authorization {
    fn value(self, issued: &[String], public_text: &mut String) -> Option<HeaderValue> {
        let text = match self {
            Self::Basic { id, secret, encode } => {
                let (id, secret) = (id.text(), secret.text());
                public_text.push_str(&id);
                let credentials = if encode {
                    format!("{}:{}", form_encode(&id), form_encode(&secret))
                } else {
                    format!("{id}:{secret}")
                };
                format!("Basic {}", STANDARD.encode(credentials))
            }
            Self::BasicRaw(text) => {
                public_text.push_str(&text);
                format!("Basic {text}")
            }
            Self::Bearer(BearerChoice::Issued(index)) => {
                let token = issued.get(usize::from(index) % issued.len().max(1))?;
                format!("Bearer {token}")
            }
            Self::Bearer(BearerChoice::Pat) => format!("Bearer {PAT}"),
            Self::Bearer(BearerChoice::Raw(text)) => format!("Bearer {text}"),
            Self::Raw(bytes) => return HeaderValue::from_bytes(&bytes).ok(),
        };
        HeaderValue::from_str(&text).ok()
    }
}

impl Id {
    fn text(&self) -> String {
        match self {
            Self::User => USER.to_owned(),
            Self::BasicClient => BASIC_CLIENT.to_owned(),
            Self::PostClient => POST_CLIENT.to_owned(),
            Self::KeyClient => KEY_CLIENT.to_owned(),
            Self::Raw(text) => text.clone(),
        }
    }
}

impl Secret {
    fn text(&self) -> String {
        match self {
            Self::Registered => SECRET.to_owned(),
            Self::Raw(text) => text.clone(),
        }
    }
}

impl RequestBody {
    fn bytes(self, now: Now, public_text: &mut String) -> Vec<u8> {
        let params = match self {
            Self::Raw(bytes) => {
                public_text.push_str(&String::from_utf8_lossy(&bytes));
                return bytes;
            }
            Self::Form(params) => params,
        };
        let mut form = String::new();
        for (name, value) in params.into_iter().take(8) {
            let name = match name {
                Param::GrantType => "grant_type".to_owned(),
                Param::Assertion => "assertion".to_owned(),
                Param::ClientAssertion => "client_assertion".to_owned(),
                Param::ClientAssertionType => "client_assertion_type".to_owned(),
                Param::ClientId => "client_id".to_owned(),
                Param::ClientSecret => "client_secret".to_owned(),
                Param::Scope => "scope".to_owned(),
                Param::Raw(text) => text,
            };
            let value = value.text(now);
            if name != "client_secret" {
                public_text.push_str(&name);
                public_text.push_str(&value);
            }
            if !form.is_empty() {
                form.push('&');
            }
            form.push_str(&form_encode(&name));
            form.push('=');
            form.push_str(&form_encode(&value));
        }
        form.into_bytes()
    }
}

impl ParamValue {
    fn text(self, now: Now) -> String {
        match self {
            Self::JwtBearerGrant => JWT_BEARER.to_owned(),
            Self::ClientCredentials => "client_credentials".to_owned(),
            Self::AssertionType => CLIENT_ASSERTION_TYPE.to_owned(),
            Self::Id(id) => id.text(),
            Self::Secret(secret) => secret.text(),
            Self::Jwt(jwt) => jwt.sign(now),
            Self::Scope(scopes) => scopes
                .into_iter()
                .map(|scope| match scope {
                    ScopeChoice::OpenId => "openid".to_owned(),
                    ScopeChoice::Profile => "profile".to_owned(),
                    ScopeChoice::Zitadel => "urn:zitadel:iam:org:project:id:zitadel:aud".to_owned(),
                    ScopeChoice::Raw(text) => text,
                })
                .collect::<Vec<_>>()
                .join(" "),
            Self::Raw(text) => text,
        }
    }
}

impl JwtChoice {
    /// A compact JWS with the chosen header and claims, signed by the chosen
    /// key, then perhaps damaged.
    fn sign(self, now: Now) -> String {
        let keys = &*KEYS;
        let key = match self.key {
            KeyChoice::UserEs256 => &keys.user_es256,
            KeyChoice::UserEdDsa => &keys.user_eddsa,
            KeyChoice::Client => &keys.client_eddsa,
            KeyChoice::Stranger => &keys.stranger,
        };
        let mut header = json!({
            "alg": self.alg.unwrap_or_else(|| key.algorithm().as_str().to_owned()),
            "kid": self.kid.unwrap_or_else(|| key.key_id().to_owned()),
            "typ": "JWT",
        });
        if self.crit {
            header["crit"] = json!(["exp"]);
        }
        let iss = self.iss.text();
        let sub = self.sub.map_or_else(|| iss.clone(), |sub| sub.text());
        let mut claims = json!({ "iss": iss, "sub": sub });
        let aud = match self.aud {
            Audience::Issuer => Some(json!(ISSUER)),
            Audience::TokenEndpoint => Some(json!(TOKEN_ENDPOINT)),
            Audience::Both => Some(json!([ISSUER, TOKEN_ENDPOINT])),
            Audience::Raw(text) => Some(json!(text)),
            Audience::Number(n) => Some(json!(n)),
            Audience::Missing => None,
        };
        if let Some(aud) = aud {
            claims["aud"] = aud;
        }
        let unix = i64::try_from(now.unix_seconds()).unwrap_or(i64::MAX);
        for (name, time) in [("iat", self.iat), ("exp", self.exp), ("nbf", self.nbf)] {
            let value = match time {
                None => continue,
                Some(ClaimTime::Offset(offset)) => json!(unix.saturating_add(offset.into())),
                Some(ClaimTime::Float(x)) => {
                    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
                }
                Some(ClaimTime::Text(text)) => json!(text),
            };
            claims[name] = value;
        }
        if let Some(jti) = self.jti {
            claims["jti"] = json!(jti);
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = key.sign(input.as_bytes()).unwrap_or_default();
        let signature = match self.signature {
            SignatureChoice::Valid => URL_SAFE_NO_PAD.encode(&signature),
            SignatureChoice::Empty => String::new(),
            SignatureChoice::FlipBit(bit) => {
                let bits = signature.len() * 8;
                if bits > 0 {
                    let bit = usize::from(bit) % bits;
                    signature[bit / 8] ^= 1 << (bit % 8);
                }
                URL_SAFE_NO_PAD.encode(&signature)
            }
            SignatureChoice::Raw(text) => text,
        };
        format!("{input}.{signature}")
    }
}

fn form_encode(text: &str) -> String {
    // `form_urlencoded` is a dependency of the library, not of this crate;
    // the few lines of RFC 6749 Appendix B encoding are written out here.
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
