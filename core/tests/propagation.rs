//! An extracted context is a remote parent: samplers and exported spans see it so.

use runtrace::sampling::{AlwaysOff, AlwaysOn, ParentBased};
use runtrace::{Context, InMemoryExporter, SpanKind, TraceContextPropagator, TracerProvider};
use std::collections::HashMap;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn incoming(flags: &str) -> HashMap<String, String> {
    HashMap::from([
        (
            "traceparent".to_string(),
            format!("00-{TRACE}-{SPAN}-{flags}"),
        ),
        (
            "tracestate".to_string(),
            "rojo=00f067aa0ba902b7".to_string(),
        ),
    ])
}

/// Remote delegates inverted against the parent's flag, local ones left at their
/// defaults: which delegate ran shows in whether the span is exported.
fn inverted_remote_provider(exporter: &InMemoryExporter) -> TracerProvider {
    let sampler = ParentBased::new(AlwaysOn)
        .with_remote_parent_sampled(AlwaysOff)
        .with_remote_parent_not_sampled(AlwaysOn);
    TracerProvider::builder()
        .with_sampler(sampler)
        .with_simple_exporter(exporter.clone())
        .build()
}

#[test]
fn parent_based_uses_remote_delegates_for_an_extracted_parent() {
    let exporter = InMemoryExporter::default();
    let provider = inverted_remote_provider(&exporter);
    let tracer = provider.tracer("server");
    let propagator = TraceContextPropagator::new();

    // Sampled remote parent -> remote_parent_sampled (AlwaysOff): dropped.
    let cx = propagator.extract(&incoming("03"));
    let span = tracer
        .span("dropped")
        .parent(&cx)
        .kind(SpanKind::Server)
        .start();
    assert!(!span.is_recording());
    assert!(!span.span_context().is_sampled());
    assert_eq!(span.span_context().trace_id().to_string(), TRACE);
    drop(span);

    // Not-sampled remote parent -> remote_parent_not_sampled (AlwaysOn): exported.
    let cx = propagator.extract(&incoming("02"));
    let mut span = tracer
        .span("kept")
        .parent(&cx)
        .kind(SpanKind::Server)
        .start();
    let sc = span.span_context().clone();
    assert!(
        sc.is_sampled() && sc.trace_flags().is_random(),
        "random flag copied"
    );
    assert!(!sc.is_remote(), "the new span itself is local");
    span.end();

    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), 1);
    let data = &spans[0];
    assert_eq!(data.name, "kept");
    assert!(data.parent_is_remote);
    assert_eq!(data.parent_span_id.to_string(), SPAN);
    assert_eq!(data.span_context.trace_id().to_string(), TRACE);
    assert_eq!(
        data.span_context.trace_state().header(),
        "rojo=00f067aa0ba902b7"
    );
}

#[test]
fn children_of_the_server_span_use_local_delegates() {
    let exporter = InMemoryExporter::default();
    let provider = inverted_remote_provider(&exporter);
    let tracer = provider.tracer("server");
    let cx = TraceContextPropagator::new().extract(&incoming("00"));
    let server = tracer.span("server").parent(&cx).start();
    // Local sampled parent -> local_parent_sampled (AlwaysOn default).
    let mut client = tracer.span("client").parent(&server.context()).start();
    assert!(client.is_recording());
    client.end();
    drop(server);
    let spans = exporter.finished_spans();
    let client = spans.iter().find(|s| s.name == "client").unwrap();
    assert!(!client.parent_is_remote);
    let server = spans.iter().find(|s| s.name == "server").unwrap();
    assert!(server.parent_is_remote);
    assert_eq!(client.parent_span_id, server.span_context.span_id());
}

#[test]
fn invalid_traceparent_starts_a_root_span_without_tracestate() {
    let exporter = InMemoryExporter::default();
    let provider = inverted_remote_provider(&exporter);
    let tracer = provider.tracer("server");
    let mut bad = incoming("01");
    bad.insert(
        "traceparent".into(),
        format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
    );
    let cx = TraceContextPropagator::new().extract(&bad);
    assert_eq!(cx, Context::new());
    tracer.span("root").parent(&cx).start().end();
    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), 1, "root sampler AlwaysOn");
    assert!(!spans[0].parent_span_id.is_valid());
    assert!(!spans[0].parent_is_remote);
    assert_ne!(spans[0].span_context.trace_id().to_string(), TRACE);
    assert!(spans[0].span_context.trace_state().is_empty());
}
