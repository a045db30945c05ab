//! Samplers: which spans are recorded and exported.
//!
//! A [`Sampler`] decides for each new span; a sampler whose decision depends
//! only on the kind of parent reports it as [`FixedDecisions`], and the tracer
//! then decides without calling it. Built in: [`AlwaysOn`], [`AlwaysOff`],
//! [`ParentBased`], and the consistent ratio sampler [`TraceIdRatioBased`] in
//! [`ratio`].

use crate::config::SamplerConfig;
use crate::data::{KeyValue, Link, SpanContext, SpanKind, TraceId, TraceState};
use std::fmt;

pub mod ratio;

pub use ratio::{ProbabilitySampler, TraceIdRatioBased, DEFAULT_PRECISION};

/// What happens to a new span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplingDecision {
    /// Not recorded, not exported; the span is a cheap non-recording handle.
    Drop,
    /// Recorded and seen by processors, but not sampled: not exported.
    RecordOnly,
    /// Recorded, sampled and exported.
    RecordAndSample,
}

/// The inputs of a sampling decision.
#[derive(Debug)]
pub struct SamplingParameters<'a> {
    /// The valid parent context, if any (`None` for a root span).
    pub parent: Option<&'a SpanContext>,
    /// The new span's trace id (the parent's, or a new one).
    pub trace_id: TraceId,
    /// The span name.
    pub name: &'a str,
    /// The span kind.
    pub kind: SpanKind,
    /// Attributes given to the builder.
    pub attributes: &'a [KeyValue],
    /// Links given to the builder.
    pub links: &'a [Link],
}

impl SamplingParameters<'_> {
    /// The parent's trace state, or the empty one.
    pub fn parent_trace_state(&self) -> TraceState {
        self.parent
            .map(|p| p.trace_state().clone())
            .unwrap_or_default()
    }
}

/// A sampler's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingResult {
    /// The decision.
    pub decision: SamplingDecision,
    /// Extra attributes for the span.
    pub attributes: Vec<KeyValue>,
    /// The trace state of the new span (normally the parent's).
    pub trace_state: TraceState,
}

impl SamplingResult {
    fn new(decision: SamplingDecision, trace_state: TraceState) -> Self {
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state,
        }
    }
}

/// Decides whether a span is recorded and sampled. Must be thread-safe and fast:
/// it runs on the application thread for every span.
pub trait Sampler: Send + Sync + fmt::Debug {
    /// Decides for a new span.
    fn should_sample(&self, params: &SamplingParameters<'_>) -> SamplingResult;
    /// A description such as `AlwaysOnSampler`.
    fn description(&self) -> String;
    /// The sampler's decisions, if they depend only on the kind of parent (none,
    /// remote or local, sampled or not), add no attributes and keep the parent's
    /// trace state: the tracer then decides without calling
    /// [`should_sample`](Self::should_sample). The default, `None`, means "call me".
    ///
    /// ```
    /// use runtrace::sampling::{AlwaysOff, ParentBased, Sampler, SamplingDecision};
    /// let fixed = ParentBased::new(AlwaysOff).fixed_decisions().unwrap();
    /// assert_eq!(fixed.root, SamplingDecision::Drop);
    /// assert_eq!(fixed.local_sampled, SamplingDecision::RecordAndSample);
    /// ```
    fn fixed_decisions(&self) -> Option<FixedDecisions> {
        None
    }
}

impl Sampler for Box<dyn Sampler> {
    fn should_sample(&self, params: &SamplingParameters<'_>) -> SamplingResult {
        (**self).should_sample(params)
    }
    fn description(&self) -> String {
        (**self).description()
    }
    fn fixed_decisions(&self) -> Option<FixedDecisions> {
        (**self).fixed_decisions()
    }
}

/// A sampler's decision for each kind of parent (see [`Sampler::fixed_decisions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedDecisions {
    /// No parent.
    pub root: SamplingDecision,
    /// A sampled parent from another process.
    pub remote_sampled: SamplingDecision,
    /// A not-sampled parent from another process.
    pub remote_not_sampled: SamplingDecision,
    /// A sampled parent in this process.
    pub local_sampled: SamplingDecision,
    /// A not-sampled parent in this process.
    pub local_not_sampled: SamplingDecision,
}

impl FixedDecisions {
    /// The same decision whatever the parent.
    pub const fn uniform(decision: SamplingDecision) -> Self {
        FixedDecisions {
            root: decision,
            remote_sampled: decision,
            remote_not_sampled: decision,
            local_sampled: decision,
            local_not_sampled: decision,
        }
    }

    /// Whether any kind of parent gets [`SamplingDecision::RecordOnly`].
    pub(crate) fn any_record_only(&self) -> bool {
        [
            self.root,
            self.remote_sampled,
            self.remote_not_sampled,
            self.local_sampled,
            self.local_not_sampled,
        ]
        .contains(&SamplingDecision::RecordOnly)
    }

    /// The decision for a span with this parent.
    #[inline]
    pub fn for_parent(&self, parent: Option<&SpanContext>) -> SamplingDecision {
        match parent {
            None => self.root,
            Some(p) => match (p.is_remote(), p.is_sampled()) {
                (true, true) => self.remote_sampled,
                (true, false) => self.remote_not_sampled,
                (false, true) => self.local_sampled,
                (false, false) => self.local_not_sampled,
            },
        }
    }
}

/// Samples every span.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysOn;

impl Sampler for AlwaysOn {
    fn should_sample(&self, p: &SamplingParameters<'_>) -> SamplingResult {
        SamplingResult::new(SamplingDecision::RecordAndSample, p.parent_trace_state())
    }
    fn description(&self) -> String {
        "AlwaysOnSampler".to_string()
    }
    fn fixed_decisions(&self) -> Option<FixedDecisions> {
        Some(FixedDecisions::uniform(SamplingDecision::RecordAndSample))
    }
}

/// Drops every span.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysOff;

impl Sampler for AlwaysOff {
    fn should_sample(&self, p: &SamplingParameters<'_>) -> SamplingResult {
        SamplingResult::new(SamplingDecision::Drop, p.parent_trace_state())
    }
    fn description(&self) -> String {
        "AlwaysOffSampler".to_string()
    }
    fn fixed_decisions(&self) -> Option<FixedDecisions> {
        Some(FixedDecisions::uniform(SamplingDecision::Drop))
    }
}

/// Follows the parent's sampled flag; uses `root` for spans without a parent.
///
/// ```
/// use runtrace::sampling::{ParentBased, TraceIdRatioBased};
/// let sampler = ParentBased::new(TraceIdRatioBased::new(0.1));
/// ```
#[derive(Debug)]
pub struct ParentBased {
    root: Box<dyn Sampler>,
    remote_parent_sampled: Box<dyn Sampler>,
    remote_parent_not_sampled: Box<dyn Sampler>,
    local_parent_sampled: Box<dyn Sampler>,
    local_parent_not_sampled: Box<dyn Sampler>,
}

impl ParentBased {
    /// `root` for root spans; parents' decisions (AlwaysOn / AlwaysOff) otherwise.
    pub fn new(root: impl Sampler + 'static) -> Self {
        ParentBased {
            root: Box::new(root),
            remote_parent_sampled: Box::new(AlwaysOn),
            remote_parent_not_sampled: Box::new(AlwaysOff),
            local_parent_sampled: Box::new(AlwaysOn),
            local_parent_not_sampled: Box::new(AlwaysOff),
        }
    }
    /// Sampler for a sampled remote parent (default AlwaysOn).
    pub fn with_remote_parent_sampled(mut self, s: impl Sampler + 'static) -> Self {
        self.remote_parent_sampled = Box::new(s);
        self
    }
    /// Sampler for a not-sampled remote parent (default AlwaysOff).
    pub fn with_remote_parent_not_sampled(mut self, s: impl Sampler + 'static) -> Self {
        self.remote_parent_not_sampled = Box::new(s);
        self
    }
    /// Sampler for a sampled local parent (default AlwaysOn).
    pub fn with_local_parent_sampled(mut self, s: impl Sampler + 'static) -> Self {
        self.local_parent_sampled = Box::new(s);
        self
    }
    /// Sampler for a not-sampled local parent (default AlwaysOff).
    pub fn with_local_parent_not_sampled(mut self, s: impl Sampler + 'static) -> Self {
        self.local_parent_not_sampled = Box::new(s);
        self
    }
}

impl Sampler for ParentBased {
    fn should_sample(&self, p: &SamplingParameters<'_>) -> SamplingResult {
        let delegate = match p.parent {
            None => &self.root,
            Some(parent) => match (parent.is_remote(), parent.is_sampled()) {
                (true, true) => &self.remote_parent_sampled,
                (true, false) => &self.remote_parent_not_sampled,
                (false, true) => &self.local_parent_sampled,
                (false, false) => &self.local_parent_not_sampled,
            },
        };
        delegate.should_sample(p)
    }

    fn description(&self) -> String {
        format!(
            "ParentBased{{root:{},remoteParentSampled:{},remoteParentNotSampled:{},localParentSampled:{},localParentNotSampled:{}}}",
            self.root.description(),
            self.remote_parent_sampled.description(),
            self.remote_parent_not_sampled.description(),
            self.local_parent_sampled.description(),
            self.local_parent_not_sampled.description()
        )
    }

    fn fixed_decisions(&self) -> Option<FixedDecisions> {
        // Each delegate is asked only about the kind of parent it is used for.
        Some(FixedDecisions {
            root: self.root.fixed_decisions()?.root,
            remote_sampled: self.remote_parent_sampled.fixed_decisions()?.remote_sampled,
            remote_not_sampled: self
                .remote_parent_not_sampled
                .fixed_decisions()?
                .remote_not_sampled,
            local_sampled: self.local_parent_sampled.fixed_decisions()?.local_sampled,
            local_not_sampled: self
                .local_parent_not_sampled
                .fixed_decisions()?
                .local_not_sampled,
        })
    }
}

impl SamplerConfig {
    /// Builds the sampler it names.
    pub fn build(self) -> Box<dyn Sampler> {
        match self {
            SamplerConfig::AlwaysOn => Box::new(AlwaysOn),
            SamplerConfig::AlwaysOff => Box::new(AlwaysOff),
            SamplerConfig::TraceIdRatio(r) => Box::new(TraceIdRatioBased::new(r)),
            SamplerConfig::ParentBasedAlwaysOn => Box::new(ParentBased::new(AlwaysOn)),
            SamplerConfig::ParentBasedAlwaysOff => Box::new(ParentBased::new(AlwaysOff)),
            SamplerConfig::ParentBasedTraceIdRatio(r) => {
                Box::new(ParentBased::new(TraceIdRatioBased::new(r)))
            }
        }
    }
}

#[cfg(test)]
mod tests;
