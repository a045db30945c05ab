//! [`for_write`]: a hint that this thread is about to write some memory.

/// Asks the processor to fetch the cache lines of `len` bytes from `start`
/// for writing, without waiting for them: at most 8 lines, which hold a
/// `tracing` span's 9 usual attributes of 56 bytes (a larger list is rare,
/// and its later lines are written later anyway).
///
/// For memory that another core touched last, as a recycled attribute list
/// that the batch thread cleared: the lines then arrive together, while the
/// caller does other work, instead of one by one as its stores reach them,
/// each store holding back every later one (and every load that must wait
/// for a store) until its line arrives. On other architectures, and under
/// miri, it does nothing.
#[inline]
pub(crate) fn for_write(start: *const u8, len: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        /// A cache line's size on the processors this matters on.
        const LINE: usize = 64;
        const MAX_LINES: usize = 8;
        let mut offset = 0;
        while offset < len.min(MAX_LINES * LINE) {
            // SAFETY: `prefetchw` is a hint: it never faults (not even for an
            // unmapped address), changes no memory, register or flag, and
            // processors without it run it as a no-op (its opcode was
            // reserved as one). `wrapping_add` makes no claim on the address.
            unsafe {
                std::arch::asm!(
                    "prefetchw [{}]",
                    in(reg) start.wrapping_add(offset),
                    options(nostack, preserves_flags, readonly)
                );
            }
            offset += LINE;
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = (start, len);
}

#[cfg(test)]
mod tests {
    use super::for_write;

    #[test]
    fn a_hint_neither_faults_nor_changes_memory() {
        let buffer = vec![7u8; 1024];
        for_write(buffer.as_ptr(), buffer.len());
        assert!(buffer.iter().all(|&b| b == 7));
        // Nothing is mapped at address 0, nor (in user space) near the top.
        for_write(std::ptr::null(), 4096);
        for_write(usize::MAX as *const u8, 64);
        for_write(buffer.as_ptr(), 0);
    }
}
