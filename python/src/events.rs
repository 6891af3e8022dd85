//! A peer's events and counters (docs/EVENTS.md): the core's `Events`, `PeerEvent`,
//! `PeerStats` and `ConnectionStats` as Python objects, field for field, and the
//! subscription as an async iterator. Nothing is decided here: every value comes from the
//! core. Times are seconds as floats (`at` since the Unix epoch, as `time.time()`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, UNIX_EPOCH};

use pyo3::prelude::*;
use tokio::sync::{watch, Mutex};

use crate::bridge::{aio, future_into_py};

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// One event (docs/EVENTS.md, "Event kinds"); ``kind`` says which fields are set, the
/// others are ``None``.
#[pyclass(frozen, get_all, module = "snap2p")]
pub struct PeerEvent {
    /// ``session_established``, ``session_closed``, ``handshake_failed``,
    /// ``inbound_refused``, ``dial_retry``, ``stream_opened``, ``stream_refused``,
    /// ``stream_reset``, ``keepalive_timeout``, ``px1_query``, ``rate_limited`` or
    /// ``lagged``.
    kind: &'static str,
    /// Wall-clock time, seconds since the Unix epoch (as ``time.time()``).
    at: f64,
    /// ``Connection.id`` of the session concerned.
    connection: Option<String>,
    /// ``inbound`` or ``outbound``.
    direction: Option<&'static str>,
    /// Locator scheme: ``tcp``, ``ws``, ``wss`` (``external``: a stream handed to the core).
    transport: Option<String>,
    /// ``ip:port``.
    remote_addr: Option<String>,
    /// ``stacks:SP…``
    remote_principal: Option<String>,
    /// The protocol's error code (``ErrorCode``; 0 for a clean close).
    code: Option<u64>,
    reason: Option<String>,
    /// Seconds: the handshake, the session's age, time spent on a failed handshake, or
    /// the pause before a dial's next try, by kind.
    duration: Option<f64>,
    bytes_sent: Option<u64>,
    bytes_received: Option<u64>,
    /// ``lagged``: events this subscriber missed.
    missed: Option<u64>,
    /// The stream concerned (its id within the session) and its label.
    stream: Option<u64>,
    label: Option<String>,
    /// ``px1_query``: how many items the answer held.
    count: Option<u64>,
    /// ``session_established``: whether the handshake was hs2 (PROTOCOL.md §5.8) or v1.
    hs2: Option<bool>,
}

impl From<snap2p::PeerEvent> for PeerEvent {
    fn from(e: snap2p::PeerEvent) -> Self {
        PeerEvent {
            kind: e.kind.as_str(),
            at: e.at.duration_since(UNIX_EPOCH).map_or(0.0, secs),
            connection: e.connection,
            direction: e.direction.map(|d| d.as_str()),
            transport: e.transport.map(|t| t.as_str().to_string()),
            remote_addr: e.remote_addr.map(|a| a.to_string()),
            remote_principal: e.remote_principal.map(|p| p.to_string()),
            code: e.code.map(|c| c.as_u64()),
            reason: e.reason,
            duration: e.duration.map(secs),
            bytes_sent: e.bytes_sent,
            bytes_received: e.bytes_received,
            missed: e.missed,
            stream: e.stream,
            label: e.label,
            count: e.count,
            hs2: e.hs2,
        }
    }
}

#[pymethods]
impl PeerEvent {
    fn __repr__(&self) -> String {
        let mut s = format!("PeerEvent(kind={:?}", self.kind);
        let opt = |s: &mut String, name: &str, v: Option<String>| {
            if let Some(v) = v {
                s.push_str(&format!(", {name}={v}"));
            }
        };
        opt(
            &mut s,
            "connection",
            self.connection.as_ref().map(|c| format!("{c:?}")),
        );
        opt(
            &mut s,
            "direction",
            self.direction.map(|d| format!("{d:?}")),
        );
        opt(
            &mut s,
            "transport",
            self.transport.as_ref().map(|t| format!("{t:?}")),
        );
        opt(
            &mut s,
            "remote_addr",
            self.remote_addr.as_ref().map(|a| format!("{a:?}")),
        );
        opt(&mut s, "code", self.code.map(|c| c.to_string()));
        opt(
            &mut s,
            "reason",
            self.reason.as_ref().map(|r| format!("{r:?}")),
        );
        opt(&mut s, "stream", self.stream.map(|i| i.to_string()));
        opt(
            &mut s,
            "label",
            self.label.as_ref().map(|l| format!("{l:?}")),
        );
        opt(&mut s, "count", self.count.map(|c| c.to_string()));
        opt(
            &mut s,
            "hs2",
            self.hs2
                .map(|h| if h { "True" } else { "False" }.to_string()),
        );
        opt(&mut s, "missed", self.missed.map(|m| m.to_string()));
        s.push(')');
        s
    }
}

/// The core subscription behind one ``peer.events()``: awaited from a core task, closed
/// from any thread. No lock here is held while Python runs.
///
/// Taking an event is two steps, as reading a stream and accepting a connection are:
/// [`EventsInner::fill`] (a Rust future) moves the next event into `stash`, then the
/// awaiting coroutine takes it on the event-loop thread (`_aio.anext_event`). An
/// ``__anext__`` cancelled in between (``asyncio.wait_for``) leaves the event in the stash
/// for the next one instead of losing it with the cancelled future.
pub(crate) struct EventsInner {
    /// Held (async lock) by the one `fill` in progress; None once closed.
    events: Mutex<Option<snap2p::Events>>,
    /// Events taken from the core that Python has not taken yet.
    stash: StdMutex<VecDeque<snap2p::PeerEvent>>,
    /// `close()`: stop now, unread events dropped.
    closed: watch::Sender<bool>,
}

impl EventsInner {
    fn stash(&self) -> std::sync::MutexGuard<'_, VecDeque<snap2p::PeerEvent>> {
        self.stash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until an event is in the stash (true), or the subscription is over: closed,
    /// or the peer closed (or gone) and its last events read (false; the core ends its
    /// subscriptions after the peer's close).
    async fn fill(&self) -> bool {
        let mut closed = self.closed.subscribe();
        let mut slot = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => return false,
            slot = self.events.lock() => slot,
        };
        // A cancelled fill before this one may have stashed an event nobody took.
        if !self.stash().is_empty() {
            return true;
        }
        let Some(events) = slot.as_mut() else {
            return false;
        };
        let ev = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => None,
            ev = events.next() => ev,
        };
        // No await between taking the event and stashing it.
        match ev {
            Some(ev) => {
                self.stash().push_back(ev);
                true
            }
            None => {
                *slot = None;
                false
            }
        }
    }

    fn take(&self) -> Option<snap2p::PeerEvent> {
        if *self.closed.borrow() {
            return None;
        }
        self.stash().pop_front()
    }

    fn close(&self) {
        self.closed.send_replace(true);
        self.stash().clear();
        // Unsubscribe at once unless a `fill` holds the receiver (it drops it itself).
        if let Ok(mut slot) = self.events.try_lock() {
            *slot = None;
        }
    }
}

impl EventSubscription {
    pub(crate) fn new(events: snap2p::Events) -> Self {
        EventSubscription {
            inner: Arc::new(EventsInner {
                events: Mutex::new(Some(events)),
                stash: StdMutex::default(),
                closed: watch::channel(false).0,
            }),
        }
    }
}

/// A subscription to a peer's events: ``async for event in peer.events()``, or
/// ``async with peer.events() as events``. ``close()`` (or leaving the ``async with``)
/// stops it; closing the peer ends the iteration after the events queued by then. A
/// subscriber more than 1,024 events behind gets one ``lagged`` event with the count.
#[pyclass(frozen, module = "snap2p")]
pub struct EventSubscription {
    inner: Arc<EventsInner>,
}

#[pymethods]
impl EventSubscription {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        aio(slf.py())?.getattr("anext_event")?.call1((slf,))
    }

    /// Takes a stashed event, if any. Internal (used by ``__anext__``).
    fn _take(&self) -> Option<PeerEvent> {
        self.inner.take().map(PeerEvent::from)
    }

    /// Waits for the core's next event and stashes it; ``False`` once the subscription is
    /// over. Internal.
    fn _fill<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move { Ok(inner.fill().await) })
    }

    /// Stops the subscription: an ``__anext__`` waiting ends the iteration, and the core
    /// stops queueing events for it. Idempotent.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.inner.close());
    }

    #[getter]
    fn closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    fn __aenter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, PyAny>> {
        let py = slf.py();
        let this = slf.unbind();
        future_into_py(py, async move { Ok(this) })
    }

    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc_type: Option<Bound<'py, PyAny>>,
        _exc: Option<Bound<'py, PyAny>>,
        _tb: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.close(py);
        future_into_py(py, async move { Ok(()) })
    }
}

/// A peer's counters now (``peer.stats()``, docs/EVENTS.md "Counters").
#[pyclass(frozen, get_all, module = "snap2p")]
pub struct PeerStats {
    /// Sessions open now.
    sessions_open: usize,
    /// Sessions authenticated since the peer started, by direction.
    sessions_inbound: u64,
    sessions_outbound: u64,
    /// Of those, the sessions whose handshake was hs2 (docs/PROTOCOL.md §5.8); the others
    /// ran v1.
    sessions_hs2: u64,
    /// Failed handshakes (either direction): ``{error code: count}``.
    handshakes_failed: BTreeMap<u64, u64>,
    /// Inbound connections turned away before any handshake: ``{error code: count}``.
    inbound_refused: BTreeMap<u64, u64>,
    /// Inbound connections in admission now.
    pending_handshakes: usize,
    /// Bytes on the wire of every session since the peer started, open and ended.
    bytes_sent: u64,
    bytes_received: u64,
}

impl From<snap2p::PeerStats> for PeerStats {
    fn from(s: snap2p::PeerStats) -> Self {
        PeerStats {
            sessions_open: s.sessions_open,
            sessions_inbound: s.sessions_inbound,
            sessions_outbound: s.sessions_outbound,
            sessions_hs2: s.sessions_hs2,
            handshakes_failed: s.handshakes_failed,
            inbound_refused: s.inbound_refused,
            pending_handshakes: s.pending_handshakes,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
        }
    }
}

#[pymethods]
impl PeerStats {
    fn __repr__(&self) -> String {
        format!(
            "PeerStats(sessions_open={}, sessions_inbound={}, sessions_outbound={}, \
             sessions_hs2={}, handshakes_failed={:?}, inbound_refused={:?}, \
             pending_handshakes={}, bytes_sent={}, bytes_received={})",
            self.sessions_open,
            self.sessions_inbound,
            self.sessions_outbound,
            self.sessions_hs2,
            self.handshakes_failed,
            self.inbound_refused,
            self.pending_handshakes,
            self.bytes_sent,
            self.bytes_received
        )
    }
}

/// One session's counters now (``conn.stats()``); times in seconds.
#[pyclass(frozen, get_all, module = "snap2p")]
pub struct ConnectionStats {
    /// The session's bytes on the wire (framing, Noise tags and control messages
    /// included; for WebSocket, before its own framing).
    bytes_sent: u64,
    bytes_received: u64,
    /// Frames written and read, handshake included.
    frames_sent: u64,
    frames_received: u64,
    open_streams: usize,
    /// Streams opened since the session began, either side.
    streams_opened: u64,
    /// Smoothed round-trip time from keepalive (``None`` until the first PONG).
    rtt: Option<f64>,
    /// From the first byte to AUTH_OK.
    handshake: Option<f64>,
    /// Whether the handshake was hs2, of two round trips (docs/PROTOCOL.md §5.8), or v1's
    /// three.
    hs2: bool,
    /// Since the session's transport connection was handed to it.
    age: f64,
    /// The current path: ``tcp``, ``ws``, ``wss``, ``relay`` (through a relay), ``punch``
    /// (hole-punched), …
    transport: String,
    remote_addr: Option<String>,
    local_addr: Option<String>,
}

impl From<snap2p::ConnectionStats> for ConnectionStats {
    fn from(s: snap2p::ConnectionStats) -> Self {
        ConnectionStats {
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            frames_sent: s.frames_sent,
            frames_received: s.frames_received,
            open_streams: s.open_streams,
            streams_opened: s.streams_opened,
            rtt: s.rtt.map(secs),
            handshake: s.handshake.map(secs),
            hs2: s.hs2,
            age: secs(s.age),
            transport: s.transport.as_str().to_string(),
            remote_addr: s.remote_addr.map(|a| a.to_string()),
            local_addr: s.local_addr.map(|a| a.to_string()),
        }
    }
}

#[pymethods]
impl ConnectionStats {
    fn __repr__(&self) -> String {
        format!(
            "ConnectionStats(bytes_sent={}, bytes_received={}, frames_sent={}, \
             frames_received={}, open_streams={}, streams_opened={}, hs2={}, transport={:?})",
            self.bytes_sent,
            self.bytes_received,
            self.frames_sent,
            self.frames_received,
            self.open_streams,
            self.streams_opened,
            if self.hs2 { "True" } else { "False" },
            self.transport
        )
    }
}
