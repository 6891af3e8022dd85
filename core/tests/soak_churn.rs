//! Soak: sessions and streams churning for a bounded time (SNAP2P_SOAK_SECS, default 60)
//! between real peers on loopback. Memory (VmRSS) and descriptors (/proc/self/fd) after
//! warm-up and at the end must match within a tolerance; every transfer is SHA-256 checked.
//! Run by ci/steps/75-hostile.sh:  cargo test -p snap2p --test soak_churn -- --include-ignored

mod common;

use std::time::{Duration, Instant};

use common::*;
use snap2p::PeerConfig;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long (60 s); run by ci/steps/75-hostile.sh"]
async fn sessions_and_streams_churn_with_flat_memory_and_fds() {
    let secs: u64 = std::env::var("SNAP2P_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let total = Duration::from_secs(secs);
    let warmup = total / 5;
    timeout(total + Duration::from_secs(60), async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap().to_string();
        serve_digest(&server);
        let client = peer(PeerConfig::default()).await;
        // One long-lived session with stream churn, plus sessions that come and go.
        let long = client.dial(&addr).await.unwrap();
        let started = Instant::now();
        let mut baseline: Option<(usize, u64)> = None;
        let (mut sessions, mut streams, mut bytes) = (0u64, 0u64, 0u64);
        let mut i = 0u32;
        while started.elapsed() < total {
            i += 1;
            // A short session: 1-4 streams of 1-64 KiB.
            let conn = client.dial(&addr).await.unwrap();
            sessions += 1;
            let mut tasks = Vec::new();
            for k in 0..(1 + i % 4) {
                let c = if k % 2 == 0 { conn.clone() } else { long.clone() };
                let n = 1024 + ((i * 7919 + k * 104_729) % (64 * 1024)) as u64;
                tasks.push(tokio::spawn(async move {
                    let s = c.open_stream(None).await.unwrap();
                    send_and_check(&s, n, 4096, i ^ k).await.unwrap();
                    n
                }));
            }
            // Now and then a stream the client abandons half-way (dropped: its writes are
            // finished, then the stream is closed; PROTOCOL.md §6.2).
            if i % 5 == 0 {
                let s = long.open_stream(Some("abandoned")).await.unwrap();
                s.write_all(&[1u8; 10_000]).await.unwrap();
                drop(s);
            }
            for t in tasks {
                bytes += t.await.unwrap();
                streams += 1;
            }
            conn.close(snap2p::ErrorCode::Ok, "done");
            if baseline.is_none() && started.elapsed() >= warmup {
                tokio::time::sleep(Duration::from_millis(300)).await;
                baseline = Some((fd_count(), rss_kib()));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(eventually(Duration::from_secs(5), || server.connections().len() == 1).await, "sessions left over: {}", server.connections().len());
        let (fd0, rss0) = baseline.unwrap();
        let (fd1, rss1) = (fd_count(), rss_kib());
        eprintln!(
            "RESULT soak {secs} s: {sessions} sessions, {streams} streams, {} MiB, all SHA-256 intact; after warm-up fds {fd0} VmRSS {rss0} KiB, at end fds {fd1} VmRSS {rss1} KiB",
            bytes >> 20
        );
        assert!(fd1 <= fd0 + 8, "descriptors grew {fd0} -> {fd1}");
        assert!(rss1 <= rss0 + rss0 / 5 + 8 * 1024, "VmRSS grew {rss0} -> {rss1} KiB");
        assert!(long.open_stream(None).await.is_ok());
    })
    .await
    .unwrap();
}
