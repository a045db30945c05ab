//! Span processors: what happens to a span when it starts and ends.
//!
//! Processors run on the application thread inside `Span::end`, so they must be
//! quick and must not block. [`SimpleSpanProcessor`] exports each sampled span at
//! once (tests, debugging); the [`crate::BatchSpanProcessor`] is for production.

use crate::context::SpanContext;
use crate::diagnostics;
use crate::export::{ExportError, SpanData, SpanExporter};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a flush or shutdown did not fully succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushError {
    /// The deadline passed first; some spans may not have been exported.
    Timeout,
    /// Already shut down.
    AlreadyShutdown,
    /// The exporter reported an error.
    Export(ExportError),
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushError::Timeout => f.write_str("deadline passed before everything was exported"),
            FlushError::AlreadyShutdown => f.write_str("already shut down"),
            FlushError::Export(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FlushError {}

/// Receives spans as they start and end.
pub trait SpanProcessor: Send + Sync + fmt::Debug {
    /// Called when a recording span starts (on the starting thread).
    fn on_start(&self, _span: &SpanContext, _parent: Option<&SpanContext>) {}
    /// Called when a recording span ends (on the ending thread). Must not block.
    fn on_end(&self, span: SpanData);
    /// Exports everything ended before the call, returning by `deadline`.
    fn force_flush(&self, deadline: Instant) -> Result<(), FlushError>;
    /// Flushes, shuts the exporter down and releases resources, by `deadline`.
    fn shutdown(&self, deadline: Instant) -> Result<(), FlushError>;
    /// Counters, for processors that keep them.
    fn stats(&self) -> Option<ProcessorStats> {
        None
    }
}

/// Exports every sampled span synchronously when it ends.
///
/// Each `Span::end` waits for the exporter: use it in tests, not on hot paths.
#[derive(Debug)]
pub struct SimpleSpanProcessor {
    exporter: Mutex<Box<dyn SpanExporter>>,
    timeout: Duration,
    is_shutdown: AtomicBool,
}

impl SimpleSpanProcessor {
    /// Wraps an exporter; each export gets 30 s.
    pub fn new(exporter: impl SpanExporter + 'static) -> Self {
        SimpleSpanProcessor {
            exporter: Mutex::new(Box::new(exporter)),
            timeout: Duration::from_secs(30),
            is_shutdown: AtomicBool::new(false),
        }
    }
}

impl SpanProcessor for SimpleSpanProcessor {
    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() && !self.is_shutdown.load(Ordering::Relaxed) {
            let mut exporter = self.exporter.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = exporter.export(
                std::slice::from_ref(&span),
                crate::clock::deadline_after(self.timeout),
            ) {
                diagnostics::emit(diagnostics::Level::Error, &format!("simple processor: {e}"));
            }
        }
        crate::attribute::list_pool::give(span.attributes);
    }

    fn force_flush(&self, deadline: Instant) -> Result<(), FlushError> {
        let mut exporter = self.exporter.lock().unwrap_or_else(|e| e.into_inner());
        exporter.force_flush(deadline).map_err(FlushError::Export)
    }

    fn shutdown(&self, deadline: Instant) -> Result<(), FlushError> {
        if self.is_shutdown.swap(true, Ordering::AcqRel) {
            return Err(FlushError::AlreadyShutdown);
        }
        let mut exporter = self.exporter.lock().unwrap_or_else(|e| e.into_inner());
        exporter.shutdown(deadline).map_err(FlushError::Export)
    }
}

/// A processor's counters. They map onto the OpenTelemetry SDK self-metrics:
/// `otel.sdk.processor.span.processed` (exported, and the `dropped_*` fields with
/// `error.type` = `queue_full`, `already_shutdown`, `export_failed`, `rejected`),
/// `otel.sdk.processor.span.queue.size` and `otel.sdk.processor.span.queue.capacity`.
///
/// Invariant: every sampled span that ended is exported, dropped with one reason,
/// being exported, or still queued:
/// `spans_ended == spans_exported + dropped_total() + spans_in_flight + queue_size`
/// (exact when the processor is quiescent; a snapshot taken while spans move may
/// be off by the spans moving).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessorStats {
    /// Sampled spans that ended and reached the processor.
    pub spans_ended: u64,
    /// Spans accepted into the queue.
    pub spans_queued: u64,
    /// Spans the exporter confirmed (minus those the backend rejected).
    pub spans_exported: u64,
    /// Spans dropped because the queue was full (`error.type=queue_full`).
    pub dropped_queue_full: u64,
    /// Spans lost with a failed or timed-out export (`error.type=export_failed`).
    pub dropped_export_failed: u64,
    /// Spans the backend rejected in a partial success (`error.type=rejected`).
    pub dropped_rejected: u64,
    /// Spans ended after shutdown (`error.type=already_shutdown`).
    pub dropped_after_shutdown: u64,
    /// Spans inside an export that has not returned yet.
    pub spans_in_flight: u64,
    /// Batches exported successfully.
    pub batches_exported: u64,
    /// Export calls that failed or timed out.
    pub export_failures: u64,
    /// Spans waiting in the queue now: in the threads' lanes and the shared
    /// queue.
    pub queue_size: u64,
    /// Spans the queue can hold now: `max_queue_size` in the shared queue,
    /// plus the lanes made so far (see [`BatchConfig`](crate::BatchConfig)).
    pub queue_capacity: u64,
    /// The last export error, if any.
    pub last_export_error: Option<String>,
}

impl ProcessorStats {
    /// Sum of all the drop counters.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_export_failed
            + self.dropped_rejected
            + self.dropped_after_shutdown
    }

    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &ProcessorStats) {
        self.spans_ended += other.spans_ended;
        self.spans_queued += other.spans_queued;
        self.spans_exported += other.spans_exported;
        self.dropped_queue_full += other.dropped_queue_full;
        self.dropped_export_failed += other.dropped_export_failed;
        self.dropped_rejected += other.dropped_rejected;
        self.dropped_after_shutdown += other.dropped_after_shutdown;
        self.spans_in_flight += other.spans_in_flight;
        self.batches_exported += other.batches_exported;
        self.export_failures += other.export_failures;
        self.queue_size += other.queue_size;
        self.queue_capacity += other.queue_capacity;
        if other.last_export_error.is_some() {
            self.last_export_error.clone_from(&other.last_export_error);
        }
    }
}
