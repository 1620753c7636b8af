//! The mock server over HTTP/1.1 on 127.0.0.1, for examples, benchmarks
//! and clients that need a real socket.
//!
//! A deliberately small server: one thread per connection (at most
//! [`MAX_CONNECTIONS`] at once), keep-alive, bodies framed by
//! `Content-Length` only (a chunked request is answered 411), and caps on
//! the size of the request head and body. It binds 127.0.0.1 and nothing
//! else.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};

use super::wire::MAX_FORM_BYTES;
use super::{MockServer, MockServerBuilder};

/// The most connections served at once; more are answered 503 and closed.
const MAX_CONNECTIONS: usize = 2048;
/// The largest request line plus headers, in bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most header fields in one request.
const MAX_HEADERS: usize = 100;
/// How long a connection may stay silent before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long writing one response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A running loopback server; dropping it shuts the server down.
///
/// Shutting down stops accepting, closes every open connection (a request
/// being answered is cut off, a [`Fault::Delay`](super::Fault::Delay) being
/// waited out ends at once) and joins the server's threads. The
/// [`MockServer`] itself lives on, with what it recorded.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
///
/// use service_auth::mock::MockServer;
///
/// let (server, handle) = MockServer::builder("unused").serve_loopback()?;
/// assert_eq!(server.issuer(), handle.base_url());
///
/// let mut stream = TcpStream::connect(handle.local_addr())?;
/// stream.write_all(
///     b"GET /.well-known/openid-configuration HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
/// )?;
/// let mut answer = String::new();
/// stream.read_to_string(&mut answer)?;
/// assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ServeHandle {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ServeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeHandle")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl ServeHandle {
    /// The address the server listens on: 127.0.0.1 and a port chosen by
    /// the operating system.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The server being served.
    pub fn server(&self) -> &MockServer {
        &self.shared.server
    }

    /// How many connections were accepted so far, refused ones included:
    /// a client that reuses its connections keeps this low.
    pub fn accepted_connections(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// How many connections are open right now.
    pub fn open_connections(&self) -> usize {
        self.shared.connections().open.len()
    }

    /// Shuts the server down and waits for its threads; the same as dropping
    /// the handle.
    pub fn shutdown(self) {}

    fn stop(&mut self) {
        self.shared.set_stopping();
        // The acceptor is blocked in `accept`: a connection of our own wakes
        // it, and it sees the flag. Without one it stays parked, detached.
        let woken = TcpStream::connect_timeout(&self.local_addr, Duration::from_secs(1)).is_ok();
        if let Some(acceptor) = self.acceptor.take()
            && woken
        {
            let _ = acceptor.join();
        }

        let (streams, threads) = {
            let mut connections = self.shared.connections();
            let streams: Vec<TcpStream> = connections.open.drain().map(|(_, s)| s).collect();
            (streams, std::mem::take(&mut connections.threads))
        };
        for stream in streams {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for thread in threads {
            let _ = thread.join();
        }
        tracing::debug!(addr = %self.local_addr, "mock server stopped");
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl MockServer {
    /// Serves this server over HTTP/1.1 on 127.0.0.1, on a port chosen by
    /// the operating system, until the handle is dropped.
    ///
    /// The issuer stays what it was: clients reach the server at
    /// [`ServeHandle::base_url`] while assertions name the issuer, as with
    /// a provider behind an internal address. Use
    /// [`MockServerBuilder::serve_loopback`] for a server whose issuer is
    /// its own URL. Time comes from the server's clock
    /// ([`MockServer::set_clock`]).
    ///
    /// # Errors
    ///
    /// The [`io::Error`] of binding the socket or starting the thread.
    pub fn serve_loopback(&self) -> io::Result<ServeHandle> {
        spawn(self.clone(), bind()?)
    }
}

impl MockServerBuilder {
    /// Binds 127.0.0.1 first, then builds the server with the issuer
    /// `http://127.0.0.1:PORT` (replacing the one given to
    /// [`MockServer::builder`]) and serves it until the handle is dropped.
    ///
    /// Clients must accept plain HTTP to a loopback host for this issuer
    /// ([`UrlPolicy::dangerous_allow_http_loopback`]).
    ///
    /// [`UrlPolicy::dangerous_allow_http_loopback`]: crate::endpoint::UrlPolicy::dangerous_allow_http_loopback
    ///
    /// # Errors
    ///
    /// The [`io::Error`] of binding the socket or starting the thread.
    pub fn serve_loopback(mut self) -> io::Result<(MockServer, ServeHandle)> {
        let listener = bind()?;
        self.issuer = format!("http://{}", listener.local_addr()?);
        let server = self.build();
        let handle = spawn(server.clone(), listener)?;
        Ok((server, handle))
    }
}

fn bind() -> io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
}

fn spawn(server: MockServer, listener: TcpListener) -> io::Result<ServeHandle> {
    let local_addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        server,
        stopping: Mutex::new(false),
        stopped: Condvar::new(),
        connections: Mutex::new(Connections::default()),
        accepted: AtomicUsize::new(0),
    });
    let acceptor = thread::Builder::new().name("mock-accept".into()).spawn({
        let shared = Arc::clone(&shared);
        move || accept_loop(&shared, &listener)
    })?;
    tracing::debug!(addr = %local_addr, "mock server listening");
    Ok(ServeHandle {
        local_addr,
        shared,
        acceptor: Some(acceptor),
    })
}

/// What the acceptor, the connection threads and the handle share.
struct Shared {
    server: MockServer,
    /// Set once, on shutdown; `stopped` is notified then.
    stopping: Mutex<bool>,
    stopped: Condvar,
    connections: Mutex<Connections>,
    accepted: AtomicUsize,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    /// A clone of each open connection, to shut it down from outside.
    open: HashMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

impl Shared {
    fn connections(&self) -> MutexGuard<'_, Connections> {
        // Every update is a single insert, remove or push.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_stopping(&self) {
        *self.stopping.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.stopped.notify_all();
    }

    /// Waits `delay`, or less if the server shuts down; `false` then.
    fn wait_unless_stopped(&self, delay: Duration) -> bool {
        let stopping = self.stopping.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopping, _) = self
            .stopped
            .wait_timeout_while(stopping, delay, |stopping| !*stopping)
            .unwrap_or_else(PoisonError::into_inner);
        !*stopping
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.is_stopping() {
            break;
        }
        match stream {
            Ok(stream) => admit(shared, stream),
            Err(error) => {
                tracing::debug!(%error, "mock server could not accept a connection");
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

fn admit(shared: &Arc<Shared>, stream: TcpStream) {
    shared.accepted.fetch_add(1, Ordering::Relaxed);
    let mut connections = shared.connections();
    connections.threads.retain(|thread| !thread.is_finished());
    if connections.open.len() >= MAX_CONNECTIONS {
        drop(connections);
        let mut stream = stream;
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let _ = write_error(
            &mut stream,
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open connections to the mock server",
        );
        return;
    }
    let Ok(registered) = stream.try_clone() else {
        return;
    };
    let id = connections.next_id;
    connections.next_id += 1;
    connections.open.insert(id, registered);

    let worker = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("mock-connection".into())
        .spawn(move || {
            serve_connection(&worker, stream);
            worker.connections().open.remove(&id);
        });
    match spawned {
        Ok(thread) => connections.threads.push(thread),
        Err(error) => {
            connections.open.remove(&id);
            tracing::debug!(%error, "mock server could not start a connection thread");
        }
    }
}

/// Answers requests on one connection until it closes, fails or the server stops.
fn serve_connection(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;

    while !shared.is_stopping() {
        let incoming = match read_request(&mut reader, &mut writer) {
            Ok(Some(incoming)) => incoming,
            Ok(None) | Err(Bad::Io) => return,
            Err(Bad::Http(status, message)) => {
                let _ = write_error(&mut writer, status, message);
                return;
            }
        };
        let head_only = incoming.request.method() == Method::HEAD;
        let server = &shared.server;
        let reply = server.respond(incoming.request, server.now());
        if let Some(delay) = reply.delay
            && !shared.wait_unless_stopped(delay)
        {
            return;
        }
        let keep_alive = incoming.keep_alive && !shared.is_stopping();
        if write_response(&mut writer, reply.response, head_only, keep_alive).is_err()
            || !keep_alive
        {
            return;
        }
    }
}

/// A request read off the wire.
struct Incoming {
    request: Request<Vec<u8>>,
    keep_alive: bool,
}

/// Why a request could not be read.
enum Bad {
    /// The connection failed or closed mid-request: nothing to answer.
    Io,
    /// The request is malformed: answer this and close.
    Http(StatusCode, &'static str),
}

/// Reads one request; `Ok(None)` when the peer closed between requests.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> Result<Option<Incoming>, Bad> {
    let Some((method, uri, version, headers)) = read_head(reader)? else {
        return Ok(None);
    };
    if version == Version::HTTP_11 && headers.get_all(header::HOST).iter().count() != 1 {
        // RFC 9112 §3.2: an HTTP/1.1 request carries exactly one Host.
        return Err(Bad::Http(
            StatusCode::BAD_REQUEST,
            "an HTTP/1.1 request needs exactly one Host header",
        ));
    }
    let length = body_length(&headers)?;
    if expects_continue(&headers)? && length > 0 {
        // RFC 9110 §10.1.1: the client waits for this before sending the body.
        writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| Bad::Io)?;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|_| Bad::Io)?;

    let keep_alive = keep_alive(version, &headers);
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some(Incoming {
        request,
        keep_alive,
    }))
}

type Head = (Method, Uri, Version, HeaderMap);

/// Reads the request line and the header fields (RFC 9112 §2-§5).
fn read_head(reader: &mut impl BufRead) -> Result<Option<Head>, Bad> {
    let mut budget = MAX_HEAD_BYTES;
    let mut line = Vec::new();
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    loop {
        line.clear();
        if read_line(reader, &mut line, &mut budget)? == 0 {
            return Ok(None);
        }
        if !trim_line_end(&line).is_empty() {
            break;
        }
    }
    let (method, uri, version) = parse_request_line(trim_line_end(&line))?;

    let mut headers = HeaderMap::new();
    loop {
        line.clear();
        if read_line(reader, &mut line, &mut budget)? == 0 {
            return Err(Bad::Io);
        }
        let field = trim_line_end(&line);
        if field.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(Bad::Http(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too many header fields",
            ));
        }
        let (name, value) = parse_field(field)?;
        headers.append(name, value);
    }
    Ok(Some((method, uri, version, headers)))
}

/// Reads up to and including `\n`, within the head's byte budget.
fn read_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    budget: &mut usize,
) -> Result<usize, Bad> {
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX);
    let read = reader
        .by_ref()
        .take(limit)
        .read_until(b'\n', line)
        .map_err(|_| Bad::Io)?;
    *budget -= read;
    if read > 0 && !line.ends_with(b"\n") {
        if *budget == 0 {
            return Err(Bad::Http(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "the request head exceeds 16 KiB",
            ));
        }
        return Err(Bad::Io);
    }
    Ok(read)
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_request_line(line: &[u8]) -> Result<(Method, Uri, Version), Bad> {
    let malformed = Bad::Http(StatusCode::BAD_REQUEST, "malformed request line");
    let mut parts = line.split(|&byte| byte == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed);
    };
    let version = match version {
        b"HTTP/1.1" => Version::HTTP_11,
        b"HTTP/1.0" => Version::HTTP_10,
        other if other.starts_with(b"HTTP/") => {
            return Err(Bad::Http(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "this server speaks HTTP/1.1 only",
            ));
        }
        _ => return Err(malformed),
    };
    let method = Method::from_bytes(method)
        .map_err(|_| Bad::Http(StatusCode::BAD_REQUEST, "malformed method"))?;
    let uri = Uri::try_from(target)
        .map_err(|_| Bad::Http(StatusCode::BAD_REQUEST, "malformed request target"))?;
    Ok((method, uri, version))
}

fn parse_field(field: &[u8]) -> Result<(HeaderName, HeaderValue), Bad> {
    if field.starts_with(b" ") || field.starts_with(b"\t") {
        // RFC 9112 §5.2: line folding is obsolete and refused.
        return Err(Bad::Http(
            StatusCode::BAD_REQUEST,
            "folded header lines are not accepted",
        ));
    }
    let Some(colon) = field.iter().position(|&byte| byte == b':') else {
        return Err(Bad::Http(
            StatusCode::BAD_REQUEST,
            "a header line has no colon",
        ));
    };
    let (name, value) = (&field[..colon], &field[colon + 1..]);
    // RFC 9112 §5.1: no whitespace between the field name and the colon.
    let name = HeaderName::from_bytes(name)
        .map_err(|_| Bad::Http(StatusCode::BAD_REQUEST, "malformed header name"))?;
    let value = HeaderValue::from_bytes(value.trim_ascii())
        .map_err(|_| Bad::Http(StatusCode::BAD_REQUEST, "malformed header value"))?;
    Ok((name, value))
}

/// The body length from `Content-Length`; other framings are refused.
fn body_length(headers: &HeaderMap) -> Result<usize, Bad> {
    let lengths: Vec<&HeaderValue> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if !lengths.is_empty() {
            // RFC 9112 §6.3: both framings at once is a smuggling attempt.
            return Err(Bad::Http(
                StatusCode::BAD_REQUEST,
                "both Transfer-Encoding and Content-Length",
            ));
        }
        return Err(Bad::Http(
            StatusCode::LENGTH_REQUIRED,
            "this server reads Content-Length bodies only; chunked transfer coding is not \
             supported",
        ));
    }
    let Some(first) = lengths.first() else {
        return Ok(0);
    };
    if lengths.iter().any(|value| value != first) {
        return Err(Bad::Http(
            StatusCode::BAD_REQUEST,
            "conflicting Content-Length headers",
        ));
    }
    let digits = first.as_bytes();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Bad::Http(
            StatusCode::BAD_REQUEST,
            "malformed Content-Length",
        ));
    }
    let length = std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    if length > MAX_FORM_BYTES {
        return Err(Bad::Http(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body exceeds 64 KiB",
        ));
    }
    Ok(length)
}

/// Whether the request waits for `100 Continue`; other expectations are refused.
fn expects_continue(headers: &HeaderMap) -> Result<bool, Bad> {
    let Some(expect) = headers.get(header::EXPECT) else {
        return Ok(false);
    };
    if expect.as_bytes().eq_ignore_ascii_case(b"100-continue") {
        return Ok(true);
    }
    Err(Bad::Http(
        StatusCode::EXPECTATION_FAILED,
        "unsupported expectation",
    ))
}

/// HTTP/1.1 keeps the connection unless told `close`; HTTP/1.0 closes it
/// unless told `keep-alive` (RFC 9112 §9.3).
fn keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let has = |option: &str| {
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case(option))
    };
    if version == Version::HTTP_10 {
        has("keep-alive")
    } else {
        !has("close")
    }
}

fn write_response(
    writer: &mut impl Write,
    response: Response<Vec<u8>>,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let mut out = Vec::with_capacity(256 + body.len());
    write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("Unknown")
    )?;
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH
            || name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let connection = if keep_alive { "keep-alive" } else { "close" };
    write!(
        out,
        "content-length: {}\r\nconnection: {connection}\r\n\r\n",
        body.len()
    )?;
    if !head_only {
        out.extend_from_slice(&body);
    }
    writer.write_all(&out)?;
    writer.flush()
}

/// Answers a request that could not be read, and closes.
fn write_error(writer: &mut impl Write, status: StatusCode, message: &str) -> io::Result<()> {
    let mut response = Response::new(format!("{message}\n").into_bytes());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    write_response(writer, response, false, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, Bad> {
        read_head(&mut io::Cursor::new(text.as_bytes().to_vec()))
    }

    fn refusal(result: Result<Option<Head>, Bad>) -> StatusCode {
        match result {
            Err(Bad::Http(status, _)) => status,
            _ => panic!("expected an HTTP refusal"),
        }
    }

    #[test]
    fn reads_a_head_and_ignores_leading_empty_lines() {
        let (method, uri, version, headers) =
            head("\r\nPOST /oauth/v2/token HTTP/1.1\r\nHost: x\r\nA:  b \r\n\r\n")
                .ok()
                .flatten()
                .unwrap();
        assert_eq!(method, Method::POST);
        assert_eq!(uri.path(), "/oauth/v2/token");
        assert_eq!(version, Version::HTTP_11);
        assert_eq!(headers["a"], "b");
    }

    #[test]
    fn refuses_malformed_heads() {
        assert_eq!(refusal(head("GET /\r\n\r\n")), StatusCode::BAD_REQUEST);
        assert_eq!(
            refusal(head("GET / HTTP/2.0\r\n\r\n")),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            refusal(head("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n")),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            refusal(head("GET / HTTP/1.1\r\nA : b\r\n\r\n")),
            StatusCode::BAD_REQUEST
        );
        let huge = format!(
            "GET / HTTP/1.1\r\nA: {}\r\n\r\n",
            "x".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(
            refusal(head(&huge)),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        assert!(matches!(head(""), Ok(None)));
        assert!(matches!(head("GET / HTTP/1.1\r\nA: b\r\n"), Err(Bad::Io)));
    }

    #[test]
    fn frames_bodies_by_content_length_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(body_length(&headers).ok(), Some(0));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert_eq!(body_length(&headers).ok(), Some(12));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert!(matches!(
            body_length(&headers),
            Err(Bad::Http(StatusCode::BAD_REQUEST, _))
        ));
        headers.remove(header::CONTENT_LENGTH);
        assert!(matches!(
            body_length(&headers),
            Err(Bad::Http(StatusCode::LENGTH_REQUIRED, _))
        ));
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("+5"));
        assert!(matches!(
            body_length(&headers),
            Err(Bad::Http(StatusCode::BAD_REQUEST, _))
        ));
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from_static("99999999999999999999999"),
        );
        assert!(matches!(
            body_length(&headers),
            Err(Bad::Http(StatusCode::PAYLOAD_TOO_LARGE, _))
        ));
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        let mut headers = HeaderMap::new();
        assert!(keep_alive(Version::HTTP_11, &headers));
        assert!(!keep_alive(Version::HTTP_10, &headers));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("Keep-Alive, Upgrade"),
        );
        assert!(keep_alive(Version::HTTP_10, &headers));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        assert!(!keep_alive(Version::HTTP_11, &headers));
    }
}
