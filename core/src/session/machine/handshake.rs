//! The handshake half of the session machine: KNOCK, the Noise XX messages, HELLO and AUTH
//! (attestation and transcript-binding checks), and the step to established (AUTH_OK, the
//! first AliasCard). Spec: docs/PROTOCOL.md §5. Once established, frames no longer come
//! here: `machine/mux.rs` takes them.

use super::*;
use crate::identity::NodeKey;
use crate::policy::NodePolicy;
use crate::session::cache::AttestationCache;

/// What only the handshake reads, boxed in [`Session`] and dropped at AUTH_OK: the Noise
/// state, both HELLO nonces, the deadlines, and the parts of [`SessionConfig`] that only
/// KNOCK, HELLO and AUTH use.
pub(super) struct Handshaking {
    /// Until Noise message 3 (then `Session::transport`).
    pub(super) noise: Option<NoiseHandshake>,
    pub(super) local_nonce: [u8; 32],
    /// The peer's HELLO nonce and node key, once its HELLO arrived.
    pub(super) remote_hello: Option<RemoteHello>,
    pub(super) deadline: Instant,
    /// When the peer's next handshake frame is due (the first frame's deadline, then one
    /// step's after each frame).
    pub(super) step_deadline: Instant,
    /// Complete frames the peer sent.
    pub(super) frames: u32,
    /// Where admission control watches this handshake's progress (listeners).
    pub(super) progress: Option<Arc<HandshakeProgress>>,
    pub(super) node_key: NodeKey,
    pub(super) attestation: Arc<Vec<u8>>,
    pub(super) principal: Principal,
    pub(super) visibility: Visibility,
    pub(super) policy: Option<Arc<NodePolicy>>,
    pub(super) networks: NetworkFilter,
    pub(super) expected_remote: Option<Principal>,
    pub(super) attestation_cache: Arc<AttestationCache>,
    /// Sent after our AUTH_OK; a card set during the handshake replaces it.
    pub(super) alias_card: Option<Arc<Vec<u8>>>,
    pub(super) fixed: Option<Box<FixedRandomness>>,
    pub(super) hs2: Hs2,
    /// Dialer, hs2 offered: our HELLO for message 3 (encoded once, when offering).
    pub(super) hello: Option<Vec<u8>>,
}

/// Where this handshake stands with hs2, the two-round-trip exchange of
/// docs/PROTOCOL.md §5.8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hs2 {
    /// v1: the TypeScript profile, `SessionConfig::hs2` off, a dialer that did not offer
    /// it, or a listener that declined the offer.
    Off,
    /// This side speaks it; nothing has been offered yet (a dialer waiting for its KNOCK's
    /// answer, a listener waiting for message 1).
    Speaks,
    /// Dialer: offered in message 1; no message 2 read yet. `Handshaking::hello` holds our
    /// HELLO, encoded for the check that it fits, for message 3.
    Offered,
    /// Both run it: the HELLOs travel in Noise messages 2 and 3.
    On,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct RemoteHello {
    nonce: [u8; 32],
    node_pubkey: [u8; 32],
}

fn no_handshake() -> Error {
    err(ErrorCode::Internal, "no handshake state")
}

impl Session {
    /// The handshake's state: there until AUTH_OK.
    fn hs(&self) -> Result<&Handshaking, Error> {
        self.hs.as_deref().ok_or_else(no_handshake)
    }

    fn hs_mut(&mut self) -> Result<&mut Handshaking, Error> {
        self.hs.as_deref_mut().ok_or_else(no_handshake)
    }

    pub(super) fn on_knock_response(&mut self, f: &[u8]) -> Result<(), Error> {
        match Message::decode(f)? {
            Message::KnockResponse {
                accepted: true,
                hs2,
            } => {
                self.phase = Phase::AwaitNoise2;
                // After a KNOCK, the offer goes only to a listener that said it takes one:
                // a fallback would KNOCK again, and a one-time invite is spent.
                if !hs2 {
                    self.hs_mut()?.hs2 = Hs2::Off;
                }
                self.write_noise1()
            }
            Message::KnockResponse {
                accepted: false, ..
            } => Err(err(ErrorCode::InviteInvalid, "invite refused")),
            Message::AuthFail { code, reason } => {
                self.enter_closed_by_peer(code, reason);
                Ok(())
            }
            _ => Err(err(ErrorCode::InvalidMessage, "expected KNOCK_RESPONSE")),
        }
    }

    pub(super) fn on_first_frame(
        &mut self,
        f: &[u8],
        knocked: bool,
        now: Instant,
    ) -> Result<(), Error> {
        let policy = self.hs()?.policy.clone();
        let knock_required = !knocked && policy.as_ref().is_some_and(|p| p.knock_required());
        let hs2_offer = f.len() == secure_channel::XX_MSG1_LEN + 1
            && f[secure_channel::XX_MSG1_LEN] == secure_channel::HS2_OFFER
            && self.hs()?.hs2 == Hs2::Speaks;
        if hs2_offer {
            if knock_required {
                return Err(err(
                    ErrorCode::InviteRequired,
                    "this node requires a KNOCK with an invite token",
                ));
            }
            return self.accept_hs2(f, now);
        }
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
        // Neither a KNOCK nor a Noise message 1: the same silence on every node, stealth
        // or not (PROTOCOL.md §5.2), so a probe that is not snap2p learns nothing.
        let neither = |why: String| {
            err(
                ErrorCode::HandshakeFailed,
                format!("first frame is neither KNOCK nor a Noise XX message 1 ({why})"),
            )
        };
        let msg = Message::decode(f).map_err(|e| neither(e.message))?;
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
                let resp = Message::KnockResponse {
                    accepted: true,
                    hs2: self.hs()?.hs2 == Hs2::Speaks,
                }
                .to_vec();
                frame::write_frame(&mut self.out_plain, &resp);
                self.frames_sent += 1;
                self.phase = Phase::AwaitFirst { knocked: true };
                Ok(())
            }
            _ => Err(neither("another control message".into())),
        }
    }

    /// A listener's answer to an hs2 offer: message 2 carrying our HELLO, or, when our
    /// HELLO would not fit a pre-auth frame, an empty one, which declines (v1 goes on).
    fn accept_hs2(&mut self, f: &[u8], now: Instant) -> Result<(), Error> {
        let payload = self.noise_mut()?.read_payload(f)?;
        if payload != [secure_channel::HS2_OFFER] {
            return Err(err(ErrorCode::HandshakeFailed, "malformed hs2 offer"));
        }
        let hello = self.hello_bytes(now)?;
        self.phase = Phase::AwaitNoise3;
        if !secure_channel::hs2_payload_fits(hello.len()) {
            self.hs_mut()?.hs2 = Hs2::Off;
            return self.write_noise();
        }
        self.hs_mut()?.hs2 = Hs2::On;
        let hs = self.hs.as_deref_mut().ok_or_else(no_handshake)?;
        let noise = hs.noise.as_mut().ok_or_else(no_handshake)?;
        noise.write_frame_with(&hello, &mut self.out_plain)?;
        self.frames_sent += 1;
        Ok(())
    }

    fn noise_mut(&mut self) -> Result<&mut NoiseHandshake, Error> {
        self.hs_mut()?.noise.as_mut().ok_or_else(no_handshake)
    }

    pub(super) fn read_noise(&mut self, f: &[u8]) -> Result<(), Error> {
        self.hs_mut()?
            .noise
            .as_mut()
            .ok_or_else(no_handshake)?
            .read_message(f)
    }

    /// The dialer's Noise message 1: with the hs2 offer when this side speaks it and its
    /// HELLO fits hs2's message 3 (else v1's empty message 1).
    pub(super) fn write_noise1(&mut self) -> Result<(), Error> {
        let hello = match self.hs()?.hs2 {
            Hs2::Speaks => Some(self.hello_bytes(self.last_now)?),
            _ => None,
        };
        let Some(hello) = hello.filter(|h| secure_channel::hs2_payload_fits(h.len())) else {
            self.hs_mut()?.hs2 = Hs2::Off;
            return self.write_noise();
        };
        let hs = self.hs.as_deref_mut().ok_or_else(no_handshake)?;
        hs.hs2 = Hs2::Offered;
        hs.hello = Some(hello);
        let noise = hs.noise.as_mut().ok_or_else(no_handshake)?;
        noise.write_frame_with(&[secure_channel::HS2_OFFER], &mut self.out_plain)?;
        self.frames_sent += 1;
        Ok(())
    }

    pub(super) fn write_noise(&mut self) -> Result<(), Error> {
        let hs = self.hs.as_deref_mut().ok_or_else(no_handshake)?;
        hs.noise
            .as_mut()
            .ok_or_else(no_handshake)?
            .write_frame(&mut self.out_plain)?;
        self.frames_sent += 1;
        Ok(())
    }

    /// A plaintext AUTH_FAIL where a Noise message was expected: a stealth or rate-limited
    /// listener turned us away before the handshake.
    pub(super) fn plaintext_refusal(&mut self, f: &[u8]) -> bool {
        if let Ok(Message::AuthFail { code, reason }) = Message::decode(f) {
            self.enter_closed_by_peer(code, reason);
            return true;
        }
        false
    }

    pub(super) fn on_noise2(&mut self, f: &[u8], now: Instant) -> Result<(), Error> {
        if self.hs()?.hs2 == Hs2::Offered {
            return self.on_noise2_hs2(f, now);
        }
        if f.len() != secure_channel::XX_MSG2_LEN && self.plaintext_refusal(f) {
            return Ok(());
        }
        if let Err(e) = self.read_noise(f) {
            let ours = self.cfg.profile;
            let mismatch = self.hs()?.noise.as_ref().and_then(|n| n.mismatch());
            if mismatch.is_some() {
                // The listener speaks the other profile (its message 2 reads under it):
                // say so in plaintext where message 3 was due, so a snap2p listener's
                // operator reads it too (PROTOCOL.md §12.4), then end.
                let reason = format!(
                    "wire profile mismatch: this peer (the dialer) speaks {}; the listener \
                     speaks {}",
                    ours.describe(),
                    ours.other().describe()
                );
                let notice =
                    message::plaintext_auth_fail(ErrorCode::HandshakeFailed, Some(&reason));
                frame::write_frame(&mut self.out_plain, &notice);
                self.frames_sent += 1;
                self.enter_closed(e);
                return Ok(());
            }
            return Err(e);
        }
        self.write_noise()?;
        self.finish_noise(now)
    }

    pub(super) fn on_noise3(&mut self, f: &[u8], now: Instant) -> Result<(), Error> {
        if self.hs()?.hs2 == Hs2::On {
            let hello = match self.noise_mut()?.read_payload(f) {
                Ok(p) => p,
                Err(_) if self.plaintext_refusal(f) => return Ok(()),
                Err(e) => return Err(e),
            };
            self.split_noise()?;
            return self.on_hello_payload(&hello, now);
        }
        // A dialer that cannot read our message 2 (another wire profile) says so in a
        // plaintext AUTH_FAIL, never 64 bytes long.
        if f.len() != secure_channel::XX_MSG3_LEN && self.plaintext_refusal(f) {
            return Ok(());
        }
        self.read_noise(f)?;
        self.finish_noise(now)
    }

    /// The dialer's message 2 after an hs2 offer: the listener's HELLO (then message 3
    /// carries ours, and AUTH follows in the same write), or an empty payload, by which the
    /// listener declined (v1 goes on). Its length says nothing, so Noise reads it first;
    /// a frame that does not open may be a plaintext AUTH_FAIL (admission, stealth).
    fn on_noise2_hs2(&mut self, f: &[u8], now: Instant) -> Result<(), Error> {
        let hello_r = match self.noise_mut()?.read_payload(f) {
            Ok(p) => p,
            Err(_) if self.plaintext_refusal(f) => return Ok(()),
            Err(e) => return Err(e),
        };
        if hello_r.is_empty() {
            self.hs_mut()?.hs2 = Hs2::Off;
            self.write_noise()?;
            return self.finish_noise(now);
        }
        let hs = self.hs.as_deref_mut().ok_or_else(no_handshake)?;
        hs.hs2 = Hs2::On;
        let hello = hs.hello.take().ok_or_else(no_handshake)?;
        let noise = hs.noise.as_mut().ok_or_else(no_handshake)?;
        noise.write_frame_with(&hello, &mut self.out_plain)?;
        self.frames_sent += 1;
        self.split_noise()?;
        self.on_hello_payload(&hello_r, now)
    }

    /// A HELLO that arrived as a Noise payload (hs2).
    fn on_hello_payload(&mut self, payload: &[u8], now: Instant) -> Result<(), Error> {
        self.phase = Phase::AwaitHello;
        match Message::decode(payload)? {
            Message::Hello(h) => self.on_hello(h, now),
            _ => Err(err(ErrorCode::InvalidMessage, "expected HELLO")),
        }
    }

    /// Noise is done: switch to transport mode and send our HELLO.
    pub(super) fn finish_noise(&mut self, now: Instant) -> Result<(), Error> {
        self.split_noise()?;
        let hello = self.hello_bytes(now)?;
        self.send_control(hello);
        self.phase = Phase::AwaitHello;
        Ok(())
    }

    /// Noise's Split(): the transport keys and the handshake hash.
    fn split_noise(&mut self) -> Result<(), Error> {
        let hs = self.hs.as_deref_mut().ok_or_else(no_handshake)?;
        let noise = hs.noise.take().ok_or_else(no_handshake)?;
        self.transport = Some(noise.into_transport()?);
        Ok(())
    }

    /// Our HELLO, encoded (§5.4).
    fn hello_bytes(&self, now: Instant) -> Result<Vec<u8>, Error> {
        let hs = self.hs()?;
        let stealth = hs.visibility == Visibility::Stealth;
        let caps: Vec<&str> = self.local_caps.iter().collect();
        Ok(Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            node_pubkey: &hs.node_key.public(),
            nonce: &hs.local_nonce,
            timestamp: self.cfg.clock.unix(now),
            // Stealth nodes keep pre-auth metadata minimal: no visibility announced (the
            // TypeScript implementation always sends `vis`, 2 for stealth).
            visibility: if stealth && !self.cfg.profile.is_typescript() {
                None
            } else {
                Some(hs.visibility)
            },
            capabilities: caps,
        })
        .to_vec())
    }

    /// The input to the transcript-binding signature of `role` ('I' or 'R').
    pub(super) fn binding_input(
        &self,
        role: u8,
        initiator_nonce: &[u8],
        responder_nonce: &[u8],
    ) -> Vec<u8> {
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

    pub(super) fn nonces(&self) -> Result<([u8; 32], [u8; 32]), Error> {
        let hs = self.hs()?;
        let remote = hs.remote_hello.map(|r| r.nonce).unwrap_or_default();
        Ok(if self.cfg.initiator {
            (hs.local_nonce, remote)
        } else {
            (remote, hs.local_nonce)
        })
    }

    /// Records the session id and queues our AUTH_OK carrying it.
    fn send_auth_ok(&mut self, sid: [u8; 32]) -> Result<(), Error> {
        self.session_id = Some(sid);
        let ok = Message::AuthOk {
            principal: self.hs()?.principal.text().as_str(),
            session_id: &sid,
        }
        .to_vec();
        self.send_control(ok);
        Ok(())
    }

    pub(super) fn send_auth(&mut self) -> Result<(), Error> {
        let (ni, nr) = self.nonces()?;
        let mut sn = Vec::with_capacity(64);
        sn.extend_from_slice(&ni);
        sn.extend_from_slice(&nr);
        let binding = self.both_support(caps::TRANSCRIPT_BINDING);
        let sig = if binding {
            let role = if self.cfg.initiator { b'I' } else { b'R' };
            self.hs()?
                .node_key
                .sign(&self.binding_input(role, &ni, &nr))
                .to_vec()
        } else {
            Vec::new()
        };
        let att = self.hs()?.attestation.clone();
        let msg = Message::Auth(Auth {
            attestation: &att,
            session_nonce: if binding { &sn } else { &[] },
            handshake_sig: &sig,
        })
        .to_vec();
        self.send_control(msg);
        Ok(())
    }

    pub(super) fn on_hello(&mut self, h: Hello<'_>, now: Instant) -> Result<(), Error> {
        // The switch depends on the two lists alone, before the HELLO's other checks: an
        // AUTH_FAIL answering a HELLO we refuse is sealed the way the peer, which may
        // have accepted ours, now expects to open it (docs/PROTOCOL.md §7.2).
        if self.local_caps.contains(caps::AES_GCM) && h.capabilities.contains(&caps::AES_GCM) {
            let hs2 = self.hs()?.hs2 == Hs2::On;
            if let Some(t) = self.transport.as_mut() {
                if hs2 {
                    t.switch_to_aes_gcm_from_start()?;
                } else {
                    t.switch_to_aes_gcm()?;
                }
            }
        }
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
        self.hs_mut()?.remote_hello = Some(RemoteHello { nonce, node_pubkey });
        self.remote_caps = Some(CapList::new(&h.capabilities));
        self.remote_visibility = h.visibility;
        self.streams.flow_control = self.both_support(caps::FLOW_CONTROL);
        self.streams.batching = self.both_support(caps::BATCH);
        self.aliases = self.both_support(caps::ALIASES);
        self.rekey.enabled = self.both_support(caps::REKEY);
        if self.cfg.initiator {
            self.send_auth()?;
            self.phase = Phase::AwaitAuthReply { auth_seen: false };
        } else {
            self.phase = Phase::AwaitAuth;
        }
        Ok(())
    }

    /// Verifies the peer's AUTH: attestation, Noise key binding, nonce echo and transcript
    /// signature, then the allowlist. Returns the authenticated principal.
    pub(super) fn verify_auth(&mut self, a: &Auth<'_>, now: Instant) -> Result<Principal, Error> {
        let now_unix = self.cfg.clock.unix(now);
        let hs = self.hs()?;
        let mut networks = hs
            .policy
            .as_ref()
            .map(|p| p.networks)
            .unwrap_or(hs.networks);
        if self.cfg.profile.is_typescript() {
            // The reference derives the address with its local network's version byte,
            // so only principals of our own network verify there; here likewise. And it
            // knows only the digest form (PROTOCOL.md §12.1).
            match hs.principal.network() {
                crate::identity::Network::Mainnet => networks.testnet = false,
                crate::identity::Network::Testnet => networks.mainnet = false,
            }
            let form = crate::identity::NodeKeyAttestation::decode(a.attestation)?.form;
            if form != crate::identity::SignatureForm::Digest {
                return Err(err(
                    ErrorCode::AuthInvalid,
                    "attestation signed in the Stacks message form: the TypeScript profile \
                     knows only the digest form",
                ));
            }
        }
        let verified = hs
            .attestation_cache
            .verify(a.attestation, now_unix, networks)?;
        let remote = hs
            .remote_hello
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
            let (ni, nr) = self.nonces()?;
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
        let hs = self.hs()?;
        if let Some(expected) = &hs.expected_remote {
            if *expected != principal {
                return Err(err(
                    ErrorCode::PrincipalMismatch,
                    format!("dialed {expected} but the peer authenticated as {principal}"),
                ));
            }
        }
        if let Some(policy) = &hs.policy {
            policy.check_principal(&principal)?;
        }
        self.remote_node_key = Some(verified.node_pubkey);
        Ok(principal)
    }

    /// A message of an encrypted frame before the session is established.
    pub(super) fn on_handshake_message(
        &mut self,
        m: Message<'_>,
        now: Instant,
    ) -> Result<(), Error> {
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
                    self.send_auth()?;
                    let mut sid = [0u8; 32];
                    match &self.hs()?.fixed {
                        Some(f) => sid = f.session_id,
                        None => rand::thread_rng().fill_bytes(&mut sid),
                    }
                    self.send_auth_ok(sid)?;
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
                    self.send_auth_ok(sid)?;
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
            _ => Ok(()),
        }
    }

    pub(super) fn check_auth_ok_principal(&self, p: &str) -> Result<(), Error> {
        let ok = self
            .remote_principal
            .as_ref()
            .is_some_and(|r| r.text().as_str() == p);
        if ok {
            Ok(())
        } else {
            Err(err(
                ErrorCode::AuthInvalid,
                "AUTH_OK names a different principal than the attestation",
            ))
        }
    }

    pub(super) fn establish(&mut self, now: Instant) {
        self.phase = Phase::Established;
        self.was_established = true;
        self.keepalive.start(now);
        self.rekey_start(now);
        if self.cfg.initiator {
            // The listener sent its card with its AUTH_OK; ours follows our AUTH_OK.
            self.queue_alias_card();
            if self.cfg.profile.is_typescript() {
                // Our AUTH_OK goes out alone, then nothing until the listener's first
                // frame: a TypeScript listener drops whatever it reads together with
                // AUTH_OK (PROTOCOL.md §12.3).
                self.release(now);
                self.held = true;
            }
        }
        self.events.push_back(Event::Established);
        self.hs2 = self.hs.as_ref().is_some_and(|h| h.hs2 == Hs2::On);
        // Admission is done with this session, and nothing reads the handshake's state
        // any more.
        self.hs = None;
    }

    /// Queues our AliasCard (spec §4.3 step 7: only after AUTH_OK) if both list `aliases`.
    pub(super) fn queue_alias_card(&mut self) {
        if self.aliases {
            if let Some(card) = self.hs.as_ref().and_then(|h| h.alias_card.clone()) {
                let msg = Message::AliasCard { card: &card }.to_vec();
                self.send_control(msg);
            }
        }
    }
}
