//! The runtime users hold: [`TracerProvider`] (builder, [`TracerProvider::from_env`],
//! no-op mode), [`Tracer`], [`SpanBuilder`] and [`Span`], [`FutureExt`] for spans
//! across `.await`, and how an ended span reaches the provider's processors.
//!
//! A provider owns the pipeline (sampler, id generator, limits, resource,
//! processors); tracers hold it, and each span reaches it through its scope,
//! weakly, so that span data never keeps a provider alive.

mod dispatch;
mod future;
mod provider;
mod span;
mod tracer;

pub use future::{FutureExt, InSpan, SpanScope, WithContext};
pub use provider::{TracerProvider, TracerProviderBuilder};
pub use span::{with_current_span, Span, SpanBuilder, SpanGuard};
pub use tracer::Tracer;
