//! The session-wide send buffer (`SessionLimits::session_send_buffer`): how many queued
//! bytes count against it, and the first-come-first-served queue of writers waiting for
//! room in it. Sans-IO state owned by the session machine; the machine calls in with the
//! stream a write concerns, so the write path looks its stream up once.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use web_time::Instant;

use super::event::Event;
use super::stream_state::StreamState;

/// Room one woken writer is expected to take (one typical write).
const ROOM_OFFER: usize = 64 * 1024;

/// How long room offered to a woken writer stays reserved for it (a writer whose task gave
/// up the write never takes it).
const OFFER_LAPSE: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
pub(crate) struct SendRoom {
    /// Σ counted send bytes over live streams (`StreamState::counted_send`).
    queued: usize,
    /// Streams whose writer waits for room, oldest first.
    waiters: VecDeque<u64>,
    /// Room offered to woken writers that have not written yet.
    offered: usize,
    /// When the oldest offer not yet taken up was made.
    offers_since: Option<Instant>,
}

impl SendRoom {
    /// Gives back the waiter queue's capacity when it is empty (idle sessions).
    pub fn release_idle(&mut self) {
        use super::release::ReleaseIfEmpty;
        self.waiters.release_if_empty();
    }

    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// What a write on stream `id` may take, given `room` in its own send buffer and a
    /// session bound `cap` (0: none). A stream that must wait joins the queue.
    pub fn admit(&mut self, id: u64, s: &mut StreamState, room: usize, cap: usize) -> usize {
        if room == 0 || cap == 0 {
            return room;
        }
        let credited = s.send_credit().saturating_sub(s.send_buf.len() as u64);
        if credited == 0 {
            // Everything written now waits for the reader's credit: nothing counted.
            return room;
        }
        let session_room = cap.saturating_sub(self.queued);
        // Room offered to woken writers is theirs; a writer that was not offered any
        // waits behind the queue (first come, first served).
        let free = if s.send_room_offered {
            session_room
        } else if self.waiters.is_empty() {
            session_room.saturating_sub(self.offered)
        } else {
            0
        };
        if free > 0 {
            // Bytes beyond the credit do not count: all of them may go in once the
            // counted part fits.
            return if credited <= free as u64 {
                room
            } else {
                room.min(free)
            };
        }
        if std::mem::take(&mut s.send_room_offered) {
            // Woken, but the room went to others: first in line again.
            s.waits_for_session_room = true;
            self.waiters.push_front(id);
            self.settle_offer();
        } else if !s.waits_for_session_room {
            s.waits_for_session_room = true;
            self.waiters.push_back(id);
        }
        0
    }

    /// After bytes were queued on `s`: its offer (if any) is taken up, and they count.
    pub fn wrote(&mut self, s: &mut StreamState) {
        if std::mem::take(&mut s.send_room_offered) {
            self.settle_offer();
        }
        self.recount(s);
    }

    /// Brings the counted bytes up to date with `s` (after its buffer, credit or state
    /// changed).
    pub fn recount(&mut self, s: &mut StreamState) {
        let now = s.counted_send();
        self.queued = self.queued + now - s.send_counted;
        s.send_counted = now;
    }

    /// `s` is gone from the session: what it counted and any offer it held go with it.
    pub fn forget(&mut self, s: &StreamState) {
        self.queued -= s.send_counted;
        if s.send_room_offered {
            self.settle_offer();
        }
    }

    /// Wakes waiting writers, oldest first, once the buffer is at most half full (as for a
    /// stream's own buffer: a writer then refills several writes' worth per wake-up),
    /// offering about one write's worth of room each.
    pub fn offer(
        &mut self,
        streams: &mut HashMap<u64, StreamState>,
        cap: usize,
        now: Instant,
        events: &mut VecDeque<Event>,
    ) {
        if self.waiters.is_empty() || cap == 0 || self.queued > cap / 2 {
            return;
        }
        let room = cap - self.queued;
        while self.offered < room {
            let Some(id) = self.waiters.pop_front() else {
                break;
            };
            let Some(s) = streams.get_mut(&id) else {
                continue;
            };
            s.waits_for_session_room = false;
            if s.send_room_offered || s.is_reset() {
                continue;
            }
            s.send_room_offered = true;
            if self.offered == 0 {
                self.offers_since = Some(now);
            }
            self.offered += ROOM_OFFER;
            events.push_back(Event::StreamWritable(id));
        }
    }

    /// When untaken offers lapse, if they can stall the queue: only with nothing counted
    /// (while bytes are queued, each drain moves the queue).
    pub fn deadline(&self) -> Option<Instant> {
        if self.queued == 0 && !self.waiters.is_empty() {
            self.offers_since.map(|t| t + OFFER_LAPSE)
        } else {
            None
        }
    }

    /// Forgets offers older than the lapse; true if any lapsed (offer again then).
    pub fn lapse_expired(&mut self, streams: &mut HashMap<u64, StreamState>, now: Instant) -> bool {
        if self.offers_since.is_none_or(|t| now < t + OFFER_LAPSE) {
            return false;
        }
        self.offered = 0;
        self.offers_since = None;
        for s in streams.values_mut() {
            s.send_room_offered = false;
        }
        true
    }

    /// One woken writer took (or gave up) its offer.
    fn settle_offer(&mut self) {
        self.offered = self.offered.saturating_sub(ROOM_OFFER);
        if self.offered == 0 {
            self.offers_since = None;
        }
    }
}
