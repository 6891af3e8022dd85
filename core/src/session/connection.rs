//! [`Connection`]: the application's handle on one authenticated session. It locks the
//! session's shared state only to call the machine and park a waker.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::machine::SessionInfo;
use super::shared::{push_waker, Shared, State, StreamWakers};
use super::stream::Stream;
use crate::error::{Error, ErrorCode};
use crate::identity::{AliasCard, Principal};
use crate::locator::Scheme;

/// A snapshot of one session ([`Connection::stats`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Bytes written to and read from the transport: the session's frames as they go on
    /// the wire (length prefixes, Noise tags, control messages included; for WebSocket,
    /// before its own framing).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Frames written and read, handshake included (a frame carries one or more
    /// messages: batched stream data, control messages).
    pub frames_sent: u64,
    pub frames_received: u64,
    pub open_streams: usize,
    /// Streams opened since the session began, either side (refused ones not counted).
    pub streams_opened: u64,
    /// Smoothed round-trip time from keepalive PING/PONG (None until the first PONG).
    pub rtt: Option<Duration>,
    /// From the first byte to AUTH_OK.
    pub handshake: Option<Duration>,
    /// Whether the handshake was hs2, of two round trips (PROTOCOL.md §5.8), or v1's
    /// three.
    pub hs2: bool,
    /// Since the session's transport connection was handed to it.
    pub age: Duration,
    pub transport: Scheme,
    pub remote_addr: Option<SocketAddr>,
    pub local_addr: Option<SocketAddr>,
}

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

/// [`established`], unless `abort` completes first: then the handshake fails with the
/// error it gives (a pre-auth failure like any other: AUTH_FAIL where one is due), and
/// that error is returned. Admission control evicts stalled handshakes this way.
pub(crate) async fn established_unless(
    shared: Arc<Shared>,
    abort: impl std::future::Future<Output = Error>,
) -> Result<Connection, Error> {
    tokio::select! {
        biased;
        r = established(shared.clone()) => r,
        e = abort => {
            let mut st = shared.lock();
            st.session.close(Instant::now(), e.code, &e.message);
            st.wake_driver();
            Err(e)
        }
    }
}

/// Of a session that never authenticated: whether the peer sent anything at all, and
/// whether it sent nothing after our hs2 offer ([`super::Session::hs2_unanswered`]).
pub(crate) fn handshake_answers(shared: &Shared) -> (bool, bool) {
    let st = shared.lock();
    (st.session.peer_answered(), st.session.hs2_unanswered())
}

/// Whether an authenticated session's handshake was hs2 (the peer's count of them), read
/// without building its whole [`ConnectionStats`].
pub(crate) fn ran_hs2(shared: &Shared) -> bool {
    shared.lock().session.counters().hs2
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
            if let Some(remote) = st.session.remote_principal().cloned() {
                let sid = st.session.session_id().unwrap_or_default();
                return Poll::Ready(Ok(Connection::new(shared.clone(), remote, sid)));
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

fn end_reason(st: &State) -> Error {
    st.session
        .error()
        .cloned()
        .unwrap_or_else(|| Error::new(ErrorCode::ConnectionClosed, "session closed"))
}

impl Connection {
    pub(super) fn new(shared: Arc<Shared>, remote: Principal, session_id: [u8; 32]) -> Self {
        Connection {
            shared,
            remote,
            session_id,
        }
    }

    /// The authenticated Stacks principal of the peer.
    pub fn remote_principal(&self) -> &Principal {
        &self.remote
    }

    /// The peer's current AliasCard, if it sent a valid, unexpired one.
    pub fn remote_alias(&self) -> Option<AliasCard> {
        let st = self.shared.lock();
        let now = crate::unix_now();
        st.remote_alias
            .as_deref()
            .filter(|c| c.is_current(now))
            .cloned()
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

    /// Keeps a grant the remote presented and the node verified (the core's grant handler).
    pub(crate) fn add_grant(&self, grant: crate::policy::ActiveGrant) -> Result<(), Error> {
        self.shared.lock().session.add_grant(grant)
    }

    /// Presents a PermissionGrant (its wire form) to the remote node on a
    /// `snap2p-grant` stream (PROTOCOL.md §33.4) and waits for the answer: `Ok` once the
    /// node keeps it for this session, else the node's error code (`ERR_AUTH_INVALID`,
    /// `ERR_AUTH_EXPIRED`, `ERR_NOT_ALLOWED`, `ERR_RESOURCE_EXHAUSTED`).
    pub async fn present_grant(&self, grant: &[u8]) -> Result<(), Error> {
        if grant.len() > crate::identity::MAX_GRANT_LEN {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "a grant is at most {} bytes",
                    crate::identity::MAX_GRANT_LEN
                ),
            ));
        }
        let stream = self.open_stream(Some(crate::policy::GRANT_LABEL)).await?;
        stream.write_all(grant).await?;
        stream.finish()?;
        stream.read_all(0).await.map(|_| ())
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

    /// Whether this side ended the session because its keepalive went unanswered (the
    /// peer's `keepalive_timeout` event).
    pub(crate) fn keepalive_expired(&self) -> bool {
        self.shared.lock().session.keepalive_expired()
    }

    /// Why the session ended, as [`Connection::closed`] returns it (only meaningful once
    /// it has ended).
    pub(crate) fn end_reason(&self) -> Error {
        end_reason(&self.shared.lock())
    }

    /// This side dialed (the Noise initiator).
    pub(crate) fn is_outbound(&self) -> bool {
        self.shared.lock().session.is_initiator()
    }

    /// Asks the driver to report this session's end to its observer
    /// ([`super::Observer::ended`]). False when the session has already ended: nothing
    /// will be reported, the caller reports it itself.
    pub(crate) fn watch_end(&self) -> bool {
        let mut st = self.shared.lock();
        if st.finished {
            return false;
        }
        st.end_watched = true;
        true
    }

    /// Waits until the session has ended and its last bytes are written; returns why. The
    /// socket is shut down then, and closed once the peer's end of stream is read (at most
    /// `SessionLimits::close_linger` later): bytes still read meanwhile go to the totals.
    pub async fn closed(&self) -> Error {
        std::future::poll_fn(|cx| {
            let mut st = self.shared.lock();
            if st.finished {
                return Poll::Ready(end_reason(&st));
            }
            push_waker(&mut st.closed_wakers, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// What the session has moved and how it is doing, now.
    pub fn stats(&self) -> ConnectionStats {
        let info = self.shared.lock().session.counters();
        ConnectionStats {
            bytes_sent: self.shared.bytes_out.load(Ordering::Relaxed),
            bytes_received: self.shared.bytes_in.load(Ordering::Relaxed),
            frames_sent: info.frames_sent,
            frames_received: info.frames_received,
            open_streams: info.open_streams,
            streams_opened: info.streams_opened,
            rtt: info.rtt,
            handshake: self.shared.handshake.get().copied(),
            hs2: info.hs2,
            age: self.shared.started.elapsed(),
            transport: self.shared.transport.clone(),
            remote_addr: self.shared.remote_addr,
            local_addr: self.shared.local_addr,
        }
    }

    /// A short, stable id for logs and events: the first 8 bytes of the session id, hex.
    pub fn id(&self) -> String {
        hex::encode(&self.session_id[..8])
    }

    /// The reason the session ended, if it has.
    pub fn close_reason(&self) -> Option<Error> {
        self.shared.lock().session.error().cloned()
    }
}
