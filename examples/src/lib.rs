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

/// Whether `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` names an endpoint; the
/// examples export to an embedded receiver otherwise.
pub fn endpoint_configured() -> bool {
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
