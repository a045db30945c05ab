//! Pure values, std only: what a span is made of and what crosses threads and
//! processes. Nothing here runs anything; the runtime layers above build and
//! move these values.
//!
//! - [`attribute`]: [`Key`], [`Value`], [`KeyValue`], [`Str`].
//! - [`id`]: [`TraceId`], [`SpanId`] and their generators.
//! - [`trace_state`]: W3C `tracestate` and the OpenTelemetry `ot` member.
//! - [`span_context`]: [`SpanContext`] and [`TraceFlags`].
//! - [`span_data`]: [`SpanData`] (an ended span), [`Event`], [`Link`],
//!   [`SpanKind`], [`Status`].
//! - [`instrumentation`]: the [`InstrumentationScope`] and [`Resource`] every span
//!   of a tracer shares ([`Instrumentation`]), with the [`SpanLimits`] its spans
//!   keep to; [`resource`]: [`Resource`].

pub mod attribute;
pub mod id;
pub mod instrumentation;
pub mod limits;
pub mod resource;
pub mod span_context;
pub mod span_data;
pub mod trace_state;

pub use attribute::{Array, InlineStr, Key, KeyValue, Str, Value};
pub use id::{IdGenerator, RandomIdGenerator, SpanId, TraceId};
pub(crate) use instrumentation::ScopeRun;
pub use instrumentation::{Instrumentation, InstrumentationScope};
pub use limits::SpanLimits;
pub use resource::Resource;
pub use span_context::{SpanContext, TraceFlags};
pub use span_data::{Event, Link, SpanData, SpanDetails, SpanKind, Status};
pub use trace_state::TraceState;
