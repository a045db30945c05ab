//! The current context survives misuse: guards dropped out of order with a
//! diagnostics handler that reads the context, guards dropped by other
//! thread-locals at thread exit, and a future polled again after a panic.
//! Its own binary: it sets the process-wide diagnostics handler.

use runtrace::{Context, FutureExt, InMemoryExporter, TracerProvider};
use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::Poll;

#[test]
fn an_out_of_order_drop_warns_once_and_the_handler_may_read_the_context() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    runtrace::diagnostics::set_handler(move |_, message| {
        // Reads the current context while the guard is being dropped.
        let current = Context::current();
        log.lock().unwrap().push((message.to_string(), current));
    });
    // Any-order guards (a `tracing` bridge's) do not warn: the one warning
    // below is the plain guards', seen with their context current.
    let (c, d) = (tracer.span("c").start(), tracer.span("d").start());
    let (gc, gd) = (
        c.context().attach_any_order(),
        d.context().attach_any_order(),
    );
    drop(gc);
    assert_eq!(Context::current(), d.context());
    drop(gd);
    let a = tracer.span("a").start();
    let b = tracer.span("b").start();
    let ga = a.enter();
    let gb = b.enter();
    drop(ga);
    assert_eq!(
        Context::current(),
        b.context(),
        "the most recent context stays current"
    );
    drop(gb);
    assert_eq!(
        Context::current(),
        Context::new(),
        "a context was left attached"
    );
    // Once: a second out-of-order drop does not warn again.
    let (g1, g2) = (a.enter(), b.enter());
    drop(g1);
    drop(g2);
    runtrace::diagnostics::reset_handler();
    let seen = seen.lock().unwrap();
    let warnings: Vec<_> = seen
        .iter()
        .filter(|(m, _)| m.contains("out of order"))
        .collect();
    assert_eq!(warnings.len(), 1, "{seen:?}");
    assert_eq!(warnings[0].1, b.context());
}

/// Holds a guard in a thread-local made before the context stack, so that it
/// is dropped after the stack is destroyed at thread exit.
struct LateGuard(RefCell<Option<(runtrace::ContextGuard, runtrace::Tracer)>>);

impl Drop for LateGuard {
    fn drop(&mut self) {
        if let Some((guard, tracer)) = self.0.borrow_mut().take() {
            drop(guard);
            // The stack is gone: an empty context, no panic.
            let span = tracer.span("after the stack").start();
            assert!(!span.span_context().trace_id().to_bytes().is_empty());
            // `in_span` makes its span current in a frame of the call, which
            // needs no stack: its handle and `with_current_span` record, and
            // a span started inside is its child.
            let ran = tracer.in_span("in_span after the stack", |span| {
                span.set_attribute("kept", 1);
                tracer.span("child after the stack").start().end();
                runtrace::with_current_span(|span| span.set_attribute("also", 2)).is_some()
            });
            assert!(ran);
            drop(
                tracer
                    .span("made current after the stack")
                    .start()
                    .make_current(),
            );
        }
    }
}

thread_local! {
    static LATE: LateGuard = const { LateGuard(RefCell::new(None)) };
}

#[test]
fn guards_and_spans_in_thread_local_destructors_do_not_abort() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    std::thread::spawn(move || {
        // Registered first, destroyed after the context stack.
        LATE.with(|_| {});
        let span = tracer.span("parent").start();
        let guard = span.enter();
        LATE.with(|late| *late.0.borrow_mut() = Some((guard, tracer.clone())));
        drop(span);
    })
    .join()
    .expect("the thread exits cleanly");
    let spans = exporter.finished_spans();
    let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(
        names,
        [
            "parent",
            "child after the stack",
            "in_span after the stack",
            "made current after the stack",
            "after the stack"
        ]
    );
    assert_eq!(spans[1].parent_span_id, spans[2].span_context.span_id());
    let keys: Vec<_> = spans[2]
        .attributes
        .iter()
        .map(|kv| kv.key.to_string())
        .collect();
    assert_eq!(keys, ["kept", "also"]);
}

#[test]
fn a_future_polled_again_after_a_panic_keeps_its_span_current() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    let mut polls = 0;
    let child_tracer = tracer.clone();
    let fut = std::future::poll_fn(move |_| {
        polls += 1;
        if polls == 1 {
            panic!("first poll");
        }
        child_tracer.span("child").start().end();
        Poll::Ready(())
    })
    .in_span(tracer.span("parent").start());
    let mut fut = Box::pin(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let first =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
    assert!(first.is_err());
    assert_eq!(
        Context::current(),
        Context::new(),
        "the panic left a context attached"
    );
    assert!(fut.as_mut().poll(&mut cx).is_ready());
    let spans = exporter.finished_spans();
    let parent = spans.iter().find(|s| s.name == "parent").unwrap();
    let child = spans.iter().find(|s| s.name == "child").unwrap();
    assert_eq!(child.parent_span_id, parent.span_context.span_id());
}
