//! The runtrace contexts that entered `tracing` spans made current, per thread.
//!
//! Entering a `tracing` span attaches its context; exiting detaches it. A
//! runtrace [`ContextGuard`] must drop on its own thread and in the reverse
//! order of its attach, while `tracing` lets spans exit in any order. So each
//! thread keeps its guards here, with the span each belongs to, innermost
//! last: an exit of the innermost span drops its guard; an exit further down
//! detaches the guards above it (innermost first), drops its own, and attaches
//! the others again, so runtrace only ever sees guards dropped in order, and
//! the current context stays the innermost span still entered.

use runtrace::{Context, ContextGuard};
use std::cell::RefCell;
use tracing::span::Id;

/// One entered span: its id, its context, and the guard attaching it.
struct Entered {
    id: Id,
    cx: Context,
    guard: ContextGuard,
}

thread_local! {
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
}

/// Makes `cx` current for span `id` until [`exit`] with the same id.
pub(crate) fn enter(id: &Id, cx: Context) {
    let guard = cx.clone().attach();
    // At thread exit (the list destroyed) the guard drops here, in order.
    let _ = ENTERED.try_with(|entered| {
        entered.borrow_mut().push(Entered {
            id: id.clone(),
            cx,
            guard,
        })
    });
}

/// Detaches the context the latest [`enter`] of span `id` on this thread
/// attached; does nothing if there is none.
pub(crate) fn exit(id: &Id) {
    let _ = ENTERED.try_with(|entered| {
        let mut entered = entered.borrow_mut();
        let Some(position) = entered.iter().rposition(|e| e.id == *id) else {
            return;
        };
        // The guards above it are detached innermost first, so that runtrace
        // sees them drop in order; their spans are still entered.
        let mut above: Vec<(Id, Context)> = Vec::new();
        while entered.len() > position + 1 {
            if let Some(Entered { id, cx, guard }) = entered.pop() {
                drop(guard);
                above.push((id, cx));
            }
        }
        drop(entered.pop());
        for (id, cx) in above.into_iter().rev() {
            let guard = cx.clone().attach();
            entered.push(Entered { id, cx, guard });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtrace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    fn cx(n: u8) -> Context {
        Context::from_span_context(SpanContext::new(
            TraceId::from_bytes([n; 16]),
            SpanId::from_bytes([n; 8]),
            TraceFlags::SAMPLED,
            false,
            TraceState::EMPTY,
        ))
    }

    #[test]
    fn exits_in_any_order_leave_the_innermost_entered_context_current() {
        let (a, b, c) = (Id::from_u64(1), Id::from_u64(2), Id::from_u64(3));
        enter(&a, cx(1));
        enter(&b, cx(2));
        enter(&c, cx(3));
        exit(&b);
        assert_eq!(Context::current(), cx(3));
        exit(&c);
        assert_eq!(Context::current(), cx(1));
        enter(&b, cx(2));
        exit(&a);
        assert_eq!(Context::current(), cx(2));
        exit(&a); // not entered: nothing happens
        exit(&b);
        assert_eq!(Context::current(), Context::new());
    }

    #[test]
    fn a_span_entered_twice_exits_its_latest_entry() {
        let (a, b) = (Id::from_u64(1), Id::from_u64(2));
        enter(&a, cx(1));
        enter(&b, cx(2));
        enter(&a, cx(1));
        exit(&a);
        assert_eq!(Context::current(), cx(2));
        exit(&b);
        assert_eq!(Context::current(), cx(1));
        exit(&a);
        assert_eq!(Context::current(), Context::new());
    }
}
