//! The JSON encoding against an independent decoder: opentelemetry-proto's
//! serde types must read it as the same message its prost types read from the
//! protobuf encoding of the same batch.

use super::*;
use crate::encode::encode_request;
use crate::encode::tests::{golden_span, rich_batch};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use runtrace::{SpanContext, SpanId, TraceFlags, TraceId};

/// The rich batch, plus a span whose strings need escaping and whose numbers
/// sit at the edges of their types.
fn json_batch() -> Vec<SpanData> {
    let mut batch = rich_batch();
    let mut edgy = golden_span();
    edgy.span_context = SpanContext::new(
        TraceId::from_hex("ffffffffffffffffffffffffffffffff").unwrap(),
        SpanId::from_hex("ffffffffffffffff").unwrap(),
        TraceFlags::new(0x02),
        false,
        TraceState::parse("k=\"quoted\" \\\\ value").unwrap(),
    );
    edgy.name = "quote \" backslash \\ newline \n tab \t bell \u{7} nul \u{0} é 漢 🚀".into();
    edgy.start_time_unix_nano = 1;
    edgy.end_time_unix_nano = u64::MAX;
    edgy.attributes = vec![
        KeyValue::new("max", i64::MAX),
        KeyValue::new("min", i64::MIN),
        KeyValue::new("tiny", f64::MIN_POSITIVE),
        KeyValue::new("huge", f64::MAX),
        KeyValue::new("third", 1.0 / 3.0),
        KeyValue::new("neg", -1.5e-300),
        KeyValue::new("key \"with\" quotes", "line\r\nbreak"),
    ];
    edgy.details_mut().status = Status::error("failed: \"x\"\n");
    batch.push(edgy);
    batch
}

fn json_of(batch: &[SpanData]) -> Vec<u8> {
    let mut buf = Vec::new();
    let n = encode_request_json(batch, &mut buf);
    assert_eq!(n, buf.len());
    buf
}

#[test]
fn json_decodes_to_the_same_message_as_protobuf() {
    let batch = json_batch();
    let mut pb = Vec::new();
    encode_request(&batch, &mut pb);
    let from_protobuf = ExportTraceServiceRequest::decode(&pb[..]).unwrap();
    let json = json_of(&batch);
    let from_json: ExportTraceServiceRequest = serde_json::from_slice(&json)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&json)));

    // Not two empty messages: the shapes the batch was built with are there.
    assert_eq!(from_json.resource_spans.len(), 2);
    let spans: Vec<_> = from_json
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    assert_eq!(spans.len(), batch.len());
    let rich = spans
        .iter()
        .find(|s| s.kind == 5)
        .expect("the consumer span");
    assert_eq!(rich.attributes.len(), 9);
    assert_eq!((rich.events.len(), rich.links.len()), (2, 1));
    assert_eq!(rich.dropped_events_count, 300);
    assert_eq!(rich.links[0].flags, 0x301);
    assert_eq!(rich.trace_state, "ot=th:c;rv:01020304050607,vendor=v");
    let edgy = spans
        .iter()
        .find(|s| s.end_time_unix_nano == u64::MAX)
        .unwrap();
    assert_eq!(edgy.name, &*batch.last().unwrap().name);
    assert_eq!(edgy.trace_id, vec![0xff; 16]);

    // Field for field: resources, scopes, ids, times, attributes of every value
    // type, events, links, status, kind, flags, dropped counts.
    for (j, p) in from_json
        .resource_spans
        .iter()
        .zip(&from_protobuf.resource_spans)
    {
        assert_eq!(j.resource, p.resource);
        for (js, ps) in j.scope_spans.iter().zip(&p.scope_spans) {
            assert_eq!(js.scope, ps.scope);
            assert_eq!(js.schema_url, ps.schema_url);
            for (a, b) in js.spans.iter().zip(&ps.spans) {
                assert_eq!(a, b, "span {:?}", b.name);
            }
        }
    }
    assert_eq!(from_json, from_protobuf);
}

#[test]
fn json_follows_the_otlp_rules_for_ids_enums_and_64_bit_integers() {
    let json = String::from_utf8(json_of(&[golden_span()])).unwrap();
    for expected in [
        r#""traceId":"5b8efff798038103d269b633813fc60c""#,
        r#""spanId":"eee19b7ec3c1b174""#,
        r#""parentSpanId":"eee19b7ec3c1b173""#,
        r#""kind":2"#,
        r#""flags":771"#,
        r#""startTimeUnixNano":"1544712660000000000""#,
        r#""endTimeUnixNano":"1544712661000000000""#,
        r#"{"key":"n","value":{"intValue":"0"}}"#,
        r#""status":{"message":"boom","code":2}"#,
        r#""resource":{"attributes":[{"key":"service.name","value":{"stringValue":"demo"}}]}"#,
        r#""scope":{"name":"rt","version":"1"}"#,
    ] {
        assert!(json.contains(expected), "{expected} missing from {json}");
    }
    assert!(!json.contains('_'), "snake_case key in {json}");
}

#[test]
fn doubles_json_cannot_hold_are_strings() {
    let mut span = golden_span();
    span.attributes = vec![
        KeyValue::new("nan", f64::NAN),
        KeyValue::new("inf", f64::INFINITY),
        KeyValue::new("ninf", f64::NEG_INFINITY),
        KeyValue::new("arr", vec![f64::NAN, 1.5]),
    ];
    let json = json_of(&[span]);
    let v: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
    let attrs = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"];
    assert_eq!(attrs[0]["value"]["doubleValue"], "NaN");
    assert_eq!(attrs[1]["value"]["doubleValue"], "Infinity");
    assert_eq!(attrs[2]["value"]["doubleValue"], "-Infinity");
    assert_eq!(
        attrs[3]["value"]["arrayValue"]["values"][1]["doubleValue"],
        1.5
    );
}

#[test]
fn empty_batch_is_an_empty_object() {
    assert_eq!(json_of(&[]), b"{}");
}
