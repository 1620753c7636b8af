//! Runs the interop authorization server (`tests/interop/server.mjs`) for the tests in
//! `tests/interop.rs`, and reads what it writes.
//!
//! The server is panva's `oidc-provider` on Node.js, served over HTTPS on 127.0.0.1 with a test
//! CA it generates at start (see `tests/interop/README.md`). [`Server::start`] spawns it with
//! stdin and stdout piped, reads the one ready line, and parses the manifest; dropping the
//! [`Server`] closes stdin (the server exits on end of file), waits for the child, and removes
//! the directory. [`Server::shared`] is one process-wide server for the tests that neither
//! revoke tokens nor count requests; Rust never drops statics, so that one stops when the test
//! process exits and its stdin closes.
//!
//! The server is started through `sh -c 'node …; rm -rf "$dir"'` so that its temporary
//! directory (test CA, throw-away keys) is removed even when the server stops because the test
//! process died or exited without dropping it.
//!
//! The interop tests never skip: when Node.js, npm or the server's packages are missing, every
//! test fails with a message saying what to install.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use service_auth::credentials::{KeyFile, SigningKey};
use service_auth::endpoint::{Issuer, TokenEndpoint, UrlPolicy};
use service_auth::method::Endpoints;
use service_auth::secret::ClientSecret;
use service_auth::transport::reqwest::ReqwestTransport;
use service_auth::transport::ureq::UreqTransport;
use service_auth::transport::{BlockingTransport, Transport};

/// How long the server may take to print its ready line (about 2 s on an idle 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a stopping server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The access token lifetime of the shared server: long enough that no test sees a refresh.
const SHARED_TTL_SECONDS: u32 = 60;

/// How the server is started.
#[derive(Clone, Copy, Debug)]
pub struct ServerOptions {
    /// `--ttl`: the access token lifetime in seconds.
    pub ttl_seconds: u32,
    /// `--plain-http`: serve plain HTTP instead of HTTPS.
    pub plain_http: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            ttl_seconds: SHARED_TTL_SECONDS,
            plain_http: false,
        }
    }
}

/// A running interop server, stopped on drop.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Kept open: the server writes nothing after the ready line, but a closed pipe would turn
    /// a stray write into an error there.
    _stdout: BufReader<ChildStdout>,
    dir: PathBuf,
    manifest: Manifest,
    plain_http: bool,
}

impl Server {
    /// Starts a server of its own, for a test that revokes tokens, counts requests or needs
    /// another token lifetime or plain HTTP.
    ///
    /// # Panics
    ///
    /// When Node.js, npm or the server's packages are missing, or the server does not start;
    /// the message says what to do.
    pub fn start(options: ServerOptions) -> Self {
        init_logging();
        check_prerequisites();
        let dir = unique_dir();
        let mut child = spawn(&dir, options);
        let stderr_tail = drain_stderr(&mut child);
        let (ready, stdout) = read_ready_line(&mut child, &stderr_tail);
        let ready: Ready = serde_json::from_str(&ready).unwrap_or_else(|err| {
            panic!("the server's ready line is not the documented JSON ({err}): {ready}")
        });
        let text = fs::read_to_string(&ready.manifest)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", ready.manifest.display()));
        let manifest: Manifest = serde_json::from_str(&text).unwrap_or_else(|err| {
            panic!(
                "{} is not the documented manifest: {err}",
                ready.manifest.display()
            )
        });
        assert_eq!(manifest.format, 1, "unknown manifest format");
        assert_eq!(
            manifest.issuer, ready.issuer,
            "the ready line and the manifest disagree"
        );
        assert_eq!(
            manifest.access_token_ttl_seconds,
            u64::from(options.ttl_seconds)
        );
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            _stdout: stdout,
            dir,
            manifest,
            plain_http: options.plain_http,
        }
    }

    /// The process-wide HTTPS server with a 60 s token lifetime, for tests that need no
    /// counters and revoke nothing.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<Server> = OnceLock::new();
        SHARED.get_or_init(|| Self::start(ServerOptions::default()))
    }

    /// What the server wrote about itself.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The URL policy the library needs for this server: https only, or the dangerous
    /// loopback opt-in for a `--plain-http` server.
    pub fn url_policy(&self) -> UrlPolicy {
        if self.plain_http {
            UrlPolicy::dangerous_allow_http_loopback()
        } else {
            UrlPolicy::https_only()
        }
    }

    /// The issuer, parsed under [`url_policy`](Self::url_policy).
    pub fn issuer(&self) -> Issuer {
        Issuer::parse(&self.manifest.issuer, self.url_policy()).expect("the manifest's issuer")
    }

    /// The token endpoint, parsed under [`url_policy`](Self::url_policy).
    pub fn token_endpoint(&self) -> TokenEndpoint {
        TokenEndpoint::parse(&self.manifest.token_endpoint, self.url_policy())
            .expect("the manifest's token endpoint")
    }

    /// Endpoints found by discovery from the issuer.
    pub fn discover(&self) -> Endpoints {
        Endpoints::Discover(self.issuer())
    }

    /// The token endpoint given directly, with the issuer: no discovery request.
    pub fn fixed(&self) -> Endpoints {
        Endpoints::Fixed {
            issuer: Some(self.issuer()),
            token_endpoint: self.token_endpoint(),
        }
    }

    /// An async transport that trusts exactly the test CA in addition to the platform's roots
    /// (or talks plain HTTP to a `--plain-http` server). A new client each time: a reqwest
    /// client's pooled connections belong to the runtime that made them, and every
    /// `#[tokio::test]` has its own runtime.
    pub fn reqwest(&self) -> ReqwestTransport {
        let builder = ReqwestTransport::builder().timeout(Duration::from_secs(20));
        let builder = match &self.manifest.ca_file {
            Some(ca) => builder.extra_root_certificate_file(ca),
            None => builder.dangerous_allow_http_loopback(),
        };
        builder.build().expect("a reqwest transport")
    }

    /// A blocking transport that trusts only the test CA (or talks plain HTTP to a
    /// `--plain-http` server).
    pub fn ureq(&self) -> UreqTransport {
        let builder = UreqTransport::builder().timeout(Duration::from_secs(20));
        let builder = match &self.manifest.ca_file {
            Some(ca) => builder.root_certificate_file(ca),
            None => builder.dangerous_allow_http_loopback(),
        };
        builder.build().expect("a ureq transport")
    }

    /// The client secret of the static client `client_id`.
    pub fn client_secret(&self, client_id: &str) -> ClientSecret {
        let secret = self.client(client_id).client_secret.as_deref();
        ClientSecret::new(secret.unwrap_or_else(|| panic!("{client_id} has no client secret")))
    }

    /// The private key of the private key JWT client `client_id`, read from its PEM file with
    /// the key id the server registered.
    pub fn client_key(&self, client_id: &str) -> SigningKey {
        let kid = self.client(client_id).kid.as_deref();
        let kid = kid.unwrap_or_else(|| panic!("{client_id} is not a private key JWT client"));
        self.client_key_as(client_id, kid)
    }

    /// The private key of the private key JWT client `client_id` under key id `kid`.
    pub fn client_key_as(&self, client_id: &str, kid: &str) -> SigningKey {
        let path = self.client(client_id).private_key_file.as_ref();
        let path = path.unwrap_or_else(|| panic!("{client_id} is not a private key JWT client"));
        SigningKey::read_pem_file(path, kid).expect("a client key from its PEM file")
    }

    /// The ZITADEL application key file of the private key JWT client `client_id`.
    pub fn client_key_file(&self, client_id: &str) -> KeyFile {
        let client = self.client(client_id);
        let path = client.zitadel_key_file.as_ref();
        let path = path.unwrap_or_else(|| panic!("{client_id} has no ZITADEL key file"));
        KeyFile::read(path).expect("a ZITADEL application key file")
    }

    /// The private key with JOSE algorithm `alg` of the JWT bearer grant's service user, read
    /// from its PEM file with the key id the server registered.
    pub fn bearer_key(&self, alg: &str) -> SigningKey {
        self.bearer_key_as(alg, self.bearer_kid(alg))
    }

    /// The service user's key of JOSE algorithm `alg` under key id `kid`.
    pub fn bearer_key_as(&self, alg: &str, kid: &str) -> SigningKey {
        SigningKey::read_pem_file(&self.bearer(alg).private_key_file, kid)
            .expect("a service user key from its PEM file")
    }

    /// The key id the server registered for the service user's `alg` key.
    pub fn bearer_kid(&self, alg: &str) -> &str {
        &self.bearer(alg).kid
    }

    /// The service user's RS256 key as a ZITADEL service account key file.
    pub fn bearer_key_file(&self) -> KeyFile {
        let path = self.bearer("RS256").zitadel_key_file.as_ref();
        let path = path.expect("the RS256 service user key has a ZITADEL key file");
        KeyFile::read(path).expect("a ZITADEL service account key file")
    }

    /// The service user of the JWT bearer grant.
    pub fn service_user(&self) -> &str {
        &self.manifest.jwt_bearer.service_user_id
    }

    /// A key that the server knows under no key id.
    pub fn rogue_key(&self, kid: &str) -> SigningKey {
        SigningKey::read_pem_file(&self.manifest.rogue_key.private_key_file, kid)
            .expect("the rogue key from its PEM file")
    }

    /// `GET /resource`, without credentials yet.
    pub fn resource_request(&self) -> http::Request<Vec<u8>> {
        http::Request::get(&self.manifest.resource_url)
            .body(Vec::new())
            .expect("a resource request")
    }

    /// Sends a request to the protected resource with the async transport.
    pub async fn call_resource_async(&self, request: http::Request<Vec<u8>>) -> ResourceReply {
        let response = self
            .reqwest()
            .send(request)
            .await
            .expect("the resource answers");
        ResourceReply::from_response(response)
    }

    /// Sends a request to the protected resource with the blocking transport.
    pub fn call_resource(&self, request: http::Request<Vec<u8>>) -> ResourceReply {
        let response = self.ureq().send(request).expect("the resource answers");
        ResourceReply::from_response(response)
    }

    /// `GET /_test/counters`, with the async transport.
    pub async fn counters_async(&self) -> Counters {
        let request = control(http::Method::GET, &self.manifest.control.counters);
        let response = self.reqwest().send(request).await.expect("the counters");
        parse_control(&response)
    }

    /// `GET /_test/counters`, with the blocking transport.
    pub fn counters(&self) -> Counters {
        let request = control(http::Method::GET, &self.manifest.control.counters);
        parse_control(&self.ureq().send(request).expect("the counters"))
    }

    /// `POST /_test/revoke-all`, with the async transport: every access token issued so far
    /// is forgotten. Returns how many were revoked.
    pub async fn revoke_all_async(&self) -> u64 {
        let request = control(http::Method::POST, &self.manifest.control.revoke_all);
        let response = self.reqwest().send(request).await.expect("revoke-all");
        parse_control::<Revoked>(&response).revoked
    }

    /// `POST /_test/revoke-all`, with the blocking transport.
    pub fn revoke_all(&self) -> u64 {
        let request = control(http::Method::POST, &self.manifest.control.revoke_all);
        parse_control::<Revoked>(&self.ureq().send(request).expect("revoke-all")).revoked
    }

    fn client(&self, client_id: &str) -> &ClientManifest {
        let client = self.manifest.clients.get(client_id);
        client.unwrap_or_else(|| panic!("the manifest lists no client {client_id}"))
    }

    fn bearer(&self, alg: &str) -> &BearerKey {
        let key = self.manifest.jwt_bearer.keys.get(alg);
        key.unwrap_or_else(|| panic!("the manifest lists no {alg} service user key"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // End of file on stdin stops the server; the `sh` wrapper then removes the directory.
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The manifest (`manifest.json`, format 1); only the members the tests use.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    /// The manifest format, 1.
    pub format: u32,
    /// `https://127.0.0.1:<port>`, or `http://…` with `--plain-http`.
    pub issuer: String,
    /// `{issuer}/token`.
    pub token_endpoint: String,
    /// `{issuer}/resource`.
    pub resource_url: String,
    /// The test CA; `None` with `--plain-http`.
    pub ca_file: Option<PathBuf>,
    /// `--ttl`.
    pub access_token_ttl_seconds: u64,
    /// The personal access token the resource accepts.
    pub static_pat: String,
    /// The JWT bearer grant's service user and keys.
    pub jwt_bearer: JwtBearerManifest,
    /// The static clients by id.
    pub clients: BTreeMap<String, ClientManifest>,
    /// A key registered nowhere.
    pub rogue_key: RogueKey,
    /// The test control API.
    pub control: Control,
}

/// The JWT bearer grant's part of the manifest.
#[derive(Debug, Deserialize)]
pub struct JwtBearerManifest {
    /// The service user (`iss` = `sub`).
    pub service_user_id: String,
    /// The public client anonymous JWT bearer requests are mapped to.
    pub client_id: String,
    /// The service user's keys by JOSE algorithm.
    pub keys: BTreeMap<String, BearerKey>,
}

/// One of the service user's keys.
#[derive(Debug, Deserialize)]
pub struct BearerKey {
    /// The key id.
    pub kid: String,
    /// The PKCS#8 PEM file.
    pub private_key_file: PathBuf,
    /// The ZITADEL service account key file (RS256 only).
    pub zitadel_key_file: Option<PathBuf>,
}

/// One static client.
#[derive(Debug, Deserialize)]
pub struct ClientManifest {
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or `none`.
    pub token_endpoint_auth_method: String,
    /// The secret of a secret client.
    pub client_secret: Option<String>,
    /// The algorithm a private key JWT client must sign with.
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// The key id of a private key JWT client.
    pub kid: Option<String>,
    /// The PKCS#8 PEM key of a private key JWT client.
    pub private_key_file: Option<PathBuf>,
    /// The ZITADEL application key file of `pkjwt-rsa`.
    pub zitadel_key_file: Option<PathBuf>,
}

/// The key registered nowhere.
#[derive(Debug, Deserialize)]
pub struct RogueKey {
    /// Its PKCS#8 PEM file.
    pub private_key_file: PathBuf,
}

/// The URLs of the test control API.
#[derive(Debug, Deserialize)]
pub struct Control {
    /// `GET`: the counters.
    pub counters: String,
    /// `POST`: forget every access token issued so far.
    pub revoke_all: String,
}

/// `GET /_test/counters`.
#[derive(Debug, Deserialize)]
pub struct Counters {
    /// Requests to the token endpoint.
    pub token_requests: TokenRequests,
    /// GETs of the discovery document.
    pub discovery_requests: u64,
    /// Requests to `/resource`.
    pub resource_requests: ResourceRequests,
}

/// Token endpoint counters; absent map keys read as 0.
#[derive(Debug, Deserialize)]
pub struct TokenRequests {
    /// Every `POST /token`.
    pub total: u64,
    /// Answered 200.
    pub succeeded: u64,
    /// Answered with an error.
    pub failed: u64,
    /// By the client the request authenticated as or claimed.
    pub by_client: BTreeMap<String, u64>,
    /// By `grant_type`.
    pub by_grant_type: BTreeMap<String, u64>,
}

impl TokenRequests {
    /// Requests by `client_id`.
    pub fn by_client(&self, client_id: &str) -> u64 {
        self.by_client.get(client_id).copied().unwrap_or(0)
    }
}

/// `/resource` counters.
#[derive(Debug, Deserialize)]
pub struct ResourceRequests {
    /// Every request.
    pub total: u64,
    /// Answered 200.
    pub accepted: u64,
    /// Answered 401 or 405.
    pub rejected: u64,
}

/// The protected resource's answer.
#[derive(Debug)]
pub struct ResourceReply {
    /// 200 or 401.
    pub status: http::StatusCode,
    /// The `WWW-Authenticate` challenge of a 401.
    pub www_authenticate: Option<String>,
    /// The JSON body.
    pub body: ResourceBody,
}

impl ResourceReply {
    fn from_response(response: http::Response<Vec<u8>>) -> Self {
        let www_authenticate = response
            .headers()
            .get(http::header::WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = serde_json::from_slice(response.body()).unwrap_or_else(|err| {
            panic!(
                "/resource answered {} without JSON: {err}",
                response.status()
            )
        });
        Self {
            status: response.status(),
            www_authenticate,
            body,
        }
    }
}

/// The JSON body of `/resource`.
#[derive(Debug, Deserialize)]
pub struct ResourceBody {
    /// `access_token` or `personal_access_token` on success.
    pub token_kind: Option<String>,
    /// The client the access token was issued to.
    pub client_id: Option<String>,
    /// The service user for JWT bearer tokens and the PAT, else the client id.
    pub sub: Option<String>,
    /// The granted scope.
    pub scope: Option<String>,
    /// The access token's expiry at the server, in Unix seconds.
    pub exp: Option<u64>,
    /// `invalid_token` or `unauthorized` on a 401.
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct Ready {
    issuer: String,
    manifest: PathBuf,
}

#[derive(Deserialize)]
struct Revoked {
    revoked: u64,
}

/// Installs a tracing subscriber writing to the test output, filtered by `RUST_LOG`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::from_default_env();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// The repository root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Fails every interop test with what to install when Node.js, npm or the server's packages
/// are missing. Checked once per process.
fn check_prerequisites() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let fix = "install Node.js (20 or newer) and npm, for example `apt-get install nodejs npm` \
                   or from https://nodejs.org, then run `npm ci --prefix tests/interop` in the \
                   repository root; these tests are never skipped";
        for tool in ["node", "npm"] {
            let version = Command::new(tool)
                .arg("--version")
                .stdin(Stdio::null())
                .output();
            match version {
                Ok(output) if output.status.success() => {}
                Ok(output) => {
                    return Err(format!(
                        "`{tool} --version` failed ({}): {fix}",
                        output.status
                    ));
                }
                Err(err) => return Err(format!("`{tool}` cannot be run ({err}): {fix}")),
            }
        }
        let package = root().join("tests/interop/node_modules/oidc-provider/package.json");
        if !package.is_file() {
            return Err(format!(
                "the interop server's packages are not installed ({} is missing): run \
                 `npm ci --prefix tests/interop` in the repository root",
                package.display()
            ));
        }
        Ok(())
    });
    if let Err(message) = checked {
        panic!("interop tests cannot run: {message}");
    }
}

/// A directory name under the system temp dir that no other server of any process uses.
fn unique_dir() -> PathBuf {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let name = format!(
        "service-auth-interop-{}-{serial}-{nanos}",
        std::process::id()
    );
    std::env::temp_dir().join(name)
}

fn spawn(dir: &Path, options: ServerOptions) -> Child {
    // `node` runs as a child of `sh`, which removes the directory once node exits, however it
    // exits. node inherits the pipes, so the stdin contract is node's own.
    let script = r#"node "$@"; status=$?; rm -rf -- "$SERVICE_AUTH_INTEROP_DIR"; exit $status"#;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(root().join("tests/interop/server.mjs"))
        .arg("--dir")
        .arg(dir)
        .arg("--ttl")
        .arg(options.ttl_seconds.to_string())
        .env("SERVICE_AUTH_INTEROP_DIR", dir)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if options.plain_http {
        command.arg("--plain-http");
    }
    command
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start `sh` to run the interop server: {err}"))
}

/// The server's stderr, forwarded to the test output of the test that started it (threads
/// inherit the output capture) and kept, last lines first to go, for start-up failures.
fn drain_stderr(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let tail = Arc::new(Mutex::new(Vec::new()));
    let Some(stderr) = child.stderr.take() else {
        return tail;
    };
    let keep = Arc::clone(&tail);
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("[interop server] {line}");
            let mut tail = keep.lock().unwrap_or_else(PoisonError::into_inner);
            if tail.len() == 50 {
                tail.remove(0);
            }
            tail.push(line);
        }
    });
    tail
}

/// Reads the one ready line, within [`READY_TIMEOUT`].
fn read_ready_line(
    child: &mut Child,
    stderr_tail: &Mutex<Vec<String>>,
) -> (String, BufReader<ChildStdout>) {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = stdout.read_line(&mut line).map(|_| line);
        let _ = sender.send((read, stdout));
    });
    match receiver.recv_timeout(READY_TIMEOUT) {
        Ok((Ok(line), stdout)) if !line.trim().is_empty() => (line, stdout),
        Ok((Ok(_), _)) => start_failed(child, stderr_tail, "stdout closed before the ready line"),
        Ok((Err(err), _)) => {
            start_failed(child, stderr_tail, &format!("reading stdout failed: {err}"))
        }
        Err(_) => start_failed(
            child,
            stderr_tail,
            &format!("no ready line within {READY_TIMEOUT:?}"),
        ),
    }
}

fn start_failed(child: &mut Child, stderr_tail: &Mutex<Vec<String>>, what: &str) -> ! {
    let _ = child.kill();
    let _ = child.wait();
    let tail = stderr_tail
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .join("\n");
    panic!("the interop server did not start: {what}; its stderr:\n{tail}");
}

fn control(method: http::Method, url: &str) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method(method)
        .uri(url)
        .body(Vec::new())
        .expect("a control request")
}

fn parse_control<T: for<'de> Deserialize<'de>>(response: &http::Response<Vec<u8>>) -> T {
    assert_eq!(
        response.status(),
        http::StatusCode::OK,
        "the control API failed"
    );
    serde_json::from_slice(response.body()).expect("the control API answers JSON")
}
