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
//!
//! # Clock skew
//!
//! The acquirer keeps a [`ClockSkew`] estimate of the provider's clock
//! offset and signs every assertion at the corrected time (`iat` is the
//! corrected wall clock minus the method's `iat` backdate). The estimate
//! learns from the `Date` header of the token endpoint's own answers (a
//! token, or an RFC 6749 §5.2 error), never from discovery, whose document
//! a cache may serve with an old `Date` (RFC 9111 §4.2.3), nor from error
//! pages, which a proxy with another clock may have written.
//!
//! When the provider refuses an assertion and its `error_description` blames
//! the assertion's times ([`mentions_assertion_time`]), and that response's
//! `Date` moved the estimate away from the offset the assertion was signed
//! with, the acquirer signs a new assertion at once and returns it as the
//! next [`Step::Send`]: one retry per acquisition, so a provider that keeps
//! refusing costs one extra request, not a storm. When the refusal stands,
//! the error is a [`TokenError::ClockSkew`] that names the offset: transient
//! when the next assertion is corrected, permanent when the offset is beyond
//! [`MAX_CLOCK_OFFSET`](crate::skew::MAX_CLOCK_OFFSET) and the host clock
//! must be set. A refusal whose `Date` agrees with the offset used is
//! returned unchanged: the clocks are not the cause.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use http::StatusCode;

use crate::endpoint::UrlPolicy;
use crate::error::{ProviderError, ResponseProblem, TokenError};
use crate::flow::{AwaitingDiscovery, AwaitingTokenResponse, Discovery, ProviderMetadata};
use crate::flow::{ClientAuth, ConfigError, Grant, RequestOptions, TokenFlow};
use crate::manager::{PublishedLease, RefreshPolicy, TokenManager};
use crate::method::{Endpoints, Method};
use crate::response::server_date;
use crate::rng::Rng;
use crate::secret::AccessToken;
use crate::skew::{Calibration, ClockOffset, ClockSkew, ClockSkewError, mentions_assertion_time};
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
    skew: ClockSkew,
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
    Token(TokenStage),
}

/// A token request in flight, with what its answer is judged by.
#[derive(Debug)]
struct TokenStage {
    awaiting: AwaitingTokenResponse,
    /// The clock offset the request's assertion (if any) was signed with.
    offset: ClockOffset,
    /// Whether this request is the acquisition's retry after a correction.
    retried: bool,
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
            skew: ClockSkew::new(),
        }
    }

    /// Replaces the clock skew estimator (default [`ClockSkew::new`]); pass
    /// [`ClockSkew::disabled`] to sign by the host clock alone.
    #[must_use]
    pub fn with_clock_skew(mut self, skew: ClockSkew) -> Self {
        self.skew = skew;
        self
    }

    /// The clock skew estimator: the offset later assertions are signed with.
    pub fn clock_skew(&self) -> &ClockSkew {
        &self.skew
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
            _ => self.token_request(now, false),
        }
    }

    /// Hands the response to the request of `awaiting`, received at `now`,
    /// and says what comes next.
    ///
    /// A token endpoint's answer may lead to one more request: the retry
    /// after a clock correction described in the [module
    /// documentation](self#clock-skew).
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
                    self.token_request(now, false)
                }
                Err(error) => Step::Done(Err(error)),
            },
            Stage::Token(stage) => self.token_response(stage, response, now),
        }
    }

    fn token_request(&mut self, now: Now, retried: bool) -> Step {
        let endpoint = (self.endpoints.token_endpoint())
            .or_else(|| self.metadata.as_ref().map(ProviderMetadata::token_endpoint));
        let (Method::Grant(grant), Some(endpoint)) = (&self.method, endpoint) else {
            // `start` answers a personal access token itself, and a token
            // endpoint is either configured or discovered before this point.
            return Step::Done(Ok(self.personal_access_token(now)));
        };
        // Only the wall clock moves, and only assertion times read it.
        let offset = self.skew.offset();
        let signing_time = self.skew.correct(now);
        match TokenFlow::new(grant, endpoint, &self.options).start(signing_time, &mut self.rng) {
            Ok((awaiting, request)) => Step::Send {
                awaiting: Awaiting {
                    stage: Stage::Token(TokenStage {
                        awaiting,
                        offset,
                        retried,
                    }),
                },
                request,
            },
            Err(error) => Step::Done(Err(error)),
        }
    }

    fn token_response<B: AsRef<[u8]>>(
        &mut self,
        stage: TokenStage,
        response: http::Response<B>,
        now: Now,
    ) -> Step {
        let TokenStage {
            awaiting,
            offset: used,
            retried,
        } = stage;
        let date = server_date(&response);
        let result = awaiting.handle_response(response, now);
        // Only the provider's own answers calibrate (see the module docs).
        let calibration = match (&result, date) {
            (Ok(_) | Err(TokenError::Provider(_)), Some(date)) => {
                Some(self.skew.observe(date, now.wall()))
            }
            _ => None,
        };
        match result {
            Ok(token) => Step::Done(Ok(token)),
            Err(TokenError::Provider(refusal)) => {
                self.provider_refusal(refusal, used, retried, calibration, now)
            }
            Err(error) => {
                self.forget_moved_endpoint(&error);
                Step::Done(Err(error))
            }
        }
    }

    /// Retries once, or reports the clock skew, when the provider refused
    /// the assertion for its times and its `Date` explains why.
    fn provider_refusal(
        &mut self,
        refusal: ProviderError,
        used: ClockOffset,
        retried: bool,
        calibration: Option<Calibration>,
        now: Now,
    ) -> Step {
        let blames_time = refusal
            .description
            .as_deref()
            .is_some_and(mentions_assertion_time);
        if !blames_time || !self.signs_assertions() {
            return Step::Done(Err(refusal.into()));
        }
        if let Some(Calibration::Refused { measured }) = calibration {
            return Step::Done(Err(ClockSkewError::new(refusal, measured, false).into()));
        }
        let offset = self.skew.offset();
        if !offset.differs_from(used) {
            return Step::Done(Err(refusal.into()));
        }
        if retried {
            return Step::Done(Err(ClockSkewError::new(refusal, offset, true).into()));
        }
        tracing::debug!(
            code = %refusal.code,
            offset_seconds = offset.seconds(),
            previous_seconds = used.seconds(),
            "assertion refused for its times; retrying once at the corrected time"
        );
        self.token_request(now, true)
    }

    /// Whether the method signs assertions, the only requests whose
    /// acceptance depends on the host clock.
    fn signs_assertions(&self) -> bool {
        match self.method.grant() {
            Some(Grant::JwtBearer(_)) => true,
            Some(Grant::ClientCredentials(grant)) => {
                matches!(grant.auth(), ClientAuth::PrivateKeyJwt(_))
            }
            _ => false,
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

/// Implements the setters both driver builders share over their `settings:
/// Settings` field. The doc comment given to the macro goes on
/// `background_refresh`, whose background work is a task in one driver and
/// a thread in the other.
macro_rules! builder_setters {
    ($(#[doc = $background_doc:literal])*) => {
        /// The refresh and backoff rules; default
        /// [`RefreshPolicy::default`](crate::manager::RefreshPolicy::default).
        pub fn policy(mut self, policy: $crate::manager::RefreshPolicy) -> Self {
            self.settings.policy = policy;
            self
        }

        /// The user agent and extra headers of every request.
        pub fn request_options(mut self, options: $crate::flow::RequestOptions) -> Self {
            self.settings.options = options;
            self
        }

        /// The clock; default [`SystemClock`](crate::time::SystemClock). Tests
        /// pass a [`ManualClock`](crate::time::ManualClock).
        pub fn clock(mut self, clock: impl $crate::time::Clock) -> Self {
            self.settings.clock = ::std::sync::Arc::new(clock);
            self
        }

        /// Seeds the jitter and the assertion `jti`s, for reproducible runs;
        /// default a seed from the operating system.
        pub fn seed(mut self, seed: u64) -> Self {
            self.settings.seed = Some(seed);
            self
        }

        $(#[doc = $background_doc])*
        pub fn background_refresh(mut self, enabled: bool) -> Self {
            self.settings.background = enabled;
            self
        }
    };
}
pub(crate) use builder_setters;

/// Formats a driver (`Authenticator` or `BlockingAuthenticator`) for
/// `Debug`: the method, the generation of the published token and whether
/// background refresh runs. Never the token.
pub(crate) fn debug_driver(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    method_name: &str,
    lease: &ArcSwapOption<PublishedLease>,
    background_refresh: bool,
) -> fmt::Result {
    let lease = lease.load();
    f.debug_struct(name)
        .field("method", &method_name)
        .field(
            "generation",
            &lease.as_ref().map(|l| l.lease().token().generation()),
        )
        .field("background_refresh", &background_refresh)
        .finish_non_exhaustive()
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
    pub(crate) clock_skew: ClockSkew,
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
            clock_skew: ClockSkew::new(),
        }
    }

    /// Formats the builder `name` that holds these settings for `Debug`.
    pub(crate) fn debug_builder(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        f.debug_struct(name)
            .field("method", &self.method.name())
            .field("policy", &self.policy)
            .field("background_refresh", &self.background)
            .finish_non_exhaustive()
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
        let acquirer = Acquirer::new(self.method, self.endpoints, self.options, acquirer_rng)
            .with_clock_skew(self.clock_skew);
        (manager, acquirer, self.clock)
    }
}
