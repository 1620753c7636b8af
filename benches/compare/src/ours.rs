//! service-auth set up for the benches: private key JWT (RFC 7523 §2.1, the
//! request the peers send) with the bench's RS256 key, at the local token
//! endpoint over plain HTTP on 127.0.0.1 (explicitly allowed).

use service_auth::authenticator::{Authenticator, AuthenticatorBuilder};
use service_auth::blocking::{BlockingAuthenticator, BlockingAuthenticatorBuilder};
use service_auth::credentials::{KeyRing, SigningKey};
use service_auth::endpoint::{Issuer, TokenEndpoint, UrlPolicy};
use service_auth::flow::JwtBearer;
use service_auth::method::{Endpoints, Method};
use service_auth::transport::reqwest::ReqwestTransport;
use service_auth::transport::ureq::UreqTransport;

use crate::keys::Key;
use crate::server::TokenServer;

fn method_and_endpoints(server: &TokenServer, key: &Key) -> (Method, Endpoints) {
    let policy = UrlPolicy::dangerous_allow_http_loopback();
    // Invariant: the URLs are the bench's own loopback endpoint and the key
    // was generated in this process.
    let issuer = Issuer::parse(&server.base_url(), policy).expect("issuer");
    let token_endpoint = TokenEndpoint::parse(&server.token_url(), policy).expect("token endpoint");
    let signing_key = SigningKey::from_pem(&key.pkcs8_pem, "bench-key-1").expect("signing key");
    let grant = JwtBearer::new(crate::SERVICE_USER, KeyRing::new(signing_key), &issuer)
        .scopes([crate::SCOPE]);
    let endpoints = Endpoints::Fixed {
        issuer: Some(issuer),
        token_endpoint,
    };
    (Method::from(grant), endpoints)
}

/// Our reqwest transport on the same client configuration as the floor's.
pub fn reqwest_transport() -> ReqwestTransport {
    ReqwestTransport::from_client(crate::floor::reqwest_client()).dangerous_allow_http_loopback()
}

/// Our ureq transport with its defaults, plain HTTP to loopback allowed.
pub fn ureq_transport() -> UreqTransport {
    // Invariant: the default configuration builds.
    UreqTransport::builder()
        .dangerous_allow_http_loopback()
        .build()
        .expect("ureq transport")
}

/// A builder for an `Authenticator` at `server` with `key`.
pub fn builder(server: &TokenServer, key: &Key) -> AuthenticatorBuilder {
    let (method, endpoints) = method_and_endpoints(server, key);
    Authenticator::builder(method, endpoints)
}

/// An `Authenticator` with the defaults over our reqwest transport. Call
/// inside a tokio runtime (it starts its background refresh task).
pub fn authenticator(server: &TokenServer, key: &Key) -> Authenticator {
    // Invariant: the configuration is the bench's own and valid.
    builder(server, key)
        .build(reqwest_transport())
        .expect("authenticator")
}

/// A builder for a `BlockingAuthenticator` at `server` with `key`.
pub fn blocking_builder(server: &TokenServer, key: &Key) -> BlockingAuthenticatorBuilder {
    let (method, endpoints) = method_and_endpoints(server, key);
    BlockingAuthenticator::builder(method, endpoints)
}

/// A `BlockingAuthenticator` with the defaults over our ureq transport.
pub fn blocking_authenticator(server: &TokenServer, key: &Key) -> BlockingAuthenticator {
    // Invariant: as for `authenticator`.
    blocking_builder(server, key)
        .build(ureq_transport())
        .expect("blocking authenticator")
}
