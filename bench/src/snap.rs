//! snap2p: the system under test, through its public `Peer` API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use snap2p::transport::{WsConfig, WsTransport};
use snap2p::{Connection, ErrorCode, Peer, PeerConfig, SessionLimits};
use tokio::sync::Semaphore;

use crate::util::{chunk, expected_crc};
use crate::{ConnectResult, ServerOpts, StreamsResult};

/// Benchmark configuration: defaults except what a benchmark must change. PX-1 is off
/// (libp2p runs no identify/kad either); the pre-auth rate limit is off (every connection
/// comes from 127.0.0.1); the accept backlog holds the idle-session workload.
pub fn config(max_streams: usize, keepalive: Duration) -> PeerConfig {
    {
        let mut c = PeerConfig::default();
        c.limits = {
            let mut c = SessionLimits::default();
            c.max_streams = max_streams;
            c.keepalive_interval = keepalive;
            if REKEY_OFF.load(std::sync::atomic::Ordering::Relaxed) {
                c.rekey_after_bytes = 0;
                c.rekey_after_frames = 0;
                c.rekey_interval = None;
            }
            c
        };
        c.px1 = Some(false);
        if RULES_ON.load(std::sync::atomic::Ordering::Relaxed) {
            c.permissions = Some(bench_rules());
        }
        c.preauth_rate_per_min = Some(0);
        c.hs2 = !HS2_OFF.load(std::sync::atomic::Ordering::Relaxed);
        c.max_pending_handshakes = 1024;
        c.accept_backlog = 16384;
        c
    }
}

/// The `snap2p, permission rules` rows (issue 34): a listener made while this is set
/// checks every stream open against [`bench_rules`] (set in the listener process only).
pub static RULES_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// What the stream-open rows label their streams (both systems, so the only difference
/// between them is the rule check).
pub const OPEN_LABEL: &str = "bench/data";

/// A rule set of the shape an app has (docs/PROTOCOL.md §33): any principal may open a few
/// labels, one of them by prefix, with a stream limit; eight named principals more.
fn bench_rules() -> snap2p::policy::PermissionRules {
    let mut text = String::from("*:public,chat*,bench/* streams=2048\n");
    for _ in 0..8 {
        let w = snap2p::identity::LocalWallet::generate(snap2p::identity::Network::Mainnet);
        text.push_str(&format!("{}:admin,files,orders\n", w.principal()));
    }
    snap2p::policy::PermissionRules::parse(&text).expect("bench rules")
}

/// The `snap2p, rekey off` rows: peers made while this is set never rekey (every trigger
/// off), to show what rekeying at the default thresholds (1 GiB, 100,000 frames, 1 h)
/// costs the `snap2p` rows. Set for the whole listener process, and by the parent around
/// that system's client only.
pub static REKEY_OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The `snap2p first contact, v1 handshake` rows: dialers made while this is set speak v1
/// only (`PeerConfig::hs2` off; PROTOCOL.md §5.8). Set by the parent around that system's
/// client only; the listener speaks both.
pub static HS2_OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The `serve snapcount` listener (the bindings workload's receive rows): each stream is
/// only counted, answered with its length (8 bytes, big endian), and a `STREAM <bytes> <CPU
/// s of this process over the stream>` line is printed, as bench/bindings/receiver.*
/// print theirs. No checksum: the rows compare the language packages' read paths, and a
/// CRC in each language (zlib in Python) would weigh more than what they compare. What
/// arrived is checked by the packages' tests (SHA-256 at both ends).
pub static COUNT_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// With [`COUNT_ONLY`], the `serve snapread` listener: each stream is read as a Rust
/// application that keeps the bytes reads it, through `AsyncRead` into a 64 KiB buffer of
/// its own, so each byte is copied once out of the session (a language package must copy
/// into its host's memory too; the count-only listener keeps the session's own buffers).
pub static COUNT_COPY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Listener: every stream is read to its end, answered with the CRC-32 of its bytes (4
/// bytes, big endian), then finished ([`COUNT_ONLY`]: its length instead).
pub async fn serve(opts: ServerOpts) -> String {
    serve_on(opts, "127.0.0.1:0").await
}

/// [`serve`] on a listen locator of any transport; returns the bound locator. For a
/// `wss://` locator the listener presents the run's test certificate ([`Tls`]).
pub async fn serve_on(opts: ServerOpts, listen: &str) -> String {
    let mut b = Peer::builder(config(opts.max_streams, opts.keepalive));
    if listen.starts_with("wss://") {
        let tls = Tls::get().expect("SNAP2P_BENCH_TLS (set by the parent for wss)");
        let ws = WsConfig::default()
            .with_tls_identity_pem_files(&tls.cert, &tls.key)
            .expect("test certificate");
        b = b.transport(Arc::new(WsTransport::new(ws).expect("ws transport")));
    }
    let peer = b.build().await.expect("peer");
    peer.listen(listen).await.expect("listen");
    let addr = peer.listen_locators().pop().expect("a listener");
    let live = opts.live.clone();
    tokio::spawn(async move {
        while let Some(conn) = peer.accept().await {
            let live = live.clone();
            live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(async move {
                loop {
                    let Ok(stream) = conn.accept_stream().await else {
                        break;
                    };
                    tokio::spawn(async move {
                        if COUNT_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
                            count_stream(stream).await;
                            return;
                        }
                        let mut h = crc32fast::Hasher::new();
                        loop {
                            match stream.read_chunk(256 * 1024).await {
                                Ok(Some(b)) => h.update(&b),
                                Ok(None) => break,
                                Err(_) => return,
                            }
                        }
                        let _ = stream.write_all(&h.finalize().to_be_bytes()).await;
                        let _ = stream.finish();
                    });
                }
                live.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            });
        }
    });
    addr.to_string()
}

/// [`COUNT_ONLY`]'s stream handler.
async fn count_stream(mut stream: snap2p::Stream) {
    let cpu0 = crate::util::cpu_time();
    let mut n: u64 = 0;
    if COUNT_COPY.load(std::sync::atomic::Ordering::Relaxed) {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(k) => n += std::hint::black_box(&buf[..k]).len() as u64,
                Err(_) => return,
            }
        }
    } else {
        loop {
            match stream.read_chunk(256 * 1024).await {
                Ok(Some(b)) => n += b.len() as u64,
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let cpu = crate::util::cpu_time().saturating_sub(cpu0);
    let _ = stream.write_all(&n.to_be_bytes()).await;
    let _ = stream.finish();
    println!("STREAM {n} {:.4}", cpu.as_secs_f64());
}

/// Whether a listener's reply to a stream of `total` bytes is right: the CRC-32 `crc` (4
/// bytes), or from a [`COUNT_ONLY`] listener the length (8 bytes).
fn reply_ok(reply: &[u8], crc: u32, total: u64) -> bool {
    match reply.len() {
        4 => u32::from_be_bytes(reply.try_into().unwrap()) == crc,
        8 => u64::from_be_bytes(reply.try_into().unwrap()) == total,
        _ => false,
    }
}

/// A dialing peer; when the run has a test CA ([`Tls`], the wss rows) its WebSocket
/// transport trusts it as well (nothing changes for the other transports).
async fn client(max_streams: usize, keepalive: Duration) -> Peer {
    let mut b = Peer::builder(config(max_streams, keepalive));
    if let Some(tls) = Tls::get() {
        let ws = WsConfig::default()
            .with_root_pem_file(&tls.ca)
            .expect("test CA");
        b = b.transport(Arc::new(WsTransport::new(ws).expect("ws transport")));
    }
    b.build().await.expect("peer")
}

/// The wss rows' test PKI: a CA and a leaf for 127.0.0.1 and localhost (rcgen), PEM files
/// in a temporary directory named by `SNAP2P_BENCH_TLS`, made once by the parent process
/// and inherited by the listener processes it starts.
pub struct Tls {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

pub const TLS_ENV: &str = "SNAP2P_BENCH_TLS";

/// The directory [`Tls::create`] wrote, in the parent process.
pub static TLS_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

impl Tls {
    /// The run's PKI: the parent's [`TLS_DIR`], or in a listener process the directory
    /// its parent passed in `SNAP2P_BENCH_TLS`; None when the run has no wss rows.
    pub fn get() -> Option<Tls> {
        let dir = match TLS_DIR.get() {
            Some(d) => d.clone(),
            None => std::path::PathBuf::from(std::env::var_os(TLS_ENV)?),
        };
        Some(Tls {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        })
    }

    /// Writes a fresh CA and leaf into `dir`.
    pub fn create(dir: &std::path::Path) {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "snap2p-bench test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
                .unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
    }
}

/// Writes one stream of `total` bytes in `size` writes; true if the echoed CRC matches.
async fn send_stream(
    conn: &Connection,
    pat: &[u8],
    seed: usize,
    total: u64,
    size: usize,
    label: Option<&str>,
) -> Result<bool, snap2p::Error> {
    let s = conn.open_stream(label).await?;
    let n = total.div_ceil(size as u64) as usize;
    for i in 0..n {
        let left = (total - (i * size) as u64).min(size as u64) as usize;
        s.write_all(&chunk(pat, seed, i, size)[..left]).await?;
    }
    s.finish()?;
    let reply = s.read_all(16).await?;
    Ok(reply_ok(
        &reply,
        expected_crc(pat, seed, total, size),
        total,
    ))
}

/// One stream, `total` bytes in `size`-byte writes. Timed from the first write to the
/// checksum reply (the session is established before the clock starts).
pub async fn bulk(addr: &str, pat: Arc<Vec<u8>>, total: u64, size: usize) -> (Duration, bool) {
    let (dt, ok, _) = bulk_with(addr, pat, total, size, false).await;
    (dt, ok)
}

/// [`bulk`], optionally after an untimed warm-up stream of the same size on the same
/// session, as the language-package senders do (bench/bindings/): the native figure they
/// are compared with is then measured the same way. Also returns this process's CPU time
/// over the timed stream (as the language senders report theirs).
pub async fn bulk_with(
    addr: &str,
    pat: Arc<Vec<u8>>,
    total: u64,
    size: usize,
    warm_up: bool,
) -> (Duration, bool, Duration) {
    let peer = client(1024, Duration::from_secs(30)).await;
    let conn = peer.dial(addr).await.expect("dial");
    // A warm-up stream whose checksum does not match fails the figure like the timed one.
    let warm_ok = !warm_up
        || send_stream(&conn, &pat, 1, total, size, None)
            .await
            .expect("warm-up stream");
    // CRC of the expected stream computed up front (outside the timed section).
    let want = expected_crc(&pat, 1, total, size);
    let t0 = Instant::now();
    let cpu0 = crate::util::cpu_time();
    let s = conn.open_stream(None).await.expect("open");
    let n = total.div_ceil(size as u64) as usize;
    for i in 0..n {
        let left = (total - (i * size) as u64).min(size as u64) as usize;
        s.write_all(&chunk(&pat, 1, i, size)[..left])
            .await
            .expect("write");
    }
    s.finish().expect("finish");
    let reply = s.read_all(16).await.expect("reply");
    let dt = t0.elapsed();
    let cpu = crate::util::cpu_time().saturating_sub(cpu0);
    let ok = warm_ok && reply_ok(&reply, want, total);
    conn.close(ErrorCode::Ok, "done");
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
    (dt, ok, cpu)
}

/// `n` streams of `size` bytes on one session, at most `concurrency` open at once.
pub async fn streams(
    addr: &str,
    pat: Arc<Vec<u8>>,
    n: usize,
    size: usize,
    concurrency: usize,
    max_streams: usize,
    label: Option<&'static str>,
) -> StreamsResult {
    let peer = client(max_streams, Duration::from_secs(30)).await;
    let conn = peer.dial(addr).await.expect("dial");
    let sem = Arc::new(Semaphore::new(concurrency));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (conn, pat) = (conn.clone(), pat.clone());
        tasks.push(tokio::spawn(async move {
            let r = send_stream(&conn, &pat, i + 2, size as u64, size.min(64 * 1024), label).await;
            drop(permit);
            r
        }));
    }
    let (mut ok, mut bad, mut refused) = (0, 0, 0);
    for t in tasks {
        match t.await {
            Ok(Ok(true)) => ok += 1,
            Ok(Ok(false)) => bad += 1,
            Ok(Err(e)) if e.code == ErrorCode::StreamRefused => refused += 1,
            _ => bad += 1,
        }
    }
    let dt = t0.elapsed();
    conn.close(ErrorCode::Ok, "done");
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
    StreamsResult {
        elapsed: dt,
        ok,
        bad,
        refused,
    }
}

/// Connect, authenticate, close, repeat: `count` sessions, `inflight` at a time. `cold`:
/// a new client Peer (new wallet, new attestation, empty cache) per connection, all made
/// before the clock starts; otherwise one client Peer that has met the server before.
pub async fn connect(addr: &str, count: usize, inflight: usize, cold: bool) -> ConnectResult {
    let keep = Duration::from_secs(30);
    let mut peers = Vec::new();
    if cold {
        for _ in 0..count {
            peers.push(client(64, keep).await);
        }
    } else {
        let p = client(64, keep).await;
        // Warm-up: both sides verify each other's attestation once.
        let c = p.dial(addr).await.expect("warm-up dial");
        c.close(ErrorCode::Ok, "warm-up");
        c.closed().await;
        peers.push(p);
    }
    let peers = Arc::new(peers);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c0 = crate::util::cpu_time();
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..inflight {
        let (peers, next, addr) = (peers.clone(), next.clone(), addr.to_string());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut fails = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let p = &peers[if peers.len() == 1 { 0 } else { i }];
                let t = Instant::now();
                match p.dial(&addr).await {
                    Ok(c) => {
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        c.close(ErrorCode::Ok, "bench");
                        c.closed().await;
                    }
                    Err(_) => fails += 1,
                }
            }
            (lat, fails)
        }));
    }
    let mut lat = Vec::new();
    let mut fails = 0;
    for w in workers {
        let (l, f) = w.await.unwrap();
        lat.extend(l);
        fails += f;
    }
    ConnectResult {
        elapsed: t0.elapsed(),
        latencies_ms: lat,
        failures: fails,
        dialer_cpu: crate::util::cpu_time() - c0,
    }
}

/// Opens `n` authenticated sessions and keeps them (the caller holds the returned value).
pub async fn idle(
    addr: &str,
    n: usize,
    keepalive: Duration,
) -> (Box<dyn std::any::Any + Send>, usize, u64) {
    let peer = client(64, keepalive).await;
    let dial = |_| {
        let (peer, addr) = (peer.clone(), addr.to_string());
        async move { peer.dial(&addr).await.ok() }
    };
    let warm = crate::util::run_bounded(1, 1, &dial).await;
    let r0 = crate::util::rss_kib().0;
    let conns = crate::util::run_bounded(n, 32, &dial).await;
    let ok = conns.len();
    (Box::new((peer, warm, conns)), ok, r0)
}
