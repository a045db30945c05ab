//! The current context.
//!
//! A [`Context`] carries the active span's [`SpanContext`]; each thread has a
//! current one, replaced by [`Context::attach`] (or `span.enter()`) and restored
//! when the returned [`ContextGuard`] drops. To carry a parent to another
//! thread, take [`Context::current`] and pass it explicitly.

use crate::data::{SpanContext, SpanData};
use crate::diagnostics::{self, OnceFlag};
use crate::sync::{lend, Lent};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

/// An immutable execution context: the active span's context, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    span: Option<SpanContext>,
}

/// The attached contexts of a thread, innermost last. The current context is
/// the last one: a guard dropped out of order takes its own entry out and
/// leaves the others as they are.
struct Stack(Vec<Entry>);

/// One attached context.
struct Entry {
    /// The id of the guard that detaches it, unique in the process.
    id: u64,
    cx: Context,
    /// The data of a recording span made current together with its context
    /// (by `Tracer::in_span`, `FutureExt::in_span` or `Span::make_current`),
    /// so that `with_current_span` can reach it.
    span: Option<Parked>,
}

/// Where the data of the span of an entry is.
enum Parked {
    /// Moved here, by `Span::make_current` (whose guard moves): boxed, so
    /// that entries stay small to push and pop.
    Owned(Box<Option<SpanData>>),
    /// Lent by the running `in_span` call or poll, where it lies.
    Lent(Lent<Option<SpanData>>),
}

impl Parked {
    /// The span's data; `None` once it ended.
    fn get(&mut self) -> &mut Option<SpanData> {
        match self {
            Parked::Owned(data) => data,
            Parked::Lent(data) => data.get(),
        }
    }
}

impl Drop for Stack {
    /// Thread exit: spans started later by other thread-locals' destructors
    /// see an empty context instead of a destroyed stack.
    fn drop(&mut self) {
        ATTACHED.set(0);
    }
}

thread_local! {
    static STACK: RefCell<Stack> = const { RefCell::new(Stack(Vec::new())) };
    /// `STACK`'s length. While 0 the current context is empty, and reading it
    /// costs one plain thread-local load (no borrow, no clone).
    static ATTACHED: Cell<usize> = const { Cell::new(0) };
    /// The id of the next guard made on this thread; 0 until the first one.
    static NEXT_GUARD: Cell<u64> = const { Cell::new(0) };
}

/// Guard ids are `thread tag << TAG_SHIFT | count`: unique in the process, so
/// that a parked span's handle carried to another thread finds nothing there
/// (rather than another span with the same count).
const TAG_SHIFT: u32 = 40;
/// The next thread's tag; tags start at 1, so no id is 0.
static NEXT_THREAD_TAG: AtomicU64 = AtomicU64::new(1);

/// A new guard id for this thread.
fn next_guard_id() -> u64 {
    NEXT_GUARD.with(|next| {
        let mut id = next.get();
        if id == 0 {
            // This thread's first guard.
            id = NEXT_THREAD_TAG.fetch_add(1, Ordering::Relaxed) << TAG_SHIFT;
        }
        next.set(id.wrapping_add(1));
        id
    })
}

static WARN_OUT_OF_ORDER: OnceFlag = OnceFlag::new();

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

    /// Runs `f` with the current context borrowed (no clone). `f` must not
    /// attach or detach contexts.
    #[inline]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Context) -> R) -> R {
        if !Self::any_attached() {
            return f(&Context::new());
        }
        let mut f = Some(f);
        let mut call = |cx: &Context| f.take().map(|f| f(cx));
        let seen = STACK.try_with(|stack| match stack.borrow().0.last() {
            Some(entry) => call(&entry.cx),
            None => call(&Context::new()),
        });
        // The stack is gone (thread exit) only if the closure did not run.
        match seen {
            Ok(Some(result)) => result,
            _ => call(&Context::new()).expect("`f` runs once: the stack's closure did not run"),
        }
    }

    /// The active span's context, if valid.
    pub fn span_context(&self) -> Option<&SpanContext> {
        self.span.as_ref().filter(|s| s.is_valid())
    }

    /// Makes this the calling thread's current context until the guard drops.
    ///
    /// Guards should drop in the reverse order of their `attach`; one that
    /// drops out of order removes its own context and leaves the current one
    /// (the most recent still attached) in place, with a warning the first
    /// time. A guard must not be held across an `.await`: the task may resume
    /// on another thread, and other tasks polled on this one meanwhile would
    /// see this context as theirs. Use [`FutureExt`](crate::FutureExt) there.
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
        self.attach_parking(&mut None)
    }

    /// Attaches this context, with the data of its recording span taken from
    /// `span` into its entry. Take the data back with
    /// [`ContextGuard::detach_owned`]. At thread exit, when nothing can be
    /// attached, the data stays in `span`.
    pub(crate) fn attach_owning(self, span: &mut Option<SpanData>) -> ContextGuard {
        let mut parked = span.take().map(|data| Parked::Owned(Box::new(Some(data))));
        let guard = self.attach_parking(&mut parked);
        if let Some(Parked::Owned(data)) = parked {
            *span = *data;
        }
        guard
    }

    /// Attaches this context, with `span` taken into its entry.
    fn attach_parking(self, span: &mut Option<Parked>) -> ContextGuard {
        let id = next_guard_id();
        // At thread exit (the stack destroyed) nothing is attached, `span`
        // stays where it is, and the guard's drop finds nothing to remove.
        let _ = STACK.try_with(|stack| {
            let mut stack = stack.borrow_mut();
            stack.0.push(Entry {
                id,
                cx: self,
                span: span.take(),
            });
            ATTACHED.set(stack.0.len());
        });
        ContextGuard {
            id,
            _not_send: PhantomData,
        }
    }

    /// Runs `f` with this context attached, and takes it back afterwards:
    /// no clone (the futures' adapters attach their context at every poll).
    pub(crate) fn attached_while<R>(&mut self, f: impl FnOnce() -> R) -> R {
        if self.span.is_none() && !Self::any_attached() {
            // Empty over empty: nothing would change (a no-op provider's
            // `with_current_context` costs one thread-local load per poll).
            return f();
        }
        let guard = std::mem::take(self).attach();
        // Takes the context back even if `f` panics (a future polled again
        // after a caught panic keeps its context).
        let _restore = Restore {
            guard: Some(guard),
            slot: self,
        };
        f()
    }

    /// Runs `f` with this context attached (as [`attached_while`]) and the
    /// data of its recording span lent to its entry, so that
    /// [`with_parked`](Self::with_parked) reaches it where it lies. `f` gets
    /// the entry's id (0 at thread exit, when nothing can be attached). The
    /// data is `None` afterwards if the span ended meanwhile.
    ///
    /// [`attached_while`]: Self::attached_while
    pub(crate) fn attached_lending<R>(
        &mut self,
        span: &mut Option<SpanData>,
        f: impl FnOnce(u64) -> R,
    ) -> R {
        let cx = std::mem::take(self);
        lend(
            span,
            |lent| {
                let mut parked = Some(Parked::Lent(lent));
                let guard = cx.attach_parking(&mut parked);
                match parked {
                    Some(Parked::Lent(lent)) => Err(lent),
                    _ => Ok(guard),
                }
            },
            |guard| f(guard.map_or(0, |guard| guard.id)),
            |guard| {
                let (cx, parked) = guard.detach()?;
                *self = cx;
                match parked? {
                    Parked::Lent(lent) => Some(lent),
                    Parked::Owned(_) => None,
                }
            },
        )
    }

    /// The id of the current entry and its span's context, if a recording
    /// span's data is parked there.
    pub(crate) fn current_parked() -> Option<(u64, SpanContext)> {
        if !Self::any_attached() {
            return None;
        }
        STACK
            .try_with(|stack| {
                let mut stack = stack.borrow_mut();
                let entry = stack.0.last_mut()?;
                entry.span.as_mut()?.get().as_ref()?;
                Some((entry.id, entry.cx.span.clone()?))
            })
            .ok()
            .flatten()
    }

    /// Runs `f` on the parked span data of guard `id`'s entry, if that entry
    /// is still attached on this thread. `f` must not attach, detach or read
    /// contexts (it runs with the stack borrowed).
    pub(crate) fn with_parked<R>(id: u64, f: impl FnOnce(&mut Option<SpanData>) -> R) -> Option<R> {
        STACK
            .try_with(|stack| {
                let mut stack = stack.borrow_mut();
                let entry = stack.0.iter_mut().rev().find(|entry| entry.id == id)?;
                Some(f(entry.span.as_mut()?.get()))
            })
            .ok()
            .flatten()
    }
}

/// Restores the previous context when dropped. Not `Send`: it must drop
/// on the thread that attached it.
#[derive(Debug)]
#[must_use = "the context is detached as soon as the guard drops"]
pub struct ContextGuard {
    id: u64,
    _not_send: PhantomData<*const ()>,
}

impl ContextGuard {
    /// Takes this guard's context off the thread's stack, and returns the
    /// span data moved there by [`Context::attach_owning`] (if the span did
    /// not end meanwhile).
    pub(crate) fn detach_owned(self) -> Option<SpanData> {
        match self.detach()?.1? {
            Parked::Owned(data) => *data,
            Parked::Lent(_) => None,
        }
    }

    /// Takes this guard's entry off the thread's stack.
    fn detach(self) -> Option<(Context, Option<Parked>)> {
        let id = self.id;
        std::mem::forget(self);
        remove(id)
    }
}

/// Detaches a guard's context and puts it back in its slot, when dropped.
struct Restore<'a> {
    guard: Option<ContextGuard>,
    slot: &'a mut Context,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        if let Some((cx, _)) = self.guard.take().and_then(ContextGuard::detach) {
            *self.slot = cx;
        }
    }
}

/// Removes the entry of guard `id`: the last one, or (warning once) one
/// further down, which leaves the current context as it is.
fn remove(id: u64) -> Option<(Context, Option<Parked>)> {
    // try_with: the stack may already be gone during thread teardown.
    let removed = STACK.try_with(|stack| {
        let mut stack = stack.borrow_mut();
        let removed = if stack.0.last().is_some_and(|last| last.id == id) {
            stack.0.pop().map(|entry| (entry, false))
        } else {
            let position = stack.0.iter().rposition(|entry| entry.id == id)?;
            Some((stack.0.remove(position), true))
        };
        ATTACHED.set(stack.0.len());
        removed
    });
    let (entry, out_of_order) = removed.ok().flatten()?;
    // After the stack is released: the handler may read the current context.
    if out_of_order && WARN_OUT_OF_ORDER.first() {
        diagnostics::warn(
            "a context guard was dropped out of order (before a guard attached after it); \
             the current context stays the most recent one still attached",
        );
    }
    Some((entry.cx, entry.span))
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        drop(remove(self.id));
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
    fn guards_dropped_out_of_order_leave_the_most_recent_context_current() {
        let g1 = cx(1).attach();
        let g2 = cx(2).attach();
        let g3 = cx(3).attach();
        drop(g2);
        assert_eq!(Context::current(), cx(3));
        drop(g1);
        assert_eq!(Context::current(), cx(3));
        let g4 = cx(4).attach();
        drop(g3);
        assert_eq!(Context::current(), cx(4));
        drop(g4);
        assert_eq!(Context::current(), Context::new());
        assert!(!Context::any_attached());
    }

    #[test]
    fn attached_while_gives_the_context_back() {
        let mut mine = cx(5);
        let _outer = cx(6).attach();
        let seen = mine.attached_while(Context::current);
        assert_eq!(seen, cx(5));
        assert_eq!(mine, cx(5));
        assert_eq!(Context::current(), cx(6));
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
