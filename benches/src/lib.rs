//! Benchmarks of runtrace against its peers; see `benches/` (run with `cargo bench -p runtrace-benches`).
//!
//! What the benches and profiling examples share: a runtrace exporter that
//! counts and drops spans, the timing loop of a criterion `iter_custom`, and
//! the `tracing` bench's cases ([`tracing_cases`]).

pub mod tracing_cases;

use runtrace::{ExportError, SpanData, SpanExporter};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A runtrace exporter that counts the spans it is given (in the shared
/// counter) and drops them.
#[derive(Debug, Default)]
pub struct Discard(pub Arc<AtomicU64>);

impl SpanExporter for Discard {
    fn export(&mut self, batch: &[SpanData], _deadline: Instant) -> Result<(), ExportError> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Runs `op` `iters` times and returns the elapsed time; adds `iters` to `count`
/// (criterion's warm-up calls this too, so `count` is every span the bench ended).
pub fn timed(count: &Cell<u64>, iters: u64, mut op: impl FnMut()) -> Duration {
    count.set(count.get() + iters);
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    start.elapsed()
}
