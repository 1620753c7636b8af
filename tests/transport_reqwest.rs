//! The reqwest transport against mockito on 127.0.0.1.
#![cfg(feature = "reqwest")]

mod log_capture;
mod transport_support;

use std::time::Duration;

use mockito::Matcher;
use service_auth::error::{TransportError, TransportErrorKind};
use service_auth::transport::Transport;
use service_auth::transport::reqwest::ReqwestTransport;

use log_capture::CapturedLogs;
use transport_support::*;

/// A transport that may talk plain HTTP to the loopback mock.
fn loopback_transport() -> ReqwestTransport {
    ReqwestTransport::builder()
        .dangerous_allow_http_loopback()
        .build()
        .unwrap()
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

    for (status, body) in STATUS_CASES {
        let path = format!("/status/{status}");
        let mock = status_mock(&mut server, &path, status, body)
            .create_async()
            .await;

        let response = transport
            .send(get(&format!("{}{path}", server.url())))
            .await
            .unwrap();

        assert_passed_through(&response, status, body);
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
        .mock("GET", DISCOVERY_PATH)
        .with_status(302)
        .with_header("location", &format!("{}/target", server.url()))
        .create_async()
        .await;

    let response = loopback_transport()
        .send(get(&format!("{}{DISCOVERY_PATH}", server.url())))
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
        .max_body_bytes(BODY_LIMIT)
        .build()
        .unwrap();
    let mut mocks = Vec::new();
    for mock in oversized_body_mocks(&mut server) {
        mocks.push(mock.create_async().await);
    }

    for path in OVERSIZED_PATHS {
        let err = send_err(&transport, get(&format!("{}{path}", server.url()))).await;
        assert_body_too_large(&err, path);
    }
    let response = transport
        .send(get(&format!("{}/exact", server.url())))
        .await
        .unwrap();
    assert_eq!(response.body().len(), 1024);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (silent, url) = silent_server();
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
    let mock = token_mock(&mut server).create_async().await;

    let response = loopback_transport()
        .send(token_request(&server.url()))
        .await
        .unwrap();

    assert_eq!(response.status(), http::StatusCode::OK);
    mock.assert_async().await;
}

#[tokio::test]
async fn an_empty_get_carries_no_body() {
    let mut server = mockito::Server::new_async().await;
    let mock = bodiless_get_mock(&mut server).create_async().await;

    let response = loopback_transport()
        .send(get(&format!("{}{DISCOVERY_PATH}", server.url())))
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
    let mock = localhost_mock(&mut server).create_async().await;
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
    let (mock, request) = secret_exchange(&mut server);
    let _mock = mock.create_async().await;
    let logs = CapturedLogs::new();
    let _guard = tracing::subscriber::set_default(logs.subscriber());

    loopback_transport().send(request).await.unwrap();

    assert_logs_without_secrets(&logs.text());
}

#[test]
fn a_private_ca_is_accepted_from_pem_bytes_and_files() {
    let path = test_ca_file();

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
