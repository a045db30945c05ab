//! What the reentrancy tests share: a processor that only runs a function
//! when a span starts (each test file needs the global dispatcher, so each
//! is a process of its own).

use runtrace::{FlushError, SpanContext, SpanData, SpanProcessor};
use std::fmt;
use std::time::Instant;

/// Runs its function with each recording span's context as the span starts;
/// keeps nothing.
pub struct OnStart<F>(F);

impl<F: Fn(&SpanContext) + Send + Sync> OnStart<F> {
    /// Runs `f` at each start (a closure's argument type is inferred here).
    pub fn new(f: F) -> Self {
        OnStart(f)
    }
}

impl<F> fmt::Debug for OnStart<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnStart")
    }
}

impl<F: Fn(&SpanContext) + Send + Sync> SpanProcessor for OnStart<F> {
    fn on_start(&self, span: &SpanContext, _: Option<&SpanContext>) {
        (self.0)(span);
    }
    fn on_end(&self, _: SpanData) {}
    fn force_flush(&self, _: Instant) -> Result<(), FlushError> {
        Ok(())
    }
    fn shutdown(&self, _: Instant) -> Result<(), FlushError> {
        Ok(())
    }
}
