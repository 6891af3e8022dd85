//! The dialer's half of a RELAY-1 circuit (docs/PROTOCOL.md §32.2, §32.3), sans-IO: the
//! CONNECT it sends on a `relay-1` stream of its session with the relay, and what the
//! relay's STATUS answer means. The tokio relay client ([`super::Relay`]) and the browser
//! build (browser/, which drives it over the page's WebSocket) both use it, so the two
//! read the answer the same way.

use std::net::SocketAddr;

use super::codec::{MessageReader, RelayMessage, SpliceToken};
use crate::error::{Error, ErrorCode};
use crate::identity::Principal;

/// A relay's yes to CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitGrant {
    /// Our address as the relay sees it (a hole-punch candidate).
    pub observed: Option<SocketAddr>,
    /// Spliced (§32.3): open a new connection to the relay whose first frame is
    /// [`super::codec::encode_splice`] of this token and run the end-to-end session on it
    /// (the `relay-1` stream is then finished). None: the session runs on the stream.
    pub splice: Option<SpliceToken>,
}

/// What the relay's answer to CONNECT means: a grant, the relay's refusal code (its
/// STATUS code, e.g. ERR_STREAM_REFUSED when the target holds no reservation), or
/// ERR_INVALID_MESSAGE for anything else (the stream ended, another message). A splice
/// token is taken only when one was asked for (`splice_asked`).
pub fn connect_answer(
    relay: &str,
    answer: Option<RelayMessage>,
    splice_asked: bool,
) -> Result<CircuitGrant, Error> {
    match answer {
        Some(RelayMessage::Status {
            code: 0,
            observed,
            splice,
        }) => Ok(CircuitGrant {
            observed,
            splice: splice.filter(|_| splice_asked),
        }),
        Some(RelayMessage::Status { code, .. }) => Err(Error::new(
            ErrorCode::from_u64(code),
            format!("relay {relay} refused the circuit"),
        )),
        _ => Err(Error::new(
            ErrorCode::InvalidMessage,
            "the relay answered CONNECT with something else",
        )),
    }
}

/// One circuit request from the dialer's side: [`Self::request`] goes out on a fresh
/// `relay-1` stream, the stream's bytes come back through [`Self::push`] (read at most
/// [`Self::wanted`] at a time: what follows the answer is the circuit's) until it yields
/// the grant or the error.
#[derive(Debug)]
pub struct CircuitDial {
    relay: String,
    target: Principal,
    splice: bool,
    reader: MessageReader,
}

impl CircuitDial {
    /// A request for a circuit to `target` through the relay named `relay` (for error
    /// texts); `splice`: a spliced circuit will do.
    pub fn new(relay: &str, target: Principal, splice: bool) -> Self {
        CircuitDial {
            relay: relay.to_string(),
            target,
            splice,
            reader: MessageReader::new(),
        }
    }

    /// The framed CONNECT.
    pub fn request(&self) -> Vec<u8> {
        RelayMessage::Connect {
            target: self.target.clone(),
            splice: self.splice,
        }
        .encode_frame()
    }

    pub fn target(&self) -> &Principal {
        &self.target
    }

    /// How many bytes of the stream may be read next.
    pub fn wanted(&self) -> usize {
        self.reader.wanted()
    }

    /// Bytes read from the stream; `Ok(Some(grant))` once the answer is complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<CircuitGrant>, Error> {
        match self.reader.push(bytes)? {
            None => Ok(None),
            Some(m) => connect_answer(&self.relay, Some(m), self.splice).map(Some),
        }
    }

    /// The stream ended before the answer was complete: the error to report.
    pub fn end(&self) -> Error {
        match self.reader.end() {
            Err(e) => e,
            Ok(_) => connect_answer(&self.relay, None, self.splice)
                .expect_err("no answer is never a grant"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::codec::encode_splice;

    fn target() -> Principal {
        "stacks:SP21S6DAZN9ZS8EH8NVV2T0HVJ2K7VMKMSCW0596V"
            .parse()
            .unwrap()
    }

    /// Feeds `bytes` the way a careful reader does: at most `wanted()` at a time.
    fn feed(d: &mut CircuitDial, mut bytes: &[u8]) -> (Result<Option<CircuitGrant>, Error>, usize) {
        loop {
            let n = d.wanted().min(bytes.len());
            let r = d.push(&bytes[..n]);
            bytes = &bytes[n..];
            if !matches!(r, Ok(None)) || bytes.is_empty() {
                return (r, bytes.len());
            }
        }
    }

    #[test]
    fn request_grant_refusal_and_garbage() {
        let mut d = CircuitDial::new("ws://relay", target(), true);
        assert_eq!(
            RelayMessage::decode(&d.request()[1..]).unwrap(),
            RelayMessage::Connect {
                target: target(),
                splice: true
            }
        );
        // A spliced grant, and the circuit's first bytes after it stay unread.
        let mut wire = RelayMessage::Status {
            code: 0,
            observed: Some("198.51.100.2:7000".parse().unwrap()),
            splice: Some([5; 16]),
        }
        .encode_frame();
        wire.extend_from_slice(b"session bytes");
        let (r, left) = feed(&mut d, &wire);
        assert_eq!(
            r.unwrap().unwrap(),
            CircuitGrant {
                observed: Some("198.51.100.2:7000".parse().unwrap()),
                splice: Some([5; 16])
            }
        );
        assert_eq!(left, b"session bytes".len());
        // Not asked to splice: a token is ignored, the circuit stays on the stream.
        let mut d = CircuitDial::new("ws://relay", target(), false);
        let ok = RelayMessage::Status {
            code: 0,
            observed: None,
            splice: Some([5; 16]),
        };
        assert_eq!(
            feed(&mut d, &ok.encode_frame()).0.unwrap().unwrap().splice,
            None
        );
        // The relay's refusal carries its code (20: the target holds no reservation).
        let mut d = CircuitDial::new("ws://relay", target(), true);
        let no = RelayMessage::Status {
            code: ErrorCode::StreamRefused.as_u64(),
            observed: None,
            splice: None,
        };
        assert_eq!(
            feed(&mut d, &no.encode_frame()).0.unwrap_err().code,
            ErrorCode::StreamRefused
        );
        // Another message, a cut-off answer, nothing at all, an oversized length.
        let mut d = CircuitDial::new("ws://relay", target(), true);
        assert_eq!(
            feed(&mut d, &RelayMessage::Reserve.encode_frame())
                .0
                .unwrap_err()
                .code,
            ErrorCode::InvalidMessage
        );
        let mut d = CircuitDial::new("ws://relay", target(), true);
        assert!(feed(&mut d, &no.encode_frame()[..4]).0.unwrap().is_none());
        assert_eq!(d.end().code, ErrorCode::InvalidMessage);
        assert_eq!(
            CircuitDial::new("r", target(), true).end().code,
            ErrorCode::InvalidMessage
        );
        let mut d = CircuitDial::new("ws://relay", target(), true);
        assert_eq!(
            feed(&mut d, &[0x80, 0x04]).0.unwrap_err().code,
            ErrorCode::MessageTooLarge
        );
        // More than wanted is the caller's bug, reported, not a panic.
        let mut d = CircuitDial::new("ws://relay", target(), true);
        assert_eq!(
            d.push(&encode_splice(&[1; 16])).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
}
