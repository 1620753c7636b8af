//! `Config`: every constructor and option, checked where it lands, in the
//! request the library sends to the mock authorization server.
#![cfg(feature = "mock")]

mod config_support;

use std::time::Duration;

use config_support::{ISSUER, Spy, TempDir, assertion_audience, claims};
use http::header;
use service_auth::config::{ClientSecretAuth, Config, Error, Profile, ProfileAudience};
use service_auth::credentials::{Algorithm, SigningKey};
use service_auth::flow::ConfigError;
use service_auth::method::Endpoints;
use service_auth::mock::{AudienceRule, ClientAuthMethod, MockServer, SecretMethod};
use service_auth::secret::{ClientSecret, PersonalAccessToken};

const CLIENT: &str = "svc";
const SECRET: &str = "s3cret-config-test";
const ZITADEL_SCOPE: &str = "urn:zitadel:iam:org:project:id:zitadel:aud";

fn secret_server(method: SecretMethod) -> MockServer {
    MockServer::builder(ISSUER)
        .client_secret(CLIENT, SECRET, method)
        .allowed_scopes(["openid", "read", "write", "api://billing/.default"])
        .seed(3)
        .build()
}

fn secret_config() -> Config {
    Config::client_credentials(ISSUER, CLIENT, ClientSecret::new(SECRET))
}

#[test]
fn client_credentials_uses_basic_by_default_and_post_on_request() {
    for (auth, registered, recorded) in [
        (
            None,
            SecretMethod::Basic,
            ClientAuthMethod::ClientSecretBasic,
        ),
        (
            Some(ClientSecretAuth::Post),
            SecretMethod::Post,
            ClientAuthMethod::ClientSecretPost,
        ),
    ] {
        let server = secret_server(registered);
        let mut config = secret_config();
        if let Some(auth) = auth {
            config = config.client_auth(auth);
        }
        assert_eq!(config.method_name(), "client credentials");
        let auth = config.build_blocking(server.clone()).expect("valid");
        auth.token().expect("a token");
        let token_request = server.requests().into_iter().last().expect("a request");
        assert_eq!(token_request.client_auth, Some(recorded));
        assert_eq!(token_request.status, 200);
    }
}

#[tokio::test]
async fn the_async_authenticator_is_built_the_same_way() {
    let server = secret_server(SecretMethod::Basic);
    let auth = secret_config().build(server.clone()).expect("valid");
    assert_eq!(auth.method_name(), "client credentials");
    let token = auth.token().await.expect("a token");
    assert!(token.expires_at().is_some());
    assert_eq!(server.issued_tokens(), 1);
}

#[test]
fn a_zitadel_service_account_key_file_uses_the_jwt_bearer_grant() {
    let dir = TempDir::new("config");
    let account = config_support::service_account(Algorithm::Rs256, "key-1", "user-1");
    let path = dir.write("key.json", &account.json, 0o600);
    let server = MockServer::builder(ISSUER)
        .service_user("user-1", account.public)
        .build();
    let spy = Spy::new(server.clone());

    let config = Config::private_key_jwt(ISSUER, &path);
    assert_eq!(config.method_name(), "private key JWT");
    let resolved = config.resolve().expect("valid");
    assert_eq!(
        resolved.profile(),
        Profile::ZITADEL,
        "chosen by the key file"
    );
    let auth = resolved
        .blocking_authenticator()
        .build(spy.clone())
        .expect("valid");
    auth.token().expect("a token");

    let seen = spy.seen();
    assert_eq!(seen.len(), 2, "discovery, then the token request");
    assert!(seen[0].uri.ends_with("/.well-known/openid-configuration"));
    let form = seen[1].form();
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    assert_eq!(form["scope"], format!("openid {ZITADEL_SCOPE}"));
    assert_eq!(assertion_audience(&seen[1]), ISSUER);
    let recorded = server.requests().into_iter().last().expect("a request");
    assert_eq!(recorded.subject.as_deref(), Some("user-1"));
    assert_eq!(recorded.key_id.as_deref(), Some("key-1"));
}

#[test]
fn a_zitadel_application_key_file_authenticates_the_client() {
    let dir = TempDir::new("config");
    let app = config_support::application(Algorithm::Es256, "key-2", "client-7");
    let path = dir.write("app.json", &app.json, 0o600);
    let server = MockServer::builder(ISSUER)
        .client_key("client-7", app.public)
        .client_assertion_audience(AudienceRule::Issuer)
        .build();
    let spy = Spy::new(server.clone());

    let auth = Config::private_key_jwt(ISSUER, &path)
        .build_blocking(spy.clone())
        .expect("valid");
    auth.token().expect("a token");

    let token_request = &spy.token_requests()[0];
    assert_eq!(token_request.form()["grant_type"], "client_credentials");
    assert_eq!(token_request.form()["client_id"], "client-7");
    assert_eq!(assertion_audience(token_request), ISSUER);
    let recorded = server.requests().into_iter().last().expect("a request");
    assert_eq!(recorded.client_auth, Some(ClientAuthMethod::PrivateKeyJwt));
}

#[test]
fn each_profile_gives_client_assertions_its_documented_audience() {
    let token_endpoint = format!("{ISSUER}/oauth/v2/token");
    for profile in Profile::ALL {
        let key = SigningKey::generate(Algorithm::EdDsa, "k").expect("key");
        let server = MockServer::builder(ISSUER)
            .client_key(CLIENT, key.public_key())
            .allowed_scopes(["api://billing/.default"])
            .build();
        let spy = Spy::new(server);
        let auth = Config::private_key_jwt_client(ISSUER, CLIENT, key)
            .profile(profile)
            .scopes(["api://billing/.default"])
            .build_blocking(spy.clone())
            .expect("valid");
        // Auth0's trailing slash is more than this mock accepts; the request
        // is what is checked here.
        let _ = auth.token();

        let want = match profile.client_assertion_audience {
            ProfileAudience::Issuer => ISSUER.to_owned(),
            ProfileAudience::IssuerWithTrailingSlash => format!("{ISSUER}/"),
            ProfileAudience::TokenEndpoint => token_endpoint.clone(),
            other => panic!("untested audience rule {other:?}"),
        };
        let token_request = &spy.token_requests()[0];
        assert_eq!(assertion_audience(token_request), want, "{profile}");
    }
    assert_eq!(
        Profile::KEYCLOAK.client_assertion_audience,
        ProfileAudience::Issuer
    );
    assert_eq!(
        Profile::AUTH0.client_assertion_audience,
        ProfileAudience::IssuerWithTrailingSlash
    );
    assert_eq!(
        Profile::OKTA.client_assertion_audience,
        ProfileAudience::TokenEndpoint
    );
    assert_eq!(
        Profile::ENTRA.client_assertion_audience,
        ProfileAudience::TokenEndpoint
    );
}

#[test]
fn the_entra_profile_insists_on_a_dot_default_scope() {
    let key = SigningKey::generate(Algorithm::EdDsa, "k").expect("key");
    let config = Config::private_key_jwt_client(ISSUER, CLIENT, key).profile(Profile::ENTRA);
    let err = config.clone().scopes(["read"]).resolve().unwrap_err();
    assert!(matches!(err, Error::ScopeConvention { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("/.default") && message.contains("`read`"),
        "{message}"
    );
    assert!(config.resolve().is_err(), "no scope at all is refused too");
}

#[test]
fn scopes_replace_the_profile_defaults() {
    let server = secret_server(SecretMethod::Basic);
    let spy = Spy::new(server);
    secret_config()
        .scopes(["read write", "read"])
        .build_blocking(spy.clone())
        .expect("valid")
        .token()
        .expect("a token");
    assert_eq!(spy.token_requests()[0].form()["scope"], "read write");
}

#[test]
fn the_audience_and_lifetime_reach_the_assertion() {
    let key = SigningKey::generate(Algorithm::Es256, "k").expect("key");
    let server = MockServer::builder(ISSUER)
        .client_key(CLIENT, key.public_key())
        .build();
    let spy = Spy::new(server);
    let _ = Config::private_key_jwt_client(ISSUER, CLIENT, key)
        .audience("https://gateway.example/aud")
        .assertion_lifetime(Duration::from_secs(120))
        .build_blocking(spy.clone())
        .expect("valid")
        .token();

    let form = spy.token_requests()[0].form();
    let claims = claims(&form["client_assertion"]);
    assert_eq!(claims["aud"], "https://gateway.example/aud");
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 120);
}

#[test]
fn a_too_long_assertion_lifetime_is_refused() {
    let key = SigningKey::generate(Algorithm::Es256, "k").expect("key");
    let err = Config::private_key_jwt_client(ISSUER, CLIENT, key)
        .assertion_lifetime(Duration::from_secs(3600))
        .resolve()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Method {
                reason: ConfigError::LifetimeOutOfRange { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_token_endpoint_skips_discovery() {
    let server = secret_server(SecretMethod::Basic);
    let spy = Spy::new(server.clone());
    let resolved = secret_config()
        .token_endpoint(server.token_endpoint())
        .resolve()
        .expect("valid");
    assert!(matches!(resolved.endpoints(), Endpoints::Fixed { .. }));
    resolved
        .blocking_authenticator()
        .build(spy.clone())
        .expect("valid")
        .token()
        .expect("a token");

    let seen = spy.seen();
    assert_eq!(seen.len(), 1, "no discovery request");
    assert_eq!(seen[0].uri, server.token_endpoint());
}

#[test]
fn user_agent_and_extra_headers_reach_every_request() {
    let server = secret_server(SecretMethod::Basic);
    let spy = Spy::new(server);
    secret_config()
        .user_agent("billing/1.4")
        .header("x-tenant", "blue")
        .header("x-gateway-key", "gw-secret-value")
        .build_blocking(spy.clone())
        .expect("valid")
        .token()
        .expect("a token");

    let seen = spy.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.headers[header::USER_AGENT], "billing/1.4");
        assert_eq!(request.headers["x-tenant"], "blue");
        assert!(request.headers["x-gateway-key"].is_sensitive());
    }
}

#[test]
fn reserved_and_malformed_headers_are_refused() {
    let err = secret_config()
        .header("Authorization", "Bearer planted")
        .resolve()
        .unwrap_err();
    assert!(matches!(err, Error::RequestOptions { .. }), "{err}");
    let err = secret_config()
        .header("x-bad", "line\nbreak-planted")
        .resolve()
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidHeader { part: "value", .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("planted"));
    let err = secret_config()
        .user_agent("bad\u{7f}")
        .resolve()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUserAgent), "{err}");
}

#[test]
fn the_refresh_margin_reaches_the_policy() {
    let resolved = secret_config()
        .refresh_margin(Duration::from_secs(300))
        .resolve()
        .expect("valid");
    assert_eq!(resolved.policy().margin, Duration::from_secs(300));
}

#[test]
fn a_personal_access_token_sends_nothing() {
    let server = MockServer::builder(ISSUER).build();
    let spy = Spy::new(server);
    let pat = "pat-0123456789-config";
    for issuer in [None, Some(ISSUER)] {
        let auth = Config::personal_access_token(issuer, PersonalAccessToken::new(pat))
            .build_blocking(spy.clone())
            .expect("valid");
        assert_eq!(auth.method_name(), "personal access token");
        let token = auth.token().expect("the token");
        assert_eq!(token.access_token().secret(), pat);
        assert_eq!(token.expires_at(), None);
    }
    assert!(
        spy.seen().is_empty(),
        "a personal access token needs no request"
    );
}

#[test]
fn options_that_cannot_apply_are_refused() {
    let pat = || Config::personal_access_token(None, PersonalAccessToken::new("p"));
    let key = || SigningKey::generate(Algorithm::EdDsa, "k").expect("key");
    let cases = [
        (pat().scopes(["read"]), "scopes"),
        (pat().audience("x"), "assertion audience"),
        (secret_config().audience("x"), "assertion audience"),
        (
            secret_config().assertion_lifetime(Duration::from_secs(60)),
            "assertion lifetime",
        ),
        (
            Config::private_key_jwt_client(ISSUER, CLIENT, key())
                .client_auth(ClientSecretAuth::Post),
            "client secret authentication (`client_auth`)",
        ),
    ];
    for (config, option) in cases {
        let err = config.resolve().unwrap_err();
        let Error::NotApplicable { option: found, .. } = err else {
            panic!("{option}: {err}");
        };
        assert_eq!(found, option);
        assert!(err.to_string().contains("remove it"));
    }
}

#[test]
fn transport_options_need_a_built_in_transport() {
    let server = secret_server(SecretMethod::Basic);
    let err = secret_config()
        .ca_file("/etc/ssl/private-ca.pem")
        .timeout(Duration::from_secs(5))
        .build_blocking(server)
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::TransportOptions { .. }), "{message}");
    assert!(message.contains("CA file, timeout"), "{message}");
}

#[test]
fn a_connect_address_needs_a_host_name() {
    let err =
        Config::client_credentials("http://127.0.0.1:8080", CLIENT, ClientSecret::new(SECRET))
            .dangerous_allow_http_loopback()
            .connect_address("127.0.0.1:9".parse().unwrap())
            .resolve()
            .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ConnectAddressNeedsHostName { what: "issuer", .. }
        ),
        "{err}"
    );
}

#[test]
fn plain_http_needs_a_loopback_host_and_the_opt_in() {
    let config = |issuer: &str| Config::client_credentials(issuer, CLIENT, ClientSecret::new("s"));
    let err = config("http://auth.example.com").resolve().unwrap_err();
    assert!(err.to_string().contains("https"), "{err}");
    let err = config("http://auth.example.com")
        .dangerous_allow_http_loopback()
        .resolve()
        .unwrap_err();
    assert!(matches!(err, Error::Url { .. }), "{err}");
    assert!(
        config("http://127.0.0.1:1")
            .dangerous_allow_http_loopback()
            .resolve()
            .is_ok()
    );
}

#[cfg(feature = "reqwest")]
#[tokio::test]
async fn the_connect_address_reaches_a_mock_under_a_public_issuer_name() {
    // The issuer has no port: only the connect address leads to the mock.
    let server = MockServer::builder("http://localhost")
        .client_secret(CLIENT, SECRET, SecretMethod::Basic)
        .build();
    let handle = server.serve_loopback().expect("serve on 127.0.0.1");

    let auth = Config::client_credentials("http://localhost", CLIENT, ClientSecret::new(SECRET))
        .dangerous_allow_http_loopback()
        .connect_address(handle.local_addr())
        .timeout(Duration::from_secs(10))
        .build_reqwest()
        .expect("valid");
    auth.token()
        .await
        .expect("a token over the loopback server");

    assert_eq!(server.token_requests(), 1);
    assert_eq!(server.requests().len(), 2, "discovery and token request");
    assert!(handle.accepted_connections() >= 1);
}

#[cfg(feature = "blocking")]
#[test]
fn the_connect_address_reaches_the_mock_over_ureq_too() {
    let server = MockServer::builder("http://localhost")
        .client_secret(CLIENT, SECRET, SecretMethod::Basic)
        .build();
    let handle = server.serve_loopback().expect("serve on 127.0.0.1");

    let auth = Config::client_credentials("http://localhost", CLIENT, ClientSecret::new(SECRET))
        .dangerous_allow_http_loopback()
        .connect_address(handle.local_addr())
        .build_ureq()
        .expect("valid");
    auth.token().expect("a token over the loopback server");
    assert_eq!(server.token_requests(), 1);
}

#[cfg(feature = "reqwest")]
#[test]
fn an_unreadable_ca_file_is_reported_by_build_reqwest() {
    let err = secret_config()
        .ca_file("/nonexistent/service-auth-ca.pem")
        .build_reqwest()
        .unwrap_err();
    assert!(matches!(err, Error::Reqwest(_)), "{err}");
    assert!(err.to_string().contains("/nonexistent/service-auth-ca.pem"));
}

#[test]
fn profiles_are_chosen_by_name() {
    assert_eq!(Profile::by_name("Keycloak").unwrap(), Profile::KEYCLOAK);
    let err = Profile::by_name("ping").unwrap_err();
    assert!(matches!(err, Error::UnknownProfile { .. }));
    assert!(
        err.to_string()
            .contains("generic, zitadel, keycloak, auth0, okta, entra")
    );
    let resolved = secret_config()
        .profile(Profile::OKTA)
        .resolve()
        .expect("valid");
    assert_eq!(resolved.profile(), Profile::OKTA);
    assert_eq!(
        secret_config().resolve().unwrap().profile(),
        Profile::GENERIC
    );
}
