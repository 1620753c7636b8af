//! Discovery: finding the token endpoint from the issuer (OpenID Connect
//! Discovery 1.0 §4, RFC 8414 §3).
//!
//! [`Discovery`] builds `GET {issuer}/.well-known/openid-configuration`;
//! [`AwaitingDiscovery`] checks the answer and gives [`ProviderMetadata`].
//! The document's `issuer` must name the configured issuer (RFC 8414 §3.3,
//! OIDC Discovery §4.3): otherwise an attacker who can answer the discovery
//! request could send our assertions to an endpoint of its choice.

use http::{Method, header};
use serde_json::{Map, Value};
use tracing::{debug, warn};

use super::{RequestOptions, accept_json};
use crate::endpoint::{Issuer, TokenEndpoint, UrlPolicy};
use crate::error::{ResponseProblem, RetryAdvice, TokenError};
use crate::response::{
    json_object, retry_after_by_server_clock, sanitise, status_retry, unexpected,
};

/// The endpoint name used in
/// [`UnexpectedResponse::endpoint`](crate::error::UnexpectedResponse::endpoint).
const DISCOVERY_ENDPOINT: &str = "discovery endpoint";

/// How much of a mismatching issuer an error keeps, in characters.
const MAX_FOUND_ISSUER_CHARS: usize = 256;

/// The first state of discovery: the issuer to ask.
///
/// # Examples
///
/// ```
/// use service_auth::endpoint::{Issuer, UrlPolicy};
/// use service_auth::flow::Discovery;
///
/// let issuer = Issuer::parse("https://auth.example.com/", UrlPolicy::https_only())?;
/// let (awaiting, request) = Discovery::new(issuer, UrlPolicy::https_only()).request();
/// assert_eq!(request.method(), http::Method::GET);
/// assert_eq!(request.uri(), "https://auth.example.com/.well-known/openid-configuration");
///
/// let response = http::Response::new(
///     r#"{"issuer":"https://auth.example.com",
///         "token_endpoint":"https://auth.example.com/token"}"#,
/// );
/// let metadata = awaiting.handle_response(response)?;
/// assert_eq!(metadata.token_endpoint().as_str(), "https://auth.example.com/token");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A response can only be handled once the request was built:
///
/// ```compile_fail,E0599
/// use service_auth::endpoint::{Issuer, UrlPolicy};
/// use service_auth::flow::Discovery;
///
/// let issuer = Issuer::parse("https://auth.example.com", UrlPolicy::https_only()).unwrap();
/// let discovery = Discovery::new(issuer, UrlPolicy::https_only());
/// discovery.handle_response(http::Response::new(Vec::<u8>::new()));
/// ```
#[derive(Clone, Debug)]
#[must_use = "a discovery does nothing until `request` is called and its request sent"]
pub struct Discovery {
    issuer: Issuer,
    policy: UrlPolicy,
    options: RequestOptions,
}

impl Discovery {
    /// Discovery for `issuer`; the token endpoint in the answer must pass
    /// `policy`, the policy the issuer was parsed with.
    pub fn new(issuer: Issuer, policy: UrlPolicy) -> Self {
        Self {
            issuer,
            policy,
            options: RequestOptions::default(),
        }
    }

    /// Adds the user agent and extra headers of `options` to the request.
    pub fn options(mut self, options: &RequestOptions) -> Self {
        self.options = options.clone();
        self
    }

    /// Builds the discovery request: `GET {issuer}/.well-known/openid-configuration`
    /// with `Accept: application/json`.
    #[must_use = "the request must be sent and its response handed to the returned state"]
    pub fn request(self) -> (AwaitingDiscovery, http::Request<Vec<u8>>) {
        let url = self.issuer.discovery_url();
        let mut request = http::Request::new(Vec::new());
        *request.method_mut() = Method::GET;
        // The issuer was parsed as an `http::Uri` and rebuilt from its
        // scheme, host, port and path; a fixed path appended keeps it valid.
        *request.uri_mut() = url.parse().expect("a validated issuer forms a valid URI");
        self.options.apply(request.headers_mut());
        request.headers_mut().insert(header::ACCEPT, accept_json());
        debug!(method = "GET", url = %url, "discovery request built");

        let awaiting = AwaitingDiscovery {
            issuer: self.issuer,
            policy: self.policy,
        };
        (awaiting, request)
    }
}

/// Discovery after the request was built: waiting for the response.
#[derive(Clone, Debug)]
#[must_use = "the response to the discovery request must be handed to `handle_response`"]
pub struct AwaitingDiscovery {
    issuer: Issuer,
    policy: UrlPolicy,
}

impl AwaitingDiscovery {
    /// The issuer being discovered.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Checks the discovery document and returns the provider's metadata.
    ///
    /// A `Retry-After` date is counted from the response's `Date` header, as
    /// this state has no clock reading.
    ///
    /// # Errors
    ///
    /// [`TokenError::Response`] with endpoint "discovery endpoint" when the
    /// status is not 2xx, the body is not a JSON object, `issuer` or
    /// `token_endpoint` is missing, the issuer differs from the configured
    /// one after normalisation ([`ResponseProblem::IssuerMismatch`]), or the
    /// token endpoint fails the [`UrlPolicy`] ([`ResponseProblem::TokenEndpoint`]).
    /// A broken body on a 2xx is transient; a mismatch or a refused URL is
    /// permanent.
    ///
    /// # Examples
    ///
    /// ```
    /// use service_auth::endpoint::{Issuer, UrlPolicy};
    /// use service_auth::error::{ResponseProblem, TokenError};
    /// use service_auth::flow::Discovery;
    ///
    /// let issuer = Issuer::parse("https://auth.example.com", UrlPolicy::https_only())?;
    /// let (awaiting, _request) = Discovery::new(issuer, UrlPolicy::https_only()).request();
    /// let response = http::Response::new(
    ///     r#"{"issuer":"https://evil.example","token_endpoint":"https://evil.example/token"}"#,
    /// );
    /// let Err(TokenError::Response(err)) = awaiting.handle_response(response) else {
    ///     panic!("a foreign issuer must be refused");
    /// };
    /// assert!(matches!(err.problem, ResponseProblem::IssuerMismatch { .. }));
    /// assert!(!err.retry.is_transient());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_response<B: AsRef<[u8]>>(
        self,
        response: http::Response<B>,
    ) -> Result<ProviderMetadata, TokenError> {
        let status = response.status();
        let after = retry_after_by_server_clock(&response);
        let body_len = response.body().as_ref().len();
        debug!(
            status = status.as_u16(),
            body_len, "discovery response received"
        );

        let fail = |problem, retry| unexpected(&response, DISCOVERY_ENDPOINT, problem, retry);
        if !status.is_success() {
            return Err(fail(ResponseProblem::Status, status_retry(status, after)));
        }
        let transient = RetryAdvice::Transient { after };
        let fields = json_object(&response).map_err(|problem| fail(problem, transient))?;
        let metadata = self.metadata(&fields).map_err(|problem| {
            let retry = retry_for(transient, &problem);
            fail(problem, retry)
        })?;
        debug!(
            issuer = %metadata.issuer,
            token_endpoint = %metadata.token_endpoint,
            "discovery document accepted"
        );
        Ok(metadata)
    }

    fn metadata(self, fields: &Map<String, Value>) -> Result<ProviderMetadata, ResponseProblem> {
        let Some(Value::String(found)) = fields.get("issuer") else {
            return Err(ResponseProblem::Field { field: "issuer" });
        };
        let Some(Value::String(token_endpoint)) = fields.get("token_endpoint") else {
            return Err(ResponseProblem::Field {
                field: "token_endpoint",
            });
        };

        // RFC 8414 §3.3: the issuer must be identical. Both sides are
        // normalised first, so `https://a/` and `https://a` are equal.
        let matches = Issuer::parse(found, self.policy).is_ok_and(|found| found == self.issuer);
        if !matches {
            return Err(ResponseProblem::IssuerMismatch {
                expected: self.issuer.as_str().to_owned(),
                found: sanitise(found, MAX_FOUND_ISSUER_CHARS),
            });
        }
        let token_endpoint = TokenEndpoint::parse(token_endpoint, self.policy)
            .map_err(ResponseProblem::TokenEndpoint)?;

        Ok(ProviderMetadata {
            issuer: self.issuer,
            token_endpoint,
            token_endpoint_auth_methods_supported: string_list(
                fields,
                "token_endpoint_auth_methods_supported",
            ),
            grant_types_supported: string_list(fields, "grant_types_supported"),
        })
    }
}

/// What discovery learnt about the provider.
///
/// Obtained from [`AwaitingDiscovery::handle_response`], or built with
/// [`ProviderMetadata::new`] when the token endpoint is configured directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderMetadata {
    issuer: Issuer,
    token_endpoint: TokenEndpoint,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    grant_types_supported: Option<Vec<String>>,
}

impl ProviderMetadata {
    /// Metadata for a provider whose token endpoint is known without
    /// discovery; the lists of supported methods are absent.
    pub fn new(issuer: Issuer, token_endpoint: TokenEndpoint) -> Self {
        Self {
            issuer,
            token_endpoint,
            token_endpoint_auth_methods_supported: None,
            grant_types_supported: None,
        }
    }

    /// The issuer, equal to the configured one.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The token endpoint, checked against the [`UrlPolicy`].
    pub fn token_endpoint(&self) -> &TokenEndpoint {
        &self.token_endpoint
    }

    /// `token_endpoint_auth_methods_supported`, when the document has it
    /// (RFC 8414 §2: when absent, the default is `client_secret_basic`).
    pub fn token_endpoint_auth_methods_supported(&self) -> Option<&[String]> {
        self.token_endpoint_auth_methods_supported.as_deref()
    }

    /// `grant_types_supported`, when the document has it.
    pub fn grant_types_supported(&self) -> Option<&[String]> {
        self.grant_types_supported.as_deref()
    }
}

/// A mismatch and a refused token endpoint persist until the provider or the
/// configuration changes; anything else wrong with a 2xx body is a glitch.
fn retry_for(transient: RetryAdvice, problem: &ResponseProblem) -> RetryAdvice {
    match problem {
        ResponseProblem::IssuerMismatch { .. } | ResponseProblem::TokenEndpoint(_) => {
            RetryAdvice::Permanent
        }
        _ => transient,
    }
}

/// An optional list of strings. These lists only inform, so a malformed one
/// is dropped with a warning rather than failing discovery.
fn string_list(fields: &Map<String, Value>, name: &'static str) -> Option<Vec<String>> {
    let values = fields.get(name)?.as_array();
    let list = values.and_then(|values| {
        values
            .iter()
            .map(|value| value.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
    });
    if list.is_none() {
        warn!(
            field = name,
            "discovery document field is not a list of strings; ignoring it"
        );
    }
    list
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::UnexpectedResponse;

    const ISSUER: &str = "https://auth.example.com";

    fn awaiting(policy: UrlPolicy) -> AwaitingDiscovery {
        let issuer = Issuer::parse(ISSUER, policy).unwrap();
        Discovery::new(issuer, policy).request().0
    }

    fn document(issuer: &str, token_endpoint: &str) -> http::Response<Vec<u8>> {
        let body = format!(r#"{{"issuer":"{issuer}","token_endpoint":"{token_endpoint}"}}"#);
        http::Response::new(body.into_bytes())
    }

    fn unexpected_of(result: Result<ProviderMetadata, TokenError>) -> UnexpectedResponse {
        match result {
            Err(TokenError::Response(err)) => {
                assert_eq!(err.endpoint, "discovery endpoint");
                err
            }
            other => panic!("expected an unexpected response, got {other:?}"),
        }
    }

    #[test]
    fn request_is_a_get_of_the_well_known_document() {
        let policy = UrlPolicy::https_only();
        let issuer = Issuer::parse("https://Auth.Example.com/realms/x/", policy).unwrap();
        let mut options = RequestOptions {
            user_agent: Some(http::HeaderValue::from_static("svc/1")),
            ..RequestOptions::default()
        };
        options
            .extra_headers
            .insert("x-tenant", http::HeaderValue::from_static("t1"));
        let (awaiting, request) = Discovery::new(issuer.clone(), policy)
            .options(&options)
            .request();
        assert_eq!(awaiting.issuer(), &issuer);
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri(),
            "https://auth.example.com/realms/x/.well-known/openid-configuration"
        );
        assert_eq!(request.headers()[header::ACCEPT], "application/json");
        assert_eq!(request.headers()[header::USER_AGENT], "svc/1");
        assert_eq!(request.headers()["x-tenant"], "t1");
        assert!(request.body().is_empty());
    }

    #[test]
    fn odd_but_valid_issuers_form_valid_requests() {
        let policy = UrlPolicy::dangerous_allow_http_loopback();
        for issuer in [
            "https://a.example:8443/",
            "https://A.EXAMPLE//",
            "https://a.example/%7Euser/x%20y",
            "http://[::1]:9999/tenant",
            "http://127.0.0.1",
            "https://xn--bcher-kva.example",
        ] {
            let issuer = Issuer::parse(issuer, policy).unwrap();
            let (_, request) = Discovery::new(issuer.clone(), policy).request();
            assert_eq!(request.uri().to_string(), issuer.discovery_url());
        }
    }

    #[test]
    fn a_matching_document_gives_the_metadata() {
        let body = format!(
            r#"{{"issuer":"{ISSUER}","token_endpoint":"{ISSUER}/oauth/v2/token",
                "token_endpoint_auth_methods_supported":["client_secret_basic","private_key_jwt"],
                "grant_types_supported":["client_credentials",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer"],
                "jwks_uri":"{ISSUER}/keys"}}"#
        );
        let metadata = awaiting(UrlPolicy::https_only())
            .handle_response(http::Response::new(body))
            .unwrap();
        assert_eq!(metadata.issuer().as_str(), ISSUER);
        assert_eq!(
            metadata.token_endpoint().as_str(),
            "https://auth.example.com/oauth/v2/token"
        );
        assert_eq!(
            metadata.token_endpoint_auth_methods_supported().unwrap(),
            ["client_secret_basic", "private_key_jwt"]
        );
        assert_eq!(metadata.grant_types_supported().unwrap().len(), 2);
    }

    #[test]
    fn optional_lists_may_be_absent_or_malformed() {
        let metadata = awaiting(UrlPolicy::https_only())
            .handle_response(document(ISSUER, "https://auth.example.com/token"))
            .unwrap();
        assert_eq!(metadata.token_endpoint_auth_methods_supported(), None);
        assert_eq!(metadata.grant_types_supported(), None);

        let body = format!(
            r#"{{"issuer":"{ISSUER}","token_endpoint":"{ISSUER}/t","grant_types_supported":"x",
                "token_endpoint_auth_methods_supported":["a",1]}}"#
        );
        let metadata = awaiting(UrlPolicy::https_only())
            .handle_response(http::Response::new(body))
            .unwrap();
        assert_eq!(metadata.grant_types_supported(), None);
        assert_eq!(metadata.token_endpoint_auth_methods_supported(), None);
    }

    #[test]
    fn trailing_slash_and_case_do_not_make_a_mismatch() {
        for found in ["https://auth.example.com/", "HTTPS://AUTH.example.com:443"] {
            let metadata = awaiting(UrlPolicy::https_only())
                .handle_response(document(found, "https://auth.example.com/token"))
                .unwrap();
            assert_eq!(metadata.issuer().as_str(), ISSUER);
        }
    }

    #[test]
    fn another_issuer_is_a_permanent_mismatch() {
        for found in [
            "https://evil.example.com",
            "https://auth.example.com/other",
            "http://auth.example.com",
            "not a url",
        ] {
            let err = unexpected_of(
                awaiting(UrlPolicy::https_only())
                    .handle_response(document(found, "https://auth.example.com/token")),
            );
            assert_eq!(
                err.problem,
                ResponseProblem::IssuerMismatch {
                    expected: ISSUER.into(),
                    found: found.into()
                }
            );
            assert_eq!(err.retry, RetryAdvice::Permanent);
            assert!(err.to_string().contains("RFC 8414"), "{err}");
        }
    }

    #[test]
    fn plain_http_token_endpoint_is_refused_under_https_only() {
        let err = unexpected_of(
            awaiting(UrlPolicy::https_only())
                .handle_response(document(ISSUER, "http://auth.example.com/token")),
        );
        assert!(
            matches!(
                err.problem,
                ResponseProblem::TokenEndpoint(crate::endpoint::UrlError::NotHttps { .. })
            ),
            "{err:?}"
        );
        assert_eq!(err.retry, RetryAdvice::Permanent);
    }

    #[test]
    fn loopback_http_needs_the_opt_in() {
        let policy = UrlPolicy::dangerous_allow_http_loopback();
        let issuer = Issuer::parse("http://127.0.0.1:8080", policy).unwrap();
        let (awaiting, request) = Discovery::new(issuer, policy).request();
        assert_eq!(
            request.uri(),
            "http://127.0.0.1:8080/.well-known/openid-configuration"
        );
        let metadata = awaiting
            .handle_response(document(
                "http://127.0.0.1:8080/",
                "http://127.0.0.1:8080/token",
            ))
            .unwrap();
        assert_eq!(
            metadata.token_endpoint().as_str(),
            "http://127.0.0.1:8080/token"
        );
    }

    #[test]
    fn missing_fields_are_transient_field_errors() {
        for (body, field) in [
            (
                r#"{"token_endpoint":"https://auth.example.com/t"}"#.to_owned(),
                "issuer",
            ),
            (format!(r#"{{"issuer":"{ISSUER}"}}"#), "token_endpoint"),
            (
                format!(r#"{{"issuer":"{ISSUER}","token_endpoint":7}}"#),
                "token_endpoint",
            ),
        ] {
            let err = unexpected_of(
                awaiting(UrlPolicy::https_only()).handle_response(http::Response::new(body)),
            );
            assert_eq!(err.problem, ResponseProblem::Field { field });
            assert!(err.retry.is_transient());
        }
    }

    #[test]
    fn broken_bodies_and_statuses() {
        let err = unexpected_of(
            awaiting(UrlPolicy::https_only()).handle_response(http::Response::new("<html>")),
        );
        assert_eq!(err.problem, ResponseProblem::Html);
        assert!(err.retry.is_transient());

        let err = unexpected_of(
            awaiting(UrlPolicy::https_only()).handle_response(http::Response::new("{\"issuer\"")),
        );
        assert!(matches!(
            err.problem,
            ResponseProblem::NotJson { kind: "eof", .. }
        ));

        let not_found = http::Response::builder().status(404).body("").unwrap();
        let err = unexpected_of(awaiting(UrlPolicy::https_only()).handle_response(not_found));
        assert_eq!(err.problem, ResponseProblem::Status);
        assert_eq!(err.retry, RetryAdvice::Permanent);
    }

    #[test]
    fn unavailable_keeps_retry_after() {
        let busy = http::Response::builder()
            .status(503)
            .header("retry-after", "20")
            .body("")
            .unwrap();
        let err = unexpected_of(awaiting(UrlPolicy::https_only()).handle_response(busy));
        let after = Some(Duration::from_secs(20));
        assert_eq!(err.retry, RetryAdvice::Transient { after });

        // A date is counted from the server's own `Date`.
        let busy = http::Response::builder()
            .status(429)
            .header("date", "Sun, 06 Nov 1994 08:49:37 GMT")
            .header("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT")
            .body("")
            .unwrap();
        let err = unexpected_of(awaiting(UrlPolicy::https_only()).handle_response(busy));
        let after = Some(Duration::from_secs(30));
        assert_eq!(err.retry, RetryAdvice::Transient { after });

        // Without a `Date`, a date cannot be placed and is ignored.
        let busy = http::Response::builder()
            .status(429)
            .header("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT")
            .body("")
            .unwrap();
        let err = unexpected_of(awaiting(UrlPolicy::https_only()).handle_response(busy));
        assert_eq!(err.retry, RetryAdvice::Transient { after: None });
    }
}
