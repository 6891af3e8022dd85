//! Locators whose listener answered an hs2 offer the way a v1 listener does, by closing
//! without a word (docs/PROTOCOL.md §5.8): dialed with v1 for a while, so each later dial
//! does not pay the failed offer's round trip again. Kept by `Peer` and by the browser
//! entry alike (sans-IO: the caller passes `now`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use web_time::Instant;

/// How long a locator stays "v1 only". A listener upgraded meanwhile is offered hs2 again
/// after this; one that was only shedding load (which also closes without a word, §9.1)
/// loses hs2's round trip for this long and nothing else: v1 reaches every listener.
pub(crate) const V1_ONLY_TTL: Duration = Duration::from_secs(600);

/// Locators remembered at most: a peer dialing many v1 listeners forgets the one whose
/// entry ends first, so the map never grows past this (each entry is a locator string).
pub(crate) const V1_ONLY_MAX: usize = 1024;

#[derive(Default)]
pub struct V1Only {
    until: Mutex<HashMap<String, Instant>>,
}

impl V1Only {
    /// Whether `locator` is to be dialed with v1 at `now`.
    pub fn contains(&self, locator: &str, now: Instant) -> bool {
        let mut until = self.until.lock().unwrap();
        match until.get(locator) {
            Some(t) if *t > now => true,
            Some(_) => {
                until.remove(locator);
                false
            }
            None => false,
        }
    }

    /// Remembers `locator` as v1 only, from `now` for `V1_ONLY_TTL` (10 minutes).
    pub fn insert(&self, locator: &str, now: Instant) {
        let mut until = self.until.lock().unwrap();
        if until.len() >= V1_ONLY_MAX && !until.contains_key(locator) {
            until.retain(|_, t| *t > now);
            if until.len() >= V1_ONLY_MAX {
                let first = until
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(k, _)| k.clone());
                if let Some(k) = first {
                    until.remove(&k);
                }
            }
        }
        until.insert(locator.to_string(), now + V1_ONLY_TTL);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.until.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_end_after_the_ttl() {
        let m = V1Only::default();
        let t0 = Instant::now();
        m.insert("127.0.0.1:1", t0);
        assert!(m.contains("127.0.0.1:1", t0 + V1_ONLY_TTL - Duration::from_secs(1)));
        assert!(!m.contains("127.0.0.1:2", t0));
        assert!(!m.contains("127.0.0.1:1", t0 + V1_ONLY_TTL));
        assert_eq!(m.len(), 0, "an ended entry is dropped when looked up");
    }

    #[test]
    fn the_map_is_bounded() {
        let m = V1Only::default();
        let t0 = Instant::now();
        for i in 0..V1_ONLY_MAX + 10 {
            m.insert(
                &format!("10.0.0.1:{i}"),
                t0 + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(m.len(), V1_ONLY_MAX);
        // The ten whose entries ended first made room; the latest are all there.
        assert!(!m.contains("10.0.0.1:0", t0));
        assert!(!m.contains("10.0.0.1:9", t0));
        assert!(m.contains("10.0.0.1:10", t0));
        assert!(m.contains(&format!("10.0.0.1:{}", V1_ONLY_MAX + 9), t0));
    }
}
