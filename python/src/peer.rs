//! `Peer`: create, listen, dial, accept; invites, allowlist and alias.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use snap2p::policy::parse_invite_token;
use snap2p::transport::{WsConfig, WsTransport};
use snap2p::{DialOptions, LocalWallet as CoreWallet, PeerConfig, WalletSigner};

use crate::bridge::{aio, future_into_py};
use crate::discovery::{resolver_options, ResolveReport};
use crate::error::{invalid, to_py};
use crate::events::{EventSubscription, PeerStats};
use crate::identity::{parse_network, parse_principal_any, AliasCard, LocalWallet};
use crate::relay::{relay_config, RelayStats, ReservationInfo};
use crate::session::{subscribe, wrap_connection, Connection, Subscription};
use crate::signer::host_signer;

/// An invite token of a stealth (or any) listener. ``token`` (hex) is what a dialer passes
/// as ``invite=``; it is only known at creation: ``list_invites`` shows ``token=None``.
#[pyclass(frozen, get_all, module = "snap2p")]
pub struct Invite {
    token: Option<String>,
    /// First 8 hex characters of SHA-256(token): how list/revoke name it.
    id: String,
    created_at: i64,
    expires_at: i64,
    one_time: bool,
    uses: u64,
}

impl From<snap2p::Invite> for Invite {
    fn from(i: snap2p::Invite) -> Self {
        Invite {
            token: (!i.token.is_empty()).then(|| i.token_hex()),
            id: i.id,
            created_at: i.created_at,
            expires_at: i.expires_at,
            one_time: i.one_time,
            uses: i.uses,
        }
    }
}

#[pymethods]
impl Invite {
    fn __repr__(&self) -> String {
        format!(
            "Invite(id={:?}, expires_at={}, one_time={}, uses={})",
            self.id, self.expires_at, self.one_time, self.uses
        )
    }
}

fn invite_bytes(invite: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = invite.extract::<String>() {
        return parse_invite_token(&s).map_err(to_py);
    }
    if let Ok(b) = invite.extract::<&[u8]>() {
        return Ok(b.to_vec());
    }
    Err(invalid("invite must be a hex string or bytes"))
}

/// A snap2p node: one Stacks principal, one node key, any number of sessions.
///
/// Create it with ``await Peer.create(...)``; ``async with`` closes it on exit.
#[pyclass(frozen, module = "snap2p")]
pub struct Peer {
    inner: snap2p::Peer,
    /// Connections taken from the core by an ``accept`` whose caller may have gone (a
    /// timeout, a cancelled task): kept here for the next one instead of being lost.
    inbound: Inbound,
}

/// The WebSocket transport and its TLS files a ``wss://`` listener or dialer needs.
struct TlsFiles {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    root: Option<PathBuf>,
}

impl TlsFiles {
    /// The core's WebSocket transport with these files, as ``snap2p listen --tls-cert
    /// --tls-key --tls-root`` builds it; None: the built-in one. Reads the files (run
    /// without the GIL).
    fn transport(self) -> Result<Option<Arc<WsTransport>>, snap2p::Error> {
        let roots: Vec<&std::path::Path> = self.root.iter().map(|p| p.as_path()).collect();
        let cfg = WsConfig::from_pem_files(self.cert.as_deref(), self.key.as_deref(), &roots)?;
        Ok(cfg.map(WsTransport::new).transpose()?.map(Arc::new))
    }
}

pub(crate) type Inbound = Arc<std::sync::Mutex<std::collections::VecDeque<snap2p::Connection>>>;

/// The next inbound connection: a stashed one first, else the core's accept queue.
pub(crate) async fn next_inbound(
    peer: &snap2p::Peer,
    inbound: &Inbound,
) -> Option<snap2p::Connection> {
    let stashed = inbound.lock().unwrap().pop_front();
    match stashed {
        Some(c) => Some(c),
        None => peer.accept().await,
    }
}

#[pymethods]
impl Peer {
    /// Creates a peer.
    ///
    /// - ``visibility``: ``'public'`` (default), ``'private'`` (allowlist after auth) or
    ///   ``'stealth'`` (silent unless the dialer KNOCKs with a valid invite, then allowlist);
    /// - ``allowlist``: principals let in by private/stealth peers;
    /// - ``alias``: ``'name'`` or ``('name', 'Display Name')``, published as an AliasCard;
    /// - ``signer``: a host signer (``principal`` + ``sign(request)``, plain or async), or
    ///   ``wallet``: a ``LocalWallet``; neither: a fresh throw-away wallet on ``network``;
    /// - ``px1``: peer exchange (default: on for public peers);
    /// - ``allowlist_gate``: enforce the allowlist after auth (default: private and
    ///   stealth); ``False`` makes an invite-only stealth peer;
    /// - ``rekey_after_bytes``, ``rekey_after_frames``, ``rekey_interval`` (seconds): when a
    ///   sending key is replaced (capability ``rekey``; 0 switches a trigger off; defaults
    ///   2**30 bytes, 100,000 frames, 3600 s);
    /// - ``tls_cert_file`` and ``tls_key_file``: the PEM certificate chain and key a
    ///   ``wss://`` listener presents; ``tls_root_file``: a PEM file of roots trusted,
    ///   besides Mozilla's, when dialing ``wss://``;
    /// - ``external_locators``: locators others reach this peer on that are not its
    ///   listeners' own (a ``wss://`` name served by a reverse proxy, a forwarded port),
    ///   advertised by PX-1 before the listeners' locators;
    /// - ``relay``: serve as a relay for peers behind NAT (RELAY-1, docs/PROTOCOL.md §32):
    ///   ``True`` (the core's limits) or a dict of ``allowlist`` (principals that may
    ///   reserve; default any), ``max_reservations``, ``max_circuits``,
    ///   ``max_circuits_per_peer``, ``circuit_max_bytes`` (0: no limit),
    ///   ``circuit_max_duration`` (seconds), ``requests_per_min`` (0: no limit). Using
    ///   relays (``listen('relay://host:port')``, dialing ``'relay://host:port/SP…'``)
    ///   needs no option;
    /// - ``resolver``: the resolver chain of ``resolve`` and its discovery modules
    ///   (docs/PROTOCOL.md §35.5), a dict of ``steps`` (in order, from ``'cache'``,
    ///   ``'px-1'``, ``'mdns'``, ``'dht'``, ``'bns'``; default all five), ``timeouts``
    ///   (``{step: seconds}``), ``dht`` (join the Mainline DHT), ``dht_bootstrap``
    ///   (``['host:port', …]``; implies ``dht``), ``dht_publish``, ``advert_cache_file``,
    ///   ``mdns`` (the LAN), ``bns_providers`` (Stacks API base URLs for BNS names,
    ///   cross-checked);
    /// - ``compat``: ``'ts'`` speaks the TypeScript SNaP2P implementation's wire for
    ///   ``listen`` and ``dial`` (docs/PROTOCOL.md §12; a listener speaks one profile);
    ///   ``'standard'`` (default);
    /// - ``hs2``: the two-round-trip handshake (docs/PROTOCOL.md §5.8; default ``True``):
    ///   dials offer it and listeners accept an offer; a listener that closes silently on
    ///   the offer (a v1 node) is dialed again at once with v1. ``False``: v1 only.
    #[staticmethod]
    #[pyo3(signature = (
        *, visibility = "public", allowlist = None, alias = None, signer = None,
        wallet = None, network = "mainnet", px1 = None, allowlist_gate = None,
        rekey_after_bytes = None, rekey_after_frames = None, rekey_interval = None,
        tls_cert_file = None, tls_key_file = None, tls_root_file = None,
        external_locators = None, relay = None, compat = None, resolver = None, hs2 = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn create<'py>(
        py: Python<'py>,
        visibility: &str,
        allowlist: Option<Vec<String>>,
        alias: Option<Bound<'py, PyAny>>,
        signer: Option<Bound<'py, PyAny>>,
        wallet: Option<PyRef<'py, LocalWallet>>,
        network: &str,
        px1: Option<bool>,
        allowlist_gate: Option<bool>,
        rekey_after_bytes: Option<u64>,
        rekey_after_frames: Option<u64>,
        rekey_interval: Option<f64>,
        tls_cert_file: Option<PathBuf>,
        tls_key_file: Option<PathBuf>,
        tls_root_file: Option<PathBuf>,
        external_locators: Option<Vec<String>>,
        relay: Option<Bound<'py, PyAny>>,
        compat: Option<&str>,
        resolver: Option<Bound<'py, PyAny>>,
        hs2: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut config = PeerConfig::default()
            .with_visibility(snap2p::host::parse_visibility(visibility).map_err(to_py)?);
        if let Some(p) = compat {
            config.profile = snap2p::host::parse_profile(p).map_err(to_py)?;
        }
        for p in allowlist.unwrap_or_default() {
            config.allowlist.push(parse_principal_any(&p)?);
        }
        config.alias = match alias {
            None => None,
            Some(a) if a.is_instance_of::<PyTuple>() => Some(a.extract::<(String, String)>()?),
            Some(a) => {
                let name: String = a
                    .extract()
                    .map_err(|_| invalid("alias must be a str or (alias, display_name)"))?;
                Some((name.clone(), name))
            }
        };
        config.relay = relay_config(relay.as_ref())?;
        let resolver = resolver_options(resolver.as_ref())?;
        resolver.configure(&mut config).map_err(to_py)?;
        config.px1 = px1;
        config.allowlist_gate = allowlist_gate;
        if let Some(on) = hs2 {
            config.hs2 = on;
        }
        for l in external_locators.unwrap_or_default() {
            config.external_locators.push(l.parse().map_err(to_py)?);
        }
        if let Some(b) = rekey_after_bytes {
            config.limits.rekey_after_bytes = b;
        }
        if let Some(f) = rekey_after_frames {
            config.limits.rekey_after_frames = f;
        }
        if let Some(secs) = rekey_interval {
            config.limits.rekey_interval = match Duration::try_from_secs_f64(secs) {
                Ok(d) if d.is_zero() => None,
                Ok(d) => Some(d),
                Err(_) => return Err(invalid("rekey_interval must be a non-negative number")),
            };
        }
        let tls = TlsFiles {
            cert: tls_cert_file,
            key: tls_key_file,
            root: tls_root_file,
        };
        let signer: Arc<dyn WalletSigner> = match (signer, wallet) {
            (Some(_), Some(_)) => return Err(invalid("pass either signer or wallet, not both")),
            (Some(s), None) => host_signer(py, &s)?,
            (None, Some(w)) => Arc::new(w.inner.clone()),
            (None, None) => Arc::new(CoreWallet::generate(parse_network(network)?)),
        };
        future_into_py(py, async move {
            let mut builder = snap2p::Peer::builder(config).signer(signer);
            if let Some(ws) = tls.transport().map_err(to_py)? {
                builder = builder.transport(ws);
            }
            builder = resolver.attach(builder).map_err(to_py)?;
            let inner = builder.build().await.map_err(to_py)?;
            Ok(Peer {
                inner,
                inbound: Inbound::default(),
            })
        })
    }

    /// ``stacks:SP…``
    #[getter]
    fn principal(&self) -> String {
        self.inner.principal().to_string()
    }

    /// The Ed25519 node key (32 bytes) this peer's attestation vouches for.
    #[getter]
    fn node_public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.node_public_key())
    }

    #[getter]
    fn visibility(&self) -> &'static str {
        self.inner.visibility().name()
    }

    /// Listens on ``addr``: a port (all IPv4 interfaces), ``'ip:port'``, ``'[ipv6]:port'``,
    /// or a locator of another transport (``'ws://127.0.0.1:0/p'``, ``'wss://0.0.0.0:443/p'``
    /// with ``tls_cert_file``; ``'relay://host:port'`` keeps a reservation on that relay,
    /// reachable as ``'relay://host:port/SP…'``); port 0 picks a free one. Returns the bound ``'ip:port'``
    /// (``listen_locators`` has the full locators).
    fn listen<'py>(
        &self,
        py: Python<'py>,
        addr: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let addr = match addr.extract::<u16>() {
            Ok(port) => port.to_string(),
            Err(_) => addr
                .extract::<String>()
                .map_err(|_| invalid("listen() takes a port or an 'ip:port' string"))?,
        };
        let peer = self.inner.clone();
        future_into_py(py, async move {
            let bound = peer.listen(&addr).await.map_err(to_py)?;
            Ok(bound.to_string())
        })
    }

    #[getter]
    fn listen_addrs(&self) -> Vec<String> {
        self.inner
            .listen_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect()
    }

    /// Every listener as a dialable locator of its transport (``'127.0.0.1:9000'``,
    /// ``'ws://127.0.0.1:8080/p'``, ``'wss://0.0.0.0:443/p'``: unspecified IPs as bound).
    #[getter]
    fn listen_locators(&self) -> Vec<String> {
        self.inner
            .listen_locators()
            .iter()
            .map(|l| l.to_string())
            .collect()
    }

    /// Where others reach this peer, as PX-1 advertises it: ``external_locators`` first,
    /// then every listener's locator.
    #[getter]
    fn reachable_locators(&self) -> Vec<String> {
        self.inner
            .reachable_locators()
            .iter()
            .map(|l| l.to_string())
            .collect()
    }

    /// Subscribes to this peer's events (docs/EVENTS.md): ``async for event in
    /// peer.events()``. Each call is a subscription of its own.
    fn events(&self) -> EventSubscription {
        EventSubscription::new(self.inner.events())
    }

    /// This peer's counters now (docs/EVENTS.md, "Counters").
    fn stats(&self, py: Python<'_>) -> PeerStats {
        py.detach(|| self.inner.stats()).into()
    }

    /// Dials ``'ip:port'`` / ``'host:port'``, ``'relay://host:port/SP…'`` (through that
    /// relay), or a principal ``'stacks:SP…'`` (found through PX-1). ``invite``: token (hex or bytes) for a stealth listener; ``expect``: fail
    /// unless the peer authenticates as this principal.
    #[pyo3(signature = (target, *, invite = None, expect = None))]
    fn dial<'py>(
        &self,
        py: Python<'py>,
        target: String,
        invite: Option<Bound<'py, PyAny>>,
        expect: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut opts = DialOptions::default();
        opts.invite = invite.as_ref().map(invite_bytes).transpose()?;
        opts.expect = expect.as_deref().map(parse_principal_any).transpose()?;
        let peer = self.inner.clone();
        future_into_py(py, async move {
            let conn = peer.dial_with(&target, opts).await.map_err(to_py)?;
            Ok(Connection { inner: conn })
        })
    }

    /// Where a principal (``stacks:SP…`` or a bare address) or a BNS name (``alice.btc``,
    /// with ``resolver={'bns_providers': […]}``) can be reached, by the resolver chain: a
    /// ``ResolveReport`` (the answering step, each locator ``verified`` or a hint, every
    /// step's outcome and duration). Raises ``Snap2pError`` with the core's code when
    /// nothing answered (``NOT_FOUND``, the last step's error) or the name did not resolve
    /// (``PROVIDERS_DISAGREE``, …). Dials nobody.
    fn resolve<'py>(&self, py: Python<'py>, target: String) -> PyResult<Bound<'py, PyAny>> {
        let peer = self.inner.clone();
        future_into_py(py, async move {
            let report = peer.resolve_target(&target).await.map_err(to_py)?;
            Ok(ResolveReport::from(snap2p::host::ResolveInfo::from(
                &report,
            )))
        })
    }

    /// The reservations this peer keeps on relays (``await listen('relay://host:port')``).
    fn relay_reservations(&self, py: Python<'_>) -> Vec<ReservationInfo> {
        py.detach(|| self.inner.relay().reservations())
            .into_iter()
            .map(ReservationInfo::from)
            .collect()
    }

    /// What this peer serves as a relay now (all 0 unless created with ``relay=``).
    fn relay_stats(&self, py: Python<'_>) -> RelayStats {
        py.detach(|| self.inner.relay().stats()).into()
    }

    /// Replaces the relayed session ``conn`` by a direct one (TCP simultaneous open,
    /// docs/PROTOCOL.md §32.6): returns the new session (``stats().transport`` is
    /// ``'punch'``); ``conn`` stays open. Raises when no direct path was found: keep using
    /// ``conn``.
    fn hole_punch<'py>(
        &self,
        py: Python<'py>,
        conn: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let conn = conn
            .cast::<Connection>()
            .map_err(|_| invalid("hole_punch() takes a Connection"))?;
        let (peer, relayed) = (self.inner.clone(), conn.get().inner.clone());
        future_into_py(py, async move {
            let direct = peer.hole_punch(&relayed).await.map_err(to_py)?;
            Ok(Connection { inner: direct })
        })
    }

    /// The next authenticated inbound connection; ``None`` once the peer is closed.
    /// Cancelling it (``asyncio.wait_for``, ``task.cancel()``) never loses a connection.
    fn accept<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        aio(slf.py())?.getattr("accept")?.call1((slf,))
    }

    /// Takes a stashed inbound connection, if any. Internal (used by ``accept``).
    fn _take_inbound(&self) -> Option<Connection> {
        let c = self.inbound.lock().unwrap().pop_front();
        c.map(|inner| Connection { inner })
    }

    /// Waits for the core's next inbound connection and stashes it; ``False`` once the
    /// peer is closed. Internal.
    fn _fill_inbound<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (peer, inbound) = (self.inner.clone(), self.inbound.clone());
        future_into_py(py, async move {
            // No await between taking the connection and stashing it: a cancelled call is
            // dropped either before it took one or after it is stashed.
            Ok(match peer.accept().await {
                Some(c) => {
                    inbound.lock().unwrap().push_back(c);
                    true
                }
                None => false,
            })
        })
    }

    /// ``async for conn in peer.connections()``: inbound connections until the peer closes.
    fn connections(slf: &Bound<'_, Self>) -> ConnectionIterator {
        ConnectionIterator {
            peer: slf.clone().unbind(),
        }
    }

    /// Calls ``callback(conn)`` (plain or ``async def``) on this event loop for each inbound
    /// connection. Returns the ``Subscription`` that stops it.
    fn on_connection(&self, py: Python<'_>, callback: Bound<'_, PyAny>) -> PyResult<Subscription> {
        let (peer, inbound) = (self.inner.clone(), self.inbound.clone());
        subscribe(
            py,
            callback,
            move || {
                let (peer, inbound) = (peer.clone(), inbound.clone());
                async move { next_inbound(&peer, &inbound).await }
            },
            wrap_connection,
        )
    }

    /// Live sessions, both directions.
    fn open_connections(&self, py: Python<'_>) -> Vec<Connection> {
        py.detach(|| self.inner.connections())
            .into_iter()
            .map(|inner| Connection { inner })
            .collect()
    }

    /// Creates an invite token (``ttl`` seconds, default 24 h; ``one_time``: valid once).
    #[pyo3(signature = (ttl = None, one_time = false))]
    fn create_invite(&self, py: Python<'_>, ttl: Option<i64>, one_time: bool) -> PyResult<Invite> {
        py.detach(|| self.inner.create_invite(ttl, one_time))
            .map(Invite::from)
            .map_err(to_py)
    }

    /// Current invites (tokens not shown).
    fn list_invites(&self, py: Python<'_>) -> Vec<Invite> {
        py.detach(|| self.inner.list_invites())
            .into_iter()
            .map(|mut i| {
                i.token.clear();
                Invite::from(i)
            })
            .collect()
    }

    /// Revokes by token (hex) or id; returns whether one was found.
    fn revoke_invite(&self, py: Python<'_>, token_or_id: &str) -> bool {
        py.detach(|| self.inner.revoke_invite(token_or_id))
    }

    /// Lets ``principal`` in (private and stealth peers).
    fn allow(&self, py: Python<'_>, principal: &str) -> PyResult<()> {
        let p = parse_principal_any(principal)?;
        py.detach(|| self.inner.allow(p));
        Ok(())
    }

    fn disallow(&self, py: Python<'_>, principal: &str) -> PyResult<()> {
        let p = parse_principal_any(principal)?;
        py.detach(|| self.inner.disallow(&p));
        Ok(())
    }

    /// Replaces the permission rules (docs/PROTOCOL.md §33): one
    /// ``PRINCIPAL:LABEL[,LABEL] [streams=N] [rate=B]`` per line; ``None``: no rules.
    #[pyo3(signature = (rules))]
    fn set_permissions(&self, py: Python<'_>, rules: Option<&str>) -> PyResult<()> {
        let rules = rules
            .map(snap2p::policy::PermissionRules::parse)
            .transpose()
            .map_err(to_py)?;
        py.detach(|| self.inner.permissions().set_rules(rules));
        Ok(())
    }

    /// Also honours PermissionGrants signed by ``principal``.
    fn add_grant_owner(&self, py: Python<'_>, principal: &str) -> PyResult<()> {
        let p = parse_principal_any(principal)?;
        py.detach(|| self.inner.permissions().add_owner(p));
        Ok(())
    }

    /// Revokes a grant by id (64 hex), or every grant of a principal.
    fn revoke_grant(&self, py: Python<'_>, id_or_principal: &str) -> PyResult<()> {
        py.detach(|| self.inner.permissions().revoke(id_or_principal))
            .map_err(to_py)
    }

    #[getter]
    fn allowlist(&self, py: Python<'_>) -> Vec<String> {
        py.detach(|| self.inner.policy().allowlist.list())
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    /// Signs and publishes a new AliasCard (sent to peers from now on).
    #[pyo3(signature = (alias, display_name = None))]
    fn set_alias<'py>(
        &self,
        py: Python<'py>,
        alias: String,
        display_name: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let peer = self.inner.clone();
        let display = display_name.unwrap_or_else(|| alias.clone());
        future_into_py(py, async move {
            let card = peer.set_alias(&alias, &display).await.map_err(to_py)?;
            Ok(AliasCard::from(card))
        })
    }

    /// Our current AliasCard, if one is set and unexpired.
    #[getter]
    fn alias(&self, py: Python<'_>) -> Option<AliasCard> {
        py.detach(|| self.inner.alias()).map(AliasCard::from)
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Stops listening and closes every session.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let peer = self.inner.clone();
        future_into_py(py, async move {
            peer.close().await;
            Ok(())
        })
    }

    fn __aenter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, PyAny>> {
        let py = slf.py();
        let this = slf.unbind();
        future_into_py(py, async move { Ok(this) })
    }

    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc_type: Option<Bound<'py, PyAny>>,
        _exc: Option<Bound<'py, PyAny>>,
        _tb: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.close(py)
    }

    fn __repr__(&self) -> String {
        format!(
            "Peer(principal={:?}, visibility={:?})",
            self.inner.principal().to_string(),
            self.inner.visibility().name()
        )
    }
}

/// ``async for conn in peer.connections()``.
#[pyclass(frozen, module = "snap2p")]
pub struct ConnectionIterator {
    pub(crate) peer: Py<Peer>,
}

#[pymethods]
impl ConnectionIterator {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        aio(py)?
            .getattr("anext_connection")?
            .call1((self.peer.bind(py),))
    }
}
