//! Validated provider addresses: the issuer and the token endpoint.
//!
//! Both are HTTPS URLs. Plain `http://` is refused unless the host is a
//! loopback address and the caller opted in with
//! [`UrlPolicy::dangerous_allow_http_loopback`], for tests and local
//! development. The issuer is normalised once, here (lowercase scheme and
//! host, no default port, no trailing slash), so the assertion's `aud` and the
//! discovery check compare against one canonical string.

use std::fmt;

use http::Uri;

/// Which URLs the library accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    allow_http_loopback: bool,
}

impl UrlPolicy {
    /// HTTPS only: the default.
    pub const fn https_only() -> Self {
        Self {
            allow_http_loopback: false,
        }
    }

    /// Also accepts `http://` when the host is `localhost`, `127.0.0.0/8` or
    /// `[::1]`. Tokens and secrets then cross the loopback interface in clear
    /// text: for tests and local development only.
    pub const fn dangerous_allow_http_loopback() -> Self {
        Self {
            allow_http_loopback: true,
        }
    }

    /// Whether plain HTTP to a loopback host is accepted.
    pub const fn allows_http_loopback(&self) -> bool {
        self.allow_http_loopback
    }
}

/// Why a URL was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The text is not an absolute URL.
    #[error(
        "{what} `{url}` is not an absolute URL ({reason}); expected a URL like `https://auth.example.com`"
    )]
    Malformed {
        /// Which URL: "issuer", "token endpoint", ….
        what: &'static str,
        /// The URL as given.
        url: String,
        /// What the parser objected to.
        reason: String,
    },
    /// The URL is plain HTTP.
    #[error(
        "{what} `{url}` uses plain http: tokens and secrets would cross the network unencrypted; \
         use https (plain http is accepted only for a loopback host with the dangerous loopback opt-in, \
         SERVICE_AUTH_DANGEROUS_ALLOW_HTTP_LOOPBACK=1)"
    )]
    NotHttps {
        /// Which URL.
        what: &'static str,
        /// The URL as given.
        url: String,
    },
    /// The scheme is neither `https` nor `http`.
    #[error("{what} `{url}` has scheme `{scheme}`; expected https")]
    UnsupportedScheme {
        /// Which URL.
        what: &'static str,
        /// The URL as given.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// The URL carries a user name or password.
    #[error(
        "{what} contains credentials before the host (`user:password@`); remove them and configure credentials separately"
    )]
    UserInfo {
        /// Which URL.
        what: &'static str,
    },
    /// An issuer with a query or fragment (RFC 8414 §2 forbids both).
    #[error(
        "{what} `{url}` has a query or fragment; an issuer is scheme, host and optional path only (RFC 8414 §2)"
    )]
    QueryOrFragment {
        /// Which URL.
        what: &'static str,
        /// The URL as given.
        url: String,
    },
}

/// The provider's issuer identifier: an HTTPS URL, normalised.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Issuer {
    url: String,
}

impl Issuer {
    /// Validates and normalises an issuer URL.
    ///
    /// # Errors
    ///
    /// [`UrlError`] when the text is not an absolute `https://` URL (see
    /// [`UrlPolicy`] for loopback HTTP), carries credentials, a query or a
    /// fragment.
    ///
    /// # Examples
    ///
    /// ```
    /// use service_auth::endpoint::{Issuer, UrlPolicy};
    ///
    /// let issuer = Issuer::parse("HTTPS://Auth.Example.com:443/", UrlPolicy::https_only())?;
    /// assert_eq!(issuer.as_str(), "https://auth.example.com");
    /// assert!(Issuer::parse("http://auth.example.com", UrlPolicy::https_only()).is_err());
    /// # Ok::<(), service_auth::endpoint::UrlError>(())
    /// ```
    pub fn parse(url: &str, policy: UrlPolicy) -> Result<Self, UrlError> {
        let url = normalise("issuer", url, policy, false)?;
        Ok(Self { url })
    }

    /// The normalised issuer, as it must appear in `aud` and in the
    /// discovery document.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// `{issuer}/.well-known/openid-configuration` (OIDC Discovery §4).
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.url)
    }

    /// Whether this issuer is plain HTTP (only possible under the dangerous
    /// loopback opt-in).
    pub fn is_plain_http(&self) -> bool {
        self.url.starts_with("http://")
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Issuer({})", self.url)
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// The token endpoint: an HTTPS URL (a query is allowed, RFC 6749 §3.2).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenEndpoint {
    url: String,
}

impl TokenEndpoint {
    /// Validates a token endpoint URL.
    ///
    /// # Errors
    ///
    /// [`UrlError`] as for [`Issuer::parse`], except that a query is allowed.
    pub fn parse(url: &str, policy: UrlPolicy) -> Result<Self, UrlError> {
        let url = normalise("token endpoint", url, policy, true)?;
        Ok(Self { url })
    }

    /// The endpoint URL.
    pub fn as_str(&self) -> &str {
        &self.url
    }
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenEndpoint({})", self.url)
    }
}

impl fmt::Display for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Whether `host` (as it appears in a URL authority) is a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The URL as an error may quote it: control characters removed and cut
/// short, since a URL can come from a provider's discovery document.
fn shown(input: &str) -> String {
    crate::response::sanitise(input, MAX_SHOWN_URL_CHARS)
}

/// The longest URL an error quotes.
const MAX_SHOWN_URL_CHARS: usize = 256;

fn normalise(
    what: &'static str,
    input: &str,
    policy: UrlPolicy,
    allow_query: bool,
) -> Result<String, UrlError> {
    let malformed = |reason: &str| UrlError::Malformed {
        what,
        url: shown(input),
        reason: reason.to_owned(),
    };
    if input.contains('@') {
        return Err(UrlError::UserInfo { what });
    }
    if input.contains('#') || (!allow_query && input.contains('?')) {
        return Err(UrlError::QueryOrFragment {
            what,
            url: shown(input),
        });
    }
    let uri: Uri = input
        .trim()
        .parse()
        .map_err(|err: http::uri::InvalidUri| malformed(&err.to_string()))?;
    let Some(scheme) = uri.scheme_str() else {
        return Err(malformed("no scheme"));
    };
    let Some(authority) = uri.authority() else {
        return Err(malformed("no host"));
    };
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return Err(malformed("empty host"));
    }
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" if policy.allow_http_loopback && is_loopback_host(&host) => 80,
        "http" => {
            return Err(UrlError::NotHttps {
                what,
                url: shown(input),
            });
        }
        other => {
            return Err(UrlError::UnsupportedScheme {
                what,
                url: shown(input),
                scheme: other.to_owned(),
            });
        }
    };
    let port = match authority.port_u16() {
        Some(port) if port != default_port => format!(":{port}"),
        _ => String::new(),
    };
    let path = uri.path().trim_end_matches('/');
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Ok(format!("{scheme}://{host}{port}{path}{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_is_normalised() {
        let p = UrlPolicy::https_only();
        for (input, want) in [
            ("https://auth.example.com", "https://auth.example.com"),
            ("https://auth.example.com/", "https://auth.example.com"),
            (
                "HTTPS://AUTH.example.com:443/realms/x/",
                "https://auth.example.com/realms/x",
            ),
            (
                "https://auth.example.com:8443",
                "https://auth.example.com:8443",
            ),
        ] {
            assert_eq!(Issuer::parse(input, p).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn plain_http_needs_loopback_and_opt_in() {
        let err = Issuer::parse("http://auth.example.com", UrlPolicy::https_only()).unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        let loose = UrlPolicy::dangerous_allow_http_loopback();
        assert!(Issuer::parse("http://auth.example.com", loose).is_err());
        assert!(Issuer::parse("http://127.0.0.1:8080", UrlPolicy::https_only()).is_err());
        assert_eq!(
            Issuer::parse("http://127.0.0.1:8080/", loose)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080"
        );
        assert!(Issuer::parse("http://[::1]:1/", loose).is_ok());
        assert!(Issuer::parse("http://localhost/", loose).is_ok());
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_credentials() {
        let p = UrlPolicy::https_only();
        let err = Issuer::parse("https://user:hunter2@auth.example.com", p).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(Issuer::parse("auth.example.com", p).is_err());
        assert!(Issuer::parse("https://auth.example.com?x=1", p).is_err());
        assert!(Issuer::parse("ftp://auth.example.com", p).is_err());
        assert!(TokenEndpoint::parse("https://auth.example.com/token?tenant=1", p).is_ok());
    }
}
