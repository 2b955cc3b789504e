//! A request's future that does one last thing to the response once it is ready (name the
//! source on it, write the request line): the layers' way to act after the inner service
//! without a boxed `async` block per request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Response;

/// What to do to the response once the inner service has answered.
pub(super) trait OnResponse {
    fn on_response(self, response: &mut Response);
}

pin_project_lite::pin_project! {
    /// `inner`, then `after` applied to its response.
    pub(super) struct Then<F, A> {
        #[pin]
        inner: F,
        after: Option<A>,
    }
}

impl<F, A> Then<F, A> {
    pub(super) fn new(inner: F, after: A) -> Self {
        Then {
            inner,
            after: Some(after),
        }
    }
}

impl<F, A> Future for Then<F, A>
where
    F: Future<Output = Result<Response, Infallible>>,
    A: OnResponse,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        if let Some(after) = this.after.take() {
            after.on_response(&mut response);
        }
        Poll::Ready(Ok(response))
    }
}
