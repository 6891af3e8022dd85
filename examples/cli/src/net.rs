//! Networking commands: `listen`, `chat`, `dial`, `resolve`. Each one builds a core
//! [`Peer`] from the command line and prints what the core reports; no protocol logic
//! lives here.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use snap2p::discovery::bns::{Bns, BnsConfig};
use snap2p::discovery::mdns::{Mdns, MdnsConfig};
use snap2p::discovery::{DhtConfig, ResolverConfig, StepOutcome};
use snap2p::identity::PRINCIPAL_PREFIX;
use snap2p::policy::parse_invite_token;
use snap2p::relay::{Relay, RelayAdmission, RelayConfig, RelayLimits};
use snap2p::transport::{WsConfig, WsTransport};
use snap2p::{Connection, DialOptions, ErrorCode, Peer, PeerConfig, Principal, Stream, Visibility};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::config::{add_invite, alias_for, read_invites};
use crate::out::{err, event, note, R};
use crate::{DialOpts, Global, ListenOpts, PeerOpts, Vis};

/// Label of the stream `chat` opens; `listen` shows its lines instead of echoing them.
pub const CHAT_LABEL: &str = "chat";
/// Label of the stream `dial -m` opens.
pub const ECHO_LABEL: &str = "echo";
/// Largest echo `dial` accepts back.
const MAX_ECHO: usize = 16 << 20;

/// Accepts `stacks:SP…` and a bare `SP…`.
pub fn parse_principal(s: &str) -> R<Principal> {
    let s = s.trim();
    if s.starts_with(PRINCIPAL_PREFIX) {
        Principal::parse(s)
    } else {
        Principal::from_address(s)
    }
}

/// A dial target: a locator as given, or a principal normalised to `stacks:…` (which
/// the core resolves through PX-1).
fn normalize_target(target: &str) -> String {
    let t = target.trim();
    if !t.starts_with(PRINCIPAL_PREFIX) && !t.contains(':') {
        if let Ok(p) = Principal::from_address(t) {
            return p.to_string();
        }
    }
    t.to_string()
}

fn visibility(v: Vis) -> Visibility {
    match v {
        Vis::Public => Visibility::Public,
        Vis::Private => Visibility::Private,
        Vis::Stealth => Visibility::Stealth,
    }
}

/// Builds the peer of a command from its options, with a given relay module (`snap2p relay` serves; others only use
/// relays).
async fn build_peer_with(
    g: &Global,
    opts: &PeerOpts,
    tls_identity: Option<(&Path, &Path)>,
    advertise: &[String],
    relay: Arc<Relay>,
) -> R<Peer> {
    build_peer_for(g, opts, tls_identity, advertise, relay, false, &[]).await
}

/// [`build_peer_with`]; `publish`: a Public peer on a DHT publishes its advert (`listen`);
/// `steps`: the resolver chain's steps (empty: the default chain).
#[allow(clippy::too_many_arguments)]
async fn build_peer_for(
    g: &Global,
    opts: &PeerOpts,
    tls_identity: Option<(&Path, &Path)>,
    advertise: &[String],
    relay: Arc<Relay>,
    publish: bool,
    steps: &[String],
) -> R<Peer> {
    let (signer, wallet_id) = crate::wallet::signer(g)?;
    let mut cfg = PeerConfig::default().with_visibility(visibility(opts.visibility));
    if opts.compat == Some(crate::Compat::Ts) {
        cfg.profile = snap2p::WireProfile::TypeScript;
    }
    cfg.hs2 = !opts.v1;
    for a in advertise {
        cfg.external_locators.push(a.parse()?);
    }
    for a in &opts.allow {
        cfg.allowlist.push(parse_principal(a)?);
    }
    // The core gates Private/Stealth on the allowlist by default; with no --allow that
    // would refuse everyone, so the gate follows whether an allowlist was given.
    cfg.allowlist_gate = Some(!cfg.allowlist.is_empty());
    crate::permit::configure(&mut cfg, &opts.permit)?;
    if opts.dht.dht || !opts.dht.dht_bootstrap.is_empty() {
        let mut d = DhtConfig::default().with_publish(publish && opts.visibility == Vis::Public);
        if !opts.dht.dht_bootstrap.is_empty() {
            d = d.with_bootstrap(opts.dht.dht_bootstrap.iter().cloned());
        }
        if let Some(f) = &opts.dht.advert_cache {
            d = d.with_cache_path(f);
        }
        cfg.dht = Some(d);
    }
    if !steps.is_empty() {
        let names: Vec<&str> = steps.iter().map(String::as_str).collect();
        cfg.resolver = ResolverConfig::only(&names);
    }
    if let Some(a) = &opts.alias {
        cfg.alias = Some((a.clone(), a.clone()));
    } else if let Some(e) = alias_for(g, wallet_id.as_deref())? {
        cfg.alias = Some((e.alias, e.display_name));
    }
    let mut builder = Peer::builder(cfg).signer(signer).relay(relay);
    if opts.mdns {
        builder = builder.mdns(Mdns::start(MdnsConfig::default())?);
    }
    if !opts.bns.is_empty() {
        let providers = BnsConfig::with_providers(opts.bns.iter().cloned());
        builder = builder.bns(Arc::new(Bns::http(&providers)?));
    }
    // The core's WebSocket transport with this run's roots and certificate; it replaces
    // the default one (same transport, no extra roots, no certificate).
    let roots: Vec<&Path> = opts.tls_root.iter().map(PathBuf::as_path).collect();
    let (cert, key) = tls_identity.unzip();
    if let Some(ws) = WsConfig::from_pem_files(cert, key, &roots)? {
        builder = builder.transport(Arc::new(WsTransport::new(ws)?));
    }
    let peer = builder.build().await?;
    // A broken or hand-edited advert cache is not fatal (the core starts without it or
    // without the bad entries): say so.
    if let Some(e) = peer.advert_cache().load_problem() {
        event(
            g,
            "advert_cache_problem",
            format!("warning: {e}"),
            json!({"error": crate::out::error_json(&e)}),
        );
    }
    Ok(peer)
}

/// `alias (stacks:SP…)` once the peer's AliasCard arrived (it follows AUTH_OK, so give
/// it a moment), else the principal alone.
pub async fn peer_name(conn: &Connection) -> (String, Option<String>) {
    for _ in 0..20 {
        if conn.remote_alias().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let alias = conn.remote_alias().map(|c| c.alias.clone());
    let p = conn.remote_principal().to_string();
    match &alias {
        Some(a) => (format!("{a} ({p})"), alias),
        None => (p, None),
    }
}

fn short_name(conn: &Connection, alias: &Option<String>) -> String {
    alias
        .clone()
        .unwrap_or_else(|| conn.remote_principal().address())
}

/// Dials `target`, first connecting to every `--via` peer so PX-1 can ask them.
async fn connect(
    g: &Global,
    peer: &Peer,
    target: &str,
    d: &DialOpts,
    relays: &[String],
) -> R<Connection> {
    let invite = d.invite.as_deref().map(parse_invite_token).transpose()?;
    let mut target = normalize_target(target);
    // A principal and --relay: through the (first) relay, `relay://host:port/SP…`.
    if let (Some(relay), true) = (relays.first(), target.starts_with(PRINCIPAL_PREFIX)) {
        let p = parse_principal(&target)?;
        target = format!("{}/{}", relay_base(relay), p.address());
        note(g, format!("* dialing {target}"));
    }
    let work = async {
        for v in &d.via {
            let c = peer.dial(v).await?;
            note(
                g,
                format!("* connected to {} via {v} (for PX-1)", c.remote_principal()),
            );
        }
        let conn = peer
            .dial_with(&target, {
                let mut c = DialOptions::default();
                c.invite = invite;
                c
            })
            .await?;
        crate::permit::present(g, &conn, &d.grant).await?;
        Ok(conn)
    };
    match tokio::time::timeout(Duration::from_secs(d.timeout), work).await {
        Ok(r) => r,
        Err(_) => Err(err(
            ErrorCode::Timeout,
            format!("no session with {target} within {}s", d.timeout),
        )),
    }
}

/// A Public peer on a DHT: publishes its advert once now (the core republishes it on its
/// own) and says so; a Private or Stealth one says it does not publish.
async fn publish_to_dht(g: &Global, peer: &Peer) {
    let Some(dht) = peer.dht() else { return };
    if peer.visibility() != Visibility::Public {
        event(
            g,
            "dht_not_publishing",
            "DHT: not publishing (Private and Stealth nodes never publish)",
            json!({"visibility": format!("{:?}", peer.visibility()).to_lowercase()}),
        );
        return;
    }
    dht.bootstrapped(Duration::from_secs(10)).await;
    match peer.publish_advert().await {
        Ok(r) => event(
            g,
            "dht_published",
            format!(
                "DHT: published advert seq {} ({} bytes, {} locators) to {} nodes{} in {} ms",
                r.advert.seq,
                r.advert_len,
                r.advert.locators.len(),
                r.stored_at,
                if r.announced {
                    ", principal announced"
                } else {
                    ""
                },
                r.duration.as_millis()
            ),
            json!({"seq": r.advert.seq, "bytes": r.advert_len, "stored_at": r.stored_at,
                   "announced": r.announced, "ms": r.duration.as_secs_f64() * 1000.0,
                   "node_key": hex::encode(r.advert.node_key()),
                   "dht_addr": dht.local_addr().to_string(),
                   "locators": r.advert.locators.iter().map(|l| l.to_string()).collect::<Vec<_>>()}),
        ),
        Err(e) => note(
            g,
            format!("* DHT: publish failed ({e}); retrying in the background"),
        ),
    }
}

fn whoami(g: &Global, peer: &Peer) {
    let alias = peer.alias().map(|c| c.alias);
    note(
        g,
        format!(
            "* I am {}{} ({:?})",
            peer.principal(),
            alias
                .as_ref()
                .map(|a| format!(" alias {a}"))
                .unwrap_or_default(),
            peer.visibility()
        ),
    );
}

// ---------------------------------------------------------------------------------------
// listen

type ChatStreams = Arc<Mutex<Vec<(u64, Stream)>>>;

pub async fn listen(
    g: &Global,
    listen: &ListenOpts,
    opts: &PeerOpts,
    invites_file: Option<PathBuf>,
    invite_ttl: i64,
) -> R<()> {
    let peer = build_peer_for(
        g,
        opts,
        listen.web.tls_identity(),
        &listen.advertise,
        Relay::new(RelayConfig::default()),
        true,
        &[],
    )
    .await?;
    let alias = peer.alias().map(|c| c.alias);
    // One line per listener (TCP, ws, wss), each with its transport's locator.
    let mut first = None;
    let mut addrs = listen.locators();
    addrs.extend(opts.relay.iter().map(|r| relay_base(r)));
    for addr in addrs {
        let before = peer.listen_locators().len();
        peer.listen(&addr).await?;
        let Some(local) = peer.listen_locators().into_iter().nth(before) else {
            continue;
        };
        event(
            g,
            "listening",
            format!(
                "Listening on {local} as {}{} ({:?}{})",
                peer.principal(),
                alias
                    .as_ref()
                    .map(|a| format!(" alias {a}"))
                    .unwrap_or_default(),
                peer.visibility(),
                if peer.config().profile.is_typescript() {
                    ", TypeScript profile"
                } else {
                    ""
                }
            ),
            json!({"addr": local.to_string(), "principal": peer.principal().to_string(),
                   "alias": alias, "visibility": format!("{:?}", peer.visibility()).to_lowercase(),
                   "profile": peer.config().profile.name()}),
        );
        first.get_or_insert(local);
    }
    let Some(local) = first else {
        return Err(err(ErrorCode::InvalidArgument, "nothing to listen on"));
    };
    publish_to_dht(g, &peer).await;
    if opts.mdns {
        let announcing = peer.visibility() == Visibility::Public;
        event(
            g,
            "mdns",
            if announcing {
                "Announcing on the LAN over mDNS (_snap2p._tcp.local.)".to_string()
            } else {
                format!(
                    "mDNS: resolving only ({:?} nodes never announce)",
                    peer.visibility()
                )
            },
            json!({"announcing": announcing}),
        );
    }
    for loc in &peer.config().external_locators {
        event(
            g,
            "advertising",
            format!("Advertising {loc} (--advertise; PX-1 answers it first)"),
            json!({"locator": loc.to_string()}),
        );
    }
    if let Some(addr) = &listen.metrics {
        let bound = crate::metrics::serve(peer.clone(), addr).await?;
        event(
            g,
            "metrics",
            format!("Metrics on http://{bound}/metrics (and /health, /ready)"),
            json!({"addr": bound.to_string()}),
        );
    }
    if opts.visibility != Vis::Public && opts.allow.is_empty() {
        note(
            g,
            "* note: no --allow given, so any authenticated principal may connect (stealth: any holding an invite)",
        );
    }
    crate::permit::watch(g, &peer, &opts.permit);
    let mut synced = HashMap::new();
    if let Some(f) = &invites_file {
        sync_invites(&peer, f, &mut synced)?;
    }
    if opts.visibility == Vis::Stealth {
        // A stealth node answers nobody without an invite: hand out a first one.
        let (id, token) = match &invites_file {
            Some(f) => {
                let rec = add_invite(f, invite_ttl, false)?;
                sync_invites(&peer, f, &mut synced)?;
                (rec.id, rec.token)
            }
            None => {
                let inv = peer.create_invite(Some(invite_ttl), false)?;
                (inv.id.clone(), inv.token_hex())
            }
        };
        event(
            g,
            "invite",
            format!("Invite {id} (valid {invite_ttl}s): {token}\n  dial with: snap2p chat {local} --invite {token}"),
            json!({"id": id, "token": token, "expires_in": invite_ttl}),
        );
    }
    if let Some(f) = invites_file.clone() {
        let peer = peer.clone();
        let g = g.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if peer.is_closed() {
                    return;
                }
                if let Err(e) = sync_invites(&peer, &f, &mut synced) {
                    note(&g, format!("* cannot read invites file: {e}"));
                }
            }
        });
    }

    let chats: ChatStreams = Arc::default();
    spawn_stdin_broadcast(g.clone(), chats.clone());
    spawn_failure_report(g.clone(), peer.events());

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            conn = peer.accept() => {
                let Some(conn) = conn else { break };
                tokio::spawn(serve_conn(g.clone(), conn, chats.clone()));
            }
            _ = &mut ctrl_c => {
                note(g, "* shutting down");
                break;
            }
        }
    }
    peer.close().await;
    Ok(())
}

/// Brings the listener's invite book in line with the file: new tokens are added,
/// tokens removed from the file are revoked. Ids already seen are not re-added, so a
/// one-time token the core consumed stays consumed.
fn sync_invites(peer: &Peer, path: &Path, seen: &mut HashMap<String, String>) -> R<()> {
    let now = snap2p::unix_now();
    let file = read_invites(path)?;
    for rec in &file.invites {
        if rec.expires_at <= now || seen.contains_key(&rec.id) {
            continue;
        }
        let token = parse_invite_token(&rec.token)?;
        peer.policy()
            .invites
            .add(token, rec.expires_at, rec.one_time, now)?;
        seen.insert(rec.id.clone(), rec.token.clone());
    }
    let in_file: Vec<&str> = file.invites.iter().map(|r| r.id.as_str()).collect();
    seen.retain(|id, token| {
        if in_file.contains(&id.as_str()) {
            true
        } else {
            peer.revoke_invite(token);
            false
        }
    });
    Ok(())
}

/// Prints every inbound handshake that fails and every connection turned away before one
/// (docs/EVENTS.md): without them an operator sees nothing of a peer that cannot get in.
fn spawn_failure_report(g: Global, mut events: snap2p::Events) {
    use snap2p::{Direction, EventKind};
    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            let inbound = ev.direction == Some(Direction::Inbound);
            let kind = match ev.kind {
                EventKind::HandshakeFailed if inbound => "handshake_failed",
                EventKind::InboundRefused => "inbound_refused",
                EventKind::Lagged => {
                    note(&g, format!("* {} events missed", ev.missed.unwrap_or(0)));
                    continue;
                }
                _ => continue,
            };
            let code = ev.code.unwrap_or(snap2p::ErrorCode::Unspecified);
            let from = ev.remote_addr.map(|a| a.to_string()).unwrap_or_default();
            let reason = ev.reason.clone().unwrap_or_default();
            let text = match ev.kind {
                EventKind::InboundRefused => {
                    format!("* refused {from} before any handshake: {code}")
                }
                _ => format!("* inbound handshake from {from} failed: {code}: {reason}"),
            };
            event(
                &g,
                kind,
                text,
                json!({
                    "remote_addr": from,
                    "transport": ev.transport.as_ref().map(|t| t.as_str().to_string()),
                    "code": code.as_u64(),
                    "name": code.name(),
                    "reason": reason,
                    "ms": ev.duration.map(|d| d.as_millis() as u64),
                }),
            );
        }
    });
}

/// Lines typed into the listener go to every open chat stream. Stdin ending (e.g.
/// `</dev/null` in a service) only stops this task, not the listener.
fn spawn_stdin_broadcast(g: Global, chats: ChatStreams) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let targets: Vec<(u64, Stream)> = chats.lock().unwrap().clone();
            if targets.is_empty() {
                note(&g, "* nobody is chatting yet");
            }
            for (key, s) in targets {
                if s.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                    chats.lock().unwrap().retain(|(k, _)| *k != key);
                }
            }
        }
    });
}

async fn serve_conn(g: Global, conn: Connection, chats: ChatStreams) {
    let (name, alias) = peer_name(&conn).await;
    let addr = conn
        .remote_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    event(
        &g,
        "connected",
        format!("+ {name} connected from {addr}"),
        json!({"principal": conn.remote_principal().to_string(), "alias": alias, "addr": addr,
               "hs2": conn.stats().hs2}),
    );
    let short = short_name(&conn, &alias);
    while let Ok(s) = conn.accept_stream().await {
        tokio::spawn(serve_stream(
            g.clone(),
            conn.clone(),
            short.clone(),
            s,
            chats.clone(),
        ));
    }
    let why = conn.closed().await;
    event(
        &g,
        "disconnected",
        format!("- {name} disconnected ({})", why.code),
        json!({"principal": conn.remote_principal().to_string(), "code": why.code.as_u64(),
               "reason": why.code.name()}),
    );
}

async fn serve_stream(g: Global, conn: Connection, short: String, s: Stream, chats: ChatStreams) {
    let label = s.label().unwrap_or("").to_string();
    if label == CHAT_LABEL {
        // Unique per connection and stream, to remove exactly this one later.
        let key = (conn.session_id()[0] as u64) << 56 | s.id();
        chats.lock().unwrap().push((key, s.clone()));
        let mut lines = BufReader::new(s.clone()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            event(
                &g,
                "message",
                format!("{short}: {line}"),
                json!({"from": conn.remote_principal().to_string(), "alias": short, "text": line}),
            );
        }
        chats.lock().unwrap().retain(|(k, _)| *k != key);
        let _ = s.finish();
        return;
    }
    // Anything else is echoed byte for byte.
    let mut hasher = Sha256::new();
    let mut total = 0usize;
    let result: R<()> = async {
        while let Some(chunk) = s.read_chunk(64 * 1024).await? {
            hasher.update(&chunk);
            total += chunk.len();
            s.write_all(&chunk).await?;
        }
        s.finish()
    }
    .await;
    let digest = hex::encode(hasher.finalize());
    match result {
        Ok(()) => event(
            &g,
            "echo",
            format!(
                "  {short}: stream {} {label:?} echoed {total} bytes (sha256 {})",
                s.id(),
                &digest[..16]
            ),
            json!({"from": conn.remote_principal().to_string(), "stream": s.id(), "label": label,
                   "bytes": total, "sha256": digest}),
        ),
        Err(e) => note(&g, format!("  {short}: stream {} ended: {e}", s.id())),
    }
}

// ---------------------------------------------------------------------------------------
// dial

pub async fn dial(g: &Global, target: &str, message: &str, d: &DialOpts, opts: &PeerOpts) -> R<()> {
    let relay = Relay::new(RelayConfig::default());
    let peer = build_peer_with(g, opts, None, &[], relay.clone()).await?;
    whoami(g, &peer);
    let conn = connect(g, &peer, target, d, &opts.relay).await?;
    let conn = punch(g, &relay, conn, d.punch).await;
    let (name, alias) = peer_name(&conn).await;
    let stats = conn.stats();
    let handshake = if stats.hs2 { "hs2" } else { "v1" };
    note(
        g,
        format!(
            "* connected to {name} over {} ({handshake})",
            stats.transport
        ),
    );
    let work = async {
        let s = conn.open_stream(Some(ECHO_LABEL)).await?;
        s.write_all(message.as_bytes()).await?;
        s.finish()?;
        s.read_all(MAX_ECHO).await
    };
    let echo = match tokio::time::timeout(Duration::from_secs(d.timeout), work).await {
        Ok(r) => r?,
        Err(_) => return Err(err(ErrorCode::Timeout, "no echo in time")),
    };
    let text = String::from_utf8_lossy(&echo).to_string();
    event(
        g,
        "echo",
        &text,
        json!({"principal": conn.remote_principal().to_string(), "alias": alias,
               "text": text, "bytes": echo.len(), "sha256": hex::encode(Sha256::digest(&echo)),
               "matches": echo == message.as_bytes(), "hs2": stats.hs2}),
    );
    conn.close(ErrorCode::Ok, "done");
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
    peer.close().await;
    if echo != message.as_bytes() {
        return Err(err(
            ErrorCode::InvalidMessage,
            "the peer answered with something other than the message (not an echo server?)",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// chat

/// Shows one received line (shared by the reader task and status messages).
type Printer = Arc<Mutex<Box<dyn FnMut(String) + Send>>>;

enum Input {
    Line(String),
    End,
}

pub async fn chat(g: &Global, target: &str, d: &DialOpts, opts: &PeerOpts) -> R<()> {
    let relay = Relay::new(RelayConfig::default());
    let peer = build_peer_with(g, opts, None, &[], relay.clone()).await?;
    whoami(g, &peer);
    let conn = connect(g, &peer, target, d, &opts.relay).await?;
    let conn = punch(g, &relay, conn, d.punch).await;
    let (name, alias) = peer_name(&conn).await;
    let stream = conn.open_stream(Some(CHAT_LABEL)).await?;
    // Status goes to stderr so that piped stdout carries only the peer's lines.
    if g.json {
        event(
            g,
            "connected",
            "",
            json!({"principal": conn.remote_principal().to_string(), "alias": alias}),
        );
    }
    note(
        g,
        format!("* chatting with {name} (Ctrl+D or Ctrl+C to leave)"),
    );
    let short = short_name(&conn, &alias);
    let tty = std::io::stdin().is_terminal() && !g.json;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Input>();
    // Where received lines go: rustyline's printer on a terminal (so the prompt being
    // typed is redrawn, not garbled), plain stdout otherwise.
    let printer: Printer = if tty {
        let (ptx, prx) = std::sync::mpsc::channel();
        std::thread::spawn(move || readline_loop(tx, ptx));
        match prx.recv() {
            Ok(Some(mut p)) => Arc::new(Mutex::new(Box::new(move |s: String| {
                let _ = p.as_mut().print(format!("{s}\n"));
            }))),
            _ => Arc::new(Mutex::new(Box::new(|s: String| println!("{s}")))),
        }
    } else {
        tokio::spawn(async move {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(Input::Line(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Input::End);
        });
        Arc::new(Mutex::new(Box::new(|s: String| println!("{s}"))))
    };

    // Received lines, until the peer finishes the stream or the session ends.
    let reader = {
        let g = g.clone();
        let stream = stream.clone();
        let printer = printer.clone();
        let principal = conn.remote_principal().to_string();
        let short = short.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if g.json {
                    println!(
                        "{}",
                        json!({"event": "message", "from": principal, "alias": short, "text": line})
                    );
                } else {
                    (printer.lock().unwrap())(format!("{short}: {line}"));
                }
            }
        })
    };
    let mut reader = reader;
    let mut peer_left = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            input = rx.recv() => match input {
                Some(Input::Line(line)) => {
                    if peer_left {
                        continue;
                    }
                    if let Err(e) = stream.write_all(format!("{line}\n").as_bytes()).await {
                        return Err(conn.close_reason().unwrap_or(e));
                    }
                }
                Some(Input::End) | None => break,
            },
            _ = &mut reader, if !peer_left => {
                peer_left = true;
                if tty {
                    (printer.lock().unwrap())(format!("* {short} left the chat; Ctrl+D to exit"));
                } else {
                    note(g, format!("* {short} left the chat"));
                    break;
                }
            }
            _ = &mut ctrl_c => break,
        }
    }
    let _ = stream.finish();
    if !peer_left {
        // Let the peer's last lines arrive: it finishes its side once it sees ours.
        let _ = tokio::time::timeout(Duration::from_secs(3), &mut reader).await;
    }
    conn.close(ErrorCode::Ok, "chat ended");
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
    peer.close().await;
    note(g, "* bye");
    Ok(())
}

/// Line editing on a terminal (history, arrows); Ctrl+C and Ctrl+D both leave.
fn readline_loop(
    tx: tokio::sync::mpsc::UnboundedSender<Input>,
    printer: std::sync::mpsc::Sender<Option<Box<dyn rustyline::ExternalPrinter + Send>>>,
) {
    let mut rl = match rustyline::DefaultEditor::new() {
        Ok(rl) => rl,
        Err(_) => {
            let _ = printer.send(None);
            let _ = tx.send(Input::End);
            return;
        }
    };
    let p = rl
        .create_external_printer()
        .ok()
        .map(|p| Box::new(p) as Box<dyn rustyline::ExternalPrinter + Send>);
    let _ = printer.send(p);
    loop {
        match rl.readline("> ") {
            Ok(line) => {
                let _ = rl.add_history_entry(line.as_str());
                if tx.send(Input::Line(line)).is_err() {
                    return;
                }
            }
            Err(_) => {
                let _ = tx.send(Input::End);
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// resolve

/// `snap2p resolve`'s options.
pub struct ResolveOpts {
    pub via: Vec<String>,
    pub timeout: u64,
    pub tls_root: Vec<PathBuf>,
    pub steps: Vec<String>,
    pub no_dial: bool,
    pub dht: crate::DhtOpts,
    /// The chain's mDNS step (`--mdns`).
    pub mdns: bool,
}

fn step_json(s: &snap2p::discovery::StepReport) -> serde_json::Value {
    let mut v = json!({
        "step": s.name,
        "outcome": s.outcome.as_str(),
        "ms": s.duration.as_secs_f64() * 1000.0,
    });
    match &s.outcome {
        StepOutcome::Found(n) => v["count"] = json!(n),
        StepOutcome::Failed(e) => v["error"] = crate::out::error_json(e),
        _ => {}
    }
    v
}

fn step_text(s: &snap2p::discovery::StepReport) -> String {
    let ms = s.duration.as_secs_f64() * 1000.0;
    let what = match &s.outcome {
        StepOutcome::Found(n) => format!("found {n} locator{}", if *n == 1 { "" } else { "s" }),
        StepOutcome::NotFound => "nothing".into(),
        StepOutcome::Failed(e) => format!("{}: {}", e.code, e.reason()),
        StepOutcome::Skipped => "skipped (not configured)".into(),
    };
    format!("  {:<6} {:>9.1} ms  {what}", s.name, ms)
}

pub async fn resolve(g: &Global, principal: &str, o: &ResolveOpts) -> R<()> {
    let target = parse_principal(principal)?;
    let opts = PeerOpts {
        visibility: Vis::Public,
        allow: Vec::new(),
        alias: None,
        tls_root: o.tls_root.clone(),
        permit: Default::default(),
        relay: Vec::new(),
        mdns: o.mdns,
        bns: Vec::new(),
        dht: o.dht.clone(),
        compat: None,
        v1: false,
    };
    let peer = build_peer_for(
        g,
        &opts,
        None,
        &[],
        Relay::new(RelayConfig::default()),
        false,
        &o.steps,
    )
    .await?;
    let work = async {
        for v in &o.via {
            match peer.dial(v).await {
                Ok(c) => note(
                    g,
                    format!("* connected to {} via {v} (for PX-1)", c.remote_principal()),
                ),
                Err(e) => note(g, format!("* {v}: {e}")),
            }
        }
        let report = peer.resolve(&target).await;
        let answered = report.answered_by.clone();
        let locs: Vec<String> = report.locators.iter().map(|l| l.to_string()).collect();
        // Per locator: verified (a live signed advert of the principal lists it) or a
        // hint (only the dial's AUTH proves it).
        let marked: Vec<String> = report
            .entries()
            .map(|(l, v)| format!("{l} ({})", if v { "verified" } else { "hint" }))
            .collect();
        let found: Vec<serde_json::Value> = report
            .entries()
            .map(|(l, v)| json!({"locator": l.to_string(), "verified": v}))
            .collect();
        let ms = report.duration.as_secs_f64() * 1000.0;
        let mut text = match &answered {
            Some(step) => format!(
                "{target}: {} ({step} answered in {ms:.1} ms)",
                marked.join(", ")
            ),
            None => format!("{target}: not found ({ms:.1} ms)"),
        };
        for s in &report.steps {
            text.push('\n');
            text.push_str(&step_text(s));
        }
        event(
            g,
            "resolve",
            text,
            json!({"principal": target.to_string(), "answered_by": answered, "locators": locs,
                   "found": found, "ms": ms, "steps": report.steps.iter().map(step_json).collect::<Vec<_>>()}),
        );
        if answered.is_none() {
            return Err(report.error());
        }
        if o.no_dial {
            return Ok(());
        }
        // Locators are hints until the dial proves who is there (AUTH, expect = target).
        let conn = snap2p::protocol::dial_hints(
            &peer.handle(),
            &target,
            &report.locators,
            DialOptions::default(),
        )
        .await?;
        let (name, alias) = peer_name(&conn).await;
        let addr = conn
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        event(
            g,
            "resolved",
            format!("{target} is at {addr} (verified by authenticating as {name})"),
            json!({"principal": target.to_string(), "locator": addr, "alias": alias,
                   "verified": true, "step": answered}),
        );
        // AUTH proved the node key: fetch its signed advert (every transport it listens
        // on) into the advert cache, so the next resolve answers from it.
        if let (Some(dht), Some(key)) = (peer.dht(), conn.info().remote_node_key) {
            let found = dht.lookup_advert(&key, Some(&target)).await?;
            for e in &found.rejected {
                note(g, format!("* DHT record refused: {e}"));
            }
            if let Some(ad) = found.advert {
                event(
                    g,
                    "advert",
                    format!(
                        "Signed advert of {target}: seq {}, expires {}, {}",
                        ad.seq,
                        snap2p::identity::rfc3339(ad.expires_at),
                        ad.locators
                            .iter()
                            .map(|l| l.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    json!({"principal": target.to_string(), "seq": ad.seq,
                           "node_key": hex::encode(ad.node_key()), "expires_at": ad.expires_at,
                           "fetched": found.fetched,
                           "locators": ad.locators.iter().map(|l| l.to_string()).collect::<Vec<_>>()}),
                );
            }
        }
        Ok(())
    };
    let r = match tokio::time::timeout(Duration::from_secs(o.timeout), work).await {
        Ok(r) => r,
        Err(_) => Err(err(
            ErrorCode::Timeout,
            format!("{target} not resolved within {}s", o.timeout),
        )),
    };
    peer.close().await;
    r
}

// ---------------------------------------------------------------------------------------
// relay

/// With `--punch`, a relayed session is replaced by a direct one when a hole punch works
/// (PROTOCOL.md §32.6); otherwise (or on failure) the session is returned as it is.
async fn punch(g: &Global, relay: &Relay, conn: Connection, wanted: bool) -> Connection {
    if !wanted || !snap2p::relay::is_relayed(&conn.stats().transport) {
        return conn;
    }
    let t0 = std::time::Instant::now();
    // Status on stderr (stdout carries the echo or the chat); JSON events on stdout.
    let report = |text: String, value: serde_json::Value| {
        note(g, text);
        if g.json {
            event(g, "hole_punch", "", value);
        }
    };
    match relay.hole_punch(&conn).await {
        Ok(direct) => {
            let addr = direct
                .remote_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let ms = t0.elapsed().as_millis() as u64;
            report(
                format!("* direct connection to {addr} (hole punch, {ms} ms); the relayed session stays open"),
                json!({"direct": true, "remote": addr, "ms": ms}),
            );
            direct
        }
        Err(e) => {
            report(
                format!("* hole punch failed ({e}); staying relayed"),
                json!({"direct": false, "code": e.code.as_u64(), "reason": e.message}),
            );
            conn
        }
    }
}

/// The relay locator (without a principal) of a `--relay` value: `host:port` and
/// `relay://host:port` are a TCP relay, `ws://…`/`wss://…` (or `relay+ws://…`,
/// `relay+wss://…`) a WebSocket one (PROTOCOL.md §32.1); a trailing `/` is dropped.
fn relay_base(r: &str) -> String {
    let r = r.trim().trim_end_matches('/');
    if r.starts_with("relay://") || r.starts_with("relay+ws://") || r.starts_with("relay+wss://") {
        r.to_string()
    } else if r.starts_with("ws://") || r.starts_with("wss://") {
        format!("relay+{r}")
    } else {
        format!("relay://{r}")
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct RelayOpts {
    /// Port or address to listen on (TCP), or any listen locator. Optional when `--ws` or
    /// `--wss` is given.
    #[arg(required_unless_present_any = ["ws", "wss"])]
    pub addr: Option<String>,
    /// `--ws`/`--wss`: peers reach the relay as `relay+ws://HOST:PORT/PATH` or
    /// `relay+wss://…` (through HTTP proxies, on port 443).
    #[command(flatten)]
    pub web: crate::WebListenOpts,
    /// Only these principals may hold a reservation (default: any authenticated one).
    #[arg(long = "reserve-allow", value_name = "PRINCIPAL")]
    pub reserve_allow: Vec<String>,
    #[arg(long, default_value_t = RelayLimits::default().max_reservations)]
    pub max_reservations: usize,
    #[arg(long, default_value_t = RelayLimits::default().max_circuits)]
    pub max_circuits: usize,
    #[arg(long, default_value_t = RelayLimits::default().max_circuits_per_peer)]
    pub max_circuits_per_peer: usize,
    /// Bytes one circuit may carry, both directions (0: no limit).
    #[arg(long, default_value_t = RelayLimits::default().circuit_max_bytes)]
    pub circuit_bytes: u64,
    /// Seconds one circuit may stay open.
    #[arg(long, default_value_t = RelayLimits::default().circuit_max_duration.as_secs())]
    pub circuit_secs: u64,
    /// RESERVE and CONNECT requests per principal per minute (0: no limit).
    #[arg(long, default_value_t = RelayLimits::default().requests_per_min)]
    pub requests_per_min: u32,
    /// Keep every circuit on the streams of the two sessions (no spliced connections,
    /// PROTOCOL.md §32.3): for relays whose port only carries sessions.
    #[arg(long)]
    pub no_splice: bool,
    #[command(flatten)]
    pub peer: PeerOpts,
}

/// `snap2p relay PORT`: a relay node (RELAY-1, docs/PROTOCOL.md §32).
pub async fn relay(g: &Global, r: &RelayOpts) -> R<()> {
    let admission = if r.reserve_allow.is_empty() {
        RelayAdmission::Open
    } else {
        RelayAdmission::Allowlist(
            r.reserve_allow
                .iter()
                .map(|p| parse_principal(p))
                .collect::<R<Vec<_>>>()?,
        )
    };
    let module = Relay::new(RelayConfig {
        serve: true,
        admission,
        limits: RelayLimits {
            max_reservations: r.max_reservations,
            max_circuits: r.max_circuits,
            max_circuits_per_peer: r.max_circuits_per_peer,
            circuit_max_bytes: r.circuit_bytes,
            circuit_max_duration: Duration::from_secs(r.circuit_secs),
            requests_per_min: r.requests_per_min,
        },
        splice: !r.no_splice,
    });
    let peer = build_peer_with(g, &r.peer, r.web.tls_identity(), &[], module.clone()).await?;
    let addrs = r.web.locators(r.addr.as_deref());
    for addr in addrs {
        let before = peer.listen_locators().len();
        let bound = peer.listen(&addr).await?;
        let local = peer.listen_locators().into_iter().nth(before);
        // What peers pass to --relay: host:port for TCP, the ws:// or wss:// locator.
        let (shown, hint) = match local.as_ref().map(|l| l.scheme().as_str().to_string()) {
            Some(s) if s == "ws" || s == "wss" => {
                let l = local.as_ref().unwrap();
                (
                    l.to_string(),
                    format!("{s}://<this host>:{}{}", l.port(), l.path().unwrap_or("")),
                )
            }
            _ => (bound.to_string(), format!("<this host>:{}", bound.port())),
        };
        event(
            g,
            "relay",
            format!(
                "Relay on {shown} as {}\n  behind NAT: snap2p listen --relay {hint}\n  dial them: snap2p chat stacks:SP… --relay {hint}",
                peer.principal(),
            ),
            json!({"addr": shown, "principal": peer.principal().to_string()}),
        );
    }
    spawn_failure_report(g.clone(), peer.events());
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut last = module.stats();
    loop {
        tokio::select! {
            conn = peer.accept() => {
                // Sessions with the relay itself carry only RELAY-1 streams (the handler
                // serves them); keep them open, nothing else to do.
                if conn.is_none() { break }
            }
            _ = tokio::time::sleep(Duration::from_secs(5)) => {
                let now = module.stats();
                if now != last {
                    event(
                        g,
                        "relay_stats",
                        format!(
                            "* {} reservations, {} circuits open ({} in all), {} bytes forwarded, {} refused",
                            now.reservations, now.circuits, now.circuits_total, now.bytes_forwarded, now.refused
                        ),
                        json!({"reservations": now.reservations, "circuits": now.circuits,
                               "circuits_total": now.circuits_total,
                               "spliced_total": now.spliced_total,
                               "bytes_forwarded": now.bytes_forwarded, "refused": now.refused}),
                    );
                    last = now;
                }
            }
            _ = &mut ctrl_c => {
                note(g, "* shutting down");
                break;
            }
        }
    }
    peer.close().await;
    Ok(())
}
