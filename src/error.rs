//! The errors of a token exchange, and what retrying can do about them.
//!
//! Every error says what was expected, what arrived and what to do, and
//! none carries a response body, a secret, a token or an assertion: an error
//! ends up in logs, so it keeps only the status, the content type, the body
//! length and a short, sanitised provider description.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::credentials::KeyError;

/// What trying again can achieve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryAdvice {
    /// The same request can succeed later: a network failure, a 5xx, a 429.
    /// `after` is the provider's `Retry-After`, when it sent one.
    Transient {
        /// How long the provider asked us to wait.
        after: Option<Duration>,
    },
    /// The same request fails until the configuration changes: a wrong
    /// secret, an unknown key, a grant the client may not use.
    Permanent,
}

impl RetryAdvice {
    /// Whether retrying can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// An OAuth 2.0 error code (RFC 6749 §5.2), with a fallback for the others.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`: malformed or missing parameter.
    InvalidRequest,
    /// `invalid_client`: client authentication failed.
    InvalidClient,
    /// `invalid_grant`: the grant or assertion is invalid, expired or revoked.
    InvalidGrant,
    /// `unauthorized_client`: this client may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type`: the server does not support the grant type.
    UnsupportedGrantType,
    /// `invalid_scope`: the requested scope is invalid or exceeds what was granted.
    InvalidScope,
    /// Any other code, as sent (for example `temporarily_unavailable`).
    Other(String),
}

impl ErrorCode {
    /// Parses a code; unknown strings become [`ErrorCode::Other`].
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::Other(code) => code,
        }
    }

    /// Whether a retry of the same request can help.
    ///
    /// The six RFC codes say the request or the configuration is wrong, so
    /// they are permanent. Other codes (`temporarily_unavailable`,
    /// `server_error`, and anything a provider invents) are treated as
    /// transient; the token manager's backoff keeps that from becoming a storm.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Other(_))
    }

    /// What a user should check, for the codes that have a usual cause.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::InvalidRequest => "check the request parameters and the method's configuration",
            Self::InvalidClient => {
                "check the client id and secret or key, and the client's authentication method at the provider"
            }
            Self::InvalidGrant => {
                "check the key id, the service user, the assertion audience and the host clock"
            }
            Self::UnauthorizedClient => "allow this grant type for the client at the provider",
            Self::UnsupportedGrantType => {
                "the provider does not support this method; choose another"
            }
            Self::InvalidScope => "request only scopes the client is allowed",
            Self::Other(_) => "retrying later may help",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error response from the token endpoint (RFC 6749 §5.2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the provider refused the token request with {status} `{code}`{}: {}",
    description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default(),
    code.hint()
)]
pub struct ProviderError {
    /// The HTTP status (400 or 401 for a conforming provider).
    pub status: StatusCode,
    /// The `error` code.
    pub code: ErrorCode,
    /// `error_description`, truncated and stripped of control characters.
    pub description: Option<String>,
    /// `error_uri`.
    pub uri: Option<String>,
    /// `Retry-After`, when the provider sent one.
    pub retry_after: Option<Duration>,
}

/// A response that is neither a token nor an RFC 6749 §5.2 error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unexpected response from the {endpoint}: {problem} (status {status}, content type {}, {body_len} bytes){}",
    content_type.as_deref().unwrap_or("none"),
    if retry.is_transient() { "; retrying later may help" } else { "; retrying will not help until the provider or the configuration changes" }
)]
pub struct UnexpectedResponse {
    /// Which endpoint answered: "token endpoint" or "discovery endpoint".
    pub endpoint: &'static str,
    /// The HTTP status.
    pub status: StatusCode,
    /// The `Content-Type` header, truncated.
    pub content_type: Option<String>,
    /// How many body bytes arrived (the body itself is never kept).
    pub body_len: usize,
    /// What was wrong.
    pub problem: ResponseProblem,
    /// What retrying can achieve.
    pub retry: RetryAdvice,
}

/// What was wrong with an [`UnexpectedResponse`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseProblem {
    /// The status is neither success nor an OAuth error (5xx, 429, 404, a redirect…).
    #[error("unexpected status")]
    Status,
    /// The body is empty.
    #[error("empty body")]
    EmptyBody,
    /// The body looks like an HTML page (a proxy or login page).
    #[error("an HTML page instead of JSON")]
    Html,
    /// The body is not valid JSON; `line` and `column` locate the fault.
    #[error("body is not valid JSON ({kind} at line {line}, column {column})")]
    NotJson {
        /// serde_json's error category: "syntax", "eof" (truncated), "data".
        kind: &'static str,
        /// Line of the fault.
        line: usize,
        /// Column of the fault.
        column: usize,
    },
    /// A required field is missing or has the wrong JSON type.
    #[error("field `{field}` is missing or has the wrong type")]
    Field {
        /// The field's name.
        field: &'static str,
    },
    /// `token_type` is not `Bearer`.
    #[error("token type `{0}` is not supported; this library uses bearer tokens only")]
    TokenType(String),
    /// `expires_in` says the token is already expired.
    #[error("`expires_in` is {0}: the token is expired on arrival")]
    ExpiredOnArrival(i64),
    /// The body exceeds the size limit.
    #[error("body exceeds the {limit}-byte limit")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The discovery document's `issuer` differs from the configured one.
    #[error("discovery document names issuer `{found}`, expected `{expected}` (RFC 8414 §3.3)")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer in the document.
        found: String,
    },
    /// The discovery document's token endpoint is not an acceptable URL.
    #[error("token endpoint in the discovery document is refused: {0}")]
    TokenEndpoint(crate::endpoint::UrlError),
}

/// A failure below HTTP: the request did not produce a response.
///
/// Transports build it from their own error; it keeps that error as its
/// source. Always transient.
#[derive(Clone, Debug, thiserror::Error)]
#[error("transport failed ({kind}){}", source.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
pub struct TransportError {
    kind: TransportErrorKind,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

/// The class of a [`TransportError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No connection could be made (DNS, refused, TLS handshake).
    Connect,
    /// The request or the response took longer than the configured timeout.
    Timeout,
    /// The response body exceeded the transport's size limit.
    BodyTooLarge,
    /// The server answered with a redirect, which token and discovery
    /// requests never follow.
    Redirect,
    /// Anything else.
    Other,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::BodyTooLarge => "response body too large",
            Self::Redirect => "redirect refused",
            Self::Other => "other",
        })
    }
}

impl TransportError {
    /// A transport error of `kind`, caused by `source`.
    ///
    /// The source's `Display` appears in messages: it must not contain
    /// request or response bodies.
    pub fn new(
        kind: TransportErrorKind,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            source: Some(Arc::from(source.into())),
        }
    }

    /// A transport error of `kind` with no underlying cause.
    pub fn from_kind(kind: TransportErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// The class of failure.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }
}

/// Why one token exchange failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The provider answered with an RFC 6749 §5.2 error.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The provider answered with something else.
    #[error(transparent)]
    Response(#[from] UnexpectedResponse),
    /// No response arrived.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The assertion could not be built or signed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The provider rejected the personal access token: it never refreshes,
    /// so a new one must be configured.
    #[error(
        "the provider rejected the personal access token; it cannot be refreshed: configure a new one"
    )]
    PersonalAccessTokenRejected,
    /// The provider refused the assertion for its times, and its `Date`
    /// header shows the host clock is off; the provider's error is inside.
    #[error(transparent)]
    ClockSkew(#[from] crate::skew::ClockSkewError),
}

impl TokenError {
    /// What retrying can achieve.
    pub fn retry(&self) -> RetryAdvice {
        match self {
            Self::Provider(err) if err.code.is_permanent() => RetryAdvice::Permanent,
            Self::Provider(err) => RetryAdvice::Transient {
                after: err.retry_after,
            },
            Self::Response(err) => err.retry,
            Self::Transport(_) => RetryAdvice::Transient { after: None },
            Self::Key(_) | Self::PersonalAccessTokenRejected => RetryAdvice::Permanent,
            Self::ClockSkew(err) => err.retry(),
        }
    }
}
