//! Flows: one typestate machine per exchange with the provider, with no IO.
//!
//! A flow never sends anything, reads no clock and draws no randomness of its
//! own. Each state is its own type; a transition consumes the state and
//! returns the next one together with the `http::Request<Vec<u8>>` to send,
//! and the awaiting state takes the response back. Calling the steps in the
//! wrong order does not compile: there is no way to hand a response to a flow
//! that built no request, to build a token request without a
//! [`TokenEndpoint`](crate::endpoint::TokenEndpoint), or to use one response
//! state twice.
//!
//! - [`discovery`]: `GET {issuer}/.well-known/openid-configuration` and the
//!   check of the document (OIDC Discovery §4, RFC 8414 §3.3).
//! - [`token`]: the token request for a [`Grant`], private key JWT
//!   (RFC 7523 §2.1) or client credentials (RFC 6749 §4.4, with a client
//!   secret or RFC 7523 §2.2 client authentication).
//!
//! # Driving the flows by hand
//!
//! A driver (the authenticators, or your own code) does, for each exchange:
//!
//! 1. build the first state and call its transition, which gives the request;
//! 2. send the request with any HTTP client, without following redirects;
//! 3. hand the response to the awaiting state, with the time it arrived.
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use service_auth::endpoint::{Issuer, UrlPolicy};
//! use service_auth::flow::{
//!     ClientAuth, ClientCredentials, Discovery, Grant, RequestOptions, TokenFlow,
//! };
//! use service_auth::{rng::Rng, secret::ClientSecret, time::Now};
//!
//! # fn send(request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
//! #     let body: &[u8] = if request.method() == http::Method::GET {
//! #         br#"{"issuer":"https://auth.example.com",
//! #              "token_endpoint":"https://auth.example.com/oauth/token"}"#
//! #     } else {
//! #         br#"{"access_token":"eyJ0","token_type":"Bearer","expires_in":3600}"#
//! #     };
//! #     http::Response::new(body.to_vec())
//! # }
//! let issuer = Issuer::parse("https://auth.example.com", UrlPolicy::https_only())?;
//! let options = RequestOptions::default();
//!
//! // Discovery: one GET, then the checked provider metadata.
//! let (awaiting, request) = Discovery::new(issuer, UrlPolicy::https_only()).request();
//! let metadata = awaiting.handle_response(send(&request))?;
//!
//! // The token request: one POST, then the access token.
//! let auth = ClientAuth::SecretBasic(ClientSecret::new("s3cret"));
//! let grant = Grant::from(ClientCredentials::new("my-client", auth).scopes(["api"]));
//! let now = Now::new(Instant::now(), SystemTime::now());
//! let mut rng = Rng::from_seed(1);
//! let (awaiting, request) =
//!     TokenFlow::new(&grant, metadata.token_endpoint(), &options).start(now, &mut rng)?;
//! let token = awaiting.handle_response(send(&request), now)?;
//! assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// `TokenError` is as large as its biggest variant (see `crate::error`); it is
// returned once per token exchange, never in a loop, so boxing buys nothing.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, header};
use tracing::debug;

pub mod discovery;
pub mod token;

pub use discovery::{AwaitingDiscovery, Discovery, ProviderMetadata};
pub use token::{
    AssertionAudience, AwaitingTokenResponse, ClientAssertion, ClientAuth, ClientCredentials,
    Grant, JwtBearer, TokenFlow,
};

/// Headers added to every token and discovery request.
///
/// The library sets `Content-Type`, `Accept` and, for client secret basic,
/// `Authorization` itself; extra headers with those names, or with the body
/// framing headers `Content-Length` and `Transfer-Encoding`, are refused by
/// [`validate`](Self::validate) and skipped when a request is built. An
/// extra `User-Agent` replaces [`user_agent`](Self::user_agent).
#[derive(Clone, Debug, Default)]
pub struct RequestOptions {
    /// The `User-Agent`; `None` sends `service-auth/<version>`.
    pub user_agent: Option<HeaderValue>,
    /// Further headers, for example what a gateway in front of the provider
    /// requires. Mark secret values with [`HeaderValue::set_sensitive`].
    pub extra_headers: HeaderMap,
}

impl RequestOptions {
    /// Checks that no extra header tries to replace one the library sets.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ReservedHeader`] naming the first such header.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.extra_headers.keys().find(|name| is_reserved(name)) {
            Some(name) => Err(ConfigError::ReservedHeader {
                name: name.as_str().to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Writes the user agent and the extra headers into `headers`; the caller
    /// sets the library's own headers afterwards.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        let user_agent = self
            .user_agent
            .clone()
            .unwrap_or_else(|| HeaderValue::from_static(DEFAULT_USER_AGENT));
        headers.insert(header::USER_AGENT, user_agent);
        for name in self.extra_headers.keys() {
            if is_reserved(name) {
                debug!(header = %name, "extra header skipped: the library sets it");
                continue;
            }
            headers.remove(name);
            for value in self.extra_headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
    }
}

/// Why a method, a grant or request options cannot be used as configured.
///
/// Returned by the builders and `validate` methods, before anything is sent.
/// Never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required value is the empty string.
    #[error("the {what} is empty: set it to the value the provider shows for this client")]
    Empty {
        /// Which value: "client id", "client secret", "service user id", ….
        what: &'static str,
    },
    /// A value holds characters an HTTP header cannot carry.
    #[error(
        "the {what} contains characters an HTTP header cannot carry (only visible ASCII is \
         allowed): check it for a stray space or line break"
    )]
    NotHeaderSafe {
        /// Which value.
        what: &'static str,
    },
    /// A lifetime outside the accepted range.
    #[error("the {what} of {given:?} is out of range: expected at least 1s and at most {max:?}")]
    LifetimeOutOfRange {
        /// Which lifetime: "assertion lifetime" or "client assertion lifetime".
        what: &'static str,
        /// The lifetime given.
        given: Duration,
        /// The longest lifetime accepted.
        max: Duration,
    },
    /// The `iat` backdate would make the assertion expire before it is sent.
    #[error(
        "the iat backdate of {backdate:?} is not shorter than the {what} of {lifetime:?}: the \
         assertion would expire before it is sent; lower the backdate or raise the lifetime"
    )]
    BackdateExceedsLifetime {
        /// Which lifetime.
        what: &'static str,
        /// The backdate.
        backdate: Duration,
        /// The lifetime.
        lifetime: Duration,
    },
    /// An extra header would replace one the library sets.
    #[error(
        "the extra header `{name}` cannot be set: the library sets it for every request; remove \
         it from the request options"
    )]
    ReservedHeader {
        /// The header's name.
        name: String,
    },
}

/// The `User-Agent` sent when [`RequestOptions::user_agent`] is `None`.
const DEFAULT_USER_AGENT: &str = concat!("service-auth/", env!("CARGO_PKG_VERSION"));

fn is_reserved(name: &HeaderName) -> bool {
    [
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::ACCEPT,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
    ]
    .contains(name)
}

/// The `Accept` header of every request: both endpoints answer in JSON.
fn accept_json() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_headers_cannot_replace_library_headers() {
        let mut options = RequestOptions::default();
        options
            .extra_headers
            .insert("x-tenant", HeaderValue::from_static("a"));
        options
            .extra_headers
            .append("x-tenant", HeaderValue::from_static("b"));
        assert_eq!(options.validate(), Ok(()));
        options
            .extra_headers
            .insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        let err = options.validate().unwrap_err();
        assert_eq!(
            err,
            ConfigError::ReservedHeader {
                name: "authorization".into()
            }
        );
        assert!(!err.to_string().contains("Bearer x"));

        let mut headers = HeaderMap::new();
        headers.insert("x-tenant", HeaderValue::from_static("old"));
        options.apply(&mut headers);
        assert_eq!(
            headers.get_all("x-tenant").iter().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(headers.get(header::AUTHORIZATION).is_none());
        assert_eq!(headers[header::USER_AGENT], DEFAULT_USER_AGENT);
    }

    #[test]
    fn user_agent_is_configurable_and_an_extra_one_wins() {
        let mut options = RequestOptions {
            user_agent: Some(HeaderValue::from_static("svc/1")),
            ..RequestOptions::default()
        };
        let mut headers = HeaderMap::new();
        options.apply(&mut headers);
        assert_eq!(headers[header::USER_AGENT], "svc/1");
        options
            .extra_headers
            .insert(header::USER_AGENT, HeaderValue::from_static("svc/2"));
        options.apply(&mut headers);
        assert_eq!(headers.get_all(header::USER_AGENT).iter().count(), 1);
        assert_eq!(headers[header::USER_AGENT], "svc/2");
    }
}
