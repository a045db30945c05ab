//! # runtrace
//!
//! A tracing runtime for latency-sensitive services that speaks OpenTelemetry on
//! the wire, with no dependencies.
//!
//! The model is OpenTelemetry's: a [`TracerProvider`] owns the pipeline (sampler,
//! id generator, limits, resource, span processors); a [`Tracer`] starts [`Span`]s
//! for one instrumentation scope; a span's [`SpanContext`] (ids, flags, trace state)
//! is what propagates across threads ([`Context`]) and processes
//! ([`TraceContextPropagator`], W3C `traceparent`/`tracestate`).
//! When a sampled span ends, its [`SpanData`] goes to the processors; the batch
//! processor hands it to a lock-free queue, and one background thread exports
//! batches through a [`SpanExporter`].
//!
//! ```
//! use runtrace::{InMemoryExporter, KeyValue, SpanKind, TracerProvider};
//!
//! let exporter = InMemoryExporter::default();
//! let provider = TracerProvider::builder().with_simple_exporter(exporter.clone()).build();
//! let tracer = provider.tracer("inference");
//! tracer.in_span("request", |span| {
//!     span.set_attribute("model", "llama");
//!     let mut child = tracer.span("tokenize").kind(SpanKind::Internal).start();
//!     child.add_event("cache miss", vec![KeyValue::new("key", 7)]);
//! });
//! assert_eq!(exporter.finished_spans().len(), 2);
//! ```
//!
//! ## Where things are
//!
//! - [`trace`]: [`TracerProvider`] (builder, [`TracerProvider::from_env`], no-op
//!   mode), [`Tracer`], [`SpanLimits`]. [`span`]: the builder and [`Span`].
//! - [`context`]: [`SpanContext`], [`TraceFlags`], the current [`Context`].
//!   [`trace_state`]: W3C `tracestate` and the OpenTelemetry `ot` member.
//!   [`propagation`]: `traceparent`/`tracestate` inject and extract.
//! - [`sampling`]: the [`Sampler`](sampling::Sampler) trait and the built-in samplers,
//!   including the W3C Level 2 consistent ratio sampler.
//! - [`processor`]: the [`SpanProcessor`] trait, [`SimpleSpanProcessor`],
//!   [`ProcessorStats`]. [`batch`]: [`BatchSpanProcessor`] and its worker thread.
//!   [`queue`]: the lock-free queue between them (all `unsafe` but one `rdtsc`).
//! - [`export`]: [`SpanData`], the [`SpanExporter`] trait, [`InMemoryExporter`].
//! - [`env`](mod@env): every environment variable, parsed in one place. [`diagnostics`]:
//!   how the crate reports its own problems (stderr by default).
//!
//! Hot-path costs: a sampled span reads the clock twice (a calibrated TSC where
//! the kernel trusts it), draws two random ids and pushes into the queue; a span
//! the sampler drops reads no clock and allocates nothing (attributes given to its
//! builder are sampler input, kept in a recycled list); with tracing disabled a
//! span costs a few nanoseconds and no thread is started.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod attribute;
pub mod batch;
mod clock;
pub mod context;
pub mod diagnostics;
pub mod env;
pub mod export;
pub mod id;
pub mod processor;
pub mod propagation;
pub mod queue;
pub mod resource;
pub mod sampling;
pub mod span;
pub mod trace;
pub mod trace_state;

pub use attribute::{Array, Key, KeyValue, Str, Value};
pub use batch::{BatchConfig, BatchSpanProcessor};
pub use context::{Context, ContextGuard, SpanContext, TraceFlags};
pub use export::{
    Event, ExportCancel, ExportError, InMemoryExporter, Instrumentation, InstrumentationScope,
    Link, SpanData, SpanDetails, SpanExporter,
};
pub use id::{IdGenerator, RandomIdGenerator, SpanId, TraceId};
pub use processor::{FlushError, ProcessorStats, SimpleSpanProcessor, SpanProcessor};
pub use propagation::{Extractor, Injector, TraceContextPropagator};
pub use resource::Resource;
pub use span::{Span, SpanBuilder, SpanKind, Status};
pub use trace::{SpanLimits, Tracer, TracerProvider, TracerProviderBuilder};
pub use trace_state::TraceState;
