//! A batch processor with a huge queue costs memory only for the spans it
//! has held, not for its whole size up front (one test per binary: it reads
//! the process's resident memory).

use runtrace::config::MAX_QUEUE_SIZE;
use runtrace::{BatchConfig, InMemoryExporter, TracerProvider};

/// Resident memory of this process in bytes (Linux), `None` elsewhere.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn an_idle_provider_with_the_largest_queue_costs_little_memory() {
    let Some(before) = rss() else {
        return;
    };
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_batch_config(
            BatchConfig::builder()
                .with_max_queue_size(MAX_QUEUE_SIZE)
                .build(),
        )
        .with_batch_exporter(exporter.clone())
        .build();
    let idle = rss().unwrap();
    provider.tracer("t").span("one").start().end();
    provider.force_flush().unwrap();
    let after_a_span = rss().unwrap();
    assert_eq!(exporter.finished_spans().len(), 1);
    // The shared queue and the first lane reserve about 400 MiB for 2^21
    // spans; 32 MiB is far above what the processor's thread, its structures
    // and one span touch, and far below any part of that.
    const SLACK: u64 = 32 << 20;
    assert!(
        idle.saturating_sub(before) < SLACK,
        "an idle provider took {} MiB",
        (idle - before) >> 20
    );
    assert!(
        after_a_span.saturating_sub(before) < SLACK,
        "a provider with one span took {} MiB",
        (after_a_span - before) >> 20
    );
    provider.shutdown().unwrap();
}
