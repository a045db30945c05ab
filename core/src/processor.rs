//! Span processors: what happens to a span when it starts and ends.
//!
//! Processors run on the application thread inside `Span::end`, so they must be
//! quick and must not block. [`SimpleSpanProcessor`] exports each sampled span at
//! once (tests, debugging); the [`BatchSpanProcessor`] is for production: ended
//! spans go through a lock-free queue to one background thread that exports
//! them in batches.

pub mod batch;
pub(crate) mod recycle;
mod simple;
mod stats;

pub use batch::BatchSpanProcessor;
pub use simple::SimpleSpanProcessor;
pub use stats::ProcessorStats;

use crate::data::{SpanContext, SpanData};
use crate::export::ExportError;
use std::fmt;
use std::time::Instant;

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
