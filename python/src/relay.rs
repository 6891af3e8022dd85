//! RELAY-1 (docs/PROTOCOL.md §32) as Python values: the ``relay=`` option of
//! ``Peer.create`` and what ``relay_reservations()`` / ``relay_stats()`` return. Nothing is
//! decided here: the core keeps reservations, serves circuits and punches holes.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};
use snap2p::relay::{RelayAdmission, RelayConfig};

use crate::error::invalid;
use crate::identity::parse_principal_any;

/// The keys ``relay={...}`` takes.
const KEYS: &[&str] = &[
    "allowlist",
    "max_reservations",
    "max_circuits",
    "max_circuits_per_peer",
    "circuit_max_bytes",
    "circuit_max_duration",
    "requests_per_min",
];

fn count(key: &str, v: &Bound<'_, PyAny>) -> PyResult<u64> {
    let bad = || invalid(format!("relay '{key}' must be a non-negative int"));
    if v.is_instance_of::<PyBool>() {
        return Err(bad());
    }
    v.extract::<u64>().map_err(|_| bad())
}

/// ``relay=``: ``None``/``False`` (do not serve), ``True`` (serve with the core's defaults)
/// or a dict of admission and limits (serve with those).
pub fn relay_config(relay: Option<&Bound<'_, PyAny>>) -> PyResult<RelayConfig> {
    let Some(relay) = relay.filter(|r| !r.is_none()) else {
        return Ok(RelayConfig::default());
    };
    if let Ok(b) = relay.cast::<PyBool>() {
        return Ok(if b.is_true() {
            RelayConfig::server()
        } else {
            RelayConfig::default()
        });
    }
    let dict = relay
        .cast::<PyDict>()
        .map_err(|_| invalid("relay must be True or a dict of relay options"))?;
    let mut c = RelayConfig::server();
    for (k, v) in dict.iter() {
        let key: String = k
            .extract()
            .map_err(|_| invalid("relay option names are strings"))?;
        let l = &mut c.limits;
        match key.as_str() {
            "allowlist" => {
                // (pyo3 does not extract a str as a list.)
                let list: Vec<String> = v
                    .extract()
                    .map_err(|_| invalid("relay 'allowlist' must be a list of principals"))?;
                let principals = list
                    .iter()
                    .map(|p| parse_principal_any(p))
                    .collect::<PyResult<Vec<_>>>()?;
                c.admission = RelayAdmission::Allowlist(principals);
            }
            "max_reservations" => l.max_reservations = count(&key, &v)? as usize,
            "max_circuits" => l.max_circuits = count(&key, &v)? as usize,
            "max_circuits_per_peer" => l.max_circuits_per_peer = count(&key, &v)? as usize,
            "circuit_max_bytes" => l.circuit_max_bytes = count(&key, &v)?,
            "requests_per_min" => {
                l.requests_per_min = u32::try_from(count(&key, &v)?)
                    .map_err(|_| invalid("relay 'requests_per_min' is too large"))?
            }
            "circuit_max_duration" => {
                let bad = || invalid("relay 'circuit_max_duration' must be positive seconds");
                if v.is_instance_of::<PyBool>() {
                    return Err(bad());
                }
                let secs: f64 = v.extract().map_err(|_| bad())?;
                l.circuit_max_duration = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(bad)?;
            }
            other => {
                return Err(invalid(format!(
                    "unknown relay option {other:?} (known: {})",
                    KEYS.join(", ")
                )))
            }
        }
    }
    Ok(c)
}

/// A reservation this peer keeps on a relay (``await peer.listen('relay://host:port')``).
#[pyclass(frozen, get_all, module = "snap2p")]
pub struct ReservationInfo {
    /// The relay, ``'relay://host:port'``.
    relay: String,
    /// Whether the reservation's session is up now.
    active: bool,
    /// This peer's ``'ip:port'`` as the relay sees it (what a hole punch aims at).
    observed: Option<String>,
}

impl From<snap2p::relay::ReservationInfo> for ReservationInfo {
    fn from(r: snap2p::relay::ReservationInfo) -> Self {
        ReservationInfo {
            relay: r.relay.to_string(),
            active: r.active,
            observed: r.observed.map(|a| a.to_string()),
        }
    }
}

#[pymethods]
impl ReservationInfo {
    fn __repr__(&self) -> String {
        format!(
            "ReservationInfo(relay={:?}, active={}, observed={:?})",
            self.relay, self.active, self.observed
        )
    }
}

/// What this peer serves as a relay now (all 0 unless it serves).
#[pyclass(frozen, get_all, module = "snap2p")]
pub struct RelayStats {
    /// Reservations held now.
    reservations: usize,
    /// Circuits open now.
    circuits: usize,
    /// Circuits opened since the peer started.
    circuits_total: u64,
    /// Of those, circuits spliced onto plain connections to the relay (PROTOCOL.md §32.3).
    spliced_total: u64,
    /// Bytes spliced through circuits, both directions.
    bytes_forwarded: u64,
    /// Requests refused (admission, limits, rate).
    refused: u64,
}

impl From<snap2p::relay::RelayStats> for RelayStats {
    fn from(s: snap2p::relay::RelayStats) -> Self {
        RelayStats {
            reservations: s.reservations,
            circuits: s.circuits,
            circuits_total: s.circuits_total,
            spliced_total: s.spliced_total,
            bytes_forwarded: s.bytes_forwarded,
            refused: s.refused,
        }
    }
}

#[pymethods]
impl RelayStats {
    fn __repr__(&self) -> String {
        format!(
            "RelayStats(reservations={}, circuits={}, circuits_total={}, spliced_total={}, \
             bytes_forwarded={}, refused={})",
            self.reservations,
            self.circuits,
            self.circuits_total,
            self.spliced_total,
            self.bytes_forwarded,
            self.refused
        )
    }
}
