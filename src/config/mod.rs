//! The configuration users write: one constructor per method, the options
//! every method shares, provider profiles, and [`Config::from_env`].
//!
//! A [`Config`] holds what the user said, unchecked; [`Config::resolve`]
//! checks all of it at once (URLs, files and their permissions, keys,
//! option combinations) and the `build*` methods turn it into an
//! authenticator. Switching method is a change of constructor, or of
//! environment variables.
//!
//! ```
//! use service_auth::config::Config;
//! use service_auth::mock::{MockServer, SecretMethod};
//! use service_auth::secret::ClientSecret;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = MockServer::builder("https://auth.example.com")
//!     .client_secret("billing", "s3cret", SecretMethod::Basic)
//!     .build();
//!
//! let auth = Config::client_credentials(
//!     "https://auth.example.com",
//!     "billing",
//!     ClientSecret::new("s3cret"),
//! )
//! .scopes(["openid"])
//! .user_agent("billing/1.4")
//! .build_blocking(server.clone())?;
//!
//! let token = auth.token()?;
//! assert!(token.expires_at().is_some());
//! assert_eq!(auth.method_name(), "client credentials");
//! # Ok(())
//! # }
//! ```
//!
//! # Methods
//!
//! | Constructor | Method | What is sent |
//! |---|---|---|
//! | [`Config::private_key_jwt`] | private key JWT | a ZITADEL key file: `serviceaccount` keys use the JWT bearer grant (RFC 7523 §2.1), `application` keys client credentials with a client assertion (RFC 7523 §2.2); a JWK file (with `kid`) is a client assertion key, with [`Config::private_key_jwt_client_key_file`] |
//! | [`Config::private_key_jwt_client`] | private key JWT | client credentials, the client authenticated by a client assertion signed with a [`SigningKey`] |
//! | [`Config::client_credentials`] | client credentials | client credentials (RFC 6749 §4.4) with `client_secret_basic` or, with [`Config::client_auth`], `client_secret_post` |
//! | [`Config::personal_access_token`] | personal access token | nothing: the token is the bearer token, no request is ever made |
//!
//! # Environment variables
//!
//! [`Config::from_env`] reads these (and [`Config::from_vars`] reads them
//! from any list). The method follows from which are set; a set that fits
//! no method, or more than one, is an error naming the variables.
//!
//! | Variable | Meaning |
//! |---|---|
//! | `SERVICE_AUTH_ISSUER` | The issuer URL (`https://…`); the token endpoint is discovered from it. |
//! | `SERVICE_AUTH_TOKEN_ENDPOINT` | The token endpoint URL; skips discovery. |
//! | `SERVICE_AUTH_KEY_FILE` | Private key JWT: a ZITADEL key file, or a JWK with `kid` (then with `SERVICE_AUTH_CLIENT_ID`). |
//! | `SERVICE_AUTH_CLIENT_ID` | The client id, for client credentials and JWK key files. |
//! | `SERVICE_AUTH_CLIENT_SECRET` | Client credentials: the client secret. |
//! | `SERVICE_AUTH_CLIENT_SECRET_FILE` | Client credentials: a file holding the client secret. |
//! | `SERVICE_AUTH_TOKEN` | A personal access token. |
//! | `SERVICE_AUTH_TOKEN_FILE` | A file holding a personal access token. |
//! | `SERVICE_AUTH_SCOPES` | Scopes, separated by spaces; replaces the profile's default scopes. |
//! | `SERVICE_AUTH_PROFILE` | The provider profile: `generic`, `zitadel`, `keycloak`, `auth0`, `okta`, `entra`. |
//! | `SERVICE_AUTH_CA_FILE` | A PEM file of extra root certificates, for a provider behind a private CA. |
//! | `SERVICE_AUTH_CLIENT_AUTH` | `basic` or `post` (with a client secret), `private_key_jwt` (with a key file). |
//! | `SERVICE_AUTH_DANGEROUS_ALLOW_HTTP_LOOPBACK` | `1` accepts plain `http://` to a loopback host, for tests and local development. |
//!
//! Files named by these variables are read when the configuration is built;
//! on Unix a key, secret or token file readable by group or others is
//! refused with the `chmod 600` fix.
//!
//! # Provider profiles
//!
//! A [`Profile`] carries what differs between providers: default scopes,
//! the `aud` of client assertions, scope conventions. Without an explicit
//! profile a ZITADEL key file selects [`Profile::ZITADEL`] and everything
//! else [`Profile::GENERIC`].

mod env;
mod error;
mod files;
mod profile;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tracing::debug;

#[cfg(feature = "tokio")]
use crate::authenticator::{Authenticator, AuthenticatorBuilder};
use crate::blocking::{BlockingAuthenticator, BlockingAuthenticatorBuilder};
use crate::credentials::{KeyError, KeyFile, KeyRing, SigningKey};
use crate::endpoint::{Issuer, TokenEndpoint, UrlPolicy};
use crate::flow::{
    AssertionAudience, ClientAssertion, ClientAuth, ClientCredentials, ConfigError, JwtBearer,
    RequestOptions,
};
use crate::manager::RefreshPolicy;
use crate::method::{Endpoints, Method};
use crate::secret::{ClientSecret, PersonalAccessToken};
use crate::transport::BlockingTransport;
#[cfg(feature = "tokio")]
use crate::transport::Transport;

pub use env::VARIABLES;
pub use error::{EnvError, Error, KeyFileProblem};
pub use profile::{Profile, ProfileAudience, ScopeConvention};

use files::FileRef;

/// How a client secret is sent (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientSecretAuth {
    /// `client_secret_basic`: in the `Authorization` header (the default,
    /// which every provider must support).
    #[default]
    Basic,
    /// `client_secret_post`: in the form body.
    Post,
}

/// A service's authentication configuration, checked when it is built.
///
/// Start from the constructor of the method, add options, then call
/// `build` (any async transport, feature `tokio`), [`build_blocking`](Self::build_blocking)
/// (any blocking transport), `build_reqwest` (feature `reqwest`) or
/// `build_ureq` (feature `blocking`). See the [module documentation](self).
///
/// `Debug` shows the method, URLs, paths, option values and header names;
/// never a secret, a key or a header value.
#[derive(Clone)]
#[must_use = "a configuration does nothing until it is built"]
pub struct Config {
    credentials: Credentials,
    issuer: Option<Input>,
    token_endpoint: Option<Input>,
    profile: Option<Profile>,
    scopes: Option<Vec<String>>,
    assertion_lifetime: Option<Duration>,
    audience: Option<String>,
    client_auth: Option<ClientSecretAuth>,
    connect_address: Option<SocketAddr>,
    user_agent: Option<String>,
    headers: Vec<(String, String)>,
    policy: RefreshPolicy,
    ca_file: Option<PathBuf>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    allow_http_loopback: bool,
    allow_shared_key_files: bool,
}

/// A checked configuration: the method, where the provider is, the request
/// options, the refresh policy and the settings of the built-in transports.
///
/// From [`Config::resolve`]. Use it to hand the parts to an authenticator
/// builder yourself, for example to set a clock or a seed.
#[derive(Debug)]
pub struct Resolved {
    method: Method,
    endpoints: Endpoints,
    options: RequestOptions,
    policy: RefreshPolicy,
    profile: Profile,
    transport: TransportSettings,
}

/// A text value with the environment variable it came from, if any.
#[derive(Clone, Debug)]
struct Input {
    value: String,
    variable: Option<&'static str>,
}

#[derive(Clone)]
enum Credentials {
    /// A ZITADEL key file or a JWK, read at build time.
    KeyFile {
        file: FileRef,
        client_id: Option<String>,
        /// Client authentication was asked for explicitly
        /// (`SERVICE_AUTH_CLIENT_AUTH=private_key_jwt`).
        client_auth: bool,
    },
    ClientKey {
        client_id: String,
        keys: KeyRing,
    },
    ClientSecret {
        client_id: String,
        secret: Source<ClientSecret>,
    },
    PersonalAccessToken(Source<PersonalAccessToken>),
}

/// A secret given as a value or as a file read at build time.
#[derive(Clone)]
enum Source<T> {
    Value(T),
    File(FileRef),
}

/// What the built-in transports are made with.
#[derive(Clone, Debug, Default)]
struct TransportSettings {
    /// The hosts the connect address replaces, and the address.
    connect: Option<(Vec<String>, SocketAddr)>,
    ca_file: Option<PathBuf>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    allow_http_loopback: bool,
}

/// Applies [`TransportSettings`] to a reqwest or ureq transport builder: their
/// setters share names except the one that trusts the CA file, given as
/// `$ca_file`.
#[cfg(any(feature = "reqwest", feature = "blocking"))]
macro_rules! configure_transport {
    ($builder:expr, $settings:expr, $ca_file:ident) => {{
        let settings: &TransportSettings = $settings;
        let mut builder = $builder;
        if let Some(timeout) = settings.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(timeout) = settings.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(path) = &settings.ca_file {
            builder = builder.$ca_file(path);
        }
        if settings.allow_http_loopback {
            builder = builder.dangerous_allow_http_loopback();
        }
        if let Some((hosts, address)) = &settings.connect {
            for host in hosts {
                builder = builder.resolve(host, *address);
            }
        }
        builder
    }};
}

/// The method names of [`Method::name`], for messages written before a
/// method exists.
const PRIVATE_KEY_JWT: &str = "private key JWT";
const CLIENT_CREDENTIALS: &str = "client credentials";
const PERSONAL_ACCESS_TOKEN: &str = "personal access token";

impl Config {
    /// Private key JWT with a ZITADEL key file (or a JWK file, see
    /// [`private_key_jwt_client_key_file`](Self::private_key_jwt_client_key_file)).
    ///
    /// A `serviceaccount` key uses the JWT bearer grant (RFC 7523 §2.1) with
    /// `iss` = `sub` = the file's `userId` and `aud` = the issuer; an
    /// `application` key uses client credentials with a client assertion
    /// (RFC 7523 §2.2) for the file's `clientId`. The file is read, and its
    /// permissions checked, when the configuration is built.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use service_auth::config::{Config, Profile};
    ///
    /// let key_file = "/run/secrets/service-user.json";
    /// let resolved = Config::private_key_jwt("https://my-instance.zitadel.cloud", key_file)
    ///     .resolve()?;
    /// assert_eq!(resolved.method().name(), "private key JWT");
    /// assert_eq!(resolved.profile(), Profile::ZITADEL, "a ZITADEL key file selects the profile");
    /// # Ok::<(), service_auth::config::Error>(())
    /// ```
    pub fn private_key_jwt(issuer: impl Into<String>, key_file: impl Into<PathBuf>) -> Self {
        Self::new(
            Some(issuer.into()),
            Credentials::KeyFile {
                file: FileRef::new(key_file, None),
                client_id: None,
                client_auth: false,
            },
        )
    }

    /// Private key JWT client authentication (RFC 7523 §2.2) for
    /// `client_id`, with the key read at build time from `key_file`: a JWK
    /// with `kid`, or a ZITADEL application key file whose `clientId` must
    /// be `client_id`.
    pub fn private_key_jwt_client_key_file(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        key_file: impl Into<PathBuf>,
    ) -> Self {
        Self::new(
            Some(issuer.into()),
            Credentials::KeyFile {
                file: FileRef::new(key_file, None),
                client_id: Some(client_id.into()),
                client_auth: true,
            },
        )
    }

    /// Private key JWT client authentication (RFC 7523 §2.2, OIDC Core §9):
    /// client credentials for `client_id`, with a client assertion signed by
    /// `key`. The assertion's `aud` follows the [`Profile`] unless
    /// [`audience`](Self::audience) sets it.
    ///
    /// `key` is a [`SigningKey`], or a [`KeyRing`] whose clone you keep to
    /// rotate the key later (the authenticators also hand it out:
    /// [`BlockingAuthenticator::key_ring`]).
    pub fn private_key_jwt_client(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        key: impl Into<KeyRing>,
    ) -> Self {
        Self::new(
            Some(issuer.into()),
            Credentials::ClientKey {
                client_id: client_id.into(),
                keys: key.into(),
            },
        )
    }

    /// Client credentials (RFC 6749 §4.4) for `client_id` with `secret`,
    /// sent as `client_secret_basic` unless [`client_auth`](Self::client_auth)
    /// says otherwise.
    pub fn client_credentials(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        secret: ClientSecret,
    ) -> Self {
        Self::new(
            Some(issuer.into()),
            Credentials::ClientSecret {
                client_id: client_id.into(),
                secret: Source::Value(secret),
            },
        )
    }

    /// Client credentials with the secret read at build time from
    /// `secret_file` (one trailing line break is ignored).
    pub fn client_credentials_secret_file(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        secret_file: impl Into<PathBuf>,
    ) -> Self {
        Self::new(
            Some(issuer.into()),
            Credentials::ClientSecret {
                client_id: client_id.into(),
                secret: Source::File(FileRef::new(secret_file, None)),
            },
        )
    }

    /// A personal access token, sent as it is: no request is ever made to
    /// the provider. The issuer is optional; when given it is checked like
    /// any other (HTTPS only).
    pub fn personal_access_token(issuer: Option<&str>, token: PersonalAccessToken) -> Self {
        Self::new(
            issuer.map(str::to_owned),
            Credentials::PersonalAccessToken(Source::Value(token)),
        )
    }

    /// A personal access token read at build time from `token_file` (one
    /// trailing line break is ignored).
    pub fn personal_access_token_file(
        issuer: Option<&str>,
        token_file: impl Into<PathBuf>,
    ) -> Self {
        Self::new(
            issuer.map(str::to_owned),
            Credentials::PersonalAccessToken(Source::File(FileRef::new(token_file, None))),
        )
    }

    fn new(issuer: Option<String>, credentials: Credentials) -> Self {
        Self {
            credentials,
            issuer: issuer.map(|value| Input {
                value,
                variable: None,
            }),
            token_endpoint: None,
            profile: None,
            scopes: None,
            assertion_lifetime: None,
            audience: None,
            client_auth: None,
            connect_address: None,
            user_agent: None,
            headers: Vec::new(),
            policy: RefreshPolicy::default(),
            ca_file: None,
            timeout: None,
            connect_timeout: None,
            allow_http_loopback: false,
            allow_shared_key_files: false,
        }
    }

    /// The method's name: "private key JWT", "client credentials" or
    /// "personal access token".
    pub fn method_name(&self) -> &'static str {
        match &self.credentials {
            Credentials::KeyFile { .. } | Credentials::ClientKey { .. } => PRIVATE_KEY_JWT,
            Credentials::ClientSecret { .. } => CLIENT_CREDENTIALS,
            Credentials::PersonalAccessToken(_) => PERSONAL_ACCESS_TOKEN,
        }
    }

    /// The provider profile (default: ZITADEL for a ZITADEL key file,
    /// otherwise generic).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// The scopes to request, replacing the profile's default scopes.
    /// Values holding spaces are split. Not for a personal access token.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes = scopes
            .into_iter()
            .flat_map(|s| {
                let parts: Vec<String> = s.as_ref().split_whitespace().map(str::to_owned).collect();
                parts
            })
            .collect();
        self.scopes = Some(scopes);
        self
    }

    /// The lifetime of each assertion (`exp - iat`): at most an hour for
    /// the JWT bearer grant, five minutes for a client assertion. Private
    /// key JWT only.
    pub fn assertion_lifetime(mut self, lifetime: Duration) -> Self {
        self.assertion_lifetime = Some(lifetime);
        self
    }

    /// The assertion's `aud`, replacing the profile's rule (the issuer for
    /// the JWT bearer grant). Private key JWT only.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The token endpoint URL: discovery is skipped, and the issuer, when
    /// given, stays the assertion audience.
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.token_endpoint = Some(Input {
            value: url.into(),
            variable: None,
        });
        self
    }

    /// How a client secret is sent (default [`ClientSecretAuth::Basic`]).
    /// Client credentials with a secret only.
    pub fn client_auth(mut self, auth: ClientSecretAuth) -> Self {
        self.client_auth = Some(auth);
        self
    }

    /// Connects to `address` for the issuer's host (and the configured
    /// token endpoint's), while URLs, the `Host` header and the TLS server
    /// name keep the public name: for a provider reached through an
    /// internal address. Applies to the transports of `build_reqwest` and
    /// `build_ureq`; a port in the URL wins over `address`'s port.
    pub fn connect_address(mut self, address: SocketAddr) -> Self {
        self.connect_address = Some(address);
        self
    }

    /// The `User-Agent` of token and discovery requests (default
    /// `service-auth/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Adds a header to every token and discovery request, for example what
    /// a gateway in front of the provider requires. The value is marked
    /// sensitive, so it never appears in `Debug` output. The headers the
    /// library sets itself are refused.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// How long before expiry a token is refreshed (at most half its
    /// lifetime); see [`RefreshPolicy::margin`].
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.policy.margin = margin;
        self
    }

    /// The whole refresh and backoff policy.
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// A PEM file of root certificates to trust, for a provider behind a
    /// private certificate authority: added to the platform's roots by
    /// `build_reqwest`, used *instead of* the public roots by `build_ureq`
    /// (ureq cannot merge them).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// How long one request may take in all, for the built-in transports.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long connecting may take, for the built-in transports.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Accepts plain `http://` issuers and endpoints whose host is a
    /// loopback address. Tokens and secrets then cross the loopback
    /// interface unencrypted: for tests and local development only.
    pub fn dangerous_allow_http_loopback(mut self) -> Self {
        self.allow_http_loopback = true;
        self
    }

    /// Reads key, secret and token files even when group or others may
    /// read them. Other users of the machine may then read the secret: only
    /// where that is understood, e.g. a container with a single user.
    pub fn dangerous_allow_insecure_key_file_permissions(mut self) -> Self {
        self.allow_shared_key_files = true;
        self
    }

    /// Checks everything and reads the files: URLs, key and secret files
    /// (with their permissions), keys, option combinations, headers.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the first problem found and how to fix it.
    pub fn resolve(self) -> Result<Resolved, Error> {
        let policy = self.url_policy();
        let issuer = parse_url(self.issuer.as_ref(), policy, Issuer::parse)?;
        let token_endpoint = parse_url(self.token_endpoint.as_ref(), policy, TokenEndpoint::parse)?;

        let (method, profile) = self.method(issuer.as_ref())?;
        let name = method.name();
        method.validate().map_err(|reason| Error::Method {
            method: name,
            reason,
        })?;
        let pat = method.grant().is_none();
        let endpoints = endpoints(name, pat, issuer, token_endpoint)?;
        let options = self.request_options()?;
        let transport = self.transport_settings(&endpoints)?;

        debug!(
            method = name,
            profile = profile.name,
            issuer = endpoints.issuer().map(Issuer::as_str),
            token_endpoint = endpoints.token_endpoint().map(TokenEndpoint::as_str),
            "configuration resolved"
        );
        Ok(Resolved {
            method,
            endpoints,
            options,
            policy: self.policy,
            profile,
            transport,
        })
    }

    /// Builds an [`Authenticator`] over `transport`.
    ///
    /// # Errors
    ///
    /// Those of [`resolve`](Self::resolve), and [`Error::TransportOptions`]
    /// when options for the built-in transports were set.
    #[cfg(feature = "tokio")]
    pub fn build(self, transport: impl Transport + Clone) -> Result<Authenticator, Error> {
        self.refuse_transport_options()?;
        self.resolve()?.build(transport)
    }

    /// Builds a [`BlockingAuthenticator`] over `transport`.
    ///
    /// # Errors
    ///
    /// [`Error`] when the configuration is incomplete or invalid, names a
    /// file that cannot be read or is readable by others, or holds a key
    /// that cannot be used; the message says which and how to fix it.
    pub fn build_blocking(
        self,
        transport: impl BlockingTransport,
    ) -> Result<BlockingAuthenticator, Error> {
        self.refuse_transport_options()?;
        self.resolve()?.build_blocking(transport)
    }

    /// Builds an [`Authenticator`] over a
    /// [`ReqwestTransport`](crate::transport::reqwest::ReqwestTransport)
    /// made from the CA file, connect address, timeouts and loopback opt-in.
    ///
    /// # Errors
    ///
    /// Those of [`resolve`](Self::resolve), and [`Error::Reqwest`] when the
    /// transport cannot be built (an unreadable CA file, for instance).
    #[cfg(feature = "reqwest")]
    pub fn build_reqwest(self) -> Result<Authenticator, Error> {
        let resolved = self.resolve()?;
        let transport = resolved.reqwest_transport()?;
        resolved.build(transport)
    }

    /// Builds a [`BlockingAuthenticator`] over a
    /// [`UreqTransport`](crate::transport::ureq::UreqTransport) made from the
    /// CA file, connect address, timeouts and loopback opt-in.
    ///
    /// # Errors
    ///
    /// Those of [`resolve`](Self::resolve), and [`Error::Ureq`] when the
    /// transport cannot be built.
    #[cfg(feature = "blocking")]
    pub fn build_ureq(self) -> Result<BlockingAuthenticator, Error> {
        let resolved = self.resolve()?;
        let transport = resolved.ureq_transport()?;
        resolved.build_blocking(transport)
    }

    fn url_policy(&self) -> UrlPolicy {
        if self.allow_http_loopback {
            UrlPolicy::dangerous_allow_http_loopback()
        } else {
            UrlPolicy::https_only()
        }
    }

    fn refuse_transport_options(&self) -> Result<(), Error> {
        let set = [
            (self.connect_address.is_some(), "connect address"),
            (self.ca_file.is_some(), "CA file"),
            (self.timeout.is_some(), "timeout"),
            (self.connect_timeout.is_some(), "connect timeout"),
        ];
        let options: Vec<&str> = set.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
        if options.is_empty() {
            return Ok(());
        }
        Err(Error::TransportOptions {
            options: format!("options {}", options.join(", ")),
        })
    }

    /// The method and the profile that shaped it.
    fn method(&self, issuer: Option<&Issuer>) -> Result<(Method, Profile), Error> {
        match &self.credentials {
            Credentials::PersonalAccessToken(source) => self.personal_access_token_method(source),
            Credentials::ClientSecret { client_id, secret } => {
                self.client_secret_method(client_id, secret)
            }
            Credentials::ClientKey { client_id, keys } => {
                self.refuse_client_auth(PRIVATE_KEY_JWT)?;
                let profile = self.profile.unwrap_or_default();
                let method =
                    self.client_assertion_method(client_id, keys.clone(), issuer, profile)?;
                Ok((method, profile))
            }
            Credentials::KeyFile {
                file,
                client_id,
                client_auth,
            } => self.key_file_method(file, client_id.as_deref(), *client_auth, issuer),
        }
    }

    fn personal_access_token_method(
        &self,
        source: &Source<PersonalAccessToken>,
    ) -> Result<(Method, Profile), Error> {
        self.refuse(self.scopes.is_some(), "scopes", PERSONAL_ACCESS_TOKEN)?;
        self.refuse_assertion_options(PERSONAL_ACCESS_TOKEN)?;
        self.refuse_client_auth(PERSONAL_ACCESS_TOKEN)?;
        let token = match source {
            Source::Value(token) => token.clone(),
            Source::File(file) => {
                let what = "personal access token file";
                let text = files::read_secret_value(file, what, self.allow_shared_key_files)?;
                PersonalAccessToken::new(text.as_str())
            }
        };
        Ok((Method::from(token), self.profile.unwrap_or_default()))
    }

    fn client_secret_method(
        &self,
        client_id: &str,
        source: &Source<ClientSecret>,
    ) -> Result<(Method, Profile), Error> {
        self.refuse_assertion_options(CLIENT_CREDENTIALS)?;
        let secret = match source {
            Source::Value(secret) => secret.clone(),
            Source::File(file) => {
                let what = "client secret file";
                let text = files::read_secret_value(file, what, self.allow_shared_key_files)?;
                ClientSecret::new(text.as_str())
            }
        };
        let auth = match self.client_auth.unwrap_or_default() {
            ClientSecretAuth::Basic => ClientAuth::SecretBasic(secret),
            ClientSecretAuth::Post => ClientAuth::SecretPost(secret),
        };
        let profile = self.profile.unwrap_or_default();
        let scopes = self.scopes_for(profile);
        check_scope_convention(profile, &scopes)?;
        let grant = ClientCredentials::new(client_id, auth).scopes(scopes);
        Ok((Method::from(grant), profile))
    }

    fn key_file_method(
        &self,
        file: &FileRef,
        client_id: Option<&str>,
        client_auth: bool,
        issuer: Option<&Issuer>,
    ) -> Result<(Method, Profile), Error> {
        self.refuse_client_auth(PRIVATE_KEY_JWT)?;
        let text = files::read_private_text(file, "key file", self.allow_shared_key_files)?;
        let parsed = parse_key_file(&text, file)?;
        let (key_use, default_profile) =
            key_use(parsed, client_id, client_auth).map_err(|problem| Error::KeyFileUse {
                path: file.path.clone(),
                variable: file.variable,
                problem,
            })?;

        let profile = self.profile.unwrap_or(default_profile);
        let method = match key_use {
            KeyUse::JwtBearer { user_id, key } => {
                self.jwt_bearer_method(user_id, key, issuer, profile)?
            }
            KeyUse::ClientAssertion { client_id, key } => {
                self.client_assertion_method(&client_id, KeyRing::new(key), issuer, profile)?
            }
        };
        Ok((method, profile))
    }

    fn jwt_bearer_method(
        &self,
        user_id: String,
        key: SigningKey,
        issuer: Option<&Issuer>,
        profile: Profile,
    ) -> Result<Method, Error> {
        let Some(issuer) = issuer else {
            return Err(Error::MissingIssuer {
                method: PRIVATE_KEY_JWT,
                needed_for: "the audience (`aud`) of the JWT bearer assertion",
            });
        };
        let mut grant =
            JwtBearer::new(user_id, KeyRing::new(key), issuer).scopes(self.scopes_for(profile));
        if let Some(audience) = &self.audience {
            grant = grant.audience(audience.clone());
        }
        if let Some(lifetime) = self.assertion_lifetime {
            grant = grant
                .assertion_lifetime(lifetime)
                .map_err(invalid_key_jwt)?;
        }
        Ok(Method::from(grant))
    }

    fn client_assertion_method(
        &self,
        client_id: &str,
        keys: KeyRing,
        issuer: Option<&Issuer>,
        profile: Profile,
    ) -> Result<Method, Error> {
        let audience = match &self.audience {
            Some(audience) => AssertionAudience::Custom(audience.clone()),
            None => profile_audience(profile, issuer)?,
        };
        let mut assertion = ClientAssertion::new(keys).audience(audience);
        if let Some(lifetime) = self.assertion_lifetime {
            assertion = assertion.lifetime(lifetime).map_err(invalid_key_jwt)?;
        }
        let scopes = self.scopes_for(profile);
        check_scope_convention(profile, &scopes)?;
        let auth = ClientAuth::PrivateKeyJwt(assertion);
        Ok(Method::from(
            ClientCredentials::new(client_id, auth).scopes(scopes),
        ))
    }

    fn scopes_for(&self, profile: Profile) -> Vec<String> {
        match &self.scopes {
            Some(scopes) => scopes.clone(),
            None => profile
                .default_scopes
                .iter()
                .map(|&s| s.to_owned())
                .collect(),
        }
    }

    fn refuse(&self, set: bool, option: &'static str, method: &'static str) -> Result<(), Error> {
        match set {
            true => Err(Error::NotApplicable { option, method }),
            false => Ok(()),
        }
    }

    fn refuse_assertion_options(&self, method: &'static str) -> Result<(), Error> {
        let lifetime = self.assertion_lifetime.is_some();
        self.refuse(lifetime, "assertion lifetime", method)?;
        self.refuse(self.audience.is_some(), "assertion audience", method)
    }

    fn refuse_client_auth(&self, method: &'static str) -> Result<(), Error> {
        let option = "client secret authentication (`client_auth`)";
        self.refuse(self.client_auth.is_some(), option, method)
    }

    fn request_options(&self) -> Result<RequestOptions, Error> {
        let mut options = RequestOptions::default();
        if let Some(user_agent) = &self.user_agent {
            let value = HeaderValue::from_str(user_agent).map_err(|_| Error::InvalidUserAgent)?;
            options.user_agent = Some(value);
        }
        for (name, value) in &self.headers {
            let invalid = |name: &str, part| Error::InvalidHeader {
                name: printable(name),
                part,
            };
            let header =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(name, "name"))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| invalid(name, "value"))?;
            value.set_sensitive(true);
            options.extra_headers.append(header, value);
        }
        options
            .validate()
            .map_err(|reason| Error::RequestOptions { reason })?;
        Ok(options)
    }

    fn transport_settings(&self, endpoints: &Endpoints) -> Result<TransportSettings, Error> {
        let connect = match self.connect_address {
            Some(address) => Some((connect_hosts(endpoints)?, address)),
            None => None,
        };
        Ok(TransportSettings {
            connect,
            ca_file: self.ca_file.clone(),
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            allow_http_loopback: self.allow_http_loopback,
        })
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Config")
            .field("method", &self.method_name())
            .field("credentials", &self.credentials)
            .field("issuer", &self.issuer.as_ref().map(|i| &i.value))
            .field(
                "token_endpoint",
                &self.token_endpoint.as_ref().map(|t| &t.value),
            )
            .field("profile", &self.profile.map(|p| p.name))
            .field("scopes", &self.scopes)
            .field("assertion_lifetime", &self.assertion_lifetime)
            .field("audience", &self.audience)
            .field("client_auth", &self.client_auth)
            .field("connect_address", &self.connect_address)
            .field("user_agent", &self.user_agent)
            .field("header_names", &header_names)
            .field("refresh_policy", &self.policy)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("dangerous_allow_http_loopback", &self.allow_http_loopback)
            .field(
                "dangerous_allow_insecure_key_file_permissions",
                &self.allow_shared_key_files,
            )
            .finish()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyFile {
                file,
                client_id,
                client_auth,
            } => f
                .debug_struct("KeyFile")
                .field("path", &file.path)
                .field("client_id", client_id)
                .field("client_auth", client_auth)
                .finish(),
            Self::ClientKey { client_id, keys } => f
                .debug_struct("ClientKey")
                .field("client_id", client_id)
                .field("keys", keys)
                .finish(),
            Self::ClientSecret { client_id, secret } => f
                .debug_struct("ClientSecret")
                .field("client_id", client_id)
                .field("secret", secret)
                .finish(),
            Self::PersonalAccessToken(token) => {
                f.debug_tuple("PersonalAccessToken").field(token).finish()
            }
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The secret types' own `Debug` is redacted.
            Self::Value(value) => value.fmt(f),
            Self::File(file) => f.debug_tuple("File").field(&file.path).finish(),
        }
    }
}

impl Resolved {
    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Where the provider is.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The user agent and extra headers.
    pub fn request_options(&self) -> &RequestOptions {
        &self.options
    }

    /// The refresh policy.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    /// The provider profile the method was shaped by.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The connect address and the host names it stands in for, for a
    /// transport of your own.
    pub fn connect_address(&self) -> Option<(&[String], SocketAddr)> {
        let (hosts, address) = self.transport.connect.as_ref()?;
        Some((hosts, *address))
    }

    /// The CA file, for a transport of your own.
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.transport.ca_file.as_deref()
    }

    /// The request timeout and the connect timeout, for a transport of
    /// your own.
    pub fn timeouts(&self) -> (Option<Duration>, Option<Duration>) {
        (self.transport.timeout, self.transport.connect_timeout)
    }

    /// Whether plain HTTP to a loopback host is allowed.
    pub fn allows_http_loopback(&self) -> bool {
        self.transport.allow_http_loopback
    }

    /// An [`AuthenticatorBuilder`] with the method, endpoints, request
    /// options and policy set; add a clock or a seed, then build.
    #[cfg(feature = "tokio")]
    pub fn authenticator(self) -> AuthenticatorBuilder {
        Authenticator::builder(self.method, self.endpoints)
            .policy(self.policy)
            .request_options(self.options)
    }

    /// A [`BlockingAuthenticatorBuilder`] with the method, endpoints,
    /// request options and policy set.
    pub fn blocking_authenticator(self) -> BlockingAuthenticatorBuilder {
        BlockingAuthenticator::builder(self.method, self.endpoints)
            .policy(self.policy)
            .request_options(self.options)
    }

    /// The reqwest transport these settings describe.
    ///
    /// # Errors
    ///
    /// [`Error::Reqwest`] when it cannot be built.
    #[cfg(feature = "reqwest")]
    pub fn reqwest_transport(&self) -> Result<crate::transport::reqwest::ReqwestTransport, Error> {
        use crate::transport::reqwest::ReqwestTransport;

        let builder = ReqwestTransport::builder();
        let builder = configure_transport!(builder, &self.transport, extra_root_certificate_file);
        builder.build().map_err(Error::Reqwest)
    }

    /// The ureq transport these settings describe.
    ///
    /// # Errors
    ///
    /// [`Error::Ureq`] when it cannot be built.
    #[cfg(feature = "blocking")]
    pub fn ureq_transport(&self) -> Result<crate::transport::ureq::UreqTransport, Error> {
        use crate::transport::ureq::UreqTransport;

        let builder = UreqTransport::builder();
        let builder = configure_transport!(builder, &self.transport, root_certificate_file);
        builder.build().map_err(Error::Ureq)
    }

    #[cfg(feature = "tokio")]
    fn build(self, transport: impl Transport + Clone) -> Result<Authenticator, Error> {
        let method = self.method.name();
        self.authenticator()
            .build(transport)
            .map_err(|reason| Error::Method { method, reason })
    }

    fn build_blocking(
        self,
        transport: impl BlockingTransport,
    ) -> Result<BlockingAuthenticator, Error> {
        let method = self.method.name();
        self.blocking_authenticator()
            .build(transport)
            .map_err(|reason| Error::Method { method, reason })
    }
}

/// A key file's content: a ZITADEL key file or a JWK.
enum ParsedKey {
    Zitadel(KeyFile),
    Jwk(SigningKey),
}

/// What a key file's key signs, for whom.
enum KeyUse {
    /// JWT bearer grant assertions for a service user (RFC 7523 §2.1).
    JwtBearer { user_id: String, key: SigningKey },
    /// Client assertions for a client (RFC 7523 §2.2).
    ClientAssertion { client_id: String, key: SigningKey },
}

/// How a key file's key is used, given the client id and client
/// authentication the configuration asks for, and the profile its format
/// implies: ZITADEL for a ZITADEL key file, generic for a JWK.
fn key_use(
    parsed: ParsedKey,
    client_id: Option<&str>,
    client_auth: bool,
) -> Result<(KeyUse, Profile), KeyFileProblem> {
    match parsed {
        ParsedKey::Zitadel(KeyFile::ServiceAccount { .. }) if client_auth => {
            Err(KeyFileProblem::ServiceAccountForClientAuth)
        }
        ParsedKey::Zitadel(KeyFile::ServiceAccount { .. }) if client_id.is_some() => {
            Err(KeyFileProblem::ServiceAccountWithClientId)
        }
        ParsedKey::Zitadel(KeyFile::ServiceAccount { user_id, key, .. }) => {
            Ok((KeyUse::JwtBearer { user_id, key }, Profile::ZITADEL))
        }
        ParsedKey::Zitadel(KeyFile::Application {
            client_id: in_file,
            key,
            ..
        }) => match client_id {
            Some(configured) if configured != in_file => Err(KeyFileProblem::ClientIdMismatch {
                in_file,
                configured: configured.to_owned(),
            }),
            _ => Ok((
                KeyUse::ClientAssertion {
                    client_id: in_file,
                    key,
                },
                Profile::ZITADEL,
            )),
        },
        ParsedKey::Jwk(key) => match client_id {
            Some(client_id) => Ok((
                KeyUse::ClientAssertion {
                    client_id: client_id.to_owned(),
                    key,
                },
                Profile::GENERIC,
            )),
            None => Err(KeyFileProblem::NoClientId),
        },
    }
}

/// Reads a key file as a ZITADEL key file, else as a JWK. A PEM key is
/// checked (so that a certificate or an encrypted key gets its own error)
/// and then refused for want of a key id.
fn parse_key_file(text: &str, file: &FileRef) -> Result<ParsedKey, Error> {
    let key_error = |reason| Error::Key {
        path: Some(file.path.clone()),
        variable: file.variable,
        reason,
    };
    if text.trim_start().starts_with("-----BEGIN") {
        SigningKey::from_pem(text, "unused").map_err(key_error)?;
        return Err(Error::KeyFileUse {
            path: file.path.clone(),
            variable: file.variable,
            problem: KeyFileProblem::PemWithoutKeyId,
        });
    }
    match KeyFile::parse(text) {
        Ok(key_file) => Ok(ParsedKey::Zitadel(key_file)),
        // No `type` member: not a ZITADEL key file; a JWK has `kty` instead.
        Err(KeyError::MalformedKeyFile { field: "type", .. }) => SigningKey::from_jwk(text)
            .map(ParsedKey::Jwk)
            .map_err(key_error),
        Err(reason) => Err(key_error(reason)),
    }
}

fn parse_url<T>(
    input: Option<&Input>,
    policy: UrlPolicy,
    parse: fn(&str, UrlPolicy) -> Result<T, crate::endpoint::UrlError>,
) -> Result<Option<T>, Error> {
    let Some(input) = input else {
        return Ok(None);
    };
    parse(&input.value, policy)
        .map(Some)
        .map_err(|reason| Error::Url {
            variable: input.variable,
            reason,
        })
}

fn endpoints(
    method: &'static str,
    personal_access_token: bool,
    issuer: Option<Issuer>,
    token_endpoint: Option<TokenEndpoint>,
) -> Result<Endpoints, Error> {
    match (issuer, token_endpoint) {
        (issuer, Some(token_endpoint)) => Ok(Endpoints::Fixed {
            issuer,
            token_endpoint,
        }),
        (Some(issuer), None) => Ok(Endpoints::Discover(issuer)),
        (None, None) if personal_access_token => Ok(Endpoints::Fixed {
            issuer: None,
            token_endpoint: unused_token_endpoint(),
        }),
        (None, None) => Err(Error::MissingIssuer {
            method,
            needed_for: "discovering the token endpoint (or give the token endpoint, \
                         SERVICE_AUTH_TOKEN_ENDPOINT)",
        }),
    }
}

/// The endpoint a personal access token without an issuer is configured
/// with: the drivers need one, and a personal access token never sends a
/// request. `.invalid` is reserved (RFC 2606 §2), so nothing could answer.
fn unused_token_endpoint() -> TokenEndpoint {
    // A constant, valid https URL: parsing cannot fail.
    TokenEndpoint::parse("https://unused.invalid/token", UrlPolicy::https_only())
        .expect("a constant valid URL")
}

/// The audience a profile gives client assertions.
fn profile_audience(profile: Profile, issuer: Option<&Issuer>) -> Result<AssertionAudience, Error> {
    let issuer = || {
        issuer.ok_or(Error::MissingIssuer {
            method: PRIVATE_KEY_JWT,
            needed_for: "the client assertion audience (`aud`), which the provider profile sets \
                         to the issuer (or set the audience explicitly)",
        })
    };
    Ok(match profile.client_assertion_audience {
        ProfileAudience::TokenEndpoint => AssertionAudience::TokenEndpoint,
        ProfileAudience::Issuer => AssertionAudience::Issuer(issuer()?.as_str().to_owned()),
        ProfileAudience::IssuerWithTrailingSlash => {
            AssertionAudience::Custom(format!("{}/", issuer()?.as_str()))
        }
    })
}

fn check_scope_convention(profile: Profile, scopes: &[String]) -> Result<(), Error> {
    let ScopeConvention::ResourceDefault = profile.scope_convention else {
        return Ok(());
    };
    if scopes.iter().any(|scope| scope.ends_with("/.default")) {
        return Ok(());
    }
    let found = match scopes {
        [] => "none".to_owned(),
        _ => format!("`{}`", scopes.join(" ")),
    };
    Err(Error::ScopeConvention {
        profile: profile.name,
        found,
    })
}

fn invalid_key_jwt(reason: ConfigError) -> Error {
    Error::Method {
        method: PRIVATE_KEY_JWT,
        reason,
    }
}

/// The hosts a connect address stands in for: the issuer's and the token
/// endpoint's, which must be names (an address needs no resolving).
fn connect_hosts(endpoints: &Endpoints) -> Result<Vec<String>, Error> {
    let urls = [
        ("issuer", endpoints.issuer().map(Issuer::as_str)),
        (
            "token endpoint",
            endpoints.token_endpoint().map(TokenEndpoint::as_str),
        ),
    ];
    let mut hosts: Vec<String> = Vec::new();
    for (what, url) in urls {
        let Some(url) = url else { continue };
        let Some(host) = url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned))
        else {
            continue;
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_ok() {
            return Err(Error::ConnectAddressNeedsHostName {
                what,
                url: url.to_owned(),
            });
        }
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    Ok(hosts)
}

/// A value for a message: printable ASCII, cut to 64 characters.
pub(crate) fn printable(value: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = value
        .chars()
        .take(MAX)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if value.chars().count() > MAX {
        out.push('…');
    }
    out
}
