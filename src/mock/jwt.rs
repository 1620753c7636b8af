//! Verification of assertions and client assertions (RFC 7523 §3).
//!
//! The server decodes the compact JWS itself rather than through the
//! client's own assertion code, so that a bug in how the client encodes an
//! assertion cannot hide behind the same bug in how it is checked.

use std::time::UNIX_EPOCH;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::wire::quoted;
use crate::credentials::PublicKey;
use crate::time::Now;

/// How far ahead of the server clock `iat` may lie (ZITADEL's rule).
const FUTURE_LEEWAY: f64 = 1.0;
/// How old an assertion may be, by its `iat`.
const MAX_AGE: f64 = 3600.0;

/// What an assertion must say to be accepted.
pub(super) struct Expected<'a> {
    /// "assertion" or "client assertion", for messages.
    pub(super) what: &'static str,
    /// `aud` must contain at least one of these.
    pub(super) audiences: &'a [&'a str],
}

/// An assertion whose signature and claims passed.
#[derive(Debug)]
pub(super) struct Verified {
    /// `iss` and `sub`: the service user or client.
    pub(super) subject: String,
    /// `exp`, in seconds since the epoch.
    pub(super) expires: f64,
    /// The claims, for checks specific to one kind of assertion (`jti`).
    pub(super) claims: Map<String, Value>,
}

/// Verifies `token` against `expected`. `keys_of` returns the keys
/// registered for a subject, or why there are none.
///
/// Returns a description of the first problem found; it never contains the
/// assertion.
pub(super) fn verify<'k>(
    token: &str,
    expected: &Expected<'_>,
    keys_of: impl FnOnce(&str) -> Result<&'k [PublicKey], String>,
    now: Now,
) -> Result<Verified, String> {
    let what = expected.what;
    let jws = Jws::decode(token).map_err(|problem| {
        format!("the {what} is not a compact JWS: {problem} (RFC 7515 section 7.1)")
    })?;
    let header = Header::check(&jws.header, what)?;
    let subject = issuer_and_subject(&jws.claims, what)?;

    let keys = keys_of(&subject)?;
    let Some(key) = keys.iter().find(|key| key.key_id() == header.key_id) else {
        return Err(unknown_key(header.key_id, &subject, keys, what));
    };
    if header.algorithm != key.algorithm().as_str() {
        return Err(format!(
            "the {what} header's alg {} does not match key {}, which verifies {} only",
            quoted(header.algorithm),
            quoted(header.key_id),
            key.algorithm()
        ));
    }
    if !key.verify(jws.signing_input.as_bytes(), &jws.signature) {
        return Err(format!(
            "the {what} signature does not verify with key {}; sign with the private half of \
             the registered key",
            quoted(header.key_id)
        ));
    }

    check_audience(&jws.claims, expected)?;
    let expires = check_times(&jws.claims, what, now)?;
    Ok(Verified {
        subject,
        expires,
        claims: jws.claims,
    })
}

/// Claimed facts of an assertion, read without verifying it: for recording.
#[derive(Debug, Default)]
pub(super) struct Peek {
    pub(super) issuer: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) key_id: Option<String>,
}

/// Reads the `kid`, `iss` and `sub` of `token` without judging it.
pub(super) fn peek(token: &str) -> Peek {
    let Ok(jws) = Jws::decode(token) else {
        return Peek::default();
    };
    let text = |map: &Map<String, Value>, name: &str| {
        map.get(name).and_then(Value::as_str).map(str::to_owned)
    };
    Peek {
        issuer: text(&jws.claims, "iss"),
        subject: text(&jws.claims, "sub"),
        key_id: text(&jws.header, "kid"),
    }
}

/// Seconds since the epoch of the wall-clock part of `now`, with fractions.
pub(super) fn seconds_since_epoch(now: Now) -> f64 {
    now.wall()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// A compact JWS split into its parts (RFC 7515 §7.1).
struct Jws<'a> {
    signing_input: &'a str,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signature: Vec<u8>,
}

impl<'a> Jws<'a> {
    fn decode(token: &'a str) -> Result<Self, &'static str> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("expected three base64url parts separated by dots");
        };
        let signing_input = &token[..header.len() + 1 + claims.len()];
        let header =
            json_object(header).ok_or("the header is not base64url-encoded JSON object")?;
        let claims =
            json_object(claims).ok_or("the claims are not a base64url-encoded JSON object")?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "the signature is not base64url without padding")?;
        if signature.is_empty() {
            return Err("the signature is empty");
        }
        Ok(Self {
            signing_input,
            header,
            claims,
            signature,
        })
    }
}

fn json_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The JOSE header fields the server relies on.
struct Header<'a> {
    algorithm: &'a str,
    key_id: &'a str,
}

impl<'a> Header<'a> {
    fn check(header: &'a Map<String, Value>, what: &str) -> Result<Self, String> {
        let Some(algorithm) = header.get("alg").and_then(Value::as_str) else {
            return Err(format!(
                "the {what} header has no alg (RFC 7515 section 4.1.1)"
            ));
        };
        if algorithm.eq_ignore_ascii_case("none") {
            return Err(format!(
                "the {what} is unsigned (alg none); sign it with the registered key"
            ));
        }
        if header.contains_key("crit") {
            return Err(format!(
                "the {what} header has a crit parameter, and this server understands no \
                 extension (RFC 7515 section 4.1.11)"
            ));
        }
        if let Some(typ) = header.get("typ")
            && !typ
                .as_str()
                .is_some_and(|typ| typ.eq_ignore_ascii_case("JWT"))
        {
            return Err(format!("the {what} header's typ must be JWT when present"));
        }
        let Some(key_id) = header.get("kid").and_then(Value::as_str) else {
            return Err(format!(
                "the {what} header has no kid; set it to the id of the registered key"
            ));
        };
        Ok(Self { algorithm, key_id })
    }
}

/// `iss` and `sub`, which must be the same registered id (RFC 7523 §3 items 1-2).
fn issuer_and_subject(claims: &Map<String, Value>, what: &str) -> Result<String, String> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let (Some(issuer), Some(subject)) = (text("iss"), text("sub")) else {
        return Err(format!(
            "the {what} needs string claims iss and sub (RFC 7523 section 3)"
        ));
    };
    if issuer != subject {
        return Err(format!(
            "the {what}'s iss {} and sub {} differ; both must be the id of the registered \
             service user or client",
            quoted(issuer),
            quoted(subject)
        ));
    }
    Ok(subject.to_owned())
}

fn unknown_key(key_id: &str, subject: &str, keys: &[PublicKey], what: &str) -> String {
    let registered: Vec<String> = keys.iter().map(|key| quoted(key.key_id())).collect();
    format!(
        "the {what} header's kid {} names no key registered for {}; registered key ids: {}",
        quoted(key_id),
        quoted(subject),
        if registered.is_empty() {
            "none".to_owned()
        } else {
            registered.join(", ")
        }
    )
}

/// `aud` (a string or an array of strings, RFC 7519 §4.1.3) must contain
/// one of the expected audiences exactly (RFC 7523 §3 item 3).
fn check_audience(claims: &Map<String, Value>, expected: &Expected<'_>) -> Result<(), String> {
    let what = expected.what;
    let found: Vec<&str> = match claims.get("aud") {
        Some(Value::String(audience)) => vec![audience.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => {
            return Err(format!(
                "the {what} has no aud claim (a string or an array of strings)"
            ));
        }
    };
    if found.iter().any(|aud| expected.audiences.contains(aud)) {
        return Ok(());
    }
    let wanted: Vec<String> = expected.audiences.iter().map(|aud| quoted(aud)).collect();
    let found: Vec<String> = found.iter().take(4).map(|aud| quoted(aud)).collect();
    Err(format!(
        "the {what}'s aud must contain {}, exactly; found {}",
        wanted.join(" or "),
        if found.is_empty() {
            "no string".to_owned()
        } else {
            found.join(", ")
        }
    ))
}

/// `exp` in the future, `iat` neither ahead nor old, `nbf` passed; returns `exp`.
fn check_times(claims: &Map<String, Value>, what: &str, now: Now) -> Result<f64, String> {
    let now = seconds_since_epoch(now);
    let Some(expires) = numeric_date(claims, "exp", what)? else {
        return Err(format!(
            "the {what} has no exp claim (RFC 7523 section 3 item 4)"
        ));
    };
    if expires <= now {
        return Err(format!(
            "the {what} expired {} s ago (exp {}, server time {}); sign a fresh one",
            seconds(now - expires),
            seconds(expires),
            seconds(now)
        ));
    }

    let Some(issued) = numeric_date(claims, "iat", what)? else {
        return Err(format!(
            "the {what} has no iat claim; set it to the signing time"
        ));
    };
    if issued > now + FUTURE_LEEWAY {
        return Err(format!(
            "the {what} was issued in the future: iat is {} s ahead of the server clock, and \
             at most 1 s is allowed; check the host clock or backdate iat by a few seconds",
            seconds(issued - now)
        ));
    }
    if now - issued > MAX_AGE {
        return Err(format!(
            "the {what} was issued {} s ago, more than the 1 h allowed; sign a fresh one",
            seconds(now - issued)
        ));
    }

    if let Some(not_before) = numeric_date(claims, "nbf", what)?
        && not_before > now + FUTURE_LEEWAY
    {
        return Err(format!(
            "the {what} is not valid for another {} s (nbf); check the host clock",
            seconds(not_before - now)
        ));
    }
    Ok(expires)
}

/// A NumericDate claim (RFC 7519 §2): absent, or a JSON number.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
    what: &str,
) -> Result<Option<f64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or_else(|| {
            format!(
                "the {what}'s {name} must be a number of seconds since the epoch (RFC 7519 \
                 section 2)"
            )
        }),
    }
}

/// Seconds for a message: whole numbers without a fraction.
fn seconds(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    #[test]
    fn decode_refuses_broken_shapes() {
        assert!(Jws::decode("a.b").is_err());
        assert!(Jws::decode("a.b.c.d").is_err());
        let header = encode(&serde_json::json!({"alg": "ES256"}));
        let claims = encode(&serde_json::json!({"sub": "x"}));
        assert!(Jws::decode(&format!("{header}.{claims}.")).is_err());
        assert!(Jws::decode(&format!("{header}.{claims}.c2ln=")).is_err());
        let token = format!("{header}.{claims}.c2ln");
        let jws = Jws::decode(&token).unwrap();
        assert_eq!(jws.signing_input, format!("{header}.{claims}"));
        assert_eq!(jws.signature, b"sig");
        let array = encode(&serde_json::json!(["not", "an", "object"]));
        assert!(Jws::decode(&format!("{header}.{array}.c2ln")).is_err());
    }

    #[test]
    fn peek_reads_claimed_ids() {
        let header = encode(&serde_json::json!({"alg": "ES256", "kid": "k1"}));
        let claims = encode(&serde_json::json!({"iss": "a", "sub": "b"}));
        let facts = peek(&format!("{header}.{claims}.c2ln"));
        assert_eq!(facts.key_id.as_deref(), Some("k1"));
        assert_eq!(facts.issuer.as_deref(), Some("a"));
        assert_eq!(facts.subject.as_deref(), Some("b"));
        assert!(peek("garbage").key_id.is_none());
    }

    #[test]
    fn seconds_prints_whole_numbers_plainly() {
        assert_eq!(seconds(3.0), "3");
        assert_eq!(seconds(1.5), "1.500");
    }
}
