//! A fixed number of spans in a plain loop, for profilers that want a small,
//! deterministic program (`valgrind --tool=callgrind`, `perf record`):
//!
//! ```text
//! cargo build --release -p runtrace-benches --example profile_span
//! valgrind --tool=callgrind --separate-threads=yes \
//!     target/release/examples/profile_span runtrace sampled_root 1000000 1048576
//! perf record -g target/release/examples/profile_span runtrace sampled_root 20000000
//! ```
//!
//! Arguments: library (`runtrace`, `otel`, `fastrace`), case (`sampled_root`,
//! `sampled_root_4attrs`, `child`, `dropped`, `disabled`, for runtrace and otel
//! `sampled_root_20attrs`: an HTTP server span's 20 attributes set one by one
//! (more than a recycled list's usual capacity), and for runtrace
//! `2threads`: sampled roots from two threads, `n / 2` each;
//! `child_explicit_parent`, `root_builder_4attrs`, `async_child`,
//! `root_event` (a root with one event of one attribute),
//! `global_tracer`: `global::tracer(name)` and its drop; `async_1poll`,
//! `async_4polls`: a root around a future polled once or four times), span count, batch
//! queue size (default 65536, as in the benches). Under valgrind, which runs one
//! thread at a time, give a queue that holds every span so that the queue-full
//! drop path stays out of the profile (a huge queue costs page faults in real
//! time, so not under perf). A fifth argument `warm` first runs the case `n`
//! times untimed and flushes, so that the timed spans find the recycle pools
//! full (under valgrind the batch thread lags, and without a warm-up the
//! profile shows allocations that a real run does not make); with
//! `--toggle-collect='profile_span::measure*'` callgrind then counts only the
//! timed loop (not for `2threads`). Prints ns/span and the delivery counters
//! (which count the warm-up's spans too).
//!
//! `paired` as the library (`profile_span paired CASE N QUEUE ROUNDS`; cases
//! `sampled_root`, `child_explicit_parent`, `root_builder_4attrs`,
//! `async_child`, ...) runs the case through runtrace then opentelemetry_sdk,
//! each warmed up, round after round, and prints the median times and the
//! median and quartiles of the rounds' ratios: the VM's phases, which last
//! seconds, move both figures of a round alike.

use runtrace_benches::{paired_rounds, Discard, HTTP_ATTRIBUTES};
use std::cell::RefCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let lib = args.get(1).map_or("runtrace", |s| s.as_str());
    let case = args.get(2).map_or("sampled_root", |s| s.as_str());
    let n: u64 = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let queue: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(65536);
    WARM.store(args.get(5).is_some_and(|a| a == "warm"), Ordering::Relaxed);
    if lib == "paired" {
        let rounds = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(30);
        return paired(case, n, queue, rounds);
    }
    let elapsed = match lib {
        "runtrace" => rt::run(case, n, queue),
        "otel" => otel::run(case, n, queue),
        "fastrace" => ft::run(case, n),
        _ => panic!("unknown library {lib}"),
    };
    println!(
        "{lib}/{case}: {n} spans, {:.1} ns/span",
        elapsed.as_nanos() as f64 / n as f64
    );
}

/// The `paired` mode: `rounds` rounds of the case through runtrace, then
/// opentelemetry_sdk, each warmed up, so that the two figures of a ratio are
/// taken a fraction of a second apart (the VM's phases last seconds); prints
/// the median times and the median and quartiles of the rounds' ratios.
fn paired(case: &str, n: u64, queue: usize, rounds: usize) {
    WARM.store(true, Ordering::Relaxed);
    let per_span = |d: Duration| d.as_nanos() as f64 / n as f64;
    let ([rt, otel], [q1, median, q3]) = paired_rounds(rounds, |i| {
        per_span(match i {
            0 => rt::run(case, n, queue),
            _ => otel::run(case, n, queue),
        })
    });
    println!(
        "{case}: {rounds} rounds of {n}: runtrace {rt:.1} ns, otel {otel:.1} ns (medians); \
         runtrace / otel {median:.3} (quartiles {q1:.3}-{q3:.3})"
    );
}

/// Whether [`time`] warms up first (the fifth argument, `warm`).
static WARM: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Flushes the library's spans to its exporter, after a warm-up.
    static FLUSH: RefCell<Option<Box<dyn Fn()>>> = const { RefCell::new(None) };
}

/// Sets what flushes after a warm-up.
fn on_warm_up(flush: impl Fn() + 'static) {
    FLUSH.with(|f| *f.borrow_mut() = Some(Box::new(flush)));
}

/// Runs `op` `n` times (after a warm-up and a flush, if asked) and returns
/// how long the timed runs took.
fn time(n: u64, mut op: impl FnMut()) -> Duration {
    if WARM.load(Ordering::Relaxed) {
        for _ in 0..n {
            op();
        }
        FLUSH.with(|f| f.borrow().as_ref().map(|flush| flush()));
    }
    measure(n, op)
}

/// The timed loop, out of line so that callgrind can count it alone.
#[inline(never)]
fn measure(n: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed()
}

/// Two threads each run `op` `n / 2` times; the wall time for all `n`.
/// The threads are made for the timed runs, so there is no warm-up here.
fn time_2threads(n: u64, op: &(impl Fn() + Sync)) -> Duration {
    assert!(
        !WARM.load(Ordering::Relaxed),
        "`warm` is for one thread's cases, not `2threads`"
    );
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..n / 2 {
                    op();
                }
            });
        }
    });
    start.elapsed()
}

mod rt {
    use super::*;
    use runtrace::sampling::{AlwaysOff, AlwaysOn, Sampler};
    use runtrace::{BatchConfig, KeyValue, Tracer, TracerProvider};

    fn provider(sampler: impl Sampler + 'static, queue: usize) -> TracerProvider {
        let config = BatchConfig::builder()
            .with_max_queue_size(queue)
            .with_scheduled_delay(Duration::from_millis(100))
            .build();
        TracerProvider::builder()
            .with_sampler(sampler)
            .with_batch_config(config)
            .with_batch_exporter(Discard::default())
            .build()
    }

    fn root(tracer: &Tracer) {
        let mut span = black_box(tracer).span("span").start();
        span.end();
    }

    pub(super) fn run(case: &str, n: u64, queue: usize) -> Duration {
        let p = match case {
            "dropped" => provider(AlwaysOff, queue),
            "disabled" => TracerProvider::noop(),
            _ => provider(AlwaysOn, queue),
        };
        let tracer = p.tracer("bench");
        let flushed = p.clone();
        on_warm_up(move || drop(flushed.force_flush()));
        let elapsed = match case {
            "sampled_root" | "dropped" | "disabled" => time(n, || root(&tracer)),
            "sampled_root_4attrs" => time(n, || {
                let mut span = black_box(&tracer).span("span").start();
                span.set_attribute("http.route", "/v1/infer");
                span.set_attribute("model", "llama-3-8b");
                span.set_attribute("tokens", 512_i64);
                span.set_attribute("cache.hit", true);
                span.end();
            }),
            "sampled_root_20attrs" => time(n, || {
                let mut span = black_box(&tracer).span("span").start();
                for (key, value) in HTTP_ATTRIBUTES {
                    span.set_attribute(key, value);
                }
                span.end();
            }),
            "root_event" => time(n, || {
                let mut span = black_box(&tracer).span("span").start();
                span.add_event("cache miss", vec![KeyValue::new("key", "user:42")]);
                span.end();
            }),
            "child" => {
                let parent = tracer.span("parent").start();
                let _g = parent.enter();
                time(n, || root(&tracer))
            }
            "2threads" => time_2threads(n, &|| root(&tracer)),
            "child_explicit_parent" => {
                let parent = tracer.span("parent").start();
                let cx = parent.context();
                time(n, || {
                    black_box(&tracer).span("span").parent(&cx).start().end();
                })
            }
            "root_builder_4attrs" => time(n, || {
                black_box(&tracer)
                    .span("span")
                    .kind(runtrace::SpanKind::Server)
                    .attribute("http.route", "/v1/infer")
                    .attribute("model", "llama-3-8b")
                    .attribute("tokens", 512_i64)
                    .attribute("cache.hit", true)
                    .start()
                    .end();
            }),
            "in_span" => time(n, || {
                black_box(&tracer).in_span("span", |span| black_box(span).set_attribute("n", 1));
            }),
            "async_child" => {
                use runtrace::FutureExt;
                use std::future::Future;
                let parent = tracer.span("parent").start();
                let cx = parent.context();
                let waker = std::task::Waker::noop();
                let mut task_cx = std::task::Context::from_waker(waker);
                time(n, || {
                    let span = black_box(&tracer).span("span").parent(&cx).start();
                    let fut = std::pin::pin!(std::future::ready(()).in_span(span));
                    let _ = fut.poll(&mut task_cx);
                })
            }
            "async_1poll" | "async_4polls" => {
                // A root around a future that is pending 0 or 3 times: the
                // difference over 3 is what one more poll of an `in_span`
                // future costs.
                use runtrace::FutureExt;
                use std::future::Future;
                let pendings = if case == "async_1poll" { 0 } else { 3 };
                let waker = std::task::Waker::noop();
                let mut task_cx = std::task::Context::from_waker(waker);
                time(n, || {
                    let mut pending = black_box(pendings);
                    let fut = std::future::poll_fn(|_| {
                        if pending == 0 {
                            return std::task::Poll::Ready(());
                        }
                        pending -= 1;
                        std::task::Poll::Pending
                    });
                    let span = black_box(&tracer).span("span").start();
                    let mut fut = std::pin::pin!(fut.in_span(span));
                    while fut.as_mut().poll(&mut task_cx).is_pending() {}
                })
            }
            "global_tracer" => {
                runtrace::global::set_tracer_provider(p.clone());
                time(n, || {
                    drop(black_box(runtrace::global::tracer(black_box("bench"))))
                })
            }
            _ => panic!("unknown case {case}"),
        };
        let _ = p.force_flush();
        eprintln!("{:?}", p.stats());
        let _ = p.shutdown();
        elapsed
    }
}

mod otel {
    use super::*;
    use opentelemetry::trace::noop::NoopTracerProvider;
    use opentelemetry::trace::{
        mark_span_as_active, Span as _, SpanKind, TraceContextExt as _, Tracer as _,
        TracerProvider as _,
    };
    use opentelemetry::{Context, KeyValue};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{
        BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
    };
    use std::future::Future;

    #[derive(Debug)]
    struct Discard(Arc<AtomicU64>);

    impl SpanExporter for Discard {
        fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
            self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
            std::future::ready(Ok(()))
        }
    }

    fn root<T: opentelemetry::trace::Tracer>(tracer: &T) {
        let mut span = black_box(tracer).start("span");
        span.end();
    }

    pub(super) fn run(case: &str, n: u64, queue: usize) -> Duration {
        if case == "disabled" {
            let tracer = NoopTracerProvider::new().tracer("bench");
            return time(n, || root(&tracer));
        }
        let exported = Arc::new(AtomicU64::new(0));
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(queue)
            .with_scheduled_delay(Duration::from_millis(100))
            .build();
        let bsp = BatchSpanProcessor::builder(Discard(exported.clone()))
            .with_batch_config(config)
            .build();
        let sampler = match case {
            "dropped" => Sampler::AlwaysOff,
            _ => Sampler::AlwaysOn,
        };
        let p = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_span_processor(bsp)
            .build();
        let tracer = p.tracer("bench");
        let flushed = p.clone();
        on_warm_up(move || drop(flushed.force_flush()));
        let elapsed = match case {
            "sampled_root" | "dropped" => time(n, || root(&tracer)),
            "sampled_root_4attrs" => time(n, || {
                let mut span = black_box(&tracer).start("span");
                span.set_attribute(KeyValue::new("http.route", "/v1/infer"));
                span.set_attribute(KeyValue::new("model", "llama-3-8b"));
                span.set_attribute(KeyValue::new("tokens", 512_i64));
                span.set_attribute(KeyValue::new("cache.hit", true));
                span.end();
            }),
            "sampled_root_20attrs" => time(n, || {
                let mut span = black_box(&tracer).start("span");
                for (key, value) in HTTP_ATTRIBUTES {
                    span.set_attribute(KeyValue::new(key, value));
                }
                span.end();
            }),
            "root_event" => time(n, || {
                let mut span = black_box(&tracer).start("span");
                span.add_event("cache miss", vec![KeyValue::new("key", "user:42")]);
                span.end();
            }),
            "child" => {
                let _g = mark_span_as_active(tracer.start("parent"));
                time(n, || root(&tracer))
            }
            // As the span bench's `otel` cases.
            "child_explicit_parent" => {
                let cx = Context::new().with_span(tracer.start("parent"));
                time(n, || {
                    black_box(&tracer).start_with_context("span", &cx).end();
                })
            }
            "root_builder_4attrs" => time(n, || {
                let tracer = black_box(&tracer);
                tracer
                    .span_builder("span")
                    .with_kind(SpanKind::Server)
                    .with_attributes([
                        KeyValue::new("http.route", "/v1/infer"),
                        KeyValue::new("model", "llama-3-8b"),
                        KeyValue::new("tokens", 512_i64),
                        KeyValue::new("cache.hit", true),
                    ])
                    .start(tracer)
                    .end();
            }),
            "async_child" => {
                use opentelemetry::context::FutureExt as _;
                use std::future::Future as _;
                let cx = Context::new().with_span(tracer.start("parent"));
                let mut task_cx = std::task::Context::from_waker(std::task::Waker::noop());
                time(n, || {
                    // The span ends when the context holding it drops, with
                    // the future.
                    let span = black_box(&tracer).start_with_context("span", &cx);
                    let fut =
                        std::pin::pin!(std::future::ready(()).with_context(cx.with_span(span)));
                    let _ = fut.poll(&mut task_cx);
                })
            }
            _ => panic!("unknown case {case}"),
        };
        let _ = p.force_flush();
        eprintln!("exported {}", exported.load(Ordering::Relaxed));
        let _ = p.shutdown();
        elapsed
    }
}

mod ft {
    use super::*;
    use fastrace::collector::{Config, Reporter, SpanContext, SpanRecord};
    use fastrace::Span;

    struct Discard(Arc<AtomicU64>);

    impl Reporter for Discard {
        fn report(&mut self, spans: Vec<SpanRecord>) {
            self.0.fetch_add(spans.len() as u64, Ordering::Relaxed);
        }
    }

    pub(super) fn run(case: &str, n: u64) -> Duration {
        let exported = Arc::new(AtomicU64::new(0));
        fastrace::set_reporter(Discard(exported.clone()), Config::default());
        on_warm_up(fastrace::flush);
        let root = || Span::root(black_box("span"), SpanContext::random());
        let elapsed = match case {
            "sampled_root" => time(n, || drop(root())),
            "sampled_root_4attrs" => time(n, || {
                let span = root();
                span.add_property(|| ("http.route", "/v1/infer"));
                span.add_property(|| ("model", "llama-3-8b"));
                span.add_property(|| ("tokens", 512_i64.to_string()));
                span.add_property(|| ("cache.hit", "true"));
            }),
            "child" => {
                let parent = Span::root("parent", SpanContext::random());
                let _g = parent.set_local_parent();
                time(n, || drop(Span::enter_with_local_parent(black_box("span"))))
            }
            "dropped" => time(n, || {
                drop(Span::root(
                    black_box("span"),
                    SpanContext::random().sampled(false),
                ))
            }),
            "disabled" => time(n, || drop(black_box(Span::noop()))),
            _ => panic!("unknown case {case}"),
        };
        fastrace::flush();
        eprintln!("exported {}", exported.load(Ordering::Relaxed));
        elapsed
    }
}
