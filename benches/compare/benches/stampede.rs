//! Stampede: 1000 callers ask for a token at once, on an expired token and on
//! a cold cache (nothing fetched yet), with the token endpoint answering after
//! 0, 20 or 100 ms.
//!
//! Measured per run: the wall time from the first spawn until every caller
//! holds a token (criterion's timing), and the token requests the endpoint
//! received (printed, and written to `target/bench-extra/stampede.json`).
//! Every run uses a fresh instance of the contender, set up untimed: for
//! `expired`, primed with a token its own rules already consider expired
//! (yup-oauth2: `expires_in` 60 against its 1-minute margin; gcp_auth: 20
//! against its 20 s; the floor: 60 against its 60 s).
//!
//! Contenders: `floor` (the hand-written single-flight cache, fetching with
//! the same RS256 jwt-bearer request the peers send), `yup_oauth2`,
//! `gcp_auth`, `ours`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compare::floor::{JwtBearerFetch, SingleFlight};
use compare::keys::{Alg, Key};
use compare::peers::{self, GcpAuth, YupAuth};
use compare::results::Recorder;
use compare::server::TokenServer;
use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const CALLERS: usize = 1000;
const DELAYS_MS: [u64; 3] = [0, 20, 100];
const SCOPES: [&str; 1] = [compare::SCOPE];

static RECORDER: Recorder = Recorder::new("stampede");

/// The state a run starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// A token is cached and expired by the contender's own rules.
    Expired,
    /// Nothing is cached.
    Cold,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Cold => "cold",
        }
    }
}

/// One contender of the stampede.
trait Contender: Send + Sync + Sized + 'static {
    /// Its name in the results.
    const NAME: &'static str;
    /// The `expires_in` that its rules consider expired on arrival.
    const EXPIRED_EXPIRES_IN: u64;
    /// A fresh instance talking to `server`.
    fn build(server: &TokenServer, key: &Key) -> impl Future<Output = Self> + Send;
    /// One `token()` call.
    fn call(&self) -> impl Future<Output = ()> + Send;
    /// Brings the instance into `Expired` (called with the server set to
    /// answer with `EXPIRED_EXPIRES_IN`).
    fn expire(&self) -> impl Future<Output = ()> + Send {
        self.call()
    }
}

struct Floor(SingleFlight<JwtBearerFetch>);

impl Contender for Floor {
    const NAME: &'static str = "floor";
    const EXPIRED_EXPIRES_IN: u64 = 60;
    async fn build(server: &TokenServer, key: &Key) -> Self {
        let client = compare::floor::reqwest_client();
        Self(SingleFlight::new(JwtBearerFetch::new(
            client,
            server.token_url(),
            key,
        )))
    }
    async fn call(&self) {
        std::hint::black_box(self.0.token().await);
    }
}

struct Yup(YupAuth);

impl Contender for Yup {
    const NAME: &'static str = "yup_oauth2";
    const EXPIRED_EXPIRES_IN: u64 = 60;
    async fn build(server: &TokenServer, key: &Key) -> Self {
        Self(peers::yup(key, &server.token_url()).await)
    }
    async fn call(&self) {
        std::hint::black_box(peers::yup_token(&self.0, &SCOPES).await);
    }
}

struct Gcp(GcpAuth);

impl Contender for Gcp {
    const NAME: &'static str = "gcp_auth";
    const EXPIRED_EXPIRES_IN: u64 = 20;
    async fn build(server: &TokenServer, key: &Key) -> Self {
        Self(peers::gcp(key, &server.token_url()))
    }
    async fn call(&self) {
        std::hint::black_box(peers::gcp_token(&self.0, &SCOPES).await);
    }
}

/// One stampede run: untimed setup, then the timed 1000 callers.
fn run<C: Contender>(
    rt: &Runtime,
    server: &TokenServer,
    key: &Key,
    scenario: Scenario,
    delay: Duration,
) -> (Duration, u64) {
    rt.block_on(async {
        server.set_delay(Duration::ZERO);
        let contender = Arc::new(C::build(server, key).await);
        if scenario == Scenario::Expired {
            server.set_expires_in(C::EXPIRED_EXPIRES_IN);
            contender.expire().await;
        }
        server.set_expires_in(3600);
        server.set_delay(delay);
        let before = server.token_requests();

        let start = Instant::now();
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let contender = contender.clone();
                tokio::spawn(async move { contender.call().await })
            })
            .collect();
        for caller in callers {
            // Invariant: callers panic only when the bench is broken.
            caller.await.expect("caller");
        }
        let elapsed = start.elapsed();

        let requests = server.token_requests() - before;
        server.set_delay(Duration::ZERO);
        (elapsed, requests)
    })
}

fn bench_contender<C: Contender>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    server: &TokenServer,
    key: &Key,
    scenario: Scenario,
    delay_ms: u64,
) {
    let id = format!("stampede_{}/{}/{delay_ms}", scenario.name(), C::NAME);
    group.bench_function(BenchmarkId::new(C::NAME, delay_ms), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (elapsed, requests) =
                    run::<C>(rt, server, key, scenario, Duration::from_millis(delay_ms));
                total += elapsed;
                RECORDER.push(&id, "requests", "token requests", requests as f64);
                RECORDER.push(&id, "time", "ms", elapsed.as_secs_f64() * 1e3);
            }
            total
        })
    });
    let requests = RECORDER.series(&id, "requests");
    println!(
        "{id}: token requests per run: median {} min {} max {} over {} runs",
        requests.median(),
        requests.min(),
        requests.max(),
        requests.values.len()
    );
}

fn stampede(c: &mut Criterion) {
    let rt = compare::runtime();
    let server = TokenServer::start();
    let key = Key::generate(Alg::Rs256);
    for scenario in [Scenario::Expired, Scenario::Cold] {
        let mut group = c.benchmark_group(format!("stampede_{}", scenario.name()));
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_secs(1));
        for delay_ms in DELAYS_MS {
            bench_contender::<Floor>(&mut group, &rt, &server, &key, scenario, delay_ms);
            bench_contender::<Yup>(&mut group, &rt, &server, &key, scenario, delay_ms);
            bench_contender::<Gcp>(&mut group, &rt, &server, &key, scenario, delay_ms);
            #[cfg(feature = "ours")]
            ours::bench(&mut group, &rt, &server, &key, scenario, delay_ms);
        }
        group.finish();
    }
    #[cfg(feature = "ours")]
    ours::timed_scenarios(&rt, &server, &key);
    RECORDER.save();
    let mut single_flight = vec!["floor"];
    if cfg!(feature = "ours") {
        single_flight.push("ours");
    }
    for delay_ms in DELAYS_MS {
        for scenario in ["expired", "cold"] {
            for name in &single_flight {
                let id = format!("stampede_{scenario}/{name}/{delay_ms}");
                let requests = RECORDER.series(&id, "requests");
                assert!(
                    requests.values.iter().all(|&r| r == 1.0),
                    "{id}: a single-flight contender sent {:?} requests",
                    requests.values
                );
            }
        }
    }
    assert_eq!(server.rejected(), 0, "the token endpoint refused requests");
}

#[cfg(feature = "ours")]
mod ours {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use compare::keys::Key;
    use compare::results::quantile;
    use compare::server::TokenServer;
    use criterion::BenchmarkGroup;
    use criterion::measurement::WallTime;
    use service_auth::authenticator::Authenticator;
    use tokio::runtime::Runtime;

    use super::{CALLERS, Contender, RECORDER, Scenario};

    /// service-auth with its defaults except background refresh, which is
    /// off so that the callers, not the background task, meet the cold or
    /// expired token (with it on, a new authenticator starts fetching when
    /// built and refetches right after `invalidate`, before any caller
    /// arrives). Its `expired` state is reached with `invalidate`, which
    /// leaves the manager where expiry does (no servable token, the next
    /// caller fetches); `real_expiry` below checks the same with a token
    /// that really expired.
    pub struct Ours(Authenticator);

    impl Contender for Ours {
        const NAME: &'static str = "ours";
        const EXPIRED_EXPIRES_IN: u64 = 3600;
        async fn build(server: &TokenServer, key: &Key) -> Self {
            let auth = compare::ours::builder(server, key)
                .background_refresh(false)
                .build(compare::ours::reqwest_transport())
                .expect("authenticator");
            Self(auth)
        }
        async fn call(&self) {
            black_box(self.0.token().await.expect("token"));
        }
        async fn expire(&self) {
            let token = self.0.token().await.expect("token");
            self.0.invalidate(token.generation());
        }
    }

    pub fn bench(
        group: &mut BenchmarkGroup<'_, WallTime>,
        rt: &Runtime,
        server: &TokenServer,
        key: &Key,
        scenario: Scenario,
        delay_ms: u64,
    ) {
        super::bench_contender::<Ours>(group, rt, server, key, scenario, delay_ms);
    }

    /// 1000 callers at once; each caller's latency from the common start.
    async fn callers(auth: &Authenticator) -> Vec<Duration> {
        let start = Instant::now();
        let tasks: Vec<_> = (0..CALLERS)
            .map(|_| {
                let auth = auth.clone();
                tokio::spawn(async move {
                    black_box(auth.token().await.expect("token"));
                    start.elapsed()
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(CALLERS);
        for task in tasks {
            latencies.push(task.await.expect("caller"));
        }
        latencies
    }

    const RUNS: usize = 5;

    /// Runs outside criterion (each needs seconds of real waiting):
    ///
    /// - `refresh_ahead`: a token inside its refresh window but still
    ///   valid, 100 ms server delay: every caller must get the valid token
    ///   at once while one refresh runs (slowest caller ≪ 100 ms);
    /// - `real_expiry`: a token that really expired (lifetime 1 s, waited
    ///   out), 20 ms server delay: exactly one request.
    pub fn timed_scenarios(rt: &Runtime, server: &TokenServer, key: &Key) {
        rt.block_on(async {
            for _ in 0..RUNS {
                // Lifetime 4 s: refresh due at 2 s, served until 3.6 s.
                let auth = compare::ours::builder(server, key)
                    .background_refresh(false)
                    .build(compare::ours::reqwest_transport())
                    .expect("authenticator");
                server.set_delay(Duration::ZERO);
                server.set_expires_in(4);
                auth.token().await.expect("prime");
                tokio::time::sleep(Duration::from_millis(2300)).await;
                server.set_expires_in(3600);
                server.set_delay(Duration::from_millis(100));
                let before = server.token_requests();
                let latencies = callers(&auth).await;
                // Let the refresh that the first caller started complete.
                tokio::time::sleep(Duration::from_millis(300)).await;
                let requests = server.token_requests() - before;
                let max = latencies.iter().max().copied().unwrap_or_default();
                let id = "stampede_refresh_ahead/ours/100";
                RECORDER.push(id, "requests", "token requests", requests as f64);
                RECORDER.push(id, "max_latency", "ms", max.as_secs_f64() * 1e3);
            }
            for _ in 0..RUNS {
                // Lifetime 1 s: served until 0.9 s.
                let auth = compare::ours::builder(server, key)
                    .background_refresh(false)
                    .build(compare::ours::reqwest_transport())
                    .expect("authenticator");
                server.set_delay(Duration::ZERO);
                server.set_expires_in(1);
                auth.token().await.expect("prime");
                tokio::time::sleep(Duration::from_millis(1000)).await;
                server.set_expires_in(3600);
                server.set_delay(Duration::from_millis(20));
                let before = server.token_requests();
                let latencies = callers(&auth).await;
                let requests = server.token_requests() - before;
                let max = latencies.iter().max().copied().unwrap_or_default();
                let id = "stampede_real_expiry/ours/20";
                RECORDER.push(id, "requests", "token requests", requests as f64);
                RECORDER.push(id, "time", "ms", max.as_secs_f64() * 1e3);
            }
            server.set_delay(Duration::ZERO);
        });
        for (id, metric) in [
            ("stampede_refresh_ahead/ours/100", "max_latency"),
            ("stampede_real_expiry/ours/20", "time"),
        ] {
            let requests = RECORDER.series(id, "requests");
            let times = RECORDER.series(id, metric);
            println!(
                "{id}: token requests per run {:?}; {metric} median {:.3} ms (max {:.3} ms)",
                requests.values,
                quantile(&times.values, 0.5),
                times.max()
            );
        }
    }
}

criterion_group! {
    name = benches;
    config = compare::criterion();
    targets = stampede
}
criterion_main!(benches);
