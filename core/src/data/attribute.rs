//! Attribute keys and values.
//!
//! A [`Str`] is a `&'static str` (stored without allocation), a short string
//! stored inline (no allocation either), or a shared `Arc<str>` (cloned
//! without copying). Values are the OpenTelemetry primitive types and
//! homogeneous arrays of them.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// An immutable string that is cheap to clone: static, short and inline, or
/// shared by `Arc`.
///
/// Strings made at run time ([`Str::copied`], `From<String>`) of up to
/// [`InlineStr::CAPACITY`] bytes are stored inline: no allocation on the
/// thread that makes them, and none for the batch thread to free.
///
/// ```
/// use runtrace::Str;
/// let route = String::from("/v1/infer");
/// assert!(matches!(Str::from(route), Str::Inline(_)));
/// assert_eq!(Str::copied("/v1/infer"), "/v1/infer");
/// assert!(matches!(Str::copied(&"x".repeat(64)), Str::Shared(_)));
/// ```
#[derive(Clone)]
pub enum Str {
    /// A string literal; no allocation.
    Static(&'static str),
    /// A short string made at run time, stored in place; no allocation.
    Inline(InlineStr),
    /// A longer string made at run time, shared.
    Shared(Arc<str>),
}

/// A string of at most [`InlineStr::CAPACITY`] bytes stored in place (so
/// that a [`Str`] holding it is no larger than one holding an `Arc<str>`).
#[derive(Clone, Copy)]
pub struct InlineStr {
    len: u8,
    bytes: [u8; InlineStr::CAPACITY],
}

impl InlineStr {
    /// The longest string stored inline, in bytes.
    pub const CAPACITY: usize = 22;

    /// A copy of `text`, if it fits.
    #[inline]
    pub fn new(text: &str) -> Option<InlineStr> {
        let [low, middle, high] = inline_words(text.as_bytes())?;
        let mut bytes = [0; Self::CAPACITY];
        bytes[..8].copy_from_slice(&low.to_le_bytes());
        bytes[8..16].copy_from_slice(&middle.to_le_bytes());
        bytes[16..].copy_from_slice(&high.to_le_bytes()[..Self::CAPACITY - 16]);
        Some(InlineStr {
            len: text.len() as u8,
            bytes,
        })
    }

    /// The text's bytes (no UTF-8 check).
    #[inline]
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        // Always valid: the bytes were copied from a `str` (or cut at a char
        // boundary of one); checked rather than trusted, to keep this module
        // free of unsafe code.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// The bytes of `src`, zero-padded to 24, as three little-endian words (`None`
/// if they are more than [`InlineStr::CAPACITY`]), read with a few loads of fixed size
/// (overlapping where `src` is shorter than they are) and shifts. Copying the
/// bytes into a zeroed array instead (a `memcpy` of `src.len()` bytes) left
/// narrow stores that the next copy of the string, with wider loads, had to
/// wait for: `perf annotate` of a `tracing` span's `&str` field put three
/// quarters of the field's samples there.
#[inline]
fn inline_words(src: &[u8]) -> Option<[u64; 3]> {
    fn first<const N: usize>(src: &[u8]) -> u64 {
        src.first_chunk::<N>().map_or(0, |c| {
            let mut word = [0; 8];
            word[..N].copy_from_slice(c);
            u64::from_le_bytes(word)
        })
    }
    fn last<const N: usize>(src: &[u8]) -> u64 {
        src.last_chunk::<N>().map_or(0, |c| {
            let mut word = [0; 8];
            word[..N].copy_from_slice(c);
            u64::from_le_bytes(word)
        })
    }
    let len = src.len();
    Some(match len {
        0 => [0; 3],
        1..=3 => {
            // The first, middle and last bytes cover 1 to 3.
            let at = |i: usize| u64::from(src[i]) << (8 * i);
            [at(0) | at(len / 2) | at(len - 1), 0, 0]
        }
        // Two 4-byte loads that overlap where `len < 8`.
        4..=7 => [first::<4>(src) | last::<4>(src) << (8 * (len - 4)), 0, 0],
        8 => [first::<8>(src), 0, 0],
        // The last 8 bytes, shifted so that byte 8 comes first.
        9..=16 => [first::<8>(src), last::<8>(src) >> (8 * (16 - len)), 0],
        17..=InlineStr::CAPACITY => [
            first::<8>(src),
            first::<8>(&src[8..]),
            last::<8>(src) >> (8 * (24 - len)),
        ],
        _ => return None,
    })
}

impl fmt::Debug for InlineStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Str {
    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match self {
            Str::Static(s) => s,
            Str::Inline(s) => s.as_str(),
            Str::Shared(s) => s,
        }
    }

    /// The text's bytes: what comparing two strings needs, without the UTF-8
    /// check an inline string's [`as_str`](Self::as_str) makes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Str::Static(s) => s.as_bytes(),
            Str::Inline(s) => s.as_bytes(),
            Str::Shared(s) => s.as_bytes(),
        }
    }

    /// Equal bytes: [`PartialEq`]'s path for strings made at run time.
    #[inline(never)]
    fn bytes_eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }

    /// A copy of `text`: inline if it fits, else in one shared allocation.
    #[inline]
    pub fn copied(text: &str) -> Str {
        match InlineStr::new(text) {
            Some(inline) => Str::Inline(inline),
            None => Str::Shared(Arc::from(text)),
        }
    }
}

impl Default for Str {
    fn default() -> Self {
        Str::Static("")
    }
}

impl std::ops::Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Str {
    /// Equal text, whatever the variants (compared as bytes).
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            // Keys, most of the time: inlined where keys are compared.
            // The same literal (the same address) needs no byte compare.
            (Str::Static(a), Str::Static(b)) => {
                a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
            }
            _ => self.bytes_eq(other),
        }
    }
}
impl Eq for Str {}

impl PartialEq<str> for Str {
    #[inline]
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Str {
    #[inline]
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl std::hash::Hash for Str {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&'static str> for Str {
    fn from(s: &'static str) -> Self {
        Str::Static(s)
    }
}

impl From<String> for Str {
    /// Inline if it fits, else shared (`Arc<str>` copies the text either way).
    fn from(s: String) -> Self {
        Str::copied(&s)
    }
}

impl From<Arc<str>> for Str {
    fn from(s: Arc<str>) -> Self {
        Str::Shared(s)
    }
}

impl From<std::borrow::Cow<'static, str>> for Str {
    fn from(s: std::borrow::Cow<'static, str>) -> Self {
        match s {
            std::borrow::Cow::Borrowed(b) => Str::Static(b),
            std::borrow::Cow::Owned(o) => o.into(),
        }
    }
}

/// An attribute key.
pub type Key = Str;

/// A homogeneous array attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    /// Booleans.
    Bool(Vec<bool>),
    /// 64-bit signed integers.
    I64(Vec<i64>),
    /// 64-bit floats.
    F64(Vec<f64>),
    /// Strings.
    String(Vec<Str>),
}

/// An attribute value.
///
/// ```
/// use runtrace::Value;
/// assert_eq!(Value::from(3), Value::I64(3));
/// assert_eq!(Value::from("gpu").as_str(), Some("gpu"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    I64(i64),
    /// A 64-bit float.
    F64(f64),
    /// A string.
    String(Str),
    /// A homogeneous array.
    Array(Array),
}

impl Value {
    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// Cuts strings (also inside arrays) to at most `max_chars` characters.
    pub(crate) fn truncate(&mut self, max_chars: usize) {
        fn cut(s: &mut Str, max: usize) {
            if let Some((idx, _)) = s.as_str().char_indices().nth(max) {
                *s = match s {
                    Str::Static(st) => Str::Static(&st[..idx]),
                    Str::Inline(_) | Str::Shared(_) => Str::copied(&s.as_str()[..idx]),
                };
            }
        }
        match self {
            Value::String(s) => cut(s, max_chars),
            Value::Array(Array::String(v)) => v.iter_mut().for_each(|s| cut(s, max_chars)),
            _ => {}
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, v: &[T]) -> fmt::Result {
            f.write_str("[")?;
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{x}")?;
            }
            f.write_str("]")
        }
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::I64(i) => write!(f, "{i}"),
            Value::F64(x) => write!(f, "{x}"),
            Value::String(s) => f.write_str(s),
            Value::Array(Array::Bool(v)) => list(f, v),
            Value::Array(Array::I64(v)) => list(f, v),
            Value::Array(Array::F64(v)) => list(f, v),
            Value::Array(Array::String(v)) => list(f, v),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v $(as $cast)?)
            }
        }
    )*};
}

value_from!(bool => Bool, i64 => I64, i32 => I64 as i64, u32 => I64 as i64, f64 => F64);

impl From<&'static str> for Value {
    fn from(v: &'static str) -> Self {
        Value::String(Str::Static(v))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v.into())
    }
}

impl From<Str> for Value {
    fn from(v: Str) -> Self {
        Value::String(v)
    }
}

impl From<Arc<str>> for Value {
    fn from(v: Arc<str>) -> Self {
        Value::String(v.into())
    }
}

impl From<Array> for Value {
    fn from(v: Array) -> Self {
        Value::Array(v)
    }
}

impl From<Vec<bool>> for Value {
    fn from(v: Vec<bool>) -> Self {
        Value::Array(Array::Bool(v))
    }
}

impl From<Vec<i64>> for Value {
    fn from(v: Vec<i64>) -> Self {
        Value::Array(Array::I64(v))
    }
}

impl From<Vec<f64>> for Value {
    fn from(v: Vec<f64>) -> Self {
        Value::Array(Array::F64(v))
    }
}

impl From<Vec<&'static str>> for Value {
    fn from(v: Vec<&'static str>) -> Self {
        Value::Array(Array::String(v.into_iter().map(Str::Static).collect()))
    }
}

impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Value::Array(Array::String(v.into_iter().map(Str::from).collect()))
    }
}

/// A key and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    /// The key.
    pub key: Key,
    /// The value.
    pub value: Value,
}

impl KeyValue {
    /// Pairs a key with a value.
    ///
    /// ```
    /// let kv = runtrace::KeyValue::new("model", "llama");
    /// assert_eq!(kv.key, "model");
    /// ```
    pub fn new(key: impl Into<Key>, value: impl Into<Value>) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Sets `kv` in `list`, which has reached the count limit `max_count`. An
/// existing key is overwritten (its last occurrence: the value that wins when
/// the list is de-duplicated). A new key makes the list de-duplicated
/// ([`dedup_keys`]; spans push attributes without looking for their key, as
/// a search made a span's `n` attributes cost `n²/2` compares), so that only
/// distinct keys count, and is discarded if the list is still full. Returns
/// `false` if it was discarded.
#[inline(never)]
pub(crate) fn set_at_limit(list: &mut Vec<KeyValue>, kv: KeyValue, max_count: usize) -> bool {
    if let Some(existing) = list.iter_mut().rev().find(|e| e.key == kv.key) {
        existing.value = kv.value;
        return true;
    }
    dedup_keys(list);
    if list.len() >= max_count {
        return false;
    }
    list.push(kv);
    true
}

/// Up to this many attributes, duplicates are found with a table on the
/// stack; beyond it, by sorting.
const TABLE_DEDUP_MAX: usize = 128;

/// Keeps the first occurrence of each key, with the value of its last one (a
/// key set again overrides its earlier value), in order. Linear in the number
/// of attributes up to [`TABLE_DEDUP_MAX`] (`n log n` beyond): spans, and
/// builders, add attributes without looking for their key, and the list is
/// de-duplicated once, by the batch thread before export, or on the
/// application thread: before a span reaches a custom processor (or several
/// processors), for a list that reaches the count limit, and for a full list
/// of 16 or more that is about to grow.
///
/// A list without duplicates, the usual one, is only read. Inlined: most
/// spans have fewer than two attributes, and the batch thread calls this for
/// every span it exports.
#[inline]
pub(crate) fn dedup_keys(attributes: &mut Vec<KeyValue>) {
    if attributes.len() > 1 {
        dedup_repeats(attributes);
    }
}

/// [`dedup_keys`] for two attributes or more.
#[inline(never)]
fn dedup_repeats(attributes: &mut Vec<KeyValue>) {
    match attributes.len() {
        // A table at most half full; a small one for the usual handful of
        // attributes is quicker to clear.
        n if n <= 16 => dedup_in_table::<32>(attributes),
        n if n <= TABLE_DEDUP_MAX => dedup_in_table::<{ 2 * TABLE_DEDUP_MAX }>(attributes),
        _ => dedup_sorted(attributes),
    }
}

/// [`dedup_keys`] for at most `SLOTS / 2` (and [`TABLE_DEDUP_MAX`])
/// attributes: an open-addressing table of `SLOTS` one-byte slots, a power of
/// two, each the index + 1 of a key's first occurrence, and a bit for each
/// later occurrence.
fn dedup_in_table<const SLOTS: usize>(attributes: &mut Vec<KeyValue>) {
    debug_assert!(SLOTS.is_power_of_two() && SLOTS <= 2 * TABLE_DEDUP_MAX);
    debug_assert!(attributes.len() <= SLOTS / 2);
    let mut slots = [0u8; SLOTS];
    let mask = SLOTS - 1;
    let mut repeated = 0u128;
    for i in 0..attributes.len() {
        let mut slot = key_hash(attributes[i].key.as_bytes()) & mask;
        loop {
            let first = usize::from(slots[slot]);
            if first == 0 {
                slots[slot] = (i + 1) as u8;
                break;
            }
            if attributes[first - 1].key == attributes[i].key {
                let value = std::mem::replace(&mut attributes[i].value, Value::Bool(false));
                attributes[first - 1].value = value;
                repeated |= 1 << i;
                break;
            }
            slot = (slot + 1) & mask;
        }
    }
    if repeated != 0 {
        let mut i = 0;
        attributes.retain(|_| {
            i += 1;
            repeated & (1 << (i - 1)) == 0
        });
    }
}

/// [`dedup_keys`] for more than [`TABLE_DEDUP_MAX`] attributes: their
/// indexes sorted by key (and by place among equal keys), so that each key's
/// occurrences lie together, first to last. `O(n log n)`, and no hashing: no
/// thread-local random state (this may run while a thread exits, in a call
/// that cannot unwind) and no keys an attacker could make collide.
fn dedup_sorted(attributes: &mut Vec<KeyValue>) {
    let mut order: Vec<usize> = (0..attributes.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        (attributes[a].key.as_bytes(), a).cmp(&(attributes[b].key.as_bytes(), b))
    });
    // For each key's first occurrence, the index of its last one; usize::MAX
    // for a later occurrence.
    let mut last = vec![usize::MAX; attributes.len()];
    let mut group = 0;
    for i in 1..=order.len() {
        let ends = i == order.len()
            || attributes[order[i]].key.as_bytes() != attributes[order[group]].key.as_bytes();
        if ends {
            last[order[group]] = order[i - 1];
            group = i;
        }
    }
    for (first, &last) in last.iter().enumerate() {
        if last != usize::MAX && last != first {
            let value = std::mem::replace(&mut attributes[last].value, Value::Bool(false));
            attributes[first].value = value;
        }
    }
    let mut is_first = last.iter().map(|&l| l != usize::MAX);
    attributes.retain(|_| is_first.next().unwrap_or(false));
}

/// A hash of a key from its length and at most 16 of its bytes (the first and
/// last 8, or fewer for a short key): no loop, and attribute keys that share a
/// prefix (`http.request.method`, `http.route`) still differ in length or
/// ending. Keys it confuses are told apart by comparing them.
#[inline]
fn key_hash(key: &[u8]) -> usize {
    let n = key.len();
    let word = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().unwrap_or_default());
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            key[at..at + 4].try_into().unwrap_or_default(),
        ))
    };
    let (head, tail) = match n {
        8.. => (word(0), word(n - 8)),
        4..=7 => (half(0), half(n - 4)),
        1..=3 => (
            u64::from(key[0]) | u64::from(key[n / 2]) << 8,
            u64::from(key[n - 1]),
        ),
        0 => (0, 0),
    };
    let mixed = (head ^ tail.rotate_left(32) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 56) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundaries() {
        let mut v = Value::from("héllo");
        v.truncate(2);
        assert_eq!(v.as_str(), Some("hé"));
        let mut a = Value::from(vec!["abc".to_string(), "de".to_string()]);
        a.truncate(2);
        assert_eq!(a, Value::from(vec!["ab", "de"]));
        let mut short = Value::from("ab");
        short.truncate(5);
        assert_eq!(short.as_str(), Some("ab"));
    }

    #[test]
    fn an_inline_copy_holds_every_byte_of_every_length_and_zeros_after() {
        // Distinct bytes at each position, multi-byte characters at the ends.
        let text = "ab\u{e9}cdefghijklmnopqrstuvwxyz0123456789";
        for len in 0..=InlineStr::CAPACITY + 2 {
            let Some(prefix) = text.get(..len) else {
                continue;
            };
            let inline = InlineStr::new(prefix);
            if len > InlineStr::CAPACITY {
                assert!(inline.is_none(), "{len} bytes");
                continue;
            }
            let inline = inline.expect("fits");
            assert_eq!(inline.as_str(), prefix, "{len} bytes");
            assert!(inline.bytes[len..].iter().all(|&b| b == 0), "{len} bytes");
        }
        for len in 0..=InlineStr::CAPACITY {
            let repeated = "\u{7f}".repeat(len);
            assert_eq!(InlineStr::new(&repeated).expect("fits").as_str(), repeated);
        }
    }

    #[test]
    fn short_strings_are_inline_and_no_larger_than_shared_ones() {
        assert_eq!(std::mem::size_of::<Str>(), 24);
        let fits = "a".repeat(InlineStr::CAPACITY);
        let long = "a".repeat(InlineStr::CAPACITY + 1);
        assert!(matches!(Str::copied(&fits), Str::Inline(_)));
        assert!(matches!(Str::from(long.clone()), Str::Shared(_)));
        assert_eq!(Str::copied(&fits), fits.as_str());
        assert_eq!(Str::from(long.clone()), long.as_str());
        assert_eq!(Str::copied(""), Str::Static(""));
        // Multi-byte text, cut at a char boundary, stays valid inline.
        let mut v = Value::String(Str::copied("ééééé"));
        v.truncate(3);
        assert_eq!(v.as_str(), Some("ééé"));
        assert!(matches!(v, Value::String(Str::Inline(_))));
    }

    #[test]
    fn the_same_text_is_the_same_key_whatever_the_variant() {
        use std::collections::HashMap;
        let text = "http.route";
        let variants = [
            Str::Static(text),
            Str::copied(text),
            Str::Shared(Arc::from(text)),
        ];
        assert!(matches!(variants[1], Str::Inline(_)));
        let map: HashMap<Str, usize> = HashMap::from([(Str::Static(text), 1)]);
        for variant in &variants {
            assert_eq!(variant, &variants[0]);
            assert_eq!(map.get(variant), Some(&1));
            assert_eq!(map.get(text), Some(&1));
        }
    }

    /// At the limit, repeats are removed first: a new key fits if they made
    /// room, an existing one is overwritten, and one more is discarded.
    #[test]
    fn a_full_list_counts_distinct_keys_then_overwrites_or_discards() {
        let mut list = vec![KeyValue::new("a", 1), KeyValue::new("a", 2)];
        assert!(set_at_limit(&mut list, KeyValue::new("b", 3), 2));
        assert_eq!(list, vec![KeyValue::new("a", 2), KeyValue::new("b", 3)]);
        assert!(set_at_limit(&mut list, KeyValue::new("a", 4), 2));
        assert!(!set_at_limit(&mut list, KeyValue::new("c", 5), 2));
        assert_eq!(list, vec![KeyValue::new("a", 4), KeyValue::new("b", 3)]);
        assert!(!set_at_limit(&mut Vec::new(), KeyValue::new("a", 1), 0));
    }

    fn keys_and_ints(attributes: &[KeyValue]) -> Vec<(String, i64)> {
        attributes
            .iter()
            .map(|kv| match &kv.value {
                Value::I64(v) => (kv.key.to_string(), *v),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    /// Every path agrees: first position, last value.
    #[test]
    fn duplicate_keys_keep_the_first_place_and_the_last_value() {
        for n in [3, 4, 16, 17, TABLE_DEDUP_MAX, TABLE_DEDUP_MAX + 1, 1000] {
            let mut attributes: Vec<KeyValue> = (0..n)
                .map(|i| KeyValue::new(format!("k{}", i % 3), i as i64))
                .collect();
            dedup_keys(&mut attributes);
            let last = |k: usize| ((n - 1 - k) / 3 * 3 + k) as i64;
            assert_eq!(
                keys_and_ints(&attributes),
                vec![
                    ("k0".into(), last(0)),
                    ("k1".into(), last(1)),
                    ("k2".into(), last(2))
                ],
                "n = {n}"
            );
        }
    }

    #[test]
    fn distinct_keys_stay_in_order() {
        let mut attributes: Vec<KeyValue> = (0..100)
            .map(|i| KeyValue::new(format!("k{i}"), i as i64))
            .collect();
        let before = attributes.clone();
        dedup_keys(&mut attributes);
        assert_eq!(attributes, before);
    }

    /// 100,000 builder attributes took 7.7 s when every one was compared with
    /// every other; sorted, it is milliseconds. The bound is 1000× slack for
    /// a loaded machine and still fails the quadratic version.
    #[test]
    fn many_attributes_are_deduplicated_without_comparing_every_pair() {
        let mut attributes: Vec<KeyValue> = (0..100_000)
            .map(|i| KeyValue::new(format!("k{}", i % 50_000), i as i64))
            .collect();
        let start = std::time::Instant::now();
        dedup_keys(&mut attributes);
        assert_eq!(attributes.len(), 50_000);
        assert_eq!(keys_and_ints(&attributes[..1]), vec![("k0".into(), 50_000)]);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    /// Keys that the hash confuses (the same length, first and last 8 bytes)
    /// are told apart, and each keeps its own value.
    #[test]
    fn keys_with_the_same_hash_stay_apart() {
        let keys = [
            "service.aaa.x.instance",
            "service.bbb.x.instance",
            "service.ccc.x.instance",
            "service.ddd.x.instance",
            "service.eee.x.instance",
        ];
        assert!(keys
            .iter()
            .all(|k| key_hash(k.as_bytes()) == key_hash(keys[0].as_bytes())));
        let mut attributes: Vec<KeyValue> = keys
            .iter()
            .chain(&keys)
            .enumerate()
            .map(|(i, k)| KeyValue::new(*k, i as i64))
            .collect();
        dedup_keys(&mut attributes);
        let expected: Vec<(String, i64)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.to_string(), (i + keys.len()) as i64))
            .collect();
        assert_eq!(keys_and_ints(&attributes), expected);
    }

    /// Every variant of `Str` and every key length the hash reads differently
    /// (empty, 1-3, 4-7, 8 and more bytes): a key repeated as another variant
    /// is the same key.
    #[test]
    fn keys_of_every_length_and_variant_are_found_again() {
        let texts: Vec<String> = (0..40)
            .map(|n| "abcdefghij".repeat(4)[..n].to_string())
            .collect();
        let mut attributes: Vec<KeyValue> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| KeyValue::new(Str::Shared(t.as_str().into()), i as i64))
            .collect();
        let again = texts.iter().enumerate().map(|(i, t)| {
            let key = match i % 2 {
                0 => Str::copied(t),
                _ => Str::Static(Box::leak(t.clone().into_boxed_str())),
            };
            KeyValue::new(key, 100 + i as i64)
        });
        attributes.extend(again);
        dedup_keys(&mut attributes);
        let expected: Vec<(String, i64)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), 100 + i as i64))
            .collect();
        assert_eq!(keys_and_ints(&attributes), expected);
    }

    /// A list without duplicates is left as it is, at each size the table
    /// serves (a fixed seed picks the keys).
    #[test]
    fn lists_without_duplicates_are_unchanged() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for n in 0..=TABLE_DEDUP_MAX {
            let mut attributes: Vec<KeyValue> = (0..n)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    KeyValue::new(format!("k{i}.{}", seed % 1000), i as i64)
                })
                .collect();
            let before = attributes.clone();
            dedup_keys(&mut attributes);
            assert_eq!(attributes, before, "n = {n}");
        }
    }
}
