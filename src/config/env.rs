//! [`Config::from_env`]: the configuration from `SERVICE_AUTH_*` variables.
//!
//! The method follows from which credentials are set:
//!
//! - `SERVICE_AUTH_KEY_FILE`: private key JWT;
//! - `SERVICE_AUTH_CLIENT_SECRET` or `SERVICE_AUTH_CLIENT_SECRET_FILE`, with
//!   `SERVICE_AUTH_CLIENT_ID`: client credentials;
//! - `SERVICE_AUTH_TOKEN` or `SERVICE_AUTH_TOKEN_FILE`: personal access token.
//!
//! Anything else is an error naming the variables: no credentials, the
//! credentials of two methods, a value and a file for the same secret,
//! variables the method cannot use, an empty variable, an unknown
//! `SERVICE_AUTH_` variable (usually a typo).

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::files::FileRef;
use super::{
    CLIENT_CREDENTIALS, ClientSecretAuth, Config, Credentials, EnvError, Error, Input,
    PRIVATE_KEY_JWT, Profile, Source, printable,
};
use crate::secret::{ClientSecret, PersonalAccessToken};

/// The prefix of every variable this library reads.
const PREFIX: &str = "SERVICE_AUTH_";

const ISSUER: &str = "SERVICE_AUTH_ISSUER";
const TOKEN_ENDPOINT: &str = "SERVICE_AUTH_TOKEN_ENDPOINT";
const KEY_FILE: &str = "SERVICE_AUTH_KEY_FILE";
const CLIENT_ID: &str = "SERVICE_AUTH_CLIENT_ID";
const CLIENT_SECRET: &str = "SERVICE_AUTH_CLIENT_SECRET";
const CLIENT_SECRET_FILE: &str = "SERVICE_AUTH_CLIENT_SECRET_FILE";
const TOKEN: &str = "SERVICE_AUTH_TOKEN";
const TOKEN_FILE: &str = "SERVICE_AUTH_TOKEN_FILE";
const SCOPES: &str = "SERVICE_AUTH_SCOPES";
const PROFILE: &str = "SERVICE_AUTH_PROFILE";
const CA_FILE: &str = "SERVICE_AUTH_CA_FILE";
const CLIENT_AUTH: &str = "SERVICE_AUTH_CLIENT_AUTH";
const DANGEROUS_ALLOW_HTTP_LOOPBACK: &str = "SERVICE_AUTH_DANGEROUS_ALLOW_HTTP_LOOPBACK";

/// Every variable [`Config::from_env`] reads, with its meaning.
pub const VARIABLES: [(&str, &str); 13] = [
    (
        ISSUER,
        "the issuer URL (https://…); the token endpoint is discovered from it",
    ),
    (TOKEN_ENDPOINT, "the token endpoint URL; skips discovery"),
    (
        KEY_FILE,
        "private key JWT: a ZITADEL key file, or a JWK with `kid` (with SERVICE_AUTH_CLIENT_ID)",
    ),
    (
        CLIENT_ID,
        "the client id, for client credentials and JWK key files",
    ),
    (CLIENT_SECRET, "client credentials: the client secret"),
    (
        CLIENT_SECRET_FILE,
        "client credentials: a file holding the client secret",
    ),
    (TOKEN, "a personal access token"),
    (TOKEN_FILE, "a file holding a personal access token"),
    (
        SCOPES,
        "scopes separated by spaces; replaces the profile's default scopes",
    ),
    (
        PROFILE,
        "the provider profile: generic, zitadel, keycloak, auth0, okta, entra",
    ),
    (
        CA_FILE,
        "a PEM file of extra root certificates, for a provider behind a private CA",
    ),
    (
        CLIENT_AUTH,
        "basic or post (with a client secret), private_key_jwt (with a key file)",
    ),
    (
        DANGEROUS_ALLOW_HTTP_LOOPBACK,
        "1 accepts plain http:// to a loopback host, for tests and local development",
    ),
];

impl Config {
    /// The configuration described by the process's `SERVICE_AUTH_*`
    /// environment variables; see the [module documentation](super) for
    /// the table, and [`from_vars`](Self::from_vars) for the rules.
    ///
    /// Files the variables name are read when the configuration is built.
    /// Values read from the environment cannot be wiped: the process
    /// environment keeps its own copy.
    ///
    /// # Errors
    ///
    /// [`Error::Env`] as for [`from_vars`](Self::from_vars), and
    /// [`EnvError::NotUnicode`] for a `SERVICE_AUTH_` variable that is not
    /// valid Unicode.
    pub fn from_env() -> Result<Self, Error> {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|name| name.starts_with(PREFIX)) else {
                continue;
            };
            let Ok(value) = value.into_string() else {
                let variable = printable(name);
                return Err(EnvError::NotUnicode { variable }.into());
            };
            vars.push((name.to_owned(), Zeroizing::new(value)));
        }
        Self::from_vars(vars.iter().map(|(name, value)| (name, value.as_str())))
    }

    /// The configuration described by `vars`, as [`from_env`](Self::from_env)
    /// reads it from the environment; names without the `SERVICE_AUTH_`
    /// prefix are ignored. This is the whole logic of `from_env`, with no
    /// access to the process environment, for tests and for configuration
    /// that comes from elsewhere.
    ///
    /// # Errors
    ///
    /// [`Error::Env`] when no method's credentials are set or two methods'
    /// are, when a value and a file are set for the same secret, when a
    /// variable the method needs is missing or one it cannot use is set,
    /// when a variable is empty or has an invalid value, or when a
    /// `SERVICE_AUTH_` variable is unknown.
    ///
    /// # Examples
    ///
    /// ```
    /// use service_auth::config::{Config, EnvError, Error};
    ///
    /// let config = Config::from_vars([
    ///     ("SERVICE_AUTH_ISSUER", "https://auth.example.com"),
    ///     ("SERVICE_AUTH_CLIENT_ID", "billing"),
    ///     ("SERVICE_AUTH_CLIENT_SECRET", "s3cret"),
    ///     ("PATH", "/usr/bin"),
    /// ])?;
    /// assert_eq!(config.method_name(), "client credentials");
    ///
    /// let err = Config::from_vars([
    ///     ("SERVICE_AUTH_TOKEN", "pat"),
    ///     ("SERVICE_AUTH_CLIENT_SECRET", "s3cret"),
    /// ])
    /// .unwrap_err();
    /// assert!(matches!(err, Error::Env(EnvError::Conflicting { .. })));
    /// assert!(!err.to_string().contains("s3cret"));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars = Vars::collect(vars)?;
        vars.config()
    }
}

/// The known variables that are set, with their values.
struct Vars {
    values: BTreeMap<&'static str, Zeroizing<String>>,
}

/// The values of `SERVICE_AUTH_CLIENT_AUTH`.
#[derive(Clone, Copy)]
enum ClientAuthChoice {
    Secret(ClientSecretAuth),
    PrivateKeyJwt,
}

impl Vars {
    fn collect<I, K, V>(vars: I) -> Result<Self, EnvError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut values = BTreeMap::new();
        for (name, value) in vars {
            let name = name.as_ref();
            if !name.starts_with(PREFIX) {
                continue;
            }
            let Some(&(known, _)) = VARIABLES.iter().find(|(known, _)| *known == name) else {
                return Err(EnvError::Unknown {
                    variable: printable(name),
                    known: VARIABLES.map(|(known, _)| known).join(", "),
                });
            };
            let value = value.as_ref();
            if value.trim().is_empty() {
                return Err(EnvError::Empty { variable: known });
            }
            values.insert(known, Zeroizing::new(value.to_owned()));
        }
        Ok(Self { values })
    }

    fn get(&self, name: &'static str) -> Option<&str> {
        self.values.get(name).map(|value| value.as_str())
    }

    fn is_set(&self, name: &'static str) -> bool {
        self.values.contains_key(name)
    }

    fn config(&self) -> Result<Config, Error> {
        let (credentials, client_auth) = self.credentials()?;
        let mut config = Config::new(None, credentials);
        config.issuer = self.input(ISSUER);
        config.token_endpoint = self.input(TOKEN_ENDPOINT);
        config.client_auth = client_auth;
        config.profile = self.profile()?;
        if let Some(scopes) = self.get(SCOPES) {
            config = config.scopes([scopes]);
        }
        config.ca_file = self.get(CA_FILE).map(Into::into);
        config.allow_http_loopback = self.flag(DANGEROUS_ALLOW_HTTP_LOOPBACK)?;
        Ok(config)
    }

    fn input(&self, name: &'static str) -> Option<Input> {
        self.get(name).map(|value| Input {
            value: value.to_owned(),
            variable: Some(name),
        })
    }

    fn credentials(&self) -> Result<(Credentials, Option<ClientSecretAuth>), EnvError> {
        let token = self.one_of(TOKEN, TOKEN_FILE)?;
        let secret = self.one_of(CLIENT_SECRET, CLIENT_SECRET_FILE)?;
        let key = self.is_set(KEY_FILE).then_some(KEY_FILE);
        let set: Vec<&'static str> = [key, secret, token].into_iter().flatten().collect();
        if set.len() > 1 {
            return Err(EnvError::Conflicting {
                variables: set,
                hint: "they configure different methods; keep the variables of one method only",
            });
        }
        let client_auth = self.client_auth()?;
        match (key, secret, token) {
            (Some(_), _, _) => self.key_file(client_auth),
            (_, Some(secret), _) => self.client_secret(secret, client_auth),
            (_, _, Some(token)) => self.personal_access_token(token),
            (None, None, None) => Err(EnvError::NoCredentials),
        }
    }

    fn key_file(
        &self,
        client_auth: Option<ClientAuthChoice>,
    ) -> Result<(Credentials, Option<ClientSecretAuth>), EnvError> {
        self.require_endpoint(PRIVATE_KEY_JWT)?;
        if let Some(ClientAuthChoice::Secret(_)) = client_auth {
            return Err(EnvError::Conflicting {
                variables: vec![CLIENT_AUTH, KEY_FILE],
                hint: "basic and post send a client secret; with a key file, set \
                       SERVICE_AUTH_CLIENT_AUTH=private_key_jwt or unset it",
            });
        }
        let path = self.get(KEY_FILE).unwrap_or_default();
        let credentials = Credentials::KeyFile {
            file: FileRef::new(path, Some(KEY_FILE)),
            client_id: self.get(CLIENT_ID).map(str::to_owned),
            client_auth: client_auth.is_some(),
        };
        Ok((credentials, None))
    }

    fn client_secret(
        &self,
        variable: &'static str,
        client_auth: Option<ClientAuthChoice>,
    ) -> Result<(Credentials, Option<ClientSecretAuth>), EnvError> {
        let Some(client_id) = self.get(CLIENT_ID) else {
            return Err(EnvError::Missing {
                variable: CLIENT_ID,
                method: CLIENT_CREDENTIALS,
                hint: "set it to the client id the provider shows for this client",
            });
        };
        self.require_endpoint(CLIENT_CREDENTIALS)?;
        let auth = match client_auth {
            None => None,
            Some(ClientAuthChoice::Secret(auth)) => Some(auth),
            Some(ClientAuthChoice::PrivateKeyJwt) => {
                return Err(EnvError::Conflicting {
                    variables: vec![CLIENT_AUTH, variable],
                    hint: "private_key_jwt signs with a key: set SERVICE_AUTH_KEY_FILE instead \
                           of a client secret, or set SERVICE_AUTH_CLIENT_AUTH to basic or post",
                });
            }
        };
        let value = self.get(variable).unwrap_or_default();
        let secret = match variable {
            CLIENT_SECRET => Source::Value(ClientSecret::new(value)),
            _ => Source::File(FileRef::new(value, Some(variable))),
        };
        let credentials = Credentials::ClientSecret {
            client_id: client_id.to_owned(),
            secret,
        };
        Ok((credentials, auth))
    }

    fn personal_access_token(
        &self,
        variable: &'static str,
    ) -> Result<(Credentials, Option<ClientSecretAuth>), EnvError> {
        let unusable = [
            (
                CLIENT_ID,
                "a personal access token needs no client id: unset SERVICE_AUTH_CLIENT_ID",
            ),
            (
                CLIENT_AUTH,
                "a personal access token is sent as it is: unset SERVICE_AUTH_CLIENT_AUTH",
            ),
            (
                SCOPES,
                "a personal access token's scopes were fixed when it was created: unset \
                 SERVICE_AUTH_SCOPES",
            ),
        ];
        if let Some(&(other, hint)) = unusable.iter().find(|(name, _)| self.is_set(name)) {
            return Err(EnvError::Conflicting {
                variables: vec![variable, other],
                hint,
            });
        }
        let value = self.get(variable).unwrap_or_default();
        let token = match variable {
            TOKEN => Source::Value(PersonalAccessToken::new(value)),
            _ => Source::File(FileRef::new(value, Some(variable))),
        };
        Ok((Credentials::PersonalAccessToken(token), None))
    }

    /// The one of two variables for the same secret that is set, if any.
    fn one_of(
        &self,
        value: &'static str,
        file: &'static str,
    ) -> Result<Option<&'static str>, EnvError> {
        match (self.is_set(value), self.is_set(file)) {
            (true, true) => Err(EnvError::Conflicting {
                variables: vec![value, file],
                hint: "give the secret either as a value or as a file, not both",
            }),
            (true, false) => Ok(Some(value)),
            (false, true) => Ok(Some(file)),
            (false, false) => Ok(None),
        }
    }

    fn require_endpoint(&self, method: &'static str) -> Result<(), EnvError> {
        if self.is_set(ISSUER) || self.is_set(TOKEN_ENDPOINT) {
            return Ok(());
        }
        Err(EnvError::Missing {
            variable: ISSUER,
            method,
            hint: "set it to the provider's issuer URL, e.g. https://auth.example.com, or set \
                   SERVICE_AUTH_TOKEN_ENDPOINT",
        })
    }

    fn client_auth(&self) -> Result<Option<ClientAuthChoice>, EnvError> {
        let Some(value) = self.get(CLIENT_AUTH) else {
            return Ok(None);
        };
        let choice = match value.trim().to_ascii_lowercase().as_str() {
            "basic" | "client_secret_basic" => ClientAuthChoice::Secret(ClientSecretAuth::Basic),
            "post" | "client_secret_post" => ClientAuthChoice::Secret(ClientSecretAuth::Post),
            "private_key_jwt" => ClientAuthChoice::PrivateKeyJwt,
            _ => {
                return Err(EnvError::Invalid {
                    variable: CLIENT_AUTH,
                    value: Some(printable(value)),
                    expected: "`basic`, `post` or `private_key_jwt`".to_owned(),
                });
            }
        };
        Ok(Some(choice))
    }

    fn profile(&self) -> Result<Option<Profile>, EnvError> {
        let Some(name) = self.get(PROFILE) else {
            return Ok(None);
        };
        let profile = Profile::by_name(name).map_err(|_| EnvError::Invalid {
            variable: PROFILE,
            value: Some(printable(name)),
            expected: format!("one of {}", Profile::names()),
        })?;
        Ok(Some(profile))
    }

    fn flag(&self, name: &'static str) -> Result<bool, EnvError> {
        let Some(value) = self.get(name) else {
            return Ok(false);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(EnvError::Invalid {
                variable: name,
                value: Some(printable(value)),
                expected: "`1` (on) or `0` (off)".to_owned(),
            }),
        }
    }
}
