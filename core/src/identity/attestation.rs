//! NodeKeyAttestation v1: a wallet's signed statement that a node key speaks for it.

use rand::RngCore;

use super::node_key::{ed25519_to_x25519_public, NodePublicKey};
use super::principal::{NetworkFilter, Principal};
use super::signed::{self, auth_invalid, Fields, LowerHex};
use super::signer::{verify_principal_signature, SignRequest, SignatureForm, WalletSigner};
use crate::error::{Error, ErrorCode, Result};
use crate::wire::cbor::{self, Value};

/// A decoded or issued attestation. See `docs/PROTOCOL.md (Part II)` for the byte format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeKeyAttestation {
    pub v: u64,
    pub principal: Principal,
    pub node_pubkey: [u8; 32],
    pub issued_at: i64,
    pub expires_at: i64,
    pub nonce: Vec<u8>,
    pub form: SignatureForm,
    pub sig: Vec<u8>,
}

impl NodeKeyAttestation {
    pub const DOMAIN: &'static str = "snap2p-nodekey-attestation-v1";
    pub const DEFAULT_TTL_SECS: i64 = 86_400;
    /// Title line of [`Self::message_text`].
    pub const MESSAGE_TITLE: &'static str = "snap2p node key attestation";

    /// Issues an attestation for `node_pubkey` valid from `now` for `ttl_secs`, with a
    /// random 32-byte nonce, signed in the signer's [`WalletSigner::signature_form`].
    pub async fn issue(
        signer: &dyn WalletSigner,
        node_pubkey: [u8; 32],
        now: i64,
        ttl_secs: i64,
    ) -> Result<Self> {
        let mut nonce = vec![0u8; signed::ISSUED_NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        Self::issue_with_nonce(signer, node_pubkey, now, ttl_secs, nonce).await
    }

    /// [`Self::issue`] with a caller-chosen nonce (test vectors, deterministic replays).
    pub async fn issue_with_nonce(
        signer: &dyn WalletSigner,
        node_pubkey: [u8; 32],
        now: i64,
        ttl_secs: i64,
        nonce: Vec<u8>,
    ) -> Result<Self> {
        let mut att = Self::unsigned(
            signer.principal(),
            signer.signature_form(),
            node_pubkey,
            now,
            ttl_secs,
            nonce,
        )?;
        att.sign(signer).await?;
        Ok(att)
    }

    /// The first half of [`Self::issue_with_nonce`] for a host whose signer cannot be a
    /// [`WalletSigner`] (a browser wallet answers with a JavaScript promise, which is not
    /// `Send`): the checked fields without a signature. The host asks its signer for
    /// [`Self::sign_request`] and hands the answer to [`Self::attach_signature`].
    pub fn unsigned(
        principal: Principal,
        form: SignatureForm,
        node_pubkey: [u8; 32],
        now: i64,
        ttl_secs: i64,
        nonce: Vec<u8>,
    ) -> Result<Self> {
        if ttl_secs <= 0 {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "ttl must be positive",
            ));
        }
        if ed25519_to_x25519_public(&node_pubkey).is_none() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "node public key is not a valid ed25519 point",
            ));
        }
        let expires_at = now.checked_add(ttl_secs).unwrap_or(i64::MAX);
        signed::check_time_range("attestation", now, expires_at)
            .map_err(|e| Error::new(ErrorCode::InvalidArgument, e.message))?;
        Ok(NodeKeyAttestation {
            v: 1,
            principal,
            node_pubkey,
            issued_at: now,
            expires_at,
            nonce,
            form,
            sig: Vec::new(),
        })
    }

    /// What the wallet is asked to sign for this attestation, in `self.form`.
    pub fn sign_request(&self) -> SignRequest {
        signed::sign_request(self.form, &self.signing_bytes(), &self.message_text())
    }

    /// Sets the signature a host signer returned for [`Self::sign_request`], checked as
    /// [`Self::sign`] checks it (`ERR_AUTH_INVALID` when it is not the principal's).
    pub fn attach_signature(&mut self, sig: Vec<u8>) -> Result<()> {
        self.sig = signed::check_signature(
            &self.principal,
            self.form,
            &self.signing_bytes(),
            &self.message_text(),
            &sig,
        )?;
        Ok(())
    }

    /// (Re)signs the current fields with `signer`, in `self.form`.
    pub async fn sign(&mut self, signer: &dyn WalletSigner) -> Result<()> {
        let bytes = self.signing_bytes();
        let text = self.message_text();
        self.sig =
            signed::request_signature(signer, &self.principal, self.form, &bytes, &text).await?;
        Ok(())
    }

    fn to_cbor(&self, with_sig: bool) -> Vec<u8> {
        let p = self.principal.text();
        let mut npk = [0u8; 64];
        // Exactly twice the key's length: this cannot fail.
        let _ = hex::encode_to_slice(self.node_pubkey, &mut npk);
        let npk = std::str::from_utf8(&npk).unwrap_or_default();
        let mut entries = vec![("npk", Value::Text(npk))];
        signed::common_entries(
            &mut entries,
            Self::DOMAIN,
            p.as_str(),
            self.v,
            self.issued_at,
            self.expires_at,
            &self.nonce,
            self.form,
            with_sig.then_some(self.sig.as_slice()),
        );
        // to_vec sorts keys byte-wise, the canonical order.
        cbor::to_vec(&Value::Map(entries))
    }

    /// Canonical CBOR of every field except `sig`. For form Digest this is exactly the TS
    /// reference's 7-entry map, so its signatures verify here and ours there.
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.to_cbor(false)
    }

    /// The text a wallet signs in form StacksMessage (lines joined by `\n`, no trailing
    /// newline). Deterministic; every signed field appears.
    pub fn message_text(&self) -> String {
        signed::message_text(
            Self::MESSAGE_TITLE,
            &self.principal,
            &[&format_args!("node key: {}", LowerHex(&self.node_pubkey))],
            self.issued_at,
            self.expires_at,
            &self.nonce,
            self.v,
            Self::DOMAIN,
        )
    }

    /// The 32-byte hash the wallet key signed.
    pub fn signed_digest(&self) -> [u8; 32] {
        signed::signed_digest(self.form, || self.signing_bytes(), || self.message_text())
    }

    /// Wire form: the signing map plus `sig`.
    pub fn encode(&self) -> Vec<u8> {
        self.to_cbor(true)
    }

    /// Decodes the wire form. Unknown keys are ignored; every failure is
    /// `ERR_AUTH_INVALID`. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let f = Fields::decode("attestation", bytes)?;
        f.domain(Self::DOMAIN)?;
        let npk = f.text("npk")?;
        let node_pubkey = decode_lower_hex_32(npk)
            .ok_or_else(|| auth_invalid("attestation: npk is not 64 lowercase hex characters"))?;
        Ok(NodeKeyAttestation {
            v: f.uint("v")?,
            principal: f.principal()?,
            node_pubkey,
            issued_at: f.int("ts")?,
            expires_at: f.int("exp")?,
            nonce: f.bytes("nonce")?.to_vec(),
            form: f.form()?,
            sig: f.bytes("sig")?.to_vec(),
        })
    }

    /// Full verification at time `now` (unix seconds): version, nonce length, validity
    /// window with ±300 s skew (`ERR_AUTH_EXPIRED`), single-sig principal on an accepted
    /// network, a valid node key, and a low-S signature that recovers to the principal
    /// (`ERR_AUTH_INVALID`).
    pub fn verify(&self, now: i64, networks: NetworkFilter) -> Result<()> {
        self.verify_node_key(now, networks).map(drop)
    }

    /// [`Self::verify`], giving the node key in the forms a handshake uses: it is decoded
    /// once, for the validity check and for the caller (the attestation cache).
    pub fn verify_node_key(&self, now: i64, networks: NetworkFilter) -> Result<NodePublicKey> {
        signed::check_common(
            "attestation",
            self.v,
            &self.nonce,
            self.issued_at,
            self.expires_at,
            &self.principal,
            now,
            networks,
        )?;
        let Some(node_key) = NodePublicKey::new(&self.node_pubkey) else {
            return Err(auth_invalid(
                "attestation: node key is not a valid ed25519 point",
            ));
        };
        verify_principal_signature(&self.signed_digest(), &self.sig, &self.principal)?;
        Ok(node_key)
    }

    /// Decode then verify.
    pub fn decode_and_verify(bytes: &[u8], now: i64, networks: NetworkFilter) -> Result<Self> {
        let att = Self::decode(bytes)?;
        att.verify(now, networks)?;
        Ok(att)
    }
}

fn decode_lower_hex_32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}
