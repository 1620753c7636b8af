//! Parsing of what the token endpoint answers: an access token (RFC 6749
//! §5.1), an error (RFC 6749 §5.2), or anything else a provider, a proxy or a
//! load balancer may send instead.
//!
//! Every entry point is a pure function of the response and a [`Now`]: no
//! clock, no IO, no panic on any input. The bodies are untrusted, so the
//! errors built here never carry them: a JSON syntax error keeps serde_json's
//! category, line and column (its messages can quote values), a provider's
//! `error_description` is stripped of control characters and cut to
//! [`MAX_DESCRIPTION_CHARS`], and nothing of a success body but the field
//! names reaches an error.
//!
//! # What the parser decides
//!
//! - 2xx with `access_token`: a [`Token`], see below.
//! - 2xx with an `error` and no `access_token` (some providers answer errors
//!   with 200): [`ProviderError`].
//! - 2xx whose body is broken (empty, HTML, not JSON, a field of the wrong
//!   type): [`UnexpectedResponse`], transient, as a provider glitch.
//! - 2xx with a `token_type` other than bearer: [`UnexpectedResponse`] with
//!   [`ResponseProblem::TokenType`], permanent: the provider issues a kind of
//!   token this library cannot use, and will again.
//! - 400 or 401 with a JSON `error`: [`ProviderError`] with the code, the
//!   sanitised description, the URI and the `Retry-After`.
//! - 400 or 401 with any other body: [`UnexpectedResponse`] naming what
//!   arrived, permanent.
//! - 5xx, 429, 408: [`UnexpectedResponse`] with [`ResponseProblem::Status`],
//!   transient with the `Retry-After`, even when the body is an OAuth error.
//! - Any other status (3xx, 403, 404, …): [`UnexpectedResponse`] with
//!   [`ResponseProblem::Status`], permanent.
//!
//! For a token, `expires_in` may be an integer, a numeric string (Azure AD's
//! v1 endpoint sends one) or a number with a fraction (floored). When it is
//! absent or `null` the token is assumed to live [`UNKNOWN_LIFETIME`] and
//! [`Token::lifetime_known`] is `false`. Zero or negative means the token is
//! expired on arrival ([`ResponseProblem::ExpiredOnArrival`], transient). More
//! than [`MAX_LIFETIME`] is cut to it, with a warning. `token_type` is
//! compared case-insensitively with `bearer` (RFC 6749 §5.1 says the value is
//! case-insensitive); when it is absent the token is taken as a bearer token,
//! with a warning. `access_token` must be non-empty visible ASCII, the
//! characters an `Authorization` header can carry. `scope` is optional.
//! Unknown fields (`refresh_token`, `id_token`, …) are ignored.

// `TokenError` is as large as its biggest variant (see `crate::error`); it is
// returned once per token exchange, never in a loop, so boxing buys nothing.
#![allow(clippy::result_large_err)]

use std::time::{Duration, SystemTime};

use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value};
use tracing::{debug, warn};
use zeroize::Zeroize;

use crate::error::{
    ErrorCode, ProviderError, ResponseProblem, RetryAdvice, TokenError, UnexpectedResponse,
};
use crate::secret::AccessToken;
use crate::time::Now;
use crate::token::Token;
use crate::transport::MAX_RESPONSE_BYTES;

/// The lifetime assumed for a token whose response has no `expires_in`.
///
/// RFC 6749 §5.1 only recommends `expires_in`. Five minutes is short enough
/// that a token the provider meant to live briefly is not served long after
/// it died, and long enough that the token endpoint is not asked on every
/// call. [`Token::lifetime_known`] is `false` for such a token.
pub const UNKNOWN_LIFETIME: Duration = Duration::from_secs(300);

/// The longest lifetime the parser accepts; a larger `expires_in` is cut to
/// this, with a warning.
///
/// A token that claims to live for years is far more likely a provider bug
/// (milliseconds sent as seconds) than a wish; refreshing once a day costs
/// nothing.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest `error_description` an error keeps, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;

/// The endpoint name used in [`UnexpectedResponse::endpoint`].
const TOKEN_ENDPOINT: &str = "token endpoint";

/// The longest `error_uri` kept, in characters.
const MAX_URI_CHARS: usize = 512;

/// The longest `error` code kept, in characters.
const MAX_CODE_CHARS: usize = 64;

/// The longest `token_type` or `Content-Type` kept, in characters.
const MAX_LABEL_CHARS: usize = 64;

/// Turns a token endpoint response into a [`Token`] (RFC 6749 §5.1).
///
/// `now` is when the response arrived: the token's expiry is counted from
/// `now.instant()`, and an HTTP-date `Retry-After` from `now.wall()`. The
/// module documentation lists every case.
///
/// # Errors
///
/// [`TokenError::Provider`] for an RFC 6749 §5.2 error response,
/// [`TokenError::Response`] for anything else that is not a usable token.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use service_auth::{response::parse_token_response, time::Now};
///
/// let now = Now::new(Instant::now(), SystemTime::now());
/// let response = http::Response::builder()
///     .status(200)
///     .header("content-type", "application/json")
///     .body(r#"{"access_token":"abc","token_type":"Bearer","expires_in":"3600"}"#)?;
/// let token = parse_token_response(&response, now)?;
/// assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
/// assert_eq!(token.access_token().secret(), "abc");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_token_response<B: AsRef<[u8]>>(
    response: &http::Response<B>,
    now: Now,
) -> Result<Token, TokenError> {
    if !response.status().is_success() {
        return Err(parse_error_response(response, now));
    }
    let after = retry_after(response, now.wall());
    let transient = RetryAdvice::Transient { after };
    let mut fields = json_object(response)
        .map_err(|problem| unexpected(response, TOKEN_ENDPOINT, problem, transient))?;

    // Some providers answer an error with 200 (RFC 6749 §5.2 asks for 400).
    if !fields.contains_key("access_token")
        && let Some(err) = provider_error(&fields, response.status(), after)
    {
        let status = response.status().as_u16();
        warn!(status, code = %err.code, "provider sent an error with a success status");
        return Err(err.into());
    }

    token_from_fields(&mut fields, now).map_err(|problem| {
        let retry = match problem {
            ResponseProblem::TokenType(_) => RetryAdvice::Permanent,
            _ => transient,
        };
        unexpected(response, TOKEN_ENDPOINT, problem, retry)
    })
}

/// Interprets a token endpoint response that carries no token.
///
/// [`parse_token_response`] calls it for every status outside 2xx; it is
/// public so that it can be fuzzed on its own. Given a 2xx response it
/// returns the provider's error when the body holds one, and otherwise an
/// [`UnexpectedResponse`] that says what the body lacks.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use service_auth::{error::{ErrorCode, TokenError}, response::parse_error_response, time::Now};
///
/// let now = Now::new(Instant::now(), SystemTime::now());
/// let response = http::Response::builder()
///     .status(401)
///     .body(r#"{"error":"invalid_client","error_description":"unknown client"}"#)?;
/// let TokenError::Provider(err) = parse_error_response(&response, now) else {
///     panic!("expected a provider error");
/// };
/// assert_eq!(err.code, ErrorCode::InvalidClient);
/// assert_eq!(err.description.as_deref(), Some("unknown client"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_error_response<B: AsRef<[u8]>>(response: &http::Response<B>, now: Now) -> TokenError {
    let status = response.status();
    let after = retry_after(response, now.wall());
    let body = json_object(response);

    if status.is_success()
        || status == StatusCode::BAD_REQUEST
        || status == StatusCode::UNAUTHORIZED
    {
        // A success status that carries no token is a provider glitch.
        let retry = if status.is_success() {
            RetryAdvice::Transient { after }
        } else {
            RetryAdvice::Permanent
        };
        let fields = match body {
            Ok(fields) => fields,
            Err(problem) => return unexpected(response, TOKEN_ENDPOINT, problem, retry),
        };
        return match provider_error(&fields, status, after) {
            Some(err) => err.into(),
            None => unexpected(response, TOKEN_ENDPOINT, missing_field(status), retry),
        };
    }

    // A 5xx or 429 keeps its `Retry-After` and stays transient whatever code
    // the body names: the status says the server, not the request, failed.
    if let Ok(fields) = body
        && let Some(Value::String(code)) = fields.get("error")
    {
        let code = sanitise(code, MAX_CODE_CHARS);
        let status = status.as_u16();
        warn!(status, code = %code, "provider sent an OAuth error with an unexpected status");
    }
    let retry = status_retry(status, after);
    unexpected(response, TOKEN_ENDPOINT, ResponseProblem::Status, retry)
}

/// Parses a `Retry-After` header value (RFC 9110 §10.2.3): delta-seconds, or
/// an HTTP date counted from `now`.
///
/// A date in the past gives zero. A value that is neither form, or a number
/// too large for a `u64`, gives `None`.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use service_auth::response::parse_retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
/// let seconds = http::HeaderValue::from_static("120");
/// assert_eq!(parse_retry_after(&seconds, now), Some(Duration::from_secs(120)));
/// let date = http::HeaderValue::from_static("Sun, 06 Nov 1994 08:50:37 GMT");
/// assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(60)));
/// ```
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().ok().map(Duration::from_secs);
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The response's `Date` header (RFC 9110 §6.6.1), for estimating how far the
/// provider's clock is from ours.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use service_auth::response::server_date;
///
/// let response = http::Response::builder()
///     .header("date", "Sun, 06 Nov 1994 08:49:37 GMT")
///     .body(())?;
/// assert_eq!(server_date(&response), Some(UNIX_EPOCH + Duration::from_secs(784_111_777)));
/// # Ok::<(), http::Error>(())
/// ```
pub fn server_date<B>(response: &http::Response<B>) -> Option<SystemTime> {
    let value = response.headers().get(header::DATE)?.to_str().ok()?;
    httpdate::parse_http_date(value.trim()).ok()
}

/// Strips control characters from `text` and cuts it to `max_chars`
/// characters, for provider text that ends up in an error or a log.
pub(crate) fn sanitise(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// The body as a JSON object, or what is wrong with it.
///
/// The checks run cheapest first, and none keeps any of the body.
pub(crate) fn json_object<B: AsRef<[u8]>>(
    response: &http::Response<B>,
) -> Result<Map<String, Value>, ResponseProblem> {
    let body = response.body().as_ref();
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(ResponseProblem::TooLarge {
            limit: MAX_RESPONSE_BYTES,
        });
    }
    // A UTF-8 byte order mark is not JSON, but some servers send one.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body.trim_ascii_start();
    if start.is_empty() {
        return Err(ResponseProblem::EmptyBody);
    }
    if start.starts_with(b"<") || is_html(response) {
        return Err(ResponseProblem::Html);
    }
    serde_json::from_slice(body).map_err(|err| ResponseProblem::NotJson {
        kind: match err.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        },
        line: err.line(),
        column: err.column(),
    })
}

/// An [`UnexpectedResponse`] error from `endpoint` about `response`.
pub(crate) fn unexpected<B: AsRef<[u8]>>(
    response: &http::Response<B>,
    endpoint: &'static str,
    problem: ResponseProblem,
    retry: RetryAdvice,
) -> TokenError {
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| sanitise(&String::from_utf8_lossy(value.as_bytes()), MAX_LABEL_CHARS));
    UnexpectedResponse {
        endpoint,
        status: response.status(),
        content_type,
        body_len: response.body().as_ref().len(),
        problem,
        retry,
    }
    .into()
}

/// What retrying can do about a response with `status` that is not a token.
///
/// 5xx, 429 (RFC 6585 §4) and 408 (RFC 9110 §15.5.9) are the statuses that
/// say "later"; every other one says the request or the endpoint is wrong.
pub(crate) fn status_retry(status: StatusCode, after: Option<Duration>) -> RetryAdvice {
    let later = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    if later {
        RetryAdvice::Transient { after }
    } else {
        RetryAdvice::Permanent
    }
}

/// The response's `Retry-After`, counted from `now` when it is a date.
pub(crate) fn retry_after<B>(response: &http::Response<B>, now: SystemTime) -> Option<Duration> {
    parse_retry_after(response.headers().get(header::RETRY_AFTER)?, now)
}

/// The response's `Retry-After` for a caller without a clock reading: a date
/// is counted from the response's own `Date` header (which also sidesteps
/// clock skew), and ignored when there is none.
pub(crate) fn retry_after_by_server_clock<B>(response: &http::Response<B>) -> Option<Duration> {
    let value = response.headers().get(header::RETRY_AFTER)?;
    let reference = server_date(response).or_else(|| {
        let text = value.to_str().ok()?.trim();
        // Delta-seconds need no reference; any value serves.
        text.bytes()
            .all(|b| b.is_ascii_digit())
            .then_some(SystemTime::UNIX_EPOCH)
    })?;
    parse_retry_after(value, reference)
}

fn is_html<B>(response: &http::Response<B>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("text/html")
                || essence.eq_ignore_ascii_case("application/xhtml+xml")
        })
}

/// The problem to report for a body that is JSON but holds no `error`: on a
/// success status the token is what is missing.
fn missing_field(status: StatusCode) -> ResponseProblem {
    let field = if status.is_success() {
        "access_token"
    } else {
        "error"
    };
    ResponseProblem::Field { field }
}

/// The RFC 6749 §5.2 error in `fields`, if `error` is a string.
///
/// The optional fields are kept when they are strings and dropped otherwise:
/// the code is what the caller needs, and a malformed description must not
/// hide it.
fn provider_error(
    fields: &Map<String, Value>,
    status: StatusCode,
    retry_after: Option<Duration>,
) -> Option<ProviderError> {
    let Some(Value::String(code)) = fields.get("error") else {
        return None;
    };
    let text = |name: &str, max: usize| match fields.get(name) {
        Some(Value::String(text)) => Some(sanitise(text, max)).filter(|text| !text.is_empty()),
        _ => None,
    };
    let err = ProviderError {
        status,
        code: ErrorCode::parse(&sanitise(code, MAX_CODE_CHARS)),
        description: text("error_description", MAX_DESCRIPTION_CHARS),
        uri: text("error_uri", MAX_URI_CHARS),
        retry_after,
    };
    debug!(status = status.as_u16(), code = %err.code, "token endpoint returned an error");
    Some(err)
}

/// Builds the token from a parsed success body.
///
/// `access_token` is taken out last, so that a response refused for another
/// field never moves the token into a second string.
fn token_from_fields(fields: &mut Map<String, Value>, now: Now) -> Result<Token, ResponseProblem> {
    check_token_type(fields.get("token_type"))?;
    let expires_in = expires_in(fields.get("expires_in"))?;
    let scope = match fields.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(scope)) => Some(scope.clone()),
        Some(_) => return Err(ResponseProblem::Field { field: "scope" }),
    };
    let (lifetime, lifetime_known) = lifetime(expires_in)?;
    let access_token = access_token(fields.remove("access_token"))?;

    let received_at = now.instant();
    // An `Instant` this far ahead cannot overflow on any real platform; if it
    // did, a token that expires at once is the safe reading.
    let expires_at = received_at.checked_add(lifetime).unwrap_or(received_at);
    debug!(
        expires_in_secs = lifetime.as_secs(),
        lifetime_known,
        scope = scope.as_deref().unwrap_or(""),
        "access token received"
    );
    Ok(Token::new(
        access_token,
        received_at,
        Some(expires_at),
        lifetime_known,
        scope,
    ))
}

fn check_token_type(value: Option<&Value>) -> Result<(), ResponseProblem> {
    match value {
        None | Some(Value::Null) => {
            warn!("token response has no `token_type`; taking the token as a bearer token");
            Ok(())
        }
        Some(Value::String(kind)) if kind.trim().eq_ignore_ascii_case("bearer") => Ok(()),
        Some(Value::String(kind)) => {
            Err(ResponseProblem::TokenType(sanitise(kind, MAX_LABEL_CHARS)))
        }
        Some(_) => Err(ResponseProblem::Field {
            field: "token_type",
        }),
    }
}

/// `expires_in` in whole seconds, `None` when absent.
///
/// Integers are taken as they are (a `u64` beyond `i64` saturates), numbers
/// with a fraction and numeric strings are floored, and anything else is a
/// field error.
fn expires_in(value: Option<&Value>) -> Result<Option<i64>, ResponseProblem> {
    let invalid = ResponseProblem::Field {
        field: "expires_in",
    };
    let seconds = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => number
            .as_i64()
            .or_else(|| number.as_u64().map(|_| i64::MAX))
            .or_else(|| number.as_f64().map(floor_seconds)),
        Some(Value::String(text)) => numeric_string(text.trim()),
        Some(_) => None,
    };
    seconds.map(Some).ok_or(invalid)
}

fn numeric_string(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    // `f64::from_str` also reads "inf" and "NaN", which are not lifetimes.
    let looks_numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    let number = text.parse::<f64>().ok()?;
    (looks_numeric && number.is_finite()).then(|| floor_seconds(number))
}

fn floor_seconds(seconds: f64) -> i64 {
    // `as` saturates at the bounds of i64, which the caller clamps anyway.
    seconds.floor() as i64
}

/// The token's lifetime and whether the provider stated it.
fn lifetime(expires_in: Option<i64>) -> Result<(Duration, bool), ResponseProblem> {
    let Some(seconds) = expires_in else {
        return Ok((UNKNOWN_LIFETIME, false));
    };
    if seconds <= 0 {
        return Err(ResponseProblem::ExpiredOnArrival(seconds));
    }
    let stated = Duration::from_secs(seconds.unsigned_abs());
    if stated > MAX_LIFETIME {
        warn!(
            expires_in_secs = seconds,
            max_secs = MAX_LIFETIME.as_secs(),
            "token response `expires_in` is implausibly long; using the maximum"
        );
        return Ok((MAX_LIFETIME, true));
    }
    Ok((stated, true))
}

/// The access token, if it can travel in an `Authorization: Bearer` header.
///
/// RFC 6750 §2.1 allows a narrower set; visible ASCII is what `http` accepts
/// in a header and what real providers send (JWTs, opaque base64).
fn access_token(value: Option<Value>) -> Result<AccessToken, ResponseProblem> {
    let invalid = ResponseProblem::Field {
        field: "access_token",
    };
    let Some(Value::String(mut token)) = value else {
        return Err(invalid);
    };
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        token.zeroize();
        return Err(invalid);
    }
    Ok(AccessToken::new(token))
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, UNIX_EPOCH};

    use super::*;

    const SECRET: &str = "planted-s3cr3t-value";

    fn now() -> Now {
        Now::new(
            Instant::now(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    }

    fn response(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn token_body(extra: &str) -> String {
        format!(r#"{{"access_token":"{SECRET}","token_type":"Bearer"{extra}}}"#)
    }

    fn parse(status: u16, body: &str) -> Result<Token, TokenError> {
        parse_token_response(&response(status, body), now())
    }

    /// The `UnexpectedResponse` in `result`, after checking that nothing of
    /// the planted secret leaks through `Display` or `Debug`.
    fn unexpected_of(result: Result<Token, TokenError>) -> UnexpectedResponse {
        let err = result.expect_err("expected an error");
        assert_no_secret(&err);
        match err {
            TokenError::Response(err) => err,
            other => panic!("expected an unexpected response, got {other:?}"),
        }
    }

    fn provider_of(result: Result<Token, TokenError>) -> ProviderError {
        let err = result.expect_err("expected an error");
        assert_no_secret(&err);
        match err {
            TokenError::Provider(err) => err,
            other => panic!("expected a provider error, got {other:?}"),
        }
    }

    fn assert_no_secret(err: &TokenError) {
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(SECRET), "secret leaked: {shown}");
        assert!(
            !shown.contains("s3cr3t"),
            "part of the secret leaked: {shown}"
        );
    }

    fn lifetime_of(extra: &str) -> Result<(Duration, bool), TokenError> {
        let token = parse(200, &token_body(extra))?;
        Ok((token.lifetime().unwrap(), token.lifetime_known()))
    }

    #[test]
    fn a_complete_token_response_becomes_a_token() {
        let body = token_body(
            r#","expires_in":3600,"scope":"openid profile","refresh_token":"r","id_token":"i""#,
        );
        let now = now();
        let token = parse_token_response(&response(200, &body), now).unwrap();
        assert_eq!(token.access_token().secret(), SECRET);
        assert_eq!(token.received_at(), now.instant());
        assert_eq!(
            token.expires_at(),
            Some(now.instant() + Duration::from_secs(3600))
        );
        assert!(token.lifetime_known());
        assert_eq!(token.scope(), Some("openid profile"));
        assert!(!format!("{token:?}").contains(SECRET));
    }

    #[test]
    fn expires_in_forms() {
        let secs = Duration::from_secs;
        for (extra, want) in [
            (r#","expires_in":3600"#, secs(3600)),
            (r#","expires_in":"3600""#, secs(3600)),
            (r#","expires_in":" 60 ""#, secs(60)),
            (r#","expires_in":3599.9"#, secs(3599)),
            (r#","expires_in":"120.7""#, secs(120)),
            (r#","expires_in":1e3"#, secs(1000)),
            (r#","expires_in":1"#, secs(1)),
        ] {
            assert_eq!(lifetime_of(extra).unwrap(), (want, true), "{extra}");
        }
    }

    #[test]
    fn absent_expires_in_assumes_the_documented_lifetime() {
        assert_eq!(lifetime_of("").unwrap(), (UNKNOWN_LIFETIME, false));
        assert_eq!(
            lifetime_of(r#","expires_in":null"#).unwrap(),
            (UNKNOWN_LIFETIME, false)
        );
    }

    #[test]
    fn huge_expires_in_is_clamped() {
        for extra in [
            r#","expires_in":86401"#,
            r#","expires_in":31536000000"#,
            r#","expires_in":18446744073709551615"#,
            r#","expires_in":"99999999999999999999999""#,
            r#","expires_in":1e300"#,
        ] {
            assert_eq!(lifetime_of(extra).unwrap(), (MAX_LIFETIME, true), "{extra}");
        }
        assert_eq!(
            lifetime_of(r#","expires_in":86400"#).unwrap(),
            (MAX_LIFETIME, true)
        );
    }

    #[test]
    fn zero_or_negative_expires_in_is_expired_on_arrival_and_transient() {
        for (extra, seconds) in [
            (r#","expires_in":0"#, 0),
            (r#","expires_in":-5"#, -5),
            (r#","expires_in":"0""#, 0),
            (r#","expires_in":0.5"#, 0),
            (r#","expires_in":-0.5"#, -1),
        ] {
            let err = unexpected_of(lifetime_of(extra).map(|_| unreachable_token()));
            assert_eq!(
                err.problem,
                ResponseProblem::ExpiredOnArrival(seconds),
                "{extra}"
            );
            assert!(err.retry.is_transient());
        }
    }

    fn unreachable_token() -> Token {
        panic!("expected an error")
    }

    #[test]
    fn malformed_expires_in_is_a_field_error() {
        for extra in [
            r#","expires_in":"soon""#,
            r#","expires_in":"inf""#,
            r#","expires_in":"NaN""#,
            r#","expires_in":"""#,
            r#","expires_in":true"#,
            r#","expires_in":[3600]"#,
        ] {
            let err = unexpected_of(parse(200, &token_body(extra)));
            assert_eq!(
                err.problem,
                ResponseProblem::Field {
                    field: "expires_in"
                },
                "{extra}"
            );
            assert!(err.retry.is_transient());
        }
    }

    #[test]
    fn token_type_is_case_insensitive_and_may_be_absent() {
        for kind in ["bearer", "BEARER", "Bearer", "bEaReR"] {
            let body = format!(r#"{{"access_token":"t","token_type":"{kind}"}}"#);
            assert!(parse(200, &body).is_ok(), "{kind}");
        }
        assert!(parse(200, r#"{"access_token":"t"}"#).is_ok());
        assert!(parse(200, r#"{"access_token":"t","token_type":null}"#).is_ok());
    }

    #[test]
    fn other_token_types_are_refused_permanently() {
        let body = format!(r#"{{"access_token":"{SECRET}","token_type":"mac"}}"#);
        let err = unexpected_of(parse(200, &body));
        assert_eq!(err.problem, ResponseProblem::TokenType("mac".into()));
        assert_eq!(err.retry, RetryAdvice::Permanent);
        assert!(err.to_string().contains("`mac`"), "{err}");

        let body = format!(r#"{{"access_token":"{SECRET}","token_type":42}}"#);
        let err = unexpected_of(parse(200, &body));
        assert_eq!(
            err.problem,
            ResponseProblem::Field {
                field: "token_type"
            }
        );
    }

    #[test]
    fn access_token_must_fit_a_header() {
        for token in [
            r#""""#,
            r#""a b""#,
            r#""a\nb""#,
            r#""caf\u00e9""#,
            "42",
            "null",
            r#"["a"]"#,
        ] {
            let body = format!(r#"{{"access_token":{token},"token_type":"Bearer"}}"#);
            let err = unexpected_of(parse(200, &body));
            assert_eq!(
                err.problem,
                ResponseProblem::Field {
                    field: "access_token"
                },
                "{token}"
            );
            assert!(err.retry.is_transient());
        }
        let err = unexpected_of(parse(200, r#"{"token_type":"Bearer","expires_in":60}"#));
        assert_eq!(
            err.problem,
            ResponseProblem::Field {
                field: "access_token"
            }
        );
    }

    #[test]
    fn scope_is_optional_but_must_be_a_string() {
        assert_eq!(parse(200, &token_body("")).unwrap().scope(), None);
        let err = unexpected_of(parse(200, &token_body(r#","scope":["a"]"#)));
        assert_eq!(err.problem, ResponseProblem::Field { field: "scope" });
    }

    #[test]
    fn broken_success_bodies_are_transient() {
        let truncated = token_body("");
        let truncated = &truncated[..truncated.len() - 10];
        for (body, want) in [
            ("", ResponseProblem::EmptyBody),
            ("  \r\n", ResponseProblem::EmptyBody),
            (
                "<html><body>Bad gateway</body></html>",
                ResponseProblem::Html,
            ),
            ("\n  <!DOCTYPE html>", ResponseProblem::Html),
            (
                truncated,
                ResponseProblem::NotJson {
                    kind: "eof",
                    line: 1,
                    column: truncated.len(),
                },
            ),
            (
                "{\"access_token\": nope}",
                ResponseProblem::NotJson {
                    kind: "syntax",
                    line: 1,
                    column: 19,
                },
            ),
            (
                "[1, 2]",
                ResponseProblem::NotJson {
                    kind: "data",
                    line: 1,
                    column: 0,
                },
            ),
        ] {
            let err = unexpected_of(parse(200, body));
            assert_eq!(err.problem, want, "{body:?}");
            assert_eq!(err.retry, RetryAdvice::Transient { after: None });
            assert_eq!(err.status, StatusCode::OK);
            assert_eq!(err.body_len, body.len());
            assert_eq!(err.endpoint, "token endpoint");
        }
    }

    #[test]
    fn json_errors_never_echo_the_body() {
        // serde_json's own message for this quotes the value.
        let body = format!(r#"{{"access_token":"{SECRET}","token_type":"Bearer","x":tru}}"#);
        let err = unexpected_of(parse(200, &body));
        assert!(matches!(
            err.problem,
            ResponseProblem::NotJson { kind: "syntax", .. }
        ));
        let body = format!(r#"{{"access_token":"{SECRET}"#);
        let err = unexpected_of(parse(200, &body));
        assert!(matches!(
            err.problem,
            ResponseProblem::NotJson { kind: "eof", .. }
        ));
        let body = format!(r#"["{SECRET}"]"#);
        unexpected_of(parse(200, &body));
    }

    #[test]
    fn html_content_type_is_refused_whatever_the_body() {
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "Text/HTML; charset=utf-8")
            .body(token_body(""))
            .unwrap();
        let err = unexpected_of(parse_token_response(&response, now()));
        assert_eq!(err.problem, ResponseProblem::Html);
        assert_eq!(
            err.content_type.as_deref(),
            Some("Text/HTML; charset=utf-8")
        );
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let body = format!("\u{FEFF}{}", token_body(""));
        assert!(parse(200, &body).is_ok());
    }

    #[test]
    fn oversize_bodies_are_refused_before_parsing() {
        let padding = " ".repeat(MAX_RESPONSE_BYTES);
        let body = format!("{}{padding}", token_body(""));
        let err = unexpected_of(parse(200, &body));
        assert_eq!(
            err.problem,
            ResponseProblem::TooLarge {
                limit: MAX_RESPONSE_BYTES
            }
        );
        assert_eq!(err.body_len, body.len());
        let err = unexpected_of(parse(400, &body));
        assert!(matches!(err.problem, ResponseProblem::TooLarge { .. }));
    }

    #[test]
    fn error_codes_are_parsed() {
        for (code, want) in [
            ("invalid_request", ErrorCode::InvalidRequest),
            ("invalid_client", ErrorCode::InvalidClient),
            ("invalid_grant", ErrorCode::InvalidGrant),
            ("unauthorized_client", ErrorCode::UnauthorizedClient),
            ("unsupported_grant_type", ErrorCode::UnsupportedGrantType),
            ("invalid_scope", ErrorCode::InvalidScope),
            (
                "temporarily_unavailable",
                ErrorCode::Other("temporarily_unavailable".into()),
            ),
            ("made_up", ErrorCode::Other("made_up".into())),
        ] {
            for status in [400, 401] {
                let body = format!(r#"{{"error":"{code}"}}"#);
                let err = provider_of(parse(status, &body));
                assert_eq!(err.code, want);
                assert_eq!(err.status.as_u16(), status);
                assert_eq!(err.description, None);
                assert_eq!(err.uri, None);
                let token_err = TokenError::Provider(err);
                assert_eq!(token_err.retry().is_transient(), !want.is_permanent());
            }
        }
    }

    #[test]
    fn provider_error_keeps_a_sanitised_description_and_uri() {
        let body = r#"{"error":"invalid_grant",
            "error_description":"bad\u0000 key\r\n\u001b[31mid",
            "error_uri":"https://docs.example.com/e#grant"}"#;
        let err = provider_of(parse(400, body));
        assert_eq!(err.description.as_deref(), Some("bad key[31mid"));
        assert_eq!(err.uri.as_deref(), Some("https://docs.example.com/e#grant"));
        let shown = err.to_string();
        assert!(
            shown.contains("invalid_grant") && shown.contains("bad key[31mid"),
            "{shown}"
        );
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
    }

    #[test]
    fn overlong_description_is_cut() {
        let long = "é".repeat(1000);
        let body = format!(r#"{{"error":"invalid_client","error_description":"{long}"}}"#);
        let err = provider_of(parse(401, &body));
        let description = err.description.unwrap();
        assert_eq!(description.chars().count(), MAX_DESCRIPTION_CHARS);
    }

    #[test]
    fn malformed_optional_error_fields_are_dropped() {
        let body = r#"{"error":"invalid_client","error_description":42,"error_uri":"\u0007"}"#;
        let err = provider_of(parse(401, body));
        assert_eq!(err.code, ErrorCode::InvalidClient);
        assert_eq!(err.description, None);
        assert_eq!(err.uri, None);
    }

    #[test]
    fn control_characters_in_an_unknown_code_are_stripped() {
        let err = provider_of(parse(400, r#"{"error":"weird\u0000\ncode"}"#));
        assert_eq!(err.code, ErrorCode::Other("weirdcode".into()));
    }

    #[test]
    fn error_status_without_an_oauth_body_says_what_arrived() {
        for (body, want) in [
            ("", ResponseProblem::EmptyBody),
            ("<html>Unauthorized</html>", ResponseProblem::Html),
            (
                r#"{"message":"nope"}"#,
                ResponseProblem::Field { field: "error" },
            ),
            (
                r#"{"error":{"code":1}}"#,
                ResponseProblem::Field { field: "error" },
            ),
        ] {
            let err = unexpected_of(parse(401, body));
            assert_eq!(err.problem, want, "{body:?}");
            assert_eq!(err.retry, RetryAdvice::Permanent);
            assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn success_status_with_an_error_body_is_a_provider_error() {
        let err = provider_of(parse(200, r#"{"error":"invalid_client"}"#));
        assert_eq!(err.code, ErrorCode::InvalidClient);
        assert_eq!(err.status, StatusCode::OK);
    }

    #[test]
    fn server_errors_are_transient() {
        for status in [500, 502, 503, 504, 429, 408] {
            let err = unexpected_of(parse(status, "<html>busy</html>"));
            assert_eq!(err.problem, ResponseProblem::Status);
            assert_eq!(
                err.retry,
                RetryAdvice::Transient { after: None },
                "{status}"
            );
        }
    }

    #[test]
    fn other_statuses_are_permanent() {
        for status in [301, 302, 307, 403, 404, 405, 415, 100] {
            let err = unexpected_of(parse(status, ""));
            assert_eq!(err.problem, ResponseProblem::Status);
            assert_eq!(err.retry, RetryAdvice::Permanent, "{status}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates_are_honoured() {
        let now = now();
        let in_two_minutes = httpdate::fmt_http_date(now.wall() + Duration::from_secs(120));
        for (value, want) in [("30", 30), (in_two_minutes.as_str(), 120)] {
            for status in [429, 503] {
                let response = http::Response::builder()
                    .status(status)
                    .header("retry-after", value)
                    .body(Vec::new())
                    .unwrap();
                let TokenError::Response(err) = parse_token_response(&response, now).unwrap_err()
                else {
                    panic!("expected an unexpected response");
                };
                let after = Some(Duration::from_secs(want));
                assert_eq!(
                    err.retry,
                    RetryAdvice::Transient { after },
                    "{status} {value}"
                );
            }
        }
    }

    #[test]
    fn server_error_with_an_oauth_body_keeps_retry_after() {
        let response = http::Response::builder()
            .status(503)
            .header("retry-after", "7")
            .body(r#"{"error":"invalid_client","error_description":"maintenance"}"#)
            .unwrap();
        let err = parse_token_response(&response, now()).unwrap_err();
        let TokenError::Response(ref unexpected) = err else {
            panic!("expected an unexpected response, got {err:?}");
        };
        assert_eq!(unexpected.problem, ResponseProblem::Status);
        let after = Some(Duration::from_secs(7));
        assert_eq!(err.retry(), RetryAdvice::Transient { after });
    }

    #[test]
    fn provider_error_with_retry_after() {
        let response = http::Response::builder()
            .status(400)
            .header("retry-after", "15")
            .body(r#"{"error":"slow_down"}"#)
            .unwrap();
        let TokenError::Provider(err) = parse_token_response(&response, now()).unwrap_err() else {
            panic!("expected a provider error");
        };
        assert_eq!(err.retry_after, Some(Duration::from_secs(15)));
        let after = Some(Duration::from_secs(15));
        assert_eq!(
            TokenError::Provider(err).retry(),
            RetryAdvice::Transient { after }
        );
    }

    #[test]
    fn parse_retry_after_edge_cases() {
        let now = now().wall();
        let value = |text: &'static str| HeaderValue::from_static(text);
        assert_eq!(parse_retry_after(&value("0"), now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(&value(" 5 "), now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_retry_after(&value("-5"), now), None);
        assert_eq!(parse_retry_after(&value("1.5"), now), None);
        assert_eq!(parse_retry_after(&value(""), now), None);
        assert_eq!(parse_retry_after(&value("soon"), now), None);
        assert_eq!(
            parse_retry_after(&value("99999999999999999999999"), now),
            None
        );
        let past =
            HeaderValue::from_str(&httpdate::fmt_http_date(now - Duration::from_secs(60))).unwrap();
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        let opaque = HeaderValue::from_bytes(b"\xff\xfe").unwrap();
        assert_eq!(parse_retry_after(&opaque, now), None);
    }

    #[test]
    fn server_date_reads_the_date_header() {
        let now = now().wall();
        let response = http::Response::builder()
            .header("date", httpdate::fmt_http_date(now))
            .body(())
            .unwrap();
        assert_eq!(server_date(&response), Some(now));
        let response = http::Response::builder()
            .header("date", "yesterday")
            .body(())
            .unwrap();
        assert_eq!(server_date(&response), None);
        assert_eq!(server_date(&http::Response::new(())), None);
    }

    #[test]
    fn planted_secret_never_appears_in_any_error() {
        let bodies = [
            format!(r#"{{"access_token":"{SECRET}","token_type":"mac"}}"#),
            format!(r#"{{"access_token":"{SECRET}","expires_in":0}}"#),
            format!(r#"{{"access_token":"{SECRET}","expires_in":"{SECRET}"}}"#),
            format!(r#"{{"access_token":"{SECRET} x"}}"#),
            format!(r#"{{"access_token":"{SECRET}","scope":1}}"#),
            format!(r#"{{"access_token":"{SECRET}""#),
            format!(r#"{{"access_token":{SECRET}}}"#),
            format!(r#"<html>{SECRET}</html>"#),
            format!(r#"{{"error":"x","refresh_token":"{SECRET}"}}"#),
            format!(r#"{{"{SECRET}":1}}"#),
            SECRET.to_owned(),
        ];
        for body in &bodies {
            for status in [200, 201, 400, 401, 403, 429, 500] {
                if let Err(err) = parse(status, body) {
                    assert_no_secret(&err);
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = crate::rng::Rng::from_seed(1);
        for _ in 0..2000 {
            let len = (rng.next_u64() % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| b"{}[]\":,0123-.eE tnulrfa\\x"[(rng.next_u64() % 25) as usize])
                .collect();
            for status in [200, 400, 503] {
                let response = http::Response::builder()
                    .status(status)
                    .body(bytes.clone())
                    .unwrap();
                let _ = parse_token_response(&response, now());
            }
        }
    }
}
