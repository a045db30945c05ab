//! A direct protobuf encoder from `&[SpanData]` to an `ExportTraceServiceRequest`.
//!
//! One pass and no intermediate message structs: the spans are grouped (one
//! `ResourceSpans` per resource, one `ScopeSpans` per scope inside it), then
//! each message is written once, straight into the request buffer. A message
//! whose length is not known before it is written (a span, an event, a link, a
//! `ScopeSpans`, a `ResourceSpans`) gets room for its length, which is filled
//! in after it; when the length takes fewer or more bytes than that room, the
//! message is moved (a span of under 128 bytes moves by one byte). Everything
//! the first `ResourceSpans` holds before its first span is written last, into
//! room left in front of the spans, so a request of one resource and one scope
//! moves nothing: it may start a few bytes into the buffer
//! ([`encode_request_unaligned`]). Key-values, whose lengths cost little to
//! compute, are written with their lengths first.
//!
//! Fields are written in ascending field number, as protoc does, so the output
//! is byte-identical to a prost/protoc encoding of the same message (the golden
//! tests below check this). Scalars equal to their default are omitted, except
//! inside `AnyValue`'s oneof, where a zero is still written.

use prost::encoding::encoded_len_varint;
use runtrace::export::{Event, Instrumentation, InstrumentationScope, Link};
use runtrace::{Array, KeyValue, Resource, SpanData, SpanKind, Status, Str, TraceState, Value};

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

#[inline(always)]
fn put_ld_header(buf: &mut Vec<u8>, key: u8, n: usize) {
    buf.push(key);
    put_varint(buf, n as u64);
}

#[inline(always)]
fn put_str(buf: &mut Vec<u8>, key: u8, s: &[u8]) {
    put_ld_header(buf, key, s.len());
    buf.extend_from_slice(s);
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

/// Room for a length that is filled in after the message: two bytes hold
/// up to 16383, which covers most spans.
const SPAN_LENGTH_ROOM: usize = 2;
/// Room for the length of a `ResourceSpans` or `ScopeSpans` after the first
/// (up to 2^35 - 1 bytes: any request under the size limit).
const GROUP_LENGTH_ROOM: usize = 5;
/// Room for each of the first `ResourceSpans`' and `ScopeSpans`' lengths,
/// which never move: the longest varint.
const FRONT_LENGTH_ROOM: usize = 10;

/// Writes `key`, then the message `write` appends, preceded by its length:
/// `ROOM` bytes are kept for the length, and the message moves when it needs
/// fewer or more (see [`fill_length`]).
#[inline(always)]
fn put_nested<const ROOM: usize>(buf: &mut Vec<u8>, key: u8, write: impl FnOnce(&mut Vec<u8>)) {
    buf.push(key);
    let at = buf.len();
    buf.extend_from_slice(&[0u8; ROOM]);
    write(buf);
    let len = buf.len() - at - ROOM;
    fill_length(buf, at, ROOM, len);
}

/// Writes `len` as a varint into the `room` bytes at `at`, which the `len`
/// bytes of a message follow; when the varint is shorter or longer than
/// `room`, the message moves to follow it directly.
#[inline(always)]
fn fill_length(buf: &mut Vec<u8>, at: usize, room: usize, len: usize) {
    let width = encoded_len_varint(len as u64);
    if width == 2 && room == 2 {
        buf[at] = len as u8 | 0x80;
        buf[at + 1] = (len >> 7) as u8;
        return;
    }
    if width == 1 && room == 1 {
        buf[at] = len as u8;
        return;
    }
    move_message(buf, at + room, at + width, len);
    let mut v = len as u64;
    for b in &mut buf[at..at + width] {
        *b = if v >= 0x80 { v as u8 | 0x80 } else { v as u8 };
        v >>= 7;
    }
}

/// Moves the last `len` bytes of `buf`, which start at `from`, to start at
/// `to`: the buffer shrinks or grows by the difference.
#[inline(never)]
fn move_message(buf: &mut Vec<u8>, from: usize, to: usize, len: usize) {
    debug_assert_eq!(buf.len(), from + len);
    if to < from {
        buf.copy_within(from.., to);
        buf.truncate(to + len);
    } else if to > from {
        buf.resize(to + len, 0);
        buf.copy_within(from..from + len, to);
    }
}

// ---- common.v1: AnyValue, ArrayValue, KeyValue ------------------------------------

fn scalar_str_len(s: &Str) -> usize {
    ld(s.as_bytes().len())
}

/// Body length of an `AnyValue` holding `v` (the oneof field is always written).
#[inline(always)]
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

#[inline(always)]
fn put_any(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => put_str(buf, tag(1, LEN), s.as_bytes()),
        Value::Bool(b) => buf.extend_from_slice(&[tag(2, VARINT), *b as u8]),
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
                        put_str(buf, tag(1, LEN), s.as_bytes());
                    }
                }
            }
        }
    }
}

/// Body length of a `KeyValue` whose `AnyValue` body is `value_len` bytes.
#[inline]
fn kv_len(kv: &KeyValue, value_len: usize) -> usize {
    let key = kv.key.as_bytes();
    let key = if key.is_empty() { 0 } else { ld(key.len()) };
    key + ld(value_len)
}

/// Writes `kv` as field `key`: each length is computed once, before what it
/// measures.
#[inline(always)]
fn put_kv(buf: &mut Vec<u8>, key: u8, kv: &KeyValue) {
    let value_len = any_len(&kv.value);
    let len = kv_len(kv, value_len);
    let name = kv.key.as_bytes();
    if len < 0x80 && !name.is_empty() {
        // The usual attribute: every length in one byte, the key's header
        // in one write.
        buf.reserve(len + 1);
        buf.extend_from_slice(&[key, len as u8, tag(1, LEN), name.len() as u8]);
        buf.extend_from_slice(name);
        buf.extend_from_slice(&[tag(2, LEN), value_len as u8]);
    } else {
        put_ld_header(buf, key, len);
        if !name.is_empty() {
            put_str(buf, tag(1, LEN), name);
        }
        put_ld_header(buf, tag(2, LEN), value_len);
    }
    put_any(buf, &kv.value);
}

fn attrs_len(attrs: &[KeyValue]) -> usize {
    attrs
        .iter()
        .map(|kv| ld(kv_len(kv, any_len(&kv.value))))
        .sum()
}

fn put_attrs(buf: &mut Vec<u8>, key: u8, attrs: &[KeyValue]) {
    for kv in attrs {
        put_kv(buf, key, kv);
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

fn put_event(buf: &mut Vec<u8>, e: &Event) {
    if e.time_unix_nano != 0 {
        put_fixed64(buf, tag(1, I64), e.time_unix_nano);
    }
    if !e.name.as_bytes().is_empty() {
        put_str(buf, tag(2, LEN), e.name.as_bytes());
    }
    put_attrs(buf, tag(3, LEN), &e.attributes);
    put_opt_u32(buf, tag(4, VARINT), e.dropped_attributes_count);
}

pub(crate) fn link_flags(l: &Link) -> u32 {
    let sc = &l.span_context;
    sc.trace_flags().bits() as u32 | HAS_IS_REMOTE | if sc.is_remote() { IS_REMOTE } else { 0 }
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
        Status::Error { description } => Some(opt_ld(description.as_bytes().len()) + 2),
    }
}

pub(crate) fn span_flags(s: &SpanData) -> u32 {
    s.span_context.trace_flags().bits() as u32
        | HAS_IS_REMOTE
        | if s.parent_is_remote { IS_REMOTE } else { 0 }
}

/// Writes the body of one `Span`.
#[inline]
fn put_span(buf: &mut Vec<u8>, s: &SpanData) {
    let sc = &s.span_context;
    // The ids in one write.
    let mut ids = [0u8; 28];
    ids[0] = tag(1, LEN);
    ids[1] = 16;
    ids[2..18].copy_from_slice(sc.trace_id().as_bytes());
    ids[18] = tag(2, LEN);
    ids[19] = 8;
    ids[20..28].copy_from_slice(sc.span_id().as_bytes());
    buf.extend_from_slice(&ids);
    put_trace_state(buf, tag(3, LEN), sc.trace_state());
    if s.parent_span_id.is_valid() {
        let mut parent = [0u8; 10];
        parent[0] = tag(4, LEN);
        parent[1] = 8;
        parent[2..].copy_from_slice(s.parent_span_id.as_bytes());
        buf.extend_from_slice(&parent);
    }
    if !s.name.as_bytes().is_empty() {
        put_str(buf, tag(5, LEN), s.name.as_bytes());
    }
    if s.start_time_unix_nano != 0 && s.end_time_unix_nano != 0 {
        // Kind and both times in one write.
        let mut times = [0u8; 20];
        times[0] = tag(6, VARINT);
        times[1] = kind_number(s.kind);
        times[2] = tag(7, I64);
        times[3..11].copy_from_slice(&s.start_time_unix_nano.to_le_bytes());
        times[11] = tag(8, I64);
        times[12..].copy_from_slice(&s.end_time_unix_nano.to_le_bytes());
        buf.extend_from_slice(&times);
    } else {
        buf.extend_from_slice(&[tag(6, VARINT), kind_number(s.kind)]);
        if s.start_time_unix_nano != 0 {
            put_fixed64(buf, tag(7, I64), s.start_time_unix_nano);
        }
        if s.end_time_unix_nano != 0 {
            put_fixed64(buf, tag(8, I64), s.end_time_unix_nano);
        }
    }
    put_attrs(buf, tag(9, LEN), &s.attributes);
    put_opt_u32(buf, tag(10, VARINT), s.dropped_attributes_count);
    for e in s.events() {
        put_nested::<1>(buf, tag(11, LEN), |buf| put_event(buf, e));
    }
    put_opt_u32(buf, tag(12, VARINT), s.dropped_events_count());
    for l in s.links() {
        put_nested::<1>(buf, tag(13, LEN), |buf| put_link(buf, l));
    }
    put_opt_u32(buf, tag(14, VARINT), s.dropped_links_count());
    if let Some(n) = status_len(s.status()) {
        put_ld_header(buf, tag(15, LEN), n);
        match s.status() {
            Status::Ok => buf.extend_from_slice(&[tag(3, VARINT), 1]),
            Status::Error { description } => {
                if !description.as_bytes().is_empty() {
                    put_str(buf, tag(2, LEN), description.as_bytes());
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
    opt_ld(s.name.as_bytes().len())
        + s.version.as_ref().map_or(0, |v| opt_ld(v.as_bytes().len()))
        + attrs_len(&s.attributes)
}

fn put_scope(buf: &mut Vec<u8>, s: &InstrumentationScope) {
    if !s.name.as_bytes().is_empty() {
        put_str(buf, tag(1, LEN), s.name.as_bytes());
    }
    if let Some(v) = s.version.as_ref().filter(|v| !v.as_bytes().is_empty()) {
        put_str(buf, tag(2, LEN), v.as_bytes());
    }
    put_attrs(buf, tag(3, LEN), &s.attributes);
}

// ---- grouping and the request ------------------------------------------------------

/// The spans of one instrumentation scope (indices into the batch).
pub(crate) struct ScopeGroup<'a> {
    pub(crate) instrumentation: &'a Instrumentation,
    pub(crate) spans: Vec<usize>,
}

/// The scopes of one resource.
pub(crate) struct ResourceGroup<'a> {
    pub(crate) instrumentation: &'a Instrumentation,
    pub(crate) scopes: Vec<ScopeGroup<'a>>,
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
    let start = buf.len();
    let at = encode_request_unaligned(batch, buf);
    let len = buf.len() - at;
    move_message(buf, at, start, len);
    len
}

/// Writes the encoding of [`encode_request`] after the end of `buf`, but not
/// necessarily right after it: a few bytes may be left between them (at most
/// 18, the room for two lengths less their shortest). Returns where the request starts;
/// it ends at the end of `buf`.
pub(crate) fn encode_request_unaligned(batch: &[SpanData], buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    let groups = group(batch);
    let Some((first, others)) = groups.split_first() else {
        return start;
    };
    // The first ResourceSpans: its resource, the first ScopeSpans' header
    // and its scope are written after its spans, into the room in front of
    // them, when the lengths they hold are known.
    let Some((first_scope, other_scopes)) = first.scopes.split_first() else {
        return start;
    };
    let resource = first.instrumentation.resource();
    let scope = first_scope.instrumentation.scope();
    let resource_field = ld(resource_len(resource));
    let scope_field = ld(scope_len(scope));
    let room = 2 * (1 + FRONT_LENGTH_ROOM) + resource_field + scope_field;
    buf.resize(start + room, 0);
    let spans_at = buf.len();
    put_scope_spans_tail(buf, batch, first_scope);
    let first_scope_len = scope_field + buf.len() - spans_at;
    let other_scopes_at = buf.len();
    for sg in other_scopes {
        put_nested::<GROUP_LENGTH_ROOM>(buf, tag(2, LEN), |buf| put_scope_spans(buf, batch, sg));
    }
    let resource_spans_len = resource_field + ld(first_scope_len) + buf.len() - other_scopes_at;
    // The head, written at the end, then moved into place before the spans.
    let head_at = buf.len();
    put_ld_header(buf, tag(1, LEN), resource_spans_len);
    put_ld_header(buf, tag(1, LEN), resource_len(resource));
    put_resource(buf, resource);
    put_ld_header(buf, tag(2, LEN), first_scope_len);
    put_ld_header(buf, tag(1, LEN), scope_len(scope));
    put_scope(buf, scope);
    let head_len = buf.len() - head_at;
    let at = spans_at - head_len;
    buf.copy_within(head_at.., at);
    buf.truncate(head_at);
    for g in others {
        put_nested::<GROUP_LENGTH_ROOM>(buf, tag(1, LEN), |buf| {
            let resource = g.instrumentation.resource();
            put_ld_header(buf, tag(1, LEN), resource_len(resource));
            put_resource(buf, resource);
            for sg in &g.scopes {
                put_nested::<GROUP_LENGTH_ROOM>(buf, tag(2, LEN), |buf| {
                    put_scope_spans(buf, batch, sg)
                });
            }
        });
    }
    at
}

/// Writes the body of a `ScopeSpans`.
fn put_scope_spans(buf: &mut Vec<u8>, batch: &[SpanData], sg: &ScopeGroup<'_>) {
    let scope = sg.instrumentation.scope();
    put_ld_header(buf, tag(1, LEN), scope_len(scope));
    put_scope(buf, scope);
    put_scope_spans_tail(buf, batch, sg);
}

/// Writes the fields of a `ScopeSpans` after its scope: its spans and its
/// schema URL.
fn put_scope_spans_tail(buf: &mut Vec<u8>, batch: &[SpanData], sg: &ScopeGroup<'_>) {
    for &i in &sg.spans {
        put_nested::<SPAN_LENGTH_ROOM>(buf, tag(2, LEN), |buf| put_span(buf, &batch[i]));
    }
    let scope = sg.instrumentation.scope();
    if let Some(url) = scope
        .schema_url
        .as_ref()
        .filter(|u| !u.as_bytes().is_empty())
    {
        put_str(buf, tag(3, LEN), url.as_bytes());
    }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
pub(crate) mod tests;
