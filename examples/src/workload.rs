//! The simulated inference request that the example programs trace.
//!
//! A `request` span (kind Server) with route, model, token count, a cached flag
//! and an array attribute, an event, and three children: `preprocess`,
//! `inference`, `postprocess`. One request in seven fails: the error is recorded
//! with `record_error` and the status set to Error.

use runtrace::{KeyValue, SpanKind, Status, Tracer};
use std::time::{Duration, Instant};

/// The error a failing request records.
#[derive(Debug)]
pub struct InferenceError {
    /// Request number.
    pub request: u64,
}

impl std::fmt::Display for InferenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "model timed out on request {}", self.request)
    }
}

impl std::error::Error for InferenceError {}

const MODELS: [&str; 3] = ["llama-3-8b", "mistral-7b", "phi-3-mini"];

/// Busy-waits for `d` (simulated CPU work that keeps the thread on-core).
pub fn work(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// What one request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Spans started (sampled or not).
    pub spans_started: u64,
}

/// Handles request `n`, spending about `stage` in each of the three stages.
pub fn handle_request(tracer: &Tracer, n: u64, stage: Duration) -> Outcome {
    let model = MODELS[(n % 3) as usize];
    let tokens = 64 + (n * 37 % 512) as i64;
    let cached = n & 3 == 0;
    let mut request = tracer
        .span("request")
        .kind(SpanKind::Server)
        .attribute("http.route", "/v1/infer")
        .attribute("gen_ai.request.model", model)
        .start();
    request.set_attribute("gen_ai.usage.input_tokens", tokens);
    request.set_attribute("cache.hit", cached);
    request.set_attribute("gpu.ids", vec![0i64, 1]);
    let _active = request.enter();

    tracer.in_span("preprocess", |span| {
        span.set_attribute("tokenizer", "bpe");
        work(stage);
    });
    let failed = n % 7 == 3;
    tracer.in_span("inference", |span| {
        span.set_attribute("batch.size", 1 + (n % 8) as i64);
        work(stage * 2);
        if failed {
            let err = InferenceError { request: n };
            span.record_error(&err);
            span.set_status(Status::error(err.to_string()));
        }
    });
    if !failed {
        tracer.in_span("postprocess", |span| {
            span.set_attribute("output_tokens", tokens / 2);
            work(stage);
        });
    }
    request.add_event(
        "response.sent",
        vec![KeyValue::new(
            "http.response.status_code",
            if failed { 500 } else { 200 },
        )],
    );
    if failed {
        request.set_status(Status::error("inference failed"));
    }
    Outcome {
        ok: !failed,
        spans_started: if failed { 3 } else { 4 },
    }
}

/// Threads of this process named `runtrace-batch` (Linux; 0 elsewhere).
pub fn batch_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim() == "runtrace-batch")
                .count()
        })
        .unwrap_or(0)
}
