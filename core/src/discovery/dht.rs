//! The BitTorrent Mainline DHT as a discovery module (feature `dht`; PROTOCOL.md §35).
//!
//! A Public node publishes two records, both renewed before they lapse:
//!
//! - its signed [`EndpointAdvert`] as a BEP44 **mutable item** under its node key (ed25519,
//!   the key BEP44 wants) with the salt [`ADVERT_SALT`]; the item's `seq` is the advert's
//!   `seq`. Anyone holding the node key (from an earlier session, an advert in the cache)
//!   fetches the freshest advert: locators of every transport, signed, expiring.
//! - a BEP5 **announce** under [`principal_info_hash`] (the first 20 bytes of SHA-256 of a
//!   domain-separated principal string) with its TCP listener's port; DHT nodes record the
//!   announcer's source address. That is how a stranger who knows only `stacks:SP…`
//!   finds it: answers are `ip:port` **hints**, anyone may announce under any hash, and
//!   identity is proven by AUTH when the hint is dialed (expect = the principal).
//!
//! Why two records: a mutable item must be signed by the key it is stored under, and a
//! principal is a hash of a secp256k1 key, which BEP44 cannot verify; the node key is not
//! derivable from the principal. So the principal leads to hints (BEP5), a successful
//! AUTH or a cached advert gives the node key, and the node key leads to the verified
//! advert (BEP44). `resolve` returns the verified locators of every live advert it holds
//! or fetches for the principal, and falls back to the hints only when it has none.
//!
//! Private and Stealth nodes never publish (spec §10.3). All DHT I/O goes through
//! mainline's async API (its own actor thread does the UDP work; no tokio worker blocks);
//! the advert cache's file writes run in `spawn_blocking`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_core::Stream as _;
pub use mainline;
use mainline::async_dht::AsyncDht;
use mainline::{Dht, MutableItem};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::advert::{AdvertCache, AdvertReject, EndpointAdvert, DEFAULT_ADVERT_TTL_SECS};
use crate::error::{Error, ErrorCode};
use crate::identity::{NetworkFilter, NodeKey, Principal};
use crate::locator::{Locator, Scheme};
use crate::policy::Visibility;
use crate::protocol::{dial_hints, DialOptions, Discovery, PeerHandle};
use crate::session::Connection;
use crate::transport::BoxFuture;

/// The BEP44 salt of every snap2p advert item (keeps them apart from other uses of the
/// same ed25519 key, e.g. a pkarr record).
pub const ADVERT_SALT: &[u8] = b"snap2p-advert-v1";
/// The domain of the principal's BEP5 info-hash.
pub const PRINCIPAL_DOMAIN: &str = "snap2p-dht-principal-v1";
/// The module's name (its step in the resolver chain).
pub const NAME: &str = "dht";

/// The 20-byte BEP5 info-hash a principal is announced under:
/// `SHA-256("snap2p-dht-principal-v1" ‖ 0x00 ‖ "stacks:SP…")[..20]`.
pub fn principal_info_hash(principal: &Principal) -> [u8; 20] {
    let mut h = Sha256::new();
    h.update(PRINCIPAL_DOMAIN.as_bytes());
    h.update([0]);
    h.update(principal.to_string().as_bytes());
    let d = h.finalize();
    let mut out = [0u8; 20];
    out.copy_from_slice(&d[..20]);
    out
}

/// How a peer joins the DHT. `DhtConfig::default()` joins the public Mainline network
/// through its usual bootstrap nodes; tests give a local testnet's addresses.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DhtConfig {
    /// Bootstrap nodes (`host:port`); `None`: mainline's public ones.
    pub bootstrap: Option<Vec<String>>,
    /// The IPv4 address the DHT's UDP socket binds (default 0.0.0.0).
    pub bind_address: Option<Ipv4Addr>,
    /// The UDP port (default: any free one).
    pub port: Option<u16>,
    /// Answer other nodes' queries from the start (default: mainline's adaptive mode).
    pub server_mode: bool,
    /// Publish this node's advert and announce its principal: `None` (default) publishes
    /// when the peer is Public; `Some(true)` on a Private or Stealth peer is refused.
    pub publish: Option<bool>,
    /// Lifetime of the adverts this node issues (republished at half of it).
    pub advert_ttl_secs: i64,
    /// Interval of republication (default: half the advert's lifetime; BEP5 announces and
    /// BEP44 items are dropped by DHT nodes after about 30 min and 2 h).
    pub republish_every: Option<Duration>,
    /// File of the durable advert cache (None: memory only).
    pub cache_path: Option<PathBuf>,
    /// Most BEP5 hints `resolve` returns.
    pub max_hints: usize,
    /// How long one DHT lookup (a get_peers or a mutable-item get) may take.
    pub lookup_timeout: Duration,
    /// `resolve` returns this long after the first usable answer (a verified advert, or a
    /// batch of hints) instead of waiting for the whole query; `None` waits for it all.
    /// An advert query goes on in the background and stores any fresher advert in the
    /// cache. Why: a mainline query ends only when its last request has answered or timed
    /// out (2 s): resolve by principal took 2128 ms p50 to completion on the 50-node
    /// loopback test network, and 256 ms p50 (313 max) with this grace, so the first
    /// answer came after about 6 ms (docs/BENCHMARKS.md, DHT); the grace still collects the
    /// answers of the other nodes that hold the record, which come in the same round.
    pub first_answer_grace: Option<Duration>,
    /// A node key whose held advert is live is looked up again in the background (for a
    /// fresher one) at most once per this interval. Why: every resolve or dial of such a
    /// principal started one such query before, so an app dialing a peer in a loop sent a
    /// DHT query per dial.
    pub refresh_every: Duration,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            bootstrap: None,
            bind_address: None,
            port: None,
            server_mode: false,
            publish: None,
            advert_ttl_secs: DEFAULT_ADVERT_TTL_SECS,
            // 25 min: under the ~30 min after which BEP5 nodes forget an announce.
            republish_every: Some(Duration::from_secs(25 * 60)),
            cache_path: None,
            max_hints: 16,
            lookup_timeout: Duration::from_secs(10),
            first_answer_grace: Some(Duration::from_millis(250)),
            refresh_every: Duration::from_secs(60),
        }
    }
}

impl DhtConfig {
    /// A DHT of these bootstrap nodes only (a private or test network).
    pub fn with_bootstrap(mut self, nodes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.bootstrap = Some(nodes.into_iter().map(Into::into).collect());
        self
    }

    pub fn with_bind_address(mut self, addr: Ipv4Addr) -> Self {
        self.bind_address = Some(addr);
        self
    }

    pub fn with_cache_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache_path = Some(path.into());
        self
    }

    pub fn with_publish(mut self, publish: bool) -> Self {
        self.publish = Some(publish);
        self
    }

    pub fn with_advert_ttl_secs(mut self, secs: i64) -> Self {
        self.advert_ttl_secs = secs;
        self
    }
}

/// What one publication did.
#[derive(Clone, Debug)]
pub struct PublishReport {
    pub advert: EndpointAdvert,
    /// Bytes of the advert (the BEP44 item's value).
    pub advert_len: usize,
    /// DHT nodes that stored the mutable item.
    pub stored_at: usize,
    /// Whether the principal was announced (BEP5): only with a TCP listener to announce.
    pub announced: bool,
    pub duration: Duration,
}

/// What a lookup under the principal found.
#[derive(Clone, Debug, Default)]
pub struct DhtResolution {
    /// Live, verified adverts of the principal (cached or fetched), newest first.
    pub adverts: Vec<EndpointAdvert>,
    /// BEP5 hints (`ip:port`), to be dialed with expect = the principal.
    pub hints: Vec<Locator>,
    /// Records found and refused, with why.
    pub rejected: Vec<Error>,
}

impl DhtResolution {
    /// Verified locators first (each advert's, in its order), then the hints.
    pub fn locators(&self) -> Vec<Locator> {
        let mut out: Vec<Locator> = Vec::new();
        for l in self
            .adverts
            .iter()
            .flat_map(|a| a.locators.iter())
            .chain(self.hints.iter())
        {
            if !out.contains(l) {
                out.push(l.clone());
            }
        }
        out
    }
}

/// What [`DhtDiscovery::lookup_advert`] found under one node key.
#[derive(Clone, Debug, Default)]
pub struct AdvertLookup {
    /// The freshest live advert now held for the key (fetched now or held before).
    pub advert: Option<EndpointAdvert>,
    /// Whether the DHT had a fresher valid advert than the one held (now stored).
    pub fetched: bool,
    /// Records under the key that were refused, with why (tampered, expired, wrong key,
    /// attestation, stale seq).
    pub rejected: Vec<Error>,
}

/// The Mainline DHT module: a DHT node of its own, the durable advert cache, the lookups.
pub struct DhtDiscovery {
    lookups: Lookups,
    config: DhtConfig,
    /// The seq of the last advert this node published.
    last_seq: Mutex<u64>,
    /// One publication at a time: mainline refuses a put racing another under the same
    /// key ("conflict risk"), and each must read the latest seq first.
    publishing: tokio::sync::Mutex<()>,
    local_addr: std::net::SocketAddrV4,
}

/// What the lookups need, and nothing else: cheap to clone into the tasks that go on after
/// a call returns (the rest of a query after its first answer, [`DhtDiscovery::learn`]).
#[derive(Clone)]
struct Lookups {
    dht: AsyncDht,
    cache: Arc<AdvertCache>,
    networks: NetworkFilter,
    timeout: Duration,
    grace: Option<Duration>,
    max_hints: usize,
    /// When each node key was last looked up by [`DhtDiscovery::learn`].
    refreshed: Arc<RefreshMarks>,
}

/// Node keys [`RefreshMarks`] remembers: a bound on its memory, not a limit on lookups (a
/// full table stops rate-limiting new keys until its marks expire).
const MAX_REFRESH_MARKS: usize = 4096;

/// At most one background lookup per node key per interval ([`DhtConfig::refresh_every`]).
struct RefreshMarks {
    every: Duration,
    marks: Mutex<HashMap<[u8; 32], Instant>>,
}

impl RefreshMarks {
    fn new(every: Duration) -> Self {
        RefreshMarks {
            every,
            marks: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` may be looked up at `now` (and marks it so).
    fn allow(&self, key: [u8; 32], now: Instant) -> bool {
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        let recent = |at: &Instant| now.saturating_duration_since(*at) < self.every;
        if marks.get(&key).is_some_and(recent) {
            return false;
        }
        if marks.len() >= MAX_REFRESH_MARKS {
            marks.retain(|_, at| recent(at));
        }
        if marks.len() < MAX_REFRESH_MARKS {
            marks.insert(key, now);
        }
        true
    }
}

/// How long a lookup waits: the whole query, or until a grace period after its first
/// usable answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    Whole,
    FirstAnswer,
}

impl std::fmt::Debug for DhtDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtDiscovery")
            .field("local_addr", &self.local_addr())
            .field("cache", self.cache())
            .finish()
    }
}

fn dht_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Unspecified, format!("dht {what}: {e}"))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorCode::Internal, format!("blocking task: {e}")))
}

impl DhtDiscovery {
    /// Starts a DHT node (binds its UDP socket, spawns mainline's actor thread) and opens
    /// the advert cache; both off the async workers.
    pub async fn start(config: DhtConfig, networks: NetworkFilter) -> Result<Arc<Self>, Error> {
        let cfg = config.clone();
        let (dht, cache) = blocking(move || {
            let mut b = Dht::builder();
            if let Some(nodes) = &cfg.bootstrap {
                b.bootstrap(nodes);
            }
            if let Some(a) = cfg.bind_address {
                b.bind_address(a);
            }
            if let Some(p) = cfg.port {
                b.port(p);
            }
            if cfg.server_mode {
                b.server_mode();
            }
            let dht = b.build().map_err(|e| dht_error("start", e))?;
            let cache = match &cfg.cache_path {
                Some(p) => AdvertCache::open(p, networks),
                None => AdvertCache::in_memory(networks),
            };
            Ok::<_, Error>((dht, cache))
        })
        .await??;
        let dht = dht.as_async();
        let local_addr = dht.info().await.local_addr();
        Ok(Arc::new(DhtDiscovery {
            lookups: Lookups {
                dht,
                cache: Arc::new(cache),
                networks,
                timeout: config.lookup_timeout,
                grace: config.first_answer_grace,
                max_hints: config.max_hints,
                refreshed: Arc::new(RefreshMarks::new(config.refresh_every)),
            },
            config,
            last_seq: Mutex::new(0),
            publishing: tokio::sync::Mutex::new(()),
            local_addr,
        }))
    }

    /// The durable cache of verified adverts this module fills.
    pub fn cache(&self) -> &Arc<AdvertCache> {
        &self.lookups.cache
    }

    pub fn config(&self) -> &DhtConfig {
        &self.config
    }

    /// mainline's async handle (info, raw queries).
    pub fn dht(&self) -> &AsyncDht {
        &self.lookups.dht
    }

    /// The DHT node's UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.local_addr)
    }

    /// Waits until the node has joined (its routing table has nodes), at most `within`.
    pub async fn bootstrapped(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.dht().bootstrapped())
            .await
            .unwrap_or(false)
    }

    /// Issues and publishes this node's advert: a BEP44 mutable item under the node key,
    /// then a BEP5 announce of the principal with the first TCP listener's port. The seq
    /// is above every seq this node published, holds in its cache or finds under its key
    /// in the DHT (read first, as mainline advises against lost updates), and at least the
    /// current unix time, so it keeps growing across restarts without a counter of its own.
    pub async fn publish(
        &self,
        node_key: &NodeKey,
        attestation: &[u8],
        locators: &[Locator],
    ) -> Result<PublishReport, Error> {
        let t0 = Instant::now();
        let _one_at_a_time = self.publishing.lock().await;
        let now = crate::unix_now();
        let cached = self.cache().get(&node_key.public()).map_or(0, |a| a.seq);
        // The latest item under the key, whoever put it (an earlier run of this node
        // without its cache, a test): BEP44 nodes refuse a put at or below it.
        let latest = tokio::time::timeout(
            self.config.lookup_timeout,
            self.dht()
                .get_mutable_most_recent(&node_key.public(), Some(ADVERT_SALT)),
        )
        .await
        .ok()
        .flatten()
        .map_or(0, |item| item.seq().max(0) as u64);
        let seq = {
            let mut last = self.last_seq.lock().unwrap();
            let seq = (*last)
                .max(cached)
                .max(latest)
                .saturating_add(1)
                .max(now.max(0) as u64);
            *last = seq;
            seq
        };
        let advert = EndpointAdvert::issue(
            node_key,
            attestation,
            locators,
            seq,
            now,
            self.config.advert_ttl_secs,
        )?;
        let bytes = advert.encode();
        let item = MutableItem::new(
            mainline::SigningKey::from_bytes(&node_key.seed()),
            &bytes,
            seq as i64,
            Some(ADVERT_SALT),
        );
        let put = self
            .dht()
            .put_mutable(item, None)
            .await
            .map_err(|e| dht_error("put of the advert", e))?;
        let stored_at = put.stored_at as usize;
        // Our own advert goes into our cache too (so a restart publishes a higher seq).
        let cache = self.cache().clone();
        let own = advert.clone();
        let _ = blocking(move || cache.insert_verified(own)).await;
        // The first TCP listener's port, even one bound to 0.0.0.0 (left out of the
        // advert): DHT nodes pair it with the source address they see.
        let port = locators
            .iter()
            .find(|l| *l.scheme() == Scheme::Tcp)
            .map(Locator::port);
        let announced = match port {
            Some(port) => {
                let hash = mainline::Id::from_bytes(principal_info_hash(advert.principal()))
                    .map_err(|e| dht_error("info-hash", e))?;
                self.dht()
                    .announce_peer(hash, Some(port))
                    .await
                    .map_err(|e| dht_error("announce", e))?;
                true
            }
            None => false,
        };
        Ok(PublishReport {
            advert_len: bytes.len(),
            advert,
            stored_at,
            announced,
            duration: t0.elapsed(),
        })
    }

    /// Fetches the advert items stored under `node_key` (every answer within the lookup
    /// timeout), verifies each (under that key, attesting `principal` when given), keeps
    /// the freshest valid one in the cache if it is fresher than the held one, and
    /// reports what it found and refused. An answer at or below the held seq is refused
    /// with ADV_STALE_SEQ; the held advert then stands.
    pub async fn lookup_advert(
        &self,
        node_key: &[u8; 32],
        principal: Option<&Principal>,
    ) -> Result<AdvertLookup, Error> {
        self.lookups.advert(node_key, principal, Wait::Whole).await
    }

    /// The BEP5 hints for `principal`: `ip:port` of whoever announced under its info-hash
    /// (every answer within the lookup timeout).
    pub async fn lookup_hints(&self, principal: &Principal) -> Result<Vec<Locator>, Error> {
        self.lookups.hints(principal, Wait::Whole).await
    }

    /// Everything the DHT says about `principal`: the adverts of every node key known for
    /// it (cached ones refreshed from the DHT), and the BEP5 hints when no advert is live.
    /// Each lookup returns [`DhtConfig::first_answer_grace`] after its first usable answer;
    /// a key whose held advert is live is refreshed in the background.
    pub async fn resolve_detailed(&self, principal: &Principal) -> Result<DhtResolution, Error> {
        let l = &self.lookups;
        let mut res = DhtResolution::default();
        let now = crate::unix_now();
        for key in l.cache.node_keys(principal).into_iter().take(4) {
            if l.cache.get(&key).is_some_and(|a| a.is_live(now)) {
                // A live advert answers now; a fresher one, if the DHT has it, is for the
                // next resolve (no answer above the held seq ends the wait early).
                self.learn(key, principal.clone());
                continue;
            }
            let found = l.advert(&key, Some(principal), Wait::FirstAnswer).await?;
            res.rejected.extend(found.rejected);
        }
        res.adverts = l.cache.for_principal(principal, crate::unix_now());
        if res.adverts.is_empty() {
            res.hints = l.hints(principal, Wait::FirstAnswer).await?;
        }
        Ok(res)
    }

    /// Starts republishing this node's advert: at once, after every change of its
    /// locators ([`PublisherHandle::wake`]), and every `republish_every`. Ends when the
    /// source is gone or [`PublisherHandle::stop`] is called (or the handle dropped).
    pub(crate) fn start_publisher(
        self: &Arc<Self>,
        source: Arc<dyn AdvertSource>,
    ) -> PublisherHandle {
        let wake = Arc::new(tokio::sync::Notify::new());
        let me = Arc::downgrade(self);
        let every = self.config.republish_every.unwrap_or(Duration::from_secs(
            (self.config.advert_ttl_secs.max(2) / 2) as u64,
        ));
        let w = wake.clone();
        let task = tokio::spawn(async move { publish_loop(me, source, w, every).await });
        PublisherHandle { task, wake }
    }
}

/// What the publisher needs of its peer, each time it publishes (the peer implements it
/// over a weak reference: `None` once the peer is gone).
pub(crate) trait AdvertSource: Send + Sync + 'static {
    fn material(&self) -> BoxFuture<Option<AdvertMaterial>>;
}

pub(crate) struct AdvertMaterial {
    pub node_key: NodeKey,
    pub attestation: Arc<Vec<u8>>,
    pub locators: Vec<Locator>,
    pub visibility: Visibility,
}

async fn publish_loop(
    me: Weak<DhtDiscovery>,
    source: Arc<dyn AdvertSource>,
    wake: Arc<tokio::sync::Notify>,
    every: Duration,
) {
    // A failed publication (no DHT node answered yet) is retried sooner.
    let retry = Duration::from_secs(5);
    loop {
        let woken = wake.notified();
        let Some(m) = source.material().await else {
            return;
        };
        if m.visibility != Visibility::Public {
            return; // spec §10.3: never published
        }
        let Some(dht) = me.upgrade() else { return };
        let mut wait = every;
        if !m.locators.is_empty() {
            match dht.publish(&m.node_key, &m.attestation, &m.locators).await {
                Ok(r) => tracing::debug!(
                    target: "snap2p::discovery",
                    "dht: published advert seq {} ({} bytes) to {} nodes in {:?}",
                    r.advert.seq,
                    r.advert_len,
                    r.stored_at,
                    r.duration
                ),
                Err(e) => {
                    tracing::warn!(target: "snap2p::discovery", "dht publish failed: {e}");
                    wait = retry.min(every);
                }
            }
        }
        drop(dht);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = woken => {}
        }
    }
}

/// Stops the republication task when dropped or stopped.
pub struct PublisherHandle {
    task: JoinHandle<()>,
    wake: Arc<tokio::sync::Notify>,
}

impl PublisherHandle {
    /// Publishes again now (the peer's locators changed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn stop(&self) {
        self.task.abort();
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for PublisherHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[async_trait::async_trait]
impl Discovery for DhtDiscovery {
    fn name(&self) -> &str {
        NAME
    }

    /// Verified locators of the principal's live adverts, else BEP5 hints.
    async fn resolve(
        &self,
        _peer: &PeerHandle,
        principal: &Principal,
    ) -> Result<Vec<Locator>, Error> {
        let res = self.resolve_detailed(principal).await?;
        let locs = res.locators();
        if locs.is_empty() {
            return Err(match res.rejected.into_iter().next() {
                Some(e) => e,
                None => Error::new(
                    ErrorCode::NotFound,
                    format!("dht: nothing published for {principal}"),
                ),
            });
        }
        Ok(locs)
    }

    /// Dials what `resolve` found (expect = the principal); after a session authenticated
    /// from a bare hint, fetches that node key's advert in the background, so the next
    /// resolve has verified locators of every transport.
    async fn dial_principal(
        &self,
        peer: &PeerHandle,
        principal: &Principal,
        opts: DialOptions,
    ) -> Result<Connection, Error> {
        let locators = self.resolve(peer, principal).await?;
        let conn = dial_hints(peer, principal, &locators, opts).await?;
        if let Some(key) = conn.info().remote_node_key {
            if self.cache().get(&key).is_none() {
                self.learn(key, principal.clone());
            }
        }
        Ok(conn)
    }
}

impl DhtDiscovery {
    /// Fetches the advert of a node key just proven to speak for `principal` (by AUTH), or
    /// refreshes a held one, in the background.
    /// At most once per [`DhtConfig::refresh_every`] for a key.
    pub fn learn(&self, node_key: [u8; 32], principal: Principal) {
        if !self.lookups.refreshed.allow(node_key, Instant::now()) {
            return;
        }
        let lookups = self.lookups.clone();
        tokio::spawn(async move {
            match lookups
                .advert(&node_key, Some(&principal), Wait::Whole)
                .await
            {
                Ok(l) if l.advert.is_some() => {}
                other => {
                    tracing::debug!(target: "snap2p::discovery", "dht: no advert learned: {other:?}")
                }
            }
        });
    }
}

type ItemStream = mainline::async_dht::GetStream<MutableItem>;

impl Lookups {
    /// See [`DhtDiscovery::lookup_advert`]. With [`Wait::FirstAnswer`] the query goes on
    /// in the background after the grace period, and stores any fresher advert it finds.
    async fn advert(
        &self,
        node_key: &[u8; 32],
        principal: Option<&Principal>,
        wait: Wait,
    ) -> Result<AdvertLookup, Error> {
        let stream = self.dht.get_mutable(node_key, Some(ADVERT_SALT), None);
        let deadline = tokio::time::Instant::now() + self.timeout;
        let grace = if wait == Wait::FirstAnswer {
            self.grace
        } else {
            None
        };
        let (best, mut rejected, rest) = self
            .collect(stream, node_key, principal, deadline, grace)
            .await;
        let mut fetched = false;
        if let Some(ad) = best {
            let cache = self.cache.clone();
            match blocking(move || cache.insert_verified(ad)).await? {
                Ok(_) => fetched = true,
                // A concurrent lookup stored it (or a fresher one) first.
                Err(e) => rejected.push(e),
            }
        }
        if let Some(rest) = rest {
            let me = self.clone();
            let key = *node_key;
            let principal = principal.cloned();
            tokio::spawn(async move {
                let (best, _, _) = me
                    .collect(rest, &key, principal.as_ref(), deadline, None)
                    .await;
                if let Some(ad) = best {
                    let cache = me.cache.clone();
                    let _ = blocking(move || cache.insert_verified(ad)).await;
                }
            });
        }
        let now = crate::unix_now();
        let advert = self
            .cache
            .get(node_key)
            .filter(|a| a.is_live(now) && principal.is_none_or(|p| a.principal() == p));
        Ok(AdvertLookup {
            advert,
            fetched,
            rejected,
        })
    }

    /// Reads advert items from `stream` until the query ends, `deadline`, or `grace` after
    /// the first valid one: the freshest valid advert above the held seq, why the others
    /// were refused, and the stream when it was left before its end.
    async fn collect(
        &self,
        mut stream: ItemStream,
        node_key: &[u8; 32],
        principal: Option<&Principal>,
        deadline: tokio::time::Instant,
        grace: Option<Duration>,
    ) -> (Option<EndpointAdvert>, Vec<Error>, Option<ItemStream>) {
        let now = crate::unix_now();
        let held = self.cache.get(node_key).map(|a| a.seq);
        let mut best: Option<EndpointAdvert> = None;
        let mut rejected: Vec<Error> = Vec::new();
        let mut until = deadline;
        loop {
            let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx));
            let item = match tokio::time::timeout_at(until, next).await {
                Ok(Some(item)) => item,
                Ok(None) => return (best, rejected, None),
                Err(_) if until < deadline => return (best, rejected, Some(stream)),
                Err(_) => return (best, rejected, None),
            };
            match self.check(&item, node_key, principal, held, now) {
                Ok(ad) => {
                    if best.as_ref().is_none_or(|b| ad.seq > b.seq) {
                        best = Some(ad);
                    }
                    if let Some(g) = grace {
                        until = until.min(tokio::time::Instant::now() + g);
                    }
                }
                Err(e) => {
                    tracing::debug!(target: "snap2p::discovery", "dht advert refused: {e}");
                    if !rejected.contains(&e) {
                        rejected.push(e);
                    }
                }
            }
        }
    }

    /// One DHT item as an advert of `node_key` (of `principal` when given), fresher than
    /// the `held` seq.
    fn check(
        &self,
        item: &MutableItem,
        node_key: &[u8; 32],
        principal: Option<&Principal>,
        held: Option<u64>,
        now: i64,
    ) -> Result<EndpointAdvert, Error> {
        let ad = EndpointAdvert::decode_and_verify(
            item.value(),
            now,
            self.networks,
            Some(node_key),
            principal,
        )?;
        if ad.seq as i64 != item.seq() {
            return Err(Error::new(
                ErrorCode::InvalidMessage,
                format!(
                    "{}: the DHT item's seq {} is not the advert's {}",
                    AdvertReject::Malformed,
                    item.seq(),
                    ad.seq
                ),
            ));
        }
        match held {
            Some(h) if ad.seq <= h => Err(Error::new(
                ErrorCode::InvalidMessage,
                format!(
                    "{}: seq {} is not above the held seq {h}",
                    AdvertReject::StaleSeq,
                    ad.seq
                ),
            )),
            _ => Ok(ad),
        }
    }

    /// The BEP5 hints for `principal`. With [`Wait::FirstAnswer`], the answers that came
    /// within the grace period after the first non-empty one.
    async fn hints(&self, principal: &Principal, wait: Wait) -> Result<Vec<Locator>, Error> {
        let hash = mainline::Id::from_bytes(principal_info_hash(principal))
            .map_err(|e| dht_error("info-hash", e))?;
        let mut stream = self.dht.get_peers(hash);
        let mut out: Vec<Locator> = Vec::new();
        let mut until = tokio::time::Instant::now() + self.timeout;
        loop {
            let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx));
            match tokio::time::timeout_at(until, next).await {
                Ok(Some(peers)) => {
                    for p in peers {
                        let l = Locator::tcp(SocketAddr::V4(p));
                        if !out.contains(&l) && out.len() < self.max_hints {
                            out.push(l);
                        }
                    }
                    if let (Wait::FirstAnswer, Some(g), false) = (wait, self.grace, out.is_empty())
                    {
                        until = until.min(tokio::time::Instant::now() + g);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_advert_is_refreshed_at_most_once_per_interval() {
        let marks = RefreshMarks::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert!(marks.allow(a, t0));
        // Every resolve or dial of the same principal within the minute: no new query.
        for s in [0, 1, 30, 59] {
            assert!(!marks.allow(a, t0 + Duration::from_secs(s)), "{s} s");
        }
        // Another key is not held back by it.
        assert!(marks.allow(b, t0 + Duration::from_secs(1)));
        // After the interval, once more.
        assert!(marks.allow(a, t0 + Duration::from_secs(60)));
        assert!(!marks.allow(a, t0 + Duration::from_secs(61)));
    }

    #[test]
    fn the_marks_stay_bounded_and_expire() {
        let marks = RefreshMarks::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let key = |i: usize| {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64).to_le_bytes());
            k
        };
        for i in 0..MAX_REFRESH_MARKS + 100 {
            assert!(marks.allow(key(i), t0));
        }
        assert_eq!(marks.marks.lock().unwrap().len(), MAX_REFRESH_MARKS);
        // A full table still lets new keys through (unmarked), and expired marks make room.
        let later = t0 + Duration::from_secs(61);
        assert!(marks.allow(key(MAX_REFRESH_MARKS + 200), later));
        assert_eq!(marks.marks.lock().unwrap().len(), 1);
        assert!(!marks.allow(key(MAX_REFRESH_MARKS + 200), later));
    }
}
