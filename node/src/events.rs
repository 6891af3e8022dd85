//! A peer's events and counters (docs/EVENTS.md): the core's `Events`, `PeerEvent`,
//! `PeerStats` and `ConnectionStats` as plain JavaScript objects, field for field, and the
//! pull-style subscription `index.js` turns into an async iterator. Nothing is decided
//! here: every value comes from the core.
//!
//! Times are milliseconds (`at`: since the Unix epoch, which `index.js` turns into a
//! `Date`; durations as fractional numbers); byte counts are numbers (exact below 2^53).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use napi_derive::napi;
use tokio::sync::{watch, Mutex};

use crate::util::on_core;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One event (docs/EVENTS.md, "Event kinds"); `kind` says which fields are set.
#[napi(object)]
pub struct PeerEventJs {
    /// `session_established`, `session_closed`, `handshake_failed`, `inbound_refused`,
    /// `dial_retry`, `stream_opened`, `stream_refused`, `stream_reset`, `keepalive_timeout`,
    /// `px1_query`, `rate_limited` or `lagged`.
    pub kind: String,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub at: f64,
    /// `conn.id` of the session concerned.
    pub connection: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// Locator scheme: `tcp`, `ws`, `wss` (`external` for a stream handed to the core).
    pub transport: Option<String>,
    /// `ip:port`.
    pub remote_addr: Option<String>,
    /// `stacks:SP…`
    pub remote_principal: Option<String>,
    /// The protocol's error code (0 for a clean close).
    pub code: Option<u32>,
    pub reason: Option<String>,
    /// Milliseconds: handshake time, session age, time spent on a failed handshake, or the
    /// pause before a dial's next try, by kind.
    pub duration: Option<f64>,
    pub bytes_sent: Option<i64>,
    pub bytes_received: Option<i64>,
    /// `lagged`: events this subscriber missed.
    pub missed: Option<i64>,
    /// The stream concerned (its id within the session) and its label.
    pub stream: Option<i64>,
    pub label: Option<String>,
    /// `px1_query`: how many items the answer held.
    pub count: Option<i64>,
    /// `session_established`: whether the handshake was hs2 (PROTOCOL.md §5.8) or v1.
    pub hs2: Option<bool>,
}

impl From<snap2p::PeerEvent> for PeerEventJs {
    fn from(e: snap2p::PeerEvent) -> Self {
        PeerEventJs {
            kind: e.kind.as_str().to_string(),
            at: e.at.duration_since(UNIX_EPOCH).map_or(0.0, ms),
            connection: e.connection,
            direction: e.direction.map(|d| d.as_str().to_string()),
            transport: e.transport.map(|t| t.as_str().to_string()),
            remote_addr: e.remote_addr.map(|a| a.to_string()),
            remote_principal: e.remote_principal.map(|p| p.to_string()),
            code: e.code.map(|c| c.as_u64() as u32),
            reason: e.reason,
            duration: e.duration.map(ms),
            bytes_sent: e.bytes_sent.map(|b| b as i64),
            bytes_received: e.bytes_received.map(|b| b as i64),
            missed: e.missed.map(|m| m as i64),
            stream: e.stream.map(|s| s as i64),
            label: e.label,
            count: e.count.map(|c| c as i64),
            hs2: e.hs2,
        }
    }
}

/// The core subscription behind one `peer.events()`: `next` is awaited from a core task,
/// `close` and `end` from any thread. No lock here is held across a host call.
pub(crate) struct EventsInner {
    /// Held (async lock) by the one `next` in progress; None once closed.
    events: Mutex<Option<snap2p::Events>>,
    /// `close()`: stop now, unread events dropped.
    closed: watch::Sender<bool>,
}

impl EventsInner {
    fn new(events: snap2p::Events) -> Arc<Self> {
        Arc::new(EventsInner {
            events: Mutex::new(Some(events)),
            closed: watch::channel(false).0,
        })
    }

    /// The next event; None once closed, or once the peer is closed (or gone) and its
    /// last events are read (the core ends its subscriptions after the peer's close). The core's receive is cancel-safe, so a `next` dropped while
    /// waiting loses nothing.
    async fn next(&self) -> Option<snap2p::PeerEvent> {
        let mut closed = self.closed.subscribe();
        let mut slot = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => return None,
            slot = self.events.lock() => slot,
        };
        let events = slot.as_mut()?;
        let ev = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => None,
            ev = events.next() => ev,
        };
        if ev.is_none() {
            // Closed, or the peer is gone: unsubscribe now.
            *slot = None;
        }
        ev
    }

    /// Stops the subscription; idempotent.
    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
        // Unsubscribe at once unless a `next` holds the receiver (it drops it itself).
        if let Ok(mut slot) = self.events.try_lock() {
            *slot = None;
        }
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}

/// A subscription to a peer's events (`peer.events()`); `index.js` makes it an async
/// iterator. Garbage collection of an idle subscription unsubscribes it too.
#[napi]
pub struct NativeEventSubscription {
    inner: Arc<EventsInner>,
}

impl NativeEventSubscription {
    pub(crate) fn new(events: snap2p::Events) -> Self {
        NativeEventSubscription {
            inner: EventsInner::new(events),
        }
    }
}

#[napi]
impl NativeEventSubscription {
    /// The next event; `null` once closed (or the peer is closed).
    #[napi]
    pub async fn next(&self) -> napi::Result<Option<PeerEventJs>> {
        let inner = self.inner.clone();
        let ev = on_core(async move { Ok(inner.next().await) }).await?;
        Ok(ev.map(Into::into))
    }

    /// Stops the subscription: a `next()` waiting resolves `null`, and the core stops
    /// queueing events for it. Idempotent.
    #[napi]
    pub fn close(&self) {
        self.inner.close();
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// A peer's counters now (`peer.stats()`, docs/EVENTS.md "Counters").
#[napi(object)]
pub struct PeerStatsJs {
    /// Sessions open now.
    pub sessions_open: i64,
    /// Sessions authenticated since the peer started, by direction.
    pub sessions_inbound: i64,
    pub sessions_outbound: i64,
    /// Of those, the sessions whose handshake was hs2 (docs/PROTOCOL.md §5.8); the others
    /// ran v1.
    pub sessions_hs2: i64,
    /// Failed handshakes (either direction) by error code.
    pub handshakes_failed: HashMap<String, i64>,
    /// Inbound connections turned away before any handshake, by error code.
    pub inbound_refused: HashMap<String, i64>,
    /// Inbound connections in admission now.
    pub pending_handshakes: i64,
    /// Bytes on the wire of every session since the peer started, open and ended.
    pub bytes_sent: i64,
    pub bytes_received: i64,
}

fn by_code(m: std::collections::BTreeMap<u64, u64>) -> HashMap<String, i64> {
    m.into_iter()
        .map(|(k, v)| (k.to_string(), v as i64))
        .collect()
}

impl From<snap2p::PeerStats> for PeerStatsJs {
    fn from(s: snap2p::PeerStats) -> Self {
        PeerStatsJs {
            sessions_open: s.sessions_open as i64,
            sessions_inbound: s.sessions_inbound as i64,
            sessions_outbound: s.sessions_outbound as i64,
            sessions_hs2: s.sessions_hs2 as i64,
            handshakes_failed: by_code(s.handshakes_failed),
            inbound_refused: by_code(s.inbound_refused),
            pending_handshakes: s.pending_handshakes as i64,
            bytes_sent: s.bytes_sent as i64,
            bytes_received: s.bytes_received as i64,
        }
    }
}

/// One session's counters now (`conn.stats()`).
#[napi(object)]
pub struct ConnectionStatsJs {
    /// The session's bytes as they go on the wire (framing, Noise tags and control
    /// messages included; for WebSocket, before its own framing).
    pub bytes_sent: i64,
    pub bytes_received: i64,
    /// Frames written and read, handshake included.
    pub frames_sent: i64,
    pub frames_received: i64,
    pub open_streams: i64,
    /// Streams opened since the session began, either side.
    pub streams_opened: i64,
    /// Smoothed round-trip time from keepalive, ms (absent until the first PONG).
    pub rtt: Option<f64>,
    /// From the first byte to AUTH_OK, ms.
    pub handshake: Option<f64>,
    /// Whether the handshake was hs2, of two round trips (docs/PROTOCOL.md §5.8), or v1's
    /// three.
    pub hs2: bool,
    /// Since the session's transport connection was handed to it, ms.
    pub age: f64,
    /// The current path: `tcp`, `ws`, `wss`, `relay` (through a relay), `punch`
    /// (hole-punched), …
    pub transport: String,
    pub remote_addr: Option<String>,
    pub local_addr: Option<String>,
}

impl From<snap2p::ConnectionStats> for ConnectionStatsJs {
    fn from(s: snap2p::ConnectionStats) -> Self {
        ConnectionStatsJs {
            bytes_sent: s.bytes_sent as i64,
            bytes_received: s.bytes_received as i64,
            frames_sent: s.frames_sent as i64,
            frames_received: s.frames_received as i64,
            open_streams: s.open_streams as i64,
            streams_opened: s.streams_opened as i64,
            rtt: s.rtt.map(ms),
            handshake: s.handshake.map(ms),
            hs2: s.hs2,
            age: ms(s.age),
            transport: s.transport.as_str().to_string(),
            remote_addr: s.remote_addr.map(|a| a.to_string()),
            local_addr: s.local_addr.map(|a| a.to_string()),
        }
    }
}
