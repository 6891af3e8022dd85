//! The tokio layer: one driver task per session moves bytes between the transport and the
//! sans-IO [`Session`], owns its one timer and wakes the tasks that wait on streams.
//!
//! The application handles live beside it ([`Connection`] in `connection.rs`, [`Stream`] in
//! `stream.rs`); they lock the shared state only to call the machine and to park their
//! waker, and no host callback ever runs under that lock. The driver
//! keeps reading while a write is blocked (a peer that does the same can never deadlock us)
//! and coalesces everything queued into large socket writes. Receive and send buffers are
//! released when a session goes quiet, so idle sessions stay small.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::connection::Connection;
use super::machine::Session;
use super::release::ReleaseIfEmpty;
use super::shared::{wake_all, EstablishedNote, Observer, Shared, State};
use super::stream::Stream;

/// How much encrypted output the driver prepares ahead of the socket.
const WRITE_BATCH: usize = 256 * 1024;
/// Largest single socket read.
const READ_CHUNK: usize = 64 * 1024;
/// The read buffer before AUTH_OK: a pre-auth frame is at most 1,024 bytes. Why not
/// READ_CHUNK from the start: a slowloris that sends one byte per connection and reconnects
/// ~9,000 times a second made every one of its handshakes hold 64 KiB, and the listener's
/// RSS stayed 34 MiB above its baseline after a 10-minute attack (docs/RELIABILITY.md §7).
const PREAUTH_CHUNK: usize = 2048;
/// The stack buffer an idle session reads into before it takes a read buffer.
const PROBE: usize = 2048;
/// Input one driver poll handles before it yields. The readers it woke are usually queued
/// on the driver's own worker: a driver that kept reading (up to 32 passes of 1 MiB) ran
/// tens of MiB ahead of them, held it all in memory and, with 1,000 streams, took ~20 %
/// longer (docs/BENCHMARKS.md, "What changed" 15).
const INPUT_PER_POLL: usize = 1024 * 1024;

/// Inbound streams whose label a protocol handler claims go to that handler instead of
/// the application's accept queue. Implemented above the session layer (the peer's
/// protocol router); the driver only asks and hands over.
pub(crate) trait InboundRouter: Send + Sync {
    /// Whether a handler takes streams labelled `label`. Called under the session lock:
    /// a lookup, never host code.
    fn claims(&self, label: Option<&str>) -> bool;
    /// Hands a claimed stream over; called after the session lock is released.
    fn route(&self, conn: Connection, stream: Stream);
}

/// Where a session's bytes go: the transport and the socket addresses it reports.
#[derive(Clone, Debug)]
pub(crate) struct Path {
    pub transport: crate::locator::Scheme,
    pub remote: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
}

/// Starts the driver for `session` over `io` on the current tokio runtime.
pub(crate) fn spawn<T>(
    session: Session,
    io: T,
    path: Path,
    router: Option<Arc<dyn InboundRouter>>,
    observer: Option<Arc<dyn Observer>>,
    span: tracing::Span,
) -> Arc<Shared>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::new(Shared {
        state: Mutex::new(State::new(session)),
        remote_addr: path.remote,
        local_addr: path.local,
        transport: path.transport,
        started: Instant::now(),
        handshake: std::sync::OnceLock::new(),
        bytes_out: AtomicU64::new(0),
        bytes_in: AtomicU64::new(0),
    });
    let driver = Driver {
        shared: shared.clone(),
        router,
        observer,
        counted: false,
        connection: None,
        handshake_span: Some(tracing::debug_span!(parent: &span, "handshake")),
        phase: "",
        span,
        io,
        rbuf: BytesMut::new(),
        big_reads: false,
        wbuf: Vec::new(),
        wpos: 0,
        read_closed: false,
        timer: None,
        timer_at: None,
        drain: None,
    };
    tokio::spawn(driver);
    shared
}

/// The session's task. Its size is an idle session's memory, rounded up: tokio's task cell
/// (header, this future, trailer) is 128-byte aligned on x86_64 and aarch64, so a driver of
/// 304 bytes made each session's task 512 bytes where 272 make it 384 (2026-12-07,
/// `snap2p-idleheap`). Hence the rarely used parts boxed (`drain`), `connection` a
/// `Box<str>`, and a flag for the read chunk; `size_of_driver_keeps_the_task_cell_at_384`
/// checks the bound.
struct Driver<T> {
    shared: Arc<Shared>,
    /// Where streams a protocol handler claims go.
    router: Option<Arc<dyn InboundRouter>>,
    /// Who counts the bytes of authenticated sessions and hears of their streams.
    observer: Option<Arc<dyn Observer>>,
    /// Whether this session's bytes go to the observer (from AUTH_OK on).
    counted: bool,
    /// [`Connection::id`], once established and observed.
    connection: Option<Box<str>>,
    /// The session's span (`connection` recorded at AUTH_OK), and its handshake's until
    /// then: neither names the remote principal.
    span: tracing::Span,
    handshake_span: Option<tracing::Span>,
    /// The handshake step last logged.
    phase: &'static str,
    io: T,
    rbuf: BytesMut,
    /// Whether the read buffer grows by READ_CHUNK (from AUTH_OK on) or PREAUTH_CHUNK.
    big_reads: bool,
    wbuf: Vec<u8>,
    wpos: usize,
    read_closed: bool,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    timer_at: Option<Instant>,
    /// After an established session ended: the socket is shut down for writing and read
    /// to the peer's end of stream ([`Driver::poll_drain`]).
    drain: Option<Box<Drain>>,
}

/// The end of an established session's socket.
struct Drain {
    /// Whether our side is shut down (FIN sent, after everything written).
    shut: bool,
    /// When the peer has had long enough to close its side (`close_linger`).
    deadline: Pin<Box<tokio::time::Sleep>>,
    _slot: DrainSlot<'static>,
}

/// How many sockets of this process may drain at once. Why a bound: a peer that never
/// ends its side after our close holds its socket for `close_linger` (10 s), so one that
/// opens and ends sessions in a loop would hold (its session rate × 10 s) descriptors.
/// Above the bound a socket is closed at once, as before the drain. A session ending
/// normally drains for one round trip, so 512 at once is ~5,000 session ends a second
/// on a 100 ms path.
const MAX_DRAINING: usize = 512;
static DRAINING: DrainBudget = DrainBudget::new(MAX_DRAINING);

/// Counts sockets draining at once, up to a bound.
struct DrainBudget {
    now: AtomicUsize,
    max: usize,
}

impl DrainBudget {
    const fn new(max: usize) -> DrainBudget {
        DrainBudget {
            now: AtomicUsize::new(0),
            max,
        }
    }

    /// A slot, or None when `max` sockets drain already.
    fn take(&self) -> Option<DrainSlot<'_>> {
        self.now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| DrainSlot(self))
    }
}

/// One draining socket's place in its [`DrainBudget`], given back when dropped.
struct DrainSlot<'a>(&'a DrainBudget);

impl Drop for DrainSlot<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What one lock-free read pass saw.
#[derive(Default)]
struct ReadPass {
    bytes: usize,
    eof: bool,
    error: Option<io::Error>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Driver<T> {
    /// How much the read buffer grows by.
    fn chunk(&self) -> usize {
        if self.big_reads {
            READ_CHUNK
        } else {
            PREAUTH_CHUNK
        }
    }

    /// Reads what the socket has into the driver's own buffer, without the session lock
    /// and without allocating a receive buffer for an idle session.
    fn read_socket(&mut self, cx: &mut Context<'_>) -> ReadPass {
        let mut pass = ReadPass::default();
        for _ in 0..16 {
            if self.read_closed {
                break;
            }
            let spare = self.rbuf.capacity() - self.rbuf.len();
            let result = if spare < 4096 && self.rbuf.len() < 4096 {
                // Idle (or a few bytes of a frame buffered): probe with a small stack
                // buffer before committing 64 KiB.
                let mut probe = [0u8; PROBE];
                let mut rb = ReadBuf::new(&mut probe);
                match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                    Poll::Pending => break,
                    Poll::Ready(r) => r.map(|()| {
                        let n = rb.filled().len();
                        if n > 0 {
                            // A short read is all the socket had (a keepalive PING, a
                            // small message): keep just that. Why: an idle session's PING
                            // every keepalive interval made a 64 KiB allocation and its
                            // release, per session. A full probe: more is coming.
                            self.rbuf.reserve(if n < PROBE { n } else { self.chunk() });
                            self.rbuf.extend_from_slice(rb.filled());
                        }
                        n
                    }),
                }
            } else {
                if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                    self.rbuf.reserve(self.chunk());
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
                    self.shared.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                    if self.counted {
                        if let Some(o) = &self.observer {
                            o.bytes(n as u64, 0);
                        }
                    }
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

    /// Shuts our side down and reads what the peer still sends, counting it and dropping
    /// it, until its end of stream (or an error, or `close_linger`). Why not just drop the
    /// socket: Linux answers a close() with unread bytes in the receive queue by a RST,
    /// not a FIN, and a RST throws away whatever of our last bytes (stream data, the
    /// ERROR) the peer has not acknowledged yet. The peer's frames after our close (a
    /// CLOSE_STREAM behind a FIN, a WINDOW_UPDATE) make that unread data common: on
    /// loopback, a client's received-byte total fell 135 bytes short of the server's sent
    /// total in one of three full test runs (events_more, peer byte totals).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(drain) = self.drain.as_mut() else {
            return Poll::Ready(());
        };
        if drain.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if !drain.shut {
            match Pin::new(&mut self.io).poll_shutdown(cx) {
                Poll::Pending => return Poll::Pending,
                // A peer already gone: nothing left to read either.
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => drain.shut = true,
            }
        }
        let mut scratch = [0u8; PROBE];
        for _ in 0..64 {
            let mut rb = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len() as u64;
                    self.shared.bytes_in.fetch_add(n, Ordering::Relaxed);
                    if self.counted {
                        if let Some(o) = &self.observer {
                            o.bytes(0, n);
                        }
                    }
                }
            }
        }
        // A peer that keeps sending does not keep this worker: come back later.
        cx.waker().wake_by_ref();
        Poll::Pending
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
        if this.drain.is_some() {
            return this.poll_drain(cx);
        }
        let span = this.handshake_span.as_ref().unwrap_or(&this.span).clone();
        let _entered = span.enter();
        let shared = this.shared.clone();
        let mut wake = Vec::new();
        let mut writers = Vec::new();
        shared.lock().set_driver_waker(cx.waker());
        let router = this.router.clone();
        let claims = |label: Option<&str>| router.as_ref().is_some_and(|r| r.claims(label));
        let mut rounds = 0;
        let mut input = 0;
        let mut routed = Vec::new();
        let mut notes = Vec::new();
        let listening = this.observer.as_ref().is_some_and(|o| o.listening());
        let done = loop {
            rounds += 1;
            let pass = this.read_socket(cx);
            input += pass.bytes;
            if pass.bytes > 0 {
                shared
                    .bytes_in
                    .fetch_add(pass.bytes as u64, Ordering::Relaxed);
                if this.counted {
                    if let Some(o) = &this.observer {
                        o.bytes(0, pass.bytes as u64);
                    }
                }
            }
            let mut progress = pass.bytes > 0 || pass.eof || pass.error.is_some();
            let now = Instant::now();
            let mut st = shared.lock();
            if pass.bytes > 0 {
                st.session.handle_input(&mut this.rbuf, now);
            }
            if !this.big_reads && st.session.is_established() {
                this.big_reads = true;
            }
            if this.handshake_span.is_some() {
                let phase = st.session.phase_name();
                if phase != this.phase {
                    this.phase = phase;
                    tracing::debug!(step = phase, "handshake step");
                }
                if st.session.is_established() || st.session.is_closed() {
                    if let Some(id) = st.session.session_id() {
                        this.span.record("connection", hex::encode(&id[..8]));
                    }
                    this.handshake_span = None;
                }
            }
            if !this.counted && st.session.is_established() {
                // From now on every byte goes to the peer's totals as it moves; those of
                // the handshake now (this task alone adds to these two counters).
                this.counted = true;
                if let Some(o) = &this.observer {
                    o.bytes(
                        shared.bytes_out.load(Ordering::Relaxed),
                        shared.bytes_in.load(Ordering::Relaxed),
                    );
                    let sid = st.session.session_id();
                    this.connection = sid.map(|id| hex::encode(&id[..8]).into());
                    if let Some(connection) = &this.connection {
                        o.established(EstablishedNote {
                            connection: connection.to_string(),
                            remote_principal: st.session.remote_principal().cloned(),
                            outbound: st.session.is_initiator(),
                            took: shared.started.elapsed(),
                            transport: shared.transport.clone(),
                            remote: shared.remote_addr,
                            hs2: st.session.counters().hs2,
                        });
                    }
                }
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
            st.dispatch_events(
                &mut wake,
                &mut writers,
                &claims,
                listening.then_some(&mut notes),
            );
            routed.append(&mut st.routed);
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
            this.rbuf.release_if_empty();
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
            // Arm the one timer (reset in place: no new allocation per keepalive tick).
            if deadline != this.timer_at {
                this.timer_at = deadline;
                match (deadline, this.timer.as_mut()) {
                    (Some(d), Some(t)) => t.as_mut().reset(d.into()),
                    (Some(d), None) => {
                        this.timer = Some(Box::pin(tokio::time::sleep_until(d.into())))
                    }
                    (None, _) => this.timer = None,
                }
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
        // Idle sessions keep no output buffer.
        this.wbuf.release_if_empty();
        let mut st = shared.lock();
        st.release_idle();
        let mut ended = None;
        if done {
            st.finish(&mut wake);
            if let Some(e) = st.session.error() {
                tracing::debug!(code = e.code.as_u64(), reason = e.reason(), "session ended");
            }
            if std::mem::take(&mut st.end_watched) {
                let sid = st.session.session_id().unwrap_or_default();
                ended = st
                    .session
                    .remote_principal()
                    .cloned()
                    .map(|remote| Connection::new(shared.clone(), remote, sid));
            }
        }
        let handoff = if routed.is_empty() {
            None
        } else {
            let sid = st.session.session_id().unwrap_or_default();
            let labels: Vec<Option<String>> = routed
                .iter()
                .map(|id| st.session.stream_label(*id).map(str::to_string))
                .collect();
            router
                .clone()
                .zip(st.session.remote_principal().cloned())
                .map(|(r, remote)| (r, remote, sid, labels))
        };
        drop(st);
        wake_all(wake);
        wake_all(writers);
        if let (Some(o), Some(id), false) = (&this.observer, &this.connection, notes.is_empty()) {
            for note in notes {
                o.stream(id, note);
            }
        }
        if let Some((router, remote, session_id, labels)) = handoff {
            for (id, label) in routed.into_iter().zip(labels) {
                let conn = Connection::new(shared.clone(), remote.clone(), session_id);
                router.route(conn, Stream::new(shared.clone(), id, label));
            }
        }
        if done {
            if let (Some(o), Some(conn)) = (&this.observer, ended) {
                o.ended(conn);
            }
            let (linger, silent) = {
                let st = shared.lock();
                (st.session.close_linger(), st.session.keepalive_expired())
            };
            // An authenticated peer gets its close read to the end (`poll_drain`); the
            // session has ended for everyone else already. Not a peer whose keepalive went
            // unanswered: it is not there to end its side.
            let slot = (this.counted && !this.read_closed && !silent)
                .then(|| DRAINING.take())
                .flatten();
            if let Some(slot) = slot {
                this.drain = Some(Box::new(Drain {
                    shut: false,
                    deadline: Box::pin(tokio::time::sleep(linger)),
                    _slot: slot,
                }));
                this.timer = None;
                this.rbuf = BytesMut::new();
                this.wbuf = Vec::new();
                return this.poll_drain(cx);
            }
            // Before authentication, the peer's side already ended, or too many sockets
            // draining: a best-effort shutdown, and the socket goes.
            let _ = Pin::new(&mut this.io).poll_shutdown(cx);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::DrainBudget;

    #[test]
    fn drain_budget_gives_at_most_max_slots_and_takes_them_back() {
        let budget = DrainBudget::new(3);
        let slots: Vec<_> = (0..3).map(|_| budget.take().expect("a slot")).collect();
        assert!(budget.take().is_none(), "a fourth socket closes at once");
        drop(slots);
        let again: Vec<_> = (0..3).filter_map(|_| budget.take()).collect();
        assert_eq!(again.len(), 3, "slots come back when their sockets end");
    }

    #[test]
    fn size_of_driver_keeps_the_task_cell_at_384() {
        // The peer spawns it over a `Box<dyn transport::Io>`: any boxed trait object is
        // as big (and `session` may not name `transport`). tokio's cell around it:
        // a 32-byte header, the scheduler and task id (16), the stage's tag (8), the
        // future, a 48-byte trailer, rounded up to 128: 384 for a driver of at most 280.
        let n = std::mem::size_of::<super::Driver<Box<dyn std::any::Any>>>();
        assert!(
            n <= 280,
            "Driver is {n} bytes: each session's task grows to 512"
        );
    }
}
