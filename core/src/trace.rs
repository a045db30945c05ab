//! The tracer provider, tracers and span limits.
//!
//! A [`TracerProvider`] owns the pipeline: sampler, id generator, limits, resource
//! and span processors. Tracers are cheap handles to it, one per instrumentation
//! scope. A provider built with [`TracerProvider::noop`] (or from the environment
//! with `ENABLE_TRACING=false` / `OTEL_SDK_DISABLED=true`) has no pipeline at all:
//! its spans are non-recording and cost no allocation, clock read or thread.

use crate::attribute::{list_pool, KeyValue, Str};
use crate::batch::{BatchConfig, BatchSpanProcessor};
use crate::context::{SpanContext, TraceFlags};
use crate::export::{Instrumentation, InstrumentationInner, InstrumentationScope, Link, SpanData};
use crate::id::{self, IdGenerator, SpanId, TraceId};
use crate::processor::{FlushError, ProcessorStats, SimpleSpanProcessor, SpanProcessor};
use crate::resource::Resource;
use crate::sampling::{AlwaysOn, ParentBased, Sampler, SamplingDecision, SamplingParameters};
use crate::span::{SpanBuilder, SpanKind, Status};
use crate::{clock, Span};
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long dropping the last provider handle may spend shutting down.
pub const DEFAULT_DROP_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Per-span limits (spec defaults: 128 of each, no value length limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanLimits {
    /// Attributes per span.
    pub max_attributes_per_span: usize,
    /// Events per span.
    pub max_events_per_span: usize,
    /// Links per span.
    pub max_links_per_span: usize,
    /// Attributes per event.
    pub max_attributes_per_event: usize,
    /// Attributes per link.
    pub max_attributes_per_link: usize,
    /// Maximum characters of a string value (`None` = no limit).
    pub max_attribute_value_length: Option<usize>,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits {
            max_attributes_per_span: 128,
            max_events_per_span: 128,
            max_links_per_span: 128,
            max_attributes_per_event: 128,
            max_attributes_per_link: 128,
            max_attribute_value_length: None,
        }
    }
}

/// Everything a span needs from its provider.
pub(crate) struct Pipeline {
    sampler: Box<dyn Sampler>,
    /// `None`: the built-in random generator, called without dynamic dispatch.
    id_generator: Option<Box<dyn IdGenerator>>,
    ids_random: bool,
    pub(crate) limits: SpanLimits,
    resource: Arc<Resource>,
    processors: Vec<Processor>,
    is_shutdown: AtomicBool,
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

impl Instrumentation {
    pub(crate) fn limits(&self) -> SpanLimits {
        self.0
            .pipeline
            .as_ref()
            .map(|p| p.limits)
            .unwrap_or_default()
    }
}

impl Pipeline {
    /// The trace id (the parent's, or a new one) and a new span id.
    #[inline]
    fn ids(&self, parent: Option<&SpanContext>) -> (TraceId, SpanId) {
        match (&self.id_generator, parent) {
            (None, None) => id::random_trace_and_span_id(),
            (None, Some(p)) => (p.trace_id(), id::random_span_id()),
            (Some(g), None) => (g.new_trace_id(), g.new_span_id()),
            (Some(g), Some(p)) => (p.trace_id(), g.new_span_id()),
        }
    }
}

thread_local! {
    /// The pipeline this thread last ended a span into. Holding it here lets
    /// `on_end` reach the processors without touching the shared reference count
    /// (a contended cache line when several threads end spans); it keeps that
    /// pipeline's memory alive until the thread exits or uses another provider.
    static LAST_PIPELINE: Cell<Option<Arc<Pipeline>>> = const { Cell::new(None) };
}

/// A span processor; the batch processor, the usual one, is called without
/// dynamic dispatch so that an ended span can be written straight into its queue.
enum Processor {
    Batch(BatchSpanProcessor),
    Dyn(Box<dyn SpanProcessor>),
}

impl Processor {
    fn new<P: SpanProcessor + 'static>(p: P) -> Self {
        let mut slot = Some(p);
        let any = &mut slot as &mut dyn std::any::Any;
        if let Some(batch) = any
            .downcast_mut::<Option<BatchSpanProcessor>>()
            .and_then(Option::take)
        {
            return Processor::Batch(batch);
        }
        Processor::Dyn(Box::new(
            slot.expect("the slot is emptied only for a batch processor"),
        ))
    }

    fn get(&self) -> &dyn SpanProcessor {
        match self {
            Processor::Batch(b) => b,
            Processor::Dyn(d) => d.as_ref(),
        }
    }

    #[inline]
    fn on_end(&self, span: SpanData) {
        match self {
            Processor::Batch(b) => b.on_end(span),
            Processor::Dyn(d) => d.on_end(span),
        }
    }
}

impl fmt::Debug for Processor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// Delivers an ended span to its provider's processors.
#[inline]
pub(crate) fn on_end(data: SpanData) {
    let Some(own) = data.instrumentation.0.pipeline.as_ref() else {
        return;
    };
    let cached = LAST_PIPELINE.try_with(Cell::take).ok().flatten();
    let pipeline = match cached {
        Some(p) if Arc::ptr_eq(&p, own) => p,
        _ => own.clone(),
    };
    dispatch(&pipeline, data);
    // A nested span ended by a processor may have cached something meanwhile;
    // `replace` drops it.
    let _ = LAST_PIPELINE.try_with(|c| c.replace(Some(pipeline)));
}

fn dispatch(pipeline: &Pipeline, data: SpanData) {
    match pipeline.processors.as_slice() {
        [] => {}
        [only] => only.on_end(data),
        [rest @ .., last] => {
            for p in rest {
                p.on_end(data.clone());
            }
            last.on_end(data);
        }
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
                let _ = shutdown_pipeline(
                    p,
                    crate::clock::deadline_after(DEFAULT_DROP_SHUTDOWN_TIMEOUT),
                );
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

    /// A builder configured from the environment: `OTEL_SDK_DISABLED` /
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
        TracerProviderBuilder::from_config(crate::env::EnvConfig::from_env())
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
        let inst = self
            .handle
            .pipeline
            .as_ref()
            .filter(|p| !p.is_shutdown.load(Ordering::Acquire))
            .map(|p| {
                Instrumentation(Arc::new(InstrumentationInner {
                    scope,
                    resource: p.resource.clone(),
                    pipeline: Some(p.clone()),
                }))
            });
        Tracer { inst }
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
        let deadline = crate::clock::deadline_after(timeout);
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
            Some(p) => shutdown_pipeline(p, crate::clock::deadline_after(timeout)),
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
pub struct TracerProviderBuilder {
    disabled: bool,
    batch_config: BatchConfig,
    sampler: Box<dyn Sampler>,
    id_generator: Option<Box<dyn IdGenerator>>,
    limits: SpanLimits,
    resource: Resource,
    processors: Vec<Processor>,
}

impl fmt::Debug for TracerProviderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracerProviderBuilder")
            .field("disabled", &self.disabled)
            .field("batch_config", &self.batch_config)
            .field("sampler", &self.sampler.description())
            .field("limits", &self.limits)
            .field("resource", &self.resource)
            .field("processors", &self.processors)
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
            processors: Vec::new(),
        }
    }
}

impl TracerProviderBuilder {
    /// A builder configured from an [`EnvConfig`](crate::env::EnvConfig).
    pub fn from_config(cfg: crate::env::EnvConfig) -> Self {
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
    pub fn with_span_processor(mut self, p: impl SpanProcessor + 'static) -> Self {
        self.processors.push(Processor::new(p));
        self
    }
    /// Sets the batch settings used by [`with_batch_exporter`](Self::with_batch_exporter).
    pub fn with_batch_config(mut self, config: BatchConfig) -> Self {
        self.batch_config = config;
        self
    }
    /// Adds a [`BatchSpanProcessor`] around `exporter` (the production set-up).
    /// On a disabled builder (see [`TracerProvider::from_env`]) the exporter is
    /// dropped and no thread starts.
    pub fn with_batch_exporter(mut self, exporter: impl crate::SpanExporter + 'static) -> Self {
        if !self.disabled {
            let bsp = BatchSpanProcessor::new(exporter, self.batch_config);
            self.processors.push(Processor::Batch(bsp));
        }
        self
    }
    /// Makes [`build`](Self::build) return a no-op provider (no thread, no queue).
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }
    /// Adds a [`SimpleSpanProcessor`] around `exporter`.
    pub fn with_simple_exporter(self, exporter: impl crate::SpanExporter + 'static) -> Self {
        self.with_span_processor(SimpleSpanProcessor::new(exporter))
    }
    /// Builds the provider (a no-op one when disabled).
    pub fn build(self) -> TracerProvider {
        if self.disabled {
            return TracerProvider::noop();
        }
        clock::init();
        let ids_random = self
            .id_generator
            .as_ref()
            .is_none_or(|g| g.trace_ids_are_random());
        TracerProvider {
            handle: Arc::new(ProviderHandle {
                pipeline: Some(Arc::new(Pipeline {
                    sampler: self.sampler,
                    id_generator: self.id_generator,
                    ids_random,
                    limits: self.limits,
                    resource: Arc::new(self.resource),
                    processors: self.processors,
                    is_shutdown: AtomicBool::new(false),
                })),
            }),
        }
    }
}

/// Starts spans for one instrumentation scope. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Tracer {
    /// `None` for a no-op tracer.
    inst: Option<Instrumentation>,
}

impl Tracer {
    /// A tracer that records nothing.
    pub fn noop() -> Self {
        Tracer { inst: None }
    }

    /// `false` for a no-op tracer.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.inst.is_some()
    }

    /// A builder for a span called `name`.
    #[inline]
    pub fn span(&self, name: impl Into<Str>) -> SpanBuilder<'_> {
        SpanBuilder::new(self, name.into())
    }

    /// Runs `f` inside a new span that is the thread's current span meanwhile,
    /// and ends it afterwards.
    ///
    /// ```
    /// let tracer = runtrace::TracerProvider::noop().tracer("t");
    /// let answer = tracer.in_span("compute", |span| {
    ///     span.set_attribute("n", 42);
    ///     42
    /// });
    /// assert_eq!(answer, 42);
    /// ```
    pub fn in_span<R>(&self, name: impl Into<Str>, f: impl FnOnce(&mut Span) -> R) -> R {
        let mut span = self.span(name).start();
        let result = {
            let _guard = span.enter();
            f(&mut span)
        };
        span.end();
        result
    }

    pub(crate) fn start_span(
        &self,
        name: Str,
        kind: SpanKind,
        mut attributes: Vec<KeyValue>,
        mut links: Vec<Link>,
        parent: Option<&SpanContext>,
        start_time: Option<SystemTime>,
    ) -> Span {
        let Some((inst, pipeline)) = self
            .inst
            .as_ref()
            .and_then(|i| Some((i, i.0.pipeline.as_deref()?)))
        else {
            // Disabled: keep the parent's context so the trace still propagates.
            return Span::non_recording(parent.cloned().unwrap_or(SpanContext::INVALID));
        };
        let (trace_id, span_id) = pipeline.ids(parent);
        let result = pipeline.sampler.should_sample(&SamplingParameters {
            parent,
            trace_id,
            name: &name,
            kind,
            attributes: &attributes,
            links: &links,
        });
        let random = match parent {
            Some(p) => p.trace_flags().is_random(),
            None => pipeline.ids_random,
        };
        let flags = TraceFlags::new(if random { 0x02 } else { 0 })
            .with_sampled(result.decision == SamplingDecision::RecordAndSample);
        let span_context = SpanContext::new(trace_id, span_id, flags, false, result.trace_state);
        if result.decision == SamplingDecision::Drop {
            // Builder attributes go back to the pool (an empty list costs nothing).
            list_pool::give(attributes);
            return Span::non_recording(span_context);
        }
        let start_time_unix_nano = match start_time {
            Some(t) => clock::system_time_to_unix_nanos(t),
            None => clock::now_unix_nanos(),
        };
        let limits = pipeline.limits;
        attributes.extend(result.attributes);
        let dropped_attributes_count = apply_limits(&mut attributes, &limits);
        let dropped_links_count = links.len().saturating_sub(limits.max_links_per_span) as u32;
        links.truncate(limits.max_links_per_span);
        for link in &mut links {
            link.dropped_attributes_count +=
                link.attributes
                    .len()
                    .saturating_sub(limits.max_attributes_per_link) as u32;
            link.attributes.truncate(limits.max_attributes_per_link);
        }
        for p in &pipeline.processors {
            p.get().on_start(&span_context, parent);
        }
        Span::recording(SpanData {
            span_context,
            parent_span_id: parent.map_or(SpanId::INVALID, |p| p.span_id()),
            parent_is_remote: parent.is_some_and(|p| p.is_remote()),
            name,
            kind,
            start_time_unix_nano,
            end_time_unix_nano: 0,
            attributes,
            dropped_attributes_count,
            events: Vec::new(),
            dropped_events_count: 0,
            links,
            dropped_links_count,
            status: Status::Unset,
            instrumentation: inst.clone(),
        })
    }
}

/// Removes duplicate keys (the later value wins), enforces the count limit and
/// truncates long strings. Returns how many attributes were dropped.
fn apply_limits(attributes: &mut Vec<KeyValue>, limits: &SpanLimits) -> u32 {
    let mut i = 1;
    while i < attributes.len() {
        if let Some(j) = attributes[..i]
            .iter()
            .position(|e| e.key == attributes[i].key)
        {
            let kv = attributes.remove(i);
            attributes[j].value = kv.value;
        } else {
            i += 1;
        }
    }
    let dropped = attributes
        .len()
        .saturating_sub(limits.max_attributes_per_span);
    attributes.truncate(limits.max_attributes_per_span);
    if let Some(n) = limits.max_attribute_value_length {
        attributes.iter_mut().for_each(|kv| kv.value.truncate(n));
    }
    dropped as u32
}
