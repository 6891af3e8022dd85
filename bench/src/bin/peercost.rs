//! Where a process's fixed memory goes before its first session: VmRSS after each step of
//! making a dialing `Peer` and its first session (a listener `Peer` is made first, outside
//! the measurement). Usage: snap2p-peercost
use std::time::Duration;

use snap2p::{Peer, PeerConfig};

#[allow(dead_code)]
#[path = "../util.rs"]
mod util;

fn rss_kib() -> u64 {
    util::rss_kib().0
}

fn main() {
    let rt = util::runtime_builder().build().unwrap();
    rt.block_on(async {
        let server = Peer::ephemeral(PeerConfig::default()).await.unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap().to_string();
        let s = server.clone();
        tokio::spawn(async move { while let Some(_c) = s.accept().await {} });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut last = rss_kib();
        let mut step = |name: &str| {
            let now = rss_kib();
            println!(
                "{name:<40} VmRSS {now:>8} KiB  (+{} KiB)",
                now as i64 - last as i64
            );
            last = now;
        };
        step("listener up (baseline)");
        let client = Peer::ephemeral(PeerConfig::default()).await.unwrap();
        step("dialer Peer::ephemeral(default)");
        let c1 = client.dial(&addr).await.unwrap();
        step("first session");
        let c2 = client.dial(&addr).await.unwrap();
        step("second session");
        let mut more = Vec::new();
        for _ in 0..100 {
            more.push(client.dial(&addr).await.unwrap());
        }
        step("100 more sessions");
        drop((c1, c2, more));
    });
}
