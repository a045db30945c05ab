//! [`Instrumented`]: a future with a state that acts around each of its polls,
//! the one pin projection the crate needs (for `FutureExt`'s adapters).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// What an adapter does around each poll of the future it wraps (for example
/// making a context current). Sealed: implemented only inside runtrace.
#[allow(unreachable_pub)] // Named by the bound of a public impl, never by users.
pub trait AroundPoll: Unpin {
    /// Polls `future` once, doing the adapter's work around it.
    fn poll_around<F: Future>(
        &mut self,
        future: Pin<&mut F>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<F::Output>;
}

/// A future and the state of the adapter around it. Made by
/// [`FutureExt`](crate::FutureExt)'s methods.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Instrumented<F, S> {
    future: F,
    state: S,
}

impl<F, S> Instrumented<F, S> {
    #[inline]
    pub(crate) fn new(future: F, state: S) -> Self {
        Instrumented { future, state }
    }
}

impl<F: Future, S: AroundPoll> Future for Instrumented<F, S> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is pinned structurally. Once an `Instrumented` is
        // pinned, nothing moves `future` out or hands out a `&mut F`: there is
        // no `Drop` impl and no method taking a pinned value apart, and
        // `Instrumented` is `Unpin` only when `F` is (the auto trait). `state`
        // is `Unpin` and never pinned, so a `&mut` to it is fine.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above: `this.future` stays where it is until dropped.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        this.state.poll_around(future, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    /// Counts its polls.
    #[derive(Default)]
    struct Count(usize);

    impl AroundPoll for Count {
        fn poll_around<F: Future>(
            &mut self,
            future: Pin<&mut F>,
            cx: &mut TaskContext<'_>,
        ) -> Poll<F::Output> {
            self.0 += 1;
            future.poll(cx)
        }
    }

    struct NoWake;
    impl Wake for NoWake {
        fn wake(self: Arc<Self>) {}
    }

    /// Pending once, then ready with a value that borrows from the future
    /// itself (so that moving it after the first poll would be caught by miri).
    async fn self_referential() -> usize {
        let local = [1usize, 2, 3];
        let r = &local;
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        r.iter().sum()
    }

    #[test]
    fn polls_the_pinned_future_through_its_state() {
        let waker = Waker::from(Arc::new(NoWake));
        let mut cx = TaskContext::from_waker(&waker);
        let mut fut = Box::pin(Instrumented::new(self_referential(), Count::default()));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(6));
        assert_eq!(fut.state.0, 2);
    }
}
