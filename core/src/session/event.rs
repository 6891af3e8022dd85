//! What the session machine reports to its host: [`Event`]s and the outcome of a read.
//! A leaf module: the machine's parts (streams, send room, keepalive) all speak these
//! types and none of them depends on the machine.

use bytes::Bytes;

use crate::error::Error;
use crate::identity::AliasCard;

/// What the host layer learns from the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Mutual authentication completed (AUTH_OK both ways).
    Established,
    /// The peer opened a stream; it waits in the accept queue.
    StreamOpened(u64),
    /// This side opened a stream ([`crate::session::Session::open_stream`]).
    LocalStreamOpened(u64),
    /// Data, FIN or reset arrived on a stream.
    StreamReadable(u64),
    /// Credit or buffer space arrived for a stream.
    StreamWritable(u64),
    /// The peer sent a valid AliasCard.
    AliasCard(Box<AliasCard>),
    /// The peer's OPEN_STREAM was refused (stream limit or open rate): CLOSE_STREAM
    /// with ERR_STREAM_REFUSED went back. The label is the one the peer asked for.
    StreamRefused(u64, Option<String>),
    /// A stream was reset with this code, by the peer (`true`) or locally.
    StreamReset(u64, crate::error::ErrorCode, bool),
    /// The session ended (graceful when the code is `Ok`).
    Closed(Error),
}

/// Result of a read attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Data(Bytes),
    /// The peer finished; no more data.
    Finished,
    /// Nothing yet: wait for [`Event::StreamReadable`].
    Blocked,
}
