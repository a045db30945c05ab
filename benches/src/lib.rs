//! Benchmarks of runtrace against its peers; see `benches/` (run with `cargo bench -p runtrace-benches`).
//!
//! What the benches and profiling examples share: a runtrace exporter that
//! counts and drops spans, the timing loop of a criterion `iter_custom`, the
//! process's CPU time for the tokio apps, and the `tracing` bench's cases
//! ([`tracing_cases`]).

pub mod tracing_cases;

use runtrace::{ExportError, SpanData, SpanExporter};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A runtrace exporter that counts the spans it is given (in the shared
/// counter) and drops them.
#[derive(Debug, Default)]
pub struct Discard(pub Arc<AtomicU64>);

impl SpanExporter for Discard {
    fn export(&mut self, batch: &[SpanData], _deadline: Instant) -> Result<(), ExportError> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Runs `op` `iters` times and returns the elapsed time; adds `iters` to `count`
/// (criterion's warm-up calls this too, so `count` is every span the bench ended).
pub fn timed(count: &Cell<u64>, iters: u64, mut op: impl FnMut()) -> Duration {
    count.set(count.get() + iters);
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    start.elapsed()
}

/// The process's CPU time so far (user + system, every thread), from
/// `/proc/self/stat`, whose times are in `USER_HZ` clock ticks: 100 a second
/// on Linux for x86-64 and arm64 alike (the kernel's ABI, whatever its own
/// tick rate). A tick of 10 ms is too coarse for a round of a few
/// milliseconds, so the tokio apps serve their requests many times a round.
///
/// # Panics
///
/// Without Linux's `/proc` (the tokio apps measure on Linux only).
pub fn process_cpu() -> Duration {
    const USER_HZ: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    // Fields after the command name (which may hold spaces) close with ')'.
    let after_name = stat.rfind(')').expect("/proc/self/stat names the command") + 2;
    let fields: Vec<&str> = stat[after_name..].split(' ').collect();
    let ticks = |i: usize| -> u64 { fields[i].parse().expect("/proc/self/stat CPU ticks") };
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / USER_HZ)
}

/// The tokio apps' arguments: the rounds to run (the first argument; 5 if
/// absent or not a positive number), and the one library to run them with,
/// if a second argument names it (`none`, `runtrace` or `otel`), so that a
/// profiler counts that library alone.
///
/// # Panics
///
/// If the second argument names another library.
pub fn rounds_and_library() -> (usize, Option<String>) {
    let rounds = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|&rounds| rounds > 0)
        .unwrap_or(5);
    let only = std::env::args().nth(2);
    if let Some(lib) = only
        .as_deref()
        .filter(|l| !["none", "runtrace", "otel"].contains(l))
    {
        panic!("unknown library {lib:?}: none, runtrace or otel");
    }
    (rounds, only)
}

/// An HTTP server span's 20 attributes, as the `sampled_root_20attrs` cases
/// set them one by one: more than most spans' recycled lists hold. Static keys
/// and string values (numbers too, so that one table serves every library).
pub const HTTP_ATTRIBUTES: [(&str, &str); 20] = [
    ("http.request.method", "POST"),
    ("url.full", "https://api.example.com/v1/infer?stream=false"),
    ("url.path", "/v1/infer"),
    ("url.scheme", "https"),
    ("url.query", "stream=false"),
    ("server.address", "api.example.com"),
    ("server.port", "443"),
    ("client.address", "10.1.2.3"),
    ("client.port", "51234"),
    ("network.protocol.name", "http"),
    ("network.protocol.version", "1.1"),
    ("network.peer.address", "10.1.2.3"),
    ("user_agent.original", "curl/8.5.0"),
    ("http.route", "/v1/infer"),
    ("http.response.status_code", "200"),
    ("http.request.body.size", "512"),
    ("http.response.body.size", "2048"),
    ("code.function", "infer"),
    ("thread.id", "7"),
    ("thread.name", "tokio-runtime-worker"),
];

/// The first quartile, median and third quartile of `values` (sorted in
/// place; zeros if empty).
///
/// ```
/// let mut v = [5.0, 1.0, 3.0, 2.0, 4.0];
/// assert_eq!(runtrace_benches::quartiles(&mut v), [2.0, 3.0, 4.0]);
/// ```
pub fn quartiles(values: &mut [f64]) -> [f64; 3] {
    values.sort_by(f64::total_cmp);
    let at = |q: usize| {
        values
            .get(values.len().saturating_sub(1) * q / 4)
            .copied()
            .unwrap_or(0.0)
    };
    [at(1), at(2), at(3)]
}

/// `rounds` rounds of `N` contenders measured back to back, `run(i)` giving
/// contender `i`'s time per span in the round: each contender's median, and
/// the first quartile, median and third quartile of the rounds' ratios of
/// contender 0 to contender 1. The two figures of a ratio are taken a
/// fraction of a second apart, so the VM's slow and fast phases, which last
/// seconds, move both alike.
///
/// ```
/// let mut calls = 0;
/// let ([a, b], ratio) = runtrace_benches::paired_rounds(3, |i| {
///     calls += 1;
///     [10.0, 40.0][i]
/// });
/// assert_eq!((a, b, calls), (10.0, 40.0, 6));
/// assert_eq!(ratio, [0.25, 0.25, 0.25]);
/// ```
pub fn paired_rounds<const N: usize>(
    rounds: usize,
    mut run: impl FnMut(usize) -> f64,
) -> ([f64; N], [f64; 3]) {
    let mut times: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(rounds));
    let mut ratios = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let round: [f64; N] = std::array::from_fn(&mut run);
        for (time, t) in times.iter_mut().zip(round) {
            time.push(t);
        }
        ratios.push(round[0] / round[1]);
    }
    (
        times.map(|mut t| quartiles(&mut t)[1]),
        quartiles(&mut ratios),
    )
}
