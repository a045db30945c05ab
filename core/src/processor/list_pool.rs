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
//! spans their queue and export batch hold ([`provision`]), and the pool, made
//! when the first span takes a list, holds that many. A smaller pool frees the
//! lists of a burst and allocates them again later, and with fewer lists in
//! circulation each comes back to an application thread sooner after the
//! worker last touched it (measured in `docs/queue.md`).

use crate::config::MAX_QUEUE_SIZE;
use crate::data::KeyValue;
use crate::sync::BoundedQueue;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Lists parked at least (a default queue and batch of spans hold 2560).
const MIN_CAPACITY: usize = 2048;
/// Lists parked at most, as the largest batch queue allowed.
const MAX_CAPACITY: usize = MAX_QUEUE_SIZE;
/// Larger lists are freed rather than kept.
const MAX_KEPT_CAPACITY: usize = 16;

/// Spans that the live batch processors hold at most, queued or exporting.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// A batch processor that can hold `spans` spans at once starts.
pub(crate) fn provision(spans: usize) {
    IN_FLIGHT.fetch_add(spans, Ordering::Relaxed);
}

/// A batch processor counted by [`provision`] is gone.
pub(crate) fn unprovision(spans: usize) {
    IN_FLIGHT.fetch_sub(spans, Ordering::Relaxed);
}

/// How many lists the pool keeps for `in_flight` spans.
fn capacity_for(in_flight: usize) -> usize {
    in_flight.clamp(MIN_CAPACITY, MAX_CAPACITY)
}

fn pool() -> &'static BoundedQueue<Vec<KeyValue>> {
    static POOL: OnceLock<BoundedQueue<Vec<KeyValue>>> = OnceLock::new();
    POOL.get_or_init(|| {
        BoundedQueue::with_capacity(capacity_for(IN_FLIGHT.load(Ordering::Relaxed)))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_a_list_for_each_span_in_flight_within_bounds() {
        assert_eq!(capacity_for(0), 2048);
        assert_eq!(capacity_for(65536 + 512), 66048);
        assert_eq!(capacity_for(usize::MAX), MAX_QUEUE_SIZE);
    }
}
