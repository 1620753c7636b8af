//! Why a configuration cannot be used.

use std::io;
use std::path::PathBuf;

use crate::credentials::KeyError;
use crate::endpoint::UrlError;
use crate::flow::ConfigError;

/// Why a [`Config`](super::Config) cannot be turned into an authenticator.
///
/// Every message says what is wrong and what to do, and names the
/// environment variable when the value came from one. None contains a
/// secret, a token or key material: file contents are never quoted, and
/// header values and variable values that might be secret are not shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The issuer or the token endpoint is not an acceptable URL.
    #[error("{reason}{}", from_variable(*variable))]
    Url {
        /// The environment variable the URL came from, if any.
        variable: Option<&'static str>,
        /// What is wrong with it.
        reason: UrlError,
    },

    /// An issuer is needed and none is configured.
    #[error(
        "the {method} configuration has no issuer, which it needs for {needed_for}: pass the \
         issuer (SERVICE_AUTH_ISSUER), e.g. `https://auth.example.com`"
    )]
    MissingIssuer {
        /// The method's name.
        method: &'static str,
        /// What the issuer is needed for.
        needed_for: &'static str,
    },

    /// The method's values are refused (empty, out of range, …).
    #[error("the {method} configuration is invalid: {reason}")]
    Method {
        /// The method's name.
        method: &'static str,
        /// What is wrong.
        reason: ConfigError,
    },

    /// The user agent or an extra header cannot be sent.
    #[error("the request options are invalid: {reason}")]
    RequestOptions {
        /// What is wrong.
        reason: ConfigError,
    },

    /// An extra header's name or value is not valid HTTP.
    #[error(
        "the extra header {name} has an invalid {part}: names are tokens (letters, digits, `-`), \
         values visible ASCII and spaces; the value is not shown"
    )]
    InvalidHeader {
        /// The header's name, made printable and cut short.
        name: String,
        /// "name" or "value".
        part: &'static str,
    },

    /// The user agent is not a valid header value.
    #[error("the user agent is not a valid header value: use visible ASCII and spaces only")]
    InvalidUserAgent,

    /// A private key cannot be read or used.
    #[error(
        "the private key{}{} cannot be used: {reason}",
        in_file(path.as_ref()),
        from_variable(*variable)
    )]
    Key {
        /// The file the key came from, if any.
        path: Option<PathBuf>,
        /// The environment variable that named the file, if any.
        variable: Option<&'static str>,
        /// What is wrong.
        reason: KeyError,
    },

    /// A key file's content does not fit the rest of the configuration.
    #[error("the key file {}{} {problem}", path.display(), from_variable(*variable))]
    KeyFileUse {
        /// The key file.
        path: PathBuf,
        /// The environment variable that named it, if any.
        variable: Option<&'static str>,
        /// What does not fit.
        problem: KeyFileProblem,
    },

    /// A file that holds a secret cannot be read.
    #[error(
        "cannot read the {what} {}{}: {kind}; check the path and that this process may read \
         the file",
        path.display(),
        from_variable(*variable)
    )]
    FileUnreadable {
        /// "key file", "client secret file" or "personal access token file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The environment variable that named it, if any.
        variable: Option<&'static str>,
        /// Why reading failed.
        kind: io::ErrorKind,
    },

    /// A file that holds a secret may be read by other users (Unix).
    #[error(
        "the {what} {}{} may be read by group or others (mode {mode:03o}): run `chmod 600 {}`; \
         where sharing is understood (a single-user container), allow it explicitly with \
         `Config::dangerous_allow_insecure_key_file_permissions`",
        path.display(),
        from_variable(*variable),
        path.display()
    )]
    FilePermissions {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The environment variable that named it, if any.
        variable: Option<&'static str>,
        /// The permission bits found.
        mode: u32,
    },

    /// A file that holds a secret is larger than any secret.
    #[error(
        "the {what} {}{} is larger than {limit} bytes, more than any secret: check that the \
         path names the right file",
        path.display(),
        from_variable(*variable)
    )]
    FileTooLarge {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The environment variable that named it, if any.
        variable: Option<&'static str>,
        /// The largest size accepted.
        limit: u64,
    },

    /// A file that holds a secret is not UTF-8 text.
    #[error(
        "the {what} {}{} is not UTF-8 text: write the value as text",
        path.display(),
        from_variable(*variable)
    )]
    FileNotText {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The environment variable that named it, if any.
        variable: Option<&'static str>,
    },

    /// A file that holds a secret is empty.
    #[error(
        "the {what} {}{} is empty: write the value into it (one trailing line break is ignored)",
        path.display(),
        from_variable(*variable)
    )]
    FileEmpty {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The environment variable that named it, if any.
        variable: Option<&'static str>,
    },

    /// An option was set that the method cannot use.
    #[error("the {option} does not apply to the {method} method: remove it")]
    NotApplicable {
        /// The option, e.g. "assertion lifetime".
        option: &'static str,
        /// The method's name.
        method: &'static str,
    },

    /// Options that configure the built-in transports were set, and a
    /// transport of the caller's own was passed.
    #[error(
        "the {options} configure the transport that `build_reqwest` or `build_ureq` makes, and \
         `build` was given a transport of its own: set them on that transport, or call \
         `build_reqwest`/`build_ureq`"
    )]
    TransportOptions {
        /// The options concerned, comma-separated.
        options: String,
    },

    /// The connect address cannot apply to the issuer or token endpoint.
    #[error(
        "the connect address applies to a host name, and the {what} `{url}` names an IP \
         address: put the public host name in the {what} and the address in the connect address"
    )]
    ConnectAddressNeedsHostName {
        /// "issuer" or "token endpoint".
        what: &'static str,
        /// The URL.
        url: String,
    },

    /// No profile has this name.
    #[error("there is no provider profile `{name}`: use one of {valid}")]
    UnknownProfile {
        /// The name given, made printable and cut short.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },

    /// The scopes do not follow the profile's convention.
    #[error(
        "the {profile} profile's client credentials grant needs a scope `<resource>/.default`, \
         e.g. `https://graph.microsoft.com/.default` or `api://<app id>/.default`; the configured \
         scopes are {found}"
    )]
    ScopeConvention {
        /// The profile's name.
        profile: &'static str,
        /// The scopes configured, or "none".
        found: String,
    },

    /// The environment variables are incomplete, conflicting or invalid.
    #[error(transparent)]
    Env(#[from] EnvError),

    /// The reqwest transport could not be built.
    #[cfg(feature = "reqwest")]
    #[error(transparent)]
    Reqwest(crate::transport::BuildError),

    /// The ureq transport could not be built.
    #[cfg(feature = "blocking")]
    #[error(transparent)]
    Ureq(crate::transport::BuildError),
}

/// Why a key file's content does not fit the configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileProblem {
    /// A service account key was given where client authentication was
    /// asked for.
    #[error(
        "is a ZITADEL service account key, which uses the JWT bearer grant, not client \
         authentication: unset SERVICE_AUTH_CLIENT_AUTH, or use an application key"
    )]
    ServiceAccountForClientAuth,
    /// A client id was configured along with a service account key.
    #[error(
        "is a ZITADEL service account key, whose user id is the principal: unset the client id \
         (SERVICE_AUTH_CLIENT_ID)"
    )]
    ServiceAccountWithClientId,
    /// The client id configured differs from the application key's.
    #[error(
        "belongs to client `{in_file}`, and the configured client id is `{configured}`: use the \
         application's key file, or unset the client id"
    )]
    ClientIdMismatch {
        /// The client id in the key file.
        in_file: String,
        /// The client id configured.
        configured: String,
    },
    /// A JWK names no client, and none was configured.
    #[error(
        "holds a JWK, which names no client: set the client id (SERVICE_AUTH_CLIENT_ID) the key \
         is registered for"
    )]
    NoClientId,
    /// The file holds PEM, which carries no key id.
    #[error(
        "holds a PEM key, which carries no key id: give the key as a JWK with `kid` or as a \
         ZITADEL key file, or pass a `SigningKey` with its key id in code"
    )]
    PemWithoutKeyId,
}

/// Why the environment does not describe a usable configuration.
///
/// Names the variables concerned; never shows a value that may be secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// No credentials are configured.
    #[error(
        "no credentials in the environment: set SERVICE_AUTH_KEY_FILE (private key JWT), \
         SERVICE_AUTH_CLIENT_ID with SERVICE_AUTH_CLIENT_SECRET or SERVICE_AUTH_CLIENT_SECRET_FILE \
         (client credentials), or SERVICE_AUTH_TOKEN or SERVICE_AUTH_TOKEN_FILE (personal access \
         token)"
    )]
    NoCredentials,
    /// A variable the chosen method needs is not set.
    #[error("the variable {variable} is not set, and the {method} method needs it: {hint}")]
    Missing {
        /// The missing variable.
        variable: &'static str,
        /// The method chosen by the variables that are set.
        method: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// Variables are set that do not go together.
    #[error(
        "the variables {} are set together, which is ambiguous: {hint}",
        join(variables)
    )]
    Conflicting {
        /// The variables that conflict.
        variables: Vec<&'static str>,
        /// What to do.
        hint: &'static str,
    },
    /// A variable is set to the empty string.
    #[error("the variable {variable} is set but empty: give it a value or unset it")]
    Empty {
        /// The variable.
        variable: &'static str,
    },
    /// A variable's value is not one of the accepted ones.
    #[error(
        "the variable {variable} has an invalid value{}: expected {expected}",
        shown_value(value.as_deref())
    )]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// The value, for variables whose values are not secret (made
        /// printable and cut short).
        value: Option<String>,
        /// What is accepted.
        expected: String,
    },
    /// A `SERVICE_AUTH_` variable this library does not know.
    #[error(
        "unknown variable {variable}: this library reads no such variable (a typo?); the known \
         ones are {known}"
    )]
    Unknown {
        /// The variable's name, made printable and cut short.
        variable: String,
        /// The known variables, comma-separated.
        known: String,
    },
    /// A variable's value is not valid Unicode.
    #[error("the variable {variable} is not valid Unicode: set it to UTF-8 text")]
    NotUnicode {
        /// The variable.
        variable: String,
    },
}

fn from_variable(variable: Option<&'static str>) -> String {
    variable.map(|v| format!(" (from {v})")).unwrap_or_default()
}

fn in_file(path: Option<&PathBuf>) -> String {
    path.map(|p| format!(" in {}", p.display()))
        .unwrap_or_default()
}

fn shown_value(value: Option<&str>) -> String {
    value.map(|v| format!(" `{v}`")).unwrap_or_default()
}

fn join(variables: &[&'static str]) -> String {
    match variables {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
