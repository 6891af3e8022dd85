//! Control messages: Message::decode and decode_batch on arbitrary bytes. Invariants: no
//! panic; a decoded message re-encodes to bytes that decode to the same message; a batch
//! stops at the first error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use snap2p::unstable::wire::message::{decode_batch, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        let re = m.to_vec();
        let again = Message::decode(&re).expect("re-encoded message must decode");
        assert_eq!(again, m);
    }
    let mut seen = Vec::new();
    let r = decode_batch(data, |m| {
        seen.push(m.to_vec());
        Ok(())
    });
    if r.is_ok() {
        // The batch is exactly the concatenation of its messages' canonical encodings, or
        // at least each one round-trips.
        for enc in &seen {
            let m = Message::decode(enc).expect("round trip");
            assert_eq!(&m.to_vec(), enc);
        }
    }
});
