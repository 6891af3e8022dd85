//! `Connection` and `Stream` handles.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use napi::bindgen_prelude::{Buffer, BufferSlice, FromNapiValue, Object, Uint8ArraySlice};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, JsDeferred, Status};
use napi_derive::napi;
use snap2p::host::{self, Subscription};
use snap2p::identity::AliasCard;
use snap2p::{Connection, Error, ErrorCode, ReadInto, Stream};

use crate::error::{invalid, to_js, ErrorInfo, ResultExt};
use crate::events::ConnectionStatsJs;
use crate::util::on_core;

/// Largest chunk one `read` returns (the Node stream's highWaterMark is typically far
/// smaller; this bounds a single copy).
const MAX_READ: u32 = 1 << 20;

/// A verified AliasCard.
#[napi(object)]
pub struct AliasCardJs {
    pub principal: String,
    pub alias: String,
    pub display_name: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The signed wire bytes, to pass on or store.
    pub wire: Buffer,
}

impl From<AliasCard> for AliasCardJs {
    fn from(c: AliasCard) -> Self {
        AliasCardJs {
            wire: c.encode().into(),
            principal: c.principal.to_string(),
            alias: c.alias,
            display_name: c.display_name,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
        }
    }
}

#[napi]
pub struct NativeConnection {
    inner: Connection,
}

impl NativeConnection {
    pub fn new(inner: Connection) -> Self {
        NativeConnection { inner }
    }

    /// The core's handle.
    pub fn core(&self) -> &Connection {
        &self.inner
    }
}

fn code_from_js(code: Option<u32>) -> ErrorCode {
    code.map_or(ErrorCode::Ok, |c| ErrorCode::from_u64(c.into()))
}

#[napi]
impl NativeConnection {
    #[napi(getter)]
    pub fn remote_principal(&self) -> String {
        self.inner.remote_principal().to_string()
    }

    /// The peer's AliasCard, if it sent a valid, unexpired one.
    #[napi(getter)]
    pub fn remote_alias(&self) -> Option<AliasCardJs> {
        self.inner.remote_alias().map(Into::into)
    }

    #[napi(getter)]
    pub fn session_id(&self) -> String {
        hex::encode(self.inner.session_id())
    }

    /// A short id for logs and events: the first 8 bytes of the session id, hex (the
    /// `connection` of this session's events, the same at both ends).
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.inner.id()
    }

    /// This session's counters now (docs/EVENTS.md, "Counters").
    #[napi]
    pub fn stats(&self) -> ConnectionStatsJs {
        self.inner.stats().into()
    }

    #[napi(getter)]
    pub fn remote_address(&self) -> Option<String> {
        self.inner.remote_addr().map(|a| a.to_string())
    }

    #[napi(getter)]
    pub fn local_address(&self) -> Option<String> {
        self.inner.local_addr().map(|a| a.to_string())
    }

    /// Whether both sides announced capability `cap` (e.g. `"px-1"`).
    #[napi]
    pub fn supports(&self, cap: String) -> bool {
        self.inner.supports(&cap)
    }

    /// Opens a stream. Synchronous, as in the TypeScript API: opening only allocates an
    /// id and queues OPEN_STREAM, so the core's future completes on its first poll.
    #[napi]
    pub fn open_stream(&self, label: Option<String>) -> napi::Result<NativeStream> {
        let fut = pin!(self.inner.open_stream(label.as_deref()));
        match fut.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => Ok(NativeStream::new(r.js()?)),
            // Not reachable with the current core; reported rather than blocked on.
            Poll::Pending => Err(to_js(Error::new(
                ErrorCode::Internal,
                "opening a stream did not complete immediately",
            ))),
        }
    }

    /// Presents a PermissionGrant (its wire bytes) to the other node; rejects with the
    /// node's code when refused (docs/PROTOCOL.md §33.4).
    #[napi]
    pub async fn present_grant(&self, grant: Buffer) -> napi::Result<()> {
        let conn = self.inner.clone();
        let bytes = grant.to_vec();
        on_core(async move { conn.present_grant(&bytes).await }).await
    }

    /// The next stream the peer opens; rejects once the connection is closed.
    #[napi]
    pub async fn accept_stream(&self) -> napi::Result<NativeStream> {
        let conn = self.inner.clone();
        let inner = on_core(async move { conn.accept_stream().await }).await?;
        Ok(NativeStream::new(inner))
    }

    /// Closes the connection gracefully (queued data is flushed first) with `code`
    /// (default 0, a normal close).
    #[napi]
    pub fn close(&self, code: Option<u32>, reason: Option<String>) {
        self.inner
            .close(code_from_js(code), reason.as_deref().unwrap_or(""));
    }

    #[napi(getter)]
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Resolves once the connection has ended, with why.
    #[napi]
    pub async fn closed(&self) -> napi::Result<ErrorInfo> {
        let conn = self.inner.clone();
        let e = on_core(async move { Ok(conn.closed().await) }).await?;
        Ok(ErrorInfo::from(&e))
    }

    #[napi(getter)]
    pub fn close_reason(&self) -> Option<ErrorInfo> {
        self.inner.close_reason().as_ref().map(ErrorInfo::from)
    }

    /// Calls `callback(info)` once the connection has ended. The callback is a weak
    /// threadsafe function: watching never keeps the process alive. The returned handle
    /// stops the watch.
    #[napi]
    pub fn watch_closed(&self, callback: CloseFn) -> NativeSubscription {
        let conn = self.inner.clone();
        let sub = Subscription::spawn(async move {
            let e = conn.closed().await;
            // NonBlocking: the JavaScript side is never waited on from a core task.
            callback.call(ErrorInfo::from(&e), ThreadsafeFunctionCallMode::NonBlocking);
        });
        NativeSubscription { inner: sub }
    }
}

/// `(info) => void`, weak (see `watch_closed`).
pub type CloseFn = ThreadsafeFunction<ErrorInfo, (), ErrorInfo, Status, false, true>;

/// A running callback subscription; `cancel()` (or garbage collection) stops it.
#[napi]
pub struct NativeSubscription {
    inner: Subscription,
}

#[napi]
impl NativeSubscription {
    #[napi]
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    #[napi(getter)]
    pub fn finished(&self) -> bool {
        self.inner.is_finished()
    }
}

#[napi]
pub struct NativeStream {
    inner: Stream,
}

impl NativeStream {
    fn new(inner: Stream) -> Self {
        NativeStream { inner }
    }
}

/// A Node Buffer of `len` bytes, uninitialised (`napi_create_buffer`, like
/// `Buffer.allocUnsafe`), to be filled before JavaScript sees it.
fn new_buffer(env: &Env, len: usize) -> napi::Result<BufferSlice<'_>> {
    let mut data = std::ptr::null_mut();
    let mut raw = std::ptr::null_mut();
    // SAFETY: a valid env on the JavaScript thread; the out-pointers are live locals.
    let status = unsafe { napi::sys::napi_create_buffer(env.raw(), len, &mut data, &mut raw) };
    if status != napi::sys::Status::napi_ok {
        return Err(napi::Error::new(
            Status::GenericFailure,
            "could not allocate a Buffer",
        ));
    }
    // SAFETY: `raw` is the Buffer just made; this reads its pointer and length back through
    // `napi_get_buffer_info` (the one pointer napi-rs trusts on every target).
    unsafe { BufferSlice::from_napi_value(env.raw(), raw) }
}

/// A read's `max` (default 256 KiB), at most [`MAX_READ`].
fn read_max(max: Option<u32>) -> napi::Result<usize> {
    match max.unwrap_or(256 * 1024) {
        0 => Err(invalid("read size must be at least 1")),
        n => Ok(n.min(MAX_READ) as usize),
    }
}

#[napi]
impl NativeStream {
    #[napi(getter)]
    pub fn id(&self) -> i64 {
        self.inner.id() as i64
    }

    #[napi(getter)]
    pub fn label(&self) -> Option<String> {
        self.inner.label().map(str::to_string)
    }

    /// Takes what the core holds for the stream, up to `max` bytes (default 256 KiB), as
    /// one Buffer, without waiting; a zero-length Buffer once the peer finished its side;
    /// `null` if nothing has arrived yet (then await `readable()`). One Buffer for several
    /// of the core's chunks: Node's `Readable.read()` would otherwise join the chunks
    /// pushed in one go into a new Buffer, a second copy (in a profile of a 1 GiB receive,
    /// `memmove` had a third of the JavaScript thread's samples, much of it under Node's
    /// `fromList`). Reading is what
    /// returns flow-control credit to the sender, so a consumer that stops reading stops
    /// the sender.
    ///
    /// The Buffer is allocated by Node at the length the core counts
    /// (`Stream::readable_len`), uninitialised, and the core copies into it: one copy and
    /// one allocation per read, with no finalizer (a Buffer made from a Rust `Vec` is an
    /// external one, freed through a finalizer after garbage collection).
    #[napi(ts_return_type = "Buffer | null")]
    pub fn try_read<'env>(
        &self,
        env: &'env Env,
        max: Option<u32>,
    ) -> napi::Result<Option<BufferSlice<'env>>> {
        let max = read_max(max)?;
        let len = self.inner.readable_len().min(max);
        if len > 0 {
            let mut out = new_buffer(env, len)?;
            match self.inner.try_read_into(&mut &mut out[..], len).js()? {
                ReadInto::Bytes(n) if n == len => return Ok(Some(out)),
                // Fewer than counted: another read took some meanwhile.
                ReadInto::Bytes(n) => return BufferSlice::copy_from(env, &out[..n]).map(Some),
                ReadInto::End | ReadInto::Nothing => {}
            }
        }
        // None counted: the end, the stream's error, nothing yet, or bytes that came just
        // now (rare: then one more copy).
        let mut out = Vec::new();
        match self.inner.try_read_into(&mut out, max).js()? {
            ReadInto::Bytes(_) | ReadInto::End => BufferSlice::copy_from(env, out).map(Some),
            ReadInto::Nothing => Ok(None),
        }
    }

    /// Copies what the core holds for the stream into `buf`, up to its length and across
    /// the chunks the bytes arrived in, without waiting: the count; 0 once the peer
    /// finished its side; `null` if nothing has arrived yet (then await `readable()`).
    /// `index.js`'s `readInto` is its only caller: a reader that keeps one buffer and reads
    /// into it again and again allocates nothing per read, where each `tryRead` makes a new
    /// Buffer.
    #[napi(ts_return_type = "number | null")]
    pub fn try_read_into(&self, mut buf: Uint8ArraySlice<'_>) -> napi::Result<Option<u32>> {
        // SAFETY: a synchronous call on the JavaScript thread: no JavaScript runs while the
        // core copies into the array, so nothing else reads or writes it meanwhile, and the
        // caller's reference keeps it alive.
        let out = unsafe { buf.as_mut() };
        // A count must fit the u32 returned.
        let max = out.len().min(u32::MAX as usize);
        if max == 0 {
            return Err(invalid("readInto() needs a buffer of at least 1 byte"));
        }
        let got = self.inner.try_read_into(&mut &mut out[..], max).js()?;
        Ok(match got {
            ReadInto::Bytes(n) => Some(n as u32),
            ReadInto::End => Some(0),
            ReadInto::Nothing => None,
        })
    }

    /// Resolves once `tryRead` has something to return (bytes, the end, or the stream's
    /// error, which `tryRead` then throws), taking nothing. Settled by the core's session
    /// driver from its own thread when data arrives, as `writable()`: one hand-off to the
    /// JavaScript thread per wait, where an async `read` woke one of napi's runtime threads
    /// to poll a future per chunk.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn readable<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<(), Settle>()?;
        // Ready now: resolved at once; else the core holds the waker, which settles the
        // promise when woken or dropped (the caller then looks again).
        if let Some(((), d)) =
            host::poll_or_notify(deferred, resolve, |cx| self.inner.poll_readable(cx))
        {
            resolve(d);
        }
        Ok(promise)
    }

    /// Queues what the send buffer has room for now, without waiting and without waking
    /// the session driver; returns how many bytes were taken (0: full, await
    /// `writable()`). `flush()` sends: `index.js` flushes when the event-loop turn ends, so
    /// a burst of writes is one wake-up and one socket write (the core's
    /// `Stream::try_write`).
    #[napi]
    pub fn try_write(&self, data: &[u8]) -> napi::Result<u32> {
        // Chunks reaching here are at most a Node buffer's length (< 4 GiB).
        self.inner.try_write(data).map(|n| n as u32).js()
    }

    /// Sends what `tryWrite` queued.
    #[napi]
    pub fn flush(&self) {
        self.inner.flush();
    }

    /// Resolves once the send buffer has room again (then `tryWrite` takes bytes);
    /// rejects if the stream can no longer be written. The core's session driver settles the
    /// promise itself when it frees room: one hand-off to the JavaScript thread, where an
    /// async export would first wake one of napi's runtime threads to poll a future.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn writable<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<(), Settle>()?;
        // The stream holds the waker; it settles the promise when woken, or when the stream
        // drops it unwoken (closed, or replaced by a newer wait): the caller then retries
        // and learns the stream's state. Settling only queues the resolution for the
        // JavaScript thread (a non-blocking threadsafe call).
        match host::poll_or_notify(deferred, resolve, |cx| self.inner.poll_writable(cx)) {
            Some((Ok(()), d)) => resolve(d),
            Some((Err(e), d)) => d.reject(to_js(e)),
            None => {}
        }
        Ok(promise)
    }

    /// Half-closes the sending side (FIN after queued data); reading goes on.
    #[napi]
    pub fn finish(&self) -> napi::Result<()> {
        self.inner.finish().js()
    }

    /// Aborts both directions, telling the peer `code` (default 1, unspecified).
    #[napi]
    pub fn reset(&self, code: Option<u32>) {
        self.inner
            .reset(code.map_or(ErrorCode::Unspecified, |c| ErrorCode::from_u64(c.into())));
    }
}

/// How a `writable()` promise resolves: with `undefined`.
type Settle = fn(Env) -> napi::Result<()>;

fn resolve(d: JsDeferred<(), Settle>) {
    d.resolve(|_| Ok(()));
}
