//! The sans-IO session: handshake, authentication, stream multiplexing, flow control and
//! keepalive as one state machine with no sockets and no clock.
//!
//! Inputs: [`Session::handle_input`] (bytes read from the transport),
//! [`Session::handle_timeout`] and the application calls (`open_stream`, `write`, `read`,
//! `finish`, `reset`, `close`). Outputs: [`Session::poll_transmit`] (bytes to write),
//! [`Session::poll_event`] and [`Session::poll_timeout`]. Every call takes `now`; nothing
//! here reads time or does I/O, which is what lets the fuzzers and the deterministic tests
//! drive it. After the first error every call returns that same error.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::cache::AttestationCache;
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
    /// Bytes buffered for reading across all streams of a peer without flow control.
    pub max_unflowed_buffer: usize,
    /// Inbound OPEN_STREAM per second allowed (0: unlimited); above it: ERR_STREAM_REFUSED.
    pub max_stream_opens_per_sec: u32,
    /// Outbound bytes per second for the whole session (0: unlimited).
    pub session_send_rate: u64,
    /// Outbound bytes per second per stream (0: unlimited).
    pub stream_send_rate: u64,
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
            stream_send_buffer: 256 * 1024,
            max_unflowed_buffer: 64 * 1024 * 1024,
            max_stream_opens_per_sec: 0,
            session_send_rate: 0,
            stream_send_rate: 0,
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
    flow_control: bool,
    batching: bool,
    aliases: bool,

    streams: HashMap<u64, StreamState>,
    send_queue: VecDeque<u64>,
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
            flow_control: false,
            batching: false,
            aliases: false,
            streams: HashMap::new(),
            send_queue: VecDeque::new(),
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
                message::decode_batch(&data, |m| self.on_message(m, &plaintext, now))
            }
        }
    }

    fn on_knock_response(&mut self, f: &[u8]) -> Result<(), Error> {
        match Message::decode(f)? {
            Message::KnockResponse { accepted: true } => {
                self.phase = Phase::AwaitNoise2;
                self.write_noise()
            }
            Message::KnockResponse { accepted: false } => {
                Err(err(ErrorCode::InviteInvalid, "invite refused"))
            }
            Message::AuthFail { code, reason } => {
                self.enter_closed_by_peer(code, reason);
                Ok(())
            }
            _ => Err(err(ErrorCode::InvalidMessage, "expected KNOCK_RESPONSE")),
        }
    }

    fn on_first_frame(&mut self, f: &[u8], knocked: bool, now: Instant) -> Result<(), Error> {
        let policy = self.cfg.policy.clone();
        let knock_required = !knocked && policy.as_ref().is_some_and(|p| p.knock_required());
        if f.len() == secure_channel::XX_MSG1_LEN {
            if knock_required {
                return Err(err(
                    ErrorCode::InviteRequired,
                    "this node requires a KNOCK with an invite token",
                ));
            }
            self.read_noise(f)?;
            self.write_noise()?;
            self.phase = Phase::AwaitNoise3;
            return Ok(());
        }
        if knocked {
            return Err(err(
                ErrorCode::HandshakeFailed,
                "expected Noise XX message 1",
            ));
        }
        let msg = match Message::decode(f) {
            Ok(m) => m,
            Err(_) if knock_required => {
                return Err(err(ErrorCode::InviteRequired, "expected KNOCK"));
            }
            Err(_) => {
                return Err(err(
                    ErrorCode::HandshakeFailed,
                    "first frame is neither KNOCK nor a Noise XX message",
                ))
            }
        };
        match msg {
            Message::Knock { version, token, .. } => {
                if version != PROTOCOL_VERSION {
                    return Err(err(
                        ErrorCode::VersionUnsupported,
                        format!("protocol version {version} is not supported (this node speaks 1)"),
                    ));
                }
                if knock_required {
                    let now_unix = self.cfg.clock.unix(now);
                    if let Some(p) = policy.as_ref() {
                        p.invites.redeem(token, now_unix)?;
                    }
                }
                let resp = Message::KnockResponse { accepted: true }.to_vec();
                frame::write_frame(&mut self.out_plain, &resp);
                self.phase = Phase::AwaitFirst { knocked: true };
                Ok(())
            }
            _ if knock_required => Err(err(ErrorCode::InviteRequired, "expected KNOCK")),
            // Not snap2p's first frame: do not answer a stranger.
            _ => Err(err(
                ErrorCode::HandshakeFailed,
                "first frame is neither KNOCK nor a Noise XX message",
            )),
        }
    }

    fn read_noise(&mut self, f: &[u8]) -> Result<(), Error> {
        self.handshake
            .as_mut()
            .ok_or_else(|| err(ErrorCode::Internal, "no handshake state"))?
            .read_message(f)
    }

    fn write_noise(&mut self) -> Result<(), Error> {
        self.handshake
            .as_mut()
            .ok_or_else(|| err(ErrorCode::Internal, "no handshake state"))?
            .write_frame(&mut self.out_plain)
    }

    /// A plaintext AUTH_FAIL where a Noise message was expected: a stealth or rate-limited
    /// listener turned us away before the handshake.
    fn plaintext_refusal(&mut self, f: &[u8]) -> bool {
        if let Ok(Message::AuthFail { code, reason }) = Message::decode(f) {
            self.enter_closed_by_peer(code, reason);
            return true;
        }
        false
    }

    fn on_noise2(&mut self, f: &[u8], now: Instant) -> Result<(), Error> {
        if f.len() != secure_channel::XX_MSG2_LEN && self.plaintext_refusal(f) {
            return Ok(());
        }
        self.read_noise(f)?;
        self.write_noise()?;
        self.finish_noise(now)
    }

    fn on_noise3(&mut self, f: &[u8], now: Instant) -> Result<(), Error> {
        self.read_noise(f)?;
        self.finish_noise(now)
    }

    /// Noise is done: switch to transport mode and send our HELLO.
    fn finish_noise(&mut self, now: Instant) -> Result<(), Error> {
        let hs = self
            .handshake
            .take()
            .ok_or_else(|| err(ErrorCode::Internal, "no handshake state"))?;
        self.transport = Some(hs.into_transport()?);
        let stealth = self.cfg.visibility == Visibility::Stealth;
        let caps: Vec<&str> = self.cfg.capabilities.iter().map(|s| s.as_str()).collect();
        let hello = Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            node_pubkey: &self.cfg.node_key.public(),
            nonce: &self.local_nonce,
            timestamp: self.cfg.clock.unix(now),
            // Stealth nodes keep pre-auth metadata minimal: no visibility announced.
            visibility: if stealth {
                None
            } else {
                Some(self.cfg.visibility)
            },
            capabilities: caps,
        })
        .to_vec();
        self.send_control(hello);
        self.phase = Phase::AwaitHello;
        Ok(())
    }

    fn send_control(&mut self, msg: Vec<u8>) {
        self.control.push_back(msg);
    }

    /// The input to the transcript-binding signature of `role` ('I' or 'R').
    fn binding_input(&self, role: u8, initiator_nonce: &[u8], responder_nonce: &[u8]) -> Vec<u8> {
        let hash = self
            .transport
            .as_ref()
            .map(|t| t.handshake_hash)
            .unwrap_or_default();
        let mut v = Vec::with_capacity(BINDING_DOMAIN.len() + 1 + 32 + 64);
        v.extend_from_slice(BINDING_DOMAIN);
        v.push(role);
        v.extend_from_slice(&hash);
        v.extend_from_slice(initiator_nonce);
        v.extend_from_slice(responder_nonce);
        v
    }

    fn nonces(&self) -> ([u8; 32], [u8; 32]) {
        let remote = self.remote.as_ref().map(|r| r.nonce).unwrap_or_default();
        if self.cfg.initiator {
            (self.local_nonce, remote)
        } else {
            (remote, self.local_nonce)
        }
    }

    fn send_auth(&mut self) {
        let (ni, nr) = self.nonces();
        let mut sn = Vec::with_capacity(64);
        sn.extend_from_slice(&ni);
        sn.extend_from_slice(&nr);
        let binding = self.both_support(caps::TRANSCRIPT_BINDING);
        let sig = if binding {
            let role = if self.cfg.initiator { b'I' } else { b'R' };
            self.cfg
                .node_key
                .sign(&self.binding_input(role, &ni, &nr))
                .to_vec()
        } else {
            Vec::new()
        };
        let att = self.cfg.attestation.clone();
        let msg = Message::Auth(Auth {
            attestation: &att,
            session_nonce: if binding { &sn } else { &[] },
            handshake_sig: &sig,
        })
        .to_vec();
        self.send_control(msg);
    }

    fn on_hello(&mut self, h: Hello<'_>, now: Instant) -> Result<(), Error> {
        if h.version != PROTOCOL_VERSION {
            return Err(err(
                ErrorCode::VersionUnsupported,
                format!(
                    "protocol version {} is not supported (this node speaks 1)",
                    h.version
                ),
            ));
        }
        let skew = (h.timestamp - self.cfg.clock.unix(now)).abs();
        if skew > MAX_SKEW_SECS {
            return Err(err(
                ErrorCode::AuthExpired,
                format!("peer clock differs by {skew} s (more than {MAX_SKEW_SECS} s)"),
            ));
        }
        let nonce: [u8; 32] = h
            .nonce
            .try_into()
            .map_err(|_| err(ErrorCode::InvalidMessage, "HELLO nonce must be 32 bytes"))?;
        let node_pubkey: [u8; 32] = h
            .node_pubkey
            .try_into()
            .map_err(|_| err(ErrorCode::InvalidMessage, "HELLO pk must be 32 bytes"))?;
        self.remote = Some(RemoteHello {
            nonce,
            node_pubkey,
            capabilities: h.capabilities.iter().map(|s| s.to_string()).collect(),
            visibility: h.visibility,
        });
        self.flow_control = self.both_support(caps::FLOW_CONTROL);
        self.batching = self.both_support(caps::BATCH);
        self.aliases = self.both_support(caps::ALIASES);
        if self.cfg.initiator {
            self.send_auth();
            self.phase = Phase::AwaitAuthReply { auth_seen: false };
        } else {
            self.phase = Phase::AwaitAuth;
        }
        Ok(())
    }

    /// Verifies the peer's AUTH: attestation, Noise key binding, nonce echo and transcript
    /// signature, then the allowlist. Returns the authenticated principal.
    fn verify_auth(&mut self, a: &Auth<'_>, now: Instant) -> Result<Principal, Error> {
        let now_unix = self.cfg.clock.unix(now);
        let networks = self
            .cfg
            .policy
            .as_ref()
            .map(|p| p.networks)
            .unwrap_or(self.cfg.networks);
        let verified = self
            .cfg
            .attestation_cache
            .verify(a.attestation, now_unix, networks)?;
        let remote = self
            .remote
            .clone()
            .ok_or_else(|| err(ErrorCode::InvalidMessage, "AUTH before HELLO"))?;
        let transport = self
            .transport
            .as_ref()
            .ok_or_else(|| err(ErrorCode::Internal, "no transport"))?;
        // Binding 1: the Noise static key is the X25519 form of the attested node key.
        let key_matches: bool = verified
            .node_key
            .x25519()
            .ct_eq(&transport.remote_static)
            .into();
        let hello_matches: bool = verified.node_pubkey.ct_eq(&remote.node_pubkey).into();
        if !key_matches || !hello_matches {
            return Err(err(
                ErrorCode::AuthFailed,
                "the Noise static key is not the attested node key",
            ));
        }
        // Binding 2: the nonce echo and the signature over the handshake hash.
        if self.both_support(caps::TRANSCRIPT_BINDING) {
            let (ni, nr) = self.nonces();
            let mut sn = [0u8; 64];
            sn[..32].copy_from_slice(&ni);
            sn[32..].copy_from_slice(&nr);
            let echo_ok: bool = a.session_nonce.ct_eq(&sn[..]).into();
            if !echo_ok {
                return Err(err(
                    ErrorCode::AuthFailed,
                    "session nonce echo does not match this session",
                ));
            }
            let role = if self.cfg.initiator { b'R' } else { b'I' };
            let input = self.binding_input(role, &ni, &nr);
            if !verified.node_key.verify(&input, a.handshake_sig) {
                return Err(err(
                    ErrorCode::AuthFailed,
                    "transcript signature does not match this handshake (replayed or relayed)",
                ));
            }
        }
        let principal = verified.principal;
        if let Some(expected) = &self.cfg.expected_remote {
            if *expected != principal {
                return Err(err(
                    ErrorCode::PrincipalMismatch,
                    format!("dialed {expected} but the peer authenticated as {principal}"),
                ));
            }
        }
        if let Some(policy) = &self.cfg.policy {
            policy.check_principal(&principal)?;
        }
        self.remote_node_key = Some(verified.node_pubkey);
        Ok(principal)
    }

    fn on_message(&mut self, m: Message<'_>, frame: &Bytes, now: Instant) -> Result<(), Error> {
        if self.error.is_some() {
            return Ok(());
        }
        // Messages valid in any encrypted phase.
        match &m {
            Message::AuthFail { code, reason } | Message::Error { code, reason } => {
                self.enter_closed_by_peer(*code, *reason);
                return Ok(());
            }
            _ => {}
        }
        match self.phase {
            Phase::AwaitHello => match m {
                Message::Hello(h) => self.on_hello(h, now),
                _ => Err(err(ErrorCode::InvalidMessage, "expected HELLO")),
            },
            Phase::AwaitAuth => match m {
                Message::Auth(a) => {
                    let principal = self.verify_auth(&a, now)?;
                    self.remote_principal = Some(principal);
                    self.send_auth();
                    let mut sid = [0u8; 32];
                    match &self.cfg.fixed {
                        Some(f) => sid = f.session_id,
                        None => rand::thread_rng().fill_bytes(&mut sid),
                    }
                    self.session_id = Some(sid);
                    let ok = Message::AuthOk {
                        principal: &self.cfg.principal.to_string(),
                        session_id: &sid,
                    }
                    .to_vec();
                    self.send_control(ok);
                    // Our card rides right behind our AUTH_OK, so the dialer holds it by
                    // the time its own handshake completes.
                    self.queue_alias_card();
                    self.phase = Phase::AwaitAuthOk;
                    Ok(())
                }
                _ => Err(err(ErrorCode::InvalidMessage, "expected AUTH")),
            },
            Phase::AwaitAuthReply { auth_seen: false } => match m {
                Message::Auth(a) => {
                    let principal = self.verify_auth(&a, now)?;
                    self.remote_principal = Some(principal);
                    self.phase = Phase::AwaitAuthReply { auth_seen: true };
                    Ok(())
                }
                _ => Err(err(ErrorCode::InvalidMessage, "expected AUTH")),
            },
            Phase::AwaitAuthReply { auth_seen: true } => match m {
                Message::AuthOk {
                    principal,
                    session_id,
                } => {
                    let sid: [u8; 32] = session_id.try_into().map_err(|_| {
                        err(ErrorCode::InvalidMessage, "AUTH_OK sid must be 32 bytes")
                    })?;
                    self.check_auth_ok_principal(principal)?;
                    self.session_id = Some(sid);
                    let ok = Message::AuthOk {
                        principal: &self.cfg.principal.to_string(),
                        session_id: &sid,
                    }
                    .to_vec();
                    self.send_control(ok);
                    self.establish(now);
                    Ok(())
                }
                _ => Err(err(ErrorCode::InvalidMessage, "expected AUTH_OK")),
            },
            Phase::AwaitAuthOk => match m {
                Message::AuthOk {
                    principal,
                    session_id,
                } => {
                    self.check_auth_ok_principal(principal)?;
                    let ok: bool = self.session_id.unwrap_or_default().ct_eq(session_id).into();
                    if !ok {
                        return Err(err(ErrorCode::AuthFailed, "AUTH_OK session id mismatch"));
                    }
                    self.establish(now);
                    Ok(())
                }
                _ => Err(err(ErrorCode::InvalidMessage, "expected AUTH_OK")),
            },
            Phase::Established => self.on_established_message(m, frame, now),
            _ => Ok(()),
        }
    }

    fn check_auth_ok_principal(&self, p: &str) -> Result<(), Error> {
        let ok = self
            .remote_principal
            .as_ref()
            .is_some_and(|r| r.to_string() == p);
        if ok {
            Ok(())
        } else {
            Err(err(
                ErrorCode::AuthInvalid,
                "AUTH_OK names a different principal than the attestation",
            ))
        }
    }

    fn establish(&mut self, now: Instant) {
        self.phase = Phase::Established;
        self.handshake = None;
        // Keepalive starts now, with a first PING right away (as the reference does).
        self.next_ping = Some(now);
        self.idle_since = Some(now);
        if self.cfg.initiator {
            // The listener sent its card with its AUTH_OK; ours follows our AUTH_OK.
            self.queue_alias_card();
        }
        self.events.push_back(Event::Established);
    }

    /// Queues our AliasCard (spec §4.3 step 7: only after AUTH_OK) if both list `aliases`.
    fn queue_alias_card(&mut self) {
        if self.aliases {
            if let Some(card) = self.cfg.alias_card.clone() {
                let msg = Message::AliasCard { card: &card }.to_vec();
                self.send_control(msg);
            }
        }
    }

    fn stream_parity_is_remote(&self, id: u64) -> bool {
        // Dialer ids are even, listener ids odd.
        (id % 2 == 1) == self.cfg.initiator
    }

    fn on_established_message(
        &mut self,
        m: Message<'_>,
        frame: &Bytes,
        now: Instant,
    ) -> Result<(), Error> {
        match m {
            Message::OpenStream { stream_id, label } => self.on_open_stream(stream_id, label, now),
            Message::StreamData {
                stream_id,
                data,
                fin,
            } => self.on_stream_data(stream_id, data, fin, frame),
            Message::WindowUpdate { stream_id, credit } => {
                if let Some(s) = self.streams.get_mut(&stream_id) {
                    s.send_limit = s
                        .send_limit
                        .checked_add(credit)
                        .ok_or_else(|| err(ErrorCode::InvalidMessage, "window update overflows"))?;
                    if s.send_limit > (1u64 << 62) {
                        return Err(err(ErrorCode::InvalidMessage, "window too large"));
                    }
                    let sendable = s.has_sendable();
                    self.events.push_back(Event::StreamWritable(stream_id));
                    if sendable {
                        self.enqueue_send(stream_id);
                    }
                }
                Ok(())
            }
            Message::CloseStream { stream_id, code } => {
                if let Some(s) = self.streams.get_mut(&stream_id) {
                    if code == ErrorCode::Ok {
                        // Graceful close of the whole stream: reading sees FIN, writing
                        // stops.
                        s.recv_fin = true;
                        if !s.send_fin_sent {
                            s.reset = Some(ErrorCode::StreamClosed);
                        }
                    } else {
                        s.reset = Some(code);
                        s.recv_buf.clear();
                        self.unflowed_buffered =
                            self.unflowed_buffered.saturating_sub(s.recv_buffered);
                        s.recv_buffered = 0;
                    }
                    self.events.push_back(Event::StreamReadable(stream_id));
                    self.events.push_back(Event::StreamWritable(stream_id));
                    self.maybe_reap(stream_id);
                }
                Ok(())
            }
            Message::Ping { seq, timestamp } => {
                let pong = Message::Pong { seq, timestamp }.to_vec();
                self.send_control(pong);
                Ok(())
            }
            Message::Pong { seq, .. } => {
                if seq == self.ping_seq && self.ping_deadline.is_some() {
                    self.ping_deadline = None;
                    if let Some(at) = self.ping_sent_at.take() {
                        self.rtt = Some(now.saturating_duration_since(at));
                    }
                }
                Ok(())
            }
            Message::AliasCard { card } => {
                // Invalid or foreign cards are dropped, not fatal: aliases are cosmetic.
                if let Ok(card) = AliasCard::decode(card) {
                    let now_unix = self.cfg.clock.unix(now);
                    let mine = Some(&card.principal) == self.remote_principal.as_ref();
                    if mine && card.verify(now_unix, NetworkFilter::ANY).is_ok() {
                        self.events.push_back(Event::AliasCard(Box::new(card)));
                    }
                }
                Ok(())
            }
            Message::Hello(_)
            | Message::Auth(_)
            | Message::AuthOk { .. }
            | Message::Knock { .. }
            | Message::KnockResponse { .. } => Err(err(
                ErrorCode::InvalidMessage,
                "handshake message after the session was established",
            )),
            Message::AuthFail { .. } | Message::Error { .. } => Ok(()),
        }
    }

    fn on_open_stream(&mut self, id: u64, label: Option<&str>, now: Instant) -> Result<(), Error> {
        if !self.stream_parity_is_remote(id) {
            return Err(err(
                ErrorCode::InvalidMessage,
                format!("stream id {id} has our parity"),
            ));
        }
        if id < self.next_remote_id || self.streams.contains_key(&id) {
            return Err(err(
                ErrorCode::StreamIdInUse,
                format!("stream id {id} was already used"),
            ));
        }
        self.next_remote_id = id + 2;
        let rate_ok = self.cfg.limits.max_stream_opens_per_sec == 0 || {
            let (start, count) = &mut self.open_window;
            if now.saturating_duration_since(*start) >= Duration::from_secs(1) {
                *start = now;
                *count = 0;
            }
            *count += 1;
            *count <= self.cfg.limits.max_stream_opens_per_sec
        };
        if self.inbound_open >= self.cfg.limits.max_streams || !rate_ok {
            let refuse = Message::CloseStream {
                stream_id: id,
                code: ErrorCode::StreamRefused,
            }
            .to_vec();
            self.send_control(refuse);
            return Ok(());
        }
        let label = label.map(|l| l.chars().take(256).collect::<String>());
        let window = INITIAL_STREAM_WINDOW;
        self.streams.insert(
            id,
            StreamState::new(label, false, window, self.flow_control),
        );
        self.inbound_open += 1;
        self.idle_since = None;
        self.accept_queue.push_back(id);
        self.events.push_back(Event::StreamOpened(id));
        Ok(())
    }

    fn on_stream_data(
        &mut self,
        id: u64,
        data: &[u8],
        fin: bool,
        frame: &Bytes,
    ) -> Result<(), Error> {
        let known = self.streams.contains_key(&id);
        if !known {
            let used = if self.stream_parity_is_remote(id) {
                id < self.next_remote_id
            } else {
                id < self.next_local_id
            };
            if used {
                // Data in flight for a stream already closed or refused: drop it.
                return Ok(());
            }
            return Err(err(
                ErrorCode::StreamNotFound,
                format!("data for stream {id} that was never opened"),
            ));
        }
        let flow_control = self.flow_control;
        let max_unflowed = self.cfg.limits.max_unflowed_buffer;
        let s = self.streams.get_mut(&id).expect("checked");
        if s.recv_fin {
            return Err(err(
                ErrorCode::StreamClosed,
                format!("data after FIN on stream {id}"),
            ));
        }
        if s.reset.is_some() || s.local_reset {
            return Ok(());
        }
        let len = data.len() as u64;
        if s.recv_received + len > s.recv_limit {
            return Err(err(
                ErrorCode::InvalidMessage,
                format!("stream {id} exceeded its flow-control window"),
            ));
        }
        s.recv_received += len;
        if !data.is_empty() {
            s.recv_buf.push_back(frame.slice_ref(data));
            s.recv_buffered += data.len();
            if !flow_control {
                self.unflowed_buffered += data.len();
                if self.unflowed_buffered > max_unflowed {
                    return Err(err(
                        ErrorCode::ResourceExhausted,
                        "peer without flow control outran the reader",
                    ));
                }
            }
        }
        if fin {
            s.recv_fin = true;
        }
        self.events.push_back(Event::StreamReadable(id));
        if fin {
            self.maybe_reap(id);
        }
        Ok(())
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

    /// Opens a stream; OPEN_STREAM goes out with the next transmit, data may follow at once.
    pub fn open_stream(&mut self, label: Option<&str>) -> Result<u64, Error> {
        self.check_open()?;
        if !self.is_established() {
            return Err(err(ErrorCode::InvalidMessage, "session not established"));
        }
        if self.close_requested.is_some() {
            return Err(err(ErrorCode::ConnectionClosed, "session is closing"));
        }
        if self.outbound_open >= self.cfg.limits.max_streams {
            return Err(err(
                ErrorCode::StreamRefused,
                format!(
                    "local limit of {} open streams reached",
                    self.cfg.limits.max_streams
                ),
            ));
        }
        if let Some(l) = label {
            if l.len() > 256 {
                return Err(err(
                    ErrorCode::InvalidArgument,
                    "label longer than 256 bytes",
                ));
            }
        }
        let id = self.next_local_id;
        self.next_local_id += 2;
        self.streams.insert(
            id,
            StreamState::new(
                label.map(str::to_string),
                true,
                INITIAL_STREAM_WINDOW,
                self.flow_control,
            ),
        );
        self.outbound_open += 1;
        self.idle_since = None;
        self.enqueue_send(id);
        Ok(id)
    }

    fn stream_mut(&mut self, id: u64) -> Result<&mut StreamState, Error> {
        self.streams
            .get_mut(&id)
            .ok_or_else(|| err(ErrorCode::StreamNotFound, format!("no stream {id}")))
    }

    /// Queues up to `data.len()` bytes; returns how many were taken (0: wait for
    /// [`Event::StreamWritable`]).
    pub fn write(&mut self, id: u64, data: &[u8]) -> Result<usize, Error> {
        self.check_open()?;
        let cap = self.cfg.limits.stream_send_buffer;
        let s = self.stream_mut(id)?;
        if let Some(code) = s.reset {
            return Err(err(code, "the peer reset or closed the stream"));
        }
        if s.local_reset || s.send_fin_requested {
            return Err(err(ErrorCode::StreamClosed, "stream closed for writing"));
        }
        let room = cap.saturating_sub(s.send_buf.len());
        let n = room.min(data.len());
        if n == 0 {
            return Ok(0);
        }
        s.send_buf.extend_from_slice(&data[..n]);
        if s.has_sendable() {
            self.enqueue_send(id);
        }
        Ok(n)
    }

    /// Half-closes our direction: FIN after the queued data.
    pub fn finish(&mut self, id: u64) -> Result<(), Error> {
        self.check_open()?;
        let s = self.stream_mut(id)?;
        if let Some(code) = s.reset {
            return Err(err(code, "the peer reset or closed the stream"));
        }
        if s.local_reset {
            return Err(err(ErrorCode::StreamClosed, "stream was reset"));
        }
        if !s.send_fin_requested {
            s.send_fin_requested = true;
            self.enqueue_send(id);
        }
        Ok(())
    }

    /// Aborts both directions with `code` (CLOSE_STREAM).
    pub fn reset(&mut self, id: u64, code: ErrorCode) -> Result<(), Error> {
        self.check_open()?;
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if s.local_reset || s.reset.is_some() {
            return Ok(());
        }
        s.local_reset = true;
        s.send_buf.clear();
        // Never announced: nothing to tell the peer.
        let announced = !std::mem::take(&mut s.open_pending);
        let dropped = s.recv_buffered;
        s.recv_buf.clear();
        s.recv_buffered = 0;
        self.unflowed_buffered = self.unflowed_buffered.saturating_sub(dropped);
        let code = if code == ErrorCode::Ok {
            ErrorCode::StreamClosed
        } else {
            code
        };
        if announced {
            let msg = Message::CloseStream {
                stream_id: id,
                code,
            }
            .to_vec();
            self.send_control(msg);
        }
        self.events.push_back(Event::StreamReadable(id));
        self.events.push_back(Event::StreamWritable(id));
        self.maybe_reap(id);
        Ok(())
    }

    /// Reads up to `max` bytes.
    pub fn read(&mut self, id: u64, max: usize) -> Result<ReadOutcome, Error> {
        let flow_control = self.flow_control;
        let session_error = self.error.clone();
        let growth_left = self
            .cfg
            .limits
            .max_session_window_growth
            .saturating_sub(self.window_growth);
        let stream_cap = self.cfg.limits.max_stream_window;
        let s = self.stream_mut(id)?;
        // This stream may grow up to the per-stream cap, within what the session has left.
        let max_window = stream_cap.min(s.recv_window.max(INITIAL_STREAM_WINDOW) + growth_left);
        if let Some(chunk) = s.take_recv(max.max(1)) {
            let n = chunk.len();
            let before = s.recv_window;
            let grant = s.maybe_grant(max_window, flow_control);
            let grown = s.recv_window - before;
            self.window_growth += grown;
            if !flow_control {
                self.unflowed_buffered = self.unflowed_buffered.saturating_sub(n);
            }
            if grant {
                self.enqueue_send(id);
            }
            return Ok(ReadOutcome::Data(chunk));
        }
        if let Some(code) = s.reset {
            if code == ErrorCode::StreamClosed && s.recv_fin {
                return Ok(ReadOutcome::Finished);
            }
            return Err(err(code, "the peer reset the stream"));
        }
        if s.local_reset {
            return Err(err(ErrorCode::StreamClosed, "stream was reset locally"));
        }
        if s.recv_fin {
            self.maybe_reap(id);
            return Ok(ReadOutcome::Finished);
        }
        if let Some(e) = session_error {
            return Err(as_operation_error(&e));
        }
        Ok(ReadOutcome::Blocked)
    }

    /// Bytes queued for reading on a stream.
    pub fn readable_bytes(&self, id: u64) -> usize {
        self.streams.get(&id).map_or(0, |s| s.recv_buffered)
    }

    /// The application let go of its stream handle: finish politely and forget the stream
    /// once both directions are over.
    pub fn release_stream(&mut self, id: u64) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.handle_dropped = true;
            if self.error.is_none() {
                if !s.recv_done() {
                    // Nobody will read: tell the peer to stop sending.
                    let _ = self.reset(id, ErrorCode::StreamClosed);
                } else if !s.send_fin_requested && !s.send_done() {
                    s.send_fin_requested = true;
                    self.enqueue_send(id);
                }
            }
            self.maybe_reap(id);
        }
    }

    /// Forgets a stream whose directions are both over and whose handle is gone.
    fn maybe_reap(&mut self, id: u64) {
        let done = self
            .streams
            .get(&id)
            .is_some_and(|s| s.handle_dropped && s.send_done() && s.recv_done() && !s.open_pending);
        if done {
            let s = self.streams.remove(&id).expect("checked");
            self.stream_budgets.remove(&id);
            self.window_growth -= s.recv_window.saturating_sub(INITIAL_STREAM_WINDOW);
            if s.local {
                self.outbound_open -= 1;
            } else {
                self.inbound_open -= 1;
            }
        }
    }

    fn enqueue_send(&mut self, id: u64) {
        if let Some(s) = self.streams.get_mut(&id) {
            if !s.in_send_queue {
                s.in_send_queue = true;
                self.send_queue.push_back(id);
            }
        }
    }

    /// Requests a graceful close: queued stream data is flushed, then ERROR{code} is sent
    /// and the session ends.
    pub fn close(&mut self, code: ErrorCode, reason: &str) {
        if self.error.is_some() {
            return;
        }
        if !self.is_established() {
            self.fail(err(code, reason.to_string()));
            return;
        }
        self.close_requested = Some((code, reason.to_string()));
    }
}

impl Session {
    // -----------------------------------------------------------------------------------
    // Output

    /// Appends bytes to write to the transport until `out` holds about `max` bytes or
    /// nothing is left. Small messages of many streams share frames (capability `batch`).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>, max: usize) {
        self.last_now = now;
        if !self.out_plain.is_empty() {
            out.extend_from_slice(&self.out_plain);
            self.out_plain.clear();
        }
        if matches!(self.phase, Phase::Closing) {
            self.phase = Phase::Closed;
            return;
        }
        if self.error.is_some() || self.transport.is_none() {
            return;
        }
        if self.streams.is_empty() && self.idle_since.is_none() && self.is_established() {
            self.idle_since = Some(now);
        }
        let established = self.is_established();
        while out.len() < max {
            let start = NoiseTransport::begin_frame(out);
            let body = out.len();
            // Control messages first: they are small and unblock the peer.
            while let Some(msg) = self.control.front() {
                let used = out.len() - body;
                if used > 0 && (!self.batching || used + msg.len() > MAX_PLAINTEXT) {
                    break;
                }
                out.extend_from_slice(msg);
                self.control.pop_front();
            }
            if established && (self.batching || out.len() == body) {
                self.pack_streams(now, out, body);
            }
            if out.len() == body {
                out.truncate(start);
                break;
            }
            if let Err(e) = self
                .transport
                .as_mut()
                .expect("checked above")
                .seal_frame(out, start)
            {
                out.truncate(start);
                self.fail(e);
                return;
            }
        }
        if let Some((code, reason)) = self.close_requested.clone() {
            let drained = self.control.is_empty()
                && self
                    .streams
                    .values()
                    .all(|s| s.send_buf.is_empty() || s.send_done());
            if drained && out.len() < max {
                let reason = Some(reason.as_str()).filter(|r| !r.is_empty());
                let msg = Message::Error { code, reason }.to_vec();
                if let Some(t) = self.transport.as_mut() {
                    let _ = t.encrypt_frame(&msg, out);
                }
                let e = Error::new(code, "the session was closed locally");
                self.enter_closed(e);
                self.phase = Phase::Closed;
            }
        }
    }

    /// Packs OPEN_STREAM, WINDOW_UPDATE and STREAM_DATA of queued streams into the frame
    /// being built (plaintext starts at `body`), round robin.
    fn pack_streams(&mut self, now: Instant, out: &mut Vec<u8>, body: usize) {
        let mut rounds = self.send_queue.len();
        let session_avail = self.session_budget.available(now);
        let mut session_left = session_avail;
        while rounds > 0 {
            rounds -= 1;
            let Some(id) = self.send_queue.pop_front() else {
                break;
            };
            let used = out.len() - body;
            let room = MAX_PLAINTEXT - used;
            if room < 64 || (used > 0 && !self.batching) {
                self.send_queue.push_front(id);
                break;
            }
            let stream_rate = self.cfg.limits.stream_send_rate;
            let low_water = self.cfg.limits.stream_send_buffer / 2;
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            let start_len = out.len();
            if s.open_pending {
                Message::OpenStream {
                    stream_id: id,
                    label: s.label.as_deref(),
                }
                .encode(out);
                s.open_pending = false;
            }
            if let Some(credit) = s.take_update() {
                Message::WindowUpdate {
                    stream_id: id,
                    credit,
                }
                .encode(out);
            }
            let room = MAX_PLAINTEXT.saturating_sub(out.len() - body);
            let stream_avail = if stream_rate == 0 {
                u64::MAX
            } else {
                self.stream_budgets
                    .entry(id)
                    .or_insert_with(|| SendBudget::new(stream_rate))
                    .available(now)
            };
            let overhead = stream_data_overhead(id, MAX_PLAINTEXT, true);
            if room > overhead && !(s.local_reset || s.reset.is_some()) {
                let want = (s.send_buf.len() as u64)
                    .min(s.send_credit())
                    .min(session_left)
                    .min(stream_avail)
                    .min((room - overhead) as u64) as usize;
                let fin = s.send_fin_requested && !s.send_fin_sent && want == s.send_buf.len();
                if want > 0 || fin {
                    encode_stream_data_header(out, id, want, fin);
                    out.extend_from_slice(&s.send_buf[..want]);
                    let _ = s.send_buf.split_to(want);
                    encode_stream_data_trailer(out, id, fin);
                    s.send_offset += want as u64;
                    session_left -= want as u64;
                    if fin {
                        s.send_fin_sent = true;
                    }
                    if stream_rate != 0 {
                        if let Some(b) = self.stream_budgets.get_mut(&id) {
                            b.spend(want as u64);
                        }
                    }
                    // A blocked writer is woken once the buffer is at most half full,
                    // not per frame: it then refills several writes' worth in one go
                    // (each wake-up is a thread hand-off, across an FFI boundary in the
                    // bindings), while the other half keeps the transport busy.
                    if want > 0 && s.send_buf.len() <= low_water {
                        self.events.push_back(Event::StreamWritable(id));
                    }
                }
            }
            let s = self.streams.get_mut(&id).expect("present");
            let throttled = stream_avail == 0 || session_left == 0;
            if (s.has_sendable() && !throttled) || s.update_pending {
                self.send_queue.push_back(id);
            } else if s.has_sendable() {
                // Rate-limited: retried from handle_timeout when the budget refills.
                s.in_send_queue = false;
                self.throttled.push(id);
            } else {
                s.in_send_queue = false;
                self.maybe_reap(id);
            }
            if out.len() == start_len && session_left == 0 {
                break;
            }
        }
        self.session_budget.spend(session_avail - session_left);
    }

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
            self.next_ping = Some(now + self.cfg.limits.keepalive_interval);
        }
        if let (Some(idle), Some(since)) = (self.cfg.limits.idle_timeout, self.idle_since) {
            if self.streams.is_empty() && now >= since + idle && self.close_requested.is_none() {
                self.close_requested = Some((ErrorCode::Ok, "idle timeout".into()));
            }
        }
        if !self.throttled.is_empty() {
            for id in std::mem::take(&mut self.throttled) {
                self.enqueue_send(id);
            }
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

    /// Bytes queued in a stream's send buffer.
    pub(crate) fn send_buffered_for_test(&self, id: u64) -> usize {
        self.streams.get(&id).map_or(0, |s| s.send_buf.len())
    }
}
