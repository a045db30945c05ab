//! Span start+end cost: runtrace against opentelemetry_sdk and fastrace.
//!
//! Run with `cargo bench -p runtrace-benches --bench span -- --warm-up-time 1
//! --measurement-time 3`. Every figure is time per span (start + end, plus the
//! attributes where named). Sampled spans go through each library's production
//! pipeline: runtrace's and opentelemetry_sdk's std-thread `BatchSpanProcessor`
//! with an exporter that counts and discards, fastrace's global collector with a
//! reporter that counts and discards. The batch queues are large (65536) so that
//! the worker keeps up and we measure the enqueue path, not the queue-full drop
//! path; after each sampled bench the number of spans ended, exported and dropped
//! is printed to stderr so that a run that measured drops is visible.
//!
//! Each library's span code is inlined into the timing loop (`#[inline(always)]`
//! on the helpers below), as in an application, rather than left to the
//! compiler, which called some helpers and inlined others: a call costs about
//! half a nanosecond, which matters next to a disabled span.
//!
//! The "2threads" figure is the wall time for two threads that each end `iters`
//! sampled root spans concurrently, divided by `2 * iters`: the time per span of
//! the aggregate, comparable with the single-thread ns/span. Perfect scaling gives
//! half the single-thread figure; the target "two threads together reach at least
//! 1.6x the single-thread span rate" means `2threads <= sampled_root / 1.6`
//! (equivalently: each thread's own time per span, `2 * 2threads`, is at most
//! `sampled_root / 0.8`). On a machine with fewer than three free cores the batch
//! worker competes with the two producers, so the figure is pessimistic there.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use runtrace::TracerProvider;
use runtrace_benches::{timed, Discard, HTTP_ATTRIBUTES};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Queue size for the batch processors: far more than the spans produced in one
/// schedule delay at the rate the discarding worker drains them. It bounds all
/// the spans a processor buffers, in both SDKs; runtrace gives half of it to
/// the lane of the first thread, so a thread alone has a lane of 65536 spans
/// (as when each lane held `max_queue_size`, before #19, with 65536).
const MAX_QUEUE_SIZE: usize = 131_072;
const MAX_EXPORT_BATCH_SIZE: usize = 512;
const SCHEDULED_DELAY: Duration = Duration::from_millis(100);

/// Polls `future` to completion with a waker that does nothing (the futures
/// here are ready at once).
#[inline(always)]
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Two threads each run `op` `iters` times, released together; returns the wall
/// time from release until both finished, halved (see the module doc).
fn two_threads(count: &Cell<u64>, iters: u64, op: &(impl Fn() + Sync)) -> Duration {
    count.set(count.get() + 2 * iters);
    let barrier = Barrier::new(3);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..iters {
                        op();
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for w in workers {
            w.join().expect("bench thread panicked");
        }
        start.elapsed() / 2
    })
}

/// Prints how many of the spans a bench ended reached the exporter.
fn report_delivery(lib: &str, bench: &str, ended: u64, exported: u64) {
    eprintln!(
        "[{lib}/{bench}] spans ended {ended}, exported {exported}, lost {}",
        ended.saturating_sub(exported)
    );
}

mod rt {
    use super::*;
    use runtrace::sampling::{AlwaysOff, AlwaysOn, Sampler};
    use runtrace::{BatchConfig, FutureExt, SpanKind, Tracer, TracerProvider};

    fn provider(sampler: impl Sampler + 'static) -> TracerProvider {
        let config = BatchConfig::builder()
            .with_max_queue_size(MAX_QUEUE_SIZE)
            .with_max_export_batch_size(MAX_EXPORT_BATCH_SIZE)
            .with_scheduled_delay(SCHEDULED_DELAY)
            .build();
        TracerProvider::builder()
            .with_sampler(sampler)
            .with_batch_config(config)
            .with_batch_exporter(Discard::default())
            .build()
    }

    /// Flushes, prints the processor's counters (drops included), shuts down.
    fn finish(bench: &str, provider: TracerProvider, ended: u64) {
        let _ = provider.force_flush();
        let s = provider.stats();
        report_delivery("runtrace", bench, ended, s.spans_exported);
        eprintln!(
            "[runtrace/{bench}] stats: ended {} queued {} exported {} dropped_queue_full {} dropped_total {}",
            s.spans_ended, s.spans_queued, s.spans_exported, s.dropped_queue_full, s.dropped_total()
        );
        let _ = provider.shutdown();
    }

    #[inline(always)]
    fn root(tracer: &Tracer) {
        let mut span = black_box(tracer).span("span").start();
        span.end();
    }

    #[inline(always)]
    fn root_4attrs(tracer: &Tracer) {
        let mut span = black_box(tracer).span("span").start();
        span.set_attribute("http.route", "/v1/infer");
        span.set_attribute("model", "llama-3-8b");
        span.set_attribute("tokens", 512_i64);
        span.set_attribute("cache.hit", true);
        span.end();
    }

    #[inline(always)]
    fn root_20attrs(tracer: &Tracer) {
        let mut span = black_box(tracer).span("span").start();
        for (key, value) in HTTP_ATTRIBUTES {
            span.set_attribute(key, value);
        }
        span.end();
    }

    #[inline(always)]
    fn root_event(tracer: &Tracer) {
        let mut span = black_box(tracer).span("span").start();
        span.add_event(
            "cache miss",
            vec![runtrace::KeyValue::new("key", "user:42")],
        );
        span.end();
    }

    /// A case whose every iteration is `op`, through a provider whose
    /// sampler keeps every span.
    fn bench_sampled(
        g: &mut BenchmarkGroup<'_, WallTime>,
        case: Case,
        count: &Cell<u64>,
        op: impl Fn(&Tracer),
    ) {
        let p = provider(AlwaysOn);
        let tracer = p.tracer("bench");
        g.bench_function(format!("runtrace/{}", case.name()), |b| {
            b.iter_custom(|n| timed(count, n, || op(&tracer)))
        });
        finish(case.name(), p, count.take());
    }

    #[inline(always)]
    fn root_builder_4attrs(tracer: &Tracer) {
        black_box(tracer)
            .span("span")
            .kind(SpanKind::Server)
            .attribute("http.route", "/v1/infer")
            .attribute("model", "llama-3-8b")
            .attribute("tokens", 512_i64)
            .attribute("cache.hit", true)
            .start()
            .end();
    }

    pub(super) fn bench(g: &mut BenchmarkGroup<'_, WallTime>, case: Case) {
        let count = Cell::new(0);
        let name = format!("runtrace/{}", case.name());
        match case {
            Case::SampledRoot => bench_sampled(g, case, &count, root),
            Case::SampledRoot4Attrs => bench_sampled(g, case, &count, root_4attrs),
            Case::SampledRoot20Attrs => bench_sampled(g, case, &count, root_20attrs),
            Case::RootEvent => bench_sampled(g, case, &count, root_event),
            Case::RootBuilder4Attrs => bench_sampled(g, case, &count, root_builder_4attrs),
            Case::ChildInActiveParent => {
                let p = provider(AlwaysOn);
                let tracer = p.tracer("bench");
                g.bench_function(name, |b| {
                    // The parent is made current outside the timed loop, once per
                    // sample (it ends, untimed, when the closure returns; counted
                    // as ended).
                    b.iter_custom(|n| {
                        count.set(count.get() + 1);
                        let parent = tracer.span("parent").start();
                        let _g = parent.enter();
                        timed(&count, n, || root(&tracer))
                    })
                });
                finish(case.name(), p, count.take());
            }
            Case::DroppedRoot => {
                let p = provider(AlwaysOff);
                let tracer = p.tracer("bench");
                g.bench_function(name, |b| {
                    b.iter_custom(|n| timed(&count, n, || root(&tracer)))
                });
                let _ = p.shutdown();
            }
            Case::Disabled => {
                let p = TracerProvider::noop();
                let tracer = p.tracer("bench");
                g.bench_function(name, |b| {
                    b.iter_custom(|n| timed(&count, n, || root(&tracer)))
                });
            }
            Case::SampledRoot2Threads => {
                let p = provider(AlwaysOn);
                let tracer = p.tracer("bench");
                g.bench_function(name, |b| {
                    b.iter_custom(|n| two_threads(&count, n, &|| root(&tracer)))
                });
                finish(case.name(), p, count.take());
            }
            Case::ChildExplicitParent => {
                let p = provider(AlwaysOn);
                let tracer = p.tracer("bench");
                g.bench_function(name, |b| {
                    b.iter_custom(|n| {
                        count.set(count.get() + 1);
                        let parent = tracer.span("parent").start();
                        let cx = parent.context();
                        timed(&count, n, || {
                            black_box(&tracer).span("span").parent(&cx).start().end()
                        })
                    })
                });
                finish(case.name(), p, count.take());
            }
            Case::AsyncChild => {
                let p = provider(AlwaysOn);
                let tracer = p.tracer("bench");
                g.bench_function(name, |b| {
                    b.iter_custom(|n| {
                        count.set(count.get() + 1);
                        let parent = tracer.span("parent").start();
                        let cx = parent.context();
                        timed(&count, n, || {
                            let span = black_box(&tracer).span("span").parent(&cx).start();
                            block_on(std::future::ready(()).in_span(span))
                        })
                    })
                });
                finish(case.name(), p, count.take());
            }
        }
    }
}

mod otel {
    use super::*;
    use opentelemetry::trace::noop::NoopTracerProvider;
    use opentelemetry::trace::{
        mark_span_as_active, FutureExt as _, Span as _, SpanKind, TraceContextExt as _,
        Tracer as _, TracerProvider as _,
    };
    use opentelemetry::{Context, KeyValue};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{
        BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, SpanData,
        SpanExporter,
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

    /// The SDK with its std-thread `BatchSpanProcessor` (not the tokio one).
    fn provider(sampler: Sampler) -> (SdkTracerProvider, Arc<AtomicU64>) {
        let exported = Arc::new(AtomicU64::new(0));
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(MAX_QUEUE_SIZE)
            .with_max_export_batch_size(MAX_EXPORT_BATCH_SIZE)
            .with_scheduled_delay(SCHEDULED_DELAY)
            .build();
        let bsp = BatchSpanProcessor::builder(Discard(exported.clone()))
            .with_batch_config(config)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_span_processor(bsp)
            .build();
        (provider, exported)
    }

    fn finish(bench: &str, (provider, exported): (SdkTracerProvider, Arc<AtomicU64>), ended: u64) {
        let _ = provider.force_flush();
        report_delivery("otel", bench, ended, exported.load(Ordering::Relaxed));
        let _ = provider.shutdown();
    }

    #[inline(always)]
    fn root<T: opentelemetry::trace::Tracer>(tracer: &T) {
        let mut span = black_box(tracer).start("span");
        span.end();
    }

    #[inline(always)]
    fn root_4attrs<T: opentelemetry::trace::Tracer>(tracer: &T) {
        let mut span = black_box(tracer).start("span");
        span.set_attribute(KeyValue::new("http.route", "/v1/infer"));
        span.set_attribute(KeyValue::new("model", "llama-3-8b"));
        span.set_attribute(KeyValue::new("tokens", 512_i64));
        span.set_attribute(KeyValue::new("cache.hit", true));
        span.end();
    }

    #[inline(always)]
    fn root_20attrs<T: opentelemetry::trace::Tracer>(tracer: &T) {
        let mut span = black_box(tracer).start("span");
        for (key, value) in HTTP_ATTRIBUTES {
            span.set_attribute(KeyValue::new(key, value));
        }
        span.end();
    }

    #[inline(always)]
    fn root_event<T: opentelemetry::trace::Tracer>(tracer: &T) {
        let mut span = black_box(tracer).start("span");
        span.add_event("cache miss", vec![KeyValue::new("key", "user:42")]);
        span.end();
    }

    /// A case whose every iteration is `op`, through a provider whose
    /// sampler keeps every span.
    fn bench_sampled(
        g: &mut BenchmarkGroup<'_, WallTime>,
        case: Case,
        count: &Cell<u64>,
        op: impl Fn(&SdkTracer),
    ) {
        let p = provider(Sampler::AlwaysOn);
        let tracer = p.0.tracer("bench");
        g.bench_function(format!("otel/{}", case.name()), |b| {
            b.iter_custom(|n| timed(count, n, || op(&tracer)))
        });
        finish(case.name(), p, count.take());
    }

    #[inline(always)]
    fn root_builder_4attrs<T: opentelemetry::trace::Tracer>(tracer: &T) {
        let tracer = black_box(tracer);
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
    }

    pub(super) fn bench(g: &mut BenchmarkGroup<'_, WallTime>, case: Case) {
        let count = Cell::new(0);
        let name = format!("otel/{}", case.name());
        match case {
            Case::SampledRoot => bench_sampled(g, case, &count, root),
            Case::SampledRoot4Attrs => bench_sampled(g, case, &count, root_4attrs),
            Case::SampledRoot20Attrs => bench_sampled(g, case, &count, root_20attrs),
            Case::RootEvent => bench_sampled(g, case, &count, root_event),
            Case::RootBuilder4Attrs => bench_sampled(g, case, &count, root_builder_4attrs),
            Case::ChildInActiveParent => {
                let p = provider(Sampler::AlwaysOn);
                let tracer = p.0.tracer("bench");
                g.bench_function(name, |b| {
                    b.iter_custom(|n| {
                        // The parent becomes the active span of the current
                        // Context, once per sample; it ends (untimed, counted)
                        // when the guard drops.
                        count.set(count.get() + 1);
                        let _g = mark_span_as_active(tracer.start("parent"));
                        timed(&count, n, || root(&tracer))
                    })
                });
                finish(case.name(), p, count.take());
            }
            Case::DroppedRoot => {
                let p = provider(Sampler::AlwaysOff);
                let tracer = p.0.tracer("bench");
                g.bench_function(name, |b| {
                    b.iter_custom(|n| timed(&count, n, || root(&tracer)))
                });
                let _ = p.0.shutdown();
            }
            Case::Disabled => {
                // What an application gets from opentelemetry with tracing
                // disabled: the API's no-op provider (the global default, minus
                // the global's boxing).
                let tracer = NoopTracerProvider::new().tracer("bench");
                g.bench_function(name, |b| {
                    b.iter_custom(|n| timed(&count, n, || root(&tracer)))
                });
            }
            Case::SampledRoot2Threads => {
                let p = provider(Sampler::AlwaysOn);
                let tracer = p.0.tracer("bench");
                g.bench_function(name, |b| {
                    b.iter_custom(|n| two_threads(&count, n, &|| root(&tracer)))
                });
                finish(case.name(), p, count.take());
            }
            Case::ChildExplicitParent => {
                let p = provider(Sampler::AlwaysOn);
                let tracer = p.0.tracer("bench");
                g.bench_function(name, |b| {
                    b.iter_custom(|n| {
                        count.set(count.get() + 1);
                        let cx = Context::new().with_span(tracer.start("parent"));
                        timed(&count, n, || {
                            black_box(&tracer).start_with_context("span", &cx).end()
                        })
                    })
                });
                finish(case.name(), p, count.take());
            }
            Case::AsyncChild => {
                let p = provider(Sampler::AlwaysOn);
                let tracer = p.0.tracer("bench");
                g.bench_function(name, |b| {
                    b.iter_custom(|n| {
                        count.set(count.get() + 1);
                        let cx = Context::new().with_span(tracer.start("parent"));
                        timed(&count, n, || {
                            // The span ends when the context holding it drops,
                            // with the future.
                            let span = black_box(&tracer).start_with_context("span", &cx);
                            block_on(std::future::ready(()).with_context(cx.with_span(span)))
                        })
                    })
                });
                finish(case.name(), p, count.take());
            }
        }
    }
}

mod ft {
    //! fastrace has no sampler and no provider object: collection is global and
    //! turned on by `set_reporter`. Mapping of the cells:
    //! - sampled root: `Span::root(name, SpanContext::random())`, reported to a
    //!   reporter that counts and discards;
    //! - 4 attributes: `add_property` four times; properties are strings only, so
    //!   the i64 is formatted (`to_string`, what a user writes) and the bool is a
    //!   literal `"true"`;
    //! - child: `Span::enter_with_local_parent` under the parent's
    //!   `set_local_parent` guard (a full `Span`, like runtrace's, rather than the
    //!   thread-bound `LocalSpan`);
    //! - dropped: a root whose context says not sampled
    //!   (`SpanContext::random().sampled(false)`), fastrace's head-sampling-out;
    //! - disabled: `Span::noop()`, what instrumented code gets when there is no
    //!   trace to join (fastrace's real "off" switch is compiling without its
    //!   `enable` feature, which makes every call an empty function).
    use super::*;
    use fastrace::collector::{Config, Reporter, SpanContext, SpanRecord};
    use fastrace::Span;

    struct Discard(Arc<AtomicU64>);

    impl Reporter for Discard {
        fn report(&mut self, spans: Vec<SpanRecord>) {
            self.0.fetch_add(spans.len() as u64, Ordering::Relaxed);
        }
    }

    #[inline(always)]
    fn root() -> Span {
        Span::root(black_box("span"), SpanContext::random())
    }

    /// fastrace reports a trace when its collector thread gets to it, so spans
    /// of one bench may be reported during the next one: indicative only.
    fn finish(bench: &str, exported: &AtomicU64, ended: u64) {
        fastrace::flush();
        report_delivery(
            "fastrace",
            bench,
            ended,
            exported.swap(0, Ordering::Relaxed),
        );
    }

    /// Hands a sample's spans to the reporter before the next sample, outside
    /// the timing: fastrace's collector otherwise buffers every span it has not
    /// reached yet, and a run of tens of millions of child spans once grew to
    /// the machine's 24 GiB and was killed.
    fn flushed(elapsed: Duration) -> Duration {
        fastrace::flush();
        elapsed
    }

    /// Turns fastrace's global collection on, with a reporter that counts into
    /// the returned counter.
    pub(super) fn start_collecting() -> Arc<AtomicU64> {
        let exported = Arc::new(AtomicU64::new(0));
        fastrace::set_reporter(Discard(exported.clone()), Config::default());
        exported
    }

    pub(super) fn bench(g: &mut BenchmarkGroup<'_, WallTime>, case: Case, exported: &AtomicU64) {
        let count = Cell::new(0);
        let name = format!("fastrace/{}", case.name());
        match case {
            Case::SampledRoot => {
                g.bench_function(name, |b| {
                    b.iter_custom(|n| flushed(timed(&count, n, || drop(root()))))
                });
                finish(case.name(), exported, count.take());
            }
            Case::SampledRoot4Attrs => {
                g.bench_function(name, |b| {
                    b.iter_custom(|n| {
                        flushed(timed(&count, n, || {
                            let span = root();
                            span.add_property(|| ("http.route", "/v1/infer"));
                            span.add_property(|| ("model", "llama-3-8b"));
                            span.add_property(|| ("tokens", 512_i64.to_string()));
                            span.add_property(|| ("cache.hit", "true"));
                            drop(span);
                        }))
                    })
                });
                finish(case.name(), exported, count.take());
            }
            Case::ChildInActiveParent => {
                g.bench_function(name, |b| {
                    b.iter_custom(|n| {
                        // A fresh parent per sample: fastrace holds a trace's
                        // spans until its root ends, so one parent for the whole
                        // run would grow without bound. Ending it (and
                        // reporting) is outside the timing.
                        count.set(count.get() + 1);
                        let elapsed = {
                            let parent = Span::root("parent", SpanContext::random());
                            let _g = parent.set_local_parent();
                            timed(&count, n, || {
                                drop(Span::enter_with_local_parent(black_box("span")))
                            })
                        };
                        flushed(elapsed)
                    })
                });
                finish(case.name(), exported, count.take());
            }
            Case::DroppedRoot => {
                g.bench_function(name, |b| {
                    b.iter_custom(|n| {
                        timed(&count, n, || {
                            drop(Span::root(
                                black_box("span"),
                                SpanContext::random().sampled(false),
                            ))
                        })
                    })
                });
            }
            Case::Disabled => {
                g.bench_function(name, |b| {
                    b.iter_custom(|n| timed(&count, n, || drop(black_box(Span::noop()))))
                });
            }
            Case::SampledRoot2Threads => {
                g.bench_function(name, |b| {
                    b.iter_custom(|n| flushed(two_threads(&count, n, &|| drop(root()))))
                });
                finish(case.name(), exported, count.take());
            }
            // Measured against opentelemetry_sdk only: issue #16's shapes,
            // the 20-attribute span and the event.
            Case::ChildExplicitParent
            | Case::RootBuilder4Attrs
            | Case::AsyncChild
            | Case::SampledRoot20Attrs
            | Case::RootEvent => {}
        }
    }
}

/// The cases, each measured for every library in turn.
#[derive(Clone, Copy)]
enum Case {
    SampledRoot,
    SampledRoot4Attrs,
    ChildInActiveParent,
    DroppedRoot,
    Disabled,
    SampledRoot2Threads,
    /// A child of a parent passed explicitly (otel: `start_with_context`).
    ChildExplicitParent,
    /// A server span with 4 attributes given to the builder (otel:
    /// `span_builder(..).with_attributes(..)`).
    RootBuilder4Attrs,
    /// A child of an explicit context around a ready future (runtrace:
    /// `FutureExt::in_span`; otel: `FutureExt::with_context`).
    AsyncChild,
    /// A root with an HTTP server span's 20 attributes set one by one
    /// ([`HTTP_ATTRIBUTES`]).
    SampledRoot20Attrs,
    /// A root with one event of one attribute, given as `vec![..]`.
    RootEvent,
}

impl Case {
    const ALL: [Case; 11] = [
        Case::SampledRoot,
        Case::SampledRoot4Attrs,
        Case::ChildInActiveParent,
        Case::DroppedRoot,
        Case::Disabled,
        Case::SampledRoot2Threads,
        Case::ChildExplicitParent,
        Case::RootBuilder4Attrs,
        Case::AsyncChild,
        Case::SampledRoot20Attrs,
        Case::RootEvent,
    ];

    fn name(self) -> &'static str {
        match self {
            Case::SampledRoot => "sampled_root",
            Case::SampledRoot4Attrs => "sampled_root_4attrs",
            Case::ChildInActiveParent => "child_in_active_parent",
            Case::DroppedRoot => "dropped_root",
            Case::Disabled => "disabled",
            Case::SampledRoot2Threads => "sampled_root_2threads",
            Case::ChildExplicitParent => "child_explicit_parent",
            Case::RootBuilder4Attrs => "root_builder_4attrs",
            Case::AsyncChild => "async_child",
            Case::SampledRoot20Attrs => "sampled_root_20attrs",
            Case::RootEvent => "root_event",
        }
    }
}

/// Runs each case for runtrace, opentelemetry_sdk and fastrace back to back, so
/// that the figures a ratio compares are taken seconds apart: this shared VM
/// drifts between a fast and a slow phase (its two vCPUs near or far apart on
/// the host) over minutes, which skewed ratios between figures measured a
/// whole library's run apart.
fn span_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("span");
    let fastrace_exported = ft::start_collecting();
    for case in Case::ALL {
        rt::bench(&mut g, case);
        otel::bench(&mut g, case);
        ft::bench(&mut g, case, &fastrace_exported);
    }
    g.finish();
}

/// `global::tracer(name)` per call, as a library or a request handler would.
fn global_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("global");
    let provider = TracerProvider::builder().build();
    runtrace::global::set_tracer_provider(provider.clone());
    g.bench_function("runtrace/tracer", |b| {
        b.iter(|| runtrace::global::tracer(black_box("bench")))
    });
    let otel_provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    opentelemetry::global::set_tracer_provider(otel_provider.clone());
    g.bench_function("otel/tracer", |b| {
        b.iter(|| opentelemetry::global::tracer(black_box("bench")))
    });
    g.finish();
    let _ = provider.shutdown();
    let _ = otel_provider.shutdown();
}

criterion_group!(benches, span_benches, global_benches);
criterion_main!(benches);
