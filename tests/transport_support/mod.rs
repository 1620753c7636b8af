//! Helpers shared by the transport tests (`transport_reqwest`,
//! `transport_blocking`): requests, the mockito mocks both transports are
//! tested against (built but not yet created, since the async test creates
//! them with `create_async`), the checks both make, and a test CA.
#![allow(dead_code)] // each test crate uses a different part

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use mockito::{Matcher, Mock, Server};
use service_auth::error::{TransportError, TransportErrorKind};

/// The statuses and bodies a transport must pass through untouched.
pub const STATUS_CASES: [(usize, &str); 5] = [
    (200, r#"{"access_token":"t","token_type":"Bearer"}"#),
    (400, r#"{"error":"invalid_request"}"#),
    (401, r#"{"error":"invalid_client"}"#),
    (500, "<html>oops</html>"),
    (429, ""),
];

/// The form of the token request whose method, headers and body must arrive
/// intact.
pub const TOKEN_FORM: &str = "grant_type=client_credentials&scope=openid+profile";

/// The body limit of the oversized-body test.
pub const BODY_LIMIT: usize = 1024;

/// The paths (see [`oversized_body_mocks`]) whose bodies exceed
/// [`BODY_LIMIT`].
pub const OVERSIZED_PATHS: [&str; 2] = ["/declared", "/chunked"];

/// The path of the discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

pub fn get(url: &str) -> http::Request<Vec<u8>> {
    http::Request::get(url).body(Vec::new()).unwrap()
}

/// A mock that answers `GET path` with `status`, `body` and two headers.
pub fn status_mock(server: &mut Server, path: &str, status: usize, body: &str) -> Mock {
    server
        .mock("GET", path)
        .with_status(status)
        .with_header("content-type", "application/json")
        .with_header("retry-after", "7")
        .with_body(body)
}

/// Checks that `response` is what [`status_mock`] sent.
pub fn assert_passed_through(response: &http::Response<Vec<u8>>, status: usize, body: &str) {
    assert_eq!(response.status().as_u16(), status as u16);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(response.body(), body.as_bytes());
}

/// Mocks with a body one byte over [`BODY_LIMIT`] (declared), exactly at it
/// (`/exact`), and over it in chunks (no `Content-Length` warns the
/// transport in advance).
pub fn oversized_body_mocks(server: &mut Server) -> [Mock; 3] {
    let declared = server
        .mock("GET", "/declared")
        .with_body(vec![b'a'; BODY_LIMIT + 1]);
    let exact = server
        .mock("GET", "/exact")
        .with_body(vec![b'a'; BODY_LIMIT]);
    let chunked = server.mock("GET", "/chunked").with_chunked_body(|w| {
        for _ in 0..64 {
            w.write_all(&[b'a'; 100])?;
        }
        Ok(())
    });
    [declared, exact, chunked]
}

/// Checks the error for one of [`OVERSIZED_PATHS`].
pub fn assert_body_too_large(err: &TransportError, path: &str) {
    assert_eq!(
        err.kind(),
        TransportErrorKind::BodyTooLarge,
        "{path}: {err}"
    );
    assert!(err.to_string().contains("1024"), "{err}");
}

/// A mock that expects [`token_request`] exactly once.
pub fn token_mock(server: &mut Server) -> Mock {
    server
        .mock("POST", "/oauth/token")
        .match_query(Matcher::UrlEncoded("tenant".into(), "a b".into()))
        .match_header("content-type", "application/x-www-form-urlencoded")
        .match_header("authorization", "Basic Y2xpZW50OnNlY3JldA==")
        .match_header("accept", "application/json")
        .match_header(
            "user-agent",
            concat!("service-auth/", env!("CARGO_PKG_VERSION")),
        )
        .match_body(TOKEN_FORM)
        .with_body("{}")
        .expect(1)
}

/// A token request with a query, headers and a form body.
pub fn token_request(server_url: &str) -> http::Request<Vec<u8>> {
    http::Request::post(format!("{server_url}/oauth/token?tenant=a%20b"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", "Basic Y2xpZW50OnNlY3JldA==")
        .header("accept", "application/json")
        .body(TOKEN_FORM.as_bytes().to_vec())
        .unwrap()
}

/// A mock of the discovery document that fails to match a request with a
/// `Content-Length` header.
pub fn bodiless_get_mock(server: &mut Server) -> Mock {
    server
        .mock("GET", DISCOVERY_PATH)
        .match_request(|request| !request.has_header("content-length"))
        .with_body("{}")
        .expect(1)
}

/// A mock of `GET /token` that expects the `Host` header `localhost`.
pub fn localhost_mock(server: &mut Server) -> Mock {
    server
        .mock("GET", "/token")
        .match_header("host", "localhost")
        .with_body("{}")
        .expect(1)
}

/// A mock of a token response with a recognisable access token, and a
/// request with a recognisable secret, for the log test.
pub fn secret_exchange(server: &mut Server) -> (Mock, http::Request<Vec<u8>>) {
    let mock = server
        .mock("POST", "/token")
        .with_body(r#"{"access_token":"tok3n-value"}"#);
    let request = http::Request::post(format!("{}/token", server.url()))
        .body(b"client_secret=s3cr3t-value".to_vec())
        .unwrap();
    (mock, request)
}

/// Checks that the log lines of [`secret_exchange`] say what happened and
/// hold neither the secret nor the token.
pub fn assert_logs_without_secrets(text: &str) {
    assert!(text.contains("status=200"), "{text}");
    assert!(text.contains("body_len=30"), "{text}");
    assert!(text.contains("method=POST"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(!text.contains("tok3n"), "{text}");
}

/// Writes [`TEST_CA_PEM`] to a temporary file; the caller removes it.
pub fn test_ca_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("service-auth-ca-{}.pem", std::process::id()));
    std::fs::write(&path, TEST_CA_PEM).unwrap();
    path
}

/// A self-signed P-256 CA certificate (valid until 2126), for the builder's
/// PEM parsing; no TLS server in these tests presents it.
pub const TEST_CA_PEM: &str = "\
-----BEGIN CERTIFICATE-----
MIIBlTCCATugAwIBAgIUJI4Yaf0YVv1XyNf6rN//FTPl+KcwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUc2VydmljZS1hdXRoIHRlc3QgQ0EwIBcNMjYxMjAzMTY1OTM5
WhgPMjEyNjExMDkxNjU5MzlaMB8xHTAbBgNVBAMMFHNlcnZpY2UtYXV0aCB0ZXN0
IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETVbv6Xol5+ohCP12CHUjybPy
r+fT+Ih4z2WzLm81aPXCCGhwtJaT+NbiUIMrgIYk5Aohv/s7hKnP3EdHF3oODqNT
MFEwHQYDVR0OBBYEFOo84OG7VhyBtx8NvD0+yTXC4LChMB8GA1UdIwQYMBaAFOo8
4OG7VhyBtx8NvD0+yTXC4LChMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SAAwRQIhAOo6s40Qo5XFlb1GXNYyuTtsGPGruNIKRrtFJHYxtQf6AiBX3Hv/uuoM
qVB3mzmr9dWJIfN6r85vNsQhn7vVIPLj/Q==
-----END CERTIFICATE-----
";

/// A listener that completes the TCP handshake from its backlog but never
/// reads the request or writes a response, and a `/token` URL on it.
pub fn silent_server() -> (TcpListener, String) {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", silent.local_addr().unwrap());
    (silent, url)
}

/// A port on 127.0.0.1 with nothing listening (it was free a moment ago).
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
