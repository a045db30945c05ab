//! Settings, and the environment variables that set them: [`SpanLimits`],
//! [`BatchConfig`], and [`env`](mod@env), where every variable the core reads is
//! parsed in one place into these.
//!
//! Everything here is plain data: the runtime layers above read it when a
//! provider or processor is built.

pub mod batch;
pub mod env;

use std::time::Duration;

/// Per-span limits; defined with the span values it limits.
pub use crate::data::SpanLimits;
pub use batch::{BatchConfig, BatchConfigBuilder, MAX_QUEUE_SIZE, NO_TIMEOUT};
pub use env::{EnvConfig, SamplerConfig};

/// How long dropping the last provider handle (or a batch processor that was
/// never shut down) may spend shutting down.
pub const DEFAULT_DROP_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
