//! A peer's events and counters (docs/EVENTS.md): the core's `Events`, `PeerEvent`,
//! `PeerStats` and `ConnectionStats` as uniffi records, field for field, and the event
//! subscription handle. Nothing is decided here: every value comes from the core.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{watch, Mutex};

/// What happened (docs/EVENTS.md, "Event kinds"); the same names in every language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum EventKind {
    SessionEstablished,
    SessionClosed,
    HandshakeFailed,
    InboundRefused,
    DialRetry,
    StreamOpened,
    StreamRefused,
    StreamReset,
    KeepaliveTimeout,
    Px1Query,
    RateLimited,
    Lagged,
}

impl EventKind {
    /// None for a kind the core added after this binding (such an event is skipped).
    fn from_core(k: snap2p::EventKind) -> Option<Self> {
        use snap2p::EventKind as K;
        Some(match k {
            K::SessionEstablished => EventKind::SessionEstablished,
            K::SessionClosed => EventKind::SessionClosed,
            K::HandshakeFailed => EventKind::HandshakeFailed,
            K::InboundRefused => EventKind::InboundRefused,
            K::DialRetry => EventKind::DialRetry,
            K::StreamOpened => EventKind::StreamOpened,
            K::StreamRefused => EventKind::StreamRefused,
            K::StreamReset => EventKind::StreamReset,
            K::KeepaliveTimeout => EventKind::KeepaliveTimeout,
            K::Px1Query => EventKind::Px1Query,
            K::RateLimited => EventKind::RateLimited,
            K::Lagged => EventKind::Lagged,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    /// The mirror covers every core kind (an event of a kind it lacks would be skipped).
    #[test]
    fn every_core_event_kind_has_a_uniffi_kind() {
        for k in snap2p::EventKind::ALL {
            assert!(
                EventKind::from_core(k).is_some(),
                "{} is missing",
                k.as_str()
            );
        }
    }
}

/// Which side opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    fn from_core(d: snap2p::Direction) -> Option<Self> {
        match d {
            snap2p::Direction::Inbound => Some(Direction::Inbound),
            snap2p::Direction::Outbound => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// One event. `kind` says which fields are set (docs/EVENTS.md); the others are null/nil.
/// `code` is the protocol's error code (the number every language uses; its name:
/// `errorCodeName(code)`).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PeerEvent {
    pub kind: EventKind,
    /// Wall-clock time of the event.
    pub at: SystemTime,
    /// `Connection.id()` of the session concerned.
    pub connection: Option<String>,
    pub direction: Option<Direction>,
    /// Locator scheme: `tcp`, `ws`, `wss` (`external` for a stream handed to the core).
    pub transport: Option<String>,
    /// `ip:port`.
    pub remote_addr: Option<String>,
    /// `stacks:SP…`
    pub remote_principal: Option<String>,
    pub code: Option<u64>,
    pub reason: Option<String>,
    /// Handshake time, session age, time spent on a failed handshake, or the pause
    /// before a dial's next try, by kind.
    pub duration: Option<Duration>,
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    /// `lagged`: events this subscriber missed.
    pub missed: Option<u64>,
    /// The stream concerned (its id within the session) and its label.
    pub stream: Option<u64>,
    pub label: Option<String>,
    /// `px1_query`: how many items the answer held.
    pub count: Option<u64>,
    /// `session_established`: whether the handshake was hs2 (PROTOCOL.md §5.8) or v1.
    pub hs2: Option<bool>,
}

impl PeerEvent {
    fn from_core(e: snap2p::PeerEvent) -> Option<Self> {
        Some(PeerEvent {
            kind: EventKind::from_core(e.kind)?,
            at: e.at,
            connection: e.connection,
            direction: e.direction.and_then(Direction::from_core),
            transport: e.transport.map(|t| t.as_str().to_string()),
            remote_addr: e.remote_addr.map(|a| a.to_string()),
            remote_principal: e.remote_principal.map(|p| p.to_string()),
            code: e.code.map(|c| c.as_u64()),
            reason: e.reason,
            duration: e.duration,
            bytes_sent: e.bytes_sent,
            bytes_received: e.bytes_received,
            missed: e.missed,
            stream: e.stream,
            label: e.label,
            count: e.count,
            hs2: e.hs2,
        })
    }
}

/// A subscription to a peer's events (`Peer.events()`). `next()` returns them in order,
/// null/nil once the subscription is closed, or once the peer is shut down and the events
/// queued by then are read. `close()` (Kotlin: `cancel()`, as every subscription there)
/// stops it: a `next()` waiting returns null/nil, and the core stops queueing events for
/// it. Releasing the handle stops it too. A subscriber more than 1,024 events behind gets
/// one `lagged` event with the count.
#[derive(uniffi::Object)]
pub struct EventSubscription {
    // Held (async lock) by the one `next()` in progress; None once closed.
    events: Mutex<Option<snap2p::Events>>,
    closed: watch::Sender<bool>,
}

impl EventSubscription {
    /// A subscription reading `events` (the core ends them after a peer's shutdown, once
    /// its sessions' `session_closed` are queued).
    pub(crate) fn new(events: snap2p::Events) -> Arc<Self> {
        Arc::new(EventSubscription {
            events: Mutex::new(Some(events)),
            closed: watch::channel(false).0,
        })
    }
}

#[uniffi::export]
impl EventSubscription {
    /// The next event; null/nil once closed. Polled in place (needs no runtime; the core's
    /// receive is cancel-safe): a caller that stops waiting loses no event.
    pub async fn next(&self) -> Option<PeerEvent> {
        let mut closed = self.closed.subscribe();
        let mut slot = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => return None,
            slot = self.events.lock() => slot,
        };
        loop {
            let events = slot.as_mut()?;
            let ev = tokio::select! {
                biased;
                _ = closed.wait_for(|c| *c) => None,
                ev = events.next() => ev,
            };
            match ev {
                None => {
                    // Closed, or the peer is gone: unsubscribe now.
                    *slot = None;
                    return None;
                }
                Some(ev) => {
                    if let Some(ev) = PeerEvent::from_core(ev) {
                        return Some(ev);
                    }
                }
            }
        }
    }

    /// Stops the subscription; idempotent.
    pub fn close(&self) {
        self.closed.send_replace(true);
        // Unsubscribe at once unless a `next()` holds the receiver (it drops it itself).
        if let Ok(mut slot) = self.events.try_lock() {
            *slot = None;
        }
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}

/// A peer's counters now (`Peer.stats()`, docs/EVENTS.md "Counters").
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PeerStats {
    /// Sessions open now.
    pub sessions_open: u64,
    /// Sessions authenticated since the peer started, by direction.
    pub sessions_inbound: u64,
    pub sessions_outbound: u64,
    /// Of those, the sessions whose handshake was hs2 (docs/PROTOCOL.md §5.8); the others
    /// ran v1.
    pub sessions_hs2: u64,
    /// Failed handshakes (either direction) by error code.
    pub handshakes_failed: HashMap<u64, u64>,
    /// Inbound connections turned away before any handshake, by error code.
    pub inbound_refused: HashMap<u64, u64>,
    /// Inbound connections in admission now.
    pub pending_handshakes: u64,
    /// Bytes on the wire of every session since the peer started, open and ended.
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl From<snap2p::PeerStats> for PeerStats {
    fn from(s: snap2p::PeerStats) -> Self {
        PeerStats {
            sessions_open: s.sessions_open as u64,
            sessions_inbound: s.sessions_inbound,
            sessions_outbound: s.sessions_outbound,
            sessions_hs2: s.sessions_hs2,
            handshakes_failed: s.handshakes_failed.into_iter().collect(),
            inbound_refused: s.inbound_refused.into_iter().collect(),
            pending_handshakes: s.pending_handshakes as u64,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
        }
    }
}

/// One session's counters now (`Connection.stats()`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConnectionStats {
    /// The session's bytes as they go on the wire (framing, Noise tags and control
    /// messages included; for WebSocket, before its own framing).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Frames written and read, handshake included.
    pub frames_sent: u64,
    pub frames_received: u64,
    pub open_streams: u64,
    /// Streams opened since the session began, either side.
    pub streams_opened: u64,
    /// Smoothed round-trip time from keepalive (null/nil until the first PONG).
    pub rtt: Option<Duration>,
    /// From the first byte to AUTH_OK.
    pub handshake: Option<Duration>,
    /// Whether the handshake was hs2, of two round trips (docs/PROTOCOL.md §5.8), or v1's
    /// three.
    pub hs2: bool,
    pub age: Duration,
    /// `tcp`, `ws`, `wss`, …
    pub transport: String,
    pub remote_addr: Option<String>,
    pub local_addr: Option<String>,
}

impl From<snap2p::ConnectionStats> for ConnectionStats {
    fn from(s: snap2p::ConnectionStats) -> Self {
        ConnectionStats {
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            frames_sent: s.frames_sent,
            frames_received: s.frames_received,
            open_streams: s.open_streams as u64,
            streams_opened: s.streams_opened,
            rtt: s.rtt,
            handshake: s.handshake,
            hs2: s.hs2,
            age: s.age,
            transport: s.transport.as_str().to_string(),
            remote_addr: s.remote_addr.map(|a| a.to_string()),
            local_addr: s.local_addr.map(|a| a.to_string()),
        }
    }
}
