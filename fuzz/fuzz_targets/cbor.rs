//! The deterministic CBOR subset: decode arbitrary bytes. Invariants: no panic, depth
//! bounded; whatever decodes re-encodes byte for byte (the decoder accepts only the
//! canonical form, so decode is injective).
#![no_main]
use libfuzzer_sys::fuzz_target;
use snap2p::wire::cbor;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = cbor::decode(data) {
        let re = cbor::to_vec(&v);
        assert_eq!(re, data, "accepted a non-canonical encoding: {v:?}");
        assert_eq!(cbor::decode(&re).unwrap(), v);
    }
    if let Ok((v, used)) = cbor::decode_prefix(data) {
        assert!(used <= data.len() && used > 0);
        assert_eq!(cbor::to_vec(&v), &data[..used]);
    }
});
