//! NodeKeyAttestation: decode then verify arbitrary bytes. Invariants: no panic; the
//! canonical re-encoding of a decoded attestation decodes to the same attestation and
//! verifies the same way (PROTOCOL.md: unknown keys are ignored and not signed, key order
//! need not be checked, so decode is not injective); any one-byte change to a valid
//! attestation fails verification (every byte is covered by the signature or the framing).
#![no_main]
use libfuzzer_sys::fuzz_target;
use snap2p::identity::{NetworkFilter, NodeKeyAttestation};

fuzz_target!(|data: &[u8]| {
    let fx = snap2p_fuzz::fixture();
    let now = snap2p_fuzz::T0_UNIX;
    if let Ok(a) = NodeKeyAttestation::decode(data) {
        let re = a.encode();
        let a2 = NodeKeyAttestation::decode(&re).expect("a canonical re-encoding must decode");
        assert_eq!(a2.encode(), re, "re-encoding is not stable");
        assert_eq!(
            a.verify(now, NetworkFilter::ANY).is_ok(),
            a2.verify(now, NetworkFilter::ANY).is_ok(),
            "verdict changed by re-encoding"
        );
    }
    let _ = NodeKeyAttestation::decode_and_verify(data, now, NetworkFilter::ANY);
    // Mutations of a valid attestation: flip the byte the input points at.
    if let Some((&pos, rest)) = data.split_first() {
        let mut v = fx.dialer.att.to_vec();
        let i = (pos as usize * 7 + rest.len()) % v.len();
        v[i] ^= rest.first().copied().unwrap_or(1).max(1);
        assert!(
            NodeKeyAttestation::decode_and_verify(&v, now, NetworkFilter::ANY).is_err(),
            "a modified attestation verified (byte {i})"
        );
    }
});
