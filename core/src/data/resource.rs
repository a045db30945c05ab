//! The resource: attributes describing the process that produces spans.
//!
//! The default resource has `service.name` (`unknown_service:<executable>` unless
//! configured) and the `telemetry.sdk.*` attributes; see [`Resource::default`].

use super::attribute::{KeyValue, Str, Value};

/// Immutable attributes describing the entity producing telemetry.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    attributes: Vec<KeyValue>,
}

impl Resource {
    /// A resource with exactly these attributes (later duplicates win).
    pub fn new(attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        let mut r = Resource::empty();
        for kv in attributes {
            r.set(kv);
        }
        r
    }

    /// A resource with no attributes.
    pub fn empty() -> Self {
        Resource {
            attributes: Vec::new(),
        }
    }

    /// The SDK's own attributes: `telemetry.sdk.name=runtrace`, language and version.
    pub fn sdk() -> Self {
        Resource::new([
            KeyValue::new("telemetry.sdk.name", "runtrace"),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ])
    }

    /// `unknown_service:<executable name>`, or `unknown_service`.
    pub fn unknown_service_name() -> String {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .map(|n| format!("unknown_service:{n}"))
            .unwrap_or_else(|| "unknown_service".to_string())
    }

    /// This resource with `other`'s attributes added; `other` wins on conflicts.
    pub fn merge(&self, other: &Resource) -> Resource {
        let mut r = self.clone();
        for kv in &other.attributes {
            r.set(kv.clone());
        }
        r
    }

    fn set(&mut self, kv: KeyValue) {
        match self.attributes.iter_mut().find(|e| e.key == kv.key) {
            Some(e) => e.value = kv.value,
            None => self.attributes.push(kv),
        }
    }

    /// The attributes.
    pub fn attributes(&self) -> &[KeyValue] {
        &self.attributes
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    }

    /// The `service.name` attribute, if set.
    pub fn service_name(&self) -> Option<&str> {
        self.get("service.name").and_then(Value::as_str)
    }
}

impl Default for Resource {
    /// SDK attributes plus `service.name=unknown_service:<executable>`.
    fn default() -> Self {
        Resource::sdk().merge(&Resource::new([KeyValue::new(
            "service.name",
            Str::from(Resource::unknown_service_name()),
        )]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_has_sdk_and_service_name() {
        let r = Resource::default();
        assert_eq!(
            r.get("telemetry.sdk.name").unwrap().as_str(),
            Some("runtrace")
        );
        assert_eq!(
            r.get("telemetry.sdk.language").unwrap().as_str(),
            Some("rust")
        );
        assert!(r.service_name().unwrap().starts_with("unknown_service"));
    }

    #[test]
    fn merge_prefers_other() {
        let a = Resource::new([KeyValue::new("k", 1), KeyValue::new("x", 1)]);
        let b = Resource::new([KeyValue::new("k", 2)]);
        let m = a.merge(&b);
        assert_eq!(m.get("k"), Some(&Value::I64(2)));
        assert_eq!(m.get("x"), Some(&Value::I64(1)));
    }
}
