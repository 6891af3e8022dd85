//! Discovery (docs/PROTOCOL.md §34–§37) as Python values: the ``resolver=`` option of
//! ``Peer.create``, what ``Peer.resolve`` returns, and signed endpoint adverts without a
//! peer (``decode_advert``, ``verify_advert``, ``issue_advert``). Conversions only: the
//! chain, its checks and errors are the core's (``snap2p::host``).

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict};
use snap2p::host;

use crate::error::{invalid, to_py};
use crate::identity::parse_principal_any;

/// The keys ``resolver={...}`` takes.
const KEYS: &[&str] = &[
    "steps",
    "timeouts",
    "dht",
    "dht_bootstrap",
    "dht_publish",
    "advert_cache_file",
    "mdns",
    "bns_providers",
];

fn strings(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    // (pyo3 would extract a str as a list of characters' strings: refuse it.)
    if v.extract::<String>().is_ok() {
        return Err(invalid(format!("resolver '{key}' must be a list of str")));
    }
    v.extract()
        .map_err(|_| invalid(format!("resolver '{key}' must be a list of str")))
}

fn flag(key: &str, v: &Bound<'_, PyAny>) -> PyResult<bool> {
    v.cast::<PyBool>()
        .map(|b| b.is_true())
        .map_err(|_| invalid(format!("resolver '{key}' must be a bool")))
}

/// ``resolver=``: ``None`` (the core's default chain, no DHT, mDNS or BNS) or a dict.
pub fn resolver_options(resolver: Option<&Bound<'_, PyAny>>) -> PyResult<host::ResolverOptions> {
    let mut o = host::ResolverOptions::default();
    let Some(resolver) = resolver.filter(|r| !r.is_none()) else {
        return Ok(o);
    };
    let dict = resolver
        .cast::<PyDict>()
        .map_err(|_| invalid("resolver must be a dict of resolver options"))?;
    for (k, v) in dict.iter() {
        let key: String = k
            .extract()
            .map_err(|_| invalid("resolver option names are strings"))?;
        match key.as_str() {
            "steps" => o.steps = Some(strings(&key, &v)?),
            "timeouts" => {
                let t = v
                    .cast::<PyDict>()
                    .map_err(|_| invalid("resolver 'timeouts' must be a dict of step: seconds"))?;
                for (name, secs) in t.iter() {
                    let name: String = name
                        .extract()
                        .map_err(|_| invalid("resolver 'timeouts' keys are step names"))?;
                    let bad = || {
                        invalid(format!(
                            "resolver timeout of {name:?} must be positive seconds"
                        ))
                    };
                    if secs.is_instance_of::<PyBool>() {
                        return Err(bad());
                    }
                    let secs: f64 = secs.extract().map_err(|_| bad())?;
                    let d = Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
                    o.timeouts.push((name, d));
                }
            }
            "dht" => o.dht = flag(&key, &v)?,
            "dht_bootstrap" => o.dht_bootstrap = strings(&key, &v)?,
            "dht_publish" => o.dht_publish = Some(flag(&key, &v)?),
            "advert_cache_file" => {
                o.advert_cache_file = Some(
                    v.extract()
                        .map_err(|_| invalid("resolver 'advert_cache_file' must be a path"))?,
                )
            }
            "mdns" => o.mdns = flag(&key, &v)?,
            "bns_providers" => o.bns_providers = strings(&key, &v)?,
            other => {
                return Err(invalid(format!(
                    "unknown resolver option {other:?} (known: {})",
                    KEYS.join(", ")
                )))
            }
        }
    }
    Ok(o)
}

/// One locator ``Peer.resolve`` found.
#[pyclass(frozen, get_all, module = "snap2p")]
#[derive(Clone)]
pub struct ResolvedLocator {
    locator: String,
    /// Listed by a live signed endpoint advert of the principal (signature and attestation
    /// checked); ``False``: a hint that only the dial's AUTH proves.
    verified: bool,
}

#[pymethods]
impl ResolvedLocator {
    fn __repr__(&self) -> String {
        format!(
            "ResolvedLocator(locator={:?}, verified={})",
            self.locator,
            if self.verified { "True" } else { "False" }
        )
    }
}

/// What one step of the resolver chain did.
#[pyclass(frozen, get_all, module = "snap2p")]
#[derive(Clone)]
pub struct ResolveStep {
    name: String,
    /// ``found``, ``not_found``, ``timeout``, ``error`` or ``skipped``.
    outcome: &'static str,
    /// Seconds it took.
    duration: f64,
    /// Locators found (0 unless ``found``).
    count: u32,
    /// Its error's code (``ErrorCode``) when it failed, else 0.
    code: u64,
    /// Its error's message when it failed.
    error: Option<String>,
}

#[pymethods]
impl ResolveStep {
    fn __repr__(&self) -> String {
        format!(
            "ResolveStep(name={:?}, outcome={:?}, duration={:.4}, count={}, code={})",
            self.name, self.outcome, self.duration, self.count, self.code
        )
    }
}

/// What ``Peer.resolve`` found and how (the core's ``ResolveReport``).
#[pyclass(frozen, get_all, module = "snap2p")]
pub struct ResolveReport {
    /// ``stacks:SP…`` (a name's owner when a BNS name was resolved).
    principal: String,
    /// The BNS name resolved first (lower-cased), else ``None``.
    name: Option<String>,
    /// The step that answered.
    answered_by: Option<String>,
    locators: Vec<ResolvedLocator>,
    steps: Vec<ResolveStep>,
    /// Seconds the whole resolve took.
    duration: f64,
}

#[pymethods]
impl ResolveReport {
    fn __repr__(&self) -> String {
        format!(
            "ResolveReport(principal={:?}, answered_by={:?}, {} locators)",
            self.principal,
            self.answered_by,
            self.locators.len()
        )
    }
}

impl From<host::ResolveInfo> for ResolveReport {
    fn from(r: host::ResolveInfo) -> Self {
        ResolveReport {
            principal: r.principal,
            name: r.name,
            answered_by: r.answered_by,
            locators: r
                .locators
                .into_iter()
                .map(|l| ResolvedLocator {
                    locator: l.locator,
                    verified: l.verified,
                })
                .collect(),
            steps: r
                .steps
                .into_iter()
                .map(|s| ResolveStep {
                    name: s.name,
                    outcome: s.outcome,
                    duration: s.duration_ms / 1000.0,
                    count: s.count,
                    code: s.error.as_ref().map_or(0, |e| e.code),
                    error: s.error.map(|e| e.reason),
                })
                .collect(),
            duration: r.duration_ms / 1000.0,
        }
    }
}

/// A signed endpoint advert's fields (docs/PROTOCOL.md §34).
#[pyclass(frozen, get_all, module = "snap2p")]
pub struct AdvertInfo {
    principal: String,
    /// The Ed25519 node key that signed it (32 bytes).
    node_key: Py<PyBytes>,
    seq: u64,
    issued_at: i64,
    expires_at: i64,
    locators: Vec<String>,
    /// The NodeKeyAttestation's wire bytes.
    attestation: Py<PyBytes>,
    /// The node key's signature (64 bytes) over ``signing_input``.
    signature: Py<PyBytes>,
    /// The domain, a zero byte, the canonical fields: what the node key signs.
    signing_input: Py<PyBytes>,
    /// The wire form re-encoded canonically.
    encoded: Py<PyBytes>,
}

#[pymethods]
impl AdvertInfo {
    fn __repr__(&self) -> String {
        format!(
            "AdvertInfo(principal={:?}, seq={}, expires_at={}, locators={:?})",
            self.principal, self.seq, self.expires_at, self.locators
        )
    }
}

fn advert(py: Python<'_>, a: host::AdvertInfo) -> AdvertInfo {
    let b = |v: &[u8]| PyBytes::new(py, v).unbind();
    AdvertInfo {
        principal: a.principal,
        node_key: b(&a.node_key),
        seq: a.seq,
        issued_at: a.issued_at,
        expires_at: a.expires_at,
        locators: a.locators,
        attestation: b(&a.attestation),
        signature: b(&a.signature),
        signing_input: b(&a.signing_input),
        encoded: b(&a.encoded),
    }
}

/// An advert's fields, without checking its signature or times.
#[pyfunction]
pub fn decode_advert(py: Python<'_>, wire: &[u8]) -> PyResult<AdvertInfo> {
    Ok(advert(py, host::decode_advert(wire).map_err(to_py)?))
}

/// Verifies an advert at ``now`` (unix seconds), under the expected node key and principal
/// when given: its fields, or ``Snap2pError`` with the core's code (the message starts with
/// the reason, ``ADV_TAMPERED``, ``ADV_EXPIRED``, …).
#[pyfunction]
#[pyo3(signature = (wire, now, *, node_key = None, principal = None))]
pub fn verify_advert(
    py: Python<'_>,
    wire: &[u8],
    now: i64,
    node_key: Option<Vec<u8>>,
    principal: Option<&str>,
) -> PyResult<AdvertInfo> {
    let principal = principal
        .map(|p| parse_principal_any(p).map(|p| p.to_string()))
        .transpose()?;
    let info =
        host::verify_advert(wire, now, node_key.as_deref(), principal.as_deref()).map_err(to_py)?;
    Ok(advert(py, info))
}

/// Issues an advert signed by the node key of ``node_seed`` (32 bytes), carrying
/// ``attestation`` (the wire bytes attesting that key): its wire bytes.
#[pyfunction]
#[pyo3(signature = (node_seed, attestation, *, locators, seq, issued_at, ttl_secs))]
pub fn issue_advert<'py>(
    py: Python<'py>,
    node_seed: &[u8],
    attestation: &[u8],
    locators: Vec<String>,
    seq: u64,
    issued_at: i64,
    ttl_secs: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    let wire = host::issue_advert(node_seed, attestation, &locators, seq, issued_at, ttl_secs)
        .map_err(to_py)?;
    Ok(PyBytes::new(py, &wire))
}
