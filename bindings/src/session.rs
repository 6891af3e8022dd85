//! `Connection` and `Stream`: async reads and writes, stream callbacks.

use std::sync::Arc;

use snap2p::ErrorCode;

use crate::bytes::Bytes;
use crate::error::{ErrorInfo, Result};
use crate::events::ConnectionStats;
use crate::rt::{on_runtime, Subscription};

/// Largest chunk one `read` returns and `onData` delivers.
const MAX_CHUNK: usize = 1 << 20;
/// Chunk size of `onData` deliveries.
const CALLBACK_CHUNK: usize = 256 * 1024;

/// A verified AliasCard.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AliasInfo {
    pub principal: String,
    pub alias: String,
    pub display_name: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl From<snap2p::AliasCard> for AliasInfo {
    fn from(c: snap2p::AliasCard) -> Self {
        AliasInfo {
            principal: c.principal.to_string(),
            alias: c.alias,
            display_name: c.display_name,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
        }
    }
}

/// Receives streams the remote opens (`Connection.onStream`).
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait StreamHandler: Send + Sync {
    async fn on_stream(&self, stream: Arc<Stream>) -> Result<()>;
}

/// Receives a stream's bytes (`Stream.onData`). `on_data` is awaited before the next read,
/// so a slow handler applies backpressure to the sender; throwing from it resets the stream
/// (ERR_INTERNAL to the peer). `on_end` comes once: null/nil after a clean finish, else why.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait DataHandler: Send + Sync {
    async fn on_data(&self, data: Bytes) -> Result<()>;
    async fn on_end(&self, error: Option<ErrorInfo>) -> Result<()>;
}

/// An authenticated session with a remote principal.
#[derive(uniffi::Object)]
pub struct Connection {
    inner: snap2p::Connection,
}

impl Connection {
    pub(crate) fn wrap(inner: snap2p::Connection) -> Arc<Self> {
        Arc::new(Connection { inner })
    }

    /// The core's connection (a clone shares the session).
    pub(crate) fn core(&self) -> &snap2p::Connection {
        &self.inner
    }
}

#[uniffi::export]
impl Connection {
    /// `stacks:SP…` the peer proved it is.
    pub fn remote_principal(&self) -> String {
        self.inner.remote_principal().to_string()
    }

    /// The peer's verified, unexpired AliasCard.
    pub fn remote_alias(&self) -> Option<AliasInfo> {
        self.inner.remote_alias().map(Into::into)
    }

    /// A short, stable id for logs and events (`PeerEvent.connection`): the first 8 bytes
    /// of the session id in hex, the same at both ends.
    pub fn id(&self) -> String {
        self.inner.id()
    }

    /// What the session has moved and how it is doing, now.
    pub fn stats(&self) -> ConnectionStats {
        self.inner.stats().into()
    }

    pub fn session_id(&self) -> Vec<u8> {
        self.inner.session_id().to_vec()
    }

    pub fn remote_addr(&self) -> Option<String> {
        self.inner.remote_addr().map(|a| a.to_string())
    }

    pub fn local_addr(&self) -> Option<String> {
        self.inner.local_addr().map(|a| a.to_string())
    }

    /// Whether both sides announced capability `cap` (e.g. `"px1"`).
    pub fn supports(&self, cap: String) -> bool {
        self.inner.supports(&cap)
    }

    /// Opens a stream; the label is for routing and debugging only.
    #[uniffi::method(default(label = None))]
    pub async fn open_stream(&self, label: Option<String>) -> Result<Arc<Stream>> {
        let conn = self.inner.clone();
        let s = on_runtime(async move { conn.open_stream(label.as_deref()).await }).await?;
        Ok(Stream::wrap(s))
    }

    /// Presents a PermissionGrant (wire bytes) to the other node; throws with the node's
    /// code when refused (docs/PROTOCOL.md §33.4).
    pub async fn present_grant(&self, grant: Vec<u8>) -> Result<()> {
        let conn = self.inner.clone();
        on_runtime(async move { conn.present_grant(&grant).await }).await?;
        Ok(())
    }

    /// The next stream the peer opens; throws once the connection is closed.
    pub async fn accept_stream(&self) -> Result<Arc<Stream>> {
        // Polled in place (needs no runtime): a caller that gives up waiting drops this
        // future before it took a stream, so no stream is taken and lost.
        Ok(Stream::wrap(self.inner.accept_stream().await?))
    }

    /// Delivers each stream the peer opens to `handler` until cancelled or closed.
    pub fn on_stream(&self, handler: Arc<dyn StreamHandler>) -> Arc<Subscription> {
        let conn = self.inner.clone();
        Subscription::spawn(async move {
            while let Ok(s) = conn.accept_stream().await {
                let _ = handler.on_stream(Stream::wrap(s)).await;
            }
        })
    }

    /// Closes the session: queued data is flushed, then the peer is told `code`
    /// (0 = normal close).
    #[uniffi::method(default(code = 0, reason = ""))]
    pub fn shutdown(&self, code: u64, reason: String) {
        self.inner.close(ErrorCode::from_u64(code), &reason);
    }

    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Waits until the session has ended; returns why.
    pub async fn closed(&self) -> ErrorInfo {
        let conn = self.inner.clone();
        match on_runtime(async move { Ok(conn.closed().await) }).await {
            Ok(e) => ErrorInfo::from(&e),
            Err(e) => ErrorInfo::from(&snap2p::Error::from(e)),
        }
    }

    /// Why the session ended, if it has (null/nil while open).
    pub fn close_reason(&self) -> Option<ErrorInfo> {
        self.inner.close_reason().as_ref().map(ErrorInfo::from)
    }
}

// Its reads and writes are polled in place by the foreign executor, not spawned on the
// runtime: stream I/O in the core only takes the session lock and registers wakers (no
// tokio context needed), so this saves a task spawn and a thread hop per call, and a
// write the send buffer has room for completes on the first poll, on the caller's thread.
/// A bidirectional byte stream. Released (and finished) when the last handle goes.
#[derive(uniffi::Object)]
pub struct Stream {
    inner: snap2p::Stream,
}

impl Stream {
    fn wrap(inner: snap2p::Stream) -> Arc<Self> {
        Arc::new(Stream { inner })
    }

    /// The core stream (the raw entry points call its methods).
    pub(crate) fn core(&self) -> &snap2p::Stream {
        &self.inner
    }
}

#[uniffi::export]
impl Stream {
    pub fn id(&self) -> u64 {
        self.inner.id()
    }

    pub fn label(&self) -> Option<String> {
        self.inner.label().map(str::to_string)
    }

    /// The next chunk (1 to `max` bytes, at most 1 MiB); null/nil once the peer finished.
    #[uniffi::method(default(max = 262144))]
    pub async fn read(&self, max: u32) -> Result<Option<Bytes>> {
        let max = (max as usize).clamp(1, MAX_CHUNK);
        Ok(self.inner.read_chunk(max).await?.map(Bytes))
    }

    /// Everything until the peer finishes; ERR_RESOURCE_EXHAUSTED beyond `limit` bytes
    /// (at most 2^31 - 1: byte arrays cross the FFI with an i32 length).
    pub async fn read_to_end(&self, limit: u64) -> Result<Bytes> {
        let limit = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(i32::MAX as usize);
        Ok(Bytes::from(self.inner.read_all(limit).await?))
    }

    /// Queues what the send buffer has room for now, without waiting; returns how many
    /// bytes were taken (0: full). `writeAll` (Swift) tries this first and awaits `write`
    /// only for the rest: one native call instead of an async round trip. Kotlin's
    /// `writeAll` calls its raw twin (`crate::raw`), which JNA calls without allocating.
    pub fn try_write(&self, data: Bytes) -> Result<u32> {
        // Bytes crossing the FFI are at most i32::MAX long. Owned: the core queues the
        // lifted buffer itself instead of a copy. Each call is one write from the host:
        // sent at once.
        let n = self.inner.try_write(data.0)?;
        if n > 0 {
            self.inner.flush();
        }
        Ok(n as u32)
    }

    /// Returns once the send buffer has room (`try_write` then takes bytes); throws if the
    /// stream can no longer be written. With `try_write`, sends without handing the bytes
    /// to an async call: Kotlin's `writeAll` waits here when the buffer is full.
    pub async fn writable(&self) -> Result<()> {
        Ok(self.inner.writable().await?)
    }

    /// Writes all of `data`, waiting for flow-control credit.
    pub async fn write(&self, data: Bytes) -> Result<()> {
        Ok(self.inner.write_all(data.0).await?)
    }

    /// Half-closes: no more writes; the peer reads to the end. Reading continues.
    pub fn finish(&self) -> Result<()> {
        Ok(self.inner.finish()?)
    }

    /// Aborts both directions, telling the peer `code`.
    pub fn reset(&self, code: u64) {
        self.inner.reset(ErrorCode::from_u64(code));
    }

    /// Delivers the stream's bytes to `handler` until the end, an error or `cancel()`.
    pub fn on_data(&self, handler: Arc<dyn DataHandler>) -> Arc<Subscription> {
        let s = self.inner.clone();
        Subscription::spawn(async move {
            loop {
                match s.read_chunk(CALLBACK_CHUNK).await {
                    Ok(Some(chunk)) => {
                        if let Err(e) = handler.on_data(Bytes(chunk)).await {
                            s.reset(ErrorCode::Internal);
                            let e = snap2p::Error::from(e);
                            let _ = handler.on_end(Some(ErrorInfo::from(&e))).await;
                            return;
                        }
                    }
                    Ok(None) => {
                        let _ = handler.on_end(None).await;
                        return;
                    }
                    Err(e) => {
                        let _ = handler.on_end(Some(ErrorInfo::from(&e))).await;
                        return;
                    }
                }
            }
        })
    }
}
