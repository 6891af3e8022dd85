//! PermissionGrants (docs/PROTOCOL.md §33) without a session: decode a grant's wire bytes,
//! verify it at a given time, and a node's decision for a presenter. Types only; every
//! decision is the core's (`PermissionGrant::{decode, verify}`, `Permissions::verify_grant`)
//! and its errors cross with their codes unchanged.

use snap2p::identity::{NetworkFilter, PermissionGrant};
use snap2p::policy::Permissions;

use crate::error::Result;
use crate::identity::{parse_principal_arg, SignatureForm};

/// A decoded PermissionGrant: its fields and what the core derives from them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GrantInfo {
    /// The grant id (64 hex characters), the key `revokeGrant` takes.
    pub id: String,
    pub version: u64,
    pub issuer: String,
    pub holder: String,
    pub labels: Vec<String>,
    pub delegable: bool,
    /// The parent grant's wire bytes (a delegated grant).
    pub parent: Option<Vec<u8>>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub nonce: Vec<u8>,
    pub form: SignatureForm,
    pub signature: Vec<u8>,
    /// The canonical CBOR the signature covers (every field but the signature).
    pub signing_bytes: Vec<u8>,
    /// The text a wallet shows (and, in the message form, signs).
    pub message_text: String,
    /// The 32-byte digest the signature is over, in the grant's form.
    pub signed_digest: Vec<u8>,
    /// The grant re-encoded.
    pub wire: Vec<u8>,
}

impl From<&PermissionGrant> for GrantInfo {
    fn from(g: &PermissionGrant) -> Self {
        // Destructured so a new core field fails the build here.
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
            parent: parent.clone(),
            issued_at: *issued_at,
            expires_at: *expires_at,
            nonce: nonce.clone(),
            form: (*form).into(),
            signature: sig.clone(),
            signing_bytes: g.signing_bytes(),
            message_text: g.message_text(),
            signed_digest: g.signed_digest().to_vec(),
            wire: g.encode(),
        }
    }
}

/// Decodes a grant's wire bytes (no verification): ERR_AUTH_INVALID for bad bytes.
#[uniffi::export]
pub fn decode_grant(wire: Vec<u8>) -> Result<GrantInfo> {
    Ok((&PermissionGrant::decode(&wire)?).into())
}

/// Decodes and verifies a grant at `now` (Unix seconds), any network (ERR_AUTH_INVALID,
/// ERR_AUTH_EXPIRED). Returns the parent's id for a delegated grant.
#[uniffi::export]
pub fn verify_grant(wire: Vec<u8>, now: i64) -> Result<Option<String>> {
    let g = PermissionGrant::decode(&wire)?;
    Ok(g.verify(now, NetworkFilter::ANY)?.map(|p| p.id()))
}

/// The decision of a node owned by `owners`, with `revoked` grant ids or principals, when
/// `presenter` presents the grant at `now`: the grant's own errors, then ERR_NOT_ALLOWED.
/// Returns the chain's grant ids (parent first).
#[uniffi::export]
pub fn node_grant_decision(
    wire: Vec<u8>,
    owners: Vec<String>,
    revoked: Vec<String>,
    presenter: String,
    now: i64,
) -> Result<Vec<String>> {
    let perms = Permissions::new();
    for o in &owners {
        perms.add_owner(parse_principal_arg(o)?);
    }
    for r in &revoked {
        perms.revoke(r)?;
    }
    let presenter = parse_principal_arg(&presenter)?;
    Ok(perms
        .verify_grant(&wire, &presenter, now, NetworkFilter::ANY)?
        .ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bytes_keep_the_core_code() {
        let e = decode_grant(vec![0xa0]).unwrap_err();
        assert_eq!(e.code(), snap2p::ErrorCode::AuthInvalid.as_u64());
    }
}
