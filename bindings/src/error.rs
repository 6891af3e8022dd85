//! One error type for every call: the protocol's numeric code, its `ERR_…` name and a
//! human-readable reason. Kotlin sees `Snap2pException.Failure`, Swift
//! `Snap2pError.failure(code:name:reason:)`.

use snap2p::{host, Error, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum Snap2pError {
    /// `code` is the wire error code (see `docs/PROTOCOL.md`), `name` its symbolic name.
    #[error("{name} ({code}): {reason}")]
    Failure {
        code: u64,
        name: String,
        reason: String,
    },
}

impl Snap2pError {
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Snap2pError::Failure {
            code: code.as_u64(),
            name: code.name().to_string(),
            reason: reason.into(),
        }
    }

    pub fn code(&self) -> u64 {
        match self {
            Snap2pError::Failure { code, .. } => *code,
        }
    }
}

impl From<Error> for Snap2pError {
    /// `reason` is the plain message (the code and name are fields of their own). An
    /// operation failing because the session ended gracefully reports ERR_CONNECTION_CLOSED.
    fn from(e: Error) -> Self {
        let e = e.as_failure();
        Snap2pError::new(e.code, e.reason())
    }
}

impl From<Snap2pError> for Error {
    fn from(e: Snap2pError) -> Self {
        match e {
            Snap2pError::Failure { code, reason, .. } => {
                Error::new(ErrorCode::from_u64(code), reason)
            }
        }
    }
}

/// A host callback threw something other than `Snap2pError` (a Kotlin exception, a Swift
/// error of another type): it becomes a typed error, never a panic.
impl From<uniffi::UnexpectedUniFFICallbackError> for Snap2pError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Snap2pError::new(
            ErrorCode::WalletError,
            format!("host callback failed: {}", e.reason),
        )
    }
}

/// The same information as a plain record, for places that report an error rather than
/// throw it (why a connection or stream ended).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ErrorInfo {
    pub code: u64,
    pub name: String,
    pub reason: String,
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        let info = host::ErrorInfo::from(e);
        ErrorInfo {
            code: info.code,
            name: info.name.to_string(),
            reason: info.reason,
        }
    }
}

/// The symbolic name (`ERR_…`) of a numeric error code.
#[uniffi::export]
pub fn error_code_name(code: u64) -> String {
    ErrorCode::from_u64(code).name().to_string()
}

pub type Result<T, E = Snap2pError> = std::result::Result<T, E>;
