//! snap2p for Swift and Kotlin, through uniffi proc-macros.
//!
//! Thin by design: every type here wraps a `snap2p` core type and converts its arguments;
//! protocol behaviour lives in the core, binding plumbing shared with the Node and Python
//! bindings in `snap2p::host`. One file per area of the API:
//! - [`error`]: `Snap2pError` carrying the protocol's error code and name;
//! - [`identity`]: signers (local wallets and the host-side `HostSigner` foreign trait),
//!   the encrypted wallet store, principals;
//! - [`peer`]: `Peer`, options, invites, connection callbacks;
//! - [`session`]: `Connection`, `Stream`, stream callbacks;
//! - [`events`]: the peer's event subscription and the peer and connection counters;
//! - [`discovery`]: the resolver chain's options and report, endpoint adverts;
//! - [`relay`]: RELAY-1 relay options, reservations and relay counters;
//! - [`rt`]: running core futures on the shared runtime, `Subscription` handles;
//! - [`bytes`]: stream data, copied across the FFI in one piece;
//! - [`raw`]: plain C entry points for the Kotlin `writeAll` fast path (no uniffi).

uniffi::setup_scaffolding!("snap2p");

pub mod bytes;
pub mod discovery;
pub mod error;
pub mod events;
pub mod grant;
pub mod identity;
pub mod peer;
pub mod raw;
pub mod relay;
pub mod rt;
pub mod session;

pub use bytes::Bytes;
pub use discovery::{ResolveReport, ResolverOptions};
pub use error::{ErrorInfo, Snap2pError};
pub use events::{EventSubscription, PeerEvent};
pub use identity::{HostSigner, Signer, WalletStore};
pub use peer::{Peer, PeerOptions};
pub use relay::{RelayOptions, RelayStats, ReservationInfo};
pub use rt::Subscription;
pub use session::{Connection, Stream};
