//! An authenticated session (listener side) fed arbitrary traffic by its authenticated
//! peer. The pair is established in memory with fixed keys; a shadow of the dialer's
//! Noise transport then encrypts arbitrary control messages (structured, in batches),
//! arbitrary plaintexts, or injects raw unencrypted bytes, while the clock moves and the
//! listener's application reads, writes and accepts.
//!
//! Invariants: no panic; never an `Internal` error code of our own (that would be a bug,
//! not hostile input; the peer may close with any code it likes, Internal included); unencrypted or tampered frames close the session instead of being delivered;
//! the receive buffers stay bounded by the windows; after the first error the session
//! stays closed and silent.
#![no_main]
use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use snap2p::unstable::wire::message::{Auth, Hello, Message, Visibility};
use snap2p::unstable::{Event, ReadOutcome};
use snap2p::ErrorCode;
use std::time::Duration;

#[derive(Arbitrary, Debug)]
enum Msg {
    Hello {
        v: u8,
        ts: i32,
        caps: Vec<String>,
    },
    Auth {
        att: Vec<u8>,
        sn: Vec<u8>,
        sig: Vec<u8>,
    },
    AuthOk {
        principal: String,
        sid: Vec<u8>,
    },
    AuthFail {
        code: u16,
    },
    Open {
        id: u16,
        label: Option<String>,
    },
    Close {
        id: u16,
        code: u16,
    },
    Data {
        id: u16,
        len: u16,
        fin: bool,
    },
    Window {
        id: u16,
        credit: u64,
    },
    Ping {
        seq: u64,
        ts: i64,
    },
    Pong {
        seq: u64,
        ts: i64,
    },
    /// Hostile REKEYs: any `n`, anywhere in a batch, without the shadow switching.
    Rekey {
        n: u64,
    },
    Knock {
        token: Vec<u8>,
    },
    KnockResponse {
        a: bool,
        h2: bool,
    },
    AliasCard {
        card: Vec<u8>,
    },
    Error {
        code: u16,
    },
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// One transport frame holding these messages.
    Batch(Vec<Msg>),
    /// One transport frame with arbitrary plaintext.
    Plain(Vec<u8>),
    /// Raw bytes, not encrypted.
    Raw(Vec<u8>),
    /// A valid frame with one ciphertext bit flipped.
    Tamper {
        msg: Msg,
        bit: u16,
    },
    Advance {
        ms: u16,
    },
    Read {
        id: u16,
        max: u16,
    },
    Write {
        id: u16,
        len: u16,
    },
    Accept,
    Open,
    /// A correct rekey of the dialer's direction: REKEY{next n} alone in a frame under the
    /// shadow's current key, then the shadow switches (docs/PROTOCOL.md §7.1).
    Rekey,
}

fn code(c: u16) -> ErrorCode {
    ErrorCode::from_u64(c as u64)
}

fn encode(m: &Msg, scratch: &[u8]) -> Vec<u8> {
    let caps_owned: Vec<String>;
    let msg = match m {
        Msg::Hello { v, ts, caps } => {
            caps_owned = caps.clone();
            Message::Hello(Hello {
                version: *v as u64,
                node_pubkey: &scratch[..32],
                nonce: &scratch[32..64],
                timestamp: snap2p_fuzz::T0_UNIX + *ts as i64,
                visibility: Some(Visibility::Public),
                capabilities: caps_owned.iter().map(|s| s.as_str()).collect(),
            })
        }
        Msg::Auth { att, sn, sig } => Message::Auth(Auth {
            attestation: att,
            session_nonce: sn,
            handshake_sig: sig,
        }),
        Msg::AuthOk { principal, sid } => Message::AuthOk {
            principal,
            session_id: sid,
        },
        Msg::AuthFail { code: c } => Message::AuthFail {
            code: code(*c),
            reason: None,
        },
        Msg::Open { id, label } => Message::OpenStream {
            stream_id: *id as u64,
            label: label.as_deref(),
        },
        Msg::Close { id, code: c } => Message::CloseStream {
            stream_id: *id as u64,
            code: code(*c),
        },
        Msg::Data { id, len, fin } => Message::StreamData {
            stream_id: *id as u64,
            data: &scratch[..(*len as usize).min(scratch.len())],
            fin: *fin,
        },
        Msg::Window { id, credit } => Message::WindowUpdate {
            stream_id: *id as u64,
            credit: *credit,
        },
        Msg::Ping { seq, ts } => Message::Ping {
            seq: *seq,
            timestamp: *ts,
        },
        Msg::Pong { seq, ts } => Message::Pong {
            seq: *seq,
            timestamp: *ts,
        },
        Msg::Knock { token } => Message::Knock {
            version: 1,
            nonce: &scratch[..16],
            token,
        },
        Msg::KnockResponse { a, h2 } => Message::KnockResponse {
            accepted: *a,
            hs2: *h2,
        },
        Msg::Rekey { n } => Message::Rekey { n: *n },
        Msg::AliasCard { card } => Message::AliasCard { card },
        Msg::Error { code: c } => Message::Error {
            code: code(*c),
            reason: Some("fuzz"),
        },
    };
    msg.to_vec()
}

fuzz_target!(|ops: Vec<Op>| {
    let fx = snap2p_fuzz::fixture();
    let mut now = fx.base;
    let pair = snap2p_fuzz::established_pair(now);
    let mut shadow = snap2p_fuzz::shadow_dialer(&pair.a_sent, &pair.b_sent);
    let mut b = pair.b;
    let scratch: Vec<u8> = (0..60_000u32).map(|i| (i * 31 + 7) as u8).collect();
    let mut out = Vec::new();
    let mut accepted: Vec<u64> = Vec::new();
    let mut buf = BytesMut::new();
    // REKEYs the shadow sent and switched after.
    let mut shadow_rekeys = 0u64;
    let mut rekey_in_sync = false;
    for op in ops.iter().take(64) {
        let mut wire = Vec::new();
        match op {
            Op::Batch(ms) => {
                let mut plain = Vec::new();
                for m in ms.iter().take(16) {
                    plain.extend_from_slice(&encode(m, &scratch));
                }
                plain.truncate(snap2p::unstable::secure_channel::MAX_PLAINTEXT);
                shadow.encrypt_frame(&plain, &mut wire).unwrap();
            }
            Op::Plain(p) => {
                let mut p = p.clone();
                p.truncate(snap2p::unstable::secure_channel::MAX_PLAINTEXT);
                shadow.encrypt_frame(&p, &mut wire).unwrap();
            }
            Op::Raw(r) => wire.extend_from_slice(r),
            Op::Tamper { msg, bit } => {
                let mut plain = encode(msg, &scratch);
                plain.truncate(snap2p::unstable::secure_channel::MAX_PLAINTEXT);
                shadow.encrypt_frame(&plain, &mut wire).unwrap();
                let prefix = match snap2p::unstable::wire::frame::read_varint(&wire).unwrap() {
                    snap2p::unstable::wire::frame::Varint::Complete(_, used) => used,
                    snap2p::unstable::wire::frame::Varint::Incomplete => unreachable!(),
                };
                let body = wire.len() - prefix;
                let i = prefix + (*bit as usize / 8) % body;
                wire[i] ^= 1 << (bit % 8);
                let before = b.error().is_some() || !buf.is_empty();
                let mut input = BytesMut::from(&wire[..]);
                b.handle_input(&mut input, now);
                // A flipped bit anywhere past the length prefix must never be accepted.
                if !before {
                    let e = b.error().expect("a tampered frame was accepted");
                    assert!(!b.closed_by_peer(), "a tampered frame was accepted: {e}");
                    assert_ne!(e.code, ErrorCode::Internal, "{e}");
                }
                continue;
            }
            Op::Advance { ms } => {
                now += Duration::from_millis(*ms as u64 * 10);
                b.handle_timeout(now);
            }
            Op::Read { id, max } => {
                let id = accepted
                    .get(*id as usize % accepted.len().max(1))
                    .copied()
                    .unwrap_or(*id as u64);
                let _ = b.read(id, *max as usize);
            }
            Op::Write { id, len } => {
                let id = accepted
                    .get(*id as usize % accepted.len().max(1))
                    .copied()
                    .unwrap_or(*id as u64);
                let _ = b.write(id, &scratch[..(*len as usize).min(scratch.len())]);
            }
            Op::Accept => {
                if let Some(id) = b.accept_stream() {
                    accepted.push(id);
                }
            }
            Op::Open => {
                if let Ok(id) = b.open_stream(None) {
                    accepted.push(id);
                }
            }
            Op::Rekey => {
                let in_sync = b.error().is_none()
                    && buf.is_empty()
                    && b.info().rekeys_received == shadow_rekeys;
                shadow_rekeys += 1;
                let msg = Message::Rekey { n: shadow_rekeys }.to_vec();
                shadow.encrypt_frame(&msg, &mut wire).unwrap();
                shadow.rekey_send().unwrap();
                rekey_in_sync = in_sync;
            }
        }
        if !wire.is_empty() {
            buf.extend_from_slice(&wire);
            b.handle_input(&mut buf, now);
        }
        // A listener in step with the shadow takes a correct REKEY and switches.
        if std::mem::take(&mut rekey_in_sync) {
            assert!(b.error().is_none(), "{:?}", b.error());
            assert_eq!(b.info().rekeys_received, shadow_rekeys);
        }
        out.clear();
        b.poll_transmit(now, &mut out, 1 << 20);
        while let Some(ev) = b.poll_event() {
            if let Event::Closed(e) = ev {
                if !b.closed_by_peer() {
                    assert_ne!(e.code, ErrorCode::Internal, "{e}");
                }
            }
        }
        // Buffered inbound data is bounded by the stream windows.
        let buffered: usize = accepted.iter().map(|id| b.readable_bytes(*id)).sum();
        assert!(buffered <= 16 * 2 * 1024 * 1024, "buffered {buffered}");
        if let Some(e) = b.error() {
            if !b.closed_by_peer() {
                assert_ne!(e.code, ErrorCode::Internal, "{e}");
            }
            let e = e.clone();
            // Sticky: every later call returns the same error, and nothing more is sent.
            // (After a clean close, code OK, opening reports ERR_CONNECTION_CLOSED.)
            let open_code = b.open_stream(None).unwrap_err().code;
            if e.code == ErrorCode::Ok {
                assert_eq!(open_code, ErrorCode::ConnectionClosed);
            } else {
                assert_eq!(open_code, e.code);
            }
            out.clear();
            b.poll_transmit(now, &mut out, 1 << 20);
            out.clear();
            b.poll_transmit(now, &mut out, 1 << 20);
            assert!(out.is_empty(), "closed session kept sending");
            return;
        }
    }
    // Any data the listener delivers came from authenticated frames: it is a slice of the
    // scratch pattern. (Reads of streams the fuzzer opened.)
    while let Some(id) = b.accept_stream() {
        accepted.push(id);
    }
    for id in accepted {
        for _ in 0..64 {
            match b.read(id, 1 << 20) {
                Ok(ReadOutcome::Data(d)) => assert!(!d.is_empty()),
                _ => break,
            }
        }
    }
});
