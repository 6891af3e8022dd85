//! The multiplexing state of a session: the stream table, the send rotation, the accept
//! queue, stream ids and counts, receive-window growth, the session send buffer
//! ([`SendRoom`]) and the send rates. Handles the inbound stream messages (OPEN_STREAM,
//! STREAM_DATA, WINDOW_UPDATE, CLOSE_STREAM) and the application's stream calls, and packs
//! queued stream data into the frame being built. Spec: docs/PROTOCOL.md §3, §6.
//!
//! Sans-IO state owned by the session machine. What it needs from the session (limits, the
//! time, the event queue, the control-message queue) comes in as a [`Cx`] per call; the
//! session's own checks (is it established, failed, closing) stay with the session.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use web_time::Instant;

use bytes::Bytes;

use super::config::{SessionLimits, INITIAL_STREAM_WINDOW};
use super::event::{Event, ReadOutcome};
use super::send_buf::SendBuf;
use super::send_room::SendRoom;
use super::stream_state::{RecvState, SendState, StreamState};
use crate::error::{Error, ErrorCode};
use crate::rate::TokenBucket;
use crate::secure_channel::MAX_PLAINTEXT;
use crate::wire::message::{
    encode_stream_data_header, encode_stream_data_trailer, stream_data_overhead, Message,
};

/// What a call on [`Streams`] needs from the session around it.
pub(crate) struct Cx<'a> {
    pub limits: &'a SessionLimits,
    /// The latest time the session was given.
    pub now: Instant,
    pub events: &'a mut VecDeque<Event>,
    /// Control messages waiting to be packed into transport frames.
    pub control: &'a mut VecDeque<Vec<u8>>,
}

#[derive(Debug)]
pub(crate) struct Streams {
    map: HashMap<u64, StreamState>,
    send_queue: VecDeque<u64>,
    /// The session-wide send buffer and its waiting writers.
    send_room: SendRoom,
    accept_queue: VecDeque<u64>,
    /// We are the dialer (even stream ids; the listener's are odd).
    initiator: bool,
    next_local_id: u64,
    next_remote_id: u64,
    inbound_open: usize,
    outbound_open: usize,
    /// Streams opened since the session began, either side (refusals not counted).
    pub(crate) opened_total: u64,
    unflowed_buffered: usize,
    /// Σ (recv_window − INITIAL_STREAM_WINDOW) over live streams.
    window_growth: u64,
    /// Inbound opens counted in the current one-second window (`max_stream_opens_per_sec`).
    open_window: (Instant, u32),
    session_budget: TokenBucket,
    stream_budgets: HashMap<u64, TokenBucket>,
    /// Streams with data held back by a send rate, retried from `handle_timeout`.
    throttled: Vec<u64>,
    /// Both sides listed `flow-control` (set once HELLOs are exchanged).
    pub flow_control: bool,
    /// Both sides listed `batch`: messages of several streams share frames. Without it
    /// every frame carries exactly one control message (PROTOCOL.md §3).
    pub batching: bool,
    /// TypeScript profile: send CLOSE_STREAM{sid} once both directions of a stream ended
    /// (our FIN sent, the peer's received), as the reference does when it destroys a
    /// stream (PROTOCOL.md §12.1).
    pub close_when_done: bool,
}

/// A graceful CLOSE_STREAM{sid} (no `ec`).
fn close_message(id: u64) -> Vec<u8> {
    Message::CloseStream {
        stream_id: id,
        code: ErrorCode::Ok,
    }
    .to_vec()
}

fn err(code: ErrorCode, msg: impl Into<String>) -> Error {
    Error::new(code, msg)
}

fn no_stream(id: u64) -> Error {
    err(ErrorCode::StreamNotFound, format!("no stream {id}"))
}

/// What a stream's send buffer of capacity `cap` can take now, or why it takes nothing.
fn room_in(s: &StreamState, cap: usize) -> Result<usize, Error> {
    match s.send {
        SendState::ResetByPeer { code, .. } => {
            Err(err(code, "the peer reset or closed the stream"))
        }
        SendState::ResetLocal { .. } | SendState::FinQueued | SendState::FinSent => {
            Err(err(ErrorCode::StreamClosed, "stream closed for writing"))
        }
        SendState::Open => Ok(cap.saturating_sub(s.send_buf.len())),
    }
}

/// Puts stream `id` (which is `s`) in the send rotation unless it is there.
fn enqueue(send_queue: &mut VecDeque<u64>, id: u64, s: &mut StreamState) {
    if !s.in_send_queue {
        s.in_send_queue = true;
        send_queue.push_back(id);
    }
}

impl Streams {
    pub fn new(initiator: bool, limits: &SessionLimits, now: Instant) -> Self {
        Streams {
            map: HashMap::new(),
            send_queue: VecDeque::new(),
            send_room: SendRoom::default(),
            accept_queue: VecDeque::new(),
            initiator,
            next_local_id: if initiator { 0 } else { 1 },
            next_remote_id: if initiator { 1 } else { 0 },
            inbound_open: 0,
            outbound_open: 0,
            opened_total: 0,
            unflowed_buffered: 0,
            window_growth: 0,
            open_window: (now, 0),
            session_budget: TokenBucket::per_second(limits.session_send_rate),
            stream_budgets: HashMap::new(),
            throttled: Vec::new(),
            flow_control: false,
            batching: false,
            close_when_done: false,
        }
    }

    /// Gives back the capacity of empty tables and queues ([`Session::release_idle`]):
    /// after 1,000 streams the table alone would otherwise keep tens of KiB.
    ///
    /// [`Session::release_idle`]: super::machine::Session::release_idle
    pub fn release_idle(&mut self) {
        use super::release::ReleaseIfEmpty;
        self.map.release_if_empty();
        self.stream_budgets.release_if_empty();
        self.throttled.release_if_empty();
        self.send_queue.release_if_empty();
        self.accept_queue.release_if_empty();
        self.send_room.release_idle();
    }

    // -----------------------------------------------------------------------------------
    // Accessors

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn label(&self, id: u64) -> Option<&str> {
        self.map.get(&id).and_then(|s| s.label.as_deref())
    }

    /// Bytes queued for reading on a stream.
    pub fn readable_bytes(&self, id: u64) -> usize {
        self.map.get(&id).map_or(0, |s| s.recv_buffered)
    }

    /// Whether a read of `id` would answer now (bytes, the end, a reset, or an unknown
    /// stream's error) instead of blocking; takes nothing.
    pub fn read_ready(&self, id: u64) -> bool {
        self.map
            .get(&id)
            .is_none_or(|s| s.recv_buffered > 0 || s.recv != RecvState::Open)
    }

    /// Streams wait in the send rotation.
    pub fn wants_transmit(&self) -> bool {
        !self.send_queue.is_empty()
    }

    /// No stream has queued data left to send (a graceful close may proceed).
    pub fn drained(&self) -> bool {
        self.map
            .values()
            .all(|s| s.send_buf.is_empty() || s.send_done())
    }

    /// Next inbound stream waiting to be accepted.
    pub fn accept(&mut self) -> Option<u64> {
        self.accept_queue.pop_front()
    }

    /// Removes a stream from the accept queue (it was routed to a built-in module).
    pub fn take_from_accept_queue(&mut self, id: u64) -> bool {
        let before = self.accept_queue.len();
        self.accept_queue.retain(|x| *x != id);
        self.accept_queue.len() != before
    }

    /// A stream message for an id not in the table: Ok (ignore it) when the id was opened
    /// by either side and is gone (it may have been in flight), ERR_STREAM_NOT_FOUND when
    /// it was never opened (PROTOCOL.md §6.2).
    fn gone_or_never_opened(&self, id: u64, what: &str) -> Result<(), Error> {
        let opened = if self.parity_is_remote(id) {
            id < self.next_remote_id
        } else {
            id < self.next_local_id
        };
        if opened {
            Ok(())
        } else {
            Err(err(
                ErrorCode::StreamNotFound,
                format!("{what} for stream {id}, which was never opened"),
            ))
        }
    }

    fn parity_is_remote(&self, id: u64) -> bool {
        // Dialer ids are even, listener ids odd.
        (id % 2 == 1) == self.initiator
    }

    /// The session ended: wakes everything that waits on a stream.
    /// Inbound streams open now.
    pub fn inbound_open(&self) -> usize {
        self.inbound_open
    }

    /// Replaces the session send rate (bytes per second, 0: none), e.g. when the
    /// permission rules for the remote set one.
    pub fn set_session_rate(&mut self, bytes_per_sec: u64) {
        self.session_budget = TokenBucket::per_second(bytes_per_sec);
    }

    pub fn wake_all(&self, events: &mut VecDeque<Event>) {
        for &id in self.map.keys() {
            events.push_back(Event::StreamReadable(id));
            events.push_back(Event::StreamWritable(id));
        }
    }

    // -----------------------------------------------------------------------------------
    // Inbound stream messages

    /// OPEN_STREAM from the peer. Returns whether a stream was opened (false: refused).
    pub fn on_open_stream(
        &mut self,
        id: u64,
        label: Option<&str>,
        permitted: bool,
        cx: &mut Cx<'_>,
    ) -> Result<bool, Error> {
        if !self.parity_is_remote(id) {
            return Err(err(
                ErrorCode::InvalidMessage,
                format!("stream id {id} has our parity"),
            ));
        }
        if id < self.next_remote_id || self.map.contains_key(&id) {
            return Err(err(
                ErrorCode::StreamIdInUse,
                format!("stream id {id} was already used"),
            ));
        }
        self.next_remote_id = id + 2;
        let limits = cx.limits;
        let rate_ok = limits.max_stream_opens_per_sec == 0 || {
            let (start, count) = &mut self.open_window;
            if cx.now.saturating_duration_since(*start) >= Duration::from_secs(1) {
                *start = cx.now;
                *count = 0;
            }
            *count += 1;
            *count <= limits.max_stream_opens_per_sec
        };
        if !permitted || self.inbound_open >= limits.max_streams || !rate_ok {
            let refuse = Message::CloseStream {
                stream_id: id,
                code: ErrorCode::StreamRefused,
            }
            .to_vec();
            cx.control.push_back(refuse);
            let label = label.map(|l| l.chars().take(256).collect::<String>());
            cx.events.push_back(Event::StreamRefused(id, label));
            return Ok(false);
        }
        let label = label.map(|l| l.chars().take(256).collect::<String>());
        self.map.insert(
            id,
            StreamState::new(label, false, INITIAL_STREAM_WINDOW, self.flow_control),
        );
        self.inbound_open += 1;
        self.opened_total += 1;
        self.accept_queue.push_back(id);
        cx.events.push_back(Event::StreamOpened(id));
        Ok(true)
    }

    /// STREAM_DATA from the peer; `data` lies inside `frame`, which the receive buffer
    /// keeps a slice of (no copy).
    pub fn on_stream_data(
        &mut self,
        id: u64,
        data: &[u8],
        fin: bool,
        frame: &Bytes,
        cx: &mut Cx<'_>,
    ) -> Result<(), Error> {
        if !self.map.contains_key(&id) {
            // Data in flight for a stream already closed or refused is dropped.
            return self.gone_or_never_opened(id, "STREAM_DATA");
        }
        let s = self.map.get_mut(&id).expect("checked above");
        if s.recv.fin_seen() {
            return Err(err(
                ErrorCode::StreamClosed,
                format!("data after FIN on stream {id}"),
            ));
        }
        if s.is_reset() || matches!(s.recv, RecvState::ResetLocal { .. }) {
            return Ok(());
        }
        let len = data.len() as u64;
        if s.recv_received + len > s.recv_limit {
            return Err(err(
                ErrorCode::InvalidMessage,
                format!("stream {id} exceeded its flow-control window"),
            ));
        }
        s.recv_received += len;
        if s.handle_dropped {
            // Nobody reads any more (`release`): dropped as if read, with its credit back,
            // so a peer still writing is not stalled until our CLOSE_STREAM reaches it.
            s.recv_consumed += len;
            if fin {
                s.fin_arrived();
            }
            if s.maybe_grant(s.recv_window, self.flow_control) {
                enqueue(&mut self.send_queue, id, s);
            }
            self.maybe_reap(id, cx);
            return Ok(());
        }
        if !data.is_empty() {
            s.recv_buf.push_back(frame.slice_ref(data));
            s.recv_buffered += data.len();
            if !self.flow_control {
                self.unflowed_buffered += data.len();
                if self.unflowed_buffered > cx.limits.max_unflowed_buffer {
                    return Err(err(
                        ErrorCode::ResourceExhausted,
                        "peer without flow control outran the reader",
                    ));
                }
            }
        }
        if fin {
            s.fin_arrived();
            if self.close_when_done && s.send == SendState::FinSent {
                cx.control.push_back(close_message(id));
            }
        }
        cx.events.push_back(Event::StreamReadable(id));
        if fin {
            self.maybe_reap(id, cx);
        }
        Ok(())
    }

    /// WINDOW_UPDATE from the peer: more credit for one of our streams.
    pub fn on_window_update(&mut self, id: u64, credit: u64, cx: &mut Cx<'_>) -> Result<(), Error> {
        if !self.map.contains_key(&id) {
            return self.gone_or_never_opened(id, "WINDOW_UPDATE");
        }
        let s = self.map.get_mut(&id).expect("checked above");
        s.send_limit = s
            .send_limit
            .checked_add(credit)
            .ok_or_else(|| err(ErrorCode::InvalidMessage, "window update overflows"))?;
        if s.send_limit > (1u64 << 62) {
            return Err(err(ErrorCode::InvalidMessage, "window too large"));
        }
        let sendable = s.has_sendable();
        cx.events.push_back(Event::StreamWritable(id));
        self.send_room.recount(s);
        if sendable {
            enqueue(&mut self.send_queue, id, s);
        }
        Ok(())
    }

    /// CLOSE_STREAM from the peer: a graceful close of the whole stream (code 0) or a
    /// reset (or refusal) with its code.
    /// A CLOSE_STREAM for an id never opened is ERR_STREAM_NOT_FOUND.
    pub fn on_close_stream(
        &mut self,
        id: u64,
        code: ErrorCode,
        cx: &mut Cx<'_>,
    ) -> Result<(), Error> {
        if !self.map.contains_key(&id) {
            return self.gone_or_never_opened(id, "CLOSE_STREAM");
        }
        let s = self.map.get_mut(&id).expect("checked above");
        if code == ErrorCode::Ok {
            // Graceful close of the whole stream: reading sees FIN, writing stops.
            s.closed_by_peer();
        } else {
            s.reset_by_peer(code);
            cx.events.push_back(Event::StreamReset(id, code, true));
            s.recv_buf.clear();
            self.unflowed_buffered = self.unflowed_buffered.saturating_sub(s.recv_buffered);
            s.recv_buffered = 0;
        }
        cx.events.push_back(Event::StreamReadable(id));
        cx.events.push_back(Event::StreamWritable(id));
        self.send_room.recount(s);
        self.maybe_reap(id, cx);
        self.offer_send_room(cx);
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Application calls on streams (the session checked that it may take them)

    /// Opens a stream; OPEN_STREAM goes out with the next transmit, data may follow at once.
    pub fn open(&mut self, label: Option<&str>, limits: &SessionLimits) -> Result<u64, Error> {
        if self.outbound_open >= limits.max_streams {
            return Err(err(
                ErrorCode::StreamRefused,
                format!("local limit of {} open streams reached", limits.max_streams),
            ));
        }
        if let Some(l) = label {
            if l.len() > 256 {
                return Err(err(
                    ErrorCode::InvalidArgument,
                    "label longer than 256 bytes",
                ));
            }
        }
        let id = self.next_local_id;
        self.next_local_id += 2;
        let mut s = StreamState::new(
            label.map(str::to_string),
            true,
            INITIAL_STREAM_WINDOW,
            self.flow_control,
        );
        enqueue(&mut self.send_queue, id, &mut s);
        self.map.insert(id, s);
        self.outbound_open += 1;
        self.opened_total += 1;
        Ok(id)
    }

    /// Bytes a write on `id` would take now (0: wait for [`Event::StreamWritable`]), or
    /// the error it would return.
    pub fn send_room(&mut self, id: u64, limits: &SessionLimits) -> Result<usize, Error> {
        let s = self.map.get_mut(&id).ok_or_else(|| no_stream(id))?;
        let room = room_in(s, limits.stream_send_buffer)?;
        Ok(self
            .send_room
            .admit(id, s, room, limits.session_send_buffer))
    }

    /// Admits up to `len` bytes into stream `id`'s send buffer; `queue(buf, n)` puts the
    /// first `n` there. Returns how many were taken (0: wait for
    /// [`Event::StreamWritable`]).
    pub fn write(
        &mut self,
        id: u64,
        len: usize,
        limits: &SessionLimits,
        queue: impl FnOnce(&mut SendBuf, usize),
    ) -> Result<usize, Error> {
        let s = self.map.get_mut(&id).ok_or_else(|| no_stream(id))?;
        let room = room_in(s, limits.stream_send_buffer)?;
        let n = self
            .send_room
            .admit(id, s, room, limits.session_send_buffer)
            .min(len);
        if n == 0 {
            return Ok(0);
        }
        queue(&mut s.send_buf, n);
        self.send_room.wrote(s);
        if s.has_sendable() {
            enqueue(&mut self.send_queue, id, s);
        }
        Ok(n)
    }

    /// Half-closes our direction: FIN after the queued data.
    pub fn finish(&mut self, id: u64) -> Result<(), Error> {
        let s = self.map.get_mut(&id).ok_or_else(|| no_stream(id))?;
        match s.send {
            SendState::ResetByPeer { code, .. } => {
                Err(err(code, "the peer reset or closed the stream"))
            }
            SendState::ResetLocal { .. } => Err(err(ErrorCode::StreamClosed, "stream was reset")),
            SendState::Open => {
                s.send = SendState::FinQueued;
                enqueue(&mut self.send_queue, id, s);
                Ok(())
            }
            SendState::FinQueued | SendState::FinSent => Ok(()),
        }
    }

    /// Aborts both directions with `code` (CLOSE_STREAM).
    pub fn reset(&mut self, id: u64, code: ErrorCode, cx: &mut Cx<'_>) {
        let Some(s) = self.map.get_mut(&id) else {
            return;
        };
        if s.is_reset() {
            return;
        }
        s.reset_locally();
        s.send_buf = SendBuf::default();
        // Never announced: nothing to tell the peer.
        let announced = !std::mem::take(&mut s.open_pending);
        let dropped = s.recv_buffered;
        s.recv_buf.clear();
        s.recv_buffered = 0;
        self.unflowed_buffered = self.unflowed_buffered.saturating_sub(dropped);
        let code = if code == ErrorCode::Ok {
            ErrorCode::StreamClosed
        } else {
            code
        };
        if announced {
            let msg = Message::CloseStream {
                stream_id: id,
                code,
            }
            .to_vec();
            cx.control.push_back(msg);
        }
        cx.events.push_back(Event::StreamReset(id, code, false));
        cx.events.push_back(Event::StreamReadable(id));
        cx.events.push_back(Event::StreamWritable(id));
        self.send_room.recount(s);
        self.maybe_reap(id, cx);
        self.offer_send_room(cx);
    }

    /// Reads up to `max` bytes. `Blocked` also when the session has ended: the session
    /// reports its error then.
    pub fn read(&mut self, id: u64, max: usize, cx: &mut Cx<'_>) -> Result<ReadOutcome, Error> {
        let flow_control = self.flow_control;
        let growth_left = cx
            .limits
            .max_session_window_growth
            .saturating_sub(self.window_growth);
        let stream_cap = cx.limits.max_stream_window;
        let s = self.map.get_mut(&id).ok_or_else(|| no_stream(id))?;
        // This stream may grow up to the per-stream cap, within what the session has left.
        let max_window = stream_cap.min(s.recv_window.max(INITIAL_STREAM_WINDOW) + growth_left);
        if let Some(chunk) = s.take_recv(max.max(1)) {
            let n = chunk.len();
            let before = s.recv_window;
            let grant = s.maybe_grant(max_window, flow_control);
            let grown = s.recv_window - before;
            self.window_growth += grown;
            if !flow_control {
                self.unflowed_buffered = self.unflowed_buffered.saturating_sub(n);
            }
            if grant {
                enqueue(&mut self.send_queue, id, s);
            }
            return Ok(ReadOutcome::Data(chunk));
        }
        match s.recv {
            RecvState::ResetByPeer { code, fin } => {
                if code == ErrorCode::StreamClosed && fin {
                    return Ok(ReadOutcome::Finished);
                }
                Err(err(code, "the peer reset the stream"))
            }
            RecvState::ResetLocal { .. } => {
                Err(err(ErrorCode::StreamClosed, "stream was reset locally"))
            }
            RecvState::Fin => {
                self.maybe_reap(id, cx);
                Ok(ReadOutcome::Finished)
            }
            RecvState::Open => Ok(ReadOutcome::Blocked),
        }
    }

    /// The application let go of its stream handle: finish politely (unless the session
    /// has `failed`) and forget the stream once both directions are over.
    pub fn release(&mut self, id: u64, failed: bool, cx: &mut Cx<'_>) {
        let Some(s) = self.map.get_mut(&id) else {
            return;
        };
        s.handle_dropped = true;
        if !failed && !s.recv_done() && self.close_when_done {
            // TypeScript profile: the reference's own answer to a stream it destroys.
            self.reset(id, ErrorCode::StreamClosed, cx);
        } else if !failed && !s.is_reset() {
            // Nobody will read: what is buffered goes, with its credit back.
            let dropped = s.discard_recv();
            if !self.flow_control {
                self.unflowed_buffered = self.unflowed_buffered.saturating_sub(dropped);
            }
            if s.recv == RecvState::Open {
                // The peer is still sending. What we wrote must still arrive whole: after
                // our FIN, a graceful CLOSE_STREAM tells the peer to stop (its writes fail
                // with ERR_STREAM_CLOSED, its reads see our data, then the end). A reset
                // here (before) made the peer discard a reply we had written and finished
                // just before the drop (PROTOCOL.md §6.2).
                match s.send {
                    SendState::Open | SendState::FinQueued => {
                        s.send = SendState::FinQueued;
                        s.close_after_fin = true;
                        enqueue(&mut self.send_queue, id, s);
                    }
                    SendState::FinSent => {
                        cx.control.push_back(close_message(id));
                        s.stop_receiving();
                    }
                    SendState::ResetLocal { .. } | SendState::ResetByPeer { .. } => {}
                }
                if s.maybe_grant(s.recv_window, self.flow_control) {
                    enqueue(&mut self.send_queue, id, s);
                }
            } else if s.send == SendState::Open {
                s.send = SendState::FinQueued;
                enqueue(&mut self.send_queue, id, s);
            }
        }
        self.maybe_reap(id, cx);
    }

    /// Forgets a stream whose directions are both over and whose handle is gone.
    fn maybe_reap(&mut self, id: u64, cx: &mut Cx<'_>) {
        let done = self
            .map
            .get(&id)
            .is_some_and(|s| s.handle_dropped && s.send_done() && s.recv_done() && !s.open_pending);
        if !done {
            return;
        }
        let s = self.map.remove(&id).expect("checked");
        let frees_room = s.send_counted > 0 || s.send_room_offered;
        self.send_room.forget(&s);
        if frees_room {
            self.offer_send_room(cx);
        }
        if !self.stream_budgets.is_empty() {
            self.stream_budgets.remove(&id);
        }
        self.window_growth -= s.recv_window.saturating_sub(INITIAL_STREAM_WINDOW);
        if s.local {
            self.outbound_open -= 1;
        } else {
            self.inbound_open -= 1;
        }
    }

    /// Wakes writers waiting for session send room, if there is room for them.
    fn offer_send_room(&mut self, cx: &mut Cx<'_>) {
        self.send_room.offer(
            &mut self.map,
            cx.limits.session_send_buffer,
            cx.now,
            cx.events,
        );
    }

    // -----------------------------------------------------------------------------------
    // Timers

    /// When a stream held back by a send rate may send again, or room offered to woken
    /// writers lapses; `last_now` for a throttled stream whose budget says nothing.
    pub fn poll_timeout(&self, last_now: Instant) -> Option<Instant> {
        let mut t = self.send_room.deadline();
        if !self.throttled.is_empty() {
            let mut ready = self.session_budget.ready_at(1024.0);
            for id in &self.throttled {
                if let Some(b) = self.stream_budgets.get(id) {
                    let r = b.ready_at(1024.0);
                    ready = match (ready, r) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
            let ready = ready.unwrap_or(last_now);
            t = Some(t.map_or(ready, |t| t.min(ready)));
        }
        t
    }

    pub fn handle_timeout(&mut self, cx: &mut Cx<'_>) {
        for id in std::mem::take(&mut self.throttled) {
            if let Some(s) = self.map.get_mut(&id) {
                enqueue(&mut self.send_queue, id, s);
            }
        }
        if self.send_room.lapse_expired(&mut self.map, cx.now) {
            self.offer_send_room(cx);
        }
    }

    // -----------------------------------------------------------------------------------
    // Output

    /// Packs OPEN_STREAM, WINDOW_UPDATE and STREAM_DATA of queued streams into the frame
    /// being built (plaintext starts at `body`), round robin.
    pub fn pack(&mut self, out: &mut Vec<u8>, body: usize, cx: &mut Cx<'_>) {
        let now = cx.now;
        let stream_rate = cx.limits.stream_send_rate;
        let low_water = cx.limits.stream_send_buffer / 2;
        let mut rounds = self.send_queue.len();
        let session_avail = self.session_budget.available(now) as u64;
        let mut session_left = session_avail;
        while rounds > 0 {
            rounds -= 1;
            let Some(id) = self.send_queue.pop_front() else {
                break;
            };
            let used = out.len() - body;
            let room = MAX_PLAINTEXT - used;
            if room < 64 || (used > 0 && !self.batching) {
                self.send_queue.push_front(id);
                break;
            }
            let Some(s) = self.map.get_mut(&id) else {
                continue;
            };
            let start_len = out.len();
            if s.open_pending {
                Message::OpenStream {
                    stream_id: id,
                    label: s.label.as_deref(),
                }
                .encode(out);
                s.open_pending = false;
                if !self.batching {
                    // One message per frame: the data follows in the next one.
                    self.send_queue.push_front(id);
                    break;
                }
            }
            if let Some(credit) = s.take_update() {
                Message::WindowUpdate {
                    stream_id: id,
                    credit,
                }
                .encode(out);
            }
            let room = MAX_PLAINTEXT.saturating_sub(out.len() - body);
            let mut budget = (stream_rate != 0).then(|| {
                self.stream_budgets
                    .entry(id)
                    .or_insert_with(|| TokenBucket::per_second(stream_rate))
            });
            let stream_avail = budget
                .as_mut()
                .map_or(u64::MAX, |b| b.available(now) as u64);
            let overhead = stream_data_overhead(id, MAX_PLAINTEXT, true);
            if room > overhead && !s.is_reset() {
                let want = (s.send_buf.len() as u64)
                    .min(s.send_credit())
                    .min(session_left)
                    .min(stream_avail)
                    .min((room - overhead) as u64) as usize;
                let fin = s.send == SendState::FinQueued && want == s.send_buf.len();
                if want > 0 || fin {
                    encode_stream_data_header(out, id, want, fin);
                    s.send_buf.move_to(out, want);
                    if s.send_buf.is_empty()
                        && matches!(s.send, SendState::FinQueued | SendState::FinSent)
                    {
                        // Writing is over: release the allocation, so a stream waiting for
                        // its reply keeps no send buffer and many streams reuse a few
                        // buffers' memory. (A stream still being written keeps it: a
                        // writer slower than the transport drains it to empty often, and
                        // would regrow it write by write.)
                        s.send_buf = SendBuf::default();
                    }
                    encode_stream_data_trailer(out, id, fin);
                    s.send_offset += want as u64;
                    session_left -= want as u64;
                    if fin {
                        s.send = SendState::FinSent;
                        if self.close_when_done && s.recv.fin_seen() {
                            cx.control.push_back(close_message(id));
                        } else if s.close_after_fin && !s.recv.fin_seen() {
                            // Behind the FIN just encoded (`release`).
                            cx.control.push_back(close_message(id));
                            s.stop_receiving();
                        }
                    }
                    if let Some(b) = budget.as_mut() {
                        b.spend(want as f64);
                    }
                    // A blocked writer is woken once the buffer is at most half full,
                    // not per frame: it then refills several writes' worth in one go
                    // (each wake-up is a thread hand-off, across an FFI boundary in the
                    // bindings), while the other half keeps the transport busy.
                    if want > 0 && s.send_buf.len() <= low_water {
                        cx.events.push_back(Event::StreamWritable(id));
                    }
                }
            }
            self.send_room.recount(s);
            let throttled = stream_avail == 0 || session_left == 0;
            if (s.has_sendable() && !throttled) || s.update_pending {
                self.send_queue.push_back(id);
            } else if s.has_sendable() {
                // Rate-limited: retried from handle_timeout when the budget refills.
                s.in_send_queue = false;
                self.throttled.push(id);
            } else {
                s.in_send_queue = false;
                self.maybe_reap(id, cx);
            }
            if out.len() == start_len && session_left == 0 {
                break;
            }
        }
        self.session_budget
            .spend((session_avail - session_left) as f64);
        self.offer_send_room(cx);
    }
}

#[cfg(test)]
impl Streams {
    pub fn window_growth(&self) -> u64 {
        self.window_growth
    }

    pub fn send_buffered(&self, id: u64) -> usize {
        self.map.get(&id).map_or(0, |s| s.send_buf.len())
    }

    pub fn session_send_queued(&self) -> usize {
        self.send_room.queued()
    }
}
