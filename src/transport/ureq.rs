//! The blocking transport over ureq (feature `blocking`).
//!
//! [`UreqTransport`] sends token and discovery requests on the calling
//! thread with a [`ureq::Agent`] set up for them: redirects are never
//! followed (a 3xx comes back as a response), every status is returned as a
//! response rather than an error, every request has a connect and an overall
//! timeout, plain HTTP is refused, TLS is rustls, and the response body is
//! abandoned as soon as it exceeds a size cap.
//!
//! # Why ureq
//!
//! ureq is small, needs no async runtime (this feature must not pull in
//! tokio), is actively maintained, and speaks TLS through rustls. That makes
//! it the natural client for [`BlockingTransport`] in programs without an
//! async runtime.
//!
//! # Security
//!
//! - Redirects are not followed (a 307/308 would re-send the client secret
//!   or assertion to wherever the `Location` points); the flows refuse the
//!   3xx response.
//! - `http://` is refused unless the host is a loopback address and the
//!   caller opted in with
//!   [`UreqTransportBuilder::dangerous_allow_http_loopback`].
//! - Errors and log lines carry the method, the URL, the status, the timing
//!   and the body length, never a body. ureq's own `log` output redacts
//!   sensitive headers.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::error::{TransportError, TransportErrorKind};
use crate::time::{Clock, SystemClock};
use crate::transport::common::too_large;
use crate::transport::common::{PemSource, USER_AGENT, check_scheme, log_outcome, loggable_url};
use crate::transport::{BlockingTransport, MAX_RESPONSE_BYTES};

pub use crate::transport::BuildError;

/// How long [`UreqTransport::new`] waits for a connection (TCP and TLS) to
/// be established: 10 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`UreqTransport::new`] lets one request take, from resolving the
/// host to the last byte of the body: 30 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A [`BlockingTransport`] over [`ureq`].
///
/// Cloning is cheap: clones share the agent and its connection pool.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// use service_auth::transport::ureq::UreqTransport;
///
/// // Safe defaults: no redirects, 10 s / 30 s timeouts, https only.
/// let transport = UreqTransport::new()?;
///
/// // A provider behind a private CA, reached through an internal address.
/// let transport = UreqTransport::builder()
///     .timeout(Duration::from_secs(5))
///     .root_certificate_file("/etc/ssl/private-ca.pem")
///     .resolve("auth.example.com", "10.0.0.7:443".parse()?)
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct UreqTransport {
    agent: ureq::Agent,
    max_body_bytes: usize,
    allow_http_loopback: bool,
}

impl UreqTransport {
    /// Builds a transport with the defaults: redirects not followed,
    /// [`DEFAULT_CONNECT_TIMEOUT`], [`DEFAULT_TIMEOUT`], https only, rustls
    /// with Mozilla's root certificates (the `webpki-roots` set), bodies
    /// capped at [`MAX_RESPONSE_BYTES`] and
    /// `User-Agent: service-auth/<version>`.
    ///
    /// # Errors
    ///
    /// None with the defaults; the signature matches
    /// [`UreqTransportBuilder::build`].
    pub fn new() -> Result<Self, BuildError> {
        Self::builder().build()
    }

    /// Starts configuring a transport; see [`UreqTransportBuilder`].
    pub fn builder() -> UreqTransportBuilder {
        UreqTransportBuilder::default()
    }

    /// Wraps an agent the caller configured (their proxy, TLS settings,
    /// user agent).
    ///
    /// Whatever the agent's configuration, each request is sent with
    /// redirects off and statuses returned as responses: those two settings
    /// are applied per request. Timeouts are the agent's (ureq has none by
    /// default: set `timeout_global`). The response-size cap
    /// ([`MAX_RESPONSE_BYTES`] unless changed with
    /// [`with_max_body_bytes`](Self::with_max_body_bytes)) and the refusal
    /// of plain HTTP are enforced by this transport.
    pub fn from_agent(agent: ureq::Agent) -> Self {
        Self {
            agent,
            max_body_bytes: MAX_RESPONSE_BYTES,
            allow_http_loopback: false,
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
    /// [`from_agent`](Self::from_agent). Tokens and secrets then cross the
    /// loopback interface in clear text: for tests and local development
    /// only.
    ///
    /// A transport from [`builder`](Self::builder) needs
    /// [`UreqTransportBuilder::dangerous_allow_http_loopback`] instead: its
    /// agent itself refuses plain HTTP otherwise.
    #[must_use]
    pub fn dangerous_allow_http_loopback(mut self) -> Self {
        self.allow_http_loopback = true;
        self
    }

    /// The underlying agent.
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }
}

impl BlockingTransport for UreqTransport {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let method = request.method().clone();
        let url = loggable_url(request.uri());
        let started = SystemClock.now().instant();

        let result = self.send_checked(request);

        log_outcome!(method, url, started, &result);
        result
    }
}

impl UreqTransport {
    fn send_checked(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        check_scheme(request.uri(), self.allow_http_loopback)?;

        // An empty GET or HEAD goes out without a body, rather than with
        // `Content-Length: 0`.
        let bodiless = request.body().is_empty()
            && matches!(*request.method(), http::Method::GET | http::Method::HEAD);
        let response = if bodiless {
            self.run(request.map(|_| ()))
        } else {
            self.run(request)
        }
        .map_err(map_error)?;

        let (mut parts, mut body) = response.into_parts();
        let body = read_capped(&mut body, self.max_body_bytes)?;
        // ureq's extensions (redirect history, the final URI) mean nothing
        // to the flows.
        parts.extensions = http::Extensions::new();
        Ok(http::Response::from_parts(parts, body))
    }

    /// Sends with the settings every token request needs, whatever the
    /// agent's configuration: no redirects, and the 3xx returned rather than
    /// an error; every status returned as a response.
    fn run<S: ureq::AsSendBody>(
        &self,
        request: http::Request<S>,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let request = self
            .agent
            .configure_request(request)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .build();
        self.agent.run(request)
    }
}

impl fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UreqTransport")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("allow_http_loopback", &self.allow_http_loopback)
            .finish_non_exhaustive()
    }
}

/// Configures a [`UreqTransport`]; made by [`UreqTransport::builder`].
///
/// Options that can fail (reading a certificate file, parsing PEM) are
/// checked in [`build`](Self::build), so the calls chain.
#[derive(Debug)]
#[must_use]
pub struct UreqTransportBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    max_body_bytes: usize,
    root_certificates: Vec<PemSource>,
    allow_http_loopback: bool,
    resolve: Vec<(String, SocketAddr)>,
}

impl Default for UreqTransportBuilder {
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

impl UreqTransportBuilder {
    /// Sets how long a request may take in all, from resolving the host to
    /// the last byte of the body ([`DEFAULT_TIMEOUT`] unless set).
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
    /// blocks) as root certificates: for a provider behind a private
    /// certificate authority.
    ///
    /// Unlike the reqwest transport's option, this one *replaces* the
    /// public root certificates: ureq cannot merge its built-in Mozilla set
    /// with extra roots, so a transport given a private CA trusts only the
    /// certificates given here. Add several to trust several authorities.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(PemSource::Bytes(pem.into()));
        self
    }

    /// Trusts the certificates in the PEM file at `path` as root
    /// certificates, replacing the public ones as
    /// [`root_certificate_pem`](Self::root_certificate_pem) does. The file
    /// is read by [`build`](Self::build).
    pub fn root_certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_certificates.push(PemSource::File(path.into()));
        self
    }

    /// Also accepts plain `http://` URLs whose host is a loopback address
    /// (`localhost`, `127.0.0.0/8`, `[::1]`).
    ///
    /// Tokens and secrets then cross the loopback interface in clear text:
    /// for tests and local development only. Without it, the agent is built
    /// with ureq's `https_only(true)` and this transport refuses every
    /// `http://` URL before sending.
    pub fn dangerous_allow_http_loopback(mut self) -> Self {
        self.allow_http_loopback = true;
        self
    }

    /// Connects to `addr` whenever a URL's host is `host`, while the URL,
    /// the `Host` header and the TLS server name stay `host`: for a provider
    /// reached through an internal address under its public issuer.
    ///
    /// A port in the URL wins over `addr`'s port; without one, `addr`'s port
    /// is used, or the scheme's default port when `addr`'s port is 0 (the
    /// same rule as the reqwest transport).
    ///
    /// # Compatibility
    ///
    /// The transport plugs its resolver (these overrides, IP literals
    /// answered without a lookup thread) into ureq through ureq's
    /// `unversioned` module, which ureq exempts from semver; `Cargo.toml`
    /// therefore accepts ureq 3.5 releases only.
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
    /// valid certificate.
    pub fn build(self) -> Result<UreqTransport, BuildError> {
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
        if !self.root_certificates.is_empty() {
            let mut roots = Vec::new();
            for source in &self.root_certificates {
                roots.extend(
                    source.load(|der| Ok(ureq::tls::Certificate::from_der(der).to_owned()))?,
                );
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)));
        }

        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .https_only(!self.allow_http_loopback)
            .timeout_connect(Some(self.connect_timeout))
            .timeout_global(Some(self.timeout))
            .user_agent(USER_AGENT)
            // Many threads sharing one transport keep their connections.
            .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS_PER_HOST)
            .tls_config(tls.build())
            .build();
        // The resolver hook is ureq's semver-exempt API. It is plugged in
        // always: with a timeout set, ureq's default resolver looks every
        // host up on a new thread, IP literals included, which costs more
        // than the rest of a pooled exchange.
        let resolver = OverrideResolver {
            overrides: self.resolve,
            fallback: DefaultResolver::default(),
        };
        let agent = ureq::Agent::with_parts(config, DefaultConnector::default(), resolver);
        Ok(UreqTransport {
            agent,
            max_body_bytes: self.max_body_bytes,
            allow_http_loopback: self.allow_http_loopback,
        })
    }
}

/// Idle connections kept per host: enough for a pool of worker threads.
const MAX_IDLE_CONNECTIONS_PER_HOST: usize = 16;

/// Answers configured hosts with their fixed address and IP literals with
/// themselves, and asks the system resolver for the others.
#[derive(Debug)]
struct OverrideResolver {
    overrides: Vec<(String, SocketAddr)>,
    fallback: DefaultResolver,
}

impl Resolver for OverrideResolver {
    fn resolve(
        &self,
        uri: &http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let fixed = self
            .overrides
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
            .map(|(_, addr)| *addr);
        let literal = || {
            host.parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 0))
        };
        let Some(mut addr) = fixed.or_else(literal) else {
            return self.fallback.resolve(uri, config, timeout);
        };

        if let Some(port) = uri.port_u16() {
            addr.set_port(port);
        } else if addr.port() == 0 {
            let https = uri
                .scheme_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("https"));
            addr.set_port(if https { 443 } else { 80 });
        }
        let mut addrs = self.empty();
        addrs.push(addr);
        Ok(addrs)
    }
}

/// Reads the body up to `limit` bytes; ureq stops reading one byte past it.
fn read_capped(body: &mut ureq::Body, limit: usize) -> Result<Vec<u8>, TransportError> {
    if let Some(declared) = body.content_length()
        && declared > limit as u64
    {
        return Err(too_large(limit));
    }
    body.with_config()
        .limit(limit as u64)
        .read_to_vec()
        .map_err(map_error)
}

/// Classifies a ureq error. Its message names the cause, never a body.
fn map_error(err: ureq::Error) -> TransportError {
    let kind = match &err {
        ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
        ureq::Error::BodyExceedsLimit(limit) => {
            let limit = usize::try_from(*limit).unwrap_or(usize::MAX);
            return too_large(limit);
        }
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => TransportErrorKind::Redirect,
        ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::ConnectProxyFailed(_)
        | ureq::Error::Tls(_)
        | ureq::Error::Rustls(_) => TransportErrorKind::Connect,
        ureq::Error::Io(io) if is_tls_failure(io) => TransportErrorKind::Connect,
        ureq::Error::Io(io) => io_kind(io.kind()),
        _ => TransportErrorKind::Other,
    };
    TransportError::new(kind, err)
}

/// ureq reports a failed TLS handshake (an untrusted certificate, say) as an
/// `io::Error` wrapping the `rustls::Error`: a connection failure, like
/// reqwest's.
fn is_tls_failure(io: &std::io::Error) -> bool {
    io.get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

fn io_kind(kind: std::io::ErrorKind) -> TransportErrorKind {
    use std::io::ErrorKind;
    match kind {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => TransportErrorKind::Timeout,
        ErrorKind::ConnectionRefused
        | ErrorKind::AddrNotAvailable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::HostUnreachable => TransportErrorKind::Connect,
        _ => TransportErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> http::Uri {
        s.parse().unwrap()
    }

    #[test]
    fn resolver_answers_overrides_with_the_url_port() {
        let resolver = OverrideResolver {
            overrides: vec![
                (
                    "auth.example.com".to_owned(),
                    "127.0.0.9:0".parse().unwrap(),
                ),
                (
                    "idp.example.com".to_owned(),
                    "127.0.0.8:8443".parse().unwrap(),
                ),
            ],
            fallback: DefaultResolver::default(),
        };
        let config = ureq::config::Config::default();
        let resolve = |u: &str| {
            let addrs = resolver
                .resolve(&uri(u), &config, NextTimeout::default())
                .unwrap();
            addrs.iter().copied().collect::<Vec<SocketAddr>>()
        };
        let want = |s: &str| vec![s.parse::<SocketAddr>().unwrap()];
        assert_eq!(
            resolve("https://Auth.Example.com/token"),
            want("127.0.0.9:443")
        );
        assert_eq!(
            resolve("https://auth.example.com:9443/token"),
            want("127.0.0.9:9443")
        );
        assert_eq!(
            resolve("http://auth.example.com/token"),
            want("127.0.0.9:80")
        );
        assert_eq!(
            resolve("https://idp.example.com/token"),
            want("127.0.0.8:8443")
        );
    }

    #[test]
    fn io_errors_are_classified() {
        use std::io::ErrorKind;
        assert_eq!(
            io_kind(ErrorKind::ConnectionRefused),
            TransportErrorKind::Connect
        );
        assert_eq!(io_kind(ErrorKind::TimedOut), TransportErrorKind::Timeout);
        assert_eq!(io_kind(ErrorKind::UnexpectedEof), TransportErrorKind::Other);
    }

    #[test]
    fn invalid_pem_is_refused_at_build() {
        let err = UreqTransport::builder()
            .root_certificate_pem("not a certificate")
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::InvalidCertificate { .. }),
            "{err}"
        );
    }
}
