//! The one error taxonomy of snap2p.
//!
//! Every failure a peer can observe carries an [`ErrorCode`]: the number that travels on the
//! wire in AUTH_FAIL, CLOSE_STREAM and ERROR messages. The numbering is the one the existing
//! TypeScript implementation uses, so both speak the same vocabulary. Local-only failures
//! (a bad argument, a locked wallet file) map onto the closest wire code so that every
//! binding can expose one `code` field.

use std::fmt;

/// Wire error codes (`ec` in AUTH_FAIL / CLOSE_STREAM / ERROR).
///
/// Unknown numbers received from a peer are kept as [`ErrorCode::Unknown`] so they are seen,
/// not lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Ok,
    Unknown(u64),
    /// 1: unspecified failure.
    Unspecified,
    /// 2: ERR_VERSION_UNSUPPORTED (also: unknown message type).
    VersionUnsupported,
    /// 3: authentication failed (handshake binding, transcript signature).
    AuthFailed,
    /// 4: ERR_NOT_ALLOWED (allowlist).
    NotAllowed,
    /// 5: ERR_INVITE_INVALID.
    InviteInvalid,
    /// 6: ERR_AUTH_INVALID (attestation signature, principal mismatch, bad fields).
    AuthInvalid,
    /// 7: ERR_AUTH_EXPIRED (attestation or card outside its validity window).
    AuthExpired,
    /// 8: the secure-channel handshake failed.
    HandshakeFailed,
    /// 9: a stream id already in use.
    StreamIdInUse,
    /// 10: no such stream.
    StreamNotFound,
    /// 11: the stream is closed.
    StreamClosed,
    /// 12: the session is closed.
    ConnectionClosed,
    /// 13: a timer expired (handshake, keepalive, idle).
    Timeout,
    /// 14: a frame or message larger than allowed.
    MessageTooLarge,
    /// 15: malformed bytes or a message not allowed in this state.
    InvalidMessage,
    /// 16: a resource limit was reached.
    ResourceExhausted,
    /// 17: an internal error.
    Internal,
    /// 18: ERR_INVITE_REQUIRED.
    InviteRequired,
    /// 19: ERR_RATE_LIMITED.
    RateLimited,
    /// 20: ERR_STREAM_REFUSED.
    StreamRefused,
    /// 21: PX-1 could not find any locator for the principal (local only).
    NotFound,
    /// 22: every locator tried failed (local only).
    AllLocatorsFailed,
    /// 23: the peer authenticated as a different principal than the one dialed (local only).
    PrincipalMismatch,
    /// 24: a wallet or store operation failed: wrong password, missing wallet (local only).
    WalletError,
    /// 25: an argument given by the application is invalid (local only).
    InvalidArgument,
    /// 26: chain providers gave different answers for one name (BNS cross-check; local only).
    ProvidersDisagree,
}

impl ErrorCode {
    /// Every code this version defines, in numeric order (what bindings list as their
    /// error-code tables).
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::Ok,
        ErrorCode::Unspecified,
        ErrorCode::VersionUnsupported,
        ErrorCode::AuthFailed,
        ErrorCode::NotAllowed,
        ErrorCode::InviteInvalid,
        ErrorCode::AuthInvalid,
        ErrorCode::AuthExpired,
        ErrorCode::HandshakeFailed,
        ErrorCode::StreamIdInUse,
        ErrorCode::StreamNotFound,
        ErrorCode::StreamClosed,
        ErrorCode::ConnectionClosed,
        ErrorCode::Timeout,
        ErrorCode::MessageTooLarge,
        ErrorCode::InvalidMessage,
        ErrorCode::ResourceExhausted,
        ErrorCode::Internal,
        ErrorCode::InviteRequired,
        ErrorCode::RateLimited,
        ErrorCode::StreamRefused,
        ErrorCode::NotFound,
        ErrorCode::AllLocatorsFailed,
        ErrorCode::PrincipalMismatch,
        ErrorCode::WalletError,
        ErrorCode::InvalidArgument,
        ErrorCode::ProvidersDisagree,
    ];

    pub fn as_u64(self) -> u64 {
        use ErrorCode::*;
        match self {
            Ok => 0,
            Unspecified => 1,
            VersionUnsupported => 2,
            AuthFailed => 3,
            NotAllowed => 4,
            InviteInvalid => 5,
            AuthInvalid => 6,
            AuthExpired => 7,
            HandshakeFailed => 8,
            StreamIdInUse => 9,
            StreamNotFound => 10,
            StreamClosed => 11,
            ConnectionClosed => 12,
            Timeout => 13,
            MessageTooLarge => 14,
            InvalidMessage => 15,
            ResourceExhausted => 16,
            Internal => 17,
            InviteRequired => 18,
            RateLimited => 19,
            StreamRefused => 20,
            NotFound => 21,
            AllLocatorsFailed => 22,
            PrincipalMismatch => 23,
            WalletError => 24,
            InvalidArgument => 25,
            ProvidersDisagree => 26,
            Unknown(n) => n,
        }
    }

    pub fn from_u64(n: u64) -> Self {
        use ErrorCode::*;
        match n {
            0 => Ok,
            1 => Unspecified,
            2 => VersionUnsupported,
            3 => AuthFailed,
            4 => NotAllowed,
            5 => InviteInvalid,
            6 => AuthInvalid,
            7 => AuthExpired,
            8 => HandshakeFailed,
            9 => StreamIdInUse,
            10 => StreamNotFound,
            11 => StreamClosed,
            12 => ConnectionClosed,
            13 => Timeout,
            14 => MessageTooLarge,
            15 => InvalidMessage,
            16 => ResourceExhausted,
            17 => Internal,
            18 => InviteRequired,
            19 => RateLimited,
            20 => StreamRefused,
            21 => NotFound,
            22 => AllLocatorsFailed,
            23 => PrincipalMismatch,
            24 => WalletError,
            25 => InvalidArgument,
            26 => ProvidersDisagree,
            n => Unknown(n),
        }
    }

    /// The stable symbolic name (`ERR_…`) used in documentation, logs and bindings.
    pub fn name(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Ok => "OK",
            Unknown(_) => "ERR_UNKNOWN_CODE",
            Unspecified => "ERR_UNSPECIFIED",
            VersionUnsupported => "ERR_VERSION_UNSUPPORTED",
            AuthFailed => "ERR_AUTH_FAILED",
            NotAllowed => "ERR_NOT_ALLOWED",
            InviteInvalid => "ERR_INVITE_INVALID",
            AuthInvalid => "ERR_AUTH_INVALID",
            AuthExpired => "ERR_AUTH_EXPIRED",
            HandshakeFailed => "ERR_HANDSHAKE_FAILED",
            StreamIdInUse => "ERR_STREAM_ID_IN_USE",
            StreamNotFound => "ERR_STREAM_NOT_FOUND",
            StreamClosed => "ERR_STREAM_CLOSED",
            ConnectionClosed => "ERR_CONNECTION_CLOSED",
            Timeout => "ERR_TIMEOUT",
            MessageTooLarge => "ERR_MESSAGE_TOO_LARGE",
            InvalidMessage => "ERR_INVALID_MESSAGE",
            ResourceExhausted => "ERR_RESOURCE_EXHAUSTED",
            Internal => "ERR_INTERNAL",
            InviteRequired => "ERR_INVITE_REQUIRED",
            RateLimited => "ERR_RATE_LIMITED",
            StreamRefused => "ERR_STREAM_REFUSED",
            NotFound => "ERR_NOT_FOUND",
            AllLocatorsFailed => "ERR_ALL_LOCATORS_FAILED",
            PrincipalMismatch => "ERR_PRINCIPAL_MISMATCH",
            WalletError => "ERR_WALLET",
            InvalidArgument => "ERR_INVALID_ARGUMENT",
            ProvidersDisagree => "ERR_PROVIDERS_DISAGREE",
        }
    }

    /// A sentence a person understands.
    pub fn describe(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Ok => "no error",
            Unknown(_) => "the peer reported an error code this version does not know",
            Unspecified => "the peer reported an unspecified error",
            VersionUnsupported => {
                "the peer speaks a protocol version or message this node does not support"
            }
            AuthFailed => {
                "authentication failed: the session is not bound to the presented node key"
            }
            NotAllowed => "the principal is not on the node's allowlist",
            InviteInvalid => "the invite token is missing, unknown, revoked or expired",
            AuthInvalid => {
                "the attestation is invalid: bad signature, wrong principal or malformed fields"
            }
            AuthExpired => "the attestation or card is expired or not yet valid",
            HandshakeFailed => "the encrypted handshake failed",
            StreamIdInUse => "the stream id is already in use",
            StreamNotFound => "no such stream",
            StreamClosed => "the stream is closed",
            ConnectionClosed => "the session is closed",
            Timeout => "the peer did not answer in time",
            MessageTooLarge => "a frame or message exceeds the allowed size",
            InvalidMessage => "the peer sent malformed bytes or a message out of order",
            ResourceExhausted => "a resource limit was reached",
            Internal => "internal error",
            InviteRequired => "this node requires an invite token (KNOCK) before anything else",
            RateLimited => "too many attempts: rate limited",
            StreamRefused => "the peer refused the stream",
            NotFound => "no locator is known for that principal",
            AllLocatorsFailed => "every known locator for that principal failed",
            PrincipalMismatch => {
                "the peer authenticated as a different principal than the one dialed"
            }
            WalletError => "wallet operation failed",
            InvalidArgument => "invalid argument",
            ProvidersDisagree => "chain providers gave different answers: the name is not trusted",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_u64())
    }
}

/// The error type of every public snap2p operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message without the `ERR_NAME (code): ` prefix of `Display` (the code's
    /// description when there is no message): for bindings that carry the code and name
    /// in fields of their own.
    pub fn reason(&self) -> &str {
        if self.message.is_empty() {
            self.code.describe()
        } else {
            &self.message
        }
    }

    /// The error an operation reports when it fails because the session ended: the
    /// session's error, or ERR_CONNECTION_CLOSED when it ended gracefully (code 0 is not
    /// an error to a caller whose operation failed).
    pub fn as_failure(self) -> Error {
        if self.code == ErrorCode::Ok {
            Error::new(ErrorCode::ConnectionClosed, self.message)
        } else {
            self
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}: {}", self.code, self.code.describe())
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    /// An `io::Error` that carries a snap2p [`Error`] (a transport that is more than a
    /// socket, such as WebSocket, reports a text or oversized message that way through
    /// `AsyncRead`) gives that error back, code and all; others map by kind.
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
            return inner.clone();
        }
        let code = match e.kind() {
            TimedOut => ErrorCode::Timeout,
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
                ErrorCode::ConnectionClosed
            }
            _ => ErrorCode::ConnectionClosed,
        };
        Error::new(code, e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_carrying_an_error_keeps_its_code() {
        let e = Error::new(
            ErrorCode::MessageTooLarge,
            "WebSocket message over 65536 bytes",
        );
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e.clone());
        assert_eq!(Error::from(io), e);
        let plain = std::io::Error::new(std::io::ErrorKind::InvalidData, "bad");
        assert_eq!(Error::from(plain).code, ErrorCode::ConnectionClosed);
    }

    #[test]
    fn codes_round_trip() {
        for n in 0..40u64 {
            assert_eq!(ErrorCode::from_u64(n).as_u64(), n);
        }
        assert_eq!(ErrorCode::StreamRefused.as_u64(), 20);
        assert_eq!(ErrorCode::InviteInvalid.as_u64(), 5);
        assert_eq!(ErrorCode::from_u64(999), ErrorCode::Unknown(999));
    }

    #[test]
    fn all_lists_every_defined_code_in_order() {
        for (n, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(code.as_u64(), n as u64);
            assert_eq!(ErrorCode::from_u64(n as u64), *code);
        }
        assert!(matches!(
            ErrorCode::from_u64(ErrorCode::ALL.len() as u64),
            ErrorCode::Unknown(_)
        ));
    }

    #[test]
    fn reason_and_failure() {
        let e = Error::new(ErrorCode::Timeout, "");
        assert_eq!(e.reason(), ErrorCode::Timeout.describe());
        let closed = Error::new(ErrorCode::Ok, "bye").as_failure();
        assert_eq!(closed, Error::new(ErrorCode::ConnectionClosed, "bye"));
        assert_eq!(closed.reason(), "bye");
        assert_eq!(e.clone().as_failure(), e);
    }
}
