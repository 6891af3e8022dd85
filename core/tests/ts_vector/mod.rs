//! The recorded TypeScript session (`vectors/ts-session.json`) and the sans-IO steps the
//! TypeScript-profile tests drive it with.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use serde_json::Value;
use snap2p::testing::session_config;
use snap2p::unstable::{Clock, FixedRandomness, ReadOutcome, Session, SessionConfig};
use snap2p::{NodeKey, Principal, WireProfile};

pub fn vector() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/ts-session.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))).unwrap()
}

pub fn h32(v: &Value) -> [u8; 32] {
    hx(v).try_into().unwrap()
}

/// The recorded clock: the HELLOs' `ts` (both sides sent the same second).
pub fn recorded_unix(v: &Value) -> i64 {
    v["frames"][3]["cbor_json"]["ts"].as_i64().unwrap()
}

/// The session config of `side` ("dialer" or "listener") with the recorded keys,
/// randomness (ephemeral, HELLO nonce, session id) and clock.
pub fn config(v: &Value, side: &str, profile: WireProfile, base: Instant) -> SessionConfig {
    let p = &v["peers"][side];
    let initiator = side == "dialer";
    let node = NodeKey::from_seed(h32(&p["node_key_ed25519"]["private_seed_hex"]));
    assert_eq!(node.public(), h32(&p["node_key_ed25519"]["public_hex"]));
    assert_eq!(
        node.x25519_public(),
        h32(&p["noise_static_x25519"]["public_hex"])
    );
    let att = hx(&p["attestation"]["wire_cbor_hex"]);
    let principal = Principal::parse(p["principal"].as_str().unwrap()).unwrap();
    let clock = Clock {
        base,
        base_unix: recorded_unix(v),
    };
    let mut cfg = session_config(&node, Arc::new(att), principal, initiator, clock);
    let hello = if initiator { 3 } else { 4 };
    cfg.fixed = Some(Box::new(FixedRandomness {
        ephemeral: h32(&p["noise_ephemeral_x25519"]["private_hex"]),
        hello_nonce: h32(&v["frames"][hello]["cbor_json"]["n"]["$bytes"]),
        session_id: h32(&v["application"]["session_id_hex"]),
        knock_nonce: [0; 16],
    }));
    cfg.profile = profile;
    // The recorded exchange is v1 (the TypeScript implementation has no hs2, §5.8); under
    // the standard profile the recorded messages replay only without the offer.
    cfg.hs2 = false;
    cfg
}

/// The wire bytes of the recorded frames `idx`, concatenated.
pub fn frames(v: &Value, idx: &[usize]) -> Vec<u8> {
    idx.iter()
        .flat_map(|&i| hx(&v["frames"][i]["wire_hex"]))
        .collect()
}

pub fn feed(s: &mut Session, bytes: &[u8], now: Instant) {
    let mut buf = BytesMut::from(bytes);
    s.handle_input(&mut buf, now);
    assert!(s.error().is_none(), "{:?}", s.error());
    assert!(buf.is_empty(), "a partial frame is left");
}

/// What the session writes now (timers due at `now` run first).
pub fn out(s: &mut Session, now: Instant) -> Vec<u8> {
    if s.poll_timeout().is_some_and(|t| t <= now) {
        s.handle_timeout(now);
    }
    let mut o = Vec::new();
    s.poll_transmit(now, &mut o, 1 << 20);
    o
}

/// Asserts the session wrote exactly the recorded frames `idx` (named for the message).
#[track_caller]
pub fn expect(v: &Value, s: &mut Session, now: Instant, idx: &[usize]) {
    let got = out(s, now);
    let want = frames(v, idx);
    assert_eq!(
        hex::encode(&got),
        hex::encode(&want),
        "frames {idx:?} ({:?})",
        idx.iter()
            .map(|&i| v["frames"][i]["message_type"]
                .as_str()
                .or(v["frames"][i]["kind"].as_str())
                .unwrap_or("?"))
            .collect::<Vec<_>>()
    );
}

pub fn read_all(s: &mut Session, id: u64) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    loop {
        match s.read(id, 1 << 20).unwrap() {
            ReadOutcome::Data(d) => data.extend_from_slice(&d),
            ReadOutcome::Finished => return (data, true),
            ReadOutcome::Blocked => return (data, false),
        }
    }
}
