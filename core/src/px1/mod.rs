//! PX-1 peer exchange (spec §10): best-effort dial-by-principal through authenticated
//! peers, with no directory, no DHT and no authority beyond the session handshake.
//!
//! - [`codec`]: the three messages and their framing (byte-exact in `docs/PROTOCOL.md (Part III)`);
//! - [`cache`]: principal → {locators, expires_at}, bounded, TTLs clamped;
//! - this module: the per-peer state, the policy of spec §10.3, and [`Px1`] as a plug-in
//!   of the peer: the [`ProtocolHandler`] of `px-1` streams (the stream server and the
//!   pushes sent when a session starts) and the [`Discovery`] module behind
//!   `peer.dial("stacks:…")` (an iterative search through connected peers). It sees the
//!   peer only through a [`PeerHandle`].
//!
//! PX-1 data are routing hints only: every dial made from a hint carries
//! `DialOptions::expect`, so a wrong hint fails the handshake (`ERR_PRINCIPAL_MISMATCH`)
//! and is evicted; it can never produce a session with the wrong identity.
//!
//! Where hints come from: PX_PUSH messages (a Public peer's own listen addresses, or hints
//! it forwards) and locators a handshake confirmed. The remote address of a session is
//! never a hint, so a Private or Stealth node's locator never leaks from its own
//! connections; hints about principals whose HELLO announced Private or Stealth are
//! dropped and never handed out.

pub mod cache;
pub mod codec;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
use crate::locator::{Host, Locator};
use crate::policy::Visibility;
use crate::protocol::{DialOptions, Discovery, PeerHandle, ProtocolHandler};
use crate::rate::TokenBucket;
use crate::session::{Connection, Stream};
use crate::wire::message::caps;

pub use cache::{
    clamp_ttl, CachedHints, HintCache, DEFAULT_TTL_SECS, MAX_LOCATORS_PER_PRINCIPAL,
    MAX_PRINCIPALS, MAX_TTL_SECS, MIN_TTL_SECS,
};
pub use codec::{FrameReader, Px1Message, MAX_LOCATORS_PER_MESSAGE, MAX_MESSAGE_LEN};

/// The label of PX-1 streams (spec §10.1).
pub const STREAM_LABEL: &str = caps::PX1;
/// Locators answered when a request has no (or a zero) `max_results`.
pub const DEFAULT_MAX_RESULTS: usize = 8;
/// Upper bound on `max_results`.
pub const MAX_RESULTS_CAP: usize = MAX_LOCATORS_PER_MESSAGE;
/// Resolve requests a session may make per second, sustained…
pub const RESOLVE_RATE_PER_SEC: f64 = 10.0;
/// …and in a burst. Excess requests get their stream reset with ERR_RATE_LIMITED.
pub const RESOLVE_BURST: f64 = 20.0;
/// PX_PUSH messages a session may send per second, sustained…
pub const PUSH_RATE_PER_SEC: f64 = 4.0;
/// …and in a burst (the initial batch: one own hint plus forwarded ones fits).
pub const PUSH_BURST: f64 = 64.0;
/// Hints about others a Public peer forwards to a new session.
pub const MAX_FORWARDED_HINTS: usize = 32;
/// Peers asked in parallel per round of a dial by principal.
pub const FANOUT: usize = 8;
/// Rounds of friends-of-friends a dial by principal goes through after asking the peers
/// it is connected to.
pub const MAX_DEPTH: usize = 3;
/// Sessions a dial by principal may open to intermediate peers, in total.
pub const MAX_INTERMEDIATE_DIALS: usize = 16;
/// Locators of the target a dial by principal may try, in total.
pub const MAX_TARGET_ATTEMPTS: usize = 16;
/// Time allowed for one resolve request (stream open to answer).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for one dial of a hinted locator (TCP connect and handshake).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a dial by principal may take overall.
pub const DIAL_PRINCIPAL_TIMEOUT: Duration = Duration::from_secs(45);
/// A PX-1 stream that delivers no complete message for this long is reset.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a search waits for the first pushes of a Public peer it just dialed (they
/// carry the next round's candidates).
pub const PUSH_SETTLE: Duration = Duration::from_millis(500);
/// Principals remembered as non-Public (their hints are refused and never answered).
const MAX_NON_PUBLIC: usize = 4096;

#[derive(Debug)]
struct SessionState {
    /// Per session, so no lock beyond the PX-1 state's.
    resolve: TokenBucket,
    push: TokenBucket,
    /// Push streams from this session that ended after carrying at least one PX_PUSH.
    push_batches: u64,
}

impl SessionState {
    fn new() -> Self {
        SessionState {
            resolve: TokenBucket::new(RESOLVE_RATE_PER_SEC, RESOLVE_BURST),
            push: TokenBucket::new(PUSH_RATE_PER_SEC, PUSH_BURST),
            push_batches: 0,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    cache: HintCache,
    sessions: HashMap<[u8; 32], SessionState>,
    /// Principals whose HELLO announced Private or Stealth, until when.
    non_public: HashMap<Principal, i64>,
}

impl State {
    fn session(&mut self, id: [u8; 32]) -> &mut SessionState {
        self.sessions.entry(id).or_insert_with(SessionState::new)
    }

    fn is_non_public(&self, p: &Principal, now: i64) -> bool {
        self.non_public.get(p).is_some_and(|until| *until > now)
    }
}

/// Per-peer PX-1 state: the hint cache and per-session limits.
#[derive(Debug)]
pub struct Px1 {
    visibility: Visibility,
    state: Arc<Mutex<State>>,
    /// Push batches per session, for a search waiting on a fresh session's pushes.
    pushes: PushBatches,
}

/// Counts processed push batches per session and wakes searches waiting for them.
#[derive(Debug, Clone)]
struct PushBatches {
    state: Arc<Mutex<State>>,
    /// Signalled whenever a push batch from some session has been processed.
    pushed: Arc<Notify>,
}

impl PushBatches {
    fn count(&self, session: [u8; 32]) -> u64 {
        lock(&self.state)
            .sessions
            .get(&session)
            .map_or(0, |s| s.push_batches)
    }

    fn note(&self, session: [u8; 32]) {
        lock(&self.state).session(session).push_batches += 1;
        self.pushed.notify_waiters();
    }

    /// Waits (bounded) until `session` delivered a push batch.
    async fn wait(&self, session: [u8; 32], within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.pushed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count(session) > 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // Every mutation is complete at each call boundary; a poisoned lock still holds a
    // consistent cache.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Px1 {
    pub fn new(visibility: Visibility) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        Px1 {
            visibility,
            pushes: PushBatches {
                state: state.clone(),
                pushed: Arc::new(Notify::new()),
            },
            state,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn visibility(&self) -> Visibility {
        self.visibility
    }

    /// The current hints for `principal` (verified first, then newest first).
    pub fn cached(&self, principal: &Principal) -> Vec<Locator> {
        self.state().cache.get(principal, crate::unix_now())
    }

    /// Everything the cache holds now, the hints valid longest first.
    pub fn snapshot(&self) -> Vec<CachedHints> {
        self.state().cache.snapshot(crate::unix_now())
    }

    /// Adds hints the application got out of band (e.g. a shared contact card). They are
    /// used like pushed hints: tried with `expect`, evicted if wrong.
    pub fn add_hint(&self, principal: &Principal, locators: &[Locator], ttl_secs: u64) {
        let locs: Vec<Locator> = locators
            .iter()
            .filter(|l| codec::is_dialable(l))
            .take(MAX_LOCATORS_PER_PRINCIPAL)
            .cloned()
            .collect();
        let now = crate::unix_now();
        let mut st = self.state();
        if !st.is_non_public(principal, now) {
            st.cache
                .insert(principal, &locs, clamp_ttl(ttl_secs), false, now);
        }
    }

    /// Forgets every hint about `principal`.
    pub fn forget(&self, principal: &Principal) {
        self.state().cache.remove(principal);
    }

    /// Our own locators as `conn`'s remote can use them: the configured external locators
    /// (a reverse proxy's `wss://…:443`), then the listeners' locators, with an unspecified
    /// IP (`0.0.0.0`, `[::]`) replaced by the local end of this session (the address the
    /// remote reached us on, or can reach us on).
    fn own_locators(&self, peer: &PeerHandle, conn: &Connection) -> Vec<Locator> {
        let local_ip = conn.local_addr().map(|a| a.ip().to_canonical());
        let mut out: Vec<Locator> = Vec::new();
        for listening in peer.reachable_locators() {
            let loc = match (listening.host(), listening.socket_addr()) {
                (Host::Ip(ip), Some(a)) if ip.is_unspecified() => match local_ip {
                    // A v4-only wildcard listener cannot be reached on a v6 local address.
                    Some(ip) if a.is_ipv6() || ip.is_ipv4() => {
                        listening.with_addr(SocketAddr::new(ip, a.port()))
                    }
                    _ => continue,
                },
                _ => listening,
            };
            if codec::is_dialable(&loc) && relevant_for(&loc, conn) && !out.contains(&loc) {
                out.push(loc);
            }
        }
        out.truncate(MAX_LOCATORS_PER_PRINCIPAL);
        out
    }

    /// Records a new session: per-session limits, and the remote's announced visibility
    /// (a non-Public principal's hints are dropped from now on).
    fn session_started(&self, conn: &Connection, live: &HashSet<[u8; 32]>) {
        let now_unix = crate::unix_now();
        let public = conn.info().remote_visibility == Some(Visibility::Public);
        let mut st = self.state();
        st.sessions.retain(|id, _| live.contains(id));
        st.sessions.insert(conn.session_id(), SessionState::new());
        if !public {
            let p = conn.remote_principal().clone();
            st.cache.remove(&p);
            if st.non_public.len() >= MAX_NON_PUBLIC && !st.non_public.contains_key(&p) {
                st.non_public.retain(|_, until| *until > now_unix);
                if st.non_public.len() >= MAX_NON_PUBLIC {
                    if let Some(k) = st.non_public.keys().next().cloned() {
                        st.non_public.remove(&k);
                    }
                }
            }
            st.non_public
                .insert(p, now_unix.saturating_add(MAX_TTL_SECS));
        }
    }

    /// Stores a hint received in a PX_PUSH on `conn`, unless policy says it must not be.
    fn accept_push(
        &self,
        conn: &Connection,
        me: &Principal,
        principal: Principal,
        locators: Vec<Locator>,
        ttl: u64,
    ) {
        if principal == *me {
            return;
        }
        let from_itself = principal == *conn.remote_principal();
        if from_itself && conn.info().remote_visibility != Some(Visibility::Public) {
            // A compliant Private/Stealth node never pushes itself (§10.3); if one does,
            // we still do not spread it.
            return;
        }
        let locs: Vec<Locator> = locators
            .into_iter()
            .filter(|l| relevant_for(l, conn))
            .take(MAX_LOCATORS_PER_PRINCIPAL)
            .collect();
        let now = crate::unix_now();
        let mut st = self.state();
        if st.is_non_public(&principal, now) {
            return;
        }
        st.cache
            .insert(&principal, &locs, clamp_ttl(ttl), false, now);
    }

    /// What we answer to `conn` about `target` (spec §10.3), at most `max` locators.
    fn answer(
        &self,
        peer: &PeerHandle,
        conn: &Connection,
        target: &Principal,
        max: usize,
    ) -> Result<Vec<Locator>, ErrorCode> {
        if self.visibility == Visibility::Stealth && !peer.allows(conn.remote_principal()) {
            return Err(ErrorCode::NotAllowed);
        }
        let mut out = if peer.principal().as_ref() == Some(target) {
            // Only a Public node may include hints about itself.
            if self.visibility == Visibility::Public {
                self.own_locators(peer, conn)
            } else {
                Vec::new()
            }
        } else {
            let now = crate::unix_now();
            let st = self.state();
            if st.is_non_public(target, now) {
                Vec::new()
            } else {
                st.cache.get(target, now)
            }
        };
        out.retain(|l| relevant_for(l, conn));
        out.truncate(max);
        Ok(out)
    }

    /// The PX_PUSH batch a Public peer sends to a new session: its own hint, then hints it
    /// holds about others (never about the remote itself or non-Public principals).
    fn initial_pushes(&self, peer: &PeerHandle, conn: &Connection) -> Vec<Px1Message> {
        let mut msgs = Vec::new();
        let Some(me) = peer.principal() else {
            return msgs;
        };
        if self.visibility != Visibility::Public {
            return msgs;
        }
        let own = self.own_locators(peer, conn);
        if !own.is_empty() {
            msgs.push(Px1Message::Push {
                principal: me,
                locators: own,
                ttl_seconds: DEFAULT_TTL_SECS as u64,
            });
        }
        let now = crate::unix_now();
        let remote = conn.remote_principal();
        let snapshot = {
            let st = self.state();
            let mut snap = st.cache.snapshot(now);
            snap.retain(|h| h.principal != *remote && !st.is_non_public(&h.principal, now));
            snap
        };
        for hint in snapshot {
            if msgs.len() > MAX_FORWARDED_HINTS {
                break;
            }
            let locators: Vec<Locator> = hint
                .locators
                .into_iter()
                .filter(|l| relevant_for(l, conn))
                .collect();
            if locators.is_empty() {
                continue;
            }
            msgs.push(Px1Message::Push {
                principal: hint.principal,
                locators,
                ttl_seconds: (hint.expires_at - now).max(MIN_TTL_SECS) as u64,
            });
        }
        msgs
    }

    fn record_verified(&self, principal: &Principal, locator: &Locator, conn: &Connection) {
        // Only Public principals are worth remembering: we would hand these out.
        if conn.info().remote_visibility != Some(Visibility::Public) {
            return;
        }
        self.state().cache.insert(
            principal,
            std::slice::from_ref(locator),
            DEFAULT_TTL_SECS,
            true,
            crate::unix_now(),
        );
    }

    fn evict(&self, principal: &Principal, locator: &Locator) {
        self.state().cache.evict_locator(principal, locator);
    }
}

/// Loopback locators only make sense to a peer on the same host.
fn relevant_for(loc: &Locator, conn: &Connection) -> bool {
    !loc.is_loopback()
        || conn
            .remote_addr()
            .is_some_and(|a| a.ip().to_canonical().is_loopback())
}

// ---------------------------------------------------------------------------------------
// Client side

/// Reads exactly one PX-1 message from `stream`.
async fn read_message(stream: &Stream) -> Result<Option<Px1Message>, Error> {
    let mut reader = FrameReader::new();
    loop {
        if let Some(m) = reader.next_message()? {
            return Ok(Some(m));
        }
        match stream.read_chunk(MAX_MESSAGE_LEN).await? {
            Some(b) => reader.push(&b),
            None if reader.buffered() == 0 => return Ok(None),
            None => {
                return Err(Error::new(
                    ErrorCode::InvalidMessage,
                    "PX-1 stream ended inside a message",
                ))
            }
        }
    }
}

/// Asks the peer of `conn` where `principal` can be dialed. The answer is a list of
/// hints (possibly empty); errors carry the code the responder reset the stream with
/// (ERR_RATE_LIMITED, ERR_NOT_ALLOWED) or a local one (ERR_TIMEOUT, ERR_STREAM_REFUSED
/// when the peer does not speak PX-1).
pub async fn resolve(
    conn: &Connection,
    principal: &Principal,
    max_results: Option<u64>,
) -> Result<Vec<Locator>, Error> {
    if !conn.supports(caps::PX1) {
        return Err(Error::new(
            ErrorCode::StreamRefused,
            "the peer does not offer PX-1",
        ));
    }
    let work = async {
        let stream = conn.open_stream(Some(STREAM_LABEL)).await?;
        let mut out = Vec::new();
        Px1Message::ResolveReq {
            principal: principal.clone(),
            max_results,
        }
        .encode_frame(&mut out)?;
        stream.write_all(&out).await?;
        stream.finish()?;
        match read_message(&stream).await? {
            Some(Px1Message::ResolveResp { mut locators }) => {
                locators.truncate(
                    max_results.map_or(MAX_RESULTS_CAP, |n| (n as usize).clamp(1, MAX_RESULTS_CAP)),
                );
                Ok(locators)
            }
            Some(_) => Err(Error::new(
                ErrorCode::InvalidMessage,
                "PX-1 answer is not a PX_RESOLVE_RESP",
            )),
            None => Err(Error::new(
                ErrorCode::InvalidMessage,
                "PX-1 stream ended without an answer",
            )),
        }
    };
    tokio::time::timeout(QUERY_TIMEOUT, work)
        .await
        .map_err(|_| Error::new(ErrorCode::Timeout, "PX-1 resolve timed out"))?
}

/// Sends PX_PUSH messages on a fresh `px-1` stream and waits until the peer has read them.
async fn send_pushes(conn: &Connection, msgs: &[Px1Message]) -> Result<(), Error> {
    if msgs.is_empty() {
        return Ok(());
    }
    if !conn.supports(caps::PX1) {
        return Err(Error::new(
            ErrorCode::StreamRefused,
            "the peer does not offer PX-1",
        ));
    }
    let mut out = Vec::new();
    for m in msgs {
        m.encode_frame(&mut out)?;
    }
    let work = async {
        let stream = conn.open_stream(Some(STREAM_LABEL)).await?;
        stream.write_all(&out).await?;
        stream.finish()?;
        // The server finishes its side once it has processed everything we sent.
        stream.read_all(0).await.map(|_| ())
    };
    tokio::time::timeout(STREAM_IDLE_TIMEOUT, work)
        .await
        .map_err(|_| Error::new(ErrorCode::Timeout, "PX-1 push timed out"))?
}

impl Px1 {
    /// Pushes a hint about `principal` to the peer of `conn`.
    ///
    /// Only Public peers push (spec §10.3; §4.1.2 forbids Private nodes to publish or
    /// forward advertisements), so this fails with ERR_NOT_ALLOWED elsewhere.
    pub async fn push(
        &self,
        conn: &Connection,
        principal: &Principal,
        locators: &[Locator],
        ttl_secs: u64,
    ) -> Result<(), Error> {
        if self.visibility != Visibility::Public {
            return Err(Error::new(
                ErrorCode::NotAllowed,
                "only Public peers push PX-1 hints",
            ));
        }
        send_pushes(
            conn,
            &[Px1Message::Push {
                principal: principal.clone(),
                locators: locators.to_vec(),
                ttl_seconds: ttl_secs,
            }],
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------
// The plug-in: protocol handler of `px-1` streams and discovery module

#[async_trait::async_trait]
impl ProtocolHandler for Px1 {
    /// Serves one inbound `px-1` stream. Problems reset the stream with their code here;
    /// nothing is returned to the router.
    async fn accept(
        &self,
        peer: PeerHandle,
        conn: Connection,
        stream: Stream,
    ) -> Result<(), Error> {
        serve(self, &peer, &conn, &stream).await;
        Ok(())
    }

    /// A new listener (or relay reservation): a Public peer pushes its own hint again to
    /// every session, so peers connected before it learn the new locator.
    fn on_locators_changed(&self, peer: &PeerHandle) {
        let Some(me) = peer.principal() else {
            return;
        };
        if self.visibility != Visibility::Public {
            return;
        }
        for conn in peer.connections() {
            if !conn.supports(caps::PX1) {
                continue;
            }
            let own = self.own_locators(peer, &conn);
            if own.is_empty() {
                continue;
            }
            let msgs = [Px1Message::Push {
                principal: me.clone(),
                locators: own,
                ttl_seconds: DEFAULT_TTL_SECS as u64,
            }];
            tokio::spawn(async move {
                if let Err(e) = send_pushes(&conn, &msgs).await {
                    tracing::debug!(connection = %conn.id(), "PX-1 push failed: {e}");
                }
            });
        }
    }

    /// Records the session and, on a Public peer, pushes our own hint and forwards what we
    /// know.
    fn on_session(&self, peer: &PeerHandle, conn: &Connection) {
        let live: HashSet<[u8; 32]> = peer.connections().iter().map(|c| c.session_id()).collect();
        self.session_started(conn, &live);
        if self.visibility != Visibility::Public || !conn.supports(caps::PX1) {
            return;
        }
        let msgs = self.initial_pushes(peer, conn);
        if msgs.is_empty() {
            return;
        }
        // The task must not keep the peer alive: hold only what the push needs.
        let conn = conn.clone();
        tokio::spawn(async move {
            if let Err(e) = send_pushes(&conn, &msgs).await {
                tracing::debug!(connection = %conn.id(), "PX-1 push failed: {e}");
            }
        });
    }
}

#[async_trait::async_trait]
impl Discovery for Px1 {
    fn name(&self) -> &str {
        STREAM_LABEL
    }

    /// The cached hints of `principal`, else the hints of connected peers asked in
    /// parallel, else friends of friends (bounded by [`MAX_DEPTH`], [`FANOUT`],
    /// [`MAX_INTERMEDIATE_DIALS`] and [`DIAL_PRINCIPAL_TIMEOUT`]). Succeeds only with a
    /// session authenticated as `principal`.
    async fn dial_principal(
        &self,
        peer: &PeerHandle,
        principal: &Principal,
        opts: DialOptions,
    ) -> Result<Connection, Error> {
        let Some(me) = peer.principal() else {
            return Err(Error::new(ErrorCode::ConnectionClosed, "peer is closed"));
        };
        let mut search = Search {
            peer,
            me,
            px: self,
            target: principal.clone(),
            opts,
            tried: HashSet::new(),
            mismatch: None,
            last_error: None,
            asked: HashSet::new(),
            candidates_dialed: HashSet::new(),
            intermediates: Vec::new(),
        };
        let res = tokio::time::timeout(DIAL_PRINCIPAL_TIMEOUT, search.run())
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorCode::Timeout,
                    "dial by principal timed out",
                ))
            });
        // Sessions opened only to ask are not the application's: close them.
        for c in &search.intermediates {
            c.close(ErrorCode::Ok, "PX-1 lookup done");
        }
        res
    }
}

async fn serve(px: &Px1, peer: &PeerHandle, conn: &Connection, stream: &Stream) {
    let Some(me) = peer.principal() else {
        stream.reset(ErrorCode::StreamRefused);
        return;
    };
    let session = conn.session_id();
    let mut reader = FrameReader::new();
    let mut pushes = 0usize;
    loop {
        let msg = match reader.next_message() {
            Err(e) => {
                stream.reset(e.code);
                return;
            }
            Ok(Some(m)) => m,
            Ok(None) => {
                match tokio::time::timeout(STREAM_IDLE_TIMEOUT, stream.read_chunk(MAX_MESSAGE_LEN))
                    .await
                {
                    Err(_) => {
                        stream.reset(ErrorCode::Timeout);
                        return;
                    }
                    Ok(Err(_)) => return,
                    Ok(Ok(Some(b))) => {
                        reader.push(&b);
                        continue;
                    }
                    Ok(Ok(None)) if reader.buffered() == 0 => break,
                    Ok(Ok(None)) => {
                        stream.reset(ErrorCode::InvalidMessage);
                        return;
                    }
                }
            }
        };
        match msg {
            Px1Message::ResolveReq {
                principal,
                max_results,
            } => {
                let allowed = px
                    .state()
                    .session(session)
                    .resolve
                    .take(1.0, Instant::now());
                if !allowed {
                    peer.report_query(true, conn, Err(ErrorCode::RateLimited));
                    stream.reset(ErrorCode::RateLimited);
                    return;
                }
                let max = match max_results {
                    None | Some(0) => DEFAULT_MAX_RESULTS,
                    Some(n) => (n.min(MAX_RESULTS_CAP as u64)) as usize,
                };
                let locators = match px.answer(peer, conn, &principal, max) {
                    Ok(l) => l,
                    Err(code) => {
                        peer.report_query(true, conn, Err(code));
                        stream.reset(code);
                        return;
                    }
                };
                peer.report_query(true, conn, Ok(locators.len()));
                let mut out = Vec::new();
                let resp = Px1Message::ResolveResp { locators };
                if resp.encode_frame(&mut out).is_err() {
                    stream.reset(ErrorCode::Internal);
                    return;
                }
                let write = tokio::time::timeout(STREAM_IDLE_TIMEOUT, stream.write_all(&out));
                if !matches!(write.await, Ok(Ok(()))) {
                    stream.reset(ErrorCode::Timeout);
                    return;
                }
            }
            Px1Message::Push {
                principal,
                locators,
                ttl_seconds,
            } => {
                let allowed = px.state().session(session).push.take(1.0, Instant::now());
                if !allowed {
                    stream.reset(ErrorCode::RateLimited);
                    return;
                }
                pushes += 1;
                px.accept_push(conn, &me, principal, locators, ttl_seconds);
            }
            Px1Message::ResolveResp { .. } => {
                // Answers travel only on streams we opened.
                stream.reset(ErrorCode::InvalidMessage);
                return;
            }
        }
    }
    let _ = stream.finish();
    if pushes > 0 {
        px.pushes.note(session);
    }
}

// ---------------------------------------------------------------------------------------
// Dial by principal

/// State of one dial-by-principal search.
struct Search<'a> {
    peer: &'a PeerHandle,
    me: Principal,
    px: &'a Px1,
    target: Principal,
    opts: DialOptions,
    tried: HashSet<Locator>,
    mismatch: Option<Error>,
    last_error: Option<Error>,
    asked: HashSet<[u8; 32]>,
    candidates_dialed: HashSet<Principal>,
    /// Sessions opened only to ask them; closed when the search ends.
    intermediates: Vec<Connection>,
}

impl Search<'_> {
    fn live_target(&self) -> Option<Connection> {
        self.peer
            .connections()
            .into_iter()
            .find(|c| *c.remote_principal() == self.target)
    }

    /// Dials hinted locators of the target in order; the handshake decides identity.
    async fn try_locators(&mut self, locators: Vec<Locator>) -> Option<Connection> {
        for loc in locators {
            if self.tried.len() >= MAX_TARGET_ATTEMPTS {
                break;
            }
            if !self.tried.insert(loc.clone()) {
                continue;
            }
            let opts = DialOptions {
                invite: self.opts.invite.clone(),
                expect: Some(self.target.clone()),
                profile: self.opts.profile,
            };
            let res = tokio::time::timeout(DIAL_TIMEOUT, self.peer.dial_locator(&loc, opts)).await;
            match res {
                Ok(Ok(conn)) => {
                    self.px.record_verified(&self.target, &loc, &conn);
                    return Some(conn);
                }
                Ok(Err(e)) if e.code == ErrorCode::PrincipalMismatch => {
                    tracing::debug!("PX-1 hint {loc} lied: {e}");
                    self.px.evict(&self.target, &loc);
                    self.mismatch = Some(e);
                }
                Ok(Err(e)) => self.last_error = Some(e),
                Err(_) => {
                    self.last_error = Some(Error::new(
                        ErrorCode::Timeout,
                        format!("dialing {loc} timed out"),
                    ))
                }
            }
        }
        None
    }

    /// Asks up to [`FANOUT`] connected PX-1 peers not asked yet, in parallel.
    async fn ask_round(&mut self) -> Vec<Locator> {
        let intermediates: HashSet<[u8; 32]> =
            self.intermediates.iter().map(|c| c.session_id()).collect();
        let mut to_ask: Vec<Connection> = self
            .peer
            .connections()
            .into_iter()
            .filter(|c| {
                *c.remote_principal() != self.target
                    && c.supports(caps::PX1)
                    && !self.asked.contains(&c.session_id())
            })
            .collect();
        // Peers we just reached first: they are the new frontier.
        to_ask.sort_by_key(|c| !intermediates.contains(&c.session_id()));
        to_ask.truncate(FANOUT);
        let mut set = JoinSet::new();
        for conn in to_ask {
            self.asked.insert(conn.session_id());
            let target = self.target.clone();
            let fresh = intermediates.contains(&conn.session_id());
            let pushes = self.px.pushes.clone();
            let peer = self.peer.clone();
            set.spawn(async move {
                if fresh && conn.info().remote_visibility == Some(Visibility::Public) {
                    // Its first pushes carry the next round's candidates.
                    pushes.wait(conn.session_id(), PUSH_SETTLE).await;
                }
                let r = resolve(&conn, &target, Some(MAX_RESULTS_CAP as u64)).await;
                let counted = r.as_ref().map(Vec::len).map_err(|e| e.code);
                peer.report_query(false, &conn, counted);
                r
            });
        }
        let mut found = Vec::new();
        while let Some(res) = set.join_next().await {
            match res {
                Ok(Ok(locs)) => {
                    for l in locs {
                        if !found.contains(&l) {
                            found.push(l);
                        }
                    }
                }
                Ok(Err(e)) => tracing::debug!("PX-1 resolve failed: {e}"),
                Err(_) => {}
            }
        }
        found
    }

    /// Dials up to [`FANOUT`] principals we hold hints for and are not connected to:
    /// friends of friends, whose answers (and pushes) widen the next round.
    async fn expand(&mut self) -> bool {
        let budget = MAX_INTERMEDIATE_DIALS.saturating_sub(self.candidates_dialed.len());
        if budget == 0 {
            return false;
        }
        let connected: HashSet<Principal> = self
            .peer
            .connections()
            .iter()
            .map(|c| c.remote_principal().clone())
            .collect();
        let candidates: Vec<CachedHints> = self
            .px
            .snapshot()
            .into_iter()
            .filter(|h| {
                h.principal != self.target
                    && h.principal != self.me
                    && !connected.contains(&h.principal)
                    && !self.candidates_dialed.contains(&h.principal)
            })
            .take(budget.min(FANOUT))
            .collect();
        if candidates.is_empty() {
            return false;
        }
        let mut set = JoinSet::new();
        for hint in candidates {
            self.candidates_dialed.insert(hint.principal.clone());
            let peer = self.peer.clone();
            set.spawn(async move {
                let mut lied = Vec::new();
                for loc in hint.locators.into_iter().take(2) {
                    let opts = DialOptions {
                        expect: Some(hint.principal.clone()),
                        ..DialOptions::default()
                    };
                    match tokio::time::timeout(DIAL_TIMEOUT, peer.dial_locator(&loc, opts)).await {
                        Ok(Ok(conn)) => return (hint.principal, Some((loc, conn)), lied),
                        Ok(Err(e)) if e.code == ErrorCode::PrincipalMismatch => lied.push(loc),
                        _ => {}
                    }
                }
                (hint.principal, None, lied)
            });
        }
        let mut any = false;
        while let Some(res) = set.join_next().await {
            let Ok((principal, reached, lied)) = res else {
                continue;
            };
            for loc in &lied {
                self.px.evict(&principal, loc);
            }
            if let Some((loc, conn)) = reached {
                self.px.record_verified(&principal, &loc, &conn);
                self.intermediates.push(conn);
                any = true;
            }
        }
        any
    }

    async fn run(&mut self) -> Result<Connection, Error> {
        for depth in 0..=MAX_DEPTH {
            if let Some(c) = self.live_target() {
                return Ok(c);
            }
            let cached = self.px.cached(&self.target);
            if let Some(c) = self.try_locators(cached).await {
                return Ok(c);
            }
            let answers = self.ask_round().await;
            if let Some(c) = self.try_locators(answers).await {
                return Ok(c);
            }
            // Hints pushed while we asked may name the target directly.
            let cached = self.px.cached(&self.target);
            if let Some(c) = self.try_locators(cached).await {
                return Ok(c);
            }
            if depth == MAX_DEPTH || self.tried.len() >= MAX_TARGET_ATTEMPTS {
                break;
            }
            let more_to_ask = self.peer.connections().iter().any(|c| {
                c.supports(caps::PX1)
                    && *c.remote_principal() != self.target
                    && !self.asked.contains(&c.session_id())
            });
            if !more_to_ask && !self.expand().await {
                break;
            }
        }
        Err(self.failure())
    }

    fn failure(&mut self) -> Error {
        if let Some(e) = self.mismatch.take() {
            return Error::new(
                ErrorCode::PrincipalMismatch,
                format!(
                    "no locator authenticated as {} ({})",
                    self.target, e.message
                ),
            );
        }
        if !self.tried.is_empty() {
            let why = self
                .last_error
                .take()
                .map(|e| e.to_string())
                .unwrap_or_default();
            return Error::new(
                ErrorCode::AllLocatorsFailed,
                format!(
                    "all {} locators of {} failed (last: {why})",
                    self.tried.len(),
                    self.target
                ),
            );
        }
        Error::new(
            ErrorCode::NotFound,
            format!("no locator found for {} through PX-1", self.target),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_limit_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = SessionState::new().resolve;
        let granted = (0..30).filter(|_| b.take(1.0, t0)).count();
        assert_eq!(granted, RESOLVE_BURST as usize);
        assert!(!b.take(1.0, t0));
        assert!(b.take(1.0, t0 + Duration::from_millis(150)));
    }
}
