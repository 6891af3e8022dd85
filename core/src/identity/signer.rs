//! The host-side wallet signer and secp256k1 signature verification.
//!
//! A phone or browser wallet signs for the user but never hands out its key, and most of
//! them only expose "sign message" (the Stacks message prefix is applied by the wallet).
//! [`SignatureForm`] records on the wire which of the two inputs was signed so every peer
//! can verify either.

use k256::ecdsa::{RecoveryId, Signature};
use sha2::{Digest, Sha256};

use super::principal::{Network, Principal};
use crate::error::{Error, ErrorCode, Result};

/// The Stacks wallet message prefix: `0x17` (its length) then the text.
pub const STACKS_MESSAGE_PREFIX: &[u8] = b"\x17Stacks Signed Message:\n";

/// Length of a recoverable signature r ‖ s ‖ v.
pub const RECOVERABLE_SIGNATURE_LEN: usize = 65;

/// What a wallet signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureForm {
    /// secp256k1 over SHA-256(canonical CBOR bytes), no prefix (the TS reference's form).
    Digest = 0,
    /// A wallet "sign message" over a human-readable text, Stacks message prefix applied.
    StacksMessage = 1,
}

impl SignatureForm {
    /// The `sf` wire value.
    pub fn as_u64(self) -> u64 {
        self as u64
    }

    pub fn from_u64(n: u64) -> Option<SignatureForm> {
        match n {
            0 => Some(SignatureForm::Digest),
            1 => Some(SignatureForm::StacksMessage),
            _ => None,
        }
    }

    /// Its name in the Node and Python APIs: `"digest"` or `"message"` (parsed back by
    /// `str::parse`), so no binding spells the names or their error on its own.
    pub fn name(self) -> &'static str {
        match self {
            SignatureForm::Digest => "digest",
            SignatureForm::StacksMessage => "message",
        }
    }
}

impl std::str::FromStr for SignatureForm {
    type Err = Error;

    /// `"digest"` or `"message"` ([`SignatureForm::name`]); anything else is
    /// ERR_INVALID_ARGUMENT.
    fn from_str(s: &str) -> Result<SignatureForm> {
        [SignatureForm::Digest, SignatureForm::StacksMessage]
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!("a signature form is \"digest\" or \"message\", not {s:?}"),
                )
            })
    }
}

/// What the signer is asked to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignRequest {
    /// Sign exactly this 32-byte hash.
    Digest([u8; 32]),
    /// Sign this text as a wallet message (the signer applies the Stacks prefix).
    Message(String),
}

/// A wallet that can sign for one Stacks principal. Implemented by [`super::LocalWallet`]
/// and by host applications wrapping an external wallet.
#[async_trait::async_trait]
pub trait WalletSigner: Send + Sync {
    fn principal(&self) -> Principal;

    /// Which form this signer produces for attestations and cards.
    fn signature_form(&self) -> SignatureForm {
        SignatureForm::Digest
    }

    /// Returns a 65-byte recoverable signature r ‖ s ‖ v (v = recovery id 0..=3).
    async fn sign(&self, request: SignRequest) -> Result<Vec<u8>>;
}

/// SHA-256(`0x17 "Stacks Signed Message:\n"` ‖ CompactSize(len) ‖ UTF-8 message).
pub fn stacks_message_hash(msg: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(STACKS_MESSAGE_PREFIX);
    h.update(compact_size(msg.len() as u64));
    h.update(msg.as_bytes());
    h.finalize().into()
}

/// Bitcoin CompactSize length encoding.
fn compact_size(n: u64) -> Vec<u8> {
    if n < 0xfd {
        vec![n as u8]
    } else if n <= 0xffff {
        let mut v = vec![0xfd];
        v.extend_from_slice(&(n as u16).to_le_bytes());
        v
    } else if n <= 0xffff_ffff {
        let mut v = vec![0xfe];
        v.extend_from_slice(&(n as u32).to_le_bytes());
        v
    } else {
        let mut v = vec![0xff];
        v.extend_from_slice(&n.to_le_bytes());
        v
    }
}

fn auth_invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::AuthInvalid, msg)
}

/// Recovers the compressed public key from a 65-byte r ‖ s ‖ v signature over `digest`.
///
/// Rejects: wrong length, v outside 0..=3, r or s zero or not below the group order,
/// high-S (s > n/2; RFC 6979 signers always produce low-S, and accepting both would
/// make signatures malleable), and signatures that do not verify.
pub fn recover_public_key(digest: &[u8; 32], sig65: &[u8]) -> Result<[u8; 33]> {
    if sig65.len() != RECOVERABLE_SIGNATURE_LEN {
        return Err(auth_invalid(format!(
            "signature is {} bytes, expected 65",
            sig65.len()
        )));
    }
    let recid = RecoveryId::from_byte(sig65[64])
        .ok_or_else(|| auth_invalid(format!("invalid recovery id {}", sig65[64])))?;
    let sig = Signature::from_slice(&sig65[..64])
        .map_err(|_| auth_invalid("malformed signature scalars"))?;
    if sig.normalize_s().is_some() {
        return Err(auth_invalid("high-S signature rejected"));
    }
    // Scalars, recovery id and low-S were checked above with k256; the recovery itself
    // runs in libsecp256k1 (feature `native-crypto`), the hot part of verifying a
    // first-contact attestation, or in k256 (`pure-rust` alone).
    #[cfg(feature = "native-crypto")]
    {
        let rid = secp256k1::ecdsa::RecoveryId::from_i32(i32::from(recid.to_byte()))
            .map_err(|_| auth_invalid("invalid recovery id"))?;
        let rsig = secp256k1::ecdsa::RecoverableSignature::from_compact(&sig65[..64], rid)
            .map_err(|_| auth_invalid("malformed signature scalars"))?;
        let pk = secp_context()
            .recover_ecdsa(&secp256k1::Message::from_digest(*digest), &rsig)
            .map_err(|_| auth_invalid("signature does not recover to a public key"))?;
        Ok(pk.serialize())
    }
    #[cfg(not(feature = "native-crypto"))]
    {
        let vk = k256::ecdsa::VerifyingKey::recover_from_prehash(digest, &sig, recid)
            .map_err(|_| auth_invalid("signature does not recover to a public key"))?;
        let mut out = [0u8; 33];
        out.copy_from_slice(vk.to_encoded_point(true).as_bytes());
        Ok(out)
    }
}

#[cfg(feature = "native-crypto")]
fn secp_context() -> &'static secp256k1::Secp256k1<secp256k1::VerifyOnly> {
    static CTX: std::sync::OnceLock<secp256k1::Secp256k1<secp256k1::VerifyOnly>> =
        std::sync::OnceLock::new();
    CTX.get_or_init(secp256k1::Secp256k1::verification_only)
}

/// The k256 recovery (what `recover_public_key` runs without `native-crypto`), kept to
/// cross-check the backend in tests.
#[cfg(test)]
fn recover_public_key_k256(digest: &[u8; 32], sig65: &[u8]) -> Option<[u8; 33]> {
    let recid = RecoveryId::from_byte(sig65[64])?;
    let sig = Signature::from_slice(&sig65[..64]).ok()?;
    let vk = k256::ecdsa::VerifyingKey::recover_from_prehash(digest, &sig, recid).ok()?;
    let mut out = [0u8; 33];
    out.copy_from_slice(vk.to_encoded_point(true).as_bytes());
    Some(out)
}

/// The single-sig principal on `network` whose key made `sig65` over `digest`.
pub fn recover_principal(digest: &[u8; 32], sig65: &[u8], network: Network) -> Result<Principal> {
    let pk = recover_public_key(digest, sig65)?;
    Ok(Principal::from_public_key(&pk, network))
}

/// Checks that `sig65` over `digest` was made by the key behind the single-sig `principal`.
pub fn verify_principal_signature(
    digest: &[u8; 32],
    sig65: &[u8],
    principal: &Principal,
) -> Result<()> {
    if !principal.is_single_sig() {
        return Err(auth_invalid(format!(
            "{principal} is not a single-sig principal; only those can sign"
        )));
    }
    let recovered = recover_principal(digest, sig65, principal.network())?;
    if &recovered != principal {
        return Err(auth_invalid(format!(
            "signature recovers to {recovered}, not {principal}"
        )));
    }
    Ok(())
}

/// The recovery id (0..=3) a wallet's `v` byte stands for: itself, or a bitcoin-style
/// signed-message header (27..=30 for uncompressed keys, 31..=34 for compressed ones, as
/// `stx_signMessage` of some `@stacks/connect` wallets returns it).
fn recovery_id_of(v: u8) -> Option<u8> {
    match v {
        0..=3 => Some(v),
        27..=30 => Some(v - 27),
        31..=34 => Some(v - 31),
        _ => None,
    }
}

/// A wallet's 65-byte recoverable signature of `digest` in the one form snap2p carries on
/// the wire, r ‖ s ‖ v with v in 0..=3 (docs/PROTOCOL.md Part II, "Wallet signatures"),
/// checked to be `principal`'s. Wallets answer `stx_signMessage` as r ‖ s ‖ v or the older
/// v ‖ r ‖ s, with v a recovery id or a bitcoin-style header (27..=34); both layouts are
/// tried (r ‖ s ‖ v first), since a first or last byte can look like either, and the one
/// that recovers the principal wins. Otherwise the r ‖ s ‖ v reading's error
/// (`ERR_AUTH_INVALID`).
pub fn normalize_wallet_signature(
    digest: &[u8; 32],
    sig: &[u8],
    principal: &Principal,
) -> Result<Vec<u8>> {
    if sig.len() != 65 {
        return verify_principal_signature(digest, sig, principal).map(|_| sig.to_vec());
    }
    let mut candidates: Vec<Vec<u8>> = Vec::with_capacity(2);
    if let Some(v) = recovery_id_of(sig[64]) {
        candidates.push([&sig[..64], &[v]].concat());
    }
    if let Some(v) = recovery_id_of(sig[0]) {
        candidates.push([&sig[1..], &[v]].concat());
    }
    let mut first_err = None;
    for c in candidates {
        match verify_principal_signature(digest, &c, principal) {
            Ok(()) => return Ok(c),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| {
        auth_invalid(format!(
            "signature has no recovery id (first byte {}, last byte {}; want 0..=3 or 27..=34)",
            sig[0], sig[64]
        ))
    }))
}

/// True if the 64-byte r ‖ s part has s above n/2.
pub fn is_high_s(sig: &[u8]) -> bool {
    sig.len() >= 64
        && Signature::from_slice(&sig[..64])
            .map(|s| s.normalize_s().is_some())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_form_names_parse_back_and_nothing_else_does() {
        for f in [SignatureForm::Digest, SignatureForm::StacksMessage] {
            assert_eq!(f.name().parse::<SignatureForm>().unwrap(), f);
        }
        for bad in ["", "Digest", "sms", "message "] {
            let e = bad.parse::<SignatureForm>().unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn compact_size_boundaries() {
        assert_eq!(compact_size(0xfc), vec![0xfc]);
        assert_eq!(compact_size(0xfd), vec![0xfd, 0xfd, 0x00]);
        assert_eq!(compact_size(0x1_0000), vec![0xfe, 0, 0, 1, 0]);
        assert_eq!(compact_size(0x1_0000_0000)[0], 0xff);
    }

    #[test]
    fn recover_rejects_garbage_without_panicking() {
        let d = [1u8; 32];
        for sig in [
            vec![],
            vec![0; 64],
            vec![0; 65],
            vec![0xff; 65],
            vec![1; 66],
        ] {
            assert_eq!(
                recover_public_key(&d, &sig).unwrap_err().code,
                ErrorCode::AuthInvalid
            );
        }
        let mut bad_v = vec![1u8; 65];
        bad_v[64] = 4;
        assert!(recover_public_key(&d, &bad_v).is_err());
    }

    #[test]
    fn libsecp256k1_and_k256_recover_the_same_key() {
        use k256::ecdsa::SigningKey;
        for i in 1u8..=20 {
            let key = SigningKey::from_slice(&[i; 32]).unwrap();
            let digest: [u8; 32] = sha2::Sha256::digest([i]).into();
            let (sig, recid) = key.sign_prehash_recoverable(&digest).unwrap();
            let sig = sig.normalize_s().unwrap_or(sig);
            let mut sig65 = sig.to_bytes().to_vec();
            // normalize_s flips the parity of R's y: recompute the id by trying both.
            sig65.push(recid.to_byte());
            let expected: [u8; 33] = key
                .verifying_key()
                .to_encoded_point(true)
                .as_bytes()
                .try_into()
                .unwrap();
            let k = recover_public_key_k256(&digest, &sig65);
            if k != Some(expected) {
                sig65[64] ^= 1;
            }
            assert_eq!(recover_public_key_k256(&digest, &sig65), Some(expected));
            assert_eq!(
                super::recover_public_key(&digest, &sig65).unwrap(),
                expected
            );
        }
    }
}
