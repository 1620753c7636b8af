//! Service-user authentication for OAuth 2.0 / OpenID Connect providers:
//! private key JWT, client credentials and personal access tokens behind one
//! API, with a valid access token always at hand.
//!
//! The core of this crate does no IO. It opens no socket, reads no clock and
//! draws no randomness of its own: every exchange with the provider is a
//! typestate [`flow`] that produces `http::Request` values and consumes
//! `http::Response` values, the [`manager::TokenManager`] decides when to
//! fetch and refresh for a `now` it is given, and the [`rng::Rng`] is seeded
//! by the caller. IO lives in [`transport`]s and in the two drivers,
//! `authenticator::Authenticator` (async, feature `tokio`) and
//! [`blocking::BlockingAuthenticator`] (threads only).
//!
//! # Getting a token
//!
//! Most users write a [`config::Config`] and build a driver from it:
//!
//! ```
//! use service_auth::config::Config;
//! use service_auth::mock::{MockServer, SecretMethod};
//! use service_auth::secret::ClientSecret;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The mock stands in for the provider; in production, `build_ureq()` or
//! // `build_reqwest()` talk to the real one over HTTPS.
//! let provider = MockServer::builder("https://auth.example.com")
//!     .client_secret("billing", "s3cret", SecretMethod::Basic)
//!     .build();
//! let auth = Config::client_credentials("https://auth.example.com", "billing", ClientSecret::new("s3cret"))
//!     .build_blocking(provider)?;
//!
//! let token = auth.token()?; // cached; refreshed ahead of expiry
//! let mut request = http::Request::get("https://api.example.com/things").body(())?;
//! auth.authorize(&mut request)?; // `Authorization: Bearer …`, marked sensitive
//! assert!(request.headers()[http::header::AUTHORIZATION].is_sensitive());
//! # let _ = token;
//! # Ok(())
//! # }
//! ```
//!
//! # Driving the core yourself
//!
//! With your own HTTP stack and your own loop, the order is always the same:
//!
//! 1. ask the [`acquire::Acquirer`] (or a [`flow`] state) to start: it returns
//!    the request to send, or the result when no request is needed;
//! 2. send the request without following redirects;
//! 3. hand the response back with the [`time::Now`] it arrived at, and repeat
//!    from 1 until it returns a result;
//! 4. give the result to the [`manager::TokenManager`], and wake at its
//!    [`poll_timeout`](manager::TokenManager::poll_timeout) deadline to ask
//!    [`poll_fetch`](manager::TokenManager::poll_fetch) again.
//!
//! [`flow`] shows steps 1 to 3 as a runnable example.
//!
//! # Security
//!
//! HTTPS only (plain HTTP only to a loopback host under an opt-in named
//! `dangerous`); redirects never followed; secrets in types with a redacted
//! `Debug` that are wiped on drop; errors that never carry a response body;
//! key files readable by others refused; logs that never contain a secret.
//! The README lists the details and the limitations.
//!
//! # Features
//!
//! `tokio` (the async driver), `reqwest` (its HTTPS transport), `blocking`
//! (the ureq transport, no async runtime), `mock` (the mock authorization
//! server). With none, the sans-IO core alone is built.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub mod acquire;
pub mod assertion;
#[cfg(feature = "tokio")]
pub mod authenticator;
pub mod blocking;
pub mod config;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod flow;
pub mod manager;
pub mod method;
#[cfg(feature = "mock")]
pub mod mock;
pub mod response;
pub mod rng;
pub mod secret;
pub mod skew;
pub mod time;
pub mod token;
pub mod transport;
