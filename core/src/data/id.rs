//! Trace and span identifiers and the default id generator.
//!
//! Ids are plain byte arrays with lowercase hex `Display`/`FromStr`; the all-zero
//! value is the invalid id. The default generator is a per-thread wyrand PRNG
//! seeded once from `/dev/urandom` (or, failing that, std's randomly keyed hasher
//! mixed with the time and thread id). It never returns an all-zero id, and all
//! 128 bits of its trace ids are random, so root spans carry the W3C random flag.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

/// A 16-byte trace id. All zeros is invalid.
///
/// ```
/// let id: runtrace::TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId([u8; 16]);

/// An 8-byte span id. All zeros is invalid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId([u8; 8]);

/// Why a hex id could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdParseError {
    /// The string does not have 32 (trace id) or 16 (span id) characters.
    Length,
    /// A character is not a lowercase hex digit.
    NotLowercaseHex,
}

impl fmt::Display for IdParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdParseError::Length => f.write_str("id has the wrong number of hex digits"),
            IdParseError::NotLowercaseHex => {
                f.write_str("id contains a non lowercase-hex character")
            }
        }
    }
}

impl std::error::Error for IdParseError {}

macro_rules! id_impl {
    ($name:ident, $len:expr) => {
        impl $name {
            /// The invalid (all-zero) id.
            pub const INVALID: $name = $name([0; $len]);

            /// Wraps raw big-endian bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                $name(bytes)
            }

            /// The raw big-endian bytes.
            pub const fn to_bytes(self) -> [u8; $len] {
                self.0
            }

            /// A borrowed view of the bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// `true` unless all bytes are zero.
            pub fn is_valid(&self) -> bool {
                self.0 != [0; $len]
            }

            /// Parses exactly `2 * len` lowercase hex digits.
            pub fn from_hex(s: &str) -> Result<Self, IdParseError> {
                let mut out = [0u8; $len];
                decode_hex_lower(s.as_bytes(), &mut out)?;
                Ok($name(out))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; $len * 2];
                encode_hex_lower(&self.0, &mut buf);
                // hex digits are ASCII
                f.write_str(std::str::from_utf8(&buf).unwrap_or_default())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }
    };
}

id_impl!(TraceId, 16);
id_impl!(SpanId, 8);

impl TraceId {
    /// The low 56 bits (last 7 bytes, big-endian): the W3C Level 2 randomness.
    pub fn low_56_bits(&self) -> u64 {
        let mut b = [0u8; 8];
        b[1..].copy_from_slice(&self.0[9..16]);
        u64::from_be_bytes(b)
    }

    /// The low 64 bits (last 8 bytes, big-endian), used by legacy ratio samplers.
    pub fn low_64_bits(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[8..16]);
        u64::from_be_bytes(b)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `src` as lowercase hex into `dst` (which must be twice as long).
pub(crate) fn encode_hex_lower(src: &[u8], dst: &mut [u8]) {
    for (i, b) in src.iter().enumerate() {
        dst[2 * i] = HEX[(b >> 4) as usize];
        dst[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
}

/// Value of one lowercase hex digit.
pub(crate) fn hex_lower_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decodes lowercase hex into `out`; the input must be exactly `2 * out.len()` long.
pub(crate) fn decode_hex_lower(src: &[u8], out: &mut [u8]) -> Result<(), IdParseError> {
    if src.len() != out.len() * 2 {
        return Err(IdParseError::Length);
    }
    for (i, pair) in src.chunks_exact(2).enumerate() {
        let hi = hex_lower_value(pair[0]).ok_or(IdParseError::NotLowercaseHex)?;
        let lo = hex_lower_value(pair[1]).ok_or(IdParseError::NotLowercaseHex)?;
        out[i] = (hi << 4) | lo;
    }
    Ok(())
}

/// Makes new trace and span ids.
///
/// Implement it to plug in your own ids (for example ids that embed a timestamp).
/// Return `true` from [`IdGenerator::trace_ids_are_random`] only if the low 56 bits
/// of every trace id are uniformly random: then root spans carry the W3C random
/// flag (0x02) and consistent samplers may trust the trace id as randomness.
pub trait IdGenerator: Send + Sync + fmt::Debug {
    /// A new, valid trace id.
    fn new_trace_id(&self) -> TraceId;
    /// A new, valid span id.
    fn new_span_id(&self) -> SpanId;
    /// Whether the low 56 bits of trace ids are uniformly random.
    fn trace_ids_are_random(&self) -> bool {
        false
    }
}

/// The default generator: a per-thread wyrand PRNG seeded from OS entropy.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIdGenerator;

impl IdGenerator for RandomIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        with_rng(Wyrand::trace_id)
    }

    fn new_span_id(&self) -> SpanId {
        with_rng(Wyrand::span_id)
    }

    fn trace_ids_are_random(&self) -> bool {
        true
    }
}

/// A new trace id and span id from one visit to the thread's generator.
#[inline(always)]
pub(crate) fn random_trace_and_span_id() -> (TraceId, SpanId) {
    with_rng(|r| (r.trace_id(), r.span_id()))
}

/// A new span id.
#[inline]
pub(crate) fn random_span_id() -> SpanId {
    with_rng(Wyrand::span_id)
}

/// wyrand: one 64-bit add and one 128-bit multiply per value.
struct Wyrand(u64);

impl Wyrand {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0).wrapping_mul(u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db));
        ((t >> 64) as u64) ^ (t as u64)
    }

    #[inline]
    fn trace_id(&mut self) -> TraceId {
        loop {
            let (hi, lo) = (self.next(), self.next());
            if hi | lo != 0 {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&hi.to_be_bytes());
                b[8..].copy_from_slice(&lo.to_be_bytes());
                return TraceId(b);
            }
        }
    }

    #[inline]
    fn span_id(&mut self) -> SpanId {
        loop {
            let v = self.next();
            if v != 0 {
                return SpanId(v.to_be_bytes());
            }
        }
    }
}

/// Trace ids from the default generator's algorithm started at `seed`, for tests
/// that need ids distributed like real ones but the same on every run.
#[cfg(test)]
pub(crate) fn seeded_trace_ids(seed: u64) -> impl Iterator<Item = TraceId> {
    let mut rng = Wyrand(seed);
    std::iter::repeat_with(move || rng.trace_id())
}

thread_local! {
    /// wyrand state; 0 means "not seeded yet".
    static RNG_STATE: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` with the calling thread's generator (seeded on first use).
#[inline(always)]
fn with_rng<R>(f: impl FnOnce(&mut Wyrand) -> R) -> R {
    RNG_STATE.with(|state| {
        let mut rng = Wyrand(state.get());
        if rng.0 == 0 {
            rng.0 = seed();
        }
        let out = f(&mut rng);
        state.set(rng.0);
        out
    })
}

/// A non-zero seed from `/dev/urandom`, or from std's random hasher keys, time and thread id.
fn seed() -> u64 {
    use std::io::Read;
    let mut buf = [0u8; 8];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    let mut s = if from_os { u64::from_le_bytes(buf) } else { 0 };
    if s == 0 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        std::time::SystemTime::now().hash(&mut h);
        std::thread::current().id().hash(&mut h);
        std::time::Instant::now().hash(&mut h);
        s = h.finish();
    }
    if s == 0 {
        s = 0x9e37_79b9_7f4a_7c15;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_uppercase() {
        let t: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
        assert_eq!(t.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            "4BF92F3577B34DA6A3CE929D0E0E4736".parse::<TraceId>(),
            Err(IdParseError::NotLowercaseHex)
        );
        assert_eq!("abc".parse::<SpanId>(), Err(IdParseError::Length));
        let s: SpanId = "00f067aa0ba902b7".parse().unwrap();
        assert_eq!(format!("{s}"), "00f067aa0ba902b7");
        assert!(!TraceId::INVALID.is_valid());
    }

    #[test]
    fn low_bits() {
        let t: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
        assert_eq!(t.low_56_bits(), 0xce929d0e0e4736);
        assert_eq!(t.low_64_bits(), 0xa3ce929d0e0e4736);
    }

    #[test]
    fn generator_never_zero_and_differs_across_threads() {
        let g = RandomIdGenerator;
        let a: Vec<TraceId> = (0..1000).map(|_| g.new_trace_id()).collect();
        assert!(a.iter().all(|t| t.is_valid()));
        let other = std::thread::spawn(move || RandomIdGenerator.new_trace_id())
            .join()
            .unwrap();
        assert!(!a.contains(&other));
        let mut sorted = a.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len());
    }
}
