//! Encoding 512 spans into an OTLP `ExportTraceServiceRequest`: runtrace's direct
//! encoder (plain and gzipped) against building the opentelemetry-proto prost
//! structs from the same `SpanData` and calling `encode_to_vec`.
//!
//! `cargo bench -p runtrace-benches --bench encode -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope as PScope, KeyValue as PKV,
};
use opentelemetry_proto::tonic::resource::v1::Resource as PResource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as PSpan, Status as PStatus,
};
use prost::Message;
use runtrace::export::{Instrumentation, InstrumentationScope};
use runtrace::{
    Array, KeyValue, Resource, SpanContext, SpanData, SpanId, SpanKind, Status, TraceFlags,
    TraceId, TraceState, Value,
};
use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;

const SPANS: usize = 512;

fn batch() -> Vec<SpanData> {
    let inst = Instrumentation::new(
        InstrumentationScope {
            name: "bench".into(),
            version: Some("1.0.0".into()),
            ..Default::default()
        },
        Arc::new(Resource::default()),
    );
    (0..SPANS as u64)
        .map(|i| SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes(((i / 8 + 1) as u128 * 0x9e37_79b9_7f4a_7c15).to_be_bytes()),
                SpanId::from_bytes((i + 1).wrapping_mul(0x2545_f491_4f6c_dd1d).to_be_bytes()),
                TraceFlags::new(0x03),
                false,
                TraceState::EMPTY,
            ),
            parent_span_id: if i % 8 == 0 {
                SpanId::INVALID
            } else {
                SpanId::from_bytes(i.wrapping_mul(0x2545_f491_4f6c_dd1d).to_be_bytes())
            },
            parent_is_remote: false,
            name: "infer.forward".into(),
            kind: SpanKind::Internal,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i * 1000,
            end_time_unix_nano: 1_700_000_000_000_500_000 + i * 1000,
            attributes: vec![
                KeyValue::new("model.name", "llama-3-8b"),
                KeyValue::new("http.route", "/v1/completions"),
                KeyValue::new("batch.size", i as i64),
                KeyValue::new("cache.hit", i % 2 == 0),
            ],
            dropped_attributes_count: 0,
            details: None,
            instrumentation: inst.clone(),
        })
        .collect()
}

fn pv(v: &Value) -> AnyValue {
    use any_value::Value as V;
    AnyValue {
        value: Some(match v {
            Value::Bool(b) => V::BoolValue(*b),
            Value::I64(i) => V::IntValue(*i),
            Value::F64(f) => V::DoubleValue(*f),
            Value::String(s) => V::StringValue(s.to_string()),
            Value::Array(a) => V::ArrayValue(ArrayValue {
                values: match a {
                    Array::Bool(v) => v.iter().map(|x| pv(&Value::Bool(*x))).collect(),
                    Array::I64(v) => v.iter().map(|x| pv(&Value::I64(*x))).collect(),
                    Array::F64(v) => v.iter().map(|x| pv(&Value::F64(*x))).collect(),
                    Array::String(v) => v.iter().map(|x| pv(&Value::String(x.clone()))).collect(),
                },
            }),
        }),
    }
}

fn pkv(attrs: &[KeyValue]) -> Vec<PKV> {
    attrs
        .iter()
        .map(|kv| PKV {
            key: kv.key.to_string(),
            value: Some(pv(&kv.value)),
            key_strindex: 0,
        })
        .collect()
}

/// What an SDK that maps into generated structs does: one owned message tree,
/// then `encode_to_vec` (single resource and scope, as in this batch).
fn via_opentelemetry_proto(batch: &[SpanData]) -> Vec<u8> {
    let first = &batch[0].instrumentation;
    let spans = batch
        .iter()
        .map(|s| {
            let sc = &s.span_context;
            PSpan {
                trace_id: sc.trace_id().to_bytes().to_vec(),
                span_id: sc.span_id().to_bytes().to_vec(),
                trace_state: sc.trace_state().header(),
                parent_span_id: if s.parent_span_id.is_valid() {
                    s.parent_span_id.to_bytes().to_vec()
                } else {
                    Vec::new()
                },
                flags: sc.trace_flags().bits() as u32
                    | 0x100
                    | if s.parent_is_remote { 0x200 } else { 0 },
                name: s.name.to_string(),
                kind: 1,
                start_time_unix_nano: s.start_time_unix_nano,
                end_time_unix_nano: s.end_time_unix_nano,
                attributes: pkv(&s.attributes),
                dropped_attributes_count: s.dropped_attributes_count,
                events: vec![],
                dropped_events_count: 0,
                links: vec![],
                dropped_links_count: 0,
                status: match s.status() {
                    Status::Unset => None,
                    Status::Ok => Some(PStatus {
                        message: String::new(),
                        code: 1,
                    }),
                    Status::Error { description } => Some(PStatus {
                        message: description.to_string(),
                        code: 2,
                    }),
                },
            }
        })
        .collect();
    let scope = first.scope();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(PResource {
                attributes: pkv(first.resource().attributes()),
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(PScope {
                    name: scope.name.to_string(),
                    version: scope.version.as_deref().unwrap_or("").to_string(),
                    attributes: vec![],
                    dropped_attributes_count: 0,
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

fn encode(c: &mut Criterion) {
    let batch = batch();
    // Same bytes both ways (a sanity check, not a benchmark).
    let mut direct = Vec::new();
    runtrace_otlp_http::encode_request(&batch, &mut direct);
    assert_eq!(direct, via_opentelemetry_proto(&batch));

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(SPANS as u64));
    let mut buf = Vec::new();
    g.bench_function("runtrace/512_spans", |b| {
        b.iter(|| {
            buf.clear();
            runtrace_otlp_http::encode_request(black_box(&batch), &mut buf);
            black_box(buf.len())
        })
    });
    let mut gz = Vec::new();
    g.bench_function("runtrace_gzip/512_spans", |b| {
        b.iter(|| {
            buf.clear();
            runtrace_otlp_http::encode_request(black_box(&batch), &mut buf);
            gz.clear();
            let mut enc =
                flate2::write::GzEncoder::new(std::mem::take(&mut gz), flate2::Compression::fast());
            enc.write_all(&buf).unwrap();
            gz = enc.finish().unwrap();
            black_box(gz.len())
        })
    });
    g.bench_function("opentelemetry_proto/512_spans", |b| {
        b.iter(|| black_box(via_opentelemetry_proto(black_box(&batch))).len())
    });
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
