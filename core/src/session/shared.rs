//! The state a session's driver and its application handles share: the sans-IO
//! [`Session`] and the wakers of the tasks waiting on it, behind one mutex held only for
//! the machine's own work. A leaf of the tokio layer: `driver.rs`, `connection.rs` and
//! `stream.rs` all build on it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::machine::{Event, Session};
use crate::identity::AliasCard;
use crate::locator::Scheme;

/// What a session tells the peer that runs it; implemented above the session layer (the
/// peer's event monitor), handed to the driver at spawn.
pub(crate) trait Observer: Send + Sync {
    /// Bytes an authenticated session moved, added as they move (so peer-wide totals
    /// never go down when a session ends). The handshake's bytes come in once, at AUTH_OK.
    fn bytes(&self, sent: u64, received: u64);
    /// Whether anyone reads stream notes now: none is built otherwise.
    fn listening(&self) -> bool;
    /// A stream fact of the session `connection` ([`super::Connection::id`]).
    fn stream(&self, connection: &str, note: StreamNote);
    /// The session authenticated (AUTH_OK), reported by its driver before any stream fact
    /// of it, so a subscriber never sees a stream of a session it was not told about.
    fn established(&self, note: EstablishedNote);
    /// A session whose end someone asked to hear of ([`super::Connection::watch_end`])
    /// has ended: called once, by its driver, after its last bytes are written (before
    /// the socket drains, `driver.rs`) and without any lock held. Why here and not a task per session awaiting `closed()`: that task was
    /// 256 bytes of every idle session's heap (docs/BENCHMARKS.md, "Idle memory").
    fn ended(&self, conn: super::Connection);
}

/// A session that just authenticated, as its driver reports it to its [`Observer`].
#[derive(Debug)]
pub(crate) struct EstablishedNote {
    pub(crate) connection: String,
    pub(crate) remote_principal: Option<crate::identity::Principal>,
    /// This side dialed.
    pub(crate) outbound: bool,
    /// From the driver's start to AUTH_OK.
    pub(crate) took: Duration,
    pub(crate) transport: Scheme,
    pub(crate) remote: Option<SocketAddr>,
    /// The handshake was hs2 (PROTOCOL.md §5.8), not v1.
    pub(crate) hs2: bool,
}

/// A stream fact the driver reports to its [`Observer`].
#[derive(Debug)]
pub(crate) enum StreamNote {
    /// Opened by the peer (`inbound`) or by this side.
    Opened {
        id: u64,
        label: Option<String>,
        inbound: bool,
    },
    /// The peer's OPEN_STREAM was refused (ERR_STREAM_REFUSED).
    Refused { id: u64, label: Option<String> },
    /// Reset with `code`, by the peer or by this side.
    Reset {
        id: u64,
        label: Option<String>,
        code: crate::error::ErrorCode,
        by_peer: bool,
    },
}

#[derive(Default)]
pub(super) struct StreamWakers {
    pub(super) read: Option<Waker>,
    pub(super) write: Option<Waker>,
}

pub(crate) struct State {
    pub(crate) session: Session,
    pub(super) stream_wakers: HashMap<u64, StreamWakers>,
    pub(super) accept_wakers: Vec<Waker>,
    pub(super) established_wakers: Vec<Waker>,
    pub(super) closed_wakers: Vec<Waker>,
    driver_waker: Option<Waker>,
    /// Boxed: most sessions never get a card, and inline it was 144 bytes of each.
    pub(super) remote_alias: Option<Box<AliasCard>>,
    /// Set when the driver has finished (socket closed).
    pub(super) finished: bool,
    /// The driver reports the end to its observer ([`Observer::ended`]).
    pub(super) end_watched: bool,
    /// Streams claimed by a protocol handler, handed over after the lock is released.
    pub(super) routed: Vec<u64>,
}

impl State {
    pub(super) fn wake_driver(&mut self) {
        if let Some(w) = self.driver_waker.take() {
            w.wake();
        }
    }

    /// Turns machine events into wake-ups. Wakers are collected and woken by the caller
    /// after the lock is released; writers waiting for send room go to `writers`. New
    /// inbound streams whose label `claims` accepts are set aside in `routed` instead of
    /// the accept queue. Stream facts go to `notes` when someone listens (`Some`).
    pub(super) fn dispatch_events(
        &mut self,
        wake: &mut Vec<Waker>,
        writers: &mut Vec<Waker>,
        claims: &dyn Fn(Option<&str>) -> bool,
        mut notes: Option<&mut Vec<StreamNote>>,
    ) {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Established => wake.append(&mut self.established_wakers),
                Event::LocalStreamOpened(id) => {
                    if let Some(n) = notes.as_deref_mut() {
                        let label = self.session.stream_label(id).map(str::to_string);
                        n.push(StreamNote::Opened {
                            id,
                            label,
                            inbound: false,
                        });
                    }
                }
                Event::StreamRefused(id, label) => {
                    if let Some(n) = notes.as_deref_mut() {
                        n.push(StreamNote::Refused { id, label });
                    }
                }
                Event::StreamReset(id, code, by_peer) => {
                    if let Some(n) = notes.as_deref_mut() {
                        let label = self.session.stream_label(id).map(str::to_string);
                        n.push(StreamNote::Reset {
                            id,
                            label,
                            code,
                            by_peer,
                        });
                    }
                }
                Event::StreamOpened(id) => {
                    if let Some(n) = notes.as_deref_mut() {
                        let label = self.session.stream_label(id).map(str::to_string);
                        n.push(StreamNote::Opened {
                            id,
                            label,
                            inbound: true,
                        });
                    }
                    let claimed = claims(self.session.stream_label(id));
                    if claimed && self.session.take_from_accept_queue(id) {
                        self.stream_wakers.insert(id, StreamWakers::default());
                        self.routed.push(id);
                    } else {
                        wake.append(&mut self.accept_wakers);
                    }
                }
                Event::StreamReadable(id) => {
                    if let Some(w) = self.stream_wakers.get_mut(&id).and_then(|w| w.read.take()) {
                        wake.push(w);
                    }
                }
                Event::StreamWritable(id) => {
                    if let Some(w) = self.stream_wakers.get_mut(&id).and_then(|w| w.write.take()) {
                        writers.push(w);
                    }
                }
                Event::AliasCard(card) => {
                    let newer = self
                        .remote_alias
                        .as_ref()
                        .is_none_or(|c| card.issued_at >= c.issued_at);
                    if newer {
                        self.remote_alias = Some(card);
                    }
                }
                Event::Closed(_) => {
                    wake.append(&mut self.accept_wakers);
                    wake.append(&mut self.established_wakers);
                    wake.append(&mut self.closed_wakers);
                    for w in self.stream_wakers.values_mut() {
                        wake.extend(w.read.take());
                        wake.extend(w.write.take());
                    }
                }
            }
        }
    }
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) local_addr: Option<SocketAddr>,
    /// The transport the session runs over.
    pub(crate) transport: Scheme,
    /// When the driver started (the session's first byte could move).
    pub(crate) started: Instant,
    /// Time from `started` to AUTH_OK, set once by whoever awaited the handshake.
    pub(crate) handshake: OnceLock<Duration>,
    /// Bytes the driver wrote to and read from the transport (framed and encrypted).
    pub(crate) bytes_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would poison it; recover the state anyway: every
        // mutation of the machine is complete at each call boundary.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Parks a waker once (repeated polls by the same task do not grow the list).
pub(super) fn push_waker(list: &mut Vec<Waker>, w: &Waker) {
    if !list.iter().any(|x| x.will_wake(w)) {
        list.push(w.clone());
    }
}

pub(super) fn wake_all(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

impl State {
    pub(super) fn new(session: Session) -> Self {
        State {
            session,
            stream_wakers: HashMap::new(),
            accept_wakers: Vec::new(),
            established_wakers: Vec::new(),
            closed_wakers: Vec::new(),
            driver_waker: None,
            remote_alias: None,
            finished: false,
            end_watched: false,
            routed: Vec::new(),
        }
    }

    /// Gives back the capacity of empty queues, here and in the machine: the driver
    /// calls it at the end of each poll, so an idle session keeps none (issue 36: ≤ 4 KiB
    /// per idle session and side). A busy session re-grows them: a few allocations per
    /// driver poll, against 64 KiB or more of data moved by one.
    pub(super) fn release_idle(&mut self) {
        use super::release::ReleaseIfEmpty;
        self.accept_wakers.release_if_empty();
        self.established_wakers.release_if_empty();
        self.routed.release_if_empty();
        self.stream_wakers.release_if_empty();
        self.session.release_idle();
    }

    /// Registers the driver task's waker (once per task).
    pub(super) fn set_driver_waker(&mut self, w: &Waker) {
        if !self.driver_waker.as_ref().is_some_and(|x| x.will_wake(w)) {
            self.driver_waker = Some(w.clone());
        }
    }

    /// The driver has finished: nothing will wake it again.
    pub(super) fn finish(&mut self, wake: &mut Vec<Waker>) {
        self.finished = true;
        self.driver_waker = None;
        wake.append(&mut self.closed_wakers);
    }
}
