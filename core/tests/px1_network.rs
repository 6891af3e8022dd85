//! PX-1 over real loopback sessions: discovery through friends of friends in a ring of
//! clusters, the visibility policy of spec §10.3, lying peers, failures and abuse limits.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::eventually;

use snap2p::px1;
use snap2p::{
    Connection, DialOptions, ErrorCode, Locator, Peer, PeerConfig, Principal, Visibility,
};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

struct Node {
    peer: Peer,
    addr: SocketAddr,
}

impl Node {
    fn principal(&self) -> Principal {
        self.peer.principal().clone()
    }

    fn locator(&self) -> Locator {
        Locator::tcp(self.addr)
    }

    fn px(&self) -> &px1::Px1 {
        self.peer.px1().expect("PX-1 enabled")
    }
}

async fn node_with(config: PeerConfig) -> Node {
    let peer = Peer::ephemeral(config).await.unwrap();
    let addr = peer.listen("127.0.0.1:0").await.unwrap();
    // Accepted sessions are already registered with the peer; just drain the queue.
    let p = peer.clone();
    tokio::spawn(async move { while p.accept().await.is_some() {} });
    Node { peer, addr }
}

async fn public() -> Node {
    node_with(PeerConfig::default()).await
}

async fn connect(from: &Node, to: &Node) -> Connection {
    from.peer.dial(&to.addr.to_string()).await.unwrap()
}

fn knows(n: &Node, p: &Principal) -> bool {
    !n.px().cached(p).is_empty()
}

/// Whether any hint in `n`'s cache names `p` or `loc`.
fn leaks(n: &Node, p: &Principal, loc: &Locator) -> bool {
    n.px()
        .snapshot()
        .iter()
        .any(|h| h.principal == *p || h.locators.contains(loc))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ring_of_clusters_friends_of_friends_and_policy() {
    tokio::time::timeout(TEST_TIMEOUT, ring_of_clusters())
        .await
        .expect("test timed out");
}

async fn ring_of_clusters() {
    const CLUSTERS: usize = 5;
    const MEMBERS: usize = 4; // gateway + 3
    let mut clusters: Vec<Vec<Node>> = Vec::new();
    for _ in 0..CLUSTERS {
        let mut c = Vec::new();
        for _ in 0..MEMBERS {
            c.push(public().await);
        }
        clusters.push(c);
    }
    // Gateways first, in a ring.
    for k in 0..CLUSTERS {
        connect(&clusters[k][0], &clusters[(k + 1) % CLUSTERS][0]).await;
    }
    // Then each cluster's members: to their gateway and to each other.
    for c in &clusters {
        for j in 1..MEMBERS {
            connect(&c[j], &c[0]).await;
            for i in 1..j {
                connect(&c[j], &c[i]).await;
            }
        }
    }
    // A Private and a Stealth node with PX-1 switched on, connected both ways.
    let g = |k: usize| &clusters[k][0];
    let private = node_with({
        let mut c = PeerConfig::default();
        c.visibility = Visibility::Private;
        c.px1 = Some(true);
        c.allowlist = vec![g(1).principal()];
        c
    })
    .await;
    let stealth = node_with({
        let mut c = PeerConfig::default();
        c.visibility = Visibility::Stealth;
        c.px1 = Some(true);
        c.allowlist = vec![g(4).principal()];
        c
    })
    .await;
    // Outbound from the private/stealth nodes: the remote address of these sessions is
    // an ephemeral port, never a hint.
    connect(&private, g(0)).await;
    connect(&private, &clusters[1][2]).await;
    connect(&stealth, g(3)).await;
    // Inbound, through locators shared out of band.
    let to_private = connect(g(1), &private).await;
    let invite = stealth.peer.create_invite(None, false).unwrap();
    let to_stealth = g(4)
        .peer
        .dial_with(
            &stealth.addr.to_string(),
            DialOptions::default().invite(invite.token.clone()),
        )
        .await
        .unwrap();
    let all_public: Vec<&Node> = clusters.iter().flatten().collect();
    assert_eq!(all_public.len(), 20);

    // Settle: every Public node holds the hints its direct Public neighbours pushed.
    let settled = eventually(Duration::from_secs(20), || {
        all_public.iter().all(|n| {
            n.peer
                .connections()
                .iter()
                .filter(|c| c.info().remote_visibility == Some(Visibility::Public))
                .all(|c| knows(n, c.remote_principal()))
        })
    })
    .await;
    assert!(settled, "initial pushes did not arrive");

    // A pushed hint is the listen address (a session's remote address is not).
    let m01 = &clusters[0][1];
    assert_eq!(g(0).px().cached(&m01.principal()), vec![m01.locator()]);

    // Friends of friends: m01 has never been told about m22 (two clusters away).
    let target = &clusters[2][2];
    let dialer = &clusters[0][1];
    assert!(!knows(dialer, &target.principal()));
    assert!(dialer
        .peer
        .connections()
        .iter()
        .all(|c| *c.remote_principal() != target.principal()));
    let conn = dialer
        .peer
        .dial(&target.principal().to_string())
        .await
        .expect("dial by principal through friends of friends");
    assert_eq!(*conn.remote_principal(), target.principal());
    // The verified locator is now cached first.
    assert_eq!(
        dialer.px().cached(&target.principal()).first(),
        Some(&target.locator())
    );
    // Dialing again reuses the session.
    let again = dialer
        .peer
        .dial(&target.principal().to_string())
        .await
        .unwrap();
    assert_eq!(again.session_id(), conn.session_id());

    // A farther member, reached from another cluster's member.
    let far = &clusters[3][3];
    let from = &clusters[1][3];
    let conn = from
        .peer
        .dial(&far.principal().to_string())
        .await
        .expect("second friends-of-friends dial");
    assert_eq!(*conn.remote_principal(), far.principal());

    // Policy: Private and Stealth locators never appear in anyone's cache through PX-1,
    // not even at nodes that dialed them by locator or that they dialed.
    for n in all_public.iter().copied().chain([&stealth]) {
        assert!(
            !leaks(n, &private.principal(), &private.locator()),
            "private node leaked into a cache"
        );
    }
    for n in all_public.iter().copied().chain([&private]) {
        assert!(
            !leaks(n, &stealth.principal(), &stealth.locator()),
            "stealth node leaked into a cache"
        );
    }
    // g1 knows the private node's locator out of band, but does not answer with it.
    let to_g1 = clusters[1][1]
        .peer
        .connections()
        .into_iter()
        .find(|c| *c.remote_principal() == g(1).principal())
        .unwrap();
    let answer = px1::resolve(&to_g1, &private.principal(), None)
        .await
        .unwrap();
    assert!(answer.is_empty(), "g1 answered with {answer:?}");
    // Nor does the private node about itself.
    assert!(px1::resolve(&to_private, &private.principal(), None)
        .await
        .unwrap()
        .is_empty());
    // A Private node may answer for others (it holds what Public peers pushed to it).
    assert!(knows(&private, &m01.principal()));
    assert_eq!(
        px1::resolve(&to_private, &m01.principal(), None)
            .await
            .unwrap(),
        vec![m01.locator()]
    );
    // A Stealth node answers only allowlisted principals: g4 is, g3 is not.
    let stealth_from_g3 = g(3)
        .peer
        .connections()
        .into_iter()
        .find(|c| *c.remote_principal() == stealth.principal())
        .unwrap();
    let refused = px1::resolve(&stealth_from_g3, &m01.principal(), None)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotAllowed);
    assert!(px1::resolve(&to_stealth, &g(3).principal(), None)
        .await
        .is_ok());
    // And dial by principal of the private node fails cleanly: nobody hands it out.
    let err = clusters[4][2]
        .peer
        .dial(&private.principal().to_string())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "{err}");

    for n in all_public.iter().copied().chain([&private, &stealth]) {
        n.peer.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lying_hints_never_yield_the_wrong_identity() {
    tokio::time::timeout(TEST_TIMEOUT, lying_hints())
        .await
        .expect("test timed out");
}

async fn lying_hints() {
    let a = public().await;
    let liar = public().await;
    let x = public().await;
    let y = public().await;
    let a_to_liar = connect(&a, &liar).await;
    // The listener side is established a moment after the dialer's (it waits for the
    // dialer's AUTH_OK): wait for it, bounded.
    let mut liar_to_a = None;
    for _ in 0..500 {
        liar_to_a = liar
            .peer
            .connections()
            .into_iter()
            .find(|c| *c.remote_principal() == a.principal());
        if liar_to_a.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let liar_to_a = liar_to_a.expect("the liar's side of the session");
    let _ = a_to_liar;
    // The liar claims X lives at Y's locator.
    liar.px()
        .push(&liar_to_a, &x.principal(), &[y.locator()], 3600)
        .await
        .unwrap();
    assert_eq!(a.px().cached(&x.principal()), vec![y.locator()]);
    let err = a
        .peer
        .dial(&x.principal().to_string())
        .await
        .expect_err("the only hint is a lie");
    assert_eq!(err.code, ErrorCode::PrincipalMismatch, "{err}");
    assert!(a.px().cached(&x.principal()).is_empty(), "lie evicted");
    assert!(a
        .peer
        .connections()
        .iter()
        .all(|c| *c.remote_principal() != x.principal()));

    // Now an honest peer knows X; the liar lies again.
    let honest = public().await;
    connect(&a, &honest).await;
    connect(&x, &honest).await;
    assert!(eventually(Duration::from_secs(10), || knows(&honest, &x.principal())).await);
    liar.px()
        .push(&liar_to_a, &x.principal(), &[y.locator()], 3600)
        .await
        .unwrap();
    let conn = a
        .peer
        .dial(&x.principal().to_string())
        .await
        .expect("the honest hint wins");
    assert_eq!(*conn.remote_principal(), x.principal());
    assert_eq!(a.px().cached(&x.principal()), vec![x.locator()]);

    // A lie cannot flush a verified hint: after 20 more lies the verified one is first.
    for i in 0..20u16 {
        let fake: Locator = format!("127.0.0.1:{}", 20000 + i).parse().unwrap();
        liar.px()
            .push(&liar_to_a, &x.principal(), &[fake], 3600)
            .await
            .unwrap();
    }
    let cached = a.px().cached(&x.principal());
    assert_eq!(cached.first(), Some(&x.locator()));
    assert!(cached.len() <= px1::MAX_LOCATORS_PER_PRINCIPAL);

    // Distinct failures: an unknown principal and a dead locator.
    let nobody = Peer::ephemeral(PeerConfig::default()).await.unwrap();
    let err = a
        .peer
        .dial(&nobody.principal().to_string())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "{err}");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    a.px()
        .add_hint(nobody.principal(), &[Locator::tcp(dead)], 3600);
    let err = a
        .peer
        .dial(&nobody.principal().to_string())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AllLocatorsFailed, "{err}");

    for n in [&a, &liar, &x, &y, &honest] {
        n.peer.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_limits() {
    tokio::time::timeout(TEST_TIMEOUT, limits())
        .await
        .expect("test timed out");
}

async fn limits() {
    let server = public().await;
    let client = public().await;
    let other = public().await;
    connect(&other, &server).await;
    let conn = connect(&client, &server).await;
    assert!(
        eventually(Duration::from_secs(10), || knows(
            &server,
            &other.principal()
        ))
        .await
    );

    // Resolve: a burst of 20, then ERR_RATE_LIMITED.
    let mut ok = 0;
    let mut limited = 0;
    for _ in 0..40 {
        match px1::resolve(&conn, &other.principal(), Some(1000)).await {
            Ok(locs) => {
                assert_eq!(locs, vec![other.locator()]);
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.code, ErrorCode::RateLimited, "{e}");
                limited += 1;
            }
        }
    }
    assert!((20..30).contains(&ok), "{ok} answered");
    assert!(limited >= 10, "{limited} limited");
    // The bucket refills (10/s).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(px1::resolve(&conn, &other.principal(), None).await.is_ok());
    // The session itself survives rate limiting.
    assert!(!conn.is_closed());

    // Hostile bytes on a px-1 stream: the stream is reset with a typed code, the session
    // and the server carry on.
    let hostile: [(&[u8], ErrorCode); 4] = [
        (&[0xff, 0xff, 0xff, 0xff, 0x01], ErrorCode::MessageTooLarge),
        (&[0x03, 0xa1, 0x61, 0x74], ErrorCode::InvalidMessage),
        (
            &[0x05, 0xa1, 0x61, 0x74, 0x18, 0x63],
            ErrorCode::VersionUnsupported,
        ),
        // A PX_RESOLVE_RESP sent to the responder.
        (
            &[0x07, 0xa2, 0x61, 0x6c, 0x80, 0x61, 0x74, 0x02],
            ErrorCode::InvalidMessage,
        ),
    ];
    for (bytes, code) in hostile {
        let s = conn.open_stream(Some(px1::STREAM_LABEL)).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let _ = s.finish();
        let err = s.read_all(1024).await.unwrap_err();
        assert_eq!(err.code, code, "{bytes:02x?}: {err}");
    }
    // A stream that ends inside a message.
    let s = conn.open_stream(Some(px1::STREAM_LABEL)).await.unwrap();
    s.write_all(&[0x10, 0xa1]).await.unwrap();
    s.finish().unwrap();
    let err = s.read_all(1024).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidMessage);
    assert!(!conn.is_closed());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(px1::resolve(&conn, &other.principal(), None).await.is_ok());

    // Pushes: bounded per session too.
    let to_server = conn;
    let mut refused = 0;
    for i in 0..100u16 {
        let loc: Locator = format!("127.0.0.1:{}", 30000 + i).parse().unwrap();
        let mut hash = [7u8; 20];
        hash[..2].copy_from_slice(&i.to_be_bytes());
        let p = Principal::new(22, hash).unwrap();
        if let Err(e) = client.px().push(&to_server, &p, &[loc], 60).await {
            assert_eq!(e.code, ErrorCode::RateLimited, "{e}");
            refused += 1;
        }
    }
    assert!(refused >= 20, "{refused} pushes refused");
    assert!(server.px().snapshot().len() <= 2 + 64 + 20);

    // Private peers never push, whatever the API is asked.
    let private = node_with({
        let mut c = PeerConfig::default();
        c.visibility = Visibility::Private;
        c.px1 = Some(true);
        c
    })
    .await;
    let c = connect(&private, &server).await;
    let err = private
        .px()
        .push(&c, private.peer.principal(), &[private.locator()], 60)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotAllowed);

    // A peer with PX-1 off (Private default) is not asked and not served.
    let quiet = node_with(PeerConfig::default().with_visibility(Visibility::Private)).await;
    assert!(quiet.peer.px1().is_none());
    let c = connect(&quiet, &server).await;
    let err = px1::resolve(&c, &other.principal(), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::StreamRefused);

    for n in [&server, &client, &other, &private, &quiet] {
        n.peer.close().await;
    }
}

/// A node behind a reverse proxy advertises the proxy's `wss://` locator
/// (`PeerConfig::external_locators`) before its own listener, and a third peer resolving it
/// through a hub gets that locator first (issue 27: "a peer may advertise both its TCP and
/// WSS locators and a dialer picks what it supports").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_locators_are_advertised_first() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let external: Locator = "wss://node.example.org:443/snap2p".parse().unwrap();
        let hub = public().await;
        let proxied = node_with({
            let mut c = PeerConfig::default();
            c.external_locators = vec![external.clone()];
            c
        })
        .await;
        assert_eq!(
            proxied.peer.reachable_locators(),
            vec![external.clone(), proxied.locator()]
        );
        connect(&proxied, &hub).await;
        let asker = public().await;
        let to_hub = connect(&asker, &hub).await;
        let p = proxied.principal();
        assert!(
            eventually(Duration::from_secs(10), || knows(&hub, &p)).await,
            "the hub never learned the proxied node"
        );
        let answer = px1::resolve(&to_hub, &p, None).await.unwrap();
        assert_eq!(answer.first(), Some(&external), "answer: {answer:?}");
        assert!(answer.contains(&proxied.locator()), "answer: {answer:?}");
    })
    .await
    .expect("test timed out");
}

/// A listener added after a session started is pushed to that session's peer (PX-1
/// `on_locators_changed`): the hub learns the node's new `ws://` locator without a new
/// session, and a stranger resolving the node through the hub gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_added_later_is_pushed_to_connected_peers() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let hub = public().await;
        let node = public().await;
        connect(&node, &hub).await;
        let p = node.principal();
        assert!(
            eventually(Duration::from_secs(10), || knows(&hub, &p)).await,
            "the hub never learned the node"
        );
        let bound = node.peer.listen("ws://127.0.0.1:0/later").await.unwrap();
        let ws: Locator = format!("ws://{bound}/later").parse().unwrap();
        assert!(
            eventually(Duration::from_secs(10), || hub
                .px()
                .cached(&p)
                .contains(&ws))
            .await,
            "the hub never learned {ws}: {:?}",
            hub.px().cached(&p)
        );
        let asker = public().await;
        let to_hub = connect(&asker, &hub).await;
        let answer = px1::resolve(&to_hub, &p, None).await.unwrap();
        assert!(answer.contains(&ws), "answer: {answer:?}");
        assert!(answer.contains(&node.locator()), "answer: {answer:?}");
    })
    .await
    .expect("test timed out");
}
