//! Shutdown racing live producers: every span ended before or during the
//! shutdown is exported or counted as dropped, nothing stays queued, and the
//! pipeline is freed once its handles and the threads that used it are gone.
//!
//! The race it looks for is narrow (a producer that read "not shut down" and
//! is preempted before its push lands after the worker's last look), so it is
//! run for many rounds, with more producer threads than the 2 CPUs of CI so
//! that producers are preempted mid-push.

use runtrace::{BatchConfig, ExportError, Resource, SpanData, SpanExporter, TracerProvider};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Counts what it exports and remembers the resource of the spans (weakly),
/// to check afterwards that nothing of the pipeline is left.
#[derive(Clone, Debug, Default)]
struct Counting {
    exported: Arc<AtomicU64>,
    resource: Arc<Mutex<Option<Weak<Resource>>>>,
}

impl SpanExporter for Counting {
    fn export(&mut self, batch: &[SpanData], _: Instant) -> Result<(), ExportError> {
        if let Some(span) = batch.first() {
            let mut resource = self.resource.lock().unwrap();
            resource.get_or_insert_with(|| Arc::downgrade(span.instrumentation.resource()));
        }
        self.exported
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

const PRODUCERS: usize = 4;

/// One round: producers end spans until the shutdown has returned, then every
/// span they ended is accounted for and the pipeline is gone.
fn round(round: usize) {
    let exporter = Counting::default();
    let provider = TracerProvider::builder()
        .with_batch_config(
            BatchConfig::builder()
                .with_max_queue_size(256)
                .with_max_export_batch_size(32)
                .with_scheduled_delay(Duration::from_secs(3600))
                .build(),
        )
        .with_batch_exporter(exporter.clone())
        .build();
    let stop = Arc::new(AtomicBool::new(false));
    let ended = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let tracer = provider.tracer("race");
            let (stop, ended) = (stop.clone(), ended.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    tracer.span("s").start().end();
                    n += 1;
                }
                ended.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    // Let every producer get going, then shut down under them.
    while ended.load(Ordering::Relaxed) == 0 && provider.stats().spans_ended < 64 {
        std::thread::yield_now();
    }
    provider
        .shutdown_with_timeout(Duration::from_secs(30))
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.join().unwrap();
    }
    let s = provider.stats();
    let ended = ended.load(Ordering::Relaxed);
    assert_eq!(
        s.queue_size, 0,
        "round {round}: spans stranded in the queue: {s:?}"
    );
    assert_eq!(s.spans_ended, ended, "round {round}: {s:?}");
    assert_eq!(s.spans_started, ended, "round {round}: {s:?}");
    assert_eq!(
        s.spans_exported + s.dropped_total() + s.spans_in_flight,
        ended,
        "round {round}: {s:?}"
    );
    assert_eq!(s.spans_in_flight, 0, "round {round}: {s:?}");
    assert_eq!(
        s.spans_exported,
        exporter.exported.load(Ordering::Relaxed),
        "round {round}"
    );
    drop(provider);
    let resource = exporter.resource.lock().unwrap().take();
    if let Some(resource) = resource {
        assert!(
            resource.upgrade().is_none(),
            "round {round}: the pipeline outlived its provider and threads"
        );
    }
}

#[test]
fn shutdown_racing_producers_strands_no_span_and_frees_the_pipeline() {
    for r in 0..300 {
        round(r);
    }
}
