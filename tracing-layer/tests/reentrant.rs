//! Events emitted while the layer starts a span (by a processor, or a
//! diagnostics handler that logs through `tracing`) do not deadlock.

mod common;

use common::OnStart;
use runtrace::{InMemoryExporter, TracerProvider};
use runtrace_tracing::RuntraceLayer;
use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn an_event_emitted_while_a_root_starts_is_ignored_instead_of_deadlocking() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        // Logs through `tracing` when a span starts, as a processor or a
        // diagnostics handler might.
        .with_span_processor(OnStart::new(|_| tracing::info!("span started")))
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(RuntraceLayer::new(provider.tracer("t")));
    // Global: `tracing` stops reentrant calls into a scoped (`with_default`)
    // subscriber itself, not into the global one.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    {
        let root = info_span!("root");
        let _r = root.enter();
        // Its first child starts it, under its lock: the processor logs (and
        // the event is ignored); then it starts the child, and logs into
        // "root", not locked then.
        info_span!("child").in_scope(|| {});
    }
    let spans = exporter.finished_spans();
    let root = spans.iter().find(|s| s.name == "root").unwrap();
    let names: Vec<_> = root.events().iter().map(|e| e.name.to_string()).collect();
    assert_eq!(names, ["span started"], "only the child's start is logged");
}
