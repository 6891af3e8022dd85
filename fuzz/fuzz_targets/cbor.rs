//! The deterministic CBOR subset: decode arbitrary bytes. Invariants: no panic, depth
//! bounded; whatever decodes re-encodes to a canonical form that decodes and re-encodes to
//! itself byte for byte. (PROTOCOL.md: receivers need not check canonical key order,
//! so the generic decoder may accept maps out of order or with a key twice; signed
//! structures reject duplicates themselves and are verified over re-encoded bytes.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use snap2p::unstable::wire::cbor;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = cbor::decode(data) {
        let re = cbor::to_vec(&v);
        let v2 = cbor::decode(&re).expect("a canonical re-encoding must decode");
        // (Not `v2 == v`: a map's entries keep the order they were read in.)
        assert_eq!(cbor::to_vec(&v2), re, "re-encoding is not stable");
    }
    if let Ok((v, used)) = cbor::decode_prefix(data) {
        assert!(used <= data.len() && used > 0);
        let re = cbor::to_vec(&v);
        assert_eq!(cbor::to_vec(&cbor::decode(&re).unwrap()), re);
    }
});
