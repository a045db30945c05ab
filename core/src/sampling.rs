//! Samplers: which spans are recorded and exported.
//!
//! [`TraceIdRatioBased`] implements the W3C Level 2 consistent probability
//! algorithm (OpenTelemetry's `ProbabilitySampler`, formerly specified under the
//! `TraceIdRatioBased` name): randomness `R` is the parent's `ot=rv` or the low 56
//! bits of the trace id, the rejection threshold is `T = (1 - p) * 2^56` rounded to
//! a few hex digits, and a span is sampled iff `R >= T`. Sampled spans carry
//! `ot=th:<T>` in their trace state so downstream systems know the sampling
//! probability. [`TraceIdRatioBased::legacy`] reproduces the older decision of
//! opentelemetry-go and opentelemetry-rust bit for bit, for mixed fleets.

use crate::attribute::KeyValue;
use crate::context::SpanContext;
use crate::diagnostics::{self, OnceFlag};
use crate::export::Link;
use crate::id::TraceId;
use crate::span::SpanKind;
use crate::trace_state::{Threshold, TraceState};
use std::fmt;

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

/// Default number of hex digits of the threshold (the spec's recommendation).
pub const DEFAULT_PRECISION: u32 = 4;

/// The spec's new name for the consistent probability sampler.
pub type ProbabilitySampler = TraceIdRatioBased;

/// Samples a fraction of traces, consistently across services and SDKs that use
/// W3C Level 2 randomness (see the module docs).
#[derive(Debug, Clone)]
pub struct TraceIdRatioBased {
    ratio: f64,
    mode: RatioMode,
}

#[derive(Debug, Clone)]
enum RatioMode {
    /// Never sample (ratio 0, or below 2^-56, or rejected input).
    Never,
    /// Consistent: sample iff R >= threshold; `root_state` is `ot=th:..` for a
    /// root span (precomputed: it is the same for every root span).
    Consistent {
        threshold: u64,
        root_state: TraceState,
    },
    /// opentelemetry-go/-rust: sample iff (low 64 bits >> 1) < bound.
    Legacy { bound: u64, always: bool },
}

static WARN_CHILD_USE: OnceFlag = OnceFlag::new();
static WARN_NOT_RANDOM: OnceFlag = OnceFlag::new();

impl TraceIdRatioBased {
    /// The consistent sampler with the default precision (4 hex digits).
    ///
    /// Ratio 0 behaves as AlwaysOff; ratio >= 1 keeps everything and writes
    /// `th:0`; NaN or negative is rejected with a warning (and samples nothing).
    pub fn new(ratio: f64) -> Self {
        Self::with_precision(ratio, DEFAULT_PRECISION)
    }

    /// The consistent sampler keeping `precision` (1..=14, clamped) hex digits of the
    /// threshold; 14 is full precision. Below 14, the specification's algorithm
    /// adds one digit per leading `f` and keeps at most 12.
    pub fn with_precision(ratio: f64, precision: u32) -> Self {
        let precision = precision.clamp(1, 14);
        let mode = match checked_ratio(ratio) {
            None => RatioMode::Never,
            Some(p) => match threshold_for(p, precision) {
                None => RatioMode::Never,
                Some(threshold) => RatioMode::Consistent {
                    threshold,
                    root_state: TraceState::EMPTY.with_ot(&crate::trace_state::OtState {
                        th: Some(Threshold(threshold)),
                        ..Default::default()
                    }),
                },
            },
        };
        TraceIdRatioBased { ratio, mode }
    }

    /// The legacy decision of opentelemetry-go and opentelemetry-rust, bit for bit:
    /// sample iff `(low 64 bits of the trace id) >> 1 < ratio * 2^63`. Writes no `th`.
    pub fn legacy(ratio: f64) -> Self {
        let mode = match checked_ratio(ratio) {
            None => RatioMode::Never,
            Some(p) if p >= 1.0 => RatioMode::Legacy {
                bound: 0,
                always: true,
            },
            Some(p) => RatioMode::Legacy {
                bound: (p * (1u64 << 63) as f64) as u64,
                always: false,
            },
        };
        TraceIdRatioBased { ratio, mode }
    }

    /// The rejection threshold in use (`None` when it never samples or in legacy mode).
    pub fn threshold(&self) -> Option<u64> {
        match self.mode {
            RatioMode::Consistent { threshold, .. } => Some(threshold),
            _ => None,
        }
    }
}

/// `Some(p)` for a usable ratio (> 0, ratios above 1 are 1); warns on NaN/negative.
fn checked_ratio(ratio: f64) -> Option<f64> {
    if ratio.is_nan() || ratio < 0.0 {
        diagnostics::warn(&format!(
            "sampling ratio {ratio} is not a probability; this sampler drops every span"
        ));
        return None;
    }
    if ratio == 0.0 {
        return None;
    }
    Some(ratio.min(1.0))
}

const TWO_56: u64 = 1 << 56;

/// The rejection threshold T for probability `p` (0 < p <= 1), or `None` if `p` is
/// too small to sample anything.
///
/// Precision 14 is the exact `2^56 - round(p * 2^56)`; smaller precisions follow
/// the specification's algorithm: round `1 - p` half up to `precision` hex digits,
/// plus one digit per leading `f` (capped at 12 digits).
pub(crate) fn threshold_for(p: f64, precision: u32) -> Option<u64> {
    if p >= 1.0 {
        return Some(0);
    }
    let t = if precision >= 14 {
        let kept = (p * TWO_56 as f64).round() as u64;
        TWO_56.saturating_sub(kept)
    } else {
        let e = frexp_exponent(p);
        let digits = (precision as i32 + (-e).div_euclid(4)).clamp(1, 12) as u32;
        let x = (2.0 - p) + 2f64.powi(-4 * digits as i32 - 1);
        if x >= 2.0 {
            // 13 digits of f, as in the specification.
            0x00ff_ffff_ffff_fff0
        } else {
            let mantissa = x.to_bits() & ((1u64 << 52) - 1); // 13 hex digits
            let kept = mantissa >> (4 * (13 - digits));
            kept << (4 * (14 - digits))
        }
    };
    (t < TWO_56).then_some(t)
}

/// The exponent `e` of `p = m * 2^e` with `m` in [0.5, 1) (C's `frexp`), for normal p > 0.
fn frexp_exponent(p: f64) -> i32 {
    let bits = p.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // subnormal: scale up first
        return frexp_exponent(p * 2f64.powi(64)) - 64;
    }
    biased - 1022
}

impl Sampler for TraceIdRatioBased {
    fn should_sample(&self, p: &SamplingParameters<'_>) -> SamplingResult {
        let parent_state = p.parent_trace_state();
        match &self.mode {
            RatioMode::Never => SamplingResult::new(SamplingDecision::Drop, parent_state),
            RatioMode::Legacy { bound, always } => {
                if p.parent.is_some() && WARN_CHILD_USE.first() {
                    diagnostics::warn("TraceIdRatioBased (legacy) is deciding for a span with a parent: wrap it in ParentBased so only root spans use it");
                }
                let x = p.trace_id.low_64_bits() >> 1;
                let decision = if *always || x < *bound {
                    SamplingDecision::RecordAndSample
                } else {
                    SamplingDecision::Drop
                };
                SamplingResult::new(decision, parent_state)
            }
            RatioMode::Consistent {
                threshold,
                root_state,
            } => {
                if p.parent.is_none() && parent_state.is_empty() {
                    // The common root case: no parsing, no allocation.
                    return if p.trace_id.low_56_bits() >= *threshold {
                        SamplingResult::new(SamplingDecision::RecordAndSample, root_state.clone())
                    } else {
                        SamplingResult::new(SamplingDecision::Drop, TraceState::EMPTY)
                    };
                }
                let mut ot = parent_state.ot();
                if let Some(parent) = p.parent {
                    if WARN_CHILD_USE.first() {
                        diagnostics::warn("TraceIdRatioBased is deciding for a span with a parent; its child behaviour may change (it is the spec's ProbabilitySampler): wrap it in ParentBased so only root spans use it");
                    }
                    if ot.rv.is_none()
                        && !parent.trace_flags().is_random()
                        && WARN_NOT_RANDOM.first()
                    {
                        diagnostics::warn("a parent's trace id is not flagged random (W3C Level 2) and has no ot=rv: it is presumed random; upgrade callers to W3C Level 2 trace ids");
                    }
                }
                let r = ot.rv.unwrap_or_else(|| p.trace_id.low_56_bits());
                if r >= *threshold {
                    ot.th = Some(Threshold(*threshold));
                    SamplingResult::new(
                        SamplingDecision::RecordAndSample,
                        parent_state.with_ot(&ot),
                    )
                } else if ot.th.take().is_some() {
                    SamplingResult::new(SamplingDecision::Drop, parent_state.with_ot(&ot))
                } else {
                    // Nothing to remove: the trace state passes through untouched.
                    SamplingResult::new(SamplingDecision::Drop, parent_state)
                }
            }
        }
    }

    fn description(&self) -> String {
        format!("TraceIdRatioBased{{{:.6}}}", self.ratio)
    }

    fn fixed_decisions(&self) -> Option<FixedDecisions> {
        // Ratio 0 drops everything and touches no trace state.
        matches!(self.mode, RatioMode::Never)
            .then_some(FixedDecisions::uniform(SamplingDecision::Drop))
    }
}

#[cfg(test)]
mod tests;
