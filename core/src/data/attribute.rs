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
        let len = text.len();
        if len > Self::CAPACITY {
            return None;
        }
        let mut bytes = [0; Self::CAPACITY];
        bytes[..len].copy_from_slice(text.as_bytes());
        Some(InlineStr {
            len: len as u8,
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

/// Sets `kv` in `list` under the count limit: an existing key is overwritten, a
/// new key beyond `max_count` is discarded. Returns `false` if it was discarded.
pub(crate) fn upsert(list: &mut Vec<KeyValue>, kv: KeyValue, max_count: usize) -> bool {
    if let Some(existing) = list.iter_mut().find(|e| e.key == kv.key) {
        existing.value = kv.value;
        return true;
    }
    if list.len() >= max_count {
        return false;
    }
    list.push(kv);
    true
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

    #[test]
    fn upsert_overwrites_and_limits() {
        let mut list = Vec::new();
        assert!(upsert(&mut list, KeyValue::new("a", 1), 1));
        assert!(upsert(&mut list, KeyValue::new("a", 2), 1));
        assert!(!upsert(&mut list, KeyValue::new("b", 3), 1));
        assert_eq!(list, vec![KeyValue::new("a", 2)]);
    }
}
