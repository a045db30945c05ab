//! A `tracing`-instrumented HTTP service exporting through runtrace.
//!
//! `cargo run --release -p runtrace-examples --bin tracing_service [-- --requests N]`
//!
//! Starts the service of `runtrace_examples::tracing_service` (hyper,
//! `#[instrument]`ed handlers, `RuntraceLayer`) on 127.0.0.1, then calls it N
//! times as a traced client would: a native client span whose `traceparent`
//! the service continues. Without `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` it
//! exports to an embedded OTLP/HTTP receiver and prints what it received, one
//! tree per trace, as the quickstart does.

use runtrace::{InstrumentationScope, SpanKind, TraceContextPropagator, TracerProvider};
use runtrace_examples::trace_tree::print_traces;
use runtrace_examples::tracing_service::{get, serve};
use runtrace_examples::{example_exporter, help_requested, requests_arg};
use runtrace_tracing::RuntraceLayer;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

const USAGE: &str = "\
usage: tracing_service [--requests N]

Serves GET /checkout and GET /price on 127.0.0.1 (hyper, tracing-instrumented
handlers exported through runtrace-tracing) and calls /checkout N times
(default 3) with a traceparent. Without OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT it
exports to an embedded receiver on 127.0.0.1 and prints what it received, one
tree per trace. The OTEL_* variables of the README apply. Exits 2 on a bad
argument or OTLP setting.
";

fn main() {
    if help_requested() {
        print!("{USAGE}");
        return;
    }
    let requests = parse_requests();
    let (exporter, receiver) = example_exporter().unwrap_or_else(|e| fail(&e));
    println!("exporting to {}", exporter.endpoint());
    let provider = TracerProvider::from_env()
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer_with_scope(InstrumentationScope {
        name: "tracing_service".into(),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        ..Default::default()
    });
    let subscriber = tracing_subscriber::registry().with(RuntraceLayer::new(tracer.clone()));
    tracing::subscriber::set_global_default(subscriber)
        .unwrap_or_else(|e| fail(&format!("cannot install the subscriber: {e}")));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the tokio runtime: {e}")));
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| fail(&format!("cannot bind 127.0.0.1: {e}")));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| fail(&e.to_string()));
        println!("serving on http://{addr}");
        let server = tokio::spawn(serve(listener, addr, tracer.clone()));
        for user in 0..requests {
            // The caller, traced natively: its context goes out as traceparent.
            let mut caller = tracer.span("caller").kind(SpanKind::Client).start();
            let mut headers = Vec::new();
            TraceContextPropagator.inject(&caller.context(), &mut headers);
            let path = format!("/checkout?user={user}");
            match get(addr, &path, &headers).await {
                Ok((status, body)) => println!("GET {path} -> {status} {body}"),
                Err(e) => println!("GET {path} failed: {e}"),
            }
            caller.end();
        }
        server.abort();
    });
    let shutdown = provider.shutdown_with_timeout(Duration::from_secs(5));
    if let Some(r) = &receiver {
        print_traces(&r.spans());
    }
    println!("\nshutdown: {shutdown:?}");
}

fn parse_requests() -> u64 {
    requests_arg(3).unwrap_or_else(|e| fail(&format!("{e}\n{USAGE}")))
}

fn fail(message: &str) -> ! {
    eprintln!("tracing_service: {message}");
    std::process::exit(2);
}
