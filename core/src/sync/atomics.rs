//! The atomics and cells the lock-free structures use: std's, or, in tests
//! under `--cfg loom`, loom's model-checked ones (loom is only a
//! dev-dependency), so that the same code runs under both.

#[cfg(all(loom, test))]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(all(loom, test))]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};

/// std's `UnsafeCell` behind loom's closure-based API. Never made by value:
/// the queue's slots are allocated zeroed.
#[cfg(not(all(loom, test)))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(all(loom, test)))]
impl<T> UnsafeCell<T> {
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

pub(crate) fn spin_loop() {
    #[cfg(all(loom, test))]
    loom::hint::spin_loop();
    #[cfg(not(all(loom, test)))]
    std::hint::spin_loop();
}

pub(crate) fn yield_now() {
    #[cfg(all(loom, test))]
    loom::thread::yield_now();
    #[cfg(not(all(loom, test)))]
    std::thread::yield_now();
}
