//! Idle sessions keep no spare capacity: what each `release_idle` (driver, shared state,
//! machine, stream table) does to its empty containers, written once.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use bytes::BytesMut;

/// An empty container gives its allocation back (a busy session re-grows it: a few
/// allocations per driver poll, against 64 KiB or more of data moved by one).
pub(crate) trait ReleaseIfEmpty {
    fn release_if_empty(&mut self);
}

impl<T> ReleaseIfEmpty for Vec<T> {
    fn release_if_empty(&mut self) {
        if self.is_empty() && self.capacity() > 0 {
            *self = Vec::new();
        }
    }
}

impl<T> ReleaseIfEmpty for VecDeque<T> {
    fn release_if_empty(&mut self) {
        if self.is_empty() && self.capacity() > 0 {
            *self = VecDeque::new();
        }
    }
}

impl<K, V, S: BuildHasher + Default> ReleaseIfEmpty for HashMap<K, V, S> {
    fn release_if_empty(&mut self) {
        if self.is_empty() && self.capacity() > 0 {
            *self = HashMap::default();
        }
    }
}

impl ReleaseIfEmpty for BytesMut {
    fn release_if_empty(&mut self) {
        // Not `capacity() > 0`: a buffer whose every byte was split off has no capacity
        // left but still holds its share of the allocation it was split from (the driver's
        // read buffer after the last handshake message: 35 bytes per idle session,
        // 2026-12-07).
        if self.is_empty() {
            *self = BytesMut::new();
        }
    }
}
