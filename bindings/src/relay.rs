//! RELAY-1 (docs/PROTOCOL.md §32) as uniffi records: the serving relay's options, this
//! peer's reservations and the relay's counters. The core's `RelayConfig`,
//! `ReservationInfo` and `RelayStats` field for field; the relay itself (reservations,
//! circuits, hole punching) is the core's.

use std::time::Duration;

use snap2p::relay::{RelayAdmission, RelayConfig, RelayLimits};
use snap2p::ErrorCode;

use crate::error::{Result, Snap2pError};
use crate::identity::parse_principal_arg;

/// Makes a peer a relay for others (`PeerOptions.relay`; absent: it only uses relays).
/// Every limit defaults to the core's (PROTOCOL.md §32.5); `RelayOptions()` is an open
/// relay with default limits.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RelayOptions {
    /// Principals (`stacks:SP…` or `SP…`) that may hold a reservation; empty: any
    /// authenticated principal. Others' RESERVE is refused with ERR_NOT_ALLOWED (4).
    #[uniffi(default)]
    pub allowlist: Vec<String>,
    /// Reservations held at once (default 4096). At least 1.
    #[uniffi(default)]
    pub max_reservations: Option<u64>,
    /// Circuits open at once (default 1024). At least 1.
    #[uniffi(default)]
    pub max_circuits: Option<u64>,
    /// Circuits open at once per principal, as dialer or as target (default 16). At least 1.
    #[uniffi(default)]
    pub max_circuits_per_peer: Option<u64>,
    /// Bytes one circuit may carry, both directions together (default 1 GiB; 0: no limit).
    #[uniffi(default)]
    pub circuit_max_bytes: Option<u64>,
    /// How long one circuit may stay open (default 1 h). Not zero.
    #[uniffi(default)]
    pub circuit_max_duration: Option<Duration>,
    /// RESERVE and CONNECT requests per principal per minute (default 60; 0: no limit).
    #[uniffi(default)]
    pub requests_per_min: Option<u32>,
}

/// A count limit: at least 1 (0 would refuse everything; it is not "no limit" here).
fn count(name: &str, value: Option<u64>, default: usize) -> Result<usize> {
    let Some(v) = value else { return Ok(default) };
    match usize::try_from(v) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Snap2pError::new(
            ErrorCode::InvalidArgument,
            format!("relay {name} must be between 1 and {}, not {v}", usize::MAX),
        )),
    }
}

impl RelayOptions {
    /// The core's config of a serving relay with these options.
    pub(crate) fn to_config(&self) -> Result<RelayConfig> {
        let d = RelayLimits::default();
        let admission = if self.allowlist.is_empty() {
            RelayAdmission::Open
        } else {
            RelayAdmission::Allowlist(
                self.allowlist
                    .iter()
                    .map(|p| parse_principal_arg(p))
                    .collect::<Result<_>>()?,
            )
        };
        let circuit_max_duration = match self.circuit_max_duration {
            Some(t) if t.is_zero() => {
                return Err(Snap2pError::new(
                    ErrorCode::InvalidArgument,
                    "relay circuit_max_duration must not be zero",
                ))
            }
            Some(t) => t,
            None => d.circuit_max_duration,
        };
        Ok(RelayConfig {
            serve: true,
            admission,
            limits: RelayLimits {
                max_reservations: count(
                    "max_reservations",
                    self.max_reservations,
                    d.max_reservations,
                )?,
                max_circuits: count("max_circuits", self.max_circuits, d.max_circuits)?,
                max_circuits_per_peer: count(
                    "max_circuits_per_peer",
                    self.max_circuits_per_peer,
                    d.max_circuits_per_peer,
                )?,
                circuit_max_bytes: self.circuit_max_bytes.unwrap_or(d.circuit_max_bytes),
                circuit_max_duration,
                requests_per_min: self.requests_per_min.unwrap_or(d.requests_per_min),
            },
            ..RelayConfig::server()
        })
    }
}

/// A reservation this peer holds on a relay (`Peer.relayReservations()`), one per
/// `listen("relay://HOST:PORT")`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReservationInfo {
    /// The relay, `relay://HOST:PORT`.
    pub relay: String,
    /// Whether the reservation's session is up now (it is renewed after it ends).
    pub active: bool,
    /// This peer's `ip:port` as the relay sees it (what hole punching offers).
    pub observed: Option<String>,
}

impl From<snap2p::relay::ReservationInfo> for ReservationInfo {
    fn from(r: snap2p::relay::ReservationInfo) -> Self {
        // Destructured: a field the core adds fails the build here until it is mirrored.
        let snap2p::relay::ReservationInfo {
            relay,
            active,
            observed,
        } = r;
        ReservationInfo {
            relay: relay.to_string(),
            active,
            observed: observed.map(|a| a.to_string()),
        }
    }
}

/// What this peer's relay module counts (`Peer.relayStats()`); all zero unless it serves.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RelayStats {
    /// Reservations held on this relay now.
    pub reservations: u64,
    /// Circuits open now.
    pub circuits: u64,
    /// Circuits spliced since the peer started.
    pub circuits_total: u64,
    /// Of those, circuits spliced onto plain connections to the relay (PROTOCOL.md §32.3).
    pub spliced_total: u64,
    /// Bytes forwarded through circuits, both directions.
    pub bytes_forwarded: u64,
    /// Requests (RESERVE, CONNECT) refused.
    pub refused: u64,
}

impl From<snap2p::relay::RelayStats> for RelayStats {
    fn from(s: snap2p::relay::RelayStats) -> Self {
        let snap2p::relay::RelayStats {
            reservations,
            circuits,
            circuits_total,
            spliced_total,
            bytes_forwarded,
            refused,
        } = s;
        RelayStats {
            reservations: reservations as u64,
            circuits: circuits as u64,
            circuits_total,
            spliced_total,
            bytes_forwarded,
            refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> RelayOptions {
        RelayOptions {
            allowlist: vec![],
            max_reservations: None,
            max_circuits: None,
            max_circuits_per_peer: None,
            circuit_max_bytes: None,
            circuit_max_duration: None,
            requests_per_min: None,
        }
    }

    /// Unset options are the core's defaults, set ones are passed on, every field of
    /// `RelayLimits` is reached (destructured: a new one fails the build here).
    #[test]
    fn options_map_to_the_core_config() {
        let c = none().to_config().unwrap();
        let d = RelayConfig::server();
        assert!(c.serve);
        assert!(matches!(c.admission, RelayAdmission::Open));
        let RelayLimits {
            max_reservations,
            max_circuits,
            max_circuits_per_peer,
            circuit_max_bytes,
            circuit_max_duration,
            requests_per_min,
        } = c.limits;
        assert_eq!(max_reservations, d.limits.max_reservations);
        assert_eq!(max_circuits, d.limits.max_circuits);
        assert_eq!(max_circuits_per_peer, d.limits.max_circuits_per_peer);
        assert_eq!(circuit_max_bytes, d.limits.circuit_max_bytes);
        assert_eq!(circuit_max_duration, d.limits.circuit_max_duration);
        assert_eq!(requests_per_min, d.limits.requests_per_min);

        let w = snap2p::identity::LocalWallet::generate(snap2p::identity::Network::Mainnet);
        let o = RelayOptions {
            allowlist: vec![w.principal().address()],
            max_reservations: Some(1),
            max_circuits: Some(2),
            max_circuits_per_peer: Some(3),
            circuit_max_bytes: Some(0),
            circuit_max_duration: Some(Duration::from_secs(5)),
            requests_per_min: Some(0),
        };
        let c = o.to_config().unwrap();
        match c.admission {
            RelayAdmission::Allowlist(list) => assert_eq!(list, vec![w.principal().clone()]),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.limits.max_reservations, 1);
        assert_eq!(c.limits.max_circuits, 2);
        assert_eq!(c.limits.max_circuits_per_peer, 3);
        assert_eq!(c.limits.circuit_max_bytes, 0);
        assert_eq!(c.limits.circuit_max_duration, Duration::from_secs(5));
        assert_eq!(c.limits.requests_per_min, 0);
    }

    #[test]
    fn bad_options_are_invalid_arguments() {
        let bad = [
            RelayOptions {
                allowlist: vec!["SPnot-a-principal".into()],
                ..none()
            },
            RelayOptions {
                max_reservations: Some(0),
                ..none()
            },
            RelayOptions {
                max_circuits: Some(0),
                ..none()
            },
            RelayOptions {
                max_circuits_per_peer: Some(0),
                ..none()
            },
            RelayOptions {
                circuit_max_duration: Some(Duration::ZERO),
                ..none()
            },
        ];
        for o in bad {
            let e = o.to_config().unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidArgument.as_u64(), "{o:?}: {e}");
        }
    }
}
