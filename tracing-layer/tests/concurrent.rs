//! Hundreds of concurrent `#[instrument]`ed requests on a multi-thread tokio
//! runtime, with spawned `.instrument()`ed tasks and native spans: every
//! span in its request's trace, under the right parent.

use runtrace::{BatchConfig, InMemoryExporter, SpanData, SpanId, TraceId, Tracer, TracerProvider};
use runtrace_tracing::RuntraceLayer;
use std::collections::HashMap;
use std::time::Duration;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[tracing::instrument(skip(tracer), fields(otel.kind = "server", status = tracing::field::Empty))]
async fn request(tracer: Tracer, i: u64) {
    tokio::task::yield_now().await; // may resume on another worker
    tracing::info!(i, "accepted");
    lookup(i).await;
    let audit = async {
        tokio::task::yield_now().await;
        tracing::info_span!("audit.write").in_scope(|| {});
    };
    tokio::spawn(audit.instrument(tracing::info_span!("audit")))
        .await
        .unwrap();
    tracer.span("native").start().end();
    // Recorded twice: exported once, with the last value.
    tracing::Span::current().record("status", 100);
    tracing::Span::current().record("status", 200);
}

#[tracing::instrument]
async fn lookup(i: u64) {
    tokio::time::sleep(Duration::from_micros(50 * (i % 7))).await;
    tracing::info_span!("row").in_scope(|| {});
}

#[test]
fn every_span_has_the_right_parent_under_concurrent_requests() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_batch_config(
            BatchConfig::builder()
                .with_max_queue_size(65_536)
                .with_scheduled_delay(Duration::from_millis(50))
                .build(),
        )
        .with_batch_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("service");
    let subscriber = tracing_subscriber::registry().with(RuntraceLayer::new(tracer.clone()));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let requests = 500;
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
    assert_eq!(spans.len(), requests as usize * 6, "{:?}", provider.stats());

    let mut traces: HashMap<TraceId, Vec<&SpanData>> = HashMap::new();
    for span in &spans {
        traces
            .entry(span.span_context.trace_id())
            .or_default()
            .push(span);
    }
    assert_eq!(
        traces.len(),
        requests as usize,
        "requests share or split traces"
    );
    let mut seen = vec![false; requests as usize];
    for trace in traces.values() {
        let find = |name: &str| -> &SpanData {
            let found: Vec<_> = trace.iter().filter(|s| s.name == name).collect();
            assert_eq!(found.len(), 1, "{name} in {trace:#?}");
            found[0]
        };
        let id = |name| find(name).span_context.span_id();
        let request = find("request");
        assert_eq!(request.parent_span_id, SpanId::INVALID);
        assert_eq!(request.kind, runtrace::SpanKind::Server);
        let i = request
            .attributes
            .iter()
            .find(|kv| kv.key == "i")
            .map(|kv| kv.value.clone());
        let Some(runtrace::Value::I64(i)) = i else {
            panic!("no i on {request:?}")
        };
        seen[i as usize] = true;
        let status: Vec<_> = request
            .attributes
            .iter()
            .filter(|kv| kv.key == "status")
            .map(|kv| &kv.value)
            .collect();
        assert_eq!(status, [&runtrace::Value::I64(200)]);
        assert_eq!(request.events()[0].name, "accepted");
        for child in ["lookup", "audit", "native"] {
            assert_eq!(find(child).parent_span_id, id("request"), "{child}");
        }
        assert_eq!(find("row").parent_span_id, id("lookup"));
        assert_eq!(find("audit.write").parent_span_id, id("audit"));
        // Nothing ended after the request.
        assert!(trace
            .iter()
            .all(|s| s.end_time_unix_nano <= request.end_time_unix_nano));
    }
    assert!(seen.iter().all(|&s| s), "a request is missing");
    provider.shutdown().unwrap();
}
