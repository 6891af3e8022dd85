//! Connections, streams, their async iterators and callback subscriptions.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::bridge::{aio, current_locals, future_into_py, LoopWake, LoopWaker};
use bytes::{Buf, Bytes};
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt};
use snap2p::{Error, ErrorCode, ReadInto};

use crate::error::{invalid, to_py};
use crate::identity::AliasCard;

/// Largest chunk one read asks the core for.
const MAX_CHUNK: usize = 1 << 20;

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

    /// A short id for logs and events: the first 8 bytes of the session id, hex (the
    /// ``connection`` of this session's events, the same at both ends).
    #[getter]
    fn id(&self) -> String {
        self.inner.id()
    }

    /// This session's counters now (docs/EVENTS.md, "Counters").
    fn stats(&self, py: Python<'_>) -> crate::events::ConnectionStats {
        py.detach(|| self.inner.stats()).into()
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

    /// Presents a PermissionGrant (wire bytes) to the other node; raises with the node's
    /// code when refused (docs/PROTOCOL.md §33.4).
    fn present_grant<'py>(&self, py: Python<'py>, grant: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.inner.clone();
        future_into_py(py, async move {
            conn.present_grant(&grant).await.map_err(to_py)?;
            Ok(())
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

/// The caller's own `bytes` object as the buffer of a [`Bytes`], held instead of copied:
/// the core queues it as it is (`try_write` with owned `Bytes`), so the only copy of a
/// write is the one into the frame being sealed.
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

/// What a read found in the core.
enum Got {
    Chunk(Bytes),
    End,
    Nothing,
}

/// The stream's read waker in the core: when the session has something for the stream
/// (bytes, its end, an error), it completes the reads waiting in `_fill` through their
/// loops' [`LoopWake`]s. No task and no Python on the core's thread; the woken reads look
/// again (`_take`).
#[derive(Default)]
struct ReadWake {
    state: Mutex<ReadWaiters>,
}

#[derive(Default)]
struct ReadWaiters {
    /// Counts wake-ups: `_fill` compares it around its registration to miss none.
    wakes: u64,
    waiters: Vec<Waiter>,
}

impl ReadWake {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReadWaiters> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::task::Wake for ReadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waiters = {
            let mut r = self.lock();
            r.wakes += 1;
            std::mem::take(&mut r.waiters)
        };
        for (wake, fut) in waiters {
            wake.complete(fut, None);
        }
    }
}

/// The writing side of a stream. Flow control is the core's: its send buffer takes what
/// `write()` hands over (`Stream::try_write`); only what it has no room for yet waits here,
/// and is moved into it when the core signals room (`Stream::writable`).
#[derive(Default)]
struct Writer {
    /// Bytes written but not yet taken by the core, in order (bytes objects held, not
    /// copied).
    backlog: VecDeque<Bytes>,
    /// A task waits for the core's writable signal (the stream's one waiter on it) to move
    /// the backlog, then the end-of-stream. Always set while the backlog is not empty.
    pumping: bool,
    /// `close()` was called: end-of-stream goes after the backlog.
    closing: bool,
    /// The end-of-stream was handed to the core.
    finished: bool,
    /// The first write error; later writes and `drain()` raise it.
    error: Option<Error>,
    /// `drain()` futures waiting for the pump run to end, and the loops they belong to.
    waiters: Vec<Waiter>,
}

struct WriteSide {
    state: Mutex<Writer>,
}

impl WriteSide {
    /// Never held across an await, nor while entering Python.
    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Writer {
    fn fail(&mut self, e: Error) {
        self.error.get_or_insert(e);
        self.backlog.clear();
    }

    /// Hands the backlog to the core while it has room, then the end-of-stream once
    /// `close()` was called and nothing is left.
    fn hand_over(&mut self, stream: &snap2p::Stream) {
        let mut queued = false;
        while let Some(front) = self.backlog.front_mut() {
            match stream.try_write(front.clone()) {
                Ok(0) => break,
                Ok(n) if n == front.len() => {
                    queued = true;
                    self.backlog.pop_front();
                }
                Ok(n) => {
                    queued = true;
                    front.advance(n);
                }
                Err(e) => self.fail(e),
            }
        }
        if self.backlog.is_empty() && self.closing && !self.finished && self.error.is_none() {
            self.finish(stream);
        } else if queued {
            stream.flush();
        }
    }

    /// End-of-stream (sends what was queued before it).
    fn finish(&mut self, stream: &snap2p::Stream) {
        self.finished = true;
        match stream.finish() {
            // Already finished or reset: nothing left to end.
            Err(e) if e.code == ErrorCode::StreamClosed => {}
            Err(e) => self.fail(e),
            Ok(()) => {}
        }
    }

    /// Starts the task that waits for room and hands the backlog over, unless one runs.
    fn pump(&mut self, stream: &snap2p::Stream, side: &Arc<WriteSide>) {
        if self.pumping {
            return;
        }
        self.pumping = true;
        let (stream, side) = (stream.clone(), side.clone());
        // Not tied to the Python object: what was written is delivered after it is gone,
        // as a socket's buffered writes are. It ends once the backlog is handed over or
        // the stream fails (a stream that can no longer be written ends the wait).
        snap2p::host::runtime().spawn(async move {
            loop {
                let room = stream.writable().await;
                let mut w = side.lock();
                match room {
                    Ok(()) => w.hand_over(&stream),
                    // Ended by close() while a drain() waited for room: not a failure.
                    Err(_) if w.finished => {}
                    Err(e) => w.fail(e),
                }
                if w.backlog.is_empty() {
                    w.pumping = false;
                    let (waiters, outcome) = (std::mem::take(&mut w.waiters), w.error.clone());
                    drop(w);
                    for (wake, fut) in waiters {
                        wake.complete(fut, outcome.clone());
                    }
                    return;
                }
            }
        });
    }
}

/// A read or drain wait: an asyncio future, and the wake of its loop that completes it.
type Waiter = (LoopWaker, Py<PyAny>);

/// A new wait, for `read()` or `drain()`: a future its loop's wake completes. `take` takes
/// the list of waits held for the event; the cancelled ones are dropped from it (Python, so
/// with no lock held), the new one is added, and `keep` puts the list back while the event
/// is still to come, else returns it with the outcome to complete every wait with now (the
/// event came while the list was out). So a stream awaited with a timeout, over and over,
/// keeps no list growing, and no wait misses its event.
///
/// The locks `take` and `keep` take are never held while entering Python nor across a
/// wait, so taking them with the GIL held cannot deadlock (and the read path saves the
/// GIL's release).
fn wait<'py>(
    py: Python<'py>,
    take: impl FnOnce() -> Vec<Waiter>,
    keep: impl FnOnce(Vec<Waiter>) -> Option<(Vec<Waiter>, Option<Error>)>,
) -> PyResult<Bound<'py, PyAny>> {
    let (wake, fut): (Bound<'py, LoopWake>, Bound<'py, PyAny>) =
        aio(py)?.getattr("waiter")?.call0()?.extract()?;
    let mut waiters: Vec<Waiter> = take()
        .into_iter()
        .filter(|(_, f)| {
            // A future that cannot say is kept.
            !f.bind(py)
                .call_method0("done")
                .and_then(|d| d.is_truthy())
                .unwrap_or(false)
        })
        .collect();
    waiters.push((wake.get().waker(), fut.clone().unbind()));
    if let Some((waiters, outcome)) = keep(waiters) {
        for (wake, f) in waiters {
            wake.complete(f, outcome.clone());
        }
    }
    Ok(fut)
}

/// A bidirectional byte stream in a session.
///
/// Reading: ``await read(n)`` (``b""`` at end of stream), ``async for chunk in stream``.
/// Writing follows ``asyncio.StreamWriter``: ``write(data)`` queues and returns at once;
/// ``await drain()`` is flow control: it returns at once while the session's send buffer
/// (1 MiB per stream) has taken everything written and has room, else waits until it has,
/// and raises the first write error. After ``close()`` (end-of-stream after the queued
/// data), ``drain()`` waits for everything, end-of-stream included. ``reset(code)``
/// aborts both directions.
#[pyclass(frozen, module = "snap2p")]
pub struct Stream {
    inner: snap2p::Stream,
    /// The end of the stream was read: later reads answer it without asking the core,
    /// which may have let the stream go. Held across each read, so the read that meets the
    /// end and the flag go together. Bytes leave the core only on the loop's thread, in a
    /// call that returns them (`_take`, `_take_into`), never in a wait that could be
    /// cancelled (`_fill`): a cancelled read (``asyncio.wait_for``) loses nothing.
    read_end: Mutex<bool>,
    reader: Arc<ReadWake>,
    writer: Arc<WriteSide>,
}

impl Stream {
    pub fn new(inner: snap2p::Stream) -> Self {
        Stream {
            inner,
            read_end: Mutex::default(),
            reader: Arc::default(),
            writer: Arc::new(WriteSide {
                state: Mutex::default(),
            }),
        }
    }

    /// The next chunk of at most `n` bytes from the core (which then holds the stream's
    /// read waker, [`ReadWake`], if it has nothing yet).
    fn take_or_poll(&self, n: usize) -> Result<Got, Error> {
        let n = n.clamp(1, MAX_CHUNK);
        let mut ended = self.read_end.lock().unwrap_or_else(|p| p.into_inner());
        if *ended {
            return Ok(Got::End);
        }
        let waker = std::task::Waker::from(self.reader.clone());
        match self
            .inner
            .poll_read_chunk(&mut Context::from_waker(&waker), n)
        {
            Poll::Ready(Ok(Some(chunk))) => Ok(Got::Chunk(chunk)),
            Poll::Ready(Ok(None)) => {
                *ended = true;
                Ok(Got::End)
            }
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(Got::Nothing),
        }
    }

    /// Copies into `out` what the core holds, up to its length and across chunks:
    /// `Some(n)` bytes, `Some(0)` at end of stream, `None` if nothing has arrived yet (then
    /// `_fill`).
    fn take_into(&self, mut out: &mut [u8]) -> Result<Option<usize>, Error> {
        let mut ended = self.read_end.lock().unwrap_or_else(|p| p.into_inner());
        if *ended {
            return Ok(Some(0));
        }
        let max = out.len();
        Ok(match self.inner.try_read_into(&mut out, max)? {
            ReadInto::Bytes(n) => Some(n),
            ReadInto::End => {
                *ended = true;
                Some(0)
            }
            ReadInto::Nothing => None,
        })
    }

    /// Whether `drain()` can return at once (else a pump runs, started here if needed).
    fn drained(&self) -> Result<bool, Error> {
        let mut w = self.writer.lock();
        if let Some(e) = &w.error {
            return Err(e.clone());
        }
        // Everything, end-of-stream included, was handed over.
        if w.finished {
            return Ok(true);
        }
        if w.pumping {
            return Ok(false);
        }
        // No pump runs, so the stream's waiter slot is free: a look at the signal. A
        // stream that can no longer be written has nothing to wait for (the next write()
        // reports why).
        let noop = std::task::Waker::noop();
        match self.inner.poll_writable(&mut Context::from_waker(noop)) {
            Poll::Ready(_) => Ok(true),
            Poll::Pending => {
                w.pump(&self.inner, &self.writer);
                Ok(false)
            }
        }
    }

    fn write_bytes(&self, py: Python<'_>, mut b: Bytes) -> PyResult<()> {
        if b.is_empty() {
            return Ok(());
        }
        py.detach(|| {
            let mut w = self.writer.lock();
            if let Some(e) = &w.error {
                return Err(e.clone());
            }
            if w.closing {
                return Err(Error::new(ErrorCode::StreamClosed, "write() after close()"));
            }
            // In order: straight to the core only when nothing written before waits.
            if w.backlog.is_empty() {
                match self.inner.try_write(b.clone()) {
                    Ok(n) => {
                        if n > 0 {
                            self.inner.flush();
                        }
                        if n == b.len() {
                            return Ok(());
                        }
                        b.advance(n);
                    }
                    Err(e) => {
                        w.fail(e.clone());
                        return Err(e);
                    }
                }
            }
            w.backlog.push_back(b);
            w.pump(&self.inner, &self.writer);
            Ok(())
        })
        .map_err(to_py)
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

    /// Reads into ``buf`` (a writable bytes-like object: ``bytearray``, ``memoryview``)
    /// from its start: the number of bytes copied, everything that has arrived up to
    /// ``len(buf)`` (waiting only while nothing has), or 0 at end of stream. Allocates
    /// nothing per read. Cancelling a pending read loses no data.
    fn readinto<'py>(
        slf: &Bound<'py, Self>,
        buf: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        aio(slf.py())?.getattr("readinto")?.call1((slf, buf))
    }

    /// Queues ``data`` (bytes-like) for sending; see ``drain``.
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = data.py();
        // `bytes` is immutable: it can be read in place (and without the GIL), and queued
        // by reference.
        if let Ok(b) = data.cast::<PyBytes>() {
            return self.write_bytes(py, HeldBytes::bytes(b));
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
        self.write_bytes(py, HeldBytes::bytes(copy.cast::<PyBytes>()?))
    }

    /// Flow control: returns at once while the session's send buffer has taken everything
    /// written and has room, else waits until it has (the core's writable signal); after
    /// ``close()``, waits for everything (end-of-stream included). Raises the first write
    /// error.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if py.detach(|| self.drained()).map_err(to_py)? {
            return aio(py)?.getattr("READY");
        }
        // A pump runs: wait for the end of its run (which may have come meanwhile).
        wait(
            py,
            || std::mem::take(&mut self.writer.lock().waiters),
            |waiters| {
                let mut w = self.writer.lock();
                if w.pumping && !w.finished && w.error.is_none() {
                    w.waiters.extend(waiters);
                    return None;
                }
                Some((waiters, w.error.clone()))
            },
        )
    }

    /// Half-closes: end-of-stream is sent after the queued data. Reading goes on.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            let mut w = self.writer.lock();
            if let Some(e) = &w.error {
                return Err(e.clone());
            }
            if !w.closing {
                w.closing = true;
                // With a backlog, the pump ends the stream after it.
                if w.backlog.is_empty() {
                    w.finish(&self.inner);
                }
            }
            Ok(())
        })
        .map_err(to_py)
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

    /// Takes up to ``n`` bytes from the core: ``None`` if there are none yet (then
    /// ``_fill``), ``b""`` at end of stream; raises the stream's error. Internal (used by
    /// ``read``).
    fn _take<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Option<Bound<'py, PyBytes>>> {
        match py.detach(|| self.take_or_poll(n)).map_err(to_py)? {
            Got::Chunk(b) => Ok(Some(PyBytes::new(py, &b))),
            Got::End => Ok(Some(PyBytes::new(py, b""))),
            Got::Nothing => Ok(None),
        }
    }

    /// Copies what ``_take`` would take into ``pinned`` (the ``ctypes`` array over the
    /// caller's buffer that ``_aio.readinto`` makes), up to its size and across chunks: the
    /// count, 0 at end of stream, ``None`` if nothing has arrived yet (then ``_fill``);
    /// raises the stream's error. Internal (used by ``readinto``).
    ///
    /// Why ``ctypes``: the buffer protocol (``PyObject_GetBuffer``) is in the stable ABI
    /// only from Python 3.11, and this module is one abi3 wheel for 3.9 and later.
    /// ``ctypes``' ``from_buffer`` takes the same export, so the array's memory stays
    /// where it is while the array lives (a bytearray refuses to resize meanwhile), and
    /// ``addressof``/``sizeof`` say where it is.
    fn _take_into(&self, py: Python<'_>, pinned: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        let ctypes = py.import("ctypes")?;
        if !pinned.is_instance(&ctypes.getattr("Array")?)? {
            return Err(invalid(
                "_take_into() takes the ctypes array readinto() makes",
            ));
        }
        let addr: usize = ctypes.getattr("addressof")?.call1((pinned,))?.extract()?;
        let len: usize = ctypes.getattr("sizeof")?.call1((pinned,))?.extract()?;
        if addr == 0 || len == 0 {
            return Err(invalid("readinto() needs a buffer of at least 1 byte"));
        }
        py.detach(|| {
            // SAFETY: `pinned`, alive for the whole call, holds the buffer exported: its
            // owner can neither resize nor free it; `from_buffer` checked that it is
            // writable, contiguous and `len` bytes long. The GIL is released meanwhile, as
            // `socket.recv_into` releases it while the kernel writes into the same kind of
            // buffer: another thread touching it then is that program's race, not memory
            // unsafety here.
            let out = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, len) };
            self.take_into(out)
        })
        .map_err(to_py)
    }

    /// The read and the drain waits held for a wake-up: ``(reads, drains)``. Internal
    /// (tests: cancelled waits must not pile up).
    fn _waits(&self, py: Python<'_>) -> (usize, usize) {
        py.detach(|| {
            (
                self.reader.lock().waiters.len(),
                self.writer.lock().waiters.len(),
            )
        })
    }

    /// After ``_take`` found nothing: an awaitable that completes once the core has
    /// something for the stream (bytes, the end or an error; then ``_take`` again).
    /// Internal.
    fn _fill<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let seen = self.reader.lock().wakes;
        // A look that takes nothing (`_take` does), and otherwise leaves the waker with the
        // core; a wake-up after it moves `wakes` past `seen`.
        let ready = py.detach(|| {
            let waker = std::task::Waker::from(self.reader.clone());
            self.inner
                .poll_readable(&mut Context::from_waker(&waker))
                .is_ready()
        });
        if ready {
            return aio(py)?.getattr("READY");
        }
        // Until the next wake-up (one after the look moved `wakes` past `seen`).
        wait(
            py,
            || std::mem::take(&mut self.reader.lock().waiters),
            |waiters| {
                let mut r = self.reader.lock();
                if r.wakes == seen {
                    r.waiters.extend(waiters);
                    return None;
                }
                Some((waiters, None))
            },
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "Stream(id={}, label={:?})",
            self.inner.id(),
            self.inner.label()
        )
    }
}
