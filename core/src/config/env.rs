//! Every environment variable the core reads, parsed in one place.
//!
//! Parsing follows the OpenTelemetry rules: an empty value is unset; booleans are
//! `true`/`false` (case-insensitive); numbers that do not parse or are out of range
//! give one warning and the default; unknown enum values give a warning and the
//! default. Nothing here panics. [`EnvConfig::from_lookup`] takes any lookup
//! function, so configuration can be tested without touching the process
//! environment.

use super::{BatchConfig, SpanLimits};
use crate::data::KeyValue;
use crate::diagnostics;
use std::time::Duration;

/// The sampler chosen by `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` and
/// `OTEL_SAMPLE_RATE`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SamplerConfig {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio` with this ratio (the consistent W3C Level 2 algorithm).
    TraceIdRatio(f64),
    /// `parentbased_always_on` (the default).
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`, or `OTEL_SAMPLE_RATE`.
    ParentBasedTraceIdRatio(f64),
}

/// The configuration read from the environment.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvConfig {
    /// `OTEL_SDK_DISABLED=true` or `ENABLE_TRACING=false`.
    pub disabled: bool,
    /// The sampler.
    pub sampler: SamplerConfig,
    /// `OTEL_SERVICE_NAME`.
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, decoded.
    pub resource_attributes: Vec<KeyValue>,
    /// The `OTEL_*_LIMIT` variables.
    pub limits: SpanLimits,
    /// The `OTEL_BSP_*` variables.
    pub batch: BatchConfig,
    /// One message per bad value, already reported through diagnostics by
    /// [`EnvConfig::from_env`].
    pub warnings: Vec<String>,
}

impl EnvConfig {
    /// Reads the process environment and reports bad values through diagnostics.
    pub fn from_env() -> Self {
        let cfg = Self::from_lookup(|k| std::env::var(k).ok());
        for w in &cfg.warnings {
            diagnostics::warn(w);
        }
        cfg
    }

    /// Reads variables through `lookup` without reporting; warnings are collected
    /// in [`EnvConfig::warnings`].
    ///
    /// ```
    /// use runtrace::env::{EnvConfig, SamplerConfig};
    /// let cfg = EnvConfig::from_lookup(|k| (k == "OTEL_SAMPLE_RATE").then(|| "0.25".to_string()));
    /// assert_eq!(cfg.sampler, SamplerConfig::ParentBasedTraceIdRatio(0.25));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut r = Reader {
            lookup: &lookup,
            warnings: Vec::new(),
        };
        let sdk_disabled = r.bool("OTEL_SDK_DISABLED", false);
        let enable_tracing = r.bool("ENABLE_TRACING", true);
        let sampler = r.sampler();
        let service_name = r.get("OTEL_SERVICE_NAME");
        let resource_attributes = r.resource_attributes();
        let limits = r.limits();
        let batch = r.batch();
        EnvConfig {
            disabled: sdk_disabled || !enable_tracing,
            sampler,
            service_name,
            resource_attributes,
            limits,
            batch,
            warnings: r.warnings,
        }
    }
}

struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    warnings: Vec<String>,
}

impl Reader<'_> {
    /// The trimmed value; empty means unset.
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn warn(&mut self, name: &str, value: &str, why: &str, default: &str) {
        self.warnings
            .push(format!("{name}={value:?} {why}; using {default}"));
    }

    fn bool(&mut self, name: &str, default: bool) -> bool {
        let Some(v) = self.get(name) else {
            return default;
        };
        match v.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                self.warn(name, &v, "is not true or false", &default.to_string());
                default
            }
        }
    }

    fn u32(&mut self, name: &str) -> Option<u32> {
        let v = self.get(name)?;
        match v.parse::<u32>() {
            Ok(n) if n <= i32::MAX as u32 => Some(n),
            _ => {
                self.warn(
                    name,
                    &v,
                    "is not an integer from 0 to 2^31-1",
                    "the default",
                );
                None
            }
        }
    }

    fn ratio(&mut self, name: &str) -> Option<f64> {
        let v = self.get(name)?;
        match v.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Some(p),
            _ => {
                self.warn(name, &v, "is not a number from 0 to 1", "the default");
                None
            }
        }
    }

    fn sampler(&mut self) -> SamplerConfig {
        let rate = self.ratio("OTEL_SAMPLE_RATE");
        let Some(name) = self.get("OTEL_TRACES_SAMPLER") else {
            return match rate {
                Some(r) => SamplerConfig::ParentBasedTraceIdRatio(r),
                None => SamplerConfig::ParentBasedAlwaysOn,
            };
        };
        if rate.is_some() {
            self.warnings
                .push("OTEL_SAMPLE_RATE is ignored because OTEL_TRACES_SAMPLER is set".to_string());
        }
        let ratio_arg = |r: &mut Self| r.ratio("OTEL_TRACES_SAMPLER_ARG").unwrap_or(1.0);
        match name.to_ascii_lowercase().as_str() {
            "always_on" => SamplerConfig::AlwaysOn,
            "always_off" => SamplerConfig::AlwaysOff,
            "traceidratio" => SamplerConfig::TraceIdRatio(ratio_arg(self)),
            "parentbased_always_on" => SamplerConfig::ParentBasedAlwaysOn,
            "parentbased_always_off" => SamplerConfig::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => SamplerConfig::ParentBasedTraceIdRatio(ratio_arg(self)),
            _ => {
                self.warn(
                    "OTEL_TRACES_SAMPLER",
                    &name,
                    "is not a supported sampler",
                    "parentbased_always_on",
                );
                SamplerConfig::ParentBasedAlwaysOn
            }
        }
    }

    fn resource_attributes(&mut self) -> Vec<KeyValue> {
        let Some(raw) = self.get("OTEL_RESOURCE_ATTRIBUTES") else {
            return Vec::new();
        };
        match parse_resource_attributes(&raw) {
            Some(list) => list,
            None => {
                self.warnings.push(
                    "OTEL_RESOURCE_ATTRIBUTES is malformed (expected k1=v1,k2=v2 with percent-encoding); ignoring the whole variable".to_string(),
                );
                Vec::new()
            }
        }
    }

    fn limits(&mut self) -> SpanLimits {
        let d = SpanLimits::default();
        let general_count = self.u32("OTEL_ATTRIBUTE_COUNT_LIMIT");
        let general_len = self.u32("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT");
        let count = |r: &mut Self, name: &str, fallback: Option<u32>, default: usize| {
            r.u32(name).or(fallback).map_or(default, |n| n as usize)
        };
        SpanLimits {
            max_attributes_per_span: count(
                self,
                "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                general_count,
                d.max_attributes_per_span,
            ),
            max_events_per_span: count(
                self,
                "OTEL_SPAN_EVENT_COUNT_LIMIT",
                None,
                d.max_events_per_span,
            ),
            max_links_per_span: count(
                self,
                "OTEL_SPAN_LINK_COUNT_LIMIT",
                None,
                d.max_links_per_span,
            ),
            max_attributes_per_event: count(
                self,
                "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
                general_count,
                d.max_attributes_per_event,
            ),
            max_attributes_per_link: count(
                self,
                "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
                general_count,
                d.max_attributes_per_link,
            ),
            max_attribute_value_length: self
                .u32("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT")
                .or(general_len)
                .map(|n| n as usize),
        }
    }

    fn batch(&mut self) -> BatchConfig {
        let d = BatchConfig::default();
        let positive = |r: &mut Self, name: &str, default: usize| match r.u32(name) {
            Some(0) => {
                r.warn(name, "0", "must be positive", &default.to_string());
                default
            }
            Some(n) => n as usize,
            None => default,
        };
        let max_queue_size = positive(self, "OTEL_BSP_MAX_QUEUE_SIZE", d.max_queue_size);
        let mut max_export_batch_size = positive(
            self,
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            d.max_export_batch_size,
        );
        if max_export_batch_size > max_queue_size {
            self.warnings.push(format!(
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE={max_export_batch_size} exceeds the queue size {max_queue_size}; clamped to {max_queue_size}"
            ));
            max_export_batch_size = max_queue_size;
        }
        let scheduled_delay = self
            .u32("OTEL_BSP_SCHEDULE_DELAY")
            .map_or(d.scheduled_delay, |ms| Duration::from_millis(ms.into()));
        let export_timeout = self
            .u32("OTEL_BSP_EXPORT_TIMEOUT")
            .map_or(d.export_timeout, |ms| match ms {
                0 => super::NO_TIMEOUT,
                ms => Duration::from_millis(ms.into()),
            });
        BatchConfig {
            max_queue_size,
            max_export_batch_size,
            scheduled_delay,
            export_timeout,
        }
    }
}

/// Parses `k1=v1,k2=v2` with percent-decoding; `None` on any error.
fn parse_resource_attributes(raw: &str) -> Option<Vec<KeyValue>> {
    let mut out = Vec::new();
    for pair in raw.split(',') {
        if pair.trim().is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=')?;
        let k = percent_decode(k.trim())?;
        let v = percent_decode(v.trim())?;
        if k.is_empty() {
            return None;
        }
        out.push(KeyValue::new(k, v));
    }
    Some(out)
}

/// Decodes `%XX` escapes; `None` for a bad escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;
