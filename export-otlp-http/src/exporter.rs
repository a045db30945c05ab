//! [`OtlpHttpExporter`]: encode, compress, POST, interpret the response, retry.
//!
//! One `ureq::Agent` per exporter keeps connections alive between batches. Every
//! attempt's timeout is the time left until the export's end, which is the earlier
//! of the caller's deadline and `now + timeout` at the start of the export, so no
//! export outlives either. Retryable failures (429/502/503/504, no response) wait
//! for `Retry-After` or a jittered exponential backoff, but never sleep past that
//! end: when the next attempt could not start in time, the last failure is returned.

use crate::config::{
    redact_userinfo, validate_endpoint, Compression, ConfigError, EndpointSource, Headers,
    OtlpHttpExporterBuilder, Protocol,
};
use crate::error::{excerpt, Error};
use crate::gzip::Gzip;
use crate::proto;
use crate::resolver::CachingResolver;
use crate::retry::{backoff_ceiling, parse_retry_after, XorShift};
use prost::Message;
use runtrace::diagnostics::{emit, Level};
use runtrace::{ExportCancel, ExportError, SpanData, SpanExporter};
use std::fmt;
use std::time::{Duration, Instant, SystemTime};
use ureq::http::Uri;

/// Largest response body read (after decompression), from the OTLP spec.
pub const MAX_RESPONSE_SIZE: u64 = 4 * 1024 * 1024;

/// Buffers bigger than this are released after an export instead of kept.
const KEEP_BUFFER_CAPACITY: usize = 4 * 1024 * 1024;

/// The `User-Agent` header sent with every request.
pub const USER_AGENT: &str = concat!("runtrace-otlp-http/", env!("CARGO_PKG_VERSION"));

/// Exports spans as OTLP over HTTP, protobuf or JSON. See the crate docs for an
/// example.
pub struct OtlpHttpExporter {
    agent: ureq::Agent,
    /// The agent's resolver: forgotten after a connection failure.
    resolver: CachingResolver,
    endpoint: Uri,
    protocol: Protocol,
    headers: Headers,
    timeout: Option<Duration>,
    compression: Compression,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_request_size: usize,
    rng: XorShift,
    /// The encoded request is `body[body_start..]`.
    body: Vec<u8>,
    body_start: usize,
    gzip: Vec<u8>,
    /// The deflate state, kept between requests (made at the first).
    gzipper: Option<Gzip>,
    shut_down: bool,
    /// The processor's signal to stop waiting between retries (at shutdown).
    cancel: ExportCancel,
}

impl fmt::Debug for OtlpHttpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpHttpExporter")
            .field("endpoint", &self.endpoint.to_string())
            .field("protocol", &self.protocol)
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("shut_down", &self.shut_down)
            .finish_non_exhaustive()
    }
}

impl OtlpHttpExporter {
    /// A builder with the defaults (`http://localhost:4318/v1/traces`, 10 s, no
    /// compression, no headers).
    pub fn builder() -> OtlpHttpExporterBuilder {
        OtlpHttpExporterBuilder::default()
    }

    /// A ready exporter (not a builder) configured by the `OTEL_EXPORTER_OTLP_*`
    /// environment variables, or the configuration error that prevents one
    /// (a bad endpoint, `grpc`, a malformed header); other bad values warn and
    /// take their default. For more settings, use
    /// [`builder`](Self::builder)`().with_env_lookup(..)`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    ///
    /// ```
    /// use runtrace_otlp_http::OtlpHttpExporter;
    /// let exporter = OtlpHttpExporter::from_lookup(|k| match k {
    ///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318/".into()),
    ///     _ => None,
    /// })
    /// .unwrap();
    /// assert_eq!(exporter.endpoint(), "http://collector:4318/v1/traces");
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::builder().with_env_lookup(lookup).build()
    }

    pub(crate) fn from_builder(b: OtlpHttpExporterBuilder) -> Result<Self, ConfigError> {
        let as_written = match &b.endpoint_source {
            EndpointSource::Env(_, raw) => raw.as_str(),
            EndpointSource::Builder => b.endpoint.as_str(),
        };
        let endpoint = validate_endpoint(&b.endpoint, as_written).map_err(|why| {
            let shown = redact_userinfo(as_written);
            ConfigError::new(match &b.endpoint_source {
                EndpointSource::Env(var, _) => {
                    format!("{var}={shown:?} is not a valid endpoint: {why}")
                }
                EndpointSource::Builder => format!("endpoint {shown:?} is not a valid URL: {why}"),
            })
        })?;
        let protocol = b.checked_protocol()?;
        if let Some(e) = b.header_error {
            return Err(ConfigError::new(e));
        }
        if let Some(e) = b.ca_error {
            return Err(ConfigError::new(e));
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some((pem, origin)) = &b.ca_pem {
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => return Err(ConfigError::new(format!("{origin}: invalid PEM: {e}"))),
                }
            }
            if certs.is_empty() {
                return Err(ConfigError::new(format!(
                    "{origin}: no certificate found in the PEM data"
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .tls_config(tls.build())
            .build();
        let resolver = CachingResolver::default();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            resolver.clone(),
        );
        Ok(OtlpHttpExporter {
            agent,
            resolver,
            endpoint,
            protocol,
            headers: b.headers,
            timeout: b.timeout,
            compression: b.compression,
            initial_backoff: b.initial_backoff,
            max_backoff: b.max_backoff,
            max_request_size: b.max_request_size,
            rng: XorShift::from_entropy(),
            body: Vec::new(),
            body_start: 0,
            gzip: Vec::new(),
            gzipper: None,
            shut_down: false,
            cancel: ExportCancel::default(),
        })
    }

    /// The URL requests are sent to.
    pub fn endpoint(&self) -> String {
        self.endpoint.to_string()
    }

    /// The export timeout (`None`: only the caller's deadline applies).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The protocol requests are encoded with.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The request compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The names of the configured headers (values are secrets and not exposed).
    pub fn header_names(&self) -> Vec<String> {
        self.headers.0.iter().map(|(k, _)| k.to_string()).collect()
    }

    /// Exports `batch`, retrying inside the deadline, with the crate's detailed error.
    pub fn export_detailed(&mut self, batch: &[SpanData], deadline: Instant) -> Result<(), Error> {
        if self.shut_down {
            return Err(Error::Shutdown);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let end = match self.timeout {
            Some(t) => start.checked_add(t).map_or(deadline, |t| deadline.min(t)),
            None => deadline,
        };
        let result = self.export_within_limit(batch, end);
        self.release_buffers();
        match result {
            Ok(TooLarge { dropped: 0, .. }) => Ok(()),
            Ok(TooLarge { dropped, largest }) => Err(Error::SpansTooLarge {
                dropped,
                largest,
                limit: self.max_request_size,
            }),
            Err(e) => Err(e),
        }
    }

    /// Sends `batch` in requests under the size limit: a batch that encodes
    /// above it is split in halves, and a span above it alone is not sent
    /// (counted in the returned [`TooLarge`]). A failed request fails the
    /// whole call, parts already delivered included (they count as failed).
    fn export_within_limit(&mut self, batch: &[SpanData], end: Instant) -> Result<TooLarge, Error> {
        self.body.clear();
        self.body_start = match self.protocol {
            Protocol::HttpJson => {
                crate::encode_json::encode_request_json(batch, &mut self.body);
                0
            }
            _ => crate::encode::encode_request_unaligned(batch, &mut self.body),
        };
        let size = self.body.len() - self.body_start;
        if size > self.max_request_size {
            if let [_] = batch {
                return Ok(TooLarge {
                    dropped: 1,
                    largest: size,
                });
            }
            let (first, second) = batch.split_at(batch.len() / 2);
            let a = self.export_within_limit(first, end)?;
            let b = self.export_within_limit(second, end)?;
            return Ok(TooLarge {
                dropped: a.dropped + b.dropped,
                largest: a.largest.max(b.largest),
            });
        }
        if self.compression == Compression::Gzip {
            self.gzip.clear();
            let gzip = self.gzipper.get_or_insert_with(Gzip::new);
            if let Err(e) = gzip.compress(&self.body[self.body_start..], &mut self.gzip) {
                return Err(Error::Permanent(format!("gzip failed: {e}")));
            }
        }
        self.send_with_retries(end)?;
        Ok(TooLarge::default())
    }

    fn release_buffers(&mut self) {
        for buf in [&mut self.body, &mut self.gzip] {
            if buf.capacity() > KEEP_BUFFER_CAPACITY {
                *buf = Vec::new();
            }
        }
    }

    fn send_with_retries(&mut self, end: Instant) -> Result<(), Error> {
        let mut retry = 0u32;
        loop {
            let end = self.cancel.effective(end);
            let now = Instant::now();
            if now >= end {
                return Err(Error::Timeout);
            }
            let err = match self.send_once(end - now) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            retry += 1;
            let delay = match &err {
                // Honour the server's wait, but never retry in a tight loop
                // (`Retry-After: 0` or a date in the past).
                Error::Throttled {
                    retry_after: Some(d),
                    ..
                } => (*d).max(self.initial_backoff),
                _ => self.rng.below(backoff_ceiling(
                    self.initial_backoff,
                    self.max_backoff,
                    retry,
                )),
            };
            let now = Instant::now();
            if now.checked_add(delay).is_none_or(|t| t >= end) {
                // The next attempt could not start before the end: report the last
                // failure (a timed-out attempt stays a timeout).
                return Err(err);
            }
            if !self.sleep_unless_cancelled(now + delay, end) {
                return Err(err);
            }
        }
    }

    /// Sleeps until `wake` in short slices; `false` if the processor brought the
    /// deadline forward so that the next attempt could not start in time.
    fn sleep_unless_cancelled(&self, wake: Instant, end: Instant) -> bool {
        const SLICE: Duration = Duration::from_millis(20);
        loop {
            let now = Instant::now();
            if now >= wake {
                return true;
            }
            if self.cancel.effective(end) <= wake {
                return false;
            }
            std::thread::sleep((wake - now).min(SLICE));
        }
    }

    /// One POST. Maps every outcome to `Ok` or an [`Error`] that says whether a
    /// retry may help. Never panics on any response.
    fn send_once(&mut self, timeout: Duration) -> Result<(), Error> {
        let body: &[u8] = match self.compression {
            Compression::Gzip => &self.gzip,
            Compression::None => &self.body[self.body_start..],
        };
        let mut req = self
            .agent
            .post(self.endpoint.clone())
            .header("content-type", content_type(self.protocol));
        if self.compression == Compression::Gzip {
            req = req.header("content-encoding", "gzip");
        }
        for (k, v) in &self.headers.0 {
            req = req.header(k, v);
        }
        let result = req
            .config()
            .timeout_global(Some(timeout))
            .build()
            .send(body);
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => {
                // The next connection resolves the host again.
                self.resolver.forget();
                return Err(map_transport_error(e));
            }
        };
        let status = resp.status().as_u16();
        // A JSON request gets a JSON answer; the Content-Type says which it is.
        let json = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map_or(self.protocol == Protocol::HttpJson, |v| {
                v.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_SIZE)
            .read_to_vec();
        match status {
            200..=299 => match body {
                Ok(bytes) => {
                    interpret_success_body(&bytes, json)?;
                    Ok(())
                }
                // The status already says the batch was accepted: stored.
                Err(ureq::Error::BodyExceedsLimit(_)) => {
                    warn(&format!(
                        "OTLP export succeeded (HTTP {status}) with a response body over \
                         {MAX_RESPONSE_SIZE} bytes; not read"
                    ));
                    Ok(())
                }
                Err(e) => {
                    warn(&format!(
                        "OTLP export succeeded (HTTP {status}) but reading the response failed: {e}"
                    ));
                    Ok(())
                }
            },
            _ => {
                let message = match &body {
                    Ok(bytes) => error_message(bytes, json),
                    Err(ureq::Error::BodyExceedsLimit(_)) => {
                        format!("(response body exceeds {MAX_RESPONSE_SIZE} bytes)")
                    }
                    Err(_) => String::new(),
                };
                if matches!(status, 429 | 502 | 503 | 504) {
                    Err(Error::Throttled {
                        status,
                        retry_after,
                        message,
                    })
                } else {
                    Err(Error::Rejected { status, message })
                }
            }
        }
    }
}

fn warn(message: &str) {
    emit(Level::Warn, message)
}

/// The request's `Content-Type`.
fn content_type(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::HttpJson => "application/json",
        _ => "application/x-protobuf",
    }
}

fn map_transport_error(e: ureq::Error) -> Error {
    use ureq::Error as U;
    match e {
        U::Timeout(_) => Error::Timeout,
        U::Io(ref io) if io.kind() == std::io::ErrorKind::TimedOut => Error::Timeout,
        // rustls reports certificate and protocol failures as InvalidData: retrying
        // cannot fix those.
        U::Io(ref io) if io.kind() == std::io::ErrorKind::InvalidData => {
            Error::Permanent(format!("TLS or protocol failure: {e}"))
        }
        U::Io(_) | U::ConnectionFailed | U::HostNotFound | U::Protocol(_) | U::BodyStalled => {
            Error::Connection(e.to_string())
        }
        other => Error::Permanent(format!("request failed: {other}")),
    }
}

/// A 2xx body: an `ExportTraceServiceResponse`, protobuf or (`json`) JSON. An
/// empty body is full success. A body that does not decode is treated as success
/// (the status says the batch was accepted) with a warning.
fn interpret_success_body(bytes: &[u8], json: bool) -> Result<(), Error> {
    if bytes.is_empty() {
        return Ok(());
    }
    let decoded = if json {
        crate::response_json::decode_response(bytes)
    } else {
        proto::ExportTraceServiceResponse::decode(bytes).ok()
    };
    let resp = match decoded {
        Some(r) => r,
        None => {
            warn(&format!(
                "OTLP export succeeded, but the response body is not an \
                 ExportTraceServiceResponse ({} bytes, starts {:?}); ignored",
                bytes.len(),
                excerpt(&bytes[..bytes.len().min(32)])
            ));
            return Ok(());
        }
    };
    let Some(ps) = resp.partial_success else {
        return Ok(());
    };
    if ps.rejected_spans > 0 {
        return Err(Error::PartialSuccess {
            rejected: ps.rejected_spans as u64,
            message: ps.error_message,
        });
    }
    if !ps.error_message.is_empty() {
        warn(&format!(
            "OTLP export succeeded with a warning from the server: {}",
            excerpt(ps.error_message.as_bytes())
        ));
    }
    Ok(())
}

/// The message of a `google.rpc.Status` body (protobuf, or JSON when `json`),
/// else a short excerpt of the body.
fn error_message(bytes: &[u8], json: bool) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    let message = if json {
        crate::response_json::status_message(bytes)
    } else {
        proto::RpcStatus::decode(bytes).ok().map(|s| s.message)
    };
    match message {
        Some(m) if !m.is_empty() => excerpt(m.as_bytes()),
        _ => excerpt(bytes),
    }
}

/// Spans not sent because each alone encodes above the request size limit.
#[derive(Clone, Copy, Debug, Default)]
struct TooLarge {
    dropped: u64,
    /// The largest of them, encoded alone.
    largest: usize,
}

impl SpanExporter for OtlpHttpExporter {
    fn export(&mut self, batch: &[SpanData], deadline: Instant) -> Result<(), ExportError> {
        self.export_detailed(batch, deadline).map_err(Into::into)
    }

    fn set_cancel(&mut self, cancel: ExportCancel) {
        self.cancel = cancel;
    }

    fn shutdown(&mut self, _deadline: Instant) -> Result<(), ExportError> {
        self.shut_down = true;
        self.body = Vec::new();
        self.gzip = Vec::new();
        self.gzipper = None;
        Ok(())
    }
}
