//! Running core futures from foreign async calls, and callback subscriptions.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use snap2p::{host, ErrorCode};

use crate::error::{Result, Snap2pError};

/// Runs `fut` on the shared snap2p runtime and waits for it. The foreign side only ever
/// sees the task's completion wake-up (sockets and timers need the runtime; no foreign
/// code runs inside core locks). Dropping the returned future (a cancelled coroutine or
/// Swift task) aborts the work.
pub(crate) async fn on_runtime<T, F>(fut: F) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = std::result::Result<T, snap2p::Error>> + Send + 'static,
{
    AbortOnDrop(host::runtime().spawn(fut)).await
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<std::result::Result<T, snap2p::Error>>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| match r {
            Ok(r) => r.map_err(Snap2pError::from),
            Err(e) => Err(Snap2pError::new(
                ErrorCode::Internal,
                format!("snap2p task failed: {e}"),
            )),
        })
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running callback subscription (`Peer.onConnection`, `Connection.onStream`,
/// `Stream.onData`). `cancel()` (or releasing the handle: Kotlin `close()`/`use {}`,
/// Swift deinit) stops it; a callback already running finishes, no new one starts.
#[derive(Debug, uniffi::Object)]
pub struct Subscription {
    task: host::Subscription,
    // Aborting is asynchronous; remember the request so `is_active` is false at once.
    cancelled: AtomicBool,
}

impl Subscription {
    pub(crate) fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Subscription {
            task: host::Subscription::spawn(fut),
            cancelled: AtomicBool::new(false),
        })
    }
}

#[uniffi::export]
impl Subscription {
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.task.cancel();
    }

    /// False once cancelled or once its source ended (peer shut down, stream finished).
    pub fn is_active(&self) -> bool {
        !self.cancelled.load(Ordering::SeqCst) && !self.task.is_finished()
    }
}
