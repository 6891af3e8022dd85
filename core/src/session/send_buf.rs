//! A stream's send buffer: bytes the application queued and the session has not framed yet.
//!
//! Borrowed writes (`&[u8]`) are copied into a tail buffer, which coalesces small writes.
//! Owned writes ([`Bytes`]) are queued as they are, without a copy: a binding that already
//! holds the caller's buffer (a Python `bytes`, a `Vec` lowered across uniffi) hands it
//! over, and the only copy left on the way out is the one into the frame being sealed.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// An owned write at most this long is copied into the tail anyway: a queue entry per
/// tiny write would cost more than the copy, and small writes are coalesced either way.
const COPY_OWNED_BELOW: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct SendBuf {
    /// Queued before `tail`, oldest first; none is empty.
    chunks: VecDeque<Bytes>,
    /// Copied writes queued after every chunk.
    tail: BytesMut,
    len: usize,
}

impl SendBuf {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a copy of `data`.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.tail.extend_from_slice(data);
        self.len += data.len();
    }

    /// Queues `data` itself.
    pub fn push(&mut self, data: Bytes) {
        if data.len() < COPY_OWNED_BELOW {
            return self.extend_from_slice(&data);
        }
        if !self.tail.is_empty() {
            // Keeps order: what was copied before `data` goes out before it.
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.len += data.len();
        self.chunks.push_back(data);
    }

    /// Moves the first `n` queued bytes (at most [`SendBuf::len`]) to the end of `out`.
    pub fn move_to(&mut self, out: &mut Vec<u8>, mut n: usize) {
        debug_assert!(n <= self.len);
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                out.extend_from_slice(&self.tail[..n]);
                self.tail.advance(n);
                return;
            };
            let k = n.min(front.len());
            out.extend_from_slice(&front[..k]);
            front.advance(k);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            n -= k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(b: &mut SendBuf, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let n = step.min(b.len());
            b.move_to(&mut out, n);
        }
        out
    }

    #[test]
    fn owned_and_copied_writes_go_out_in_the_order_they_were_queued() {
        let mut b = SendBuf::default();
        let mut want = Vec::new();
        let big = |seed: u8| -> Vec<u8> { (0..10_000u32).map(|i| (i as u8) ^ seed).collect() };
        b.extend_from_slice(b"abc");
        want.extend_from_slice(b"abc");
        b.push(Bytes::from(big(1)));
        want.extend_from_slice(&big(1));
        b.push(Bytes::from_static(b"tiny owned"));
        want.extend_from_slice(b"tiny owned");
        b.push(Bytes::from(big(2)));
        want.extend_from_slice(&big(2));
        b.extend_from_slice(b"xyz");
        want.extend_from_slice(b"xyz");
        assert_eq!(b.len(), want.len());
        for step in [1, 7, 4096, 65_536] {
            let mut c = SendBuf::default();
            c.extend_from_slice(b"abc");
            c.push(Bytes::from(big(1)));
            c.push(Bytes::from_static(b"tiny owned"));
            c.push(Bytes::from(big(2)));
            c.extend_from_slice(b"xyz");
            assert_eq!(drain(&mut c, step), want, "step {step}");
            assert_eq!(c.len(), 0);
        }
        assert_eq!(drain(&mut b, 3000), want);
    }

    #[test]
    fn an_owned_write_is_not_copied_into_the_tail() {
        let mut b = SendBuf::default();
        let data = Bytes::from(vec![5u8; 64 * 1024]);
        let ptr = data.as_ptr();
        b.push(data);
        assert_eq!(b.chunks.len(), 1);
        assert_eq!(b.chunks[0].as_ptr(), ptr);
        assert!(b.tail.is_empty());
    }
}
