//! Per-stream state: receive buffer, send buffer and credit-based flow control.
//!
//! Credit is granted when the application *reads* (not when bytes arrive), so a slow reader
//! holds at most one window of buffered data; the update goes out once half the window is
//! consumed. A window doubles (up to the configured maximum) when the sender had used all of
//! it while the reader kept up, which is what a link whose bandwidth-delay product exceeds
//! the window looks like from here.

use std::collections::VecDeque;

use bytes::{Buf, Bytes};

use super::send_buf::SendBuf;

use crate::error::ErrorCode;

/// The send direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendState {
    /// The application may write.
    Open,
    /// The application finished writing; a FIN goes out after the buffer drains.
    FinQueued,
    /// The FIN is written: the direction is over.
    FinSent,
    /// We reset the stream (CLOSE_STREAM with a code written or queued). `fin_sent`: our
    /// FIN had gone out before (a graceful close from the peer then ends nothing more).
    ResetLocal { fin_sent: bool },
    /// The peer reset the stream, refused it or closed it before our FIN went out.
    ResetByPeer { code: ErrorCode, fin_sent: bool },
}

/// The receive direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvState {
    /// Data may arrive.
    Open,
    /// The peer sent FIN (or closed the stream gracefully): what is buffered is the rest.
    Fin,
    /// We reset the stream. `fin`: the peer's FIN had arrived before (data after it is
    /// still a protocol error).
    ResetLocal { fin: bool },
    /// The peer reset, refused or closed the stream with `code`. `fin`: its FIN (or graceful
    /// close) had arrived; a stream closed gracefully reads to its end, then `Finished`.
    ResetByPeer { code: ErrorCode, fin: bool },
}

impl SendState {
    /// Our FIN went out (before any reset).
    fn fin_sent(self) -> bool {
        matches!(
            self,
            SendState::FinSent
                | SendState::ResetLocal { fin_sent: true }
                | SendState::ResetByPeer { fin_sent: true, .. }
        )
    }
}

impl RecvState {
    /// The peer's FIN (or graceful close) arrived, whatever happened since.
    pub fn fin_seen(self) -> bool {
        matches!(
            self,
            RecvState::Fin
                | RecvState::ResetLocal { fin: true }
                | RecvState::ResetByPeer { fin: true, .. }
        )
    }
}

#[derive(Debug)]
pub(crate) struct StreamState {
    pub label: Option<String>,
    /// We opened it (our parity).
    pub local: bool,
    /// OPEN_STREAM not yet written (for locally opened streams).
    pub open_pending: bool,
    pub send: SendState,
    pub recv: RecvState,

    // ---- receive side
    pub recv_buf: VecDeque<Bytes>,
    pub recv_buffered: usize,
    /// Bytes received / consumed by the application / the most the peer may send in total.
    pub recv_received: u64,
    pub recv_consumed: u64,
    pub recv_limit: u64,
    pub recv_window: u64,
    /// A WINDOW_UPDATE is owed.
    pub update_pending: bool,

    // ---- send side
    pub send_buf: SendBuf,
    pub send_offset: u64,
    pub send_limit: u64,
    /// The application dropped its handle.
    pub handle_dropped: bool,
    /// Dropped while the peer was still sending: a graceful CLOSE_STREAM follows our FIN
    /// (`Streams::release`).
    pub close_after_fin: bool,
    /// Queued in the session's send rotation.
    pub in_send_queue: bool,
    /// What this stream adds to the session's counted send bytes (`counted_send`).
    pub send_counted: usize,
    /// In the session's queue of writers waiting for send room.
    pub waits_for_session_room: bool,
    /// Woken from that queue with session send room offered, not written since.
    pub send_room_offered: bool,
}

impl StreamState {
    pub fn new(label: Option<String>, local: bool, window: u64, flow_control: bool) -> Self {
        let limit = if flow_control { window } else { u64::MAX };
        StreamState {
            label,
            local,
            open_pending: local,
            send: SendState::Open,
            recv: RecvState::Open,
            recv_buf: VecDeque::new(),
            recv_buffered: 0,
            recv_received: 0,
            recv_consumed: 0,
            recv_limit: limit,
            recv_window: window,
            update_pending: false,
            send_buf: SendBuf::default(),
            send_offset: 0,
            send_limit: limit,
            handle_dropped: false,
            close_after_fin: false,
            in_send_queue: false,
            send_counted: 0,
            waits_for_session_room: false,
            send_room_offered: false,
        }
    }

    /// Reset by either side: both directions are over.
    pub fn is_reset(&self) -> bool {
        matches!(
            self.send,
            SendState::ResetLocal { .. } | SendState::ResetByPeer { .. }
        )
    }

    /// We reset the stream (both directions end).
    pub fn reset_locally(&mut self) {
        self.send = SendState::ResetLocal {
            fin_sent: self.send.fin_sent(),
        };
        self.recv = RecvState::ResetLocal {
            fin: self.recv.fin_seen(),
        };
    }

    /// The peer reset, refused or closed the stream with `code` (both directions end; a
    /// reset of ours before is superseded: the peer's code is what both directions report).
    pub fn reset_by_peer(&mut self, code: ErrorCode) {
        self.send = SendState::ResetByPeer {
            code,
            fin_sent: self.send.fin_sent(),
        };
        self.recv = RecvState::ResetByPeer {
            code,
            fin: self.recv.fin_seen(),
        };
    }

    /// The peer's FIN (or graceful close) arrived.
    pub fn fin_arrived(&mut self) {
        self.recv = match self.recv {
            RecvState::Open | RecvState::Fin => RecvState::Fin,
            RecvState::ResetLocal { .. } => RecvState::ResetLocal { fin: true },
            RecvState::ResetByPeer { code, .. } => RecvState::ResetByPeer { code, fin: true },
        };
    }

    /// The peer closed the whole stream gracefully (CLOSE_STREAM with code 0): reading sees
    /// FIN, and writing stops unless our FIN is already out.
    pub fn closed_by_peer(&mut self) {
        self.fin_arrived();
        if !self.send.fin_sent() {
            self.reset_by_peer(ErrorCode::StreamClosed);
        }
    }

    /// Bytes the flow-control window lets us send right now.
    pub fn send_credit(&self) -> u64 {
        self.send_limit.saturating_sub(self.send_offset)
    }

    /// Queued bytes the peer has granted credit for: what counts against the session's
    /// send buffer. Bytes beyond the credit wait on the reader, not on the transport.
    pub fn counted_send(&self) -> usize {
        if self.is_reset() {
            return 0;
        }
        (self.send_buf.len() as u64).min(self.send_credit()) as usize
    }

    /// Something to put on the wire: data within credit, or a FIN once data has drained.
    pub fn has_sendable(&self) -> bool {
        if self.is_reset() {
            return false;
        }
        (!self.send_buf.is_empty() && self.send_credit() > 0)
            || (self.send == SendState::FinQueued && self.send_buf.is_empty())
    }

    /// The send direction is over (FIN written or stream reset).
    pub fn send_done(&self) -> bool {
        self.send == SendState::FinSent || self.is_reset()
    }

    /// The receive direction is over and the application has everything.
    pub fn recv_done(&self) -> bool {
        match self.recv {
            RecvState::Open => false,
            RecvState::Fin => self.recv_buf.is_empty(),
            RecvState::ResetLocal { .. } | RecvState::ResetByPeer { .. } => true,
        }
    }

    /// Drops what is buffered for reading, as if read (nobody will read it); returns how
    /// many bytes that was.
    pub fn discard_recv(&mut self) -> usize {
        let n = self.recv_buffered;
        self.recv_buf.clear();
        self.recv_buffered = 0;
        self.recv_consumed += n as u64;
        n
    }

    /// We told the peer to stop sending (our graceful CLOSE_STREAM is queued): whatever of
    /// its data is still in flight is dropped, and the direction counts as over.
    pub fn stop_receiving(&mut self) {
        self.recv = RecvState::ResetLocal {
            fin: self.recv.fin_seen(),
        };
    }

    /// Takes up to `max` bytes for the application; returns the chunk.
    pub fn take_recv(&mut self, max: usize) -> Option<Bytes> {
        let front = self.recv_buf.front_mut()?;
        let chunk = if front.len() <= max {
            self.recv_buf.pop_front().unwrap()
        } else {
            let c = front.slice(..max);
            front.advance(max);
            c
        };
        self.recv_buffered -= chunk.len();
        self.recv_consumed += chunk.len() as u64;
        Some(chunk)
    }

    /// After the application consumed data: owe an update once half the window is used,
    /// and grow the window when it is what holds the stream back. Returns true when an
    /// update became pending.
    pub fn maybe_grant(&mut self, max_window: u64, flow_control: bool) -> bool {
        if !flow_control || self.recv != RecvState::Open {
            return false;
        }
        // The reader has taken everything while the sender has used all its credit: both
        // ends wait on the window (the update sent at half-window did not come back before
        // the reader ran dry), so it is smaller than bandwidth x round trip. Double it
        // (auto-tuning, up to `max_window`), and announce the extra credit even if an
        // update went out already. A slow reader never gets here: its buffer is not empty
        // when the sender runs out of credit.
        if self.recv_received == self.recv_limit
            && self.recv_buffered == 0
            && self.recv_window < max_window
        {
            self.recv_window = (self.recv_window * 2).min(max_window);
            let newly = !self.update_pending;
            self.update_pending = true;
            return newly;
        }
        let outstanding = self.recv_limit - self.recv_consumed;
        if outstanding > self.recv_window / 2 || self.update_pending {
            return false;
        }
        self.update_pending = true;
        true
    }

    /// The credit increment to announce now (and records it as granted).
    pub fn take_update(&mut self) -> Option<u64> {
        if !self.update_pending {
            return None;
        }
        self.update_pending = false;
        let new_limit = self.recv_consumed + self.recv_window;
        if new_limit <= self.recv_limit {
            return None;
        }
        let credit = new_limit - self.recv_limit;
        self.recv_limit = new_limit;
        Some(credit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 256 * 1024;
    const MAX: u64 = 16 * 1024 * 1024;

    /// The peer sends `n` bytes (within its credit) as one STREAM_DATA.
    fn arrive(s: &mut StreamState, n: u64) {
        assert!(
            s.recv_received + n <= s.recv_limit,
            "sender exceeded its credit"
        );
        s.recv_received += n;
        s.recv_buffered += n as usize;
        s.recv_buf.push_back(Bytes::from(vec![0u8; n as usize]));
    }

    /// The application reads one chunk; returns whether an update became pending.
    fn read(s: &mut StreamState, max: usize) -> bool {
        s.take_recv(max).expect("data");
        s.maybe_grant(MAX, true)
    }

    /// The peer receives our pending update (if any) and uses all the credit it gives.
    fn answer(s: &mut StreamState) {
        if let Some(credit) = s.take_update() {
            let mut left = credit;
            while left > 0 {
                let n = left.min(64 * 1024);
                arrive(s, n);
                left -= n;
            }
        }
    }

    #[test]
    fn window_grows_when_it_stalls_a_fast_reader() {
        let mut s = StreamState::new(None, false, W, true);
        answer_initial(&mut s);
        // The reader takes everything as it comes, but the update sent at half-window
        // is answered only after the reader ran dry: the window is the bottleneck.
        for _ in 0..12 {
            while s.recv_buffered > 0 {
                read(&mut s, 64 * 1024);
            }
            answer(&mut s);
        }
        assert_eq!(s.recv_window, MAX, "doubled up to the maximum");
        assert!(s.recv_limit - s.recv_consumed <= MAX);
    }

    #[test]
    fn window_stays_for_a_reader_that_keeps_data_waiting() {
        let mut s = StreamState::new(None, false, W, true);
        answer_initial(&mut s);
        // The reader is slower than the link: each update is answered at once, so data
        // is always waiting when the sender runs out of credit.
        for _ in 0..200 {
            if read(&mut s, 16 * 1024) {
                answer(&mut s);
            }
        }
        assert_eq!(s.recv_window, W);
        assert!(
            s.recv_buffered as u64 <= W,
            "never more than one window buffered"
        );
    }

    #[test]
    fn a_reset_remembers_what_each_direction_had_seen() {
        // Data after the peer's FIN stays a protocol error once we reset.
        let mut s = StreamState::new(None, false, W, true);
        s.fin_arrived();
        s.reset_locally();
        assert!(s.recv.fin_seen() && s.is_reset() && s.recv_done() && s.send_done());
        // A graceful close after our FIN went out ends nothing more...
        let mut s = StreamState::new(None, true, W, true);
        s.send = SendState::FinSent;
        s.closed_by_peer();
        assert_eq!((s.send, s.recv), (SendState::FinSent, RecvState::Fin));
        // ...before it, writing ends with ERR_STREAM_CLOSED while reading sees FIN.
        let mut s = StreamState::new(None, true, W, true);
        s.send = SendState::FinQueued;
        s.closed_by_peer();
        assert_eq!(
            s.recv,
            RecvState::ResetByPeer {
                code: ErrorCode::StreamClosed,
                fin: true
            }
        );
        assert!(!s.has_sendable() && s.recv_done());
        // The peer's code supersedes our own reset on both directions.
        let mut s = StreamState::new(None, true, W, true);
        s.reset_locally();
        s.reset_by_peer(ErrorCode::Unknown(7));
        assert!(matches!(
            s.send,
            SendState::ResetByPeer {
                code: ErrorCode::Unknown(7),
                fin_sent: false
            }
        ));
        assert_eq!(s.counted_send(), 0);
    }

    /// The peer uses its initial credit.
    fn answer_initial(s: &mut StreamState) {
        for _ in 0..(W / (64 * 1024)) {
            arrive(s, 64 * 1024);
        }
    }
}
