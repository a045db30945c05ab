//! The current span: handing a span to the thread's context, so that code
//! called meanwhile can record on it without being passed it.
//!
//! [`Span::make_current`] (and, through it, [`Tracer::in_span`] and
//! [`FutureExt::in_span`](crate::FutureExt::in_span) at each poll) parks the
//! span's data in the context stack entry that makes it current. The `&mut
//! Span` handles given out meanwhile ([`with_current_span`]'s, `in_span`'s)
//! carry only that entry's id, and each method borrows the entry for the
//! time of its own update: there is never a second `&mut` to the same data,
//! and nested calls are fine.
//!
//! [`Tracer::in_span`]: crate::Tracer::in_span

use super::Span;
use crate::context::{Context, ContextGuard};
use crate::data::SpanContext;
use std::mem::ManuallyDrop;

/// Runs `f` on the span that is current on this thread, if it is recording and
/// was handed over: made current by [`Tracer::in_span`](crate::Tracer::in_span),
/// [`FutureExt::in_span`](crate::FutureExt::in_span) (while its future is
/// polled) or [`Span::make_current`]. Returns `None`, without calling `f`,
/// otherwise: no current span, a non-recording one, one made current with
/// [`Span::enter`] (its owner records on it), or a bare [`Context`] attached
/// over it.
///
/// The handle records on the current span. Ending it through the handle
/// ends the span early; dropping the handle does not end it.
///
/// ```
/// use runtrace::{with_current_span, InMemoryExporter, Status, TracerProvider};
/// let exporter = InMemoryExporter::default();
/// let provider = TracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let tracer = provider.tracer("service");
///
/// fn lookup(key: &str) -> Option<u32> {
///     // A helper deep in the call tree annotates whichever span called it.
///     with_current_span(|span| span.set_attribute("cache.key", key.to_owned()));
///     None
/// }
///
/// tracer.in_span("request", |_| lookup("user:42"));
/// assert_eq!(with_current_span(|span| span.set_status(Status::error("x"))), None);
///
/// let spans = exporter.finished_spans();
/// assert_eq!(spans[0].attributes[0].key, "cache.key");
/// ```
pub fn with_current_span<R>(f: impl FnOnce(&mut Span) -> R) -> Option<R> {
    let (id, context) = Context::current_parked()?;
    Some(f(&mut Span::handle(context, id)))
}

/// A span made current on this thread by [`Span::make_current`]: restores the
/// previous context and ends the span when dropped. Not `Send`: it must drop
/// on the thread that made the span current.
#[derive(Debug)]
#[must_use = "the span ends as soon as the guard drops"]
pub struct SpanGuard {
    guard: Option<ContextGuard>,
    /// A handle to the parked span; the span itself when it is not recording.
    span: Span,
}

impl Span {
    /// A handle to the span whose data is parked in entry `id`.
    fn handle(context: SpanContext, id: u64) -> Span {
        Span {
            context,
            data: ManuallyDrop::new(None),
            parked: id,
        }
    }

    /// Makes this span the thread's current span and hands it over until the
    /// guard drops, which ends it: spans started meanwhile become its
    /// children, and [`with_current_span`] records on it. OpenTelemetry calls
    /// this marking the span as active.
    ///
    /// ```
    /// use runtrace::{with_current_span, TracerProvider};
    /// let provider = TracerProvider::noop();
    /// let tracer = provider.tracer("t");
    /// {
    ///     let _request = tracer.span("request").start().make_current();
    ///     with_current_span(|span| span.set_attribute("user.id", 42));
    /// } // "request" ends here
    /// ```
    pub fn make_current(mut self) -> SpanGuard {
        match self.data.take() {
            Some(data) => {
                let context = data.span_context.clone();
                let guard = Context::from_span_context(context.clone()).attach_parking(Some(data));
                let span = Span::handle(context, guard.id());
                SpanGuard {
                    guard: Some(guard),
                    span,
                }
            }
            None => SpanGuard {
                guard: Some(self.enter()),
                span: self,
            },
        }
    }

    /// Runs `f` with this span current under `cx` (its context) and its data
    /// parked meanwhile: what [`FutureExt::in_span`](crate::FutureExt::in_span)
    /// does at each poll. The data comes back afterwards, unless the span
    /// ended meanwhile.
    #[inline]
    pub(crate) fn current_while<R>(&mut self, cx: &mut Context, f: impl FnOnce() -> R) -> R {
        cx.attached_while(&mut self.data, f)
    }
}

impl SpanGuard {
    /// The handle to the span, for the closure of [`Tracer::in_span`](crate::Tracer::in_span).
    pub(crate) fn span(&mut self) -> &mut Span {
        &mut self.span
    }

    /// Takes the span back, still running, and restores the previous context.
    pub(crate) fn into_span(mut self) -> Span {
        match self.take_parked() {
            Some(span) => span,
            None => std::mem::replace(&mut self.span, Span::non_recording(SpanContext::INVALID)),
        }
    }

    /// Detaches the context, and returns the parked span if it did not end
    /// meanwhile.
    fn take_parked(&mut self) -> Option<Span> {
        let (_, data) = self.guard.take()?.detach_parked()?;
        data.map(Span::recording)
    }
}

impl Drop for SpanGuard {
    /// Restores the previous context, then ends the span (processors see the
    /// caller's context). Whatever the handle's place holds then ends too:
    /// the span itself when it is not recording, or one swapped in there.
    fn drop(&mut self) {
        drop(self.take_parked());
    }
}
