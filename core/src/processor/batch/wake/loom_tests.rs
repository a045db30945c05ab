//! A loom model of the wake-up protocol: a thread pushing into its lane, a
//! thread pushing into the shared queue and the worker going to sleep, in
//! every interleaving and every outcome the memory model allows. The queue's
//! lengths are modelled by two counters with the orderings the real ones use
//! (a lane's tail is stored with Release and loaded with Acquire; the shared
//! queue's positions are Relaxed).

use super::*;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

#[derive(Default)]
struct Lengths {
    lanes: AtomicUsize,
    queue: AtomicUsize,
}

impl QueueLengths for Lengths {
    fn lanes_len(&self) -> usize {
        self.lanes.load(Ordering::Acquire)
    }
    fn queue_len(&self) -> usize {
        self.queue.load(Ordering::Relaxed)
    }
}

/// The batch (4 spans) is completed by 2 lane spans and 2 shared-queue spans
/// pushed while the worker goes to sleep: either the worker sees a full batch
/// and does not park, or a producer wakes it.
///
/// Bounded to 3 preemptions, as the queue's models: the full search took
/// about 6 minutes, and the bounded one still fails without the worker's
/// recount of the lanes after its fence (checked by mutation).
#[test]
fn no_wake_up_is_lost_between_lanes_the_shared_queue_and_the_worker() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(3);
    builder.check(|| {
        let wake = Arc::new(WakeUp::new(4));
        let queue = Arc::new(Lengths::default());
        let woken = Arc::new(AtomicBool::new(false));
        let lane = {
            let (wake, queue, woken) = (wake.clone(), queue.clone(), woken.clone());
            thread::spawn(move || {
                queue.lanes.store(2, Ordering::Release);
                if wake.after_push(Pushed::Lane(2), &*queue) {
                    woken.store(true, Ordering::Relaxed);
                }
            })
        };
        let shared = {
            let (wake, queue, woken) = (wake.clone(), queue.clone(), woken.clone());
            thread::spawn(move || {
                queue.queue.fetch_add(2, Ordering::Relaxed);
                if wake.after_push(Pushed::Queue, &*queue) {
                    woken.store(true, Ordering::Relaxed);
                }
            })
        };
        // The worker, going to sleep until 4 spans are queued.
        wake.snapshot_lanes(&*queue);
        let parks = wake.announce(4, &*queue) < 4;
        lane.join().unwrap();
        shared.join().unwrap();
        assert!(
            !parks || woken.load(Ordering::Relaxed),
            "the worker parks with a full batch queued and nobody wakes it"
        );
    });
}
