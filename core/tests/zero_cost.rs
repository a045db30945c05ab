//! Disabled tracing and dropped spans cost no allocation, and disabled tracing
//! starts no thread. Uses a counting global allocator (per thread).

use runtrace::sampling::AlwaysOff;
use runtrace::{InMemoryExporter, KeyValue, SpanKind, TracerProvider};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarding the caller's layout to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as for `alloc`/`dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(|c| c.get());
    f();
    ALLOCS.with(|c| c.get()) - before
}

/// Threads of this process named `runtrace-batch` (other tests' threads come and go).
/// Held by every test here that starts a batch worker, so that counting
/// `runtrace-batch` threads in one test does not see another test's worker.
static BATCH_WORKERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn batch_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim() == "runtrace-batch")
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn disabled_provider_allocates_nothing_per_span() {
    let provider = TracerProvider::from_env().with_disabled(true).build();
    let tracer = provider.tracer("noop");
    // Warm up thread-locals (the context stack allocates on a thread's first enter).
    let warm = tracer.span("warm").start();
    drop(warm.enter());
    let n = allocations_during(|| {
        for i in 0..10_000i64 {
            let mut span = tracer
                .span("request")
                .kind(SpanKind::Server)
                .attribute("http.route", "/infer")
                .attribute("i", i)
                .start();
            span.set_attribute("model", "llama");
            span.set_attribute("tokens", 128);
            span.add_event("cache miss", Vec::new());
            let _g = span.enter();
            let mut child = tracer.span("child").start();
            child.set_attribute("ok", true);
        }
    });
    assert_eq!(n, 0, "disabled tracing allocated");
}

#[test]
fn disabled_provider_starts_no_thread() {
    let _serial = BATCH_WORKERS.lock().unwrap_or_else(|e| e.into_inner());
    // A worker joined by the test before this one may linger in /proc a
    // moment (see below): up to 2 s for it to go.
    let _ = (0..200).any(|_| {
        if batch_threads() == 0 {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        false
    });
    let before = batch_threads();
    let provider = TracerProvider::from_env()
        .with_disabled(true)
        .with_batch_exporter(InMemoryExporter::default())
        .build();
    assert!(!provider.is_enabled());
    let tracer = provider.tracer("noop");
    for _ in 0..100 {
        tracer.span("x").start().end();
    }
    assert_eq!(batch_threads(), before);
    let enabled = TracerProvider::builder()
        .with_batch_exporter(InMemoryExporter::default())
        .build();
    // The new thread names itself once it runs: give it up to 2 s (it takes
    // microseconds; the rest is slack for a loaded machine).
    let named = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        batch_threads() == before + 1
    });
    assert!(
        named,
        "the batch processor starts one runtrace-batch thread"
    );
    enabled.shutdown().unwrap();
    // Shutdown joins the worker; the kernel lists a joined thread in /proc a
    // moment longer (it clears the thread id that `join` waits on before it
    // is reaped): up to 2 s of slack, it takes microseconds.
    let gone = (0..200).any(|_| {
        if batch_threads() == before {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        false
    });
    assert!(gone, "shutdown joins the worker");
}

#[test]
fn dropped_spans_allocate_nothing() {
    let provider = TracerProvider::builder()
        .with_sampler(AlwaysOff)
        .with_simple_exporter(InMemoryExporter::default())
        .build();
    let tracer = provider.tracer("drop");
    let warm = tracer.span("warm").start();
    drop(warm.enter());
    let n = allocations_during(|| {
        for i in 0..10_000i64 {
            let mut span = tracer.span("request").kind(SpanKind::Server).start();
            assert!(!span.is_recording());
            span.set_attribute("i", i);
            span.add_event("e", Vec::new());
            span.add_link(span.span_context().clone(), Vec::<KeyValue>::new());
            let _g = span.enter();
            let child = tracer.span("child").start();
            assert!(!child.is_recording());
        }
    });
    assert_eq!(n, 0, "dropped spans allocated");
}

#[test]
fn sampled_spans_reuse_exported_attribute_lists() {
    let _serial = BATCH_WORKERS.lock().unwrap_or_else(|e| e.into_inner());
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_batch_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("recycle");
    let four_attributes = |tracer: &runtrace::Tracer| {
        let mut span = tracer.span("request").start();
        span.set_attribute("http.route", "/v1/infer");
        span.set_attribute("model", "llama");
        span.set_attribute("tokens", 512);
        span.set_attribute("cached", true);
    };
    for _ in 0..200 {
        four_attributes(&tracer);
    }
    // Export them: the worker parks their attribute lists for reuse.
    provider.force_flush().unwrap();
    exporter.reset();
    let n = allocations_during(|| {
        for _ in 0..100 {
            four_attributes(&tracer);
        }
    });
    assert_eq!(n, 0, "sampled spans allocated {n} times");
    provider.force_flush().unwrap();
}

#[test]
fn an_ended_span_fits_three_cache_lines_in_the_queue() {
    // Queue slots are cache-aligned and hold an 8-byte stamp next to the span:
    // up to 184 bytes of span data make a 192-byte slot (three lines).
    let size = std::mem::size_of::<runtrace::SpanData>();
    assert!(size <= 184, "SpanData grew to {size} bytes");
}
