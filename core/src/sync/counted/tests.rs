use super::*;
use std::sync::Arc;
use std::thread;

#[test]
fn the_count_has_cache_lines_of_its_own() {
    // Written at every span start by any thread; the scope's other fields,
    // read at every span, must not share its lines (x86-64 fetches pairs).
    assert_eq!(std::mem::align_of::<RefCount>(), 128);
    assert_eq!(std::mem::size_of::<RefCount>(), 128);
}

/// A counted value that tells, by the count of its `Arc`, whether it is alive.
type Value = (&'static str, Arc<()>);

fn scope(name: &'static str) -> (CountedRef<Value>, Arc<()>) {
    let tracker = Arc::new(());
    (CountedRef::new((name, tracker.clone())), tracker)
}

fn alive(tracker: &Arc<()>) -> bool {
    Arc::strong_count(tracker) > 1
}

fn count(r: &CountedRef<Value>) -> usize {
    r.count()
}

impl RefRun<Value> {
    /// Drops `refs`, giving the counts of consecutive references to one value
    /// back together.
    fn release_all(refs: impl IntoIterator<Item = CountedRef<Value>>) {
        let mut run = None;
        for r in refs {
            RefRun::extend(&mut run, r);
        }
    }
}

#[test]
fn clones_share_the_scope_and_the_last_drop_frees_it() {
    let (a, resource) = scope("a");
    let b = a.clone();
    assert!(a.ptr_eq(&b) && count(&a) == 2);
    assert_eq!(b.0, "a");
    assert!(Arc::ptr_eq(&b.1, &resource));
    drop(a);
    assert!(alive(&resource));
    drop(b);
    assert!(!alive(&resource));
}

#[test]
fn a_run_gives_back_exactly_the_counts_it_merged() {
    let (a, res_a) = scope("a");
    let (b, res_b) = scope("b");
    let mut run = RefRun::new(a.clone());
    for _ in 0..10 {
        assert!(run.merge(a.clone()).is_ok());
    }
    let other = run
        .merge(b.clone())
        .expect_err("another scope is handed back");
    assert!(other.ptr_eq(&b));
    assert_eq!(count(&a), 12);
    drop(run);
    assert_eq!(count(&a), 1);
    // Interleaved scopes make several runs.
    let refs = [&a, &a, &b, &a, &b, &b].map(CountedRef::clone);
    assert_eq!((count(&a), count(&b)), (4, 5));
    RefRun::release_all(refs);
    assert_eq!((count(&a), count(&b)), (1, 2));
    drop(other);
    assert_eq!(count(&b), 1);
    // A run may hold the last references: dropping it frees the scope.
    let mut run = RefRun::new(a.clone());
    run.merge(a).unwrap();
    assert!(alive(&res_a));
    drop(run);
    assert!(!alive(&res_a));
    drop(b);
    assert!(!alive(&res_b));
}

#[test]
fn span_references_come_from_thread_credits_given_back_at_exit() {
    let (a, res_a) = scope("a");
    let a2 = a.clone();
    let (b, res_b) = scope("b");
    let (c, res_c) = scope("c");
    thread::spawn(move || {
        // The first span reference takes a batch of counts, one of which
        // it keeps; the next ones use the rest without touching the count.
        let first = a.clone_biased();
        assert!(first.ptr_eq(&a));
        assert_eq!(count(&a), 2 + CREDIT_BATCH);
        let more: Vec<_> = (1..CREDIT_BATCH).map(|_| a.clone_biased()).collect();
        assert_eq!(count(&a), 2 + CREDIT_BATCH, "from credits");
        // Credits used up: another batch.
        let next = a.clone_biased();
        assert_eq!(count(&a), 2 + 2 * CREDIT_BATCH);
        drop((first, more, next));
        assert_eq!(
            count(&a),
            2 + CREDIT_BATCH - 1,
            "the thread still holds credits"
        );
        // Two scopes alternating keep their credits.
        drop(b.clone_biased());
        drop(a.clone_biased());
        drop(b.clone_biased());
        assert_eq!(count(&a), 2 + CREDIT_BATCH - 2);
        assert_eq!(count(&b), 1 + CREDIT_BATCH - 2);
        // Using up the recent scope's credits keeps the older one's.
        let used: Vec<_> = (0..CREDIT_BATCH).map(|_| a.clone_biased()).collect();
        assert_eq!(count(&a), 2 + CREDIT_BATCH + CREDIT_BATCH - 2);
        assert_eq!(count(&b), 1 + CREDIT_BATCH - 2, "b's credits kept");
        drop(used);
        assert_eq!(count(&a), 2 + CREDIT_BATCH - 2);
        // A third scope displaces the least recent one's credits (b's).
        drop(c.clone_biased());
        assert_eq!(count(&b), 1, "b's credits given back");
        assert_eq!(count(&a), 2 + CREDIT_BATCH - 2);
        drop((a, b, c));
    })
    .join()
    .unwrap();
    // The thread's exit gave its remaining credits back (a's and c's),
    // freeing b and c.
    assert_eq!(count(&a2), 1);
    assert!(!alive(&res_b) && !alive(&res_c));
    drop(a2);
    assert!(!alive(&res_a));
}

#[test]
fn span_references_on_many_threads_balance_the_count() {
    let (inst, resource) = scope("credits");
    // Joined by handle: a scoped thread counts as done before its
    // thread-local destructors (which give the credits back) have run.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let inst = inst.clone();
            thread::spawn(move || {
                let refs: Vec<_> = (0..1000).map(|_| inst.clone_biased()).collect();
                RefRun::release_all(refs);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count(&inst), 1);
    drop(inst);
    assert!(!alive(&resource));
}

#[test]
fn references_dropped_on_other_threads_balance_the_count() {
    let (inst, resource) = scope("stress");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<CountedRef<Value>>>();
    // Half the batches are dropped one by one, half through runs.
    let dropper = thread::spawn(move || {
        for (i, batch) in rx.into_iter().enumerate() {
            if i % 2 == 0 {
                drop(batch);
            } else {
                RefRun::release_all(batch);
            }
        }
    });
    thread::scope(|s| {
        for _ in 0..4 {
            let (inst, tx) = (&inst, tx.clone());
            s.spawn(move || {
                for _ in 0..100 {
                    tx.send((0..100).map(|_| inst.clone()).collect()).unwrap();
                }
            });
        }
    });
    drop(tx);
    dropper.join().unwrap();
    assert_eq!(count(&inst), 1);
    drop(inst);
    assert!(!alive(&resource));
}

#[test]
fn biased_drops_give_counts_to_the_threads_credits_and_balance_at_exit() {
    let (a, res_a) = scope("a");
    let (b, _res_b) = scope("b");
    let (a2, b2) = (a.clone(), b.clone());
    thread::spawn(move || {
        // A clone and a biased drop per call: the shared count moves only at
        // the first clone, which takes a batch.
        for _ in 0..1000 {
            a.clone_biased().drop_biased_in::<SCOPES>();
        }
        assert_eq!(count(&a), 2 + CREDIT_BATCH);
        // A reference taken elsewhere (a plain clone) dropped here joins the
        // credits too, up to the cap; beyond it the shared count takes it.
        let plain: Vec<_> = (0..2 * CREDIT_BATCH).map(|_| a.clone()).collect();
        assert_eq!(count(&a), 2 + 3 * CREDIT_BATCH);
        plain
            .into_iter()
            .for_each(CountedRef::drop_biased_in::<SCOPES>);
        assert_eq!(count(&a), 2 + MAX_HELD_CREDITS);
        // A value the thread has no credits on: given back at once.
        b.clone().drop_biased_in::<SCOPES>();
        assert_eq!(count(&b), 2);
        drop((a, b));
    })
    .join()
    .unwrap();
    // The thread's exit gave all its credits back.
    assert_eq!(count(&a2), 1);
    assert_eq!(count(&b2), 1);
    drop(a2);
    assert!(!alive(&res_a));
}

#[test]
fn releasing_the_threads_credits_frees_the_value_with_its_last_reference() {
    let (a, res_a) = scope("a");
    thread::spawn(move || {
        a.clone_biased().drop_biased_in::<SCOPES>();
        assert_eq!(count(&a), 1 + CREDIT_BATCH, "the thread holds credits");
        a.release_thread_credits();
        assert_eq!(count(&a), 1);
        drop(a);
        assert!(
            !alive(&res_a),
            "freed with its last reference, not at thread exit"
        );
        // Nothing is given back twice at thread exit.
    })
    .join()
    .unwrap();
}

#[test]
fn the_two_stocks_keep_their_credits_apart() {
    let (scopes, _r1) = scope("scopes");
    let (others, _r2) = scope("others");
    let (tracer, _r3) = scope("tracer");
    let (scopes2, others2, tracer2) = (scopes.clone(), others.clone(), tracer.clone());
    thread::spawn(move || {
        // A tracer per call between the spans of two scopes: the scopes keep
        // both their slots, and the tracer's count never moves after the first.
        for _ in 0..1000 {
            let t = tracer.clone_biased_in::<TRACERS>();
            drop(scopes.clone_biased());
            drop(others.clone_biased());
            t.drop_biased_in::<TRACERS>();
        }
        assert_eq!(count(&tracer), 2 + CREDIT_BATCH);
        drop((scopes, others, tracer));
    })
    .join()
    .unwrap();
    assert_eq!(
        (count(&scopes2), count(&others2), count(&tracer2)),
        (1, 1, 1)
    );
}
