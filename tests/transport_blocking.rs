//! The blocking transport (ureq) against mockito on 127.0.0.1.
#![cfg(feature = "blocking")]

mod log_capture;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use mockito::Matcher;
use service_auth::error::{TransportError, TransportErrorKind};
use service_auth::transport::BlockingTransport;
use service_auth::transport::ureq::UreqTransport;

use log_capture::CapturedLogs;

/// A transport that may talk plain HTTP to the loopback mock.
fn loopback_transport() -> UreqTransport {
    UreqTransport::builder()
        .dangerous_allow_http_loopback()
        .build()
        .unwrap()
}

fn get(url: &str) -> http::Request<Vec<u8>> {
    http::Request::get(url).body(Vec::new()).unwrap()
}

fn send_err(transport: &UreqTransport, request: http::Request<Vec<u8>>) -> TransportError {
    match transport.send(request) {
        Ok(response) => panic!("expected an error, got status {}", response.status()),
        Err(err) => err,
    }
}

#[test]
fn statuses_headers_and_bodies_pass_through() {
    let mut server = mockito::Server::new();
    let transport = loopback_transport();

    for (status, body) in [
        (200, r#"{"access_token":"t","token_type":"Bearer"}"#),
        (400, r#"{"error":"invalid_request"}"#),
        (401, r#"{"error":"invalid_client"}"#),
        (500, "<html>oops</html>"),
        (429, ""),
    ] {
        let path = format!("/status/{status}");
        let mock = server
            .mock("GET", path.as_str())
            .with_status(status)
            .with_header("content-type", "application/json")
            .with_header("retry-after", "7")
            .with_body(body)
            .create();

        let response = transport
            .send(get(&format!("{}{path}", server.url())))
            .unwrap();

        assert_eq!(response.status().as_u16(), status as u16);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(response.body(), body.as_bytes());
        mock.assert();
    }
}

#[test]
fn redirects_are_returned_not_followed() {
    let mut server = mockito::Server::new();
    let target = server.mock("POST", "/elsewhere").expect(0).create();
    let redirect = server
        .mock("POST", "/token")
        .with_status(307)
        .with_header("location", &format!("{}/elsewhere", server.url()))
        .create();
    let request = http::Request::post(format!("{}/token", server.url()))
        .body(b"client_secret=s3cr3t".to_vec())
        .unwrap();

    let response = loopback_transport().send(request).unwrap();

    assert_eq!(response.status(), http::StatusCode::TEMPORARY_REDIRECT);
    assert!(response.headers().contains_key("location"));
    redirect.assert();
    target.assert();
}

#[test]
fn a_302_is_not_followed() {
    let mut server = mockito::Server::new();
    let target = server.mock("GET", "/target").expect(0).create();
    let _redirect = server
        .mock("GET", "/.well-known/openid-configuration")
        .with_status(302)
        .with_header("location", &format!("{}/target", server.url()))
        .create();

    let response = loopback_transport()
        .send(get(&format!(
            "{}/.well-known/openid-configuration",
            server.url()
        )))
        .unwrap();

    assert_eq!(response.status(), http::StatusCode::FOUND);
    target.assert();
}

#[test]
fn a_default_user_agent_still_returns_statuses_and_refuses_redirects() {
    let mut server = mockito::Server::new();
    let target = server.mock("GET", "/target").expect(0).create();
    let _redirect = server
        .mock("GET", "/start")
        .with_status(302)
        .with_header("location", &format!("{}/target", server.url()))
        .create();
    let _denied = server
        .mock("POST", "/token")
        .with_status(401)
        .with_body(r#"{"error":"invalid_client"}"#)
        .create();
    // ureq's defaults follow redirects and turn 4xx/5xx into errors.
    let transport =
        UreqTransport::from_agent(ureq::Agent::new_with_defaults()).dangerous_allow_http_loopback();

    let redirect = transport
        .send(get(&format!("{}/start", server.url())))
        .unwrap();
    let request = http::Request::post(format!("{}/token", server.url()))
        .body(b"grant_type=client_credentials".to_vec())
        .unwrap();
    let denied = transport.send(request).unwrap();

    assert_eq!(redirect.status(), http::StatusCode::FOUND);
    assert_eq!(denied.status(), http::StatusCode::UNAUTHORIZED);
    assert_eq!(denied.body(), br#"{"error":"invalid_client"}"#);
    target.assert();
}

#[test]
fn an_oversized_body_is_refused() {
    let mut server = mockito::Server::new();
    let transport = UreqTransport::builder()
        .dangerous_allow_http_loopback()
        .max_body_bytes(1024)
        .build()
        .unwrap();
    let _declared = server
        .mock("GET", "/declared")
        .with_body(vec![b'a'; 1025])
        .create();
    let _exact = server
        .mock("GET", "/exact")
        .with_body(vec![b'a'; 1024])
        .create();
    // Chunked, so no Content-Length warns the transport in advance.
    let _chunked = server
        .mock("GET", "/chunked")
        .with_chunked_body(|w| {
            for _ in 0..64 {
                w.write_all(&[b'a'; 100])?;
            }
            Ok(())
        })
        .create();

    for path in ["/declared", "/chunked"] {
        let err = send_err(&transport, get(&format!("{}{path}", server.url())));
        assert_eq!(
            err.kind(),
            TransportErrorKind::BodyTooLarge,
            "{path}: {err}"
        );
        assert!(err.to_string().contains("1024"), "{err}");
    }
    let response = transport
        .send(get(&format!("{}/exact", server.url())))
        .unwrap();
    assert_eq!(response.body().len(), 1024);
}

#[test]
fn a_server_that_never_answers_times_out() {
    // The kernel completes the handshake from the listen backlog; nobody
    // ever reads the request or writes a response.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", silent.local_addr().unwrap());
    let transport = UreqTransport::builder()
        .dangerous_allow_http_loopback()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    let err = send_err(&transport, get(&url));

    assert_eq!(err.kind(), TransportErrorKind::Timeout, "{err}");
    drop(silent);
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    let url = format!("http://{}/token", closed_port());

    let err = send_err(&loopback_transport(), get(&url));

    assert_eq!(err.kind(), TransportErrorKind::Connect, "{err}");
}

#[test]
fn method_headers_and_body_arrive_intact() {
    let mut server = mockito::Server::new();
    let form = "grant_type=client_credentials&scope=openid+profile";
    let mock = server
        .mock("POST", "/oauth/token")
        .match_query(Matcher::UrlEncoded("tenant".into(), "a b".into()))
        .match_header("content-type", "application/x-www-form-urlencoded")
        .match_header("authorization", "Basic Y2xpZW50OnNlY3JldA==")
        .match_header("accept", "application/json")
        .match_header(
            "user-agent",
            concat!("service-auth/", env!("CARGO_PKG_VERSION")),
        )
        .match_body(form)
        .with_body("{}")
        .expect(1)
        .create();
    let request = http::Request::post(format!("{}/oauth/token?tenant=a%20b", server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", "Basic Y2xpZW50OnNlY3JldA==")
        .header("accept", "application/json")
        .body(form.as_bytes().to_vec())
        .unwrap();

    let response = loopback_transport().send(request).unwrap();

    assert_eq!(response.status(), http::StatusCode::OK);
    mock.assert();
}

#[test]
fn an_empty_get_carries_no_body() {
    let mut server = mockito::Server::new();
    let mock = server
        .mock("GET", "/.well-known/openid-configuration")
        .match_request(|request| !request.has_header("content-length"))
        .with_body("{}")
        .expect(1)
        .create();

    let response = loopback_transport()
        .send(get(&format!(
            "{}/.well-known/openid-configuration",
            server.url()
        )))
        .unwrap();

    assert_eq!(response.status(), http::StatusCode::OK);
    mock.assert();
}

#[test]
fn plain_http_is_refused_without_the_loopback_opt_in() {
    let mut server = mockito::Server::new();
    let never = server.mock("GET", Matcher::Any).expect(0).create();
    let url = format!("{}/token", server.url());

    let strict = UreqTransport::new().unwrap();
    let err = send_err(&strict, get(&url));
    assert_eq!(err.kind(), TransportErrorKind::Other);
    assert!(err.to_string().contains("https"), "{err}");

    let user_agent = UreqTransport::from_agent(ureq::Agent::new_with_defaults());
    let err = send_err(&user_agent, get(&url));
    assert_eq!(err.kind(), TransportErrorKind::Other);

    // The opt-in covers loopback hosts only.
    let err = send_err(&loopback_transport(), get("http://auth.example.com/token"));
    assert_eq!(err.kind(), TransportErrorKind::Other);

    never.assert();
}

#[test]
fn resolve_overrides_the_connect_address_but_not_the_host() {
    let mut server = mockito::Server::new();
    let mock = server
        .mock("GET", "/token")
        .match_header("host", "localhost")
        .with_body("{}")
        .expect(1)
        .create();
    // No port in the URL: the override's port is the only way to reach the mock.
    let transport = UreqTransport::builder()
        .dangerous_allow_http_loopback()
        .resolve("localhost", server.socket_address())
        .build()
        .unwrap();

    let response = transport.send(get("http://localhost/token")).unwrap();

    assert_eq!(response.status(), http::StatusCode::OK);
    mock.assert();
}

#[test]
fn logs_carry_status_and_length_but_no_bodies() {
    let mut server = mockito::Server::new();
    let _mock = server
        .mock("POST", "/token")
        .with_body(r#"{"access_token":"tok3n-value"}"#)
        .create();
    let logs = CapturedLogs::new();
    let request = http::Request::post(format!("{}/token", server.url()))
        .body(b"client_secret=s3cr3t-value".to_vec())
        .unwrap();

    tracing::subscriber::with_default(logs.subscriber(), || {
        loopback_transport().send(request).unwrap();
    });

    let text = logs.text();
    assert!(text.contains("status=200"), "{text}");
    assert!(text.contains("body_len=30"), "{text}");
    assert!(text.contains("method=POST"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(!text.contains("tok3n"), "{text}");
}

#[test]
fn a_private_ca_is_accepted_from_pem_bytes_and_files() {
    let path = std::env::temp_dir().join(format!("service-auth-ca-{}.pem", std::process::id()));
    std::fs::write(&path, TEST_CA_PEM).unwrap();

    let from_bytes = UreqTransport::builder()
        .root_certificate_pem(TEST_CA_PEM)
        .build();
    let from_file = UreqTransport::builder()
        .root_certificate_file(&path)
        .build();
    std::fs::remove_file(&path).unwrap();

    assert!(from_bytes.is_ok(), "{:?}", from_bytes.err());
    assert!(from_file.is_ok(), "{:?}", from_file.err());
}

/// A self-signed P-256 CA certificate (valid until 2126), for the builder's
/// PEM parsing; no TLS server in these tests presents it.
const TEST_CA_PEM: &str = "\
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

/// A port on 127.0.0.1 with nothing listening (it was free a moment ago).
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
