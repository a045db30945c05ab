//! [`SpanContext`]: the identity of a span as it propagates across threads and
//! processes (ids, [`TraceFlags`], trace state, remoteness).

use super::id::{SpanId, TraceId};
use super::trace_state::TraceState;

/// W3C trace flags: sampled (0x01) and random (0x02).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TraceFlags(u8);

impl TraceFlags {
    /// The sampled bit.
    pub const SAMPLED: TraceFlags = TraceFlags(0x01);
    /// The W3C Level 2 random trace-id bit.
    pub const RANDOM: TraceFlags = TraceFlags(0x02);
    /// No flag set.
    pub const NONE: TraceFlags = TraceFlags(0);

    /// Wraps the raw byte.
    pub const fn new(bits: u8) -> Self {
        TraceFlags(bits)
    }
    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Whether the sampled bit is set.
    pub const fn is_sampled(self) -> bool {
        self.0 & 0x01 != 0
    }
    /// Whether the random bit is set.
    pub const fn is_random(self) -> bool {
        self.0 & 0x02 != 0
    }
    /// These flags with the sampled bit set or cleared.
    pub const fn with_sampled(self, sampled: bool) -> Self {
        if sampled {
            TraceFlags(self.0 | 0x01)
        } else {
            TraceFlags(self.0 & !0x01)
        }
    }
}

/// The identity of a span as it propagates: ids, flags, trace state, remoteness.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SpanContext {
    trace_id: TraceId,
    span_id: SpanId,
    flags: TraceFlags,
    is_remote: bool,
    trace_state: TraceState,
}

impl SpanContext {
    /// The invalid context (all-zero ids).
    pub const INVALID: SpanContext = SpanContext {
        trace_id: TraceId::INVALID,
        span_id: SpanId::INVALID,
        flags: TraceFlags::NONE,
        is_remote: false,
        trace_state: TraceState::EMPTY,
    };

    /// Builds a span context.
    pub fn new(
        trace_id: TraceId,
        span_id: SpanId,
        flags: TraceFlags,
        is_remote: bool,
        trace_state: TraceState,
    ) -> Self {
        SpanContext {
            trace_id,
            span_id,
            flags,
            is_remote,
            trace_state,
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }
    /// The span id.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }
    /// The trace flags.
    pub fn trace_flags(&self) -> TraceFlags {
        self.flags
    }
    /// Whether the sampled flag is set.
    pub fn is_sampled(&self) -> bool {
        self.flags.is_sampled()
    }
    /// Whether this context was extracted from another process.
    pub fn is_remote(&self) -> bool {
        self.is_remote
    }
    /// The trace state.
    pub fn trace_state(&self) -> &TraceState {
        &self.trace_state
    }
    /// Both ids are valid.
    pub fn is_valid(&self) -> bool {
        self.trace_id.is_valid() && self.span_id.is_valid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_bits() {
        let f = TraceFlags::new(0x03);
        assert!(f.is_sampled() && f.is_random());
        assert_eq!(f.with_sampled(false).bits(), 0x02);
    }
}
