//! `tracing` fields as runtrace attributes, and the `otel.*` conventions.
//!
//! Fields keep their type (`i64`, `u64` that fits, `f64`, `bool`, `str`; the
//! rest as their `Debug` text). The fields tracing-opentelemetry gives a
//! meaning are read instead of copied: `otel.name`, `otel.kind`,
//! `otel.status_code`, `otel.status_message` (or `otel.status_description`).
//! A field named `error` or `exception` stays an attribute and also becomes
//! an `exception` event and an error status.

use runtrace::{InlineStr, KeyValue, SpanKind, Status, Str, Value};
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};

/// What the `otel.*` and error fields of one span or event asked for.
#[derive(Debug, Default)]
pub(crate) struct Conventions {
    /// `otel.name`: the span's new name.
    pub(crate) name: Option<Str>,
    /// `otel.kind`, when it names a kind.
    pub(crate) kind: Option<SpanKind>,
    /// `otel.status_code`: `Some(true)` for `ok`, `Some(false)` for `error`.
    pub(crate) status_ok: Option<bool>,
    /// `otel.status_message` (or `otel.status_description`).
    pub(crate) status_message: Option<Str>,
    /// The text of an `error` or `exception` field.
    pub(crate) exception: Option<Str>,
}

impl Conventions {
    /// Whether no field asked for anything.
    pub(crate) fn is_empty(&self) -> bool {
        let Conventions {
            name,
            kind,
            status_ok,
            status_message,
            exception,
        } = self;
        name.is_none()
            && kind.is_none()
            && status_ok.is_none()
            && status_message.is_none()
            && exception.is_none()
    }

    /// The status these fields set, if any: an error field or `otel.status_code =
    /// "error"` makes an error (described by `otel.status_message`, else by the
    /// error's text), `ok` makes `Ok`; a message alone makes an error, as in
    /// tracing-opentelemetry.
    pub(crate) fn status(&self) -> Option<Status> {
        let described = || {
            let description = self.status_message.clone();
            Status::error(
                description
                    .or_else(|| self.exception.clone())
                    .unwrap_or_default(),
            )
        };
        match self.status_ok {
            Some(true) => Some(Status::Ok),
            Some(false) => Some(described()),
            None if self.status_message.is_some() || self.exception.is_some() => Some(described()),
            None => None,
        }
    }

    /// The `exception` event an error field asks for.
    pub(crate) fn exception_event(&self) -> Option<Vec<KeyValue>> {
        let message = self.exception.clone()?;
        Some(vec![KeyValue::new("exception.message", message)])
    }
}

/// A span kind from `otel.kind`'s text (any case); `None` for anything else.
pub(crate) fn span_kind(text: &str) -> Option<SpanKind> {
    [
        ("server", SpanKind::Server),
        ("client", SpanKind::Client),
        ("producer", SpanKind::Producer),
        ("consumer", SpanKind::Consumer),
        ("internal", SpanKind::Internal),
    ]
    .into_iter()
    .find(|(name, _)| text.eq_ignore_ascii_case(name))
    .map(|(_, kind)| kind)
}

thread_local! {
    /// Where `Debug` text is written before it is copied into its one
    /// allocation (formatting straight into a `String` and converting would
    /// allocate twice).
    static TEXT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The `Debug` text of a value as an attribute string.
fn debug_text(value: &dyn fmt::Debug) -> Str {
    // A value's `Debug` may itself emit `tracing` events, and so land here
    // again while the buffer is in use: then it gets its own.
    TEXT.try_with(|text| {
        let mut text = text.try_borrow_mut().ok()?;
        text.clear();
        write!(text, "{value:?}").ok()?;
        Some(Str::copied(&text))
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| Str::from(format!("{value:?}")))
}

/// Appends `kv` to `list`, as `list.push(kv)` does. Where the list has room
/// (a span's recycled list is reserved at its size) the attribute's parts are
/// stored straight into it. `Vec::push` has a growth path, a call, before its
/// write, so the compiler builds the attribute on the stack first and copies
/// it over with loads wider than the stores that built it: each such load
/// waits for those stores to reach the cache (`perf annotate` put half of
/// `span_attributes`' samples of `span_4fields` on them).
#[inline(always)]
pub(crate) fn push_attribute(list: &mut Vec<KeyValue>, kv: KeyValue) {
    if list.len() < list.capacity() {
        list.push(kv);
    } else {
        push_growing(list, kv);
    }
}

/// [`push_attribute`]'s rare path: the list grows.
#[cold]
#[inline(never)]
fn push_growing(list: &mut Vec<KeyValue>, kv: KeyValue) {
    list.push(kv);
}

/// Whether a field named `name` may mean more than an attribute (an `otel.*`
/// or error field): [`SpanFields::text`] sorts those out.
fn is_convention(name: &str) -> bool {
    name.starts_with("otel.") || is_error_field(name)
}

/// Whether a field named `name` holds an error (an `exception` event and an
/// error status besides its attribute).
fn is_error_field(name: &str) -> bool {
    matches!(name, "error" | "exception")
}

/// Reads a span's fields: plain ones into `sink`, the conventions aside.
pub(crate) struct SpanFields<'a> {
    pub(crate) sink: &'a mut Vec<KeyValue>,
    pub(crate) conventions: &'a mut Conventions,
}

impl SpanFields<'_> {
    /// A text field: a convention, or an attribute.
    fn text(&mut self, field: &Field, text: Str) {
        let c = &mut *self.conventions;
        match field.name() {
            "otel.name" => c.name = Some(text),
            "otel.kind" => c.kind = span_kind(&text),
            "otel.status_code" if text.eq_ignore_ascii_case("ok") => c.status_ok = Some(true),
            "otel.status_code" if text.eq_ignore_ascii_case("error") => c.status_ok = Some(false),
            "otel.status_code" => {}
            "otel.status_message" | "otel.status_description" => c.status_message = Some(text),
            name => {
                if is_error_field(name) {
                    c.exception = Some(text.clone());
                }
                push_attribute(self.sink, KeyValue::new(name, text));
            }
        }
    }
}

impl Visit for SpanFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        push_attribute(self.sink, KeyValue::new(field.name(), value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        push_attribute(self.sink, KeyValue::new(field.name(), value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        push_attribute(self.sink, KeyValue::new(field.name(), unsigned(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        push_attribute(self.sink, KeyValue::new(field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match InlineStr::new(value) {
            // Most text fields: plain and short. Built in their own arm,
            // straight into the list (see `push_attribute`); through `text`,
            // the string was staged on the stack and read back.
            Some(inline) if !is_convention(field.name()) => {
                push_attribute(self.sink, KeyValue::new(field.name(), Str::Inline(inline)));
            }
            _ => self.text(field, Str::copied(value)),
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let text = Str::from(value.to_string());
        self.conventions.exception = Some(text.clone());
        push_attribute(self.sink, KeyValue::new(field.name(), text));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, debug_text(value));
    }
}

/// A `u64` as an `i64` when it fits, else as its decimal text (exact either way).
fn unsigned(value: u64) -> Value {
    match i64::try_from(value) {
        Ok(v) => Value::I64(v),
        Err(_) => Value::from(value.to_string()),
    }
}

/// Reads only `otel.kind`: a span's kind must be known before it starts.
pub(crate) struct KindField(pub(crate) Option<SpanKind>);

impl Visit for KindField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "otel.kind" {
            self.0 = span_kind(value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "otel.kind" {
            self.0 = span_kind(&format!("{value:?}"));
        }
    }
}

/// Reads an event's fields: `message` names it, the rest are attributes; an
/// `error` or `exception` field makes it an `exception` event.
pub(crate) struct EventFields {
    pub(crate) name: Option<Str>,
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) exception: Option<Str>,
}

impl EventFields {
    fn text(&mut self, field: &Field, text: Str) {
        match field.name() {
            "message" => self.name = Some(text),
            name => {
                if is_error_field(name) {
                    self.exception = Some(text.clone());
                    push_attribute(
                        &mut self.attributes,
                        KeyValue::new("exception.message", text.clone()),
                    );
                }
                push_attribute(&mut self.attributes, KeyValue::new(name, text));
            }
        }
    }
}

impl Visit for EventFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        push_attribute(&mut self.attributes, KeyValue::new(field.name(), value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        push_attribute(&mut self.attributes, KeyValue::new(field.name(), value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        push_attribute(
            &mut self.attributes,
            KeyValue::new(field.name(), unsigned(value)),
        );
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        push_attribute(&mut self.attributes, KeyValue::new(field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, Str::copied(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let text = Str::from(value.to_string());
        self.exception = Some(text.clone());
        push_attribute(
            &mut self.attributes,
            KeyValue::new("exception.message", text.clone()),
        );
        push_attribute(&mut self.attributes, KeyValue::new(field.name(), text));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, debug_text(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_read_in_any_case_and_unknown_ones_ignored() {
        assert_eq!(span_kind("Server"), Some(SpanKind::Server));
        assert_eq!(span_kind("CLIENT"), Some(SpanKind::Client));
        assert_eq!(span_kind("consumer"), Some(SpanKind::Consumer));
        assert_eq!(span_kind("rpc"), None);
    }

    #[test]
    fn status_follows_the_code_then_the_message_then_the_error() {
        let mut c = Conventions::default();
        assert_eq!(c.status(), None);
        c.exception = Some("boom".into());
        assert_eq!(c.status(), Some(Status::error("boom")));
        c.status_message = Some("upstream timed out".into());
        assert_eq!(c.status(), Some(Status::error("upstream timed out")));
        c.status_ok = Some(true);
        assert_eq!(c.status(), Some(Status::Ok));
    }

    #[test]
    fn conventions_are_empty_only_when_no_field_asked_for_anything() {
        assert!(Conventions::default().is_empty());
        let set: [fn(&mut Conventions); 5] = [
            |c| c.name = Some("n".into()),
            |c| c.kind = Some(SpanKind::Server),
            |c| c.status_ok = Some(false),
            |c| c.status_message = Some("m".into()),
            |c| c.exception = Some("e".into()),
        ];
        for set in set {
            let mut c = Conventions::default();
            set(&mut c);
            assert!(!c.is_empty());
        }
    }

    #[test]
    fn big_unsigned_values_stay_exact() {
        assert_eq!(unsigned(7), Value::I64(7));
        assert_eq!(unsigned(u64::MAX), Value::from(u64::MAX.to_string()));
    }
}
