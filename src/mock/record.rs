//! What the server remembers of each request: non-secret facts only.

use std::time::Instant;

use http::header::{self, HeaderMap};
use http::{Method, StatusCode};

use super::fault::Fault;
use super::{client_auth, jwt, wire};
use crate::time::Now;

/// How a token request authenticated its client (RFC 6749 §2.3, RFC 7523 §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// `Authorization: Basic …`.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// `client_assertion` in the form body (private key JWT).
    PrivateKeyJwt,
}

/// One request as the server saw it.
///
/// Holds only facts that are not secret: no secret, assertion, access token
/// or body is kept, so `Debug` output is safe to print. The ids are the ones
/// the request *claimed* (read before verification), so a refused request
/// still shows who it said it was.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: Method,
    /// The request path, without the query.
    pub path: String,
    /// The `grant_type` parameter of a token request.
    pub grant_type: Option<String>,
    /// The client id a token request presented (form body, Basic header or
    /// client assertion `iss`), or the service user or client an accepted
    /// access token at the resource endpoint was issued to.
    pub client_id: Option<String>,
    /// The `sub` of a jwt-bearer assertion: the service user.
    pub subject: Option<String>,
    /// The `kid` of the assertion or client assertion.
    pub key_id: Option<String>,
    /// The `scope` parameter.
    pub scope: Option<String>,
    /// How the client authenticated, when it tried.
    pub client_auth: Option<ClientAuthMethod>,
    /// When the request was handled (the `Now` passed in).
    pub at: Instant,
    /// The status of the answer.
    pub status: StatusCode,
    /// The OAuth error code of the answer, if it was an error.
    pub error: Option<String>,
    /// The scripted fault applied to this request.
    pub fault: Option<Fault>,
}

impl RecordedRequest {
    /// The facts every request has; the rest is filled in while handling it.
    pub(super) fn start(request: &http::Request<Vec<u8>>, now: Now) -> Self {
        Self {
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            grant_type: None,
            client_id: None,
            subject: None,
            key_id: None,
            scope: None,
            client_auth: None,
            at: now.instant(),
            status: StatusCode::OK,
            error: None,
            fault: None,
        }
    }

    /// Reads the claimed facts of a token request, without judging them.
    pub(super) fn observe_token_request(&mut self, request: &http::Request<Vec<u8>>) {
        let form = wire::Form::lenient(request.body());
        self.grant_type = form.get("grant_type").map(str::to_owned);
        self.scope = form.get("scope").map(str::to_owned);
        if let Some(assertion) = form.get("assertion") {
            let facts = jwt::peek(assertion);
            self.subject = facts.subject;
            self.key_id = facts.key_id;
        }

        let basic_id = basic_client_id(request.headers());
        self.client_auth = if basic_id.is_some() {
            Some(ClientAuthMethod::ClientSecretBasic)
        } else if form.get("client_assertion").is_some() {
            Some(ClientAuthMethod::PrivateKeyJwt)
        } else if form.get("client_secret").is_some() {
            Some(ClientAuthMethod::ClientSecretPost)
        } else {
            None
        };
        self.client_id = form.get("client_id").map(str::to_owned).or(basic_id);
        if let Some(client_assertion) = form.get("client_assertion") {
            let facts = jwt::peek(client_assertion);
            self.client_id = self.client_id.take().or(facts.issuer);
            self.key_id = facts.key_id;
        }
    }
}

fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (client_id, _secret) = client_auth::decode_basic(value).ok()?;
    Some(client_id)
}
