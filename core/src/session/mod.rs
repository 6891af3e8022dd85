//! Sessions: the sans-IO state machine ([`machine`]), per-stream flow control
//! ([`stream_state`]), the attestation cache and the tokio driver that moves bytes
//! ([`driver`]).

pub mod cache;
pub(crate) mod config;
mod connection;
pub(crate) mod driver;
pub(crate) mod event;
pub(crate) mod keepalive;
pub mod machine;
pub(crate) mod send_buf;
pub(crate) mod send_room;
mod shared;
mod stream;
pub(crate) mod stream_state;
pub(crate) mod streams;

pub use cache::{AttestationCache, VerifiedAttestation};
pub(crate) use connection::established;
pub use connection::Connection;
pub(crate) use driver::{spawn as spawn_driver, InboundRouter};
pub use machine::{
    default_capabilities, Clock, Event, FixedRandomness, ReadOutcome, Session, SessionConfig,
    SessionInfo, SessionLimits,
};
pub use stream::{Stream, WriteBuf};

#[cfg(test)]
mod tests;
