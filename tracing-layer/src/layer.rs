//! [`RuntraceLayer`]: the `tracing-subscriber` layer that turns `tracing`
//! spans into runtrace spans.

use crate::current::{self, Lookup};
use crate::fields::{push_attribute, Conventions, EventFields, KindField, SpanFields};
use crate::state::{context_of, starting, Pending, SpanState};
use crate::timings::Timings;
use runtrace::{Context, KeyValue, Span, SpanKind, Status, Str, Tracer};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// A [`Layer`] that exports `tracing` spans through a runtrace [`Tracer`].
///
/// - A `tracing` span becomes a runtrace span. Its parent is its explicit
///   `tracing` parent, else the runtrace context current where it was
///   created: the innermost entered `tracing` span's, or a native span's
///   entered inside it (so `tracing` and native spans nest in each other, and
///   a `tracing` root inside a native span joins its trace). It ends when the
///   `tracing` span closes (its last handle drops), so `.instrument(span)`
///   across `.await`s and into spawned tasks works.
/// - Fields become typed attributes, also when recorded later with
///   `Span::record`, plus `code.namespace`, `code.filepath` and `code.lineno`
///   (and `thread.id`, `thread.name` with [`with_threads`](Self::with_threads)).
///   `otel.name`, `otel.kind`, `otel.status_code` (`ok`/`error`) and
///   `otel.status_message` set the name, kind and status (a kind only at
///   creation); an `error` or `exception` field adds an `exception` event and
///   an error status. `follows_from` adds a link.
/// - Events become span events named by their `message`, with their fields
///   and `level` and `target` as attributes; an `ERROR` event sets an error
///   status, and one with an `error` field is an `exception` event. Events
///   outside any span are ignored.
/// - Entering a `tracing` span makes its context current, so runtrace spans
///   started inside are its children; exits in any order keep the innermost
///   span still entered current.
/// - A span the sampler drops keeps nothing and converts no fields; a local
///   root converts its fields before it starts, because
///   [`set_parent`](crate::TracingSpanExt::set_parent) may still change its
///   sampling; they are its builder attributes, so the sampler sees them with
///   its name, kind, parent and links. A child's sampler sees its name, kind
///   and parent, not its fields.
///
/// Per-layer filters (`layer.with_filter(..)`) apply: a span the filter
/// disables is skipped, and its children attach to the nearest ancestor the
/// filter keeps.
///
/// ```
/// use runtrace::{InMemoryExporter, TracerProvider};
/// use runtrace_tracing::RuntraceLayer;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let exporter = InMemoryExporter::default();
/// let provider = TracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let subscriber =
///     tracing_subscriber::registry().with(RuntraceLayer::new(provider.tracer("app")));
/// tracing::subscriber::with_default(subscriber, || {
///     let request = tracing::info_span!("request", user.id = 7, otel.kind = "server");
///     let _entered = request.enter();
///     tracing::info_span!("db.query").in_scope(|| tracing::info!(rows = 3, "fetched"));
/// });
/// let spans = exporter.finished_spans();
/// assert_eq!(spans[0].name, "db.query");
/// assert_eq!(spans[0].events()[0].name, "fetched");
/// assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
/// assert_eq!(spans[1].kind, runtrace::SpanKind::Server);
/// ```
#[derive(Clone, Debug)]
pub struct RuntraceLayer {
    tracer: Tracer,
    /// Whether spans get `thread.id` and `thread.name`.
    threads: bool,
    /// Whether spans get `busy_ns` and `idle_ns`.
    tracked_inactivity: bool,
}

impl RuntraceLayer {
    /// A layer whose spans `tracer` starts (its scope names the spans'
    /// instrumentation scope). With a no-op tracer the layer keeps nothing.
    pub fn new(tracer: Tracer) -> Self {
        RuntraceLayer {
            tracer,
            threads: false,
            tracked_inactivity: false,
        }
    }

    /// Also records, on each span, the thread that created it: `thread.id`
    /// (the number in `std::thread::ThreadId`'s `Debug` text) and
    /// `thread.name` (if the thread has one), as tracing-opentelemetry does by
    /// default. Off by default: two more attributes per span to build, keep
    /// and export.
    ///
    /// ```
    /// # use runtrace::TracerProvider;
    /// # use runtrace_tracing::RuntraceLayer;
    /// let layer = RuntraceLayer::new(TracerProvider::noop().tracer("app")).with_threads(true);
    /// # let _ = layer;
    /// ```
    pub fn with_threads(mut self, threads: bool) -> Self {
        self.threads = threads;
        self
    }

    /// Also records, on each span, how long it was entered (`busy_ns`) and
    /// how long it waited between its creation or an exit and its next enter
    /// (`idle_ns`), in nanoseconds, as tracing-opentelemetry does by default
    /// (its `with_tracked_inactivity`): for a future, the time it was polled
    /// and the time it waited. Overlapping enters (tasks polling one span at
    /// once) count once; the time from the last exit to the close counts in
    /// neither. Off by default: each enter and exit then reads the clock and
    /// takes the span's lock, and each span keeps one more allocation.
    ///
    /// ```
    /// use runtrace::{InMemoryExporter, TracerProvider, Value};
    /// use runtrace_tracing::RuntraceLayer;
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let exporter = InMemoryExporter::default();
    /// let provider = TracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    /// let layer = RuntraceLayer::new(provider.tracer("app")).with_tracked_inactivity(true);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info_span!("work").in_scope(|| std::thread::sleep(std::time::Duration::from_millis(1)));
    /// });
    /// let span = &exporter.finished_spans()[0];
    /// let busy = span.attributes.iter().find(|kv| kv.key == "busy_ns").unwrap();
    /// assert!(matches!(busy.value, Value::I64(ns) if ns >= 1_000_000));
    /// ```
    pub fn with_tracked_inactivity(mut self, tracked_inactivity: bool) -> Self {
        self.tracked_inactivity = tracked_inactivity;
        self
    }

    /// This layer among the layers that entered spans on a thread: its
    /// address, which does not change once it is in a subscriber (the only
    /// place it gets callbacks), not even when `tracing_subscriber::reload`
    /// swaps in a new layer, which is written over the old one in place.
    /// A later layer may reuse the address of a dropped one. For the entered
    /// spans that is harmless because a layer leaves no entry behind: a span
    /// keeps its subscriber alive until it exits, and every exit removes its
    /// entry (only a `mem::forget`-ten enter guard leaves one, or a reload
    /// that swaps in a layer with a disabled tracer while a span is entered,
    /// since a disabled layer does not exit). A thread's list of dispatchers
    /// keeps one by this key after the layer is gone; the layer reusing the
    /// address replaces it when it is found gone (see `current`).
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Lists the thread's default dispatcher as the one to look this
    /// layer's spans up in (with `find`), if this layer is in it; `false` if
    /// it is not (or it cannot tell: inside a `tracing` callback made
    /// through it, `tracing` hands out no dispatcher; a wrapper that does not
    /// let `downcast_ref` through, such as `reload`'s, hides the layer).
    fn list_default_dispatcher(&self, find: current::Find) -> bool {
        tracing::dispatcher::get_default(|dispatch| {
            dispatch
                .downcast_ref::<RuntraceLayer>()
                .is_some_and(|me| me.key() == self.key())
                && current::list_dispatcher(self.key(), dispatch, find)
        })
    }

    /// The tracer that starts this layer's spans.
    pub(crate) fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    /// Keeps `state` in `span`'s extensions (with its timings, if timed).
    #[inline(always)]
    fn keep<S>(&self, span: &SpanRef<'_, S>, state: SpanState)
    where
        S: for<'a> LookupSpan<'a>,
    {
        // A dropped span that only carries its trace has no time to show.
        let timed = self.tracked_inactivity && state.is_recording();
        let mut extensions = span.extensions_mut();
        extensions.insert(state);
        if timed {
            extensions.insert(Timings::new());
        }
    }

    /// A span with a `tracing` parent, started now under `parent`.
    fn start_child(&self, attrs: &Attributes<'_>, parent: &Context) -> Option<SpanState> {
        let meta = attrs.metadata();
        let mut kind = KindField(None);
        if meta.fields().field("otel.kind").is_some() {
            attrs.record(&mut kind);
        }
        let mut span = self
            .tracer
            .span(meta.name())
            .kind(kind.0.unwrap_or_default())
            .parent(parent)
            .start();
        if !span.is_recording() {
            // Dropped under a dropped parent: nothing to keep, its context is
            // the parent's. Under a sampled one, its own (unsampled) context
            // must reach its children.
            let parent_sampled = parent.span_context().is_some_and(|p| p.is_sampled());
            return parent_sampled.then(|| SpanState::started(span));
        }
        // Handed to the span as it is: no copy, no growth.
        let (attributes, conventions) = self.span_attributes(attrs);
        span.set_attributes(attributes);
        let mut state = SpanState::started(span);
        state.apply(conventions);
        Some(state)
    }

    /// A new span's attributes (its code location, its thread if asked, its
    /// plain fields) in one recycled list at its size (the batch thread parks
    /// it again after export), and what its `otel.*` and error fields ask.
    fn span_attributes(&self, attrs: &Attributes<'_>) -> (Vec<KeyValue>, Conventions) {
        let mut attributes = self.tracer.attribute_list();
        // Exactly the room needed (the fields, the three code attributes, the
        // two thread ones and the two timings if asked): a recycled list with
        // that much room, as most are, is not grown. A list that grows is
        // reallocated on the application thread, and when the pool kept lists
        // of at most 16 attributes, one grown past that was freed by the batch
        // thread instead of recycled: `span_4fields` with timings added at
        // close took 2.2 µs a span instead of 0.83, and the batch thread,
        // freeing every list, fell behind and dropped a fifth of the spans.
        let thread = if self.threads { 2 } else { 0 };
        let timings = if self.tracked_inactivity { 2 } else { 0 };
        attributes.reserve(attrs.fields().len() + 3 + thread + timings);
        push_code_attributes(&mut attributes, attrs.metadata());
        if self.threads {
            push_thread_attributes(&mut attributes);
        }
        let mut conventions = Conventions::default();
        attrs.record(&mut SpanFields {
            sink: &mut attributes,
            conventions: &mut conventions,
        });
        (attributes, conventions)
    }

    /// A local root: it starts when first used, under `parent` unless
    /// `set_parent` replaces it.
    fn pending_root(&self, attrs: &Attributes<'_>, parent: Context) -> SpanState {
        let meta = attrs.metadata();
        let (attributes, conventions) = self.span_attributes(attrs);
        let mut state = SpanState::Pending(Pending {
            name: meta.name().into(),
            kind: SpanKind::Internal,
            parent,
            // runtrace's clock, which also ends it.
            start_time: runtrace::now(),
            attributes,
            links: Vec::new(),
            status: None,
            exception: None,
        });
        state.apply(conventions);
        state
    }
}

/// Adds where the span is in the source, as the semantic conventions name
/// it (pushed one by one: 19 instructions a span fewer than extending the
/// list from a chain of three options).
fn push_code_attributes(list: &mut Vec<KeyValue>, meta: &'static Metadata<'static>) {
    if let Some(module) = meta.module_path() {
        push_attribute(list, KeyValue::new("code.namespace", module));
    }
    if let Some(file) = meta.file() {
        push_attribute(list, KeyValue::new("code.filepath", file));
    }
    if let Some(line) = meta.line() {
        push_attribute(list, KeyValue::new("code.lineno", i64::from(line)));
    }
}

thread_local! {
    /// This thread's `thread.id` and `thread.name`, made at its first span.
    static THREAD: (i64, Option<Str>) = {
        let thread = std::thread::current();
        // `ThreadId(7)`: the number is stable for the thread's life.
        let id = format!("{:?}", thread.id())
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse::<i64>()
            .unwrap_or(0);
        (id, thread.name().map(Str::copied))
    };
}

/// Adds the creating thread's `thread.id` and `thread.name` (none at thread
/// exit), built from the number and the name (inline when short), which
/// costs less than cloning whole attributes. An inline name is copied in its
/// own arm: through `Str::clone`, whose arms meet before the push, the
/// compiler staged it on the stack in overlapping pieces and read them back
/// with a load that waits for both stores (`perf annotate`: half of
/// `span_attributes`' samples of `span_4fields`).
fn push_thread_attributes(list: &mut Vec<KeyValue>) {
    let _ = THREAD.try_with(|(id, name)| {
        push_attribute(list, KeyValue::new("thread.id", *id));
        match name {
            Some(Str::Inline(inline)) => {
                push_attribute(list, KeyValue::new("thread.name", Str::Inline(*inline)));
            }
            Some(name) => push_attribute(list, KeyValue::new("thread.name", name.clone())),
            None => {}
        }
    });
}

/// The context of span `id` for the layer whose key is `layer`, looked up in
/// `dispatch` (for a [`Lookup::Later`]): `None` if that layer is not in it, if
/// the span is gone or the layer keeps nothing for it and its ancestors, or if
/// this thread is starting a pending root (whose span's lock it holds).
fn context_in<S>(dispatch: &Dispatch, layer: usize, id: &Id) -> Option<Context>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if starting() {
        return None;
    }
    let me = dispatch
        .downcast_ref::<RuntraceLayer>()
        .filter(|me| me.key() == layer)?;
    let span = dispatch.downcast_ref::<S>()?.span(id)?;
    context_of(&span, Some(&me.tracer))
}

/// The runtrace parent of a span whose `tracing` parent is `parent`: for a
/// contextual span, the current runtrace context (the innermost entered
/// `tracing` span's, or a native span's started inside it); for an explicit
/// parent, that span's context (started by `layer`'s tracer if pending).
/// `ctx` looks up the layer's own entered spans (the default dispatcher
/// cannot be had while `tracing` makes a span).
fn parent_context<'a, S>(
    layer: &RuntraceLayer,
    attrs: &Attributes<'_>,
    parent: SpanRef<'a, S>,
    ctx: &'a LayerContext<'_, S>,
) -> Option<Context>
where
    S: Subscriber + for<'b> LookupSpan<'b>,
{
    if attrs.is_contextual() && !current::is_newest(layer.key(), &parent.id()) {
        // Something else may be current: a native span's context attached
        // in the parent, or another subscriber's span entered.
        let current = Context::current_resolving(|newer_than| {
            current::resolve_with(newer_than, Some(layer.key()), |id| {
                if *id == parent.id() {
                    // The usual case, the parent itself: no lookup.
                    return context_of(&parent, Some(&layer.tracer));
                }
                context_of(&ctx.span(id)?, Some(&layer.tracer))
            })
        });
        if current.span_context().is_some() {
            return Some(current);
        }
    }
    context_of(&parent, Some(&layer.tracer))
}

/// Whether the layer keeps a recording span for `id` (read-locked briefly,
/// so that converting fields afterwards runs without the span's lock: a
/// field's `Debug` may itself emit `tracing` events).
fn is_recorded<S>(span: &SpanRef<'_, S>) -> bool
where
    S: for<'a> LookupSpan<'a>,
{
    span.extensions()
        .get::<SpanState>()
        .is_some_and(SpanState::is_recording)
}

impl<S> Layer<S> for RuntraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if !self.tracer.is_enabled() || starting() {
            // While this thread starts a root (a processor or sampler making
            // a span), the root's lock is held: looking its context up (as a
            // parent) would wait for it forever. Such a span is not traced.
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        // Each arm hands its state straight to `keep`: a state chosen first
        // and kept after was copied twice more on the way (208 bytes each).
        match span
            .parent()
            .and_then(|p| parent_context(self, attrs, p, &ctx))
        {
            Some(parent) => {
                if let Some(state) = self.start_child(attrs, &parent) {
                    self.keep(&span, state);
                }
            }
            None if attrs.is_root() => self.keep(&span, self.pending_root(attrs, Context::new())),
            None => self.keep(&span, self.pending_root(attrs, Context::current())),
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        if starting() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        if !is_recorded(&span) {
            return;
        }
        let mut attributes = Vec::new();
        let mut conventions = Conventions::default();
        values.record(&mut SpanFields {
            sink: &mut attributes,
            conventions: &mut conventions,
        });
        let mut extensions = span.extensions_mut();
        let Some(state) = extensions.get_mut::<SpanState>() else {
            return;
        };
        match state {
            SpanState::Pending(pending) => pending.attributes.extend(attributes),
            SpanState::Started { span, .. } => {
                for KeyValue { key, value } in attributes {
                    span.set_attribute(key, value);
                }
            }
        }
        state.apply(conventions);
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: LayerContext<'_, S>) {
        let Some(follows) = ctx
            .span(follows)
            .and_then(|span| context_of(&span, Some(&self.tracer)))
        else {
            return;
        };
        let (Some(linked), Some(span)) = (follows.span_context(), ctx.span(id)) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanState>() {
            Some(SpanState::Pending(pending)) => pending.links.push(linked.clone()),
            Some(SpanState::Started { span, .. }) => span.add_link(linked.clone(), Vec::new()),
            None => {}
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        if starting() {
            return;
        }
        // The current span from the layer's own list of entered spans (the
        // registry's would cost a lookup more), else the registry's.
        let span = if event.is_contextual() {
            current::innermost(self.key()).and_then(|id| ctx.span(&id))
        } else {
            None
        };
        let Some(span) = span.or_else(|| ctx.event_span(event)) else {
            return;
        };
        if !is_recorded(&span) {
            return;
        }
        let meta = event.metadata();
        let mut attributes = self.tracer.attribute_list();
        attributes.reserve(meta.fields().len() + 2);
        let mut fields = EventFields {
            name: None,
            attributes,
            exception: None,
        };
        push_attribute(
            &mut fields.attributes,
            KeyValue::new("level", meta.level().as_str()),
        );
        push_attribute(
            &mut fields.attributes,
            KeyValue::new("target", meta.target()),
        );
        event.record(&mut fields);
        let EventFields {
            name,
            mut attributes,
            exception,
        } = fields;
        let name: Str = match (&exception, name) {
            (Some(_), Some(message)) => {
                attributes.push(KeyValue::new("message", message));
                "exception".into()
            }
            (Some(_), None) => "exception".into(),
            (None, Some(message)) => message,
            (None, None) => meta.name().into(),
        };
        let mut extensions = span.extensions_mut();
        let Some(state) = extensions.get_mut::<SpanState>() else {
            return;
        };
        state.start(&self.tracer).add_event(name, attributes);
        if let SpanState::Started { span, status_set } = state {
            set_event_status(span, status_set, exception, *meta.level());
        }
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        if !self.tracer.is_enabled() {
            return;
        }
        if self.tracked_inactivity {
            if let Some(span) = ctx.span(id) {
                if let Some(timings) = span.extensions_mut().get_mut::<Timings>() {
                    timings.enter();
                }
            }
        }
        // Looked up when a context is read, through this layer's dispatcher
        // if the thread lists it, or lists it now because it is the default;
        // else now.
        let cx = if current::has_dispatcher(self.key())
            || self.list_default_dispatcher(context_in::<S>)
        {
            Lookup::Later
        } else if starting() {
            // Entered while this thread starts a root, whose lock it holds.
            Lookup::done(None)
        } else {
            Lookup::done(
                ctx.span(id)
                    .and_then(|span| context_of(&span, Some(&self.tracer))),
            )
        };
        current::enter(self.key(), id, cx);
    }

    fn on_exit(&self, id: &Id, ctx: LayerContext<'_, S>) {
        // Skipped as `on_enter` is: a disabled layer keeps no entries, and
        // looking for one it does not have would take another subscriber's
        // entry of the same id on this thread (the fallback kept for reload).
        if !self.tracer.is_enabled() {
            return;
        }
        current::exit(self.key(), id);
        if self.tracked_inactivity {
            if let Some(span) = ctx.span(id) {
                if let Some(timings) = span.extensions_mut().get_mut::<Timings>() {
                    timings.exit();
                }
            }
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(state) = extensions.remove::<SpanState>() else {
            return;
        };
        // Only a timed layer inserts timings: no search for them otherwise
        // (a layer reloaded untimed leaves them to the registry's clean-up).
        let timings = if self.tracked_inactivity {
            extensions.remove::<Timings>()
        } else {
            None
        };
        // Ending the span runs the processors without the span's lock held.
        drop(extensions);
        let mut span = state.into_span(&self.tracer);
        if let Some(timings) = timings {
            for kv in timings.attributes() {
                span.set_attribute(kv.key, kv.value);
            }
        }
        span.end();
    }
}

/// An error field sets an error status described by it; an `ERROR` event
/// sets one without a description unless a field or event set the status.
fn set_event_status(span: &mut Span, status_set: &mut bool, exception: Option<Str>, level: Level) {
    if let Some(description) = exception {
        *status_set = true;
        span.set_status(Status::error(description));
    } else if level == Level::ERROR && !*status_set {
        span.set_status(Status::error(""));
    }
}
