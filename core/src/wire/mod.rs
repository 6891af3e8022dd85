//! Bytes on the wire: framing, the CBOR subset, control messages.

pub mod cbor;
pub mod frame;
pub mod message;
pub mod profile;
