//! The high-level API: a [`Peer`] is a Stacks principal with a node key, listeners, dialed
//! and accepted [`Connection`]s, and its visibility policy.
//!
//! ```no_run
//! # async fn demo() -> snap2p::Result<()> {
//! use snap2p::{Peer, PeerConfig};
//! let server = Peer::ephemeral(PeerConfig::default()).await?;
//! let addr = server.listen("127.0.0.1:0").await?;
//! tokio::spawn(async move {
//!     while let Some(conn) = server.accept().await {
//!         let stream = conn.accept_stream().await.unwrap();
//!         let msg = stream.read_all(1 << 20).await.unwrap();
//!         stream.write_all(&msg).await.unwrap(); // echo
//!         stream.finish().unwrap();
//!     }
//! });
//! let client = Peer::ephemeral(PeerConfig::default()).await?;
//! let conn = client.dial(&addr.to_string()).await?;
//! println!("connected to {}", conn.remote_principal());
//! let stream = conn.open_stream(Some("echo")).await?;
//! stream.write_all(b"hello").await?;
//! stream.finish()?;
//! assert_eq!(stream.read_all(1 << 20).await?, b"hello");
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::admission::{Admission, AdmissionLimits, Refused, Slot};
use crate::error::{Error, ErrorCode};
use crate::events::{Direction, EventKind, Events, Monitor, PeerEvent, PeerStats};
use crate::identity::{
    AliasBook, AliasCard, LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation,
    Principal, WalletSigner,
};
use crate::locator::{Locator, Scheme};
use crate::policy::{
    Invite, NodePolicy, PermissionRules, Permissions, RateLimiter, Visibility,
    DEFAULT_INVITE_TTL_SECS,
};
pub use crate::protocol::DialOptions;
use crate::protocol::{Discovery, PeerHandle, PeerOps, ProtocolHandler, Router};
use crate::px1;
use crate::session::{
    default_capabilities, AttestationCache, Clock, Connection, Path, Session, SessionConfig,
    SessionLimits, V1Only,
};
use crate::transport::{BoxFuture, Connected, Incoming, Io, Listener, TcpTransport, Transports};
use crate::wire::message::caps;
use crate::wire::profile::WireProfile;

/// Implementation profiles (spec §1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Role {
    /// Dials and listens.
    #[default]
    Full,
    /// Only initiates connections (`listen` is refused).
    DialerOnly,
    /// Only accepts connections (`dial` is refused).
    ListenerOnly,
}

/// How a peer behaves. `PeerConfig::default()` is a Public full peer; change it with the
/// `with_…` methods or by assigning fields of a default value.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PeerConfig {
    pub role: Role,
    pub visibility: Visibility,
    /// Principals let in after auth in Private/Stealth mode.
    pub allowlist: Vec<Principal>,
    /// Enforce the allowlist (default: Private and Stealth).
    pub allowlist_gate: Option<bool>,
    /// Stacks networks remote principals may be on.
    pub networks: NetworkFilter,
    pub limits: SessionLimits,
    /// Validity of the NodeKeyAttestation this peer issues (re-issued before expiry).
    pub attestation_ttl_secs: i64,
    /// Our alias and display name, published as a signed AliasCard after AUTH_OK.
    pub alias: Option<(String, String)>,
    pub alias_ttl_secs: i64,
    /// PX-1 peer exchange (default: on for Public, off otherwise).
    pub px1: Option<bool>,
    /// Failed unauthenticated handshakes allowed per minute per source (an IPv4 address
    /// or an IPv6 /64; default by visibility: Public none, Private 30, Stealth 5). Only
    /// failures are charged. A source over it is refused with ERR_RATE_LIMITED before any
    /// handshake, except on Stealth nodes, which still read its first frame: a KNOCK with
    /// a valid invite is cheaper to check than the connection was to accept, and must not
    /// be locked out by scanners behind the same address (PROTOCOL.md §9).
    pub preauth_rate_per_min: Option<u32>,
    /// Handshakes in progress at once, all sources together. When full, the stalest
    /// stalled handshake is evicted for a newcomer (never one making progress).
    pub max_pending_handshakes: usize,
    /// Handshakes in progress at once from one source (an IPv4 address or an IPv6 /64);
    /// a newcomer over it evicts the stalest stalled handshake of its own source. Keeps
    /// one address from holding the table (issue 35's slowloris).
    pub max_pending_per_source: usize,
    /// A fixed node key (default: a fresh one per peer).
    pub node_key: Option<NodeKey>,
    /// Time allowed for the transport connect of one address.
    pub connect_timeout: Duration,
    /// Capacity of the queue of accepted connections not yet taken by `accept`.
    pub accept_backlog: usize,
    /// Locators others reach this peer on that are not its listeners' own: a
    /// `wss://node.example.org:443/snap2p` served by a reverse proxy (TLS terminated there)
    /// in front of a `ws://127.0.0.1:9001/snap2p` listener, a port forwarded by a router.
    /// Advertised (PX-1 answers and pushes) before the listeners' locators; dialers pick
    /// the first transport they support. PROTOCOL.md §15.
    pub external_locators: Vec<Locator>,
    /// Which stream labels remote principals may open (None: every label). Changed at run
    /// time with `peer.permissions().set_rules(…)`. PROTOCOL.md §33.
    pub permissions: Option<PermissionRules>,
    /// Principals whose PermissionGrants this peer honours, besides its own principal.
    pub grant_owners: Vec<Principal>,
    /// The RELAY-1 module every peer gets unless one is registered with
    /// [`PeerBuilder::relay`]: dialing `relay://host:port/SP…` and keeping reservations
    /// with `listen("relay://host:port")` always work; `serve: true` makes this peer a
    /// relay for others. PROTOCOL.md §32.
    pub relay: crate::relay::RelayConfig,
    /// The steps of [`Peer::resolve`], in order, each with its timeout (default: cache →
    /// px-1 → mdns → dht → bns; PROTOCOL.md §35.5).
    pub resolver: crate::discovery::ResolverConfig,
    /// Join the BitTorrent Mainline DHT (feature `dht`): resolve principals through it
    /// and, on a Public peer, publish this peer's signed advert and announce its
    /// principal (PROTOCOL.md §35). `None` (default): no DHT.
    #[cfg(feature = "dht")]
    pub dht: Option<crate::discovery::DhtConfig>,
    /// The wire profile of `listen` and `dial` unless a dial's options or
    /// [`Peer::listen_with_profile`] say otherwise: standard, or the TypeScript SNaP2P
    /// implementation's (PROTOCOL.md §12; one port per profile).
    pub profile: WireProfile,
    /// The two-round-trip handshake (PROTOCOL.md §5.8; default on): dials offer it, and
    /// listeners accept an offer. A listener that closes without a word after an offer
    /// (a v1 node) is dialed again at once with v1, and its locator is dialed with v1 for
    /// 10 minutes. Off, this peer speaks v1 only, as before 2026-12-07.
    pub hs2: bool,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            role: Role::Full,
            visibility: Visibility::Public,
            allowlist: Vec::new(),
            allowlist_gate: None,
            networks: NetworkFilter::ANY,
            limits: SessionLimits::default(),
            attestation_ttl_secs: NodeKeyAttestation::DEFAULT_TTL_SECS,
            alias: None,
            alias_ttl_secs: AliasCard::DEFAULT_TTL_SECS,
            px1: None,
            preauth_rate_per_min: None,
            max_pending_handshakes: 256,
            // 16: more than a NAT of honest peers dials one listener at the same instant,
            // and 1/16 of the default table, so it takes 16 sources to fill it.
            max_pending_per_source: 16,
            node_key: None,
            connect_timeout: Duration::from_secs(10),
            accept_backlog: 1024,
            external_locators: Vec::new(),
            permissions: None,
            grant_owners: Vec::new(),
            relay: crate::relay::RelayConfig::default(),
            resolver: crate::discovery::ResolverConfig::default(),
            #[cfg(feature = "dht")]
            dht: None,
            profile: WireProfile::Standard,
            hs2: true,
        }
    }
}

impl PeerConfig {
    pub fn with_visibility(mut self, v: Visibility) -> Self {
        self.visibility = v;
        self
    }

    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Principals let in after auth (Private and Stealth enforce the list by default).
    pub fn with_allowlist(mut self, principals: impl IntoIterator<Item = Principal>) -> Self {
        self.allowlist = principals.into_iter().collect();
        self
    }

    pub fn with_allowlist_gate(mut self, gate: bool) -> Self {
        self.allowlist_gate = Some(gate);
        self
    }

    pub fn with_networks(mut self, networks: NetworkFilter) -> Self {
        self.networks = networks;
        self
    }

    pub fn with_limits(mut self, limits: SessionLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_alias(mut self, alias: &str, display_name: &str) -> Self {
        self.alias = Some((alias.to_string(), display_name.to_string()));
        self
    }

    pub fn with_px1(mut self, enabled: bool) -> Self {
        self.px1 = Some(enabled);
        self
    }

    pub fn with_node_key(mut self, key: NodeKey) -> Self {
        self.node_key = Some(key);
        self
    }

    pub fn with_preauth_rate_per_min(mut self, rate: u32) -> Self {
        self.preauth_rate_per_min = Some(rate);
        self
    }

    /// Speak this wire profile by default (PROTOCOL.md §12).
    pub fn with_profile(mut self, profile: WireProfile) -> Self {
        self.profile = profile;
        self
    }

    pub fn with_attestation_ttl_secs(mut self, secs: i64) -> Self {
        self.attestation_ttl_secs = secs;
        self
    }
}

struct Issued {
    bytes: Arc<Vec<u8>>,
    expires_at: i64,
}

/// The peer's sessions, both directions. Ended ones are dropped in batches: checking
/// whether a session ended takes its lock, so a sweep on every new session would make
/// accepting the n-th session cost n locks.
#[derive(Default)]
struct ConnectionList {
    live: Vec<Connection>,
    /// Sweep ended sessions when the list reaches this length.
    sweep_at: usize,
}

impl ConnectionList {
    fn push(&mut self, conn: Connection) {
        self.live.push(conn);
        if self.live.len() >= self.sweep_at {
            self.compact();
        }
    }

    fn compact(&mut self) {
        self.live.retain(|c| !c.is_closed());
        self.sweep_at = (2 * self.live.len()).max(64);
    }
}

pub(crate) struct PeerInner {
    signer: Arc<dyn WalletSigner>,
    principal: Principal,
    node_key: NodeKey,
    config: PeerConfig,
    policy: Arc<NodePolicy>,
    cache: Arc<AttestationCache>,
    attestation: tokio::sync::Mutex<Issued>,
    alias_card: Mutex<Option<(AliasCard, Arc<Vec<u8>>)>>,
    /// The latest valid AliasCard of each remote principal, kept after its session ends.
    alias_book: Mutex<AliasBook>,
    /// Locators to dial with v1 for now (a v1 listener closed on our hs2 offer).
    v1_only: V1Only,
    incoming_tx: mpsc::Sender<Connection>,
    incoming_rx: tokio::sync::Mutex<mpsc::Receiver<Connection>>,
    connections: Mutex<ConnectionList>,
    listeners: Mutex<Vec<(Locator, JoinHandle<()>)>>,
    /// Handshakes in progress, for every listener of this peer.
    admission: Arc<Admission>,
    /// Events and counters.
    monitor: Monitor,
    /// `config.limits`, shared by every session's configuration.
    limits: Arc<SessionLimits>,
    /// What every session driver of this peer reports to (the monitor's tap, and the
    /// sessions' ends).
    observer: Arc<dyn crate::session::Observer>,
    closed: AtomicBool,
    /// Wakes `accept` calls pending when `close` runs (they hold the receiver's lock).
    closing: tokio::sync::Notify,
    /// Sessions whose end is not reported yet (`register`'s task), and the wake-up of
    /// `close`, which waits for those reports before it ends the event subscriptions.
    unreported: AtomicUsize,
    reported: tokio::sync::Notify,
    /// Capabilities announced in HELLO.
    capabilities: Vec<String>,
    transports: Transports,
    /// The protocol handlers, by stream label (`None`: no handler registered).
    router: Option<Arc<Router>>,
    /// Dial-by-principal modules, asked in order.
    discovery: Vec<Arc<dyn Discovery>>,
    px1: Option<Arc<px1::Px1>>,
    /// What handlers and discovery modules get: this peer, weakly.
    handle: PeerHandle,
    /// Rules, grant owners and revocations, shared with every session (PROTOCOL.md §33).
    permissions: Arc<Permissions>,
    /// RELAY-1 (PROTOCOL.md §32): the `relay-1` handler and `relay://` transport.
    relay: Arc<crate::relay::Relay>,
    /// Verified endpoint adverts (the DHT module's durable cache, or one in memory).
    advert_cache: Arc<crate::discovery::AdvertCache>,
    /// The modules [`Peer::resolve`]'s steps are matched against by name.
    resolvers: Vec<Arc<dyn Discovery>>,
    #[cfg(feature = "dht")]
    dht: Option<Arc<crate::discovery::DhtDiscovery>>,
    /// The republication of this peer's advert (a Public peer on the DHT).
    #[cfg(feature = "dht")]
    dht_publisher: Mutex<Option<crate::discovery::dht::PublisherHandle>>,
    /// mDNS (issue 30): announces this peer when Public, stopped by `close`.
    #[cfg(feature = "mdns")]
    mdns: Option<Arc<crate::discovery::mdns::Mdns>>,
    /// BNS names (`dial("alice.btc")`), when configured.
    #[cfg(feature = "bns")]
    bns: Option<Arc<crate::discovery::bns::Bns>>,
}

impl Drop for PeerInner {
    fn drop(&mut self) {
        for (_, task) in self.listeners.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// A snap2p node: one Stacks principal, one node key, any number of sessions.
#[derive(Clone)]
pub struct Peer {
    pub(crate) inner: Arc<PeerInner>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("principal", &self.inner.principal.to_string())
            .field("visibility", &self.inner.config.visibility)
            .finish()
    }
}

/// Builds a [`Peer`]: its signer, configuration, protocol handlers, discovery modules and
/// transports. `Peer::new` and `Peer::ephemeral` are the short forms.
pub struct PeerBuilder {
    signer: Option<Arc<dyn WalletSigner>>,
    config: PeerConfig,
    protocols: HashMap<String, Arc<dyn ProtocolHandler>>,
    discovery: Vec<Arc<dyn Discovery>>,
    transports: Vec<Arc<dyn crate::transport::Transport>>,
    relay: Option<Arc<crate::relay::Relay>>,
    #[cfg(feature = "mdns")]
    mdns: Option<Arc<crate::discovery::mdns::Mdns>>,
    #[cfg(feature = "bns")]
    bns: Option<Arc<crate::discovery::bns::Bns>>,
}

impl PeerBuilder {
    /// The wallet that signs the peer's attestations and AliasCards (default: a fresh,
    /// throw-away mainnet wallet).
    pub fn signer(mut self, signer: Arc<dyn WalletSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Serves inbound streams labelled `label` with `handler` instead of handing them to
    /// [`Connection::accept_stream`]. A later registration of a label replaces an earlier.
    pub fn protocol(mut self, label: &str, handler: Arc<dyn ProtocolHandler>) -> Self {
        self.protocols.insert(label.to_string(), handler);
        self
    }

    /// Adds a dial-by-principal module, asked after the ones added before it (PX-1, when
    /// enabled, is asked first).
    pub fn discovery(mut self, module: Arc<dyn Discovery>) -> Self {
        self.discovery.push(module);
        self
    }

    /// Adds a transport; it takes precedence over TCP (built in) for the schemes it serves.
    pub fn transport(mut self, transport: Arc<dyn crate::transport::Transport>) -> Self {
        self.transports.push(transport);
        self
    }

    /// Registers a RELAY-1 module (docs/PROTOCOL.md §32) instead of the one built from
    /// [`PeerConfig::relay`]: the `relay-1` stream handler (serving reservations and
    /// circuits when configured to, accepting circuits from relays this peer reserved on)
    /// and the `relay://` transport. A later registration replaces an earlier one.
    pub fn relay(mut self, relay: Arc<crate::relay::Relay>) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Adds mDNS on the LAN (`discovery::mdns`): a discovery module asked after those added
    /// before it, and, when this peer is Public, an announcement of its reachable locators,
    /// refreshed as listeners start and withdrawn by [`Peer::close`] (which stops the module).
    #[cfg(feature = "mdns")]
    pub fn mdns(mut self, mdns: Arc<crate::discovery::mdns::Mdns>) -> Self {
        self.discovery.push(mdns.clone());
        self.mdns = Some(mdns);
        self
    }

    /// Lets [`Peer::dial`] take BNS names (`alice.btc`): resolved through these chain
    /// providers (cross-checked) to the owner principal, then dialed as that principal.
    #[cfg(feature = "bns")]
    pub fn bns(mut self, bns: Arc<crate::discovery::bns::Bns>) -> Self {
        self.bns = Some(bns);
        self
    }

    pub async fn build(self) -> Result<Peer, Error> {
        let PeerBuilder {
            signer,
            config,
            mut protocols,
            discovery: extra_discovery,
            transports: mut extra_transports,
            relay,
            #[cfg(feature = "mdns")]
            mdns,
            #[cfg(feature = "bns")]
            bns,
        } = self;
        let relay = relay.unwrap_or_else(|| crate::relay::Relay::new(config.relay.clone()));
        // A handler registered for `relay-1` with `PeerBuilder::protocol` stays (a test's
        // lying relay, another implementation).
        protocols
            .entry(crate::relay::STREAM_LABEL.to_string())
            .or_insert_with(|| relay.clone());
        // First: transports added with `PeerBuilder::transport` take precedence.
        extra_transports.insert(0, Arc::new(crate::relay::RelayTransport(relay.clone())));
        let signer = signer.unwrap_or_else(|| Arc::new(LocalWallet::generate(Network::Mainnet)));
        let principal = signer.principal();
        if !principal.is_single_sig() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "a peer's principal must be a single-signature address",
            ));
        }
        let node_key = config.node_key.clone().unwrap_or_else(NodeKey::generate);
        let mut policy = NodePolicy::new(config.visibility);
        policy.networks = config.networks;
        if let Some(gate) = config.allowlist_gate {
            policy.allowlist_gate = gate;
        }
        for p in &config.allowlist {
            policy.allowlist.allow(p.clone());
        }
        if let Some(rate) = config.preauth_rate_per_min {
            policy.preauth_limiter = RateLimiter::new(rate);
        }
        let now = crate::unix_now();
        let att = NodeKeyAttestation::issue(
            signer.as_ref(),
            node_key.public(),
            now,
            config.attestation_ttl_secs,
        )
        .await?;
        let permissions = Arc::new(Permissions::new());
        permissions.add_owner(principal.clone());
        for p in &config.grant_owners {
            permissions.add_owner(p.clone());
        }
        permissions.set_rules(config.permissions.clone());
        protocols.insert(
            crate::policy::GRANT_LABEL.to_string(),
            Arc::new(crate::protocol::GrantHandler {
                permissions: permissions.clone(),
                networks: config.networks,
            }),
        );
        let (tx, rx) = mpsc::channel(config.accept_backlog.max(1));
        let mut capabilities = default_capabilities();
        let mut discovery: Vec<Arc<dyn Discovery>> = Vec::new();
        let px1_enabled = config
            .px1
            .unwrap_or(config.visibility == Visibility::Public);
        let px1 = px1_enabled.then(|| Arc::new(px1::Px1::new(config.visibility)));
        if let Some(px) = &px1 {
            protocols.insert(px1::STREAM_LABEL.to_string(), px.clone());
            discovery.push(px.clone());
            capabilities.push(caps::PX1.to_string());
        }
        discovery.extend(extra_discovery);
        #[cfg(feature = "dht")]
        let dht = match &config.dht {
            Some(c) => {
                if c.publish == Some(true) && config.visibility != Visibility::Public {
                    return Err(Error::new(
                        ErrorCode::InvalidArgument,
                        "Private and Stealth peers never publish to the DHT (spec §10.3)",
                    ));
                }
                let d = crate::discovery::DhtDiscovery::start(c.clone(), config.networks).await?;
                discovery.push(d.clone());
                Some(d)
            }
            None => None,
        };
        #[cfg(feature = "dht")]
        let advert_cache = match &dht {
            Some(d) => d.cache().clone(),
            None => Arc::new(crate::discovery::AdvertCache::in_memory(config.networks)),
        };
        #[cfg(not(feature = "dht"))]
        let advert_cache = Arc::new(crate::discovery::AdvertCache::in_memory(config.networks));
        // BNS last: its answer for a principal costs HTTP questions to every provider, and
        // the locators of a name are the owner's own choice, usually the slowest to change.
        #[cfg(feature = "bns")]
        if let Some(b) = &bns {
            discovery.push(b.clone());
        }
        // Matched by name: the built-in cache and PX-1 steps first (PX-1's own module
        // dials; its step only asks), then every discovery module.
        let mut resolvers: Vec<Arc<dyn Discovery>> = vec![Arc::new(
            crate::discovery::chain::CacheStep(advert_cache.clone()),
        )];
        if let Some(px) = &px1 {
            resolvers.push(Arc::new(crate::discovery::chain::Px1Step(px.clone())));
        }
        resolvers.extend(discovery.iter().cloned());
        let mut transports = Transports::default();
        transports.add(Arc::new(TcpTransport {
            connect_timeout: config.connect_timeout,
            ..TcpTransport::default()
        }));
        // ws:// and wss:// (dial; wss listeners need a certificate: add a configured
        // WsTransport with `PeerBuilder::transport`).
        transports.add(Arc::new(crate::transport::WsTransport::new(
            crate::transport::WsConfig::default().with_connect_timeout(config.connect_timeout),
        )?));
        for t in extra_transports {
            transports.add(t);
        }
        let inner = Arc::new_cyclic(|weak: &Weak<PeerInner>| {
            let handle = PeerHandle::new(Arc::new(WeakPeer(weak.clone())));
            let router =
                (!protocols.is_empty()).then(|| Arc::new(Router::new(protocols, handle.clone())));
            let monitor = Monitor::default();
            let observer = Arc::new(SessionObserver {
                tap: monitor.observer(),
                peer: weak.clone(),
            });
            PeerInner {
                principal,
                monitor,
                observer,
                limits: Arc::new(config.limits.clone()),
                admission: Arc::new(Admission::new(AdmissionLimits {
                    max_pending: config.max_pending_handshakes,
                    max_per_source: config.max_pending_per_source,
                })),
                policy: Arc::new(policy),
                cache: Arc::new(AttestationCache::default()),
                attestation: tokio::sync::Mutex::new(Issued {
                    bytes: Arc::new(att.encode()),
                    expires_at: att.expires_at,
                }),
                alias_card: Mutex::new(None),
                alias_book: Mutex::new(AliasBook::with_networks(config.networks)),
                v1_only: V1Only::default(),
                incoming_tx: tx,
                incoming_rx: tokio::sync::Mutex::new(rx),
                connections: Mutex::new(ConnectionList::default()),
                listeners: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                closing: tokio::sync::Notify::new(),
                unreported: AtomicUsize::new(0),
                reported: tokio::sync::Notify::new(),
                capabilities,
                transports,
                router,
                discovery,
                px1,
                handle,
                permissions,
                relay,
                #[cfg(feature = "mdns")]
                mdns,
                #[cfg(feature = "bns")]
                bns,
                node_key,
                signer,
                config,
                advert_cache,
                resolvers,
                #[cfg(feature = "dht")]
                dht,
                #[cfg(feature = "dht")]
                dht_publisher: Mutex::new(None),
            }
        });
        let peer = Peer { inner };
        peer.inner.relay.attach(peer.handle());
        #[cfg(feature = "dht")]
        peer.start_dht_publisher();
        if let Some((alias, display)) = peer.inner.config.alias.clone() {
            peer.set_alias(&alias, &display).await?;
        }
        Ok(peer)
    }
}

impl Peer {
    /// Starts building a peer (signer, protocol handlers, discovery, transports).
    pub fn builder(config: PeerConfig) -> PeerBuilder {
        PeerBuilder {
            signer: None,
            config,
            protocols: HashMap::new(),
            discovery: Vec::new(),
            transports: Vec::new(),
            relay: None,
            #[cfg(feature = "mdns")]
            mdns: None,
            #[cfg(feature = "bns")]
            bns: None,
        }
    }

    /// Creates a peer whose attestations and AliasCards are signed by `signer` (a local
    /// wallet, or a host-side signer: keychain, hardware or browser wallet).
    pub async fn new(signer: Arc<dyn WalletSigner>, config: PeerConfig) -> Result<Peer, Error> {
        Peer::builder(config).signer(signer).build().await
    }

    /// A peer with a fresh, throw-away mainnet wallet (what the TypeScript `Peer.create()`
    /// does).
    pub async fn ephemeral(config: PeerConfig) -> Result<Peer, Error> {
        Peer::builder(config).build().await
    }

    fn downgrade(&self) -> Weak<PeerInner> {
        Arc::downgrade(&self.inner)
    }

    fn from_weak(w: &Weak<PeerInner>) -> Option<Peer> {
        w.upgrade().map(|inner| Peer { inner })
    }

    pub fn principal(&self) -> &Principal {
        &self.inner.principal
    }

    pub fn node_public_key(&self) -> [u8; 32] {
        self.inner.node_key.public()
    }

    pub fn visibility(&self) -> Visibility {
        self.inner.config.visibility
    }

    pub fn config(&self) -> &PeerConfig {
        &self.inner.config
    }

    /// The narrow handle protocol handlers and discovery modules get.
    pub fn handle(&self) -> PeerHandle {
        self.inner.handle.clone()
    }

    /// The listener policy (invites, allowlist) for changes at run time.
    pub fn policy(&self) -> &NodePolicy {
        &self.inner.policy
    }

    /// Creates an invite token (stealth listeners require one in KNOCK).
    pub fn create_invite(&self, ttl_secs: Option<i64>, one_time: bool) -> Result<Invite, Error> {
        self.inner.policy.invites.create(
            ttl_secs.unwrap_or(DEFAULT_INVITE_TTL_SECS),
            one_time,
            crate::unix_now(),
        )
    }

    pub fn revoke_invite(&self, token_or_id: &str) -> bool {
        self.inner.policy.invites.revoke(token_or_id)
    }

    pub fn list_invites(&self) -> Vec<Invite> {
        self.inner.policy.invites.list(crate::unix_now())
    }

    pub fn allow(&self, p: Principal) {
        self.inner.policy.allowlist.allow(p);
    }

    pub fn disallow(&self, p: &Principal) {
        self.inner.policy.allowlist.disallow(p);
    }

    /// Signs and publishes a new AliasCard (sent to peers after AUTH_OK from now on).
    pub async fn set_alias(&self, alias: &str, display_name: &str) -> Result<AliasCard, Error> {
        let card = AliasCard::issue(
            self.inner.signer.as_ref(),
            alias,
            display_name,
            crate::unix_now(),
            self.inner.config.alias_ttl_secs,
        )
        .await?;
        let bytes = Arc::new(card.encode());
        *self.inner.alias_card.lock().unwrap() = Some((card.clone(), bytes.clone()));
        // Sessions already up get the new card too (spec §6.2: peers keep the latest).
        for conn in self.connections() {
            conn.send_alias_card(bytes.clone());
        }
        Ok(card)
    }

    /// The current AliasCard of `principal`: the newest valid, unexpired card received
    /// on any session, live or past. Expired cards are never returned (spec §6.2).
    pub fn alias_of(&self, principal: &Principal) -> Option<AliasCard> {
        let now = crate::unix_now();
        let live = self
            .connections()
            .iter()
            .filter(|c| c.remote_principal() == principal)
            .filter_map(|c| c.remote_alias())
            .max_by_key(|c| c.issued_at);
        let mut book = self
            .inner
            .alias_book
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(card) = &live {
            let _ = book.insert(card.clone(), now);
        }
        let kept = book.current(principal, now);
        drop(book);
        // On an issued_at tie the card a live session holds is the one received last.
        match (live, kept) {
            (Some(l), Some(k)) if k.issued_at > l.issued_at => Some(k),
            (Some(l), _) => Some(l),
            (None, k) => k,
        }
    }

    /// Files the card a session ended with into the alias book.
    fn remember_alias(&self, conn: &Connection) {
        if let Some(card) = conn.remote_alias() {
            let now = crate::unix_now();
            let mut book = self
                .inner
                .alias_book
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            book.prune(now);
            let _ = book.insert(card, now);
        }
    }

    /// The PX-1 module, when enabled (hint cache, pushes).
    /// The peer's permissions: its rules (which labels remote principals may open), the
    /// owners whose grants it honours (its own principal first) and the revocation list.
    /// Changes apply to the next stream open of every live session (PROTOCOL.md §33).
    /// This peer's RELAY-1 module: reservations it keeps ([`Relay::reservations`]),
    /// counts when it serves ([`Relay::stats`]), hole punching ([`Peer::hole_punch`]).
    ///
    /// [`Relay::reservations`]: crate::relay::Relay::reservations
    /// [`Relay::stats`]: crate::relay::Relay::stats
    pub fn relay(&self) -> &Arc<crate::relay::Relay> {
        &self.inner.relay
    }

    /// Tries to replace the relayed session `conn` by a direct one (TCP simultaneous open,
    /// PROTOCOL.md §32.6): the new session on success (`conn` stays open, its streams do
    /// not move), an error otherwise (`conn` untouched: stay relayed).
    pub async fn hole_punch(&self, conn: &Connection) -> Result<Connection, Error> {
        self.inner.relay.hole_punch(conn).await
    }

    pub fn permissions(&self) -> &Arc<Permissions> {
        &self.inner.permissions
    }

    pub fn px1(&self) -> Option<&px1::Px1> {
        self.inner.px1.as_deref()
    }

    /// Our current AliasCard, if one is set and unexpired.
    pub fn alias(&self) -> Option<AliasCard> {
        let now = crate::unix_now();
        self.inner
            .alias_card
            .lock()
            .unwrap()
            .as_ref()
            .map(|(c, _)| c.clone())
            .filter(|c| c.is_current(now))
    }

    fn alias_bytes(&self) -> Option<Arc<Vec<u8>>> {
        let now = crate::unix_now();
        self.inner
            .alias_card
            .lock()
            .unwrap()
            .as_ref()
            .filter(|(c, _)| c.is_current(now))
            .map(|(_, b)| b.clone())
    }

    /// Our attestation, re-issued through the signer when less than a tenth of its
    /// validity is left.
    async fn attestation(&self) -> Result<Arc<Vec<u8>>, Error> {
        let mut issued = self.inner.attestation.lock().await;
        let now = crate::unix_now();
        let ttl = self.inner.config.attestation_ttl_secs;
        if issued.expires_at - now < ttl / 10 {
            let att = NodeKeyAttestation::issue(
                self.inner.signer.as_ref(),
                self.inner.node_key.public(),
                now,
                ttl,
            )
            .await?;
            *issued = Issued {
                bytes: Arc::new(att.encode()),
                expires_at: att.expires_at,
            };
        }
        Ok(issued.bytes.clone())
    }

    /// `hs2`: offer hs2 (a dialer) or accept an offer (a listener), PROTOCOL.md §5.8.
    async fn session_config(
        &self,
        initiator: bool,
        opts: &DialOptions,
        profile: WireProfile,
        hs2: bool,
    ) -> Result<SessionConfig, Error> {
        let attestation = self.attestation().await?;
        if profile.is_typescript()
            && NodeKeyAttestation::decode(&attestation)?.form != crate::SignatureForm::Digest
        {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "the TypeScript profile needs a digest-form attestation, and this peer's \
                 signer signs Stacks messages (PROTOCOL.md §12.1)",
            ));
        }
        Ok(SessionConfig {
            initiator,
            node_key: self.inner.node_key.clone(),
            attestation,
            principal: self.inner.principal.clone(),
            visibility: self.inner.config.visibility,
            policy: if initiator {
                None
            } else {
                Some(self.inner.policy.clone())
            },
            networks: self.inner.config.networks,
            permissions: Some(self.inner.permissions.clone()),
            invite_token: opts.invite.clone(),
            expected_remote: opts.expect.clone(),
            capabilities: self.inner.capabilities.clone(),
            limits: self.inner.limits.clone(),
            attestation_cache: self.inner.cache.clone(),
            alias_card: self.alias_bytes(),
            clock: Clock::system(),
            fixed: None,
            profile,
            hs2,
        })
    }

    /// Runs a session over `io` (either direction) until it is established.
    /// Runs one session's handshake to AUTH_OK. A listener's handshake holds an admission
    /// `slot`: the machine reports progress to it, and an eviction ends the handshake.
    async fn run_session(
        &self,
        cfg: SessionConfig,
        io: Box<dyn Io>,
        path: Path,
        slot: Option<&Slot>,
    ) -> Result<Connection, HandshakeFailure> {
        let mut session = Session::new(cfg, Instant::now()).map_err(HandshakeFailure::answered)?;
        if let Some(slot) = slot {
            session.track_progress(slot.progress());
        }
        let router = self
            .inner
            .router
            .clone()
            .map(|r| r as Arc<dyn crate::session::InboundRouter>);
        let direction = match slot {
            Some(_) => Direction::Inbound,
            None => Direction::Outbound,
        };
        // No principal in logs: the session is named by its connection id (recorded at
        // AUTH_OK), the remote by its address.
        let span = tracing::debug_span!(
            "session",
            connection = tracing::field::Empty,
            direction = direction.as_str(),
            transport = path.transport.as_str(),
            remote = ?path.remote,
        );
        let shared = crate::session::spawn_driver(
            session,
            io,
            path.clone(),
            router,
            Some(self.inner.observer.clone()),
            span,
        );
        let result = match slot {
            None => crate::session::established(shared.clone()).await,
            Some(slot) => {
                let evicted = async {
                    slot.evicted().await;
                    Error::new(
                        ErrorCode::ResourceExhausted,
                        "handshake evicted: it stalled while the listener was full",
                    )
                };
                crate::session::established_unless(shared.clone(), evicted).await
            }
        };
        let took = shared.started.elapsed();
        let monitor = &self.inner.monitor;
        match result {
            Ok(conn) => {
                let _ = shared.handshake.set(took);
                // Its `session_established` event came from the driver, before any
                // stream event of the session (session::Observer::established).
                monitor.established(direction, crate::session::ran_hs2(&shared));
                self.register(&conn, direction);
                Ok(conn)
            }
            Err(error) => {
                if let (Some(_), Some(remote)) = (slot, path.remote) {
                    // An inbound failure is charged to its source before the event reports
                    // it, so whoever reacts to the event finds the budget already spent (a
                    // dial right after it was let in before: core/tests/events.rs).
                    let policy = &self.inner.policy;
                    policy.preauth_limiter.charge(remote.ip(), Instant::now());
                }
                monitor.handshake_failed(direction, &path, &error, Some(took));
                tracing::debug!(
                    "{} handshake with {:?} failed after {took:?}: {error}",
                    direction.as_str(),
                    path.remote
                );
                let (answered, hs2_unanswered) = crate::session::handshake_answers(&shared);
                Err(HandshakeFailure {
                    answered,
                    hs2_unanswered,
                    error,
                })
            }
        }
    }

    /// Called once per authenticated session, either direction.
    fn register(&self, conn: &Connection, direction: Direction) {
        self.inner.connections.lock().unwrap().push(conn.clone());
        // The driver reports the end (`SessionObserver::ended`), unless it came already.
        self.inner.unreported.fetch_add(1, Ordering::SeqCst);
        if !conn.watch_end() {
            self.session_ended(conn.clone(), direction);
        }
        if let Some(router) = &self.inner.router {
            router.session_started(conn);
        }
    }

    /// A registered session has ended: keep the remote's last AliasCard and report the
    /// end (`keepalive_timeout` when it was this side's verdict, then `session_closed`).
    fn session_ended(&self, conn: Connection, direction: Direction) {
        let _reported = Reported(&self.inner);
        let why = conn.end_reason();
        self.remember_alias(&conn);
        let stats = conn.stats();
        let path = Path {
            transport: stats.transport.clone(),
            remote: stats.remote_addr,
            local: stats.local_addr,
        };
        // This side's own keepalive verdict (session/keepalive.rs), not the remote's,
        // received in an ERROR.
        if conn.keepalive_expired() {
            self.inner.monitor.emit(|| {
                let mut ev = PeerEvent::new(EventKind::KeepaliveTimeout).error(&why);
                ev.connection = Some(conn.id());
                ev.duration = Some(stats.age);
                ev.on(direction, &path)
            });
        }
        self.inner.monitor.emit(|| {
            let mut ev = PeerEvent::new(EventKind::SessionClosed).error(&why);
            ev.connection = Some(conn.id());
            ev.remote_principal = Some(conn.remote_principal().clone());
            ev.duration = Some(stats.age);
            ev.bytes_sent = Some(stats.bytes_sent);
            ev.bytes_received = Some(stats.bytes_received);
            ev.on(direction, &path)
        });
    }

    /// Live sessions (both directions).
    pub fn connections(&self) -> Vec<Connection> {
        let mut conns = self.inner.connections.lock().unwrap();
        conns.compact();
        conns.live.clone()
    }

    /// Starts listening on a locator with port (0: any free one): `"9000"` (all IPv4
    /// interfaces, TCP), `"127.0.0.1:0"`, `"[::]:9000"`, or `scheme://ip:port[/path]` for
    /// another transport. Returns the bound socket address; [`Peer::listen_locators`] gives
    /// the full locators. Authenticated sessions arrive through [`Peer::accept`].
    pub async fn listen(&self, addr: &str) -> Result<SocketAddr, Error> {
        self.listen_with_profile(addr, self.inner.config.profile)
            .await
    }

    /// [`Peer::listen`] in a given wire profile: a listener speaks one profile, because it
    /// cannot tell a TypeScript dialer from a standard one before it must answer
    /// (PROTOCOL.md §12.2); listen on one port per profile to serve both.
    pub async fn listen_with_profile(
        &self,
        addr: &str,
        profile: WireProfile,
    ) -> Result<SocketAddr, Error> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorCode::ConnectionClosed, "peer is closed"));
        }
        if self.inner.config.role == Role::DialerOnly {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "this peer is dialer-only: it does not listen",
            ));
        }
        let locator = Locator::parse_listen(addr)?;
        let transport = self.inner.transports.for_scheme(locator.scheme())?;
        let listener = transport.listen(&locator).await?;
        let local = listener.local_locator();
        // A listener named by a host name (a reservation on `relay+wss://relay.example:443`)
        // reports the address that name resolves to.
        let bound = match local.socket_addr() {
            Some(a) => a,
            None => local.resolve().await?.into_iter().next().ok_or_else(|| {
                Error::new(
                    ErrorCode::Internal,
                    format!("listener on {local} has no socket address"),
                )
            })?,
        };
        let task = tokio::spawn(accept_loop(listener, self.downgrade(), profile));
        self.inner.listeners.lock().unwrap().push((local, task));
        // Peers connected before this listener learn it (PX-1 pushes it again).
        if let Some(router) = &self.inner.router {
            router.locators_changed();
        }
        // The DHT advert is republished with it.
        #[cfg(feature = "dht")]
        if let Some(p) = self.inner.dht_publisher.lock().unwrap().as_ref() {
            p.wake();
        }
        #[cfg(feature = "mdns")]
        if let Some(m) = &self.inner.mdns {
            if let Err(e) = m.refresh(&self.inner.handle, &self.inner.node_key.public()) {
                tracing::warn!("mdns announcement failed: {e}");
            }
        }
        Ok(bound)
    }

    /// The bound socket addresses of every listener.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.listen_locators()
            .iter()
            .filter_map(Locator::socket_addr)
            .collect()
    }

    /// Where others can reach this peer, as it advertises it: the configured
    /// [`PeerConfig::external_locators`] first, then every listener's locator.
    pub fn reachable_locators(&self) -> Vec<Locator> {
        let mut out = self.config().external_locators.clone();
        for l in self.listen_locators() {
            if !out.contains(&l) {
                out.push(l);
            }
        }
        out
    }

    /// Every listener as a locator of its transport (unspecified IPs as bound).
    pub fn listen_locators(&self) -> Vec<Locator> {
        self.inner
            .listeners
            .lock()
            .unwrap()
            .iter()
            .map(|(l, _)| l.clone())
            .collect()
    }

    /// The next authenticated inbound session; `None` once the peer is closed. A session
    /// that authenticated and ended at once is still returned: its `closed()` says why.
    pub async fn accept(&self) -> Option<Connection> {
        // Registered before the flag is checked, so a `close` in between still wakes us.
        let closing = self.inner.closing.notified();
        tokio::pin!(closing);
        closing.as_mut().enable();
        if self.inner.closed.load(Ordering::SeqCst) {
            return None;
        }
        tokio::select! {
            conn = async { self.inner.incoming_rx.lock().await.recv().await } => conn,
            _ = closing => None,
        }
    }

    /// Dials a locator (`ip:port`, `[ipv6]:port`, `host:port`, `scheme://host:port[/path]`)
    /// or a principal (`stacks:SP…`, found through the discovery modules: PX-1 by default),
    /// or a BNS name (`alice.btc`, with `PeerBuilder::bns`: resolved to its owner, whom
    /// the session must authenticate as; docs/PROTOCOL.md §37).
    pub async fn dial(&self, target: &str) -> Result<Connection, Error> {
        self.dial_with(target, DialOptions::default()).await
    }

    pub async fn dial_with(&self, target: &str, opts: DialOptions) -> Result<Connection, Error> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorCode::ConnectionClosed, "peer is closed"));
        }
        if self.inner.config.role == Role::ListenerOnly {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "this peer is listener-only: it does not dial",
            ));
        }
        let target = target.trim();
        if target.starts_with(crate::identity::PRINCIPAL_PREFIX) {
            let principal = Principal::parse(target)?;
            return self.dial_principal(principal, opts).await;
        }
        #[cfg(feature = "bns")]
        if crate::discovery::bns::is_bns_name(target) {
            return self.dial_name(target, opts).await;
        }
        let locator: Locator = target.parse()?;
        self.dial_locator(&locator, opts).await
    }

    /// A BNS name: its owner principal and zonefile locators from the configured chain
    /// providers (all of which must agree), then a session that authenticates as the owner:
    /// an existing one, else the zonefile's locators, else the discovery modules.
    #[cfg(feature = "bns")]
    async fn dial_name(&self, name: &str, opts: DialOptions) -> Result<Connection, Error> {
        let bns = self.inner.bns.clone().ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("'{name}' is a BNS name and this peer has no BNS providers configured"),
            )
        })?;
        let record = bns.resolve(name).await?;
        let principal = record.owner.clone();
        if principal == self.inner.principal {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("{name} is owned by this peer's own principal"),
            ));
        }
        if opts.expect.as_ref().is_some_and(|e| *e != principal) {
            return Err(Error::new(
                ErrorCode::PrincipalMismatch,
                format!("{name} is owned by {principal}, not by the expected principal"),
            ));
        }
        if let Some(c) = self
            .connections()
            .into_iter()
            .find(|c| *c.remote_principal() == principal)
        {
            return Ok(c);
        }
        let hinted = if record.locators.is_empty() {
            None
        } else {
            match crate::protocol::dial_hints(
                &self.inner.handle,
                &principal,
                &record.locators,
                opts.clone(),
            )
            .await
            {
                Ok(c) => return Ok(c),
                Err(e) => Some(e),
            }
        };
        match self.dial_principal(principal, opts).await {
            Ok(c) => Ok(c),
            // The zonefile's own failure says more than "no discovery module knew it".
            Err(e) if e.code == ErrorCode::NotFound => Err(hinted.unwrap_or(e)),
            Err(e) => Err(e),
        }
    }

    /// An existing session to `principal`, else what the discovery modules find, in order.
    async fn dial_principal(
        &self,
        principal: Principal,
        opts: DialOptions,
    ) -> Result<Connection, Error> {
        if principal == self.inner.principal {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "cannot dial our own principal",
            ));
        }
        if opts.expect.as_ref().is_some_and(|e| *e != principal) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "DialOptions::expect names a different principal than the one dialed",
            ));
        }
        if let Some(c) = self
            .connections()
            .into_iter()
            .find(|c| *c.remote_principal() == principal)
        {
            return Ok(c);
        }
        let mut last = Error::new(
            ErrorCode::NotFound,
            format!(
                "no session to {principal} and no discovery module on this peer (PX-1 is disabled)"
            ),
        );
        for module in &self.inner.discovery {
            match module
                .dial_principal(&self.inner.handle, &principal, opts.clone())
                .await
            {
                Ok(c) => return Ok(c),
                Err(e) if e.code == ErrorCode::NotFound => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Dials one locator over the transport of its scheme, trying each resolved address in
    /// order. A locator of a transport this peer lacks fails with `ERR_INVALID_ARGUMENT`
    /// and says which transports it has.
    ///
    /// A listener that is shedding load (ERR_RESOURCE_EXHAUSTED, ERR_RATE_LIMITED, or a
    /// close before any answer, which is how a stealth listener refuses) is dialed again
    /// after a jittered backoff, for as long as `PeerConfig::connect_timeout` allows.
    pub async fn dial_locator(
        &self,
        locator: &Locator,
        opts: DialOptions,
    ) -> Result<Connection, Error> {
        let transport = self.inner.transports.for_scheme(locator.scheme())?;
        // A relayed locator names the principal at its end: the session must authenticate it.
        let mut opts = opts;
        if opts.expect.is_none() {
            opts.expect = crate::relay::target_of(locator);
        }
        let mut retry = RetryBackoff::new(Instant::now() + self.inner.config.connect_timeout);
        let key = locator.to_string();
        let mut hs2 = self.inner.config.hs2 && !self.inner.v1_only.contains(&key, Instant::now());
        loop {
            let connected = transport.dial(locator).await?;
            let failure = match self
                .handshake(connected, locator.scheme(), &opts, hs2)
                .await
            {
                Ok(conn) => return Ok(conn),
                Err(f) => f,
            };
            if hs2 && failure.hs2_unanswered {
                // A v1 listener closes without a word on an hs2 offer (PROTOCOL.md §5.8):
                // again at once with v1, which every listener speaks, and v1 for a while.
                tracing::debug!("{locator}: closed on our hs2 offer; dialing again with v1");
                self.inner.v1_only.insert(&key, Instant::now());
                hs2 = false;
                continue;
            }
            match (failure.is_load_shedding(), retry.next_wait()) {
                (true, Some(wait)) => {
                    self.inner.monitor.emit(|| {
                        let mut ev = PeerEvent::new(EventKind::DialRetry).error(&failure.error);
                        ev.duration = Some(wait);
                        ev.transport = Some(locator.scheme().clone());
                        ev
                    });
                    tokio::time::sleep(wait).await
                }
                _ => return Err(failure.error),
            }
        }
    }

    /// Where `principal` can be reached, by the resolver chain ([`PeerConfig::resolver`]:
    /// cache → px-1 → mdns → dht → bns by default): the first step that returns locators
    /// answers. The report names that step and what each step did, with its duration and
    /// error. Locators are hints unless they came from a verified advert (`cache`, and
    /// `dht` when it holds one): dial them with `DialOptions::expect(principal)`.
    pub async fn resolve(&self, principal: &Principal) -> crate::discovery::ResolveReport {
        crate::discovery::chain::run(
            &self.inner.config.resolver,
            &self.inner.resolvers,
            &self.inner.advert_cache,
            &self.inner.handle,
            principal,
        )
        .await
    }

    /// [`Self::resolve`] of a principal (`stacks:SP…`, the prefix optional) or of a BNS
    /// name (`alice.btc`, with `PeerBuilder::bns`): the name's owner and zonefile locators
    /// from the cross-checked providers first (a step `bns-name` in the report, its
    /// locators hints), then, when the zonefile has none, the chain for the owner. Fails
    /// when the name does not resolve (`ERR_PROVIDERS_DISAGREE`, `ERR_NOT_FOUND`, …) or
    /// when no step answered ([`crate::discovery::ResolveReport::error`]): what the
    /// bindings' `resolve` and `snap2p resolve` return.
    pub async fn resolve_target(
        &self,
        target: &str,
    ) -> Result<crate::discovery::ResolveReport, Error> {
        let target = target.trim();
        #[cfg(feature = "bns")]
        if crate::discovery::bns::is_bns_name(target) {
            return self.resolve_name(target).await;
        }
        let principal = if target.starts_with(crate::identity::PRINCIPAL_PREFIX) {
            Principal::parse(target)?
        } else {
            Principal::parse(&format!("{}{target}", crate::identity::PRINCIPAL_PREFIX))?
        };
        let report = self.resolve(&principal).await;
        match report.answered_by {
            Some(_) => Ok(report),
            None => Err(report.error()),
        }
    }

    #[cfg(feature = "bns")]
    async fn resolve_name(&self, name: &str) -> Result<crate::discovery::ResolveReport, Error> {
        use crate::discovery::{StepOutcome, StepReport};
        let bns = self.inner.bns.clone().ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("'{name}' is a BNS name and this peer has no BNS providers configured"),
            )
        })?;
        let t0 = std::time::Instant::now();
        let record = bns.resolve(name).await?;
        let took = t0.elapsed();
        let step = |outcome| StepReport {
            name: crate::discovery::chain::STEP_BNS_NAME.to_string(),
            duration: took,
            outcome,
        };
        let mut report = if record.locators.is_empty() {
            let mut r = self.resolve(&record.owner).await;
            r.steps.insert(0, step(StepOutcome::NotFound));
            r
        } else {
            crate::discovery::ResolveReport {
                principal: record.owner.clone(),
                name: None,
                verified: crate::discovery::chain::verified_flags(
                    &self.inner.advert_cache,
                    &record.owner,
                    &record.locators,
                ),
                answered_by: Some(crate::discovery::chain::STEP_BNS_NAME.to_string()),
                steps: vec![step(StepOutcome::Found(record.locators.len()))],
                locators: record.locators,
                duration: Duration::ZERO,
            }
        };
        report.name = Some(record.name);
        report.duration = t0.elapsed();
        match report.answered_by {
            Some(_) => Ok(report),
            None => Err(report.error()),
        }
    }

    /// The verified endpoint adverts this peer holds (the DHT module's durable cache).
    pub fn advert_cache(&self) -> &Arc<crate::discovery::AdvertCache> {
        &self.inner.advert_cache
    }

    /// The DHT module, when [`PeerConfig::dht`] is set.
    #[cfg(feature = "dht")]
    pub fn dht(&self) -> Option<&Arc<crate::discovery::DhtDiscovery>> {
        self.inner.dht.as_ref()
    }

    /// Publishes this peer's advert to the DHT now (the republication task does it on its
    /// own; this is for tools and tests). Refused on Private and Stealth peers.
    #[cfg(feature = "dht")]
    pub async fn publish_advert(&self) -> Result<crate::discovery::PublishReport, Error> {
        let Some(dht) = &self.inner.dht else {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "this peer has no DHT",
            ));
        };
        if self.visibility() != Visibility::Public {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "Private and Stealth peers never publish to the DHT (spec §10.3)",
            ));
        }
        let att = self.attestation().await?;
        dht.publish(&self.inner.node_key, &att, &self.reachable_locators())
            .await
    }

    /// Starts the republication of this peer's advert when it is Public and on a DHT that
    /// publishes (the handle is stopped by `close`).
    #[cfg(feature = "dht")]
    fn start_dht_publisher(&self) {
        let Some(dht) = &self.inner.dht else { return };
        if self.visibility() != Visibility::Public || dht.config().publish == Some(false) {
            return;
        }
        let source = Arc::new(AdvertFrom(self.downgrade()));
        *self.inner.dht_publisher.lock().unwrap() = Some(dht.start_publisher(source));
    }

    /// Runs the dialer side of the handshake over a byte stream a transport opened (once:
    /// [`Peer::dial_locator`] is the path that retries a listener shedding load).
    pub async fn handshake_outbound(
        &self,
        connected: Connected,
        opts: DialOptions,
    ) -> Result<Connection, Error> {
        let external = Scheme::Other("external".into());
        // v1: on a stream the caller opened there is no dialing again with v1 should the
        // listener not speak hs2 (PROTOCOL.md §5.8).
        self.handshake(connected, &external, &opts, false)
            .await
            .map_err(|f| f.error)
    }

    async fn handshake(
        &self,
        connected: Connected,
        transport: &Scheme,
        opts: &DialOptions,
        hs2: bool,
    ) -> Result<Connection, HandshakeFailure> {
        let path = Path {
            transport: transport.clone(),
            remote: connected.remote,
            local: connected.local,
        };
        // Boxed: a dial's future is held until its task is joined (tokio keeps a finished
        // task's cell, sized by the future, until then), and these two made it 4.6 KB.
        let profile = opts.profile.unwrap_or(self.inner.config.profile);
        let cfg = Box::pin(self.session_config(true, opts, profile, hs2))
            .await
            .map_err(HandshakeFailure::answered)?;
        Box::pin(self.run_session(cfg, connected.io, path, None)).await
    }

    /// Subscribes to this peer's events (docs/EVENTS.md); dropping the [`Events`] ends the
    /// subscription.
    pub fn events(&self) -> Events {
        self.inner.monitor.subscribe()
    }

    /// This peer's counters now.
    pub fn stats(&self) -> PeerStats {
        let open = self.connections().len();
        self.inner.monitor.stats(open, self.pending_handshakes())
    }

    /// Inbound connections not yet authenticated nor turned away: handshakes in progress
    /// on this peer's listeners and connections still waiting for their first bytes
    /// (admission control's tables, PROTOCOL.md §9.1). 0 once an attack has drained.
    pub fn pending_handshakes(&self) -> usize {
        self.inner.admission.pending() + self.inner.admission.waiting()
    }

    /// Stops listening, closes every session and ends `accept`.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        #[cfg(feature = "dht")]
        if let Some(p) = self.inner.dht_publisher.lock().unwrap().take() {
            p.stop();
        }
        #[cfg(feature = "mdns")]
        if let Some(m) = &self.inner.mdns {
            m.stop();
        }
        // A pending `accept` holds the receiver's lock: end it first, or the lock below
        // would wait forever.
        self.inner.closing.notify_waiters();
        for (_, task) in self.inner.listeners.lock().unwrap().drain(..) {
            task.abort();
        }
        let conns: Vec<Connection> =
            std::mem::take(&mut self.inner.connections.lock().unwrap().live);
        for c in &conns {
            c.close(ErrorCode::Ok, "peer closed");
        }
        // All at once: a peer with many sessions to gone remotes would otherwise wait up to
        // 2 s for each in turn.
        let mut ends = tokio::task::JoinSet::new();
        for c in &conns {
            let c = c.clone();
            ends.spawn(async move { c.closed().await });
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while ends.join_next().await.is_some() {}
        })
        .await;
        // Every session's end reported (`register`), then the subscriptions end after
        // what they queued: a subscriber reads each `session_closed`, then its end.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                let reported = self.inner.reported.notified();
                if self.inner.unreported.load(Ordering::SeqCst) == 0 {
                    break;
                }
                reported.await;
            }
        })
        .await;
        self.inner.monitor.end();
        self.inner.incoming_rx.lock().await.close();
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }
}

/// What the DHT publisher takes from its peer each time it publishes.
#[cfg(feature = "dht")]
struct AdvertFrom(Weak<PeerInner>);

#[cfg(feature = "dht")]
impl crate::discovery::dht::AdvertSource for AdvertFrom {
    fn material(&self) -> BoxFuture<Option<crate::discovery::dht::AdvertMaterial>> {
        let peer = Peer::from_weak(&self.0);
        Box::pin(async move {
            let peer = peer?;
            if peer.is_closed() {
                return None;
            }
            let attestation = peer.attestation().await.ok()?;
            Some(crate::discovery::dht::AdvertMaterial {
                node_key: peer.inner.node_key.clone(),
                attestation,
                locators: peer.reachable_locators(),
                visibility: peer.visibility(),
            })
        })
    }
}

/// The observer of every session driver of a peer: the event monitor's tap for bytes,
/// streams and establishment, and the peer itself for ends (weakly: a driver that
/// outlives its peer reports to nobody).
struct SessionObserver {
    tap: Arc<dyn crate::session::Observer>,
    peer: Weak<PeerInner>,
}

impl crate::session::Observer for SessionObserver {
    fn bytes(&self, sent: u64, received: u64) {
        self.tap.bytes(sent, received)
    }

    fn listening(&self) -> bool {
        self.tap.listening()
    }

    fn stream(&self, connection: &str, note: crate::session::StreamNote) {
        self.tap.stream(connection, note)
    }

    fn established(&self, note: crate::session::EstablishedNote) {
        self.tap.established(note)
    }

    fn ended(&self, conn: Connection) {
        if let Some(peer) = Peer::from_weak(&self.peer) {
            let direction = if conn.is_outbound() {
                Direction::Outbound
            } else {
                Direction::Inbound
            };
            peer.session_ended(conn, direction);
        }
    }
}

/// Counts a session's end as reported when dropped (after its events, or on a panic).
struct Reported<'a>(&'a PeerInner);

impl Drop for Reported<'_> {
    fn drop(&mut self) {
        if self.0.unreported.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.reported.notify_waiters();
        }
    }
}

/// The peer as its protocol handlers and discovery modules see it: weakly, and only what
/// [`PeerHandle`] offers.
struct WeakPeer(Weak<PeerInner>);

impl WeakPeer {
    fn peer(&self) -> Option<Peer> {
        Peer::from_weak(&self.0)
    }
}

impl PeerOps for WeakPeer {
    fn principal(&self) -> Option<Principal> {
        self.peer().map(|p| p.principal().clone())
    }

    fn visibility(&self) -> Option<Visibility> {
        self.peer().map(|p| p.visibility())
    }

    fn connections(&self) -> Vec<Connection> {
        self.peer().map(|p| p.connections()).unwrap_or_default()
    }

    fn reachable_locators(&self) -> Vec<Locator> {
        self.peer()
            .map(|p| p.reachable_locators())
            .unwrap_or_default()
    }

    fn allows(&self, principal: &Principal) -> bool {
        self.peer()
            .is_some_and(|p| p.policy().allowlist.contains(principal))
    }

    fn report_query(&self, answered: bool, conn: &Connection, result: Result<usize, ErrorCode>) {
        let Some(peer) = self.peer() else { return };
        peer.inner.monitor.emit(|| {
            let mut ev = PeerEvent::new(EventKind::Px1Query);
            ev.connection = Some(conn.id());
            ev.direction = Some(if answered {
                Direction::Inbound
            } else {
                Direction::Outbound
            });
            match result {
                Ok(n) => ev.count = Some(n as u64),
                Err(code) => ev.code = Some(code),
            }
            ev
        });
    }

    fn dial_locator(
        &self,
        locator: Locator,
        opts: DialOptions,
    ) -> BoxFuture<Result<Connection, Error>> {
        let peer = self.peer();
        Box::pin(async move {
            match peer {
                Some(p) => p.dial_locator(&locator, opts).await,
                None => Err(Error::new(ErrorCode::ConnectionClosed, "peer is closed")),
            }
        })
    }

    fn connect_transport(&self, locator: Locator) -> BoxFuture<Result<Connected, Error>> {
        let dial = self
            .peer()
            .ok_or_else(|| Error::new(ErrorCode::ConnectionClosed, "peer is closed"))
            .and_then(|p| {
                Ok(p.inner
                    .transports
                    .for_scheme(locator.scheme())?
                    .dial(&locator))
            });
        Box::pin(async move { dial?.await })
    }
}

/// Accepts inbound byte streams of one listener, whatever its transport, and runs each
/// through admission control (`crate::admission`) and the listener side of the handshake.
async fn accept_loop(mut listener: Box<dyn Listener>, peer: Weak<PeerInner>, profile: WireProfile) {
    let transport = listener.local_locator().scheme().clone();
    loop {
        let incoming = match std::future::poll_fn(|cx| listener.poll_accept(cx)).await {
            Ok(x) => x,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(peer) = Peer::from_weak(&peer) else {
            return;
        };
        if peer.is_closed() {
            return;
        }
        let policy = peer.inner.policy.clone();
        let source = incoming.remote.ip();
        let now = Instant::now();
        // Pre-auth gates, cheapest first: the source's failure budget (not on stealth
        // nodes: see PeerConfig::preauth_rate_per_min), then a slot in the table of
        // handshakes in progress. A refusal costs one accept and one close.
        if !policy.knock_required() && !policy.preauth_limiter.has_budget(source, now) {
            peer.inner
                .monitor
                .refused(incoming.remote, ErrorCode::RateLimited);
            refuse(incoming, &policy, ErrorCode::RateLimited);
            continue;
        }
        let waiting = peer.inner.admission.arrive(source, now);
        let transport = incoming
            .transport
            .clone()
            .unwrap_or_else(|| transport.clone());
        tokio::spawn(async move {
            let Incoming {
                remote,
                local,
                upgrade,
                ..
            } = incoming;
            let limits = &peer.inner.config.limits;
            let path = Path {
                transport,
                remote: Some(remote),
                local,
            };
            // The transport's own setup (a WebSocket upgrade, TLS) and the first bytes
            // share the first frame's deadline; a connection dropped for newer ones while
            // it waits gets no answer (it has said nothing).
            let deadline = tokio::time::Instant::now() + limits.first_frame_timeout;
            let setup = tokio::select! {
                biased;
                r = tokio::time::timeout_at(deadline, upgrade) => r.ok().and_then(|r| r.ok()),
                _ = waiting.slot().evicted() => None,
            };
            // A first frame that is a SPLICE with a token this relay handed out is one end
            // of a spliced circuit (§32.3), not a session.
            let relay = peer.inner.relay.clone();
            let mut splice = None;
            let first = |f: &[u8]| match crate::relay::codec::decode_splice(f) {
                Some(token) if relay.expects_splice(&token) => {
                    splice = Some(token);
                    true
                }
                _ => invited(&policy, f),
            };
            let result = match setup {
                None => Err(Unmade::Uncharged),
                Some(io) => match waiting.first_bytes(io, deadline, first).await {
                    Ok((ticket, io)) if splice.is_some() => {
                        let token = splice.expect("checked");
                        let joined = relay.join_splice(token, io).await;
                        drop(ticket);
                        if joined {
                            return;
                        }
                        Err(Unmade::Uncharged)
                    }
                    Err(Refused::Gone) => Err(Unmade::Uncharged),
                    Err(Refused::Say(io, code, reason)) => {
                        // Charged before the event, as in `run_session`.
                        policy.preauth_limiter.charge(remote.ip(), Instant::now());
                        let monitor = &peer.inner.monitor;
                        if code == ErrorCode::ResourceExhausted {
                            monitor.refused(remote, code);
                        } else {
                            let error = Error::new(code, reason);
                            monitor.handshake_failed(Direction::Inbound, &path, &error, None);
                        }
                        refuse_io(io, &policy, code, Some(reason)).await;
                        Err(Unmade::Charged)
                    }
                    Ok((ticket, io)) => {
                        // Boxed, so a connection that is only waiting for its first bytes
                        // holds a small task (the handshake's future is ~4 KB).
                        let handshake = async {
                            let Ok(cfg) = peer
                                .session_config(
                                    false,
                                    &DialOptions::default(),
                                    profile,
                                    peer.inner.config.hs2,
                                )
                                .await
                            else {
                                return Err(Unmade::Uncharged);
                            };
                            let slot = Some(ticket.slot().as_ref());
                            // A failure is charged by run_session, before its event.
                            peer.run_session(cfg, io, path, slot)
                                .await
                                .map_err(|_| Unmade::Charged)
                        };
                        Box::pin(handshake).await
                    }
                },
            };
            match result {
                Ok(conn) => {
                    // A full backlog means the app is not accepting: shed the session.
                    if let Err(e) = peer.inner.incoming_tx.try_send(conn) {
                        let conn = match e {
                            mpsc::error::TrySendError::Full(c)
                            | mpsc::error::TrySendError::Closed(c) => c,
                        };
                        conn.close(ErrorCode::ResourceExhausted, "accept backlog full");
                    }
                }
                Err(Unmade::Uncharged) => {
                    policy.preauth_limiter.charge(remote.ip(), Instant::now())
                }
                Err(Unmade::Charged) => {}
            }
        });
    }
}

/// An inbound connection that made no session, and whether its source's failure budget
/// (`PeerConfig::preauth_rate_per_min`) is charged already: where an event reports the
/// failure, the charge comes first.
enum Unmade {
    Uncharged,
    Charged,
}

/// Whether a first frame is a KNOCK with an invite this node would accept (admission lets
/// it past its source's share; the session redeems it).
fn invited(policy: &NodePolicy, frame: &[u8]) -> bool {
    use crate::wire::message::Message;
    match Message::decode(frame) {
        Ok(Message::Knock { token, .. }) => {
            policy.knock_required() && policy.invites.is_valid(token, crate::unix_now())
        }
        _ => false,
    }
}

/// Why a handshake did not end in a session.
struct HandshakeFailure {
    error: Error,
    /// Whether the peer sent at least one complete frame.
    answered: bool,
    /// Whether we offered hs2 and the peer sent nothing after the offer.
    hs2_unanswered: bool,
}

impl HandshakeFailure {
    fn answered(error: Error) -> Self {
        HandshakeFailure {
            error,
            answered: true,
            hs2_unanswered: false,
        }
    }

    /// The listener is busy, not saying no: worth another try after a pause.
    fn is_load_shedding(&self) -> bool {
        matches!(
            self.error.code,
            ErrorCode::ResourceExhausted | ErrorCode::RateLimited
        ) || (self.error.code == ErrorCode::ConnectionClosed && !self.answered)
    }
}

/// Pauses between dials of a listener that is shedding load: full jitter over an
/// exponentially growing cap (50 ms doubling to 1 s), so dialers refused at the same
/// instant do not come back together; never past the dial's deadline.
struct RetryBackoff {
    deadline: Instant,
    cap: Duration,
}

impl RetryBackoff {
    fn new(deadline: Instant) -> Self {
        RetryBackoff {
            deadline,
            cap: Duration::from_millis(50),
        }
    }

    /// The next pause, or None when it would end past the deadline.
    fn next_wait(&mut self) -> Option<Duration> {
        use rand::Rng;
        let cap = self.cap;
        self.cap = (cap * 2).min(Duration::from_secs(1));
        let wait = rand::thread_rng().gen_range(cap / 2..=cap);
        (Instant::now() + wait < self.deadline).then_some(wait)
    }
}

/// Turns an inbound stream away before any handshake. Stealth nodes stay silent; others
/// say why in a plaintext AUTH_FAIL, when the transport is ready to carry it at once (TCP;
/// a transport whose setup is still under way is just dropped).
fn refuse(incoming: Incoming, policy: &NodePolicy, code: ErrorCode) {
    if policy.visibility == Visibility::Stealth {
        return;
    }
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut upgrade = incoming.upgrade;
    let Poll::Ready(Ok(mut io)) = upgrade.as_mut().poll(&mut cx) else {
        return;
    };
    let framed = refusal(code, None);
    match std::pin::Pin::new(&mut io).poll_write(&mut cx, &framed) {
        Poll::Ready(_) => {}
        // A socket accepted a moment ago may not be known writable yet (its first
        // readiness event not processed): finish the write in a task, briefly, rather
        // than close without a word (the dialer would see a bare reset, not the code).
        Poll::Pending => {
            tokio::spawn(refuse_io(io, policy, code, None));
        }
    }
}

/// A refusal on a connection that is already set up (and has sent its first bytes).
fn refuse_io(
    mut io: Box<dyn Io>,
    policy: &NodePolicy,
    code: ErrorCode,
    reason: Option<&str>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let framed = (policy.visibility != Visibility::Stealth).then(|| refusal(code, reason));
    async move {
        use tokio::io::AsyncWriteExt;
        if let Some(framed) = framed {
            let say = async {
                io.write_all(&framed).await?;
                // A clean end (TCP FIN, a WebSocket close message), not a bare drop.
                io.shutdown().await
            };
            let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, say).await;
        }
    }
}

/// A plaintext AUTH_FAIL{code}, framed.
fn refusal(code: ErrorCode, reason: Option<&str>) -> Vec<u8> {
    let msg = crate::wire::message::Message::AuthFail { code, reason }.to_vec();
    let mut framed = Vec::new();
    crate::wire::frame::write_frame(&mut framed, &msg);
    framed
}

/// How long a refusal's AUTH_FAIL may wait for a socket to become writable.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_millis(100);
