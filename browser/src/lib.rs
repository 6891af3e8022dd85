//! snap2p in the browser: the core's sans-IO session machine ([`snap2p::unstable::Session`])
//! behind a small wasm-bindgen surface. The JavaScript entry (`js/index.js`) owns the I/O:
//! the page's `WebSocket` carries the session's bytes (binary messages, docs/PROTOCOL.md
//! §15), `setTimeout` arms the machine's one timer, and the core's randomness comes from
//! `crypto.getRandomValues` (getrandom's `js` backends). Everything the protocol decides
//! (handshake, AUTH, streams, flow control, error codes) is the core's; this file only
//! converts values between Rust and JavaScript.

use std::sync::Arc;

use bytes::BytesMut;
use js_sys::{Array, Object, Reflect, Uint8Array};
use rand::RngCore;
use snap2p::identity::NodeKey;
use snap2p::policy::parse_invite_token;
use snap2p::relay::circuit::{CircuitDial, CircuitGrant};
use snap2p::relay::codec::{encode_splice, SpliceToken};
use snap2p::unstable::{
    default_capabilities, AttestationCache, Clock, Event, ReadOutcome, Session, SessionConfig,
    V1Only,
};
use snap2p::{
    AliasCard, Error, ErrorCode, LocalWallet, Locator, Network, NetworkFilter, NodeKeyAttestation,
    Principal, SignRequest, SignatureForm, Visibility,
};
use wasm_bindgen::prelude::*;
use web_time::Instant;

/// What one `WebSocket` message may carry at most (docs/PROTOCOL.md §15, `MAX_MESSAGE`).
const MAX_MESSAGE: usize = 65_536;

/// A JavaScript `Error` with the core's numeric `code` and its `ERR_…` name: what the
/// entry turns into a `Snap2pError`.
fn js_error(e: &Error) -> JsValue {
    let err = js_sys::Error::new(e.reason());
    let _ = Reflect::set(&err, &"code".into(), &(e.code.as_u64() as f64).into());
    let _ = Reflect::set(&err, &"codeName".into(), &e.code.name().into());
    err.into()
}

fn invalid(msg: &str) -> JsValue {
    js_error(&Error::new(ErrorCode::InvalidArgument, msg))
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &key.into(), &value.into());
}

fn network(name: &str) -> Result<Network, JsValue> {
    match name {
        "mainnet" => Ok(Network::Mainnet),
        "testnet" => Ok(Network::Testnet),
        _ => Err(invalid("network must be 'mainnet' or 'testnet'")),
    }
}

/// Every code of the core's error taxonomy: `[{code, name, description}]`.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Array {
    ErrorCode::ALL
        .iter()
        .map(|c| {
            let o = Object::new();
            set(&o, "code", c.as_u64() as f64);
            set(&o, "name", c.name());
            set(&o, "description", c.describe());
            JsValue::from(o)
        })
        .collect()
}

/// Canonical `stacks:<address>` of a principal or bare address (ERR_INVALID_ARGUMENT).
#[wasm_bindgen(js_name = formatPrincipal)]
pub fn format_principal(text: &str) -> Result<String, JsValue> {
    Principal::parse(text)
        .or_else(|_| Principal::from_address(text))
        .map(|p| p.to_string())
        .map_err(|e| js_error(&e))
}

/// An in-memory Stacks key (BIP-39 mnemonic, the Stacks derivation path): the demo signer,
/// and the key behind the tests' stand-in wallet provider.
#[wasm_bindgen]
pub struct KeySigner {
    wallet: LocalWallet,
}

#[wasm_bindgen]
impl KeySigner {
    /// A fresh random key.
    pub fn generate(net: &str) -> Result<KeySigner, JsValue> {
        Ok(KeySigner {
            wallet: LocalWallet::generate(network(net)?),
        })
    }

    #[wasm_bindgen(js_name = fromMnemonic)]
    pub fn from_mnemonic(phrase: &str, account: u32, net: &str) -> Result<KeySigner, JsValue> {
        LocalWallet::from_mnemonic(phrase, account, network(net)?)
            .map(|wallet| KeySigner { wallet })
            .map_err(|e| js_error(&e))
    }

    #[wasm_bindgen(getter)]
    pub fn principal(&self) -> String {
        self.wallet.principal().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn mnemonic(&self) -> String {
        self.wallet.mnemonic()
    }

    /// Compressed secp256k1 public key, hex.
    #[wasm_bindgen(getter, js_name = publicKey)]
    pub fn public_key(&self) -> String {
        to_hex(&self.wallet.public_key())
    }

    /// r ‖ s ‖ v over SHA-256 of the Stacks-prefixed message (what a wallet's
    /// `stx_signMessage` returns).
    #[wasm_bindgen(js_name = signMessage)]
    pub fn sign_message(&self, message: &str) -> Vec<u8> {
        self.wallet.sign_message(message).to_vec()
    }

    /// r ‖ s ‖ v over exactly this 32-byte digest.
    #[wasm_bindgen(js_name = signDigest)]
    pub fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, JsValue> {
        let d: [u8; 32] = digest
            .try_into()
            .map_err(|_| invalid("a digest is 32 bytes"))?;
        Ok(self.wallet.sign_digest(&d).to_vec())
    }
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// This page's node: a fresh node key and its attestation, signed by the user's wallet
/// through the host signer (`sign_request` out, `attach_signature` in: a wallet answers
/// with a promise, so the core's async `WalletSigner` cannot call it).
#[wasm_bindgen]
pub struct Node {
    key: NodeKey,
    attestation: NodeKeyAttestation,
    encoded: Option<Arc<Vec<u8>>>,
    cache: Arc<AttestationCache>,
    /// Locators dialed with v1 for now: their listeners closed on an hs2 offer (the core's
    /// memory, as `Peer` keeps it; PROTOCOL.md §5.8).
    v1_only: Arc<V1Only>,
    /// Our AliasCard while its signature is awaited, then signed and encoded: sent after
    /// AUTH_OK on every session dialed from then on, as native peers send theirs.
    alias: Option<AliasCard>,
    alias_encoded: Option<Arc<Vec<u8>>>,
}

#[wasm_bindgen]
impl Node {
    /// `form`: "message" (a wallet's sign-message, Stacks prefix) or "digest".
    #[wasm_bindgen(constructor)]
    pub fn new(principal: &str, form: &str, ttl_secs: f64) -> Result<Node, JsValue> {
        let principal = Principal::parse(principal)
            .or_else(|_| Principal::from_address(principal))
            .map_err(|e| js_error(&e))?;
        let form = match form {
            "message" => SignatureForm::StacksMessage,
            "digest" => SignatureForm::Digest,
            _ => return Err(invalid("signer form must be 'message' or 'digest'")),
        };
        let key = NodeKey::generate();
        let mut nonce = vec![0u8; 32];
        getrandom_fill(&mut nonce)?;
        let attestation = NodeKeyAttestation::unsigned(
            principal,
            form,
            key.public(),
            snap2p::unix_now(),
            ttl_secs as i64,
            nonce,
        )
        .map_err(|e| js_error(&e))?;
        Ok(Node {
            key,
            attestation,
            encoded: None,
            cache: Arc::new(AttestationCache::default()),
            v1_only: Arc::default(),
            alias: None,
            alias_encoded: None,
        })
    }

    /// What the wallet must sign: `{kind: 'message', message}` or `{kind: 'digest', digest}`.
    #[wasm_bindgen(js_name = signRequest)]
    pub fn sign_request(&self) -> Object {
        request_object(self.attestation.sign_request())
    }

    /// Starts an AliasCard (alias normalised by the core, ERR_INVALID_ARGUMENT when it
    /// cannot be): returns what the wallet must sign for it, as [`Self::sign_request`];
    /// [`Self::attach_alias_signature`] completes it.
    #[wasm_bindgen(js_name = aliasRequest)]
    pub fn alias_request(
        &mut self,
        alias: &str,
        display_name: &str,
        ttl_secs: f64,
    ) -> Result<Object, JsValue> {
        let mut nonce = vec![0u8; snap2p::identity::ISSUED_NONCE_LEN];
        getrandom_fill(&mut nonce)?;
        let card = AliasCard::unsigned(
            self.attestation.principal.clone(),
            self.attestation.form,
            alias,
            display_name,
            snap2p::unix_now(),
            ttl_secs as i64,
            nonce,
        )
        .map_err(|e| js_error(&e))?;
        let req = request_object(card.sign_request());
        self.alias = Some(card);
        Ok(req)
    }

    /// The wallet's signature of the pending AliasCard (checked and normalised by the
    /// core); the card object (`{principal, alias, displayName, issuedAt, expiresAt}`).
    #[wasm_bindgen(js_name = attachAliasSignature)]
    pub fn attach_alias_signature(&mut self, sig: Vec<u8>) -> Result<Object, JsValue> {
        let card = self
            .alias
            .as_mut()
            .ok_or_else(|| invalid("no alias card is waiting for a signature"))?;
        card.attach_signature(sig).map_err(|e| js_error(&e))?;
        self.alias_encoded = Some(Arc::new(card.encode()));
        Ok(alias_object(card))
    }

    /// Our signed AliasCard, if one is set.
    pub fn alias(&self) -> JsValue {
        match (&self.alias, &self.alias_encoded) {
            (Some(card), Some(_)) => alias_object(card).into(),
            _ => JsValue::UNDEFINED,
        }
    }
}

/// `{kind: 'message', message}` or `{kind: 'digest', digest}`.
fn request_object(req: SignRequest) -> Object {
    {
        let o = Object::new();
        match req {
            SignRequest::Message(m) => {
                set(&o, "kind", "message");
                set(&o, "message", m);
            }
            SignRequest::Digest(d) => {
                set(&o, "kind", "digest");
                set(&o, "digest", Uint8Array::from(&d[..]));
            }
        }
        o
    }
}

#[wasm_bindgen]
impl Node {
    /// The wallet's 65-byte r ‖ s ‖ v; checked by the core (ERR_AUTH_INVALID when it is not
    /// the principal's signature of the request).
    #[wasm_bindgen(js_name = attachSignature)]
    pub fn attach_signature(&mut self, sig: Vec<u8>) -> Result<(), JsValue> {
        self.attestation
            .attach_signature(sig)
            .map_err(|e| js_error(&e))?;
        self.encoded = Some(Arc::new(self.attestation.encode()));
        Ok(())
    }

    #[wasm_bindgen(getter)]
    pub fn principal(&self) -> String {
        self.attestation.principal.to_string()
    }

    #[wasm_bindgen(getter, js_name = nodePublicKey)]
    pub fn node_public_key(&self) -> Vec<u8> {
        self.key.public().to_vec()
    }

    /// A dialing session. `invite`: hex token (stealth listeners); `expect`: the principal
    /// the listener must authenticate as; `networks`: "any" | "mainnet" | "testnet";
    /// `locator`: the listener dialed directly, offered hs2 (PROTOCOL.md §5.8) unless it is
    /// remembered as v1 only (then, and without a locator: v1; see
    /// [`Conn::fall_back_to_v1`]).
    pub fn dial(
        &self,
        invite: Option<String>,
        expect: Option<String>,
        networks: &str,
        locator: Option<String>,
    ) -> Result<Conn, JsValue> {
        let attestation = self
            .encoded
            .clone()
            .ok_or_else(|| invalid("the attestation is not signed yet"))?;
        let invite_token = invite
            .as_deref()
            .map(parse_invite_token)
            .transpose()
            .map_err(|e| js_error(&e))?;
        let expected_remote = expect
            .as_deref()
            .map(|p| Principal::parse(p).or_else(|_| Principal::from_address(p)))
            .transpose()
            .map_err(|e| js_error(&e))?;
        let networks = match networks {
            "any" => NetworkFilter::ANY,
            "mainnet" => NetworkFilter::MAINNET_ONLY,
            "testnet" => NetworkFilter::TESTNET_ONLY,
            _ => return Err(invalid("networks must be 'any', 'mainnet' or 'testnet'")),
        };
        let hs2 = locator
            .as_deref()
            .is_some_and(|l| !self.v1_only.contains(l, Instant::now()));
        let cfg = SessionConfig {
            initiator: true,
            node_key: self.key.clone(),
            attestation,
            principal: self.attestation.principal.clone(),
            visibility: Visibility::Public,
            policy: None,
            networks,
            permissions: None,
            invite_token,
            expected_remote,
            capabilities: default_capabilities(),
            limits: Default::default(),
            attestation_cache: self.cache.clone(),
            alias_card: self.alias_encoded.clone(),
            clock: Clock::system(),
            fixed: None,
            // The browser speaks the standard profile only (the TypeScript nodes listen
            // on raw TCP, which a page cannot reach).
            profile: snap2p::WireProfile::Standard,
            hs2,
        };
        let session = Session::new(cfg, Instant::now()).map_err(|e| js_error(&e))?;
        Ok(Conn {
            session,
            fallback: hs2.then(|| (self.v1_only.clone(), locator.unwrap_or_default())),
            rbuf: BytesMut::new(),
            obuf: Vec::new(),
        })
    }
}

fn getrandom_fill(buf: &mut [u8]) -> Result<(), JsValue> {
    // rand's OsRng is getrandom, i.e. `crypto.getRandomValues` here (the core's source).
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .map_err(|_| invalid("no randomness source (crypto.getRandomValues)"))
}

/// One session, driven by the entry: bytes from the WebSocket in (`input`), bytes to send
/// out (`transmit`), one timer (`timeoutMs`, `onTimeout`), events (`pollEvent`), and the
/// stream calls of the application.
#[wasm_bindgen]
pub struct Conn {
    session: Session,
    /// An hs2 dial: the memory and locator to note should the listener turn out v1 only.
    fallback: Option<(Arc<V1Only>, String)>,
    rbuf: BytesMut,
    /// Output the machine produced beyond one WebSocket message.
    obuf: Vec<u8>,
}

fn id_of(id: f64) -> Result<u64, JsValue> {
    if id >= 0.0 && id.fract() == 0.0 && id <= 9_007_199_254_740_991.0 {
        Ok(id as u64)
    } else {
        Err(invalid("not a stream id"))
    }
}

#[wasm_bindgen]
impl Conn {
    /// Bytes of one received WebSocket message.
    pub fn input(&mut self, bytes: &[u8]) {
        self.rbuf.extend_from_slice(bytes);
        self.session.handle_input(&mut self.rbuf, Instant::now());
        if self.rbuf.is_empty() && self.rbuf.capacity() > 4 * MAX_MESSAGE {
            self.rbuf = BytesMut::new();
        }
    }

    /// The next WebSocket message to send (at most 65,536 bytes), if any.
    pub fn transmit(&mut self) -> Option<Vec<u8>> {
        if self.obuf.len() < MAX_MESSAGE {
            let room = MAX_MESSAGE - self.obuf.len();
            self.session
                .poll_transmit(Instant::now(), &mut self.obuf, room);
        }
        if self.obuf.is_empty() {
            return None;
        }
        // poll_transmit stops at about `max` (a frame may overshoot it); a message must
        // not exceed MAX_MESSAGE, so the rest goes first in the next one.
        let rest = if self.obuf.len() > MAX_MESSAGE {
            self.obuf.split_off(MAX_MESSAGE)
        } else {
            Vec::new()
        };
        Some(std::mem::replace(&mut self.obuf, rest))
    }

    /// Milliseconds until the machine's timer (`-1`: none).
    #[wasm_bindgen(js_name = timeoutMs)]
    pub fn timeout_ms(&self) -> f64 {
        match self.session.poll_timeout() {
            None => -1.0,
            Some(t) => t.saturating_duration_since(Instant::now()).as_secs_f64() * 1000.0,
        }
    }

    /// The timer fired (runs the machine's timeouts that are due).
    #[wasm_bindgen(js_name = onTimeout)]
    pub fn on_timeout(&mut self) {
        let now = Instant::now();
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
    }

    /// After a failed dial: whether it offered hs2 and the listener closed without a word,
    /// as one that speaks only v1 does (PROTOCOL.md §5.8). Then the locator is remembered
    /// as v1 only, and the entry dials it once more, which `Node::dial` makes v1.
    #[wasm_bindgen(js_name = fallBackToV1)]
    pub fn fall_back_to_v1(&self) -> bool {
        match &self.fallback {
            Some((v1_only, locator)) if self.session.hs2_unanswered() => {
                v1_only.insert(locator, Instant::now());
                true
            }
            _ => false,
        }
    }

    /// The WebSocket closed (`code`: the local error, none for an orderly end).
    #[wasm_bindgen(js_name = transportClosed)]
    pub fn transport_closed(&mut self, code: Option<u32>, reason: Option<String>) {
        let e = code.map(|c| {
            Error::new(
                ErrorCode::from_u64(c as u64),
                reason.unwrap_or_else(|| "transport failed".into()),
            )
        });
        self.session.handle_transport_closed(e);
    }

    /// The next event: `{type, id?, code?, name?, message?, byPeer?, label?, alias?}`.
    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> JsValue {
        let Some(ev) = self.session.poll_event() else {
            return JsValue::UNDEFINED;
        };
        let o = Object::new();
        match ev {
            Event::Established => set(&o, "type", "established"),
            Event::StreamOpened(id) => {
                set(&o, "type", "stream_opened");
                set(&o, "id", id as f64);
            }
            Event::LocalStreamOpened(id) => {
                set(&o, "type", "local_stream_opened");
                set(&o, "id", id as f64);
            }
            Event::StreamReadable(id) => {
                set(&o, "type", "readable");
                set(&o, "id", id as f64);
            }
            Event::StreamWritable(id) => {
                set(&o, "type", "writable");
                set(&o, "id", id as f64);
            }
            Event::AliasCard(card) => {
                set(&o, "type", "alias");
                set(&o, "alias", alias_object(&card));
            }
            Event::StreamRefused(id, label) => {
                set(&o, "type", "stream_refused");
                set(&o, "id", id as f64);
                set(
                    &o,
                    "label",
                    label.map(JsValue::from).unwrap_or(JsValue::NULL),
                );
            }
            Event::StreamReset(id, code, by_peer) => {
                set(&o, "type", "stream_reset");
                set(&o, "id", id as f64);
                set(&o, "code", code.as_u64() as f64);
                set(&o, "name", code.name());
                set(&o, "byPeer", by_peer);
            }
            Event::Closed(e) => {
                set(&o, "type", "closed");
                set(&o, "code", e.code.as_u64() as f64);
                set(&o, "name", e.code.name());
                set(&o, "message", e.reason());
                set(&o, "byPeer", self.session.closed_by_peer());
            }
        }
        o.into()
    }

    #[wasm_bindgen(js_name = isEstablished)]
    pub fn is_established(&self) -> bool {
        self.session.is_established()
    }

    #[wasm_bindgen(js_name = isClosed)]
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// The session's error (`{code, name, message}`), once it failed or closed.
    pub fn error(&self) -> JsValue {
        match self.session.error() {
            None => JsValue::UNDEFINED,
            Some(e) => js_error(e),
        }
    }

    #[wasm_bindgen(js_name = remotePrincipal)]
    pub fn remote_principal(&self) -> Option<String> {
        self.session.remote_principal().map(|p| p.to_string())
    }

    /// The session id, hex (after AUTH).
    #[wasm_bindgen(js_name = sessionId)]
    pub fn session_id(&self) -> Option<String> {
        self.session.info().session_id.map(|id| to_hex(&id))
    }

    #[wasm_bindgen(js_name = remoteCapabilities)]
    pub fn remote_capabilities(&self) -> Array {
        self.session
            .info()
            .remote_capabilities
            .into_iter()
            .map(JsValue::from)
            .collect()
    }

    /// Counters: `{framesSent, framesReceived, streamsOpened, openStreams, rttMs}`.
    pub fn stats(&self) -> Object {
        let i = self.session.info();
        let o = Object::new();
        set(&o, "framesSent", i.frames_sent as f64);
        set(&o, "framesReceived", i.frames_received as f64);
        set(&o, "streamsOpened", i.streams_opened as f64);
        set(&o, "openStreams", i.open_streams as f64);
        set(
            &o,
            "rttMs",
            i.rtt
                .map(|d| JsValue::from(d.as_secs_f64() * 1000.0))
                .unwrap_or(JsValue::NULL),
        );
        o
    }

    #[wasm_bindgen(js_name = openStream)]
    pub fn open_stream(&mut self, label: Option<String>) -> Result<f64, JsValue> {
        self.session
            .open_stream(label.as_deref())
            .map(|id| id as f64)
            .map_err(|e| js_error(&e))
    }

    /// The next stream the peer opened, if any.
    #[wasm_bindgen(js_name = acceptStream)]
    pub fn accept_stream(&mut self) -> Option<f64> {
        self.session.accept_stream().map(|id| id as f64)
    }

    #[wasm_bindgen(js_name = streamLabel)]
    pub fn stream_label(&self, id: f64) -> Result<Option<String>, JsValue> {
        Ok(self.session.stream_label(id_of(id)?).map(str::to_string))
    }

    /// Queues bytes; returns how many were taken (0: wait for a `writable` event).
    pub fn write(&mut self, id: f64, data: &[u8]) -> Result<u32, JsValue> {
        self.session
            .write(id_of(id)?, data)
            .map(|n| n as u32)
            .map_err(|e| js_error(&e))
    }

    /// Up to `max` bytes: a `Uint8Array`, `null` once the peer finished, `undefined` when
    /// nothing is there yet (wait for a `readable` event).
    pub fn read(&mut self, id: f64, max: u32) -> Result<JsValue, JsValue> {
        match self
            .session
            .read(id_of(id)?, max as usize)
            .map_err(|e| js_error(&e))?
        {
            ReadOutcome::Data(b) => Ok(Uint8Array::from(&b[..]).into()),
            ReadOutcome::Finished => Ok(JsValue::NULL),
            ReadOutcome::Blocked => Ok(JsValue::UNDEFINED),
        }
    }

    pub fn finish(&mut self, id: f64) -> Result<(), JsValue> {
        self.session.finish(id_of(id)?).map_err(|e| js_error(&e))
    }

    pub fn reset(&mut self, id: f64, code: u32) -> Result<(), JsValue> {
        self.session
            .reset(id_of(id)?, ErrorCode::from_u64(code as u64))
            .map_err(|e| js_error(&e))
    }

    /// The application let go of the stream (finish politely, forget it when done).
    pub fn release(&mut self, id: f64) -> Result<(), JsValue> {
        self.session.release_stream(id_of(id)?);
        Ok(())
    }

    /// Graceful close: queued data goes out (up to the close linger), then ERROR{code}.
    pub fn close(&mut self, code: u32, reason: &str) {
        self.session
            .close(Instant::now(), ErrorCode::from_u64(code as u64), reason);
    }
}

fn alias_object(card: &snap2p::AliasCard) -> Object {
    let o = Object::new();
    set(&o, "principal", card.principal.to_string());
    set(&o, "alias", card.alias.clone());
    set(&o, "displayName", card.display_name.clone());
    set(&o, "issuedAt", card.issued_at as f64);
    set(&o, "expiresAt", card.expires_at as f64);
    o
}

// ---------------------------------------------------------------------------------------
// Relays (docs/PROTOCOL.md §32): a page reaches a peer behind NAT through a relay's
// WebSocket listener. The core parses the locator, writes CONNECT and reads the answer;
// the entry moves the bytes (a `relay-1` stream, then a spliced WebSocket or the stream).

fn principal_arg(text: &str) -> Result<Principal, JsValue> {
    Principal::parse(text)
        .or_else(|_| Principal::from_address(text))
        .map_err(|e| js_error(&e))
}

/// `relay+ws://host:port[/path]/SP…` (or `relay+wss://…`) → `{relay: 'ws://host:port[/path]',
/// target: 'stacks:SP…' | null}`. A TCP relay (`relay://`) is ERR_INVALID_ARGUMENT: a page
/// reaches relays over WebSocket only.
#[wasm_bindgen(js_name = parseRelayLocator)]
pub fn parse_relay_locator(text: &str) -> Result<Object, JsValue> {
    let loc: Locator = text.parse().map_err(|e: Error| js_error(&e))?;
    let scheme = loc.scheme().as_str().to_string();
    if scheme != snap2p::relay::SCHEME_WS && scheme != snap2p::relay::SCHEME_WSS {
        return Err(invalid(&format!(
            "a browser peer reaches relays over relay+ws:// or relay+wss:// only, not {scheme}://"
        )));
    }
    let (relay, target) = snap2p::relay::parse_relay_locator(&loc).map_err(|e| js_error(&e))?;
    let o = Object::new();
    set(&o, "relay", relay.to_string());
    set(
        &o,
        "target",
        target
            .map(|t| JsValue::from(t.to_string()))
            .unwrap_or(JsValue::NULL),
    );
    Ok(o)
}

/// The relay locator of `target` through the relay listening on `relay` (`ws://…` or
/// `wss://…`).
#[wasm_bindgen(js_name = relayLocator)]
pub fn relay_locator(relay: &str, target: &str) -> Result<String, JsValue> {
    let relay: Locator = relay.parse().map_err(|e: Error| js_error(&e))?;
    if !matches!(relay.scheme().as_str(), "ws" | "wss") {
        return Err(invalid(
            "a browser peer reaches relays over ws:// or wss:// only",
        ));
    }
    Ok(snap2p::relay::relay_locator(&relay, &principal_arg(target)?).to_string())
}

/// The first message of a spliced connection (§32.3) presenting `token`.
#[wasm_bindgen(js_name = spliceFrame)]
pub fn splice_frame(token: &[u8]) -> Result<Vec<u8>, JsValue> {
    let t: SpliceToken = token
        .try_into()
        .map_err(|_| invalid("a splice token is 16 bytes"))?;
    Ok(encode_splice(&t))
}

/// One circuit request (the core's [`CircuitDial`]): `request()` goes out on a `relay-1`
/// stream to the relay; the stream's bytes come back through `push` (at most `wanted()` at
/// a time) until it answers `{splice: Uint8Array | null}` or throws the relay's code.
#[wasm_bindgen]
pub struct CircuitRequest {
    dial: CircuitDial,
}

#[wasm_bindgen]
impl CircuitRequest {
    #[wasm_bindgen(constructor)]
    pub fn new(relay: &str, target: &str, splice: bool) -> Result<CircuitRequest, JsValue> {
        Ok(CircuitRequest {
            dial: CircuitDial::new(relay, principal_arg(target)?, splice),
        })
    }

    pub fn request(&self) -> Vec<u8> {
        self.dial.request()
    }

    pub fn wanted(&self) -> u32 {
        self.dial.wanted() as u32
    }

    /// `undefined` while the answer is incomplete; then `{splice}` or a thrown error.
    pub fn push(&mut self, bytes: &[u8]) -> Result<JsValue, JsValue> {
        match self.dial.push(bytes).map_err(|e| js_error(&e))? {
            None => Ok(JsValue::UNDEFINED),
            Some(CircuitGrant { splice, .. }) => {
                let o = Object::new();
                set(
                    &o,
                    "splice",
                    splice
                        .map(|t| JsValue::from(Uint8Array::from(&t[..])))
                        .unwrap_or(JsValue::NULL),
                );
                Ok(o.into())
            }
        }
    }

    /// The stream ended before the answer: the error (a JS Error with its code).
    pub fn end(&self) -> JsValue {
        js_error(&self.dial.end())
    }
}

/// A wallet's `stx_signMessage` signature of `message` in the wire form r ‖ s ‖ v
/// (v 0..3), when it is `principal`'s: the core's `normalize_wallet_signature`, which
/// `attachSignature` applies too (r ‖ s ‖ v or v ‖ r ‖ s, v a recovery id or a
/// bitcoin-style header 27..34); ERR_AUTH_INVALID otherwise.
#[wasm_bindgen(js_name = normalizeWalletSignature)]
pub fn normalize_wallet_signature(
    message: &str,
    principal: &str,
    sig: &[u8],
) -> Result<Vec<u8>, JsValue> {
    snap2p::identity::normalize_wallet_signature(
        &snap2p::identity::stacks_message_hash(message),
        sig,
        &principal_arg(principal)?,
    )
    .map_err(|e| js_error(&e))
}
