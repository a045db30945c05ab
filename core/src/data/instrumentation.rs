//! [`Instrumentation`]: the scope and resource that every span of one tracer
//! shares, behind one counted reference.
//!
//! A span started by a tracer also carries a way back to its provider's
//! pipeline (which the span needs when it ends), type-erased and weak: the data
//! layer does not know the pipeline's type, and an ended span's data (or a
//! clone of it kept by a test exporter) does not keep a provider alive.

use super::attribute::{KeyValue, Str};
use super::limits::SpanLimits;
use super::resource::Resource;
use crate::sync::{CountedRef, RefRun};
use std::any::Any;
use std::fmt;
use std::sync::{Arc, Weak};

/// The name, version and attributes of the library that created a span.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstrumentationScope {
    /// Scope name, e.g. the crate or module name.
    pub name: Str,
    /// Scope version.
    pub version: Option<Str>,
    /// Schema URL.
    pub schema_url: Option<Str>,
    /// Scope attributes.
    pub attributes: Vec<KeyValue>,
}

impl InstrumentationScope {
    /// A scope with only a name.
    pub fn new(name: impl Into<Str>) -> Self {
        InstrumentationScope {
            name: name.into(),
            ..Default::default()
        }
    }
}

/// The scope and resource of a span, shared by every span of one tracer.
/// Cloning it is cheap (a reference count).
#[derive(Clone)]
pub struct Instrumentation(CountedRef<InstrumentationInner>);

/// What an [`Instrumentation`] refers to.
struct InstrumentationInner {
    scope: InstrumentationScope,
    resource: Arc<Resource>,
    /// The limits the spans of this scope keep to.
    limits: SpanLimits,
    /// The runtime that receives the spans of this scope (the provider's
    /// pipeline), weakly; `None` for hand-built data.
    runtime: Option<Weak<dyn Any + Send + Sync>>,
}

impl Instrumentation {
    /// A scope and resource not tied to a provider, for building
    /// [`SpanData`](super::SpanData) by hand (exporter tests).
    ///
    /// ```
    /// use runtrace::{Instrumentation, InstrumentationScope, Resource};
    /// use std::sync::Arc;
    /// let inst = Instrumentation::new(InstrumentationScope::new("my-lib"), Arc::new(Resource::empty()));
    /// assert_eq!(inst.scope().name, "my-lib");
    /// ```
    pub fn new(scope: InstrumentationScope, resource: Arc<Resource>) -> Self {
        Self::with_runtime(scope, resource, SpanLimits::default(), None)
    }

    /// A scope whose spans keep to `limits` and go to `runtime` (held weakly).
    pub(crate) fn with_runtime(
        scope: InstrumentationScope,
        resource: Arc<Resource>,
        limits: SpanLimits,
        runtime: Option<Weak<dyn Any + Send + Sync>>,
    ) -> Self {
        Instrumentation(CountedRef::new(InstrumentationInner {
            scope,
            resource,
            limits,
            runtime,
        }))
    }

    /// The instrumentation scope.
    pub fn scope(&self) -> &InstrumentationScope {
        &self.0.scope
    }

    /// The resource.
    pub fn resource(&self) -> &Arc<Resource> {
        &self.0.resource
    }

    /// The limits the spans of this scope keep to.
    #[inline]
    pub(crate) fn limits(&self) -> &SpanLimits {
        &self.0.limits
    }

    /// The runtime given to [`with_runtime`](Self::with_runtime), if any.
    #[inline]
    pub(crate) fn runtime(&self) -> Option<&Weak<dyn Any + Send + Sync>> {
        self.0.runtime.as_ref()
    }

    /// `true` if both handles share the same scope and resource object.
    pub fn ptr_eq(&self, other: &Instrumentation) -> bool {
        self.0.ptr_eq(&other.0)
    }

    /// Another reference, for a span this thread starts: like `clone`, but the
    /// count comes from the thread's credits (biased reference counting, see
    /// [`CountedRef::clone_biased`]), so the shared count is written once per
    /// batch of spans instead of at every span.
    #[inline]
    pub(crate) fn clone_for_span(&self) -> Instrumentation {
        Instrumentation(self.0.clone_biased())
    }
}

impl fmt::Debug for Instrumentation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumentation")
            .field("scope", &self.0.scope)
            .field("resource", &self.0.resource)
            .finish()
    }
}

/// References to one scope merged into one value: dropping it gives all their
/// counts back with one atomic operation (the batch worker's side of the count).
pub(crate) struct ScopeRun(RefRun<InstrumentationInner>);

impl ScopeRun {
    /// Merges `r` into `run`, or starts a new run with it: dropping the
    /// previous run gives its counts back.
    pub(crate) fn extend(run: &mut Option<ScopeRun>, r: Instrumentation) {
        // `Option<ScopeRun>` and `Option<RefRun>` differ only by the wrapper.
        let mut inner = run.take().map(|ScopeRun(r)| r);
        RefRun::extend(&mut inner, r.0);
        *run = inner.map(ScopeRun);
    }
}
