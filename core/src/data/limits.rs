//! [`SpanLimits`]: how much one span may hold. A plain value: the provider's
//! configuration sets it, and every span of a tracer carries it with its scope.

/// Per-span limits (spec defaults: 128 of each, no value length limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanLimits {
    /// Attributes per span.
    pub max_attributes_per_span: usize,
    /// Events per span.
    pub max_events_per_span: usize,
    /// Links per span.
    pub max_links_per_span: usize,
    /// Attributes per event.
    pub max_attributes_per_event: usize,
    /// Attributes per link.
    pub max_attributes_per_link: usize,
    /// Maximum characters of a string value (`None` = no limit).
    pub max_attribute_value_length: Option<usize>,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits {
            max_attributes_per_span: 128,
            max_events_per_span: 128,
            max_links_per_span: 128,
            max_attributes_per_event: 128,
            max_attributes_per_link: 128,
            max_attribute_value_length: None,
        }
    }
}
