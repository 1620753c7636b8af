//! Every configuration, credential, token and error type's `Debug` (and,
//! for errors, `Display`) shows no planted secret: no client secret,
//! personal access token, private key fragment, assertion or access token.
#![cfg(all(feature = "mock", feature = "tokio"))]

mod config_support;

use std::fmt::Debug;
use std::time::Duration;

use config_support::{ISSUER, Spy, TempDir, pem_chunks};
use http::StatusCode;
use service_auth::acquire::Acquirer;
use service_auth::config::{Config, Error};
use service_auth::credentials::{Algorithm, KeyFile, KeyRing, SigningKey};
use service_auth::endpoint::{Issuer, UrlPolicy};
use service_auth::flow::{ClientAssertion, ClientAuth, ClientCredentials, Grant, RequestOptions};
use service_auth::method::{Endpoints, Method};
use service_auth::mock::{Fault, MockServer, SecretMethod};
use service_auth::rng::Rng;
use service_auth::secret::{
    AccessToken, Assertion, ClientSecret, PersonalAccessToken, SecretBytes,
};

const CLIENT: &str = "svc";
const SECRET: &str = "planted-client-secret-71d2";
const PAT: &str = "planted-personal-token-93be";
const HEADER_SECRET: &str = "planted-gateway-key-55aa";

/// Everything planted in one test, checked against each output.
struct Planted(Vec<String>);

impl Planted {
    fn new(extra: &[&str]) -> Self {
        let mut all = vec![SECRET.to_owned(), PAT.to_owned(), HEADER_SECRET.to_owned()];
        all.extend(extra.iter().map(|s| (*s).to_owned()));
        Self(all)
    }

    fn add(&mut self, secret: impl Into<String>) {
        self.0.push(secret.into());
    }

    fn add_pem(&mut self, pem: &str) {
        self.0.extend(pem_chunks(pem));
    }

    fn debug(&self, what: &str, value: &impl Debug) {
        self.text(what, &format!("{value:?}"));
        self.text(what, &format!("{value:#?}"));
    }

    fn error(&self, what: &str, error: &impl std::error::Error) {
        self.debug(what, error);
        self.text(what, &error.to_string());
        let mut source = error.source();
        while let Some(cause) = source {
            self.text(what, &cause.to_string());
            source = cause.source();
        }
    }

    fn text(&self, what: &str, text: &str) {
        assert!(!text.is_empty(), "{what}: empty output");
        for secret in &self.0 {
            assert!(
                !text.contains(secret.as_str()),
                "{what} leaks `{secret}`: {text}"
            );
        }
        assert!(!has_jwt(text), "{what} holds something like a JWT: {text}");
    }
}

/// Whether `text` holds `eyJ` followed by more than 20 base64url characters:
/// the start of a JSON object, base64url-encoded, as every JWT begins.
fn has_jwt(text: &str) -> bool {
    text.match_indices("eyJ").any(|(at, _)| {
        text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .count()
            > 20
    })
}

#[test]
fn secrets_and_keys() {
    let key = SigningKey::generate(Algorithm::Rs256, "key-1").expect("key");
    let pem = key.to_pem().expect("pem").to_string();
    let mut planted = Planted::new(&[]);
    planted.add_pem(&pem);

    planted.debug("ClientSecret", &ClientSecret::new(SECRET));
    planted.debug("PersonalAccessToken", &PersonalAccessToken::new(PAT));
    planted.debug("AccessToken", &AccessToken::new(SECRET));
    planted.debug("Assertion", &Assertion::new(SECRET));
    planted.debug("SecretBytes", &SecretBytes::new(SECRET.as_bytes().to_vec()));
    planted.debug("SigningKey", &key);
    planted.debug("PublicKey", &key.public_key());
    let json =
        KeyFile::service_account(SigningKey::from_pem(&pem, "key-1").expect("pem"), "user-1")
            .to_json()
            .expect("json");
    planted.debug("KeyFile", &KeyFile::parse(&json).expect("key file"));
    planted.debug("KeyRing", &KeyRing::new(key));
}

#[test]
fn methods_and_request_options() {
    let planted = Planted::new(&[]);
    let key = || KeyRing::new(SigningKey::generate(Algorithm::EdDsa, "k").expect("key"));
    let auths = [
        ClientAuth::SecretBasic(ClientSecret::new(SECRET)),
        ClientAuth::SecretPost(ClientSecret::new(SECRET)),
        ClientAuth::PrivateKeyJwt(ClientAssertion::new(key())),
    ];
    for auth in auths {
        planted.debug("ClientAuth", &auth);
        let grant = Grant::from(ClientCredentials::new(CLIENT, auth));
        planted.debug("Grant", &grant);
        planted.debug("Method", &Method::from(grant));
    }
    planted.debug("Method", &Method::from(PersonalAccessToken::new(PAT)));

    let mut options = RequestOptions::default();
    let mut value = http::HeaderValue::from_static(HEADER_SECRET);
    value.set_sensitive(true);
    options.extra_headers.insert("x-gateway-key", value);
    planted.debug("RequestOptions", &options);

    let issuer = Issuer::parse(ISSUER, UrlPolicy::https_only()).expect("issuer");
    let method = Method::from(ClientCredentials::new(
        CLIENT,
        ClientAuth::SecretPost(ClientSecret::new(SECRET)),
    ));
    let acquirer = Acquirer::new(
        method,
        Endpoints::Discover(issuer),
        options,
        Rng::from_seed(1),
    );
    planted.debug("Acquirer", &acquirer);
}

#[test]
fn every_config_and_its_resolved_form() {
    let dir = TempDir::new("redaction");
    let account = config_support::service_account(Algorithm::EdDsa, "k", "user-1");
    let key_file = dir.write("key.json", &account.json, 0o600);
    let secret_file = dir.write("secret", SECRET, 0o600);
    let pat_file = dir.write("pat", PAT, 0o600);
    let mut planted = Planted::new(&[]);
    planted.add_pem(&account.pem);
    let client_key = SigningKey::generate(Algorithm::Es256, "k2").expect("key");
    planted.add_pem(&client_key.to_pem().expect("pem"));

    let configs = [
        Config::private_key_jwt(ISSUER, &key_file),
        Config::private_key_jwt_client(ISSUER, CLIENT, client_key),
        Config::client_credentials(ISSUER, CLIENT, ClientSecret::new(SECRET)),
        Config::client_credentials_secret_file(ISSUER, CLIENT, &secret_file),
        Config::personal_access_token(Some(ISSUER), PersonalAccessToken::new(PAT)),
        Config::personal_access_token_file(None, &pat_file),
    ];
    for config in configs {
        let config = config
            .header("x-gateway-key", HEADER_SECRET)
            .user_agent("svc/1");
        planted.debug("Config", &config);
        let resolved = config.resolve().expect("valid");
        planted.debug("Resolved", &resolved);
        let builder = resolved.blocking_authenticator();
        planted.debug("BlockingAuthenticatorBuilder", &builder);
    }
    let from_env = Config::from_vars([
        ("SERVICE_AUTH_ISSUER", ISSUER),
        ("SERVICE_AUTH_CLIENT_ID", CLIENT),
        ("SERVICE_AUTH_CLIENT_SECRET", SECRET),
    ])
    .expect("valid");
    planted.debug("Config from vars", &from_env);
    planted.debug(
        "AuthenticatorBuilder",
        &from_env.resolve().unwrap().authenticator(),
    );
}

#[tokio::test]
async fn tokens_authenticators_and_their_errors() {
    let server = MockServer::builder(ISSUER)
        .client_secret(CLIENT, SECRET, SecretMethod::Basic)
        .personal_access_token(PAT)
        .seed(5)
        .build();
    let spy = Spy::new(server.clone());
    let mut planted = Planted::new(&[]);
    // The mock draws access tokens from a generator seeded the same way:
    // these are the tokens it issues, including those whose response a
    // fault cuts or spoils before the client sees them.
    let mut issued = Rng::from_seed(5);
    for _ in 0..64 {
        planted.add(issued.next_id());
    }

    let auth = Config::client_credentials(ISSUER, CLIENT, ClientSecret::new(SECRET))
        .resolve()
        .unwrap()
        .authenticator()
        .background_refresh(false)
        .build(spy.clone())
        .expect("valid");
    let token = auth.token().await.expect("a token");
    planted.add(token.access_token().secret());
    planted.debug("CachedToken", &token);
    planted.debug("Token", &**token);
    planted.debug("Authenticator", &auth);
    let mut request = http::Request::get(server.resource_url()).body(()).unwrap();
    auth.authorize(&mut request).await.expect("authorized");
    planted.debug("authorized request", &request);
    planted.debug("MockServer", &server);
    planted.debug("RecordedRequest", &server.requests());

    // Every failure class the token endpoint can produce.
    let faults = [
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
        Fault::RateLimited {
            retry_after: Duration::from_secs(2),
        },
        Fault::Html,
        Fault::MalformedJson,
        Fault::TruncatedJson,
        Fault::EmptyBody,
        Fault::WrongTokenType,
        Fault::OAuthError("invalid_client"),
        Fault::OAuthError("server_error"),
    ];
    for fault in faults {
        auth.reset();
        let fresh = auth.token().await.expect("a token before the fault");
        planted.add(fresh.access_token().secret());
        server.push_fault(fault.clone());
        auth.invalidate(fresh.generation());
        let err = auth.token().await.expect_err("the fault fails the fetch");
        planted.error(&format!("{fault:?}"), &err);
        if let Some(token_error) = err.token_error() {
            planted.error("TokenError", token_error);
        }
    }
    for seen in spy.seen() {
        for (name, value) in seen.form() {
            if name.contains("assertion") {
                planted.add(value);
            }
        }
    }

    // A wrong secret, through the blocking authenticator.
    let blocking =
        Config::client_credentials(ISSUER, CLIENT, ClientSecret::new("planted-wrong-secret"))
            .build_blocking(server.clone())
            .expect("valid");
    planted.add("planted-wrong-secret");
    planted.debug("BlockingAuthenticator", &blocking);
    let err = blocking.token().expect_err("a wrong secret is refused");
    planted.error("wrong secret", &err);
}

#[test]
fn configuration_errors() {
    let dir = TempDir::new("redaction");
    let account = config_support::service_account(Algorithm::Rs256, "k", "user-1");
    let truncated = &account.json[..account.json.len() * 2 / 3];
    let broken = dir.write("broken.json", truncated, 0o600);
    let shared = dir.write("shared.json", &account.json, 0o644);
    let mut planted = Planted::new(&[]);
    planted.add_pem(&account.pem);

    let mut errors: Vec<Error> = vec![
        Config::private_key_jwt(ISSUER, &broken)
            .resolve()
            .unwrap_err(),
        Config::client_credentials(ISSUER, CLIENT, ClientSecret::new(""))
            .resolve()
            .unwrap_err(),
        Config::client_credentials(ISSUER, CLIENT, ClientSecret::new(SECRET))
            .header("x-gateway-key", format!("{HEADER_SECRET}\n"))
            .resolve()
            .unwrap_err(),
        Config::personal_access_token(None, PersonalAccessToken::new(format!("{PAT}\n")))
            .resolve()
            .unwrap_err(),
        Config::from_vars([
            ("SERVICE_AUTH_TOKEN", PAT),
            ("SERVICE_AUTH_CLIENT_SECRET", SECRET),
        ])
        .unwrap_err(),
        Config::from_vars([
            ("SERVICE_AUTH_TOKEN", PAT),
            ("SERVICE_AUTH_CLIENTSECRET", SECRET),
        ])
        .unwrap_err(),
        Config::client_credentials(
            format!("https://admin:{SECRET}@auth.example.com"),
            CLIENT,
            ClientSecret::new(SECRET),
        )
        .resolve()
        .unwrap_err(),
    ];
    if cfg!(unix) {
        errors.push(
            Config::private_key_jwt(ISSUER, &shared)
                .resolve()
                .unwrap_err(),
        );
    }
    for err in &errors {
        planted.error("config::Error", err);
    }

    let url_error = Issuer::parse(
        &format!("https://u:{SECRET}@x.example"),
        UrlPolicy::https_only(),
    )
    .unwrap_err();
    planted.error("UrlError", &url_error);
}
