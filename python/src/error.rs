//! `Snap2pError`: the one exception type of the package, carrying the protocol's error code.

use pyo3::prelude::*;
use snap2p::{Error, ErrorCode};

// Defined in Python (snap2p/_errors.py): with the abi3 (Python 3.9) ABI a Rust class cannot
// subclass Exception, and a Python class gives `code`/`name` attributes and pickling for free.
pyo3::import_exception!(snap2p._errors, Snap2pError);

/// A core error as a Python exception. The exception object is built lazily, when Python
/// raises it, so this needs no GIL and is safe on tokio threads.
pub fn to_py(e: Error) -> PyErr {
    // A session closed normally ends with code 0 (OK); an operation failing because of it
    // is reported as ERR_CONNECTION_CLOSED, so no exception ever carries "OK".
    let e = e.as_failure();
    PyErr::new::<Snap2pError, _>((e.reason().to_string(), e.code.as_u64(), e.code.name()))
}

pub fn err(code: ErrorCode, message: impl Into<String>) -> PyErr {
    to_py(Error::new(code, message))
}

pub fn invalid(message: impl Into<String>) -> PyErr {
    err(ErrorCode::InvalidArgument, message)
}

/// A Python exception raised inside host code (a signer) as a core error: a `Snap2pError`
/// keeps its code; anything else is reported as `fallback`.
pub fn from_py(py: Python<'_>, e: PyErr, fallback: ErrorCode, context: &str) -> Error {
    let value = e.value(py);
    if e.is_instance_of::<Snap2pError>(py) {
        let code = value.getattr("code").and_then(|c| c.extract::<u64>());
        let message = value.getattr("message").and_then(|m| m.extract::<String>());
        if let (Ok(code), Ok(message)) = (code, message) {
            return Error::new(ErrorCode::from_u64(code), message);
        }
    }
    let type_name = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    Error::new(fallback, format!("{context}: {type_name}: {value}"))
}

/// `[(name, code), …]` of every defined code, for the Python `ErrorCode` enum.
#[pyfunction]
pub fn _error_codes() -> Vec<(String, u64)> {
    ErrorCode::ALL
        .iter()
        .map(|c| {
            let name = c.name();
            let short = name.strip_prefix("ERR_").unwrap_or(name);
            (short.to_string(), c.as_u64())
        })
        .collect()
}

/// The symbolic name (``ERR_…``) of a numeric error code.
#[pyfunction]
pub fn error_name(code: u64) -> &'static str {
    ErrorCode::from_u64(code).name()
}
