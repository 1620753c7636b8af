//! What goes over the wire: form bodies in, JSON and error responses out.

use std::collections::BTreeMap;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::fault::Fault;
use crate::time::Now;

/// The largest token request body the server reads. Real ones are a few
/// kilobytes: an RSA-signed assertion is under 1 KiB.
pub(super) const MAX_FORM_BYTES: usize = 64 * 1024;

/// The longest value the server repeats in an `error_description`.
const QUOTE_LIMIT: usize = 64;

/// A refused token request: an RFC 6749 §5.2 error response.
#[derive(Debug)]
pub(super) struct Rejection {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) description: String,
}

impl Rejection {
    fn new(code: &'static str, description: String) -> Self {
        Self {
            status: super::status_for_code(code),
            code,
            description,
        }
    }

    /// `invalid_request`: a parameter is missing, repeated or malformed.
    pub(super) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description.into())
    }

    /// `invalid_client`: client authentication failed (always 401 here).
    pub(super) fn invalid_client(description: impl Into<String>) -> Self {
        Self::new("invalid_client", description.into())
    }

    /// `invalid_grant`: the assertion is invalid.
    pub(super) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description.into())
    }

    /// `unauthorized_client`: the client may not use this grant type.
    pub(super) fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new("unauthorized_client", description.into())
    }

    /// `unsupported_grant_type`.
    pub(super) fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", description.into())
    }

    /// `invalid_scope`.
    pub(super) fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new("invalid_scope", description.into())
    }

    /// A request with another method than `POST`: 405 with `Allow: POST`.
    pub(super) fn method_not_allowed(method: &http::Method) -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "invalid_request",
            description: format!(
                "the token endpoint accepts POST only, got {} (RFC 6749 section 3.2)",
                quoted(method.as_str())
            ),
        }
    }

    /// The JSON error response.
    pub(super) fn into_response(self) -> Response<Vec<u8>> {
        let body = json!({
            "error": self.code,
            "error_description": error_text(&self.description),
        });
        let mut response = json_response(self.status, &body);
        no_store(&mut response);
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2 and RFC 9110 §11.6.1: a 401 names the scheme to use.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mock\""),
            );
        }
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// A form body (RFC 6749 Appendix B), each parameter present at most once.
///
/// No `Debug`: it holds secrets and assertions.
pub(super) struct Form {
    params: BTreeMap<String, String>,
}

impl Form {
    /// Parses `body`, refusing repeated parameters (RFC 6749 §3.2).
    pub(super) fn parse(body: &[u8]) -> Result<Self, Rejection> {
        if std::str::from_utf8(body).is_err() {
            return Err(Rejection::invalid_request(
                "the form body is not UTF-8; percent-encode every non-ASCII byte \
                 (application/x-www-form-urlencoded)",
            ));
        }
        let mut params = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            let name = name.into_owned();
            if params.contains_key(&name) {
                return Err(Rejection::invalid_request(format!(
                    "parameter {} appears more than once; send each parameter once \
                     (RFC 6749 section 3.2)",
                    quoted(&name)
                )));
            }
            params.insert(name, value.into_owned());
        }
        Ok(Self { params })
    }

    /// Parses `body` as far as it goes, keeping the first of repeated
    /// parameters: for recording, never for deciding.
    pub(super) fn lenient(body: &[u8]) -> Self {
        let mut params = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            params
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Self { params }
    }

    /// The value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }
}

/// A token on its way to the client. No `Debug`: it holds the access token.
pub(super) struct Issued {
    pub(super) access_token: String,
    pub(super) lifetime: Duration,
    pub(super) scope: Option<String>,
}

/// The RFC 6749 §5.1 success response, bent the way `fault` asks.
pub(super) fn token_response(issued: &Issued, fault: Option<&Fault>) -> Response<Vec<u8>> {
    let expires_in = issued.lifetime.as_secs();
    let mut body = serde_json::Map::new();
    body.insert("access_token".into(), issued.access_token.as_str().into());
    let token_type = match fault {
        Some(Fault::WrongTokenType) => "MAC",
        _ => "Bearer",
    };
    body.insert("token_type".into(), token_type.into());
    match fault {
        Some(Fault::MissingExpiresIn) => {}
        Some(Fault::ZeroExpiresIn) => {
            body.insert("expires_in".into(), 0.into());
        }
        Some(Fault::StringExpiresIn) => {
            body.insert("expires_in".into(), expires_in.to_string().into());
        }
        _ => {
            body.insert("expires_in".into(), expires_in.into());
        }
    }
    if let Some(scope) = &issued.scope {
        body.insert("scope".into(), scope.as_str().into());
    }

    let mut response = json_response(StatusCode::OK, &Value::Object(body));
    if matches!(fault, Some(Fault::TruncatedJson)) {
        let body = response.body_mut();
        body.truncate(body.len() / 2);
    }
    no_store(&mut response);
    response
}

/// A JSON response with `status`.
pub(super) fn json_response(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    // A `Value` always serialises.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(bytes);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A plain text response with `status`.
pub(super) fn text_response(status: StatusCode, text: &str) -> Response<Vec<u8>> {
    let mut response = Response::new(text.as_bytes().to_vec());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The answer for a path the server does not serve.
pub(super) fn not_found() -> Response<Vec<u8>> {
    text_response(
        StatusCode::NOT_FOUND,
        "not found: this server serves /.well-known/openid-configuration, /oauth/v2/token and \
         /resource below its issuer\n",
    )
}

/// Marks a response that carries or concerns a token as not cacheable
/// (RFC 6749 §5.1).
pub(super) fn no_store(response: &mut Response<Vec<u8>>) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Sets the `Date` header from the wall clock of `now` (RFC 9110 §6.6.1).
pub(super) fn set_date(response: &mut Response<Vec<u8>>, now: Now) {
    let date = httpdate::fmt_http_date(now.wall());
    if let Ok(value) = HeaderValue::from_str(&date) {
        response.headers_mut().insert(header::DATE, value);
    }
}

/// `value` in backticks, cut to a safe length and to printable ASCII, for an
/// `error_description`. Only for values that are not secret: ids, key ids,
/// parameter names, audiences.
pub(super) fn quoted(value: &str) -> String {
    let mut text: String = value
        .chars()
        .take(QUOTE_LIMIT)
        .map(|c| if is_error_char(c) && c != '`' { c } else { '?' })
        .collect();
    if value.chars().count() > QUOTE_LIMIT {
        text.push_str("...");
    }
    format!("`{text}`")
}

/// Compares two secrets in time that does not depend on where they differ.
pub(super) fn constant_time_eq(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// `text` restricted to the characters RFC 6749 §5.2 allows in
/// `error_description` (printable ASCII without `"` and `\`).
fn error_text(text: &str) -> String {
    text.chars()
        .map(|c| if is_error_char(c) { c } else { '?' })
        .collect()
}

fn is_error_char(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        let Err(refused) = Form::parse(b"grant_type=a&scope=b&grant_type=c") else {
            panic!("a repeated parameter was accepted");
        };
        assert_eq!(refused.code, "invalid_request");
        assert!(refused.description.contains("`grant_type`"));
    }

    #[test]
    fn empty_values_count_as_absent() {
        let form = Form::parse(b"scope=&grant_type=client_credentials").unwrap();
        assert_eq!(form.get("scope"), None);
        assert_eq!(form.get("grant_type"), Some("client_credentials"));
    }

    #[test]
    fn descriptions_hold_only_rfc_6749_characters() {
        let rejection = Rejection::invalid_request("bad \"value\" \\ é\n");
        let response = rejection.into_response();
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error_description"], "bad ?value? ? ??");
    }

    #[test]
    fn quoted_values_are_cut_and_cleaned() {
        assert_eq!(quoted("key-1"), "`key-1`");
        assert_eq!(quoted("a`b\"c"), "`a?b?c`");
        let long = "x".repeat(100);
        assert_eq!(quoted(&long), format!("`{}...`", "x".repeat(64)));
    }
}
