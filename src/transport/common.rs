//! What the reqwest and ureq transports share: the build error, root
//! certificate loading, the scheme check, log-safe URLs and the outcome log
//! line.

use std::fmt;
use std::path::PathBuf;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::endpoint::is_loopback_host;
use crate::error::{TransportError, TransportErrorKind};
use crate::time::{Clock, SystemClock};

/// Why a transport ([`ReqwestTransport`] or [`UreqTransport`]) could not be
/// built.
///
/// [`ReqwestTransport`]: crate::transport::reqwest::ReqwestTransport
/// [`UreqTransport`]: crate::transport::ureq::UreqTransport
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A root certificate file could not be read.
    #[error(
        "cannot read the root certificate file `{}`: {source}; check the path and that this process may read it",
        path.display()
    )]
    ReadCertificateFile {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// A PEM source held no valid certificate.
    #[error(
        "{origin} holds no usable certificate ({reason}); expected one or more PEM `BEGIN CERTIFICATE` blocks"
    )]
    InvalidCertificate {
        /// Where the PEM came from: a file name, or "PEM bytes".
        origin: String,
        /// What was wrong.
        reason: String,
    },
    /// reqwest could not build the client (the reqwest transport only).
    #[cfg(feature = "reqwest")]
    #[error("the HTTP client could not be built: {0}")]
    Client(#[source] ::reqwest::Error),
}

/// The `User-Agent` of the clients and agents the transports build.
pub(crate) const USER_AGENT: &str = concat!("service-auth/", env!("CARGO_PKG_VERSION"));

/// Where the PEM text of root certificates comes from.
pub(crate) enum PemSource {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl PemSource {
    /// Reads and parses the PEM, then turns each certificate into the HTTP
    /// client's own type with `convert`, whose error text becomes the
    /// `reason` of [`BuildError::InvalidCertificate`].
    pub(crate) fn load<C>(
        &self,
        convert: impl Fn(&CertificateDer<'static>) -> Result<C, String>,
    ) -> Result<Vec<C>, BuildError> {
        let (pem, origin) = match self {
            Self::Bytes(pem) => (pem.clone(), "PEM bytes".to_owned()),
            Self::File(path) => {
                let pem =
                    std::fs::read(path).map_err(|source| BuildError::ReadCertificateFile {
                        path: path.clone(),
                        source,
                    })?;
                (pem, format!("file `{}`", path.display()))
            }
        };
        let invalid = |reason: String| BuildError::InvalidCertificate {
            origin: origin.clone(),
            reason,
        };
        let ders = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| invalid(err.to_string()))?;
        if ders.is_empty() {
            return Err(invalid("no certificate block found".to_owned()));
        }
        ders.iter()
            .map(|der| convert(der).map_err(invalid))
            .collect()
    }
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(pem) => write!(f, "Bytes({} bytes)", pem.len()),
            Self::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

/// Logs the outcome of one request: at trace level the status, timing and
/// body length of a response, at debug level the kind of a failure. A macro
/// rather than a function so that the events keep the calling transport's
/// module as their target.
macro_rules! log_outcome {
    ($method:expr, $url:expr, $started:expr, $result:expr) => {{
        let elapsed_ms = $crate::transport::common::elapsed_millis($started);
        let (method, url) = (&$method, &$url);
        match $result {
            Ok(response) => tracing::trace!(
                %method,
                %url,
                status = response.status().as_u16(),
                elapsed_ms,
                body_len = response.body().len(),
                "response received"
            ),
            Err(err) => tracing::debug!(
                %method,
                %url,
                kind = %err.kind(),
                elapsed_ms,
                "request failed"
            ),
        }
    }};
}
pub(crate) use log_outcome;

/// The URL for a log line: scheme, host, port, path and query, without any
/// `user:password@` the caller may have put in the authority.
pub(crate) fn loggable_url(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or_default();
    let host = uri.host().unwrap_or_default();
    let port = uri.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = uri.path_and_query().map_or("", |pq| pq.as_str());
    format!("{scheme}://{host}{port}{path}")
}

/// Refuses a URL that is not `https`, or `http` to a loopback host under the
/// opt-in. Only the scheme and host appear in the error.
pub(crate) fn check_scheme(
    uri: &http::Uri,
    allow_http_loopback: bool,
) -> Result<(), TransportError> {
    let scheme = uri.scheme_str().unwrap_or_default();
    let host = uri.host().unwrap_or_default();
    if scheme.eq_ignore_ascii_case("https") {
        return Ok(());
    }
    if scheme.eq_ignore_ascii_case("http") && allow_http_loopback && is_loopback_host(host) {
        return Ok(());
    }
    Err(TransportError::new(
        TransportErrorKind::Other,
        format!(
            "refused to send a request to `{scheme}://{host}`: expected an https URL \
             (plain http is sent only to a loopback host, with the dangerous loopback opt-in)"
        ),
    ))
}

/// The error for a response body larger than `limit` bytes.
pub(crate) fn too_large(limit: usize) -> TransportError {
    TransportError::new(
        TransportErrorKind::BodyTooLarge,
        format!("the response body exceeds the {limit}-byte limit; it was not read further"),
    )
}

/// Milliseconds since `started`, for log lines.
pub(crate) fn elapsed_millis(started: std::time::Instant) -> u64 {
    let elapsed = SystemClock
        .now()
        .instant()
        .saturating_duration_since(started);
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> http::Uri {
        s.parse().unwrap()
    }

    #[test]
    fn logged_urls_drop_user_info() {
        let uri = uri("https://user:pw@auth.example.com:8443/token?tenant=a");
        assert_eq!(
            loggable_url(&uri),
            "https://auth.example.com:8443/token?tenant=a"
        );
    }

    #[test]
    fn scheme_check_needs_https_or_opted_in_loopback() {
        assert!(check_scheme(&uri("https://auth.example.com/token"), false).is_ok());
        assert!(check_scheme(&uri("http://auth.example.com/token"), true).is_err());
        assert!(check_scheme(&uri("http://127.0.0.1:8080/token"), false).is_err());
        assert!(check_scheme(&uri("http://127.0.0.1:8080/token"), true).is_ok());
        assert!(check_scheme(&uri("http://[::1]:8080/token"), true).is_ok());
        assert!(check_scheme(&uri("http://localhost:8080/token"), true).is_ok());
        assert!(check_scheme(&uri("ftp://127.0.0.1/token"), true).is_err());
    }

    #[test]
    fn scheme_error_names_only_scheme_and_host() {
        let uri = uri("http://auth.example.com/token?secret=hunter2");
        let err = check_scheme(&uri, false).unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Other);
        let msg = err.to_string();
        assert!(msg.contains("http://auth.example.com"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn invalid_pem_is_refused() {
        let err = PemSource::Bytes(b"not a certificate".to_vec())
            .load(|der| Ok(der.clone()))
            .unwrap_err();
        assert!(
            matches!(err, BuildError::InvalidCertificate { .. }),
            "{err}"
        );
    }
}
