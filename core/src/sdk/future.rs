//! Spans and contexts across `.await`: [`FutureExt`].
//!
//! A [`ContextGuard`](crate::ContextGuard) makes a context current on one
//! thread until it drops, which is wrong across an `.await`: the task may
//! resume on another thread, and other tasks polled on this one meanwhile
//! would run in its context. These adapters make a context current only while
//! their future is polled, on whichever thread polls it.

use super::span::Span;
use crate::context::Context;
use crate::sync::{AroundPoll, Instrumented};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// A future whose context is current while it is polled; see
/// [`FutureExt::with_context`].
pub type WithContext<F> = Instrumented<F, Context>;

/// A future that runs in a span and ends it; see [`FutureExt::in_span`].
pub type InSpan<F> = Instrumented<F, SpanScope>;

/// The span an [`InSpan`] future runs in, lent to each poll.
#[derive(Debug)]
pub struct SpanScope(Span);

impl AroundPoll for Context {
    #[inline]
    fn poll_around<F: Future>(
        &mut self,
        future: Pin<&mut F>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<F::Output> {
        self.attached_while(|| future.poll(cx))
    }
}

impl AroundPoll for SpanScope {
    #[inline]
    fn poll_around<F: Future>(
        &mut self,
        future: Pin<&mut F>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<F::Output> {
        let poll = self.0.lent_while(|_| future.poll(cx));
        if poll.is_ready() {
            self.0.end();
        }
        poll
    }
}

/// Context and span adapters for every [`Future`].
///
/// ```
/// use runtrace::{Context, FutureExt, InMemoryExporter, TracerProvider};
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// let exporter = InMemoryExporter::default();
/// let provider = TracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let tracer = provider.tracer("service");
///
/// let request = async {
///     // Current while the future is polled: a child of "request".
///     tracer.span("query").start().end();
/// };
/// block_on(request.in_span(tracer.span("request").start()));
///
/// let spans = exporter.finished_spans();
/// assert_eq!(spans[0].name, "query");
/// assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
/// assert_eq!(Context::current(), Context::new()); // nothing left attached
/// ```
pub trait FutureExt: Future + Sized {
    /// Runs this future in `span`: the span is current while the future is
    /// polled (on whichever thread polls it), and ends when the future
    /// completes, or when it is dropped unfinished.
    #[inline]
    fn in_span(self, mut span: Span) -> InSpan<Self> {
        span.hold_context_copy();
        Instrumented::new(self, SpanScope(span))
    }

    /// Makes `cx` current while this future is polled.
    #[inline]
    fn with_context(self, cx: Context) -> WithContext<Self> {
        Instrumented::new(self, cx)
    }

    /// Makes the caller's current context current while this future is
    /// polled: `tokio::spawn(fut.with_current_context())` carries the trace
    /// into the task.
    fn with_current_context(self) -> WithContext<Self> {
        self.with_context(Context::current())
    }
}

impl<F: Future> FutureExt for F {}
