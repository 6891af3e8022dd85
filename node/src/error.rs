//! Errors cross into JavaScript as `Error`s whose message starts with the core's
//! `ERR_NAME (code): ` prefix (the `Display` of [`snap2p::Error`]); `index.js` parses it
//! back into the `code` (number) and `name` (`ERR_…`) properties. Encoding in the message
//! keeps one conversion for every method, sync or async.

use napi_derive::napi;
use snap2p::{Error, ErrorCode};

/// Converts a core error into the JavaScript error `index.js` understands.
pub fn to_js(e: Error) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, e.to_string())
}

/// An application-side mistake (wrong argument).
pub fn invalid(msg: impl Into<String>) -> napi::Error {
    to_js(Error::new(ErrorCode::InvalidArgument, msg))
}

pub trait ResultExt<T> {
    fn js(self) -> napi::Result<T>;
}

impl<T> ResultExt<T> for Result<T, Error> {
    fn js(self) -> napi::Result<T> {
        self.map_err(to_js)
    }
}

/// The flat error (`host::ErrorInfo`) as a plain JavaScript object; `message` without the
/// `ERR_NAME (code): ` prefix (code and name are fields of their own).
#[napi(object)]
pub struct ErrorInfo {
    pub code: u32,
    pub name: String,
    pub message: String,
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        let info = snap2p::host::ErrorInfo::from(e);
        ErrorInfo {
            code: info.code as u32,
            name: info.name.to_string(),
            message: info.reason,
        }
    }
}

/// Every error code the core defines, `{code, name, description}`, so JavaScript can
/// build its `ErrorCode` table from the one taxonomy instead of copying it.
#[napi(object)]
pub struct ErrorCodeInfo {
    pub code: u32,
    pub name: String,
    pub description: String,
}

#[napi]
pub fn error_codes() -> Vec<ErrorCodeInfo> {
    ErrorCode::ALL
        .iter()
        .map(|&c| ErrorCodeInfo {
            code: c.as_u64() as u32,
            name: c.name().to_string(),
            description: c.describe().to_string(),
        })
        .collect()
}
