//! Scripted misbehaviour of the token endpoint.

use std::iter::RepeatN;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde_json::json;

use super::wire;

/// A scripted answer to one token request; see [`MockServer::push_fault`].
///
/// Faults that replace the answer ([`Status`](Self::Status),
/// [`RateLimited`](Self::RateLimited), [`Html`](Self::Html),
/// [`MalformedJson`](Self::MalformedJson), [`EmptyBody`](Self::EmptyBody),
/// [`OAuthError`](Self::OAuthError)) do so without looking at the request,
/// as a failing provider or proxy would, and issue no token. The others
/// bend a success: the request is checked as usual, a rejection goes out
/// unchanged (the fault is used up all the same), and an accepted request
/// issues a token, valid at the resource endpoint, whose response is altered.
///
/// [`MockServer::push_fault`]: super::MockServer::push_fault
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answers with this final status (200 to 599) and a short HTML error
    /// page, as a load balancer does (e.g. 500, 502, 503).
    Status(StatusCode),
    /// Answers 429 with `Retry-After` in whole seconds (rounded up) and an
    /// empty body.
    RateLimited {
        /// The wait the `Retry-After` header asks for.
        retry_after: Duration,
    },
    /// Answers 200 with an HTML login page, as an intercepting proxy does.
    Html,
    /// Answers 200, `application/json`, with a body that is not JSON.
    MalformedJson,
    /// Issues a token and cuts the JSON body in half.
    TruncatedJson,
    /// Answers 200, `application/json`, with an empty body.
    EmptyBody,
    /// Issues a token with `token_type: "MAC"`.
    WrongTokenType,
    /// Issues a token without `expires_in`.
    MissingExpiresIn,
    /// Issues a token with `expires_in: 0`.
    ZeroExpiresIn,
    /// Issues a token with `expires_in` as a string, e.g. `"3600"`.
    StringExpiresIn,
    /// Answers normally, after this delay.
    ///
    /// [`MockServer::handle`](super::MockServer::handle) cannot wait: it
    /// answers at once, and [`MockServer::respond`](super::MockServer::respond)
    /// reports the delay. The transports wait for it in real time, whatever
    /// clock the server is given; the loopback server holds the connection.
    Delay(Duration),
    /// Answers with this RFC 6749 §5.2 error code (e.g. `"server_error"`,
    /// `"temporarily_unavailable"`, `"invalid_client"`): status 401 for
    /// `invalid_client`, else 400.
    OAuthError(&'static str),
}

impl Fault {
    /// This fault `times` times over, for [`MockServer::push_faults`].
    ///
    /// [`MockServer::push_faults`]: super::MockServer::push_faults
    ///
    /// # Examples
    ///
    /// ```
    /// use http::StatusCode;
    /// use service_auth::mock::{Fault, MockServer};
    ///
    /// let server = MockServer::builder("https://mock.service-auth.test").build();
    /// server.push_faults(Fault::Status(StatusCode::SERVICE_UNAVAILABLE).repeat(3));
    /// assert_eq!(server.pending_faults(), 3);
    /// ```
    pub fn repeat(self, times: usize) -> RepeatN<Fault> {
        std::iter::repeat_n(self, times)
    }

    /// The response that replaces the answer, for the faults that do.
    pub(super) fn replacement(&self) -> Option<Response<Vec<u8>>> {
        let response = match self {
            Self::Status(status) => error_page(*status),
            Self::RateLimited { retry_after } => rate_limited(*retry_after),
            Self::Html => html(StatusCode::OK, LOGIN_PAGE),
            Self::MalformedJson => malformed_json(),
            Self::EmptyBody => {
                let mut response = wire::json_response(StatusCode::OK, &json!(null));
                response.body_mut().clear();
                response
            }
            Self::OAuthError(code) => oauth_error(code),
            Self::TruncatedJson
            | Self::WrongTokenType
            | Self::MissingExpiresIn
            | Self::ZeroExpiresIn
            | Self::StringExpiresIn
            | Self::Delay(_) => return None,
        };
        Some(response)
    }

    /// The OAuth error code the replacement carries, if any.
    pub(super) fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::OAuthError(code) => Some(code),
            _ => None,
        }
    }

    /// How long to hold the answer back.
    pub(super) fn delay(&self) -> Option<Duration> {
        match self {
            Self::Delay(delay) => Some(*delay),
            _ => None,
        }
    }
}

const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\
    <body><form method=\"post\" action=\"/login\"><input name=\"user\"></form></body></html>\n";

fn error_page(status: StatusCode) -> Response<Vec<u8>> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\
         <body><h1>{code} {reason}</h1></body></html>\n",
        code = status.as_u16(),
    );
    html(status, &page)
}

fn html(status: StatusCode, page: &str) -> Response<Vec<u8>> {
    let mut response = Response::new(page.as_bytes().to_vec());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn rate_limited(retry_after: Duration) -> Response<Vec<u8>> {
    let mut seconds = retry_after.as_secs();
    if retry_after.subsec_nanos() > 0 {
        seconds = seconds.saturating_add(1);
    }
    let mut response = Response::new(Vec::new());
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

fn malformed_json() -> Response<Vec<u8>> {
    // An unquoted key: a syntax error after a plausible start.
    let mut response = wire::json_response(StatusCode::OK, &json!(null));
    *response.body_mut() = b"{\"token_type\":\"Bearer\",expires_in:3600}".to_vec();
    response
}

fn oauth_error(code: &'static str) -> Response<Vec<u8>> {
    let status = super::status_for_code(code);
    let body = json!({
        "error": code,
        "error_description": "scripted fault of the mock server",
    });
    let mut response = wire::json_response(status, &body);
    wire::no_store(&mut response);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"mock\""),
        );
    }
    response
}
