//! Transports: the only place where requests meet a network.
//!
//! A transport sends one `http::Request<Vec<u8>>` and returns the
//! `http::Response<Vec<u8>>`, nothing more. It must not follow redirects
//! (a 3xx is returned as it is, or refused with
//! [`TransportErrorKind::Redirect`](crate::error::TransportErrorKind::Redirect)),
//! should apply a timeout, and should cap the response body size (see
//! [`MAX_RESPONSE_BYTES`]). Implement [`Transport`] or [`BlockingTransport`]
//! to plug in your own HTTP stack; `examples/custom_transport.rs` shows one.

use std::future::Future;
use std::pin::Pin;

use crate::error::TransportError;

#[cfg(any(feature = "reqwest", feature = "blocking"))]
mod common;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "blocking")]
pub mod ureq;

#[cfg(any(feature = "reqwest", feature = "blocking"))]
pub use common::BuildError;

/// The largest response body the library reads from a token or discovery
/// endpoint. Real responses are a few kilobytes.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// An HTTP stack that sends requests asynchronously.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` and returns the response, whatever its status.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when no response arrived (connection failure,
    /// timeout, body too large, refused redirect).
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send;
}

/// An HTTP stack that sends requests on the calling thread.
pub trait BlockingTransport: Send + Sync + 'static {
    /// Sends `request` and returns the response, whatever its status.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when no response arrived.
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError>;
}

/// A boxed future of a response, for transports held behind `dyn`.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send>>;

/// The object-safe form of [`Transport`], implemented for every transport.
///
/// Drivers hold `Arc<dyn DynTransport>` so that their handle types carry no
/// type parameter.
pub trait DynTransport: Send + Sync + 'static {
    /// Sends `request`; see [`Transport::send`].
    fn send_boxed(&self, request: http::Request<Vec<u8>>) -> ResponseFuture;
}

impl<T: Transport + Clone> DynTransport for T {
    fn send_boxed(&self, request: http::Request<Vec<u8>>) -> ResponseFuture {
        let this = self.clone();
        Box::pin(async move { this.send(request).await })
    }
}
