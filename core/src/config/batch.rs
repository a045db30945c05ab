//! The batch processor's settings: [`BatchConfig`] and its builder.

use crate::diagnostics;
use std::time::Duration;

/// What "no limit" means for the export timeout (`OTEL_BSP_EXPORT_TIMEOUT=0`).
pub const NO_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest queue allowed. The memory is reserved when the processor
/// starts (the shared queue) and when threads first need lanes, but pages cost
/// memory only once spans reach them (see [`BatchConfig::max_queue_size`]).
pub const MAX_QUEUE_SIZE: usize = 1 << 21;

/// The batch processor's settings (OpenTelemetry defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Spans the processor buffers at most, for all threads together; more are
    /// dropped (default 2048). The batch being exported comes on top.
    ///
    /// The budget is split between the threads' lanes and the queue they
    /// share. The first thread that ends spans gets a lane of half of it; later
    /// threads get lanes of an eighth, a sixteenth and so on (down to 64 spans,
    /// up to two lanes per CPU, at most 64; made when threads need them), and
    /// the shared queue holds the rest, at least a quarter. A thread has a lane
    /// in one batch processor at a time (the first it ends spans into, until
    /// that one shuts down); a thread without a lane, or whose lane is full,
    /// uses the shared queue, and a span that finds that full too is dropped.
    /// Memory: at most 192 bytes per span of the shared queue and 144 per span
    /// of each lane made, each page only once spans have reached it.
    pub max_queue_size: usize,
    /// Spans per export (default 512, at most `max_queue_size`).
    pub max_export_batch_size: usize,
    /// Longest wait before a partial batch is exported (default 5 s). Zero
    /// exports each span as soon as it is queued: every push then checks
    /// whether to wake the worker, which sleeps while the queue is empty.
    pub scheduled_delay: Duration,
    /// Time allowed for one export (default 30 s).
    pub export_timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_secs(5),
            export_timeout: Duration::from_secs(30),
        }
    }
}

impl BatchConfig {
    /// A builder starting from the defaults.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cfg = runtrace::BatchConfig::builder()
    ///     .with_max_queue_size(8192)
    ///     .with_scheduled_delay(Duration::from_millis(500))
    ///     .build();
    /// assert_eq!(cfg.max_export_batch_size, 512);
    /// ```
    pub fn builder() -> BatchConfigBuilder {
        BatchConfigBuilder(BatchConfig::default())
    }

    /// This config with invalid combinations fixed, as [`BatchConfigBuilder::build`] does.
    pub(crate) fn validated(self) -> BatchConfig {
        BatchConfigBuilder(self).build()
    }

    /// The spans a processor holds at once: a full queue (lanes and shared
    /// queue) and the batch being exported.
    pub(crate) fn spans_in_flight(&self) -> usize {
        self.max_queue_size
            .saturating_add(self.max_export_batch_size)
    }

    /// A `BatchConfig` read from the `OTEL_BSP_*` variables, validated; a bad
    /// value is reported through diagnostics and replaced by its default.
    pub fn from_env() -> Self {
        super::EnvConfig::from_env().batch
    }
}

/// Builds a [`BatchConfig`]; `build` fixes invalid combinations with a warning.
#[derive(Clone, Copy, Debug)]
pub struct BatchConfigBuilder(BatchConfig);

impl BatchConfigBuilder {
    /// Sets [`BatchConfig::max_queue_size`].
    pub fn with_max_queue_size(mut self, n: usize) -> Self {
        self.0.max_queue_size = n;
        self
    }
    /// Sets [`BatchConfig::max_export_batch_size`].
    pub fn with_max_export_batch_size(mut self, n: usize) -> Self {
        self.0.max_export_batch_size = n;
        self
    }
    /// Sets [`BatchConfig::scheduled_delay`].
    pub fn with_scheduled_delay(mut self, d: Duration) -> Self {
        self.0.scheduled_delay = d;
        self
    }
    /// Sets [`BatchConfig::export_timeout`].
    pub fn with_export_timeout(mut self, d: Duration) -> Self {
        self.0.export_timeout = d;
        self
    }
    /// The config: sizes of 0 become 1, a queue above [`MAX_QUEUE_SIZE`] and a
    /// batch size above the queue size are clamped (with a warning).
    pub fn build(self) -> BatchConfig {
        let mut c = self.0;
        c.max_queue_size = c.max_queue_size.max(1);
        if c.max_queue_size > MAX_QUEUE_SIZE {
            // The slots are reserved up front: a huge value would abort the process.
            diagnostics::warn(&format!(
                "max_queue_size {} is above {MAX_QUEUE_SIZE}; clamped",
                c.max_queue_size
            ));
            c.max_queue_size = MAX_QUEUE_SIZE;
        }
        c.max_export_batch_size = c.max_export_batch_size.max(1);
        if c.max_export_batch_size > c.max_queue_size {
            diagnostics::warn(&format!(
                "max_export_batch_size {} exceeds max_queue_size {}; clamped",
                c.max_export_batch_size, c.max_queue_size
            ));
            c.max_export_batch_size = c.max_queue_size;
        }
        c
    }
}
