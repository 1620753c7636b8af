//! The authentication method a service uses, and where its provider is.
//!
//! A [`Method`] is either a [`Grant`], exchanged for access tokens at the
//! token endpoint, or a [`PersonalAccessToken`], used as it is. [`Endpoints`]
//! says whether the token endpoint is discovered from the issuer or given.
//!
//! # Design
//!
//! The grant-based methods live inside one variant, [`Method::Grant`], so
//! that a driver gets the `&Grant` a [`TokenFlow`](crate::flow::TokenFlow)
//! needs with [`Method::grant`], without cloning or rebuilding it. The
//! method's name (`"private key JWT"`, `"client credentials"`, `"personal
//! access token"`) comes from [`Method::name`]; private key JWT covers both
//! the JWT bearer grant and client credentials with a client assertion.
//! Build a method with `From`:
//!
//! ```
//! use service_auth::flow::{ClientAuth, ClientCredentials};
//! use service_auth::method::Method;
//! use service_auth::secret::{ClientSecret, PersonalAccessToken};
//!
//! let auth = ClientAuth::SecretBasic(ClientSecret::new("s"));
//! let method = Method::from(ClientCredentials::new("c", auth));
//! assert_eq!(method.name(), "client credentials");
//! assert!(method.grant().is_some());
//!
//! let method = Method::from(PersonalAccessToken::new("pat"));
//! assert_eq!(method.name(), "personal access token");
//! assert!(method.grant().is_none());
//! ```

use crate::credentials::KeyRing;
use crate::endpoint::{Issuer, TokenEndpoint};
use crate::flow::{ClientAuth, ClientCredentials, ConfigError, Grant, JwtBearer};
use crate::secret::PersonalAccessToken;

/// How the service authenticates. `Debug` never shows a secret.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Method {
    /// A grant exchanged for access tokens: private key JWT or client
    /// credentials.
    Grant(Grant),
    /// A static token sent as `Authorization: Bearer`; never refreshed.
    PersonalAccessToken(PersonalAccessToken),
}

impl Method {
    /// The method's name for logs and messages: "private key JWT",
    /// "client credentials" or "personal access token".
    pub fn name(&self) -> &'static str {
        match self {
            Self::Grant(grant) => grant.name(),
            Self::PersonalAccessToken(_) => "personal access token",
        }
    }

    /// The grant, for the methods that request tokens.
    pub fn grant(&self) -> Option<&Grant> {
        match self {
            Self::Grant(grant) => Some(grant),
            Self::PersonalAccessToken(_) => None,
        }
    }

    /// The keys that sign assertions, for the private key JWT methods: keep
    /// this handle to rotate the key of a live authenticator (see
    /// [`KeyRing::replace`]).
    pub fn key_ring(&self) -> Option<&KeyRing> {
        match self.grant()? {
            Grant::JwtBearer(grant) => Some(grant.keys()),
            Grant::ClientCredentials(grant) => match grant.auth() {
                ClientAuth::PrivateKeyJwt(assertion) => Some(assertion.keys()),
                _ => None,
            },
        }
    }

    /// The personal access token, for that method.
    pub fn personal_access_token(&self) -> Option<&PersonalAccessToken> {
        match self {
            Self::PersonalAccessToken(token) => Some(token),
            Self::Grant(_) => None,
        }
    }

    /// Checks the configuration before anything is sent.
    ///
    /// # Errors
    ///
    /// The grant's [`ConfigError`] (see [`Grant::validate`]); for a personal
    /// access token, [`ConfigError::Empty`] when it is empty and
    /// [`ConfigError::NotHeaderSafe`] when it holds anything but visible
    /// ASCII (a token read from a file often ends in a line break).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let what = "personal access token";
        match self {
            Self::Grant(grant) => grant.validate(),
            Self::PersonalAccessToken(token) if token.is_empty() => {
                Err(ConfigError::Empty { what })
            }
            Self::PersonalAccessToken(token) => {
                let visible = token.secret().bytes().all(|b| b.is_ascii_graphic());
                visible
                    .then_some(())
                    .ok_or(ConfigError::NotHeaderSafe { what })
            }
        }
    }
}

impl From<Grant> for Method {
    fn from(grant: Grant) -> Self {
        Self::Grant(grant)
    }
}

impl From<JwtBearer> for Method {
    fn from(grant: JwtBearer) -> Self {
        Self::Grant(Grant::JwtBearer(grant))
    }
}

impl From<ClientCredentials> for Method {
    fn from(grant: ClientCredentials) -> Self {
        Self::Grant(Grant::ClientCredentials(grant))
    }
}

impl From<PersonalAccessToken> for Method {
    fn from(token: PersonalAccessToken) -> Self {
        Self::PersonalAccessToken(token)
    }
}

/// Where the provider's token endpoint is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoints {
    /// Discover the token endpoint from the issuer's
    /// `/.well-known/openid-configuration` (see [`crate::flow::discovery`]).
    Discover(Issuer),
    /// The token endpoint is given; no discovery request is made.
    Fixed {
        /// The issuer, when known (the default `aud` of private key JWT).
        issuer: Option<Issuer>,
        /// The token endpoint.
        token_endpoint: TokenEndpoint,
    },
}

impl Endpoints {
    /// The issuer, when configured.
    pub fn issuer(&self) -> Option<&Issuer> {
        match self {
            Self::Discover(issuer) => Some(issuer),
            Self::Fixed { issuer, .. } => issuer.as_ref(),
        }
    }

    /// The token endpoint when it is given; `None` when it must be
    /// discovered first.
    pub fn token_endpoint(&self) -> Option<&TokenEndpoint> {
        match self {
            Self::Discover(_) => None,
            Self::Fixed { token_endpoint, .. } => Some(token_endpoint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{Algorithm, KeyRing, SigningKey};
    use crate::endpoint::UrlPolicy;
    use crate::flow::{ClientAssertion, ClientAuth};
    use crate::secret::ClientSecret;

    fn keys() -> KeyRing {
        KeyRing::new(SigningKey::generate(Algorithm::EdDsa, "k1").unwrap())
    }

    #[test]
    fn names_follow_the_vocabulary() {
        let issuer = Issuer::parse("https://auth.example.com", UrlPolicy::https_only()).unwrap();
        let secret = || ClientSecret::new("s");
        let cases = [
            (
                Method::from(JwtBearer::new("u", keys(), &issuer)),
                "private key JWT",
            ),
            (
                Method::from(ClientCredentials::new(
                    "c",
                    ClientAuth::PrivateKeyJwt(ClientAssertion::new(keys())),
                )),
                "private key JWT",
            ),
            (
                Method::from(ClientCredentials::new(
                    "c",
                    ClientAuth::SecretBasic(secret()),
                )),
                "client credentials",
            ),
            (
                Method::from(ClientCredentials::new(
                    "c",
                    ClientAuth::SecretPost(secret()),
                )),
                "client credentials",
            ),
            (
                Method::from(PersonalAccessToken::new("p")),
                "personal access token",
            ),
        ];
        for (method, name) in cases {
            assert_eq!(method.name(), name);
            assert_eq!(method.grant().is_some(), name != "personal access token");
            assert_eq!(
                method.personal_access_token().is_some(),
                method.grant().is_none()
            );
            assert_eq!(method.validate(), Ok(()));
        }
    }

    #[test]
    fn invalid_configurations_are_refused_without_echoing_secrets() {
        let cases = [
            (
                Method::from(ClientCredentials::new(
                    "",
                    ClientAuth::SecretBasic(ClientSecret::new("hunter2")),
                )),
                ConfigError::Empty { what: "client id" },
            ),
            (
                Method::from(ClientCredentials::new(
                    "c",
                    ClientAuth::SecretPost(ClientSecret::new("")),
                )),
                ConfigError::Empty {
                    what: "client secret",
                },
            ),
            (
                Method::from(PersonalAccessToken::new("")),
                ConfigError::Empty {
                    what: "personal access token",
                },
            ),
            (
                Method::from(PersonalAccessToken::new("hunter2\n")),
                ConfigError::NotHeaderSafe {
                    what: "personal access token",
                },
            ),
        ];
        for (method, want) in cases {
            let err = method.validate().unwrap_err();
            assert_eq!(err, want);
            assert!(!format!("{err} {err:?} {method:?}").contains("hunter2"));
        }
    }

    #[test]
    fn endpoints_say_what_is_known() {
        let policy = UrlPolicy::https_only();
        let issuer = Issuer::parse("https://auth.example.com", policy).unwrap();
        let endpoint = TokenEndpoint::parse("https://auth.example.com/token", policy).unwrap();
        let discover = Endpoints::Discover(issuer.clone());
        assert_eq!(discover.issuer(), Some(&issuer));
        assert_eq!(discover.token_endpoint(), None);
        let fixed = Endpoints::Fixed {
            issuer: None,
            token_endpoint: endpoint.clone(),
        };
        assert_eq!(fixed.issuer(), None);
        assert_eq!(fixed.token_endpoint(), Some(&endpoint));
    }
}
