//! Exporting: the [`SpanExporter`] trait, [`ExportError`], the deadline a
//! processor can bring forward ([`ExportCancel`]), and an [`InMemoryExporter`]
//! for tests. What exporters receive ([`SpanData`] and its parts) is
//! re-exported here from [`data`](crate::data), so an exporter imports from
//! one place.
//!
//! An exporter is called by one processor at a time (never concurrently) with a
//! batch of ended spans and the deadline by which it must return. It may retry
//! inside that deadline; past it, the processor counts the batch as failed.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use crate::data::{Event, Instrumentation, InstrumentationScope, Link, SpanData, SpanDetails};

/// Why an export did not (fully) succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportError {
    /// The deadline passed before the backend confirmed the batch.
    Timeout,
    /// The exporter was shut down.
    Shutdown,
    /// The backend accepted the batch except `rejected` spans.
    PartialSuccess {
        /// Spans the backend refused.
        rejected: u64,
        /// The backend's explanation.
        message: String,
    },
    /// The batch was delivered except `dropped` spans, each of which alone
    /// encodes above the exporter's request size limit (a huge attribute
    /// value, say): they are never sent.
    TooLarge {
        /// Spans dropped for their size.
        dropped: u64,
        /// The exporter's explanation, with the limit.
        message: String,
    },
    /// The batch was not delivered.
    Failed(String),
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Timeout => f.write_str("export timed out"),
            ExportError::Shutdown => f.write_str("exporter is shut down"),
            ExportError::PartialSuccess { rejected, message } => {
                write!(f, "backend rejected {rejected} spans: {message}")
            }
            ExportError::TooLarge { dropped, message } => {
                write!(f, "{dropped} spans too large to send: {message}")
            }
            ExportError::Failed(m) => write!(f, "export failed: {m}"),
        }
    }
}

impl std::error::Error for ExportError {}

/// A deadline that a processor can bring forward while an export is running.
///
/// The batch processor hands one to its exporter ([`SpanExporter::set_cancel`])
/// and, when a shutdown is requested, moves it to the shutdown's deadline, so an
/// exporter waiting between retries can give up in time for the processor to
/// account for every span. Clones share the same deadline.
///
/// ```
/// use std::time::{Duration, Instant};
/// let cancel = runtrace::ExportCancel::default();
/// let far = Instant::now() + Duration::from_secs(30);
/// assert_eq!(cancel.effective(far), far);
/// let soon = Instant::now() + Duration::from_millis(10);
/// cancel.cancel_at(soon);
/// assert!(cancel.effective(far) <= soon);
/// ```
#[derive(Clone, Debug)]
pub struct ExportCancel(Arc<AtomicU64>);

/// The stored value while no deadline was brought forward.
const NOT_CANCELLED: u64 = u64::MAX;

impl Default for ExportCancel {
    fn default() -> Self {
        ExportCancel(Arc::new(AtomicU64::new(NOT_CANCELLED)))
    }
}

/// The reference point for [`ExportCancel`] deadlines.
fn cancel_epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl ExportCancel {
    /// Brings the deadline forward to `deadline` (never pushes it back).
    pub fn cancel_at(&self, deadline: Instant) {
        let nanos = deadline
            .saturating_duration_since(cancel_epoch())
            .as_nanos()
            .min(u128::from(NOT_CANCELLED - 1)) as u64;
        self.0.fetch_min(nanos, Ordering::AcqRel);
    }

    /// The brought-forward deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        match self.0.load(Ordering::Acquire) {
            NOT_CANCELLED => None,
            n => Some(cancel_epoch() + Duration::from_nanos(n)),
        }
    }

    /// The earlier of `deadline` and the brought-forward deadline.
    pub fn effective(&self, deadline: Instant) -> Instant {
        self.deadline().map_or(deadline, |d| d.min(deadline))
    }
}

/// Sends batches of ended spans somewhere.
///
/// Processors never call `export` concurrently and always pass the deadline by
/// which it must return; an exporter that retries does so inside it.
pub trait SpanExporter: Send + fmt::Debug {
    /// Exports one batch.
    fn export(&mut self, batch: &[SpanData], deadline: Instant) -> Result<(), ExportError>;
    /// Sends anything the exporter itself buffers.
    fn force_flush(&mut self, _deadline: Instant) -> Result<(), ExportError> {
        Ok(())
    }
    /// Releases resources; later exports fail with [`ExportError::Shutdown`].
    fn shutdown(&mut self, _deadline: Instant) -> Result<(), ExportError> {
        Ok(())
    }
    /// Receives the processor's [`ExportCancel`] once, before the first export.
    /// An exporter that waits (retries, backoff) should stop waiting at
    /// `cancel.effective(deadline)`.
    fn set_cancel(&mut self, _cancel: ExportCancel) {}
}

impl<E: SpanExporter + ?Sized> SpanExporter for Box<E> {
    fn export(&mut self, batch: &[SpanData], deadline: Instant) -> Result<(), ExportError> {
        (**self).export(batch, deadline)
    }
    fn force_flush(&mut self, deadline: Instant) -> Result<(), ExportError> {
        (**self).force_flush(deadline)
    }
    fn shutdown(&mut self, deadline: Instant) -> Result<(), ExportError> {
        (**self).shutdown(deadline)
    }
    fn set_cancel(&mut self, cancel: ExportCancel) {
        (**self).set_cancel(cancel)
    }
}

/// Keeps exported spans in memory; clones share the same storage.
///
/// ```
/// use runtrace::{InMemoryExporter, TracerProvider};
/// let exporter = InMemoryExporter::default();
/// let provider = TracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// provider.tracer("test").span("work").start().end();
/// assert_eq!(exporter.finished_spans()[0].name, "work");
/// ```
#[derive(Clone, Debug, Default)]
pub struct InMemoryExporter {
    spans: Arc<Mutex<Vec<SpanData>>>,
    shut_down: Arc<std::sync::atomic::AtomicBool>,
}

impl InMemoryExporter {
    /// A copy of every span exported so far.
    pub fn finished_spans(&self) -> Vec<SpanData> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Forgets the spans exported so far.
    pub fn reset(&self) {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    /// Whether `shutdown` was called.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl SpanExporter for InMemoryExporter {
    fn export(&mut self, batch: &[SpanData], _deadline: Instant) -> Result<(), ExportError> {
        if self.is_shut_down() {
            return Err(ExportError::Shutdown);
        }
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(batch);
        Ok(())
    }
    fn shutdown(&mut self, _deadline: Instant) -> Result<(), ExportError> {
        self.shut_down
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }
}
