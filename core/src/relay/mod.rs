//! RELAY-1: circuit relay for peers behind NAT (docs/PROTOCOL.md §32).
//!
//! One [`Relay`] is three things, registered with [`crate::PeerBuilder::relay`]:
//!
//! - a [`ProtocolHandler`](crate::protocol::ProtocolHandler) of `relay-1` streams. On a node
//!   configured to serve ([`RelayConfig::serve`]) it keeps **reservations** (a peer's
//!   authenticated session: the relay knows its principal) and splices **circuits**: a dialer's
//!   `relay-1` stream to a new `relay-1` stream on the target's reservation session. On every
//!   node it accepts circuits the relays it holds a reservation with announce;
//! - a [`Transport`](crate::transport::Transport) of the `relay` scheme: `relay://host:port/SP…`
//!   dials `SP…` through the relay at `host:port` (TCP), and listening on `relay://host:port`
//!   keeps a reservation there (renewed when its session ends) and yields each circuit as an
//!   inbound byte stream that the peer's accept loop admits and authenticates like any other.
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
// The relay service, the client's reservations and circuits, hole punching: everything
// that runs on tokio. What is left here (locators, limits, refusal codes) and in `codec`
// and `circuit` is sans-IO, which the browser build drives over its own WebSocket.
#[cfg(feature = "runtime")]
mod service;
#[cfg(feature = "runtime")]
pub use service::*;

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
use crate::locator::{Host, Locator, Scheme};

pub use codec::RelayMessage;

/// The stream label of RELAY-1.
pub const STREAM_LABEL: &str = "relay-1";
/// The locator scheme of relayed addresses.
pub const SCHEME: &str = "relay";

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

// ---------------------------------------------------------------------------------------
// Hole punching (DCUtR-style) over a relayed session
