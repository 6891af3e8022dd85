//! RELAY-1 wire messages (docs/PROTOCOL.md §32). Each message is one frame: an unsigned
//! LEB128 varint length, then a canonical CBOR map with the type under `t` (PX-1's shape,
//! §26):
//!
//! | t | message  | keys                                                      |
//! |---|----------|-----------------------------------------------------------|
//! | 1 | RESERVE  | (none)                                                    |
//! | 2 | STATUS   | `c` error code (uint, 0 = ok), `k` splice token (bytes(16), optional), `o` observed address (text, optional) |
//! | 3 | CONNECT  | `p` target principal (text), `r` "a spliced circuit will do" (bool, optional) |
//! | 4 | INCOMING | `k` splice token (bytes(16), optional), `o` the source's observed address (text, optional), `p` source principal (text) |
//! | 5 | PUNCH    | `o` the sender's candidate address for a direct connection (text) |
//! | 6 | SYNC     | (none): "start connecting now"                            |
//!
//! PUNCH and SYNC travel on a `relay-1` stream of the relayed session itself (between the
//! two peers, end to end), never to the relay.
//!
//! A **spliced** circuit (§32.3) leaves the streams: each side opens a new connection to
//! the relay whose first frame is [`encode_splice`] (control message type `0x32`, §4, with
//! the token the relay gave it), and the relay copies raw bytes between the two.
//!
//! Unknown keys are ignored; an unknown `t` is ERR_VERSION_UNSUPPORTED; anything else
//! malformed is ERR_INVALID_MESSAGE; a length prefix over [`MAX_MESSAGE_LEN`] is
//! ERR_MESSAGE_TOO_LARGE before anything is buffered.

use std::net::SocketAddr;

use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
#[cfg(feature = "runtime")]
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
    /// `splice`: in the relay's answer to CONNECT, the token the dialer presents on its
    /// spliced connection; in a target's answer to INCOMING, the INCOMING's token echoed
    /// ("I will come spliced"). None: the circuit stays on this stream.
    Status {
        code: u64,
        observed: Option<SocketAddr>,
        splice: Option<SpliceToken>,
    },
    /// "Open a circuit to `target`"; `splice`: a spliced circuit will do.
    Connect { target: Principal, splice: bool },
    /// The relay to a reserved peer: "`source` (as the relay authenticated it) wants a
    /// circuit"; `splice`: the token to present on a spliced connection, if the target
    /// wants one (else it answers without it and the circuit stays on the stream).
    Incoming {
        source: Principal,
        observed: Option<SocketAddr>,
        splice: Option<SpliceToken>,
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
            RelayMessage::Status {
                code,
                observed,
                splice,
            } => {
                cbor::write_map_header(
                    &mut out,
                    2 + observed.is_some() as usize + splice.is_some() as usize,
                );
                cbor::write_text(&mut out, "c");
                cbor::write_uint(&mut out, *code);
                if let Some(k) = splice {
                    cbor::write_text(&mut out, "k");
                    cbor::write_bytes(&mut out, k);
                }
                if let Some(o) = observed {
                    cbor::write_text(&mut out, "o");
                    cbor::write_text(&mut out, &o.to_string());
                }
                cbor::write_text(&mut out, "t");
                cbor::write_uint(&mut out, types::STATUS);
            }
            RelayMessage::Connect { target, splice } => {
                cbor::write_map_header(&mut out, 2 + *splice as usize);
                cbor::write_text(&mut out, "p");
                cbor::write_text(&mut out, &target.to_string());
                if *splice {
                    cbor::write_text(&mut out, "r");
                    cbor::write_bool(&mut out, true);
                }
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
            RelayMessage::Incoming {
                source,
                observed,
                splice,
            } => {
                cbor::write_map_header(
                    &mut out,
                    2 + observed.is_some() as usize + splice.is_some() as usize,
                );
                if let Some(k) = splice {
                    cbor::write_text(&mut out, "k");
                    cbor::write_bytes(&mut out, k);
                }
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
                splice: splice_token(&v)?,
            }),
            types::CONNECT => Ok(RelayMessage::Connect {
                target: principal(&v)?,
                splice: match v.get("r") {
                    None => false,
                    Some(r) => r
                        .as_bool()
                        .ok_or_else(|| invalid("RELAY-1 CONNECT `r` is not a bool"))?,
                },
            }),
            types::PUNCH => Ok(RelayMessage::Punch {
                candidate: observed(&v)?
                    .ok_or_else(|| invalid("RELAY-1 PUNCH without a candidate"))?,
            }),
            types::SYNC => Ok(RelayMessage::Sync),
            types::INCOMING => Ok(RelayMessage::Incoming {
                source: principal(&v)?,
                observed: observed(&v)?,
                splice: splice_token(&v)?,
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

fn splice_token(v: &Value<'_>) -> Result<Option<SpliceToken>, Error> {
    match v.get("k") {
        None => Ok(None),
        Some(k) => k
            .as_bytes()
            .and_then(|b| <SpliceToken>::try_from(b).ok())
            .map(Some)
            .ok_or_else(|| invalid("RELAY-1 splice token is not 16 bytes")),
    }
}

/// The one-time token that pairs a spliced connection with its circuit.
pub type SpliceToken = [u8; 16];

/// Control-message type of SPLICE (§4), the first frame of a spliced connection: in §4's
/// space, not RELAY-1's, because the relay's listener classifies it next to Noise message
/// 1 and KNOCK (§5.2).
pub const SPLICE_TYPE: u64 = 0x32;

/// The first frame of a spliced connection: `varint(24) ‖ {k: token, t: 0x32}`.
pub fn encode_splice(token: &SpliceToken) -> Vec<u8> {
    let mut body = Vec::with_capacity(24);
    cbor::write_map_header(&mut body, 2);
    cbor::write_text(&mut body, "k");
    cbor::write_bytes(&mut body, token);
    cbor::write_text(&mut body, "t");
    cbor::write_uint(&mut body, SPLICE_TYPE);
    let mut out = Vec::with_capacity(25);
    frame::write_frame(&mut out, &body);
    out
}

/// The token of a first frame's payload when it is a SPLICE (exactly the canonical bytes
/// [`encode_splice`] writes), else None.
pub fn decode_splice(payload: &[u8]) -> Option<SpliceToken> {
    // 24 bytes: a2 61 6b 50 <16> 61 74 18 32. Never 32 (Noise message 1) and never a KNOCK.
    let v = cbor::decode(payload).ok()?;
    let k = <SpliceToken>::try_from(v.get("k")?.as_bytes()?).ok()?;
    (v.get("t")?.as_u64()? == SPLICE_TYPE && v.as_map()?.len() == 2).then_some(k)
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

/// Reads one message from a byte stream, sans-IO: the caller reads at most [`Self::wanted`]
/// bytes at a time and [`Self::push`]es them, so nothing after the message is consumed
/// (on a circuit the bytes that follow belong to the end-to-end session). The async
/// [`read_message`] and the browser's relay dial (browser/) both read through it.
#[derive(Debug, Default)]
pub struct MessageReader {
    head: Vec<u8>,
    len: Option<usize>,
    body: Vec<u8>,
}

impl MessageReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many bytes may be read next without reading past the message (at least 1).
    pub fn wanted(&self) -> usize {
        match self.len {
            None => 1,
            Some(len) => (len - self.body.len()).max(1),
        }
    }

    /// Takes bytes (at most [`Self::wanted`]); `Ok(Some(message))` once it is complete.
    /// A length over [`MAX_MESSAGE_LEN`] is ERR_MESSAGE_TOO_LARGE before anything of the
    /// body is kept; more bytes than wanted is ERR_INVALID_ARGUMENT (a caller's bug).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<RelayMessage>, Error> {
        if bytes.len() > self.wanted() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "RELAY-1 reader: more bytes than wanted",
            ));
        }
        let mut rest = bytes;
        if self.len.is_none() {
            self.head.extend_from_slice(rest);
            rest = &[];
            match frame::read_varint(&self.head)? {
                frame::Varint::Incomplete => return Ok(None),
                frame::Varint::Complete(len, _) => {
                    if len > MAX_MESSAGE_LEN as u64 {
                        return Err(Error::new(
                            ErrorCode::MessageTooLarge,
                            format!("RELAY-1 message of {len} bytes exceeds {MAX_MESSAGE_LEN}"),
                        ));
                    }
                    self.len = Some(len as usize);
                    self.body.reserve(len as usize);
                }
            }
        }
        self.body.extend_from_slice(rest);
        match self.len {
            Some(len) if self.body.len() == len => RelayMessage::decode(&self.body).map(Some),
            _ => Ok(None),
        }
    }

    /// The stream ended: `Ok(None)` before a message started, else ERR_INVALID_MESSAGE.
    pub fn end(&self) -> Result<Option<RelayMessage>, Error> {
        if self.head.is_empty() {
            Ok(None)
        } else {
            Err(invalid("RELAY-1 stream ended inside a message"))
        }
    }
}

/// Reads exactly one message from `stream`, byte-exact: nothing after the message is
/// consumed (the bytes that follow belong to the circuit). `Ok(None)`: the stream ended
/// before a message started.
#[cfg(feature = "runtime")]
pub async fn read_message(stream: &Stream) -> Result<Option<RelayMessage>, Error> {
    let mut reader = MessageReader::new();
    loop {
        match stream.read_chunk(reader.wanted()).await? {
            None => return reader.end(),
            Some(b) => {
                if let Some(m) = reader.push(&b)? {
                    return Ok(Some(m));
                }
            }
        }
    }
}

/// Writes one framed message.
#[cfg(feature = "runtime")]
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
                splice: None,
            },
            RelayMessage::Status {
                code: 16,
                observed: None,
                splice: None,
            },
            RelayMessage::Status {
                code: 0,
                observed: Some(o),
                splice: Some([7; 16]),
            },
            RelayMessage::Connect {
                target: p.clone(),
                splice: false,
            },
            RelayMessage::Connect {
                target: p.clone(),
                splice: true,
            },
            RelayMessage::Punch { candidate: o },
            RelayMessage::Sync,
            RelayMessage::Incoming {
                source: p.clone(),
                observed: Some(o),
                splice: None,
            },
            RelayMessage::Incoming {
                source: p.clone(),
                observed: None,
                splice: Some([9; 16]),
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
            splice: None,
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
        // A 15-byte token is malformed, not absent.
        let mut short = Vec::new();
        cbor::write_map_header(&mut short, 3);
        cbor::write_text(&mut short, "c");
        cbor::write_uint(&mut short, 0);
        cbor::write_text(&mut short, "k");
        cbor::write_bytes(&mut short, &[1; 15]);
        cbor::write_text(&mut short, "t");
        cbor::write_uint(&mut short, types::STATUS);
        assert_eq!(
            RelayMessage::decode(&short).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn splice_frame_bytes_and_classification() {
        let token = [0xab; 16];
        let f = encode_splice(&token);
        let mut want = vec![0x18, 0xa2, 0x61, 0x6b, 0x50];
        want.extend_from_slice(&token);
        want.extend_from_slice(&[0x61, 0x74, 0x18, 0x32]);
        assert_eq!(f, want);
        assert_eq!(decode_splice(&f[1..]), Some(token));
        // Not a SPLICE: a KNOCK, a 32-byte Noise message 1, another type, extra keys.
        let mut knock = Vec::new();
        crate::wire::message::Message::Knock {
            version: 1,
            nonce: &[],
            token: b"0123456789abcdef",
        }
        .encode(&mut knock);
        assert_eq!(decode_splice(&knock), None);
        assert_eq!(decode_splice(&[0x5a; 32]), None);
        let mut other = f[1..].to_vec();
        *other.last_mut().unwrap() = 0x30;
        assert_eq!(decode_splice(&other), None);
    }
}
