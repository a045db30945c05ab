//! [`Tracer`]: starts spans for one instrumentation scope, sampling them and
//! building their data.

use super::future::{FutureExt, InSpan};
use super::provider::{builtin_ids, Pipeline};
use super::span::{Span, SpanBuilder};
use crate::clock;
use crate::config::SpanLimits;
use crate::context::Context;
use crate::data::attribute::dedup_keys;
use crate::data::{
    Instrumentation, InstrumentationScope, KeyValue, Link, SpanContext, SpanData, SpanId, SpanKind,
    Str, TraceFlags, TraceId, TraceState,
};
use crate::processor::recycle;
use crate::sampling::{FixedDecisions, SamplingDecision, SamplingParameters};
use crate::sync::counted::TRACERS;
use crate::sync::CountedRef;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

/// Starts spans for one instrumentation scope. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Tracer {
    /// The scope its spans share and the pipeline they go to; `None` for a
    /// no-op tracer. One counted reference: a clone and a drop cost one
    /// count each, and none in `global::tracer`'s per-thread cache (see
    /// [`Tracer::clone_biased`]).
    shared: Option<CountedRef<TracerShared>>,
    /// The sampler's fixed decisions if ids are built in (see
    /// [`Tracer::plain_decisions`]), kept here so that a plain span finds its
    /// path with one load from the tracer.
    plain_decisions: Option<FixedDecisions>,
}

/// What the clones of one tracer share.
#[derive(Debug)]
struct TracerShared {
    instrumentation: Instrumentation,
    pipeline: Arc<Pipeline>,
}

impl Drop for Tracer {
    /// Gives the count back to this thread's credits when it holds some on
    /// this tracer (after a `clone_biased`), else to the shared count.
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.drop_biased_in::<TRACERS>();
        }
    }
}

impl Tracer {
    /// A tracer for `scope` whose spans go to `pipeline`.
    pub(super) fn new(scope: InstrumentationScope, pipeline: Arc<Pipeline>) -> Self {
        Tracer {
            // With built-in ids, a plain span (no explicit parent, builder
            // attributes, links or start time) takes a short path, unless the
            // sampler may record without sampling (only the general path builds
            // such spans).
            plain_decisions: pipeline
                .fixed_decisions
                .filter(|_| pipeline.id_generator.is_none())
                .filter(|f| !f.any_record_only()),
            shared: Some(CountedRef::new(TracerShared {
                instrumentation: pipeline.instrumentation(scope),
                pipeline,
            })),
        }
    }

    /// A tracer that records nothing.
    pub fn noop() -> Self {
        Tracer {
            shared: None,
            plain_decisions: None,
        }
    }

    /// A clone whose count comes from this thread's credits, for a tracer
    /// handed out per call on one thread (`global::tracer`): with its drop,
    /// which gives the count back to the credits, no atomic operation.
    #[inline]
    pub(crate) fn clone_biased(&self) -> Self {
        Tracer {
            shared: self
                .shared
                .as_ref()
                .map(CountedRef::clone_biased_in::<TRACERS>),
            plain_decisions: self.plain_decisions,
        }
    }

    /// Gives back the counts that this thread's stock holds on this tracer,
    /// so that dropping its last handle frees it at once.
    pub(crate) fn release_thread_credits(&self) {
        if let Some(shared) = &self.shared {
            shared.release_thread_credits();
        }
    }

    /// The scope and pipeline; `None` for a no-op tracer.
    #[inline(always)]
    fn parts(&self) -> Option<(&Instrumentation, &Arc<Pipeline>)> {
        self.shared
            .as_deref()
            .map(|s| (&s.instrumentation, &s.pipeline))
    }

    /// `false` for a no-op tracer.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// A builder for a span called `name`.
    #[inline]
    pub fn span(&self, name: impl Into<Str>) -> SpanBuilder<'_> {
        SpanBuilder::new(self, name.into())
    }

    /// An empty attribute list to fill and hand to
    /// [`SpanBuilder::attributes`], [`Span::add_event`] or a link: one
    /// recycled from exported spans when one is ready (in steady state no
    /// allocation, and none for the batch thread to free), else a new one. A
    /// no-op tracer's is a plain empty `Vec`, which allocates nothing either.
    ///
    /// ```
    /// use runtrace::{KeyValue, TracerProvider};
    /// let tracer = TracerProvider::noop().tracer("t");
    /// let mut fields = tracer.attribute_list();
    /// fields.push(KeyValue::new("http.route", "/items"));
    /// tracer.span("GET /items").attributes(fields).start().end();
    /// ```
    #[inline]
    pub fn attribute_list(&self) -> Vec<KeyValue> {
        if self.is_enabled() {
            recycle::take_list()
        } else {
            Vec::new()
        }
    }

    /// Runs `f` inside a new span that is the thread's current span meanwhile,
    /// and ends it afterwards. Code that `f` calls can record on the span with
    /// [`with_current_span`](crate::with_current_span).
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
        let result = span.handed_over_while(f);
        span.end();
        result
    }

    /// The async form of [`in_span`](Self::in_span): starts a span, builds the
    /// future with `f` (the span is current meanwhile), and returns it running
    /// in the span, which is current while it is polled and ends when it
    /// completes or is dropped. `tracer.in_span("x", |_| async { .. })` would
    /// instead end the span before the future first runs.
    ///
    /// ```
    /// # use runtrace::{FutureExt, TracerProvider};
    /// let tracer = TracerProvider::noop().tracer("t");
    /// let fut = tracer.in_span_async("fetch", |span| {
    ///     span.set_attribute("url", "/v1/models");
    ///     async { 200 }
    /// });
    /// # let _ = fut;
    /// ```
    pub fn in_span_async<F: Future>(
        &self,
        name: impl Into<Str>,
        f: impl FnOnce(&mut Span) -> F,
    ) -> InSpan<F> {
        let mut span = self.span(name).start();
        let future = span.handed_over_while(f);
        future.in_span(span)
    }

    /// The sampler's decisions by kind of parent, if it decides without being
    /// asked, never records without sampling, and ids are built in. Then a
    /// plain span (no explicit parent, builder attributes, links or start time)
    /// needs [`Tracer::start_plain`].
    #[inline(always)]
    pub(crate) fn plain_decisions(&self) -> Option<FixedDecisions> {
        self.plain_decisions
    }

    /// The context of a new span under `parent` with built-in ids.
    #[inline(always)]
    pub(crate) fn plain_context(
        parent: Option<&SpanContext>,
        decision: SamplingDecision,
    ) -> SpanContext {
        let (trace_id, span_id) = builtin_ids(parent);
        let trace_state = parent.map(|p| p.trace_state().clone()).unwrap_or_default();
        // The built-in generator's trace ids are random.
        new_context(trace_id, span_id, parent, true, decision, trace_state)
    }

    /// A plain span, decided by `fixed` (from [`Tracer::plain_decisions`], so
    /// never `RecordOnly`) for the kind of parent it has: none, or the current
    /// context's span. A dropped one is only its ids.
    #[inline(never)]
    pub(crate) fn start_plain(&self, name: Str, kind: SpanKind, fixed: FixedDecisions) -> Span {
        if !Context::any_attached() {
            return match fixed.root {
                SamplingDecision::RecordAndSample => {
                    self.start_sampled_plain(name, kind, Vec::new(), None, None)
                }
                _ => Span::non_recording(Self::plain_context(None, SamplingDecision::Drop)),
            };
        }
        // Copied out, so that a processor may attach contexts.
        let parent = Context::with_current(|cx| cx.span_context().cloned());
        match fixed.for_parent(parent.as_ref()) {
            SamplingDecision::RecordAndSample => {
                self.start_sampled_plain(name, kind, Vec::new(), parent.as_ref(), None)
            }
            _ => Span::non_recording(Self::plain_context(parent.as_ref(), SamplingDecision::Drop)),
        }
    }

    /// A span with builder attributes or an explicit parent (or both), decided
    /// by `fixed` as [`start_plain`](Self::start_plain) does: the sampler need
    /// not see the attributes, so they only ride along.
    #[inline(never)]
    pub(crate) fn start_fixed(
        &self,
        name: Str,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
        parent: Option<&Context>,
        start_time: Option<SystemTime>,
        fixed: FixedDecisions,
    ) -> Span {
        let current;
        let parent = match parent {
            Some(cx) => cx.span_context(),
            None if !Context::any_attached() => None,
            None => {
                // Copied out, so that a processor may attach contexts.
                current = Context::with_current(|cx| cx.span_context().cloned());
                current.as_ref()
            }
        };
        match fixed.for_parent(parent) {
            SamplingDecision::RecordAndSample => {
                self.start_sampled_plain(name, kind, attributes, parent, start_time)
            }
            _ => {
                recycle::give_list(attributes);
                Span::non_recording(Self::plain_context(parent, SamplingDecision::Drop))
            }
        }
    }

    /// Starts a span with built-in ids that the sampler keeps (see
    /// [`Tracer::plain_decisions`]): the start time, the context and the data,
    /// built in place (going through `build_recorded` costs copies of the data
    /// on the stack).
    #[inline(always)]
    fn start_sampled_plain(
        &self,
        name: Str,
        kind: SpanKind,
        mut attributes: Vec<KeyValue>,
        parent: Option<&SpanContext>,
        start_time: Option<SystemTime>,
    ) -> Span {
        let Some((inst, pipeline)) = self.parts() else {
            return Span::non_recording(SpanContext::INVALID);
        };
        // The clock first: its latency overlaps with making the ids.
        let start_time_unix_nano = match start_time {
            Some(t) => clock::system_time_to_unix_nanos(t),
            None => clock::now_unix_nanos(),
        };
        if attributes.capacity() == 0 {
            // A plain span (known at compile time in `start_plain`).
            let instrumentation = inst.clone_for_span();
            let span_context = Self::sampled_context_on_start(pipeline, parent);
            return Span::recording(SpanData::started(
                span_context,
                parent,
                name,
                kind,
                start_time_unix_nano,
                instrumentation,
            ));
        }
        // With attributes, the context is made first: measured, making it
        // after the calls (as a plain span does) made this shape slower.
        let span_context = Self::plain_context(parent, SamplingDecision::RecordAndSample);
        let dropped_attributes_count = apply_limits(&mut attributes, &pipeline.limits);
        pipeline.on_start(&span_context, parent);
        // Before the data: a call (the credits' slow path) in the middle of
        // the literal makes the compiler build it on the stack and copy it.
        let instrumentation = inst.clone_for_span();
        Span::recording(SpanData {
            attributes,
            dropped_attributes_count,
            ..SpanData::started(
                span_context,
                parent,
                name,
                kind,
                start_time_unix_nano,
                instrumentation,
            )
        })
    }

    /// The context of a new sampled span under `parent` (built-in ids), made
    /// after telling the processors that it starts when they need no context
    /// for that (batch processors only count it). A context made before a call
    /// that may unwind lives in memory (to be dropped on unwind), and copying
    /// it into the span then stalls on wide loads of narrow stores (about
    /// 1 ns of a sampled root's 43 ns, paired runs of `profile_span`). Called
    /// after every other call of the span's start, for the same reason.
    #[inline(always)]
    fn sampled_context_on_start(pipeline: &Pipeline, parent: Option<&SpanContext>) -> SpanContext {
        if pipeline.batch_only {
            pipeline.count_started();
            return Self::plain_context(parent, SamplingDecision::RecordAndSample);
        }
        let span_context = Self::plain_context(parent, SamplingDecision::RecordAndSample);
        pipeline.on_start(&span_context, parent);
        span_context
    }

    /// Samples a new span and starts it. Inlined into the caller, so that a
    /// dropped span (and a builder without attributes or links) costs only its
    /// ids and the decision; a recorded span is built out of line.
    #[inline(always)]
    pub(crate) fn start_span(&self, b: &mut SpanBuilder<'_>, parent: Option<&SpanContext>) -> Span {
        let Some((inst, pipeline)) = self.parts() else {
            // Disabled: keep the parent's context so the trace still propagates.
            return Span::non_recording(parent.cloned().unwrap_or(SpanContext::INVALID));
        };
        let (trace_id, span_id) = pipeline.ids(parent);
        let (decision, trace_state, sampler_attributes) = match &pipeline.fixed_decisions {
            Some(fixed) => (
                fixed.for_parent(parent),
                parent.map(|p| p.trace_state().clone()).unwrap_or_default(),
                Vec::new(),
            ),
            None => ask_sampler(pipeline, parent, trace_id, b),
        };
        let span_context = new_context(
            trace_id,
            span_id,
            parent,
            pipeline.ids_random,
            decision,
            trace_state,
        );
        if decision == SamplingDecision::Drop {
            // Builder attributes go back to the pool. Checked before the move, a
            // plain load of what the caller just stored.
            if b.attributes.capacity() != 0 {
                recycle::give_list(std::mem::take(&mut b.attributes));
            }
            return Span::non_recording(span_context);
        }
        record(
            inst,
            pipeline,
            span_context,
            sampler_attributes,
            SpanStart {
                name: std::mem::take(&mut b.name),
                kind: b.kind,
                attributes: std::mem::take(&mut b.attributes),
                links: std::mem::take(&mut b.links),
                parent,
                start_time: b.start_time.map(clock::system_time_to_unix_nanos),
            },
        )
    }
}

/// A new span's context: the random flag follows the parent (or the id
/// generator for a root), the sampled flag the decision.
#[inline(always)]
fn new_context(
    trace_id: TraceId,
    span_id: SpanId,
    parent: Option<&SpanContext>,
    ids_random: bool,
    decision: SamplingDecision,
    trace_state: TraceState,
) -> SpanContext {
    let random = parent.map_or(ids_random, |p| p.trace_flags().is_random());
    let flags = TraceFlags::new(if random { 0x02 } else { 0 })
        .with_sampled(decision == SamplingDecision::RecordAndSample);
    SpanContext::new(trace_id, span_id, flags, false, trace_state)
}

/// What the builder gave for a span that is recorded.
struct SpanStart<'a> {
    name: Str,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    links: Vec<Link>,
    parent: Option<&'a SpanContext>,
    /// Nanoseconds since the Unix epoch; `None` for now.
    start_time: Option<u64>,
}

/// Calls a sampler whose decision depends on more than the parent.
#[inline(never)]
fn ask_sampler(
    pipeline: &Pipeline,
    parent: Option<&SpanContext>,
    trace_id: TraceId,
    b: &SpanBuilder<'_>,
) -> (SamplingDecision, TraceState, Vec<KeyValue>) {
    let result = pipeline.sampler.should_sample(&SamplingParameters {
        parent,
        trace_id,
        name: &b.name,
        kind: b.kind,
        attributes: &b.attributes,
        links: &b.links,
    });
    (result.decision, result.trace_state, result.attributes)
}

/// Starts a recorded span: start time, limits, `on_start`. The data is built
/// in place in the returned span.
#[inline(never)]
fn record(
    inst: &Instrumentation,
    pipeline: &Pipeline,
    span_context: SpanContext,
    sampler_attributes: Vec<KeyValue>,
    start: SpanStart<'_>,
) -> Span {
    build_recorded(inst, pipeline, span_context, sampler_attributes, start)
}

/// [`record`], inlined where the caller knows more (empty lists, no parent).
#[inline(always)]
fn build_recorded(
    inst: &Instrumentation,
    pipeline: &Pipeline,
    span_context: SpanContext,
    sampler_attributes: Vec<KeyValue>,
    start: SpanStart<'_>,
) -> Span {
    let SpanStart {
        name,
        kind,
        mut attributes,
        mut links,
        parent,
        start_time,
    } = start;
    let start_time_unix_nano = start_time.unwrap_or_else(clock::now_unix_nanos);
    // Each step is skipped when there is nothing to do, the usual case: most
    // spans start with no attributes, no links and only the batch processor.
    if !sampler_attributes.is_empty() {
        attributes.extend(sampler_attributes);
    }
    let dropped_attributes_count = if attributes.is_empty() {
        0
    } else {
        apply_limits(&mut attributes, &pipeline.limits)
    };
    let dropped_links_count = if links.is_empty() {
        0
    } else {
        limit_links(&mut links, &pipeline.limits)
    };
    pipeline.on_start(&span_context, parent);
    // Before the data, as in `start_sampled_plain`.
    let instrumentation = inst.clone_for_span();
    Span::recording(SpanData {
        attributes,
        dropped_attributes_count,
        details: (!links.is_empty() || dropped_links_count > 0).then(|| {
            let mut details = recycle::take_details();
            details.links = links;
            details.dropped_links_count = dropped_links_count;
            details
        }),
        ..SpanData::started(
            span_context,
            parent,
            name,
            kind,
            start_time_unix_nano,
            instrumentation,
        )
    })
}

/// Enforces the link count limit and each link's attribute limit. Returns how
/// many links were dropped.
fn limit_links(links: &mut Vec<Link>, limits: &SpanLimits) -> u32 {
    let dropped = links.len().saturating_sub(limits.max_links_per_span) as u32;
    links.truncate(limits.max_links_per_span);
    for link in links {
        link.dropped_attributes_count +=
            link.attributes
                .len()
                .saturating_sub(limits.max_attributes_per_link) as u32;
        link.attributes.truncate(limits.max_attributes_per_link);
    }
    dropped
}

/// Enforces the count limit and truncates long strings. Returns how many
/// attributes were dropped. Only distinct keys count: a list beyond the limit
/// is de-duplicated first; one within it keeps a repeated key until it is
/// exported (see [`dedup_keys`]).
pub(super) fn apply_limits(attributes: &mut Vec<KeyValue>, limits: &SpanLimits) -> u32 {
    if attributes.len() > limits.max_attributes_per_span {
        dedup_keys(attributes);
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
