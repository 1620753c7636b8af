//! A local token endpoint on 127.0.0.1, started and stopped by the bench.
//!
//! It answers
//! - `POST /token` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
//!   and an `assertion` (what yup-oauth2 and gcp_auth send to the `token_uri`
//!   of a service-account JSON, RFC 7523 §2.1);
//! - `POST /token` with `grant_type=client_credentials`, the client
//!   authenticated by `client_secret_basic`, `client_secret_post` or a client
//!   assertion (RFC 6749 §4.4, RFC 7523 §2.2);
//! - `GET /.well-known/openid-configuration` (discovery, RFC 8414).
//!
//! Every token response is `{"access_token":…,"token_type":"Bearer","expires_in":N}`
//! with `N` and a per-request delay set by the bench at run time. The server
//! checks the shape of requests, not signatures: every contender pays the same
//! server cost, and the benches measure the clients.
//!
//! It runs on a thread of its own with a single-threaded tokio runtime, so
//! its CPU time can be read apart from the client's ([`TokenServer::cpu`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::cpu::ThreadClock;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, Default)]
struct State {
    delay_us: AtomicU64,
    expires_in: AtomicU64,
    token_requests: AtomicU64,
    rejected: AtomicU64,
    issued: AtomicU64,
    connections: AtomicU64,
}

/// A running token endpoint; stopped when dropped.
pub struct TokenServer {
    addr: SocketAddr,
    state: Arc<State>,
    clock: Option<ThreadClock>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// Starts a server on 127.0.0.1 with an ephemeral port, no delay and
    /// tokens that live an hour.
    pub fn start() -> Self {
        // Invariant: binding an ephemeral loopback port fails only on a broken
        // host, and then no benchmark can run.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State::default());
        state.expires_in.store(3600, Ordering::Relaxed);
        let (shutdown, stop) = oneshot::channel();
        let (clock_tx, clock_rx) = std::sync::mpsc::channel();
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("token-endpoint".into())
            .spawn(move || {
                let _ = clock_tx.send(ThreadClock::current());
                serve(listener, thread_state, stop);
            })
            .expect("spawn token endpoint thread");
        let clock = clock_rx.recv().ok().flatten();
        Self {
            addr,
            state,
            clock,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, the issuer.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/token`, the token endpoint.
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Delays every token response by `delay` (the time a provider takes).
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.state.delay_us.store(us, Ordering::Relaxed);
    }

    /// The `expires_in` of the next token responses.
    pub fn set_expires_in(&self, seconds: u64) {
        self.state.expires_in.store(seconds, Ordering::Relaxed);
    }

    /// Token requests received so far (accepted or not).
    pub fn token_requests(&self) -> u64 {
        self.state.token_requests.load(Ordering::Relaxed)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// Token requests refused as malformed so far.
    pub fn rejected(&self) -> u64 {
        self.state.rejected.load(Ordering::Relaxed)
    }

    /// CPU time the server thread has used so far.
    pub fn cpu(&self) -> Duration {
        self.clock.map(|c| c.read()).unwrap_or_default()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: std::net::TcpListener, state: Arc<State>, mut stop: oneshot::Receiver<()>) {
    // Invariant: see `TokenServer::start`.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("server runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        loop {
            let accepted = tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else { continue };
            state.connections.fetch_add(1, Ordering::Relaxed);
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, state.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/.well-known/openid-configuration") => Ok(json(
            StatusCode::OK,
            serde_json::json!({
                "issuer": format!("http://{host}"),
                "token_endpoint": format!("http://{host}/token"),
                "grant_types_supported": ["client_credentials", JWT_BEARER],
                "token_endpoint_auth_methods_supported":
                    ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            })
            .to_string(),
        )),
        (&Method::POST, "/token") => Ok(token(req, &state).await),
        _ => Ok(json(
            StatusCode::NOT_FOUND,
            r#"{"error":"not_found"}"#.into(),
        )),
    }
}

async fn token(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    state.token_requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let Ok(body) = Limited::new(body, 64 * 1024).collect().await else {
        return reject(state, "invalid_request");
    };
    let body = body.to_bytes();
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let ok = match field("grant_type") {
        Some(JWT_BEARER) => field("assertion").is_some_and(is_jws),
        Some("client_credentials") => client_authenticated(&parts.headers, &field),
        _ => return reject(state, "unsupported_grant_type"),
    };
    if !ok {
        return reject(state, "invalid_client");
    }
    let delay = state.delay_us.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_micros(delay)).await;
    }
    let n = state.issued.fetch_add(1, Ordering::Relaxed);
    let expires_in = state.expires_in.load(Ordering::Relaxed);
    json(
        StatusCode::OK,
        format!(
            r#"{{"access_token":"bench-token-{n:012}","token_type":"Bearer","expires_in":{expires_in}}}"#
        ),
    )
}

fn client_authenticated<'a>(
    headers: &http::HeaderMap,
    field: &impl Fn(&str) -> Option<&'a str>,
) -> bool {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        return basic_matches(value.as_bytes());
    }
    if field("client_assertion_type") == Some(CLIENT_ASSERTION_TYPE) {
        return field("client_assertion").is_some_and(is_jws);
    }
    field("client_id") == Some(crate::CLIENT_ID)
        && field("client_secret") == Some(crate::CLIENT_SECRET)
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1); the
/// bench's id and secret need no escaping.
fn basic_matches(value: &[u8]) -> bool {
    let Some(b64) = value.strip_prefix(b"Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return false;
    };
    decoded == format!("{}:{}", crate::CLIENT_ID, crate::CLIENT_SECRET).as_bytes()
}

/// Three base64url segments: the shape of a signed JWT.
fn is_jws(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty())
}

fn reject(state: &State, error: &str) -> Response<Full<Bytes>> {
    state.rejected.fetch_add(1, Ordering::Relaxed);
    json(StatusCode::BAD_REQUEST, format!(r#"{{"error":"{error}"}}"#))
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}
