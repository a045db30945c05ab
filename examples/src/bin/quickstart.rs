//! The first thing to run: a simulated inference runner traced with runtrace.
//!
//! `cargo run --release -p runtrace-examples --bin quickstart [-- --requests N]`
//!
//! Without `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` it starts an embedded OTLP/HTTP
//! receiver on 127.0.0.1, exports to it, and prints what it received as a tree per
//! trace. `OTEL_SAMPLE_RATE`, `OTEL_SERVICE_NAME`, `ENABLE_TRACING=false` and the
//! `OTEL_BSP_*` variables apply.

use runtrace::TracerProvider;
use runtrace_examples::trace_tree::print_traces;
use runtrace_examples::workload::{batch_threads, handle_request};
use runtrace_examples::{example_exporter, help_requested, requests_arg};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: quickstart [--requests N]

Simulates an inference runner handling N requests (default 20), exports its
spans over OTLP/HTTP and prints what the receiver got, one tree per trace.
Without OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT it exports to an embedded receiver
on 127.0.0.1. OTEL_SAMPLE_RATE, OTEL_SERVICE_NAME, ENABLE_TRACING=false and the
OTEL_BSP_* variables apply. Exits 2 on a bad argument or OTLP setting.
";

fn main() {
    if help_requested() {
        print!("{USAGE}");
        return;
    }
    let requests = parse_requests();
    let (exporter, receiver) = example_exporter().unwrap_or_else(|e| {
        eprintln!("quickstart: {e}");
        std::process::exit(2);
    });
    let endpoint = exporter.endpoint();
    let provider = TracerProvider::from_env()
        .with_batch_exporter(exporter)
        .build();
    if !provider.is_enabled() {
        println!("tracing is disabled (ENABLE_TRACING=false or OTEL_SDK_DISABLED=true): same work, no spans, no thread");
    } else if receiver.is_some() {
        println!(
            "no OTEL_EXPORTER_OTLP_ENDPOINT set: exporting to an embedded receiver at {endpoint}"
        );
    } else {
        println!("exporting to {endpoint}");
    }
    let tracer = provider.tracer_with_scope(runtrace::InstrumentationScope {
        name: "quickstart".into(),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        ..Default::default()
    });

    let started = Instant::now();
    let (mut failures, mut started_spans) = (0, 0);
    for n in 0..requests {
        let outcome = handle_request(&tracer, n, Duration::from_micros(300));
        failures += u64::from(!outcome.ok);
        started_spans += outcome.spans_started;
    }
    let threads = batch_threads();
    let work_ms = started.elapsed().as_secs_f64() * 1e3;

    let flush_start = Instant::now();
    let shutdown = provider.shutdown_with_timeout(Duration::from_secs(5));
    let flush_ms = flush_start.elapsed().as_secs_f64() * 1e3;
    let stats = provider.stats();

    if let Some(r) = &receiver {
        print_traces(&r.spans());
    }
    println!("\nsummary");
    println!("  requests handled     {requests} ({failures} failed) in {work_ms:.1} ms");
    println!("  spans started        {started_spans}");
    println!("  sampled spans ended  {}", stats.spans_ended);
    println!("  exported             {}", stats.spans_exported);
    println!(
        "  dropped              {} (queue full {}, export failed {}, rejected {}, after shutdown {})",
        stats.dropped_total(),
        stats.dropped_queue_full,
        stats.dropped_export_failed,
        stats.dropped_rejected,
        stats.dropped_after_shutdown
    );
    if let Some(r) = &receiver {
        println!("  received by receiver {}", r.stats().unique_spans);
    }
    println!(
        "  final flush          {flush_ms:.1} ms ({})",
        match &shutdown {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        }
    );
    println!("  runtrace-batch threads while running: {threads}");
}

fn parse_requests() -> u64 {
    requests_arg(20).unwrap_or_else(|e| {
        eprint!("quickstart: {e}\n{USAGE}");
        std::process::exit(2)
    })
}
