//! RELAY-1 wire messages (docs/PROTOCOL.md §32). Each message is one frame: an unsigned
//! LEB128 varint length, then a canonical CBOR map with the type under `t` (PX-1's shape,
//! §26):
//!
//! | t | message  | keys                                                      |
//! |---|----------|-----------------------------------------------------------|
//! | 1 | RESERVE  | (none)                                                    |
//! | 2 | STATUS   | `c` error code (uint, 0 = ok), `o` observed address (text, optional) |
//! | 3 | CONNECT  | `p` target principal (text)                               |
//! | 4 | INCOMING | `p` source principal (text), `o` its observed address (text, optional) |
//! | 5 | PUNCH    | `o` the sender's candidate address for a direct connection (text) |
//! | 6 | SYNC     | (none): "start connecting now"                            |
//!
//! PUNCH and SYNC travel on a `relay-1` stream of the relayed session itself (between the
//! two peers, end to end), never to the relay.
//!
//! Unknown keys are ignored; an unknown `t` is ERR_VERSION_UNSUPPORTED; anything else
//! malformed is ERR_INVALID_MESSAGE; a length prefix over [`MAX_MESSAGE_LEN`] is
//! ERR_MESSAGE_TOO_LARGE before anything is buffered.

use std::net::SocketAddr;

use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
use crate::session::Stream;
use crate::wire::cbor::{self, Value};
use crate::wire::frame;

/// Type codes under `t`.
pub mod types {
    pub const RESERVE: u64 = 1;
    pub const STATUS: u64 = 2;
    pub const CONNECT: u64 = 3;
    pub const INCOMING: u64 = 4;
    pub const PUNCH: u64 = 5;
    pub const SYNC: u64 = 6;
}

/// Largest RELAY-1 message (the CBOR payload of one frame).
pub const MAX_MESSAGE_LEN: usize = 256;

/// One RELAY-1 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayMessage {
    /// "Keep a reservation for me on this session."
    Reserve,
    /// The answer to any request: `code` 0 is success; `observed` is the address the
    /// sender of the answer sees the receiver's session come from (a relay's answer).
    Status {
        code: u64,
        observed: Option<SocketAddr>,
    },
    /// "Open a circuit to `target`."
    Connect { target: Principal },
    /// The relay to a reserved peer: "`source` (as the relay authenticated it) wants a
    /// circuit".
    Incoming {
        source: Principal,
        observed: Option<SocketAddr>,
    },
    /// Hole punching: the sender's candidate address (its observed IP, its local port).
    Punch { candidate: SocketAddr },
    /// Hole punching: start the simultaneous open now.
    Sync,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidMessage, msg)
}

impl RelayMessage {
    /// The canonical CBOR map (keys in byte-wise order), without the length prefix.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            RelayMessage::Reserve => {
                cbor::write_map_header(&mut out, 1);
                cbor::write_text(&mut out, "t");
                cbor::write_uint(&mut out, types::RESERVE);
            }
            RelayMessage::Status { code, observed } => {
                cbor::write_map_header(&mut out, 2 + observed.is_some() as usize);
                cbor::write_text(&mut out, "c");
                cbor::write_uint(&mut out, *code);
                if let Some(o) = observed {
                    cbor::write_text(&mut out, "o");
                    cbor::write_text(&mut out, &o.to_string());
                }
                cbor::write_text(&mut out, "t");
                cbor::write_uint(&mut out, types::STATUS);
            }
            RelayMessage::Connect { target } => {
                cbor::write_map_header(&mut out, 2);
                cbor::write_text(&mut out, "p");
                cbor::write_text(&mut out, &target.to_string());
                cbor::write_text(&mut out, "t");
                cbor::write_uint(&mut out, types::CONNECT);
            }
            RelayMessage::Punch { candidate } => {
                cbor::write_map_header(&mut out, 2);
                cbor::write_text(&mut out, "o");
                cbor::write_text(&mut out, &candidate.to_string());
                cbor::write_text(&mut out, "t");
                cbor::write_uint(&mut out, types::PUNCH);
            }
            RelayMessage::Sync => {
                cbor::write_map_header(&mut out, 1);
                cbor::write_text(&mut out, "t");
                cbor::write_uint(&mut out, types::SYNC);
            }
            RelayMessage::Incoming { source, observed } => {
                cbor::write_map_header(&mut out, 2 + observed.is_some() as usize);
                if let Some(o) = observed {
                    cbor::write_text(&mut out, "o");
                    cbor::write_text(&mut out, &o.to_string());
                }
                cbor::write_text(&mut out, "p");
                cbor::write_text(&mut out, &source.to_string());
                cbor::write_text(&mut out, "t");
                cbor::write_uint(&mut out, types::INCOMING);
            }
        }
        out
    }

    /// The framed message (varint length + CBOR).
    pub fn encode_frame(&self) -> Vec<u8> {
        let mut out = Vec::new();
        frame::write_frame(&mut out, &self.encode());
        out
    }

    /// Decodes one message occupying all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<RelayMessage, Error> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::new(
                ErrorCode::MessageTooLarge,
                "RELAY-1 message exceeds its size limit",
            ));
        }
        let v = cbor::decode(bytes).map_err(|e| invalid(format!("RELAY-1: {e}")))?;
        if v.as_map().is_none() {
            return Err(invalid("RELAY-1 message is not a map"));
        }
        let t = v
            .get("t")
            .and_then(Value::as_u64)
            .ok_or_else(|| invalid("RELAY-1 message without an unsigned type"))?;
        match t {
            types::RESERVE => Ok(RelayMessage::Reserve),
            types::STATUS => Ok(RelayMessage::Status {
                code: v
                    .get("c")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| invalid("RELAY-1 STATUS without an unsigned code"))?,
                observed: observed(&v)?,
            }),
            types::CONNECT => Ok(RelayMessage::Connect {
                target: principal(&v)?,
            }),
            types::PUNCH => Ok(RelayMessage::Punch {
                candidate: observed(&v)?
                    .ok_or_else(|| invalid("RELAY-1 PUNCH without a candidate"))?,
            }),
            types::SYNC => Ok(RelayMessage::Sync),
            types::INCOMING => Ok(RelayMessage::Incoming {
                source: principal(&v)?,
                observed: observed(&v)?,
            }),
            other => Err(Error::new(
                ErrorCode::VersionUnsupported,
                format!("unknown RELAY-1 message type {other}"),
            )),
        }
    }
}

fn principal(v: &Value<'_>) -> Result<Principal, Error> {
    let text = v
        .get("p")
        .and_then(Value::as_text)
        .ok_or_else(|| invalid("RELAY-1 message without a principal"))?;
    Principal::parse(text).map_err(|e| invalid(format!("RELAY-1 principal: {}", e.message)))
}

fn observed(v: &Value<'_>) -> Result<Option<SocketAddr>, Error> {
    match v.get("o") {
        None => Ok(None),
        Some(o) => {
            let text = o
                .as_text()
                .ok_or_else(|| invalid("RELAY-1 observed address is not text"))?;
            text.parse()
                .map(Some)
                .map_err(|_| invalid("RELAY-1 observed address is not ip:port"))
        }
    }
}

/// Reads exactly one message from `stream`, byte-exact: nothing after the message is
/// consumed (the bytes that follow belong to the circuit). `Ok(None)`: the stream ended
/// before a message started.
pub async fn read_message(stream: &Stream) -> Result<Option<RelayMessage>, Error> {
    let mut head = Vec::with_capacity(2);
    let len = loop {
        match stream.read_chunk(1).await? {
            None if head.is_empty() => return Ok(None),
            None => return Err(invalid("RELAY-1 stream ended inside a message")),
            Some(b) => head.extend_from_slice(&b),
        }
        match frame::read_varint(&head)? {
            frame::Varint::Incomplete => continue,
            frame::Varint::Complete(value, _) => break value,
        }
    };
    if len > MAX_MESSAGE_LEN as u64 {
        return Err(Error::new(
            ErrorCode::MessageTooLarge,
            format!("RELAY-1 message of {len} bytes exceeds {MAX_MESSAGE_LEN}"),
        ));
    }
    let len = len as usize;
    let mut body = Vec::with_capacity(len);
    while body.len() < len {
        match stream.read_chunk(len - body.len()).await? {
            Some(b) => body.extend_from_slice(&b),
            None => return Err(invalid("RELAY-1 stream ended inside a message")),
        }
    }
    RelayMessage::decode(&body).map(Some)
}

/// Writes one framed message.
pub async fn write_message(stream: &Stream, msg: &RelayMessage) -> Result<(), Error> {
    stream.write_all(msg.encode_frame()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let p: Principal = "stacks:SP21S6DAZN9ZS8EH8NVV2T0HVJ2K7VMKMSCW0596V"
            .parse()
            .unwrap();
        let o: SocketAddr = "198.51.100.2:7000".parse().unwrap();
        for m in [
            RelayMessage::Reserve,
            RelayMessage::Status {
                code: 0,
                observed: Some(o),
            },
            RelayMessage::Status {
                code: 16,
                observed: None,
            },
            RelayMessage::Connect { target: p.clone() },
            RelayMessage::Punch { candidate: o },
            RelayMessage::Sync,
            RelayMessage::Incoming {
                source: p.clone(),
                observed: Some(o),
            },
        ] {
            let bytes = m.encode();
            assert_eq!(RelayMessage::decode(&bytes).unwrap(), m);
            // canonical: the generic encoder writes the same bytes
            let v = cbor::decode(&bytes).unwrap();
            assert_eq!(cbor::to_vec(&v), bytes);
        }
        assert_eq!(
            RelayMessage::Reserve.encode_frame(),
            [0x04, 0xa1, 0x61, 0x74, 0x01]
        );
        let ok = RelayMessage::Status {
            code: 0,
            observed: None,
        };
        assert_eq!(
            ok.encode_frame(),
            [0x07, 0xa2, 0x61, 0x63, 0x00, 0x61, 0x74, 0x02]
        );
        let unknown = [0xa1, 0x61, 0x74, 0x09];
        assert_eq!(
            RelayMessage::decode(&unknown).unwrap_err().code,
            ErrorCode::VersionUnsupported
        );
        for bad in [&[0x01][..], &[0xa0], &[0xa1, 0x61, 0x74, 0x03], &[0xff]] {
            assert_eq!(
                RelayMessage::decode(bad).unwrap_err().code,
                ErrorCode::InvalidMessage
            );
        }
        assert_eq!(
            RelayMessage::decode(&[0u8; 300]).unwrap_err().code,
            ErrorCode::MessageTooLarge
        );
    }
}
