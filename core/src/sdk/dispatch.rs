//! How an ended span reaches its provider's processors, without touching a
//! shared reference count and, for the batch processor, without dynamic dispatch.
//!
//! A span finds its pipeline through its scope ([`Instrumentation::runtime`]),
//! which holds it weakly; the thread keeps the pipeline it used last, so the
//! usual end compares two pointers and upgrades nothing.

use super::provider::Pipeline;
use crate::data::attribute::dedup_keys;
use crate::data::{SpanContext, SpanData};
use crate::diagnostics::{self, panic_message, Level, OnceFlag};
use crate::processor::{BatchSpanProcessor, SpanProcessor};
use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};

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

    /// `on_start`; the batch processor only counts sampled spans started.
    #[inline]
    pub(super) fn on_start(&self, span: &SpanContext, parent: Option<&SpanContext>) {
        match self {
            Processor::Batch(b) => {
                if span.is_sampled() {
                    b.count_started();
                }
            }
            Processor::Dyn(d) => start_in_dyn(d.as_ref(), span, parent),
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
/// The processor gets each attribute key once (the span added them without
/// looking; the batch processor leaves that to its thread).
/// A panic in the processor is caught and reported (once per process): the
/// other processors still get the span, and a span ended while a thread
/// unwinds does not abort the process.
#[inline(never)]
fn end_in_dyn(processor: &dyn SpanProcessor, span: &mut Option<SpanData>) {
    if let Some(mut data) = span.take() {
        dedup_keys(&mut data.attributes);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| processor.on_end(data))) {
            report_panic("on_end", processor, &panic);
        }
    }
}

/// `on_start` of a custom processor, its panic caught as in [`end_in_dyn`].
#[inline(never)]
fn start_in_dyn(processor: &dyn SpanProcessor, span: &SpanContext, parent: Option<&SpanContext>) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| processor.on_start(span, parent))) {
        report_panic("on_start", processor, &panic);
    }
}

static WARN_PROCESSOR_PANIC: OnceFlag = OnceFlag::new();

fn report_panic(method: &str, processor: &dyn SpanProcessor, panic: &Box<dyn Any + Send>) {
    if WARN_PROCESSOR_PANIC.first() {
        diagnostics::emit(
            Level::Error,
            &format!(
                "span processor {processor:?} panicked in {method}: {}; the span is lost to it, \
                 the other processors still get it (reported once)",
                panic_message(panic)
            ),
        );
    }
}

impl fmt::Debug for Processor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// Delivers an ended span to its provider's processors. The data stays where
/// it lies until a processor takes it (the batch processor copies it straight
/// into its queue); `span` is empty afterwards. A span whose provider is gone
/// is dropped.
#[inline]
pub(crate) fn on_end(span: &mut Option<SpanData>) {
    let Some(own) = span.as_ref().and_then(|d| d.instrumentation.runtime()) else {
        *span = None;
        return;
    };
    let Some(pipeline) = pipeline_of(own) else {
        *span = None;
        return;
    };
    dispatch(&pipeline, span);
    // A nested span ended by a processor may have cached something meanwhile;
    // `replace` drops it.
    let _ = LAST_PIPELINE.try_with(|c| c.replace(Some(pipeline)));
}

/// The pipeline `runtime` refers to, taken from this thread's cache (which the
/// caller puts back) when it is that one, so that no shared count is touched;
/// `None` once the provider is gone.
#[inline(always)]
fn pipeline_of(runtime: &Weak<dyn Any + Send + Sync>) -> Option<Arc<Pipeline>> {
    let cached = LAST_PIPELINE.try_with(Cell::take).ok().flatten();
    match cached {
        Some(p) if std::ptr::addr_eq(Weak::as_ptr(runtime), Arc::as_ptr(&p)) => Some(p),
        _ => upgrade(runtime),
    }
}

/// Out of line: only the first span a thread ends into a provider gets here.
#[inline(never)]
fn upgrade(runtime: &Weak<dyn Any + Send + Sync>) -> Option<Arc<Pipeline>> {
    runtime.upgrade()?.downcast::<Pipeline>().ok()
}

fn dispatch(pipeline: &Pipeline, span: &mut Option<SpanData>) {
    match pipeline.processors.as_slice() {
        [] => *span = None,
        [only] => only.on_end(span),
        several => dispatch_to_several(several, span),
    }
}

/// Every processor but the last gets a copy, each attribute key once (made
/// so before copying: the processors' own passes then only read). Out of
/// line, like `end_in_dyn`.
#[inline(never)]
fn dispatch_to_several(processors: &[Processor], span: &mut Option<SpanData>) {
    if let Some(data) = span.as_mut() {
        dedup_keys(&mut data.attributes);
    }
    if let [rest @ .., last] = processors {
        for p in rest {
            if let Some(data) = span.as_ref() {
                p.on_end(&mut Some(data.clone()));
            }
        }
        last.on_end(span);
    }
}
