//! [`push_within_capacity`]: std's unstable `Vec::push_within_capacity`.

/// Appends `value` if `vec` has room for it, else hands it back. Unlike
/// `Vec::push`, it has no path that grows the vector, so a caller inlining it
/// does not pass the vector's address to a call: a builder holding the vector
/// can then live in registers instead of being copied from one stack slot to
/// the next at every step of a method chain.
#[inline(always)]
pub(crate) fn push_within_capacity<T>(vec: &mut Vec<T>, value: T) -> Result<(), T> {
    let len = vec.len();
    if len == vec.capacity() {
        return Err(value);
    }
    // SAFETY: `len < capacity`, so the slot at `len` is allocated and unused;
    // writing it and then counting it is what `Vec::push` does.
    unsafe {
        vec.as_mut_ptr().add(len).write(value);
        vec.set_len(len + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_up_to_the_capacity_then_hands_the_value_back() {
        let mut v = Vec::with_capacity(2);
        assert_eq!(push_within_capacity(&mut v, String::from("a")), Ok(()));
        assert_eq!(push_within_capacity(&mut v, String::from("b")), Ok(()));
        let capacity = v.capacity();
        let full = (2..capacity).all(|_| push_within_capacity(&mut v, String::new()).is_ok());
        assert!(full);
        assert_eq!(
            push_within_capacity(&mut v, String::from("c")),
            Err(String::from("c"))
        );
        assert_eq!(v.len(), capacity);
        assert_eq!(&v[..2], ["a", "b"]);
        let mut empty: Vec<String> = Vec::new();
        assert_eq!(
            push_within_capacity(&mut empty, "x".into()),
            Err("x".into())
        );
    }
}
