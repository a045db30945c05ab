//! [`TracerProvider`] and its builder, and the [`Pipeline`] they share.
//!
//! A [`TracerProvider`] owns the pipeline: sampler, id generator, limits, resource
//! and span processors. Tracers are cheap handles to it, one per instrumentation
//! scope. A provider built with [`TracerProvider::noop`] (or from the environment
//! with `ENABLE_TRACING=false` / `OTEL_SDK_DISABLED=true`) has no pipeline at all:
//! its spans are non-recording and cost no allocation, clock read or thread.

use super::dispatch::Processor;
use super::tracer::Tracer;
use crate::clock;
use crate::config::{BatchConfig, EnvConfig, SpanLimits, DEFAULT_DROP_SHUTDOWN_TIMEOUT};
use crate::data::id;
use crate::data::{
    IdGenerator, Instrumentation, InstrumentationScope, KeyValue, Resource, SpanContext, SpanId,
    Str, TraceId,
};
use crate::export::SpanExporter;
use crate::processor::{
    BatchSpanProcessor, FlushError, ProcessorStats, SimpleSpanProcessor, SpanProcessor,
};
use crate::sampling::{AlwaysOn, FixedDecisions, ParentBased, Sampler};
use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Everything a span needs from its provider.
pub(crate) struct Pipeline {
    pub(super) sampler: Box<dyn Sampler>,
    /// The sampler's decisions when they depend only on the parent: then the
    /// tracer decides without calling it.
    pub(super) fixed_decisions: Option<FixedDecisions>,
    /// `None`: the built-in random generator, called without dynamic dispatch.
    pub(super) id_generator: Option<Box<dyn IdGenerator>>,
    pub(super) ids_random: bool,
    pub(crate) limits: SpanLimits,
    pub(super) resource: Arc<Resource>,
    pub(super) processors: Vec<Processor>,
    /// Every processor is a batch processor, whose `on_start` only counts a
    /// sampled span: [`Pipeline::count_started`] is then all of `on_start`.
    pub(super) batch_only: bool,
    pub(super) is_shutdown: AtomicBool,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("sampler", &self.sampler.description())
            .field("limits", &self.limits)
            .field("resource", &self.resource)
            .field("processors", &self.processors)
            .finish()
    }
}

impl Pipeline {
    /// The scope's shared part for spans of this pipeline: the pipeline is
    /// reached from a span through it, held weakly (see [`Instrumentation`]).
    pub(super) fn instrumentation(
        self: &Arc<Self>,
        scope: InstrumentationScope,
    ) -> Instrumentation {
        let runtime: Weak<dyn Any + Send + Sync> = Arc::downgrade(self) as Weak<_>;
        Instrumentation::with_runtime(scope, self.resource.clone(), self.limits, Some(runtime))
    }

    /// `on_start` of a sampled span when [`batch_only`](Self::batch_only):
    /// the count, which needs no context, so the caller can make the span's
    /// context after this call.
    #[inline(always)]
    pub(super) fn count_started(&self) {
        for p in &self.processors {
            if let Processor::Batch(b) = p {
                b.count_started();
            }
        }
    }

    /// Tells the processors that a recorded span started (the batch
    /// processor only counts it).
    #[inline(always)]
    pub(super) fn on_start(&self, span: &SpanContext, parent: Option<&SpanContext>) {
        for p in &self.processors {
            p.on_start(span, parent);
        }
    }

    /// The trace id (the parent's, or a new one) and a new span id.
    #[inline(always)]
    pub(super) fn ids(&self, parent: Option<&SpanContext>) -> (TraceId, SpanId) {
        match (&self.id_generator, parent) {
            (None, parent) => builtin_ids(parent),
            (Some(g), None) => (g.new_trace_id(), g.new_span_id()),
            (Some(g), Some(p)) => (p.trace_id(), g.new_span_id()),
        }
    }
}

/// The trace id (the parent's, or a new one) and a new span id, from the
/// built-in generator.
#[inline(always)]
pub(super) fn builtin_ids(parent: Option<&SpanContext>) -> (TraceId, SpanId) {
    match parent {
        None => id::random_trace_and_span_id(),
        Some(p) => (p.trace_id(), id::random_span_id()),
    }
}

/// Creates tracers and owns the span pipeline. Clones share it; dropping the last
/// clone shuts it down (waiting at most 5 s).
///
/// ```
/// use runtrace::{InMemoryExporter, TracerProvider};
/// let exporter = InMemoryExporter::default();
/// let provider = TracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let tracer = provider.tracer("my-service");
/// tracer.in_span("parent", |_| {
///     tracer.span("child").start();
/// });
/// let spans = exporter.finished_spans();
/// assert_eq!(spans[0].name, "child");
/// assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
/// ```
#[derive(Clone)]
pub struct TracerProvider {
    handle: Arc<ProviderHandle>,
}

struct ProviderHandle {
    pipeline: Option<Arc<Pipeline>>,
}

impl Drop for ProviderHandle {
    fn drop(&mut self) {
        if let Some(p) = &self.pipeline {
            if !p.is_shutdown.load(Ordering::Acquire) {
                let _ = shutdown_pipeline(p, clock::deadline_after(DEFAULT_DROP_SHUTDOWN_TIMEOUT));
            }
        }
    }
}

impl fmt::Debug for TracerProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.handle.pipeline {
            Some(p) => f.debug_tuple("TracerProvider").field(p).finish(),
            None => f.write_str("TracerProvider(noop)"),
        }
    }
}

fn shutdown_pipeline(p: &Pipeline, deadline: Instant) -> Result<(), FlushError> {
    if p.is_shutdown.swap(true, Ordering::AcqRel) {
        return Err(FlushError::AlreadyShutdown);
    }
    let mut result = Ok(());
    for proc in p.processors.iter().map(Processor::get) {
        if let Err(e) = proc.shutdown(deadline) {
            result = Err(e);
        }
    }
    result
}

impl TracerProvider {
    /// A builder with the defaults: `ParentBased(AlwaysOn)`, random ids, spec
    /// limits, the default resource, no processors.
    pub fn builder() -> TracerProviderBuilder {
        TracerProviderBuilder::default()
    }

    /// A builder (not a provider: add exporters, then `build()`) configured
    /// from the environment: `OTEL_SDK_DISABLED` /
    /// `ENABLE_TRACING`, the sampler variables (`OTEL_TRACES_SAMPLER`,
    /// `OTEL_TRACES_SAMPLER_ARG`, `OTEL_SAMPLE_RATE`), `OTEL_SERVICE_NAME`,
    /// `OTEL_RESOURCE_ATTRIBUTES`, the `OTEL_*_LIMIT` variables and the
    /// `OTEL_BSP_*` variables (for [`TracerProviderBuilder::with_batch_exporter`]).
    /// Bad values are reported through diagnostics and replaced by defaults.
    ///
    /// ```
    /// use runtrace::{InMemoryExporter, TracerProvider};
    /// let provider = TracerProvider::from_env()
    ///     .with_batch_exporter(InMemoryExporter::default())
    ///     .build();
    /// let _tracer = provider.tracer("my-service");
    /// ```
    pub fn from_env() -> TracerProviderBuilder {
        TracerProviderBuilder::from_config(EnvConfig::from_env())
    }

    /// A provider that records nothing and starts no thread: spans are
    /// non-recording, and a valid parent's context still propagates.
    pub fn noop() -> Self {
        TracerProvider {
            handle: Arc::new(ProviderHandle { pipeline: None }),
        }
    }

    /// `false` for a no-op provider.
    pub fn is_enabled(&self) -> bool {
        self.handle.pipeline.is_some()
    }

    /// A tracer for the instrumentation scope `name`.
    pub fn tracer(&self, name: impl Into<Str>) -> Tracer {
        self.tracer_with_scope(InstrumentationScope::new(name))
    }

    /// A tracer for a named and versioned instrumentation scope.
    pub fn versioned_tracer(&self, name: impl Into<Str>, version: impl Into<Str>) -> Tracer {
        self.tracer_with_scope(InstrumentationScope {
            name: name.into(),
            version: Some(version.into()),
            ..Default::default()
        })
    }

    /// A tracer for a full instrumentation scope. After shutdown, tracers are no-ops.
    pub fn tracer_with_scope(&self, scope: InstrumentationScope) -> Tracer {
        let pipeline = self
            .handle
            .pipeline
            .as_ref()
            .filter(|p| !p.is_shutdown.load(Ordering::Acquire));
        match pipeline {
            Some(p) => Tracer::new(scope, p.clone()),
            None => Tracer::noop(),
        }
    }

    /// The resource (`None` for a no-op provider).
    pub fn resource(&self) -> Option<&Resource> {
        self.handle.pipeline.as_ref().map(|p| &*p.resource)
    }

    /// Flushes every processor under one deadline `timeout` from now.
    pub fn force_flush_with_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        let Some(p) = &self.handle.pipeline else {
            return Ok(());
        };
        let deadline = clock::deadline_after(timeout);
        let mut result = Ok(());
        for proc in p.processors.iter().map(Processor::get) {
            if let Err(e) = proc.force_flush(deadline) {
                result = Err(e);
            }
        }
        result
    }

    /// [`force_flush_with_timeout`](Self::force_flush_with_timeout) with 5 s.
    pub fn force_flush(&self) -> Result<(), FlushError> {
        self.force_flush_with_timeout(DEFAULT_DROP_SHUTDOWN_TIMEOUT)
    }

    /// Flushes and shuts down every processor under one deadline `timeout` from
    /// now. Returns by then even if an exporter hangs. Later calls return
    /// [`FlushError::AlreadyShutdown`].
    pub fn shutdown_with_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        match &self.handle.pipeline {
            Some(p) => shutdown_pipeline(p, clock::deadline_after(timeout)),
            None => Ok(()),
        }
    }

    /// [`shutdown_with_timeout`](Self::shutdown_with_timeout) with 5 s.
    pub fn shutdown(&self) -> Result<(), FlushError> {
        self.shutdown_with_timeout(DEFAULT_DROP_SHUTDOWN_TIMEOUT)
    }

    /// Counters summed over the processors that keep them.
    pub fn stats(&self) -> ProcessorStats {
        let mut total = ProcessorStats::default();
        if let Some(p) = &self.handle.pipeline {
            for s in p.processors.iter().filter_map(|p| p.get().stats()) {
                total.add(&s);
            }
        }
        total
    }
}

/// Configures a [`TracerProvider`].
///
/// The setters can come in any order: nothing is started before
/// [`build`](Self::build), which makes the batch processors with the final
/// [`BatchConfig`] and returns a no-op provider (no thread, no queue) when the
/// builder is disabled, whichever call disabled it.
///
/// ```
/// use runtrace::{BatchConfig, InMemoryExporter, TracerProvider};
/// let provider = TracerProvider::builder()
///     .with_batch_exporter(InMemoryExporter::default())
///     .with_batch_config(BatchConfig::builder().with_max_queue_size(8192).build())
///     .build();
/// assert!(provider.is_enabled());
/// ```
pub struct TracerProviderBuilder {
    disabled: bool,
    batch_config: BatchConfig,
    sampler: Box<dyn Sampler>,
    id_generator: Option<Box<dyn IdGenerator>>,
    limits: SpanLimits,
    resource: Resource,
    stages: Vec<Stage>,
}

/// A processor as the builder holds it, in the order it was added.
#[derive(Debug)]
enum Stage {
    /// A processor the user made (already running, if it runs a thread).
    Made(Processor),
    /// An exporter for a batch processor that `build` makes.
    Batch(Box<dyn SpanExporter>),
}

impl fmt::Debug for TracerProviderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracerProviderBuilder")
            .field("disabled", &self.disabled)
            .field("batch_config", &self.batch_config)
            .field("sampler", &self.sampler.description())
            .field("limits", &self.limits)
            .field("resource", &self.resource)
            .field("processors", &self.stages)
            .finish()
    }
}

impl Default for TracerProviderBuilder {
    fn default() -> Self {
        TracerProviderBuilder {
            disabled: false,
            batch_config: BatchConfig::default(),
            sampler: Box::new(ParentBased::new(AlwaysOn)),
            id_generator: None,
            limits: SpanLimits::default(),
            resource: Resource::default(),
            stages: Vec::new(),
        }
    }
}

impl TracerProviderBuilder {
    /// A builder configured from an [`EnvConfig`] (see [`TracerProvider::from_env`]).
    pub fn from_config(cfg: EnvConfig) -> Self {
        let mut resource = Resource::default().merge(&Resource::new(cfg.resource_attributes));
        if let Some(name) = cfg.service_name {
            resource = resource.merge(&Resource::new([KeyValue::new("service.name", name)]));
        }
        TracerProviderBuilder {
            disabled: cfg.disabled,
            batch_config: cfg.batch,
            sampler: cfg.sampler.build(),
            limits: cfg.limits,
            resource,
            ..Default::default()
        }
    }

    /// Sets the sampler.
    pub fn with_sampler(mut self, sampler: impl Sampler + 'static) -> Self {
        self.sampler = Box::new(sampler);
        self
    }
    /// Sets the id generator (the default is [`crate::RandomIdGenerator`]).
    pub fn with_id_generator(mut self, g: impl IdGenerator + 'static) -> Self {
        self.id_generator = Some(Box::new(g));
        self
    }
    /// Sets the span limits.
    pub fn with_span_limits(mut self, limits: SpanLimits) -> Self {
        self.limits = limits;
        self
    }
    /// Merges `resource` over the default one (its attributes win).
    pub fn with_resource(mut self, resource: Resource) -> Self {
        self.resource = self.resource.merge(&resource);
        self
    }
    /// Adds a span processor (they run in the order added).
    ///
    /// A processor made by the caller is already running; if the builder ends
    /// up disabled, `build` drops it without calling `shutdown` (a
    /// [`BatchSpanProcessor`] stops its thread when dropped).
    pub fn with_span_processor(mut self, p: impl SpanProcessor + 'static) -> Self {
        self.stages.push(Stage::Made(Processor::new(p)));
        self
    }
    /// Sets the batch settings of every batch processor that
    /// [`with_batch_exporter`](Self::with_batch_exporter) adds, before or after
    /// this call (from the environment: the `OTEL_BSP_*` variables).
    pub fn with_batch_config(mut self, config: BatchConfig) -> Self {
        self.batch_config = config;
        self
    }
    /// Adds a [`BatchSpanProcessor`] around `exporter` (the production set-up).
    /// The processor and its thread are made by [`build`](Self::build), with
    /// the builder's final [`BatchConfig`]; a disabled builder drops the
    /// exporter and starts no thread.
    pub fn with_batch_exporter(mut self, exporter: impl SpanExporter + 'static) -> Self {
        self.stages.push(Stage::Batch(Box::new(exporter)));
        self
    }
    /// With `true`, [`build`](Self::build) returns a no-op provider (no thread,
    /// no queue), whatever else was set; `false` undoes an earlier `true`
    /// (including one read from the environment).
    pub fn with_disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }
    /// Adds a [`SimpleSpanProcessor`] around `exporter`.
    pub fn with_simple_exporter(self, exporter: impl SpanExporter + 'static) -> Self {
        self.with_span_processor(SimpleSpanProcessor::new(exporter))
    }
    /// Builds the provider, starting the batch processors' threads (a no-op
    /// provider when disabled).
    pub fn build(self) -> TracerProvider {
        if self.disabled {
            return TracerProvider::noop();
        }
        clock::init();
        let batch_config = self.batch_config;
        let processors: Vec<Processor> = self
            .stages
            .into_iter()
            .map(|stage| match stage {
                Stage::Made(p) => p,
                Stage::Batch(e) => Processor::Batch(BatchSpanProcessor::new(e, batch_config)),
            })
            .collect();
        let batch_only = processors.iter().all(|p| matches!(p, Processor::Batch(_)));
        let ids_random = self
            .id_generator
            .as_ref()
            .is_none_or(|g| g.trace_ids_are_random());
        TracerProvider {
            handle: Arc::new(ProviderHandle {
                pipeline: Some(Arc::new(Pipeline {
                    fixed_decisions: self.sampler.fixed_decisions(),
                    sampler: self.sampler,
                    id_generator: self.id_generator,
                    ids_random,
                    limits: self.limits,
                    resource: Arc::new(self.resource),
                    processors,
                    batch_only,
                    is_shutdown: AtomicBool::new(false),
                })),
            }),
        }
    }
}
