//! Signed endpoint advertisements (PROTOCOL.md §34): where a node key can be reached, signed
//! by that node key, carrying the NodeKeyAttestation that binds it to a principal, with a
//! sequence number and an expiry (seed 003: "discovery maps node-id → current signed
//! endpoint advertisement"; stale or equal sequence numbers are rejected; the freshest is
//! kept durably). [`AdvertCache`] is that durable store.
//!
//! Wire form: one canonical-CBOR map (keys in byte-wise order)
//!
//! ```text
//! { "att": bytes (NodeKeyAttestation wire form), "domain": "snap2p-endpoint-advert-v1",
//!   "exp": int, "loc": [text locator, …], "seq": uint, "sig": bytes(64), "ts": int, "v": 1 }
//! ```
//!
//! signed by the attested node key (ed25519) over
//! `"snap2p-endpoint-advert-v1" ‖ 0x00 ‖ canonical CBOR of the map without "sig"`.
//! At most [`MAX_ADVERT_LEN`] bytes: the BEP44 limit on a DHT item's value, so one advert
//! is one DHT record.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, ErrorCode};
use crate::identity::{
    verify_ed25519, NetworkFilter, NodeKey, NodeKeyAttestation, Principal, CLOCK_SKEW_SECS,
    MAX_TIMESTAMP,
};
use crate::locator::Locator;
use crate::wire::cbor::{self, Value};

/// The advert's `domain` field and the prefix of its signing input.
pub const ADVERT_DOMAIN: &str = "snap2p-endpoint-advert-v1";
/// Largest encoded advert: BEP44's limit on the `v` of a DHT item (1000 bytes).
pub const MAX_ADVERT_LEN: usize = 1000;
/// Most locators one advert carries.
pub const MAX_LOCATORS: usize = 8;
/// Longest locator text an advert carries (a `wss://` name with a path fits easily).
pub const MAX_LOCATOR_LEN: usize = 200;
/// Default lifetime of an advert this node issues. The DHT module republishes at half of
/// it, so a record stays fresh while BEP44 nodes keep items about 2 hours.
pub const DEFAULT_ADVERT_TTL_SECS: i64 = 3600;
/// Adverts the cache keeps at most (the oldest-expiring go first).
pub const MAX_CACHED_ADVERTS: usize = 4096;
/// How long the cache keeps an expired advert (never handed out) so that its sequence
/// number still stops the replay of an older one.
pub const EXPIRED_RETENTION_SECS: i64 = 7 * 86_400;

/// Why an advert was refused: a stable name (`reason` in the vectors and in every error
/// message, first word) and the [`ErrorCode`] it travels as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdvertReject {
    /// More than [`MAX_ADVERT_LEN`] bytes, or more than [`MAX_LOCATORS`] locators
    /// (ERR_MESSAGE_TOO_LARGE, 14).
    Oversize,
    /// Not the canonical map of this section: bad CBOR, a field missing or of the wrong
    /// type, an unknown version or domain, a bad locator (ERR_INVALID_MESSAGE, 15).
    Malformed,
    /// The node key's signature does not verify over the fields (ERR_AUTH_INVALID, 6).
    Tampered,
    /// Outside its validity window (ERR_AUTH_EXPIRED, 7).
    Expired,
    /// Signed by another node key than the one it was looked up under (a DHT record's
    /// key) (ERR_AUTH_INVALID, 6).
    WrongKey,
    /// The attestation inside is invalid or expired, or attests another principal than
    /// the one looked up (ERR_AUTH_INVALID 6, ERR_AUTH_EXPIRED 7 or
    /// ERR_PRINCIPAL_MISMATCH 23, the attestation's own code).
    Attestation,
    /// Its sequence number is not above the one already held for its node key
    /// (ERR_INVALID_MESSAGE, 15).
    StaleSeq,
}

impl AdvertReject {
    pub const ALL: [AdvertReject; 7] = [
        AdvertReject::Oversize,
        AdvertReject::Malformed,
        AdvertReject::Tampered,
        AdvertReject::Expired,
        AdvertReject::WrongKey,
        AdvertReject::Attestation,
        AdvertReject::StaleSeq,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AdvertReject::Oversize => "ADV_OVERSIZE",
            AdvertReject::Malformed => "ADV_MALFORMED",
            AdvertReject::Tampered => "ADV_TAMPERED",
            AdvertReject::Expired => "ADV_EXPIRED",
            AdvertReject::WrongKey => "ADV_WRONG_KEY",
            AdvertReject::Attestation => "ADV_ATTESTATION",
            AdvertReject::StaleSeq => "ADV_STALE_SEQ",
        }
    }

    /// The reason of an error this module made (the first word of its message).
    pub fn of(error: &Error) -> Option<AdvertReject> {
        let first = error.message.split(':').next()?;
        AdvertReject::ALL.into_iter().find(|r| r.name() == first)
    }
}

impl fmt::Display for AdvertReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn reject(r: AdvertReject, code: ErrorCode, msg: impl fmt::Display) -> Error {
    Error::new(code, format!("{}: {msg}", r.name()))
}

fn malformed(msg: impl fmt::Display) -> Error {
    reject(AdvertReject::Malformed, ErrorCode::InvalidMessage, msg)
}

/// One signed endpoint advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointAdvert {
    pub v: u64,
    /// The NodeKeyAttestation, decoded (its wire bytes are [`Self::attestation_bytes`]).
    pub attestation: NodeKeyAttestation,
    attestation_bytes: Vec<u8>,
    /// Where the node key can be dialed, in the publisher's order of preference.
    pub locators: Vec<Locator>,
    pub seq: u64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub sig: [u8; 64],
}

impl EndpointAdvert {
    /// Issues an advert signed by `node_key`: `attestation` (wire bytes) must attest that
    /// key. It expires after `ttl_secs`, or with the attestation if that is sooner.
    /// Unspecified addresses (`0.0.0.0:…`, a listener bound to every interface) are left
    /// out: nobody can dial them.
    pub fn issue(
        node_key: &NodeKey,
        attestation: &[u8],
        locators: &[Locator],
        seq: u64,
        now: i64,
        ttl_secs: i64,
    ) -> Result<EndpointAdvert, Error> {
        let att = NodeKeyAttestation::decode(attestation)?;
        if att.node_pubkey != node_key.public() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "the attestation is for another node key",
            ));
        }
        if ttl_secs <= 0 || seq > i64::MAX as u64 {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "an advert needs a positive ttl and a seq of at most 2^63-1 (BEP44's int64)",
            ));
        }
        let expires_at = now.saturating_add(ttl_secs).min(att.expires_at);
        if expires_at <= now || !(0..=MAX_TIMESTAMP).contains(&now) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "the attestation expires before the advert would start",
            ));
        }
        let mut locs: Vec<Locator> = Vec::new();
        for l in locators {
            let unspecified = l.socket_addr().is_some_and(|a| a.ip().is_unspecified());
            if !unspecified && !locs.contains(l) && l.to_string().len() <= MAX_LOCATOR_LEN {
                locs.push(l.clone());
            }
        }
        if locs.len() > MAX_LOCATORS {
            return Err(reject(
                AdvertReject::Oversize,
                ErrorCode::MessageTooLarge,
                format!("{} locators, at most {MAX_LOCATORS}", locs.len()),
            ));
        }
        let mut ad = EndpointAdvert {
            v: 1,
            attestation: att,
            attestation_bytes: attestation.to_vec(),
            locators: locs,
            seq,
            issued_at: now,
            expires_at,
            sig: [0; 64],
        };
        ad.sig = node_key.sign(&ad.signing_input());
        let len = ad.encode().len();
        if len > MAX_ADVERT_LEN {
            return Err(reject(
                AdvertReject::Oversize,
                ErrorCode::MessageTooLarge,
                format!("{len} bytes, at most {MAX_ADVERT_LEN}: fewer or shorter locators"),
            ));
        }
        Ok(ad)
    }

    /// The attestation's wire bytes, as carried.
    pub fn attestation_bytes(&self) -> &[u8] {
        &self.attestation_bytes
    }

    /// The node key that signed it (the attested one).
    pub fn node_key(&self) -> [u8; 32] {
        self.attestation.node_pubkey
    }

    /// The principal the attestation binds the node key to.
    pub fn principal(&self) -> &Principal {
        &self.attestation.principal
    }

    fn to_cbor(&self, with_sig: bool) -> Vec<u8> {
        let locs: Vec<String> = self.locators.iter().map(|l| l.to_string()).collect();
        let mut entries = vec![
            ("att", Value::Bytes(&self.attestation_bytes)),
            ("domain", Value::Text(ADVERT_DOMAIN)),
            ("exp", int_value(self.expires_at)),
            (
                "loc",
                Value::Array(locs.iter().map(|s| Value::Text(s)).collect()),
            ),
            ("seq", Value::Uint(self.seq)),
            ("ts", int_value(self.issued_at)),
            ("v", Value::Uint(self.v)),
        ];
        if with_sig {
            entries.push(("sig", Value::Bytes(&self.sig)));
        }
        cbor::to_vec(&Value::Map(entries))
    }

    /// Canonical CBOR of every field except `sig`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.to_cbor(false)
    }

    /// What the node key signs: the domain, a zero byte, then [`Self::signing_bytes`].
    pub fn signing_input(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ADVERT_DOMAIN.len() + 1 + 600);
        out.extend_from_slice(ADVERT_DOMAIN.as_bytes());
        out.push(0);
        out.extend_from_slice(&self.signing_bytes());
        out
    }

    /// Wire form.
    pub fn encode(&self) -> Vec<u8> {
        self.to_cbor(true)
    }

    /// Decodes the wire form (no signature or time check: [`Self::verify`]). Unknown keys
    /// are ignored, a repeated key is refused. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<EndpointAdvert, Error> {
        if bytes.len() > MAX_ADVERT_LEN {
            return Err(reject(
                AdvertReject::Oversize,
                ErrorCode::MessageTooLarge,
                format!("{} bytes, at most {MAX_ADVERT_LEN}", bytes.len()),
            ));
        }
        let value = cbor::decode(bytes).map_err(malformed)?;
        let Value::Map(entries) = &value else {
            return Err(malformed("not a CBOR map"));
        };
        for (i, (k, _)) in entries.iter().enumerate() {
            if entries[..i].iter().any(|(other, _)| other == k) {
                return Err(malformed(format!("duplicate key {k:?}")));
            }
        }
        let get = |k: &str| value.get(k).ok_or_else(|| malformed(format!("no {k:?}")));
        let wrong = |k: &str, ty: &str| malformed(format!("{k:?} is not {ty}"));
        let domain = get("domain")?
            .as_text()
            .ok_or_else(|| wrong("domain", "text"))?;
        if domain != ADVERT_DOMAIN {
            return Err(malformed(format!(
                "domain {domain:?}, expected {ADVERT_DOMAIN:?}"
            )));
        }
        let v = get("v")?.as_u64().ok_or_else(|| wrong("v", "a uint"))?;
        if v != 1 {
            return Err(malformed(format!("unsupported version {v}")));
        }
        let att_bytes = get("att")?
            .as_bytes()
            .ok_or_else(|| wrong("att", "bytes"))?;
        let attestation = NodeKeyAttestation::decode(att_bytes).map_err(|e| {
            reject(
                AdvertReject::Attestation,
                e.code,
                format!("attestation: {}", e.message),
            )
        })?;
        let loc_items = get("loc")?
            .as_array()
            .ok_or_else(|| wrong("loc", "an array"))?;
        if loc_items.len() > MAX_LOCATORS {
            return Err(reject(
                AdvertReject::Oversize,
                ErrorCode::MessageTooLarge,
                format!("{} locators, at most {MAX_LOCATORS}", loc_items.len()),
            ));
        }
        let mut locators = Vec::with_capacity(loc_items.len());
        for item in loc_items {
            let text = item.as_text().ok_or_else(|| wrong("loc", "text items"))?;
            let loc: Locator = text
                .parse()
                .map_err(|e: Error| malformed(format!("locator: {}", e.message)))?;
            locators.push(loc);
        }
        let seq = get("seq")?.as_u64().ok_or_else(|| wrong("seq", "a uint"))?;
        if seq > i64::MAX as u64 {
            return Err(malformed("seq above 2^63-1"));
        }
        let issued_at = get("ts")?.as_i64().ok_or_else(|| wrong("ts", "an int"))?;
        let expires_at = get("exp")?.as_i64().ok_or_else(|| wrong("exp", "an int"))?;
        let sig: [u8; 64] = get("sig")?
            .as_bytes()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| wrong("sig", "64 bytes"))?;
        Ok(EndpointAdvert {
            v,
            attestation,
            attestation_bytes: att_bytes.to_vec(),
            locators,
            seq,
            issued_at,
            expires_at,
            sig,
        })
    }

    /// Verification at `now` (unix seconds), in this order: the node key's signature over
    /// the canonical re-encoding (ADV_TAMPERED); the node key is `expected_key` when the
    /// advert was looked up under a key (ADV_WRONG_KEY); the validity window with the
    /// attestation's ±300 s skew (ADV_EXPIRED); the attestation (ADV_ATTESTATION, its own
    /// code); its principal is `expected_principal` when given (ADV_ATTESTATION,
    /// ERR_PRINCIPAL_MISMATCH).
    pub fn verify(
        &self,
        now: i64,
        networks: NetworkFilter,
        expected_key: Option<&[u8; 32]>,
        expected_principal: Option<&Principal>,
    ) -> Result<(), Error> {
        if !verify_ed25519(&self.node_key(), &self.signing_input(), &self.sig) {
            return Err(reject(
                AdvertReject::Tampered,
                ErrorCode::AuthInvalid,
                "the node key's signature does not verify",
            ));
        }
        if let Some(k) = expected_key {
            if *k != self.node_key() {
                return Err(reject(
                    AdvertReject::WrongKey,
                    ErrorCode::AuthInvalid,
                    format!(
                        "signed by node key {}, looked up under {}",
                        hex::encode(self.node_key()),
                        hex::encode(k)
                    ),
                ));
            }
        }
        if self.expires_at <= self.issued_at || !(0..=MAX_TIMESTAMP).contains(&self.issued_at) {
            return Err(malformed("expiry not after issue time, or out of range"));
        }
        if self.issued_at > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(reject(
                AdvertReject::Expired,
                ErrorCode::AuthExpired,
                format!("not valid yet (issued at {}, now {now})", self.issued_at),
            ));
        }
        if self.expires_at <= now.saturating_sub(CLOCK_SKEW_SECS) {
            return Err(reject(
                AdvertReject::Expired,
                ErrorCode::AuthExpired,
                format!("expired at {} (now {now})", self.expires_at),
            ));
        }
        self.attestation.verify(now, networks).map_err(|e| {
            reject(
                AdvertReject::Attestation,
                e.code,
                format!("attestation: {}", e.message),
            )
        })?;
        if let Some(p) = expected_principal {
            if p != self.principal() {
                return Err(reject(
                    AdvertReject::Attestation,
                    ErrorCode::PrincipalMismatch,
                    format!("attests {}, looked up {p}", self.principal()),
                ));
            }
        }
        Ok(())
    }

    /// Decode then verify.
    pub fn decode_and_verify(
        bytes: &[u8],
        now: i64,
        networks: NetworkFilter,
        expected_key: Option<&[u8; 32]>,
        expected_principal: Option<&Principal>,
    ) -> Result<EndpointAdvert, Error> {
        let ad = Self::decode(bytes)?;
        ad.verify(now, networks, expected_key, expected_principal)?;
        Ok(ad)
    }

    /// Whether it may still be handed out at `now` (same skew as [`Self::verify`]).
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at > now.saturating_sub(CLOCK_SKEW_SECS)
    }
}

fn int_value(n: i64) -> Value<'static> {
    if n >= 0 {
        Value::Uint(n as u64)
    } else {
        Value::Nint((-1 - n) as u64)
    }
}

/// What [`AdvertCache::insert`] did with an advert it accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// The first advert of its node key.
    New,
    /// Replaced an advert of a lower sequence number.
    Replaced { previous_seq: u64 },
}

/// The file's `schema` (the durable cache's format).
pub const CACHE_SCHEMA: &str = "snap2p-advert-cache-v1";

#[derive(Default)]
struct CacheState {
    adverts: HashMap<[u8; 32], EndpointAdvert>,
}

/// The freshest verified advert of each node key, optionally kept in a file across
/// restarts (atomic replace: a temporary file, fsync, rename). An advert with a sequence
/// number at or below the one held for its node key never replaces it (ADV_STALE_SEQ),
/// whether it comes from the network or the file of an earlier run.
///
/// A file that cannot be read or parsed is not fatal: the cache starts empty, logs a
/// `tracing` warning, keeps the file as `<name>.broken` and reports the problem through
/// [`AdvertCache::load_problem`]. Entries of a readable file that fail verification (a
/// hand-edited advert) are dropped one by one, likewise reported.
pub struct AdvertCache {
    path: Option<PathBuf>,
    networks: NetworkFilter,
    state: Mutex<CacheState>,
    load_problem: Mutex<Option<Error>>,
}

impl fmt::Debug for AdvertCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdvertCache")
            .field("path", &self.path)
            .field("adverts", &self.len())
            .finish()
    }
}

impl AdvertCache {
    /// A cache that lives in memory only.
    pub fn in_memory(networks: NetworkFilter) -> AdvertCache {
        AdvertCache {
            path: None,
            networks,
            state: Mutex::new(CacheState::default()),
            load_problem: Mutex::new(None),
        }
    }

    /// Opens (or starts) the cache kept in `path`. Blocking file I/O: call it from a
    /// blocking context (`tokio::task::spawn_blocking`) on a runtime.
    pub fn open(path: impl AsRef<Path>, networks: NetworkFilter) -> AdvertCache {
        let path = path.as_ref().to_path_buf();
        let cache = AdvertCache {
            path: Some(path.clone()),
            networks,
            state: Mutex::new(CacheState::default()),
            load_problem: Mutex::new(None),
        };
        match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => cache.problem(
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!("advert cache {}: {e}", path.display()),
                ),
                false,
            ),
            Ok(bytes) => cache.load(&bytes),
        }
        cache
    }

    fn problem(&self, e: Error, move_aside: bool) {
        tracing::warn!(target: "snap2p::discovery", "{e}");
        if move_aside {
            if let Some(p) = &self.path {
                let mut broken = p.clone().into_os_string();
                broken.push(".broken");
                let _ = std::fs::rename(p, broken);
            }
        }
        *self.load_problem.lock().unwrap() = Some(e);
    }

    fn load(&self, bytes: &[u8]) {
        let path = self.path.as_ref().map(|p| p.display().to_string());
        let path = path.unwrap_or_default();
        let bad = |why: String| {
            Error::new(
                ErrorCode::InvalidMessage,
                format!("advert cache {path}: {why}; starting empty"),
            )
        };
        let json: serde_json::Value = match serde_json::from_slice(bytes) {
            Ok(j) => j,
            Err(e) => return self.problem(bad(format!("not JSON ({e})")), true),
        };
        if json["schema"] != CACHE_SCHEMA {
            return self.problem(bad(format!("schema is not {CACHE_SCHEMA:?}")), true);
        }
        let Some(items) = json["adverts"].as_array() else {
            return self.problem(bad("no \"adverts\" array".into()), true);
        };
        let now = crate::unix_now();
        let mut dropped = Vec::new();
        let mut state = self.state.lock().unwrap();
        for item in items {
            let parsed = item
                .as_str()
                .and_then(|h| hex::decode(h).ok())
                .ok_or_else(|| malformed("an entry is not hex"))
                .and_then(|b| EndpointAdvert::decode(&b))
                .and_then(|ad| {
                    // Expired entries stay (their seq still stops replays); everything
                    // else about them must hold.
                    ad.verify(ad.issued_at, self.networks, None, None)?;
                    Ok(ad)
                });
            match parsed {
                Ok(ad) if ad.expires_at + EXPIRED_RETENTION_SECS > now => {
                    let key = ad.node_key();
                    let keep = state.adverts.get(&key).is_none_or(|old| old.seq < ad.seq);
                    if keep {
                        state.adverts.insert(key, ad);
                    }
                }
                Ok(_) => {}
                Err(e) => dropped.push(e.message),
            }
        }
        drop(state);
        if !dropped.is_empty() {
            self.problem(
                Error::new(
                    ErrorCode::InvalidMessage,
                    format!(
                        "advert cache {path}: {} entr{} dropped ({})",
                        dropped.len(),
                        if dropped.len() == 1 { "y" } else { "ies" },
                        dropped.join("; ")
                    ),
                ),
                false,
            );
        }
    }

    /// What went wrong reading the file, if anything (the cache then started without it,
    /// or without the entries named).
    pub fn load_problem(&self) -> Option<Error> {
        self.load_problem.lock().unwrap().clone()
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().adverts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies `bytes` at `now` (as [`EndpointAdvert::verify`], under `expected_key`
    /// when given) and keeps it if its seq is above the one held for its node key; writes
    /// the file (blocking I/O) when it changed.
    pub fn insert(
        &self,
        bytes: &[u8],
        now: i64,
        expected_key: Option<&[u8; 32]>,
    ) -> Result<(EndpointAdvert, Stored), Error> {
        let ad = EndpointAdvert::decode_and_verify(bytes, now, self.networks, expected_key, None)?;
        let stored = self.insert_verified(ad.clone())?;
        Ok((ad, stored))
    }

    /// [`Self::insert`] for an advert already verified.
    pub fn insert_verified(&self, ad: EndpointAdvert) -> Result<Stored, Error> {
        let key = ad.node_key();
        let stored = {
            let mut state = self.state.lock().unwrap();
            let stored = match state.adverts.get(&key) {
                Some(old) if old.seq >= ad.seq => {
                    return Err(reject(
                        AdvertReject::StaleSeq,
                        ErrorCode::InvalidMessage,
                        format!(
                            "seq {} is not above the held seq {} for node key {}",
                            ad.seq,
                            old.seq,
                            hex::encode(key)
                        ),
                    ));
                }
                Some(old) => Stored::Replaced {
                    previous_seq: old.seq,
                },
                None => Stored::New,
            };
            state.adverts.insert(key, ad);
            if state.adverts.len() > MAX_CACHED_ADVERTS {
                let oldest = state
                    .adverts
                    .iter()
                    .min_by_key(|(_, a)| a.expires_at)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    state.adverts.remove(&k);
                }
            }
            stored
        };
        self.save()?;
        Ok(stored)
    }

    /// The advert held for a node key (expired or not).
    pub fn get(&self, node_key: &[u8; 32]) -> Option<EndpointAdvert> {
        self.state.lock().unwrap().adverts.get(node_key).cloned()
    }

    /// The live adverts attesting `principal`, newest first.
    pub fn for_principal(&self, principal: &Principal, now: i64) -> Vec<EndpointAdvert> {
        let state = self.state.lock().unwrap();
        let mut out: Vec<EndpointAdvert> = state
            .adverts
            .values()
            .filter(|a| a.principal() == principal && a.is_live(now))
            .cloned()
            .collect();
        out.sort_by_key(|a| std::cmp::Reverse(a.issued_at));
        out
    }

    /// The node keys known for `principal` (expired adverts too: a DHT lookup under them
    /// may find a fresher one).
    pub fn node_keys(&self, principal: &Principal) -> Vec<[u8; 32]> {
        let state = self.state.lock().unwrap();
        let mut ads: Vec<&EndpointAdvert> = state
            .adverts
            .values()
            .filter(|a| a.principal() == principal)
            .collect();
        ads.sort_by_key(|a| std::cmp::Reverse(a.issued_at));
        ads.into_iter().map(|a| a.node_key()).collect()
    }

    /// The file's contents: every advert as hex, sorted by node key (stable output).
    fn snapshot(&self) -> Vec<u8> {
        let state = self.state.lock().unwrap();
        let mut ads: Vec<&EndpointAdvert> = state.adverts.values().collect();
        ads.sort_by_key(|a| a.node_key());
        let items: Vec<String> = ads.iter().map(|a| hex::encode(a.encode())).collect();
        let json = serde_json::json!({ "schema": CACHE_SCHEMA, "adverts": items });
        serde_json::to_vec_pretty(&json).unwrap_or_default()
    }

    /// Writes the file: a temporary file beside it, fsync, rename over it, fsync of the
    /// directory. A crash leaves the old file or the new one, never half of one.
    fn save(&self) -> Result<(), Error> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |e: std::io::Error| {
            Error::new(
                ErrorCode::Internal,
                format!("advert cache {}: {e}", path.display()),
            )
        };
        let bytes = self.snapshot();
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = dir.join(tmp_name);
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{LocalWallet, Network};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Now: the cache forgets adverts expired more than 7 days ago when it reopens.
    fn now() -> i64 {
        crate::unix_now()
    }
    /// The 24-word mnemonic of tests/vectors/identity.json.
    const MNEMONIC: &str = "seminar surround scheme bottom pizza champion fatal side outer render harsh awake wink lyrics panel flat journey grit target scrap history dove emerge custom";

    fn setup() -> (NodeKey, Vec<u8>, Principal) {
        let w = LocalWallet::from_mnemonic(MNEMONIC, 0, Network::Mainnet).unwrap();
        let nk = NodeKey::from_seed([9u8; 32]);
        let att = block_on(NodeKeyAttestation::issue_with_nonce(
            &w,
            nk.public(),
            now(),
            86_400,
            vec![1u8; 32],
        ))
        .unwrap();
        (nk, att.encode(), w.principal())
    }

    fn locs() -> Vec<Locator> {
        vec![
            "127.0.0.1:9000".parse().unwrap(),
            "wss://node.example.org:443/snap2p".parse().unwrap(),
        ]
    }

    #[test]
    fn round_trip_and_checks() {
        let (nk, att, p) = setup();
        let ad = EndpointAdvert::issue(&nk, &att, &locs(), 5, now(), 3600).unwrap();
        let bytes = ad.encode();
        assert!(bytes.len() <= MAX_ADVERT_LEN);
        let back = EndpointAdvert::decode_and_verify(
            &bytes,
            now() + 10,
            NetworkFilter::ANY,
            None,
            Some(&p),
        )
        .unwrap();
        assert_eq!(back, ad);
        // tampered: one byte of a locator
        let mut t = bytes.clone();
        let i = t.windows(4).position(|w| w == b"9000").unwrap();
        t[i] = b'8';
        let e = EndpointAdvert::decode_and_verify(&t, now(), NetworkFilter::ANY, None, None)
            .unwrap_err();
        assert_eq!(AdvertReject::of(&e), Some(AdvertReject::Tampered), "{e}");
        assert_eq!(e.code, ErrorCode::AuthInvalid);
        // expired
        let e = ad
            .verify(now() + 3600 + 301, NetworkFilter::ANY, None, None)
            .unwrap_err();
        assert_eq!(AdvertReject::of(&e), Some(AdvertReject::Expired));
        // wrong key
        let e = ad
            .verify(now(), NetworkFilter::ANY, Some(&[1u8; 32]), None)
            .unwrap_err();
        assert_eq!(AdvertReject::of(&e), Some(AdvertReject::WrongKey));
        // oversize
        let big = vec![0u8; MAX_ADVERT_LEN + 1];
        let e = EndpointAdvert::decode(&big).unwrap_err();
        assert_eq!(e.code, ErrorCode::MessageTooLarge);
        // unspecified addresses are left out
        let ad = EndpointAdvert::issue(&nk, &att, &["0.0.0.0:9000".parse().unwrap()], 1, now(), 60)
            .unwrap();
        assert!(ad.locators.is_empty());
        // another node key's attestation is refused at issue
        let other = NodeKey::from_seed([3u8; 32]);
        assert!(EndpointAdvert::issue(&other, &att, &locs(), 1, now(), 60).is_err());
    }

    #[test]
    fn cache_keeps_the_freshest_across_reopen_and_survives_a_broken_file() {
        let (nk, att, p) = setup();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("adverts.json");
        let a5 = EndpointAdvert::issue(&nk, &att, &locs(), 5, now(), 3600).unwrap();
        let a7 = EndpointAdvert::issue(&nk, &att, &locs()[..1], 7, now() + 1, 3600).unwrap();
        let c = AdvertCache::open(&path, NetworkFilter::ANY);
        assert!(c.load_problem().is_none());
        assert_eq!(c.insert(&a5.encode(), now(), None).unwrap().1, Stored::New);
        assert_eq!(
            c.insert(&a7.encode(), now() + 1, None).unwrap().1,
            Stored::Replaced { previous_seq: 5 }
        );
        let e = c.insert(&a5.encode(), now() + 2, None).unwrap_err();
        assert_eq!(AdvertReject::of(&e), Some(AdvertReject::StaleSeq));
        let e = c.insert(&a7.encode(), now() + 2, None).unwrap_err();
        assert_eq!(
            AdvertReject::of(&e),
            Some(AdvertReject::StaleSeq),
            "equal seq"
        );
        drop(c);
        let c = AdvertCache::open(&path, NetworkFilter::ANY);
        assert!(c.load_problem().is_none());
        assert_eq!(c.get(&nk.public()).unwrap().seq, 7);
        let e = c.insert(&a5.encode(), now() + 2, None).unwrap_err();
        assert_eq!(AdvertReject::of(&e), Some(AdvertReject::StaleSeq));
        assert_eq!(c.node_keys(&p), vec![nk.public()]);
        // a broken file: empty cache, a reported problem, the file kept aside
        std::fs::write(&path, b"{not json").unwrap();
        let c = AdvertCache::open(&path, NetworkFilter::ANY);
        assert!(c.is_empty());
        assert_eq!(c.load_problem().unwrap().code, ErrorCode::InvalidMessage);
        assert!(dir.path().join("adverts.json.broken").exists());
    }
}
