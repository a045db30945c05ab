//! `runtrace::global`: one test, since the global provider is process-wide.

use runtrace::export::{ExportError, SpanExporter};
use runtrace::{global, InMemoryExporter, SpanData, TracerProvider};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Discards spans; when dropped (its provider freed), takes a global tracer,
/// as exporter code may, and raises its flag.
#[derive(Debug)]
struct FlagOnDrop(Arc<AtomicBool>);

impl SpanExporter for FlagOnDrop {
    fn export(&mut self, _batch: &[SpanData], _deadline: Instant) -> Result<(), ExportError> {
        Ok(())
    }
}

impl Drop for FlagOnDrop {
    fn drop(&mut self) {
        drop(global::tracer("from a drop"));
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn global_tracers_follow_the_provider_set_when_they_are_taken() {
    // Before any provider is set: a no-op tracer.
    let early = global::tracer("lib");
    assert!(!early.is_enabled());
    assert!(!global::tracer_provider().is_enabled());

    let first = InMemoryExporter::default();
    let previous = global::set_tracer_provider(
        TracerProvider::builder()
            .with_simple_exporter(first.clone())
            .build(),
    );
    assert!(previous.is_none());
    // Documented: a tracer taken before the provider was set stays a no-op.
    early.span("lost").start().end();
    // Taken now (cached per thread from here on): the provider's.
    global::tracer("lib").span("a").start().end();
    global::tracer("lib").span("b").start().end();
    let names: Vec<_> = first
        .finished_spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        first.finished_spans()[0].instrumentation.scope().name,
        "lib"
    );

    // Replaced: tracers taken afterwards go to the new one, on every thread;
    // the old provider comes back to be shut down.
    let second = InMemoryExporter::default();
    let old = global::set_tracer_provider(
        TracerProvider::builder()
            .with_simple_exporter(second.clone())
            .build(),
    )
    .expect("the first provider");
    old.shutdown().unwrap();
    global::tracer("lib").span("c").start().end();
    std::thread::spawn(|| global::tracer("other").span("d").start().end())
        .join()
        .unwrap();
    let names: Vec<_> = second
        .finished_spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["c", "d"]);
    assert_eq!(first.finished_spans().len(), 2);

    // Fetched per call on several threads, alternating two scopes, and sent
    // to another thread to be dropped there: every span arrives, under the
    // right scope (the tracers' counts come from per-thread stocks).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for t in 0..4 {
            let tx = tx.clone();
            s.spawn(move || {
                for i in 0..500_usize {
                    let scope = if i.is_multiple_of(2) { "even" } else { "odd" };
                    let tracer = global::tracer(scope);
                    tracer.span(format!("{t}-{i}")).start().end();
                    if i.is_multiple_of(10) {
                        tx.send(tracer).unwrap();
                    }
                }
            });
        }
    });
    drop(tx);
    std::thread::spawn(move || rx.into_iter().for_each(drop))
        .join()
        .unwrap();
    let spans = second.finished_spans();
    assert_eq!(spans.len(), 2 + 4 * 500);
    for span in &spans[2..] {
        let i: usize = span.name.split('-').nth(1).unwrap().parse().unwrap();
        let scope = if i.is_multiple_of(2) { "even" } else { "odd" };
        assert_eq!(span.instrumentation.scope().name, scope);
    }

    // A replaced provider is freed when its last handle goes and the threads
    // that used it move on: here the next `tracer` call, which lets go of the
    // cached tracers (and the counts the thread's stock holds on them), and
    // a span ended into the new provider (each thread keeps the pipeline it
    // ended a span into last). Its exporter's drop may take a global tracer.
    let freed = Arc::new(AtomicBool::new(false));
    global::set_tracer_provider(
        TracerProvider::builder()
            .with_simple_exporter(FlagOnDrop(freed.clone()))
            .build(),
    );
    for _ in 0..3 {
        global::tracer("lib").span("cached").start().end();
    }
    let replaced = global::set_tracer_provider(
        TracerProvider::builder()
            .with_simple_exporter(InMemoryExporter::default())
            .build(),
    )
    .expect("the flagged one");
    drop(replaced);
    assert!(
        !freed.load(Ordering::SeqCst),
        "this thread's cache still holds it"
    );
    global::tracer("lib").span("after").start().end();
    assert!(
        freed.load(Ordering::SeqCst),
        "the replaced provider was not freed"
    );
}
