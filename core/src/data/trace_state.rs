//! W3C `tracestate` (Level 2) and the OpenTelemetry `ot` member.
//!
//! [`TraceState`] is an immutable list of at most 32 `key=value` members, cheap to
//! clone (an empty state holds no allocation; others share one `Arc`). Parsing
//! follows the Level 2 grammar and discards the whole header on any violation of
//! it; a repeated key is not one: its later occurrences are dropped.
//! Mutations return a new state: an insert or update moves the member to the front,
//! and a 33rd member pushes out the right-most one. [`OtState`] reads and writes the
//! `ot` member's `th` (sampling threshold) and `rv` (explicit randomness) sub-keys.

use std::fmt;
use std::sync::Arc;

/// Maximum number of list members.
pub const MAX_MEMBERS: usize = 32;
const MAX_KEY_LEN: usize = 256;
const MAX_VALUE_LEN: usize = 256;
const MAX_OT_VALUE_LEN: usize = 256;

/// Why a trace state, key or value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceStateError {
    /// A key does not match `[a-z0-9][a-z0-9_\-*/@]{0,255}`.
    InvalidKey,
    /// A value is empty, too long, or has a forbidden character.
    InvalidValue,
    /// A member has no `=`.
    MissingEquals,
    /// More than 32 members.
    TooManyMembers,
    /// The same key appears twice (only [`TraceState::from_members`] reports it:
    /// [`TraceState::parse`] keeps the first occurrence).
    DuplicateKey,
}

impl fmt::Display for TraceStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceStateError::InvalidKey => "invalid tracestate key",
            TraceStateError::InvalidValue => "invalid tracestate value",
            TraceStateError::MissingEquals => "tracestate member without '='",
            TraceStateError::TooManyMembers => "tracestate has more than 32 members",
            TraceStateError::DuplicateKey => "tracestate repeats a key",
        })
    }
}

impl std::error::Error for TraceStateError {}

/// An immutable W3C trace state.
///
/// ```
/// use runtrace::TraceState;
/// let ts: TraceState = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".parse().unwrap();
/// let ts = ts.insert("congo", "x").unwrap();
/// assert_eq!(ts.header(), "congo=x,rojo=00f067aa0ba902b7");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TraceState(Option<Arc<[Member]>>);

/// One `key=value` list member.
type Member = (Box<str>, Box<str>);

/// `true` if `key` is a valid Level 2 key.
pub fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > MAX_KEY_LEN {
        return false;
    }
    if !(b[0].is_ascii_lowercase() || b[0].is_ascii_digit()) {
        return false;
    }
    b[1..].iter().all(|&c| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, b'_' | b'-' | b'*' | b'/' | b'@')
    })
}

/// `true` if `value` is a valid Level 2 value (1..=256 chars, no trailing space).
pub fn is_valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    if b.is_empty() || b.len() > MAX_VALUE_LEN {
        return false;
    }
    let last = b[b.len() - 1];
    let nblk = |c: u8| (0x21..=0x7e).contains(&c) && c != b',' && c != b'=';
    nblk(last) && b.iter().all(|&c| c == b' ' || nblk(c))
}

impl TraceState {
    /// The empty trace state.
    pub const EMPTY: TraceState = TraceState(None);

    /// Builds from members in order, validating each.
    pub fn from_members<K: AsRef<str>, V: AsRef<str>>(
        members: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, TraceStateError> {
        let mut list: Vec<Member> = Vec::new();
        for (k, v) in members {
            let (k, v) = (k.as_ref(), v.as_ref());
            if !is_valid_key(k) {
                return Err(TraceStateError::InvalidKey);
            }
            if !is_valid_value(v) {
                return Err(TraceStateError::InvalidValue);
            }
            if list.iter().any(|(ek, _)| &**ek == k) {
                return Err(TraceStateError::DuplicateKey);
            }
            if list.len() == MAX_MEMBERS {
                return Err(TraceStateError::TooManyMembers);
            }
            list.push((k.into(), v.into()));
        }
        Ok(Self::from_vec(list))
    }

    fn from_vec(list: Vec<Member>) -> Self {
        if list.is_empty() {
            TraceState(None)
        } else {
            TraceState(Some(list.into()))
        }
    }

    /// Parses a header value (several header fields joined with `,`).
    ///
    /// Empty members and optional white space around commas are accepted. A key
    /// that appears again keeps its first value and the later members with that
    /// key are dropped: W3C Trace Context Level 2 lets a vendor discard duplicate
    /// keys it did not generate, and its test harness expects `foo=1,foo=2` to be
    /// carried on as `foo=1` (dropping the whole header would lose every other
    /// vendor's state for one vendor's mistake). A dropped duplicate must still be
    /// a valid member, and does not count towards the 32 members. Any other
    /// violation (invalid key or value, a member without `=`, a 33rd distinct
    /// member) rejects the whole value, as the harness's strict mode expects.
    pub fn parse(header: &str) -> Result<Self, TraceStateError> {
        let mut list: Vec<Member> = Vec::new();
        for raw in header.split(',') {
            let member = raw.trim_matches(|c| c == ' ' || c == '\t');
            if member.is_empty() {
                continue;
            }
            let (k, v) = member
                .split_once('=')
                .ok_or(TraceStateError::MissingEquals)?;
            if !is_valid_key(k) {
                return Err(TraceStateError::InvalidKey);
            }
            if !is_valid_value(v) {
                return Err(TraceStateError::InvalidValue);
            }
            if list.iter().any(|(ek, _)| &**ek == k) {
                continue;
            }
            if list.len() == MAX_MEMBERS {
                return Err(TraceStateError::TooManyMembers);
            }
            list.push((k.into(), v.into()));
        }
        Ok(Self::from_vec(list))
    }

    /// `true` when there are no members.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |l| l.len())
    }

    /// The members in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|(k, v)| (&**k, &**v))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// A new state with `key=value` at the front (replacing an old `key`); a 33rd
    /// member drops the right-most one. Invalid keys or values are an error.
    pub fn insert(&self, key: &str, value: &str) -> Result<TraceState, TraceStateError> {
        if !is_valid_key(key) {
            return Err(TraceStateError::InvalidKey);
        }
        if !is_valid_value(value) {
            return Err(TraceStateError::InvalidValue);
        }
        let mut list: Vec<Member> = Vec::with_capacity(self.len() + 1);
        list.push((key.into(), value.into()));
        list.extend(
            self.iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| (k.into(), v.into())),
        );
        list.truncate(MAX_MEMBERS);
        Ok(Self::from_vec(list))
    }

    /// A new state without `key`.
    pub fn remove(&self, key: &str) -> TraceState {
        if self.get(key).is_none() {
            return self.clone();
        }
        Self::from_vec(
            self.iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The header value: `k1=v1,k2=v2` without white space.
    pub fn header(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }

    /// The parsed `ot` member (empty when absent or malformed).
    pub fn ot(&self) -> OtState {
        self.get("ot").map(OtState::parse).unwrap_or_default()
    }

    /// A new state with `ot` replaced by `ot` (moved to the front), or removed when
    /// `ot` is empty.
    pub fn with_ot(&self, ot: &OtState) -> TraceState {
        let value = ot.serialize();
        if value.is_empty() {
            return self.remove("ot");
        }
        self.insert("ot", &value).unwrap_or_else(|_| self.clone())
    }
}

impl fmt::Debug for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceState({:?})", self.header())
    }
}

impl std::str::FromStr for TraceState {
    type Err = TraceStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceState::parse(s)
    }
}

/// The OpenTelemetry `ot` tracestate member: `th`, `rv` and any other sub-keys.
///
/// A malformed `th` or `rv` counts as absent; unknown sub-keys are kept in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtState {
    /// Rejection threshold `T` (0..=2^56-1) and the digits it was written with.
    pub th: Option<Threshold>,
    /// Explicit randomness (56 bits).
    pub rv: Option<u64>,
    /// Other sub-keys, kept as they came.
    pub other: Vec<(String, String)>,
}

/// A sampling threshold: the rejection threshold `T` out of 2^56 (a span is
/// kept when its 56 bits of randomness are at least `T`).
///
/// ```
/// use runtrace::data::trace_state::Threshold;
/// let quarter = Threshold::new(3 << 54).unwrap(); // keeps 1 in 4
/// assert_eq!(quarter.encode(), "c");
/// assert_eq!(Threshold::parse("c"), Some(quarter));
/// assert_eq!(Threshold::new(1 << 56), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold(u64);

impl Threshold {
    /// The threshold `t`, if it is below 2^56.
    pub fn new(t: u64) -> Option<Threshold> {
        (t < 1 << 56).then_some(Threshold(t))
    }

    /// The rejection threshold `T`, below 2^56.
    pub fn rejection(self) -> u64 {
        self.0
    }

    /// Parses 1..=14 lowercase hex digits, right-padded with zeros.
    pub fn parse(s: &str) -> Option<Threshold> {
        if s.is_empty() || s.len() > 14 {
            return None;
        }
        let mut v = 0u64;
        for c in s.bytes() {
            v = (v << 4) | u64::from(super::id::hex_lower_value(c)?);
        }
        Some(Threshold(v << (4 * (14 - s.len()))))
    }

    /// 14 hex digits with trailing zeros stripped (`0` for T = 0).
    pub fn encode(&self) -> String {
        if self.0 == 0 {
            return "0".to_string();
        }
        let s = format!("{:014x}", self.0);
        s.trim_end_matches('0').to_string()
    }
}

fn valid_subkey(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn valid_subvalue(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

impl OtState {
    /// Parses an `ot` value such as `th:c;rv:7479cfb506891d`.
    pub fn parse(value: &str) -> OtState {
        let mut ot = OtState::default();
        if value.len() > MAX_OT_VALUE_LEN {
            return ot;
        }
        for part in value.split(';') {
            let Some((k, v)) = part.split_once(':') else {
                continue;
            };
            if !valid_subkey(k) || !valid_subvalue(v) {
                continue;
            }
            match k {
                "th" => ot.th = Threshold::parse(v),
                "rv" => {
                    ot.rv = (v.len() == 14)
                        .then(|| u64::from_str_radix(v, 16).ok())
                        .flatten()
                        .filter(|_| v.bytes().all(|c| super::id::hex_lower_value(c).is_some()))
                }
                _ if ot.other.iter().all(|(ok, _)| ok != k) => {
                    ot.other.push((k.to_string(), v.to_string()))
                }
                _ => {}
            }
        }
        ot
    }

    /// `true` when no sub-key is set.
    pub fn is_empty(&self) -> bool {
        self.th.is_none() && self.rv.is_none() && self.other.is_empty()
    }

    /// The value: `th` first, then `rv`, then other sub-keys; empty when nothing is set,
    /// and without the other sub-keys if they would exceed 256 characters.
    pub fn serialize(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(th) = self.th {
            parts.push(format!("th:{}", th.encode()));
        }
        if let Some(rv) = self.rv {
            parts.push(format!("rv:{rv:014x}"));
        }
        let mut out = parts.join(";");
        for (k, v) in &self.other {
            let extra = k.len() + v.len() + 2;
            if out.len() + extra > MAX_OT_VALUE_LEN {
                break;
            }
            if !out.is_empty() {
                out.push(';');
            }
            out.push_str(k);
            out.push(':');
            out.push_str(v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_headers() {
        let ts = TraceState::parse("foo=1, bar=2 ,\t,baz=3").unwrap();
        assert_eq!(ts.header(), "foo=1,bar=2,baz=3");
        assert_eq!(TraceState::parse("").unwrap(), TraceState::EMPTY);
        assert!(TraceState::parse("foo@=1,foo@@bar=2,a@b@c=3,x/y*z=4").is_ok());
        let ts = TraceState::parse("foo= bar").unwrap();
        assert_eq!(ts.get("foo"), Some(" bar"));
        let max_key = "a".repeat(256);
        assert!(TraceState::parse(&format!("{max_key}=1")).is_ok());
        let members: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        assert_eq!(TraceState::parse(&members.join(",")).unwrap().len(), 32);
    }

    #[test]
    fn rejects_whole_header_on_violation() {
        for bad in [
            "FOO=1",
            "foo.bar=1",
            "@foo=1",
            "foo=bar=baz",
            "foo=",
            "foo",
            "foo=1,foo=",
            "foo=bar,=1",
            "foo=a\u{7f}",
        ] {
            assert!(
                TraceState::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        let long_key = "a".repeat(257);
        assert!(TraceState::parse(&format!("{long_key}=1")).is_err());
        let long_value = "v".repeat(257);
        assert!(TraceState::parse(&format!("k={long_value}")).is_err());
        let members: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            TraceState::parse(&members.join(",")),
            Err(TraceStateError::TooManyMembers)
        );
    }

    #[test]
    fn repeated_keys_keep_their_first_value() {
        let ts = TraceState::parse("foo=1,bar=2,foo=3,bar=4,baz=5").unwrap();
        assert_eq!(ts.header(), "foo=1,bar=2,baz=5");
        // 32 distinct keys and a repeat: the repeat is dropped, not counted.
        let mut members: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        members.push("k0=w".into());
        let ts = TraceState::parse(&members.join(",")).unwrap();
        assert_eq!((ts.len(), ts.get("k0")), (32, Some("v")));
        // from_members builds what the caller asked for, so a repeat is an error.
        assert_eq!(
            TraceState::from_members([("a", "1"), ("a", "2")]),
            Err(TraceStateError::DuplicateKey)
        );
    }

    #[test]
    fn insert_moves_to_front_and_caps_at_32() {
        let ts = TraceState::parse("a=1,b=2,c=3").unwrap();
        assert_eq!(ts.insert("c", "9").unwrap().header(), "c=9,a=1,b=2");
        assert_eq!(ts.insert("Bad", "1"), Err(TraceStateError::InvalidKey));
        let members: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        let full = TraceState::parse(&members.join(",")).unwrap();
        let more = full.insert("new", "1").unwrap();
        assert_eq!(more.len(), 32);
        assert_eq!(more.iter().next(), Some(("new", "1")));
        assert!(more.get("k31").is_none());
        assert_eq!(ts.remove("b").header(), "a=1,c=3");
    }

    #[test]
    fn ot_member_parsing() {
        let ot = OtState::parse("th:c;rv:7479cfb506891d;xx:yy");
        assert_eq!(ot.th, Some(Threshold(0xc0000000000000)));
        assert_eq!(ot.rv, Some(0x7479cfb506891d));
        assert_eq!(ot.serialize(), "th:c;rv:7479cfb506891d;xx:yy");
        // malformed th / rv count as absent
        let ot = OtState::parse("th:XYZ;rv:123");
        assert!(ot.th.is_none() && ot.rv.is_none());
        let ot = OtState::parse("th:123456789012345");
        assert!(ot.th.is_none());
        assert_eq!(Threshold::parse("08"), Some(Threshold(0x08000000000000)));
        assert_eq!(Threshold(0).encode(), "0");
        assert_eq!(Threshold(0xe6660000000000).encode(), "e666");
        // too long ot value -> absent
        let long = format!("th:8;zz:{}", "a".repeat(260));
        assert!(OtState::parse(&long).is_empty());
    }

    #[test]
    fn with_ot_updates_or_removes() {
        let ts = TraceState::parse("a=1,ot=th:8;rv:80000000000000").unwrap();
        let mut ot = ts.ot();
        ot.th = None;
        let ts2 = ts.with_ot(&ot);
        assert_eq!(ts2.header(), "ot=rv:80000000000000,a=1");
        let ts3 = ts2.with_ot(&OtState::default());
        assert_eq!(ts3.header(), "a=1");
    }
}
