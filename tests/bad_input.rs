//! Every bad input gets an error that says what is wrong and how to fix it,
//! and never echoes the secret it was given (in `Display` or `Debug`).
#![cfg(feature = "mock")]

mod config_support;

use config_support::{ISSUER, TempDir, pem_chunks};
use service_auth::config::{Config, EnvError, Error, KeyFileProblem};
use service_auth::credentials::{Algorithm, KeyError};
use service_auth::secret::{ClientSecret, PersonalAccessToken};

const PLANTED: &str = "planted-secret-4f1c9a";

/// Checks the message names the problem and the fix, and that neither the
/// message nor `Debug` holds anything planted.
fn check(err: &Error, problem: &[&str], fix: &[&str], planted: &[&str]) {
    let message = err.to_string();
    let debug = format!("{err:?}");
    for needle in problem.iter().chain(fix) {
        assert!(
            message.contains(needle),
            "`{needle}` missing from: {message}"
        );
    }
    for secret in planted.iter().chain([&PLANTED]) {
        assert!(!message.contains(secret), "leak in message: {message}");
        assert!(!debug.contains(secret), "leak in Debug: {debug}");
    }
    assert!(
        message.chars().next().is_some_and(|c| !c.is_uppercase()) && !message.ends_with('.'),
        "lowercase, no trailing period: {message}"
    );
}

fn key_file_error(dir: &TempDir, contents: &str) -> Error {
    let path = dir.write("key", contents, 0o600);
    Config::private_key_jwt(ISSUER, path).resolve().unwrap_err()
}

fn test_key(name: &str) -> String {
    std::fs::read_to_string(format!("tests/data/keys/{name}")).expect("test key")
}

#[test]
fn malformed_key_json() {
    let dir = TempDir::new("bad");
    let account = config_support::service_account(Algorithm::Rs256, "k", "user-1");
    let truncated = &account.json[..account.json.len() / 2];
    let err = key_file_error(&dir, truncated);
    assert!(
        matches!(
            &err,
            Error::Key {
                reason: KeyError::InvalidJson { .. },
                ..
            }
        ),
        "{err}"
    );
    let chunks = pem_chunks(&account.pem);
    let planted: Vec<&str> = chunks.iter().map(String::as_str).collect();
    check(
        &err,
        &["not valid JSON"],
        &["check that the whole file was copied"],
        &planted,
    );

    let no_key_id = r#"{"type":"serviceaccount","key":"x","userId":"u"}"#;
    let err = key_file_error(&dir, no_key_id);
    check(&err, &["`keyId` must be"], &["the key id"], &[]);
}

#[test]
fn pem_of_the_wrong_kind() {
    let dir = TempDir::new("bad");
    for (file, problem, fix) in [
        (
            "test-only-certificate.pem",
            "holds a certificate",
            "give the private key",
        ),
        (
            "test-only-rsa2048-public.pem",
            "not a private key",
            "give the private key",
        ),
        (
            "test-only-encrypted-pkcs8.pem",
            "encrypted",
            "openssl pkcs8",
        ),
        (
            "test-only-p384-pkcs8.pem",
            "unsupported key type",
            "use an RSA key",
        ),
    ] {
        let pem = test_key(file);
        let err = key_file_error(&dir, &pem);
        let chunks = pem_chunks(&pem);
        let planted: Vec<&str> = chunks.iter().map(String::as_str).collect();
        check(&err, &[problem], &[fix], &planted);
    }
}

#[test]
fn a_valid_pem_key_without_a_key_id() {
    let dir = TempDir::new("bad");
    let pem = test_key("test-only-p256-pkcs8.pem");
    let err = key_file_error(&dir, &pem);
    assert!(
        matches!(
            &err,
            Error::KeyFileUse {
                problem: KeyFileProblem::PemWithoutKeyId,
                ..
            }
        ),
        "{err}"
    );
    let chunks = pem_chunks(&pem);
    let planted: Vec<&str> = chunks.iter().map(String::as_str).collect();
    check(
        &err,
        &["carries no key id"],
        &["as a JWK with `kid`"],
        &planted,
    );
}

#[test]
fn algorithm_and_key_mismatch() {
    let dir = TempDir::new("bad");
    let jwk = test_key("test-only-p256-jwk.json");
    let value: serde_json::Value = serde_json::from_str(&jwk).unwrap();
    let private = value["d"].as_str().unwrap().to_owned();
    let mismatched = jwk.replacen("\"kty\"", "\"alg\": \"RS256\", \"kty\"", 1);
    let path = dir.write("key.jwk", &mismatched, 0o600);
    let err = Config::private_key_jwt_client_key_file(ISSUER, "svc", path)
        .resolve()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Key {
                reason: KeyError::AlgorithmMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    check(
        &err,
        &["does not fit"],
        &["use a matching key"],
        &[&private],
    );

    let no_kid = jwk.replacen("\"kid\"", "\"x-kid\"", 1);
    let path = dir.write("nokid.jwk", &no_kid, 0o600);
    let err = Config::private_key_jwt_client_key_file(ISSUER, "svc", path)
        .resolve()
        .unwrap_err();
    check(&err, &["`kid` must be"], &[], &[&private]);
}

#[test]
fn empty_secrets() {
    let err = Config::client_credentials(ISSUER, "svc", ClientSecret::new(""))
        .resolve()
        .unwrap_err();
    check(
        &err,
        &["client secret is empty"],
        &["set it to the value"],
        &[],
    );

    let err = Config::from_vars([
        ("SERVICE_AUTH_ISSUER", ISSUER),
        ("SERVICE_AUTH_CLIENT_ID", "svc"),
        ("SERVICE_AUTH_CLIENT_SECRET", ""),
    ])
    .unwrap_err();
    check(
        &err,
        &["SERVICE_AUTH_CLIENT_SECRET is set but empty"],
        &["give it a value"],
        &[],
    );

    let dir = TempDir::new("bad");
    let path = dir.write("secret", "\n", 0o600);
    let err = Config::client_credentials_secret_file(ISSUER, "svc", &path)
        .resolve()
        .unwrap_err();
    check(&err, &["is empty"], &["write the value into it"], &[]);

    let token = format!("{PLANTED} \n");
    let err = Config::personal_access_token(None, PersonalAccessToken::new(token))
        .resolve()
        .unwrap_err();
    check(
        &err,
        &["characters an HTTP header cannot carry"],
        &["check it for a stray"],
        &[],
    );
}

#[test]
fn bad_urls() {
    let config = |url: &str| Config::client_credentials(url, "svc", ClientSecret::new(PLANTED));
    let cases = [
        (
            "auth.example.com",
            "is not an absolute URL",
            "expected a URL like",
        ),
        ("http://auth.example.com", "uses plain http", "use https"),
        (
            "ftp://auth.example.com",
            "has scheme `ftp`",
            "expected https",
        ),
        (
            "https://auth.example.com/?tenant=1",
            "has a query or fragment",
            "scheme, host and optional path",
        ),
        (
            "https://admin:planted-password@auth.example.com",
            "contains credentials",
            "remove them",
        ),
    ];
    for (url, problem, fix) in cases {
        let err = config(url).resolve().unwrap_err();
        assert!(matches!(err, Error::Url { .. }), "{err}");
        check(&err, &[problem], &[fix], &["planted-password"]);
    }
    let err = config(ISSUER)
        .token_endpoint("token")
        .resolve()
        .unwrap_err();
    check(
        &err,
        &["token endpoint `token`"],
        &["expected a URL like"],
        &[],
    );
}

#[test]
fn missing_and_conflicting_variables() {
    let err = Config::from_vars([("SERVICE_AUTH_ISSUER", ISSUER)]).unwrap_err();
    check(
        &err,
        &["no credentials"],
        &["set SERVICE_AUTH_KEY_FILE"],
        &[],
    );

    let err = Config::from_vars([
        ("SERVICE_AUTH_ISSUER", ISSUER),
        ("SERVICE_AUTH_CLIENT_SECRET", PLANTED),
    ])
    .unwrap_err();
    check(
        &err,
        &["SERVICE_AUTH_CLIENT_ID is not set"],
        &["set it to the client id"],
        &[],
    );

    let err = Config::from_vars([
        ("SERVICE_AUTH_TOKEN", PLANTED),
        ("SERVICE_AUTH_CLIENT_SECRET", "another-planted-value"),
    ])
    .unwrap_err();
    assert!(matches!(err, Error::Env(EnvError::Conflicting { .. })));
    check(
        &err,
        &["ambiguous"],
        &["keep the variables of one method only"],
        &["another-planted"],
    );

    let err = Config::from_vars([
        ("SERVICE_AUTH_TOKEN", "x"),
        ("SERVICE_AUTH_SECRET", PLANTED),
    ])
    .unwrap_err();
    check(
        &err,
        &["unknown variable SERVICE_AUTH_SECRET"],
        &["the known ones are"],
        &[],
    );
}

#[test]
fn a_key_file_that_does_not_exist() {
    let dir = TempDir::new("bad");
    let missing = dir.missing("key.json");
    let err = Config::private_key_jwt(ISSUER, &missing)
        .resolve()
        .unwrap_err();
    let path = missing.display().to_string();
    check(
        &err,
        &["cannot read the key file", &path],
        &["check the path"],
        &[],
    );
}

#[test]
fn a_key_file_that_is_not_text() {
    let dir = TempDir::new("bad");
    let path = dir.write("key.der", [0x30, 0x82, 0xff, 0xfe, 0x00], 0o600);
    let err = Config::private_key_jwt(ISSUER, &path)
        .resolve()
        .unwrap_err();
    check(
        &err,
        &["is not UTF-8 text"],
        &["write the value as text"],
        &[],
    );
}

#[test]
fn header_values_are_never_shown() {
    let err = Config::client_credentials(ISSUER, "svc", ClientSecret::new("s"))
        .header("x-api-key", format!("{PLANTED}\r\n"))
        .resolve()
        .unwrap_err();
    check(&err, &["has an invalid value"], &["visible ASCII"], &[]);
}

#[test]
fn an_issuer_is_required_where_it_is_the_audience() {
    let err = Config::from_vars([
        (
            "SERVICE_AUTH_TOKEN_ENDPOINT",
            "https://auth.example.com/token",
        ),
        ("SERVICE_AUTH_KEY_FILE", "/nonexistent"),
    ])
    .unwrap()
    .resolve()
    .unwrap_err();
    // The file is read first; with a readable key the issuer is the next need.
    assert!(matches!(err, Error::FileUnreadable { .. }), "{err}");

    let dir = TempDir::new("bad");
    let account = config_support::service_account(Algorithm::EdDsa, "k", "u");
    let path = dir.write("key.json", &account.json, 0o600);
    let err = Config::from_vars([
        (
            "SERVICE_AUTH_TOKEN_ENDPOINT",
            "https://auth.example.com/token",
        ),
        ("SERVICE_AUTH_KEY_FILE", path.to_str().unwrap()),
    ])
    .unwrap()
    .resolve()
    .unwrap_err();
    let chunks = pem_chunks(&account.pem);
    let planted: Vec<&str> = chunks.iter().map(String::as_str).collect();
    check(
        &err,
        &["has no issuer", "audience"],
        &["SERVICE_AUTH_ISSUER"],
        &planted,
    );
}
