//! The blocking transport (ureq) against mockito on 127.0.0.1.
#![cfg(feature = "blocking")]

mod log_capture;
mod transport_support;

use std::time::Duration;

use mockito::{Matcher, Mock};
use service_auth::error::{TransportError, TransportErrorKind};
use service_auth::transport::BlockingTransport;
use service_auth::transport::ureq::UreqTransport;

use log_capture::CapturedLogs;
use transport_support::*;

/// A transport that may talk plain HTTP to the loopback mock.
fn loopback_transport() -> UreqTransport {
    UreqTransport::builder()
        .dangerous_allow_http_loopback()
        .build()
        .unwrap()
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

    for (status, body) in STATUS_CASES {
        let path = format!("/status/{status}");
        let mock = status_mock(&mut server, &path, status, body).create();

        let response = transport
            .send(get(&format!("{}{path}", server.url())))
            .unwrap();

        assert_passed_through(&response, status, body);
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
        .mock("GET", DISCOVERY_PATH)
        .with_status(302)
        .with_header("location", &format!("{}/target", server.url()))
        .create();

    let response = loopback_transport()
        .send(get(&format!("{}{DISCOVERY_PATH}", server.url())))
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
        .max_body_bytes(BODY_LIMIT)
        .build()
        .unwrap();
    let _mocks = oversized_body_mocks(&mut server).map(Mock::create);

    for path in OVERSIZED_PATHS {
        let err = send_err(&transport, get(&format!("{}{path}", server.url())));
        assert_body_too_large(&err, path);
    }
    let response = transport
        .send(get(&format!("{}/exact", server.url())))
        .unwrap();
    assert_eq!(response.body().len(), 1024);
}

#[test]
fn a_server_that_never_answers_times_out() {
    let (silent, url) = silent_server();
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
    let mock = token_mock(&mut server).create();

    let response = loopback_transport()
        .send(token_request(&server.url()))
        .unwrap();

    assert_eq!(response.status(), http::StatusCode::OK);
    mock.assert();
}

#[test]
fn an_empty_get_carries_no_body() {
    let mut server = mockito::Server::new();
    let mock = bodiless_get_mock(&mut server).create();

    let response = loopback_transport()
        .send(get(&format!("{}{DISCOVERY_PATH}", server.url())))
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
    let mock = localhost_mock(&mut server).create();
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
    let (mock, request) = secret_exchange(&mut server);
    let _mock = mock.create();
    let logs = CapturedLogs::new();

    tracing::subscriber::with_default(logs.subscriber(), || {
        loopback_transport().send(request).unwrap();
    });

    assert_logs_without_secrets(&logs.text());
}

#[test]
fn a_private_ca_is_accepted_from_pem_bytes_and_files() {
    let path = test_ca_file();

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
