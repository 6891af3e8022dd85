//! [`Stream`]: the application's handle on one byte stream of a session.
//!
//! One obvious path per need:
//! - read: [`Stream::read_chunk`] (or `AsyncRead`), [`Stream::read_all`] as the convenience;
//! - write: [`Stream::write_all`] (or `AsyncWrite`) waits for room and sends; for a host
//!   that writes from its own thread or event loop, [`Stream::try_write`] queues what fits
//!   now without waiting, [`Stream::writable`] signals room, and [`Stream::flush`] sends
//!   what was queued. Either takes borrowed bytes (copied into the send buffer) or owned
//!   [`Bytes`] (queued as they are, no copy): see [`WriteBuf`];
//! - end: [`Stream::finish`] (half-close) and [`Stream::reset`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::machine::{ReadOutcome, Session};
use super::shared::{Shared, State};
use crate::error::{Error, ErrorCode};

/// The bytes of one write: borrowed (copied into the stream's send buffer) or owned
/// (queued as they are: a binding that already holds the caller's buffer hands it over,
/// and the only copy left is the one into the frame being sealed).
#[derive(Clone, Debug)]
pub enum WriteBuf<'a> {
    Borrowed(&'a [u8]),
    Owned(Bytes),
}

impl WriteBuf<'_> {
    pub fn len(&self) -> usize {
        match self {
            WriteBuf::Borrowed(b) => b.len(),
            WriteBuf::Owned(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues (a prefix of) the bytes on stream `id`; how many were taken.
    fn queue(&self, session: &mut Session, id: u64) -> Result<usize, Error> {
        match self {
            WriteBuf::Borrowed(b) => session.write(id, b),
            WriteBuf::Owned(b) => session.write_bytes(id, b),
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            WriteBuf::Borrowed(b) => *b = &b[n..],
            WriteBuf::Owned(b) => b.advance(n),
        }
    }
}

/// Anything borrowed that is bytes (`&[u8]`, `&Vec<u8>`, `&str`, `b"…"`, a digest, a
/// borrowed `Bytes`): copied into the send buffer.
impl<'a, T: AsRef<[u8]> + ?Sized> From<&'a T> for WriteBuf<'a> {
    fn from(b: &'a T) -> Self {
        WriteBuf::Borrowed(b.as_ref())
    }
}

impl From<Bytes> for WriteBuf<'_> {
    fn from(b: Bytes) -> Self {
        WriteBuf::Owned(b)
    }
}

impl From<Vec<u8>> for WriteBuf<'_> {
    fn from(b: Vec<u8>) -> Self {
        WriteBuf::Owned(Bytes::from(b))
    }
}

struct StreamInner {
    shared: Arc<Shared>,
    id: u64,
    label: Option<String>,
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.stream_wakers.remove(&self.id);
        st.session.release_stream(self.id);
        st.wake_driver();
    }
}

/// What [`Stream::try_read_into`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadInto {
    /// This many bytes were copied.
    Bytes(usize),
    /// The peer finished its side and everything was read.
    End,
    /// No bytes have arrived yet.
    Nothing,
}

/// A bidirectional byte stream inside a session. Implements tokio's `AsyncRead` and
/// `AsyncWrite`; clones share the stream, so one task may read while another writes. The
/// stream is released when the last clone is dropped (unread data is refused, unfinished
/// writes are finished).
#[derive(Clone)]
pub struct Stream {
    inner: Arc<StreamInner>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.inner.id)
            .field("label", &self.inner.label)
            .finish()
    }
}

impl Stream {
    pub(super) fn new(shared: Arc<Shared>, id: u64, label: Option<String>) -> Self {
        Stream {
            inner: Arc::new(StreamInner { shared, id, label }),
        }
    }

    pub fn id(&self) -> u64 {
        self.inner.id
    }

    pub fn label(&self) -> Option<&str> {
        self.inner.label.as_deref()
    }

    /// Polls for the next chunk of at most `max` bytes; `None` at end of stream.
    pub fn poll_read_chunk(
        &self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<Result<Option<Bytes>, Error>> {
        let mut st = self.inner.shared.lock();
        match st.session.read(self.inner.id, max) {
            Ok(ReadOutcome::Data(b)) => {
                if st.session.wants_transmit() {
                    st.wake_driver();
                }
                Poll::Ready(Ok(Some(b)))
            }
            Ok(ReadOutcome::Finished) => Poll::Ready(Ok(None)),
            Ok(ReadOutcome::Blocked) => {
                if st.finished {
                    return Poll::Ready(Err(Error::new(
                        ErrorCode::ConnectionClosed,
                        "session closed",
                    )));
                }
                st.stream_wakers.entry(self.inner.id).or_default().read = Some(cx.waker().clone());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Copies what the stream holds into `out`, up to `max` bytes and across the chunks
    /// they arrived in, without waiting: [`ReadInto::Bytes`] with the count;
    /// [`ReadInto::End`] once the peer finished and everything was read;
    /// [`ReadInto::Nothing`] if no bytes are there yet (wait with
    /// [`Stream::poll_readable`]). An end or an error behind the bytes is left for the next
    /// call. For hosts that read into a buffer of their own (Kotlin's raw reads, Node.js's
    /// `tryRead`): one call and one copy per read, however the bytes were framed (a frame
    /// carries at most 65,502 bytes, cut from whatever the sender had queued: a 64 KiB
    /// write framed on its own arrives as a full frame and 34 bytes).
    pub fn try_read_into(&self, out: &mut impl BufMut, max: usize) -> Result<ReadInto, Error> {
        let max = max.min(out.remaining_mut());
        if max == 0 {
            return Ok(ReadInto::Nothing);
        }
        let id = self.inner.id;
        let mut st = self.inner.shared.lock();
        let mut n = 0;
        // Only while bytes are there: a read that finds the end may let the stream go.
        while n < max && (n == 0 || st.session.readable_bytes(id) > 0) {
            match st.session.read(id, max - n) {
                Ok(ReadOutcome::Data(b)) => {
                    out.put_slice(&b);
                    n += b.len();
                }
                Ok(ReadOutcome::Finished) if n == 0 => return Ok(ReadInto::End),
                Ok(ReadOutcome::Blocked) if n == 0 && st.finished => {
                    return Err(Error::new(ErrorCode::ConnectionClosed, "session closed"));
                }
                Err(e) if n == 0 => return Err(e),
                _ => break,
            }
        }
        if n == 0 {
            return Ok(ReadInto::Nothing);
        }
        if st.session.wants_transmit() {
            st.wake_driver();
        }
        Ok(ReadInto::Bytes(n))
    }

    /// How many bytes a read would return now without waiting: 0 when none have arrived,
    /// and at the end or after an error (a read says which). For a host that must size its
    /// own buffer before [`Stream::try_read_into`] fills it (a Python `bytes`, a Node.js
    /// `Buffer`: allocated once at the right length, and written in place).
    pub fn readable_len(&self) -> usize {
        self.inner
            .shared
            .lock()
            .session
            .readable_bytes(self.inner.id)
    }

    /// Ready once a read would answer without waiting (bytes are there, the end, or an
    /// error), *taking nothing*: for a host that waits in one call and reads in another
    /// (the raw read path of Kotlin, Node.js's `readable()`). Else the waker is kept, in
    /// the slot a pending read's waker takes (one reader per stream), and woken as a
    /// read's would be.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.inner.shared.lock();
        if st.finished || st.session.read_ready(self.inner.id) {
            return Poll::Ready(());
        }
        st.stream_wakers.entry(self.inner.id).or_default().read = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Reads the next chunk (at most `max` bytes); `Ok(None)` once the peer finished.
    pub async fn read_chunk(&self, max: usize) -> Result<Option<Bytes>, Error> {
        std::future::poll_fn(|cx| self.poll_read_chunk(cx, max)).await
    }

    /// Reads everything until the peer finishes (like `read_to_end`), refusing to hold more than `limit` bytes.
    pub async fn read_all(&self, limit: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while let Some(chunk) = self.read_chunk(64 * 1024).await? {
            if out.len() + chunk.len() > limit {
                return Err(Error::new(
                    ErrorCode::ResourceExhausted,
                    format!("stream longer than {limit} bytes"),
                ));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Registers the task to wake when the send buffer has room again (the stream's one
    /// write waker). The driver may be idle while the buffer is full of unsent data, so it
    /// is woken too: whatever [`Stream::try_write`] queued goes out.
    fn park_writer(&self, st: &mut State, cx: &mut Context<'_>) {
        st.stream_wakers.entry(self.inner.id).or_default().write = Some(cx.waker().clone());
        st.wake_driver();
    }

    /// Queues what fits of `data` and sends it, or parks the task until there is room.
    fn poll_queue(&self, cx: &mut Context<'_>, data: &WriteBuf<'_>) -> Poll<Result<usize, Error>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut st = self.inner.shared.lock();
        match data.queue(&mut st.session, self.inner.id) {
            Ok(0) => {
                self.park_writer(&mut st, cx);
                Poll::Pending
            }
            Ok(n) => {
                st.wake_driver();
                Poll::Ready(Ok(n))
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Ready once the send buffer has room, so that [`Stream::try_write`] takes bytes; an
    /// error if the stream can no longer be written. Parking also sends what was queued.
    /// Shares the waker slot of a pending write: one writer per stream.
    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut st = self.inner.shared.lock();
        match st.session.send_room(self.inner.id) {
            Ok(0) => {
                self.park_writer(&mut st, cx);
                Poll::Pending
            }
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Waits until the send buffer has room (see [`Stream::poll_writable`]).
    pub async fn writable(&self) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_writable(cx)).await
    }

    /// Queues what the stream's send buffer has room for right now, without waiting, and
    /// returns how many bytes were taken (0 when the buffer is full: wait for
    /// [`Stream::writable`]). The bytes go out at the next [`Stream::flush`] (or when the
    /// driver runs for another reason: a wait for room, `finish`, `write_all`). A host that
    /// writes in bursts from its own thread (a JavaScript event-loop turn) so gets one
    /// wake-up of the session driver and one large socket write per burst, as a writer task
    /// on the runtime gets by itself (docs/BENCHMARKS.md, "What changed" 11).
    pub fn try_write<'a>(&self, data: impl Into<WriteBuf<'a>>) -> Result<usize, Error> {
        let data = data.into();
        if data.is_empty() {
            return Ok(0);
        }
        let mut st = self.inner.shared.lock();
        data.queue(&mut st.session, self.inner.id)
    }

    /// Sends what [`Stream::try_write`] queued (wakes the session driver).
    pub fn flush(&self) {
        self.inner.shared.lock().wake_driver();
    }

    /// Writes all of `data`, waiting for flow-control credit and buffer room as needed.
    /// Owned [`Bytes`] are queued without a copy.
    pub async fn write_all<'a>(&self, data: impl Into<WriteBuf<'a>>) -> Result<(), Error> {
        let mut data = data.into();
        while !data.is_empty() {
            let n = std::future::poll_fn(|cx| self.poll_queue(cx, &data)).await?;
            data.advance(n);
        }
        Ok(())
    }

    /// Half-closes the sending direction (FIN after queued data). Reading continues.
    pub fn finish(&self) -> Result<(), Error> {
        let mut st = self.inner.shared.lock();
        st.session.finish(self.inner.id)?;
        st.wake_driver();
        Ok(())
    }

    /// Aborts both directions, telling the peer `code`.
    pub fn reset(&self, code: ErrorCode) {
        let mut st = self.inner.shared.lock();
        let _ = st.session.reset(self.inner.id, code);
        st.wake_driver();
    }
}

fn to_io(e: Error) -> io::Error {
    let kind = match e.code {
        ErrorCode::ConnectionClosed | ErrorCode::StreamClosed => io::ErrorKind::BrokenPipe,
        ErrorCode::Timeout => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::ConnectionReset,
    };
    io::Error::new(kind, e)
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.poll_read_chunk(cx, buf.remaining()) {
            Poll::Ready(Ok(Some(b))) => {
                buf.put_slice(&b);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(to_io(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_queue(cx, &WriteBuf::Borrowed(buf)).map_err(to_io)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Bytes handed to the session are the driver's to deliver; nothing is held here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.finish() {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) if e.code == ErrorCode::StreamClosed => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }
}
