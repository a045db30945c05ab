//! [`TracingSpanExt`]: a `tracing::Span`'s runtrace side, for propagation.

use crate::layer::RuntraceLayer;
use crate::state::{context_of, SpanState};
use runtrace::{Context, SpanContext};
use std::fmt;
use tracing_subscriber::registry::{LookupSpan, Registry};

/// Why [`TracingSpanExt::set_parent`] did not set the parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetParentError {
    /// The span is disabled, its subscriber is not a
    /// [`Registry`](tracing_subscriber::Registry) with a
    /// [`RuntraceLayer`](crate::RuntraceLayer), or the layer keeps nothing
    /// (a no-op tracer).
    NotTraced,
    /// The span has already started: it has a `tracing` parent, or it was
    /// already used (given an event or a child, asked for its context, by
    /// [`TracingSpanExt::context`] or by a native span or
    /// `Context::current()` inside it).
    AlreadyStarted,
}

impl fmt::Display for SetParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetParentError::NotTraced => "the span is not traced by a RuntraceLayer",
            SetParentError::AlreadyStarted => {
                "the span has already started (it has a tracing parent or was already used)"
            }
        })
    }
}

impl std::error::Error for SetParentError {}

/// The runtrace side of a [`tracing::Span`] traced by a
/// [`RuntraceLayer`](crate::RuntraceLayer) over a
/// [`Registry`](tracing_subscriber::Registry).
///
/// ```
/// use runtrace::{InMemoryExporter, TraceContextPropagator, TracerProvider};
/// use runtrace_tracing::{RuntraceLayer, TracingSpanExt};
/// use std::collections::HashMap;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let exporter = InMemoryExporter::default();
/// let provider = TracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let subscriber =
///     tracing_subscriber::registry().with(RuntraceLayer::new(provider.tracer("app")));
/// let propagator = TraceContextPropagator;
/// tracing::subscriber::with_default(subscriber, || {
///     // An incoming request's headers.
///     let incoming = HashMap::from([(
///         "traceparent".to_string(),
///         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
///     )]);
///     let request = tracing::info_span!("GET /items", otel.kind = "server");
///     request.set_parent(&propagator.extract(&incoming)).unwrap();
///     // An outgoing request's headers.
///     let mut outgoing = HashMap::new();
///     propagator.inject(&request.context(), &mut outgoing);
///     assert!(outgoing["traceparent"].starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
/// });
/// let spans = exporter.finished_spans();
/// assert_eq!(spans[0].parent_span_id.to_string(), "00f067aa0ba902b7");
/// ```
pub trait TracingSpanExt {
    /// Makes `cx` (for example a remote parent from
    /// [`TraceContextPropagator::extract`](runtrace::TraceContextPropagator::extract))
    /// the span's parent. Call it before the span is first entered. A local
    /// root starts when first used (given an event or a child, asked for its
    /// context, by [`context`](Self::context) or by a native span or
    /// `Context::current()` inside it, or closed), and a span with a `tracing`
    /// parent when created; after that this returns
    /// [`SetParentError::AlreadyStarted`]. Entering alone usually does not
    /// start a root, but it may (when the enter has to look the span up at
    /// once: its dispatcher is not the thread's default and not yet known to
    /// the thread, or a wrapper such as `tracing_subscriber::reload::Layer`
    /// hides the layer), so call it before the first enter.
    fn set_parent(&self, cx: &Context) -> Result<(), SetParentError>;

    /// The span's runtrace context, to inject into an outgoing request: its
    /// own, or for a span the sampler dropped its trace's (unsampled); empty
    /// when the span is not traced.
    ///
    /// A local root not used yet starts here, by the layer's tracer, found
    /// through the subscriber's downcasts (as `Filtered`, `Box<dyn Layer>`
    /// and `Option` forward them). Behind a wrapper that does not forward them
    /// (`tracing_subscriber::reload::Layer`), such a root's context is empty
    /// until the span is first entered; started spans are not affected.
    fn context(&self) -> Context;

    /// Adds a link to `span_context` (ignored for a span not recorded).
    fn add_link(&self, span_context: SpanContext);
}

impl TracingSpanExt for tracing::Span {
    fn set_parent(&self, cx: &Context) -> Result<(), SetParentError> {
        self.with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let span = registry.span(id)?;
            let mut extensions = span.extensions_mut();
            Some(match extensions.get_mut::<SpanState>() {
                Some(SpanState::Pending(pending)) => {
                    pending.parent = cx.clone();
                    Ok(())
                }
                Some(SpanState::Started { .. }) => Err(SetParentError::AlreadyStarted),
                None if span.parent().is_some() => Err(SetParentError::AlreadyStarted),
                None => Err(SetParentError::NotTraced),
            })
        })
        .flatten()
        .unwrap_or(Err(SetParentError::NotTraced))
    }

    fn context(&self) -> Context {
        self.with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            // The layer's tracer starts a local root not started yet.
            let layer = dispatch.downcast_ref::<RuntraceLayer>();
            context_of(&registry.span(id)?, layer.map(RuntraceLayer::tracer))
        })
        .flatten()
        .unwrap_or_default()
    }

    fn add_link(&self, span_context: SpanContext) {
        self.with_subscriber(|(id, dispatch)| {
            let span = dispatch.downcast_ref::<Registry>()?.span(id)?;
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<SpanState>()? {
                SpanState::Pending(pending) => pending.links.push(span_context),
                SpanState::Started { span, .. } => span.add_link(span_context, Vec::new()),
            }
            Some(())
        });
    }
}
