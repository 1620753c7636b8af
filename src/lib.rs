//! Service-user authentication for OAuth 2.0 / OpenID Connect providers.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod acquire;
pub mod assertion;
#[cfg(feature = "tokio")]
pub mod authenticator;
pub mod blocking;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod flow;
pub mod manager;
pub mod method;
#[cfg(feature = "mock")]
pub mod mock;
pub mod response;
pub mod rng;
pub mod secret;
pub mod time;
pub mod token;
pub mod transport;
