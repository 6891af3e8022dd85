//! Wire vectors: every control message's encoding, and a complete handshake transcript from
//! fixed keys, nonces, ephemerals and clock. The JSON under `core/tests/vectors/` is what
//! `docs/PROTOCOL.md` cites and what other implementations check against; this test
//! recomputes it and fails on any drift. `SNAP2P_WRITE_VECTORS=1` rewrites the files.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use serde_json::{json, Value};
use snap2p::identity::{LocalWallet, Network, NodeKey, NodeKeyAttestation};
use snap2p::policy::{NodePolicy, Visibility};
use snap2p::testing::session_config;
use snap2p::unstable::secure_channel::{rekey_key, seal_frame_with, TransportCipher};
use snap2p::unstable::wire::frame;
use snap2p::unstable::wire::message::{Auth, Hello, Message};
use snap2p::unstable::{Clock, FixedRandomness, Session, SessionConfig};
use snap2p::ErrorCode;

const VECTOR_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
const T0: i64 = 1_800_000_000;
const MNEMONIC_I: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art";
const MNEMONIC_R: &str = "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote";

fn check_or_write(name: &str, value: &Value) {
    let path = format!("{VECTOR_DIR}/{name}");
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var("SNAP2P_WRITE_VECTORS").is_ok() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{path} missing: run with SNAP2P_WRITE_VECTORS=1"));
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(&stored, value, "{name} drifted from the implementation");
}

fn message_vectors() -> Value {
    let cases: Vec<(&str, Value, Message<'static>)> = vec![
        (
            "HELLO",
            json!({"v":1,"pk":"01".repeat(32),"n":"02".repeat(32),"ts":T0,"vis":1,"cap":["flow-control","transcript-binding"]}),
            Message::Hello(Hello {
                version: 1,
                node_pubkey: &[1; 32],
                nonce: &[2; 32],
                timestamp: T0,
                visibility: Some(Visibility::Private),
                capabilities: vec!["flow-control", "transcript-binding"],
            }),
        ),
        (
            "AUTH",
            json!({"att":"aa".repeat(8),"hd":"","sn":"03".repeat(64),"hs":"04".repeat(64)}),
            Message::Auth(Auth {
                attestation: &[0xaa; 8],
                session_nonce: &[3; 64],
                handshake_sig: &[4; 64],
            }),
        ),
        (
            "AUTH_OK",
            json!({"p":"stacks:SP000000000000000000002Q6VF78","sid":"05".repeat(32)}),
            Message::AuthOk {
                principal: "stacks:SP000000000000000000002Q6VF78",
                session_id: &[5; 32],
            },
        ),
        (
            "AUTH_FAIL",
            json!({"ec":4,"r":"not on allowlist"}),
            Message::AuthFail {
                code: ErrorCode::NotAllowed,
                reason: Some("not on allowlist"),
            },
        ),
        (
            "OPEN_STREAM",
            json!({"sid":2,"l":"chat"}),
            Message::OpenStream {
                stream_id: 2,
                label: Some("chat"),
            },
        ),
        (
            "CLOSE_STREAM",
            json!({"sid":3,"ec":20}),
            Message::CloseStream {
                stream_id: 3,
                code: ErrorCode::StreamRefused,
            },
        ),
        (
            "CLOSE_STREAM (graceful)",
            json!({"sid":3}),
            Message::CloseStream {
                stream_id: 3,
                code: ErrorCode::Ok,
            },
        ),
        (
            "STREAM_DATA",
            json!({"sid":2,"d":"68656c6c6f"}),
            Message::StreamData {
                stream_id: 2,
                data: b"hello",
                fin: false,
            },
        ),
        (
            "STREAM_DATA (fin)",
            json!({"sid":2,"d":"","f":true}),
            Message::StreamData {
                stream_id: 2,
                data: b"",
                fin: true,
            },
        ),
        (
            "WINDOW_UPDATE",
            json!({"sid":2,"c":131072}),
            Message::WindowUpdate {
                stream_id: 2,
                credit: 131072,
            },
        ),
        (
            "PING",
            json!({"seq":1,"ts":T0}),
            Message::Ping {
                seq: 1,
                timestamp: T0,
            },
        ),
        (
            "PONG",
            json!({"seq":1,"ts":T0}),
            Message::Pong {
                seq: 1,
                timestamp: T0,
            },
        ),
        (
            "KNOCK",
            json!({"v":1,"kn":"06".repeat(16),"it":"07".repeat(32)}),
            Message::Knock {
                version: 1,
                nonce: &[6; 16],
                token: &[7; 32],
            },
        ),
        (
            "KNOCK_RESPONSE",
            json!({"a":true}),
            Message::KnockResponse {
                accepted: true,
                hs2: false,
            },
        ),
        (
            "KNOCK_RESPONSE",
            json!({"a":true,"h2":true}),
            Message::KnockResponse {
                accepted: true,
                hs2: true,
            },
        ),
        ("REKEY", json!({"n":1}), Message::Rekey { n: 1 }),
        (
            "ALIAS_CARD",
            json!({"c":"08".repeat(4)}),
            Message::AliasCard { card: &[8; 4] },
        ),
        (
            "ERROR",
            json!({"ec":0,"r":"bye"}),
            Message::Error {
                code: ErrorCode::Ok,
                reason: Some("bye"),
            },
        ),
    ];
    let mut out = Vec::new();
    for (name, fields, msg) in cases {
        let bytes = msg.to_vec();
        // Decoding gives the same message back.
        assert_eq!(Message::decode(&bytes).unwrap(), msg, "{name}");
        let mut framed = Vec::new();
        frame::write_frame(&mut framed, &bytes);
        // The wire type of every key, read from the encoding itself.
        let decoded = snap2p::unstable::wire::cbor::decode(&bytes).unwrap();
        let mut types = serde_json::Map::new();
        let mut t = None;
        for (k, v) in decoded.as_map().unwrap() {
            use snap2p::unstable::wire::cbor::Value as C;
            let ty = match v {
                C::Uint(n) if *k == "t" => {
                    t = Some(*n);
                    continue;
                }
                C::Uint(_) if *k == "ts" => "int",
                C::Uint(_) => "uint",
                C::Nint(_) => "int",
                C::Bytes(_) => "bytes",
                C::Text(_) => "text",
                C::Bool(_) => "bool",
                C::Array(_) => "array of text",
                other => panic!("{name}: unexpected {other:?}"),
            };
            types.insert(k.to_string(), json!(ty));
        }
        out.push(json!({
            "name": name,
            "t": t.expect("every message has t"),
            "fields": fields,
            "types": types,
            "cbor_hex": hex::encode(&bytes),
            "frame_hex": hex::encode(&framed),
        }));
    }
    json!({
        "description": "Control message encodings (docs/PROTOCOL.md §4). `t` is the type code (the CBOR key `t`); `fields` holds every other key, and `types` gives each one's CBOR type: uint, int, bytes (hex in `fields`), text, bool, array of text. `sid` is a uint stream id in stream messages and a bytes(32) session id in AUTH_OK (two messages, one key name). `frame_hex` is the message as one plaintext frame (varint length prefix); after the handshake messages travel inside Noise transport frames instead. Schema: schema/messages.schema.json.",
        "format_version": 2,
        "messages": out,
        "decode": decode_cases(),
    })
}

/// Inputs with the result a receiver must reach (PROTOCOL.md §2, §4): the rules where a
/// second implementation would otherwise guess.
fn decode_cases() -> Value {
    let nest = |levels: usize, inner: &str| format!("{}{inner}", "81".repeat(levels));
    let cases: Vec<(&str, String, Option<ErrorCode>, &str)> = vec![
        (
            "stream_data_without_d",
            "a26373696402617412".into(),
            None,
            "STREAM_DATA{sid: 2}: `d` absent is empty data",
        ),
        (
            "stream_data_fin_without_d",
            "a36166f56373696402617412".into(),
            None,
            "STREAM_DATA{sid: 2, f: true}: a clean FIN",
        ),
        (
            "knock_kn_8_bytes",
            "a462697458207777777777777777777777777777777777777777777777777777777777777777626b6e48060606060606060661741830617601".into(),
            Some(ErrorCode::InvalidMessage),
            "KNOCK with an 8-byte `kn`: invalid (16..32 bytes or absent)",
        ),
        (
            "knock_without_kn",
            "a36269745820777777777777777777777777777777777777777777777777777777777777777761741830617601".into(),
            None,
            "KNOCK without `kn` (the TypeScript reference's): accepted",
        ),
        (
            "depth_8",
            nest(8, "01"),
            None,
            "an integer inside 8 arrays: depth 8, accepted by the CBOR layer (not a message)",
        ),
        (
            "depth_9",
            nest(9, "01"),
            Some(ErrorCode::InvalidMessage),
            "an integer inside 9 arrays: depth 9, rejected",
        ),
        (
            "depth_9_empty",
            nest(8, "80"),
            None,
            "9 nested arrays, the innermost empty: no item at depth 9, accepted by the CBOR layer",
        ),
    ];
    let mut out = Vec::new();
    for (name, hex_in, want, note) in cases {
        let bytes = hex::decode(&hex_in).unwrap();
        let got = if name.starts_with("depth") {
            snap2p::unstable::wire::cbor::decode(&bytes)
                .map(|_| ())
                .map_err(|_| ErrorCode::InvalidMessage)
        } else {
            Message::decode(&bytes).map(|_| ()).map_err(|e| e.code)
        };
        assert_eq!(got.err(), want, "{name}");
        out.push(json!({
            "name": name,
            "cbor_hex": hex_in,
            "layer": if name.starts_with("depth") { "cbor" } else { "message" },
            "error": want.map(|c| c.name()),
            "note": note,
        }));
    }
    Value::Array(out)
}

#[test]
fn control_message_vectors() {
    check_or_write("messages.json", &message_vectors());
}

struct Party {
    wallet: LocalWallet,
    node: NodeKey,
    att: NodeKeyAttestation,
    fixed: FixedRandomness,
}

fn party(mnemonic: &str, seed: u8) -> Party {
    let wallet = LocalWallet::from_mnemonic(mnemonic, 0, Network::Mainnet).unwrap();
    let node = NodeKey::from_seed([seed; 32]);
    let att = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(NodeKeyAttestation::issue_with_nonce(
            &wallet,
            node.public(),
            T0,
            86_400,
            vec![seed.wrapping_add(0x40); 32],
        ))
        .unwrap();
    Party {
        wallet,
        node,
        att,
        fixed: FixedRandomness {
            ephemeral: [seed.wrapping_add(0x10); 32],
            hello_nonce: [seed.wrapping_add(0x20); 32],
            session_id: [seed.wrapping_add(0x30); 32],
            knock_nonce: [seed.wrapping_add(0x50); 16],
        },
    }
}

fn config(
    p: &Party,
    initiator: bool,
    base: Instant,
    policy: Option<Arc<NodePolicy>>,
) -> SessionConfig {
    let clock = Clock {
        base,
        base_unix: T0,
    };
    let att = Arc::new(p.att.encode());
    let mut cfg = session_config(&p.node, att, p.wallet.principal(), initiator, clock);
    cfg.visibility = policy
        .as_ref()
        .map(|p| p.visibility)
        .unwrap_or(Visibility::Public);
    cfg.policy = policy;
    cfg.fixed = Some(Box::new(p.fixed.clone()));
    // Pinned, not the CPU's: `aes-gcm` is listed by default only where AES runs in
    // hardware, and the vectors must be the same bytes on every machine.
    snap2p::testing::set_aes_gcm(&mut cfg, false);
    cfg
}

/// What a recorded session varies from the public handshake (`Recording::default()`).
#[derive(Clone, Copy, Default)]
struct Recording {
    /// A stealth listener, reached with a KNOCK.
    stealth: bool,
    /// (initiator, responder): each side rekeys its sending direction after that many
    /// frames, and the initiator writes a second message before its FIN.
    rekey_frames: Option<(u64, u64)>,
    /// Both sides list `aes-gcm` (§7.2).
    aes_gcm: bool,
    /// Both sides list `transcript-binding` (binding 2, §5.5; off by default).
    binding2: bool,
    /// The dialer offers hs2 (§5.8) and the listener accepts; otherwise v1.
    hs2: bool,
}

/// Runs a handshake (and a first stream) as `r` says and records every flight of bytes.
fn transcript(r: Recording) -> Value {
    let Recording {
        stealth,
        rekey_frames,
        aes_gcm,
        binding2,
        hs2,
    } = r;
    let base = Instant::now();
    let (pi, pr) = (party(MNEMONIC_I, 1), party(MNEMONIC_R, 2));
    let token = [0x77u8; 32];
    let policy = if stealth {
        let mut p = NodePolicy::new(Visibility::Stealth);
        p.allowlist_gate = false;
        p.invites.add(token.to_vec(), T0 + 3600, false, T0).unwrap();
        Some(Arc::new(p))
    } else {
        Some(Arc::new(NodePolicy::new(Visibility::Public)))
    };
    let mut icfg = config(&pi, true, base, None);
    if stealth {
        icfg.invite_token = Some(token.to_vec());
    }
    let mut rcfg = config(&pr, false, base, policy);
    for cfg in [&mut icfg, &mut rcfg] {
        snap2p::testing::set_aes_gcm(cfg, aes_gcm);
        cfg.hs2 = hs2;
        if binding2 {
            // Off by default (docs/PROTOCOL.md §5.4): listed by both, after the defaults.
            cfg.capabilities
                .push(snap2p::unstable::wire::message::caps::TRANSCRIPT_BINDING.to_string());
        }
    }
    if let Some((i, r)) = rekey_frames {
        icfg.limits_mut().rekey_after_frames = i;
        rcfg.limits_mut().rekey_after_frames = r;
    }
    let (ihello, rhello) = (
        party_json(&pi, MNEMONIC_I, &icfg),
        party_json(&pr, MNEMONIC_R, &rcfg),
    );
    let mut a = Session::new(icfg, base).unwrap();
    let mut b = Session::new(rcfg, base).unwrap();
    let mut flights = Vec::new();
    let mut stream_sent = false;
    let mut second_sent = rekey_frames.is_none();
    for _ in 0..20 {
        let mut moved = false;
        for initiator_turn in [true, false] {
            let (from, s, t) = if initiator_turn {
                ("initiator", &mut a, &mut b)
            } else {
                ("responder", &mut b, &mut a)
            };
            let mut buf = Vec::new();
            s.poll_transmit(base, &mut buf, 1 << 20);
            if buf.is_empty() {
                continue;
            }
            moved = true;
            let mut frames = Vec::new();
            let mut rest = BytesMut::from(&buf[..]);
            while let Some(f) = frame::next_frame(&mut rest, frame::MAX_TRANSPORT_FRAME).unwrap() {
                frames.push(hex::encode(&f));
            }
            flights.push(
                json!({"from": from, "bytes_hex": hex::encode(&buf), "frame_payloads_hex": frames}),
            );
            t.handle_input(&mut BytesMut::from(&buf[..]), base);
        }
        if a.is_established() && b.is_established() && !stream_sent {
            let id = a.open_stream(Some("echo")).unwrap();
            a.write(id, b"hello").unwrap();
            if rekey_frames.is_none() {
                a.finish(id).unwrap();
            }
            stream_sent = true;
            moved = true;
        } else if stream_sent && !second_sent && !moved {
            a.write(0, b" again").unwrap();
            a.finish(0).unwrap();
            second_sent = true;
            moved = true;
        }
        if !moved {
            break;
        }
    }
    assert!(a.is_established() && b.is_established());
    assert!(a.error().is_none() && b.error().is_none());
    if rekey_frames.is_some() {
        // Both directions switched at least once, and each side heard every REKEY.
        let (ia, ib) = (a.info(), b.info());
        assert!(ia.rekeys_sent >= 1 && ib.rekeys_sent >= 1);
        assert_eq!(
            (ia.rekeys_sent, ib.rekeys_sent),
            (ib.rekeys_received, ia.rekeys_received)
        );
        b.accept_stream().unwrap();
        let mut got = Vec::new();
        while let Ok(snap2p::unstable::ReadOutcome::Data(d)) = b.read(0, 1024) {
            got.extend_from_slice(&d);
        }
        assert_eq!(got, b"hello again");
    }
    json!({
        "stealth": stealth,
        "invite_token_hex": if stealth { hex::encode(token) } else { String::new() },
        "unix_time": T0,
        "initiator": ihello,
        "responder": rhello,
        "session_id_hex": hex::encode(pr.fixed.session_id),
        "flights": flights,
        "note": "After the initiator's AUTH_OK it opens stream 0 labelled 'echo', writes 'hello' and FIN. Transport frames are ChaCha20-Poly1305 under the Noise Split() keys; decrypting them with the keys derived from the listed static and ephemeral secrets reproduces the control messages of docs/PROTOCOL.md §5.",
    })
}

fn party_json(p: &Party, mnemonic: &str, cfg: &SessionConfig) -> Value {
    let att = &p.att;
    json!({
        "hello": {
            "v": 1,
            "pk_hex": hex::encode(p.node.public()),
            "n_hex": hex::encode(p.fixed.hello_nonce),
            "ts": cfg.clock.base_unix,
            "vis": match cfg.visibility {
                Visibility::Stealth => Value::Null,
                v => json!(v as u8),
            },
            "cap": cfg.capabilities,
        },
        "attestation": {
            "issued_at": att.issued_at,
            "expires_at": att.expires_at,
            "nonce_hex": hex::encode(&att.nonce),
            "form": if att.form == snap2p::identity::SignatureForm::Digest { "digest" } else { "stacks_message" },
        },
        "mnemonic": mnemonic,
        "principal": p.wallet.principal().to_string(),
        "node_seed_hex": hex::encode(p.node.seed()),
        "node_pubkey_hex": hex::encode(p.node.public()),
        "noise_static_secret_hex": hex::encode(p.node.x25519_secret()),
        "noise_ephemeral_secret_hex": hex::encode(p.fixed.ephemeral),
        "hello_nonce_hex": hex::encode(p.fixed.hello_nonce),
        "knock_nonce_hex": hex::encode(p.fixed.knock_nonce),
        "attestation_hex": hex::encode(p.att.encode()),
    })
}

#[test]
fn handshake_transcript_vectors() {
    let v = json!({
        "description": "Complete handshakes from fixed keys, ephemerals, nonces and clock (docs/PROTOCOL.md §5). Reproducible byte for byte. Each party lists what its encrypted messages carry, so nothing must be recovered by decrypting: `hello` (HELLO's keys: `v`, `pk_hex`, `n_hex`, `ts`, `vis` (null: omitted, a stealth node), `cap` in the order sent) and `attestation` (issued_at, expires_at, nonce, form) besides the encoded attestation. Schema: schema/handshake.schema.json.",
        "format_version": 2,
        "public": transcript(Recording::default()),
        "stealth": transcript(Recording {
            stealth: true,
            ..Recording::default()
        }),
        "public_aes_gcm": transcript(Recording {
            aes_gcm: true,
            ..Recording::default()
        }),
        "public_transcript_binding": transcript(Recording {
            binding2: true,
            ..Recording::default()
        }),
        "public_hs2": transcript(Recording {
            hs2: true,
            ..Recording::default()
        }),
        "public_hs2_note": "The public handshake in hs2, the two-round-trip exchange (docs/PROTOCOL.md §5.8): Noise message 1's payload is the one byte 0x02 (message 1 is 33 bytes), message 2's payload is the responder's HELLO and message 3's the initiator's (encrypted by Noise, ChaChaPoly), and AUTH_I is the initiator's first transport message, in the same flight as message 3. Transport counters start at 0 with AUTH.",
        "stealth_hs2_aes_gcm": transcript(Recording {
            stealth: true,
            aes_gcm: true,
            hs2: true,
            ..Recording::default()
        }),
        "stealth_hs2_aes_gcm_note": "The stealth handshake (KNOCK first) in hs2 with both sides listing `aes-gcm`: as public_hs2 after the KNOCK_RESPONSE, and, no HELLO being a transport message, every transport frame of both directions is AES-256-GCM under REKEY(k) from counter 0 (docs/PROTOCOL.md §5.8, §7.2).",
        "public_transcript_binding_note": "The public handshake with both sides also listing `transcript-binding` (binding 2, docs/PROTOCOL.md §5.5; off by default): each AUTH carries `sn` = n_I || n_R and `hs` = Ed25519-Sign(node key, \"snap2p-session-binding-v1\" || role || h || n_I || n_R), role 0x49 in the initiator's AUTH and 0x52 in the responder's, h the Noise handshake hash after message 3. In the other sessions AUTH carries neither.",
        "public_aes_gcm_note": "The public handshake with both sides also listing `aes-gcm` (docs/PROTOCOL.md §7.2): each direction's HELLO (counter 0) is ChaChaPoly under its Split() key k; every later frame of that direction is AES-256-GCM under REKEY(k) (32 zero bytes sealed by ChaCha20-Poly1305 under k at nonce 00000000 || ffffffffffffffff, tag dropped), nonce 00000000 || counter as a u64 big-endian, the counter going on (1, 2, ...).",
    });
    // Deterministic: a second run gives the same bytes.
    assert_eq!(
        v["public"]["flights"],
        transcript(Recording::default())["flights"]
    );
    assert_eq!(
        v["public_aes_gcm"]["flights"],
        transcript(Recording {
            aes_gcm: true,
            ..Recording::default()
        })["flights"]
    );
    // The two differ from the first frame after the HELLOs on.
    assert_ne!(v["public"]["flights"], v["public_aes_gcm"]["flights"]);
    // hs2: message 1 is the offer, and the dialer's second flight carries message 3 and
    // AUTH_I; the listener is done in two flights of the handshake where v1 takes three.
    for s in ["public_hs2", "stealth_hs2_aes_gcm"] {
        let flights = v[s]["flights"].as_array().unwrap();
        let first_noise = if s.starts_with("stealth") { 2 } else { 0 };
        let m1 = flights[first_noise]["frame_payloads_hex"][0]
            .as_str()
            .unwrap();
        assert_eq!(m1.len(), 2 * 33, "{s}");
        assert!(m1.ends_with("02"), "{s}");
        let m3_flight = flights[first_noise + 2]["frame_payloads_hex"]
            .as_array()
            .unwrap();
        assert_eq!(m3_flight.len(), 2, "{s}: message 3 and AUTH_I together");
    }
    // Binding 2 only where both list it.
    let lists = |s: &str, p: &str| {
        v[s][p]["hello"]["cap"]
            .as_array()
            .unwrap()
            .contains(&json!("transcript-binding"))
    };
    for p in ["initiator", "responder"] {
        assert!(!lists("public", p) && lists("public_transcript_binding", p));
    }
    check_or_write("handshake.json", &v);
}

/// Test keys: all zeros, all 0xff, and 00 01 02 … 1f.
fn rekey_test_keys() -> Vec<(&'static str, [u8; 32])> {
    let mut counting = [0u8; 32];
    for (i, b) in counting.iter_mut().enumerate() {
        *b = i as u8;
    }
    vec![
        ("zeros", [0u8; 32]),
        ("ones", [0xffu8; 32]),
        ("counting", counting),
    ]
}

/// REKEY (docs/PROTOCOL.md §7.1): `REKEY(k)` of fixed keys, chained, and the first frame
/// each new key seals; then a whole session in which both directions switch.
fn rekey_vectors() -> Value {
    let mut keys = Vec::new();
    for (name, key) in rekey_test_keys() {
        let mut chain = Vec::new();
        let mut k = key;
        // A REKEY{n} frame is the last under the old key at nonce `nonce`; the next frame
        // (a STREAM_DATA here) is the first under the new key, at nonce + 1.
        let mut nonce = 5u64;
        for n in 1..=3u64 {
            let rekey_msg = Message::Rekey { n }.to_vec();
            let rekey_frame =
                seal_frame_with(TransportCipher::ChaChaPoly, &k, nonce, &rekey_msg).unwrap();
            let next = rekey_key(TransportCipher::ChaChaPoly, &k).unwrap();
            let data = Message::StreamData {
                stream_id: 0,
                data: b"after rekey",
                fin: false,
            }
            .to_vec();
            let data_frame =
                seal_frame_with(TransportCipher::ChaChaPoly, &next, nonce + 1, &data).unwrap();
            chain.push(json!({
                "key_hex": hex::encode(k),
                "rekey_nonce": nonce,
                "rekey_plaintext_hex": hex::encode(&rekey_msg),
                "rekey_frame_hex": hex::encode(&rekey_frame),
                "rekeyed_key_hex": hex::encode(next),
                "next_nonce": nonce + 1,
                "next_plaintext_hex": hex::encode(&data),
                "next_frame_hex": hex::encode(&data_frame),
            }));
            k = next;
            nonce += 2;
        }
        keys.push(json!({"name": name, "chain": chain}));
    }
    json!({
        "description": "Noise rekey of a ChaChaPoly transport key (docs/PROTOCOL.md §7.1): rekeyed_key = the first 32 bytes of ChaCha20-Poly1305-Encrypt(key, nonce = 00000000 || ffffffffffffffff, ad = empty, plaintext = 32 zero bytes). Each chain step: the REKEY{n} control message sealed as the last frame under `key` at `rekey_nonce`, then the first frame under `rekeyed_key` at `next_nonce` (the counter is not reset). Frames are varint(len) || ciphertext || tag; nonces are 4 zero bytes || u64 little-endian.",
        "keys": keys,
        "session": transcript(Recording {
            rekey_frames: Some((3, 2)),
            ..Recording::default()
        }),
        "aes_gcm_session": transcript(Recording {
            rekey_frames: Some((2, 1)),
            aes_gcm: true,
            ..Recording::default()
        }),
        "aes_gcm_session_note": "The same session, the initiator rekeying after 2 frames and the responder after 1 (the switch to AES-256-GCM starts a new key, so its count starts again), with both sides listing `aes-gcm` (docs/PROTOCOL.md §7.2): after each direction's HELLO its frames are AES-256-GCM (big-endian nonce), and each REKEY switches to AESGCM's REKEY(k) = the first 32 bytes of AES-256-GCM-Encrypt(k, 00000000 || ffffffffffffffff, empty, 32 zero bytes).",
        "session_note": "The public handshake of handshake.json with the initiator rekeying after 3 transport frames and the responder after 2 (the sender decides; these thresholds are local and not on the wire). The initiator writes 'hello' on stream 0 with its AUTH_OK, then ' again' and FIN. Every REKEY frame is the last under its key; decrypting each direction's frames in order, switching to REKEY(k) after each REKEY, reproduces the control messages.",
    })
}

#[test]
fn rekey_vectors_match() {
    let v = rekey_vectors();
    assert_eq!(
        v["session"]["flights"],
        rekey_vectors()["session"]["flights"]
    );
    check_or_write("rekey.json", &v);
}
