//! The access token the library hands out.

use std::fmt;
use std::time::{Duration, Instant};

use crate::secret::AccessToken;

/// An access token with what the library knows about its lifetime.
///
/// `Debug` shows the expiry and scope, never the token.
#[derive(Clone)]
pub struct Token {
    access_token: AccessToken,
    received_at: Instant,
    expires_at: Option<Instant>,
    lifetime_known: bool,
    scope: Option<String>,
}

impl Token {
    /// A token that arrived at `received_at` and expires at `expires_at`
    /// (`None`: never, as for a personal access token). `lifetime_known` is
    /// `false` when the provider sent no `expires_in` and the expiry is the
    /// library's assumption.
    pub fn new(
        access_token: AccessToken,
        received_at: Instant,
        expires_at: Option<Instant>,
        lifetime_known: bool,
        scope: Option<String>,
    ) -> Self {
        Self {
            access_token,
            received_at,
            expires_at,
            lifetime_known,
            scope,
        }
    }

    /// The bearer token. Never log it.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// When the response carrying this token was handled.
    pub fn received_at(&self) -> Instant {
        self.received_at
    }

    /// When the token expires; `None` for a token that never does.
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// The token's whole lifetime, from arrival to expiry.
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires_at
            .map(|at| at.saturating_duration_since(self.received_at))
    }

    /// Whether the provider stated the lifetime (`expires_in` was present).
    pub fn lifetime_known(&self) -> bool {
        self.lifetime_known
    }

    /// The granted scope, when the provider named it.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The `Authorization` header value `Bearer <token>`, marked sensitive so
    /// that `http`'s `Debug` hides it.
    ///
    /// # Errors
    ///
    /// [`http::header::InvalidHeaderValue`] when the token holds characters a
    /// header cannot carry (the response parser refuses such tokens).
    pub fn header_value(&self) -> Result<http::HeaderValue, http::header::InvalidHeaderValue> {
        let mut value =
            http::HeaderValue::try_from(format!("Bearer {}", self.access_token.secret()))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.access_token)
            .field("lifetime", &self.lifetime())
            .field("lifetime_known", &self.lifetime_known)
            .field("scope", &self.scope)
            .finish()
    }
}
