//! Attribute lists recycled from exported spans.
//!
//! A span's attribute list is allocated on the application thread and freed by
//! the batch worker after export. With the system allocator that pattern makes
//! both threads take the same arena lock for every span (hundreds of
//! nanoseconds when they collide). Instead, the worker clears exported lists
//! and parks them here, and the next span on any thread takes one: in steady
//! state a span with attributes allocates nothing.
//!
//! The pool keeps a list for every span in flight: batch processors count the
//! spans their queue and export batch hold ([`provision`] when they start,
//! [`unprovision`] when they shut down), and the pool follows the processors
//! alive: it moves to a larger pool, or a smaller one that frees the lists that
//! do not fit. The pool in use is one atomic load away, so application threads
//! take no lock and allocate nothing to find it. A smaller pool frees the
//! lists of a burst and allocates them again later, and with fewer lists in
//! circulation each comes back to an application thread sooner after the
//! worker last touched it (measured in `docs/queue.md`).

use crate::config::MAX_QUEUE_SIZE;
use crate::data::KeyValue;
use crate::sync::BoundedQueue;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Lists parked at least (a default queue and batch of spans hold 2560).
const MIN_CAPACITY: usize = 2048;
/// Pool sizes: `MIN_CAPACITY << level`, up to the largest batch queue allowed.
const LEVELS: usize = (MAX_QUEUE_SIZE / MIN_CAPACITY).ilog2() as usize + 1;
/// Larger lists are freed rather than kept.
const MAX_KEPT_CAPACITY: usize = 16;

/// Spans that the live batch processors hold at most, queued or exporting.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// One pool per size, made when first needed and never freed (a thread may
/// still be using the one it loaded): at most twice the largest pool's slots.
static POOLS: [OnceLock<BoundedQueue<Vec<KeyValue>>>; LEVELS] = [const { OnceLock::new() }; LEVELS];

/// The level of the pool in use. Its `OnceLock` is set before this is stored.
static CURRENT: AtomicUsize = AtomicUsize::new(0);

/// Serializes changes of the pool in use.
static RESIZE: Mutex<()> = Mutex::new(());

/// A batch processor that can hold `spans` spans at once starts: the pool
/// grows to keep a list for each.
pub(crate) fn provision(spans: usize) {
    IN_FLIGHT.fetch_add(spans, Ordering::Relaxed);
    follow_in_flight();
}

/// A batch processor counted by [`provision`] has shut down: the pool lets
/// go of the lists it no longer needs.
pub(crate) fn unprovision(spans: usize) {
    IN_FLIGHT.fetch_sub(spans, Ordering::Relaxed);
    follow_in_flight();
}

/// The pool level that keeps a list for each of `in_flight` spans (at least
/// [`MIN_CAPACITY`], at most [`MAX_QUEUE_SIZE`]).
fn level_for(in_flight: usize) -> usize {
    let lists = in_flight.clamp(MIN_CAPACITY, MAX_QUEUE_SIZE);
    lists.div_ceil(MIN_CAPACITY).next_power_of_two().ilog2() as usize
}

fn pool_at(level: usize) -> &'static BoundedQueue<Vec<KeyValue>> {
    POOLS[level].get_or_init(|| BoundedQueue::with_capacity(MIN_CAPACITY << level))
}

/// The pool in use, made at the size the live processors need when the
/// first list is taken.
#[inline]
fn pool() -> &'static BoundedQueue<Vec<KeyValue>> {
    match POOLS[CURRENT.load(Ordering::Acquire)].get() {
        Some(pool) => pool,
        None => first_pool(),
    }
}

#[cold]
fn first_pool() -> &'static BoundedQueue<Vec<KeyValue>> {
    let _resizing = RESIZE.lock().unwrap_or_else(|e| e.into_inner());
    let current = CURRENT.load(Ordering::Acquire);
    if let Some(pool) = POOLS[current].get() {
        return pool;
    }
    let level = level_for(IN_FLIGHT.load(Ordering::Relaxed));
    let pool = pool_at(level);
    CURRENT.store(level, Ordering::Release);
    pool
}

/// Moves to the pool sized for the processors alive now, if one is in use:
/// the parked lists move along, those that do not fit are freed, and lists
/// that a thread parked meanwhile in an older pool are collected.
fn follow_in_flight() {
    let _resizing = RESIZE.lock().unwrap_or_else(|e| e.into_inner());
    let current = CURRENT.load(Ordering::Acquire);
    if POOLS[current].get().is_none() {
        // No list taken yet: the first one makes the pool at the right size.
        return;
    }
    let level = level_for(IN_FLIGHT.load(Ordering::Relaxed));
    if level == current {
        return;
    }
    let to = pool_at(level);
    CURRENT.store(level, Ordering::Release);
    for (_, from) in POOLS.iter().enumerate().filter(|&(l, _)| l != level) {
        let Some(from) = from.get() else { continue };
        while let Some(list) = from.pop_ready() {
            // A full pool: the list is freed.
            let _ = to.push(list);
        }
    }
}

/// An empty list, recycled when one is available.
#[inline]
pub(crate) fn take() -> Vec<KeyValue> {
    pool().pop_ready().unwrap_or_default()
}

/// Clears `list` and parks it for reuse (or frees it if it is large or the
/// pool is full).
#[inline]
pub(crate) fn give(list: Vec<KeyValue>) {
    if list.capacity() == 0 {
        // Nothing allocated: nothing to free or keep.
        std::mem::forget(list);
    } else {
        park(list);
    }
}

fn park(mut list: Vec<KeyValue>) {
    if list.capacity() <= MAX_KEPT_CAPACITY {
        list.clear();
        let _ = pool().push(list);
    }
}

/// Lists parked in the pool in use, and its capacity.
#[cfg(test)]
fn parked_and_capacity() -> (usize, usize) {
    let pool = pool();
    (pool.len(), pool.capacity())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_a_list_for_each_span_in_flight_within_bounds() {
        assert_eq!(MIN_CAPACITY << level_for(0), 2048);
        assert_eq!(MIN_CAPACITY << level_for(2048), 2048);
        assert_eq!(MIN_CAPACITY << level_for(2049), 4096);
        assert_eq!(MIN_CAPACITY << level_for(2 * 65536 + 512), 262_144);
        assert_eq!(MIN_CAPACITY << level_for(usize::MAX), MAX_QUEUE_SIZE);
        assert_eq!(level_for(usize::MAX), LEVELS - 1);
    }

    /// The one test here that changes the process-wide pool (the others in
    /// this crate only take and give lists, which any size serves).
    #[test]
    fn the_pool_grows_and_shrinks_with_the_processors_alive() {
        // Other tests' batch processors provision 200,100 spans at most, so
        // a million decides the size whether or not they run meanwhile.
        give(vec![KeyValue::new("k", 1)]);
        let (_, before) = parked_and_capacity();
        let spans = 1_000_000;
        provision(spans);
        let (_, grown) = parked_and_capacity();
        assert!(
            grown >= spans && grown > before,
            "{grown} lists for {spans} spans"
        );
        for _ in 0..10_000 {
            give(Vec::with_capacity(4));
        }
        unprovision(spans);
        let (parked, shrunk) = parked_and_capacity();
        assert!(shrunk < spans, "the pool stayed at {shrunk} lists");
        assert!(parked <= shrunk);
    }
}
