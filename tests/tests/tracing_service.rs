//! Drives the `tracing`-instrumented example service with a real HTTP client
//! sending `traceparent`, and checks the trees the embedded OTLP receiver got:
//! parents (the remote one included), kinds, attributes and events.

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use runtrace::TracerProvider;
use runtrace_examples::receiver::{Fault, Receiver};
use runtrace_examples::tracing_service::{get, serve};
use runtrace_otlp_http::OtlpHttpExporter;
use runtrace_tracing::RuntraceLayer;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const INTERNAL: i32 = 1;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &OtlpSpan, key: &str) -> Option<Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone()?.value)
}

/// The caller's trace and span ids for request `i`.
fn remote(i: u64) -> (String, String) {
    (
        format!("{:032x}", 0xabc0_0000 + i),
        format!("{:016x}", 0x5000 + i),
    )
}

#[test]
fn the_service_continues_traceparent_and_exports_the_whole_tree() {
    let receiver = Receiver::start(Fault::Healthy, true).unwrap();
    let exporter = OtlpHttpExporter::builder()
        .with_endpoint(receiver.endpoint())
        .build()
        .unwrap();
    let provider = TracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("tracing_service");
    let subscriber = tracing_subscriber::registry().with(RuntraceLayer::new(tracer.clone()));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let requests = 20;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, addr, tracer.clone()));
        let calls: Vec<_> = (0..requests)
            .map(|i| {
                let (trace, span) = remote(i);
                let headers = vec![("traceparent".to_string(), format!("00-{trace}-{span}-01"))];
                tokio::spawn(
                    async move { get(addr, &format!("/checkout?user={i}"), &headers).await },
                )
            })
            .collect();
        for call in calls {
            let (status, body) = call.await.unwrap().unwrap();
            assert_eq!(status, 200, "{body}");
        }
        // Unsampled by the caller: continued, not exported.
        let unsampled = vec![(
            "traceparent".to_string(),
            format!("00-{:032x}-{:016x}-00", 0xdead, 0xbeef),
        )];
        assert_eq!(
            get(addr, "/checkout?user=1", &unsampled).await.unwrap().0,
            200
        );
        // No traceparent: a new trace. An unknown path: a 404 in its span.
        assert_eq!(get(addr, "/nowhere", &[]).await.unwrap().0, 404);
        server.abort();
    });
    provider
        .shutdown_with_timeout(Duration::from_secs(5))
        .unwrap();
    let spans = receiver.spans();

    for i in 0..requests {
        let (trace, parent) = remote(i);
        let trace_spans: Vec<&OtlpSpan> =
            spans.iter().filter(|s| hex(&s.trace_id) == trace).collect();
        assert_eq!(trace_spans.len(), 5, "trace {trace}: {trace_spans:#?}");
        let find = |name: &str, kind: i32| {
            let found: Vec<_> = trace_spans
                .iter()
                .filter(|s| s.name == name && s.kind == kind)
                .collect();
            assert_eq!(found.len(), 1, "{name} ({kind}) in {trace_spans:#?}");
            *found[0]
        };
        let checkout = find("GET /checkout", SERVER);
        assert_eq!(hex(&checkout.parent_span_id), parent, "the remote parent");
        assert_eq!(
            attribute(checkout, "url.path"),
            Some(Any::StringValue("/checkout".into()))
        );
        assert_eq!(
            attribute(checkout, "url.query"),
            Some(Any::StringValue(format!("user={i}")))
        );
        assert_eq!(
            attribute(checkout, "http.response.status_code"),
            Some(Any::IntValue(200))
        );
        let cart = find("load_cart", INTERNAL);
        assert_eq!(cart.parent_span_id, checkout.span_id);
        assert_eq!(attribute(cart, "user"), Some(Any::IntValue(i as i64)));
        assert_eq!(cart.events.len(), 1);
        assert_eq!(cart.events[0].name, "cart loaded");
        let call = find("GET /price", CLIENT);
        assert_eq!(call.parent_span_id, checkout.span_id);
        let price = find("GET /price", SERVER);
        assert_eq!(price.parent_span_id, call.span_id, "the propagated context");
        let compute = find("price.compute", INTERNAL);
        assert_eq!(compute.parent_span_id, price.span_id);
        assert!(compute.end_time_unix_nano <= checkout.end_time_unix_nano);
    }
    assert!(!spans
        .iter()
        .any(|s| hex(&s.trace_id) == format!("{:032x}", 0xdead)));
    let missing: Vec<_> = spans.iter().filter(|s| s.name == "GET /nowhere").collect();
    assert_eq!(missing.len(), 1);
    assert!(missing[0].parent_span_id.is_empty());
    assert_eq!(
        attribute(missing[0], "http.response.status_code"),
        Some(Any::IntValue(404))
    );
    assert_eq!(spans.len(), requests as usize * 5 + 1);
}
