//! The multiplexing half of the session machine: the dispatch of established frames' messages
//! (stream messages to [`Streams`], PING/PONG to keepalive, AliasCards), the application's
//! stream calls (the session's checks, then [`Streams`]), and packing control messages and
//! stream data into sealed frames. Spec: docs/PROTOCOL.md §3, §6.

use super::*;

impl Session {
    /// The permissions check of an inbound OPEN_STREAM (PROTOCOL.md §33.1): whether the
    /// remote principal may open `label` now; also re-applies the rules' send rate when
    /// they changed.
    fn stream_permitted(&mut self, label: Option<&str>, now: Instant) -> bool {
        let (Some(perms), Some(remote)) = (&self.cfg.permissions, &self.remote_principal) else {
            return true;
        };
        let generation = perms.generation();
        if generation != self.perm_generation {
            self.perm_generation = generation;
            let rate = perms
                .send_rate(remote)
                .unwrap_or(self.cfg.limits.session_send_rate);
            self.streams.set_session_rate(rate);
        }
        let now_unix = self.cfg.clock.unix(now);
        match perms.check_open(
            remote,
            label,
            &self.grants,
            self.streams.inbound_open(),
            now_unix,
        ) {
            Ok(()) => true,
            Err(why) => {
                tracing::debug!(reason = why.as_str(), "stream refused by the rules");
                false
            }
        }
    }

    /// Keeps a grant the remote presented and the node verified (at most
    /// `MAX_GRANTS_PER_SESSION`; the same grant again replaces itself).
    pub fn add_grant(&mut self, grant: crate::policy::ActiveGrant) -> Result<(), Error> {
        self.check_open()?;
        self.grants.retain(|g| g.ids != grant.ids);
        if self.grants.len() >= crate::policy::MAX_GRANTS_PER_SESSION {
            return Err(err(
                ErrorCode::ResourceExhausted,
                "this session holds the most grants it may",
            ));
        }
        self.grants.push(grant);
        Ok(())
    }

    pub(super) fn on_established_message(
        &mut self,
        m: Message<'_>,
        frame: &Bytes,
        now: Instant,
    ) -> Result<(), Error> {
        match m {
            Message::OpenStream { stream_id, label } => {
                let permitted = self.stream_permitted(label, now);
                let (streams, mut cx) = self.streams_cx();
                if streams.on_open_stream(stream_id, label, permitted, &mut cx)? {
                    self.keepalive.active();
                }
                Ok(())
            }
            Message::StreamData {
                stream_id,
                data,
                fin,
            } => {
                let (streams, mut cx) = self.streams_cx();
                streams.on_stream_data(stream_id, data, fin, frame, &mut cx)
            }
            Message::WindowUpdate { stream_id, credit } => {
                let (streams, mut cx) = self.streams_cx();
                streams.on_window_update(stream_id, credit, &mut cx)
            }
            Message::CloseStream { stream_id, code } => {
                let (streams, mut cx) = self.streams_cx();
                streams.on_close_stream(stream_id, code, &mut cx)
            }
            Message::Ping { seq, timestamp } => {
                // The reference's PONG carries its own clock, not the PING's `ts`.
                let timestamp = if self.cfg.profile.is_typescript() {
                    self.cfg.clock.unix(now)
                } else {
                    timestamp
                };
                let pong = Message::Pong { seq, timestamp }.to_vec();
                self.send_control(pong);
                Ok(())
            }
            Message::Pong { seq, .. } => {
                self.keepalive.on_pong(seq, now);
                Ok(())
            }
            Message::Rekey { n } => self.on_rekey(n),
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
            Message::AuthFail { code, reason } | Message::Error { code, reason } => {
                self.enter_closed_by_peer(code, reason);
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
        }
    }

    // -----------------------------------------------------------------------------------
    // Application calls on streams

    /// Opens a stream; OPEN_STREAM goes out with the next transmit, data may follow at once.
    pub fn open_stream(&mut self, label: Option<&str>) -> Result<u64, Error> {
        self.check_open()?;
        if !self.is_established() {
            return Err(err(ErrorCode::InvalidMessage, "session not established"));
        }
        if self.close.is_some() {
            return Err(err(ErrorCode::ConnectionClosed, "session is closing"));
        }
        let id = self.streams.open(label, &self.cfg.limits)?;
        self.keepalive.active();
        self.events.push_back(Event::LocalStreamOpened(id));
        Ok(id)
    }

    /// Bytes [`Session::write`] would take now (0: wait for [`Event::StreamWritable`]), or
    /// the error it would return.
    pub fn send_room(&mut self, id: u64) -> Result<usize, Error> {
        self.check_open()?;
        self.streams.send_room(id, &self.cfg.limits)
    }

    /// Queues up to `data.len()` bytes; returns how many were taken (0: wait for
    /// [`Event::StreamWritable`]).
    pub fn write(&mut self, id: u64, data: &[u8]) -> Result<usize, Error> {
        self.check_open()?;
        self.streams
            .write(id, data.len(), &self.cfg.limits, |buf, n| {
                buf.extend_from_slice(&data[..n])
            })
    }

    /// As [`Session::write`], but queues (a prefix of) `data` itself instead of a copy.
    pub fn write_bytes(&mut self, id: u64, data: &Bytes) -> Result<usize, Error> {
        self.check_open()?;
        self.streams
            .write(id, data.len(), &self.cfg.limits, |buf, n| {
                buf.push(data.slice(..n))
            })
    }

    /// Half-closes our direction: FIN after the queued data.
    pub fn finish(&mut self, id: u64) -> Result<(), Error> {
        self.check_open()?;
        self.streams.finish(id)
    }

    /// Aborts both directions with `code` (CLOSE_STREAM).
    pub fn reset(&mut self, id: u64, code: ErrorCode) -> Result<(), Error> {
        self.check_open()?;
        let (streams, mut cx) = self.streams_cx();
        streams.reset(id, code, &mut cx);
        Ok(())
    }

    /// Reads up to `max` bytes.
    pub fn read(&mut self, id: u64, max: usize) -> Result<ReadOutcome, Error> {
        let (streams, mut cx) = self.streams_cx();
        match streams.read(id, max, &mut cx)? {
            ReadOutcome::Blocked => match &self.error {
                Some(e) => Err(as_operation_error(e)),
                None => Ok(ReadOutcome::Blocked),
            },
            outcome => Ok(outcome),
        }
    }

    /// Bytes queued for reading on a stream.
    pub fn readable_bytes(&self, id: u64) -> usize {
        self.streams.readable_bytes(id)
    }

    /// Whether [`Self::read`] of `id` would answer now instead of blocking; takes nothing.
    pub fn read_ready(&self, id: u64) -> bool {
        self.error.is_some() || self.streams.read_ready(id)
    }

    /// The application let go of its stream handle: finish politely and forget the stream
    /// once both directions are over.
    pub fn release_stream(&mut self, id: u64) {
        let failed = self.error.is_some();
        let (streams, mut cx) = self.streams_cx();
        streams.release(id, failed, &mut cx);
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
        if self.held {
            // Nothing may follow AUTH_OK yet (PROTOCOL.md §12.3). A close asked for now
            // is the socket's close: an ERROR would be read with AUTH_OK and dropped.
            if self.close.is_some() {
                let e = Error::new(ErrorCode::Ok, "the session was closed locally");
                self.enter_closed(e);
                self.phase = Phase::Closed;
            }
            return;
        }
        if self.streams.is_empty() && self.is_established() {
            self.keepalive.idle(now);
        }
        self.pack_frames(now, out, max);
        if self.error.is_some() {
            return;
        }
        self.finish_close(now, out, max);
    }

    /// TypeScript-profile dialer: the listener's first frame arrived, so what was queued
    /// behind our AUTH_OK is sealed now, in its order, ahead of any answer to that frame.
    pub(super) fn release(&mut self, now: Instant) {
        self.held = false;
        let mut out = std::mem::take(&mut self.out_plain);
        let max = out.len() + RELEASE_BATCH;
        self.pack_frames(now, &mut out, max);
        self.out_plain = out;
    }

    /// Seals control messages and stream data into frames until `out` holds about `max`
    /// bytes or nothing is left.
    fn pack_frames(&mut self, now: Instant, out: &mut Vec<u8>, max: usize) {
        let established = self.is_established();
        while out.len() < max {
            // The last frame under a key that reached a rekey threshold: REKEY, alone.
            if let Err(e) = self.maybe_send_rekey(now, out) {
                self.fail(e);
                return;
            }
            let start = NoiseTransport::begin_frame(out);
            let body = out.len();
            // Control messages first: they are small and unblock the peer.
            while let Some(msg) = self.control.front() {
                let used = out.len() - body;
                if used > 0 && (!self.streams.batching || used + msg.len() > MAX_PLAINTEXT) {
                    break;
                }
                out.extend_from_slice(msg);
                self.control.pop_front();
            }
            if established && (self.streams.batching || out.len() == body) {
                let (streams, mut cx) = self.streams_cx();
                streams.pack(out, body, &mut cx);
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
            self.frames_sent += 1;
        }
    }

    /// A requested close, once the queued data is out: ERROR{code}, then closed.
    fn finish_close(&mut self, now: Instant, out: &mut Vec<u8>, max: usize) {
        if let Some(close) = self.close.as_deref() {
            let code = close.code;
            let drained = self.control.is_empty() && self.streams.drained();
            // Past the linger, close anyway: the peer's readers of what is dropped see the
            // session end without FIN (ERR_CONNECTION_CLOSED), local writers the same.
            let drained = drained || self.close_linger_over(now);
            if drained && out.len() < max {
                let reason = Some(close.reason.as_str()).filter(|r| !r.is_empty());
                let msg = Message::Error { code, reason }.to_vec();
                if let Some(t) = self.transport.as_mut() {
                    let _ = t.encrypt_frame(&msg, out);
                    self.frames_sent += 1;
                }
                let e = Error::new(code, "the session was closed locally");
                self.enter_closed(e);
                self.phase = Phase::Closed;
            }
        }
    }
}
