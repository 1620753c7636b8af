//! Property tests of what goes over the wire: the token response parser, the
//! client secret encodings of RFC 6749 §2.3.1, the assertions, and the mock
//! server's acceptance of every request the flows build.
//!
//! Each property runs `PROPTEST_CASES` cases (default 64, so that the file
//! stays fast in debug builds); run more with, for example,
//! `PROPTEST_CASES=5000 cargo test --release --test proptest_wire`.
//! Failures are saved to `proptest-regressions/proptest_wire.txt`, which is
//! committed and replayed first on every run.
#![cfg(feature = "mock")]

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value, json};
use service_auth::assertion::{self, AssertionClaims};
use service_auth::credentials::{Algorithm, KeyRing, SigningKey};
use service_auth::endpoint::{Issuer, TokenEndpoint, UrlPolicy};
use service_auth::flow::{
    AssertionAudience, ClientAssertion, ClientAuth, ClientCredentials, Grant, JwtBearer,
    RequestOptions, TokenFlow,
};
use service_auth::mock::{MockServer, SecretMethod};
use service_auth::response::{MAX_LIFETIME, UNKNOWN_LIFETIME, parse_token_response};
use service_auth::rng::Rng;
use service_auth::secret::ClientSecret;
use service_auth::time::Now;
use service_auth::token::Token;

const ISSUER: &str = "https://mock.service-auth.test";
const TOKEN_ENDPOINT: &str = "https://mock.service-auth.test/oauth/v2/token";
/// 2023-11-14T22:13:20Z, the wall clock of every case.
const UNIX_NOW: u64 = 1_700_000_000;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/proptest_wire.txt"
        )))),
        ..ProptestConfig::default()
    }
}

fn now() -> Now {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    Now::new(*START, UNIX_EPOCH + Duration::from_secs(UNIX_NOW))
}

fn issuer() -> Issuer {
    Issuer::parse(ISSUER, UrlPolicy::https_only()).expect("the fixed issuer parses")
}

fn endpoint() -> TokenEndpoint {
    TokenEndpoint::parse(TOKEN_ENDPOINT, UrlPolicy::https_only()).expect("the fixed URL parses")
}

/// Keys that are expensive to make (RSA) are made once.
static RSA: LazyLock<SigningKey> =
    LazyLock::new(|| SigningKey::generate(Algorithm::Rs256, "rsa-key").expect("generates"));

// ---------------------------------------------------------------------------
// Token responses
// ---------------------------------------------------------------------------

/// A JSON value for one field of a token response, in one of the forms
/// providers send (or should not).
fn access_token_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => "[!-~]{1,40}".prop_map(|t| Some(json!(t))),
        1 => "[ -~]{0,12}".prop_map(|t| Some(json!(t))),
        1 => "\\PC{1,8}".prop_map(|t| Some(json!(t))),
        1 => any::<i64>().prop_map(|n| Some(json!(n))),
        1 => Just(Some(Value::Null)),
        1 => Just(None),
    ]
}

fn token_type_value() -> impl Strategy<Value = Option<Value>> {
    let bearer =
        (any::<[bool; 6]>(), "[ \t]{0,2}", "[ \t]{0,2}").prop_map(|(upper, lead, tail)| {
            let word: String = "bearer"
                .chars()
                .zip(upper)
                .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            Some(json!(format!("{lead}{word}{tail}")))
        });
    prop_oneof![
        4 => bearer,
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => prop_oneof![Just("MAC"), Just("DPoP"), Just("N_A"), Just("")]
            .prop_map(|t| Some(json!(t))),
        1 => any::<bool>().prop_map(|b| Some(json!(b))),
    ]
}

fn expires_in_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => (-10i64..200_000).prop_map(|n| Some(json!(n))),
        1 => any::<i64>().prop_map(|n| Some(json!(n))),
        1 => (i64::MAX as u64..=u64::MAX).prop_map(|n| Some(json!(n))),
        2 => (-10i64..200_000).prop_map(|n| Some(json!(n.to_string()))),
        1 => (-10i64..200_000, "[ ]{0,2}")
            .prop_map(|(n, pad)| Some(json!(format!("{pad}{n}{pad}")))),
        1 => (-10.0f64..200_000.0).prop_map(|x| Some(json!(x))),
        1 => (-10.0f64..200_000.0).prop_map(|x| Some(json!(x.to_string()))),
        1 => prop_oneof![Just("1e3"), Just("inf"), Just("NaN"), Just("soon"), Just(""), Just("+7")]
            .prop_map(|t| Some(json!(t))),
        1 => Just(Some(Value::Null)),
        2 => Just(None),
        1 => Just(Some(json!([60]))),
    ]
}

fn scope_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        2 => "[a-z:/ ]{0,20}".prop_map(|s| Some(json!(s))),
        1 => any::<u8>().prop_map(|n| Some(json!(n))),
    ]
}

fn extra_fields() -> impl Strategy<Value = Vec<(String, Value)>> {
    let field = prop_oneof![
        Just("refresh_token".to_owned()),
        Just("id_token".to_owned()),
        "x_[a-z]{1,6}",
    ];
    let value = prop_oneof![
        "[ -~]{0,10}".prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!({"nested": [1, 2]})),
    ];
    proptest::collection::vec((field, value), 0..3)
}

fn token_body() -> impl Strategy<Value = Map<String, Value>> {
    (
        access_token_value(),
        token_type_value(),
        expires_in_value(),
        scope_value(),
        extra_fields(),
    )
        .prop_map(|(access_token, token_type, expires_in, scope, extra)| {
            let mut fields = Map::new();
            for (name, value) in extra {
                fields.insert(name, value);
            }
            for (name, value) in [
                ("access_token", access_token),
                ("token_type", token_type),
                ("expires_in", expires_in),
                ("scope", scope),
            ] {
                if let Some(value) = value {
                    fields.insert(name.to_owned(), value);
                }
            }
            fields
        })
}

/// What the parser must make of a success body, written from the module
/// documentation of `service_auth::response`, independently of its code.
#[derive(Debug, PartialEq)]
struct Expected {
    access_token: String,
    lifetime: Duration,
    lifetime_known: bool,
    scope: Option<String>,
}

fn reference_parse(fields: &Map<String, Value>) -> Option<Expected> {
    match fields.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind.trim().eq_ignore_ascii_case("bearer") => {}
        Some(_) => return None,
    }
    let (lifetime, lifetime_known) = match fields.get("expires_in") {
        None | Some(Value::Null) => (UNKNOWN_LIFETIME, false),
        Some(value) => {
            let seconds = reference_seconds(value)?;
            if seconds <= 0 {
                return None;
            }
            let stated = Duration::from_secs(seconds.unsigned_abs());
            (stated.min(MAX_LIFETIME), true)
        }
    };
    let scope = match fields.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(scope)) => Some(scope.clone()),
        Some(_) => return None,
    };
    let Some(Value::String(access_token)) = fields.get("access_token") else {
        return None;
    };
    let header_safe = access_token.bytes().all(|b| b.is_ascii_graphic());
    if access_token.is_empty() || !header_safe {
        return None;
    }
    Some(Expected {
        access_token: access_token.clone(),
        lifetime,
        lifetime_known,
        scope,
    })
}

/// `expires_in` in whole seconds: integers as they are (beyond `i64`
/// saturating), fractions and numeric strings floored.
fn reference_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => {
            if let Some(n) = number.as_i64() {
                Some(n)
            } else if number.as_u64().is_some() {
                Some(i64::MAX)
            } else {
                number.as_f64().map(|x| x.floor() as i64)
            }
        }
        Value::String(text) => {
            let text = text.trim();
            if let Ok(n) = text.parse::<i64>() {
                return Some(n);
            }
            let numeric = text
                .chars()
                .all(|c| c.is_ascii_digit() || ".-+eE".contains(c));
            let x = text.parse::<f64>().ok()?;
            (numeric && x.is_finite()).then(|| x.floor() as i64)
        }
        _ => None,
    }
}

/// The RFC 6749 §5.1 response that says exactly what `token` holds.
fn canonical(token: &Token) -> Value {
    let mut fields = Map::new();
    fields.insert("access_token".into(), token.access_token().secret().into());
    fields.insert("token_type".into(), "Bearer".into());
    if token.lifetime_known() {
        let lifetime = token.lifetime().expect("a parsed token expires");
        fields.insert("expires_in".into(), lifetime.as_secs().into());
    }
    if let Some(scope) = token.scope() {
        fields.insert("scope".into(), scope.into());
    }
    Value::Object(fields)
}

fn observed(token: &Token) -> Expected {
    Expected {
        access_token: token.access_token().secret().to_owned(),
        lifetime: token.lifetime().expect("a parsed token expires"),
        lifetime_known: token.lifetime_known(),
        scope: token.scope().map(str::to_owned),
    }
}

// ---------------------------------------------------------------------------
// RFC 6749 §2.3.1 and Appendix B, decoded by hand
// ---------------------------------------------------------------------------

/// Decodes one `application/x-www-form-urlencoded` component (RFC 6749
/// Appendix B, WHATWG URL §5.1): `+` is a space, `%HH` a byte, anything
/// else itself; the bytes are UTF-8.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(pair, 16).ok()
        });
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).expect("the encoder percent-encodes whole UTF-8 characters")
}

/// The `name=value` pairs of a form body, each component decoded.
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let body = std::str::from_utf8(body).expect("a form body is ASCII");
    assert!(
        body.is_ascii(),
        "a form body carries non-ASCII only percent-encoded"
    );
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn form_map(body: &[u8]) -> BTreeMap<String, String> {
    let pairs = form_pairs(body);
    let map: BTreeMap<_, _> = pairs.iter().cloned().collect();
    assert_eq!(
        map.len(),
        pairs.len(),
        "no parameter may repeat (RFC 6749 §3.2)"
    );
    map
}

/// The client id and secret of `Authorization: Basic …`, decoded as RFC
/// 6749 §2.3.1 says: base64, split at the colon, then form-decode each part.
fn decode_basic(value: &str) -> (String, String) {
    let encoded = value.strip_prefix("Basic ").expect("the Basic scheme");
    let decoded = STANDARD.decode(encoded).expect("base64 with padding");
    let text = String::from_utf8(decoded).expect("encoded parts are ASCII");
    let (id, secret) = text
        .split_once(':')
        .expect("a colon separates id and secret");
    (form_decode(id), form_decode(secret))
}

fn start(grant: &Grant, seed: u64) -> http::Request<Vec<u8>> {
    let options = RequestOptions::default();
    let endpoint = endpoint();
    let (_awaiting, request) = TokenFlow::new(grant, &endpoint, &options)
        .start(now(), &mut Rng::from_seed(seed))
        .expect("the request is built");
    request
}

/// Strings heavy in the characters form-urlencoding changes, and any string.
fn awkward_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[:%+&= /?#a-zé€😀\\x00\\n]{0,16}",
        "\\PC{0,24}",
    ]
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

/// A scope token the mock accepts: NQCHAR (RFC 6749 Appendix A.4).
fn nqchar_scope() -> impl Strategy<Value = String> {
    "[!#-\\[\\]-~]{1,12}"
}

fn signing_key(choice: u8, kid: &str) -> SigningKey {
    match choice % 3 {
        0 => SigningKey::generate(Algorithm::EdDsa, kid).expect("generates"),
        1 => SigningKey::generate(Algorithm::Es256, kid).expect("generates"),
        _ => {
            let pem = RSA.to_pkcs8_pem().expect("encodes");
            SigningKey::from_pem(&pem, kid).expect("parses")
        }
    }
}

/// The form's assertion, verified with `key`, with exactly the claims and
/// header a flow must write.
fn check_assertion(
    assertion: &str,
    key: &SigningKey,
    subject: &str,
    audience: &str,
    lifetime: u64,
) -> String {
    let public = key.public_key();
    let decoded = assertion::verify(assertion, &public).expect("verifies with the public key");
    assert_eq!(decoded.header.alg, key.algorithm().as_str());
    assert_eq!(decoded.header.kid.as_deref(), Some(key.key_id()));
    assert_eq!(decoded.header.typ.as_deref(), Some("JWT"));

    let names: Vec<&str> = decoded.claims.keys().map(String::as_str).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["aud", "exp", "iat", "iss", "jti", "sub"]);
    let iat = UNIX_NOW - 5;
    assert_eq!(decoded.issuer(), Some(subject));
    assert_eq!(decoded.subject(), Some(subject));
    assert_eq!(decoded.audiences(), [audience]);
    assert_eq!(decoded.issued_at(), Some(iat));
    assert_eq!(decoded.expires_at(), Some(iat + lifetime));
    let jti = decoded.jwt_id().expect("a jti").to_owned();
    assert!(
        jti.len() == 32
            && jti
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    jti
}

/// A mock server that knows `id` in the role `method` needs: a client with
/// a secret (0: basic, 1: post), a client with a key (2), a service user (3).
fn registered_mock(
    method: u8,
    id: &str,
    secret: &str,
    scopes: &[String],
    key: &SigningKey,
    seed: u64,
) -> MockServer {
    let builder = MockServer::builder(ISSUER)
        .allowed_scopes(scopes.to_vec())
        .seed(seed);
    match method {
        0 => builder.client_secret(id, secret, SecretMethod::Basic),
        1 => builder.client_secret(id, secret, SecretMethod::Post),
        2 => builder.client_key(id, key.public_key()),
        _ => builder.service_user(id, key.public_key()),
    }
    .build()
}

/// The grant of the method `registered_mock` registered `id` for.
fn grant_for(method: u8, id: &str, secret: String, scopes: Vec<String>, keys: KeyRing) -> Grant {
    let client = |auth| Grant::from(ClientCredentials::new(id, auth).scopes(scopes.clone()));
    match method {
        0 => client(ClientAuth::SecretBasic(ClientSecret::new(secret))),
        1 => client(ClientAuth::SecretPost(ClientSecret::new(secret))),
        2 => client(ClientAuth::PrivateKeyJwt(ClientAssertion::new(keys))),
        _ => Grant::from(JwtBearer::new(id, keys, &issuer()).scopes(scopes)),
    }
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the parser accepts matches the reference reading, and its
    /// canonical re-serialisation is accepted as the same token.
    #[test]
    fn accepted_token_responses_reserialise_equivalently(fields in token_body()) {
        let body = Value::Object(fields.clone()).to_string();
        let response = http::Response::new(body);
        let parsed = parse_token_response(&response, now());
        let expected = reference_parse(&fields);
        match (&parsed, &expected) {
            (Ok(token), Some(expected)) => prop_assert_eq!(&observed(token), expected),
            (Err(err), None) => prop_assert!(!err.to_string().is_empty()),
            _ => {
                let parsed = parsed.as_ref().map(observed);
                prop_assert!(false, "parser {:?}, reference {:?}", parsed, expected);
            }
        }
        if let Ok(token) = parsed {
            prop_assert!(token.header_value().is_ok());
            let again = canonical(&token).to_string();
            let again = parse_token_response(&http::Response::new(again), now())
                .expect("the canonical form is accepted");
            prop_assert_eq!(observed(&again), observed(&token));
        }
    }

    /// client_secret_basic: the header decodes, as RFC 6749 §2.3.1 says, to
    /// the exact id and secret, whatever characters they hold.
    #[test]
    fn client_secret_basic_round_trips(id in awkward_text(), secret in awkward_text()) {
        let auth = ClientAuth::SecretBasic(ClientSecret::new(secret.clone()));
        let grant = Grant::from(ClientCredentials::new(id.clone(), auth));
        let request = start(&grant, 1);
        let value = &request.headers()[header::AUTHORIZATION];
        prop_assert!(value.is_sensitive());
        let (decoded_id, decoded_secret) = decode_basic(value.to_str().expect("ASCII"));
        prop_assert_eq!(decoded_id, id);
        prop_assert_eq!(decoded_secret, secret);
        prop_assert_eq!(request.body().as_slice(), b"grant_type=client_credentials");
    }

    /// client_secret_post: the body decodes to the exact id and secret.
    #[test]
    fn client_secret_post_round_trips(id in awkward_text(), secret in awkward_text()) {
        let auth = ClientAuth::SecretPost(ClientSecret::new(secret.clone()));
        let grant = Grant::from(ClientCredentials::new(id.clone(), auth).scopes(["a", "b"]));
        let request = start(&grant, 2);
        prop_assert!(request.headers().get(header::AUTHORIZATION).is_none());
        let form = form_map(request.body());
        prop_assert_eq!(form.get("client_id"), Some(&id));
        prop_assert_eq!(form.get("client_secret"), Some(&secret));
        prop_assert_eq!(form.get("grant_type").map(String::as_str), Some("client_credentials"));
        prop_assert_eq!(form.get("scope").map(String::as_str), Some("a b"));
        prop_assert_eq!(form.len(), 4);
    }

    /// Private key JWT as a grant: the assertion verifies with the public key
    /// and carries exactly the claims RFC 7523 §3 and the design ask for.
    #[test]
    fn jwt_bearer_assertion_carries_exactly_the_expected_claims(
        user in "\\PC{1,24}",
        kid in "\\PC{1,16}",
        algorithm in any::<u8>(),
        scopes in proptest::collection::vec("\\PC{0,10}", 0..5),
        lifetime in 1u64..=3600,
    ) {
        let keys = KeyRing::new(signing_key(algorithm, &kid));
        let key = keys.current();
        let grant = JwtBearer::new(user.clone(), keys, &issuer())
            .scopes(scopes.clone())
            .assertion_lifetime(Duration::from_secs(lifetime))
            .expect("in range");
        let request = start(&Grant::from(grant), 3);
        let form = form_map(request.body());
        prop_assert_eq!(
            form.get("grant_type").map(String::as_str),
            Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        );
        check_assertion(&form["assertion"], &key, &user, ISSUER, lifetime);

        let mut want: Vec<&str> = Vec::new();
        for part in scopes.iter().flat_map(|s| s.split_whitespace()) {
            if !want.contains(&part) {
                want.push(part);
            }
        }
        prop_assert_eq!(form.get("scope").cloned(), (!want.is_empty()).then(|| want.join(" ")));
        prop_assert_eq!(form.len(), 2 + usize::from(!want.is_empty()));
    }

    /// Private key JWT as client authentication: `aud` is the token endpoint
    /// (or the issuer when configured), and every request has a fresh `jti`.
    #[test]
    fn client_assertion_carries_exactly_the_expected_claims(
        client_id in "\\PC{1,24}",
        to_issuer in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let keys = KeyRing::new(signing_key(0, "client-key"));
        let key = keys.current();
        let mut assertion = ClientAssertion::new(keys);
        let audience = if to_issuer {
            assertion = assertion.audience(AssertionAudience::Issuer(ISSUER.to_owned()));
            ISSUER
        } else {
            TOKEN_ENDPOINT
        };
        let grant = Grant::from(ClientCredentials::new(
            client_id.clone(),
            ClientAuth::PrivateKeyJwt(assertion),
        ));
        let mut jtis = Vec::new();
        for round in 0..2 {
            let request = start(&grant, seed.wrapping_add(round));
            let form = form_map(request.body());
            prop_assert_eq!(form.get("client_id"), Some(&client_id));
            prop_assert_eq!(
                form.get("client_assertion_type").map(String::as_str),
                Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            );
            jtis.push(check_assertion(&form["client_assertion"], &key, &client_id, audience, 60));
        }
        prop_assert_ne!(&jtis[0], &jtis[1]);
    }

    /// `sign` and `verify` agree on any claims, whatever their characters.
    #[test]
    fn signed_claims_verify_unchanged(
        iss in any::<String>(),
        sub in any::<String>(),
        aud in any::<String>(),
        iat in any::<u64>(),
        exp in any::<u64>(),
        jti in proptest::option::of(any::<String>()),
        algorithm in 0u8..2,
    ) {
        let key = signing_key(algorithm, "k");
        let claims = AssertionClaims { iss, sub, aud, iat, exp, jti };
        let signed = assertion::sign(&key, &claims).expect("signs");
        let decoded = assertion::verify(signed.secret(), &key.public_key()).expect("verifies");
        prop_assert_eq!(decoded.issuer(), Some(claims.iss.as_str()));
        prop_assert_eq!(decoded.subject(), Some(claims.sub.as_str()));
        prop_assert_eq!(decoded.audiences(), [claims.aud.as_str()]);
        prop_assert_eq!(decoded.issued_at(), Some(claims.iat));
        prop_assert_eq!(decoded.expires_at(), Some(claims.exp));
        prop_assert_eq!(decoded.jwt_id(), claims.jti.as_deref());
        prop_assert_eq!(decoded.claims.len(), 5 + usize::from(claims.jti.is_some()));
        let other = signing_key(algorithm, "k");
        prop_assert!(assertion::verify(signed.secret(), &other.public_key()).is_err());
    }

    /// The mock server, registered with arbitrary valid ids, secrets and
    /// scopes, accepts every request the flows build for them, and the flow
    /// accepts its answer.
    #[test]
    fn mock_accepts_every_request_the_flows_build(
        id in "\\PC{1,24}",
        secret in "\\PC{1,24}",
        scopes in proptest::collection::vec(nqchar_scope(), 0..4),
        method in 0u8..4,
        seed in any::<u64>(),
    ) {
        let key = signing_key(method, "key-1");
        let server = registered_mock(method, &id, &secret, &scopes, &key, seed);
        let grant = grant_for(method, &id, secret, scopes, KeyRing::new(key));
        let endpoint = TokenEndpoint::parse(&server.token_endpoint(), UrlPolicy::https_only())
            .expect("the mock's token endpoint parses");
        let options = RequestOptions::default();
        let (awaiting, request) = TokenFlow::new(&grant, &endpoint, &options)
            .start(now(), &mut Rng::from_seed(seed))
            .expect("built");
        let response = server.handle(request, now());
        let status = response.status();
        let body = String::from_utf8_lossy(response.body()).into_owned();
        prop_assert_eq!(status, 200, "method {}: {}", method, body);
        let token = awaiting
            .handle_response(response, now())
            .expect("the flow accepts the mock's token");
        prop_assert!(token.lifetime_known());
        let recorded = server.requests();
        prop_assert_eq!(recorded.len(), 1);
        let claimed = recorded[0].client_id.as_deref().or(recorded[0].subject.as_deref());
        prop_assert_eq!(claimed, Some(id.as_str()));
    }
}
