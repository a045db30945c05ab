//! `with_current_span`: which span it reaches (made current by `in_span`,
//! `make_current`; not by `enter` or a bare context), nesting, ending early
//! through a handle, panics, and handles carried out of their scope.

use runtrace::sampling::AlwaysOff;
use runtrace::{
    with_current_span, Context, InMemoryExporter, KeyValue, SpanData, Status, TracerProvider, Value,
};

fn simple(exporter: &InMemoryExporter) -> TracerProvider {
    TracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one {name} in {spans:#?}");
    found[0]
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
}

#[test]
fn reaches_the_innermost_span_of_in_span_and_make_current() {
    let exporter = InMemoryExporter::default();
    let provider = simple(&exporter);
    let tracer = provider.tracer("t");
    assert_eq!(with_current_span(|_| ()), None, "no span yet");
    tracer.in_span("outer", |outer| {
        with_current_span(|span| span.set_attribute("level", "outer")).unwrap();
        {
            let _inner = tracer.span("inner").start().make_current();
            with_current_span(|span| {
                assert!(span.is_recording());
                span.set_attribute("level", "inner");
                span.add_event("checkpoint", vec![KeyValue::new("n", 1)]);
                span.set_status(Status::error("bad input"));
                span.update_name("inner.renamed");
            })
            .unwrap();
        }
        // The inner span ended with its guard; the outer one is current again,
        // and its own handle and `with_current_span` record on the same data.
        outer.set_attribute("by.handle", true);
        with_current_span(|span| {
            assert_eq!(span.span_context(), outer.span_context());
            span.set_attribute("by.current", true);
        })
        .unwrap();
        assert!(outer.is_recording());
    });
    assert_eq!(with_current_span(|_| ()), None, "nothing left current");
    assert_eq!(Context::current(), Context::new());

    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), 2);
    let (outer, inner) = (named(&spans, "outer"), named(&spans, "inner.renamed"));
    assert_eq!(inner.parent_span_id, outer.span_context.span_id());
    assert_eq!(attribute(inner, "level"), Some(&Value::from("inner")));
    assert_eq!(inner.events()[0].name, "checkpoint");
    assert_eq!(inner.status(), &Status::error("bad input"));
    assert_eq!(attribute(outer, "level"), Some(&Value::from("outer")));
    assert_eq!(attribute(outer, "by.handle"), Some(&Value::Bool(true)));
    assert_eq!(attribute(outer, "by.current"), Some(&Value::Bool(true)));
    assert!(inner.end_time_unix_nano <= outer.end_time_unix_nano);
}

#[test]
fn does_not_reach_an_entered_span_a_bare_context_or_a_dropped_one() {
    let exporter = InMemoryExporter::default();
    let provider = simple(&exporter);
    let tracer = provider.tracer("t");
    let mut entered = tracer.span("entered").start();
    {
        let _g = entered.enter();
        assert_eq!(with_current_span(|_| ()), None, "the owner records on it");
    }
    entered.end();
    tracer.in_span("handed", |handed| {
        let _over = Context::from_span_context(handed.span_context().clone()).attach();
        assert_eq!(with_current_span(|_| ()), None, "a bare context is on top");
    });
    let off = TracerProvider::builder()
        .with_sampler(AlwaysOff)
        .with_simple_exporter(exporter.clone())
        .build();
    off.tracer("t").in_span("dropped", |span| {
        assert!(!span.is_recording());
        assert_eq!(with_current_span(|_| ()), None, "not recording");
        span.set_attribute("ignored", 1);
    });
    let names: Vec<_> = exporter
        .finished_spans()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["entered", "handed"]);
}

#[test]
fn ending_through_a_handle_ends_the_span_once() {
    let exporter = InMemoryExporter::default();
    let provider = simple(&exporter);
    let tracer = provider.tracer("t");
    tracer.in_span("early", |span| {
        with_current_span(|current| current.end()).unwrap();
        assert!(!span.is_recording());
        assert_eq!(with_current_span(|_| ()), None, "ended");
        span.set_attribute("late", 1);
        span.end();
        // Still current (its context), so children nest under it.
        tracer.span("child").start().end();
    });
    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let early = named(&spans, "early");
    assert!(early.attributes.is_empty());
    assert_eq!(
        named(&spans, "child").parent_span_id,
        early.span_context.span_id()
    );
    // A handle's drop does not end the span.
    let guard = tracer.span("kept").start().make_current();
    with_current_span(|_| ()).unwrap(); // its handle drops in there
    assert_eq!(exporter.finished_spans().len(), 2);
    drop(guard);
    assert_eq!(exporter.finished_spans().len(), 3);
}

#[test]
fn a_panic_in_in_span_ends_the_span_and_restores_the_context() {
    let exporter = InMemoryExporter::default();
    let provider = simple(&exporter);
    let tracer = provider.tracer("t");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tracer.in_span("panics", |_| {
            with_current_span(|span| span.set_attribute("before", 1)).unwrap();
            panic!("handler failed");
        })
    }));
    assert!(caught.is_err());
    assert_eq!(Context::current(), Context::new());
    assert_eq!(with_current_span(|_| ()), None);
    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(attribute(&spans[0], "before"), Some(&Value::I64(1)));
}

#[test]
fn a_handle_carried_out_of_its_scope_records_nothing() {
    let exporter = InMemoryExporter::default();
    let provider = simple(&exporter);
    let tracer = provider.tracer("t");
    let mut escaped = tracer.span("decoy").start();
    tracer.in_span("scope", |handle| {
        // Swaps the handle out: "decoy" takes its place, and ends with it.
        std::mem::swap(handle, &mut escaped);
    });
    // The handle outlived its span's scope: on this thread and on another,
    // it finds nothing (ids are unique per thread), and never ends anything.
    escaped.set_attribute("late", 1);
    assert!(!escaped.is_recording());
    let mut escaped = std::thread::spawn(move || {
        let _other = tracer.span("other").start().make_current();
        escaped.set_attribute("late", 2);
        escaped.end();
        escaped
    })
    .join()
    .unwrap();
    escaped.end();
    drop(escaped);
    let spans = exporter.finished_spans();
    let mut names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        ["decoy", "other", "scope"],
        "each ended once: {spans:#?}"
    );
    assert!(spans.iter().all(|s| s.attributes.is_empty()));
}

/// Polls `future` until it is ready, checking `between` after each pending poll.
fn poll_to_end<F: std::future::Future>(future: F, mut between: impl FnMut()) {
    use std::task::{Context as TaskContext, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = TaskContext::from_waker(Waker::noop());
    while future.as_mut().poll(&mut cx).is_pending() {
        between();
    }
}

#[test]
fn reaches_the_span_of_an_in_span_future_at_each_poll() {
    use runtrace::FutureExt;
    use std::task::Poll;

    let exporter = InMemoryExporter::default();
    let provider = simple(&exporter);
    let tracer = provider.tracer("t");
    let mut polls = 0;
    let work = std::future::poll_fn(|_| {
        polls += 1;
        with_current_span(|span| span.set_attribute(format!("poll.{polls}"), polls)).unwrap();
        if polls < 3 {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    });
    poll_to_end(work.in_span(tracer.span("task").start()), || {
        // Between polls the span is not current, and its data is back home.
        assert_eq!(with_current_span(|_| ()), None);
        assert!(exporter.finished_spans().is_empty());
    });
    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), 1);
    let keys: Vec<_> = spans[0]
        .attributes
        .iter()
        .map(|kv| kv.key.to_string())
        .collect();
    assert_eq!(keys, ["poll.1", "poll.2", "poll.3"]);
}

#[test]
fn an_in_span_future_s_span_ended_early_stays_current_in_later_polls() {
    use runtrace::FutureExt;
    use std::task::Poll;

    let exporter = InMemoryExporter::default();
    let provider = simple(&exporter);
    let tracer = provider.tracer("t");
    let mut polls = 0;
    let work = std::future::poll_fn(|_| {
        polls += 1;
        if polls == 1 {
            with_current_span(|span| span.end()).unwrap();
            return Poll::Pending;
        }
        // Ended: no longer recorded on, but still the parent of new spans.
        assert_eq!(with_current_span(|_| ()), None);
        tracer.span("child").start().end();
        Poll::Ready(())
    });
    let task = tracer.span("task").start();
    let task_id = task.span_context().span_id();
    poll_to_end(work.in_span(task), || {
        assert_eq!(Context::current(), Context::new());
    });
    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    assert_eq!(named(&spans, "task").span_context.span_id(), task_id);
    assert_eq!(named(&spans, "child").parent_span_id, task_id);
}

#[test]
fn in_span_futures_of_unsampled_and_no_op_spans() {
    use runtrace::FutureExt;

    let exporter = InMemoryExporter::default();
    let dropping = TracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_sampler(AlwaysOff)
        .build();
    let tracer = dropping.tracer("t");
    let outer = tracer.span("outer").start();
    let _outer = outer.enter();

    // An unsampled span's context is current while polled.
    let unsampled = tracer.span("unsampled").start();
    let unsampled_cx = unsampled.context();
    poll_to_end(
        async { assert_eq!(Context::current(), unsampled_cx) }.in_span(unsampled),
        || {},
    );

    // A span with an invalid context (a placeholder; a no-op provider's span
    // copies the current context instead) leaves the current one.
    let outer_cx = outer.context();
    poll_to_end(
        async { assert_eq!(Context::current(), outer_cx) }.in_span(runtrace::Span::default()),
        || {},
    );
    // A no-op provider's span inside `outer` carries `outer`'s context.
    let noop = TracerProvider::noop();
    let noop_span = noop.tracer("n").span("noop").start();
    assert_eq!(noop_span.span_context(), outer.span_context());
    poll_to_end(
        async { assert_eq!(Context::current(), outer_cx) }.in_span(noop_span),
        || {},
    );
    assert!(exporter.finished_spans().is_empty());
}

#[test]
fn in_span_async_s_span_ended_by_its_closure_stays_current_in_the_future() {
    let exporter = InMemoryExporter::default();
    let provider = simple(&exporter);
    let tracer = provider.tracer("t");
    let task = tracer.in_span_async("task", |span| {
        span.end();
        async { tracer.span("child").start().end() }
    });
    poll_to_end(task, || {});
    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let task_id = named(&spans, "task").span_context.span_id();
    assert_eq!(named(&spans, "child").parent_span_id, task_id);
}
