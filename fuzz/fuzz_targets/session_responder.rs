//! The listener's session state machine fed arbitrary bytes from the first byte on, in
//! arbitrary read sizes, with the clock moving. Byte 0 picks the mode: bit 0 stealth
//! (invite-only listener), bit 1 (stealth only) a valid KNOCK with the fixture's invite
//! first, bits 2.. the read size.
//!
//! Invariants: no panic; never authenticated (nobody but the fixture can sign); at most a
//! few hundred bytes answered before authentication; a stealth listener answers nothing but
//! plaintext AUTH_FAIL before a valid KNOCK (no Noise work for scanners, spec §5.2); the
//! handshake timeout always ends the session; after the first error the session is silent.
//! Issue 26: a first frame that is neither a valid KNOCK nor a Noise message 1 (32 bytes, or
//! 33 ending in hs2's offer 0x02, spec §5.8) is answered with nothing, on stealth and public
//! listeners alike; no plaintext AUTH_FAIL is
//! 96 bytes long (the size of Noise message 2, by which a dialer tells them apart).
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use snap2p::unstable::wire::frame;
use snap2p::unstable::wire::message::{Message, PROTOCOL_VERSION};
use snap2p::unstable::Session;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let fx = snap2p_fuzz::fixture();
    let stealth = mode & 1 == 1;
    let knock_first = stealth && mode & 2 == 2;
    let step = ((mode >> 2) as usize).max(1);
    let mut now = fx.base;
    let mut s = Session::new(snap2p_fuzz::config(false, stealth), now).unwrap();
    let mut wire = Vec::new();
    if knock_first {
        let knock = Message::Knock {
            version: PROTOCOL_VERSION,
            nonce: &[7; 16],
            token: &fx.invite,
        }
        .to_vec();
        frame::write_frame(&mut wire, &knock);
    }
    wire.extend_from_slice(input);
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    for (i, chunk) in wire.chunks(step).enumerate() {
        buf.extend_from_slice(chunk);
        s.handle_input(&mut buf, now);
        s.poll_transmit(now, &mut out, 1 << 20);
        if i % 3 == 2 {
            now += Duration::from_millis(700);
            s.handle_timeout(now);
            s.poll_transmit(now, &mut out, 1 << 20);
        }
        assert!(!s.is_established(), "a forged peer authenticated");
        if s.error().is_some() {
            break;
        }
    }
    assert!(
        out.len() <= 1024,
        "answered {} bytes before auth",
        out.len()
    );
    if stealth && !knock_first {
        // Only plaintext AUTH_FAIL frames: no Noise message 2, no KNOCK_RESPONSE (the
        // fuzzer does not know the invite).
        let mut b = BytesMut::from(&out[..]);
        while let Some(f) = frame::next_frame(&mut b, 1 << 16).unwrap() {
            match Message::decode(&f) {
                Ok(Message::AuthFail { .. }) => {}
                other => panic!("stealth listener answered {other:?} before a valid KNOCK"),
            }
        }
        assert!(b.is_empty());
    }
    // Every plaintext frame answered before Noise: an AUTH_FAIL is never 96 bytes.
    let mut b = BytesMut::from(&out[..]);
    while let Ok(Some(f)) = frame::next_frame(&mut b, 1 << 16) {
        if let Ok(Message::AuthFail { .. }) = Message::decode(&f) {
            assert_ne!(
                f.len(),
                96,
                "a plaintext AUTH_FAIL the size of Noise message 2"
            );
        }
    }
    // A complete first frame (arriving well before the first-frame deadline, 3 s) that is
    // neither a KNOCK nor a Noise message 1: nothing answered, whatever the mode.
    let mut first = BytesMut::from(&wire[..]);
    if let Ok(Some(f)) = frame::next_frame(&mut first, frame::MAX_PREAUTH_FRAME) {
        let end = wire.len() - first.len();
        let in_time = (end - 1) / step <= 11;
        let knock = matches!(Message::decode(&f), Ok(Message::Knock { .. }));
        let noise1 = f.len() == 32 || (f.len() == 33 && f[32] == 0x02);
        if in_time && !knock && !noise1 {
            assert!(
                out.is_empty(),
                "answered a first frame that is not snap2p: {out:02x?}"
            );
        }
    }
    // The handshake timeout always ends an unauthenticated session.
    now = fx.base
        + Duration::from_secs(11)
        + Duration::from_millis(700) * (wire.len() as u32 / 3 + 1);
    s.handle_timeout(now);
    assert!(s.error().is_some(), "handshake never timed out");
    let mut after = Vec::new();
    let _ = s.poll_transmit(now, &mut after, 1 << 20);
    let mut more = BytesMut::from(&[0u8, 1, 2, 3][..]);
    s.handle_input(&mut more, now);
    let mut after2 = Vec::new();
    s.poll_transmit(now, &mut after2, 1 << 20);
    assert!(after2.is_empty(), "closed session still talks");
});
