//! Client authentication at the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{self, HeaderMap};
use serde_json::Value;
use zeroize::Zeroizing;

use super::jwt::{self, Expected};
use super::wire::{Form, Rejection, constant_time_eq, quoted};
use super::{AudienceRule, CLIENT_ASSERTION_TYPE, Config, SecretMethod};
use crate::credentials::PublicKey;
use crate::secret::ClientSecret;
use crate::time::Now;

/// A client that proved who it is.
#[derive(Debug)]
pub(super) struct AuthenticatedClient {
    pub(super) id: String,
    /// For a client assertion: its `jti`, to be refused if it comes again.
    pub(super) replay_guard: Option<ReplayGuard>,
}

/// A client assertion's `jti`, remembered until the assertion expires.
#[derive(Debug)]
pub(super) struct ReplayGuard {
    pub(super) client_id: String,
    pub(super) jti: String,
    /// The assertion's `exp`, in seconds since the epoch.
    pub(super) expires: f64,
}

/// Authenticates the client of a token request, if it tried.
///
/// `Ok(None)` when the request carries no client credentials and no
/// `client_id`, as a jwt-bearer grant may (RFC 7523 §3.1).
pub(super) fn authenticate(
    config: &Config,
    headers: &HeaderMap,
    form: &Form,
    now: Now,
) -> Result<Option<AuthenticatedClient>, Rejection> {
    let basic = basic_header(headers)?;
    let post = form.get("client_secret").is_some();
    let assertion =
        form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some();
    let used: Vec<&str> = [
        (basic.is_some(), "client_secret_basic"),
        (post, "client_secret_post"),
        (assertion, "a client assertion"),
    ]
    .into_iter()
    .filter_map(|(present, name)| present.then_some(name))
    .collect();
    if used.len() > 1 {
        return Err(Rejection::invalid_request(format!(
            "the request authenticates the client with {} at once; use exactly one method \
             (RFC 6749 section 2.3)",
            used.join(" and ")
        )));
    }

    if let Some((client_id, secret)) = basic {
        if form
            .get("client_id")
            .is_some_and(|body_id| body_id != client_id)
        {
            return Err(Rejection::invalid_request(
                "the client_id in the body differs from the client id in the Authorization header",
            ));
        }
        return check_secret(config, &client_id, &secret, SecretMethod::Basic).map(Some);
    }
    if post {
        let Some(client_id) = form.get("client_id") else {
            return Err(Rejection::invalid_request(
                "client_secret without client_id; client_secret_post sends both \
                 (RFC 6749 section 2.3.1)",
            ));
        };
        let secret = ClientSecret::new(form.get("client_secret").unwrap_or_default());
        return check_secret(config, client_id, &secret, SecretMethod::Post).map(Some);
    }
    if assertion {
        return check_client_assertion(config, form, now).map(Some);
    }
    if let Some(client_id) = form.get("client_id") {
        return Err(Rejection::invalid_client(format!(
            "client {} sent no credentials; every client of this server authenticates with \
             Basic credentials, client_secret_post or a client assertion",
            quoted(client_id)
        )));
    }
    Ok(None)
}

/// Decodes `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749
/// §2.3.1, RFC 7617).
pub(super) fn decode_basic(value: &str) -> Result<(String, ClientSecret), Rejection> {
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Basic") {
        // The scheme is not repeated: a malformed header may hold a secret there.
        return Err(Rejection::invalid_client(
            "the Authorization header of a token request must use the Basic scheme \
             (RFC 6749 section 2.3.1)",
        ));
    }
    let Ok(decoded) = STANDARD.decode(credentials.trim()) else {
        return Err(Rejection::invalid_client(
            "the Basic credentials are not base64 with padding (RFC 7617 section 2)",
        ));
    };
    let decoded = Zeroizing::new(decoded);
    let Ok(text) = std::str::from_utf8(&decoded) else {
        return Err(Rejection::invalid_client(
            "the Basic credentials are not UTF-8",
        ));
    };
    let Some((client_id, secret)) = text.split_once(':') else {
        return Err(Rejection::invalid_client(
            "the Basic credentials have no colon between the client id and the secret",
        ));
    };
    let not_encoded = |part: &str| {
        Rejection::invalid_client(format!(
            "the {part} in the Basic credentials is not form-urlencoded: RFC 6749 section \
             2.3.1 encodes the client id and the secret with application/x-www-form-urlencoded \
             before base64"
        ))
    };
    let client_id = form_decode(client_id).ok_or_else(|| not_encoded("client id"))?;
    let secret = form_decode(secret).ok_or_else(|| not_encoded("secret"))?;
    Ok((client_id, ClientSecret::new(secret)))
}

/// Reads the `Authorization` header of a token request, if any.
fn basic_header(headers: &HeaderMap) -> Result<Option<(String, ClientSecret)>, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::invalid_request(
            "the request has more than one Authorization header",
        ));
    }
    let Ok(value) = value.to_str() else {
        return Err(Rejection::invalid_client(
            "the Authorization header is not visible ASCII",
        ));
    };
    decode_basic(value).map(Some)
}

/// Strict application/x-www-form-urlencoded decoding of one component:
/// `None` when a byte appears raw that the encoding always escapes, or an
/// escape is broken, so that a client that skips the encoding is caught
/// whatever its secret looks like.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'+' => decoded.push(b' '),
            b'%' => {
                let high = hex_digit(*bytes.get(index + 1)?)?;
                let low = hex_digit(*bytes.get(index + 2)?)?;
                decoded.push(high << 4 | low);
                index += 2;
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'*' => {
                decoded.push(byte);
            }
            _ => return None,
        }
        index += 1;
    }
    String::from_utf8(decoded.to_vec()).ok()
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

fn check_secret(
    config: &Config,
    client_id: &str,
    presented: &ClientSecret,
    method: SecretMethod,
) -> Result<AuthenticatedClient, Rejection> {
    let Some(client) = config.clients.get(client_id) else {
        return Err(Rejection::invalid_client(format!(
            "client {} is not registered",
            quoted(client_id)
        )));
    };
    let Some((secret, registered)) = &client.secret else {
        return Err(Rejection::invalid_client(format!(
            "client {} is registered for private key JWT, not a client secret; send a client \
             assertion",
            quoted(client_id)
        )));
    };
    if *registered != method {
        return Err(Rejection::invalid_client(format!(
            "client {} is registered for {}, but the request used {}",
            quoted(client_id),
            registered.as_str(),
            method.as_str()
        )));
    }
    if !constant_time_eq(secret.secret(), presented.secret()) {
        let hint = match method {
            SecretMethod::Basic => {
                "; Basic credentials form-urlencode the id and the secret before base64 \
                 (RFC 6749 section 2.3.1)"
            }
            SecretMethod::Post => "",
        };
        return Err(Rejection::invalid_client(format!(
            "wrong client secret for client {}{hint}",
            quoted(client_id)
        )));
    }
    Ok(AuthenticatedClient {
        id: client_id.to_owned(),
        replay_guard: None,
    })
}

/// Private key JWT client authentication (RFC 7523 §2.2 and §3).
fn check_client_assertion(
    config: &Config,
    form: &Form,
    now: Now,
) -> Result<AuthenticatedClient, Rejection> {
    let Some(assertion_type) = form.get("client_assertion_type") else {
        return Err(Rejection::invalid_request(format!(
            "client_assertion without client_assertion_type; set it to {CLIENT_ASSERTION_TYPE}"
        )));
    };
    if assertion_type != CLIENT_ASSERTION_TYPE {
        return Err(Rejection::invalid_client(format!(
            "client_assertion_type {} is not supported; expected {CLIENT_ASSERTION_TYPE} \
             (RFC 7523 section 2.2)",
            quoted(assertion_type)
        )));
    }
    let Some(assertion) = form.get("client_assertion") else {
        return Err(Rejection::invalid_request(
            "client_assertion_type without client_assertion",
        ));
    };

    let audiences = accepted_audiences(config);
    let expected = Expected {
        what: "client assertion",
        audiences: &audiences,
    };
    let verified = jwt::verify(assertion, &expected, |id| client_keys(config, id), now)
        .map_err(Rejection::invalid_client)?;
    if let Some(body_id) = form.get("client_id")
        && body_id != verified.subject
    {
        return Err(Rejection::invalid_client(format!(
            "client_id {} differs from the client assertion's iss and sub {} \
             (RFC 7523 section 3)",
            quoted(body_id),
            quoted(&verified.subject)
        )));
    }
    let Some(jti) = verified
        .claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|jti| !jti.is_empty())
    else {
        return Err(Rejection::invalid_client(
            "the client assertion has no jti; give every assertion a unique id \
             (RFC 7523 section 3)",
        ));
    };
    let replay_guard = ReplayGuard {
        client_id: verified.subject.clone(),
        jti: jti.to_owned(),
        expires: verified.expires,
    };
    Ok(AuthenticatedClient {
        id: verified.subject,
        replay_guard: Some(replay_guard),
    })
}

fn accepted_audiences(config: &Config) -> Vec<&str> {
    match config.audience {
        AudienceRule::TokenEndpoint => vec![config.token_endpoint.as_str()],
        AudienceRule::Issuer => vec![config.issuer.as_str()],
        AudienceRule::Either => vec![config.token_endpoint.as_str(), config.issuer.as_str()],
    }
}

fn client_keys<'c>(config: &'c Config, client_id: &str) -> Result<&'c [PublicKey], String> {
    match config.clients.get(client_id) {
        None => Err(format!(
            "client {} (the client assertion's iss and sub) is not registered",
            quoted(client_id)
        )),
        Some(client) if client.keys.is_empty() => Err(format!(
            "client {} is registered for a client secret, not private key JWT",
            quoted(client_id)
        )),
        Some(client) => Ok(&client.keys),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decode_is_strict() {
        assert_eq!(form_decode("a%2Bb+c").as_deref(), Some("a+b c"));
        assert_eq!(form_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(form_decode("a/b"), None);
        assert_eq!(form_decode("a%2"), None);
        assert_eq!(form_decode("a%zz"), None);
        assert_eq!(form_decode("%FF"), None);
    }

    #[test]
    fn basic_credentials_are_decoded() {
        // base64("my%3Aclient:p%40ss+word")
        let encoded = STANDARD.encode("my%3Aclient:p%40ss+word");
        let (id, secret) = decode_basic(&format!("Basic {encoded}")).unwrap();
        assert_eq!(id, "my:client");
        assert_eq!(secret.secret(), "p@ss word");
        assert!(decode_basic("Bearer abc").is_err());
        assert!(decode_basic("Basic !!!").is_err());
        let no_colon = STANDARD.encode("nocolon");
        assert!(decode_basic(&format!("Basic {no_colon}")).is_err());
    }
}
