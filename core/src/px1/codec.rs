//! PX-1 wire messages (spec §10.1), specified byte for byte in `docs/PROTOCOL.md (Part III)`.
//!
//! Each message is one frame: an unsigned LEB128 varint length, then a canonical CBOR map
//! with short text keys and the message type under `t` (the control plane's shape, so one
//! decoder and one set of hostile-input rules serve both):
//!
//! | t | message           | keys                                                  |
//! |---|-------------------|-------------------------------------------------------|
//! | 1 | PX_RESOLVE_REQ    | `p` principal (text), `n` max_results (uint, optional) |
//! | 2 | PX_RESOLVE_RESP   | `l` locators (array of text)                          |
//! | 3 | PX_PUSH           | `l` locators, `p` principal, `ttl` seconds (uint)     |
//!
//! Unknown keys are ignored and an unknown `t` is ERR_VERSION_UNSUPPORTED (spec §3.0).
//! Locators are text in the grammar of docs/PROTOCOL.md §14 (`ip:port`, `[ipv6]:port`,
//! `host:port` for TCP, `scheme://host:port[/path]` for other transports, known or not).
//! Locators that do not parse, or that name an address nobody can dial (unspecified,
//! multicast, broadcast), are dropped one by one: hints are advisory, and a newer peer may
//! know locator forms we do not. Locators of a transport this peer lacks are kept and
//! passed on; dialing one fails with a clear reason and the search goes on.

use bytes::BytesMut;

use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
use crate::locator::Locator;
use crate::wire::cbor::{self, Value};
use crate::wire::frame;

/// Type codes under `t`.
pub mod types {
    pub const RESOLVE_REQ: u64 = 0x01;
    pub const RESOLVE_RESP: u64 = 0x02;
    pub const PUSH: u64 = 0x03;
}

/// Largest PX-1 message (the CBOR payload of one frame). 16 locators of the longest
/// legal form (a 253-byte host name) plus keys fit.
pub const MAX_MESSAGE_LEN: usize = 4608;
/// Most locators one message may carry (the cap on `max_results` too).
pub const MAX_LOCATORS_PER_MESSAGE: usize = 16;
/// Longest locator text: a 253-byte host name, ':' and a 5-digit port. Locators with a
/// scheme and path must fit it too (the message limit above is computed from it, and
/// peers of v0.1 enforce both).
pub const MAX_LOCATOR_LEN: usize = 259;

/// One PX-1 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Px1Message {
    /// "Where can `principal` be dialed?" `max_results` absent or 0 means the
    /// responder's default.
    ResolveReq {
        principal: Principal,
        max_results: Option<u64>,
    },
    /// The answer: routing hints, possibly none.
    ResolveResp { locators: Vec<Locator> },
    /// An unsolicited hint: `principal` may be reached at `locators` for `ttl_seconds`.
    Push {
        principal: Principal,
        locators: Vec<Locator>,
        ttl_seconds: u64,
    },
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidMessage, msg)
}

/// Whether a parsed locator is worth dialing at all: addresses that cannot name one
/// remote host (unspecified, multicast, limited broadcast) are never hints.
pub fn is_dialable(loc: &Locator) -> bool {
    match loc.socket_addr() {
        Some(a) => {
            let ip = a.ip().to_canonical();
            let broadcast = matches!(ip, std::net::IpAddr::V4(v4) if v4.is_broadcast());
            !ip.is_unspecified() && !ip.is_multicast() && !broadcast && a.port() != 0
        }
        None => loc.port() != 0,
    }
}

/// Parses one wire locator; `None` for anything that is not a dialable locator.
pub fn parse_locator(s: &str) -> Option<Locator> {
    if s.len() > MAX_LOCATOR_LEN || s.trim() != s {
        return None;
    }
    let loc: Locator = s.parse().ok()?;
    is_dialable(&loc).then_some(loc)
}

fn write_locators(out: &mut Vec<u8>, locators: &[Locator]) {
    cbor::write_array_header(out, locators.len());
    for l in locators {
        cbor::write_text(out, &l.to_string());
    }
}

impl Px1Message {
    /// The canonical CBOR map (keys in byte-wise order), without the length prefix.
    ///
    /// Encoding never fails; [`Px1Message::encode_frame`] checks the limits a receiver
    /// enforces so that we never send what we would refuse.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Px1Message::ResolveReq {
                principal,
                max_results,
            } => {
                cbor::write_map_header(&mut out, 2 + max_results.is_some() as usize);
                if let Some(n) = max_results {
                    cbor::write_text(&mut out, "n");
                    cbor::write_uint(&mut out, *n);
                }
                cbor::write_text(&mut out, "p");
                cbor::write_text(&mut out, &principal.to_string());
                cbor::write_text(&mut out, "t");
                cbor::write_uint(&mut out, types::RESOLVE_REQ);
            }
            Px1Message::ResolveResp { locators } => {
                cbor::write_map_header(&mut out, 2);
                cbor::write_text(&mut out, "l");
                write_locators(&mut out, locators);
                cbor::write_text(&mut out, "t");
                cbor::write_uint(&mut out, types::RESOLVE_RESP);
            }
            Px1Message::Push {
                principal,
                locators,
                ttl_seconds,
            } => {
                cbor::write_map_header(&mut out, 4);
                cbor::write_text(&mut out, "l");
                write_locators(&mut out, locators);
                cbor::write_text(&mut out, "p");
                cbor::write_text(&mut out, &principal.to_string());
                cbor::write_text(&mut out, "t");
                cbor::write_uint(&mut out, types::PUSH);
                cbor::write_text(&mut out, "ttl");
                cbor::write_uint(&mut out, *ttl_seconds);
            }
        }
        out
    }

    /// Appends the framed message (varint length + CBOR).
    pub fn encode_frame(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let locs = match self {
            Px1Message::ResolveReq { .. } => 0,
            Px1Message::ResolveResp { locators } | Px1Message::Push { locators, .. } => {
                locators.len()
            }
        };
        if locs > MAX_LOCATORS_PER_MESSAGE {
            return Err(Error::new(
                ErrorCode::MessageTooLarge,
                format!("{locs} locators exceed the PX-1 limit of {MAX_LOCATORS_PER_MESSAGE}"),
            ));
        }
        let body = self.encode();
        if body.len() > MAX_MESSAGE_LEN {
            return Err(Error::new(
                ErrorCode::MessageTooLarge,
                "PX-1 message exceeds its size limit",
            ));
        }
        frame::write_frame(out, &body);
        Ok(())
    }

    /// Decodes one message occupying all of `bytes` (the payload of one frame).
    pub fn decode(bytes: &[u8]) -> Result<Px1Message, Error> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::new(
                ErrorCode::MessageTooLarge,
                "PX-1 message exceeds its size limit",
            ));
        }
        let v = cbor::decode(bytes).map_err(|e| invalid(format!("PX-1: {e}")))?;
        if v.as_map().is_none() {
            return Err(invalid("PX-1 message is not a map"));
        }
        let t = v
            .get("t")
            .ok_or_else(|| invalid("PX-1 message without a type"))?
            .as_u64()
            .ok_or_else(|| invalid("PX-1 type is not an unsigned integer"))?;
        match t {
            types::RESOLVE_REQ => {
                let max_results =
                    match v.get("n") {
                        None => None,
                        Some(n) => Some(n.as_u64().ok_or_else(|| {
                            invalid("PX-1 max_results is not an unsigned integer")
                        })?),
                    };
                Ok(Px1Message::ResolveReq {
                    principal: principal(&v)?,
                    max_results,
                })
            }
            types::RESOLVE_RESP => Ok(Px1Message::ResolveResp {
                locators: locators(&v)?,
            }),
            types::PUSH => {
                let ttl_seconds = v
                    .get("ttl")
                    .ok_or_else(|| invalid("PX_PUSH without ttl"))?
                    .as_u64()
                    .ok_or_else(|| invalid("PX_PUSH ttl is not an unsigned integer"))?;
                Ok(Px1Message::Push {
                    principal: principal(&v)?,
                    locators: locators(&v)?,
                    ttl_seconds,
                })
            }
            other => Err(Error::new(
                ErrorCode::VersionUnsupported,
                format!("unknown PX-1 message type 0x{other:02x}"),
            )),
        }
    }
}

fn principal(v: &Value<'_>) -> Result<Principal, Error> {
    let text = v
        .get("p")
        .ok_or_else(|| invalid("PX-1 message without a principal"))?
        .as_text()
        .ok_or_else(|| invalid("PX-1 principal is not text"))?;
    Principal::parse(text).map_err(|e| invalid(format!("PX-1 principal: {}", e.message)))
}

fn locators(v: &Value<'_>) -> Result<Vec<Locator>, Error> {
    let items = v
        .get("l")
        .ok_or_else(|| invalid("PX-1 message without locators"))?
        .as_array()
        .ok_or_else(|| invalid("PX-1 locators are not an array"))?;
    if items.len() > MAX_LOCATORS_PER_MESSAGE {
        return Err(Error::new(
            ErrorCode::MessageTooLarge,
            format!(
                "{} locators exceed the PX-1 limit of {MAX_LOCATORS_PER_MESSAGE}",
                items.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let text = item
            .as_text()
            .ok_or_else(|| invalid("PX-1 locator is not text"))?;
        if let Some(loc) = parse_locator(text) {
            if !out.contains(&loc) {
                out.push(loc);
            }
        }
    }
    Ok(out)
}

/// Splits PX-1 messages off a stream's bytes. Memory is bounded by one frame: a hostile
/// length prefix is refused before anything is buffered for it.
#[derive(Default)]
pub struct FrameReader {
    buf: BytesMut,
}

impl FrameReader {
    pub fn new() -> Self {
        FrameReader::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Px1Message>, Error> {
        match frame::next_frame(&mut self.buf, MAX_MESSAGE_LEN)? {
            None => Ok(None),
            Some(payload) => Px1Message::decode(&payload).map(Some),
        }
    }

    /// Bytes received but not yet part of a complete message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}
