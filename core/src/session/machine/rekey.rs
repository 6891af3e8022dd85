//! Rekeying each direction's transport key (capability `rekey`, docs/PROTOCOL.md §7.1).
//!
//! The sender decides: once its sending key has sealed `rekey_after_bytes` bytes or
//! `rekey_after_frames` frames, or is `rekey_interval` old, it seals one last frame under
//! that key holding only REKEY{n}, then replaces the key with Noise's `REKEY(k)` (the nonce
//! counter goes on). The receiver opens that frame under the old key and replaces its
//! receiving key right after it, so both switch at exactly the same frame. The two
//! directions are independent: each side counts and rekeys only what it sends.

use super::*;

#[cfg(test)]
mod tests;

/// One session's rekey state.
#[derive(Debug, Default)]
pub(super) struct Rekey {
    /// Both HELLOs listed `rekey` (set on the peer's HELLO).
    pub(super) enabled: bool,
    /// When the current sending key was installed: establishment, then each REKEY sent.
    send_since: Option<Instant>,
    /// The time trigger fired while nothing was being sent: REKEY at the next transmit.
    timer_due: bool,
    /// The `n` of the last REKEY sent and of the last one received (`SessionInfo`).
    pub(super) sent: u64,
    pub(super) received: u64,
    /// A REKEY was read in the frame being processed: switch the receiving key after it.
    pub(super) recv_pending: bool,
}

impl Session {
    /// The sending key's clock starts when the session is established.
    pub(super) fn rekey_start(&mut self, now: Instant) {
        self.rekey.send_since = Some(now);
    }

    /// When the time trigger is next due (None: not enabled, or already due).
    pub(super) fn rekey_timeout(&self) -> Option<Instant> {
        if !self.rekey.enabled || self.rekey.timer_due {
            return None;
        }
        Some(self.rekey.send_since? + self.cfg.limits.rekey_interval?)
    }

    /// At the time trigger: a key that sealed nothing protects nothing, so its clock just
    /// restarts; otherwise REKEY goes out with the next transmit (`wants_transmit`).
    pub(super) fn rekey_handle_timeout(&mut self, now: Instant) {
        if self.rekey_timeout().is_some_and(|t| now >= t) {
            let frames = self
                .transport
                .as_ref()
                .map_or(0, |t| t.sent_since_rekey().0);
            if frames == 0 {
                self.rekey.send_since = Some(now);
            } else {
                self.rekey.timer_due = true;
            }
        }
    }

    /// Whether a due REKEY waits for a transmit (the time trigger fired).
    pub(super) fn rekey_wants_transmit(&self) -> bool {
        self.rekey.timer_due
    }

    /// Whether this side must send REKEY before its next frame. Only once established and
    /// with no control message waiting: the dialer's AUTH_OK (queued as it becomes
    /// established) always leaves before its first REKEY, so the listener, which accepts
    /// REKEY only once established, never sees one early.
    fn rekey_due(&self, now: Instant) -> bool {
        if !self.rekey.enabled || !self.is_established() || !self.control.is_empty() {
            return false;
        }
        let Some(t) = self.transport.as_ref() else {
            return false;
        };
        let (frames, bytes) = t.sent_since_rekey();
        let l = &self.cfg.limits;
        let aged = match (self.rekey.send_since, l.rekey_interval) {
            (Some(since), Some(i)) => frames > 0 && now >= since + i,
            _ => false,
        };
        self.rekey.timer_due
            || aged
            || (l.rekey_after_frames > 0 && frames >= l.rekey_after_frames)
            || (l.rekey_after_bytes > 0 && bytes >= l.rekey_after_bytes)
    }

    /// Sends REKEY{n} alone in one last frame under the current sending key and switches
    /// to `REKEY(key)` if one is due. Called before each frame `poll_transmit` builds.
    pub(super) fn maybe_send_rekey(
        &mut self,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if !self.rekey_due(now) {
            return Ok(());
        }
        let n = self.rekey.sent + 1;
        let msg = Message::Rekey { n }.to_vec();
        let t = self
            .transport
            .as_mut()
            .ok_or_else(|| err(ErrorCode::Internal, "no transport"))?;
        t.encrypt_frame(&msg, out)?;
        self.frames_sent += 1;
        t.rekey_send()?;
        self.rekey.sent = n;
        self.rekey.send_since = Some(now);
        self.rekey.timer_due = false;
        Ok(())
    }

    /// REKEY{n} from the peer, the first message of its frame (`handle_frame` refuses it
    /// elsewhere and anything after it): the receiving key switches once the frame is done.
    pub(super) fn on_rekey(&mut self, n: u64) -> Result<(), Error> {
        if !self.rekey.enabled {
            return Err(err(
                ErrorCode::InvalidMessage,
                "REKEY from a peer that did not negotiate the rekey capability",
            ));
        }
        let expect = self.rekey.received + 1;
        if n != expect {
            return Err(err(
                ErrorCode::InvalidMessage,
                format!("REKEY n = {n}, expected {expect}"),
            ));
        }
        self.rekey.received = n;
        self.rekey.recv_pending = true;
        Ok(())
    }
}
