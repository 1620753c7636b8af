//! Running one operation from N tasks or N threads at once, for
//! `Bencher::iter_custom`.
//!
//! Each of the N tasks (threads) performs the operation `iters` times; the
//! returned wall time covers all of them, so criterion's time per iteration
//! is the time for N concurrent calls (one per task). Divide by N for the
//! throughput cost of one call.

use std::future::Future;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

/// An operation read from many tasks at once.
pub trait Read: Send + Sync + 'static {
    /// Per-task scratch state (a request to set a header on, say).
    type Local: Default + Send;

    /// One call.
    fn read(&self, local: &mut Self::Local) -> impl Future<Output = ()> + Send;
}

/// Runs `iters` calls on each of `tasks` tokio tasks; the wall time.
pub fn tasks<R: Read>(rt: &Runtime, reader: &Arc<R>, tasks: usize, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let reader = reader.clone();
                tokio::spawn(async move {
                    let mut local = R::Local::default();
                    for _ in 0..iters {
                        reader.read(&mut local).await;
                    }
                })
            })
            .collect();
        for handle in handles {
            // Invariant: the readers do not panic (they would fail the bench).
            handle.await.expect("reader task");
        }
        start.elapsed()
    })
}

/// An operation called from many threads at once.
pub trait BlockingRead: Send + Sync {
    /// Per-thread scratch state.
    type Local: Default;

    /// One call.
    fn read(&self, local: &mut Self::Local);
}

/// Runs `iters` calls on each of `threads` threads, started together; the
/// wall time from the common start until the last thread is done.
pub fn threads<R: BlockingRead>(reader: &R, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut local = R::Local::default();
                    barrier.wait();
                    for _ in 0..iters {
                        reader.read(&mut local);
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for handle in handles {
            // Invariant: as in `tasks`.
            handle.join().expect("reader thread");
        }
        start.elapsed()
    })
}
