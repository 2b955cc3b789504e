//! Work that must finish even if the request that started it is cancelled: a forward whose
//! dedup claim has to be settled by what the upstream actually did. [`Detached`] runs the
//! work inline in the request's own future (no task, no hand-off between threads on the
//! normal path); only if that future is dropped before the work is done — the sender hung up
//! and hyper dropped the request — does it move the rest of the work into a task of its own,
//! carrying the tracing span that was current when the work was created (inline, the work
//! runs inside the request's span already, so it is not instrumented twice on every poll).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Instrument;

/// A future that, when dropped unfinished, is spawned to completion instead of cancelled.
pub(super) struct Detached<T: Send + 'static> {
    work: Option<Pin<Box<dyn Future<Output = T> + Send + 'static>>>,
    span: tracing::Span,
}

impl<T: Send + 'static> Detached<T> {
    pub(super) fn new(work: impl Future<Output = T> + Send + 'static) -> Self {
        Detached {
            work: Some(Box::pin(work)),
            span: tracing::Span::current(),
        }
    }
}

impl<T: Send + 'static> Future for Detached<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let work = self
            .work
            .as_mut()
            .expect("a Detached future is not polled after it completed");
        let output = std::task::ready!(work.as_mut().poll(cx));
        self.work = None;
        Poll::Ready(output)
    }
}

impl<T: Send + 'static> Drop for Detached<T> {
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            // Outside a runtime (the process is ending) there is nothing left to run it on.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(
                    work.instrument(std::mem::replace(&mut self.span, tracing::Span::none())),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn completed_work_gives_its_output() {
        assert_eq!(Detached::new(async { 7 }).await, 7);
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_work_still_runs_to_the_end() {
        let done = Arc::new(AtomicBool::new(false));
        let (finished, mut finished_rx) = tokio::sync::mpsc::channel(1);
        let work = {
            let done = done.clone();
            Detached::new(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                done.store(true, Ordering::SeqCst);
                finished.send(()).await.unwrap();
            })
        };
        // Polled once (it is waiting on the sleep), then abandoned like a hung-up request.
        let abandoned = tokio::time::timeout(Duration::from_millis(10), work).await;
        assert!(abandoned.is_err());
        assert!(!done.load(Ordering::SeqCst));
        tokio::time::timeout(Duration::from_secs(10), finished_rx.recv())
            .await
            .expect("the dropped work finished in its own task")
            .unwrap();
        assert!(done.load(Ordering::SeqCst));
    }
}
