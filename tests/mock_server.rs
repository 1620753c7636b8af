//! The mock authorization server: every acceptance path and every rejection,
//! faults, recording, the resource endpoint, the transports and the
//! loopback server. Requests are built by hand, in the wire format of
//! DESIGN.md §2, so that these tests do not depend on the client flows.
#![cfg(feature = "mock")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::LazyLock;
use std::time::{Duration, Instant, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use service_auth::assertion::{self, AssertionClaims};
use service_auth::credentials::{Algorithm, SigningKey};
use service_auth::mock::{
    AudienceRule, ClientAuthMethod, Fault, MockServer, MockServerBuilder, SecretMethod,
};
use service_auth::time::{ManualClock, Now};
use service_auth::transport::{BlockingTransport, Transport};

const ISSUER: &str = "https://mock.service-auth.test";
const TOKEN_ENDPOINT: &str = "https://mock.service-auth.test/oauth/v2/token";
const USER: &str = "service-user-1";
const BASIC_CLIENT: &str = "basic client";
/// A secret with every character class that form-urlencoding changes.
const BASIC_SECRET: &str = "s3cr+t/with%odd:chars é";
const POST_CLIENT: &str = "post-client";
const POST_SECRET: &str = "post-secret-value";
const KEY_CLIENT: &str = "key-client";
const PAT: &str = "pat-0123456789abcdef";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The wall-clock time of every test: 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000;

struct Keys {
    user_es256: SigningKey,
    user_eddsa: SigningKey,
    user_rs256: SigningKey,
    client: SigningKey,
    stranger: SigningKey,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    user_es256: SigningKey::generate(Algorithm::Es256, "user-es256").unwrap(),
    user_eddsa: SigningKey::generate(Algorithm::EdDsa, "user-eddsa").unwrap(),
    user_rs256: SigningKey::generate(Algorithm::Rs256, "user-rs256").unwrap(),
    client: SigningKey::generate(Algorithm::EdDsa, "client-key").unwrap(),
    // Same key id as the user's ES256 key, different key material.
    stranger: SigningKey::generate(Algorithm::Es256, "user-es256").unwrap(),
});

fn builder() -> MockServerBuilder {
    let keys = &*KEYS;
    MockServer::builder(ISSUER)
        .service_user(USER, keys.user_es256.public_key())
        .service_user(USER, keys.user_eddsa.public_key())
        .service_user(USER, keys.user_rs256.public_key())
        .client_secret(BASIC_CLIENT, BASIC_SECRET, SecretMethod::Basic)
        .client_secret(POST_CLIENT, POST_SECRET, SecretMethod::Post)
        .client_key(KEY_CLIENT, keys.client.public_key())
        .personal_access_token(PAT)
        .token_lifetime(Duration::from_secs(300))
        .seed(42)
}

fn server() -> MockServer {
    builder().build()
}

fn now() -> Now {
    Now::new(Instant::now(), UNIX_EPOCH + Duration::from_secs(T0))
}

// ----- request builders -----

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn token_request(body: &str) -> Request<Vec<u8>> {
    Request::post(TOKEN_ENDPOINT)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.as_bytes().to_vec())
        .unwrap()
}

fn with_header(mut request: Request<Vec<u8>>, name: &'static str, value: &str) -> Request<Vec<u8>> {
    request.headers_mut().append(name, value.parse().unwrap());
    request
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic(id: &str, secret: &str) -> String {
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

fn grant_claims(key_time: u64) -> AssertionClaims {
    AssertionClaims {
        iss: USER.into(),
        sub: USER.into(),
        aud: ISSUER.into(),
        iat: key_time,
        exp: key_time + 3600,
        jti: None,
    }
}

/// A jwt-bearer grant request signed by the real assertion code.
fn grant_request(
    key: &SigningKey,
    claims: &AssertionClaims,
    scope: Option<&str>,
) -> Request<Vec<u8>> {
    let signed = assertion::sign(key, claims).unwrap();
    let mut pairs = vec![("grant_type", JWT_BEARER), ("assertion", signed.secret())];
    if let Some(scope) = scope {
        pairs.push(("scope", scope));
    }
    token_request(&form(&pairs))
}

fn client_claims(aud: &str, jti: &str) -> AssertionClaims {
    AssertionClaims {
        iss: KEY_CLIENT.into(),
        sub: KEY_CLIENT.into(),
        aud: aud.into(),
        iat: T0,
        exp: T0 + 300,
        jti: Some(jti.into()),
    }
}

fn client_assertion_request(client_assertion: &str) -> Request<Vec<u8>> {
    token_request(&form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", client_assertion),
    ]))
}

/// A JWS with any header and claims, signed by `key`: for assertions the
/// real signer would never produce.
fn hand_jwt(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    let input = format!("{}.{}", encode(header), encode(claims));
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn es256_header() -> Value {
    json!({"alg": "ES256", "kid": "user-es256", "typ": "JWT"})
}

fn grant_json(claims: &Value) -> Request<Vec<u8>> {
    let jwt = hand_jwt(&KEYS.user_es256, &es256_header(), claims);
    token_request(&form(&[("grant_type", JWT_BEARER), ("assertion", &jwt)]))
}

fn good_grant_claims() -> Value {
    json!({"iss": USER, "sub": USER, "aud": ISSUER, "iat": T0, "exp": T0 + 600})
}

// ----- response readers -----

fn json_body(response: &Response<Vec<u8>>) -> Value {
    serde_json::from_slice(response.body()).unwrap()
}

fn access_token(response: &Response<Vec<u8>>) -> String {
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{:?}",
        json_body(response)
    );
    json_body(response)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Checks an RFC 6749 §5.2 error and returns its description; the body must
/// repeat none of `secrets`.
fn rejected(
    response: &Response<Vec<u8>>,
    status: StatusCode,
    code: &str,
    secrets: &[&str],
) -> String {
    let body = json_body(response);
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    if status == StatusCode::UNAUTHORIZED {
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }
    let text = String::from_utf8_lossy(response.body());
    for secret in secrets {
        assert!(!text.contains(secret), "the error repeats a secret: {text}");
    }
    let description = body["error_description"].as_str().unwrap().to_owned();
    assert!(
        description
            .chars()
            .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')),
        "error_description outside RFC 6749 §5.2: {description}"
    );
    description
}

/// Sends `request` and expects the RFC 6749 §5.2 error `code` (401 for
/// `invalid_client`, else 400); returns its description.
fn refused(server: &MockServer, request: Request<Vec<u8>>, code: &str, secrets: &[&str]) -> String {
    let status = if code == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    rejected(&server.handle(request, now()), status, code, secrets)
}

fn bearer_request(server: &MockServer, token: &str) -> Request<Vec<u8>> {
    Request::get(server.resource_url())
        .header("authorization", format!("Bearer {token}"))
        .body(Vec::new())
        .unwrap()
}

// ===== acceptance =====

#[test]
fn jwt_bearer_grant_with_the_real_signer_issues_a_token() {
    let server = server();
    let now = now();
    let request = grant_request(&KEYS.user_es256, &grant_claims(T0), Some("openid profile"));
    let response = server.handle(request, now);

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["date"], "Tue, 14 Nov 2023 22:13:20 GMT");
    let body = json_body(&response);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "openid profile");
    assert_eq!(body["access_token"].as_str().unwrap().len(), 32);
    assert_eq!(server.issued_tokens(), 1);
    assert_eq!(server.token_requests(), 1);
}

#[test]
fn every_key_of_a_user_is_accepted_for_rotation() {
    let server = server();
    for key in [&KEYS.user_es256, &KEYS.user_eddsa, &KEYS.user_rs256] {
        let response = server.handle(grant_request(key, &grant_claims(T0), None), now());
        let body = json_body(&response);
        assert_eq!(response.status(), StatusCode::OK, "{} {body}", key.key_id());
        assert!(
            body.get("scope").is_none(),
            "no scope requested, none granted"
        );
    }
    assert_eq!(server.issued_tokens(), 3);
}

#[test]
fn assertion_audience_may_be_an_array_and_iat_may_be_one_second_ahead() {
    let server = server();
    let mut claims = good_grant_claims();
    claims["aud"] = json!(["https://other.example", ISSUER]);
    claims["iat"] = json!(T0 + 1);
    let response = server.handle(grant_json(&claims), now());
    access_token(&response);
}

#[test]
fn client_secret_basic_form_urlencodes_before_base64() {
    let server = server();
    let request = token_request("grant_type=client_credentials&scope=email");
    let request = with_header(request, "authorization", &basic(BASIC_CLIENT, BASIC_SECRET));
    let response = server.handle(request, now());
    access_token(&response);
    assert_eq!(json_body(&response)["scope"], "email");

    let recorded = server.requests().pop().unwrap();
    assert_eq!(
        recorded.client_auth,
        Some(ClientAuthMethod::ClientSecretBasic)
    );
    assert_eq!(recorded.client_id.as_deref(), Some(BASIC_CLIENT));
}

#[test]
fn client_secret_basic_accepts_a_matching_client_id_in_the_body() {
    let server = server();
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", BASIC_CLIENT),
    ]);
    let request = with_header(
        token_request(&body),
        "authorization",
        &basic(BASIC_CLIENT, BASIC_SECRET),
    );
    access_token(&server.handle(request, now()));
}

#[test]
fn client_secret_post_is_accepted() {
    let server = server();
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT),
        ("client_secret", POST_SECRET),
    ]);
    access_token(&server.handle(token_request(&body), now()));
    assert_eq!(
        server.requests()[0].client_auth,
        Some(ClientAuthMethod::ClientSecretPost)
    );
}

#[test]
fn private_key_jwt_accepts_the_token_endpoint_or_the_issuer_by_default() {
    let server = server();
    for (aud, jti) in [(TOKEN_ENDPOINT, "jti-1"), (ISSUER, "jti-2")] {
        let signed = assertion::sign(&KEYS.client, &client_claims(aud, jti)).unwrap();
        access_token(&server.handle(client_assertion_request(signed.secret()), now()));
    }
    let recorded = server.requests().pop().unwrap();
    assert_eq!(recorded.client_auth, Some(ClientAuthMethod::PrivateKeyJwt));
    assert_eq!(recorded.client_id.as_deref(), Some(KEY_CLIENT));
    assert_eq!(recorded.key_id.as_deref(), Some("client-key"));
}

#[test]
fn audience_rule_token_endpoint_refuses_the_issuer_and_the_reverse() {
    let strict = builder()
        .client_assertion_audience(AudienceRule::TokenEndpoint)
        .build();
    let issuer_only = builder()
        .client_assertion_audience(AudienceRule::Issuer)
        .build();
    let to_issuer = assertion::sign(&KEYS.client, &client_claims(ISSUER, "a")).unwrap();
    let to_endpoint = assertion::sign(&KEYS.client, &client_claims(TOKEN_ENDPOINT, "b")).unwrap();

    let response = strict.handle(client_assertion_request(to_issuer.secret()), now());
    let description = rejected(
        &response,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        &[to_issuer.secret()],
    );
    assert!(description.contains(TOKEN_ENDPOINT), "{description}");
    access_token(&strict.handle(client_assertion_request(to_endpoint.secret()), now()));

    let response = issuer_only.handle(client_assertion_request(to_endpoint.secret()), now());
    rejected(
        &response,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        &[to_endpoint.secret()],
    );
    access_token(&issuer_only.handle(client_assertion_request(to_issuer.secret()), now()));
}

#[test]
fn content_type_parameters_are_allowed() {
    let server = server();
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT),
        ("client_secret", POST_SECRET),
    ]);
    let mut request = token_request(&body);
    request.headers_mut().insert(
        "content-type",
        "Application/X-WWW-Form-URLEncoded; charset=UTF-8"
            .parse()
            .unwrap(),
    );
    access_token(&server.handle(request, now()));
}

#[test]
fn same_seed_issues_the_same_tokens() {
    let first = server();
    let second = server();
    let other = builder().seed(43).build();
    let request = || grant_request(&KEYS.user_eddsa, &grant_claims(T0), None);
    let a = access_token(&first.handle(request(), now()));
    assert_eq!(a, access_token(&second.handle(request(), now())));
    assert_ne!(a, access_token(&other.handle(request(), now())));
}

#[test]
fn discovery_document_names_the_issuer_and_the_token_endpoint() {
    let server = server();
    let request = Request::get(server.discovery_url())
        .body(Vec::new())
        .unwrap();
    let response = server.handle(request, now());
    assert_eq!(response.status(), StatusCode::OK);
    let document = json_body(&response);
    assert_eq!(document["issuer"], ISSUER);
    assert_eq!(document["token_endpoint"], TOKEN_ENDPOINT);
    assert_eq!(
        document["grant_types_supported"],
        json!(["client_credentials", JWT_BEARER])
    );
    assert_eq!(
        document["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        document["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA"])
    );

    let post = Request::post(server.discovery_url())
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        server.handle(post, now()).status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[test]
fn issuer_is_normalised_and_requests_to_other_hosts_are_not_found() {
    let server = MockServer::builder("HTTPS://Mock.Service-Auth.Test:443/").build();
    assert_eq!(server.issuer(), ISSUER);
    assert_eq!(server.token_endpoint(), TOKEN_ENDPOINT);

    let elsewhere = Request::get("https://evil.example/.well-known/openid-configuration")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        server.handle(elsewhere, now()).status(),
        StatusCode::NOT_FOUND
    );
    let plain_http = Request::get("http://mock.service-auth.test/.well-known/openid-configuration")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        server.handle(plain_http, now()).status(),
        StatusCode::NOT_FOUND
    );
    let origin_form = Request::get("/.well-known/openid-configuration")
        .body(Vec::new())
        .unwrap();
    assert_eq!(server.handle(origin_form, now()).status(), StatusCode::OK);
}

#[test]
fn issuer_with_a_path_prefixes_every_endpoint() {
    let server = MockServer::builder("https://idp.example/realms/test").build();
    assert_eq!(
        server.token_endpoint(),
        "https://idp.example/realms/test/oauth/v2/token"
    );
    let request = Request::get(server.discovery_url())
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        json_body(&server.handle(request, now()))["issuer"],
        "https://idp.example/realms/test"
    );
    let outside = Request::get("https://idp.example/.well-known/openid-configuration")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        server.handle(outside, now()).status(),
        StatusCode::NOT_FOUND
    );
}

// ===== request-level rejections =====

#[test]
fn token_endpoint_accepts_post_only() {
    let server = server();
    let request = Request::get(TOKEN_ENDPOINT).body(Vec::new()).unwrap();
    let response = server.handle(request, now());
    rejected(
        &response,
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        &[],
    );
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(server.token_requests(), 0, "a GET is not a token request");
}

#[test]
fn content_type_must_be_form_urlencoded() {
    let server = server();
    let body = form(&[("grant_type", "client_credentials")]);
    let mut json_request = token_request(&body);
    json_request
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    let description = refused(&server, json_request, "invalid_request", &[]);
    assert!(
        description.contains("application/x-www-form-urlencoded"),
        "{description}"
    );

    let mut missing = token_request(&body);
    missing.headers_mut().remove("content-type");
    refused(&server, missing, "invalid_request", &[]);
}

#[test]
fn repeated_parameters_are_refused() {
    let server = server();
    let body = format!(
        "{}&client_secret={POST_SECRET}",
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", POST_CLIENT),
            ("client_secret", POST_SECRET)
        ])
    );
    let description = refused(
        &server,
        token_request(&body),
        "invalid_request",
        &[POST_SECRET],
    );
    assert!(description.contains("client_secret"), "{description}");
}

#[test]
fn parameters_in_the_query_are_refused() {
    let server = server();
    let mut request = token_request(&form(&[("grant_type", "client_credentials")]));
    *request.uri_mut() = format!("{TOKEN_ENDPOINT}?client_secret=x").parse().unwrap();
    refused(&server, request, "invalid_request", &[]);
}

#[test]
fn missing_and_unknown_grant_types_are_refused() {
    let server = server();
    let missing = token_request(&form(&[("scope", "openid")]));
    refused(&server, missing, "invalid_request", &[]);

    let body = form(&[
        ("grant_type", "password"),
        ("client_id", POST_CLIENT),
        ("client_secret", POST_SECRET),
    ]);
    let description = refused(
        &server,
        token_request(&body),
        "unsupported_grant_type",
        &[POST_SECRET],
    );
    assert!(description.contains("`password`"), "{description}");
}

#[test]
fn a_client_may_not_use_the_jwt_bearer_grant() {
    let server = server();
    let signed = assertion::sign(&KEYS.user_es256, &grant_claims(T0)).unwrap();
    let body = form(&[
        ("grant_type", JWT_BEARER),
        ("assertion", signed.secret()),
        ("client_id", POST_CLIENT),
        ("client_secret", POST_SECRET),
    ]);
    refused(
        &server,
        token_request(&body),
        "unauthorized_client",
        &[POST_SECRET, signed.secret()],
    );
}

#[test]
fn scopes_must_be_allowed_and_well_formed() {
    let server = server();
    let request = grant_request(&KEYS.user_es256, &grant_claims(T0), Some("openid admin"));
    let description = refused(&server, request, "invalid_scope", &[]);
    assert!(description.contains("`admin`"), "{description}");

    let request = grant_request(&KEYS.user_es256, &grant_claims(T0), Some("openid  profile"));
    refused(&server, request, "invalid_scope", &[]);

    let custom = builder().allowed_scopes(["admin"]).build();
    let request = grant_request(&KEYS.user_es256, &grant_claims(T0), Some("admin"));
    access_token(&custom.handle(request, now()));
    let request = grant_request(&KEYS.user_es256, &grant_claims(T0), Some("openid"));
    refused(&custom, request, "invalid_scope", &[]);
}

// ===== jwt-bearer rejections =====

/// Sends a jwt-bearer grant with these claims and expects `invalid_grant`.
fn grant_refused(claims: &Value) -> String {
    let server = server();
    let jwt = hand_jwt(&KEYS.user_es256, &es256_header(), claims);
    let request = token_request(&form(&[("grant_type", JWT_BEARER), ("assertion", &jwt)]));
    let description = refused(&server, request, "invalid_grant", &[&jwt]);
    assert_eq!(server.issued_tokens(), 0);
    description
}

#[test]
fn hand_built_assertion_with_good_claims_is_accepted() {
    // The baseline of the rejections below: only the named claim differs.
    access_token(&server().handle(grant_json(&good_grant_claims()), now()));
}

#[test]
fn assertion_is_required_and_must_be_a_jws() {
    let server = server();
    let missing = token_request(&form(&[("grant_type", JWT_BEARER)]));
    refused(&server, missing, "invalid_request", &[]);
    for garbage in ["not-a-jwt", "a.b.c", "e30.e30.", "e30.e30.e30.e30"] {
        let request = token_request(&form(&[("grant_type", JWT_BEARER), ("assertion", garbage)]));
        let description = refused(&server, request, "invalid_grant", &[]);
        assert!(description.contains("compact JWS"), "{description}");
    }
}

#[test]
fn unknown_key_id_is_refused_and_the_registered_ones_are_named() {
    let server = server();
    let jwt = hand_jwt(
        &KEYS.user_es256,
        &json!({"alg": "ES256", "kid": "retired-key"}),
        &good_grant_claims(),
    );
    let request = token_request(&form(&[("grant_type", JWT_BEARER), ("assertion", &jwt)]));
    let description = refused(&server, request, "invalid_grant", &[&jwt]);
    assert!(description.contains("`retired-key`"), "{description}");
    assert!(description.contains("`user-es256`"), "{description}");
    assert_eq!(server.requests()[0].key_id.as_deref(), Some("retired-key"));
}

#[test]
fn missing_key_id_is_refused() {
    let server = server();
    let jwt = hand_jwt(
        &KEYS.user_es256,
        &json!({"alg": "ES256"}),
        &good_grant_claims(),
    );
    let request = token_request(&form(&[("grant_type", JWT_BEARER), ("assertion", &jwt)]));
    let description = refused(&server, request, "invalid_grant", &[&jwt]);
    assert!(description.contains("kid"), "{description}");
}

#[test]
fn signature_by_another_key_with_the_same_id_is_refused() {
    let server = server();
    let request = grant_request(&KEYS.stranger, &grant_claims(T0), None);
    let description = refused(&server, request, "invalid_grant", &[]);
    assert!(description.contains("signature"), "{description}");
}

#[test]
fn tampered_claims_are_refused() {
    let server = server();
    let signed = assertion::sign(&KEYS.user_es256, &grant_claims(T0)).unwrap();
    let parts: Vec<&str> = signed.secret().split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["exp"] = json!(T0 + 86_400 * 365);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let request = token_request(&form(&[("grant_type", JWT_BEARER), ("assertion", &forged)]));
    refused(&server, request, "invalid_grant", &[&forged]);
}

#[test]
fn algorithm_must_match_the_key() {
    let server = server();
    for alg in ["RS256", "none", "HS256"] {
        let jwt = hand_jwt(
            &KEYS.user_es256,
            &json!({"alg": alg, "kid": "user-es256"}),
            &good_grant_claims(),
        );
        let request = token_request(&form(&[("grant_type", JWT_BEARER), ("assertion", &jwt)]));
        refused(&server, request, "invalid_grant", &[&jwt]);
    }
}

#[test]
fn crit_and_foreign_typ_headers_are_refused() {
    let server = server();
    for header in [
        json!({"alg": "ES256", "kid": "user-es256", "crit": ["exp"]}),
        json!({"alg": "ES256", "kid": "user-es256", "typ": "at+jwt"}),
    ] {
        let jwt = hand_jwt(&KEYS.user_es256, &header, &good_grant_claims());
        let request = token_request(&form(&[("grant_type", JWT_BEARER), ("assertion", &jwt)]));
        refused(&server, request, "invalid_grant", &[&jwt]);
    }
}

#[test]
fn issuer_and_subject_must_be_the_same_registered_user() {
    let mut claims = good_grant_claims();
    claims["iss"] = json!("someone-else");
    assert!(grant_refused(&claims).contains("differ"));

    let mut claims = good_grant_claims();
    claims["iss"] = json!("unknown-user");
    claims["sub"] = json!("unknown-user");
    assert!(grant_refused(&claims).contains("not registered"));

    let mut claims = good_grant_claims();
    claims.as_object_mut().unwrap().remove("sub");
    grant_refused(&claims);
}

#[test]
fn audience_must_contain_the_issuer_exactly() {
    for aud in [
        json!(format!("{ISSUER}/")),
        json!(TOKEN_ENDPOINT),
        json!("mock.service-auth.test"),
        json!([]),
        json!(42),
    ] {
        let mut claims = good_grant_claims();
        claims["aud"] = aud;
        let description = grant_refused(&claims);
        assert!(description.contains("aud"), "{description}");
    }
    let mut claims = good_grant_claims();
    claims.as_object_mut().unwrap().remove("aud");
    grant_refused(&claims);
}

#[test]
fn expiry_is_required_and_must_lie_ahead() {
    let mut claims = good_grant_claims();
    claims.as_object_mut().unwrap().remove("exp");
    assert!(grant_refused(&claims).contains("exp"));

    let mut claims = good_grant_claims();
    claims["exp"] = json!(T0);
    assert!(grant_refused(&claims).contains("expired"));

    let mut claims = good_grant_claims();
    claims["exp"] = json!("1700000600");
    grant_refused(&claims);
}

#[test]
fn issued_at_is_required_and_at_most_one_second_ahead() {
    let mut claims = good_grant_claims();
    claims.as_object_mut().unwrap().remove("iat");
    assert!(grant_refused(&claims).contains("iat"));

    let mut claims = good_grant_claims();
    claims["iat"] = json!(T0 + 2);
    let description = grant_refused(&claims);
    assert!(
        description.contains("issued in the future"),
        "{description}"
    );
    assert!(description.contains("2 s ahead"), "{description}");
}

#[test]
fn issued_at_more_than_an_hour_ago_is_refused() {
    let mut claims = good_grant_claims();
    claims["iat"] = json!(T0 - 3601);
    assert!(grant_refused(&claims).contains("1 h"));

    let mut claims = good_grant_claims();
    claims["iat"] = json!(T0 - 3600);
    access_token(&server().handle(grant_json(&claims), now()));
}

#[test]
fn not_before_in_the_future_is_refused() {
    let mut claims = good_grant_claims();
    claims["nbf"] = json!(T0 + 60);
    grant_refused(&claims);
}

// ===== client authentication rejections =====

#[test]
fn client_credentials_without_authentication_is_refused() {
    let server = server();
    let anonymous = token_request(&form(&[("grant_type", "client_credentials")]));
    refused(&server, anonymous, "invalid_client", &[]);

    let id_only = token_request(&form(&[
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT),
    ]));
    refused(&server, id_only, "invalid_client", &[]);
}

#[test]
fn wrong_secret_is_refused_without_repeating_it() {
    let server = server();
    let wrong = "not-the-secret";
    let request = with_header(
        token_request("grant_type=client_credentials"),
        "authorization",
        &basic(BASIC_CLIENT, wrong),
    );
    let description = refused(&server, request, "invalid_client", &[wrong, BASIC_SECRET]);
    assert!(description.contains("wrong client secret"), "{description}");

    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT),
        ("client_secret", wrong),
    ]);
    refused(
        &server,
        token_request(&body),
        "invalid_client",
        &[wrong, POST_SECRET],
    );
}

#[test]
fn basic_credentials_without_form_urlencoding_are_refused() {
    let server = server();
    // The classic bug: base64(id ":" secret) with the raw secret.
    let raw = format!(
        "Basic {}",
        STANDARD.encode(format!("{BASIC_CLIENT}:{BASIC_SECRET}"))
    );
    let request = with_header(
        token_request("grant_type=client_credentials"),
        "authorization",
        &raw,
    );
    let description = refused(&server, request, "invalid_client", &[BASIC_SECRET]);
    assert!(description.contains("form-urlencoded"), "{description}");
}

#[test]
fn malformed_basic_credentials_are_refused_with_a_challenge() {
    let server = server();
    let no_colon = format!("Basic {}", STANDARD.encode("just-an-id"));
    for header in [
        "Basic !!!not-base64",
        no_colon.as_str(),
        "Bearer sometoken",
        "Basic",
    ] {
        let request = with_header(
            token_request("grant_type=client_credentials"),
            "authorization",
            header,
        );
        let response = server.handle(request, now());
        rejected(
            &response,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &["sometoken", "not-base64"],
        );
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"mock\""
        );
    }
}

#[test]
fn two_authentication_methods_at_once_are_refused() {
    let server = server();
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT),
        ("client_secret", POST_SECRET),
    ]);
    let request = with_header(
        token_request(&body),
        "authorization",
        &basic(BASIC_CLIENT, BASIC_SECRET),
    );
    let description = refused(
        &server,
        request,
        "invalid_request",
        &[POST_SECRET, BASIC_SECRET],
    );
    assert!(description.contains("exactly one"), "{description}");

    let signed = assertion::sign(&KEYS.client, &client_claims(TOKEN_ENDPOINT, "j")).unwrap();
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", KEY_CLIENT),
        ("client_secret", "x"),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", signed.secret()),
    ]);
    refused(
        &server,
        token_request(&body),
        "invalid_request",
        &[signed.secret()],
    );
}

#[test]
fn method_must_match_the_registration() {
    let server = server();
    // A Basic client sending its secret in the body.
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", BASIC_CLIENT),
        ("client_secret", BASIC_SECRET),
    ]);
    let description = refused(
        &server,
        token_request(&body),
        "invalid_client",
        &[BASIC_SECRET],
    );
    assert!(description.contains("client_secret_basic"), "{description}");

    // A post client sending Basic credentials.
    let request = with_header(
        token_request("grant_type=client_credentials"),
        "authorization",
        &basic(POST_CLIENT, POST_SECRET),
    );
    refused(&server, request, "invalid_client", &[POST_SECRET]);

    // A key client sending a secret, and a secret client sending an assertion.
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", KEY_CLIENT),
        ("client_secret", "guess"),
    ]);
    refused(&server, token_request(&body), "invalid_client", &["guess"]);
    let mut claims = client_claims(TOKEN_ENDPOINT, "k");
    claims.iss = POST_CLIENT.into();
    claims.sub = POST_CLIENT.into();
    let signed = assertion::sign(&KEYS.client, &claims).unwrap();
    refused(
        &server,
        client_assertion_request(signed.secret()),
        "invalid_client",
        &[signed.secret()],
    );

    // An unknown client.
    let request = with_header(
        token_request("grant_type=client_credentials"),
        "authorization",
        &basic("nobody", "x"),
    );
    refused(&server, request, "invalid_client", &[]);
}

#[test]
fn client_assertion_type_is_required_and_checked() {
    let server = server();
    let signed = assertion::sign(&KEYS.client, &client_claims(TOKEN_ENDPOINT, "t")).unwrap();
    let missing_type = token_request(&form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion", signed.secret()),
    ]));
    refused(&server, missing_type, "invalid_request", &[signed.secret()]);

    let wrong_type = token_request(&form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", signed.secret()),
    ]));
    refused(&server, wrong_type, "invalid_client", &[signed.secret()]);

    let missing_assertion = token_request(&form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
    ]));
    refused(&server, missing_assertion, "invalid_request", &[]);
}

#[test]
fn replayed_client_assertion_is_refused() {
    let server = server();
    let signed = assertion::sign(&KEYS.client, &client_claims(TOKEN_ENDPOINT, "once")).unwrap();
    access_token(&server.handle(client_assertion_request(signed.secret()), now()));
    let description = refused(
        &server,
        client_assertion_request(signed.secret()),
        "invalid_client",
        &[signed.secret()],
    );
    assert!(description.contains("already used"), "{description}");
    assert_eq!(server.issued_tokens(), 1);

    // Another jti from the same client is fine.
    let fresh = assertion::sign(&KEYS.client, &client_claims(TOKEN_ENDPOINT, "twice")).unwrap();
    access_token(&server.handle(client_assertion_request(fresh.secret()), now()));
}

#[test]
fn client_assertion_claims_are_checked() {
    let server = server();
    let base = || {
        json!({
            "iss": KEY_CLIENT, "sub": KEY_CLIENT, "aud": TOKEN_ENDPOINT,
            "iat": T0, "exp": T0 + 60, "jti": "x",
        })
    };
    let header = json!({"alg": "EdDSA", "kid": "client-key"});
    let mut cases = Vec::new();
    for (claim, value) in [
        ("jti", Value::Null),
        ("jti", json!("")),
        ("exp", json!(T0 - 1)),
        ("iat", json!(T0 + 5)),
        ("aud", json!("https://elsewhere.example/token")),
        ("sub", json!("other-client")),
    ] {
        let mut claims = base();
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(claim);
        } else {
            claims[claim] = value;
        }
        cases.push((claim, hand_jwt(&KEYS.client, &header, &claims)));
    }
    for (claim, jwt) in &cases {
        let description = refused(
            &server,
            client_assertion_request(jwt),
            "invalid_client",
            &[jwt],
        );
        assert!(
            description.contains(claim) || description.contains("differ"),
            "{claim}: {description}"
        );
    }

    // client_id in the body must name the assertion's client.
    let jwt = hand_jwt(&KEYS.client, &header, &base());
    let request = token_request(&form(&[
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", &jwt),
    ]));
    refused(&server, request, "invalid_client", &[&jwt]);
    assert_eq!(server.issued_tokens(), 0);
}

// ===== faults =====

fn good_request() -> Request<Vec<u8>> {
    token_request(&form(&[
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT),
        ("client_secret", POST_SECRET),
    ]))
}

#[test]
fn replacing_faults_answer_without_issuing() {
    let server = server();
    server.push_faults([
        Fault::Status(StatusCode::SERVICE_UNAVAILABLE),
        Fault::RateLimited {
            retry_after: Duration::from_millis(1500),
        },
        Fault::Html,
        Fault::MalformedJson,
        Fault::EmptyBody,
        Fault::OAuthError("server_error"),
        Fault::OAuthError("invalid_client"),
    ]);

    let unavailable = server.handle(good_request(), now());
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        unavailable.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    let limited = server.handle(good_request(), now());
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "2");
    assert!(limited.body().is_empty());

    let html = server.handle(good_request(), now());
    assert_eq!(html.status(), StatusCode::OK);
    assert!(html.body().starts_with(b"<!DOCTYPE html>"));

    let malformed = server.handle(good_request(), now());
    assert_eq!(malformed.headers()["content-type"], "application/json");
    assert!(serde_json::from_slice::<Value>(malformed.body()).is_err());

    let empty = server.handle(good_request(), now());
    assert_eq!(empty.status(), StatusCode::OK);
    assert!(empty.body().is_empty());

    let server_error = server.handle(good_request(), now());
    assert_eq!(server_error.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&server_error)["error"], "server_error");
    let invalid_client = server.handle(good_request(), now());
    assert_eq!(invalid_client.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(server.issued_tokens(), 0);
    assert_eq!(server.token_requests(), 7);
    assert_eq!(server.pending_faults(), 0);
    // The fault queue is empty: the next request succeeds.
    access_token(&server.handle(good_request(), now()));
    let faults: Vec<_> = server.requests().iter().map(|r| r.fault.clone()).collect();
    assert_eq!(
        faults[0],
        Some(Fault::Status(StatusCode::SERVICE_UNAVAILABLE))
    );
    assert_eq!(faults[7], None);
    assert_eq!(server.requests()[5].error.as_deref(), Some("server_error"));
}

#[test]
fn replacing_faults_apply_to_invalid_requests_too() {
    let server = server();
    server.push_fault(Fault::Status(StatusCode::BAD_GATEWAY));
    let invalid = token_request("grant_type=nonsense");
    assert_eq!(
        server.handle(invalid, now()).status(),
        StatusCode::BAD_GATEWAY
    );
}

#[test]
fn bending_faults_alter_a_success() {
    let server = server();
    server.push_faults([
        Fault::WrongTokenType,
        Fault::MissingExpiresIn,
        Fault::ZeroExpiresIn,
        Fault::StringExpiresIn,
        Fault::TruncatedJson,
    ]);
    assert_eq!(
        json_body(&server.handle(good_request(), now()))["token_type"],
        "MAC"
    );
    assert!(
        json_body(&server.handle(good_request(), now()))
            .get("expires_in")
            .is_none()
    );
    assert_eq!(
        json_body(&server.handle(good_request(), now()))["expires_in"],
        0
    );
    assert_eq!(
        json_body(&server.handle(good_request(), now()))["expires_in"],
        "300"
    );
    let truncated = server.handle(good_request(), now());
    assert_eq!(truncated.status(), StatusCode::OK);
    let error = serde_json::from_slice::<Value>(truncated.body()).unwrap_err();
    assert!(error.is_eof());
    assert_eq!(server.issued_tokens(), 5);
}

#[test]
fn bending_faults_leave_a_rejection_alone_and_are_used_up() {
    let server = server();
    server.push_fault(Fault::WrongTokenType);
    let response = server.handle(token_request("grant_type=client_credentials"), now());
    rejected(&response, StatusCode::UNAUTHORIZED, "invalid_client", &[]);
    assert_eq!(server.pending_faults(), 0);
}

#[test]
fn repeated_faults_apply_in_order() {
    let server = server();
    server.push_faults(Fault::Status(StatusCode::INTERNAL_SERVER_ERROR).repeat(2));
    server.push_fault(Fault::ZeroExpiresIn);
    assert_eq!(server.pending_faults(), 3);
    assert_eq!(
        server.handle(good_request(), now()).status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        server.handle(good_request(), now()).status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        json_body(&server.handle(good_request(), now()))["expires_in"],
        0
    );
    assert_eq!(
        json_body(&server.handle(good_request(), now()))["expires_in"],
        300
    );

    server.push_fault(Fault::Html);
    server.clear_faults();
    access_token(&server.handle(good_request(), now()));
}

#[test]
fn faults_do_not_touch_discovery() {
    let server = server();
    server.push_fault(Fault::Status(StatusCode::SERVICE_UNAVAILABLE));
    let request = Request::get(server.discovery_url())
        .body(Vec::new())
        .unwrap();
    assert_eq!(server.handle(request, now()).status(), StatusCode::OK);
    assert_eq!(server.pending_faults(), 1);
}

#[test]
fn delay_is_reported_by_respond_and_not_applied_by_handle() {
    let server = server();
    server.push_fault(Fault::Delay(Duration::from_secs(3600)));
    let reply = server.respond(good_request(), now());
    assert_eq!(reply.delay, Some(Duration::from_secs(3600)));
    access_token(&reply.response);

    server.push_fault(Fault::Delay(Duration::from_secs(3600)));
    // Returns at once: handle has no clock to wait on.
    access_token(&server.handle(good_request(), now()));
}

// ===== recording =====

#[test]
fn every_request_is_recorded_in_order_without_secrets() {
    let server = server();
    let signed = assertion::sign(&KEYS.user_es256, &grant_claims(T0)).unwrap();
    let grant = token_request(&form(&[
        ("grant_type", JWT_BEARER),
        ("assertion", signed.secret()),
        ("scope", "openid"),
    ]));
    let token = access_token(&server.handle(grant, now()));
    server.handle(good_request(), now().advance(Duration::from_secs(1)));
    let basic_request = with_header(
        token_request("grant_type=client_credentials"),
        "authorization",
        &basic(BASIC_CLIENT, "wrong"),
    );
    server.handle(basic_request, now());
    server.handle(bearer_request(&server, &token), now());
    server.handle(
        Request::get(server.discovery_url())
            .body(Vec::new())
            .unwrap(),
        now(),
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(server.token_requests(), 3);
    assert_eq!(server.issued_tokens(), 2);

    let first = &requests[0];
    assert_eq!(first.method, http::Method::POST);
    assert_eq!(first.path, "/oauth/v2/token");
    assert_eq!(first.grant_type.as_deref(), Some(JWT_BEARER));
    assert_eq!(first.subject.as_deref(), Some(USER));
    assert_eq!(first.key_id.as_deref(), Some("user-es256"));
    assert_eq!(first.scope.as_deref(), Some("openid"));
    assert_eq!(first.client_auth, None);
    assert_eq!(first.status, StatusCode::OK);
    assert!(requests[1].at > first.at);
    assert_eq!(requests[1].client_id.as_deref(), Some(POST_CLIENT));
    assert_eq!(requests[2].status, StatusCode::UNAUTHORIZED);
    assert_eq!(requests[2].error.as_deref(), Some("invalid_client"));
    assert_eq!(requests[3].path, "/resource");
    assert_eq!(requests[3].client_id.as_deref(), Some(USER));
    assert_eq!(requests[4].path, "/.well-known/openid-configuration");

    let debug = format!("{requests:?}");
    for secret in [
        signed.secret(),
        token.as_str(),
        POST_SECRET,
        "wrong",
        BASIC_SECRET,
    ] {
        assert!(
            !debug.contains(secret),
            "recorded requests show a secret: {debug}"
        );
    }
}

#[test]
fn recording_limit_keeps_the_most_recent() {
    let server = builder().recording_limit(2).build();
    for _ in 0..3 {
        server.handle(good_request(), now());
    }
    server.handle(token_request("grant_type=password"), now());
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].grant_type.as_deref(), Some("password"));
    assert_eq!(server.token_requests(), 4);
}

// ===== resource endpoint =====

#[test]
fn resource_accepts_live_tokens_and_personal_access_tokens() {
    let server = server();
    let now = now();
    let token = access_token(&server.handle(good_request(), now));
    let response = server.handle(bearer_request(&server, &token), now);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(&response)["sub"], POST_CLIENT);

    let pat = server.handle(bearer_request(&server, PAT), now);
    assert_eq!(pat.status(), StatusCode::OK);
}

fn invalid_token(response: &Response<Vec<u8>>) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[test]
fn resource_refuses_expired_revoked_and_unknown_tokens() {
    let server = server();
    let now = now();
    let token = access_token(&server.handle(good_request(), now));
    let almost = now.advance(Duration::from_secs(299));
    assert_eq!(
        server
            .handle(bearer_request(&server, &token), almost)
            .status(),
        StatusCode::OK
    );
    invalid_token(&server.handle(
        bearer_request(&server, &token),
        now.advance(Duration::from_secs(300)),
    ));

    server.revoke_all();
    invalid_token(&server.handle(bearer_request(&server, &token), now));
    let later = access_token(&server.handle(good_request(), now));
    assert_eq!(
        server.handle(bearer_request(&server, &later), now).status(),
        StatusCode::OK
    );
    assert_eq!(
        server.handle(bearer_request(&server, PAT), now).status(),
        StatusCode::OK,
        "a PAT is not revoked"
    );

    invalid_token(&server.handle(bearer_request(&server, "unknown-token"), now));
    let recorded = server.requests().pop().unwrap();
    assert_eq!(recorded.error.as_deref(), Some("invalid_token"));
}

#[test]
fn resource_without_a_token_asks_for_one() {
    let server = server();
    let request = Request::get(server.resource_url())
        .body(Vec::new())
        .unwrap();
    let response = server.handle(request, now());
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"mock\""
    );

    let basic_auth = Request::get(server.resource_url())
        .header("authorization", basic(BASIC_CLIENT, BASIC_SECRET))
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        server.handle(basic_auth, now()).status(),
        StatusCode::BAD_REQUEST
    );
}

// ===== transports =====

#[test]
fn blocking_transport_reads_the_configured_clock() {
    let server = server();
    let clock = ManualClock::new(now());
    server.set_clock(clock.clone());
    let token = access_token(&BlockingTransport::send(&server, good_request()).unwrap());
    let response = BlockingTransport::send(&server, bearer_request(&server, &token)).unwrap();
    assert_eq!(response.headers()["date"], "Tue, 14 Nov 2023 22:13:20 GMT");
    assert_eq!(response.status(), StatusCode::OK);

    clock.advance(Duration::from_secs(300));
    invalid_token(&BlockingTransport::send(&server, bearer_request(&server, &token)).unwrap());
}

#[test]
fn blocking_transport_answers_after_a_delay() {
    let server = server();
    server.set_clock(ManualClock::new(now()));
    server.push_fault(Fault::Delay(Duration::from_millis(20)));
    access_token(&BlockingTransport::send(&server, good_request()).unwrap());
}

#[tokio::test]
async fn async_transport_reads_the_configured_clock_and_waits_out_a_delay() {
    let server = server();
    let clock = ManualClock::new(now());
    server.set_clock(clock.clone());
    server.push_fault(Fault::Delay(Duration::from_millis(20)));
    let token = access_token(&Transport::send(&server, good_request()).await.unwrap());

    clock.advance(Duration::from_secs(300));
    let response = Transport::send(&server, bearer_request(&server, &token))
        .await
        .unwrap();
    invalid_token(&response);
}

#[tokio::test(flavor = "current_thread")]
async fn a_delayed_answer_waits_without_blocking_the_runtime() {
    let server = server();
    server.set_clock(ManualClock::new(now()));
    server.push_fault(Fault::Delay(Duration::from_secs(3600)));
    // Were the delay a blocking sleep, this single-threaded runtime could not
    // fire the timeout, and the test would hang for an hour.
    let send = Transport::send(&server, good_request());
    let outcome = tokio::time::timeout(Duration::from_millis(10), send).await;
    assert!(outcome.is_err(), "the delayed answer arrived early");
    assert_eq!(server.token_requests(), 1);

    let discovery = Request::get(server.discovery_url())
        .body(Vec::new())
        .unwrap();
    let answer = Transport::send(&server, discovery).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

// ===== loopback serving =====

/// Reads one HTTP/1.1 response: status, lowercase headers, body.
fn read_response(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let (status, headers) = read_response_head(reader);
    let length: usize = header(&headers, "content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, headers, body)
}

/// Reads the status line and the header fields of a response.
fn read_response_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line
        .split(' ')
        .nth(1)
        .expect("a status line")
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let field = line.trim_end();
        if field.is_empty() {
            break;
        }
        let (name, value) = field.split_once(':').unwrap();
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    (status, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn post_bytes(path: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\
         content-type: application/x-www-form-urlencoded\r\n\
         content-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn connect(handle: &service_auth::mock::ServeHandle) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(handle.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

#[test]
fn loopback_server_has_its_own_url_as_issuer() {
    let (server, handle) = builder().serve_loopback().unwrap();
    assert!(handle.local_addr().ip().is_loopback());
    assert_eq!(
        handle.base_url(),
        format!("http://127.0.0.1:{}", handle.local_addr().port())
    );
    assert_eq!(server.issuer(), handle.base_url());
    assert_eq!(handle.server().issuer(), server.issuer());

    let (mut stream, mut reader) = connect(&handle);
    stream
        .write_all(b"GET /.well-known/openid-configuration HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (status, headers, body) = read_response(&mut reader);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "connection"), Some("keep-alive"));
    assert!(header(&headers, "date").is_some());
    let document: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(document["issuer"], handle.base_url());
    assert_eq!(
        document["token_endpoint"],
        format!("{}/oauth/v2/token", handle.base_url())
    );
}

#[test]
fn loopback_connection_is_kept_alive_across_requests() {
    let (server, handle) = builder().serve_loopback().unwrap();
    let (mut stream, mut reader) = connect(&handle);
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT),
        ("client_secret", POST_SECRET),
    ]);
    stream
        .write_all(&post_bytes("/oauth/v2/token", &body, ""))
        .unwrap();
    let (status, _, answer) = read_response(&mut reader);
    assert_eq!(status, 200);
    let token = serde_json::from_slice::<Value>(&answer).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Two pipelined requests on the same connection.
    let resource = format!(
        "GET /resource HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\r\n"
    );
    stream
        .write_all(format!("{resource}{resource}").as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut reader).0, 200);
    assert_eq!(read_response(&mut reader).0, 200);

    assert_eq!(handle.accepted_connections(), 1);
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.issued_tokens(), 1);
}

#[test]
fn loopback_serve_keeps_a_configured_issuer() {
    let server = server();
    let handle = server.serve_loopback().unwrap();
    assert_eq!(server.issuer(), ISSUER);
    let (mut stream, mut reader) = connect(&handle);
    stream
        .write_all(
            b"HEAD /.well-known/openid-configuration HTTP/1.1\r\n\
              host: 127.0.0.1\r\nconnection: close\r\n\r\n",
        )
        .unwrap();
    let (status, headers) = read_response_head(&mut reader);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "connection"), Some("close"));
    assert_ne!(header(&headers, "content-length"), Some("0"));
    let mut rest = Vec::new();
    // HEAD: no body follows, and the server closes as asked.
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn loopback_refuses_chunked_and_oversized_bodies() {
    let (_server, handle) = builder().serve_loopback().unwrap();
    let (mut stream, mut reader) = connect(&handle);
    stream
        .write_all(
            b"POST /oauth/v2/token HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n\
              5\r\nhello\r\n0\r\n\r\n",
        )
        .unwrap();
    let (status, headers, body) = read_response(&mut reader);
    assert_eq!(status, 411);
    assert_eq!(header(&headers, "connection"), Some("close"));
    assert!(String::from_utf8_lossy(&body).contains("chunked"));

    let (mut stream, mut reader) = connect(&handle);
    stream
        .write_all(b"POST /oauth/v2/token HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut reader).0, 413);
}

#[test]
fn loopback_answers_expect_continue_and_http_1_0() {
    let (_server, handle) = builder().serve_loopback().unwrap();
    let (mut stream, mut reader) = connect(&handle);
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT),
        ("client_secret", POST_SECRET),
    ]);
    let head = format!(
        "POST /oauth/v2/token HTTP/1.1\r\nhost: x\r\n\
         content-type: application/x-www-form-urlencoded\r\n\
         content-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    reader.read_line(&mut line).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    assert_eq!(read_response(&mut reader).0, 200);

    let (mut stream, mut reader) = connect(&handle);
    stream
        .write_all(b"GET /.well-known/openid-configuration HTTP/1.0\r\n\r\n")
        .unwrap();
    let (status, headers, _) = read_response(&mut reader);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "connection"), Some("close"));
}

/// Waits until `condition` holds, failing after a generous deadline.
fn eventually(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn dropping_the_handle_closes_connections_and_cuts_delays_short() {
    let (server, handle) = builder().serve_loopback().unwrap();
    let addr = handle.local_addr();

    // An idle keep-alive connection, and one waiting out a long delay.
    let (_idle, mut idle_reader) = connect(&handle);
    server.push_fault(Fault::Delay(Duration::from_secs(3600)));
    let (mut delayed, mut delayed_reader) = connect(&handle);
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT),
        ("client_secret", POST_SECRET),
    ]);
    delayed
        .write_all(&post_bytes("/oauth/v2/token", &body, ""))
        .unwrap();
    eventually(|| server.token_requests() == 1);
    eventually(|| handle.open_connections() == 2);

    handle.shutdown();

    let mut rest = Vec::new();
    assert_eq!(idle_reader.read_to_end(&mut rest).unwrap_or(0), 0);
    assert_eq!(delayed_reader.read_to_end(&mut rest).unwrap_or(0), 0);
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    // The server outlives its handle.
    assert_eq!(server.issued_tokens(), 1);
}

#[test]
fn async_and_loopback_use_the_same_state() {
    let (server, handle) = builder().serve_loopback().unwrap();
    let (mut stream, mut reader) = connect(&handle);
    let request = Request::get(server.resource_url())
        .header("authorization", format!("Bearer {PAT}"))
        .body(Vec::new())
        .unwrap();
    assert_eq!(server.handle(request, now()).status(), StatusCode::OK);
    stream
        .write_all(
            format!("GET /resource HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {PAT}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(read_response(&mut reader).0, 200);
    assert_eq!(server.requests().len(), 2);
}

// ===== concurrency and logs =====

#[test]
fn server_is_a_shareable_handle() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<MockServer>();
}

#[test]
fn concurrent_requests_get_distinct_tokens() {
    let server = server();
    server.set_clock(ManualClock::new(now()));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|_| {
                        access_token(&BlockingTransport::send(&server, good_request()).unwrap())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut tokens: Vec<String> = threads
        .into_iter()
        .flat_map(|thread| thread.join().unwrap())
        .collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 200);
    assert_eq!(server.issued_tokens(), 200);
    assert_eq!(server.token_requests(), 200);
    assert_eq!(server.requests().len(), 200);
}

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn logs_show_no_secret_at_any_level() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer({
            let capture = capture.clone();
            move || capture.clone()
        })
        .finish();
    let server = server();
    let signed = assertion::sign(&KEYS.user_es256, &grant_claims(T0)).unwrap();
    let client = assertion::sign(&KEYS.client, &client_claims(TOKEN_ENDPOINT, "log")).unwrap();
    let token = tracing::subscriber::with_default(subscriber, || {
        // A callsite first reached on another test thread, which has no
        // subscriber, caches "never": reach it here, then recompute the
        // interest with this thread's subscriber, and start the capture afresh.
        let warm_up = Request::get(server.discovery_url())
            .body(Vec::new())
            .unwrap();
        server.handle(warm_up, now());
        tracing::callsite::rebuild_interest_cache();
        capture.0.lock().unwrap().clear();

        let grant = token_request(&form(&[
            ("grant_type", JWT_BEARER),
            ("assertion", signed.secret()),
        ]));
        let token = access_token(&server.handle(grant, now()));
        server.handle(client_assertion_request(client.secret()), now());
        server.handle(good_request(), now());
        let basic_request = with_header(
            token_request("grant_type=client_credentials"),
            "authorization",
            &basic(BASIC_CLIENT, BASIC_SECRET),
        );
        server.handle(basic_request, now());
        server.handle(bearer_request(&server, &token), now());
        server.handle(bearer_request(&server, PAT), now());
        token
    });

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert_eq!(logs.matches("mock server answered").count(), 6, "{logs}");
    let encoded_basic = basic(BASIC_CLIENT, BASIC_SECRET);
    for secret in [
        signed.secret(),
        client.secret(),
        token.as_str(),
        POST_SECRET,
        BASIC_SECRET,
        &encoded_basic[6..],
        PAT,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs: {logs}");
    }
}

#[test]
fn loopback_requires_a_host_header_on_http_1_1() {
    let (_server, handle) = builder().serve_loopback().unwrap();
    let (mut stream, mut reader) = connect(&handle);
    stream
        .write_all(b"GET /.well-known/openid-configuration HTTP/1.1\r\n\r\n")
        .unwrap();
    let (status, headers, _) = read_response(&mut reader);
    assert_eq!(status, 400);
    assert_eq!(header(&headers, "connection"), Some("close"));
}
