//! One token acquisition as a sans-IO sequence, shared by every driver.
//!
//! An [`Acquirer`] knows the [`Method`], the [`Endpoints`] and the
//! [`RequestOptions`], and caches the provider metadata that discovery
//! returned. Each acquisition is a short exchange: discovery when the token
//! endpoint must be discovered and is not yet known, then the token request;
//! a personal access token needs no request at all. The acquirer produces
//! the requests and consumes the responses; the driver sends them.
//!
//! ```
//! use std::time::{Instant, SystemTime};
//! use service_auth::acquire::{Acquirer, Step};
//! use service_auth::endpoint::{Issuer, UrlPolicy};
//! use service_auth::flow::{ClientAuth, ClientCredentials, RequestOptions};
//! use service_auth::method::{Endpoints, Method};
//! use service_auth::{rng::Rng, secret::ClientSecret, time::Now};
//!
//! # fn send(request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
//! #     let body: &[u8] = if request.method() == http::Method::GET {
//! #         br#"{"issuer":"https://auth.example.com","token_endpoint":"https://auth.example.com/token"}"#
//! #     } else {
//! #         br#"{"access_token":"at","token_type":"Bearer","expires_in":3600}"#
//! #     };
//! #     http::Response::new(body.to_vec())
//! # }
//! let issuer = Issuer::parse("https://auth.example.com", UrlPolicy::https_only())?;
//! let method = Method::from(ClientCredentials::new("c", ClientAuth::SecretBasic(ClientSecret::new("s"))));
//! let mut acquirer =
//!     Acquirer::new(method, Endpoints::Discover(issuer), RequestOptions::default(), Rng::from_seed(1));
//!
//! let now = Now::new(Instant::now(), SystemTime::now());
//! let mut step = acquirer.start(now);
//! let token = loop {
//!     match step {
//!         Step::Send { awaiting, request } => {
//!             let response = send(&request);
//!             step = acquirer.handle_response(awaiting, response, now);
//!         }
//!         Step::Done(result) => break result?,
//!     }
//! };
//! assert!(token.expires_at().is_some());
//! assert!(acquirer.metadata().is_some(), "discovery is cached for the next acquisition");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use http::StatusCode;

use crate::endpoint::UrlPolicy;
use crate::error::{ResponseProblem, TokenError};
use crate::flow::{AwaitingDiscovery, AwaitingTokenResponse, Discovery, ProviderMetadata};
use crate::flow::{ConfigError, RequestOptions, TokenFlow};
use crate::manager::{RefreshPolicy, TokenManager};
use crate::method::{Endpoints, Method};
use crate::rng::Rng;
use crate::secret::AccessToken;
use crate::time::{Clock, Now, SystemClock};
use crate::token::Token;

/// The long-lived part of token acquisition: configuration, the discovered
/// provider metadata, and the generator for assertion `jti`s.
///
/// `Debug` never shows a secret.
#[derive(Debug)]
pub struct Acquirer {
    method: Method,
    endpoints: Endpoints,
    options: RequestOptions,
    metadata: Option<ProviderMetadata>,
    rng: Rng,
}

/// What the driver does next in an acquisition.
#[derive(Debug)]
#[must_use = "a request to send, or the acquisition's result"]
pub enum Step {
    /// Send `request` (without following redirects) and hand the response
    /// to [`Acquirer::handle_response`] together with `awaiting`. A
    /// transport failure ends the acquisition with [`TokenError::Transport`].
    ///
    /// The request may carry a secret (an assertion, a client secret): send
    /// it, never log or `Debug`-print its body.
    Send {
        /// What the response will be handed to.
        awaiting: Awaiting,
        /// The request to send.
        request: http::Request<Vec<u8>>,
    },
    /// The acquisition is over.
    Done(Result<Token, TokenError>),
}

/// An acquisition waiting for the response to the request it produced.
#[derive(Debug)]
#[must_use = "the response must be handed to `Acquirer::handle_response`"]
pub struct Awaiting {
    stage: Stage,
}

#[derive(Debug)]
enum Stage {
    Discovery(AwaitingDiscovery),
    Token(AwaitingTokenResponse),
}

impl Acquirer {
    /// An acquirer for `method` at `endpoints`, sending the headers of
    /// `options`, drawing assertion `jti`s from `rng`.
    pub fn new(method: Method, endpoints: Endpoints, options: RequestOptions, rng: Rng) -> Self {
        let metadata = match &endpoints {
            Endpoints::Fixed {
                issuer: Some(issuer),
                token_endpoint,
            } => Some(ProviderMetadata::new(
                issuer.clone(),
                token_endpoint.clone(),
            )),
            _ => None,
        };
        Self {
            method,
            endpoints,
            options,
            metadata,
            rng,
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Where the provider is.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The provider metadata, once discovered (or given with an issuer).
    pub fn metadata(&self) -> Option<&ProviderMetadata> {
        self.metadata.as_ref()
    }

    /// Begins an acquisition at `now`.
    ///
    /// A personal access token is done at once, with no expiry. Otherwise
    /// the first request is discovery when the token endpoint must be
    /// discovered and is not cached, else the token request.
    pub fn start(&mut self, now: Now) -> Step {
        let Method::Grant(_) = &self.method else {
            return Step::Done(Ok(self.personal_access_token(now)));
        };
        match (&self.endpoints, &self.metadata) {
            (Endpoints::Discover(issuer), None) => {
                // Only an issuer accepted under the loopback opt-in is plain
                // HTTP, and only then may the discovered endpoint be.
                let policy = if issuer.is_plain_http() {
                    UrlPolicy::dangerous_allow_http_loopback()
                } else {
                    UrlPolicy::https_only()
                };
                let discovery = Discovery::new(issuer.clone(), policy).options(&self.options);
                let (awaiting, request) = discovery.request();
                let stage = Stage::Discovery(awaiting);
                Step::Send {
                    awaiting: Awaiting { stage },
                    request,
                }
            }
            _ => self.token_request(now),
        }
    }

    /// Hands the response to the request of `awaiting`, received at `now`,
    /// and says what comes next.
    pub fn handle_response<B: AsRef<[u8]>>(
        &mut self,
        awaiting: Awaiting,
        response: http::Response<B>,
        now: Now,
    ) -> Step {
        match awaiting.stage {
            Stage::Discovery(awaiting) => match awaiting.handle_response(response) {
                Ok(metadata) => {
                    self.metadata = Some(metadata);
                    self.token_request(now)
                }
                Err(error) => Step::Done(Err(error)),
            },
            Stage::Token(awaiting) => {
                let result = awaiting.handle_response(response, now);
                if let Err(error) = &result {
                    self.forget_moved_endpoint(error);
                }
                Step::Done(result)
            }
        }
    }

    fn token_request(&mut self, now: Now) -> Step {
        let endpoint = (self.endpoints.token_endpoint())
            .or_else(|| self.metadata.as_ref().map(ProviderMetadata::token_endpoint));
        let (Method::Grant(grant), Some(endpoint)) = (&self.method, endpoint) else {
            // `start` answers a personal access token itself, and a token
            // endpoint is either configured or discovered before this point.
            return Step::Done(Ok(self.personal_access_token(now)));
        };
        match TokenFlow::new(grant, endpoint, &self.options).start(now, &mut self.rng) {
            Ok((awaiting, request)) => Step::Send {
                awaiting: Awaiting {
                    stage: Stage::Token(awaiting),
                },
                request,
            },
            Err(error) => Step::Done(Err(error)),
        }
    }

    fn personal_access_token(&self, now: Now) -> Token {
        let secret = self
            .method
            .personal_access_token()
            .map_or("", |token| token.secret());
        Token::new(AccessToken::new(secret), now.instant(), None, true, None)
    }

    /// Drops discovered metadata when the token endpoint answered as if it
    /// no longer existed (404, 405, 410), so that the next acquisition
    /// discovers the provider again.
    fn forget_moved_endpoint(&mut self, error: &TokenError) {
        let TokenError::Response(response) = error else {
            return;
        };
        let gone = [
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::GONE,
        ];
        let discovered = matches!(self.endpoints, Endpoints::Discover(_));
        if discovered
            && response.problem == ResponseProblem::Status
            && gone.contains(&response.status)
        {
            tracing::debug!(
                status = response.status.as_u16(),
                "token endpoint not found; the provider will be discovered again"
            );
            self.metadata = None;
        }
    }
}

/// What both drivers are built from; their builders fill it in.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) method: Method,
    pub(crate) endpoints: Endpoints,
    pub(crate) options: RequestOptions,
    pub(crate) policy: RefreshPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) seed: Option<u64>,
    pub(crate) background: bool,
}

impl Settings {
    pub(crate) fn new(method: Method, endpoints: Endpoints) -> Self {
        Self {
            method,
            endpoints,
            options: RequestOptions::default(),
            policy: RefreshPolicy::default(),
            clock: Arc::new(SystemClock),
            seed: None,
            background: true,
        }
    }

    /// Checks the method and the request options.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.method.validate()?;
        self.options.validate()
    }

    /// The manager and the acquirer, each with its own generator drawn from
    /// the seed, so that one seed reproduces both jitter and `jti`s.
    pub(crate) fn into_parts(self) -> (TokenManager, Acquirer, Arc<dyn Clock>) {
        let mut root = self.seed.map_or_else(Rng::from_entropy, Rng::from_seed);
        let manager = TokenManager::new(self.policy, Rng::from_seed(root.next_u64()));
        let acquirer_rng = Rng::from_seed(root.next_u64());
        let acquirer = Acquirer::new(self.method, self.endpoints, self.options, acquirer_rng);
        (manager, acquirer, self.clock)
    }
}
