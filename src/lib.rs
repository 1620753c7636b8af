//! Service-user authentication for OAuth 2.0 / OpenID Connect providers.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod rng;
pub mod secret;
pub mod time;
pub mod token;
pub mod transport;
