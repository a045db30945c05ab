//! An async service traced with runtrace: a multi-thread tokio runtime serving
//! concurrent requests, each a server span across `.await`s, with children, a
//! nested `in_span` future and a spawned task that carries the trace.
//!
//! `cargo run --release -p runtrace-examples --bin async_service [-- --requests N]`
//!
//! Without `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` it starts an embedded OTLP/HTTP
//! receiver on 127.0.0.1, exports to it, and checks every received span's
//! parent. The `OTEL_*` variables of the README apply.

use runtrace::{BatchConfig, FutureExt, SpanKind, Tracer, TracerProvider};
use runtrace_examples::receiver::Receiver;
use runtrace_examples::{example_exporter, help_requested, requests_arg};
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: async_service [--requests N]   (default 1000 concurrent requests)

Serves N concurrent simulated requests on a 4-worker tokio runtime, each a
server span with 5 spans under it, and exports them over OTLP/HTTP: to
OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT if set, else to an embedded receiver whose
received trace trees it checks.";

fn main() {
    let requests = parse_args();
    let (exporter, receiver) = example_exporter().unwrap_or_else(|e| fail(&e));
    println!("exporting to {}", exporter.endpoint());
    // A burst of N requests ends 6 N spans within milliseconds: unless the
    // environment says otherwise, a queue that holds 1,000 requests' spans.
    let mut batch = BatchConfig::from_env();
    if std::env::var_os("OTEL_BSP_MAX_QUEUE_SIZE").is_none() {
        batch.max_queue_size = 8_192;
    }
    let provider = TracerProvider::from_env()
        .with_batch_config(batch)
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("async_service");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the tokio runtime: {e}")));
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..requests)
            .map(|i| {
                let span = tracer
                    .span("GET /v1/infer")
                    .kind(SpanKind::Server)
                    .attribute("request.id", i as i64)
                    .start();
                tokio::spawn(handle(tracer.clone()).in_span(span))
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
    let served = started.elapsed();
    let shutdown = provider.shutdown_with_timeout(Duration::from_secs(4));
    let stats = provider.stats();
    println!(
        "{requests} requests in {:.1} ms; spans ended {}, exported {}, dropped {}; shutdown {shutdown:?}",
        served.as_secs_f64() * 1e3,
        stats.spans_ended,
        stats.spans_exported,
        stats.dropped_total(),
    );
    if let Some(r) = receiver {
        check_trees(&r, requests);
    }
}

/// One request: awaits (so it may move between workers), children started
/// from the current context, a nested future in its own span, and a task
/// spawned with the caller's context.
async fn handle(tracer: Tracer) {
    tokio::time::sleep(Duration::from_millis(1)).await;
    tracer.span("authorize").start().end();
    let tokens = tracer
        .in_span_async("tokenize", |span| {
            span.set_attribute("tokens", 128);
            tokio::task::yield_now()
        })
        .await;
    let _: () = tokens;
    let inference = async {
        tokio::time::sleep(Duration::from_millis(2)).await;
        tracer.span("kv_cache.lookup").start().end();
    };
    inference.in_span(tracer.span("inference").start()).await;
    let audit = {
        let tracer = tracer.clone();
        async move { tracer.span("audit.write").start().end() }
    };
    let _ = tokio::spawn(audit.with_current_context()).await;
}

/// Every span the receiver got is in its request's trace, under the right
/// parent (spans whose parent was dropped, and so never received, are skipped).
fn check_trees(receiver: &Receiver, requests: u64) {
    let spans = receiver.spans();
    let mut by_trace: HashMap<Vec<u8>, Vec<_>> = HashMap::new();
    for span in &spans {
        by_trace
            .entry(span.trace_id.clone())
            .or_default()
            .push(span);
    }
    let mut wrong = 0;
    for trace in by_trace.values() {
        let id_of = |name: &str| {
            trace
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.span_id.clone())
        };
        let root = id_of("GET /v1/infer");
        let inference = id_of("inference");
        for span in trace {
            let expected = match span.name.as_str() {
                "GET /v1/infer" => Some(Vec::new()),
                "kv_cache.lookup" => inference.clone(),
                _ => root.clone(),
            };
            if let Some(expected) = expected {
                wrong += usize::from(span.parent_span_id != expected);
            }
        }
    }
    println!(
        "received {} spans in {} traces (ended {} in {requests}); spans with a wrong parent: {wrong}",
        spans.len(),
        by_trace.len(),
        requests * 6,
    );
    if wrong > 0 || by_trace.len() as u64 > requests {
        std::process::exit(1);
    }
}

fn parse_args() -> u64 {
    if help_requested() {
        let _ = writeln!(std::io::stdout(), "{USAGE}");
        std::process::exit(0);
    }
    requests_arg(1000).unwrap_or_else(|e| fail(&format!("{e}\n{USAGE}")))
}

fn fail(message: &str) -> ! {
    eprintln!("async_service: {message}");
    std::process::exit(2);
}
