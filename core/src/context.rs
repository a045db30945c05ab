//! The current context.
//!
//! A [`Context`] carries the active span's [`SpanContext`]; each thread has a
//! current one, replaced by [`Context::attach`] (or `span.enter()`) and restored
//! when the returned [`ContextGuard`] drops. To carry a parent to another
//! thread, take [`Context::current`] and pass it explicitly.
//!
//! A thread's contexts are in two stacks: the entries of guards (which move,
//! and may drop in any order) in a `Vec`, and the frames of calls (each poll
//! of a `FutureExt` future, each `Tracer::in_span`), which nest in each other
//! and so live in the calls themselves (`sync::Frames`). The current context is
//! the newer of the two tops: ids, which only grow on a thread, order them (a
//! frame records the id the next guard will get).
//!
//! A bridge from another instrumentation library (runtrace-tracing, for
//! `tracing`'s entered spans) keeps its own stack and opens a
//! [`ForeignScope`] for each entry: an id in the same order, and nothing else
//! until someone asks for the current context. Then the bridge's
//! [`ForeignResolver`] answers for its newest scope that has a context, and
//! that context is current if it is newer than the tops of the two stacks
//! here. A bridge thus pays for a context only when one is read, not at each
//! enter and exit.

use crate::data::{SpanContext, SpanData};
use crate::diagnostics::{self, OnceFlag};
use crate::sync::Frames;
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

/// An immutable execution context: the active span's context, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    span: Option<SpanContext>,
}

/// The guards' attached contexts of a thread, innermost last. A guard
/// dropped out of order takes its own entry out and leaves the others as
/// they are.
struct Stack(Vec<Entry>);

/// One context attached by a guard.
struct Entry {
    /// The id of the guard that detaches it, unique in the process.
    id: u64,
    cx: Context,
    /// The data of a recording span made current together with its context
    /// by `Span::make_current`, so that `with_current_span` can reach it:
    /// boxed, so that entries stay small to push and pop.
    span: Option<Box<Option<SpanData>>>,
}

/// The frame of a call that made a context current ([`Context::attached_while`],
/// [`Context::attached_lending`]); it lends the context, and the data of a
/// span made current with it.
struct Frame {
    /// The id that handles to its span carry (unique in the process, as
    /// guards' ids); 0 for a frame without a span.
    id: u64,
    /// The id the next guard of this thread gets: guard entries with this id
    /// or a higher one were attached after the frame, and are newer.
    since: u64,
}

impl Frame {
    /// Whether the frame is newer than the newest guard entry, whose id is
    /// `newest_guard` (0: none).
    #[inline]
    fn is_newer_than(&self, newest_guard: u64) -> bool {
        newest_guard == 0 || newest_guard < self.since
    }
}

impl Stack {
    /// After an entry left: the newest id and the count follow.
    #[inline]
    fn entry_left(&self) {
        NEWEST_GUARD.set(self.0.last().map_or(0, |last| last.id));
        ATTACHED.set(ATTACHED.get() - 1);
    }
}

impl Drop for Stack {
    /// Thread exit: spans started later by other thread-locals' destructors
    /// see an empty context instead of a destroyed stack.
    fn drop(&mut self) {
        ATTACHED.set(ATTACHED.get() - self.0.len());
        NEWEST_GUARD.set(0);
    }
}

thread_local! {
    static STACK: RefCell<Stack> = const { RefCell::new(Stack(Vec::new())) };
    /// The calls' frames (no destructor: usable until the thread is gone).
    static FRAMES: Frames<Frame, Context, Option<SpanData>> = const { Frames::new() };
    /// The id of `STACK`'s last entry, the newest (0 while it is empty).
    static NEWEST_GUARD: Cell<u64> = const { Cell::new(0) };
    /// Guard entries and frames. While 0 the current context is empty, and
    /// reading it costs one plain thread-local load (no borrow, no clone).
    static ATTACHED: Cell<usize> = const { Cell::new(0) };
    /// The id of the next guard made on this thread; 0 until the first one.
    static NEXT_GUARD: Cell<u64> = const { Cell::new(0) };
    /// The foreign scopes open on this thread (counted in `ATTACHED` too).
    static FOREIGN_OPEN: Cell<usize> = const { Cell::new(0) };
    /// The resolver of the last foreign scope opened on this thread.
    static FOREIGN_RESOLVER: Cell<Option<ForeignResolver>> = const { Cell::new(None) };
}

/// Guard ids are `thread tag << TAG_SHIFT | count`: unique in the process, so
/// that a parked span's handle carried to another thread finds nothing there
/// (rather than another span with the same count).
const TAG_SHIFT: u32 = 40;
/// The next thread's tag; tags start at 1, so no id is 0.
static NEXT_THREAD_TAG: AtomicU64 = AtomicU64::new(1);

/// A new guard id for this thread: higher than every id it had before.
fn next_guard_id() -> u64 {
    NEXT_GUARD.with(|next| {
        let mut id = next.get();
        if id & COUNT_MASK == COUNT_MASK || id == 0 {
            // This thread's first guard, or its count is used up (2^40 ids):
            // a new tag, higher than every tag given before.
            id = NEXT_THREAD_TAG.fetch_add(1, Ordering::Relaxed) << TAG_SHIFT;
        }
        next.set(id + 1);
        id
    })
}

/// The count part of a guard id.
const COUNT_MASK: u64 = (1 << TAG_SHIFT) - 1;

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

    /// A copy of the calling thread's current context, in which `resolve`
    /// answers for the open [`ForeignScope`]s instead of the resolver they
    /// were opened with: for a bridge inside its own library's callbacks,
    /// where that resolver may not reach the library's state (`tracing`
    /// refuses to hand out its default dispatcher while it dispatches).
    /// `resolve` gets and returns what a [`ForeignResolver`] does.
    ///
    /// ```
    /// use runtrace::context::ForeignScope;
    /// use runtrace::{Context, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// let cx = Context::from_span_context(SpanContext::new(
    ///     TraceId::from_bytes([1; 16]),
    ///     SpanId::from_bytes([1; 8]),
    ///     TraceFlags::SAMPLED,
    ///     false,
    ///     TraceState::EMPTY,
    /// ));
    /// let scope = ForeignScope::open(|_| None);
    /// let id = scope.id();
    /// assert_eq!(Context::current(), Context::new()); // its resolver knows no context
    /// assert_eq!(Context::current_resolving(|_| Some((id, cx.clone()))), cx);
    /// ```
    pub fn current_resolving(resolve: impl FnOnce(u64) -> Option<(u64, Context)>) -> Self {
        Self::with_current_resolving(resolve, Context::clone)
    }

    /// Runs `f` with the current context borrowed (no clone). `f` must not
    /// attach or detach contexts.
    #[inline]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Context) -> R) -> R {
        Self::with_current_resolving(resolve_foreign, f)
    }

    /// [`with_current`](Self::with_current), with `resolve` answering for the
    /// foreign scopes.
    #[inline]
    fn with_current_resolving<R>(
        resolve: impl FnOnce(u64) -> Option<(u64, Context)>,
        f: impl FnOnce(&Context) -> R,
    ) -> R {
        if !Self::any_attached() {
            return f(&Context::new());
        }
        let newest_guard = NEWEST_GUARD.get();
        if let Some((_, cx)) = foreign_current(newest_guard, resolve) {
            return f(&cx);
        }
        let mut f = Some(f);
        let mut call = |cx: &Context| f.take().map(|f| f(cx));
        let in_frame = FRAMES.with(|frames| {
            frames.with_top(|frame, cx, _| frame.is_newer_than(newest_guard).then(|| call(cx)))
        });
        if let Some(Some(Some(result))) = in_frame {
            return result;
        }
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

    /// The active span's context as it was given, valid or not.
    #[inline]
    pub(crate) fn span_context_as_given(&self) -> Option<&SpanContext> {
        self.span.as_ref()
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

    /// Makes this context current as [`attach`](Self::attach) does, with a
    /// guard that may drop in any order without a warning: for bridges from
    /// scopes that may end in any order, such as `tracing`'s spans (which may
    /// exit in any order). The current context is always the most recent one
    /// still attached.
    ///
    /// ```
    /// use runtrace::{Context, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// let cx = |n| {
    ///     Context::from_span_context(SpanContext::new(
    ///         TraceId::from_bytes([n; 16]),
    ///         SpanId::from_bytes([n; 8]),
    ///         TraceFlags::SAMPLED,
    ///         false,
    ///         TraceState::EMPTY,
    ///     ))
    /// };
    /// let outer = cx(1).attach_any_order();
    /// let inner = cx(2).attach_any_order();
    /// drop(outer); // out of order: no warning
    /// assert_eq!(Context::current(), cx(2));
    /// drop(inner);
    /// assert_eq!(Context::current(), Context::new());
    /// ```
    pub fn attach_any_order(self) -> ContextGuard {
        let mut guard = self.attach();
        guard.any_order = true;
        guard
    }

    /// Attaches this context, with the data of its recording span taken from
    /// `span` into its entry. Take the data back with
    /// [`ContextGuard::detach_owned`]. At thread exit, when nothing can be
    /// attached, the data stays in `span`.
    pub(crate) fn attach_owning(self, span: &mut Option<SpanData>) -> ContextGuard {
        let mut parked = span.take().map(|data| Box::new(Some(data)));
        let guard = self.attach_parking(&mut parked);
        if let Some(data) = parked {
            *span = *data;
        }
        guard
    }

    /// Attaches this context, with `span` taken into its entry.
    fn attach_parking(self, span: &mut Option<Box<Option<SpanData>>>) -> ContextGuard {
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
            NEWEST_GUARD.set(id);
            ATTACHED.set(ATTACHED.get() + 1);
        });
        ContextGuard {
            id,
            any_order: false,
            _not_send: PhantomData,
        }
    }

    /// Runs `f` with this context current, in a frame of the call (see
    /// [`Frames`]): nothing moved, allocated or cloned (the futures' adapters
    /// make their context current at every poll).
    pub(crate) fn attached_while<R>(&mut self, f: impl FnOnce() -> R) -> R {
        if self.span.is_none() && !Self::any_attached() {
            // Empty over empty: nothing would change (a no-op provider's
            // `with_current_context` costs one thread-local load per poll).
            return f();
        }
        self.in_frame(0, None, f)
    }

    /// Runs `f` with this context current (as [`attached_while`]) and the
    /// data of its recording span lent to its frame, so that
    /// [`with_parked`](Self::with_parked) reaches it where it lies. `f` gets
    /// the frame's id. The data is `None` afterwards if the span ended
    /// meanwhile.
    ///
    /// [`attached_while`]: Self::attached_while
    pub(crate) fn attached_lending<R>(
        &mut self,
        span: &mut Option<SpanData>,
        f: impl FnOnce(u64) -> R,
    ) -> R {
        let id = next_guard_id();
        self.in_frame(id, Some(span), || f(id))
    }

    /// Runs `f` in a frame that lends this context and `span`.
    #[inline]
    fn in_frame<R>(
        &mut self,
        id: u64,
        span: Option<&mut Option<SpanData>>,
        f: impl FnOnce() -> R,
    ) -> R {
        let frame = Frame {
            id,
            since: NEXT_GUARD.get(),
        };
        ATTACHED.set(ATTACHED.get() + 1);
        // Counted out also when `f` panics.
        let _count = FrameCount;
        FRAMES.with(|frames| frames.push_while(frame, self, span, f))
    }

    /// The id of the current entry and its span's context, if a recording
    /// span's data is parked there.
    pub(crate) fn current_parked() -> Option<(u64, SpanContext)> {
        if !Self::any_attached() {
            return None;
        }
        let newest_guard = NEWEST_GUARD.get();
        if foreign_current(newest_guard, resolve_foreign).is_some() {
            // A foreign scope's span is not runtrace's to record on.
            return None;
        }
        let in_frame = FRAMES.with(|frames| {
            frames.with_top(|frame, cx, span| {
                // A frame that is current answers, with or without a span.
                frame.is_newer_than(newest_guard).then(|| {
                    span?.as_ref()?;
                    Some((frame.id, cx.span.clone()?))
                })
            })
        });
        if let Some(Some(current)) = in_frame {
            return current;
        }
        STACK
            .try_with(|stack| {
                let mut stack = stack.borrow_mut();
                let entry = stack.0.last_mut()?;
                entry.span.as_deref()?.as_ref()?;
                Some((entry.id, entry.cx.span.clone()?))
            })
            .ok()
            .flatten()
    }

    /// Runs `f` on the span data of the frame or guard entry `id`, if it is
    /// still attached on this thread. `f` must not attach, detach or read
    /// contexts: it runs inside an exclusive visit of the frames (where a
    /// context read is refused) or with the stack borrowed.
    pub(crate) fn with_parked<R>(id: u64, f: impl FnOnce(&mut Option<SpanData>) -> R) -> Option<R> {
        if id == 0 {
            return None;
        }
        let mut f = Some(f);
        let mut call = |data: &mut Option<SpanData>| f.take().map(|f| f(data));
        let in_frame = FRAMES.with(|frames| {
            frames.find_mut(|frame, _, span| (frame.id == id).then(|| span.and_then(&mut call)))
        });
        if let Some(found) = in_frame {
            return found;
        }
        STACK
            .try_with(|stack| {
                let mut stack = stack.borrow_mut();
                let entry = stack.0.iter_mut().rev().find(|entry| entry.id == id)?;
                call(entry.span.as_mut()?)
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
    /// Made by [`Context::attach_any_order`]: an out-of-order drop is no misuse.
    any_order: bool,
    _not_send: PhantomData<*const ()>,
}

impl ContextGuard {
    /// Takes this guard's context off the thread's stack, and returns the
    /// span data moved there by [`Context::attach_owning`] (if the span did
    /// not end meanwhile).
    pub(crate) fn detach_owned(self) -> Option<SpanData> {
        *self.detach()?.1?
    }

    /// Takes this guard's entry off the thread's stack.
    fn detach(self) -> Option<(Context, Option<Box<Option<SpanData>>>)> {
        let (id, any_order) = (self.id, self.any_order);
        std::mem::forget(self);
        remove(id, any_order)
    }
}

/// Answers, when the current context is read while [`ForeignScope`]s are
/// open on this thread, for the newest of them with an id greater than its
/// argument that has a context: that scope's [`id`](ForeignScope::id) and
/// its context (the id alone places the answer among runtrace's contexts, so
/// it must be one of the bridge's open scopes). `None` if there is none (or
/// the bridge cannot tell now); the current context is then the newest of
/// runtrace's own. A resolver runs with nothing of runtrace's context
/// borrowed: it may start spans and read the current context (which calls it
/// again), and must detach before it returns whatever it attaches.
pub type ForeignResolver = fn(u64) -> Option<(u64, Context)>;

/// A scope of another instrumentation library that is current on this
/// thread while open, such as an entered `tracing` span: newer than every
/// context attached before it, older than those attached after. It holds no
/// context: while it is open, reading the current context asks the
/// [`ForeignResolver`] it was opened with, so a bridge pays for its
/// context only when one is read. Scopes may close in any order. Not `Send`:
/// it must drop on the thread that opened it.
///
/// ```
/// use runtrace::context::ForeignScope;
/// use runtrace::{Context, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
/// use std::cell::RefCell;
///
/// thread_local! {
///     // The bridge's own stack: each open scope's id and context.
///     static OPEN: RefCell<Vec<(u64, Context)>> = const { RefCell::new(Vec::new()) };
/// }
/// fn resolve(newer_than: u64) -> Option<(u64, Context)> {
///     OPEN.with(|open| open.borrow().last().filter(|(id, _)| *id > newer_than).cloned())
/// }
/// let cx = Context::from_span_context(SpanContext::new(
///     TraceId::from_bytes([1; 16]),
///     SpanId::from_bytes([1; 8]),
///     TraceFlags::SAMPLED,
///     false,
///     TraceState::EMPTY,
/// ));
/// let scope = ForeignScope::open(resolve);
/// OPEN.with(|open| open.borrow_mut().push((scope.id(), cx.clone())));
/// assert_eq!(Context::current(), cx);
/// {
///     // Attached after the scope opened: newer.
///     let _guard = Context::new().attach();
///     assert_eq!(Context::current(), Context::new());
/// }
/// assert_eq!(Context::current(), cx);
/// OPEN.with(|open| open.borrow_mut().pop());
/// drop(scope);
/// assert_eq!(Context::current(), Context::new());
/// ```
#[derive(Debug)]
#[must_use = "the scope closes as soon as it drops"]
pub struct ForeignScope {
    id: u64,
    _not_send: PhantomData<*const ()>,
}

impl ForeignScope {
    /// Opens a scope on this thread, newer than every context attached so
    /// far; `resolve` answers for it and for the other open scopes. One
    /// bridge per thread at a time: a scope opened with another resolver
    /// while scopes are open makes it answer for theirs too, which runtrace
    /// reports once through [`crate::diagnostics`].
    #[inline]
    pub fn open(resolve: ForeignResolver) -> ForeignScope {
        let id = next_guard_id();
        let previous = FOREIGN_RESOLVER.replace(Some(resolve));
        if FOREIGN_OPEN.get() != 0 && previous.is_some_and(|p| !std::ptr::fn_addr_eq(p, resolve)) {
            warn_second_resolver();
        }
        FOREIGN_OPEN.set(FOREIGN_OPEN.get() + 1);
        ATTACHED.set(ATTACHED.get() + 1);
        ForeignScope {
            id,
            _not_send: PhantomData,
        }
    }

    /// Its place in this thread's order of contexts: greater than the id of
    /// every scope opened and context attached before it on this thread,
    /// never 0. A resolver returns it with the scope's context.
    #[inline]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether no context attached on this thread since this scope opened
    /// (by a guard, or a frame of a `FutureExt` future's poll or
    /// `Tracer::in_span`) is still attached: then the current context is this
    /// scope's, if it is the bridge's newest and has one. A bridge that knows
    /// that context can use it without asking for the current one.
    #[inline]
    pub fn nothing_attached_since(&self) -> bool {
        if NEWEST_GUARD.get() > self.id {
            return false;
        }
        FRAMES
            .with(|frames| frames.with_top(|frame, _, _| !frame.is_newer_than(self.id)))
            .unwrap_or(true)
    }
}

impl Drop for ForeignScope {
    #[inline]
    fn drop(&mut self) {
        FOREIGN_OPEN.set(FOREIGN_OPEN.get() - 1);
        ATTACHED.set(ATTACHED.get() - 1);
    }
}

/// The id and context of the newest foreign scope that has one, as `resolve`
/// tells, if it is the current context: newer than the newest guard entry
/// (`newest_guard`) and the top frame. `resolve` is asked only for scopes
/// newer than both, so that it looks up nothing it would not use.
#[inline]
fn foreign_current(
    newest_guard: u64,
    resolve: impl FnOnce(u64) -> Option<(u64, Context)>,
) -> Option<(u64, Context)> {
    if FOREIGN_OPEN.get() == 0 {
        return None;
    }
    // A scope is newer than a frame if its id is at least the frame's
    // `since` (the id the next guard was to get when the frame was made).
    let frame = FRAMES
        .with(|frames| frames.with_top(|frame, _, _| frame.since.saturating_sub(1)))
        .unwrap_or(0);
    let older = newest_guard.max(frame);
    // Asked before anything here is borrowed: a resolver may read its
    // library's state, and start a span there.
    resolve(older).filter(|(id, _)| *id > older)
}

static WARN_SECOND_RESOLVER: OnceFlag = OnceFlag::new();

#[cold]
fn warn_second_resolver() {
    if WARN_SECOND_RESOLVER.first() {
        diagnostics::warn(
            "foreign scopes with two resolvers were open on one thread (two bridges, such as two \
             runtrace-tracing versions, entering spans at once): the newer resolver answers for \
             the older one's scopes, whose contexts are then not current",
        );
    }
}

/// What this thread's foreign scopes' resolver answers.
fn resolve_foreign(newer_than: u64) -> Option<(u64, Context)> {
    FOREIGN_RESOLVER.get()?(newer_than)
}

/// Counts a frame out of [`ATTACHED`] when dropped.
struct FrameCount;

impl Drop for FrameCount {
    #[inline]
    fn drop(&mut self) {
        ATTACHED.set(ATTACHED.get() - 1);
    }
}

/// Removes the entry of guard `id`: the last one, or (warning once, unless
/// `any_order`) one further down, which leaves the current context as it is.
fn remove(id: u64, any_order: bool) -> Option<(Context, Option<Box<Option<SpanData>>>)> {
    // try_with: the stack may already be gone during thread teardown.
    let removed = STACK.try_with(|stack| {
        let mut stack = stack.borrow_mut();
        let (entry, position) = if stack.0.last().is_some_and(|last| last.id == id) {
            (stack.0.pop()?, None)
        } else {
            let position = stack.0.iter().rposition(|entry| entry.id == id)?;
            (stack.0.remove(position), Some(position))
        };
        stack.entry_left();
        Some((entry, position.is_some()))
    });
    let (entry, below_the_last) = removed.ok().flatten()?;
    let out_of_order = below_the_last && !any_order;
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
        // The common case, the innermost entry with no span data: dropped
        // where it lies (its context's drop runs no code that reads the
        // stack), not moved out as `remove` hands entries back.
        let dropped = STACK.try_with(|stack| {
            let mut stack = stack.borrow_mut();
            let len = stack.0.len();
            match stack.0.last() {
                Some(last) if last.id == self.id && last.span.is_none() => {
                    stack.0.truncate(len - 1);
                    stack.entry_left();
                    true
                }
                _ => false,
            }
        });
        if dropped != Ok(true) {
            drop(remove(self.id, self.any_order));
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
    fn a_frame_is_current_until_a_guard_attaches_over_it() {
        let g1 = cx(1).attach();
        let mut framed = cx(2);
        framed.attached_while(|| {
            assert_eq!(Context::current(), cx(2));
            let g3 = cx(3).attach();
            assert_eq!(Context::current(), cx(3));
            // Out of order, below the frame: the guard above it stays newer.
            drop(g1);
            assert_eq!(Context::current(), cx(3));
            drop(g3);
            assert_eq!(Context::current(), cx(2));
            // A guard attached in the frame and kept past it (a guard held
            // across an `.await`) stays current after the frame.
            std::mem::forget(cx(4).attach());
        });
        assert_eq!(framed, cx(2));
        assert_eq!(Context::current(), cx(4));
        STACK.with(|stack| stack.borrow_mut().0.clear());
        NEWEST_GUARD.set(0);
        ATTACHED.set(0);
        assert_eq!(Context::current(), Context::new());
    }

    #[test]
    fn a_guard_attached_in_a_frame_is_newer_after_an_older_guard_left() {
        let g = cx(1).attach();
        let mut framed = cx(2);
        framed.attached_while(move || {
            // The older guard leaves in the frame (a guard held across an
            // `.await` in an `in_span` future, dropped at a later poll).
            drop(g);
            assert_eq!(Context::current(), cx(2));
            let h = cx(3).attach();
            assert_eq!(Context::current(), cx(3));
            drop(h);
            assert_eq!(Context::current(), cx(2));
        });
        assert!(!Context::any_attached());
    }

    #[test]
    fn guard_ids_grow_across_a_new_tag() {
        let first = next_guard_id();
        NEXT_GUARD.set((first | COUNT_MASK) - 1);
        let last_of_tag = next_guard_id();
        let next = next_guard_id();
        assert!(first < last_of_tag && last_of_tag < next);
        assert_eq!(next & COUNT_MASK, 0, "a new tag's first id");
        assert_ne!(next >> TAG_SHIFT, first >> TAG_SHIFT);
    }

    #[test]
    fn frames_nest_over_guards_and_each_other() {
        let mut outer = cx(5);
        outer.attached_while(|| {
            let g = cx(6).attach();
            let mut inner = cx(7);
            inner.attached_while(|| assert_eq!(Context::current(), cx(7)));
            assert_eq!(Context::current(), cx(6));
            drop(g);
            assert_eq!(Context::current(), cx(5));
        });
        assert!(!Context::any_attached());
    }

    thread_local! {
        /// The test bridge's open scopes: id and context (`None`: it keeps
        /// none for that scope), oldest first.
        static BRIDGE: RefCell<Vec<(u64, Option<Context>)>> = const { RefCell::new(Vec::new()) };
    }

    /// The test bridge's resolver: its newest scope with a context.
    fn bridge(newer_than: u64) -> Option<(u64, Context)> {
        BRIDGE.with(|open| {
            open.borrow()
                .iter()
                .rev()
                .take_while(|(id, _)| *id > newer_than)
                .find_map(|(id, cx)| Some((*id, cx.clone()?)))
        })
    }

    fn open(cx: Option<Context>) -> ForeignScope {
        let scope = ForeignScope::open(bridge);
        BRIDGE.with(|open| open.borrow_mut().push((scope.id(), cx)));
        scope
    }

    fn close(scope: ForeignScope) {
        BRIDGE.with(|open| open.borrow_mut().retain(|(id, _)| *id != scope.id()));
    }

    #[test]
    fn foreign_scopes_take_their_place_among_guards_and_frames() {
        let g1 = cx(1).attach();
        let s2 = open(Some(cx(2)));
        assert!(s2.id() > 0);
        assert_eq!(Context::current(), cx(2));
        let g3 = cx(3).attach();
        assert_eq!(Context::current(), cx(3));
        let mut framed = cx(4);
        framed.attached_while(|| {
            assert_eq!(Context::current(), cx(4));
            // Opened in the frame: newer than it.
            let s5 = open(Some(cx(5)));
            assert_eq!(Context::current(), cx(5));
            close(s5);
            assert_eq!(Context::current(), cx(4));
        });
        drop(g3);
        assert_eq!(Context::current(), cx(2));
        // Closed out of order, under a newer scope.
        let s6 = open(Some(cx(6)));
        close(s2);
        assert_eq!(Context::current(), cx(6));
        close(s6);
        assert_eq!(Context::current(), cx(1));
        drop(g1);
        assert!(!Context::any_attached());
        assert_eq!(Context::current(), Context::new());
    }

    #[test]
    fn a_foreign_scope_without_a_context_leaves_the_one_below_current() {
        let g1 = cx(1).attach();
        let s2 = open(Some(cx(2)));
        let s3 = open(None);
        assert_eq!(Context::current(), cx(2));
        let g4 = cx(4).attach();
        let s5 = open(None);
        // The bridge's newest scope with a context is older than the guard.
        assert_eq!(Context::current(), cx(4));
        assert_eq!(
            Context::current_resolving(|_| Some((s5.id(), cx(9)))),
            cx(9),
            "the caller's resolver answers instead of the scopes'"
        );
        assert!(!s3.nothing_attached_since() && s5.nothing_attached_since());
        close(s5);
        drop(g4);
        assert!(s3.nothing_attached_since());
        let mut framed = cx(7);
        framed.attached_while(|| assert!(!s3.nothing_attached_since()));
        close(s3);
        close(s2);
        assert_eq!(Context::current(), cx(1));
        drop(g1);
        assert!(!Context::any_attached());
    }

    thread_local! {
        /// The bounds the counting resolver was asked with.
        static ASKED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    }

    fn counting(newer_than: u64) -> Option<(u64, Context)> {
        ASKED.with(|asked| asked.borrow_mut().push(newer_than));
        bridge(newer_than)
    }

    #[test]
    fn the_resolver_is_asked_only_for_scopes_newer_than_the_top_frame() {
        let s1 = ForeignScope::open(counting);
        BRIDGE.with(|open| open.borrow_mut().push((s1.id(), Some(cx(1)))));
        let mut framed = cx(2);
        framed.attached_while(|| {
            assert_eq!(Context::current(), cx(2));
            // Asked for nothing as old as the scope, which it would have had
            // to look up for nothing.
            let bound = ASKED.with(|asked| asked.borrow_mut().pop()).unwrap();
            assert!(bound >= s1.id(), "asked for scopes newer than {bound}");
            let s3 = open(Some(cx(3)));
            assert_eq!(Context::current(), cx(3));
            close(s3);
        });
        assert_eq!(Context::current(), cx(1));
        close(s1);
        assert!(!Context::any_attached());
    }

    #[test]
    fn a_second_resolver_on_one_thread_is_reported_once() {
        let warnings = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = warnings.clone();
        diagnostics::set_handler(move |_, message| seen.lock().unwrap().push(message.to_string()));
        let s1 = open(Some(cx(1)));
        let s2 = ForeignScope::open(counting);
        let s3 = ForeignScope::open(counting);
        drop((s3, s2));
        close(s1);
        diagnostics::reset_handler();
        let warnings = warnings.lock().unwrap();
        assert_eq!(
            warnings
                .iter()
                .filter(|w| w.contains("two resolvers"))
                .count(),
            1,
            "{warnings:?}"
        );
    }

    #[test]
    fn a_resolver_answer_older_than_the_newest_guard_is_not_current() {
        let s1 = open(Some(cx(1)));
        let g2 = cx(2).attach();
        // A resolver that ignores its bound.
        assert_eq!(
            Context::current_resolving(|_| Some((s1.id(), cx(1)))),
            cx(2)
        );
        drop(g2);
        close(s1);
        assert!(!Context::any_attached());
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
