//! AliasCard: decode then verify arbitrary bytes. Invariants: no panic; the canonical
//! re-encoding of a decoded card decodes to the same card and verifies the same way
//! (PROTOCOL.md: receivers ignore unknown keys and need not check key order, so decode is
//! not injective and must not need to be); alias and display name of a verified card
//! respect their limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use snap2p::identity::{AliasCard, NetworkFilter, MAX_ALIAS_BYTES, MAX_DISPLAY_NAME_BYTES};

fuzz_target!(|data: &[u8]| {
    let now = snap2p_fuzz::T0_UNIX;
    if let Ok(c) = AliasCard::decode(data) {
        let re = c.encode();
        let c2 = AliasCard::decode(&re).expect("a canonical re-encoding must decode");
        assert_eq!(c2.encode(), re, "re-encoding is not stable");
        let ok = c.verify(now, NetworkFilter::ANY).is_ok();
        assert_eq!(
            c2.verify(now, NetworkFilter::ANY).is_ok(),
            ok,
            "verdict changed"
        );
        if ok {
            assert!(c.alias.len() <= MAX_ALIAS_BYTES);
            assert!(c.display_name.len() <= MAX_DISPLAY_NAME_BYTES);
        }
    }
    let _ = AliasCard::decode_and_verify(data, now, NetworkFilter::ANY);
    let _ = AliasCard::decode_and_verify(data, 0, NetworkFilter::ANY);
    let _ = AliasCard::decode_and_verify(data, i64::MAX, NetworkFilter::ANY);
});
