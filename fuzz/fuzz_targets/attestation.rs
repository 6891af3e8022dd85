//! NodeKeyAttestation: decode then verify arbitrary bytes. Invariants: no panic; a decoded
//! attestation re-encodes to the same bytes; any one-byte change to a valid attestation
//! fails verification (every byte is covered by the signature or the framing).
#![no_main]
use libfuzzer_sys::fuzz_target;
use snap2p::identity::{NetworkFilter, NodeKeyAttestation};

fuzz_target!(|data: &[u8]| {
    let fx = snap2p_fuzz::fixture();
    let now = snap2p_fuzz::T0_UNIX;
    if let Ok(a) = NodeKeyAttestation::decode(data) {
        assert_eq!(a.encode(), data, "decode is not injective");
        let _ = a.verify(now, NetworkFilter::ANY);
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

