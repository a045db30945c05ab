//! Span timestamps as nanoseconds since the Unix epoch.
//!
//! Reading `SystemTime` and converting it costs about a third of a sampled span,
//! so on x86-64 machines whose kernel itself uses the TSC as its clock source
//! (invariant TSC: `constant_tsc` and `nonstop_tsc`), timestamps come from
//! `rdtsc` scaled by a calibration: a line through an anchor `(tsc0, ns0)` with a
//! rate in nanoseconds per tick (32.32 fixed point), valid up to a TSC value
//! `until` about a second later. There, whichever thread notices first
//! (`try_lock`, never waiting) re-anchors: it starts the next line where the
//! current one ends and slews its rate towards the wall clock (see
//! [`next_anchor`]), and publishes it in the other of two slots, so readers never
//! block and never see a half-written line. Elsewhere, `SystemTime::now()` is used.

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Now, in nanoseconds since the Unix epoch.
///
/// With the TSC clock, readings on one thread never decrease (across
/// re-anchorings too); with the `SystemTime` fallback they follow the wall
/// clock, steps included.
#[inline]
pub(crate) fn now_unix_nanos() -> u64 {
    match tsc_clock() {
        Some(c) => c.now(),
        None => system_time_to_unix_nanos(SystemTime::now()),
    }
}

/// Now, by the clock runtrace timestamps spans with (the calibrated TSC where
/// the kernel trusts it, else the system clock): for an explicit start time
/// ([`SpanBuilder::start_time`](crate::SpanBuilder::start_time)) taken before
/// the span is built, so that its start and its end (taken by this clock)
/// agree. On x86-64 with an invariant TSC it costs a few nanoseconds where
/// `SystemTime::now()` costs a system clock read.
///
/// ```
/// let start = runtrace::now();
/// assert!(start.duration_since(std::time::UNIX_EPOCH).is_ok());
/// ```
#[inline]
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(now_unix_nanos())
}

/// Converts a `SystemTime` (0 before the epoch, saturating far in the future).
#[inline]
pub(crate) fn system_time_to_unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `Instant::now() + d`, saturating at about a century for huge `d` (such as
/// `Duration::MAX`, a natural way to say "never") instead of panicking.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Calibrates the clock now (called when a provider is built, so the first span
/// does not pay for it).
pub(crate) fn init() {
    let _ = tsc_clock();
}

/// How long the initial calibration measures.
const INITIAL_BASELINE: Duration = Duration::from_millis(2);
/// How often the clock re-anchors on the wall clock.
const REFINE_EVERY: Duration = Duration::from_secs(1);
/// A re-anchoring changes the rate by at most `rate >> MAX_SLEW_SHIFT` (1/256,
/// about 3.9 ms per second): span durations stay within 0.4% of the truth while
/// the clock catches up with the wall clock.
const MAX_SLEW_SHIFT: u32 = 8;

/// One line of the clock: `ns0 + (tsc - tsc0) · scale`, for `tsc < until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Anchor {
    tsc0: u64,
    ns0: u64,
    /// Nanoseconds per tick, 32.32 fixed point.
    scale: u64,
    /// The TSC value where this line ends and the next one starts.
    until: u64,
}

impl Anchor {
    /// The line's time at `tsc` (its start for an earlier `tsc`); non-decreasing in `tsc`
    /// (until the year 2554, where u64 nanoseconds wrap).
    #[inline]
    fn at(&self, tsc: u64) -> u64 {
        let delta = tsc.saturating_sub(self.tsc0);
        self.ns0
            .wrapping_add(((u128::from(delta) * u128::from(self.scale)) >> 32) as u64)
    }
}

/// The line after `cur`, given the rate measured since start-up and a fresh sample.
///
/// Timestamps never step back: a thread that read the clock on `cur` must never
/// read an earlier time on the next line, even for a later TSC value. So the next
/// line starts exactly where `cur` ends, at `cur.until` (readers hold at the end
/// of a line until the next one is published), and the difference from the wall
/// clock is **slewed**, not stepped: the rate is set so that the line meets the
/// wall clock when it ends, about a second later, changing the measured rate by
/// at most 1/256. The drift of a second is microseconds, so the correction is a
/// few parts per million. A wall clock that is ahead by more than a slew can
/// make up (an NTP step forward) is followed at once, since stepping forward
/// keeps timestamps non-decreasing; one that stepped back is caught up with at
/// the slowest allowed rate.
///
/// Slewing rather than clamping each reading to the thread's previous one: a
/// clamp needs a thread-local read and write on every clock read (two per span,
/// on the hot path), and only hides the step on the thread that saw it, while
/// spans on other threads would still see time jump back.
fn next_anchor(cur: &Anchor, rate: u64, now: &Sample, ticks_per_refine: u64) -> Anchor {
    let start = cur.until;
    let ns_start = cur.at(start);
    let until = now.tsc.max(start).saturating_add(ticks_per_refine.max(1));
    let ticks = i128::from(until - start);
    // The wall clock when the new line ends, at the measured rate.
    let wall_until = i128::from(now.unix_ns)
        + ((i128::from(until - now.tsc.min(until)) * i128::from(rate)) >> 32);
    let ideal = ((wall_until - i128::from(ns_start)) << 32) / ticks;
    let max_change = i128::from(rate >> MAX_SLEW_SHIFT);
    let (slowest, fastest) = (i128::from(rate) - max_change, i128::from(rate) + max_change);
    if ideal > fastest {
        // Far behind: step forward onto the wall clock's line.
        let ns0 = wall_until - ((ticks * i128::from(rate)) >> 32);
        let ns0 = u64::try_from(ns0.max(i128::from(ns_start))).unwrap_or(u64::MAX);
        return Anchor {
            tsc0: start,
            ns0,
            scale: rate.max(1),
            until,
        };
    }
    let scale = ideal.clamp(slowest.max(1), fastest.max(1));
    Anchor {
        tsc0: start,
        ns0: ns_start,
        scale: u64::try_from(scale).unwrap_or(rate).max(1),
        until,
    }
}

/// An [`Anchor`] that readers load field by field while a writer may be
/// filling the other slot.
#[derive(Debug, Default)]
struct AnchorSlot {
    tsc0: AtomicU64,
    ns0: AtomicU64,
    scale: AtomicU64,
    until: AtomicU64,
}

impl AnchorSlot {
    fn load(&self) -> Anchor {
        Anchor {
            tsc0: self.tsc0.load(Ordering::Relaxed),
            ns0: self.ns0.load(Ordering::Relaxed),
            scale: self.scale.load(Ordering::Relaxed),
            until: self.until.load(Ordering::Relaxed),
        }
    }

    fn store(&self, a: &Anchor) {
        self.tsc0.store(a.tsc0, Ordering::Relaxed);
        self.ns0.store(a.ns0, Ordering::Relaxed);
        self.scale.store(a.scale, Ordering::Relaxed);
        self.until.store(a.until, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct TscClock {
    /// How many lines have been published; `slots[generation & 1]` holds the
    /// current one. Stored (Release) after the slot is written; loaded (Acquire)
    /// before a reader loads the slot, and again after, to detect a publication.
    generation: AtomicU64,
    /// The current line and the previous one (which the next writer overwrites).
    slots: [AnchorSlot; 2],
    /// The first sample, the baseline for the rate; its lock lets one writer
    /// at a time re-anchor.
    origin: Mutex<Sample>,
    ticks_per_refine: u64,
}

fn tsc_clock() -> Option<&'static TscClock> {
    static CLOCK: OnceLock<Option<TscClock>> = OnceLock::new();
    CLOCK
        .get_or_init(|| {
            tsc_is_reliable()
                .then(|| TscClock::calibrate(REFINE_EVERY))
                .flatten()
        })
        .as_ref()
}

// Miri cannot run `rdtsc`: under it the clock is the system's.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` exists on every x86-64 CPU and only reads the time-stamp
    // counter; it touches no memory. It is used only after `tsc_is_reliable`.
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
fn rdtsc() -> u64 {
    0
}

/// The kernel's own clock source is the TSC, and the CPU says it is invariant.
fn tsc_is_reliable() -> bool {
    if !cfg!(all(target_arch = "x86_64", not(miri))) {
        return false;
    }
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    source.trim() == "tsc"
        && flags.split_whitespace().any(|f| f == "constant_tsc")
        && flags.split_whitespace().any(|f| f == "nonstop_tsc")
}

/// A reading of the TSC, the monotonic clock and the wall clock taken together.
#[derive(Clone, Copy, Debug)]
struct Sample {
    tsc: u64,
    mono: Instant,
    unix_ns: u64,
}

/// The best of a few readings: the one whose two TSC reads bracket the clock
/// reads most tightly, so a preemption in the middle does not skew it.
fn sample() -> Sample {
    let mut best: Option<(u64, Sample)> = None;
    for _ in 0..5 {
        let before = rdtsc();
        let mono = Instant::now();
        let unix_ns = system_time_to_unix_nanos(SystemTime::now());
        let after = rdtsc();
        let width = after.wrapping_sub(before);
        let s = Sample {
            tsc: before + width / 2,
            mono,
            unix_ns,
        };
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((width, s));
        }
    }
    best.map(|(_, s)| s).unwrap_or(Sample {
        tsc: rdtsc(),
        mono: Instant::now(),
        unix_ns: system_time_to_unix_nanos(SystemTime::now()),
    })
}

/// Nanoseconds per tick (32.32 fixed point) between two samples, measured on the
/// monotonic clock so that wall-clock steps (NTP) do not skew the rate.
fn scale_between(a: &Sample, b: &Sample) -> Option<u64> {
    let ticks = b.tsc.checked_sub(a.tsc).filter(|t| *t > 0)?;
    let ns = b.mono.checked_duration_since(a.mono)?.as_nanos();
    if ns == 0 {
        return None;
    }
    u64::try_from((ns << 32) / u128::from(ticks)).ok()
}

impl TscClock {
    /// Measures the rate and anchors the first line, which ends after about
    /// `refine_every`. The caller has checked that the TSC is reliable.
    fn calibrate(refine_every: Duration) -> Option<TscClock> {
        let a = sample();
        while a.mono.elapsed() < INITIAL_BASELINE {
            std::hint::spin_loop();
        }
        let b = sample();
        let scale = scale_between(&a, &b)?;
        let ticks_per_refine =
            ((refine_every.as_nanos() << 32) / u128::from(scale)).min(u128::from(u64::MAX)) as u64;
        let clock = TscClock {
            generation: AtomicU64::new(0),
            slots: Default::default(),
            origin: Mutex::new(a),
            ticks_per_refine,
        };
        clock.slots[0].store(&Anchor {
            tsc0: b.tsc,
            ns0: b.unix_ns,
            scale,
            until: b.tsc.saturating_add(ticks_per_refine),
        });
        Some(clock)
    }

    /// Never waits: a reader that meets a publication reads again (the next one
    /// is a second away), and one that finds the line ended while another
    /// thread re-anchors reads the line's end.
    ///
    /// The common case (a consistent read inside the current line) is kept apart
    /// from the rest, so that it stays a few loads and a multiply.
    #[inline]
    fn now(&self) -> u64 {
        let tsc = rdtsc();
        let generation = self.generation.load(Ordering::Acquire);
        let line = self.slots[(generation & 1) as usize].load();
        // Pairs with the writer's Release fence, as in `now_slow`.
        fence(Ordering::Acquire);
        if tsc < line.until && self.generation.load(Ordering::Relaxed) == generation {
            return line.at(tsc);
        }
        self.now_slow()
    }

    /// [`now`](Self::now) when the read met a publication or the line's end.
    #[cold]
    #[inline(never)]
    fn now_slow(&self) -> u64 {
        loop {
            let tsc = rdtsc();
            let generation = self.generation.load(Ordering::Acquire);
            let line = self.slots[(generation & 1) as usize].load();
            // Pairs with the writer's Release fence: if a load above saw a store
            // of a later writer, the load below sees its generation.
            fence(Ordering::Acquire);
            if self.generation.load(Ordering::Relaxed) != generation {
                continue;
            }
            if tsc < line.until {
                return line.at(tsc);
            }
            if !self.reanchor(generation) {
                return line.at(line.until);
            }
        }
    }

    /// Publishes the line after generation `seen`, unless another thread is at
    /// it (`false`: the caller holds at the end of its line). `true` when a
    /// line after `seen` is published.
    fn reanchor(&self, seen: u64) -> bool {
        let origin = match self.origin.try_lock() {
            Ok(origin) => origin,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        let now = sample();
        self.publish_after(seen, &origin, &now)
    }

    /// The writer's side, with the lock on `origin` held: the line after
    /// generation `seen`, anchored on `now`, goes into the other slot.
    fn publish_after(&self, seen: u64, origin: &Sample, now: &Sample) -> bool {
        let generation = self.generation.load(Ordering::Relaxed);
        if generation != seen {
            return true; // published while we waited for the lock
        }
        let cur = self.slots[(generation & 1) as usize].load();
        let rate = scale_between(origin, now).unwrap_or(cur.scale);
        let next = next_anchor(&cur, rate, now, self.ticks_per_refine);
        // Pairs with the readers' Acquire fence (see `now`).
        fence(Ordering::Release);
        self.slots[((generation + 1) & 1) as usize].store(&next);
        self.generation.store(generation + 1, Ordering::Release);
        true
    }
}

#[cfg(test)]
mod tests;
