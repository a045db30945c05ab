//! A long-running runner that shuts down cleanly on SIGTERM.
//!
//! `cargo run --release -p runtrace-examples --bin runner -- --rate 2000`
//!
//! It serves simulated requests at `--rate` requests per second (spread over
//! `--workers` threads) until SIGTERM or Ctrl-C. Then it stops taking requests,
//! finishes the ones in flight, and calls `provider.shutdown_with_timeout` with
//! what is left of the grace period (`--grace-ms`, default 5000) so that queued
//! spans are exported before the orchestrator's SIGKILL. It prints one JSON line
//! and exits 0. Exports go to `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`.

use runtrace::TracerProvider;
use runtrace_examples::help_requested;
use runtrace_examples::workload::handle_request;
use runtrace_otlp_http::OtlpHttpExporter;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    rate: f64,
    grace: Duration,
    workers: usize,
    stage: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rate: 2000.0,
        grace: Duration::from_millis(5000),
        workers: 2,
        stage: Duration::from_micros(20),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value:?}");
        match flag.as_str() {
            "--rate" => args.rate = value.parse().map_err(|_| bad())?,
            "--grace-ms" => args.grace = Duration::from_millis(value.parse().map_err(|_| bad())?),
            "--workers" => args.workers = value.parse().map_err(|_| bad())?,
            "--stage-us" => args.stage = Duration::from_micros(value.parse().map_err(|_| bad())?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.rate <= 0.0 || args.workers == 0 {
        return Err("--rate and --workers must be positive".into());
    }
    Ok(args)
}

const USAGE: &str = "\
usage: runner [--rate REQ_PER_S] [--grace-ms MS] [--workers N] [--stage-us US]

Serves simulated requests at --rate per second (default 2000) over --workers
threads (default 2) until SIGTERM or Ctrl-C, then shuts the tracer provider
down within what is left of the grace period (--grace-ms, default 5000) and
prints one JSON line. --stage-us is the simulated work per stage (default 20).
Spans go to OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT (default http://localhost:4318).
";

fn main() {
    if help_requested() {
        print!("{USAGE}");
        return;
    }
    let args = parse_args().unwrap_or_else(|e| {
        eprint!("runner: {e}\n{USAGE}");
        std::process::exit(2);
    });
    let mut signals = Signals::new([SIGTERM, SIGINT]).unwrap_or_else(|e| {
        eprintln!("runner: cannot install signal handlers: {e}");
        std::process::exit(1);
    });
    let exporter = OtlpHttpExporter::from_env().unwrap_or_else(|e| {
        eprintln!("runner: {e}");
        std::process::exit(2);
    });
    let provider = TracerProvider::from_env()
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("runner");

    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let per_worker = Duration::from_secs_f64(args.workers as f64 / args.rate);
    let workers: Vec<_> = (0..args.workers)
        .map(|w| {
            let (tracer, stop, requests) = (tracer.clone(), stop.clone(), requests.clone());
            let stage = args.stage;
            std::thread::spawn(move || {
                let mut next = Instant::now();
                let mut n = w as u64;
                while !stop.load(Ordering::Relaxed) {
                    handle_request(&tracer, n, stage);
                    requests.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                    next += per_worker;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else if now - next > Duration::from_secs(1) {
                        next = now; // fell behind: do not burst to catch up
                    }
                }
            })
        })
        .collect();
    eprintln!(
        "runner: serving {} requests/s on {} workers; SIGTERM or Ctrl-C to stop",
        args.rate, args.workers
    );

    let signal = signals.forever().next();
    let signalled_at = Instant::now();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join(); // in-flight requests finish and end their spans
    }
    let grace_left = args.grace.saturating_sub(signalled_at.elapsed());
    let shutdown_start = Instant::now();
    let result = provider.shutdown_with_timeout(grace_left);
    let shutdown_ms = shutdown_start.elapsed().as_secs_f64() * 1e3;
    let s = provider.stats();
    if let Err(e) = &result {
        eprintln!("runner: shutdown: {e}");
    }
    println!(
        "{{\"signal\":{},\"requests\":{},\"spans_ended\":{},\"exported\":{},\"dropped\":{},\"dropped_queue_full\":{},\"dropped_export_failed\":{},\"dropped_after_shutdown\":{},\"still_queued\":{},\"shutdown_ms\":{:.1},\"shutdown_ok\":{}}}",
        signal.unwrap_or(0),
        requests.load(Ordering::Relaxed),
        s.spans_ended,
        s.spans_exported,
        s.dropped_total(),
        s.dropped_queue_full,
        s.dropped_export_failed,
        s.dropped_after_shutdown,
        s.queue_size,
        shutdown_ms,
        result.is_ok()
    );
}
