//! The token request: one POST to the token endpoint, one access token back.
//!
//! A [`Grant`] says how the client asks:
//!
//! - [`JwtBearer`]: private key JWT as the authorization grant (RFC 7523
//!   §2.1, ZITADEL's "JWT profile"). The assertion's `iss` and `sub` are the
//!   service user, its `aud` the issuer.
//! - [`ClientCredentials`] (RFC 6749 §4.4), with the client authenticated by
//!   a secret in the `Authorization` header or in the body (RFC 6749
//!   §2.3.1), or by a signed client assertion (RFC 7523 §2.2, OIDC Core §9).
//!
//! [`TokenFlow::start`] turns a grant into the request and an
//! [`AwaitingTokenResponse`], which turns the response into a [`Token`].
//!
//! # Assertion times
//!
//! `iat` is the wall clock of the [`Now`] passed to `start`, minus a
//! backdate ([`DEFAULT_IAT_BACKDATE`]); `exp` is `iat` plus the assertion
//! lifetime. The backdate absorbs a host clock that runs a little ahead of
//! the provider's: ZITADEL refuses an `iat` more than a second in its future,
//! and no provider refuses one a few seconds in its past.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use form_urlencoded::Serializer;
use http::{HeaderValue, Method, header};
use tracing::debug;
use zeroize::Zeroizing;

use super::{ConfigError, RequestOptions, accept_json};
use crate::assertion::{self, AssertionClaims};
use crate::credentials::KeyRing;
use crate::endpoint::{Issuer, TokenEndpoint};
use crate::error::TokenError;
use crate::response::parse_token_response;
use crate::rng::Rng;
use crate::secret::ClientSecret;
use crate::time::Now;
use crate::token::Token;

/// The `grant_type` of private key JWT as the authorization grant (RFC 7523 §2.1).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The `client_assertion_type` of private key JWT client authentication
/// (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The default and longest lifetime of a [`JwtBearer`] assertion: one hour,
/// the most ZITADEL accepts.
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// The default lifetime of a [`ClientAssertion`]. The assertion is used once,
/// right away, so a minute covers any network path.
pub const DEFAULT_CLIENT_ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// The longest lifetime of a [`ClientAssertion`]: five minutes. RFC 7523 §3
/// leaves it to the server; a short one limits what a stolen assertion buys.
pub const MAX_CLIENT_ASSERTION_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// How far `iat` is set before the current time by default: five seconds.
pub const DEFAULT_IAT_BACKDATE: Duration = Duration::from_secs(5);

/// The largest `iat` backdate; larger values are cut to it. A host clock
/// further off than a minute needs fixing (NTP), not a wider tolerance.
pub const MAX_IAT_BACKDATE: Duration = Duration::from_secs(60);

/// Private key JWT as the authorization grant (RFC 7523 §2.1; ZITADEL's
/// "JWT profile" for service users).
///
/// The assertion has `iss` = `sub` = the service user's id, `aud` = the
/// issuer exactly as normalised by [`Issuer::parse`], a fresh `jti`, and
/// `iat`/`exp` as described in the [module documentation](self).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use service_auth::credentials::{Algorithm, KeyRing, SigningKey};
/// use service_auth::endpoint::{Issuer, TokenEndpoint, UrlPolicy};
/// use service_auth::flow::{Grant, JwtBearer, RequestOptions, TokenFlow};
/// use service_auth::{rng::Rng, time::Now};
///
/// let policy = UrlPolicy::https_only();
/// let issuer = Issuer::parse("https://auth.example.com", policy)?;
/// let endpoint = TokenEndpoint::parse("https://auth.example.com/oauth/v2/token", policy)?;
/// let keys = KeyRing::new(SigningKey::generate(Algorithm::Es256, "key-1")?);
/// let grant = Grant::from(
///     JwtBearer::new("service-user-1", keys, &issuer)
///         .scopes(["openid", "urn:zitadel:iam:org:project:id:zitadel:aud"])
///         .assertion_lifetime(Duration::from_secs(600))?,
/// );
///
/// let now = Now::new(Instant::now(), SystemTime::now());
/// let options = RequestOptions::default();
/// let (awaiting, request) =
///     TokenFlow::new(&grant, &endpoint, &options).start(now, &mut Rng::from_seed(7))?;
/// assert_eq!(request.method(), http::Method::POST);
/// let body = String::from_utf8(request.body().clone())?;
/// let grant_type = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
/// assert!(body.starts_with(&format!("{grant_type}&assertion=ey")));
///
/// let body = r#"{"access_token":"at","token_type":"Bearer","expires_in":43199}"#;
/// let response = http::Response::new(body);
/// let token = awaiting.handle_response(response, now)?;
/// assert_eq!(token.lifetime(), Some(Duration::from_secs(43199)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct JwtBearer {
    user_id: String,
    keys: KeyRing,
    audience: String,
    scopes: Vec<String>,
    lifetime: Duration,
    iat_backdate: Duration,
}

impl JwtBearer {
    /// The grant for service user `user_id`, signing with the current key of
    /// `keys`, with `aud` = `issuer.as_str()`.
    pub fn new(user_id: impl Into<String>, keys: KeyRing, issuer: &Issuer) -> Self {
        Self {
            user_id: user_id.into(),
            keys,
            audience: issuer.as_str().to_owned(),
            scopes: Vec::new(),
            lifetime: MAX_ASSERTION_LIFETIME,
            iat_backdate: DEFAULT_IAT_BACKDATE,
        }
    }

    /// The scopes to request, replacing any set before (default: none, so no
    /// `scope` parameter). Values holding spaces are split; duplicates are
    /// dropped.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = collect_scopes(scopes);
        self
    }

    /// Replaces the assertion's `aud` (default: the issuer).
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = aud.into();
        self
    }

    /// Sets the assertion lifetime, `exp - iat` (default and maximum:
    /// [`MAX_ASSERTION_LIFETIME`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::LifetimeOutOfRange`] below one second or above one hour.
    pub fn assertion_lifetime(mut self, lifetime: Duration) -> Result<Self, ConfigError> {
        self.lifetime = check_lifetime("assertion lifetime", lifetime, MAX_ASSERTION_LIFETIME)?;
        Ok(self)
    }

    /// Sets how far `iat` lies before the current time (default
    /// [`DEFAULT_IAT_BACKDATE`], at most [`MAX_IAT_BACKDATE`]: larger values
    /// are cut to it).
    pub fn iat_backdate(mut self, skew: Duration) -> Self {
        self.iat_backdate = skew.min(MAX_IAT_BACKDATE);
        self
    }

    /// The service user's id: the assertion's `iss` and `sub`.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The keys the assertion is signed with.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Checks the configuration before any request is built.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Empty`] for an empty user id or audience,
    /// [`ConfigError::BackdateExceedsLifetime`] when the assertion would be
    /// expired when sent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        require("service user id", &self.user_id)?;
        require("assertion audience", &self.audience)?;
        check_backdate("assertion lifetime", self.iat_backdate, self.lifetime)
    }

    fn write_form(
        &self,
        form: &mut Serializer<'_, String>,
        now: Now,
        rng: &mut Rng,
    ) -> Result<(), TokenError> {
        let claims = claims(
            &self.user_id,
            &self.audience,
            self.lifetime,
            self.iat_backdate,
            now,
            rng,
        );
        let key = self.keys.current();
        let assertion = assertion::sign(&key, &claims)?;
        debug!(
            key_id = %key.key_id(),
            aud = %claims.aud,
            iat = claims.iat,
            exp = claims.exp,
            "assertion signed"
        );
        form.append_pair("grant_type", JWT_BEARER_GRANT_TYPE);
        form.append_pair("assertion", assertion.secret());
        append_scope(form, &self.scopes);
        Ok(())
    }
}

/// The client credentials grant (RFC 6749 §4.4).
///
/// # Examples
///
/// ```
/// use service_auth::endpoint::{TokenEndpoint, UrlPolicy};
/// use service_auth::flow::{ClientAuth, ClientCredentials, Grant};
/// use service_auth::secret::ClientSecret;
///
/// let grant = Grant::from(
///     ClientCredentials::new("my-client", ClientAuth::SecretPost(ClientSecret::new("s3cret")))
///         .scopes(["read", "write"]),
/// );
/// assert_eq!(grant.name(), "client credentials");
/// grant.validate()?;
/// # Ok::<(), service_auth::flow::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    client_id: String,
    auth: ClientAuth,
    scopes: Vec<String>,
}

impl ClientCredentials {
    /// The grant for `client_id`, authenticated by `auth`.
    pub fn new(client_id: impl Into<String>, auth: ClientAuth) -> Self {
        Self {
            client_id: client_id.into(),
            auth,
            scopes: Vec::new(),
        }
    }

    /// The scopes to request, replacing any set before (default: none).
    /// Values holding spaces are split; duplicates are dropped.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = collect_scopes(scopes);
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How the client authenticates.
    pub fn auth(&self) -> &ClientAuth {
        &self.auth
    }

    /// Checks the configuration before any request is built.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Empty`] for an empty client id, client secret or
    /// assertion audience; [`ConfigError::BackdateExceedsLifetime`] for a
    /// client assertion that would be expired when sent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        require("client id", &self.client_id)?;
        match &self.auth {
            ClientAuth::SecretBasic(secret) | ClientAuth::SecretPost(secret) => {
                require("client secret", secret.secret())
            }
            ClientAuth::PrivateKeyJwt(assertion) => assertion.validate(),
        }
    }

    /// Writes the body and returns the `Authorization` header, if any.
    fn write_form(
        &self,
        form: &mut Serializer<'_, String>,
        endpoint: &TokenEndpoint,
        now: Now,
        rng: &mut Rng,
    ) -> Result<Option<HeaderValue>, TokenError> {
        form.append_pair("grant_type", "client_credentials");
        append_scope(form, &self.scopes);
        match &self.auth {
            ClientAuth::SecretBasic(secret) => return Ok(Some(basic(&self.client_id, secret))),
            ClientAuth::SecretPost(secret) => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", secret.secret());
            }
            ClientAuth::PrivateKeyJwt(client_assertion) => {
                let assertion = client_assertion.sign(&self.client_id, endpoint, now, rng)?;
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE);
                form.append_pair("client_assertion", assertion.secret());
            }
        }
        Ok(None)
    }
}

/// How a confidential client proves its identity at the token endpoint.
///
/// `Debug` shows the kind and the key ids, never a secret.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `client_secret_basic`: `Authorization: Basic
    /// base64(urlencode(client_id) ":" urlencode(secret))` (RFC 6749 §2.3.1,
    /// the encoding of Appendix B before base64). The header is marked
    /// sensitive.
    SecretBasic(ClientSecret),
    /// `client_secret_post`: `client_id` and `client_secret` in the body
    /// (RFC 6749 §2.3.1).
    SecretPost(ClientSecret),
    /// `private_key_jwt`: a signed client assertion in the body (RFC 7523
    /// §2.2, OIDC Core §9).
    PrivateKeyJwt(ClientAssertion),
}

impl ClientAuth {
    /// The method's registered name (RFC 7591 §2, as in
    /// `token_endpoint_auth_methods_supported`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SecretBasic(_) => "client_secret_basic",
            Self::SecretPost(_) => "client_secret_post",
            Self::PrivateKeyJwt(_) => "private_key_jwt",
        }
    }
}

/// The signed client assertion of [`ClientAuth::PrivateKeyJwt`].
///
/// Claims: `iss` = `sub` = the client id, `aud` per [`AssertionAudience`],
/// `jti` fresh from the [`Rng`] for every request (RFC 7523 §3 lets servers
/// refuse a replay), `iat` backdated as for [`JwtBearer`], and `exp` = `iat`
/// + lifetime ([`DEFAULT_CLIENT_ASSERTION_LIFETIME`] unless set).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use service_auth::credentials::{Algorithm, KeyRing, SigningKey};
/// use service_auth::endpoint::{TokenEndpoint, UrlPolicy};
/// use service_auth::flow::{
///     AssertionAudience, ClientAssertion, ClientAuth, ClientCredentials, Grant, RequestOptions,
///     TokenFlow,
/// };
/// use service_auth::{rng::Rng, time::Now};
///
/// let endpoint = TokenEndpoint::parse(
///     "https://sso.example.com/realms/prod/protocol/openid-connect/token",
///     UrlPolicy::https_only(),
/// )?;
/// let keys = KeyRing::new(SigningKey::generate(Algorithm::Es256, "key-1")?);
/// let assertion = ClientAssertion::new(keys)
///     .audience(AssertionAudience::Issuer("https://sso.example.com/realms/prod".into()))
///     .lifetime(Duration::from_secs(120))?;
/// let auth = ClientAuth::PrivateKeyJwt(assertion);
/// let grant = Grant::from(ClientCredentials::new("billing", auth));
/// assert_eq!(grant.name(), "private key JWT");
///
/// let now = Now::new(Instant::now(), SystemTime::now());
/// let options = RequestOptions::default();
/// let (_awaiting, request) =
///     TokenFlow::new(&grant, &endpoint, &options).start(now, &mut Rng::from_seed(1))?;
/// let form: Vec<(String, String)> = form_urlencoded::parse(request.body()).into_owned().collect();
/// assert_eq!(form[0], ("grant_type".into(), "client_credentials".into()));
/// assert_eq!(form[1], ("client_id".into(), "billing".into()));
/// assert_eq!(form[3].0, "client_assertion");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientAssertion {
    keys: KeyRing,
    audience: AssertionAudience,
    lifetime: Duration,
    iat_backdate: Duration,
}

impl ClientAssertion {
    /// Client assertions signed with the current key of `keys`.
    pub fn new(keys: KeyRing) -> Self {
        Self {
            keys,
            audience: AssertionAudience::default(),
            lifetime: DEFAULT_CLIENT_ASSERTION_LIFETIME,
            iat_backdate: DEFAULT_IAT_BACKDATE,
        }
    }

    /// Sets the `aud` claim (default: the token endpoint).
    pub fn audience(mut self, audience: AssertionAudience) -> Self {
        self.audience = audience;
        self
    }

    /// Sets the lifetime, `exp - iat`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::LifetimeOutOfRange`] below one second or above
    /// [`MAX_CLIENT_ASSERTION_LIFETIME`].
    pub fn lifetime(mut self, lifetime: Duration) -> Result<Self, ConfigError> {
        let what = "client assertion lifetime";
        self.lifetime = check_lifetime(what, lifetime, MAX_CLIENT_ASSERTION_LIFETIME)?;
        Ok(self)
    }

    /// Sets how far `iat` lies before the current time (default
    /// [`DEFAULT_IAT_BACKDATE`], cut to [`MAX_IAT_BACKDATE`]).
    pub fn iat_backdate(mut self, skew: Duration) -> Self {
        self.iat_backdate = skew.min(MAX_IAT_BACKDATE);
        self
    }

    /// The keys the assertion is signed with.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Empty`] for an empty explicit audience,
    /// [`ConfigError::BackdateExceedsLifetime`] when the assertion would be
    /// expired when sent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let AssertionAudience::Issuer(aud) | AssertionAudience::Custom(aud) = &self.audience {
            require("client assertion audience", aud)?;
        }
        check_backdate(
            "client assertion lifetime",
            self.iat_backdate,
            self.lifetime,
        )
    }

    fn sign(
        &self,
        client_id: &str,
        endpoint: &TokenEndpoint,
        now: Now,
        rng: &mut Rng,
    ) -> Result<crate::secret::Assertion, TokenError> {
        let audience = match &self.audience {
            AssertionAudience::TokenEndpoint => endpoint.as_str(),
            AssertionAudience::Issuer(aud) | AssertionAudience::Custom(aud) => aud,
        };
        let claims = claims(
            client_id,
            audience,
            self.lifetime,
            self.iat_backdate,
            now,
            rng,
        );
        let key = self.keys.current();
        let assertion = assertion::sign(&key, &claims)?;
        debug!(
            key_id = %key.key_id(),
            aud = %claims.aud,
            iat = claims.iat,
            exp = claims.exp,
            "client assertion signed"
        );
        Ok(assertion)
    }
}

/// The `aud` of a client assertion. Providers disagree: OIDC Core §9 names
/// the token endpoint; some (Okta's org server for some flows, Keycloak
/// configured so) want the issuer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssertionAudience {
    /// The token endpoint URL the request goes to (OIDC Core §9).
    #[default]
    TokenEndpoint,
    /// The issuer; pass [`Issuer::as_str`].
    Issuer(String),
    /// Any other value the provider documents.
    Custom(String),
}

/// How the client asks for a token: the grant of the token request.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Grant {
    /// Private key JWT as the authorization grant (RFC 7523 §2.1).
    JwtBearer(JwtBearer),
    /// Client credentials (RFC 6749 §4.4).
    ClientCredentials(ClientCredentials),
}

impl Grant {
    /// The method's name for logs and messages: "private key JWT" for a
    /// JWT bearer grant and for client credentials authenticated with a
    /// client assertion, "client credentials" otherwise.
    pub fn name(&self) -> &'static str {
        match self {
            Self::JwtBearer(_) => "private key JWT",
            Self::ClientCredentials(grant) => match grant.auth {
                ClientAuth::PrivateKeyJwt(_) => "private key JWT",
                _ => "client credentials",
            },
        }
    }

    /// Checks the configuration before any request is built.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of [`JwtBearer::validate`] or
    /// [`ClientCredentials::validate`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::JwtBearer(grant) => grant.validate(),
            Self::ClientCredentials(grant) => grant.validate(),
        }
    }
}

impl From<JwtBearer> for Grant {
    fn from(grant: JwtBearer) -> Self {
        Self::JwtBearer(grant)
    }
}

impl From<ClientCredentials> for Grant {
    fn from(grant: ClientCredentials) -> Self {
        Self::ClientCredentials(grant)
    }
}

/// The first state of a token request: what to ask, and where.
///
/// A `TokenEndpoint` comes only from [`TokenEndpoint::parse`] or from
/// discovery's [`ProviderMetadata`](super::ProviderMetadata), so no request
/// can go to an unchecked URL:
///
/// ```compile_fail,E0308
/// # use service_auth::flow::{ClientAuth, ClientCredentials, Grant, RequestOptions, TokenFlow};
/// # use service_auth::secret::ClientSecret;
/// # let auth = ClientAuth::SecretPost(ClientSecret::new("s"));
/// # let grant = Grant::from(ClientCredentials::new("c", auth));
/// let options = RequestOptions::default();
/// let flow = TokenFlow::new(&grant, &"https://auth.example.com/token", &options);
/// ```
///
/// A flow that was never started has no response to handle:
///
/// ```compile_fail,E0599
/// # use std::time::{Instant, SystemTime};
/// # use service_auth::endpoint::{TokenEndpoint, UrlPolicy};
/// # use service_auth::flow::{ClientAuth, ClientCredentials, Grant, RequestOptions, TokenFlow};
/// # use service_auth::{secret::ClientSecret, time::Now};
/// # let auth = ClientAuth::SecretPost(ClientSecret::new("s"));
/// # let grant = Grant::from(ClientCredentials::new("c", auth));
/// # let url = "https://auth.example.com/token";
/// # let endpoint = TokenEndpoint::parse(url, UrlPolicy::https_only()).unwrap();
/// # let now = Now::new(Instant::now(), SystemTime::now());
/// let options = RequestOptions::default();
/// let flow = TokenFlow::new(&grant, &endpoint, &options);
/// flow.handle_response(http::Response::new(Vec::<u8>::new()), now);
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "a token flow does nothing until `start` is called and its request sent"]
pub struct TokenFlow<'a> {
    grant: &'a Grant,
    endpoint: &'a TokenEndpoint,
    options: &'a RequestOptions,
}

impl<'a> TokenFlow<'a> {
    /// A token request for `grant` to `endpoint`, with the headers of
    /// `options`.
    pub fn new(grant: &'a Grant, endpoint: &'a TokenEndpoint, options: &'a RequestOptions) -> Self {
        Self {
            grant,
            endpoint,
            options,
        }
    }

    /// Builds the token request: `POST` to the token endpoint with
    /// `Content-Type: application/x-www-form-urlencoded`, `Accept:
    /// application/json` and the form body of the grant.
    ///
    /// Assertions are signed here, with `iat` from `now.wall()` and `jti`
    /// from `rng`. The request's body (and, for client secret basic, its
    /// `Authorization` header, marked sensitive) holds a secret: send it,
    /// never log or `Debug`-print it.
    ///
    /// # Errors
    ///
    /// [`TokenError::Key`] when the assertion cannot be signed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Instant, SystemTime};
    /// use service_auth::endpoint::{TokenEndpoint, UrlPolicy};
    /// use service_auth::flow::{ClientAuth, ClientCredentials, Grant, RequestOptions, TokenFlow};
    /// use service_auth::{rng::Rng, secret::ClientSecret, time::Now};
    ///
    /// let url = "https://auth.example.com/token";
    /// let endpoint = TokenEndpoint::parse(url, UrlPolicy::https_only())?;
    /// let grant = Grant::from(ClientCredentials::new(
    ///     "my client",
    ///     ClientAuth::SecretBasic(ClientSecret::new("p@ss:word")),
    /// ));
    /// let options = RequestOptions::default();
    /// let now = Now::new(Instant::now(), SystemTime::now());
    /// let (awaiting, request) =
    ///     TokenFlow::new(&grant, &endpoint, &options).start(now, &mut Rng::from_seed(1))?;
    /// assert_eq!(request.body(), b"grant_type=client_credentials");
    /// let authorization = &request.headers()["authorization"];
    /// assert!(authorization.is_sensitive());
    /// // base64("my+client:p%40ss%3Aword")
    /// assert_eq!(authorization, "Basic bXkrY2xpZW50OnAlNDBzcyUzQXdvcmQ=");
    ///
    /// let response = http::Response::builder()
    ///     .status(401)
    ///     .body(r#"{"error":"invalid_client"}"#)?;
    /// let err = awaiting.handle_response(response, now).unwrap_err();
    /// assert!(!err.retry().is_transient());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "the request must be sent and its response handed to the returned state"]
    pub fn start(
        self,
        now: Now,
        rng: &mut Rng,
    ) -> Result<(AwaitingTokenResponse, http::Request<Vec<u8>>), TokenError> {
        let mut form = Serializer::new(String::new());
        let authorization = match self.grant {
            Grant::JwtBearer(grant) => {
                grant.write_form(&mut form, now, rng)?;
                None
            }
            Grant::ClientCredentials(grant) => {
                grant.write_form(&mut form, self.endpoint, now, rng)?
            }
        };
        let body = form.finish().into_bytes();
        let request = self.request(body, authorization);

        let method = self.grant.name();
        debug!(
            method = "POST",
            url = %self.endpoint,
            grant = method,
            body_len = request.body().len(),
            "token request built"
        );
        let awaiting = AwaitingTokenResponse {
            endpoint: self.endpoint.clone(),
            method,
        };
        Ok((awaiting, request))
    }

    fn request(&self, body: Vec<u8>, authorization: Option<HeaderValue>) -> http::Request<Vec<u8>> {
        let mut request = http::Request::new(body);
        *request.method_mut() = Method::POST;
        // `TokenEndpoint::parse` built this text from a parsed `http::Uri`.
        *request.uri_mut() = self
            .endpoint
            .as_str()
            .parse()
            .expect("a validated token endpoint is a valid URI");

        let headers = request.headers_mut();
        self.options.apply(headers);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(header::ACCEPT, accept_json());
        if let Some(authorization) = authorization {
            headers.insert(header::AUTHORIZATION, authorization);
        }
        request
    }
}

/// A token request that was built: waiting for its response.
///
/// Owns everything it needs (`'static`), so a driver can hold it across an
/// `await`. Used once: [`handle_response`](Self::handle_response) consumes it.
///
/// ```compile_fail,E0382
/// # use std::time::{Instant, SystemTime};
/// # use service_auth::endpoint::{TokenEndpoint, UrlPolicy};
/// # use service_auth::flow::{ClientAuth, ClientCredentials, Grant, RequestOptions, TokenFlow};
/// # use service_auth::{rng::Rng, secret::ClientSecret, time::Now};
/// # let auth = ClientAuth::SecretPost(ClientSecret::new("s"));
/// # let grant = Grant::from(ClientCredentials::new("c", auth));
/// # let url = "https://auth.example.com/token";
/// # let endpoint = TokenEndpoint::parse(url, UrlPolicy::https_only()).unwrap();
/// # let now = Now::new(Instant::now(), SystemTime::now());
/// # let options = RequestOptions::default();
/// let (awaiting, _request) =
///     TokenFlow::new(&grant, &endpoint, &options).start(now, &mut Rng::from_seed(1)).unwrap();
/// let first = awaiting.handle_response(http::Response::new(Vec::<u8>::new()), now);
/// let second = awaiting.handle_response(http::Response::new(Vec::<u8>::new()), now);
/// ```
#[derive(Debug)]
#[must_use = "the response to the token request must be handed to `handle_response`"]
pub struct AwaitingTokenResponse {
    endpoint: TokenEndpoint,
    method: &'static str,
}

impl AwaitingTokenResponse {
    /// The token endpoint the request went to.
    pub fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    /// The method's name, as [`Grant::name`].
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Turns the response into a token, with expiry counted from `now` (when
    /// the response arrived); see [`parse_token_response`] for every case.
    ///
    /// # Errors
    ///
    /// [`TokenError::Provider`] for an RFC 6749 §5.2 error,
    /// [`TokenError::Response`] for any other answer that is not a token;
    /// [`TokenError::retry`] says whether trying again can help.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant, SystemTime};
    /// use service_auth::endpoint::{TokenEndpoint, UrlPolicy};
    /// use service_auth::flow::{ClientAuth, ClientCredentials, Grant, RequestOptions, TokenFlow};
    /// use service_auth::{rng::Rng, secret::ClientSecret, time::Now};
    ///
    /// let url = "https://auth.example.com/token";
    /// let endpoint = TokenEndpoint::parse(url, UrlPolicy::https_only())?;
    /// let auth = ClientAuth::SecretPost(ClientSecret::new("s"));
    /// let grant = Grant::from(ClientCredentials::new("c", auth));
    /// let options = RequestOptions::default();
    /// let sent = Now::new(Instant::now(), SystemTime::now());
    /// let (awaiting, _request) =
    ///     TokenFlow::new(&grant, &endpoint, &options).start(sent, &mut Rng::from_seed(1))?;
    ///
    /// let arrived = sent.advance(Duration::from_millis(250));
    /// let body = r#"{"access_token":"at","token_type":"bearer","expires_in":300}"#;
    /// let response = http::Response::new(body);
    /// let token = awaiting.handle_response(response, arrived)?;
    /// assert_eq!(token.expires_at(), Some(arrived.instant() + Duration::from_secs(300)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_response<B: AsRef<[u8]>>(
        self,
        response: http::Response<B>,
        now: Now,
    ) -> Result<Token, TokenError> {
        debug!(
            method = self.method,
            url = %self.endpoint,
            status = response.status().as_u16(),
            body_len = response.body().as_ref().len(),
            "token response received"
        );
        let result = parse_token_response(&response, now);
        match &result {
            Ok(token) => debug!(
                method = self.method,
                expires_in_secs = token.lifetime().map(|lifetime| lifetime.as_secs()),
                lifetime_known = token.lifetime_known(),
                "token request succeeded"
            ),
            Err(err) => debug!(
                method = self.method,
                error = %err,
                transient = err.retry().is_transient(),
                "token request failed"
            ),
        }
        result
    }
}

fn claims(
    subject: &str,
    audience: &str,
    lifetime: Duration,
    backdate: Duration,
    now: Now,
    rng: &mut Rng,
) -> AssertionClaims {
    let iat = now.unix_seconds().saturating_sub(backdate.as_secs());
    AssertionClaims {
        iss: subject.to_owned(),
        sub: subject.to_owned(),
        aud: audience.to_owned(),
        iat,
        exp: iat.saturating_add(lifetime.as_secs()),
        jti: Some(rng.next_id()),
    }
}

/// `Basic base64(urlencode(client_id) ":" urlencode(secret))`, marked
/// sensitive. RFC 6749 §2.3.1 asks for the `application/x-www-form-urlencoded`
/// encoding (Appendix B) of both parts before base64, so a `:` in the client
/// id cannot shift the split and non-ASCII survives.
fn basic(client_id: &str, secret: &ClientSecret) -> HeaderValue {
    let mut credentials = Zeroizing::new(form_encode(client_id));
    credentials.push(':');
    credentials.push_str(&Zeroizing::new(form_encode(secret.secret())));
    let mut value = Zeroizing::new(String::from("Basic "));
    STANDARD.encode_string(credentials.as_bytes(), &mut value);
    // "Basic " and the base64 alphabet are visible ASCII.
    let mut header = HeaderValue::from_str(&value).expect("base64 is a valid header value");
    header.set_sensitive(true);
    header
}

fn form_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn append_scope(form: &mut Serializer<'_, String>, scopes: &[String]) {
    // RFC 6749 §3.3: space-delimited; omitted when nothing is asked for.
    if !scopes.is_empty() {
        form.append_pair("scope", &scopes.join(" "));
    }
}

fn collect_scopes<I, S>(scopes: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut collected: Vec<String> = Vec::new();
    for scope in scopes {
        for part in scope.into().split_whitespace() {
            if !collected.iter().any(|seen| seen == part) {
                collected.push(part.to_owned());
            }
        }
    }
    collected
}

fn check_lifetime(
    what: &'static str,
    lifetime: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    // `exp` and `iat` are whole seconds (RFC 7519 §2 NumericDate).
    if lifetime < Duration::from_secs(1) || lifetime > max {
        return Err(ConfigError::LifetimeOutOfRange {
            what,
            given: lifetime,
            max,
        });
    }
    Ok(lifetime)
}

fn check_backdate(
    what: &'static str,
    backdate: Duration,
    lifetime: Duration,
) -> Result<(), ConfigError> {
    if backdate.as_secs() >= lifetime.as_secs() {
        return Err(ConfigError::BackdateExceedsLifetime {
            what,
            backdate,
            lifetime,
        });
    }
    Ok(())
}

fn require(what: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::Empty { what });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::{Instant, UNIX_EPOCH};

    use base64::Engine;

    use super::*;
    use crate::assertion::DecodedAssertion;
    use crate::credentials::{Algorithm, SigningKey};
    use crate::endpoint::UrlPolicy;

    const NOW_UNIX: u64 = 1_700_000_000;
    const ISSUER: &str = "https://auth.example.com";
    const TOKEN_URL: &str = "https://auth.example.com/oauth/v2/token";
    const SECRET: &str = "planted-client-s3cret";
    const ACCESS_TOKEN: &str = "planted-access-t0ken";

    fn now() -> Now {
        Now::new(Instant::now(), UNIX_EPOCH + Duration::from_secs(NOW_UNIX))
    }

    fn issuer() -> Issuer {
        Issuer::parse(ISSUER, UrlPolicy::https_only()).unwrap()
    }

    fn endpoint() -> TokenEndpoint {
        TokenEndpoint::parse(TOKEN_URL, UrlPolicy::https_only()).unwrap()
    }

    fn ring(algorithm: Algorithm) -> KeyRing {
        KeyRing::new(SigningKey::generate(algorithm, "key-1").unwrap())
    }

    fn start(grant: &Grant, rng: &mut Rng) -> (AwaitingTokenResponse, http::Request<Vec<u8>>) {
        let options = RequestOptions::default();
        TokenFlow::new(grant, &endpoint(), &options)
            .start(now(), rng)
            .unwrap()
    }

    /// The form body as a map, after checking that no field repeats.
    fn form(request: &http::Request<Vec<u8>>) -> BTreeMap<String, String> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(request.body())
            .into_owned()
            .collect();
        let map: BTreeMap<_, _> = pairs.iter().cloned().collect();
        assert_eq!(
            map.len(),
            pairs.len(),
            "a form field repeats: {:?}",
            map.keys()
        );
        map
    }

    fn keys_of(form: &BTreeMap<String, String>) -> Vec<&str> {
        form.keys().map(String::as_str).collect()
    }

    fn assert_post(request: &http::Request<Vec<u8>>) {
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri(), TOKEN_URL);
        let headers = request.headers();
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(headers[header::ACCEPT], "application/json");
        assert!(
            headers[header::USER_AGENT]
                .to_str()
                .unwrap()
                .starts_with("service-auth/")
        );
    }

    fn verify(assertion: &str, keys: &KeyRing) -> DecodedAssertion {
        let decoded = crate::assertion::verify(assertion, &keys.current().public_key()).unwrap();
        assert_eq!(decoded.header.alg, keys.current().algorithm().as_str());
        assert_eq!(decoded.header.kid.as_deref(), Some("key-1"));
        assert_eq!(decoded.header.typ.as_deref(), Some("JWT"));
        decoded
    }

    fn assert_claims(decoded: &DecodedAssertion, subject: &str, aud: &str, iat: u64, exp: u64) {
        let mut names: Vec<&str> = decoded.claims.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["aud", "exp", "iat", "iss", "jti", "sub"]);
        assert_eq!(decoded.issuer(), Some(subject));
        assert_eq!(decoded.subject(), Some(subject));
        assert_eq!(decoded.claims["aud"], aud);
        assert_eq!(decoded.issued_at(), Some(iat));
        assert_eq!(decoded.expires_at(), Some(exp));
        let jti = decoded.jwt_id().unwrap();
        assert_eq!(jti.len(), 32);
        assert!(jti.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn jwt_bearer_request_and_assertion() {
        for algorithm in [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa] {
            let keys = ring(algorithm);
            let grant = Grant::from(
                JwtBearer::new("service-user-1", keys.clone(), &issuer())
                    .scopes(["openid", "urn:zitadel:iam:org:project:id:zitadel:aud"]),
            );
            let (awaiting, request) = start(&grant, &mut Rng::from_seed(1));
            assert_post(&request);
            assert!(request.headers().get(header::AUTHORIZATION).is_none());
            assert_eq!(awaiting.method(), "private key JWT");
            assert_eq!(awaiting.endpoint(), &endpoint());

            let form = form(&request);
            assert_eq!(keys_of(&form), ["assertion", "grant_type", "scope"]);
            assert_eq!(
                form["grant_type"],
                "urn:ietf:params:oauth:grant-type:jwt-bearer"
            );
            assert_eq!(
                form["scope"],
                "openid urn:zitadel:iam:org:project:id:zitadel:aud"
            );
            let decoded = verify(&form["assertion"], &keys);
            let iat = NOW_UNIX - 5;
            assert_claims(&decoded, "service-user-1", ISSUER, iat, iat + 3600);
        }
    }

    #[test]
    fn jwt_bearer_aud_is_the_normalised_issuer() {
        let issuer =
            Issuer::parse("HTTPS://Auth.Example.com:443/", UrlPolicy::https_only()).unwrap();
        let keys = ring(Algorithm::EdDsa);
        let grant = Grant::from(JwtBearer::new("u", keys.clone(), &issuer));
        let (_, request) = start(&grant, &mut Rng::from_seed(1));
        let form = form(&request);
        assert_eq!(
            keys_of(&form),
            ["assertion", "grant_type"],
            "no scope when none is set"
        );
        assert_eq!(verify(&form["assertion"], &keys).audiences(), [ISSUER]);
    }

    #[test]
    fn jwt_bearer_options() {
        let keys = ring(Algorithm::EdDsa);
        let grant = JwtBearer::new("u", keys.clone(), &issuer())
            .audience("https://api.example.com")
            .assertion_lifetime(Duration::from_secs(600))
            .unwrap()
            .iat_backdate(Duration::from_secs(2))
            .scopes(["a b", "b", "", "c"]);
        assert_eq!(grant.validate(), Ok(()));
        let (_, request) = start(&Grant::from(grant), &mut Rng::from_seed(1));
        let form = form(&request);
        assert_eq!(form["scope"], "a b c");
        let decoded = verify(&form["assertion"], &keys);
        let iat = NOW_UNIX - 2;
        assert_claims(&decoded, "u", "https://api.example.com", iat, iat + 600);
    }

    #[test]
    fn jwt_bearer_lifetime_limits() {
        let grant = || JwtBearer::new("u", ring(Algorithm::EdDsa), &issuer());
        for bad in [
            Duration::ZERO,
            Duration::from_millis(999),
            Duration::from_secs(3601),
        ] {
            let err = grant().assertion_lifetime(bad).unwrap_err();
            assert_eq!(
                err,
                ConfigError::LifetimeOutOfRange {
                    what: "assertion lifetime",
                    given: bad,
                    max: MAX_ASSERTION_LIFETIME
                }
            );
        }
        assert!(
            grant()
                .assertion_lifetime(Duration::from_secs(3600))
                .is_ok()
        );
        assert!(grant().assertion_lifetime(Duration::from_secs(1)).is_ok());

        let clamped = grant().iat_backdate(Duration::from_secs(3600));
        assert_eq!(clamped.iat_backdate, MAX_IAT_BACKDATE);
        let short = grant().assertion_lifetime(Duration::from_secs(5)).unwrap();
        assert!(matches!(
            short.validate(),
            Err(ConfigError::BackdateExceedsLifetime { .. })
        ));
        assert!(matches!(
            JwtBearer::new("", ring(Algorithm::EdDsa), &issuer()).validate(),
            Err(ConfigError::Empty {
                what: "service user id"
            })
        ));
    }

    #[test]
    fn jti_is_unique_across_starts() {
        let keys = ring(Algorithm::EdDsa);
        let grants = [
            Grant::from(JwtBearer::new("u", keys.clone(), &issuer())),
            Grant::from(ClientCredentials::new(
                "c",
                ClientAuth::PrivateKeyJwt(ClientAssertion::new(keys.clone())),
            )),
        ];
        for grant in &grants {
            let mut rng = Rng::from_seed(42);
            let jti = |request: &http::Request<Vec<u8>>| {
                let form = form(request);
                let assertion = form
                    .get("assertion")
                    .or(form.get("client_assertion"))
                    .unwrap();
                verify(assertion, &keys).jwt_id().unwrap().to_owned()
            };
            let first = jti(&start(grant, &mut rng).1);
            let second = jti(&start(grant, &mut rng).1);
            assert_ne!(first, second);
        }
    }

    #[test]
    fn secret_basic_encodes_before_base64() {
        for (client_id, secret) in [
            ("plain-client", "plain-secret"),
            ("id:with%plus+ space", "pa:ss%20wo+rd é"),
            ("clïent/ü", "s3cr€t:&="),
        ] {
            let grant = Grant::from(
                ClientCredentials::new(
                    client_id,
                    ClientAuth::SecretBasic(ClientSecret::new(secret)),
                )
                .scopes(["read", "write"]),
            );
            let (awaiting, request) = start(&grant, &mut Rng::from_seed(1));
            assert_post(&request);
            assert_eq!(awaiting.method(), "client credentials");
            assert_eq!(
                form(&request),
                BTreeMap::from([
                    ("grant_type".to_owned(), "client_credentials".to_owned()),
                    ("scope".to_owned(), "read write".to_owned()),
                ])
            );

            let header = &request.headers()[header::AUTHORIZATION];
            assert!(header.is_sensitive());
            let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
            let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
            // Encoding first leaves exactly one raw ':' and no raw space.
            assert_eq!(decoded.matches(':').count(), 1, "{decoded}");
            assert!(decoded.is_ascii() && !decoded.contains(' '), "{decoded}");
            let (id_part, secret_part) = decoded.split_once(':').unwrap();
            assert_eq!(id_part, form_encode(client_id));
            let decode = |part: &str| {
                let pairs = form_urlencoded::parse(format!("k={part}").as_bytes())
                    .into_owned()
                    .collect::<Vec<_>>();
                pairs[0].1.clone()
            };
            assert_eq!(decode(id_part), client_id);
            assert_eq!(decode(secret_part), secret);
        }
    }

    #[test]
    fn secret_basic_known_vector() {
        // RFC 6749 Appendix B: space is '+', '%' is "%25", ':' is "%3A".
        let header = basic("a b:c", &ClientSecret::new("100%"));
        assert_eq!(
            header,
            format!("Basic {}", STANDARD.encode("a+b%3Ac:100%25")).as_str()
        );
    }

    #[test]
    fn secret_post_puts_the_secret_in_the_body() {
        let grant = Grant::from(ClientCredentials::new(
            "my client",
            ClientAuth::SecretPost(ClientSecret::new("pa ss&=é")),
        ));
        let (_, request) = start(&grant, &mut Rng::from_seed(1));
        assert_post(&request);
        assert!(request.headers().get(header::AUTHORIZATION).is_none());
        let form = form(&request);
        assert_eq!(keys_of(&form), ["client_id", "client_secret", "grant_type"]);
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], "my client");
        assert_eq!(form["client_secret"], "pa ss&=é");
    }

    #[test]
    fn client_assertion_request_and_claims() {
        let keys = ring(Algorithm::Es256);
        let grant = Grant::from(
            ClientCredentials::new(
                "client-7",
                ClientAuth::PrivateKeyJwt(ClientAssertion::new(keys.clone())),
            )
            .scopes(["api"]),
        );
        let (awaiting, request) = start(&grant, &mut Rng::from_seed(3));
        assert_post(&request);
        assert!(request.headers().get(header::AUTHORIZATION).is_none());
        assert_eq!(awaiting.method(), "private key JWT");
        let form = form(&request);
        assert_eq!(
            keys_of(&form),
            [
                "client_assertion",
                "client_assertion_type",
                "client_id",
                "grant_type",
                "scope"
            ]
        );
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], "client-7");
        assert_eq!(
            form["client_assertion_type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        assert_eq!(form["scope"], "api");
        let decoded = verify(&form["client_assertion"], &keys);
        let iat = NOW_UNIX - 5;
        assert_claims(&decoded, "client-7", TOKEN_URL, iat, iat + 60);
    }

    #[test]
    fn client_assertion_audience_and_lifetime() {
        let keys = ring(Algorithm::EdDsa);
        for (audience, want) in [
            (AssertionAudience::Issuer(ISSUER.into()), ISSUER),
            (AssertionAudience::Custom("urn:custom".into()), "urn:custom"),
            (AssertionAudience::TokenEndpoint, TOKEN_URL),
        ] {
            let assertion = ClientAssertion::new(keys.clone())
                .audience(audience)
                .lifetime(Duration::from_secs(300))
                .unwrap()
                .iat_backdate(Duration::ZERO);
            let grant = Grant::from(ClientCredentials::new(
                "c",
                ClientAuth::PrivateKeyJwt(assertion),
            ));
            assert_eq!(grant.validate(), Ok(()));
            let (_, request) = start(&grant, &mut Rng::from_seed(3));
            let decoded = verify(&form(&request)["client_assertion"], &keys);
            assert_claims(&decoded, "c", want, NOW_UNIX, NOW_UNIX + 300);
        }
        for bad in [Duration::ZERO, Duration::from_secs(301)] {
            let err = ClientAssertion::new(keys.clone())
                .lifetime(bad)
                .unwrap_err();
            assert!(matches!(err, ConfigError::LifetimeOutOfRange { max, .. }
                    if max == MAX_CLIENT_ASSERTION_LIFETIME));
        }
        let empty = ClientAssertion::new(keys).audience(AssertionAudience::Custom(String::new()));
        assert_eq!(
            empty.validate(),
            Err(ConfigError::Empty {
                what: "client assertion audience"
            })
        );
    }

    #[test]
    fn extra_headers_apply_but_cannot_replace_library_headers() {
        let grant = Grant::from(ClientCredentials::new(
            "c",
            ClientAuth::SecretBasic(ClientSecret::new("s")),
        ));
        let mut options = RequestOptions::default();
        let headers = &mut options.extra_headers;
        headers.insert("x-gateway", HeaderValue::from_static("g"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer other"),
        );
        let (_, request) = TokenFlow::new(&grant, &endpoint(), &options)
            .start(now(), &mut Rng::from_seed(1))
            .unwrap();
        assert_post(&request);
        assert_eq!(request.headers()["x-gateway"], "g");
        let authorization = request.headers().get_all(header::AUTHORIZATION);
        assert_eq!(authorization.iter().count(), 1);
        assert!(
            request.headers()[header::AUTHORIZATION]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
    }

    #[test]
    fn token_endpoint_query_is_kept() {
        let policy = UrlPolicy::dangerous_allow_http_loopback();
        for (url, want) in [
            (
                "https://auth.example.com/token?tenant=a&x=1",
                "https://auth.example.com/token?tenant=a&x=1",
            ),
            (
                "https://auth.example.com?tenant=a",
                "https://auth.example.com/?tenant=a",
            ),
            ("http://[::1]:8080/t", "http://[::1]:8080/t"),
            (
                "https://auth.example.com:8443/a%20b/",
                "https://auth.example.com:8443/a%20b",
            ),
        ] {
            let endpoint = TokenEndpoint::parse(url, policy).unwrap();
            let grant = Grant::from(ClientCredentials::new(
                "c",
                ClientAuth::SecretPost(ClientSecret::new("s")),
            ));
            let options = RequestOptions::default();
            let (_, request) = TokenFlow::new(&grant, &endpoint, &options)
                .start(now(), &mut Rng::from_seed(1))
                .unwrap();
            assert_eq!(request.uri().to_string(), want, "{url}");
        }
    }

    #[test]
    fn awaiting_handles_success_and_errors() {
        let grant = Grant::from(ClientCredentials::new(
            "c",
            ClientAuth::SecretPost(ClientSecret::new("s")),
        ));
        let (awaiting, _) = start(&grant, &mut Rng::from_seed(1));
        let arrived = now().advance(Duration::from_secs(1));
        let body = format!(
            r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"Bearer","expires_in":120}}"#
        );
        let token = awaiting
            .handle_response(http::Response::new(body), arrived)
            .unwrap();
        assert_eq!(token.access_token().secret(), ACCESS_TOKEN);
        assert_eq!(
            token.expires_at(),
            Some(arrived.instant() + Duration::from_secs(120))
        );

        let (awaiting, _) = start(&grant, &mut Rng::from_seed(1));
        let response = http::Response::builder().status(503).body("").unwrap();
        let err = awaiting.handle_response(response, arrived).unwrap_err();
        assert!(err.retry().is_transient());
    }

    #[test]
    fn awaiting_state_is_static_and_send() {
        fn assert_static_send<T: Send + Sync + 'static>() {}
        assert_static_send::<AwaitingTokenResponse>();
        assert_static_send::<Grant>();
    }

    #[test]
    fn debug_output_hides_secrets() {
        let keys = ring(Algorithm::EdDsa);
        let grants = [
            Grant::from(ClientCredentials::new(
                "c",
                ClientAuth::SecretBasic(ClientSecret::new(SECRET)),
            )),
            Grant::from(ClientCredentials::new(
                "c",
                ClientAuth::SecretPost(ClientSecret::new(SECRET)),
            )),
            Grant::from(ClientCredentials::new(
                "c",
                ClientAuth::PrivateKeyJwt(ClientAssertion::new(keys.clone())),
            )),
            Grant::from(JwtBearer::new("u", keys, &issuer())),
        ];
        for grant in &grants {
            let options = RequestOptions::default();
            let endpoint = endpoint();
            let flow = TokenFlow::new(grant, &endpoint, &options);
            let (awaiting, request) = flow.start(now(), &mut Rng::from_seed(1)).unwrap();
            let body = String::from_utf8(request.body().clone()).unwrap();
            let secrets = secrets_in(&request);
            let shown = format!("{grant:?} {flow:?} {awaiting:?} {:?}", request.headers());
            for secret in &secrets {
                assert!(!shown.contains(secret.as_str()), "{shown}");
            }
            assert!(!body.is_empty());
        }
    }

    /// The secret values a request carries: the client secret, the
    /// assertion, and the Basic credentials.
    fn secrets_in(request: &http::Request<Vec<u8>>) -> Vec<String> {
        let form = form(request);
        let mut secrets: Vec<String> = ["client_secret", "assertion", "client_assertion"]
            .iter()
            .filter_map(|name| form.get(*name).cloned())
            .collect();
        if let Some(value) = request.headers().get(header::AUTHORIZATION) {
            let value = value.to_str().unwrap();
            secrets.push(value.strip_prefix("Basic ").unwrap().to_owned());
        }
        // Every secret is long enough that a match is no accident.
        assert!(secrets.iter().all(|secret| secret.len() >= 16));
        secrets
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn logs_of_every_flow_hold_no_secret() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();

        let keys = ring(Algorithm::EdDsa);
        let grants = [
            Grant::from(ClientCredentials::new(
                "c",
                ClientAuth::SecretBasic(ClientSecret::new(SECRET)),
            )),
            Grant::from(ClientCredentials::new(
                "c",
                ClientAuth::SecretPost(ClientSecret::new(SECRET)),
            )),
            Grant::from(ClientCredentials::new(
                "c",
                ClientAuth::PrivateKeyJwt(ClientAssertion::new(keys.clone())),
            )),
            Grant::from(JwtBearer::new("u", keys, &issuer())),
        ];
        let mut secrets = vec![SECRET.to_owned(), ACCESS_TOKEN.to_owned()];
        tracing::subscriber::with_default(subscriber, || {
            for grant in &grants {
                let responses = [
                    format!(
                        r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"Bearer","expires_in":60}}"#
                    ),
                    format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":999999999}}"#),
                    format!(r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"mac"}}"#),
                    format!(r#"{{"access_token":"{ACCESS_TOKEN}""#),
                    r#"{"error":"invalid_client","error_description":"no"}"#.to_owned(),
                ];
                for body in responses {
                    let (awaiting, request) = start(grant, &mut Rng::from_seed(9));
                    secrets.extend(secrets_in(&request));
                    let _ = awaiting.handle_response(http::Response::new(body), now());
                }
            }
        });

        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("token request built"), "{logs}");
        assert!(logs.contains("assertion signed"), "{logs}");
        assert!(logs.contains("implausibly long"), "{logs}");
        for secret in &secrets {
            assert!(
                !logs.contains(secret.as_str()),
                "a secret leaked into the logs:\n{logs}"
            );
        }
    }
}
