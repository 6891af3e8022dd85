//! Sessions: [`Connection`] and [`Stream`], the handles applications use, over the tokio
//! driver that moves bytes (`driver.rs`, `shared.rs`) and the sans-IO state machine
//! (`machine.rs`, with its parts `streams.rs`, `stream_state.rs`, `keepalive.rs`). The
//! machine and its types are public through `crate::unstable` only.

#[doc(hidden)]
pub mod cache;
pub(crate) mod config;
#[cfg(feature = "runtime")]
mod connection;
#[cfg(feature = "runtime")]
pub(crate) mod driver;
pub(crate) mod event;
pub(crate) mod keepalive;
#[doc(hidden)]
pub mod machine;
pub(crate) mod release;
pub(crate) mod send_buf;
pub(crate) mod send_room;
#[cfg(feature = "runtime")]
mod shared;
#[cfg(feature = "runtime")]
mod stream;
pub(crate) mod stream_state;
pub(crate) mod streams;
pub(crate) mod v1_only;

#[doc(hidden)]
pub use cache::{AttestationCache, VerifiedAttestation};
#[cfg(feature = "runtime")]
pub(crate) use connection::{established, established_unless, handshake_answers, ran_hs2};
#[cfg(feature = "runtime")]
pub use connection::{Connection, ConnectionStats};
#[cfg(feature = "runtime")]
pub(crate) use driver::{spawn as spawn_driver, InboundRouter, Path};
pub use machine::SessionLimits;
#[doc(hidden)]
pub use machine::{
    default_capabilities, Clock, Counters, Event, FixedRandomness, HandshakeProgress, ReadOutcome,
    Session, SessionConfig, SessionInfo,
};
#[cfg(feature = "runtime")]
pub(crate) use shared::{EstablishedNote, Observer, StreamNote};
#[cfg(feature = "runtime")]
pub use stream::{ReadInto, Stream, WriteBuf};
#[doc(hidden)]
pub use v1_only::V1Only;

/// The rules of PROTOCOL.md pinned one test each (issue 26); a `tests.rs` file, as
/// ci/layers.py expects of test code.
#[cfg(test)]
#[path = "spec/tests.rs"]
mod spec_tests;
#[cfg(test)]
mod tests;
