//! What a session is made from: its configuration, limits and clock, and the protocol
//! constants its parts share. A leaf of the session modules (only the attestation cache
//! below it), so the machine's parts can take their limits from here without depending on
//! the machine.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use web_time::Instant;

use super::cache::AttestationCache;
use crate::identity::{NetworkFilter, NodeKey, Principal};
use crate::policy::{NodePolicy, Permissions, Visibility};
use crate::wire::message::caps;
use crate::wire::profile::{WireProfile, TS_MAX_FRAME};

/// Domain separation for the transcript-binding signature in AUTH `hs`.
pub const BINDING_DOMAIN: &[u8] = b"snap2p-session-binding-v1";
/// Allowed clock skew for HELLO timestamps and attestations (spec §2.6).
pub const MAX_SKEW_SECS: i64 = crate::identity::CLOCK_SKEW_SECS;
/// HELLO nonce length.
pub const NONCE_LEN: usize = 32;
/// Initial per-stream window when both sides list `flow-control`.
pub const INITIAL_STREAM_WINDOW: u64 = 256 * 1024;

/// Tunables of one session. Defaults follow the reference implementation where it has
/// one (keepalive 30 s / 10 s).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionLimits {
    /// Time allowed for the whole handshake, first byte to AUTH_OK.
    pub handshake_timeout: Duration,
    /// Time allowed from the start of a session to the first complete frame from the peer
    /// (listener: its KNOCK or Noise message 1; dialer: the listener's first answer). A
    /// peer that connects and sends a byte or nothing holds a handshake slot this long at
    /// most, not the whole `handshake_timeout` (docs/PROTOCOL.md §9).
    pub first_frame_timeout: Duration,
    /// Time allowed for each further handshake message after the previous one arrived.
    pub handshake_step_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    /// Close a session with no open stream after this long (None: never).
    pub idle_timeout: Option<Duration>,
    /// Streams open at once, counted per direction of opening.
    pub max_streams: usize,
    /// Largest per-stream receive window auto-tuning may reach.
    pub max_stream_window: u64,
    /// Most receive window the streams of one session may have grown beyond their initial
    /// window, together: bounds what a peer can make this side buffer by pacing its
    /// sends until many streams' windows have grown.
    pub max_session_window_growth: u64,
    /// Bytes the application may queue per stream before writes wait.
    pub stream_send_buffer: usize,
    /// Bytes the application may queue across all streams of the session before writes
    /// wait (0: no session-wide bound). Only bytes the peer has granted credit for count,
    /// so streams stalled on a slow reader never hold up the others. Waiting writers get
    /// room in the order they asked for it. Bounds memory when many streams write at
    /// once: 1,000 streams then churn a few MiB instead of 1,000 send buffers.
    pub session_send_buffer: usize,
    /// Bytes buffered for reading across all streams of a peer without flow control.
    pub max_unflowed_buffer: usize,
    /// Inbound OPEN_STREAM per second allowed (0: unlimited); above it: ERR_STREAM_REFUSED.
    pub max_stream_opens_per_sec: u32,
    /// Outbound bytes per second for the whole session (0: unlimited).
    pub session_send_rate: u64,
    /// Outbound bytes per second per stream (0: unlimited).
    pub stream_send_rate: u64,
    /// How long a graceful close waits for queued stream data to go out (a peer that stops
    /// reading stops granting credit): then ERROR{code} is sent anyway and what is still
    /// queued is dropped, so closing never hangs on a stalled peer.
    pub close_linger: Duration,
    /// With capability `rekey` on both sides: this side rekeys its sending direction
    /// (REKEY, docs/PROTOCOL.md §7.1) once it has sealed this many bytes of transport
    /// messages (ciphertext and tag) under the current key (0: no byte trigger).
    pub rekey_after_bytes: u64,
    /// … or this many transport frames: one frame is one Noise transport message, one AEAD
    /// seal under one nonce, carrying one or more control messages (0: no frame trigger).
    pub rekey_after_frames: u64,
    /// … or once the key is this old and has sealed at least one frame (None: no time
    /// trigger). Counted from establishment for the first key, then from each rekey.
    pub rekey_interval: Option<Duration>,
    /// TypeScript profile only: the largest transport frame accepted from an
    /// authenticated peer (the TypeScript implementation writes one frame per stream write,
    /// up to 16 MiB). Before AUTH_OK the standard limits hold in every profile, and the
    /// receive buffer grows with the bytes that arrive, not with the announced length.
    pub ts_max_frame: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            handshake_timeout: Duration::from_secs(10),
            // 3 s: an honest peer sends its first frame right after the transport is up,
            // and each handshake message one round trip after the previous; 3 s covers a
            // 1 s RTT (a satellite or congested mobile link) with room for a retransmit.
            first_frame_timeout: Duration::from_secs(3),
            handshake_step_timeout: Duration::from_secs(3),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            idle_timeout: None,
            max_streams: 1024,
            max_stream_window: 16 * 1024 * 1024,
            max_session_window_growth: 64 * 1024 * 1024,
            // 1 MiB: a writer is woken at half of it, and the 512 KiB left then keep the
            // socket busy for ~0.5 ms at 1 GB/s while the writer's thread wakes. At 256 KiB
            // (~0.1 ms) a writer on another thread (every language binding) often woke too
            // late and the transport idled: Node.js 0.74x of native, 0.90x at 1 MiB
            // (docs/BENCHMARKS.md, "What changed" 14).
            stream_send_buffer: 1024 * 1024,
            session_send_buffer: 1024 * 1024,
            max_unflowed_buffer: 64 * 1024 * 1024,
            max_stream_opens_per_sec: 0,
            session_send_rate: 0,
            stream_send_rate: 0,
            close_linger: Duration::from_secs(10),
            // Seed 002's key rotation thresholds (1 GB, 1 hour, 100k messages), the bytes as
            // 2^30. A "message" is a transport frame, what a key seals one nonce at a time:
            // full 64 KiB frames reach 1 GiB after ~16,400 frames, so under bulk data the
            // byte trigger fires first (about once per second at 1 GB/s); small-message
            // traffic (chat, RPC) reaches 100,000 frames first. A rekey costs one ChaCha20
            // block, a key setup and a 25-byte frame.
            rekey_after_bytes: 1 << 30,
            rekey_after_frames: 100_000,
            rekey_interval: Some(Duration::from_secs(3600)),
            ts_max_frame: TS_MAX_FRAME,
        }
    }
}

/// How far a handshake in progress has come, written by the session machine as frames
/// arrive and read lock-free by admission control (`crate::admission`) when it must choose
/// a stalled handshake to evict. Only complete frames count: a byte at a time is no
/// progress. (Admission also records the first frame it saw in the first bytes it read,
/// before the machine does: the count is of progress steps, not exactly of frames.)
#[derive(Debug)]
pub struct HandshakeProgress {
    base: Instant,
    frames: AtomicU32,
    /// Milliseconds after `base` of the last complete frame (0: none yet).
    last_ms: AtomicU64,
}

impl HandshakeProgress {
    pub fn new(base: Instant) -> Self {
        HandshakeProgress {
            base,
            frames: AtomicU32::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    /// One complete handshake frame arrived at `now`.
    pub fn record(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.base).as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    /// Complete frames received so far.
    pub fn frames(&self) -> u32 {
        self.frames.load(Ordering::Relaxed)
    }

    /// When the last complete frame arrived (the start, when none has).
    pub fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Fixed randomness so a handshake transcript can be reproduced as a test vector.
#[derive(Clone, Debug)]
pub struct FixedRandomness {
    pub ephemeral: [u8; 32],
    pub hello_nonce: [u8; 32],
    pub session_id: [u8; 32],
    pub knock_nonce: [u8; 16],
}

/// Maps a monotonic instant to unix seconds, so the machine never reads the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub base: Instant,
    pub base_unix: i64,
}

impl Clock {
    pub fn system() -> Self {
        Clock {
            base: Instant::now(),
            base_unix: crate::unix_now(),
        }
    }
    pub fn unix(&self, now: Instant) -> i64 {
        if now >= self.base {
            self.base_unix + now.duration_since(self.base).as_secs() as i64
        } else {
            self.base_unix - self.base.duration_since(now).as_secs() as i64
        }
    }
}

/// Everything a session needs to start.
#[derive(Clone)]
pub struct SessionConfig {
    pub initiator: bool,
    pub node_key: NodeKey,
    /// Our encoded NodeKeyAttestation.
    pub attestation: Arc<Vec<u8>>,
    pub principal: Principal,
    pub visibility: Visibility,
    /// Listener policy (KNOCK, allowlist, networks). Dialers may set it for the network
    /// filter and allowlist too.
    pub policy: Option<Arc<NodePolicy>>,
    /// Networks the remote principal may be on (dialer side).
    pub networks: NetworkFilter,
    /// Which stream labels the remote may open, checked at each inbound OPEN_STREAM on
    /// sessions of either direction (None: every label; PROTOCOL.md §33).
    pub permissions: Option<Arc<Permissions>>,
    /// Dialer: send KNOCK with this token first.
    pub invite_token: Option<Vec<u8>>,
    /// Dialer: the principal we mean to reach (dial by principal).
    pub expected_remote: Option<Principal>,
    pub capabilities: Vec<String>,
    /// Shared by the sessions of a peer: an idle session keeps its configuration for its
    /// whole life, and its own copy was 224 bytes of each one's heap (docs/BENCHMARKS.md,
    /// "Idle memory"). [`SessionConfig::limits_mut`] changes one config's.
    pub limits: Arc<SessionLimits>,
    pub attestation_cache: Arc<AttestationCache>,
    /// Our encoded AliasCard, sent after AUTH_OK when both list `aliases`.
    pub alias_card: Option<Arc<Vec<u8>>>,
    pub clock: Clock,
    /// Boxed: tests set it; inline it was 113 bytes of every session.
    pub fixed: Option<Box<FixedRandomness>>,
    /// The wire dialect (docs/PROTOCOL.md §12): standard, or the TypeScript
    /// implementation's (`capabilities` are then ignored: that profile has none).
    pub profile: WireProfile,
    /// The two-round-trip handshake (docs/PROTOCOL.md §5.8): a dialer offers it in Noise
    /// message 1, a listener accepts an offer. Off, a listener treats an offer as v1 did
    /// (not a message 1: closed without a word). Ignored under the TypeScript profile.
    pub hs2: bool,
}

impl SessionConfig {
    /// This config's limits, to change (copied first if other configs share them).
    pub fn limits_mut(&mut self) -> &mut SessionLimits {
        Arc::make_mut(&mut self.limits)
    }
}

/// The capabilities this implementation lists by default: all of them but
/// `transcript-binding`, and `aes-gcm` only where this CPU runs AES-256-GCM in hardware
/// ([`crate::secure_channel::aes_gcm_accelerated`]). Why not `transcript-binding`
/// (binding 2 of docs/PROTOCOL.md §5.5; `SessionConfig`s list it on both sides to use it):
/// the Noise static key is the node key's own scalar, so Noise XX already proves what the
/// signature would, and being negotiated the signature stops no active attacker (whoever
/// writes a HELLO may leave it out). Its signature and strict check were a third of a first
/// contact's handshake CPU: 469 → 310 µs for both sides in process, and 1.37–1.46× →
/// 1.70–1.89× libp2p's first contacts at 16 in flight (docs/proposals/0002-one-binding.md).
pub fn default_capabilities() -> Vec<String> {
    let mut caps: Vec<String> = [caps::FLOW_CONTROL, caps::BATCH, caps::ALIASES, caps::REKEY]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if crate::secure_channel::aes_gcm_accelerated() {
        caps.push(caps::AES_GCM.to_string());
    }
    caps
}
