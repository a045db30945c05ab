//! Golden bytes from spec §5.4, and a cross-check of the direct encoder against
//! prost's encoding of the equivalent message structs.

use super::*;
use crate::proto;
use prost::Message;
use runtrace::export::{Event, Instrumentation, InstrumentationScope, Link, SpanDetails};
use runtrace::{SpanContext, SpanId, TraceFlags, TraceId};
use std::sync::Arc;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(crate) fn golden_span() -> SpanData {
    let scope = InstrumentationScope {
        name: "rt".into(),
        version: Some("1".into()),
        ..Default::default()
    };
    let resource = Arc::new(Resource::new([KeyValue::new("service.name", "demo")]));
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_hex("5b8efff798038103d269b633813fc60c").unwrap(),
            SpanId::from_hex("eee19b7ec3c1b174").unwrap(),
            TraceFlags::new(0x03),
            false,
            TraceState::EMPTY,
        ),
        parent_span_id: SpanId::from_hex("eee19b7ec3c1b173").unwrap(),
        parent_is_remote: true,
        name: "op".into(),
        kind: SpanKind::Server,
        start_time_unix_nano: 1_544_712_660_000_000_000,
        end_time_unix_nano: 1_544_712_661_000_000_000,
        attributes: vec![KeyValue::new("n", 0)],
        dropped_attributes_count: 0,
        details: Some(Box::new(SpanDetails {
            status: Status::error("boom"),
            ..SpanDetails::default()
        })),
        instrumentation: Instrumentation::new(scope, resource),
    }
}

const GOLDEN_REQUEST: &str = "
0a7e0a180a160a0c736572766963652e6e616d6512060a0464656d6f12620a070a02727412013112570a105b8efff798
038103d269b633813fc60c1208eee19b7ec3c1b1742208eee19b7ec3c1b1732a026f70300239004859e3faeb6f1541
0012f41efbeb6f154a070a016e120218007a081204626f6f6d1802850103030000";

#[test]
fn golden_request_is_byte_exact() {
    let mut buf = Vec::new();
    let n = encode_request(&[golden_span()], &mut buf);
    assert_eq!(n, 128);
    assert_eq!(buf, hex(GOLDEN_REQUEST));
}

#[test]
fn golden_resource_attributes() {
    // The core's arrays are homogeneous, so the golden's mixed array ["x", 1]
    // cannot be built from runtrace values: the first three attributes go through
    // the direct encoder, the whole golden round-trips through the prost types.
    let golden = hex(
        "0a100a016b120b18ffffffffffffffffff010a070a0162120210000a0e0a0164120921000000000000f83f\
         0a100a0161120b2a090a030a01780a021801",
    );
    let r = Resource::new([
        KeyValue::new("k", -1i64),
        KeyValue::new("b", false),
        KeyValue::new("d", 1.5),
    ]);
    let mut buf = Vec::new();
    put_resource(&mut buf, &r);
    assert_eq!(buf.len(), resource_len(&r));
    assert_eq!(buf, golden[..buf.len()]);

    let decoded = proto::Resource::decode(&golden[..]).unwrap();
    assert_eq!(decoded.attributes.len(), 4);
    assert_eq!(decoded.encode_to_vec(), golden);
}

#[test]
fn golden_partial_success_response() {
    let bytes = hex("0a050802120178");
    let resp = proto::ExportTraceServiceResponse::decode(&bytes[..]).unwrap();
    let ps = resp.partial_success.clone().unwrap();
    assert_eq!(ps.rejected_spans, 2);
    assert_eq!(ps.error_message, "x");
    assert_eq!(resp.encode_to_vec(), bytes);
}

#[test]
fn empty_batch_encodes_to_nothing() {
    let mut buf = Vec::new();
    assert_eq!(encode_request(&[], &mut buf), 0);
}

// ---- cross-check with prost-built messages -------------------------------------------

fn pv(v: &Value) -> proto::AnyValue {
    use proto::any_value::Value as V;
    let one = |v: V| proto::AnyValue { value: Some(v) };
    match v {
        Value::Bool(b) => one(V::BoolValue(*b)),
        Value::I64(i) => one(V::IntValue(*i)),
        Value::F64(f) => one(V::DoubleValue(*f)),
        Value::String(s) => one(V::StringValue(s.to_string())),
        Value::Array(a) => {
            let values = match a {
                Array::Bool(v) => v.iter().map(|b| pv(&Value::Bool(*b))).collect(),
                Array::I64(v) => v.iter().map(|b| pv(&Value::I64(*b))).collect(),
                Array::F64(v) => v.iter().map(|b| pv(&Value::F64(*b))).collect(),
                Array::String(v) => v.iter().map(|b| pv(&Value::String(b.clone()))).collect(),
            };
            one(V::ArrayValue(proto::ArrayValue { values }))
        }
    }
}

fn pkv(attrs: &[KeyValue]) -> Vec<proto::KeyValue> {
    attrs
        .iter()
        .map(|kv| proto::KeyValue {
            key: kv.key.to_string(),
            value: Some(pv(&kv.value)),
            key_strindex: 0,
        })
        .collect()
}

fn pspan(s: &SpanData) -> proto::Span {
    let sc = &s.span_context;
    proto::Span {
        trace_id: sc.trace_id().to_bytes().to_vec(),
        span_id: sc.span_id().to_bytes().to_vec(),
        trace_state: sc.trace_state().header(),
        parent_span_id: if s.parent_span_id.is_valid() {
            s.parent_span_id.to_bytes().to_vec()
        } else {
            vec![]
        },
        flags: span_flags(s),
        name: s.name.to_string(),
        kind: kind_number(s.kind) as i32,
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        attributes: pkv(&s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events()
            .iter()
            .map(|e| proto::span::Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name.to_string(),
                attributes: pkv(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count(),
        links: s
            .links()
            .iter()
            .map(|l| proto::span::Link {
                trace_id: l.span_context.trace_id().to_bytes().to_vec(),
                span_id: l.span_context.span_id().to_bytes().to_vec(),
                trace_state: l.span_context.trace_state().header(),
                attributes: pkv(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: link_flags(l),
            })
            .collect(),
        dropped_links_count: s.dropped_links_count(),
        status: match s.status() {
            Status::Unset => None,
            Status::Ok => Some(proto::Status {
                message: String::new(),
                code: 1,
            }),
            Status::Error { description } => Some(proto::Status {
                message: description.to_string(),
                code: 2,
            }),
        },
    }
}

/// Every shape the encoders handle: two resources (one of them in two
/// allocations), three scopes, attributes of every value type, events, links,
/// statuses, trace states, dropped counts.
pub(crate) fn rich_batch() -> Vec<SpanData> {
    let base = golden_span();
    let res_a = base.instrumentation.resource().clone();
    // Equal content, different allocation: must merge into the same ResourceSpans.
    let res_a2 = Arc::new((*res_a).clone());
    let res_b = Arc::new(Resource::new([KeyValue::new("service.name", "other")]));
    let scope_x = InstrumentationScope {
        name: "x".into(),
        version: None,
        schema_url: Some("https://opentelemetry.io/schemas/1.44.0".into()),
        attributes: vec![KeyValue::new("scope.attr", true)],
    };
    let inst_x = Instrumentation::new(scope_x.clone(), res_a.clone());
    let inst_x2 = Instrumentation::new(scope_x, res_a2);
    let inst_b = Instrumentation::new(InstrumentationScope::new("b"), res_b);

    let mut rich = base.clone();
    rich.instrumentation = inst_x.clone();
    rich.parent_span_id = SpanId::INVALID;
    rich.parent_is_remote = false;
    rich.span_context = SpanContext::new(
        rich.span_context.trace_id(),
        SpanId::from_hex("0102030405060708").unwrap(),
        TraceFlags::new(1),
        false,
        TraceState::parse("ot=th:c;rv:01020304050607,vendor=v").unwrap(),
    );
    rich.kind = SpanKind::Consumer;
    rich.attributes = vec![
        KeyValue::new("s", ""),
        KeyValue::new("b", false),
        KeyValue::new("i", i64::MIN),
        KeyValue::new("f", 0.0),
        KeyValue::new("as", vec!["a", ""]),
        KeyValue::new("ab", vec![true, false]),
        KeyValue::new("ai", vec![0i64, -5, 300]),
        KeyValue::new("af", vec![0.5, -0.0]),
        KeyValue::new("empty", Vec::<i64>::new()),
    ];
    rich.dropped_attributes_count = 3;
    rich.details_mut().events = vec![
        Event {
            name: "e1".into(),
            time_unix_nano: 5,
            attributes: vec![KeyValue::new("k", "v")],
            dropped_attributes_count: 1,
        },
        Event {
            name: "".into(),
            time_unix_nano: 0,
            attributes: vec![],
            dropped_attributes_count: 0,
        },
    ];
    rich.details_mut().dropped_events_count = 300;
    rich.details_mut().links = vec![Link {
        span_context: SpanContext::new(
            TraceId::from_hex("00000000000000000000000000000001").unwrap(),
            SpanId::from_hex("0000000000000002").unwrap(),
            TraceFlags::new(1),
            true,
            TraceState::parse("a=b").unwrap(),
        ),
        attributes: vec![KeyValue::new("l", 1)],
        dropped_attributes_count: 2,
    }];
    rich.details_mut().dropped_links_count = 1;
    rich.details_mut().status = Status::Ok;

    let mut other = base.clone();
    other.instrumentation = inst_b;
    other.details_mut().status = Status::Unset;
    let mut again = base.clone();
    again.instrumentation = inst_x2;
    again.details_mut().status = Status::error("");
    vec![base, rich, other, again]
}

fn to_message(batch: &[SpanData]) -> proto::ExportTraceServiceRequest {
    let mut req = proto::ExportTraceServiceRequest::default();
    for g in group(batch) {
        let resource = g.instrumentation.resource();
        req.resource_spans.push(proto::ResourceSpans {
            resource: Some(proto::Resource {
                attributes: pkv(resource.attributes()),
                ..Default::default()
            }),
            scope_spans: g
                .scopes
                .iter()
                .map(|sg| {
                    let scope = sg.instrumentation.scope();
                    proto::ScopeSpans {
                        scope: Some(proto::InstrumentationScope {
                            name: scope.name.to_string(),
                            version: scope.version.as_deref().unwrap_or("").to_string(),
                            attributes: pkv(&scope.attributes),
                            dropped_attributes_count: 0,
                        }),
                        spans: sg.spans.iter().map(|&i| pspan(&batch[i])).collect(),
                        schema_url: scope.schema_url.as_deref().unwrap_or("").to_string(),
                    }
                })
                .collect(),
            schema_url: String::new(),
        });
    }
    req
}

#[test]
fn direct_encoding_matches_prost_encoding() {
    let batch = rich_batch();
    let mut buf = Vec::new();
    encode_request(&batch, &mut buf);
    let expected = to_message(&batch);
    assert_eq!(expected.resource_spans.len(), 2, "grouped by resource");
    assert_eq!(expected.resource_spans[0].scope_spans.len(), 2, "rt and x");
    assert_eq!(expected.resource_spans[0].scope_spans[1].spans.len(), 2);
    assert_eq!(buf, expected.encode_to_vec());
    let decoded = proto::ExportTraceServiceRequest::decode(&buf[..]).unwrap();
    assert_eq!(decoded, expected);
}

#[test]
fn lengths_of_every_width_match_prost_encoding() {
    // Spans, events and links whose lengths take one, two and three bytes,
    // so the room left for each length is too much, enough and too little;
    // in a batch of one scope (nothing before the spans moves) and in the
    // rich batch's groups.
    let long = |n: usize| "x".repeat(n);
    let mut small = golden_span();
    small.attributes.clear();
    let mut big = golden_span();
    big.attributes.push(KeyValue::new("big", long(20_000)));
    let mut with_details = golden_span();
    with_details.details_mut().events = vec![Event {
        name: long(200).into(),
        time_unix_nano: 7,
        attributes: vec![KeyValue::new("k", long(20_000))],
        dropped_attributes_count: 0,
    }];
    with_details.details_mut().links = vec![Link {
        span_context: small.span_context.clone(),
        attributes: vec![KeyValue::new("l", long(300))],
        dropped_attributes_count: 0,
    }];
    let one_scope = vec![small, big, with_details];
    let mut mixed = rich_batch();
    mixed.extend(one_scope.iter().cloned());
    mixed.extend(rich_batch());
    for batch in [one_scope, mixed] {
        let expected = to_message(&batch).encode_to_vec();
        let mut buf = vec![0xAA; 3];
        let n = encode_request(&batch, &mut buf);
        assert_eq!(n, expected.len());
        assert_eq!(buf[..3], [0xAA; 3], "what the buffer held stays");
        assert_eq!(buf[3..], expected[..]);
        let mut unaligned = vec![0xAA; 3];
        let at = encode_request_unaligned(&batch, &mut unaligned);
        assert!((3..=3 + 18).contains(&at), "{at}");
        assert_eq!(unaligned[at..], expected[..]);
    }
}
