use super::*;
use std::cell::Cell;

/// Queue lengths set by hand: each test plays the producers and the worker
/// step by step, in one order the threads could take.
#[derive(Default)]
struct Lengths {
    lanes: Cell<usize>,
    queue: Cell<usize>,
}

impl QueueLengths for Lengths {
    fn lanes_len(&self) -> usize {
        self.lanes.get()
    }
    fn queue_len(&self) -> usize {
        self.queue.get()
    }
}

#[test]
fn wake_checks_come_more_often_as_lanes_are_made() {
    // Unseen lane pushes stay under a quarter of a batch, all lanes together.
    assert_eq!(wake_check_step(512, 1), 128);
    assert_eq!(wake_check_step(512, 3), 32);
    assert_eq!(wake_check_step(512, 64), 2);
    assert_eq!(wake_check_step(10, 8), 1);
    let w = WakeUp::new(512);
    let q = Lengths::default();
    w.announce(1, &q);
    q.lanes.set(1);
    assert!(!w.after_push(Pushed::Lane(1), &q), "no check due at push 1");
    w.lanes_made(512, 64);
    assert!(w.after_push(Pushed::Lane(2), &q), "a check every 2 pushes");
}

#[test]
fn the_producer_that_completes_the_batch_wakes_the_worker_once() {
    let w = WakeUp::new(4);
    let q = Lengths::default();
    // Awake: producers never wake it.
    q.queue.set(10);
    assert!(!w.after_push(Pushed::Queue, &q));
    q.queue.set(0);
    assert_eq!(w.snapshot_lanes(&q), 0);
    assert_eq!(w.announce(4, &q), 0);
    let mut wakeups = 0;
    for n in 1..=8 {
        q.queue.set(n);
        wakeups += usize::from(w.after_push(Pushed::Queue, &q));
    }
    assert_eq!(wakeups, 1, "one wake-up: the first push to reach 4");
    assert_eq!(w.producer_wakeups(), 1);
    assert!(!w.is_asleep());
}

/// The race fixed in 66708a7, replayed deterministically: a lane's wake check
/// comes after the worker's snapshot of the lanes but before it announces its
/// sleep, so the check finds the worker awake and publishes nothing. The rest
/// of the batch then arrives through the shared queue, whose pushes count the
/// lanes by the snapshot. Unless the worker raises the snapshot after its
/// fence, nobody wakes it and the batch waits for the schedule delay.
#[test]
fn a_batch_completed_through_the_shared_queue_counts_lane_spans_checked_before_the_sleep() {
    let w = WakeUp::new(512);
    let q = Lengths::default();
    assert_eq!(w.snapshot_lanes(&q), 0);
    // A thread with a lane pushes 100 spans; its check finds the worker awake.
    q.lanes.set(100);
    assert!(!w.after_push(Pushed::Lane(128), &q));
    // The worker announces its sleep and sees less than a batch: it parks.
    assert_eq!(w.announce(512, &q), 100);
    // Threads without a lane complete the batch through the shared queue.
    let woke = (1..=412).any(|n| {
        q.queue.set(n);
        w.after_push(Pushed::Queue, &q)
    });
    assert!(
        woke,
        "the push that completed the batch must wake the worker"
    );
    assert_eq!(q.queue.get(), 412, "and not before");
}

#[test]
fn a_lane_check_counts_every_lane_and_the_shared_queue() {
    let w = WakeUp::new(4);
    let q = Lengths::default();
    w.snapshot_lanes(&q);
    w.announce(6, &q);
    q.queue.set(3);
    assert!(!w.after_push(Pushed::Queue, &q));
    q.lanes.set(3);
    assert!(w.after_push(Pushed::Lane(1), &q), "3 in lanes + 3 shared");
}
