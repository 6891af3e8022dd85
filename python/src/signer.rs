//! The host-side signer: a Python object with ``principal`` and ``sign(request)`` (plain
//! or ``async def``), wrapped as a core `WalletSigner` through `host::CallbackSigner`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3_async_runtimes::TaskLocals;
use snap2p::host::CallbackSigner;
use snap2p::{Error, ErrorCode, SignRequest as CoreRequest, SignatureForm, WalletSigner};

use crate::error::{from_py, invalid, to_py};
use crate::identity::parse_principal_any;

/// What a host signer is asked to sign.
///
/// ``kind`` is ``'digest'`` (sign the 32 bytes of ``digest`` as they are) or ``'message'``
/// (sign ``message`` as a Stacks wallet message, prefix applied by the signer). The signer
/// returns a 65-byte recoverable signature r ‖ s ‖ v.
#[pyclass(frozen, module = "snap2p")]
pub struct SignRequest {
    inner: CoreRequest,
}

#[pymethods]
impl SignRequest {
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner {
            CoreRequest::Digest(_) => "digest",
            CoreRequest::Message(_) => "message",
        }
    }

    /// The 32 bytes to sign (``kind == 'digest'``), else ``None``.
    #[getter]
    fn digest<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        match &self.inner {
            CoreRequest::Digest(d) => Some(PyBytes::new(py, d)),
            CoreRequest::Message(_) => None,
        }
    }

    /// The text to sign (``kind == 'message'``), else ``None``.
    #[getter]
    fn message(&self) -> Option<&str> {
        match &self.inner {
            CoreRequest::Digest(_) => None,
            CoreRequest::Message(m) => Some(m),
        }
    }

    fn __repr__(&self) -> String {
        format!("SignRequest(kind={:?})", self.kind())
    }
}

type PyFuture = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send>>;

enum Started {
    Done(Vec<u8>),
    Awaiting(PyFuture),
}

fn signature_bytes(out: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = out.extract::<&[u8]>() {
        return Ok(b.to_vec());
    }
    // bytearray, memoryview and the like: copy through bytes().
    let as_bytes = out
        .py()
        .import("builtins")?
        .getattr("bytes")?
        .call1((out,))
        .map_err(|_| invalid("a signer must return bytes"))?;
    Ok(as_bytes.extract::<&[u8]>()?.to_vec())
}

fn signer_error(py: Python<'_>, e: PyErr) -> Error {
    from_py(py, e, ErrorCode::WalletError, "host signer failed")
}

/// Runs `f` attached to the interpreter on a blocking-pool thread: a sync signer may wait
/// (a hardware-wallet prompt), and even waiting for the GIL must not stall a tokio worker.
async fn with_python<T: Send + 'static>(
    f: impl FnOnce(Python<'_>) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(move || {
        crate::bridge::attach(f).unwrap_or_else(|| {
            Err(Error::new(
                ErrorCode::WalletError,
                "the Python interpreter is shutting down",
            ))
        })
    })
    .await
    .map_err(|e| Error::new(ErrorCode::Internal, format!("host signer task failed: {e}")))?
}

async fn call_sign(
    obj: Arc<Py<PyAny>>,
    locals: TaskLocals,
    request: CoreRequest,
) -> Result<Vec<u8>, Error> {
    let started = with_python(move |py| {
        let run = || -> PyResult<Started> {
            let req = Py::new(py, SignRequest { inner: request })?;
            let out = obj.bind(py).call_method1("sign", (req,))?;
            if out.hasattr("__await__")? {
                // An `async def sign`: run it on the application's event loop (captured at
                // Peer.create), and await its result here without holding the GIL.
                let fut = pyo3_async_runtimes::into_future_with_locals(&locals, out)?;
                Ok(Started::Awaiting(Box::pin(fut)))
            } else {
                Ok(Started::Done(signature_bytes(&out)?))
            }
        };
        run().map_err(|e| signer_error(py, e))
    })
    .await?;
    match started {
        Started::Done(sig) => Ok(sig),
        Started::Awaiting(fut) => {
            let result = fut.await;
            with_python(move |py| {
                result
                    .and_then(|obj| signature_bytes(obj.bind(py)))
                    .map_err(|e| signer_error(py, e))
            })
            .await
        }
    }
}

/// Wraps a Python signer object. Must be called from the thread running the asyncio loop
/// that async signers belong to (it is captured here).
pub fn host_signer(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Arc<dyn WalletSigner>> {
    if !obj.hasattr("sign")? || !obj.getattr("sign")?.is_callable() {
        return Err(invalid("a signer needs a sign(request) method"));
    }
    let principal: String = obj
        .getattr("principal")
        .and_then(|p| p.extract())
        .map_err(|_| invalid("a signer needs a `principal` string attribute"))?;
    let principal = parse_principal_any(&principal)?;
    let form = match obj.getattr("signature_form") {
        Ok(f) if !f.is_none() => f.extract::<String>()?.parse().map_err(to_py)?,
        _ => SignatureForm::Digest,
    };
    let locals = crate::bridge::current_locals(py)?;
    let obj = Arc::new(obj.clone().unbind());
    Ok(CallbackSigner::new(principal, form, move |request| {
        Box::pin(call_sign(obj.clone(), locals.clone(), request))
    }))
}
