//! The byte-level fuzz targets: each takes the raw input as a response body,
//! a key file or an assertion, so that seeds are plain text.
//!
//! This module depends only on crates the library itself depends on, so that
//! `tests/fuzz_corpus_replay.rs` can include it with `#[path]` and replay the
//! committed seeds under `cargo test`, without cargo-fuzz.
//!
//! Besides "no panic", every target checks a few properties of what the
//! library accepts: a token fits an `Authorization` header and re-serialises
//! to the same token, an error message holds no control character, a key
//! that parses signs what its public half verifies.

use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value};
use service_auth::assertion;
use service_auth::credentials::{Algorithm, KeyFile, PublicKey, SigningKey};
use service_auth::endpoint::{Issuer, TokenEndpoint, UrlPolicy};
use service_auth::error::TokenError;
use service_auth::flow::Discovery;
use service_auth::response::{
    MAX_DESCRIPTION_CHARS, MAX_LIFETIME, parse_error_response, parse_retry_after,
    parse_token_response, server_date,
};
use service_auth::time::Now;
use service_auth::token::Token;

/// The statuses every response body is tried with: success, the two OAuth
/// error statuses, the transient ones and a permanent one.
const STATUSES: [u16; 8] = [200, 201, 400, 401, 404, 408, 429, 503];

/// One fixed reading of both clocks per process: 2023-11-14T22:13:20Z.
pub fn now() -> Now {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    Now::new(*START, UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

/// `data` as the body of a token endpoint response, with every status of
/// [`STATUSES`].
pub fn token_response(data: &[u8]) {
    for status in STATUSES {
        let response = response(status, &[("content-type", b"application/json")], data);
        match parse_token_response(&response, now()) {
            Ok(token) => check_token(&token, status),
            Err(error) => {
                check_message(&error);
                check_token_not_echoed(status, data);
            }
        }
    }
}

/// The first line of `data` as the `Retry-After` and `Date` header values,
/// the rest as the body of an error response.
pub fn error_response(data: &[u8]) {
    let (line, body) = split_line(data);
    let now = now();
    if let Ok(value) = HeaderValue::from_bytes(line) {
        // A date in the past is zero; anything else is at most u64 seconds.
        let _ = parse_retry_after(&value, now.wall());
        let _ = parse_retry_after(&value, SystemTime::UNIX_EPOCH);
        let dated = http::Response::builder()
            .header(header::DATE, value)
            .body(());
        if let Ok(dated) = dated {
            let _ = server_date(&dated);
        }
    }
    for status in STATUSES {
        let headers = [("retry-after", line), ("date", line)];
        let response = response(status, &headers, body);
        let error = parse_error_response(&response, now);
        check_message(&error);
        if let TokenError::Provider(provider) = &error {
            let description = provider.description.as_deref().unwrap_or_default();
            assert!(description.chars().count() <= MAX_DESCRIPTION_CHARS);
            assert!(!provider.code.as_str().chars().any(char::is_control));
        }
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        if code.is_server_error() || code == StatusCode::TOO_MANY_REQUESTS {
            assert!(error.retry().is_transient(), "{status} must be transient");
        }
    }
}

/// `data` as a discovery document, for issuers with and without a path and
/// a plain-HTTP loopback issuer.
pub fn discovery_document(data: &[u8]) {
    let issuers = [
        ("https://auth.example.com", UrlPolicy::https_only()),
        (
            "https://auth.example.com/realms/prod",
            UrlPolicy::https_only(),
        ),
        (
            "http://127.0.0.1:8080",
            UrlPolicy::dangerous_allow_http_loopback(),
        ),
    ];
    for (url, policy) in issuers {
        let Ok(issuer) = Issuer::parse(url, policy) else {
            panic!("the fixed issuer {url} must parse");
        };
        for status in [200, 503] {
            let (awaiting, request) = Discovery::new(issuer.clone(), policy).request();
            assert_eq!(request.method(), http::Method::GET);
            let response = response(status, &[("retry-after", b"3")], data);
            match awaiting.handle_response(response) {
                Ok(metadata) => {
                    // RFC 8414 §3.3: only a document naming our issuer counts.
                    assert_eq!(metadata.issuer(), &issuer);
                    let endpoint = metadata.token_endpoint();
                    let again = TokenEndpoint::parse(endpoint.as_str(), policy);
                    assert_eq!(again.as_ref().ok(), Some(endpoint));
                }
                Err(error) => check_discovery_message(&error),
            }
        }
    }
}

/// [`check_message`], for every error a discovery can end in (the refused
/// token endpoint URL included: the provider wrote it).
pub fn check_discovery_message(error: &TokenError) {
    check_message(error);
}

/// `data` as a ZITADEL key file.
pub fn zitadel_key_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = KeyFile::parse(text) else {
        return;
    };
    assert_eq!(file.key_id(), file.key().key_id());
    check_signs(file.key());
    // What `to_json` writes, `parse` reads back as the same file.
    let Ok(json) = file.to_json() else {
        panic!("a parsed key file must serialise");
    };
    let Ok(again) = KeyFile::parse(&json) else {
        panic!("a serialised key file must parse");
    };
    assert_eq!(again.key_id(), file.key_id());
    assert_eq!(again.principal(), file.principal());
    assert_eq!(
        again.key().public_key().spki_der(),
        file.key().public_key().spki_der()
    );
}

/// `data` as PEM text, and as PKCS#8, PKCS#1 and SEC1 DER.
pub fn pem_key(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(key) = SigningKey::from_pem(text, "fuzz-key")
    {
        check_signs(&key);
        let Ok(pem) = key.to_pkcs8_pem() else {
            panic!("a parsed key must encode as PKCS#8");
        };
        let Ok(again) = SigningKey::from_pem(&pem, "fuzz-key") else {
            panic!("an encoded PKCS#8 key must parse");
        };
        assert_eq!(again.public_key().spki_der(), key.public_key().spki_der());
    }
    let parsed = [
        SigningKey::from_der_pkcs8(data, "fuzz-key"),
        SigningKey::from_der_pkcs1(data, "fuzz-key"),
        SigningKey::from_der_sec1(data, "fuzz-key"),
    ];
    for key in parsed.iter().flatten() {
        check_signs(key);
    }
}

/// `data` as a JWK, private and public.
pub fn jwk_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let public = PublicKey::from_jwk(text);
    if let Ok(key) = SigningKey::from_jwk(text) {
        check_signs(&key);
        // The same JWK read as a public key is the private key's public half.
        let Ok(public) = &public else {
            panic!("a private JWK must also read as a public JWK");
        };
        assert_eq!(public.spki_der(), key.public_key().spki_der());
    }
    if let Ok(public) = public {
        let jwk = public.to_jwk().to_string();
        let Ok(again) = PublicKey::from_jwk(&jwk) else {
            panic!("a written public JWK must read back");
        };
        assert_eq!(again.spki_der(), public.spki_der());
        assert_eq!(again.key_id(), public.key_id());
    }
}

/// `data` as a received assertion: decoded, and verified under keys of all
/// three algorithms.
pub fn assertion(data: &[u8]) {
    static KEYS: LazyLock<Vec<PublicKey>> = LazyLock::new(|| {
        [
            (Algorithm::EdDsa, "fuzz-eddsa"),
            (Algorithm::Es256, "fuzz-es256"),
            (Algorithm::Rs256, "fuzz-rs256"),
        ]
        .into_iter()
        .filter_map(|(algorithm, kid)| SigningKey::generate(algorithm, kid).ok())
        .map(|key| key.public_key())
        .collect()
    });
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let decoded = assertion::decode_unverified(text);
    if let Ok(decoded) = &decoded {
        let _ = (decoded.audiences(), decoded.issuer(), decoded.subject());
        let _ = (decoded.jwt_id(), decoded.issued_at(), decoded.expires_at());
        let _ = decoded.not_before();
    }
    for key in KEYS.iter() {
        match assertion::verify(text, key) {
            // Whatever verifies also decodes, to the same content.
            Ok(verified) => assert_eq!(decoded.as_ref().ok(), Some(&verified)),
            Err(error) => assert!(!error.to_string().contains(text) || text.len() < 16),
        }
    }
}

fn response(
    status: u16,
    headers: &[(&'static str, &[u8])],
    body: &[u8],
) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.to_vec());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            response.headers_mut().append(*name, value);
        }
    }
    response
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&[], data),
    }
}

/// What every accepted token must satisfy, and that it survives a round
/// trip through the canonical RFC 6749 §5.1 form.
fn check_token(token: &Token, status: u16) {
    assert!((200..300).contains(&status), "a token from status {status}");
    assert!(token.header_value().is_ok(), "the token must fit a header");
    let Some(lifetime) = token.lifetime() else {
        panic!("a token from a response always expires");
    };
    assert!(lifetime > Duration::ZERO && lifetime <= MAX_LIFETIME);

    let body = canonical_json(token).to_string();
    let again = parse_token_response(&http::Response::new(body), now());
    let Ok(again) = again else {
        panic!("the canonical form of an accepted token must be accepted");
    };
    assert_eq!(again.access_token().secret(), token.access_token().secret());
    assert_eq!(again.lifetime(), token.lifetime());
    assert_eq!(again.lifetime_known(), token.lifetime_known());
    assert_eq!(again.scope(), token.scope());
}

/// The RFC 6749 §5.1 response that says exactly what `token` holds.
pub fn canonical_json(token: &Token) -> Value {
    let mut fields = Map::new();
    fields.insert("access_token".into(), token.access_token().secret().into());
    fields.insert("token_type".into(), "Bearer".into());
    if token.lifetime_known()
        && let Some(lifetime) = token.lifetime()
    {
        fields.insert("expires_in".into(), lifetime.as_secs().into());
    }
    if let Some(scope) = token.scope() {
        fields.insert("scope".into(), scope.into());
    }
    Value::Object(fields)
}

/// Error messages end up in logs: no control character may reach them.
fn check_message(error: &TokenError) {
    let shown = error.to_string();
    assert!(
        !shown.chars().any(char::is_control),
        "control character in {shown:?}"
    );
}

/// An error about a success body must not depend on the access token in it:
/// the same body with another token of the same length gives the same error.
fn check_token_not_echoed(status: u16, data: &[u8]) {
    if !(200..300).contains(&status) {
        return;
    }
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Some(Value::String(token)) = fields.get("access_token").cloned() else {
        return;
    };
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return;
    }
    let original = Value::Object(fields.clone()).to_string();
    fields.insert("access_token".into(), "X".repeat(token.len()).into());
    let replaced = Value::Object(fields).to_string();
    if original.len() != replaced.len() {
        return;
    }
    let parse = |body: String| {
        let response = response(
            status,
            &[("content-type", b"application/json")],
            body.as_bytes(),
        );
        // The error as it would be shown and logged; `None` for a token.
        let error = parse_token_response(&response, now()).err()?;
        Some((error.to_string(), format!("{error:?}")))
    };
    if let (Some(first), Some(second)) = (parse(original), parse(replaced)) {
        assert_eq!(
            first, second,
            "an error about a token response echoes the token"
        );
    }
}

/// A key that parsed signs, and its public half verifies the signature.
fn check_signs(key: &SigningKey) {
    let message = b"header.claims";
    let Ok(signature) = key.sign(message) else {
        panic!("a parsed {} key must sign", key.algorithm());
    };
    assert!(key.public_key().verify(message, &signature));
    assert!(!key.public_key().verify(b"header.other", &signature));
}
