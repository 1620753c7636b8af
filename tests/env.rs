//! `Config::from_vars`, the core of `from_env`: every method from variables,
//! incomplete and ambiguous sets, file variants and file permissions.
//!
//! The process environment is never touched: `set_var` is unsafe in
//! edition 2024 and races with other tests.
#![cfg(feature = "mock")]

mod config_support;

use config_support::{ISSUER, Spy, TempDir, assertion_audience};
use service_auth::config::{Config, EnvError, Error, KeyFileProblem, Profile};
use service_auth::credentials::{Algorithm, SigningKey};
use service_auth::mock::{ClientAuthMethod, MockServer, SecretMethod};

const CLIENT: &str = "svc";
const SECRET: &str = "s3cret-env-test";
const PAT: &str = "pat-env-0123456789";

/// A set of variables, as name and value.
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn vars<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn from(pairs: &[(&str, &str)]) -> Result<Config, Error> {
    Config::from_vars(vars(pairs))
}

fn env_error(pairs: &[(&str, &str)]) -> EnvError {
    match from(pairs) {
        Err(Error::Env(err)) => err,
        other => panic!("expected an environment error, got {other:?}"),
    }
}

fn secret_server(method: SecretMethod) -> MockServer {
    MockServer::builder(ISSUER)
        .client_secret(CLIENT, SECRET, method)
        .allowed_scopes(["read", "write"])
        .build()
}

#[test]
fn client_credentials_from_a_value_and_from_a_file() {
    let dir = TempDir::new("env");
    let file = dir.write("secret", format!("{SECRET}\n"), 0o600);
    let file = file.to_str().expect("utf-8 path");
    for secret in [
        ("SERVICE_AUTH_CLIENT_SECRET", SECRET),
        ("SERVICE_AUTH_CLIENT_SECRET_FILE", file),
    ] {
        let server = secret_server(SecretMethod::Basic);
        let config = from(&[
            ("SERVICE_AUTH_ISSUER", ISSUER),
            ("SERVICE_AUTH_CLIENT_ID", CLIENT),
            secret,
            ("HOME", "/root"),
        ])
        .expect("valid");
        assert_eq!(config.method_name(), "client credentials");
        config
            .build_blocking(server.clone())
            .expect("valid")
            .token()
            .expect("the trailing line break of the file is trimmed");
        let recorded = server.requests().into_iter().last().unwrap();
        assert_eq!(
            recorded.client_auth,
            Some(ClientAuthMethod::ClientSecretBasic)
        );
    }
}

#[test]
fn client_auth_post_and_scopes_reach_the_request() {
    let server = secret_server(SecretMethod::Post);
    let spy = Spy::new(server.clone());
    from(&[
        ("SERVICE_AUTH_ISSUER", ISSUER),
        ("SERVICE_AUTH_CLIENT_ID", CLIENT),
        ("SERVICE_AUTH_CLIENT_SECRET", SECRET),
        ("SERVICE_AUTH_CLIENT_AUTH", "post"),
        ("SERVICE_AUTH_SCOPES", "read  write"),
    ])
    .expect("valid")
    .build_blocking(spy.clone())
    .expect("valid")
    .token()
    .expect("a token");
    let form = spy.token_requests()[0].form();
    assert_eq!(form["client_secret"], SECRET);
    assert_eq!(form["scope"], "read write");
}

#[test]
fn a_token_endpoint_alone_skips_discovery() {
    let server = secret_server(SecretMethod::Basic);
    let spy = Spy::new(server.clone());
    from(&[
        ("SERVICE_AUTH_TOKEN_ENDPOINT", &server.token_endpoint()),
        ("SERVICE_AUTH_CLIENT_ID", CLIENT),
        ("SERVICE_AUTH_CLIENT_SECRET", SECRET),
    ])
    .expect("valid")
    .build_blocking(spy.clone())
    .expect("valid")
    .token()
    .expect("a token");
    assert_eq!(spy.seen().len(), 1, "no discovery");
}

#[test]
fn a_service_account_key_file_gives_private_key_jwt() {
    let dir = TempDir::new("env");
    let account = config_support::service_account(Algorithm::Es256, "key-1", "user-1");
    let path = dir.write("key.json", &account.json, 0o600);
    let server = MockServer::builder(ISSUER)
        .service_user("user-1", account.public)
        .build();

    let config = from(&[
        ("SERVICE_AUTH_ISSUER", ISSUER),
        ("SERVICE_AUTH_KEY_FILE", path.to_str().unwrap()),
    ])
    .expect("valid");
    assert_eq!(config.method_name(), "private key JWT");
    config
        .build_blocking(server.clone())
        .expect("valid")
        .token()
        .expect("a token");
    let recorded = server.requests().into_iter().last().unwrap();
    assert_eq!(recorded.subject.as_deref(), Some("user-1"));
}

#[test]
fn a_jwk_key_file_with_a_client_id_gives_client_assertions() {
    let dir = TempDir::new("env");
    let jwk = std::fs::read_to_string("tests/data/keys/test-only-rsa-jwk.json").expect("test key");
    let key = SigningKey::from_jwk(&jwk).expect("valid JWK");
    let path = dir.write("key.jwk", &jwk, 0o600);
    let server = MockServer::builder(ISSUER)
        .client_key(CLIENT, key.public_key())
        .build();
    let spy = Spy::new(server.clone());

    let base = [
        ("SERVICE_AUTH_ISSUER", ISSUER),
        ("SERVICE_AUTH_KEY_FILE", path.to_str().unwrap()),
        ("SERVICE_AUTH_CLIENT_ID", CLIENT),
        ("SERVICE_AUTH_PROFILE", "keycloak"),
    ];
    let with_auth = [
        &base[..],
        &[("SERVICE_AUTH_CLIENT_AUTH", "private_key_jwt")],
    ]
    .concat();
    for pairs in [&base[..], &with_auth[..]] {
        let resolved = from(pairs).expect("valid").resolve().expect("valid");
        assert_eq!(resolved.profile(), Profile::KEYCLOAK);
        resolved
            .blocking_authenticator()
            .build(spy.clone())
            .expect("valid")
            .token()
            .expect("a token");
    }
    let token_request = spy.token_requests().pop().unwrap();
    assert_eq!(token_request.form()["client_id"], CLIENT);
    assert_eq!(
        assertion_audience(&token_request),
        ISSUER,
        "keycloak: the issuer"
    );

    let err = from(&base[..2]).expect("valid").resolve().unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeyFileUse {
                problem: KeyFileProblem::NoClientId,
                variable: Some("SERVICE_AUTH_KEY_FILE"),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn key_file_and_client_id_must_agree() {
    let dir = TempDir::new("env");
    let account = config_support::service_account(Algorithm::EdDsa, "k", "user-1");
    let account = dir.write("sa.json", &account.json, 0o600);
    let app = config_support::application(Algorithm::EdDsa, "k", "client-7");
    let app = dir.write("app.json", &app.json, 0o600);
    let cases = [
        (
            vec![
                ("SERVICE_AUTH_KEY_FILE", account.to_str().unwrap()),
                ("SERVICE_AUTH_CLIENT_ID", "x"),
            ],
            KeyFileProblem::ServiceAccountWithClientId,
        ),
        (
            vec![
                ("SERVICE_AUTH_KEY_FILE", account.to_str().unwrap()),
                ("SERVICE_AUTH_CLIENT_AUTH", "private_key_jwt"),
            ],
            KeyFileProblem::ServiceAccountForClientAuth,
        ),
        (
            vec![
                ("SERVICE_AUTH_KEY_FILE", app.to_str().unwrap()),
                ("SERVICE_AUTH_CLIENT_ID", "other"),
            ],
            KeyFileProblem::ClientIdMismatch {
                in_file: "client-7".into(),
                configured: "other".into(),
            },
        ),
    ];
    for (mut pairs, want) in cases {
        pairs.push(("SERVICE_AUTH_ISSUER", ISSUER));
        let err = from(&pairs).expect("valid set").resolve().unwrap_err();
        let Error::KeyFileUse { problem, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(problem, &want);
    }
    let matching = [
        ("SERVICE_AUTH_ISSUER", ISSUER),
        ("SERVICE_AUTH_KEY_FILE", app.to_str().unwrap()),
        ("SERVICE_AUTH_CLIENT_ID", "client-7"),
    ];
    assert!(from(&matching).expect("valid").resolve().is_ok());
}

#[test]
fn a_personal_access_token_from_a_value_or_a_file() {
    let dir = TempDir::new("env");
    let file = dir.write("pat", format!("{PAT}\r\n"), 0o400);
    for token in [
        ("SERVICE_AUTH_TOKEN", PAT),
        ("SERVICE_AUTH_TOKEN_FILE", file.to_str().unwrap()),
    ] {
        let spy = Spy::new(MockServer::builder(ISSUER).build());
        let config = from(&[token]).expect("no issuer needed");
        assert_eq!(config.method_name(), "personal access token");
        let auth = config.build_blocking(spy.clone()).expect("valid");
        assert_eq!(
            auth.token().expect("the token").access_token().secret(),
            PAT
        );
        assert!(spy.seen().is_empty());
    }
}

#[test]
fn no_credentials_is_an_error_that_lists_the_methods() {
    let err = env_error(&[("SERVICE_AUTH_ISSUER", ISSUER), ("PATH", "/bin")]);
    assert_eq!(err, EnvError::NoCredentials);
    let message = err.to_string();
    for name in [
        "SERVICE_AUTH_KEY_FILE",
        "SERVICE_AUTH_CLIENT_SECRET",
        "SERVICE_AUTH_TOKEN",
    ] {
        assert!(message.contains(name), "{message}");
    }
}

#[test]
fn ambiguous_sets_name_the_variables() {
    let cases: [(Pairs, &[&str]); 7] = [
        (
            &[
                ("SERVICE_AUTH_TOKEN", PAT),
                ("SERVICE_AUTH_CLIENT_SECRET", SECRET),
            ],
            &["SERVICE_AUTH_CLIENT_SECRET", "SERVICE_AUTH_TOKEN"],
        ),
        (
            &[
                ("SERVICE_AUTH_TOKEN", PAT),
                ("SERVICE_AUTH_TOKEN_FILE", "/t"),
            ],
            &["SERVICE_AUTH_TOKEN", "SERVICE_AUTH_TOKEN_FILE"],
        ),
        (
            &[
                ("SERVICE_AUTH_CLIENT_SECRET", SECRET),
                ("SERVICE_AUTH_CLIENT_SECRET_FILE", "/s"),
            ],
            &[
                "SERVICE_AUTH_CLIENT_SECRET",
                "SERVICE_AUTH_CLIENT_SECRET_FILE",
            ],
        ),
        (
            &[("SERVICE_AUTH_KEY_FILE", "/k"), ("SERVICE_AUTH_TOKEN", PAT)],
            &["SERVICE_AUTH_KEY_FILE", "SERVICE_AUTH_TOKEN"],
        ),
        (
            &[
                ("SERVICE_AUTH_ISSUER", ISSUER),
                ("SERVICE_AUTH_KEY_FILE", "/k"),
                ("SERVICE_AUTH_CLIENT_AUTH", "basic"),
            ],
            &["SERVICE_AUTH_CLIENT_AUTH", "SERVICE_AUTH_KEY_FILE"],
        ),
        (
            &[
                ("SERVICE_AUTH_ISSUER", ISSUER),
                ("SERVICE_AUTH_CLIENT_ID", CLIENT),
                ("SERVICE_AUTH_CLIENT_SECRET", SECRET),
                ("SERVICE_AUTH_CLIENT_AUTH", "private_key_jwt"),
            ],
            &["SERVICE_AUTH_CLIENT_AUTH", "SERVICE_AUTH_CLIENT_SECRET"],
        ),
        (
            &[("SERVICE_AUTH_TOKEN", PAT), ("SERVICE_AUTH_SCOPES", "read")],
            &["SERVICE_AUTH_TOKEN", "SERVICE_AUTH_SCOPES"],
        ),
    ];
    for (pairs, names) in cases {
        let err = env_error(pairs);
        let EnvError::Conflicting { variables, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(variables, names);
        let message = err.to_string();
        assert!(
            !message.contains(SECRET) && !message.contains(PAT),
            "{message}"
        );
        assert!(message.contains("ambiguous"), "{message}");
    }
    let err = env_error(&[
        ("SERVICE_AUTH_TOKEN", PAT),
        ("SERVICE_AUTH_CLIENT_ID", CLIENT),
    ]);
    assert!(
        err.to_string().contains("unset SERVICE_AUTH_CLIENT_ID"),
        "{err}"
    );
}

#[test]
fn incomplete_sets_name_the_missing_variable() {
    let cases: [(Pairs, &str); 3] = [
        (
            &[
                ("SERVICE_AUTH_ISSUER", ISSUER),
                ("SERVICE_AUTH_CLIENT_SECRET", SECRET),
            ],
            "SERVICE_AUTH_CLIENT_ID",
        ),
        (
            &[
                ("SERVICE_AUTH_CLIENT_ID", CLIENT),
                ("SERVICE_AUTH_CLIENT_SECRET", SECRET),
            ],
            "SERVICE_AUTH_ISSUER",
        ),
        (&[("SERVICE_AUTH_KEY_FILE", "/k")], "SERVICE_AUTH_ISSUER"),
    ];
    for (pairs, missing) in cases {
        let err = env_error(pairs);
        assert!(
            matches!(err, EnvError::Missing { variable, .. } if variable == missing),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("variable {missing} is not set")),
            "{err}"
        );
    }
}

#[test]
fn invalid_empty_and_unknown_variables_are_refused() {
    let err = env_error(&[
        ("SERVICE_AUTH_TOKEN", PAT),
        ("SERVICE_AUTH_PROFILE", "octa"),
    ]);
    let message = err.to_string();
    assert!(
        message.contains("SERVICE_AUTH_PROFILE") && message.contains("`octa`"),
        "{message}"
    );
    assert!(message.contains(&Profile::names()), "{message}");

    let err = env_error(&[
        ("SERVICE_AUTH_ISSUER", ISSUER),
        ("SERVICE_AUTH_CLIENT_ID", CLIENT),
        ("SERVICE_AUTH_CLIENT_SECRET", SECRET),
        ("SERVICE_AUTH_CLIENT_AUTH", "jwt"),
    ]);
    assert!(
        err.to_string()
            .contains("`basic`, `post` or `private_key_jwt`"),
        "{err}"
    );

    let err = env_error(&[
        ("SERVICE_AUTH_TOKEN", PAT),
        ("SERVICE_AUTH_DANGEROUS_ALLOW_HTTP_LOOPBACK", "maybe"),
    ]);
    assert!(
        err.to_string()
            .contains("SERVICE_AUTH_DANGEROUS_ALLOW_HTTP_LOOPBACK"),
        "{err}"
    );

    let err = env_error(&[("SERVICE_AUTH_TOKEN", PAT), ("SERVICE_AUTH_ISSUER", " ")]);
    assert_eq!(
        err,
        EnvError::Empty {
            variable: "SERVICE_AUTH_ISSUER"
        }
    );

    let err = env_error(&[
        ("SERVICE_AUTH_TOKEN", PAT),
        ("SERVICE_AUTH_CLIENTID", CLIENT),
    ]);
    let message = err.to_string();
    assert!(
        message.contains("SERVICE_AUTH_CLIENTID") && message.contains("typo"),
        "{message}"
    );
    assert!(
        message.contains("SERVICE_AUTH_CLIENT_ID"),
        "the known ones are listed: {message}"
    );
}

#[test]
fn http_issuers_need_the_dangerous_loopback_opt_in() {
    let err = from(&[
        ("SERVICE_AUTH_ISSUER", "http://auth.example.com"),
        ("SERVICE_AUTH_TOKEN", "x"),
    ])
    .expect("a complete set")
    .resolve()
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("https"), "{message}");
    assert!(message.contains("SERVICE_AUTH_ISSUER"), "{message}");

    let loopback = [
        ("SERVICE_AUTH_ISSUER", "http://127.0.0.1:8080"),
        ("SERVICE_AUTH_TOKEN", "x"),
    ];
    assert!(from(&loopback).unwrap().resolve().is_err());
    let opted_in = [
        &loopback[..],
        &[("SERVICE_AUTH_DANGEROUS_ALLOW_HTTP_LOOPBACK", "1")],
    ]
    .concat();
    let resolved = from(&opted_in)
        .unwrap()
        .resolve()
        .expect("loopback http allowed");
    assert!(resolved.allows_http_loopback());
}

#[test]
fn the_ca_file_reaches_the_transport_settings() {
    let resolved = from(&[
        ("SERVICE_AUTH_TOKEN", PAT),
        ("SERVICE_AUTH_CA_FILE", "/etc/ssl/private-ca.pem"),
    ])
    .unwrap()
    .resolve()
    .unwrap();
    assert_eq!(
        resolved.ca_file(),
        Some(std::path::Path::new("/etc/ssl/private-ca.pem"))
    );
}

#[test]
fn missing_files_name_the_path_and_the_variable() {
    let dir = TempDir::new("env");
    let missing = dir.missing("nowhere.json");
    let missing = missing.to_str().unwrap();
    for pairs in [
        vec![
            ("SERVICE_AUTH_ISSUER", ISSUER),
            ("SERVICE_AUTH_KEY_FILE", missing),
        ],
        vec![
            ("SERVICE_AUTH_ISSUER", ISSUER),
            ("SERVICE_AUTH_CLIENT_ID", CLIENT),
            ("SERVICE_AUTH_CLIENT_SECRET_FILE", missing),
        ],
        vec![("SERVICE_AUTH_TOKEN_FILE", missing)],
    ] {
        let variable = pairs.last().unwrap().0;
        let err = from(&pairs).expect("a complete set").resolve().unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::FileUnreadable { .. }), "{message}");
        assert!(
            message.contains(missing) && message.contains(variable),
            "{message}"
        );
        assert!(message.contains("check the path"), "{message}");
    }
}

#[cfg(unix)]
#[test]
fn group_or_world_readable_files_are_refused_unless_allowed() {
    let dir = TempDir::new("env");
    let account = config_support::service_account(Algorithm::EdDsa, "k", "user-1");
    let key = dir.write("key.json", &account.json, 0o644);
    let secret = dir.write("secret", SECRET, 0o640);
    let token = dir.write("token", PAT, 0o604);
    let server = MockServer::builder(ISSUER)
        .service_user("user-1", account.public)
        .client_secret(CLIENT, SECRET, SecretMethod::Basic)
        .build();

    let cases = [
        (
            vec![
                ("SERVICE_AUTH_ISSUER", ISSUER),
                ("SERVICE_AUTH_KEY_FILE", key.to_str().unwrap()),
            ],
            &key,
            0o644,
        ),
        (
            vec![
                ("SERVICE_AUTH_ISSUER", ISSUER),
                ("SERVICE_AUTH_CLIENT_ID", CLIENT),
                ("SERVICE_AUTH_CLIENT_SECRET_FILE", secret.to_str().unwrap()),
            ],
            &secret,
            0o640,
        ),
        (
            vec![("SERVICE_AUTH_TOKEN_FILE", token.to_str().unwrap())],
            &token,
            0o604,
        ),
    ];
    for (pairs, path, want_mode) in cases {
        let err = from(&pairs).unwrap().resolve().unwrap_err();
        let message = err.to_string();
        let Error::FilePermissions { mode, .. } = err else {
            panic!("{message}");
        };
        assert_eq!(mode, want_mode);
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
        assert!(
            !message.contains(SECRET) && !message.contains(PAT),
            "{message}"
        );

        from(&pairs)
            .unwrap()
            .dangerous_allow_insecure_key_file_permissions()
            .build_blocking(server.clone())
            .expect("allowed explicitly")
            .token()
            .expect("a token");
    }
}
