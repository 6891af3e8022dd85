//! The Mainline DHT module against a real local DHT (mainline's `Testnet`, 50 nodes on
//! 127.0.0.1; nothing leaves loopback): a Public peer publishes and is resolved by
//! principal, dialed and authenticated; a Private peer never publishes; tampered, expired,
//! wrongly keyed and replayed records are refused, and an older seq never replaces a newer
//! one, also after the cache is reopened from its file. The multi-process version (the
//! `snap2p` CLI in separate processes) is examples/cli/tests/discovery.rs.
#![cfg(feature = "dht")]

use std::net::Ipv4Addr;
use std::time::Duration;

use snap2p::discovery::dht::mainline::{MutableItem, SigningKey, Testnet};
use snap2p::discovery::dht::ADVERT_SALT;
use snap2p::discovery::{
    AdvertReject, DhtConfig, DhtDiscovery, EndpointAdvert, ResolverConfig, StepOutcome,
};
use snap2p::identity::{LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation};
use snap2p::{ErrorCode, Locator, Peer, PeerConfig, Visibility};

fn dht_cfg(testnet: &Testnet) -> DhtConfig {
    let mut c = DhtConfig::default()
        .with_bootstrap(testnet.bootstrap.clone())
        .with_bind_address(Ipv4Addr::LOCALHOST);
    c.lookup_timeout = Duration::from_secs(5);
    c
}

async fn peer(testnet: &Testnet, vis: Visibility) -> Peer {
    let mut cfg = PeerConfig::default().with_visibility(vis);
    cfg.dht = Some(dht_cfg(testnet));
    cfg.resolver = ResolverConfig::only(&["cache", "px-1", "dht"]);
    Peer::ephemeral(cfg).await.unwrap()
}

fn reasons(errors: &[snap2p::Error]) -> Vec<AdvertReject> {
    errors.iter().filter_map(AdvertReject::of).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts two local DHTs of 50 nodes: ci/steps/79-discovery.sh runs it"]
async fn dht_publish_resolve_dial_and_refuse_bad_records() {
    let testnet = tokio::task::spawn_blocking(|| Testnet::builder(50).build().unwrap())
        .await
        .unwrap();

    // A Public peer publishes once it listens (the republication task); a Private one
    // never does.
    let alice = peer(&testnet, Visibility::Public).await;
    let addr = alice.listen("127.0.0.1:0").await.unwrap();
    let hidden = peer(&testnet, Visibility::Private).await;
    hidden.listen("127.0.0.1:0").await.unwrap();
    let report = alice.publish_advert().await.unwrap();
    assert!(report.stored_at > 0 && report.announced, "{report:?}");
    assert!(report.advert_len <= snap2p::discovery::MAX_ADVERT_LEN);
    assert!(hidden.publish_advert().await.is_err());
    let mut bad = PeerConfig::default().with_visibility(Visibility::Stealth);
    bad.dht = Some(dht_cfg(&testnet).with_publish(true));
    assert_eq!(
        Peer::ephemeral(bad).await.unwrap_err().code,
        ErrorCode::InvalidArgument
    );

    // Bob knows only alice's principal: the chain's dht step answers with her address
    // (a BEP5 hint); dialing it authenticates her.
    let bob = peer(&testnet, Visibility::Public).await;
    let r = bob.resolve(alice.principal()).await;
    assert_eq!(r.answered_by.as_deref(), Some("dht"), "{r:?}");
    assert!(r.locators.contains(&Locator::tcp(addr)), "{r:?}");
    assert_eq!(r.steps[0].outcome, StepOutcome::NotFound, "cache empty");
    // No advert of alice is held yet: a BEP5 answer is only a hint.
    assert_eq!(r.verified, vec![false; r.locators.len()], "{r:?}");
    let conn = bob.dial(&alice.principal().to_string()).await.unwrap();
    assert_eq!(conn.remote_principal(), alice.principal());
    // The dial taught bob alice's node key; her advert follows (background lookup).
    let key = alice.node_public_key();
    let mut held = None;
    for _ in 0..100 {
        held = bob.advert_cache().get(&key);
        if held.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = held.expect("alice's advert learned after the dial");
    assert_eq!(held.principal(), alice.principal());
    let r = bob.resolve(alice.principal()).await;
    assert_eq!(r.answered_by.as_deref(), Some("cache"), "{r:?}");
    assert_eq!(r.locators, vec![Locator::tcp(addr)]);
    // From her signed advert: verified.
    assert_eq!(r.verified, vec![true], "{r:?}");

    // Nobody finds the Private peer.
    let r = bob.resolve(hidden.principal()).await;
    assert_eq!(r.answered_by, None, "{r:?}");
    assert_eq!(r.error().code, ErrorCode::NotFound);

    // Bad records under a node key the test holds, read by a resolver with a cache file.
    let dir = tempfile::tempdir().unwrap();
    let cache_file = dir.path().join("adverts.json");
    let wallet = LocalWallet::generate(Network::Mainnet);
    let nk = NodeKey::generate();
    let now = snap2p::unix_now();
    let att = NodeKeyAttestation::issue(&wallet, nk.public(), now - 600, 86_400)
        .await
        .unwrap()
        .encode();
    let locs: Vec<Locator> = vec!["127.0.0.1:9".parse().unwrap()];
    let writer = DhtDiscovery::start(dht_cfg(&testnet), NetworkFilter::ANY)
        .await
        .unwrap();
    let reader = DhtDiscovery::start(
        dht_cfg(&testnet).with_cache_path(&cache_file),
        NetworkFilter::ANY,
    )
    .await
    .unwrap();
    let put = |ad: &EndpointAdvert, key: &NodeKey, bytes: Vec<u8>| {
        MutableItem::new(
            SigningKey::from_bytes(&key.seed()),
            &bytes,
            ad.seq as i64,
            Some(ADVERT_SALT),
        )
    };
    let first = writer.publish(&nk, &att, &locs).await.unwrap();
    let got = reader
        .lookup_advert(&nk.public(), Some(&wallet.principal()))
        .await
        .unwrap();
    assert!(got.fetched && got.rejected.is_empty(), "{got:?}");
    assert_eq!(got.advert.as_ref().unwrap().seq, first.advert.seq);

    // Tampered: a locator byte changed after the node key signed the advert (the DHT item
    // itself is validly signed: only our signature catches it).
    let t = EndpointAdvert::issue(&nk, &att, &locs, first.advert.seq + 10, now, 3600).unwrap();
    let mut bytes = t.encode();
    let i = bytes.windows(11).position(|w| w == b"127.0.0.1:9").unwrap();
    bytes[i + 10] = b'8';
    writer
        .dht()
        .put_mutable(put(&t, &nk, bytes), None)
        .await
        .unwrap();
    let got = reader.lookup_advert(&nk.public(), None).await.unwrap();
    assert!(
        reasons(&got.rejected).contains(&AdvertReject::Tampered),
        "{got:?}"
    );
    assert!(!got.fetched, "{got:?}");
    assert_eq!(
        got.advert.unwrap().seq,
        first.advert.seq,
        "the held advert stands"
    );

    // Expired: validly signed, but its hour ended an hour ago.
    let old_att = NodeKeyAttestation::issue(&wallet, nk.public(), now - 3 * 3600, 86_400)
        .await
        .unwrap()
        .encode();
    let e = EndpointAdvert::issue(
        &nk,
        &old_att,
        &locs,
        first.advert.seq + 20,
        now - 2 * 3600,
        3600,
    )
    .unwrap();
    writer
        .dht()
        .put_mutable(put(&e, &nk, e.encode()), None)
        .await
        .unwrap();
    let got = reader.lookup_advert(&nk.public(), None).await.unwrap();
    assert!(
        reasons(&got.rejected).contains(&AdvertReject::Expired),
        "{got:?}"
    );
    assert!(!got.fetched, "{got:?}");

    // Wrong key: a valid advert of nk stored under another key.
    let other = NodeKey::generate();
    let w = EndpointAdvert::issue(&nk, &att, &locs, first.advert.seq + 30, now, 3600).unwrap();
    writer
        .dht()
        .put_mutable(put(&w, &other, w.encode()), None)
        .await
        .unwrap();
    let got = reader.lookup_advert(&other.public(), None).await.unwrap();
    assert!(
        reasons(&got.rejected).contains(&AdvertReject::WrongKey),
        "{got:?}"
    );
    assert!(!got.fetched, "{got:?}");
    assert!(got.advert.is_none());

    // A newer valid advert replaces the held one.
    let newer = writer.publish(&nk, &att, &locs).await.unwrap();
    // Above every seq under the key, the tampered and expired records' too (publish reads
    // the DHT's latest first).
    assert!(newer.advert.seq > first.advert.seq + 20, "{newer:?}");
    let got = reader.lookup_advert(&nk.public(), None).await.unwrap();
    assert!(got.fetched, "{got:?}");
    assert_eq!(got.advert.unwrap().seq, newer.advert.seq);
    drop(reader);

    // Replay: a second DHT that only has the first (older) record, byte for byte; the
    // resolver restarts with its cache file. The older seq is refused, the newer stays.
    let testnet2 = tokio::task::spawn_blocking(|| Testnet::builder(50).build().unwrap())
        .await
        .unwrap();
    let writer2 = DhtDiscovery::start(dht_cfg(&testnet2), NetworkFilter::ANY)
        .await
        .unwrap();
    writer2
        .dht()
        .put_mutable(put(&first.advert, &nk, first.advert.encode()), None)
        .await
        .unwrap();
    let reader2 = DhtDiscovery::start(
        dht_cfg(&testnet2).with_cache_path(&cache_file),
        NetworkFilter::ANY,
    )
    .await
    .unwrap();
    assert!(reader2.cache().load_problem().is_none());
    let got = reader2.lookup_advert(&nk.public(), None).await.unwrap();
    assert!(
        reasons(&got.rejected).contains(&AdvertReject::StaleSeq),
        "{got:?}"
    );
    assert!(!got.fetched, "{got:?}");
    assert_eq!(got.advert.unwrap().seq, newer.advert.seq);

    for p in [alice, hidden, bob] {
        p.close().await;
    }
}
