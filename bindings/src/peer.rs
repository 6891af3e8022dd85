//! `Peer`: creation with options, listen, dial, invites, allowlist, connection callbacks.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use snap2p::policy::{parse_invite_token, DEFAULT_INVITE_TTL_SECS};
use snap2p::transport::{WsConfig, WsTransport};
use snap2p::{DialOptions, ErrorCode, PeerConfig};

use crate::discovery::{ResolveReport, ResolverOptions};
use crate::error::{Result, Snap2pError};
use crate::events::{EventSubscription, PeerStats};
use crate::identity::{parse_principal_arg, Signer};
use crate::relay::{RelayOptions, RelayStats, ReservationInfo};
use crate::rt::{ignore_sigpipe, on_runtime, Subscription};
use crate::session::{AliasInfo, Connection};

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Visibility {
    /// Anyone may connect; PX-1 on by default.
    Public,
    /// Only allowlisted principals get past authentication.
    Private,
    /// Silent unless the dialer KNOCKs with a valid invite token; allowlist enforced.
    Stealth,
}

impl From<Visibility> for snap2p::Visibility {
    fn from(v: Visibility) -> Self {
        match v {
            Visibility::Public => snap2p::Visibility::Public,
            Visibility::Private => snap2p::Visibility::Private,
            Visibility::Stealth => snap2p::Visibility::Stealth,
        }
    }
}

impl From<snap2p::Visibility> for Visibility {
    fn from(v: snap2p::Visibility) -> Self {
        match v {
            snap2p::Visibility::Public => Visibility::Public,
            snap2p::Visibility::Private => Visibility::Private,
            snap2p::Visibility::Stealth => Visibility::Stealth,
            // The core's enum may grow; a new mode needs a variant here first.
            #[allow(unreachable_patterns)]
            other => unreachable!("visibility {} has no uniffi variant", other.name()),
        }
    }
}

/// How a peer is created. Every field has a default: `PeerOptions()` is a public peer with
/// a fresh throw-away mainnet wallet.
#[derive(uniffi::Record)]
pub struct PeerOptions {
    /// Default: public.
    #[uniffi(default)]
    pub visibility: Option<Visibility>,
    /// Principals (`stacks:SP…` or `SP…`) let in by a private or stealth peer.
    #[uniffi(default)]
    pub allowlist: Vec<String>,
    /// Enforce the allowlist after auth (default: private and stealth). `false` makes an
    /// invite-only stealth peer: a valid invite is enough (PROTOCOL.md, visibility table).
    #[uniffi(default)]
    pub allowlist_gate: Option<bool>,
    /// Invite tokens (hex, 16–32 bytes) accepted from the start, valid 24 hours, reusable.
    #[uniffi(default)]
    pub invites: Vec<String>,
    /// Alias published as a signed AliasCard (needs `display_name` too, or uses the alias).
    #[uniffi(default)]
    pub alias: Option<String>,
    #[uniffi(default)]
    pub display_name: Option<String>,
    /// PX-1 peer exchange (default: on for public peers).
    #[uniffi(default)]
    pub px1: Option<bool>,
    /// The two-round-trip handshake (docs/PROTOCOL.md §5.8; default on): dials offer it,
    /// listeners accept an offer; a listener that closes silently on the offer (a v1 node)
    /// is dialed again at once with v1. `false`: v1 only.
    #[uniffi(default)]
    pub hs2: Option<bool>,
    /// Who signs the attestation and cards; default: a fresh mainnet wallet.
    #[uniffi(default)]
    pub signer: Option<Arc<Signer>>,
    /// Rekey a sending key after this many bytes sealed under it (0: no byte trigger;
    /// default 1 GiB). Capability `rekey`, docs/PROTOCOL.md §7.1.
    #[uniffi(default)]
    pub rekey_after_bytes: Option<u64>,
    /// … or after this many frames (0: no frame trigger; default 100,000).
    #[uniffi(default)]
    pub rekey_after_frames: Option<u64>,
    /// … or once the key is this old and sealed a frame (0: no time trigger; default 1 h).
    #[uniffi(default)]
    pub rekey_interval: Option<Duration>,
    /// PEM certificate chain (leaf first) a `wss://` listener presents; with `tls_key_file`.
    #[uniffi(default)]
    pub tls_cert_file: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`.
    #[uniffi(default)]
    pub tls_key_file: Option<String>,
    /// PEM file of root certificates trusted, besides Mozilla's, when dialing `wss://`.
    #[uniffi(default)]
    pub tls_root_file: Option<String>,
    /// Locators others reach this peer on that are not its listeners' own (a `wss://`
    /// name served by a reverse proxy, a forwarded port); PX-1 advertises them first.
    #[uniffi(default)]
    pub external_locators: Vec<String>,
    /// Serve as a RELAY-1 relay for others with these options (docs/PROTOCOL.md §32);
    /// absent: this peer only uses relays (`listen("relay://HOST:PORT")` to hold a
    /// reservation, `dial("relay://HOST:PORT/SP…")` to reach a peer through one).
    #[uniffi(default)]
    pub relay: Option<RelayOptions>,
    /// `"ts"`: speak the TypeScript SNaP2P implementation's wire for `listen` and `dial`
    /// (docs/PROTOCOL.md §12; a listener speaks one profile); `"standard"` or absent: the
    /// standard profile.
    #[uniffi(default)]
    pub compat: Option<String>,
    /// The resolver chain of `resolve` and the discovery modules behind its steps
    /// (docs/PROTOCOL.md §35.5); absent: the core's default chain, no DHT, mDNS or BNS.
    #[uniffi(default)]
    pub resolver: Option<ResolverOptions>,
}

/// The core's WebSocket transport with these TLS files, as `snap2p listen --tls-cert
/// --tls-key --tls-root` builds it (None: the built-in one).
fn ws_transport(options: &PeerOptions) -> Result<Option<Arc<WsTransport>>> {
    let roots: Vec<&Path> = options.tls_root_file.iter().map(Path::new).collect();
    let cfg = WsConfig::from_pem_files(
        options.tls_cert_file.as_deref().map(Path::new),
        options.tls_key_file.as_deref().map(Path::new),
        &roots,
    )?;
    Ok(cfg.map(WsTransport::new).transpose()?.map(Arc::new))
}

/// An invite token. `token` is what the dialer passes as `invite`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InviteInfo {
    /// Lowercase hex of the token.
    pub token: String,
    /// First 8 hex characters of SHA-256(token): how list and revoke name it.
    pub id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub one_time: bool,
    pub uses: u64,
}

impl From<snap2p::Invite> for InviteInfo {
    fn from(i: snap2p::Invite) -> Self {
        InviteInfo {
            token: i.token_hex(),
            id: i.id,
            created_at: i.created_at,
            expires_at: i.expires_at,
            one_time: i.one_time,
            uses: i.uses,
        }
    }
}

/// Receives authenticated inbound connections (`Peer.onConnection`). Runs on the host's
/// own executor (Kotlin coroutine, Swift task); the next connection is delivered after
/// this returns. A thrown error is ignored and delivery continues.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait ConnectionHandler: Send + Sync {
    async fn on_connection(&self, connection: Arc<Connection>) -> Result<()>;
}

/// A snap2p node: one Stacks principal, one node key, any number of connections.
/// `shutdown()` stops it; releasing the handle alone does not close live connections.
#[derive(uniffi::Object)]
pub struct Peer {
    inner: snap2p::Peer,
}

#[uniffi::export]
impl Peer {
    /// Creates a peer (signs its NodeKeyAttestation, and AliasCard if an alias is given).
    #[uniffi::constructor]
    pub async fn create(options: PeerOptions) -> Result<Arc<Self>> {
        ignore_sigpipe();
        let ws = ws_transport(&options)?;
        let mut config = PeerConfig::default();
        if let Some(v) = options.visibility {
            config.visibility = v.into();
        }
        if let Some(p) = &options.compat {
            config.profile = snap2p::host::parse_profile(p)?;
        }
        config.allowlist = options
            .allowlist
            .iter()
            .map(|p| parse_principal_arg(p))
            .collect::<Result<_>>()?;
        config.px1 = options.px1;
        if let Some(on) = options.hs2 {
            config.hs2 = on;
        }
        config.external_locators = options
            .external_locators
            .iter()
            .map(|l| l.parse())
            .collect::<std::result::Result<_, snap2p::Error>>()?;
        if let Some(r) = &options.relay {
            config.relay = r.to_config()?;
        }
        let resolver = options.resolver.as_ref().map(ResolverOptions::to_core);
        if let Some(r) = &resolver {
            r.configure(&mut config)?;
        }
        if let Some(b) = options.rekey_after_bytes {
            config.limits.rekey_after_bytes = b;
        }
        if let Some(f) = options.rekey_after_frames {
            config.limits.rekey_after_frames = f;
        }
        if let Some(t) = options.rekey_interval {
            config.limits.rekey_interval = (!t.is_zero()).then_some(t);
        }
        config.allowlist_gate = options.allowlist_gate;
        config.alias = match (options.alias, options.display_name) {
            (Some(a), Some(d)) => Some((a, d)),
            (Some(a), None) => Some((a.clone(), a)),
            (None, Some(_)) => {
                return Err(Snap2pError::new(
                    ErrorCode::InvalidArgument,
                    "display_name needs an alias",
                ))
            }
            (None, None) => None,
        };
        let invites = options
            .invites
            .iter()
            .map(|t| parse_invite_token(t))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let signer = options.signer.map(|s| s.inner.clone());
        let inner = on_runtime(async move {
            let mut builder = snap2p::Peer::builder(config);
            if let Some(s) = signer {
                builder = builder.signer(s);
            }
            if let Some(ws) = ws {
                builder = builder.transport(ws);
            }
            if let Some(r) = &resolver {
                builder = r.attach(builder)?;
            }
            let peer = builder.build().await?;
            let now = snap2p::unix_now();
            for token in invites {
                peer.policy()
                    .invites
                    .add(token, now + DEFAULT_INVITE_TTL_SECS, false, now)?;
            }
            Ok(peer)
        })
        .await?;
        Ok(Arc::new(Peer { inner }))
    }

    /// `stacks:SP…`
    pub fn principal(&self) -> String {
        self.inner.principal().to_string()
    }

    /// The Ed25519 node key (32 bytes).
    pub fn node_public_key(&self) -> Vec<u8> {
        self.inner.node_public_key().to_vec()
    }

    pub fn visibility(&self) -> Visibility {
        self.inner.visibility().into()
    }

    /// Listens on `"127.0.0.1:0"`, `"9000"`, `"[::]:9000"`, `"ws://127.0.0.1:0/path"`,
    /// `"wss://0.0.0.0:443/path"` (needs `tls_cert_file`)…; returns the bound `ip:port`
    /// (`listen_locators()` gives the full locators). `"relay://HOST:PORT"` holds a
    /// reservation on that relay (its refusal is this call's error) and adds the locator
    /// `relay://HOST:PORT/SP…` others dial.
    pub async fn listen(&self, addr: String) -> Result<String> {
        let peer = self.inner.clone();
        on_runtime(async move { peer.listen(&addr).await.map(|a| a.to_string()) }).await
    }

    pub fn listen_addrs(&self) -> Vec<String> {
        self.inner
            .listen_addrs()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Every listener as a dialable locator of its transport (`127.0.0.1:9000`,
    /// `ws://127.0.0.1:8080/p`, `wss://0.0.0.0:443/p`: unspecified IPs as bound).
    pub fn listen_locators(&self) -> Vec<String> {
        self.inner
            .listen_locators()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Where others reach this peer, as PX-1 advertises it: `external_locators` first, then
    /// every listener's locator.
    pub fn reachable_locators(&self) -> Vec<String> {
        self.inner
            .reachable_locators()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Subscribes to this peer's events (docs/EVENTS.md); each call is a subscription of
    /// its own, stopped by its `close()` (Kotlin: `cancel()`) or by releasing it, and ended
    /// by `shutdown()` once the events queued by then are read.
    pub fn events(&self) -> Arc<EventSubscription> {
        EventSubscription::new(self.inner.events())
    }

    /// This peer's counters now.
    pub fn stats(&self) -> PeerStats {
        self.inner.stats().into()
    }

    /// The reservations this peer holds on relays, one per `listen("relay://HOST:PORT")`.
    pub fn relay_reservations(&self) -> Vec<ReservationInfo> {
        self.inner
            .relay()
            .reservations()
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// This peer's relay counters now (all zero unless `PeerOptions.relay` makes it serve).
    pub fn relay_stats(&self) -> RelayStats {
        self.inner.relay().stats().into()
    }

    /// Tries to replace the relayed session `connection` (`stats().transport == "relay"`)
    /// by a direct one (TCP hole punch, docs/PROTOCOL.md §32.6) and returns it (transport
    /// `"punch"` at both ends). The relayed session stays open and its streams stay on it;
    /// open new streams on the returned one. Fails (ERR_TIMEOUT after 5 s of trying, or the
    /// other side's refusal) with `connection` untouched.
    pub async fn hole_punch(&self, connection: Arc<Connection>) -> Result<Arc<Connection>> {
        let peer = self.inner.clone();
        let conn = connection.core().clone();
        let direct = on_runtime(async move { peer.hole_punch(&conn).await }).await?;
        Ok(Connection::wrap(direct))
    }

    /// Dials a locator (`ip:port`, `host:port`, `relay://HOST:PORT/SP…` through a relay)
    /// or a principal (`stacks:SP…`, PX-1).
    /// `invite`: hex token for a stealth peer; `expect`: fail with
    /// ERR_PRINCIPAL_MISMATCH unless the peer is this principal.
    #[uniffi::method(default(invite = None, expect = None))]
    pub async fn dial(
        &self,
        target: String,
        invite: Option<String>,
        expect: Option<String>,
    ) -> Result<Arc<Connection>> {
        let mut opts = DialOptions::default();
        opts.invite = invite.as_deref().map(parse_invite_token).transpose()?;
        opts.expect = expect.as_deref().map(parse_principal_arg).transpose()?;
        let peer = self.inner.clone();
        let conn = on_runtime(async move { peer.dial_with(&target, opts).await }).await?;
        Ok(Connection::wrap(conn))
    }

    /// Where a principal (`stacks:SP…` or `SP…`) or a BNS name (`alice.btc`, with
    /// `resolver.bns_providers`) can be reached, by the resolver chain: the answering step,
    /// each locator verified or a hint, every step's outcome and duration. Throws the
    /// core's error when nothing answered (ERR_NOT_FOUND, the last step's error) or the
    /// name did not resolve (ERR_PROVIDERS_DISAGREE, …). Dials nobody.
    pub async fn resolve(&self, target: String) -> Result<ResolveReport> {
        let peer = self.inner.clone();
        let report = on_runtime(async move { peer.resolve_target(&target).await }).await?;
        Ok(snap2p::host::ResolveInfo::from(&report).into())
    }

    /// The next authenticated inbound connection; null/nil once the peer is shut down.
    pub async fn accept(&self) -> Option<Arc<Connection>> {
        // Polled in place (needs no runtime; the receive is cancel-safe): a caller that
        // gives up waiting cannot make a connection vanish between the queue and it.
        self.inner.accept().await.map(Connection::wrap)
    }

    /// Delivers each inbound connection to `handler` until the returned subscription is
    /// cancelled or the peer shuts down. Use either this or `accept()`, not both.
    pub fn on_connection(&self, handler: Arc<dyn ConnectionHandler>) -> Arc<Subscription> {
        let peer = self.inner.clone();
        Subscription::spawn(async move {
            while let Some(conn) = peer.accept().await {
                let _ = handler.on_connection(Connection::wrap(conn)).await;
            }
        })
    }

    /// Live connections, both directions.
    pub fn connections(&self) -> Vec<Arc<Connection>> {
        self.inner
            .connections()
            .into_iter()
            .map(Connection::wrap)
            .collect()
    }

    /// Creates an invite token (default validity 24 hours).
    #[uniffi::method(default(ttl_secs = None, one_time = false))]
    pub fn create_invite(&self, ttl_secs: Option<i64>, one_time: bool) -> Result<InviteInfo> {
        Ok(self.inner.create_invite(ttl_secs, one_time)?.into())
    }

    /// Revokes by hex token or id; returns whether one was removed.
    pub fn revoke_invite(&self, token_or_id: String) -> bool {
        self.inner.revoke_invite(&token_or_id)
    }

    /// Unexpired invites (tokens shown only by `create_invite`).
    pub fn list_invites(&self) -> Vec<InviteInfo> {
        self.inner
            .list_invites()
            .into_iter()
            .map(|mut i| {
                i.token.clear();
                i.into()
            })
            .collect()
    }

    /// Replaces the permission rules (docs/PROTOCOL.md §33): one
    /// `PRINCIPAL:LABEL[,LABEL] [streams=N] [rate=B]` per line; `None`: no rules.
    pub fn set_permissions(&self, rules: Option<String>) -> Result<()> {
        let rules = rules
            .map(|t| snap2p::policy::PermissionRules::parse(&t))
            .transpose()?;
        self.inner.permissions().set_rules(rules);
        Ok(())
    }

    /// Also honours PermissionGrants signed by `principal`.
    pub fn add_grant_owner(&self, principal: String) -> Result<()> {
        self.inner
            .permissions()
            .add_owner(parse_principal_arg(&principal)?);
        Ok(())
    }

    /// Revokes a grant by id (64 hex), or every grant of a principal.
    pub fn revoke_grant(&self, id_or_principal: String) -> Result<()> {
        Ok(self.inner.permissions().revoke(&id_or_principal)?)
    }

    pub fn allow(&self, principal: String) -> Result<()> {
        self.inner.allow(parse_principal_arg(&principal)?);
        Ok(())
    }

    pub fn disallow(&self, principal: String) -> Result<()> {
        self.inner.disallow(&parse_principal_arg(&principal)?);
        Ok(())
    }

    /// Signs and publishes a new AliasCard.
    pub async fn set_alias(&self, alias: String, display_name: String) -> Result<AliasInfo> {
        let peer = self.inner.clone();
        let card = on_runtime(async move { peer.set_alias(&alias, &display_name).await }).await?;
        Ok(card.into())
    }

    pub fn alias(&self) -> Option<AliasInfo> {
        self.inner.alias().map(Into::into)
    }

    /// Stops listening, closes every connection (waiting up to 2 s each for a clean close)
    /// and ends `accept`/`onConnection` and, after what they have queued, the event
    /// subscriptions.
    pub async fn shutdown(&self) {
        let peer = self.inner.clone();
        let _ = on_runtime(async move {
            peer.close().await;
            Ok(())
        })
        .await;
    }

    pub fn is_shut_down(&self) -> bool {
        self.inner.is_closed()
    }
}
