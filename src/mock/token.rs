//! The token endpoint's checks (RFC 6749 §3.2, §4.4, §5.2; RFC 7523).
//!
//! [`check`] is a pure function of the configuration, the request and the
//! time: it verifies everything that needs no memory. What does (a replayed
//! `jti`, issuing the token) happens afterwards, under the server's lock.

use http::header::{self, HeaderMap};
use http::{Method, Request};

use super::client_auth::{self, AuthenticatedClient, ReplayGuard};
use super::jwt::{self, Expected};
use super::wire::{Form, MAX_FORM_BYTES, Rejection, quoted};
use super::{CLIENT_ASSERTION_TYPE, Config, JWT_BEARER};
use crate::time::Now;

/// An accepted token request, before the token is issued.
#[derive(Debug)]
pub(super) struct Grant {
    /// The service user or client the token is for.
    pub(super) subject: String,
    /// The granted scope: the requested one.
    pub(super) scope: Option<String>,
    /// A client assertion's `jti`, to be refused if it comes again.
    pub(super) replay_guard: Option<ReplayGuard>,
}

/// Checks a token request. See the module docs.
pub(super) fn check(
    config: &Config,
    request: &Request<Vec<u8>>,
    now: Now,
) -> Result<Grant, Rejection> {
    if request.method() != Method::POST {
        return Err(Rejection::method_not_allowed(request.method()));
    }
    check_content_type(request.headers())?;
    if request.uri().query().is_some() {
        return Err(Rejection::invalid_request(
            "the token endpoint takes its parameters in the form body, not the query; \
             credentials must not appear in a URL (RFC 6749 sections 2.3.1 and 3.2)",
        ));
    }
    if request.body().len() > MAX_FORM_BYTES {
        return Err(Rejection::invalid_request(format!(
            "the form body has {} bytes, more than the {MAX_FORM_BYTES} this server reads",
            request.body().len()
        )));
    }
    let form = Form::parse(request.body())?;

    let Some(grant_type) = form.get("grant_type") else {
        return Err(Rejection::invalid_request(
            "grant_type is missing (RFC 6749 section 4.4.2, RFC 7523 section 2.1)",
        ));
    };
    let client = client_auth::authenticate(config, request.headers(), &form, now)?;
    let mut grant = match grant_type {
        JWT_BEARER => jwt_bearer(config, &form, client, now)?,
        "client_credentials" => client_credentials(client)?,
        other => {
            return Err(Rejection::unsupported_grant_type(format!(
                "grant_type {} is not supported; this server supports client_credentials and \
                 {JWT_BEARER}",
                quoted(other)
            )));
        }
    };
    grant.scope = check_scope(config, form.get("scope"))?;
    Ok(grant)
}

/// `Content-Type: application/x-www-form-urlencoded`, parameters allowed
/// (RFC 6749 §3.2, Appendix B).
fn check_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Rejection::invalid_request(
            "a token request needs exactly one Content-Type header: \
             application/x-www-form-urlencoded (RFC 6749 section 3.2)",
        ));
    };
    let media_type = value
        .to_str()
        .ok()
        .and_then(|text| text.split(';').next())
        .map(str::trim);
    if media_type
        .is_some_and(|media| media.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    {
        return Ok(());
    }
    Err(Rejection::invalid_request(format!(
        "Content-Type is {}; a token request is application/x-www-form-urlencoded \
         (RFC 6749 section 3.2)",
        media_type.map_or_else(|| "not readable".to_owned(), quoted)
    )))
}

/// Private key JWT as an authorization grant (RFC 7523 §2.1), ZITADEL's JWT profile.
fn jwt_bearer(
    config: &Config,
    form: &Form,
    client: Option<AuthenticatedClient>,
    now: Now,
) -> Result<Grant, Rejection> {
    if let Some(client) = client {
        return Err(Rejection::unauthorized_client(format!(
            "client {} may use client_credentials only, not {JWT_BEARER}; a jwt-bearer grant \
             comes from a service user and needs no client authentication",
            quoted(&client.id)
        )));
    }
    let Some(assertion) = form.get("assertion") else {
        let hint = if form.get("client_assertion").is_some() {
            format!(
                "; client_assertion is client authentication (client_assertion_type \
                 {CLIENT_ASSERTION_TYPE}), the grant needs assertion"
            )
        } else {
            String::new()
        };
        return Err(Rejection::invalid_request(format!(
            "the jwt-bearer grant needs an assertion parameter (RFC 7523 section 2.1){hint}"
        )));
    };

    let issuer = [config.issuer.as_str()];
    let expected = Expected {
        what: "assertion",
        audiences: &issuer,
    };
    let verified = jwt::verify(assertion, &expected, |user| user_keys(config, user), now)
        .map_err(Rejection::invalid_grant)?;
    Ok(Grant {
        subject: verified.subject,
        scope: None,
        replay_guard: None,
    })
}

fn user_keys<'c>(
    config: &'c Config,
    user_id: &str,
) -> Result<&'c [crate::credentials::PublicKey], String> {
    config.users.get(user_id).map(Vec::as_slice).ok_or_else(|| {
        format!(
            "service user {} (the assertion's iss and sub) is not registered",
            quoted(user_id)
        )
    })
}

/// The client credentials grant (RFC 6749 §4.4): the client must authenticate.
fn client_credentials(client: Option<AuthenticatedClient>) -> Result<Grant, Rejection> {
    let Some(client) = client else {
        return Err(Rejection::invalid_client(
            "client_credentials needs client authentication (RFC 6749 section 4.4.2): Basic \
             credentials, client_id and client_secret, or a client assertion",
        ));
    };
    Ok(Grant {
        subject: client.id,
        scope: None,
        replay_guard: client.replay_guard,
    })
}

/// Every scope token must be well formed and allowed (RFC 6749 §3.3).
fn check_scope(config: &Config, scope: Option<&str>) -> Result<Option<String>, Rejection> {
    let Some(scope) = scope else {
        return Ok(None);
    };
    for token in scope.split(' ') {
        if token.is_empty() {
            return Err(Rejection::invalid_scope(
                "the scope has an empty scope token; separate scopes with single spaces \
                 (RFC 6749 section 3.3)",
            ));
        }
        if !token.bytes().all(is_scope_char) {
            return Err(Rejection::invalid_scope(
                "a scope token has characters outside RFC 6749 section 3.3 (printable ASCII \
                 without space, double quote and backslash)",
            ));
        }
        if !config.allowed_scopes.contains(token) {
            let allowed: Vec<String> = config.allowed_scopes.iter().map(|s| quoted(s)).collect();
            return Err(Rejection::invalid_scope(format!(
                "scope {} is not allowed; allowed scopes: {}",
                quoted(token),
                if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(" ")
                }
            )));
        }
    }
    Ok(Some(scope.to_owned()))
}

/// NQCHAR (RFC 6749 Appendix A.4).
fn is_scope_char(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x5b | 0x5d..=0x7e)
}
