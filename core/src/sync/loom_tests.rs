use super::BoundedQueue;
use loom::sync::Arc;
use loom::thread;

/// Two producers and a consumer race on a capacity-2 queue: each item
/// comes out exactly once, and nothing that fits is reported full. The
/// main thread is the consumer.
///
/// The consumer spins with `yield_now` until it has both items: loom's
/// DPOR keeps only the last access per atomic, so a consumer that looks
/// once is never scheduled after the producers' stores; a yielding loop is.
#[test]
fn two_producers_one_consumer() {
    let mut builder = loom::model::Builder::new();
    // Bounded as in crossbeam's CI; exhaustive takes minutes.
    builder.preemption_bound.get_or_insert(3);
    builder.check(|| {
        let queue = Arc::new(BoundedQueue::with_capacity(2));
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let queue = queue.clone();
                // Two items never fill a capacity-2 queue.
                thread::spawn(move || queue.push(p).unwrap())
            })
            .collect();
        let mut out = Vec::new();
        while out.len() < 2 {
            if out.len() % 2 == 0 {
                queue.drain_into(&mut out, 2);
            } else {
                out.extend(queue.pop());
            }
            thread::yield_now();
        }
        for producer in producers {
            producer.join().unwrap();
        }
        out.sort_unstable();
        assert_eq!(out, [0, 1]);
        assert!(queue.is_empty());
        assert_eq!(queue.pop(), None);
    });
}

/// A push into a full queue races with a pop: the push either succeeds
/// (after the pop freed a slot) or hands its value back, and the queue
/// ends holding exactly what was accepted, with every value dropped once.
#[test]
fn push_into_full_queue_races_with_pop() {
    loom::model(|| {
        let queue = Arc::new(BoundedQueue::with_capacity(1));
        queue.push(Arc::new(0)).unwrap();
        let witness = Arc::new(1);
        let producer = {
            let (queue, witness) = (queue.clone(), witness.clone());
            thread::spawn(move || queue.push(witness).is_ok())
        };
        let popped = queue.pop();
        assert_eq!(popped.as_deref(), Some(&0));
        let accepted = producer.join().unwrap();
        let left = queue.len();
        assert_eq!(left, usize::from(accepted));
        // The witness is alive in the queue iff it was accepted.
        assert_eq!(Arc::strong_count(&witness), 1 + left);
        drop(queue);
        assert_eq!(Arc::strong_count(&witness), 1);
    });
}

/// Wrapping a capacity-2 queue while a producer pushes: order is kept.
#[test]
fn producer_and_consumer_across_a_lap() {
    loom::model(|| {
        let queue = Arc::new(BoundedQueue::with_capacity(2));
        queue.push(0).unwrap();
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || {
                let accepted: Vec<bool> = (1..3).map(|v| queue.push(v).is_ok()).collect();
                accepted
            })
        };
        let mut out = Vec::new();
        queue.drain_into(&mut out, 2);
        let accepted = producer.join().unwrap();
        while let Some(v) = queue.pop() {
            out.push(v);
        }
        let mut expected = vec![0];
        expected.extend((1..3).zip(&accepted).filter(|(_, ok)| **ok).map(|(v, _)| v));
        assert_eq!(out, expected);
    });
}

/// A lane's owner pushes three values through two cells while the consumer
/// takes them: every value arrives once, in order, and a full lane makes the
/// owner retry rather than overwrite.
#[test]
fn lane_push_races_with_consume() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(3);
    builder.check(|| {
        let lane = Arc::new(super::lanes::Lane::new(2));
        let producer = {
            let lane = lane.clone();
            thread::spawn(move || {
                assert!(lane.try_claim());
                for i in 0..3 {
                    let mut value = Some(i);
                    // SAFETY (test): this thread owns the lane.
                    while unsafe { lane.push_from(&mut value) }.is_none() {
                        thread::yield_now();
                    }
                }
                // SAFETY (test): as above; it pushes no more.
                unsafe { lane.release() };
            })
        };
        let mut out = Vec::new();
        while out.len() < 3 {
            // SAFETY (test): the main thread is the only consumer.
            unsafe { lane.consume(2, |run| out.extend_from_slice(run)) };
            thread::yield_now();
        }
        producer.join().unwrap();
        assert_eq!(out, [0, 1, 2]);
    });
}

/// Two threads each try once to own a lane and push a value, while the
/// consumer drains it: a thread that finds the lane owned pushes nothing; one
/// that owns it after the other carries on after the first one's value (it
/// sees the first owner's tail), and every value pushed arrives once, in order.
#[test]
fn lane_changes_owner_while_consumed() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(3);
    builder.check(|| {
        let lane = Arc::new(super::lanes::Lane::new(2));
        let owner = |value: usize| {
            let lane = lane.clone();
            thread::spawn(move || {
                if !lane.try_claim() {
                    return None;
                }
                // SAFETY (test): this thread owns the lane until `release`.
                let pushed = unsafe { lane.push_from(&mut Some(value)) };
                unsafe { lane.release() };
                Some((pushed.expect("two values never fill two cells"), value))
            })
        };
        let (a, b) = (owner(10), owner(20));
        let mut out = Vec::new();
        // SAFETY (test): the main thread is the only consumer.
        unsafe { lane.drain_into(&mut out, 2, None) };
        let mut pushed: Vec<_> = [a, b]
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        unsafe { lane.drain_into(&mut out, 2, None) };
        assert!(!pushed.is_empty(), "the first to try owns the lane");
        pushed.sort_unstable();
        let counts: Vec<_> = pushed.iter().map(|&(count, _)| count).collect();
        let values: Vec<_> = pushed.iter().map(|&(_, value)| value).collect();
        assert_eq!(counts, (1..=pushed.len()).collect::<Vec<_>>());
        assert_eq!(out, values);
    });
}
