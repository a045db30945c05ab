//! The OTLP/JSON encoding (protocol `http/json`) of an `ExportTraceServiceRequest`,
//! written straight from `&[SpanData]` like the protobuf encoder.
//!
//! It is the proto3 JSON mapping with OTLP's exceptions: lowerCamelCase keys,
//! trace and span ids as lowercase hex (not base64), enums as integers, and
//! 64-bit integers (the `fixed64` times, `int64` attribute values) as decimal
//! strings. Fields equal to their default are left out where the protobuf
//! encoder leaves them out, so both encodings decode to the same message; an
//! `AnyValue` always holds its one field, even a zero. Doubles JSON cannot
//! write are the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.

use crate::encode::{group, kind_number, link_flags, span_flags};
use runtrace::export::{Event, InstrumentationScope, Link};
use runtrace::{Array, KeyValue, Resource, SpanData, Status, TraceState, Value};
use std::io::Write;

/// A JSON object being written: puts the commas between its members.
struct Obj<'b> {
    buf: &'b mut Vec<u8>,
    empty: bool,
}

impl<'b> Obj<'b> {
    fn open(buf: &'b mut Vec<u8>) -> Self {
        buf.push(b'{');
        Obj { buf, empty: true }
    }

    /// Writes `"key":` (after a comma if needed) and returns the buffer for the value.
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
        self.buf
    }

    fn str(&mut self, key: &str, s: &str) {
        put_string(self.key(key), s);
    }

    /// A string member, left out when empty (the proto3 default).
    fn opt_str(&mut self, key: &str, s: &str) {
        if !s.is_empty() {
            self.str(key, s);
        }
    }

    /// A `uint32`/`fixed32`/enum member as a number, left out when 0.
    fn opt_u32(&mut self, key: &str, v: u32) {
        if v != 0 {
            let _ = write!(self.key(key), "{v}");
        }
    }

    /// A `fixed64` member as a decimal string, left out when 0.
    fn opt_u64_string(&mut self, key: &str, v: u64) {
        if v != 0 {
            let _ = write!(self.key(key), "\"{v}\"");
        }
    }

    fn hex(&mut self, key: &str, bytes: &[u8]) {
        let buf = self.key(key);
        buf.push(b'"');
        for b in bytes {
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0x0f)]);
        }
        buf.push(b'"');
    }

    fn trace_state(&mut self, key: &str, ts: &TraceState) {
        if !ts.is_empty() {
            self.str(key, &ts.header());
        }
    }

    /// A repeated `KeyValue` member, left out when empty.
    fn attrs(&mut self, key: &str, attrs: &[KeyValue]) {
        if !attrs.is_empty() {
            put_array(self.key(key), attrs, put_kv);
        }
    }

    fn close(self) {
        self.buf.push(b'}');
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A JSON string: `"`, `\` and control characters escaped, the rest as is.
fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            let _ = write!(buf, "\\u{b:04x}");
        } else {
            buf.extend_from_slice(escape);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// `[a,b,...]`, each element written by `put`.
fn put_array<T>(buf: &mut Vec<u8>, items: &[T], put: impl Fn(&mut Vec<u8>, &T)) {
    buf.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        put(buf, item);
    }
    buf.push(b']');
}

fn put_f64(buf: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        buf.extend_from_slice(b"\"NaN\"");
    } else if f.is_infinite() {
        let s: &[u8] = if f > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        };
        buf.extend_from_slice(s);
    } else {
        // `{:?}` is the shortest text that reads back to the same f64, and valid JSON.
        let _ = write!(buf, "{f:?}");
    }
}

/// `{"stringValue":..}` and the like: the oneof field is always written.
fn put_any(buf: &mut Vec<u8>, v: &Value) {
    let mut o = Obj::open(buf);
    match v {
        Value::String(s) => o.str("stringValue", s),
        Value::Bool(b) => o
            .key("boolValue")
            .extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::I64(i) => {
            let _ = write!(o.key("intValue"), "\"{i}\"");
        }
        Value::F64(f) => put_f64(o.key("doubleValue"), *f),
        Value::Array(a) => {
            // `values` is written even when empty: some decoders require it.
            let mut arr = Obj::open(o.key("arrayValue"));
            let buf = arr.key("values");
            match a {
                Array::Bool(v) => put_array(buf, v, |b, x| put_any(b, &Value::Bool(*x))),
                Array::I64(v) => put_array(buf, v, |b, x| put_any(b, &Value::I64(*x))),
                Array::F64(v) => put_array(buf, v, |b, x| put_any(b, &Value::F64(*x))),
                Array::String(v) => put_array(buf, v, |b, s| {
                    let mut o = Obj::open(b);
                    o.str("stringValue", s);
                    o.close();
                }),
            }
            arr.close();
        }
    }
    o.close();
}

fn put_kv(buf: &mut Vec<u8>, kv: &KeyValue) {
    let mut o = Obj::open(buf);
    o.str("key", &kv.key);
    put_any(o.key("value"), &kv.value);
    o.close();
}

fn put_event(buf: &mut Vec<u8>, e: &Event) {
    let mut o = Obj::open(buf);
    o.opt_u64_string("timeUnixNano", e.time_unix_nano);
    o.opt_str("name", &e.name);
    o.attrs("attributes", &e.attributes);
    o.opt_u32("droppedAttributesCount", e.dropped_attributes_count);
    o.close();
}

fn put_link(buf: &mut Vec<u8>, l: &Link) {
    let sc = &l.span_context;
    let mut o = Obj::open(buf);
    o.hex("traceId", sc.trace_id().as_bytes());
    o.hex("spanId", sc.span_id().as_bytes());
    o.trace_state("traceState", sc.trace_state());
    o.attrs("attributes", &l.attributes);
    o.opt_u32("droppedAttributesCount", l.dropped_attributes_count);
    o.opt_u32("flags", link_flags(l));
    o.close();
}

fn put_status(buf: &mut Vec<u8>, s: &Status) {
    let mut o = Obj::open(buf);
    match s {
        Status::Unset => {}
        Status::Ok => o.opt_u32("code", 1),
        Status::Error { description } => {
            o.opt_str("message", description);
            o.opt_u32("code", 2);
        }
    }
    o.close();
}

fn put_span(buf: &mut Vec<u8>, s: &SpanData) {
    let sc = &s.span_context;
    let mut o = Obj::open(buf);
    o.hex("traceId", sc.trace_id().as_bytes());
    o.hex("spanId", sc.span_id().as_bytes());
    o.trace_state("traceState", sc.trace_state());
    if s.parent_span_id.is_valid() {
        o.hex("parentSpanId", s.parent_span_id.as_bytes());
    }
    o.opt_u32("flags", span_flags(s));
    o.opt_str("name", &s.name);
    o.opt_u32("kind", u32::from(kind_number(s.kind)));
    o.opt_u64_string("startTimeUnixNano", s.start_time_unix_nano);
    o.opt_u64_string("endTimeUnixNano", s.end_time_unix_nano);
    o.attrs("attributes", &s.attributes);
    o.opt_u32("droppedAttributesCount", s.dropped_attributes_count);
    if !s.events().is_empty() {
        put_array(o.key("events"), s.events(), put_event);
    }
    o.opt_u32("droppedEventsCount", s.dropped_events_count());
    if !s.links().is_empty() {
        put_array(o.key("links"), s.links(), put_link);
    }
    o.opt_u32("droppedLinksCount", s.dropped_links_count());
    if *s.status() != Status::Unset {
        put_status(o.key("status"), s.status());
    }
    o.close();
}

fn put_resource(buf: &mut Vec<u8>, r: &Resource) {
    let mut o = Obj::open(buf);
    o.attrs("attributes", r.attributes());
    o.close();
}

fn put_scope(buf: &mut Vec<u8>, s: &InstrumentationScope) {
    let mut o = Obj::open(buf);
    o.opt_str("name", &s.name);
    if let Some(v) = &s.version {
        o.opt_str("version", v);
    }
    o.attrs("attributes", &s.attributes);
    o.close();
}

/// Appends the OTLP/JSON encoding of an `ExportTraceServiceRequest` holding
/// `batch` to `buf`, and returns the number of bytes written.
///
/// Spans are grouped by resource and then by instrumentation scope, as in
/// [`encode_request`](crate::encode_request); an empty batch is `{}`.
pub fn encode_request_json(batch: &[SpanData], buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    let groups = group(batch);
    let mut request = Obj::open(buf);
    if !groups.is_empty() {
        let buf = request.key("resourceSpans");
        put_array(buf, &groups, |buf, g| {
            let mut rs = Obj::open(buf);
            put_resource(rs.key("resource"), g.instrumentation.resource());
            put_array(rs.key("scopeSpans"), &g.scopes, |buf, sg| {
                let scope = sg.instrumentation.scope();
                let mut ss = Obj::open(buf);
                put_scope(ss.key("scope"), scope);
                put_array(ss.key("spans"), &sg.spans, |buf, &i| {
                    put_span(buf, &batch[i])
                });
                if let Some(url) = &scope.schema_url {
                    ss.opt_str("schemaUrl", url);
                }
                ss.close();
            });
            rs.close();
        });
    }
    request.close();
    buf.len() - start
}

#[cfg(test)]
#[path = "encode_json_tests.rs"]
mod tests;
