//! How an ended span reaches its provider's processors, without touching a
//! shared reference count and, for the batch processor, without dynamic dispatch.

use super::Pipeline;
use crate::batch::BatchSpanProcessor;
use crate::context::SpanContext;
use crate::export::SpanData;
use crate::processor::SpanProcessor;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

thread_local! {
    /// The pipeline this thread last ended a span into. Holding it here lets
    /// `on_end` reach the processors without touching the shared reference count
    /// (a contended cache line when several threads end spans); it keeps that
    /// pipeline's memory alive until the thread exits or uses another provider.
    static LAST_PIPELINE: Cell<Option<Arc<Pipeline>>> = const { Cell::new(None) };
}

/// A span processor; the batch processor, the usual one, is called without
/// dynamic dispatch so that an ended span can be written straight into its queue.
pub(super) enum Processor {
    Batch(BatchSpanProcessor),
    Dyn(Box<dyn SpanProcessor>),
}

impl Processor {
    pub(super) fn new<P: SpanProcessor + 'static>(p: P) -> Self {
        let mut slot = Some(p);
        let any = &mut slot as &mut dyn std::any::Any;
        if let Some(batch) = any
            .downcast_mut::<Option<BatchSpanProcessor>>()
            .and_then(Option::take)
        {
            return Processor::Batch(batch);
        }
        Processor::Dyn(Box::new(
            slot.expect("the slot is emptied only for a batch processor"),
        ))
    }

    pub(super) fn get(&self) -> &dyn SpanProcessor {
        match self {
            Processor::Batch(b) => b,
            Processor::Dyn(d) => d.as_ref(),
        }
    }

    /// `on_start` for processors that use it (the batch processor does not).
    #[inline]
    pub(super) fn on_start(&self, span: &SpanContext, parent: Option<&SpanContext>) {
        if let Processor::Dyn(d) = self {
            d.on_start(span, parent);
        }
    }

    /// Ends `span` in this processor; it is empty afterwards.
    #[inline]
    fn on_end(&self, span: &mut Option<SpanData>) {
        match self {
            Processor::Batch(b) => b.on_end_in_place(span),
            Processor::Dyn(d) => end_in_dyn(d.as_ref(), span),
        }
    }
}

/// Out of line: the usual pipeline is a single batch processor, and this path
/// would weigh on the frame of every span's end.
#[inline(never)]
fn end_in_dyn(processor: &dyn SpanProcessor, span: &mut Option<SpanData>) {
    if let Some(data) = span.take() {
        processor.on_end(data);
    }
}

impl fmt::Debug for Processor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// Delivers an ended span to its provider's processors. The data stays where
/// it lies until a processor takes it (the batch processor copies it straight
/// into its queue); `span` is empty afterwards.
#[inline]
pub(crate) fn on_end(span: &mut Option<SpanData>) {
    let Some(own) = span
        .as_ref()
        .and_then(|data| data.instrumentation.0.pipeline.as_ref())
    else {
        *span = None;
        return;
    };
    let cached = LAST_PIPELINE.try_with(Cell::take).ok().flatten();
    let pipeline = match cached {
        Some(p) if Arc::ptr_eq(&p, own) => p,
        _ => own.clone(),
    };
    dispatch(&pipeline, span);
    // A nested span ended by a processor may have cached something meanwhile;
    // `replace` drops it.
    let _ = LAST_PIPELINE.try_with(|c| c.replace(Some(pipeline)));
}

fn dispatch(pipeline: &Pipeline, span: &mut Option<SpanData>) {
    match pipeline.processors.as_slice() {
        [] => *span = None,
        [only] => only.on_end(span),
        several => dispatch_to_several(several, span),
    }
}

/// Every processor but the last gets a copy. Out of line, like `end_in_dyn`.
#[inline(never)]
fn dispatch_to_several(processors: &[Processor], span: &mut Option<SpanData>) {
    if let [rest @ .., last] = processors {
        for p in rest {
            if let Some(data) = span.as_ref() {
                p.on_end(&mut Some(data.clone()));
            }
        }
        last.on_end(span);
    }
}
