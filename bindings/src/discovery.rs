//! Discovery (docs/PROTOCOL.md §34–§37) as uniffi records: the resolver chain's options
//! (`PeerOptions.resolver`), the report of `Peer.resolve`, and signed endpoint adverts
//! without a peer (`decodeAdvert`, `verifyAdvert`, `issueAdvert`). Conversions only: the
//! chain, its checks and its errors are the core's (`snap2p::host`).

use std::collections::HashMap;
use std::time::Duration;

use snap2p::host;

use crate::error::{ErrorInfo, Result};

/// The resolver chain of `Peer.resolve` and the modules behind its steps
/// (`PeerOptions.resolver`, docs/PROTOCOL.md §35.5). `ResolverOptions()` is the core's
/// default chain (cache, px-1, mdns, dht, bns) with no DHT, mDNS or BNS module.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ResolverOptions {
    /// The steps, in order, from `cache`, `px-1`, `mdns`, `dht`, `bns` (absent: all five).
    #[uniffi(default)]
    pub steps: Option<Vec<String>>,
    /// Timeouts of some steps (each a step of the chain, not zero).
    #[uniffi(default)]
    pub timeouts: HashMap<String, Duration>,
    /// Join the Mainline DHT (implied by `dht_bootstrap`).
    #[uniffi(default)]
    pub dht: bool,
    /// DHT bootstrap nodes, `host:port` (none, with `dht`: the public network's).
    #[uniffi(default)]
    pub dht_bootstrap: Vec<String>,
    /// Publish this peer's advert on the DHT (default: when Public).
    #[uniffi(default)]
    pub dht_publish: Option<bool>,
    /// File of the durable advert cache (default: memory only).
    #[uniffi(default)]
    pub advert_cache_file: Option<String>,
    /// mDNS on the LAN: the `mdns` step; a Public peer announces itself.
    #[uniffi(default)]
    pub mdns: bool,
    /// Stacks API base URLs BNS names (`alice.btc`) resolve through, all cross-checked.
    #[uniffi(default)]
    pub bns_providers: Vec<String>,
}

impl ResolverOptions {
    pub(crate) fn to_core(&self) -> host::ResolverOptions {
        // In the order given (a map has none): sorted by name, so errors are stable.
        let mut timeouts: Vec<(String, Duration)> =
            self.timeouts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        timeouts.sort();
        host::ResolverOptions {
            steps: self.steps.clone(),
            timeouts,
            dht: self.dht,
            dht_bootstrap: self.dht_bootstrap.clone(),
            dht_publish: self.dht_publish,
            advert_cache_file: self.advert_cache_file.as_ref().map(Into::into),
            mdns: self.mdns,
            bns_providers: self.bns_providers.clone(),
        }
    }
}

/// One locator `Peer.resolve` found.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ResolvedLocator {
    pub locator: String,
    /// Listed by a live signed endpoint advert of the principal (signature and
    /// attestation checked); `false`: a hint that only the dial's AUTH proves.
    pub verified: bool,
}

/// What one step of the resolver chain did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ResolveStep {
    pub name: String,
    /// `found`, `not_found`, `timeout`, `error` or `skipped`.
    pub outcome: String,
    pub duration: Duration,
    /// Locators found (0 unless `found`).
    pub count: u32,
    /// Why it failed (`timeout`, `error`).
    pub error: Option<ErrorInfo>,
}

/// What `Peer.resolve` found and how (the core's `ResolveReport`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ResolveReport {
    /// `stacks:SP…` (a name's owner when a BNS name was resolved).
    pub principal: String,
    /// The BNS name resolved first (lower-cased).
    pub name: Option<String>,
    /// The step that answered.
    pub answered_by: Option<String>,
    pub locators: Vec<ResolvedLocator>,
    pub steps: Vec<ResolveStep>,
    pub duration: Duration,
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v.max(0.0) / 1000.0)
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
                    duration: ms(s.duration_ms),
                    count: s.count,
                    error: s.error.map(|e| ErrorInfo {
                        code: e.code,
                        name: e.name.to_string(),
                        reason: e.reason,
                    }),
                })
                .collect(),
            duration: ms(r.duration_ms),
        }
    }
}

/// A signed endpoint advert's fields (docs/PROTOCOL.md §34).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AdvertInfo {
    pub principal: String,
    /// The Ed25519 node key that signed it (32 bytes).
    pub node_key: Vec<u8>,
    pub seq: u64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub locators: Vec<String>,
    /// The NodeKeyAttestation's wire bytes.
    pub attestation: Vec<u8>,
    /// The node key's signature (64 bytes) over `signing_input`.
    pub signature: Vec<u8>,
    /// The domain, a zero byte, the canonical fields: what the node key signs.
    pub signing_input: Vec<u8>,
    /// The wire form re-encoded canonically.
    pub encoded: Vec<u8>,
}

impl From<host::AdvertInfo> for AdvertInfo {
    fn from(a: host::AdvertInfo) -> Self {
        AdvertInfo {
            principal: a.principal,
            node_key: a.node_key,
            seq: a.seq,
            issued_at: a.issued_at,
            expires_at: a.expires_at,
            locators: a.locators,
            attestation: a.attestation,
            signature: a.signature,
            signing_input: a.signing_input,
            encoded: a.encoded,
        }
    }
}

/// An advert's fields, without checking its signature or times.
#[uniffi::export]
pub fn decode_advert(wire: Vec<u8>) -> Result<AdvertInfo> {
    Ok(host::decode_advert(&wire)?.into())
}

/// Verifies an advert at `now` (unix seconds), under the expected node key and principal
/// when given: its fields, or the core's error (the reason starts with `ADV_TAMPERED`,
/// `ADV_EXPIRED`, …).
#[uniffi::export(default(expected_node_key = None, expected_principal = None))]
pub fn verify_advert(
    wire: Vec<u8>,
    now: i64,
    expected_node_key: Option<Vec<u8>>,
    expected_principal: Option<String>,
) -> Result<AdvertInfo> {
    Ok(host::verify_advert(
        &wire,
        now,
        expected_node_key.as_deref(),
        expected_principal.as_deref(),
    )?
    .into())
}

/// Issues an advert signed by the node key of `node_seed` (32 bytes), carrying
/// `attestation` (the wire bytes attesting that key): its wire bytes.
#[uniffi::export]
pub fn issue_advert(
    node_seed: Vec<u8>,
    attestation: Vec<u8>,
    locators: Vec<String>,
    seq: u64,
    issued_at: i64,
    ttl_secs: i64,
) -> Result<Vec<u8>> {
    Ok(host::issue_advert(
        &node_seed,
        &attestation,
        &locators,
        seq,
        issued_at,
        ttl_secs,
    )?)
}
