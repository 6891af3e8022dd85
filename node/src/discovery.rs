//! Discovery (docs/PROTOCOL.md §34–§37): the resolver chain's options (`PeerOptions.resolver`),
//! the report of `peer.resolve`, and signed endpoint adverts without a peer. Types and
//! conversions only: the chain, its checks and its errors are the core's
//! (`snap2p::host::{ResolverOptions, ResolveInfo, decode_advert, verify_advert,
//! issue_advert}`), errors cross with their codes unchanged.

use std::collections::HashMap;
use std::time::Duration;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use snap2p::host;

use crate::error::{invalid, ErrorInfo, ResultExt};

/// The resolver chain of `peer.resolve` and the modules behind its steps
/// (`PeerOptions.resolver`); absent fields keep the core's defaults.
#[napi(object)]
#[derive(Default)]
pub struct ResolverOptions {
    /// The steps, in order, from `"cache"`, `"px-1"`, `"mdns"`, `"dht"`, `"bns"` (default:
    /// all five in that order).
    pub steps: Option<Vec<String>>,
    /// Timeouts of some steps, milliseconds (`{ dht: 2000 }`).
    pub timeouts_ms: Option<HashMap<String, u32>>,
    /// Join the Mainline DHT (implied by `dhtBootstrap`).
    pub dht: Option<bool>,
    /// DHT bootstrap nodes, `host:port` (none, with `dht`: the public network's).
    pub dht_bootstrap: Option<Vec<String>>,
    /// Publish this peer's advert on the DHT (default: when Public).
    pub dht_publish: Option<bool>,
    /// File of the durable advert cache (default: memory only).
    pub advert_cache_file: Option<String>,
    /// mDNS on the LAN (the `mdns` step; a Public peer announces itself).
    pub mdns: Option<bool>,
    /// Stacks API base URLs that BNS names (`alice.btc`) resolve through, cross-checked.
    pub bns_providers: Option<Vec<String>>,
}

impl ResolverOptions {
    pub fn to_core(&self) -> napi::Result<host::ResolverOptions> {
        let mut timeouts = Vec::new();
        for (name, ms) in self.timeouts_ms.iter().flatten() {
            timeouts.push((name.clone(), Duration::from_millis((*ms).into())));
        }
        Ok(host::ResolverOptions {
            steps: self.steps.clone(),
            timeouts,
            dht: self.dht.unwrap_or(false),
            dht_bootstrap: self.dht_bootstrap.clone().unwrap_or_default(),
            dht_publish: self.dht_publish,
            advert_cache_file: self.advert_cache_file.as_ref().map(Into::into),
            mdns: self.mdns.unwrap_or(false),
            bns_providers: self.bns_providers.clone().unwrap_or_default(),
        })
    }
}

/// One locator `peer.resolve` found.
#[napi(object)]
pub struct ResolvedLocator {
    pub locator: String,
    /// Listed by a live signed endpoint advert of the principal (signature and
    /// attestation checked); `false`: a hint that only the dial's AUTH proves.
    pub verified: bool,
}

/// What one step of the chain did.
#[napi(object)]
pub struct ResolveStep {
    pub name: String,
    /// `"found"`, `"not_found"`, `"timeout"`, `"error"` or `"skipped"`.
    pub outcome: String,
    pub duration_ms: f64,
    /// Locators found (0 unless `found`).
    pub count: u32,
    /// Why it failed (`timeout`, `error`).
    pub error: Option<ErrorInfo>,
}

/// What `peer.resolve` found and how (the core's `ResolveReport`).
#[napi(object)]
pub struct ResolveReport {
    /// `stacks:SP…` (a name's owner when a BNS name was resolved).
    pub principal: String,
    /// The BNS name resolved first (lower-cased), else null.
    pub name: Option<String>,
    /// The step that answered.
    pub answered_by: Option<String>,
    pub locators: Vec<ResolvedLocator>,
    pub steps: Vec<ResolveStep>,
    pub duration_ms: f64,
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
                    outcome: s.outcome.to_string(),
                    duration_ms: s.duration_ms,
                    count: s.count,
                    error: s.error.map(|e| ErrorInfo {
                        code: e.code as u32,
                        name: e.name.to_string(),
                        message: e.reason,
                    }),
                })
                .collect(),
            duration_ms: r.duration_ms,
        }
    }
}

/// A signed endpoint advert's fields (docs/PROTOCOL.md §34).
#[napi(object)]
pub struct AdvertInfo {
    pub principal: String,
    /// The Ed25519 node key that signed it (32 bytes).
    pub node_key: Buffer,
    pub seq: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub locators: Vec<String>,
    /// The NodeKeyAttestation's wire bytes.
    pub attestation: Buffer,
    /// The node key's signature (64 bytes) over `signingInput`.
    pub signature: Buffer,
    /// The domain, a zero byte, the canonical fields: what the node key signs.
    pub signing_input: Buffer,
    /// The wire form re-encoded canonically.
    pub encoded: Buffer,
}

impl From<host::AdvertInfo> for AdvertInfo {
    fn from(a: host::AdvertInfo) -> Self {
        AdvertInfo {
            principal: a.principal,
            node_key: a.node_key.into(),
            seq: a.seq as i64,
            issued_at: a.issued_at,
            expires_at: a.expires_at,
            locators: a.locators,
            attestation: a.attestation.into(),
            signature: a.signature.into(),
            signing_input: a.signing_input.into(),
            encoded: a.encoded.into(),
        }
    }
}

/// An advert's fields, without checking its signature or times.
#[napi]
pub fn decode_advert(wire: Buffer) -> napi::Result<AdvertInfo> {
    Ok(host::decode_advert(&wire).js()?.into())
}

/// Verifies an advert at `now` (unix seconds), under the expected node key and principal
/// when given: its fields, or the core's error (the message starts with the reason).
#[napi]
pub fn verify_advert(
    wire: Buffer,
    now: i64,
    expected_node_key: Option<Buffer>,
    expected_principal: Option<String>,
) -> napi::Result<AdvertInfo> {
    Ok(host::verify_advert(
        &wire,
        now,
        expected_node_key.as_deref(),
        expected_principal.as_deref(),
    )
    .js()?
    .into())
}

/// Issues an advert signed by the node key of `nodeSeed` (32 bytes) carrying
/// `attestation`: its wire bytes.
#[napi]
pub fn issue_advert(
    node_seed: Buffer,
    attestation: Buffer,
    locators: Vec<String>,
    seq: i64,
    issued_at: i64,
    ttl_secs: i64,
) -> napi::Result<Buffer> {
    let seq = u64::try_from(seq).map_err(|_| invalid("seq must not be negative"))?;
    Ok(host::issue_advert(
        &node_seed,
        &attestation,
        &locators,
        seq,
        issued_at,
        ttl_secs,
    )
    .js()?
    .into())
}
