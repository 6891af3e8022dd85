//! The sans-IO session: handshake, authentication, stream multiplexing, flow control and
//! keepalive as one state machine with no sockets and no clock.
//!
//! Inputs: [`Session::handle_input`] (bytes read from the transport),
//! [`Session::handle_timeout`] and the application calls (`open_stream`, `write`, `read`,
//! `finish`, `reset`, `close`). Outputs: [`Session::poll_transmit`] (bytes to write),
//! [`Session::poll_event`] and [`Session::poll_timeout`]. Every call takes `now`; nothing
//! here reads time or does I/O, which is what lets the fuzzers and the deterministic tests
//! drive it. After the first error every call returns that same error.
//!
//! This file holds the session-level state (phase, keys, close) and the input dispatch,
//! close and the timers. The state of the parts lives with them: the streams in
//! `streams.rs` (`Streams`), keepalive and idle tracking in `keepalive.rs`. The handshake
//! phases (KNOCK, Noise, HELLO, AUTH) are handled in `machine/handshake.rs`; established
//! frames go from [`Session::handle_input`] straight to `machine/mux.rs`, which dispatches
//! them to the streams and keepalive and packs frames.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use web_time::Instant;

use bytes::{Bytes, BytesMut};
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::keepalive::Keepalive;
use super::streams::{Cx, Streams};
use crate::error::{Error, ErrorCode};
use crate::identity::{AliasCard, NetworkFilter, Principal};
use crate::policy::Visibility;
use crate::secure_channel::{self, NoiseHandshake, NoiseTransport, MAX_PLAINTEXT};
use crate::wire::frame::{self, MAX_PREAUTH_FRAME, MAX_TRANSPORT_FRAME};
use crate::wire::message::{self, caps, Auth, Hello, Message, PROTOCOL_VERSION};
use crate::wire::profile::WireProfile;

pub use super::config::{
    default_capabilities, Clock, FixedRandomness, HandshakeProgress, SessionConfig, SessionLimits,
    BINDING_DOMAIN, INITIAL_STREAM_WINDOW, MAX_SKEW_SECS, NONCE_LEN,
};
pub use super::event::{Event, ReadOutcome};

mod handshake;
use handshake::{Handshaking, Hs2};
mod mux;
mod rekey;

#[derive(Debug)]
enum Phase {
    /// Dialer: KNOCK sent, waiting for KNOCK_RESPONSE.
    AwaitKnockResponse,
    /// Listener: first frame decides (KNOCK or Noise message 1); after a KNOCK was
    /// accepted only Noise message 1 may follow.
    AwaitFirst {
        knocked: bool,
    },
    /// Dialer: waiting for Noise message 2.
    AwaitNoise2,
    /// Listener: waiting for Noise message 3.
    AwaitNoise3,
    /// Encrypted, waiting for the peer's HELLO.
    AwaitHello,
    /// Listener: waiting for the dialer's AUTH.
    AwaitAuth,
    /// Dialer: waiting for the listener's AUTH, then AUTH_OK.
    AwaitAuthReply {
        auth_seen: bool,
    },
    /// Listener: waiting for the dialer's AUTH_OK.
    AwaitAuthOk,
    Established,
    /// Sending our last frame; no more input is processed.
    Closing,
    Closed,
}

/// A capability list: each entry its length (u32, little endian), then its bytes, in one
/// allocation shared by every session whose list is the same. Why not `Vec<String>`: a
/// session keeps two lists (ours and the peer's) for its whole life, and five capabilities
/// as `Vec<String>` are six allocations, ~300 heap bytes with malloc's overhead, each:
/// ~600 of an idle session's ~6,400 bytes before issue 36's idle-memory work (target
/// ≤ 4 KiB per session and side). Why shared: one list of its own was still 96 bytes per
/// list and session (2026-12-07, `snap2p-idleheap`: 78 requested), and nearly every
/// session holds the same two, ours and that of the peers' version. Length-prefixed, so no
/// capability the peer sends can pose as two.
#[derive(Clone, Default)]
pub(crate) struct CapList(Arc<[u8]>);

/// The lists sessions share ([`CapList::new`]): the first [`INTERNED_LISTS`] distinct ones
/// of at most [`INTERNED_LEN`] bytes a process sees, kept for its life. A peer that sends
/// lists of its own can make it hold at most 8 × 256 bytes; a list not in it just gets its
/// own allocation, as every list did before. (Ours is interned at the first session, so
/// a peer of the same version shares it whatever came before.)
static INTERNED: Mutex<Vec<Arc<[u8]>>> = Mutex::new(Vec::new());
const INTERNED_LISTS: usize = 8;
/// snap2p's own list is 78 bytes (six capabilities; 86 with `px-1`).
const INTERNED_LEN: usize = 256;

/// `list` as an allocation of `table`'s if one holds the same bytes, else its own (added
/// to `table` while it has room).
fn intern(table: &Mutex<Vec<Arc<[u8]>>>, list: Vec<u8>) -> Arc<[u8]> {
    if list.len() > INTERNED_LEN {
        return list.into();
    }
    let mut interned = table.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(same) = interned.iter().find(|l| l[..] == list[..]) {
        return same.clone();
    }
    let list: Arc<[u8]> = list.into();
    if interned.len() < INTERNED_LISTS {
        interned.push(list.clone());
    }
    list
}

impl CapList {
    fn new<S: AsRef<str>>(caps: &[S]) -> CapList {
        let mut v = Vec::with_capacity(caps.iter().map(|c| 4 + c.as_ref().len()).sum());
        for c in caps {
            let c = c.as_ref().as_bytes();
            v.extend_from_slice(&(c.len() as u32).to_le_bytes());
            v.extend_from_slice(c);
        }
        CapList(intern(&INTERNED, v))
    }

    fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let mut rest = &self.0[..];
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let n = (u32::from_le_bytes(*len) as usize).min(tail.len());
            let (cap, after) = tail.split_at(n);
            rest = after;
            // Every entry was a &str.
            std::str::from_utf8(cap).ok()
        })
    }

    fn contains(&self, cap: &str) -> bool {
        self.iter().any(|c| c == cap)
    }

    fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl std::fmt::Debug for CapList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A snapshot of the session for hosts and diagnostics.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub remote_principal: Option<Principal>,
    pub remote_node_key: Option<[u8; 32]>,
    pub session_id: Option<[u8; 32]>,
    pub remote_capabilities: Vec<String>,
    pub remote_visibility: Option<Visibility>,
    pub open_streams: usize,
    pub rtt: Option<Duration>,
    /// REKEYs this side sent (its sending key was replaced that many times) and received
    /// (capability `rekey`, docs/PROTOCOL.md §7.1).
    pub rekeys_sent: u64,
    pub rekeys_received: u64,
    /// Frames written and read, handshake included.
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Streams opened since the session began, either side.
    pub streams_opened: u64,
    /// Authenticated through hs2 (docs/PROTOCOL.md §5.8), not v1.
    pub hs2: bool,
}

/// The session's counters ([`Session::counters`]).
#[derive(Clone, Copy, Debug)]
pub struct Counters {
    pub open_streams: usize,
    pub rtt: Option<Duration>,
    /// Frames written and read, handshake included.
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Streams opened since the session began, either side.
    pub streams_opened: u64,
    /// The session authenticated through hs2, the two-round-trip handshake
    /// (docs/PROTOCOL.md §5.8), not v1.
    pub hs2: bool,
}

/// What the session reads of its [`SessionConfig`] for its whole life; the rest goes to
/// [`Handshaking`] and is dropped at AUTH_OK.
struct Settings {
    initiator: bool,
    profile: WireProfile,
    clock: Clock,
    limits: Arc<SessionLimits>,
    /// Which stream labels the remote may open (PROTOCOL.md §33).
    permissions: Option<Arc<crate::policy::Permissions>>,
}

/// The session's state, split by what owns it: the handshake's own in `Handshaking`
/// (boxed, dropped at AUTH_OK), the streams' in `Streams`, keepalive's in `Keepalive`,
/// rekeying's in `rekey::Rekey`; here what the session as a whole needs for its life.
/// Why the handshake's state is apart: an idle session kept ~300 bytes of it (Noise
/// state, nonces, deadlines, the config only AUTH reads) for its whole life, and idle
/// memory is a target (≤ 4 KiB per session and side, issue 36).
pub struct Session {
    cfg: Settings,
    local_caps: CapList,
    phase: Phase,
    /// Until AUTH_OK (kept if the handshake fails, for its deadlines and counts).
    hs: Option<Box<Handshaking>>,
    /// Boxed: a live session has none, and inline it was 40 bytes of each (issue 36).
    error: Option<Box<Error>>,
    /// Whether `error` is the peer's own close code (AUTH_FAIL / ERROR received), so
    /// its code is whatever the peer chose, not a verdict of ours.
    closed_by_peer: bool,
    transport: Option<NoiseTransport>,
    /// Frames written before the transport existed (plaintext pre-auth frames, Noise).
    out_plain: Vec<u8>,
    /// Control messages waiting to be packed into transport frames.
    control: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,

    /// The peer's HELLO: its capabilities and announced visibility.
    remote_caps: Option<CapList>,
    remote_visibility: Option<Visibility>,
    remote_principal: Option<Principal>,
    remote_node_key: Option<[u8; 32]>,
    session_id: Option<[u8; 32]>,
    was_established: bool,
    aliases: bool,

    streams: Streams,
    /// Grants the remote presented and the node accepted (PROTOCOL.md §33.4).
    grants: Vec<crate::policy::ActiveGrant>,
    /// The permissions generation whose send rate the session applies (u64::MAX: none yet).
    perm_generation: u64,
    keepalive: Keepalive,
    /// The latest `now` any call gave us.
    last_now: Instant,

    /// Frames this side wrote and read ([`SessionInfo::frames_sent`]).
    pub(crate) frames_sent: u64,
    frames_received: u64,
    /// A graceful close was requested: flush, then ERROR{code}.
    close: Option<Box<CloseRequest>>,
    /// Rekeying of the transport keys (capability `rekey`, `machine/rekey.rs`).
    rekey: rekey::Rekey,
    /// TypeScript-profile dialer, established: nothing goes out behind our AUTH_OK until
    /// the listener's first frame arrived (PROTOCOL.md §12.3).
    held: bool,
    /// Authenticated through hs2 (set at AUTH_OK, from the handshake's state).
    hs2: bool,
}

/// A graceful close asked for (`Session::close`, the idle timeout). Boxed: a session has
/// one only at its end, and inline it was 64 bytes of every idle session (issue 36).
struct CloseRequest {
    code: ErrorCode,
    reason: String,
    /// When it stops waiting for queued data (`close_linger`): the first request's.
    deadline: Instant,
}

/// How much a released dialer seals at once, in the order it was queued (the rest goes
/// out through `poll_transmit` as usual).
const RELEASE_BATCH: usize = 256 * 1024;

fn err(code: ErrorCode, msg: impl Into<String>) -> Error {
    Error::new(code, msg)
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("initiator", &self.cfg.initiator)
            .field("phase", &self.phase)
            .field("remote", &self.remote_principal)
            .field("streams", &self.streams.len())
            .finish()
    }
}

impl Session {
    pub fn new(mut cfg: SessionConfig, now: Instant) -> Result<Session, Error> {
        let ts = cfg.profile.is_typescript();
        if ts {
            // The TypeScript implementation knows no capability (HELLO `cap: []`).
            cfg.capabilities.clear();
        }
        let local_caps = CapList::new(&std::mem::take(&mut cfg.capabilities));
        let initiator = cfg.initiator;
        let mut local_nonce = [0u8; NONCE_LEN];
        match &cfg.fixed {
            Some(f) => local_nonce = f.hello_nonce,
            None => rand::thread_rng().fill_bytes(&mut local_nonce),
        }
        let noise = NoiseHandshake::with_profile(
            cfg.profile,
            initiator,
            &cfg.node_key.x25519_secret(),
            &cfg.node_key.x25519_public(),
            cfg.fixed.as_ref().map(|f| &f.ephemeral),
        )?;
        let knock_nonce = cfg.invite_token.as_ref().map(|_| {
            let mut n = [0u8; 16];
            match &cfg.fixed {
                Some(f) => n = f.knock_nonce,
                None => rand::thread_rng().fill_bytes(&mut n),
            }
            n
        });
        let invite_token = cfg.invite_token.take();
        // The config splits here: what only the handshake reads goes with it.
        let hs = Handshaking {
            noise: Some(noise),
            local_nonce,
            remote_hello: None,
            deadline: now + cfg.limits.handshake_timeout,
            step_deadline: now + cfg.limits.first_frame_timeout,
            frames: 0,
            progress: None,
            node_key: cfg.node_key,
            attestation: cfg.attestation,
            principal: cfg.principal,
            visibility: cfg.visibility,
            policy: cfg.policy,
            networks: cfg.networks,
            expected_remote: cfg.expected_remote,
            attestation_cache: cfg.attestation_cache,
            alias_card: cfg.alias_card,
            fixed: cfg.fixed,
            hs2: if cfg.hs2 && !ts {
                Hs2::Speaks
            } else {
                Hs2::Off
            },
            hello: None,
        };
        let limits = cfg.limits;
        let mut s = Session {
            frames_sent: 0,
            frames_received: 0,
            phase: if initiator {
                Phase::AwaitNoise2
            } else {
                Phase::AwaitFirst { knocked: false }
            },
            hs: Some(Box::new(hs)),
            error: None,
            closed_by_peer: false,
            transport: None,
            out_plain: Vec::new(),
            control: VecDeque::new(),
            events: VecDeque::new(),
            remote_caps: None,
            remote_visibility: None,
            remote_principal: None,
            remote_node_key: None,
            session_id: None,
            was_established: false,
            aliases: false,
            streams: Streams::new(initiator, &limits, now),
            grants: Vec::new(),
            perm_generation: u64::MAX,
            keepalive: Keepalive::new(&limits, initiator),
            last_now: now,
            close: None,
            rekey: rekey::Rekey::default(),
            held: false,
            hs2: false,
            cfg: Settings {
                initiator,
                profile: cfg.profile,
                clock: cfg.clock,
                limits,
                permissions: cfg.permissions,
            },
            local_caps,
        };
        if ts {
            s.streams.close_when_done = true;
            s.keepalive.seq_from_zero();
        }
        if initiator {
            if let (Some(token), Some(knock_nonce)) = (invite_token, knock_nonce) {
                let knock = if ts {
                    message::ts_knock(&token)
                } else {
                    Message::Knock {
                        version: PROTOCOL_VERSION,
                        nonce: &knock_nonce,
                        token: &token,
                    }
                    .to_vec()
                };
                frame::write_frame(&mut s.out_plain, &knock);
                s.frames_sent += 1;
                s.phase = Phase::AwaitKnockResponse;
            } else {
                s.write_noise1()?;
            }
        }
        Ok(s)
    }

    // -----------------------------------------------------------------------------------
    // Accessors

    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Established)
    }

    /// Both sides authenticated at some point (the session may have ended since).
    pub fn was_established(&self) -> bool {
        self.was_established
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The sticky error, once the session failed or closed.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_deref()
    }

    /// Whether the session ended because the peer closed it (its AUTH_FAIL or ERROR):
    /// then [`Session::error`] carries the peer's code and reason.
    pub fn closed_by_peer(&self) -> bool {
        self.closed_by_peer
    }

    /// Whether this side dialed (the Noise initiator).
    pub fn is_initiator(&self) -> bool {
        self.cfg.initiator
    }

    /// The wire profile this session speaks.
    pub fn profile(&self) -> WireProfile {
        self.cfg.profile
    }

    /// TypeScript-profile dialer: established, holding everything behind its AUTH_OK
    /// until the listener's first frame arrives.
    pub fn holding_after_auth_ok(&self) -> bool {
        self.held
    }

    /// Whether this side ended the session because its keepalive went unanswered.
    pub fn keepalive_expired(&self) -> bool {
        self.keepalive.expired()
    }

    pub fn remote_principal(&self) -> Option<&Principal> {
        self.remote_principal.as_ref()
    }

    /// The session id both AUTH_OKs carry (once this side sent its AUTH_OK). Where only
    /// it or the principal is needed, these two and not [`Session::info`], which copies
    /// the peer's capabilities into new strings.
    pub fn session_id(&self) -> Option<[u8; 32]> {
        self.session_id
    }

    /// The counters of [`Session::info`] without its copies of the peer's details: what
    /// `Connection::stats` reads, at every session's end (8 allocations fewer each time).
    pub fn counters(&self) -> Counters {
        Counters {
            open_streams: self.streams.len(),
            rtt: self.keepalive.rtt(),
            frames_sent: self.frames_sent,
            frames_received: self.frames_received,
            streams_opened: self.streams.opened_total,
            hs2: self.hs2,
        }
    }

    pub fn info(&self) -> SessionInfo {
        let c = self.counters();
        SessionInfo {
            remote_principal: self.remote_principal.clone(),
            remote_node_key: self.remote_node_key,
            session_id: self.session_id,
            remote_capabilities: self
                .remote_caps
                .as_ref()
                .map(CapList::to_vec)
                .unwrap_or_default(),
            remote_visibility: self.remote_visibility,
            open_streams: c.open_streams,
            rtt: c.rtt,
            rekeys_sent: self.rekey.sent,
            rekeys_received: self.rekey.received,
            frames_sent: c.frames_sent,
            frames_received: c.frames_received,
            streams_opened: c.streams_opened,
            hs2: c.hs2,
        }
    }

    /// The handshake step this session is at (for logs): `await_knock_response`,
    /// `await_first`, `await_noise2`, `await_noise3`, `await_hello`, `await_auth`,
    /// `await_auth_reply`, `await_auth_ok`, `established`, `closing`, `closed`.
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::AwaitKnockResponse => "await_knock_response",
            Phase::AwaitFirst { .. } => "await_first",
            Phase::AwaitNoise2 => "await_noise2",
            Phase::AwaitNoise3 => "await_noise3",
            Phase::AwaitHello => "await_hello",
            Phase::AwaitAuth => "await_auth",
            Phase::AwaitAuthReply { .. } => "await_auth_reply",
            Phase::AwaitAuthOk => "await_auth_ok",
            Phase::Established => "established",
            Phase::Closing => "closing",
            Phase::Closed => "closed",
        }
    }

    pub fn stream_label(&self, id: u64) -> Option<&str> {
        self.streams.label(id)
    }

    /// The AEAD our frames are sealed with now: ChaChaPoly through the HELLOs, AES-256-GCM
    /// after them when both list `aes-gcm` (docs/PROTOCOL.md §7.2); None before Noise ends.
    pub fn transport_cipher(&self) -> Option<secure_channel::TransportCipher> {
        self.transport.as_ref().map(|t| t.cipher())
    }

    /// Whether the peer listed a capability in its HELLO (and we did too).
    pub fn both_support(&self, cap: &str) -> bool {
        self.local_caps.contains(cap) && self.remote_caps.as_ref().is_some_and(|r| r.contains(cap))
    }

    /// Whether the peer has sent one complete frame (or the session authenticated).
    pub fn peer_answered(&self) -> bool {
        self.was_established || self.hs.as_ref().is_some_and(|h| h.frames > 0)
    }

    /// Whether this dialer offered hs2 as its first frame and the listener sent nothing at
    /// all: how a v1 listener answers one (it closes without a word), so the dial is worth
    /// one more try with v1 (docs/PROTOCOL.md §5.8). Never after a KNOCK: a second KNOCK
    /// would present the invite again, and a one-time one is spent.
    pub fn hs2_unanswered(&self) -> bool {
        self.hs
            .as_ref()
            .is_some_and(|h| h.hs2 == Hs2::Offered && h.frames == 0)
    }

    /// Gives back the capacity of empty queues (events, control messages, handshake
    /// output, the stream table's): called by the driver at the end of each poll, so an
    /// idle session holds none (issue 36, idle memory).
    pub fn release_idle(&mut self) {
        use super::release::ReleaseIfEmpty;
        self.events.release_if_empty();
        self.control.release_if_empty();
        self.out_plain.release_if_empty();
        self.streams.release_idle();
    }

    /// Reports this handshake's progress to `p` from now on (admission control).
    pub fn track_progress(&mut self, p: Arc<HandshakeProgress>) {
        if let Some(h) = self.hs.as_mut() {
            h.progress = Some(p);
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Removes a stream from the accept queue (it was routed to a built-in module).
    pub fn take_from_accept_queue(&mut self, id: u64) -> bool {
        self.streams.take_from_accept_queue(id)
    }

    /// Next inbound stream waiting to be accepted.
    pub fn accept_stream(&mut self) -> Option<u64> {
        self.streams.accept()
    }

    // -----------------------------------------------------------------------------------
    // Failure

    /// Fails the session: queues the peer notice (AUTH_FAIL before AUTH_OK, ERROR after)
    /// and makes `err` sticky.
    fn fail(&mut self, e: Error) {
        if self.error.is_some() {
            return;
        }
        let notice_code = e.code;
        let established = matches!(self.phase, Phase::Established);
        let reason = Some(e.message.as_str()).filter(|r| !r.is_empty() && r.len() < 200);
        let notice = if established {
            Message::Error {
                code: notice_code,
                reason,
            }
        } else {
            Message::AuthFail {
                code: notice_code,
                reason,
            }
        }
        .to_vec();
        // Stealth listeners say nothing to a peer that has not even knocked properly, and
        // nobody answers a peer whose bytes are not framed (it is not speaking snap2p).
        let silent = matches!(
            e.code,
            ErrorCode::MessageTooLarge | ErrorCode::HandshakeFailed
        ) && !established;
        if !silent {
            if let Some(t) = self.transport.as_mut() {
                let _ = t.encrypt_frame(&notice, &mut self.out_plain);
                self.frames_sent += 1;
            } else {
                // Before Noise: never 96 bytes, the size of Noise message 2 (§5.2).
                let notice = message::plaintext_auth_fail(notice_code, reason);
                frame::write_frame(&mut self.out_plain, &notice);
                self.frames_sent += 1;
            }
        }
        self.enter_closed(e);
    }

    /// The peer ended the session (AUTH_FAIL / ERROR received, or transport EOF).
    fn enter_closed_by_peer(&mut self, code: ErrorCode, reason: Option<&str>) {
        if self.error.is_none() {
            self.closed_by_peer = true;
        }
        self.enter_closed(remote_error(code, reason));
    }

    fn enter_closed(&mut self, e: Error) {
        if self.error.is_some() {
            return;
        }
        self.error = Some(Box::new(e.clone()));
        self.phase = if self.out_plain.is_empty() {
            Phase::Closed
        } else {
            Phase::Closing
        };
        self.control.clear();
        // Wake everything that waits on a stream.
        self.streams.wake_all(&mut self.events);
        self.events.push_back(Event::Closed(e));
    }

    fn check_open(&self) -> Result<(), Error> {
        match &self.error {
            Some(e) => Err(as_operation_error(e)),
            None => Ok(()),
        }
    }

    /// The transport reached EOF or failed underneath us.
    pub fn handle_transport_closed(&mut self, e: Option<Error>) {
        let e = e.unwrap_or_else(|| {
            if !self.cfg.initiator && matches!(self.phase, Phase::AwaitNoise3) {
                // A dialer of the other profile cannot read our Noise message 2 and hangs
                // up without a word (a snap2p dialer says why first, `on_noise3`).
                err(
                    ErrorCode::HandshakeFailed,
                    format!(
                        "the dialer closed the connection after our Noise message 2 without \
                         answering: a dialer of the other wire profile does exactly that \
                         (this listener speaks {}; a dialer speaking {} needs its own \
                         listener on another port, PROTOCOL.md §12.2)",
                        self.cfg.profile.describe(),
                        self.cfg.profile.other().describe()
                    ),
                )
            } else if self.cfg.initiator && !self.peer_answered() {
                err(
                    ErrorCode::ConnectionClosed,
                    "the listener closed the connection without answering (a stealth \
                     listener shedding load or rate-limiting this address closes without a \
                     word: PROTOCOL.md §9)",
                )
            } else {
                err(
                    ErrorCode::ConnectionClosed,
                    "the peer closed the connection",
                )
            }
        });
        self.out_plain.clear();
        self.enter_closed(e);
        self.phase = Phase::Closed;
    }

    // -----------------------------------------------------------------------------------
    // Input

    fn frame_limit(&self) -> usize {
        if self.transport.is_none() {
            MAX_PREAUTH_FRAME
        } else if self.cfg.profile.is_typescript() && self.was_established {
            // Only an authenticated peer gets the TypeScript implementation's larger frames.
            self.cfg.limits.ts_max_frame.max(MAX_TRANSPORT_FRAME)
        } else {
            MAX_TRANSPORT_FRAME
        }
    }

    /// Consumes complete frames from `buf` (bytes read from the transport); a partial frame
    /// stays in `buf` for the next call.
    pub fn handle_input(&mut self, buf: &mut BytesMut, now: Instant) {
        self.last_now = now;
        while self.error.is_none() {
            let f = match frame::next_frame(buf, self.frame_limit()) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    self.fail(e);
                    break;
                }
            };
            self.frames_received += 1;
            if let Err(e) = self.handle_frame(f, now) {
                self.fail(e);
            }
        }
        if self.error.is_some() {
            buf.clear();
        }
    }

    fn handle_frame(&mut self, f: BytesMut, now: Instant) -> Result<(), Error> {
        if !matches!(
            self.phase,
            Phase::Established | Phase::Closing | Phase::Closed
        ) {
            // A complete handshake frame: progress, whatever it turns out to say (a
            // wrong one fails the session below).
            if let Some(h) = self.hs.as_mut() {
                h.step_deadline = now + self.cfg.limits.handshake_step_timeout;
                h.frames += 1;
                if let Some(p) = &h.progress {
                    p.record(now);
                }
            }
        }
        match self.phase {
            Phase::AwaitKnockResponse => self.on_knock_response(&f),
            Phase::AwaitFirst { knocked } => self.on_first_frame(&f, knocked, now),
            Phase::AwaitNoise2 => self.on_noise2(&f, now),
            Phase::AwaitNoise3 => self.on_noise3(&f, now),
            Phase::Closing | Phase::Closed => Ok(()),
            _ => {
                let plaintext = self
                    .transport
                    .as_mut()
                    .ok_or_else(|| err(ErrorCode::Internal, "no transport"))?
                    .open_frame(f)?
                    .freeze();
                if self.held {
                    // The listener's first frame: its session reads from its own buffer
                    // now, so what we held can go, in the order it was queued (before
                    // any answer to this frame).
                    self.release(now);
                }
                let data = plaintext.clone();
                // Per message: the frame that completes the handshake may carry the first
                // stream messages behind AUTH_OK.
                let mut first = true;
                message::decode_batch(&data, |m| {
                    let alone = std::mem::replace(&mut first, false);
                    if self.error.is_some() {
                        Ok(())
                    } else if self.rekey.recv_pending
                        || (!alone && matches!(m, Message::Rekey { .. }))
                    {
                        // Its frame is the last under the old key: nothing may share it.
                        Err(err(
                            ErrorCode::InvalidMessage,
                            "REKEY must be the only message of its transport frame",
                        ))
                    } else if matches!(self.phase, Phase::Established) {
                        self.on_established_message(m, &plaintext, now)
                    } else {
                        self.on_handshake_message(m, now)
                    }
                })?;
                if std::mem::take(&mut self.rekey.recv_pending) {
                    // The peer's next frame is sealed under REKEY(key) (PROTOCOL.md §7.1).
                    self.transport
                        .as_mut()
                        .ok_or_else(|| err(ErrorCode::Internal, "no transport"))?
                        .rekey_recv()?;
                }
                self.keepalive.on_authentic_frame(now);
                Ok(())
            }
        }
    }

    /// The context the streams' calls take.
    fn streams_cx(&mut self) -> (&mut Streams, Cx<'_>) {
        (
            &mut self.streams,
            Cx {
                limits: &self.cfg.limits,
                now: self.last_now,
                events: &mut self.events,
                control: &mut self.control,
            },
        )
    }

    // -----------------------------------------------------------------------------------
    // Application calls

    /// Sends a new AliasCard on an established session (both sides listed `aliases`), so
    /// a card set after AUTH_OK reaches peers already connected. Returns whether it was
    /// queued. A session still in its handshake sends this card after its AUTH_OK instead
    /// of the one it started with (and returns false: nothing to write yet).
    pub fn send_alias_card(&mut self, card: Arc<Vec<u8>>) -> bool {
        if let Some(h) = self.hs.as_mut().filter(|_| self.error.is_none()) {
            h.alias_card = Some(card);
            return false;
        }
        if !self.is_established() || self.is_closed() || self.close.is_some() {
            return false;
        }
        if !self.aliases {
            return false;
        }
        let msg = Message::AliasCard { card: &card }.to_vec();
        self.send_control(msg);
        true
    }

    /// Requests a graceful close: queued stream data is flushed (for at most
    /// `close_linger`), then ERROR{code} is sent and the session ends.
    pub fn close(&mut self, now: Instant, code: ErrorCode, reason: &str) {
        if self.error.is_some() {
            return;
        }
        self.last_now = now;
        if !self.is_established() {
            self.fail(err(code, reason.to_string()));
            return;
        }
        self.request_close(code, reason.to_string());
    }

    pub(super) fn send_control(&mut self, msg: Vec<u8>) {
        self.control.push_back(msg);
    }

    /// The first request's deadline holds: closing again does not extend the linger.
    fn request_close(&mut self, code: ErrorCode, reason: String) {
        let deadline = match &self.close {
            Some(c) => c.deadline,
            None => self.last_now + self.cfg.limits.close_linger,
        };
        self.close = Some(Box::new(CloseRequest {
            code,
            reason,
            deadline,
        }));
    }

    /// How long a close may wait on the peer (`SessionLimits::close_linger`).
    #[cfg(feature = "runtime")]
    pub(super) fn close_linger(&self) -> std::time::Duration {
        self.cfg.limits.close_linger
    }

    /// Whether a requested close has waited long enough for queued data.
    pub(super) fn close_linger_over(&self, now: Instant) -> bool {
        self.close.as_ref().is_some_and(|c| now >= c.deadline)
    }
}

impl Session {
    // -----------------------------------------------------------------------------------
    // Timers

    /// The next instant [`Session::handle_timeout`] must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        if !self.is_established() {
            return self.hs.as_ref().map(|h| h.deadline.min(h.step_deadline));
        }
        let mut t: Option<Instant> = None;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        consider(self.keepalive.poll_timeout());
        if self.streams.is_empty() {
            consider(self.keepalive.idle_deadline());
        }
        consider(self.streams.poll_timeout(self.last_now));
        consider(self.rekey_timeout());
        consider(self.close.as_ref().map(|c| c.deadline));
        t
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        if self.error.is_some() {
            return;
        }
        if !self.is_established() {
            let Some(h) = self.hs.as_ref() else { return };
            if now >= h.deadline {
                self.fail(err(
                    ErrorCode::Timeout,
                    "the handshake did not complete in time",
                ));
            } else if now >= h.step_deadline {
                let what = if h.frames == 0 {
                    "no complete frame arrived in time"
                } else {
                    "the next handshake message did not arrive in time"
                };
                self.fail(err(ErrorCode::Timeout, what));
            }
            return;
        }
        match self.keepalive.handle_timeout(now, self.cfg.clock.unix(now)) {
            Err(e) if self.held => {
                self.fail(err(
                    e.code,
                    format!(
                        "the listener sent nothing after AUTH_OK within {} ms (in the \
                         TypeScript profile the dialer waits for the listener's first frame \
                         before it sends anything, PROTOCOL.md §12.3)",
                        self.cfg.limits.keepalive_timeout.as_millis()
                    ),
                ));
                return;
            }
            Err(e) => {
                self.fail(e);
                return;
            }
            Ok(Some(ping)) => self.send_control(ping),
            Ok(None) => {}
        }
        let idle_over = self.keepalive.idle_deadline().is_some_and(|t| now >= t);
        if self.streams.is_empty() && idle_over && self.close.is_none() {
            self.request_close(ErrorCode::Ok, "idle timeout".into());
        }
        self.rekey_handle_timeout(now);
        let (streams, mut cx) = self.streams_cx();
        streams.handle_timeout(&mut cx);
    }

    /// Whether there is anything for [`Session::poll_transmit`] to write.
    pub fn wants_transmit(&self) -> bool {
        !self.out_plain.is_empty()
            || matches!(self.phase, Phase::Closing)
            // A close asked for while holding ends at the next transmit (nothing is sent).
            || (self.held && self.close.is_some() && self.error.is_none())
            || (self.transport.is_some()
                && !self.held
                && self.error.is_none()
                && (!self.control.is_empty()
                    || (self.is_established()
                        && (self.streams.wants_transmit() || self.rekey_wants_transmit()))
                    || self.close.is_some()))
    }
}

/// What an operation on a stream of a finished session reports: the session's error, or
/// ERR_CONNECTION_CLOSED when it ended gracefully (the one rule, [`Error::as_failure`]).
pub(super) fn as_operation_error(e: &Error) -> Error {
    e.clone().as_failure()
}

fn remote_error(code: ErrorCode, reason: Option<&str>) -> Error {
    let reason = reason.unwrap_or_default();
    let msg = if reason.is_empty() {
        format!("the peer closed the session: {}", code.describe())
    } else {
        format!("the peer closed the session: {reason}")
    };
    Error::new(code, msg)
}

#[cfg(test)]
impl Session {
    /// Whether the handshake's state is still held (it goes at AUTH_OK).
    pub(crate) fn holds_handshake_state_for_test(&self) -> bool {
        self.hs.is_some()
    }
    pub(crate) fn local_nonce_for_test(&mut self, nonce: [u8; 32]) {
        if let Some(h) = self.hs.as_mut() {
            h.local_nonce = nonce;
        }
    }

    pub(crate) fn replace_control_for_test(&mut self, msg: Vec<u8>) {
        self.control.clear();
        self.control.push_back(msg);
    }

    /// Σ of the receive windows' growth beyond the initial window.
    pub(crate) fn window_growth_for_test(&self) -> u64 {
        self.streams.window_growth()
    }

    /// PINGs this side has sent.
    pub(crate) fn pings_sent_for_test(&self) -> u64 {
        self.keepalive.pings_sent()
    }

    /// Bytes queued in a stream's send buffer.
    pub(crate) fn send_buffered_for_test(&self, id: u64) -> usize {
        self.streams.send_buffered(id)
    }

    /// Bytes counted against the session's send buffer.
    pub(crate) fn session_send_queued_for_test(&self) -> usize {
        self.streams.session_send_queued()
    }
}

#[cfg(test)]
mod cap_list_tests {
    use super::{intern, CapList, INTERNED_LEN, INTERNED_LISTS};
    use std::sync::{Arc, Mutex};

    #[test]
    fn lists_read_back_whole() {
        let a = CapList::new(&["flow-control", "batch", "x"]);
        let b = CapList::new(&["flow-control".to_string(), "batch".into(), "x".into()]);
        assert_eq!(a.to_vec(), ["flow-control", "batch", "x"]);
        assert_eq!(a.to_vec(), b.to_vec());
        assert!(a.contains("batch") && !a.contains("batc"));
    }

    #[test]
    fn equal_lists_share_one_allocation_among_the_first_distinct_ones() {
        // A table of its own: the process's is shared with every other test's sessions.
        let table = Mutex::new(Vec::new());
        let a = intern(&table, b"abc".to_vec());
        assert!(Arc::ptr_eq(&a, &intern(&table, b"abc".to_vec())));
        for i in 1..INTERNED_LISTS {
            intern(&table, vec![i as u8]);
        }
        // Full: a new list gets its own allocation and the table does not grow.
        let x = intern(&table, b"new".to_vec());
        assert!(!Arc::ptr_eq(&x, &intern(&table, b"new".to_vec())));
        assert_eq!(table.lock().unwrap().len(), INTERNED_LISTS);
        assert!(
            Arc::ptr_eq(&a, &intern(&table, b"abc".to_vec())),
            "the first stay shared"
        );
        // Over INTERNED_LEN bytes: never kept.
        let table = Mutex::new(Vec::new());
        let long = vec![7u8; INTERNED_LEN + 1];
        assert!(!Arc::ptr_eq(
            &intern(&table, long.clone()),
            &intern(&table, long)
        ));
        assert!(table.lock().unwrap().is_empty());
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn size_of_session_leaves_the_handshake_out() {
        // Every idle session holds one, inside its shared state (`shared.rs`), for its
        // whole life; the handshake's ~300 bytes are boxed apart and dropped at AUTH_OK.
        // On x86_64 (2026-12-07): 1,064 with the native crypto backends, 1,080 with the
        // pure-Rust ones (the browser build's); 1,488 with the handshake's state inline,
        // 1,184 with the keepalive's copies of the limits, the close request and the
        // error too.
        let n = std::mem::size_of::<super::Session>();
        assert!(n <= 1088, "Session is {n} bytes");
    }
}
