//! The tokio half of the relay (feature `runtime`): the relay service, reservations,
//! circuits (spliced and stream), hole punching. The wire and locator logic it uses is in
//! the parent module, `codec` and `circuit`, shared with the browser build.

use super::*;
use crate::protocol::{DialOptions, PeerHandle, ProtocolHandler};
use crate::rate::TokenBucket;
use crate::session::{Connection, Stream};
use crate::transport::{BoxFuture, Connected, Incoming, Io, Listener, Transport};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::mpsc;

/// How long a request may take to get its first message or its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest chunk a circuit moves at once (what it holds per direction beyond the streams'
/// own windows).
const CHUNK: usize = 64 * 1024;

fn relay_scheme() -> Scheme {
    Scheme::Other(SCHEME.to_string())
}

/// How long the simultaneous open is tried.
const PUNCH_WINDOW: Duration = Duration::from_secs(5);

fn punch_scheme() -> Scheme {
    Scheme::Other(PUNCH_SCHEME.to_string())
}

impl RelayLimits {
    /// The bytes one circuit may carry (`circuit_max_bytes`, 0 meaning none).
    fn circuit_byte_cap(&self) -> u64 {
        match self.circuit_max_bytes {
            0 => u64::MAX,
            n => n,
        }
    }
}

/// A spliced connection waiting for its circuit: the side that presents `token`.
type SpliceWaiter = tokio::sync::oneshot::Sender<Box<dyn Io>>;

/// Largest chunk a spliced circuit copies at once, per direction (what an active circuit
/// holds on the relay: twice this). 256 KiB bought nothing measurable: relay CPU 0.39
/// CPU-s per GiB forwarded against 0.35 with 64 KiB, within the runs' noise.
const SPLICE_CHUNK: usize = 64 * 1024;

/// How long a relay keeps a splice token for a connection that has not come yet.
const SPLICE_TIMEOUT: Duration = REQUEST_TIMEOUT;

#[derive(Default)]
struct ServerState {
    /// principal → its reservation session.
    reservations: HashMap<Principal, Connection>,
    circuits: usize,
    per_peer: HashMap<Principal, usize>,
    buckets: HashMap<Principal, TokenBucket>,
    circuits_total: u64,
    spliced_total: u64,
    refused: u64,
}

struct Reservation {
    relay: Locator,
    active: bool,
    observed: Option<SocketAddr>,
    conn: Option<String>,
}

/// The RELAY-1 protocol handler and `relay://` transport (module docs).
pub struct Relay {
    config: RelayConfig,
    handle: OnceLock<PeerHandle>,
    server: Mutex<ServerState>,
    bytes_forwarded: AtomicU64,
    /// reservation session id → where its circuits go (the listener's queue).
    inbound: Mutex<HashMap<String, mpsc::Sender<Incoming>>>,
    reservations: Mutex<Vec<Arc<Mutex<Reservation>>>>,
    /// Our address as a relay last saw it (STATUS `o`): the IP of hole-punch candidates.
    observed: Mutex<Option<SocketAddr>>,
    /// Serving: splice tokens handed out whose connection has not come yet.
    splices: Mutex<HashMap<codec::SpliceToken, SpliceWaiter>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("serve", &self.config.serve)
            .finish()
    }
}

fn refusal(code: ErrorCode) -> RelayMessage {
    RelayMessage::Status {
        code: code.as_u64(),
        observed: None,
        splice: None,
    }
}

/// Sends `msg` as the last message of `stream` and waits (bounded) for the other side to
/// finish or drop it: a stream dropped with unread bytes is reset, and a reset may overtake
/// the answer. Fails only when the answer could not be queued.
async fn answer_and_close(stream: &Stream, msg: &RelayMessage) -> Result<(), Error> {
    codec::write_message(stream, msg).await?;
    // The other side may have read the answer and closed its end before this line ran:
    // then there is nothing left to end or wait for. (Seen in 5 of 16 runs of the Swift
    // suite: a dialer closed its end on reading a spliced grant, the relay's finish()
    // failed, and the circuit dropped both spliced connections; the dialer dialed again.)
    if stream.finish().is_err() {
        return Ok(());
    }
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while let Ok(Some(_)) = stream.read_chunk(4096).await {}
    })
    .await;
    Ok(())
}

impl Relay {
    pub fn new(config: RelayConfig) -> Arc<Relay> {
        Arc::new(Relay {
            config,
            handle: OnceLock::new(),
            server: Mutex::new(ServerState::default()),
            bytes_forwarded: AtomicU64::new(0),
            inbound: Mutex::new(HashMap::new()),
            reservations: Mutex::new(Vec::new()),
            observed: Mutex::new(None),
            splices: Mutex::new(HashMap::new()),
        })
    }

    /// Called once by the peer that registers this relay.
    pub(crate) fn attach(&self, handle: PeerHandle) {
        let _ = self.handle.set(handle);
    }

    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// A serving relay's counts.
    pub fn stats(&self) -> RelayStats {
        let mut st = self.server.lock().unwrap();
        st.reservations.retain(|_, c| !c.is_closed());
        RelayStats {
            reservations: st.reservations.len(),
            circuits: st.circuits,
            circuits_total: st.circuits_total,
            spliced_total: st.spliced_total,
            bytes_forwarded: self.bytes_forwarded.load(Ordering::Relaxed),
            refused: st.refused,
        }
    }

    /// The reservations this peer keeps on relays (its `relay://` listeners).
    pub fn reservations(&self) -> Vec<ReservationInfo> {
        self.reservations
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                let r = r.lock().unwrap();
                ReservationInfo {
                    relay: r.relay.clone(),
                    active: r.active,
                    observed: r.observed,
                }
            })
            .collect()
    }

    fn handle(&self) -> Result<PeerHandle, Error> {
        self.handle.get().cloned().ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidArgument,
                "this Relay is not registered on a peer (PeerBuilder::relay)",
            )
        })
    }

    // -----------------------------------------------------------------------------------
    // Serving side

    fn refuse(&self, code: ErrorCode) -> RelayMessage {
        self.server.lock().unwrap().refused += 1;
        refusal(code)
    }

    /// Charges one request of `who` to its bucket; false when over the rate.
    fn charge(&self, st: &mut ServerState, who: &Principal) -> bool {
        let rate = self.config.limits.requests_per_min;
        if rate == 0 {
            return true;
        }
        if st.buckets.len() > 2 * self.config.limits.max_reservations.max(1024) {
            let now = Instant::now();
            st.buckets.retain(|_, b| !b.is_full_at(now));
        }
        st.buckets
            .entry(who.clone())
            .or_insert_with(|| TokenBucket::new(rate as f64 / 60.0, rate as f64))
            .take(1.0, Instant::now())
    }

    fn admitted(&self, who: &Principal) -> bool {
        match &self.config.admission {
            RelayAdmission::Open => true,
            RelayAdmission::Allowlist(list) => list.contains(who),
        }
    }

    async fn serve_reserve(&self, conn: &Connection, stream: &Stream) -> Result<(), Error> {
        let who = conn.remote_principal().clone();
        let answer = {
            let mut st = self.server.lock().unwrap();
            if !self.admitted(&who) {
                Err(ErrorCode::NotAllowed)
            } else if !self.charge(&mut st, &who) {
                Err(ErrorCode::RateLimited)
            } else {
                st.reservations.retain(|_, c| !c.is_closed());
                let renewing = st.reservations.contains_key(&who);
                if !renewing && st.reservations.len() >= self.config.limits.max_reservations {
                    Err(ErrorCode::ResourceExhausted)
                } else {
                    st.reservations.insert(who.clone(), conn.clone());
                    Ok(())
                }
            }
        };
        let msg = match answer {
            Err(code) => self.refuse(code),
            Ok(()) => RelayMessage::Status {
                code: 0,
                observed: conn.remote_addr(),
                splice: None,
            },
        };
        answer_and_close(stream, &msg).await
    }

    async fn serve_connect(
        &self,
        conn: &Connection,
        stream: Stream,
        target: Principal,
        dialer_splices: bool,
    ) -> Result<(), Error> {
        let who = conn.remote_principal().clone();
        let limits = &self.config.limits;
        let reserved = {
            let mut st = self.server.lock().unwrap();
            if !self.charge(&mut st, &who) {
                Err(ErrorCode::RateLimited)
            } else if target == who {
                Err(ErrorCode::InvalidMessage)
            } else {
                match st.reservations.get(&target).filter(|c| !c.is_closed()) {
                    None => Err(ErrorCode::StreamRefused),
                    Some(c) => {
                        let c = c.clone();
                        let full = st.circuits >= limits.max_circuits
                            || st.per_peer.get(&who).copied().unwrap_or(0)
                                >= limits.max_circuits_per_peer
                            || st.per_peer.get(&target).copied().unwrap_or(0)
                                >= limits.max_circuits_per_peer;
                        if full {
                            Err(ErrorCode::ResourceExhausted)
                        } else {
                            st.circuits += 1;
                            st.circuits_total += 1;
                            *st.per_peer.entry(who.clone()).or_default() += 1;
                            *st.per_peer.entry(target.clone()).or_default() += 1;
                            Ok(c)
                        }
                    }
                }
            }
        };
        let target_conn = match reserved {
            Ok(c) => c,
            Err(code) => {
                let msg = self.refuse(code);
                return answer_and_close(&stream, &msg).await;
            }
        };
        // Counted from here; released when the circuit ends, whatever the outcome.
        let _slot = CircuitSlot {
            relay: self,
            a: who.clone(),
            b: target.clone(),
        };
        // The target's token is live before INCOMING leaves: its connection may come first.
        let offer = (dialer_splices && self.config.splice).then(|| self.expect_splice());
        let offered = offer.as_ref().map(|p| p.token);
        let opened = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let out = target_conn.open_stream(Some(STREAM_LABEL)).await?;
            codec::write_message(
                &out,
                &RelayMessage::Incoming {
                    source: who.clone(),
                    observed: conn.remote_addr(),
                    splice: offered,
                },
            )
            .await?;
            match codec::read_message(&out).await? {
                Some(RelayMessage::Status {
                    code: 0, splice, ..
                }) => Ok((out, splice.is_some() && splice == offered)),
                Some(RelayMessage::Status { code, .. }) => {
                    out.reset(ErrorCode::Ok);
                    Err(Error::new(
                        ErrorCode::from_u64(code),
                        "the target refused the circuit",
                    ))
                }
                _ => {
                    out.reset(ErrorCode::InvalidMessage);
                    Err(Error::new(
                        ErrorCode::InvalidMessage,
                        "the target answered INCOMING with something else",
                    ))
                }
            }
        })
        .await;
        let (out, spliced) = match opened {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                let msg = self.refuse(e.code);
                return answer_and_close(&stream, &msg).await;
            }
            Err(_) => {
                let msg = self.refuse(ErrorCode::Timeout);
                return answer_and_close(&stream, &msg).await;
            }
        };
        let (Some(mut target_side), true) = (offer, spliced) else {
            // A target that answered without the token keeps the circuit on the stream.
            codec::write_message(
                &stream,
                &RelayMessage::Status {
                    code: 0,
                    observed: conn.remote_addr(),
                    splice: None,
                },
            )
            .await?;
            self.splice_streams(stream, out).await;
            return Ok(());
        };
        let mut dialer_side = self.expect_splice();
        let answer = RelayMessage::Status {
            code: 0,
            observed: conn.remote_addr(),
            splice: Some(dialer_side.token),
        };
        // The two streams are done: what follows goes over the spliced connections.
        let _ = out.finish();
        let sent = answer_and_close(&stream, &answer).await;
        let both = tokio::time::timeout(SPLICE_TIMEOUT, async {
            tokio::try_join!(&mut dialer_side.rx, &mut target_side.rx)
        })
        .await;
        drop((dialer_side, target_side));
        match both {
            // Both connections came with their tokens: the answers reached both sides,
            // whatever the `relay-1` streams' ends said.
            Ok(Ok((d, t))) => {
                self.server.lock().unwrap().spliced_total += 1;
                self.splice_connections(d, t).await;
                Ok(())
            }
            _ => {
                sent?;
                Err(Error::new(
                    ErrorCode::Timeout,
                    "RELAY-1: a spliced connection did not come within 10 s",
                ))
            }
        }
    }

    /// A fresh splice token and the receiver of the connection that will present it;
    /// the token is withdrawn when the returned value is dropped (used, timed out, or the
    /// circuit's task ended any other way).
    fn expect_splice(&self) -> PendingSplice<'_> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut splices = self.splices.lock().unwrap();
        loop {
            let token: codec::SpliceToken = rand::random();
            if let std::collections::hash_map::Entry::Vacant(e) = splices.entry(token) {
                e.insert(tx);
                return PendingSplice {
                    relay: self,
                    token,
                    rx,
                };
            }
        }
    }

    /// Whether `token` is a splice token this relay is waiting for (the listener asks,
    /// to let the connection past admission's per-source share like an invited KNOCK).
    pub(crate) fn expects_splice(&self, token: &codec::SpliceToken) -> bool {
        self.config.serve && self.splices.lock().unwrap().contains_key(token)
    }

    /// A spliced connection arrived (its first frame, still unread in `io`, is the SPLICE
    /// with `token`): hands it to its circuit. False when no circuit waits for it (the
    /// caller closes it without a word, as any frame that is neither, §5.2).
    pub(crate) async fn join_splice(&self, token: codec::SpliceToken, mut io: Box<dyn Io>) -> bool {
        use tokio::io::AsyncReadExt;
        let Some(tx) = self.splices.lock().unwrap().remove(&token) else {
            return false;
        };
        // Consume exactly the SPLICE frame; what follows is the circuit's.
        let mut frame = [0u8; 25];
        if io.read_exact(&mut frame).await.is_err()
            || codec::decode_splice(&frame[1..]) != Some(token)
        {
            return false;
        }
        tx.send(io).is_ok()
    }

    /// Copies bytes both ways between two spliced connections until both directions
    /// ended, either failed, or a limit was hit (then both are closed: a plain connection
    /// carries no reset code, so the peers see ERR_CONNECTION_CLOSED).
    async fn splice_connections(&self, a: Box<dyn Io>, b: Box<dyn Io>) {
        let limits = &self.config.limits;
        let used = AtomicU64::new(0);
        let max = limits.circuit_byte_cap();
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let both = async {
            tokio::try_join!(
                copy_raw(ar, bw, &used, max, &self.bytes_forwarded),
                copy_raw(br, aw, &used, max, &self.bytes_forwarded)
            )
        };
        if let Ok(Err(e)) = tokio::time::timeout(limits.circuit_max_duration, both).await {
            tracing::debug!("spliced circuit ended: {e}");
        }
    }

    /// Moves bytes both ways until both directions finished, a side reset, or a limit hit
    /// (then both sides are reset with its code).
    async fn splice_streams(&self, a: Stream, b: Stream) {
        let limits = &self.config.limits;
        let used = AtomicU64::new(0);
        let max = limits.circuit_byte_cap();
        let both = async {
            tokio::try_join!(
                pump(&a, &b, &used, max, &self.bytes_forwarded),
                pump(&b, &a, &used, max, &self.bytes_forwarded)
            )
        };
        let code = match tokio::time::timeout(limits.circuit_max_duration, both).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => e.code,
            Err(_) => ErrorCode::Timeout,
        };
        a.reset(code);
        b.reset(code);
    }

    // -----------------------------------------------------------------------------------
    // Using relays: circuits to us, circuits we dial, reservations we keep

    async fn accept_incoming(
        &self,
        conn: &Connection,
        stream: Stream,
        offered: Option<codec::SpliceToken>,
    ) -> Result<(), Error> {
        let tx = self.inbound.lock().unwrap().get(&conn.id()).cloned();
        let Some(tx) = tx else {
            // Not a relay we hold a reservation with: no circuits from it.
            return answer_and_close(&stream, &refusal(ErrorCode::NotAllowed)).await;
        };
        let permit = match tx.try_reserve() {
            Ok(p) => p,
            Err(_) => {
                return answer_and_close(&stream, &refusal(ErrorCode::ResourceExhausted)).await;
            }
        };
        // Spliced: to the relay locator our reservation on this session was made with.
        let splice_to = offered
            .filter(|_| self.config.splice)
            .and_then(|t| self.reservation_relay(&conn.id()).map(|r| (t, r)));
        // Admission counts circuits per relay: the source is the relay's address.
        let remote = conn
            .remote_addr()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        if let Some((token, relay)) = splice_to {
            // The accept loop makes the connection, inside `upgrade` like any transport's
            // setup (the relay holds the token already), while we answer.
            let handle = self.handle()?;
            permit.send(Incoming {
                remote,
                local: conn.local_addr(),
                upgrade: Box::pin(async move { open_splice(&handle, &relay, &token).await }),
                transport: None,
            });
            let accepted = RelayMessage::Status {
                code: 0,
                observed: None,
                splice: Some(token),
            };
            return answer_and_close(&stream, &accepted).await;
        }
        codec::write_message(
            &stream,
            &RelayMessage::Status {
                code: 0,
                observed: None,
                splice: None,
            },
        )
        .await?;
        let io: Box<dyn Io> = Box::new(stream);
        permit.send(Incoming {
            remote,
            local: conn.local_addr(),
            upgrade: Box::pin(async move { Ok(io) }),
            transport: None,
        });
        Ok(())
    }

    /// The relay (its TCP or WebSocket locator) of the reservation held on session `conn`.
    fn reservation_relay(&self, conn: &str) -> Option<Locator> {
        let list = self.reservations.lock().unwrap();
        let r = list
            .iter()
            .find(|r| r.lock().unwrap().conn.as_deref() == Some(conn))?;
        let base = r.lock().unwrap().relay.clone();
        parse_relay_locator(&base).ok().map(|(relay, _)| relay)
    }

    /// A live session to the relay at `relay` (TCP), reused when there is one. Not a
    /// relayed session: a spliced one has the relay's address as its remote address too,
    /// and its other end is a peer, not the relay.
    async fn relay_session(&self, relay: &Locator) -> Result<Connection, Error> {
        let handle = self.handle()?;
        if let Some(addr) = relay.socket_addr() {
            if let Some(c) = handle.connections().into_iter().find(|c| {
                !c.is_closed() && c.remote_addr() == Some(addr) && !is_relayed(&c.stats().transport)
            }) {
                return Ok(c);
            }
        }
        handle.dial_locator(relay, DialOptions::default()).await
    }

    async fn dial_circuit(&self, loc: Locator) -> Result<Connected, Error> {
        let (relay, target) = parse_relay_locator(&loc)?;
        let target = target.ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("relay locator {loc} names no principal to dial (relay://host:port/SP…)"),
            )
        })?;
        let conn = self.relay_session(&relay).await?;
        let stream = conn.open_stream(Some(STREAM_LABEL)).await?;
        let connect = RelayMessage::Connect {
            target,
            splice: self.config.splice,
        };
        codec::write_message(&stream, &connect).await?;
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, codec::read_message(&stream))
            .await
            .map_err(|_| Error::new(ErrorCode::Timeout, "the relay did not answer CONNECT"))??;
        let status = matches!(answer, Some(RelayMessage::Status { .. }));
        let grant = circuit::connect_answer(&relay.to_string(), answer, self.config.splice)
            .inspect_err(|_| {
                if !status {
                    stream.reset(ErrorCode::InvalidMessage);
                }
            })?;
        if grant.observed.is_some() {
            *self.observed.lock().unwrap() = grant.observed;
        }
        let io: Box<dyn Io> = match grant.splice {
            None => Box::new(stream),
            Some(token) => {
                let _ = stream.finish();
                open_splice(&self.handle()?, &relay, &token).await?
            }
        };
        Ok(Connected {
            io,
            remote: conn.remote_addr(),
            local: conn.local_addr(),
        })
    }

    /// Makes a reservation on the relay at `relay`; the session and our observed address.
    async fn reserve(&self, relay: &Locator) -> Result<(Connection, Option<SocketAddr>), Error> {
        let conn = self.relay_session(relay).await?;
        let stream = conn.open_stream(Some(STREAM_LABEL)).await?;
        codec::write_message(&stream, &RelayMessage::Reserve).await?;
        stream.finish()?;
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, codec::read_message(&stream))
            .await
            .map_err(|_| Error::new(ErrorCode::Timeout, "the relay did not answer RESERVE"))??;
        match answer {
            Some(RelayMessage::Status {
                code: 0, observed, ..
            }) => {
                if observed.is_some() {
                    *self.observed.lock().unwrap() = observed;
                }
                Ok((conn, observed))
            }
            Some(RelayMessage::Status { code, .. }) => Err(Error::new(
                ErrorCode::from_u64(code),
                format!("relay {relay} refused the reservation"),
            )),
            _ => Err(Error::new(
                ErrorCode::InvalidMessage,
                "the relay answered RESERVE with something else",
            )),
        }
    }

    async fn listen_on(self: Arc<Self>, loc: Locator) -> Result<Box<dyn Listener>, Error> {
        let (relay, _) = parse_relay_locator(&loc)?;
        let handle = self.handle()?;
        let me = handle
            .principal()
            .ok_or_else(|| Error::new(ErrorCode::ConnectionClosed, "peer is closed"))?;
        let (tx, rx) = mpsc::channel(64);
        // The first reservation is made before `listen` returns, so its refusal is the
        // caller's error.
        let (conn, observed) = self.reserve(&relay).await?;
        let public = relay_locator(&relay, &me);
        let state = Arc::new(Mutex::new(Reservation {
            relay: relay_base(&relay).parse().expect("relay locator"),
            active: true,
            observed,
            conn: Some(conn.id()),
        }));
        self.inbound.lock().unwrap().insert(conn.id(), tx.clone());
        self.reservations.lock().unwrap().push(state.clone());
        let weak = Arc::downgrade(&self);
        let keeper = tokio::spawn(async move {
            let mut conn = conn;
            let mut backoff = Duration::from_millis(250);
            loop {
                let _ = conn.closed().await;
                let Some(relay_mod) = weak.upgrade() else {
                    return;
                };
                relay_mod.inbound.lock().unwrap().remove(&conn.id());
                {
                    let mut s = state.lock().unwrap();
                    s.active = false;
                    s.conn = None;
                }
                // Renew until it works (or the listener is gone).
                loop {
                    if tx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    match relay_mod.reserve(&relay).await {
                        Ok((c, observed)) => {
                            relay_mod.inbound.lock().unwrap().insert(c.id(), tx.clone());
                            let mut s = state.lock().unwrap();
                            s.active = true;
                            s.observed = observed;
                            s.conn = Some(c.id());
                            conn = c;
                            backoff = Duration::from_millis(250);
                            break;
                        }
                        Err(e) => {
                            tracing::debug!("relay reservation at {relay} failed: {e}");
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                        }
                    }
                }
            }
        });
        Ok(Box::new(RelayListener {
            local: public,
            rx,
            keeper,
        }))
    }
}

impl Relay {
    /// Tries to replace the relayed session `conn` by a direct TCP connection: the two
    /// peers exchange candidates (the IP a relay observed, a fresh local port) over `conn`,
    /// the caller measures the round trip, sends SYNC and waits half of it, then both
    /// sides connect to each other from their port (SO_REUSEADDR + SO_REUSEPORT) every
    /// 50 ms for 5 s: a TCP simultaneous open. On success the result is a new, fully
    /// authenticated session with the same principal over the direct path (`conn` stays
    /// open; its streams do not move); on failure an error, and `conn` is untouched.
    pub async fn hole_punch(&self, conn: &Connection) -> Result<Connection, Error> {
        let handle = self.handle()?;
        let loc: Locator = format!(
            "{PUNCH_SCHEME}://0.0.0.0:1/{}",
            conn.remote_principal().address()
        )
        .parse()?;
        handle.dial_locator(&loc, DialOptions::default()).await
    }

    fn candidate_ip(&self) -> Option<std::net::IpAddr> {
        let reserved = self
            .reservations
            .lock()
            .unwrap()
            .iter()
            .find_map(|r| r.lock().unwrap().observed);
        reserved.or(*self.observed.lock().unwrap()).map(|a| a.ip())
    }

    async fn dial_punch(&self, loc: Locator) -> Result<Connected, Error> {
        let (_, target) = parse_relay_locator(&loc)?;
        let target = target.ok_or_else(|| {
            Error::new(ErrorCode::InvalidArgument, "hole punch without a principal")
        })?;
        let handle = self.handle()?;
        let relayed = handle
            .connections()
            .into_iter()
            .find(|c| {
                !c.is_closed()
                    && *c.remote_principal() == target
                    && is_relayed(&c.stats().transport)
            })
            .ok_or_else(|| {
                Error::new(ErrorCode::NotFound, "no relayed session to punch through")
            })?;
        let ip = self
            .candidate_ip()
            .ok_or_else(|| Error::new(ErrorCode::NotFound, "no observed address from a relay"))?;
        let (holder, port) = hold_port(ip)?;
        let stream = relayed.open_stream(Some(STREAM_LABEL)).await?;
        let t0 = Instant::now();
        codec::write_message(
            &stream,
            &RelayMessage::Punch {
                candidate: SocketAddr::new(ip, port),
            },
        )
        .await?;
        let theirs = match tokio::time::timeout(REQUEST_TIMEOUT, codec::read_message(&stream))
            .await
            .map_err(|_| Error::new(ErrorCode::Timeout, "no PUNCH answer"))??
        {
            Some(RelayMessage::Punch { candidate }) => candidate,
            Some(RelayMessage::Status { code, .. }) => {
                return Err(Error::new(
                    ErrorCode::from_u64(code),
                    "the peer refused the hole punch",
                ))
            }
            _ => {
                return Err(Error::new(
                    ErrorCode::InvalidMessage,
                    "the peer answered PUNCH with something else",
                ))
            }
        };
        let rtt = t0.elapsed();
        codec::write_message(&stream, &RelayMessage::Sync).await?;
        let _ = stream.finish();
        tokio::time::sleep(rtt / 2).await;
        let tcp = simultaneous_open(port, theirs).await?;
        drop(holder);
        tracing::debug!("hole punch to {theirs} from port {port} succeeded (rtt {rtt:?})");
        Ok(Connected {
            remote: tcp.peer_addr().ok(),
            local: tcp.local_addr().ok(),
            io: Box::new(tcp),
        })
    }

    async fn accept_punch(
        &self,
        conn: &Connection,
        stream: Stream,
        theirs: SocketAddr,
    ) -> Result<(), Error> {
        // Only over a relayed session (a peer that can reach us directly needs no punch),
        // and only while we listen through a relay (the accept loop that takes the result).
        let tx = self.inbound.lock().unwrap().values().next().cloned();
        let ip = self.candidate_ip();
        let (Some(tx), Some(ip), true) = (tx, ip, is_relayed(&conn.stats().transport)) else {
            return answer_and_close(&stream, &refusal(ErrorCode::StreamRefused)).await;
        };
        let (holder, port) = hold_port(ip)?;
        codec::write_message(
            &stream,
            &RelayMessage::Punch {
                candidate: SocketAddr::new(ip, port),
            },
        )
        .await?;
        match tokio::time::timeout(REQUEST_TIMEOUT, codec::read_message(&stream)).await {
            Ok(Ok(Some(RelayMessage::Sync))) => {}
            _ => return Err(Error::new(ErrorCode::InvalidMessage, "no SYNC after PUNCH")),
        }
        let tcp = open_or_accept(holder, port, theirs).await?;
        let remote = tcp.peer_addr().map_err(io_err)?;
        let local = tcp.local_addr().ok();
        let io: Box<dyn Io> = Box::new(tcp);
        tx.send(Incoming {
            remote,
            local,
            upgrade: Box::pin(async move { Ok(io) }),
            // Direct TCP now, not relayed: named as the dialer names it.
            transport: Some(punch_scheme()),
        })
        .await
        .map_err(|_| Error::new(ErrorCode::ConnectionClosed, "listener gone"))
    }
}

/// Opens a spliced connection to `relay` (its TCP or WebSocket locator) and sends the
/// SPLICE frame with `token`: the connection is then one end of the circuit.
async fn open_splice(
    handle: &PeerHandle,
    relay: &Locator,
    token: &codec::SpliceToken,
) -> Result<Box<dyn Io>, Error> {
    use tokio::io::AsyncWriteExt;
    let mut c = handle.connect_transport(relay).await?;
    c.io.write_all(&codec::encode_splice(token))
        .await
        .map_err(|e| {
            Error::new(
                ErrorCode::ConnectionClosed,
                format!("splice to {relay}: {e}"),
            )
        })?;
    Ok(c.io)
}

/// One direction of a spliced circuit: reads the next chunk only after the last one was
/// written, so the receiver's TCP window paces the sender and nothing is dropped; at the
/// end of `from`, ends `to`'s writing side.
async fn copy_raw(
    mut from: tokio::io::ReadHalf<Box<dyn Io>>,
    mut to: tokio::io::WriteHalf<Box<dyn Io>>,
    used: &AtomicU64,
    max: u64,
    total: &AtomicU64,
) -> Result<(), Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let closed = |e: std::io::Error| Error::new(ErrorCode::ConnectionClosed, e.to_string());
    let mut buf = vec![0u8; SPLICE_CHUNK];
    loop {
        let n = from.read(&mut buf).await.map_err(closed)?;
        if n == 0 {
            return to.shutdown().await.map_err(closed);
        }
        if used.fetch_add(n as u64, Ordering::Relaxed) + n as u64 > max {
            return Err(Error::new(
                ErrorCode::ResourceExhausted,
                "circuit byte limit reached",
            ));
        }
        to.write_all(&buf[..n]).await.map_err(closed)?;
        total.fetch_add(n as u64, Ordering::Relaxed);
    }
}

fn io_err(e: std::io::Error) -> Error {
    Error::new(ErrorCode::ConnectionClosed, format!("hole punch: {e}"))
}

fn punch_socket(ip: std::net::IpAddr) -> Result<tokio::net::TcpSocket, Error> {
    let s = if ip.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(io_err)?;
    s.set_reuseaddr(true).map_err(io_err)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    s.set_reuseport(true).map_err(io_err)?;
    Ok(s)
}

/// Binds a fresh local port (kept by the returned socket while the punch runs).
fn hold_port(ip: std::net::IpAddr) -> Result<(tokio::net::TcpSocket, u16), Error> {
    let s = punch_socket(ip)?;
    let any: std::net::IpAddr = if ip.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    s.bind(SocketAddr::new(any, 0)).map_err(io_err)?;
    let port = s.local_addr().map_err(io_err)?.port();
    Ok((s, port))
}

/// The answering side of a punch: connects like [`simultaneous_open`] and also listens on
/// the held port, taking whichever connection comes first. Without a NAT or firewall on
/// the way (the same host or LAN), the dialer's SYN reaches a port that only connects and
/// is answered with RST, so a pure simultaneous open hardly ever works there (on loopback
/// it timed out after its 5 s every time we ran it); a listener makes it a plain connect. Behind NAT the
/// SYNs still meet as a simultaneous open: a connecting socket with the exact address pair
/// takes the SYN before the listener does.
async fn open_or_accept(
    holder: tokio::net::TcpSocket,
    port: u16,
    remote: SocketAddr,
) -> Result<tokio::net::TcpStream, Error> {
    let listener = holder.listen(8).map_err(io_err)?;
    let accept = async {
        loop {
            match listener.accept().await {
                // Only the candidate's host; anyone else still meets AUTH, but is not
                // the peer this punch is for.
                Ok((tcp, from)) if from.ip() == remote.ip() => {
                    let _ = tcp.set_nodelay(true);
                    return tcp;
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    };
    tokio::select! {
        tcp = accept => Ok(tcp),
        r = simultaneous_open(port, remote) => r,
    }
}

/// Connects from local `port` to `remote` every 50 ms (0.5 s per attempt) for
/// [`PUNCH_WINDOW`].
async fn simultaneous_open(port: u16, remote: SocketAddr) -> Result<tokio::net::TcpStream, Error> {
    let deadline = Instant::now() + PUNCH_WINDOW;
    let any: std::net::IpAddr = if remote.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    loop {
        let s = punch_socket(remote.ip())?;
        s.bind(SocketAddr::new(any, port)).map_err(io_err)?;
        if let Ok(Ok(tcp)) =
            tokio::time::timeout(Duration::from_millis(500), s.connect(remote)).await
        {
            let _ = tcp.set_nodelay(true);
            return Ok(tcp);
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                ErrorCode::Timeout,
                format!("hole punch: no direct connection to {remote} within 5 s"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A splice token handed out and the connection that will present it.
struct PendingSplice<'a> {
    relay: &'a Relay,
    token: codec::SpliceToken,
    rx: tokio::sync::oneshot::Receiver<Box<dyn Io>>,
}

impl Drop for PendingSplice<'_> {
    fn drop(&mut self) {
        self.relay.splices.lock().unwrap().remove(&self.token);
    }
}

/// Releases a circuit's counts when it ends.
struct CircuitSlot<'a> {
    relay: &'a Relay,
    a: Principal,
    b: Principal,
}

impl Drop for CircuitSlot<'_> {
    fn drop(&mut self) {
        let mut st = self.relay.server.lock().unwrap();
        st.circuits = st.circuits.saturating_sub(1);
        for p in [&self.a, &self.b] {
            if let Some(n) = st.per_peer.get_mut(p) {
                *n -= 1;
                if *n == 0 {
                    st.per_peer.remove(p);
                }
            }
        }
    }
}

/// Copies `from` to `to` one chunk at a time: the next chunk is read only once the last
/// one was taken by `to`, so `to`'s credit paces `from`'s sender and nothing is dropped.
async fn pump(
    from: &Stream,
    to: &Stream,
    used: &AtomicU64,
    max: u64,
    total: &AtomicU64,
) -> Result<(), Error> {
    loop {
        match from.read_chunk(CHUNK).await? {
            Some(chunk) => {
                let n = chunk.len() as u64;
                if used.fetch_add(n, Ordering::Relaxed) + n > max {
                    return Err(Error::new(
                        ErrorCode::ResourceExhausted,
                        "circuit byte limit reached",
                    ));
                }
                to.write_all(chunk).await?;
                total.fetch_add(n, Ordering::Relaxed);
            }
            None => {
                return match to.finish() {
                    Err(e) if e.code != ErrorCode::StreamClosed => Err(e),
                    _ => Ok(()),
                };
            }
        }
    }
}

struct RelayListener {
    local: Locator,
    rx: mpsc::Receiver<Incoming>,
    keeper: tokio::task::JoinHandle<()>,
}

impl Drop for RelayListener {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

impl Listener for RelayListener {
    fn local_locator(&self) -> Locator {
        self.local.clone()
    }

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, Error>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(i)) => Poll::Ready(Ok(i)),
            // Never: the keeper holds a sender while the listener lives.
            Poll::Ready(None) => Poll::Pending,
            Poll::Pending => Poll::Pending,
        }
    }
}

#[async_trait::async_trait]
impl ProtocolHandler for Relay {
    async fn accept(
        &self,
        _peer: PeerHandle,
        conn: Connection,
        stream: Stream,
    ) -> Result<(), Error> {
        let first = tokio::time::timeout(REQUEST_TIMEOUT, codec::read_message(&stream))
            .await
            .map_err(|_| Error::new(ErrorCode::Timeout, "RELAY-1: no request"))??;
        match first {
            None => Ok(()),
            Some(RelayMessage::Incoming { splice, .. }) => {
                self.accept_incoming(&conn, stream, splice).await
            }
            Some(RelayMessage::Reserve) if self.config.serve => {
                self.serve_reserve(&conn, &stream).await
            }
            Some(RelayMessage::Connect { target, splice }) if self.config.serve => {
                self.serve_connect(&conn, stream, target, splice).await
            }
            Some(RelayMessage::Reserve | RelayMessage::Connect { .. }) => {
                answer_and_close(&stream, &refusal(ErrorCode::StreamRefused)).await
            }
            Some(RelayMessage::Punch { candidate }) => {
                self.accept_punch(&conn, stream, candidate).await
            }
            Some(RelayMessage::Status { .. } | RelayMessage::Sync) => Err(Error::new(
                ErrorCode::InvalidMessage,
                "RELAY-1: not a request",
            )),
        }
    }
}

/// The relay schemes and `punch`, for [`Transport::schemes`].
static SCHEMES: OnceLock<[Scheme; 4]> = OnceLock::new();

/// The transport half, a thin wrapper so the peer can hold it as `Arc<dyn Transport>`.
pub(crate) struct RelayTransport(pub(crate) Arc<Relay>);

impl Transport for RelayTransport {
    fn schemes(&self) -> &[Scheme] {
        SCHEMES.get_or_init(|| {
            [
                relay_scheme(),
                Scheme::Other(SCHEME_WS.to_string()),
                Scheme::Other(SCHEME_WSS.to_string()),
                punch_scheme(),
            ]
        })
    }

    fn dial(&self, locator: &Locator) -> BoxFuture<Result<Connected, Error>> {
        let relay = self.0.clone();
        let locator = locator.clone();
        Box::pin(async move {
            if *locator.scheme() == punch_scheme() {
                relay.dial_punch(locator).await
            } else {
                relay.dial_circuit(locator).await
            }
        })
    }

    fn listen(&self, locator: &Locator) -> BoxFuture<Result<Box<dyn Listener>, Error>> {
        let relay = self.0.clone();
        let locator = locator.clone();
        Box::pin(async move { relay.listen_on(locator).await })
    }
}
