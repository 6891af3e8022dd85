//! snap2p: Stacks-native peer-to-peer sessions and streams.
//!
//! Layers, bottom up (each a module named after the protocol part it implements):
//! - [`identity`]: Stacks principals, wallets, the host-side signer, node keys,
//!   NodeKeyAttestation and AliasCard, the encrypted wallet store;
//! - [`wire`]: varint framing, the deterministic CBOR subset, control messages;
//! - [`secure_channel`]: Noise XX (`Noise_XX_25519_ChaChaPoly_SHA256`) over frames;
//! - [`session`]: the sans-IO session state machine (handshake, auth, streams, flow
//!   control, keepalive) and the tokio driver that moves its bytes;
//! - [`policy`]: visibility modes, invite tokens, allowlists, pre-auth rate limits;
//! - [`px1`]: the PX-1 peer-exchange module and dial-by-principal;
//! - [`peer`]: the high-level [`Peer`] API.
//!
//! The wire format is specified byte for byte in `docs/PROTOCOL.md`.

pub mod error;
pub mod host;
pub mod identity;
pub mod locator;
pub mod peer;
pub mod policy;
pub mod protocol;
pub mod px1;
pub mod rate;
pub mod secure_channel;
pub mod session;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod transport;
pub mod wire;

pub use error::{Error, ErrorCode, Result};
pub use identity::{
    AliasCard, LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation, Principal,
    SignRequest, SignatureForm, WalletSigner, WalletStore,
};
pub use locator::Locator;
pub use peer::{Peer, PeerBuilder, PeerConfig, Role};
pub use policy::{Invite, Visibility};
pub use protocol::{DialOptions, Discovery, PeerHandle, ProtocolHandler};
pub use session::{Connection, SessionLimits, Stream, WriteBuf};

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
