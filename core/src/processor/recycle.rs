//! Attribute lists and span details recycled from exported spans.
//!
//! A span's attribute list, and the details of a span with events, links or a
//! status, are allocated on the application thread and were freed by the
//! batch worker after export. With the system allocator that pattern makes
//! both threads take the same arena lock for every span (hundreds of
//! nanoseconds when they collide, and a futex wake-up for the application
//! thread when the worker waits). Instead, the worker clears exported lists
//! and details and parks them here, and the next span on any thread takes
//! one: in steady state a span with attributes, events or a status allocates
//! nothing for them.
//!
//! Each kind has its own pool, and each pool keeps one item for every span in
//! flight: batch processors count the spans their queue and export batch hold
//! ([`provision`] when they start, [`unprovision`] when they shut down), and
//! the pools follow the processors alive: each moves to a larger pool, or a
//! smaller one that frees the items that do not fit. The pool in use is one
//! atomic load away, so application threads take no lock and allocate nothing
//! to find it. A smaller pool frees the items of a burst and allocates them
//! again later, and with fewer items in circulation each comes back to an
//! application thread sooner after the worker last touched it (measured in
//! `docs/queue.md`).

use crate::config::MAX_QUEUE_SIZE;
use crate::data::{KeyValue, SpanDetails, Status, Str, Value};
use crate::sync::BoundedQueue;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Items parked at least (a default queue and batch of spans hold 2560).
const MIN_CAPACITY: usize = 2048;

/// Pool sizes: `MIN_CAPACITY << level`, up to the largest batch queue allowed.
const LEVELS: usize = (MAX_QUEUE_SIZE / MIN_CAPACITY).ilog2() as usize + 1;

/// Larger attribute lists are freed rather than kept. Up to it, a list that a
/// span grew comes back at its size, so spans with many attributes (an HTTP
/// server span's 20 or so) reuse lists as small ones do, instead of each
/// growing a new one on the application thread and the batch thread freeing
/// it (with 17 attributes and lists kept up to 16, a span cost 2-3 times as
/// much, and the queue overflowed). Lists only grow, and the pool hands them
/// out in turn, so spans with many attributes, even occasional ones, enlarge
/// the lists of the others over time: the pool's memory is bounded by its
/// slots times this capacity (3.5 KiB of attributes a list), not by what the
/// spans in flight hold.
const MAX_KEPT_ATTRIBUTES: usize = 64;

/// Details with room for more events (or links) are freed rather than kept.
const MAX_KEPT_EVENTS: usize = 8;

/// Spans that the live batch processors hold at most, queued or exporting.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Serializes changes of the pools in use.
static RESIZE: Mutex<()> = Mutex::new(());

static LISTS: Pools<Vec<KeyValue>> = Pools::new();
static DETAILS: Pools<Box<SpanDetails>> = Pools::new();

/// The pools of one kind of item, one per size, each made when first needed
/// and never freed (a thread may still be using the one it loaded): at most
/// twice the largest pool's slots.
struct Pools<T> {
    levels: [OnceLock<BoundedQueue<T>>; LEVELS],
    /// The level of the pool in use. Its `OnceLock` is set before this is
    /// stored.
    current: AtomicUsize,
}

impl<T> Pools<T> {
    const fn new() -> Self {
        Pools {
            levels: [const { OnceLock::new() }; LEVELS],
            current: AtomicUsize::new(0),
        }
    }

    fn at(&self, level: usize) -> &BoundedQueue<T> {
        self.levels[level].get_or_init(|| BoundedQueue::with_capacity(MIN_CAPACITY << level))
    }

    /// The pool in use, made at the size the live processors need when the
    /// first item is taken.
    #[inline]
    fn get(&self) -> &BoundedQueue<T> {
        match self.levels[self.current.load(Ordering::Acquire)].get() {
            Some(pool) => pool,
            None => self.first(),
        }
    }

    #[cold]
    fn first(&self) -> &BoundedQueue<T> {
        let _resizing = RESIZE.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current.load(Ordering::Acquire);
        if let Some(pool) = self.levels[current].get() {
            return pool;
        }
        let level = level_for(IN_FLIGHT.load(Ordering::Relaxed));
        let pool = self.at(level);
        self.current.store(level, Ordering::Release);
        pool
    }

    /// Moves to the pool at `level`, if one is in use: the parked items move
    /// along, those that do not fit are freed, and items that a thread parked
    /// meanwhile in an older pool are collected. Called with `RESIZE` held.
    fn follow(&self, level: usize) {
        let current = self.current.load(Ordering::Acquire);
        if self.levels[current].get().is_none() {
            // Nothing taken yet: the first take makes the pool at the right size.
            return;
        }
        if level == current {
            return;
        }
        let to = self.at(level);
        self.current.store(level, Ordering::Release);
        for (_, from) in self.levels.iter().enumerate().filter(|&(l, _)| l != level) {
            let Some(from) = from.get() else { continue };
            while let Some(item) = from.pop_ready() {
                // A full pool: the item is freed.
                let _ = to.push(item);
            }
        }
    }
}

/// A batch processor that can hold `spans` spans at once starts: the pools
/// grow to keep an item of each kind for each.
pub(crate) fn provision(spans: usize) {
    IN_FLIGHT.fetch_add(spans, Ordering::Relaxed);
    follow_in_flight();
}

/// A batch processor counted by [`provision`] has shut down: the pools let
/// go of the items they no longer need.
pub(crate) fn unprovision(spans: usize) {
    IN_FLIGHT.fetch_sub(spans, Ordering::Relaxed);
    follow_in_flight();
}

/// The pool level that keeps an item for each of `in_flight` spans (at least
/// [`MIN_CAPACITY`], at most [`MAX_QUEUE_SIZE`]).
fn level_for(in_flight: usize) -> usize {
    let items = in_flight.clamp(MIN_CAPACITY, MAX_QUEUE_SIZE);
    items.div_ceil(MIN_CAPACITY).next_power_of_two().ilog2() as usize
}

/// Moves both kinds to the pool sized for the processors alive now.
fn follow_in_flight() {
    let _resizing = RESIZE.lock().unwrap_or_else(|e| e.into_inner());
    let level = level_for(IN_FLIGHT.load(Ordering::Relaxed));
    LISTS.follow(level);
    DETAILS.follow(level);
}

/// An empty attribute list, recycled when one is available. Its memory,
/// which the batch thread read last, is fetched for writing at once: a
/// `tracing` span writing 9 attributes into it took 12-14% less time
/// (`profile_tracing span_4fields`, medians of 12 alternating runs, twice).
#[inline]
pub(crate) fn take_list() -> Vec<KeyValue> {
    let list: Vec<KeyValue> = LISTS.get().pop_ready().unwrap_or_default();
    crate::sync::prefetch::for_write(
        list.as_ptr().cast(),
        list.capacity() * std::mem::size_of::<KeyValue>(),
    );
    list
}

/// `list`'s attributes in a recycled list, if `list` was allocated at its
/// exact size (as `vec![..]` makes it) and a parked list has room for them:
/// `list` itself is then freed here, most likely on the thread that
/// allocated it, whose allocator hands its memory back at the next
/// allocation of that size. Kept as it is, it would be freed by the batch
/// thread, and memory freed on another thread is what made every `vec![..]`
/// of an event go through the allocator's slow path (`profile_span runtrace
/// root_event`: a fifth of the application thread's samples). A list with
/// spare room, such as one from `Tracer::attribute_list`, is kept as it is.
#[inline]
pub(crate) fn into_recycled(list: Vec<KeyValue>) -> Vec<KeyValue> {
    if list.is_empty() || list.len() != list.capacity() {
        return list;
    }
    let mut recycled = take_list();
    if recycled.capacity() < list.len() {
        give_list(recycled);
        return list;
    }
    recycled.extend(list);
    recycled
}

/// Clears `list` and parks it for reuse (or frees it if it is large or the
/// pool is full).
#[inline]
pub(crate) fn give_list(list: Vec<KeyValue>) {
    if list.capacity() == 0 {
        // Nothing allocated: nothing to free or keep.
        std::mem::forget(list);
    } else {
        park_list(list);
    }
}

fn park_list(mut list: Vec<KeyValue>) {
    if list.capacity() <= MAX_KEPT_ATTRIBUTES {
        clear(&mut list);
        let _ = LISTS.get().push(list);
    }
}

/// Empties `list`. Most attributes own no memory (static or inline strings,
/// numbers, booleans): those are forgotten, and only the others go through
/// their drop glue, which `Vec::clear` calls out of line for every value.
#[inline]
fn clear(list: &mut Vec<KeyValue>) {
    for kv in list.drain(..) {
        if owns_memory(&kv) {
            drop(kv);
        } else {
            std::mem::forget(kv);
        }
    }
}

/// Whether dropping `kv` frees or releases anything.
#[inline]
fn owns_memory(kv: &KeyValue) -> bool {
    matches!(kv.key, Str::Shared(_))
        || match &kv.value {
            Value::String(s) => matches!(s, Str::Shared(_)),
            Value::Array(_) => true,
            Value::Bool(_) | Value::I64(_) | Value::F64(_) => false,
        }
}

/// Empty span details (no events, links or status), recycled when available.
#[inline]
pub(crate) fn take_details() -> Box<SpanDetails> {
    DETAILS.get().pop_ready().unwrap_or_default()
}

/// Clears `details` and parks them for reuse, their events' attribute lists
/// with the lists (or frees them if they are large or the pool is full).
pub(crate) fn give_details(mut details: Box<SpanDetails>) {
    for event in details.events.drain(..) {
        give_list(event.attributes);
    }
    if details.events.capacity() > MAX_KEPT_EVENTS || details.links.capacity() > MAX_KEPT_EVENTS {
        return;
    }
    let SpanDetails {
        events: _,
        dropped_events_count,
        links,
        dropped_links_count,
        status,
    } = &mut *details;
    *dropped_events_count = 0;
    links.clear();
    *dropped_links_count = 0;
    *status = Status::Unset;
    let _ = DETAILS.get().push(details);
}

/// Items parked in the pools in use, and their capacity.
#[cfg(test)]
fn parked_and_capacity() -> ((usize, usize), (usize, usize)) {
    let (lists, details) = (LISTS.get(), DETAILS.get());
    (
        (lists.len(), lists.capacity()),
        (details.len(), details.capacity()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Event;

    #[test]
    fn the_pools_keep_an_item_for_each_span_in_flight_within_bounds() {
        assert_eq!(MIN_CAPACITY << level_for(0), 2048);
        assert_eq!(MIN_CAPACITY << level_for(2048), 2048);
        assert_eq!(MIN_CAPACITY << level_for(2049), 4096);
        assert_eq!(MIN_CAPACITY << level_for(2 * 65536 + 512), 262_144);
        assert_eq!(MIN_CAPACITY << level_for(usize::MAX), MAX_QUEUE_SIZE);
        assert_eq!(level_for(usize::MAX), LEVELS - 1);
    }

    /// The one test here that changes the process-wide pools (the others in
    /// this crate only take and give items, which any size serves).
    #[test]
    fn the_pools_grow_and_shrink_with_the_processors_alive() {
        // Other tests' batch processors provision 200,100 spans at most, so
        // a million decides the size whether or not they run meanwhile.
        give_list(vec![KeyValue::new("k", 1)]);
        give_details(Box::default());
        let ((_, lists_before), (_, details_before)) = parked_and_capacity();
        let spans = 1_000_000;
        provision(spans);
        let ((_, lists), (_, details)) = parked_and_capacity();
        assert!(lists >= spans && lists > lists_before, "{lists} lists");
        assert!(
            details >= spans && details > details_before,
            "{details} details"
        );
        for _ in 0..10_000 {
            give_list(Vec::with_capacity(4));
            give_details(Box::default());
        }
        unprovision(spans);
        let ((parked_lists, lists), (parked_details, details)) = parked_and_capacity();
        assert!(lists < spans, "the list pool stayed at {lists}");
        assert!(details < spans, "the details pool stayed at {details}");
        assert!(parked_lists <= lists && parked_details <= details);
    }

    #[test]
    fn parked_lists_release_what_their_attributes_hold() {
        use crate::data::Array;
        use std::sync::Arc;
        let key: Arc<str> = Arc::from("a key longer than twenty-two bytes");
        let text: Arc<str> = Arc::from("a value longer than twenty-two bytes");
        let list = vec![
            KeyValue::new("static", 1),
            KeyValue {
                key: Str::Shared(key.clone()),
                value: Value::Bool(true),
            },
            KeyValue::new("text", Value::String(Str::Shared(text.clone()))),
            KeyValue::new(
                "array",
                Value::Array(Array::String(vec![Str::Shared(text.clone())])),
            ),
        ];
        assert_eq!((Arc::strong_count(&key), Arc::strong_count(&text)), (2, 3));
        give_list(list);
        assert_eq!((Arc::strong_count(&key), Arc::strong_count(&text)), (1, 1));
    }

    #[test]
    fn exact_size_lists_move_into_recycled_ones_and_others_stay() {
        let mut spare = Vec::with_capacity(4);
        spare.push(KeyValue::new("kept", 1));
        let at = spare.as_ptr();
        let kept = into_recycled(spare);
        assert_eq!(kept.as_ptr(), at, "a list with room stays");
        assert!(into_recycled(Vec::new()).is_empty());
        let expected = [KeyValue::new("a", 1), KeyValue::new("b", "text")];
        for _ in 0..4 {
            // Parked lists (other tests take and park some too): the
            // attributes arrive, in order, in one of them or in their own.
            give_list(Vec::with_capacity(8));
            let exact = expected.to_vec();
            assert_eq!(exact.len(), exact.capacity());
            assert_eq!(into_recycled(exact), expected);
        }
    }

    #[test]
    fn details_with_room_for_many_events_are_freed_not_kept() {
        let mut big = Box::<SpanDetails>::default();
        big.events.reserve_exact(MAX_KEPT_EVENTS + 1);
        give_details(big);
        // Whatever comes back (other tests park details too) is not it.
        for _ in 0..4 {
            let details = take_details();
            assert!(details.events.capacity() <= MAX_KEPT_EVENTS);
        }
    }

    #[test]
    fn recycled_details_come_back_empty() {
        let mut details = take_details();
        details.events.push(Event {
            name: "e".into(),
            time_unix_nano: 1,
            attributes: vec![KeyValue::new("k", 1)],
            dropped_attributes_count: 0,
        });
        details.dropped_events_count = 2;
        details.dropped_links_count = 3;
        details.status = Status::error("boom");
        give_details(details);
        // Whichever details come back (other tests park some too), they are
        // empty.
        for _ in 0..4 {
            let details = take_details();
            assert_eq!(*details, SpanDetails::default());
        }
    }
}
