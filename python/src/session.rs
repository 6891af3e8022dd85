//! Connections, streams, their async iterators and callback subscriptions.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::bridge::{current_locals, future_into_py};
use bytes::Bytes;
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt};
use snap2p::{Error, ErrorCode};
use tokio::sync::{mpsc, watch};

use crate::error::{invalid, to_py};
use crate::peer::AliasCard;

/// Largest chunk one read asks the core for.
const MAX_CHUNK: usize = 1 << 20;

pub(crate) fn aio(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("snap2p._aio")
}

// ---------------------------------------------------------------------------------------
// Subscriptions

/// Shared "cancelled" flag, checked on the event-loop thread right before a callback runs.
#[pyclass(frozen, module = "snap2p")]
pub struct _CancelFlag {
    set: Arc<AtomicBool>,
}

#[pymethods]
impl _CancelFlag {
    fn __bool__(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }
}

/// A running callback subscription (``peer.on_connection``, ``conn.on_stream``).
///
/// ``cancel()`` stops it: no callback starts after ``cancel`` returns (when called from
/// the event loop's thread), and nothing that arrives afterwards is taken (it waits for
/// ``accept()``). An item the core handed over just before is refused: a stream is
/// reset, a connection closed with ERR_RESOURCE_EXHAUSTED. Dropping the last reference
/// cancels it too, so keep it; it is also a context manager.
#[pyclass(frozen, module = "snap2p")]
pub struct Subscription {
    task: snap2p::host::Subscription,
    cancelled: Arc<AtomicBool>,
}

#[pymethods]
impl Subscription {
    fn cancel(&self, py: Python<'_>) {
        self.cancelled.store(true, Ordering::SeqCst);
        // Waits (briefly) for a poll of the task in progress: never with the GIL held.
        py.detach(|| self.task.cancel());
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// False once cancelled or once its source ended (peer or connection closed).
    #[getter]
    fn active(&self) -> bool {
        !self.cancelled() && !self.task.is_finished()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) {
        self.cancel(py);
    }
}

/// Feeds each item `next` yields to `callback` on the caller's event loop (through
/// `call_soon_threadsafe`), until `next` yields `None` or the subscription is cancelled.
/// Python is only entered from the blocking pool, never from a tokio worker, and never
/// while a Rust lock is held.
pub fn subscribe<T, Fut>(
    py: Python<'_>,
    callback: Bound<'_, PyAny>,
    mut next: impl FnMut() -> Fut + Send + 'static,
    wrap: fn(Python<'_>, T) -> PyResult<Py<PyAny>>,
) -> PyResult<Subscription>
where
    T: Send + 'static,
    Fut: Future<Output = Option<T>> + Send + 'static,
{
    if !callback.is_callable() {
        return Err(invalid("the callback must be callable"));
    }
    let locals = current_locals(py)?;
    let cancelled = Arc::new(AtomicBool::new(false));
    let flag = Arc::new(Py::new(
        py,
        _CancelFlag {
            set: cancelled.clone(),
        },
    )?);
    let callback = Arc::new(callback.unbind());
    let task = snap2p::host::Subscription::spawn(async move {
        while let Some(item) = next().await {
            let (locals, flag, callback) = (locals.clone(), flag.clone(), callback.clone());
            let sent = tokio::task::spawn_blocking(move || {
                crate::bridge::attach(|py| -> PyResult<()> {
                    let arg = wrap(py, item)?;
                    let kwargs = PyDict::new(py);
                    kwargs.set_item("context", locals.context(py))?;
                    locals.event_loop(py).call_method(
                        "call_soon_threadsafe",
                        (
                            aio(py)?.getattr("dispatch")?,
                            flag.bind(py),
                            callback.bind(py),
                            arg,
                        ),
                        Some(&kwargs),
                    )?;
                    Ok(())
                })
            })
            .await;
            // The loop is closed (or the interpreter is going away): nobody to call.
            if !matches!(sent, Ok(Some(Ok(())))) {
                break;
            }
        }
    });
    Ok(Subscription { task, cancelled })
}

// ---------------------------------------------------------------------------------------
// Connection

/// An authenticated session with a remote Stacks principal.
///
/// Dropping the object does not close the session; ``close()`` or ``Peer.close()`` does.
#[pyclass(frozen, module = "snap2p")]
pub struct Connection {
    pub(crate) inner: snap2p::Connection,
}

pub fn wrap_connection(py: Python<'_>, c: snap2p::Connection) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, Connection { inner: c })?.into_any())
}

fn wrap_stream(py: Python<'_>, s: snap2p::Stream) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, Stream::new(s))?.into_any())
}

#[pymethods]
impl Connection {
    /// The authenticated peer, ``stacks:SP…``.
    #[getter]
    fn remote_principal(&self) -> String {
        self.inner.remote_principal().to_string()
    }

    /// The peer's current, verified AliasCard, if it sent one.
    #[getter]
    fn remote_alias(&self, py: Python<'_>) -> Option<AliasCard> {
        py.detach(|| self.inner.remote_alias()).map(AliasCard::from)
    }

    #[getter]
    fn remote_addr(&self) -> Option<String> {
        self.inner.remote_addr().map(|a| a.to_string())
    }

    #[getter]
    fn local_addr(&self) -> Option<String> {
        self.inner.local_addr().map(|a| a.to_string())
    }

    /// 32 bytes naming this session (the same on both ends).
    #[getter]
    fn session_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.session_id())
    }

    #[getter]
    fn is_closed(&self, py: Python<'_>) -> bool {
        py.detach(|| self.inner.is_closed())
    }

    /// Why the session ended (a ``Snap2pError``), or ``None`` while it is open.
    #[getter]
    fn close_reason(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        py.detach(|| self.inner.close_reason())
            .map(|e| to_py(e).into_value(py).into_any())
    }

    /// Opens a stream; ``label`` is for routing and logs only (never trust it).
    #[pyo3(signature = (label = None))]
    fn open_stream<'py>(
        &self,
        py: Python<'py>,
        label: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.inner.clone();
        future_into_py(py, async move {
            let s = conn.open_stream(label.as_deref()).await.map_err(to_py)?;
            Ok(Stream::new(s))
        })
    }

    /// The next stream the peer opens; raises once the session is closed.
    fn accept_stream<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.inner.clone();
        future_into_py(py, async move {
            let s = conn.accept_stream().await.map_err(to_py)?;
            Ok(Stream::new(s))
        })
    }

    /// ``async for stream in conn.streams()``: incoming streams until the session ends.
    fn streams(&self) -> StreamIterator {
        StreamIterator {
            conn: self.inner.clone(),
        }
    }

    /// Calls ``callback(stream)`` (plain or ``async def``) on this event loop for each
    /// incoming stream. Returns the ``Subscription`` that stops it.
    fn on_stream(&self, py: Python<'_>, callback: Bound<'_, PyAny>) -> PyResult<Subscription> {
        let conn = self.inner.clone();
        subscribe(
            py,
            callback,
            move || {
                let conn = conn.clone();
                async move { conn.accept_stream().await.ok() }
            },
            wrap_stream,
        )
    }

    /// Closes the session (queued data is flushed first). ``code`` 0 is a normal close.
    #[pyo3(signature = (code = 0, reason = ""))]
    fn close(&self, py: Python<'_>, code: u64, reason: &str) {
        py.detach(|| self.inner.close(ErrorCode::from_u64(code), reason));
    }

    /// Waits until the session has ended; returns its error code (0: normal close).
    fn wait_closed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.inner.clone();
        future_into_py(py, async move {
            let e = conn.closed().await;
            Ok(match e.code {
                ErrorCode::ConnectionClosed => 0,
                code => code.as_u64(),
            })
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Connection(remote_principal={:?}, remote_addr={:?})",
            self.inner.remote_principal().to_string(),
            self.inner.remote_addr().map(|a| a.to_string())
        )
    }
}

/// ``async for conn in peer.connections()``.
#[pyclass(frozen, module = "snap2p")]
pub struct ConnectionIterator {
    pub(crate) peer: Py<crate::peer::Peer>,
}

#[pymethods]
impl ConnectionIterator {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        aio(py)?
            .getattr("anext_connection")?
            .call1((self.peer.bind(py),))
    }
}

/// ``async for stream in conn.streams()``.
#[pyclass(frozen, module = "snap2p")]
pub struct StreamIterator {
    conn: snap2p::Connection,
}

#[pymethods]
impl StreamIterator {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.conn.clone();
        future_into_py(py, async move {
            match conn.accept_stream().await {
                Ok(s) => Ok(Stream::new(s)),
                // The session ended: so does the iteration (see `Connection.close_reason`).
                Err(_) => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }
}

// ---------------------------------------------------------------------------------------
// Stream

enum WriteCmd {
    Data(Bytes),
    Finish,
}

/// The caller's own `bytes` object as the buffer of a [`Bytes`], held instead of copied:
/// the core queues it as it is (`try_write_owned`), so the only copy of a write is the
/// one into the frame being sealed.
struct HeldBytes {
    /// Held only to keep the buffer alive.
    _obj: Py<PyBytes>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: a `bytes` object is immutable and its buffer never moves while a reference to
// the object is held, which `_obj` is for as long as `ptr` is used; reading it needs no
// GIL. (Dropping `_obj` without the GIL is deferred by pyo3 to the next time it is held.)
unsafe impl Send for HeldBytes {}
unsafe impl Sync for HeldBytes {}

impl HeldBytes {
    fn bytes(obj: &Bound<'_, PyBytes>) -> Bytes {
        let all = obj.as_bytes();
        Bytes::from_owner(HeldBytes {
            _obj: obj.clone().unbind(),
            ptr: all.as_ptr(),
            len: all.len(),
        })
    }
}

impl AsRef<[u8]> for HeldBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the `Send` impl; `ptr..ptr+len` is `_obj`'s buffer.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

#[derive(Default)]
struct WriteProgress {
    /// Commands completed (written or failed).
    done: u64,
    /// Bytes of completed `Data` commands.
    done_bytes: u64,
    /// The first write error; later writes are dropped.
    error: Option<Error>,
}

/// Bytes read from the core that Python has not taken yet.
///
/// A read is two steps: a Rust future moves a chunk from the session into this stash, then
/// the awaiting coroutine takes it on the event-loop thread. If the read is cancelled in
/// between (``asyncio.wait_for``), the chunk stays here for the next read instead of being
/// lost with the cancelled future.
#[derive(Default)]
struct Stash {
    chunks: VecDeque<Bytes>,
    eof: bool,
}

/// A bidirectional byte stream in a session.
///
/// Reading: ``await read(n)`` (``b""`` at end of stream), ``async for chunk in stream``.
/// Writing follows ``asyncio.StreamWriter``: ``write(data)`` queues and returns at once;
/// ``await drain()`` is flow control: it returns at once while at most 1 MiB waits to be
/// taken by the session, else waits until at most 256 KiB does, and raises the first write
/// error. After ``close()`` (end-of-stream after the queued data), ``drain()`` waits for
/// everything, end-of-stream included. ``reset(code)`` aborts both directions.
#[pyclass(frozen, module = "snap2p")]
pub struct Stream {
    inner: snap2p::Stream,
    stash: Arc<Mutex<Stash>>,
    writes: mpsc::UnboundedSender<WriteCmd>,
    /// Commands queued, and the bytes of the `Data` ones.
    queued: AtomicU64,
    queued_bytes: AtomicU64,
    /// `close()` was queued: `drain()` then waits for everything.
    closing: AtomicBool,
    progress: watch::Receiver<WriteProgress>,
}

/// `drain()` returns at once while at most this much is queued and not yet taken by the
/// session (as asyncio's write buffer high-water mark: a round trip to the core for every
/// write would cost more than the write). Wide marks: each wait that does happen is a
/// hand-off from a core thread into the interpreter (a blocking-pool thread takes the GIL
/// to wake asyncio), so a 64 KiB writer waits once per 12 writes, not once per 3...
const DRAIN_HIGH_WATER: u64 = 1024 * 1024;
/// ...and otherwise waits until at most this much is.
const DRAIN_LOW_WATER: u64 = 256 * 1024;

impl Stream {
    pub fn new(inner: snap2p::Stream) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (progress_tx, progress) = watch::channel(WriteProgress::default());
        // One writer task per stream keeps queued writes in order; it ends (and lets the
        // core release the stream) when this object is dropped.
        snap2p::host::runtime().spawn(write_loop(inner.clone(), rx, progress_tx));
        Stream {
            inner,
            stash: Arc::default(),
            writes: tx,
            queued: AtomicU64::new(0),
            queued_bytes: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            progress,
        }
    }

    fn write_bytes(&self, obj: &Bound<'_, PyBytes>) -> PyResult<()> {
        let py = obj.py();
        if obj.as_bytes().is_empty() {
            return Ok(());
        }
        let b = HeldBytes::bytes(obj);
        // Fast path: with nothing queued before it, what fits the send buffer goes straight
        // to the core (queued by reference under the session lock, GIL released); only the
        // rest is queued for the writer task. Order holds: every earlier command has
        // completed.
        let idle = {
            let p = self.progress.borrow();
            p.error.is_none() && p.done == self.queued.load(Ordering::SeqCst)
        };
        if idle {
            if let Ok(n) = py.detach(|| self.inner.try_write_owned(&b)) {
                if n == b.len() {
                    return Ok(());
                }
                return self.enqueue(WriteCmd::Data(b.slice(n..)));
            }
            // An error (stream reset or finished) is reported the usual way: the writer
            // task meets it and `drain()` raises it.
        }
        self.enqueue(WriteCmd::Data(b))
    }

    fn enqueue(&self, cmd: WriteCmd) -> PyResult<()> {
        if let Some(e) = &self.progress.borrow().error {
            return Err(to_py(e.clone()));
        }
        self.queued.fetch_add(1, Ordering::SeqCst);
        match &cmd {
            WriteCmd::Data(d) => {
                self.queued_bytes
                    .fetch_add(d.len() as u64, Ordering::SeqCst);
            }
            WriteCmd::Finish => self.closing.store(true, Ordering::SeqCst),
        }
        self.writes
            .send(cmd)
            .map_err(|_| to_py(Error::new(ErrorCode::StreamClosed, "stream writer is gone")))
    }
}

async fn write_loop(
    stream: snap2p::Stream,
    mut rx: mpsc::UnboundedReceiver<WriteCmd>,
    progress: watch::Sender<WriteProgress>,
) {
    let mut failed = false;
    while let Some(cmd) = rx.recv().await {
        let bytes = match &cmd {
            WriteCmd::Data(d) => d.len() as u64,
            WriteCmd::Finish => 0,
        };
        if !failed {
            let result = match cmd {
                WriteCmd::Data(d) => stream.write_all_owned(d).await,
                WriteCmd::Finish => match stream.finish() {
                    // A second close() is not an error.
                    Err(e) if e.code == ErrorCode::StreamClosed => Ok(()),
                    r => r,
                },
            };
            if let Err(e) = result {
                failed = true;
                progress.send_modify(|p| p.error = Some(e));
            }
        }
        progress.send_modify(|p| {
            p.done += 1;
            p.done_bytes += bytes;
        });
    }
}

#[pymethods]
impl Stream {
    #[getter]
    fn id(&self) -> u64 {
        self.inner.id()
    }

    #[getter]
    fn label(&self) -> Option<&str> {
        self.inner.label()
    }

    /// Reads at most ``n`` bytes (``n < 0``: until end of stream); ``b""`` at end of
    /// stream. Cancelling a pending read loses no data.
    #[pyo3(signature = (n = -1))]
    fn read<'py>(slf: &Bound<'py, Self>, n: isize) -> PyResult<Bound<'py, PyAny>> {
        aio(slf.py())?.getattr("read")?.call1((slf, n))
    }

    /// Queues ``data`` (bytes-like) for sending; see ``drain``.
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = data.py();
        // `bytes` is immutable: it can be read in place (and without the GIL), and queued
        // by reference.
        if let Ok(b) = data.cast::<PyBytes>() {
            return self.write_bytes(b);
        }
        // bytes(5) would be five zero bytes: refuse numbers outright.
        if data.is_instance_of::<PyInt>() {
            return Err(invalid("write() takes bytes-like data"));
        }
        // bytearray, memoryview and the like (mutable): copy through bytes().
        let copy = py
            .import("builtins")?
            .getattr("bytes")?
            .call1((data,))
            .map_err(|_| invalid("write() takes bytes-like data"))?;
        self.write_bytes(copy.cast::<PyBytes>()?)
    }

    /// Flow control: returns at once while at most 1 MiB waits to be taken by the session,
    /// else waits until at most 256 KiB does; after ``close()``, waits for everything
    /// (end-of-stream included). Raises the first write error.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let target = self.queued.load(Ordering::SeqCst);
        let target_bytes = self.queued_bytes.load(Ordering::SeqCst);
        let closing = self.closing.load(Ordering::SeqCst);
        {
            let p = self.progress.borrow();
            if let Some(e) = &p.error {
                return Err(to_py(e.clone()));
            }
            if p.done >= target
                || (!closing && target_bytes - p.done_bytes.min(target_bytes) <= DRAIN_HIGH_WATER)
            {
                return aio(py)?.getattr("ready")?.call0();
            }
        }
        let mut progress = self.progress.clone();
        future_into_py(py, async move {
            let result = progress
                .wait_for(|p| {
                    p.done >= target
                        || p.error.is_some()
                        || (!closing
                            && target_bytes - p.done_bytes.min(target_bytes) <= DRAIN_LOW_WATER)
                })
                .await
                .map(|p| p.error.clone());
            match result {
                Ok(None) => Ok(()),
                Ok(Some(e)) => Err(to_py(e)),
                Err(_) => Err(to_py(Error::new(
                    ErrorCode::StreamClosed,
                    "stream writer is gone",
                ))),
            }
        })
    }

    /// Half-closes: end-of-stream is sent after the queued data. Reading goes on.
    fn close(&self) -> PyResult<()> {
        self.enqueue(WriteCmd::Finish)
    }

    /// Aborts both directions at once, telling the peer ``code`` (default 1).
    #[pyo3(signature = (code = 1))]
    fn reset(&self, py: Python<'_>, code: u64) {
        py.detach(|| self.inner.reset(ErrorCode::from_u64(code)));
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        aio(slf.py())?.getattr("anext_chunk")?.call1((slf,))
    }

    /// Takes up to ``n`` stashed bytes: ``None`` if nothing is stashed, ``b""`` at end of
    /// stream. Internal (used by ``read``).
    fn _take<'py>(&self, py: Python<'py>, n: usize) -> Option<Bound<'py, PyBytes>> {
        let taken = {
            let mut stash = self.stash.lock().unwrap();
            match stash.chunks.pop_front() {
                Some(mut chunk) => {
                    if chunk.len() > n.max(1) {
                        let rest = chunk.split_off(n.max(1));
                        stash.chunks.push_front(rest);
                    }
                    Some(chunk)
                }
                None if stash.eof => Some(Bytes::new()),
                None => None,
            }
        };
        taken.map(|b| PyBytes::new(py, &b))
    }

    /// Waits for the next chunk (at most ``n`` bytes) and stashes it. Internal.
    fn _fill<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyAny>> {
        let stream = self.inner.clone();
        let stash = self.stash.clone();
        let n = n.clamp(1, MAX_CHUNK);
        future_into_py(py, async move {
            // No await between the read completing and the stash push: a cancelled read
            // is dropped either before it took bytes or after they are stashed.
            match stream.read_chunk(n).await.map_err(to_py)? {
                Some(chunk) => stash.lock().unwrap().chunks.push_back(chunk),
                None => stash.lock().unwrap().eof = true,
            }
            Ok(())
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Stream(id={}, label={:?})",
            self.inner.id(),
            self.inner.label()
        )
    }
}
