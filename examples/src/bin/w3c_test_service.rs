//! Service for the W3C trace-context test suite.
//!
//! ```text
//! cargo run --release -p runtrace-examples --bin w3c_test_service -- --port 5000
//! # then, in a checkout of w3c/trace-context:  python test/test.py http://127.0.0.1:5000/test
//! ```

use runtrace::TracerProvider;
use runtrace_examples::{help_requested, w3c_service};
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn port_from_args() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    let mut port = 5000;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" | "-p" => {
                let v = args.next().ok_or("--port needs a value")?;
                port = v.parse().map_err(|_| format!("bad port {v:?}"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(port)
}

const USAGE: &str = "\
usage: w3c_test_service [--port PORT]

Serves the W3C trace-context test suite's /test endpoint on 127.0.0.1:PORT
(default 5000); run the suite with
  python test/test.py http://127.0.0.1:5000/test
Samplers and limits come from OTEL_* variables; spans are exported only when
OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT is set.
";

fn main() {
    if help_requested() {
        print!("{USAGE}");
        return;
    }
    let port = match port_from_args() {
        Ok(p) => p,
        Err(e) => {
            eprint!("w3c_test_service: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    // Samplers and limits come from the environment (OTEL_TRACES_SAMPLER, ...);
    // spans are exported only when an OTLP endpoint is configured.
    let mut builder = TracerProvider::from_env();
    let endpoint_set = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
    if endpoint_set {
        match runtrace_otlp_http::OtlpHttpExporter::from_env() {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(e) => {
                eprintln!("w3c_test_service: {e}");
                std::process::exit(2);
            }
        }
    }
    let provider = builder.build();
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("w3c_test_service: POST http://127.0.0.1:{port}/test");
    if let Err(e) = w3c_service::serve(listener, provider, Arc::new(AtomicBool::new(false))) {
        eprintln!("w3c_test_service: {e}");
        std::process::exit(1);
    }
}
