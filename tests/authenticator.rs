//! `Authenticator` against the mock authorization server, on a manual clock
//! (and tokio's paused time where a background task sleeps): single flight,
//! cancellation, refresh ahead, failures, hold-off, invalidation.
#![cfg(all(feature = "mock", feature = "tokio"))]

mod driver_support;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use service_auth::authenticator::Authenticator;
use service_auth::credentials::{Algorithm, KeyRing, SigningKey};
use service_auth::endpoint::{TokenEndpoint, UrlPolicy};
use service_auth::error::{ErrorCode, TokenError};
use service_auth::flow::{ClientAuth, ClientCredentials, JwtBearer};
use service_auth::manager::{Error, RefreshPolicy};
use service_auth::method::{Endpoints, Method};
use service_auth::mock::{Fault, MockServer};
use service_auth::secret::{ClientSecret, PersonalAccessToken};
use service_auth::time::{Clock, ManualClock};

use driver_support::*;

/// An authenticator with background refresh off, so every request the
/// server sees was caused by the test.
fn authenticator(server: &MockServer, clock: &ManualClock, method: Method) -> Authenticator {
    Authenticator::builder(method, Endpoints::Discover(issuer()))
        .clock(clock.clone())
        .seed(7)
        .background_refresh(false)
        .build(server.clone())
        .expect("valid configuration")
}

/// Lets spawned tasks run until `done`, on a current-thread runtime.
async fn run_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never reached: {what}");
}

#[test]
fn handle_is_clone_send_sync_and_its_futures_are_send() {
    fn handle<T: Clone + Send + Sync + 'static>() {}
    fn future<F: std::future::Future + Send>(_: F) {}
    handle::<Authenticator>();
    let clock = clock();
    let auth = authenticator(&server(&clock), &clock, client_credentials(SECRET));
    future(auth.token());
    let mut request = http::Request::new(());
    future(auth.authorize(&mut request));
}

#[tokio::test]
async fn authorize_sets_a_sensitive_bearer_header_from_the_cache() {
    let clock = clock();
    let server = server(&clock);
    let auth = authenticator(&server, &clock, client_credentials(SECRET));
    assert_eq!(auth.method_name(), "client credentials");

    let mut request = http::Request::get(server.resource_url())
        .body(Vec::new())
        .expect("request");
    let generation = auth.authorize(&mut request).await.expect("a token");
    assert_eq!(generation.get(), 1);
    let header = &request.headers()[http::header::AUTHORIZATION];
    assert!(header.is_sensitive());
    assert!(header.to_str().expect("ascii").starts_with("Bearer "));
    assert!(!format!("{request:?} {auth:?}").contains(&header.to_str().expect("ascii")[7..]));
    assert_eq!(server.handle(request, clock.now()).status(), StatusCode::OK);

    clock.advance(HOUR / 2);
    let first = auth.token().await.expect("a token");
    let again = auth.token().await.expect("a token");
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(server.token_requests(), 1);
    assert_eq!(
        server.requests().len(),
        3,
        "discovery, token and resource requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_cause_one_token_request() {
    let clock = clock();
    let server = server(&clock);
    // Hold the answer back so that every caller arrives while it is in flight.
    server.push_fault(Fault::Delay(Duration::from_millis(50)));
    let auth = authenticator(&server, &clock, client_credentials(SECRET));
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let (auth, barrier) = (auth.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                auth.token().await.map(|token| token.generation())
            })
        })
        .collect();
    for caller in callers {
        let generation = caller.await.expect("no panic").expect("a token");
        assert_eq!(generation.get(), 1);
    }
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_share_the_failure_of_one_request() {
    let clock = clock();
    let server = server(&clock);
    server.push_faults(Fault::Status(StatusCode::BAD_GATEWAY).repeat(100));
    let auth = authenticator(&server, &clock, client_credentials(SECRET));
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.token().await })
        })
        .collect();
    for caller in callers {
        // Callers that waited for the request get its error; later ones
        // the same error with the backoff.
        let error = caller
            .await
            .expect("no panic")
            .expect_err("the provider failed");
        assert!(
            matches!(error, Error::Token(_) | Error::BackingOff { .. }),
            "{error}"
        );
        let last = error.token_error().expect("the request's error");
        assert!(last.to_string().contains("502"), "{last}");
    }
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn a_cancelled_caller_does_not_cancel_the_fetch() {
    let clock = clock();
    let server = server(&clock);
    server.push_fault(Fault::Delay(Duration::from_millis(100)));
    let auth = authenticator(&server, &clock, client_credentials(SECRET));

    let caller = tokio::spawn({
        let auth = auth.clone();
        async move { auth.token().await }
    });
    run_until("the token request is in flight", || {
        server.token_requests() == 1
    })
    .await;
    caller.abort();
    assert!(caller.await.expect_err("aborted").is_cancelled());

    let token = auth.token().await.expect("the fetch went on");
    assert_eq!(token.generation().get(), 1);
    assert_eq!(server.token_requests(), 1, "no second request");
}

#[tokio::test]
async fn refresh_ahead_serves_the_valid_token_while_refreshing() {
    let clock = clock();
    let server = server(&clock);
    let auth = authenticator(&server, &clock, client_credentials(SECRET));
    let first = auth.token().await.expect("a token");
    let refresh_at = first.refresh_at().expect("expires");
    let expires_at = first.expires_at().expect("expires");
    assert!(refresh_at <= expires_at - Duration::from_secs(60));
    assert!(refresh_at >= expires_at - Duration::from_secs(75));

    clock.advance(refresh_at - clock.now().instant());
    let during = auth.token().await.expect("the valid token");
    assert_eq!(during.generation().get(), 1, "no waiting for the refresh");
    run_until("the refresh completed", || server.token_requests() == 2).await;
    assert_eq!(auth.token().await.expect("a token").generation().get(), 2);
}

#[tokio::test]
async fn failing_refresh_keeps_serving_the_valid_token() {
    let clock = clock();
    let server = server(&clock);
    let auth = authenticator(&server, &clock, client_credentials(SECRET));
    auth.token().await.expect("a token");
    server.push_faults(Fault::Status(StatusCode::SERVICE_UNAVAILABLE).repeat(100));

    clock.advance(HOUR - Duration::from_secs(30));
    assert_eq!(auth.token().await.expect("valid").generation().get(), 1);
    run_until("the refresh failed", || server.token_requests() == 2).await;
    for _ in 0..10 {
        assert_eq!(auth.token().await.expect("valid").generation().get(), 1);
    }
    assert_eq!(server.token_requests(), 2, "backing off");

    // Expiry minus the safety margin: no longer served.
    clock.advance(Duration::from_secs(26));
    let error = auth.token().await.expect_err("no valid token");
    assert!(error.retry().is_transient(), "{error}");

    server.clear_faults();
    clock.advance(Duration::from_secs(60));
    assert_eq!(auth.token().await.expect("recovered").generation().get(), 2);
}

#[tokio::test]
async fn permanent_error_holds_off_until_reset() {
    let clock = clock();
    let good = SigningKey::generate(Algorithm::EdDsa, "good").expect("key");
    let unknown = SigningKey::generate(Algorithm::EdDsa, "unknown").expect("key");
    let server = MockServer::builder(ISSUER)
        .service_user("user-1", good.public_key())
        .seed(2)
        .clock(clock.clone())
        .build();
    let keys = KeyRing::new(unknown);
    let method = Method::from(JwtBearer::new("user-1", keys.clone(), &issuer()));
    let auth = authenticator(&server, &clock, method);

    let error = auth.token().await.expect_err("unknown key");
    assert!(matches!(error, Error::Token(_)), "{error}");
    let Some(TokenError::Provider(provider)) = error.token_error() else {
        panic!("expected the provider's error, got {error}");
    };
    assert!(matches!(
        provider.code,
        ErrorCode::InvalidGrant | ErrorCode::InvalidClient
    ));

    clock.advance(Duration::from_secs(4 * 60));
    let error = auth.token().await.expect_err("held off");
    assert!(
        matches!(&error, Error::HeldOff { retry_in, .. } if *retry_in == Duration::from_secs(60))
    );
    assert_eq!(server.token_requests(), 1, "no request while held off");

    keys.replace(good);
    auth.reset();
    assert_eq!(auth.token().await.expect("a token").generation().get(), 1);
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn invalidation_fetches_a_new_token_once_per_generation() {
    let clock = clock();
    let server = server(&clock);
    let auth = authenticator(&server, &clock, client_credentials(SECRET));
    let first = auth.token().await.expect("a token").generation();

    server.revoke_all();
    let mut request = http::Request::get(server.resource_url())
        .body(Vec::new())
        .expect("request");
    let rejected = auth.authorize(&mut request).await.expect("a token");
    assert_eq!(
        server.handle(request, clock.now()).status(),
        StatusCode::UNAUTHORIZED
    );

    // Many tasks saw the same rejection: one new token.
    for _ in 0..10 {
        auth.invalidate(rejected);
    }
    let second = auth.token().await.expect("a new token").generation();
    assert_eq!(second.get(), 2);
    auth.invalidate(first);
    assert_eq!(auth.token().await.expect("a token").generation(), second);
    assert_eq!(server.token_requests(), 2);

    let mut request = http::Request::get(server.resource_url())
        .body(Vec::new())
        .expect("request");
    auth.authorize(&mut request).await.expect("a token");
    assert_eq!(server.handle(request, clock.now()).status(), StatusCode::OK);
}

#[tokio::test]
async fn personal_access_token_needs_no_request_and_its_rejection_is_permanent() {
    let clock = clock();
    let server = server(&clock);
    let endpoint = TokenEndpoint::parse(&server.token_endpoint(), UrlPolicy::https_only())
        .expect("valid endpoint");
    let endpoints = Endpoints::Fixed {
        issuer: None,
        token_endpoint: endpoint,
    };
    let auth = Authenticator::builder(Method::from(PersonalAccessToken::new(PAT)), endpoints)
        .clock(clock.clone())
        .build(server.clone())
        .expect("valid configuration");
    assert_eq!(auth.method_name(), "personal access token");
    let token = auth.token().await.expect("the token");
    assert_eq!(token.access_token().secret(), PAT);
    assert_eq!(token.expires_at(), None);
    assert!(server.requests().is_empty());

    auth.invalidate(token.generation());
    let error = auth.token().await.expect_err("rejected");
    assert!(matches!(error, Error::HeldOff { .. }), "{error}");
    assert!(matches!(
        error.token_error(),
        Some(TokenError::PersonalAccessTokenRejected)
    ));
}

#[tokio::test(start_paused = true)]
async fn background_refresh_keeps_the_token_fresh_without_callers() {
    let clock = clock();
    let server = server(&clock);
    let mut policy = RefreshPolicy::default();
    policy.jitter = 0.0;
    let auth = Authenticator::builder(client_credentials(SECRET), Endpoints::Discover(issuer()))
        .clock(clock.clone())
        .policy(policy)
        .build(server.clone())
        .expect("valid configuration");

    // The background task primes the cache on its own.
    run_until("the first token arrived", || server.token_requests() == 1).await;
    let first = auth.token().await.expect("a token");
    assert_eq!(first.generation().get(), 1);

    // Both clocks reach the refresh point: the task refreshes, nobody waits.
    let until_refresh = first.refresh_at().expect("expires") - clock.now().instant();
    clock.advance(until_refresh);
    tokio::time::advance(until_refresh).await;
    run_until("the background refresh", || server.token_requests() == 2).await;
    run_until("the new token is cached", || {
        auth_generation_now(&auth) == Some(2)
    })
    .await;

    // The task ends with the last handle.
    drop(auth);
    clock.advance(2 * HOUR);
    tokio::time::advance(2 * HOUR).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        server.token_requests(),
        2,
        "no refresh after the last handle dropped"
    );
}

/// The generation a caller would get now, without waiting.
fn auth_generation_now(auth: &Authenticator) -> Option<u64> {
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(auth.token());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(Ok(token)) => Some(token.generation().get()),
        _ => None,
    }
}

#[tokio::test]
async fn invalid_configuration_is_refused_before_any_request() {
    let clock = clock();
    let server = server(&clock);
    let auth = ClientAuth::SecretBasic(ClientSecret::new(""));
    let method = Method::from(ClientCredentials::new(CLIENT, auth));
    let built = Authenticator::builder(method, Endpoints::Discover(issuer())).build(server.clone());
    assert!(built.is_err());
    assert!(server.requests().is_empty());
}

#[test]
fn works_without_a_tokio_runtime() {
    let clock = clock();
    let server = server(&clock);
    let auth = Authenticator::builder(client_credentials(SECRET), Endpoints::Discover(issuer()))
        .clock(clock.clone())
        .build(server.clone())
        .expect("valid configuration");
    // A minimal executor: the mock answers at once, so one poll suffices.
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(auth.token());
    let std::task::Poll::Ready(token) = future.as_mut().poll(&mut context) else {
        panic!("the fetch ran inline and the mock answered at once");
    };
    assert_eq!(token.expect("a token").generation().get(), 1);
}
