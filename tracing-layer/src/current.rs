//! The `tracing` spans entered on each thread, and their runtrace contexts.
//!
//! Each thread keeps here one entry per enter, innermost last: the span, the
//! layer that entered it, whether it was a re-entry, its
//! [`ForeignScope`] (its place among runtrace's contexts), and its context
//! once known. `tracing` lets spans exit in any order; an exit removes its
//! own entry and leaves the others. The list also answers which span is
//! current for a layer ([`innermost`]), so an event finds its span without
//! asking the registry.
//!
//! A span's context is looked up only when runtrace reads the current
//! context (a native span starting inside, `Context::current()`): the
//! entry's scope makes runtrace ask [`resolve`], which finds the newest entry
//! with a context, looks it up in the registry and keeps it for the next
//! read. An enter and its exit thus cost a push and a removal here, not a
//! registry lookup and an attached context (in a tokio service, where every
//! poll of an instrumented future is an enter and an exit, that lookup and
//! attach were the largest part of the layer's cost).
//!
//! The lookup needs the registry, which only the layer's dispatcher reaches.
//! Each thread lists, weakly, the dispatchers its layers were the default in
//! when they entered a span ([`list_dispatcher`]), by the layer's address: an
//! enter is lazy ([`Lookup::Later`]) if the thread lists its layer's
//! dispatcher or lists it now; otherwise (another dispatcher is the default,
//! or a wrapper such as `reload`'s hides the layer from downcasts) the layer
//! looks the span up at once ([`Lookup::Done`]). A listed dispatcher that has
//! gone while its layer lives on (a subscriber shared through an `Arc` and
//! given to `with_default` again) is replaced by the default dispatcher at the
//! next lookup, if the layer is in it.
//!
//! Subscribers on one thread (nested `with_default`) share the list, and their
//! span ids can collide, so each entry names its layer: a layer exits and
//! looks up only its own entries. The one exception is a layer that exits a
//! span it has no entry for, which happens only when it replaced the layer
//! that entered it (`tracing_subscriber::reload` of a boxed layer): it takes
//! the latest entry of that id, so the replaced layer's context does not stay
//! current. A disabled layer, which enters nothing, does not exit either.

use runtrace::context::ForeignScope;
use runtrace::Context;
use std::cell::RefCell;
use tracing::dispatcher::WeakDispatch;
use tracing::span::Id;
use tracing::Dispatch;

/// How an entered span's context is found.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// Found: the span's context (boxed, so that an entry stays small to push
    /// and remove), or `None` if the layer keeps none for it.
    Done(Option<Box<Context>>),
    /// Not yet: it is looked up in the dispatcher this thread lists for its
    /// layer (by the layer's [`key`](crate::RuntraceLayer)).
    Later,
}

/// A dispatcher that entries of this thread are looked up in.
struct Dispatcher {
    /// The key of the layer in it.
    layer: usize,
    /// Held weakly: the subscriber drops when the program drops it. While
    /// the dispatcher is alive, so is the layer in it, and no other layer has
    /// its address.
    dispatch: WeakDispatch,
    /// Looks span `id` up for the layer whose key is `layer` in the
    /// dispatcher; `None` if it cannot (the registry is busy on this thread).
    find: Find,
}

/// How a [`Dispatcher`] looks a span up.
pub(crate) type Find = fn(dispatch: &Dispatch, layer: usize, id: &Id) -> Option<Context>;

impl Lookup {
    /// Found: `cx`.
    pub(crate) fn done(cx: Option<Context>) -> Lookup {
        Lookup::Done(cx.map(Box::new))
    }
}

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
    /// Its place among runtrace's contexts on this thread, while entered.
    scope: ForeignScope,
    cx: Lookup,
}

thread_local! {
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
    /// The dispatchers of this thread's layers that entered spans lazily:
    /// few (one per dispatcher a layer on this thread was the default in),
    /// and pruned of dead ones when one is added.
    static DISPATCHERS: RefCell<Vec<Dispatcher>> = const { RefCell::new(Vec::new()) };
}

/// Lists `dispatch`, the thread's default dispatcher, as the one that
/// entries of `layer` are looked up in (with `find`), unless a live one is
/// listed for it; `false` if it cannot be (at thread exit). Called when a
/// layer that the thread does not list enters a span, and when a listed
/// dispatcher has gone.
pub(crate) fn list_dispatcher(layer: usize, dispatch: &Dispatch, find: Find) -> bool {
    DISPATCHERS
        .try_with(|dispatchers| {
            let Ok(mut dispatchers) = dispatchers.try_borrow_mut() else {
                return false;
            };
            // The dispatchers that have gone, so that the list stays as short
            // as the live ones.
            dispatchers.retain(|d| d.dispatch.upgrade().is_some());
            if !dispatchers.iter().any(|d| d.layer == layer) {
                dispatchers.push(Dispatcher {
                    layer,
                    dispatch: dispatch.downgrade(),
                    find,
                });
            }
            true
        })
        .unwrap_or(false)
}

/// Whether this thread lists a dispatcher for `layer` (which may have gone
/// since: see [`find_in_dispatcher`]).
pub(crate) fn has_dispatcher(layer: usize) -> bool {
    DISPATCHERS
        .try_with(|dispatchers| {
            dispatchers
                .try_borrow()
                .is_ok_and(|dispatchers| dispatchers.iter().any(|d| d.layer == layer))
        })
        .unwrap_or(false)
}

/// Looks span `id` of `layer` up in the dispatcher this thread lists for the
/// layer; if that one has gone, in the default dispatcher (outside `tracing`'s
/// callbacks, where it hands one out), listed in its place if the layer is in
/// it.
fn find_in_dispatcher(layer: usize, id: &Id) -> Option<Context> {
    let (listed, find) = DISPATCHERS
        .try_with(|dispatchers| {
            let dispatchers = dispatchers.try_borrow().ok()?;
            let d = dispatchers.iter().find(|d| d.layer == layer)?;
            Some((d.dispatch.upgrade(), d.find))
        })
        .ok()
        .flatten()?;
    if let Some(dispatch) = listed {
        return find(&dispatch, layer, id);
    }
    let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
    // `find` checks that the layer is in it.
    let cx = find(&dispatch, layer, id)?;
    list_dispatcher(layer, &dispatch, find);
    Some(cx)
}

/// Records that `layer` entered span `id` on this thread: its context
/// (found as `cx` says) is current until [`exit`] with the same id, unless a
/// context is attached or a span entered after it.
pub(crate) fn enter(layer: usize, id: &Id, cx: Lookup) {
    let scope = ForeignScope::open(resolve);
    // At thread exit (the list destroyed) the scope closes here.
    let _ = ENTERED.try_with(|entered| {
        let mut entered = entered.borrow_mut();
        let duplicate = entered.iter().any(|e| e.layer == layer && e.id == *id);
        entered.push(Entered {
            layer,
            id: id.clone(),
            duplicate,
            scope,
            cx,
        });
    });
}

/// Removes the latest entry of span `id` by `layer` on this thread, which
/// takes its context off. If `layer` has no entry of `id` (it replaced the
/// layer that entered it, see the module doc), the latest entry of `id` by any
/// layer is removed instead; nothing happens if there is none.
pub(crate) fn exit(layer: usize, id: &Id) {
    let removed = ENTERED.try_with(|entered| {
        let mut entered = entered.borrow_mut();
        if entered
            .last()
            .is_some_and(|last| last.layer == layer && last.id == *id)
        {
            // The usual exit, the innermost entry: dropped where it lies
            // (dropping an entry reads nothing of this list).
            entered.pop();
            return None;
        }
        let position = entered
            .iter()
            .rposition(|e| e.layer == layer && e.id == *id)
            .or_else(|| entered.iter().rposition(|e| e.id == *id))?;
        Some(entered.remove(position))
    });
    // Dropped after the list is released.
    drop(removed);
}

/// Whether the newest entry on this thread is `layer`'s of span `id`, with
/// no runtrace context attached since: then `id`'s context is the current
/// one, and the layer can use it without the resolution's round trip.
pub(crate) fn is_newest(layer: usize, id: &Id) -> bool {
    ENTERED
        .try_with(|entered| {
            entered.borrow().last().is_some_and(|e| {
                e.layer == layer && e.id == *id && e.scope.nothing_attached_since()
            })
        })
        .unwrap_or(false)
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

/// The [`runtrace::context::ForeignResolver`] of the entries' scopes: the
/// newest entry newer than `newer_than` that has a context, with its scope's
/// id, each entry looked up as its [`Lookup`] says.
pub(crate) fn resolve(newer_than: u64) -> Option<(u64, Context)> {
    resolve_with(newer_than, None, |_| None)
}

/// [`resolve`], with `own` looking up the entries of layer `layer`, if one is
/// given, instead of its dispatcher (a layer inside its own callbacks looks
/// its spans up in the registry it was handed).
pub(crate) fn resolve_with(
    newer_than: u64,
    layer: Option<usize>,
    mut own: impl FnMut(&Id) -> Option<Context>,
) -> Option<(u64, Context)> {
    // The entries older than this one are left to look at.
    let mut below = u64::MAX;
    loop {
        // The next entry to look at, newest first, with the list borrowed
        // only to read: looking one up may start a span, whose processors may
        // read the current context (and so come back here) or enter spans.
        let next = ENTERED
            .try_with(|entered| {
                let entered = entered.try_borrow().ok()?;
                entered
                    .iter()
                    .rev()
                    .map(|e| (e.scope.id(), e))
                    .skip_while(|&(scope, _)| scope >= below)
                    .take_while(|&(scope, _)| scope > newer_than)
                    .find_map(|(scope, e)| match &e.cx {
                        Lookup::Done(None) => None,
                        Lookup::Done(Some(cx)) => Some((scope, Ok(Context::clone(cx)))),
                        // To look up outside the borrow.
                        Lookup::Later => Some((scope, Err((e.layer, e.id.clone())))),
                    })
            })
            .ok()
            .flatten();
        let (scope, (entry_layer, id)) = match next? {
            (scope, Ok(cx)) => return Some((scope, cx)),
            (scope, Err(entry)) => (scope, entry),
        };
        if let Some(cx) = last_found(scope) {
            return Some((scope, cx));
        }
        let cx = if Some(entry_layer) == layer {
            own(&id)
        } else {
            find_in_dispatcher(entry_layer, &id)
        };
        if let Some(cx) = cx {
            keep_found(scope, &cx);
            return Some((scope, cx));
        }
        below = scope;
    }
}

thread_local! {
    /// The last entry looked up on this thread, by its scope's id (never
    /// reused), and its context: native spans started one after another
    /// inside one `tracing` span find it here, without a lookup or an
    /// allocation.
    static LAST_FOUND: RefCell<Option<(u64, Context)>> = const { RefCell::new(None) };
}

/// The context of the entry whose scope is `scope`, if it was the last one
/// looked up.
fn last_found(scope: u64) -> Option<Context> {
    LAST_FOUND
        .try_with(|last| match &*last.try_borrow().ok()? {
            Some((id, cx)) if *id == scope => Some(cx.clone()),
            _ => None,
        })
        .ok()
        .flatten()
}

/// Keeps `cx` as the context of the entry whose scope is `scope`.
fn keep_found(scope: u64, cx: &Context) {
    let _ = LAST_FOUND.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some((scope, cx.clone()));
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

    /// The layer of these tests.
    const L: usize = 1;

    #[test]
    fn exits_in_any_order_leave_the_innermost_entered_context_current() {
        let (a, b, c) = (Id::from_u64(1), Id::from_u64(2), Id::from_u64(3));
        enter(L, &a, Lookup::done(Some(cx(1))));
        enter(L, &b, Lookup::done(Some(cx(2))));
        enter(L, &c, Lookup::done(Some(cx(3))));
        exit(L, &b);
        assert_eq!(Context::current(), cx(3));
        assert_eq!(innermost(L), Some(c.clone()));
        exit(L, &c);
        assert_eq!(Context::current(), cx(1));
        assert_eq!(innermost(L), Some(a.clone()));
        enter(L, &b, Lookup::done(Some(cx(2))));
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
        enter(L, &a, Lookup::done(Some(cx(1))));
        enter(L, &b, Lookup::done(Some(cx(2))));
        enter(L, &a, Lookup::done(Some(cx(1))));
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
        enter(1, &id, Lookup::done(Some(cx(1))));
        enter(2, &id, Lookup::done(None));
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
        enter(1, &id, Lookup::done(Some(cx(1))));
        exit(2, &id);
        assert_eq!(Context::current(), Context::new());
        assert_eq!(innermost(1), None);
    }
}
