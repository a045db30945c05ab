//! The current context.
//!
//! A [`Context`] carries the active span's [`SpanContext`]; each thread has a
//! current one, replaced by [`Context::attach`] (or `span.enter()`) and restored
//! when the returned [`ContextGuard`] drops. To carry a parent to another
//! thread, take [`Context::current`] and pass it explicitly.

use crate::data::SpanContext;
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

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
    use crate::data::{SpanId, TraceFlags, TraceId, TraceState};

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
}
