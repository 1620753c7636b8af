//! Reading a cached, valid token from 1, 2, 8 and 64 concurrent tokio tasks
//! (and threads, for the blocking authenticator).
//!
//! Time per iteration = wall time for every task to make one call; divide by
//! the task count for the cost of one call. Contenders:
//!
//! - `floor_load_full`: `ArcSwap::load_full` of an `Arc` token (the target's floor);
//! - `floor_load`: `ArcSwap::load` (a guard, no reference count);
//! - `floor_load_full_now`: `load_full` plus `Instant::now()` and an expiry
//!   check, the least a cache that honours expiry must do;
//! - `floor_authorize`: `load_full` plus the `Authorization` header copy into
//!   a request;
//! - `yup_oauth2`, `gcp_auth`: `token(&[scope])` on a primed authenticator;
//! - `ours_token`, `ours_authorize`, `ours_blocking`: service-auth.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use compare::floor::FloorToken;
use compare::harness::{self, BlockingRead, Read};
use compare::keys::{Alg, Key};
use compare::peers::{self, GcpAuth, YupAuth};
use compare::server::TokenServer;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
const TASKS: [usize; 4] = [1, 2, 8, 64];
const SCOPES: [&str; 1] = [compare::SCOPE];

struct LoadFull(ArcSwap<FloorToken>);

impl Read for LoadFull {
    type Local = ();
    async fn read(&self, _: &mut ()) {
        black_box(self.0.load_full());
    }
}

impl BlockingRead for LoadFull {
    type Local = ();
    fn read(&self, _: &mut ()) {
        black_box(self.0.load_full());
    }
}

struct Load(ArcSwap<FloorToken>);

impl Read for Load {
    type Local = ();
    async fn read(&self, _: &mut ()) {
        black_box(&**self.0.load());
    }
}

impl BlockingRead for Load {
    type Local = ();
    fn read(&self, _: &mut ()) {
        black_box(&**self.0.load());
    }
}

struct LoadFullNow(ArcSwap<FloorToken>);

impl Read for LoadFullNow {
    type Local = ();
    async fn read(&self, _: &mut ()) {
        let token = self.0.load_full();
        assert!(token.fresh(Instant::now()));
        black_box(token);
    }
}

struct AuthorizeFloor(ArcSwap<FloorToken>);

impl Read for AuthorizeFloor {
    type Local = http::Request<()>;
    async fn read(&self, request: &mut http::Request<()>) {
        let token = self.0.load_full();
        let mut value = http::HeaderValue::try_from(format!("Bearer {}", token.access_token))
            .expect("token is a header value");
        value.set_sensitive(true);
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
        black_box(request);
    }
}

struct Yup(YupAuth);

impl Read for Yup {
    type Local = ();
    async fn read(&self, _: &mut ()) {
        black_box(peers::yup_token(&self.0, &SCOPES).await);
    }
}

struct Gcp(GcpAuth);

impl Read for Gcp {
    type Local = ();
    async fn read(&self, _: &mut ()) {
        black_box(peers::gcp_token(&self.0, &SCOPES).await);
    }
}

fn floor_token() -> ArcSwap<FloorToken> {
    ArcSwap::from_pointee(FloorToken {
        access_token: "bench-token-000000000000".into(),
        expires_at: Instant::now() + Duration::from_secs(3600),
    })
}

fn cached_read(c: &mut Criterion) {
    let rt = compare::runtime();
    let server = TokenServer::start();
    let key = Key::generate(Alg::Rs256);

    let load_full = Arc::new(LoadFull(floor_token()));
    let load = Arc::new(Load(floor_token()));
    let load_full_now = Arc::new(LoadFullNow(floor_token()));
    let authorize_floor = Arc::new(AuthorizeFloor(floor_token()));
    let yup = Arc::new(Yup(rt.block_on(peers::yup(&key, &server.token_url()))));
    let gcp = Arc::new(Gcp(peers::gcp(&key, &server.token_url())));
    #[cfg(feature = "ours")]
    let ours = ours::Ours::new(&rt, &server, &key);

    // Prime every cache: one token request each, then none while measuring.
    rt.block_on(async {
        yup.read(&mut ()).await;
        gcp.read(&mut ()).await;
    });
    #[cfg(feature = "ours")]
    ours.prime(&rt);
    let primed = server.token_requests();

    let mut group = c.benchmark_group("cached_read_tasks");
    for n in TASKS {
        group.bench_function(BenchmarkId::new("floor_load_full", n), |b| {
            b.iter_custom(|iters| harness::tasks(&rt, &load_full, n, iters))
        });
        group.bench_function(BenchmarkId::new("floor_load", n), |b| {
            b.iter_custom(|iters| harness::tasks(&rt, &load, n, iters))
        });
        group.bench_function(BenchmarkId::new("floor_load_full_now", n), |b| {
            b.iter_custom(|iters| harness::tasks(&rt, &load_full_now, n, iters))
        });
        group.bench_function(BenchmarkId::new("floor_authorize", n), |b| {
            b.iter_custom(|iters| harness::tasks(&rt, &authorize_floor, n, iters))
        });
        group.bench_function(BenchmarkId::new("yup_oauth2", n), |b| {
            b.iter_custom(|iters| harness::tasks(&rt, &yup, n, iters))
        });
        group.bench_function(BenchmarkId::new("gcp_auth", n), |b| {
            b.iter_custom(|iters| harness::tasks(&rt, &gcp, n, iters))
        });
        #[cfg(feature = "ours")]
        ours.bench_tasks(&mut group, &rt, n);
    }
    group.finish();

    let mut group = c.benchmark_group("cached_read_threads");
    for n in TASKS {
        group.bench_function(BenchmarkId::new("floor_load_full", n), |b| {
            b.iter_custom(|iters| harness::threads(&*load_full, n, iters))
        });
        group.bench_function(BenchmarkId::new("floor_load", n), |b| {
            b.iter_custom(|iters| harness::threads(&*load, n, iters))
        });
        #[cfg(feature = "ours")]
        ours.bench_threads(&mut group, n);
    }
    group.finish();

    let during = server.token_requests() - primed;
    println!("cached_read: token requests while measuring: {during} (expected 0)");
    assert_eq!(server.rejected(), 0, "the token endpoint refused requests");
}

#[cfg(feature = "ours")]
mod ours {
    use std::hint::black_box;
    use std::sync::Arc;

    use compare::harness::{self, BlockingRead, Read};
    use compare::keys::Key;
    use compare::server::TokenServer;
    use criterion::measurement::WallTime;
    use criterion::{BenchmarkGroup, BenchmarkId};
    use service_auth::authenticator::Authenticator;
    use service_auth::blocking::BlockingAuthenticator;
    use tokio::runtime::Runtime;

    pub struct Token(Authenticator);

    impl Read for Token {
        type Local = ();
        async fn read(&self, _: &mut ()) {
            black_box(self.0.token().await.expect("token"));
        }
    }

    pub struct Authorize(Authenticator);

    impl Read for Authorize {
        type Local = http::Request<()>;
        async fn read(&self, request: &mut http::Request<()>) {
            black_box(self.0.authorize(request).await.expect("authorize"));
            black_box(request);
        }
    }

    pub struct Blocking(BlockingAuthenticator);

    impl BlockingRead for Blocking {
        type Local = ();
        fn read(&self, _: &mut ()) {
            black_box(self.0.token().expect("token"));
        }
    }

    pub struct Ours {
        token: Arc<Token>,
        authorize: Arc<Authorize>,
        blocking: Blocking,
    }

    impl Ours {
        pub fn new(rt: &Runtime, server: &TokenServer, key: &Key) -> Self {
            let auth = rt.block_on(async { compare::ours::authenticator(server, key) });
            Self {
                token: Arc::new(Token(auth.clone())),
                authorize: Arc::new(Authorize(auth)),
                blocking: Blocking(compare::ours::blocking_authenticator(server, key)),
            }
        }

        pub fn prime(&self, rt: &Runtime) {
            rt.block_on(self.token.read(&mut ()));
            self.blocking.read(&mut ());
        }

        pub fn bench_tasks(
            &self,
            group: &mut BenchmarkGroup<'_, WallTime>,
            rt: &Runtime,
            n: usize,
        ) {
            group.bench_function(BenchmarkId::new("ours_token", n), |b| {
                b.iter_custom(|iters| harness::tasks(rt, &self.token, n, iters))
            });
            group.bench_function(BenchmarkId::new("ours_authorize", n), |b| {
                b.iter_custom(|iters| harness::tasks(rt, &self.authorize, n, iters))
            });
        }

        pub fn bench_threads(&self, group: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
            group.bench_function(BenchmarkId::new("ours_blocking", n), |b| {
                b.iter_custom(|iters| harness::threads(&self.blocking, n, iters))
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = compare::criterion();
    targets = cached_read
}
criterion_main!(benches);
