//! Span timestamps as nanoseconds since the Unix epoch.
//!
//! Reading `SystemTime` and converting it costs about a third of a sampled span,
//! so on x86-64 machines whose kernel itself uses the TSC as its clock source
//! (invariant TSC: `constant_tsc` and `nonstop_tsc`), timestamps come from
//! `rdtsc` scaled by a calibration: an anchor `(tsc0, ns0)` on the wall clock and
//! a rate in nanoseconds per tick (32.32 fixed point) measured against the
//! monotonic clock. About once a second, whichever thread notices first
//! (`try_lock`, never waiting) re-anchors on the wall clock and re-measures the
//! rate over the whole time since start-up; the result is published through a
//! sequence lock, so readers never block. Elsewhere, `SystemTime::now()` is used.

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Now, in nanoseconds since the Unix epoch.
#[inline]
pub(crate) fn now_unix_nanos() -> u64 {
    match tsc_clock() {
        Some(c) => c.now(),
        None => system_time_to_unix_nanos(SystemTime::now()),
    }
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
/// How often the scale is refined.
const REFINE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct TscClock {
    /// Even when stable, odd while a writer updates the fields below.
    version: AtomicU64,
    tsc0: AtomicU64,
    ns0: AtomicU64,
    /// Nanoseconds per tick, 32.32 fixed point.
    scale: AtomicU64,
    /// TSC value after which the next refinement is due.
    refine_at: AtomicU64,
    /// The first sample, the baseline for refinements; taken by one writer at a time.
    origin: Mutex<Sample>,
    ticks_per_refine: u64,
}

fn tsc_clock() -> Option<&'static TscClock> {
    static CLOCK: OnceLock<Option<TscClock>> = OnceLock::new();
    CLOCK.get_or_init(TscClock::calibrate).as_ref()
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` exists on every x86-64 CPU and only reads the time-stamp
    // counter; it touches no memory. It is used only after `tsc_is_reliable`.
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn rdtsc() -> u64 {
    0
}

/// The kernel's own clock source is the TSC, and the CPU says it is invariant.
fn tsc_is_reliable() -> bool {
    if !cfg!(target_arch = "x86_64") {
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
    fn calibrate() -> Option<TscClock> {
        if !tsc_is_reliable() {
            return None;
        }
        let a = sample();
        while a.mono.elapsed() < INITIAL_BASELINE {
            std::hint::spin_loop();
        }
        let b = sample();
        let scale = scale_between(&a, &b)?;
        // Refine after about REFINE_EVERY worth of ticks.
        let ticks_per_refine =
            ((REFINE_EVERY.as_nanos() << 32) / u128::from(scale)).min(u128::from(u64::MAX)) as u64;
        Some(TscClock {
            version: AtomicU64::new(0),
            tsc0: AtomicU64::new(b.tsc),
            ns0: AtomicU64::new(b.unix_ns),
            scale: AtomicU64::new(scale),
            refine_at: AtomicU64::new(b.tsc.saturating_add(ticks_per_refine)),
            origin: Mutex::new(a),
            ticks_per_refine,
        })
    }

    /// Never waits: while a refinement is being published (a few stores), the
    /// reader falls back to `SystemTime`.
    #[inline]
    fn now(&self) -> u64 {
        let tsc = rdtsc();
        let v1 = self.version.load(Ordering::Acquire);
        let tsc0 = self.tsc0.load(Ordering::Relaxed);
        let ns0 = self.ns0.load(Ordering::Relaxed);
        let scale = self.scale.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if v1 & 1 != 0 || self.version.load(Ordering::Relaxed) != v1 {
            return system_time_to_unix_nanos(SystemTime::now());
        }
        if tsc >= self.refine_at.load(Ordering::Relaxed) {
            self.refine();
        }
        let delta = tsc.saturating_sub(tsc0);
        ns0 + ((u128::from(delta) * u128::from(scale)) >> 32) as u64
    }

    /// Re-anchors on the wall clock now (following any step it took) and
    /// recomputes the rate from the first sample on the monotonic clock. The next
    /// refinement is scheduled even if this one cannot run.
    #[cold]
    fn refine(&self) {
        let Ok(origin) = self.origin.try_lock() else {
            return; // another thread is at it
        };
        let now = sample();
        self.refine_at.store(
            now.tsc.saturating_add(self.ticks_per_refine),
            Ordering::Relaxed,
        );
        let scale = scale_between(&origin, &now).unwrap_or(self.scale.load(Ordering::Relaxed));
        self.version.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.tsc0.store(now.tsc, Ordering::Relaxed);
        self.ns0.store(now.unix_ns, Ordering::Relaxed);
        self.scale.store(scale, Ordering::Relaxed);
        self.version.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_tracks_system_time() {
        init();
        for _ in 0..5 {
            let sys = system_time_to_unix_nanos(SystemTime::now());
            let ours = now_unix_nanos();
            let diff = ours.abs_diff(sys);
            assert!(diff < 5_000_000, "clock off by {diff} ns");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn huge_timeouts_saturate() {
        assert!(deadline_after(Duration::MAX) > Instant::now() + Duration::from_secs(3600));
    }

    #[test]
    fn clock_is_monotonic_on_one_thread() {
        let mut last = now_unix_nanos();
        for _ in 0..100_000 {
            let t = now_unix_nanos();
            // A refinement may step the clock by the drift of the last second
            // (tens of microseconds at most); spans clamp end >= start anyway.
            assert!(t + 100_000 >= last, "went back {} ns", last - t);
            last = last.max(t);
        }
    }
}
