//! One client-credentials exchange over loopback HTTP (no server delay),
//! from 1 and 64 concurrent tasks (threads for the blocking clients).
//!
//! Time per iteration = wall time for every task to complete one exchange.
//! Beside it, the client's CPU time per exchange: process CPU minus the
//! token endpoint thread's, read around every sample (printed, and written to
//! `target/bench-extra/exchange.json`).
//!
//! Async contenders share one reqwest 0.13 client configuration:
//! `floor_reqwest` (a bare POST of the request, the response parsed into a
//! token), `oauth2` (oauth2 5.0's `exchange_client_credentials` through a
//! reqwest 0.13 adapter), `ours` (service-auth's client-credentials flow over
//! its reqwest transport). Blocking: `reqwest_blocking` (the same bare POST
//! with reqwest's blocking client, the baseline) and `ours_blocking`
//! (service-auth's flow over its ureq transport).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use compare::floor::{self, BareBlockingClientCredentials, BareClientCredentials};
use compare::harness::{self, BlockingRead, Read};
use compare::peers::{self, OAuth2Client, OAuth2Reqwest};
use compare::results::Recorder;
use compare::server::TokenServer;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const TASKS: [usize; 2] = [1, 64];

static RECORDER: Recorder = Recorder::new("exchange");

struct Floor(BareClientCredentials);

impl Read for Floor {
    type Local = ();
    async fn read(&self, _: &mut ()) {
        black_box(self.0.exchange().await);
    }
}

struct OAuth2(OAuth2Client, OAuth2Reqwest);

impl Read for OAuth2 {
    type Local = ();
    async fn read(&self, _: &mut ()) {
        black_box(peers::oauth2_exchange(&self.0, &self.1).await);
    }
}

struct BlockingFloor(BareBlockingClientCredentials);

/// A bare POST through ureq 3 (the library's blocking HTTP client), for
/// reference: what the blocking transport costs before the library adds
/// anything.
struct BareUreq {
    agent: ureq::Agent,
    url: String,
}

impl BlockingRead for BareUreq {
    type Local = ();
    fn read(&self, _: &mut ()) {
        let body = format!(
            "grant_type=client_credentials&scope={}",
            "https%3A%2F%2Fbench.invalid%2Fscope"
        );
        let mut response = self
            .agent
            .post(&self.url)
            .header(
                "authorization",
                floor::basic_auth(compare::CLIENT_ID, compare::CLIENT_SECRET),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .send(body)
            .expect("token request");
        let body = response
            .body_mut()
            .read_to_vec()
            .expect("token response body");
        black_box(body);
    }
}

impl BlockingRead for BlockingFloor {
    type Local = ();
    fn read(&self, _: &mut ()) {
        black_box(self.0.exchange());
    }
}

/// The client's CPU time so far: the process's minus the token endpoint's.
fn client_cpu(server: &TokenServer) -> Duration {
    compare::cpu::process().saturating_sub(server.cpu())
}

/// Benchmarks `reader` on `n` tasks, recording CPU time per exchange.
fn bench_tasks<R: Read>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    server: &TokenServer,
    name: &str,
    n: usize,
    reader: &Arc<R>,
) {
    let id = format!("exchange_tasks/{name}/{n}");
    group.bench_function(BenchmarkId::new(name, n), |b| {
        b.iter_custom(|iters| {
            let (cpu, connections) = (client_cpu(server), server.connections());
            let wall = harness::tasks(rt, reader, n, iters);
            let cpu = client_cpu(server).saturating_sub(cpu);
            let exchanges = (iters * n as u64) as f64;
            RECORDER.push(&id, "cpu", "ns/exchange", cpu.as_nanos() as f64 / exchanges);
            let connections = (server.connections() - connections) as f64;
            RECORDER.push(&id, "connections", "per exchange", connections / exchanges);
            wall
        })
    });
}

/// Benchmarks `reader` on `n` threads, recording CPU time per exchange.
fn bench_threads<R: BlockingRead>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    server: &TokenServer,
    name: &str,
    n: usize,
    reader: &R,
) {
    let id = format!("exchange_threads/{name}/{n}");
    group.bench_function(BenchmarkId::new(name, n), |b| {
        b.iter_custom(|iters| {
            let (cpu, connections) = (client_cpu(server), server.connections());
            let wall = harness::threads(reader, n, iters);
            let cpu = client_cpu(server).saturating_sub(cpu);
            let exchanges = (iters * n as u64) as f64;
            RECORDER.push(&id, "cpu", "ns/exchange", cpu.as_nanos() as f64 / exchanges);
            let connections = (server.connections() - connections) as f64;
            RECORDER.push(&id, "connections", "per exchange", connections / exchanges);
            wall
        })
    });
}

fn print_cpu(group: &str, names: &[&str], floor: &str, n: usize) {
    let floor_cpu = RECORDER
        .series(&format!("{group}/{floor}/{n}"), "cpu")
        .median();
    for name in names {
        let id = format!("{group}/{name}/{n}");
        if RECORDER.series(&id, "cpu").values.is_empty() {
            continue;
        }
        let cpu = RECORDER.series(&id, "cpu").median();
        let connections = RECORDER.series(&id, "connections").median();
        println!(
            "{id}: client CPU {:.1} µs/exchange, {:.3} × {floor}; {connections:.4} new connections/exchange",
            cpu / 1e3,
            cpu / floor_cpu
        );
    }
}

fn exchange(c: &mut Criterion) {
    let rt = compare::runtime();
    let server = TokenServer::start();
    let url = server.token_url();

    let floor = Arc::new(Floor(BareClientCredentials::new(
        floor::reqwest_client(),
        url.clone(),
    )));
    let oauth2 = Arc::new(OAuth2(
        peers::oauth2_client(&url),
        OAuth2Reqwest(floor::reqwest_client()),
    ));
    #[cfg(feature = "ours")]
    let ours = ours::Ours::new(&server);

    let names: &[&str] = if cfg!(feature = "ours") {
        &["floor_reqwest", "oauth2", "ours"]
    } else {
        &["floor_reqwest", "oauth2"]
    };
    let mut group = c.benchmark_group("exchange_tasks");
    for n in TASKS {
        bench_tasks(&mut group, &rt, &server, "floor_reqwest", n, &floor);
        bench_tasks(&mut group, &rt, &server, "oauth2", n, &oauth2);
        #[cfg(feature = "ours")]
        bench_tasks(&mut group, &rt, &server, "ours", n, &ours.reqwest);
    }
    group.finish();
    for n in TASKS {
        print_cpu("exchange_tasks", names, "floor_reqwest", n);
    }

    let blocking = BlockingFloor(BareBlockingClientCredentials::new(
        floor::reqwest_blocking_client(),
        url.clone(),
    ));
    let ureq = BareUreq {
        agent: ureq::Agent::new_with_defaults(),
        url: url.clone(),
    };
    // The same with a global timeout: ureq then resolves the host on a
    // thread of its own for every request, pooled connection or not.
    let ureq_timeout = BareUreq {
        agent: ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into(),
        url: url.clone(),
    };
    let names: &[&str] = if cfg!(feature = "ours") {
        &[
            "reqwest_blocking",
            "ureq_bare",
            "ureq_bare_timeout",
            "ours_blocking",
        ]
    } else {
        &["reqwest_blocking", "ureq_bare", "ureq_bare_timeout"]
    };
    let mut group = c.benchmark_group("exchange_threads");
    for n in TASKS {
        bench_threads(&mut group, &server, "reqwest_blocking", n, &blocking);
        bench_threads(&mut group, &server, "ureq_bare", n, &ureq);
        bench_threads(&mut group, &server, "ureq_bare_timeout", n, &ureq_timeout);
        #[cfg(feature = "ours")]
        bench_threads(&mut group, &server, "ours_blocking", n, &*ours.blocking);
    }
    group.finish();
    for n in TASKS {
        print_cpu("exchange_threads", names, "reqwest_blocking", n);
    }

    RECORDER.save();
    assert_eq!(server.rejected(), 0, "the token endpoint refused requests");
}

#[cfg(feature = "ours")]
mod ours {
    use std::hint::black_box;
    use std::sync::Arc;

    use compare::harness::{BlockingRead, Read};
    use compare::server::TokenServer;
    use service_auth::endpoint::{TokenEndpoint, UrlPolicy};
    use service_auth::flow::{ClientAuth, ClientCredentials, Grant, RequestOptions, TokenFlow};
    use service_auth::rng::Rng;
    use service_auth::secret::ClientSecret;
    use service_auth::time::{Clock, SystemClock};
    use service_auth::transport::reqwest::ReqwestTransport;
    use service_auth::transport::ureq::UreqTransport;
    use service_auth::transport::{BlockingTransport, Transport};

    /// The per-task random source the flow draws `jti`s from.
    pub struct LocalRng(Rng);

    impl Default for LocalRng {
        fn default() -> Self {
            Self(Rng::from_entropy())
        }
    }

    /// What both contenders exchange: client credentials with
    /// `client_secret_basic`, the floor's request.
    struct Exchange {
        grant: Grant,
        endpoint: TokenEndpoint,
        options: RequestOptions,
    }

    impl Exchange {
        fn new(server: &TokenServer) -> Self {
            let auth = ClientAuth::SecretBasic(ClientSecret::new(compare::CLIENT_SECRET));
            let grant = ClientCredentials::new(compare::CLIENT_ID, auth).scopes([compare::SCOPE]);
            // Invariant: the URL is the bench's loopback endpoint.
            let endpoint = TokenEndpoint::parse(
                &server.token_url(),
                UrlPolicy::dangerous_allow_http_loopback(),
            )
            .expect("token endpoint");
            Self {
                grant: Grant::from(grant),
                endpoint,
                options: RequestOptions::default(),
            }
        }

        fn start(
            &self,
            rng: &mut LocalRng,
        ) -> (
            service_auth::flow::AwaitingTokenResponse,
            http::Request<Vec<u8>>,
        ) {
            TokenFlow::new(&self.grant, &self.endpoint, &self.options)
                .start(SystemClock.now(), &mut rng.0)
                .expect("token request")
        }
    }

    /// Our client-credentials flow over our reqwest transport, on the
    /// floor's reqwest client configuration.
    pub struct Reqwest {
        exchange: Exchange,
        transport: ReqwestTransport,
    }

    impl Read for Reqwest {
        type Local = LocalRng;
        async fn read(&self, rng: &mut LocalRng) {
            let (awaiting, request) = self.exchange.start(rng);
            let response = self.transport.send(request).await.expect("token response");
            let token = awaiting
                .handle_response(response, SystemClock.now())
                .expect("token");
            black_box(token);
        }
    }

    /// Our client-credentials flow over our ureq transport.
    pub struct Blocking {
        exchange: Exchange,
        transport: UreqTransport,
    }

    impl BlockingRead for Blocking {
        type Local = LocalRng;
        fn read(&self, rng: &mut LocalRng) {
            let (awaiting, request) = self.exchange.start(rng);
            let response = self.transport.send(request).expect("token response");
            let token = awaiting
                .handle_response(response, SystemClock.now())
                .expect("token");
            black_box(token);
        }
    }

    pub struct Ours {
        pub reqwest: Arc<Reqwest>,
        pub blocking: Arc<Blocking>,
    }

    impl Ours {
        pub fn new(server: &TokenServer) -> Self {
            let transport = ReqwestTransport::from_client(compare::floor::reqwest_client())
                .dangerous_allow_http_loopback();
            // Invariant: the default ureq configuration builds.
            let ureq = UreqTransport::builder()
                .dangerous_allow_http_loopback()
                .build()
                .expect("ureq transport");
            Self {
                reqwest: Arc::new(Reqwest {
                    exchange: Exchange::new(server),
                    transport,
                }),
                blocking: Arc::new(Blocking {
                    exchange: Exchange::new(server),
                    transport: ureq,
                }),
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = compare::criterion();
    targets = exchange
}
criterion_main!(benches);
