//! Keepalive and idle tracking of an established session: when to PING, how long to wait
//! for the PONG, the round-trip time it measures, and since when no stream has been open.
//! Sans-IO state owned by the session machine, which asks it for deadlines and PINGs.

use std::sync::Arc;
use std::time::Duration;

use web_time::Instant;

use super::config::SessionLimits;
use crate::error::{Error, ErrorCode};
use crate::wire::message::Message;

#[derive(Debug)]
pub(crate) struct Keepalive {
    /// A PONG did not come in time: this side ended the session (the `keepalive_timeout`
    /// event; an Error's text is not a flag).
    expired: bool,
    /// The session's limits (interval, timeout, idle timeout), shared: copies of the three
    /// were 56 bytes of every idle session (issue 36).
    limits: Arc<SessionLimits>,
    /// The dialer: it pings first on a quiet session (see `quiet_interval`).
    initiator: bool,
    next_ping: Option<Instant>,
    /// A PING is outstanding: its PONG must come by then.
    ping_deadline: Option<Instant>,
    ping_seq: u64,
    /// What the first PING's `seq` is: 1 (standard), or 0 (TypeScript profile, as the
    /// reference numbers them).
    first_seq: u64,
    ping_sent_at: Option<Instant>,
    rtt: Option<Duration>,
    /// Since when the session has had no stream (None: a stream is open, or not yet
    /// established).
    idle_since: Option<Instant>,
}

impl Keepalive {
    pub fn new(limits: &Arc<SessionLimits>, initiator: bool) -> Self {
        Keepalive {
            expired: false,
            limits: limits.clone(),
            initiator,
            next_ping: None,
            ping_deadline: None,
            ping_seq: 0,
            first_seq: 1,
            ping_sent_at: None,
            rtt: None,
            idle_since: None,
        }
    }

    /// Numbers PINGs from 0 instead of 1 (the TypeScript profile).
    pub fn seq_from_zero(&mut self) {
        self.first_seq = 0;
    }

    /// The session is established: keepalive starts now, with a first PING right away (as
    /// the reference does), and so does the idle clock.
    pub fn start(&mut self, now: Instant) {
        self.next_ping = Some(now);
        self.idle_since = Some(now);
    }

    /// How long a side waits, after it last received a frame, before it sends a PING. The
    /// listener waits 1.5 × the interval, so on a quiet session the dialer's PING (and the
    /// PONG to it) reaches it first and one PING/PONG pair per interval serves both sides;
    /// the listener pings only when the dialer's PINGs stop arriving.
    fn quiet_interval(&self) -> Duration {
        let interval = self.limits.keepalive_interval;
        if self.initiator {
            interval
        } else {
            interval + interval / 2
        }
    }

    /// An authentic frame arrived. Anything authentic from the peer shows the session is
    /// alive: the next PING waits for a quiet interval again (none is outstanding here; the
    /// first PING, which measures the RTT, is never put off).
    pub fn on_authentic_frame(&mut self, now: Instant) {
        if self.ping_seq > 0 && self.ping_deadline.is_none() {
            self.next_ping = Some(now + self.quiet_interval());
        }
    }

    /// The peer's PONG: the answer to our outstanding PING measures the round trip.
    pub fn on_pong(&mut self, seq: u64, now: Instant) {
        if seq + 1 == self.ping_seq + self.first_seq && self.ping_deadline.is_some() {
            self.ping_deadline = None;
            if let Some(at) = self.ping_sent_at.take() {
                self.rtt = Some(now.saturating_duration_since(at));
            }
        }
    }

    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// PINGs this side has sent.
    #[cfg(test)]
    pub fn pings_sent(&self) -> u64 {
        self.ping_seq
    }

    /// Whether this side ended the session because a PONG did not come in time.
    pub fn expired(&self) -> bool {
        self.expired
    }

    /// The next keepalive instant: the PONG deadline while a PING is outstanding, else
    /// when the next PING is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ping_deadline.or(self.next_ping)
    }

    /// At `now` (`unix` in seconds): the PING to send, if one is due, or the error that
    /// ends the session when a PONG did not come in time.
    pub fn handle_timeout(&mut self, now: Instant, unix: i64) -> Result<Option<Vec<u8>>, Error> {
        if let Some(deadline) = self.ping_deadline {
            if now >= deadline {
                self.expired = true;
                return Err(Error::new(
                    ErrorCode::Timeout,
                    format!(
                        "keepalive: no PONG within {} ms",
                        self.limits.keepalive_timeout.as_millis()
                    ),
                ));
            }
            return Ok(None);
        }
        if self.next_ping.is_none_or(|t| now < t) {
            return Ok(None);
        }
        self.ping_seq += 1;
        let ping = Message::Ping {
            seq: self.ping_seq + self.first_seq - 1,
            timestamp: unix,
        }
        .to_vec();
        self.ping_sent_at = Some(now);
        self.ping_deadline = Some(now + self.limits.keepalive_timeout);
        self.next_ping = Some(now + self.quiet_interval());
        Ok(Some(ping))
    }

    /// A stream opened: the session is not idle.
    pub fn active(&mut self) {
        self.idle_since = None;
    }

    /// The session has no stream (from `now` on, unless it had none before).
    pub fn idle(&mut self, now: Instant) {
        if self.idle_since.is_none() {
            self.idle_since = Some(now);
        }
    }

    /// When an idle session is to close (`SessionLimits::idle_timeout`), counted from when
    /// its last stream went away. Only meaningful while it has no stream.
    pub fn idle_deadline(&self) -> Option<Instant> {
        Some(self.idle_since? + self.limits.idle_timeout?)
    }
}
