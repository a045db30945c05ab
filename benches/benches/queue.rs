//! Span-queue throughput: runtrace's `BoundedQueue` against the usual
//! alternatives, with 1 and 2 producer threads pushing into a bounded queue
//! of capacity 2048 while the bench thread drains it in batches of 512.
//!
//! Items are 256-byte structs moved by value, like ended spans. Producers
//! are long-lived threads released by a barrier for each iteration; one
//! iteration is `ITEMS` items pushed and drained, timed on the consumer. A
//! producer that finds the queue full backs off and retries, the same way
//! for every contender, so all items arrive and the figure is per item.
//!
//! Run: `cargo bench -p runtrace-benches --bench queue -- --warm-up-time 1 --measurement-time 3`

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use runtrace::__bench_internals::BoundedQueue;

const CAPACITY: usize = 2048;
const ITEMS: usize = 10_000;
const BATCH: usize = 512;

/// Stands in for an ended span: 256 bytes, moved by value.
struct Item {
    words: [u64; 32],
}

impl Item {
    fn new(n: u64) -> Self {
        let mut words = [0; 32];
        words[0] = n;
        words[31] = !n;
        Item { words }
    }
}

/// A bounded queue as the bench sees it: producer and consumer halves.
trait Contender {
    const NAME: &'static str;
    type Tx: Clone + Send + 'static;
    type Rx;
    fn new(capacity: usize) -> (Self::Tx, Self::Rx);
    /// Hands the item back when full, like `BoundedQueue::push`.
    #[allow(clippy::result_large_err)]
    fn try_push(tx: &Self::Tx, item: Item) -> Result<(), Item>;
    fn drain(rx: &mut Self::Rx, out: &mut Vec<Item>, max: usize) -> usize;
}

struct Runtrace;
impl Contender for Runtrace {
    const NAME: &'static str = "runtrace";
    type Tx = Arc<BoundedQueue<Item>>;
    type Rx = Arc<BoundedQueue<Item>>;
    fn new(capacity: usize) -> (Self::Tx, Self::Rx) {
        let queue = Arc::new(BoundedQueue::with_capacity(capacity));
        (queue.clone(), queue)
    }
    fn try_push(tx: &Self::Tx, item: Item) -> Result<(), Item> {
        tx.push(item)
    }
    fn drain(rx: &mut Self::Rx, out: &mut Vec<Item>, max: usize) -> usize {
        rx.drain_into(out, max)
    }
}

struct CrossbeamChannel;
impl Contender for CrossbeamChannel {
    const NAME: &'static str = "crossbeam_channel";
    type Tx = crossbeam_channel::Sender<Item>;
    type Rx = crossbeam_channel::Receiver<Item>;
    fn new(capacity: usize) -> (Self::Tx, Self::Rx) {
        crossbeam_channel::bounded(capacity)
    }
    fn try_push(tx: &Self::Tx, item: Item) -> Result<(), Item> {
        tx.try_send(item).map_err(|e| e.into_inner())
    }
    fn drain(rx: &mut Self::Rx, out: &mut Vec<Item>, max: usize) -> usize {
        let before = out.len();
        out.extend(rx.try_iter().take(max));
        out.len() - before
    }
}

struct StdSyncChannel;
impl Contender for StdSyncChannel {
    const NAME: &'static str = "std_sync_channel";
    type Tx = mpsc::SyncSender<Item>;
    type Rx = mpsc::Receiver<Item>;
    fn new(capacity: usize) -> (Self::Tx, Self::Rx) {
        mpsc::sync_channel(capacity)
    }
    fn try_push(tx: &Self::Tx, item: Item) -> Result<(), Item> {
        tx.try_send(item).map_err(|e| match e {
            mpsc::TrySendError::Full(item) | mpsc::TrySendError::Disconnected(item) => item,
        })
    }
    fn drain(rx: &mut Self::Rx, out: &mut Vec<Item>, max: usize) -> usize {
        let before = out.len();
        out.extend(rx.try_iter().take(max));
        out.len() - before
    }
}

struct ParkingLotMutexVecDeque;
type Locked = Arc<parking_lot::Mutex<VecDeque<Item>>>;
impl Contender for ParkingLotMutexVecDeque {
    const NAME: &'static str = "parking_lot_mutex_vecdeque";
    type Tx = Locked;
    type Rx = Locked;
    fn new(capacity: usize) -> (Self::Tx, Self::Rx) {
        let queue = Arc::new(parking_lot::Mutex::new(VecDeque::with_capacity(capacity)));
        (queue.clone(), queue)
    }
    fn try_push(tx: &Self::Tx, item: Item) -> Result<(), Item> {
        let mut queue = tx.lock();
        if queue.len() >= CAPACITY {
            return Err(item);
        }
        queue.push_back(item);
        Ok(())
    }
    fn drain(rx: &mut Self::Rx, out: &mut Vec<Item>, max: usize) -> usize {
        let mut queue = rx.lock();
        let n = queue.len().min(max);
        out.extend(queue.drain(..n));
        n
    }
}

/// Spin briefly, then yield: what every producer does on full and the
/// consumer does on empty (the machine may have fewer cores than threads).
fn back_off(attempt: &mut u32) {
    if *attempt < 6 {
        for _ in 0..1 << *attempt {
            std::hint::spin_loop();
        }
        *attempt += 1;
    } else {
        thread::yield_now();
    }
}

/// Producer threads that push `ITEMS / producers` items each time the
/// barrier releases them, until `stop` is set.
struct Producers {
    start: Arc<Barrier>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Producers {
    fn spawn<C: Contender>(tx: &C::Tx, producers: usize) -> Self {
        let start = Arc::new(Barrier::new(producers + 1));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..producers)
            .map(|p| {
                let (tx, start, stop) = (tx.clone(), start.clone(), stop.clone());
                let share = ITEMS / producers + usize::from(p < ITEMS % producers);
                thread::spawn(move || loop {
                    start.wait();
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    for n in 0..share as u64 {
                        let mut item = Item::new(n);
                        let mut attempt = 0;
                        while let Err(back) = C::try_push(&tx, item) {
                            item = back;
                            back_off(&mut attempt);
                        }
                    }
                })
            })
            .collect();
        Producers {
            start,
            stop,
            threads,
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.start.wait();
        for thread in self.threads {
            thread.join().unwrap();
        }
    }
}

fn bench_contender<C: Contender>(c: &mut Criterion, producers: usize) {
    let suffix = if producers == 1 {
        "1_producer".to_string()
    } else {
        format!("{producers}_producers")
    };
    let mut group = c.benchmark_group(format!("queue/{}/{suffix}", C::NAME));
    group.throughput(Throughput::Elements(ITEMS as u64));
    let (tx, mut rx) = C::new(CAPACITY);
    let workers = Producers::spawn::<C>(&tx, producers);
    let mut out = Vec::with_capacity(BATCH);
    group.bench_function("push_pop_10k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                workers.start.wait();
                let started = Instant::now();
                let mut received = 0;
                let mut attempt = 0;
                while received < ITEMS {
                    out.clear();
                    let n = C::drain(&mut rx, &mut out, BATCH);
                    if n == 0 {
                        back_off(&mut attempt);
                    } else {
                        attempt = 0;
                        received += n;
                        // Read the items, as an exporter would.
                        black_box(out.iter().map(|i| i.words[0] ^ i.words[31]).sum::<u64>());
                    }
                }
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
    workers.stop();
}

fn queues(c: &mut Criterion) {
    for producers in [1, 2] {
        bench_contender::<Runtrace>(c, producers);
        bench_contender::<CrossbeamChannel>(c, producers);
        bench_contender::<StdSyncChannel>(c, producers);
        bench_contender::<ParkingLotMutexVecDeque>(c, producers);
    }
}

criterion_group!(benches, queues);
criterion_main!(benches);
