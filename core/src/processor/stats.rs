//! [`ProcessorStats`]: what a processor did with the spans it received.

/// A processor's counters. They map onto the OpenTelemetry SDK self-metrics:
/// `otel.sdk.processor.span.processed` (exported, and the `dropped_*` fields with
/// `error.type` = `queue_full`, `already_shutdown`, `export_failed`, `rejected`),
/// `otel.sdk.processor.span.queue.size` and `otel.sdk.processor.span.queue.capacity`.
///
/// Invariant: every sampled span that ended is exported, dropped with one reason,
/// being exported, or still queued:
/// `spans_ended == spans_exported + dropped_total() + spans_in_flight + queue_size`
/// (exact when the processor is quiescent; a snapshot taken while spans move may
/// be off by the spans moving).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessorStats {
    /// Sampled spans started in a pipeline with this processor.
    /// `spans_started - spans_ended` is the spans not ended yet: in progress,
    /// or never to end (leaked with `mem::forget`, or held by a value that is
    /// never dropped), which are never exported.
    pub spans_started: u64,
    /// Sampled spans that ended and reached the processor.
    pub spans_ended: u64,
    /// Spans accepted into the queue.
    pub spans_queued: u64,
    /// Spans the exporter confirmed (minus those the backend rejected).
    pub spans_exported: u64,
    /// Spans dropped because the queue was full (`error.type=queue_full`).
    pub dropped_queue_full: u64,
    /// Spans lost with a failed or timed-out export (`error.type=export_failed`).
    pub dropped_export_failed: u64,
    /// Spans the backend rejected in a partial success (`error.type=rejected`).
    pub dropped_rejected: u64,
    /// Spans ended after shutdown, or still queued when its last export
    /// was over (`error.type=already_shutdown`). A span whose push raced
    /// the shutdown and landed after it is counted here too, by the producer
    /// or at the next `stats`: after shutdown nothing stays queued.
    pub dropped_after_shutdown: u64,
    /// Spans the exporter could not send because each alone encodes above
    /// its request size limit (`error.type=too_large`); the rest of their
    /// batch was exported.
    pub dropped_too_large: u64,
    /// Spans inside an export that has not returned yet.
    pub spans_in_flight: u64,
    /// Batches exported successfully.
    pub batches_exported: u64,
    /// Export calls that failed or timed out.
    pub export_failures: u64,
    /// Spans waiting in the queue now: in the threads' lanes and the shared
    /// queue.
    pub queue_size: u64,
    /// Spans the queue can hold: `max_queue_size`, for the threads' lanes and
    /// the shared queue together (see [`BatchConfig`](crate::BatchConfig)).
    pub queue_capacity: u64,
    /// The last export error, if any.
    pub last_export_error: Option<String>,
}

impl ProcessorStats {
    /// Sum of all the drop counters.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_export_failed
            + self.dropped_rejected
            + self.dropped_after_shutdown
            + self.dropped_too_large
    }

    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &ProcessorStats) {
        self.spans_started += other.spans_started;
        self.spans_ended += other.spans_ended;
        self.spans_queued += other.spans_queued;
        self.spans_exported += other.spans_exported;
        self.dropped_queue_full += other.dropped_queue_full;
        self.dropped_export_failed += other.dropped_export_failed;
        self.dropped_rejected += other.dropped_rejected;
        self.dropped_after_shutdown += other.dropped_after_shutdown;
        self.dropped_too_large += other.dropped_too_large;
        self.spans_in_flight += other.spans_in_flight;
        self.batches_exported += other.batches_exported;
        self.export_failures += other.export_failures;
        self.queue_size += other.queue_size;
        self.queue_capacity += other.queue_capacity;
        if other.last_export_error.is_some() {
            self.last_export_error.clone_from(&other.last_export_error);
        }
    }
}
