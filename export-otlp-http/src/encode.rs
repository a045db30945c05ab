//! A direct protobuf encoder from `&[SpanData]` to an `ExportTraceServiceRequest`.
//!
//! Two passes and no intermediate message structs: first the spans are grouped
//! (one `ResourceSpans` per resource, one `ScopeSpans` per scope inside it) and
//! every span's encoded length is computed once; then the bytes are written into a
//! buffer reserved to the exact size. Fields are written in ascending field number,
//! as protoc does, so the output is byte-identical to a prost/protoc encoding of the
//! same message (the golden tests below check this). Scalars equal to their default
//! are omitted, except inside `AnyValue`'s oneof, where a zero is still written.

use prost::encoding::encoded_len_varint;
use runtrace::export::{Event, Instrumentation, InstrumentationScope, Link};
use runtrace::{Array, KeyValue, Resource, SpanData, SpanKind, Status, TraceState, Value};

/// Tag byte for field numbers below 16.
const fn tag(field: u8, wire_type: u8) -> u8 {
    (field << 3) | wire_type
}
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// Span field 16 (`flags`, fixed32): two-byte key.
const SPAN_FLAGS_KEY: [u8; 2] = [0x85, 0x01];
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// Length of a length-delimited field (one-byte key) holding `n` bytes.
#[inline]
fn ld(n: usize) -> usize {
    1 + encoded_len_varint(n as u64) + n
}

/// Appends `v` as a protobuf varint (the bytes prost's `encode_varint`
/// writes), the one-byte case first: most lengths and many integers. Inline,
/// unlike prost's, which writes through `BufMut` a byte at a time.
#[inline(always)]
fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    if v < 0x80 {
        buf.push(v as u8);
        return;
    }
    let mut bytes = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        bytes[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    bytes[n] = v as u8;
    buf.extend_from_slice(&bytes[..=n]);
}

#[inline]
fn put_ld_header(buf: &mut Vec<u8>, key: u8, n: usize) {
    buf.push(key);
    put_varint(buf, n as u64);
}

#[inline]
fn put_str(buf: &mut Vec<u8>, key: u8, s: &str) {
    put_ld_header(buf, key, s.len());
    buf.extend_from_slice(s.as_bytes());
}

#[inline]
fn put_varint_field(buf: &mut Vec<u8>, key: u8, v: u64) {
    buf.push(key);
    put_varint(buf, v);
}

#[inline]
fn put_fixed64(buf: &mut Vec<u8>, key: u8, v: u64) {
    buf.push(key);
    buf.extend_from_slice(&v.to_le_bytes());
}

// ---- common.v1: AnyValue, ArrayValue, KeyValue ------------------------------------

fn scalar_str_len(s: &str) -> usize {
    ld(s.len())
}

/// Body length of an `AnyValue` holding `v` (the oneof field is always written).
fn any_len(v: &Value) -> usize {
    match v {
        Value::String(s) => scalar_str_len(s),
        Value::Bool(_) => 2,
        Value::I64(i) => 1 + encoded_len_varint(*i as u64),
        Value::F64(_) => 9,
        Value::Array(a) => ld(array_len(a)),
    }
}

/// Body length of an `ArrayValue`: one `AnyValue` record per element.
fn array_len(a: &Array) -> usize {
    match a {
        Array::Bool(v) => v.len() * ld(2),
        Array::I64(v) => v
            .iter()
            .map(|i| ld(1 + encoded_len_varint(*i as u64)))
            .sum(),
        Array::F64(v) => v.len() * ld(9),
        Array::String(v) => v.iter().map(|s| ld(scalar_str_len(s))).sum(),
    }
}

fn put_any(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => put_str(buf, tag(1, LEN), s),
        Value::Bool(b) => {
            buf.push(tag(2, VARINT));
            buf.push(*b as u8);
        }
        Value::I64(i) => put_varint_field(buf, tag(3, VARINT), *i as u64),
        Value::F64(f) => put_fixed64(buf, tag(4, I64), f.to_bits()),
        Value::Array(a) => {
            put_ld_header(buf, tag(5, LEN), array_len(a));
            match a {
                Array::Bool(v) => {
                    for b in v {
                        buf.extend_from_slice(&[tag(1, LEN), 2, tag(2, VARINT), *b as u8]);
                    }
                }
                Array::I64(v) => {
                    for i in v {
                        put_ld_header(buf, tag(1, LEN), 1 + encoded_len_varint(*i as u64));
                        put_varint_field(buf, tag(3, VARINT), *i as u64);
                    }
                }
                Array::F64(v) => {
                    for f in v {
                        buf.extend_from_slice(&[tag(1, LEN), 9]);
                        put_fixed64(buf, tag(4, I64), f.to_bits());
                    }
                }
                Array::String(v) => {
                    for s in v {
                        put_ld_header(buf, tag(1, LEN), scalar_str_len(s));
                        put_str(buf, tag(1, LEN), s);
                    }
                }
            }
        }
    }
}

/// Body length of a `KeyValue`.
fn kv_len(kv: &KeyValue) -> usize {
    let key = if kv.key.is_empty() {
        0
    } else {
        ld(kv.key.len())
    };
    key + ld(any_len(&kv.value))
}

fn put_kv(buf: &mut Vec<u8>, kv: &KeyValue) {
    if !kv.key.is_empty() {
        put_str(buf, tag(1, LEN), &kv.key);
    }
    put_ld_header(buf, tag(2, LEN), any_len(&kv.value));
    put_any(buf, &kv.value);
}

fn attrs_len(attrs: &[KeyValue]) -> usize {
    attrs.iter().map(|kv| ld(kv_len(kv))).sum()
}

fn put_attrs(buf: &mut Vec<u8>, key: u8, attrs: &[KeyValue]) {
    for kv in attrs {
        put_ld_header(buf, key, kv_len(kv));
        put_kv(buf, kv);
    }
}

fn opt_u32_len(v: u32) -> usize {
    if v == 0 {
        0
    } else {
        1 + encoded_len_varint(v as u64)
    }
}

fn put_opt_u32(buf: &mut Vec<u8>, key: u8, v: u32) {
    if v != 0 {
        put_varint_field(buf, key, v as u64);
    }
}

// ---- trace state ---------------------------------------------------------------

/// Length of the W3C header serialization (`k1=v1,k2=v2`) without building it.
fn trace_state_len(ts: &TraceState) -> usize {
    let mut n = 0;
    for (i, (k, v)) in ts.iter().enumerate() {
        n += usize::from(i > 0) + k.len() + 1 + v.len();
    }
    n
}

fn put_trace_state(buf: &mut Vec<u8>, key: u8, ts: &TraceState) {
    let n = trace_state_len(ts);
    if n == 0 {
        return;
    }
    put_ld_header(buf, key, n);
    for (i, (k, v)) in ts.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(k.as_bytes());
        buf.push(b'=');
        buf.extend_from_slice(v.as_bytes());
    }
}

fn opt_ld(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ld(n)
    }
}

// ---- trace.v1: Span, Event, Link, Status -----------------------------------------

fn event_len(e: &Event) -> usize {
    let time = if e.time_unix_nano == 0 { 0 } else { 9 };
    time + opt_ld(e.name.len()) + attrs_len(&e.attributes) + opt_u32_len(e.dropped_attributes_count)
}

fn put_event(buf: &mut Vec<u8>, e: &Event) {
    if e.time_unix_nano != 0 {
        put_fixed64(buf, tag(1, I64), e.time_unix_nano);
    }
    if !e.name.is_empty() {
        put_str(buf, tag(2, LEN), &e.name);
    }
    put_attrs(buf, tag(3, LEN), &e.attributes);
    put_opt_u32(buf, tag(4, VARINT), e.dropped_attributes_count);
}

pub(crate) fn link_flags(l: &Link) -> u32 {
    let sc = &l.span_context;
    sc.trace_flags().bits() as u32 | HAS_IS_REMOTE | if sc.is_remote() { IS_REMOTE } else { 0 }
}

fn link_len(l: &Link) -> usize {
    18 + 10
        + opt_ld(trace_state_len(l.span_context.trace_state()))
        + attrs_len(&l.attributes)
        + opt_u32_len(l.dropped_attributes_count)
        + 5
}

fn put_link(buf: &mut Vec<u8>, l: &Link) {
    let sc = &l.span_context;
    buf.extend_from_slice(&[tag(1, LEN), 16]);
    buf.extend_from_slice(sc.trace_id().as_bytes());
    buf.extend_from_slice(&[tag(2, LEN), 8]);
    buf.extend_from_slice(sc.span_id().as_bytes());
    put_trace_state(buf, tag(3, LEN), sc.trace_state());
    put_attrs(buf, tag(4, LEN), &l.attributes);
    put_opt_u32(buf, tag(5, VARINT), l.dropped_attributes_count);
    buf.push(tag(6, I32));
    buf.extend_from_slice(&link_flags(l).to_le_bytes());
}

pub(crate) fn kind_number(k: SpanKind) -> u8 {
    match k {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// Body length of `Status`, or `None` when the field is omitted (Unset).
fn status_len(s: &Status) -> Option<usize> {
    match s {
        Status::Unset => None,
        Status::Ok => Some(2),
        Status::Error { description } => Some(opt_ld(description.len()) + 2),
    }
}

pub(crate) fn span_flags(s: &SpanData) -> u32 {
    s.span_context.trace_flags().bits() as u32
        | HAS_IS_REMOTE
        | if s.parent_is_remote { IS_REMOTE } else { 0 }
}

/// Body length of one `Span`.
fn span_len(s: &SpanData) -> usize {
    let mut n = 18 + 10; // trace_id, span_id
    n += opt_ld(trace_state_len(s.span_context.trace_state()));
    if s.parent_span_id.is_valid() {
        n += 10;
    }
    n += opt_ld(s.name.len());
    n += 2; // kind, never 0
    n += if s.start_time_unix_nano == 0 { 0 } else { 9 };
    n += if s.end_time_unix_nano == 0 { 0 } else { 9 };
    n += attrs_len(&s.attributes);
    n += opt_u32_len(s.dropped_attributes_count);
    n += s.events().iter().map(|e| ld(event_len(e))).sum::<usize>();
    n += opt_u32_len(s.dropped_events_count());
    n += s.links().iter().map(|l| ld(link_len(l))).sum::<usize>();
    n += opt_u32_len(s.dropped_links_count());
    n += status_len(s.status()).map_or(0, ld);
    n + 2 + 4 // flags, never 0
}

fn put_span(buf: &mut Vec<u8>, s: &SpanData) {
    let sc = &s.span_context;
    buf.extend_from_slice(&[tag(1, LEN), 16]);
    buf.extend_from_slice(sc.trace_id().as_bytes());
    buf.extend_from_slice(&[tag(2, LEN), 8]);
    buf.extend_from_slice(sc.span_id().as_bytes());
    put_trace_state(buf, tag(3, LEN), sc.trace_state());
    if s.parent_span_id.is_valid() {
        buf.extend_from_slice(&[tag(4, LEN), 8]);
        buf.extend_from_slice(s.parent_span_id.as_bytes());
    }
    if !s.name.is_empty() {
        put_str(buf, tag(5, LEN), &s.name);
    }
    buf.extend_from_slice(&[tag(6, VARINT), kind_number(s.kind)]);
    if s.start_time_unix_nano != 0 {
        put_fixed64(buf, tag(7, I64), s.start_time_unix_nano);
    }
    if s.end_time_unix_nano != 0 {
        put_fixed64(buf, tag(8, I64), s.end_time_unix_nano);
    }
    put_attrs(buf, tag(9, LEN), &s.attributes);
    put_opt_u32(buf, tag(10, VARINT), s.dropped_attributes_count);
    for e in s.events() {
        put_ld_header(buf, tag(11, LEN), event_len(e));
        put_event(buf, e);
    }
    put_opt_u32(buf, tag(12, VARINT), s.dropped_events_count());
    for l in s.links() {
        put_ld_header(buf, tag(13, LEN), link_len(l));
        put_link(buf, l);
    }
    put_opt_u32(buf, tag(14, VARINT), s.dropped_links_count());
    if let Some(n) = status_len(s.status()) {
        put_ld_header(buf, tag(15, LEN), n);
        match s.status() {
            Status::Ok => buf.extend_from_slice(&[tag(3, VARINT), 1]),
            Status::Error { description } => {
                if !description.is_empty() {
                    put_str(buf, tag(2, LEN), description);
                }
                buf.extend_from_slice(&[tag(3, VARINT), 2]);
            }
            Status::Unset => {}
        }
    }
    buf.extend_from_slice(&SPAN_FLAGS_KEY);
    buf.extend_from_slice(&span_flags(s).to_le_bytes());
}

// ---- Resource, InstrumentationScope ------------------------------------------------

/// Body length of a `Resource` message.
pub(crate) fn resource_len(r: &Resource) -> usize {
    attrs_len(r.attributes())
}

/// Writes the body of a `Resource` message.
pub(crate) fn put_resource(buf: &mut Vec<u8>, r: &Resource) {
    put_attrs(buf, tag(1, LEN), r.attributes());
}

fn scope_len(s: &InstrumentationScope) -> usize {
    opt_ld(s.name.len())
        + s.version.as_ref().map_or(0, |v| opt_ld(v.len()))
        + attrs_len(&s.attributes)
}

fn put_scope(buf: &mut Vec<u8>, s: &InstrumentationScope) {
    if !s.name.is_empty() {
        put_str(buf, tag(1, LEN), &s.name);
    }
    if let Some(v) = s.version.as_ref().filter(|v| !v.is_empty()) {
        put_str(buf, tag(2, LEN), v);
    }
    put_attrs(buf, tag(3, LEN), &s.attributes);
}

fn schema_url_len(s: &InstrumentationScope) -> usize {
    s.schema_url.as_ref().map_or(0, |u| opt_ld(u.len()))
}

// ---- grouping and the request ------------------------------------------------------

/// The spans of one instrumentation scope (indices into the batch).
pub(crate) struct ScopeGroup<'a> {
    pub(crate) instrumentation: &'a Instrumentation,
    pub(crate) spans: Vec<usize>,
    len: usize,
}

/// The scopes of one resource.
pub(crate) struct ResourceGroup<'a> {
    pub(crate) instrumentation: &'a Instrumentation,
    pub(crate) scopes: Vec<ScopeGroup<'a>>,
    len: usize,
}

fn same_resource(a: &Instrumentation, b: &Instrumentation) -> bool {
    std::sync::Arc::ptr_eq(a.resource(), b.resource()) || a.resource() == b.resource()
}

fn same_scope(a: &Instrumentation, b: &Instrumentation) -> bool {
    a.ptr_eq(b) || a.scope() == b.scope()
}

/// Groups `batch` by resource, then by scope, in order of first appearance.
pub(crate) fn group(batch: &[SpanData]) -> Vec<ResourceGroup<'_>> {
    let mut groups: Vec<ResourceGroup<'_>> = Vec::new();
    // Index of the (resource, scope) used by the previous span: batches are
    // usually runs of spans from one tracer, so this check hits almost always.
    let mut last: Option<(usize, usize)> = None;
    for (i, span) in batch.iter().enumerate() {
        let inst = &span.instrumentation;
        if let Some((r, s)) = last {
            let sg = &mut groups[r].scopes[s];
            if sg.instrumentation.ptr_eq(inst) {
                sg.spans.push(i);
                continue;
            }
        }
        let r = match groups
            .iter()
            .position(|g| same_resource(g.instrumentation, inst))
        {
            Some(r) => r,
            None => {
                groups.push(ResourceGroup {
                    instrumentation: inst,
                    scopes: Vec::new(),
                    len: 0,
                });
                groups.len() - 1
            }
        };
        let scopes = &mut groups[r].scopes;
        let s = match scopes
            .iter()
            .position(|g| same_scope(g.instrumentation, inst))
        {
            Some(s) => s,
            None => {
                scopes.push(ScopeGroup {
                    instrumentation: inst,
                    spans: Vec::new(),
                    len: 0,
                });
                scopes.len() - 1
            }
        };
        scopes[s].spans.push(i);
        last = Some((r, s));
    }
    groups
}

/// Appends the protobuf encoding of an `ExportTraceServiceRequest` holding `batch`
/// to `buf`, and returns the number of bytes written.
///
/// Spans are grouped by resource and then by instrumentation scope; an empty batch
/// encodes to zero bytes (an empty request).
pub fn encode_request(batch: &[SpanData], buf: &mut Vec<u8>) -> usize {
    let mut groups = group(batch);
    let span_lens: Vec<usize> = batch.iter().map(span_len).collect();
    let mut total = 0;
    for g in &mut groups {
        let mut rlen = ld(resource_len(g.instrumentation.resource()));
        for sg in &mut g.scopes {
            let scope = sg.instrumentation.scope();
            sg.len = ld(scope_len(scope))
                + sg.spans.iter().map(|&i| ld(span_lens[i])).sum::<usize>()
                + schema_url_len(scope);
            rlen += ld(sg.len);
        }
        g.len = rlen;
        total += ld(rlen);
    }
    buf.reserve(total);
    let start = buf.len();
    for g in &groups {
        put_ld_header(buf, tag(1, LEN), g.len);
        let resource = g.instrumentation.resource();
        put_ld_header(buf, tag(1, LEN), resource_len(resource));
        put_resource(buf, resource);
        for sg in &g.scopes {
            put_ld_header(buf, tag(2, LEN), sg.len);
            let scope = sg.instrumentation.scope();
            put_ld_header(buf, tag(1, LEN), scope_len(scope));
            put_scope(buf, scope);
            for &i in &sg.spans {
                put_ld_header(buf, tag(2, LEN), span_lens[i]);
                put_span(buf, &batch[i]);
            }
            if let Some(url) = scope.schema_url.as_ref().filter(|u| !u.is_empty()) {
                put_str(buf, tag(3, LEN), url);
            }
        }
    }
    debug_assert_eq!(buf.len() - start, total, "encoded length mismatch");
    buf.len() - start
}

#[cfg(test)]
#[path = "encode_tests.rs"]
pub(crate) mod tests;
