//! The Node.js binding of snap2p (napi-rs). It is deliberately thin: every type wraps a
//! core handle and every method converts arguments, calls the core and converts the
//! result. Node idioms (EventEmitter, `Duplex` streams, async iterators) are built in
//! JavaScript on top of these pull-style primitives (`accept`, `acceptStream`, `read`),
//! see `index.js`.
//!
//! Why pull-style instead of callbacks: a pending Promise keeps Node's event loop alive
//! exactly while the application is waiting for something (a listener accepting, a read
//! in progress), and nothing keeps it alive otherwise, so processes exit on their own.
//! The only callback into JavaScript is the host-side signer, which is a *weak*
//! threadsafe function for the same reason.

// Public so every exported item is reachable from Rust too (also in the crate's test
// build, where napi's registration is compiled out and private items would be dead code).
pub mod conn;
pub mod discovery;
pub mod error;
pub mod events;
pub mod grant;
pub mod peer;
pub mod util;
pub mod wallet;

pub use conn::{NativeConnection, NativeStream, NativeSubscription};
pub use events::NativeEventSubscription;
pub use peer::NativePeer;
pub use wallet::{NativeWallet, NativeWalletStore};
