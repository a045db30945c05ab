//! The first thing to run: a simulated inference runner traced with runtrace.
//!
//! `cargo run --release -p runtrace-examples --bin quickstart [-- --requests N]`
//!
//! Without `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` it starts an embedded OTLP/HTTP
//! receiver on 127.0.0.1, exports to it, and prints what it received as a tree per
//! trace. `OTEL_SAMPLE_RATE`, `OTEL_SERVICE_NAME`, `ENABLE_TRACING=false` and the
//! `OTEL_BSP_*` variables apply.

use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue};
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use runtrace::TracerProvider;
use runtrace_examples::receiver::{Fault, Receiver};
use runtrace_examples::workload::{batch_threads, handle_request};
use runtrace_examples::{endpoint_configured, help_requested};
use runtrace_otlp_http::OtlpHttpExporter;
use std::collections::BTreeMap;
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
    let receiver = if endpoint_configured() {
        None
    } else {
        Some(Receiver::start(Fault::Healthy, true).expect("bind 127.0.0.1"))
    };
    let exporter = match &receiver {
        Some(r) => OtlpHttpExporter::builder()
            .with_endpoint(r.endpoint())
            .build(),
        None => OtlpHttpExporter::from_env(),
    };
    let exporter = exporter.unwrap_or_else(|e| {
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
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--requests") {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                eprint!("{USAGE}");
                std::process::exit(2)
            }),
        None => 20,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn value(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|a| a.value.as_ref()) {
        Some(Any::StringValue(s)) => format!("{s:?}"),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        Some(Any::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|x| value(&Some(x.clone()))).collect();
            format!("[{}]", items.join(", "))
        }
        Some(other) => format!("{other:?}"),
        None => "(empty)".to_string(),
    }
}

/// Prints each trace as an indented tree, children in start order.
fn print_traces(spans: &[OtlpSpan]) {
    let mut traces: BTreeMap<Vec<u8>, Vec<&OtlpSpan>> = BTreeMap::new();
    for s in spans {
        traces.entry(s.trace_id.clone()).or_default().push(s);
    }
    let mut ordered: Vec<_> = traces.into_iter().collect();
    ordered.sort_by_key(|(_, s)| s.iter().map(|x| x.start_time_unix_nano).min());
    println!(
        "\nreceived {} spans in {} traces",
        spans.len(),
        ordered.len()
    );
    for (trace_id, mut list) in ordered {
        list.sort_by_key(|s| s.start_time_unix_nano);
        println!("\ntrace {}", hex(&trace_id));
        let roots: Vec<&&OtlpSpan> = list
            .iter()
            .filter(|s| !list.iter().any(|p| p.span_id == s.parent_span_id))
            .collect();
        for root in roots {
            print_span(root, &list, 1);
        }
    }
}

fn print_span(span: &OtlpSpan, all: &[&OtlpSpan], depth: usize) {
    let micros = span
        .end_time_unix_nano
        .saturating_sub(span.start_time_unix_nano) as f64
        / 1e3;
    let status = match &span.status {
        Some(s) if s.code == 2 => format!("  ERROR {:?}", s.message),
        _ => String::new(),
    };
    let attrs: Vec<String> = span
        .attributes
        .iter()
        .map(|kv| format!("{}={}", kv.key, value(&kv.value)))
        .collect();
    println!(
        "{}{} {:.0}µs{}  {}",
        "  ".repeat(depth),
        span.name,
        micros,
        status,
        attrs.join(" ")
    );
    for e in &span.events {
        let attrs: Vec<String> = e
            .attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, value(&kv.value)))
            .collect();
        println!(
            "{}  · event {} {}",
            "  ".repeat(depth),
            e.name,
            attrs.join(" ")
        );
    }
    for child in all.iter().filter(|c| c.parent_span_id == span.span_id) {
        print_span(child, all, depth + 1);
    }
}
