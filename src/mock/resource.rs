//! The discovery document and the protected resource.

use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use serde_json::json;

use super::wire;
use super::{Config, JWT_BEARER, LiveToken};

/// The discovery document (OIDC Discovery §3, RFC 8414 §2).
pub(super) fn discovery(config: &Config, method: &Method) -> Response<Vec<u8>> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = wire::text_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "the discovery document is read with GET\n",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let document = json!({
        "issuer": config.issuer,
        "token_endpoint": config.token_endpoint,
        "grant_types_supported": ["client_credentials", JWT_BEARER],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "scopes_supported": config.allowed_scopes,
        "response_types_supported": ["token"],
    });
    wire::json_response(StatusCode::OK, &document)
}

/// Why the resource endpoint refused a request (RFC 6750 §3.1).
#[derive(Debug)]
pub(super) enum Refusal {
    /// Not `GET` or `HEAD`.
    Method,
    /// No `Authorization` header: the challenge carries no error code.
    NoToken,
    /// The header is not a single well-formed Bearer credential.
    Malformed(&'static str),
    /// The token is unknown, expired or revoked.
    UnknownToken,
}

impl Refusal {
    /// The RFC 6750 §3.1 error code, if the refusal has one.
    pub(super) fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::Method | Self::NoToken => None,
            Self::Malformed(_) => Some("invalid_request"),
            Self::UnknownToken => Some("invalid_token"),
        }
    }

    /// The response, with its `WWW-Authenticate: Bearer` challenge.
    pub(super) fn into_response(self) -> Response<Vec<u8>> {
        let (status, challenge, text) = match self {
            Self::Method => {
                let mut response = wire::text_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "the resource is read with GET\n",
                );
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                return response;
            }
            Self::NoToken => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"mock\"".to_owned(),
                "an access token is required\n",
            ),
            Self::Malformed(problem) => (
                StatusCode::BAD_REQUEST,
                format!(
                    "Bearer realm=\"mock\", error=\"invalid_request\", \
                     error_description=\"{problem}\""
                ),
                "malformed Authorization header\n",
            ),
            Self::UnknownToken => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"mock\", error=\"invalid_token\", error_description=\"the access \
                 token is unknown, expired or revoked\""
                    .to_owned(),
                "invalid access token\n",
            ),
        };
        let mut response = wire::text_response(status, text);
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The bearer token of a resource request (RFC 6750 §2.1).
pub(super) fn bearer(request: &http::Request<Vec<u8>>) -> Result<&str, Refusal> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Err(Refusal::Method);
    }
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Refusal::NoToken);
    };
    if values.next().is_some() {
        return Err(Refusal::Malformed("more than one Authorization header"));
    }
    let Ok(value) = value.to_str() else {
        return Err(Refusal::Malformed(
            "the Authorization header is not visible ASCII",
        ));
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(Refusal::Malformed("expected Authorization: Bearer <token>"));
    };
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(Refusal::Malformed("expected the Bearer scheme"));
    }
    if !is_b64token(token) {
        return Err(Refusal::Malformed(
            "the token is not a b64token (RFC 6750 section 2.1)",
        ));
    }
    Ok(token)
}

/// The answer for an accepted access token.
pub(super) fn granted(token: &LiveToken) -> Response<Vec<u8>> {
    let body = json!({
        "active": true,
        "sub": token.subject,
        "scope": token.scope,
    });
    let mut response = wire::json_response(StatusCode::OK, &body);
    wire::no_store(&mut response);
    response
}

/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}
