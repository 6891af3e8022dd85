//! Shared fixtures of the snap2p fuzz targets, on top of the core's sans-IO harness
//! ([`snap2p::testing`]): two fixed identities, session configs with fixed randomness and
//! a simulated clock, and a "shadow" initiator that holds the same Noise transport keys as
//! a real initiator `Session` (so a target can feed the responder arbitrary messages that
//! decrypt correctly).
//!
//! Everything expensive (wallet derivation, attestation signing) happens once per process.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use snap2p::policy::{NodePolicy, Visibility};
pub use snap2p::testing::{fixed, frames, Pair, Side, T0_UNIX};
use snap2p::unstable::secure_channel::{NoiseHandshake, NoiseTransport};
use snap2p::unstable::{AttestationCache, SessionConfig, SessionLimits};

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
            dialer: Side::attested(1, T0_UNIX - 60, 7 * 86_400),
            listener: Side::attested(2, T0_UNIX - 60, 7 * 86_400),
            cache: Arc::new(AttestationCache::default()),
            stealth_policy: Arc::new(stealth),
            invite,
            base: Instant::now(),
        }
    })
}

pub fn limits() -> SessionLimits {
    let mut l = SessionLimits::default();
    l.handshake_timeout = Duration::from_secs(10);
    l.keepalive_interval = Duration::from_secs(30);
    l.keepalive_timeout = Duration::from_secs(10);
    // Small buffers so short inputs reach flow control and back-pressure.
    l.stream_send_buffer = 64 * 1024;
    // Below a few streams' worth: writers also wait for session-wide room.
    l.session_send_buffer = 96 * 1024;
    l.max_stream_window = 1024 * 1024;
    l.max_unflowed_buffer = 1024 * 1024;
    l.max_streams = 16;
    // Tiny rekey thresholds (docs/PROTOCOL.md §7.1), so short inputs cross them: the
    // sessions' own sending keys switch every few frames, KiB or (simulated) second. Above
    // the dialer's 3 handshake frames (HELLO, AUTH, AUTH_OK), so `shadow_dialer` can follow
    // the handshake without a rekey in it.
    l.rekey_after_bytes = 16 * 1024;
    l.rekey_after_frames = 6;
    l.rekey_interval = Some(Duration::from_secs(1));
    l
}

/// A session config for the fixture's dialer or listener, with fixed randomness.
pub fn config(initiator: bool, stealth: bool) -> SessionConfig {
    let f = fixture();
    let side = if initiator { &f.dialer } else { &f.listener };
    let mut c = snap2p::testing::config(side, initiator, f.base);
    c.limits = std::sync::Arc::new(limits());
    c.attestation_cache = f.cache.clone();
    c.fixed = Some(Box::new(fixed(if initiator { 1 } else { 2 })));
    // The same cipher on every machine (by default `aes-gcm` is listed only where the CPU
    // has AES instructions): AES-256-GCM after the HELLOs, as most peers now run.
    snap2p::testing::set_aes_gcm(&mut c, true);
    // The dialer speaks v1, which `shadow_dialer` replays; listeners speak hs2 too
    // (docs/PROTOCOL.md §5.8), so `session_responder` reaches the offer's path.
    c.hs2 = !initiator;
    if stealth {
        if initiator {
            c.invite_token = Some(f.invite.clone());
        } else {
            c.policy = Some(f.stealth_policy.clone());
            c.visibility = Visibility::Stealth;
        }
    }
    c
}

/// An established pair (dialer `a`, listener `b`) at `now`, with the bytes of the handshake
/// each side sent.
pub fn established_pair(now: Instant) -> Pair {
    Pair::established(config(true, false), config(false, false), now)
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
    // None of them can be a REKEY: fewer than the frame threshold, far under the bytes.
    assert!(((a_frames.len() - 2) as u64) < limits().rekey_after_frames);
    // The first of them is the dialer's HELLO, under ChaChaPoly; both configs list
    // `aes-gcm` (`config`), so every later one is AES-256-GCM (docs/PROTOCOL.md §7.2).
    let mut sink = Vec::new();
    for i in 2..a_frames.len() {
        t.encrypt_frame(b"", &mut sink).unwrap();
        if i == 2 {
            t.switch_to_aes_gcm().unwrap();
        }
    }
    t
}
