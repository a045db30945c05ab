//! Per-thread lanes: single-producer rings that let application threads hand
//! values to the consumer without writing any cache line another producer
//! writes.
//!
//! In the shared [`BoundedQueue`](super::BoundedQueue) every push moves the
//! queue's `tail` with an atomic read-modify-write, so two threads ending spans
//! at the same time pass that cache line back and forth at every span, and
//! each such operation also waits for the thread's earlier stores (the span
//! just written). A [`Lane`] has one producer, so its `tail` is a plain store;
//! its values lie side by side in memory, so the consumer can hand a run of
//! them to an exporter in place, as one slice, without copying them out.
//!
//! * A thread *binds* to a free lane of a [`Lanes`] the first time it pushes
//!   there, and owns it until it exits (a thread-local destructor gives it
//!   back). The lane keeps what the thread pushed for the consumer; the next
//!   thread to bind to it carries on where the last one stopped.
//! * Lanes are made by whoever sets the `Lanes` up ([`Lanes::add_lane`]) and
//!   by the consumer when a thread found none free
//!   ([`Lanes::add_lane_if_wanted`]), up to a fixed number: producers never
//!   allocate. A thread without a lane is told so ([`LanePush::NoLane`]) and
//!   pushes into the shared queue instead; so does one whose lane is full.
//! * The consumer claims a run of values under a lock, hands it out in place
//!   ([`Run`]), and gives the cells back to the owner once the run is done;
//!   another consumer (a drain at shutdown) may claim what follows meanwhile.
//! * A thread binds to a lane of one `Lanes` at a time (the first it pushes
//!   into, until that one is closed).
//!
//! Memory: a lane holds a fixed number of values (each lane its own number,
//! given when the `Lanes` is set up), allocated without being written when the
//! lane is made, so its pages cost memory only once values reach them; lanes
//! are freed with the `Lanes` and the last thread bound to them.

use super::atomics::{AtomicBool, AtomicUsize, Ordering};
use super::queue::{copy_in_pieces, CachePadded};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::mem::MaybeUninit;
// The lane set's own state is never modelled under loom (its threads would
// share one thread-local binding there): always std's atomics.
use std::sync::atomic::{AtomicBool as StdAtomicBool, AtomicUsize as StdAtomicUsize};
use std::sync::{Arc, Mutex, OnceLock};

/// A single-producer, single-consumer ring of `capacity` values (a power of
/// two), whose producer changes hands between threads through `owned`.
///
/// Positions count up forever (wrapping); position `p` lives in cell
/// `p & mask`. Values at positions `read..tail` wait for the consumer, and
/// those at `head..read` are claimed by it (being exported in place).
pub(crate) struct Lane<T> {
    /// The next position to push: written by the owner only, Release after
    /// the value is written.
    tail: CachePadded<AtomicUsize>,
    /// The first position whose cell the owner may not reuse yet: moved on by
    /// the consumer, Release, once the values before it are gone.
    head: CachePadded<AtomicUsize>,
    /// The next position to claim: written by consumers one at a time (the
    /// callers of [`claim`](Self::claim) guarantee it), read by anyone for
    /// the length.
    read: CachePadded<AtomicUsize>,
    /// The owner's own state, handed over with ownership.
    producer: CachePadded<Producer>,
    buffer: Buffer<T>,
    mask: usize,
}

struct Producer {
    /// Whether a thread owns the lane (may push into it).
    owned: AtomicBool,
    /// The `head` the owner last read: the lane has room up to `head +
    /// capacity`, and reading `head` again (a line the consumer writes) is
    /// only needed when that room seems used up.
    known_head: AtomicUsize,
    /// Events the owners counted with [`Lanes::count_in_lane`] (spans
    /// started): written by the owner only, read by anyone for the sum.
    counted: AtomicUsize,
}

// SAFETY: the lane moves values between threads (`T: Send`); the positions
// give each cell to exactly one side at a time (the owner writes cells in
// `tail..head + capacity`, consumers claim cells in `read..tail`, each claim
// to one of them), so values are never shared and `T: Sync` is not needed.
unsafe impl<T: Send> Send for Lane<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Lane<T> {}

impl<T> Lane<T> {
    /// A lane of `capacity` cells, owned by nobody.
    ///
    /// # Panics
    ///
    /// If `capacity` is not a power of two.
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two(), "lane capacity: a power of two");
        Lane {
            tail: CachePadded(AtomicUsize::new(0)),
            head: CachePadded(AtomicUsize::new(0)),
            read: CachePadded(AtomicUsize::new(0)),
            producer: CachePadded(Producer {
                owned: AtomicBool::new(false),
                known_head: AtomicUsize::new(0),
                counted: AtomicUsize::new(0),
            }),
            buffer: Buffer::new(capacity),
            mask: capacity - 1,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Makes the calling thread the owner, if nobody owns the lane.
    pub(crate) fn try_claim(&self) -> bool {
        // Acquire: pairs with `release`, so the last owner's pushes (its
        // `tail` and `known_head`) happen before ours.
        self.producer
            .owned
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Gives up ownership; the values pushed stay for the consumer.
    ///
    /// # Safety
    ///
    /// The calling thread owns the lane and pushes into it no more.
    pub(crate) unsafe fn release(&self) {
        // Release: our pushes happen before the next owner's.
        self.producer.owned.store(false, Ordering::Release);
    }

    /// Moves the value out of `source` into the lane and returns the number of
    /// values ever pushed into it (counting this one), or `None` if the lane
    /// is full (the value stays in `source`). An empty `source` pushes nothing.
    ///
    /// # Safety
    ///
    /// The calling thread owns the lane.
    #[inline]
    pub(crate) unsafe fn push_from(&self, source: &mut Option<T>) -> Option<usize> {
        let value: *const T = source.as_ref()?;
        // Only the owner writes these two (the last owner's writes are ours
        // through `try_claim`), so Relaxed reads see their latest values.
        let tail = self.tail.load(Ordering::Relaxed);
        let mut head = self.producer.known_head.load(Ordering::Relaxed);
        if tail.wrapping_sub(head) > self.mask {
            // Acquire: pairs with `consume`'s Release, so the consumer's reads
            // of the cells it freed happen before our writes.
            head = self.head.load(Ordering::Acquire);
            self.producer.known_head.store(head, Ordering::Relaxed);
            if tail.wrapping_sub(head) > self.mask {
                return None;
            }
        }
        // SAFETY: `tail` lies in `head..head + capacity` and at or after
        // `tail`: the consumer does not touch that cell, and we own the lane.
        // `value` is the initialised `T` in `source`, which we borrow
        // exclusively, so it cannot overlap the cell.
        unsafe { self.buffer.write(tail & self.mask, value) };
        // SAFETY: `source` is a valid `&mut`; writing `None` over the value
        // without dropping it completes the move into the lane.
        unsafe { std::ptr::write(source, None) };
        let pushed = tail.wrapping_add(1);
        // Release: publishes the value to the consumer that sees this tail.
        self.tail.store(pushed, Ordering::Release);
        Some(pushed)
    }

    /// How many values wait for the consumer (a recent value when others
    /// push or consume meanwhile).
    pub(crate) fn len(&self) -> usize {
        self.waiting(None)
    }

    /// The position after the last value pushed: a [`Mark`] for claims.
    pub(crate) fn tail(&self) -> usize {
        self.tail.load(Ordering::Acquire)
    }

    /// How many values wait before `upto` (a [`tail`](Self::tail) read
    /// earlier), or in all if `None`.
    fn waiting(&self, upto: Option<usize>) -> usize {
        let read = self.read.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        let waiting = tail.wrapping_sub(read);
        let before = upto.map_or(waiting, |upto| upto.wrapping_sub(read));
        // `read` past `upto` wraps `before` around: nothing waits before it.
        if before > self.capacity() {
            0
        } else {
            waiting.min(before)
        }
    }

    /// Claims the oldest waiting values, up to `max` of them, none at or after
    /// `upto` (a [`tail`](Self::tail) read earlier), and no further than the
    /// end of the buffer (so that they are one slice); `None` if none waits.
    /// The claim must be passed to [`finish`](Self::finish).
    ///
    /// # Safety
    ///
    /// No other thread claims from the lane at the same time.
    pub(crate) unsafe fn claim(&self, max: usize, upto: Option<usize>) -> Option<Claim> {
        // Only claimers write `read`, one at a time (the caller's contract).
        let read = self.read.load(Ordering::Relaxed);
        let start = read & self.mask;
        // Reads `tail` with Acquire, pairing with the push's Release, so the
        // values are visible.
        let len = self.waiting(upto).min(max).min(self.capacity() - start);
        if len == 0 {
            return None;
        }
        // Release: for `len` readers; the values stay where they are.
        self.read.store(read.wrapping_add(len), Ordering::Release);
        Some(Claim { read, len })
    }

    /// Runs `f` on the claimed values, then drops them (or forgets them, if
    /// `f` moved them out) and gives their cells back to the owner, unless
    /// an earlier claim is still out: then those cells stay used, which only
    /// happens when the queue is emptied at shutdown during a hung export
    /// (the lane takes no more values then).
    ///
    /// If `f` panics, the cells are given back all the same and the values
    /// are leaked; if a value's drop panics, the others are still dropped.
    /// None is dropped twice.
    ///
    /// # Safety
    ///
    /// `claim` came from this lane's [`claim`](Self::claim) and is finished
    /// once.
    pub(crate) unsafe fn finish(&self, claim: Claim, f: impl FnOnce(&mut [T]) -> Disposal) {
        /// Gives the cells back when dropped, even while unwinding.
        struct GiveBack<'a>(&'a AtomicUsize, usize, usize);
        impl Drop for GiveBack<'_> {
            fn drop(&mut self) {
                // Release: our reads happen before the owner's next writes.
                let _ = self.0.compare_exchange(
                    self.1,
                    self.1.wrapping_add(self.2),
                    Ordering::Release,
                    Ordering::Relaxed,
                );
            }
        }
        let _give_back = GiveBack(&self.head, claim.read, claim.len);
        // SAFETY: the claim's positions were published (before `tail`) and
        // are ours alone: `read` moved past them, and the owner does not
        // write them until `head` does.
        unsafe { self.buffer.consume(claim.read & self.mask, claim.len, f) };
    }

    /// Runs `f` on the oldest values, up to `max` of them and no further than
    /// the end of the buffer, then drops them. Returns how many; `f` is not
    /// called for none.
    ///
    /// # Safety
    ///
    /// As for [`claim`](Self::claim).
    pub(crate) unsafe fn consume(&self, max: usize, f: impl FnOnce(&mut [T])) -> usize {
        // SAFETY: the caller's contract; the claim is finished once.
        unsafe {
            let Some(claim) = self.claim(max, None) else {
                return 0;
            };
            let len = claim.len;
            self.finish(claim, |run| {
                f(run);
                Disposal::Drop
            });
            len
        }
    }

    /// Moves up to `max` of the oldest values, none at or after `upto`, to the
    /// end of `out` (one copy each), and returns how many.
    ///
    /// # Safety
    ///
    /// As for [`claim`](Self::claim).
    pub(crate) unsafe fn drain_into(
        &self,
        out: &mut Vec<T>,
        max: usize,
        upto: Option<usize>,
    ) -> usize {
        let mut taken = 0;
        while taken < max {
            // SAFETY: the caller's contract.
            let Some(claim) = (unsafe { self.claim(max - taken, upto) }) else {
                break;
            };
            taken += claim.len;
            let move_out = |run: &mut [T]| {
                out.reserve(run.len());
                let len = out.len();
                for (value, dst) in run.iter().zip(out.spare_capacity_mut()) {
                    // SAFETY: `value` is initialised and given up
                    // (`Disposal::MovedOut`); `dst` lies outside the lane.
                    unsafe { copy_in_pieces(value, dst.as_mut_ptr()) };
                }
                // SAFETY: the spare elements after `len` were just written.
                unsafe { out.set_len(len + run.len()) };
                Disposal::MovedOut
            };
            // SAFETY: finished once.
            unsafe { self.finish(claim, move_out) };
        }
        taken
    }
}

/// Positions `read..read + len` of a lane, claimed by a consumer.
#[derive(Debug)]
pub(crate) struct Claim {
    read: usize,
    len: usize,
}

impl Claim {
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// What a consumer did with a run of values.
pub(crate) enum Disposal {
    /// Left them in place: the lane drops them.
    Drop,
    /// Copied them out bitwise: the lane forgets them.
    MovedOut,
}

impl<T> Drop for Lane<T> {
    fn drop(&mut self) {
        // `&mut self`: nobody pushes, and no claim is out (a claim's holder
        // borrows the lane); drop what waits.
        // SAFETY: we are the only consumer.
        while unsafe { self.consume(usize::MAX, |_| ()) } > 0 {}
    }
}

/// The cells of a lane. With std, a run of cells is handed out as one slice
/// (`UnsafeCell<MaybeUninit<T>>` has `T`'s layout). Under loom, whose cells
/// track every access, a run is moved into a `Vec` for `f` instead.
struct Buffer<T> {
    #[cfg(not(all(loom, test)))]
    cells: Box<[std::cell::UnsafeCell<MaybeUninit<T>>]>,
    #[cfg(all(loom, test))]
    cells: Box<[loom::cell::UnsafeCell<MaybeUninit<T>>]>,
}

impl<T> Buffer<T> {
    /// `capacity` empty cells, allocated without writing them: a large lane
    /// costs only the pages its pushes have reached.
    #[cfg(not(all(loom, test)))]
    fn new(capacity: usize) -> Self {
        let cells = Box::new_uninit_slice(capacity);
        // SAFETY: a cell is an `UnsafeCell<MaybeUninit<T>>`, for which any
        // bytes, written or not, are valid.
        let cells = unsafe { cells.assume_init() };
        Buffer { cells }
    }

    /// Loom: cells made one by one (loom's cells track their accesses).
    #[cfg(all(loom, test))]
    fn new(capacity: usize) -> Self {
        Buffer {
            cells: (0..capacity)
                .map(|_| loom::cell::UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
        }
    }

    /// Copies the `T` at `value` into cell `index`.
    ///
    /// # Safety
    ///
    /// The calling thread has exclusive access to the cell, whose value (if
    /// any) was moved out or dropped; `value` points to an initialised `T`
    /// that does not overlap the cell and that the caller forgets.
    #[cfg(not(all(loom, test)))]
    #[inline(always)]
    unsafe fn write(&self, index: usize, value: *const T) {
        // SAFETY: the caller's contract; the cell's `T` layout makes the cast valid.
        unsafe { copy_in_pieces(value, self.cells[index].get().cast::<T>()) }
    }

    /// Runs `f` on the initialised values in cells `start..start + n`, then
    /// drops them, unless `f` says it moved them out.
    ///
    /// # Safety
    ///
    /// Those cells hold initialised values that the calling thread alone may
    /// access until this returns, and that it gives up.
    #[cfg(not(all(loom, test)))]
    unsafe fn consume(&self, start: usize, n: usize, f: impl FnOnce(&mut [T]) -> Disposal) {
        let cells = &self.cells[start..start + n];
        // SAFETY: the cells are contiguous `UnsafeCell<MaybeUninit<T>>`s,
        // which have `T`'s layout; the pointer derives from the whole range
        // (`as_ptr` of the slice), and `UnsafeCell` permits writing through
        // it. They are initialised and ours alone (the caller's contract).
        let run = unsafe {
            std::slice::from_raw_parts_mut(
                std::cell::UnsafeCell::raw_get(cells.as_ptr()).cast::<T>(),
                n,
            )
        };
        if let Disposal::Drop = f(run) {
            // SAFETY: the values are initialised and given up (the caller's
            // contract), and `f` did not move them out.
            unsafe { std::ptr::drop_in_place(run) };
        }
    }

    /// Loom: as above, cell by cell.
    #[cfg(all(loom, test))]
    unsafe fn write(&self, index: usize, value: *const T) {
        // SAFETY: the caller's contract.
        self.cells[index].with_mut(|cell| unsafe { copy_in_pieces(value, cell.cast::<T>()) });
    }

    /// Loom: moves the values into a `Vec`, runs `f` on it, then drops it
    /// (or forgets it, if `f` moved the values out).
    #[cfg(all(loom, test))]
    unsafe fn consume(&self, start: usize, n: usize, f: impl FnOnce(&mut [T]) -> Disposal) {
        let mut values: Vec<T> = self.cells[start..start + n]
            .iter()
            // SAFETY: the caller's contract: initialised, ours, given up.
            .map(|cell| cell.with_mut(|cell| unsafe { (*cell).assume_init_read() }))
            .collect();
        if let Disposal::MovedOut = f(&mut values) {
            // SAFETY: `f` copied the values out bitwise; forget ours.
            unsafe { values.set_len(0) };
        }
    }
}

/// Where [`Lanes::push_from`] put the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LanePush {
    /// Into the thread's lane, into which this many values have now been
    /// pushed (ever, by every thread that owned it).
    Pushed(usize),
    /// Nowhere: the thread's lane is full. The value stays in the source.
    Full,
    /// Nowhere: the thread has no lane here. The value stays in the source.
    NoLane,
}

/// The lanes of one consumer, for the threads that push to it.
pub(crate) struct Lanes<T> {
    set: Arc<LaneSet<T>>,
}

struct LaneSet<T> {
    /// Tells this set's lanes apart from other sets' in [`BOUND`]; never reused.
    id: usize,
    /// The lanes, made in order by the consumer: `made` of them so far.
    lanes: Box<[OnceLock<Lane<T>>]>,
    made: StdAtomicUsize,
    /// How many values each lane holds (powers of two), in the order they
    /// are made.
    capacities: Box<[usize]>,
    /// Moves on whenever a lane is made or given back, so that a thread that
    /// found none free looks again only then.
    generation: StdAtomicUsize,
    /// A thread found no free lane.
    wanted: StdAtomicBool,
    /// Pushes are over: threads bound here may bind to another set.
    closed: StdAtomicBool,
    /// Held while consuming: one consumer at a time.
    consumer: Mutex<()>,
    /// The lane a [`Consumer::claim_run`] looks at first, for fairness.
    next_run: StdAtomicUsize,
}

static NEXT_SET_ID: StdAtomicUsize = StdAtomicUsize::new(1);

/// How many sets have closed: a thread bound to a set looks for a lane in
/// another set again only when this moves on (its set may be the one closed).
static CLOSED_SETS: StdAtomicUsize = StdAtomicUsize::new(0);

thread_local! {
    /// The lane this thread owns: its set's id and the lane, type-erased.
    /// Read at every push; it has no destructor, so it is always accessible.
    static BOUND: Cell<(usize, *const ())> = const { Cell::new((0, std::ptr::null())) };
    /// Keeps that lane's set alive, and gives the lane back when the thread
    /// exits or binds to another set.
    static BINDING: RefCell<Option<Binding>> = const { RefCell::new(None) };
    /// The set, its generation and [`CLOSED_SETS`] when this thread last found
    /// no lane to bind to.
    static NO_LANE: Cell<(usize, usize, usize)> = const { Cell::new((0, 0, 0)) };
}

/// A thread's ownership of a lane.
struct Binding {
    set: Arc<dyn BoundSet>,
    index: usize,
}

/// What a [`Binding`] needs of its set, whatever the values' type.
trait BoundSet: Send + Sync {
    fn is_closed(&self) -> bool;
    /// Gives lane `index` back.
    ///
    /// # Safety
    ///
    /// The calling thread owns the lane and pushes into it no more.
    unsafe fn release(&self, index: usize);
}

impl<T: Send> BoundSet for LaneSet<T> {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    unsafe fn release(&self, index: usize) {
        let lane = self.lanes[index].get().expect("a bound lane was made");
        // SAFETY: the caller's contract.
        unsafe { lane.release() };
        self.generation.fetch_add(1, Ordering::Release);
    }
}

impl Drop for Binding {
    fn drop(&mut self) {
        // Stop pushing into the lane before giving it back.
        BOUND.set((0, std::ptr::null()));
        // SAFETY: this binding owned the lane, and `BOUND` no longer names it.
        unsafe { self.set.release(self.index) };
    }
}

impl<T: Send + 'static> Lanes<T> {
    /// Lanes holding `capacities` values (each rounded up to a power of
    /// two), made in that order: one lane per entry at most. None is made yet.
    pub(crate) fn new(capacities: Vec<usize>) -> Self {
        Lanes {
            set: Arc::new(LaneSet {
                id: NEXT_SET_ID.fetch_add(1, Ordering::Relaxed),
                lanes: capacities.iter().map(|_| OnceLock::new()).collect(),
                made: StdAtomicUsize::new(0),
                capacities: capacities
                    .into_iter()
                    .map(|c| c.max(1).next_power_of_two())
                    .collect(),
                generation: StdAtomicUsize::new(0),
                wanted: StdAtomicBool::new(false),
                closed: StdAtomicBool::new(false),
                consumer: Mutex::new(()),
                next_run: StdAtomicUsize::new(0),
            }),
        }
    }

    /// Moves the value out of `source` into the calling thread's lane,
    /// binding the thread to a free lane first if it has none here.
    ///
    /// Never blocks and never locks. It allocates nothing itself; the first
    /// push of a thread registers the thread-local destructor that gives its
    /// lane back, which the platform may allocate for, and a thread that binds
    /// here after holding a lane of a closed set may free that set's memory.
    #[inline]
    pub(crate) fn push_from(&self, source: &mut Option<T>) -> LanePush {
        let (id, lane) = BOUND.get();
        let lane = if id == self.set.id {
            // SAFETY: `BOUND` names a lane of this set only while this
            // thread's `Binding` owns it, and the binding keeps the set alive.
            unsafe { &*lane.cast::<Lane<T>>() }
        } else {
            match self.bind() {
                Some(lane) => lane,
                None => return LanePush::NoLane,
            }
        };
        // SAFETY: this thread owns the lane.
        match unsafe { lane.push_from(source) } {
            Some(pushed) => LanePush::Pushed(pushed),
            None => LanePush::Full,
        }
    }

    /// Counts one event (a span started) in the calling thread's lane, if it
    /// owns one here: a counter on a cache line only the owner writes, summed
    /// by [`counted`](Self::counted), so threads counting at once share no
    /// line. Returns `false` (nothing counted) if the thread has no lane here;
    /// it does not bind for this.
    #[inline]
    pub(crate) fn count_in_lane(&self) -> bool {
        let (id, lane) = BOUND.get();
        if id != self.set.id {
            return false;
        }
        // SAFETY: as in `push_from`: `BOUND` names a lane of this set only
        // while this thread's binding owns it and keeps the set alive.
        let lane = unsafe { &*lane.cast::<Lane<T>>() };
        let counted = &lane.producer.counted;
        // Only the owner writes it (the last owner's count is ours through
        // `try_claim`): a plain store, no read-modify-write.
        counted.store(
            counted.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        true
    }

    /// The events counted in the lanes so far (a recent value while threads
    /// count).
    pub(crate) fn counted(&self) -> usize {
        self.made()
            .map(|lane| lane.producer.counted.load(Ordering::Relaxed))
            .fold(0, usize::wrapping_add)
    }

    /// Binds the calling thread to a free lane of this set, unless it is bound
    /// to a lane of another set that is still open, or no lane is free (then
    /// it asks the consumer for one). Either way it looks again only when
    /// this set's generation or [`CLOSED_SETS`] moves on.
    #[inline(never)]
    fn bind(&self) -> Option<&Lane<T>> {
        let set = &self.set;
        let seen = (
            set.id,
            set.generation.load(Ordering::Acquire),
            CLOSED_SETS.load(Ordering::Acquire),
        );
        if NO_LANE.get() == seen {
            return None;
        }
        let bound = BINDING.try_with(|binding| {
            // A failed borrow means this thread is inside the borrow below,
            // dropping its old binding, and a destructor there ended a span:
            // no lane then.
            let mut binding = binding.try_borrow_mut().ok()?;
            if binding.as_ref().is_some_and(|b| !b.set.is_closed()) {
                return Some(None);
            }
            let made = set.made.load(Ordering::Acquire);
            let Some((index, lane)) = set.lanes[..made]
                .iter()
                .enumerate()
                .filter_map(|(i, lane)| Some((i, lane.get()?)))
                .find(|(_, lane)| lane.try_claim())
            else {
                set.wanted.store(true, Ordering::Relaxed);
                return None;
            };
            // Gives the lane of the closed set back, if any.
            *binding = None;
            *binding = Some(Binding {
                set: set.clone(),
                index,
            });
            BOUND.set((set.id, (lane as *const Lane<T>).cast()));
            Some(Some(lane))
        });
        match bound {
            Ok(Some(Some(lane))) => Some(lane),
            // Bound elsewhere, no lane free, or the thread is exiting.
            _ => {
                NO_LANE.set(seen);
                None
            }
        }
    }

    /// Makes one more lane if a thread asked for one and the set has room;
    /// says whether it did. For the consumer: producers never allocate.
    pub(crate) fn add_lane_if_wanted(&self) -> bool {
        self.set.wanted.swap(false, Ordering::Relaxed) && self.add_lane()
    }

    /// Makes one more lane, if the set has room; says whether it did.
    pub(crate) fn add_lane(&self) -> bool {
        let set = &self.set;
        // Lanes are made one at a time, under the consumer's lock.
        let _consumer = set.consumer.lock().unwrap_or_else(|e| e.into_inner());
        let made = set.made.load(Ordering::Relaxed);
        if made == set.lanes.len()
            || set.lanes[made]
                .set(Lane::new(set.capacities[made]))
                .is_err()
        {
            return false;
        }
        // Release: the lane is made before a thread that sees `made` uses it.
        set.made.store(made + 1, Ordering::Release);
        set.generation.fetch_add(1, Ordering::Release);
        true
    }

    /// How many lanes are made.
    pub(crate) fn made_count(&self) -> usize {
        self.set.made.load(Ordering::Acquire)
    }

    /// Marks the set closed: threads bound to it may bind to another set.
    pub(crate) fn close(&self) {
        if !self.set.closed.swap(true, Ordering::AcqRel) {
            CLOSED_SETS.fetch_add(1, Ordering::Release);
        }
    }

    /// The lanes made so far.
    fn made(&self) -> impl Iterator<Item = &Lane<T>> {
        let made = self.set.made.load(Ordering::Acquire);
        self.set.lanes[..made].iter().filter_map(OnceLock::get)
    }

    /// How many values the lanes hold (a recent value when others push or
    /// consume meanwhile).
    pub(crate) fn len(&self) -> usize {
        self.made().map(Lane::len).sum()
    }

    /// Where each lane's values end now: see [`Marks`].
    pub(crate) fn marks(&self) -> Marks {
        Marks(self.made().map(Lane::tail).collect())
    }

    /// How many lanes a consumer looks at: those made, or those `marks` knew.
    fn made_for(&self, marks: Option<&Marks>) -> usize {
        let made = self.set.made.load(Ordering::Acquire);
        marks.map_or(made, |m| m.0.len().min(made))
    }

    /// How many values the lanes made so far can hold.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn capacity(&self) -> usize {
        self.made().map(Lane::capacity).sum()
    }

    /// How many values the largest lane holds (the first made; 0 if the set
    /// has none).
    pub(crate) fn largest_lane(&self) -> usize {
        self.set.capacities.first().copied().unwrap_or(0)
    }

    /// The right to consume, waiting for another consumer to finish.
    pub(crate) fn consumer(&self) -> Consumer<'_, T> {
        Consumer {
            lanes: self,
            _turn: self.set.consumer.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// The right to consume, if no other consumer holds it.
    pub(crate) fn try_consumer(&self) -> Option<Consumer<'_, T>> {
        let turn = match self.set.consumer.try_lock() {
            Ok(turn) => turn,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(Consumer {
            lanes: self,
            _turn: turn,
        })
    }
}

/// The only consumer of a [`Lanes`] while it lives.
pub(crate) struct Consumer<'a, T> {
    lanes: &'a Lanes<T>,
    _turn: std::sync::MutexGuard<'a, ()>,
}

impl<'a, T: Send + 'static> Consumer<'a, T> {
    /// Claims up to `max` values of a lane that holds at least `min` (at
    /// least one), or `None` if no lane holds `min`; with `marks`, only values
    /// pushed before them count and are claimed. The run is shorter than
    /// `max`, even than `min`, where the lane's values wrap around the end of
    /// its buffer: a slice cannot. The consumer's turn may end before the run
    /// is exported.
    pub(crate) fn claim_run(
        &self,
        min: usize,
        max: usize,
        marks: Option<&Marks>,
    ) -> Option<Run<'a, T>> {
        let set = &self.lanes.set;
        let lanes = self.lanes.made_for(marks);
        if lanes == 0 {
            return None;
        }
        let first = set.next_run.load(Ordering::Relaxed);
        let (index, lane, upto) = (0..lanes)
            .map(|i| (first + i) % lanes)
            .filter_map(|i| Some((i, set.lanes[i].get()?, marks.map(|m| m.0[i]))))
            .find(|(_, lane, upto)| lane.waiting(*upto) >= min.max(1))?;
        set.next_run.store(index + 1, Ordering::Relaxed);
        // SAFETY: we are the only consumer (`_turn`).
        let claim = unsafe { lane.claim(max, upto) }?;
        Some(Run {
            lane,
            claim: Some(claim),
        })
    }

    /// Moves up to `max` values from the lanes to the end of `out`, and
    /// returns how many; with `marks`, only values pushed before them.
    pub(crate) fn drain_into(&self, out: &mut Vec<T>, max: usize, marks: Option<&Marks>) -> usize {
        let lanes = self.lanes.made_for(marks);
        let mut taken = 0;
        for (i, lane) in self.lanes.set.lanes[..lanes].iter().enumerate() {
            let Some(lane) = lane.get() else {
                continue;
            };
            if taken == max {
                break;
            }
            let upto = marks.map(|m| m.0[i]);
            // SAFETY: we are the only consumer (`_turn`).
            taken += unsafe { lane.drain_into(out, max - taken, upto) };
        }
        taken
    }
}

/// Where each lane's values ended at some moment ([`Lanes::marks`]): claims
/// that pass marks take only values pushed before it, in lanes made before it.
#[derive(Debug)]
pub(crate) struct Marks(Vec<usize>);

/// Values of one lane claimed by a consumer: [`export`](Self::export) them
/// in place; dropping the run without that drops them.
pub(crate) struct Run<'a, T> {
    lane: &'a Lane<T>,
    /// Taken when finished.
    claim: Option<Claim>,
}

impl<T> Run<'_, T> {
    /// How many values the run holds.
    pub(crate) fn len(&self) -> usize {
        self.claim.as_ref().map_or(0, Claim::len)
    }

    /// Runs `f` on the values, in place, then moves them out one by one to
    /// `each` (which drops them) and gives their cells back to the lane's
    /// owner.
    ///
    /// Moving them out reads the cells and writes nothing there: taking a
    /// value's parts out in place would leave the owner's next write to the
    /// cell waiting for this thread's cache to give the line up. `f` may
    /// change the values, and should seldom need to (the batch worker writes
    /// to a span's cell only to shorten an attribute list with a repeated
    /// key).
    pub(crate) fn export(mut self, f: impl FnOnce(&mut [T]), mut each: impl FnMut(T)) {
        if let Some(claim) = self.claim.take() {
            let move_out = |run: &mut [T]| {
                f(run);
                for value in run.iter() {
                    let mut moved = MaybeUninit::uninit();
                    // SAFETY: each value is initialised and read once; the
                    // lane forgets them (`Disposal::MovedOut`). In pieces: a
                    // plain read of a value above 128 bytes calls `memmove`,
                    // and reading its fields back stalls on the copy.
                    each(unsafe {
                        copy_in_pieces(value, moved.as_mut_ptr());
                        moved.assume_init()
                    });
                }
                Disposal::MovedOut
            };
            // SAFETY: the claim came from this lane and is finished once.
            unsafe { self.lane.finish(claim, move_out) };
        }
    }
}

impl<T> Drop for Run<'_, T> {
    fn drop(&mut self) {
        if let Some(claim) = self.claim.take() {
            // SAFETY: the claim came from this lane and is finished once.
            unsafe { self.lane.finish(claim, |_| Disposal::Drop) };
        }
    }
}

impl<T> fmt::Debug for Lanes<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lanes")
            .field("made", &self.set.made.load(Ordering::Relaxed))
            .field("capacities", &self.set.capacities)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
