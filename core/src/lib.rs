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
//! The modules are layers: each imports only the ones listed before it, so the
//! crate reads bottom-up and a value never drags the runtime along.
//!
//! 1. `clock` (private: a calibrated TSC clock), [`diagnostics`]
//!    (how the crate reports its own problems), and `sync` (private: the
//!    lock-free queue, per-thread lanes, counted references and the futures'
//!    pin projection; all the `unsafe` code but the clock's).
//! 2. [`data`]: pure values: attributes, ids, [`TraceState`], [`SpanContext`],
//!    [`SpanData`] with its events, links, kind and status, [`Resource`].
//! 3. [`config`]: [`SpanLimits`], [`BatchConfig`], and [`env`](mod@config::env),
//!    every environment variable parsed in one place.
//! 4. [`sampling`]: the [`Sampler`](sampling::Sampler) trait and the built-in
//!    samplers, including the W3C Level 2 consistent ratio sampler.
//! 5. [`context`]: the current [`Context`]; [`propagation`]: W3C
//!    `traceparent`/`tracestate` inject and extract.
//! 6. [`export`]: the [`SpanExporter`] trait, [`InMemoryExporter`].
//! 7. [`processor`]: the [`SpanProcessor`] trait, [`SimpleSpanProcessor`],
//!    [`ProcessorStats`], and [`BatchSpanProcessor`] with its worker thread.
//! 8. [`sdk`]: [`TracerProvider`] (builder, [`TracerProvider::from_env`], no-op
//!    mode), [`Tracer`], [`SpanBuilder`] and [`Span`], [`FutureExt`] for spans
//!    across `.await`.
//! 9. [`global`]: the process-wide provider and its cached tracers.
//!
//! Hot-path costs: a sampled span reads the clock twice (a calibrated TSC where
//! the kernel trusts it), draws two random ids and pushes into the queue; a span
//! the sampler drops reads no clock and allocates nothing (attributes given to its
//! builder are sampler input, kept in a recycled list); with tracing disabled a
//! span costs a few nanoseconds and no thread is started.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod clock;
pub mod diagnostics;
mod sync;

pub mod data;

pub mod config;

pub mod sampling;

pub mod context;
pub mod propagation;

pub mod export;

pub mod processor;

pub mod sdk;

pub mod global;

#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub use sync::bench_internals as __bench_internals;

pub use clock::now;
pub use config::{env, BatchConfig, SpanLimits};
pub use context::{Context, ContextGuard};
pub use data::{
    Array, Event, IdGenerator, InlineStr, Instrumentation, InstrumentationScope, Key, KeyValue,
    Link, RandomIdGenerator, Resource, SpanContext, SpanData, SpanDetails, SpanId, SpanKind,
    Status, Str, TraceFlags, TraceId, TraceState, Value,
};
pub use export::{ExportCancel, ExportError, InMemoryExporter, SpanExporter};
pub use processor::{
    BatchSpanProcessor, FlushError, ProcessorStats, SimpleSpanProcessor, SpanProcessor,
};
pub use propagation::{Extractor, Injector, TraceContextPropagator};
pub use sdk::{
    with_current_span, FutureExt, InSpan, Span, SpanBuilder, SpanGuard, SpanScope, Tracer,
    TracerProvider, TracerProviderBuilder, WithContext,
};
pub use sync::Instrumented;
