//! PX-1 messages: Px1Message::decode on arbitrary bytes, and the framed reader fed the same
//! bytes in small pieces. Invariants: no panic; a decoded message re-encodes to bytes that
//! decode to the same message; the reader never holds more than one frame (a hostile
//! length prefix is refused before anything is buffered for it).
#![no_main]
use libfuzzer_sys::fuzz_target;
use snap2p::px1::codec::{FrameReader, Px1Message, MAX_MESSAGE_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Px1Message::decode(data) {
        let again = Px1Message::decode(&m.encode()).expect("re-encoded PX-1 message must decode");
        assert_eq!(again, m);
    }
    let mut reader = FrameReader::new();
    for piece in data.chunks(7) {
        reader.push(piece);
        loop {
            match reader.next_message() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(reader.buffered() <= MAX_MESSAGE_LEN + 4 + 7);
    }
});
