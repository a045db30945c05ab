//! The `tracing` bench's cases in a plain loop through `Registry +
//! RuntraceLayer`, for profilers (`valgrind --tool=callgrind`, `perf record`),
//! as `profile_span` does for native spans:
//!
//! ```text
//! cargo build --release -p runtrace-benches --example profile_tracing
//! valgrind --tool=callgrind --separate-threads=yes --toggle-collect='profile_tracing::measure*' \
//!     target/release/examples/profile_tracing child_span_with_event 200000 1048576
//! ```
//!
//! Arguments: case (`span_4fields`, `child_span_with_event`,
//! `instrumented_future`, as in `benches/benches/tracing.rs`), span count,
//! batch queue size (default 65536), and `none` to run through the registry
//! alone (what `tracing` itself costs) or `otel` through tracing-opentelemetry
//! over opentelemetry_sdk's batch processor, configured as the bench's `otel`
//! (the same work as runtrace's). The case first runs `n` times untimed and
//! flushes, so that the timed runs find the recycle pools full; the timed
//! loop is `measure`. Prints ns/span and the delivery counters (which count
//! the warm-up's spans too).

use runtrace::{BatchConfig, TracerProvider};
use runtrace_benches::tracing_cases::{child_span_with_event, instrumented_future, span_4fields};
use runtrace_benches::Discard;
use runtrace_tracing::RuntraceLayer;
use std::time::{Duration, Instant};
use tracing::{info_span, Dispatch};
use tracing_subscriber::layer::SubscriberExt;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map_or("child_span_with_event", |s| s.as_str());
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let queue: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(65536);
    let op: fn() = match case {
        "span_4fields" => span_4fields,
        "child_span_with_event" => child_span_with_event,
        "instrumented_future" => instrumented_future,
        _ => panic!("unknown case {case}"),
    };
    let config = BatchConfig::builder()
        .with_max_queue_size(queue)
        .with_scheduled_delay(Duration::from_millis(100))
        .build();
    let provider = TracerProvider::builder()
        .with_batch_config(config)
        .with_batch_exporter(Discard::default())
        .build();
    let otel_provider = otel::provider(queue);
    // `none` as a fourth argument: the registry alone, as the bench's `none`.
    let lib = args.get(4).map_or("runtrace", String::as_str);
    let dispatch = match lib {
        "none" => Dispatch::new(tracing_subscriber::registry()),
        "otel" => Dispatch::new(tracing_subscriber::registry().with(otel::layer(&otel_provider))),
        _ => {
            // As the bench configures it.
            let layer = RuntraceLayer::new(provider.tracer("bench")).with_threads(true);
            Dispatch::new(tracing_subscriber::registry().with(layer))
        }
    };
    let elapsed = tracing::dispatcher::with_default(&dispatch, || {
        let parent = info_span!("parent");
        let _entered = (case == "child_span_with_event").then(|| parent.enter());
        for _ in 0..n {
            op();
        }
        let _ = provider.force_flush();
        let _ = otel_provider.force_flush();
        measure(n, op)
    });
    let _ = provider.force_flush();
    let _ = otel_provider.force_flush();
    eprintln!("{:?}", provider.stats());
    println!(
        "{lib}/{case}: {n} iterations, {:.1} ns each",
        elapsed.as_nanos() as f64 / n as f64
    );
    let _ = provider.shutdown();
    let _ = otel_provider.shutdown();
}

/// tracing-opentelemetry over opentelemetry_sdk, as the bench's `otel`.
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{
        BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData,
        SpanExporter,
    };
    use std::future::Future;
    use std::time::Duration;
    use tracing_opentelemetry::OpenTelemetryLayer;
    use tracing_subscriber::Registry;

    /// Drops exported spans.
    #[derive(Debug, Default)]
    struct Discard;

    impl SpanExporter for Discard {
        fn export(&self, _: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
            std::future::ready(Ok(()))
        }
    }

    /// A provider whose batch processor holds `queue` spans.
    pub(super) fn provider(queue: usize) -> SdkTracerProvider {
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(queue)
            .with_scheduled_delay(Duration::from_millis(100))
            .build();
        let processor = BatchSpanProcessor::builder(Discard)
            .with_batch_config(config)
            .build();
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build()
    }

    /// The layer doing runtrace-tracing's work: no busy and idle time, no
    /// `target` attribute.
    pub(super) fn layer(provider: &SdkTracerProvider) -> OpenTelemetryLayer<Registry, SdkTracer> {
        tracing_opentelemetry::layer()
            .with_tracked_inactivity(false)
            .with_target(false)
            .with_tracer(provider.tracer("bench"))
    }
}

/// The timed loop, out of line so that callgrind can count it alone.
#[inline(never)]
fn measure(n: u64, op: fn()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed()
}
