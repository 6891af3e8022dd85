//! Deterministic tests of the sans-IO session: two machines wired back to back in memory
//! with a simulated clock (quinn's `Pair` idea, [`crate::testing`]). No sockets, no wall
//! clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::machine::*;
use crate::error::ErrorCode;
use crate::identity::NodeKey;
use crate::policy::{NodePolicy, Visibility};
use crate::testing::{config, drain_events, pump, Pair, Side, T0_UNIX};
use crate::wire::message::{caps, Hello, Message};

fn side(seed: u8) -> Side {
    Side::new(seed)
}

fn pair(a_cfg: SessionConfig, b_cfg: SessionConfig, now: Instant) -> (Session, Session) {
    let p = Pair::new(a_cfg, b_cfg, now);
    (p.a, p.b)
}

#[test]
fn handshake_establishes_both_sides() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let (a, b) = pair(config(&x, true, now), config(&y, false, now), now);
    assert!(a.is_established() && b.is_established());
    assert_eq!(a.remote_principal(), Some(&y.wallet.principal()));
    assert_eq!(b.remote_principal(), Some(&x.wallet.principal()));
    assert_eq!(a.info().session_id, b.info().session_id);
}

#[test]
fn the_handshake_state_goes_at_auth_ok_and_a_card_set_during_it_is_the_one_sent() {
    use crate::identity::AliasCard;
    use crate::testing::block_on;
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let card = |alias: &str| {
        let c = block_on(AliasCard::issue(&y.wallet, alias, "", T0_UNIX, 3600)).unwrap();
        Arc::new(c.encode())
    };
    let mut bcfg = config(&y, false, now);
    bcfg.alias_card = Some(card("old"));
    let mut a = Session::new(config(&x, true, now), now).unwrap();
    let mut b = Session::new(bcfg, now).unwrap();
    assert!(a.holds_handshake_state_for_test() && b.holds_handshake_state_for_test());
    // Set while the handshake runs: nothing to send yet, and this card replaces the one
    // the listener started with.
    assert!(!b.send_alias_card(card("new")));
    pump(&mut a, &mut b, now);
    assert!(a.is_established() && b.is_established());
    assert!(!a.holds_handshake_state_for_test() && !b.holds_handshake_state_for_test());
    let cards: Vec<String> = drain_events(&mut a)
        .into_iter()
        .filter_map(|e| match e {
            Event::AliasCard(c) => Some(c.alias.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cards, ["new"]);
}

#[test]
fn streams_carry_data_with_fin() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let (mut a, mut b) = pair(config(&x, true, now), config(&y, false, now), now);
    let id = a.open_stream(Some("chat")).unwrap();
    assert_eq!(id, 0, "dialer ids are even from 0");
    assert_eq!(a.write(id, b"hello").unwrap(), 5);
    a.finish(id).unwrap();
    pump(&mut a, &mut b, now);
    let got = b.accept_stream().unwrap();
    assert_eq!(got, id);
    assert_eq!(b.stream_label(id), Some("chat"));
    assert_eq!(b.read(id, 100).unwrap(), ReadOutcome::Data("hello".into()));
    assert_eq!(b.read(id, 100).unwrap(), ReadOutcome::Finished);
    let back = b.open_stream(None).unwrap();
    assert_eq!(back, 1, "listener ids are odd from 1");
}

#[test]
fn flow_control_bounds_a_slow_reader() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let acfg = config(&x, true, now);
    let cap = acfg.limits.stream_send_buffer as u64;
    let (mut a, mut b) = pair(acfg, config(&y, false, now), now);
    let id = a.open_stream(None).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0usize;
    // Write far more than one window while the reader reads nothing.
    for _ in 0..200 {
        written += a.write(id, &chunk).unwrap();
        pump(&mut a, &mut b, now);
    }
    let buffered = b.readable_bytes(id);
    assert_eq!(
        buffered as u64, INITIAL_STREAM_WINDOW,
        "receiver holds exactly one window"
    );
    assert_eq!(
        written as u64,
        INITIAL_STREAM_WINDOW + cap,
        "writer was stopped by the send buffer"
    );
    // Reading frees credit and the data keeps flowing, intact and in order.
    let mut total = 0usize;
    let _ = b.accept_stream();
    for _ in 0..10_000 {
        match b.read(id, 1 << 20).unwrap() {
            ReadOutcome::Data(d) => {
                assert!(d.iter().all(|&x| x == 7));
                total += d.len();
            }
            ReadOutcome::Blocked => {
                if total >= written {
                    break;
                }
                pump(&mut a, &mut b, now);
            }
            ReadOutcome::Finished => break,
        }
    }
    assert_eq!(total, written);
}

/// Streams whose reader keeps up grow their windows (auto-tuning), but all of a session's
/// streams together never grow past `max_session_window_growth`: a peer pacing its sends
/// cannot make this side commit `max_streams` × `max_stream_window` of buffer.
#[test]
fn window_growth_is_bounded_per_session() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut b_cfg = config(&y, false, now);
    b_cfg.limits_mut().max_session_window_growth = 1024 * 1024;
    let (mut a, mut b) = pair(config(&x, true, now), b_cfg, now);
    let ids: Vec<u64> = (0..8).map(|_| a.open_stream(None).unwrap()).collect();
    let chunk = vec![3u8; 64 * 1024];
    let (mut sent, mut got) = (0usize, 0usize);
    for _ in 0..200 {
        // A sender with more to say than its credit allows.
        for &id in &ids {
            loop {
                let n = a.write(id, &chunk).unwrap();
                sent += n;
                if n == 0 {
                    break;
                }
            }
        }
        pump(&mut a, &mut b, now);
        while b.accept_stream().is_some() {}
        // A fast reader: everything that arrived is taken at once.
        for &id in &ids {
            while let ReadOutcome::Data(d) = b.read(id, 1 << 20).unwrap() {
                got += d.len();
            }
        }
        pump(&mut a, &mut b, now);
    }
    let growth = b.window_growth_for_test();
    assert!(growth > 0, "windows grew for a reader that kept up");
    assert!(
        growth <= 1024 * 1024,
        "session growth {growth} over its budget"
    );
    assert!(got > 0 && got <= sent);
}

#[test]
fn stream_limit_refuses_with_stream_refused() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut bcfg = config(&y, false, now);
    bcfg.limits_mut().max_streams = 2;
    let (mut a, mut b) = pair(config(&x, true, now), bcfg, now);
    let ids: Vec<u64> = (0..3).map(|_| a.open_stream(None).unwrap()).collect();
    pump(&mut a, &mut b, now);
    assert_eq!(a.read(ids[0], 10).unwrap(), ReadOutcome::Blocked);
    assert_eq!(a.read(ids[1], 10).unwrap(), ReadOutcome::Blocked);
    let e = a.read(ids[2], 10).unwrap_err();
    assert_eq!(e.code, ErrorCode::StreamRefused);
    assert!(b.is_established() && a.is_established());
}

#[test]
fn keepalive_detects_a_silent_peer() {
    let t0 = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut acfg = config(&x, true, t0);
    acfg.limits_mut().keepalive_interval = Duration::from_secs(5);
    acfg.limits_mut().keepalive_timeout = Duration::from_secs(2);
    let (mut a, mut b) = pair(acfg, config(&y, false, t0), t0);
    // First PING goes out at once and is answered.
    a.handle_timeout(t0);
    pump(&mut a, &mut b, t0);
    assert!(a.info().rtt.is_some());
    // Next PING at t0+5; the peer goes silent (its bytes are never delivered).
    let t1 = t0 + Duration::from_secs(5);
    a.handle_timeout(t1);
    let mut sink = Vec::new();
    a.poll_transmit(t1, &mut sink, 1 << 20);
    assert_eq!(a.poll_timeout(), Some(t1 + Duration::from_secs(2)));
    a.handle_timeout(t1 + Duration::from_secs(2));
    assert_eq!(a.error().unwrap().code, ErrorCode::Timeout);
    let _ = b;
}

#[test]
fn quiet_session_keeps_one_ping_pair_per_interval_and_the_listener_takes_over() {
    let t0 = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut acfg = config(&x, true, t0);
    let mut bcfg = config(&y, false, t0);
    for c in [&mut acfg, &mut bcfg] {
        c.limits_mut().keepalive_interval = Duration::from_secs(4);
        c.limits_mut().keepalive_timeout = Duration::from_secs(2);
    }
    let (mut a, mut b) = pair(acfg, bcfg, t0);
    // Both sides send their first PING at once (it measures the RTT).
    a.handle_timeout(t0);
    b.handle_timeout(t0);
    pump(&mut a, &mut b, t0);
    assert!(a.info().rtt.is_some() && b.info().rtt.is_some());
    assert_eq!((a.pings_sent_for_test(), b.pings_sent_for_test()), (1, 1));
    // Ten quiet intervals, both clocks driven by their own timeouts, 10 ms each way.
    let mut now = t0;
    let end = t0 + Duration::from_secs(40);
    while now < end {
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("keepalive timers");
        now = next.max(now);
        a.handle_timeout(now);
        b.handle_timeout(now);
        pump(&mut a, &mut b, now + Duration::from_millis(10));
        now += Duration::from_millis(10);
    }
    assert!(a.error().is_none() && b.error().is_none());
    // The dialer pinged every 4 s; the listener, hearing from it, never needed to.
    assert_eq!(a.pings_sent_for_test(), 11);
    assert_eq!(b.pings_sent_for_test(), 1);
    // The dialer goes silent: the listener pings 6 s after it last heard anything and
    // closes the session when no PONG comes within the timeout.
    let quiet_from = now;
    let ping_at = b.poll_timeout().unwrap();
    assert!(
        ping_at <= quiet_from + Duration::from_secs(6),
        "{ping_at:?}"
    );
    b.handle_timeout(ping_at);
    assert_eq!(b.pings_sent_for_test(), 2);
    let deadline = b.poll_timeout().unwrap();
    assert_eq!(deadline, ping_at + Duration::from_secs(2));
    b.handle_timeout(deadline);
    assert_eq!(b.error().unwrap().code, ErrorCode::Timeout);
}

#[test]
fn silent_client_times_out_handshake() {
    let t0 = Instant::now();
    let y = side(2);
    let mut b = Session::new(config(&y, false, t0), t0).unwrap();
    // Nothing arrives: the first frame's deadline (3 s), not the whole handshake's (10 s).
    assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    b.handle_timeout(t0 + Duration::from_millis(2999));
    assert!(b.error().is_none());
    b.handle_timeout(t0 + Duration::from_secs(3));
    let e = b.error().unwrap();
    assert_eq!(e.code, ErrorCode::Timeout);
    assert!(e.message.contains("no complete frame"), "{e}");
}

#[test]
fn a_byte_at_a_time_is_no_progress_but_each_frame_is() {
    let t0 = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut a = Session::new(config(&x, true, t0), t0).unwrap();
    let mut b = Session::new(config(&y, false, t0), t0).unwrap();
    let progress = Arc::new(HandshakeProgress::new(t0));
    b.track_progress(progress.clone());
    let mut msg1 = Vec::new();
    a.poll_transmit(t0, &mut msg1, 1 << 20);
    // All but the last byte of Noise message 1: no frame yet.
    let t1 = t0 + Duration::from_secs(2);
    // The caller keeps a partial frame in its buffer (the driver's read buffer).
    let mut buf = BytesMut::from(&msg1[..msg1.len() - 1]);
    b.handle_input(&mut buf, t1);
    assert_eq!(progress.frames(), 0);
    assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    // The last byte completes it: progress, and the next step gets its own 3 s.
    let t2 = t0 + Duration::from_millis(2500);
    buf.extend_from_slice(&msg1[msg1.len() - 1..]);
    b.handle_input(&mut buf, t2);
    assert!(b.error().is_none());
    assert_eq!(progress.frames(), 1);
    assert_eq!(progress.last(), t2);
    assert_eq!(b.poll_timeout(), Some(t2 + Duration::from_secs(3)));
    // The dialer never sends message 3.
    b.handle_timeout(t2 + Duration::from_secs(3));
    let e = b.error().unwrap();
    assert_eq!(e.code, ErrorCode::Timeout);
    assert!(e.message.contains("next handshake message"), "{e}");
}

#[test]
fn steps_in_time_still_end_at_the_whole_handshake_deadline() {
    let t0 = Instant::now();
    let y = side(2);
    let mut cfg = config(&y, false, t0);
    cfg.limits_mut().first_frame_timeout = Duration::from_secs(8);
    let mut b = Session::new(cfg, t0).unwrap();
    assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(8)));
    let mut cfg = config(&y, false, t0);
    cfg.limits_mut().first_frame_timeout = Duration::from_secs(30);
    b = Session::new(cfg, t0).unwrap();
    assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    b.handle_timeout(t0 + Duration::from_secs(10));
    let e = b.error().unwrap();
    assert!(e.message.contains("did not complete in time"), "{e}");
}

#[test]
fn attestation_for_another_node_key_fails_binding() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut acfg = config(&x, true, now);
    // The initiator presents an attestation of a node key it does not hold.
    acfg.node_key = NodeKey::from_seed([9; 32]);
    let (a, b) = pair(acfg, config(&y, false, now), now);
    assert_eq!(b.error().unwrap().code, ErrorCode::AuthFailed);
    assert_eq!(a.error().unwrap().code, ErrorCode::AuthFailed);
}

#[test]
fn auth_from_another_session_fails_transcript_binding() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    // Binding 2 is off by default: both sides list it (docs/PROTOCOL.md §5.4).
    let with_binding = |mut cfg: SessionConfig| {
        cfg.capabilities.push(caps::TRANSCRIPT_BINDING.to_string());
        cfg
    };
    let mut a = Session::new(with_binding(config(&x, true, now)), now).unwrap();
    let mut b = Session::new(with_binding(config(&y, false, now)), now).unwrap();
    // Run until the initiator has the responder's HELLO but has not sent AUTH.
    let mut buf = Vec::new();
    a.poll_transmit(now, &mut buf, 1 << 20); // noise 1
    b.handle_input(&mut BytesMut::from(&buf[..]), now);
    buf.clear();
    b.poll_transmit(now, &mut buf, 1 << 20); // noise 2
    a.handle_input(&mut BytesMut::from(&buf[..]), now);
    // The initiator's nonce changes after its HELLO was queued: its AUTH now echoes and
    // signs a transcript the responder never saw, as a replayed AUTH would.
    buf.clear();
    a.poll_transmit(now, &mut buf, 1 << 20); // noise 3 + HELLO
    a.local_nonce_for_test([0xee; 32]);
    b.handle_input(&mut BytesMut::from(&buf[..]), now);
    pump(&mut a, &mut b, now);
    assert_eq!(b.error().unwrap().code, ErrorCode::AuthFailed);
    assert!(!a.is_established());
}

#[test]
fn expired_attestation_is_refused() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut bcfg = config(&y, false, now);
    // Two hours later: the 1-hour attestations are past their ±5 min grace.
    bcfg.clock.base_unix = T0_UNIX + 7200;
    let mut acfg = config(&x, true, now);
    acfg.clock.base_unix = T0_UNIX + 7200;
    let (a, b) = pair(acfg, bcfg, now);
    assert_eq!(b.error().unwrap().code, ErrorCode::AuthExpired);
    assert_eq!(a.error().unwrap().code, ErrorCode::AuthExpired);
}

#[test]
fn private_allowlist_refuses_with_not_allowed() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut bcfg = config(&y, false, now);
    bcfg.policy = Some(Arc::new(NodePolicy::new(Visibility::Private)));
    let (a, b) = pair(config(&x, true, now), bcfg, now);
    assert_eq!(a.error().unwrap().code, ErrorCode::NotAllowed);
    assert!(
        a.closed_by_peer(),
        "the listener's verdict reaches the dialer"
    );
    assert!(b.error().is_some() && !b.closed_by_peer());
    // Allowed principal gets in.
    let policy = NodePolicy::new(Visibility::Private);
    policy.allowlist.allow(x.wallet.principal());
    let mut bcfg = config(&y, false, now);
    bcfg.policy = Some(Arc::new(policy));
    let (a, b) = pair(config(&x, true, now), bcfg, now);
    assert!(a.is_established() && b.is_established());
}

fn stealth_policy() -> (Arc<NodePolicy>, Vec<u8>) {
    let mut policy = NodePolicy::new(Visibility::Stealth);
    policy.allowlist_gate = false;
    let invite = policy.invites.create(600, false, T0_UNIX).unwrap();
    (Arc::new(policy), invite.token)
}

#[test]
fn stealth_requires_a_valid_knock() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let (policy, token) = stealth_policy();
    let listener = |p: &Arc<NodePolicy>| {
        let mut c = config(&y, false, now);
        c.policy = Some(p.clone());
        c.visibility = Visibility::Stealth;
        c
    };
    // No KNOCK at all.
    let (a, b) = pair(config(&x, true, now), listener(&policy), now);
    assert_eq!(a.error().unwrap().code, ErrorCode::InviteRequired);
    assert_eq!(b.error().unwrap().code, ErrorCode::InviteRequired);
    // A wrong token.
    let mut acfg = config(&x, true, now);
    acfg.invite_token = Some(vec![0x42; 32]);
    let (a, _) = pair(acfg, listener(&policy), now);
    assert_eq!(a.error().unwrap().code, ErrorCode::InviteInvalid);
    // The right token.
    let mut acfg = config(&x, true, now);
    acfg.invite_token = Some(token);
    let (a, b) = pair(acfg, listener(&policy), now);
    assert!(
        a.is_established() && b.is_established(),
        "{:?} {:?}",
        a.error(),
        b.error()
    );
}

#[test]
fn stealth_answers_scanners_before_any_crypto() {
    // A stealth listener fed a Noise message 1 (what a scanner or a plain client sends)
    // answers AUTH_FAIL{INVITE_REQUIRED} without running Noise.
    let now = Instant::now();
    let y = side(2);
    let (policy, _) = stealth_policy();
    let mut c = config(&y, false, now);
    c.policy = Some(policy);
    let mut b = Session::new(c, now).unwrap();
    let mut input = BytesMut::from(&[32u8][..]);
    input.extend_from_slice(&[0u8; 32]);
    b.handle_input(&mut input, now);
    assert_eq!(b.error().unwrap().code, ErrorCode::InviteRequired);
    let mut out = Vec::new();
    b.poll_transmit(now, &mut out, 1024);
    let f = crate::wire::frame::next_frame(&mut BytesMut::from(&out[..]), 1024)
        .unwrap()
        .unwrap();
    assert!(matches!(
        Message::decode(&f).unwrap(),
        Message::AuthFail {
            code: ErrorCode::InviteRequired,
            ..
        }
    ));
    assert!(b.is_closed() || out.len() < 64);
}

#[test]
fn knock_with_another_version_is_refused() {
    let now = Instant::now();
    let y = side(2);
    let (policy, token) = stealth_policy();
    let mut c = config(&y, false, now);
    c.policy = Some(policy);
    let mut b = Session::new(c, now).unwrap();
    let knock = Message::Knock {
        version: 2,
        nonce: &[1; 16],
        token: &token,
    }
    .to_vec();
    let mut input = Vec::new();
    crate::wire::frame::write_frame(&mut input, &knock);
    b.handle_input(&mut BytesMut::from(&input[..]), now);
    assert_eq!(b.error().unwrap().code, ErrorCode::VersionUnsupported);
}

#[test]
fn hello_with_another_version_is_refused() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    // v1 (§5.8's hs2 carries the HELLOs in Noise messages, not as queued control
    // messages; both reach the same check).
    let v1 = |mut c: SessionConfig| {
        c.hs2 = false;
        c
    };
    let mut a = Session::new(v1(config(&x, true, now)), now).unwrap();
    let mut b = Session::new(v1(config(&y, false, now)), now).unwrap();
    let mut buf = Vec::new();
    a.poll_transmit(now, &mut buf, 1 << 20);
    b.handle_input(&mut BytesMut::from(&buf[..]), now);
    buf.clear();
    b.poll_transmit(now, &mut buf, 1 << 20);
    a.handle_input(&mut BytesMut::from(&buf[..]), now);
    // Swap the initiator's queued HELLO for one claiming protocol version 2.
    let pk = x.node.public();
    a.replace_control_for_test(
        Message::Hello(Hello {
            version: 2,
            node_pubkey: &pk,
            nonce: &[3; 32],
            timestamp: T0_UNIX,
            visibility: None,
            capabilities: vec![],
        })
        .to_vec(),
    );
    pump(&mut a, &mut b, now);
    assert_eq!(b.error().unwrap().code, ErrorCode::VersionUnsupported);
    assert_eq!(a.error().unwrap().code, ErrorCode::VersionUnsupported);
}

#[test]
fn unknown_message_type_after_auth_closes_with_version_unsupported() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let (mut a, mut b) = pair(config(&x, true, now), config(&y, false, now), now);
    let unknown = crate::wire::cbor::to_vec(&crate::wire::cbor::Value::Map(vec![(
        "t",
        crate::wire::cbor::Value::Uint(0x77),
    )]));
    a.replace_control_for_test(unknown);
    pump(&mut a, &mut b, now);
    assert_eq!(b.error().unwrap().code, ErrorCode::VersionUnsupported);
    assert_eq!(a.error().unwrap().code, ErrorCode::VersionUnsupported);
    assert!(drain_events(&mut a)
        .iter()
        .any(|e| matches!(e, Event::Closed(_))));
}

#[test]
fn corrupted_frame_closes_with_a_code_and_delivers_nothing() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let (mut a, mut b) = pair(config(&x, true, now), config(&y, false, now), now);
    let id = a.open_stream(None).unwrap();
    a.write(id, b"do not deliver me").unwrap();
    let mut buf = Vec::new();
    a.poll_transmit(now, &mut buf, 1 << 20);
    let last = buf.len() - 5;
    buf[last] ^= 0x01;
    b.handle_input(&mut BytesMut::from(&buf[..]), now);
    assert_eq!(b.error().unwrap().code, ErrorCode::InvalidMessage);
    assert!(b.accept_stream().is_none());
}

#[test]
fn graceful_close_flushes_then_sends_code() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let (mut a, mut b) = pair(config(&x, true, now), config(&y, false, now), now);
    let id = a.open_stream(None).unwrap();
    a.write(id, &[1u8; 100_000]).unwrap();
    a.close(now, ErrorCode::Ok, "bye");
    pump(&mut a, &mut b, now);
    assert_eq!(b.readable_bytes(id), 100_000);
    assert_eq!(b.error().unwrap().code, ErrorCode::Ok);
    assert_eq!(a.error().unwrap().code, ErrorCode::Ok);
    // Who ended it: b received a's code; a chose it.
    assert!(b.closed_by_peer());
    assert!(!a.closed_by_peer());
}

#[test]
fn graceful_close_lingers_at_most_close_linger_for_a_peer_that_stops_reading() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let acfg = config(&x, true, now);
    let linger = acfg.limits.close_linger;
    let (mut a, mut b) = pair(acfg, config(&y, false, now), now);
    let id = a.open_stream(None).unwrap();
    // More than the initial window: b never reads, so part of it waits for credit.
    let mut queued = 0;
    while a.write(id, &[3u8; 65536]).unwrap() > 0 {
        queued += 65536;
        pump(&mut a, &mut b, now);
    }
    a.close(now, ErrorCode::Ok, "bye");
    pump(&mut a, &mut b, now);
    assert!(
        a.error().is_none(),
        "still flushing: queued data waits for credit"
    );
    let armed = |a: &Session| a.poll_timeout().is_some_and(|t| t <= now + linger);
    assert!(armed(&a), "a timer is armed for the linger");
    // Closing again does not extend the linger.
    let later = now + linger / 2;
    a.handle_timeout(later);
    a.close(later, ErrorCode::Ok, "bye again");
    pump(&mut a, &mut b, later);
    assert!(armed(&a));
    let almost = now + linger - Duration::from_millis(1);
    a.handle_timeout(almost);
    pump(&mut a, &mut b, almost);
    assert!(a.error().is_none(), "lingers until close_linger is over");
    drain_events(&mut a);

    let end = now + linger;
    a.handle_timeout(end);
    pump(&mut a, &mut b, end);
    assert_eq!(a.error().unwrap().code, ErrorCode::Ok);
    assert_eq!(
        b.error().unwrap().code,
        ErrorCode::Ok,
        "b learns the close and its code"
    );
    assert!(b.closed_by_peer());
    assert!(
        b.readable_bytes(id) < queued,
        "what never got credit was dropped, not delivered"
    );
    // The writer waiting on the stream is woken and learns the session ended.
    assert!(drain_events(&mut a)
        .iter()
        .any(|e| matches!(e, Event::Closed(_))));
    assert_eq!(
        a.write(id, &[1]).unwrap_err().code,
        ErrorCode::ConnectionClosed
    );
}

#[test]
fn peer_chosen_codes_are_reported_as_the_peers() {
    // A peer may close with any code, even one we never raise ourselves (Internal).
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let (mut a, mut b) = pair(config(&x, true, now), config(&y, false, now), now);
    a.close(now, ErrorCode::Internal, "");
    pump(&mut a, &mut b, now);
    let e = b.error().unwrap();
    assert_eq!(e.code, ErrorCode::Internal);
    assert!(e.message.starts_with("the peer closed the session"), "{e}");
    assert!(b.closed_by_peer() && !a.closed_by_peer());
}

#[test]
fn many_streams_share_frames() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let (mut a, mut b) = pair(config(&x, true, now), config(&y, false, now), now);
    let ids: Vec<u64> = (0..500).map(|_| a.open_stream(None).unwrap()).collect();
    for &id in &ids {
        a.write(id, &id.to_le_bytes()).unwrap();
        a.finish(id).unwrap();
    }
    let (wire, _) = pump(&mut a, &mut b, now);
    // 500 opens + 500 data messages fit in a handful of frames, not 1000.
    assert!(wire.len() < 500 * 40, "{} bytes", wire.len());
    for &id in &ids {
        assert_eq!(
            b.read(id, 64).unwrap(),
            ReadOutcome::Data(bytes::Bytes::copy_from_slice(&id.to_le_bytes()))
        );
    }
}

#[test]
fn send_rate_limits_pace_the_data() {
    let t0 = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut acfg = config(&x, true, t0);
    acfg.limits_mut().stream_send_rate = 100_000;
    acfg.limits_mut().session_send_rate = 150_000;
    acfg.limits_mut().keepalive_interval = Duration::from_secs(3600);
    let (mut a, mut b) = pair(acfg, config(&y, false, t0), t0);
    let id = a.open_stream(None).unwrap();
    let total = 250_000usize;
    let mut queued = 0;
    let mut now = t0;
    let mut received = 0usize;
    // Simulated time: advance to each timer the sender asks for.
    for _ in 0..10_000 {
        if queued < total {
            queued += a.write(id, &vec![1u8; total - queued]).unwrap();
        }
        pump(&mut a, &mut b, now);
        while let ReadOutcome::Data(d) = b.read(id, 1 << 20).unwrap() {
            received += d.len();
        }
        if received == total {
            break;
        }
        match a.poll_timeout() {
            Some(t) if t > now => now = t,
            _ => now += Duration::from_millis(10),
        }
        a.handle_timeout(now);
    }
    assert_eq!(received, total);
    let elapsed = now - t0;
    // One second of burst, then 100 kB/s: at least ~1.5 s for 250 kB.
    assert!(elapsed >= Duration::from_millis(1400), "{elapsed:?}");
    assert!(elapsed <= Duration::from_secs(4), "{elapsed:?}");
}

#[test]
fn reset_reaches_the_peer_with_its_code() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let (mut a, mut b) = pair(config(&x, true, now), config(&y, false, now), now);
    let id = a.open_stream(None).unwrap();
    a.write(id, b"partial").unwrap();
    pump(&mut a, &mut b, now);
    a.reset(id, ErrorCode::Unknown(4242)).unwrap();
    pump(&mut a, &mut b, now);
    // Reset discards unread data and reports the code on both directions.
    assert_eq!(b.read(id, 100).unwrap_err().code, ErrorCode::Unknown(4242));
    assert_eq!(
        b.write(id, b"x").unwrap_err().code,
        ErrorCode::Unknown(4242)
    );
    assert_eq!(a.write(id, b"x").unwrap_err().code, ErrorCode::StreamClosed);
}

#[test]
fn idle_timeout_closes_gracefully_without_streams() {
    let t0 = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut acfg = config(&x, true, t0);
    acfg.limits_mut().idle_timeout = Some(Duration::from_secs(60));
    acfg.limits_mut().keepalive_interval = Duration::from_secs(3600);
    let (mut a, mut b) = pair(acfg, config(&y, false, t0), t0);
    a.handle_timeout(t0);
    pump(&mut a, &mut b, t0);
    let deadline = a.poll_timeout().unwrap();
    assert!(deadline <= t0 + Duration::from_secs(60));
    a.handle_timeout(t0 + Duration::from_secs(61));
    pump(&mut a, &mut b, t0 + Duration::from_secs(61));
    assert_eq!(a.error().unwrap().code, ErrorCode::Ok);
    assert_eq!(b.error().unwrap().code, ErrorCode::Ok);
}

#[test]
fn blocked_writer_is_woken_at_half_buffer_not_per_frame() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut acfg = config(&x, true, now);
    // A buffer within the peer's first window: all of it can drain without the reader
    // (the default buffer is larger than one window).
    acfg.limits_mut().stream_send_buffer = INITIAL_STREAM_WINDOW as usize;
    let cap = acfg.limits.stream_send_buffer;
    let (mut a, _b) = pair(acfg, config(&y, false, now), now);
    let id = a.open_stream(None).unwrap();
    let mut queued = 0;
    while queued < cap {
        queued += a.write(id, &[7u8; 65536]).unwrap();
    }
    assert_eq!(a.write(id, &[1]).unwrap(), 0, "the send buffer is full");
    drain_events(&mut a);
    let writable = |a: &mut Session| {
        drain_events(a)
            .iter()
            .any(|e| matches!(e, Event::StreamWritable(s) if *s == id))
    };
    // One frame at a time (max 1 byte: each call writes one frame).
    let mut out = Vec::new();
    a.poll_transmit(now, &mut out, 1);
    assert!(a.send_buffered_for_test(id) > cap / 2);
    assert!(
        !writable(&mut a),
        "woken while the buffer is more than half full"
    );
    for _ in 0..cap {
        if a.send_buffered_for_test(id) <= cap / 2 {
            break;
        }
        out.clear();
        a.poll_transmit(now, &mut out, 1);
    }
    assert!(
        a.send_buffered_for_test(id) <= cap / 2,
        "the buffer did not drain"
    );
    assert!(writable(&mut a), "not woken once the buffer is half empty");
}

/// The stream ids among `events` that became writable, in order.
fn writable_ids(events: Vec<Event>) -> Vec<u64> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::StreamWritable(id) => Some(id),
            _ => None,
        })
        .collect()
}

/// Reads stream `id` on `b` to its end.
fn read_to_end(b: &mut Session, id: u64) -> Vec<u8> {
    let mut got = Vec::new();
    loop {
        match b.read(id, 1 << 20).unwrap() {
            ReadOutcome::Data(d) => got.extend_from_slice(&d),
            ReadOutcome::Finished => return got,
            ReadOutcome::Blocked => panic!("stream {id} blocked before its end"),
        }
    }
}

#[test]
fn session_send_buffer_bounds_queued_bytes_and_serves_waiting_writers_in_order() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut acfg = config(&x, true, now);
    acfg.limits_mut().session_send_buffer = 128 * 1024;
    let (mut a, mut b) = pair(acfg, config(&y, false, now), now);
    const W: usize = 32 * 1024;
    let chunk = |i: usize| vec![i as u8 + 1; W];
    let ids: Vec<u64> = (0..8).map(|_| a.open_stream(None).unwrap()).collect();
    // Four writes fill the session's send buffer; the other streams wait (each stream's
    // own buffer would take 1 MiB).
    for (i, id) in ids.iter().enumerate() {
        let took = a.write(*id, &chunk(i)).unwrap();
        assert_eq!(took, if i < 4 { W } else { 0 }, "stream #{i}");
    }
    assert_eq!(a.session_send_queued_for_test(), 4 * W);
    drain_events(&mut a);
    // One frame at a time: nobody is woken before half the buffer has gone out.
    let mut wire = Vec::new();
    let mut woken = Vec::new();
    while woken.is_empty() {
        let before = wire.len();
        let mut frame = Vec::new();
        a.poll_transmit(now, &mut frame, 1);
        wire.extend_from_slice(&frame);
        assert!(
            wire.len() > before,
            "the machine stopped sending; queued {}",
            a.session_send_queued_for_test()
        );
        woken = writable_ids(drain_events(&mut a));
        // Streams whose own buffer drained hear of it too; only the waiters matter here.
        woken.retain(|id| ids[4..].contains(id));
        if woken.is_empty() {
            assert!(a.session_send_queued_for_test() > 2 * W);
        }
    }
    assert!(a.session_send_queued_for_test() <= 2 * W);
    assert_eq!(woken, ids[4..4 + woken.len()], "the oldest waiters first");
    // A writer that did not wait does not pass the ones still waiting.
    let late = a.open_stream(None).unwrap();
    assert_eq!(a.write(late, &[0xEE; 1024]).unwrap(), 0);
    // Serve every wake-up until everything is out; the bound holds throughout.
    let mut written: Vec<bool> = (0..8).map(|i| i < 4).collect();
    let mut late_written = false;
    let mut pending = woken;
    for _ in 0..1000 {
        for id in std::mem::take(&mut pending) {
            if id == late && !late_written {
                late_written = a.write(late, &[0xEE; 1024]).unwrap() == 1024;
            } else if let Some(i) = ids.iter().position(|&s| s == id) {
                if !written[i] {
                    written[i] = a.write(id, &chunk(i)).unwrap() == W;
                }
            }
        }
        assert!(a.session_send_queued_for_test() <= 128 * 1024);
        if written.iter().all(|w| *w) && late_written {
            break;
        }
        let before = wire.len();
        let mut frame = Vec::new();
        a.poll_transmit(now, &mut frame, 1);
        wire.extend_from_slice(&frame);
        pending = writable_ids(drain_events(&mut a));
        assert!(wire.len() > before || !pending.is_empty(), "stalled");
    }
    assert!(
        written.iter().all(|w| *w) && late_written,
        "a writer starved"
    );
    for id in ids.iter().chain([&late]) {
        a.finish(*id).unwrap();
    }
    let mut input = BytesMut::from(&wire[..]);
    b.handle_input(&mut input, now);
    pump(&mut a, &mut b, now);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(read_to_end(&mut b, *id), chunk(i), "stream #{i}");
    }
    assert_eq!(read_to_end(&mut b, late), vec![0xEE; 1024]);
}

#[test]
fn streams_stalled_on_credit_do_not_hold_up_the_session_send_buffer() {
    let now = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut acfg = config(&x, true, now);
    acfg.limits_mut().session_send_buffer = 64 * 1024;
    let cap = acfg.limits.stream_send_buffer;
    let (mut a, mut b) = pair(acfg, config(&y, false, now), now);
    // b never reads `stalled`: its window fills, then its own send buffer.
    let stalled = a.open_stream(None).unwrap();
    let mut sent = 0;
    for _ in 0..100 {
        sent += a.write(stalled, &[1u8; 64 * 1024]).unwrap();
        pump(&mut a, &mut b, now);
        if a.send_buffered_for_test(stalled) == cap {
            break;
        }
    }
    assert_eq!(
        a.send_buffered_for_test(stalled),
        cap,
        "the stalled stream filled up"
    );
    assert_eq!(
        a.session_send_queued_for_test(),
        0,
        "bytes without credit do not count"
    );
    // Another stream still gets the whole session buffer, and its bytes arrive.
    let other = a.open_stream(None).unwrap();
    assert_eq!(a.write(other, &[2u8; 64 * 1024]).unwrap(), 64 * 1024);
    a.finish(other).unwrap();
    pump(&mut a, &mut b, now);
    assert_eq!(read_to_end(&mut b, other), vec![2u8; 64 * 1024]);
    // Credit for the stalled stream: its bytes go out (and count while they wait).
    let mut got = 0;
    while got < sent {
        match b.read(stalled, 1 << 20).unwrap() {
            ReadOutcome::Data(d) => got += d.len(),
            _ => {
                pump(&mut a, &mut b, now);
            }
        }
    }
    assert_eq!(got, sent);
}

#[test]
fn room_offered_to_a_writer_that_went_away_lapses() {
    let t0 = Instant::now();
    let (x, y) = (side(1), side(2));
    let mut acfg = config(&x, true, t0);
    acfg.limits_mut().session_send_buffer = 64 * 1024;
    let (mut a, mut b) = pair(acfg, config(&y, false, t0), t0);
    let (s1, s2, s3) = (
        a.open_stream(None).unwrap(),
        a.open_stream(None).unwrap(),
        a.open_stream(None).unwrap(),
    );
    assert_eq!(a.write(s1, &[1u8; 64 * 1024]).unwrap(), 64 * 1024);
    assert_eq!(a.write(s2, &[2u8; 1024]).unwrap(), 0);
    assert_eq!(a.write(s3, &[3u8; 1024]).unwrap(), 0);
    drain_events(&mut a);
    pump(&mut a, &mut b, t0);
    // s2 was offered the room but its writer never comes back; s3 must not wait forever.
    let woken = writable_ids(drain_events(&mut a));
    assert!(woken.contains(&s2) && !woken.contains(&s3), "{woken:?}");
    // The machine's next deadlines (the first PING may come first) reach the lapse soon.
    let mut woken = false;
    for _ in 0..10 {
        let deadline = a.poll_timeout().expect("a deadline for the untaken offer");
        assert!(deadline <= t0 + Duration::from_millis(100));
        a.handle_timeout(deadline);
        woken = writable_ids(drain_events(&mut a)).contains(&s3);
        if woken {
            break;
        }
    }
    assert!(woken, "s3 still waits behind an offer nobody takes");
    assert_eq!(a.write(s3, &[3u8; 1024]).unwrap(), 1024);
}
