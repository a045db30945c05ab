//! The batch processor's background thread: it exports full batches, partial
//! ones when the schedule delay passes, everything on a flush, and shuts down
//! within its deadline. Application threads never wait for it.

use super::Shared;
use crate::data::attribute::dedup_keys;
use crate::data::{ScopeRun, SpanData};
use crate::diagnostics::{self, panic_message, Level, RateLimiter};
use crate::export::{ExportError, SpanExporter};
use crate::processor::{recycle, FlushError};
use crate::sync::Marks;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// With a schedule delay of 0, how long an idle worker sleeps at most between
/// looks (a span, a flush or a shutdown wakes it earlier).
const IDLE_WITH_ZERO_DELAY: Duration = Duration::from_secs(1);

/// How often the "spans dropped" warning may repeat.
const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// The longest nap: when spans arrive fast enough to fill the next batch
/// within this time, the worker sleeps for that long instead of asking
/// producers to wake it.
const MAX_NAP: Duration = Duration::from_millis(1);

/// The background thread's state.
pub(super) struct Worker {
    shared: Arc<Shared>,
    exporter: Box<dyn SpanExporter>,
    batch: Vec<SpanData>,
    next_tick: Instant,
    drop_warnings: RateLimiter,
    reported_drops: u64,
    /// Export failures and partial successes are reported at the same pace.
    export_warnings: RateLimiter,
    /// When the worker last went to sleep, and how many spans had arrived.
    last_sleep: Option<(Instant, u64)>,
}

impl Worker {
    pub(super) fn new(shared: Arc<Shared>, exporter: Box<dyn SpanExporter>) -> Self {
        let batch = Vec::with_capacity(shared.config.max_export_batch_size);
        let next_tick = crate::clock::deadline_after(shared.config.scheduled_delay);
        Worker {
            shared,
            exporter,
            batch,
            next_tick,
            drop_warnings: RateLimiter::new(DROP_WARNING_INTERVAL),
            reported_drops: 0,
            export_warnings: RateLimiter::new(DROP_WARNING_INTERVAL),
            last_sleep: None,
        }
    }

    pub(super) fn run(mut self) {
        let batch_size = self.shared.config.max_export_batch_size;
        loop {
            // Threads that found no free lane get one (producers never allocate).
            self.shared.add_lane_if_wanted();
            // Once a flush or shutdown is requested, batches go out under its
            // deadline (below), even while producers keep the queue full; and
            // at each tick everything queued goes out (below), even while
            // full batches keep coming from one thread's lane.
            while self.shared.queued_len() >= batch_size
                && !self.shared.is_shutdown.load(Ordering::Acquire)
                && !self.shared.flush_pending.load(Ordering::Acquire)
                && Instant::now() < self.next_tick
            {
                // Failures are counted and reported inside.
                let _ = self.export_one_batch(None, None, None);
            }
            self.report_drops();
            let (flush, shutdown) = {
                let mut c = self.shared.control();
                self.shared.flush_pending.store(false, Ordering::Release);
                let flush = (c.flush_requested > c.flush_completed)
                    .then(|| (c.flush_requested, c.flush_deadline.take()));
                (flush, c.shutdown_deadline)
            };
            if let Some(deadline) = shutdown {
                self.shut_down(deadline);
                return;
            }
            if let Some((generation, deadline)) = flush {
                let result = self.flush_all(deadline);
                let mut c = self.shared.control();
                c.flush_completed = generation;
                c.flush_result = Some(result);
                self.shared.caller_cv.notify_all();
                continue;
            }
            let now = Instant::now();
            if now >= self.next_tick && self.shared.config.scheduled_delay.is_zero() {
                // A schedule delay of 0: export whatever is queued, and sleep
                // while nothing is (every push makes a wake check, and the
                // first span wakes the worker), instead of ticking in a loop.
                if self.shared.queued_len() == 0 {
                    self.shared.wake.sleep(
                        1,
                        IDLE_WITH_ZERO_DELAY,
                        1,
                        self.shared.lanes.made_count(),
                        &*self.shared,
                    );
                    continue;
                }
            }
            if now >= self.next_tick {
                // Failures are counted and reported inside; a flush or
                // shutdown requested meanwhile takes over (above).
                let _ = self.export_queued(None, true);
                self.next_tick = crate::clock::deadline_after(self.shared.config.scheduled_delay);
                continue;
            }
            self.sleep(self.next_tick - now, batch_size);
        }
    }

    /// Sleeps until unparked or `timeout` passes, publishing the queue length at
    /// which producers should wake it (the protocol is in `wake.rs`).
    /// Callers unpark after recording a request, so none is missed (the park token
    /// is kept if the unpark comes first); spurious wake-ups just loop.
    ///
    /// Waking a sleeping thread costs the producer a system call and the kernel
    /// an interrupt to the worker's CPU. So when spans arrive fast enough that
    /// the next batch fills within [`MAX_NAP`], the worker instead naps (see
    /// [`SleepPlan`]), and producers wake it only if the queue gets half full.
    fn sleep(&mut self, timeout: Duration, batch_size: usize) {
        let shared = &*self.shared;
        let now = Instant::now();
        let len = shared.queued_len();
        let arrived = shared.popped.load(Ordering::Relaxed) + len as u64;
        let last = self.last_sleep.replace((now, arrived));
        let plan = SleepPlan {
            since_last: last.map(|(then, before)| {
                (
                    now.saturating_duration_since(then),
                    arrived.saturating_sub(before),
                )
            }),
            len,
            batch_size,
            // What a single thread fills: its lane (the largest), then the
            // shared queue.
            capacity: shared.lanes.largest_lane() + shared.queue.capacity(),
        };
        let (wake_at, timeout) = plan.decide(timeout);
        shared.wake.sleep(
            wake_at,
            timeout,
            batch_size,
            shared.lanes.made_count(),
            shared,
        );
    }

    /// Exports up to one batch from the queue; `cap` bounds the deadline.
    /// With `marks` and `in_queue`, only spans queued when they were taken:
    /// before each lane's mark, and the first `in_queue` of the shared queue
    /// (which counts down).
    ///
    /// A lane that holds a full batch exports it in place; otherwise the batch
    /// is gathered from the lanes and the shared queue.
    fn export_one_batch(
        &mut self,
        cap: Option<Instant>,
        marks: Option<&Marks>,
        in_queue: Option<&mut usize>,
    ) -> Result<(), FlushError> {
        let shared = self.shared.clone();
        let max = shared.config.max_export_batch_size;
        let mut deadline = shared
            .cancel
            .effective(crate::clock::deadline_after(shared.config.export_timeout));
        if let Some(cap) = cap {
            deadline = deadline.min(cap);
        }
        let exporter = &mut self.exporter;
        let lanes = shared.lanes.consumer();
        let (n, outcome) = if let Some(run) = lanes.claim_run(max, max, marks) {
            drop(lanes);
            let n = run.len();
            // Counted as taken before the export, as a gathered batch is.
            shared.popped.fetch_add(n as u64, Ordering::Relaxed);
            let mut outcome = Ok(());
            let mut scopes = None;
            run.export(
                |run| outcome = export_guarded(exporter, run, deadline),
                |span| give_back(span, &mut scopes),
            );
            (n, outcome)
        } else {
            // The shared queue first: many threads may be filling it (those
            // without a lane, and overflow), and its spans are dropped first.
            let mut n = match in_queue {
                Some(left) => {
                    let taken = shared.queue.drain_into(&mut self.batch, max.min(*left));
                    *left -= taken;
                    taken
                }
                None => shared.queue.drain_into(&mut self.batch, max),
            };
            n += lanes.drain_into(&mut self.batch, max - n, marks);
            drop(lanes);
            if n == 0 {
                return Ok(());
            }
            shared.popped.fetch_add(n as u64, Ordering::Relaxed);
            let outcome = export_guarded(exporter, &mut self.batch, deadline);
            let mut scopes = None;
            for span in self.batch.drain(..) {
                give_back(span, &mut scopes);
            }
            (n, outcome)
        };
        let n = n as u64;
        let result = match outcome {
            Ok(()) => {
                shared.exported.fetch_add(n, Ordering::Release);
                shared.batches_exported.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(ExportError::PartialSuccess { rejected, message }) => {
                let (rejected, total) =
                    delivered_but(&shared, n, rejected, &shared.dropped_rejected);
                if self.export_warnings.allow() {
                    diagnostics::warn(&format!(
                        "the backend rejected {rejected} of {n} spans: {message} ({total} rejected in total)"
                    ));
                }
                Ok(())
            }
            Err(ExportError::TooLarge { dropped, message }) => {
                let (dropped, total) =
                    delivered_but(&shared, n, dropped, &shared.dropped_too_large);
                if self.export_warnings.allow() {
                    diagnostics::warn(&format!(
                        "dropped {dropped} of {n} spans, too large to send: {message}; \
                         OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT caps attribute values \
                         ({total} dropped for their size in total)"
                    ));
                }
                Ok(())
            }
            Err(e) => {
                shared.dropped_export_failed.fetch_add(n, Ordering::Release);
                shared.export_failures.fetch_add(1, Ordering::Relaxed);
                let msg = e.to_string();
                if self.export_warnings.allow() {
                    diagnostics::emit(
                        Level::Error,
                        &format!(
                            "dropped {n} spans: {msg} ({} export failures, {} spans lost so far)",
                            shared.export_failures.load(Ordering::Relaxed),
                            shared.dropped_export_failed.load(Ordering::Relaxed)
                        ),
                    );
                }
                *shared
                    .last_export_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(msg);
                Err(FlushError::Export(e))
            }
        };
        result
    }

    /// Exports every span queued now, in batches, within `cap`: what each
    /// lane and the shared queue hold at this moment, whatever arrives
    /// meanwhile (so a thread that keeps its lane full cannot hold it up).
    /// With `yield_to_requests`, it stops between batches once a flush or a
    /// shutdown is requested, which then exports under its own deadline.
    fn export_queued(
        &mut self,
        cap: Option<Instant>,
        yield_to_requests: bool,
    ) -> Result<(), FlushError> {
        let marks = self.shared.lanes.marks();
        let mut in_queue = self.shared.queue.len();
        let mut result = Ok(());
        loop {
            if cap.is_some_and(|c| Instant::now() >= c) {
                return Err(FlushError::Timeout);
            }
            if yield_to_requests
                && (self.shared.is_shutdown.load(Ordering::Acquire)
                    || self.shared.flush_pending.load(Ordering::Acquire))
            {
                return result;
            }
            let before = self.shared.popped.load(Ordering::Relaxed);
            if let Err(e) = self.export_one_batch(cap, Some(&marks), Some(&mut in_queue)) {
                result = Err(e);
            }
            if self.shared.popped.load(Ordering::Relaxed) == before {
                return result;
            }
        }
    }

    /// Exports everything queued now, then flushes the exporter.
    fn flush_all(&mut self, cap: Option<Instant>) -> Result<(), FlushError> {
        let result = self.export_queued(cap, false);
        if result == Err(FlushError::Timeout) {
            return result;
        }
        let deadline =
            cap.unwrap_or_else(|| crate::clock::deadline_after(self.shared.config.export_timeout));
        let exporter = &mut self.exporter;
        match catch_unwind(AssertUnwindSafe(|| exporter.force_flush(deadline))) {
            Ok(Ok(())) => result,
            Ok(Err(e)) => Err(FlushError::Export(e)),
            Err(p) => Err(FlushError::Export(ExportError::Failed(format!(
                "exporter panicked in force_flush: {}",
                panic_message(&p)
            )))),
        }
    }

    fn shut_down(&mut self, deadline: Instant) {
        let mut result = self.flush_all(Some(deadline));
        let exporter = &mut self.exporter;
        match catch_unwind(AssertUnwindSafe(|| exporter.shutdown(deadline))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = result.and(Err(FlushError::Export(e))),
            Err(p) => {
                diagnostics::emit(
                    Level::Error,
                    &format!("exporter panicked in shutdown: {}", panic_message(&p)),
                );
            }
        }
        self.shared.seal();
        self.report_drops();
        let mut c = self.shared.control();
        c.worker_done = true;
        c.shutdown_result = Some(result);
        self.shared.caller_cv.notify_all();
    }

    /// Warns about queue-full drops: the first at once, then every 10 s at most.
    fn report_drops(&mut self) {
        let dropped = self.shared.dropped_queue_full.load(Ordering::Relaxed);
        if dropped > self.reported_drops && self.drop_warnings.allow() {
            diagnostics::emit(
                Level::Error,
                &format!(
                    "{} spans dropped because the queue was full ({dropped} in total; \
                     max_queue_size={} spans for all threads together, {} queued now); \
                     raise OTEL_BSP_MAX_QUEUE_SIZE or lower OTEL_BSP_SCHEDULE_DELAY",
                    dropped - self.reported_drops,
                    self.shared.config.max_queue_size,
                    self.shared.queued_len()
                ),
            );
            self.reported_drops = dropped;
        }
    }
}

/// De-duplicates each span's attribute keys, then exports `batch`, turning a
/// panic and an overrun deadline into errors.
fn export_guarded(
    exporter: &mut Box<dyn SpanExporter>,
    batch: &mut [SpanData],
    deadline: Instant,
) -> Result<(), ExportError> {
    // Spans add attributes without looking for their key: a key
    // set twice keeps its last value here, off the application threads.
    for span in batch.iter_mut() {
        dedup_keys(&mut span.attributes);
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| exporter.export(batch, deadline)));
    match outcome {
        Ok(Ok(())) if Instant::now() > deadline => Err(ExportError::Timeout),
        Ok(r) => r,
        Err(panic) => Err(ExportError::Failed(format!(
            "exporter panicked: {}",
            panic_message(&panic)
        ))),
    }
}

/// Drops an exported span, giving back what it holds: its attribute list and
/// its details (with their events' lists) to the recycling pools, and its
/// scope reference to `scopes`, which gives the counts of consecutive spans
/// of one tracer back together.
#[inline]
fn give_back(span: SpanData, scopes: &mut Option<ScopeRun>) {
    let SpanData {
        attributes,
        instrumentation,
        details,
        ..
    } = span;
    recycle::give_list(attributes);
    if let Some(details) = details {
        recycle::give_details(details);
    }
    ScopeRun::extend(scopes, instrumentation);
}

/// What the worker knows when it goes to sleep.
struct SleepPlan {
    /// Time since it last went to sleep, and spans that arrived meanwhile.
    since_last: Option<(Duration, u64)>,
    /// Spans queued now.
    len: usize,
    batch_size: usize,
    capacity: usize,
}

impl SleepPlan {
    /// The queue length at which producers should wake the worker, and how long
    /// it sleeps unless woken. When the next batch fills within [`MAX_NAP`],
    /// it naps until a quarter of the queue has filled, or for `MAX_NAP`
    /// (then producers wake it only at half a queue); otherwise it sleeps
    /// until `timeout` or a full batch.
    ///
    /// Long naps matter when application threads keep every CPU busy: each
    /// wake-up takes a CPU from one of them (an interrupt, two context
    /// switches and cold caches after), however little the worker then does.
    fn decide(&self, timeout: Duration) -> (usize, Duration) {
        let Some((elapsed, arrived)) = self.since_last else {
            return (self.batch_size, timeout);
        };
        let fill = |target: usize| time_to_fill(elapsed, arrived, target.saturating_sub(self.len));
        match fill(self.batch_size) {
            Some(batch) if batch < timeout => {
                let nap = fill(self.capacity / 4).unwrap_or(MAX_NAP).max(batch);
                (self.batch_size.max(self.capacity / 2), nap.min(timeout))
            }
            _ => (self.batch_size, timeout),
        }
    }
}

/// How long `missing` more spans take to arrive at the rate of `arrived` spans
/// in `elapsed`, if that is at most [`MAX_NAP`].
fn time_to_fill(elapsed: Duration, arrived: u64, missing: usize) -> Option<Duration> {
    if arrived == 0 {
        return None;
    }
    let nanos = elapsed.as_nanos().saturating_mul(missing as u128) / u128::from(arrived);
    let nap = Duration::from_nanos(u64::try_from(nanos).ok()?);
    (nap <= MAX_NAP).then_some(nap)
}

/// Counts a batch of `n` spans delivered but for `lost` (at most `n`), which
/// `counter` counts: the batch is exported. Returns the lost spans and the
/// counter's new total.
fn delivered_but(shared: &Shared, n: u64, lost: u64, counter: &AtomicU64) -> (u64, u64) {
    let lost = lost.min(n);
    shared.exported.fetch_add(n - lost, Ordering::Release);
    let total = counter.fetch_add(lost, Ordering::Release) + lost;
    shared.batches_exported.fetch_add(1, Ordering::Relaxed);
    (lost, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naps_only_when_the_next_batch_fills_within_max_nap() {
        let ms = Duration::from_millis;
        // 512 spans in 1 ms: 256 more take 0.5 ms.
        assert_eq!(
            time_to_fill(ms(1), 512, 256),
            Some(Duration::from_micros(500))
        );
        assert_eq!(time_to_fill(ms(1), 512, 512), Some(ms(1)));
        // Slower than a batch per MAX_NAP, or nothing seen yet: sleep normally.
        assert_eq!(time_to_fill(ms(1), 512, 513), None);
        assert_eq!(time_to_fill(ms(5), 10, 512), None);
        assert_eq!(time_to_fill(ms(1), 0, 512), None);
        assert_eq!(time_to_fill(Duration::MAX, 1, usize::MAX), None);
        assert_eq!(time_to_fill(ms(1), 512, 0), Some(Duration::ZERO));
    }

    #[test]
    fn naps_at_a_high_rate_and_waits_for_a_full_batch_otherwise() {
        let ms = Duration::from_millis;
        let plan = |since_last, len| SleepPlan {
            since_last,
            len,
            batch_size: 512,
            capacity: 2048,
        };
        let delay = ms(5000);
        // 1024 spans in the last 2 ms, 256 queued: the other 256 take 0.5 ms.
        // Producers wake the worker only at half the queue.
        assert_eq!(
            plan(Some((ms(2), 1024)), 256).decide(delay),
            (1024, Duration::from_micros(500))
        );
        // Slow traffic, none since the last sleep, or the first sleep: wait
        // for a full batch or the schedule delay.
        assert_eq!(plan(Some((ms(100), 512)), 0).decide(delay), (512, delay));
        assert_eq!(plan(Some((ms(2), 0)), 0).decide(delay), (512, delay));
        assert_eq!(plan(None, 0).decide(delay), (512, delay));
        // A nap never outlasts the schedule delay.
        let short = Duration::from_micros(100);
        assert_eq!(plan(Some((ms(2), 1024)), 0).decide(short), (512, short));
        // A big queue: nap until a quarter of it has filled, at most MAX_NAP.
        let queue = |capacity| SleepPlan {
            since_last: Some((Duration::from_micros(100), 1024)),
            len: 256,
            batch_size: 512,
            capacity,
        };
        // 1024 spans per 0.1 ms: 2048 - 256 more take 0.175 ms.
        assert_eq!(
            queue(8192).decide(delay),
            (4096, Duration::from_micros(175))
        );
        assert_eq!(queue(1 << 20).decide(delay), (1 << 19, MAX_NAP));
        // Batches above half the queue: wake at the batch size.
        let big = SleepPlan {
            since_last: Some((ms(2), 1024)),
            len: 0,
            batch_size: 512,
            capacity: 600,
        };
        assert_eq!(big.decide(delay).0, 512);
    }
}
