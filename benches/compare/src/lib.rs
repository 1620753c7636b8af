//! Shared parts of the comparison benchmarks: the local token endpoint, key
//! generation, the floors, CPU clocks and the result files the report reads.
//!
//! Nothing here is part of `service-auth`; it exists so that every contender
//! of a benchmark group is measured against the same server, the same keys and
//! the same request in the same run.

pub mod cpu;
pub mod floor;
pub mod harness;
pub mod keys;
#[cfg(feature = "ours")]
pub mod ours;
pub mod peers;
pub mod results;
pub mod server;

use std::time::Duration;

use criterion::Criterion;

/// The scope every contender asks for.
pub const SCOPE: &str = "https://bench.invalid/scope";

/// The client id of the client-credentials contenders.
pub const CLIENT_ID: &str = "bench-client";

/// The client secret of the client-credentials contenders.
pub const CLIENT_SECRET: &str = "bench-secret";

/// The service user (`iss`/`sub`) of the private key JWT contenders.
pub const SERVICE_USER: &str = "bench-user@bench.invalid";

/// A tokio runtime like a service's: multi-threaded, one worker per core.
pub fn runtime() -> tokio::runtime::Runtime {
    // Invariant: building a runtime fails only when the OS refuses threads,
    // and then no benchmark can run.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Criterion settings that keep the whole suite within minutes on 2 cores.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
        .configure_from_args()
}
