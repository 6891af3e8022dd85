//! How the core's threads reach Python, and what keeps interpreter exit safe.
//!
//! A Rust future's result reaches asyncio from a blocking-pool thread that attaches to the
//! interpreter and calls `loop.call_soon_threadsafe` (pyo3-async-runtimes does this; host
//! signers and callback subscriptions do the same). That call releases the GIL while it
//! writes the loop's wake-up pipe, so the awaiting coroutine (often the program's last)
//! can resume and the interpreter start finalizing before the thread takes the GIL back.
//! CPython then ends that thread with `pthread_exit`, and the Rust destructors the forced
//! unwind runs touch Python objects without the GIL: a crash at exit, roughly one run in
//! six after a dial by principal (issue 7).
//!
//! So every entry into Python from a core thread goes through [`attach`], which counts the
//! threads inside, and an `atexit` hook ([`close_entries`], run before finalization starts)
//! shuts the door and waits, without the GIL, for the threads inside to leave. A thread
//! refused at the door drops its Python references without the GIL: pyo3 queues those
//! decrefs and never touches the interpreter.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3_async_runtimes::generic::{self, ContextExt, Runtime};
use pyo3_async_runtimes::TaskLocals;

static INSIDE: AtomicUsize = AtomicUsize::new(0);
static CLOSED: AtomicBool = AtomicBool::new(false);

/// How long interpreter exit waits for threads still inside Python (a sync host signer
/// stuck on a prompt must not hang exit forever).
const EXIT_WAIT: Duration = Duration::from_secs(5);

struct Leave;

impl Drop for Leave {
    fn drop(&mut self) {
        INSIDE.fetch_sub(1, SeqCst);
    }
}

/// Runs `f` (which may attach to the interpreter) on a thread Python did not start;
/// `None` once the interpreter is shutting down (`f` and what it holds are dropped unrun).
fn enter<T>(f: impl FnOnce() -> T) -> Option<T> {
    // Count first, then look at the door: with `close_entries` doing the reverse (close,
    // then count), one of the two always sees the other.
    INSIDE.fetch_add(1, SeqCst);
    let _leave = Leave;
    if CLOSED.load(SeqCst) {
        return None;
    }
    Some(f())
}

/// Runs `f` attached to the interpreter, from a thread Python did not start; `None` once
/// the interpreter is shutting down.
pub fn attach<T>(f: impl FnOnce(Python<'_>) -> T) -> Option<T> {
    enter(|| Python::attach(f))
}

/// The `atexit` hook: no core thread enters Python after this returns.
#[pyfunction]
pub fn close_entries(py: Python<'_>) {
    CLOSED.store(true, SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + EXIT_WAIT;
        while INSIDE.load(SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Registers [`close_entries`] with `atexit` (at module import).
pub fn install(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(close_entries, m)?;
    m.py().import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

/// pyo3-async-runtimes' generic runtime, on the core's shared tokio runtime, with its
/// result delivery (`spawn_blocking`) going through [`attach`]'s door.
struct CoreRuntime;

tokio::task_local! {
    static TASK_LOCALS: OnceLock<TaskLocals>;
}

impl Runtime for CoreRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        snap2p::host::runtime().spawn(fut)
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        // `f` attaches to the interpreter itself; `enter` holds the door for it.
        snap2p::host::runtime().spawn_blocking(move || {
            enter(f);
        })
    }
}

impl ContextExt for CoreRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceLock::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|c| c.get().cloned())
            .unwrap_or_default()
    }
}

/// Hands `fut` to asyncio as an awaitable (the GIL is not held while it runs).
pub fn future_into_py<F, T>(py: Python<'_>, fut: F) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    generic::future_into_py::<CoreRuntime, _, _>(py, fut)
}

/// The caller's event loop and context (call on the loop's thread).
pub fn current_locals(py: Python<'_>) -> PyResult<TaskLocals> {
    generic::get_current_locals::<CoreRuntime>(py)
}

/// The package's asyncio helpers (`python/snap2p/_aio.py`).
pub(crate) fn aio(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("snap2p._aio")
}
