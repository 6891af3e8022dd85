//! The TypeScript wire profile (docs/PROTOCOL.md §12) against a session recorded from the
//! TypeScript SNaP2P implementation itself (`vectors/ts-session.json`: both processes of
//! its code at commit e09e1e8, every frame through a logging proxy, the keys, the derived
//! keys and a stream echo). snap2p replays it from both sides in the TypeScript profile and
//! must produce the TypeScript side's bytes exactly and accept the other side's; the
//! standard profile refuses it with an error that names the profile.
//!
//! No TypeScript node runs here (no network beyond package registries, and no published
//! package of it): this recording and the buffer-bug peer of `ts_compat_buffer.rs` are the
//! evidence.

use std::time::Instant;

use bytes::BytesMut;
use snap2p::testing::Pair;
use snap2p::unstable::{secure_channel, Session};
use snap2p::{ErrorCode, WireProfile};

mod ts_vector;
use ts_vector::*;

/// snap2p as the dialer: every frame the TypeScript dialer sent, from the TypeScript
/// listener's recorded frames, byte for byte; the echo arrives.
#[test]
fn replay_as_dialer_byte_for_byte() {
    let v = vector();
    let now = Instant::now();
    let mut s = Session::new(config(&v, "dialer", WireProfile::TypeScript, now), now).unwrap();
    expect(&v, &mut s, now, &[0]); // Noise message 1
    feed(&mut s, &frames(&v, &[1]), now);
    expect(&v, &mut s, now, &[2, 3]); // Noise message 3, HELLO
    feed(&mut s, &frames(&v, &[4]), now);
    expect(&v, &mut s, now, &[5]); // AUTH
    feed(&mut s, &frames(&v, &[6, 7]), now);
    // AUTH_OK alone: the PING of the new session and the application's stream wait for
    // the listener's first frame (PROTOCOL.md §12.3).
    expect(&v, &mut s, now, &[8]);
    assert!(s.is_established() && s.holding_after_auth_ok());
    let id = s.open_stream(Some("echo")).unwrap();
    assert_eq!(id, 0);
    let msg = v["application"]["sent_by_dialer"].as_str().unwrap();
    assert_eq!(s.write(id, msg.as_bytes()).unwrap(), msg.len());
    assert!(out(&mut s, now).is_empty(), "nothing behind AUTH_OK");
    // The listener's PING releases them, in the order queued, then the PONG.
    feed(&mut s, &frames(&v, &[9]), now);
    assert!(!s.holding_after_auth_ok());
    expect(&v, &mut s, now, &[10, 11, 13, 14]); // PING, OPEN_STREAM, STREAM_DATA, PONG
    feed(&mut s, &frames(&v, &[12]), now); // PONG
    assert!(out(&mut s, now).is_empty());
    feed(&mut s, &frames(&v, &[15]), now); // the echo
    assert_eq!(read_all(&mut s, id), (msg.as_bytes().to_vec(), false));
    s.finish(id).unwrap();
    expect(&v, &mut s, now, &[16]); // FIN
    feed(&mut s, &frames(&v, &[17, 18]), now); // FIN, CLOSE_STREAM
    assert_eq!(read_all(&mut s, id), (vec![], true));
    expect(&v, &mut s, now, &[19]); // CLOSE_STREAM once both directions ended
    let info = s.info();
    assert_eq!(
        info.session_id.unwrap(),
        h32(&v["application"]["session_id_hex"])
    );
    assert_eq!(
        info.remote_principal.unwrap().to_string(),
        v["peers"]["listener"]["principal"].as_str().unwrap()
    );
    assert!(info.remote_capabilities.is_empty());
}

/// snap2p as the listener: every frame the TypeScript listener sent, byte for byte,
/// echoing the TypeScript dialer's stream.
#[test]
fn replay_as_listener_byte_for_byte() {
    let v = vector();
    let now = Instant::now();
    let mut s = Session::new(config(&v, "listener", WireProfile::TypeScript, now), now).unwrap();
    assert!(out(&mut s, now).is_empty());
    feed(&mut s, &frames(&v, &[0]), now);
    expect(&v, &mut s, now, &[1]); // Noise message 2
    feed(&mut s, &frames(&v, &[2, 3]), now); // message 3, HELLO
    expect(&v, &mut s, now, &[4]); // HELLO
    feed(&mut s, &frames(&v, &[5]), now); // AUTH
    expect(&v, &mut s, now, &[6, 7]); // AUTH, AUTH_OK (one frame each: no `batch`)
    feed(&mut s, &frames(&v, &[8]), now); // AUTH_OK
    assert!(s.is_established());
    expect(&v, &mut s, now, &[9]); // PING seq 0
    feed(&mut s, &frames(&v, &[10, 11]), now); // PING, OPEN_STREAM
    expect(&v, &mut s, now, &[12]); // PONG
    let id = s.accept_stream().unwrap();
    assert_eq!(id, 0);
    assert_eq!(s.stream_label(id), Some("echo"));
    feed(&mut s, &frames(&v, &[13]), now);
    let (data, fin) = read_all(&mut s, id);
    assert_eq!(
        data,
        v["application"]["sent_by_dialer"]
            .as_str()
            .unwrap()
            .as_bytes()
    );
    assert!(!fin);
    assert_eq!(s.write(id, &data).unwrap(), data.len());
    expect(&v, &mut s, now, &[15]); // the echo
    feed(&mut s, &frames(&v, &[14]), now); // PONG
    assert!(out(&mut s, now).is_empty());
    feed(&mut s, &frames(&v, &[16]), now); // FIN
    assert_eq!(read_all(&mut s, id), (vec![], true));
    s.finish(id).unwrap();
    expect(&v, &mut s, now, &[17, 18]); // FIN, then CLOSE_STREAM: both directions ended
    feed(&mut s, &frames(&v, &[19]), now); // the dialer's CLOSE_STREAM: already gone
    assert!(out(&mut s, now).is_empty());
    assert!(s.error().is_none());
}

/// The recorded MixKey steps and Split are the TypeScript HKDF (and not Noise's).
#[test]
fn recorded_key_derivation_is_the_ts_hkdf() {
    let v = vector();
    let mut steps = 0;
    for side in ["dialer", "listener"] {
        for op in v["handshake"]["trace"][side].as_array().unwrap() {
            if op["op"] != "MixKey" {
                continue;
            }
            let ck = h32(&op["ck_before_hex"]);
            let ikm = hx(&op["ikm_hex"]);
            let want = (h32(&op["ck_after_hex"]), h32(&op["k_after_hex"]));
            assert_eq!(
                secure_channel::mix_key(WireProfile::TypeScript, &ck, &ikm),
                want
            );
            assert_ne!(
                secure_channel::mix_key(WireProfile::Standard, &ck, &ikm),
                want
            );
            steps += 1;
        }
    }
    assert_eq!(steps, 6);
    let ck = h32(&v["handshake"]["final_chaining_key_hex"]);
    let split = (
        h32(&v["handshake"]["k1_hex"]),
        h32(&v["handshake"]["k2_hex"]),
    );
    assert_eq!(
        secure_channel::mix_key(WireProfile::TypeScript, &ck, &[]),
        split
    );
}

/// A standard dialer meeting the TypeScript listener's message 2: ERR_HANDSHAKE_FAILED
/// that says the peer speaks the TypeScript profile (not a bare decrypt error), and a
/// plaintext AUTH_FAIL telling the listener why.
#[test]
fn standard_dialer_refuses_recorded_listener_naming_the_profile() {
    let v = vector();
    let now = Instant::now();
    let mut s = Session::new(config(&v, "dialer", WireProfile::Standard, now), now).unwrap();
    expect(&v, &mut s, now, &[0]); // message 1 is the same bytes in both profiles
    let mut buf = BytesMut::from(&frames(&v, &[1])[..]);
    s.handle_input(&mut buf, now);
    let e = s.error().cloned().expect("refused");
    assert_eq!(e.code, ErrorCode::HandshakeFailed);
    assert!(
        e.message
            .contains("this peer speaks the TypeScript profile"),
        "{e}"
    );
    let notice = out(&mut s, now);
    let mut buf = BytesMut::from(&notice[..]);
    let f = snap2p::unstable::wire::frame::next_frame(&mut buf, 1024)
        .unwrap()
        .unwrap();
    assert_ne!(f.len(), secure_channel::XX_MSG3_LEN);
    match snap2p::unstable::wire::message::Message::decode(&f).unwrap() {
        snap2p::unstable::wire::message::Message::AuthFail { code, reason } => {
            assert_eq!(code, ErrorCode::HandshakeFailed);
            assert!(reason
                .unwrap()
                .contains("speaks the standard snap2p profile"));
        }
        m => panic!("{m:?}"),
    }
}

/// A standard listener cannot read the recorded dialer's message 3 (its message 2 is
/// standard, so the TypeScript dialer would have hung up); when that dialer hangs up
/// after message 2, the listener's error names the other profile.
#[test]
fn standard_listener_refuses_recorded_dialer() {
    let v = vector();
    let now = Instant::now();
    let mut s = Session::new(config(&v, "listener", WireProfile::Standard, now), now).unwrap();
    feed(&mut s, &frames(&v, &[0]), now);
    let ours = out(&mut s, now);
    assert_eq!(ours.len(), frames(&v, &[1]).len());
    assert_ne!(ours, frames(&v, &[1]), "standard message 2 differs");
    let mut buf = BytesMut::from(&frames(&v, &[2])[..]);
    s.handle_input(&mut buf, now);
    assert_eq!(s.error().unwrap().code, ErrorCode::HandshakeFailed);
    // The real TypeScript dialer hangs up instead of sending message 3.
    let mut s = Session::new(config(&v, "listener", WireProfile::Standard, now), now).unwrap();
    feed(&mut s, &frames(&v, &[0]), now);
    out(&mut s, now);
    s.handle_transport_closed(None);
    let e = s.error().unwrap();
    assert_eq!(e.code, ErrorCode::HandshakeFailed);
    assert!(
        e.message.contains("a dialer of the other wire profile"),
        "{e}"
    );
    assert!(e.message.contains("TypeScript profile"), "{e}");
}

/// Both mismatches between two snap2p sessions, each side's operator told which profile
/// the other speaks: the dialer by reading message 2 under the other profile, the listener
/// by the dialer's plaintext AUTH_FAIL.
#[test]
fn mismatch_between_snap2p_sessions_is_named_on_both_sides() {
    let v = vector();
    for (dialer, listener) in [
        (WireProfile::Standard, WireProfile::TypeScript),
        (WireProfile::TypeScript, WireProfile::Standard),
    ] {
        let now = Instant::now();
        let p = Pair::new(
            config(&v, "dialer", dialer, now),
            config(&v, "listener", listener, now),
            now,
        );
        let (d, l) = (p.a.error().unwrap(), p.b.error().unwrap());
        assert_eq!(
            (d.code, l.code),
            (ErrorCode::HandshakeFailed, ErrorCode::HandshakeFailed)
        );
        let theirs = match listener {
            WireProfile::TypeScript => "this peer speaks the TypeScript profile",
            _ => "this peer speaks the standard snap2p profile",
        };
        assert!(d.message.contains(theirs), "{d}");
        let dialer_is = format!("this peer (the dialer) speaks {}", dialer.describe());
        assert!(l.message.contains(&dialer_is), "{l}");
        assert!(p.b.closed_by_peer());
    }
}

/// Two snap2p sessions in the TypeScript profile speak to each other (no capabilities,
/// PING from 0), and the standard pair still lists its capabilities.
#[test]
fn ts_profile_pair_establishes_without_capabilities() {
    let v = vector();
    let now = Instant::now();
    let p = Pair::established(
        config(&v, "dialer", WireProfile::TypeScript, now),
        config(&v, "listener", WireProfile::TypeScript, now),
        now,
    );
    assert!(p.a.info().remote_capabilities.is_empty());
    assert!(p.b.info().remote_capabilities.is_empty());
    let p = Pair::established(
        config(&v, "dialer", WireProfile::Standard, now),
        config(&v, "listener", WireProfile::Standard, now),
        now,
    );
    assert!(!p.a.info().remote_capabilities.is_empty());
}

/// A TypeScript-profile dialer closed while it still holds (before the listener's first
/// frame) ends at once and sends nothing behind its AUTH_OK.
#[test]
fn close_while_holding_sends_nothing() {
    let v = vector();
    let now = Instant::now();
    let mut s = Session::new(config(&v, "dialer", WireProfile::TypeScript, now), now).unwrap();
    out(&mut s, now);
    feed(&mut s, &frames(&v, &[1]), now);
    out(&mut s, now);
    feed(&mut s, &frames(&v, &[4]), now);
    out(&mut s, now);
    feed(&mut s, &frames(&v, &[6, 7]), now);
    expect(&v, &mut s, now, &[8]);
    assert!(s.holding_after_auth_ok());
    s.close(now, ErrorCode::Ok, "bye");
    assert!(s.wants_transmit());
    assert!(out(&mut s, now).is_empty());
    assert!(s.is_closed());
}
