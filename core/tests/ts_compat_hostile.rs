//! Hostile input to the TypeScript profile (docs/PROTOCOL.md §12.5): its 16 MiB frame limit
//! must not open a memory hole. A snap2p listener in that profile is taken through the
//! recorded TypeScript session (`vectors/ts-session.json`) to the point each attack needs,
//! and the attacker's frames are sealed with the recorded dialer key (k1) at the nonces the
//! dialer would use next: oversized and huge announced lengths before and after AUTH_OK,
//! truncated frames, a flood of data without flow control.

use std::time::Instant;

use bytes::BytesMut;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use snap2p::unstable::wire::frame::write_varint;
use snap2p::unstable::wire::message::Message;
use snap2p::unstable::{Session, SessionLimits};
use snap2p::{ErrorCode, WireProfile};

mod ts_vector;
use ts_vector::*;

/// A frame the recorded dialer would send: `plaintext` sealed under k1 at `nonce`, any size.
fn sealed(k1: &[u8; 32], nonce: u64, plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(k1.into());
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&nonce.to_le_bytes());
    let mut body = plaintext.to_vec();
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&n), &[], &mut body)
        .unwrap();
    body.extend_from_slice(&tag);
    let mut out = Vec::new();
    write_varint(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

fn k1() -> [u8; 32] {
    h32(&vector()["handshake"]["k1_hex"])
}

/// The snap2p listener (TypeScript profile) after the recorded frames up to `upto`
/// (exclusive) were fed to it; its output discarded.
fn listener(limits: Option<SessionLimits>, feed_upto: usize, now: Instant) -> Session {
    let v = vector();
    let mut cfg = config(&v, "listener", WireProfile::TypeScript, now);
    if let Some(l) = limits {
        cfg.limits = std::sync::Arc::new(l);
    }
    let mut s = Session::new(cfg, now).unwrap();
    for i in 0..feed_upto {
        if v["frames"][i]["direction"] == "dialer->listener" {
            feed(&mut s, &frames(&v, &[i]), now);
        }
        out(&mut s, now);
    }
    s
}

/// Established (the dialer's AUTH_OK fed): the dialer's next nonce is 3.
fn established(limits: Option<SessionLimits>, now: Instant) -> Session {
    let s = listener(limits, 9, now);
    assert!(s.is_established(), "{:?}", s.error());
    s
}

fn stream_data(sid: u64, data: &[u8]) -> Vec<u8> {
    Message::StreamData {
        stream_id: sid,
        data,
        fin: false,
    }
    .to_vec()
}

/// Before the handshake and before AUTH_OK the standard limits hold in the TypeScript
/// profile too: 1,024 bytes, then 65,535; a 16 MiB announcement fails on its prefix alone,
/// nothing reserved for it, and nothing answered before the handshake.
#[test]
fn unauthenticated_peers_get_the_standard_limits() {
    let now = Instant::now();
    let mut prefix = Vec::new();
    write_varint(&mut prefix, 16 * 1024 * 1024);
    // First frame.
    let mut s = listener(None, 0, now);
    let mut buf = BytesMut::from(&prefix[..]);
    s.handle_input(&mut buf, now);
    assert_eq!(s.error().unwrap().code, ErrorCode::MessageTooLarge);
    assert!(buf.capacity() < 4096);
    assert!(out(&mut s, now).is_empty(), "silent before the handshake");
    // After Noise, before AUTH_OK (HELLO exchanged, AUTH due): 65,536 is over.
    let mut s = listener(None, 4, now);
    assert!(!s.is_established() && s.error().is_none());
    let mut p = Vec::new();
    write_varint(&mut p, 65_536);
    let mut buf = BytesMut::from(&p[..]);
    s.handle_input(&mut buf, now);
    let e = s.error().unwrap();
    assert_eq!(e.code, ErrorCode::MessageTooLarge, "{e}");
    assert!(e.message.contains("65535"), "{e}");
}

/// Authenticated: a frame of 16 MiB + 1 is refused on its prefix (ERROR 14 sent, then the
/// close); one announced at 16 MiB whose bytes do not come holds at most the 128 KiB the
/// frame reader reserves ahead, not 16 MiB.
#[test]
fn authenticated_peer_oversized_and_announced_frames_are_bounded() {
    let now = Instant::now();
    let mut s = established(None, now);
    let mut p = Vec::new();
    write_varint(&mut p, 16 * 1024 * 1024 + 1);
    let mut buf = BytesMut::from(&p[..]);
    s.handle_input(&mut buf, now);
    assert_eq!(s.error().unwrap().code, ErrorCode::MessageTooLarge);
    assert!(!out(&mut s, now).is_empty(), "ERROR{{ec: 14}} goes out");

    let mut s = established(None, now);
    let mut buf = BytesMut::new();
    let mut p = Vec::new();
    write_varint(&mut p, 16 * 1024 * 1024);
    buf.extend_from_slice(&p);
    buf.extend_from_slice(&[0u8; 100]);
    s.handle_input(&mut buf, now);
    assert!(s.error().is_none());
    assert!(buf.capacity() <= 128 * 1024 + 256, "{}", buf.capacity());
    // A truncated frame is simply incomplete; a close then is a plain close.
    s.handle_transport_closed(None);
    assert_eq!(s.error().unwrap().code, ErrorCode::ConnectionClosed);
}

/// What the limit is for: a TypeScript peer's single 4 MiB STREAM_DATA frame (its stream
/// writes are not split) is accepted and read whole, fed a few KiB at a time.
#[test]
fn a_large_frame_from_an_authenticated_peer_is_accepted() {
    let now = Instant::now();
    let mut s = established(None, now);
    let open = Message::OpenStream {
        stream_id: 0,
        label: Some("big"),
    }
    .to_vec();
    feed(&mut s, &sealed(&k1(), 3, &open), now);
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i * 7) as u8).collect();
    let wire = sealed(&k1(), 4, &stream_data(0, &data));
    assert!(wire.len() > 65_535);
    let mut buf = BytesMut::new();
    for chunk in wire.chunks(8 * 1024) {
        buf.extend_from_slice(chunk);
        s.handle_input(&mut buf, now);
        assert!(s.error().is_none(), "{:?}", s.error());
    }
    assert!(buf.is_empty());
    let id = s.accept_stream().unwrap();
    assert_eq!(read_all(&mut s, id).0, data);
}

/// A flood of STREAM_DATA that nobody reads (no flow control in this profile): the receiver
/// buffers at most `max_unflowed_buffer`, then ends the session with
/// ERR_RESOURCE_EXHAUSTED, and a flood of frames after the error costs nothing.
#[test]
fn a_flood_without_flow_control_ends_at_the_buffer_bound() {
    let now = Instant::now();
    let mut limits = SessionLimits::default();
    limits.max_unflowed_buffer = 2 * 1024 * 1024;
    let mut s = established(Some(limits), now);
    let open = Message::OpenStream {
        stream_id: 0,
        label: None,
    }
    .to_vec();
    feed(&mut s, &sealed(&k1(), 3, &open), now);
    let block = vec![0x5a; 512 * 1024];
    let mut nonce = 4;
    let mut fed = 0usize;
    while s.error().is_none() {
        let mut buf = BytesMut::from(&sealed(&k1(), nonce, &stream_data(0, &block))[..]);
        s.handle_input(&mut buf, now);
        nonce += 1;
        fed += block.len();
        assert!(fed <= 4 * 1024 * 1024, "never refused");
    }
    let e = s.error().unwrap();
    assert_eq!(e.code, ErrorCode::ResourceExhausted, "{e}");
    assert!(s.readable_bytes(0) <= 2 * 1024 * 1024 + block.len());
    // More frames after the error are dropped unread.
    let mut buf = BytesMut::from(&sealed(&k1(), nonce, &stream_data(0, &block))[..]);
    s.handle_input(&mut buf, now);
    assert!(buf.is_empty());
}

/// Garbage where the TypeScript dialer's frames should be: a forged frame fails
/// authentication (ERR_INVALID_MESSAGE), a truncated prefix of 5 bytes is refused, and a
/// frame that decrypts but is not CBOR is ERR_INVALID_MESSAGE.
#[test]
fn forged_and_malformed_frames_are_refused() {
    let now = Instant::now();
    let mut s = established(None, now);
    let mut forged = sealed(&k1(), 3, b"\xa1\x61\x74\x20");
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let mut buf = BytesMut::from(&forged[..]);
    s.handle_input(&mut buf, now);
    assert_eq!(s.error().unwrap().code, ErrorCode::InvalidMessage);

    let mut s = established(None, now);
    let mut buf = BytesMut::from(&[0x80u8, 0x80, 0x80, 0x80, 0x01][..]);
    s.handle_input(&mut buf, now);
    assert_eq!(s.error().unwrap().code, ErrorCode::MessageTooLarge);

    let mut s = established(None, now);
    let mut buf = BytesMut::from(&sealed(&k1(), 3, &[0xff, 0x00, 0x13])[..]);
    s.handle_input(&mut buf, now);
    assert_eq!(s.error().unwrap().code, ErrorCode::InvalidMessage);
}
