//! How runtrace reports its own problems without a logging dependency.
//!
//! Warnings (bad environment values, dropped spans, failed exports) go to a
//! handler that the application may replace with [`set_handler`]; the default
//! writes one line to stderr prefixed with `runtrace:`. Repeated warnings are
//! rate-limited at their source. Messages never contain header values or secrets.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Severity of a diagnostic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something was ignored or replaced by a default; telemetry continues.
    Warn,
    /// Telemetry was lost (spans dropped, export failed).
    Error,
}

type Handler = Arc<dyn Fn(Level, &str) + Send + Sync>;

static HANDLER: RwLock<Option<Handler>> = RwLock::new(None);

/// Replaces the handler for runtrace's diagnostics (the default prints to stderr).
///
/// ```
/// runtrace::diagnostics::set_handler(|level, msg| eprintln!("[tracing {level:?}] {msg}"));
/// runtrace::diagnostics::reset_handler();
/// ```
pub fn set_handler(handler: impl Fn(Level, &str) + Send + Sync + 'static) {
    *HANDLER.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(handler));
}

/// Restores the default stderr handler.
pub fn reset_handler() {
    *HANDLER.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Reports a diagnostic through the current handler.
pub fn emit(level: Level, message: &str) {
    let handler = HANDLER.read().unwrap_or_else(|e| e.into_inner()).clone();
    match handler {
        Some(h) => h(level, message),
        None => eprintln!("runtrace: {}: {message}", level_name(level)),
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Warn => "warning",
        Level::Error => "error",
    }
}

/// Reports a warning.
/// The message of a caught panic, for a report.
pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}

pub(crate) fn warn(message: &str) {
    emit(Level::Warn, message)
}

/// A flag that lets one message through, once.
#[derive(Debug, Default)]
pub(crate) struct OnceFlag(AtomicBool);

impl OnceFlag {
    pub(crate) const fn new() -> Self {
        OnceFlag(AtomicBool::new(false))
    }
    /// `true` the first time only.
    pub(crate) fn first(&self) -> bool {
        !self.0.load(Ordering::Relaxed) && !self.0.swap(true, Ordering::Relaxed)
    }
}

/// Lets a message through at most once per interval (the first one immediately).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    origin: Instant,
    /// Milliseconds since `origin` of the last message, plus one (0 = never).
    last_ms: AtomicU64,
    interval: Duration,
}

impl RateLimiter {
    pub(crate) fn new(interval: Duration) -> Self {
        RateLimiter {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            interval,
        }
    }

    /// `true` if a message may go out now.
    pub(crate) fn allow(&self) -> bool {
        let now = self.origin.elapsed().as_millis() as u64 + 1;
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != 0 && now - last < self.interval.as_millis() as u64 {
            return false;
        }
        self.last_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_and_rate_limit() {
        let f = OnceFlag::new();
        assert!(f.first());
        assert!(!f.first());
        let r = RateLimiter::new(Duration::from_secs(10));
        assert!(r.allow());
        assert!(!r.allow());
        let fast = RateLimiter::new(Duration::from_millis(0));
        assert!(fast.allow());
        assert!(fast.allow());
    }
}
