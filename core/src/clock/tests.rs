//! The clock: it tracks the wall clock, and readings on one thread never
//! decrease, across re-anchorings forced at chosen moments and wall-clock
//! offsets (the TSC cases run only where the kernel's clock is the TSC).

use super::*;

/// A sample `offset_ns` away from the wall clock, at `tsc`.
fn sample_at(tsc: u64, unix_ns: u64) -> Sample {
    Sample {
        tsc,
        mono: Instant::now(),
        unix_ns,
    }
}

/// A line of about 1 ns per tick (scale 2^32) from (1000 ticks, 10^18 ns).
fn line() -> Anchor {
    Anchor {
        tsc0: 1_000,
        ns0: 1_000_000_000_000_000_000,
        scale: 1 << 32,
        until: 1_000 + 1_000_000_000,
    }
}

#[test]
fn clock_tracks_system_time() {
    init();
    for _ in 0..5 {
        // Bracketed by two wall-clock reads, so a preemption cannot fail it;
        // the 1 ms slack covers the calibration error of the first second
        // (tens of µs) and the TSC's drift from the wall clock (µs per second).
        let before = system_time_to_unix_nanos(SystemTime::now());
        let ours = now_unix_nanos();
        let after = system_time_to_unix_nanos(SystemTime::now());
        assert!(
            ours + 1_000_000 >= before && ours <= after + 1_000_000,
            "clock at {ours}, wall clock between {before} and {after}"
        );
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
        if tsc_clock().is_some() {
            assert!(t >= last, "went back {} ns", last - t);
        }
        last = last.max(t);
    }
}

#[test]
fn next_line_starts_where_the_current_one_ends_when_the_wall_clock_is_behind() {
    let cur = line();
    let end = cur.at(cur.until);
    // The wall clock is 20 µs behind the line when it ends: the step back that
    // re-anchoring used to make.
    let now = sample_at(cur.until, end - 20_000);
    let next = next_anchor(&cur, cur.scale, &now, 1_000_000_000);
    assert_eq!((next.tsc0, next.ns0), (cur.until, end), "continuous");
    assert!(
        next.scale < cur.scale,
        "slowed down to let the wall clock catch up"
    );
    assert_eq!(next.until, cur.until + 1_000_000_000);
    // Where the new line ends, it meets the wall clock (to rounding).
    let wall_then = now.unix_ns + 1_000_000_000;
    assert!(next.at(next.until).abs_diff(wall_then) <= 1, "converges");
    // Whatever the old line gave, the new one gives no less, even for TSC values
    // before its start (readers that loaded the new line early).
    for tsc in [cur.until - 1, cur.until, cur.until + 1, next.until - 1] {
        assert!(next.at(tsc) >= cur.at(cur.until.min(tsc)), "tsc {tsc}");
    }
}

#[test]
fn a_large_step_back_is_slewed_at_the_bounded_rate() {
    let cur = line();
    let end = cur.at(cur.until);
    let now = sample_at(cur.until, end - 1_000_000_000); // NTP stepped back 1 s
    let next = next_anchor(&cur, cur.scale, &now, 1_000_000_000);
    assert_eq!(next.ns0, end);
    assert_eq!(next.scale, cur.scale - (cur.scale >> MAX_SLEW_SHIFT));
}

#[test]
fn a_wall_clock_far_ahead_is_followed_at_once() {
    let cur = line();
    let end = cur.at(cur.until);
    let now = sample_at(cur.until + 500, end + 1_000_000_000); // stepped forward 1 s
    let next = next_anchor(&cur, cur.scale, &now, 1_000_000_000);
    assert_eq!(next.scale, cur.scale);
    assert!(next.ns0 > end, "a step forward never goes back");
    assert!(
        next.at(now.tsc).abs_diff(now.unix_ns) <= 1,
        "on the wall clock"
    );
    // A small lead is slewed instead of stepped.
    let now = sample_at(cur.until, end + 1_000);
    let next = next_anchor(&cur, cur.scale, &now, 1_000_000_000);
    assert_eq!(next.ns0, end);
    assert!(next.scale > cur.scale);
}

/// A TSC clock of its own (not the process-wide one), with lines of `line`.
fn tsc_test_clock(line: Duration) -> Option<TscClock> {
    if !tsc_is_reliable() {
        eprintln!("skipped: the kernel's clock source is not an invariant TSC");
        return None;
    }
    TscClock::calibrate(line)
}

/// Ends the current line at the current TSC value and re-anchors on a wall
/// clock `offset_ns` from the real one; returns the line before and after.
fn force_reanchor(clock: &TscClock, offset_ns: i64) -> (Anchor, Anchor) {
    let origin = clock.origin.lock().unwrap();
    let generation = clock.generation.load(Ordering::Relaxed);
    let slot = &clock.slots[(generation & 1) as usize];
    slot.until.store(rdtsc(), Ordering::Relaxed);
    let before = slot.load();
    let mut now = sample();
    now.unix_ns = now.unix_ns.saturating_add_signed(offset_ns);
    assert!(clock.publish_after(generation, &origin, &now));
    assert_eq!(clock.generation.load(Ordering::Relaxed), generation + 1);
    let after = clock.slots[((generation + 1) & 1) as usize].load();
    (before, after)
}

#[test]
fn readings_never_step_back_across_a_forced_reanchor() {
    // Lines of an hour: no re-anchoring happens except the forced ones.
    let Some(clock) = tsc_test_clock(Duration::from_secs(3600)) else {
        return;
    };
    for offset_ns in [-50_000, -1_000_000_000, 0, 3_000, 1_000_000_000] {
        let t1 = clock.now();
        let (before, after) = force_reanchor(&clock, offset_ns);
        let t2 = clock.now();
        assert!(t2 >= t1, "offset {offset_ns}: {t1} then {t2}");
        assert_eq!(after.tsc0, before.until);
        assert!(after.ns0 >= before.at(before.until), "offset {offset_ns}");
    }
}

#[test]
fn a_reader_holds_at_the_end_of_the_line_while_another_thread_reanchors() {
    let Some(clock) = tsc_test_clock(Duration::from_secs(3600)) else {
        return;
    };
    let t1 = clock.now();
    let (held, end) = {
        // The lock is what a re-anchoring thread holds.
        let _writer = clock.origin.lock().unwrap();
        let slot = &clock.slots[(clock.generation.load(Ordering::Relaxed) & 1) as usize];
        slot.until.store(rdtsc(), Ordering::Relaxed);
        let line = slot.load();
        (clock.now(), line.at(line.until))
    };
    assert_eq!(held, end, "held at the end of the line");
    assert!(held >= t1);
    let t3 = clock.now(); // re-anchors itself now that the lock is free
    assert!(t3 >= held);
    assert_eq!(clock.generation.load(Ordering::Relaxed), 1);
}

#[test]
fn readings_never_step_back_on_two_threads_reanchoring_every_few_microseconds() {
    let Some(clock) = tsc_test_clock(Duration::from_micros(5)) else {
        return;
    };
    let clock = &clock;
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(move || {
                let mut last = clock.now();
                for _ in 0..200_000 {
                    let t = clock.now();
                    assert!(t >= last, "went back {} ns", last - t);
                    last = t;
                }
            });
        }
    });
    assert!(
        clock.generation.load(Ordering::Relaxed) > 10,
        "the test re-anchored"
    );
}
