//! The wake-up protocol between application threads and the batch worker, both
//! sides: how a producer decides to wake the sleeping worker, and how the
//! worker goes to sleep without missing a full batch.
//!
//! Waking a sleeping thread costs the waker a system call, so producers must
//! not do it per span. Before the worker sleeps it publishes the queue length
//! at which it wants waking (`wanted`, the scheme of OpenTelemetry Java's batch
//! processor); a producer that sees the queue reach it wins the right to wake
//! the worker with one compare-and-swap, so it is woken about once per batch.
//!
//! The queue has two parts (see `docs/queue.md` for the terms):
//!
//! - A thread with a *lane* makes a *wake check* only every `step` pushes (a
//!   power of two; a check costs a fence). So up to `lanes × (step − 1)` spans
//!   may sit in lanes unseen: the worker asks to be woken that much early, and
//!   when the queue is already that close it sleeps at most [`LOOK_AGAIN`].
//!   The step shrinks as lanes are made ([`WakeUp::lanes_made`]), so unseen
//!   pushes stay under a quarter of a batch.
//! - A thread without a lane pushes into the shared queue and checks at every
//!   push, but does not add up every lane (a cache line each): it counts the
//!   lanes as the last snapshot says (`lanes_seen`), which the worker takes
//!   before it sleeps and every lane check raises.
//!
//! Lost wake-ups are ruled out by a Dekker-style pairing of SeqCst fences: a
//! producer stores its span, fences, then reads `wanted`; the worker stores
//! `wanted`, fences, then reads the queue. Either the worker sees the span, or
//! the producer sees `wanted`. The snapshot of the lanes is published the same
//! way on both sides (store, fence, then read the shared queue), so a push into
//! the shared queue either counts a lane's spans or is counted with them.
//! A loom model of all three (a lane producer, a shared-queue producer and the
//! worker) is in `wake/loom_tests.rs`.

use crate::sync::atomics::{fence, AtomicUsize, Ordering};
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Duration;

/// `wanted` while the worker is awake: producers never wake it.
const AWAKE: usize = usize::MAX;

/// Lane pushes since their last wake checks stay under this fraction of a
/// batch, together (see [`wake_check_step`]).
const UNSEEN_PER_BATCH: usize = 4;

/// How long the worker sleeps when the queue is close enough to a full batch
/// that pushes nobody checked may complete it.
pub(super) const LOOK_AGAIN: Duration = Duration::from_millis(10);

/// How many pushes into a lane between two wake checks when `lanes` lanes are
/// made: a power of two, at most the batch size / ([`UNSEEN_PER_BATCH`] ×
/// lanes), at least one.
fn wake_check_step(batch_size: usize, lanes: usize) -> usize {
    let step = (batch_size / (UNSEEN_PER_BATCH * lanes.max(1))).max(1);
    1 << step.ilog2()
}

/// What the protocol reads of the queue.
pub(super) trait QueueLengths {
    /// Spans in the lanes (a cache line per lane).
    fn lanes_len(&self) -> usize;
    /// Spans in the shared queue.
    fn queue_len(&self) -> usize;
}

/// Where a producer's span went.
#[derive(Clone, Copy, Debug)]
pub(super) enum Pushed {
    /// Into the thread's lane, whose push count is this.
    Lane(usize),
    /// Into the shared queue.
    Queue,
}

/// The state both sides share.
#[derive(Debug)]
pub(super) struct WakeUp {
    /// The queue length at which the sleeping worker wants waking, or `AWAKE`.
    wanted: AtomicUsize,
    /// Spans in the lanes, as the worker saw them when it last went to sleep,
    /// or a lane's wake check saw them since (whichever is more).
    lanes_seen: AtomicUsize,
    /// A lane's push makes a wake check when the lane's push count is a
    /// multiple of `wake_check_mask + 1` ([`wake_check_step`]).
    wake_check_mask: AtomicUsize,
    /// The worker thread, unparked to wake it (no lock involved).
    worker: OnceLock<Thread>,
    /// Wake-ups made by producers (not by flush or shutdown requests).
    producer_wakeups: AtomicU64,
}

impl WakeUp {
    /// The state for batches of `batch_size` spans and one lane.
    pub(super) fn new(batch_size: usize) -> Self {
        WakeUp {
            wanted: AtomicUsize::new(AWAKE),
            lanes_seen: AtomicUsize::new(0),
            wake_check_mask: AtomicUsize::new(wake_check_step(batch_size, 1) - 1),
            worker: OnceLock::new(),
            producer_wakeups: AtomicU64::new(0),
        }
    }

    /// Names the worker thread to unpark.
    pub(super) fn set_worker(&self, worker: Thread) {
        let _ = self.worker.set(worker);
    }

    /// Wakes the worker whatever it waits for (a flush or shutdown request,
    /// recorded before this call: the park token is kept if it is not asleep).
    pub(super) fn wake(&self) {
        if let Some(t) = self.worker.get() {
            t.unpark();
        }
    }

    /// Wake-ups made by producers so far.
    #[cfg(test)]
    pub(super) fn producer_wakeups(&self) -> u64 {
        self.producer_wakeups
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    // --- The producer's side. ---

    /// After a push: makes a wake check if one is due, and wakes the worker if
    /// it sleeps and the queue holds what it waits for. Returns whether this
    /// call woke it.
    #[inline]
    pub(super) fn after_push(&self, pushed: Pushed, queue: &impl QueueLengths) -> bool {
        if let Pushed::Lane(count) = pushed {
            if count & self.wake_check_mask.load(Ordering::Relaxed) != 0 {
                return false;
            }
        }
        self.wake_check(pushed, queue)
    }

    /// The wake check itself.
    #[inline]
    fn wake_check(&self, pushed: Pushed, queue: &impl QueueLengths) -> bool {
        // Pairs with the fence in `announce`: either the worker sees our span
        // when it reads the queue, or we see its `wanted`.
        fence(Ordering::SeqCst);
        // Acquire: pairs with the worker's Release, for `lanes_seen`.
        let wanted = self.wanted.load(Ordering::Acquire);
        if wanted == AWAKE {
            return false;
        }
        let queued = match pushed {
            Pushed::Lane(_) => {
                let lanes = queue.lanes_len();
                // Published before the fence, and the shared queue read after
                // it: a concurrent shared-queue push either sees these lanes
                // or has its span seen here.
                self.lanes_seen.fetch_max(lanes, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                lanes + queue.queue_len()
            }
            // The lanes as last seen: adding them up again would read a cache
            // line of every lane at every such push.
            Pushed::Queue => queue.queue_len() + self.lanes_seen.load(Ordering::Relaxed),
        };
        if queued >= wanted
            && self
                .wanted
                .compare_exchange(wanted, AWAKE, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.producer_wakeups
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.wake();
            return true;
        }
        false
    }

    // --- The worker's side. ---

    /// `lanes` lanes are made now: wake checks come more often, so that the
    /// lanes' unseen pushes together stay the same.
    pub(super) fn lanes_made(&self, batch_size: usize, lanes: usize) {
        let step = wake_check_step(batch_size, lanes);
        self.wake_check_mask.store(step - 1, Ordering::Relaxed);
    }

    /// Sleeps until a producer wakes the worker at `wake_at` queued spans, a
    /// request unparks it, or `timeout` passes. `lanes` lanes are made; the
    /// worker has no use in waking before `batch_size` spans.
    pub(super) fn sleep(
        &self,
        wake_at: usize,
        timeout: Duration,
        batch_size: usize,
        lanes: usize,
        queue: &impl QueueLengths,
    ) {
        let len = self.snapshot_lanes(queue);
        // Lane pushes since their wake checks may complete the batch unseen:
        // ask to be woken that much early, or, if the queue is that close
        // already, look again soon.
        let unseen = lanes * self.wake_check_mask.load(Ordering::Relaxed);
        let early = wake_at.saturating_sub(unseen).max(1);
        let (wake_at, timeout) = if len >= early {
            (wake_at, timeout.min(LOOK_AGAIN))
        } else {
            (early, timeout)
        };
        let len = self.announce(wake_at, queue);
        if len < batch_size {
            let timeout = if len >= early {
                timeout.min(LOOK_AGAIN)
            } else {
                timeout
            };
            std::thread::park_timeout(timeout);
        }
        self.awake();
    }

    /// First step of going to sleep: takes the snapshot of the lanes that
    /// shared-queue pushes count on. Returns the spans queued now.
    fn snapshot_lanes(&self, queue: &impl QueueLengths) -> usize {
        let lanes = queue.lanes_len();
        self.lanes_seen.store(lanes, Ordering::Relaxed);
        lanes + queue.queue_len()
    }

    /// Second step: publishes `wake_at`, then reads the queue after a fence
    /// (pairing with the producers'), and returns the spans queued. Below a
    /// full batch the worker may park: a producer that completes one wakes it.
    fn announce(&self, wake_at: usize, queue: &impl QueueLengths) -> usize {
        // Release: a producer that sees `wanted` sees `lanes_seen`.
        self.wanted.store(wake_at, Ordering::Release);
        fence(Ordering::SeqCst);
        // As a lane's wake check does: the lanes as seen now (after producers
        // whose checks came before our fence and found us awake) are published
        // before a second fence and the read of the shared queue, so a push
        // into it either counts them or is counted here.
        let lanes = queue.lanes_len();
        self.lanes_seen.fetch_max(lanes, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        lanes + queue.queue_len()
    }

    /// The worker is awake again: producers stop checking `wanted`'s level.
    fn awake(&self) {
        self.wanted.store(AWAKE, Ordering::Relaxed);
    }

    /// Whether the worker has announced a sleep (tests).
    #[cfg(test)]
    pub(super) fn is_asleep(&self) -> bool {
        self.wanted.load(Ordering::Relaxed) != AWAKE
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
