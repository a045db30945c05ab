// SAFETY (for every `unsafe` call below): each test keeps the contracts of
// `Lane::push_from` and `Lane::consume` by construction: the pushing thread owns
// the lane (`try_claim`) and one thread at a time consumes.
#![allow(clippy::undocumented_unsafe_blocks)]

use super::{Lane, LanePush, Lanes};
use crate::sync::BoundedQueue;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

/// Counts its drops, to check that every value is dropped exactly once.
#[derive(Debug)]
struct Counted(usize, Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_lane_is_fifo_reports_full_and_hands_out_runs_up_to_the_buffer_end() {
    let lane = Lane::new(4);
    assert!(lane.try_claim());
    assert!(!lane.try_claim(), "one owner at a time");
    for i in 1..=4 {
        // SAFETY (test): this thread owns the lane; it is the only consumer.
        assert_eq!(unsafe { lane.push_from(&mut Some(i)) }, Some(i));
    }
    let mut late = Some(5);
    assert_eq!(unsafe { lane.push_from(&mut late) }, None);
    assert_eq!(late, Some(5), "a full lane leaves the value in place");
    assert_eq!(lane.len(), 4);

    let mut seen = Vec::new();
    assert_eq!(
        unsafe { lane.consume(3, |run| seen.extend_from_slice(run)) },
        3
    );
    assert_eq!(seen, [1, 2, 3]);
    assert_eq!(unsafe { lane.push_from(&mut late) }, Some(5));
    assert_eq!(late, None, "the value moved into the lane");
    assert_eq!(unsafe { lane.push_from(&mut Some(6)) }, Some(6));
    // 4 is at the buffer's end, 5 and 6 wrapped to its start: two runs.
    let mut runs = Vec::new();
    assert_eq!(unsafe { lane.consume(8, |run| runs.push(run.to_vec())) }, 1);
    assert_eq!(unsafe { lane.consume(8, |run| runs.push(run.to_vec())) }, 2);
    assert_eq!(runs, [vec![4], vec![5, 6]]);
    let mut called = false;
    assert_eq!(unsafe { lane.consume(8, |_| called = true) }, 0);
    assert!(!called, "nothing to consume: not called");
    // An empty source pushes nothing.
    assert_eq!(unsafe { lane.push_from(&mut None) }, None);
    assert_eq!(lane.len(), 0);
}

#[test]
fn values_are_dropped_once_whether_consumed_drained_or_left_in_the_lane() {
    let drops = Arc::new(AtomicUsize::new(0));
    let lane = Lane::new(8);
    assert!(lane.try_claim());
    for i in 0..6 {
        assert!(unsafe { lane.push_from(&mut Some(Counted(i, drops.clone()))) }.is_some());
    }
    // Consumed in place: dropped by the lane after `f`.
    let n = unsafe {
        lane.consume(2, |run| {
            assert_eq!(run.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1])
        })
    };
    assert_eq!((n, drops.load(Ordering::Relaxed)), (2, 2));
    // Drained: moved out, so dropped with the vector, not by the lane.
    let mut out = Vec::new();
    assert_eq!(unsafe { lane.drain_into(&mut out, 2, None) }, 2);
    assert_eq!(drops.load(Ordering::Relaxed), 2);
    assert_eq!(out.iter().map(|c| c.0).collect::<Vec<_>>(), [2, 3]);
    drop(out);
    assert_eq!(drops.load(Ordering::Relaxed), 4);
    // Left in the lane: dropped with it.
    drop(lane);
    assert_eq!(drops.load(Ordering::Relaxed), 6);
}

#[test]
fn drain_into_follows_the_values_around_the_buffer_end() {
    let lane = Lane::new(4);
    assert!(lane.try_claim());
    for i in 0..3 {
        unsafe { lane.push_from(&mut Some(i)) };
    }
    unsafe { lane.consume(3, |_| ()) };
    for i in 3..7 {
        assert!(unsafe { lane.push_from(&mut Some(i)) }.is_some());
    }
    let mut out = Vec::new();
    assert_eq!(unsafe { lane.drain_into(&mut out, 10, None) }, 4);
    assert_eq!(out, [3, 4, 5, 6]);
}

#[test]
fn a_new_owner_carries_on_where_the_last_one_stopped() {
    let lane = Arc::new(Lane::new(8));
    for owner in 0..3 {
        let lane = lane.clone();
        thread::spawn(move || {
            assert!(lane.try_claim());
            for i in 0..2 {
                let pushed = unsafe { lane.push_from(&mut Some(owner * 10 + i)) };
                assert_eq!(pushed, Some(owner * 2 + i + 1), "the count goes on");
            }
            unsafe { lane.release() };
        })
        .join()
        .unwrap();
    }
    let mut out = Vec::new();
    unsafe { lane.drain_into(&mut out, 8, None) };
    assert_eq!(out, [0, 1, 10, 11, 20, 21]);
}

/// Pushes `value` into `lanes` from the calling thread.
fn push(lanes: &Lanes<usize>, value: usize) -> LanePush {
    lanes.push_from(&mut Some(value))
}

#[test]
fn threads_bind_to_lanes_the_consumer_makes_and_give_them_back_at_exit() {
    let lanes = Arc::new(Lanes::new(vec![4; 1]));
    assert_eq!(lanes.largest_lane(), 4);
    assert_eq!(lanes.capacity(), 0, "no lane is made before one is wanted");
    // No lane yet: the thread asks for one, and the consumer makes it.
    assert_eq!(push(&lanes, 1), LanePush::NoLane);
    lanes.add_lane_if_wanted();
    assert_eq!(lanes.capacity(), 4);
    assert_eq!(push(&lanes, 1), LanePush::Pushed(1));
    assert_eq!(push(&lanes, 2), LanePush::Pushed(2));
    // The only lane is ours: another thread gets none, and the set is full.
    let other = lanes.clone();
    thread::spawn(move || {
        assert_eq!(push(&other, 3), LanePush::NoLane);
        other.add_lane_if_wanted();
        assert_eq!(push(&other, 3), LanePush::NoLane);
    })
    .join()
    .unwrap();
    assert_eq!(lanes.capacity(), 4, "at most max_lanes lanes");
    // A thread that binds, pushes and exits gives the lane to the next one.
    let lanes2 = Arc::new(Lanes::new(vec![4; 1]));
    for t in 0..3 {
        let lanes2 = lanes2.clone();
        thread::spawn(move || {
            if push(&lanes2, t) == LanePush::NoLane {
                lanes2.add_lane_if_wanted();
                assert_eq!(push(&lanes2, t), LanePush::Pushed(1));
            }
        })
        .join()
        .unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(lanes2.consumer().drain_into(&mut out, 10, None), 3);
    assert_eq!(out, [0, 1, 2]);
    // Full: the value stays with the caller.
    for i in 3..5 {
        assert!(matches!(push(&lanes, i), LanePush::Pushed(_)));
    }
    let mut late = Some(9);
    assert_eq!(lanes.push_from(&mut late), LanePush::Full);
    assert_eq!(late, Some(9));
    assert_eq!(lanes.len(), 4);
}

#[test]
fn a_thread_bound_to_an_open_set_uses_no_lane_of_another_until_it_closes() {
    let first = Lanes::new(vec![4; 2]);
    let second = Lanes::new(vec![4; 2]);
    assert_eq!(push(&first, 1), LanePush::NoLane);
    first.add_lane_if_wanted();
    assert_eq!(push(&first, 1), LanePush::Pushed(1));
    // Bound to `first`: no lane of `second`, so none is wanted there.
    assert_eq!(push(&second, 2), LanePush::NoLane);
    second.add_lane_if_wanted();
    assert_eq!(second.capacity(), 0);
    // Once `first` closes, the thread moves on.
    first.close();
    assert_eq!(push(&second, 2), LanePush::NoLane);
    second.add_lane_if_wanted();
    assert_eq!(push(&second, 2), LanePush::Pushed(1));
    // `first` kept what was pushed; its lane is free again.
    let mut out = Vec::new();
    assert_eq!(first.consumer().drain_into(&mut out, 10, None), 1);
    assert_eq!(out, [1]);
}

#[test]
fn claim_run_takes_a_lane_holding_the_minimum_in_place() {
    let lanes = Lanes::new(vec![8; 2]);
    lanes.add_lane();
    for i in 0..5 {
        assert_eq!(push(&lanes, i), LanePush::Pushed(i + 1));
    }
    let consumer = lanes.consumer();
    assert!(consumer.claim_run(6, 6, None).is_none(), "no lane holds 6");
    let run = consumer.claim_run(4, 3, None).expect("the lane holds 4");
    assert_eq!(run.len(), 3);
    assert!(lanes.try_consumer().is_none(), "one consumer at a time");
    drop(consumer);
    assert!(lanes.try_consumer().is_some(), "the run outlives the turn");
    // Claimed values no longer wait, but their cells stay the run's.
    assert_eq!(lanes.len(), 2);
    let (mut seen, mut taken) = (Vec::new(), Vec::new());
    run.export(|run| seen.extend_from_slice(run), |v| taken.push(v));
    assert_eq!((&seen[..], &taken[..]), (&[0, 1, 2][..], &[0, 1, 2][..]));
    let run = lanes.consumer().claim_run(1, 8, None).unwrap();
    run.export(|run| seen.extend_from_slice(run), drop);
    assert_eq!(seen, [0, 1, 2, 3, 4]);
    assert_eq!(lanes.len(), 0);
    // Room for 8 again: every cell was given back.
    for i in 5..13 {
        assert!(matches!(push(&lanes, i), LanePush::Pushed(_)));
    }
    assert_eq!(push(&lanes, 13), LanePush::Full);
}

#[test]
fn an_exported_run_is_moved_out_once_and_a_dropped_run_drops_its_values() {
    let drops = Arc::new(AtomicUsize::new(0));
    let lanes = Lanes::new(vec![8; 1]);
    lanes.add_lane();
    for i in 0..4 {
        let pushed = lanes.push_from(&mut Some(Counted(i, drops.clone())));
        assert_eq!(pushed, LanePush::Pushed(i + 1));
    }
    let run = lanes.consumer().claim_run(2, 2, None).unwrap();
    let mut taken = Vec::new();
    run.export(|run| assert_eq!(run.len(), 2), |v| taken.push(v));
    assert_eq!(drops.load(Ordering::Relaxed), 0, "moved out, not dropped");
    drop(taken);
    assert_eq!(drops.load(Ordering::Relaxed), 2);
    // A run dropped without export (an unwinding worker) drops its values.
    drop(lanes.consumer().claim_run(1, 8, None).unwrap());
    assert_eq!(drops.load(Ordering::Relaxed), 4);
    assert_eq!(lanes.len(), 0);
}

#[test]
fn marks_limit_claims_to_values_pushed_before_them() {
    let lanes = Arc::new(Lanes::new(vec![8; 2]));
    lanes.add_lane();
    for i in 0..3 {
        push(&lanes, i);
    }
    let marks = lanes.marks();
    for i in 3..8 {
        push(&lanes, i);
    }
    // A lane made after the marks is not looked at.
    let other = lanes.clone();
    thread::spawn(move || {
        assert_eq!(push(&other, 100), LanePush::NoLane);
        assert!(other.add_lane_if_wanted());
        assert_eq!(push(&other, 100), LanePush::Pushed(1));
    })
    .join()
    .unwrap();
    let consumer = lanes.consumer();
    assert!(
        consumer.claim_run(4, 8, Some(&marks)).is_none(),
        "3 before the marks"
    );
    let run = consumer.claim_run(2, 8, Some(&marks)).unwrap();
    assert_eq!(run.len(), 3);
    run.export(|_| (), drop);
    let mut out = Vec::new();
    assert_eq!(consumer.drain_into(&mut out, 10, Some(&marks)), 0);
    assert_eq!(consumer.drain_into(&mut out, 10, None), 6);
    assert_eq!(out, [3, 4, 5, 6, 7, 100]);
}

#[test]
fn a_drain_during_an_export_takes_what_follows_the_run() {
    let drops = Arc::new(AtomicUsize::new(0));
    let lane = Lane::new(8);
    assert!(lane.try_claim());
    for i in 0..6 {
        assert!(unsafe { lane.push_from(&mut Some(Counted(i, drops.clone()))) }.is_some());
    }
    // An export holds the first two (a claim), and a drain (shutdown) takes
    // the rest meanwhile: nothing twice, nothing lost.
    let claim = unsafe { lane.claim(2, None) }.unwrap();
    let mut out = Vec::new();
    assert_eq!(unsafe { lane.drain_into(&mut out, 10, None) }, 4);
    assert_eq!(out.iter().map(|c| c.0).collect::<Vec<_>>(), [2, 3, 4, 5]);
    assert_eq!(lane.len(), 0);
    unsafe {
        lane.finish(claim, |run| {
            assert_eq!(run.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1]);
            super::Disposal::Drop
        })
    };
    assert_eq!(drops.load(Ordering::Relaxed), 2);
    drop(out);
    drop(lane);
    assert_eq!(drops.load(Ordering::Relaxed), 6);
}

/// Producers, some with lanes and some without (falling back to a shared
/// queue, as the batch processor does), against a consumer that exports runs
/// in place and drains: every value arrives exactly once or is counted as
/// dropped, and each producer's values arrive in order within its lane.
#[test]
fn concurrent_producers_lose_nothing_and_duplicate_nothing() {
    let producers = 4;
    let per_producer: usize = if cfg!(miri) { 200 } else { 250_000 };
    let lanes = Arc::new(Lanes::new(vec![256; 2]));
    let shared = Arc::new(BoundedQueue::with_capacity(256));
    let dropped = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(producers + 1));

    let consumer = {
        let (lanes, shared, done) = (lanes.clone(), shared.clone(), done.clone());
        thread::spawn(move || {
            let mut received = Vec::new();
            let mut batch = Vec::new();
            loop {
                let finished = done.load(Ordering::Acquire);
                lanes.add_lane_if_wanted();
                let consumer = lanes.consumer();
                let mut n = 0;
                if let Some(run) = consumer.claim_run(64, 64, None) {
                    n += run.len();
                    run.export(|_| (), |v| received.push(v));
                }
                n += consumer.drain_into(&mut batch, 64, None);
                drop(consumer);
                n += shared.drain_into(&mut batch, 64);
                received.append(&mut batch);
                if n == 0 {
                    if finished {
                        return received;
                    }
                    thread::yield_now();
                }
            }
        })
    };
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let (lanes, shared, dropped, start) = (
                lanes.clone(),
                shared.clone(),
                dropped.clone(),
                start.clone(),
            );
            thread::spawn(move || {
                start.wait();
                for i in 0..per_producer {
                    let mut value = Some(p * per_producer + i);
                    if let LanePush::Pushed(_) = lanes.push_from(&mut value) {
                        continue;
                    }
                    if !shared.push_from(&mut value) {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    start.wait();
    for h in handles {
        h.join().unwrap();
    }
    done.store(true, Ordering::Release);
    let received = consumer.join().unwrap();
    let dropped = dropped.load(Ordering::Relaxed);
    assert_eq!(received.len() + dropped, producers * per_producer);
    let unique: HashSet<_> = received.iter().copied().collect();
    assert_eq!(unique.len(), received.len(), "no value twice");
    assert!(received.iter().all(|&v| v < producers * per_producer));
    assert!(lanes.capacity() > 0, "the lanes were used");
}
