//! Verified-attestation cache: a peer seen before costs a hash and a map lookup instead of
//! a secp256k1 public-key recovery. Expiry is re-checked on every hit.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode};
use crate::identity::{NetworkFilter, NodeKeyAttestation, NodePublicKey, Principal};

use crate::identity::CLOCK_SKEW_SECS as MAX_SKEW_SECS;

/// What a verified attestation established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAttestation {
    pub principal: Principal,
    pub node_pubkey: [u8; 32],
    /// The attested node key, decompressed and converted once for every later session.
    pub node_key: NodePublicKey,
    pub issued_at: i64,
    pub expires_at: i64,
}

#[derive(Debug)]
pub struct AttestationCache {
    entries: Mutex<HashMap<[u8; 32], VerifiedAttestation>>,
    capacity: usize,
}

impl Default for AttestationCache {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl AttestationCache {
    pub fn new(capacity: usize) -> Self {
        AttestationCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Verifies encoded attestation bytes (or finds them verified before).
    pub fn verify(
        &self,
        bytes: &[u8],
        now: i64,
        networks: NetworkFilter,
    ) -> Result<VerifiedAttestation, Error> {
        let key: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(v) = self.entries.lock().unwrap().get(&key).cloned() {
            if now > v.expires_at + MAX_SKEW_SECS {
                return Err(Error::new(ErrorCode::AuthExpired, "attestation expired"));
            }
            if v.issued_at > now + MAX_SKEW_SECS {
                return Err(Error::new(
                    ErrorCode::AuthExpired,
                    "attestation issued in the future",
                ));
            }
            if !networks.accepts(v.principal.network()) {
                return Err(Error::new(
                    ErrorCode::NotAllowed,
                    "principal on a network this node does not accept",
                ));
            }
            return Ok(v);
        }
        let att = NodeKeyAttestation::decode(bytes)?;
        let node_key = att.verify_node_key(now, networks)?;
        let v = VerifiedAttestation {
            principal: att.principal.clone(),
            node_pubkey: att.node_pubkey,
            node_key,
            issued_at: att.issued_at,
            expires_at: att.expires_at,
        };
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= self.capacity {
            // Drop expired entries first, then an arbitrary one.
            entries.retain(|_, e| e.expires_at + MAX_SKEW_SECS >= now);
            if entries.len() >= self.capacity {
                if let Some(k) = entries.keys().next().copied() {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(key, v.clone());
        Ok(v)
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
