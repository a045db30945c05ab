//! `runtrace::global`: one test, since the global provider is process-wide.

use runtrace::{global, InMemoryExporter, TracerProvider};

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
}
