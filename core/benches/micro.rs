//! Criterion micro-benchmarks of the hot paths: the wire codec (frames, STREAM_DATA, control
//! messages), the AEAD seal/open path of `NoiseTransport`, attestation verification
//! (decode + secp256k1 recovery vs the `AttestationCache` hit), and a whole session
//! handshake (both machines, in memory: the CPU floor of session establishment), and the
//! X25519 implementations.
//!
//! Run: `cargo bench -p snap2p --bench micro` (add `-- --quick` for a fast pass).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use snap2p::policy::NodePolicy;
use snap2p::secure_channel::{NoiseHandshake, NoiseTransport};
use snap2p::session::{
    default_capabilities, AttestationCache, Clock, Session, SessionConfig, SessionLimits,
};
use snap2p::wire::{frame, message};
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
    for size in [1024usize, 16 * 1024, snap2p::secure_channel::MAX_PLAINTEXT] {
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
        invite_token: None,
        expected_remote: None,
        capabilities: default_capabilities(),
        limits: SessionLimits::default(),
        attestation_cache: cache.clone(),
        alias_card: None,
        clock: Clock::system(),
        fixed: None,
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

/// X25519 (the Noise DH): AWS-LC's raw functions, which `secure_channel` uses, against
/// curve25519-dalek (the previous implementation) and aws-lc-rs's safe `agreement` API.
fn x25519(c: &mut Criterion) {
    use aws_lc_rs::agreement;
    use curve25519_dalek::montgomery::MontgomeryPoint;
    let mut g = c.benchmark_group("x25519");
    let sk = [0x11u8; 32];
    let peer = MontgomeryPoint::mul_base_clamped([0x22u8; 32]).to_bytes();
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
    g.bench_function("dh_dalek", |b| {
        b.iter(|| MontgomeryPoint(black_box(peer)).mul_clamped(black_box(sk)))
    });
    g.bench_function("public_dalek", |b| {
        b.iter(|| MontgomeryPoint::mul_base_clamped(black_box(sk)))
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
    g.finish();
}

criterion_group!(benches, codec, aead, attestation, handshake, x25519);
criterion_main!(benches);
