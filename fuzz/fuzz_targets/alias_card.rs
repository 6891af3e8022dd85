//! AliasCard: decode then verify arbitrary bytes. Invariants: no panic; decode is
//! injective; alias and display name of a decoded card respect their limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use snap2p::identity::{AliasCard, NetworkFilter, MAX_ALIAS_BYTES, MAX_DISPLAY_NAME_BYTES};

fuzz_target!(|data: &[u8]| {
    let now = snap2p_fuzz::T0_UNIX;
    if let Ok(c) = AliasCard::decode(data) {
        assert_eq!(c.encode(), data, "decode is not injective");
        if c.verify(now, NetworkFilter::ANY).is_ok() {
            assert!(c.alias.len() <= MAX_ALIAS_BYTES);
            assert!(c.display_name.len() <= MAX_DISPLAY_NAME_BYTES);
        }
    }
    let _ = AliasCard::decode_and_verify(data, now, NetworkFilter::ANY);
    let _ = AliasCard::decode_and_verify(data, 0, NetworkFilter::ANY);
    let _ = AliasCard::decode_and_verify(data, i64::MAX, NetworkFilter::ANY);
});
