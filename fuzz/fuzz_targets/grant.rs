//! PermissionGrant (PROTOCOL.md §33): decode then verify arbitrary bytes, and the node's
//! decision on them. Invariants: no panic; the canonical re-encoding of a decoded grant
//! decodes to the same grant and verifies the same way; a verified grant has 1..=32 valid
//! labels and at most one level of delegation; the node-side check (owners, holder,
//! revocation) never accepts what verification refuses; label patterns built from the
//! input never panic and `covers` agrees with `matches`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use snap2p::identity::{LabelPattern, NetworkFilter, PermissionGrant, MAX_GRANT_LABELS};
use snap2p::policy::Permissions;

fuzz_target!(|data: &[u8]| {
    let now = snap2p_fuzz::T0_UNIX;
    if let Ok(g) = PermissionGrant::decode(data) {
        let re = g.encode();
        let g2 = PermissionGrant::decode(&re).expect("a canonical re-encoding must decode");
        assert_eq!(g2.encode(), re, "re-encoding is not stable");
        let verdict = g.verify(now, NetworkFilter::ANY);
        assert_eq!(
            g2.verify(now, NetworkFilter::ANY).is_ok(),
            verdict.is_ok(),
            "verdict changed"
        );
        if let Ok(parent) = &verdict {
            assert!((1..=MAX_GRANT_LABELS).contains(&g.labels.len()));
            assert!(g.patterns().is_ok());
            if let Some(p) = parent {
                assert!(p.parent.is_none(), "two levels of delegation verified");
                assert_eq!(p.holder, g.issuer);
            }
        }
        // The node's decision: its owner is the root issuer, the presenter the holder.
        let perms = Permissions::new();
        let root = match &verdict {
            Ok(Some(p)) => p.issuer.clone(),
            _ => g.issuer.clone(),
        };
        perms.add_owner(root);
        let decided = perms.verify_grant(data, &g.holder, now, NetworkFilter::ANY);
        if verdict.is_err() {
            assert!(
                decided.is_err(),
                "the node accepted a grant that does not verify"
            );
        }
        if let Ok(active) = decided {
            assert!(active.expires_at <= g.expires_at);
            assert!(perms.revoke(&active.ids[0]).is_ok());
            assert!(perms
                .verify_grant(data, &g.holder, now, NetworkFilter::ANY)
                .is_err());
        }
    }
    // Label patterns from the input: no panic, and covering implies matching.
    if let Ok(text) = std::str::from_utf8(data) {
        let mut parts = text.splitn(3, '\n');
        let (a, b, label) = (parts.next(), parts.next(), parts.next());
        if let (Some(Ok(p)), Some(Ok(q))) = (a.map(LabelPattern::parse), b.map(LabelPattern::parse))
        {
            if p.covers(&q) && q.matches(label) {
                assert!(p.matches(label), "{p} covers {q} but not {label:?}");
            }
        }
    }
});
