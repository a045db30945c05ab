//! A processor that reads the current context while the layer starts a
//! local root (which it does when a native span inside reads the root's
//! context) neither deadlocks on the root's lock nor sees the root as
//! current before it has started.

mod common;

use common::OnStart;
use runtrace::{Context, InMemoryExporter, TracerProvider};
use runtrace_tracing::RuntraceLayer;
use std::sync::{Arc, Mutex};
use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn a_processor_reading_the_current_context_while_a_root_starts_does_not_deadlock() {
    let exporter = InMemoryExporter::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let provider = TracerProvider::builder()
        // Records the current context at each span's start.
        .with_span_processor(OnStart::new({
            let seen = seen.clone();
            move |span| {
                seen.lock()
                    .unwrap()
                    .push((span.clone(), Context::current()))
            }
        }))
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    let subscriber = tracing_subscriber::registry().with(RuntraceLayer::new(tracer.clone()));
    // Global, so that the layer looks contexts up through the default
    // dispatcher inside its own callbacks too.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    {
        let root = info_span!("root");
        let _r = root.enter();
        // Reads the current context: the root starts now, and the processor
        // reads the current context while the root's lock is held.
        tracer.span("native").start().end();
    }
    let spans = exporter.finished_spans();
    let id = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .span_context
            .clone()
    };
    assert_eq!(spans.len(), 2);
    assert_eq!(
        spans
            .iter()
            .find(|s| s.name == "native")
            .unwrap()
            .parent_span_id,
        id("root").span_id()
    );
    let seen = seen.lock().unwrap();
    // The root, at its start, is not yet current; the native span, at its
    // start, is inside the root.
    assert_eq!(seen[0], (id("root"), Context::new()));
    assert_eq!(seen[1].0, id("native"));
    assert_eq!(seen[1].1.span_context(), Some(&id("root")));
}
