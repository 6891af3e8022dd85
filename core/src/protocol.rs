//! Protocols as plug-ins: a [`ProtocolHandler`] serves the inbound streams of one label on
//! every session of a peer (iroh's `Router::accept(alpn, handler)`, keyed by stream label),
//! and a [`Discovery`] finds a principal when the application dials `stacks:…`.
//!
//! Both get a [`PeerHandle`]: a narrow, weak view of the peer (its principal, live
//! sessions, listen locators, allowlist, and dialing), never the peer's internals. A
//! handler is owned by the peer, so the handle does not keep the peer alive: once the peer
//! is gone its calls return `ERR_CONNECTION_CLOSED` or nothing.
//!
//! Streams whose label no handler claims reach the application's `accept_stream` as
//! always. PX-1 (`crate::px1`) is the first protocol built this way.
//!
//! ```no_run
//! use std::sync::Arc;
//! use snap2p::protocol::{PeerHandle, ProtocolHandler};
//! use snap2p::{Connection, Error, Peer, PeerConfig, Stream};
//!
//! /// Answers every `time` stream with the peer's clock.
//! struct Time;
//!
//! #[async_trait::async_trait]
//! impl ProtocolHandler for Time {
//!     async fn accept(&self, _peer: PeerHandle, _conn: Connection, stream: Stream) -> Result<(), Error> {
//!         stream.write_all(snap2p::unix_now().to_string().as_bytes()).await?;
//!         stream.finish()
//!     }
//! }
//!
//! # async fn demo() -> snap2p::Result<()> {
//! let peer = Peer::builder(PeerConfig::default()).protocol("time", Arc::new(Time)).build().await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
use crate::locator::Locator;
use crate::policy::Visibility;
use crate::session::{Connection, Stream};
use crate::transport::{BoxFuture, Connected};

/// Options of one dial: `DialOptions::default().invite(token).expect(principal)`.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct DialOptions {
    /// Invite token for a stealth listener (sent in KNOCK).
    pub invite: Option<Vec<u8>>,
    /// Fail unless the peer authenticates as this principal.
    pub expect: Option<Principal>,
    /// The wire profile of this dial (None: `PeerConfig::profile`). PROTOCOL.md §12.
    pub profile: Option<crate::wire::profile::WireProfile>,
}

impl DialOptions {
    /// Sends `token` in a KNOCK first (a stealth listener requires one).
    pub fn invite(mut self, token: impl Into<Vec<u8>>) -> Self {
        self.invite = Some(token.into());
        self
    }

    /// Dials in this wire profile, e.g. [`WireProfile::TypeScript`](crate::WireProfile)
    /// for a TypeScript SNaP2P node (PROTOCOL.md §12).
    pub fn profile(mut self, profile: crate::wire::profile::WireProfile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// Fails unless the peer authenticates as `principal` (`ERR_PRINCIPAL_MISMATCH`).
    pub fn expect(mut self, principal: Principal) -> Self {
        self.expect = Some(principal);
        self
    }
}

/// What a protocol or discovery module may ask of its peer. Implemented by the peer over a
/// weak reference; see [`PeerHandle`].
pub(crate) trait PeerOps: Send + Sync {
    fn principal(&self) -> Option<Principal>;
    fn visibility(&self) -> Option<Visibility>;
    fn connections(&self) -> Vec<Connection>;
    fn reachable_locators(&self) -> Vec<Locator>;
    fn allows(&self, principal: &Principal) -> bool;
    fn dial_locator(
        &self,
        locator: Locator,
        opts: DialOptions,
    ) -> BoxFuture<Result<Connection, Error>>;
    /// A plain connection over the transport of `locator`'s scheme: no session.
    fn connect_transport(&self, locator: Locator) -> BoxFuture<Result<Connected, Error>>;
    /// Reports a query of a protocol handler to the peer's events: `answered` (a query of
    /// the remote's we answered) or asked; the number of items in the answer, or the
    /// error code it failed with.
    fn report_query(&self, _answered: bool, _conn: &Connection, _result: Result<usize, ErrorCode>) {
    }
}

/// A narrow, weak handle on a peer, given to protocol handlers and discovery modules.
#[derive(Clone)]
pub struct PeerHandle {
    ops: Arc<dyn PeerOps>,
}

impl fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerHandle")
            .field("principal", &self.principal().map(|p| p.to_string()))
            .finish()
    }
}

fn gone() -> Error {
    Error::new(ErrorCode::ConnectionClosed, "peer is closed")
}

impl PeerHandle {
    pub(crate) fn new(ops: Arc<dyn PeerOps>) -> Self {
        PeerHandle { ops }
    }

    /// The peer's own principal (`None` once the peer is gone).
    pub fn principal(&self) -> Option<Principal> {
        self.ops.principal()
    }

    /// The peer's visibility mode (`None` once the peer is gone).
    pub fn visibility(&self) -> Option<Visibility> {
        self.ops.visibility()
    }

    /// Live authenticated sessions, both directions.
    pub fn connections(&self) -> Vec<Connection> {
        self.ops.connections()
    }

    /// Where the peer can be reached, as it advertises it: its configured external
    /// locators, then its listeners' (unspecified IPs as bound); [`crate::Peer::reachable_locators`].
    pub fn reachable_locators(&self) -> Vec<Locator> {
        self.ops.reachable_locators()
    }

    /// Reports a PX-1 query to the peer's events (`px1_query`; docs/EVENTS.md).
    pub(crate) fn report_query(
        &self,
        answered: bool,
        conn: &Connection,
        result: Result<usize, ErrorCode>,
    ) {
        self.ops.report_query(answered, conn, result)
    }

    /// Whether `principal` is on the peer's allowlist.
    pub fn allows(&self, principal: &Principal) -> bool {
        self.ops.allows(principal)
    }

    /// A plain connection to `locator` over the peer's transport for its scheme (TCP, a
    /// WebSocket after its upgrade and TLS): bytes only, no session. For protocols that
    /// carry something other than a session, as RELAY-1's spliced circuits (§32.3).
    pub async fn connect_transport(&self, locator: &Locator) -> Result<Connected, Error> {
        if self.ops.principal().is_none() {
            return Err(gone());
        }
        self.ops.connect_transport(locator.clone()).await
    }

    /// Dials one locator over the matching transport (a session the application sees
    /// through `Peer::connections`, as any dial).
    pub async fn dial_locator(
        &self,
        locator: &Locator,
        opts: DialOptions,
    ) -> Result<Connection, Error> {
        if self.ops.principal().is_none() {
            return Err(gone());
        }
        self.ops.dial_locator(locator.clone(), opts).await
    }
}

/// A protocol that runs on the inbound streams of one label.
///
/// `accept` runs in its own task for each stream; returning an error resets the stream
/// with the error's code. `on_session` is called once per authenticated session (either
/// direction) before the application sees it, and `on_locators_changed` when the peer's
/// reachable locators change (a new listener, a relay reservation): keep both short and
/// spawn any I/O.
#[async_trait::async_trait]
pub trait ProtocolHandler: Send + Sync + 'static {
    async fn accept(&self, peer: PeerHandle, conn: Connection, stream: Stream)
        -> Result<(), Error>;

    fn on_session(&self, _peer: &PeerHandle, _conn: &Connection) {}

    fn on_locators_changed(&self, _peer: &PeerHandle) {}
}

/// Dial by principal: finds `principal` and returns a session authenticated as it.
///
/// A module that only finds *where* a principal is (a DHT record, an mDNS answer, a
/// zonefile) implements [`Discovery::resolve`] and keeps the default `dial_principal`,
/// which dials those locators in order and accepts only a session that authenticates as
/// `principal`. A module that must talk while it searches (PX-1 asks connected peers)
/// implements `dial_principal` itself.
#[async_trait::async_trait]
pub trait Discovery: Send + Sync + 'static {
    /// A short name for errors and logs ("px-1").
    fn name(&self) -> &str;

    /// Where `principal` may be reached: hints only (whoever answers there must still
    /// authenticate as `principal`). `Err(ERR_NOT_FOUND)` when this module knows nothing.
    async fn resolve(
        &self,
        _peer: &PeerHandle,
        principal: &Principal,
    ) -> Result<Vec<Locator>, Error> {
        Err(Error::new(
            ErrorCode::NotFound,
            format!("{}: no locators known for {principal}", self.name()),
        ))
    }

    /// `Err(ERR_NOT_FOUND)` when this module knows nothing of `principal`; the peer then
    /// asks the next module.
    async fn dial_principal(
        &self,
        peer: &PeerHandle,
        principal: &Principal,
        opts: DialOptions,
    ) -> Result<Connection, Error> {
        let locators = self.resolve(peer, principal).await?;
        dial_hints(peer, principal, &locators, opts).await
    }
}

/// Dials `locators` in order until one gives a session authenticated as `principal`.
/// Fails with the last error, or `ERR_NOT_FOUND` when `locators` is empty.
pub async fn dial_hints(
    peer: &PeerHandle,
    principal: &Principal,
    locators: &[Locator],
    opts: DialOptions,
) -> Result<Connection, Error> {
    let opts = opts.expect(principal.clone());
    let mut last = Error::new(
        ErrorCode::NotFound,
        format!("no locators to dial for {principal}"),
    );
    for locator in locators {
        match peer.dial_locator(locator, opts.clone()).await {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The protocol handlers of one peer, by label: what the session driver asks whether a
/// new inbound stream is the application's.
pub(crate) struct Router {
    handlers: HashMap<String, Arc<dyn ProtocolHandler>>,
    peer: PeerHandle,
}

impl Router {
    pub(crate) fn new(
        handlers: HashMap<String, Arc<dyn ProtocolHandler>>,
        peer: PeerHandle,
    ) -> Self {
        Router { handlers, peer }
    }

    /// Tells every handler about a new session.
    pub(crate) fn session_started(&self, conn: &Connection) {
        for h in self.handlers.values() {
            h.on_session(&self.peer, conn);
        }
    }

    /// Tells every handler that the peer's reachable locators changed.
    pub(crate) fn locators_changed(&self) {
        for h in self.handlers.values() {
            h.on_locators_changed(&self.peer);
        }
    }
}

impl crate::session::InboundRouter for Router {
    fn claims(&self, label: Option<&str>) -> bool {
        label.is_some_and(|l| self.handlers.contains_key(l))
    }

    fn route(&self, conn: Connection, stream: Stream) {
        let Some(handler) = stream.label().and_then(|l| self.handlers.get(l)).cloned() else {
            stream.reset(ErrorCode::StreamRefused);
            return;
        };
        let peer = self.peer.clone();
        tokio::spawn(async move {
            let label = stream.label().map(str::to_string);
            let id = stream.id();
            if let Err(e) = handler.accept(peer, conn, stream.clone()).await {
                tracing::debug!("protocol {label:?} failed on stream {id}: {e}");
                stream.reset(e.code);
            }
        });
    }
}

/// The core's handler of `snap2p-grant` streams (PROTOCOL.md §33.4): reads one
/// PermissionGrant (at most `MAX_GRANT_LEN` bytes), verifies it against the peer's
/// [`Permissions`](crate::policy::Permissions) and keeps it on the session, then closes the
/// stream gracefully; any refusal resets the stream with its code.
pub(crate) struct GrantHandler {
    pub(crate) permissions: Arc<crate::policy::Permissions>,
    pub(crate) networks: crate::identity::NetworkFilter,
}

#[async_trait::async_trait]
impl ProtocolHandler for GrantHandler {
    async fn accept(
        &self,
        _peer: PeerHandle,
        conn: Connection,
        stream: Stream,
    ) -> Result<(), Error> {
        let bytes = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_all(crate::identity::MAX_GRANT_LEN),
        )
        .await
        .map_err(|_| Error::new(ErrorCode::Timeout, "no complete grant within 10 s"))??;
        let grant = self.permissions.verify_grant(
            &bytes,
            conn.remote_principal(),
            crate::unix_now(),
            self.networks,
        )?;
        conn.add_grant(grant)?;
        stream.finish()
    }
}
