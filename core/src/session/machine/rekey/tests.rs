//! Rekey (capability `rekey`, docs/PROTOCOL.md §7.1) on the sans-IO session: two machines
//! back to back in memory with a simulated clock ([`crate::testing::Pair`]), thresholds
//! tiny so a test sees hundreds of rekeys.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::error::ErrorCode;
use crate::session::machine::*;
use crate::testing::{config, fixed, frames, Pair, Side};
use crate::wire::message::{caps, Message};

fn limits(bytes: u64, frames: u64, interval: Option<Duration>) -> SessionLimits {
    SessionLimits {
        rekey_after_bytes: bytes,
        rekey_after_frames: frames,
        rekey_interval: interval,
        ..SessionLimits::default()
    }
}

fn rekeys(s: &Session) -> (u64, u64) {
    let i = s.info();
    (i.rekeys_sent, i.rekeys_received)
}

/// Deterministic pseudo-random bytes (xorshift), different per `seed`.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Reads everything stream `id` has now into `got`; returns whether it finished.
fn drain(s: &mut Session, id: u64, got: &mut Vec<u8>) -> bool {
    loop {
        match s.read(id, 1 << 20).unwrap() {
            ReadOutcome::Data(d) => got.extend_from_slice(&d),
            ReadOutcome::Finished => return true,
            ReadOutcome::Blocked => return false,
        }
    }
}

struct Flow {
    /// The writing side is `a`.
    from_a: bool,
    id: u64,
    data: Vec<u8>,
    written: usize,
    finished: bool,
    got: Vec<u8>,
    done: bool,
}

/// Interleaved streams both ways under rekey thresholds on each side: every byte arrives
/// exactly (compared in full), and each side rekeyed its sending direction many times,
/// every REKEY heard by the other side.
fn run_streams(mut p: Pair, per_direction: usize, len: usize) -> Pair {
    let mut flows = Vec::new();
    for i in 0..per_direction * 2 {
        let from_a = i % 2 == 0;
        let s = if from_a { &mut p.a } else { &mut p.b };
        let id = s.open_stream(Some("load")).unwrap();
        flows.push(Flow {
            from_a,
            id,
            data: pattern(i as u64 + 1, len + i * 4099),
            written: 0,
            finished: false,
            got: Vec::new(),
            done: false,
        });
    }
    for round in 0..20_000 {
        for f in flows.iter_mut() {
            let s = if f.from_a { &mut p.a } else { &mut p.b };
            if f.written < f.data.len() {
                // Small writes, so streams interleave within frames and across them.
                let end = (f.written + 7_001).min(f.data.len());
                f.written += s.write(f.id, &f.data[f.written..end]).unwrap();
            } else if !f.finished {
                s.finish(f.id).unwrap();
                f.finished = true;
            }
        }
        p.pump();
        for f in flows.iter_mut() {
            let r = if f.from_a { &mut p.b } else { &mut p.a };
            if !f.done {
                // The reader side accepts the stream the first time it sees it.
                while r.accept_stream().is_some() {}
                f.done = drain(r, f.id, &mut f.got);
            }
        }
        if round % 7 == 6 {
            // Simulated time: the one-second trigger fires too.
            p.advance(Duration::from_millis(250));
        }
        assert!(p.a.error().is_none(), "{:?}", p.a.error());
        assert!(p.b.error().is_none(), "{:?}", p.b.error());
        if flows.iter().all(|f| f.done) {
            break;
        }
    }
    for f in &flows {
        assert!(f.done, "stream {} did not finish", f.id);
        assert_eq!(f.got.len(), f.data.len(), "stream {}", f.id);
        assert!(f.got == f.data, "stream {}: bytes altered", f.id);
    }
    p
}

#[test]
fn many_rekeys_under_load_both_directions_every_byte_intact() {
    let now = Instant::now();
    let (x, y) = (Side::new(1), Side::new(2));
    let mut acfg = config(&x, true, now);
    // The dialer rekeys every 64 KiB sealed, the listener every 10 frames; both every
    // second of simulated time.
    acfg.limits = std::sync::Arc::new(limits(64 * 1024, 0, Some(Duration::from_secs(1))));
    let mut bcfg = config(&y, false, now);
    bcfg.limits = std::sync::Arc::new(limits(0, 10, Some(Duration::from_secs(1))));
    let p = Pair::established(acfg, bcfg, now);
    // 3 streams each way, ~1.5 MiB each: ~4.5 MiB per direction.
    let p = run_streams(p, 3, 1_500_000);
    let (a_sent, a_recv) = rekeys(&p.a);
    let (b_sent, b_recv) = rekeys(&p.b);
    // Every REKEY sent was heard, in order (`n` checked by the receiver).
    assert_eq!(a_sent, b_recv);
    assert_eq!(b_sent, a_recv);
    // Thresholds are checked between frames, so a key seals less than the byte threshold
    // plus one full frame (64 KiB): the dialer's 4.5 MB need at least
    // 4.5e6 / (65,536 + 65,535) = 34 keys. (54 in the run that set this bound; the
    // one-second trigger adds some.)
    assert!(a_sent >= 34, "dialer rekeyed {a_sent} times");
    // The listener's 4.5 MB fill at least 69 frames of 64 KiB: 6+ rekeys at 10 frames.
    assert!(b_sent >= 6, "listener rekeyed {b_sent} times");
}

#[test]
fn rekey_on_every_side_at_once_with_the_default_flow_and_batching() {
    // Both sides on tiny byte and frame thresholds together: whichever comes first.
    let now = Instant::now();
    let (x, y) = (Side::new(3), Side::new(4));
    let mut acfg = config(&x, true, now);
    acfg.limits = std::sync::Arc::new(limits(16 * 1024, 3, None));
    let mut bcfg = config(&y, false, now);
    bcfg.limits = std::sync::Arc::new(limits(16 * 1024, 3, None));
    let p = Pair::established(acfg, bcfg, now);
    let p = run_streams(p, 4, 300_000);
    let (a_sent, a_recv) = rekeys(&p.a);
    let (b_sent, b_recv) = rekeys(&p.b);
    assert_eq!((a_sent, b_sent), (b_recv, a_recv));
    // ~1.2 MB each way; a key seals under 16 KiB + one 64 KiB frame: at least
    // 1.2e6 / 81,919 = 14 rekeys each way (46 in the run that set this bound).
    assert!(a_sent >= 14 && b_sent >= 14, "{a_sent} {b_sent}");
}

/// With `rekey_after_frames = 10`, REKEY goes out exactly every 10 frames of data, right
/// after the 10th, alone in a 25-byte frame (prefix 0x18, REKEY{n} 8 bytes while n < 24,
/// 16-byte tag); the receiver follows every switch.
#[test]
fn rekey_every_ten_frames_exactly() {
    let now = Instant::now();
    let (x, y) = (Side::new(1), Side::new(2));
    let mut acfg = config(&x, true, now);
    acfg.limits = std::sync::Arc::new(limits(0, 10, None));
    let mut p = Pair::established(acfg, config(&y, false, now), now);
    let id = p.a.open_stream(None).unwrap();
    let mut at = Vec::new();
    let mut got = Vec::new();
    for i in 0..100u8 {
        let before = rekeys(&p.a).0;
        p.a.write(id, &[i]).unwrap();
        let (ab, _) = p.pump();
        let f = frames(&ab);
        if rekeys(&p.a).0 > before {
            at.push(i);
            // The data frame that reached the threshold, then REKEY alone: 8 plaintext
            // bytes and the tag.
            assert_eq!(f.len(), 2, "round {i}");
            assert_eq!(f[1].len(), 8 + 16, "round {i}");
            assert_eq!(ab.len(), 1 + f[0].len() + 25, "round {i}");
            assert_eq!(ab[1 + f[0].len()], 0x18);
        } else {
            assert_eq!(f.len(), 1, "round {i}");
        }
        drain(&mut p.b, id, &mut got);
    }
    assert_eq!(got, (0..100u8).collect::<Vec<_>>());
    assert!(at.len() >= 9, "{at:?}");
    for w in at.windows(2) {
        assert_eq!(w[1] - w[0], 10, "{at:?}");
    }
    assert_eq!(rekeys(&p.a).0, rekeys(&p.b).1);
}

/// The time trigger: a key that sealed a frame is replaced once it is a second old (the
/// session asks for that timer); a key that sealed nothing is left alone; each direction
/// on its own.
#[test]
fn rekey_every_second_of_simulated_clock_only_for_used_keys() {
    let t0 = Instant::now();
    let (x, y) = (Side::new(1), Side::new(2));
    let mut acfg = config(&x, true, t0);
    acfg.limits = std::sync::Arc::new(limits(0, 0, Some(Duration::from_secs(1))));
    acfg.limits_mut().keepalive_interval = Duration::from_secs(3600);
    let mut bcfg = config(&y, false, t0);
    bcfg.limits = acfg.limits.clone();
    let mut p = Pair::established(acfg, bcfg, t0);
    // The first PING/PONG exchange (due at establishment) out of the way.
    p.advance(Duration::ZERO);
    p.pump();
    assert_eq!((rekeys(&p.a), rekeys(&p.b)), ((0, 0), (0, 0)));
    assert!(p.a.poll_timeout().unwrap() <= t0 + Duration::from_secs(1));
    // Both keys sealed handshake frames: both directions rekey at 1 s.
    p.advance(Duration::from_secs(1));
    assert!(p.a.wants_transmit() && p.b.wants_transmit());
    p.pump();
    assert_eq!((rekeys(&p.a), rekeys(&p.b)), ((1, 1), (1, 1)));
    // Nothing sealed since: no REKEY at 2 s.
    p.advance(Duration::from_secs(1));
    let (ab, ba) = p.pump();
    assert!(ab.is_empty() && ba.is_empty());
    assert_eq!((rekeys(&p.a), rekeys(&p.b)), ((1, 1), (1, 1)));
    // The dialer sends; only its direction rekeys a second later.
    let id = p.a.open_stream(None).unwrap();
    p.a.write(id, b"tick").unwrap();
    p.pump();
    p.advance(Duration::from_secs(1));
    p.pump();
    assert_eq!((rekeys(&p.a), rekeys(&p.b)), ((2, 1), (1, 2)));
    p.b.accept_stream().unwrap();
    let mut got = Vec::new();
    drain(&mut p.b, id, &mut got);
    assert_eq!(got, b"tick");
    // Data under the new key still flows.
    p.a.write(id, b"tock").unwrap();
    p.a.finish(id).unwrap();
    p.pump();
    assert!(drain(&mut p.b, id, &mut got));
    assert_eq!(got, b"ticktock");
}

/// A peer without the capability (an older snap2p, or one that turned it off) never gets
/// a REKEY however small this side's thresholds, and both sides keep working; either way
/// round.
#[test]
fn a_peer_without_the_capability_never_gets_rekey() {
    for old_is_listener in [true, false] {
        let now = Instant::now();
        let (x, y) = (Side::new(1), Side::new(2));
        let mut acfg = config(&x, true, now);
        let mut bcfg = config(&y, false, now);
        for cfg in [&mut acfg, &mut bcfg] {
            cfg.limits = std::sync::Arc::new(limits(1024, 2, Some(Duration::from_millis(1))));
        }
        let old = if old_is_listener {
            &mut bcfg
        } else {
            &mut acfg
        };
        old.capabilities.retain(|c| c != caps::REKEY);
        assert!(acfg.capabilities.len() != bcfg.capabilities.len());
        let p = Pair::established(acfg, bcfg, now);
        let p = run_streams(p, 2, 200_000);
        assert_eq!((rekeys(&p.a), rekeys(&p.b)), ((0, 0), (0, 0)));
        assert!(!p.a.both_support(caps::REKEY) && !p.b.both_support(caps::REKEY));
    }
}

/// Two pairs from the same identities and fixed randomness send identical bytes until the
/// first dialer rekeys. The second dialer never does, so its next frames are what a sender
/// that kept the old key would send: under the old key at exactly the nonces the first
/// listener expects. The first listener refuses such a frame (ERR_INVALID_MESSAGE) and
/// delivers nothing of it; the second listener, still on the old key, accepts the same
/// bytes. A frame captured before the switch and replayed after it is refused too.
#[test]
fn a_frame_under_the_old_key_after_the_switch_is_refused() {
    let now = Instant::now();
    let (x, y) = (Side::new(1), Side::new(2));
    let pair = |interval: Option<Duration>| {
        let mut acfg = config(&x, true, now);
        acfg.fixed = Some(Box::new(fixed(1)));
        acfg.limits = std::sync::Arc::new(limits(0, 0, interval));
        let mut bcfg = config(&y, false, now);
        bcfg.fixed = Some(Box::new(fixed(2)));
        Pair::established(acfg, bcfg, now)
    };
    let mut p1 = pair(Some(Duration::from_secs(1)));
    let mut p2 = pair(None);
    assert_eq!(p1.a_sent, p2.a_sent, "the pairs must start identical");
    assert_eq!(p1.b_sent, p2.b_sent);
    // p1's dialer switches keys (the REKEY is the frame at nonce k)...
    p1.advance(Duration::from_secs(1));
    let (rekey_frame, _) = p1.pump();
    assert_eq!(rekeys(&p1.b).1, 1);
    // ... p2's sends frame k and k + 1 under the old key.
    let s0 = p2.a.open_stream(None).unwrap();
    p2.a.write(s0, b"frame k").unwrap();
    let mut at_k = Vec::new();
    p2.a.poll_transmit(now, &mut at_k, 1 << 20);
    let s2 = p2.a.open_stream(Some("stale")).unwrap();
    p2.a.write(s2, b"frame k+1").unwrap();
    let mut at_k1 = Vec::new();
    p2.a.poll_transmit(now, &mut at_k1, 1 << 20);
    assert_eq!(frames(&at_k).len(), 1);
    assert_eq!(frames(&at_k1).len(), 1);
    // Valid under the old key: p2's listener takes both.
    p2.b.handle_input(&mut BytesMut::from(&at_k[..]), now);
    p2.b.handle_input(&mut BytesMut::from(&at_k1[..]), now);
    assert!(p2.b.error().is_none());
    assert_eq!(p2.b.accept_stream(), Some(s0));
    assert_eq!(p2.b.accept_stream(), Some(s2));
    // p1's listener expects nonce k + 1 under the new key: the old-key frame k + 1 fails.
    p1.b.handle_input(&mut BytesMut::from(&at_k1[..]), now);
    let e = p1.b.error().expect("an old-key frame was accepted").clone();
    assert_eq!(e.code, ErrorCode::InvalidMessage, "{e}");
    assert!(e.message.contains("failed authentication"), "{e}");
    assert_eq!(p1.b.accept_stream(), None, "nothing of it is delivered");
    // The listener's ERROR reaches the dialer, who ends with the same code.
    p1.pump();
    assert_eq!(p1.a.error().unwrap().code, ErrorCode::InvalidMessage);

    // Replay: a third identical pair switches, then gets the REKEY frame itself again.
    let mut p3 = pair(Some(Duration::from_secs(1)));
    p3.advance(Duration::from_secs(1));
    let (again, _) = p3.pump();
    assert_eq!(again, rekey_frame, "same pair, same bytes");
    assert_eq!(rekeys(&p3.b).1, 1);
    p3.b.handle_input(&mut BytesMut::from(&again[..]), now);
    assert_eq!(p3.b.error().unwrap().code, ErrorCode::InvalidMessage);
    assert_eq!(rekeys(&p3.b).1, 1);
}

/// A sender that announces REKEY but keeps its key: the receiver switched, so the
/// sender's very next frame fails authentication.
#[test]
fn rekey_announced_without_switching_fails_the_next_frame() {
    let now = Instant::now();
    let (x, y) = (Side::new(1), Side::new(2));
    let mut p = Pair::established(config(&x, true, now), config(&y, false, now), now);
    p.a.replace_control_for_test(Message::Rekey { n: 1 }.to_vec());
    p.pump();
    assert!(p.b.error().is_none());
    assert_eq!(rekeys(&p.b).1, 1);
    let id = p.a.open_stream(None).unwrap();
    p.a.write(id, b"old key").unwrap();
    p.pump();
    assert_eq!(p.b.error().unwrap().code, ErrorCode::InvalidMessage);
    assert_eq!(p.b.accept_stream(), None);
}

/// REKEY must be alone in its frame, count from 1 in order, and come only from a peer
/// that negotiated it: otherwise ERR_INVALID_MESSAGE.
#[test]
fn malformed_rekeys_are_invalid_message() {
    let ping = Message::Ping {
        seq: 7,
        timestamp: 0,
    }
    .to_vec();
    let rekey = |n| Message::Rekey { n }.to_vec();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("n = 2 first", rekey(2), true),
        ("n = 0", rekey(0), true),
        ("after a message", [ping.clone(), rekey(1)].concat(), true),
        ("before a message", [rekey(1), ping.clone()].concat(), true),
        ("twice in a frame", [rekey(1), rekey(2)].concat(), true),
        ("not negotiated", rekey(1), false),
    ];
    for (what, plaintext, negotiated) in cases {
        let now = Instant::now();
        let (x, y) = (Side::new(1), Side::new(2));
        let mut bcfg = config(&y, false, now);
        if !negotiated {
            bcfg.capabilities.retain(|c| c != caps::REKEY);
        }
        let mut p = Pair::established(config(&x, true, now), bcfg, now);
        p.a.replace_control_for_test(plaintext);
        p.pump();
        let e = p.b.error().unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(e.code, ErrorCode::InvalidMessage, "{what}: {e}");
        assert_eq!(
            p.a.error().unwrap().code,
            ErrorCode::InvalidMessage,
            "{what}"
        );
    }
}

/// `aes-gcm` (docs/PROTOCOL.md §7.2) listed by both, whatever this CPU has: after the
/// HELLOs both directions are AES-256-GCM, and streams both ways under hundreds of rekeys
/// (AESGCM's REKEY) deliver every byte.
#[test]
fn aes_gcm_when_both_list_it_with_rekeys_both_ways() {
    use crate::secure_channel::TransportCipher;
    let now = Instant::now();
    let (x, y) = (Side::new(1), Side::new(2));
    let mut acfg = config(&x, true, now);
    let mut bcfg = config(&y, false, now);
    for cfg in [&mut acfg, &mut bcfg] {
        cfg.limits = std::sync::Arc::new(limits(4096, 3, None));
        crate::testing::set_aes_gcm(cfg, true);
    }
    let p = Pair::established(acfg, bcfg, now);
    for s in [&p.a, &p.b] {
        assert!(s.both_support(caps::AES_GCM));
        assert_eq!(s.transport_cipher(), Some(TransportCipher::AesGcm));
    }
    let p = run_streams(p, 3, 150_000);
    let (a, b) = (rekeys(&p.a), rekeys(&p.b));
    assert!(a.0 > 20 && b.0 > 20, "rekeys: {a:?} {b:?}");
    assert_eq!((a.0, b.0), (b.1, a.1));
    assert_eq!(p.a.transport_cipher(), Some(TransportCipher::AesGcm));
}

/// One side without `aes-gcm` (an older node, a TypeScript-profile one, a CPU without AES
/// instructions): both stay on ChaChaPoly, dialer or listener alike.
#[test]
fn chacha_when_either_side_does_not_list_aes_gcm() {
    use crate::secure_channel::TransportCipher;
    let now = Instant::now();
    for lacking_is_listener in [false, true] {
        let (x, y) = (Side::new(1), Side::new(2));
        let mut acfg = config(&x, true, now);
        let mut bcfg = config(&y, false, now);
        for cfg in [&mut acfg, &mut bcfg] {
            crate::testing::set_aes_gcm(cfg, true);
        }
        let lacking = if lacking_is_listener {
            &mut bcfg
        } else {
            &mut acfg
        };
        crate::testing::set_aes_gcm(lacking, false);
        let p = Pair::established(acfg, bcfg, now);
        for s in [&p.a, &p.b] {
            assert!(!s.both_support(caps::AES_GCM));
            assert_eq!(s.transport_cipher(), Some(TransportCipher::ChaChaPoly));
        }
        run_streams(p, 1, 50_000);
    }
}
