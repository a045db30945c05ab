//! OTLP/HTTP span exporter for runtrace: protobuf (or JSON) over HTTP/1.1,
//! blocking, no async runtime.
//!
//! ```no_run
//! use runtrace::TracerProvider;
//! use runtrace_otlp_http::OtlpHttpExporter;
//!
//! // OTEL_EXPORTER_OTLP_ENDPOINT, _HEADERS, _TIMEOUT, _COMPRESSION, _PROTOCOL are honoured.
//! let exporter = OtlpHttpExporter::from_env().expect("valid OTLP configuration");
//! let provider = TracerProvider::builder().with_simple_exporter(exporter).build();
//! provider.tracer("my-service").span("startup").start().end();
//! provider.shutdown().ok();
//! ```
//!
//! # What it does
//!
//! [`OtlpHttpExporter`] implements [`runtrace::SpanExporter`]. Each batch is encoded
//! straight from `&[SpanData]` into an `ExportTraceServiceRequest` (one
//! `ResourceSpans` per resource, one `ScopeSpans` per instrumentation scope),
//! optionally gzipped, and POSTed as `application/x-protobuf` through one
//! keep-alive `ureq` agent. With [`Protocol::HttpJson`] (`http/json`) the same
//! message is written as OTLP/JSON and sent as `application/json`; the server's
//! answer is read as JSON or protobuf by its `Content-Type`. gRPC is not spoken:
//! `grpc` is a configuration error that names the alternative.
//!
//! # Configuration errors
//!
//! [`OtlpHttpExporterBuilder::build`] (and so `from_env`) fails on what would
//! make every export fail, with a message that names the setting and what to
//! write: an endpoint without `http://` or `https://`, with a port outside
//! 1–65535 or with credentials (`user:password@`: send an `Authorization`
//! header instead), the `grpc` protocol, a header written curl-style
//! (`Authorization: Bearer x`) in `OTEL_EXPORTER_OTLP_HEADERS`, an unusable CA
//! file. Messages never contain header values or passwords.
//!
//! # Responses and retries
//!
//! - 2xx: success. A `partial_success` with rejected spans is reported as
//!   [`runtrace::ExportError::PartialSuccess`] and never retried; one with only a
//!   message is a warning. A 2xx body that is not a valid response message is
//!   ignored with a warning: the status already says the batch was accepted.
//! - 429, 502, 503, 504, and failures without a response (refused, reset, timed
//!   out): retried after `Retry-After` (seconds or HTTP-date) when the server sent
//!   one, else after a random delay below `min(5 s, 1 s × 2^n)` (full jitter).
//! - Any other status: failure at once, with the `google.rpc.Status` message (or
//!   a short excerpt of the body) in the error.
//! - An export never outlives the earlier of the caller's deadline and the
//!   configured timeout; it does not sleep when the next attempt could not start
//!   in time.
//!
//! # Diagnostics
//!
//! Warnings (bad environment values, partial-success messages, undecodable
//! success bodies) go through [`runtrace::diagnostics`]. Header values are treated
//! as secrets: they appear in no `Debug` output, warning or error.
//!
//! # TLS
//!
//! `https` endpoints use rustls with the bundled Mozilla roots (works offline, no
//! system packages). `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE` or
//! [`OtlpHttpExporterBuilder::with_ca_certificate_pem`] replace them with your own CA.
//! Client certificates are not supported yet.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod config;
mod encode;
mod encode_json;
mod error;
mod exporter;
mod gzip;
mod proto;
mod resolver;
mod response_json;
mod retry;

pub use config::{
    Compression, ConfigError, OtlpHttpExporterBuilder, Protocol, DEFAULT_ENDPOINT,
    DEFAULT_MAX_REQUEST_SIZE, DEFAULT_TIMEOUT,
};
pub use encode::encode_request;
pub use encode_json::encode_request_json;
pub use error::Error;
pub use exporter::{OtlpHttpExporter, MAX_RESPONSE_SIZE, USER_AGENT};
