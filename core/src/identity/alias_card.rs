//! AliasCard v1: a self-asserted, signed handle and display name, and a book keeping the
//! current card of each principal.

use std::collections::HashMap;

use rand::RngCore;
use unicode_normalization::UnicodeNormalization;

use super::principal::{NetworkFilter, Principal};
use super::signed::{self, auth_invalid, Fields};
use super::signer::{verify_principal_signature, SignRequest, SignatureForm, WalletSigner};
use crate::error::{Error, ErrorCode, Result};
use crate::wire::cbor::{self, Value};

/// Longest alias, in UTF-8 bytes, after normalisation.
pub const MAX_ALIAS_BYTES: usize = 64;
/// Longest display name, in UTF-8 bytes.
pub const MAX_DISPLAY_NAME_BYTES: usize = 128;

/// A decoded or issued alias card. See `docs/PROTOCOL.md (Part II)` for the byte format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasCard {
    pub v: u64,
    pub principal: Principal,
    pub alias: String,
    pub display_name: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub nonce: Vec<u8>,
    pub form: SignatureForm,
    pub sig: Vec<u8>,
}

/// Characters that would let a name forge a line of the signed text or reorder what a
/// user sees: controls, line/paragraph separators, bidi controls, BOM.
pub(crate) fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        )
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArgument, msg)
}

/// Normalises an alias: NFKC, lowercase, NFKC again (lowercasing can denormalise), reject
/// the forbidden characters listed in `docs/PROTOCOL.md (Part II)` (controls, separators, bidi
/// controls, BOM), trim Unicode White_Space; then reject an empty result or more than 64
/// bytes. Rejecting before trimming makes the trim set irrelevant to the outcome, so
/// JavaScript's `trim()` gives the same result.
pub fn normalize_alias(alias: &str) -> Result<String> {
    let lowered: String = alias.nfkc().collect::<String>().to_lowercase();
    let normalized: String = lowered.nfkc().collect();
    if let Some(c) = normalized.chars().find(|&c| is_forbidden(c)) {
        return Err(invalid(format!("alias contains forbidden character {c:?}")));
    }
    let trimmed = normalized.trim();
    if trimmed.is_empty() {
        return Err(invalid("alias is empty"));
    }
    if trimmed.len() > MAX_ALIAS_BYTES {
        return Err(invalid(format!(
            "alias is {} bytes, at most {MAX_ALIAS_BYTES} allowed",
            trimmed.len()
        )));
    }
    Ok(trimmed.to_owned())
}

/// Checks a display name: any UTF-8 (emoji welcome) up to 128 bytes, without the
/// forbidden characters. Empty is allowed (no display name).
pub fn validate_display_name(name: &str) -> Result<()> {
    if name.len() > MAX_DISPLAY_NAME_BYTES {
        return Err(invalid(format!(
            "display name is {} bytes, at most {MAX_DISPLAY_NAME_BYTES} allowed",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|&c| is_forbidden(c)) {
        return Err(invalid(format!(
            "display name contains forbidden character {c:?}"
        )));
    }
    Ok(())
}

impl AliasCard {
    pub const DOMAIN: &'static str = "snap2p-aliascard-v1";
    pub const DEFAULT_TTL_SECS: i64 = 7 * 86_400;
    /// Title line of [`Self::message_text`].
    pub const MESSAGE_TITLE: &'static str = "snap2p alias card";

    /// Issues a card; `alias` is normalised with [`normalize_alias`] first.
    pub async fn issue(
        signer: &dyn WalletSigner,
        alias: &str,
        display_name: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<Self> {
        let mut nonce = vec![0u8; signed::ISSUED_NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        Self::issue_with_nonce(signer, alias, display_name, now, ttl_secs, nonce).await
    }

    /// [`Self::issue`] with a caller-chosen nonce.
    pub async fn issue_with_nonce(
        signer: &dyn WalletSigner,
        alias: &str,
        display_name: &str,
        now: i64,
        ttl_secs: i64,
        nonce: Vec<u8>,
    ) -> Result<Self> {
        let mut card = Self::unsigned(
            signer.principal(),
            signer.signature_form(),
            alias,
            display_name,
            now,
            ttl_secs,
            nonce,
        )?;
        card.sign(signer).await?;
        Ok(card)
    }

    /// The first half of [`Self::issue_with_nonce`] for a host whose signer cannot be a
    /// [`WalletSigner`] (a browser wallet answers with a JavaScript promise): the checked
    /// fields without a signature. The host asks its signer for [`Self::sign_request`] and
    /// hands the answer to [`Self::attach_signature`], as for
    /// [`super::NodeKeyAttestation::unsigned`].
    pub fn unsigned(
        principal: Principal,
        form: SignatureForm,
        alias: &str,
        display_name: &str,
        now: i64,
        ttl_secs: i64,
        nonce: Vec<u8>,
    ) -> Result<Self> {
        if ttl_secs <= 0 {
            return Err(invalid("ttl must be positive"));
        }
        let alias = normalize_alias(alias)?;
        validate_display_name(display_name)?;
        let expires_at = now.checked_add(ttl_secs).unwrap_or(i64::MAX);
        signed::check_time_range("alias card", now, expires_at).map_err(|e| invalid(e.message))?;
        Ok(AliasCard {
            v: 1,
            principal,
            alias,
            display_name: display_name.to_owned(),
            issued_at: now,
            expires_at,
            nonce,
            form,
            sig: Vec::new(),
        })
    }

    /// What the wallet is asked to sign for this card, in `self.form`.
    pub fn sign_request(&self) -> SignRequest {
        signed::sign_request(self.form, &self.signing_bytes(), &self.message_text())
    }

    /// Sets the signature a host signer returned for [`Self::sign_request`], checked and
    /// normalised as [`Self::sign`] does (`ERR_AUTH_INVALID` when it is not the
    /// principal's).
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
        let p = self.principal.to_string();
        let mut entries = vec![
            ("a", Value::Text(&self.alias)),
            ("dn", Value::Text(&self.display_name)),
        ];
        signed::common_entries(
            &mut entries,
            Self::DOMAIN,
            &p,
            self.v,
            self.issued_at,
            self.expires_at,
            &self.nonce,
            self.form,
            with_sig.then_some(self.sig.as_slice()),
        );
        cbor::to_vec(&Value::Map(entries))
    }

    /// Canonical CBOR of every field except `sig`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.to_cbor(false)
    }

    /// The text a wallet signs in form StacksMessage.
    pub fn message_text(&self) -> String {
        signed::message_text(
            Self::MESSAGE_TITLE,
            &self.principal,
            &[
                &format_args!("alias: {}", self.alias),
                &format_args!("display name: {}", self.display_name),
            ],
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

    pub fn encode(&self) -> Vec<u8> {
        self.to_cbor(true)
    }

    /// Decodes the wire form; unknown keys ignored; failures are `ERR_AUTH_INVALID`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let f = Fields::decode("alias card", bytes)?;
        f.domain(Self::DOMAIN)?;
        Ok(AliasCard {
            v: f.uint("v")?,
            principal: f.principal()?,
            alias: f.text("a")?.to_owned(),
            display_name: f.text("dn")?.to_owned(),
            issued_at: f.int("ts")?,
            expires_at: f.int("exp")?,
            nonce: f.bytes("nonce")?.to_vec(),
            form: f.form()?,
            sig: f.bytes("sig")?.to_vec(),
        })
    }

    /// Verification as for attestations, plus: the alias must already be normalised and
    /// the display name valid (`ERR_AUTH_INVALID`).
    pub fn verify(&self, now: i64, networks: NetworkFilter) -> Result<()> {
        signed::check_common(
            "alias card",
            self.v,
            &self.nonce,
            self.issued_at,
            self.expires_at,
            &self.principal,
            now,
            networks,
        )?;
        match normalize_alias(&self.alias) {
            Ok(n) if n == self.alias => {}
            _ => return Err(auth_invalid("alias card: alias is not normalised")),
        }
        validate_display_name(&self.display_name)
            .map_err(|e| auth_invalid(format!("alias card: {}", e.message)))?;
        verify_principal_signature(&self.signed_digest(), &self.sig, &self.principal)
    }

    pub fn decode_and_verify(bytes: &[u8], now: i64, networks: NetworkFilter) -> Result<Self> {
        let card = Self::decode(bytes)?;
        card.verify(now, networks)?;
        Ok(card)
    }

    /// Whether the card may be shown as current at `now`: no skew grace on expiry, since
    /// expired cards must never be displayed as current (spec §6.2).
    pub fn is_current(&self, now: i64) -> bool {
        self.issued_at <= now.saturating_add(signed::CLOCK_SKEW_SECS) && self.expires_at > now
    }
}

/// The latest valid card of each principal (latest `issued_at` wins).
#[derive(Clone, Debug, Default)]
pub struct AliasBook {
    networks: NetworkFilter,
    cards: HashMap<Principal, AliasCard>,
}

impl AliasBook {
    pub fn new() -> Self {
        Self::with_networks(NetworkFilter::ANY)
    }

    pub fn with_networks(networks: NetworkFilter) -> Self {
        AliasBook {
            networks,
            cards: HashMap::new(),
        }
    }

    /// Verifies and stores `card`. `Ok(true)` if it became the principal's card,
    /// `Ok(false)` if a card issued at the same time or later is already held.
    pub fn insert(&mut self, card: AliasCard, now: i64) -> Result<bool> {
        card.verify(now, self.networks)?;
        if let Some(existing) = self.cards.get(&card.principal) {
            if existing.issued_at >= card.issued_at {
                return Ok(false);
            }
        }
        self.cards.insert(card.principal.clone(), card);
        Ok(true)
    }

    /// The principal's card if it is current at `now`.
    pub fn current(&self, principal: &Principal, now: i64) -> Option<AliasCard> {
        self.cards
            .get(principal)
            .filter(|c| c.is_current(now))
            .cloned()
    }

    /// Drops expired cards.
    pub fn prune(&mut self, now: i64) {
        self.cards.retain(|_, c| c.expires_at > now);
    }

    pub fn len(&self) -> usize {
        self.cards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cards.is_empty()
    }
}
