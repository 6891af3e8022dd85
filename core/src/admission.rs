//! Admission control: which inbound connections get a handshake, decided by what they
//! have sent. The accept loop of `peer.rs` runs every inbound byte stream of every
//! transport through it, before any Noise work, so there is one implementation of these
//! rules, not one per transport.
//!
//! Two tables, both per source (an IPv4 address, or an IPv6 /64: [`source_of`]):
//! - **Waiting**: accepted, the transport's own setup (WebSocket upgrade, TLS) under way or
//!   done, no byte read yet. Cheap (a socket and a parked task), bounded at four times the
//!   handshake table; over a bound, the oldest waiting connection of the source (or of all,
//!   when the total is what is full) is dropped, unless its task then finds a complete
//!   frame already in its socket: that connection has said something, and is judged by it.
//! - **Handshakes**: the connection has sent its first bytes. At most `max_pending`
//!   at once and `max_per_source` per source. When the newcomer's source share or the
//!   table is full, the stalest *stalled* handshake is evicted to make room (of the
//!   newcomer's own source when its share is what is full): one whose bytes so far are not
//!   one complete frame, or one with no new complete frame for [`STALLED_AFTER`]; fewest
//!   frames first, then oldest progress. A handshake making progress is never evicted;
//!   when nothing is stalled the newcomer waits for a slot to free, at most [`ADMIT_WAIT`],
//!   then is refused (ERR_RESOURCE_EXHAUSTED) and the dialer retries.
//!
//! Why judge by the first bytes, not by arrival: a slowloris that reopens each connection
//! the moment it is cut kept every slot of a first-come-first-served table and honest
//! peers were refused for as long as it ran (issue 35: 10 of 10 honest dials refused over
//! 150 s by ~600 stalled connections from one address). Per-source shares stop that for
//! other addresses, but not for an invitee behind the attacker's own address (a NAT): a
//! flood reconnecting ~10,000 times a second turns a 16-slot share over every ~2 ms, and
//! an arrival-ordered table evicted the invitee before its driver had read the KNOCK that
//! was already in its socket (28 of 50 such dials failed in the KNOCK flood test). An
//! invitee's first read holds a complete frame; a slowloris's does not.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Buf;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ErrorCode;
use crate::policy::source_of;
use crate::session::HandshakeProgress;
use crate::transport::Io;
use crate::wire::frame::{self, Varint, MAX_PREAUTH_FRAME};

/// A handshake whose last complete frame is older than this may be evicted for a
/// newcomer even though it has made progress before. An honest handshake waits one round
/// trip per step; 1 s is several round trips on anything but a satellite link, and the
/// step deadline (`SessionLimits::handshake_step_timeout`, 3 s) ends it anyway.
pub(crate) const STALLED_AFTER: Duration = Duration::from_secs(1);

/// Connections waiting for their first bytes, per handshake slot (the whole table) and per
/// handshake slot of a source's share. A waiting connection costs a socket and a parked
/// task; the bound per source is what an invitee's first read must beat when its address
/// floods: at ~15,000 connections a second, 256 waiting turn over in ~17 ms (64 turned over
/// in ~4 ms, and 4 of 50 invitees behind a slowloris were dropped unread).
const WAITING_PER_SLOT: usize = 4;

/// How long a connection whose first bytes found no handshake slot waits for one to free
/// before it is refused. Why wait at all: a peer that ends a session and dials again at
/// once reaches the listener before the listener has read the old session's last message
/// (its AUTH_OK) about one time in a hundred at 16 dials in flight from one address, so its
/// source briefly holds one handshake over its share; refused, the dialer came back after
/// its 25–50 ms back-off (`RetryBackoff`), and the 99th percentile of connect-to-session
/// time at 16 in flight was 35–47 ms against a median of 4 (`snap2p-bench connect`, docs/
/// BENCHMARKS.md). The old handshake ends within a round trip; the newcomer waits in the
/// waiting table (bounded, and dropped first when its source floods), no work is done for
/// it, and at most this long, no longer than the dialer's shortest back-off.
const ADMIT_WAIT: Duration = Duration::from_millis(25);
const WAITING_PER_SOURCE_SLOT: usize = 16;

/// The tables' sizes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdmissionLimits {
    pub max_pending: usize,
    pub max_per_source: usize,
}

/// The connections in admission of one peer (all its listeners).
pub(crate) struct Admission {
    limits: AdmissionLimits,
    table: Mutex<Tables>,
    /// Notified whenever a handshake slot frees (a [`Ticket`] dropped): newcomers waiting
    /// for one ([`ADMIT_WAIT`]) ask again.
    freed: tokio::sync::Notify,
}

#[derive(Default)]
struct Tables {
    next_id: u64,
    waiting: Table,
    handshakes: Table,
}

impl Tables {
    /// A new place in either table, under a fresh id.
    fn slot(
        &mut self,
        source: IpAddr,
        since: Instant,
        progress: Arc<HandshakeProgress>,
    ) -> Arc<Slot> {
        let id = self.next_id;
        self.next_id += 1;
        Arc::new(Slot {
            id,
            source,
            since,
            progress,
            evicted: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        })
    }
}

#[derive(Default)]
struct Table {
    slots: HashMap<u64, Arc<Slot>>,
    per_source: HashMap<IpAddr, usize>,
}

impl Table {
    fn insert(&mut self, slot: Arc<Slot>) {
        *self.per_source.entry(slot.source).or_insert(0) += 1;
        self.slots.insert(slot.id, slot);
    }

    fn remove(&mut self, id: u64) -> Option<Arc<Slot>> {
        let slot = self.slots.remove(&id)?;
        if let Some(n) = self.per_source.get_mut(&slot.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&slot.source);
            }
        }
        Some(slot)
    }

    fn share(&self, source: IpAddr) -> usize {
        self.per_source.get(&source).copied().unwrap_or(0)
    }

    /// Removes `id` and tells its task to give up.
    fn evict(&mut self, id: u64) {
        if let Some(slot) = self.remove(id) {
            slot.evicted.store(true, Ordering::Relaxed);
            slot.wake.notify_one();
        }
    }

    /// The longest-waiting connection (of `source` only, when given).
    fn oldest(&self, source: Option<IpAddr>) -> Option<u64> {
        self.slots
            .values()
            .filter(|s| source.is_none_or(|src| s.source == src))
            .min_by_key(|s| (s.since, s.id))
            .map(|s| s.id)
    }

    /// The stalest stalled handshake (of `source` only, when given).
    fn stalled(&self, source: Option<IpAddr>, now: Instant) -> Option<u64> {
        self.slots
            .values()
            .filter(|s| source.is_none_or(|src| s.source == src))
            .filter_map(|s| {
                let frames = s.progress.frames();
                let last = s.progress.last();
                let idle = now.saturating_duration_since(last);
                (frames == 0 || idle >= STALLED_AFTER).then_some((frames, last, s.id))
            })
            .min()
            .map(|(_, _, id)| id)
    }
}

/// What a connection's first bytes were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum First {
    /// Part of a frame: no progress yet.
    Partial,
    /// A complete frame (or bytes that are not snap2p, which the machine turns away at
    /// once).
    Frame,
    /// A KNOCK carrying an invite this node would accept: admitted even when its source's
    /// share is full (scanners behind the same address must not lock an invitee out),
    /// within the whole table's bound.
    Invited,
}

/// One connection's place in a table.
pub(crate) struct Slot {
    id: u64,
    source: IpAddr,
    since: Instant,
    progress: Arc<HandshakeProgress>,
    evicted: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Slot {
    /// Where the session machine reports this handshake's progress.
    pub(crate) fn progress(&self) -> Arc<HandshakeProgress> {
        self.progress.clone()
    }

    /// Completes when the connection is evicted (never, otherwise).
    pub(crate) async fn evicted(&self) {
        // `notify_one` stores a permit, so an eviction before this call is not missed.
        self.wake.notified().await;
    }

    fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }
}

/// Why a waiting connection gets no handshake.
pub(crate) enum Refused {
    /// Say this (where the node's visibility lets it say anything) and close.
    Say(Box<dyn Io>, ErrorCode, &'static str),
    /// Nothing to say: the peer closed, or the connection was dropped unheard.
    Gone,
}

/// A connection waiting for its first bytes.
pub(crate) struct Waiting {
    admission: Arc<Admission>,
    slot: Arc<Slot>,
}

impl Waiting {
    pub(crate) fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    /// Reads the connection's first bytes (up to the first frame's deadline, or until the
    /// slot is evicted) and asks for a handshake slot with them. Err: a refusal, to be
    /// said on the connection when it is still there, or the connection is gone (closed
    /// by the peer, or dropped for newer ones while it had said nothing).
    /// `invited` is shown the first frame and says whether it is a KNOCK with an invite
    /// this node would accept.
    pub(crate) async fn first_bytes(
        self,
        mut io: Box<dyn Io>,
        deadline: tokio::time::Instant,
        invited: impl FnOnce(&[u8]) -> bool,
    ) -> Result<(Ticket, Box<dyn Io>), Refused> {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 2048];
        let read = tokio::select! {
            biased;
            r = tokio::time::timeout_at(deadline, io.read(&mut buf)) => r,
            _ = self.slot.evicted() => return Err(Refused::Gone),
        };
        let n = match read {
            Ok(Ok(n)) if n > 0 => n,
            Ok(_) => return Err(Refused::Gone),
            Err(_) => {
                return Err(Refused::Say(
                    io,
                    ErrorCode::Timeout,
                    "no complete frame arrived in time",
                ))
            }
        };
        // Copied out of the 2 KiB read buffer: the session keeps `Rewind` for its whole
        // life, and a kept read buffer cost 2.3 KiB per idle session (docs/BENCHMARKS.md).
        let prefix = bytes::Bytes::copy_from_slice(&buf[..n]);
        drop(buf);
        let first = match frame::read_varint(&prefix) {
            Ok(Varint::Complete(len, used)) if len <= MAX_PREAUTH_FRAME as u64 => {
                match prefix.get(used..used + len as usize) {
                    None => First::Partial,
                    Some(f) if invited(f) => First::Invited,
                    Some(_) => First::Frame,
                }
            }
            Ok(Varint::Incomplete) => First::Partial,
            // Not snap2p's framing (or over the pre-auth limit): the machine turns it away
            // at once.
            _ => First::Frame,
        };
        let io: Box<dyn Io> = Box::new(Rewind { prefix, io });
        // No slot now: wait a little for one to free (ADMIT_WAIT), still in the waiting
        // table, whose bounds and evictions go on applying.
        let give_up = deadline.min(tokio::time::Instant::now() + ADMIT_WAIT);
        loop {
            // Armed before asking: a slot freed between the answer and the wait wakes it.
            let freed = self.admission.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(ticket) = self.admission.admit(&self.slot, first, Instant::now()) {
                return Ok((ticket, io));
            }
            tokio::select! {
                biased;
                _ = self.slot.evicted() => return Err(Refused::Gone),
                _ = &mut freed => {}
                _ = tokio::time::sleep_until(give_up) => break,
            }
        }
        Err(Refused::Say(
            io,
            ErrorCode::ResourceExhausted,
            "too many handshakes in progress",
        ))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.slot.is_evicted() {
            self.admission
                .table
                .lock()
                .unwrap()
                .waiting
                .remove(self.slot.id);
        }
    }
}

/// Holds a handshake slot until dropped (the handshake ended, either way).
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    slot: Arc<Slot>,
}

impl Ticket {
    pub(crate) fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.slot.is_evicted() {
            self.admission
                .table
                .lock()
                .unwrap()
                .handshakes
                .remove(self.slot.id);
            self.admission.freed.notify_waiters();
        }
    }
}

impl Admission {
    pub(crate) fn new(limits: AdmissionLimits) -> Self {
        Admission {
            limits: AdmissionLimits {
                max_pending: limits.max_pending.max(1),
                max_per_source: limits.max_per_source.max(1),
            },
            table: Mutex::new(Tables::default()),
            freed: tokio::sync::Notify::new(),
        }
    }

    /// Registers a just-accepted connection from `ip` as waiting for its first bytes,
    /// dropping the longest-waiting one of its source (or of all) when over the bounds.
    pub(crate) fn arrive(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Waiting {
        let source = source_of(ip);
        let mut t = self.table.lock().unwrap();
        let t = &mut *t;
        if t.waiting.share(source) >= self.limits.max_per_source * WAITING_PER_SOURCE_SLOT {
            if let Some(id) = t.waiting.oldest(Some(source)) {
                t.waiting.evict(id);
            }
        } else if t.waiting.slots.len() >= self.limits.max_pending * WAITING_PER_SLOT {
            if let Some(id) = t.waiting.oldest(None) {
                t.waiting.evict(id);
            }
        }
        let slot = t.slot(source, now, Arc::new(HandshakeProgress::new(now)));
        t.waiting.insert(slot.clone());
        Waiting {
            admission: self.clone(),
            slot,
        }
    }

    /// Moves a waiting connection that has sent its first bytes into the handshake
    /// table, evicting a stalled handshake when the table or the source's share is full;
    /// None when nothing can be evicted (refuse the newcomer). A complete first frame
    /// counts as the handshake's first progress.
    ///
    /// A connection dropped from the waiting table is admitted too when its first bytes
    /// are a complete frame: the waiting table drops connections that have said nothing,
    /// and under a flood from its address a connection is often dropped while its first
    /// frame sits unread in its socket, its task not run yet. Before this, an invitee
    /// behind the flooding address of the stealth slowloris test (core/tests/
    /// attack_admission.rs) lost 2–24 of 111–135 attempts that way, each a retry after
    /// a back-off; the slowest of its 50 dials took 0.4–0.8 s here and 1.5 s in CI.
    fn admit(self: &Arc<Self>, waiting: &Slot, first: First, now: Instant) -> Option<Ticket> {
        let mut t = self.table.lock().unwrap();
        let t = &mut *t;
        if waiting.is_evicted() && first == First::Partial {
            return None;
        }
        let share_full = t.handshakes.share(waiting.source) >= self.limits.max_per_source;
        let table_full = t.handshakes.slots.len() >= self.limits.max_pending;
        let victim = match (share_full, table_full) {
            (true, _) if first != First::Invited => {
                Some(t.handshakes.stalled(Some(waiting.source), now)?)
            }
            // An invitee over its source's share takes a stalled slot of its source if
            // there is one, else a place of its own while the table has room.
            (true, false) => t.handshakes.stalled(Some(waiting.source), now),
            (true, true) => Some(
                t.handshakes
                    .stalled(Some(waiting.source), now)
                    .or_else(|| t.handshakes.stalled(None, now))?,
            ),
            (false, true) => Some(t.handshakes.stalled(None, now)?),
            (false, false) => None,
        };
        if let Some(id) = victim {
            t.handshakes.evict(id);
        }
        // Gone already when it was evicted. The handshake gets a slot of its own: the
        // waiting one may hold an eviction's wake-up.
        t.waiting.remove(waiting.id);
        if first != First::Partial {
            waiting.progress.record(now);
        }
        let slot = t.slot(waiting.source, waiting.since, waiting.progress.clone());
        t.handshakes.insert(slot.clone());
        Some(Ticket {
            admission: self.clone(),
            slot,
        })
    }

    /// Handshakes in progress now (connections that have sent bytes).
    pub(crate) fn pending(&self) -> usize {
        self.table.lock().unwrap().handshakes.slots.len()
    }

    /// Connections accepted that have not sent a byte yet.
    pub(crate) fn waiting(&self) -> usize {
        self.table.lock().unwrap().waiting.slots.len()
    }
}

/// A byte stream whose first bytes were read already (to judge the connection), handed
/// out again before the rest. The session reads the same bytes it would have.
struct Rewind {
    prefix: bytes::Bytes,
    io: Box<dyn Io>,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if self.prefix.is_empty() {
                // Free the bytes now, not when the session ends.
                self.prefix = bytes::Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_pending: usize, max_per_source: usize) -> Arc<Admission> {
        Arc::new(Admission::new(AdmissionLimits {
            max_pending,
            max_per_source,
        }))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A connection from `addr` that sent part of a frame (`complete`: a whole one).
    fn handshake(a: &Arc<Admission>, addr: &str, complete: bool, at: Instant) -> Option<Ticket> {
        let first = if complete {
            First::Frame
        } else {
            First::Partial
        };
        let w = a.arrive(ip(addr), at);
        a.admit(&w.slot, first, at)
    }

    #[test]
    fn an_invitee_gets_in_past_its_sources_full_share_while_the_table_has_room() {
        let a = admission(4, 2);
        let t0 = Instant::now();
        let _x = handshake(&a, "10.0.0.2", true, t0).unwrap();
        let _y = handshake(&a, "10.0.0.2", true, t0).unwrap();
        assert!(handshake(&a, "10.0.0.2", true, t0).is_none());
        let w = a.arrive(ip("10.0.0.2"), t0);
        let invitee = a.admit(&w.slot, First::Invited, t0).unwrap();
        assert_eq!(a.pending(), 3);
        let w = a.arrive(ip("10.0.0.2"), t0);
        let _second = a.admit(&w.slot, First::Invited, t0).unwrap();
        // The table is full and nothing is stalled: even an invitee waits its turn.
        let w = a.arrive(ip("10.0.0.2"), t0);
        assert!(a.admit(&w.slot, First::Invited, t0).is_none());
        drop(invitee);
    }

    fn evicted(t: &Ticket) -> bool {
        t.slot().is_evicted()
    }

    #[test]
    fn a_full_source_share_evicts_that_sources_stalest_partial_frame() {
        let a = admission(100, 3);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let first = handshake(&a, "10.0.0.2", true, t0).unwrap();
        let second = handshake(&a, "10.0.0.2", false, ms(1)).unwrap();
        let third = handshake(&a, "10.0.0.2", false, ms(2)).unwrap();
        let other = handshake(&a, "10.0.0.9", false, ms(4)).unwrap();
        let fourth = handshake(&a, "10.0.0.2", true, ms(5)).unwrap();
        assert!(evicted(&second));
        assert!(!evicted(&first) && !evicted(&third) && !evicted(&other));
        assert_eq!(a.pending(), 4);
        drop(second);
        assert_eq!(
            a.pending(),
            4,
            "an evicted ticket is already out of the table"
        );
        drop((first, third, fourth, other));
        assert_eq!(a.pending(), 0);
        assert_eq!(a.waiting(), 0);
        let t = a.table.lock().unwrap();
        assert!(t.handshakes.per_source.is_empty() && t.waiting.per_source.is_empty());
    }

    #[test]
    fn complete_first_frames_are_never_evicted_the_newcomer_is_refused() {
        let a = admission(100, 2);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let x = handshake(&a, "10.0.0.2", true, t0).unwrap();
        let y = handshake(&a, "10.0.0.2", true, ms(10)).unwrap();
        assert!(handshake(&a, "10.0.0.2", true, ms(20)).is_none());
        assert!(handshake(&a, "10.0.0.2", false, ms(20)).is_none());
        assert_eq!(a.waiting(), 0, "a refused newcomer leaves no trace");
        // Stalled for STALLED_AFTER: now x (the older progress of the two) goes.
        y.slot().progress().record(ms(500));
        let z = handshake(&a, "10.0.0.2", true, t0 + STALLED_AFTER).unwrap();
        assert!(evicted(&x) && !evicted(&y));
        drop(z);
    }

    #[test]
    fn a_full_table_evicts_partial_frames_before_stalled_handshakes() {
        let a = admission(3, 3);
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let stalled = handshake(&a, "10.0.0.1", true, t0).unwrap();
        let partial_old = handshake(&a, "10.0.0.2", false, s(1)).unwrap();
        let partial_new = handshake(&a, "10.0.0.3", false, s(2)).unwrap();
        let _n = handshake(&a, "10.0.0.4", true, s(3)).unwrap();
        assert!(evicted(&partial_old));
        assert!(!evicted(&stalled) && !evicted(&partial_new));
    }

    #[test]
    fn waiting_connections_are_bounded_per_source_oldest_dropped_first() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let a = admission(8, 1);
        let per_source = WAITING_PER_SOURCE_SLOT;
        let mut held: Vec<Waiting> = (0..per_source as u64)
            .map(|i| a.arrive(ip("10.0.0.2"), ms(i)))
            .collect();
        assert_eq!(a.waiting(), per_source);
        let newest = a.arrive(ip("10.0.0.2"), ms(100));
        assert!(held[0].slot.is_evicted());
        assert!(held[1..].iter().all(|w| !w.slot.is_evicted()));
        assert_eq!(a.waiting(), per_source);
        // Other sources are not affected until the total bound (8 × 4) is reached...
        let other: Vec<Waiting> = (0..per_source)
            .map(|_| a.arrive(ip("10.0.0.3"), ms(200)))
            .collect();
        assert!(held[1..].iter().all(|w| !w.slot.is_evicted()));
        // ...then the longest waiting of all goes.
        let total = 8 * WAITING_PER_SLOT;
        let more: Vec<Waiting> = (0..total - 2 * per_source + 1)
            .map(|i| a.arrive(ip(&format!("10.0.1.{i}")), ms(300)))
            .collect();
        assert_eq!(a.waiting(), total);
        assert!(held[1].slot.is_evicted());
        // An evicted waiting connection whose first bytes are part of a frame gets no
        // handshake slot; one whose first bytes are a complete frame does (it had said
        // something by the time its task read it), in a slot of its own.
        let gone = held.remove(0);
        assert!(a.admit(&gone.slot, First::Partial, ms(300)).is_none());
        let late = held.remove(0);
        let ticket = a.admit(&late.slot, First::Frame, ms(300)).unwrap();
        assert!(!evicted(&ticket) && ticket.slot().id != late.slot.id);
        assert_eq!((a.pending(), a.waiting()), (1, total));
        drop((held, newest, other, gone, late, more));
        assert_eq!(a.waiting(), 0);
        drop(ticket);
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn ipv6_sources_are_counted_by_64_prefix_and_mapped_v4_as_v4() {
        let a = admission(100, 2);
        let t0 = Instant::now();
        let mut held = Vec::new();
        for addr in [
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff::9",
            "2001:db8:1:2::77",
        ] {
            held.push(handshake(&a, addr, false, t0).unwrap());
        }
        // The third from the same /64 took a slot of the first, not a third one.
        assert_eq!(a.pending(), 2);
        held.push(handshake(&a, "2001:db8:1:3::1", false, t0).unwrap());
        assert_eq!(a.pending(), 3);
        for addr in ["10.0.0.1", "::ffff:10.0.0.1", "10.0.0.1"] {
            held.push(handshake(&a, addr, false, t0).unwrap());
        }
        assert_eq!(a.pending(), 5);
    }

    #[tokio::test]
    async fn eviction_wakes_the_handshake_even_if_it_was_not_waiting_yet() {
        let a = admission(1, 1);
        let t0 = Instant::now();
        let first = handshake(&a, "10.0.0.2", false, t0).unwrap();
        let _second = handshake(&a, "10.0.0.2", false, t0).unwrap();
        tokio::time::timeout(Duration::from_secs(5), first.slot().evicted())
            .await
            .expect("evicted() completes after the eviction happened");
    }

    /// A connection that sent one complete frame, waiting in `a` for a slot.
    async fn first_frame(a: &Arc<Admission>, addr: &str) -> Result<Ticket, &'static str> {
        use tokio::io::AsyncWriteExt;
        let (mut dialer, listener) = tokio::io::duplex(4096);
        let mut msg = Vec::new();
        frame::write_frame(&mut msg, &[7u8; 32]);
        dialer.write_all(&msg).await.unwrap();
        let w = a.arrive(ip(addr), Instant::now());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let r = w.first_bytes(Box::new(listener), deadline, |_| false).await;
        drop(dialer);
        match r {
            Ok((ticket, _)) => Ok(ticket),
            Err(Refused::Say(_, ErrorCode::ResourceExhausted, _)) => Err("refused"),
            Err(_) => Err("gone or another refusal"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_newcomer_over_its_sources_share_waits_for_a_slot_that_frees() {
        let a = admission(100, 1);
        let busy = handshake(&a, "10.0.0.2", true, Instant::now()).unwrap();
        let t0 = tokio::time::Instant::now();
        let ender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3)).await;
            drop(busy); // the old handshake ends: its source's slot frees
        });
        let ticket = first_frame(&a, "10.0.0.2")
            .await
            .expect("admitted once the slot freed");
        assert_eq!(t0.elapsed(), Duration::from_millis(3));
        assert_eq!(a.pending(), 1);
        assert_eq!(a.waiting(), 0);
        ender.await.unwrap();
        drop(ticket);
        assert_eq!(a.pending(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_newcomer_is_refused_when_no_slot_frees_in_time() {
        let a = admission(100, 1);
        let _busy = handshake(&a, "10.0.0.2", true, Instant::now()).unwrap();
        // Another source's slot freeing wakes the newcomer, which still finds its own
        // share full and waits on.
        let other = handshake(&a, "10.0.0.9", true, Instant::now()).unwrap();
        let ender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(other);
        });
        let t0 = tokio::time::Instant::now();
        assert_eq!(first_frame(&a, "10.0.0.2").await.err(), Some("refused"));
        assert_eq!(t0.elapsed(), ADMIT_WAIT);
        assert_eq!(a.waiting(), 0);
        assert_eq!(a.pending(), 1);
        ender.await.unwrap();
    }

    #[tokio::test]
    async fn first_bytes_are_read_once_and_handed_to_the_session_again() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let a = admission(4, 4);
        let (mut dialer, listener) = tokio::io::duplex(4096);
        let mut msg = Vec::new();
        frame::write_frame(&mut msg, &[7u8; 32]);
        msg.extend_from_slice(b"rest");
        dialer.write_all(&msg).await.unwrap();
        let w = a.arrive(ip("10.0.0.2"), Instant::now());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let Ok((ticket, mut io)) = w.first_bytes(Box::new(listener), deadline, |_| false).await
        else {
            panic!("refused");
        };
        assert_eq!(ticket.slot().progress().frames(), 1);
        assert_eq!(a.pending(), 1);
        let mut got = vec![0u8; msg.len()];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(got, msg);
        drop(ticket);
        assert_eq!(a.pending(), 0);
    }
}
