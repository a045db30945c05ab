//! Spans across `.await` on a multi-thread tokio runtime: `FutureExt`,
//! `Tracer::in_span_async`, `with_current_span`, and tasks spawned with the
//! caller's context.

use runtrace::{
    with_current_span, BatchConfig, Context, FutureExt, InMemoryExporter, SpanData, SpanId,
    TraceId, Tracer, TracerProvider, Value,
};
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Poll, Waker};
use std::time::Duration;

fn provider(exporter: &InMemoryExporter) -> TracerProvider {
    TracerProvider::builder()
        .with_batch_config(
            BatchConfig::builder()
                .with_max_queue_size(65_536)
                .with_scheduled_delay(Duration::from_millis(50))
                .build(),
        )
        .with_batch_exporter(exporter.clone())
        .build()
}

/// One request: a server span around an async handler that awaits (and so
/// may move between worker threads), starts children, nests an `in_span`
/// future and spawns a task that carries the context.
async fn request(tracer: Tracer, i: usize) {
    let handler = async {
        tokio::task::yield_now().await;
        tracer.span("parse").start().end();
        let db = async {
            tokio::task::yield_now().await;
            tracer.span("row").start().end();
            // After an await, maybe on another thread: still "db".
            with_current_span(|span| span.set_attribute("db.rows", i as i64)).unwrap();
        };
        db.in_span(tracer.span("db").start()).await;
        let background = {
            let tracer = tracer.clone();
            async move {
                tokio::task::yield_now().await;
                tracer.span("audit").start().end();
            }
        };
        tokio::spawn(background.with_current_context())
            .await
            .unwrap();
        let render = tracer.in_span_async("render", |span| {
            span.set_attribute("i", i as i64);
            async { tokio::task::yield_now().await }
        });
        render.await;
        // Still the request's context after all those awaits.
        tracer.span("respond").start().end();
        with_current_span(|span| span.add_event("responded", vec![])).unwrap();
    };
    handler.in_span(tracer.span("request").start()).await;
}

#[test]
fn every_span_has_the_right_parent_on_a_multi_thread_runtime() {
    let exporter = InMemoryExporter::default();
    let provider = provider(&exporter);
    let tracer = provider.tracer("service");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let requests = 1_000;
    runtime.block_on(async {
        let tasks: Vec<_> = (0..requests)
            .map(|i| tokio::spawn(request(tracer.clone(), i)))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    provider.force_flush().unwrap();
    let spans = exporter.finished_spans();
    assert_eq!(spans.len(), requests * 7, "{:?}", provider.stats());

    let mut traces: HashMap<TraceId, Vec<&SpanData>> = HashMap::new();
    for span in &spans {
        traces
            .entry(span.span_context.trace_id())
            .or_default()
            .push(span);
    }
    assert_eq!(traces.len(), requests, "requests share or split traces");
    for trace in traces.values() {
        let id_of = |name: &str| -> SpanId {
            let found: Vec<_> = trace.iter().filter(|s| s.name == name).collect();
            assert_eq!(found.len(), 1, "{name} in {trace:#?}");
            found[0].span_context.span_id()
        };
        let (request, db) = (id_of("request"), id_of("db"));
        let parent_of = |name: &str| {
            trace
                .iter()
                .find(|s| s.name == name)
                .unwrap()
                .parent_span_id
        };
        assert_eq!(parent_of("request"), SpanId::INVALID);
        for child in ["parse", "db", "audit", "render", "respond"] {
            assert_eq!(parent_of(child), request, "{child}'s parent");
        }
        assert_eq!(parent_of("row"), db);
        // `with_current_span` recorded on the span polled, after awaits.
        let span = |name: &str| *trace.iter().find(|s| s.name == name).unwrap();
        let rows = &span("db").attributes;
        let render = &span("render").attributes;
        assert!(
            matches!(rows[..], [ref kv] if kv.key == "db.rows"),
            "{rows:?}"
        );
        assert_eq!(render[0].value, rows[0].value, "the same request's i");
        assert!(matches!(rows[0].value, Value::I64(_)));
        let events = span("request").events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].name, "responded");
        // Nothing ended after its parent.
        let request_end = trace
            .iter()
            .find(|s| s.name == "request")
            .unwrap()
            .end_time_unix_nano;
        assert!(trace.iter().all(|s| s.end_time_unix_nano <= request_end));
    }
    provider.shutdown().unwrap();
}

#[test]
fn an_in_span_future_dropped_unfinished_ends_its_span_once() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("service");

    // Polled once (pending), then dropped.
    {
        let mut fut = pin!(std::future::pending::<()>().in_span(tracer.span("cancelled").start()));
        let mut cx = std::task::Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            Context::current(),
            Context::new(),
            "left attached after a poll"
        );
    }
    // Never polled.
    drop(async {}.in_span(tracer.span("never polled").start()));
    // Completed, then dropped.
    {
        let mut fut = pin!(async { 7 }.in_span(tracer.span("completed").start()));
        let mut cx = std::task::Context::from_waker(Waker::noop());
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(7));
    }
    let names: Vec<_> = exporter
        .finished_spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["cancelled", "never polled", "completed"]);
}

#[test]
fn a_guard_is_not_needed_across_await_on_a_current_thread_runtime() {
    // The case that put 999 of 1,000 requests into one trace: a non-`Send`
    // future on one thread, each request awaiting while the others run.
    let exporter = InMemoryExporter::default();
    let provider = provider(&exporter);
    let tracer = provider.tracer("service");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let local = tokio::task::LocalSet::new();
        for _ in 0..100 {
            let tracer = tracer.clone();
            local.spawn_local(async move {
                let work = async {
                    tokio::task::yield_now().await;
                    tracer.span("child").start().end();
                };
                work.in_span(tracer.span("request").start()).await;
            });
        }
        local.await;
    });
    provider.force_flush().unwrap();
    let spans = exporter.finished_spans();
    let traces: std::collections::HashSet<_> =
        spans.iter().map(|s| s.span_context.trace_id()).collect();
    assert_eq!(traces.len(), 100);
    provider.shutdown().unwrap();
}
