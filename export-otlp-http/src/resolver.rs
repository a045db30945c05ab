//! The endpoint's addresses, resolved once and kept.
//!
//! ureq resolves the host on every request, even one that then goes over a
//! pooled connection, and with a timeout set (the exporter always sets one)
//! it resolves on a new thread each time: a thread created and joined per
//! batch, about a fifth of the batch worker's CPU in the soak. This resolver
//! asks ureq's own resolver (same thread-with-timeout, same IP family
//! filtering) only when it has no addresses for the host, when they are older
//! than [`KEEP_FOR`], or after a connection failed
//! ([`CachingResolver::forget`]); the addresses only matter when a new
//! connection is opened.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long resolved addresses are reused at most.
const KEEP_FOR: Duration = Duration::from_secs(30);

/// A [`Resolver`] that keeps the last answer (see the module docs). Clones
/// share it, so the exporter can [`forget`](Self::forget) what the agent's
/// copy holds.
#[derive(Clone, Default)]
pub(crate) struct CachingResolver {
    inner: Arc<Inner>,
}

/// Says only whether addresses are kept: the authority it keeps them for
/// may carry credentials (`user:password@host`).
impl std::fmt::Debug for CachingResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.inner.last.lock().is_ok_and(|last| last.is_some());
        f.debug_struct("CachingResolver")
            .field("kept", &kept)
            .finish()
    }
}

#[derive(Default)]
struct Inner {
    resolver: DefaultResolver,
    last: Mutex<Option<Resolved>>,
}

struct Resolved {
    /// The URI's scheme and authority (`http`, `host:port`) it was for.
    scheme: String,
    authority: String,
    addrs: ResolvedSocketAddrs,
    at: Instant,
}

impl CachingResolver {
    /// Drops the kept addresses: the next request resolves again.
    pub(crate) fn forget(&self) {
        *self.inner.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let scheme = uri.scheme_str().unwrap_or("");
        let authority = uri.authority().map_or("", |a| a.as_str());
        {
            let last = self.inner.last.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = last.as_ref().filter(|r| {
                r.scheme == scheme && r.authority == authority && r.at.elapsed() < KEEP_FOR
            }) {
                return Ok(r.addrs.clone());
            }
        }
        let addrs = self.inner.resolver.resolve(uri, config, timeout)?;
        *self.inner.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Resolved {
            scheme: scheme.to_owned(),
            authority: authority.to_owned(),
            addrs: addrs.clone(),
            at: Instant::now(),
        });
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_timeout() -> NextTimeout {
        NextTimeout {
            after: ureq::unversioned::transport::time::Duration::NotHappening,
            reason: ureq::Timeout::Global,
            per_read: None,
            per_write: None,
        }
    }

    #[test]
    fn keeps_the_answer_per_authority_until_forgotten() {
        let r = CachingResolver::default();
        let config = Config::default();
        let a: Uri = "http://127.0.0.1:4318/v1/traces".parse().unwrap();
        let b: Uri = "http://127.0.0.2:4318/v1/traces".parse().unwrap();
        let first = r.resolve(&a, &config, no_timeout()).unwrap();
        assert_eq!(first[0], "127.0.0.1:4318".parse().unwrap());
        assert!(r.inner.last.lock().unwrap().is_some());
        // Another authority is resolved, not served the kept answer.
        let other = r.resolve(&b, &config, no_timeout()).unwrap();
        assert_eq!(other[0], "127.0.0.2:4318".parse().unwrap());
        // A kept answer is served without resolving: plant one to see it.
        r.inner.last.lock().unwrap().as_mut().unwrap().addrs[0] = "10.1.2.3:9".parse().unwrap();
        let kept = r.resolve(&b, &config, no_timeout()).unwrap();
        assert_eq!(kept[0], "10.1.2.3:9".parse().unwrap());
        r.forget();
        let again = r.resolve(&b, &config, no_timeout()).unwrap();
        assert_eq!(again[0], "127.0.0.2:4318".parse().unwrap());
    }
}
