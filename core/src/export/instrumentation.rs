//! [`Instrumentation`]: the scope and resource that every span of one tracer
//! shares, behind a reference count.
//!
//! Every recorded span holds a counted reference to its tracer's scope, taken
//! on the application thread and given back by the batch worker after export.
//! With `Arc`, the worker's decrements (one per span, an atomic operation on a
//! cache line the application threads keep taking back) were the largest part
//! of its work per span. So the count here is our own, and the worker merges
//! the references of consecutive spans of one scope into a [`ScopeRun`] that
//! gives them back with one atomic operation.
//!
//! Application threads do the same on their side: a span start takes its
//! count from the thread's own credits ([`Instrumentation::clone_for_span`]),
//! which are counts the thread took in bulk ([`CREDIT_BATCH`] at a time) and
//! gives back when it starts spans of other scopes or exits. So threads that
//! start spans of one scope together no longer write its count at every span.

use super::InstrumentationScope;
use crate::resource::Resource;
use std::cell::Cell;
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Arc;

/// Beyond this many counts something leaks references: abort, as `Arc` does.
const MAX_REFS: usize = isize::MAX as usize;

/// How many counts a thread takes at once for the spans it starts.
pub(crate) const CREDIT_BATCH: usize = 64;

/// Credits of one thread: counts it owns on one scope and has not handed to a
/// reference yet.
type Credits = (Option<NonNull<Counted>>, usize);

thread_local! {
    /// This thread's credits on the scope it started a span of most recently.
    static CREDITS: Cell<Credits> = const { Cell::new((None, 0)) };
    /// Its credits on the scope before that, so that spans of two tracers
    /// nested in each other do not trade credits back and forth.
    static OLDER_CREDITS: Cell<Credits> = const { Cell::new((None, 0)) };
    /// Gives the credits back when the thread exits. Registered by the first
    /// refill; the fast path touches only `CREDITS`, which needs no destructor.
    static CREDITS_GUARD: CreditsGuard = const { CreditsGuard };
}

struct CreditsGuard;

impl Drop for CreditsGuard {
    fn drop(&mut self) {
        for (ptr, n) in [CREDITS.replace((None, 0)), OLDER_CREDITS.replace((None, 0))] {
            if let (Some(ptr), 1..) = (ptr, n) {
                // SAFETY: the thread owned these `n` counts and forgets them here.
                unsafe { ScopeRef::release(ptr, n) }
            }
        }
    }
}

/// The scope and resource of a span, shared by every span of one tracer.
/// Cloning it is cheap (a reference count).
#[derive(Clone)]
pub struct Instrumentation(pub(crate) ScopeRef);

pub(crate) struct InstrumentationInner {
    pub(crate) scope: InstrumentationScope,
    pub(crate) resource: Arc<Resource>,
    /// The provider whose processors receive the spans; `None` for hand-built data.
    pub(crate) pipeline: Option<Arc<crate::trace::Pipeline>>,
}

impl Instrumentation {
    /// A scope and resource not tied to a provider, for building
    /// [`SpanData`](super::SpanData) by hand (exporter tests).
    pub fn new(scope: InstrumentationScope, resource: Arc<Resource>) -> Self {
        Self::from_inner(InstrumentationInner {
            scope,
            resource,
            pipeline: None,
        })
    }

    pub(crate) fn from_inner(inner: InstrumentationInner) -> Self {
        Instrumentation(ScopeRef::new(inner))
    }

    /// The instrumentation scope.
    pub fn scope(&self) -> &InstrumentationScope {
        &self.0.scope
    }

    /// The resource.
    pub fn resource(&self) -> &Arc<Resource> {
        &self.0.resource
    }

    /// `true` if both handles share the same scope and resource object.
    pub fn ptr_eq(&self, other: &Instrumentation) -> bool {
        self.0 .0 == other.0 .0
    }

    /// Another reference, for a span this thread starts: like `clone`, but the
    /// count comes from the thread's credits, so the shared count is written
    /// once per [`CREDIT_BATCH`] spans instead of at every span. A thread keeps
    /// the scope alive while it holds credits on it: until it exits, or until
    /// it has started spans of two other scopes since.
    #[inline]
    pub(crate) fn clone_for_span(&self) -> Instrumentation {
        let ptr = self.0 .0;
        match CREDITS.get() {
            (Some(p), n @ 1..) if p == ptr => CREDITS.set((Some(p), n - 1)),
            _ => self.0.take_credit(ptr),
        }
        Instrumentation(ScopeRef(ptr))
    }
}

impl fmt::Debug for Instrumentation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumentation")
            .field("scope", &self.0.scope)
            .field("resource", &self.0.resource)
            .finish()
    }
}

/// The allocation behind a [`ScopeRef`].
struct Counted {
    refs: RefCount,
    inner: InstrumentationInner,
}

/// The count, on cache lines of its own: every span start writes it, and every
/// span reads the scope's other fields, which would otherwise share its line
/// and miss whenever another thread (an application thread, or the worker
/// giving counts back) has just written the count.
#[repr(align(128))]
struct RefCount(AtomicUsize);

/// A counted shared reference to an [`InstrumentationInner`], like
/// `Arc<InstrumentationInner>`, whose count can also change by more than one
/// at a time.
pub(crate) struct ScopeRef(NonNull<Counted>);

// SAFETY: a `ScopeRef` is a shared reference to an `InstrumentationInner`
// (which is `Send + Sync`, checked below) with an atomic count, as an `Arc` is.
unsafe impl Send for ScopeRef {}
// SAFETY: as above.
unsafe impl Sync for ScopeRef {}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<InstrumentationInner>();
};

impl ScopeRef {
    fn new(inner: InstrumentationInner) -> Self {
        let counted = Box::new(Counted {
            refs: RefCount(AtomicUsize::new(1)),
            inner,
        });
        ScopeRef(NonNull::from(Box::leak(counted)))
    }

    fn counted(&self) -> &Counted {
        // SAFETY: `self` owns one count, so the allocation lives as long as it.
        unsafe { self.0.as_ref() }
    }

    /// Takes `n` more counts. Relaxed, as in `Arc::clone`: new references are
    /// made from one that already keeps the allocation alive.
    fn acquire(&self, n: usize) {
        if self.counted().refs.0.fetch_add(n, Ordering::Relaxed) > MAX_REFS {
            std::process::abort();
        }
    }

    /// The slow path of [`Instrumentation::clone_for_span`]: takes one count
    /// on `ptr` (this reference's allocation) from the thread's older credits,
    /// or takes [`CREDIT_BATCH`] more counts; the scope becomes the most recent
    /// one, and the credits this displaces are given back.
    #[inline(never)]
    fn take_credit(&self, ptr: NonNull<Counted>) {
        // The guard gives the credits back at thread exit; once it is gone
        // (the thread is exiting), take just the one count.
        if CREDITS_GUARD.try_with(|_| ()).is_err() {
            self.acquire(1);
            return;
        }
        let recent = CREDITS.get();
        let older = OLDER_CREDITS.get();
        let (now, keep, displaced) = match older {
            // The older scope's turn again: the two swap.
            (Some(p), n @ 1..) if p == ptr => ((older.0, n - 1), recent, None),
            _ => {
                self.acquire(CREDIT_BATCH);
                let now = (Some(ptr), CREDIT_BATCH - 1);
                if recent.0 == Some(ptr) {
                    // The recent scope's credits ran out: the older one stays.
                    (now, older, None)
                } else {
                    // A third scope: the older one's credits go back.
                    (now, recent, Some(older))
                }
            }
        };
        CREDITS.set(now);
        OLDER_CREDITS.set(keep);
        if let Some((Some(old), n @ 1..)) = displaced {
            // SAFETY: the thread owned these counts and no longer lists them.
            unsafe { Self::release(old, n) }
        }
    }

    /// Gives up `n` counts on `ptr`, and frees it if they were the last.
    ///
    /// # Safety
    ///
    /// The caller owns `n` counts on `ptr` and does not use them afterwards.
    unsafe fn release(ptr: NonNull<Counted>, n: usize) {
        // SAFETY: the caller's counts keep the allocation alive until the
        // `fetch_sub` below gives them up.
        let counted = unsafe { ptr.as_ref() };
        // Release: our uses of the scope happen before whoever frees it.
        if counted.refs.0.fetch_sub(n, Ordering::Release) != n {
            return;
        }
        // Acquire: every other reference's uses happen before the free.
        fence(Ordering::Acquire);
        // SAFETY: those were the last counts, so no reference to the allocation
        // is left; `ScopeRef::new` made it with `Box`.
        drop(unsafe { Box::from_raw(ptr.as_ptr()) });
    }
}

impl Deref for ScopeRef {
    type Target = InstrumentationInner;

    fn deref(&self) -> &InstrumentationInner {
        &self.counted().inner
    }
}

impl Clone for ScopeRef {
    fn clone(&self) -> Self {
        self.acquire(1);
        ScopeRef(self.0)
    }
}

impl Drop for ScopeRef {
    fn drop(&mut self) {
        // SAFETY: `self` owns one count and is gone after this.
        unsafe { Self::release(self.0, 1) }
    }
}

/// References to one scope merged into one value: dropping it gives all their
/// counts back with one atomic operation (two, with the first reference's).
pub(crate) struct ScopeRun {
    first: Instrumentation,
    /// Counts of the references merged after the first (forgotten, so their
    /// counts now belong to the run).
    merged: usize,
}

impl ScopeRun {
    pub(crate) fn new(first: Instrumentation) -> Self {
        ScopeRun { first, merged: 0 }
    }

    /// Drops `refs`, giving the counts of consecutive references to one scope
    /// back together.
    #[cfg(test)]
    fn release_all(refs: impl IntoIterator<Item = Instrumentation>) {
        let mut run = None;
        for r in refs {
            ScopeRun::extend(&mut run, r);
        }
    }

    /// Merges `r` into `run`, or starts a new run with it: dropping the
    /// previous run gives its counts back.
    pub(crate) fn extend(run: &mut Option<ScopeRun>, r: Instrumentation) {
        let r = match run {
            Some(current) => match current.merge(r) {
                Ok(()) => return,
                Err(r) => r,
            },
            None => r,
        };
        *run = Some(ScopeRun::new(r));
    }

    /// Merges `next` into the run if it refers to the same scope; otherwise
    /// hands it back.
    pub(crate) fn merge(&mut self, next: Instrumentation) -> Result<(), Instrumentation> {
        if !next.ptr_eq(&self.first) {
            return Err(next);
        }
        std::mem::forget(next);
        self.merged += 1;
        Ok(())
    }
}

impl Drop for ScopeRun {
    fn drop(&mut self) {
        if self.merged > 0 {
            // SAFETY: `merge` forgot `merged` references to this scope, whose
            // counts the run owns; `first` (dropped after this) keeps the
            // allocation alive, so this cannot free it.
            unsafe { ScopeRef::release(self.first.0 .0, self.merged) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn the_count_has_cache_lines_of_its_own() {
        // Written at every span start by any thread; the scope's other fields,
        // read at every span, must not share its lines (x86-64 fetches pairs).
        assert_eq!(std::mem::align_of::<RefCount>(), 128);
        assert_eq!(std::mem::size_of::<RefCount>(), 128);
    }

    /// A scope whose resource tells, by its count, whether the scope is alive.
    fn scope(name: &'static str) -> (Instrumentation, Arc<Resource>) {
        let resource = Arc::new(Resource::empty());
        let inst = Instrumentation::new(InstrumentationScope::new(name), resource.clone());
        (inst, resource)
    }

    fn alive(resource: &Arc<Resource>) -> bool {
        Arc::strong_count(resource) > 1
    }

    fn count(inst: &Instrumentation) -> usize {
        inst.0.counted().refs.0.load(Ordering::Relaxed)
    }

    #[test]
    fn clones_share_the_scope_and_the_last_drop_frees_it() {
        let (a, resource) = scope("a");
        let b = a.clone();
        assert!(a.ptr_eq(&b) && count(&a) == 2);
        assert_eq!(b.scope().name, "a");
        assert!(Arc::ptr_eq(b.resource(), &resource));
        drop(a);
        assert!(alive(&resource));
        drop(b);
        assert!(!alive(&resource));
    }

    #[test]
    fn a_run_gives_back_exactly_the_counts_it_merged() {
        let (a, res_a) = scope("a");
        let (b, res_b) = scope("b");
        let mut run = ScopeRun::new(a.clone());
        for _ in 0..10 {
            assert!(run.merge(a.clone()).is_ok());
        }
        let other = run
            .merge(b.clone())
            .expect_err("another scope is handed back");
        assert!(other.ptr_eq(&b));
        assert_eq!(count(&a), 12);
        drop(run);
        assert_eq!(count(&a), 1);
        // Interleaved scopes make several runs.
        let refs = [&a, &a, &b, &a, &b, &b].map(Instrumentation::clone);
        assert_eq!((count(&a), count(&b)), (4, 5));
        ScopeRun::release_all(refs);
        assert_eq!((count(&a), count(&b)), (1, 2));
        drop(other);
        assert_eq!(count(&b), 1);
        // A run may hold the last references: dropping it frees the scope.
        let mut run = ScopeRun::new(a.clone());
        run.merge(a).unwrap();
        assert!(alive(&res_a));
        drop(run);
        assert!(!alive(&res_a));
        drop(b);
        assert!(!alive(&res_b));
    }

    #[test]
    fn span_references_come_from_thread_credits_given_back_at_exit() {
        let (a, res_a) = scope("a");
        let a2 = a.clone();
        let (b, res_b) = scope("b");
        let (c, res_c) = scope("c");
        thread::spawn(move || {
            // The first span reference takes a batch of counts, one of which
            // it keeps; the next ones use the rest without touching the count.
            let first = a.clone_for_span();
            assert!(first.ptr_eq(&a));
            assert_eq!(count(&a), 2 + CREDIT_BATCH);
            let more: Vec<_> = (1..CREDIT_BATCH).map(|_| a.clone_for_span()).collect();
            assert_eq!(count(&a), 2 + CREDIT_BATCH, "from credits");
            // Credits used up: another batch.
            let next = a.clone_for_span();
            assert_eq!(count(&a), 2 + 2 * CREDIT_BATCH);
            drop((first, more, next));
            assert_eq!(
                count(&a),
                2 + CREDIT_BATCH - 1,
                "the thread still holds credits"
            );
            // Two scopes alternating keep their credits.
            drop(b.clone_for_span());
            drop(a.clone_for_span());
            drop(b.clone_for_span());
            assert_eq!(count(&a), 2 + CREDIT_BATCH - 2);
            assert_eq!(count(&b), 1 + CREDIT_BATCH - 2);
            // Using up the recent scope's credits keeps the older one's.
            let used: Vec<_> = (0..CREDIT_BATCH).map(|_| a.clone_for_span()).collect();
            assert_eq!(count(&a), 2 + CREDIT_BATCH + CREDIT_BATCH - 2);
            assert_eq!(count(&b), 1 + CREDIT_BATCH - 2, "b's credits kept");
            drop(used);
            assert_eq!(count(&a), 2 + CREDIT_BATCH - 2);
            // A third scope displaces the least recent one's credits (b's).
            drop(c.clone_for_span());
            assert_eq!(count(&b), 1, "b's credits given back");
            assert_eq!(count(&a), 2 + CREDIT_BATCH - 2);
            drop((a, b, c));
        })
        .join()
        .unwrap();
        // The thread's exit gave its remaining credits back (a's and c's),
        // freeing b and c.
        assert_eq!(count(&a2), 1);
        assert!(!alive(&res_b) && !alive(&res_c));
        drop(a2);
        assert!(!alive(&res_a));
    }

    #[test]
    fn span_references_on_many_threads_balance_the_count() {
        let (inst, resource) = scope("credits");
        // Joined by handle: a scoped thread counts as done before its
        // thread-local destructors (which give the credits back) have run.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let inst = inst.clone();
                thread::spawn(move || {
                    let refs: Vec<_> = (0..1000).map(|_| inst.clone_for_span()).collect();
                    ScopeRun::release_all(refs);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(count(&inst), 1);
        drop(inst);
        assert!(!alive(&resource));
    }

    #[test]
    fn references_dropped_on_other_threads_balance_the_count() {
        let (inst, resource) = scope("stress");
        let (tx, rx) = std::sync::mpsc::channel::<Vec<Instrumentation>>();
        // Half the batches are dropped one by one, half through runs.
        let dropper = thread::spawn(move || {
            for (i, batch) in rx.into_iter().enumerate() {
                if i % 2 == 0 {
                    drop(batch);
                } else {
                    ScopeRun::release_all(batch);
                }
            }
        });
        thread::scope(|s| {
            for _ in 0..4 {
                let (inst, tx) = (&inst, tx.clone());
                s.spawn(move || {
                    for _ in 0..100 {
                        tx.send((0..100).map(|_| inst.clone()).collect()).unwrap();
                    }
                });
            }
        });
        drop(tx);
        dropper.join().unwrap();
        assert_eq!(count(&inst), 1);
        drop(inst);
        assert!(!alive(&resource));
    }
}
