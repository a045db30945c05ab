//! The `tracing` bench's cases, shared with `examples/profile_tracing.rs`:
//! each is one iteration, through whatever subscriber is the thread's default.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context as TaskContext, Poll, Waker};
use tracing::{info, info_span, Instrument};

/// `info_span!` with 4 fields of mixed types (u64, str, bool, f64),
/// entered and closed.
#[inline(always)]
pub fn span_4fields() {
    let span = info_span!(
        "request",
        request.id = 42_u64,
        http.route = "/v1/infer",
        cache.hit = true,
        load = 0.75
    );
    let entered = span.enter();
    drop(entered);
}

/// A child span of the entered one, with one event (a message and a field)
/// inside it.
#[inline(always)]
pub fn child_span_with_event() {
    let span = info_span!("child");
    let _entered = span.enter();
    info!(rows = 3, "fetched");
}

/// A future that is pending `self.0` times (waking itself) before it
/// completes: each `.await` of a task that waits.
struct PendingTimes(u8);

impl Future for PendingTimes {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A future `.instrument(info_span!(..))`ed, pending twice before it
/// completes: three polls, each an enter and an exit.
#[inline(always)]
pub fn instrumented_future() {
    let mut task = pin!(PendingTimes(2).instrument(info_span!("task", task.id = 7_u64)));
    let mut cx = TaskContext::from_waker(Waker::noop());
    while task.as_mut().poll(&mut cx).is_pending() {}
}
