//! The runtrace contexts that entered `tracing` spans made current, per thread.
//!
//! Entering a `tracing` span attaches its context; exiting detaches it.
//! `tracing` lets spans exit in any order, so the guards are runtrace's
//! any-order ones ([`Context::attach_any_order`]): the current context stays
//! the innermost span still entered. Each thread keeps its guards here, with
//! the span each belongs to, innermost last.

use runtrace::{Context, ContextGuard};
use std::cell::RefCell;
use tracing::span::Id;

thread_local! {
    static ENTERED: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// Makes `cx` current for span `id` until [`exit`] with the same id.
pub(crate) fn enter(id: &Id, cx: Context) {
    let guard = cx.attach_any_order();
    // At thread exit (the list destroyed) the guard drops here.
    let _ = ENTERED.try_with(|entered| entered.borrow_mut().push((id.clone(), guard)));
}

/// Detaches the context the latest [`enter`] of span `id` on this thread
/// attached; does nothing if there is none.
pub(crate) fn exit(id: &Id) {
    let guard = ENTERED.try_with(|entered| {
        let mut entered = entered.borrow_mut();
        let position = entered.iter().rposition(|(entered, _)| entered == id)?;
        Some(entered.remove(position).1)
    });
    // Dropped after the list is released.
    drop(guard);
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
