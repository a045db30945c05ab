//! The soak binary, as a child process, under each backend fault: short runs
//! (2 s, 2 threads, 20 000 spans/s: CI runs debug builds) with the invariants the
//! program checks itself (exit 1 and `violations` if broken) plus per-scenario
//! expectations. See RELIABILITY.md.
//!
//! The latency comparison (healthy vs hang) holds an exclusive lock so that no
//! other soak child competes for the CPU meanwhile; the other tests share it.

use serde_json::Value;
use std::process::Command;
use std::sync::RwLock;
use std::time::Instant;

static CPU: RwLock<()> = RwLock::new(());

const RATE: &str = "20000";
const THREADS: &str = "2";
/// The shutdown deadline the soak uses (its default) and the slack we allow.
const SHUTDOWN_MS: f64 = 5000.0;
const SHUTDOWN_SLACK_MS: f64 = 500.0;
/// The default batch size (no `OTEL_BSP_*` in the child's environment).
const BATCH: u64 = 512;

fn soak(scenario: &str, seconds: &str) -> Value {
    soak_with(scenario, seconds, RATE, &[], &[])
}

/// A soak run at `rate`, with the defaults but for `env`, and `more_args`.
fn soak_with(
    scenario: &str,
    seconds: &str,
    rate: &str,
    env: &[(&str, &str)],
    more_args: &[&str],
) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_soak"));
    cmd.args(more_args);
    cmd.args([
        "--scenario",
        scenario,
        "--seconds",
        seconds,
        "--threads",
        THREADS,
        "--rate",
        rate,
    ]);
    // The defaults, whatever the environment of the test run says.
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k == "ENABLE_TRACING" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let started = Instant::now();
    let out = cmd.output().expect("run soak");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{scenario}: bad JSON ({e}): {stdout}\nstderr: {stderr}"));
    assert!(
        out.status.success(),
        "{scenario}: exit {:?}, violations {}\n{line}\nstderr: {stderr}",
        out.status,
        v["violations"]
    );
    eprintln!(
        "{scenario} ({:.1} s): {line}",
        started.elapsed().as_secs_f64()
    );
    v
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing or not an integer in {v}"))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {v}"))
}

/// What every scenario must show, beyond the program's own checks.
fn common(v: &Value) {
    let ended = u(v, "ended");
    assert!(ended > 10_000, "too little load: {v}");
    let accounted = u(v, "exported") + u(v, "dropped") + u(v, "still_queued");
    let in_flight = ended - accounted;
    if v["shutdown_timed_out"] == false {
        assert_eq!(in_flight, 0, "{v}");
        assert_eq!(u(v, "still_queued"), 0, "{v}");
    } else {
        assert!(in_flight <= BATCH, "{v}");
    }
    assert_eq!(
        u(v, "dropped"),
        u(v, "dropped_queue_full")
            + u(v, "dropped_export_failed")
            + u(v, "dropped_rejected")
            + u(v, "dropped_after_shutdown"),
        "{v}"
    );
    assert!(u(v, "received") >= u(v, "exported"), "{v}");
    assert!(u(v, "received") <= ended, "{v}");
    assert!(u(v, "peak_rss_kib") <= u(v, "rss_bound_kib"), "{v}");
    let bound = u(&v["bsp"], "max_queue_size") + u(&v["bsp"], "max_export_batch_size");
    assert!(u(v, "max_buffered") <= bound, "{v}");
    assert!(
        f(v, "shutdown_ms") <= SHUTDOWN_MS + SHUTDOWN_SLACK_MS,
        "shutdown not bounded: {v}"
    );
    assert!(
        v["violations"].as_array().is_some_and(|a| a.is_empty()),
        "{v}"
    );
}

/// The application thread never waits on the exporter: with the backend hung, the
/// p99.9 of a span's start + attributes + end stays within 5× the healthy figure
/// of the same test (floored at 2 µs, below which scheduler noise dominates). And
/// a shutdown while an export hangs returns by its deadline.
#[test]
fn hang_keeps_app_latency_and_shutdown_bounded() {
    let _cpu = CPU.write().unwrap_or_else(|e| e.into_inner());
    let healthy = soak("healthy", "2");
    common(&healthy);
    assert_eq!(
        u(&healthy, "exported"),
        u(&healthy, "received"),
        "{healthy}"
    );
    assert_eq!(u(&healthy, "duplicates"), 0, "{healthy}");
    let hang = soak("hang", "2");
    common(&hang);
    assert_eq!(u(&hang, "exported"), 0, "{hang}");
    assert_eq!(
        hang["shutdown_timed_out"], true,
        "the hung export cannot finish: {hang}"
    );
    assert!(u(&hang, "dropped_queue_full") > 0, "{hang}");
    let healthy_p999 = u(&healthy["latency_ns"], "p999");
    let hang_p999 = u(&hang["latency_ns"], "p999");
    assert!(
        hang_p999 <= 5 * healthy_p999.max(2000),
        "p99.9 with a hung backend {hang_p999} ns vs healthy {healthy_p999} ns"
    );
}

/// `--receiver process`: the receiver in a child process receives and counts
/// what the exporter sends, as the in-process one does (and the worker's CPU
/// per exported span is reported).
#[test]
fn receiver_in_a_child_process() {
    let _cpu = CPU.read().unwrap_or_else(|e| e.into_inner());
    let v = soak_with("healthy", "2", RATE, &[], &["--receiver", "process"]);
    common(&v);
    assert_eq!(u(&v, "exported"), u(&v, "received"), "{v}");
    assert!(
        u(&v, "receiver_requests") >= u(&v, "batches_exported"),
        "{v}"
    );
    assert!(u(&v, "worker_cpu_ns_per_exported_span") > 0, "{v}");
    let kernel = f(&v, "worker_cpu_kernel_share");
    assert!((0.0..=1.0).contains(&kernel), "{v}");
}

#[test]
fn down_backend_drops_with_reasons_in_bounded_memory() {
    let _cpu = CPU.read().unwrap_or_else(|e| e.into_inner());
    let v = soak("down", "2");
    common(&v);
    assert_eq!(u(&v, "exported"), 0, "{v}");
    assert_eq!(u(&v, "received"), 0, "{v}");
    assert!(u(&v, "dropped_queue_full") > 0, "{v}");
}

#[test]
fn slow_backend() {
    let _cpu = CPU.read().unwrap_or_else(|e| e.into_inner());
    let v = soak("slow", "2");
    common(&v);
    assert!(u(&v, "exported") >= BATCH, "{v}");
    assert_eq!(u(&v, "duplicates"), 0, "{v}");
}

#[test]
fn flaky_backend_is_retried() {
    let _cpu = CPU.read().unwrap_or_else(|e| e.into_inner());
    let v = soak("flaky", "2");
    common(&v);
    assert!(u(&v, "exported") >= BATCH, "{v}");
    // Every other request is a 503: the exporter retried.
    assert!(
        u(&v, "receiver_requests") > u(&v, "batches_exported"),
        "{v}"
    );
    assert_eq!(u(&v, "duplicates"), 0, "{v}");
}

#[test]
fn rejecting_backend_counts_export_failures() {
    let _cpu = CPU.read().unwrap_or_else(|e| e.into_inner());
    let v = soak("reject", "2");
    common(&v);
    assert_eq!(u(&v, "exported"), 0, "{v}");
    assert_eq!(u(&v, "received"), 0, "{v}");
    assert!(u(&v, "dropped_export_failed") > 0, "{v}");
    // The final flush failed too (an error, not a timeout): nothing left queued.
    assert_eq!(v["shutdown_timed_out"], false, "{v}");
}

#[test]
fn partial_success_counts_rejected_spans() {
    let _cpu = CPU.read().unwrap_or_else(|e| e.into_inner());
    let v = soak("partial", "2");
    common(&v);
    assert!(u(&v, "dropped_rejected") > 0, "{v}");
    assert_eq!(u(&v, "dropped_rejected"), u(&v, "receiver_rejected"), "{v}");
    assert_eq!(u(&v, "received"), u(&v, "exported"), "{v}");
    assert_eq!(v["shutdown_ok"], true, "{v}");
}

#[test]
fn burst_on_healthy_backend() {
    let _cpu = CPU.read().unwrap_or_else(|e| e.into_inner());
    // 2 s: steady for 1 s, then 10× for 1 s.
    let v = soak("burst", "2");
    common(&v);
    let rate: u64 = RATE.parse().unwrap();
    assert!(u(&v, "offered_spans") >= 10 * rate, "{v}");
    assert!(u(&v, "ended") > 4 * rate, "the burst did not happen: {v}");
    assert_eq!(u(&v, "received"), u(&v, "exported"), "{v}");
    assert_eq!(v["shutdown_ok"], true, "{v}");
}

/// More threads than lanes (at least two per lane) against a hung backend:
/// `max_queue_size` bounds what all of them buffer together, and memory with
/// it. With 16384 spans allowed, a lane of that size per thread as before
/// would hold five times as many on 2 CPUs (the program's own RSS bound is
/// about 16 MiB of spans above a 64 MiB margin).
#[test]
fn crowd_of_threads_against_a_hung_backend_stays_within_one_budget() {
    let _cpu = CPU.read().unwrap_or_else(|e| e.into_inner());
    let queue = 16_384;
    let v = soak_with(
        "crowd",
        "2",
        "50000",
        &[("OTEL_BSP_MAX_QUEUE_SIZE", &queue.to_string())],
        &[],
    );
    common(&v);
    let cpus = std::thread::available_parallelism().map_or(4, |n| n.get()) as u64;
    assert!(u(&v, "threads") > 2 * (2 * cpus).clamp(2, 64), "{v}");
    assert_eq!(u(&v["bsp"], "max_queue_size"), queue, "{v}");
    assert!(u(&v, "max_buffered") <= queue + BATCH, "{v}");
    // The budget filled up, and the rest were counted.
    assert!(u(&v, "max_buffered") >= queue / 2, "{v}");
    assert!(u(&v, "dropped_queue_full") > 0, "{v}");
    assert_eq!(u(&v, "exported"), 0, "{v}");
    assert_eq!(u(&v, "spans_started"), u(&v, "ended"), "{v}");
}
