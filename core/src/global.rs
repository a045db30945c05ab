//! The process-wide tracer provider, for code that is not handed one: a
//! library instruments itself with [`global::tracer`](tracer), and the
//! application decides at start-up where its spans go with
//! [`set_tracer_provider`].
//!
//! ```
//! use runtrace::{global, InMemoryExporter, TracerProvider};
//! let exporter = InMemoryExporter::default();
//! global::set_tracer_provider(
//!     TracerProvider::builder().with_simple_exporter(exporter.clone()).build(),
//! );
//! // Anywhere, per request if need be: a cached tracer of the global provider.
//! global::tracer("my-library").in_span("work", |_| {});
//! assert_eq!(exporter.finished_spans().len(), 1);
//! # global::set_tracer_provider(TracerProvider::noop());
//! ```
//!
//! A [`Tracer`] keeps the provider it came from: tracers taken before
//! [`set_tracer_provider`] are no-op tracers and stay so, and tracers taken
//! before a replacement keep sending to the provider they came from (until it
//! shuts down). Take the tracer where it is used (it is cached per thread), or
//! after the provider is set.

use crate::data::Str;
use crate::sdk::{Tracer, TracerProvider};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// The global provider; `None` until one is set.
static PROVIDER: RwLock<Option<TracerProvider>> = RwLock::new(None);

/// Bumped by every [`set_tracer_provider`]: a thread's cached tracers are
/// dropped when it moved.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Tracers a thread took lately, by scope name.
const CACHED_TRACERS: usize = 8;

thread_local! {
    static CACHE: RefCell<TracerCache> = const {
        RefCell::new(TracerCache { generation: 0, tracers: Vec::new() })
    };
}

struct TracerCache {
    generation: u64,
    /// Most recently used last.
    tracers: Vec<(Str, Tracer)>,
}

/// What a thread's cache had for a name.
enum Lookup {
    Hit(Tracer),
    /// Not cached; the tracers of an older provider, to drop.
    Miss(Vec<(Str, Tracer)>),
    /// The cache is borrowed (by a drop that this call runs under it).
    Busy,
}

/// Makes `provider` the global one and returns the previous one, if any (shut
/// it down if nothing else holds it).
pub fn set_tracer_provider(provider: TracerProvider) -> Option<TracerProvider> {
    let mut global = PROVIDER.write().unwrap_or_else(|e| e.into_inner());
    let previous = global.replace(provider);
    GENERATION.fetch_add(1, Ordering::Release);
    previous
}

/// The global provider (a no-op one until [`set_tracer_provider`]).
pub fn tracer_provider() -> TracerProvider {
    let global = PROVIDER.read().unwrap_or_else(|e| e.into_inner());
    global.clone().unwrap_or_else(TracerProvider::noop)
}

/// A tracer of the global provider for the scope `name`: a no-op tracer until
/// a provider is set. Cached per thread, so it is cheap to call per request
/// (a few nanoseconds: the returned tracer's count comes from, and goes back
/// to, the thread's own stock of counts for tracers, with no atomic
/// operation while a thread takes at most two tracers in turn). A replaced
/// provider's memory lives on, shut down, until each thread that used it next
/// calls `tracer` (which lets go of its cached tracers and their counts) and
/// ends a span into another provider, or exits.
pub fn tracer(name: impl Into<Str>) -> Tracer {
    let name = name.into();
    let generation = GENERATION.load(Ordering::Acquire);
    // The common case first: the same tracer as last time on this thread.
    let last = CACHE.try_with(|cache| {
        // Busy: a tracer's drop code, run while the cache is borrowed (see
        // `tracer_slow`), calls this again; it gets an uncached tracer.
        let cache = cache.try_borrow().ok()?;
        match cache.tracers.last() {
            Some((n, tracer)) if cache.generation == generation && *n == name => {
                // Its count from the thread's credits, and given back there
                // when the caller drops it: no atomic operation per call.
                Some(tracer.clone_biased())
            }
            _ => None,
        }
    });
    if let Ok(Some(tracer)) = last {
        return tracer;
    }
    tracer_slow(name, generation)
}

/// [`tracer`] when the thread's last tracer is not the one asked for.
#[inline(never)]
fn tracer_slow(name: Str, generation: u64) -> Tracer {
    let cached = CACHE.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return Lookup::Busy;
        };
        if cache.generation != generation {
            cache.generation = generation;
            // Dropped by the caller, after the borrow: dropping the last
            // handle of a replaced provider shuts it down.
            return Lookup::Miss(std::mem::take(&mut cache.tracers));
        }
        match cache.tracers.iter().rposition(|(n, _)| *n == name) {
            Some(i) => {
                // Moved to the end: the front is the least recently used.
                let entry = cache.tracers.remove(i);
                let tracer = entry.1.clone_biased();
                cache.tracers.push(entry);
                Lookup::Hit(tracer)
            }
            None => Lookup::Miss(Vec::new()),
        }
    });
    match cached {
        Ok(Lookup::Hit(tracer)) => return tracer,
        Ok(Lookup::Miss(stale)) => release(stale),
        // Thread exit (no cache), or the cache busy.
        Err(_) | Ok(Lookup::Busy) => return tracer_provider().tracer(name),
    }
    // Made outside the borrow: the provider may be the last handle of a
    // replaced one, and its tracer's drop glue may run exporter code.
    let tracer = tracer_provider().tracer(name.clone());
    let evicted = CACHE.try_with(|cache| {
        let mut cache = cache.try_borrow_mut().ok()?;
        let evicted = (cache.tracers.len() >= CACHED_TRACERS).then(|| cache.tracers.remove(0));
        if cache.generation == generation {
            cache.tracers.push((name, tracer.clone()));
        }
        evicted
    });
    if let Ok(evicted) = evicted {
        release(evicted);
    }
    tracer
}

/// Drops tracers the cache let go of, with the counts this thread's stock
/// holds on them given back first: a replaced provider is freed now, on this
/// call's path, rather than later on some span's.
fn release(tracers: impl IntoIterator<Item = (Str, Tracer)>) {
    for (_, tracer) in tracers {
        tracer.release_thread_credits();
    }
}
