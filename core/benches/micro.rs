//! Criterion micro-benchmarks of the hot paths: the wire codec (frames, STREAM_DATA, control
//! messages), the AEAD seal/open path of `NoiseTransport`, attestation verification
//! (decode + secp256k1 recovery vs the `AttestationCache` hit), and a whole session
//! handshake (both machines, in memory: the CPU floor of session establishment), and the
//! X25519 implementations.
//!
//! The dependency comparisons behind docs/ARCHITECTURE.md "Dependencies and why":
//! `cbor/*` (the hand-written canonical-CBOR codec against `ciborium` on the same bytes of
//! real control messages) and `backend/*` plus `x25519/*` (each native crypto backend
//! against its pure-Rust alternative). The groups `aead`, `attestation` and `handshake`
//! measure whichever backends the build selected: run them once more with
//! `--no-default-features --features pure-rust` for the pure-Rust build's figures (the
//! native-only functions are then left out).
//!
//! Run: `cargo bench -p snap2p --bench micro` (add `-- --quick` for a fast pass).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use snap2p::policy::NodePolicy;
use snap2p::unstable::secure_channel::{NoiseHandshake, NoiseTransport};
use snap2p::unstable::wire::{frame, message};
use snap2p::unstable::{default_capabilities, AttestationCache, Clock, Session, SessionConfig};
use snap2p::Visibility;
use snap2p::{LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation};

/// Runs an in-memory Noise XX handshake and returns (initiator, responder) transports.
fn transports() -> (NoiseTransport, NoiseTransport) {
    let (a, b) = (NodeKey::generate(), NodeKey::generate());
    let mut i = NoiseHandshake::new(true, &a.x25519_secret(), &a.x25519_public(), None).unwrap();
    let mut r = NoiseHandshake::new(false, &b.x25519_secret(), &b.x25519_public(), None).unwrap();
    let strip = |f: &[u8]| -> Vec<u8> {
        match frame::read_varint(f).unwrap() {
            frame::Varint::Complete(_, used) => f[used..].to_vec(),
            frame::Varint::Incomplete => panic!("short frame"),
        }
    };
    let mut buf = Vec::new();
    i.write_frame(&mut buf).unwrap();
    r.read_message(&strip(&buf)).unwrap();
    buf.clear();
    r.write_frame(&mut buf).unwrap();
    i.read_message(&strip(&buf)).unwrap();
    buf.clear();
    i.write_frame(&mut buf).unwrap();
    r.read_message(&strip(&buf)).unwrap();
    (i.into_transport().unwrap(), r.into_transport().unwrap())
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    let payload = vec![7u8; 16 * 1024];
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("stream_data_encode_16k", |b| {
        let mut out = Vec::with_capacity(64 * 1024);
        b.iter(|| {
            out.clear();
            message::encode_stream_data_header(&mut out, 5, payload.len(), false);
            out.extend_from_slice(black_box(&payload));
            message::encode_stream_data_trailer(&mut out, 5, false);
            black_box(out.len())
        })
    });
    let mut batch = Vec::new();
    for sid in 0..4u64 {
        message::encode_stream_data_header(&mut batch, sid, payload.len(), sid == 3);
        batch.extend_from_slice(&payload[..4096]);
        message::encode_stream_data_trailer(&mut batch, sid, sid == 3);
    }
    // Fix the header lengths: write well-formed 4 KiB messages.
    batch.clear();
    for sid in 0..4u64 {
        message::encode_stream_data_header(&mut batch, sid, 4096, sid == 3);
        batch.extend_from_slice(&payload[..4096]);
        message::encode_stream_data_trailer(&mut batch, sid, sid == 3);
    }
    g.throughput(Throughput::Bytes(batch.len() as u64));
    g.bench_function("decode_batch_4x4k", |b| {
        b.iter(|| {
            let mut n = 0usize;
            message::decode_batch(black_box(&batch), |m| {
                if let message::Message::StreamData { data, .. } = m {
                    n += data.len();
                }
                Ok(())
            })
            .unwrap();
            n
        })
    });
    let ctrl = message::Message::WindowUpdate {
        stream_id: 1234,
        credit: 1 << 20,
    }
    .to_vec();
    g.throughput(Throughput::Elements(1));
    g.bench_function("window_update_encode", |b| {
        b.iter(|| {
            black_box(
                message::Message::WindowUpdate {
                    stream_id: black_box(1234),
                    credit: 1 << 20,
                }
                .to_vec(),
            )
        })
    });
    g.bench_function("window_update_decode", |b| {
        b.iter(|| black_box(message::Message::decode(black_box(&ctrl)).unwrap()))
    });
    g.bench_function("frame_split_64k", |b| {
        let mut one = Vec::new();
        frame::write_frame(&mut one, &vec![1u8; 65535]);
        b.iter_batched(
            || BytesMut::from(&one[..]),
            |mut buf| black_box(frame::next_frame(&mut buf, frame::MAX_TRANSPORT_FRAME).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn aead(c: &mut Criterion) {
    let mut g = c.benchmark_group("aead");
    for size in [
        1024usize,
        16 * 1024,
        snap2p::unstable::secure_channel::MAX_PLAINTEXT,
    ] {
        let (mut tx, mut rx) = transports();
        let plain = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("seal_{size}"), |b| {
            let mut out = Vec::with_capacity(70 * 1024);
            b.iter(|| {
                out.clear();
                tx.encrypt_frame(black_box(&plain), &mut out).unwrap();
                black_box(out.len())
            })
        });
        // seal + open (a receiver needs nonces in order, so both run per iteration).
        g.bench_function(format!("seal_open_{size}"), |b| {
            let (mut tx, mut rx2) = transports();
            let mut out = Vec::with_capacity(70 * 1024);
            b.iter(|| {
                out.clear();
                tx.encrypt_frame(black_box(&plain), &mut out).unwrap();
                let mut buf = BytesMut::from(&out[..]);
                let body = frame::next_frame(&mut buf, frame::MAX_TRANSPORT_FRAME)
                    .unwrap()
                    .unwrap();
                black_box(rx2.open_frame(body).unwrap().len())
            })
        });
        let _ = &mut rx;
    }
    g.finish();
}

fn attestation(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let wallet = LocalWallet::generate(Network::Mainnet);
    let key = NodeKey::generate();
    let now = snap2p::unix_now();
    let att = rt
        .block_on(NodeKeyAttestation::issue(
            &wallet,
            key.public(),
            now,
            86_400,
        ))
        .unwrap();
    let bytes = att.encode();
    let mut g = c.benchmark_group("attestation");
    g.bench_function("decode", |b| {
        b.iter(|| black_box(NodeKeyAttestation::decode(black_box(&bytes)).unwrap()))
    });
    g.bench_function("decode_and_verify", |b| {
        b.iter(|| {
            black_box(
                NodeKeyAttestation::decode_and_verify(black_box(&bytes), now, NetworkFilter::ANY)
                    .unwrap(),
            )
        })
    });
    let cache = AttestationCache::default();
    cache.verify(&bytes, now, NetworkFilter::ANY).unwrap();
    g.bench_function("cache_hit", |b| {
        b.iter(|| {
            black_box(
                cache
                    .verify(black_box(&bytes), now, NetworkFilter::ANY)
                    .unwrap(),
            )
        })
    });
    g.finish();
}

/// One side of a session: its wallet, node key and encoded attestation.
struct HandshakeSide {
    wallet: LocalWallet,
    node: NodeKey,
    att: std::sync::Arc<Vec<u8>>,
}

type Cache = std::sync::Arc<AttestationCache>;

fn handshake_side(rt: &tokio::runtime::Runtime) -> HandshakeSide {
    let wallet = LocalWallet::generate(Network::Mainnet);
    let node = NodeKey::generate();
    let att = rt
        .block_on(NodeKeyAttestation::issue(
            &wallet,
            node.public(),
            snap2p::unix_now(),
            86_400,
        ))
        .unwrap()
        .encode();
    HandshakeSide {
        wallet,
        node,
        att: std::sync::Arc::new(att),
    }
}

fn session(
    side: &HandshakeSide,
    cache: &Cache,
    initiator: bool,
    now: std::time::Instant,
) -> Session {
    let cfg = SessionConfig {
        initiator,
        node_key: side.node.clone(),
        attestation: side.att.clone(),
        principal: side.wallet.principal(),
        visibility: Visibility::Public,
        policy: (!initiator).then(|| std::sync::Arc::new(NodePolicy::new(Visibility::Public))),
        networks: NetworkFilter::ANY,
        permissions: None,
        invite_token: None,
        expected_remote: None,
        capabilities: default_capabilities(),
        limits: Default::default(),
        attestation_cache: cache.clone(),
        alias_card: None,
        clock: Clock::system(),
        fixed: None,
        profile: Default::default(),
        hs2: true,
    };
    Session::new(cfg, now).unwrap()
}

/// Runs both machines to established, moving bytes in memory.
fn handshake_pair(a: &HandshakeSide, b: &HandshakeSide, caches: &(Cache, Cache)) {
    let now = std::time::Instant::now();
    let (mut i, mut r) = (
        session(a, &caches.0, true, now),
        session(b, &caches.1, false, now),
    );
    for _ in 0..16 {
        let mut buf = Vec::new();
        i.poll_transmit(now, &mut buf, 1 << 20);
        let mut moved = !buf.is_empty();
        r.handle_input(&mut BytesMut::from(&buf[..]), now);
        buf.clear();
        r.poll_transmit(now, &mut buf, 1 << 20);
        moved |= !buf.is_empty();
        i.handle_input(&mut BytesMut::from(&buf[..]), now);
        if !moved {
            break;
        }
    }
    assert!(i.is_established() && r.is_established());
}

fn handshake(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (a, b) = (handshake_side(&rt), handshake_side(&rt));
    let mut g = c.benchmark_group("handshake");
    let fresh = || (Cache::default(), Cache::default());
    // Both sides have verified the other's attestation once (the caches hold it).
    let warm = fresh();
    handshake_pair(&a, &b, &warm);
    g.bench_function("pair_verified_once", |bench| {
        bench.iter(|| handshake_pair(&a, &b, &warm))
    });
    // Empty caches each time: both sides recover the other's secp256k1 key.
    g.bench_function("pair_first_contact", |bench| {
        bench.iter_batched(fresh, |c| handshake_pair(&a, &b, &c), BatchSize::SmallInput)
    });
    g.finish();
}

/// X25519 (the Noise DH): AWS-LC's raw functions, which `secure_channel` uses with
/// `native-crypto`, against curve25519-dalek (the previous implementation), x25519-dalek
/// (what `pure-rust` uses: the same ladder behind the x25519 API) and aws-lc-rs's safe
/// `agreement` API.
fn x25519(c: &mut Criterion) {
    use curve25519_dalek::montgomery::MontgomeryPoint;
    let mut g = c.benchmark_group("x25519");
    let sk = [0x11u8; 32];
    let peer = MontgomeryPoint::mul_base_clamped([0x22u8; 32]).to_bytes();
    g.bench_function("dh_x25519_dalek", |b| {
        b.iter(|| x25519_dalek::x25519(black_box(sk), black_box(peer)))
    });
    g.bench_function("public_x25519_dalek", |b| {
        b.iter(|| {
            let secret = x25519_dalek::StaticSecret::from(black_box(sk));
            x25519_dalek::PublicKey::from(&secret).to_bytes()
        })
    });
    g.bench_function("dh_dalek", |b| {
        b.iter(|| MontgomeryPoint(black_box(peer)).mul_clamped(black_box(sk)))
    });
    g.bench_function("public_dalek", |b| {
        b.iter(|| MontgomeryPoint::mul_base_clamped(black_box(sk)))
    });
    #[cfg(feature = "native-crypto")]
    x25519_aws_lc(&mut g, sk, peer);
    g.finish();
}

#[cfg(feature = "native-crypto")]
fn x25519_aws_lc(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    sk: [u8; 32],
    peer: [u8; 32],
) {
    use aws_lc_rs::agreement;
    g.bench_function("dh", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            let (k, u) = (black_box(&sk), black_box(&peer));
            // SAFETY: three 32-byte arrays (`X25519` reads 32 bytes of each input).
            let ok = unsafe { aws_lc_sys::X25519(out.as_mut_ptr(), k.as_ptr(), u.as_ptr()) };
            assert_eq!(ok, 1);
            out
        })
    });
    g.bench_function("public_from_private", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            let k = black_box(&sk);
            // SAFETY: two 32-byte arrays.
            unsafe { aws_lc_sys::X25519_public_from_private(out.as_mut_ptr(), k.as_ptr()) };
            out
        })
    });
    // The safe API: `agree` with a reused key (parses the peer key into an EVP_PKEY per
    // call), and the per-session cost of making the static key an `agreement::PrivateKey`.
    let key = agreement::PrivateKey::from_private_key(&agreement::X25519, &sk).unwrap();
    g.bench_function("dh_aws_lc_rs_agree", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, black_box(&peer));
            agreement::agree(&key, peer, (), |s| {
                out.copy_from_slice(s);
                Ok(())
            })
            .unwrap();
            out
        })
    });
    g.bench_function("aws_lc_rs_private_key", |b| {
        b.iter(|| {
            agreement::PrivateKey::from_private_key(&agreement::X25519, black_box(&sk)).unwrap()
        })
    });
}

/// Ed25519 (the transcript signature, PROTOCOL.md §5.3): ed25519-dalek's strict check
/// against AWS-LC's assembly verifier.
fn ed25519(c: &mut Criterion) {
    use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
    let mut g = c.benchmark_group("ed25519");
    let sk = SigningKey::from_bytes(&[0x33u8; 32]);
    let pk = sk.verifying_key().to_bytes();
    let msg = [0x5au8; 64];
    let sig = sk.sign(&msg).to_bytes();
    g.bench_function("sign_dalek", |b| b.iter(|| sk.sign(black_box(&msg))));
    g.bench_function("decompress_dalek", |b| {
        b.iter(|| VerifyingKey::from_bytes(black_box(&pk)).unwrap())
    });
    let vk = VerifyingKey::from_bytes(&pk).unwrap();
    let s = ed25519_dalek::Signature::from_bytes(&sig);
    g.bench_function("verify_strict_dalek", |b| {
        b.iter(|| vk.verify_strict(black_box(&msg), black_box(&s)).unwrap())
    });
    g.bench_function("verify_dalek", |b| {
        b.iter(|| ed25519_dalek::Verifier::verify(&vk, black_box(&msg), black_box(&s)).unwrap())
    });
    #[cfg(feature = "native-crypto")]
    {
        // What `NodeKey::sign` runs with `native-crypto`.
        let node = snap2p::identity::NodeKey::from_seed([0x33u8; 32]);
        assert_eq!(
            node.sign(&msg),
            sig,
            "RFC 8032 signatures are deterministic"
        );
        g.bench_function("sign_aws_lc", |b| b.iter(|| node.sign(black_box(&msg))));
        g.bench_function("verify_aws_lc", |b| {
            b.iter(|| {
                let (m, s, k) = (black_box(&msg), black_box(&sig), black_box(&pk));
                // SAFETY: a 64-byte signature and a 32-byte key; `msg` is read for its length.
                let ok = unsafe {
                    aws_lc_sys::ED25519_verify(m.as_ptr(), m.len(), s.as_ptr(), k.as_ptr())
                };
                assert_eq!(ok, 1);
            })
        });
        g.bench_function("verify_ring", |b| {
            b.iter(|| {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, black_box(&pk))
                    .verify(black_box(&msg), black_box(&sig))
                    .unwrap()
            })
        });
    }
    g.finish();
}

/// The same control messages as serde structs for ciborium (fields declared in the wire's
/// byte-wise key order, so ciborium's encoding is byte-identical to snap2p's; checked in
/// `cbor_vs_ciborium` before timing). Byte fields are CBOR byte strings (major 2), not
/// arrays of integers, through [`Bytes`]. ciborium reads from an `io::Read`, so it
/// cannot borrow: every byte and text field is copied into an owned buffer.
mod ciborium_model {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Clone, Debug, PartialEq)]
    pub struct Bytes(pub Vec<u8>);

    impl Serialize for Bytes {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    impl<'de> Deserialize<'de> for Bytes {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Bytes;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a byte string")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                    Ok(Bytes(v.to_vec()))
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                    Ok(Bytes(v))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub struct Hello {
        pub cap: Vec<String>,
        pub n: Bytes,
        pub pk: Bytes,
        pub t: u64,
        pub ts: i64,
        pub v: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub vis: Option<u64>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub struct Auth {
        pub att: Bytes,
        pub hd: Bytes,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hs: Option<Bytes>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sn: Option<Bytes>,
        pub t: u64,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub struct StreamData {
        pub d: Bytes,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub f: Option<bool>,
        pub sid: u64,
        pub t: u64,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub struct Attestation {
        pub domain: String,
        pub exp: i64,
        pub nonce: Bytes,
        pub npk: String,
        pub p: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sf: Option<u64>,
        pub sig: Bytes,
        pub ts: i64,
        pub v: u64,
    }
}

/// Decode (and encode) of real control messages by the hand-written codec
/// (`wire::cbor`, `Message`) and by ciborium, on the same bytes. Per message:
/// `snap2p` = `Message::decode` (typed, borrowing), `snap2p_value` = `cbor::decode` (the
/// generic tree), `ciborium_struct` = `ciborium::from_reader` into the serde struct,
/// `ciborium_value` = into `ciborium::Value`. The attestation's typed decode and encode
/// are `NodeKeyAttestation::decode` / `encode`, which also parse or format the principal
/// (c32check) and the node key's hex, so compare its `*_value` rows for the codec alone.
fn cbor_vs_ciborium(c: &mut Criterion) {
    use ciborium_model as m;
    use message::{Auth, Hello, Message};
    use snap2p::unstable::wire::cbor;

    fn from_ciborium<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
        ciborium::from_reader(bytes).unwrap()
    }
    fn to_ciborium<T: serde::Serialize>(v: &T, out: &mut Vec<u8>) {
        ciborium::into_writer(v, &mut *out).unwrap()
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let wallet = LocalWallet::generate(Network::Mainnet);
    let node = NodeKey::generate();
    let now = snap2p::unix_now();
    let att = rt
        .block_on(NodeKeyAttestation::issue(
            &wallet,
            node.public(),
            now,
            86_400,
        ))
        .unwrap();
    let att_bytes = att.encode();
    let caps = default_capabilities();
    let (pk, nonce) = ([1u8; 32], [2u8; 32]);
    let hello = Message::Hello(Hello {
        version: 1,
        node_pubkey: &pk,
        nonce: &nonce,
        timestamp: now,
        visibility: Some(message::Visibility::Public),
        capabilities: caps.iter().map(String::as_str).collect(),
    });
    let auth = Message::Auth(Auth {
        attestation: &att_bytes,
        session_nonce: &[3; 64],
        handshake_sig: &[4; 64],
    });
    let payload = vec![7u8; 1024];
    let data = Message::StreamData {
        stream_id: 5,
        data: &payload,
        fin: false,
    };

    let m_hello = m::Hello {
        cap: caps.clone(),
        n: m::Bytes(nonce.to_vec()),
        pk: m::Bytes(pk.to_vec()),
        t: message::types::HELLO,
        ts: now,
        v: 1,
        vis: Some(0),
    };
    let m_auth = m::Auth {
        att: m::Bytes(att_bytes.clone()),
        hd: m::Bytes(vec![]),
        hs: Some(m::Bytes(vec![4; 64])),
        sn: Some(m::Bytes(vec![3; 64])),
        t: message::types::AUTH,
    };
    let m_data = m::StreamData {
        d: m::Bytes(payload.clone()),
        f: None,
        sid: 5,
        t: message::types::STREAM_DATA,
    };
    let m_att: m::Attestation = from_ciborium(&att_bytes);

    // Same bytes both ways before timing anything.
    let (hello_b, auth_b, data_b) = (hello.to_vec(), auth.to_vec(), data.to_vec());
    for (ours, theirs) in [
        (&hello_b, {
            let mut v = vec![];
            to_ciborium(&m_hello, &mut v);
            v
        }),
        (&auth_b, {
            let mut v = vec![];
            to_ciborium(&m_auth, &mut v);
            v
        }),
        (&data_b, {
            let mut v = vec![];
            to_ciborium(&m_data, &mut v);
            v
        }),
        (&att_bytes, {
            let mut v = vec![];
            to_ciborium(&m_att, &mut v);
            v
        }),
    ] {
        assert_eq!(ours, &theirs, "ciborium's encoding differs");
    }
    assert_eq!(from_ciborium::<m::Hello>(&hello_b), m_hello);
    assert_eq!(from_ciborium::<m::Auth>(&auth_b), m_auth);
    assert_eq!(from_ciborium::<m::StreamData>(&data_b), m_data);

    let mut g = c.benchmark_group("cbor");
    g.throughput(Throughput::Elements(1));
    macro_rules! decode_rows {
        ($name:literal, $bytes:expr, $typed:expr, $model:ty) => {
            let bytes: &[u8] = $bytes;
            g.bench_function(concat!("decode_", $name, "/snap2p"), |b| {
                b.iter(|| black_box($typed(black_box(bytes))))
            });
            g.bench_function(concat!("decode_", $name, "/snap2p_value"), |b| {
                b.iter(|| black_box(cbor::decode(black_box(bytes)).unwrap()))
            });
            g.bench_function(concat!("decode_", $name, "/ciborium_struct"), |b| {
                b.iter(|| black_box(from_ciborium::<$model>(black_box(bytes))))
            });
            g.bench_function(concat!("decode_", $name, "/ciborium_value"), |b| {
                b.iter(|| black_box(from_ciborium::<ciborium::Value>(black_box(bytes))))
            });
        };
    }
    decode_rows!("hello", &hello_b, |b| Message::decode(b).unwrap(), m::Hello);
    decode_rows!("auth", &auth_b, |b| Message::decode(b).unwrap(), m::Auth);
    decode_rows!(
        "stream_data_1k",
        &data_b,
        |b| Message::decode(b).unwrap(),
        m::StreamData
    );
    decode_rows!(
        "attestation",
        &att_bytes,
        |b| NodeKeyAttestation::decode(b).unwrap(),
        m::Attestation
    );

    let mut out = Vec::with_capacity(4096);
    for (name, msg) in [
        ("hello", &hello),
        ("auth", &auth),
        ("stream_data_1k", &data),
    ] {
        g.bench_function(format!("encode_{name}/snap2p"), |b| {
            b.iter(|| {
                out.clear();
                black_box(msg).encode(&mut out);
                black_box(out.len())
            })
        });
    }
    macro_rules! encode_ciborium {
        ($name:literal, $value:expr) => {
            g.bench_function(concat!("encode_", $name, "/ciborium"), |b| {
                b.iter(|| {
                    out.clear();
                    to_ciborium(black_box($value), &mut out);
                    black_box(out.len())
                })
            });
        };
    }
    encode_ciborium!("hello", &m_hello);
    encode_ciborium!("auth", &m_auth);
    encode_ciborium!("stream_data_1k", &m_data);
    g.bench_function("encode_attestation/snap2p", |b| {
        b.iter(|| black_box(black_box(&att).encode()))
    });
    g.bench_function("encode_attestation/ciborium", |b| {
        b.iter(|| {
            let mut v = Vec::new();
            to_ciborium(black_box(&m_att), &mut v);
            black_box(v)
        })
    });
    // The codec alone: `NodeKeyAttestation::encode` also formats the principal (c32check:
    // a double SHA-256) and the node key's hex, which the serde struct holds ready-made.
    let att_value = cbor::decode(&att_bytes).unwrap();
    assert_eq!(cbor::to_vec(&att_value), att_bytes);
    g.bench_function("encode_attestation/snap2p_value", |b| {
        b.iter(|| black_box(cbor::to_vec(black_box(&att_value))))
    });
    let att_ciborium: ciborium::Value = from_ciborium(&att_bytes);
    g.bench_function("encode_attestation/ciborium_value", |b| {
        b.iter(|| {
            let mut v = Vec::new();
            to_ciborium(black_box(&att_ciborium), &mut v);
            black_box(v)
        })
    });
    g.finish();
}

/// Each native crypto backend against its pure-Rust alternative, outside the protocol:
/// ChaCha20-Poly1305 sealing 64 KiB in place (ring vs RustCrypto's `chacha20poly1305`),
/// the same for AES-256-GCM (ring vs RustCrypto's `aes-gcm`), and secp256k1 public-key recovery (libsecp256k1 vs k256). X25519 is the `x25519`
/// group. Without `native-crypto` only the pure-Rust rows run.
/// ring's `alg` sealing `buf` in place (key 0x42…, nonce 0), as the transport does.
#[cfg(feature = "native-crypto")]
fn ring_seal(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    alg: &'static ring::aead::Algorithm,
    buf: &mut [u8],
) {
    let k = ring::aead::LessSafeKey::new(ring::aead::UnboundKey::new(alg, &[0x42; 32]).unwrap());
    g.bench_function(name, |b| {
        b.iter(|| {
            let n = ring::aead::Nonce::assume_unique_for_key([0; 12]);
            k.seal_in_place_separate_tag(n, ring::aead::Aad::empty(), black_box(&mut *buf))
                .unwrap()
        })
    });
}

/// A RustCrypto AEAD (96-bit nonce) sealing `buf` in place at nonce 0.
fn rustcrypto_seal<A>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    aead: &A,
    buf: &mut Vec<u8>,
) where
    A: chacha20poly1305::aead::AeadInPlace<NonceSize = chacha20poly1305::consts::U12>,
{
    let nonce = Default::default();
    g.bench_function(name, |b| {
        b.iter(|| {
            aead.encrypt_in_place_detached(&nonce, &[], black_box(&mut *buf))
                .unwrap()
        })
    });
}

fn backend(c: &mut Criterion) {
    use chacha20poly1305::aead::KeyInit;
    use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};

    let mut g = c.benchmark_group("backend");
    let key = [0x42u8; 32];
    let mut buf = vec![0x5au8; 64 * 1024];
    g.throughput(Throughput::Bytes(buf.len() as u64));
    #[cfg(feature = "native-crypto")]
    ring_seal(
        &mut g,
        "chacha20poly1305_seal_64k/ring",
        &ring::aead::CHACHA20_POLY1305,
        &mut buf,
    );
    let k = chacha20poly1305::ChaCha20Poly1305::new(&key.into());
    rustcrypto_seal(&mut g, "chacha20poly1305_seal_64k/rustcrypto", &k, &mut buf);
    // The `aes-gcm` transport (docs/PROTOCOL.md §7.2): the same 64 KiB under AES-256-GCM.
    #[cfg(feature = "native-crypto")]
    ring_seal(
        &mut g,
        "aes256gcm_seal_64k/ring",
        &ring::aead::AES_256_GCM,
        &mut buf,
    );
    let k = aes_gcm::Aes256Gcm::new(&key.into());
    rustcrypto_seal(&mut g, "aes256gcm_seal_64k/rustcrypto", &k, &mut buf);

    // A low-S recoverable signature, as a wallet makes it.
    let signer = SigningKey::from_slice(&[0x17; 32]).unwrap();
    let digest = [0x99u8; 32];
    let (sig, recid) = signer.sign_prehash_recoverable(&digest).unwrap();
    assert!(sig.normalize_s().is_none(), "RFC 6979 signatures are low-S");
    let expected = signer.verifying_key().to_encoded_point(true);
    g.throughput(Throughput::Elements(1));
    g.bench_function("secp256k1_recover/k256", |b| {
        b.iter(|| {
            let sig = Signature::from_slice(black_box(&sig.to_bytes())).unwrap();
            let id = RecoveryId::from_byte(black_box(recid.to_byte())).unwrap();
            VerifyingKey::recover_from_prehash(black_box(&digest), &sig, id).unwrap()
        })
    });
    assert_eq!(
        VerifyingKey::recover_from_prehash(&digest, &sig, recid)
            .unwrap()
            .to_encoded_point(true),
        expected
    );
    #[cfg(feature = "native-crypto")]
    {
        let ctx = secp256k1::Secp256k1::verification_only();
        let rid = secp256k1::ecdsa::RecoveryId::from_i32(i32::from(recid.to_byte())).unwrap();
        let compact = sig.to_bytes();
        let recover = |compact: &[u8]| {
            let rsig = secp256k1::ecdsa::RecoverableSignature::from_compact(compact, rid).unwrap();
            ctx.recover_ecdsa(&secp256k1::Message::from_digest(digest), &rsig)
                .unwrap()
        };
        assert_eq!(recover(&compact).serialize(), expected.as_bytes());
        g.bench_function("secp256k1_recover/libsecp256k1", |b| {
            b.iter(|| recover(black_box(&compact)))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    codec,
    aead,
    attestation,
    handshake,
    x25519,
    ed25519,
    cbor_vs_ciborium,
    backend
);
criterion_main!(benches);
