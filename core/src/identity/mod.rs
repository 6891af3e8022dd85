//! Identity: Stacks principals, wallets and the host-side signer, node keys,
//! NodeKeyAttestation, AliasCard, PermissionGrant and the encrypted wallet store.
//!
//! Byte formats and verification rules are specified in `docs/PROTOCOL.md (Part II)`; the vectors
//! in `core/tests/vectors/identity.json` pin them and `ci/oracle` checks them against
//! stacks.js.

mod alias_card;
mod attestation;
mod grant;
mod node_key;
mod principal;
mod signed;
mod signer;
mod store;
mod wallet;

pub use alias_card::{
    normalize_alias, validate_display_name, AliasBook, AliasCard, MAX_ALIAS_BYTES,
    MAX_DISPLAY_NAME_BYTES,
};
pub use attestation::NodeKeyAttestation;
pub use grant::{
    GrantRequest, LabelPattern, PermissionGrant, MAX_GRANT_LABELS, MAX_GRANT_LEN, MAX_LABEL_BYTES,
};
pub use node_key::{ed25519_to_x25519_public, verify_ed25519, NodeKey, NodePublicKey};
pub use principal::{
    c32, hash160, Network, NetworkFilter, Principal, PrincipalText, PRINCIPAL_PREFIX,
    VERSION_MAINNET_MULTI_SIG, VERSION_MAINNET_SINGLE_SIG, VERSION_TESTNET_MULTI_SIG,
    VERSION_TESTNET_SINGLE_SIG,
};
pub use signed::{
    iso8601_millis, rfc3339, CLOCK_SKEW_SECS, ISSUED_NONCE_LEN, MAX_ENCODED_LEN, MAX_NONCE_LEN,
    MAX_TIMESTAMP, MIN_NONCE_LEN,
};
pub use signer::{
    is_high_s, normalize_wallet_signature, recover_principal, recover_public_key,
    stacks_message_hash, verify_principal_signature, SignRequest, SignatureForm, WalletSigner,
    RECOVERABLE_SIGNATURE_LEN, STACKS_MESSAGE_PREFIX,
};
pub use store::{
    ScryptParams, UnreadableWallet, WalletInfo, WalletScan, WalletStore, MAX_WALLET_NAME_LEN,
    MIN_PASSWORD_LEN, WALLET_DIR_ENV,
};
pub use wallet::{LocalWallet, STACKS_COIN_TYPE};
