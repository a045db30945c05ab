//! [`push_making_room`]: a push whose growth is the caller's.

/// Appends `value`, first replacing a full `vec` by `make_room(vec)`.
/// Nothing of `value` goes through that call: it is written straight into
/// the vector. A value passed to a growth call is built on the stack and
/// copied by loads wider than the stores that built it, which wait for them;
/// and when that path and the direct write share the value, the compiler
/// builds it on the stack for both. Nor does anything here grow the vector
/// itself: a growth path inline made the compiler keep a builder holding the
/// vector in memory instead of registers (`root_builder_4attrs`: 680 ->
/// 860 instructions).
///
/// # Safety
///
/// `make_room` must return a vector with spare capacity
/// (`len() < capacity()`).
#[inline(always)]
pub(crate) unsafe fn push_making_room<T>(
    vec: &mut Vec<T>,
    value: T,
    make_room: impl FnOnce(Vec<T>) -> Vec<T>,
) {
    if vec.len() == vec.capacity() {
        let grown = make_room(std::mem::take(vec));
        debug_assert!(grown.len() < grown.capacity(), "make_room made no room");
        // The vector left by `take` is empty and allocates nothing: an
        // assignment would drop it, by a call that takes `vec`'s address.
        std::mem::forget(std::mem::replace(vec, grown));
    }
    let len = vec.len();
    // SAFETY: `len < capacity`: the vector had room, or `make_room` made
    // some (the caller's promise). Writing the slot at `len` and then
    // counting it is what `Vec::push` does.
    unsafe {
        vec.as_mut_ptr().add(len).write(value);
        vec.set_len(len + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_making_room_only_when_full() {
        let calls = std::cell::Cell::new(0);
        let grow = |mut v: Vec<String>| {
            calls.set(calls.get() + 1);
            v.reserve(v.capacity().max(1));
            v
        };
        let mut v = Vec::new();
        for i in 0..20 {
            // SAFETY: `grow` reserves at least one more slot.
            unsafe { push_making_room(&mut v, i.to_string(), grow) };
        }
        assert_eq!(v, (0..20).map(|i| i.to_string()).collect::<Vec<_>>());
        // 0 -> 1 -> 2 -> 4 -> 8 -> 16 -> 32 slots at least.
        assert!(calls.get() <= 6, "grew {} times", calls.get());
    }
}
