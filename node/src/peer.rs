//! `Peer`: listening, accepting, dialing, invites, allowlist and aliases.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{Buffer, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use snap2p::policy::parse_invite_token;
use snap2p::relay::{RelayAdmission, RelayConfig, RelayStats, ReservationInfo};
use snap2p::transport::{WsConfig, WsTransport};
use snap2p::{host, DialOptions, Invite, LocalWallet, Peer, PeerConfig, WalletSigner};

use crate::conn::{AliasCardJs, NativeConnection};
use crate::discovery::{ResolveReport, ResolverOptions};
use crate::error::{invalid, ResultExt};
use crate::events::{NativeEventSubscription, PeerStatsJs};
use crate::util::{on_core, parse_network, parse_principal};

/// Options of `Peer.create`. Every field is optional; the defaults are those of the core
/// (a Public peer, PX-1 on for Public peers).
#[napi(object)]
#[derive(Default)]
pub struct PeerOptions {
    /// `"public"` (default), `"private"` or `"stealth"`.
    pub visibility: Option<String>,
    /// `"ts"`: speak the TypeScript SNaP2P implementation's wire for `listen` and `dial`
    /// (docs/PROTOCOL.md §12; one port per profile); `"standard"` (default).
    pub compat: Option<String>,
    /// Principals (`stacks:…`) let in by Private and Stealth peers.
    pub allowlist: Option<Vec<String>>,
    /// Enforce the allowlist (default: Private and Stealth do).
    pub allowlist_gate: Option<bool>,
    /// Which Stacks networks remote principals may be on: `"any"` (default),
    /// `"mainnet"`, `"testnet"`.
    pub networks: Option<String>,
    /// Network of the throw-away wallet of an ephemeral peer (default `"mainnet"`).
    pub network: Option<String>,
    /// Alias published in a signed AliasCard after authentication.
    pub alias: Option<String>,
    pub display_name: Option<String>,
    /// PX-1 peer exchange (default: on for Public peers).
    pub px1: Option<bool>,
    /// The two-round-trip handshake (docs/PROTOCOL.md §5.8; default on): dials offer it,
    /// listeners accept an offer; `false`: v1 only.
    pub hs2: Option<bool>,
    pub attestation_ttl_secs: Option<i64>,
    pub preauth_rate_per_min: Option<u32>,
    pub connect_timeout_ms: Option<u32>,
    /// Rekey a sending key after this many bytes sealed under it (0: no byte trigger;
    /// default 1 GiB). Capability `rekey`, docs/PROTOCOL.md §7.1.
    pub rekey_after_bytes: Option<i64>,
    /// … or after this many frames (0: no frame trigger; default 100,000).
    pub rekey_after_frames: Option<i64>,
    /// … or once the key is this many seconds old and sealed a frame (0: no time trigger;
    /// default 3600).
    pub rekey_interval_secs: Option<f64>,
    /// PEM certificate chain (leaf first) a `wss://` listener presents; with `tlsKeyFile`.
    pub tls_cert_file: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tlsCertFile`.
    pub tls_key_file: Option<String>,
    /// PEM file of root certificates trusted, besides Mozilla's, when dialing `wss://`.
    pub tls_root_file: Option<String>,
    /// Locators others reach this peer on that are not its listeners' own (a `wss://`
    /// name served by a reverse proxy, a forwarded port); advertised first.
    pub external_locators: Option<Vec<String>>,
    /// Serve as a relay for others (RELAY-1, docs/PROTOCOL.md §32): present means serve.
    /// Using relays (`listen("relay://…")`, dialing `relay://…/SP…`) needs no option.
    pub relay: Option<RelayOptions>,
    /// The resolver chain of `resolve` and its discovery modules (docs/PROTOCOL.md §35.5).
    pub resolver: Option<ResolverOptions>,
}

/// A serving relay's admission and limits (`PeerOptions.relay`); absent fields keep the
/// core's defaults.
#[napi(object)]
#[derive(Default)]
pub struct RelayOptions {
    /// Only these principals may hold a reservation (default: any authenticated one).
    pub allowlist: Option<Vec<String>>,
    /// Reservations held at once (default 4096).
    pub max_reservations: Option<u32>,
    /// Circuits open at once (default 1024).
    pub max_circuits: Option<u32>,
    /// Circuits open at once per principal, as dialer or target (default 16).
    pub max_circuits_per_peer: Option<u32>,
    /// Bytes one circuit may carry, both directions (0: no limit; default 1 GiB).
    pub circuit_max_bytes: Option<i64>,
    /// How long one circuit may stay open, seconds (default 3600).
    pub circuit_max_duration_secs: Option<f64>,
    /// RESERVE and CONNECT requests per principal per minute (0: no limit; default 60).
    pub requests_per_min: Option<u32>,
}

fn relay_config(o: &RelayOptions) -> napi::Result<RelayConfig> {
    let mut c = RelayConfig::server();
    if let Some(list) = &o.allowlist {
        let principals = list
            .iter()
            .map(|p| parse_principal(p))
            .collect::<napi::Result<Vec<_>>>()?;
        c.admission = RelayAdmission::Allowlist(principals);
    }
    let l = &mut c.limits;
    if let Some(n) = o.max_reservations {
        l.max_reservations = n as usize;
    }
    if let Some(n) = o.max_circuits {
        l.max_circuits = n as usize;
    }
    if let Some(n) = o.max_circuits_per_peer {
        l.max_circuits_per_peer = n as usize;
    }
    if let Some(b) = o.circuit_max_bytes {
        l.circuit_max_bytes =
            u64::try_from(b).map_err(|_| invalid("relay.circuitMaxBytes must not be negative"))?;
    }
    if let Some(secs) = o.circuit_max_duration_secs {
        l.circuit_max_duration = match Duration::try_from_secs_f64(secs) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                return Err(invalid(
                    "relay.circuitMaxDurationSecs must be a positive number",
                ))
            }
        };
    }
    if let Some(n) = o.requests_per_min {
        l.requests_per_min = n;
    }
    Ok(c)
}

fn config(o: &PeerOptions) -> napi::Result<PeerConfig> {
    let mut c = PeerConfig::default();
    if let Some(v) = &o.visibility {
        c.visibility = host::parse_visibility(v).js()?;
    }
    if let Some(p) = &o.compat {
        c.profile = host::parse_profile(p).js()?;
    }
    for p in o.allowlist.iter().flatten() {
        c.allowlist.push(parse_principal(p)?);
    }
    c.allowlist_gate = o.allowlist_gate;
    c.networks = host::parse_network_filter(o.networks.as_deref().unwrap_or("any")).js()?;
    match (&o.alias, &o.display_name) {
        (Some(a), d) => c.alias = Some((a.clone(), d.clone().unwrap_or_else(|| a.clone()))),
        (None, Some(_)) => return Err(invalid("displayName needs an alias")),
        (None, None) => {}
    }
    c.px1 = o.px1;
    if let Some(on) = o.hs2 {
        c.hs2 = on;
    }
    if let Some(ttl) = o.attestation_ttl_secs {
        if ttl <= 0 {
            return Err(invalid("attestationTtlSecs must be positive"));
        }
        c.attestation_ttl_secs = ttl;
    }
    c.preauth_rate_per_min = o.preauth_rate_per_min;
    for l in o.external_locators.iter().flatten() {
        c.external_locators.push(l.parse::<snap2p::Locator>().js()?);
    }
    if let Some(r) = &o.relay {
        c.relay = relay_config(r)?;
    }
    if let Some(r) = &o.resolver {
        r.to_core()?.configure(&mut c).js()?;
    }
    if let Some(ms) = o.connect_timeout_ms {
        c.connect_timeout = Duration::from_millis(ms.into());
    }
    if let Some(b) = o.rekey_after_bytes {
        c.limits.rekey_after_bytes =
            u64::try_from(b).map_err(|_| invalid("rekeyAfterBytes must not be negative"))?;
    }
    if let Some(f) = o.rekey_after_frames {
        c.limits.rekey_after_frames =
            u64::try_from(f).map_err(|_| invalid("rekeyAfterFrames must not be negative"))?;
    }
    if let Some(secs) = o.rekey_interval_secs {
        c.limits.rekey_interval = match Duration::try_from_secs_f64(secs) {
            Ok(d) if d.is_zero() => None,
            Ok(d) => Some(d),
            Err(_) => return Err(invalid("rekeyIntervalSecs must be a non-negative number")),
        };
    }
    Ok(c)
}

/// The core's WebSocket transport with these TLS files, as `snap2p listen --tls-cert
/// --tls-key --tls-root` builds it; None: the built-in one.
fn ws_transport(o: &PeerOptions) -> napi::Result<Option<Arc<WsTransport>>> {
    let roots: Vec<&Path> = o.tls_root_file.iter().map(Path::new).collect();
    let cfg = WsConfig::from_pem_files(
        o.tls_cert_file.as_deref().map(Path::new),
        o.tls_key_file.as_deref().map(Path::new),
        &roots,
    )
    .js()?;
    cfg.map(|c| WsTransport::new(c).map(Arc::new))
        .transpose()
        .js()
}

pub async fn create_with_signer(
    signer: Arc<dyn WalletSigner>,
    options: PeerOptions,
) -> napi::Result<NativePeer> {
    let mut builder = Peer::builder(config(&options)?).signer(signer);
    if let Some(ws) = ws_transport(&options)? {
        builder = builder.transport(ws);
    }
    if let Some(r) = &options.resolver {
        builder = r.to_core()?.attach(builder).js()?;
    }
    let inner = on_core(builder.build()).await?;
    Ok(NativePeer { inner })
}

/// Creates a peer with a fresh throw-away wallet (what the TypeScript `Peer.create()`
/// does).
#[napi]
pub async fn create_ephemeral_peer(options: Option<PeerOptions>) -> napi::Result<NativePeer> {
    let options = options.unwrap_or_default();
    let network = parse_network(options.network.as_deref())?;
    create_with_signer(Arc::new(LocalWallet::generate(network)), options).await
}

/// An invite token. `token` (hex) is what the dialer passes as `invite`.
#[napi(object)]
pub struct InviteJs {
    pub token: String,
    pub id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub one_time: bool,
    pub uses: i64,
}

impl From<Invite> for InviteJs {
    fn from(i: Invite) -> Self {
        InviteJs {
            token: i.token_hex(),
            id: i.id,
            created_at: i.created_at,
            expires_at: i.expires_at,
            one_time: i.one_time,
            uses: i.uses as i64,
        }
    }
}

/// A reservation this peer keeps on a relay (`peer.relayReservations()`).
#[napi(object)]
pub struct ReservationInfoJs {
    /// The relay, `relay://host:port`.
    pub relay: String,
    /// Whether the reservation's session is up now.
    pub active: bool,
    /// This peer's `ip:port` as the relay sees it (what a hole punch aims at).
    pub observed: Option<String>,
}

impl From<ReservationInfo> for ReservationInfoJs {
    fn from(r: ReservationInfo) -> Self {
        ReservationInfoJs {
            relay: r.relay.to_string(),
            active: r.active,
            observed: r.observed.map(|a| a.to_string()),
        }
    }
}

/// What this peer's relay serves now (`peer.relayStats()`; all 0 unless it serves).
#[napi(object)]
pub struct RelayStatsJs {
    /// Reservations held now.
    pub reservations: i64,
    /// Circuits open now.
    pub circuits: i64,
    /// Circuits opened since the peer started.
    pub circuits_total: i64,
    /// Of those, circuits spliced onto plain connections to the relay (PROTOCOL.md §32.3).
    pub spliced_total: i64,
    /// Bytes spliced through circuits, both directions.
    pub bytes_forwarded: i64,
    /// Requests refused (admission, limits, rate).
    pub refused: i64,
}

impl From<RelayStats> for RelayStatsJs {
    fn from(s: RelayStats) -> Self {
        RelayStatsJs {
            reservations: s.reservations as i64,
            circuits: s.circuits as i64,
            circuits_total: s.circuits_total as i64,
            spliced_total: s.spliced_total as i64,
            bytes_forwarded: s.bytes_forwarded as i64,
            refused: s.refused as i64,
        }
    }
}

#[napi]
pub struct NativePeer {
    inner: Peer,
}

#[napi]
impl NativePeer {
    #[napi(getter)]
    pub fn principal(&self) -> String {
        self.inner.principal().to_string()
    }

    #[napi(getter)]
    pub fn node_public_key(&self) -> Buffer {
        self.inner.node_public_key().to_vec().into()
    }

    #[napi(getter)]
    pub fn visibility(&self) -> String {
        host::visibility_name(self.inner.visibility()).to_string()
    }

    /// Binds a listener (`"9000"`, `"127.0.0.1:0"`, `"[::]:9000"`, `"ws://127.0.0.1:0/p"`,
    /// `"wss://0.0.0.0:443/p"` with `tlsCertFile`); resolves to the bound `ip:port`
    /// (`listen_locators` gives the full locators).
    #[napi]
    pub async fn listen(&self, addr: String) -> napi::Result<String> {
        let peer = self.inner.clone();
        let bound = on_core(async move { peer.listen(&addr).await }).await?;
        Ok(bound.to_string())
    }

    #[napi]
    pub fn listen_addrs(&self) -> Vec<String> {
        self.inner
            .listen_addrs()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Every listener as a dialable locator of its transport (`127.0.0.1:9000`,
    /// `ws://127.0.0.1:8080/p`, `wss://0.0.0.0:443/p`: unspecified IPs as bound).
    #[napi]
    pub fn listen_locators(&self) -> Vec<String> {
        self.inner
            .listen_locators()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Where others can reach this peer, as it advertises it (PX-1): the configured
    /// `externalLocators` first, then every listener's locator.
    #[napi]
    pub fn reachable_locators(&self) -> Vec<String> {
        self.inner
            .reachable_locators()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Subscribes to this peer's events (docs/EVENTS.md); each call is a subscription of
    /// its own, stopped by its `close()`; `close()` of the peer ends it after its last
    /// events.
    #[napi]
    pub fn events(&self) -> NativeEventSubscription {
        NativeEventSubscription::new(self.inner.events())
    }

    /// This peer's counters now.
    #[napi]
    pub fn stats(&self) -> PeerStatsJs {
        self.inner.stats().into()
    }

    /// The next authenticated inbound connection; `null` once the peer is closed.
    #[napi]
    pub async fn accept(&self) -> napi::Result<Option<NativeConnection>> {
        let peer = self.inner.clone();
        let conn = on_core(async move { Ok(peer.accept().await) }).await?;
        Ok(conn.map(NativeConnection::new))
    }

    /// Dials `host:port` or `stacks:<address>` (resolved through PX-1). `invite` is a
    /// hex token for stealth listeners; `expect` fails the dial unless the peer
    /// authenticates as that principal.
    #[napi]
    pub async fn dial(
        &self,
        target: String,
        invite: Option<String>,
        expect: Option<String>,
    ) -> napi::Result<NativeConnection> {
        let mut opts = DialOptions::default();
        opts.invite = invite.as_deref().map(parse_invite_token).transpose().js()?;
        opts.expect = expect.as_deref().map(parse_principal).transpose()?;
        let peer = self.inner.clone();
        let conn = on_core(async move { peer.dial_with(&target, opts).await }).await?;
        Ok(NativeConnection::new(conn))
    }

    /// Where a principal (`stacks:SP…`) or a BNS name (`alice.btc`, with
    /// `resolver.bnsProviders`) can be reached, by the resolver chain: the answering step,
    /// each locator verified or a hint, every step's outcome and duration. Rejects with
    /// the core's error when nothing answered (`ERR_NOT_FOUND`, the last step's error) or
    /// the name did not resolve (`ERR_PROVIDERS_DISAGREE`, …). Dials nobody.
    #[napi]
    pub async fn resolve(&self, target: String) -> napi::Result<ResolveReport> {
        let peer = self.inner.clone();
        let report = on_core(async move { peer.resolve_target(&target).await }).await?;
        Ok(snap2p::host::ResolveInfo::from(&report).into())
    }

    /// Live connections, both directions.
    #[napi]
    pub fn connections(&self) -> Vec<NativeConnection> {
        self.inner
            .connections()
            .into_iter()
            .map(NativeConnection::new)
            .collect()
    }

    /// Stops listening, closes every connection, ends `accept`.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        let peer = self.inner.clone();
        on_core(async move {
            peer.close().await;
            Ok(())
        })
        .await
    }

    /// The reservations this peer keeps on relays (`listen("relay://host:port")`).
    #[napi]
    pub fn relay_reservations(&self) -> Vec<ReservationInfoJs> {
        self.inner
            .relay()
            .reservations()
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// What this peer serves as a relay now.
    #[napi]
    pub fn relay_stats(&self) -> RelayStatsJs {
        self.inner.relay().stats().into()
    }

    /// Replaces the relayed session `conn` by a direct one (docs/PROTOCOL.md §32.6): the
    /// new session (transport `punch`); `conn` stays open. Rejects when no direct path
    /// was found (stay relayed).
    #[napi(ts_return_type = "Promise<NativeConnection>")]
    pub fn hole_punch<'env>(
        &self,
        env: &'env Env,
        conn: &NativeConnection,
    ) -> napi::Result<PromiseRaw<'env, NativeConnection>> {
        let peer = self.inner.clone();
        let relayed = conn.core().clone();
        env.spawn_future(async move {
            let direct = on_core(async move { peer.hole_punch(&relayed).await }).await?;
            Ok(NativeConnection::new(direct))
        })
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    #[napi]
    pub fn create_invite(
        &self,
        ttl_secs: Option<i64>,
        one_time: Option<bool>,
    ) -> napi::Result<InviteJs> {
        if ttl_secs.is_some_and(|t| t <= 0) {
            return Err(invalid("ttlSecs must be positive"));
        }
        Ok(self
            .inner
            .create_invite(ttl_secs, one_time.unwrap_or(false))
            .js()?
            .into())
    }

    #[napi]
    pub fn list_invites(&self) -> Vec<InviteJs> {
        self.inner
            .list_invites()
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// Revokes a token (hex) or its id; `false` if there was no such invite.
    #[napi]
    pub fn revoke_invite(&self, token_or_id: String) -> bool {
        self.inner.revoke_invite(&token_or_id)
    }

    #[napi]
    pub fn allow(&self, principal: String) -> napi::Result<()> {
        self.inner.allow(parse_principal(&principal)?);
        Ok(())
    }

    #[napi]
    pub fn disallow(&self, principal: String) -> napi::Result<()> {
        self.inner.disallow(&parse_principal(&principal)?);
        Ok(())
    }

    /// Replaces the permission rules (docs/PROTOCOL.md §33): one rule per line,
    /// `PRINCIPAL:LABEL[,LABEL] [streams=N] [rate=B]` (`*` for any principal); `null`: no
    /// rules, every label allowed. Live sessions are kept.
    #[napi]
    pub fn set_permissions(&self, rules: Option<String>) -> napi::Result<()> {
        let rules = rules
            .map(|t| snap2p::policy::PermissionRules::parse(&t))
            .transpose()
            .js()?;
        self.inner.permissions().set_rules(rules);
        Ok(())
    }

    /// Also honours PermissionGrants signed by `principal` (the peer's own always are).
    #[napi]
    pub fn add_grant_owner(&self, principal: String) -> napi::Result<()> {
        self.inner
            .permissions()
            .add_owner(parse_principal(&principal)?);
        Ok(())
    }

    /// Revokes a grant by id (64 hex) or every grant a principal issued or holds.
    #[napi]
    pub fn revoke_grant(&self, id_or_principal: String) -> napi::Result<()> {
        self.inner.permissions().revoke(&id_or_principal).js()
    }

    #[napi]
    pub fn allowlist(&self) -> Vec<String> {
        self.inner
            .policy()
            .allowlist
            .list()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Signs and publishes a new AliasCard (sent to peers after authentication).
    #[napi]
    pub async fn set_alias(
        &self,
        alias: String,
        display_name: Option<String>,
    ) -> napi::Result<AliasCardJs> {
        let peer = self.inner.clone();
        let display = display_name.unwrap_or_else(|| alias.clone());
        let card = on_core(async move { peer.set_alias(&alias, &display).await }).await?;
        Ok(card.into())
    }

    #[napi(getter)]
    pub fn alias(&self) -> Option<AliasCardJs> {
        self.inner.alias().map(Into::into)
    }
}
