//! PermissionGrants (docs/PROTOCOL.md §33) without a session: decode a grant's wire bytes,
//! verify it at a given time, and the node's decision for a presenter. Types only; every
//! decision is the core's (`PermissionGrant::{decode, verify}`, `Permissions::verify_grant`)
//! and its errors cross with their codes unchanged.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use snap2p::identity::{NetworkFilter, PermissionGrant};
use snap2p::policy::Permissions;

use crate::error::ResultExt;
use crate::util::parse_principal;

/// A decoded PermissionGrant: its fields and what the core derives from them.
#[napi(object)]
pub struct GrantInfo {
    /// The grant id (64 hex characters), the key `revokeGrant` takes.
    pub id: String,
    pub version: u32,
    pub issuer: String,
    pub holder: String,
    pub labels: Vec<String>,
    pub delegable: bool,
    /// The parent grant's wire bytes (a delegated grant), else null.
    pub parent: Option<Buffer>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub nonce: Buffer,
    /// "message" or "digest", as `Wallet.issueGrant` names the forms.
    pub form: String,
    pub signature: Buffer,
    /// The canonical CBOR the signature covers (every field but the signature).
    pub signing_bytes: Buffer,
    /// The text a wallet shows (and, in the message form, signs).
    pub message_text: String,
    /// The 32-byte digest the signature is over, in the grant's form.
    pub signed_digest: Buffer,
    /// The grant re-encoded (identical to canonical input).
    pub wire: Buffer,
}

impl From<PermissionGrant> for GrantInfo {
    fn from(g: PermissionGrant) -> Self {
        let PermissionGrant {
            v,
            ref issuer,
            ref holder,
            ref labels,
            delegable,
            ref parent,
            issued_at,
            expires_at,
            ref nonce,
            form,
            ref sig,
        } = g;
        GrantInfo {
            id: g.id(),
            version: v as u32,
            issuer: issuer.to_string(),
            holder: holder.to_string(),
            labels: labels.clone(),
            delegable,
            parent: parent.clone().map(Into::into),
            issued_at,
            expires_at,
            nonce: nonce.clone().into(),
            form: form.name().to_string(),
            signature: sig.clone().into(),
            signing_bytes: g.signing_bytes().into(),
            message_text: g.message_text(),
            signed_digest: g.signed_digest().to_vec().into(),
            wire: g.encode().into(),
        }
    }
}

/// Decodes a grant's wire bytes (no verification): ERR_AUTH_INVALID for bad bytes.
#[napi]
pub fn decode_grant(wire: Buffer) -> napi::Result<GrantInfo> {
    Ok(PermissionGrant::decode(&wire).js()?.into())
}

/// Decodes and verifies a grant at `now` (Unix seconds), any network: the grant itself and
/// for a delegated one its parent (ERR_AUTH_INVALID, ERR_AUTH_EXPIRED). Returns the parent's
/// id for a delegated grant, else null.
#[napi]
pub fn verify_grant(wire: Buffer, now: i64) -> napi::Result<Option<String>> {
    let grant = PermissionGrant::decode(&wire).js()?;
    let parent = grant.verify(now, NetworkFilter::ANY).js()?;
    Ok(parent.map(|p| p.id()))
}

/// The decision of a node owned by `owners`, with `revoked` grant ids or principals, when
/// `presenter` presents the grant at `now`: the grant's own errors, then ERR_NOT_ALLOWED.
/// Returns the chain's grant ids (parent first).
#[napi]
pub fn node_grant_decision(
    wire: Buffer,
    owners: Vec<String>,
    revoked: Vec<String>,
    presenter: String,
    now: i64,
) -> napi::Result<Vec<String>> {
    let perms = Permissions::new();
    for o in &owners {
        perms.add_owner(parse_principal(o)?);
    }
    for r in &revoked {
        perms.revoke(r).js()?;
    }
    let presenter = parse_principal(&presenter)?;
    let active = perms
        .verify_grant(&wire, &presenter, now, NetworkFilter::ANY)
        .js()?;
    Ok(active.ids)
}
