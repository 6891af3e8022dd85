//! The multiplexing half of the session machine: inbound stream messages (OPEN_STREAM,
//! STREAM_DATA, WINDOW_UPDATE, CLOSE_STREAM), the application's stream calls, and packing
//! queued stream data and control messages into sealed frames. Spec: docs/PROTOCOL.md §3, §6.

use super::*;

impl Session {
    pub(super) fn stream_parity_is_remote(&self, id: u64) -> bool {
        // Dialer ids are even, listener ids odd.
        (id % 2 == 1) == self.cfg.initiator
    }

    pub(super) fn on_established_message(
        &mut self,
        m: Message<'_>,
        frame: &Bytes,
        now: Instant,
    ) -> Result<(), Error> {
        match m {
            Message::OpenStream { stream_id, label } => self.on_open_stream(stream_id, label, now),
            Message::StreamData {
                stream_id,
                data,
                fin,
            } => self.on_stream_data(stream_id, data, fin, frame),
            Message::WindowUpdate { stream_id, credit } => {
                if let Some(s) = self.streams.get_mut(&stream_id) {
                    s.send_limit = s
                        .send_limit
                        .checked_add(credit)
                        .ok_or_else(|| err(ErrorCode::InvalidMessage, "window update overflows"))?;
                    if s.send_limit > (1u64 << 62) {
                        return Err(err(ErrorCode::InvalidMessage, "window too large"));
                    }
                    let sendable = s.has_sendable();
                    self.events.push_back(Event::StreamWritable(stream_id));
                    self.recount_send(stream_id);
                    if sendable {
                        self.enqueue_send(stream_id);
                    }
                }
                Ok(())
            }
            Message::CloseStream { stream_id, code } => {
                if let Some(s) = self.streams.get_mut(&stream_id) {
                    if code == ErrorCode::Ok {
                        // Graceful close of the whole stream: reading sees FIN, writing
                        // stops.
                        s.recv_fin = true;
                        if !s.send_fin_sent {
                            s.reset = Some(ErrorCode::StreamClosed);
                        }
                    } else {
                        s.reset = Some(code);
                        s.recv_buf.clear();
                        self.unflowed_buffered =
                            self.unflowed_buffered.saturating_sub(s.recv_buffered);
                        s.recv_buffered = 0;
                    }
                    self.events.push_back(Event::StreamReadable(stream_id));
                    self.events.push_back(Event::StreamWritable(stream_id));
                    self.recount_send(stream_id);
                    self.maybe_reap(stream_id);
                    self.offer_send_room();
                }
                Ok(())
            }
            Message::Ping { seq, timestamp } => {
                let pong = Message::Pong { seq, timestamp }.to_vec();
                self.send_control(pong);
                Ok(())
            }
            Message::Pong { seq, .. } => {
                if seq == self.ping_seq && self.ping_deadline.is_some() {
                    self.ping_deadline = None;
                    if let Some(at) = self.ping_sent_at.take() {
                        self.rtt = Some(now.saturating_duration_since(at));
                    }
                }
                Ok(())
            }
            Message::AliasCard { card } => {
                // Invalid or foreign cards are dropped, not fatal: aliases are cosmetic.
                if let Ok(card) = AliasCard::decode(card) {
                    let now_unix = self.cfg.clock.unix(now);
                    let mine = Some(&card.principal) == self.remote_principal.as_ref();
                    if mine && card.verify(now_unix, NetworkFilter::ANY).is_ok() {
                        self.events.push_back(Event::AliasCard(Box::new(card)));
                    }
                }
                Ok(())
            }
            Message::Hello(_)
            | Message::Auth(_)
            | Message::AuthOk { .. }
            | Message::Knock { .. }
            | Message::KnockResponse { .. } => Err(err(
                ErrorCode::InvalidMessage,
                "handshake message after the session was established",
            )),
            Message::AuthFail { .. } | Message::Error { .. } => Ok(()),
        }
    }

    pub(super) fn on_open_stream(
        &mut self,
        id: u64,
        label: Option<&str>,
        now: Instant,
    ) -> Result<(), Error> {
        if !self.stream_parity_is_remote(id) {
            return Err(err(
                ErrorCode::InvalidMessage,
                format!("stream id {id} has our parity"),
            ));
        }
        if id < self.next_remote_id || self.streams.contains_key(&id) {
            return Err(err(
                ErrorCode::StreamIdInUse,
                format!("stream id {id} was already used"),
            ));
        }
        self.next_remote_id = id + 2;
        let rate_ok = self.cfg.limits.max_stream_opens_per_sec == 0 || {
            let (start, count) = &mut self.open_window;
            if now.saturating_duration_since(*start) >= Duration::from_secs(1) {
                *start = now;
                *count = 0;
            }
            *count += 1;
            *count <= self.cfg.limits.max_stream_opens_per_sec
        };
        if self.inbound_open >= self.cfg.limits.max_streams || !rate_ok {
            let refuse = Message::CloseStream {
                stream_id: id,
                code: ErrorCode::StreamRefused,
            }
            .to_vec();
            self.send_control(refuse);
            return Ok(());
        }
        let label = label.map(|l| l.chars().take(256).collect::<String>());
        let window = INITIAL_STREAM_WINDOW;
        self.streams.insert(
            id,
            StreamState::new(label, false, window, self.flow_control),
        );
        self.inbound_open += 1;
        self.idle_since = None;
        self.accept_queue.push_back(id);
        self.events.push_back(Event::StreamOpened(id));
        Ok(())
    }

    pub(super) fn on_stream_data(
        &mut self,
        id: u64,
        data: &[u8],
        fin: bool,
        frame: &Bytes,
    ) -> Result<(), Error> {
        let known = self.streams.contains_key(&id);
        if !known {
            let used = if self.stream_parity_is_remote(id) {
                id < self.next_remote_id
            } else {
                id < self.next_local_id
            };
            if used {
                // Data in flight for a stream already closed or refused: drop it.
                return Ok(());
            }
            return Err(err(
                ErrorCode::StreamNotFound,
                format!("data for stream {id} that was never opened"),
            ));
        }
        let flow_control = self.flow_control;
        let max_unflowed = self.cfg.limits.max_unflowed_buffer;
        let s = self.streams.get_mut(&id).expect("checked");
        if s.recv_fin {
            return Err(err(
                ErrorCode::StreamClosed,
                format!("data after FIN on stream {id}"),
            ));
        }
        if s.reset.is_some() || s.local_reset {
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
        if !data.is_empty() {
            s.recv_buf.push_back(frame.slice_ref(data));
            s.recv_buffered += data.len();
            if !flow_control {
                self.unflowed_buffered += data.len();
                if self.unflowed_buffered > max_unflowed {
                    return Err(err(
                        ErrorCode::ResourceExhausted,
                        "peer without flow control outran the reader",
                    ));
                }
            }
        }
        if fin {
            s.recv_fin = true;
        }
        self.events.push_back(Event::StreamReadable(id));
        if fin {
            self.maybe_reap(id);
        }
        Ok(())
    }
    // -----------------------------------------------------------------------------------
    // Application calls on streams

    /// Opens a stream; OPEN_STREAM goes out with the next transmit, data may follow at once.
    pub fn open_stream(&mut self, label: Option<&str>) -> Result<u64, Error> {
        self.check_open()?;
        if !self.is_established() {
            return Err(err(ErrorCode::InvalidMessage, "session not established"));
        }
        if self.close_requested.is_some() {
            return Err(err(ErrorCode::ConnectionClosed, "session is closing"));
        }
        if self.outbound_open >= self.cfg.limits.max_streams {
            return Err(err(
                ErrorCode::StreamRefused,
                format!(
                    "local limit of {} open streams reached",
                    self.cfg.limits.max_streams
                ),
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
        self.streams.insert(
            id,
            StreamState::new(
                label.map(str::to_string),
                true,
                INITIAL_STREAM_WINDOW,
                self.flow_control,
            ),
        );
        self.outbound_open += 1;
        self.idle_since = None;
        self.enqueue_send(id);
        Ok(id)
    }

    pub(super) fn stream_mut(&mut self, id: u64) -> Result<&mut StreamState, Error> {
        self.streams.get_mut(&id).ok_or_else(|| no_stream(id))
    }

    /// Bytes [`Session::write`] would take now (0: wait for [`Event::StreamWritable`]), or
    /// the error it would return.
    pub fn send_room(&mut self, id: u64) -> Result<usize, Error> {
        self.check_open()?;
        let (cap, session_cap) = self.send_caps();
        let s = self.streams.get_mut(&id).ok_or_else(|| no_stream(id))?;
        let room = room_in(s, cap)?;
        Ok(self.send_room.admit(id, s, room, session_cap))
    }

    /// Queues up to `data.len()` bytes; returns how many were taken (0: wait for
    /// [`Event::StreamWritable`]).
    pub fn write(&mut self, id: u64, data: &[u8]) -> Result<usize, Error> {
        self.queue_write(id, data.len(), |buf, n| buf.extend_from_slice(&data[..n]))
    }

    /// As [`Session::write`], but queues (a prefix of) `data` itself instead of a copy.
    pub fn write_bytes(&mut self, id: u64, data: &Bytes) -> Result<usize, Error> {
        self.queue_write(id, data.len(), |buf, n| buf.push(data.slice(..n)))
    }

    /// Admits up to `len` bytes into stream `id`'s send buffer; `queue(buf, n)` puts the
    /// first `n` there.
    fn queue_write(
        &mut self,
        id: u64,
        len: usize,
        queue: impl FnOnce(&mut SendBuf, usize),
    ) -> Result<usize, Error> {
        self.check_open()?;
        let (cap, session_cap) = self.send_caps();
        let s = self.streams.get_mut(&id).ok_or_else(|| no_stream(id))?;
        let room = room_in(s, cap)?;
        let n = self.send_room.admit(id, s, room, session_cap).min(len);
        if n == 0 {
            return Ok(0);
        }
        queue(&mut s.send_buf, n);
        self.send_room.wrote(s);
        if s.has_sendable() && !s.in_send_queue {
            s.in_send_queue = true;
            self.send_queue.push_back(id);
        }
        Ok(n)
    }

    /// The per-stream and the session-wide send buffer sizes.
    fn send_caps(&self) -> (usize, usize) {
        let l = &self.cfg.limits;
        (l.stream_send_buffer, l.session_send_buffer)
    }

    /// Brings the session's counted send bytes up to date with stream `id`.
    pub(super) fn recount_send(&mut self, id: u64) {
        if let Some(s) = self.streams.get_mut(&id) {
            self.send_room.recount(s);
        }
    }

    /// Wakes writers waiting for session send room, if there is room for them.
    pub(super) fn offer_send_room(&mut self) {
        let cap = self.cfg.limits.session_send_buffer;
        self.send_room
            .offer(&mut self.streams, cap, self.last_now, &mut self.events);
    }

    /// Half-closes our direction: FIN after the queued data.
    pub fn finish(&mut self, id: u64) -> Result<(), Error> {
        self.check_open()?;
        let s = self.stream_mut(id)?;
        if let Some(code) = s.reset {
            return Err(err(code, "the peer reset or closed the stream"));
        }
        if s.local_reset {
            return Err(err(ErrorCode::StreamClosed, "stream was reset"));
        }
        if !s.send_fin_requested {
            s.send_fin_requested = true;
            self.enqueue_send(id);
        }
        Ok(())
    }

    /// Aborts both directions with `code` (CLOSE_STREAM).
    pub fn reset(&mut self, id: u64, code: ErrorCode) -> Result<(), Error> {
        self.check_open()?;
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if s.local_reset || s.reset.is_some() {
            return Ok(());
        }
        s.local_reset = true;
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
            self.send_control(msg);
        }
        self.events.push_back(Event::StreamReadable(id));
        self.events.push_back(Event::StreamWritable(id));
        self.recount_send(id);
        self.maybe_reap(id);
        self.offer_send_room();
        Ok(())
    }

    /// Reads up to `max` bytes.
    pub fn read(&mut self, id: u64, max: usize) -> Result<ReadOutcome, Error> {
        let flow_control = self.flow_control;
        let session_error = self.error.clone();
        let growth_left = self
            .cfg
            .limits
            .max_session_window_growth
            .saturating_sub(self.window_growth);
        let stream_cap = self.cfg.limits.max_stream_window;
        let s = self.stream_mut(id)?;
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
                self.enqueue_send(id);
            }
            return Ok(ReadOutcome::Data(chunk));
        }
        if let Some(code) = s.reset {
            if code == ErrorCode::StreamClosed && s.recv_fin {
                return Ok(ReadOutcome::Finished);
            }
            return Err(err(code, "the peer reset the stream"));
        }
        if s.local_reset {
            return Err(err(ErrorCode::StreamClosed, "stream was reset locally"));
        }
        if s.recv_fin {
            self.maybe_reap(id);
            return Ok(ReadOutcome::Finished);
        }
        if let Some(e) = session_error {
            return Err(as_operation_error(&e));
        }
        Ok(ReadOutcome::Blocked)
    }

    /// Bytes queued for reading on a stream.
    pub fn readable_bytes(&self, id: u64) -> usize {
        self.streams.get(&id).map_or(0, |s| s.recv_buffered)
    }

    /// The application let go of its stream handle: finish politely and forget the stream
    /// once both directions are over.
    pub fn release_stream(&mut self, id: u64) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.handle_dropped = true;
            if self.error.is_none() {
                if !s.recv_done() {
                    // Nobody will read: tell the peer to stop sending.
                    let _ = self.reset(id, ErrorCode::StreamClosed);
                } else if !s.send_fin_requested && !s.send_done() {
                    s.send_fin_requested = true;
                    self.enqueue_send(id);
                }
            }
            self.maybe_reap(id);
        }
    }

    /// Forgets a stream whose directions are both over and whose handle is gone.
    pub(super) fn maybe_reap(&mut self, id: u64) {
        let done = self
            .streams
            .get(&id)
            .is_some_and(|s| s.handle_dropped && s.send_done() && s.recv_done() && !s.open_pending);
        if done {
            let s = self.streams.remove(&id).expect("checked");
            let frees_room = s.send_counted > 0 || s.send_room_offered;
            self.send_room.forget(&s);
            if frees_room {
                self.offer_send_room();
            }
            self.stream_budgets.remove(&id);
            self.window_growth -= s.recv_window.saturating_sub(INITIAL_STREAM_WINDOW);
            if s.local {
                self.outbound_open -= 1;
            } else {
                self.inbound_open -= 1;
            }
        }
    }

    pub(super) fn enqueue_send(&mut self, id: u64) {
        if let Some(s) = self.streams.get_mut(&id) {
            if !s.in_send_queue {
                s.in_send_queue = true;
                self.send_queue.push_back(id);
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Output

    /// Appends bytes to write to the transport until `out` holds about `max` bytes or
    /// nothing is left. Small messages of many streams share frames (capability `batch`).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>, max: usize) {
        self.last_now = now;
        if !self.out_plain.is_empty() {
            out.extend_from_slice(&self.out_plain);
            self.out_plain.clear();
        }
        if matches!(self.phase, Phase::Closing) {
            self.phase = Phase::Closed;
            return;
        }
        if self.error.is_some() || self.transport.is_none() {
            return;
        }
        if self.streams.is_empty() && self.idle_since.is_none() && self.is_established() {
            self.idle_since = Some(now);
        }
        let established = self.is_established();
        while out.len() < max {
            let start = NoiseTransport::begin_frame(out);
            let body = out.len();
            // Control messages first: they are small and unblock the peer.
            while let Some(msg) = self.control.front() {
                let used = out.len() - body;
                if used > 0 && (!self.batching || used + msg.len() > MAX_PLAINTEXT) {
                    break;
                }
                out.extend_from_slice(msg);
                self.control.pop_front();
            }
            if established && (self.batching || out.len() == body) {
                self.pack_streams(now, out, body);
            }
            if out.len() == body {
                out.truncate(start);
                break;
            }
            if let Err(e) = self
                .transport
                .as_mut()
                .expect("checked above")
                .seal_frame(out, start)
            {
                out.truncate(start);
                self.fail(e);
                return;
            }
        }
        if let Some((code, reason)) = self.close_requested.clone() {
            let drained = self.control.is_empty()
                && self
                    .streams
                    .values()
                    .all(|s| s.send_buf.is_empty() || s.send_done());
            // Past the linger, close anyway: the peer's readers of what is dropped see the
            // session end without FIN (ERR_CONNECTION_CLOSED), local writers the same.
            let drained = drained || self.close_linger_over(now);
            if drained && out.len() < max {
                let reason = Some(reason.as_str()).filter(|r| !r.is_empty());
                let msg = Message::Error { code, reason }.to_vec();
                if let Some(t) = self.transport.as_mut() {
                    let _ = t.encrypt_frame(&msg, out);
                }
                let e = Error::new(code, "the session was closed locally");
                self.enter_closed(e);
                self.phase = Phase::Closed;
            }
        }
    }

    /// Packs OPEN_STREAM, WINDOW_UPDATE and STREAM_DATA of queued streams into the frame
    /// being built (plaintext starts at `body`), round robin.
    pub(super) fn pack_streams(&mut self, now: Instant, out: &mut Vec<u8>, body: usize) {
        let mut rounds = self.send_queue.len();
        let session_avail = self.session_budget.available(now);
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
            let stream_rate = self.cfg.limits.stream_send_rate;
            let low_water = self.cfg.limits.stream_send_buffer / 2;
            let Some(s) = self.streams.get_mut(&id) else {
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
            }
            if let Some(credit) = s.take_update() {
                Message::WindowUpdate {
                    stream_id: id,
                    credit,
                }
                .encode(out);
            }
            let room = MAX_PLAINTEXT.saturating_sub(out.len() - body);
            let stream_avail = if stream_rate == 0 {
                u64::MAX
            } else {
                self.stream_budgets
                    .entry(id)
                    .or_insert_with(|| SendBudget::new(stream_rate))
                    .available(now)
            };
            let overhead = stream_data_overhead(id, MAX_PLAINTEXT, true);
            if room > overhead && !(s.local_reset || s.reset.is_some()) {
                let want = (s.send_buf.len() as u64)
                    .min(s.send_credit())
                    .min(session_left)
                    .min(stream_avail)
                    .min((room - overhead) as u64) as usize;
                let fin = s.send_fin_requested && !s.send_fin_sent && want == s.send_buf.len();
                if want > 0 || fin {
                    encode_stream_data_header(out, id, want, fin);
                    s.send_buf.move_to(out, want);
                    if s.send_buf.is_empty() && s.send_fin_requested {
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
                        s.send_fin_sent = true;
                    }
                    if stream_rate != 0 {
                        if let Some(b) = self.stream_budgets.get_mut(&id) {
                            b.spend(want as u64);
                        }
                    }
                    // A blocked writer is woken once the buffer is at most half full,
                    // not per frame: it then refills several writes' worth in one go
                    // (each wake-up is a thread hand-off, across an FFI boundary in the
                    // bindings), while the other half keeps the transport busy.
                    if want > 0 && s.send_buf.len() <= low_water {
                        self.events.push_back(Event::StreamWritable(id));
                    }
                }
            }
            let s = self.streams.get_mut(&id).expect("present");
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
                self.maybe_reap(id);
            }
            if out.len() == start_len && session_left == 0 {
                break;
            }
        }
        self.session_budget.spend(session_avail - session_left);
        self.offer_send_room();
    }
}

/// What a stream's send buffer of capacity `cap` can take now, or why it takes nothing.
fn room_in(s: &StreamState, cap: usize) -> Result<usize, Error> {
    if let Some(code) = s.reset {
        return Err(err(code, "the peer reset or closed the stream"));
    }
    if s.local_reset || s.send_fin_requested {
        return Err(err(ErrorCode::StreamClosed, "stream closed for writing"));
    }
    Ok(cap.saturating_sub(s.send_buf.len()))
}

fn no_stream(id: u64) -> Error {
    err(ErrorCode::StreamNotFound, format!("no stream {id}"))
}
