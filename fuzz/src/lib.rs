//! Shared fixtures of the snap2p fuzz targets: two fixed identities, session configs with
//! fixed randomness and a simulated clock, an in-memory pump, and a "shadow" initiator that
//! holds the same Noise transport keys as a real initiator `Session` (so a target can feed
//! the responder arbitrary messages that decrypt correctly).
//!
//! Everything expensive (wallet derivation, attestation signing) happens once per process.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use snap2p::identity::{LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation};
use snap2p::policy::{NodePolicy, Visibility};
use snap2p::secure_channel::{NoiseHandshake, NoiseTransport};
use snap2p::session::{
    default_capabilities, AttestationCache, Clock, FixedRandomness, Session, SessionConfig,
    SessionLimits,
};
use snap2p::wire::frame;

/// Unix time the simulated clock starts at (attestations are valid around it).
pub const T0_UNIX: i64 = 1_800_000_000;

pub struct Side {
    pub wallet: LocalWallet,
    pub node: NodeKey,
    pub att: Arc<Vec<u8>>,
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn make_side(seed: u8) -> Side {
    let wallet = LocalWallet::generate(Network::Mainnet);
    let node = NodeKey::from_seed([seed; 32]);
    let att = block_on(NodeKeyAttestation::issue_with_nonce(
        &wallet,
        node.public(),
        T0_UNIX - 60,
        7 * 86_400,
        vec![seed; 32],
    ))
    .unwrap()
    .encode();
    Side {
        wallet,
        node,
        att: Arc::new(att),
    }
}

pub struct Fixture {
    pub dialer: Side,
    pub listener: Side,
    /// Shared by every session of the process, so attestation checks hit the cache.
    pub cache: Arc<AttestationCache>,
    /// A stealth policy with one valid invite token ([`Fixture::invite`]).
    pub stealth_policy: Arc<NodePolicy>,
    pub invite: Vec<u8>,
    pub base: Instant,
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let stealth = NodePolicy {
            allowlist_gate: false,
            ..NodePolicy::new(Visibility::Stealth)
        };
        let invite = stealth
            .invites
            .create(10 * 86_400, false, T0_UNIX)
            .unwrap()
            .token;
        Fixture {
            dialer: make_side(1),
            listener: make_side(2),
            cache: Arc::new(AttestationCache::default()),
            stealth_policy: Arc::new(stealth),
            invite,
            base: Instant::now(),
        }
    })
}

pub fn fixed(tag: u8) -> FixedRandomness {
    FixedRandomness {
        ephemeral: [0x40 | tag; 32],
        hello_nonce: [0x50 | tag; 32],
        session_id: [0x60 | tag; 32],
        knock_nonce: [0x70 | tag; 16],
    }
}

pub fn limits() -> SessionLimits {
    SessionLimits {
        handshake_timeout: Duration::from_secs(10),
        keepalive_interval: Duration::from_secs(30),
        keepalive_timeout: Duration::from_secs(10),
        // Small buffers so short inputs reach flow control and back-pressure.
        stream_send_buffer: 64 * 1024,
        // Below a few streams' worth: writers also wait for session-wide room.
        session_send_buffer: 96 * 1024,
        max_stream_window: 1024 * 1024,
        max_unflowed_buffer: 1024 * 1024,
        max_streams: 16,
        ..Default::default()
    }
}

/// A session config for `side` with fixed randomness.
pub fn config(initiator: bool, stealth: bool) -> SessionConfig {
    let f = fixture();
    let s = if initiator { &f.dialer } else { &f.listener };
    let policy = if initiator {
        None
    } else if stealth {
        Some(f.stealth_policy.clone())
    } else {
        Some(Arc::new(NodePolicy::new(Visibility::Public)))
    };
    SessionConfig {
        initiator,
        node_key: s.node.clone(),
        attestation: s.att.clone(),
        principal: s.wallet.principal(),
        visibility: if stealth && !initiator {
            Visibility::Stealth
        } else {
            Visibility::Public
        },
        policy,
        networks: NetworkFilter::ANY,
        invite_token: if stealth && initiator {
            Some(f.invite.clone())
        } else {
            None
        },
        expected_remote: None,
        capabilities: default_capabilities(),
        limits: limits(),
        attestation_cache: f.cache.clone(),
        alias_card: None,
        clock: Clock {
            base: f.base,
            base_unix: T0_UNIX,
        },
        fixed: Some(fixed(if initiator { 1 } else { 2 })),
    }
}

/// Moves bytes both ways until neither side has anything to say (bounded). Returns the
/// bytes each side sent.
pub fn pump(a: &mut Session, b: &mut Session, now: Instant) -> (Vec<u8>, Vec<u8>) {
    let (mut ab, mut ba) = (Vec::new(), Vec::new());
    for _ in 0..1000 {
        let mut buf = Vec::new();
        a.poll_transmit(now, &mut buf, 1 << 20);
        let mut moved = !buf.is_empty();
        ab.extend_from_slice(&buf);
        let mut input = BytesMut::from(&buf[..]);
        b.handle_input(&mut input, now);
        let mut buf = Vec::new();
        b.poll_transmit(now, &mut buf, 1 << 20);
        moved |= !buf.is_empty();
        ba.extend_from_slice(&buf);
        let mut input = BytesMut::from(&buf[..]);
        a.handle_input(&mut input, now);
        if !moved {
            break;
        }
    }
    (ab, ba)
}

/// An established pair (dialer, listener) at `now`.
pub fn established_pair(now: Instant) -> (Session, Session, Vec<u8>, Vec<u8>) {
    let mut a = Session::new(config(true, false), now).unwrap();
    let mut b = Session::new(config(false, false), now).unwrap();
    let (ab, ba) = pump(&mut a, &mut b, now);
    assert!(a.is_established() && b.is_established(), "{a:?} {b:?}");
    (a, b, ab, ba)
}

/// Splits a byte stream into its frames (the stream must be well-formed).
pub fn frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = BytesMut::from(bytes);
    while let Some(f) = frame::next_frame(&mut buf, frame::MAX_TRANSPORT_FRAME).unwrap() {
        out.push(f.to_vec());
    }
    bytes = &[];
    let _ = bytes;
    out
}

/// Rebuilds the dialer's Noise transport from the recorded bytes of a real handshake (same
/// static key, same fixed ephemeral) and advances its send nonce past the transport frames
/// the dialer already sent. The returned transport speaks for the dialer from here on.
pub fn shadow_dialer(ab: &[u8], ba: &[u8]) -> NoiseTransport {
    let f = fixture();
    let a_frames = frames(ab);
    let b_frames = frames(ba);
    let eph = fixed(1).ephemeral;
    let mut hs = NoiseHandshake::new(
        true,
        &f.dialer.node.x25519_secret(),
        &f.dialer.node.x25519_public(),
        Some(&eph),
    )
    .unwrap();
    let mut m1 = Vec::new();
    hs.write_frame(&mut m1).unwrap();
    hs.read_message(&b_frames[0]).unwrap();
    let mut m3 = Vec::new();
    hs.write_frame(&mut m3).unwrap();
    let mut t = hs.into_transport().unwrap();
    // Burn the nonces of the dialer's transport frames (everything after Noise 1 and 3).
    let mut sink = Vec::new();
    for _ in 2..a_frames.len() {
        t.encrypt_frame(b"", &mut sink).unwrap();
    }
    t
}
