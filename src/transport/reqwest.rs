//! The async transport over reqwest (feature `reqwest`).
//!
//! [`ReqwestTransport`] sends token and discovery requests with a
//! [`reqwest::Client`] set up for them: redirects are never followed, every
//! request has a connect and an overall timeout, plain HTTP is refused, TLS
//! is rustls, and the response body is read chunk by chunk and abandoned as
//! soon as it exceeds a size cap.
//!
//! # Security
//!
//! - Redirects are not followed (RFC 6749 §3.2 does not ask clients to, and a
//!   307/308 would re-send the client secret or assertion to wherever the
//!   `Location` points). A 3xx comes back as a response; the flows refuse it.
//! - `http://` is refused unless the host is a loopback address and the
//!   caller opted in with a `dangerous_allow_http_loopback` method.
//! - Errors and log lines carry the method, the URL, the status, the timing
//!   and the body length, never a body.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{TransportError, TransportErrorKind};
use crate::time::{Clock, SystemClock};
use crate::transport::common::too_large;
use crate::transport::common::{PemSource, USER_AGENT, check_scheme, log_outcome, loggable_url};
use crate::transport::{MAX_RESPONSE_BYTES, Transport};

pub use crate::transport::BuildError;

/// How long [`ReqwestTransport::new`] waits for a connection (TCP and TLS)
/// to be established: 10 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`ReqwestTransport::new`] lets one request take, from connecting
/// to the last byte of the body: 30 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A [`Transport`] over [`reqwest`].
///
/// Cloning is cheap: clones share the client and its connection pool.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// use service_auth::transport::reqwest::ReqwestTransport;
///
/// // Safe defaults: no redirects, 10 s / 30 s timeouts, https only.
/// let transport = ReqwestTransport::new()?;
///
/// // A provider behind a private CA, with a shorter timeout.
/// let transport = ReqwestTransport::builder()
///     .timeout(Duration::from_secs(5))
///     .extra_root_certificate_file("/etc/ssl/private-ca.pem")
///     .build()?;
/// # Ok::<(), service_auth::transport::reqwest::BuildError>(())
/// ```
#[derive(Clone)]
pub struct ReqwestTransport {
    client: ::reqwest::Client,
    max_body_bytes: usize,
    allow_http_loopback: bool,
    /// Whether the client is the user's own, whose redirect policy we do
    /// not know.
    foreign_client: bool,
}

impl ReqwestTransport {
    /// Builds a transport with the defaults: redirects not followed,
    /// [`DEFAULT_CONNECT_TIMEOUT`], [`DEFAULT_TIMEOUT`], https only, rustls
    /// with the platform's root certificates, bodies capped at
    /// [`MAX_RESPONSE_BYTES`] and `User-Agent: service-auth/<version>`.
    ///
    /// # Errors
    ///
    /// [`BuildError::Client`] when reqwest cannot set up its TLS
    /// configuration (for example, the platform's certificate store cannot
    /// be loaded).
    pub fn new() -> Result<Self, BuildError> {
        Self::builder().build()
    }

    /// Starts configuring a transport; see [`ReqwestTransportBuilder`].
    pub fn builder() -> ReqwestTransportBuilder {
        ReqwestTransportBuilder::default()
    }

    /// Wraps a client the caller configured (their proxy, root
    /// certificates, user agent).
    ///
    /// The client's redirect policy and timeouts are then the caller's
    /// responsibility: build it with
    /// `redirect(reqwest::redirect::Policy::none())` and a `timeout`. If the
    /// client follows a redirect anyway, [`send`](Transport::send) notices
    /// that the final URL differs from the requested one and returns
    /// [`TransportErrorKind::Redirect`] instead of the response, but the
    /// request has by then been re-sent to the redirect target. The
    /// response-size cap ([`MAX_RESPONSE_BYTES`] unless changed with
    /// [`with_max_body_bytes`](Self::with_max_body_bytes)) and the refusal
    /// of plain HTTP are still enforced by this transport.
    pub fn from_client(client: ::reqwest::Client) -> Self {
        Self {
            client,
            max_body_bytes: MAX_RESPONSE_BYTES,
            allow_http_loopback: false,
            foreign_client: true,
        }
    }

    /// Sets the largest response body this transport reads.
    #[must_use]
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Lets this transport send plain `http://` requests to a loopback host
    /// (`localhost`, `127.0.0.0/8`, `[::1]`), for a transport made with
    /// [`from_client`](Self::from_client). Tokens and secrets then cross the
    /// loopback interface in clear text: for tests and local development
    /// only.
    ///
    /// A transport from [`builder`](Self::builder) needs
    /// [`ReqwestTransportBuilder::dangerous_allow_http_loopback`] instead:
    /// its client itself refuses plain HTTP otherwise.
    #[must_use]
    pub fn dangerous_allow_http_loopback(mut self) -> Self {
        self.allow_http_loopback = true;
        self
    }

    /// The underlying client.
    pub fn client(&self) -> &::reqwest::Client {
        &self.client
    }
}

impl Transport for ReqwestTransport {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let method = request.method().clone();
        let url = loggable_url(request.uri());
        let started = SystemClock.now().instant();

        let result = self.send_checked(request).await;

        log_outcome!(method, url, started, &result);
        result
    }
}

impl ReqwestTransport {
    async fn send_checked(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        check_scheme(request.uri(), self.allow_http_loopback)?;
        let request = ::reqwest::Request::try_from(request).map_err(map_error)?;
        let sent_url = request.url().clone();

        let mut response = self.client.execute(request).await.map_err(map_error)?;
        if self.foreign_client && response.url() != &sent_url {
            return Err(followed_redirect());
        }

        let status = response.status();
        let version = response.version();
        let headers = std::mem::take(response.headers_mut());
        let body = read_capped(&mut response, self.max_body_bytes).await?;

        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.version_mut() = version;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransport")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("allow_http_loopback", &self.allow_http_loopback)
            .field("foreign_client", &self.foreign_client)
            .finish_non_exhaustive()
    }
}

/// Configures a [`ReqwestTransport`]; made by [`ReqwestTransport::builder`].
///
/// Options that can fail (reading a certificate file, parsing PEM) are
/// checked in [`build`](Self::build), so the calls chain.
#[derive(Debug)]
#[must_use]
pub struct ReqwestTransportBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    max_body_bytes: usize,
    root_certificates: Vec<PemSource>,
    allow_http_loopback: bool,
    resolve: Vec<(String, SocketAddr)>,
}

impl Default for ReqwestTransportBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: MAX_RESPONSE_BYTES,
            root_certificates: Vec::new(),
            allow_http_loopback: false,
            resolve: Vec::new(),
        }
    }
}

impl ReqwestTransportBuilder {
    /// Sets how long a request may take in all, from connecting to the last
    /// byte of the body ([`DEFAULT_TIMEOUT`] unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long establishing a connection (TCP and TLS) may take
    /// ([`DEFAULT_CONNECT_TIMEOUT`] unless set).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the largest response body the transport reads
    /// ([`MAX_RESPONSE_BYTES`] unless set). A larger body fails with
    /// [`TransportErrorKind::BodyTooLarge`] without being read further.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Trusts the certificates in `pem` (one or more `BEGIN CERTIFICATE`
    /// blocks) as root certificates, in addition to the platform's: for a
    /// provider behind a private certificate authority.
    pub fn extra_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(PemSource::Bytes(pem.into()));
        self
    }

    /// Trusts the certificates in the PEM file at `path` as root
    /// certificates, in addition to the platform's. The file is read by
    /// [`build`](Self::build).
    pub fn extra_root_certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_certificates.push(PemSource::File(path.into()));
        self
    }

    /// Also accepts plain `http://` URLs whose host is a loopback address
    /// (`localhost`, `127.0.0.0/8`, `[::1]`).
    ///
    /// Tokens and secrets then cross the loopback interface in clear text:
    /// for tests and local development only. Without it, the client is
    /// built with reqwest's `https_only(true)` and this transport refuses
    /// every `http://` URL before sending.
    pub fn dangerous_allow_http_loopback(mut self) -> Self {
        self.allow_http_loopback = true;
        self
    }

    /// Connects to `addr` whenever a URL's host is `host`, while the URL,
    /// the `Host` header and the TLS server name stay `host`: for a provider
    /// reached through an internal address under its public issuer.
    ///
    /// A port in the URL wins over `addr`'s port; without one, `addr`'s port
    /// is used, or the scheme's default port when `addr`'s port is 0.
    pub fn resolve(mut self, host: &str, addr: SocketAddr) -> Self {
        self.resolve.push((host.to_ascii_lowercase(), addr));
        self
    }

    /// Builds the transport.
    ///
    /// # Errors
    ///
    /// [`BuildError::ReadCertificateFile`] when a certificate file cannot be
    /// read, [`BuildError::InvalidCertificate`] when a PEM source holds no
    /// valid certificate, [`BuildError::Client`] when reqwest cannot set up
    /// the client (for example, its TLS configuration).
    pub fn build(self) -> Result<ReqwestTransport, BuildError> {
        let mut builder = ::reqwest::Client::builder()
            .redirect(::reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .https_only(!self.allow_http_loopback)
            .user_agent(USER_AGENT);
        for source in &self.root_certificates {
            let certificates = source
                .load(|der| ::reqwest::Certificate::from_der(der).map_err(|err| err.to_string()))?;
            builder = builder.tls_certs_merge(certificates);
        }
        for (host, addr) in &self.resolve {
            builder = builder.resolve(host, *addr);
        }
        let client = builder.build().map_err(BuildError::Client)?;
        Ok(ReqwestTransport {
            client,
            max_body_bytes: self.max_body_bytes,
            allow_http_loopback: self.allow_http_loopback,
            foreign_client: false,
        })
    }
}

/// Reads the body chunk by chunk, stopping as soon as it exceeds `limit`.
async fn read_capped(
    response: &mut ::reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, TransportError> {
    let declared = response.content_length();
    if let Some(declared) = declared
        && declared > limit as u64
    {
        return Err(too_large(limit));
    }

    // `declared` is at most `limit` here, so the allocation is bounded.
    let mut body = Vec::with_capacity(declared.map_or(0, |len| len as usize));
    while let Some(chunk) = response.chunk().await.map_err(map_error)? {
        if chunk.len() > limit - body.len() {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn followed_redirect() -> TransportError {
    TransportError::new(
        TransportErrorKind::Redirect,
        "the reqwest client followed a redirect; build it with `redirect(Policy::none())`, \
         since token requests must not be redirected",
    )
}

/// Classifies a reqwest error. Its message names the URL and the cause,
/// never a body.
fn map_error(err: ::reqwest::Error) -> TransportError {
    // A connect timeout is both a timeout and a connect error: report the
    // timeout, which says more about what to change.
    let kind = if err.is_timeout() {
        TransportErrorKind::Timeout
    } else if err.is_connect() {
        TransportErrorKind::Connect
    } else if err.is_redirect() {
        TransportErrorKind::Redirect
    } else {
        TransportErrorKind::Other
    };
    TransportError::new(kind, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_pem_is_refused_at_build() {
        let err = ReqwestTransport::builder()
            .extra_root_certificate_pem("not a certificate")
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::InvalidCertificate { .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_certificate_file_names_the_file() {
        let err = ReqwestTransport::builder()
            .extra_root_certificate_file("/nonexistent/service-auth-ca.pem")
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::ReadCertificateFile { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("/nonexistent/service-auth-ca.pem"));
    }
}
