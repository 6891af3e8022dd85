//! snap2p: Stacks-native peer-to-peer sessions and streams.
//!
//! The API, bottom up (docs/ARCHITECTURE.md draws the layers and what may import what):
//! - [`identity`]: Stacks principals, wallets, the host-side signer, node keys,
//!   NodeKeyAttestation and AliasCard, the encrypted wallet store;
//! - [`policy`]: visibility modes, invite tokens, allowlists, pre-auth rate limits;
//! - [`locator`] and [`transport`]: where a peer is and what carries the bytes (TCP built
//!   in; the [`transport::Transport`] trait for others);
//! - [`Connection`] and [`Stream`]: an authenticated session and its byte streams;
//! - [`protocol`]: protocols as plug-ins ([`ProtocolHandler`] by stream label,
//!   [`Discovery`] for dial-by-principal) and the [`PeerHandle`] they get;
//! - [`px1`]: PX-1 peer exchange, the first such plug-in;
//! - [`discovery`]: signed endpoint advertisements, the Mainline DHT module (feature
//!   `dht`) and the resolver chain behind [`Peer::resolve`];
//! - [`peer`]: the high-level [`Peer`] API;
//! - [`host`]: what the language bindings share.
//!
//! The sans-IO session machine, the wire codec and the Noise channel are in [`unstable`]:
//! for fuzzers, test vectors, benchmarks and second implementations, with no semver
//! promise. The wire format is specified byte for byte in `docs/PROTOCOL.md`.
//!
//! Feature `runtime` (default) brings everything that does I/O on tokio: [`Peer`],
//! [`Connection`], [`Stream`], transports, events, protocols. Without it the crate is the
//! sans-IO core, which is what the browser build (wasm32, `browser/`) drives.

#[cfg(feature = "runtime")]
pub(crate) mod admission;
#[cfg(feature = "runtime")]
pub mod discovery;
pub mod error;
#[cfg(feature = "runtime")]
pub mod events;
#[cfg(feature = "runtime")]
pub mod host;
pub mod identity;
pub mod locator;
#[cfg(feature = "runtime")]
pub mod peer;
pub mod policy;
#[cfg(feature = "runtime")]
pub mod protocol;
#[cfg(feature = "runtime")]
pub mod px1;
pub mod rate;
pub mod relay;
#[doc(hidden)]
pub mod secure_channel;
pub mod session;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
#[cfg(feature = "runtime")]
pub mod transport;
#[doc(hidden)]
pub mod wire;

/// The sans-IO protocol internals: the session state machine ([`unstable::Session`]: bytes
/// and `now` in, bytes, events and timers out), the wire codec and the Noise channel. For
/// fuzzers, test vectors, benchmarks and second implementations. **No semver promise**:
/// anything here may change in any release; applications use [`Peer`], [`Connection`]
/// and [`Stream`].
pub mod unstable {
    pub use crate::secure_channel;
    pub use crate::session::{
        default_capabilities, AttestationCache, Clock, Counters, Event, FixedRandomness,
        ReadOutcome, Session, SessionConfig, SessionInfo, SessionLimits, V1Only,
        VerifiedAttestation,
    };
    pub use crate::wire;
}

pub use error::{Error, ErrorCode, Result};
#[cfg(feature = "runtime")]
pub use events::{Direction, EventKind, Events, PeerEvent, PeerStats};
pub use identity::{
    AliasCard, LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation, Principal,
    SignRequest, SignatureForm, WalletSigner, WalletStore,
};
pub use locator::Locator;
#[cfg(feature = "runtime")]
pub use peer::{Peer, PeerBuilder, PeerConfig, Role};
pub use policy::{Invite, Visibility};
#[cfg(feature = "runtime")]
pub use protocol::{DialOptions, Discovery, PeerHandle, ProtocolHandler};
pub use session::SessionLimits;
#[cfg(feature = "runtime")]
pub use session::{Connection, ConnectionStats, ReadInto, Stream, WriteBuf};
pub use wire::profile::WireProfile;

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    // web_time: std's clock on native targets, `Date.now()` in the browser (wasm32).
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
