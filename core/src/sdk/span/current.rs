//! The current span: handing a span to the thread's context, so that code
//! called meanwhile can record on it without being passed it.
//!
//! What makes such a span current holds its data: the context stack entry of
//! [`Span::make_current`]'s guard, moved there (the guard moves, so the data
//! cannot stay in it), or the frame of the call of [`Tracer::in_span`] or of
//! the poll of [`FutureExt::in_span`](crate::FutureExt::in_span), lent where
//! it lies for the length of the call or poll. The `&mut Span` handles given
//! out meanwhile ([`with_current_span`]'s, `in_span`'s) carry only that
//! entry's or frame's id, and each method reaches the data for the time of
//! its own update: there is never a second `&mut` to the same data, and
//! nested calls are fine.
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
    /// The guard of the context entry that holds the span's data (taken on drop).
    guard: Option<ContextGuard>,
    /// The span, when its data is not in the entry: not recording (only
    /// entered), or at thread exit (when nothing can be made current).
    span: Option<Span>,
}

impl Span {
    /// A handle to the span whose data is parked in entry `id`.
    fn handle(context: SpanContext, id: u64) -> Span {
        Span {
            context: Context::from_span_context(context),
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
        let Some(context) = self.data.as_ref().map(|d| d.span_context.clone()) else {
            return SpanGuard {
                guard: Some(self.enter()),
                span: Some(self),
            };
        };
        let guard = Context::from_span_context(context).attach_owning(&mut self.data);
        SpanGuard {
            guard: Some(guard),
            // Still here only at thread exit.
            span: self.data.is_some().then_some(self),
        }
    }

    /// Copies a recording span's context beside its data, unless it holds the
    /// copy already: what each call of [`lent_while`](Self::lent_while) lends
    /// with the data, where they lie, and what the span keeps once it ends.
    #[inline]
    pub(crate) fn hold_context_copy(&mut self) {
        if let Some(data) = self.data.as_ref() {
            if self.context.span_context_as_given().is_none() {
                self.context = Context::from_span_context(data.span_context.clone());
            }
        }
    }

    /// Runs `f` with this span current: what each poll of an
    /// [`FutureExt::in_span`](crate::FutureExt::in_span) future does, and
    /// [`Tracer::in_span`](crate::Tracer::in_span) around its closure. A
    /// recording span holding its context's copy ([`hold_context_copy`](Self::hold_context_copy)) has
    /// its data lent to the call's context frame meanwhile, where the handles
    /// made from the frame id `f` gets, and [`with_current_span`], record on
    /// it, whatever its context (even invalid ids, which only a custom
    /// generator breaking its contract makes). A non-recording span's valid
    /// context is only made current; an invalid one (a placeholder span, or
    /// a no-op provider's outside any context) changes nothing, and `f` gets
    /// 0.
    #[inline]
    pub(crate) fn lent_while<R>(&mut self, f: impl FnOnce(u64) -> R) -> R {
        if self.data.is_some() {
            debug_assert!(
                self.context.span_context_as_given().is_some(),
                "a recording span holds its context's copy before it is lent"
            );
            self.context.attached_lending(&mut self.data, f)
        } else if self.context.span_context().is_some() {
            self.context.attached_while(|| f(0))
        } else {
            f(0)
        }
    }

    /// Runs `f` with this span current, on a handle to it: what
    /// [`Tracer::in_span`](crate::Tracer::in_span) does. A non-recording span
    /// is only entered, and `f` gets the span itself.
    pub(crate) fn handed_over_while<R>(&mut self, f: impl FnOnce(&mut Span) -> R) -> R {
        if !self.is_recording() {
            let _guard = self.enter();
            return f(self);
        }
        self.hold_context_copy();
        let context = self.span_context().clone();
        self.lent_while(|id| f(&mut Span::handle(context, id)))
    }
}

impl Drop for SpanGuard {
    /// Restores the previous context, then ends the span, unless it ended
    /// already through a handle (processors see the caller's context). A span
    /// kept here ends as the field drops.
    fn drop(&mut self) {
        if let Some(data) = self.guard.take().and_then(ContextGuard::detach_owned) {
            drop(Span::recording(data));
        }
        drop(self.span.take());
    }
}
