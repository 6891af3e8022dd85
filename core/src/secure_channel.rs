//! The secure channel: standard `Noise_XX_25519_ChaChaPoly_SHA256` through `snow`, or the
//! TypeScript implementation's variant of it ([`WireProfile::TypeScript`]: its HKDF takes
//! the chaining key as input key material and the DH output as `info`, docs/PROTOCOL.md
//! §12.1), which is the same snow state machine with that one function replaced.
//!
//! Empty prologue, empty handshake payloads, each handshake message and each transport
//! message in its own frame. The static key is the X25519 form of the ed25519 node key, so
//! the attestation that names the node key also names the Noise identity. Transport
//! messages are at most 65535 bytes (Noise's limit): callers split larger writes.

use bytes::BytesMut;
use curve25519_dalek::montgomery::MontgomeryPoint;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{BoxedCryptoResolver, CryptoResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorCode};
use crate::wire::frame;
use crate::wire::profile::WireProfile;

#[cfg(not(any(feature = "native-crypto", feature = "pure-rust")))]
compile_error!(
    "snap2p needs a crypto backend: the default feature `native-crypto`, or `pure-rust` \
     (`--no-default-features --features pure-rust`)"
);

use backend::{x25519, x25519_base, AeadKey};
#[cfg(feature = "native-crypto")]
use native as backend;
#[cfg(all(feature = "pure-rust", not(feature = "native-crypto")))]
use pure_rust as backend;

/// The native backends (feature `native-crypto`, the default): AWS-LC's assembly X25519
/// (see `X25519` below), ring's ChaCha20-Poly1305, and snow's ring resolver (ring's cipher
/// and SHA-256 inside the handshake) in front of its default one (the RNG).
#[cfg(feature = "native-crypto")]
mod native {
    use snow::resolvers::{BoxedCryptoResolver, DefaultResolver, FallbackResolver, RingResolver};
    use zeroize::Zeroizing;

    use super::{TransportCipher, TAG_LEN};

    pub(super) fn snow_resolver() -> BoxedCryptoResolver {
        Box::new(FallbackResolver::new(
            Box::new(RingResolver),
            Box::new(DefaultResolver),
        ))
    }

    /// `X25519(scalar, point)` (RFC 7748 §5); `None` if the result is all zeros.
    pub(super) fn x25519(scalar: &[u8; 32], point: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
        let mut out = Zeroizing::new([0u8; 32]);
        // SAFETY: `X25519` reads 32 bytes from each input and writes 32 bytes to `out`; all
        // three are 32-byte arrays. It returns 1, or 0 when the shared secret is all zeros.
        let ok = unsafe { aws_lc_sys::X25519(out.as_mut_ptr(), scalar.as_ptr(), point.as_ptr()) };
        (ok == 1).then_some(out)
    }

    /// `X25519(scalar, 9)`: the public key of `scalar`.
    pub(super) fn x25519_base(scalar: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: reads 32 bytes from `scalar`, writes 32 bytes to `out`.
        unsafe { aws_lc_sys::X25519_public_from_private(out.as_mut_ptr(), scalar.as_ptr()) };
        out
    }

    /// ChaCha20-Poly1305 (RFC 8439) or AES-256-GCM by ring, sealing and opening in place.
    ///
    /// Only the 32 key bytes are kept; ring's key is made on the stack for each seal and
    /// open. Why: `ring::aead::LessSafeKey` is an enum sized for AES-GCM's key schedule
    /// and GHASH table, ~576 bytes, so the two directions' keys were 1,152 of an idle
    /// session's ~6,400 heap bytes (issue 36's idle target is 4 KiB per session and side).
    /// Making the ChaCha20 key is a copy of the 32 bytes (29 ns), AES-256-GCM's a key
    /// expansion and GHASH table (321 ns against 16.3 µs to seal a 64 KiB frame, 2 %; ring
    /// 0.17.14 on a Xeon with VAES, 2026-12-06); a transport frame is sealed or opened
    /// once, and is up to 64 KiB
    /// (docs/BENCHMARKS.md, 2026-12-05 "idle memory": bulk rows before/after in the same
    /// run).
    /// The cipher is not stored here but passed in by the caller, which keeps it beside
    /// the key's direction (one byte in `NoiseTransport`, inside its padding): a tag here
    /// would grow each direction's state by 8 bytes of alignment.
    pub(super) struct AeadKey(Zeroizing<[u8; 32]>);

    impl AeadKey {
        pub(super) fn new(cipher: TransportCipher, key: &[u8; 32]) -> Option<Self> {
            ring::aead::UnboundKey::new(algorithm(cipher), key).ok()?;
            Some(AeadKey(Zeroizing::new(*key)))
        }

        fn ring(&self, cipher: TransportCipher) -> Option<ring::aead::LessSafeKey> {
            let unbound = ring::aead::UnboundKey::new(algorithm(cipher), &self.0[..]).ok()?;
            Some(ring::aead::LessSafeKey::new(unbound))
        }

        /// Encrypts `buf` in place (empty associated data) and returns the tag.
        pub(super) fn seal_in_place(
            &self,
            cipher: TransportCipher,
            nonce: [u8; 12],
            buf: &mut [u8],
        ) -> Option<[u8; TAG_LEN]> {
            let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
            let tag = self
                .ring(cipher)?
                .seal_in_place_separate_tag(nonce, ring::aead::Aad::empty(), buf)
                .ok()?;
            tag.as_ref().try_into().ok()
        }

        /// Decrypts `buf` (ciphertext ‖ tag) in place; returns the plaintext length.
        pub(super) fn open_in_place(
            &self,
            cipher: TransportCipher,
            nonce: [u8; 12],
            buf: &mut [u8],
        ) -> Option<usize> {
            let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
            self.ring(cipher)?
                .open_in_place(nonce, ring::aead::Aad::empty(), buf)
                .ok()
                .map(|plain| plain.len())
        }
    }

    fn algorithm(cipher: TransportCipher) -> &'static ring::aead::Algorithm {
        match cipher {
            TransportCipher::ChaChaPoly => &ring::aead::CHACHA20_POLY1305,
            TransportCipher::AesGcm => &ring::aead::AES_256_GCM,
        }
    }
}

/// The pure-Rust backends (feature `pure-rust` without `native-crypto`; what a wasm32
/// build uses): x25519-dalek, RustCrypto's `chacha20poly1305`, and snow's default
/// resolver (the same `chacha20poly1305`, `sha2`, getrandom) for the handshake. The
/// results are byte-identical to the native backends (same tests, same vectors).
#[cfg(all(feature = "pure-rust", not(feature = "native-crypto")))]
mod pure_rust {
    use aes_gcm::Aes256Gcm;
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
    use snow::resolvers::{BoxedCryptoResolver, DefaultResolver};
    use subtle::ConstantTimeEq;
    use zeroize::Zeroizing;

    use super::{TransportCipher, TAG_LEN};

    pub(super) fn snow_resolver() -> BoxedCryptoResolver {
        Box::new(DefaultResolver)
    }

    /// `X25519(scalar, point)` (RFC 7748 §5); `None` if the result is all zeros (checked
    /// in constant time), exactly as the native backend.
    pub(super) fn x25519(scalar: &[u8; 32], point: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
        let out = Zeroizing::new(x25519_dalek::x25519(*scalar, *point));
        let all_zero: bool = out[..].ct_eq(&[0u8; 32][..]).into();
        (!all_zero).then_some(out)
    }

    /// `X25519(scalar, 9)`: the public key of `scalar` (fixed-base table multiplication).
    pub(super) fn x25519_base(scalar: &[u8; 32]) -> [u8; 32] {
        let secret = x25519_dalek::StaticSecret::from(*scalar);
        x25519_dalek::PublicKey::from(&secret).to_bytes()
    }

    /// ChaCha20-Poly1305 (RFC 8439) or AES-256-GCM by RustCrypto, sealing and opening in
    /// place (`aes-gcm` uses AES-NI and CLMUL when the CPU has them, a constant-time
    /// software AES when not, e.g. in wasm32).
    pub(super) enum AeadKey {
        ChaChaPoly(ChaCha20Poly1305),
        AesGcm(Box<Aes256Gcm>),
    }

    impl AeadKey {
        pub(super) fn new(cipher: TransportCipher, key: &[u8; 32]) -> Option<Self> {
            Some(match cipher {
                TransportCipher::ChaChaPoly => {
                    AeadKey::ChaChaPoly(ChaCha20Poly1305::new(key.into()))
                }
                TransportCipher::AesGcm => AeadKey::AesGcm(Box::new(Aes256Gcm::new(key.into()))),
            })
        }

        /// Encrypts `buf` in place (empty associated data) and returns the tag. `_cipher`
        /// is the variant's (the native backend's key does not know it).
        pub(super) fn seal_in_place(
            &self,
            _cipher: TransportCipher,
            nonce: [u8; 12],
            buf: &mut [u8],
        ) -> Option<[u8; TAG_LEN]> {
            let nonce = Nonce::from_slice(&nonce);
            let tag = match self {
                AeadKey::ChaChaPoly(k) => k.encrypt_in_place_detached(nonce, &[], buf),
                AeadKey::AesGcm(k) => k.encrypt_in_place_detached(nonce, &[], buf),
            }
            .ok()?;
            Some(tag.into())
        }

        /// Decrypts `buf` (ciphertext ‖ tag) in place; returns the plaintext length.
        pub(super) fn open_in_place(
            &self,
            _cipher: TransportCipher,
            nonce: [u8; 12],
            buf: &mut [u8],
        ) -> Option<usize> {
            let n = buf.len().checked_sub(TAG_LEN)?;
            let (ct, tag) = buf.split_at_mut(n);
            let tag = Tag::clone_from_slice(tag);
            let nonce = Nonce::from_slice(&nonce);
            match self {
                AeadKey::ChaChaPoly(k) => k.decrypt_in_place_detached(nonce, &[], ct, &tag),
                AeadKey::AesGcm(k) => k.decrypt_in_place_detached(nonce, &[], ct, &tag),
            }
            .ok()?;
            Some(n)
        }
    }
}

pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Largest plaintext one transport message can carry.
pub const MAX_PLAINTEXT: usize = frame::MAX_TRANSPORT_FRAME - TAG_LEN;
/// Exact sizes of the three XX messages with empty payloads.
pub const XX_MSG1_LEN: usize = 32;
pub const XX_MSG2_LEN: usize = 32 + 48 + 16;
pub const XX_MSG3_LEN: usize = 48 + 16;

/// Noise message 1's payload that offers hs2 (docs/PROTOCOL.md §5.8): message 1 is then
/// `XX_MSG1_LEN + 1` bytes, this the last.
pub const HS2_OFFER: u8 = 0x02;

/// Whether a HELLO of `len` bytes fits in hs2's message 2 (and so in message 3, which is
/// shorter): the message must be a pre-auth frame, at most
/// [`frame::MAX_PREAUTH_FRAME`] bytes, so a HELLO of at most 1024 − 96 = 928 bytes.
pub fn hs2_payload_fits(len: usize) -> bool {
    XX_MSG2_LEN + len <= frame::MAX_PREAUTH_FRAME
}

fn handshake_error(e: snow::Error) -> Error {
    Error::new(
        ErrorCode::HandshakeFailed,
        format!("noise handshake failed: {e}"),
    )
}

/// snow's crypto (native: ring's cipher and hash; pure-rust: RustCrypto's; the default RNG
/// in both), with an X25519 that knows the
/// node's static key pair: snow's own `Dh25519::set` derives the public key again for
/// every session, a base-point multiplication (~5 % of a handshake's CPU) for a value the
/// node key computed once. Key generation and DH results are the same as snow's.
struct NodeResolver {
    inner: BoxedCryptoResolver,
    static_secret: Zeroizing<[u8; 32]>,
    static_public: [u8; 32],
    profile: WireProfile,
    /// Where the ephemeral secret is kept (the initiator's diagnosis of a profile
    /// mismatch re-reads Noise message 2 under the other profile, [`NoiseHandshake`]).
    ephemeral: EphemeralTap,
}

/// The session's ephemeral X25519 secret, as snow set or generated it.
type EphemeralTap = std::sync::Arc<std::sync::Mutex<Option<Zeroizing<[u8; 32]>>>>;

impl CryptoResolver for NodeResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        self.inner.resolve_rng()
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(X25519 {
                known_secret: self.static_secret.clone(),
                known_public: self.static_public,
                privkey: Zeroizing::new([0; 32]),
                pubkey: [0; 32],
                tap: self.ephemeral.clone(),
            })),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        let hash = self.inner.resolve_hash(choice)?;
        Some(match self.profile {
            WireProfile::TypeScript => Box::new(TsHkdf(hash)),
            _ => hash,
        })
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        self.inner.resolve_cipher(choice)
    }
}

/// X25519 for snow (RFC 7748: scalars clamped on use, the u-coordinate's top bit ignored,
/// as snow's `Dh25519`), computed by AWS-LC's assembly X25519 (s2n-bignum on x86_64 and
/// aarch64; feature `native-crypto`): ~2× curve25519-dalek's serial backend for the ladder
/// and ~2.4× for the base-point multiplication (criterion `x25519/*` in
/// `core/benches/micro.rs`). The six ladders of Noise XX were ~60 % of a handshake's CPU.
/// With `pure-rust` alone, x25519-dalek computes the same function (`pure_rust` module).
///
/// The raw `X25519` / `X25519_public_from_private` functions rather than aws-lc-rs's
/// `agreement` API: the static key would need an `agreement::PrivateKey` per session
/// (`from_private_key` computes the public key: one more base-point multiplication,
/// ~12 µs, exactly what the known key pair saves), and each `agree` allocates two
/// `EVP_PKEY`s and a context. The results are byte-identical to curve25519-dalek
/// (unit test `x25519_matches_dalek_and_rfc7748`).
///
/// Low-order peer keys: `dh` fails when the shared secret is all zeros (the peer sent
/// one of the few points of order dividing 8, or an encoding of one), as RFC 7748 §6.1
/// allows and as AWS-LC does; snow then returns `snow::Error::Dh`, which surfaces as
/// `ErrorCode::HandshakeFailed` (`handshake_error`). No honest peer produces such a
/// key; the previous implementation (curve25519-dalek, like snow's) accepted it and
/// derived keys from the all-zero secret. Test `low_order_peer_keys_fail_the_handshake`.
struct X25519 {
    known_secret: Zeroizing<[u8; 32]>,
    known_public: [u8; 32],
    privkey: Zeroizing<[u8; 32]>,
    pubkey: [u8; 32],
    tap: EphemeralTap,
}

impl X25519 {
    fn derive_public(&mut self) {
        self.pubkey = if *self.privkey == *self.known_secret {
            self.known_public
        } else {
            // The ephemeral key: kept for the mismatch diagnosis (it lives as long as the
            // handshake, like snow's own copy).
            if let Ok(mut slot) = self.tap.lock() {
                *slot = Some(self.privkey.clone());
            }
            x25519_base(&self.privkey)
        };
    }
}

/// The TypeScript implementation's HKDF (docs/PROTOCOL.md §12.1): it calls HKDF-SHA256 with
/// the chaining key as input key material, an empty salt and the DH output as `info`:
/// `PRK = HMAC(key = empty, ck)`, `T1 = HMAC(PRK, ikm ‖ 0x01)`, `T2 = HMAC(PRK, T1 ‖ ikm ‖
/// 0x02)` (`T3` likewise), where Noise computes `PRK = HMAC(ck, ikm)`, `T1 = HMAC(PRK,
/// 0x01)`, `T2 = HMAC(PRK, T1 ‖ 0x02)`. Everything else is snow's hash, delegated. Checked
/// step by step against the recorded TypeScript handshake (`core/tests/ts_compat.rs`).
struct TsHkdf(Box<dyn Hash>);

impl Hash for TsHkdf {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn block_len(&self) -> usize {
        self.0.block_len()
    }
    fn hash_len(&self) -> usize {
        self.0.hash_len()
    }
    fn reset(&mut self) {
        self.0.reset()
    }
    fn input(&mut self, data: &[u8]) {
        self.0.input(data)
    }
    fn result(&mut self, out: &mut [u8]) {
        self.0.result(out)
    }
    fn hmac(&mut self, key: &[u8], data: &[u8], out: &mut [u8]) {
        self.0.hmac(key, data, out)
    }
    fn hkdf(
        &mut self,
        chaining_key: &[u8],
        input_key_material: &[u8],
        outputs: usize,
        out1: &mut [u8],
        out2: &mut [u8],
        out3: &mut [u8],
    ) {
        let hash_len = self.hash_len();
        let mut prk = Zeroizing::new([0u8; 64]);
        self.hmac(&[], chaining_key, &mut prk[..]);
        let prk = &prk[..hash_len];
        // T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i), T(0) empty.
        let mut block = Zeroizing::new(Vec::with_capacity(hash_len + input_key_material.len() + 1));
        let outs: [&mut [u8]; 3] = [out1, out2, out3];
        let mut prev: Option<Zeroizing<[u8; 64]>> = None;
        for (i, out) in outs.into_iter().enumerate().take(outputs.min(3)) {
            block.clear();
            if let Some(p) = &prev {
                block.extend_from_slice(&p[..hash_len]);
            }
            block.extend_from_slice(input_key_material);
            block.push(i as u8 + 1);
            let mut t = Zeroizing::new([0u8; 64]);
            self.0.hmac(prk, &block, &mut t[..]);
            out[..hash_len].copy_from_slice(&t[..hash_len]);
            prev = Some(t);
        }
    }
}

impl Dh for X25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        32
    }

    fn priv_len(&self) -> usize {
        32
    }

    fn set(&mut self, privkey: &[u8]) {
        self.privkey.copy_from_slice(&privkey[..32]);
        self.derive_public();
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        rng.try_fill_bytes(&mut self.privkey[..])?;
        self.derive_public();
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.pubkey
    }

    fn privkey(&self) -> &[u8] {
        &self.privkey[..]
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let point: &[u8; 32] = pubkey
            .get(..32)
            .and_then(|p| p.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let shared = x25519(&self.privkey, point).ok_or(snow::Error::Dh)?;
        out.get_mut(..32)
            .ok_or(snow::Error::Dh)?
            .copy_from_slice(&shared[..]);
        Ok(())
    }
}

/// A Noise XX handshake in progress.
pub struct NoiseHandshake {
    state: Box<snow::HandshakeState>,
    profile: WireProfile,
    ephemeral: EphemeralTap,
    /// Set when Noise message 2 failed under our profile but reads under the other one.
    mismatch: Option<WireProfile>,
}

impl std::fmt::Debug for NoiseHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseHandshake")
            .field("initiator", &self.state.is_initiator())
            .finish()
    }
}

impl NoiseHandshake {
    /// `static_secret` is the X25519 secret derived from the node key and `static_public`
    /// its public key (which must match: it is not derived again). `fixed_ephemeral`
    /// exists only so test vectors can be reproduced byte for byte.
    pub fn new(
        initiator: bool,
        static_secret: &[u8; 32],
        static_public: &[u8; 32],
        fixed_ephemeral: Option<&[u8; 32]>,
    ) -> Result<Self, Error> {
        Self::with_profile(
            WireProfile::Standard,
            initiator,
            static_secret,
            static_public,
            fixed_ephemeral,
        )
    }

    /// [`NoiseHandshake::new`] in a given wire profile (the TypeScript profile replaces
    /// snow's HKDF, nothing else).
    pub fn with_profile(
        profile: WireProfile,
        initiator: bool,
        static_secret: &[u8; 32],
        static_public: &[u8; 32],
        fixed_ephemeral: Option<&[u8; 32]>,
    ) -> Result<Self, Error> {
        debug_assert_eq!(
            MontgomeryPoint::mul_base_clamped(*static_secret).to_bytes(),
            *static_public,
            "static_public is not the public key of static_secret"
        );
        let params = NOISE_PARAMS
            .parse()
            .map_err(|e| Error::new(ErrorCode::Internal, format!("noise params: {e}")))?;
        let ephemeral = EphemeralTap::default();
        let resolver = NodeResolver {
            inner: backend::snow_resolver(),
            static_secret: Zeroizing::new(*static_secret),
            static_public: *static_public,
            profile,
            ephemeral: ephemeral.clone(),
        };
        let mut builder = snow::Builder::with_resolver(params, Box::new(resolver))
            .local_private_key(static_secret)
            .map_err(handshake_error)?;
        if let Some(e) = fixed_ephemeral {
            builder = builder.fixed_ephemeral_key_for_testing_only(e);
        }
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .map_err(handshake_error)?;
        Ok(NoiseHandshake {
            state: Box::new(state),
            profile,
            ephemeral,
            mismatch: None,
        })
    }

    pub fn profile(&self) -> WireProfile {
        self.profile
    }

    /// After a failed Noise message 2: the profile the listener speaks instead of ours,
    /// when the message reads under that one (a profile mismatch, not an attack or noise).
    pub fn mismatch(&self) -> Option<WireProfile> {
        self.mismatch
    }

    /// Writes the next handshake message (empty payload) as one frame.
    pub fn write_frame(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.write_frame_with(&[], out)
    }

    /// Writes the next handshake message carrying `payload` as one frame: hs2's offer
    /// and HELLOs (docs/PROTOCOL.md §5.8). The whole message must fit a pre-auth frame
    /// ([`frame::MAX_PREAUTH_FRAME`]); see [`hs2_payload_fits`].
    pub fn write_frame_with(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let mut buf = [0u8; frame::MAX_PREAUTH_FRAME];
        let n = self
            .state
            .write_message(payload, &mut buf)
            .map_err(handshake_error)?;
        frame::write_frame(out, &buf[..n]);
        Ok(())
    }

    /// Reads a handshake message; a non-empty payload is refused (v1 defines none).
    pub fn read_message(&mut self, msg: &[u8]) -> Result<(), Error> {
        if !self.read_payload(msg)?.is_empty() {
            return Err(Error::new(
                ErrorCode::HandshakeFailed,
                "unexpected noise handshake payload",
            ));
        }
        Ok(())
    }

    /// Reads a handshake message and returns its payload (decrypted where Noise encrypts
    /// it: messages 2 and 3).
    pub fn read_payload(&mut self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let mut buf = [0u8; frame::MAX_PREAUTH_FRAME];
        if msg.len() > buf.len() {
            return Err(Error::new(
                ErrorCode::HandshakeFailed,
                "noise handshake message too long",
            ));
        }
        let n = match self.state.read_message(msg, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                let other = self.profile.other();
                let is_msg2 = self.state.is_initiator() && msg.len() == XX_MSG2_LEN;
                let secret = self.ephemeral.lock().ok().and_then(|s| s.clone());
                if let (true, Some(secret)) = (is_msg2, secret) {
                    if msg2_reads_under(other, &secret, msg) {
                        self.mismatch = Some(other);
                        return Err(Error::new(
                            ErrorCode::HandshakeFailed,
                            mismatch_text(self.profile, other),
                        ));
                    }
                }
                return Err(handshake_error(e));
            }
        };
        Ok(buf[..n].to_vec())
    }

    pub fn is_finished(&self) -> bool {
        self.state.is_handshake_finished()
    }

    /// Completes the handshake: the transport keys, the handshake hash and the peer's
    /// static key.
    pub fn into_transport(mut self) -> Result<NoiseTransport, Error> {
        if !self.state.is_handshake_finished() {
            return Err(Error::new(ErrorCode::Internal, "handshake not finished"));
        }
        let hash: [u8; 32] = self
            .state
            .get_handshake_hash()
            .try_into()
            .map_err(|_| Error::new(ErrorCode::Internal, "handshake hash length"))?;
        let remote_static: [u8; 32] = self
            .state
            .get_remote_static()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| Error::new(ErrorCode::HandshakeFailed, "no remote static key"))?;
        let initiator = self.state.is_initiator();
        // Split() per the Noise spec: the first key encrypts initiator -> responder.
        let (k1, k2) = self.state.dangerously_get_raw_split();
        let (send, recv) = if initiator { (k1, k2) } else { (k2, k1) };
        Ok(NoiseTransport {
            send: CipherState::new(&send)?,
            recv: CipherState::new(&recv)?,
            send_cipher: TransportCipher::ChaChaPoly,
            recv_cipher: TransportCipher::ChaChaPoly,
            send_switch_after_hello: false,
            handshake_hash: hash,
            remote_static,
        })
    }
}

/// What the dialer's operator reads when the listener speaks `theirs` and we `ours`.
pub fn mismatch_text(ours: WireProfile, theirs: WireProfile) -> String {
    match theirs {
        WireProfile::TypeScript => format!(
            "noise handshake failed: this peer speaks the TypeScript profile (its Noise key \
             derivation is the TypeScript implementation's, PROTOCOL.md §12); dial it with \
             --compat ts (WireProfile::TypeScript); this side spoke {}",
            ours.describe()
        ),
        _ => format!(
            "noise handshake failed: this peer speaks the standard snap2p profile, not the \
             TypeScript one; dial it without --compat ts (WireProfile::Standard); this side \
             spoke {}",
            ours.describe()
        ),
    }
}

/// Whether Noise XX message 2 (`e ‖ enc(s) ‖ enc(payload)`) reads under `profile`, for an
/// initiator whose ephemeral secret is `e_secret` (empty prologue, empty message-1
/// payload): the symmetric state is replayed by hand with snow's own hash and cipher, up
/// to the decryption of the responder's static key. Only a diagnosis: it never lets a
/// session continue (no fallback, so no downgrade, PROTOCOL.md §12.2).
fn msg2_reads_under(profile: WireProfile, e_secret: &[u8; 32], msg: &[u8]) -> bool {
    let resolver = NodeResolver {
        inner: backend::snow_resolver(),
        static_secret: Zeroizing::new([0; 32]),
        static_public: [0; 32],
        profile,
        ephemeral: EphemeralTap::default(),
    };
    let (Some(mut hash), Some(mut cipher)) = (
        resolver.resolve_hash(&HashChoice::SHA256),
        resolver.resolve_cipher(&CipherChoice::ChaChaPoly),
    ) else {
        return false;
    };
    if msg.len() != XX_MSG2_LEN {
        return false;
    }
    let mix_hash = |hash: &mut Box<dyn Hash>, h: &mut [u8; 32], data: &[u8]| {
        hash.reset();
        hash.input(&h[..]);
        hash.input(data);
        hash.result(&mut h[..]);
    };
    // The protocol name is exactly 32 bytes: h = name, ck = h.
    let mut h = [0u8; 32];
    h.copy_from_slice(NOISE_PARAMS.as_bytes());
    let mut ck = h;
    mix_hash(&mut hash, &mut h, &[]);
    mix_hash(&mut hash, &mut h, &x25519_base(e_secret));
    mix_hash(&mut hash, &mut h, &[]);
    let re: [u8; 32] = msg[..32].try_into().expect("length checked");
    mix_hash(&mut hash, &mut h, &re);
    let Some(dh) = x25519(e_secret, &re) else {
        return false;
    };
    let (mut ck2, mut k) = ([0u8; 64], Zeroizing::new([0u8; 64]));
    hash.hkdf(&ck, &dh[..], 2, &mut ck2, &mut k[..], &mut []);
    ck.copy_from_slice(&ck2[..32]);
    let mut key = [0u8; 32];
    key.copy_from_slice(&k[..32]);
    cipher.set(&key);
    let mut out = [0u8; 48];
    cipher.decrypt(0, &h, &msg[32..80], &mut out).is_ok()
}

/// One MixKey step of `profile` (`HKDF(ck, ikm)` → new chaining key, cipher key): what each
/// side computes per DH. For vectors and second implementations.
pub fn mix_key(profile: WireProfile, ck: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let resolver = NodeResolver {
        inner: backend::snow_resolver(),
        static_secret: Zeroizing::new([0; 32]),
        static_public: [0; 32],
        profile,
        ephemeral: EphemeralTap::default(),
    };
    let mut hash = resolver
        .resolve_hash(&HashChoice::SHA256)
        .expect("SHA-256 is always available");
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    hash.hkdf(ck, ikm, 2, &mut a, &mut b, &mut []);
    (
        a[..32].try_into().expect("32 bytes"),
        b[..32].try_into().expect("32 bytes"),
    )
}

/// The AEAD of a transport direction: Noise's `ChaChaPoly` (every session starts with it:
/// the handshake and both HELLOs), or `AESGCM` after both HELLOs list `aes-gcm`
/// (docs/PROTOCOL.md §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportCipher {
    /// ChaCha20-Poly1305; nonce = 4 zero bytes ‖ the counter, 64-bit little-endian.
    ChaChaPoly,
    /// AES-256-GCM; nonce = 4 zero bytes ‖ the counter, 64-bit big-endian (Noise §12.4).
    AesGcm,
}

impl TransportCipher {
    /// The Noise nonce of counter `n` for this cipher (Noise rev. 34 §12.3, §12.4).
    fn nonce(self, n: u64) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&match self {
            TransportCipher::ChaChaPoly => n.to_le_bytes(),
            TransportCipher::AesGcm => n.to_be_bytes(),
        });
        nonce
    }
}

/// Whether this CPU runs AES-256-GCM in hardware (AES and carry-less multiply
/// instructions), so a node lists `aes-gcm` (docs/PROTOCOL.md §7.2). Why only then: on
/// such CPUs AES-256-GCM seals 4-5x faster than ChaCha20-Poly1305 (ring, 64 KiB
/// frames: 5.1 against 1.1 GiB/s on a Xeon with VAES, docs/BENCHMARKS.md), and without
/// them the constant-time software AES is slower than ChaCha20.
pub fn aes_gcm_accelerated() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// One direction of a Noise transport: its AEAD (ring's, or RustCrypto's with
/// `pure-rust`) with the Noise nonce and empty associated data.
///
/// Implemented on the AEAD directly (the keys come from snow's standard Split) so frames
/// are sealed and opened in place: the data path never copies a payload to encrypt it.
///
/// Its cipher is kept by the [`NoiseTransport`] (see `AeadKey`), and passed in.
struct CipherState {
    key: AeadKey,
    nonce: u64,
    /// Transport messages sealed (or opened) under the current key, since Split() or the
    /// last rekey: what the sender's rekey thresholds count.
    frames_since_rekey: u64,
    /// Their bytes, ciphertext and tag (the frame payloads); counted on the sending side.
    bytes_since_rekey: u64,
}

impl CipherState {
    fn new(key: &[u8; 32]) -> Result<Self, Error> {
        Ok(CipherState {
            key: aead_key(TransportCipher::ChaChaPoly, key)?,
            nonce: 0,
            frames_since_rekey: 0,
            bytes_since_rekey: 0,
        })
    }

    fn next_nonce(&mut self, cipher: TransportCipher) -> Result<[u8; 12], Error> {
        // Noise reserves 2^64-1 (REKEY uses it); a session never gets near it, but never
        // wrap.
        if self.nonce == u64::MAX {
            return Err(Error::new(
                ErrorCode::ResourceExhausted,
                "nonce space exhausted",
            ));
        }
        let n = cipher.nonce(self.nonce);
        self.nonce += 1;
        self.frames_since_rekey += 1;
        Ok(n)
    }

    /// Noise's `Rekey()` (spec rev. 34 §4.2 and §11.3): `k = REKEY(k)`, the nonce counter
    /// unchanged. Zero further work per frame: the new key replaces the old one in place.
    fn rekey(&mut self, cipher: TransportCipher) -> Result<(), Error> {
        self.rekey_into(cipher, cipher)
    }

    /// `k = REKEY(k)` under the current cipher `from`, then `to` from the next frame on: a
    /// rekey (the same cipher), or the switch to AES-256-GCM after the HELLOs (§7.2).
    fn rekey_into(&mut self, from: TransportCipher, to: TransportCipher) -> Result<(), Error> {
        let next = rekey_with(&self.key, from)?;
        self.key = aead_key(to, &next)?;
        self.frames_since_rekey = 0;
        self.bytes_since_rekey = 0;
        Ok(())
    }
}

fn aead_key(cipher: TransportCipher, key: &[u8; 32]) -> Result<AeadKey, Error> {
    AeadKey::new(cipher, key).ok_or_else(|| Error::new(ErrorCode::Internal, "bad transport key"))
}

/// `REKEY(k)` (Noise spec §4.2, the default of §11.3, which neither ChaChaPoly nor AESGCM
/// overrides): the first 32 bytes of `ENCRYPT(k, maxnonce, zerolen, zeros)`, i.e. 32 zero
/// bytes sealed under `k` at nonce 2^64-1 (never used for a message; its 12 bytes are the
/// same in both ciphers' encodings) with empty associated data, the 16-byte tag dropped.
/// Computed through the backend's AEAD, so the native and pure-rust backends agree by
/// construction (and with snow's `Cipher::rekey`: unit tests `rekey_matches_snow_transport`,
/// `aes_gcm_switch_matches_snow_ciphers`).
fn rekey_with(key: &AeadKey, cipher: TransportCipher) -> Result<Zeroizing<[u8; 32]>, Error> {
    let mut next = Zeroizing::new([0u8; 32]);
    key.seal_in_place(cipher, cipher.nonce(u64::MAX), &mut next[..])
        .ok_or_else(|| Error::new(ErrorCode::Internal, "rekey encrypt failed"))?;
    Ok(next)
}

/// `REKEY(key)` of one 32-byte key under `cipher` (Noise spec §11.3): what each side
/// computes when a REKEY message switches a direction (docs/PROTOCOL.md §7.1), and, under
/// ChaChaPoly, the AES-256-GCM key of a direction after the HELLOs (§7.2). For vectors
/// and second implementations; sessions rekey their keys in place.
pub fn rekey_key(cipher: TransportCipher, key: &[u8; 32]) -> Result<[u8; 32], Error> {
    Ok(*rekey_with(&aead_key(cipher, key)?, cipher)?)
}

/// Encrypts `plaintext` as one transport frame under `key` with `cipher` at nonce counter
/// `nonce` (frame prefix included): the bytes a peer whose key and counter are these would
/// send. For vectors and tests.
pub fn seal_frame_with(
    cipher: TransportCipher,
    key: &[u8; 32],
    nonce: u64,
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(Error::new(ErrorCode::InvalidArgument, "plaintext too long"));
    }
    let k = aead_key(cipher, key)?;
    let mut body = plaintext.to_vec();
    let tag = k
        .seal_in_place(cipher, cipher.nonce(nonce), &mut body)
        .ok_or_else(|| Error::new(ErrorCode::Internal, "encrypt failed"))?;
    body.extend_from_slice(&tag);
    let mut out = Vec::with_capacity(body.len() + FRAME_PREFIX_RESERVE);
    frame::write_frame(&mut out, &body);
    Ok(out)
}

/// An established Noise transport.
pub struct NoiseTransport {
    send: CipherState,
    recv: CipherState,
    send_cipher: TransportCipher,
    recv_cipher: TransportCipher,
    /// The sending direction switches to AES-256-GCM once our HELLO (counter 0) is sealed.
    send_switch_after_hello: bool,
    pub handshake_hash: [u8; 32],
    pub remote_static: [u8; 32],
}

impl std::fmt::Debug for NoiseTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseTransport").finish_non_exhaustive()
    }
}

/// Bytes reserved in front of a frame being built: the longest varint of a 65535-byte frame.
pub const FRAME_PREFIX_RESERVE: usize = 3;

impl NoiseTransport {
    /// Starts a frame in `out`: reserves the length prefix. Write the plaintext after it,
    /// then call [`NoiseTransport::seal_frame`] with the returned offset.
    pub fn begin_frame(out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_PREFIX_RESERVE]);
        start
    }

    /// Encrypts in place the plaintext written since `begin_frame` returned `start`, appends
    /// the tag and writes the length prefix.
    pub fn seal_frame(&mut self, out: &mut Vec<u8>, start: usize) -> Result<(), Error> {
        let body = start + FRAME_PREFIX_RESERVE;
        let plain_len = out.len() - body;
        if plain_len > MAX_PLAINTEXT {
            return Err(Error::new(ErrorCode::Internal, "frame plaintext too long"));
        }
        let nonce = self.send.next_nonce(self.send_cipher)?;
        let tag = self
            .send
            .key
            .seal_in_place(self.send_cipher, nonce, &mut out[body..])
            .ok_or_else(|| Error::new(ErrorCode::Internal, "encrypt failed"))?;
        out.extend_from_slice(&tag);
        let ct_len = plain_len + TAG_LEN;
        self.send.bytes_since_rekey += ct_len as u64;
        if self.send_switch_after_hello {
            self.send_switch_after_hello = false;
            self.switch_send()?;
        }
        let mut prefix = Vec::with_capacity(FRAME_PREFIX_RESERVE);
        frame::write_varint(&mut prefix, ct_len as u64);
        let shift = FRAME_PREFIX_RESERVE - prefix.len();
        if shift > 0 {
            // Short frames: close the gap left by the reserved prefix.
            out.copy_within(body.., body - shift);
            out.truncate(out.len() - shift);
        }
        out[start..start + prefix.len()].copy_from_slice(&prefix);
        Ok(())
    }

    /// Encrypts `plaintext` (at most [`MAX_PLAINTEXT`] bytes) and appends it as one frame.
    pub fn encrypt_frame(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let start = Self::begin_frame(out);
        out.extend_from_slice(plaintext);
        self.seal_frame(out, start)
    }

    /// Decrypts one transport frame in place and returns the plaintext (the same buffer,
    /// tag removed). A failure means tampering or a desynchronised peer: close the session.
    pub fn open_frame(&mut self, mut frame: BytesMut) -> Result<BytesMut, Error> {
        if frame.len() < TAG_LEN {
            return Err(Error::new(
                ErrorCode::InvalidMessage,
                "transport frame shorter than its tag",
            ));
        }
        let nonce = self.recv.next_nonce(self.recv_cipher)?;
        let n = self
            .recv
            .key
            .open_in_place(self.recv_cipher, nonce, &mut frame)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidMessage,
                    "transport frame failed authentication (corrupted, forged, or sealed \
                     under a key a REKEY had replaced)",
                )
            })?;
        frame.truncate(n);
        Ok(frame)
    }

    /// Replaces the sending key with `REKEY(key)` (Noise §11.3); the nonce counter goes on.
    /// Call right after sealing the frame that carries REKEY (docs/PROTOCOL.md §7.1).
    pub fn rekey_send(&mut self) -> Result<(), Error> {
        self.send.rekey(self.send_cipher)
    }

    /// Replaces the receiving key with `REKEY(key)`; call right after opening the frame that
    /// carried the peer's REKEY. Frames the peer sealed under the old key then fail
    /// authentication.
    pub fn rekey_recv(&mut self) -> Result<(), Error> {
        self.recv.rekey(self.recv_cipher)
    }

    /// Both HELLOs list `aes-gcm` (docs/PROTOCOL.md §7.2): each direction's frames from
    /// counter 1 on (everything after its HELLO, counter 0) are AES-256-GCM under
    /// `REKEY(k)` of its ChaChaPoly key, the counters going on. Call right after opening
    /// the peer's HELLO. The receiving direction switches now; the sending one now if our
    /// HELLO is sealed, else right after it is (it may still be queued). A second call
    /// does nothing.
    pub fn switch_to_aes_gcm(&mut self) -> Result<(), Error> {
        self.switch_recv()?;
        if self.send_cipher != TransportCipher::AesGcm {
            if self.send.nonce == 0 {
                self.send_switch_after_hello = true;
            } else {
                self.switch_send()?;
            }
        }
        Ok(())
    }

    /// [`Self::switch_to_aes_gcm`] for hs2 (docs/PROTOCOL.md §5.8), whose HELLOs travel in
    /// the Noise messages: no transport message is sealed under ChaChaPoly, so both
    /// directions switch now, from counter 0.
    pub fn switch_to_aes_gcm_from_start(&mut self) -> Result<(), Error> {
        self.switch_recv()?;
        if self.send_cipher != TransportCipher::AesGcm {
            self.switch_send()?;
        }
        Ok(())
    }

    fn switch_recv(&mut self) -> Result<(), Error> {
        if self.recv_cipher != TransportCipher::AesGcm {
            self.recv
                .rekey_into(self.recv_cipher, TransportCipher::AesGcm)?;
            self.recv_cipher = TransportCipher::AesGcm;
        }
        Ok(())
    }

    fn switch_send(&mut self) -> Result<(), Error> {
        self.send
            .rekey_into(self.send_cipher, TransportCipher::AesGcm)?;
        self.send_cipher = TransportCipher::AesGcm;
        Ok(())
    }

    /// The AEAD of the sending direction (the receiving one is the same once switched).
    pub fn cipher(&self) -> TransportCipher {
        self.send_cipher
    }

    /// Transport messages and their bytes (ciphertext ‖ tag) sealed under the current
    /// sending key.
    pub fn sent_since_rekey(&self) -> (u64, u64) {
        (self.send.frames_since_rekey, self.send.bytes_since_rekey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn keypair() -> ([u8; 32], [u8; 32]) {
        let mut k = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut k);
        (k, MontgomeryPoint::mul_base_clamped(k).to_bytes())
    }

    #[test]
    fn xx_round_trip_and_sizes() {
        let (a, b) = (keypair(), keypair());
        let mut i = NoiseHandshake::new(true, &a.0, &a.1, None).unwrap();
        let mut r = NoiseHandshake::new(false, &b.0, &b.1, None).unwrap();
        let mut wire = vec![];
        i.write_frame(&mut wire).unwrap();
        let mut buf = BytesMut::from(&wire[..]);
        let m1 = frame::next_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(m1.len(), XX_MSG1_LEN);
        r.read_message(&m1).unwrap();
        wire.clear();
        r.write_frame(&mut wire).unwrap();
        let mut buf = BytesMut::from(&wire[..]);
        let m2 = frame::next_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(m2.len(), XX_MSG2_LEN);
        i.read_message(&m2).unwrap();
        wire.clear();
        i.write_frame(&mut wire).unwrap();
        let mut buf = BytesMut::from(&wire[..]);
        let m3 = frame::next_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(m3.len(), XX_MSG3_LEN);
        r.read_message(&m3).unwrap();
        let mut ti = i.into_transport().unwrap();
        let mut tr = r.into_transport().unwrap();
        assert_eq!(ti.handshake_hash, tr.handshake_hash);
        let big = vec![0xabu8; MAX_PLAINTEXT];
        let mut out = vec![];
        ti.encrypt_frame(&big, &mut out).unwrap();
        let mut buf = BytesMut::from(&out[..]);
        let f = frame::next_frame(&mut buf, frame::MAX_TRANSPORT_FRAME)
            .unwrap()
            .unwrap();
        assert_eq!(&tr.open_frame(f).unwrap()[..], &big[..]);
        // A flipped bit is refused.
        let mut out = vec![];
        ti.encrypt_frame(b"x", &mut out).unwrap();
        let last = out.len() - 1;
        out[last] ^= 1;
        let mut buf = BytesMut::from(&out[..]);
        let f = frame::next_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(
            tr.open_frame(f).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
    }

    /// Our in-place ChaCha20-Poly1305 produces exactly snow's transport messages.
    #[test]
    fn in_place_cipher_matches_snow_transport() {
        let params: snow::params::NoiseParams = NOISE_PARAMS.parse().unwrap();
        let (a, b) = (keypair(), keypair());
        let mut i = snow::Builder::new(params.clone())
            .local_private_key(&a.0)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut r = snow::Builder::new(params)
            .local_private_key(&b.0)
            .unwrap()
            .build_responder()
            .unwrap();
        let (mut m, mut p) = ([0u8; 256], [0u8; 256]);
        let n = i.write_message(&[], &mut m).unwrap();
        r.read_message(&m[..n], &mut p).unwrap();
        let n = r.write_message(&[], &mut m).unwrap();
        i.read_message(&m[..n], &mut p).unwrap();
        let n = i.write_message(&[], &mut m).unwrap();
        r.read_message(&m[..n], &mut p).unwrap();
        let (k1, _k2) = i.dangerously_get_raw_split();
        let mut ours = CipherState::new(&k1).unwrap();
        let mut snow_i = i.into_transport_mode().unwrap();
        let mut snow_r = r.into_transport_mode().unwrap();
        for msg in [&b"first"[..], &[0x55u8; 1000][..], b""] {
            let mut expect = vec![0u8; msg.len() + TAG_LEN];
            let n = snow_i.write_message(msg, &mut expect).unwrap();
            let mut got = msg.to_vec();
            let nonce = ours.next_nonce(TransportCipher::ChaChaPoly).unwrap();
            let tag = ours
                .key
                .seal_in_place(TransportCipher::ChaChaPoly, nonce, &mut got)
                .unwrap();
            got.extend_from_slice(&tag);
            assert_eq!(got, expect[..n]);
            let mut back = vec![0u8; msg.len()];
            assert_eq!(snow_r.read_message(&got, &mut back).unwrap(), msg.len());
        }
    }

    /// Our REKEY is snow's `rekey_outgoing` / `rekey_incoming` (snow's own ChaChaPoly,
    /// RustCrypto's: an implementation independent of ring): after each of several
    /// rekeys, at nonces that keep counting, our frames are byte for byte snow's and snow
    /// opens them; `rekey_key` on the raw Split() key gives the same key.
    #[test]
    fn rekey_matches_snow_transport() {
        let params: snow::params::NoiseParams = NOISE_PARAMS.parse().unwrap();
        let (a, b) = (keypair(), keypair());
        let mut i = snow::Builder::new(params.clone())
            .local_private_key(&a.0)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut r = snow::Builder::new(params)
            .local_private_key(&b.0)
            .unwrap()
            .build_responder()
            .unwrap();
        let (mut m, mut p) = ([0u8; 256], [0u8; 256]);
        let n = i.write_message(&[], &mut m).unwrap();
        r.read_message(&m[..n], &mut p).unwrap();
        let n = r.write_message(&[], &mut m).unwrap();
        i.read_message(&m[..n], &mut p).unwrap();
        let n = i.write_message(&[], &mut m).unwrap();
        r.read_message(&m[..n], &mut p).unwrap();
        let (k1, _k2) = i.dangerously_get_raw_split();
        let mut ours = CipherState::new(&k1).unwrap();
        let mut raw = k1;
        let mut snow_i = i.into_transport_mode().unwrap();
        let mut snow_r = r.into_transport_mode().unwrap();
        for round in 0..5u8 {
            for msg in [&[round; 3][..], &[0x55u8; 1000][..]] {
                let mut expect = vec![0u8; msg.len() + TAG_LEN];
                let n = snow_i.write_message(msg, &mut expect).unwrap();
                let mut got = msg.to_vec();
                let nonce = ours.next_nonce(TransportCipher::ChaChaPoly).unwrap();
                let tag = ours
                    .key
                    .seal_in_place(TransportCipher::ChaChaPoly, nonce, &mut got)
                    .unwrap();
                got.extend_from_slice(&tag);
                assert_eq!(got, expect[..n], "round {round}");
                // The same frame from the raw key at this counter.
                let framed =
                    seal_frame_with(TransportCipher::ChaChaPoly, &raw, ours.nonce - 1, msg)
                        .unwrap();
                let mut buf = BytesMut::from(&framed[..]);
                let body = frame::next_frame(&mut buf, frame::MAX_TRANSPORT_FRAME)
                    .unwrap()
                    .unwrap();
                assert_eq!(&body[..], &got[..]);
                let mut back = vec![0u8; msg.len()];
                assert_eq!(snow_r.read_message(&got, &mut back).unwrap(), msg.len());
            }
            snow_i.rekey_outgoing();
            snow_r.rekey_incoming();
            ours.rekey(TransportCipher::ChaChaPoly).unwrap();
            let next = rekey_key(TransportCipher::ChaChaPoly, &raw).unwrap();
            assert_ne!(next, raw);
            raw = next;
        }
        assert_eq!(ours.nonce, 10, "rekey leaves the nonce counter alone");
    }

    fn random_key() -> [u8; 32] {
        let mut k = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut k);
        k
    }

    /// A transport straight from two keys, both directions at counter 0 under ChaChaPoly.
    fn transport(send: &[u8; 32], recv: &[u8; 32]) -> NoiseTransport {
        NoiseTransport {
            send: CipherState::new(send).unwrap(),
            recv: CipherState::new(recv).unwrap(),
            send_cipher: TransportCipher::ChaChaPoly,
            recv_cipher: TransportCipher::ChaChaPoly,
            send_switch_after_hello: false,
            handshake_hash: [0; 32],
            remote_static: [0; 32],
        }
    }

    /// Opens one framed transport message.
    fn open(t: &mut NoiseTransport, w: &[u8]) -> Result<Vec<u8>, Error> {
        let mut buf = BytesMut::from(w);
        let f = frame::next_frame(&mut buf, frame::MAX_TRANSPORT_FRAME)
            .unwrap()
            .unwrap();
        t.open_frame(f).map(|p| p.to_vec())
    }

    /// Seals one transport message.
    fn seal(t: &mut NoiseTransport, m: &[u8]) -> Vec<u8> {
        let mut out = vec![];
        t.encrypt_frame(m, &mut out).unwrap();
        out
    }

    /// `from` seals `msg` as the frame at counter `n` under `key` and `cipher` (what
    /// [`seal_frame_with`] makes of them), and `to` opens it.
    fn sent_as(
        from: &mut NoiseTransport,
        to: &mut NoiseTransport,
        (cipher, key, n): (TransportCipher, &[u8; 32], u64),
        msg: &[u8],
    ) -> Vec<u8> {
        let got = seal(from, msg);
        assert_eq!(
            got,
            seal_frame_with(cipher, key, n, msg).unwrap(),
            "frame {n}"
        );
        assert_eq!(open(to, &got).unwrap(), msg);
        got
    }

    /// A frame sealed at counter `n` under `key` and `cipher` (a peer on another key or
    /// cipher) fails authentication at `t`.
    fn refused(t: &mut NoiseTransport, (cipher, key, n): (TransportCipher, &[u8; 32], u64)) {
        let stale = seal_frame_with(cipher, key, n, b"old").unwrap();
        let e = open(t, &stale).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidMessage, "{e}");
    }

    /// After the receiver rekeys, a frame sealed under the old key (at the counter the
    /// receiver expects next, so only the key differs) fails authentication with
    /// InvalidMessage and delivers nothing; the frame under the new key opens.
    #[test]
    fn old_key_frame_fails_after_rekey() {
        let (k1, k2) = (random_key(), random_key());
        let mut ti = transport(&k1, &k2);
        let mut tr = transport(&k2, &k1);
        let chacha = TransportCipher::ChaChaPoly;
        sent_as(&mut ti, &mut tr, (chacha, &k1, 0), b"rekey");
        assert_eq!(ti.sent_since_rekey(), (1, 5 + TAG_LEN as u64));
        ti.rekey_send().unwrap();
        tr.rekey_recv().unwrap();
        assert_eq!(ti.sent_since_rekey(), (0, 0));
        let new_key = rekey_key(chacha, &k1).unwrap();
        sent_as(&mut ti, &mut tr, (chacha, &new_key, 1), b"new");
        refused(&mut tr, (chacha, &k1, 2));
    }

    /// The switch to AES-256-GCM (docs/PROTOCOL.md §7.2), against RustCrypto's
    /// `chacha20poly1305` and `aes-gcm` used directly (independent of ring): after a HELLO
    /// under ChaChaPoly at nonce 0, each direction's key is REKEY(k) (32 zero bytes sealed
    /// under k at nonce 2^64-1, tag dropped) and its frames are AES-256-GCM with the
    /// big-endian nonce at counters 1, 2, …; a later REKEY is AESGCM's REKEY; a frame
    /// still sealed under ChaChaPoly fails authentication; switching twice changes nothing.
    #[test]
    fn aes_gcm_switch_matches_rustcrypto() {
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let (k1, k2) = (random_key(), random_key());
        let (mut ti, mut tr) = (transport(&k1, &k2), transport(&k2, &k1));
        // The HELLOs, under ChaChaPoly.
        let hello = seal(&mut ti, b"hello");
        assert_eq!(open(&mut tr, &hello).unwrap(), b"hello");
        let hello = seal(&mut tr, b"hello too");
        assert_eq!(open(&mut ti, &hello).unwrap(), b"hello too");
        assert_eq!(ti.cipher(), TransportCipher::ChaChaPoly);
        ti.switch_to_aes_gcm().unwrap();
        tr.switch_to_aes_gcm().unwrap();
        tr.switch_to_aes_gcm().unwrap();
        assert_eq!(ti.cipher(), TransportCipher::AesGcm);
        // REKEY(k1) by RustCrypto's ChaCha20-Poly1305.
        let chacha = chacha20poly1305::ChaCha20Poly1305::new((&k1).into());
        let mut aes_key = [0u8; 32];
        let mut maxnonce = [0u8; 12];
        maxnonce[4..].copy_from_slice(&[0xff; 8]);
        chacha
            .encrypt_in_place_detached((&maxnonce).into(), &[], &mut aes_key)
            .unwrap();
        assert_eq!(
            aes_key,
            rekey_key(TransportCipher::ChaChaPoly, &k1).unwrap()
        );
        let aes = aes_gcm::Aes256Gcm::new((&aes_key).into());
        for (n, msg) in [(1u64, &b"auth"[..]), (2, &[0x5a; 40000][..]), (3, b"")] {
            let mut expect = msg.to_vec();
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&n.to_be_bytes());
            let tag = aes
                .encrypt_in_place_detached((&nonce).into(), &[], &mut expect)
                .unwrap();
            expect.extend_from_slice(&tag);
            let mut framed = vec![];
            frame::write_frame(&mut framed, &expect);
            let got = sent_as(
                &mut ti,
                &mut tr,
                (TransportCipher::AesGcm, &aes_key, n),
                msg,
            );
            assert_eq!(got, framed, "frame {n}");
        }
        // The other direction switched too.
        let back = seal(&mut tr, b"back");
        assert_eq!(open(&mut ti, &back).unwrap(), b"back");
        // REKEY under AES-256-GCM: 32 zero bytes at nonce 2^64-1 (same 12 bytes in either
        // encoding), by RustCrypto.
        let mut next = [0u8; 32];
        aes.encrypt_in_place_detached((&maxnonce).into(), &[], &mut next)
            .unwrap();
        assert_eq!(next, rekey_key(TransportCipher::AesGcm, &aes_key).unwrap());
        ti.rekey_send().unwrap();
        tr.rekey_recv().unwrap();
        sent_as(
            &mut ti,
            &mut tr,
            (TransportCipher::AesGcm, &next, 4),
            b"after",
        );
        // A peer that did not switch: its ChaChaPoly frame fails authentication.
        refused(&mut ti, (TransportCipher::ChaChaPoly, &k2, 2));
    }

    fn h32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// What the previous implementation computed (curve25519-dalek, like snow's `Dh25519`).
    fn dalek(scalar: &[u8; 32], point: &[u8; 32]) -> [u8; 32] {
        MontgomeryPoint(*point).mul_clamped(*scalar).to_bytes()
    }

    /// u-coordinates whose X25519 result is all zeros for every (clamped) scalar: the
    /// eight-torsion points, 0 and 1, their non-canonical encodings (u + p where that is
    /// below 2^255) and all of these with the ignored top bit set.
    fn low_order_points() -> Vec<[u8; 32]> {
        let mut points: Vec<[u8; 32]> = curve25519_dalek::constants::EIGHT_TORSION
            .iter()
            .map(|p| p.to_montgomery().to_bytes())
            .collect();
        points.push([0; 32]);
        let mut one = [0u8; 32];
        one[0] = 1;
        points.push(one);
        // p - 1 (order 2), p (= 0) and p + 1 (= 1).
        for low in [0xec, 0xed, 0xee] {
            let mut u = [0xffu8; 32];
            u[0] = low;
            u[31] = 0x7f;
            points.push(u);
        }
        for u in points.clone() {
            let mut top = u;
            top[31] |= 0x80;
            points.push(top);
        }
        points.sort();
        points.dedup();
        points
    }

    /// AWS-LC's X25519 gives exactly curve25519-dalek's results (RFC 7748 §5.2 and §6.1
    /// vectors, random scalars and random, non-canonical and top-bit-set u-coordinates).
    #[test]
    fn x25519_matches_dalek_and_rfc7748() {
        // RFC 7748 §5.2.
        for (k, u, out) in [
            (
                "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
                "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
            ),
            (
                "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
                "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
                "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
            ),
        ] {
            let (k, u, out) = (h32(k), h32(u), h32(out));
            assert_eq!(*x25519(&k, &u).unwrap(), out);
            assert_eq!(dalek(&k, &u), out);
        }
        // RFC 7748 §5.2, iterated: k = u = 9, then (k, u) = (X25519(k, u), k).
        let (mut k, mut u) = ([0u8; 32], [0u8; 32]);
        k[0] = 9;
        u[0] = 9;
        for i in 1..=1000 {
            let next = *x25519(&k, &u).unwrap();
            assert_eq!(next, dalek(&k, &u));
            (k, u) = (next, k);
            if i == 1 {
                let one = "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079";
                assert_eq!(k, h32(one));
            }
        }
        let thousand = "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51";
        assert_eq!(k, h32(thousand));
        // RFC 7748 §6.1.
        let a = h32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let a_pub = h32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let b = h32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let b_pub = h32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = h32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(x25519_base(&a), a_pub);
        assert_eq!(x25519_base(&b), b_pub);
        assert_eq!(*x25519(&a, &b_pub).unwrap(), shared);
        assert_eq!(*x25519(&b, &a_pub).unwrap(), shared);
        // Random scalars (unclamped bytes) and u-coordinates: canonical points, random
        // bytes (top bit set half the time) and non-canonical encodings u + p.
        let mut rng = rand::thread_rng();
        for i in 0..2000 {
            let (k, _) = keypair();
            let (other, point) = keypair();
            assert_eq!(
                x25519_base(&k),
                MontgomeryPoint::mul_base_clamped(k).to_bytes()
            );
            assert_eq!(*x25519(&k, &point).unwrap(), dalek(&k, &point));
            assert_eq!(
                *x25519(&k, &point).unwrap(),
                *x25519(&other, &x25519_base(&k)).unwrap()
            );
            let mut bytes = [0u8; 32];
            rand::Rng::fill(&mut rng, &mut bytes);
            if i % 2 == 0 {
                // A non-canonical encoding: p + small, with or without the top bit.
                bytes[1..31].fill(0xff);
                bytes[0] = 0xed + (bytes[0] % 0x13);
                bytes[31] = 0x7f | (bytes[31] & 0x80);
            }
            let expect = dalek(&k, &bytes);
            match x25519(&k, &bytes) {
                Some(got) => assert_eq!(*got, expect, "u = {}", hex::encode(bytes)),
                None => assert_eq!(expect, [0; 32], "u = {}", hex::encode(bytes)),
            }
        }
        // Low-order points: all zeros from dalek, refused here.
        for u in low_order_points() {
            let (k, _) = keypair();
            assert_eq!(dalek(&k, &u), [0; 32], "u = {}", hex::encode(u));
            assert!(x25519(&k, &u).is_none(), "u = {}", hex::encode(u));
        }
    }

    /// A low-order ephemeral key from the peer (all-zero DH result) fails the handshake
    /// with HandshakeFailed, on either side, and never panics.
    #[test]
    fn low_order_peer_keys_fail_the_handshake() {
        let first = |wire: &[u8]| {
            let mut buf = BytesMut::from(wire);
            frame::next_frame(&mut buf, 1024).unwrap().unwrap().to_vec()
        };
        let points = low_order_points();
        assert!(points.len() >= 14);
        for u in points {
            // Responder: message 1 is the initiator's ephemeral key; `ee` fails when the
            // responder writes message 2.
            let (b, i_key) = (keypair(), keypair());
            let mut r = NoiseHandshake::new(false, &b.0, &b.1, None).unwrap();
            r.read_message(&u).unwrap();
            let mut wire = vec![];
            let err = r.write_frame(&mut wire).unwrap_err();
            assert_eq!(err.code, ErrorCode::HandshakeFailed, "{err}");
            assert!(wire.is_empty());
            // Initiator: message 2 whose ephemeral key is low order; `ee` fails on read.
            let mut i = NoiseHandshake::new(true, &i_key.0, &i_key.1, None).unwrap();
            let mut r = NoiseHandshake::new(false, &b.0, &b.1, None).unwrap();
            let mut wire = vec![];
            i.write_frame(&mut wire).unwrap();
            r.read_message(&first(&wire)).unwrap();
            wire.clear();
            r.write_frame(&mut wire).unwrap();
            let mut m2 = first(&wire);
            m2[..32].copy_from_slice(&u);
            let err = i.read_message(&m2).unwrap_err();
            assert_eq!(err.code, ErrorCode::HandshakeFailed, "{err}");
        }
    }
}
