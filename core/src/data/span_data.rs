//! [`SpanData`]: an ended span as processors and exporters receive it, with
//! its [`Event`]s, [`Link`]s, [`SpanKind`] and [`Status`].

use super::attribute::{KeyValue, Str};
use super::id::SpanId;
use super::instrumentation::Instrumentation;
use super::span_context::SpanContext;

/// The role of a span in a trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// An internal operation (the default).
    #[default]
    Internal,
    /// Handles an incoming request.
    Server,
    /// Makes an outgoing request.
    Client,
    /// Emits a message for later processing.
    Producer,
    /// Processes a message.
    Consumer,
}

/// The outcome of a span. Precedence: `Ok` > `Error` > `Unset`; `Ok` is final.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Status {
    /// No status set (the default).
    #[default]
    Unset,
    /// The operation succeeded (final).
    Ok,
    /// The operation failed.
    Error {
        /// What went wrong.
        description: Str,
    },
}

impl Status {
    /// An error status with a description.
    pub fn error(description: impl Into<Str>) -> Self {
        Status::Error {
            description: description.into(),
        }
    }
}

/// A time-stamped annotation on a span.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Event name.
    pub name: Str,
    /// When it happened, in nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// Attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes discarded by the per-event limit.
    pub dropped_attributes_count: u32,
}

/// A reference from a span to another span context.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The linked context.
    pub span_context: SpanContext,
    /// Attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes discarded by the per-link limit.
    pub dropped_attributes_count: u32,
}

/// An ended span, as exporters receive it.
#[derive(Clone, Debug)]
pub struct SpanData {
    /// The span's own context (ids, flags, trace state).
    pub span_context: SpanContext,
    /// The parent's span id; invalid for a root span.
    pub parent_span_id: SpanId,
    /// Whether the parent came from another process.
    pub parent_is_remote: bool,
    /// Span name.
    pub name: Str,
    /// Span kind.
    pub kind: SpanKind,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_time_unix_nano: u64,
    /// End, in nanoseconds since the Unix epoch.
    pub end_time_unix_nano: u64,
    /// Attributes, each key once by the time a processor or exporter gets the
    /// span (a key set again keeps its last value, in its first place).
    pub attributes: Vec<KeyValue>,
    /// Attributes discarded by the count limit.
    pub dropped_attributes_count: u32,
    /// Events, links and status; `None` for a span that has none of them, the
    /// usual case. Read them with [`events`](Self::events),
    /// [`links`](Self::links) and [`status`](Self::status).
    pub details: Option<Box<SpanDetails>>,
    /// Instrumentation scope and resource.
    pub instrumentation: Instrumentation,
}

/// The parts of a span that most spans leave empty: events, links and status.
/// They live out of line, so that an ended span is small to queue and to copy
/// (three cache lines instead of four).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanDetails {
    /// Events in order.
    pub events: Vec<Event>,
    /// Events discarded by the count limit.
    pub dropped_events_count: u32,
    /// Links in order.
    pub links: Vec<Link>,
    /// Links discarded by the count limit.
    pub dropped_links_count: u32,
    /// Status.
    pub status: Status,
}

impl SpanData {
    /// A span as it starts: no attributes, events, links or status yet, and
    /// no end time. The tracer's one constructor of a recorded span; it sets
    /// the rest with struct update syntax.
    #[inline(always)]
    pub(crate) fn started(
        span_context: SpanContext,
        parent: Option<&SpanContext>,
        name: Str,
        kind: SpanKind,
        start_time_unix_nano: u64,
        instrumentation: Instrumentation,
    ) -> SpanData {
        SpanData {
            span_context,
            parent_span_id: parent.map_or(SpanId::INVALID, |p| p.span_id()),
            parent_is_remote: parent.is_some_and(|p| p.is_remote()),
            name,
            kind,
            start_time_unix_nano,
            end_time_unix_nano: 0,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            details: None,
            instrumentation,
        }
    }

    /// Events in order.
    pub fn events(&self) -> &[Event] {
        self.details.as_ref().map_or(&[], |d| &d.events)
    }

    /// Events discarded by the count limit.
    pub fn dropped_events_count(&self) -> u32 {
        self.details.as_ref().map_or(0, |d| d.dropped_events_count)
    }

    /// Links in order.
    pub fn links(&self) -> &[Link] {
        self.details.as_ref().map_or(&[], |d| &d.links)
    }

    /// Links discarded by the count limit.
    pub fn dropped_links_count(&self) -> u32 {
        self.details.as_ref().map_or(0, |d| d.dropped_links_count)
    }

    /// The status (`Unset` unless one was set).
    pub fn status(&self) -> &Status {
        static UNSET: Status = Status::Unset;
        self.details.as_ref().map_or(&UNSET, |d| &d.status)
    }

    /// The details, made (empty) on first use.
    ///
    /// ```
    /// # use runtrace::{Status, SpanData};
    /// # fn f(span: &mut SpanData) {
    /// span.details_mut().status = Status::error("timeout");
    /// assert_eq!(span.status(), &Status::error("timeout"));
    /// # }
    /// ```
    pub fn details_mut(&mut self) -> &mut SpanDetails {
        self.details.get_or_insert_with(Box::default)
    }
}
