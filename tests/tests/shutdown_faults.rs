//! A shutdown that arrives while the OTLP exporter waits between retries (the
//! backend is down) cuts the wait short, and every span is accounted for by the
//! time `shutdown_with_timeout` returns.

use runtrace::{BatchConfig, TracerProvider};
use runtrace_otlp_http::OtlpHttpExporter;
use std::time::{Duration, Instant};

#[test]
fn shutdown_cancels_retry_backoff_and_accounts_for_every_span() {
    // A port with nothing listening: connections are refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exporter = OtlpHttpExporter::builder()
        .with_endpoint(format!("http://127.0.0.1:{port}/v1/traces"))
        .with_timeout(Duration::from_secs(30))
        .with_backoff(Duration::from_secs(5), Duration::from_secs(5))
        .build()
        .unwrap();
    let provider = TracerProvider::builder()
        .with_batch_config(
            BatchConfig::builder()
                .with_max_queue_size(1000)
                .with_max_export_batch_size(10)
                .with_scheduled_delay(Duration::from_secs(3600))
                .build(),
        )
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("t");
    for _ in 0..100 {
        tracer.span("s").start().end();
    }
    // Let the worker start the first export and enter its 5 s backoff.
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let result = provider.shutdown_with_timeout(Duration::from_secs(2));
    let took = start.elapsed();
    assert!(result.is_err(), "nothing could be exported");
    // The 2 s shutdown, not the exporter's 5 s backoff: 2 s of slack between.
    assert!(took < Duration::from_millis(4000), "took {took:?}");
    let s = provider.stats();
    assert_eq!(s.spans_ended, 100);
    assert_eq!(s.queue_size, 0, "{s:?}");
    assert_eq!(s.spans_exported, 0);
    assert_eq!(
        s.spans_ended,
        s.dropped_total(),
        "every span counted: {s:?}"
    );
    assert!(s.dropped_export_failed >= 10, "{s:?}");
}
