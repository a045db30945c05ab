//! [`Frames`]: a thread's stack of values lent for the length of a call, as
//! a list linked through the callers' stack frames.
//!
//! The context stack makes a context (and the data of its span) current for
//! the length of a call: each poll of an `in_span` future, each
//! `Tracer::in_span`. Pushing such a context onto a heap-allocated stack and
//! popping it again, with the bookkeeping that guards dropped in any order
//! need, is most of what an `.await` in a traced future costs. A call nests
//! in its caller, so its frame can live in the call itself: one node on the
//! machine stack, linked on top of the thread's list while the call runs and
//! unlinked when it returns or unwinds. Nothing is moved or allocated, and
//! the values stay where they lie.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// A thread's frames, newest on top: each has its own `M` (metadata, owned by
/// the frame) and lends an `&mut A` and, optionally, an `&mut B`. Keep it in
/// a thread-local: it is neither `Send` nor `Sync`.
pub(crate) struct Frames<M, A, B> {
    top: Cell<Option<NonNull<Node<M, A, B>>>>,
    /// Visits running: `-1` for a mutable one, else the number of shared
    /// ones, as in a `RefCell`. A visit that would overlap a mutable one is
    /// refused, so no value is reached twice at once.
    visits: Cell<isize>,
    _not_send: PhantomData<*mut ()>,
}

/// One frame, on the stack of [`Frames::push_while`].
struct Node<M, A, B> {
    meta: M,
    a: NonNull<A>,
    b: Option<NonNull<B>>,
    below: Option<NonNull<Node<M, A, B>>>,
}

impl<M, A, B> Frames<M, A, B> {
    /// No frames.
    pub(crate) const fn new() -> Self {
        Frames {
            top: Cell::new(None),
            visits: Cell::new(0),
            _not_send: PhantomData,
        }
    }

    /// Runs `f` with a frame of `meta`, lending `a` and `b`, on top; the frame
    /// comes off when `f` returns or unwinds. Frames pushed inside `f` come
    /// off before it returns, so frames leave in the reverse order of their
    /// push (the process aborts if one does not, as a dangling frame could
    /// otherwise be reached).
    #[inline]
    pub(crate) fn push_while<R>(
        &self,
        meta: M,
        a: &mut A,
        b: Option<&mut B>,
        f: impl FnOnce() -> R,
    ) -> R {
        let mut node = Node {
            meta,
            a: NonNull::from(a),
            b: b.map(NonNull::from),
            below: self.top.get(),
        };
        let node = NonNull::from(&mut node);
        self.top.set(Some(node));
        let _pop = Pop { frames: self, node };
        f()
    }

    /// Runs `f` on the top frame, shared: `None` if there is none, or while a
    /// mutable visit runs.
    #[inline]
    pub(crate) fn with_top<R>(&self, f: impl FnOnce(&M, &A, Option<&B>) -> R) -> Option<R> {
        let node = self.top.get()?;
        let visit = Visit::shared(self);
        debug_assert!(visit.is_some(), "a frames visit inside a mutable one");
        let _visit = visit?;
        // SAFETY: a node on the list is alive: it is unlinked before the
        // `push_while` call that owns it returns. The values it lends are
        // borrowed by that call, which does not use them until it returns;
        // the visit flag keeps mutable visits, the only other way to them,
        // from overlapping this one.
        let node = unsafe { node.as_ref() };
        // SAFETY: as above.
        let (a, b) = unsafe { (node.a.as_ref(), node.b.map(|b| b.as_ref())) };
        Some(f(&node.meta, a, b))
    }

    /// Runs `f` on each frame, newest first, until it returns `Some`, with
    /// exclusive access; `None` if it never does, or while another visit runs.
    pub(crate) fn find_mut<R>(
        &self,
        mut f: impl FnMut(&M, &mut A, Option<&mut B>) -> Option<R>,
    ) -> Option<R> {
        let visit = Visit::exclusive(self);
        debug_assert!(
            visit.is_some(),
            "a mutable frames visit inside another visit"
        );
        let _visit = visit?;
        let mut next = self.top.get();
        while let Some(mut node) = next {
            // SAFETY: as in `with_top`; this visit is the only one running, so
            // these are the only references to the node and its values, and
            // each dies before the next node's are made.
            let node = unsafe { node.as_mut() };
            next = node.below;
            // SAFETY: as above.
            let (a, b) = unsafe { (node.a.as_mut(), node.b.map(|mut b| b.as_mut())) };
            if let Some(found) = f(&node.meta, a, b) {
                return Some(found);
            }
        }
        None
    }
}

/// Unlinks a frame from its list when dropped.
struct Pop<'a, M, A, B> {
    frames: &'a Frames<M, A, B>,
    node: NonNull<Node<M, A, B>>,
}

impl<M, A, B> Drop for Pop<'_, M, A, B> {
    #[inline]
    fn drop(&mut self) {
        if self.frames.top.get() != Some(self.node) {
            // Not on top: a frame pushed later is still linked, and would
            // point to this one after it is gone.
            std::process::abort();
        }
        // SAFETY: the node is alive (its `push_while` call is returning), and
        // no visit holds a reference to it: a visit started inside this
        // frame's call ended before the call returned, and one that started
        // earlier (this frame pushed from its callback) only reaches the
        // nodes that were linked when it started, all below this one.
        let below = unsafe { self.node.as_ref().below };
        self.frames.top.set(below);
    }
}

/// A running visit, counted in [`Frames::visits`] until dropped.
struct Visit<'a> {
    visits: &'a Cell<isize>,
}

impl<'a> Visit<'a> {
    #[inline]
    fn shared<M, A, B>(frames: &'a Frames<M, A, B>) -> Option<Self> {
        let n = frames.visits.get();
        (n >= 0).then(|| {
            frames.visits.set(n + 1);
            Visit {
                visits: &frames.visits,
            }
        })
    }

    fn exclusive<M, A, B>(frames: &'a Frames<M, A, B>) -> Option<Self> {
        (frames.visits.get() == 0).then(|| {
            frames.visits.set(-1);
            Visit {
                visits: &frames.visits,
            }
        })
    }
}

impl Drop for Visit<'_> {
    #[inline]
    fn drop(&mut self) {
        let n = self.visits.get();
        self.visits.set(if n < 0 { 0 } else { n - 1 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static FRAMES: Frames<u32, Vec<u32>, String> = const { Frames::new() };
    }

    fn push_to_frame(id: u32, n: u32) -> bool {
        FRAMES
            .with(|f| f.find_mut(|m, a, _| (*m == id).then(|| a.push(n))))
            .is_some()
    }

    fn top_id() -> Option<u32> {
        FRAMES.with(|f| f.with_top(|m, _, _| *m))
    }

    #[test]
    fn lent_values_are_reached_in_their_frames_and_stay_where_they_lie() {
        let (mut outer, mut inner) = (vec![1], vec![10]);
        let mut text = String::from("b");
        FRAMES.with(|f| {
            f.push_while(1, &mut outer, None, || {
                assert_eq!(top_id(), Some(1));
                f.push_while(2, &mut inner, Some(&mut text), || {
                    assert_eq!(top_id(), Some(2));
                    assert!(push_to_frame(1, 2) && push_to_frame(2, 11));
                    f.find_mut(|_, _, b| b.map(|b| b.push('!')));
                    assert!(!push_to_frame(3, 0), "no such frame");
                    // Shared visits nest.
                    f.with_top(|_, a, _| assert_eq!(top_id().map(|_| a.len()), Some(2)));
                });
                assert_eq!(top_id(), Some(1));
            });
            assert_eq!(top_id(), None);
        });
        assert_eq!(
            (outer, inner, text.as_str()),
            (vec![1, 2], vec![10, 11], "b!")
        );
    }

    /// Refused, so that no value is reached twice at once; a debug build
    /// asserts, since the crate never nests visits so.
    #[test]
    #[cfg_attr(
        debug_assertions,
        should_panic(expected = "a mutable frames visit inside another visit")
    )]
    fn a_mutable_visit_inside_a_shared_one_is_refused() {
        let mut value = vec![];
        FRAMES.with(|f| {
            f.push_while(9, &mut value, None, || {
                f.with_top(|_, _, _| assert!(!push_to_frame(9, 1)));
            })
        });
        assert!(value.is_empty());
    }

    #[test]
    fn a_frame_comes_off_when_its_call_panics() {
        let mut value = vec![];
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            FRAMES.with(|f| {
                f.push_while(7, &mut value, None, || {
                    push_to_frame(7, 1);
                    panic!("in the call");
                })
            })
        }));
        assert!(caught.is_err());
        assert_eq!(top_id(), None);
        assert_eq!(value, [1]);
        // No visit left counted after the unwind.
        let mut again = vec![];
        FRAMES.with(|f| f.push_while(8, &mut again, None, || assert!(push_to_frame(8, 2))));
        assert_eq!(again, [2]);
    }
}
