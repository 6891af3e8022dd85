//! RELAY-1 messages (PROTOCOL.md §32.2) and the SPLICE first frame (§32.3): decode on
//! arbitrary bytes. Invariants: no panic; a decoded message re-encodes to bytes that decode
//! to the same message; a payload taken for a SPLICE is exactly the canonical frame body
//! of its token (one encoding, so a relay's listener classifies first frames one way).
#![no_main]
use libfuzzer_sys::fuzz_target;
use snap2p::relay::codec::{decode_splice, encode_splice, RelayMessage};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = RelayMessage::decode(data) {
        let again =
            RelayMessage::decode(&m.encode()).expect("re-encoded RELAY-1 message must decode");
        assert_eq!(again, m);
    }
    if let Some(token) = decode_splice(data) {
        assert_eq!(&encode_splice(&token)[1..], data, "one encoding of SPLICE");
    }
});
