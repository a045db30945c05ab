//! The batch span processor: ended spans leave the application thread through a
//! lock-free queue, and one background thread (`runtrace-batch`) exports them.
//!
//! Application threads only push into the queue (never block or lock, and
//! allocate nothing per span; a full queue drops the span and counts it). The
//! worker exports when the queue holds a full batch, everything queued when the
//! schedule delay has passed, on `force_flush` and on shutdown, one export at a
//! time, each with a deadline.
//!
//! The queue is two parts. Each application thread that ends spans gets a lane
//! of its own (per-thread single-producer rings), so that threads ending
//! spans at the same time write no common cache line, and the worker exports a
//! lane's spans in place, without copying them out. Threads beyond the number
//! of lanes, and a thread whose lane is full, use the shared multi-producer
//! queue.
//!
//! Waking the worker costs the application thread no system call per span: it
//! is woken about once per batch, by the producer that completes one (the
//! protocol, both sides, is in `wake.rs`). When spans arrive fast enough to
//! fill the next batch within a millisecond, the worker instead naps (until a
//! quarter of the queue has filled, at most 1 ms) and asks to be woken only at
//! half the queue, so producers make no system call at all.

mod budget;
mod wake;
mod worker;

use super::{recycle, FlushError, ProcessorStats, SpanProcessor};
use crate::config::{BatchConfig, DEFAULT_DROP_SHUTDOWN_TIMEOUT};
use crate::data::SpanData;
use crate::diagnostics::{self, Level};
use crate::export::{ExportCancel, SpanExporter};
use crate::sync::{BoundedQueue, LanePush, Lanes};
use budget::Budget;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wake::{Pushed, QueueLengths, WakeUp};
use worker::Worker;

/// The most lanes a processor makes: two per CPU (threads come and go), within
/// bounds.
fn max_lanes() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |n| 2 * n.get())
        .clamp(2, 64)
}

/// The queue length at which a sleeping worker has a use for waking up: a
/// full batch, or any span with a schedule delay of 0 (which then exports as
/// soon as a span is queued: every push makes a wake check).
fn wake_batch_size(config: &BatchConfig) -> usize {
    if config.scheduled_delay.is_zero() {
        1
    } else {
        config.max_export_batch_size
    }
}

/// Requests from callers to the worker, under `Shared::control`.
#[derive(Debug, Default)]
struct Control {
    /// Flush generations requested and completed.
    flush_requested: u64,
    /// The latest deadline among pending flush requests.
    flush_deadline: Option<Instant>,
    flush_completed: u64,
    /// The result of the last completed flush.
    flush_result: Option<Result<(), FlushError>>,
    /// Shutdown requested, with its deadline.
    shutdown_deadline: Option<Instant>,
    /// The worker has finished and returned.
    worker_done: bool,
    shutdown_result: Option<Result<(), FlushError>>,
}

#[derive(Debug)]
struct Shared {
    /// Lanes for the threads that end spans, then the queue they share.
    lanes: Lanes<SpanData>,
    queue: BoundedQueue<SpanData>,
    /// When producers wake the worker (the protocol is in `wake.rs`).
    wake: WakeUp,
    config: BatchConfig,
    /// Brought forward at shutdown so an export waiting on retries gives up in time.
    cancel: ExportCancel,
    is_shutdown: AtomicBool,
    /// The worker has made its last export: see [`Shared::seal`].
    sealed: AtomicBool,
    /// A flush is waiting: the worker stops draining full batches to serve it.
    flush_pending: AtomicBool,
    control: Mutex<Control>,
    /// Wakes callers waiting for a flush or shutdown.
    caller_cv: Condvar,
    // Counters written by application threads (only on drops, and for spans
    // started on a thread without a lane here; the others count in lanes).
    started_elsewhere: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_after_shutdown: AtomicU64,
    // Counters written by the worker.
    /// Spans queued, then found in the queue when the worker stopped (reported
    /// as `dropped_after_shutdown`; already in `spans_queued`).
    dropped_late: AtomicU64,
    popped: AtomicU64,
    exported: AtomicU64,
    dropped_export_failed: AtomicU64,
    dropped_rejected: AtomicU64,
    dropped_too_large: AtomicU64,
    batches_exported: AtomicU64,
    export_failures: AtomicU64,
    last_export_error: Mutex<Option<String>>,
}

impl Shared {
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The worker has made its last export (or never will): from now on
    /// whatever is queued is dropped, counted as `dropped_after_shutdown`.
    /// Empties the queue and returns how many spans it held.
    fn seal(&self) -> u64 {
        self.sealed.store(true, Ordering::SeqCst);
        self.drop_late(true)
    }

    /// Empties the queue after [`seal`](Self::seal) and counts those spans
    /// once: as popped (they were queued) and as late drops (reported in
    /// `dropped_after_shutdown`, which `spans_ended` otherwise adds for spans
    /// that never entered the queue). A batch inside a hung export is not
    /// among them: it was taken already. Without `wait`, it gives up at once
    /// if another thread is consuming. Returns how many there were.
    ///
    /// Besides the sealing itself, whoever finds spans queued after it drops
    /// them: a producer whose push landed after the last drain, and `stats`.
    /// So a span ended while shutdown runs is exported or counted, never left
    /// queued, without a fence on the producers' path.
    fn drop_late(&self, wait: bool) -> u64 {
        // In pieces: a hung backend's full queue copied out at once would
        // add its size to the process at the worst moment.
        const PIECE: usize = 256;
        let consumer = if wait {
            Some(self.lanes.consumer())
        } else {
            self.lanes.try_consumer()
        };
        let Some(consumer) = consumer else {
            return 0;
        };
        let mut late = Vec::with_capacity(PIECE);
        let mut total = 0;
        loop {
            let room = PIECE - self.queue.drain_into(&mut late, PIECE);
            consumer.drain_into(&mut late, room, None);
            if late.is_empty() {
                break;
            }
            let n = late.len() as u64;
            self.popped.fetch_add(n, Ordering::Relaxed);
            self.dropped_late.fetch_add(n, Ordering::Release);
            total += n;
            late.clear();
        }
        total
    }

    /// A producer's push landed after the queue was sealed: nobody would
    /// take it out. Out of line: this happens only while shutdown races
    /// producers.
    #[cold]
    #[inline(never)]
    fn pushed_after_seal(&self) {
        self.drop_late(false);
    }

    /// Makes a lane if a thread asked for one; wake checks then come more
    /// often.
    fn add_lane_if_wanted(&self) {
        if self.lanes.add_lane_if_wanted() {
            self.wake
                .lanes_made(wake_batch_size(&self.config), self.lanes.made_count());
        }
    }

    /// Spans in the lanes and the shared queue.
    fn queued_len(&self) -> usize {
        self.lanes.len() + self.queue.len()
    }
}

impl QueueLengths for Shared {
    #[inline]
    fn lanes_len(&self) -> usize {
        self.lanes.len()
    }

    #[inline]
    fn queue_len(&self) -> usize {
        self.queue.len()
    }
}

/// Exports sampled spans in batches from a background thread.
///
/// ```
/// use runtrace::{BatchConfig, BatchSpanProcessor, InMemoryExporter, TracerProvider};
/// let exporter = InMemoryExporter::default();
/// let provider = TracerProvider::builder()
///     .with_span_processor(BatchSpanProcessor::new(exporter.clone(), BatchConfig::default()))
///     .build();
/// provider.tracer("t").span("work").start().end();
/// provider.force_flush().unwrap();
/// assert_eq!(exporter.finished_spans().len(), 1);
/// ```
#[derive(Debug)]
pub struct BatchSpanProcessor {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// Whether this processor's spans still count in the recycling pools'
    /// size (until it shuts down or is dropped, whichever is first).
    provisioned: AtomicBool,
}

impl BatchSpanProcessor {
    /// Starts the worker thread `runtrace-batch` that owns `exporter`.
    pub fn new(exporter: impl SpanExporter + 'static, config: BatchConfig) -> Self {
        let config = config.validated();
        recycle::provision(config.spans_in_flight());
        // One budget for the lanes and the shared queue together.
        let budget = Budget::split(config.max_queue_size, max_lanes());
        let lanes = Lanes::new(budget.lanes);
        // The first thread to end a span finds its lane ready; the worker
        // makes more when threads find none free.
        lanes.add_lane();
        let shared = Arc::new(Shared {
            lanes,
            queue: BoundedQueue::with_capacity(budget.queue),
            wake: WakeUp::new(wake_batch_size(&config)),
            config,
            cancel: ExportCancel::default(),
            is_shutdown: AtomicBool::new(false),
            sealed: AtomicBool::new(false),
            flush_pending: AtomicBool::new(false),
            control: Mutex::new(Control::default()),
            caller_cv: Condvar::new(),
            started_elsewhere: AtomicU64::new(0),
            dropped_queue_full: AtomicU64::new(0),
            dropped_after_shutdown: AtomicU64::new(0),
            dropped_late: AtomicU64::new(0),
            popped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            dropped_export_failed: AtomicU64::new(0),
            dropped_rejected: AtomicU64::new(0),
            dropped_too_large: AtomicU64::new(0),
            batches_exported: AtomicU64::new(0),
            export_failures: AtomicU64::new(0),
            last_export_error: Mutex::new(None),
        });
        let worker_shared = shared.clone();
        let mut exporter: Box<dyn SpanExporter> = Box::new(exporter);
        exporter.set_cancel(shared.cancel.clone());
        let handle = std::thread::Builder::new()
            .name("runtrace-batch".into())
            .spawn(move || {
                let shared = worker_shared.clone();
                let run = catch_unwind(AssertUnwindSafe(|| {
                    Worker::new(worker_shared, exporter).run()
                }));
                if let Err(panic) = run {
                    // A bug in the worker itself: stop taking spans (they are counted
                    // as dropped) and release anyone waiting on a flush or shutdown.
                    diagnostics::emit(
                        Level::Error,
                        &format!(
                            "the runtrace-batch worker panicked: {}",
                            diagnostics::panic_message(&panic)
                        ),
                    );
                    shared.is_shutdown.store(true, Ordering::Release);
                    shared.lanes.close();
                    shared.seal();
                    let mut c = shared.control();
                    c.worker_done = true;
                    c.shutdown_result = Some(Err(FlushError::AlreadyShutdown));
                    shared.caller_cv.notify_all();
                }
            });
        let worker = match handle {
            Ok(h) => {
                shared.wake.set_worker(h.thread().clone());
                Some(h)
            }
            Err(e) => {
                // Without a worker nothing can be exported: refuse spans (counted).
                diagnostics::emit(
                    Level::Error,
                    &format!(
                        "could not start the runtrace-batch thread ({e}); spans will be dropped"
                    ),
                );
                shared.is_shutdown.store(true, Ordering::Release);
                shared.lanes.close();
                shared.seal();
                let mut c = shared.control();
                c.worker_done = true;
                c.shutdown_result = Some(Ok(()));
                None
            }
        };
        BatchSpanProcessor {
            shared,
            worker: Mutex::new(worker),
            provisioned: AtomicBool::new(true),
        }
    }

    /// The recycling pools no longer keep lists and details for this
    /// processor's spans. Once, whichever of shutdown and drop comes first
    /// (a processor whose worker failed or panicked never runs a shutdown).
    fn unprovision(&self) {
        if self.provisioned.swap(false, Ordering::AcqRel) {
            recycle::unprovision(self.shared.config.spans_in_flight());
        }
    }

    /// The processor's configuration.
    pub fn config(&self) -> &BatchConfig {
        &self.shared.config
    }

    /// [`SpanProcessor::force_flush`] with a timeout.
    pub fn force_flush_with_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        self.force_flush(crate::clock::deadline_after(timeout))
    }

    /// [`SpanProcessor::shutdown`] with a timeout.
    pub fn shutdown_with_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        SpanProcessor::shutdown(self, crate::clock::deadline_after(timeout))
    }

    /// Waits on `caller_cv` until `done` holds or the deadline passes.
    fn wait_until<'a>(
        &'a self,
        mut c: MutexGuard<'a, Control>,
        deadline: Instant,
        done: impl Fn(&Control) -> bool,
    ) -> (MutexGuard<'a, Control>, bool) {
        loop {
            if done(&c) {
                return (c, true);
            }
            let now = Instant::now();
            if now >= deadline {
                return (c, false);
            }
            c = self
                .shared
                .caller_cv
                .wait_timeout(c, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl BatchSpanProcessor {
    /// Counts a sampled span started (for [`ProcessorStats::spans_started`]):
    /// in the thread's lane, a line no other thread writes, or, on a thread
    /// without a lane here (its first span, or more threads than lanes), in a
    /// shared counter.
    #[inline]
    pub(crate) fn count_started(&self) {
        if !self.shared.lanes.count_in_lane() {
            self.shared
                .started_elsewhere
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// [`SpanProcessor::on_end`] for a span that stays where it lies until it
    /// is copied into the queue: `span` is empty afterwards.
    #[inline]
    pub(crate) fn on_end_in_place(&self, span: &mut Option<SpanData>) {
        let Some(data) = span.as_ref() else {
            return;
        };
        let shared = &*self.shared;
        if !data.span_context.is_sampled() {
            // Not for export.
        } else if shared.is_shutdown.load(Ordering::Relaxed) {
            shared
                .dropped_after_shutdown
                .fetch_add(1, Ordering::Relaxed);
        } else if let LanePush::Pushed(count) = shared.lanes.push_from(span) {
            shared.wake.after_push(Pushed::Lane(count), shared);
            if shared.sealed.load(Ordering::Relaxed) {
                shared.pushed_after_seal();
            }
            return;
        } else if shared.queue.push_from(span) {
            // No lane, or the lane is full.
            shared.wake.after_push(Pushed::Queue, shared);
            if shared.sealed.load(Ordering::Relaxed) {
                shared.pushed_after_seal();
            }
            return;
        } else {
            shared.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
        }
        // Spans not queued give their attribute list and details back to the
        // pools, so that overload does not turn into allocator traffic.
        if let Some(data) = span.take() {
            recycle::give_list(data.attributes);
            if let Some(details) = data.details {
                recycle::give_details(details);
            }
        }
    }
}

impl SpanProcessor for BatchSpanProcessor {
    #[inline]
    fn on_end(&self, span: SpanData) {
        self.on_end_in_place(&mut Some(span));
    }

    fn force_flush(&self, deadline: Instant) -> Result<(), FlushError> {
        if self.shared.is_shutdown.load(Ordering::Acquire) {
            return Err(FlushError::AlreadyShutdown);
        }
        let mut c = self.shared.control();
        c.flush_requested += 1;
        c.flush_deadline = Some(c.flush_deadline.map_or(deadline, |d| d.max(deadline)));
        let generation = c.flush_requested;
        self.shared.flush_pending.store(true, Ordering::Release);
        self.shared.wake.wake();
        let (c, done) = self.wait_until(c, deadline, |c| {
            c.flush_completed >= generation || c.worker_done
        });
        if !done {
            return Err(FlushError::Timeout);
        }
        if c.flush_completed >= generation {
            c.flush_result.clone().unwrap_or(Ok(()))
        } else {
            Err(FlushError::AlreadyShutdown)
        }
    }

    fn shutdown(&self, deadline: Instant) -> Result<(), FlushError> {
        if self.shared.is_shutdown.swap(true, Ordering::AcqRel) {
            return Err(FlushError::AlreadyShutdown);
        }
        self.shared.lanes.close();
        // The worker stops exporting a little before the caller's deadline, so
        // that it can count what is left before the caller gives up waiting.
        let margin = (deadline.saturating_duration_since(Instant::now()) / 10)
            .min(Duration::from_millis(100));
        let worker_deadline = deadline.checked_sub(margin).unwrap_or(deadline);
        self.shared.cancel.cancel_at(worker_deadline);
        let mut c = self.shared.control();
        c.shutdown_deadline = Some(worker_deadline);
        self.shared.wake.wake();
        let (c, done) = self.wait_until(c, deadline, |c| c.worker_done);
        let result = c.shutdown_result.clone();
        drop(c);
        self.unprovision();
        let handle = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if done {
            if let Some(h) = handle {
                let _ = h.join();
            }
            result.unwrap_or(Ok(()))
        } else {
            // The exporter hangs: leave the worker detached (dropping the handle),
            // and count what it will never export. The queue takes several
            // consumers, so draining it here is safe even if the worker wakes up.
            let left = self.shared.seal();
            diagnostics::emit(
                Level::Error,
                &format!(
                    "shutdown deadline passed while an export was still running; {left} queued spans dropped"
                ),
            );
            Err(FlushError::Timeout)
        }
    }

    fn stats(&self) -> Option<ProcessorStats> {
        let s = &*self.shared;
        if s.sealed.load(Ordering::Acquire) {
            // Spans pushed by producers racing the shutdown, after its last
            // look: dropped and counted now rather than shown as queued.
            s.drop_late(true);
        }
        let r = |a: &AtomicU64| a.load(Ordering::Acquire);
        // Outcomes first, then what was taken from the queue, then the queue:
        // a batch finishing meanwhile is then never counted twice.
        let spans_exported = r(&s.exported);
        let dropped_export_failed = r(&s.dropped_export_failed);
        let dropped_rejected = r(&s.dropped_rejected);
        let dropped_too_large = r(&s.dropped_too_large);
        let dropped_late = r(&s.dropped_late);
        let popped = r(&s.popped);
        let queue_size = s.queued_len() as u64;
        let spans_queued = popped + queue_size;
        let dropped_queue_full = r(&s.dropped_queue_full);
        let dropped_after_shutdown = r(&s.dropped_after_shutdown);
        // Last: a span starts before it ends, so started >= ended.
        let spans_started = r(&s.started_elsewhere) + s.lanes.counted() as u64;
        let settled = spans_exported
            + dropped_export_failed
            + dropped_rejected
            + dropped_too_large
            + dropped_late;
        Some(ProcessorStats {
            spans_started,
            // Late drops were queued first: they are in `spans_queued` already.
            spans_ended: spans_queued + dropped_queue_full + dropped_after_shutdown,
            spans_queued,
            spans_exported,
            dropped_queue_full,
            dropped_export_failed,
            dropped_rejected,
            dropped_after_shutdown: dropped_after_shutdown + dropped_late,
            dropped_too_large,
            spans_in_flight: popped.saturating_sub(settled),
            batches_exported: r(&s.batches_exported),
            export_failures: r(&s.export_failures),
            queue_size,
            queue_capacity: s.config.max_queue_size as u64,
            last_export_error: s
                .last_export_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        })
    }
}

impl Drop for BatchSpanProcessor {
    /// A processor dropped without shutdown (e.g. never added to a provider)
    /// still stops its worker, waiting at most 5 s.
    fn drop(&mut self) {
        if !self.shared.is_shutdown.load(Ordering::Acquire) {
            let _ = self.shutdown_with_timeout(DEFAULT_DROP_SHUTDOWN_TIMEOUT);
        }
        self.unprovision();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InMemoryExporter, TracerProvider};

    /// A producer that read "not shut down" just before the shutdown and
    /// pushes after the worker's last look (made deterministic here by
    /// clearing the flag again): it drops its span itself, and what nobody
    /// dropped is dropped by the next `stats`, so nothing stays queued.
    #[test]
    fn spans_pushed_after_the_last_drain_are_dropped_and_counted() {
        let exporter = InMemoryExporter::default();
        let bsp = BatchSpanProcessor::new(exporter.clone(), BatchConfig::default());
        let shared = bsp.shared.clone();
        let provider = TracerProvider::builder().with_span_processor(bsp).build();
        let tracer = provider.tracer("t");
        tracer.span("before").start().end();
        provider.shutdown().unwrap();
        let span = exporter.finished_spans().pop().unwrap();
        assert!(shared.sealed.load(Ordering::Relaxed));

        // The producer itself finds its span queued after the seal.
        shared.is_shutdown.store(false, Ordering::Relaxed);
        tracer.span("late").start().end();
        assert_eq!(shared.queued_len(), 0);
        assert_eq!(shared.dropped_late.load(Ordering::Relaxed), 1);

        // Pushes whose producer missed the seal: `stats` drops them.
        let mut lane_span = Some(span.clone());
        assert!(matches!(
            shared.lanes.push_from(&mut lane_span),
            LanePush::Pushed(_)
        ));
        assert!(shared.queue.push_from(&mut Some(span)));
        assert_eq!(shared.queued_len(), 2);
        shared.is_shutdown.store(true, Ordering::Relaxed);
        let s = provider.stats();
        assert_eq!(s.queue_size, 0, "{s:?}");
        assert_eq!(s.spans_ended, 4, "{s:?}");
        assert_eq!(s.spans_exported, 1, "{s:?}");
        assert_eq!(s.dropped_after_shutdown, 3, "{s:?}");
    }

    #[test]
    fn producers_wake_the_worker_about_once_per_batch() {
        let exporter = InMemoryExporter::default();
        let bsp = BatchSpanProcessor::new(
            exporter.clone(),
            BatchConfig::builder()
                .with_max_queue_size(100_000)
                .with_max_export_batch_size(100)
                .with_scheduled_delay(Duration::from_secs(3600))
                .build(),
        );
        let shared = bsp.shared.clone();
        let provider = TracerProvider::builder().with_span_processor(bsp).build();
        let tracer = provider.tracer("t");
        // Let the new worker reach its first sleep, so the first full batch wakes it.
        let start = Instant::now();
        while !shared.wake.is_asleep() && start.elapsed().as_secs() < 5 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..10_000 {
            tracer.span("s").start().end();
        }
        provider.force_flush().unwrap();
        assert_eq!(exporter.finished_spans().len(), 10_000);
        let wakeups = shared.wake.producer_wakeups();
        assert!(
            wakeups <= 10_000 / 100 + 1,
            "{wakeups} wake-ups for 100 batches"
        );
        assert!(wakeups > 0, "full batches must wake the sleeping worker");
    }
}
