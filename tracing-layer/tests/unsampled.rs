//! An unsampled trace exports nothing, still propagates (unsampled), and its
//! spans under the root convert no fields and allocate nothing.

#[path = "../../core/tests/common/mod.rs"]
mod common;

use runtrace::sampling::{AlwaysOff, ParentBased};
use runtrace::{Context, InMemoryExporter, TraceContextPropagator, TracerProvider};
use runtrace_tracing::{RuntraceLayer, TracingSpanExt};
use std::collections::HashMap;
use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

/// A field whose conversion would be seen: formatting it panics.
struct NeverFormatted;

impl std::fmt::Debug for NeverFormatted {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("a field of a dropped span was converted")
    }
}

/// One request's work under the root: spans with fields, events, a late
/// record, a native span.
fn work(tracer: &runtrace::Tracer) {
    let child = info_span!("child", id = 7, route = "/items", ok = true, never = ?NeverFormatted);
    let _c = child.enter();
    tracing::info!(rows = 3, never = ?NeverFormatted, "fetched");
    child.record("id", 8);
    info_span!("grandchild", ratio = 0.5).in_scope(|| {
        tracer.span("native").start().end();
    });
}

#[test]
fn an_unsampled_trace_exports_nothing_allocates_nothing_and_still_propagates() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_sampler(ParentBased::new(AlwaysOff))
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("test");
    let subscriber = tracing_subscriber::registry().with(RuntraceLayer::new(tracer.clone()));
    let propagator = TraceContextPropagator;
    tracing::subscriber::with_default(subscriber, || {
        let root = info_span!("request", otel.kind = "server");
        let _r = root.enter();
        work(&tracer); // warm-up: the registry's slab and span stack
        let allocations = common::allocations_during(|| {
            for _ in 0..100 {
                work(&tracer);
            }
        });
        assert_eq!(allocations, 0, "allocations by 100 dropped requests' work");

        let child = info_span!("call");
        let cx = child.context();
        let sc = cx
            .span_context()
            .expect("a dropped span still has its trace");
        assert!(!sc.is_sampled());
        assert_eq!(
            sc.trace_id(),
            root.context().span_context().unwrap().trace_id()
        );
        let mut headers = HashMap::new();
        propagator.inject(&cx, &mut headers);
        let flags = &headers["traceparent"][53..];
        assert_eq!(u8::from_str_radix(flags, 16).unwrap() & 1, 0, "{headers:?}");
    });
    assert_eq!(Context::current(), Context::new());
    assert!(exporter.finished_spans().is_empty());
    assert_eq!(provider.stats().spans_ended, 0);
}
