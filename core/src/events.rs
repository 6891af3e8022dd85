//! What a peer reports about its network: one event stream per peer ([`crate::Peer::events`]),
//! the same vocabulary in every language (docs/EVENTS.md names each kind and its fields),
//! and the counters behind [`crate::Peer::stats`].
//!
//! Events are for operators and applications (what happened, to whom, why); the stable
//! error code of a failure is the one of the wire ([`ErrorCode`]). Emitting costs nothing
//! while nobody listens (the event is not even built). A subscriber that falls behind by
//! more than [`CAPACITY`] events gets one [`EventKind::Lagged`] event saying how many it
//! missed, never unbounded memory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
use crate::locator::Scheme;

/// Events a subscriber may be behind before it is told it lagged.
pub const CAPACITY: usize = 1024;

/// Which side opened the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// What happened. The names (`as_str`) are the stable vocabulary of every language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// An inbound connection turned away before any handshake: over its source's failure
    /// budget (code 19), or no handshake slot (16), or dropped unheard (16).
    InboundRefused,
    /// A handshake failed, either direction: `code`, `reason`, `duration` (time spent).
    HandshakeFailed,
    /// A dial is tried again after a listener shed load (`code`, `duration`: the pause).
    DialRetry,
    /// A session authenticated: `connection`, `remote_principal`, `duration` (handshake).
    SessionEstablished,
    /// A session ended: `code` (OK for a clean close), `reason`, `duration` (its age),
    /// `bytes_sent`, `bytes_received`.
    SessionClosed,
    /// A stream opened: `connection`, `stream` (its id), `label`, `direction` (inbound:
    /// the remote opened it).
    StreamOpened,
    /// The remote's OPEN_STREAM was refused (stream limit or open rate): `connection`,
    /// `stream`, `label`, `code` (ERR_STREAM_REFUSED).
    StreamRefused,
    /// A stream was reset: `connection`, `stream`, `label` (when still known), `code`,
    /// `direction` (inbound: the remote reset it).
    StreamReset,
    /// A session closed because the remote stopped answering PINGs (code 13); a
    /// `session_closed` follows as for any close.
    KeepaliveTimeout,
    /// A PX-1 query (PROTOCOL.md Part II): `direction` inbound = one answered, outbound =
    /// one asked; `connection`, `code` when it failed, `count` (principals in the answer;
    /// never the principals themselves).
    Px1Query,
    /// An inbound connection dropped because its source is over its failure budget
    /// (code 19): `remote_addr`. Also counted as `inbound_refused`.
    RateLimited,
    /// This subscriber missed `missed` events (it read too slowly).
    Lagged,
}

impl EventKind {
    /// Every kind, in declaration order: what a binding with a typed mirror of this enum
    /// (uniffi's `EventKind`) checks itself against, so a kind added here cannot be
    /// silently skipped there.
    pub const ALL: [EventKind; 12] = [
        EventKind::InboundRefused,
        EventKind::HandshakeFailed,
        EventKind::DialRetry,
        EventKind::SessionEstablished,
        EventKind::SessionClosed,
        EventKind::StreamOpened,
        EventKind::StreamRefused,
        EventKind::StreamReset,
        EventKind::KeepaliveTimeout,
        EventKind::Px1Query,
        EventKind::RateLimited,
        EventKind::Lagged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::InboundRefused => "inbound_refused",
            EventKind::HandshakeFailed => "handshake_failed",
            EventKind::DialRetry => "dial_retry",
            EventKind::SessionEstablished => "session_established",
            EventKind::SessionClosed => "session_closed",
            EventKind::StreamOpened => "stream_opened",
            EventKind::StreamRefused => "stream_refused",
            EventKind::StreamReset => "stream_reset",
            EventKind::KeepaliveTimeout => "keepalive_timeout",
            EventKind::Px1Query => "px1_query",
            EventKind::RateLimited => "rate_limited",
            EventKind::Lagged => "lagged",
        }
    }
}

/// One event. Which fields a kind fills is listed on [`EventKind`]; the others are None.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PeerEvent {
    pub kind: EventKind,
    pub at: SystemTime,
    /// [`crate::Connection::id`] of the session concerned.
    pub connection: Option<String>,
    pub direction: Option<Direction>,
    pub transport: Option<Scheme>,
    pub remote_addr: Option<SocketAddr>,
    pub remote_principal: Option<Principal>,
    pub code: Option<ErrorCode>,
    pub reason: Option<String>,
    pub duration: Option<Duration>,
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    pub missed: Option<u64>,
    /// The stream concerned (its id within the session) and its label.
    pub stream: Option<u64>,
    pub label: Option<String>,
    /// How many items a PX-1 answer held.
    pub count: Option<u64>,
    /// Whether the session's handshake was hs2 (PROTOCOL.md §5.8) or v1
    /// (`session_established`).
    pub hs2: Option<bool>,
}

impl PeerEvent {
    pub(crate) fn new(kind: EventKind) -> Self {
        PeerEvent {
            kind,
            at: SystemTime::now(),
            connection: None,
            direction: None,
            transport: None,
            remote_addr: None,
            remote_principal: None,
            code: None,
            reason: None,
            duration: None,
            bytes_sent: None,
            bytes_received: None,
            missed: None,
            stream: None,
            label: None,
            count: None,
            hs2: None,
        }
    }

    /// Fills where it happened.
    pub(crate) fn on(mut self, direction: Direction, path: &crate::session::Path) -> Self {
        self.direction = Some(direction);
        self.transport = Some(path.transport.clone());
        self.remote_addr = path.remote;
        self
    }

    pub(crate) fn error(mut self, e: &Error) -> Self {
        self.code = Some(e.code);
        self.reason = Some(e.reason().to_string());
        self
    }
}

/// A subscription to a peer's events; dropping it unsubscribes.
pub struct Events {
    rx: broadcast::Receiver<PeerEvent>,
}

impl Events {
    /// The next event; None once the peer is gone.
    pub async fn next(&mut self) -> Option<PeerEvent> {
        match self.rx.recv().await {
            Ok(ev) => Some(ev),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                let mut ev = PeerEvent::new(EventKind::Lagged);
                ev.missed = Some(n);
                Some(ev)
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// A peer's counters ([`crate::Peer::stats`]).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PeerStats {
    /// Sessions open now, and authenticated since the peer started, by direction.
    pub sessions_open: usize,
    pub sessions_inbound: u64,
    pub sessions_outbound: u64,
    /// Of those, the sessions whose handshake was hs2 (PROTOCOL.md §5.8); the others ran
    /// v1 (a v1 peer, `PeerConfig::hs2` off on either side, a fallback, the TypeScript
    /// profile). How far a network has moved to hs2.
    pub sessions_hs2: u64,
    /// Handshakes that failed, by error code (either direction).
    pub handshakes_failed: BTreeMap<u64, u64>,
    /// Inbound connections turned away before any handshake, by error code.
    pub inbound_refused: BTreeMap<u64, u64>,
    /// Inbound connections in admission now (waiting for first bytes or handshaking).
    pub pending_handshakes: usize,
    /// Bytes on the wire of every session since the peer started, open and closed
    /// ([`crate::ConnectionStats::bytes_sent`]).
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// What the session drivers report to (held by each, weakly tied to the channel: a
/// driver that outlives its peer does not keep subscriptions open).
struct Tap {
    tx: broadcast::WeakSender<PeerEvent>,
    /// Bytes of every authenticated session, added as they move.
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

impl crate::session::Observer for Tap {
    /// The peer's own observer reports ends (`peer.rs`, `SessionObserver`).
    fn ended(&self, _conn: crate::Connection) {}

    fn bytes(&self, sent: u64, received: u64) {
        if sent > 0 {
            self.bytes_sent.fetch_add(sent, Ordering::Relaxed);
        }
        if received > 0 {
            self.bytes_received.fetch_add(received, Ordering::Relaxed);
        }
    }

    fn listening(&self) -> bool {
        // No upgrade (two atomic writes) while the channel has no receiver at all.
        self.tx.upgrade().is_some_and(|tx| tx.receiver_count() > 0)
    }

    fn established(&self, note: crate::session::EstablishedNote) {
        let Some(tx) = self.tx.upgrade() else { return };
        if tx.receiver_count() == 0 {
            return;
        }
        let mut ev = PeerEvent::new(EventKind::SessionEstablished);
        ev.connection = Some(note.connection);
        ev.remote_principal = note.remote_principal;
        ev.duration = Some(note.took);
        let direction = if note.outbound {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        ev.direction = Some(direction);
        ev.transport = Some(note.transport);
        ev.remote_addr = note.remote;
        ev.hs2 = Some(note.hs2);
        let _ = tx.send(ev);
    }

    fn stream(&self, connection: &str, note: crate::session::StreamNote) {
        use crate::session::StreamNote;
        let Some(tx) = self.tx.upgrade() else { return };
        if tx.receiver_count() == 0 {
            return;
        }
        let ev = match note {
            StreamNote::Opened { id, label, inbound } => {
                let mut ev = PeerEvent::new(EventKind::StreamOpened);
                ev.stream = Some(id);
                ev.label = label;
                ev.direction = Some(if inbound {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                });
                ev
            }
            StreamNote::Refused { id, label } => {
                let mut ev = PeerEvent::new(EventKind::StreamRefused);
                ev.stream = Some(id);
                ev.label = label;
                ev.code = Some(ErrorCode::StreamRefused);
                ev
            }
            StreamNote::Reset {
                id,
                label,
                code,
                by_peer,
            } => {
                let mut ev = PeerEvent::new(EventKind::StreamReset);
                ev.stream = Some(id);
                ev.label = label;
                ev.code = Some(code);
                ev.direction = Some(if by_peer {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                });
                ev
            }
        };
        let mut ev = ev;
        ev.connection = Some(connection.to_string());
        let _ = tx.send(ev);
    }
}

/// Where a peer's events go and what it counts.
pub(crate) struct Monitor {
    /// The one strong sender (sessions hold the tap's weak one); None once the peer is
    /// closed, which ends every subscription after the events it queued.
    tx: Mutex<Option<broadcast::Sender<PeerEvent>>>,
    tap: std::sync::Arc<Tap>,
    sessions_inbound: AtomicU64,
    sessions_outbound: AtomicU64,
    sessions_hs2: AtomicU64,
    handshakes_failed: Mutex<BTreeMap<u64, u64>>,
    inbound_refused: Mutex<BTreeMap<u64, u64>>,
}

impl Default for Monitor {
    fn default() -> Self {
        let tx = broadcast::channel(CAPACITY).0;
        Monitor {
            tap: std::sync::Arc::new(Tap {
                tx: tx.downgrade(),
                bytes_sent: AtomicU64::new(0),
                bytes_received: AtomicU64::new(0),
            }),
            tx: Mutex::new(Some(tx)),
            sessions_inbound: AtomicU64::new(0),
            sessions_outbound: AtomicU64::new(0),
            sessions_hs2: AtomicU64::new(0),
            handshakes_failed: Mutex::new(BTreeMap::new()),
            inbound_refused: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Monitor {
    /// A subscription; one made after [`Monitor::end`] has ended already.
    pub(crate) fn subscribe(&self) -> Events {
        let rx = match &*self.tx.lock().unwrap() {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        };
        Events { rx }
    }

    /// Sends the event `build` makes, if anyone listens.
    pub(crate) fn emit(&self, build: impl FnOnce() -> PeerEvent) {
        if let Some(tx) = &*self.tx.lock().unwrap() {
            if tx.receiver_count() > 0 {
                let _ = tx.send(build());
            }
        }
    }

    /// The peer is closed: each subscription ends after the events it has queued, and
    /// nothing more is sent (`Peer::close`).
    pub(crate) fn end(&self) {
        self.tx.lock().unwrap().take();
    }

    /// Counts an authenticated session (`hs2`: its handshake was hs2).
    pub(crate) fn established(&self, direction: Direction, hs2: bool) {
        let c = match direction {
            Direction::Inbound => &self.sessions_inbound,
            Direction::Outbound => &self.sessions_outbound,
        };
        c.fetch_add(1, Ordering::Relaxed);
        if hs2 {
            self.sessions_hs2.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a failed handshake and reports it (`took`: time spent, when known).
    pub(crate) fn handshake_failed(
        &self,
        direction: Direction,
        path: &crate::session::Path,
        error: &Error,
        took: Option<Duration>,
    ) {
        self.emit(|| {
            let mut ev = PeerEvent::new(EventKind::HandshakeFailed).error(error);
            ev.duration = took;
            ev.on(direction, path)
        });
        *self
            .handshakes_failed
            .lock()
            .unwrap()
            .entry(error.code.as_u64())
            .or_insert(0) += 1;
    }

    /// Counts and reports an inbound connection turned away before any handshake.
    pub(crate) fn refused(&self, remote: SocketAddr, code: ErrorCode) {
        if code == ErrorCode::RateLimited {
            self.emit(|| {
                let mut ev = PeerEvent::new(EventKind::RateLimited);
                ev.code = Some(code);
                ev.direction = Some(Direction::Inbound);
                ev.remote_addr = Some(remote);
                ev
            });
        }
        self.emit(|| {
            let mut ev = PeerEvent::new(EventKind::InboundRefused);
            ev.code = Some(code);
            ev.direction = Some(Direction::Inbound);
            ev.remote_addr = Some(remote);
            ev
        });
        *self
            .inbound_refused
            .lock()
            .unwrap()
            .entry(code.as_u64())
            .or_insert(0) += 1;
    }

    /// What each session driver reports to: stream events and the byte totals.
    pub(crate) fn observer(&self) -> std::sync::Arc<dyn crate::session::Observer> {
        self.tap.clone()
    }

    /// `sessions_open`: the sessions open now.
    pub(crate) fn stats(&self, sessions_open: usize, pending_handshakes: usize) -> PeerStats {
        PeerStats {
            sessions_open,
            bytes_sent: self.tap.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.tap.bytes_received.load(Ordering::Relaxed),
            sessions_inbound: self.sessions_inbound.load(Ordering::Relaxed),
            sessions_outbound: self.sessions_outbound.load(Ordering::Relaxed),
            sessions_hs2: self.sessions_hs2.load(Ordering::Relaxed),
            handshakes_failed: self.handshakes_failed.lock().unwrap().clone(),
            inbound_refused: self.inbound_refused.lock().unwrap().clone(),
            pending_handshakes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    /// `ALL` holds every kind once, in declaration order. A new kind breaks the exhaustive
    /// match below until it is given the next position there: add it to `ALL` with it.
    #[test]
    fn all_lists_every_kind_once() {
        fn position(k: EventKind) -> usize {
            match k {
                EventKind::InboundRefused => 0,
                EventKind::HandshakeFailed => 1,
                EventKind::DialRetry => 2,
                EventKind::SessionEstablished => 3,
                EventKind::SessionClosed => 4,
                EventKind::StreamOpened => 5,
                EventKind::StreamRefused => 6,
                EventKind::StreamReset => 7,
                EventKind::KeepaliveTimeout => 8,
                EventKind::Px1Query => 9,
                EventKind::RateLimited => 10,
                EventKind::Lagged => 11,
            }
        }
        for (i, k) in EventKind::ALL.iter().enumerate() {
            assert_eq!(position(*k), i, "{}", k.as_str());
        }
        let names: std::collections::BTreeSet<_> =
            EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), EventKind::ALL.len());
    }

    use super::*;

    #[tokio::test]
    async fn a_slow_subscriber_is_told_how_many_it_missed() {
        let m = Monitor::default();
        let mut slow = m.subscribe();
        for _ in 0..CAPACITY + 10 {
            m.emit(|| PeerEvent::new(EventKind::DialRetry));
        }
        let first = slow.next().await.unwrap();
        assert_eq!(first.kind, EventKind::Lagged);
        assert_eq!(first.missed, Some(10));
        assert_eq!(slow.next().await.unwrap().kind, EventKind::DialRetry);
    }

    #[tokio::test]
    async fn session_drivers_see_whether_anyone_listens() {
        use crate::session::StreamNote;
        let m = Monitor::default();
        let tap = m.observer();
        assert!(!tap.listening());
        let mut sub = m.subscribe();
        assert!(tap.listening());
        tap.stream(
            "0011223344556677",
            StreamNote::Refused {
                id: 3,
                label: Some("x".into()),
            },
        );
        let ev = sub.next().await.unwrap();
        assert_eq!(ev.kind, EventKind::StreamRefused);
        assert_eq!(ev.connection.as_deref(), Some("0011223344556677"));
        assert_eq!((ev.stream, ev.label.as_deref()), (Some(3), Some("x")));
        drop(sub);
        assert!(!tap.listening());
        // Byte totals only grow, whoever adds.
        tap.bytes(10, 0);
        tap.bytes(0, 7);
        let st = m.stats(0, 0);
        assert_eq!((st.bytes_sent, st.bytes_received), (10, 7));
        // A driver outliving its peer keeps no subscription open.
        drop(m);
        assert!(!tap.listening());
    }

    #[test]
    fn nothing_is_built_while_nobody_listens() {
        let m = Monitor::default();
        m.emit(|| panic!("built an event nobody reads"));
        let _sub = m.subscribe();
        let mut built = false;
        m.emit(|| {
            built = true;
            PeerEvent::new(EventKind::DialRetry)
        });
        assert!(built);
    }
}
