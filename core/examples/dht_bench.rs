//! Publish and resolve latency on a local Mainline DHT (mainline's `Testnet` on 127.0.0.1),
//! bytes per advert, and the memory of DHT nodes (docs/BENCHMARKS.md, "Discovery").
//!
//!     cargo run --release -p snap2p --example dht_bench -- [nodes] [rounds]
//!
//! Each round: a fresh wallet and node key publish an advert (BEP44 put + BEP5 announce,
//! after reading the latest item under the key) from one DHT client; another client, with
//! an empty cache, resolves the principal (BEP5 get_peers: hints) and then fetches and
//! verifies the advert under the node key (BEP44 get). Loopback only; absolute times are
//! of this machine's load, the spread is what to read.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use snap2p::discovery::dht::mainline::Testnet;
use snap2p::discovery::{DhtConfig, DhtDiscovery};
use snap2p::identity::{LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation};
use snap2p::Locator;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|n| n.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn summary(name: &str, mut v: Vec<Duration>) -> serde_json::Value {
    v.sort();
    let (p50, p99, max) = (pct(&v, 0.5), pct(&v, 0.99), pct(&v, 1.0));
    println!("| {name} | {} | {p50:.1} | {p99:.1} | {max:.1} |", v.len());
    serde_json::json!({"name": name, "n": v.len(), "p50_ms": p50, "p99_ms": p99, "max_ms": max})
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);

    let rss0 = rss_kib();
    let t = Instant::now();
    let testnet = tokio::task::spawn_blocking(move || Testnet::builder(nodes).build().unwrap())
        .await
        .unwrap();
    let testnet_ms = t.elapsed().as_millis();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_testnet = rss_kib();
    let cfg = || {
        let mut c = DhtConfig::default()
            .with_bootstrap(testnet.bootstrap.clone())
            .with_bind_address(Ipv4Addr::LOCALHOST);
        c.lookup_timeout = Duration::from_secs(5);
        c
    };
    let publisher = DhtDiscovery::start(cfg(), NetworkFilter::ANY)
        .await
        .unwrap();
    let resolver = DhtDiscovery::start(cfg(), NetworkFilter::ANY)
        .await
        .unwrap();
    publisher.bootstrapped(Duration::from_secs(10)).await;
    resolver.bootstrapped(Duration::from_secs(10)).await;

    let (mut publish, mut hints, mut advert, mut sizes) = (vec![], vec![], vec![], vec![]);
    let mut first = vec![];
    let mut misses = 0usize;
    let loc: Vec<Locator> = vec![
        "127.0.0.1:9000".parse().unwrap(),
        "wss://node.example.org:443/snap2p".parse().unwrap(),
    ];
    for _ in 0..rounds {
        let wallet = LocalWallet::generate(Network::Mainnet);
        let nk = NodeKey::generate();
        let now = snap2p::unix_now();
        let att = NodeKeyAttestation::issue(&wallet, nk.public(), now, 86_400)
            .await
            .unwrap()
            .encode();
        let t = Instant::now();
        let r = publisher.publish(&nk, &att, &loc).await.unwrap();
        publish.push(t.elapsed());
        sizes.push(r.advert_len);
        let t = Instant::now();
        let h = resolver.lookup_hints(&wallet.principal()).await.unwrap();
        hints.push(t.elapsed());
        let t = Instant::now();
        let a = resolver
            .lookup_advert(&nk.public(), Some(&wallet.principal()))
            .await
            .unwrap();
        advert.push(t.elapsed());
        // What the resolver chain's `dht` step runs for a stranger: a resolver that holds
        // nothing of the principal, returning `first_answer_grace` after the first hints.
        let stranger = DhtDiscovery::start(cfg(), NetworkFilter::ANY)
            .await
            .unwrap();
        stranger.bootstrapped(Duration::from_secs(10)).await;
        let t = Instant::now();
        let f = stranger
            .resolve_detailed(&wallet.principal())
            .await
            .unwrap();
        first.push(t.elapsed());
        drop(stranger);
        if h.is_empty() || a.advert.is_none() || f.hints.is_empty() {
            misses += 1;
        }
    }
    let rss_end = rss_kib();
    println!(
        "\nlocal DHT: {nodes} nodes on 127.0.0.1 (built in {testnet_ms} ms), {rounds} rounds\n"
    );
    println!("| operation | n | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    let rows = vec![
        summary(
            "publish (latest-item read + BEP44 put + BEP5 announce)",
            publish,
        ),
        summary(
            "resolve by principal (BEP5 get_peers, to completion)",
            hints,
        ),
        summary(
            "fetch + verify advert by node key (BEP44 get, to completion)",
            advert,
        ),
        summary(
            "resolve by principal, first answer (resolve_detailed, 250 ms grace)",
            first,
        ),
    ];
    sizes.sort();
    let per_node_kib = (rss_testnet.saturating_sub(rss0)) as f64 / nodes as f64;
    println!(
        "\nadvert bytes: min {} max {} (2 locators, digest-form attestation); lookups that missed: {misses}",
        sizes[0],
        sizes[sizes.len() - 1]
    );
    println!(
        "RSS: before testnet {rss0} KiB, after {nodes} nodes {rss_testnet} KiB ({per_node_kib:.0} KiB per DHT node), at end {rss_end} KiB"
    );
    println!(
        "{}",
        serde_json::json!({"nodes": nodes, "rounds": rounds, "rows": rows,
            "advert_bytes_min": sizes[0], "advert_bytes_max": sizes[sizes.len()-1],
            "misses": misses, "rss_kib_before": rss0, "rss_kib_testnet": rss_testnet,
            "rss_kib_end": rss_end, "rss_kib_per_node": per_node_kib})
    );
}
