//! The exporter's own error type, which separates retryable from permanent
//! failures, and its mapping into `runtrace::ExportError` at the trait boundary.

use runtrace::ExportError;
use std::fmt;
use std::time::Duration;

/// Why one export attempt (or the whole export) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The server answered 429, 502, 503 or 504: try again later.
    Throttled {
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`, when it sent a valid one.
        retry_after: Option<Duration>,
        /// The server's explanation (`google.rpc.Status.message` or a body excerpt).
        message: String,
    },
    /// No response: connection refused or reset, DNS failure, I/O error.
    Connection(String),
    /// An attempt ran out of time (the export's timeout or the caller's deadline).
    Timeout,
    /// The server refused the batch with a status that must not be retried.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's explanation (`google.rpc.Status.message` or a body excerpt).
        message: String,
    },
    /// The server accepted the batch except `rejected` spans (never retried).
    PartialSuccess {
        /// Spans the server refused.
        rejected: u64,
        /// The server's explanation.
        message: String,
    },
    /// `dropped` spans each encode, alone, above the configured maximum
    /// request size, and were not sent; the rest of the batch was (split into
    /// requests under the limit).
    SpansTooLarge {
        /// Spans not sent.
        dropped: u64,
        /// The largest of them, encoded alone, in bytes (before compression).
        largest: usize,
        /// The limit.
        limit: usize,
    },
    /// Anything else that retrying cannot fix (TLS, invalid response, ...).
    Permanent(String),
    /// The exporter was shut down.
    Shutdown,
}

impl Error {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Throttled { .. } | Error::Connection(_) | Error::Timeout
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Throttled {
                status, message, ..
            } => write!(f, "server busy (HTTP {status}){}", suffix(message)),
            Error::Connection(m) => write!(f, "connection failed: {m}"),
            Error::Timeout => f.write_str("timed out"),
            Error::Rejected { status, message } => {
                write!(
                    f,
                    "server rejected the batch (HTTP {status}){}",
                    suffix(message)
                )
            }
            Error::PartialSuccess { rejected, message } => {
                write!(f, "server rejected {rejected} spans{}", suffix(message))
            }
            Error::SpansTooLarge {
                dropped,
                largest,
                limit,
            } => write!(
                f,
                "{dropped} spans each encode above the {limit}-byte request limit \
                 (the largest to {largest} bytes); not sent"
            ),
            Error::Permanent(m) => f.write_str(m),
            Error::Shutdown => f.write_str("exporter is shut down"),
        }
    }
}

fn suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl std::error::Error for Error {}

impl From<Error> for ExportError {
    fn from(e: Error) -> Self {
        match e {
            Error::Timeout => ExportError::Timeout,
            Error::Shutdown => ExportError::Shutdown,
            Error::PartialSuccess { rejected, message } => {
                ExportError::PartialSuccess { rejected, message }
            }
            Error::SpansTooLarge { dropped, .. } => ExportError::TooLarge {
                dropped,
                message: e.to_string(),
            },
            other => ExportError::Failed(other.to_string()),
        }
    }
}

/// A short, printable excerpt of a response body (at most 200 characters).
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let long = text.chars().nth(200).is_some();
    let mut out: String = text
        .chars()
        .take(if long { 199 } else { 200 })
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if long {
        out.push('…');
    }
    out
}
