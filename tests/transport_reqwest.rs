//! The reqwest transport against mockito on 127.0.0.1.
#![cfg(feature = "reqwest")]

mod log_capture;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use mockito::Matcher;
use service_auth::error::{TransportError, TransportErrorKind};
use service_auth::transport::Transport;
use service_auth::transport::reqwest::ReqwestTransport;

use log_capture::CapturedLogs;

/// A transport that may talk plain HTTP to the loopback mock.
fn loopback_transport() -> ReqwestTransport {
    ReqwestTransport::builder()
        .dangerous_allow_http_loopback()
        .build()
        .unwrap()
}

fn get(url: &str) -> http::Request<Vec<u8>> {
    http::Request::get(url).body(Vec::new()).unwrap()
}

async fn send_err(transport: &ReqwestTransport, request: http::Request<Vec<u8>>) -> TransportError {
    match transport.send(request).await {
        Ok(response) => panic!("expected an error, got status {}", response.status()),
        Err(err) => err,
    }
}

#[tokio::test]
async fn statuses_headers_and_bodies_pass_through() {
    let mut server = mockito::Server::new_async().await;
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
            .create_async()
            .await;

        let response = transport
            .send(get(&format!("{}{path}", server.url())))
            .await
            .unwrap();

        assert_eq!(response.status().as_u16(), status as u16);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(response.body(), body.as_bytes());
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let mut server = mockito::Server::new_async().await;
    let target = server
        .mock("POST", "/elsewhere")
        .expect(0)
        .create_async()
        .await;
    let redirect = server
        .mock("POST", "/token")
        .with_status(307)
        .with_header("location", &format!("{}/elsewhere", server.url()))
        .create_async()
        .await;
    let request = http::Request::post(format!("{}/token", server.url()))
        .body(b"client_secret=s3cr3t".to_vec())
        .unwrap();

    let response = loopback_transport().send(request).await.unwrap();

    assert_eq!(response.status(), http::StatusCode::TEMPORARY_REDIRECT);
    assert!(response.headers().contains_key("location"));
    redirect.assert_async().await;
    target.assert_async().await;
}

#[tokio::test]
async fn a_302_is_not_followed() {
    let mut server = mockito::Server::new_async().await;
    let target = server.mock("GET", "/target").expect(0).create_async().await;
    let _redirect = server
        .mock("GET", "/.well-known/openid-configuration")
        .with_status(302)
        .with_header("location", &format!("{}/target", server.url()))
        .create_async()
        .await;

    let response = loopback_transport()
        .send(get(&format!(
            "{}/.well-known/openid-configuration",
            server.url()
        )))
        .await
        .unwrap();

    assert_eq!(response.status(), http::StatusCode::FOUND);
    target.assert_async().await;
}

#[tokio::test]
async fn a_user_client_that_follows_redirects_is_caught() {
    let mut server = mockito::Server::new_async().await;
    let _target = server
        .mock("GET", "/target")
        .with_body("{}")
        .create_async()
        .await;
    let _redirect = server
        .mock("GET", "/start")
        .with_status(302)
        .with_header("location", &format!("{}/target", server.url()))
        .create_async()
        .await;
    // reqwest's default policy follows up to ten redirects.
    let transport =
        ReqwestTransport::from_client(reqwest::Client::new()).dangerous_allow_http_loopback();

    let err = send_err(&transport, get(&format!("{}/start", server.url()))).await;

    assert_eq!(err.kind(), TransportErrorKind::Redirect, "{err}");
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let mut server = mockito::Server::new_async().await;
    let transport = ReqwestTransport::builder()
        .dangerous_allow_http_loopback()
        .max_body_bytes(1024)
        .build()
        .unwrap();
    let _declared = server
        .mock("GET", "/declared")
        .with_body(vec![b'a'; 1025])
        .create_async()
        .await;
    let _exact = server
        .mock("GET", "/exact")
        .with_body(vec![b'a'; 1024])
        .create_async()
        .await;
    // Chunked, so no Content-Length warns the transport in advance.
    let _chunked = server
        .mock("GET", "/chunked")
        .with_chunked_body(|w| {
            for _ in 0..64 {
                w.write_all(&[b'a'; 100])?;
            }
            Ok(())
        })
        .create_async()
        .await;

    for path in ["/declared", "/chunked"] {
        let err = send_err(&transport, get(&format!("{}{path}", server.url()))).await;
        assert_eq!(
            err.kind(),
            TransportErrorKind::BodyTooLarge,
            "{path}: {err}"
        );
        assert!(err.to_string().contains("1024"), "{err}");
    }
    let response = transport
        .send(get(&format!("{}/exact", server.url())))
        .await
        .unwrap();
    assert_eq!(response.body().len(), 1024);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // The kernel completes the handshake from the listen backlog; nobody
    // ever reads the request or writes a response.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", silent.local_addr().unwrap());
    let transport = ReqwestTransport::builder()
        .dangerous_allow_http_loopback()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    let err = send_err(&transport, get(&url)).await;

    assert_eq!(err.kind(), TransportErrorKind::Timeout, "{err}");
    drop(silent);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let url = format!("http://{}/token", closed_port());

    let err = send_err(&loopback_transport(), get(&url)).await;

    assert_eq!(err.kind(), TransportErrorKind::Connect, "{err}");
}

#[tokio::test]
async fn method_headers_and_body_arrive_intact() {
    let mut server = mockito::Server::new_async().await;
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
        .create_async()
        .await;
    let request = http::Request::post(format!("{}/oauth/token?tenant=a%20b", server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", "Basic Y2xpZW50OnNlY3JldA==")
        .header("accept", "application/json")
        .body(form.as_bytes().to_vec())
        .unwrap();

    let response = loopback_transport().send(request).await.unwrap();

    assert_eq!(response.status(), http::StatusCode::OK);
    mock.assert_async().await;
}

#[tokio::test]
async fn an_empty_get_carries_no_body() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("GET", "/.well-known/openid-configuration")
        .match_request(|request| !request.has_header("content-length"))
        .with_body("{}")
        .expect(1)
        .create_async()
        .await;

    let response = loopback_transport()
        .send(get(&format!(
            "{}/.well-known/openid-configuration",
            server.url()
        )))
        .await
        .unwrap();

    assert_eq!(response.status(), http::StatusCode::OK);
    mock.assert_async().await;
}

#[tokio::test]
async fn plain_http_is_refused_without_the_loopback_opt_in() {
    let mut server = mockito::Server::new_async().await;
    let never = server
        .mock("GET", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let url = format!("{}/token", server.url());

    let strict = ReqwestTransport::new().unwrap();
    let err = send_err(&strict, get(&url)).await;
    assert_eq!(err.kind(), TransportErrorKind::Other);
    assert!(err.to_string().contains("https"), "{err}");

    let user_client = ReqwestTransport::from_client(reqwest::Client::new());
    let err = send_err(&user_client, get(&url)).await;
    assert_eq!(err.kind(), TransportErrorKind::Other);

    // The opt-in covers loopback hosts only.
    let loose = loopback_transport();
    let err = send_err(&loose, get("http://auth.example.com/token")).await;
    assert_eq!(err.kind(), TransportErrorKind::Other);

    never.assert_async().await;
}

#[tokio::test]
async fn resolve_overrides_the_connect_address_but_not_the_host() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("GET", "/token")
        .match_header("host", "localhost")
        .with_body("{}")
        .expect(1)
        .create_async()
        .await;
    // No port in the URL: the override's port is the only way to reach the mock.
    let transport = ReqwestTransport::builder()
        .dangerous_allow_http_loopback()
        .resolve("localhost", server.socket_address())
        .build()
        .unwrap();

    let response = transport.send(get("http://localhost/token")).await.unwrap();

    assert_eq!(response.status(), http::StatusCode::OK);
    mock.assert_async().await;
}

#[tokio::test]
async fn logs_carry_status_and_length_but_no_bodies() {
    let mut server = mockito::Server::new_async().await;
    let _mock = server
        .mock("POST", "/token")
        .with_body(r#"{"access_token":"tok3n-value"}"#)
        .create_async()
        .await;
    let logs = CapturedLogs::new();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let request = http::Request::post(format!("{}/token", server.url()))
        .body(b"client_secret=s3cr3t-value".to_vec())
        .unwrap();

    loopback_transport().send(request).await.unwrap();

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

    let from_bytes = ReqwestTransport::builder()
        .extra_root_certificate_pem(TEST_CA_PEM)
        .build();
    let from_file = ReqwestTransport::builder()
        .extra_root_certificate_file(&path)
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
