//! `BlockingAuthenticator` against the mock authorization server, on a
//! manual clock: single flight, refresh ahead, failures, hold-off,
//! invalidation, a panicking transport.
#![cfg(feature = "mock")]

mod driver_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use http::StatusCode;
use service_auth::blocking::BlockingAuthenticator;
use service_auth::credentials::{Algorithm, KeyRing, SigningKey};
use service_auth::error::{ErrorCode, TokenError, TransportError};
use service_auth::flow::JwtBearer;
use service_auth::manager::{Error, RefreshPolicy};
use service_auth::method::{Endpoints, Method};
use service_auth::mock::{Fault, MockServer};
use service_auth::secret::PersonalAccessToken;
use service_auth::time::{Clock, ManualClock};
use service_auth::transport::BlockingTransport;

use driver_support::*;

/// An authenticator with background refresh off, so every request the
/// server sees was caused by the test.
fn authenticator(
    server: &MockServer,
    clock: &ManualClock,
    method: Method,
) -> BlockingAuthenticator {
    BlockingAuthenticator::builder(method, Endpoints::Discover(issuer()))
        .clock(clock.clone())
        .seed(7)
        .background_refresh(false)
        .build(server.clone())
        .expect("valid configuration")
}

/// Waits for another thread's work to become visible, failing after 10 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

fn resource_status(server: &MockServer, clock: &ManualClock, auth: &BlockingAuthenticator) -> u16 {
    let mut request = http::Request::get(server.resource_url())
        .body(Vec::new())
        .expect("valid request");
    auth.authorize(&mut request).expect("a token");
    server.handle(request, clock.now()).status().as_u16()
}

#[test]
fn discovers_once_then_serves_the_cached_token() {
    let clock = clock();
    let server = server(&clock);
    let auth = authenticator(&server, &clock, client_credentials(SECRET));
    assert_eq!(auth.method_name(), "client credentials");

    let first = auth.token().expect("a token");
    assert_eq!(first.generation().get(), 1);
    assert_eq!(
        server.requests().len(),
        2,
        "discovery and one token request"
    );
    assert_eq!(resource_status(&server, &clock, &auth), 200);

    clock.advance(30 * 60 * Duration::from_secs(1));
    let again = auth.token().expect("a token");
    assert!(Arc::ptr_eq(&first, &again), "the cached token, not a copy");
    assert_eq!(server.token_requests(), 1);
    assert!(!format!("{auth:?} {again:?}").contains(again.access_token().secret()));
}

#[test]
fn many_threads_cause_one_token_request() {
    let clock = clock();
    let server = server(&clock);
    // The answer is held back so that every thread arrives while it is in flight.
    server.push_fault(Fault::Delay(Duration::from_millis(50)));
    let auth = authenticator(&server, &clock, client_credentials(SECRET));
    let threads = 100;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (auth, barrier) = (auth.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                auth.token().map(|token| token.generation())
            })
        })
        .collect();
    for handle in handles {
        let generation = handle.join().expect("no panic").expect("a token");
        assert_eq!(generation.get(), 1);
    }
    assert_eq!(server.token_requests(), 1);
}

#[test]
fn refresh_ahead_serves_the_valid_token_while_refreshing() {
    let clock = clock();
    let server = server(&clock);
    let auth = authenticator(&server, &clock, client_credentials(SECRET));
    let first = auth.token().expect("a token");
    let refresh_at = first.refresh_at().expect("expires");
    assert!(refresh_at <= first.expires_at().expect("expires") - Duration::from_secs(60));

    // Past the refresh point: the caller gets the valid token at once and the
    // refresh runs on another thread.
    clock.advance(refresh_at - clock.now().instant());
    assert_eq!(auth.token().expect("a token").generation().get(), 1);
    wait_until("the refresh completed", || {
        auth.token().expect("a token").generation().get() == 2
    });
    assert_eq!(server.token_requests(), 2);
}

#[test]
fn failing_refresh_keeps_serving_the_valid_token() {
    let clock = clock();
    let server = server(&clock);
    let auth = authenticator(&server, &clock, client_credentials(SECRET));
    auth.token().expect("a token");
    server.push_faults(Fault::Status(StatusCode::SERVICE_UNAVAILABLE).repeat(100));

    clock.advance(HOUR - Duration::from_secs(30));
    assert_eq!(auth.token().expect("the valid token").generation().get(), 1);
    wait_until("the refresh failed", || server.token_requests() == 2);
    for _ in 0..10 {
        assert_eq!(auth.token().expect("the valid token").generation().get(), 1);
    }

    // Past expiry minus the safety margin the token is no longer served.
    clock.advance(Duration::from_secs(26));
    let error = auth.token().expect_err("no valid token");
    let last = error.token_error().expect("the provider's error");
    assert!(last.retry().is_transient(), "{error}");
    assert!(error.to_string().contains("503"), "{error}");

    server.clear_faults();
    clock.advance(Duration::from_secs(60));
    assert_eq!(auth.token().expect("recovered").generation().get(), 2);
}

#[test]
fn permanent_error_holds_off_until_reset() {
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
    assert_eq!(auth.method_name(), "private key JWT");

    let error = auth.token().expect_err("unknown key");
    assert!(matches!(error, Error::Token(_)), "{error}");
    let Some(TokenError::Provider(provider)) = error.token_error() else {
        panic!("expected the provider's error, got {error}");
    };
    assert!(provider.code == ErrorCode::InvalidGrant || provider.code == ErrorCode::InvalidClient);
    assert_eq!(server.token_requests(), 1);

    clock.advance(Duration::from_secs(4 * 60));
    for _ in 0..5 {
        let error = auth.token().expect_err("held off");
        assert!(matches!(error, Error::HeldOff { .. }), "{error}");
        assert!(error.to_string().contains("reset()"));
    }
    assert_eq!(server.token_requests(), 1, "no request while held off");

    // Key rotation fixes the configuration; reset lifts the hold-off.
    keys.replace(good);
    auth.reset();
    assert_eq!(auth.token().expect("a token").generation().get(), 1);
    assert_eq!(server.token_requests(), 2);
}

#[test]
fn invalidation_fetches_a_new_token_once_per_generation() {
    let clock = clock();
    let server = server(&clock);
    let auth = authenticator(&server, &clock, client_credentials(SECRET));
    let first = auth.token().expect("a token").generation();
    assert_eq!(resource_status(&server, &clock, &auth), 200);

    server.revoke_all();
    let mut request = http::Request::get(server.resource_url())
        .body(Vec::new())
        .expect("request");
    let rejected = auth.authorize(&mut request).expect("a token");
    assert_eq!(
        server.handle(request, clock.now()).status(),
        StatusCode::UNAUTHORIZED
    );

    auth.invalidate(rejected);
    auth.invalidate(first);
    let second = auth.token().expect("a new token").generation();
    assert_eq!(second.get(), 2);
    auth.invalidate(first);
    assert_eq!(
        auth.token().expect("a token").generation(),
        second,
        "late report ignored"
    );
    assert_eq!(server.token_requests(), 2);
    assert_eq!(resource_status(&server, &clock, &auth), 200);
}

#[test]
fn personal_access_token_needs_no_request() {
    let clock = clock();
    let server = server(&clock);
    let method = Method::from(PersonalAccessToken::new(PAT));
    let auth = authenticator(&server, &clock, method);
    assert_eq!(resource_status(&server, &clock, &auth), 200);
    clock.advance(1000 * HOUR);
    let token = auth.token().expect("the token");
    assert_eq!(token.expires_at(), None);
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.path != "/oauth/v2/token")
    );
    assert_eq!(server.token_requests(), 0);

    auth.invalidate(token.generation());
    let error = auth.token().expect_err("rejected");
    assert!(
        matches!(
            error.token_error(),
            Some(TokenError::PersonalAccessTokenRejected)
        ),
        "{error}"
    );
    auth.reset();
    assert_eq!(auth.token().expect("the token again").generation().get(), 2);
}

/// A transport that panics on its first request, then passes requests on.
struct PanicsOnce {
    server: MockServer,
    panicked: AtomicBool,
}

impl BlockingTransport for PanicsOnce {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        if !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("transport bug");
        }
        BlockingTransport::send(&self.server, request)
    }
}

#[test]
fn panicking_transport_releases_the_fetch() {
    let clock = clock();
    let server = server(&clock);
    let transport = PanicsOnce {
        server: server.clone(),
        panicked: AtomicBool::new(false),
    };
    let auth =
        BlockingAuthenticator::builder(client_credentials(SECRET), Endpoints::Discover(issuer()))
            .clock(clock.clone())
            .background_refresh(false)
            .build(transport)
            .expect("valid configuration");

    let caller = auth.clone();
    let panicked = thread::spawn(move || caller.token()).join();
    assert!(
        panicked.is_err(),
        "the panic reaches the caller that ran the fetch"
    );
    let error = auth
        .token()
        .expect_err("backing off after the abandoned fetch");
    assert!(matches!(error, Error::BackingOff { .. }), "{error}");

    clock.advance(Duration::from_secs(60));
    assert_eq!(auth.token().expect("recovered").generation().get(), 1);
}

#[test]
fn background_refresh_fetches_without_callers() {
    let clock = clock();
    let server = server(&clock);
    let mut policy = RefreshPolicy::default();
    policy.jitter = 0.0;
    let auth =
        BlockingAuthenticator::builder(client_credentials(SECRET), Endpoints::Discover(issuer()))
            .clock(clock.clone())
            .policy(policy)
            .build(server.clone())
            .expect("valid configuration");

    // The background thread primes the cache on its own.
    wait_until("the first token arrived", || server.token_requests() == 1);
    let first = auth.token().expect("a token");
    assert_eq!(server.token_requests(), 1);

    // A rejection wakes it, and it fetches the replacement before anyone asks.
    auth.invalidate(first.generation());
    wait_until("the replacement arrived", || server.token_requests() == 2);
    wait_until("the replacement is cached", || {
        auth.token().expect("a token").generation().get() == 2
    });
    assert_eq!(server.token_requests(), 2);
}

#[test]
fn invalid_configuration_is_refused_before_any_request() {
    let clock = clock();
    let server = server(&clock);
    let built =
        BlockingAuthenticator::builder(client_credentials(""), Endpoints::Discover(issuer()))
            .build(server.clone());
    assert!(built.is_err());
    assert!(server.requests().is_empty());
}
