//! A test-only RELAY-1 node in its own OS process, for the NAT test bed
//! (core/tests/relay_nat.rs runs it inside network namespaces). Not a user tool: see
//! `snap2p relay` in examples/cli.
//!
//!   relaynode relay ADDR              serve as a relay on ADDR (TCP)
//!   relaynode listen RELAY            reserve on RELAY (ip:port), serve SHA-256 digests
//!   relaynode reserve-many RELAY N    N peers, each with a reservation on RELAY
//!   relaynode send LOCATOR BYTES [punch]
//!                                     dial LOCATOR, stream BYTES, check the digest; with
//!                                     `punch`, then try a hole punch and, if it works,
//!                                     stream BYTES over the direct session and 1 MiB more
//!                                     over the relayed one
//!
//! Prints one line per event on stdout (`RELAY addr`, `LISTEN locator observed=ip:port`,
//! `CONNECTED transport=… ms=T`, `OK bytes=N sha256=HEX ms=T`, `ERROR code=N name msg`)
//! and exits by itself after at most 120 s.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use snap2p::relay::{Relay, RelayConfig};
use snap2p::{Peer, PeerConfig};

fn out(s: String) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{s}");
    let _ = o.flush();
}

fn fail(e: snap2p::Error) -> ! {
    out(format!(
        "ERROR code={} {} {}",
        e.code.as_u64(),
        e.code.name(),
        e.message
    ));
    std::process::exit(1)
}

async fn node(config: RelayConfig) -> Peer {
    Peer::builder(PeerConfig::default())
        .relay(Relay::new(config))
        .build()
        .await
        .unwrap_or_else(|e| fail(e))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let arg = args.get(2).cloned().unwrap_or_default();
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(120)).await;
        out("ERROR code=13 TIMEOUT relaynode ran for 120 s".into());
        std::process::exit(2);
    });
    match mode {
        "relay" => {
            let p = node(RelayConfig::server()).await;
            let a = p.listen(&arg).await.unwrap_or_else(|e| fail(e));
            out(format!("RELAY {a}"));
            while p.accept().await.is_some() {}
        }
        "listen" => {
            let relay = Relay::new(RelayConfig::default());
            let p = Peer::builder(PeerConfig::default())
                .relay(relay.clone())
                .build()
                .await
                .unwrap_or_else(|e| fail(e));
            p.listen(&format!("relay://{arg}"))
                .await
                .unwrap_or_else(|e| fail(e));
            let loc = p
                .listen_locators()
                .into_iter()
                .find(|l| l.scheme().as_str() == "relay")
                .expect("relay listener");
            let observed = relay
                .reservations()
                .first()
                .and_then(|r| r.observed)
                .map(|a| a.to_string())
                .unwrap_or_default();
            out(format!("LISTEN {loc} observed={observed}"));
            while let Some(conn) = p.accept().await {
                // Which path each session came over: `relay`, or `punch` (direct).
                out(format!("INBOUND transport={}", conn.stats().transport));
                tokio::spawn(async move {
                    while let Ok(s) = conn.accept_stream().await {
                        tokio::spawn(async move {
                            let mut h = Sha256::new();
                            let mut n = 0u64;
                            while let Ok(Some(c)) = s.read_chunk(1 << 20).await {
                                n += c.len() as u64;
                                h.update(&c);
                            }
                            let mut reply = h.finalize().to_vec();
                            reply.extend_from_slice(&n.to_le_bytes());
                            let _ = s.write_all(&reply).await;
                            let _ = s.finish();
                        });
                    }
                });
            }
        }
        "reserve-many" => {
            // N peers in this process, each holding a reservation on RELAY (for the
            // relay's memory per idle reservation: measure the relay process's RSS).
            let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
            let mut peers = Vec::with_capacity(n);
            let t0 = Instant::now();
            for i in 0..n {
                let p = node(RelayConfig::default()).await;
                p.listen(&format!("relay://{arg}"))
                    .await
                    .unwrap_or_else(|e| fail(e));
                peers.push(p);
                if (i + 1) % 500 == 0 {
                    out(format!(
                        "RESERVED {} ms={}",
                        i + 1,
                        t0.elapsed().as_millis()
                    ));
                }
            }
            out(format!("RESERVED {n} ms={}", t0.elapsed().as_millis()));
            tokio::time::sleep(Duration::from_secs(110)).await;
        }
        "send" => {
            let total: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1 << 20);
            let relay = Relay::new(RelayConfig::default());
            let p = Peer::builder(PeerConfig::default())
                .relay(relay.clone())
                .build()
                .await
                .unwrap_or_else(|e| fail(e));
            let t0 = Instant::now();
            let conn = p.dial(&arg).await.unwrap_or_else(|e| fail(e));
            out(format!(
                "CONNECTED transport={} ms={}",
                conn.stats().transport,
                t0.elapsed().as_millis()
            ));
            send(&conn, total, "OK").await;
            if args.get(4).map(String::as_str) == Some("punch") {
                let t2 = Instant::now();
                match relay.hole_punch(&conn).await {
                    Ok(direct) => {
                        out(format!(
                            "DIRECT yes ms={} transport={} remote={}",
                            t2.elapsed().as_millis(),
                            direct.stats().transport,
                            direct
                                .remote_addr()
                                .map(|a| a.to_string())
                                .unwrap_or_default()
                        ));
                        send(&direct, total, "DIRECT_OK").await;
                        // The relayed session is still up and still carries streams.
                        send(&conn, 1 << 20, "RELAYED_STILL_OK").await;
                    }
                    Err(e) => {
                        out(format!(
                            "DIRECT no ms={} code={} {}",
                            t2.elapsed().as_millis(),
                            e.code.as_u64(),
                            e.message
                        ));
                        // A failed punch leaves the relayed session as it was.
                        send(&conn, 1 << 20, "RELAYED_STILL_OK").await;
                    }
                }
            }
            conn.close(snap2p::ErrorCode::Ok, "done");
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
        }
        _ => {
            eprintln!("usage: relaynode relay ADDR | listen RELAY | send LOCATOR BYTES [punch]");
            std::process::exit(64);
        }
    }
}

/// Streams `total` pseudo-random bytes on a new stream of `conn`, checks the digest the
/// listener answers and prints `TAG bytes=… sha256=… ms=…` (exits on a mismatch).
async fn send(conn: &snap2p::Connection, total: u64, tag: &str) {
    let t1 = Instant::now();
    let s = conn
        .open_stream(Some("data"))
        .await
        .unwrap_or_else(|e| fail(e));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut x: u32 = 0x9e37_79b9;
    let mut sent = 0u64;
    while sent < total {
        let n = ((total - sent) as usize).min(buf.len());
        for b in buf[..n].iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        h.update(&buf[..n]);
        s.write_all(&buf[..n]).await.unwrap_or_else(|e| fail(e));
        sent += n as u64;
    }
    s.finish().unwrap_or_else(|e| fail(e));
    let reply = s.read_all(64).await.unwrap_or_else(|e| fail(e));
    let digest = h.finalize();
    let ok = reply.len() == 40
        && reply[..32] == digest[..]
        && u64::from_le_bytes(reply[32..].try_into().unwrap()) == total;
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if ok {
        out(format!(
            "{tag} bytes={total} sha256={hex} ms={}",
            t1.elapsed().as_millis()
        ));
    } else {
        out(format!("MISMATCH {tag} bytes={total} sha256={hex}"));
        std::process::exit(1);
    }
}
