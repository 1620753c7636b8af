//! A delay that any async runtime can wait on.
//!
//! The core depends on no runtime, so [`Sleep`] keeps its own timer: a
//! thread that sleeps for the delay, then marks the timer done and wakes the
//! task with the latest waker it was given. One thread per delay is fine for
//! a test double; a dropped `Sleep` leaves its thread to finish sleeping.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

/// A future that completes `duration` after it is first polled.
#[derive(Debug)]
pub(super) struct Sleep {
    duration: Duration,
    timer: Option<Arc<Mutex<Timer>>>,
}

#[derive(Debug)]
struct Timer {
    done: bool,
    waker: Option<Waker>,
}

impl Sleep {
    pub(super) fn new(duration: Duration) -> Self {
        Self {
            duration,
            timer: None,
        }
    }

    /// Starts the timer thread, which will wake `waker`.
    fn start(&mut self, waker: &Waker) -> io::Result<()> {
        let timer = Arc::new(Mutex::new(Timer {
            done: false,
            waker: Some(waker.clone()),
        }));
        let shared = Arc::clone(&timer);
        let duration = self.duration;
        thread::Builder::new()
            .name("mock-delay".into())
            .spawn(move || {
                thread::sleep(duration);
                let waker = {
                    let mut timer = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    timer.done = true;
                    timer.waker.take()
                };
                // Woken outside the lock, so that a waker polling inline
                // cannot deadlock on it.
                if let Some(waker) = waker {
                    waker.wake();
                }
            })?;
        self.timer = Some(timer);
        Ok(())
    }
}

impl Future for Sleep {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(timer) = &this.timer else {
            if this.duration.is_zero() {
                return Poll::Ready(Ok(()));
            }
            return match this.start(cx.waker()) {
                Ok(()) => Poll::Pending,
                Err(error) => Poll::Ready(Err(error)),
            };
        };
        let mut timer = timer.lock().unwrap_or_else(PoisonError::into_inner);
        if timer.done {
            return Poll::Ready(Ok(()));
        }
        // The task may have moved to another waker since the last poll.
        match &mut timer.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// Counts wake-ups and unparks the test thread.
    struct Unpark {
        thread: thread::Thread,
        wakes: AtomicUsize,
    }

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
            self.thread.unpark();
        }
    }

    /// Polls `future` to completion on this thread, parking between polls.
    fn block_on<F: Future>(future: F) -> (F::Output, usize) {
        let unpark = Arc::new(Unpark {
            thread: thread::current(),
            wakes: AtomicUsize::new(0),
        });
        let waker = Waker::from(Arc::clone(&unpark));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return (output, unpark.wakes.load(Ordering::SeqCst));
            }
            thread::park();
        }
    }

    #[test]
    fn completes_and_wakes_once() {
        let (output, wakes) = block_on(Sleep::new(Duration::from_millis(5)));
        assert!(output.is_ok());
        assert_eq!(wakes, 1);
    }

    #[test]
    fn zero_completes_at_once() {
        let (output, wakes) = block_on(Sleep::new(Duration::ZERO));
        assert!(output.is_ok());
        assert_eq!(wakes, 0);
    }
}
