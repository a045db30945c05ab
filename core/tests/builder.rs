//! The provider builder is order-free and starts nothing before `build`.
//!
//! One test in this binary, so that no other test's batch thread is counted.

use runtrace::{BatchConfig, ExportError, SpanData, SpanExporter, TracerProvider};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{batch_threads, wait_for};

/// Counts its live copies, so a test sees when the builder drops it.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Counted(live.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SpanExporter for Counted {
    fn export(&mut self, _: &[SpanData], _: Instant) -> Result<(), ExportError> {
        Ok(())
    }
}

/// Waits until `batch_threads() == n`: a new thread names itself once it
/// runs, and a shut-down worker exits after `shutdown` returns. The 10 s
/// bound is slack for a loaded machine; it takes microseconds.
fn batch_threads_become(n: usize) -> bool {
    wait_for(|| batch_threads() == n, Duration::from_secs(10))
}

fn queue(n: usize) -> BatchConfig {
    BatchConfig::builder().with_max_queue_size(n).build()
}

#[test]
fn builder_is_order_free_and_starts_nothing_before_build() {
    let on_linux = cfg!(target_os = "linux");
    let live = Arc::new(AtomicUsize::new(0));

    // The batch config is honoured whether it comes before or after the exporter.
    let before = TracerProvider::builder()
        .with_batch_config(queue(4096))
        .with_batch_exporter(Counted::new(&live));
    let after = TracerProvider::builder()
        .with_batch_exporter(Counted::new(&live))
        .with_batch_config(queue(4096));
    if on_linux {
        assert_eq!(batch_threads(), 0, "a builder started a thread");
    }
    let (before, after) = (before.build(), after.build());
    if on_linux {
        assert!(batch_threads_become(2), "{} batch threads", batch_threads());
    }
    let default = TracerProvider::builder()
        .with_batch_exporter(Counted::new(&live))
        .build();
    assert_eq!(
        before.stats().queue_capacity,
        after.stats().queue_capacity,
        "with_batch_config after with_batch_exporter was ignored"
    );
    assert!(after.stats().queue_capacity > default.stats().queue_capacity);
    for p in [before, after, default] {
        p.shutdown().unwrap();
    }
    assert_eq!(live.load(Ordering::SeqCst), 0);

    // Disabled anywhere in the chain: a no-op provider, no thread, exporters dropped.
    let disabled_first = TracerProvider::builder()
        .with_disabled(true)
        .with_batch_exporter(Counted::new(&live))
        .build();
    let disabled_last = TracerProvider::builder()
        .with_batch_exporter(Counted::new(&live))
        .with_batch_config(queue(4096))
        .with_disabled(true)
        .build();
    assert!(!disabled_first.is_enabled() && !disabled_last.is_enabled());
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "a disabled build kept an exporter"
    );
    if on_linux {
        // Shut-down workers exit, and the disabled builds started none.
        assert!(batch_threads_become(0), "{} batch threads", batch_threads());
    }

    // `with_disabled(false)` undoes an earlier `true`.
    let enabled_again = TracerProvider::builder()
        .with_disabled(true)
        .with_batch_exporter(Counted::new(&live))
        .with_disabled(false)
        .build();
    assert!(enabled_again.is_enabled());
    enabled_again.shutdown().unwrap();
}
