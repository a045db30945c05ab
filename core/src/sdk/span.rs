//! Spans: the [`SpanBuilder`] and the [`Span`] handle.
//!
//! A span is recording when the sampler kept it (RecordOnly or RecordAndSample);
//! a non-recording span still carries a span context, so the trace propagates,
//! but every mutation on it is a no-op that neither allocates nor reads a clock.
//! A span ends exactly once: at [`Span::end`], or when dropped.

use super::dispatch;
use super::tracer::{apply_limits, Tracer};
use crate::clock;
use crate::config::SpanLimits;
use crate::context::{Context, ContextGuard};
use crate::data::attribute::{dedup_keys, set_at_limit};
use crate::data::{
    Event, KeyValue, Link, SpanContext, SpanData, SpanDetails, SpanKind, Status, Str, Value,
};
use crate::processor::recycle;
use crate::sampling::SamplingDecision;
use crate::sync::vec::push_making_room;
use std::mem::ManuallyDrop;
use std::time::SystemTime;

mod current;

pub use current::{with_current_span, SpanGuard};

/// Configures a span before it starts. Made by [`Tracer::span`].
///
/// ```
/// use runtrace::{SpanKind, TracerProvider};
/// let provider = TracerProvider::noop();
/// let tracer = provider.tracer("svc");
/// let span = tracer.span("GET /infer").kind(SpanKind::Server).attribute("http.route", "/infer").start();
/// drop(span);
/// ```
#[derive(Debug)]
#[must_use = "a span builder does nothing until `start` is called"]
pub struct SpanBuilder<'t> {
    pub(crate) tracer: &'t Tracer,
    pub(crate) name: Str,
    pub(crate) kind: SpanKind,
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) links: Vec<Link>,
    pub(crate) parent: Option<&'t Context>,
    pub(crate) start_time: Option<SystemTime>,
}

impl<'t> SpanBuilder<'t> {
    pub(crate) fn new(tracer: &'t Tracer, name: Str) -> Self {
        SpanBuilder {
            tracer,
            name,
            kind: SpanKind::Internal,
            attributes: Vec::new(),
            links: Vec::new(),
            parent: None,
            start_time: None,
        }
    }

    /// Sets the span kind.
    #[inline]
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// Adds an attribute the sampler can see. Ignored by a disabled tracer.
    #[inline(always)]
    pub fn attribute(mut self, key: impl Into<Str>, value: impl Into<Value>) -> Self {
        if self.tracer.is_enabled() {
            self.push_attribute(KeyValue::new(key, value));
        }
        self
    }

    /// Adds attributes the sampler can see, in order (as [`attribute`] one by
    /// one; a repeated key keeps its last value). Ignored by a disabled tracer.
    /// A `Vec` given before any other attribute becomes the span's list as it
    /// is, without a copy (fill one from [`Tracer::attribute_list`] to recycle
    /// lists); later ones are copied in.
    ///
    /// [`attribute`]: Self::attribute
    ///
    /// ```
    /// use runtrace::{KeyValue, TracerProvider};
    /// let tracer = TracerProvider::noop().tracer("t");
    /// let fields = vec![KeyValue::new("http.route", "/items"), KeyValue::new("items", 3)];
    /// let span = tracer.span("GET /items").attributes(fields).start();
    /// # drop(span);
    /// ```
    pub fn attributes(mut self, attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        if self.tracer.is_enabled() {
            if self.attributes.capacity() == 0 {
                // The first list: a `Vec` is taken over as it is (`collect`
                // keeps the buffer of a `vec::IntoIter`), anything else is
                // collected at its size.
                self.attributes = attributes.into_iter().collect();
            } else {
                self.attributes.extend(attributes);
            }
        }
        self
    }

    /// Inlined, so that the attribute is written straight into the list (an
    /// attribute built here and read back in a call stalls on store
    /// forwarding); taking a list or growing it is out of line. Nothing here
    /// passes the builder's address to a call, so the method chain
    /// `.attribute(..).attribute(..)` keeps the builder in registers instead
    /// of copying it (152 bytes) at every step.
    #[inline(always)]
    fn push_attribute(&mut self, attribute: KeyValue) {
        // SAFETY: `with_room` returns a list with spare capacity.
        unsafe { push_making_room(&mut self.attributes, attribute, |list| with_room(list)) };
    }

    /// Adds a link to another span context.
    pub fn link(mut self, span_context: SpanContext, attributes: Vec<KeyValue>) -> Self {
        if self.tracer.is_enabled() && span_context.is_valid() {
            self.links.push(Link {
                span_context,
                attributes,
                dropped_attributes_count: 0,
            });
        }
        self
    }

    /// Uses `cx` as the parent instead of the thread's current context
    /// (an empty context makes a root span). The builder borrows `cx` until
    /// [`start`](Self::start) rather than copying it, so a context made in
    /// the same expression (`.parent(&Context::current())`) is fine, and one
    /// made for a builder kept in a variable must outlive it.
    #[inline]
    pub fn parent(mut self, cx: &'t Context) -> Self {
        self.parent = Some(cx);
        self
    }

    /// Sets an explicit start time instead of now.
    #[inline]
    pub fn start_time(mut self, t: SystemTime) -> Self {
        self.start_time = Some(t);
        self
    }

    /// Samples and starts the span.
    #[inline(always)]
    pub fn start(self) -> Span {
        let tracer = self.tracer;
        if !tracer.is_enabled() {
            return self.start_disabled();
        }
        // The usual span, a plain one whose decision the sampler makes without
        // being asked, is recognised here: inlined where the builder was made,
        // the test is mostly known at compile time, and the span goes straight
        // to its short path.
        if let Some(fixed) = tracer.plain_decisions().filter(|_| self.is_plain()) {
            let (name, kind) = self.into_name_and_kind();
            if fixed.root == SamplingDecision::Drop && !Context::any_attached() {
                // A dropped root is only its ids, made here.
                drop(name);
                return Span::non_recording(Tracer::plain_context(None, fixed.root));
            }
            return tracer.start_plain(name, kind, fixed);
        }
        // Builder attributes, an explicit parent or start time: the same
        // decision, taken out of line.
        if let Some(fixed) = tracer.plain_decisions().filter(|_| self.is_fixed_shape()) {
            let SpanBuilder {
                name,
                kind,
                attributes,
                links,
                parent,
                start_time,
                ..
            } = self;
            // Empty (`is_fixed_shape`): nothing to drop.
            std::mem::forget(links);
            return tracer.start_fixed(name, kind, attributes, parent, start_time, fixed);
        }
        self.start_general()
    }

    /// No links: a span whose sampler decision, when fixed, needs neither its
    /// attributes nor anything else of the builder.
    #[inline(always)]
    fn is_fixed_shape(&self) -> bool {
        self.links.capacity() == 0
    }

    /// No explicit parent, builder attributes, links or start time: a span that
    /// the short paths can start when the sampler's decision is fixed.
    #[inline(always)]
    fn is_plain(&self) -> bool {
        self.parent.is_none()
            && self.attributes.capacity() == 0
            && self.links.capacity() == 0
            && self.start_time.is_none()
    }

    /// Disabled tracing: no sampling, no ids, no clock; the parent's context (if
    /// any) is kept so that the trace still propagates downstream.
    #[inline(always)]
    fn start_disabled(self) -> Span {
        // The common case, written so that the compiler sees an invalid
        // context (nothing to drop) and can remove the span altogether.
        if self.parent.is_none() && !Context::any_attached() {
            let _ = self.into_name_and_kind();
            return Span::non_recording(SpanContext::INVALID);
        }
        self.start_disabled_with_parent()
    }

    /// [`start_disabled`](Self::start_disabled) with a parent to keep, out of
    /// line so that the common case needs no builder in memory.
    #[inline(never)]
    fn start_disabled_with_parent(mut self) -> Span {
        let context = match self.parent.take() {
            Some(cx) => cx.span_context().cloned(),
            None => Context::with_current(|cx| cx.span_context().cloned()),
        };
        Span::non_recording(context.unwrap_or(SpanContext::INVALID))
    }

    /// Every enabled span that `start` does not take itself, out of line.
    #[inline(never)]
    fn start_general(mut self) -> Span {
        self.start_with_sampler()
    }

    /// The name and kind of a plain builder (see `is_plain`), whose lists
    /// are empty and parent unset: nothing else in it needs dropping.
    #[inline(always)]
    fn into_name_and_kind(mut self) -> (Str, SpanKind) {
        debug_assert!(self.attributes.capacity() == 0 && self.links.capacity() == 0);
        debug_assert!(self.parent.is_none());
        let name_and_kind = (std::mem::take(&mut self.name), self.kind);
        std::mem::forget(self);
        name_and_kind
    }

    /// Every span the short paths do not take: with an explicit parent,
    /// builder attributes or links, an explicit start time, a sampler that must
    /// be asked or a `RecordOnly` decision, or a custom id generator.
    ///
    /// The tracer borrows the builder: a dropped span reads what it needs in
    /// place, and only a recorded span moves the name and lists out. (Borrowed
    /// here too, and dropped by the caller: passing it by value would copy it.)
    #[inline(never)]
    fn start_with_sampler(&mut self) -> Span {
        let tracer = self.tracer;
        match self.parent.take() {
            Some(cx) => tracer.start_span(self, cx.span_context()),
            None => {
                // Copied out, so that a sampler or processor may attach contexts.
                let parent = Context::with_current(|cx| cx.span_context().cloned());
                tracer.start_span(self, parent.as_ref())
            }
        }
    }
}

/// A full list of at least this many attributes is de-duplicated before it
/// grows (see [`with_room`]).
const DEDUP_BEFORE_GROWING: usize = 16;

/// `list` with room for another attribute (always: its callers' `unsafe`
/// relies on it): a recycled list for the first attribute, else the list
/// grown. Attributes are pushed without looking for their key, so a full
/// list of [`DEDUP_BEFORE_GROWING`] or more is de-duplicated first, and
/// grows only if that left it more than half full: a span that sets one key
/// again and again keeps a small list, and each pass is paid for by as many
/// pushes as the list holds (constant time a push, amortised).
///
/// The attribute itself is not passed ([`push_making_room`] writes it into
/// the list after this returns): passed, it was built on the stack for every
/// push, this call's and the others' alike, and copied by loads wider than
/// the stores that built it (`perf annotate` of `root_builder_4attrs`: three
/// fifths of the caller's samples; `sampled_root_20attrs`: three quarters of
/// `set_attribute`'s).
///
/// `extern "C"` makes it a call that cannot unwind, so the builder's caller
/// needs no clean-up path that takes the builder's address: a panic in here
/// would abort the process instead. None can happen: an allocation failure
/// aborts anyway, a list of 56-byte attributes cannot reach the capacity
/// overflow `reserve` checks for, de-duplicating indexes only within the
/// list, and taking a recycled list neither panics (a poisoned lock is
/// recovered) nor needs a thread-local.
#[inline(never)]
#[allow(improper_ctypes_definitions)] // Called from Rust only.
extern "C" fn with_room(mut list: Vec<KeyValue>) -> Vec<KeyValue> {
    if list.capacity() == 0 {
        list = recycle::take_list();
    } else if list.len() >= DEDUP_BEFORE_GROWING {
        dedup_keys(&mut list);
        if list.len() > list.capacity() / 2 {
            list.reserve(list.capacity());
        }
    }
    if list.len() == list.capacity() {
        list.reserve(1);
    }
    list
}

/// A span in progress. Ends when [`Span::end`] is called or when dropped.
#[derive(Debug)]
pub struct Span {
    /// The context of a non-recording (or already ended) span, and of a
    /// handle; of a recording one, empty, or a copy of its data's that a
    /// frame lends while the span is current (see [`current`]:
    /// [`FutureExt::in_span`](crate::FutureExt::in_span)'s polls,
    /// [`Tracer::in_span`] and [`Tracer::in_span_async`]).
    context: Context,
    /// The data of a recording span until it ends. `Drop` ends the span, which
    /// empties the data (even if a processor panics), so there is never
    /// anything left to drop here: not having its drop glue keeps dropping a
    /// non-recording span a few instructions.
    data: ManuallyDrop<Option<SpanData>>,
    /// On a handle to a span whose data is parked in this thread's context
    /// stack (see [`current`]): the id of its entry, where the methods record.
    /// 0 on every other span.
    parked: u64,
}

impl Span {
    #[inline]
    pub(crate) fn non_recording(context: SpanContext) -> Span {
        Span {
            context: Context::from_span_context(context),
            data: ManuallyDrop::new(None),
            parked: 0,
        }
    }

    pub(crate) fn recording(data: SpanData) -> Span {
        Span {
            context: Context::new(),
            data: ManuallyDrop::new(Some(data)),
            parked: 0,
        }
    }

    /// The span's context (valid after end too).
    pub fn span_context(&self) -> &SpanContext {
        match &*self.data {
            Some(d) => &d.span_context,
            None => self
                .context
                .span_context_as_given()
                .unwrap_or(&SpanContext::INVALID),
        }
    }

    /// Whether mutations are recorded (the sampler kept it and it has not ended).
    #[inline]
    pub fn is_recording(&self) -> bool {
        self.data.is_some() || (self.parked != 0 && self.parked_is_recording())
    }

    /// [`is_recording`](Self::is_recording) of a handle to a parked span.
    #[inline(never)]
    fn parked_is_recording(&self) -> bool {
        Context::with_parked(self.parked, |slot| slot.is_some()) == Some(true)
    }

    /// Makes this span the thread's current span until the guard drops, so spans
    /// started meanwhile become its children.
    ///
    /// The caller keeps the span and records on it directly:
    /// [`with_current_span`] does not reach it. To hand the span over, so
    /// that code called meanwhile can annotate it, use
    /// [`make_current`](Self::make_current) or [`Tracer::in_span`].
    pub fn enter(&self) -> ContextGuard {
        Context::from_span_context(self.span_context().clone()).attach()
    }

    /// A context whose active span is this one, to pass to another thread.
    pub fn context(&self) -> Context {
        Context::from_span_context(self.span_context().clone())
    }

    fn limits(data: &SpanData) -> SpanLimits {
        *data.instrumentation.limits()
    }

    /// Sets an attribute (a new key beyond the limit is dropped and counted).
    pub fn set_attribute(&mut self, key: impl Into<Str>, value: impl Into<Value>) {
        if let Some(data) = self.data.as_mut() {
            set_attribute_on(data, KeyValue::new(key, value));
        } else if self.parked != 0 {
            let kv = KeyValue::new(key, value);
            self.on_parked(|data| set_attribute_on(data, kv));
        }
    }

    /// Sets several attributes, as [`set_attribute`](Self::set_attribute)
    /// one by one would (a repeated key keeps its last value; new keys beyond
    /// the limit are dropped and counted). On a span with no attribute yet, a
    /// `Vec` becomes its list as it is, without a copy (fill one from
    /// [`Tracer::attribute_list`] to recycle lists).
    ///
    /// ```
    /// use runtrace::{KeyValue, TracerProvider};
    /// let tracer = TracerProvider::noop().tracer("t");
    /// let mut span = tracer.span("GET /items").start();
    /// span.set_attributes([KeyValue::new("http.route", "/items"), KeyValue::new("items", 3)]);
    /// ```
    pub fn set_attributes(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        self.with_data(|data| set_attributes_on(data, attributes));
    }

    /// Adds an event now.
    pub fn add_event(&mut self, name: impl Into<Str>, attributes: Vec<KeyValue>) {
        if self.data.is_some() || self.parked != 0 {
            // The span's own clock, so the event falls between its start and end.
            self.push_event(name.into(), attributes, clock::now_unix_nanos());
        }
    }

    /// Adds an event with an explicit timestamp.
    pub fn add_event_at(
        &mut self,
        name: impl Into<Str>,
        attributes: Vec<KeyValue>,
        at: SystemTime,
    ) {
        if self.data.is_some() || self.parked != 0 {
            self.push_event(
                name.into(),
                attributes,
                clock::system_time_to_unix_nanos(at),
            );
        }
    }

    fn push_event(&mut self, name: Str, attributes: Vec<KeyValue>, time_unix_nano: u64) {
        if let Some(data) = self.data.as_mut() {
            push_event_on(data, name, attributes, time_unix_nano);
        } else if self.parked != 0 {
            self.on_parked(|data| push_event_on(data, name, attributes, time_unix_nano));
        }
    }

    /// Adds a link to another span context.
    pub fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        if let Some(data) = self.data.as_mut() {
            add_link_on(data, span_context, attributes);
        } else if self.parked != 0 {
            self.on_parked(|data| add_link_on(data, span_context, attributes));
        }
    }

    /// Sets the status: `Ok` is final, `Unset` is ignored, otherwise the last call wins.
    pub fn set_status(&mut self, status: Status) {
        self.with_data(|data| match (data.status(), &status) {
            (Status::Ok, _) | (_, Status::Unset) => {}
            _ => details_of(data).status = status,
        });
    }

    /// Records an error as an `exception` event with `exception.type` and
    /// `exception.message`. Does not change the status: call `set_status` too.
    pub fn record_error<E: std::error::Error + ?Sized>(&mut self, error: &E) {
        if self.data.is_some() || self.parked != 0 {
            self.add_event(
                "exception",
                vec![
                    KeyValue::new("exception.type", std::any::type_name::<E>()),
                    KeyValue::new("exception.message", error.to_string()),
                ],
            );
        }
    }

    /// Renames the span.
    pub fn update_name(&mut self, name: impl Into<Str>) {
        if self.data.is_some() || self.parked != 0 {
            let name = name.into();
            self.with_data(|data| data.name = name);
        }
    }

    /// Runs `f` on the span's data (a rare method's: the frequent ones keep
    /// their own path without a closure).
    fn with_data(&mut self, f: impl FnOnce(&mut SpanData)) {
        match self.data.as_mut() {
            Some(data) => f(data),
            None if self.parked != 0 => self.on_parked(f),
            None => {}
        }
    }

    /// Runs `f` on the data of a handle's span, where it is parked.
    #[cold]
    #[inline(never)]
    fn on_parked(&self, f: impl FnOnce(&mut SpanData)) {
        Context::with_parked(self.parked, |slot| slot.as_mut().map(f));
    }

    /// Ends the span now. Later calls (and the drop) do nothing.
    #[inline]
    pub fn end(&mut self) {
        if self.data.is_some() {
            self.finish(clock::now_unix_nanos());
        } else if self.parked != 0 {
            self.finish_parked(clock::now_unix_nanos());
        }
    }

    /// Ends the span at an explicit time.
    pub fn end_at(&mut self, t: SystemTime) {
        if self.data.is_some() {
            self.finish(clock::system_time_to_unix_nanos(t));
        } else if self.parked != 0 {
            self.finish_parked(clock::system_time_to_unix_nanos(t));
        }
    }

    /// Ends a handle's span: takes its data out of its entry (which stays
    /// attached: its context is current while the processors run).
    #[cold]
    #[inline(never)]
    fn finish_parked(&mut self, end_time_unix_nano: u64) {
        if let Some(Some(data)) = Context::with_parked(self.parked, Option::take) {
            *self.data = Some(data);
            self.finish(end_time_unix_nano);
        }
    }

    #[inline(never)]
    fn finish(&mut self, end_time_unix_nano: u64) {
        // Its context stays once the data is gone (a span lent by `in_span`
        // holds the copy already).
        self.hold_context_copy();
        if let Some(data) = self.data.as_mut() {
            data.end_time_unix_nano = end_time_unix_nano.max(data.start_time_unix_nano);
            // The last processor takes the data from here (the batch processor
            // copies it straight into its queue). If an earlier one panics, the
            // guard still empties it, so the span ends once and nothing leaks.
            let ended = Ended(&mut self.data);
            dispatch::on_end(&mut *ended.0);
        }
    }
}

/// Empties an ending span's data when dropped, even while unwinding.
struct Ended<'a>(&'a mut Option<SpanData>);

impl Drop for Ended<'_> {
    #[inline]
    fn drop(&mut self) {
        *self.0 = None;
    }
}

impl Default for Span {
    /// A span that records nothing, with an invalid context: what a no-op
    /// tracer starts (for a placeholder).
    ///
    /// ```
    /// let span = runtrace::Span::default();
    /// assert!(!span.is_recording() && !span.span_context().is_valid());
    /// ```
    fn default() -> Self {
        Span::non_recording(SpanContext::INVALID)
    }
}

impl Drop for Span {
    /// Ends the span. A handle to a parked span does not end it: its owner
    /// (the guard or call that parked it) does.
    #[inline]
    fn drop(&mut self) {
        if self.data.is_some() {
            self.finish(clock::now_unix_nanos());
        }
    }
}

/// Sets an attribute on a recording span's data. Below the count limit it is
/// pushed without looking for its key (a key set again keeps its last value
/// when the list is de-duplicated before export: [`dedup_keys`]), written
/// straight into the list when it has room; taking or growing the list, a
/// value length limit and the count limit are out of line.
///
/// [`dedup_keys`]: crate::data::attribute::dedup_keys
#[inline(always)]
fn set_attribute_on(data: &mut SpanData, kv: KeyValue) {
    let limits = Span::limits(data);
    if limits.max_attribute_value_length.is_none()
        && data.attributes.len() < limits.max_attributes_per_span
    {
        // The usual attribute, on a path of its own: where it met the path
        // of a value cut to length, the attribute was built on the stack and
        // copied by loads wider than the stores that built it.
        // SAFETY: `with_room` returns a list with spare capacity.
        unsafe { push_making_room(&mut data.attributes, kv, |list| with_room(list)) };
        return;
    }
    set_attribute_limited(data, kv);
}

/// [`set_attribute_on`] with a value length limit, or at the count limit.
#[inline(never)]
fn set_attribute_limited(data: &mut SpanData, kv: KeyValue) {
    let limits = Span::limits(data);
    let kv = match limits.max_attribute_value_length {
        Some(max) => truncated(kv, max),
        None => kv,
    };
    if data.attributes.len() < limits.max_attributes_per_span {
        // SAFETY: `with_room` returns a list with spare capacity.
        unsafe { push_making_room(&mut data.attributes, kv, |list| with_room(list)) };
    } else if !set_at_limit(&mut data.attributes, kv, limits.max_attributes_per_span) {
        data.dropped_attributes_count += 1;
    }
}

/// `kv` with its value cut to `max` bytes (characters, for a string).
#[inline(never)]
fn truncated(mut kv: KeyValue, max: usize) -> KeyValue {
    kv.value.truncate(max);
    kv
}

/// Sets attributes on a recording span's data: a first list is taken over
/// (and limited once), later ones go in one by one.
fn set_attributes_on(data: &mut SpanData, attributes: impl IntoIterator<Item = KeyValue>) {
    if !data.attributes.is_empty() {
        attributes
            .into_iter()
            .for_each(|kv| set_attribute_on(data, kv));
        return;
    }
    let list: Vec<KeyValue> = attributes.into_iter().collect();
    // The span's empty list (recycled, if it had one) goes back.
    recycle::give_list(std::mem::replace(&mut data.attributes, list));
    let limits = Span::limits(data);
    data.dropped_attributes_count += apply_limits(&mut data.attributes, &limits);
}

/// A recording span's details, taken from the pool of recycled ones when it
/// has none yet.
#[inline]
fn details_of(data: &mut SpanData) -> &mut SpanDetails {
    data.details.get_or_insert_with(recycle::take_details)
}

/// Adds an event to a recording span's data.
fn push_event_on(data: &mut SpanData, name: Str, attributes: Vec<KeyValue>, time_unix_nano: u64) {
    let limits = Span::limits(data);
    let details = details_of(data);
    if details.events.len() >= limits.max_events_per_span {
        details.dropped_events_count += 1;
        return;
    }
    let (attributes, dropped) = limit_list(
        recycle::into_recycled(attributes),
        limits.max_attributes_per_event,
        limits.max_attribute_value_length,
    );
    details.events.push(Event {
        name,
        time_unix_nano,
        attributes,
        dropped_attributes_count: dropped,
    });
}

/// Adds a link to a recording span's data.
fn add_link_on(data: &mut SpanData, span_context: SpanContext, attributes: Vec<KeyValue>) {
    if !span_context.is_valid() {
        return;
    }
    let limits = Span::limits(data);
    let details = details_of(data);
    if details.links.len() >= limits.max_links_per_span {
        details.dropped_links_count += 1;
        return;
    }
    let (attributes, dropped) = limit_list(
        attributes,
        limits.max_attributes_per_link,
        limits.max_attribute_value_length,
    );
    details.links.push(Link {
        span_context,
        attributes,
        dropped_attributes_count: dropped,
    });
}

/// Applies a count limit (first `max` kept) and the value length limit.
fn limit_list(mut list: Vec<KeyValue>, max: usize, max_len: Option<usize>) -> (Vec<KeyValue>, u32) {
    let dropped = list.len().saturating_sub(max);
    list.truncate(max);
    if let Some(n) = max_len {
        list.iter_mut().for_each(|kv| kv.value.truncate(n));
    }
    (list, dropped as u32)
}
