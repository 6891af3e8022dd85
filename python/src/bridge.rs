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
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
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

/// The package's asyncio helpers (`python/snap2p/_aio.py`), looked up once rather than
/// per call (`drain()` calls it after every write).
pub(crate) fn aio(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    static AIO: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    AIO.get_or_try_init(py, || py.import("snap2p._aio").map(Bound::unbind))
        .map(|m| m.bind(py).clone())
}

/// Completes asyncio futures of one event loop from core threads without entering Python
/// there: a core thread queues the future with its outcome and, if the queue was empty,
/// pokes the loop; the loop then settles the queue on its own thread, where it holds the
/// GIL anyway (`snap2p._aio.settle`).
///
/// Why not `future_into_py` (a task per wait whose result a blocking-pool thread delivers
/// through `loop.call_soon_threadsafe`): that is a hand-off to one more thread, which makes
/// itself a Python thread state and takes the GIL, per wait. `drain()` waits about once per
/// 512 KiB written; on the 2-core bench machine that path cost the Python sender 0.15 CPU
/// s/GiB more than the native one, and a fifth of its throughput, since the listener
/// shares the cores (docs/BENCHMARKS.md, "Python's drain() wake-up").
///
/// The poke is one byte on a socket pair whose reading end the loop watches
/// (`loop.add_reader`). A loop that cannot watch a descriptor (Windows' proactor) is poked
/// by a Python callable instead (`call_soon_threadsafe`), run on the blocking pool through
/// [`attach`]'s door.
// weakref: the fallback poke holds it weakly (`_aio._new_wake`).
#[pyclass(frozen, weakref, module = "snap2p")]
pub struct LoopWake {
    inner: Arc<WakeInner>,
}

/// What a core thread holds to complete futures of one loop.
#[derive(Clone)]
pub struct LoopWaker(Arc<WakeInner>);

type Done = Vec<(Py<PyAny>, Option<snap2p::Error>)>;

struct WakeInner {
    /// Futures to complete, with what they complete with (`None`: success).
    done: std::sync::Mutex<Done>,
    poke: Poke,
}

enum Poke {
    #[cfg(unix)]
    Socket {
        rx: std::os::unix::net::UnixStream,
        tx: std::os::unix::net::UnixStream,
    },
    /// A Python callable that schedules `settle` on the loop (set once by `_aio`; it holds
    /// the loop and this object weakly, so nothing here keeps either alive).
    Call(OnceLock<Py<PyAny>>),
}

#[pymethods]
impl LoopWake {
    /// A wake poked through a socket pair if `socket` (the loop then watches `fileno()`),
    /// else through the callable given to `_set_poke`.
    #[new]
    fn new(socket: bool) -> PyResult<Self> {
        let poke = if socket {
            socket_poke()?
        } else {
            Poke::Call(OnceLock::new())
        };
        Ok(LoopWake {
            inner: Arc::new(WakeInner {
                done: Default::default(),
                poke,
            }),
        })
    }

    /// The descriptor the loop watches (`-1` without a socket pair).
    fn fileno(&self) -> i64 {
        match &self.inner.poke {
            #[cfg(unix)]
            Poke::Socket { rx, .. } => {
                use std::os::fd::AsRawFd;
                rx.as_raw_fd().into()
            }
            Poke::Call(_) => -1,
        }
    }

    /// Sets the callable that pokes a loop without a socket pair (once).
    fn _set_poke(&self, poke: Py<PyAny>) {
        if let Poke::Call(cell) = &self.inner.poke {
            let _ = cell.set(poke);
        }
    }

    /// The futures to complete now, each with `None` or the exception to set: the loop's
    /// side of a poke. The poke bytes are read first, so a poke after that is seen again.
    fn _take(&self) -> Vec<(Py<PyAny>, Option<PyErr>)> {
        #[cfg(unix)]
        if let Poke::Socket { rx, .. } = &self.inner.poke {
            use std::io::Read;
            let mut sink = [0u8; 64];
            while matches!((&*rx).read(&mut sink), Ok(n) if n > 0) {}
        }
        let done = std::mem::take(&mut *self.inner.lock());
        done.into_iter()
            .map(|(fut, e)| (fut, e.map(crate::error::to_py)))
            .collect()
    }
}

#[cfg(unix)]
fn socket_poke() -> PyResult<Poke> {
    let (rx, tx) = std::os::unix::net::UnixStream::pair()?;
    rx.set_nonblocking(true)?;
    tx.set_nonblocking(true)?;
    Ok(Poke::Socket { rx, tx })
}

#[cfg(not(unix))]
fn socket_poke() -> PyResult<Poke> {
    Err(pyo3::exceptions::PyNotImplementedError::new_err(
        "no socket pair wake on this platform",
    ))
}

impl LoopWake {
    /// What core threads keep to complete futures of this loop.
    pub fn waker(&self) -> LoopWaker {
        LoopWaker(self.inner.clone())
    }
}

impl WakeInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Done> {
        self.done.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LoopWaker {
    /// Completes `fut` (an asyncio future of this loop) with `outcome` on the loop's
    /// thread; a future cancelled meanwhile is left alone. Never enters Python here.
    pub fn complete(&self, fut: Py<PyAny>, outcome: Option<snap2p::Error>) {
        let first = {
            let mut done = self.0.lock();
            done.push((fut, outcome));
            done.len() == 1
        };
        // One poke per batch: while the queue is not empty, a poke is on its way.
        if first {
            self.poke();
        }
    }

    fn poke(&self) {
        match &self.0.poke {
            #[cfg(unix)]
            Poke::Socket { tx, .. } => {
                use std::io::Write;
                // Non-blocking: a full pair already holds a poke the loop has not read.
                let _ = (&*tx).write(&[1]);
            }
            Poke::Call(_) => {
                let inner = self.0.clone();
                snap2p::host::runtime().spawn_blocking(move || {
                    attach(|py| {
                        if let Poke::Call(cell) = &inner.poke {
                            if let Some(poke) = cell.get() {
                                // Fails only for a closed loop, whose waits are gone.
                                let _ = poke.call0(py);
                            }
                        }
                    });
                });
            }
        }
    }
}
