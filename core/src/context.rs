//! Span contexts and the current context.
//!
//! A [`SpanContext`] is what crosses process boundaries: ids, flags, trace state and
//! whether it came from another process. A [`Context`] carries the active span's
//! context; each thread has a current one, replaced by [`Context::attach`] (or
//! `span.enter()`) and restored when the returned [`ContextGuard`] drops. To carry
//! a parent to another thread, take [`Context::current`] and pass it explicitly.

use crate::id::{SpanId, TraceId};
use crate::trace_state::TraceState;
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

/// W3C trace flags: sampled (0x01) and random (0x02).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TraceFlags(u8);

impl TraceFlags {
    /// The sampled bit.
    pub const SAMPLED: TraceFlags = TraceFlags(0x01);
    /// The W3C Level 2 random trace-id bit.
    pub const RANDOM: TraceFlags = TraceFlags(0x02);
    /// No flag set.
    pub const NONE: TraceFlags = TraceFlags(0);

    /// Wraps the raw byte.
    pub const fn new(bits: u8) -> Self {
        TraceFlags(bits)
    }
    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Whether the sampled bit is set.
    pub const fn is_sampled(self) -> bool {
        self.0 & 0x01 != 0
    }
    /// Whether the random bit is set.
    pub const fn is_random(self) -> bool {
        self.0 & 0x02 != 0
    }
    /// These flags with the sampled bit set or cleared.
    pub const fn with_sampled(self, sampled: bool) -> Self {
        if sampled {
            TraceFlags(self.0 | 0x01)
        } else {
            TraceFlags(self.0 & !0x01)
        }
    }
}

/// The identity of a span as it propagates: ids, flags, trace state, remoteness.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SpanContext {
    trace_id: TraceId,
    span_id: SpanId,
    flags: TraceFlags,
    is_remote: bool,
    trace_state: TraceState,
}

impl SpanContext {
    /// The invalid context (all-zero ids).
    pub const INVALID: SpanContext = SpanContext {
        trace_id: TraceId::INVALID,
        span_id: SpanId::INVALID,
        flags: TraceFlags::NONE,
        is_remote: false,
        trace_state: TraceState::EMPTY,
    };

    /// Builds a span context.
    pub fn new(
        trace_id: TraceId,
        span_id: SpanId,
        flags: TraceFlags,
        is_remote: bool,
        trace_state: TraceState,
    ) -> Self {
        SpanContext {
            trace_id,
            span_id,
            flags,
            is_remote,
            trace_state,
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }
    /// The span id.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }
    /// The trace flags.
    pub fn trace_flags(&self) -> TraceFlags {
        self.flags
    }
    /// Whether the sampled flag is set.
    pub fn is_sampled(&self) -> bool {
        self.flags.is_sampled()
    }
    /// Whether this context was extracted from another process.
    pub fn is_remote(&self) -> bool {
        self.is_remote
    }
    /// The trace state.
    pub fn trace_state(&self) -> &TraceState {
        &self.trace_state
    }
    /// Both ids are valid.
    pub fn is_valid(&self) -> bool {
        self.trace_id.is_valid() && self.span_id.is_valid()
    }
}

/// An immutable execution context: the active span's context, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    span: Option<SpanContext>,
}

thread_local! {
    static CURRENT: RefCell<Context> = const { RefCell::new(Context { span: None }) };
    /// Guards alive on this thread. While 0 the current context is empty, and
    /// reading it costs one plain thread-local load (no borrow, no clone).
    static ATTACHED: Cell<usize> = const { Cell::new(0) };
}

impl Context {
    /// The empty context (no active span).
    pub const fn new() -> Self {
        Context { span: None }
    }

    /// A context whose active span is `span_context` (for example one extracted
    /// from incoming headers).
    pub fn from_span_context(span_context: SpanContext) -> Self {
        Context {
            span: Some(span_context),
        }
    }

    /// A copy of the calling thread's current context.
    pub fn current() -> Self {
        Self::with_current(Context::clone)
    }

    /// `false` when no context is attached on this thread (one thread-local load).
    #[inline]
    pub(crate) fn any_attached() -> bool {
        ATTACHED.with(Cell::get) != 0
    }

    /// Runs `f` with the current context borrowed (no clone).
    #[inline]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Context) -> R) -> R {
        if !Self::any_attached() {
            return f(&Context::new());
        }
        CURRENT.with(|c| f(&c.borrow()))
    }

    /// The active span's context, if valid.
    pub fn span_context(&self) -> Option<&SpanContext> {
        self.span.as_ref().filter(|s| s.is_valid())
    }

    /// Makes this the calling thread's current context until the guard drops.
    ///
    /// ```
    /// use runtrace::{Context, SpanContext};
    /// let cx = Context::from_span_context(SpanContext::INVALID);
    /// {
    ///     let _g = cx.clone().attach();
    ///     assert_eq!(Context::current(), cx);
    /// }
    /// assert_eq!(Context::current(), Context::new());
    /// ```
    pub fn attach(self) -> ContextGuard {
        let previous = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), self));
        ATTACHED.with(|n| n.set(n.get() + 1));
        ContextGuard {
            previous: Some(previous),
            _not_send: PhantomData,
        }
    }
}

/// Restores the previous current context when dropped. Not `Send`: it must drop
/// on the thread that attached it.
#[derive(Debug)]
#[must_use = "the context is detached as soon as the guard drops"]
pub struct ContextGuard {
    previous: Option<Context>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        if let Some(prev) = self.previous.take() {
            // try_with: the thread-local may already be gone during thread teardown.
            let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
            let _ = ATTACHED.try_with(|n| n.set(n.get().saturating_sub(1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(n: u8) -> Context {
        Context::from_span_context(SpanContext::new(
            TraceId::from_bytes([n; 16]),
            SpanId::from_bytes([n; 8]),
            TraceFlags::SAMPLED,
            false,
            TraceState::EMPTY,
        ))
    }

    #[test]
    fn guards_nest_and_restore() {
        assert_eq!(Context::current(), Context::new());
        let g1 = cx(1).attach();
        {
            let _g2 = cx(2).attach();
            assert_eq!(Context::current(), cx(2));
        }
        assert_eq!(Context::current(), cx(1));
        drop(g1);
        assert_eq!(Context::current(), Context::new());
    }

    #[test]
    fn current_is_per_thread_and_passes_explicitly() {
        let _g = cx(3).attach();
        let carried = Context::current();
        let seen = std::thread::spawn(move || {
            let before = Context::current();
            let _g = carried.attach();
            (before, Context::current())
        })
        .join()
        .unwrap();
        assert_eq!(seen.0, Context::new());
        assert_eq!(seen.1, cx(3));
    }

    #[test]
    fn flags_bits() {
        let f = TraceFlags::new(0x03);
        assert!(f.is_sampled() && f.is_random());
        assert_eq!(f.with_sampled(false).bits(), 0x02);
    }
}
