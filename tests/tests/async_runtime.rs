//! Flush and shutdown do not depend on the caller's thread or runtime: called
//! from inside a single-threaded tokio runtime, they return by their deadline
//! (opentelemetry-rust's deadlock in this situation is what this guards against).

use runtrace::{
    BatchConfig, ExportError, InMemoryExporter, SpanData, SpanExporter, TracerProvider,
};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Hangs;

impl SpanExporter for Hangs {
    fn export(&mut self, _: &[SpanData], _: Instant) -> Result<(), ExportError> {
        std::thread::sleep(Duration::from_secs(3600));
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn flush_and_shutdown_inside_current_thread_runtime() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_batch_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("async");
    for _ in 0..100 {
        tracer.span("task").start().end();
        tokio::task::yield_now().await;
    }
    provider
        .force_flush_with_timeout(Duration::from_secs(5))
        .unwrap();
    assert_eq!(exporter.finished_spans().len(), 100);
    let start = Instant::now();
    provider
        .shutdown_with_timeout(Duration::from_secs(5))
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "current_thread")]
async fn deadlines_hold_inside_current_thread_runtime_with_a_hung_exporter() {
    let provider = TracerProvider::builder()
        .with_batch_config(BatchConfig::builder().with_max_export_batch_size(1).build())
        .with_batch_exporter(Hangs)
        .build();
    provider.tracer("async").span("stuck").start().end();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    assert!(provider
        .force_flush_with_timeout(Duration::from_millis(300))
        .is_err());
    assert!(provider
        .shutdown_with_timeout(Duration::from_millis(300))
        .is_err());
    // 300 + 300 ms of timeouts, 2.4 s of slack; the exporter hangs for good.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}
