//! Interop: every method, through both authenticators, against a real and independently written
//! authorization server: panva's `oidc-provider` (a certified OpenID provider) with a ZITADEL-style
//! JWT bearer grant, served over HTTPS with a test CA generated at start
//! (`tests/interop/README.md`).
//!
//! Needs Node.js, npm and `npm ci --prefix tests/interop`; without them every test fails and says
//! so. Most tests share one server ([`Server::shared`]); tests that revoke tokens, count requests,
//! or need a short token lifetime or plain HTTP start their own.
#![cfg(all(feature = "reqwest", feature = "blocking"))]

mod interop_support;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{StatusCode, header};
use interop_support::{ResourceReply, Server, ServerOptions, TokenRequests};
use service_auth::authenticator::Authenticator;
use service_auth::blocking::BlockingAuthenticator;
use service_auth::credentials::{Algorithm, KeyFile, KeyRing};
use service_auth::endpoint::{Issuer, TokenEndpoint, UrlError, UrlPolicy};
use service_auth::error::{
    ErrorCode, ProviderError, RetryAdvice, TokenError, TransportError, TransportErrorKind,
};
use service_auth::flow::token::{
    AssertionAudience, ClientAssertion, ClientAuth, ClientCredentials, JwtBearer,
};
use service_auth::manager::{CachedToken, Error, Generation};
use service_auth::method::{Endpoints, Method};
use service_auth::secret::{ClientSecret, PersonalAccessToken};
use service_auth::time::{ManualClock, Now};
use service_auth::transport::Transport;
use service_auth::transport::reqwest::ReqwestTransport;
use service_auth::transport::ureq::UreqTransport;

// ---------------------------------------------------------------------------------------------
// Every method, through `Authenticator` (reqwest) and `BlockingAuthenticator` (ureq)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_secret_basic_with_special_characters_async() {
    let server = Server::shared();
    assert_needs_form_encoding(server.client_secret("basic-client").secret());
    let expected = Expected::client(server, "basic-client", Some("read write"));
    exercise_async(server, basic_client(server), server.fixed(), &expected).await;
}

#[test]
fn client_secret_basic_with_special_characters_blocking() {
    let server = Server::shared();
    assert_needs_form_encoding(server.client_secret("basic-client").secret());
    let expected = Expected::client(server, "basic-client", Some("read write"));
    exercise_blocking(server, basic_client(server), server.discover(), &expected);
}

#[tokio::test]
async fn client_secret_post_async() {
    let server = Server::shared();
    let expected = Expected::client(server, "post-client", Some("read"));
    exercise_async(server, post_client(server), server.discover(), &expected).await;
}

#[test]
fn client_secret_post_blocking() {
    let server = Server::shared();
    let expected = Expected::client(server, "post-client", Some("read"));
    exercise_blocking(server, post_client(server), server.fixed(), &expected);
}

#[tokio::test]
async fn private_key_jwt_client_auth_rs256_async() {
    private_key_jwt_async("pkjwt-rsa", Algorithm::Rs256).await;
}

#[tokio::test]
async fn private_key_jwt_client_auth_es256_async() {
    private_key_jwt_async("pkjwt-ec", Algorithm::Es256).await;
}

#[tokio::test]
async fn private_key_jwt_client_auth_eddsa_async() {
    private_key_jwt_async("pkjwt-ed", Algorithm::EdDsa).await;
}

#[test]
fn private_key_jwt_client_auth_rs256_blocking() {
    private_key_jwt_blocking("pkjwt-rsa", Algorithm::Rs256);
}

#[test]
fn private_key_jwt_client_auth_es256_blocking() {
    private_key_jwt_blocking("pkjwt-ec", Algorithm::Es256);
}

#[test]
fn private_key_jwt_client_auth_eddsa_blocking() {
    private_key_jwt_blocking("pkjwt-ed", Algorithm::EdDsa);
}

/// The ZITADEL application key file (`"type":"application"`, PKCS#1 key) names the client and
/// the key id; the client assertion's `aud` is the issuer here, which the provider also accepts.
#[tokio::test]
async fn private_key_jwt_client_auth_from_zitadel_application_key_file_async() {
    let server = Server::shared();
    let (client_id, method) = application_key_file_method(server);
    let expected = Expected::client(server, &client_id, Some("read"));
    exercise_async(server, method, server.discover(), &expected).await;
}

#[test]
fn private_key_jwt_client_auth_from_zitadel_application_key_file_blocking() {
    let server = Server::shared();
    let (client_id, method) = application_key_file_method(server);
    let expected = Expected::client(server, &client_id, Some("read"));
    exercise_blocking(server, method, server.fixed(), &expected);
}

#[tokio::test]
async fn jwt_bearer_grant_rs256_async() {
    jwt_bearer_async(Algorithm::Rs256).await;
}

#[tokio::test]
async fn jwt_bearer_grant_es256_async() {
    jwt_bearer_async(Algorithm::Es256).await;
}

#[tokio::test]
async fn jwt_bearer_grant_eddsa_async() {
    jwt_bearer_async(Algorithm::EdDsa).await;
}

#[test]
fn jwt_bearer_grant_rs256_blocking() {
    jwt_bearer_blocking(Algorithm::Rs256);
}

#[test]
fn jwt_bearer_grant_es256_blocking() {
    jwt_bearer_blocking(Algorithm::Es256);
}

#[test]
fn jwt_bearer_grant_eddsa_blocking() {
    jwt_bearer_blocking(Algorithm::EdDsa);
}

/// ZITADEL's service account key file and ZITADEL's default scope, as a ZITADEL user configures it.
#[tokio::test]
async fn jwt_bearer_grant_from_zitadel_service_account_key_file_async() {
    let server = Server::shared();
    let expected = Expected::service_user(server, Some(ZITADEL_SCOPE));
    let method = service_account_key_file_method(server);
    exercise_async(server, method, server.discover(), &expected).await;
}

#[test]
fn jwt_bearer_grant_from_zitadel_service_account_key_file_blocking() {
    let server = Server::shared();
    let expected = Expected::service_user(server, Some(ZITADEL_SCOPE));
    let method = service_account_key_file_method(server);
    exercise_blocking(server, method, server.fixed(), &expected);
}

/// The personal access token is sent as it is; one the resource refuses cannot be refreshed, and
/// after `invalidate` the authenticator says so instead of serving it again.
#[tokio::test]
async fn personal_access_token_async() {
    let server = Server::shared();
    let pat = PersonalAccessToken::new(server.manifest().static_pat.as_str());
    let auth = build_async(server, Method::from(pat), server.fixed());
    assert_eq!(auth.method_name(), "personal access token");
    let token = auth
        .token()
        .await
        .expect("a personal access token needs no request");
    assert_eq!(token.lifetime(), None);
    let (_, reply) = call_resource_async(server, &auth).await;
    assert_pat_accepted(server, &reply);

    let auth = build_async(server, Method::from(unknown_pat()), server.fixed());
    let (generation, reply) = call_resource_async(server, &auth).await;
    assert_invalid_token(&reply);
    auth.invalidate(generation);
    assert_pat_rejected(auth.token().await);
}

#[test]
fn personal_access_token_blocking() {
    let server = Server::shared();
    let pat = PersonalAccessToken::new(server.manifest().static_pat.as_str());
    let auth = build_blocking(server, Method::from(pat), server.discover());
    assert_eq!(auth.method_name(), "personal access token");
    assert_eq!(auth.token().expect("no request").lifetime(), None);
    let (_, reply) = call_resource_blocking(server, &auth);
    assert_pat_accepted(server, &reply);

    let auth = build_blocking(server, Method::from(unknown_pat()), server.discover());
    let (generation, reply) = call_resource_blocking(server, &auth);
    assert_invalid_token(&reply);
    auth.invalidate(generation);
    assert_pat_rejected(auth.token());
}

// ---------------------------------------------------------------------------------------------
// Refresh, invalidation, discovery (servers of their own: these count requests)
// ---------------------------------------------------------------------------------------------

/// With `--ttl 4`, for three token lifetimes on the real clock, a caller polls the token and
/// uses it at the resource: every token served is accepted, each token is replaced by exactly
/// one token request made by the background refresh at half its lifetime (`RefreshPolicy`:
/// `min(margin, L / 2)`), and every new token arrives before the server expires the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_once_per_token_ahead_of_expiry_across_lifetimes_async() {
    let server = Server::start(ServerOptions {
        ttl_seconds: REFRESH_TTL_SECONDS,
        plain_http: false,
    });
    let auth = Authenticator::builder(basic_client(&server), server.fixed())
        .seed(7)
        .build(server.reqwest())
        .expect("a valid configuration");
    let mut log = RefreshLog::new();
    let started = Instant::now();
    loop {
        let token = auth.token().await.expect("a token");
        let reply = server.call_resource_async(bearer(&server, &token)).await;
        if log.record(&token, &reply) && started.elapsed() >= log.run_for() {
            break;
        }
        tokio::time::sleep(REFRESH_POLL).await;
    }
    let counters = server.counters_async().await;
    log.verify(&counters.token_requests, started.elapsed());
    assert_eq!(
        counters.token_requests.by_client("basic-client"),
        log.tokens()
    );
}

#[test]
fn refresh_once_per_token_ahead_of_expiry_across_lifetimes_blocking() {
    let server = Server::start(ServerOptions {
        ttl_seconds: REFRESH_TTL_SECONDS,
        plain_http: false,
    });
    let auth = BlockingAuthenticator::builder(post_client(&server), server.discover())
        .seed(7)
        .build(server.ureq())
        .expect("a valid configuration");
    let mut log = RefreshLog::new();
    let started = Instant::now();
    loop {
        let token = auth.token().expect("a token");
        let reply = server.call_resource(bearer(&server, &token));
        if log.record(&token, &reply) && started.elapsed() >= log.run_for() {
            break;
        }
        thread::sleep(REFRESH_POLL);
    }
    let counters = server.counters();
    log.verify(&counters.token_requests, started.elapsed());
    assert_eq!(
        counters.token_requests.by_client("post-client"),
        log.tokens()
    );
    assert_eq!(
        counters.discovery_requests, 1,
        "discovery is cached across refreshes"
    );
}

/// The resource answers 401 for a revoked token; `invalidate(generation)` (twice, as two tasks
/// that saw the same 401 would) drops it, and exactly one new token request follows.
#[tokio::test]
async fn rejected_token_is_invalidated_and_replaced_async() {
    let server = Server::start(ServerOptions::default());
    let auth = build_async(
        &server,
        jwt_bearer(&server, Algorithm::Es256),
        server.discover(),
    );
    let (first, reply) = call_resource_async(&server, &auth).await;
    assert_eq!(reply.status, StatusCode::OK);

    assert!(server.revoke_all_async().await >= 1);
    let (again, reply) = call_resource_async(&server, &auth).await;
    assert_eq!(
        again, first,
        "the authenticator cannot know of the revocation by itself"
    );
    assert_invalid_token(&reply);
    auth.invalidate(first);
    auth.invalidate(first);

    let (second, reply) = call_resource_async(&server, &auth).await;
    assert!(second > first, "a new token after invalidate");
    assert_eq!(reply.status, StatusCode::OK);
    let counters = server.counters_async().await;
    assert_replaced_once(&counters, 1);
}

#[test]
fn rejected_token_is_invalidated_and_replaced_blocking() {
    let server = Server::start(ServerOptions::default());
    let auth = build_blocking(
        &server,
        private_key_jwt(&server, "pkjwt-ed"),
        server.fixed(),
    );
    let (first, reply) = call_resource_blocking(&server, &auth);
    assert_eq!(reply.status, StatusCode::OK);

    assert!(server.revoke_all() >= 1);
    let (again, reply) = call_resource_blocking(&server, &auth);
    assert_eq!(
        again, first,
        "the authenticator cannot know of the revocation by itself"
    );
    assert_invalid_token(&reply);
    auth.invalidate(first);
    auth.invalidate(first);

    let (second, reply) = call_resource_blocking(&server, &auth);
    assert!(second > first, "a new token after invalidate");
    assert_eq!(reply.status, StatusCode::OK);
    assert_replaced_once(&server.counters(), 0);
}

/// Sixteen concurrent callers cause one discovery and one token request (single flight);
/// discovery is cached for the next token; a fixed token endpoint needs no discovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discovery_happens_once_and_a_fixed_token_endpoint_skips_it_async() {
    let server = Server::start(ServerOptions::default());
    let auth = build_async(&server, post_client(&server), server.discover());
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.token().await.map(|token| token.generation()) })
        })
        .collect();
    let mut generations = BTreeSet::new();
    for caller in callers {
        generations.insert(caller.await.expect("no panic").expect("a token"));
    }
    assert_eq!(generations.len(), 1, "every caller got the one token");
    assert_requests(&server.counters_async().await, 1, 1);

    auth.invalidate(*generations.first().expect("one generation"));
    auth.token().await.expect("a new token");
    assert_requests(&server.counters_async().await, 1, 2);

    let fixed = Endpoints::Fixed {
        issuer: None,
        token_endpoint: server.token_endpoint(),
    };
    let auth = build_async(&server, basic_client(&server), fixed);
    auth.token().await.expect("a token from the fixed endpoint");
    assert_requests(&server.counters_async().await, 1, 3);
}

#[test]
fn discovery_happens_once_and_a_fixed_token_endpoint_skips_it_blocking() {
    let server = Server::start(ServerOptions::default());
    let auth = build_blocking(&server, basic_client(&server), server.discover());
    let generations: BTreeSet<Generation> = thread::scope(|scope| {
        let callers: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| auth.token().expect("a token").generation()))
            .collect();
        callers
            .into_iter()
            .map(|caller| caller.join().expect("no panic"))
            .collect()
    });
    assert_eq!(generations.len(), 1, "every caller got the one token");
    assert_requests(&server.counters(), 1, 1);

    auth.invalidate(*generations.first().expect("one generation"));
    auth.token().expect("a new token");
    assert_requests(&server.counters(), 1, 2);

    let fixed = Endpoints::Fixed {
        issuer: None,
        token_endpoint: server.token_endpoint(),
    };
    let auth = build_blocking(&server, post_client(&server), fixed);
    auth.token().expect("a token from the fixed endpoint");
    assert_requests(&server.counters(), 1, 3);
}

// ---------------------------------------------------------------------------------------------
// The real server's errors, mapped to typed errors
// ---------------------------------------------------------------------------------------------

/// A wrong secret is `invalid_client` (401), permanent: the next call makes no request and
/// reports the hold-off. Neither error shows the secret.
#[tokio::test]
async fn wrong_client_secret_is_a_permanent_invalid_client_async() {
    let server = Server::shared();
    let method = Method::from(ClientCredentials::new(
        "basic-client",
        ClientAuth::SecretBasic(ClientSecret::new(WRONG_SECRET)),
    ));
    let auth = build_async(server, method, server.fixed());
    let error = auth.token().await.expect_err("a wrong secret");
    assert_wrong_secret(&error);
    assert_held_off(auth.token().await, ErrorCode::InvalidClient);
}

#[test]
fn wrong_client_secret_is_a_permanent_invalid_client_blocking() {
    let server = Server::shared();
    let method = Method::from(ClientCredentials::new(
        "post-client",
        ClientAuth::SecretPost(ClientSecret::new(WRONG_SECRET)),
    ));
    let auth = build_blocking(server, method, server.discover());
    let error = auth.token().expect_err("a wrong secret");
    assert_wrong_secret(&error);
    assert_held_off(auth.token(), ErrorCode::InvalidClient);
}

/// An unknown key id is `invalid_grant` for the JWT bearer grant; oidc-provider answers
/// `invalid_client` for a client assertion with an unknown key id (it never says why).
#[tokio::test]
async fn unknown_key_id_is_invalid_grant_async() {
    let server = Server::shared();
    let key = server.bearer_key_as("RS256", "svc-user-1-no-such-key");
    let method = JwtBearer::new(server.service_user(), KeyRing::new(key), &server.issuer());
    let auth = build_async(server, Method::from(method), server.fixed());
    let error = provider_error(auth.token().await);
    assert_eq!(
        (error.status, error.code),
        (StatusCode::BAD_REQUEST, ErrorCode::InvalidGrant)
    );

    let key = server.client_key_as("pkjwt-ec", "pkjwt-ec-no-such-key");
    let auth = ClientAuth::PrivateKeyJwt(ClientAssertion::new(KeyRing::new(key)));
    let method = Method::from(ClientCredentials::new("pkjwt-ec", auth));
    let auth = build_async(server, method, server.fixed());
    let error = provider_error(auth.token().await);
    assert_eq!(
        (error.status, error.code),
        (StatusCode::UNAUTHORIZED, ErrorCode::InvalidClient)
    );
}

#[test]
fn unknown_key_id_is_invalid_grant_blocking() {
    let server = Server::shared();
    let key = server.bearer_key_as("ES256", "svc-user-1-no-such-key");
    let method = JwtBearer::new(server.service_user(), KeyRing::new(key), &server.issuer());
    let auth = build_blocking(server, Method::from(method), server.discover());
    let error = auth.token().expect_err("an unknown key id");
    assert_eq!(error.retry(), RetryAdvice::Permanent);
    let error = provider_error::<()>(Err(error));
    assert_eq!(
        (error.status, error.code),
        (StatusCode::BAD_REQUEST, ErrorCode::InvalidGrant)
    );
}

/// A registered key id with a signature by another key is `invalid_grant`.
#[tokio::test]
async fn signature_by_an_unregistered_key_is_invalid_grant() {
    let server = Server::shared();
    let key = server.rogue_key(server.bearer_kid("ES256"));
    let method = JwtBearer::new(server.service_user(), KeyRing::new(key), &server.issuer());
    let auth = build_async(server, Method::from(method), server.fixed());
    let error = provider_error(auth.token().await);
    assert_eq!(error.code, ErrorCode::InvalidGrant);
}

/// A host clock two hours behind signs assertions that expired an hour ago: `invalid_grant`
/// for the JWT bearer grant, `invalid_client` for a client assertion. The provider's `Date`
/// header shows the host clock is off by more than the library corrects, so the error says
/// so (clock skew, permanent) and keeps the provider's answer inside.
#[tokio::test]
async fn expired_assertion_is_invalid_grant() {
    let server = Server::shared();
    let behind = || ManualClock::new(Now::new(Instant::now(), SystemTime::now() - 2 * HOUR));
    let auth = Authenticator::builder(jwt_bearer(server, Algorithm::EdDsa), server.fixed())
        .clock(behind())
        .build(server.reqwest())
        .expect("a valid configuration");
    let result = auth.token().await;
    assert_clock_skew(&result);
    let error = provider_error(result);
    assert_eq!(
        (error.status, error.code),
        (StatusCode::BAD_REQUEST, ErrorCode::InvalidGrant)
    );

    let auth = Authenticator::builder(private_key_jwt(server, "pkjwt-rsa"), server.fixed())
        .clock(behind())
        .build(server.reqwest())
        .expect("a valid configuration");
    let error = provider_error(auth.token().await);
    assert_eq!(
        (error.status, error.code),
        (StatusCode::UNAUTHORIZED, ErrorCode::InvalidClient)
    );
}

/// The server refuses an `iat` more than 1 s in its future, as ZITADEL does. The default `iat`
/// backdate (5 s) absorbs a host clock 3 s ahead; a clock two minutes ahead is refused once,
/// corrected from the provider's `Date` header, and the retried assertion is accepted.
#[tokio::test]
async fn jwt_bearer_tolerates_a_clock_seconds_ahead_and_corrects_minutes() {
    let server = Server::shared();
    let ahead = |by| ManualClock::new(Now::new(Instant::now(), SystemTime::now() + by));
    let auth = Authenticator::builder(jwt_bearer(server, Algorithm::Rs256), server.fixed())
        .clock(ahead(Duration::from_secs(3)))
        .build(server.reqwest())
        .expect("a valid configuration");
    auth.token()
        .await
        .expect("a token despite a clock 3 s ahead");

    let auth = Authenticator::builder(jwt_bearer(server, Algorithm::Rs256), server.fixed())
        .clock(ahead(Duration::from_secs(120)))
        .build(server.reqwest())
        .expect("a valid configuration");
    let token = auth
        .token()
        .await
        .expect("a token once the clock offset is learned from the Date header");
    assert!(token.expires_at().is_some());
}

/// The JWT bearer grant needs `aud` = the issuer exactly: the token endpoint or the issuer with
/// a trailing slash is `invalid_grant`.
#[tokio::test]
async fn jwt_bearer_audience_mismatch_is_invalid_grant() {
    let server = Server::shared();
    let wrong = [
        server.manifest().token_endpoint.clone(),
        format!("{}/", server.manifest().issuer),
    ];
    for aud in wrong {
        let key = KeyRing::new(server.bearer_key("ES256"));
        let grant = JwtBearer::new(server.service_user(), key, &server.issuer()).audience(&aud);
        let auth = build_async(server, Method::from(grant), server.fixed());
        let error = provider_error(auth.token().await);
        assert_eq!(error.code, ErrorCode::InvalidGrant, "aud {aud}");
    }
}

/// A client assertion may name the token endpoint (the default) or the issuer
/// (`AssertionAudience::Issuer`); any other `aud` is `invalid_client` (oidc-provider).
#[tokio::test]
async fn client_assertion_audience_mismatch_is_invalid_client() {
    let server = Server::shared();
    let issuer = server.issuer();
    let assertion = |audience| {
        let key = KeyRing::new(server.client_key("pkjwt-ec"));
        let auth = ClientAuth::PrivateKeyJwt(ClientAssertion::new(key).audience(audience));
        Method::from(ClientCredentials::new("pkjwt-ec", auth))
    };
    let issuer_aud = assertion(AssertionAudience::Issuer(issuer.as_str().to_owned()));
    let auth = build_async(server, issuer_aud, server.fixed());
    auth.token()
        .await
        .expect("the issuer is an accepted audience");

    for aud in [
        format!("{issuer}/"),
        "https://auth.example.com/token".to_owned(),
    ] {
        let auth = build_async(
            server,
            assertion(AssertionAudience::Custom(aud.clone())),
            server.fixed(),
        );
        let error = provider_error(auth.token().await);
        assert_eq!(
            (error.status, error.code),
            (StatusCode::UNAUTHORIZED, ErrorCode::InvalidClient),
            "aud {aud}"
        );
    }
}

/// The library only sends grants the server supports, so a transport in between renames the
/// grant to `password`: the real server's answer, with valid client authentication, is
/// `unsupported_grant_type`, permanent.
#[tokio::test]
async fn unsupported_grant_type_is_mapped() {
    let server = Server::shared();
    let transport = RenameGrantType {
        inner: server.reqwest(),
        grant_type: "password",
    };
    let auth = Authenticator::builder(basic_client(server), server.fixed())
        .build(transport)
        .expect("a valid configuration");
    let result = auth.token().await;
    let retry = result.as_ref().err().map(Error::retry);
    let error = provider_error(result);
    assert_eq!(
        (error.status, error.code),
        (StatusCode::BAD_REQUEST, ErrorCode::UnsupportedGrantType)
    );
    assert_eq!(retry, Some(RetryAdvice::Permanent));
}

/// A scope the client may not have is `invalid_scope`, for client credentials and for the JWT
/// bearer grant.
#[tokio::test]
async fn scope_outside_the_allowed_ones_is_invalid_scope() {
    let server = Server::shared();
    let auth = ClientAuth::SecretBasic(server.client_secret("basic-client"));
    let grant = ClientCredentials::new("basic-client", auth).scopes(["read", "admin"]);
    let auth = build_async(server, Method::from(grant), server.fixed());
    let error = provider_error(auth.token().await);
    assert_eq!(
        (error.status, error.code),
        (StatusCode::BAD_REQUEST, ErrorCode::InvalidScope)
    );

    let key = KeyRing::new(server.bearer_key("EdDSA"));
    let grant = JwtBearer::new(server.service_user(), key, &server.issuer()).scopes(["admin"]);
    let auth = build_blocking(server, Method::from(grant), server.fixed());
    let error = provider_error(auth.token());
    assert_eq!(error.code, ErrorCode::InvalidScope);
}

// ---------------------------------------------------------------------------------------------
// TLS and plain HTTP
// ---------------------------------------------------------------------------------------------

/// Without the test CA the server's certificate is not trusted: a transient connect error.
#[tokio::test]
async fn https_without_the_test_ca_fails_to_connect_async() {
    let server = Server::shared();
    let transport = ReqwestTransport::new().expect("a transport with the platform's roots");
    let auth = Authenticator::builder(basic_client(server), server.fixed())
        .build(transport)
        .expect("a valid configuration");
    let error = auth.token().await.expect_err("an untrusted certificate");
    assert_transport_error(&error, TransportErrorKind::Connect);
}

#[test]
fn https_without_the_test_ca_fails_to_connect_blocking() {
    let server = Server::shared();
    let transport = UreqTransport::new().expect("a transport with the public roots");
    let auth = BlockingAuthenticator::builder(basic_client(server), server.discover())
        .build(transport)
        .expect("a valid configuration");
    let error = auth.token().expect_err("an untrusted certificate");
    assert_transport_error(&error, TransportErrorKind::Connect);
}

/// With the dangerous loopback opt-in (URL policy and transports), both authenticators work
/// against a `--plain-http` server, discovery included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_loopback_works_with_the_dangerous_opt_in() {
    let server = Server::start(ServerOptions {
        plain_http: true,
        ..ServerOptions::default()
    });
    assert!(server.manifest().issuer.starts_with("http://127.0.0.1:"));
    assert!(server.issuer().is_plain_http());
    let expected = Expected::client(&server, "basic-client", Some("read write"));
    exercise_async(&server, basic_client(&server), server.discover(), &expected).await;

    let server = tokio::task::spawn_blocking(move || {
        let expected = Expected::client(&server, "post-client", Some("read"));
        exercise_blocking(&server, post_client(&server), server.discover(), &expected);
        server
    })
    .await
    .expect("no panic");
    let counters = server.counters_async().await;
    assert_requests(&counters, 2, 2);
}

/// Without the opt-in, a plain HTTP issuer or token endpoint is refused when parsed, and a
/// transport refuses to send to it, so nothing reaches the server in clear text.
#[tokio::test]
async fn plain_http_is_refused_without_the_opt_in() {
    let server = Server::start(ServerOptions {
        plain_http: true,
        ..ServerOptions::default()
    });
    let https_only = UrlPolicy::https_only();
    let refused = Issuer::parse(&server.manifest().issuer, https_only);
    assert!(
        matches!(refused, Err(UrlError::NotHttps { .. })),
        "{refused:?}"
    );
    let refused = TokenEndpoint::parse(&server.manifest().token_endpoint, https_only);
    assert!(
        matches!(refused, Err(UrlError::NotHttps { .. })),
        "{refused:?}"
    );

    let transport = ReqwestTransport::new().expect("an https-only transport");
    let auth = Authenticator::builder(basic_client(&server), server.discover())
        .build(transport)
        .expect("a valid configuration");
    let error = auth
        .token()
        .await
        .expect_err("plain http without the opt-in");
    assert_transport_error(&error, TransportErrorKind::Other);

    let method = post_client(&server);
    let endpoints = server.fixed();
    let error = tokio::task::spawn_blocking(move || {
        let transport = UreqTransport::new().expect("an https-only transport");
        let auth = BlockingAuthenticator::builder(method, endpoints)
            .build(transport)
            .expect("a valid configuration");
        auth.token().expect_err("plain http without the opt-in")
    })
    .await
    .expect("no panic");
    assert_transport_error(&error, TransportErrorKind::Other);

    let counters = server.counters_async().await;
    assert_requests(&counters, 0, 0);
    assert_eq!(counters.resource_requests.total, 0);
}

// ---------------------------------------------------------------------------------------------
// Methods
// ---------------------------------------------------------------------------------------------

const ZITADEL_SCOPE: &str = "openid urn:zitadel:iam:org:project:id:zitadel:aud";
const WRONG_SECRET: &str = "wrong:s3cr3t%with+special chars";
const HOUR: Duration = Duration::from_secs(60 * 60);

fn basic_client(server: &Server) -> Method {
    assert_registered(server, "basic-client", "client_secret_basic", None);
    let auth = ClientAuth::SecretBasic(server.client_secret("basic-client"));
    Method::from(ClientCredentials::new("basic-client", auth).scopes(["read", "write"]))
}

fn post_client(server: &Server) -> Method {
    assert_registered(server, "post-client", "client_secret_post", None);
    let auth = ClientAuth::SecretPost(server.client_secret("post-client"));
    Method::from(ClientCredentials::new("post-client", auth).scopes(["read"]))
}

/// Client credentials with a client assertion signed by the client's PEM key.
fn private_key_jwt(server: &Server, client_id: &str) -> Method {
    let key = KeyRing::new(server.client_key(client_id));
    let auth = ClientAuth::PrivateKeyJwt(ClientAssertion::new(key));
    Method::from(ClientCredentials::new(client_id, auth).scopes(["read"]))
}

/// The JWT bearer grant for the service user, signed by its PEM key for `algorithm`.
fn jwt_bearer(server: &Server, algorithm: Algorithm) -> Method {
    let key = server.bearer_key(algorithm.as_str());
    assert_eq!(
        key.algorithm(),
        algorithm,
        "the key's type decides the algorithm"
    );
    let key = KeyRing::new(key);
    let grant = JwtBearer::new(server.service_user(), key, &server.issuer());
    Method::from(grant.scopes(["read", "write"]))
}

fn application_key_file_method(server: &Server) -> (String, Method) {
    let file = server.client_key_file("pkjwt-rsa");
    assert!(matches!(file, KeyFile::Application { .. }));
    assert_eq!(file.key().algorithm(), Algorithm::Rs256);
    let client_id = file.principal().to_owned();
    assert_eq!(client_id, "pkjwt-rsa");
    let audience = AssertionAudience::Issuer(server.issuer().as_str().to_owned());
    let assertion = ClientAssertion::new(KeyRing::new(file.into_key())).audience(audience);
    let grant = ClientCredentials::new(&client_id, ClientAuth::PrivateKeyJwt(assertion));
    (client_id, Method::from(grant.scopes(["read"])))
}

fn service_account_key_file_method(server: &Server) -> Method {
    let file = server.bearer_key_file();
    assert!(matches!(file, KeyFile::ServiceAccount { .. }));
    assert_eq!(file.key_id(), server.bearer_kid("RS256"));
    assert_eq!(file.principal(), server.service_user());
    let user_id = file.principal().to_owned();
    let grant = JwtBearer::new(user_id, KeyRing::new(file.into_key()), &server.issuer());
    Method::from(grant.scopes([ZITADEL_SCOPE]))
}

fn unknown_pat() -> PersonalAccessToken {
    PersonalAccessToken::new("pat-the-provider-never-issued")
}

// ---------------------------------------------------------------------------------------------
// Drivers
// ---------------------------------------------------------------------------------------------

/// What the resource must report for a token.
struct Expected {
    method_name: &'static str,
    client_id: String,
    sub: String,
    scope: Option<&'static str>,
}

impl Expected {
    /// A client credentials token of `client_id`; the method's name follows from how the
    /// server registered the client.
    fn client(server: &Server, client_id: &str, scope: Option<&'static str>) -> Self {
        let registered = &server.manifest().clients[client_id].token_endpoint_auth_method;
        let method_name = match registered.as_str() {
            "private_key_jwt" => "private key JWT",
            _ => "client credentials",
        };
        Self {
            method_name,
            client_id: client_id.to_owned(),
            sub: client_id.to_owned(),
            scope,
        }
    }

    fn service_user(server: &Server, scope: Option<&'static str>) -> Self {
        Self {
            method_name: "private key JWT",
            client_id: server.manifest().jwt_bearer.client_id.clone(),
            sub: server.service_user().to_owned(),
            scope,
        }
    }

    fn check_token(&self, server: &Server, token: &CachedToken) {
        let ttl = Duration::from_secs(server.manifest().access_token_ttl_seconds);
        assert_eq!(
            token.lifetime(),
            Some(ttl),
            "expires_in is the server's --ttl"
        );
        assert_eq!(token.scope(), self.scope, "the granted scope");
    }

    fn check_reply(&self, reply: &ResourceReply) {
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "the resource accepts the token: {reply:?}"
        );
        let body = &reply.body;
        assert_eq!(body.token_kind.as_deref(), Some("access_token"));
        assert_eq!(body.client_id.as_deref(), Some(self.client_id.as_str()));
        assert_eq!(body.sub.as_deref(), Some(self.sub.as_str()));
        assert_eq!(body.scope.as_deref(), self.scope);
    }
}

async fn private_key_jwt_async(client_id: &str, algorithm: Algorithm) {
    let server = Server::shared();
    assert_eq!(server.client_key(client_id).algorithm(), algorithm);
    assert_registered(server, client_id, "private_key_jwt", Some(algorithm));
    let expected = Expected::client(server, client_id, Some("read"));
    exercise_async(
        server,
        private_key_jwt(server, client_id),
        server.fixed(),
        &expected,
    )
    .await;
}

fn private_key_jwt_blocking(client_id: &str, algorithm: Algorithm) {
    let server = Server::shared();
    assert_eq!(server.client_key(client_id).algorithm(), algorithm);
    assert_registered(server, client_id, "private_key_jwt", Some(algorithm));
    let expected = Expected::client(server, client_id, Some("read"));
    exercise_blocking(
        server,
        private_key_jwt(server, client_id),
        server.discover(),
        &expected,
    );
}

async fn jwt_bearer_async(algorithm: Algorithm) {
    let server = Server::shared();
    let expected = Expected::service_user(server, Some("read write"));
    let method = jwt_bearer(server, algorithm);
    exercise_async(server, method, server.discover(), &expected).await;
}

fn jwt_bearer_blocking(algorithm: Algorithm) {
    let server = Server::shared();
    let expected = Expected::service_user(server, Some("read write"));
    let method = jwt_bearer(server, algorithm);
    exercise_blocking(server, method, server.fixed(), &expected);
}

fn build_async(server: &Server, method: Method, endpoints: Endpoints) -> Authenticator {
    Authenticator::builder(method, endpoints)
        .build(server.reqwest())
        .expect("a valid configuration")
}

fn build_blocking(server: &Server, method: Method, endpoints: Endpoints) -> BlockingAuthenticator {
    BlockingAuthenticator::builder(method, endpoints)
        .build(server.ureq())
        .expect("a valid configuration")
}

/// Gets a token, checks it, uses it at the resource, and checks that a second call is served
/// from the cache.
async fn exercise_async(
    server: &Server,
    method: Method,
    endpoints: Endpoints,
    expected: &Expected,
) {
    let auth = build_async(server, method, endpoints);
    assert_eq!(auth.method_name(), expected.method_name);
    let token = auth
        .token()
        .await
        .unwrap_or_else(|err| panic!("no token: {err}"));
    expected.check_token(server, &token);
    let (generation, reply) = call_resource_async(server, &auth).await;
    assert_eq!(generation, token.generation(), "the cached token is served");
    expected.check_reply(&reply);
}

async fn call_resource_async(server: &Server, auth: &Authenticator) -> (Generation, ResourceReply) {
    let mut request = server.resource_request();
    let generation = auth
        .authorize(&mut request)
        .await
        .unwrap_or_else(|err| panic!("no token: {err}"));
    assert!(request.headers()[header::AUTHORIZATION].is_sensitive());
    (generation, server.call_resource_async(request).await)
}

fn exercise_blocking(server: &Server, method: Method, endpoints: Endpoints, expected: &Expected) {
    let auth = build_blocking(server, method, endpoints);
    assert_eq!(auth.method_name(), expected.method_name);
    let token = auth.token().unwrap_or_else(|err| panic!("no token: {err}"));
    expected.check_token(server, &token);
    let (generation, reply) = call_resource_blocking(server, &auth);
    assert_eq!(generation, token.generation(), "the cached token is served");
    expected.check_reply(&reply);
}

fn call_resource_blocking(
    server: &Server,
    auth: &BlockingAuthenticator,
) -> (Generation, ResourceReply) {
    let mut request = server.resource_request();
    let generation = auth
        .authorize(&mut request)
        .unwrap_or_else(|err| panic!("no token: {err}"));
    assert!(request.headers()[header::AUTHORIZATION].is_sensitive());
    (generation, server.call_resource(request))
}

/// `GET /resource` with `token` as the bearer.
fn bearer(server: &Server, token: &CachedToken) -> http::Request<Vec<u8>> {
    let mut request = server.resource_request();
    let value = token.header_value().expect("a header-safe token").clone();
    request.headers_mut().insert(header::AUTHORIZATION, value);
    request
}

/// A transport that renames the `grant_type` of every token request.
#[derive(Clone)]
struct RenameGrantType {
    inner: ReqwestTransport,
    grant_type: &'static str,
}

impl Transport for RenameGrantType {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let (mut parts, body) = request.into_parts();
        let body = rename_grant_type(&body, self.grant_type);
        // The body changes length; the HTTP client sets the new one.
        parts.headers.remove(header::CONTENT_LENGTH);
        let request = http::Request::from_parts(parts, body);
        self.inner.send(request).await
    }
}

fn rename_grant_type(form: &[u8], grant_type: &str) -> Vec<u8> {
    let mut renamed = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(form) {
        let value = if name == "grant_type" {
            grant_type.into()
        } else {
            value
        };
        renamed.append_pair(&name, &value);
    }
    renamed.finish().into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Refresh log
// ---------------------------------------------------------------------------------------------

/// The token lifetime of the refresh tests. The server sets `exp = floor(issued) + ttl`, so a
/// token is valid for between `ttl - 1` and `ttl` seconds; the refresh at half the lifetime
/// leaves at least a second for the new token to arrive.
const REFRESH_TTL_SECONDS: u32 = 4;

/// How often the refresh tests use the token: paces the loop; no assertion depends on it.
const REFRESH_POLL: Duration = Duration::from_millis(50);

/// Every token the refresh tests saw, in order.
struct RefreshLog {
    ttl: Duration,
    seen: Vec<Seen>,
}

struct Seen {
    generation: u64,
    access_token: String,
    received_at: Instant,
    /// When the response arrived, in Unix seconds.
    received_unix: f64,
    /// The expiry the server gave the token, in Unix seconds.
    server_exp: u64,
}

impl RefreshLog {
    fn new() -> Self {
        Self {
            ttl: Duration::from_secs(REFRESH_TTL_SECONDS.into()),
            seen: Vec::new(),
        }
    }

    /// Three token lifetimes.
    fn run_for(&self) -> Duration {
        3 * self.ttl
    }

    fn tokens(&self) -> u64 {
        self.seen.len() as u64
    }

    /// Records a use of `token` that the resource answered with `reply`; true when the token
    /// is one not seen before. Stopping right after a new token leaves half a lifetime before
    /// the next refresh, so the counters read next cannot include a request not seen here.
    fn record(&mut self, token: &CachedToken, reply: &ResourceReply) -> bool {
        let generation = token.generation().get();
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "the server refused generation {generation}: a token was served after its expiry"
        );
        if self
            .seen
            .last()
            .is_some_and(|seen| seen.generation == generation)
        {
            return false;
        }
        self.seen.push(Seen {
            generation,
            access_token: token.access_token().secret().to_owned(),
            received_at: token.received_at(),
            received_unix: unix_seconds_of(token.received_at()),
            server_exp: reply.body.exp.expect("the resource reports the expiry"),
        });
        true
    }

    fn verify(&self, requests: &TokenRequests, elapsed: Duration) {
        let tokens = self.tokens();
        let generations: Vec<u64> = self.seen.iter().map(|seen| seen.generation).collect();
        assert_eq!(
            generations,
            (1..=tokens).collect::<Vec<_>>(),
            "no token went unused"
        );
        let distinct: BTreeSet<&str> = self.seen.iter().map(|s| s.access_token.as_str()).collect();
        assert_eq!(
            distinct.len() as u64,
            tokens,
            "every refresh brought a new access token"
        );
        assert_eq!(
            requests.total, tokens,
            "exactly one token request per token"
        );
        assert_eq!((requests.succeeded, requests.failed), (tokens, 0));
        let grant = requests.by_grant_type.get("client_credentials").copied();
        assert_eq!(grant, Some(tokens), "{requests:?}");

        let lifetimes = elapsed.as_secs_f64() / self.ttl.as_secs_f64();
        assert!(lifetimes >= 3.0, "the test ran for three lifetimes");
        assert!(
            tokens as f64 >= lifetimes && tokens as f64 <= 2.0 * lifetimes + 1.0,
            "{tokens} tokens in {lifetimes:.1} lifetimes: expected one per half lifetime"
        );
        for pair in self.seen.windows(2) {
            let (old, new) = (&pair[0], &pair[1]);
            assert!(
                new.received_unix < old.server_exp as f64,
                "generation {} arrived at {:.3}, after the server expired generation {} at {}",
                new.generation,
                new.received_unix,
                old.generation,
                old.server_exp
            );
            let held = new.received_at.duration_since(old.received_at);
            assert!(
                held >= self.ttl / 2,
                "generation {} was replaced after {held:?}, before half its lifetime",
                old.generation
            );
        }
    }
}

/// The wall-clock time, in Unix seconds, of a recent `instant`.
fn unix_seconds_of(instant: Instant) -> f64 {
    let ago = Instant::now().saturating_duration_since(instant);
    let wall = SystemTime::now() - ago;
    wall.duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

/// The secret carries characters that `client_secret_basic` must form-encode before base64
/// (RFC 6749 §2.3.1), so the test proves the encoding.
fn assert_needs_form_encoding(secret: &str) {
    for special in [':', '%', '+', ' ', '/', '&', '='] {
        assert!(
            secret.contains(special),
            "the test secret lacks {special:?}"
        );
    }
}

/// The client is registered at the server with the authentication method (and signing
/// algorithm) the test uses.
fn assert_registered(server: &Server, client_id: &str, method: &str, alg: Option<Algorithm>) {
    let client = &server.manifest().clients[client_id];
    assert_eq!(client.token_endpoint_auth_method, method);
    let registered_alg = client.token_endpoint_auth_signing_alg.as_deref();
    assert_eq!(registered_alg, alg.as_ref().map(Algorithm::as_str));
}

/// The error of the token request behind the first call's `error`.
///
/// The call's own fetch fails with `Error::Token`. When the authenticator's background refresh
/// (which starts when the authenticator is built) made that first request before the call
/// reached the token manager, the call reports the same request's error inside `BackingOff`
/// (transient) or `HeldOff` (permanent). The typed error from the server is the same either way.
fn first_call_error(error: &Error) -> &TokenError {
    let first_call = matches!(
        error,
        Error::Token(_) | Error::BackingOff { .. } | Error::HeldOff { .. }
    );
    assert!(
        first_call,
        "expected a token request's error, got {error:?}"
    );
    let token_error = error.token_error();
    token_error.unwrap_or_else(|| panic!("expected a token request's error, got {error:?}"))
}

/// The provider's error response behind the first call's `result`.
fn provider_error<T: Debug>(result: Result<T, Error>) -> ProviderError {
    let error = result.expect_err("the provider refuses the token request");
    match first_call_error(&error) {
        TokenError::Provider(provider) => provider.clone(),
        TokenError::ClockSkew(skew) => skew.provider().clone(),
        _ => panic!("expected the provider's error response, got {error:?}"),
    }
}

/// The first call's error blames the host clock, beyond what the library corrects.
fn assert_clock_skew<T: Debug>(result: &Result<T, Error>) {
    let Err(error) = result else {
        panic!("expected a clock skew error, got {result:?}");
    };
    let TokenError::ClockSkew(skew) = first_call_error(error) else {
        panic!("expected a clock skew error, got {error:?}");
    };
    assert!(!skew.is_corrected(), "{error}");
    assert_eq!(first_call_error(error).retry(), RetryAdvice::Permanent);
    assert!(error.to_string().contains("NTP"), "{error}");
}

fn assert_wrong_secret(error: &Error) {
    let TokenError::Provider(provider) = first_call_error(error) else {
        panic!("expected the provider's error response, got {error:?}");
    };
    assert_eq!(provider.status, StatusCode::UNAUTHORIZED);
    assert_eq!(provider.code, ErrorCode::InvalidClient);
    assert_eq!(first_call_error(error).retry(), RetryAdvice::Permanent);
    assert_eq!(error.retry(), RetryAdvice::Permanent);
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(WRONG_SECRET), "the secret leaked: {shown}");
}

/// A hold-off after a permanent error whose provider error code was `code`.
fn assert_held_off<T: Debug>(result: Result<T, Error>, code: ErrorCode) {
    match result {
        Err(error @ Error::HeldOff { .. }) => match error.token_error() {
            Some(TokenError::Provider(last)) => assert_eq!(last.code, code),
            _ => panic!("expected a hold-off after {code}, got {error:?}"),
        },
        other => panic!("expected a hold-off after a permanent error, got {other:?}"),
    }
}

fn assert_transport_error(error: &Error, kind: TransportErrorKind) {
    match first_call_error(error) {
        TokenError::Transport(transport) => assert_eq!(transport.kind(), kind, "{transport:?}"),
        _ => panic!("expected a {kind} transport error, got {error:?}"),
    }
    assert!(error.retry().is_transient(), "{error:?}");
}

fn assert_pat_accepted(server: &Server, reply: &ResourceReply) {
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.body.token_kind.as_deref(),
        Some("personal_access_token")
    );
    assert_eq!(reply.body.sub.as_deref(), Some(server.service_user()));
}

fn assert_pat_rejected<T: Debug>(result: Result<T, Error>) {
    match result {
        Err(error @ Error::HeldOff { .. }) => assert!(
            matches!(
                error.token_error(),
                Some(TokenError::PersonalAccessTokenRejected)
            ),
            "{error:?}"
        ),
        other => panic!("expected the rejected personal access token, got {other:?}"),
    }
}

/// A 401 with RFC 6750 §3.1's `invalid_token`.
fn assert_invalid_token(reply: &ResourceReply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.body.error.as_deref(), Some("invalid_token"));
    let challenge = reply.www_authenticate.as_deref().unwrap_or_default();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

fn assert_replaced_once(counters: &interop_support::Counters, discovery_requests: u64) {
    assert_requests(counters, discovery_requests, 2);
    assert_eq!(counters.token_requests.succeeded, 2);
    let resource = &counters.resource_requests;
    assert_eq!((resource.accepted, resource.rejected), (2, 1));
}

fn assert_requests(counters: &interop_support::Counters, discovery: u64, token: u64) {
    assert_eq!(
        (counters.discovery_requests, counters.token_requests.total),
        (discovery, token),
        "(discovery, token) requests: {counters:?}"
    );
}
