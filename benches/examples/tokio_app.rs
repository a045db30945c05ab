//! Whole-process CPU per span of a tokio service, runtrace against
//! opentelemetry_sdk, in one run: a 4-worker multi-thread runtime serving
//! 1,000 concurrent requests, each 5 spans (a server span around the handler,
//! two children, one around a nested future, one in a spawned task) with
//! yields between them, so that tasks move between workers.
//!
//! ```text
//! cargo run --release -p runtrace-benches --example tokio_app [-- ROUNDS [LIB]]
//! ```
//!
//! Each round serves the requests once with each library (alternating which
//! goes first) and reads the process's CPU time (user + system, all threads,
//! the batch workers included) around it. Both export through their batch
//! processor to an exporter that discards. Prints CPU per span for each round
//! and the medians. The runtime's own cost (tasks, yields, spawns) is in both,
//! and most of it: a third round type serves the same requests with tracing
//! disabled (runtrace's no-op provider), and "tracing" is each library's CPU
//! less that baseline.
//!
//! With `LIB` (`none`, `runtrace` or `otel`) only that library's rounds run,
//! so that a profiler counts one library, as in
//! `valgrind --tool=callgrind target/release/examples/tokio_app 1 runtrace`
//! (whole-process instructions, which the machine's phase does not move).

use runtrace_benches::{process_cpu, rounds_and_library, Discard};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const REQUESTS: u64 = 1_000;
const SPANS_PER_REQUEST: u64 = 5;
const QUEUE: usize = 65_536;

/// Times the requests are served per round, so that a round takes seconds of
/// CPU against the 10 ms tick.
const REPEAT: u64 = 100;

mod rt {
    use super::*;
    use runtrace::{BatchConfig, FutureExt, SpanKind, Tracer, TracerProvider};

    async fn request(tracer: Tracer, i: u64) {
        let span = tracer
            .span("GET /items")
            .kind(SpanKind::Server)
            .attribute("request.id", i as i64)
            .start();
        let handler = async {
            tokio::task::yield_now().await;
            tracer.span("authorize").start().end();
            tracer
                .in_span_async("query", |_| tokio::task::yield_now())
                .await;
            let audit = {
                let tracer = tracer.clone();
                async move { tracer.span("audit").start().end() }
            };
            tokio::spawn(audit.with_current_context()).await.unwrap();
            tracer.span("render").start().end();
        };
        handler.in_span(span).await;
    }

    /// Serves the requests with runtrace (or, with `disabled`, a no-op
    /// provider: the same tasks, no tracing to speak of).
    pub(super) fn round(runtime: &tokio::runtime::Runtime, disabled: bool) -> (Duration, u64) {
        let exported = Arc::new(AtomicU64::new(0));
        let provider = TracerProvider::builder()
            .with_batch_config(BatchConfig::builder().with_max_queue_size(QUEUE).build())
            .with_batch_exporter(Discard(exported.clone()))
            .with_disabled(disabled)
            .build();
        let tracer = provider.tracer("tokio_app");
        let cpu = process_cpu();
        serve(runtime, |i| request(tracer.clone(), i));
        provider.force_flush().unwrap();
        let cpu = process_cpu() - cpu;
        provider.shutdown().unwrap();
        (cpu, exported.load(Ordering::Relaxed))
    }
}

mod otel {
    use super::*;
    use opentelemetry::trace::{
        FutureExt as _, Span as _, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _,
    };
    use opentelemetry::{Context, KeyValue};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{
        BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData,
        SpanExporter,
    };
    use std::future::Future;

    #[derive(Debug, Default)]
    struct Discard(Arc<AtomicU64>);

    impl SpanExporter for Discard {
        fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
            self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
            std::future::ready(Ok(()))
        }
    }

    async fn request(tracer: SdkTracer, i: u64) {
        let span = tracer
            .span_builder("GET /items")
            .with_kind(SpanKind::Server)
            .with_attributes([KeyValue::new("request.id", i as i64)])
            .start(&tracer);
        let handler = async {
            tokio::task::yield_now().await;
            tracer.start("authorize").end();
            let query = tracer.start("query");
            tokio::task::yield_now()
                .with_context(Context::current_with_span(query))
                .await;
            let audit = {
                let tracer = tracer.clone();
                async move { tracer.start("audit").end() }
            };
            tokio::spawn(audit.with_current_context()).await.unwrap();
            tracer.start("render").end();
        };
        handler.with_context(Context::current_with_span(span)).await;
    }

    pub(super) fn round(runtime: &tokio::runtime::Runtime) -> (Duration, u64) {
        let exported = Arc::new(AtomicU64::new(0));
        let processor = BatchSpanProcessor::builder(Discard(exported.clone()))
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(QUEUE)
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build();
        let tracer = provider.tracer("tokio_app");
        let cpu = process_cpu();
        serve(runtime, |i| request(tracer.clone(), i));
        provider.force_flush().unwrap();
        let cpu = process_cpu() - cpu;
        provider.shutdown().unwrap();
        (cpu, exported.load(Ordering::Relaxed))
    }
}

/// Serves the requests `REPEAT` times: `REQUESTS` tasks at once, each made by
/// `request` from its number.
fn serve<F: std::future::Future<Output = ()> + Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    request: impl Fn(u64) -> F,
) {
    for _ in 0..REPEAT {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..REQUESTS).map(|i| tokio::spawn(request(i))).collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (rounds, only) = rounds_and_library();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let spans = REQUESTS * SPANS_PER_REQUEST * REPEAT;
    let (mut none_ns, mut rt_ns, mut otel_ns) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let run = |lib: &str| {
            let (cpu, exported) = match lib {
                "none" => rt::round(&runtime, true),
                "runtrace" => rt::round(&runtime, false),
                _ => otel::round(&runtime),
            };
            let ns = cpu.as_nanos() as f64 / spans as f64;
            println!(
                "round {round} {lib:8}: {ns:7.0} ns CPU per span ({exported} of {spans} exported)"
            );
            ns
        };
        if let Some(lib) = &only {
            run(lib);
            continue;
        }
        none_ns.push(run("none"));
        if round % 2 == 0 {
            rt_ns.push(run("runtrace"));
            otel_ns.push(run("otel"));
        } else {
            otel_ns.push(run("otel"));
            rt_ns.push(run("runtrace"));
        }
    }
    if only.is_none() {
        let (none, rt, otel) = (median(none_ns), median(rt_ns), median(otel_ns));
        println!(
            "median CPU per span: no tracing {none:.0} ns, runtrace {rt:.0} ns, opentelemetry_sdk {otel:.0} ns"
        );
        println!(
            "tracing's share (less the no-tracing run): runtrace {:.0} ns, opentelemetry_sdk {:.0} ns: {:.2}",
            rt - none,
            otel - none,
            black_box((rt - none) / (otel - none))
        );
    }
}
