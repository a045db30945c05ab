//! What the layer keeps in a `tracing` span's extensions: its runtrace span,
//! or, for a local root not yet started, what it will start with.
//!
//! A span with a `tracing` parent starts when it is created: its parent is
//! known, so the sampler decides at once, and a dropped span keeps nothing
//! (no extension, no allocation; its context is its nearest kept ancestor's).
//! A local root (no `tracing` parent) waits until first used (given a child
//! or an event, asked for its context, by `TracingSpanExt::context` or by
//! runtrace reading the current context inside it, or closed): until then
//! [`TracingSpanExt::set_parent`](crate::TracingSpanExt::set_parent) may still
//! give it a remote parent, which changes its trace and its sampling. It
//! starts then with the time it was created. Entering it does not start it,
//! except where the enter looks its context up at once (see `current`: its
//! dispatcher is neither known to the thread nor the default, or a wrapper
//! such as `reload`'s hides the layer).

use crate::fields::Conventions;
use runtrace::{Context, KeyValue, Span, SpanContext, SpanKind, Status, Str, Tracer};
use std::cell::Cell;
use std::time::SystemTime;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// The layer's record of one `tracing` span.
#[derive(Debug)]
pub(crate) enum SpanState {
    /// A local root not yet started (inline: the registry boxes the state).
    Pending(Pending),
    /// A started span (recording, or a dropped root that carries its trace).
    Started {
        span: Span,
        /// Whether a field or event set the status (an `ERROR` event then
        /// keeps the described status instead of replacing it).
        status_set: bool,
    },
}

/// What a local root starts with (by the layer's tracer).
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) name: Str,
    pub(crate) kind: SpanKind,
    /// The runtrace context current when it was created (or empty for an
    /// explicit root), until `set_parent` replaces it.
    pub(crate) parent: Context,
    pub(crate) start_time: SystemTime,
    /// Its fields, converted (the sampler has not decided yet).
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) links: Vec<SpanContext>,
    pub(crate) status: Option<Status>,
    pub(crate) exception: Option<Vec<KeyValue>>,
}

impl SpanState {
    /// A started span's state.
    pub(crate) fn started(span: Span) -> Self {
        SpanState::Started {
            span,
            status_set: false,
        }
    }

    /// Whether it records: a pending root does until its sampler says (it
    /// may still be dropped when it starts).
    pub(crate) fn is_recording(&self) -> bool {
        match self {
            SpanState::Started { span, .. } => span.is_recording(),
            SpanState::Pending(_) => true,
        }
    }

    /// Starts a pending root with the layer's `tracer` (no-op once started)
    /// and returns the span.
    pub(crate) fn start(&mut self, tracer: &Tracer) -> &mut Span {
        if let SpanState::Pending(_) = self {
            // Taken out first: if starting panics (a sampler's bug), what is
            // left is a span that records nothing, not a half-emptied root.
            let SpanState::Pending(pending) =
                std::mem::replace(self, SpanState::started(Span::default()))
            else {
                unreachable!("matched just above");
            };
            let (span, status_set) = pending.start(tracer);
            *self = SpanState::Started { span, status_set };
        }
        match self {
            SpanState::Started { span, .. } => span,
            SpanState::Pending(_) => unreachable!("a pending span was started just above"),
        }
    }

    /// The span, taken out (a pending root started with the layer's `tracer`
    /// first), as the span closes: a root started at its close is not written
    /// back into a state about to be dropped.
    pub(crate) fn into_span(self, tracer: &Tracer) -> Span {
        match self {
            SpanState::Pending(pending) => pending.start(tracer).0,
            SpanState::Started { span, .. } => span,
        }
    }

    /// Applies what the `otel.*` and error fields asked for.
    pub(crate) fn apply(&mut self, conventions: Conventions) {
        if conventions.is_empty() {
            // Most spans: no `otel.*` or error field.
            return;
        }
        let status = conventions.status();
        let exception = conventions.exception_event();
        match self {
            SpanState::Pending(pending) => {
                if let Some(name) = conventions.name {
                    pending.name = name;
                }
                if let Some(kind) = conventions.kind {
                    pending.kind = kind;
                }
                if status.is_some() {
                    pending.status = status;
                }
                if exception.is_some() {
                    pending.exception = exception;
                }
            }
            SpanState::Started { span, status_set } => {
                if let Some(name) = conventions.name {
                    span.update_name(name);
                }
                if let Some(status) = status {
                    *status_set = true;
                    span.set_status(status);
                }
                if let Some(exception) = exception {
                    span.add_event("exception", exception);
                }
            }
        }
    }
}

impl Pending {
    /// Starts the span, and says whether its status was set.
    fn start(self, tracer: &Tracer) -> (Span, bool) {
        let Pending {
            name,
            kind,
            parent,
            start_time,
            attributes,
            links,
            status,
            exception,
        } = self;
        // The fields as builder attributes, which the sampler sees. The list
        // is handed over, not copied.
        let mut builder = tracer
            .span(name)
            .kind(kind)
            .parent(&parent)
            .start_time(start_time)
            .attributes(attributes);
        for link in links {
            builder = builder.link(link, Vec::new());
        }
        let mut span = {
            let _starting = Starting::enter();
            builder.start()
        };
        let status_set = status.is_some();
        if span.is_recording() {
            if let Some(status) = status {
                span.set_status(status);
            }
            if let Some(exception) = exception {
                span.add_event("exception", exception);
            }
        }
        (span, status_set)
    }
}

/// The runtrace context of `span`: its own if the layer keeps one (starting a
/// pending root with the layer's `tracer`), else its nearest kept ancestor's
/// (a dropped span's trace, unsampled), else `None` (nothing kept: a
/// disabled tracer; or a pending root and no `tracer` to start it).
pub(crate) fn context_of<'a, R>(span: &SpanRef<'a, R>, tracer: Option<&Tracer>) -> Option<Context>
where
    R: LookupSpan<'a>,
{
    let own = |s: &SpanRef<'a, R>| {
        // A started span's context needs only the read lock (a span entered
        // by several tasks at once, each poll an enter).
        match s.extensions().get::<SpanState>()? {
            SpanState::Started { span, .. } => return Some(span.context()),
            SpanState::Pending(_) => {}
        }
        let mut extensions = s.extensions_mut();
        Some(extensions.get_mut::<SpanState>()?.start(tracer?).context())
    };
    // The span's own first: walking its scope would look it up again.
    own(span).or_else(|| span.scope().skip(1).find_map(|s| own(&s)))
}

thread_local! {
    static STARTING: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is starting a pending root, holding its span's lock
/// (at the root's close it holds none, but is treated the same): an event or
/// record emitted meanwhile (by a processor, or a diagnostics handler that
/// logs through `tracing`) must not wait for that lock.
pub(crate) fn starting() -> bool {
    STARTING.try_with(Cell::get).unwrap_or(false)
}

/// Marks this thread as [`starting`] until dropped (also when unwinding).
struct Starting;

impl Starting {
    fn enter() -> Starting {
        let _ = STARTING.try_with(|s| s.set(true));
        Starting
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        let _ = STARTING.try_with(|s| s.set(false));
    }
}
