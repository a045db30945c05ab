//! The pools of attribute lists and span details follow the batch processors
//! alive now, not the first span that took one (issue #21), and a span with
//! attributes, an event with attributes and an error status allocates nothing
//! in steady state. Its own test binary: the pools are process-wide, and
//! another test's spans would take their items.
//! Uses a counting global allocator (per thread).

use runtrace::{
    BatchConfig, ExportError, InMemoryExporter, KeyValue, SpanData, SpanExporter, Status, Str,
    TracerProvider,
};
use std::time::{Duration, Instant};

mod common;
use common::{allocations_during, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    fn export(&mut self, _: &[SpanData], _: Instant) -> Result<(), ExportError> {
        Ok(())
    }
}

/// Spans with 4 builder attributes (2 strings, i64, bool), as the bench's
/// (one by one, or as a recycled list), an event with a run-time string
/// attribute in a recycled list, and an error status.
fn spans_with_4_attributes(tracer: &runtrace::Tracer, n: usize) {
    for i in 0..n {
        let builder = tracer.span("request");
        let builder = if i % 2 == 0 {
            builder
                .attribute("http.route", "/v1/infer")
                .attribute("model", "llama")
                .attribute("tokens", i as i64)
                .attribute("cached", true)
        } else {
            // A recycled list, taken over by the builder as it is.
            let mut list = tracer.attribute_list();
            list.push(KeyValue::new("http.route", "/v1/infer"));
            list.push(KeyValue::new("model", "llama"));
            list.push(KeyValue::new("tokens", i as i64));
            list.push(KeyValue::new("cached", true));
            builder.attributes(list)
        };
        let mut span = builder.start();
        let mut fields = tracer.attribute_list();
        fields.push(KeyValue::new("rows", Str::copied("three rows")));
        span.add_event("fetched", fields);
        span.set_status(Status::error("failed"));
        span.end();
    }
}

#[test]
fn a_large_batch_queue_built_after_a_simple_processor_recycles_every_list_and_details() {
    // First a test provider with a simple processor: its spans take lists
    // before any batch processor exists (this sized the pool for good).
    let simple = TracerProvider::builder()
        .with_simple_exporter(InMemoryExporter::default())
        .build();
    spans_with_4_attributes(&simple.tracer("startup"), 10);
    simple.shutdown().unwrap();

    // Then the production provider, with a large queue. No export before a
    // flush: the whole burst is in flight at once, as under a slow backend.
    let burst = 8_000;
    let provider = TracerProvider::builder()
        .with_batch_config(
            BatchConfig::builder()
                .with_max_queue_size(16_384)
                .with_max_export_batch_size(16_384)
                .with_scheduled_delay(Duration::from_secs(3600))
                .build(),
        )
        .with_batch_exporter(Discard)
        .build();
    let tracer = provider.tracer("service");
    spans_with_4_attributes(&tracer, burst);
    provider.force_flush().unwrap();
    let stats = provider.stats();
    assert_eq!(stats.spans_exported, burst as u64, "{stats:?}");

    // Steady state: the next burst takes the lists and details the first one
    // gave back. With a pool left at 2,048 lists, 5,952 of these spans
    // allocated; before details were recycled, each span allocated its
    // details and their event list.
    let n = allocations_during(|| spans_with_4_attributes(&tracer, burst));
    assert_eq!(n, 0, "{burst} sampled spans allocated {n} times");
    provider.shutdown().unwrap();
}
