//! RELAY-1: circuit relay for peers behind NAT (docs/PROTOCOL.md §32).
//!
//! One [`Relay`] is three things, registered with [`crate::PeerBuilder::relay`]:
//!
//! - a [`ProtocolHandler`] of `relay-1` streams. On a node configured to serve
//!   ([`RelayConfig::serve`]) it keeps **reservations** (a peer's authenticated session:
//!   the relay knows its principal) and splices **circuits**: a dialer's `relay-1` stream
//!   to a new `relay-1` stream on the target's reservation session. On every node it
//!   accepts circuits the relays it holds a reservation with announce;
//! - a [`Transport`] of the `relay` scheme: `relay://host:port/SP…` dials `SP…` through
//!   the relay at `host:port` (TCP), and listening on `relay://host:port` keeps a
//!   reservation there (renewed when its session ends) and yields each circuit as an
//!   inbound byte stream that the peer's accept loop admits and authenticates like any
//!   other.
//!
//! Circuits are **spliced** when all three ends can (the default, §32.3): the two peers
//! each open a plain connection to the relay presenting a one-time token handed out on
//! their sessions, and the relay copies raw bytes between the two, so the end-to-end
//! session is sealed once instead of three times. Otherwise the circuit stays on the two
//! `relay-1` streams.
//!
//! The circuit is only a byte stream: the two peers run an ordinary snap2p session over it
//! (KNOCK, Noise XX, AUTH, streams), so the relay forwards ciphertext it cannot read or
//! forge. It never drops a byte: a circuit reads from one stream only after the previous
//! chunk was written to the other, so a receiver that stops reading stops its sender by
//! flow control (stream credit), and other circuits on the same sessions keep moving.
//!
//! Like PX-1 it uses the protocol and session layers and below, never `peer`.

pub mod circuit;
pub mod codec;

#[cfg(feature = "runtime")]
use std::collections::HashMap;
use std::net::SocketAddr;
#[cfg(feature = "runtime")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "runtime")]
use std::sync::{Arc, Mutex, OnceLock};
#[cfg(feature = "runtime")]
use std::task::{Context, Poll};
use std::time::Duration;
#[cfg(feature = "runtime")]
use std::time::Instant;

#[cfg(feature = "runtime")]
use tokio::sync::mpsc;

use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
use crate::locator::{Host, Locator, Scheme};
#[cfg(feature = "runtime")]
use crate::protocol::{DialOptions, PeerHandle, ProtocolHandler};
#[cfg(feature = "runtime")]
use crate::rate::TokenBucket;
#[cfg(feature = "runtime")]
use crate::session::{Connection, Stream};
#[cfg(feature = "runtime")]
use crate::transport::{BoxFuture, Connected, Incoming, Io, Listener, Transport};

pub use codec::RelayMessage;

/// The stream label of RELAY-1.
pub const STREAM_LABEL: &str = "relay-1";
/// The locator scheme of relayed addresses.
pub const SCHEME: &str = "relay";
/// How long a request may take to get its first message or its answer.
#[cfg(feature = "runtime")]
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest chunk a circuit moves at once (what it holds per direction beyond the streams'
/// own windows).
#[cfg(feature = "runtime")]
const CHUNK: usize = 64 * 1024;

#[cfg(feature = "runtime")]
fn relay_scheme() -> Scheme {
    Scheme::Other(SCHEME.to_string())
}

/// The locator schemes of relays reached over WebSocket: `relay+ws://host:port[/path]/SP…`
/// reaches `SP…` through the relay listening on `ws://host:port[/path]` (and `relay+wss`
/// through `wss://…`: TLS to the relay, e.g. behind a proxy on port 443).
pub const SCHEME_WS: &str = "relay+ws";
pub const SCHEME_WSS: &str = "relay+wss";

/// Whether a session's transport (`ConnectionStats::transport`) is a relayed circuit
/// (`relay`, `relay+ws`, `relay+wss`): the "current path" is relayed.
pub fn is_relayed(transport: &Scheme) -> bool {
    matches!(transport.as_str(), SCHEME | SCHEME_WS | SCHEME_WSS)
}

/// The internal scheme of a hole-punch dial (`punch://0.0.0.0:1/SP…`, made by
/// [`Relay::hole_punch`]; not a locator anyone advertises).
pub const PUNCH_SCHEME: &str = "punch";
/// How long the simultaneous open is tried.
#[cfg(feature = "runtime")]
const PUNCH_WINDOW: Duration = Duration::from_secs(5);

#[cfg(feature = "runtime")]
fn punch_scheme() -> Scheme {
    Scheme::Other(PUNCH_SCHEME.to_string())
}

/// Who may hold a reservation on a relay.
#[derive(Clone, Debug, Default)]
pub enum RelayAdmission {
    /// Any authenticated principal.
    #[default]
    Open,
    /// Only these principals.
    Allowlist(Vec<Principal>),
}

/// Limits of a serving relay; every one is a refusal code in docs/PROTOCOL.md §32.
#[derive(Clone, Debug)]
pub struct RelayLimits {
    /// Reservations held at once (ERR_RESOURCE_EXHAUSTED beyond).
    pub max_reservations: usize,
    /// Circuits open at once on the relay (ERR_RESOURCE_EXHAUSTED beyond).
    pub max_circuits: usize,
    /// Circuits open at once per principal, as dialer or as target
    /// (ERR_RESOURCE_EXHAUSTED beyond).
    pub max_circuits_per_peer: usize,
    /// Bytes one circuit may carry, both directions together (then reset with
    /// ERR_RESOURCE_EXHAUSTED). 0: no limit.
    pub circuit_max_bytes: u64,
    /// How long one circuit may stay open (then reset with ERR_TIMEOUT).
    pub circuit_max_duration: Duration,
    /// Requests (RESERVE and CONNECT) per principal per minute, with a burst of as many
    /// (ERR_RATE_LIMITED beyond). 0: no limit.
    pub requests_per_min: u32,
}

#[cfg(feature = "runtime")]
impl RelayLimits {
    /// The bytes one circuit may carry (`circuit_max_bytes`, 0 meaning none).
    fn circuit_byte_cap(&self) -> u64 {
        match self.circuit_max_bytes {
            0 => u64::MAX,
            n => n,
        }
    }
}

impl Default for RelayLimits {
    fn default() -> Self {
        RelayLimits {
            max_reservations: 4096,
            max_circuits: 1024,
            max_circuits_per_peer: 16,
            circuit_max_bytes: 1 << 30,
            circuit_max_duration: Duration::from_secs(3600),
            requests_per_min: 60,
        }
    }
}

/// What a [`Relay`] does.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Serve as a relay (keep reservations, splice circuits). Off: only use relays.
    pub serve: bool,
    pub admission: RelayAdmission,
    pub limits: RelayLimits,
    /// Spliced circuits (PROTOCOL.md §32.3; on by default): ask for them as a dialer,
    /// accept them as a target, offer them as a relay. A spliced circuit leaves the
    /// streams of the two sessions with the relay for two plain connections to it, so
    /// the relay copies the end-to-end session's bytes without opening and resealing
    /// them: 2.5x the throughput of a stream circuit on this machine (docs/BENCHMARKS.md,
    /// "Relays"). Off: every circuit stays on the streams (the only kind before v0.2).
    pub splice: bool,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            serve: false,
            admission: RelayAdmission::default(),
            limits: RelayLimits::default(),
            splice: true,
        }
    }
}

impl RelayConfig {
    /// A serving relay with default limits, open to every principal.
    pub fn server() -> Self {
        RelayConfig {
            serve: true,
            ..RelayConfig::default()
        }
    }
}

/// A reservation this peer holds on a relay.
#[derive(Clone, Debug)]
pub struct ReservationInfo {
    /// The relay (`relay://host:port`).
    pub relay: Locator,
    /// Whether the reservation's session is up now.
    pub active: bool,
    /// Our address as the relay sees it (for hole punching).
    pub observed: Option<SocketAddr>,
}

/// Counts a serving relay keeps (for tests, metrics and the CLI).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub reservations: usize,
    pub circuits: usize,
    pub circuits_total: u64,
    /// Circuits that left the streams for spliced connections (§32.3), of `circuits_total`.
    pub spliced_total: u64,
    pub bytes_forwarded: u64,
    pub refused: u64,
}

/// A spliced connection waiting for its circuit: the side that presents `token`.
#[cfg(feature = "runtime")]
type SpliceWaiter = tokio::sync::oneshot::Sender<Box<dyn Io>>;

/// Largest chunk a spliced circuit copies at once, per direction (what an active circuit
/// holds on the relay: twice this). 256 KiB bought nothing measurable: relay CPU 0.39
/// CPU-s per GiB forwarded against 0.35 with 64 KiB, within the runs' noise.
#[cfg(feature = "runtime")]
const SPLICE_CHUNK: usize = 64 * 1024;

/// How long a relay keeps a splice token for a connection that has not come yet.
#[cfg(feature = "runtime")]
const SPLICE_TIMEOUT: Duration = REQUEST_TIMEOUT;

#[cfg(feature = "runtime")]
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

#[cfg(feature = "runtime")]
struct Reservation {
    relay: Locator,
    active: bool,
    observed: Option<SocketAddr>,
    conn: Option<String>,
}

/// The RELAY-1 protocol handler and `relay://` transport (module docs).
#[cfg(feature = "runtime")]
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

#[cfg(feature = "runtime")]
impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("serve", &self.config.serve)
            .finish()
    }
}

#[cfg(feature = "runtime")]
fn refusal(code: ErrorCode) -> RelayMessage {
    RelayMessage::Status {
        code: code.as_u64(),
        observed: None,
        splice: None,
    }
}

/// Sends `msg` as the last message of `stream` and waits (bounded) for the other side to
/// finish or drop it: a stream dropped with unread bytes is reset, and a reset may overtake
/// the answer.
#[cfg(feature = "runtime")]
async fn answer_and_close(stream: &Stream, msg: &RelayMessage) -> Result<(), Error> {
    codec::write_message(stream, msg).await?;
    stream.finish()?;
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while let Ok(Some(_)) = stream.read_chunk(4096).await {}
    })
    .await;
    Ok(())
}

/// Splits `relay://host:port[/SP…]` into the relay's TCP locator and the target, if any;
/// `relay+ws://host:port[/path][/SP…]` (and `relay+wss`) into `ws://host:port[/path]` and
/// the target: the last path segment, when it is a principal (docs/PROTOCOL.md §32.1).
pub fn parse_relay_locator(loc: &Locator) -> Result<(Locator, Option<Principal>), Error> {
    let ws = match loc.scheme().as_str() {
        SCHEME | PUNCH_SCHEME => None,
        SCHEME_WS => Some("ws"),
        SCHEME_WSS => Some("wss"),
        _ => {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("{loc} is not a relay locator"),
            ))
        }
    };
    let (relay, path): (Locator, Option<&str>) = match ws {
        None => (
            match loc.host() {
                Host::Ip(ip) => Locator::tcp(SocketAddr::new(*ip, loc.port())),
                Host::Name(n) => format!("{n}:{}", loc.port()).parse()?,
            },
            loc.path(),
        ),
        Some(scheme) => {
            let full = loc.path().unwrap_or("");
            // The last segment names the target when it is a principal; the rest (or all
            // of it, on a listen locator) is the relay's WebSocket path.
            let (base, last) = full.rsplit_once('/').unwrap_or(("", full));
            let last = last.trim_start_matches(crate::identity::PRINCIPAL_PREFIX);
            let (ws_path, target) = if !last.is_empty()
                && Principal::parse(&format!("{}{last}", crate::identity::PRINCIPAL_PREFIX)).is_ok()
            {
                (base, Some(last))
            } else {
                (full, None)
            };
            (
                format!("{scheme}://{}:{}{ws_path}", loc.host(), loc.port()).parse()?,
                target,
            )
        }
    };
    let target = match path {
        None => None,
        Some(p) => {
            let addr = p.trim_start_matches('/');
            let text = if addr.starts_with(crate::identity::PRINCIPAL_PREFIX) {
                addr.to_string()
            } else {
                format!("{}{addr}", crate::identity::PRINCIPAL_PREFIX)
            };
            Some(Principal::parse(&text).map_err(|e| {
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "relay locator {loc}: the path must be a principal ({})",
                        e.message
                    ),
                )
            })?)
        }
    };
    Ok((relay, target))
}

/// The relay locator of `target` through the relay at `relay` (`host:port`, or a
/// `ws://`/`wss://` locator).
pub fn relay_locator(relay: &Locator, target: &Principal) -> Locator {
    format!("{}/{}", relay_base(relay), target.address())
        .parse()
        .expect("a relay locator built from a locator and a principal parses")
}

/// How a relay is named in reservations and locators: `relay://host:port` for a TCP
/// relay, `relay+ws://host:port[/path]` / `relay+wss://…` for a WebSocket one.
fn relay_base(relay: &Locator) -> String {
    let scheme = match relay.scheme() {
        Scheme::Ws => SCHEME_WS,
        Scheme::Wss => SCHEME_WSS,
        _ => SCHEME,
    };
    let path = match relay.scheme() {
        Scheme::Ws | Scheme::Wss => relay.path().unwrap_or("").trim_end_matches('/'),
        _ => "",
    };
    format!("{scheme}://{}:{}{path}", relay.host(), relay.port())
}

/// The principal a relay locator names (`relay://…/SP…`), for `DialOptions::expect`.
pub fn target_of(loc: &Locator) -> Option<Principal> {
    parse_relay_locator(loc).ok().and_then(|(_, t)| t)
}

#[cfg(feature = "runtime")]
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
        sent?;
        match both {
            Ok(Ok((d, t))) => {
                self.server.lock().unwrap().spliced_total += 1;
                self.splice_connections(d, t).await;
                Ok(())
            }
            _ => Err(Error::new(
                ErrorCode::Timeout,
                "RELAY-1: a spliced connection did not come within 10 s",
            )),
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

    /// A live session to the relay at `relay` (TCP), reused when there is one.
    async fn relay_session(&self, relay: &Locator) -> Result<Connection, Error> {
        let handle = self.handle()?;
        if let Some(addr) = relay.socket_addr() {
            if let Some(c) = handle
                .connections()
                .into_iter()
                .find(|c| !c.is_closed() && c.remote_addr() == Some(addr))
            {
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

// ---------------------------------------------------------------------------------------
// Hole punching (DCUtR-style) over a relayed session

#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
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

#[cfg(feature = "runtime")]
fn io_err(e: std::io::Error) -> Error {
    Error::new(ErrorCode::ConnectionClosed, format!("hole punch: {e}"))
}

#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
struct PendingSplice<'a> {
    relay: &'a Relay,
    token: codec::SpliceToken,
    rx: tokio::sync::oneshot::Receiver<Box<dyn Io>>,
}

#[cfg(feature = "runtime")]
impl Drop for PendingSplice<'_> {
    fn drop(&mut self) {
        self.relay.splices.lock().unwrap().remove(&self.token);
    }
}

/// Releases a circuit's counts when it ends.
#[cfg(feature = "runtime")]
struct CircuitSlot<'a> {
    relay: &'a Relay,
    a: Principal,
    b: Principal,
}

#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
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

#[cfg(feature = "runtime")]
struct RelayListener {
    local: Locator,
    rx: mpsc::Receiver<Incoming>,
    keeper: tokio::task::JoinHandle<()>,
}

#[cfg(feature = "runtime")]
impl Drop for RelayListener {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

#[cfg(feature = "runtime")]
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

#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
static SCHEMES: OnceLock<[Scheme; 4]> = OnceLock::new();

/// The transport half, a thin wrapper so the peer can hold it as `Arc<dyn Transport>`.
#[cfg(feature = "runtime")]
pub(crate) struct RelayTransport(pub(crate) Arc<Relay>);

#[cfg(feature = "runtime")]
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
