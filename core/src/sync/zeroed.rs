//! [`ZeroedSlice`]: a boxed slice allocated zeroed through the allocator's
//! `calloc` path, whatever the element's alignment, so that a large buffer
//! costs memory only for the pages that are written.
//!
//! std's `alloc_zeroed` asks `calloc` for zeroed memory only up to the
//! allocator's own alignment (16 bytes); above it, as for the shared queue's
//! 64-byte slots, it allocates and then writes zeros over every page, which
//! makes a queue for two million spans resident (about 100 MiB) before a span
//! is pushed. Here the buffer is allocated with 16-byte alignment and a
//! little more room, and the slice starts at the first aligned address in it.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;

/// The alignment `calloc` gives and std's `alloc_zeroed` passes to it.
const CALLOC_ALIGN: usize = 16;

/// A `[T]` of zeroed elements, allocated so that untouched pages stay free.
pub(super) struct ZeroedSlice<T> {
    /// The first element, aligned for `T`, inside the allocation.
    elements: NonNull<T>,
    len: usize,
    /// The allocation and its layout, for freeing it.
    allocation: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the slice owns its elements as a `Box<[T]>` would.
unsafe impl<T: Send> Send for ZeroedSlice<T> {}
// SAFETY: as above: shared access gives `&[T]`, as `Box<[T]>` does.
unsafe impl<T: Sync> Sync for ZeroedSlice<T> {}

impl<T> ZeroedSlice<T> {
    /// `len` elements of all zero bytes.
    ///
    /// # Safety
    ///
    /// All zero bytes are a valid `T`, and a `T` needs no drop (the elements
    /// are freed without being dropped).
    ///
    /// # Panics
    ///
    /// If `len` is 0, `T` is zero-sized, or the size overflows.
    pub(super) unsafe fn new(len: usize) -> Self {
        let element = Layout::new::<T>();
        assert!(
            len > 0 && element.size() > 0,
            "a zeroed slice holds something"
        );
        let size = element
            .size()
            .checked_mul(len)
            .and_then(|s| s.checked_add(element.align().saturating_sub(CALLOC_ALIGN)))
            .expect("zeroed slice too large");
        let layout = Layout::from_size_align(size, CALLOC_ALIGN.min(element.align()))
            .expect("zeroed slice too large");
        // SAFETY: `layout` is not zero-sized.
        let allocation = unsafe { alloc::alloc_zeroed(layout) };
        let Some(allocation) = NonNull::new(allocation) else {
            alloc::handle_alloc_error(layout);
        };
        let offset = allocation.as_ptr().align_offset(element.align());
        debug_assert!(offset + element.size() * len <= size);
        // SAFETY: `align_offset` of a pointer aligned to `CALLOC_ALIGN` to a
        // power-of-two alignment is below that alignment, which the extra
        // room covers: the elements lie inside the allocation.
        let elements = unsafe { allocation.add(offset) }.cast::<T>();
        ZeroedSlice {
            elements,
            len,
            allocation,
            layout,
        }
    }
}

impl<T> Deref for ZeroedSlice<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `len` aligned elements lie at `elements`, zeroed, which
        // `new`'s caller guaranteed is a valid `T`; they live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.elements.as_ptr(), self.len) }
    }
}

impl<T> Drop for ZeroedSlice<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the elements need no
        // drop (`new`'s contract).
        unsafe { alloc::dealloc(self.allocation.as_ptr(), self.layout) }
    }
}

impl<T> fmt::Debug for ZeroedSlice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZeroedSlice")
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[repr(align(64))]
    struct Padded(AtomicUsize);

    #[test]
    fn elements_are_zeroed_aligned_and_writable() {
        for len in [1, 3, 1000] {
            // SAFETY: an `AtomicUsize` of 0 is valid and needs no drop.
            let slice = unsafe { ZeroedSlice::<Padded>::new(len) };
            assert_eq!(slice.len(), len);
            assert_eq!(slice.as_ptr() as usize % 64, 0);
            assert!(slice.iter().all(|p| p.0.load(Ordering::Relaxed) == 0));
            for (i, p) in slice.iter().enumerate() {
                p.0.store(i, Ordering::Relaxed);
            }
            assert_eq!(slice[len - 1].0.load(Ordering::Relaxed), len - 1);
        }
    }
}
