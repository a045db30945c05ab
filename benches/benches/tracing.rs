//! `tracing` spans exported through runtrace-tracing, against the same spans
//! through tracing-opentelemetry over opentelemetry_sdk, and through the
//! `tracing-subscriber` registry alone (what `tracing` itself costs).
//!
//! Run with `cargo bench -p runtrace-benches --bench tracing -- --warm-up-time 1
//! --measurement-time 3`. Each case runs for the five subscribers back to
//! back (the shared VM drifts between a fast and a slow phase over minutes):
//!
//! - `span_4fields`: an `info_span!` with 4 fields of mixed types (u64, str,
//!   bool, f64), entered, exited and closed: a local root, sampled;
//! - `child_span_with_event`: a child span of an entered parent, with one
//!   event (a message and one field) inside it;
//! - `instrumented_future`: a future `.instrument(info_span!(..))`ed, pending
//!   twice before it completes: three polls, each an enter and an exit, as a
//!   task that awaits twice (a local root, sampled).
//!
//! Sampled spans go through each library's std-thread batch processor (queue
//! 65536) into an exporter that counts and discards; the counts are printed
//! after each case. The two layers do the same work, as near as their options
//! allow: each span gets the code location and thread attributes
//! (runtrace-tracing `.with_threads(true)`, tracing-opentelemetry's default),
//! and tracing-opentelemetry runs `.with_tracked_inactivity(false)` (its
//! default reads the clock at every enter and exit and adds `busy_ns` and
//! `idle_ns`, which runtrace-tracing adds only when asked) and
//! `.with_target(false)` (no `target` attribute on spans, as
//! runtrace-tracing). One difference
//! remains: tracing-opentelemetry also puts the code location on each event
//! (three attributes; its option for it is the spans' too). `otel_defaults`
//! is tracing-opentelemetry as `layer()` makes it, what its users run, and
//! `runtrace_timed` its match: runtrace-tracing with busy and idle time too
//! (`.with_tracked_inactivity(true)`).
//! Each subscriber is the thread's default for its case
//! (`with_default`), so every `tracing` call looks up the thread's dispatcher,
//! as for all alike.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use runtrace_benches::tracing_cases::{child_span_with_event, instrumented_future, span_4fields};
use runtrace_benches::{timed, Discard};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info_span, Dispatch};
use tracing_subscriber::layer::SubscriberExt;

const MAX_QUEUE_SIZE: usize = 65536;
const SCHEDULED_DELAY: Duration = Duration::from_millis(100);

/// The cases, each measured for every subscriber in turn.
#[derive(Clone, Copy)]
enum Case {
    Span4Fields,
    ChildSpanWithEvent,
    InstrumentedFuture,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Span4Fields => "span_4fields",
            Case::ChildSpanWithEvent => "child_span_with_event",
            Case::InstrumentedFuture => "instrumented_future",
        }
    }

    /// Spans the case ends per iteration (the child case's parent is one per
    /// sample, counted by [`run`]).
    fn run(self, g: &mut BenchmarkGroup<'_, WallTime>, lib: &str, dispatch: &Dispatch) -> u64 {
        let count = Cell::new(0);
        tracing::dispatcher::with_default(dispatch, || {
            g.bench_function(format!("{lib}/{}", self.name()), |b| match self {
                Case::Span4Fields => b.iter_custom(|n| timed(&count, n, span_4fields)),
                Case::InstrumentedFuture => {
                    b.iter_custom(|n| timed(&count, n, instrumented_future))
                }
                Case::ChildSpanWithEvent => b.iter_custom(|n| {
                    // One parent per sample, entered outside the timing.
                    count.set(count.get() + 1);
                    let parent = info_span!("parent");
                    let _entered = parent.enter();
                    timed(&count, n, child_span_with_event)
                }),
            });
        });
        count.take()
    }
}

mod rt {
    use super::*;
    use runtrace::{BatchConfig, TracerProvider};
    use runtrace_tracing::RuntraceLayer;

    /// `timed`: with busy and idle time (`runtrace_timed`, to compare with
    /// `otel_defaults`); else without (`runtrace`).
    pub(super) fn bench(g: &mut BenchmarkGroup<'_, WallTime>, case: Case, timed: bool) {
        let config = BatchConfig::builder()
            .with_max_queue_size(MAX_QUEUE_SIZE)
            .with_scheduled_delay(SCHEDULED_DELAY)
            .build();
        let provider = TracerProvider::builder()
            .with_batch_config(config)
            .with_batch_exporter(Discard::default())
            .build();
        let layer = RuntraceLayer::new(provider.tracer("bench"))
            .with_threads(true)
            .with_tracked_inactivity(timed);
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
        let lib = if timed { "runtrace_timed" } else { "runtrace" };
        let ended = case.run(g, lib, &dispatch);
        let _ = provider.force_flush();
        let s = provider.stats();
        eprintln!(
            "[{lib}/{}] spans ended {ended}, exported {}, dropped {}",
            case.name(),
            s.spans_exported,
            s.dropped_total()
        );
        let _ = provider.shutdown();
    }
}

mod otel {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{
        BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
    };
    use std::future::Future;

    /// Counts exported spans and drops them.
    #[derive(Debug, Default)]
    struct Discard(Arc<AtomicU64>);

    impl SpanExporter for Discard {
        fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
            self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
            std::future::ready(Ok(()))
        }
    }

    /// `defaults`: the layer as `tracing_opentelemetry::layer()` makes it,
    /// busy and idle time included (`otel_defaults`); else doing runtrace's
    /// work (`otel`).
    pub(super) fn bench(g: &mut BenchmarkGroup<'_, WallTime>, case: Case, defaults: bool) {
        let exported = Arc::new(AtomicU64::new(0));
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(MAX_QUEUE_SIZE)
            .with_scheduled_delay(SCHEDULED_DELAY)
            .build();
        let processor = BatchSpanProcessor::builder(Discard(exported.clone()))
            .with_batch_config(config)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracked_inactivity(defaults)
            .with_target(defaults)
            .with_tracer(provider.tracer("bench"));
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
        let lib = if defaults { "otel_defaults" } else { "otel" };
        let ended = case.run(g, lib, &dispatch);
        let _ = provider.force_flush();
        eprintln!(
            "[{lib}/{}] spans ended {ended}, exported {}",
            case.name(),
            exported.load(Ordering::Relaxed)
        );
        let _ = provider.shutdown();
    }
}

fn tracing_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("tracing");
    for case in [
        Case::Span4Fields,
        Case::ChildSpanWithEvent,
        Case::InstrumentedFuture,
    ] {
        rt::bench(&mut g, case, false);
        otel::bench(&mut g, case, false);
        rt::bench(&mut g, case, true);
        otel::bench(&mut g, case, true);
        let registry = Dispatch::new(tracing_subscriber::registry());
        let ended = case.run(&mut g, "none", &registry);
        eprintln!("[none/{}] spans ended {ended}", case.name());
    }
    g.finish();
}

criterion_group!(benches, tracing_benches);
criterion_main!(benches);
