use super::BoundedQueue;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

#[test]
fn pops_in_push_order_on_one_thread() {
    let queue = BoundedQueue::with_capacity(8);
    for i in 0..8 {
        queue.push(i).unwrap();
    }
    assert_eq!(queue.len(), 8);
    for i in 0..8 {
        assert_eq!(queue.pop(), Some(i));
    }
    assert_eq!(queue.pop(), None);
    assert!(queue.is_empty());
}

#[test]
fn push_into_full_queue_hands_the_value_back() {
    let queue = BoundedQueue::with_capacity(3);
    for i in 0..3 {
        queue.push(i.to_string()).unwrap();
    }
    assert_eq!(queue.push("late".to_string()), Err("late".to_string()));
    assert_eq!(queue.len(), 3);
    assert_eq!(queue.capacity(), 3);
    assert_eq!(queue.pop().as_deref(), Some("0"));
    queue.push("now fits".to_string()).unwrap();
    assert_eq!(
        queue.push("full again".to_string()).unwrap_err(),
        "full again"
    );
}

#[test]
fn push_from_moves_the_value_or_leaves_it_when_full() {
    let queue = BoundedQueue::with_capacity(2);
    let mut empty: Option<String> = None;
    assert!(
        queue.push_from(&mut empty),
        "nothing to push is not a failure"
    );
    assert!(queue.is_empty());
    let mut source = Some("a".to_string());
    assert!(queue.push_from(&mut source));
    assert_eq!(source, None, "the value moved into the queue");
    queue.push("b".to_string()).unwrap();
    let mut late = Some("late".to_string());
    assert!(!queue.push_from(&mut late));
    assert_eq!(
        late.as_deref(),
        Some("late"),
        "a full queue leaves it in place"
    );
    assert_eq!(queue.pop().as_deref(), Some("a"));
    assert!(queue.push_from(&mut late));
    assert_eq!(queue.pop().as_deref(), Some("b"));
    assert_eq!(queue.pop().as_deref(), Some("late"));
}

/// `push_from` copies values larger than one 128-byte piece in several; every
/// byte arrives, and an owned field inside moves rather than being copied or
/// dropped (miri checks the latter).
#[test]
fn push_from_moves_values_larger_than_a_copy_piece() {
    #[derive(Debug, PartialEq)]
    struct Big {
        words: [u64; 37], // 296 bytes: two whole pieces and a rest
        owned: String,
    }
    let big = |n: u64| Big {
        words: std::array::from_fn(|i| n * 1000 + i as u64),
        owned: format!("value {n}"),
    };
    let queue = BoundedQueue::with_capacity(2);
    for n in 0..5 {
        let mut source = Some(big(n));
        assert!(queue.push_from(&mut source));
        assert!(source.is_none());
        assert_eq!(queue.pop(), Some(big(n)));
    }
}

#[test]
fn stays_fifo_and_exact_over_many_laps() {
    // 5 is not a power of two, so index wrap and lap carry both get used.
    let queue = BoundedQueue::with_capacity(5);
    let mut next_in = 0u64;
    let mut next_out = 0u64;
    let rounds = if cfg!(miri) { 1_000 } else { 10_000 };
    for round in 0..rounds {
        let burst = round % 6; // 0..=5 items, sometimes filling the queue
        for _ in 0..burst {
            if queue.push(next_in).is_ok() {
                next_in += 1;
            }
        }
        assert!(queue.len() <= 5);
        for _ in 0..(round % 4) {
            if let Some(v) = queue.pop() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
        }
        assert_eq!(queue.len() as u64, next_in - next_out);
    }
    assert!(next_out > rounds, "the test should wrap many laps");
}

#[test]
fn capacity_one_holds_exactly_one_item() {
    let queue = BoundedQueue::with_capacity(1);
    for i in 0..100 {
        assert!(queue.is_empty());
        queue.push(i).unwrap();
        assert_eq!(queue.push(-1), Err(-1));
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.pop(), Some(i));
        assert_eq!(queue.pop(), None);
    }
}

#[test]
#[should_panic(expected = "at least 1")]
fn zero_capacity_panics() {
    let _ = BoundedQueue::<u8>::with_capacity(0);
}

#[test]
fn pop_ready_does_not_wait() {
    let q = BoundedQueue::with_capacity(2);
    assert_eq!(q.pop_ready(), None);
    q.push(7).unwrap();
    assert_eq!(q.pop_ready(), Some(7));
    assert_eq!(q.pop_ready(), None);
}

#[test]
fn drain_into_respects_max_and_keeps_order() {
    let queue = BoundedQueue::with_capacity(10);
    for i in 0..10 {
        queue.push(i).unwrap();
    }
    let mut out = vec![-1];
    assert_eq!(queue.drain_into(&mut out, 4), 4);
    assert_eq!(out, [-1, 0, 1, 2, 3]);
    assert_eq!(queue.drain_into(&mut out, 0), 0);
    // Wraps past the end of the buffer.
    for i in 10..14 {
        queue.push(i).unwrap();
    }
    out.clear();
    assert_eq!(queue.drain_into(&mut out, 100), 10);
    assert_eq!(out, (4..14).collect::<Vec<_>>());
    assert_eq!(queue.drain_into(&mut out, 100), 0);
}

#[test]
fn drop_drops_the_items_left_inside() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let queue = BoundedQueue::with_capacity(4);
    // Move head and tail off zero so the leftovers wrap the buffer.
    for _ in 0..3 {
        queue
            .push(Counted(drops.clone()))
            .unwrap_or_else(|_| panic!());
        drop(queue.pop());
    }
    assert_eq!(drops.load(Ordering::Relaxed), 3);
    for _ in 0..4 {
        assert!(queue.push(Counted(drops.clone())).is_ok());
    }
    drop(queue.push(Counted(drops.clone()))); // rejected: dropped by us
    assert_eq!(drops.load(Ordering::Relaxed), 4);
    drop(queue.pop());
    assert_eq!(drops.load(Ordering::Relaxed), 5);
    drop(queue);
    assert_eq!(drops.load(Ordering::Relaxed), 8);
}

#[test]
fn concurrent_producers_lose_nothing_and_duplicate_nothing() {
    const PRODUCERS: usize = 4;
    let per_producer: usize = if cfg!(miri) {
        300
    } else if cfg!(debug_assertions) {
        250_000
    } else {
        1_000_000
    };
    let queue = Arc::new(BoundedQueue::with_capacity(1024));
    let done = Arc::new(AtomicBool::new(false));

    let consumer = {
        let (queue, done) = (queue.clone(), done.clone());
        thread::spawn(move || {
            let mut received = vec![0u8; PRODUCERS * per_producer];
            let mut last_seen = [None::<usize>; PRODUCERS];
            let mut batch = Vec::with_capacity(512);
            loop {
                // Read `done` before draining so nothing pushed before it is missed.
                let finished = done.load(Ordering::Acquire);
                batch.clear();
                if queue.drain_into(&mut batch, 512) == 0 {
                    if finished {
                        break;
                    }
                    thread::yield_now();
                }
                for &item in &batch {
                    received[item] += 1;
                    // Each producer's items arrive in the order it pushed them.
                    let producer = item / per_producer;
                    assert!(last_seen[producer] < Some(item), "out of order");
                    last_seen[producer] = Some(item);
                }
            }
            received
        })
    };

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let queue = queue.clone();
            thread::spawn(move || {
                let mut failed = Vec::new();
                for item in p * per_producer..(p + 1) * per_producer {
                    // Retry a full queue a few times so most items go
                    // through, but keep exercising the failure path.
                    let mut value = item;
                    for attempt in 0.. {
                        match queue.push(value) {
                            Ok(()) => break,
                            Err(back) if attempt < 3 => {
                                value = back;
                                thread::yield_now();
                            }
                            Err(back) => {
                                assert_eq!(back, item);
                                failed.push(item);
                                break;
                            }
                        }
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    let mut outcome = Vec::new();
    for producer in producers {
        let f = producer.join().unwrap();
        failed += f.len();
        outcome.extend(f);
    }
    done.store(true, Ordering::Release);
    let mut received = consumer.join().unwrap();
    for item in outcome {
        received[item] += 1;
    }
    assert!(
        received.iter().all(|&n| n == 1),
        "an item was lost or duplicated"
    );
    assert!(queue.is_empty());
    eprintln!(
        "stress: {failed} of {} pushes found the queue full",
        PRODUCERS * per_producer
    );
    assert!(
        failed < PRODUCERS * per_producer,
        "some pushes must succeed"
    );
}
