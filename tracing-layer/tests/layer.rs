//! The layer's behaviours on one thread: fields, late records, events, the
//! `otel.*` conventions, remote parents, nesting with native spans, exits out
//! of order, links and per-layer filters.

use runtrace::sampling::{Sampler, SamplingDecision, SamplingParameters, SamplingResult};
use runtrace::{
    diagnostics, Context, InMemoryExporter, SpanContext, SpanData, SpanId, SpanKind, Status,
    TraceContextPropagator, TraceFlags, TraceId, TraceState, TracerProvider, Value,
};
use runtrace_tracing::{RuntraceLayer, SetParentError, TracingSpanExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::{info_span, Span};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

/// A provider that exports each span as it ends, and the exporter that
/// collects them.
fn simple_provider() -> (TracerProvider, InMemoryExporter) {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

/// Runs `f` with a registry and a runtrace layer as the thread's subscriber;
/// returns the spans exported, in end order.
fn traced(f: impl FnOnce(&runtrace::Tracer)) -> Vec<SpanData> {
    let (provider, exporter) = simple_provider();
    let tracer = provider.tracer("test");
    let subscriber = tracing_subscriber::registry().with(RuntraceLayer::new(tracer.clone()));
    tracing::subscriber::with_default(subscriber, || f(&tracer));
    exporter.finished_spans()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one {name:?} in {spans:#?}");
    found[0]
}

/// The value of `key` on `span`, which has the key at most once (a field
/// recorded again keeps its last value).
fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    let mut found = span.attributes.iter().filter(|kv| kv.key == key);
    let first = found.next();
    assert!(found.next().is_none(), "{key:?} twice on {:?}", span.name);
    first.map(|kv| &kv.value)
}

#[test]
fn fields_become_typed_attributes_with_the_code_location() {
    #[derive(Debug)]
    #[allow(dead_code)] // read by its Debug
    struct Model(&'static str);
    let spans = traced(|_| {
        let parent = info_span!("parent");
        let _p = parent.enter();
        let child = info_span!(
            "child",
            count = 3i64,
            big = u64::MAX,
            small = 7u64,
            ratio = 0.5,
            ok = true,
            route = "/v1/infer",
            model = ?Model("llama"),
            shown = %"text",
        );
        child.in_scope(|| {});
    });
    for span in [named(&spans, "parent"), named(&spans, "child")] {
        assert_eq!(
            attribute(span, "code.namespace"),
            Some(&Value::from(module_path!()))
        );
        assert_eq!(
            attribute(span, "code.filepath"),
            Some(&Value::from(file!()))
        );
        assert!(matches!(attribute(span, "code.lineno"), Some(Value::I64(l)) if *l > 0));
    }
    let child = named(&spans, "child");
    assert_eq!(attribute(child, "count"), Some(&Value::I64(3)));
    assert_eq!(
        attribute(child, "big"),
        Some(&Value::from(u64::MAX.to_string()))
    );
    assert_eq!(attribute(child, "small"), Some(&Value::I64(7)));
    assert_eq!(attribute(child, "ratio"), Some(&Value::F64(0.5)));
    assert_eq!(attribute(child, "ok"), Some(&Value::Bool(true)));
    assert_eq!(attribute(child, "route"), Some(&Value::from("/v1/infer")));
    assert_eq!(
        attribute(child, "model"),
        Some(&Value::from("Model(\"llama\")"))
    );
    assert_eq!(attribute(child, "shown"), Some(&Value::from("text")));
}

#[test]
fn fields_recorded_later_are_added_to_roots_and_children() {
    let spans = traced(|_| {
        let root = info_span!("root", status = tracing::field::Empty);
        root.record("status", 200);
        let _r = root.enter();
        root.record("late", "after enter"); // not declared: ignored by tracing
        let child = info_span!("child", rows = tracing::field::Empty, cached = false);
        child.record("rows", 12u64);
        child.record("cached", true);
        drop(child);
        root.record("status", 503);
    });
    let root = named(&spans, "root");
    assert_eq!(attribute(root, "status"), Some(&Value::I64(503)));
    assert_eq!(attribute(root, "late"), None);
    let child = named(&spans, "child");
    assert_eq!(attribute(child, "rows"), Some(&Value::I64(12)));
    assert_eq!(attribute(child, "cached"), Some(&Value::Bool(true)));
}

#[test]
fn events_become_span_events_and_events_outside_spans_are_ignored() {
    let spans = traced(|_| {
        tracing::info!(ignored = true, "outside any span");
        let span = info_span!("work");
        let _e = span.enter();
        tracing::info!(rows = 3, "fetched");
        tracing::warn!(retry = 1u64);
        let other = info_span!("other");
        tracing::info!(parent: &other, "explicit parent");
    });
    let work = named(&spans, "work");
    let events = work.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0].name, "fetched");
    let attrs: HashMap<_, _> = events[0]
        .attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.clone()))
        .collect();
    assert_eq!(attrs["rows"], Value::I64(3));
    assert_eq!(attrs["level"], Value::from("INFO"));
    assert_eq!(attrs["target"], Value::from(module_path!()));
    // No message: the event's own name (file and line).
    assert!(events[1].name.starts_with("event "), "{}", events[1].name);
    assert_eq!(work.status(), &Status::Unset);
    assert_eq!(named(&spans, "other").events()[0].name, "explicit parent");
}

#[test]
fn otel_fields_set_name_kind_and_status() {
    let spans = traced(|_| {
        let root = info_span!("root", otel.name = "GET /items", otel.kind = "server");
        let _r = root.enter();
        info_span!("call", otel.kind = "client", otel.status_code = "ok").in_scope(|| {});
        info_span!("publish", otel.kind = "Producer").in_scope(|| {});
        let failing = info_span!(
            "failing",
            otel.kind = "consumer",
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty
        );
        failing.record("otel.status_code", "error");
        failing.record("otel.status_message", "queue closed");
        drop(failing);
        root.record("otel.name", "GET /items/{id}");
    });
    let root = named(&spans, "GET /items/{id}");
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(
        attribute(root, "otel.name"),
        None,
        "conventions are not attributes"
    );
    let call = named(&spans, "call");
    assert_eq!((call.kind, call.status()), (SpanKind::Client, &Status::Ok));
    assert_eq!(named(&spans, "publish").kind, SpanKind::Producer);
    let failing = named(&spans, "failing");
    assert_eq!(failing.kind, SpanKind::Consumer);
    assert_eq!(failing.status(), &Status::error("queue closed"));
}

#[derive(Debug)]
struct Timeout;

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream timed out")
    }
}

impl std::error::Error for Timeout {}

#[tracing::instrument(err)]
fn fetch() -> Result<(), Timeout> {
    Err(Timeout)
}

#[test]
fn error_fields_and_events_record_exceptions_and_error_status() {
    let spans = traced(|_| {
        let _ = fetch();
        let error: &(dyn std::error::Error + 'static) = &Timeout;
        info_span!("field", error).in_scope(|| {});
        info_span!("logged").in_scope(|| tracing::error!("disk full"));
        info_span!("described").in_scope(|| {
            tracing::error!(exception = %"parse failed", "while reading");
            tracing::error!("later, without a description");
        });
    });
    let fetch = named(&spans, "fetch");
    assert_eq!(fetch.status(), &Status::error("upstream timed out"));
    let exception = &fetch.events()[0];
    assert_eq!(exception.name, "exception");
    assert!(exception
        .attributes
        .iter()
        .any(|kv| kv.key == "exception.message" && kv.value == Value::from("upstream timed out")));

    let field = named(&spans, "field");
    assert_eq!(field.status(), &Status::error("upstream timed out"));
    assert_eq!(field.events()[0].name, "exception");

    assert_eq!(named(&spans, "logged").status(), &Status::error(""));
    let described = named(&spans, "described");
    assert_eq!(described.status(), &Status::error("parse failed"));
    assert_eq!(described.events()[0].name, "exception");
    assert!(described.events()[0]
        .attributes
        .iter()
        .any(|kv| kv.key == "message" && kv.value == Value::from("while reading")));
}

#[test]
fn a_remote_parent_set_before_entering_is_the_root_s_parent() {
    let propagator = TraceContextPropagator;
    let incoming = HashMap::from([(
        "traceparent".to_string(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
    )]);
    let mut outgoing = HashMap::new();
    let spans = traced(|_| {
        let request = info_span!("request", otel.kind = "server");
        assert_eq!(request.set_parent(&propagator.extract(&incoming)), Ok(()));
        let _r = request.enter();
        let call = info_span!("call", otel.kind = "client");
        // Its first child started it.
        assert_eq!(
            request.set_parent(&Context::new()),
            Err(SetParentError::AlreadyStarted)
        );
        assert_eq!(
            call.set_parent(&Context::new()),
            Err(SetParentError::AlreadyStarted)
        );
        propagator.inject(&call.context(), &mut outgoing);
    });
    let request = named(&spans, "request");
    let call = named(&spans, "call");
    assert_eq!(
        request.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(request.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(call.parent_span_id, request.span_context.span_id());
    assert_eq!(
        outgoing["traceparent"],
        format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
            call.span_context.span_id()
        )
    );
}

/// Entering alone does not start a local root (nothing read its context
/// yet): a remote parent set after the first enter still applies.
#[test]
fn a_remote_parent_set_after_entering_applies_until_the_root_is_used() {
    let parent = Context::from_span_context(SpanContext::new(
        TraceId::from_bytes([7; 16]),
        SpanId::from_bytes([7; 8]),
        TraceFlags::SAMPLED,
        true,
        TraceState::EMPTY,
    ));
    let spans = traced(|tracer| {
        let request = info_span!("request");
        request.in_scope(|| {});
        let _r = request.enter();
        assert_eq!(request.set_parent(&parent), Ok(()));
        // A native span inside reads the current context: the root starts.
        tracer.span("native").start().end();
        assert_eq!(
            request.set_parent(&Context::new()),
            Err(SetParentError::AlreadyStarted)
        );
    });
    let request = named(&spans, "request");
    assert_eq!(
        request.span_context.trace_id(),
        TraceId::from_bytes([7; 16])
    );
    assert_eq!(request.parent_span_id, SpanId::from_bytes([7; 8]));
    assert!(request.parent_is_remote);
    assert_eq!(
        named(&spans, "native").parent_span_id,
        request.span_context.span_id()
    );
}

#[test]
fn set_parent_without_a_runtrace_layer_is_an_error() {
    let subscriber = tracing_subscriber::registry();
    tracing::subscriber::with_default(subscriber, || {
        let span = info_span!("untraced");
        assert_eq!(
            span.set_parent(&Context::new()),
            Err(SetParentError::NotTraced)
        );
        assert_eq!(span.context(), Context::new());
    });
    assert_eq!(
        Span::none().set_parent(&Context::new()),
        Err(SetParentError::NotTraced)
    );
}

#[test]
fn native_spans_nest_in_tracing_spans_and_the_other_way_round() {
    let spans = traced(|tracer| {
        let outer = info_span!("tracing outer");
        outer.in_scope(|| {
            tracer.in_span("native middle", |_| {
                info_span!("tracing inner").in_scope(|| {
                    tracer.span("native leaf").start().end();
                });
            });
        });
        assert_eq!(Context::current(), Context::new(), "left attached");
    });
    let id = |name| named(&spans, name).span_context.span_id();
    assert_eq!(
        named(&spans, "tracing outer").parent_span_id,
        SpanId::INVALID
    );
    assert_eq!(
        named(&spans, "native middle").parent_span_id,
        id("tracing outer")
    );
    assert_eq!(
        named(&spans, "tracing inner").parent_span_id,
        id("native middle")
    );
    assert_eq!(
        named(&spans, "native leaf").parent_span_id,
        id("tracing inner")
    );
}

/// Children made one after another in an entered span are its children; a
/// native span made current between them, or a sibling entered in turn,
/// parents the children made inside it, and the entered span's later
/// children are its own again.
#[test]
fn children_made_in_turn_in_an_entered_span_keep_the_right_parents() {
    let spans = traced(|tracer| {
        let root = info_span!("root");
        let _root = root.enter();
        info_span!("child 1").in_scope(|| {});
        info_span!("child 2").in_scope(|| {
            info_span!("grandchild").in_scope(|| {});
        });
        tracer.in_span("native", |_| {
            info_span!("in native").in_scope(|| {});
        });
        let sibling = info_span!("sibling");
        sibling.in_scope(|| info_span!("in sibling").in_scope(|| {}));
        info_span!("child 3").in_scope(|| {});
    });
    let id = |name| named(&spans, name).span_context.span_id();
    let parent = |name| named(&spans, name).parent_span_id;
    for child in ["child 1", "child 2", "native", "sibling", "child 3"] {
        assert_eq!(parent(child), id("root"), "{child}");
    }
    assert_eq!(parent("grandchild"), id("child 2"));
    assert_eq!(parent("in native"), id("native"));
    assert_eq!(parent("in sibling"), id("sibling"));
    let trace = named(&spans, "root").span_context.trace_id();
    assert!(spans.iter().all(|s| s.span_context.trace_id() == trace));
}

/// A `tracing` span entered while another dispatcher is the thread's
/// default: its context is found at once, and native spans inside are its
/// children all the same.
#[test]
fn a_span_entered_under_another_default_dispatcher_is_still_current() {
    let (provider, exporter) = simple_provider();
    let tracer = provider.tracer("test");
    let traced = tracing_subscriber::registry().with(RuntraceLayer::new(tracer.clone()));
    let span = tracing::subscriber::with_default(traced, || info_span!("traced"));
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        span.in_scope(|| {
            tracer.span("native").start().end();
            assert_eq!(
                Context::current().span_context(),
                span.context().span_context()
            );
        });
    });
    drop(span);
    let spans = exporter.finished_spans();
    assert_eq!(
        named(&spans, "native").parent_span_id,
        named(&spans, "traced").span_context.span_id()
    );
}

/// A subscriber shared through an `Arc` and made the default twice: the
/// first dispatcher is gone by the second, and the layer's spans are looked
/// up in the second.
#[test]
fn a_shared_subscriber_made_the_default_again_keeps_native_spans_nested() {
    let (provider, exporter) = simple_provider();
    let tracer = provider.tracer("test");
    let subscriber =
        Arc::new(tracing_subscriber::registry().with(RuntraceLayer::new(tracer.clone())));
    for round in 0..2 {
        tracing::subscriber::with_default(subscriber.clone(), || {
            let span = info_span!("traced", round);
            let _entered = span.enter();
            tracer.span("native").start().end();
        });
    }
    let spans = exporter.finished_spans();
    let traced: Vec<_> = spans.iter().filter(|s| s.name == "traced").collect();
    let native: Vec<_> = spans.iter().filter(|s| s.name == "native").collect();
    assert_eq!((traced.len(), native.len()), (2, 2));
    for (native, traced) in native.iter().zip(&traced) {
        assert_eq!(native.parent_span_id, traced.span_context.span_id());
    }
}

/// Boxed and filtered layers let downcasts through: their spans are looked
/// up lazily, and native spans nest in them.
#[test]
fn boxed_and_filtered_layers_keep_native_spans_nested() {
    let (provider, exporter) = simple_provider();
    let tracer = provider.tracer("test");
    let boxed = RuntraceLayer::new(tracer.clone()).boxed();
    let filtered =
        RuntraceLayer::new(tracer.clone()).with_filter(filter_fn(|meta| meta.target() != "noisy"));
    let run = |name: &'static str| {
        let span = info_span!("traced", name);
        span.in_scope(|| {
            info_span!(target: "noisy", "skipped").in_scope(|| {
                tracer.span(name).start().end();
            });
        });
    };
    tracing::subscriber::with_default(tracing_subscriber::registry().with(boxed), || {
        run("in boxed")
    });
    tracing::subscriber::with_default(tracing_subscriber::registry().with(filtered), || {
        run("in filtered")
    });
    let spans = exporter.finished_spans();
    let traced: Vec<_> = spans.iter().filter(|s| s.name == "traced").collect();
    // The boxed layer keeps "skipped", the filtered one does not.
    let skipped = named(&spans, "skipped");
    assert_eq!(
        named(&spans, "in boxed").parent_span_id,
        skipped.span_context.span_id()
    );
    assert_eq!(skipped.parent_span_id, traced[0].span_context.span_id());
    assert_eq!(
        named(&spans, "in filtered").parent_span_id,
        traced[1].span_context.span_id()
    );
}

/// A span entered while another dispatcher is the default, after this thread
/// has listed its own: looked up lazily there, and current all the same.
#[test]
fn a_span_of_a_listed_dispatcher_entered_under_another_default_is_current() {
    let (provider, exporter) = simple_provider();
    let tracer = provider.tracer("test");
    let traced = tracing::Dispatch::new(
        tracing_subscriber::registry().with(RuntraceLayer::new(tracer.clone())),
    );
    // Lists `traced` on this thread.
    tracing::dispatcher::with_default(&traced, || info_span!("first").in_scope(|| {}));
    let span = tracing::dispatcher::with_default(&traced, || info_span!("traced"));
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        span.in_scope(|| tracer.span("native").start().end());
    });
    drop(span);
    let spans = exporter.finished_spans();
    assert_eq!(
        named(&spans, "native").parent_span_id,
        named(&spans, "traced").span_context.span_id()
    );
}

/// The context kept from the last lookup is the last entry's only: spans
/// entered one after another, and again, each parent their native spans.
#[test]
fn spans_entered_one_after_another_each_parent_their_native_spans() {
    let spans = traced(|tracer| {
        let a = info_span!("a");
        let b = info_span!("b");
        for (span, child) in [(&a, "under a"), (&b, "under b"), (&a, "under a again")] {
            let _entered = span.enter();
            tracer.span(child).start().end();
            tracer.span(child).start().end();
        }
        let _a = a.enter();
        let _b = b.enter();
        tracer.span("under b in a").start().end();
    });
    let id = |name| named(&spans, name).span_context.span_id();
    for (child, parent) in [("under a", "a"), ("under b", "b"), ("under a again", "a")] {
        let children: Vec<_> = spans.iter().filter(|s| s.name == child).collect();
        assert_eq!(children.len(), 2);
        assert!(
            children.iter().all(|s| s.parent_span_id == id(parent)),
            "{child}"
        );
    }
    assert_eq!(named(&spans, "under b in a").parent_span_id, id("b"));
}

/// A future made current with `with_context` inside an entered local root:
/// its context is the parent of what starts in it, and reading it leaves the
/// root unstarted (its remote parent can still be set).
#[test]
fn a_context_frame_inside_an_entered_root_does_not_start_it() {
    use runtrace::FutureExt;
    use std::future::Future;
    let remote = Context::from_span_context(SpanContext::new(
        TraceId::from_bytes([9; 16]),
        SpanId::from_bytes([9; 8]),
        TraceFlags::SAMPLED,
        true,
        TraceState::EMPTY,
    ));
    let spans = traced(|tracer| {
        let root = info_span!("root");
        let _entered = root.enter();
        let fut = std::pin::pin!(
            async { tracer.span("in frame").start().end() }.with_context(remote.clone())
        );
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(fut.poll(&mut cx).is_ready());
        assert_eq!(root.set_parent(&remote), Ok(()), "the root had started");
    });
    assert_eq!(
        named(&spans, "in frame").parent_span_id,
        SpanId::from_bytes([9; 8])
    );
    assert_eq!(
        named(&spans, "root").parent_span_id,
        SpanId::from_bytes([9; 8])
    );
}

/// Inside a `tracing` span entered in a native one, the native span is not
/// current: `with_current_span` does nothing, and `Context::current()` is
/// the `tracing` span's, read again as often as asked.
#[test]
fn inside_a_tracing_span_the_native_span_around_it_is_not_current() {
    let spans = traced(|tracer| {
        tracer.in_span("native", |_| {
            let inner = info_span!("inner");
            let _inner = inner.enter();
            assert_eq!(runtrace::with_current_span(|_| ()), None);
            let first = Context::current();
            assert_eq!(first.span_context(), inner.context().span_context());
            assert_eq!(Context::current(), first);
            assert_eq!(runtrace::with_current_span(|_| ()), None);
        });
    });
    assert_eq!(
        named(&spans, "inner").parent_span_id,
        named(&spans, "native").span_context.span_id()
    );
}

#[test]
fn exits_out_of_order_keep_the_innermost_entered_span_current_without_a_warning() {
    let warnings = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = warnings.clone();
    diagnostics::set_handler(move |_, message| seen.lock().unwrap().push(message.to_string()));
    let spans = traced(|tracer| {
        let a = info_span!("a");
        let b = info_span!("b");
        let c = info_span!("c");
        let ea = a.enter();
        let eb = b.enter();
        let ec = c.enter();
        drop(eb); // b exits while c is still entered
        tracer.span("under c").start().end();
        drop(ea);
        tracer.span("still under c").start().end();
        let eb = b.enter();
        drop(ec);
        tracer.span("under b").start().end();
        drop(eb);
        tracer.span("root").start().end();
    });
    diagnostics::reset_handler();
    let id = |name| named(&spans, name).span_context.span_id();
    assert_eq!(named(&spans, "under c").parent_span_id, id("c"));
    assert_eq!(named(&spans, "still under c").parent_span_id, id("c"));
    assert_eq!(named(&spans, "under b").parent_span_id, id("b"));
    assert_eq!(named(&spans, "root").parent_span_id, SpanId::INVALID);
    let warnings = warnings.lock().unwrap();
    assert!(
        !warnings.iter().any(|w| w.contains("out of order")),
        "{warnings:?}"
    );
}

/// A `tracing` span entered in one poll of an `in_span` future and exited in
/// the next (its guard held across the `.await`): the spans entered after it
/// in that poll are still the current context, not the future's span.
#[test]
fn an_enter_held_across_a_poll_of_an_in_span_future_does_not_hide_later_entries() {
    use runtrace::FutureExt;
    use std::future::Future;
    use std::task::Poll;
    let spans = traced(|tracer| {
        let held = info_span!("held");
        let mut entered = Some(held.clone().entered());
        let mut polls = 0;
        let fut = std::future::poll_fn(move |_| {
            polls += 1;
            if polls == 1 {
                return Poll::Pending;
            }
            // The second poll: the guard from before the frame leaves...
            drop(entered.take());
            // ...and a span entered now is the parent of what starts inside.
            let inner = info_span!("inner");
            let _inner = inner.enter();
            info_span!("leaf").in_scope(|| {});
            Poll::Ready(())
        })
        .in_span(tracer.span("future").start());
        let mut fut = std::pin::pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        drop(held);
    });
    let (inner, leaf) = (named(&spans, "inner"), named(&spans, "leaf"));
    assert_eq!(leaf.parent_span_id, inner.span_context.span_id());
    assert_eq!(
        inner.parent_span_id,
        named(&spans, "future").span_context.span_id()
    );
}

#[test]
fn follows_from_and_add_link_become_links() {
    let spans = traced(|_| {
        let cause = info_span!("cause");
        let effect = info_span!("effect");
        effect.follows_from(&cause);
        let remote = SpanContext::new(
            runtrace::TraceId::from_bytes([7; 16]),
            SpanId::from_bytes([8; 8]),
            runtrace::TraceFlags::SAMPLED,
            true,
            runtrace::TraceState::EMPTY,
        );
        effect.add_link(remote.clone());
        let _e = effect.enter();
        let child = info_span!("child");
        child.follows_from(&cause);
        child.add_link(remote);
    });
    let cause = named(&spans, "cause").span_context.clone();
    for name in ["effect", "child"] {
        let links: Vec<_> = named(&spans, name)
            .links()
            .iter()
            .map(|l| l.span_context.span_id())
            .collect();
        assert_eq!(
            links,
            [cause.span_id(), SpanId::from_bytes([8; 8])],
            "{name}"
        );
    }
}

#[test]
fn a_per_layer_filter_skips_spans_and_their_children_attach_above() {
    let (provider, exporter) = simple_provider();
    let layer = RuntraceLayer::new(provider.tracer("test"))
        .with_filter(filter_fn(|meta| meta.target() != "noisy"));
    let outer_context =
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let outer = info_span!("outer");
            // Asked before first use: the filtered layer starts it.
            let outer_context = outer.context();
            let _outer = outer.entered();
            let _skipped = info_span!(target: "noisy", "skipped").entered();
            info_span!("inner").in_scope(|| tracing::info!(target: "noisy", "filtered out"));
            outer_context
        });
    let spans = exporter.finished_spans();
    let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["inner", "outer"]);
    assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
    assert!(spans[0].events().is_empty());
    assert_eq!(outer_context.span_context(), Some(&spans[1].span_context));
}

#[test]
fn a_root_never_entered_ends_on_close_with_its_creation_time() {
    let spans = traced(|_| {
        let span = info_span!("idle");
        std::thread::sleep(std::time::Duration::from_millis(5));
        drop(span);
    });
    let idle = named(&spans, "idle");
    assert!(idle.end_time_unix_nano - idle.start_time_unix_nano >= 5_000_000);
}

fn nanos(span: &SpanData, key: &str) -> Option<i64> {
    match attribute(span, key)? {
        Value::I64(ns) => Some(*ns),
        other => panic!("{key} is {other:?}"),
    }
}

/// Busy while entered (a nested enter counts once), idle from the creation or
/// an exit to the next enter. Sleeps of 5 ms; the bounds only need the
/// sleeps to last at least that long, and the sum to fit in the elapsed time.
#[test]
fn tracked_inactivity_records_busy_and_idle_time() {
    let (provider, exporter) = simple_provider();
    let layer = RuntraceLayer::new(provider.tracer("test")).with_tracked_inactivity(true);
    let sleep = || std::thread::sleep(std::time::Duration::from_millis(5));
    let started = std::time::Instant::now();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = info_span!("timed");
        sleep(); // idle
        span.in_scope(|| {
            sleep(); // busy
            span.in_scope(sleep); // busy, nested: counted once
        });
        sleep(); // idle
        span.in_scope(sleep); // busy
        sleep(); // after the last exit: neither
        drop(span);
    });
    let elapsed = i64::try_from(started.elapsed().as_nanos()).unwrap();
    let spans = exporter.finished_spans();
    let timed = named(&spans, "timed");
    let busy = nanos(timed, "busy_ns").expect("busy_ns");
    let idle = nanos(timed, "idle_ns").expect("idle_ns");
    assert!(busy >= 15_000_000, "busy {busy} ns");
    assert!(idle >= 10_000_000, "idle {idle} ns");
    assert!(
        busy + idle + 5_000_000 <= elapsed,
        "{busy} + {idle} + 5 ms > {elapsed} ns"
    );
}

#[test]
fn busy_and_idle_time_are_off_by_default() {
    let spans = traced(|_| info_span!("plain").in_scope(|| ()));
    let plain = named(&spans, "plain");
    assert_eq!(nanos(plain, "busy_ns"), None);
    assert_eq!(nanos(plain, "idle_ns"), None);
}

/// `reload::Layer` forwards no downcast, so `context()` cannot find the layer:
/// started spans still give their context, and a local root gives its own
/// once entered (empty before, documented).
#[test]
fn context_behind_a_reload_layer() {
    let (provider, exporter) = simple_provider();
    let (layer, _handle) =
        tracing_subscriber::reload::Layer::new(RuntraceLayer::new(provider.tracer("test")));
    let seen =
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let root = info_span!("root");
            let before_use = root.context();
            let _entered = root.enter();
            let root_context = root.context();
            let child = info_span!("child");
            (before_use, root_context, child.context())
        });
    let (before_use, root_context, child_context) = seen;
    let spans = exporter.finished_spans();
    assert_eq!(before_use, Context::new());
    assert_eq!(
        root_context.span_context(),
        Some(&named(&spans, "root").span_context)
    );
    assert_eq!(
        child_context.span_context(),
        Some(&named(&spans, "child").span_context)
    );
}

/// A boxed layer reloaded while its span is entered: the new layer, at
/// another address, exits what the old one entered, so the old span's context
/// does not stay current on the thread.
#[test]
fn a_boxed_layer_reloaded_inside_a_span_leaves_no_context_behind() {
    type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;
    let (provider, exporter) = simple_provider();
    let boxed =
        |name: &'static str| -> Boxed { Box::new(RuntraceLayer::new(provider.tracer(name))) };
    let (layer, handle) = tracing_subscriber::reload::Layer::new(boxed("old"));
    let (inside, after) =
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let span = info_span!("entered");
            let entered = span.enter();
            let inside = Context::current();
            handle.reload(boxed("new")).expect("reloaded");
            drop(entered);
            (inside, Context::current())
        });
    let spans = exporter.finished_spans();
    assert_eq!(
        inside.span_context(),
        Some(&named(&spans, "entered").span_context)
    );
    assert_eq!(after, Context::new());
}

/// Drops the spans whose builder attributes say `health = true`.
#[derive(Debug)]
struct DropHealthChecks;

impl Sampler for DropHealthChecks {
    fn should_sample(&self, params: &SamplingParameters<'_>) -> SamplingResult {
        let health = params
            .attributes
            .iter()
            .any(|kv| kv.key == "health" && kv.value == Value::Bool(true));
        SamplingResult {
            decision: if health {
                SamplingDecision::Drop
            } else {
                SamplingDecision::RecordAndSample
            },
            attributes: Vec::new(),
            trace_state: params.parent_trace_state(),
        }
    }

    fn description(&self) -> String {
        "DropHealthChecks".into()
    }
}

/// A local root's fields are its builder attributes, so its sampler sees them.
#[test]
fn a_local_roots_sampler_sees_its_fields() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_sampler(DropHealthChecks)
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = RuntraceLayer::new(provider.tracer("test"));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info_span!("GET /health", health = true).in_scope(|| {});
        info_span!("GET /items", health = false).in_scope(|| {});
    });
    let names: Vec<_> = exporter
        .finished_spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["GET /items"]);
}

#[test]
fn with_threads_records_the_creating_thread_on_roots_and_children() {
    // A short name is kept inline, a long one shared: both are copied.
    for thread_name in ["worker-7", "a-worker-whose-name-is-not-inline"] {
        let (provider, exporter) = simple_provider();
        let layer = RuntraceLayer::new(provider.tracer("test")).with_threads(true);
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        std::thread::Builder::new()
            .name(thread_name.into())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let root = info_span!("root");
                    let _entered = root.enter();
                    info_span!("child").in_scope(|| {});
                })
            })
            .unwrap()
            .join()
            .unwrap();
        let spans = exporter.finished_spans();
        for name in ["root", "child"] {
            let span = named(&spans, name);
            assert_eq!(
                attribute(span, "thread.name").and_then(Value::as_str),
                Some(thread_name)
            );
            assert!(matches!(attribute(span, "thread.id"), Some(Value::I64(id)) if *id > 0));
        }
    }
    // Off by default.
    let spans = traced(|_| info_span!("plain").in_scope(|| {}));
    assert!(attribute(named(&spans, "plain"), "thread.id").is_none());
}

/// The names of the events each span got.
fn events_by_span(spans: &[SpanData]) -> HashMap<String, Vec<String>> {
    spans
        .iter()
        .map(|s| {
            let events = s.events().iter().map(|e| e.name.to_string()).collect();
            (s.name.to_string(), events)
        })
        .collect()
}

// The event tests below go through the layer's own list of entered spans
// (the fast path, `current::innermost`); its unit tests in `src/current.rs`
// cover re-entries, exits out of order and layers sharing a thread.

#[test]
fn an_event_goes_to_the_span_the_registry_calls_current() {
    let spans = traced(|_| {
        let a = info_span!("a");
        let b = info_span!("b");
        let _a = a.enter();
        let _b = b.enter();
        tracing::info!("in b");
        {
            // Re-entered: the registry's current span stays `b`.
            let _a_again = a.enter();
            tracing::info!("in b again");
        }
        drop(_b);
        tracing::info!("in a");
        // An explicit parent wins over the current span.
        tracing::info!(parent: &b, "to b");
    });
    let events = events_by_span(&spans);
    assert_eq!(events["b"], ["in b", "in b again", "to b"]);
    assert_eq!(events["a"], ["in a"]);
}

#[test]
fn an_event_in_a_filtered_span_goes_to_the_nearest_kept_one() {
    let (provider, exporter) = simple_provider();
    let layer = RuntraceLayer::new(provider.tracer("test"))
        .with_filter(filter_fn(|meta| meta.target() != "noisy"));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _outer = info_span!("outer").entered();
        let _skipped = info_span!(target: "noisy", "skipped").entered();
        tracing::info!("kept");
    });
    let events = events_by_span(&exporter.finished_spans());
    assert_eq!(events["outer"], ["kept"]);
}

/// Two subscribers on one thread number their spans alike (each registry's
/// first span is id 1): each layer's events and exits stay with its own.
#[test]
fn two_subscribers_on_one_thread_keep_their_spans_apart() {
    let (provider, exporter) = simple_provider();
    let subscriber = |name: &'static str| {
        tracing_subscriber::registry().with(RuntraceLayer::new(provider.tracer(name)))
    };
    tracing::subscriber::with_default(subscriber("outer"), || {
        let outer = info_span!("outer");
        let outer_guard = outer.enter();
        tracing::subscriber::with_default(subscriber("inner"), || {
            let inner = info_span!("inner");
            let _inner = inner.enter();
            assert_eq!(outer.id(), inner.id(), "the ids collide");
            tracing::info!("in inner");
        });
        tracing::info!("in outer");
        drop(outer_guard);
    });
    let spans = exporter.finished_spans();
    let events = events_by_span(&spans);
    assert_eq!(events["inner"], ["in inner"]);
    assert_eq!(events["outer"], ["in outer"]);
    // The inner subscriber's root is a child of the outer's span, entered
    // (and current) on this thread when it started.
    assert_eq!(
        named(&spans, "inner").parent_span_id,
        named(&spans, "outer").span_context.span_id()
    );
}

/// A disabled layer keeps no entries, so its exits must not take another
/// subscriber's entry of the same id: the outer span stays current.
#[test]
fn a_disabled_layer_on_the_same_thread_leaves_the_other_subscribers_span_current() {
    let (provider, _exporter) = simple_provider();
    let outer_subscriber =
        tracing_subscriber::registry().with(RuntraceLayer::new(provider.tracer("outer")));
    let disabled_subscriber = tracing_subscriber::registry()
        .with(RuntraceLayer::new(TracerProvider::noop().tracer("off")));
    let (outer_context, after_inner) = tracing::subscriber::with_default(outer_subscriber, || {
        let outer = info_span!("outer");
        let _outer = outer.enter();
        let outer_context = Context::current();
        tracing::subscriber::with_default(disabled_subscriber, || {
            let inner = info_span!("inner");
            assert_eq!(outer.id(), inner.id(), "the ids collide");
            inner.in_scope(|| ());
        });
        (outer_context, Context::current())
    });
    assert!(outer_context.span_context().is_some());
    assert_eq!(after_inner, outer_context);
}
