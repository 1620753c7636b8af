//! The library's own benchmarks, with no peer crate and no socket:
//!
//! - `core_assertion/<alg>`: `assertion::sign` with a parsed key, beside the
//!   raw signature of an input of the same length (`sign_only`);
//! - `core_exchange`: one client-credentials flow (request built, canned
//!   response parsed), the sans-IO work of one exchange;
//! - `core_cached_read`: `Authenticator::token()`, `authorize()` and
//!   `BlockingAuthenticator::token()` on a cached token, beside an arc-swap
//!   `load_full` of an `Arc` (the floor).
//!
//! The side-by-side comparison with other crates lives in
//! `benches/compare` (see the README's Performance section).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use service_auth::assertion::{self, AssertionClaims};
use service_auth::authenticator::Authenticator;
use service_auth::blocking::BlockingAuthenticator;
use service_auth::credentials::{Algorithm, SigningKey};
use service_auth::endpoint::{TokenEndpoint, UrlPolicy};
use service_auth::error::TransportError;
use service_auth::flow::{ClientAuth, ClientCredentials, Grant, RequestOptions, TokenFlow};
use service_auth::method::{Endpoints, Method};
use service_auth::rng::Rng;
use service_auth::secret::ClientSecret;
use service_auth::time::Now;
use service_auth::transport::{BlockingTransport, Transport};

const TOKEN_URL: &str = "https://auth.bench.invalid/oauth/token";
const RESPONSE: &[u8] =
    br#"{"access_token":"bench-token-000000000000","token_type":"Bearer","expires_in":3600}"#;

/// A transport that answers every request with the same token response.
#[derive(Clone, Copy)]
struct Canned;

impl Transport for Canned {
    async fn send(
        &self,
        _: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        Ok(http::Response::new(RESPONSE.to_vec()))
    }
}

impl BlockingTransport for Canned {
    fn send(&self, _: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, TransportError> {
        Ok(http::Response::new(RESPONSE.to_vec()))
    }
}

fn grant() -> Grant {
    let auth = ClientAuth::SecretBasic(ClientSecret::new("bench-secret"));
    Grant::from(ClientCredentials::new("bench-client", auth).scopes(["api"]))
}

fn endpoint() -> TokenEndpoint {
    // The URL is a constant https URL.
    TokenEndpoint::parse(TOKEN_URL, UrlPolicy::https_only()).expect("token endpoint")
}

fn endpoints() -> Endpoints {
    Endpoints::Fixed {
        issuer: None,
        token_endpoint: endpoint(),
    }
}

fn assertion_bench(c: &mut Criterion) {
    for algorithm in [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa] {
        // Key generation fails only when the system RNG does.
        let key = SigningKey::generate(algorithm, "bench-key-1").expect("key");
        let claims = AssertionClaims {
            iss: "bench-user@bench.invalid".into(),
            sub: "bench-user@bench.invalid".into(),
            aud: "https://issuer.bench.invalid".into(),
            iat: 1_700_000_000,
            exp: 1_700_003_600,
            jti: Some("0123456789abcdef".into()),
        };
        let signed = assertion::sign(&key, &claims).expect("assertion");
        let input_len = signed.secret().rfind('.').unwrap_or(0);
        let input = vec![b'a'; input_len];

        let mut group = c.benchmark_group(format!("core_assertion/{algorithm}"));
        group.bench_function("sign_only", |b| {
            b.iter(|| black_box(key.sign(black_box(&input)).expect("sign")))
        });
        group.bench_function("assertion_sign", |b| {
            b.iter(|| black_box(assertion::sign(&key, black_box(&claims)).expect("sign")))
        });
        group.finish();
    }
}

fn exchange_bench(c: &mut Criterion) {
    let grant = grant();
    let endpoint = endpoint();
    let options = RequestOptions::default();
    let mut rng = Rng::from_seed(7);
    let now = Now::new(Instant::now(), SystemTime::now());
    c.bench_function("core_exchange/client_credentials", |b| {
        b.iter(|| {
            let (awaiting, request) = TokenFlow::new(&grant, &endpoint, &options)
                .start(now, &mut rng)
                .expect("request");
            black_box(request);
            let response = http::Response::new(RESPONSE);
            black_box(awaiting.handle_response(response, now).expect("token"))
        })
    });
}

fn cached_read_bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let auth = rt.block_on(async {
        let auth = Authenticator::builder(Method::from(grant()), endpoints())
            .build(Canned)
            .expect("authenticator");
        auth.token().await.expect("prime");
        auth
    });
    let blocking = BlockingAuthenticator::builder(Method::from(grant()), endpoints())
        .build(Canned)
        .expect("blocking authenticator");
    blocking.token().expect("prime");
    let floor = ArcSwap::from_pointee(String::from("bench-token-000000000000"));
    let floor = Arc::new(floor);

    let mut group = c.benchmark_group("core_cached_read");
    group.bench_function("floor_load_full", |b| {
        b.iter(|| black_box(floor.load_full()))
    });
    group.bench_function("token", |b| {
        // The cached path completes on its first poll: measure it without
        // a runtime's block_on around every call.
        b.iter(|| {
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            let mut future = std::pin::pin!(auth.token());
            match future.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(token) => black_box(token.expect("token")),
                std::task::Poll::Pending => panic!("a cached token is served at once"),
            }
        })
    });
    group.bench_function("authorize", |b| {
        let mut request = http::Request::new(());
        b.iter(|| {
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            let mut future = std::pin::pin!(auth.authorize(&mut request));
            match future.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(generation) => black_box(generation.expect("authorize")),
                std::task::Poll::Pending => panic!("a cached token is served at once"),
            }
        })
    });
    group.bench_function("blocking_token", |b| {
        b.iter(|| black_box(blocking.token().expect("token")))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .configure_from_args();
    targets = assertion_bench, exchange_bench, cached_read_bench
}
criterion_main!(benches);
