use super::ratio::{threshold_for, TWO_56};
use super::*;
use crate::data::id::seeded_trace_ids;
use crate::data::trace_state::Threshold;
use crate::data::{SpanId, TraceFlags};

fn tid(hex: &str) -> TraceId {
    hex.parse().unwrap()
}

fn root(trace_id: TraceId) -> SamplingParameters<'static> {
    SamplingParameters {
        parent: None,
        trace_id,
        name: "n",
        kind: SpanKind::Internal,
        attributes: &[],
        links: &[],
    }
}

fn decide(s: &dyn Sampler, trace_id: &str) -> SamplingResult {
    s.should_sample(&root(tid(trace_id)))
}

const SAMPLE: SamplingDecision = SamplingDecision::RecordAndSample;
const DROP: SamplingDecision = SamplingDecision::Drop;

/// Spec §2.4: (trace id, p, full threshold, P4 threshold, full decision, P4 decision).
const VECTORS: &[(&str, f64, u64, u64, SamplingDecision, SamplingDecision)] = &[
    (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        1.0,
        0,
        0,
        SAMPLE,
        SAMPLE,
    ),
    (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        0.25,
        0xc0000000000000,
        0xc0000000000000,
        SAMPLE,
        SAMPLE,
    ),
    (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        0.1,
        0xe6666666666666,
        0xe6660000000000,
        DROP,
        DROP,
    ),
    (
        "0af7651916cd43dd8448eb211c80319c",
        0.5,
        0x80000000000000,
        0x80000000000000,
        DROP,
        DROP,
    ),
    (
        "00000000000000000080000000000000",
        0.5,
        0x80000000000000,
        0x80000000000000,
        SAMPLE,
        SAMPLE,
    ),
    (
        "0000000000000000007fffffffffffff",
        0.5,
        0x80000000000000,
        0x80000000000000,
        DROP,
        DROP,
    ),
    (
        "5b8efff798038103d2e7000000000000",
        0.1,
        0xe6666666666666,
        0xe6660000000000,
        SAMPLE,
        SAMPLE,
    ),
    (
        "5b8efff798038103d2fd70a400000000",
        0.01,
        0xfd70a3d70a3d71,
        0xfd70a000000000,
        SAMPLE,
        SAMPLE,
    ),
    (
        "5b8efff798038103d2fd70a200000000",
        0.01,
        0xfd70a3d70a3d71,
        0xfd70a000000000,
        DROP,
        SAMPLE,
    ),
    (
        "5b8efff798038103d2fd70a3d70a3d70",
        0.01,
        0xfd70a3d70a3d71,
        0xfd70a000000000,
        DROP,
        SAMPLE,
    ),
    (
        "12345678901234567890123456789012",
        1.0 / 3.0,
        0xaaaaaaaaaaaaac,
        0xaaab0000000000,
        DROP,
        DROP,
    ),
    (
        "12345678901234567890123456789012",
        0.75,
        0x40000000000000,
        0x40000000000000,
        SAMPLE,
        SAMPLE,
    ),
];

#[test]
fn spec_vectors_at_full_and_default_precision() {
    for &(trace_id, p, t_full, t_p4, d_full, d_p4) in VECTORS {
        let full = TraceIdRatioBased::with_precision(p, 14);
        let p4 = TraceIdRatioBased::new(p);
        assert_eq!(full.threshold(), Some(t_full), "full threshold for p={p}");
        assert_eq!(p4.threshold(), Some(t_p4), "P4 threshold for p={p}");
        for (sampler, t, d) in [(&full, t_full, d_full), (&p4, t_p4, d_p4)] {
            let r = decide(sampler, trace_id);
            assert_eq!(r.decision, d, "{trace_id} p={p} T={t:x}");
            let expected_ot =
                (d == SAMPLE).then(|| format!("th:{}", Threshold::new(t).unwrap().encode()));
            assert_eq!(r.trace_state.get("ot").map(str::to_string), expected_ot);
        }
    }
}

#[test]
fn spec_threshold_table_at_precisions_3_4_5() {
    let table: &[(f64, [&str; 3])] = &[
        (1.0 / 3.0, ["aab", "aaab", "aaaab"]),
        (0.2, ["ccd", "cccd", "ccccd"]),
        (0.1, ["e66", "e666", "e6666"]),
        (0.01, ["fd71", "fd70a", "fd70a4"]),
        (0.001, ["ffbe7", "ffbe77", "ffbe76d"]),
        (1e-4, ["fff972", "fff9724", "fff97247"]),
        (0.5, ["8", "8", "8"]),
        (0.25, ["c", "c", "c"]),
        (0.125, ["e", "e", "e"]),
        (1.0 / 16.0, ["f", "f", "f"]),
    ];
    for (p, digits) in table {
        for (i, precision) in [3, 4, 5].into_iter().enumerate() {
            let t = threshold_for(*p, precision).unwrap();
            assert_eq!(
                Threshold::new(t).unwrap().encode(),
                digits[i],
                "p={p} precision={precision}"
            );
        }
    }
}

#[test]
fn rv_overrides_trace_id_randomness() {
    let s = TraceIdRatioBased::new(0.5);
    for (rv, expected) in [("7479cfb506891d", DROP), ("80000000000000", SAMPLE)] {
        let parent = SpanContext::new(
            tid("ffffffffffffffffffffffffffffffff"),
            SpanId::from_bytes([1; 8]),
            TraceFlags::SAMPLED,
            true,
            TraceState::parse(&format!("ot=rv:{rv}")).unwrap(),
        );
        let r = s.should_sample(&SamplingParameters {
            parent: Some(&parent),
            ..root(parent.trace_id())
        });
        assert_eq!(r.decision, expected, "rv={rv}");
        if expected == SAMPLE {
            assert_eq!(r.trace_state.header(), "ot=th:8;rv:80000000000000");
        } else {
            assert_eq!(r.trace_state.header(), format!("ot=rv:{rv}"));
        }
    }
}

#[test]
fn sample_replaces_parent_th_and_drop_removes_it() {
    let parent_state = TraceState::parse("vendor=x,ot=th:c;rv:ffffffffffffff").unwrap();
    let parent = SpanContext::new(
        tid("4bf92f3577b34da6a3ce929d0e0e4736"),
        SpanId::from_bytes([1; 8]),
        TraceFlags::new(3),
        false,
        parent_state,
    );
    let keep = TraceIdRatioBased::new(0.5).should_sample(&SamplingParameters {
        parent: Some(&parent),
        ..root(parent.trace_id())
    });
    assert_eq!(keep.decision, SAMPLE);
    assert_eq!(
        keep.trace_state.header(),
        "ot=th:8;rv:ffffffffffffff,vendor=x"
    );
    let low = SpanContext::new(
        parent.trace_id(),
        parent.span_id(),
        parent.trace_flags(),
        false,
        TraceState::parse("vendor=x,ot=th:c").unwrap(),
    );
    let drop = TraceIdRatioBased::new(0.01).should_sample(&SamplingParameters {
        parent: Some(&low),
        ..root(low.trace_id())
    });
    assert_eq!(drop.decision, DROP);
    assert_eq!(drop.trace_state.header(), "vendor=x");
}

#[test]
fn ratio_edge_cases() {
    let zero = TraceIdRatioBased::new(0.0);
    assert_eq!(
        decide(&zero, "ffffffffffffffffffffffffffffffff").decision,
        DROP
    );
    let one = TraceIdRatioBased::new(1.0);
    let r = decide(&one, "00000000000000000000000000000001");
    assert_eq!(r.decision, SAMPLE);
    assert_eq!(r.trace_state.header(), "ot=th:0");
    let more = TraceIdRatioBased::new(7.0);
    assert_eq!(more.threshold(), Some(0));
    for bad in [f64::NAN, -0.5] {
        let s = TraceIdRatioBased::new(bad);
        assert_eq!(
            decide(&s, "ffffffffffffffffffffffffffffffff").decision,
            DROP
        );
    }
    // Below 2^-56 nothing can be sampled: behaves as AlwaysOff.
    assert_eq!(
        TraceIdRatioBased::with_precision(1e-18, 14).threshold(),
        None
    );
    assert_eq!(
        TraceIdRatioBased::new(0.0001).description(),
        "TraceIdRatioBased{0.000100}"
    );
}

#[test]
fn sampled_fraction_within_four_sigma() {
    // Fixed seed: the same million ids on every run, so the 4-sigma bound
    // (which random ids would miss about once in 16,000 checks) passes or fails
    // for good.
    let ids: Vec<TraceId> = seeded_trace_ids(0x5eed_0001).take(1_000_000).collect();
    for p in [0.001, 0.01, 0.05, 0.1, 0.25, 1.0 / 3.0, 0.5, 0.9] {
        for sampler in [TraceIdRatioBased::new(p), TraceIdRatioBased::legacy(p)] {
            let kept = ids
                .iter()
                .filter(|t| sampler.should_sample(&root(**t)).decision == SAMPLE)
                .count() as f64;
            // The probability actually used is (2^56 - T) / 2^56 at P4.
            let q = sampler
                .threshold()
                .map_or(p, |t| (TWO_56 - t) as f64 / TWO_56 as f64);
            let n = ids.len() as f64;
            let sigma = (n * q * (1.0 - q)).sqrt();
            assert!(
                (kept - n * q).abs() <= 4.0 * sigma,
                "p={p} kept={kept} expected={}",
                n * q
            );
        }
    }
}

#[test]
fn consistent_across_ratios() {
    let ratios = [0.01, 0.05, 0.1, 0.2, 0.5, 0.75, 0.9, 1.0];
    let samplers: Vec<_> = ratios.iter().map(|p| TraceIdRatioBased::new(*p)).collect();
    for t in seeded_trace_ids(0x5eed_0002).take(50_000) {
        let mut seen = false;
        for s in &samplers {
            let sampled = s.should_sample(&root(t)).decision == SAMPLE;
            assert!(
                !seen || sampled,
                "sampled at a lower ratio but not at a higher one"
            );
            seen |= sampled;
        }
    }
}

#[test]
fn legacy_matches_go_and_rust_table() {
    for (trace_id, p, expected) in [
        ("4bf92f3577b34da6a3ce929d0e0e4736", 0.75, SAMPLE),
        ("4bf92f3577b34da6a3ce929d0e0e4736", 0.5, DROP),
        ("0af7651916cd43dd8448eb211c80319c", 0.6, SAMPLE),
        ("12345678901234567890123456789012", 0.5, SAMPLE),
        ("0000000000000000ffffffffffffffff", 0.01, DROP),
    ] {
        let r = decide(&TraceIdRatioBased::legacy(p), trace_id);
        assert_eq!(r.decision, expected, "{trace_id} {p}");
        assert!(r.trace_state.is_empty(), "legacy writes no th");
    }
    assert_eq!(
        decide(
            &TraceIdRatioBased::legacy(1.0),
            "ffffffffffffffffffffffffffffffff"
        )
        .decision,
        SAMPLE
    );
}

#[test]
fn parent_based_matrix() {
    let sampler = ParentBased::new(AlwaysOff)
        .with_remote_parent_not_sampled(AlwaysOn)
        .with_local_parent_sampled(AlwaysOff);
    let ctx = |remote: bool, sampled: bool| {
        SpanContext::new(
            tid("4bf92f3577b34da6a3ce929d0e0e4736"),
            SpanId::from_bytes([1; 8]),
            TraceFlags::NONE.with_sampled(sampled),
            remote,
            TraceState::EMPTY,
        )
    };
    let d = |parent: Option<&SpanContext>| {
        sampler
            .should_sample(&SamplingParameters {
                parent,
                ..root(tid("4bf92f3577b34da6a3ce929d0e0e4736"))
            })
            .decision
    };
    assert_eq!(d(None), DROP); // root -> AlwaysOff
    assert_eq!(d(Some(&ctx(true, true))), SAMPLE); // default AlwaysOn
    assert_eq!(d(Some(&ctx(true, false))), SAMPLE); // overridden to AlwaysOn
    assert_eq!(d(Some(&ctx(false, true))), DROP); // overridden to AlwaysOff
    assert_eq!(d(Some(&ctx(false, false))), DROP); // default AlwaysOff
    let default = ParentBased::new(AlwaysOn);
    assert_eq!(
        default.description(),
        "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}"
    );
    // Parent trace state passes through unchanged.
    let with_state = SpanContext::new(
        tid("4bf92f3577b34da6a3ce929d0e0e4736"),
        SpanId::from_bytes([1; 8]),
        TraceFlags::SAMPLED,
        true,
        TraceState::parse("ot=th:c,k=v").unwrap(),
    );
    let r = default.should_sample(&SamplingParameters {
        parent: Some(&with_state),
        ..root(with_state.trace_id())
    });
    assert_eq!(r.trace_state.header(), "ot=th:c,k=v");
}

#[test]
fn drop_without_th_leaves_trace_state_in_place() {
    let parent = SpanContext::new(
        tid("4bf92f3577b34da6a3ce929d0e0e4736"),
        SpanId::from_bytes([1; 8]),
        TraceFlags::SAMPLED,
        true,
        TraceState::parse("a=1,ot=rv:00000000000001").unwrap(),
    );
    let r = TraceIdRatioBased::new(0.5).should_sample(&SamplingParameters {
        parent: Some(&parent),
        ..root(parent.trace_id())
    });
    assert_eq!(r.decision, DROP);
    assert_eq!(r.trace_state.header(), "a=1,ot=rv:00000000000001");
}

#[test]
fn fixed_decisions_of_the_built_in_samplers() {
    use SamplingDecision::{Drop, RecordAndSample};
    assert_eq!(
        AlwaysOn.fixed_decisions(),
        Some(FixedDecisions::uniform(RecordAndSample))
    );
    assert_eq!(
        AlwaysOff.fixed_decisions(),
        Some(FixedDecisions::uniform(Drop))
    );
    assert_eq!(
        TraceIdRatioBased::new(0.0).fixed_decisions(),
        Some(FixedDecisions::uniform(Drop))
    );
    // A ratio looks at the trace id and writes `ot=th`: it must be called.
    assert_eq!(TraceIdRatioBased::new(0.5).fixed_decisions(), None);
    assert_eq!(TraceIdRatioBased::new(1.0).fixed_decisions(), None);
    assert_eq!(
        ParentBased::new(TraceIdRatioBased::new(0.5)).fixed_decisions(),
        None
    );
    let pb = ParentBased::new(AlwaysOff)
        .with_remote_parent_sampled(AlwaysOff)
        .with_local_parent_not_sampled(AlwaysOn);
    assert_eq!(
        pb.fixed_decisions(),
        Some(FixedDecisions {
            root: Drop,
            remote_sampled: Drop,
            remote_not_sampled: Drop,
            local_sampled: RecordAndSample,
            local_not_sampled: RecordAndSample,
        })
    );
    let boxed: Box<dyn Sampler> = Box::new(ParentBased::new(AlwaysOn));
    assert_eq!(
        boxed.fixed_decisions(),
        ParentBased::new(AlwaysOn).fixed_decisions()
    );
}

#[test]
fn fixed_decisions_follow_the_parent_kind() {
    let fixed = ParentBased::new(AlwaysOff)
        .with_remote_parent_not_sampled(AlwaysOn)
        .fixed_decisions()
        .unwrap();
    let parent = |remote, sampled| {
        SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::new(0).with_sampled(sampled),
            remote,
            Default::default(),
        )
    };
    assert_eq!(fixed.for_parent(None), SamplingDecision::Drop);
    assert_eq!(
        fixed.for_parent(Some(&parent(true, false))),
        SamplingDecision::RecordAndSample
    );
    assert_eq!(
        fixed.for_parent(Some(&parent(false, true))),
        SamplingDecision::RecordAndSample
    );
    assert_eq!(
        fixed.for_parent(Some(&parent(false, false))),
        SamplingDecision::Drop
    );
}
