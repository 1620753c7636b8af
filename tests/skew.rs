//! Clock skew against the strict mock server: a host clock ahead of or
//! behind the provider's, learned from the token endpoint's `Date` header,
//! corrected with one immediate retry, applied to later assertions, and
//! reported when it cannot be corrected.
//!
//! Two clocks run side by side: the provider's true clock (the mock reads
//! it) and the host's skewed clock (the client reads it). Both share one
//! monotonic `Instant` and advance together.
#![cfg(feature = "mock")]

mod log_capture;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, StatusCode, header};
use service_auth::acquire::{Acquirer, Step};
use service_auth::blocking::BlockingAuthenticator;
use service_auth::credentials::{Algorithm, KeyRing, SigningKey};
use service_auth::endpoint::{Issuer, TokenEndpoint, UrlPolicy};
use service_auth::error::{ErrorCode, RetryAdvice, TokenError};
use service_auth::flow::RequestOptions;
use service_auth::flow::token::DEFAULT_IAT_BACKDATE;
use service_auth::flow::{ClientAssertion, ClientAuth, ClientCredentials, JwtBearer};
use service_auth::method::{Endpoints, Method};
use service_auth::mock::{Fault, MockServer, SecretMethod};
use service_auth::rng::Rng;
use service_auth::secret::ClientSecret;
use service_auth::skew::{ClockOffset, ClockSkew, MAX_CLOCK_OFFSET};
use service_auth::time::{Clock, ManualClock, Now};
use service_auth::token::Token;

use log_capture::CapturedLogs;

const ISSUER: &str = "https://mock.service-auth.test";
const USER: &str = "service-user-1";
const KEY_CLIENT: &str = "billing";
const SECRET_CLIENT: &str = "svc";
const SECRET: &str = "s3cret-for-skew-tests";
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// The provider's true clock and the host's skewed one.
struct Clocks {
    truth: ManualClock,
    host: ManualClock,
}

impl Clocks {
    /// The host clock `skew` seconds ahead of the provider's (behind when
    /// negative).
    fn new(skew: i64) -> Self {
        let instant = Instant::now();
        let truth = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let host = ClockOffset::from_seconds(skew).apply(truth);
        Self {
            truth: ManualClock::new(Now::new(instant, truth)),
            host: ManualClock::new(Now::new(instant, host)),
        }
    }

    fn advance(&self, by: Duration) {
        self.truth.advance(by);
        self.host.advance(by);
    }

    fn provider_seconds(&self) -> i64 {
        unix_seconds(self.truth.now().wall())
    }
}

fn unix_seconds(time: SystemTime) -> i64 {
    let since = time.duration_since(UNIX_EPOCH).expect("after 1970");
    i64::try_from(since.as_secs()).expect("a plausible date")
}

fn issuer() -> Issuer {
    Issuer::parse(ISSUER, UrlPolicy::https_only()).expect("valid issuer")
}

fn fixed() -> Endpoints {
    let url = format!("{ISSUER}/oauth/v2/token");
    let token_endpoint = TokenEndpoint::parse(&url, UrlPolicy::https_only()).expect("valid URL");
    Endpoints::Fixed {
        issuer: Some(issuer()),
        token_endpoint,
    }
}

/// One signing key, shared by the service user and the key client.
fn key() -> KeyRing {
    KeyRing::new(SigningKey::generate(Algorithm::Es256, "key-1").expect("a fresh key"))
}

fn server(key: &KeyRing, clocks: &Clocks) -> MockServer {
    let public = key.current().public_key();
    MockServer::builder(ISSUER)
        .service_user(USER, public.clone())
        .client_key(KEY_CLIENT, public)
        .client_secret(SECRET_CLIENT, SECRET, SecretMethod::Post)
        .seed(3)
        .clock(clocks.truth.clone())
        .build()
}

fn jwt_bearer(key: &KeyRing) -> Method {
    Method::from(JwtBearer::new(USER, key.clone(), &issuer()))
}

fn client_assertion(key: &KeyRing) -> Method {
    let auth = ClientAuth::PrivateKeyJwt(ClientAssertion::new(key.clone()));
    Method::from(ClientCredentials::new(KEY_CLIENT, auth))
}

fn client_secret() -> Method {
    let auth = ClientAuth::SecretPost(ClientSecret::new(SECRET));
    Method::from(ClientCredentials::new(SECRET_CLIENT, auth))
}

fn acquirer(method: Method) -> Acquirer {
    Acquirer::new(
        method,
        fixed(),
        RequestOptions::default(),
        Rng::from_seed(5),
    )
}

/// One acquisition, the client at the host's time, `answer` in the role of
/// the provider. Returns the result and the `iat` of each assertion sent.
fn acquire_with(
    acquirer: &mut Acquirer,
    clocks: &Clocks,
    mut answer: impl FnMut(http::Request<Vec<u8>>) -> http::Response<Vec<u8>>,
) -> (Result<Token, TokenError>, Vec<i64>) {
    let mut issued_at = Vec::new();
    let mut step = acquirer.start(clocks.host.now());
    loop {
        match step {
            Step::Send { awaiting, request } => {
                issued_at.extend(assertion_iat(&request));
                let response = answer(request);
                step = acquirer.handle_response(awaiting, response, clocks.host.now());
            }
            Step::Done(result) => return (result, issued_at),
        }
    }
}

/// One acquisition against `server`, answering at the provider's time.
fn acquire(
    acquirer: &mut Acquirer,
    clocks: &Clocks,
    server: &MockServer,
) -> (Result<Token, TokenError>, Vec<i64>) {
    acquire_with(acquirer, clocks, |request| {
        server.handle(request, clocks.truth.now())
    })
}

/// The `iat` of the request's assertion or client assertion.
fn assertion_iat(request: &http::Request<Vec<u8>>) -> Option<i64> {
    let (_, jwt) = form_urlencoded::parse(request.body())
        .find(|(name, _)| name == "assertion" || name == "client_assertion")?;
    let payload = jwt.split('.').nth(1).expect("a compact JWS");
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("JSON claims");
    claims["iat"].as_i64()
}

fn expect_token(result: Result<Token, TokenError>) -> Token {
    result.unwrap_or_else(|error| panic!("expected a token, got: {error}"))
}

/// Asserts that `iat` lies the default backdate before the provider's time,
/// give or take the `Date` header's one-second resolution.
fn assert_backdated_from_provider_time(iat: i64, provider: i64) {
    let backdate = i64::try_from(DEFAULT_IAT_BACKDATE.as_secs()).expect("small");
    let expected = provider - backdate;
    assert!(
        (expected - 2..=expected).contains(&iat),
        "iat {iat}, provider time {provider}: expected {expected} or a second or two before"
    );
}

fn offset_seconds(acquirer: &Acquirer) -> i64 {
    acquirer.clock_skew().offset().seconds()
}

/// An error answer with `description`, dated `date`, as a provider sends it.
fn refusal(code: &str, description: &str, date: Option<SystemTime>) -> http::Response<Vec<u8>> {
    let body = serde_json::json!({ "error": code, "error_description": description });
    let mut response = http::Response::new(body.to_string().into_bytes());
    *response.status_mut() = StatusCode::BAD_REQUEST;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(date) = date {
        let value = HeaderValue::from_str(&httpdate::fmt_http_date(date)).expect("ASCII");
        headers.insert(header::DATE, value);
    }
    response
}

#[test]
fn a_host_ahead_is_refused_once_then_corrected_from_the_date_header() {
    let clocks = Clocks::new(30);
    let key = key();
    let server = server(&key, &clocks);
    let mut acquirer = acquirer(jwt_bearer(&key));

    let (result, issued_at) = acquire(&mut acquirer, &clocks, &server);
    expect_token(result);
    assert_eq!(server.token_requests(), 2, "one refusal, one retry");
    let requests = server.requests();
    assert_eq!(requests[0].error.as_deref(), Some("invalid_grant"));
    assert_eq!(requests[1].status, StatusCode::OK);
    assert!(
        (-31..=-30).contains(&offset_seconds(&acquirer)),
        "offset {}",
        offset_seconds(&acquirer)
    );
    assert_eq!(issued_at.len(), 2);
    assert_backdated_from_provider_time(issued_at[1], clocks.provider_seconds());

    // Later acquisitions are corrected from their start: one request each.
    for round in 1..=3 {
        clocks.advance(10 * MINUTE);
        let (result, issued_at) = acquire(&mut acquirer, &clocks, &server);
        expect_token(result);
        assert_eq!(server.token_requests(), 2 + round);
        assert_backdated_from_provider_time(issued_at[0], clocks.provider_seconds());
    }
}

#[test]
fn a_client_assertion_from_a_host_ahead_is_corrected_too() {
    let clocks = Clocks::new(45);
    let key = key();
    let server = server(&key, &clocks);
    let mut acquirer = acquirer(client_assertion(&key));

    let (result, issued_at) = acquire(&mut acquirer, &clocks, &server);
    expect_token(result);
    assert_eq!(server.token_requests(), 2);
    let first = &server.requests()[0];
    assert_eq!(
        (first.status, first.error.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert_backdated_from_provider_time(issued_at[1], clocks.provider_seconds());

    clocks.advance(HOUR);
    expect_token(acquire(&mut acquirer, &clocks, &server).0);
    assert_eq!(server.token_requests(), 3);
}

#[test]
fn a_host_behind_within_the_lifetime_works_by_backdating_and_is_calibrated() {
    let clocks = Clocks::new(-600);
    let key = key();
    let server = server(&key, &clocks);
    let mut acquirer = acquirer(jwt_bearer(&key));

    // `iat` ten minutes in the provider's past is accepted: one request.
    let (result, issued_at) = acquire(&mut acquirer, &clocks, &server);
    expect_token(result);
    assert_eq!(server.token_requests(), 1);
    let backdate = i64::try_from(DEFAULT_IAT_BACKDATE.as_secs()).expect("small");
    assert_eq!(issued_at[0], clocks.provider_seconds() - 600 - backdate);
    assert!((599..=600).contains(&offset_seconds(&acquirer)));

    // The next assertion is dated by the provider's clock.
    clocks.advance(30 * MINUTE);
    let (result, issued_at) = acquire(&mut acquirer, &clocks, &server);
    expect_token(result);
    assert_eq!(server.token_requests(), 2);
    assert_backdated_from_provider_time(issued_at[0], clocks.provider_seconds());
}

#[test]
fn a_client_assertion_expired_on_arrival_is_corrected() {
    // Five minutes behind: a one-minute client assertion is expired on arrival.
    let clocks = Clocks::new(-300);
    let key = key();
    let server = server(&key, &clocks);
    let mut acquirer = acquirer(client_assertion(&key));

    let (result, issued_at) = acquire(&mut acquirer, &clocks, &server);
    expect_token(result);
    assert_eq!(server.token_requests(), 2);
    assert_eq!(
        server.requests()[0].error.as_deref(),
        Some("invalid_client")
    );
    assert_backdated_from_provider_time(issued_at[1], clocks.provider_seconds());
}

#[test]
fn an_acquirer_given_a_calibrated_estimate_corrects_from_the_first_request() {
    let clocks = Clocks::new(90);
    let key = key();
    let server = server(&key, &clocks);
    let mut skew = ClockSkew::new();
    skew.observe(clocks.truth.now().wall(), clocks.host.now().wall());
    let mut acquirer = acquirer(jwt_bearer(&key)).with_clock_skew(skew);

    for round in 1..=3 {
        let (result, issued_at) = acquire(&mut acquirer, &clocks, &server);
        expect_token(result);
        assert_eq!(
            server.token_requests(),
            round,
            "one request per acquisition"
        );
        assert_backdated_from_provider_time(issued_at[0], clocks.provider_seconds());
        clocks.advance(HOUR);
    }
}

#[test]
fn absurd_or_missing_dates_are_ignored() {
    let clocks = Clocks::new(0);
    let key = key();
    let server = server(&key, &clocks);
    let mut acquirer = acquirer(jwt_bearer(&key));
    let far = |date: &str| HeaderValue::from_str(date).expect("ASCII");
    let dates = [
        Some(far("Fri, 01 Jan 2100 00:00:00 GMT")),
        Some(far("Thu, 01 Jan 1970 00:00:00 GMT")),
        Some(far("Sun, 06 Nov 1994 08:49:37 GMT")),
        Some(far("not a date")),
        Some(far("")),
        None,
    ];
    for (round, date) in dates.into_iter().enumerate() {
        let (result, _) = acquire_with(&mut acquirer, &clocks, |request| {
            let mut response = server.handle(request, clocks.truth.now());
            response.headers_mut().remove(header::DATE);
            if let Some(date) = date.clone() {
                response.headers_mut().insert(header::DATE, date);
            }
            response
        });
        expect_token(result);
        assert_eq!(server.token_requests(), round + 1);
        assert_eq!(acquirer.clock_skew().offset(), ClockOffset::ZERO);
    }
}

#[test]
fn a_refusal_with_an_absurd_date_is_reported_and_not_retried() {
    let clocks = Clocks::new(30);
    let key = key();
    let server = server(&key, &clocks);
    let mut acquirer = acquirer(jwt_bearer(&key));

    let (result, _) = acquire_with(&mut acquirer, &clocks, |request| {
        let mut response = server.handle(request, clocks.truth.now());
        let date = HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT");
        response.headers_mut().insert(header::DATE, date);
        response
    });
    let Err(TokenError::ClockSkew(skew)) = result else {
        panic!("expected a clock skew error, got {result:?}");
    };
    assert_eq!(server.token_requests(), 1, "no retry on an absurd Date");
    assert!(!skew.is_corrected());
    assert_eq!(skew.provider().code, ErrorCode::InvalidGrant);
    assert_eq!(TokenError::ClockSkew(skew).retry(), RetryAdvice::Permanent);
    assert_eq!(acquirer.clock_skew().offset(), ClockOffset::ZERO);

    // Without a `Date` there is nothing to learn: the provider's error, as is.
    let (result, _) = acquire_with(&mut acquirer, &clocks, |request| {
        let mut response = server.handle(request, clocks.truth.now());
        response.headers_mut().remove(header::DATE);
        response
    });
    assert!(matches!(result, Err(TokenError::Provider(_))), "{result:?}");
    assert_eq!(server.token_requests(), 2);
}

#[test]
fn a_host_too_far_off_is_reported_not_corrected() {
    let clocks = Clocks::new(-2 * 3600);
    let key = key();
    let server = server(&key, &clocks);
    let mut acquirer = acquirer(jwt_bearer(&key));

    let (result, _) = acquire(&mut acquirer, &clocks, &server);
    let Err(error @ TokenError::ClockSkew(_)) = result else {
        panic!("expected a clock skew error, got {result:?}");
    };
    assert_eq!(server.token_requests(), 1);
    assert_eq!(error.retry(), RetryAdvice::Permanent);
    let TokenError::ClockSkew(skew) = &error else {
        unreachable!("matched above");
    };
    assert!(skew.offset().magnitude() > MAX_CLOCK_OFFSET);
    let shown = error.to_string();
    assert!(
        shown.contains("the provider refused the token request"),
        "{shown}"
    );
    assert!(
        shown.contains("the host clock appears to be 7200 s behind the provider's")
            || shown.contains("the host clock appears to be 7199 s behind the provider's"),
        "{shown}"
    );
    assert!(shown.contains("set the host clock right (NTP)"), "{shown}");
    assert_eq!(acquirer.clock_skew().offset(), ClockOffset::ZERO);
}

#[test]
fn the_retry_happens_once_per_acquisition() {
    let clocks = Clocks::new(0);
    let mut acquirer = acquirer(jwt_bearer(&key()));
    let host = clocks.host.now().wall();

    // A provider that keeps refusing with the same `Date`: the retry's
    // refusal has another cause, and is returned as it is.
    let mut sent = 0;
    let (result, _) = acquire_with(&mut acquirer, &clocks, |_| {
        sent += 1;
        refusal(
            "invalid_grant",
            "assertion issued in the future",
            Some(host - 100 * Duration::from_secs(1)),
        )
    });
    assert_eq!(sent, 2);
    let Err(TokenError::Provider(provider)) = result else {
        panic!("expected the provider's error, got {result:?}");
    };
    assert_eq!(provider.code, ErrorCode::InvalidGrant);
    assert_eq!(offset_seconds(&acquirer), -100);

    // Its `Date` moves again on the retry: reported, corrected, transient.
    let mut dates = [200, 300].into_iter();
    let mut sent = 0;
    let (result, _) = acquire_with(&mut acquirer, &clocks, |_| {
        sent += 1;
        let back = dates.next().expect("at most two requests");
        let date = host - back * Duration::from_secs(1);
        refusal("invalid_grant", "iat is in the future", Some(date))
    });
    assert_eq!(sent, 2);
    let Err(error @ TokenError::ClockSkew(_)) = result else {
        panic!("expected a clock skew error, got {result:?}");
    };
    assert_eq!(error.retry(), RetryAdvice::Transient { after: None });
    let shown = error.to_string();
    assert!(
        shown.ends_with(
            "; the host clock appears to be 300 s ahead of the provider's (from its Date \
             header); the next assertion is corrected"
        ),
        "{shown}"
    );
    assert_eq!(offset_seconds(&acquirer), -300);
}

#[test]
fn other_refusals_and_methods_without_assertions_are_not_retried() {
    let clocks = Clocks::new(0);
    let date = Some(clocks.host.now().wall() - 100 * Duration::from_secs(1));

    // A refusal that does not blame the assertion's times. Its `Date` still
    // calibrates: it is the provider's own answer.
    let mut bearer = acquirer(jwt_bearer(&key()));
    let mut sent = 0;
    let (result, _) = acquire_with(&mut bearer, &clocks, |_| {
        sent += 1;
        refusal("invalid_grant", "unknown key id (kid)", date)
    });
    assert_eq!(sent, 1);
    assert!(matches!(result, Err(TokenError::Provider(_))), "{result:?}");
    assert_eq!(offset_seconds(&bearer), -100);

    // A client secret signs nothing: the clock cannot be the cause.
    let mut secret = acquirer(client_secret());
    let mut sent = 0;
    let (result, _) = acquire_with(&mut secret, &clocks, |_| {
        sent += 1;
        refusal("invalid_client", "issued in the future", date)
    });
    assert_eq!(sent, 1);
    assert!(matches!(result, Err(TokenError::Provider(_))), "{result:?}");
}

#[test]
fn a_disabled_estimator_signs_by_the_host_clock() {
    let clocks = Clocks::new(30);
    let key = key();
    let server = server(&key, &clocks);
    let mut acquirer = acquirer(jwt_bearer(&key)).with_clock_skew(ClockSkew::disabled());

    let (result, _) = acquire(&mut acquirer, &clocks, &server);
    let Err(TokenError::Provider(provider)) = result else {
        panic!("expected the provider's error, got {result:?}");
    };
    assert_eq!(server.token_requests(), 1);
    let description = provider.description.unwrap_or_default();
    assert!(
        description.contains("issued in the future"),
        "{description}"
    );
    assert_eq!(acquirer.clock_skew().offset(), ClockOffset::ZERO);
}

#[test]
fn error_pages_do_not_calibrate() {
    let clocks = Clocks::new(30);
    let key = key();
    let server = server(&key, &clocks);
    let mut acquirer = acquirer(client_secret());

    server.push_fault(Fault::Status(StatusCode::BAD_GATEWAY));
    let (result, _) = acquire(&mut acquirer, &clocks, &server);
    assert!(matches!(result, Err(TokenError::Response(_))), "{result:?}");
    assert_eq!(acquirer.clock_skew().offset(), ClockOffset::ZERO);

    expect_token(acquire(&mut acquirer, &clocks, &server).0);
    assert!((-31..=-30).contains(&offset_seconds(&acquirer)));
}

#[test]
fn calibration_is_logged_without_secrets() {
    let captured = CapturedLogs::new();
    let subscriber = captured.subscriber();

    let clocks = Clocks::new(30);
    let key = key();
    let server = server(&key, &clocks);
    let mut acquirer = acquirer(jwt_bearer(&key));
    let mut secrets = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let (result, _) = acquire_with(&mut acquirer, &clocks, |request| {
            let form = form_urlencoded::parse(request.body()).into_owned();
            secrets.extend(form.filter(|(name, _)| name == "assertion").map(|(_, v)| v));
            server.handle(request, clocks.truth.now())
        });
        let token = expect_token(result);
        secrets.push(token.access_token().secret().to_owned());
    });

    let logs = captured.text();
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("the host clock is off"), "{logs}");
    assert!(
        logs.contains("offset_seconds=-30") || logs.contains("offset_seconds=-31"),
        "{logs}"
    );
    assert!(
        logs.contains("retrying once at the corrected time"),
        "{logs}"
    );
    assert_eq!(secrets.len(), 3, "two assertions and an access token");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the logs:\n{logs}"
        );
    }
}

#[test]
fn blocking_authenticator_corrects_a_host_ahead() {
    let clocks = Clocks::new(30);
    let key = key();
    let server = server(&key, &clocks);
    let auth = BlockingAuthenticator::builder(jwt_bearer(&key), Endpoints::Discover(issuer()))
        .clock(clocks.host.clone())
        .seed(7)
        .background_refresh(false)
        .build(server.clone())
        .expect("valid configuration");

    auth.token().expect("a token after one correction");
    assert_eq!(server.token_requests(), 2, "one refusal, one retry");
    assert_eq!(
        server.requests().len(),
        3,
        "discovery, then two token requests"
    );

    clocks.advance(2 * HOUR);
    auth.token().expect("a fresh token");
    assert_eq!(server.token_requests(), 3, "corrected from the start");
}

#[test]
fn blocking_authenticator_reports_a_host_too_far_off() {
    let clocks = Clocks::new(2 * 3600);
    let key = key();
    let server = server(&key, &clocks);
    let auth = BlockingAuthenticator::builder(client_assertion(&key), fixed())
        .clock(clocks.host.clone())
        .seed(7)
        .background_refresh(false)
        .build(server.clone())
        .expect("valid configuration");

    let error = auth.token().expect_err("the host clock is two hours ahead");
    assert!(
        matches!(error.token_error(), Some(TokenError::ClockSkew(_))),
        "{error:?}"
    );
    let shown = error.to_string();
    assert!(
        shown.contains("ahead of the provider's (from its Date header)"),
        "{shown}"
    );
    assert!(!shown.contains(SECRET));
    assert_eq!(server.token_requests(), 1);
}

#[cfg(feature = "tokio")]
mod on_tokio {
    use service_auth::authenticator::Authenticator;

    use super::*;

    #[tokio::test]
    async fn authenticator_corrects_a_host_ahead_and_keeps_the_offset() {
        let clocks = Clocks::new(30);
        let key = key();
        let server = server(&key, &clocks);
        let auth = Authenticator::builder(client_assertion(&key), fixed())
            .clock(clocks.host.clone())
            .seed(7)
            .background_refresh(false)
            .build(server.clone())
            .expect("valid configuration");

        auth.token().await.expect("a token after one correction");
        assert_eq!(server.token_requests(), 2, "one refusal, one retry");

        for round in 1..=2 {
            clocks.advance(2 * HOUR);
            auth.token().await.expect("a fresh token");
            assert_eq!(server.token_requests(), 2 + round, "one request each");
        }
    }
}
