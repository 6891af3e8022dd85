//! iroh (1.x, n0-computer): QUIC (noq) endpoints dialed by endpoint id with a direct
//! address, raw bidirectional streams (`open_bi`/`accept_bi`) on one ALPN.
//!
//! Settings: `Endpoint::builder(presets::Minimal)` (ring crypto provider, nothing else) so
//! that (1) relays are off (`RelayMode::Disabled`, the empty builder's default, set again
//! explicitly), (2) there is no address lookup (no pkarr/DNS publishing or resolving;
//! `clear_address_lookup`), (3) port mapping is off (`PortmapperConfig::Disabled`, and the
//! crate's `portmapper` feature is not built), (4) net-report probes are minimal
//! (`NetReportConfig::minimal()`), (5) the only IP transport is a UDP socket on 127.0.0.1
//! (`clear_ip_transports` + `bind_addr`), and the dialer is given the listener's id and
//! that socket address (`EndpointAddr::new(id).with_ip_addr(..)`). QUIC transport settings
//! are iroh's defaults (noq: stream window 1.25 MB, connection window unlimited, 100
//! concurrent bidirectional streams per connection) except the listener's
//! `max_concurrent_bidi_streams`, raised to the workload's stream count for the
//! `iroh` system (the `iroh, 100 streams` system keeps the default).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::endpoint::{
    presets, Connection, NetReportConfig, PortmapperConfig, QuicTransportConfig, VarInt,
};
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayMode};
use tokio::sync::Semaphore;

use crate::util::{chunk, expected_crc};
use crate::{ConnectResult, ServerOpts, StreamsResult};

const ALPN: &[u8] = b"snap2p-bench/1";

async fn endpoint(alpn: bool, max_streams: Option<usize>) -> Endpoint {
    let mut b = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .portmapper_config(PortmapperConfig::Disabled)
        .net_report_config(NetReportConfig::minimal())
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("bind addr");
    if let Some(n) = max_streams {
        let cfg = QuicTransportConfig::builder()
            .max_concurrent_bidi_streams(VarInt::from_u32(n as u32))
            .build();
        b = b.transport_config(cfg);
    }
    if alpn {
        b = b.alpns(vec![ALPN.to_vec()]);
    }
    b.bind().await.expect("iroh endpoint")
}

/// Listener: every bidirectional stream is read to its end and answered with the CRC-32 of
/// its bytes, then finished. Returns "<endpoint id> <ip:port>". `default_streams`: keep
/// iroh's default stream limit (100) instead of `opts.max_streams`.
pub async fn serve(opts: ServerOpts, default_streams: bool) -> String {
    let ep = endpoint(
        true,
        if default_streams {
            None
        } else {
            Some(opts.max_streams)
        },
    )
    .await;
    let sock = ep.bound_sockets()[0];
    let id = ep.id();
    let live = opts.live.clone();
    let accept = ep.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accept.accept().await {
            let live = live.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else {
                    return;
                };
                live.fetch_add(1, Ordering::Relaxed);
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    tokio::spawn(async move {
                        let mut h = crc32fast::Hasher::new();
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match recv.read(&mut buf).await {
                                Ok(Some(n)) => h.update(&buf[..n]),
                                Ok(None) => break,
                                Err(_) => return,
                            }
                        }
                        let _ = send.write_all(&h.finalize().to_be_bytes()).await;
                        let _ = send.finish();
                        // Keep the stream until the peer has read the reply.
                        let _ = send.stopped().await;
                    });
                }
                live.fetch_sub(1, Ordering::Relaxed);
            });
        }
    });
    // The endpoint lives as long as the process.
    std::mem::forget(ep);
    format!("{id} {sock}")
}

fn parse(addr: &str) -> EndpointAddr {
    let mut it = addr.split_whitespace();
    let id: EndpointId = it.next().unwrap().parse().expect("endpoint id");
    let sock: SocketAddr = it.next().unwrap().parse().expect("socket address");
    EndpointAddr::new(id).with_ip_addr(sock)
}

async fn send_stream(
    conn: &Connection,
    pat: &[u8],
    seed: usize,
    total: u64,
    size: usize,
    want: u32,
) -> Result<bool, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    let n = total.div_ceil(size as u64) as usize;
    for i in 0..n {
        let left = (total - (i * size) as u64).min(size as u64) as usize;
        send.write_all(&chunk(pat, seed, i, size)[..left])
            .await
            .map_err(|e| e.to_string())?;
    }
    send.finish().map_err(|e| e.to_string())?;
    let r = recv.read_to_end(16).await.map_err(|e| e.to_string())?;
    Ok(r.len() == 4 && u32::from_be_bytes(r[..4].try_into().unwrap()) == want)
}

async fn shut(ep: Endpoint, conn: Connection) {
    conn.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(5), ep.close()).await;
}

pub async fn bulk(addr: &str, pat: Arc<Vec<u8>>, total: u64, size: usize) -> (Duration, bool) {
    let ep = endpoint(false, None).await;
    let conn = ep.connect(parse(addr), ALPN).await.expect("iroh connect");
    // The expected CRC outside the timed section, as snap2p's.
    let want = expected_crc(&pat, 1, total, size);
    let t0 = Instant::now();
    let ok = send_stream(&conn, &pat, 1, total, size, want)
        .await
        .unwrap_or(false);
    let dt = t0.elapsed();
    shut(ep, conn).await;
    (dt, ok)
}

pub async fn streams(
    addr: &str,
    pat: Arc<Vec<u8>>,
    n: usize,
    size: usize,
    concurrency: usize,
) -> StreamsResult {
    let ep = endpoint(false, None).await;
    let conn = ep.connect(parse(addr), ALPN).await.expect("iroh connect");
    let sem = Arc::new(Semaphore::new(concurrency));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (conn, pat) = (conn.clone(), pat.clone());
        tasks.push(tokio::spawn(async move {
            let w = size.min(64 * 1024);
            let want = expected_crc(&pat, i + 2, size as u64, w);
            let r = send_stream(&conn, &pat, i + 2, size as u64, w, want).await;
            drop(permit);
            r
        }));
    }
    let (mut ok, mut bad) = (0, 0);
    for t in tasks {
        match t.await {
            Ok(Ok(true)) => ok += 1,
            _ => bad += 1,
        }
    }
    let dt = t0.elapsed();
    shut(ep, conn).await;
    StreamsResult {
        elapsed: dt,
        ok,
        bad,
        refused: 0,
    }
}

/// Connect (QUIC + TLS 1.3 handshake, both endpoint ids verified), close, repeat. `cold`:
/// a new endpoint (new key, empty TLS ticket cache) per connection, all bound before the
/// clock starts; otherwise one endpoint that connected once before the clock, so its
/// ticket cache holds the listener's session tickets and later handshakes are TLS
/// resumptions (PSK + ECDHE, no certificate exchange; `connect` sends no 0-RTT data).
pub async fn connect(addr: &str, count: usize, inflight: usize, cold: bool) -> ConnectResult {
    let target = parse(addr);
    let mut eps = Vec::new();
    if cold {
        for _ in 0..count {
            eps.push(endpoint(false, None).await);
        }
    } else {
        let ep = endpoint(false, None).await;
        let c = ep.connect(target.clone(), ALPN).await.expect("warm-up");
        c.close(0u32.into(), b"warm-up");
        let _ = c.closed().await;
        eps.push(ep);
    }
    let eps = Arc::new(eps);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c0 = crate::util::cpu_time();
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..inflight {
        let (eps, next, target) = (eps.clone(), next.clone(), target.clone());
        workers.push(tokio::spawn(async move {
            let (mut lat, mut fails) = (Vec::new(), 0);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let ep = &eps[if eps.len() == 1 { 0 } else { i }];
                let t = Instant::now();
                // Bounded like the idle workload's connects (one of 5,000 never completed).
                let r =
                    tokio::time::timeout(Duration::from_secs(20), ep.connect(target.clone(), ALPN))
                        .await;
                match r {
                    Ok(Ok(c)) => {
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        c.close(0u32.into(), b"bench");
                        let _ = c.closed().await;
                    }
                    _ => fails += 1,
                }
            }
            (lat, fails)
        }));
    }
    let (mut lat, mut fails) = (Vec::new(), 0);
    for w in workers {
        let (l, f) = w.await.unwrap();
        lat.extend(l);
        fails += f;
    }
    let elapsed = t0.elapsed();
    let dialer_cpu = crate::util::cpu_time() - c0;
    for ep in eps.iter() {
        let _ = tokio::time::timeout(Duration::from_secs(2), ep.close()).await;
    }
    ConnectResult {
        elapsed,
        latencies_ms: lat,
        failures: fails,
        dialer_cpu,
    }
}

/// Opens `n` connections from one endpoint and keeps them (the caller holds the value).
pub async fn idle(addr: &str, n: usize) -> (Box<dyn std::any::Any + Send>, usize, u64) {
    let target = parse(addr);
    let ep = endpoint(false, None).await;
    let dial = |_| {
        let (ep, target) = (ep.clone(), target.clone());
        async move {
            // A bound on each connect: in a first run one of 5,000 never completed.
            match tokio::time::timeout(Duration::from_secs(20), ep.connect(target, ALPN)).await {
                Ok(Ok(c)) => Some(c),
                _ => None,
            }
        }
    };
    let warm = crate::util::run_bounded(1, 1, &dial).await;
    let r0 = crate::util::rss_kib().0;
    let conns = crate::util::run_bounded(n, 32, &dial).await;
    let ok = conns.len();
    (Box::new((ep, warm, conns)), ok, r0)
}
