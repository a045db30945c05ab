//! [`SimpleSpanProcessor`]: exports each span as it ends, on the ending thread.

use super::{recycle, FlushError, SpanProcessor};
use crate::data::SpanData;
use crate::diagnostics;
use crate::export::SpanExporter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
        recycle::give_list(span.attributes);
        if let Some(details) = span.details {
            recycle::give_details(details);
        }
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
