//! Length-prefixed framing: an unsigned LEB128 varint length, then that many bytes.
//!
//! The same framing carries plaintext KNOCK frames, the three Noise handshake messages and
//! every encrypted transport message. The decoder checks the announced length against the
//! limit of the current phase *before* buffering the payload, so a hostile prefix never
//! makes memory grow past the limit.

use bytes::{Buf, BytesMut};

use crate::error::{Error, ErrorCode};

/// A varint longer than this many bytes is rejected (the reference's rule; 4 bytes already
/// describe 256 MiB, far above any frame limit).
pub const MAX_VARINT_LEN: usize = 4;

/// Largest frame before the handshake completes (KNOCK, KNOCK_RESPONSE, AUTH_FAIL and the
/// three Noise messages are all far smaller). Scanners get no bigger buffer than this.
pub const MAX_PREAUTH_FRAME: usize = 1024;

/// Largest frame after the handshake: one Noise transport message.
pub const MAX_TRANSPORT_FRAME: usize = 65535;

/// Most [`next_frame`] reserves ahead of the bytes received for one incomplete frame:
/// more than any standard frame (65,535 + prefix), so those get one allocation as before.
pub const RESERVE_AHEAD: usize = 128 * 1024;

/// Appends `n` as an unsigned LEB128 varint.
pub fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Number of bytes [`write_varint`] produces.
pub fn varint_len(n: u64) -> usize {
    let bits = 64 - (n | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Result of reading a varint from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Varint {
    /// Value and bytes used.
    Complete(u64, usize),
    /// More bytes are needed.
    Incomplete,
}

/// Reads a varint of at most [`MAX_VARINT_LEN`] bytes.
pub fn read_varint(buf: &[u8]) -> Result<Varint, Error> {
    let mut value: u64 = 0;
    for (i, &b) in buf.iter().enumerate() {
        if i >= MAX_VARINT_LEN {
            break;
        }
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(Error::new(
                    ErrorCode::InvalidMessage,
                    "non-minimal varint length prefix",
                ));
            }
            return Ok(Varint::Complete(value, i + 1));
        }
    }
    if buf.len() >= MAX_VARINT_LEN {
        return Err(Error::new(
            ErrorCode::MessageTooLarge,
            "length prefix longer than 4 bytes",
        ));
    }
    Ok(Varint::Incomplete)
}

/// Splits complete frames off the front of a receive buffer.
///
/// Returns `Ok(None)` when more bytes are needed; the caller keeps the buffer. Never
/// reserves more than `limit` bytes on account of a length prefix.
pub fn next_frame(buf: &mut BytesMut, limit: usize) -> Result<Option<BytesMut>, Error> {
    let (len, used) = match read_varint(buf)? {
        Varint::Incomplete => return Ok(None),
        Varint::Complete(len, used) => (len, used),
    };
    if len > limit as u64 {
        return Err(Error::new(
            ErrorCode::MessageTooLarge,
            format!("frame of {len} bytes exceeds the limit of {limit}"),
        ));
    }
    let len = len as usize;
    if buf.len() < used + len {
        // Reserve for the rest of this frame only (bounded by the limit checked above),
        // and at most RESERVE_AHEAD at a time: memory follows the bytes that actually
        // arrive, so a prefix announcing a 16 MiB frame (TypeScript profile) followed by
        // nothing costs no more than a small frame would.
        buf.reserve((used + len - buf.len()).min(RESERVE_AHEAD));
        return Ok(None);
    }
    buf.advance(used);
    Ok(Some(buf.split_to(len)))
}

/// Appends one frame (prefix + payload).
pub fn write_frame(out: &mut Vec<u8>, payload: &[u8]) {
    write_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for n in [0u64, 1, 127, 128, 300, 16383, 16384, 65535, (1 << 28) - 1] {
            let mut out = vec![];
            write_varint(&mut out, n);
            assert_eq!(out.len(), varint_len(n));
            assert_eq!(read_varint(&out).unwrap(), Varint::Complete(n, out.len()));
        }
    }

    #[test]
    fn oversized_prefix_rejected_without_allocating() {
        // 4-byte varint announcing 256 MiB - 1.
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0x7f][..]);
        let err = next_frame(&mut buf, MAX_TRANSPORT_FRAME).unwrap_err();
        assert_eq!(err.code, ErrorCode::MessageTooLarge);
        assert!(buf.capacity() < 1024);
        // Five-byte varint.
        let mut buf = BytesMut::from(&[0x80, 0x80, 0x80, 0x80, 0x01][..]);
        assert_eq!(
            next_frame(&mut buf, MAX_TRANSPORT_FRAME).unwrap_err().code,
            ErrorCode::MessageTooLarge
        );
        // Non-minimal.
        let mut buf = BytesMut::from(&[0x81, 0x00][..]);
        assert_eq!(
            next_frame(&mut buf, MAX_TRANSPORT_FRAME).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
    }

    /// A frame announced at 16 MiB (allowed by the TypeScript profile's limit) reserves at
    /// most RESERVE_AHEAD until its bytes arrive.
    #[test]
    fn large_announced_frame_reserves_only_ahead() {
        let limit = 16 * 1024 * 1024;
        let mut buf = BytesMut::new();
        write_varint_into(&mut buf, limit as u64);
        buf.extend_from_slice(&[1, 2, 3]);
        assert!(next_frame(&mut buf, limit).unwrap().is_none());
        assert!(buf.capacity() <= RESERVE_AHEAD + 64, "{}", buf.capacity());
    }

    fn write_varint_into(buf: &mut BytesMut, n: u64) {
        let mut v = vec![];
        write_varint(&mut v, n);
        buf.extend_from_slice(&v);
    }

    #[test]
    fn frames_split_across_reads() {
        let mut wire = vec![];
        write_frame(&mut wire, b"hello");
        write_frame(&mut wire, &[7u8; 300]);
        let mut buf = BytesMut::new();
        let mut got = vec![];
        for b in wire {
            buf.extend_from_slice(&[b]);
            while let Some(f) = next_frame(&mut buf, 1024).unwrap() {
                got.push(f.to_vec());
            }
        }
        assert_eq!(got, vec![b"hello".to_vec(), vec![7u8; 300]]);
    }
}
