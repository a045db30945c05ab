//! [`CountedRef`]: a shared reference like `Arc`, built for taking one
//! reference per span and giving them back in bulk.
//!
//! Every recorded span holds a reference to its tracer's scope, taken on the
//! application thread and given back by the batch worker after export. With
//! `Arc`, both sides write one shared count at every span, a cache line that
//! moves between cores each time. Two classic techniques avoid that:
//!
//! - **Biased reference counting** on the taking side: a thread takes counts
//!   in bulk ([`CREDIT_BATCH`] at a time) and hands them to new references one
//!   by one from a thread-local stock, its *credits*
//!   ([`CountedRef::clone_biased`]). A thread keeps credits on the two values
//!   it used last and gives them back when it uses a third one or exits.
//! - **Batched release** on the giving side: consecutive references to one
//!   value merge into a [`RefRun`], which gives all their counts back with one
//!   atomic operation.
//!
//! The count lies on cache lines of its own, apart from the value that every
//! span reads. The allocation starts with a type-independent [`Header`], so the
//! thread-local credits can name values of any type.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::thread::LocalKey;

/// Beyond this many counts something leaks references: abort, as `Arc` does.
const MAX_REFS: usize = isize::MAX as usize;

/// How many counts a thread takes at once for the references it makes.
pub(crate) const CREDIT_BATCH: usize = 64;

/// At most this many credits on one value are kept from references given up
/// by [`CountedRef::drop_biased_in`]; beyond it they go back to the shared count,
/// so a thread that drops more references than it takes holds no pile.
const MAX_HELD_CREDITS: usize = 2 * CREDIT_BATCH;

/// The start of every counted allocation, whatever the value's type: the
/// count, and how to free the allocation when the count reaches zero.
#[repr(C)]
struct Header {
    refs: RefCount,
    /// Frees the allocation that starts with this header ([`free`]).
    free: unsafe fn(NonNull<Header>),
}

/// The count, on cache lines of its own: references are taken on any thread,
/// and the value beside it is read at every span (x86-64 fetches lines in
/// pairs, hence 128 bytes).
#[repr(align(128))]
struct RefCount(AtomicUsize);

/// The allocation behind a [`CountedRef`]; the header comes first, so a
/// pointer to the allocation is a pointer to its header.
#[repr(C)]
struct Counted<T> {
    header: Header,
    value: T,
}

/// Credits of one thread: counts it owns on one allocation and has not handed
/// to a reference yet.
type Credits = (Option<NonNull<Header>>, usize);

/// The stock of credits for spans' references to their scope.
pub(crate) const SCOPES: usize = 0;
/// The stock of credits for tracers handed out per call (`global::tracer`):
/// apart from the scopes', so that neither displaces the other's credits.
pub(crate) const TRACERS: usize = 1;

thread_local! {
    /// This thread's credits on the value it referenced most recently.
    static CREDITS: Cell<Credits> = const { Cell::new((None, 0)) };
    /// Its credits on the value before that, so that references to two values
    /// taken in turn (spans of two tracers nested in each other) do not trade
    /// credits back and forth.
    static OLDER_CREDITS: Cell<Credits> = const { Cell::new((None, 0)) };
    /// The same two for the [`TRACERS`] stock.
    static TRACER_CREDITS: Cell<Credits> = const { Cell::new((None, 0)) };
    static OLDER_TRACER_CREDITS: Cell<Credits> = const { Cell::new((None, 0)) };
    /// Gives the credits back when the thread exits. Registered by the first
    /// refill; the fast path touches only `CREDITS`, which needs no destructor.
    static CREDITS_GUARD: CreditsGuard = const { CreditsGuard };
}

struct CreditsGuard;

impl Drop for CreditsGuard {
    fn drop(&mut self) {
        // All emptied before any is released: a value freed here may drop
        // references of its own, which then find no credits on them.
        let [recent, older] = slots::<SCOPES>();
        let [tracer_recent, tracer_older] = slots::<TRACERS>();
        let taken = [recent, older, tracer_recent, tracer_older].map(|c| c.replace((None, 0)));
        for credits in taken {
            if let (Some(ptr), n @ 1..) = credits {
                // SAFETY: the thread owned these `n` counts and forgets them here.
                unsafe { release(ptr, n) }
            }
        }
    }
}

/// The two credit slots (most recent value, the one before) of stock `S`.
#[inline(always)]
fn slots<const S: usize>() -> [&'static LocalKey<Cell<Credits>>; 2] {
    if S == TRACERS {
        [&TRACER_CREDITS, &OLDER_TRACER_CREDITS]
    } else {
        [&CREDITS, &OLDER_CREDITS]
    }
}

/// A counted shared reference to a `T`, like `Arc<T>`, whose count can also
/// change by more than one at a time.
pub(crate) struct CountedRef<T: Send + Sync + 'static> {
    ptr: NonNull<Counted<T>>,
    _owns: PhantomData<Counted<T>>,
}

// SAFETY: a `CountedRef` is a shared reference to a `T` with an atomic count,
// as an `Arc` is: sending or sharing it shares the `T`, which is `Send + Sync`.
unsafe impl<T: Send + Sync + 'static> Send for CountedRef<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync + 'static> Sync for CountedRef<T> {}

impl<T: Send + Sync + 'static> CountedRef<T> {
    /// A new allocation holding `value`, with this one reference.
    pub(crate) fn new(value: T) -> Self {
        let counted = Box::new(Counted {
            header: Header {
                refs: RefCount(AtomicUsize::new(1)),
                free: free::<T>,
            },
            value,
        });
        Self::from_ptr(NonNull::from(Box::leak(counted)))
    }

    fn from_ptr(ptr: NonNull<Counted<T>>) -> Self {
        CountedRef {
            ptr,
            _owns: PhantomData,
        }
    }

    fn header(&self) -> NonNull<Header> {
        self.ptr.cast()
    }

    fn counted(&self) -> &Counted<T> {
        // SAFETY: `self` owns one count, so the allocation lives as long as it.
        unsafe { self.ptr.as_ref() }
    }

    /// `true` if both refer to the same allocation.
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }

    /// Takes `n` more counts. Relaxed, as in `Arc::clone`: new references are
    /// made from one that already keeps the allocation alive.
    fn acquire(&self, n: usize) {
        if self.counted().header.refs.0.fetch_add(n, Ordering::Relaxed) > MAX_REFS {
            std::process::abort();
        }
    }

    /// Another reference, like `clone`, whose count comes from this thread's
    /// credits: the shared count is written once per [`CREDIT_BATCH`]
    /// references instead of at every one. A thread keeps the value alive
    /// while it holds credits on it: until it exits, or until it has taken
    /// references to two other values since.
    #[inline]
    pub(crate) fn clone_biased(&self) -> Self {
        self.clone_biased_in::<SCOPES>()
    }

    /// [`clone_biased`](Self::clone_biased) from stock `S` ([`SCOPES`] or
    /// [`TRACERS`]).
    #[inline]
    pub(crate) fn clone_biased_in<const S: usize>(&self) -> Self {
        let header = self.header();
        let [recent, _] = slots::<S>();
        match recent.get() {
            (Some(p), n @ 1..) if p == header => recent.set((Some(p), n - 1)),
            _ => self.take_credit(header, slots::<S>()),
        }
        Self::from_ptr(self.ptr)
    }

    /// Gives this reference up like `drop`, but into the thread's credits of
    /// stock `S` when they are on the same value (up to [`MAX_HELD_CREDITS`]):
    /// then no atomic operation, and the next [`clone_biased_in`] takes the
    /// count back. A value cloned and dropped per call on one thread (a tracer
    /// fetched per request) so costs no write to the shared count at all.
    ///
    /// [`clone_biased_in`]: Self::clone_biased_in
    #[inline]
    pub(crate) fn drop_biased_in<const S: usize>(self) {
        let header = self.header();
        std::mem::forget(self);
        // Only a thread whose credits guard is alive has a value named in its
        // credits (the guard clears them when it drops), so these counts are
        // given back at thread exit like the others. Each slot named as it is
        // (a loop over the two keys calls their accessors indirectly).
        let [recent, older] = slots::<S>();
        if !recent.with(|c| give_credit(c, header)) && !older.with(|c| give_credit(c, header)) {
            // SAFETY: `self` owned one count and was forgotten above.
            unsafe { release(header, 1) }
        }
    }

    /// Gives back the credits this thread holds on this value (counts taken
    /// by [`clone_biased`] or kept by [`drop_biased`]), so that the value is
    /// freed as soon as its last reference drops.
    ///
    /// [`clone_biased`]: Self::clone_biased
    /// [`drop_biased`]: Self::drop_biased_in
    pub(crate) fn release_thread_credits(&self) {
        let header = self.header();
        for credits in slots::<SCOPES>().into_iter().chain(slots::<TRACERS>()) {
            if let (Some(p), n) = credits.get() {
                if p == header {
                    credits.set((None, 0));
                    if n > 0 {
                        // SAFETY: the thread owned these `n` counts and no
                        // longer lists them; `self` keeps the value alive.
                        unsafe { release(p, n) }
                    }
                }
            }
        }
    }

    /// The slow path of [`clone_biased`](Self::clone_biased): takes one count
    /// on `ptr` (this reference's allocation) from the thread's older credits,
    /// or takes [`CREDIT_BATCH`] more counts; the value becomes the most
    /// recent one, and the credits this displaces are given back.
    #[inline(never)]
    fn take_credit(&self, ptr: NonNull<Header>, slots: [&'static LocalKey<Cell<Credits>>; 2]) {
        let [recent_slot, older_slot] = slots;
        // The guard gives the credits back at thread exit; once it is gone
        // (the thread is exiting), take just the one count.
        if CREDITS_GUARD.try_with(|_| ()).is_err() {
            self.acquire(1);
            return;
        }
        let recent = recent_slot.get();
        let older = older_slot.get();
        let (now, keep, displaced) = match older {
            // The older value's turn again: the two swap.
            (Some(p), n @ 1..) if p == ptr => ((older.0, n - 1), recent, None),
            _ => {
                self.acquire(CREDIT_BATCH);
                let now = (Some(ptr), CREDIT_BATCH - 1);
                if recent.0 == Some(ptr) {
                    // The recent value's credits ran out: the older one stays.
                    (now, older, None)
                } else {
                    // A third value: the older one's credits go back.
                    (now, recent, Some(older))
                }
            }
        };
        recent_slot.set(now);
        older_slot.set(keep);
        if let Some((Some(old), n @ 1..)) = displaced {
            // SAFETY: the thread owned these counts and no longer lists them.
            unsafe { release(old, n) }
        }
    }

    /// The count now (tests only: it changes under other threads).
    #[cfg(test)]
    fn count(&self) -> usize {
        self.counted().header.refs.0.load(Ordering::Relaxed)
    }
}

/// Adds one count on `ptr` to `credits` if they are credits on `ptr` and not
/// yet [`MAX_HELD_CREDITS`]; `false` otherwise.
#[inline(always)]
fn give_credit(credits: &Cell<Credits>, ptr: NonNull<Header>) -> bool {
    match credits.get() {
        (Some(p), n) if p == ptr && n < MAX_HELD_CREDITS => {
            credits.set((Some(p), n + 1));
            true
        }
        _ => false,
    }
}

/// Frees the allocation of a `Counted<T>` that starts with `header`.
///
/// # Safety
///
/// `header` is the start of a `Counted<T>` made by [`CountedRef::new`] whose
/// count has reached zero: no reference to it is left.
unsafe fn free<T>(header: NonNull<Header>) {
    // SAFETY: per the contract, the allocation is a `Counted<T>` made with
    // `Box` (the header is its first field), and nothing refers to it any more.
    drop(unsafe { Box::from_raw(header.cast::<Counted<T>>().as_ptr()) });
}

/// Gives up `n` counts on the allocation starting at `ptr`, and frees it if
/// they were the last.
///
/// # Safety
///
/// The caller owns `n` counts on `ptr` and does not use them afterwards.
unsafe fn release(ptr: NonNull<Header>, n: usize) {
    // SAFETY: the caller's counts keep the allocation alive until the
    // `fetch_sub` below gives them up.
    let header = unsafe { ptr.as_ref() };
    // Release: our uses of the value happen before whoever frees it.
    if header.refs.0.fetch_sub(n, Ordering::Release) != n {
        return;
    }
    // Acquire: every other reference's uses happen before the free.
    fence(Ordering::Acquire);
    let free = header.free;
    // SAFETY: those were the last counts, so no reference to the allocation is
    // left, and `free` is the function `CountedRef::new` stored for its type.
    unsafe { free(ptr) }
}

impl<T: Send + Sync + 'static> Deref for CountedRef<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.counted().value
    }
}

impl<T: Send + Sync + 'static> Clone for CountedRef<T> {
    fn clone(&self) -> Self {
        self.acquire(1);
        Self::from_ptr(self.ptr)
    }
}

impl<T: Send + Sync + 'static> Drop for CountedRef<T> {
    fn drop(&mut self) {
        // SAFETY: `self` owns one count and is gone after this.
        unsafe { release(self.header(), 1) }
    }
}

impl<T: Send + Sync + fmt::Debug + 'static> fmt::Debug for CountedRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// References to one value merged into one: dropping the run gives all their
/// counts back with one atomic operation (two, with the first reference's).
pub(crate) struct RefRun<T: Send + Sync + 'static> {
    first: CountedRef<T>,
    /// Counts of the references merged after the first (forgotten, so their
    /// counts now belong to the run).
    merged: usize,
}

impl<T: Send + Sync + 'static> RefRun<T> {
    fn new(first: CountedRef<T>) -> Self {
        RefRun { first, merged: 0 }
    }

    /// Merges `r` into `run`, or starts a new run with it: dropping the
    /// previous run gives its counts back.
    pub(crate) fn extend(run: &mut Option<Self>, r: CountedRef<T>) {
        let r = match run {
            Some(current) => match current.merge(r) {
                Ok(()) => return,
                Err(r) => r,
            },
            None => r,
        };
        *run = Some(RefRun::new(r));
    }

    /// Merges `next` into the run if it refers to the same value; otherwise
    /// hands it back.
    fn merge(&mut self, next: CountedRef<T>) -> Result<(), CountedRef<T>> {
        if !next.ptr_eq(&self.first) {
            return Err(next);
        }
        std::mem::forget(next);
        self.merged += 1;
        Ok(())
    }
}

impl<T: Send + Sync + 'static> Drop for RefRun<T> {
    fn drop(&mut self) {
        if self.merged > 0 {
            // SAFETY: `merge` forgot `merged` references to this value, whose
            // counts the run owns; `first` (dropped after this) keeps the
            // allocation alive, so this cannot free it.
            unsafe { release(self.first.header(), self.merged) }
        }
    }
}

#[cfg(test)]
mod tests;
