//! The mock server as a transport: requests never leave the process.

use std::future::Future;
use std::thread;

use super::MockServer;
use super::delay::Sleep;
use crate::error::{TransportError, TransportErrorKind};
use crate::transport::{BlockingTransport, Transport};

/// Answers at the time of the server's [`Clock`](crate::time::Clock); a
/// [`Fault::Delay`](super::Fault::Delay) is waited out in real time on a
/// timer thread, whatever the runtime.
impl Transport for MockServer {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send {
        let server = self.clone();
        async move {
            let reply = server.respond(request, server.now());
            if let Some(delay) = reply.delay {
                Sleep::new(delay)
                    .await
                    .map_err(|error| TransportError::new(TransportErrorKind::Other, error))?;
            }
            Ok(reply.response)
        }
    }
}

/// Answers at the time of the server's [`Clock`](crate::time::Clock); a
/// [`Fault::Delay`](super::Fault::Delay) sleeps the calling thread.
impl BlockingTransport for MockServer {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let reply = self.respond(request, self.now());
        if let Some(delay) = reply.delay {
            thread::sleep(delay);
        }
        Ok(reply.response)
    }
}
