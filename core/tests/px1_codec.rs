//! PX-1 codec: byte vectors (core/tests/vectors/px1.json, generated independently of this
//! crate), round trips, and hostile input that must end in typed errors.

use snap2p::px1::codec::{parse_locator, FrameReader, Px1Message};
use snap2p::px1::{MAX_LOCATORS_PER_MESSAGE, MAX_MESSAGE_LEN};
use snap2p::{ErrorCode, Locator, Principal};

fn vectors() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/px1.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn locators(v: &serde_json::Value) -> Vec<Locator> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().parse().unwrap())
        .collect()
}

fn message(v: &serde_json::Value) -> Px1Message {
    let principal = || Principal::parse(v["principal"].as_str().unwrap()).unwrap();
    match v["type"].as_str().unwrap() {
        "PX_RESOLVE_REQ" => Px1Message::ResolveReq {
            principal: principal(),
            max_results: v.get("max_results").map(|n| n.as_u64().unwrap()),
        },
        "PX_RESOLVE_RESP" => Px1Message::ResolveResp {
            locators: locators(&v["locators"]),
        },
        "PX_PUSH" => Px1Message::Push {
            principal: principal(),
            locators: locators(&v["locators"]),
            ttl_seconds: v["ttl_seconds"].as_u64().unwrap(),
        },
        other => panic!("unknown vector type {other}"),
    }
}

/// Feeds `bytes` to a reader one byte at a time (the worst split) and returns the first
/// message or error.
fn read_bytewise(bytes: &[u8]) -> Result<Option<Px1Message>, snap2p::Error> {
    let mut r = FrameReader::new();
    for b in bytes {
        r.push(std::slice::from_ref(b));
        if let Some(m) = r.next_message()? {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

#[test]
fn valid_vectors_encode_and_decode_exactly() {
    let v = vectors();
    let valid = v["valid"].as_array().unwrap();
    assert!(valid.len() >= 5);
    for case in valid {
        let name = case["name"].as_str().unwrap();
        let msg = message(&case["message"]);
        let frame = hex::decode(case["frame_hex"].as_str().unwrap()).unwrap();
        let mut out = Vec::new();
        msg.encode_frame(&mut out).unwrap();
        assert_eq!(hex::encode(&out), hex::encode(&frame), "encoding of {name}");
        assert_eq!(
            read_bytewise(&frame).unwrap(),
            Some(msg.clone()),
            "decoding of {name}"
        );
        // The same bytes in one chunk, followed by a second copy: two messages.
        let mut r = FrameReader::new();
        r.push(&frame);
        r.push(&frame);
        assert_eq!(r.next_message().unwrap(), Some(msg.clone()));
        assert_eq!(r.next_message().unwrap(), Some(msg));
        assert_eq!(r.next_message().unwrap(), None);
        assert_eq!(r.buffered(), 0);
    }
}

#[test]
fn decode_only_vectors_ignore_unknown_keys_and_bad_locators() {
    let v = vectors();
    for case in v["decode_only"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let frame = hex::decode(case["frame_hex"].as_str().unwrap()).unwrap();
        let want = message(&case["message"]);
        assert_eq!(read_bytewise(&frame).unwrap(), Some(want), "{name}");
    }
}

#[test]
fn invalid_vectors_fail_with_their_code() {
    let v = vectors();
    let invalid = v["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 15);
    for case in invalid {
        let name = case["name"].as_str().unwrap();
        let frame = hex::decode(case["frame_hex"].as_str().unwrap()).unwrap();
        let want = case["error"].as_str().unwrap();
        let mut r = FrameReader::new();
        r.push(&frame);
        match r.next_message() {
            Err(e) => assert_eq!(e.code.name(), want, "{name}: {e}"),
            Ok(m) => panic!("{name}: expected {want}, got {m:?}"),
        }
    }
}

#[test]
fn limits_are_enforced_on_encode_too() {
    let p = Principal::parse("stacks:SP21S6DAZN9ZS8EH8NVV2T0HVJ2K7VMKMSCW0596V").unwrap();
    let many: Vec<Locator> = (0..=MAX_LOCATORS_PER_MESSAGE)
        .map(|i| format!("10.0.0.{i}:1").parse().unwrap())
        .collect();
    let err = Px1Message::ResolveResp {
        locators: many.clone(),
    }
    .encode_frame(&mut Vec::new())
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::MessageTooLarge);
    // The largest legal message (16 longest host names) fits the limit.
    let label = "a".repeat(63);
    let host = format!("{label}.{label}.{label}.{}", "b".repeat(61));
    assert_eq!(host.len(), 253);
    let longest: Vec<Locator> = (0..MAX_LOCATORS_PER_MESSAGE)
        .map(|i| format!("{host}:{}", 60000 + i).parse().unwrap())
        .collect();
    let msg = Px1Message::Push {
        principal: p,
        locators: longest,
        ttl_seconds: u64::MAX,
    };
    let mut out = Vec::new();
    msg.encode_frame(&mut out).unwrap();
    assert!(out.len() <= MAX_MESSAGE_LEN + 2);
    assert_eq!(read_bytewise(&out).unwrap(), Some(msg));
}

#[test]
fn locator_validation() {
    for ok in [
        "1.2.3.4:1",
        "[2001:db8::1]:443",
        "node.example.com:9000",
        "127.0.0.1:9",
        // Other transports, known or not, are carried (a newer peer may dial them).
        "ws://1.2.3.4:80/snap2p",
        "wss://node.example.com:443",
        "http://x:1",
        "quic://1.2.3.4:4433",
    ] {
        assert!(parse_locator(ok).is_some(), "{ok}");
        assert_eq!(
            parse_locator(ok).unwrap().to_string(),
            ok,
            "{ok} round-trips"
        );
    }
    for bad in [
        "0.0.0.0:9000",
        "[::]:9000",
        "224.0.0.1:5",
        "[ff02::1]:5",
        "255.255.255.255:5",
        "1.2.3.4:0",
        "1.2.3.4",
        "::1:80",
        "ws://0.0.0.0:80",
        "HTTP://x:1",
        "tcp://1.2.3.4:1/path",
        " 1.2.3.4:1",
        "",
    ] {
        assert!(parse_locator(bad).is_none(), "{bad}");
    }
    assert!(parse_locator(&format!("{}:1", "a".repeat(300))).is_none());
}

/// Deterministic pseudo-random garbage: decoding never panics, and memory stays bounded
/// by one frame whatever the bytes.
#[test]
fn garbage_never_panics() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let v = vectors();
    let valid: Vec<Vec<u8>> = v["valid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| hex::decode(c["frame_hex"].as_str().unwrap()).unwrap())
        .collect();
    for i in 0..20_000 {
        let mut bytes = if i % 2 == 0 {
            // Mutations of valid frames reach deep into the decoder.
            let mut b = valid[i % valid.len()].clone();
            for _ in 0..(1 + next() % 4) {
                let pos = (next() as usize) % b.len();
                b[pos] = next() as u8;
            }
            b
        } else {
            let len = (next() % 64) as usize;
            (0..len).map(|_| next() as u8).collect()
        };
        if i % 7 == 0 {
            bytes.truncate((next() as usize) % (bytes.len() + 1));
        }
        let mut r = FrameReader::new();
        r.push(&bytes);
        for _ in 0..4 {
            match r.next_message() {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        assert!(r.buffered() <= bytes.len());
        let _ = Px1Message::decode(&bytes);
    }
}
