//! A test-only snap2p node in its own OS process, for the fault tests (a peer killed
//! mid-transfer, a peer inside a network namespace). Not a user tool: see examples/cli.
//!
//!   testnode listen ADDR                       serve SHA-256 digests of every stream
//!   testnode send ADDR BYTES [KEEPALIVE_MS]    dial, stream BYTES, print the outcome
//!
//! Prints one line per event on stdout (`LISTEN addr`, `CONNECTED`, `SENT n`, `OK`,
//! `ERROR code=N name elapsed_ms=T`) and exits by itself after at most 300 s.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use snap2p::{Peer, PeerConfig, SessionLimits};

fn out(s: String) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{s}");
    let _ = o.flush();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let addr = args.get(2).cloned().unwrap_or_else(|| "127.0.0.1:0".into());
    let keepalive = args.get(4).and_then(|s| s.parse::<u64>().ok());
    let mut limits = SessionLimits::default();
    if let Some(ms) = keepalive {
        limits.keepalive_interval = Duration::from_millis(ms);
        limits.keepalive_timeout = Duration::from_millis(ms);
    }
    let cfg = {
        let mut c = PeerConfig::default();
        c.limits = limits;
        c
    };
    let run = async {
        match mode {
            "listen" => {
                let p = Peer::ephemeral(cfg).await.unwrap();
                let a = p.listen(&addr).await.unwrap();
                out(format!("LISTEN {a}"));
                while let Some(conn) = p.accept().await {
                    tokio::spawn(async move {
                        while let Ok(stream) = conn.accept_stream().await {
                            tokio::spawn(async move {
                                let mut h = Sha256::new();
                                let mut n = 0u64;
                                while let Ok(Some(c)) = stream.read_chunk(1 << 20).await {
                                    n += c.len() as u64;
                                    h.update(&c);
                                }
                                let mut o = h.finalize().to_vec();
                                o.extend_from_slice(&n.to_le_bytes());
                                let _ = stream.write_all(&o).await;
                                let _ = stream.finish();
                            });
                        }
                    });
                }
            }
            "send" => {
                let total: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1 << 20);
                let p = Peer::ephemeral(cfg).await.unwrap();
                let conn = match p.dial(&addr).await {
                    Ok(c) => c,
                    Err(e) => {
                        out(format!(
                            "ERROR code={} {:?} elapsed_ms=0",
                            e.code.as_u64(),
                            e.code
                        ));
                        return;
                    }
                };
                out("CONNECTED".into());
                let s = conn.open_stream(Some("bulk")).await.unwrap();
                let t0 = Instant::now();
                let chunk = vec![0x5au8; 64 * 1024];
                let mut sent = 0u64;
                let mut last_report = 0u64;
                while sent < total {
                    let n = ((total - sent) as usize).min(chunk.len());
                    if let Err(e) = s.write_all(&chunk[..n]).await {
                        out(format!(
                            "ERROR code={} {:?} elapsed_ms={}",
                            e.code.as_u64(),
                            e.code,
                            t0.elapsed().as_millis()
                        ));
                        return;
                    }
                    sent += n as u64;
                    if sent - last_report >= 1 << 20 {
                        last_report = sent;
                        out(format!("SENT {sent}"));
                    }
                }
                let _ = s.finish();
                match s.read_all(1024).await {
                    Ok(r) if r.len() == 40 => out("OK".into()),
                    Ok(r) => out(format!("ERROR short reply {}", r.len())),
                    Err(e) => out(format!(
                        "ERROR code={} {:?} elapsed_ms={}",
                        e.code.as_u64(),
                        e.code,
                        t0.elapsed().as_millis()
                    )),
                }
            }
            _ => {
                eprintln!("usage: testnode listen ADDR | send ADDR BYTES [KEEPALIVE_MS]");
                std::process::exit(2);
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(300), run).await;
}
