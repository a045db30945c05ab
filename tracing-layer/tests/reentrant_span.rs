//! A processor that makes a `tracing` span while the layer starts a local
//! root (whose lock the thread holds then) neither deadlocks nor gets its
//! span traced.

mod common;

use common::OnStart;
use runtrace::{InMemoryExporter, TracerProvider};
use runtrace_tracing::RuntraceLayer;
use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;

thread_local! {
    /// Set while the processor makes its span, whose own start it skips.
    static MAKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes a `tracing` span at each span's start (but its own), as a processor
/// that logs through `tracing` might.
fn make_a_span() {
    if !MAKING.replace(true) {
        info_span!("made by the processor").in_scope(|| {});
        MAKING.set(false);
    }
}

#[test]
fn a_span_made_while_a_root_starts_is_not_traced_instead_of_deadlocking() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_span_processor(OnStart::new(|_| make_a_span()))
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(RuntraceLayer::new(provider.tracer("t")));
    // Global: `tracing` stops reentrant calls into a scoped (`with_default`)
    // subscriber itself, not into the global one.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    {
        let root = info_span!("root");
        let _r = root.enter();
        // Starts the root, under its lock: the processor makes a span.
        info_span!("child").in_scope(|| {});
    }
    let mut names: Vec<_> = exporter
        .finished_spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    names.sort();
    // The child's start, with the root's lock released, makes a span that is
    // traced; the root's does not.
    assert_eq!(names, ["child", "made by the processor", "root"]);
}
