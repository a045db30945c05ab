//! Soak: load and faults through the batch processor and the OTLP/HTTP exporter.
//!
//! `cargo run --release -p runtrace-examples --bin soak -- --scenario healthy --seconds 10 --threads 2 --rate 50000`
//!
//! `--threads` application threads create spans at `--rate` spans/s in total (0:
//! as fast as they can) for `--seconds`, through `TracerProvider::from_env()`
//! (so `OTEL_BSP_*` apply) and an `OtlpHttpExporter` (with the
//! `OTEL_EXPORTER_OTLP_*` settings, such as compression) pointed at a receiver
//! on 127.0.0.1 that this program starts with a fault:
//!
//! | scenario | backend |
//! |---|---|
//! | `healthy` | answers 200 at once |
//! | `down` | nothing listens (a port bound, then released): connection refused |
//! | `slow` | holds every request 2 s, then 200 |
//! | `hang` | reads requests and never answers |
//! | `flaky` | every other request: 503 with `Retry-After: 1` |
//! | `reject` | 400 on every request |
//! | `partial` | 200 with a partial success rejecting one span in ten |
//! | `burst` | healthy; the offered rate is 10× for 1 s in every 5 s (from t = 1 s) |
//! | `crowd` | as `hang`, with at least twice as many threads as the processor has lanes, plus one |
//!
//! Each span's `start()` + four attribute sets + `end()` is timed with `Instant`
//! into a per-thread log-linear histogram. At the end the program calls
//! `provider.shutdown_with_timeout(--shutdown-ms, default 5000)`, checks the
//! invariants (see RELIABILITY.md), prints ONE JSON line and exits 1 if any is
//! broken (the `violations` field says which), 2 on bad arguments. With
//! `--linger-ms`, it then waits that long and reports the counters again
//! (`after_linger`): what a worker left running past a timed-out shutdown did.
//!
//! While the threads run, the main thread reads `provider.stats()` every 5 ms:
//! the spans buffered (queued, and inside an export) must never exceed
//! `max_queue_size` plus one batch, whatever the number of threads
//! (`max_buffered`).

use runtrace::{BatchConfig, FlushError, TracerProvider};
use runtrace_examples::help_requested;
use runtrace_examples::histogram::Histogram;
use runtrace_examples::receiver::{Fault, Receiver, ReceiverStats};
use runtrace_examples::receiver_process::{serve_child, ChildReceiver};
use runtrace_otlp_http::OtlpHttpExporter;
use serde_json::json;
use std::time::{Duration, Instant};

/// Estimated memory of one queued span (SpanData + 4 attributes), for the RSS bound.
const PER_SPAN_BYTES: u64 = 1024;
/// Estimated memory of one span id in the receiver's dedup set (it runs in this
/// process: hashbrown slot of 24 bytes + control byte, at worst half full, plus
/// the table copy while it grows).
const RECEIVER_BYTES_PER_SPAN: u64 = 96;
/// Fixed margin of the RSS bound: allocator slack, thread stacks, HTTP buffers.
const RSS_MARGIN_KIB: u64 = 64 * 1024;
/// How long after its deadline a shutdown may return (scheduling slack).
const SHUTDOWN_SLACK: Duration = Duration::from_millis(1000);

const SCENARIOS: [&str; 9] = [
    "healthy", "down", "slow", "hang", "flaky", "reject", "partial", "burst", "crowd",
];

/// How often the main thread reads the counters during the load.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// Threads for the `crowd` scenario: more than twice the lanes a batch
/// processor makes at most (two per CPU, at most 64), so that most threads
/// share the queue and lanes change hands.
fn crowd_threads() -> usize {
    let lanes = std::thread::available_parallelism()
        .map_or(4, |n| 2 * n.get())
        .clamp(2, 64);
    2 * lanes + 1
}

struct Args {
    scenario: &'static str,
    seconds: f64,
    threads: usize,
    rate: f64,
    shutdown: Duration,
    export_timeout: Option<Duration>,
    linger: Duration,
    /// The receiver runs in a child process (`--receiver process`).
    receiver_process: bool,
}

/// The scenario's backend: the receiver's fault, `None` when it is down.
fn fault_of(scenario: &str) -> Option<Fault> {
    match scenario {
        "slow" => Some(Fault::Slow(Duration::from_secs(2))),
        "hang" | "crowd" => Some(Fault::Hang),
        "flaky" => Some(Fault::Flaky),
        "reject" => Some(Fault::Reject),
        "partial" => Some(Fault::Partial),
        "down" => None,
        _ => Some(Fault::Healthy),
    }
}

/// The receiver, in this process or a child one.
enum Backend {
    InProcess(Receiver),
    Child(ChildReceiver),
}

impl Backend {
    fn start(fault: Fault, args: &Args) -> std::io::Result<Backend> {
        if !args.receiver_process {
            return Receiver::start(fault, false).map(Backend::InProcess);
        }
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command.args(["--serve-receiver", "--scenario", args.scenario]);
        ChildReceiver::spawn(command).map(Backend::Child)
    }

    fn endpoint(&self) -> String {
        match self {
            Backend::InProcess(r) => r.endpoint(),
            Backend::Child(r) => r.endpoint(),
        }
    }

    fn stats(&self) -> ReceiverStats {
        match self {
            Backend::InProcess(r) => r.stats(),
            Backend::Child(r) => r.stats(),
        }
    }

    fn requests(&self) -> u64 {
        match self {
            Backend::InProcess(r) => r.requests(),
            Backend::Child(r) => r.requests(),
        }
    }

    /// Memory of the receiver in this process, per span it holds.
    fn bytes_per_span_here(&self) -> u64 {
        match self {
            Backend::InProcess(_) => RECEIVER_BYTES_PER_SPAN,
            Backend::Child(_) => 0,
        }
    }
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut args = Args {
        scenario: "healthy",
        seconds: 10.0,
        threads: 2,
        rate: 50_000.0,
        shutdown: Duration::from_millis(5000),
        export_timeout: None,
        linger: Duration::ZERO,
        receiver_process: false,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value:?}");
        match flag.as_str() {
            "--scenario" => {
                args.scenario = SCENARIOS
                    .iter()
                    .find(|s| **s == value.as_str())
                    .ok_or_else(|| format!("unknown scenario {value:?}; one of {SCENARIOS:?}"))?
            }
            "--seconds" => args.seconds = value.parse().map_err(|_| bad())?,
            "--threads" => args.threads = value.parse().map_err(|_| bad())?,
            "--rate" => args.rate = value.parse().map_err(|_| bad())?,
            "--shutdown-ms" => {
                args.shutdown = Duration::from_millis(value.parse().map_err(|_| bad())?)
            }
            "--export-timeout-ms" => {
                args.export_timeout = Some(Duration::from_millis(value.parse().map_err(|_| bad())?))
            }
            "--linger-ms" => args.linger = Duration::from_millis(value.parse().map_err(|_| bad())?),
            "--receiver" => {
                args.receiver_process = match value.as_str() {
                    "process" => true,
                    "in-process" => false,
                    _ => {
                        return Err(format!(
                            "{bad}; one of \"in-process\", \"process\"",
                            bad = bad()
                        ))
                    }
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !(args.seconds > 0.0 && args.seconds < 86_400.0) || args.threads == 0 {
        return Err("--seconds and --threads must be positive".into());
    }
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        return Err("--rate must be >= 0".into());
    }
    Ok(args)
}

/// Spans offered in total by time `t` (seconds): `rate` per second, and 10× that
/// during [1 s, 2 s) of every 5 s period when `burst`.
fn offered_by(t: f64, rate: f64, burst: bool) -> f64 {
    if !burst {
        return rate * t;
    }
    let periods = (t / 5.0).floor();
    let in_burst = periods + (t - periods * 5.0 - 1.0).clamp(0.0, 1.0);
    rate * (t + 9.0 * in_burst)
}

/// `VmHWM` (peak resident set) or `VmRSS` of this process, in KiB (0 if unknown).
fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time so far of this process's `runtrace-batch` threads (zero before
/// one starts), from `/proc/self/task/*/`: `None` where unreadable.
#[derive(Clone, Copy, Default)]
struct WorkerCpu {
    /// On-CPU nanoseconds (`schedstat`).
    on_cpu_ns: u64,
    /// Clock ticks in user and in kernel mode (`stat` fields 14 and 15;
    /// sampled at each tick, so a share rather than a time).
    user_ticks: u64,
    kernel_ticks: u64,
}

fn batch_thread_cpu() -> Option<WorkerCpu> {
    let mut total = WorkerCpu::default();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != "runtrace-batch" {
            continue;
        }
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total.on_cpu_ns += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
        // The fields after the command name, which ends at the last ')'.
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
        total.user_ticks += fields.nth(11)?.parse::<u64>().ok()?;
        total.kernel_ticks += fields.next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// One application thread: spans at `rate / threads` per second until `end`.
fn app_thread(
    tracer: runtrace::Tracer,
    idx: usize,
    args: &Args,
    start: Instant,
    end: Instant,
    mut hist: Histogram,
) -> (u64, Histogram) {
    let burst = args.scenario == "burst";
    let share = args.threads as f64;
    let mut done = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let due = if args.rate == 0.0 {
            done + 256
        } else {
            (offered_by((now - start).as_secs_f64(), args.rate, burst) / share) as u64
        };
        if done >= due {
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        for _ in 0..(due - done).min(256) {
            let t0 = Instant::now();
            {
                let mut span = tracer.span("soak.op").start();
                span.set_attribute("soak.thread", idx as i64);
                span.set_attribute("soak.seq", done as i64);
                span.set_attribute("soak.scenario", args.scenario);
                span.set_attribute("soak.ok", true);
                span.end();
            }
            hist.record(t0.elapsed().as_nanos() as u64);
            done += 1;
        }
    }
    (done, hist)
}

/// The usage text (`--help`, and after a bad argument).
fn usage() -> String {
    format!(
        "usage: soak [--scenario {}] [--seconds S] [--threads T] [--rate SPANS_PER_S] \
         [--shutdown-ms MS] [--export-timeout-ms MS] [--linger-ms MS] \
         [--receiver in-process|process]

Runs --threads application threads (default 2) ending spans at --rate spans/s in
total (default 50000; 0: as fast as they can) for --seconds (default 10) against
an embedded OTLP/HTTP receiver with the scenario's fault (default healthy; in a
child process with --receiver process), then
shuts down within --shutdown-ms (default 5000), checks the invariants and prints
one JSON line. Exits 1 if an invariant is broken, 2 on a bad argument. The crowd
scenario runs at least 2 threads per lane the batch processor can make, plus one.
",
        SCENARIOS.join("|")
    )
}

fn main() {
    if help_requested() {
        print!("{}", usage());
        return;
    }
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    // The child of `--receiver process`: serves the scenario's receiver only.
    let serve_receiver = argv.first().is_some_and(|a| a == "--serve-receiver");
    if serve_receiver {
        argv.remove(0);
    }
    let mut args = parse_args(&argv).unwrap_or_else(|e| {
        eprint!("soak: {e}\n{}", usage());
        std::process::exit(2);
    });
    if serve_receiver {
        if let Err(e) = fault_of(args.scenario).map_or(Ok(()), serve_child) {
            eprintln!("soak: receiver process: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.scenario == "crowd" {
        args.threads = args.threads.max(crowd_threads());
    }

    // The backend.
    let fault = fault_of(args.scenario);
    let receiver = fault.map(|f| {
        Backend::start(f, &args).unwrap_or_else(|e| {
            eprintln!("soak: cannot start the receiver: {e}");
            std::process::exit(1);
        })
    });
    let endpoint = match &receiver {
        Some(r) => r.endpoint(),
        None => {
            // Bind a port, then release it: connections are refused.
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| {
                eprintln!("soak: cannot bind 127.0.0.1: {e}");
                std::process::exit(1);
            });
            let addr = l.local_addr().expect("bound address");
            drop(l);
            format!("http://{addr}/v1/traces")
        }
    };

    // The pipeline: OTEL_BSP_* (and the sampler variables) from the environment.
    let bsp = BatchConfig::from_env();
    // The exporter's OTEL_EXPORTER_OTLP_* settings too (compression, headers),
    // but always the scenario's receiver.
    let mut builder = OtlpHttpExporter::builder()
        .with_env_lookup(|k| std::env::var(k).ok())
        .with_endpoint(&endpoint);
    if let Some(t) = args.export_timeout {
        builder = builder.with_timeout(t);
    }
    let exporter = builder.build().unwrap_or_else(|e| {
        eprintln!("soak: {e}");
        std::process::exit(2);
    });
    let exporter_timeout = exporter.timeout();
    let provider = TracerProvider::from_env()
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("soak");
    let hists: Vec<Histogram> = (0..args.threads).map(|_| Histogram::new()).collect();
    let baseline_rss_kib = proc_status_kib("VmRSS:");
    let worker_cpu_start = batch_thread_cpu();

    // The load.
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.seconds);
    let buffered_of = |s: &runtrace::ProcessorStats| s.queue_size + s.spans_in_flight;
    let (created, latency, max_buffered) = std::thread::scope(|s| {
        let handles: Vec<_> = hists
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let (tracer, args) = (tracer.clone(), &args);
                s.spawn(move || app_thread(tracer, i, args, start, end, h))
            })
            .collect();
        // The bound on what is buffered, watched while the threads run.
        let mut max_buffered = 0;
        while Instant::now() < end {
            max_buffered = max_buffered.max(buffered_of(&provider.stats()));
            std::thread::sleep(SAMPLE_EVERY);
        }
        let mut created = 0;
        let mut merged = Histogram::new();
        for h in handles {
            let (n, hist) = h.join().expect("application thread panicked");
            created += n;
            merged.merge(&hist);
        }
        max_buffered = max_buffered.max(buffered_of(&provider.stats()));
        (created, merged, max_buffered)
    });
    let run_secs = start.elapsed().as_secs_f64();
    // The worker's CPU per span it exported while the load ran (shutdown's
    // final drain aside).
    let exported_in_run = provider.stats().spans_exported;
    let worker_cpu_during = match (worker_cpu_start, batch_thread_cpu()) {
        (Some(before), Some(after)) => Some(WorkerCpu {
            on_cpu_ns: after.on_cpu_ns - before.on_cpu_ns,
            user_ticks: after.user_ticks - before.user_ticks,
            kernel_ticks: after.kernel_ticks - before.kernel_ticks,
        }),
        _ => None,
    };
    let worker_cpu_ns_per_span = worker_cpu_during
        .filter(|_| exported_in_run > 0)
        .map(|c| (c.on_cpu_ns as f64 / exported_in_run as f64).round() as u64);
    // The share of those ticks the worker spent in the kernel (system calls,
    // loopback TCP, page faults, wake-ups).
    let worker_kernel_share = worker_cpu_during
        .filter(|c| c.user_ticks + c.kernel_ticks > 0)
        .map(|c| {
            (c.kernel_ticks as f64 / (c.user_ticks + c.kernel_ticks) as f64 * 100.0).round() / 100.0
        });

    // Shutdown, bounded.
    let shutdown_start = Instant::now();
    let shutdown = provider.shutdown_with_timeout(args.shutdown);
    let shutdown_time = shutdown_start.elapsed();
    let batch = bsp.max_export_batch_size as u64;
    let in_flight_of = |s: &runtrace::ProcessorStats| {
        s.spans_ended as i128
            - s.spans_exported as i128
            - s.dropped_total() as i128
            - s.queue_size as i128
    };
    // A shutdown that returns an export error still completed: only a timeout
    // leaves spans in the queue or in an export that has not returned.
    let timed_out = matches!(shutdown, Err(FlushError::Timeout));
    let mut stats = provider.stats();
    if timed_out {
        // A worker finishing just after the deadline may be between two counter
        // updates: give it a moment (a hung worker never finishes; that is fine).
        for _ in 0..10 {
            if (0..=batch as i128).contains(&in_flight_of(&stats)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            stats = provider.stats();
        }
    }
    let rx = receiver.as_ref().map(|r| r.stats()).unwrap_or_default();
    let rx_requests = receiver.as_ref().map_or(0, |r| r.requests());
    // Optionally watch what the (possibly detached) worker does after shutdown.
    let after_linger = (!args.linger.is_zero()).then(|| {
        std::thread::sleep(args.linger);
        let s = provider.stats();
        json!({
            "linger_ms": args.linger.as_millis() as u64,
            "exported": s.spans_exported,
            "dropped": s.dropped_total(),
            "dropped_export_failed": s.dropped_export_failed,
            "dropped_after_shutdown": s.dropped_after_shutdown,
            "still_queued": s.queue_size,
            "in_flight": in_flight_of(&s) as i64,
            "receiver_requests": receiver.as_ref().map_or(0, |r| r.requests()),
        })
    });
    let receiver_bytes_per_span = receiver.as_ref().map_or(0, Backend::bytes_per_span_here);
    drop(receiver); // releases hanging requests
    let peak_rss_kib = proc_status_kib("VmHWM:");

    // Invariants.
    let in_flight = in_flight_of(&stats);
    let dropped = stats.dropped_total();
    let buffered_bound = bsp.max_queue_size as u64 + batch;
    let rss_bound_kib = baseline_rss_kib
        // All spans buffered (lanes and shared queue) and the batch exported.
        + (buffered_bound * PER_SPAN_BYTES).div_ceil(1024)
        + (rx.unique_spans + rx.duplicate_spans) * receiver_bytes_per_span / 1024
        + RSS_MARGIN_KIB;
    let export_calls = stats.batches_exported + stats.export_failures;
    let retries_seen = rx_requests.saturating_sub(export_calls);
    let mut violations: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            violations.push(what);
        }
    };
    check(
        stats.spans_ended <= created,
        format!("ended {} > spans created {created}", stats.spans_ended),
    );
    if !timed_out {
        check(
            stats.queue_size == 0 && in_flight == 0,
            format!(
                "shutdown completed but ended {} != exported {} + dropped {dropped} + queued {} (in flight {in_flight})",
                stats.spans_ended, stats.spans_exported, stats.queue_size
            ),
        );
    } else {
        check(
            (0..=batch as i128).contains(&in_flight),
            format!(
                "shutdown timed out and ended {} - exported {} - dropped {dropped} - queued {} = {in_flight} is not within one batch ({batch})",
                stats.spans_ended, stats.spans_exported, stats.queue_size
            ),
        );
    }
    check(
        shutdown_time <= args.shutdown + SHUTDOWN_SLACK,
        format!(
            "shutdown took {shutdown_time:?}, deadline {:?}",
            args.shutdown
        ),
    );
    // `spans_exported` already excludes the spans the backend rejected.
    check(
        rx.unique_spans >= stats.spans_exported,
        format!(
            "received {} < exported {} (acknowledged spans missing)",
            rx.unique_spans, stats.spans_exported
        ),
    );
    check(
        rx.unique_spans <= stats.spans_ended,
        format!(
            "received {} > ended {} (spans that never ended)",
            rx.unique_spans, stats.spans_ended
        ),
    );
    check(
        rx.duplicate_spans <= retries_seen * batch,
        format!(
            "{} duplicates with only {retries_seen} retried requests",
            rx.duplicate_spans
        ),
    );
    check(
        rx.bad_requests == 0,
        format!("{} requests did not decode", rx.bad_requests),
    );
    check(
        max_buffered <= buffered_bound,
        format!(
            "{max_buffered} spans buffered at once > max_queue_size {} + one batch",
            bsp.max_queue_size
        ),
    );
    check(
        peak_rss_kib <= rss_bound_kib,
        format!("peak RSS {peak_rss_kib} KiB > bound {rss_bound_kib} KiB"),
    );

    let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    let line = json!({
        "scenario": args.scenario,
        "seconds": args.seconds,
        "threads": args.threads,
        "offered": args.rate,
        "offered_spans": if args.rate == 0.0 { 0 } else { offered_by(run_secs.min(args.seconds), args.rate, args.scenario == "burst") as u64 },
        "created": created,
        "ended": stats.spans_ended,
        "exported": stats.spans_exported,
        "dropped": dropped,
        "dropped_queue_full": stats.dropped_queue_full,
        "dropped_export_failed": stats.dropped_export_failed,
        "dropped_rejected": stats.dropped_rejected,
        "dropped_after_shutdown": stats.dropped_after_shutdown,
        "still_queued": stats.queue_size,
        "in_flight": in_flight as i64,
        "max_buffered": max_buffered,
        "spans_started": stats.spans_started,
        "batches_exported": stats.batches_exported,
        "export_failures": stats.export_failures,
        "received": rx.unique_spans,
        "duplicates": rx.duplicate_spans,
        "receiver_rejected": rx.rejected_spans,
        "receiver_requests": rx_requests,
        "latency_ns": {
            "count": latency.count(),
            "p50": latency.value_at_quantile(0.50),
            "p99": latency.value_at_quantile(0.99),
            "p999": latency.value_at_quantile(0.999),
            "max": latency.max(),
        },
        "baseline_rss_kib": baseline_rss_kib,
        "peak_rss_kib": peak_rss_kib,
        "rss_bound_kib": rss_bound_kib,
        "worker_cpu_ns_per_exported_span": worker_cpu_ns_per_span,
        "worker_cpu_kernel_share": worker_kernel_share,
        "shutdown_ms": ms(shutdown_time),
        "shutdown_ok": shutdown.is_ok(),
        "shutdown_timed_out": timed_out,
        "shutdown_error": shutdown.as_ref().err().map(|e| e.to_string()),
        "bsp": {
            "max_queue_size": bsp.max_queue_size,
            "max_export_batch_size": bsp.max_export_batch_size,
            "scheduled_delay_ms": bsp.scheduled_delay.as_millis() as u64,
            "export_timeout_ms": bsp.export_timeout.as_millis() as u64,
        },
        "exporter_timeout_ms": exporter_timeout.map(|t| t.as_millis() as u64),
        "after_linger": after_linger,
        "violations": violations,
    });
    println!("{line}");
    std::process::exit(if violations.is_empty() { 0 } else { 1 });
}
