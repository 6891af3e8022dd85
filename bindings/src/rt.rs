//! Running core futures from foreign async calls, and callback subscriptions.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use snap2p::host;

use crate::error::Result;

/// Keeps a write to a closed socket from killing the host process. The core writes TLS
/// records (`wss://`) with `writev`, which raises SIGPIPE when the peer has gone (plain
/// socket writes use `send` with MSG_NOSIGNAL and do not); Rust executables, Python, Node and
/// the JVM ignore SIGPIPE, a Swift (or C) process does not and died with the first
/// close_notify sent to a dialer that had hung up. Ignored here (such a write then fails with
/// EPIPE, which the core reports as a closed connection) unless the host installed a
/// handler of its own, which is kept. Once per process, on the first `Peer.create`.
pub(crate) fn ignore_sigpipe() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            use std::os::raw::c_int;
            // SIGPIPE is 13 on Linux, Android and Apple platforms; SIG_DFL 0, SIG_IGN 1.
            const SIGPIPE: c_int = 13;
            const SIG_DFL: usize = 0;
            const SIG_IGN: usize = 1;
            const SIG_ERR: usize = usize::MAX;
            extern "C" {
                fn signal(signum: c_int, handler: usize) -> usize;
            }
            // SAFETY: signal(2) with a valid signal number and SIG_IGN / the previous value.
            unsafe {
                let previous = signal(SIGPIPE, SIG_IGN);
                if previous != SIG_DFL && previous != SIG_ERR {
                    signal(SIGPIPE, previous);
                }
            }
        });
    }
}

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

/// How many threads the snap2p runtime has now (its two workers, and blocking-pool threads
/// that end after 10 s idle). For leak checks: on Linux a thread another pool starts from
/// a snap2p thread inherits its name, so counting threads named "snap2p" overcounts.
#[uniffi::export]
pub fn runtime_threads() -> u64 {
    host::runtime_threads() as u64
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
