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
//!
//! `paired` as the fourth argument (and a round count as the fifth, default
//! 30) compares the libraries in time, robust to the VM's slow and fast
//! phases, which last seconds and move a criterion group's figure by up to
//! 2x: each round runs the case `n` times through runtrace, tracing-
//! opentelemetry and the registry alone, back to back in one process, and
//! flushes both providers between runs (so neither batch thread works
//! during the other's run, and neither queue overflows if `n` is at most the
//! queue size). Prints each library's median time and the median and
//! quartiles of the rounds' runtrace / tracing-opentelemetry ratios:
//!
//! ```text
//! target/release/examples/profile_tracing span_4fields 20000 65536 paired 30
//! ```
//!
//! `floor` instead of `paired` (for `span_4fields` only) compares
//! tracing-opentelemetry, round by round in the same way, with the least any
//! bridge must do for that span: the registry's own span (through the
//! registry alone) plus a native runtrace span with the same 9 attributes
//! (the 4 fields, the code location and the thread), current around it. No
//! field conversion through `Visit`, no record kept per span, no deferred
//! start: what is left of a quarter of tracing-opentelemetry's time after
//! this floor is what a layer's own work may cost.

use runtrace::{BatchConfig, TracerProvider};
use runtrace_benches::tracing_cases::{child_span_with_event, instrumented_future, span_4fields};
use runtrace_benches::{paired_rounds, Discard};
use runtrace_tracing::RuntraceLayer;
use std::sync::OnceLock;
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
    let dispatch = |lib: &str| match lib {
        "none" => Dispatch::new(tracing_subscriber::registry()),
        "otel" => Dispatch::new(tracing_subscriber::registry().with(otel::layer(&otel_provider))),
        _ => {
            // As the bench configures it.
            let layer = RuntraceLayer::new(provider.tracer("bench")).with_threads(true);
            Dispatch::new(tracing_subscriber::registry().with(layer))
        }
    };
    let flush = || {
        let _ = provider.force_flush();
        let _ = otel_provider.force_flush();
    };
    // Runs the case `n` times through `dispatch` (inside an entered parent
    // for `child_span_with_event`), untimed first if `warm`.
    let run = |dispatch: &Dispatch, warm: bool| {
        tracing::dispatcher::with_default(dispatch, || {
            let parent = info_span!("parent");
            let _entered = (case == "child_span_with_event").then(|| parent.enter());
            if warm {
                for _ in 0..n {
                    op();
                }
                flush();
            }
            measure(n, op)
        })
    };
    // `none` as a fourth argument: the registry alone, as the bench's `none`;
    // `otel`: tracing-opentelemetry; `paired`: all three, round by round.
    match args.get(4).map_or("runtrace", String::as_str) {
        "paired" => {
            let rounds = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(30);
            paired(
                case,
                n,
                rounds,
                ["runtrace", "otel", "none"].map(dispatch),
                |d| {
                    let elapsed = run(d, false);
                    flush();
                    elapsed
                },
            );
        }
        "floor" => {
            assert_eq!(
                case, "span_4fields",
                "the floor is written for span_4fields"
            );
            let rounds = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(30);
            let _ = FLOOR_TRACER.set(provider.tracer("bench"));
            let contenders: [(Dispatch, fn()); 2] = [
                (dispatch("none"), span_4fields_floor),
                (dispatch("otel"), span_4fields),
            ];
            let timed = |(d, op): &(Dispatch, fn())| {
                let elapsed = tracing::dispatcher::with_default(d, || measure(n, *op));
                flush();
                elapsed.as_nanos() as f64 / n as f64
            };
            // One untimed round first.
            for contender in &contenders {
                timed(contender);
            }
            let ([floor, otel], [q1, median, q3]) =
                paired_rounds(rounds, |i| timed(&contenders[i]));
            println!(
                "span_4fields floor: {rounds} rounds of {n}: floor {floor:.0} ns, otel {otel:.0} ns \
                 (medians); floor / otel {median:.3} (quartiles {q1:.3}-{q3:.3})"
            );
        }
        lib => {
            let elapsed = run(&dispatch(lib), true);
            flush();
            eprintln!("{:?}", provider.stats());
            println!(
                "{lib}/{case}: {n} iterations, {:.1} ns each",
                elapsed.as_nanos() as f64 / n as f64
            );
        }
    }
    let _ = provider.shutdown();
    let _ = otel_provider.shutdown();
}

/// The `paired` mode: `rounds` rounds of `run` through runtrace, otel and the
/// registry alone (`dispatches`, in that order), after one untimed round.
fn paired(
    case: &str,
    n: u64,
    rounds: usize,
    dispatches: [Dispatch; 3],
    run: impl Fn(&Dispatch) -> Duration,
) {
    let per_span = |d: Duration| d.as_nanos() as f64 / n as f64;
    for d in &dispatches {
        run(d);
    }
    let ([rt, otel, none], [q1, median, q3]) =
        paired_rounds(rounds, |i| per_span(run(&dispatches[i])));
    println!(
        "{case}: {rounds} rounds of {n}: runtrace {rt:.0} ns, otel {otel:.0} ns, none {none:.0} ns \
         (medians); runtrace / otel {median:.3} (quartiles {q1:.3}-{q3:.3})"
    );
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

/// The tracer of the `floor` mode's native spans.
static FLOOR_TRACER: OnceLock<runtrace::Tracer> = OnceLock::new();

/// `span_4fields`' floor (see the `floor` mode): a native span with the
/// attributes the layer gives that span, current around the case itself,
/// which makes, enters and closes the `tracing` span (through the registry
/// alone).
fn span_4fields_floor() {
    let tracer = FLOOR_TRACER.get().expect("set before the floor runs");
    let mut native = tracer
        .span("request")
        .attribute("request.id", 42_i64)
        .attribute("http.route", "/v1/infer")
        .attribute("cache.hit", true)
        .attribute("load", 0.75)
        .attribute("code.namespace", module_path!())
        .attribute("code.filepath", file!())
        .attribute("code.lineno", i64::from(line!()))
        .attribute("thread.id", 1_i64)
        .attribute("thread.name", "main")
        .start();
    let current = native.enter();
    span_4fields();
    drop(current);
    native.end();
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
