//! Capturing the library's logs in a test, reliably, while other tests of
//! the same binary run on other threads.
//!
//! `tracing` keeps one global "most verbose level any subscriber wants",
//! recomputed whenever a scoped subscriber comes or goes. A test thread that
//! drops its scoped subscriber while another is logging can make that level
//! drop to "off" for a moment, and the other thread's events are skipped
//! before any subscriber sees them. A global subscriber that wants TRACE
//! (and writes nowhere) keeps the level up for the whole binary.

use std::io::Write;
use std::sync::{Arc, Mutex, Once};

/// Formatted tracing output at every level, from the threads where
/// [`subscriber`](Self::subscriber) is the default.
#[derive(Clone)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// An empty capture; makes sure the binary's log level stays at TRACE.
    pub fn new() -> Self {
        static GLOBAL_TRACE: Once = Once::new();
        GLOBAL_TRACE.call_once(|| {
            let sink = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(std::io::sink)
                .finish();
            // Another global subscriber, if one was set first, keeps the
            // level up just as well.
            let _ = tracing::subscriber::set_global_default(sink);
        });
        Self(Arc::default())
    }

    /// A subscriber that writes every event, at every level, into this capture.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let logs = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || logs.clone())
            .finish()
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
