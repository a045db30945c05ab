//! Whole-process CPU per span of a tokio service instrumented with the
//! `tracing` crate, exported through runtrace-tracing against
//! tracing-opentelemetry over opentelemetry_sdk, in one run: the `tracing`
//! twin of `tokio_app`. A 4-worker multi-thread runtime serves 1,000
//! concurrent requests, each what a real handler instrumented with `tracing`
//! looks like: 5 spans (a server span around the handler, a child with an
//! event, one around a nested future with an event, one in a spawned task,
//! a last child) and 2 events, with yields between them, so that tasks move
//! between workers.
//!
//! ```text
//! cargo run --release -p runtrace-benches --example tokio_tracing_app [-- ROUNDS [LIBRARY]]
//! ```
//!
//! With a `LIBRARY` (`none`, `runtrace` or `otel`), each round runs that one
//! alone, for a profiler (`perf record -e cpu-clock`), and no ratio is printed.
//!
//! Each round serves the requests with three subscribers: `none`, the
//! `tracing-subscriber` registry alone (what `tracing` itself costs: spans
//! kept in the registry, nothing exported); `runtrace`, the registry with
//! runtrace-tracing's layer; `otel`, the registry with tracing-opentelemetry's
//! layer. The two layers do the same work, as in `benches/benches/tracing.rs`:
//! code location and thread attributes on each span, no `target` attribute, no
//! busy and idle time (tracing-opentelemetry also puts the code location on
//! each event).
//! `none` goes first, then the two libraries, alternating which goes first. Both
//! libraries export through their batch processor (queue 65,536) to an exporter
//! that counts and discards, and each provider is flushed inside the measured
//! window, so that its batch thread's CPU is counted. Each run reads the
//! process's CPU time (user + system, all threads) around serving and
//! flushing, and checks that every span ended was exported by the end of the
//! window: a round of runtrace that loses spans fails the run (exit status 1,
//! after the figures); tracing-opentelemetry's losses are counted and
//! printed. Prints CPU per span for each round and the medians. The
//! runtime's own cost (tasks, yields, spawns) and `tracing`'s (the registry's
//! span bookkeeping, events dispatched) are in the three runs:
//! "tracing's share" is each library's CPU less the `none` run's, what its
//! layer and batch thread add. CPU per span is per span ended: opentelemetry_sdk
//! drops spans when its queue is full (without a count one can read), and a run
//! that drops is then slightly flattered.
//!
//! Four workers and two batch threads share the machine's cores (two on the
//! development VM), so the rounds scatter by 10–20%: compare the medians, and
//! the ratio of one run, not figures of different runs.
//!
//! The subscriber is each thread's default, not the global one (which can be
//! set only once): each run builds a runtime of its own whose worker threads
//! install the run's subscriber when they start, and the thread that calls
//! `block_on` has it as its default around the serving. The runtime is built
//! before the window opens and shut down after it closes, so neither is
//! counted (its threads start in the background, at most a few microseconds
//! of which can fall in the window, alike for the three).

use runtrace_benches::{process_cpu, rounds_and_library, Discard};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::dispatcher::DefaultGuard;
use tracing::{info, info_span, Dispatch, Instrument};
use tracing_subscriber::layer::SubscriberExt;

const REQUESTS: u64 = 1_000;
const SPANS_PER_REQUEST: u64 = 5;
const QUEUE: usize = 65_536;

/// Times the requests are served per round, so that a round takes seconds of
/// CPU against the 10 ms tick.
const REPEAT: u64 = 100;

/// One request, as a handler instrumented with `tracing` does it: 5 spans
/// (`GET /items`, `authorize`, `query`, `audit` in a spawned task, `render`,
/// all children of the first) and 2 events (`authorized`, `fetched`).
async fn request(i: u64) {
    let span = info_span!(
        "GET /items",
        otel.kind = "server",
        http.method = "GET",
        http.route = "/items",
        request.id = i
    );
    let handler = async {
        tokio::task::yield_now().await;
        info_span!("authorize", user.id = 7_u64).in_scope(|| info!(allowed = true, "authorized"));
        async {
            tokio::task::yield_now().await;
            info!(rows = 3, "fetched");
        }
        .instrument(info_span!("query", db.system = "postgresql"))
        .await;
        // The spawned task enters the request span wherever it runs, so that
        // `audit` is its child.
        let audit = async { info_span!("audit").in_scope(|| ()) };
        tokio::spawn(audit.in_current_span())
            .await
            .expect("the audit task panicked");
        info_span!("render").in_scope(|| ());
    };
    handler.instrument(span).await;
}

thread_local! {
    /// A worker thread's default subscriber, from its start to its stop.
    static DEFAULT: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

/// A 4-worker multi-thread runtime whose threads all have `dispatch` as their
/// default subscriber.
fn runtime(dispatch: &Dispatch) -> tokio::runtime::Runtime {
    let dispatch = dispatch.clone();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .on_thread_start(move || {
            let guard = tracing::dispatcher::set_default(&dispatch);
            DEFAULT.with(|default| *default.borrow_mut() = Some(guard));
        })
        .on_thread_stop(|| DEFAULT.with(|default| drop(default.borrow_mut().take())))
        .build()
        .expect("a tokio runtime")
}

/// Serves the requests `REPEAT` times through `dispatch` on a runtime of its
/// own, then `flush`es the exporting library; returns the process's CPU time
/// for both (the runtime's build and shutdown are outside).
fn measure(dispatch: Dispatch, flush: impl FnOnce()) -> Duration {
    let runtime = runtime(&dispatch);
    let cpu = process_cpu();
    tracing::dispatcher::with_default(&dispatch, || serve(&runtime));
    flush();
    let cpu = process_cpu() - cpu;
    drop(runtime);
    cpu
}

/// Serves the requests `REPEAT` times: `REQUESTS` tasks at once.
fn serve(runtime: &tokio::runtime::Runtime) {
    for _ in 0..REPEAT {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..REQUESTS).map(|i| tokio::spawn(request(i))).collect();
            for t in tasks {
                t.await.expect("a request task panicked");
            }
        });
    }
}

mod rt {
    use super::*;
    use runtrace::{BatchConfig, TracerProvider};
    use runtrace_tracing::RuntraceLayer;

    /// Serves the requests through runtrace-tracing; returns the CPU time
    /// and the spans exported by the end of the window.
    pub(super) fn round() -> (Duration, u64) {
        let exported = Arc::new(AtomicU64::new(0));
        let provider = TracerProvider::builder()
            .with_batch_config(BatchConfig::builder().with_max_queue_size(QUEUE).build())
            .with_batch_exporter(Discard(exported.clone()))
            .build();
        let layer = RuntraceLayer::new(provider.tracer("tokio_tracing_app")).with_threads(true);
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
        let cpu = measure(dispatch, || {
            provider.force_flush().expect("runtrace flush");
        });
        let exported = exported.load(Ordering::Relaxed);
        provider.shutdown().expect("runtrace shutdown");
        (cpu, exported)
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

    /// Serves the requests through tracing-opentelemetry over
    /// opentelemetry_sdk's std-thread batch processor; returns the CPU time
    /// and the spans exported by the end of the window.
    pub(super) fn round() -> (Duration, u64) {
        let exported = Arc::new(AtomicU64::new(0));
        let processor = BatchSpanProcessor::builder(Discard(exported.clone()))
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(QUEUE)
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracked_inactivity(false)
            .with_target(false)
            .with_tracer(provider.tracer("tokio_tracing_app"));
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
        let cpu = measure(dispatch, || {
            provider.force_flush().expect("opentelemetry_sdk flush");
        });
        let exported = exported.load(Ordering::Relaxed);
        provider.shutdown().expect("opentelemetry_sdk shutdown");
        (cpu, exported)
    }
}

/// The middle value (the upper one of an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (rounds, only) = rounds_and_library();
    let spans = REQUESTS * SPANS_PER_REQUEST * REPEAT;
    let (mut none_ns, mut rt_ns, mut otel_ns) = (Vec::new(), Vec::new(), Vec::new());
    // The rounds in which a library exported fewer spans than it ended.
    let (mut rt_lost, mut otel_lost) = (0, 0);
    for round in 0..rounds {
        let mut run = |lib: &str| {
            let (cpu, exported) = match lib {
                "none" => (
                    measure(Dispatch::new(tracing_subscriber::registry()), || ()),
                    None,
                ),
                "runtrace" => {
                    let (cpu, exported) = rt::round();
                    (cpu, Some(exported))
                }
                _ => {
                    let (cpu, exported) = otel::round();
                    (cpu, Some(exported))
                }
            };
            let ns = cpu.as_nanos() as f64 / spans as f64;
            match exported {
                None => println!(
                    "round {round} {lib:8}: {ns:7.0} ns CPU per span (registry alone, nothing exported)"
                ),
                Some(exported) => {
                    println!(
                        "round {round} {lib:8}: {ns:7.0} ns CPU per span ({exported} of {spans} exported)"
                    );
                    if exported != spans {
                        eprintln!(
                            "round {round} {lib}: {} of {spans} spans ended were not exported",
                            spans - exported
                        );
                        if lib == "runtrace" {
                            rt_lost += 1;
                        } else {
                            otel_lost += 1;
                        }
                    }
                }
            }
            ns
        };
        if let Some(lib) = &only {
            run(lib);
            continue;
        }
        none_ns.push(run("none"));
        if round % 2 == 0 {
            rt_ns.push(run("runtrace"));
            otel_ns.push(run("otel"));
        } else {
            otel_ns.push(run("otel"));
            rt_ns.push(run("runtrace"));
        }
    }
    if only.is_none() {
        let (none, rt, otel) = (median(none_ns), median(rt_ns), median(otel_ns));
        println!(
            "median CPU per span: registry alone {none:.0} ns, runtrace {rt:.0} ns, tracing-opentelemetry {otel:.0} ns"
        );
        println!(
            "tracing's share (less the none run): runtrace {:.0} ns, tracing-opentelemetry {:.0} ns: ratio {:.2}",
            rt - none,
            otel - none,
            (rt - none) / (otel - none)
        );
    }
    if otel_lost > 0 {
        println!(
            "tracing-opentelemetry lost spans in {otel_lost} of {rounds} rounds (opentelemetry_sdk \
             drops on a full queue): those rounds' CPU per span is flattered"
        );
    }
    if rt_lost > 0 {
        eprintln!("runtrace lost spans in {rt_lost} of {rounds} rounds: the delivery check FAILED");
        std::process::exit(1);
    }
}
