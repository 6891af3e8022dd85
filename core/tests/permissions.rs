//! Permissions (PROTOCOL.md §33): rules on a node (which stream labels a principal may open,
//! per-principal stream limits), PermissionGrants signed by a wallet in either signature
//! form and presented after AUTH, revocation, one level of delegation, run-time changes
//! without dropping sessions, and the shared vectors (`vectors/grants.json`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use snap2p::identity::{
    GrantRequest, LabelPattern, LocalWallet, Network, NetworkFilter, PermissionGrant, Principal,
    SignatureForm,
};
use snap2p::policy::{PermissionRules, Permissions};
use snap2p::{Connection, ErrorCode, Peer, PeerConfig, Visibility};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(20);

fn vectors() -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/grants.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn wallet(v: &Json, account: u32, form: &str) -> LocalWallet {
    let form = match form {
        "digest" => SignatureForm::Digest,
        "stacks_message" => SignatureForm::StacksMessage,
        other => panic!("form {other}"),
    };
    LocalWallet::from_mnemonic(v["mnemonic"].as_str().unwrap(), account, Network::Mainnet)
        .unwrap()
        .with_form(form)
}

fn code_name(r: Result<impl std::fmt::Debug, snap2p::Error>) -> Option<&'static str> {
    r.err().map(|e| e.code.name())
}

#[tokio::test]
async fn vectors_valid_grants_are_recomputed_from_their_inputs() {
    let v = vectors();
    let grants = v["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 4);
    for g in grants {
        let name = g["name"].as_str().unwrap();
        let w = wallet(
            &v,
            g["issuer_account"].as_u64().unwrap() as u32,
            g["form"].as_str().unwrap(),
        );
        let parent = hex::decode(g["parent_hex"].as_str().unwrap()).unwrap();
        let issued = PermissionGrant::issue_with_nonce(
            &w,
            GrantRequest {
                holder: Principal::parse(g["holder"].as_str().unwrap()).unwrap(),
                labels: serde_json::from_value(g["labels"].clone()).unwrap(),
                delegable: g["delegable"].as_bool().unwrap(),
                parent: (!parent.is_empty()).then_some(parent),
                ttl_secs: g["expires_at"].as_i64().unwrap() - g["issued_at"].as_i64().unwrap(),
            },
            g["issued_at"].as_i64().unwrap(),
            hex::decode(g["nonce_hex"].as_str().unwrap()).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(hex::encode(issued.encode()), g["wire_hex"], "{name}");
        assert_eq!(
            hex::encode(issued.signing_bytes()),
            g["signing_bytes_hex"],
            "{name}"
        );
        assert_eq!(issued.message_text(), g["message_text"], "{name}");
        assert_eq!(
            hex::encode(issued.signed_digest()),
            g["signed_digest_hex"],
            "{name}"
        );
        assert_eq!(issued.id(), g["id"], "{name}");
        assert_eq!(issued.issuer.to_string(), g["issuer"], "{name}");
        let wire = hex::decode(g["wire_hex"].as_str().unwrap()).unwrap();
        let decoded = PermissionGrant::decode(&wire).unwrap();
        assert_eq!(decoded, issued, "{name}");
        decoded
            .verify(g["verify_now"].as_i64().unwrap(), NetworkFilter::ANY)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // Either form's signature is over its own hash: flipping `sf` breaks it.
        let mut other = decoded.clone();
        other.form = match other.form {
            SignatureForm::Digest => SignatureForm::StacksMessage,
            SignatureForm::StacksMessage => SignatureForm::Digest,
        };
        assert_eq!(
            code_name(other.verify(g["verify_now"].as_i64().unwrap(), NetworkFilter::ANY)),
            Some("ERR_AUTH_INVALID"),
            "{name}: form swapped"
        );
    }
}

#[test]
fn vectors_negative_grants_fail_with_their_code() {
    let v = vectors();
    let neg = v["negative"].as_array().unwrap();
    assert!(neg.len() >= 10);
    for n in neg {
        let name = n["name"].as_str().unwrap();
        let wire = hex::decode(n["wire_hex"].as_str().unwrap()).unwrap();
        let now = n["now"].as_i64().unwrap();
        let got = PermissionGrant::decode(&wire).and_then(|g| g.verify(now, NetworkFilter::ANY));
        assert_eq!(code_name(got), n["error"].as_str(), "{name}");
    }
}

#[test]
fn vectors_node_decisions() {
    let v = vectors();
    for n in v["node"].as_array().unwrap() {
        let name = n["name"].as_str().unwrap();
        let grant = v["grants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == n["grant"])
            .unwrap();
        let perms = Permissions::new();
        for o in n["owners"].as_array().unwrap() {
            perms.add_owner(Principal::parse(o.as_str().unwrap()).unwrap());
        }
        for r in n["revoked"].as_array().unwrap() {
            perms.revoke(r.as_str().unwrap()).unwrap();
        }
        let wire = hex::decode(grant["wire_hex"].as_str().unwrap()).unwrap();
        let presenter = Principal::parse(n["presenter"].as_str().unwrap()).unwrap();
        let got = perms.verify_grant(
            &wire,
            &presenter,
            n["now"].as_i64().unwrap(),
            NetworkFilter::ANY,
        );
        assert_eq!(code_name(got), n["error"].as_str(), "{name}");
    }
}

#[test]
fn label_patterns_and_rule_lines() {
    let p = |s| LabelPattern::parse(s).unwrap();
    assert_eq!(p("*"), LabelPattern::Any);
    assert!(p("*").matches(None));
    assert!(!p("files").matches(None));
    assert!(p("files").matches(Some("files")));
    assert!(!p("files").matches(Some("files2")));
    assert!(p("chat*").matches(Some("chat/room")));
    assert!(!p("chat*").matches(Some("cha")));
    assert!(p("files/*").covers(&p("files/photos")));
    assert!(!p("files/photos").covers(&p("files/*")));
    for bad in ["", "a*b", "**", "x\ny", &"a".repeat(257)] {
        assert_eq!(
            code_name(LabelPattern::parse(bad)),
            Some("ERR_INVALID_ARGUMENT"),
            "{bad:?}"
        );
    }
    let who = LocalWallet::generate(Network::Mainnet).principal();
    let rules = PermissionRules::parse(&format!(
        "# friends\n{who}:files,chat* streams=2 rate=1000\n\n*:catalog\n{who}:admin\n"
    ))
    .unwrap();
    let r = &rules.by_principal[&who];
    assert_eq!(r.labels, vec![p("files"), p("chat*"), p("admin")]);
    assert_eq!((r.max_streams, r.send_rate), (Some(2), Some(1000)));
    assert_eq!(rules.any.as_ref().unwrap().labels, vec![p("catalog")]);
    for bad in [
        "files",
        "stacks:SPX:files",
        &format!("{who}"),
        &format!("{who}:files streams=x"),
        &format!("{who}:files color=red"),
        "*:a*b",
    ] {
        let e = PermissionRules::parse(bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad:?}");
        assert!(e.message.contains("line 1"), "{}", e.message);
    }
}

// ---------------------------------------------------------------------------------------
// Over the network

/// A listener that answers every stream it is handed (digest of what it read), signed by
/// `owner`, with `rules`.
async fn listener(
    owner: &LocalWallet,
    rules: Option<PermissionRules>,
    visibility: Visibility,
    allow: &[Principal],
) -> (Peer, String) {
    let mut cfg = PeerConfig::default();
    cfg.visibility = visibility;
    cfg.allowlist = allow.to_vec();
    cfg.permissions = rules;
    let p = Peer::new(Arc::new(owner.clone()), cfg).await.unwrap();
    let addr = p.listen("127.0.0.1:0").await.unwrap();
    common::serve_digest(&p);
    (p, addr.to_string())
}

async fn dialer(w: &LocalWallet, addr: &str) -> (Peer, Connection) {
    let p = Peer::new(Arc::new(w.clone()), PeerConfig::default())
        .await
        .unwrap();
    let c = timeout(T, p.dial(addr)).await.unwrap().unwrap();
    (p, c)
}

/// Opens `label`, sends a few bytes and reads the answer: Ok when the listener served the
/// stream, else the code it was refused or reset with.
async fn open(conn: &Connection, label: Option<&str>) -> Result<(), ErrorCode> {
    let run = async {
        let s = conn.open_stream(label).await?;
        s.write_all(b"hello").await?;
        s.finish()?;
        s.read_all(1024).await
    };
    match timeout(T, run).await.expect("stream timed out") {
        Ok(answer) => {
            assert_eq!(answer.len(), 40, "digest ‖ count");
            Ok(())
        }
        Err(e) => Err(e.code),
    }
}

fn rules(text: &str) -> PermissionRules {
    PermissionRules::parse(text).unwrap()
}

fn w() -> LocalWallet {
    LocalWallet::generate(Network::Mainnet)
}

fn sm(w: &LocalWallet) -> LocalWallet {
    w.clone().with_form(SignatureForm::StacksMessage)
}

#[tokio::test]
async fn no_rules_allow_every_label() {
    let (owner, friend) = (w(), w());
    let (_l, addr) = listener(&owner, None, Visibility::Public, &[]).await;
    let (_d, c) = dialer(&friend, &addr).await;
    for label in [Some("files"), Some("admin"), None] {
        assert_eq!(open(&c, label).await, Ok(()), "{label:?}");
    }
}

#[tokio::test]
async fn rules_permit_their_labels_and_refuse_the_rest() {
    let (owner, friend, stranger) = (w(), w(), w());
    let text = format!("{}:files,chat*\n*:catalog\n", friend.principal());
    let (l, addr) = listener(&owner, Some(rules(&text)), Visibility::Public, &[]).await;
    let (_d1, f) = dialer(&friend, &addr).await;
    let (_d2, s) = dialer(&stranger, &addr).await;
    assert_eq!(open(&f, Some("files")).await, Ok(()));
    assert_eq!(open(&f, Some("chat/room-1")).await, Ok(()));
    assert_eq!(open(&f, Some("catalog")).await, Ok(()), "* applies to all");
    assert_eq!(open(&f, Some("admin")).await, Err(ErrorCode::StreamRefused));
    assert_eq!(
        open(&f, Some("files2")).await,
        Err(ErrorCode::StreamRefused)
    );
    assert_eq!(
        open(&f, None).await,
        Err(ErrorCode::StreamRefused),
        "unlabelled"
    );
    assert_eq!(open(&s, Some("catalog")).await, Ok(()));
    assert_eq!(open(&s, Some("files")).await, Err(ErrorCode::StreamRefused));
    // Refusals close no session.
    assert!(!f.is_closed() && !s.is_closed());
    assert_eq!(open(&f, Some("files")).await, Ok(()));
    assert_eq!(l.connections().len(), 2);
}

#[tokio::test]
async fn per_principal_stream_limit() {
    let (owner, friend) = (w(), w());
    let text = format!("{}:files streams=2\n*:* streams=100\n", friend.principal());
    let (_l, addr) = listener(&owner, Some(rules(&text)), Visibility::Public, &[]).await;
    let (_d, c) = dialer(&friend, &addr).await;
    // Two streams held open (nothing finished), the third refused.
    let a = c.open_stream(Some("files")).await.unwrap();
    let b = c.open_stream(Some("files")).await.unwrap();
    a.write_all(b"x").await.unwrap();
    b.write_all(b"x").await.unwrap();
    assert_eq!(open(&c, Some("files")).await, Err(ErrorCode::StreamRefused));
    a.finish().unwrap();
    assert_eq!(a.read_all(1024).await.unwrap().len(), 40);
    // The listener's side of `a` is gone once it answered; room for one again.
    let mut ok = false;
    for _ in 0..50 {
        if open(&c, Some("files")).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "a slot freed by a finished stream is usable again");
    b.finish().unwrap();
}

#[tokio::test]
async fn rules_change_at_run_time_without_dropping_sessions() {
    let (owner, friend) = (w(), w());
    let text = format!("{}:files\n", friend.principal());
    let (l, addr) = listener(&owner, Some(rules(&text)), Visibility::Public, &[]).await;
    let (_d, c) = dialer(&friend, &addr).await;
    // A stream open across the change keeps going. Its OPEN_STREAM reached the listener
    // before the next stream's, whose answer proves it arrived.
    let held = c.open_stream(Some("files")).await.unwrap();
    held.write_all(b"before").await.unwrap();
    assert_eq!(open(&c, Some("files")).await, Ok(()));
    assert_eq!(open(&c, Some("admin")).await, Err(ErrorCode::StreamRefused));
    l.permissions()
        .set_rules(Some(rules(&format!("{}:admin\n", friend.principal()))));
    assert_eq!(open(&c, Some("admin")).await, Ok(()));
    assert_eq!(open(&c, Some("files")).await, Err(ErrorCode::StreamRefused));
    held.write_all(b" after").await.unwrap();
    held.finish().unwrap();
    assert_eq!(held.read_all(1024).await.unwrap().len(), 40);
    l.permissions().set_rules(None);
    assert_eq!(open(&c, Some("files")).await, Ok(()));
    assert!(!c.is_closed());
    assert_eq!(l.connections().len(), 1, "same session throughout");
}

#[tokio::test]
async fn permissions_never_admit_who_the_allowlist_refuses() {
    let (owner, friend, stranger) = (w(), w(), w());
    let text = "*:*\n".to_string();
    let (_l, addr) = listener(
        &owner,
        Some(rules(&text)),
        Visibility::Private,
        &[friend.principal()],
    )
    .await;
    let (_d, c) = dialer(&friend, &addr).await;
    assert_eq!(open(&c, Some("anything")).await, Ok(()));
    let p = Peer::new(Arc::new(stranger.clone()), PeerConfig::default())
        .await
        .unwrap();
    let e = timeout(T, p.dial(&addr)).await.unwrap().unwrap_err();
    assert_eq!(e.code, ErrorCode::NotAllowed);
}

async fn grant(
    issuer: &LocalWallet,
    holder: &Principal,
    labels: &[&str],
    delegable: bool,
    parent: Option<Vec<u8>>,
    now: i64,
    ttl: i64,
) -> PermissionGrant {
    PermissionGrant::issue(
        issuer,
        GrantRequest {
            holder: holder.clone(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            delegable,
            parent,
            ttl_secs: ttl,
        },
        now,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn grants_in_each_form_admit_exactly_their_labels_until_expiry() {
    let (owner, holder) = (w(), w());
    let hp = holder.principal();
    let (l, addr) = listener(&owner, Some(rules("*:catalog\n")), Visibility::Public, &[]).await;
    let (_d, c) = dialer(&holder, &addr).await;
    let now = snap2p::unix_now();
    assert_eq!(open(&c, Some("files")).await, Err(ErrorCode::StreamRefused));

    let digest = grant(&owner, &hp, &["files"], false, None, now, 3600).await;
    assert_eq!(digest.form, SignatureForm::Digest);
    c.present_grant(&digest.encode()).await.unwrap();
    assert_eq!(open(&c, Some("files")).await, Ok(()));
    assert_eq!(open(&c, Some("admin")).await, Err(ErrorCode::StreamRefused));

    let text = grant(&sm(&owner), &hp, &["admin*"], false, None, now, 3600).await;
    assert_eq!(text.form, SignatureForm::StacksMessage);
    c.present_grant(&text.encode()).await.unwrap();
    assert_eq!(open(&c, Some("admin/users")).await, Ok(()));
    assert_eq!(open(&c, Some("files")).await, Ok(()));
    assert_eq!(
        open(&c, Some("orders")).await,
        Err(ErrorCode::StreamRefused)
    );

    // A short grant stops admitting once it expires (no clock-skew grace at stream opens).
    let short = grant(&owner, &hp, &["orders"], false, None, now, 2).await;
    c.present_grant(&short.encode()).await.unwrap();
    assert_eq!(open(&c, Some("orders")).await, Ok(()));
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        open(&c, Some("orders")).await,
        Err(ErrorCode::StreamRefused)
    );
    assert_eq!(
        open(&c, Some("files")).await,
        Ok(()),
        "the others still hold"
    );

    // Revoked at run time: effective at the next open, session kept.
    l.permissions().revoke(&digest.id()).unwrap();
    assert_eq!(open(&c, Some("files")).await, Err(ErrorCode::StreamRefused));
    assert_eq!(open(&c, Some("admin/x")).await, Ok(()));
    l.permissions().revoke(&hp.to_string()).unwrap();
    assert_eq!(
        open(&c, Some("admin/x")).await,
        Err(ErrorCode::StreamRefused)
    );
    assert!(!c.is_closed());
    // A grant is per session: it was presented on this one only.
    let (_d2, c2) = dialer(&w(), &addr).await;
    assert_eq!(
        open(&c2, Some("admin/x")).await,
        Err(ErrorCode::StreamRefused)
    );
}

#[tokio::test]
async fn bad_grants_are_refused_with_their_code() {
    let (owner, holder, other) = (w(), w(), w());
    let hp = holder.principal();
    let (l, addr) = listener(&owner, Some(rules("*:catalog\n")), Visibility::Public, &[]).await;
    let (_d, c) = dialer(&holder, &addr).await;
    let now = snap2p::unix_now();
    let code = |r: snap2p::Result<()>| r.err().map(|e| e.code);

    let expired = grant(&owner, &hp, &["files"], false, None, now - 10_000, 100).await;
    assert_eq!(
        code(c.present_grant(&expired.encode()).await),
        Some(ErrorCode::AuthExpired)
    );
    let mut tampered = grant(&sm(&owner), &hp, &["files"], false, None, now, 600).await;
    tampered.labels = vec!["*".into()];
    assert_eq!(
        code(c.present_grant(&tampered.encode()).await),
        Some(ErrorCode::AuthInvalid)
    );
    let foreign = grant(&other, &hp, &["files"], false, None, now, 600).await;
    assert_eq!(
        code(c.present_grant(&foreign.encode()).await),
        Some(ErrorCode::NotAllowed),
        "issuer is not an owner"
    );
    let for_other = grant(
        &owner,
        &other.principal(),
        &["files"],
        false,
        None,
        now,
        600,
    )
    .await;
    assert_eq!(
        code(c.present_grant(&for_other.encode()).await),
        Some(ErrorCode::NotAllowed),
        "presenter is not the holder"
    );
    let revoked = grant(&owner, &hp, &["files"], false, None, now, 600).await;
    l.permissions().revoke(&revoked.id()).unwrap();
    assert_eq!(
        code(c.present_grant(&revoked.encode()).await),
        Some(ErrorCode::NotAllowed)
    );
    assert_eq!(
        code(c.present_grant(b"not a grant").await),
        Some(ErrorCode::AuthInvalid)
    );
    // Over-delegated: owner -> other (delegable) -> middle -> holder.
    let middle = w();
    let top = grant(
        &owner,
        &other.principal(),
        &["files*"],
        true,
        None,
        now,
        600,
    )
    .await;
    let one = grant(
        &other,
        &middle.principal(),
        &["files*"],
        false,
        Some(top.encode()),
        now,
        300,
    )
    .await;
    let two = PermissionGrant {
        issuer: middle.principal(),
        holder: hp.clone(),
        parent: Some(one.encode()),
        ..one.clone()
    };
    let mut two = two;
    two.sign(&middle).await.unwrap();
    assert_eq!(
        code(c.present_grant(&two.encode()).await),
        Some(ErrorCode::AuthInvalid)
    );
    // None of those admitted anything; the session is still up.
    assert_eq!(open(&c, Some("files")).await, Err(ErrorCode::StreamRefused));
    assert!(!c.is_closed());
}

#[tokio::test]
async fn one_level_of_delegation_admits_the_delegate() {
    let (owner, member, device) = (w(), w(), w());
    let (l, addr) = listener(&owner, Some(rules("*:catalog\n")), Visibility::Public, &[]).await;
    let now = snap2p::unix_now();
    let team = grant(
        &owner,
        &member.principal(),
        &["files/*", "team"],
        true,
        None,
        now,
        3600,
    )
    .await;
    let dev = grant(
        &sm(&member),
        &device.principal(),
        &["files/photos"],
        false,
        Some(team.encode()),
        now,
        600,
    )
    .await;
    let (_d, c) = dialer(&device, &addr).await;
    c.present_grant(&dev.encode()).await.unwrap();
    assert_eq!(open(&c, Some("files/photos")).await, Ok(()));
    assert_eq!(
        open(&c, Some("files/docs")).await,
        Err(ErrorCode::StreamRefused)
    );
    assert_eq!(open(&c, Some("team")).await, Err(ErrorCode::StreamRefused));
    // Revoking the parent voids the delegated grant.
    l.permissions().revoke(&team.id()).unwrap();
    assert_eq!(
        open(&c, Some("files/photos")).await,
        Err(ErrorCode::StreamRefused)
    );
    // A delegate may not widen its parent.
    let wide = PermissionGrant::issue(
        &member,
        GrantRequest {
            holder: device.principal(),
            labels: vec!["*".into()],
            delegable: false,
            parent: Some(team.encode()),
            ttl_secs: 600,
        },
        now,
    )
    .await
    .unwrap();
    let e = c.present_grant(&wide.encode()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthInvalid);
}

// ---------------------------------------------------------------------------------------
// Sans-IO: the check in the session machine, and its cost

mod sans_io {
    use std::sync::Arc;
    use std::time::Instant;

    use snap2p::policy::{PermissionRules, Permissions};
    use snap2p::testing::{config, drain_events, pump, Side};
    use snap2p::unstable::{ReadOutcome, Session};
    use snap2p::{LocalWallet, Network};

    /// An established pair of `sa` (dialer) and a listener `b` with `perms`.
    fn pair(sa: &Side, perms: Option<Arc<Permissions>>) -> (Session, Session, Instant) {
        let now = Instant::now();
        let sb = Side::new(2);
        let mut cb = config(&sb, false, now);
        cb.permissions = perms;
        let mut a = Session::new(config(sa, true, now), now).unwrap();
        let mut b = Session::new(cb, now).unwrap();
        pump(&mut a, &mut b, now);
        assert!(a.is_established() && b.is_established());
        (a, b, now)
    }

    /// Rules naming 1,000 other principals, `*`, and `a` with a prefix pattern.
    fn big_rules(a: &Side) -> Arc<Permissions> {
        let mut text = String::new();
        for _ in 0..1000 {
            let p = LocalWallet::generate(Network::Mainnet).principal();
            text.push_str(&format!("{p}:files,chat*,admin streams=64\n"));
        }
        text.push_str("*:catalog,news*\n");
        text.push_str(&format!("{}:orders,files*\n", a.wallet.principal()));
        let perms = Permissions::new();
        perms.set_rules(Some(PermissionRules::parse(&text).unwrap()));
        Arc::new(perms)
    }

    /// One complete stream: `a` opens `label` and finishes, `b` accepts, reads the end and
    /// finishes, `a` reads the end. Returns whether `b` accepted it.
    fn round(a: &mut Session, b: &mut Session, now: Instant, label: &str) -> bool {
        let id = a.open_stream(Some(label)).unwrap();
        a.finish(id).unwrap();
        pump(a, b, now);
        let accepted = match b.accept_stream() {
            Some(sid) => {
                assert_eq!(sid, id);
                assert!(matches!(b.read(sid, 64).unwrap(), ReadOutcome::Finished));
                b.finish(sid).unwrap();
                pump(a, b, now);
                true
            }
            None => false,
        };
        let end = a.read(id, 64);
        if accepted {
            assert!(matches!(end.unwrap(), ReadOutcome::Finished));
            b.release_stream(id);
        } else {
            assert_eq!(end.unwrap_err().code, snap2p::ErrorCode::StreamRefused);
        }
        a.release_stream(id);
        drain_events(a);
        drain_events(b);
        accepted
    }

    #[test]
    fn the_machine_refuses_before_the_accept_queue_and_keeps_the_session() {
        let sa = Side::new(1);
        let (mut a, mut b, now) = pair(&sa, Some(big_rules(&sa)));
        // More rounds than the stream limit (1024): nothing leaks either way.
        for i in 0..1500 {
            let (label, want) = match i % 3 {
                0 => ("files/x", true),
                1 => ("catalog", true),
                _ => ("admin", false),
            };
            assert_eq!(round(&mut a, &mut b, now, label), want, "round {i} {label}");
        }
        assert!(a.error().is_none() && b.error().is_none());
    }

    /// A rule's `rate=B` becomes the listener's send rate on that principal's session
    /// (applied at its next inbound stream open): at one instant it sends about one
    /// second's budget, against the whole flow-control window without the rate.
    #[test]
    fn a_rules_send_rate_paces_what_the_node_sends() {
        let sa = Side::new(1);
        let sent_at_once = |rate: &str| {
            let perms = Permissions::new();
            let line = format!("{}:files {rate}\n", sa.wallet.principal());
            perms.set_rules(Some(PermissionRules::parse(&line).unwrap()));
            let (mut a, mut b, now) = pair(&sa, Some(Arc::new(perms)));
            a.open_stream(Some("files")).unwrap();
            pump(&mut a, &mut b, now);
            let sid = b.accept_stream().expect("files is permitted");
            assert_eq!(b.write(sid, &vec![7u8; 200_000]).unwrap(), 200_000);
            let mut buf = Vec::new();
            b.poll_transmit(now, &mut buf, 1 << 22);
            buf.len()
        };
        let paced = sent_at_once("rate=50000");
        let free = sent_at_once("");
        assert!(
            paced < 60_000,
            "sent {paced} bytes at once under rate=50000"
        );
        assert!(free > 190_000, "sent {free} bytes at once without a rate");
    }

    /// Stream opens per second through the machine pair, rules off (no permissions), no
    /// rules set, and 1,002 rules: the best of 5 interleaved runs each. Timing on a shared
    /// machine, so ignored by default:
    /// `cargo test -p snap2p --test permissions -- --ignored --nocapture open_rate`.
    #[test]
    #[ignore]
    fn open_rate_with_rules_is_within_10_percent_of_without() {
        const N: usize = 20_000;
        let sa = Side::new(1);
        let variants: [(&str, Option<Arc<Permissions>>); 3] = [
            ("rules off", None),
            ("no rules set", Some(Arc::new(Permissions::new()))),
            ("1,002 rules", Some(big_rules(&sa))),
        ];
        let mut best = [0f64; 3];
        for _ in 0..5 {
            for (k, (_, perms)) in variants.iter().enumerate() {
                let (mut a, mut b, now) = pair(&sa, perms.clone());
                let t = Instant::now();
                for _ in 0..N {
                    assert!(round(&mut a, &mut b, now, "files/photos"));
                }
                let rate = N as f64 / t.elapsed().as_secs_f64();
                best[k] = best[k].max(rate);
            }
        }
        for (k, (name, _)) in variants.iter().enumerate() {
            println!("stream opens/s ({name}): {:.0}", best[k]);
        }
        let ratio = best[2] / best[0];
        println!("with rules / without: {ratio:.3}");
        assert!(ratio >= 0.9, "rules cost more than 10%: {ratio:.3}");
    }
}
