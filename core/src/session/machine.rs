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
//! This file holds the state, the input dispatch, close and the timers; the handshake half
//! (KNOCK, Noise, HELLO, AUTH) is in `machine/handshake.rs`, the multiplexing half (stream
//! messages and calls, frame packing) in `machine/mux.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::cache::AttestationCache;
use super::send_buf::SendBuf;
use super::send_room::SendRoom;
use super::stream_state::StreamState;
use crate::error::{Error, ErrorCode};
use crate::identity::{AliasCard, NetworkFilter, NodeKey, Principal};
use crate::policy::{NodePolicy, Visibility};
use crate::secure_channel::{self, NoiseHandshake, NoiseTransport, MAX_PLAINTEXT};
use crate::wire::frame::{self, MAX_PREAUTH_FRAME, MAX_TRANSPORT_FRAME};
use crate::wire::message::{
    self, caps, encode_stream_data_header, encode_stream_data_trailer, stream_data_overhead, Auth,
    Hello, Message, PROTOCOL_VERSION,
};

mod handshake;
mod mux;

/// Domain separation for the transcript-binding signature in AUTH `hs`.
pub const BINDING_DOMAIN: &[u8] = b"snap2p-session-binding-v1";
/// Allowed clock skew for HELLO timestamps and attestations (spec §2.6).
pub const MAX_SKEW_SECS: i64 = 300;
/// HELLO nonce length.
pub const NONCE_LEN: usize = 32;
/// Initial per-stream window when both sides list `flow-control`.
pub const INITIAL_STREAM_WINDOW: u64 = 256 * 1024;

/// Tunables of one session. Defaults follow the reference implementation where it has
/// one (keepalive 30 s / 10 s).
#[derive(Clone, Debug)]
pub struct SessionLimits {
    pub handshake_timeout: Duration,
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
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            handshake_timeout: Duration::from_secs(10),
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
        }
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
    /// Dialer: send KNOCK with this token first.
    pub invite_token: Option<Vec<u8>>,
    /// Dialer: the principal we mean to reach (dial by principal).
    pub expected_remote: Option<Principal>,
    pub capabilities: Vec<String>,
    pub limits: SessionLimits,
    pub attestation_cache: Arc<AttestationCache>,
    /// Our encoded AliasCard, sent after AUTH_OK when both list `aliases`.
    pub alias_card: Option<Arc<Vec<u8>>>,
    pub clock: Clock,
    pub fixed: Option<FixedRandomness>,
}

/// The capabilities this implementation speaks.
pub fn default_capabilities() -> Vec<String> {
    [
        caps::FLOW_CONTROL,
        caps::TRANSCRIPT_BINDING,
        caps::BATCH,
        caps::ALIASES,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// What the host layer learns from the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Mutual authentication completed (AUTH_OK both ways).
    Established,
    /// The peer opened a stream; it waits in the accept queue.
    StreamOpened(u64),
    /// Data, FIN or reset arrived on a stream.
    StreamReadable(u64),
    /// Credit or buffer space arrived for a stream.
    StreamWritable(u64),
    /// The peer sent a valid AliasCard.
    AliasCard(Box<AliasCard>),
    /// The session ended (graceful when the code is `Ok`).
    Closed(Error),
}

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

#[derive(Debug, Clone)]
struct RemoteHello {
    nonce: [u8; 32],
    node_pubkey: [u8; 32],
    capabilities: Vec<String>,
    visibility: Option<Visibility>,
}

/// Outbound byte budget (token bucket, bytes per second, one second of burst).
#[derive(Debug, Clone)]
struct SendBudget {
    rate: u64,
    tokens: f64,
    at: Option<Instant>,
}

impl SendBudget {
    fn new(rate: u64) -> Self {
        SendBudget {
            rate,
            tokens: rate as f64,
            at: None,
        }
    }
    fn available(&mut self, now: Instant) -> u64 {
        if self.rate == 0 {
            return u64::MAX;
        }
        if let Some(at) = self.at {
            let add = now.saturating_duration_since(at).as_secs_f64() * self.rate as f64;
            self.tokens = (self.tokens + add).min(self.rate as f64);
        }
        self.at = Some(now);
        self.tokens.max(0.0) as u64
    }
    fn spend(&mut self, n: u64) {
        if self.rate != 0 {
            self.tokens -= n as f64;
        }
    }
    /// When at least `want` bytes will be available again.
    fn ready_at(&self, want: u64) -> Option<Instant> {
        if self.rate == 0 || self.tokens >= want as f64 {
            return None;
        }
        let missing = want as f64 - self.tokens;
        self.at
            .map(|at| at + Duration::from_secs_f64(missing / self.rate as f64))
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
}

/// Result of a read attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Data(Bytes),
    /// The peer finished; no more data.
    Finished,
    /// Nothing yet: wait for [`Event::StreamReadable`].
    Blocked,
}

pub struct Session {
    cfg: SessionConfig,
    phase: Phase,
    error: Option<Error>,
    /// Whether `error` is the peer's own close code (AUTH_FAIL / ERROR received), so
    /// its code is whatever the peer chose, not a verdict of ours.
    closed_by_peer: bool,
    handshake: Option<NoiseHandshake>,
    transport: Option<NoiseTransport>,
    /// Frames written before the transport existed (plaintext pre-auth frames, Noise).
    out_plain: Vec<u8>,
    /// Control messages waiting to be packed into transport frames.
    control: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,

    local_nonce: [u8; 32],
    remote: Option<RemoteHello>,
    remote_principal: Option<Principal>,
    remote_node_key: Option<[u8; 32]>,
    session_id: Option<[u8; 32]>,
    was_established: bool,
    flow_control: bool,
    batching: bool,
    aliases: bool,

    streams: HashMap<u64, StreamState>,
    send_queue: VecDeque<u64>,
    /// The session-wide send buffer and its waiting writers.
    send_room: SendRoom,
    accept_queue: VecDeque<u64>,
    next_local_id: u64,
    next_remote_id: u64,
    inbound_open: usize,
    outbound_open: usize,
    unflowed_buffered: usize,
    /// Σ (recv_window − INITIAL_STREAM_WINDOW) over live streams.
    window_growth: u64,
    open_window: (Instant, u32),
    session_budget: SendBudget,
    stream_budgets: HashMap<u64, SendBudget>,
    throttled: Vec<u64>,
    /// The latest `now` any call gave us.
    last_now: Instant,

    handshake_deadline: Instant,
    next_ping: Option<Instant>,
    ping_deadline: Option<Instant>,
    ping_seq: u64,
    ping_sent_at: Option<Instant>,
    rtt: Option<Duration>,
    idle_since: Option<Instant>,
    /// A graceful close was requested: flush, then ERROR{code}.
    close_requested: Option<(ErrorCode, String)>,
    /// When a requested close stops waiting for queued data (`close_linger`).
    close_deadline: Option<Instant>,
}

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
    pub fn new(cfg: SessionConfig, now: Instant) -> Result<Session, Error> {
        let mut local_nonce = [0u8; NONCE_LEN];
        match &cfg.fixed {
            Some(f) => local_nonce = f.hello_nonce,
            None => rand::thread_rng().fill_bytes(&mut local_nonce),
        }
        let initiator = cfg.initiator;
        let handshake = NoiseHandshake::new(
            initiator,
            &cfg.node_key.x25519_secret(),
            &cfg.node_key.x25519_public(),
            cfg.fixed.as_ref().map(|f| &f.ephemeral),
        )?;
        let session_rate = cfg.limits.session_send_rate;
        let mut s = Session {
            handshake_deadline: now + cfg.limits.handshake_timeout,
            phase: if initiator {
                Phase::AwaitNoise2
            } else {
                Phase::AwaitFirst { knocked: false }
            },
            error: None,
            closed_by_peer: false,
            handshake: Some(handshake),
            transport: None,
            out_plain: Vec::new(),
            control: VecDeque::new(),
            events: VecDeque::new(),
            local_nonce,
            remote: None,
            remote_principal: None,
            remote_node_key: None,
            session_id: None,
            was_established: false,
            flow_control: false,
            batching: false,
            aliases: false,
            streams: HashMap::new(),
            send_queue: VecDeque::new(),
            send_room: SendRoom::default(),
            accept_queue: VecDeque::new(),
            next_local_id: if initiator { 0 } else { 1 },
            next_remote_id: if initiator { 1 } else { 0 },
            inbound_open: 0,
            outbound_open: 0,
            unflowed_buffered: 0,
            window_growth: 0,
            open_window: (now, 0),
            session_budget: SendBudget::new(session_rate),
            stream_budgets: HashMap::new(),
            throttled: Vec::new(),
            last_now: now,
            next_ping: None,
            ping_deadline: None,
            ping_seq: 0,
            ping_sent_at: None,
            rtt: None,
            idle_since: None,
            close_requested: None,
            close_deadline: None,
            cfg,
        };
        if initiator {
            if let Some(token) = s.cfg.invite_token.clone() {
                let mut knock_nonce = [0u8; 16];
                match &s.cfg.fixed {
                    Some(f) => knock_nonce = f.knock_nonce,
                    None => rand::thread_rng().fill_bytes(&mut knock_nonce),
                }
                let knock = Message::Knock {
                    version: PROTOCOL_VERSION,
                    nonce: &knock_nonce,
                    token: &token,
                }
                .to_vec();
                frame::write_frame(&mut s.out_plain, &knock);
                s.phase = Phase::AwaitKnockResponse;
            } else {
                s.write_noise()?;
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
        self.error.as_ref()
    }

    /// Whether the session ended because the peer closed it (its AUTH_FAIL or ERROR):
    /// then [`Session::error`] carries the peer's code and reason.
    pub fn closed_by_peer(&self) -> bool {
        self.closed_by_peer
    }

    pub fn remote_principal(&self) -> Option<&Principal> {
        self.remote_principal.as_ref()
    }

    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            remote_principal: self.remote_principal.clone(),
            remote_node_key: self.remote_node_key,
            session_id: self.session_id,
            remote_capabilities: self
                .remote
                .as_ref()
                .map(|r| r.capabilities.clone())
                .unwrap_or_default(),
            remote_visibility: self.remote.as_ref().and_then(|r| r.visibility),
            open_streams: self.streams.len(),
            rtt: self.rtt,
        }
    }

    pub fn stream_label(&self, id: u64) -> Option<&str> {
        self.streams.get(&id).and_then(|s| s.label.as_deref())
    }

    /// Whether the peer listed a capability in its HELLO (and we did too).
    pub fn both_support(&self, cap: &str) -> bool {
        self.cfg.capabilities.iter().any(|c| c == cap)
            && self
                .remote
                .as_ref()
                .is_some_and(|r| r.capabilities.iter().any(|c| c == cap))
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Removes a stream from the accept queue (it was routed to a built-in module).
    pub fn take_from_accept_queue(&mut self, id: u64) -> bool {
        let before = self.accept_queue.len();
        self.accept_queue.retain(|x| *x != id);
        self.accept_queue.len() != before
    }

    /// Next inbound stream waiting to be accepted.
    pub fn accept_stream(&mut self) -> Option<u64> {
        self.accept_queue.pop_front()
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
            } else {
                frame::write_frame(&mut self.out_plain, &notice);
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
        self.error = Some(e.clone());
        self.phase = if self.out_plain.is_empty() {
            Phase::Closed
        } else {
            Phase::Closing
        };
        self.control.clear();
        // Wake everything that waits on a stream.
        let ids: Vec<u64> = self.streams.keys().copied().collect();
        for id in ids {
            self.events.push_back(Event::StreamReadable(id));
            self.events.push_back(Event::StreamWritable(id));
        }
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
            err(
                ErrorCode::ConnectionClosed,
                "the peer closed the connection",
            )
        });
        self.out_plain.clear();
        self.enter_closed(e);
        self.phase = Phase::Closed;
    }

    // -----------------------------------------------------------------------------------
    // Input

    fn frame_limit(&self) -> usize {
        if self.transport.is_some() {
            MAX_TRANSPORT_FRAME
        } else {
            MAX_PREAUTH_FRAME
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
            if let Err(e) = self.handle_frame(f, now) {
                self.fail(e);
            }
        }
        if self.error.is_some() {
            buf.clear();
        }
    }

    fn handle_frame(&mut self, f: BytesMut, now: Instant) -> Result<(), Error> {
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
                let data = plaintext.clone();
                message::decode_batch(&data, |m| self.on_message(m, &plaintext, now))?;
                // Anything authentic from the peer shows the session is alive: the next
                // PING waits for a quiet interval again (none is outstanding here; the
                // first PING, which measures the RTT, is never put off).
                if self.ping_seq > 0 && self.ping_deadline.is_none() {
                    self.next_ping = Some(now + self.quiet_ping_interval());
                }
                Ok(())
            }
        }
    }

    /// How long a side waits, after it last received a frame, before it sends a PING. The
    /// listener waits 1.5 × the interval, so on a quiet session the dialer's PING (and the
    /// PONG to it) reaches it first and one PING/PONG pair per interval serves both sides;
    /// the listener pings only when the dialer's PINGs stop arriving.
    fn quiet_ping_interval(&self) -> Duration {
        let interval = self.cfg.limits.keepalive_interval;
        if self.cfg.initiator {
            interval
        } else {
            interval + interval / 2
        }
    }

    // -----------------------------------------------------------------------------------
    // Application calls

    /// Sends a new AliasCard on an established session (both sides listed `aliases`), so
    /// a card set after AUTH_OK reaches peers already connected. Returns whether it was
    /// queued. The card also replaces the one this session would send again.
    pub fn send_alias_card(&mut self, card: Arc<Vec<u8>>) -> bool {
        if !self.is_established() || self.is_closed() || self.close_requested.is_some() {
            return false;
        }
        self.cfg.alias_card = Some(card.clone());
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

    /// The first request's deadline holds: closing again does not extend the linger.
    fn request_close(&mut self, code: ErrorCode, reason: String) {
        self.close_requested = Some((code, reason));
        if self.close_deadline.is_none() {
            self.close_deadline = Some(self.last_now + self.cfg.limits.close_linger);
        }
    }

    /// Whether a requested close has waited long enough for queued data.
    pub(super) fn close_linger_over(&self, now: Instant) -> bool {
        self.close_deadline.is_some_and(|d| now >= d)
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
            return Some(self.handshake_deadline);
        }
        let mut t: Option<Instant> = None;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        consider(self.ping_deadline);
        if self.ping_deadline.is_none() {
            consider(self.next_ping);
        }
        if let (Some(idle), Some(since)) = (self.cfg.limits.idle_timeout, self.idle_since) {
            if self.streams.is_empty() {
                consider(Some(since + idle));
            }
        }
        if !self.throttled.is_empty() {
            let mut ready = self.session_budget.ready_at(1024);
            for id in &self.throttled {
                if let Some(b) = self.stream_budgets.get(id) {
                    let r = b.ready_at(1024);
                    ready = match (ready, r) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
            consider(Some(ready.unwrap_or(self.last_now)));
        }
        consider(self.send_room.deadline());
        if self.close_requested.is_some() {
            consider(self.close_deadline);
        }
        t
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        if self.error.is_some() {
            return;
        }
        if !self.is_established() {
            if now >= self.handshake_deadline {
                self.fail(err(
                    ErrorCode::Timeout,
                    "the handshake did not complete in time",
                ));
            }
            return;
        }
        if let Some(deadline) = self.ping_deadline {
            if now >= deadline {
                self.fail(err(
                    ErrorCode::Timeout,
                    format!(
                        "keepalive: no PONG within {} ms",
                        self.cfg.limits.keepalive_timeout.as_millis()
                    ),
                ));
                return;
            }
        } else if self.next_ping.is_some_and(|t| now >= t) {
            self.ping_seq += 1;
            let ping = Message::Ping {
                seq: self.ping_seq,
                timestamp: self.cfg.clock.unix(now),
            }
            .to_vec();
            self.send_control(ping);
            self.ping_sent_at = Some(now);
            self.ping_deadline = Some(now + self.cfg.limits.keepalive_timeout);
            self.next_ping = Some(now + self.quiet_ping_interval());
        }
        if let (Some(idle), Some(since)) = (self.cfg.limits.idle_timeout, self.idle_since) {
            if self.streams.is_empty() && now >= since + idle && self.close_requested.is_none() {
                self.request_close(ErrorCode::Ok, "idle timeout".into());
            }
        }
        if !self.throttled.is_empty() {
            for id in std::mem::take(&mut self.throttled) {
                self.enqueue_send(id);
            }
        }
        if self.send_room.lapse_expired(&mut self.streams, now) {
            self.offer_send_room();
        }
    }

    /// Whether there is anything for [`Session::poll_transmit`] to write.
    pub fn wants_transmit(&self) -> bool {
        !self.out_plain.is_empty()
            || matches!(self.phase, Phase::Closing)
            || (self.transport.is_some()
                && self.error.is_none()
                && (!self.control.is_empty()
                    || (self.is_established() && !self.send_queue.is_empty())
                    || self.close_requested.is_some()))
    }
}

/// What an operation on a stream of a finished session reports: the session's error, or
/// ERR_CONNECTION_CLOSED when it ended gracefully (code 0 is not an error to a reader).
fn as_operation_error(e: &Error) -> Error {
    if e.code == ErrorCode::Ok {
        Error::new(ErrorCode::ConnectionClosed, e.message.clone())
    } else {
        e.clone()
    }
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
    pub(crate) fn local_nonce_for_test(&mut self, nonce: [u8; 32]) {
        self.local_nonce = nonce;
    }

    pub(crate) fn replace_control_for_test(&mut self, msg: Vec<u8>) {
        self.control.clear();
        self.control.push_back(msg);
    }

    /// Σ of the receive windows' growth beyond the initial window.
    pub(crate) fn window_growth_for_test(&self) -> u64 {
        self.window_growth
    }

    /// PINGs this side has sent.
    pub(crate) fn pings_sent_for_test(&self) -> u64 {
        self.ping_seq
    }

    /// Bytes queued in a stream's send buffer.
    pub(crate) fn send_buffered_for_test(&self, id: u64) -> usize {
        self.streams.get(&id).map_or(0, |s| s.send_buf.len())
    }

    /// Bytes counted against the session's send buffer.
    pub(crate) fn session_send_queued_for_test(&self) -> usize {
        self.send_room.queued()
    }
}
