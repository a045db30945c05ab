//! Configuration: the builder, the `OTEL_EXPORTER_OTLP_*` environment variables,
//! and [`ConfigError`].
//!
//! Environment parsing goes through a lookup function so tests never touch the
//! process environment. Rules (spec §4.1, §3.7): traces-specific variables win
//! over general ones; empty means unset; a bad value is warned about through
//! `runtrace::diagnostics` and replaced by the default, except what would make
//! every export fail: an invalid endpoint, the `grpc` protocol, a header written
//! curl-style, an unreadable certificate file; those are errors from `build`.
//! Header values and endpoint credentials are secrets: they never appear in
//! `Debug` output, warnings or errors.

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

/// The OTLP protocol (`OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`).
///
/// ```
/// use runtrace_otlp_http::Protocol;
/// assert_eq!("http/json".parse(), Ok(Protocol::HttpJson));
/// assert_eq!("HTTP/Protobuf".parse(), Ok(Protocol::HttpProtobuf));
/// assert_eq!("grpc".parse(), Ok(Protocol::Grpc));
/// assert!("thrift".parse::<Protocol>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// Protobuf over HTTP, `Content-Type: application/x-protobuf` (the default).
    #[default]
    HttpProtobuf,
    /// OTLP/JSON over HTTP, `Content-Type: application/json`.
    HttpJson,
    /// OTLP over gRPC, which this crate does not speak: [`build`] fails with an
    /// error that names the alternative (`http/protobuf` on port 4318). It exists
    /// so that a `grpc` setting is refused at start-up instead of sending HTTP
    /// requests to a gRPC port.
    ///
    /// [`build`]: OtlpHttpExporterBuilder::build
    Grpc,
}

impl Protocol {
    /// The configuration value: `http/protobuf`, `http/json` or `grpc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
            Protocol::Grpc => "grpc",
        }
    }
}

impl std::str::FromStr for Protocol {
    type Err = ConfigError;

    /// Parses a configuration value, ASCII case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Ok(Protocol::HttpJson),
            "grpc" => Ok(Protocol::Grpc),
            _ => Err(ConfigError::new(format!(
                "{s:?} is not an OTLP protocol (http/protobuf, http/json, grpc)"
            ))),
        }
    }
}

/// Why `grpc` cannot be used, and what to write instead.
fn grpc_error(setting: &str) -> ConfigError {
    ConfigError::new(format!(
        "{setting}: runtrace-otlp-http speaks OTLP over HTTP, not gRPC; use http/protobuf \
         (or http/json) with the collector's OTLP/HTTP port, 4318 \
         (e.g. OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf and \
         OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318)"
    ))
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
        let name = HeaderName::from_bytes(key.trim().as_bytes()).map_err(|_| {
            // Only the leading token characters: a mistyped entry may hold a secret.
            let shown: String = key
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            format!("header name {shown:?}... is not a valid HTTP token")
        })?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of header {name:?} contains invalid characters"))?;
        value.set_sensitive(true);
        self.0.retain(|(k, _)| *k != name);
        self.0.push((name, value));
        Ok(())
    }
}

/// Where the endpoint came from, for error messages. `Debug` hides credentials.
#[derive(Clone)]
pub(crate) enum EndpointSource {
    Builder,
    Env(&'static str, String),
}

impl fmt::Debug for EndpointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointSource::Builder => f.write_str("Builder"),
            EndpointSource::Env(var, raw) => write!(f, "Env({var}={:?})", redact_userinfo(raw)),
        }
    }
}

/// Where the protocol came from, for error messages.
#[derive(Clone, Debug)]
pub(crate) enum ProtocolSource {
    Builder,
    Env(&'static str),
}

/// Builds an [`OtlpHttpExporter`](crate::OtlpHttpExporter).
///
/// ```
/// use runtrace_otlp_http::{Compression, OtlpHttpExporter};
/// use std::time::Duration;
/// let exporter = OtlpHttpExporter::builder()
///     .with_endpoint("https://collector.example.com/v1/traces")
///     .with_header("authorization", "Bearer secret")
///     .with_timeout(Duration::from_secs(5))
///     .with_compression(Compression::Gzip)
///     .build()
///     .unwrap();
/// assert!(!format!("{exporter:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct OtlpHttpExporterBuilder {
    pub(crate) endpoint: String,
    pub(crate) endpoint_source: EndpointSource,
    pub(crate) protocol: Protocol,
    pub(crate) protocol_source: ProtocolSource,
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
            protocol: Protocol::HttpProtobuf,
            protocol_source: ProtocolSource::Builder,
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

impl fmt::Debug for OtlpHttpExporterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpHttpExporterBuilder")
            .field("endpoint", &redact_userinfo(&self.endpoint))
            .field("endpoint_source", &self.endpoint_source)
            .field("protocol", &self.protocol)
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("max_request_size", &self.max_request_size)
            .finish_non_exhaustive()
    }
}

impl OtlpHttpExporterBuilder {
    /// The full URL to POST to, used as is (e.g. `http://collector:4318/v1/traces`).
    /// Default [`DEFAULT_ENDPOINT`].
    ///
    /// It must start with `http://` or `https://` and name a host; a port must be
    /// 1–65535. Credentials in it (`http://user:password@host`) are refused:
    /// send them in a header (`Authorization`) instead. [`build`](Self::build)
    /// reports what is wrong, without ever repeating a password.
    pub fn with_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = url.into();
        self.endpoint_source = EndpointSource::Builder;
        self
    }

    /// Adds a header to every request (replacing one of the same name). An invalid
    /// name or value makes [`build`](Self::build) fail, naming the header but never
    /// printing its value.
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        if let Err(e) = self.headers.set(name.as_ref(), value.as_ref()) {
            self.header_error.get_or_insert(e);
        }
        self
    }

    /// Adds several headers, see [`with_header`](Self::with_header).
    pub fn with_headers<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in headers {
            self = self.with_header(k, v);
        }
        self
    }

    /// The time one export may take, retries included (default 10 s). The
    /// processor's deadline also applies; the earlier of the two wins.
    /// `Duration::ZERO` means no limit of the exporter's own.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// The protocol (default [`Protocol::HttpProtobuf`]). [`Protocol::Grpc`] makes
    /// [`build`](Self::build) fail: this crate speaks OTLP over HTTP only.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self.protocol_source = ProtocolSource::Builder;
        self
    }

    /// Request body compression (default none).
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Trusts the CA certificates in this PEM data for `https` endpoints, instead of
    /// the bundled Mozilla roots.
    pub fn with_ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some((pem.into(), "the CA certificate PEM data".to_string()));
        self
    }

    /// Retry backoff: the first delay bound and the largest one (defaults 1 s and
    /// 5 s). Each retry waits a random time up to `min(max, initial × 2^n)`.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Largest uncompressed request body to send (default 64 MiB); larger batches
    /// fail without being sent.
    pub fn with_max_request_size(mut self, bytes: usize) -> Self {
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
                let (pairs, error) = parse_headers(var, &v);
                if let Some(e) = error {
                    self.header_error.get_or_insert(e);
                }
                for (k, val) in pairs {
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
            match v.parse::<Protocol>() {
                Ok(p) => {
                    self.protocol = p;
                    self.protocol_source = ProtocolSource::Env(var);
                }
                Err(e) => warn(&format!("{var}: {}; using http/protobuf", e.message())),
            }
        }

        if let Some((var, path)) = pick(
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        ) {
            match read_ca_file(path.trim()) {
                Ok(pem) => self.ca_pem = Some((pem, format!("{var}={path:?}"))),
                Err(e) => self.ca_error = Some(format!("{var}={path:?}: {e}")),
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

    /// Validates the configuration and builds the exporter.
    ///
    /// Fails, with a message that names the setting and says what to write, on
    /// an invalid endpoint, the `grpc` protocol, an invalid header (or one
    /// written curl-style in an environment variable), or an unusable CA file.
    pub fn build(self) -> Result<crate::OtlpHttpExporter, ConfigError> {
        crate::OtlpHttpExporter::from_builder(self)
    }

    /// The protocol, or the error for `grpc`.
    pub(crate) fn checked_protocol(&self) -> Result<Protocol, ConfigError> {
        match (self.protocol, &self.protocol_source) {
            (Protocol::Grpc, ProtocolSource::Env(var)) => Err(grpc_error(&format!("{var}=grpc"))),
            (Protocol::Grpc, ProtocolSource::Builder) => Err(grpc_error("protocol Grpc")),
            (p, _) => Ok(p),
        }
    }
}

/// The largest CA file read: a bundle of every public root is about 200 KB.
const MAX_CA_FILE_BYTES: u64 = 1 << 20;

/// Reads a CA bundle: a regular file (a FIFO would block the reader forever,
/// a device like `/dev/zero` would never end) of at most
/// [`MAX_CA_FILE_BYTES`].
fn read_ca_file(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    // `metadata` does not open the file: opening a FIFO blocks.
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read file: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file (a CA bundle in PEM format is expected)".into());
    }
    if meta.len() > MAX_CA_FILE_BYTES {
        return Err(format!(
            "{} bytes, more than the {MAX_CA_FILE_BYTES} a CA bundle may have",
            meta.len()
        ));
    }
    let mut pem = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CA_FILE_BYTES + 1).read_to_end(&mut pem))
        .map_err(|e| format!("cannot read file: {e}"))?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(format!(
            "more than the {MAX_CA_FILE_BYTES} bytes a CA bundle may have"
        ));
    }
    Ok(pem)
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

/// `url` with any credentials before the host replaced by `***`, for messages.
pub(crate) fn redact_userinfo(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..after_scheme], &rest[at..]),
        None => url.to_string(),
    }
}

/// The text after the port `:` of an authority (`host:port`, `[v6]:port`), if any.
fn port_text(authority: &str) -> Option<&str> {
    let host_end = if authority.starts_with('[') {
        authority.find(']')? + 1
    } else {
        0
    };
    let rest = &authority[host_end..];
    rest.rfind(':').map(|i| &rest[i + 1..])
}

/// Checks that `url` is an absolute `http`/`https` URL with a host, a port in
/// range and no credentials. `as_written` is what the user wrote (before
/// `v1/traces` was appended), for the suggestion. The error says which part
/// is wrong and what to write; it never contains the credentials.
pub(crate) fn validate_endpoint(url: &str, as_written: &str) -> Result<ureq::http::Uri, String> {
    let Some(scheme_end) = url.find("://") else {
        let shown = redact_userinfo(as_written.trim());
        return Err(format!(
            "it has no scheme: write http://{shown} (or https://{shown} for TLS)"
        ));
    };
    let after_scheme = &url[scheme_end + 3..];
    let authority = &after_scheme[..after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len())];
    if authority.contains('@') {
        return Err(
            "it contains credentials (user:password@), which are not sent from a URL; \
             remove them and send a header instead, e.g. \
             OTEL_EXPORTER_OTLP_HEADERS=Authorization=Basic%20<base64 of user:password>"
                .to_string(),
        );
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err("the URL has no host: write http://host:port/path".to_string());
    }
    match port_text(authority) {
        None => {}
        Some("") => {
            return Err("the port after ':' is empty: write host:port, e.g. collector:4318".into())
        }
        Some(p) => match p.parse::<u64>() {
            Ok(1..=65535) => {}
            Ok(_) => {
                return Err(format!(
                    "port {p} is out of range: use 1-65535 (OTLP/HTTP listens on 4318)"
                ))
            }
            Err(_) => {
                return Err(format!(
                    "port {p:?} is not a number: write host:port, e.g. collector:4318"
                ))
            }
        },
    }
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => {
            return Err(format!(
                "unsupported scheme {other:?}: write http:// or https://"
            ))
        }
        None => return Err("not an absolute URL: write http://host:port/path".to_string()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host: write http://host:port/path".to_string());
    }
    Ok(uri)
}

/// Splits a `k1=v1,k2=v2` headers variable, percent-decoding values. Bad pairs are
/// skipped with a warning that names the key (or the pair's position) but never
/// the value. An entry written curl-style (`Authorization: Bearer x`) is the
/// error returned beside the pairs: skipping it would send every request without
/// the credentials it was meant to carry. Its message names the header, never
/// the value.
pub(crate) fn parse_headers(var: &str, raw: &str) -> (Vec<(String, String)>, Option<String>) {
    let mut out = Vec::new();
    let mut error = None;
    for (i, pair) in raw.split(',').enumerate() {
        if pair.trim().is_empty() {
            continue;
        }
        // The name ends at the first '=' or ':', whichever comes first.
        let name_end = pair.find(['=', ':']).unwrap_or(pair.len());
        let key = pair[..name_end].trim();
        if pair[name_end..].starts_with(':') {
            let shown = if HeaderName::from_bytes(key.as_bytes()).is_ok() {
                key
            } else {
                "Name"
            };
            error.get_or_insert(format!(
                "{var}: entry #{} is written curl-style ({shown}: ...); write {shown}=<value> \
                 with the value percent-encoded, e.g. {var}=Authorization=Bearer%20<token>",
                i + 1
            ));
            continue;
        }
        let Some((_, v)) = pair.split_once('=') else {
            warn(&format!("{var}: skipping entry #{} (no '=')", i + 1));
            continue;
        };
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
    (out, error)
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

    use crate::OtlpHttpExporter;
    use std::sync::{Arc, Mutex};

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn env_error(pairs: &[(&str, &str)]) -> String {
        OtlpHttpExporter::from_lookup(env(pairs))
            .expect_err("configuration must be refused")
            .to_string()
    }

    fn builder_error(b: OtlpHttpExporterBuilder) -> String {
        b.build()
            .expect_err("configuration must be refused")
            .to_string()
    }

    /// A CA path that is a device, a FIFO or a huge file is a clear error at
    /// once: `/dev/zero` grew the process by gigabytes and a FIFO blocked
    /// `from_env()` forever.
    #[test]
    fn ca_files_must_be_small_regular_files() {
        let ca_error = |path: &str| {
            let path = path.to_string();
            builder_error(OtlpHttpExporter::builder().with_env_lookup(move |k| {
                (k == "OTEL_EXPORTER_OTLP_CERTIFICATE").then(|| path.clone())
            }))
        };
        let dir = std::env::temp_dir().join(format!("runtrace-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if cfg!(unix) && std::path::Path::new("/dev/zero").exists() {
            assert!(ca_error("/dev/zero").contains("not a regular file"));
        }
        let fifo = dir.join("fifo");
        let made_fifo = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if made_fifo {
            assert!(ca_error(fifo.to_str().unwrap()).contains("not a regular file"));
        }
        let huge = dir.join("huge.pem");
        std::fs::write(&huge, vec![b'A'; (MAX_CA_FILE_BYTES + 1) as usize]).unwrap();
        assert!(ca_error(huge.to_str().unwrap()).contains("a CA bundle may have"));
        assert!(ca_error(dir.join("missing.pem").to_str().unwrap()).contains("cannot read file"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn protocol_from_env_and_builder() {
        for (var, value, expected) in [
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "http/json",
                Protocol::HttpJson,
            ),
            (
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "HTTP/JSON",
                Protocol::HttpJson,
            ),
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "http/protobuf",
                Protocol::HttpProtobuf,
            ),
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "thrift",
                Protocol::HttpProtobuf,
            ),
        ] {
            let e = OtlpHttpExporter::from_lookup(env(&[(var, value)])).unwrap();
            assert_eq!(e.protocol(), expected, "{var}={value}");
        }
        let e = OtlpHttpExporter::from_lookup(env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ]))
        .unwrap();
        assert_eq!(e.protocol(), Protocol::HttpJson, "traces-specific wins");
        let e = OtlpHttpExporter::builder()
            .with_protocol(Protocol::HttpJson)
            .build()
            .unwrap();
        assert_eq!(e.protocol(), Protocol::HttpJson);
    }

    #[test]
    fn grpc_is_refused_with_the_alternative_named() {
        let from_env = env_error(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        let from_traces_env = env_error(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "gRPC")]);
        let from_builder = builder_error(OtlpHttpExporter::builder().with_protocol(Protocol::Grpc));
        assert!(
            from_env.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"),
            "{from_env}"
        );
        assert!(from_traces_env.contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"));
        for msg in [from_env, from_traces_env, from_builder] {
            assert!(
                msg.contains("http/protobuf") && msg.contains("4318"),
                "{msg}"
            );
        }
    }

    #[test]
    fn endpoint_errors_say_what_is_wrong_and_what_to_write() {
        let no_scheme = env_error(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
        assert!(
            no_scheme.contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
            "{no_scheme}"
        );
        assert!(no_scheme.contains("no scheme"), "{no_scheme}");
        assert!(
            no_scheme.contains("write http://collector:4318 "),
            "{no_scheme}"
        );
        let no_scheme =
            builder_error(OtlpHttpExporter::builder().with_endpoint("collector:4318/v1/traces"));
        assert!(
            no_scheme.contains("write http://collector:4318/v1/traces"),
            "{no_scheme}"
        );
        for (endpoint, expected) in [
            ("http://collector:99999", "port 99999 is out of range"),
            (
                "http://collector:65536/v1/traces",
                "port 65536 is out of range",
            ),
            ("http://collector:0", "port 0 is out of range"),
            ("http://collector:43x8", "port \"43x8\" is not a number"),
            ("http://collector:/v1/traces", "port after ':' is empty"),
            ("http://[::1]:70000", "port 70000 is out of range"),
            ("ftp://collector:4318", "unsupported scheme \"ftp\""),
            ("http:///v1/traces", "no host"),
        ] {
            let msg = builder_error(OtlpHttpExporter::builder().with_endpoint(endpoint));
            assert!(msg.contains(expected), "{endpoint}: {msg}");
        }
        for ok in [
            "http://[::1]:4318/v1/traces",
            "https://collector",
            "http://c:65535",
        ] {
            assert!(
                OtlpHttpExporter::builder()
                    .with_endpoint(ok)
                    .build()
                    .is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn credentials_never_appear_in_errors_debug_or_warnings() {
        const SECRET: &str = "s3cr3t-pa55";
        let warnings = Arc::new(Mutex::new(Vec::<String>::new()));
        let w = warnings.clone();
        runtrace::diagnostics::set_handler(move |_, m| w.lock().unwrap().push(m.to_string()));

        let url = format!("http://user:{SECRET}@collector:4318");
        let mut messages = Vec::new();
        for var in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            let b = OtlpHttpExporterBuilder::default().with_env_lookup(env(&[(var, &url)]));
            messages.push(format!("{b:?}"));
            let err = builder_error(b);
            assert!(err.contains(var) && err.contains("credentials"), "{err}");
            assert!(err.contains("http://***@collector:4318"), "{err}");
            messages.push(err);
        }
        let b = OtlpHttpExporter::builder().with_endpoint(&url);
        messages.push(format!("{b:?}"));
        messages.push(builder_error(b));
        let no_scheme = format!("user:{SECRET}@collector:4318");
        messages.push(builder_error(
            OtlpHttpExporter::builder().with_endpoint(no_scheme),
        ));

        // Curl-style headers: an error that names the header, not the value.
        for raw in [
            format!("Authorization: Bearer {SECRET}"),
            format!("x-team=a,Authorization: Basic {SECRET}=="),
            format!("Authorization :{SECRET}"),
        ] {
            for var in [
                "OTEL_EXPORTER_OTLP_HEADERS",
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            ] {
                let b = OtlpHttpExporterBuilder::default().with_env_lookup(env(&[(var, &raw)]));
                messages.push(format!("{b:?}"));
                let err = builder_error(b);
                assert!(err.contains(var) && err.contains("curl-style"), "{err}");
                assert!(err.contains("Authorization=Bearer%20<token>"), "{err}");
                messages.push(err);
            }
        }
        // Mistyped headers that only warn.
        for raw in [
            format!("Authorization Bearer {SECRET}=x"),
            format!("Bearer {SECRET}"),
            format!("api-key=%zz{SECRET}"),
        ] {
            let b = OtlpHttpExporterBuilder::default()
                .with_env_lookup(env(&[("OTEL_EXPORTER_OTLP_HEADERS", &raw)]));
            messages.push(format!("{b:?}"));
        }
        messages.push(builder_error(
            OtlpHttpExporter::builder().with_header(format!("Authorization Bearer {SECRET}"), "v"),
        ));
        let ok = OtlpHttpExporter::builder()
            .with_header("authorization", format!("Bearer {SECRET}"))
            .build()
            .unwrap();
        messages.push(format!("{ok:?}"));
        messages.push(ok.endpoint());

        runtrace::diagnostics::reset_handler();
        messages.extend(warnings.lock().unwrap().iter().cloned());
        assert!(messages.len() > 20);
        for m in &messages {
            assert!(!m.contains(SECRET), "secret in {m:?}");
        }
    }
}
