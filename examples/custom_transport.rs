//! A hand-written blocking transport over `std::net::TcpStream`.
//!
//! **For illustration only.** `LoopbackHttpTransport` speaks plain HTTP/1.1
//! to 127.0.0.1 and nothing else: no TLS, no chunked bodies, one connection
//! per request. It shows what a [`BlockingTransport`] has to do so that you
//! can plug in your own HTTP stack:
//!
//! - send the request as it is (method, URL, headers, body);
//! - return every status as a response, 4xx and 5xx included, and never
//!   follow a redirect (the flows refuse a 3xx themselves);
//! - apply a timeout, and stop reading a body larger than
//!   [`MAX_RESPONSE_BYTES`];
//! - report failures as [`TransportError`]s without bodies in them.
//!
//! Real programs use `UreqTransport` (feature `blocking`) or
//! `ReqwestTransport` (feature `reqwest`), or wrap an HTTPS client of their
//! own the same way.
//!
//! The example serves the crate's mock authorization server on 127.0.0.1 and
//! drives the library's flows through the transport: discovery, then a
//! client credentials token request. It prints what came back, never the
//! access token itself.
//!
//! Run it with `cargo run --example custom_transport`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use service_auth::endpoint::{Issuer, UrlPolicy, is_loopback_host};
use service_auth::error::{TransportError, TransportErrorKind};
use service_auth::flow::{
    ClientAuth, ClientCredentials, Discovery, Grant, RequestOptions, TokenFlow,
};
use service_auth::mock::{MockServer, SecretMethod};
use service_auth::rng::Rng;
use service_auth::secret::ClientSecret;
use service_auth::time::{Clock, SystemClock};
use service_auth::transport::{BlockingTransport, MAX_RESPONSE_BYTES};

/// Room for the status line and headers on top of the body cap.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Plain HTTP/1.1 to a loopback address over `std::net`: for illustration.
struct LoopbackHttpTransport {
    timeout: Duration,
}

impl BlockingTransport for LoopbackHttpTransport {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let addr = loopback_addr(request.uri())?;
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout).map_err(io_error)?;
        stream
            .set_read_timeout(Some(self.timeout))
            .map_err(io_error)?;
        stream
            .set_write_timeout(Some(self.timeout))
            .map_err(io_error)?;

        stream
            .write_all(&encode_request(&request))
            .map_err(io_error)?;

        // `Connection: close` makes the server end the response with EOF;
        // `take` stops a body that would not end.
        let limit = MAX_RESPONSE_BYTES + MAX_HEAD_BYTES;
        let mut raw = Vec::new();
        (&mut stream)
            .take(limit as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(io_error)?;
        if raw.len() > limit {
            return Err(TransportError::from_kind(TransportErrorKind::BodyTooLarge));
        }
        parse_response(&raw)
    }
}

/// Only `http://127.x.x.x:port` and `http://localhost:port` are accepted:
/// this transport has no TLS, so it must never leave the machine.
fn loopback_addr(uri: &http::Uri) -> Result<SocketAddr, TransportError> {
    let host = uri.host().unwrap_or_default();
    if uri.scheme_str() != Some("http") || !is_loopback_host(host) {
        return Err(other(
            "this illustration only speaks plain http to a loopback host",
        ));
    }
    let ip = if host.eq_ignore_ascii_case("localhost") {
        "127.0.0.1"
    } else {
        host
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    format!("{ip}:{port}")
        .parse::<SocketAddr>()
        .or_else(|_| format!("[{ip}]:{port}").parse())
        .map_err(|_| other("the loopback address could not be parsed"))
}

/// Writes the request line, the headers and the body (RFC 9112 §3).
fn encode_request(request: &http::Request<Vec<u8>>) -> Vec<u8> {
    let uri = request.uri();
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let host = uri.authority().map_or("localhost", |a| a.as_str());
    let mut out =
        format!("{} {target} HTTP/1.1\r\nhost: {host}\r\n", request.method()).into_bytes();
    // Host, framing and connection handling belong to the transport.
    let own = [
        http::header::HOST,
        http::header::CONTENT_LENGTH,
        http::header::CONNECTION,
    ];
    for (name, value) in request.headers().iter().filter(|(n, _)| !own.contains(n)) {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let length = request.body().len();
    out.extend_from_slice(
        format!("content-length: {length}\r\nconnection: close\r\n\r\n").as_bytes(),
    );
    out.extend_from_slice(request.body());
    out
}

/// Parses a complete HTTP/1.1 response that ended with EOF.
fn parse_response(raw: &[u8]) -> Result<http::Response<Vec<u8>>, TransportError> {
    let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(other("the response ended before its headers did"));
    };
    let head =
        std::str::from_utf8(&raw[..head_end]).map_err(|_| other("response head is not UTF-8"))?;
    let mut body = raw[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");

    // "HTTP/1.1 200 OK": the status is the second word.
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| http::StatusCode::from_bytes(code.as_bytes()).ok())
        .ok_or_else(|| other("the status line is malformed"))?;

    let mut response = http::Response::builder().status(status);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(other("a header line has no colon"));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(other(
                "chunked bodies are not supported by this illustration",
            ));
        }
        if name.eq_ignore_ascii_case("content-length") {
            let length: usize = value.parse().map_err(|_| other("bad content-length"))?;
            if length > body.len() {
                return Err(other("the body is shorter than its content-length"));
            }
            body.truncate(length);
        }
        response = response.header(name, value);
    }
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(TransportError::from_kind(TransportErrorKind::BodyTooLarge));
    }
    response
        .body(body)
        .map_err(|_| other("a response header is invalid"))
}

fn io_error(err: std::io::Error) -> TransportError {
    let kind = match err.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            TransportErrorKind::Timeout
        }
        std::io::ErrorKind::ConnectionRefused => TransportErrorKind::Connect,
        _ => TransportErrorKind::Other,
    };
    TransportError::new(kind, err)
}

fn other(message: &'static str) -> TransportError {
    TransportError::new(TransportErrorKind::Other, message)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The mock authorization server on 127.0.0.1, with its own URL as issuer.
    let (_server, handle) = MockServer::builder("unused")
        .client_secret("example-client", "example-secret", SecretMethod::Basic)
        .serve_loopback()?;
    let transport = LoopbackHttpTransport {
        timeout: Duration::from_secs(5),
    };

    // Discovery, through the custom transport.
    let policy = UrlPolicy::dangerous_allow_http_loopback();
    let issuer = Issuer::parse(&handle.base_url(), policy)?;
    let (awaiting, request) = Discovery::new(issuer, policy).request();
    let metadata = awaiting.handle_response(transport.send(request)?)?;
    println!("discovered token endpoint {}", metadata.token_endpoint());

    // A client credentials token request, through the custom transport.
    let secret = ClientSecret::new("example-secret");
    let grant = Grant::from(ClientCredentials::new(
        "example-client",
        ClientAuth::SecretBasic(secret),
    ));
    let options = RequestOptions::default();
    let mut rng = Rng::from_entropy();
    let (awaiting, request) = TokenFlow::new(&grant, metadata.token_endpoint(), &options)
        .start(SystemClock.now(), &mut rng)?;
    let response = transport.send(request)?;
    let token = awaiting.handle_response(response, SystemClock.now())?;

    // Never print the access token itself.
    println!(
        "got an access token of {} bytes, valid for {:?}",
        token.access_token().secret().len(),
        token.lifetime().unwrap_or_default(),
    );
    Ok(())
}
