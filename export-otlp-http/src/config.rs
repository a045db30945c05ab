//! Configuration: the builder, the `OTEL_EXPORTER_OTLP_*` environment variables,
//! and [`ConfigError`].
//!
//! Environment parsing goes through a lookup function so tests never touch the
//! process environment. Rules (spec §4.1, §3.7): traces-specific variables win
//! over general ones; empty means unset; a bad value is warned about through
//! `runtrace::diagnostics` and replaced by the default, except an invalid endpoint
//! or an unreadable certificate file, which are errors. Header values are secrets:
//! they never appear in `Debug` output, warnings or errors.

use runtrace::diagnostics::{emit, Level};
use runtrace::env::percent_decode;
use std::fmt;
use std::time::Duration;
use ureq::http::{HeaderName, HeaderValue};

/// Default endpoint when nothing is configured.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318/v1/traces";
/// Default export timeout (per batch, including retries).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body (before compression) the exporter sends.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 64 * 1024 * 1024;

/// Request body compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Send the protobuf as is (the default).
    #[default]
    None,
    /// gzip the body and send `Content-Encoding: gzip`.
    Gzip,
}

/// A configuration that cannot be used: the message names the setting (the
/// environment variable, when it came from one) and the offending value.
/// Header values are never included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    pub(crate) fn new(message: String) -> Self {
        ConfigError { message }
    }
    /// The explanation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid OTLP exporter configuration: {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Headers whose values are secrets: `Debug` prints names only.
#[derive(Clone, Default)]
pub(crate) struct Headers(pub(crate) Vec<(HeaderName, HeaderValue)>);

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, _)| (k.as_str(), "***")))
            .finish()
    }
}

impl Headers {
    /// Adds or replaces a header; `Err` explains why it is invalid (naming the key only).
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let name = HeaderName::from_bytes(key.trim().as_bytes())
            .map_err(|_| format!("header name {key:?} is not a valid HTTP token"))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of header {name:?} contains invalid characters"))?;
        value.set_sensitive(true);
        self.0.retain(|(k, _)| *k != name);
        self.0.push((name, value));
        Ok(())
    }
}

/// Where the endpoint came from, for error messages.
#[derive(Clone, Debug)]
pub(crate) enum EndpointSource {
    Builder,
    Env(&'static str, String),
}

/// Builds an [`OtlpHttpExporter`](crate::OtlpHttpExporter).
///
/// ```
/// use runtrace_otlp_http::{Compression, OtlpHttpExporter};
/// use std::time::Duration;
/// let exporter = OtlpHttpExporter::builder()
///     .endpoint("https://collector.example.com/v1/traces")
///     .header("authorization", "Bearer secret")
///     .timeout(Duration::from_secs(5))
///     .compression(Compression::Gzip)
///     .build()
///     .unwrap();
/// assert!(!format!("{exporter:?}").contains("secret"));
/// ```
#[derive(Clone, Debug)]
pub struct OtlpHttpExporterBuilder {
    pub(crate) endpoint: String,
    pub(crate) endpoint_source: EndpointSource,
    pub(crate) headers: Headers,
    pub(crate) header_error: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) compression: Compression,
    pub(crate) ca_pem: Option<(Vec<u8>, String)>,
    pub(crate) ca_error: Option<String>,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) max_request_size: usize,
}

impl Default for OtlpHttpExporterBuilder {
    fn default() -> Self {
        OtlpHttpExporterBuilder {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            endpoint_source: EndpointSource::Builder,
            headers: Headers::default(),
            header_error: None,
            timeout: Some(DEFAULT_TIMEOUT),
            compression: Compression::None,
            ca_pem: None,
            ca_error: None,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
        }
    }
}

impl OtlpHttpExporterBuilder {
    /// The full URL to POST to, used as is (e.g. `http://collector:4318/v1/traces`).
    /// Default [`DEFAULT_ENDPOINT`].
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = url.into();
        self.endpoint_source = EndpointSource::Builder;
        self
    }

    /// Adds a header to every request (replacing one of the same name). An invalid
    /// name or value makes [`build`](Self::build) fail, naming the header but never
    /// printing its value.
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        if let Err(e) = self.headers.set(name.as_ref(), value.as_ref()) {
            self.header_error.get_or_insert(e);
        }
        self
    }

    /// Adds several headers, see [`header`](Self::header).
    pub fn headers<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in headers {
            self = self.header(k, v);
        }
        self
    }

    /// The time one export may take, retries included (default 10 s). The
    /// processor's deadline also applies; the earlier of the two wins.
    /// `Duration::ZERO` means no limit of the exporter's own.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Request body compression (default none).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Trusts the CA certificates in this PEM data for `https` endpoints, instead of
    /// the bundled Mozilla roots.
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some((pem.into(), "the CA certificate PEM data".to_string()));
        self
    }

    /// Retry backoff: the first delay bound and the largest one (defaults 1 s and
    /// 5 s). Each retry waits a random time up to `min(max, initial × 2^n)`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Largest uncompressed request body to send (default 64 MiB); larger batches
    /// fail without being sent.
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self
    }

    /// Applies the `OTEL_EXPORTER_OTLP_*` variables found through `lookup` on top of
    /// this builder. Never fails: problems are warned about, or reported by `build`.
    pub fn with_env_lookup(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let pick = |general: &'static str, traces: &'static str| {
            get(traces)
                .map(|v| (traces, v))
                .or_else(|| get(general).map(|v| (general, v)))
        };

        if let Some(v) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            self.endpoint = traces_endpoint(v.trim());
            self.endpoint_source = EndpointSource::Env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v);
        } else if let Some(v) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            self.endpoint = general_endpoint(v.trim());
            self.endpoint_source = EndpointSource::Env("OTEL_EXPORTER_OTLP_ENDPOINT", v);
        }

        // General headers first, then traces-specific ones override by name.
        for var in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(v) = get(var) {
                for (k, val) in parse_headers(var, &v) {
                    if let Err(e) = self.headers.set(&k, &val) {
                        warn(&format!("{var}: skipping a header: {e}"));
                    }
                }
            }
        }

        if let Some((var, v)) = pick(
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        ) {
            match v.trim().parse::<u32>() {
                Ok(ms) if ms <= i32::MAX as u32 => {
                    self.timeout = (ms != 0).then(|| Duration::from_millis(ms as u64));
                }
                _ => {
                    warn(&format!(
                        "{var}={v:?} is not a number of milliseconds; using the default of 10000"
                    ));
                    self.timeout = Some(DEFAULT_TIMEOUT);
                }
            }
        }

        if let Some((var, v)) = pick(
            "OTEL_EXPORTER_OTLP_COMPRESSION",
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        ) {
            match v.trim().to_ascii_lowercase().as_str() {
                "gzip" => self.compression = Compression::Gzip,
                "none" => self.compression = Compression::None,
                _ => warn(&format!(
                    "{var}={v:?} is not a supported compression (gzip, none); ignored"
                )),
            }
        }

        if let Some((var, v)) = pick(
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ) {
            if v.trim() != "http/protobuf" {
                warn(&format!(
                    "{var}={v:?}: runtrace-otlp-http only speaks http/protobuf; using it"
                ));
            }
        }

        if let Some((var, path)) = pick(
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        ) {
            match std::fs::read(path.trim()) {
                Ok(pem) => self.ca_pem = Some((pem, format!("{var}={path:?}"))),
                Err(e) => self.ca_error = Some(format!("{var}={path:?}: cannot read file: {e}")),
            }
        }
        for var in [
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
        ] {
            if get(var).is_some() {
                warn(&format!(
                    "{var} is not supported yet (no client TLS certificates); ignored"
                ));
            }
        }
        self
    }

    /// Validates the endpoint and builds the exporter.
    pub fn build(self) -> Result<crate::OtlpHttpExporter, ConfigError> {
        crate::OtlpHttpExporter::from_builder(self)
    }
}

fn warn(message: &str) {
    emit(Level::Warn, message)
}

/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: as is, but `/` when the URL has no path.
pub(crate) fn traces_endpoint(v: &str) -> String {
    let after_scheme = v.find("://").map_or(0, |i| i + 3);
    let rest = &v[after_scheme..];
    match rest.find(['/', '?', '#']) {
        Some(i) if rest.as_bytes()[i] == b'/' => v.to_string(),
        Some(i) => format!("{}/{}", &v[..after_scheme + i], &rest[i..]),
        None => format!("{v}/"),
    }
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: a base URL to which `v1/traces` is appended
/// with exactly one `/` between them.
pub(crate) fn general_endpoint(v: &str) -> String {
    format!("{}/v1/traces", v.trim_end_matches('/'))
}

/// Checks that `url` is an absolute `http`/`https` URL with a host.
pub(crate) fn validate_endpoint(url: &str) -> Result<ureq::http::Uri, String> {
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => return Err(format!("unsupported scheme {other:?} (use http or https)")),
        None => return Err("not an absolute URL (http://host:port/path)".to_string()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_string());
    }
    Ok(uri)
}

/// Splits a `k1=v1,k2=v2` headers variable, percent-decoding values. Bad pairs are
/// skipped with a warning that names the key (or the pair's position) but never
/// the value.
pub(crate) fn parse_headers(var: &str, raw: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, pair) in raw.split(',').enumerate() {
        if pair.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = pair.split_once('=') else {
            warn(&format!("{var}: skipping entry #{} (no '=')", i + 1));
            continue;
        };
        let key = k.trim();
        if key.is_empty() {
            warn(&format!("{var}: skipping entry #{} (empty key)", i + 1));
            continue;
        }
        match percent_decode(v.trim()) {
            Some(value) => out.push((key.to_string(), value)),
            None => warn(&format!(
                "{var}: skipping header {key:?} (its value is not valid percent-encoded UTF-8)"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_rules_from_spec_table() {
        assert_eq!(
            general_endpoint("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            general_endpoint("http://collector:4318/mycollector/"),
            "http://collector:4318/mycollector/v1/traces"
        );
        assert_eq!(
            general_endpoint("http://collector:4318/mycollector"),
            "http://collector:4318/mycollector/v1/traces"
        );
        assert_eq!(
            traces_endpoint("http://collector:4318"),
            "http://collector:4318/"
        );
        assert_eq!(
            traces_endpoint("https://x.example.com/v1/traces"),
            "https://x.example.com/v1/traces"
        );
        assert_eq!(traces_endpoint("http://h:1?x=1"), "http://h:1/?x=1");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("Bearer%20abc").as_deref(),
            Some("Bearer abc")
        );
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn headers_debug_hides_values() {
        let mut h = Headers::default();
        h.set("api-key", "s3cret").unwrap();
        assert!(h.set("bad key", "x").is_err());
        let err = h.set("x", "a\nb").unwrap_err();
        assert!(!err.contains("a\nb"));
        let dbg = format!("{h:?}");
        assert!(dbg.contains("api-key") && !dbg.contains("s3cret"), "{dbg}");
    }
}
