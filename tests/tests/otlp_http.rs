//! runtrace-otlp-http against an in-process receiver that decodes with the
//! independent `opentelemetry-proto` types: every field, gzip, retries and
//! Retry-After, permanent failures, deadlines, partial success, bad bodies, secrets
//! in Debug output, and environment parsing.

use opentelemetry_proto::tonic::common::v1::{any_value::Value as PV, AnyValue, KeyValue as PKV};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span as PSpan};
use runtrace::export::{Event, Instrumentation, InstrumentationScope, Link};
use runtrace::{
    ExportError, KeyValue, Resource, SpanContext, SpanData, SpanExporter, SpanId, SpanKind, Status,
    TraceFlags, TraceId, TraceState,
};
use runtrace_otlp_http::{Compression, OtlpHttpExporter, Protocol};
use runtrace_tests::receiver::{Receiver, Reply};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

fn deadline(secs: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(secs)
}

fn exporter_for(rx: &Receiver) -> OtlpHttpExporter {
    OtlpHttpExporter::builder()
        .with_endpoint(rx.endpoint())
        .build()
        .unwrap()
}

fn ctx(span: &str, flags: u8, remote: bool, ts: &str) -> SpanContext {
    SpanContext::new(
        TraceId::from_hex(TRACE).unwrap(),
        SpanId::from_hex(span).unwrap(),
        TraceFlags::new(flags),
        remote,
        TraceState::parse(ts).unwrap(),
    )
}

fn span(inst: &Instrumentation, id: &str, parent: Option<&str>, name: &'static str) -> SpanData {
    SpanData {
        span_context: ctx(id, 0x01, false, ""),
        parent_span_id: parent.map_or(SpanId::INVALID, |p| SpanId::from_hex(p).unwrap()),
        parent_is_remote: false,
        name: name.into(),
        kind: SpanKind::Internal,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_500_000_000,
        attributes: vec![],
        dropped_attributes_count: 0,
        details: None,
        instrumentation: inst.clone(),
    }
}

fn instrumentation() -> Instrumentation {
    let scope = InstrumentationScope {
        name: "runner".into(),
        version: Some("2.1.0".into()),
        schema_url: None,
        attributes: vec![KeyValue::new("scope.k", "v")],
    };
    let resource = Resource::new([
        KeyValue::new("service.name", "infer"),
        KeyValue::new("service.instance.id", 7),
    ]);
    Instrumentation::new(scope, Arc::new(resource))
}

/// A root (remote parent, sampled+random, `ot=th:` trace state) with two children:
/// one carrying every attribute type, events, links and an error status.
fn rich_batch() -> Vec<SpanData> {
    let inst = instrumentation();
    let mut root = span(
        &inst,
        "00000000000000a1",
        Some("00000000000000ff"),
        "request",
    );
    root.span_context = ctx("00000000000000a1", 0x03, false, "ot=th:c,vendor=x");
    root.parent_is_remote = true;
    root.kind = SpanKind::Server;
    root.details_mut().status = Status::Ok;

    let mut child = span(&inst, "00000000000000a2", Some("00000000000000a1"), "infer");
    child.kind = SpanKind::Client;
    child.attributes = vec![
        KeyValue::new("str", "s"),
        KeyValue::new("str0", ""),
        KeyValue::new("int", -42i64),
        KeyValue::new("int0", 0),
        KeyValue::new("bool0", false),
        KeyValue::new("f64", 2.5),
        KeyValue::new("f640", 0.0),
        KeyValue::new("arr_s", vec!["a", ""]),
        KeyValue::new("arr_i", vec![0i64, 9]),
        KeyValue::new("arr_b", vec![false, true]),
        KeyValue::new("arr_f", vec![0.0, 1.5]),
    ];
    child.dropped_attributes_count = 2;
    child.details_mut().events = vec![Event {
        name: "token".into(),
        time_unix_nano: 1_700_000_000_100_000_000,
        attributes: vec![KeyValue::new("n", 0)],
        dropped_attributes_count: 1,
    }];
    child.details_mut().dropped_events_count = 3;
    child.details_mut().links = vec![
        Link {
            span_context: SpanContext::new(
                TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
                SpanId::from_hex("b7ad6b7169203331").unwrap(),
                TraceFlags::new(0x01),
                true,
                TraceState::parse("congo=t61rcWkgMzE").unwrap(),
            ),
            attributes: vec![KeyValue::new("link.k", true)],
            dropped_attributes_count: 4,
        },
        Link {
            span_context: ctx("00000000000000a1", 0x00, false, ""),
            attributes: vec![],
            dropped_attributes_count: 0,
        },
    ];
    child.details_mut().dropped_links_count = 5;
    child.details_mut().status = Status::error("model crashed");

    let mut grandchild = span(
        &inst,
        "00000000000000a3",
        Some("00000000000000a2"),
        "kernel",
    );
    grandchild.kind = SpanKind::Consumer;
    vec![root, child, grandchild]
}

fn attr<'a>(attrs: &'a [PKV], key: &str) -> &'a PV {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
        .unwrap_or_else(|| panic!("attribute {key} missing or empty"))
}

fn array(v: &PV) -> Vec<Option<PV>> {
    match v {
        PV::ArrayValue(a) => a
            .values
            .iter()
            .map(|x: &AnyValue| x.value.clone())
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

fn check_rich_spans(spans: &[PSpan]) {
    let trace = hex(TRACE);
    assert_eq!(spans.len(), 3);
    let (root, child, grandchild) = (&spans[0], &spans[1], &spans[2]);
    for s in spans {
        assert_eq!(s.trace_id, trace);
        assert_eq!(s.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(s.end_time_unix_nano, 1_700_000_000_500_000_000);
    }
    assert_eq!(root.span_id, hex("00000000000000a1"));
    assert_eq!(root.parent_span_id, hex("00000000000000ff"));
    assert_eq!(root.trace_state, "ot=th:c,vendor=x");
    assert_eq!(
        root.flags, 0x303,
        "sampled+random, has-is-remote, remote parent"
    );
    assert_eq!(root.name, "request");
    assert_eq!(root.kind, 2);
    assert_eq!(root.status.as_ref().unwrap().code, StatusCode::Ok as i32);

    assert_eq!(child.parent_span_id, hex("00000000000000a1"));
    assert_eq!(child.flags, 0x101);
    assert_eq!(child.trace_state, "");
    assert_eq!(child.kind, 3);
    let a = &child.attributes;
    assert_eq!(a.len(), 11);
    assert_eq!(attr(a, "str"), &PV::StringValue("s".into()));
    assert_eq!(attr(a, "str0"), &PV::StringValue(String::new()));
    assert_eq!(attr(a, "int"), &PV::IntValue(-42));
    assert_eq!(attr(a, "int0"), &PV::IntValue(0));
    assert_eq!(attr(a, "bool0"), &PV::BoolValue(false));
    assert_eq!(attr(a, "f64"), &PV::DoubleValue(2.5));
    assert_eq!(attr(a, "f640"), &PV::DoubleValue(0.0));
    assert_eq!(
        array(attr(a, "arr_s")),
        vec![
            Some(PV::StringValue("a".into())),
            Some(PV::StringValue("".into()))
        ]
    );
    assert_eq!(
        array(attr(a, "arr_i")),
        vec![Some(PV::IntValue(0)), Some(PV::IntValue(9))]
    );
    assert_eq!(
        array(attr(a, "arr_b")),
        vec![Some(PV::BoolValue(false)), Some(PV::BoolValue(true))]
    );
    assert_eq!(
        array(attr(a, "arr_f")),
        vec![Some(PV::DoubleValue(0.0)), Some(PV::DoubleValue(1.5))]
    );
    assert_eq!(child.dropped_attributes_count, 2);
    assert_eq!(child.events.len(), 1);
    let ev = &child.events[0];
    assert_eq!(ev.name, "token");
    assert_eq!(ev.time_unix_nano, 1_700_000_000_100_000_000);
    assert_eq!(attr(&ev.attributes, "n"), &PV::IntValue(0));
    assert_eq!(ev.dropped_attributes_count, 1);
    assert_eq!(child.dropped_events_count, 3);
    assert_eq!(child.links.len(), 2);
    let l = &child.links[0];
    assert_eq!(l.trace_id, hex("0af7651916cd43dd8448eb211c80319c"));
    assert_eq!(l.span_id, hex("b7ad6b7169203331"));
    assert_eq!(l.trace_state, "congo=t61rcWkgMzE");
    assert_eq!(l.flags, 0x301);
    assert_eq!(attr(&l.attributes, "link.k"), &PV::BoolValue(true));
    assert_eq!(l.dropped_attributes_count, 4);
    assert_eq!(child.links[1].flags, 0x100);
    assert_eq!(child.links[1].trace_state, "");
    assert_eq!(child.dropped_links_count, 5);
    let st = child.status.as_ref().unwrap();
    assert_eq!(st.code, StatusCode::Error as i32);
    assert_eq!(st.message, "model crashed");

    assert_eq!(grandchild.kind, 5);
    assert!(grandchild
        .status
        .as_ref()
        .is_none_or(|s| s.code == StatusCode::Unset as i32));
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn check_envelope(
    req: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) {
    assert_eq!(req.resource_spans.len(), 1);
    let rs = &req.resource_spans[0];
    let res = rs.resource.as_ref().unwrap();
    assert_eq!(
        attr(&res.attributes, "service.name"),
        &PV::StringValue("infer".into())
    );
    assert_eq!(
        attr(&res.attributes, "service.instance.id"),
        &PV::IntValue(7)
    );
    assert_eq!(rs.scope_spans.len(), 1);
    let ss = &rs.scope_spans[0];
    let scope = ss.scope.as_ref().unwrap();
    assert_eq!(scope.name, "runner");
    assert_eq!(scope.version, "2.1.0");
    assert_eq!(
        attr(&scope.attributes, "scope.k"),
        &PV::StringValue("v".into())
    );
    check_rich_spans(&ss.spans);
}

#[test]
fn every_field_of_a_rich_span_set_reaches_the_receiver() {
    let rx = Receiver::start();
    let mut exp = exporter_for(&rx);
    exp.export(&rich_batch(), deadline(5.0)).unwrap();
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/traces");
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(r.header("content-encoding"), None);
    let ua = r.header("user-agent").unwrap();
    assert!(ua.starts_with("runtrace-otlp-http/"), "{ua}");
    check_envelope(&r.decode());
}

#[test]
fn gzip_compression_is_declared_and_decodes() {
    let rx = Receiver::start();
    let mut exp = OtlpHttpExporter::builder()
        .with_endpoint(rx.endpoint())
        .with_compression(Compression::Gzip)
        .build()
        .unwrap();
    exp.export(&rich_batch(), deadline(5.0)).unwrap();
    let r = &rx.requests()[0];
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(&r.raw_body[..2], &[0x1f, 0x8b]);
    check_envelope(&r.decode());
}

#[test]
fn json_protocol_delivers_every_field_plain_and_gzipped() {
    for compression in [Compression::None, Compression::Gzip] {
        let rx = Receiver::start();
        let mut exp = OtlpHttpExporter::builder()
            .with_endpoint(rx.endpoint())
            .with_protocol(Protocol::HttpJson)
            .with_compression(compression)
            .build()
            .unwrap();
        exp.export(&rich_batch(), deadline(5.0)).unwrap();
        let r = &rx.requests()[0];
        assert_eq!(r.path, "/v1/traces");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let gzip = compression == Compression::Gzip;
        assert_eq!(r.header("content-encoding"), gzip.then_some("gzip"));
        assert_eq!(r.raw_body.starts_with(&[0x1f, 0x8b]), gzip);
        assert_eq!(r.body.first(), Some(&b'{'), "{compression:?}");
        check_envelope(&r.decode());
    }
}

#[test]
fn json_protocol_from_env_reads_json_answers() {
    let rx = Receiver::with_script(vec![
        Reply::json_partial_success(2, "two spans too old"),
        Reply::json_rpc_status(400, 3, "span name missing"),
    ]);
    let endpoint = rx.endpoint();
    let mut exp = OtlpHttpExporter::from_lookup(env(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ]))
    .unwrap();
    let err = exp.export(&rich_batch(), deadline(5.0)).unwrap_err();
    assert!(
        matches!(&err, ExportError::PartialSuccess { rejected: 2, message } if message == "two spans too old"),
        "{err:?}"
    );
    let err = exp.export(&rich_batch(), deadline(5.0)).unwrap_err();
    assert!(format!("{err}").contains("span name missing"), "{err}");
    assert_eq!(rx.requests().len(), 2, "neither was retried");
    assert!(rx.requests().iter().all(|r| r.is_json()));
}

#[test]
fn connection_is_kept_alive_across_exports() {
    let rx = Receiver::start();
    let mut exp = exporter_for(&rx);
    for _ in 0..3 {
        exp.export(&rich_batch(), deadline(5.0)).unwrap();
    }
    assert_eq!(rx.requests().len(), 3);
    assert_eq!(rx.connections(), 1, "one keep-alive connection");
}

#[test]
fn retry_after_on_503_is_honoured_and_batch_delivered_once() {
    let rx = Receiver::with_script(vec![Reply::status(503).header("Retry-After", "1")]);
    let mut exp = exporter_for(&rx);
    let t0 = Instant::now();
    exp.export(&rich_batch(), deadline(10.0)).unwrap();
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2, "one 503, one 200");
    let gap = reqs[1].at - reqs[0].at;
    // A sleep is never shorter than asked (50 ms allow for the two arrival
    // stamps); the upper bound has 4 s of slack over the 1 s wait.
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(rx.requests().len(), 2, "no extra delivery");
}

#[test]
fn dropped_connection_is_retried() {
    let rx = Receiver::with_script(vec![Reply::Close]);
    let mut exp = OtlpHttpExporter::builder()
        .with_endpoint(rx.endpoint())
        .with_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    exp.export(&rich_batch(), deadline(5.0)).unwrap();
    assert_eq!(rx.requests().len(), 2);
}

#[test]
fn bad_request_is_not_retried_and_reports_the_rpc_message() {
    let rx = Receiver::with_script(vec![Reply::rpc_status(400, 3, "span name is empty")]);
    let mut exp = exporter_for(&rx);
    let err = exp.export(&rich_batch(), deadline(5.0)).unwrap_err();
    match &err {
        ExportError::Failed(m) => {
            assert!(m.contains("400") && m.contains("span name is empty"), "{m}")
        }
        other => panic!("unexpected {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn non_protobuf_error_body_is_excerpted() {
    let html = format!("<html>{}</html>", "x".repeat(5000));
    let rx = Receiver::with_script(vec![Reply::with_body(500, html.into_bytes())]);
    let mut exp = exporter_for(&rx);
    let ExportError::Failed(m) = exp.export(&rich_batch(), deadline(5.0)).unwrap_err() else {
        panic!("expected Failed");
    };
    assert!(m.contains("500") && m.contains("<html>"), "{m}");
    assert!(m.chars().count() < 300, "{} chars", m.chars().count());
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn silent_server_export_returns_by_its_deadline() {
    let rx = Receiver::with_script(vec![Reply::Hang, Reply::Hang, Reply::Hang]);
    let mut exp = exporter_for(&rx);
    let t0 = Instant::now();
    let err = exp.export(&rich_batch(), deadline(1.5)).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err, ExportError::Timeout);
    // The server never answers, so only the 1.5 s deadline ends the export:
    // not before it (100 ms for clock granularity), and 2.5 s after it at most
    // (slack for a loaded machine; waiting for the server would be forever).
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    assert!(took < Duration::from_millis(4000), "{took:?}");
}

#[test]
fn huge_retry_after_and_timeout_give_up_without_sleeping() {
    let rx = Receiver::with_script(vec![Reply::status(429).header("Retry-After", "99999999999")]);
    let mut exp = OtlpHttpExporter::builder()
        .with_endpoint(rx.endpoint())
        .with_timeout(Duration::MAX)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let ExportError::Failed(m) = exp.export(&rich_batch(), deadline(5.0)).unwrap_err() else {
        panic!("expected Failed");
    };
    assert!(m.contains("429"), "{m}");
    // Sleeping as asked would take 3000 years; 4 s is slack for the one request.
    assert!(t0.elapsed() < Duration::from_secs(4));
}

#[test]
fn configured_timeout_bounds_an_export_with_a_later_deadline() {
    let rx = Receiver::with_script(vec![Reply::Hang, Reply::Hang]);
    let mut exp = OtlpHttpExporter::builder()
        .with_endpoint(rx.endpoint())
        .with_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let t0 = Instant::now();
    assert_eq!(
        exp.export(&rich_batch(), deadline(30.0)),
        Err(ExportError::Timeout)
    );
    // The 500 ms timeout, not the 30 s deadline: 3.5 s of slack between them.
    assert!(t0.elapsed() < Duration::from_millis(4000));
}

#[test]
fn connection_refused_fails_fast() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut exp = OtlpHttpExporter::builder()
        .with_endpoint(format!("http://127.0.0.1:{port}/v1/traces"))
        .build()
        .unwrap();
    let t0 = Instant::now();
    let err = exp.export(&rich_batch(), deadline(0.3)).unwrap_err();
    // The 300 ms deadline plus 500 ms of slack: a retry that slept past the
    // deadline would show as up to 1 s of backoff more.
    assert!(
        t0.elapsed() < Duration::from_millis(800),
        "{:?}",
        t0.elapsed()
    );
    match err {
        ExportError::Failed(m) => assert!(m.contains("connection"), "{m}"),
        ExportError::Timeout => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn partial_success_is_reported_and_not_retried() {
    let rx = Receiver::with_script(vec![Reply::partial_success(2, "bad span")]);
    let mut exp = exporter_for(&rx);
    let err = exp.export(&rich_batch(), deadline(5.0)).unwrap_err();
    assert_eq!(
        err,
        ExportError::PartialSuccess {
            rejected: 2,
            message: "bad span".into()
        }
    );
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn partial_success_without_rejections_is_success() {
    let rx = Receiver::with_script(vec![Reply::partial_success(0, "deprecated field")]);
    let mut exp = exporter_for(&rx);
    exp.export(&rich_batch(), deadline(5.0)).unwrap();
}

/// Decision: a 2xx status means the batch was accepted, so an undecodable body is
/// success (with a warning), never a panic and never a retry.
#[test]
fn garbage_body_with_200_is_success_without_panic() {
    let garbage: Vec<Vec<u8>> = vec![
        vec![0xff; 64],
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
        b"<html>ok</html>".to_vec(),
        vec![0x0a, 0x02, 0x08],
    ];
    let rx = Receiver::with_script(
        garbage
            .into_iter()
            .map(|b| Reply::with_body(200, b))
            .collect(),
    );
    let mut exp = exporter_for(&rx);
    for _ in 0..4 {
        exp.export(&rich_batch(), deadline(5.0)).unwrap();
    }
    assert_eq!(rx.requests().len(), 4);
}

/// Spans received, over every request.
fn received_spans(rx: &Receiver) -> usize {
    rx.requests()
        .iter()
        .flat_map(|r| r.decode().resource_spans)
        .flat_map(|rs| rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

#[test]
fn spans_above_the_request_limit_alone_are_dropped_and_counted() {
    let rx = Receiver::start();
    let mut exp = OtlpHttpExporter::builder()
        .with_endpoint(rx.endpoint())
        .with_max_request_size(100)
        .build()
        .unwrap();
    let batch = rich_batch();
    let ExportError::TooLarge { dropped, message } = exp.export(&batch, deadline(5.0)).unwrap_err()
    else {
        panic!("expected TooLarge");
    };
    assert!(message.contains("100-byte request limit"), "{message}");
    assert!(dropped >= 1);
    assert_eq!(received_spans(&rx) as u64 + dropped, batch.len() as u64);
}

/// One span with a 1 MiB attribute no longer sinks the 511 others of its
/// batch: they are sent in requests under the limit, and the processor counts
/// the one as `dropped_too_large`.
#[test]
fn one_oversized_span_does_not_sink_its_batch() {
    let rx = Receiver::start();
    let exporter = OtlpHttpExporter::builder()
        .with_endpoint(rx.endpoint())
        .with_max_request_size(64 * 1024)
        .build()
        .unwrap();
    let provider = runtrace::TracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("t");
    for i in 0..512 {
        let mut span = tracer.span("request").start();
        span.set_attribute("i", i as i64);
        if i == 200 {
            span.set_attribute("payload", "x".repeat(1 << 20));
        }
    }
    provider.force_flush().unwrap();
    let stats = provider.stats();
    assert_eq!(stats.dropped_too_large, 1, "{stats:?}");
    assert_eq!(stats.spans_exported, 511, "{stats:?}");
    assert_eq!(stats.dropped_export_failed, 0, "{stats:?}");
    assert_eq!(received_spans(&rx), 511);
    assert!(rx.requests().iter().all(|r| r.body.len() <= 64 * 1024));
    provider.shutdown().unwrap();
}

/// A 2xx says the backend stored the batch, whatever its body.
#[test]
fn a_success_with_an_oversized_body_counts_as_delivered() {
    let huge = vec![0u8; runtrace_otlp_http::MAX_RESPONSE_SIZE as usize + 1];
    let rx = Receiver::with_script(vec![Reply::with_body(200, huge)]);
    let mut exp = exporter_for(&rx);
    exp.export(&rich_batch(), deadline(10.0)).unwrap();
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn export_after_shutdown_fails_with_shutdown() {
    let rx = Receiver::start();
    let mut exp = exporter_for(&rx);
    exp.shutdown(deadline(1.0)).unwrap();
    assert_eq!(
        exp.export(&rich_batch(), deadline(1.0)),
        Err(ExportError::Shutdown)
    );
    assert!(rx.requests().is_empty());
}

#[test]
fn header_values_never_appear_in_debug_output() {
    let rx = Receiver::start();
    let mut exp = OtlpHttpExporter::builder()
        .with_endpoint(rx.endpoint())
        .with_header("x-api-key", "top-secret-123")
        .build()
        .unwrap();
    let dbg = format!("{exp:?}");
    assert!(dbg.contains("x-api-key"), "{dbg}");
    assert!(!dbg.contains("top-secret-123"), "{dbg}");
    exp.export(&rich_batch(), deadline(5.0)).unwrap();
    assert_eq!(rx.requests()[0].header("x-api-key"), Some("top-secret-123"));
}

#[test]
fn provider_with_simple_exporter_delivers_spans() {
    let rx = Receiver::start();
    let provider = runtrace::TracerProvider::builder()
        .with_simple_exporter(exporter_for(&rx))
        .build();
    provider
        .tracer("provider-test")
        .span("handled")
        .kind(SpanKind::Server)
        .attribute("k", 1)
        .start()
        .end();
    let reqs = rx.wait_for(1, Duration::from_secs(5));
    provider.shutdown().ok();
    let req = reqs[0].decode();
    let ss = &req.resource_spans[0].scope_spans[0];
    assert_eq!(ss.scope.as_ref().unwrap().name, "provider-test");
    assert_eq!(ss.spans[0].name, "handled");
    assert_eq!(ss.spans[0].kind, 2);
    assert_eq!(ss.spans[0].flags & 0x100, 0x100);
}

// ---- environment ------------------------------------------------------------------

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

#[test]
fn env_endpoint_rules() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "http://localhost:4318/v1/traces"),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")],
            "http://collector:4318/v1/traces",
        ),
        (
            &[(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://collector:4318/mycollector/",
            )],
            "http://collector:4318/mycollector/v1/traces",
        ),
        (
            &[(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://collector:4318/mycollector",
            )],
            "http://collector:4318/mycollector/v1/traces",
        ),
        (
            &[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://collector:4318",
            )],
            "http://collector:4318/",
        ),
        (
            &[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://x.example.com/v1/traces",
            )],
            "https://x.example.com/v1/traces",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://traces:4318/custom",
                ),
            ],
            "http://traces:4318/custom",
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
            ],
            "http://general:4318/v1/traces",
        ),
    ];
    for (vars, want) in cases {
        let exp = OtlpHttpExporter::from_lookup(env(vars)).unwrap();
        assert_eq!(exp.endpoint(), *want, "{vars:?}");
    }
}

#[test]
fn env_invalid_endpoint_names_variable_and_value() {
    let err = OtlpHttpExporter::from_lookup(env(&[(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "collector:4318 nope",
    )]))
    .unwrap_err();
    let m = err.to_string();
    assert!(m.contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), "{m}");
    assert!(m.contains("collector:4318 nope"), "{m}");
    let err = OtlpHttpExporter::from_lookup(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://h/")]))
        .unwrap_err();
    assert!(err.to_string().contains("OTEL_EXPORTER_OTLP_ENDPOINT"));
}

#[test]
fn env_timeout_compression_and_headers() {
    let warnings = Arc::new(Mutex::new(Vec::<String>::new()));
    let w = warnings.clone();
    runtrace::diagnostics::set_handler(move |_, m| w.lock().unwrap().push(m.to_string()));

    let exp = OtlpHttpExporter::from_lookup(env(&[
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ]))
    .unwrap();
    assert_eq!(exp.timeout(), Some(Duration::from_millis(2500)));
    assert_eq!(exp.compression(), Compression::Gzip);

    let exp = OtlpHttpExporter::from_lookup(env(&[
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
    ]))
    .unwrap();
    assert_eq!(
        exp.timeout(),
        Some(Duration::from_secs(10)),
        "bad -> default"
    );
    assert_eq!(exp.compression(), Compression::None);

    let exp =
        OtlpHttpExporter::from_lookup(env(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")])).unwrap();
    assert_eq!(exp.compression(), Compression::None);

    let rx = Receiver::start();
    let endpoint = rx.endpoint();
    let mut exp = OtlpHttpExporter::from_lookup(env(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            " Authorization = Bearer%20abc ,x-tenant=a%2Cb, broken=%zzSECRETVALUE, onlyvalue ,x-over=general",
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-over=traces"),
    ]))
    .unwrap();
    let dbg = format!("{exp:?}");
    assert!(
        !dbg.contains("abc") && !dbg.contains("SECRETVALUE"),
        "{dbg}"
    );
    exp.export(&rich_batch(), deadline(5.0)).unwrap();
    runtrace::diagnostics::reset_handler();

    let r = &rx.requests()[0];
    assert_eq!(r.header("authorization"), Some("Bearer abc"));
    assert_eq!(r.header("x-tenant"), Some("a,b"));
    assert_eq!(r.header("x-over"), Some("traces"));
    assert_eq!(r.header("broken"), None);

    let warnings = warnings.lock().unwrap();
    let all = warnings.join("\n");
    assert!(all.contains("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"), "{all}");
    assert!(all.contains("zstd"), "{all}");
    assert!(
        all.contains("broken"),
        "bad pair warning names the key: {all}"
    );
    assert!(
        !all.contains("SECRETVALUE") && !all.contains("onlyvalue"),
        "{all}"
    );
    assert!(!all.contains("Bearer"), "{all}");
}

#[test]
fn env_ca_certificate_is_loaded_or_reported() {
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/data/test-ca.pem");
    let exp = OtlpHttpExporter::from_lookup(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", ca),
    ]));
    assert!(exp.is_ok(), "{exp:?}");

    let err = OtlpHttpExporter::from_lookup(env(&[(
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "/nonexistent/ca.pem",
    )]))
    .unwrap_err();
    let m = err.to_string();
    assert!(
        m.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && m.contains("/nonexistent/ca.pem"),
        "{m}"
    );

    let err = OtlpHttpExporter::builder()
        .with_ca_certificate_pem(b"not a pem".to_vec())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
}
