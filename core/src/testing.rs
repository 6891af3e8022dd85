//! The sans-IO test harness shared by the session's unit tests, the integration tests and
//! the fuzz targets: identities attested at a fixed time, session configs, and two
//! [`Session`]s wired back to back in memory with a simulated clock (quinn's `Pair` idea).
//! No sockets, no wall clock.
//!
//! Built for `cargo test` and with the `testing` feature (the fuzz crate, the core's own
//! integration tests); not part of the public API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::identity::{LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation};
use crate::policy::{NodePolicy, Visibility};
use crate::session::{
    default_capabilities, AttestationCache, Clock, Event, FixedRandomness, Session, SessionConfig,
};
use crate::wire::frame;
use crate::Principal;

/// Unix time the simulated clocks start at (attestations are valid around it).
pub const T0_UNIX: i64 = 1_800_000_000;

/// Runs a future to completion on this thread, parking it between polls (a host's executor
/// stands for it). No runtime: what the tests drive with it (a local wallet's signing, the
/// host bridge's `run`) needs none, and it works in the build without the `runtime`
/// feature (`--no-default-features --features pure-rust`).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// One side's identity: a fresh wallet, the node key of a seed, and its attestation.
pub struct Side {
    pub wallet: LocalWallet,
    pub node: NodeKey,
    pub att: Arc<Vec<u8>>,
}

impl Side {
    /// Node key from `seed`, attested for one hour from [`T0_UNIX`].
    pub fn new(seed: u8) -> Side {
        Side::attested(seed, T0_UNIX, 3600)
    }

    /// Node key from `seed`, attested from `issued_at` for `ttl_secs` (the attestation's
    /// nonce is fixed by the seed too).
    pub fn attested(seed: u8, issued_at: i64, ttl_secs: i64) -> Side {
        let wallet = LocalWallet::generate(Network::Mainnet);
        let node = NodeKey::from_seed([seed; 32]);
        let att = block_on(NodeKeyAttestation::issue_with_nonce(
            &wallet,
            node.public(),
            issued_at,
            ttl_secs,
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
}

/// A public session config with default limits: a listener gets a public policy, a dialer
/// none. Fresh attestation cache, random handshake values.
pub fn session_config(
    node: &NodeKey,
    attestation: Arc<Vec<u8>>,
    principal: Principal,
    initiator: bool,
    clock: Clock,
) -> SessionConfig {
    SessionConfig {
        initiator,
        node_key: node.clone(),
        attestation,
        principal,
        visibility: Visibility::Public,
        policy: if initiator {
            None
        } else {
            Some(Arc::new(NodePolicy::new(Visibility::Public)))
        },
        networks: NetworkFilter::ANY,
        permissions: None,
        invite_token: None,
        expected_remote: None,
        capabilities: default_capabilities(),
        limits: Default::default(),
        attestation_cache: Arc::new(AttestationCache::default()),
        alias_card: None,
        clock,
        fixed: None,
        profile: Default::default(),
        hs2: true,
    }
}

/// [`session_config`] for `side` on a simulated clock: `base` is [`T0_UNIX`].
pub fn config(side: &Side, initiator: bool, base: Instant) -> SessionConfig {
    session_config(
        &side.node,
        side.att.clone(),
        side.wallet.principal(),
        initiator,
        Clock {
            base,
            base_unix: T0_UNIX,
        },
    )
}

/// Lists `aes-gcm` (docs/PROTOCOL.md §7.2) in `cfg`'s capabilities or leaves it out,
/// whatever this CPU has: by default it is listed only where AES runs in hardware, and
/// tests and vectors pin it to be the same bytes on every machine.
pub fn set_aes_gcm(cfg: &mut SessionConfig, listed: bool) {
    let cap = crate::wire::message::caps::AES_GCM;
    cfg.capabilities.retain(|c| c != cap);
    if listed {
        cfg.capabilities.push(cap.to_string());
    }
}

/// Handshake randomness fixed by `tag`, so a run can be replayed byte for byte.
pub fn fixed(tag: u8) -> FixedRandomness {
    FixedRandomness {
        ephemeral: [0x40 | tag; 32],
        hello_nonce: [0x50 | tag; 32],
        session_id: [0x60 | tag; 32],
        knock_nonce: [0x70 | tag; 16],
    }
}

/// What [`pump_rounds`] moved.
pub struct Pumped {
    pub a_to_b: Vec<u8>,
    pub b_to_a: Vec<u8>,
    /// Neither side had anything left to say (false: `rounds` ran out first).
    pub settled: bool,
}

/// Moves bytes both ways, at most `rounds` times, until neither side has anything to say.
pub fn pump_rounds(a: &mut Session, b: &mut Session, now: Instant, rounds: usize) -> Pumped {
    let (mut a_to_b, mut b_to_a) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut buf = Vec::new();
        a.poll_transmit(now, &mut buf, 1 << 20);
        let mut moved = !buf.is_empty();
        a_to_b.extend_from_slice(&buf);
        let mut input = BytesMut::from(&buf[..]);
        b.handle_input(&mut input, now);
        let mut buf = Vec::new();
        b.poll_transmit(now, &mut buf, 1 << 20);
        moved |= !buf.is_empty();
        b_to_a.extend_from_slice(&buf);
        let mut input = BytesMut::from(&buf[..]);
        a.handle_input(&mut input, now);
        if !moved {
            return Pumped {
                a_to_b,
                b_to_a,
                settled: true,
            };
        }
    }
    Pumped {
        a_to_b,
        b_to_a,
        settled: false,
    }
}

/// Moves bytes both ways until neither side has anything to say; returns the bytes each
/// side sent. Bounded, so a livelock fails the test instead of hanging it.
pub fn pump(a: &mut Session, b: &mut Session, now: Instant) -> (Vec<u8>, Vec<u8>) {
    let p = pump_rounds(a, b, now, 10_000);
    assert!(p.settled, "pump did not settle");
    (p.a_to_b, p.b_to_a)
}

/// Everything a session has to report.
pub fn drain_events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Splits a byte stream into its frames (the stream must be well-formed).
pub fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = BytesMut::from(bytes);
    while let Some(f) = frame::next_frame(&mut buf, frame::MAX_TRANSPORT_FRAME).unwrap() {
        out.push(f.to_vec());
    }
    out
}

/// A dialer `a` and a listener `b` in memory, on a simulated clock.
pub struct Pair {
    pub a: Session,
    pub b: Session,
    pub now: Instant,
    /// Every byte `a` has sent to `b` through [`Pair::pump`], and the other way.
    pub a_sent: Vec<u8>,
    pub b_sent: Vec<u8>,
}

impl Pair {
    /// Starts both sessions at `now` and runs the handshake as far as it goes (it may fail:
    /// see the sessions' errors).
    pub fn new(a_cfg: SessionConfig, b_cfg: SessionConfig, now: Instant) -> Pair {
        let mut p = Pair {
            a: Session::new(a_cfg, now).unwrap(),
            b: Session::new(b_cfg, now).unwrap(),
            now,
            a_sent: Vec::new(),
            b_sent: Vec::new(),
        };
        p.pump();
        p
    }

    /// As [`Pair::new`], for a handshake that must succeed.
    pub fn established(a_cfg: SessionConfig, b_cfg: SessionConfig, now: Instant) -> Pair {
        let p = Pair::new(a_cfg, b_cfg, now);
        assert!(
            p.a.is_established() && p.b.is_established(),
            "{:?} {:?}",
            p.a.error(),
            p.b.error()
        );
        p
    }

    /// [`pump`] at the pair's time; returns the bytes each side sent in this call.
    pub fn pump(&mut self) -> (Vec<u8>, Vec<u8>) {
        let (ab, ba) = pump(&mut self.a, &mut self.b, self.now);
        self.a_sent.extend_from_slice(&ab);
        self.b_sent.extend_from_slice(&ba);
        (ab, ba)
    }

    /// Moves the clock on by `d` and gives both sides their timers.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
    }
}
