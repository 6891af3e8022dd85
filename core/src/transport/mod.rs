//! Transports: what carries a session's bytes. A [`Transport`] dials a [`Locator`] of its
//! scheme and listens on one; either way the result is a byte stream ([`Io`]) that the
//! session driver runs the whole snap2p session over (KNOCK, Noise XX, AUTH, streams), so a
//! transport never sees a plaintext byte of the session.
//!
//! A listener hands out each inbound stream as an [`Incoming`]: the source address first,
//! and the transport's own setup (a TLS or WebSocket upgrade; nothing for TCP) as a future
//! the peer runs *behind* its admission control. One admission implementation so guards
//! every transport, and a slow upgrade costs its source a slot, not the accept loop.
//!
//! [`tcp::TcpTransport`] is the first implementation, [`ws::WsTransport`] (`ws://`, `wss://`)
//! the second; a peer has both. The peer holds transports by scheme
//! and skips a locator whose scheme it has no transport for, with a clear reason.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, ErrorCode};
use crate::locator::{Locator, Scheme};

pub mod tcp;
pub mod ws;

pub use tcp::TcpTransport;
pub use ws::{WsConfig, WsTransport};

/// A byte stream a session runs over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed future, as transports return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An outbound byte stream a transport opened.
pub struct Connected {
    pub io: Box<dyn Io>,
    /// The remote socket address, when the transport has one.
    pub remote: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("remote", &self.remote)
            .field("local", &self.local)
            .finish()
    }
}

/// An inbound byte stream, before the transport's own setup ran.
pub struct Incoming {
    /// Where it comes from: what admission control counts per source.
    pub remote: SocketAddr,
    pub local: Option<SocketAddr>,
    /// Completes the transport's setup (TLS, WebSocket upgrade); ready at once for TCP.
    pub upgrade: BoxFuture<Result<Box<dyn Io>, Error>>,
    /// The transport the session reports (events, `ConnectionStats::transport`) when it
    /// is not the listener's scheme: a hole-punched direct connection handed over by the
    /// relay listener is `punch`, as on its dialer's side. None: the listener's scheme.
    pub transport: Option<Scheme>,
}

/// A transport: dials and listens for one or more locator schemes.
///
/// Implementations keep to moving bytes: no session logic, no policy. Errors carry the
/// closest [`crate::ErrorCode`] (`ERR_TIMEOUT` for a connect that did not finish,
/// `ERR_CONNECTION_CLOSED` for a refused or failed one).
pub trait Transport: Send + Sync + 'static {
    /// The schemes this transport serves.
    fn schemes(&self) -> &[Scheme];

    /// Opens a byte stream to `locator` (whose scheme is one of [`Transport::schemes`]).
    fn dial(&self, locator: &Locator) -> BoxFuture<Result<Connected, Error>>;

    /// Binds `locator` (port 0: any free port).
    fn listen(&self, locator: &Locator) -> BoxFuture<Result<Box<dyn Listener>, Error>>;
}

/// A bound listener of some transport.
pub trait Listener: Send + 'static {
    /// What was bound (the port chosen for port 0), as a locator of the transport's scheme.
    fn local_locator(&self) -> Locator;

    /// The next inbound byte stream. An error is transient (out of file descriptors and
    /// the like): the caller backs off and calls again.
    fn poll_accept(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Incoming, Error>>;
}

/// The transports a peer knows, by scheme.
#[derive(Default, Clone)]
pub struct Transports {
    list: Vec<std::sync::Arc<dyn Transport>>,
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.schemes()).finish()
    }
}

impl Transports {
    /// Adds a transport; a later one serving the same scheme takes precedence.
    pub fn add(&mut self, t: std::sync::Arc<dyn Transport>) {
        self.list.insert(0, t);
    }

    /// The transport for `scheme`, or why there is none.
    pub fn for_scheme(&self, scheme: &Scheme) -> Result<&dyn Transport, Error> {
        self.list
            .iter()
            .find(|t| t.schemes().contains(scheme))
            .map(|t| t.as_ref())
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "no transport for '{scheme}' locators on this peer (it speaks: {})",
                        self.schemes()
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }

    /// Every scheme served, without repeats.
    pub fn schemes(&self) -> Vec<Scheme> {
        let mut out: Vec<Scheme> = Vec::new();
        for s in self.list.iter().flat_map(|t| t.schemes()) {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }
}
