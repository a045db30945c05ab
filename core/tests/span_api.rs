//! The span API end to end, checked with the in-memory exporter.

use runtrace::sampling::{AlwaysOff, AlwaysOn, ParentBased, TraceIdRatioBased};
use runtrace::{
    Context, InMemoryExporter, KeyValue, Resource, SpanContext, SpanId, SpanKind, SpanLimits,
    Status, TraceFlags, TraceId, TraceState, TracerProvider, Value,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn setup() -> (TracerProvider, InMemoryExporter) {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

#[test]
fn builder_sets_everything_and_root_has_random_flag() {
    let (provider, exporter) = setup();
    let tracer = provider.versioned_tracer("scope", "1.2");
    let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let linked = SpanContext::new(
        TraceId::from_bytes([7; 16]),
        SpanId::from_bytes([8; 8]),
        TraceFlags::SAMPLED,
        true,
        TraceState::EMPTY,
    );
    let mut span = tracer
        .span("request")
        .kind(SpanKind::Server)
        .attribute("route", "/infer")
        .attribute("n", 3)
        .link(linked.clone(), vec![KeyValue::new("why", "batch")])
        .start_time(t0)
        .start();
    span.set_attribute("cached", true);
    span.set_attribute("ratio", 0.5);
    span.set_attribute("tags", vec!["a", "b"]);
    span.update_name("request2");
    span.end_at(t0 + Duration::from_millis(5));
    let d = &exporter.finished_spans()[0];
    assert_eq!(d.name, "request2");
    assert_eq!(d.kind, SpanKind::Server);
    assert_eq!(d.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(d.end_time_unix_nano - d.start_time_unix_nano, 5_000_000);
    assert_eq!(d.attributes.len(), 5);
    assert_eq!(d.attributes[4].value, Value::from(vec!["a", "b"]));
    assert_eq!(d.links()[0].span_context, linked);
    assert!(!d.parent_span_id.is_valid());
    assert_eq!(
        d.span_context.trace_flags().bits(),
        0x03,
        "sampled + random"
    );
    assert_eq!(d.instrumentation.scope().version.as_deref(), Some("1.2"));
    assert_eq!(
        d.instrumentation.resource().get("telemetry.sdk.name"),
        Some(&Value::from("runtrace"))
    );
}

#[test]
fn nesting_with_guards_and_across_threads() {
    let (provider, exporter) = setup();
    let tracer = provider.tracer("t");
    let parent = tracer.span("parent").start();
    let parent_cx = parent.span_context().clone();
    {
        let _g = parent.enter();
        tracer.in_span("child", |child| {
            let inner = tracer.span("grandchild").start();
            assert_eq!(inner.span_context().trace_id(), parent_cx.trace_id());
            drop(inner);
            child.set_attribute("k", 1);
        });
        let cx = Context::current();
        let t = tracer.clone();
        std::thread::spawn(move || {
            t.span("on other thread").parent(&cx).start();
        })
        .join()
        .unwrap();
    }
    // Guard dropped: the next span is a root again.
    let root = tracer.span("root").start();
    assert_ne!(root.span_context().trace_id(), parent_cx.trace_id());
    drop(root);
    drop(parent);
    let spans = exporter.finished_spans();
    let by_name = |n: &str| spans.iter().find(|s| s.name == n).unwrap();
    let child = by_name("child");
    assert_eq!(child.parent_span_id, parent_cx.span_id());
    assert_eq!(
        by_name("grandchild").parent_span_id,
        child.span_context.span_id()
    );
    assert_eq!(
        by_name("on other thread").parent_span_id,
        parent_cx.span_id()
    );
    assert!(!by_name("root").parent_span_id.is_valid());
    // An explicit empty context makes a root even inside a guard.
    let _g = tracer.span("outer").start().enter();
    let explicit_root = tracer.span("r").parent(&Context::new()).start();
    assert!(explicit_root.is_recording());
}

#[test]
fn ends_exactly_once() {
    let (provider, exporter) = setup();
    let tracer = provider.tracer("t");
    let mut span = tracer.span("once").start();
    span.end();
    assert!(!span.is_recording());
    span.set_attribute("late", 1);
    span.end();
    let cx = span.span_context().clone();
    drop(span);
    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].span_context, cx);
    assert!(spans[0].attributes.is_empty());
    tracer.span("dropped without end").start();
    assert_eq!(exporter.finished_spans().len(), 2);
}

#[test]
fn status_precedence() {
    let (provider, exporter) = setup();
    let tracer = provider.tracer("t");
    let mut a = tracer.span("a").start();
    a.set_status(Status::error("boom"));
    a.set_status(Status::Unset);
    a.end();
    let mut b = tracer.span("b").start();
    b.set_status(Status::error("first"));
    b.set_status(Status::Ok);
    b.set_status(Status::error("after ok"));
    b.end();
    let mut c = tracer.span("c").start();
    c.set_status(Status::error("one"));
    c.set_status(Status::error("two"));
    c.end();
    let s = exporter.finished_spans();
    assert_eq!(*s[0].status(), Status::error("boom"));
    assert_eq!(*s[1].status(), Status::Ok);
    assert_eq!(*s[2].status(), Status::error("two"));
}

#[test]
fn record_error_adds_exception_event() {
    let (provider, exporter) = setup();
    let mut span = provider.tracer("t").span("e").start();
    let err = std::io::Error::other("disk on fire");
    span.record_error(&err);
    let dyn_err: &dyn std::error::Error = &err;
    span.record_error(dyn_err);
    span.end();
    let d = &exporter.finished_spans()[0];
    assert_eq!(d.events().len(), 2);
    let e = &d.events()[0];
    assert_eq!(e.name, "exception");
    assert_eq!(
        e.attributes[0],
        KeyValue::new("exception.type", "std::io::error::Error")
    );
    assert_eq!(
        e.attributes[1],
        KeyValue::new("exception.message", "disk on fire")
    );
    assert_eq!(*d.status(), Status::Unset);
}

/// Without a value length limit, `set_attribute` writes straight into the
/// span's list below the count limit, after an out-of-line call gives the
/// list room when it has none (the first attribute, a full list); at the
/// limit it takes the limited path. Across all of them: every attribute in
/// order, a repeat at the limit kept with its last value, the rest dropped
/// and counted.
#[test]
fn set_attribute_keeps_order_and_limits_across_list_growth() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_span_limits(SpanLimits {
            max_attributes_per_span: 70,
            ..SpanLimits::default()
        })
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    let mut span = tracer.span("many").start();
    for i in 0..80_i64 {
        span.set_attribute(format!("key.{i}"), i);
    }
    span.set_attribute("key.3", "last");
    span.end();
    let spans = exporter.finished_spans();
    let d = &spans[0];
    assert_eq!(d.attributes.len(), 70);
    for (i, kv) in d.attributes.iter().enumerate() {
        assert_eq!(kv.key, format!("key.{i}").as_str());
        let expected = if i == 3 {
            Value::from("last")
        } else {
            Value::I64(i as i64)
        };
        assert_eq!(kv.value, expected, "attribute {i}");
    }
    assert_eq!(d.dropped_attributes_count, 10);
}

#[test]
fn limits_and_dropped_counts() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_span_limits(SpanLimits {
            max_attributes_per_span: 2,
            max_events_per_span: 1,
            max_links_per_span: 1,
            max_attributes_per_event: 1,
            max_attributes_per_link: 1,
            max_attribute_value_length: Some(3),
        })
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    let other = SpanContext::new(
        TraceId::from_bytes([1; 16]),
        SpanId::from_bytes([1; 8]),
        TraceFlags::SAMPLED,
        false,
        TraceState::EMPTY,
    );
    let mut span = tracer
        .span("s")
        .attribute("a", "abcdef")
        .attribute("b", 1)
        .attribute("c", 2)
        .link(
            other.clone(),
            vec![KeyValue::new("x", 1), KeyValue::new("y", 2)],
        )
        .link(other.clone(), vec![])
        .start();
    span.set_attribute("a", "overwrite is not a drop");
    span.set_attribute("d", 4);
    span.add_event(
        "e1",
        vec![KeyValue::new("x", 1), KeyValue::new("y", "long value")],
    );
    span.add_event("e2", vec![]);
    span.add_link(other, vec![]);
    span.end();
    let d = &exporter.finished_spans()[0];
    assert_eq!(
        d.attributes,
        vec![KeyValue::new("a", "ove"), KeyValue::new("b", 1)]
    );
    assert_eq!(d.dropped_attributes_count, 2);
    assert_eq!(d.events().len(), 1);
    assert_eq!(d.events()[0].dropped_attributes_count, 1);
    assert_eq!(d.dropped_events_count(), 1);
    assert_eq!(d.links().len(), 1);
    assert_eq!(d.links()[0].dropped_attributes_count, 1);
    assert_eq!(d.dropped_links_count(), 2);
}

#[test]
fn samplers_drive_recording_and_export() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_sampler(ParentBased::new(AlwaysOff).with_local_parent_not_sampled(AlwaysOn))
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    let root = tracer.span("root").start();
    assert!(!root.is_recording());
    assert!(
        root.span_context().is_valid(),
        "a dropped span still has ids"
    );
    assert!(!root.span_context().is_sampled());
    let _g = root.enter();
    let child = tracer.span("child").start();
    assert!(child.is_recording());
    assert_eq!(
        child.span_context().trace_id(),
        root.span_context().trace_id()
    );
    drop(child);
    assert_eq!(exporter.finished_spans().len(), 1);

    // A ratio root writes ot=th and children inherit it through ParentBased.
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_sampler(ParentBased::new(TraceIdRatioBased::new(1.0)))
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    tracer.in_span("root", |_| tracer.span("child").start().end());
    for s in exporter.finished_spans() {
        assert_eq!(s.span_context.trace_state().header(), "ot=th:0");
    }
}

#[test]
fn remote_parent_is_recorded() {
    let (provider, exporter) = setup();
    let remote = SpanContext::new(
        "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap(),
        "00f067aa0ba902b7".parse().unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::parse("vendor=1").unwrap(),
    );
    let cx = Context::from_span_context(remote.clone());
    provider
        .tracer("t")
        .span("server")
        .parent(&cx)
        .start()
        .end();
    let d = &exporter.finished_spans()[0];
    assert!(d.parent_is_remote);
    assert_eq!(d.parent_span_id, remote.span_id());
    assert_eq!(d.span_context.trace_id(), remote.trace_id());
    assert_eq!(
        d.span_context.trace_flags().bits(),
        0x01,
        "random flag copied unset"
    );
    assert_eq!(d.span_context.trace_state().header(), "vendor=1");
}

#[test]
fn noop_propagates_valid_parent() {
    let provider = TracerProvider::noop();
    let remote = SpanContext::new(
        "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap(),
        "00f067aa0ba902b7".parse().unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::EMPTY,
    );
    let span = provider
        .tracer("t")
        .span("s")
        .parent(&Context::from_span_context(remote.clone()))
        .start();
    assert!(!span.is_recording());
    assert_eq!(span.span_context(), &remote);
}

#[test]
fn resource_from_builder_wins_and_shutdown_makes_tracers_noop() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_resource(Resource::new([KeyValue::new("service.name", "svc")]))
        .with_simple_exporter(exporter.clone())
        .build();
    assert_eq!(provider.resource().unwrap().service_name(), Some("svc"));
    provider.shutdown().unwrap();
    assert!(provider.shutdown().is_err(), "second shutdown reports it");
    assert!(exporter.is_shut_down());
    let late = provider.tracer("late");
    assert!(!late.is_enabled());
    let t = SystemTime::now();
    late.span("x").start_time(t).start().end();
    assert!(exporter.finished_spans().is_empty());
}

#[derive(Debug)]
struct AttachingSampler;

impl runtrace::sampling::Sampler for AttachingSampler {
    fn should_sample(
        &self,
        p: &runtrace::sampling::SamplingParameters<'_>,
    ) -> runtrace::sampling::SamplingResult {
        // A sampler that touches the current context must not panic.
        let _g = Context::new().attach();
        runtrace::sampling::SamplingResult {
            decision: runtrace::sampling::SamplingDecision::RecordAndSample,
            attributes: vec![],
            trace_state: p.parent_trace_state(),
        }
    }
    fn description(&self) -> String {
        "Attaching".into()
    }
}

#[test]
fn sampler_may_attach_contexts_while_a_child_starts() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_sampler(AttachingSampler)
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    tracer.in_span("parent", |_| tracer.span("child").start().end());
    assert_eq!(exporter.finished_spans().len(), 2);
}

/// A span's id and its parent's, as `on_start` got them.
type StartIds = (SpanId, Option<SpanId>);

/// Keeps the ids `on_start` was given.
#[derive(Debug, Default)]
struct RecordsStarts(std::sync::Arc<std::sync::Mutex<Vec<StartIds>>>);

impl runtrace::SpanProcessor for RecordsStarts {
    fn on_start(&self, span: &SpanContext, parent: Option<&SpanContext>) {
        let ids = (span.span_id(), parent.map(SpanContext::span_id));
        self.0.lock().unwrap().push(ids);
    }
    fn on_end(&self, _: runtrace::SpanData) {}
    fn force_flush(&self, _: std::time::Instant) -> Result<(), runtrace::FlushError> {
        Ok(())
    }
    fn shutdown(&self, _: std::time::Instant) -> Result<(), runtrace::FlushError> {
        Ok(())
    }
}

#[test]
fn custom_processors_see_recording_span_starts() {
    let starts = RecordsStarts::default();
    let seen = starts.0.clone();
    let provider = TracerProvider::builder()
        .with_span_processor(starts)
        .with_batch_exporter(InMemoryExporter::default())
        .build();
    let tracer = provider.tracer("t");
    tracer.in_span("a", |_| tracer.span("b").start().end());
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn custom_processors_see_each_shapes_own_context_at_start() {
    let starts = RecordsStarts::default();
    let seen = starts.0.clone();
    let provider = TracerProvider::builder()
        .with_span_processor(starts)
        .with_batch_exporter(InMemoryExporter::default())
        .build();
    let tracer = provider.tracer("t");
    let root = tracer.span("root").start();
    let cx = Context::from_span_context(root.span_context().clone());
    let spans = [
        tracer.span("explicit child").parent(&cx).start(),
        tracer
            .span("attributed child")
            .parent(&cx)
            .attribute("k", 1)
            .start(),
        tracer.span("attributed root").attribute("k", 1).start(),
    ];
    let current_child = {
        let _guard = cx.clone().attach();
        tracer.span("child of current").start()
    };
    let root_id = root.span_context().span_id();
    let expected: Vec<_> = [(&root, None)]
        .into_iter()
        .chain(spans.iter().zip([Some(root_id), Some(root_id), None]))
        .chain([(&current_child, Some(root_id))])
        .map(|(span, parent)| (span.span_context().span_id(), parent))
        .collect();
    assert_eq!(*seen.lock().unwrap(), expected);
}

#[test]
fn dropped_roots_look_alike_on_every_path() {
    let provider = TracerProvider::builder()
        .with_sampler(AlwaysOff)
        .with_simple_exporter(InMemoryExporter::default())
        .build();
    let tracer = provider.tracer("t");
    let name: std::sync::Arc<str> = "shared name".into();
    // A plain root (the short path), one with an attribute and one with a
    // shared name (the general path, and the short path's name release).
    let spans = [
        tracer.span("plain").start(),
        tracer.span("attributed").attribute("k", 1).start(),
        tracer.span(name.clone()).start(),
        tracer.span("explicit root").parent(&Context::new()).start(),
    ];
    let mut span_ids = Vec::new();
    for span in &spans {
        let cx = span.span_context();
        assert!(!span.is_recording());
        assert!(cx.is_valid() && !cx.is_sampled() && !cx.is_remote());
        assert!(cx.trace_flags().is_random(), "built-in ids are random");
        assert_eq!(cx.trace_state().header(), "");
        span_ids.push(cx.span_id());
    }
    span_ids.sort_unstable_by_key(|id| *id.as_bytes());
    span_ids.dedup();
    assert_eq!(span_ids.len(), spans.len(), "every span has its own id");
    drop(spans);
    assert_eq!(
        std::sync::Arc::strong_count(&name),
        1,
        "the name was released"
    );
}

#[test]
fn sampled_roots_look_alike_on_every_path() {
    let (provider, exporter) = setup();
    let tracer = provider.tracer("scope");
    // A plain root (the short path) and roots the general path starts.
    tracer.span("root").kind(SpanKind::Server).start().end();
    tracer
        .span("root")
        .kind(SpanKind::Server)
        .parent(&Context::new())
        .start()
        .end();
    tracer
        .span("root")
        .kind(SpanKind::Server)
        .attribute("k", 1)
        .start()
        .end();
    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), 3);
    for s in &spans {
        let cx = &s.span_context;
        assert!(cx.is_valid() && cx.is_sampled() && !cx.is_remote());
        assert!(cx.trace_flags().is_random());
        assert_eq!(cx.trace_state().header(), "");
        assert_eq!(s.parent_span_id, SpanId::INVALID);
        assert!(!s.parent_is_remote);
        assert_eq!(s.name, "root");
        assert_eq!(s.kind, SpanKind::Server);
        assert_eq!(*s.status(), Status::Unset);
        assert_eq!(s.instrumentation.scope().name, "scope");
        assert!(s.start_time_unix_nano > 0 && s.end_time_unix_nano >= s.start_time_unix_nano);
        assert!(s.events().is_empty() && s.links().is_empty());
        assert!(s.details.is_none(), "nothing was allocated for them");
    }
    assert!(spans[0].attributes.is_empty());
    assert_eq!(spans[2].attributes.len(), 1);
    assert_ne!(
        spans[0].span_context.trace_id(),
        spans[1].span_context.trace_id()
    );
}

/// Panics in `on_end`, counting its calls.
#[derive(Debug, Default)]
struct PanicsOnEnd(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl runtrace::SpanProcessor for PanicsOnEnd {
    fn on_end(&self, _: runtrace::SpanData) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        panic!("processor failed");
    }
    fn force_flush(&self, _: std::time::Instant) -> Result<(), runtrace::FlushError> {
        Ok(())
    }
    fn shutdown(&self, _: std::time::Instant) -> Result<(), runtrace::FlushError> {
        Ok(())
    }
}

/// A custom processor's panic is caught (and reported once through
/// diagnostics): the span ends once, the processors after it still get it, and
/// a span dropped while the thread unwinds does not abort the process.
#[test]
fn a_panicking_processor_ends_the_span_once_and_the_others_still_get_it() {
    let panicking = PanicsOnEnd::default();
    let calls = panicking.0.clone();
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_span_processor(panicking)
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    let mut span = tracer.span("s").start();
    span.end();
    assert!(!span.is_recording(), "the span ended despite the panic");
    assert!(span.span_context().is_valid());
    drop(span);
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "not dispatched again on drop"
    );
    // A span dropped by a thread that unwinds from a panic of its own.
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _span = tracer.span("dropped while unwinding").start();
        panic!("the application's own panic");
    }));
    assert!(unwound.is_err());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    let names: Vec<_> = exporter
        .finished_spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(
        names,
        ["s", "dropped while unwinding"],
        "the later processor got both"
    );
}

#[test]
fn children_of_the_current_context_look_alike_on_every_path() {
    let remote = |flags| {
        SpanContext::new(
            "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap(),
            "00f067aa0ba902b7".parse().unwrap(),
            flags,
            true,
            TraceState::parse("vendor=1").unwrap(),
        )
    };
    let (provider, exporter) = setup();
    let tracer = provider.tracer("t");
    // Under a sampled remote parent (without the random flag), attached as the
    // current context: a plain child (the short path), one with an attribute
    // and one with the parent given explicitly (the general path).
    let parent = remote(TraceFlags::SAMPLED);
    let cx = Context::from_span_context(parent.clone());
    {
        let _attached = cx.clone().attach();
        tracer.span("c").start().end();
        tracer.span("c").attribute("k", 1).start().end();
        tracer.span("c").parent(&cx).start().end();
    }
    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), 3);
    for s in &spans {
        let sc = &s.span_context;
        assert!(s.parent_is_remote && !sc.is_remote());
        assert_eq!(s.parent_span_id, parent.span_id());
        assert_eq!(sc.trace_id(), parent.trace_id());
        assert_eq!(
            sc.trace_flags().bits(),
            0x01,
            "sampled; random copied unset"
        );
        assert_eq!(sc.trace_state().header(), "vendor=1");
    }
    // Under a remote parent that is not sampled, children are dropped
    // (ParentBased) but carry the trace on.
    let parent = remote(TraceFlags::new(0x02));
    let cx = Context::from_span_context(parent.clone());
    let _attached = cx.clone().attach();
    let children = [
        tracer.span("c").start(),
        tracer.span("c").attribute("k", 1).start(),
        tracer.span("c").parent(&cx).start(),
    ];
    for child in &children {
        let sc = child.span_context();
        assert!(!child.is_recording());
        assert_eq!(sc.trace_id(), parent.trace_id());
        assert_ne!(sc.span_id(), parent.span_id());
        assert_eq!(sc.trace_flags().bits(), 0x02, "not sampled; random copied");
        assert_eq!(sc.trace_state().header(), "vendor=1");
    }
}

/// Builder attributes without links take the fixed-decision path (with or
/// without an explicit parent): duplicates keep the first place and the last
/// value, and the limits apply as on the general path.
#[test]
fn builder_attributes_are_deduplicated_and_limited_on_every_path() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_span_limits(SpanLimits {
            max_attributes_per_span: 2,
            max_attribute_value_length: Some(3),
            ..SpanLimits::default()
        })
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    let parent = tracer.span("parent").start();
    let cx = parent.context();
    let other = SpanContext::new(
        TraceId::from_bytes([1; 16]),
        SpanId::from_bytes([1; 8]),
        TraceFlags::SAMPLED,
        false,
        TraceState::EMPTY,
    );
    let shapes = [
        tracer
            .span("fixed")
            .attribute("a", "abcdef")
            .attribute("b", 1)
            .attribute("a", "xyzw")
            .attribute("c", 3),
        tracer
            .span("fixed, explicit parent")
            .parent(&cx)
            .attribute("a", "abcdef")
            .attribute("b", 1)
            .attribute("a", "xyzw")
            .attribute("c", 3),
        tracer
            .span("general")
            .link(other, vec![])
            .attribute("a", "abcdef")
            .attribute("b", 1)
            .attribute("a", "xyzw")
            .attribute("c", 3),
    ];
    for builder in shapes {
        builder.start().end();
    }
    let spans = exporter.finished_spans();
    for d in &spans {
        assert_eq!(
            d.attributes,
            vec![KeyValue::new("a", "xyz"), KeyValue::new("b", 1)],
            "{}",
            d.name
        );
        assert_eq!(d.dropped_attributes_count, 1, "{}", d.name);
    }
    assert_eq!(spans[1].parent_span_id, parent.span_context().span_id());
}

/// Builder attributes past the first recycled list's room, and mixed with
/// `attributes(..)` in either order (a list taken over as it is, then pushed
/// onto; pushes, then a list appended), keep every attribute in order, with
/// the first place and last value of a repeated key.
#[test]
fn builder_attributes_grow_and_mix_with_attribute_lists() {
    let (provider, exporter) = setup();
    let tracer = provider.tracer("t");
    for round in 0..3 {
        let mut many = tracer.span("many");
        for i in 0..40_i64 {
            many = many.attribute(format!("k{i}"), i);
        }
        many.attribute("k7", -7).start().end();
        tracer
            .span("list first")
            .attributes(vec![KeyValue::new("a", 1), KeyValue::new("b", 2)])
            .attribute("c", 3)
            .attribute("a", 10)
            .start()
            .end();
        tracer
            .span("pushes first")
            .attribute("a", 1)
            .attributes([KeyValue::new("b", 2), KeyValue::new("a", 10)])
            .attribute("c", 3)
            .start()
            .end();
        tracer
            .span("empty list first")
            .attributes(Vec::new())
            .attribute("a", 1)
            .start()
            .end();
        let spans = exporter.finished_spans();
        let spans = &spans[spans.len() - 4..];
        let expected: Vec<KeyValue> = (0..40_i64)
            .map(|i| KeyValue::new(format!("k{i}"), if i == 7 { -7 } else { i }))
            .collect();
        assert_eq!(spans[0].attributes, expected, "round {round}");
        assert_eq!(spans[0].dropped_attributes_count, 0);
        let abc = vec![
            KeyValue::new("a", 10),
            KeyValue::new("b", 2),
            KeyValue::new("c", 3),
        ];
        assert_eq!(spans[1].attributes, abc, "round {round}");
        assert_eq!(spans[2].attributes, abc, "round {round}");
        assert_eq!(spans[3].attributes, vec![KeyValue::new("a", 1)]);
    }
}

/// `set_attributes` keeps what `set_attribute` one by one would: the first
/// place and last value of a repeated key, the count limit (dropped keys
/// counted) and the value length limit; on a span with attributes, it adds.
#[test]
fn set_attributes_is_set_attribute_one_by_one() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_span_limits(SpanLimits {
            max_attributes_per_span: 3,
            max_attribute_value_length: Some(4),
            ..SpanLimits::default()
        })
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    let list = || {
        vec![
            KeyValue::new("a", "first"),
            KeyValue::new("b", 2),
            KeyValue::new("a", "again"),
            KeyValue::new("c", true),
            KeyValue::new("d", 4),
        ]
    };
    let mut at_once = tracer.span("at_once").start();
    at_once.set_attributes(list());
    at_once.end();
    let mut one_by_one = tracer.span("one_by_one").start();
    for kv in list() {
        one_by_one.set_attribute(kv.key, kv.value);
    }
    one_by_one.end();
    let mut added = tracer.span("added").start();
    added.set_attribute("z", 0);
    added.set_attributes(list());
    added.end();
    let spans = exporter.finished_spans();
    let (at_once, one_by_one, added) = (&spans[0], &spans[1], &spans[2]);
    assert_eq!(at_once.attributes, one_by_one.attributes);
    assert_eq!(
        at_once.dropped_attributes_count,
        one_by_one.dropped_attributes_count
    );
    assert_eq!(
        at_once.attributes,
        vec![
            KeyValue::new("a", "agai"),
            KeyValue::new("b", 2),
            KeyValue::new("c", true)
        ]
    );
    assert_eq!(at_once.dropped_attributes_count, 1);
    assert_eq!(
        added.attributes,
        vec![
            KeyValue::new("z", 0),
            KeyValue::new("a", "agai"),
            KeyValue::new("b", 2)
        ]
    );
    assert_eq!(added.dropped_attributes_count, 2);
}

/// Spans add attributes without looking for their key, and the list is
/// de-duplicated before export (by the batch thread, or before a custom
/// processor such as the simple one gets the span): the exporter sees each
/// key once, in its first place with its last value, and repeats do not count
/// against the count limit, through either processor or both.
#[test]
fn repeated_keys_reach_the_exporter_once_through_every_processor() {
    for via in ["batch", "simple", "batch and simple"] {
        let exporter = InMemoryExporter::default();
        let other = InMemoryExporter::default();
        let builder = TracerProvider::builder().with_span_limits(SpanLimits {
            max_attributes_per_span: 4,
            ..SpanLimits::default()
        });
        let provider = match via {
            "batch" => builder.with_batch_exporter(exporter.clone()),
            "simple" => builder.with_simple_exporter(exporter.clone()),
            _ => builder
                .with_batch_exporter(exporter.clone())
                .with_simple_exporter(other.clone()),
        }
        .build();
        let tracer = provider.tracer("t");
        let mut below = tracer
            .span("below the limit")
            .attribute("a", 1)
            .attribute("b", 2)
            .attribute("a", 3)
            .start();
        below.set_attribute("b", 4);
        below.end();
        // The list fills with repeats of `a`; reaching the limit removes them,
        // so `c` and `d` still fit.
        let mut repeats = tracer.span("repeats").start();
        for (key, value) in [("a", 1), ("a", 2), ("a", 3), ("b", 4), ("c", 5), ("d", 6)] {
            repeats.set_attribute(key, value);
        }
        repeats.end();
        let mut full = tracer.span("at the limit").start();
        for round in 0..3 {
            for key in ["w", "x", "y", "z"] {
                full.set_attribute(key, round);
            }
        }
        full.set_attribute("v", 9); // a fifth key: dropped
        full.set_attribute("x", 10); // a key it has: overwritten
        full.end();
        provider.force_flush().unwrap();
        let mut spans = exporter.finished_spans();
        if via == "batch and simple" {
            let simple = other.finished_spans();
            assert_eq!(simple.len(), 3);
            for d in &simple {
                let batched = spans.iter().find(|b| b.name == d.name).unwrap();
                assert_eq!(d.attributes, batched.attributes, "{}", d.name);
            }
            spans = simple;
        }
        let by_name = |name: &str| {
            let d = spans.iter().find(|d| d.name == name).unwrap();
            let pairs: Vec<(String, i64)> = d
                .attributes
                .iter()
                .map(|kv| match kv.value {
                    Value::I64(v) => (kv.key.to_string(), v),
                    ref other => panic!("{other:?}"),
                })
                .collect();
            (pairs, d.dropped_attributes_count)
        };
        let pairs = |list: &[(&str, i64)]| -> Vec<(String, i64)> {
            list.iter().map(|&(k, v)| (k.to_string(), v)).collect()
        };
        assert_eq!(
            by_name("below the limit"),
            (pairs(&[("a", 3), ("b", 4)]), 0),
            "{via}"
        );
        assert_eq!(
            by_name("repeats"),
            (pairs(&[("a", 3), ("b", 4), ("c", 5), ("d", 6)]), 0),
            "{via}"
        );
        assert_eq!(
            by_name("at the limit"),
            (pairs(&[("w", 2), ("x", 10), ("y", 2), ("z", 2)]), 1),
            "{via}"
        );
    }
}

/// A span that sets one key again and again (a progress counter, say) keeps
/// a small list: attributes are pushed without a search, but a full list is
/// de-duplicated before it grows. The builder's list alike. Without that, a
/// million sets under a high count limit held a million attributes until
/// export.
#[test]
fn setting_one_key_again_and_again_keeps_the_list_small() {
    /// Records the length and capacity of each ended span's attribute list.
    #[derive(Debug, Default, Clone)]
    struct Capacities(std::sync::Arc<std::sync::Mutex<Vec<(String, usize, usize)>>>);
    impl runtrace::SpanProcessor for Capacities {
        fn on_end(&self, span: runtrace::SpanData) {
            let mut seen = self.0.lock().unwrap();
            seen.push((
                span.name.to_string(),
                span.attributes.len(),
                span.attributes.capacity(),
            ));
        }
        fn force_flush(&self, _: std::time::Instant) -> Result<(), runtrace::FlushError> {
            Ok(())
        }
        fn shutdown(&self, _: std::time::Instant) -> Result<(), runtrace::FlushError> {
            Ok(())
        }
    }
    let capacities = Capacities::default();
    let provider = TracerProvider::builder()
        .with_span_limits(SpanLimits {
            max_attributes_per_span: 1_000_000,
            ..SpanLimits::default()
        })
        .with_span_processor(capacities.clone())
        .build();
    let tracer = provider.tracer("t");
    let mut span = tracer.span("set").attribute("other", 0).start();
    for i in 0..100_000_i64 {
        span.set_attribute("progress", i);
    }
    span.end();
    let mut builder = tracer.span("built");
    for i in 0..100_000_i64 {
        builder = builder.attribute("progress", i);
    }
    builder.start().end();
    let seen = capacities.0.lock().unwrap();
    for (name, len, capacity) in seen.iter() {
        // A recycled list comes with room for up to 64 attributes (the
        // largest the pool keeps), one made here with less; neither grew
        // past 64.
        assert!(*capacity <= 64, "{name}: capacity {capacity}");
        assert!(*len <= 2, "{name}: {len} attributes");
    }
    assert_eq!(seen.len(), 2);
}
