//! The runtrace contexts that entered `tracing` spans made current, per thread.
//!
//! Entering a `tracing` span attaches its context; exiting detaches it.
//! `tracing` lets spans exit in any order, so the guards are runtrace's
//! any-order ones ([`Context::attach_any_order`]): the current context stays
//! the innermost span still entered. Each thread keeps here one entry per
//! enter, innermost last: the span, the layer that entered it, whether it was
//! a re-entry, and the guard of its context if the layer keeps one. The list
//! also answers which span is current for a layer ([`innermost`]), so an event
//! finds its span without asking the registry.
//!
//! Subscribers on one thread (nested `with_default`) share the list, and their
//! span ids can collide, so each entry names its layer: a layer exits and
//! looks up only its own entries. The one exception is a layer that exits a
//! span it has no entry for, which happens only when it replaced the layer
//! that entered it (`tracing_subscriber::reload` of a boxed layer): it takes
//! the latest entry of that id, so the replaced layer's context does not stay
//! current. A disabled layer, which enters nothing, does not exit either.

use runtrace::{Context, ContextGuard};
use std::cell::RefCell;
use tracing::span::Id;

/// One `tracing` span entered on this thread.
struct Entered {
    /// The layer that entered it: the subscribers of one thread share this
    /// list, and a span id is unique only within its registry.
    layer: usize,
    id: Id,
    /// Whether the span was already entered (by this layer) when this entry
    /// was pushed: the registry marks these too, and its current span is the
    /// innermost entry that is not one.
    duplicate: bool,
    /// The guard of its context (none if the layer keeps nothing for it).
    guard: Option<ContextGuard>,
}

thread_local! {
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
}

/// Records that `layer` entered span `id` on this thread and makes `cx`
/// current, if there is one, until [`exit`] with the same id. The entry is
/// pushed even without a context, so [`innermost`] sees every entered span.
pub(crate) fn enter(layer: usize, id: &Id, cx: Option<Context>) {
    let guard = cx.map(Context::attach_any_order);
    // At thread exit (the list destroyed) the guard drops here.
    let _ = ENTERED.try_with(|entered| {
        let mut entered = entered.borrow_mut();
        let duplicate = entered.iter().any(|e| e.layer == layer && e.id == *id);
        entered.push(Entered {
            layer,
            id: id.clone(),
            duplicate,
            guard,
        });
    });
}

/// Removes the latest entry of span `id` by `layer` on this thread and
/// detaches its context. If `layer` has no entry of `id` (it replaced the
/// layer that entered it, see the module doc), the latest entry of `id` by any
/// layer is removed instead; nothing happens if there is none.
pub(crate) fn exit(layer: usize, id: &Id) {
    let guard = ENTERED.try_with(|entered| {
        let mut entered = entered.borrow_mut();
        let position = entered
            .iter()
            .rposition(|e| e.layer == layer && e.id == *id)
            .or_else(|| entered.iter().rposition(|e| e.id == *id))?;
        entered.remove(position).guard
    });
    // Dropped after the list is released.
    drop(guard);
}

/// The span that is current on this thread for `layer`: the innermost one
/// it entered, not counting re-entries (as the registry's current span, among
/// the spans this layer's filter enables), without a lookup in the registry.
/// `None` if it entered none that is still entered.
pub(crate) fn innermost(layer: usize) -> Option<Id> {
    ENTERED
        .try_with(|entered| {
            entered
                .borrow()
                .iter()
                .rev()
                .find(|e| e.layer == layer && !e.duplicate)
                .map(|e| e.id.clone())
        })
        .ok()
        .flatten()
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

    /// The layer of these tests.
    const L: usize = 1;

    #[test]
    fn exits_in_any_order_leave_the_innermost_entered_context_current() {
        let (a, b, c) = (Id::from_u64(1), Id::from_u64(2), Id::from_u64(3));
        enter(L, &a, Some(cx(1)));
        enter(L, &b, Some(cx(2)));
        enter(L, &c, Some(cx(3)));
        exit(L, &b);
        assert_eq!(Context::current(), cx(3));
        assert_eq!(innermost(L), Some(c.clone()));
        exit(L, &c);
        assert_eq!(Context::current(), cx(1));
        assert_eq!(innermost(L), Some(a.clone()));
        enter(L, &b, Some(cx(2)));
        exit(L, &a);
        assert_eq!(Context::current(), cx(2));
        exit(L, &a); // not entered: nothing happens
        exit(L, &b);
        assert_eq!(Context::current(), Context::new());
        assert_eq!(innermost(L), None);
    }

    #[test]
    fn a_span_entered_twice_exits_its_latest_entry_and_is_not_innermost_again() {
        let (a, b) = (Id::from_u64(1), Id::from_u64(2));
        enter(L, &a, Some(cx(1)));
        enter(L, &b, Some(cx(2)));
        enter(L, &a, Some(cx(1)));
        // As the registry: a re-entered span does not become current again.
        assert_eq!(innermost(L), Some(b.clone()));
        exit(L, &a);
        assert_eq!(Context::current(), cx(2));
        exit(L, &b);
        assert_eq!(Context::current(), cx(1));
        assert_eq!(innermost(L), Some(a.clone()));
        exit(L, &a);
        assert_eq!(Context::current(), Context::new());
    }

    #[test]
    fn layers_keep_their_own_spans_apart() {
        // The same id in two registries (two subscribers on one thread).
        let id = Id::from_u64(1);
        enter(1, &id, Some(cx(1)));
        enter(2, &id, None);
        assert_eq!(innermost(1), Some(id.clone()));
        assert_eq!(innermost(2), Some(id.clone()));
        exit(1, &id);
        assert_eq!(innermost(1), None);
        assert_eq!(innermost(2), Some(id.clone()));
        // The second layer's entry has no context: the first's is gone.
        assert_eq!(Context::current(), Context::new());
        exit(2, &id);
        assert_eq!(innermost(2), None);
    }

    #[test]
    fn a_replaced_layer_exits_what_the_one_before_it_entered() {
        // `reload` swaps the layer between an enter and its exit.
        let id = Id::from_u64(1);
        enter(1, &id, Some(cx(1)));
        exit(2, &id);
        assert_eq!(Context::current(), Context::new());
        assert_eq!(innermost(1), None);
    }
}
