//! Disabled tracing and dropped spans cost no allocation, and disabled tracing
//! starts no thread. Uses a counting global allocator (per thread).

use runtrace::sampling::AlwaysOff;
use runtrace::{InMemoryExporter, KeyValue, SpanKind, TracerProvider};

use std::time::Duration;

mod common;
use common::{allocations_during, batch_threads, wait_for, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Held by every test here that starts a batch worker, so that counting
/// `runtrace-batch` threads in one test does not see another test's worker.
static BATCH_WORKERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn disabled_provider_allocates_nothing_per_span() {
    let provider = TracerProvider::from_env().with_disabled(true).build();
    let tracer = provider.tracer("noop");
    // Warm up thread-locals (the context stack allocates on a thread's first enter).
    let warm = tracer.span("warm").start();
    drop(warm.enter());
    let n = allocations_during(|| {
        for i in 0..10_000i64 {
            let mut span = tracer
                .span("request")
                .kind(SpanKind::Server)
                .attribute("http.route", "/infer")
                .attribute("i", i)
                .start();
            span.set_attribute("model", "llama");
            span.set_attribute("tokens", 128);
            span.add_event("cache miss", Vec::new());
            let _g = span.enter();
            let mut child = tracer.span("child").start();
            child.set_attribute("ok", true);
        }
    });
    assert_eq!(n, 0, "disabled tracing allocated");
}

#[test]
fn disabled_provider_starts_no_thread() {
    let _serial = BATCH_WORKERS.lock().unwrap_or_else(|e| e.into_inner());
    // A worker joined by the test before this one may linger in /proc a
    // moment (see below): up to 2 s for it to go.
    let _ = wait_for(|| batch_threads() == 0, Duration::from_secs(2));
    let before = batch_threads();
    let provider = TracerProvider::from_env()
        .with_disabled(true)
        .with_batch_exporter(InMemoryExporter::default())
        .build();
    assert!(!provider.is_enabled());
    let tracer = provider.tracer("noop");
    for _ in 0..100 {
        tracer.span("x").start().end();
    }
    assert_eq!(batch_threads(), before);
    let enabled = TracerProvider::builder()
        .with_batch_exporter(InMemoryExporter::default())
        .build();
    // The new thread names itself once it runs: give it up to 2 s (it takes
    // microseconds; the rest is slack for a loaded machine).
    let named = wait_for(|| batch_threads() == before + 1, Duration::from_secs(2));
    assert!(
        named,
        "the batch processor starts one runtrace-batch thread"
    );
    enabled.shutdown().unwrap();
    // Shutdown joins the worker; the kernel lists a joined thread in /proc a
    // moment longer (it clears the thread id that `join` waits on before it
    // is reaped): up to 2 s of slack, it takes microseconds.
    let gone = wait_for(|| batch_threads() == before, Duration::from_secs(2));
    assert!(gone, "shutdown joins the worker");
}

#[test]
fn dropped_spans_allocate_nothing() {
    let provider = TracerProvider::builder()
        .with_sampler(AlwaysOff)
        .with_simple_exporter(InMemoryExporter::default())
        .build();
    let tracer = provider.tracer("drop");
    let warm = tracer.span("warm").start();
    drop(warm.enter());
    let n = allocations_during(|| {
        for i in 0..10_000i64 {
            let mut span = tracer.span("request").kind(SpanKind::Server).start();
            assert!(!span.is_recording());
            span.set_attribute("i", i);
            span.add_event("e", Vec::new());
            span.add_link(span.span_context().clone(), Vec::<KeyValue>::new());
            let _g = span.enter();
            let child = tracer.span("child").start();
            assert!(!child.is_recording());
        }
    });
    assert_eq!(n, 0, "dropped spans allocated");
}

#[test]
fn sampled_spans_reuse_exported_attribute_lists() {
    let _serial = BATCH_WORKERS.lock().unwrap_or_else(|e| e.into_inner());
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_batch_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("recycle");
    let four_attributes = |tracer: &runtrace::Tracer| {
        let mut span = tracer.span("request").start();
        span.set_attribute("http.route", "/v1/infer");
        span.set_attribute("model", "llama");
        span.set_attribute("tokens", 512);
        span.set_attribute("cached", true);
    };
    for _ in 0..200 {
        four_attributes(&tracer);
    }
    // Export them: the worker parks their attribute lists for reuse.
    provider.force_flush().unwrap();
    exporter.reset();
    let n = allocations_during(|| {
        for _ in 0..100 {
            four_attributes(&tracer);
        }
    });
    assert_eq!(n, 0, "sampled spans allocated {n} times");
    provider.force_flush().unwrap();
}

#[test]
fn an_ended_span_fits_three_cache_lines_in_the_queue() {
    // Queue slots are cache-aligned and hold an 8-byte stamp next to the span:
    // up to 184 bytes of span data make a 192-byte slot (three lines).
    let size = std::mem::size_of::<runtrace::SpanData>();
    assert!(size <= 184, "SpanData grew to {size} bytes");
}
