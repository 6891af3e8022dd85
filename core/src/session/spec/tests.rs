//! The rules of issue 26, one test each, on the sans-IO machine: where the binary and
//! docs/PROTOCOL.md disagreed (now both say the same) and the rules a second
//! implementation had to guess. Each test names the section it pins.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::machine::*;
use crate::error::ErrorCode;
use crate::policy::{NodePolicy, Visibility};
use crate::secure_channel;
use crate::testing::{config, drain_events, frames, pump, Pair, Side, T0_UNIX};
use crate::wire::cbor::{self, Value};
use crate::wire::frame;
use crate::wire::message::{types, Message};

fn established() -> Pair {
    let now = Instant::now();
    Pair::established(
        config(&Side::new(1), true, now),
        config(&Side::new(2), false, now),
        now,
    )
}

/// The dialer `a` sends `msg` (encoded CBOR) as its next control message.
fn a_sends(p: &mut Pair, msg: Vec<u8>) {
    p.a.replace_control_for_test(msg);
    p.pump();
}

fn map(entries: Vec<(&'static str, Value<'static>)>) -> Vec<u8> {
    let mut entries = entries;
    entries.sort_by(|x, y| x.0.cmp(y.0));
    cbor::to_vec(&Value::Map(entries))
}

// ---------------------------------------------------------------------------------------
// §6.2: stream messages for a stream id that was never opened

#[test]
fn window_update_for_a_never_opened_stream_is_stream_not_found() {
    // Both parities: 7 (the listener's, never opened by it) and 4 (the dialer's own,
    // never opened by it either).
    for sid in [7u64, 4] {
        let mut p = established();
        let wu = Message::WindowUpdate {
            stream_id: sid,
            credit: 1000,
        }
        .to_vec();
        if sid % 2 == 0 {
            // An even id names the dialer's streams: the listener sends it.
            p.b.replace_control_for_test(wu);
            p.pump();
            assert_eq!(
                p.a.error().unwrap().code,
                ErrorCode::StreamNotFound,
                "{sid}"
            );
            assert_eq!(
                p.b.error().unwrap().code,
                ErrorCode::StreamNotFound,
                "{sid}"
            );
        } else {
            a_sends(&mut p, wu);
            assert_eq!(
                p.b.error().unwrap().code,
                ErrorCode::StreamNotFound,
                "{sid}"
            );
            assert_eq!(
                p.a.error().unwrap().code,
                ErrorCode::StreamNotFound,
                "{sid}"
            );
        }
    }
}

#[test]
fn close_stream_for_a_never_opened_stream_is_stream_not_found() {
    for code in [
        ErrorCode::Ok,
        ErrorCode::StreamRefused,
        ErrorCode::Unspecified,
    ] {
        let mut p = established();
        a_sends(&mut p, Message::CloseStream { stream_id: 0, code }.to_vec());
        assert_eq!(
            p.b.error().unwrap().code,
            ErrorCode::StreamNotFound,
            "{code:?}"
        );
        // The peer hears why: ERROR{10}, then the close.
        assert_eq!(
            p.a.error().unwrap().code,
            ErrorCode::StreamNotFound,
            "{code:?}"
        );
        assert!(p.a.closed_by_peer());
    }
}

#[test]
fn stream_messages_for_a_stream_that_is_gone_are_ignored() {
    let mut p = established();
    let id = p.a.open_stream(None).unwrap();
    p.a.write(id, b"x").unwrap();
    p.pump();
    assert_eq!(p.b.accept_stream(), Some(id));
    p.b.reset(id, ErrorCode::StreamRefused).unwrap();
    p.b.release_stream(id);
    p.pump();
    // In flight when the stream went: all three are dropped without a word.
    for msg in [
        Message::WindowUpdate {
            stream_id: id,
            credit: 5,
        }
        .to_vec(),
        Message::CloseStream {
            stream_id: id,
            code: ErrorCode::Ok,
        }
        .to_vec(),
        Message::StreamData {
            stream_id: id,
            data: b"late",
            fin: false,
        }
        .to_vec(),
    ] {
        a_sends(&mut p, msg);
        assert!(p.b.error().is_none(), "{:?}", p.b.error());
        assert!(p.a.is_established() && p.b.is_established());
    }
}

// ---------------------------------------------------------------------------------------
// §4: STREAM_DATA's `d` may be absent (= empty)

#[test]
fn stream_data_without_d_is_empty_data_and_with_f_a_clean_fin() {
    let mut p = established();
    let id = p.a.open_stream(None).unwrap();
    p.a.write(id, b"abc").unwrap();
    p.pump();
    assert_eq!(p.b.accept_stream(), Some(id));
    let no_d = |fin: bool| {
        let mut e = vec![
            ("sid", Value::Uint(id)),
            ("t", Value::Uint(types::STREAM_DATA)),
        ];
        if fin {
            e.push(("f", Value::Bool(true)));
        }
        map(e)
    };
    a_sends(&mut p, no_d(false));
    assert!(p.b.error().is_none(), "{:?}", p.b.error());
    a_sends(&mut p, no_d(true));
    assert_eq!(p.b.read(id, 100).unwrap(), ReadOutcome::Data("abc".into()));
    assert_eq!(p.b.read(id, 100).unwrap(), ReadOutcome::Finished);
}

// ---------------------------------------------------------------------------------------
// §5.2: one rule for every visibility

fn stealth_listener(y: &Side, now: Instant) -> Session {
    let mut policy = NodePolicy::new(Visibility::Stealth);
    policy.allowlist_gate = false;
    let mut c = config(y, false, now);
    c.policy = Some(std::sync::Arc::new(policy));
    c.visibility = Visibility::Stealth;
    Session::new(c, now).unwrap()
}

fn listener(vis: Visibility, now: Instant) -> Session {
    let y = Side::new(2);
    match vis {
        Visibility::Stealth => stealth_listener(&y, now),
        _ => {
            let mut c = config(&y, false, now);
            c.policy = Some(std::sync::Arc::new(NodePolicy::new(vis)));
            c.visibility = vis;
            Session::new(c, now).unwrap()
        }
    }
}

/// Feeds one frame with `payload` to a fresh listener; returns its error and its answer.
fn first_frame(vis: Visibility, payload: &[u8]) -> (ErrorCode, Vec<u8>) {
    let now = Instant::now();
    let mut b = listener(vis, now);
    let mut input = Vec::new();
    frame::write_frame(&mut input, payload);
    b.handle_input(&mut BytesMut::from(&input[..]), now);
    let mut out = Vec::new();
    b.poll_transmit(now, &mut out, 1 << 16);
    let code = b.error().map(|e| e.code).unwrap_or(ErrorCode::Ok);
    (code, out)
}

#[test]
fn a_first_frame_that_is_neither_knock_nor_noise_1_is_not_answered_on_any_node() {
    let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let ping_in_clear = Message::Ping {
        seq: 1,
        timestamp: 2,
    }
    .to_vec();
    let not_cbor = vec![0xffu8; 40];
    let noise_2_size = vec![0u8; secure_channel::XX_MSG2_LEN];
    for vis in [Visibility::Public, Visibility::Private, Visibility::Stealth] {
        for junk in [&http, &ping_in_clear, &not_cbor, &noise_2_size] {
            let (code, out) = first_frame(vis, junk);
            assert_eq!(code, ErrorCode::HandshakeFailed, "{vis:?}");
            assert!(out.is_empty(), "{vis:?} answered {out:02x?}");
        }
    }
}

#[test]
fn a_noise_1_without_knock_gets_invite_required_only_from_a_stealth_node() {
    let noise1 = [0x5au8; secure_channel::XX_MSG1_LEN];
    let (code, out) = first_frame(Visibility::Stealth, &noise1);
    assert_eq!(code, ErrorCode::InviteRequired);
    let f = frames(&out);
    assert_eq!(f.len(), 1);
    assert!(matches!(
        Message::decode(&f[0]).unwrap(),
        Message::AuthFail {
            code: ErrorCode::InviteRequired,
            ..
        }
    ));
    // Public: a real Noise message 1 gets message 2: 96 bytes (v1), or with the
    // listener's HELLO after an hs2 offer (§5.8).
    for hs2 in [false, true] {
        let now = Instant::now();
        let mut cfg = config(&Side::new(1), true, now);
        cfg.hs2 = hs2;
        let mut a = Session::new(cfg, now).unwrap();
        let mut m1 = Vec::new();
        a.poll_transmit(now, &mut m1, 1 << 16);
        let offer = secure_channel::XX_MSG1_LEN + usize::from(hs2);
        assert_eq!(frames(&m1)[0].len(), offer, "hs2 {hs2}");
        let mut b = listener(Visibility::Public, now);
        b.handle_input(&mut BytesMut::from(&m1[..]), now);
        let mut out = Vec::new();
        b.poll_transmit(now, &mut out, 1 << 16);
        let m2 = frames(&out)[0].len();
        if hs2 {
            assert!(m2 > secure_channel::XX_MSG2_LEN, "{m2}");
        } else {
            assert_eq!(m2, secure_channel::XX_MSG2_LEN);
        }
    }
}

// ---------------------------------------------------------------------------------------
// §5.8: hs2's offer

/// A dialer (hs2 on, as by default) and the bytes of its first frame, the offer.
fn offering_dialer(now: Instant) -> (Session, Vec<u8>) {
    let mut a = Session::new(config(&Side::new(1), true, now), now).unwrap();
    let mut m1 = Vec::new();
    a.poll_transmit(now, &mut m1, 1 << 16);
    (a, m1)
}

#[test]
fn an_hs2_offer_is_classified_like_a_noise_1() {
    let mut offer = [0x5au8; secure_channel::XX_MSG1_LEN + 1];
    offer[secure_channel::XX_MSG1_LEN] = secure_channel::HS2_OFFER;
    // Without a KNOCK, a stealth node says ERR_INVITE_REQUIRED, as to a v1 message 1.
    let (code, out) = first_frame(Visibility::Stealth, &offer);
    assert_eq!(code, ErrorCode::InviteRequired);
    assert_eq!(frames(&out).len(), 1);
    // 33 bytes ending in any other byte are neither KNOCK nor message 1: no answer.
    for last in [0x00u8, 0x01, 0x03, 0xff] {
        offer[secure_channel::XX_MSG1_LEN] = last;
        for vis in [Visibility::Public, Visibility::Stealth] {
            let (code, out) = first_frame(vis, &offer);
            assert_eq!(code, ErrorCode::HandshakeFailed, "{last:#x} {vis:?}");
            assert!(out.is_empty(), "{last:#x} {vis:?} answered {out:02x?}");
        }
    }
}

/// A message 2 that opens but carries something other than a HELLO: the dialer has written
/// its message 3 already, then refuses with an encrypted AUTH_FAIL (ERR_INVALID_MESSAGE).
#[test]
fn an_hs2_message_2_without_a_hello_is_invalid() {
    let now = Instant::now();
    let (mut a, m1) = offering_dialer(now);
    let key = crate::identity::NodeKey::generate();
    let mut r = secure_channel::NoiseHandshake::new(
        false,
        &key.x25519_secret(),
        &key.x25519_public(),
        None,
    )
    .unwrap();
    assert_eq!(r.read_payload(&frames(&m1)[0]).unwrap(), [0x02]);
    let ping = Message::Ping {
        seq: 1,
        timestamp: 2,
    }
    .to_vec();
    let mut m2 = Vec::new();
    r.write_frame_with(&ping, &mut m2).unwrap();
    a.handle_input(&mut BytesMut::from(&m2[..]), now);
    let mut out = Vec::new();
    a.poll_transmit(now, &mut out, 1 << 16);
    assert_eq!(a.error().unwrap().code, ErrorCode::InvalidMessage);
    let sent = frames(&out);
    // Message 3, then the AUTH_FAIL as a transport message (not readable in clear).
    assert_eq!(sent.len(), 2, "{sent:02x?}");
    assert!(r.read_payload(&sent[0]).is_ok(), "message 3 reads");
    assert!(
        Message::decode(&sent[1]).is_err(),
        "AUTH_FAIL went out in clear"
    );
}

/// An attacker who strips the offer: the listener reads a v1 message 1 and answers v1's
/// message 2, whose encrypted parts the dialer authenticates under a hash that includes
/// the offer. The dial fails there (ERR_HANDSHAKE_FAILED), and not as a silent close: no
/// fallback to v1 either.
#[test]
fn a_stripped_offer_fails_the_dial() {
    let now = Instant::now();
    let (mut a, m1) = offering_dialer(now);
    let stripped = &frames(&m1)[0][..secure_channel::XX_MSG1_LEN];
    let mut wire = Vec::new();
    frame::write_frame(&mut wire, stripped);
    let mut b = listener(Visibility::Public, now);
    b.handle_input(&mut BytesMut::from(&wire[..]), now);
    let mut m2 = Vec::new();
    b.poll_transmit(now, &mut m2, 1 << 16);
    assert_eq!(frames(&m2)[0].len(), secure_channel::XX_MSG2_LEN);
    a.handle_input(&mut BytesMut::from(&m2[..]), now);
    assert_eq!(a.error().unwrap().code, ErrorCode::HandshakeFailed);
    assert!(!a.hs2_unanswered());
}

#[test]
fn a_listener_without_hs2_treats_an_offer_as_v1_did() {
    let now = Instant::now();
    let (mut a, m1) = offering_dialer(now);
    let mut bcfg = config(&Side::new(2), false, now);
    bcfg.hs2 = false;
    let mut b = Session::new(bcfg, now).unwrap();
    b.handle_input(&mut BytesMut::from(&m1[..]), now);
    let mut out = Vec::new();
    b.poll_transmit(now, &mut out, 1 << 16);
    assert_eq!(b.error().unwrap().code, ErrorCode::HandshakeFailed);
    assert!(out.is_empty(), "answered {out:02x?}");
    // The dialer sees the close with nothing after its offer: worth a v1 try.
    a.handle_transport_closed(None);
    assert!(a.hs2_unanswered());
    assert_eq!(a.error().unwrap().code, ErrorCode::ConnectionClosed);
}

#[test]
fn a_listener_whose_hello_does_not_fit_declines_hs2_and_v1_goes_on() {
    let now = Instant::now();
    let (x, y) = (Side::new(1), Side::new(2));
    let mut bcfg = config(&y, false, now);
    // 40 capabilities of 24 bytes: a HELLO of over 928 bytes, too long for message 2.
    bcfg.capabilities
        .extend((0..40).map(|i| format!("x-unknown-capability-{i:03}")));
    let mut p = Pair::established(config(&x, true, now), bcfg, now);
    let f = frames(&p.b_sent);
    assert_eq!(
        f[0].len(),
        secure_channel::XX_MSG2_LEN,
        "message 2 is empty"
    );
    assert!(!p.a.hs2_unanswered());
    // v1 from there: the dialer's message 3 is 64 bytes, the HELLOs transport messages.
    assert_eq!(frames(&p.a_sent)[1].len(), secure_channel::XX_MSG3_LEN);
    let _ = drain_events(&mut p.a);
}

// ---------------------------------------------------------------------------------------
// §4: KNOCK's `kn`

fn knock(kn: Option<&[u8]>, token: &[u8]) -> Vec<u8> {
    let mut e: Vec<(&'static str, Value<'static>)> = vec![
        ("t", Value::Uint(types::KNOCK)),
        ("v", Value::Uint(1)),
        ("it", Value::Bytes(token.to_vec().leak())),
    ];
    if let Some(kn) = kn {
        e.push(("kn", Value::Bytes(kn.to_vec().leak())));
    }
    map(e)
}

#[test]
fn knock_nonce_outside_16_to_32_bytes_is_invalid_and_not_answered() {
    for len in [0usize, 1, 8, 15, 33, 64] {
        let m = knock(Some(&vec![7u8; len]), &[9u8; 32]);
        let e = Message::decode(&m).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidMessage, "kn of {len} bytes");
        for vis in [Visibility::Public, Visibility::Stealth] {
            let (code, out) = first_frame(vis, &m);
            assert_eq!(code, ErrorCode::HandshakeFailed, "{vis:?} kn {len}");
            assert!(out.is_empty(), "{vis:?}, kn of {len}: answered");
        }
    }
    for len in [16usize, 24, 32] {
        let m = knock(Some(&vec![7u8; len]), &[9u8; 32]);
        assert!(Message::decode(&m).is_ok(), "kn of {len} bytes");
        // A public node answers KNOCK_RESPONSE{a: true} without looking at the token.
        let (code, out) = first_frame(Visibility::Public, &m);
        assert_eq!(code, ErrorCode::Ok);
        let f = frames(&out);
        assert!(matches!(
            Message::decode(&f[0]).unwrap(),
            Message::KnockResponse { accepted: true, .. }
        ));
    }
    // Absent (the TypeScript reference's KNOCK): accepted, and written absent again (an
    // empty `kn` would not decode: the round trip the message fuzzer checks).
    let bytes = knock(None, &[9u8; 32]);
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(Message::decode(&m.to_vec()).unwrap(), m);
}

// ---------------------------------------------------------------------------------------
// §2: nesting depth

fn nested(levels: usize, innermost: Value<'static>) -> Vec<u8> {
    let mut v = innermost;
    for _ in 0..levels {
        v = Value::Array(vec![v]);
    }
    cbor::to_vec(&v)
}

#[test]
fn an_item_inside_more_than_8_arrays_or_maps_is_rejected() {
    // The top-level item is at depth 0; every array or map around an item adds one.
    assert!(cbor::decode(&nested(8, Value::Uint(1))).is_ok());
    assert!(cbor::decode(&nested(9, Value::Uint(1))).is_err());
    // Nine levels of containers with nothing inside the ninth: no item at depth 9.
    assert!(cbor::decode(&nested(8, Value::Array(vec![]))).is_ok());
    // Maps count the same: the map at depth 8 is fine, its key and value are at depth 9.
    let m = Value::Map(vec![("k", Value::Uint(1))]);
    assert!(cbor::decode(&nested(7, m.clone())).is_ok());
    assert!(cbor::decode(&nested(8, m)).is_err());
}

// ---------------------------------------------------------------------------------------
// Rules a second implementation had to guess

#[test]
fn no_plaintext_auth_fail_is_96_bytes_long() {
    // Every reason length: none encodes to the size of Noise message 2 (§5.2).
    let mut hit = false;
    for code in [
        ErrorCode::InviteRequired,
        ErrorCode::RateLimited,
        ErrorCode::Unspecified,
    ] {
        for n in 0..200 {
            let r = "é".repeat(n / 2) + &"x".repeat(n % 2);
            hit |= Message::AuthFail {
                code,
                reason: Some(&r),
            }
            .to_vec()
            .len()
                == secure_channel::XX_MSG2_LEN;
            let m = crate::wire::message::plaintext_auth_fail(code, Some(&r));
            assert_ne!(m.len(), secure_channel::XX_MSG2_LEN, "{code:?} {n}");
            assert!(matches!(
                Message::decode(&m).unwrap(),
                Message::AuthFail { code: c, .. } if c == code
            ));
        }
    }
    assert!(hit, "some reasons do reach 96 bytes in the plain encoding");
}

#[test]
fn the_dialer_reads_a_plaintext_auth_fail_by_its_length() {
    // Anything but 96 bytes where Noise message 2 is due is decoded; an AUTH_FAIL ends
    // the dial with its code.
    let now = Instant::now();
    let mut a = Session::new(config(&Side::new(1), true, now), now).unwrap();
    let mut out = Vec::new();
    a.poll_transmit(now, &mut out, 1 << 16);
    let mut input = Vec::new();
    frame::write_frame(
        &mut input,
        &Message::AuthFail {
            code: ErrorCode::RateLimited,
            reason: Some("slow down"),
        }
        .to_vec(),
    );
    a.handle_input(&mut BytesMut::from(&input[..]), now);
    assert_eq!(a.error().unwrap().code, ErrorCode::RateLimited);
    assert!(a.closed_by_peer());
}

/// With and without `aes-gcm` on both sides (§7.2): the refusal reaches the dialer as an
/// encrypted AUTH_FAIL{7} either way, and the refusing listener switched too: the switch
/// is decided on the two capability lists before the HELLO's checks, so an AUTH_FAIL
/// after a side's own HELLO goes under the cipher a peer that accepted it opens with
/// (a switch made after the checks fails the cipher assertion here).
#[test]
fn hello_check_failures_are_encrypted_auth_fails() {
    let now = Instant::now();
    for (aes, hs2) in [(false, false), (true, false), (false, true), (true, true)] {
        let (x, y) = (Side::new(1), Side::new(2));
        // The dialer's clock 400 s ahead: the HELLO check fails (ERR_AUTH_EXPIRED). In v1
        // the listener checks first (the dialer's HELLO comes first); in hs2 the dialer
        // (the listener's HELLO is in message 2), and it refuses after its message 3.
        let mut acfg = config(&x, true, now);
        acfg.clock.base_unix = T0_UNIX + 400;
        let mut bcfg = config(&y, false, now);
        for cfg in [&mut acfg, &mut bcfg] {
            crate::testing::set_aes_gcm(cfg, aes);
            cfg.hs2 = hs2;
        }
        let mut p = Pair::new(acfg, bcfg, now);
        let case = format!("aes {aes} hs2 {hs2}");
        assert_eq!(p.b.error().unwrap().code, ErrorCode::AuthExpired, "{case}");
        assert_eq!(p.a.error().unwrap().code, ErrorCode::AuthExpired, "{case}");
        let (refuser, refuser_sent) = if hs2 {
            (&p.a, &p.a_sent)
        } else {
            assert!(p.a.closed_by_peer(), "{case}");
            (&p.b, &p.b_sent)
        };
        let want = if aes {
            secure_channel::TransportCipher::AesGcm
        } else {
            secure_channel::TransportCipher::ChaChaPoly
        };
        assert_eq!(refuser.transport_cipher(), Some(want), "{case}");
        // The refuser's last frame is a transport message, not a plaintext AUTH_FAIL.
        let last = frames(refuser_sent).pop().unwrap();
        assert!(
            !matches!(Message::decode(&last), Ok(Message::AuthFail { .. })),
            "AUTH_FAIL went out in clear ({case})"
        );
        let _ = drain_events(&mut p.a);
    }
}

#[test]
fn without_batch_auth_r_and_auth_ok_travel_in_two_frames() {
    let now = Instant::now();
    let (x, y) = (Side::new(1), Side::new(2));
    let nobatch = |mut c: SessionConfig| {
        c.capabilities.retain(|c| c != "batch");
        c
    };
    let with = Pair::established(config(&x, true, now), config(&y, false, now), now);
    let without = Pair::established(
        nobatch(config(&x, true, now)),
        nobatch(config(&y, false, now)),
        now,
    );
    // Listener (hs2, §5.8): Noise 2 carrying HELLO_R, then AUTH_R + AUTH_OK in one frame,
    // or in two.
    assert_eq!(frames(&with.b_sent).len(), 2);
    assert_eq!(frames(&without.b_sent).len(), 3);
}

#[test]
fn the_first_ping_follows_the_senders_auth_ok() {
    let now = Instant::now();
    let (x, y) = (Side::new(1), Side::new(2));
    let mut a = Session::new(config(&x, true, now), now).unwrap();
    let mut b = Session::new(config(&y, false, now), now).unwrap();
    // Drive both with their timers at every step: no PING before a side is established.
    for _ in 0..10 {
        for s in [&mut a, &mut b] {
            if !s.is_established() {
                s.handle_timeout(now);
                assert_eq!(s.pings_sent_for_test(), 0);
            }
        }
        pump(&mut a, &mut b, now);
    }
    assert!(a.is_established() && b.is_established());
    a.handle_timeout(now);
    b.handle_timeout(now);
    assert_eq!(a.pings_sent_for_test(), 1, "at once after establishment");
    assert_eq!(b.pings_sent_for_test(), 1);
    let (ab, ba) = pump(&mut a, &mut b, now);
    assert!(!ab.is_empty() && !ba.is_empty());
    assert!(a.error().is_none() && b.error().is_none());
    assert!(a.info().rtt.is_some() && b.info().rtt.is_some());
}

#[test]
fn an_oversized_frame_after_auth_gets_error_14_before_the_close() {
    let mut p = established();
    // A frame header announcing 65,536 bytes (over the transport limit).
    let mut input = BytesMut::new();
    input.extend_from_slice(&[0x80, 0x80, 0x04]);
    p.b.handle_input(&mut input, p.now);
    assert_eq!(p.b.error().unwrap().code, ErrorCode::MessageTooLarge);
    let mut out = Vec::new();
    p.b.poll_transmit(p.now, &mut out, 1 << 16);
    assert!(!out.is_empty(), "ERROR{{14}} expected before the close");
    p.a.handle_input(&mut BytesMut::from(&out[..]), p.now);
    assert_eq!(p.a.error().unwrap().code, ErrorCode::MessageTooLarge);
    assert!(p.a.closed_by_peer());
    // Before the handshake, nothing is answered.
    let (code, out) = {
        let now = Instant::now();
        let mut b = listener(Visibility::Public, now);
        b.handle_input(&mut BytesMut::from(&[0x81, 0x08][..]), now);
        let mut out = Vec::new();
        b.poll_transmit(now, &mut out, 1 << 16);
        (b.error().unwrap().code, out)
    };
    assert_eq!(code, ErrorCode::MessageTooLarge);
    assert!(out.is_empty());
}

#[test]
fn stream_opens_over_the_rate_are_refused_in_a_fixed_one_second_window() {
    let now = Instant::now();
    let (x, y) = (Side::new(1), Side::new(2));
    let mut bcfg = config(&y, false, now);
    bcfg.limits_mut().max_stream_opens_per_sec = 3;
    let mut p = Pair::established(config(&x, true, now), bcfg, now);
    let ids: Vec<u64> = (0..5).map(|_| p.a.open_stream(None).unwrap()).collect();
    p.pump();
    let refused =
        |p: &mut Pair, id| matches!(p.a.read(id, 1), Err(e) if e.code == ErrorCode::StreamRefused);
    let r: Vec<bool> = ids.iter().map(|&id| refused(&mut p, id)).collect();
    assert_eq!(r, [false, false, false, true, true]);
    // The window restarts one second after its first open.
    p.advance(Duration::from_millis(999));
    let late = p.a.open_stream(None).unwrap();
    p.pump();
    assert!(refused(&mut p, late));
    p.advance(Duration::from_millis(1));
    let next = p.a.open_stream(None).unwrap();
    p.pump();
    assert!(!refused(&mut p, next));
    assert!(p.a.is_established() && p.b.is_established());
}
