//! Control messages: CBOR maps with short text keys and a type code under `t`.
//!
//! Type codes, key names and error numbers are those of the existing TypeScript
//! implementation; additions (AUTH's `sn`/`hs`, WINDOW_UPDATE, REKEY, ALIAS_CARD, KNOCK's
//! `v`/`kn`) are listed in `docs/PROTOCOL.md`. Encoders write keys in byte-wise sorted order
//! by hand (the tests check that against the generic canonical encoder); the decoder borrows
//! byte fields from the decrypted frame, ignores unknown keys and maps an unknown `t` to
//! ERR_VERSION_UNSUPPORTED.

use crate::error::{Error, ErrorCode};
use crate::wire::cbor::{self, Value};

pub mod types {
    pub const HELLO: u64 = 0x01;
    pub const AUTH: u64 = 0x02;
    pub const AUTH_OK: u64 = 0x03;
    pub const AUTH_FAIL: u64 = 0x04;
    pub const OPEN_STREAM: u64 = 0x10;
    pub const CLOSE_STREAM: u64 = 0x11;
    pub const STREAM_DATA: u64 = 0x12;
    pub const WINDOW_UPDATE: u64 = 0x13;
    pub const PING: u64 = 0x20;
    pub const PONG: u64 = 0x21;
    pub const REKEY: u64 = 0x22;
    pub const KNOCK: u64 = 0x30;
    pub const KNOCK_RESPONSE: u64 = 0x31;
    pub const ALIAS_CARD: u64 = 0x40;
    pub const ERROR: u64 = 0xff;
}

/// The only protocol version.
pub const PROTOCOL_VERSION: u64 = 1;

/// Capability names listed in HELLO `cap`.
pub mod caps {
    /// Credit-based per-stream flow control (WINDOW_UPDATE).
    pub const FLOW_CONTROL: &str = "flow-control";
    /// AUTH carries `sn` (nonce echo) and `hs` (ed25519 signature over the handshake hash):
    /// binding 2 of docs/PROTOCOL.md §5.5, not listed by
    /// [`default_capabilities`](crate::unstable::default_capabilities).
    pub const TRANSCRIPT_BINDING: &str = "transcript-binding";
    /// ALIAS_CARD messages after AUTH_OK.
    pub const ALIASES: &str = "aliases";
    /// A PX-1 peer-exchange service on streams labelled `px-1`.
    pub const PX1: &str = "px-1";
    /// Several control messages may share one transport frame.
    pub const BATCH: &str = "batch";
    /// Each side rekeys its sending direction (Noise `Rekey()`), announced by REKEY.
    pub const REKEY: &str = "rekey";
    /// Transport frames after the HELLOs are sealed with AES-256-GCM (docs/PROTOCOL.md
    /// §7.2). Listed by default only where the CPU has AES instructions.
    pub const AES_GCM: &str = "aes-gcm";
}

/// Visibility announced in HELLO `vis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Visibility {
    Public = 0,
    Private = 1,
    Stealth = 2,
}

impl Visibility {
    pub fn from_u64(n: u64) -> Option<Self> {
        match n {
            0 => Some(Visibility::Public),
            1 => Some(Visibility::Private),
            2 => Some(Visibility::Stealth),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Stealth => "stealth",
        }
    }
}

impl std::str::FromStr for Visibility {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "public" => Ok(Visibility::Public),
            "private" => Ok(Visibility::Private),
            "stealth" => Ok(Visibility::Stealth),
            other => Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("unknown visibility '{other}' (public, private or stealth)"),
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello<'a> {
    pub version: u64,
    pub node_pubkey: &'a [u8],
    pub nonce: &'a [u8],
    pub timestamp: i64,
    pub visibility: Option<Visibility>,
    pub capabilities: Vec<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth<'a> {
    /// The encoded NodeKeyAttestation.
    pub attestation: &'a [u8],
    /// Echo of both HELLO nonces: initiator's ‖ responder's (transcript-binding).
    pub session_nonce: &'a [u8],
    /// ed25519 signature over the binding input (transcript-binding).
    pub handshake_sig: &'a [u8],
}

/// A decoded control message, borrowing byte fields from the frame it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Hello(Hello<'a>),
    Auth(Auth<'a>),
    AuthOk {
        principal: &'a str,
        session_id: &'a [u8],
    },
    AuthFail {
        code: ErrorCode,
        reason: Option<&'a str>,
    },
    OpenStream {
        stream_id: u64,
        label: Option<&'a str>,
    },
    CloseStream {
        stream_id: u64,
        code: ErrorCode,
    },
    StreamData {
        stream_id: u64,
        data: &'a [u8],
        fin: bool,
    },
    WindowUpdate {
        stream_id: u64,
        credit: u64,
    },
    Ping {
        seq: u64,
        timestamp: i64,
    },
    Pong {
        seq: u64,
        timestamp: i64,
    },
    /// The last transport frame under the sender's current sending key: its next frame is
    /// sealed under `REKEY(key)`. `n` counts this direction's rekeys from 1.
    Rekey {
        n: u64,
    },
    Knock {
        version: u64,
        nonce: &'a [u8],
        token: &'a [u8],
    },
    KnockResponse {
        accepted: bool,
        /// `h2`: the listener accepts an hs2 offer in the Noise message 1 that follows
        /// (PROTOCOL.md §5.8).
        hs2: bool,
    },
    AliasCard {
        card: &'a [u8],
    },
    Error {
        code: ErrorCode,
        reason: Option<&'a str>,
    },
}

fn invalid(msg: &str) -> Error {
    Error::new(ErrorCode::InvalidMessage, msg.to_string())
}

fn req<'v, 'a>(v: &'v Value<'a>, key: &str) -> Result<&'v Value<'a>, Error> {
    v.get(key)
        .ok_or_else(|| invalid(&format!("missing field '{key}'")))
}

fn req_u64(v: &Value<'_>, key: &str) -> Result<u64, Error> {
    req(v, key)?
        .as_u64()
        .ok_or_else(|| invalid(&format!("field '{key}' is not an unsigned integer")))
}

fn req_i64(v: &Value<'_>, key: &str) -> Result<i64, Error> {
    req(v, key)?
        .as_i64()
        .ok_or_else(|| invalid(&format!("field '{key}' is not an integer")))
}

fn req_bytes<'a>(v: &Value<'a>, key: &str) -> Result<&'a [u8], Error> {
    req(v, key)?
        .as_bytes()
        .ok_or_else(|| invalid(&format!("field '{key}' is not a byte string")))
}

fn req_text<'a>(v: &Value<'a>, key: &str) -> Result<&'a str, Error> {
    req(v, key)?
        .as_text()
        .ok_or_else(|| invalid(&format!("field '{key}' is not a text string")))
}

fn opt_bytes<'a>(v: &Value<'a>, key: &str) -> Result<&'a [u8], Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(x) => x
            .as_bytes()
            .ok_or_else(|| invalid(&format!("field '{key}' is not a byte string"))),
    }
}

fn opt_text<'a>(v: &Value<'a>, key: &str) -> Result<Option<&'a str>, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_text()
            .map(Some)
            .ok_or_else(|| invalid(&format!("field '{key}' is not a text string"))),
    }
}

fn opt_code(v: &Value<'_>, key: &str) -> Result<ErrorCode, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(ErrorCode::Ok),
        Some(x) => x
            .as_u64()
            .map(ErrorCode::from_u64)
            .ok_or_else(|| invalid(&format!("field '{key}' is not an error code"))),
    }
}

fn opt_bool(v: &Value<'_>, key: &str) -> Result<bool, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(x) => x
            .as_bool()
            .ok_or_else(|| invalid(&format!("field '{key}' is not a boolean"))),
    }
}

/// KNOCK's `kn`: absent (the TypeScript reference sends none) or 16 to 32 bytes
/// (PROTOCOL.md §4); any other length is ERR_INVALID_MESSAGE.
fn knock_nonce<'a>(v: &Value<'a>) -> Result<&'a [u8], Error> {
    let present = matches!(v.get("kn"), Some(Value::Bytes(_)));
    let kn = opt_bytes(v, "kn")?;
    if present && !(KNOCK_NONCE_MIN..=KNOCK_NONCE_MAX).contains(&kn.len()) {
        return Err(invalid(&format!(
            "field 'kn' is {} bytes (16 to 32 required)",
            kn.len()
        )));
    }
    Ok(kn)
}

/// The length of Noise XX message 2, which no plaintext AUTH_FAIL may have.
const NOISE_MSG2_LEN: usize = 96;

/// A plaintext AUTH_FAIL{ec, r?} (before Noise), never 96 bytes long: that is the size of
/// Noise message 2, by which a dialer tells the two apart (PROTOCOL.md §5.2), so a reason
/// that would make it 96 bytes loses its last character.
pub fn plaintext_auth_fail(code: ErrorCode, reason: Option<&str>) -> Vec<u8> {
    let msg = Message::AuthFail { code, reason }.to_vec();
    match reason {
        Some(r) if msg.len() == NOISE_MSG2_LEN => {
            let mut cut = r.len() - 1;
            while !r.is_char_boundary(cut) {
                cut -= 1;
            }
            let reason = Some(&r[..cut]).filter(|r| !r.is_empty());
            Message::AuthFail { code, reason }.to_vec()
        }
        _ => msg,
    }
}

/// KNOCK as the TypeScript implementation writes it: `{it, t}` (no `v`, no `kn`), what a
/// dialer in the TypeScript profile sends (PROTOCOL.md §12.1).
pub fn ts_knock(token: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    cbor::write_map_header(&mut out, 2);
    cbor::write_text(&mut out, "it");
    cbor::write_bytes(&mut out, token);
    cbor::write_text(&mut out, "t");
    cbor::write_uint(&mut out, types::KNOCK);
    out
}

/// Bounds of KNOCK's `kn` (bytes).
pub const KNOCK_NONCE_MIN: usize = 16;
pub const KNOCK_NONCE_MAX: usize = 32;

impl<'a> Message<'a> {
    /// Decodes one message from a CBOR item.
    pub fn from_value(v: &Value<'a>) -> Result<Message<'a>, Error> {
        if v.as_map().is_none() {
            return Err(invalid("control message is not a CBOR map"));
        }
        let t = req_u64(v, "t")?;
        Ok(match t {
            types::HELLO => {
                let caps = match v.get("cap") {
                    None => Vec::new(),
                    Some(c) => c
                        .as_array()
                        .ok_or_else(|| invalid("field 'cap' is not an array"))?
                        .iter()
                        .filter_map(|c| c.as_text())
                        .collect(),
                };
                let visibility = match v.get("vis") {
                    None => None,
                    Some(x) => Some(
                        x.as_u64()
                            .and_then(Visibility::from_u64)
                            .ok_or_else(|| invalid("field 'vis' is not 0, 1 or 2"))?,
                    ),
                };
                Message::Hello(Hello {
                    version: req_u64(v, "v")?,
                    node_pubkey: req_bytes(v, "pk")?,
                    nonce: req_bytes(v, "n")?,
                    timestamp: req_i64(v, "ts")?,
                    visibility,
                    capabilities: caps,
                })
            }
            types::AUTH => Message::Auth(Auth {
                attestation: req_bytes(v, "att")?,
                session_nonce: opt_bytes(v, "sn")?,
                handshake_sig: opt_bytes(v, "hs")?,
            }),
            types::AUTH_OK => Message::AuthOk {
                principal: req_text(v, "p")?,
                session_id: req_bytes(v, "sid")?,
            },
            types::AUTH_FAIL => Message::AuthFail {
                code: opt_code(v, "ec")?,
                reason: opt_text(v, "r")?,
            },
            types::OPEN_STREAM => Message::OpenStream {
                stream_id: req_u64(v, "sid")?,
                label: opt_text(v, "l")?,
            },
            types::CLOSE_STREAM => Message::CloseStream {
                stream_id: req_u64(v, "sid")?,
                code: opt_code(v, "ec")?,
            },
            types::STREAM_DATA => Message::StreamData {
                stream_id: req_u64(v, "sid")?,
                data: opt_bytes(v, "d")?,
                fin: opt_bool(v, "f")?,
            },
            types::WINDOW_UPDATE => Message::WindowUpdate {
                stream_id: req_u64(v, "sid")?,
                credit: req_u64(v, "c")?,
            },
            types::PING => Message::Ping {
                seq: req_u64(v, "seq")?,
                timestamp: v.get("ts").and_then(|x| x.as_i64()).unwrap_or(0),
            },
            types::PONG => Message::Pong {
                seq: req_u64(v, "seq")?,
                timestamp: v.get("ts").and_then(|x| x.as_i64()).unwrap_or(0),
            },
            types::REKEY => Message::Rekey {
                n: req_u64(v, "n")?,
            },
            types::KNOCK => Message::Knock {
                version: v
                    .get("v")
                    .and_then(|x| x.as_u64())
                    .unwrap_or(PROTOCOL_VERSION),
                nonce: knock_nonce(v)?,
                token: opt_bytes(v, "it")?,
            },
            types::KNOCK_RESPONSE => Message::KnockResponse {
                accepted: opt_bool(v, "a")?,
                hs2: opt_bool(v, "h2")?,
            },
            types::ALIAS_CARD => Message::AliasCard {
                card: req_bytes(v, "c")?,
            },
            types::ERROR => Message::Error {
                code: opt_code(v, "ec")?,
                reason: opt_text(v, "r")?,
            },
            other => {
                return Err(Error::new(
                    ErrorCode::VersionUnsupported,
                    format!("unknown message type 0x{other:02x}"),
                ))
            }
        })
    }

    /// Decodes exactly one message occupying all of `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Message<'a>, Error> {
        let v = cbor::decode(bytes).map_err(|e| invalid(&e.to_string()))?;
        Message::from_value(&v)
    }

    /// Appends the canonical encoding of this message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use cbor::{write_bool, write_bytes, write_int, write_map_header, write_text, write_uint};
        match self {
            Message::Hello(h) => {
                let n = 6 + h.visibility.is_some() as usize;
                write_map_header(out, n);
                write_text(out, "cap");
                cbor::write_array_header(out, h.capabilities.len());
                for c in &h.capabilities {
                    write_text(out, c);
                }
                write_text(out, "n");
                write_bytes(out, h.nonce);
                write_text(out, "pk");
                write_bytes(out, h.node_pubkey);
                write_text(out, "t");
                write_uint(out, types::HELLO);
                write_text(out, "ts");
                write_int(out, h.timestamp);
                write_text(out, "v");
                write_uint(out, h.version);
                if let Some(vis) = h.visibility {
                    write_text(out, "vis");
                    write_uint(out, vis as u64);
                }
            }
            Message::Auth(a) => {
                let binding = !a.session_nonce.is_empty() || !a.handshake_sig.is_empty();
                write_map_header(out, if binding { 5 } else { 3 });
                write_text(out, "att");
                write_bytes(out, a.attestation);
                write_text(out, "hd");
                write_bytes(out, &[]);
                if binding {
                    write_text(out, "hs");
                    write_bytes(out, a.handshake_sig);
                    write_text(out, "sn");
                    write_bytes(out, a.session_nonce);
                }
                write_text(out, "t");
                write_uint(out, types::AUTH);
            }
            Message::AuthOk {
                principal,
                session_id,
            } => {
                write_map_header(out, 3);
                write_text(out, "p");
                write_text(out, principal);
                write_text(out, "sid");
                write_bytes(out, session_id);
                write_text(out, "t");
                write_uint(out, types::AUTH_OK);
            }
            Message::AuthFail { code, reason } | Message::Error { code, reason } => {
                let t = if matches!(self, Message::AuthFail { .. }) {
                    types::AUTH_FAIL
                } else {
                    types::ERROR
                };
                write_map_header(out, 2 + reason.is_some() as usize);
                write_text(out, "ec");
                write_uint(out, code.as_u64());
                if let Some(r) = reason {
                    write_text(out, "r");
                    write_text(out, r);
                }
                write_text(out, "t");
                write_uint(out, t);
            }
            Message::OpenStream { stream_id, label } => {
                write_map_header(out, 2 + label.is_some() as usize);
                if let Some(l) = label {
                    write_text(out, "l");
                    write_text(out, l);
                }
                write_text(out, "sid");
                write_uint(out, *stream_id);
                write_text(out, "t");
                write_uint(out, types::OPEN_STREAM);
            }
            Message::CloseStream { stream_id, code } => {
                let has_code = *code != ErrorCode::Ok;
                write_map_header(out, 2 + has_code as usize);
                if has_code {
                    write_text(out, "ec");
                    write_uint(out, code.as_u64());
                }
                write_text(out, "sid");
                write_uint(out, *stream_id);
                write_text(out, "t");
                write_uint(out, types::CLOSE_STREAM);
            }
            Message::StreamData {
                stream_id,
                data,
                fin,
            } => {
                encode_stream_data_header(out, *stream_id, data.len(), *fin);
                out.extend_from_slice(data);
                encode_stream_data_trailer(out, *stream_id, *fin);
            }
            Message::WindowUpdate { stream_id, credit } => {
                write_map_header(out, 3);
                write_text(out, "c");
                write_uint(out, *credit);
                write_text(out, "sid");
                write_uint(out, *stream_id);
                write_text(out, "t");
                write_uint(out, types::WINDOW_UPDATE);
            }
            Message::Ping { seq, timestamp } | Message::Pong { seq, timestamp } => {
                let t = if matches!(self, Message::Ping { .. }) {
                    types::PING
                } else {
                    types::PONG
                };
                write_map_header(out, 3);
                write_text(out, "seq");
                write_uint(out, *seq);
                write_text(out, "t");
                write_uint(out, t);
                write_text(out, "ts");
                write_int(out, *timestamp);
            }
            Message::Rekey { n } => {
                write_map_header(out, 2);
                write_text(out, "n");
                write_uint(out, *n);
                write_text(out, "t");
                write_uint(out, types::REKEY);
            }
            Message::Knock {
                version,
                nonce,
                token,
            } => {
                // No `kn` is written absent, not empty (an empty one is invalid, §4).
                write_map_header(out, 3 + !nonce.is_empty() as usize);
                write_text(out, "it");
                write_bytes(out, token);
                if !nonce.is_empty() {
                    write_text(out, "kn");
                    write_bytes(out, nonce);
                }
                write_text(out, "t");
                write_uint(out, types::KNOCK);
                write_text(out, "v");
                write_uint(out, *version);
            }
            Message::KnockResponse { accepted, hs2 } => {
                write_map_header(out, 2 + usize::from(*hs2));
                write_text(out, "a");
                write_bool(out, *accepted);
                if *hs2 {
                    write_text(out, "h2");
                    write_bool(out, true);
                }
                write_text(out, "t");
                write_uint(out, types::KNOCK_RESPONSE);
            }
            Message::AliasCard { card } => {
                write_map_header(out, 2);
                write_text(out, "c");
                write_bytes(out, card);
                write_text(out, "t");
                write_uint(out, types::ALIAS_CARD);
            }
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        // Sized up front: from empty, a HELLO grew its buffer four times and an AUTH (its
        // attestation, ~340 bytes) seven.
        let mut out = Vec::with_capacity(match self {
            Message::Auth(a) => {
                64 + a.attestation.len() + a.session_nonce.len() + a.handshake_sig.len()
            }
            _ => 128,
        });
        self.encode(&mut out);
        out
    }
}

/// STREAM_DATA is written as header ‖ data ‖ trailer so the data path copies the payload
/// once, straight into the plaintext buffer. Keys in order: `d`, `f`?, `sid`, `t`.
pub fn encode_stream_data_header(out: &mut Vec<u8>, _stream_id: u64, len: usize, fin: bool) {
    cbor::write_map_header(out, 3 + fin as usize);
    cbor::write_text(out, "d");
    cbor::write_bytes_header(out, len);
}

pub fn encode_stream_data_trailer(out: &mut Vec<u8>, stream_id: u64, fin: bool) {
    if fin {
        cbor::write_text(out, "f");
        cbor::write_bool(out, true);
    }
    cbor::write_text(out, "sid");
    cbor::write_uint(out, stream_id);
    cbor::write_text(out, "t");
    cbor::write_uint(out, types::STREAM_DATA);
}

/// Encoded size of a STREAM_DATA message around `len` payload bytes.
pub fn stream_data_overhead(stream_id: u64, len: usize, fin: bool) -> usize {
    1 + 2
        + cbor::head_len(len as u64)
        + if fin { 3 } else { 0 }
        + 4
        + cbor::head_len(stream_id)
        + 2
        + 1
}

/// Decodes the sequence of messages packed in one transport frame (capability `batch`;
/// a peer without it sends exactly one message per frame, which is the same thing).
pub fn decode_batch<'a>(
    mut bytes: &'a [u8],
    mut each: impl FnMut(Message<'a>) -> Result<(), Error>,
) -> Result<(), Error> {
    if bytes.is_empty() {
        return Err(invalid("empty transport frame"));
    }
    while !bytes.is_empty() {
        let (v, used) = cbor::decode_prefix(bytes).map_err(|e| invalid(&e.to_string()))?;
        each(Message::from_value(&v)?)?;
        bytes = &bytes[used..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Message<'static>> {
        vec![
            Message::Hello(Hello {
                version: 1,
                node_pubkey: &[1; 32],
                nonce: &[2; 32],
                timestamp: 1_700_000_000,
                visibility: Some(Visibility::Private),
                capabilities: vec!["flow-control", "px-1"],
            }),
            Message::Auth(Auth {
                attestation: &[9; 40],
                session_nonce: &[3; 64],
                handshake_sig: &[4; 64],
            }),
            Message::AuthOk {
                principal: "stacks:SP000000000000000000002Q6VF78",
                session_id: &[5; 32],
            },
            Message::AuthFail {
                code: ErrorCode::NotAllowed,
                reason: Some("no"),
            },
            Message::OpenStream {
                stream_id: 4,
                label: Some("chat"),
            },
            Message::OpenStream {
                stream_id: 1 << 40,
                label: None,
            },
            Message::CloseStream {
                stream_id: 3,
                code: ErrorCode::StreamRefused,
            },
            Message::CloseStream {
                stream_id: 3,
                code: ErrorCode::Ok,
            },
            Message::StreamData {
                stream_id: 2,
                data: b"hello",
                fin: false,
            },
            Message::StreamData {
                stream_id: 2,
                data: b"",
                fin: true,
            },
            Message::WindowUpdate {
                stream_id: 7,
                credit: 262144,
            },
            Message::Ping {
                seq: 1,
                timestamp: 5,
            },
            Message::Pong {
                seq: 1,
                timestamp: 5,
            },
            Message::Knock {
                version: 1,
                nonce: &[6; 16],
                token: &[7; 32],
            },
            Message::KnockResponse {
                accepted: true,
                hs2: false,
            },
            Message::KnockResponse {
                accepted: true,
                hs2: true,
            },
            Message::Rekey { n: 1 },
            Message::Rekey { n: 1 << 40 },
            Message::AliasCard { card: &[8; 10] },
            Message::Error {
                code: ErrorCode::Ok,
                reason: None,
            },
        ]
    }

    #[test]
    fn encodings_round_trip_and_are_canonical() {
        for m in samples() {
            let bytes = m.to_vec();
            let back = Message::decode(&bytes).unwrap();
            assert_eq!(back, m);
            // The hand-written key order equals the generic canonical encoder's.
            let v = cbor::decode(&bytes).unwrap();
            assert_eq!(cbor::to_vec(&v), bytes, "{m:?} not canonical");
        }
    }

    #[test]
    fn stream_data_overhead_is_exact() {
        for (sid, len, fin) in [(0, 0, false), (2, 5, true), (1 << 33, 65000, false)] {
            let data = vec![0u8; len];
            let m = Message::StreamData {
                stream_id: sid,
                data: &data,
                fin,
            };
            assert_eq!(m.to_vec().len(), len + stream_data_overhead(sid, len, fin));
        }
    }

    #[test]
    fn unknown_type_is_version_unsupported() {
        let v = Value::Map(vec![("t", Value::Uint(0x77))]);
        let bytes = cbor::to_vec(&v);
        assert_eq!(
            Message::decode(&bytes).unwrap_err().code,
            ErrorCode::VersionUnsupported
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let v = Value::Map(vec![
            ("t", Value::Uint(types::PING)),
            ("seq", Value::Uint(9)),
            ("zz", Value::Text("future")),
        ]);
        let bytes = cbor::to_vec(&v);
        assert_eq!(
            Message::decode(&bytes).unwrap(),
            Message::Ping {
                seq: 9,
                timestamp: 0
            }
        );
    }

    #[test]
    fn wrong_types_are_invalid_message() {
        let v = Value::Map(vec![
            ("t", Value::Uint(types::OPEN_STREAM)),
            ("sid", Value::Text("x")),
        ]);
        assert_eq!(
            Message::decode(&cbor::to_vec(&v)).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            Message::decode(&[0x01]).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
    }
}
