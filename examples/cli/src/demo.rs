//! `snap2p demo`: a scripted tour on loopback, with no set-up. Every step is real (real
//! keys, real Noise, real TCP on 127.0.0.1) and checked; the demo exits non-zero if
//! any check fails, so CI runs it as a test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use snap2p::identity::{LocalWallet, Network};
use snap2p::{Connection, DialOptions, Error, ErrorCode, Peer, PeerConfig, Visibility};

use crate::out::{err, R};
use crate::Global;

struct Step {
    title: String,
    ok: bool,
    lines: Vec<String>,
    data: Value,
}

struct Transcript {
    json: bool,
    steps: Vec<Step>,
}

impl Transcript {
    fn begin(&mut self, title: &str) {
        if !self.json {
            println!("\n== {} ==", title);
        }
        self.steps.push(Step {
            title: title.to_string(),
            ok: true,
            lines: Vec::new(),
            data: json!({}),
        });
    }

    fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        if !self.json {
            println!("  {line}");
        }
        self.steps.last_mut().expect("a step").lines.push(line);
    }

    fn set(&mut self, key: &str, v: Value) {
        self.steps.last_mut().expect("a step").data[key] = v;
    }

    fn fail(&mut self, line: impl Into<String>) {
        let line = line.into();
        self.say(format!("FAILED: {line}"));
        self.steps.last_mut().expect("a step").ok = false;
    }

    /// Records a check: `ok` lines say what was seen, failures say what was expected.
    fn check(&mut self, ok: bool, line: impl Into<String>) {
        if ok {
            self.say(format!("ok: {}", line.into()));
        } else {
            self.fail(line);
        }
    }
}

/// Deterministic filler (SHA-256 in counter mode) so payloads need no RNG dependency.
fn payload(len: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut i: u64 = 0;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update([seed]);
        h.update(i.to_le_bytes());
        out.extend_from_slice(&h.finalize());
        i += 1;
    }
    out.truncate(len);
    out
}

fn short_hash(b: &[u8]) -> String {
    hex::encode(&Sha256::digest(b)[..8])
}

async fn mk(alias: Option<(&str, &str)>, cfg: PeerConfig) -> R<Peer> {
    let mut cfg = cfg;
    cfg.alias = alias.map(|(a, d)| (a.to_string(), d.to_string()));
    Peer::new(Arc::new(LocalWallet::generate(Network::Mainnet)), cfg).await
}

/// Every listening peer of the demo: accepts sessions and echoes every stream.
fn serve_echo(peer: Peer) {
    tokio::spawn(async move {
        while let Some(conn) = peer.accept().await {
            tokio::spawn(async move {
                while let Ok(s) = conn.accept_stream().await {
                    tokio::spawn(async move {
                        while let Ok(Some(chunk)) = s.read_chunk(64 * 1024).await {
                            if s.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                        let _ = s.finish();
                    });
                }
            });
        }
    });
}

/// Sends `data` on a new stream labelled `label`, returns the echo and the time taken.
async fn echo(conn: &Connection, label: &str, data: &[u8]) -> R<(Vec<u8>, Duration)> {
    let t = Instant::now();
    let s = conn.open_stream(Some(label)).await?;
    let (w, r) = tokio::join!(
        async {
            s.write_all(data).await?;
            s.finish()
        },
        s.read_all(data.len() + 1)
    );
    w?;
    Ok((r?, t.elapsed()))
}

async fn alias_of(conn: &Connection) -> Option<String> {
    for _ in 0..40 {
        if let Some(c) = conn.remote_alias() {
            return Some(c.alias);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

fn code_of(r: &Result<Connection, Error>) -> Option<ErrorCode> {
    r.as_ref().err().map(|e| e.code)
}

/// Bounded: no step of the demo may hang CI.
async fn within<T>(secs: u64, f: impl std::future::Future<Output = R<T>>) -> R<T> {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| Err(err(ErrorCode::Timeout, format!("no answer within {secs}s"))))
}

pub async fn run(g: &Global) -> R<()> {
    let mut t = Transcript {
        json: g.json,
        steps: Vec::new(),
    };
    let started = Instant::now();
    let result = tour(&mut t).await;
    if let Err(e) = &result {
        // An error outside a check (a peer failed to start): record it in the last step.
        if t.steps.is_empty() {
            t.begin("setup");
        }
        t.fail(format!("{e}"));
    }
    let ok = t.steps.iter().all(|s| s.ok);
    let passed = t.steps.iter().filter(|s| s.ok).count();
    if g.json {
        let steps: Vec<Value> = t
            .steps
            .iter()
            .map(|s| json!({"title": s.title, "ok": s.ok, "lines": s.lines, "data": s.data}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "ok": ok, "steps": steps, "elapsed_ms": started.elapsed().as_millis() as u64
            }))
            .expect("serializable")
        );
    } else {
        println!(
            "\ndemo {}: {passed}/{} steps ok in {:.2}s",
            if ok { "complete" } else { "FAILED" },
            t.steps.len(),
            started.elapsed().as_secs_f64()
        );
    }
    if ok {
        Ok(())
    } else {
        let failed: Vec<&str> = t
            .steps
            .iter()
            .filter(|s| !s.ok)
            .map(|s| s.title.as_str())
            .collect();
        Err(err(
            ErrorCode::Unspecified,
            format!("demo steps failed: {}", failed.join(", ")),
        ))
    }
}

async fn tour(t: &mut Transcript) -> R<()> {
    // 1. Identities -------------------------------------------------------------------
    t.begin("1. Five peers, each a Stacks principal with a fresh wallet");
    let alice = mk(Some(("alice", "Alice")), PeerConfig::default()).await?;
    let bob = mk(Some(("bob", "Bob the Builder")), PeerConfig::default()).await?;
    let mut carol_cfg = PeerConfig::default().with_visibility(Visibility::Private);
    carol_cfg.allowlist = vec![alice.principal().clone()];
    let carol = mk(Some(("carol", "Carol")), carol_cfg).await?;
    let mut dave_cfg = PeerConfig::default().with_visibility(Visibility::Stealth);
    dave_cfg.allowlist = vec![alice.principal().clone()];
    let dave = mk(Some(("dave", "Dave")), dave_cfg).await?;
    let erin = mk(Some(("erin", "Erin")), PeerConfig::default()).await?;
    let mallory = mk(None, PeerConfig::default()).await?;
    let mut addrs = Vec::new();
    for (name, p, listens) in [
        ("alice", &alice, true),
        ("bob", &bob, true),
        ("carol", &carol, true),
        ("dave", &dave, true),
        ("erin", &erin, false),
        ("mallory", &mallory, false),
    ] {
        let addr = if listens {
            let a = p.listen("127.0.0.1:0").await?;
            serve_echo(p.clone());
            a.to_string()
        } else {
            "(dial only)".to_string()
        };
        t.say(format!(
            "{name:<8} {}  {:<8} {addr}",
            p.principal(),
            format!("{:?}", p.visibility()).to_lowercase()
        ));
        t.set(
            name,
            json!({"principal": p.principal().to_string(), "addr": addr,
                   "visibility": format!("{:?}", p.visibility()).to_lowercase()}),
        );
        addrs.push(addr);
    }
    let (alice_addr, carol_addr, dave_addr) = (&addrs[0], &addrs[2], &addrs[3]);

    // 2. Authentication ---------------------------------------------------------------
    t.begin("2. bob dials alice: Noise XX + wallet-signed attestations, then AliasCards");
    let bob_alice = within(10, bob.dial(alice_addr)).await?;
    let seen = bob_alice.remote_principal().clone();
    let seen_alias = alias_of(&bob_alice).await;
    t.say(format!(
        "bob sees   {} alias {:?}",
        seen,
        seen_alias.as_deref().unwrap_or("-")
    ));
    t.check(
        &seen == alice.principal() && seen_alias.as_deref() == Some("alice"),
        "bob authenticated alice's principal and alias",
    );
    // Alice's side completes when bob's last handshake message (his AUTH_OK) arrives, a
    // moment after bob's dial returns: wait for it, bounded.
    let mut alice_bob = None;
    for _ in 0..200 {
        alice_bob = alice
            .connections()
            .into_iter()
            .find(|c| c.remote_principal() == bob.principal());
        if alice_bob.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match alice_bob {
        Some(c) => {
            let a = alias_of(&c).await;
            t.say(format!(
                "alice sees {} alias {:?}",
                c.remote_principal(),
                a.as_deref().unwrap_or("-")
            ));
            t.check(
                a.as_deref() == Some("bob"),
                "alice authenticated bob's principal and alias",
            );
        }
        None => t.fail("alice has no session with bob"),
    }
    t.set("session_id", json!(hex::encode(bob_alice.session_id())));

    // 3. Streams ----------------------------------------------------------------------
    t.begin("3. Three streams at once on one session, echoed and checked by SHA-256");
    let sizes = [
        ("greeting", 11usize),
        ("blob-64k", 64 << 10),
        ("blob-4m", 4 << 20),
    ];
    let mut jobs = Vec::new();
    for (i, (label, len)) in sizes.iter().enumerate() {
        let data = if i == 0 {
            b"hello alice".to_vec()
        } else {
            payload(*len, i as u8)
        };
        let conn = bob_alice.clone();
        let label = label.to_string();
        jobs.push(tokio::spawn(async move {
            let r = within(30, echo(&conn, &label, &data)).await;
            (label, data, r)
        }));
    }
    let mut streams = Vec::new();
    for j in jobs {
        let (label, data, r) = j
            .await
            .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        match r {
            Ok((back, took)) => {
                let same = back == data;
                let mbps = (data.len() * 2) as f64 / took.as_secs_f64().max(1e-6) / 1e6;
                t.check(
                    same,
                    format!(
                        "stream {label:<9} sent {:>8} B, echoed {:>8} B, sha256 {} {} ({:.1} ms, {:.1} MB/s)",
                        data.len(),
                        back.len(),
                        short_hash(&data),
                        if same { "==" } else { "!=" },
                        took.as_secs_f64() * 1e3,
                        mbps
                    ),
                );
                streams.push(
                    json!({"label": label, "bytes": data.len(), "echoed": back.len(),
                                    "sha256": hex::encode(Sha256::digest(&data)), "match": same,
                                    "ms": took.as_secs_f64() * 1e3}),
                );
            }
            Err(e) => t.fail(format!("stream {label}: {e}")),
        }
    }
    t.set("streams", json!(streams));

    // 4. Private ----------------------------------------------------------------------
    t.begin("4. carol is Private with an allowlist of one: alice");
    match within(10, alice.dial(carol_addr)).await {
        Ok(c) => {
            let r = within(10, echo(&c, "hi-carol", b"hi carol")).await;
            t.check(
                r.as_ref().is_ok_and(|(b, _)| b == b"hi carol"),
                format!(
                    "alice (allowed) got in and exchanged data with {}",
                    c.remote_principal()
                ),
            );
        }
        Err(e) => t.fail(format!("alice was refused: {e}")),
    }
    let r = within(10, bob.dial(carol_addr)).await;
    let code = code_of(&r);
    t.check(
        code == Some(ErrorCode::NotAllowed),
        format!("bob (not on the allowlist) refused: {}", show(&r)),
    );
    t.set("bob_refused", json!(code.map(|c| c.name())));

    // 5. PX-1 -------------------------------------------------------------------------
    t.begin("5. erin dials bob by principal only: PX-1 asks their mutual Public friend alice");
    within(10, erin.dial(alice_addr)).await?;
    t.say(format!("erin knows one locator: alice at {alice_addr}"));
    let target = bob.principal().to_string();
    t.say(format!("erin dials {target}"));
    match within(15, erin.dial(&target)).await {
        Ok(c) => {
            let addr = c.remote_addr().map(|a| a.to_string()).unwrap_or_default();
            let same = c.remote_principal() == bob.principal();
            t.check(
                same,
                format!(
                    "reached {} at {addr}, authenticated as bob",
                    c.remote_principal()
                ),
            );
            let r = within(10, echo(&c, "px1-hello", b"found you")).await;
            t.check(
                r.as_ref().is_ok_and(|(b, _)| b == b"found you"),
                "exchanged data with bob over the PX-1-found session",
            );
            t.set("resolved", json!({"principal": target, "addr": addr}));
        }
        Err(e) => t.fail(format!(
            "PX-1 could not reach bob through alice: {} {}",
            e.code, e.message
        )),
    }

    // 6. Stealth ----------------------------------------------------------------------
    t.begin("6. dave is Stealth: nothing but a KNOCK with a valid invite gets an answer");
    let r = within(10, mallory.dial(dave_addr)).await;
    t.check(
        code_of(&r) == Some(ErrorCode::InviteRequired),
        format!("mallory without an invite: {}", show(&r)),
    );
    let bogus = {
        let mut c = DialOptions::default();
        c.invite = Some(vec![0x42; 32]);
        c
    };
    let r = within(10, mallory.dial_with(dave_addr, bogus)).await;
    t.check(
        code_of(&r) == Some(ErrorCode::InviteInvalid),
        format!("mallory with a made-up invite: {}", show(&r)),
    );
    let inv = dave.create_invite(Some(600), true)?;
    t.say(format!(
        "dave creates one-time invite {} and gives it to alice out of band",
        inv.id
    ));
    let with = |tok: &[u8]| {
        DialOptions::default()
            .invite(tok.to_vec())
            .expect(dave.principal().clone())
    };
    match within(10, alice.dial_with(dave_addr, with(&inv.token))).await {
        Ok(c) => {
            let r = within(10, echo(&c, "hi-dave", b"hi dave")).await;
            t.check(
                r.as_ref().is_ok_and(|(b, _)| b == b"hi dave"),
                format!(
                    "alice (invited, allowlisted) got in: {}",
                    c.remote_principal()
                ),
            );
        }
        Err(e) => t.fail(format!("alice with a valid invite was refused: {e}")),
    }
    let r = within(10, mallory.dial_with(dave_addr, with(&inv.token))).await;
    t.check(
        code_of(&r) == Some(ErrorCode::InviteInvalid),
        format!("mallory replaying the used one-time invite: {}", show(&r)),
    );
    let inv2 = dave.create_invite(Some(600), false)?;
    let r = within(10, mallory.dial_with(dave_addr, with(&inv2.token))).await;
    t.check(
        code_of(&r) == Some(ErrorCode::NotAllowed),
        format!(
            "mallory with a leaked valid invite but not allowlisted: {}",
            show(&r)
        ),
    );

    // 7. Close ------------------------------------------------------------------------
    t.begin("7. Everyone closes");
    for p in [&alice, &bob, &carol, &dave, &erin, &mallory] {
        p.close().await;
    }
    t.check(
        alice.connections().is_empty() && bob.connections().is_empty(),
        "all sessions closed",
    );
    Ok(())
}

fn show(r: &Result<Connection, Error>) -> String {
    match r {
        Ok(c) => format!("UNEXPECTEDLY CONNECTED to {}", c.remote_principal()),
        Err(e) => format!("refused with {} ({})", e.code, e.code.describe()),
    }
}
