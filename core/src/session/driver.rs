//! The tokio layer: one driver task per session moves bytes between the socket and the
//! sans-IO [`Session`], owns its one timer and wakes the tasks that wait on streams.
//!
//! Application handles ([`Connection`], [`Stream`]) lock the shared state only to call the
//! machine and to park their waker; no host callback ever runs under that lock. The driver
//! keeps reading while a write is blocked (a peer that does the same can never deadlock us)
//! and coalesces everything queued into large socket writes. Receive and send buffers are
//! released when a session goes quiet, so idle sessions stay small.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::machine::{Event, ReadOutcome, Session, SessionInfo};
use crate::error::{Error, ErrorCode};
use crate::identity::{AliasCard, Principal};

/// How much encrypted output the driver prepares ahead of the socket.
const WRITE_BATCH: usize = 256 * 1024;
/// Largest single socket read.
const READ_CHUNK: usize = 64 * 1024;
/// Input one driver poll handles before it yields. The readers it woke are usually queued
/// on the driver's own worker: a driver that kept reading (up to 32 passes of 1 MiB) ran
/// tens of MiB ahead of them, held it all in memory and, with 1,000 streams, took ~20 %
/// longer (docs/BENCHMARKS.md, "What changed" 15).
const INPUT_PER_POLL: usize = 1024 * 1024;

#[derive(Default)]
struct StreamWakers {
    read: Option<Waker>,
    write: Option<Waker>,
}

/// Streams whose label belongs to a built-in module (PX-1) go to its handler instead of
/// the application's accept queue. The handler runs after the session lock is released.
#[derive(Clone)]
pub(crate) struct InternalRouter {
    pub labels: Vec<String>,
    pub handler: Arc<dyn Fn(Stream, Connection) + Send + Sync>,
}

pub(crate) struct State {
    pub(crate) session: Session,
    stream_wakers: HashMap<u64, StreamWakers>,
    accept_wakers: Vec<Waker>,
    established_wakers: Vec<Waker>,
    closed_wakers: Vec<Waker>,
    driver_waker: Option<Waker>,
    remote_alias: Option<AliasCard>,
    /// Set when the driver has finished (socket closed).
    finished: bool,
    router: Option<InternalRouter>,
    /// Streams routed to a built-in module, handed over after the lock is released.
    internal: Vec<u64>,
}

impl State {
    fn wake_driver(&mut self) {
        if let Some(w) = self.driver_waker.take() {
            w.wake();
        }
    }

    /// Turns machine events into wake-ups. Wakers are collected and woken by the caller
    /// after the lock is released; writers waiting for send room go to `writers`.
    fn dispatch_events(&mut self, wake: &mut Vec<Waker>, writers: &mut Vec<Waker>) {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Established => wake.append(&mut self.established_wakers),
                Event::StreamOpened(id) => {
                    let internal = self.router.as_ref().is_some_and(|r| {
                        let label = self.session.stream_label(id);
                        r.labels.iter().any(|l| Some(l.as_str()) == label)
                    });
                    if internal && self.session.take_from_accept_queue(id) {
                        self.stream_wakers.insert(id, StreamWakers::default());
                        self.internal.push(id);
                    } else {
                        wake.append(&mut self.accept_wakers);
                    }
                }
                Event::StreamReadable(id) => {
                    if let Some(w) = self.stream_wakers.get_mut(&id).and_then(|w| w.read.take()) {
                        wake.push(w);
                    }
                }
                Event::StreamWritable(id) => {
                    if let Some(w) = self.stream_wakers.get_mut(&id).and_then(|w| w.write.take()) {
                        writers.push(w);
                    }
                }
                Event::AliasCard(card) => {
                    let newer = self
                        .remote_alias
                        .as_ref()
                        .is_none_or(|c| card.issued_at >= c.issued_at);
                    if newer {
                        self.remote_alias = Some(*card);
                    }
                }
                Event::Closed(_) => {
                    wake.append(&mut self.accept_wakers);
                    wake.append(&mut self.established_wakers);
                    wake.append(&mut self.closed_wakers);
                    for w in self.stream_wakers.values_mut() {
                        wake.extend(w.read.take());
                        wake.extend(w.write.take());
                    }
                }
            }
        }
    }
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) local_addr: Option<SocketAddr>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would poison it; recover the state anyway: every
        // mutation of the machine is complete at each call boundary.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Parks a waker once (repeated polls by the same task do not grow the list).
fn push_waker(list: &mut Vec<Waker>, w: &Waker) {
    if !list.iter().any(|x| x.will_wake(w)) {
        list.push(w.clone());
    }
}

fn wake_all(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

/// Starts the driver for `session` over `io` on the current tokio runtime.
pub(crate) fn spawn<T>(
    session: Session,
    io: T,
    remote_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
    router: Option<InternalRouter>,
) -> Arc<Shared>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            session,
            stream_wakers: HashMap::new(),
            accept_wakers: Vec::new(),
            established_wakers: Vec::new(),
            closed_wakers: Vec::new(),
            driver_waker: None,
            remote_alias: None,
            finished: false,
            router,
            internal: Vec::new(),
        }),
        remote_addr,
        local_addr,
    });
    let driver = Driver {
        shared: shared.clone(),
        io,
        rbuf: BytesMut::new(),
        wbuf: Vec::new(),
        wpos: 0,
        read_closed: false,
        timer: None,
        timer_at: None,
    };
    tokio::spawn(driver);
    shared
}

struct Driver<T> {
    shared: Arc<Shared>,
    io: T,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    wpos: usize,
    read_closed: bool,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    timer_at: Option<Instant>,
}

/// What one lock-free read pass saw.
#[derive(Default)]
struct ReadPass {
    bytes: usize,
    eof: bool,
    error: Option<io::Error>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Driver<T> {
    /// Reads what the socket has into the driver's own buffer, without the session lock
    /// and without allocating a receive buffer for an idle session.
    fn read_socket(&mut self, cx: &mut Context<'_>) -> ReadPass {
        let mut pass = ReadPass::default();
        for _ in 0..16 {
            if self.read_closed {
                break;
            }
            let result = if self.rbuf.capacity() == self.rbuf.len() && self.rbuf.is_empty() {
                // Idle: probe with a small stack buffer before committing 64 KiB.
                let mut probe = [0u8; 2048];
                let mut rb = ReadBuf::new(&mut probe);
                match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                    Poll::Pending => break,
                    Poll::Ready(r) => r.map(|()| {
                        let n = rb.filled().len();
                        if n > 0 {
                            self.rbuf.reserve(READ_CHUNK);
                            self.rbuf.extend_from_slice(rb.filled());
                        }
                        n
                    }),
                }
            } else {
                if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                    self.rbuf.reserve(READ_CHUNK);
                }
                let spare = self.rbuf.spare_capacity_mut();
                let mut rb = ReadBuf::uninit(spare);
                let r = match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                    Poll::Pending => break,
                    Poll::Ready(r) => r.map(|()| rb.filled().len()),
                };
                if let Ok(n) = r {
                    // SAFETY: poll_read initialised `n` bytes of the spare capacity.
                    unsafe { self.rbuf.set_len(self.rbuf.len() + n) };
                }
                r
            };
            match result {
                Ok(0) => {
                    self.read_closed = true;
                    pass.eof = true;
                }
                Ok(n) => pass.bytes += n,
                Err(e) => {
                    self.read_closed = true;
                    pass.error = Some(e);
                }
            }
            if self.rbuf.len() >= 1 << 20 {
                break;
            }
        }
        pass
    }

    /// Writes prepared output, without the session lock. Returns true on progress.
    fn write_socket(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut progress = false;
        while self.wpos < self.wbuf.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) => {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed"))
                }
                Poll::Ready(Ok(n)) => {
                    self.wpos += n;
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wpos = 0;
            self.wbuf.clear();
        }
        Ok(progress)
    }

    /// Tops the output buffer up from the machine (under the lock).
    fn fill_output(&mut self, st: &mut State, now: Instant) -> bool {
        if self.wbuf.len() - self.wpos >= WRITE_BATCH / 2 || !st.session.wants_transmit() {
            return false;
        }
        if self.wpos > 0 {
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
        let before = self.wbuf.len();
        st.session.poll_transmit(now, &mut self.wbuf, WRITE_BATCH);
        // A machine that closed may have nothing more to say: that is progress too.
        self.wbuf.len() != before || st.session.is_closed()
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for Driver<T> {
    type Output = ();

    /// One pass: read (no lock) → machine work (lock) → write (no lock), repeated while
    /// anything moves. The lock is held only for the machine's own work, never across a
    /// socket call, so application tasks on other workers are not stalled by I/O.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let shared = this.shared.clone();
        let mut wake = Vec::new();
        let mut writers = Vec::new();
        {
            let mut st = shared.lock();
            if !st
                .driver_waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                st.driver_waker = Some(cx.waker().clone());
            }
        }
        let mut rounds = 0;
        let mut input = 0;
        let mut internal = Vec::new();
        let done = loop {
            rounds += 1;
            let pass = this.read_socket(cx);
            input += pass.bytes;
            let mut progress = pass.bytes > 0 || pass.eof || pass.error.is_some();
            let now = Instant::now();
            let mut st = shared.lock();
            if pass.bytes > 0 {
                st.session.handle_input(&mut this.rbuf, now);
            }
            if let Some(e) = pass.error {
                st.session.handle_transport_closed(Some(e.into()));
            } else if pass.eof {
                st.session.handle_transport_closed(None);
            }
            if st.session.poll_timeout().is_some_and(|t| t <= now) {
                st.session.handle_timeout(now);
                progress = true;
            }
            progress |= this.fill_output(&mut st, now);
            st.dispatch_events(&mut wake, &mut writers);
            internal.append(&mut st.internal);
            let closed = st.session.is_closed();
            let deadline = st.session.poll_timeout();
            drop(st);
            // Wake readers every pass, not once the driver yields: a busy driver may make
            // up to 32 passes, and readers woken late let the peer's data pile up here
            // (and leave their core idle meanwhile). Writers are woken once the driver
            // yields: by then their buffers have drained further, and each wake-up (a
            // thread hand-off, into another language in the bindings) refills more.
            for w in wake.drain(..) {
                w.wake();
            }
            if this.rbuf.is_empty() && this.rbuf.capacity() > 0 {
                this.rbuf = BytesMut::new();
            }
            match this.write_socket(cx) {
                Ok(p) => progress |= p,
                Err(e) => {
                    shared
                        .lock()
                        .session
                        .handle_transport_closed(Some(e.into()));
                    this.wbuf.clear();
                    this.wpos = 0;
                    progress = true;
                }
            }
            if closed && this.wpos == this.wbuf.len() {
                break true;
            }
            // Arm the one timer.
            if deadline != this.timer_at {
                this.timer_at = deadline;
                this.timer = deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into())));
            }
            if let Some(timer) = this.timer.as_mut() {
                if timer.as_mut().poll(cx).is_ready() {
                    this.timer_at = None;
                    this.timer = None;
                    progress = true;
                }
            }
            if !progress {
                break false;
            }
            if rounds >= 32 || input >= INPUT_PER_POLL {
                // Let other tasks (the readers just woken) run; come back at once.
                cx.waker().wake_by_ref();
                break false;
            }
        };
        if this.wbuf.is_empty() && this.wbuf.capacity() > 0 {
            // Idle sessions keep no output buffer.
            this.wbuf = Vec::new();
        }
        let mut st = shared.lock();
        if done {
            st.finished = true;
            st.driver_waker = None;
            wake.append(&mut st.closed_wakers);
        }
        let routed = if internal.is_empty() {
            None
        } else {
            let info = st.session.info();
            let labels: Vec<Option<String>> = internal
                .iter()
                .map(|id| st.session.stream_label(*id).map(str::to_string))
                .collect();
            st.router
                .clone()
                .zip(info.remote_principal)
                .map(|(r, remote)| (r, remote, info.session_id.unwrap_or_default(), labels))
        };
        drop(st);
        wake_all(wake);
        wake_all(writers);
        if let Some((router, remote, session_id, labels)) = routed {
            for (id, label) in internal.into_iter().zip(labels) {
                let conn = Connection {
                    shared: shared.clone(),
                    remote: remote.clone(),
                    session_id,
                };
                (router.handler)(Stream::new(shared.clone(), id, label), conn);
            }
        }
        if done {
            // Best-effort orderly TCP shutdown; the peer may already be gone.
            let _ = Pin::new(&mut this.io).poll_shutdown(cx);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------------------
// Application handles

/// An authenticated session with a remote principal. Cheap to clone; the session lives
/// until [`Connection::close`] is called or the peer goes away (dropping handles does not
/// close it: the peer owns that decision too).
#[derive(Clone)]
pub struct Connection {
    pub(crate) shared: Arc<Shared>,
    remote: Principal,
    session_id: [u8; 32],
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("remote", &self.remote.to_string())
            .field("addr", &self.shared.remote_addr)
            .finish()
    }
}

/// Waits until the handshake finishes; returns the connection or the handshake's error.
pub(crate) async fn established(shared: Arc<Shared>) -> Result<Connection, Error> {
    std::future::poll_fn(|cx| {
        let mut st = shared.lock();
        // A session that authenticated and then ended before this task ran (a corrupt
        // first frame, the peer closing at once) is still a connection: the application
        // sees it, and `closed()` tells it why it ended, as a TCP accept returns a socket
        // the peer already reset.
        if st.session.is_established() || st.session.was_established() {
            let info = st.session.info();
            if let Some(remote) = info.remote_principal {
                return Poll::Ready(Ok(Connection {
                    shared: shared.clone(),
                    remote,
                    session_id: info.session_id.unwrap_or_default(),
                }));
            }
        }
        if let Some(e) = st.session.error() {
            return Poll::Ready(Err(e.clone()));
        }
        if st.finished {
            return Poll::Ready(Err(Error::new(
                ErrorCode::ConnectionClosed,
                "connection closed during the handshake",
            )));
        }
        push_waker(&mut st.established_wakers, cx.waker());
        Poll::Pending
    })
    .await
}

impl Connection {
    /// The authenticated Stacks principal of the peer.
    pub fn remote_principal(&self) -> &Principal {
        &self.remote
    }

    /// The peer's current AliasCard, if it sent a valid, unexpired one.
    pub fn remote_alias(&self) -> Option<AliasCard> {
        let st = self.shared.lock();
        let now = crate::unix_now();
        st.remote_alias.clone().filter(|c| c.is_current(now))
    }

    pub fn session_id(&self) -> [u8; 32] {
        self.session_id
    }

    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.shared.remote_addr
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr
    }

    pub fn info(&self) -> SessionInfo {
        self.shared.lock().session.info()
    }

    /// Whether the peer listed `cap` in its HELLO (and we did too).
    pub fn supports(&self, cap: &str) -> bool {
        self.shared.lock().session.both_support(cap)
    }

    /// Queues our new AliasCard for the peer (no-op unless both sides list `aliases`).
    pub(crate) fn send_alias_card(&self, card: Arc<Vec<u8>>) -> bool {
        let mut st = self.shared.lock();
        let sent = st.session.send_alias_card(card);
        if sent {
            st.wake_driver();
        }
        sent
    }

    /// Opens a stream with an optional label (for routing/debugging only: never trust it).
    pub async fn open_stream(&self, label: Option<&str>) -> Result<Stream, Error> {
        let mut st = self.shared.lock();
        let id = st.session.open_stream(label)?;
        st.stream_wakers.insert(id, StreamWakers::default());
        st.wake_driver();
        drop(st);
        Ok(Stream::new(
            self.shared.clone(),
            id,
            label.map(str::to_string),
        ))
    }

    /// Waits for the next stream the peer opens. Errors once the session is closed.
    pub async fn accept_stream(&self) -> Result<Stream, Error> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<Stream, Error>> {
        let mut st = self.shared.lock();
        if let Some(id) = st.session.accept_stream() {
            let label = st.session.stream_label(id).map(str::to_string);
            st.stream_wakers.insert(id, StreamWakers::default());
            drop(st);
            return Poll::Ready(Ok(Stream::new(self.shared.clone(), id, label)));
        }
        if let Some(e) = st.session.error() {
            return Poll::Ready(Err(e.clone()));
        }
        if st.finished {
            return Poll::Ready(Err(Error::new(
                ErrorCode::ConnectionClosed,
                "session closed",
            )));
        }
        push_waker(&mut st.accept_wakers, cx.waker());
        Poll::Pending
    }

    /// Closes the session gracefully: queued stream data is flushed (for at most
    /// `SessionLimits::close_linger`, so a peer that stopped reading cannot hold it open),
    /// then the peer gets ERROR{code}. `ErrorCode::Ok` is a normal close.
    pub fn close(&self, code: ErrorCode, reason: &str) {
        let mut st = self.shared.lock();
        st.session.close(Instant::now(), code, reason);
        st.wake_driver();
    }

    pub fn is_closed(&self) -> bool {
        let st = self.shared.lock();
        st.finished || st.session.error().is_some()
    }

    /// Waits until the session has ended and its socket is closed; returns why.
    pub async fn closed(&self) -> Error {
        std::future::poll_fn(|cx| {
            let mut st = self.shared.lock();
            if st.finished {
                return Poll::Ready(
                    st.session.error().cloned().unwrap_or_else(|| {
                        Error::new(ErrorCode::ConnectionClosed, "session closed")
                    }),
                );
            }
            push_waker(&mut st.closed_wakers, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// The reason the session ended, if it has.
    pub fn close_reason(&self) -> Option<Error> {
        self.shared.lock().session.error().cloned()
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
    fn new(shared: Arc<Shared>, id: u64, label: Option<String>) -> Self {
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
    /// is woken too.
    fn park_writer(&self, st: &mut State, cx: &mut Context<'_>) {
        st.stream_wakers.entry(self.inner.id).or_default().write = Some(cx.waker().clone());
        st.wake_driver();
    }

    /// Queues bytes; returns how many were taken, waiting while the send buffer is full.
    pub fn poll_write_bytes(
        &self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<Result<usize, Error>> {
        self.poll_queue(cx, data.len(), |session, id| session.write(id, data))
    }

    /// As [`Stream::poll_write_bytes`], but queues (a prefix of) `data` itself, not a copy.
    pub fn poll_write_owned(
        &self,
        cx: &mut Context<'_>,
        data: &Bytes,
    ) -> Poll<Result<usize, Error>> {
        self.poll_queue(cx, data.len(), |session, id| session.write_bytes(id, data))
    }

    fn poll_queue(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        queue: impl FnOnce(&mut Session, u64) -> Result<usize, Error>,
    ) -> Poll<Result<usize, Error>> {
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        let mut st = self.inner.shared.lock();
        match queue(&mut st.session, self.inner.id) {
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
    /// error if the stream can no longer be written. Shares the waker slot of a pending
    /// write: one writer per stream.
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

    /// Waits until the send buffer has room (see [`Stream::poll_writable`]): with
    /// [`Stream::try_write`], a way to send borrowed bytes without handing them to a future.
    pub async fn writable(&self) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_writable(cx)).await
    }

    /// Queues what the stream's send buffer has room for right now, without waiting:
    /// returns how many bytes were taken (0 when the buffer is full). Lets a binding
    /// complete most writes synchronously and fall back to [`Stream::write_all`] for the
    /// rest.
    pub fn try_write(&self, data: &[u8]) -> Result<usize, Error> {
        self.queue_now(data.len(), true, |session, id| session.write(id, data))
    }

    /// As [`Stream::try_write`], but queues (a prefix of) `data` itself instead of a copy:
    /// for a binding that holds the caller's buffer already.
    pub fn try_write_owned(&self, data: &Bytes) -> Result<usize, Error> {
        self.queue_now(data.len(), true, |session, id| {
            session.write_bytes(id, data)
        })
    }

    /// What fits of the `len` bytes `queue` puts into the send buffer, under one lock;
    /// wakes the driver for it if `wake`.
    fn queue_now(
        &self,
        len: usize,
        wake: bool,
        queue: impl FnOnce(&mut Session, u64) -> Result<usize, Error>,
    ) -> Result<usize, Error> {
        if len == 0 {
            return Ok(0);
        }
        let mut st = self.inner.shared.lock();
        let n = queue(&mut st.session, self.inner.id)?;
        if wake && n > 0 {
            st.wake_driver();
        }
        Ok(n)
    }

    /// As [`Stream::try_write`], but without waking the session driver: the bytes go out
    /// once something else wakes it or the caller calls [`Stream::flush`]. For a binding
    /// whose host writes in bursts from its own thread (a JavaScript event-loop turn): one
    /// wake-up, and one large socket write, per burst instead of per write, as a writer
    /// task on the runtime gets by itself.
    pub fn try_write_corked(&self, data: &[u8]) -> Result<usize, Error> {
        self.queue_now(data.len(), false, |session, id| session.write(id, data))
    }

    /// Wakes the session driver to send what [`Stream::try_write_corked`] queued.
    pub fn flush(&self) {
        self.inner.shared.lock().wake_driver();
    }

    /// Writes all of `data` (waiting for flow-control credit as needed).
    pub async fn write_all(&self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            let n = std::future::poll_fn(|cx| self.poll_write_bytes(cx, data)).await?;
            data = &data[n..];
        }
        Ok(())
    }

    /// As [`Stream::write_all`], but queues `data` itself instead of copying it.
    pub async fn write_all_owned(&self, mut data: Bytes) -> Result<(), Error> {
        while !data.is_empty() {
            let n = std::future::poll_fn(|cx| self.poll_write_owned(cx, &data)).await?;
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
        self.poll_write_bytes(cx, buf).map_err(to_io)
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
