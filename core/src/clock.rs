//! Span timestamps as nanoseconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in nanoseconds since the Unix epoch.
#[inline]
pub(crate) fn now_unix_nanos() -> u64 {
    system_time_to_unix_nanos(SystemTime::now())
}

/// Converts a `SystemTime` (0 before the epoch, saturating far in the future).
#[inline]
pub(crate) fn system_time_to_unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
