//! [`TraceIdRatioBased`]: the W3C Level 2 consistent probability sampler.
//!
//! It implements OpenTelemetry's `ProbabilitySampler` (formerly specified under
//! the `TraceIdRatioBased` name): randomness `R` is the parent's `ot=rv` or the
//! low 56 bits of the trace id, the rejection threshold is `T = (1 - p) * 2^56`
//! rounded to a few hex digits, and a span is sampled iff `R >= T`. Sampled spans
//! carry `ot=th:<T>` in their trace state so downstream systems know the sampling
//! probability. [`TraceIdRatioBased::legacy`] reproduces the older decision of
//! opentelemetry-go and opentelemetry-rust bit for bit, for mixed fleets.

use super::{FixedDecisions, Sampler, SamplingDecision, SamplingParameters, SamplingResult};
use crate::data::trace_state::{OtState, Threshold};
use crate::data::TraceState;
use crate::diagnostics::{self, OnceFlag};

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
                    root_state: TraceState::EMPTY.with_ot(&OtState {
                        th: Threshold::new(threshold),
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

pub(super) const TWO_56: u64 = 1 << 56;

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
                    ot.th = Threshold::new(*threshold);
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
