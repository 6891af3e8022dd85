//! The one host-facing facade the language bindings (uniffi, napi-rs, pyo3) share, so
//! each of them stays a set of attributes and conversions:
//! - [`runtime`]: the process-wide tokio runtime bindings spawn on (sync exports must not
//!   call bare `tokio::spawn`);
//! - [`CallbackSigner`]: turns a host-language signing callback into a [`WalletSigner`];
//! - [`Subscription`]: a handle that stops a background task (event or stream callbacks)
//!   when cancelled or dropped;
//! - [`ErrorInfo`]: the flat form of [`Error`] every binding exposes (`code`, `name`,
//!   `message`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, ErrorCode};
use crate::identity::{Principal, SignRequest, SignatureForm, WalletSigner};

/// The runtime shared by all bindings in one process (two worker threads: these machines
/// and phones have few cores; sessions are I/O-bound).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("snap2p")
            .enable_all()
            .build()
            .expect("cannot start the snap2p runtime")
    })
}

/// A future returned by a host signing callback.
pub type SignFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, Error>> + Send>>;

/// A [`WalletSigner`] whose signing is done by the host language: a keychain, a hardware
/// wallet, a browser-extension bridge. The callback must not block the calling thread; it
/// returns a future the core awaits.
pub struct CallbackSigner {
    principal: Principal,
    form: SignatureForm,
    sign: Box<dyn Fn(SignRequest) -> SignFuture + Send + Sync>,
}

impl CallbackSigner {
    pub fn new(
        principal: Principal,
        form: SignatureForm,
        sign: impl Fn(SignRequest) -> SignFuture + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(CallbackSigner {
            principal,
            form,
            sign: Box::new(sign),
        })
    }
}

#[async_trait::async_trait]
impl WalletSigner for CallbackSigner {
    fn principal(&self) -> Principal {
        self.principal.clone()
    }

    fn signature_form(&self) -> SignatureForm {
        self.form
    }

    async fn sign(&self, request: SignRequest) -> Result<Vec<u8>, Error> {
        let sig = (self.sign)(request).await?;
        if sig.len() != 65 {
            return Err(Error::new(
                ErrorCode::AuthInvalid,
                format!(
                    "host signer returned {} bytes; a 65-byte r||s||v signature is required",
                    sig.len()
                ),
            ));
        }
        Ok(sig)
    }
}

/// A running background task (a callback subscription). Dropping or cancelling it stops
/// the task; no callback runs after `cancel` returns.
#[derive(Debug)]
pub struct Subscription {
    task: tokio::task::AbortHandle,
}

impl Subscription {
    /// Spawns `fut` on the shared runtime.
    pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> Self {
        let handle = runtime().spawn(fut);
        Subscription {
            task: handle.abort_handle(),
        }
    }

    pub fn cancel(&self) {
        self.task.abort();
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Flat error for bindings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorInfo {
    /// Numeric wire code (see [`ErrorCode`]).
    pub code: u64,
    /// Symbolic name, e.g. `ERR_NOT_ALLOWED`.
    pub name: &'static str,
    pub message: String,
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        ErrorInfo {
            code: e.code.as_u64(),
            name: e.code.name(),
            message: e.to_string(),
        }
    }
}
