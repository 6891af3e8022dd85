//! A local Stacks wallet: BIP39 mnemonic → BIP32 `m/44'/5757'/0'/0/<index>` → secp256k1.

use std::fmt;

use bip39::{Language, Mnemonic};
use hmac::{Hmac, Mac};
use k256::ecdsa::SigningKey;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{NonZeroScalar, PublicKey, SecretKey};
use sha2::Sha512;
use zeroize::{Zeroize, Zeroizing};

use super::principal::{Network, Principal};
use super::signer::{stacks_message_hash, SignRequest, SignatureForm, WalletSigner};
use crate::error::{Error, ErrorCode, Result};

/// BIP44 coin type of Stacks.
pub const STACKS_COIN_TYPE: u32 = 5757;

const HARDENED: u32 = 0x8000_0000;

/// A wallet holding its key in memory. Signs with RFC 6979 deterministic, low-S ECDSA.
#[derive(Clone)]
pub struct LocalWallet {
    key: SigningKey,
    public: [u8; 33],
    principal: Principal,
    mnemonic: Zeroizing<String>,
    account_index: u32,
    form: SignatureForm,
}

impl fmt::Debug for LocalWallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the mnemonic or key.
        f.debug_struct("LocalWallet")
            .field("principal", &self.principal.to_string())
            .field("account_index", &self.account_index)
            .field("form", &self.form)
            .finish_non_exhaustive()
    }
}

impl LocalWallet {
    /// A new wallet with a fresh 24-word mnemonic, account 0.
    pub fn generate(network: Network) -> LocalWallet {
        let mnemonic =
            Mnemonic::generate_in(Language::English, 24).expect("24 is a valid BIP39 word count");
        Self::from_parsed(&mnemonic, 0, network)
            .expect("account 0 of a fresh mnemonic derives a valid key")
    }

    /// Restores account `account_index` of a 12- or 24-word English mnemonic (checksum
    /// verified, empty BIP39 passphrase), as stacks.js `generateWallet` does.
    pub fn from_mnemonic(phrase: &str, account_index: u32, network: Network) -> Result<Self> {
        let normalized = Zeroizing::new(normalize_phrase(phrase));
        let mnemonic =
            Mnemonic::parse_in_normalized(Language::English, &normalized).map_err(|e| {
                Error::new(ErrorCode::InvalidArgument, format!("invalid mnemonic: {e}"))
            })?;
        if !matches!(mnemonic.word_count(), 12 | 24) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "mnemonic has {} words; 12 or 24 are supported",
                    mnemonic.word_count()
                ),
            ));
        }
        Self::from_parsed(&mnemonic, account_index, network)
    }

    fn from_parsed(mnemonic: &Mnemonic, account_index: u32, network: Network) -> Result<Self> {
        if account_index >= HARDENED {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "account index must be below 2^31",
            ));
        }
        let seed = Zeroizing::new(mnemonic.to_seed_normalized(""));
        let path = [
            44 | HARDENED,
            STACKS_COIN_TYPE | HARDENED,
            HARDENED,
            0,
            account_index,
        ];
        let secret = derive_path(&seed[..], &path)?;
        let key = SigningKey::from(&secret);
        let public = compressed(&secret.public_key());
        Ok(LocalWallet {
            key,
            public,
            principal: Principal::from_public_key(&public, network),
            mnemonic: Zeroizing::new(mnemonic.to_string()),
            account_index,
            form: SignatureForm::Digest,
        })
    }

    /// The mnemonic, words separated by single spaces.
    pub fn mnemonic(&self) -> String {
        self.mnemonic.to_string()
    }

    pub fn account_index(&self) -> u32 {
        self.account_index
    }

    pub fn principal(&self) -> Principal {
        self.principal.clone()
    }

    pub fn network(&self) -> Network {
        self.principal.network()
    }

    /// The private key as stacks.js writes it: 64 hex characters plus `01` (compressed).
    pub fn private_key_hex(&self) -> String {
        let mut s = hex::encode(self.key.to_bytes());
        s.push_str("01");
        s
    }

    /// The compressed SEC1 public key.
    pub fn public_key(&self) -> [u8; 33] {
        self.public
    }

    /// The same wallet producing signatures of the given form for attestations and cards.
    pub fn with_form(mut self, form: SignatureForm) -> Self {
        self.form = form;
        self
    }

    /// RFC 6979 low-S recoverable signature r ‖ s ‖ v over a 32-byte hash.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> [u8; 65] {
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(digest)
            .expect("signing a 32-byte prehash cannot fail");
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = recid.to_byte();
        out
    }

    /// Signs a text as a Stacks wallet message (prefix applied).
    pub fn sign_message(&self, message: &str) -> [u8; 65] {
        self.sign_digest(&stacks_message_hash(message))
    }
}

#[async_trait::async_trait]
impl WalletSigner for LocalWallet {
    fn principal(&self) -> Principal {
        self.principal.clone()
    }

    fn signature_form(&self) -> SignatureForm {
        self.form
    }

    async fn sign(&self, request: SignRequest) -> Result<Vec<u8>> {
        Ok(match request {
            SignRequest::Digest(d) => self.sign_digest(&d),
            SignRequest::Message(m) => self.sign_message(&m),
        }
        .to_vec())
    }
}

/// Lower-cases and collapses whitespace so pasted phrases parse.
fn normalize_phrase(phrase: &str) -> String {
    phrase
        .split_whitespace()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

fn compressed(pk: &PublicKey) -> [u8; 33] {
    let mut out = [0u8; 33];
    out.copy_from_slice(pk.to_encoded_point(true).as_bytes());
    out
}

fn wallet_err(msg: &str) -> Error {
    Error::new(ErrorCode::WalletError, msg)
}

/// BIP32 private derivation along `path` from a BIP39 seed.
fn derive_path(seed: &[u8], path: &[u32]) -> Result<SecretKey> {
    let (mut key, mut chain) = hmac512(b"Bitcoin seed", &[seed]);
    let mut secret =
        SecretKey::from_slice(&key[..]).map_err(|_| wallet_err("invalid BIP32 master key"))?;
    for &index in path {
        let index_bytes = index.to_be_bytes();
        let (il, ir) = if index & HARDENED != 0 {
            let sk = Zeroizing::new(secret.to_bytes());
            hmac512(&chain[..], &[&[0u8], &sk[..], &index_bytes])
        } else {
            let pk = compressed(&secret.public_key());
            hmac512(&chain[..], &[&pk, &index_bytes])
        };
        // child = IL + parent (mod n); IL >= n or a zero child are invalid (probability
        // ~2^-127; BIP32 says skip to the next index, which no Stacks wallet does).
        let tweak =
            SecretKey::from_slice(&il[..]).map_err(|_| wallet_err("invalid BIP32 child key"))?;
        let sum = *tweak.to_nonzero_scalar() + *secret.to_nonzero_scalar();
        let child = Option::<NonZeroScalar>::from(NonZeroScalar::new(sum))
            .ok_or_else(|| wallet_err("invalid BIP32 child key"))?;
        secret = SecretKey::from(child);
        key = il;
        chain = ir;
    }
    key.zeroize();
    chain.zeroize();
    Ok(secret)
}

fn hmac512(key: &[u8], parts: &[&[u8]]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    let out = Zeroizing::new(mac.finalize().into_bytes());
    let mut l = Zeroizing::new([0u8; 32]);
    let mut r = Zeroizing::new([0u8; 32]);
    l.copy_from_slice(&out[..32]);
    r.copy_from_slice(&out[32..]);
    (l, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    // BIP32 test vector 1 (seed 000102…0f), chain m/0'/1/2'/2/1000000000.
    #[test]
    fn bip32_test_vector_1() {
        let seed = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let sk = derive_path(&seed, &[HARDENED, 1, 2 | HARDENED, 2, 1_000_000_000]).unwrap();
        assert_eq!(
            hex::encode(sk.to_bytes()),
            "471b76e389e528d6de6d816857e012c5455051cad6660850e58372a6c3e6e7c8"
        );
    }

    #[test]
    fn rejects_bad_mnemonics() {
        let abandon12 = "abandon ".repeat(11) + "about";
        assert!(LocalWallet::from_mnemonic(&abandon12, 0, Network::Mainnet).is_ok());
        let bad_checksum = "abandon ".repeat(12);
        let short = "abandon ".repeat(8) + "about";
        let fifteen = "abandon ".repeat(14) + "address";
        for bad in [
            bad_checksum.as_str(),
            short.as_str(),
            "",
            "notaword",
            fifteen.as_str(),
        ] {
            assert_eq!(
                LocalWallet::from_mnemonic(bad, 0, Network::Mainnet)
                    .unwrap_err()
                    .code,
                ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
        assert!(LocalWallet::from_mnemonic(&abandon12, HARDENED, Network::Mainnet).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let w = LocalWallet::generate(Network::Testnet);
        let dbg = format!("{w:?}");
        assert!(!dbg.contains(&w.private_key_hex()[..64]));
        assert!(!dbg.contains(&w.mnemonic()));
        assert_eq!(w.mnemonic().split(' ').count(), 24);
    }
}
