//! Behaviour of the batch span processor: triggers, flush, shutdown deadlines,
//! drop accounting and exporter faults.
//!
//! Timing: these tests run on shared 2-CPU machines next to other builds, where a
//! thread can wait tens of milliseconds for a CPU. Every bound on elapsed time
//! says in a comment how far it is from what it distinguishes (the slack), and
//! waits for an event poll up to seconds rather than sleeping a fixed time.

use runtrace::sampling::{SamplingDecision, SamplingParameters, SamplingResult};
use runtrace::{
    BatchConfig, BatchSpanProcessor, ExportError, FlushError, InMemoryExporter, SpanData,
    SpanExporter, SpanProcessor, TracerProvider,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::wait_for;

fn config(queue: usize, batch: usize, delay_ms: u64) -> BatchConfig {
    BatchConfig::builder()
        .with_max_queue_size(queue)
        .with_max_export_batch_size(batch)
        .with_scheduled_delay(Duration::from_millis(delay_ms))
        .build()
}

fn provider_with(exporter: impl SpanExporter + 'static, cfg: BatchConfig) -> TracerProvider {
    TracerProvider::builder()
        .with_batch_config(cfg)
        .with_batch_exporter(exporter)
        .build()
}

fn end_spans(provider: &TracerProvider, n: usize) {
    let tracer = provider.tracer("t");
    for _ in 0..n {
        tracer.span("s").start().end();
    }
}

/// More threads than a processor makes lanes (two per CPU): some of them
/// end their spans into the shared queue.
fn more_threads_than_lanes() -> usize {
    2 * std::thread::available_parallelism().map_or(4, |n| n.get()) + 3
}

/// Runs `work` on `threads` threads at once, each with a handle to
/// `provider`, and waits for all of them.
fn on_threads(
    provider: &TracerProvider,
    threads: usize,
    work: impl Fn(&TracerProvider) + Clone + Send + 'static,
) {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (p, work) = (provider.clone(), work.clone());
            std::thread::spawn(move || work(&p))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

const HOUR: u64 = 3_600_000;

#[test]
fn full_batch_wakes_the_worker_before_the_delay() {
    let exporter = InMemoryExporter::default();
    let provider = provider_with(exporter.clone(), config(2048, 10, HOUR));
    end_spans(&provider, 10);
    // The schedule delay is an hour: 5 s of waiting tells the wake-up apart
    // with any scheduling delay.
    assert!(
        wait_for(
            || exporter.finished_spans().len() == 10,
            Duration::from_secs(5)
        ),
        "a full batch was not exported promptly"
    );
    end_spans(&provider, 3);
    // No slack needed: a wrong export of the partial batch could come at any
    // time; 100 ms gives a wrong early one the chance to show.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        exporter.finished_spans().len(),
        10,
        "a partial batch waits for the delay"
    );
}

#[test]
fn schedule_delay_exports_a_partial_batch() {
    let exporter = InMemoryExporter::default();
    let provider = provider_with(exporter.clone(), config(2048, 512, 50));
    end_spans(&provider, 3);
    assert!(wait_for(
        || exporter.finished_spans().len() == 3,
        Duration::from_secs(5)
    ));
}

#[test]
fn force_flush_exports_everything_ended_before_the_call() {
    let exporter = InMemoryExporter::default();
    let provider = provider_with(exporter.clone(), config(4096, 100, HOUR));
    end_spans(&provider, 1234);
    provider
        .force_flush_with_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(exporter.finished_spans().len(), 1234);
    let stats = provider.stats();
    assert_eq!(stats.spans_exported, 1234);
    assert_eq!(stats.queue_size, 0);
}

#[derive(Debug, Default)]
struct Hanging {
    entered: Arc<AtomicBool>,
}

impl SpanExporter for Hanging {
    fn export(&mut self, _: &[SpanData], _: Instant) -> Result<(), ExportError> {
        self.entered.store(true, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

#[test]
fn shutdown_returns_by_deadline_when_exporter_hangs() {
    let entered = Arc::new(AtomicBool::new(false));
    let provider = provider_with(
        Hanging {
            entered: entered.clone(),
        },
        config(2048, 1, HOUR),
    );
    // More than one piece of the late drain (256 spans).
    end_spans(&provider, 1000);
    assert!(wait_for(
        || entered.load(Ordering::SeqCst),
        Duration::from_secs(5)
    ));
    let start = Instant::now();
    let flush = provider.force_flush_with_timeout(Duration::from_millis(200));
    assert_eq!(flush, Err(FlushError::Timeout));
    let result = provider.shutdown_with_timeout(Duration::from_millis(300));
    let took = start.elapsed();
    assert_eq!(result, Err(FlushError::Timeout));
    // 200 + 300 ms of timeouts; 2.5 s of slack for scheduling (the exporter
    // hangs for an hour, so anything that waited for it would take that long).
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Only the batch inside the hung export is unaccounted for; the queue
    // behind it is counted as dropped.
    let s = provider.stats();
    assert_eq!(s.queue_size, 0, "{s:?}");
    assert_eq!(s.spans_ended, 1000);
    assert_eq!(s.dropped_after_shutdown, 999, "{s:?}");
    assert_eq!(
        provider.shutdown_with_timeout(Duration::from_millis(10)),
        Err(FlushError::AlreadyShutdown),
        "idempotent"
    );
}

#[derive(Debug, Default)]
struct NoOverlap {
    busy: Arc<AtomicBool>,
    overlaps: Arc<AtomicUsize>,
    spans: Arc<AtomicUsize>,
}

impl SpanExporter for NoOverlap {
    fn export(&mut self, batch: &[SpanData], _: Instant) -> Result<(), ExportError> {
        if self.busy.swap(true, Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_micros(200));
        self.spans.fetch_add(batch.len(), Ordering::SeqCst);
        self.busy.store(false, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn exports_never_overlap_and_stats_add_up_under_stress() {
    let exporter = NoOverlap::default();
    let (overlaps, spans) = (exporter.overlaps.clone(), exporter.spans.clone());
    let provider = provider_with(exporter, config(512, 64, 5));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let p = provider.clone();
            std::thread::spawn(move || {
                let tracer = p.tracer("stress");
                for i in 0..20_000 {
                    tracer.span("s").start().end();
                    if i % 5000 == 0 {
                        let _ = p.force_flush_with_timeout(Duration::from_secs(5));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    provider
        .shutdown_with_timeout(Duration::from_secs(10))
        .unwrap();
    let s = provider.stats();
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "exports overlapped");
    assert_eq!(s.spans_ended, 80_000);
    assert_eq!(s.spans_exported as usize, spans.load(Ordering::SeqCst));
    assert_eq!(s.queue_size, 0);
    assert_eq!(
        s.spans_ended,
        s.spans_exported + s.dropped_total(),
        "every span exported or counted: {s:?}"
    );
}

/// More threads than the processor has lanes, in two waves (the second takes
/// over the lanes the first gave back at exit): every span arrives once, and
/// the lanes and the shared queue together hold `max_queue_size`.
#[test]
fn spans_from_more_threads_than_lanes_arrive_exactly_once() {
    let exporter = InMemoryExporter::default();
    let queue = 1 << 16;
    let provider = provider_with(exporter.clone(), config(queue, 256, 5));
    let threads = more_threads_than_lanes();
    let per_thread = 2_000;
    for _wave in 0..2 {
        on_threads(&provider, threads, move |p| end_spans(p, per_thread));
    }
    provider.force_flush().unwrap();
    let s = provider.stats();
    let total = (2 * threads * per_thread) as u64;
    assert_eq!((s.spans_ended, s.spans_exported), (total, total), "{s:?}");
    assert_eq!(s.dropped_total(), 0, "{s:?}");
    let spans = exporter.finished_spans();
    let ids: std::collections::HashSet<_> =
        spans.iter().map(|d| d.span_context.span_id()).collect();
    assert_eq!((spans.len(), ids.len()), (total as usize, total as usize));
    assert_eq!(s.queue_capacity, queue as u64, "one budget for all: {s:?}");
    assert_eq!(s.spans_started, total, "{s:?}");
    provider.shutdown().unwrap();
}

/// Spans that never end (forgotten, or still open) show as the difference
/// between spans started and ended, counted per lane and on threads without
/// one alike (more threads than lanes).
#[test]
fn spans_never_ended_show_as_started_minus_ended() {
    let exporter = InMemoryExporter::default();
    let provider = provider_with(exporter.clone(), config(1 << 14, 256, HOUR));
    let threads = more_threads_than_lanes();
    on_threads(&provider, threads, |p| {
        end_spans(p, 100);
        std::mem::forget(p.tracer("t").span("leaked").start());
        end_spans(p, 100);
    });
    let open = provider.tracer("t").span("open").start();
    provider.force_flush().unwrap();
    let s = provider.stats();
    let ended = (threads * 200) as u64;
    assert_eq!(s.spans_ended, ended, "{s:?}");
    assert_eq!(s.spans_started, ended + threads as u64 + 1, "{s:?}");
    drop(open);
    let s = provider.stats();
    assert_eq!(s.spans_started - s.spans_ended, threads as u64, "{s:?}");
    provider.shutdown().unwrap();
}

/// Records when each span other than "bg" was exported.
#[derive(Debug, Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<(String, Instant)>>>);

impl Arrivals {
    fn when(&self, name: &str) -> Option<Instant> {
        let seen = self.0.lock().unwrap();
        seen.iter().find(|(n, _)| n == name).map(|(_, t)| *t)
    }
}

impl SpanExporter for Arrivals {
    fn export(&mut self, batch: &[SpanData], _: Instant) -> Result<(), ExportError> {
        let mut seen = self.0.lock().unwrap();
        for s in batch.iter().filter(|s| s.name != "bg") {
            seen.push((s.name.to_string(), Instant::now()));
        }
        Ok(())
    }
}

/// Ends "bg" spans from another thread until `stop`, in bursts of `burst`.
fn background(
    provider: &TracerProvider,
    burst: usize,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let (p, stop) = (provider.clone(), stop.clone());
    std::thread::spawn(move || {
        let tracer = p.tracer("bg");
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..burst {
                tracer.span("bg").start().end();
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    })
}

/// A thread that keeps its lane full of batches must not hold up a span
/// another thread ended: the schedule delay bounds its wait.
#[test]
fn a_busy_lane_does_not_hold_up_other_threads_spans() {
    let exporter = Arrivals::default();
    let provider = provider_with(exporter.clone(), config(65536, 512, 200));
    let stop = Arc::new(AtomicBool::new(false));
    let bg = background(&provider, 64, &stop);
    std::thread::sleep(Duration::from_millis(300));
    let ended = Instant::now();
    let p = provider.clone();
    std::thread::spawn(move || p.tracer("t").span("marker").start().end())
        .join()
        .unwrap();
    let seen = wait_for(|| exporter.when("marker").is_some(), Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    bg.join().unwrap();
    assert!(seen, "the marker waited over 5 s: {:?}", provider.stats());
    let waited = exporter.when("marker").unwrap() - ended;
    // A 200 ms delay; 1.8 s of slack, while a marker held up by the busy lane
    // would wait until the background thread stops (5 s above).
    assert!(
        waited < Duration::from_secs(2),
        "waited {waited:?} for a 200 ms delay"
    );
}

/// force_flush exports a span ended before the call even while another
/// thread keeps queueing full batches that the flush could take instead.
#[test]
fn force_flush_exports_spans_ended_before_it_whichever_queue_holds_them() {
    let exporter = Arrivals::default();
    let provider = provider_with(exporter.clone(), config(65536, 512, HOUR));
    let stop = Arc::new(AtomicBool::new(false));
    let bg = background(&provider, 4096, &stop);
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..3 {
        // A new thread each time: its span goes to a lane of its own or, with
        // none free, to the shared queue.
        let p = provider.clone();
        let name = format!("marker{i}");
        std::thread::spawn(move || p.tracer("t").span(name).start().end())
            .join()
            .unwrap();
        provider
            .tracer("main")
            .span(format!("main{i}"))
            .start()
            .end();
        let flushed = provider.force_flush_with_timeout(Duration::from_secs(20));
        assert_eq!(flushed, Ok(()));
        for name in [format!("marker{i}"), format!("main{i}")] {
            assert!(
                exporter.when(&name).is_some(),
                "{name} not exported by the flush"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    bg.join().unwrap();
}

/// One batch ended in one go after the worker went to sleep is exported
/// promptly, even though threads look whether to wake it only every so many
/// spans (here the lane's pushes run 2..=513: no look sees 512).
#[test]
fn a_batch_ended_between_two_looks_is_exported_promptly() {
    let exporter = InMemoryExporter::default();
    let provider = provider_with(exporter.clone(), config(2048, 512, 3_000));
    let tracer = provider.tracer("t");
    tracer.span("first").start().end();
    provider.force_flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    end_spans(&provider, 512);
    assert!(wait_for(
        || exporter.finished_spans().len() == 513,
        Duration::from_secs(10)
    ));
    let took = start.elapsed();
    // Without the wake-up the batch would wait for the 3 s schedule delay:
    // 2 s leaves more than 1.9 s of slack for ending 512 spans and scheduling
    // the worker, and still tells the two apart.
    assert!(
        took < Duration::from_millis(2_000),
        "the batch waited {took:?}"
    );
}

/// A lane's looks saw the lanes below the wake-up mark, and another thread,
/// which has no lane, completes the batch through the shared queue: its
/// pushes must count what the lane's looks saw.
#[test]
fn a_batch_completed_through_the_shared_queue_is_exported_promptly() {
    let exporter = InMemoryExporter::default();
    let provider = provider_with(exporter.clone(), config(2048, 512, 10_000));
    // Let the worker go to sleep with one lane made.
    std::thread::sleep(Duration::from_millis(200));
    let (ended, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let lane_thread = {
        let (p, ended, release) = (provider.clone(), ended.clone(), release.clone());
        std::thread::spawn(move || {
            end_spans(&p, 384);
            ended.wait();
            // Keeps the only lane bound until the batch is out.
            release.wait();
        })
    };
    ended.wait();
    let p = provider.clone();
    std::thread::spawn(move || end_spans(&p, 128))
        .join()
        .unwrap();
    let start = Instant::now();
    // The schedule delay is 10 s: 3 s is slack for scheduling, and still far
    // from the tick that would export the batch without the wake-up.
    let exported = wait_for(
        || exporter.finished_spans().len() >= 512,
        Duration::from_secs(3),
    );
    release.wait();
    lane_thread.join().unwrap();
    assert!(
        exported,
        "a full batch waited {:?}: {:?}",
        start.elapsed(),
        provider.stats()
    );
}

/// A shutdown requested while the worker exports everything queued at a
/// schedule tick takes over at the next batch: the rest is exported under the
/// shutdown's deadline and what is left then counted, not sent to the
/// exporter past its deadline.
#[test]
fn shutdown_takes_over_from_a_schedule_tick_export() {
    // 128 batches of 20 ms: 2.56 s of exports. The worker stops exporting 100 ms
    // (a tenth of the 1 s timeout) before the shutdown's deadline, so the last
    // export ends before it with 80 ms of slack for a late wake-up; and the
    // deadline comes 1.3 s after the spans ended, over 1.2 s before the exports
    // could be done, so some spans are left to count.
    let provider = provider_with(Slow(Duration::from_millis(20)), config(8192, 64, 200));
    end_spans(&provider, 8192);
    // Past the first tick: about 15 of the 128 batches are out.
    std::thread::sleep(Duration::from_millis(300));
    let _ = provider.shutdown_with_timeout(Duration::from_millis(1000));
    let s = provider.stats();
    assert_eq!(s.spans_in_flight, 0, "the worker finished: {s:?}");
    assert!(s.export_failures <= 1, "exports past the deadline: {s:?}");
    assert!(s.dropped_after_shutdown > 0, "{s:?}");
    assert_eq!(s.spans_ended, s.spans_exported + s.dropped_total(), "{s:?}");
}

#[derive(Debug)]
struct Slow(Duration);

impl SpanExporter for Slow {
    fn export(&mut self, _: &[SpanData], _: Instant) -> Result<(), ExportError> {
        std::thread::sleep(self.0);
        Ok(())
    }
}

#[test]
fn full_queue_drops_are_counted_and_reported() {
    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = messages.clone();
    runtrace::diagnostics::set_handler(move |_, m| sink.lock().unwrap().push(m.to_string()));
    let provider = provider_with(Slow(Duration::from_millis(100)), config(10, 5, HOUR));
    let start = Instant::now();
    end_spans(&provider, 1000);
    // Ending 1000 spans takes well under a millisecond; waiting for the exporter
    // (100 ms a batch of 5) would take seconds. 1 s is the slack between them.
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "ending spans waited for the exporter"
    );
    provider
        .shutdown_with_timeout(Duration::from_secs(5))
        .unwrap();
    let s = provider.stats();
    assert!(s.dropped_queue_full >= 900, "{s:?}");
    assert_eq!(s.spans_ended, 1000);
    assert_eq!(s.spans_ended, s.spans_exported + s.dropped_total());
    assert!(messages
        .lock()
        .unwrap()
        .iter()
        .any(|m| m.contains("queue") && m.contains("OTEL_BSP_MAX_QUEUE_SIZE")));
}

/// An export that waits until released: a hung backend.
#[derive(Debug, Clone, Default)]
struct Hung(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Hung {
    fn release(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

impl SpanExporter for Hung {
    fn export(&mut self, _: &[SpanData], _: Instant) -> Result<(), ExportError> {
        let (released, cv) = &*self.0;
        let mut released = released.lock().unwrap();
        while !*released {
            released = cv.wait(released).unwrap();
        }
        Ok(())
    }
}

/// `max_queue_size` bounds the spans buffered by all threads together (the
/// lanes and the shared queue), with more threads than lanes and the backend
/// hung; the batch stuck in the export comes on top. The rest are counted as
/// queue-full drops.
#[test]
fn max_queue_size_bounds_the_spans_of_all_threads_together() {
    let hung = Hung::default();
    let (queue, batch) = (1024, 64);
    let provider = provider_with(hung.clone(), config(queue, batch, HOUR));
    let threads = more_threads_than_lanes();
    let per_thread = 2 * queue;
    on_threads(&provider, threads, move |p| end_spans(p, per_thread));
    let s = provider.stats();
    let ended = (threads * per_thread) as u64;
    assert_eq!(s.spans_ended, ended, "{s:?}");
    assert!(s.queue_size <= queue as u64, "{s:?}");
    assert!(s.spans_in_flight <= batch as u64, "{s:?}");
    assert_eq!(s.queue_capacity, queue as u64, "{s:?}");
    assert_eq!(
        s.dropped_queue_full,
        ended - s.queue_size - s.spans_in_flight,
        "{s:?}"
    );
    hung.release();
    provider
        .shutdown_with_timeout(Duration::from_secs(10))
        .unwrap();
    let s = provider.stats();
    assert_eq!(s.spans_ended, s.spans_exported + s.dropped_total(), "{s:?}");
}

#[derive(Debug, Default)]
struct PanicsOnce {
    calls: usize,
    exported: Arc<AtomicUsize>,
}

impl SpanExporter for PanicsOnce {
    fn export(&mut self, batch: &[SpanData], _: Instant) -> Result<(), ExportError> {
        self.calls += 1;
        if self.calls == 1 {
            panic!("exporter bug");
        }
        self.exported.fetch_add(batch.len(), Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn panicking_exporter_does_not_kill_the_worker() {
    let exporter = PanicsOnce::default();
    let exported = exporter.exported.clone();
    let provider = provider_with(exporter, config(2048, 4, HOUR));
    end_spans(&provider, 4);
    provider.force_flush().unwrap_or(());
    end_spans(&provider, 8);
    provider
        .force_flush_with_timeout(Duration::from_secs(5))
        .unwrap();
    assert_eq!(exported.load(Ordering::SeqCst), 8);
    let s = provider.stats();
    assert_eq!(s.export_failures, 1);
    assert_eq!(s.dropped_export_failed, 4);
    assert!(s.last_export_error.unwrap().contains("exporter bug"));
}

#[derive(Debug)]
struct Overruns;

impl SpanExporter for Overruns {
    fn export(&mut self, _: &[SpanData], deadline: Instant) -> Result<(), ExportError> {
        std::thread::sleep(
            deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(20),
        );
        Ok(())
    }
}

#[test]
fn export_past_its_deadline_counts_as_failed() {
    let cfg = BatchConfig::builder()
        .with_max_export_batch_size(2)
        .with_export_timeout(Duration::from_millis(50))
        .build();
    let provider = provider_with(Overruns, cfg);
    end_spans(&provider, 2);
    assert!(wait_for(
        || provider.stats().export_failures == 1,
        Duration::from_secs(5)
    ));
    assert_eq!(provider.stats().dropped_export_failed, 2);
}

#[derive(Debug)]
struct RecordOnly;

impl runtrace::sampling::Sampler for RecordOnly {
    fn should_sample(&self, p: &SamplingParameters<'_>) -> SamplingResult {
        SamplingResult {
            decision: SamplingDecision::RecordOnly,
            attributes: vec![],
            trace_state: p.parent_trace_state(),
        }
    }
    fn description(&self) -> String {
        "RecordOnly".into()
    }
}

#[test]
fn record_only_spans_are_not_exported() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_sampler(RecordOnly)
        .with_batch_exporter(exporter.clone())
        .build();
    let span = provider.tracer("t").span("r").start();
    assert!(span.is_recording());
    drop(span);
    provider.force_flush().unwrap();
    assert!(exporter.finished_spans().is_empty());
    let s = provider.stats();
    assert_eq!((s.spans_started, s.spans_ended), (0, 0), "{s:?}");
}

/// Records without sampling, and says so up front: the tracer's short paths
/// for plain spans must leave such spans to the general path.
#[derive(Debug)]
struct FixedRecordOnly;

impl runtrace::sampling::Sampler for FixedRecordOnly {
    fn should_sample(&self, p: &SamplingParameters<'_>) -> SamplingResult {
        RecordOnly.should_sample(p)
    }
    fn description(&self) -> String {
        "FixedRecordOnly".into()
    }
    fn fixed_decisions(&self) -> Option<runtrace::sampling::FixedDecisions> {
        Some(runtrace::sampling::FixedDecisions::uniform(
            SamplingDecision::RecordOnly,
        ))
    }
}

#[test]
fn fixed_record_only_spans_are_recorded_and_not_exported() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_sampler(FixedRecordOnly)
        .with_batch_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");
    let root = tracer.span("root").start();
    assert!(root.is_recording());
    assert!(!root.span_context().is_sampled());
    {
        let _active = root.enter();
        let child = tracer.span("child").start();
        assert!(child.is_recording());
        assert_eq!(
            child.span_context().trace_id(),
            root.span_context().trace_id()
        );
    }
    drop(root);
    provider.force_flush().unwrap();
    assert!(exporter.finished_spans().is_empty());
    assert_eq!(provider.stats().spans_ended, 0);
}

#[test]
fn spans_after_shutdown_are_counted_and_drop_shuts_down() {
    let exporter = InMemoryExporter::default();
    let provider = provider_with(exporter.clone(), config(64, 8, HOUR));
    let tracer = provider.tracer("t");
    end_spans(&provider, 3);
    provider.shutdown().unwrap();
    assert_eq!(exporter.finished_spans().len(), 3, "shutdown flushes");
    assert!(exporter.is_shut_down());
    tracer.span("late").start().end();
    let s = provider.stats();
    assert_eq!(s.dropped_after_shutdown, 1);
    assert_eq!(provider.force_flush(), Err(FlushError::AlreadyShutdown));

    let exporter = InMemoryExporter::default();
    let provider = provider_with(exporter.clone(), config(64, 8, HOUR));
    end_spans(&provider, 2);
    drop(provider);
    assert_eq!(
        exporter.finished_spans().len(),
        2,
        "dropping the provider flushes"
    );
    assert!(exporter.is_shut_down());
}

#[derive(Debug)]
struct DeadlineProbe(Arc<Mutex<Option<Duration>>>);

impl SpanExporter for DeadlineProbe {
    fn export(&mut self, _: &[SpanData], deadline: Instant) -> Result<(), ExportError> {
        *self.0.lock().unwrap() = Some(deadline.saturating_duration_since(Instant::now()));
        Ok(())
    }
}

#[test]
fn exporter_is_told_the_export_deadline() {
    let seen = Arc::new(Mutex::new(None));
    let cfg = BatchConfig::builder()
        .with_export_timeout(Duration::from_secs(7))
        .build();
    let bsp = BatchSpanProcessor::new(DeadlineProbe(seen.clone()), cfg);
    let provider = TracerProvider::builder().with_span_processor(bsp).build();
    end_spans(&provider, 1);
    // A flush with a longer deadline leaves the export timeout in charge.
    provider
        .force_flush_with_timeout(Duration::from_secs(60))
        .unwrap();
    let left = seen.lock().unwrap().unwrap();
    // 1 s of slack between the worker setting the 7 s deadline and the exporter
    // reading it; the flush's 60 s would show as more than 7 s.
    assert!(
        left > Duration::from_secs(6) && left <= Duration::from_secs(7),
        "{left:?}"
    );
}

#[test]
fn batch_size_above_queue_size_is_clamped() {
    let cfg = BatchConfig::builder()
        .with_max_queue_size(16)
        .with_max_export_batch_size(100)
        .build();
    assert_eq!(cfg.max_export_batch_size, 16);
    let bsp = BatchSpanProcessor::new(InMemoryExporter::default(), cfg);
    // The lanes and the shared queue together.
    assert_eq!(bsp.stats().unwrap().queue_capacity, 16);
    bsp.shutdown_with_timeout(Duration::from_secs(1)).unwrap();
}

#[test]
fn timed_out_shutdown_stops_the_worker_and_counts_leftovers_once() {
    // 10 batches of 200 ms each: far more than the 300 ms shutdown allows.
    let provider = provider_with(Slow(Duration::from_millis(200)), config(100, 10, HOUR));
    end_spans(&provider, 100);
    let start = Instant::now();
    assert_eq!(
        provider.shutdown_with_timeout(Duration::from_millis(300)),
        Err(FlushError::Timeout)
    );
    // The worker exports no more full batches past the deadline: it finishes the
    // export in progress and counts what is left (not 10 × 200 ms).
    let settled = || {
        let s = provider.stats();
        s.queue_size == 0 && s.spans_ended == s.spans_exported + s.dropped_total()
    };
    // The export in progress ends at most 200 ms after the 300 ms deadline;
    // 800 ms of slack, against the 2 s all ten batches would take.
    assert!(
        wait_for(settled, Duration::from_millis(1000)),
        "{:?}",
        provider.stats()
    );
    assert!(start.elapsed() < Duration::from_millis(1300));
    let s = provider.stats();
    assert_eq!(s.spans_ended, 100, "leftovers counted once: {s:?}");
    assert!(s.dropped_after_shutdown > 0, "{s:?}");
}

#[test]
fn huge_durations_mean_never_and_do_not_panic() {
    let exporter = InMemoryExporter::default();
    let cfg = BatchConfig::builder()
        .with_scheduled_delay(Duration::MAX)
        .with_export_timeout(Duration::MAX)
        .build();
    let provider = provider_with(exporter.clone(), cfg);
    end_spans(&provider, 3);
    provider.force_flush_with_timeout(Duration::MAX).unwrap();
    assert_eq!(exporter.finished_spans().len(), 3);
    provider.shutdown_with_timeout(Duration::MAX).unwrap();
}

#[test]
fn force_flush_is_served_while_producers_keep_the_queue_full() {
    let provider = provider_with(Slow(Duration::from_millis(1)), config(200, 10, HOUR));
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..2)
        .map(|_| {
            let (p, stop) = (provider.clone(), stop.clone());
            std::thread::spawn(move || {
                let tracer = p.tracer("busy");
                while !stop.load(Ordering::Relaxed) {
                    tracer.span("s").start().end();
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let flushed = provider.force_flush_with_timeout(Duration::from_secs(5));
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(flushed, Ok(()), "flush starved for {took:?}");
    provider
        .shutdown_with_timeout(Duration::from_secs(5))
        .unwrap();
    let s = provider.stats();
    assert_eq!(s.spans_ended, s.spans_exported + s.dropped_total(), "{s:?}");
}

#[test]
fn absurd_queue_size_is_clamped_not_fatal() {
    let cfg = BatchConfig::builder()
        .with_max_queue_size(usize::MAX / 2)
        .build();
    assert_eq!(cfg.max_queue_size, runtrace::config::MAX_QUEUE_SIZE);
}

/// Spans add attributes without looking for their key, and the batch thread
/// resolves repeats before export, on both of its paths: a lane's full run
/// exported in place, and a batch gathered from the lanes and the shared
/// queue (more threads than lanes, small batches). Every span arrives with
/// each key once, in its first place, with its last value.
#[test]
fn repeated_keys_are_resolved_for_spans_from_many_threads() {
    use runtrace::{KeyValue, Value};
    let exporter = InMemoryExporter::default();
    let provider = provider_with(exporter.clone(), config(1 << 16, 64, 5));
    let threads = more_threads_than_lanes();
    let per_thread = 1_000_i64;
    on_threads(&provider, threads, move |p| {
        let tracer = p.tracer("t");
        for i in 0..per_thread {
            let mut span = tracer
                .span("s")
                .attribute("n", i)
                .attribute("k0", 0)
                .attribute("n", i) // a repeat among the builder's
                .start();
            span.set_attribute("k0", 1);
            span.set_attribute("k1", i);
            span.set_attribute("k0", 2);
            span.end();
        }
    });
    provider.force_flush().unwrap();
    let s = provider.stats();
    let total = threads as u64 * per_thread as u64;
    assert_eq!((s.spans_exported, s.dropped_total()), (total, 0), "{s:?}");
    for span in exporter.finished_spans() {
        let Some(KeyValue {
            value: Value::I64(i),
            ..
        }) = span.attributes.first()
        else {
            panic!("no n first: {:?}", span.attributes)
        };
        let expected = vec![
            KeyValue::new("n", *i),
            KeyValue::new("k0", 2),
            KeyValue::new("k1", *i),
        ];
        assert_eq!(span.attributes, expected);
    }
    provider.shutdown().unwrap();
}
