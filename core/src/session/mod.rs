//! Sessions: the sans-IO state machine ([`machine`]), per-stream flow control
//! ([`stream_state`]), the attestation cache and the tokio driver that moves bytes
//! ([`driver`]).

pub mod cache;
pub mod driver;
pub mod machine;
pub(crate) mod send_buf;
pub(crate) mod send_room;
pub(crate) mod stream_state;

pub use cache::{AttestationCache, VerifiedAttestation};
pub use driver::{Connection, Stream};
pub use machine::{
    default_capabilities, Clock, Event, FixedRandomness, ReadOutcome, Session, SessionConfig,
    SessionInfo, SessionLimits,
};

#[cfg(test)]
mod tests;
