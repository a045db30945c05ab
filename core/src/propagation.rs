//! Propagation: carrying a [`Context`] across process boundaries.
//!
//! A [`TextMapPropagator`] writes a context into an outgoing carrier of named
//! string values and reads one back. The W3C Trace Context propagator
//! [`TraceContextPropagator`] (`traceparent` and `tracestate`) is the first
//! implementation: it writes the current span's context into an outgoing
//! carrier ([`Injector`]) and reads a remote parent from an incoming one
//! ([`Extractor`]). Parsing follows W3C Trace Context Level 2 strictly: any flaw in
//! `traceparent` (or two `traceparent` fields) discards both headers, so the
//! receiver starts a new trace; a flawed `tracestate` is dropped on its own and the
//! `traceparent` is still used. Nothing here panics on any input, and nothing
//! here knows about HTTP: a carrier is anything with named string values.

use crate::context::Context;
use crate::data::id::decode_hex_lower;
use crate::data::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// The `traceparent` header name (lowercase, as emitted).
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header name (lowercase, as emitted).
pub const TRACESTATE: &str = "tracestate";

/// Flag bits that runtrace interprets and forwards: sampled (0x01) and random
/// (0x02). Reserved bits are accepted on input and zeroed.
const KNOWN_FLAGS: u8 = 0x03;

/// Length of a version `00` header, and the minimum for future versions.
const TRACEPARENT_LEN: usize = 55;

/// Carries a [`Context`] across process boundaries in a carrier of named string
/// values (HTTP headers, message metadata).
///
/// Object safe, so a service can hold `Box<dyn TextMapPropagator>` chosen at
/// start-up:
///
/// ```
/// use runtrace::propagation::TextMapPropagator;
/// use runtrace::{Context, TraceContextPropagator};
/// use std::collections::HashMap;
///
/// let propagator: Box<dyn TextMapPropagator> = Box::new(TraceContextPropagator::new());
/// let mut headers: HashMap<String, String> = HashMap::new();
/// headers.insert(
///     "traceparent".into(),
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
/// );
/// let cx = propagator.extract_context(&headers);
/// let mut outgoing: HashMap<String, String> = HashMap::new();
/// propagator.inject_context(&cx, &mut outgoing);
/// assert_eq!(outgoing["traceparent"], headers["traceparent"]);
/// assert_eq!(propagator.fields(), ["traceparent", "tracestate"]);
/// ```
pub trait TextMapPropagator: Send + Sync + fmt::Debug {
    /// Writes the propagated parts of `cx` into `carrier`.
    fn inject_context(&self, cx: &Context, carrier: &mut dyn Injector);
    /// Reads a context from `carrier`; an empty context if it carries none.
    fn extract_context(&self, carrier: &dyn Extractor) -> Context;
    /// The names this propagator reads and writes (to pre-declare or clear them).
    fn fields(&self) -> &'static [&'static str];
}

/// Where [`TextMapPropagator::inject_context`] writes headers.
///
/// Implemented for `HashMap<String, String>`, `BTreeMap<String, String>` and
/// `Vec<(String, String)>`; implement it for your transport's header type.
pub trait Injector {
    /// Sets `name` (always lowercase) to `value`, replacing any earlier value.
    fn set(&mut self, name: &str, value: String);
}

/// Where [`TextMapPropagator::extract_context`] reads headers.
///
/// Names are matched ASCII case-insensitively. Implement [`Extractor::get_all`]
/// too if your carrier can hold a header more than once.
pub trait Extractor {
    /// The first value of `name`, if any.
    fn get(&self, name: &str) -> Option<&str>;

    /// Every value of `name`, in the order received (default: at most the one
    /// [`Extractor::get`] returns).
    fn get_all(&self, name: &str) -> Vec<&str> {
        self.get(name).into_iter().collect()
    }
}

impl Injector for HashMap<String, String> {
    fn set(&mut self, name: &str, value: String) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(name));
        self.insert(name.to_ascii_lowercase(), value);
    }
}

impl Extractor for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        if let Some(v) = HashMap::get(self, name) {
            return Some(v);
        }
        self.get_all(name).into_iter().next()
    }

    /// Values of every key that matches case-insensitively, ordered by key so the
    /// result does not depend on the hasher.
    fn get_all(&self, name: &str) -> Vec<&str> {
        let mut found: Vec<(&String, &String)> = self
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .collect();
        found.sort();
        found.into_iter().map(|(_, v)| v.as_str()).collect()
    }
}

impl Injector for BTreeMap<String, String> {
    fn set(&mut self, name: &str, value: String) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(name));
        self.insert(name.to_ascii_lowercase(), value);
    }
}

/// The values of the pairs whose name matches `name` case-insensitively, in order.
fn matching<'a, 'n>(
    pairs: impl Iterator<Item = (&'a String, &'a String)> + 'n,
    name: &'n str,
) -> impl Iterator<Item = &'a str> + 'n
where
    'a: 'n,
{
    pairs
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Extractor for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        matching(self.iter(), name).next()
    }

    fn get_all(&self, name: &str) -> Vec<&str> {
        matching(self.iter(), name).collect()
    }
}

impl Injector for Vec<(String, String)> {
    fn set(&mut self, name: &str, value: String) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.push((name.to_ascii_lowercase(), value));
    }
}

impl Extractor for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        matching(self.iter().map(|(k, v)| (k, v)), name).next()
    }

    fn get_all(&self, name: &str) -> Vec<&str> {
        matching(self.iter().map(|(k, v)| (k, v)), name).collect()
    }
}

/// The W3C Trace Context propagator (`traceparent` + `tracestate`).
///
/// ```
/// use std::collections::HashMap;
/// use runtrace::TraceContextPropagator;
///
/// let propagator = TraceContextPropagator::new();
/// let mut incoming = HashMap::new();
/// incoming.insert(
///     "TraceParent".to_string(),
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
/// );
/// incoming.insert("tracestate".to_string(), "rojo=00f067aa0ba902b7".to_string());
/// let cx = propagator.extract(&incoming);
/// let parent = cx.span_context().expect("valid traceparent");
/// assert!(parent.is_remote() && parent.is_sampled());
///
/// let mut outgoing: HashMap<String, String> = HashMap::new();
/// propagator.inject(&cx, &mut outgoing);
/// assert_eq!(outgoing["traceparent"], incoming["TraceParent"]);
/// assert_eq!(outgoing["tracestate"], "rojo=00f067aa0ba902b7");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContextPropagator;

impl TraceContextPropagator {
    /// A propagator (it holds no state).
    pub const fn new() -> Self {
        TraceContextPropagator
    }

    /// The header names this propagator reads and writes.
    pub fn fields(&self) -> [&'static str; 2] {
        [TRACEPARENT, TRACESTATE]
    }

    /// Writes `traceparent` (always version `00`, lowercase, reserved flag bits
    /// zeroed) and, when non-empty, `tracestate` for the span context of `cx`.
    /// Does nothing when `cx` has no valid span context.
    pub fn inject(&self, cx: &Context, carrier: &mut impl Injector) {
        inject_into(cx, carrier)
    }

    /// Reads a remote parent from `carrier`.
    ///
    /// Returns an empty context (the next span starts a new trace) unless there is
    /// exactly one valid `traceparent`. The extracted span context is remote; its
    /// trace state is the `tracestate` fields joined with `,`, or empty if they do
    /// not parse.
    pub fn extract(&self, carrier: &impl Extractor) -> Context {
        extract_from(carrier)
    }
}

impl TextMapPropagator for TraceContextPropagator {
    fn inject_context(&self, cx: &Context, carrier: &mut dyn Injector) {
        inject_into(cx, carrier)
    }

    fn extract_context(&self, carrier: &dyn Extractor) -> Context {
        extract_from(carrier)
    }

    fn fields(&self) -> &'static [&'static str] {
        &[TRACEPARENT, TRACESTATE]
    }
}

/// [`TraceContextPropagator::inject`].
fn inject_into(cx: &Context, carrier: &mut dyn Injector) {
    let Some(sc) = cx.span_context() else {
        return;
    };
    carrier.set(TRACEPARENT, format_traceparent(sc));
    if !sc.trace_state().is_empty() {
        carrier.set(TRACESTATE, sc.trace_state().header());
    }
}

/// [`TraceContextPropagator::extract`].
fn extract_from(carrier: &dyn Extractor) -> Context {
    let parents = carrier.get_all(TRACEPARENT);
    let [traceparent] = parents.as_slice() else {
        return Context::new();
    };
    let Some((trace_id, span_id, flags)) = parse_traceparent(traceparent) else {
        return Context::new();
    };
    let trace_state = TraceState::parse(&carrier.get_all(TRACESTATE).join(",")).unwrap_or_default();
    Context::from_span_context(SpanContext::new(
        trace_id,
        span_id,
        flags,
        true,
        trace_state,
    ))
}

/// `00-<trace-id>-<span-id>-<flags>` with only the known flag bits.
fn format_traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().bits() & KNOWN_FLAGS
    )
}

/// Parses a `traceparent` value by W3C Trace Context §3.2 (Level 2), working on
/// bytes so that no input can split a UTF-8 character or index out of bounds.
fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let b = value.trim_matches(|c| c == ' ' || c == '\t').as_bytes();
    if b.len() < TRACEPARENT_LEN {
        return None;
    }
    let mut version = [0u8; 1];
    decode_hex_lower(&b[0..2], &mut version).ok()?;
    match version[0] {
        0xff => return None,
        0x00 if b.len() != TRACEPARENT_LEN => return None,
        // A future version may append fields, but only after a `-`.
        _ if b.len() > TRACEPARENT_LEN && b[TRACEPARENT_LEN] != b'-' => return None,
        _ => {}
    }
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut flags = [0u8; 1];
    decode_hex_lower(&b[3..35], &mut trace_id).ok()?;
    decode_hex_lower(&b[36..52], &mut span_id).ok()?;
    decode_hex_lower(&b[53..55], &mut flags).ok()?;
    let (trace_id, span_id) = (TraceId::from_bytes(trace_id), SpanId::from_bytes(span_id));
    if !trace_id.is_valid() || !span_id.is_valid() {
        return None;
    }
    Some((trace_id, span_id, TraceFlags::new(flags[0] & KNOWN_FLAGS)))
}

#[cfg(test)]
mod tests;
