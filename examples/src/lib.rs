//! Shared code of the runtrace example programs.
//!
//! - [`receiver`]: an embedded OTLP/HTTP receiver with fault injection.
//! - [`receiver_process`]: that receiver in a child process (the soak's
//!   `--receiver process`).
//! - [`workload`]: the simulated inference request the programs trace.
//! - [`histogram`]: a fixed-size log-linear latency histogram (the soak).
//! - [`http`]: a tiny blocking HTTP/1.1 server side and client (examples only).
//! - [`trace_tree`]: prints received spans as one tree per trace.
//! - [`tracing_service`]: an HTTP service instrumented with `tracing`, whose
//!   spans export through `runtrace-tracing`.
//! - [`w3c_service`]: the W3C trace-context test-suite service, as a library so
//!   that `runtrace-tests` can drive it in-process.

pub mod histogram;
pub mod http;
pub mod receiver;
pub mod receiver_process;
pub mod trace_tree;
pub mod tracing_service;
pub mod w3c_service;
pub mod workload;

use receiver::{Fault, Receiver};
use runtrace_otlp_http::OtlpHttpExporter;

/// Whether the program was asked for its usage (`--help` or `-h` anywhere in
/// its arguments): the examples then print it to stdout and exit 0.
pub fn help_requested() -> bool {
    std::env::args().skip(1).any(|a| a == "--help" || a == "-h")
}

/// The example programs' one argument, `--requests N`: `N`, or `default`
/// without arguments, or what is wrong with them (to print with the usage).
pub fn requests_arg(default: u64) -> Result<u64, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(default),
        [flag, n] if flag == "--requests" => n
            .parse()
            .map_err(|_| format!("--requests takes a number, not {n:?}")),
        _ => Err(format!("unexpected arguments {args:?}")),
    }
}

/// The example programs' exporter: to the endpoint
/// `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` names, else to an embedded receiver
/// started here and returned (it keeps what it receives, to print). The
/// error says what is wrong: an OTLP setting, or a receiver that cannot bind.
pub fn example_exporter() -> Result<(OtlpHttpExporter, Option<Receiver>), String> {
    if endpoint_configured() {
        let exporter = OtlpHttpExporter::from_env().map_err(|e| e.to_string())?;
        return Ok((exporter, None));
    }
    let receiver = Receiver::start(Fault::Healthy, true)
        .map_err(|e| format!("cannot start the embedded receiver: {e}"))?;
    let exporter = OtlpHttpExporter::builder()
        .with_endpoint(receiver.endpoint())
        .build()
        .map_err(|e| e.to_string())?;
    Ok((exporter, Some(receiver)))
}

/// Whether `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` names an endpoint; the
/// examples export to an embedded receiver otherwise.
fn endpoint_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// The README's code compiles (checked as a doctest).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
