//! Running core futures from foreign async calls, and callback subscriptions.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use snap2p::host;

use crate::error::Result;

/// Runs `fut` on the shared snap2p runtime and waits for it. The foreign side only ever
/// sees the task's completion wake-up (sockets and timers need the runtime; no foreign
/// code runs inside core locks). Dropping the returned future (a cancelled coroutine or
/// Swift task) stops the work (`host::run`).
pub(crate) async fn on_runtime<T, F>(fut: F) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = std::result::Result<T, snap2p::Error>> + Send + 'static,
{
    Ok(host::run(fut).await?)
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
