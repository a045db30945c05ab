//! The crate's lock-free building blocks, and every line of its `unsafe` code
//! but the clock's. They know nothing of spans: each is generic over what it
//! carries, and imports nothing from the rest of the crate.
//!
//! - [`queue`]: [`BoundedQueue`], Vyukov's bounded multi-producer queue, which
//!   every thread can push into.
//! - [`lanes`]: per-thread single-producer rings ([`Lanes`]) and how a thread
//!   binds to one, so that threads ending spans at once share no cache line.
//! - [`counted`]: [`CountedRef`], a shared reference with biased counting and
//!   batched release, for the one reference every span holds to its scope.
//! - [`zeroed`]: a zeroed buffer that costs memory only once written, for
//!   the queue's slots.
//! - [`pinned`]: [`Instrumented`], a future with a state acting around each
//!   poll: the pin projection of `FutureExt`'s adapters.
//! - [`vec`]: [`vec::push_making_room`], a push whose growth is the caller's.
//! - [`prefetch`]: [`prefetch::for_write`], a hint that memory another core
//!   touched last is about to be written.
//! - [`frames`]: [`Frames`], a thread's stack of values lent for the length
//!   of a call, linked through the callers' stack frames: how a poll or an
//!   `in_span` call makes its context and span current.
//!
//! Their protocols are model-checked with loom (`loom_tests`, and the batch
//! processor's wake-up protocol beside it) and their tests run under miri; the
//! commands are in the README.

pub(crate) mod atomics;
pub(crate) mod counted;
pub(crate) mod frames;
pub(crate) mod lanes;
pub(crate) mod pinned;
pub(crate) mod prefetch;
pub(crate) mod queue;
pub(crate) mod vec;
#[cfg(not(all(loom, test)))]
mod zeroed;

pub(crate) use counted::{CountedRef, RefRun};
pub(crate) use frames::Frames;
pub(crate) use lanes::{LanePush, Lanes, Marks};
pub(crate) use pinned::AroundPoll;
pub use pinned::Instrumented;
pub(crate) use queue::BoundedQueue;

/// The shared queue, for the queue benchmark only: not a public API.
#[cfg(feature = "bench-internals")]
pub mod bench_internals {
    pub use super::queue::BoundedQueue;
}

#[cfg(all(test, loom))]
mod loom_tests;
