//! Helpers shared by the configuration tests: temporary files with chosen
//! permissions, a transport that records what the library sends, and JWT
//! payload decoding.
#![allow(dead_code)] // each test crate uses a different part

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use service_auth::credentials::{Algorithm, KeyFile, SigningKey};
use service_auth::error::TransportError;
use service_auth::mock::MockServer;
use service_auth::transport::{BlockingTransport, Transport};

/// The issuer of the mock in the configuration tests.
pub const ISSUER: &str = "https://auth.service-auth.test";

/// A directory removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory under the system's temporary directory.
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("service-auth-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self(dir)
    }

    /// Writes `contents` to `name` with permission bits `mode` (Unix).
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write a temporary file");
        set_mode(&path, mode);
        path
    }

    /// A path in the directory that does not exist.
    pub fn missing(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let permissions = std::fs::Permissions::from_mode(mode);
    std::fs::set_permissions(path, permissions).expect("set permissions");
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) {}

/// A fresh service account key file: the JSON, the key's public half and
/// the PEM of the private key (to look for in logs).
pub struct ServiceAccount {
    pub json: String,
    pub public: service_auth::credentials::PublicKey,
    pub pem: String,
}

/// Makes a ZITADEL service account key file for `user_id`.
pub fn service_account(algorithm: Algorithm, key_id: &str, user_id: &str) -> ServiceAccount {
    let key = SigningKey::generate(algorithm, key_id).expect("generate a key");
    let public = key.public_key();
    let pem = key.to_pem().expect("encode").to_string();
    let json = KeyFile::service_account(key, user_id)
        .to_json()
        .expect("encode")
        .to_string();
    ServiceAccount { json, public, pem }
}

/// Makes a ZITADEL application key file for `client_id`.
pub fn application(algorithm: Algorithm, key_id: &str, client_id: &str) -> ServiceAccount {
    let key = SigningKey::generate(algorithm, key_id).expect("generate a key");
    let public = key.public_key();
    let pem = key.to_pem().expect("encode").to_string();
    let json = KeyFile::application(key, "app-1", client_id)
        .to_json()
        .expect("encode")
        .to_string();
    ServiceAccount { json, public, pem }
}

/// Every 40-character chunk of a PEM body: any of them in a log is a leak.
pub fn pem_chunks(pem: &str) -> Vec<String> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let chars: Vec<char> = body.chars().collect();
    chars
        .chunks(40)
        .filter(|c| c.len() == 40)
        .map(|c| c.iter().collect())
        .collect()
}

/// One request as the library sent it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: http::Method,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    /// The form body's parameters.
    pub fn form(&self) -> BTreeMap<String, String> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

/// A transport that records every request, then hands it to the mock.
#[derive(Clone)]
pub struct Spy {
    pub server: MockServer,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Spy {
    pub fn new(server: MockServer) -> Self {
        Self {
            server,
            seen: Arc::default(),
        }
    }

    /// The requests sent so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The token requests (POSTs) sent so far.
    pub fn token_requests(&self) -> Vec<Seen> {
        let post = |s: &Seen| s.method == http::Method::POST;
        self.seen().into_iter().filter(post).collect()
    }

    fn record(&self, request: &http::Request<Vec<u8>>) {
        let seen = Seen {
            method: request.method().clone(),
            uri: request.uri().to_string(),
            headers: request.headers().clone(),
            body: request.body().clone(),
        };
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(seen);
    }
}

impl Transport for Spy {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send {
        self.record(&request);
        let server = self.server.clone();
        async move { Transport::send(&server, request).await }
    }
}

impl BlockingTransport for Spy {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        self.record(&request);
        BlockingTransport::send(&self.server, request)
    }
}

/// The claims of a compact JWS, decoded without verification.
pub fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a compact JWS");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The `aud` of the assertion (or client assertion) in a token request.
pub fn assertion_audience(request: &Seen) -> String {
    let form = request.form();
    let jwt = form
        .get("assertion")
        .or_else(|| form.get("client_assertion"))
        .expect("an assertion in the request");
    claims(jwt)["aud"]
        .as_str()
        .expect("a single string aud")
        .to_owned()
}
