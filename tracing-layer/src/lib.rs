//! # runtrace-tracing
//!
//! Exports the spans of the `tracing` ecosystem (your `#[instrument]`ed code,
//! hyper, axum, tower-http, tonic, reqwest, sqlx) through runtrace.
//!
//! [`RuntraceLayer`] is a `tracing-subscriber` layer: each `tracing` span
//! becomes a runtrace span (parent, fields, events, the `otel.*` conventions
//! tracing-opentelemetry users know), and entering a `tracing` span makes its
//! runtrace context current, so native runtrace spans and `tracing` spans nest
//! in each other. [`TracingSpanExt`] gives a `tracing::Span` a remote parent
//! ([`set_parent`](TracingSpanExt::set_parent)) and its context to inject into
//! outgoing requests ([`context`](TracingSpanExt::context)).
//!
//! ```
//! use runtrace::{InMemoryExporter, TracerProvider};
//! use runtrace_tracing::RuntraceLayer;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let exporter = InMemoryExporter::default();
//! let provider = TracerProvider::builder().with_simple_exporter(exporter.clone()).build();
//! let tracer = provider.tracer("my-service");
//! let subscriber = tracing_subscriber::registry().with(RuntraceLayer::new(tracer.clone()));
//! tracing::subscriber::with_default(subscriber, || {
//!     let _request = tracing::info_span!("request", route = "/items").entered();
//!     tracer.span("native child").start().end(); // a child of "request"
//! });
//! let spans = exporter.finished_spans();
//! assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
//! ```
//!
//! Modules: `layer` (the [`Layer`](tracing_subscriber::Layer) callbacks),
//! `state` (what a `tracing` span keeps: its runtrace span, or a local root
//! not yet started), `fields` (fields as attributes, the `otel.*`
//! conventions), `current` (the spans entered on each thread, and their
//! contexts, looked up when runtrace reads the current one),
//! `timings` (busy and idle time, if asked), `span_ext` ([`TracingSpanExt`]).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod current;
mod fields;
mod layer;
mod span_ext;
mod state;
mod timings;

pub use layer::RuntraceLayer;
pub use span_ext::{SetParentError, TracingSpanExt};
