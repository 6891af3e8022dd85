//! The Rust runner of the cross-language interop matrix (contract in docs/INTEROP.md).
//!
//! `interop_runner listen [--visibility V] [--allow P]… [--alias A] [--invite] [--bootstrap LOC] [--sign-form digest|message]
//!                        [--ws | --wss --tls-cert PEM --tls-key PEM]
//!                        [--permit RULES] [--grant-owner-mnemonic M] [--relay ADDR]`
//! `interop_runner dial --target T [--via LOC] [--invite HEX] [--streams N] [--bytes B]
//!                      [--expect-alias A] [--expect-code C] [--expect-principal P] [--sign-form F]
//!                      [--tls-root PEM]
//!                      [--grant-label L --grant-owner-mnemonic M] [--expect-transport T]`
//! `interop_runner relay` (serves RELAY-1 on 127.0.0.1:0 for the relay scenario)
//!
//! The signer is implemented here, in the runner's language, as a host would: a struct
//! implementing `WalletSigner` that holds its own key.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rand::RngCore;
use sha2::{Digest, Sha256};
use snap2p::identity::{
    stacks_message_hash, GrantRequest, LocalWallet, Network, PermissionGrant, Principal,
    SignRequest, SignatureForm, WalletSigner,
};
use snap2p::policy::PermissionRules;
use snap2p::transport::{WsConfig, WsTransport};
use snap2p::{Connection, DialOptions, Error, ErrorCode, Peer, PeerConfig, Visibility};
use tokio::io::AsyncBufReadExt;

/// A host-side signer: owns a secp256k1 key and answers sign requests.
struct RunnerSigner {
    wallet: LocalWallet,
    form: SignatureForm,
}

#[async_trait::async_trait]
impl WalletSigner for RunnerSigner {
    fn principal(&self) -> Principal {
        self.wallet.principal()
    }
    fn signature_form(&self) -> SignatureForm {
        self.form
    }
    async fn sign(&self, request: SignRequest) -> Result<Vec<u8>, Error> {
        let digest = match request {
            SignRequest::Digest(d) => d,
            SignRequest::Message(m) => stacks_message_hash(&m),
        };
        Ok(self.wallet.sign_digest(&digest).to_vec())
    }
}

struct Args(Vec<String>);

impl Args {
    fn value(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1).cloned())
    }
    fn values(&self, name: &str) -> Vec<String> {
        self.0
            .windows(2)
            .filter(|w| w[0] == name)
            .map(|w| w[1].clone())
            .collect()
    }
    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
}

fn emit(v: serde_json::Value) {
    println!("{v}");
}

async fn make_peer(args: &Args) -> Peer {
    let form = match args.value("--sign-form").as_deref() {
        Some("message") => SignatureForm::StacksMessage,
        _ => SignatureForm::Digest,
    };
    let signer = Arc::new(RunnerSigner {
        wallet: LocalWallet::generate(Network::Mainnet),
        form,
    });
    let visibility: Visibility = args
        .value("--visibility")
        .unwrap_or_else(|| "public".into())
        .parse()
        .expect("visibility");
    let allow: Vec<Principal> = args
        .values("--allow")
        .iter()
        .map(|p| Principal::parse(p).expect("principal"))
        .collect();
    let cfg = {
        let mut c = PeerConfig::default();
        c.visibility = visibility;
        c.allowlist_gate = Some(visibility == Visibility::Private || !allow.is_empty());
        c.allowlist = allow;
        // grant: `--permit RULES` (the rules' text form, PROTOCOL.md §33.1).
        // relay: `interop_runner relay` serves RELAY-1 (PROTOCOL.md §32).
        if args.0.first().map(String::as_str) == Some("relay") {
            c.relay = snap2p::relay::RelayConfig::server();
        }
        c.permissions = args
            .value("--permit")
            .map(|r| PermissionRules::parse(&r).expect("--permit"));
        // `--v1`: the handshake of three round trips only, as a node released before hs2
        // (PROTOCOL.md §5.8): a listener that closes on an offer, a dialer that makes none.
        c.hs2 = !args.flag("--v1");
        c
    };
    let mut builder = Peer::builder(cfg).signer(signer);
    // wss: the listener's certificate and key, the dialer's extra trusted root (the core's
    // WebSocket transport with them replaces the built-in one, as the CLI's --tls-* do).
    let (cert, key, root) = (
        args.value("--tls-cert"),
        args.value("--tls-key"),
        args.value("--tls-root"),
    );
    if cert.is_some() || key.is_some() || root.is_some() {
        let mut ws = WsConfig::default();
        if let (Some(cert), Some(key)) = (&cert, &key) {
            ws = ws
                .with_tls_identity_pem_files(Path::new(cert), Path::new(key))
                .expect("--tls-cert/--tls-key");
        }
        if let Some(root) = &root {
            ws = ws.with_root_pem_file(Path::new(root)).expect("--tls-root");
        }
        builder = builder.transport(Arc::new(WsTransport::new(ws).expect("ws transport")));
    }
    let peer = builder.build().await.expect("peer");
    // grant: the owner wallet (account 0 of the mnemonic) whose grants this node honours.
    if args.0.first().map(String::as_str) == Some("listen") {
        if let Some(m) = args.value("--grant-owner-mnemonic") {
            peer.permissions().add_owner(owner_wallet(&m).principal());
        }
    }
    if let Some(alias) = args.value("--alias") {
        peer.set_alias(&alias, &format!("{alias} (rust)"))
            .await
            .expect("alias");
    }
    peer
}

/// The grant owner's wallet: account 0 of `mnemonic` on mainnet.
fn owner_wallet(mnemonic: &str) -> LocalWallet {
    LocalWallet::from_mnemonic(mnemonic, 0, Network::Mainnet).expect("--grant-owner-mnemonic")
}

/// Opens `label`, writes a few bytes and reads the answer: the code it failed with (0: served).
async fn probe(conn: &Connection, label: &str) -> u64 {
    let run = async {
        let s = conn.open_stream(Some(label)).await?;
        s.write_all(b"probe").await?;
        s.finish()?;
        s.read_all(128).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(20), run).await {
        Ok(Ok(_)) => 0,
        Ok(Err(e)) => e.code.as_u64(),
        Err(_) => u64::MAX,
    }
}

/// Reads a whole stream, answers with the hex SHA-256 of it.
async fn serve(conn: Connection) {
    while let Ok(stream) = conn.accept_stream().await {
        let conn = conn.clone();
        tokio::spawn(async move {
            let mut h = Sha256::new();
            let mut n = 0u64;
            while let Ok(Some(chunk)) = stream.read_chunk(1 << 16).await {
                n += chunk.len() as u64;
                h.update(&chunk);
            }
            let digest = hex::encode(h.finalize());
            let _ = stream.write_all(digest.as_bytes()).await;
            let _ = stream.finish();
            // `alias`: the dialer's AliasCard, if it sent one (it follows AUTH_OK, before
            // any stream).
            emit(
                serde_json::json!({"event":"stream","label":stream.label(),"bytes":n,
                "sha256":digest,"alias":conn.remote_alias().map(|c| c.alias)}),
            );
        });
    }
}

/// Where `listen --ws` listens; its locator is `ws://127.0.0.1:PORT/interop`.
const WS_LISTEN: &str = "ws://127.0.0.1:0/interop";
/// Where `listen --wss` listens; its locator is `wss://localhost:PORT/interop` (the name
/// the test certificate is for).
const WSS_LISTEN: &str = "wss://127.0.0.1:0/interop";

async fn listen(args: Args) {
    let peer = make_peer(&args).await;
    // `--ws` / `--wss`: a WebSocket listener (docs/INTEROP.md, scenarios "ws", "wss")
    // instead of TCP.
    let wss = args.flag("--wss");
    let ws = args.flag("--ws") || wss;
    let listen_on = if wss {
        WSS_LISTEN
    } else if ws {
        WS_LISTEN
    } else {
        "127.0.0.1:0"
    };
    peer.listen(listen_on).await.expect("listen");
    let locator = peer.listen_locators().pop().expect("a listen locator");
    let locator = if wss {
        locator
            .to_string()
            .replacen("wss://127.0.0.1:", "wss://localhost:", 1)
    } else {
        locator.to_string()
    };
    // relay: `--relay ADDR` also reserves on the relay at ADDR; the printed locator is then
    // the relayed one, `relay://ADDR/SP…`.
    let locator = match args.value("--relay") {
        Some(r) => {
            peer.listen(&format!("relay://{r}"))
                .await
                .expect("relay listen");
            peer.listen_locators()
                .into_iter()
                .map(|l| l.to_string())
                .find(|l| l.starts_with("relay://"))
                .expect("a relay:// listen locator")
        }
        None => locator,
    };
    let invite = args.flag("--invite").then(|| {
        peer.create_invite(Some(3600), false)
            .expect("invite")
            .token_hex()
    });
    let mut _bootstrap = None;
    if let Some(b) = args.value("--bootstrap") {
        _bootstrap = Some(peer.dial(&b).await.expect("bootstrap"));
    }
    emit(serde_json::json!({
        "event": "ready",
        "principal": peer.principal().to_string(),
        "locator": locator,
        "invite": invite,
    }));
    let p2 = peer.clone();
    tokio::spawn(async move {
        while let Some(conn) = p2.accept().await {
            let stats = conn.stats();
            emit(
                serde_json::json!({"event":"connection","principal":conn.remote_principal().to_string(),
                "transport":stats.transport.as_str(),"hs2":stats.hs2,
                "handshakes_failed":p2.stats().handshakes_failed.values().sum::<u64>()}),
            );
            tokio::spawn(serve(conn));
        }
    });
    // Serve until the orchestrator closes our stdin.
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = lines.next_line().await {}
    peer.close().await;
}

async fn dial(args: Args) -> bool {
    let peer = make_peer(&args).await;
    let target = args.value("--target").expect("--target");
    let started = Instant::now();
    let mut _via = None;
    if let Some(v) = args.value("--via") {
        _via = Some(peer.dial(&v).await.expect("via"));
    }
    let opts = {
        let mut c = DialOptions::default();
        c.invite = args
            .value("--invite")
            .map(|h| hex::decode(h).expect("invite hex"));
        c
    };
    let expect_code = args
        .value("--expect-code")
        .map(|c| c.parse::<u64>().unwrap());
    let conn = match peer.dial_with(&target, opts).await {
        Ok(c) => c,
        Err(e) => {
            let ok = expect_code == Some(e.code.as_u64());
            emit(
                serde_json::json!({"event":"result","ok":ok,"code":e.code.as_u64(),"error":e.to_string()}),
            );
            return ok;
        }
    };
    if expect_code.is_some() {
        emit(
            serde_json::json!({"event":"result","ok":false,"code":null,"error":"connected but an error was expected"}),
        );
        return false;
    }
    // grant: `--grant-label L --grant-owner-mnemonic M`: opening L must be refused (20);
    // then a grant of L to our principal, signed by the owner through a host-side signer
    // of this language, is presented, and the streams below are labelled L.
    let grant_label = args.value("--grant-label");
    let mut refused_code = None;
    if let Some(label) = &grant_label {
        let code = probe(&conn, label).await;
        refused_code = Some(code);
        let owner = RunnerSigner {
            wallet: owner_wallet(
                &args
                    .value("--grant-owner-mnemonic")
                    .expect("--grant-owner-mnemonic"),
            ),
            form: SignatureForm::StacksMessage,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let presented = async {
            let grant = PermissionGrant::issue(
                &owner,
                GrantRequest {
                    holder: peer.principal().clone(),
                    labels: vec![label.clone()],
                    delegable: false,
                    parent: None,
                    ttl_secs: 3600,
                },
                now,
            )
            .await?;
            conn.present_grant(&grant.encode()).await
        }
        .await;
        if code != 20 || presented.is_err() {
            emit(
                serde_json::json!({"event":"result","ok":false,"refused_code":code,
                "error":format!("refusal code {code} (want 20); present: {:?}", presented.err())}),
            );
            return false;
        }
    }
    let streams: usize = args.value("--streams").map_or(1, |s| s.parse().unwrap());
    let bytes: usize = args.value("--bytes").map_or(1024, |s| s.parse().unwrap());
    let mut tasks = Vec::new();
    for i in 0..streams {
        let conn = conn.clone();
        let label = grant_label
            .clone()
            .unwrap_or_else(|| format!("interop-{i}"));
        tasks.push(tokio::spawn(async move {
            let s = conn.open_stream(Some(&label)).await?;
            let mut h = Sha256::new();
            let mut left = bytes;
            let mut buf = vec![0u8; 65536];
            while left > 0 {
                let n = left.min(buf.len());
                rand::thread_rng().fill_bytes(&mut buf[..n]);
                h.update(&buf[..n]);
                s.write_all(&buf[..n]).await?;
                left -= n;
            }
            s.finish()?;
            let reply = s.read_all(128).await?;
            let mine = hex::encode(h.finalize());
            Ok::<_, Error>((mine.as_bytes() == reply.as_slice(), mine))
        }));
    }
    let mut results = Vec::new();
    let mut all_ok = true;
    for t in tasks {
        match t.await.expect("task") {
            Ok((ok, digest)) => {
                all_ok &= ok;
                results.push(serde_json::json!({"sha256":digest,"match":ok}));
            }
            Err(e) => {
                all_ok = false;
                results.push(serde_json::json!({"error":e.to_string()}));
            }
        }
    }
    let alias = conn.remote_alias().map(|c| c.alias);
    if let Some(expected) = args.value("--expect-alias") {
        // The card follows AUTH_OK; give it a moment to arrive.
        let mut alias_now = alias.clone();
        for _ in 0..50 {
            if alias_now.as_deref() == Some(expected.as_str()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            alias_now = conn.remote_alias().map(|c| c.alias);
        }
        all_ok &= alias_now.as_deref() == Some(expected.as_str());
    }
    if let Some(p) = args.value("--expect-principal") {
        all_ok &= conn.remote_principal().to_string() == p;
    }
    let stats = conn.stats();
    let transport = stats.transport.as_str().to_string();
    if let Some(t) = args.value("--expect-transport") {
        all_ok &= transport == t;
    }
    emit(serde_json::json!({
        "event": "result",
        "ok": all_ok,
        "principal": conn.remote_principal().to_string(),
        "alias": conn.remote_alias().map(|c| c.alias),
        "streams": results,
        "refused_code": refused_code,
        "transport": transport,
        "hs2": stats.hs2,
        "ms": started.elapsed().as_millis() as u64,
    }));
    conn.close(ErrorCode::Ok, "done");
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn.closed()).await;
    all_ok
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    let args = Args(args);
    match mode.as_str() {
        "listen" | "relay" => listen(args).await,
        "dial" => {
            if !dial(args).await {
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("usage: interop_runner listen|dial [options] (see docs/INTEROP.md)");
            std::process::exit(2);
        }
    }
}
