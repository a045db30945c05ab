//! [`Lent`]: a `&mut T` lent out for the length of a call, as a value without
//! a lifetime that a thread-local registry can hold.
//!
//! The context stack uses it to reach the data of the span that
//! `Tracer::in_span` or an `in_span` future runs, where it lies (in a stack
//! frame, or a pinned future), instead of moving the data in and out of the
//! stack at every call and poll.

use std::marker::PhantomData;
use std::ptr::NonNull;

/// Exclusive access to a `T` lent by [`lend`], valid until `lend` returns.
/// Neither `Clone` nor `Send`: there is one, on the lending thread.
#[derive(Debug)]
pub(crate) struct Lent<T> {
    target: NonNull<T>,
    _not_send: PhantomData<*mut T>,
}

impl<T> Lent<T> {
    /// The lent value.
    pub(crate) fn get(&mut self) -> &mut T {
        // SAFETY: `lend` made this from a `&mut T` that it keeps borrowed and
        // unused until it has this `Lent` back (or aborts): the target is
        // alive, and `&mut self` on the one `Lent` makes this access the only one.
        unsafe { self.target.as_mut() }
    }
}

/// Lends `slot`: gives `register` a [`Lent`] of it (to store, returning a
/// key), runs `run` with the key, then has `unregister` give the `Lent` back,
/// also when `run` panics. A `register` that cannot store it gives it back at
/// once, and `run` gets no key. Aborts the process if the `Lent` does not come
/// back: it might otherwise outlive the borrow of `slot`.
pub(crate) fn lend<T, K, R>(
    slot: &mut T,
    register: impl FnOnce(Lent<T>) -> Result<K, Lent<T>>,
    run: impl FnOnce(Option<&K>) -> R,
    unregister: impl FnOnce(K) -> Option<Lent<T>>,
) -> R {
    let target = NonNull::from(slot);
    let lent = Lent {
        target,
        _not_send: PhantomData,
    };
    match register(lent) {
        Ok(key) => {
            let back = GiveBack {
                key: Some(key),
                unregister: Some(unregister),
                target,
            };
            run(back.key.as_ref())
        }
        Err(lent) => {
            // Back in hand (and dropped here): nothing else can reach `slot`.
            assert_eq!(lent.target, target, "another `Lent` came back");
            run(None)
        }
    }
}

/// Takes the `Lent` back when dropped.
struct GiveBack<T, K, U: FnOnce(K) -> Option<Lent<T>>> {
    key: Option<K>,
    unregister: Option<U>,
    target: NonNull<T>,
}

impl<T, K, U: FnOnce(K) -> Option<Lent<T>>> Drop for GiveBack<T, K, U> {
    fn drop(&mut self) {
        let returned = match (self.key.take(), self.unregister.take()) {
            (Some(key), Some(unregister)) => unregister(key),
            _ => None,
        };
        if returned.map(|lent| lent.target) != Some(self.target) {
            // A registry that lost or kept the `Lent`: not one access more.
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        static REGISTRY: RefCell<Vec<Lent<Vec<u32>>>> = const { RefCell::new(Vec::new()) };
    }

    fn push_through_registry(n: u32) {
        REGISTRY.with(|r| r.borrow_mut().last_mut().unwrap().get().push(n));
    }

    #[test]
    fn the_lent_value_is_reached_through_the_registry_and_comes_back() {
        let mut list = vec![1];
        let len = lend(
            &mut list,
            |lent| {
                REGISTRY.with(|r| r.borrow_mut().push(lent));
                Ok(())
            },
            |key| {
                assert!(key.is_some());
                push_through_registry(2);
                push_through_registry(3);
                REGISTRY.with(|r| r.borrow().len())
            },
            |()| REGISTRY.with(|r| r.borrow_mut().pop()),
        );
        assert_eq!(len, 1);
        assert_eq!(list, [1, 2, 3]);
        assert!(REGISTRY.with(|r| r.borrow().is_empty()));
    }

    #[test]
    fn it_comes_back_when_the_call_panics() {
        let mut list = Vec::new();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lend(
                &mut list,
                |lent| {
                    REGISTRY.with(|r| r.borrow_mut().push(lent));
                    Ok(())
                },
                |_| {
                    push_through_registry(7);
                    panic!("in the call");
                },
                |()| REGISTRY.with(|r| r.borrow_mut().pop()),
            )
        }));
        assert!(caught.is_err());
        assert!(REGISTRY.with(|r| r.borrow().is_empty()));
        assert_eq!(list, [7]);
    }

    #[test]
    fn a_registry_that_cannot_store_it_gives_it_back_at_once() {
        let mut list = vec![1];
        let ran = lend(&mut list, Err, |key: Option<&()>| key.is_none(), |()| None);
        assert!(ran);
        list.push(2);
        assert_eq!(list, [1, 2]);
    }
}
