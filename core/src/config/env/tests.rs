use super::*;
use std::collections::HashMap;

fn cfg(vars: &[(&str, &str)]) -> EnvConfig {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    EnvConfig::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_without_variables() {
    let c = cfg(&[]);
    assert!(!c.disabled);
    assert_eq!(c.sampler, SamplerConfig::ParentBasedAlwaysOn);
    assert_eq!(c.limits, SpanLimits::default());
    assert_eq!(c.batch, BatchConfig::default());
    assert!(c.warnings.is_empty());
}

#[test]
fn disabled_flags() {
    assert!(cfg(&[("OTEL_SDK_DISABLED", "TRUE")]).disabled);
    assert!(cfg(&[("ENABLE_TRACING", "false")]).disabled);
    assert!(!cfg(&[("ENABLE_TRACING", "true")]).disabled);
    assert!(!cfg(&[("OTEL_SDK_DISABLED", "")]).disabled);
    let bad = cfg(&[("OTEL_SDK_DISABLED", "yes")]);
    assert!(!bad.disabled);
    assert_eq!(bad.warnings.len(), 1);
    assert!(bad.warnings[0].contains("OTEL_SDK_DISABLED"));
}

#[test]
fn sampler_variables() {
    assert_eq!(
        cfg(&[
            ("OTEL_TRACES_SAMPLER", "TraceIdRatio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5")
        ])
        .sampler,
        SamplerConfig::TraceIdRatio(0.5)
    );
    assert_eq!(
        cfg(&[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")]).sampler,
        SamplerConfig::ParentBasedTraceIdRatio(1.0)
    );
    assert_eq!(
        cfg(&[("OTEL_TRACES_SAMPLER", "always_off")]).sampler,
        SamplerConfig::AlwaysOff
    );
    let bad_arg = cfg(&[
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
    ]);
    assert_eq!(bad_arg.sampler, SamplerConfig::TraceIdRatio(1.0));
    assert_eq!(bad_arg.warnings.len(), 1);
    let unknown = cfg(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]);
    assert_eq!(unknown.sampler, SamplerConfig::ParentBasedAlwaysOn);
    assert!(unknown.warnings[0].contains("jaeger_remote"));
    assert_eq!(
        cfg(&[("OTEL_SAMPLE_RATE", "0.1")]).sampler,
        SamplerConfig::ParentBasedTraceIdRatio(0.1)
    );
    let rate_bad = cfg(&[("OTEL_SAMPLE_RATE", "abc")]);
    assert_eq!(rate_bad.sampler, SamplerConfig::ParentBasedAlwaysOn);
    assert_eq!(rate_bad.warnings.len(), 1);
    let both = cfg(&[
        ("OTEL_SAMPLE_RATE", "0.1"),
        ("OTEL_TRACES_SAMPLER", "always_on"),
    ]);
    assert_eq!(both.sampler, SamplerConfig::AlwaysOn);
    assert_eq!(both.warnings.len(), 1);
}

#[test]
fn resource_attributes_are_percent_decoded_or_discarded() {
    let c = cfg(&[(
        "OTEL_RESOURCE_ATTRIBUTES",
        "deployment.environment.name=prod, team = a%2Cb%3Dc ,note=caf%C3%A9",
    )]);
    assert_eq!(
        c.resource_attributes,
        vec![
            KeyValue::new("deployment.environment.name", "prod"),
            KeyValue::new("team", "a,b=c"),
            KeyValue::new("note", "café"),
        ]
    );
    for bad in ["a=%zz", "novalue", "a=%C3", "=v"] {
        let c = cfg(&[("OTEL_RESOURCE_ATTRIBUTES", bad)]);
        assert!(c.resource_attributes.is_empty(), "{bad}");
        assert_eq!(c.warnings.len(), 1, "{bad}");
    }
}

#[test]
fn limits_prefer_specific_then_general() {
    let c = cfg(&[
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "5"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "0"),
        ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "-1"),
    ]);
    assert_eq!(c.limits.max_attributes_per_span, 5);
    assert_eq!(c.limits.max_attributes_per_event, 10);
    assert_eq!(c.limits.max_attributes_per_link, 10); // bad value -> general fallback
    assert_eq!(c.limits.max_events_per_span, 0);
    assert_eq!(c.limits.max_attribute_value_length, Some(64));
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn batch_variables_with_clamping_and_bad_values() {
    let c = cfg(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500"),
        ("OTEL_BSP_SCHEDULE_DELAY", "250"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "0"),
    ]);
    assert_eq!(c.batch.max_queue_size, 100);
    assert_eq!(c.batch.max_export_batch_size, 100);
    assert_eq!(c.batch.scheduled_delay, Duration::from_millis(250));
    assert_eq!(c.batch.export_timeout, crate::config::NO_TIMEOUT);
    assert_eq!(c.warnings.len(), 1);
    let bad = cfg(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ("OTEL_BSP_SCHEDULE_DELAY", "5s"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "99999999999"),
    ]);
    assert_eq!(bad.batch, BatchConfig::default());
    assert_eq!(bad.warnings.len(), 3);
}
