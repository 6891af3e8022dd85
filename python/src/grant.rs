//! PermissionGrants (docs/PROTOCOL.md §33) without a session: ``decode_grant``,
//! ``verify_grant`` and ``node_grant_decision``. Types only; every decision is the core's
//! (``PermissionGrant::{decode, verify}``, ``Permissions::verify_grant``) and its errors
//! cross with their codes unchanged.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use snap2p::identity::{GrantRequest, NetworkFilter, PermissionGrant};
use snap2p::policy::Permissions;

use crate::error::to_py;
use crate::identity::parse_principal_any;
use crate::signer::host_signer;

/// A decoded PermissionGrant: its fields and what the core derives from them.
#[pyclass(frozen, get_all, module = "snap2p")]
pub struct GrantInfo {
    /// The grant id (64 hex characters), the key ``revoke_grant`` takes.
    id: String,
    version: u64,
    issuer: String,
    holder: String,
    labels: Vec<String>,
    delegable: bool,
    /// The parent grant's wire bytes (a delegated grant), else ``None``.
    parent: Option<Py<PyBytes>>,
    issued_at: i64,
    expires_at: i64,
    nonce: Py<PyBytes>,
    /// ``"message"`` or ``"digest"``, as ``LocalWallet.issue_grant`` names the forms.
    form: &'static str,
    signature: Py<PyBytes>,
    /// The canonical CBOR the signature covers (every field but the signature).
    signing_bytes: Py<PyBytes>,
    /// The text a wallet shows (and, in the message form, signs).
    message_text: String,
    /// The 32-byte digest the signature is over, in the grant's form.
    signed_digest: Py<PyBytes>,
    /// The grant re-encoded.
    wire: Py<PyBytes>,
}

#[pymethods]
impl GrantInfo {
    fn __repr__(&self) -> String {
        format!(
            "GrantInfo(id={:?}, issuer={:?}, holder={:?}, labels={:?})",
            self.id, self.issuer, self.holder, self.labels
        )
    }
}

fn info(py: Python<'_>, g: &PermissionGrant) -> GrantInfo {
    let b = |v: &[u8]| PyBytes::new(py, v).unbind();
    let PermissionGrant {
        v,
        issuer,
        holder,
        labels,
        delegable,
        parent,
        issued_at,
        expires_at,
        nonce,
        form,
        sig,
    } = g;
    GrantInfo {
        id: g.id(),
        version: *v,
        issuer: issuer.to_string(),
        holder: holder.to_string(),
        labels: labels.clone(),
        delegable: *delegable,
        parent: parent.as_deref().map(b),
        issued_at: *issued_at,
        expires_at: *expires_at,
        nonce: b(nonce),
        form: form.name(),
        signature: b(sig),
        signing_bytes: b(&g.signing_bytes()),
        message_text: g.message_text(),
        signed_digest: b(&g.signed_digest()),
        wire: b(&g.encode()),
    }
}

/// Decodes a grant's wire bytes (no verification): ``AUTH_INVALID`` for bad bytes.
#[pyfunction]
pub fn decode_grant(py: Python<'_>, wire: &[u8]) -> PyResult<GrantInfo> {
    let g = PermissionGrant::decode(wire).map_err(to_py)?;
    Ok(info(py, &g))
}

/// Decodes and verifies a grant at ``now`` (Unix seconds), any network (``AUTH_INVALID``,
/// ``AUTH_EXPIRED``). Returns the parent's id for a delegated grant, else ``None``.
#[pyfunction]
pub fn verify_grant(wire: &[u8], now: i64) -> PyResult<Option<String>> {
    let g = PermissionGrant::decode(wire).map_err(to_py)?;
    let parent = g.verify(now, NetworkFilter::ANY).map_err(to_py)?;
    Ok(parent.map(|p| p.id()))
}

/// The decision of a node owned by ``owners``, with ``revoked`` grant ids or principals,
/// when ``presenter`` presents the grant at ``now``: the grant's own errors, then
/// ``NOT_ALLOWED``. Returns the chain's grant ids (parent first).
#[pyfunction]
pub fn node_grant_decision(
    wire: &[u8],
    owners: Vec<String>,
    revoked: Vec<String>,
    presenter: &str,
    now: i64,
) -> PyResult<Vec<String>> {
    let perms = Permissions::new();
    for o in &owners {
        perms.add_owner(parse_principal_any(o)?);
    }
    for r in &revoked {
        perms.revoke(r).map_err(to_py)?;
    }
    let presenter = parse_principal_any(presenter)?;
    let active = perms
        .verify_grant(wire, &presenter, now, NetworkFilter::ANY)
        .map_err(to_py)?;
    Ok(active.ids)
}

/// Issues a grant signed by a host signer (``principal`` + ``sign(request)``, plain or
/// async, optional ``signature_form``), as ``LocalWallet.issue_grant`` does with a key held
/// here: the core's ``PermissionGrant::issue``. Awaitable; returns the wire bytes. A signer
/// that raises fails with the code ``Peer.create(signer=…)`` gives (``WALLET_ERROR``).
#[pyfunction]
#[pyo3(signature = (signer, holder, labels, ttl_secs = None, delegable = false, parent = None))]
pub fn issue_grant<'py>(
    py: Python<'py>,
    signer: &Bound<'py, PyAny>,
    holder: &str,
    labels: Vec<String>,
    ttl_secs: Option<i64>,
    delegable: bool,
    parent: Option<Vec<u8>>,
) -> PyResult<Bound<'py, PyAny>> {
    let signer = host_signer(py, signer)?;
    let req = GrantRequest {
        holder: parse_principal_any(holder)?,
        labels,
        delegable,
        parent,
        ttl_secs: ttl_secs.unwrap_or(PermissionGrant::DEFAULT_TTL_SECS),
    };
    crate::bridge::future_into_py(py, async move {
        let g = PermissionGrant::issue(signer.as_ref(), req, snap2p::unix_now())
            .await
            .map_err(to_py)?;
        Ok(g.encode())
    })
}
