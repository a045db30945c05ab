// Public only through the `bench-internals` feature (the queue benchmark).
#![cfg_attr(not(feature = "bench-internals"), allow(unreachable_pub))]

//! The bounded lock-free queue that carries ended spans from application
//! threads to the batch worker.
//!
//! This is Dmitry Vyukov's bounded MPMC array queue (the design behind
//! crossbeam's `ArrayQueue`), used here with many producers and one draining
//! consumer. Every slot carries a *stamp*; `head` and `tail` are stamps too.
//! A stamp packs a *lap* (high bits, a multiple of `one_lap`) and an *index*
//! into the buffer (low bits), where `one_lap` is the smallest power of two
//! greater than the capacity, so `lap | index` never carries into the lap.
//!
//! * A slot whose stamp equals `tail` is free for the push at position `tail`.
//!   A producer claims it by moving `tail` on with a CAS, writes the value,
//!   then publishes it by setting the stamp to `tail + 1`.
//! * A slot whose stamp equals `head + 1` holds the value for the pop at
//!   `head`. The consumer claims it by moving `head` on with a CAS, reads the
//!   value, then frees the slot for the next lap by setting the stamp to
//!   `head + one_lap`.
//!
//! The Release store of a stamp and the Acquire load that observes it are the
//! only synchronisation the values need; `head` and `tail` merely arbitrate
//! which thread owns which position, so they are accessed Relaxed.
//!
//! Neither side ever waits for the other without bound: a push into a full
//! queue returns the value at once, and a push or pop that meets a slot still
//! being written or read by another thread retries a few times, then reports
//! full or empty.

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::Deref;

use super::atomics::{self, AtomicUsize, Ordering, UnsafeCell};
#[cfg(not(all(loom, test)))]
use super::zeroed::ZeroedSlice;

/// The queue's buffer: zeroed memory (see [`free_slots`]), or under loom a
/// boxed slice.
#[cfg(not(all(loom, test)))]
type Slots<T> = ZeroedSlice<Slot<T>>;
#[cfg(all(loom, test))]
type Slots<T> = Box<[Slot<T>]>;

/// The most positions `drain_into` claims at once. A claimed slot stays busy
/// until it is copied out, and a producer that reaches it waits (or reports the
/// queue full), so short runs keep slots flowing back to the producers.
const MAX_RUN: usize = 32;

/// Pads and aligns a value to 128 bytes so that counters written by
/// different threads never share a cache line (x86-64 prefetches lines in
/// adjacent pairs, hence 128 rather than 64).
#[repr(align(128))]
pub(super) struct CachePadded<T>(pub(super) T);

impl<T> Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Exponential backoff for contended retries.
///
/// `spin` is for losing a race to a thread that made progress; `snooze` is
/// for waiting on a thread that is mid-operation, and gives up
/// (`is_completed`) after a bounded number of steps.
struct Backoff {
    step: u32,
}

// Under loom SPIN_LIMIT is 0, which makes some comparisons trivially true.
#[cfg_attr(
    all(loom, test),
    allow(clippy::absurd_extreme_comparisons, clippy::unnecessary_min_or_max)
)]
impl Backoff {
    /// Steps below this spin `2^step` times; steps above it yield.
    #[cfg(not(all(loom, test)))]
    const SPIN_LIMIT: u32 = 6;
    /// After this many steps a waiter stops waiting.
    #[cfg(not(all(loom, test)))]
    const WAIT_LIMIT: u32 = 10;
    // Under loom every retry is a new branch to explore: keep it to one.
    #[cfg(all(loom, test))]
    const SPIN_LIMIT: u32 = 0;
    #[cfg(all(loom, test))]
    const WAIT_LIMIT: u32 = 1;

    fn new() -> Self {
        Backoff { step: 0 }
    }

    fn spin(&mut self) {
        for _ in 0..1u32 << self.step.min(Self::SPIN_LIMIT) {
            atomics::spin_loop();
        }
        if self.step <= Self::SPIN_LIMIT {
            self.step += 1;
        }
    }

    fn snooze(&mut self) {
        if self.step <= Self::SPIN_LIMIT {
            for _ in 0..1u32 << self.step {
                atomics::spin_loop();
            }
        } else {
            atomics::yield_now();
        }
        self.step += 1;
    }

    fn is_completed(&self) -> bool {
        self.step > Self::WAIT_LIMIT
    }
}

/// One cell of the ring buffer, on cache lines of its own: neighbouring slots
/// are written by different producers at the same time.
#[repr(align(64))]
struct Slot<T> {
    /// Kept as its difference from the slot's index (see
    /// [`BoundedQueue::stamp`]); as a stamp:
    /// `position` if the slot is free for the push at `position`;
    /// `position + 1` once that push has written its value. A pop at
    /// `position` sets it to `position + one_lap`, freeing it for the next lap.
    stamp: AtomicUsize,
    /// Initialised exactly while `stamp == position + 1` for some position
    /// not yet released by a pop.
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded, lock-free, multi-producer queue of values moved in by value.
///
/// Any number of threads may [`push`](Self::push); the batch worker drains
/// it with [`pop`](Self::pop) or [`drain_into`](Self::drain_into) (several
/// consumers are safe too, only slower). A push never blocks, never takes a
/// lock and never allocates: when the queue already holds `capacity` items
/// the value is handed back.
pub struct BoundedQueue<T> {
    /// Stamp of the next position to pop. Written by consumers only.
    head: CachePadded<AtomicUsize>,
    /// Stamp of the next position to push. Written by producers only.
    tail: CachePadded<AtomicUsize>,
    /// `capacity` slots; slot `i` starts with stamp `i` (lap 0, free).
    buffer: Slots<T>,
    /// Smallest power of two greater than `buffer.len()`: adding it to a
    /// stamp advances the lap and keeps the index.
    one_lap: usize,
}

// SAFETY: the queue owns its values and moves them between threads, which is
// sound exactly when `T: Send`.
unsafe impl<T: Send> Send for BoundedQueue<T> {}
// SAFETY: through `&BoundedQueue` a value is only ever moved in (push) or
// out (pop), never shared: the stamp protocol gives each access exclusive
// ownership of its slot, so `T: Send` suffices and `T: Sync` is not needed.
unsafe impl<T: Send> Sync for BoundedQueue<T> {}

impl<T> BoundedQueue<T> {
    /// Creates a queue that holds at most `capacity` items.
    ///
    /// This is the only place the queue allocates. The memory is zeroed
    /// (every slot free for lap 0), so a large queue costs only what its
    /// pushes have reached.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero or too large to index (above `usize::MAX / 4`).
    pub fn with_capacity(capacity: usize) -> Self {
        assert!(capacity >= 1, "BoundedQueue capacity must be at least 1");
        assert!(
            capacity <= usize::MAX / 4,
            "BoundedQueue capacity too large"
        );
        BoundedQueue {
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
            buffer: free_slots(capacity),
            one_lap: (capacity + 1).next_power_of_two(),
        }
    }

    /// The most items the queue holds, as passed to [`with_capacity`](Self::with_capacity).
    pub fn capacity(&self) -> usize {
        self.buffer.len()
    }

    /// Appends `value`, or hands it back in `Err` if the queue is full.
    ///
    /// Never blocks, never locks, never allocates. It may also report full
    /// if the last free slot is still being read by a pop that is taking
    /// unusually long (a preempted consumer), rather than wait for it.
    #[inline]
    pub fn push(&self, value: T) -> Result<(), T> {
        match self.claim_push() {
            Some(tail) => {
                self.publish(tail, value);
                Ok(())
            }
            None => Err(value),
        }
    }

    /// Moves the value out of `source` into the queue, unless the queue is full
    /// (`false`, and the value stays in `source`). An empty `source` pushes
    /// nothing. Like [`push`](Self::push), but the value is copied once, from
    /// where it lies straight into its slot, which matters for large values.
    #[inline]
    pub fn push_from(&self, source: &mut Option<T>) -> bool {
        let Some(value) = source.as_ref() else {
            return true;
        };
        let value: *const T = value;
        let Some(tail) = self.claim_push() else {
            return false;
        };
        let slot = self.slot(tail);
        // SAFETY: the slot is ours to write, as in `publish`. `value` points to
        // the initialised `T` in `source`, which we borrow exclusively, and it
        // cannot overlap the queue's own cell.
        slot.value
            .with_mut(|cell| unsafe { copy_in_pieces(value, cell.cast::<T>()) });
        // SAFETY: `source` is a valid `&mut`; writing `None` over the value
        // without dropping it completes the move into the slot.
        unsafe { std::ptr::write(source, None) };
        // Release: publishes the value to the pop that sees it.
        self.set_stamp(tail, tail.wrapping_add(1), Ordering::Release);
        true
    }

    /// Claims the next free position for a push, or `None` if the queue is full.
    #[inline(always)]
    fn claim_push(&self) -> Option<usize> {
        let mut backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            // Acquire: pairs with the Release of the pop that freed this
            // slot, so its read of the old value happens before our write.
            let stamp = self.stamp(tail, Ordering::Acquire);
            if stamp == tail {
                // The slot is free for this lap: try to claim position `tail`.
                let new_tail = self.next(tail);
                match self.tail.compare_exchange_weak(
                    tail,
                    new_tail,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(tail),
                    Err(current) => {
                        tail = current;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_sub(tail) as isize > 0 {
                // Another producer already used this position: `tail` is stale.
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // The slot is still in use by the previous lap. If `head` is
                // a full lap behind, the queue holds `capacity` items.
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail || backoff.is_completed() {
                    return None;
                }
                // A pop has claimed the slot and is reading it: wait a little.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Writes `value` at position `tail`, claimed by this thread, and hands it
    /// to the consumer.
    #[inline(always)]
    fn publish(&self, tail: usize, value: T) {
        let slot = self.slot(tail);
        // The copy below is the value's move: it is forgotten here.
        let value = std::mem::ManuallyDrop::new(value);
        slot.value.with_mut(|cell| {
            // SAFETY: `claim_push` made this thread the only owner of position
            // `tail` (its CAS), and the slot's stamp equalled `tail`, which says
            // the slot holds no value (the previous lap's pop has finished
            // reading it, see the Acquire in `claim_push`). No other thread
            // touches the cell until the stamp moves on.
            unsafe { copy_in_pieces(&*value, cell.cast::<T>()) }
        });
        // Release: publishes the value to the pop that sees it.
        self.set_stamp(tail, tail.wrapping_add(1), Ordering::Release);
    }

    /// Removes the oldest item, or returns `None` if the queue is empty.
    ///
    /// Also returns `None`, after a brief wait, if the oldest item's push
    /// has claimed its slot but not finished writing it.
    #[cfg(any(test, feature = "bench-internals"))]
    pub fn pop(&self) -> Option<T> {
        let (position, _) = self.claim(1, true)?;
        // SAFETY: `claim` gave us position `position`, which is published.
        Some(unsafe { self.take(position) })
    }

    /// Like [`pop`](Self::pop), but returns `None` at once instead of waiting
    /// briefly when the oldest item is still being written by a push.
    pub fn pop_ready(&self) -> Option<T> {
        let (position, _) = self.claim(1, false)?;
        // SAFETY: `claim` gave us position `position`, which is published.
        Some(unsafe { self.take(position) })
    }

    /// Pops up to `max` items into `out`, oldest first, and returns how many.
    ///
    /// Claims runs of ready items with one CAS per run, so draining a batch
    /// costs far less than popping it item by item.
    pub fn drain_into(&self, out: &mut Vec<T>, max: usize) -> usize {
        let mut taken = 0;
        while taken < max {
            let Some((mut position, run)) = self.claim((max - taken).min(MAX_RUN), true) else {
                break;
            };
            out.reserve(run);
            let len = out.len();
            for dst in &mut out.spare_capacity_mut()[..run] {
                // SAFETY: `claim` gave us `run` consecutive published
                // positions starting at `position`.
                unsafe { self.take_into(position, dst) };
                position = self.next(position);
            }
            // SAFETY: the `run` spare elements after `len` were just written.
            unsafe { out.set_len(len + run) };
            taken += run;
        }
        taken
    }

    /// The number of items in the queue: exact when no push or pop runs
    /// concurrently, otherwise a value between 0 and `capacity` that was
    /// true at some recent moment.
    pub fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::Relaxed);
            let head = self.head.load(Ordering::Relaxed);
            // Only trust `head` if `tail` did not move while we read it.
            if self.tail.load(Ordering::Relaxed) == tail {
                let head_index = head & (self.one_lap - 1);
                let tail_index = tail & (self.one_lap - 1);
                return if head_index < tail_index {
                    tail_index - head_index
                } else if head_index > tail_index {
                    self.capacity() - head_index + tail_index
                } else if tail == head {
                    0
                } else {
                    self.capacity()
                };
            }
        }
    }

    /// Whether the queue holds no items (with the same caveat as [`len`](Self::len)).
    #[cfg(any(test, feature = "bench-internals"))]
    pub fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        self.tail.load(Ordering::Relaxed) == head
    }

    /// The slot that position `stamp` maps to.
    fn slot(&self, stamp: usize) -> &Slot<T> {
        let index = stamp & (self.one_lap - 1);
        debug_assert!(index < self.buffer.len(), "stamp index out of bounds");
        // SAFETY: every stamp held in `head`, `tail` or passed around here
        // comes from `next`, which keeps the index below `buffer.len()`.
        unsafe { self.buffer.get_unchecked(index) }
    }

    /// The stamp of the slot that `position` maps to. A slot keeps its stamp
    /// as the difference from its index, so that a slot of all zero bytes is
    /// free for lap 0: the buffer is allocated zeroed, and its pages cost
    /// memory only once used.
    #[inline(always)]
    fn stamp(&self, position: usize, order: Ordering) -> usize {
        let index = position & (self.one_lap - 1);
        self.slot(position).stamp.load(order).wrapping_add(index)
    }

    /// Sets the stamp of the slot that `position` maps to (see [`stamp`](Self::stamp)).
    #[inline(always)]
    fn set_stamp(&self, position: usize, stamp: usize, order: Ordering) {
        let index = position & (self.one_lap - 1);
        self.slot(position)
            .stamp
            .store(stamp.wrapping_sub(index), order);
    }

    /// The position after `stamp`: the next index, or index 0 of the next lap.
    fn next(&self, stamp: usize) -> usize {
        let index = stamp & (self.one_lap - 1);
        let lap = stamp & !(self.one_lap - 1);
        if index + 1 < self.buffer.len() {
            stamp.wrapping_add(1)
        } else {
            lap.wrapping_add(self.one_lap)
        }
    }

    /// Claims the longest run (up to `max >= 1`) of published positions at
    /// `head` and returns its first position and length, or `None` if the
    /// oldest position is not published.
    fn claim(&self, max: usize, wait: bool) -> Option<(usize, usize)> {
        let mut backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // Acquire: pairs with the Release of the push that published it.
            let stamp = self.stamp(head, Ordering::Acquire);
            if stamp == head.wrapping_add(1) {
                // Extend the run over the following published slots. Each
                // Acquire load makes that slot's value visible to us.
                let mut run = 1;
                let mut end = self.next(head);
                while run < max && self.stamp(end, Ordering::Acquire) == end.wrapping_add(1) {
                    run += 1;
                    end = self.next(end);
                }
                // The CAS succeeds only if no other consumer moved `head`, so
                // the slots we saw published are still unclaimed.
                match self.head.compare_exchange_weak(
                    head,
                    end,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some((head, run)),
                    Err(current) => {
                        head = current;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_sub(head.wrapping_add(1)) as isize > 0 {
                // Another consumer already took this position: `head` is stale.
                backoff.spin();
                head = self.head.load(Ordering::Relaxed);
            } else {
                // Not published yet. Empty if no push has claimed it either.
                let tail = self.tail.load(Ordering::Relaxed);
                if tail == head || !wait || backoff.is_completed() {
                    return None;
                }
                // A push has claimed the slot and is writing it: wait a little.
                backoff.snooze();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Moves the value out of `position` and frees its slot for the next lap.
    ///
    /// # Safety
    ///
    /// The caller must have claimed `position` with `claim` (moving `head`
    /// past it) after observing its stamp as `position + 1`, and not taken it yet.
    unsafe fn take(&self, position: usize) -> T {
        let mut value = MaybeUninit::uninit();
        // SAFETY: the caller's contract is `take_into`'s.
        unsafe { self.take_into(position, &mut value) };
        // SAFETY: `take_into` initialised it.
        unsafe { value.assume_init() }
    }

    /// Moves the value at `position` into `dst` (one copy, straight from the
    /// slot) and frees the slot for the producers' next lap.
    ///
    /// # Safety
    ///
    /// As for [`take`](Self::take).
    #[inline]
    unsafe fn take_into(&self, position: usize, dst: &mut MaybeUninit<T>) {
        let slot = self.slot(position);
        // SAFETY: per this function's contract the slot holds an initialised
        // value (stamp `position + 1`, seen with Acquire) that only this
        // thread may read; producers wait for the stamp below before writing.
        // `dst` is a `&mut` outside the queue, so the copy cannot overlap; the
        // slot is treated as empty from here on (the value moved out).
        slot.value.with_mut(|cell| unsafe {
            copy_in_pieces(cell.cast_const().cast::<T>(), dst.as_mut_ptr())
        });
        // Release: our read happens before the next lap's push writes.
        self.set_stamp(
            position,
            position.wrapping_add(self.one_lap),
            Ordering::Release,
        );
    }
}

/// `capacity` free slots for lap 0 (all stamps 0, see
/// [`BoundedQueue::stamp`]), allocated zeroed: the allocator maps fresh pages
/// for a large buffer without writing them.
#[cfg(not(all(loom, test)))]
fn free_slots<T>(capacity: usize) -> Slots<T> {
    // SAFETY: all zero bytes are a valid `Slot<T>` (an `AtomicUsize` of 0 and
    // an `UnsafeCell<MaybeUninit<T>>`, for which any bytes are valid), and a
    // slot needs no drop (the queue drops the values it holds itself).
    unsafe { ZeroedSlice::new(capacity) }
}

/// Loom's atomics cannot be zeroed memory: the same slots, made one by one.
#[cfg(all(loom, test))]
fn free_slots<T>(capacity: usize) -> Slots<T> {
    (0..capacity)
        .map(|_| Slot {
            stamp: AtomicUsize::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        })
        .collect()
}

/// Copies the `T` at `src` to `dst` in pieces of at most 128 bytes, which the
/// compiler expands to a few vector moves each: a single copy of a value larger
/// than that (an ended span is 144 bytes) becomes a call to `memcpy`.
///
/// # Safety
///
/// As for `std::ptr::copy_nonoverlapping(src, dst, 1)`.
#[inline(always)]
pub(super) unsafe fn copy_in_pieces<T>(src: *const T, dst: *mut T) {
    const PIECE: usize = 128;
    let (src, dst) = (src.cast::<u8>(), dst.cast::<u8>());
    let mut offset = 0;
    while std::mem::size_of::<T>() - offset > PIECE {
        // SAFETY: `offset + PIECE` is within the `T` at both ends (the caller's
        // contract), which do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.add(offset), dst.add(offset), PIECE) };
        offset += PIECE;
    }
    // SAFETY: as above, for the rest of the `T`.
    unsafe {
        std::ptr::copy_nonoverlapping(
            src.add(offset),
            dst.add(offset),
            std::mem::size_of::<T>() - offset,
        )
    };
}

impl<T> Drop for BoundedQueue<T> {
    fn drop(&mut self) {
        if !std::mem::needs_drop::<T>() {
            return;
        }
        // `&mut self`: no push or pop is in flight, so every position from
        // `head` to `tail` holds a published value.
        let mut position = self.head.load(Ordering::Relaxed);
        for _ in 0..self.len() {
            let slot = self.slot(position);
            // SAFETY: the position lies between `head` and `tail` with no
            // operation in flight, so its value is initialised and unowned;
            // it is dropped once because the queue is going away.
            slot.value
                .with_mut(|cell| unsafe { (*cell).assume_init_drop() });
            position = self.next(position);
        }
    }
}

impl<T> fmt::Debug for BoundedQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedQueue")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
