//! RELAY-1 rows (issue 28, docs/PROTOCOL.md §32): a relay in a process of its own, the
//! target reserved on it in another, the dialer here: one stream through the relay against
//! the same stream dialed directly, the relay's CPU per GiB it forwards, and how many idle
//! reservations one relay holds (memory per reservation, time to take them all).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use snap2p::relay::{RelayConfig, RelayLimits};
use snap2p::Peer;
use tokio::sync::Semaphore;

use crate::ServerOpts;

/// Where the target process finds its relay (set by the parent).
pub const RELAY_ENV: &str = "SNAP2P_BENCH_RELAY";

/// The relay's limits in the benchmark: the defaults would end a 2 GiB bulk stream at the
/// 1 GiB circuit limit and refuse the 4,097th reservation, so both are lifted; every other
/// limit is the default.
fn relay_config(splice: bool) -> RelayConfig {
    RelayConfig {
        splice,
        limits: RelayLimits {
            max_reservations: 1 << 20,
            circuit_max_bytes: 0,
            requests_per_min: 0,
            ..RelayLimits::default()
        },
        ..RelayConfig::server()
    }
}

/// The relay process: serves reservations and circuits on 127.0.0.1; `live` follows its
/// reservation count (the parent's `stat`).
/// `splice` off: every circuit stays on the streams (PROTOCOL.md §32.3), for the
/// comparison row.
pub async fn serve_relay(opts: ServerOpts, splice: bool) -> String {
    let mut cfg = crate::snap::config(opts.max_streams, opts.keepalive);
    cfg.relay = relay_config(splice);
    let peer = Peer::builder(cfg).build().await.expect("relay peer");
    let addr = peer.listen("127.0.0.1:0").await.expect("listen");
    let live = opts.live.clone();
    tokio::spawn(async move {
        loop {
            live.store(peer.relay().stats().reservations as i64, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    addr.to_string()
}

/// The target process: the CRC listener of `snap::serve`, reachable only through its
/// reservation on the relay in [`RELAY_ENV`]; returns its `relay://…/SP…` locator.
pub async fn serve_target(opts: ServerOpts) -> String {
    let relay = std::env::var(RELAY_ENV).expect("SNAP2P_BENCH_RELAY (set by the parent)");
    crate::snap::serve_on(opts, &format!("relay://{relay}")).await
}

/// `reserve-client RELAY N`: N peers, each with a reservation on RELAY (8 taken at once:
/// the relay's listener admits 16 pending handshakes per source address). Prints
/// `UP <ok> <secs> <locator of the last>` and keeps them until stdin closes.
pub async fn reserve_client_main(relay: &str, n: usize) {
    crate::util::raise_fd_limit();
    let sem = Arc::new(Semaphore::new(8));
    let ok = Arc::new(AtomicI64::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (sem, ok, relay) = (sem.clone(), ok.clone(), relay.to_string());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.unwrap();
            let mut cfg = crate::snap::config(64, Duration::from_secs(30));
            cfg.accept_backlog = 16;
            let peer = Peer::builder(cfg).build().await.ok()?;
            peer.listen(&format!("relay://{relay}")).await.ok()?;
            ok.fetch_add(1, Ordering::Relaxed);
            Some(peer)
        }));
    }
    let mut peers = Vec::with_capacity(n);
    for t in tasks {
        if let Ok(Some(p)) = t.await {
            peers.push(p);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    // The last peer answers one stream, so the parent can show the relay still splices a
    // circuit with every reservation taken.
    let last = peers.last().cloned();
    let loc = last
        .as_ref()
        .and_then(|p| p.listen_locators().into_iter().last())
        .map(|l| l.to_string())
        .unwrap_or_else(|| "-".into());
    if let Some(p) = last {
        tokio::spawn(async move {
            while let Some(conn) = p.accept().await {
                tokio::spawn(async move {
                    while let Ok(s) = conn.accept_stream().await {
                        let got = s.read_all(1 << 20).await.unwrap_or_default();
                        let _ = s.write_all(&got).await;
                        let _ = s.finish();
                    }
                });
            }
        });
    }
    println!("UP {} {secs:.3} {loc}", ok.load(Ordering::Relaxed));
    let mut line = String::new();
    let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
    std::process::exit(0);
}

/// Dials `loc` (a reserved peer through the relay) and checks one echoed stream.
pub async fn echo_through(loc: &str) -> bool {
    let peer = Peer::builder(crate::snap::config(64, Duration::from_secs(30)))
        .build()
        .await
        .expect("peer");
    let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(20), peer.dial(loc)).await else {
        return false;
    };
    let Ok(s) = conn.open_stream(None).await else {
        return false;
    };
    let msg = b"through a relay holding every reservation".to_vec();
    if s.write_all(&msg).await.is_err() || s.finish().is_err() {
        return false;
    }
    let ok = matches!(s.read_all(1024).await, Ok(b) if b == msg);
    peer.close().await;
    ok
}
