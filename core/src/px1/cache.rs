//! The PX-1 hint cache (spec §10.2): principal → {locators, expires_at}.
//!
//! Bounded three ways: principals ([`MAX_PRINCIPALS`]), locators per principal
//! ([`MAX_LOCATORS_PER_PRINCIPAL`]) and lifetime (TTLs clamped to
//! [`MIN_TTL_SECS`]..=[`MAX_TTL_SECS`]). Each locator keeps its own expiry so a fresh push
//! does not extend a stale hint. Locators confirmed by a handshake (a dial that
//! authenticated as the principal) are marked verified: they are tried first and are never
//! displaced by unverified pushes, so a liar cannot flush a known-good hint out.

use std::collections::HashMap;

use crate::identity::Principal;
use crate::locator::Locator;

/// Default lifetime of a hint (spec §10.2 guidance: 24 hours).
pub const DEFAULT_TTL_SECS: i64 = 24 * 3600;
/// Shortest accepted TTL: shorter pushes are stretched to this.
pub const MIN_TTL_SECS: i64 = 60;
/// Longest accepted TTL: longer pushes are cut to this.
pub const MAX_TTL_SECS: i64 = 7 * 86_400;
/// Principals the cache holds at most.
pub const MAX_PRINCIPALS: usize = 4096;
/// Locators kept per principal.
pub const MAX_LOCATORS_PER_PRINCIPAL: usize = 8;

/// Clamps a TTL received on the wire.
pub fn clamp_ttl(ttl: u64) -> i64 {
    (ttl.min(MAX_TTL_SECS as u64) as i64).max(MIN_TTL_SECS)
}

#[derive(Clone, Debug)]
struct Hint {
    locator: Locator,
    expires_at: i64,
    verified: bool,
}

/// One principal's cached hints, as returned by [`HintCache::snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedHints {
    pub principal: Principal,
    /// Verified first, then newest first.
    pub locators: Vec<Locator>,
    /// When the last of the locators expires (unix seconds).
    pub expires_at: i64,
}

#[derive(Debug)]
pub struct HintCache {
    entries: HashMap<Principal, Vec<Hint>>,
    max_principals: usize,
}

impl Default for HintCache {
    fn default() -> Self {
        HintCache::with_capacity(MAX_PRINCIPALS)
    }
}

impl HintCache {
    pub fn with_capacity(max_principals: usize) -> Self {
        HintCache {
            entries: HashMap::new(),
            max_principals: max_principals.max(1),
        }
    }

    /// Adds hints for `principal` valid for `ttl_secs` (already clamped by the caller when
    /// it came from the wire). `verified` marks locators a handshake has confirmed.
    pub fn insert(
        &mut self,
        principal: &Principal,
        locators: &[Locator],
        ttl_secs: i64,
        verified: bool,
        now: i64,
    ) {
        if locators.is_empty() {
            return;
        }
        if !self.entries.contains_key(principal) && self.entries.len() >= self.max_principals {
            self.prune(now);
            if self.entries.len() >= self.max_principals {
                self.evict_one();
            }
        }
        let expires_at = now.saturating_add(ttl_secs);
        let hints = self.entries.entry(principal.clone()).or_default();
        hints.retain(|h| h.expires_at > now);
        // Insert in reverse so the first locator of the message ends up first.
        for loc in locators.iter().rev() {
            let (old_expiry, old_verified) = match hints.iter().position(|h| h.locator == *loc) {
                Some(i) => {
                    let h = hints.remove(i);
                    (h.expires_at, h.verified)
                }
                None => (i64::MIN, false),
            };
            hints.insert(
                0,
                Hint {
                    locator: loc.clone(),
                    expires_at: expires_at.max(old_expiry),
                    verified: verified || old_verified,
                },
            );
        }
        // Verified hints first (stable: newest first within each group), then cut.
        hints.sort_by_key(|h| !h.verified);
        hints.truncate(MAX_LOCATORS_PER_PRINCIPAL);
    }

    /// Current locators for `principal`: verified first, then newest first.
    pub fn get(&self, principal: &Principal, now: i64) -> Vec<Locator> {
        self.entries
            .get(principal)
            .map(|hints| {
                hints
                    .iter()
                    .filter(|h| h.expires_at > now)
                    .map(|h| h.locator.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets one locator of `principal` (it authenticated as someone else).
    pub fn evict_locator(&mut self, principal: &Principal, locator: &Locator) {
        if let Some(hints) = self.entries.get_mut(principal) {
            hints.retain(|h| h.locator != *locator);
            if hints.is_empty() {
                self.entries.remove(principal);
            }
        }
    }

    pub fn remove(&mut self, principal: &Principal) {
        self.entries.remove(principal);
    }

    /// Drops expired hints and principals left without any.
    pub fn prune(&mut self, now: i64) {
        self.entries.retain(|_, hints| {
            hints.retain(|h| h.expires_at > now);
            !hints.is_empty()
        });
    }

    /// Makes room by dropping the principal whose hints expire first.
    fn evict_one(&mut self) {
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, hints)| hints.iter().map(|h| h.expires_at).max())
            .map(|(p, _)| p.clone());
        if let Some(p) = victim {
            self.entries.remove(&p);
        }
    }

    /// Every principal with current hints, the ones valid longest first.
    pub fn snapshot(&self, now: i64) -> Vec<CachedHints> {
        let mut out: Vec<CachedHints> = self
            .entries
            .iter()
            .filter_map(|(p, hints)| {
                let live: Vec<&Hint> = hints.iter().filter(|h| h.expires_at > now).collect();
                let expires_at = live.iter().map(|h| h.expires_at).max()?;
                Some(CachedHints {
                    principal: p.clone(),
                    locators: live.iter().map(|h| h.locator.clone()).collect(),
                    expires_at,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.expires_at
                .cmp(&a.expires_at)
                .then_with(|| a.principal.to_string().cmp(&b.principal.to_string()))
        });
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{LocalWallet, Network};

    fn principal() -> Principal {
        LocalWallet::generate(Network::Mainnet).principal()
    }

    fn loc(s: &str) -> Locator {
        s.parse().unwrap()
    }

    #[test]
    fn ttl_is_clamped() {
        assert_eq!(clamp_ttl(0), MIN_TTL_SECS);
        assert_eq!(clamp_ttl(3600), 3600);
        assert_eq!(clamp_ttl(u64::MAX), MAX_TTL_SECS);
    }

    #[test]
    fn expiry_bounds_and_verified_priority() {
        let mut c = HintCache::default();
        let p = principal();
        c.insert(&p, &[loc("10.0.0.1:1")], 100, true, 1000);
        for i in 0..20 {
            c.insert(&p, &[loc(&format!("10.0.1.{i}:1"))], 500, false, 1000);
        }
        let got = c.get(&p, 1000);
        assert_eq!(got.len(), MAX_LOCATORS_PER_PRINCIPAL);
        assert_eq!(
            got[0],
            loc("10.0.0.1:1"),
            "verified hint survives the flood"
        );
        assert_eq!(got[1], loc("10.0.1.19:1"), "then newest first");
        assert!(!c.get(&p, 1101).contains(&loc("10.0.0.1:1")), "expired");
        assert!(c.get(&p, 1501).is_empty());
        c.prune(1501);
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_in_principals() {
        let mut c = HintCache::with_capacity(4);
        let ps: Vec<Principal> = (0..6).map(|_| principal()).collect();
        for (i, p) in ps.iter().enumerate() {
            c.insert(p, &[loc("10.0.0.1:1")], 100 + i as i64, false, 0);
        }
        assert_eq!(c.len(), 4);
        // The ones expiring first were evicted.
        assert!(c.get(&ps[0], 0).is_empty());
        assert!(!c.get(&ps[5], 0).is_empty());
        c.evict_locator(&ps[5], &loc("10.0.0.1:1"));
        assert!(c.get(&ps[5], 0).is_empty());
    }
}
