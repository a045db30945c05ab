//! Busy and idle time of a `tracing` span, as tracing-opentelemetry's
//! `busy_ns` and `idle_ns` (asked for with
//! [`RuntraceLayer::with_tracked_inactivity`](crate::RuntraceLayer::with_tracked_inactivity)).
//!
//! Busy time runs while the span is entered on any thread, idle time from its
//! creation or its last exit to its next enter. Nested enters of the same
//! span (several tasks polling it at once, or a re-entry) count once: the
//! span is busy from the first enter to the last exit. The time between the
//! last exit and the close is in neither, as tracing-opentelemetry does.

use runtrace::KeyValue;
use std::time::Instant;

/// A span's timings, kept in its extensions beside its state.
#[derive(Debug)]
pub(crate) struct Timings {
    /// How many enters have not exited yet.
    entered: u32,
    busy_ns: u64,
    idle_ns: u64,
    /// The span's creation, or its latest first enter or last exit.
    last: Instant,
}

impl Timings {
    /// Timings of a span created now.
    pub(crate) fn new() -> Self {
        Timings {
            entered: 0,
            busy_ns: 0,
            idle_ns: 0,
            last: Instant::now(),
        }
    }

    /// The span is entered: the first enter ends an idle stretch.
    pub(crate) fn enter(&mut self) {
        if self.entered == 0 {
            self.idle_ns += self.lap();
        }
        self.entered += 1;
    }

    /// The span is exited: the last exit ends a busy stretch. An exit with
    /// no enter (one the layer did not see) is ignored.
    pub(crate) fn exit(&mut self) {
        if self.entered == 0 {
            return;
        }
        self.entered -= 1;
        if self.entered == 0 {
            self.busy_ns += self.lap();
        }
    }

    /// Nanoseconds since `last`, which becomes now.
    fn lap(&mut self) -> u64 {
        let now = Instant::now();
        let ns = now.duration_since(self.last).as_nanos();
        self.last = now;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// `busy_ns` and `idle_ns`, as integer attributes.
    pub(crate) fn attributes(&self) -> [KeyValue; 2] {
        let ns = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        [
            KeyValue::new("busy_ns", ns(self.busy_ns)),
            KeyValue::new("idle_ns", ns(self.idle_ns)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn busy_idle(t: &Timings) -> (u64, u64) {
        (t.busy_ns, t.idle_ns)
    }

    #[test]
    fn nested_enters_are_one_busy_stretch() {
        let mut t = Timings::new();
        std::thread::sleep(Duration::from_millis(2));
        t.enter();
        let (_, idle) = busy_idle(&t);
        assert!(idle >= 2_000_000, "idle {idle}");
        t.enter();
        t.exit();
        // Still entered once: no busy time yet.
        assert_eq!(busy_idle(&t), (0, idle));
        std::thread::sleep(Duration::from_millis(2));
        t.exit();
        let (busy, idle_after) = busy_idle(&t);
        assert!(busy >= 2_000_000, "busy {busy}");
        assert_eq!(idle_after, idle);
    }

    #[test]
    fn an_exit_without_an_enter_changes_nothing() {
        let mut t = Timings::new();
        t.exit();
        assert_eq!(busy_idle(&t), (0, 0));
        assert_eq!(t.entered, 0);
    }
}
