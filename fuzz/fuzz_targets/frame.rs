//! Varint framing: arbitrary bytes split into arbitrary reads, under the pre-auth and the
//! transport limit. Invariants: no panic; a frame never exceeds the limit; the receive
//! buffer never grows past limit + prefix because of a length prefix; frames re-encode to
//! the exact bytes they came from.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use snap2p::unstable::wire::frame::{
    next_frame, read_varint, write_frame, Varint, MAX_PREAUTH_FRAME, MAX_TRANSPORT_FRAME,
    MAX_VARINT_LEN,
};

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let limit = if data[0] & 1 == 0 {
        MAX_PREAUTH_FRAME
    } else {
        MAX_TRANSPORT_FRAME
    };
    let step = (data[0] as usize >> 1).max(1);
    let input = &data[1..];
    if let Ok(Varint::Complete(v, used)) = read_varint(input) {
        assert!(used <= MAX_VARINT_LEN);
        assert!(v < 1 << (7 * used));
    }
    let mut buf = BytesMut::new();
    let mut consumed = 0usize;
    let mut rebuilt = Vec::new();
    let mut failed = false;
    for chunk in input.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match next_frame(&mut buf, limit) {
                Ok(Some(f)) => {
                    assert!(f.len() <= limit);
                    write_frame(&mut rebuilt, &f);
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        // What a hostile prefix can make us hold: one frame plus its prefix, plus the
        // bytes of this read (a reader never hands us more than it has).
        assert!(
            buf.capacity() <= limit + MAX_VARINT_LEN + step.max(64) + 4096,
            "capacity {} for limit {limit}",
            buf.capacity()
        );
        if failed {
            break;
        }
        consumed += chunk.len();
    }
    if !failed {
        // Everything decoded so far re-encodes to the same bytes.
        let pending = buf.len();
        assert_eq!(&rebuilt[..], &input[..consumed - pending]);
    }
});
