//! snap2p benchmark harness: snap2p against rust-libp2p (TCP+noise+yamux, QUIC) and two
//! ceilings (plain TCP, snow Noise over TCP), both ends on loopback in separate OS
//! processes (this program re-executes itself as the listening side, one fresh process per
//! round and system). Systems alternate round by round; every figure is the median of the
//! rounds, with its min–max range.
//!
//! With `--features compare`, iroh (1.x, QUIC) too (issue 36; bench/src/irohq.rs).
//!
//! Usage: snap2p-bench [all|smoke|bulk|small|connect|rtt|streams|many|idle|idle-default|bindings]...
//!        [--rounds N] [--out FILE] [--only snap2p,snap2p-cold,snap2p-cold-v1,snap2p-ws,snap2p-wss,snap2p-norekey,libp2p-tcp,libp2p-quic,libp2p-ws,iroh,iroh-cold,iroh-100,tcp,snow]

mod bindings;
mod delay;
#[cfg(feature = "compare")]
mod irohq;
#[cfg(feature = "compare")]
mod p2p;
mod raw;
mod relay;
mod snap;
mod util;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use util::{median, percentile};

pub struct ServerOpts {
    pub max_streams: usize,
    pub keepalive: Duration,
    pub live: Arc<AtomicI64>,
}

pub struct StreamsResult {
    pub elapsed: Duration,
    pub ok: usize,
    pub bad: usize,
    pub refused: usize,
}

pub struct ConnectResult {
    pub elapsed: Duration,
    pub latencies_ms: Vec<f64>,
    pub failures: usize,
    /// This (the dialing) process's CPU over the same clock as `elapsed`.
    pub dialer_cpu: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Sys {
    Snap,
    SnapCold,
    /// First contacts with the v1 handshake of three round trips (`snap::HS2_OFF` on the
    /// dialer; the listener is the same), where `SnapCold` uses hs2 (PROTOCOL.md §5.8).
    SnapColdV1,
    /// snap2p over WebSocket (`ws://` on loopback, core/src/transport/ws.rs).
    SnapWs,
    /// snap2p over WebSocket in TLS (`wss://`, rustls, a test CA from rcgen).
    SnapWss,
    /// snap2p over TCP with rekeying off on both ends (`snap::REKEY_OFF`).
    SnapNoRekey,
    /// snap2p through a RELAY-1 relay in a third process (bench/src/relay.rs): a spliced
    /// circuit (PROTOCOL.md §32.3, the default).
    SnapRelay,
    /// The same with the relay's splicing off: the circuit stays on the two sessions'
    /// streams (every byte sealed three times).
    SnapRelayStreams,
    /// snap2p with permission rules on the listener (`snap::RULES_ON`, issue 34).
    SnapRules,
    Libp2pTcp,
    Libp2pQuic,
    /// rust-libp2p over WebSocket (`/ws` over TCP) + noise + yamux.
    Libp2pWs,
    /// iroh 1.x: QUIC, relays/address lookup/port mapping off, one endpoint per dialer
    /// (connect rows: it has connected to the listener before, TLS tickets cached).
    Iroh,
    /// iroh, a new endpoint (new key, empty ticket cache) per connection.
    IrohCold,
    /// iroh with its default limit of 100 concurrent streams per connection.
    IrohDefault,
    Tcp,
    Noise,
}

impl Sys {
    fn name(self) -> &'static str {
        match self {
            Sys::Snap => "snap2p",
            Sys::SnapCold => "snap2p first contact",
            Sys::SnapColdV1 => "snap2p first contact, v1 handshake",
            Sys::SnapWs => "snap2p over ws://",
            Sys::SnapWss => "snap2p over wss://",
            Sys::SnapNoRekey => "snap2p, rekey off",
            Sys::SnapRelay => "snap2p through a relay (RELAY-1 over TCP, spliced)",
            Sys::SnapRelayStreams => "snap2p through a relay (RELAY-1 over TCP, on streams)",
            Sys::SnapRules => "snap2p, permission rules on",
            Sys::Libp2pTcp => "libp2p tcp+noise+yamux",
            Sys::Libp2pQuic => "libp2p quic",
            Sys::Libp2pWs => "libp2p ws+noise+yamux",
            Sys::Iroh => "iroh quic",
            Sys::IrohCold => "iroh quic first contact",
            Sys::IrohDefault => "iroh quic, default 100 streams",
            Sys::Tcp => "plain TCP (ceiling)",
            Sys::Noise => "snow over TCP (ChaChaPoly, no mux)",
        }
    }
    fn server_kind(self) -> &'static str {
        match self {
            Sys::Snap | Sys::SnapCold | Sys::SnapColdV1 => "snap",
            Sys::SnapWs => "snapws",
            Sys::SnapWss => "snapwss",
            Sys::SnapNoRekey => "snapnorekey",
            Sys::SnapRelay | Sys::SnapRelayStreams => "snaprelay",
            Sys::SnapRules => "snaprules",
            Sys::Libp2pTcp | Sys::Libp2pQuic | Sys::Libp2pWs => "libp2p",
            Sys::Iroh | Sys::IrohCold => "iroh",
            Sys::IrohDefault => "iroh100",
            Sys::Tcp => "tcp",
            Sys::Noise => "noise",
        }
    }
    fn is_libp2p(self) -> bool {
        matches!(self, Sys::Libp2pTcp | Sys::Libp2pQuic | Sys::Libp2pWs)
    }
    fn is_snap(self) -> bool {
        matches!(
            self,
            Sys::Snap
                | Sys::SnapCold
                | Sys::SnapColdV1
                | Sys::SnapWs
                | Sys::SnapWss
                | Sys::SnapNoRekey
                | Sys::SnapRelay
                | Sys::SnapRelayStreams
                | Sys::SnapRules
        )
    }
    #[cfg(feature = "compare")]
    fn via(self) -> p2p::Via {
        match self {
            Sys::Libp2pQuic => p2p::Via::Quic,
            Sys::Libp2pWs => p2p::Via::Ws,
            _ => p2p::Via::Tcp,
        }
    }
}

#[derive(Clone)]
struct Sizes {
    rounds: usize,
    bulk: u64,
    small: u64,
    /// One stream through each language package (and the native client): long enough that
    /// a JIT's compiles (JVM C2, V8) are over well before its end.
    bindings: u64,
    connects1: usize,
    connects16: usize,
    /// First-contact and warm dials through the delaying relay (`rtt`), one at a time.
    rtt_dials: usize,
    streams: usize,
    /// Batches of `streams` concurrent streams per round and system (issue 36: one 0.1 s
    /// batch swung with the machine); the figure is all their bytes over all their time.
    stream_batches: usize,
    many: usize,
    many_libp2p: usize,
    idle: usize,
    idle_secs: u64,
    /// Idle reservations one relay holds (issue 28: target ≥ 10,000).
    reservations: usize,
    /// Labelled stream opens per round, rules on and off (issue 34).
    opens: usize,
}

impl Sizes {
    fn full() -> Self {
        Sizes {
            rounds: 5,
            bulk: 2 << 30,
            small: 256 << 20,
            bindings: 1 << 30,
            connects1: 200,
            connects16: 400,
            rtt_dials: 20,
            streams: 1000,
            stream_batches: 10,
            many: 100_000,
            many_libp2p: 4096,
            idle: 5000,
            idle_secs: 5,
            reservations: 10_000,
            opens: 50_000,
        }
    }
    fn smoke() -> Self {
        Sizes {
            rounds: 1,
            bulk: 32 << 20,
            small: 4 << 20,
            bindings: 4 << 20,
            connects1: 20,
            connects16: 48,
            rtt_dials: 4,
            streams: 100,
            stream_batches: 1,
            many: 2000,
            many_libp2p: 500,
            idle: 200,
            idle_secs: 2,
            reservations: 200,
            opens: 2000,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The listening side: a child process.

async fn serve_main(kind: &str, max_streams: usize, keepalive_ms: u64) {
    util::raise_fd_limit();
    let opts = ServerOpts {
        max_streams,
        keepalive: Duration::from_millis(keepalive_ms),
        live: Arc::new(AtomicI64::new(0)),
    };
    let live = opts.live.clone();
    let addr = match kind {
        "snap" => snap::serve(opts).await,
        "snapws" => snap::serve_on(opts, "ws://127.0.0.1:0/bench").await,
        "snapwss" => snap::serve_on(opts, "wss://127.0.0.1:0/bench").await,
        "snapcount" => {
            snap::COUNT_ONLY.store(true, std::sync::atomic::Ordering::Relaxed);
            snap::serve(opts).await
        }
        "snapread" => {
            snap::COUNT_ONLY.store(true, std::sync::atomic::Ordering::Relaxed);
            snap::COUNT_COPY.store(true, std::sync::atomic::Ordering::Relaxed);
            snap::serve(opts).await
        }
        "snapnorekey" => {
            snap::REKEY_OFF.store(true, std::sync::atomic::Ordering::Relaxed);
            snap::serve(opts).await
        }
        "relay" => relay::serve_relay(opts, true).await,
        "relaystreams" => relay::serve_relay(opts, false).await,
        "snaprules" => {
            snap::RULES_ON.store(true, std::sync::atomic::Ordering::Relaxed);
            snap::serve(opts).await
        }
        "snaprelay" => relay::serve_target(opts).await,
        "tcp" => raw::serve(false).await,
        "noise" => raw::serve(true).await,
        #[cfg(feature = "compare")]
        "libp2p" => p2p::serve(opts).await,
        #[cfg(feature = "compare")]
        "iroh" => irohq::serve(opts, false).await,
        #[cfg(feature = "compare")]
        "iroh100" => irohq::serve(opts, true).await,
        other => {
            println!("ERR unsupported system {other} (build with --features compare)");
            return;
        }
    };
    println!("ADDR {addr}");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        match l.trim() {
            "stat" => {
                let (rss, hwm) = util::rss_kib();
                println!(
                    "STAT {rss} {hwm} {} {}",
                    util::cpu_time().as_micros(),
                    live.load(std::sync::atomic::Ordering::Relaxed)
                );
            }
            "reset-peak" => {
                util::reset_peak_rss();
                println!("OK");
            }
            _ => break,
        }
    }
    std::process::exit(0);
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    addr: String,
    /// The relay process a `snaprelay` listener reserved on.
    relay: Option<Box<Server>>,
}

struct Stat {
    rss_kib: u64,
    hwm_kib: u64,
    cpu: Duration,
    live: i64,
}

impl Server {
    async fn start(sys: Sys, max_streams: usize, keepalive: Duration) -> Server {
        let relay = match sys {
            Sys::SnapRelay => Some(Box::new(
                Server::start_kind("relay", None, 1024, keepalive).await,
            )),
            Sys::SnapRelayStreams => Some(Box::new(
                Server::start_kind("relaystreams", None, 1024, keepalive).await,
            )),
            _ => None,
        };
        let mut srv = Server::start_kind(
            sys.server_kind(),
            relay.as_ref().map(|r| r.addr.as_str()),
            max_streams,
            keepalive,
        )
        .await;
        srv.relay = relay;
        srv
    }

    async fn start_kind(
        kind: &str,
        relay: Option<&str>,
        max_streams: usize,
        keepalive: Duration,
    ) -> Server {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new(exe);
        if let Some(dir) = snap::TLS_DIR.get() {
            cmd.env(snap::TLS_ENV, dir);
        }
        if let Some(r) = relay {
            cmd.env(relay::RELAY_ENV, r);
        }
        let mut child = cmd
            .args([
                "serve",
                kind,
                &max_streams.to_string(),
                &keepalive.as_millis().to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn server");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap_or_default();
        let addr = first
            .strip_prefix("ADDR ")
            .unwrap_or_else(|| panic!("server said: {first}"))
            .to_string();
        Server {
            child,
            stdin,
            lines,
            addr,
            relay: None,
        }
    }

    async fn cmd(&mut self, c: &str) -> String {
        self.stdin
            .write_all(format!("{c}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        self.lines.next_line().await.unwrap().unwrap_or_default()
    }

    async fn stat(&mut self) -> Stat {
        let l = self.cmd("stat").await;
        let f: Vec<u64> = l
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        Stat {
            rss_kib: f[0],
            hwm_kib: f[1],
            cpu: Duration::from_micros(f[2]),
            live: f[3] as i64,
        }
    }

    async fn stop(mut self) {
        let _ = self.stdin.write_all(b"quit\n").await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
        if let Some(r) = self.relay.take() {
            Box::pin(r.stop()).await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Samples and the table.

#[derive(Clone, Debug, Default)]
struct Sample {
    /// The headline figure (MiB/s, connections/s, KiB per session).
    value: f64,
    ok: bool,
    note: String,
    p50: f64,
    p99: f64,
    extra: BTreeMap<&'static str, f64>,
}

type Results = BTreeMap<(String, Sys), Vec<Sample>>;

async fn bulk(sys: Sys, pat: Arc<Vec<u8>>, total: u64, size: usize) -> Sample {
    let mut srv = Server::start(sys, 1024, Duration::from_secs(30)).await;
    let addr = srv.addr.clone();
    // CPU of both processes (utime + stime from /proc/<pid>/stat) around the dial, the
    // transfer and the close: CPU-seconds per GiB on each side (issue 36).
    let srv_pid = srv.child.id().unwrap_or(0);
    let relay_pid = srv.relay.as_ref().and_then(|r| r.child.id());
    let (d0, l0) = (
        util::proc_cpu_secs(std::process::id()),
        util::proc_cpu_secs(srv_pid),
    );
    let r0 = relay_pid.map(util::proc_cpu_secs);
    let (dt, ok) = match sys {
        // The ws listener's ADDR is its ws:// locator, the relayed one's its relay://…/SP…
        // locator: the same client dials them.
        Sys::Snap
        | Sys::SnapCold
        | Sys::SnapColdV1
        | Sys::SnapWs
        | Sys::SnapWss
        | Sys::SnapRelay
        | Sys::SnapRelayStreams => snap::bulk(&addr, pat, total, size).await,
        Sys::SnapNoRekey => {
            snap::REKEY_OFF.store(true, std::sync::atomic::Ordering::Relaxed);
            let r = snap::bulk(&addr, pat, total, size).await;
            snap::REKEY_OFF.store(false, std::sync::atomic::Ordering::Relaxed);
            r
        }
        // The permission-rules rows measure stream opens only (workload `opens`).
        Sys::SnapRules => unreachable!("no bulk rows with permission rules"),
        Sys::Tcp => raw::bulk_tcp(&addr, pat, total, size).await,
        Sys::Noise => raw::bulk_noise(&addr, pat, total, size).await,
        #[cfg(feature = "compare")]
        Sys::Libp2pTcp | Sys::Libp2pQuic | Sys::Libp2pWs => {
            p2p::bulk(&addr, sys.via(), pat, total, size).await
        }
        #[cfg(feature = "compare")]
        Sys::Iroh | Sys::IrohCold | Sys::IrohDefault => irohq::bulk(&addr, pat, total, size).await,
        #[cfg(not(feature = "compare"))]
        _ => unreachable!(),
    };
    let (d1, l1) = (
        util::proc_cpu_secs(std::process::id()),
        util::proc_cpu_secs(srv_pid),
    );
    let r1 = relay_pid.map(util::proc_cpu_secs);
    let st = srv.stat().await;
    srv.stop().await;
    let mut s = Sample {
        value: total as f64 / (1 << 20) as f64 / dt.as_secs_f64(),
        ok,
        ..Default::default()
    };
    s.extra.insert("server_hwm_mib", st.hwm_kib as f64 / 1024.0);
    let gib = total as f64 / (1u64 << 30) as f64;
    s.extra.insert("dialer_cpu_s_per_gib", (d1 - d0) / gib);
    s.extra.insert("listener_cpu_s_per_gib", (l1 - l0) / gib);
    if let (Some(r0), Some(r1)) = (r0, r1) {
        s.extra.insert("relay_cpu_s_per_gib", (r1 - r0) / gib);
    }
    if !ok {
        s.note = "CHECKSUM MISMATCH".into();
    }
    s
}

async fn streams(sys: Sys, pat: Arc<Vec<u8>>, n: usize, size: usize, conc: usize) -> Sample {
    streams_batches(sys, pat, n, size, conc, 1, None).await
}

/// [`streams`] `batches` times against one listener, each batch on a new session; the
/// figure is all bytes over the sum of the batches' times (connects not counted).
async fn streams_batches(
    sys: Sys,
    pat: Arc<Vec<u8>>,
    n: usize,
    size: usize,
    conc: usize,
    batches: usize,
    label: Option<&'static str>,
) -> Sample {
    let max_streams = (conc * 2).max(1024);
    let mut srv = Server::start(sys, max_streams, Duration::from_secs(30)).await;
    let addr = srv.addr.clone();
    util::reset_peak_rss();
    let mut r = StreamsResult {
        elapsed: Duration::ZERO,
        ok: 0,
        bad: 0,
        refused: 0,
    };
    let mut per_batch = Vec::new();
    for _ in 0..batches.max(1) {
        let b = match sys {
            Sys::Snap | Sys::SnapCold | Sys::SnapWs | Sys::SnapRules => {
                snap::streams(&addr, pat.clone(), n, size, conc, max_streams, label).await
            }
            #[cfg(feature = "compare")]
            Sys::Libp2pTcp | Sys::Libp2pQuic | Sys::Libp2pWs => {
                p2p::streams(&addr, sys.via(), pat.clone(), n, size, conc).await
            }
            #[cfg(feature = "compare")]
            Sys::Iroh | Sys::IrohCold | Sys::IrohDefault => {
                irohq::streams(&addr, pat.clone(), n, size, conc).await
            }
            _ => unreachable!(),
        };
        per_batch.push((n * size) as f64 / (1 << 20) as f64 / b.elapsed.as_secs_f64());
        r.elapsed += b.elapsed;
        r.ok += b.ok;
        r.bad += b.bad;
        r.refused += b.refused;
    }
    let n = n * batches.max(1);
    let (_, client_hwm) = util::rss_kib();
    let st = srv.stat().await;
    srv.stop().await;
    let mut s = Sample {
        value: (n * size) as f64 / (1 << 20) as f64 / r.elapsed.as_secs_f64(),
        ok: r.ok == n,
        ..Default::default()
    };
    s.extra.insert("ok", r.ok as f64);
    s.extra.insert("failed", r.bad as f64);
    s.extra.insert("refused", r.refused as f64);
    s.extra.insert("server_hwm_mib", st.hwm_kib as f64 / 1024.0);
    s.extra.insert("client_hwm_mib", client_hwm as f64 / 1024.0);
    s.extra.insert("secs", r.elapsed.as_secs_f64());
    let (lo, hi) = util::min_max(&per_batch);
    s.extra.insert("batch_min", lo);
    s.extra.insert("batch_max", hi);
    s
}

async fn connect(sys: Sys, count: usize, inflight: usize) -> Sample {
    let mut srv = Server::start(sys, 1024, Duration::from_secs(30)).await;
    let addr = srv.addr.clone();
    // The listener does nothing but these sessions (first-contact dialers are made before
    // the dialer's clock starts, while the listener waits), so its CPU over the whole call
    // is theirs.
    let l0 = srv.stat().await.cpu;
    let mut r = sessions(sys, &addr, count, inflight).await;
    let l1 = srv.stat().await.cpu;
    srv.stop().await;
    let sessions = r.latencies_ms.len().max(1) as f64;
    let rate = r.latencies_ms.len() as f64 / r.elapsed.as_secs_f64();
    let mut s = sessions_sample(&mut r, rate);
    // CPU per session on each side (issue 36: the handshake's CPU, where it goes).
    let us = |d: Duration| d.as_secs_f64() * 1e6 / sessions;
    s.extra.insert("dialer_cpu_us", us(r.dialer_cpu));
    s.extra.insert("listener_cpu_us", us(l1.saturating_sub(l0)));
    s
}

/// One way of the `rtt` workload's link: 10 ms each way, a 20 ms round trip.
const RTT_ONE_WAY: Duration = Duration::from_millis(10);

/// Sessions through a link of [`RTT_ONE_WAY`] each way ([`delay::relay`]), one at a time:
/// the connect→auth latency counts a handshake's round trips, which loopback hides
/// (docs/proposals/0001-two-round-trip-handshake.md).
async fn rtt(sys: Sys, count: usize) -> Sample {
    let srv = Server::start(sys, 1024, Duration::from_secs(30)).await;
    let addr = through_delay(sys, &srv.addr).await;
    let mut r = sessions(sys, &addr, count, 1).await;
    srv.stop().await;
    let mut s = sessions_sample(&mut r, f64::NAN);
    s.value = s.p50;
    s
}

/// `count` sessions of `sys` to `addr`, `inflight` at a time (the connect and rtt rows).
async fn sessions(sys: Sys, addr: &str, count: usize, inflight: usize) -> ConnectResult {
    match sys {
        Sys::Snap | Sys::SnapWs | Sys::SnapWss => snap::connect(addr, count, inflight, false).await,
        Sys::SnapCold => snap::connect(addr, count, inflight, true).await,
        Sys::SnapColdV1 => {
            snap::HS2_OFF.store(true, std::sync::atomic::Ordering::Relaxed);
            let r = snap::connect(addr, count, inflight, true).await;
            snap::HS2_OFF.store(false, std::sync::atomic::Ordering::Relaxed);
            r
        }
        #[cfg(feature = "compare")]
        Sys::Libp2pTcp | Sys::Libp2pQuic | Sys::Libp2pWs => {
            p2p::connect(addr, sys.via(), count, inflight).await
        }
        #[cfg(feature = "compare")]
        Sys::Iroh | Sys::IrohDefault => irohq::connect(addr, count, inflight, false).await,
        #[cfg(feature = "compare")]
        Sys::IrohCold => irohq::connect(addr, count, inflight, true).await,
        _ => unreachable!(),
    }
}

/// A sessions run's sample: latency percentiles, failures, and `value` as its headline.
fn sessions_sample(r: &mut ConnectResult, value: f64) -> Sample {
    Sample {
        value,
        ok: r.failures == 0,
        p50: percentile(&mut r.latencies_ms, 50.0),
        p99: percentile(&mut r.latencies_ms, 99.0),
        note: if r.failures > 0 {
            format!("{} failed", r.failures)
        } else {
            String::new()
        },
        ..Default::default()
    }
}

/// `addr` (a listener's ADDR line) with its TCP port replaced by a delaying relay's.
async fn through_delay(sys: Sys, addr: &str) -> String {
    let relayed = |port: u16| async move {
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        delay::relay(target, RTT_ONE_WAY).await.port()
    };
    match sys {
        Sys::Snap | Sys::SnapCold | Sys::SnapColdV1 => {
            let a: std::net::SocketAddr = addr.parse().expect("snap2p listener address");
            format!("127.0.0.1:{}", relayed(a.port()).await)
        }
        // iroh's: its endpoint id and UDP socket.
        #[cfg(feature = "compare")]
        Sys::Iroh | Sys::IrohCold => {
            let (id, sock) = addr.split_once(' ').expect("iroh listener address");
            let sock: std::net::SocketAddr = sock.trim().parse().expect("iroh socket");
            format!("{id} {}", delay::udp_relay(sock, RTT_ONE_WAY).await)
        }
        // The TCP multiaddr, /ip4/127.0.0.1/tcp/PORT/p2p/ID, among the listener's.
        #[cfg(feature = "compare")]
        _ => {
            let mut parts: Vec<String> = addr.split_whitespace().map(str::to_string).collect();
            let i = sys.via() as usize;
            let port: u16 = parts[i]
                .split('/')
                .skip_while(|p| *p != "tcp")
                .nth(1)
                .and_then(|p| p.parse().ok())
                .expect("a TCP multiaddr");
            let new = relayed(port).await;
            parts[i] = parts[i].replace(&format!("/tcp/{port}/"), &format!("/tcp/{new}/"));
            parts.join(" ")
        }
        #[cfg(not(feature = "compare"))]
        _ => unreachable!(),
    }
}

/// The dialing side of the idle workload runs in its own fresh process too, so its RSS
/// delta is not hidden by heap left over from earlier workloads.
async fn idle_client_main(kind: &str, addr: &str, n: usize, keepalive_ms: u64, secs: u64) {
    util::raise_fd_limit();
    // The baseline is taken by each system's `idle` once its client exists and has made one
    // session (as the server's is taken once it listens): before, it was taken before the
    // client was even created, and the client's per-session figure carried its creation
    // (wallet, transports, TLS roots) and first-dial costs divided by n.
    let (guard, ok, r0) = match kind {
        "snap" => snap::idle(addr, n, Duration::from_millis(keepalive_ms)).await,
        #[cfg(feature = "compare")]
        "libp2p" => p2p::idle(addr, n).await,
        #[cfg(feature = "compare")]
        "iroh" | "iroh100" => irohq::idle(addr, n).await,
        _ => (Box::new(()) as Box<dyn std::any::Any + Send>, 0, 0),
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (r1, _) = util::rss_kib();
    println!("UP {r0} {r1} {ok}");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let _ = lines.next_line().await;
    let c0 = util::cpu_time();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let pct = (util::cpu_time() - c0).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0;
    println!("CPU {pct}");
    let _ = lines.next_line().await;
    drop(guard);
    std::process::exit(0);
}

async fn idle(sys: Sys, n: usize, secs: u64) -> Sample {
    idle_with(sys, n, secs, Duration::from_secs(1)).await
}

/// [`idle`] with the sessions' keepalive interval (and the CPU window) chosen.
async fn idle_with(sys: Sys, n: usize, secs: u64, keepalive: Duration) -> Sample {
    let mut srv = Server::start(sys, 64, keepalive).await;
    let addr = srv.addr.clone();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s0 = srv.stat().await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "idle-client",
            sys.server_kind(),
            &addr,
            &n.to_string(),
            &keepalive.as_millis().to_string(),
            &secs.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn idle client");
    let mut cin = child.stdin.take().unwrap();
    let mut cout = BufReader::new(child.stdout.take().unwrap()).lines();
    let up = cout.next_line().await.unwrap().unwrap_or_default();
    let f: Vec<f64> = up
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let (c0, c1, ok) = (f[0], f[1], f[2] as usize);
    let s1 = srv.stat().await;
    let t0 = Instant::now();
    cin.write_all(b"go\n").await.unwrap();
    cin.flush().await.unwrap();
    let cpu = cout.next_line().await.unwrap().unwrap_or_default();
    let s2 = srv.stat().await;
    let wall = t0.elapsed().as_secs_f64();
    let client_cpu: f64 = cpu
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(f64::NAN);
    let _ = cin.write_all(b"quit\n").await;
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let _ = child.kill().await;
    srv.stop().await;
    let srv_kib = (s1.rss_kib as f64 - s0.rss_kib as f64) / n as f64;
    let cli_kib = (c1 - c0) / n as f64;
    let mut s = Sample {
        value: srv_kib.max(cli_kib),
        ok: ok == n && s1.live as usize >= n,
        note: if ok == n {
            String::new()
        } else {
            format!("only {ok}/{n} sessions")
        },
        ..Default::default()
    };
    s.extra.insert("server_kib", srv_kib);
    s.extra.insert("client_kib", cli_kib);
    s.extra.insert(
        "server_cpu_pct",
        (s2.cpu - s1.cpu).as_secs_f64() / wall * 100.0,
    );
    s.extra.insert("client_cpu_pct", client_cpu);
    s
}

/// Issue 28: `n` idle reservations on one relay process, taken by a client process of
/// their own (`reserve-client`): the relay's RSS growth per reservation, how many it holds,
/// how fast they were taken, its idle CPU with all of them, and one circuit through it to
/// the last reserved peer.
async fn reservations(n: usize) -> Sample {
    let mut relay = Server::start_kind("relay", None, 64, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s0 = relay.stat().await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["reserve-client", &relay.addr, &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn reserve client");
    let mut cin = child.stdin.take().unwrap();
    let mut cout = BufReader::new(child.stdout.take().unwrap()).lines();
    let up = cout.next_line().await.unwrap().unwrap_or_default();
    let f: Vec<&str> = up.split_whitespace().skip(1).collect();
    let ok: usize = f.first().and_then(|x| x.parse().ok()).unwrap_or(0);
    let secs: f64 = f.get(1).and_then(|x| x.parse().ok()).unwrap_or(f64::NAN);
    let loc = f.get(2).copied().unwrap_or("-").to_string();
    // The relay refreshes its count every 100 ms.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s1 = relay.stat().await;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s2 = relay.stat().await;
    let idle_cpu = (s2.cpu - s1.cpu).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0;
    let echo = relay::echo_through(&loc).await;
    let _ = cin.write_all(b"quit\n").await;
    let _ = cin.flush().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let _ = child.kill().await;
    relay.stop().await;
    let held = s1.live.max(0) as usize;
    let kib = (s1.rss_kib as f64 - s0.rss_kib as f64) / held.max(1) as f64;
    let mut s = Sample {
        value: kib,
        ok: ok == n && held == n && echo,
        note: if ok == n && held == n {
            String::new()
        } else {
            format!("only {ok}/{n} taken, {held} held")
        },
        ..Default::default()
    };
    if !echo {
        s.note.push_str(" circuit to the last reserved peer FAILED");
    }
    s.extra.insert("held", held as f64);
    s.extra.insert("per_sec", ok as f64 / secs);
    s.extra.insert("secs", secs);
    s.extra.insert("idle_cpu_pct", idle_cpu);
    s.extra.insert("echo", f64::from(u8::from(echo)));
    s
}

// ---------------------------------------------------------------------------------------

struct Row {
    workload: String,
    system: String,
    median: String,
    range: String,
    unit: String,
    ratio: String,
    target: String,
    met: String,
    notes: String,
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn med(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> (f64, f64, f64) {
    let v: Vec<f64> = samples.iter().map(f).collect();
    let (min, max) = util::min_max(&v);
    (median(&v), min, max)
}

/// Rows of one workload: every system, the ratio of snap2p's median to the reference's.
#[allow(clippy::too_many_arguments)]
fn rows_for(
    res: &Results,
    key: &str,
    label: &str,
    unit: &str,
    targets: &[(Sys, Sys, f64, &str)],
    rows: &mut Vec<Row>,
    all_ok: &mut bool,
    extra_notes: impl Fn(&[Sample]) -> String,
) {
    for ((k, sys), samples) in res.iter() {
        if k != key {
            continue;
        }
        let (m, lo, hi) = med(samples, |s| s.value);
        let completed = samples.iter().all(|s| s.ok);
        if sys.is_snap() && !completed {
            *all_ok = false;
        }
        let mut ratio = Vec::new();
        let mut target = Vec::new();
        let mut met = Vec::new();
        for (who, reference, want, what) in targets {
            if who != sys {
                continue;
            }
            let Some(rs) = res.get(&(key.to_string(), *reference)) else {
                continue;
            };
            let (rm, _, _) = med(rs, |s| s.value);
            let r = m / rm;
            // Two targets against the same reference show its ratio once.
            let shown = format!("{r:.2}× {}", short(*reference));
            if !ratio.contains(&shown) {
                ratio.push(shown);
            }
            // A target of 0: the ratio is shown, nothing is judged.
            if *want > 0.0 {
                target.push(format!("≥ {want}× {what}"));
                met.push(if r >= *want && completed { "yes" } else { "NO" }.to_string());
            }
        }
        let mut notes: Vec<String> = samples
            .iter()
            .map(|s| s.note.clone())
            .filter(|n| !n.is_empty())
            .collect();
        notes.dedup();
        let en = extra_notes(samples);
        if !en.is_empty() {
            notes.push(en);
        }
        rows.push(Row {
            workload: label.into(),
            system: sys.name().into(),
            median: fmt(m),
            range: format!("{}–{}", fmt(lo), fmt(hi)),
            unit: unit.into(),
            ratio: ratio.join("; "),
            target: target.join("; "),
            met: met.join("; "),
            notes: notes.join("; "),
        });
    }
}

fn short(s: Sys) -> &'static str {
    match s {
        Sys::Libp2pTcp => "libp2p-tcp",
        Sys::Libp2pQuic => "libp2p-quic",
        Sys::Libp2pWs => "libp2p-ws",
        Sys::Iroh => "iroh",
        Sys::IrohCold => "iroh-cold",
        Sys::IrohDefault => "iroh-100",
        Sys::Noise => "snow",
        Sys::Tcp => "tcp",
        Sys::Snap => "snap2p",
        Sys::SnapCold => "snap2p-cold",
        Sys::SnapColdV1 => "snap2p-cold-v1",
        Sys::SnapWs => "snap2p-ws",
        Sys::SnapWss => "snap2p-wss",
        Sys::SnapNoRekey => "snap2p-norekey",
        Sys::SnapRelay => "snap2p-relay",
        Sys::SnapRelayStreams => "snap2p-relay-streams",
        Sys::SnapRules => "snap2p-rules",
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve_main(
            &args[1],
            args[2].parse().unwrap(),
            args[3].parse().unwrap(),
        ));
        return;
    }
    if args.first().map(String::as_str) == Some("send") {
        // The native sender on its own, as the binding senders run (a process of its own,
        // an untimed warm-up stream first): `send ADDR TOTAL WRITE` against a `serve snap`
        // listener; prints `RESULT <MiB/s> <crc ok> <CPU s over the timed stream>`. The
        // bindings workload's native row.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let (total, size): (u64, usize) = (args[2].parse().unwrap(), args[3].parse().unwrap());
        let pat = Arc::new(util::pattern());
        let (dt, ok, cpu) = rt.block_on(snap::bulk_with(&args[1], pat, total, size, true));
        let mibs = total as f64 / 1048576.0 / dt.as_secs_f64();
        println!("RESULT {mibs:.1} {} {:.4}", u8::from(ok), cpu.as_secs_f64());
        return;
    }
    if args.first().map(String::as_str) == Some("reserve-client") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(relay::reserve_client_main(
            &args[1],
            args[2].parse().unwrap(),
        ));
        return;
    }
    if args.first().map(String::as_str) == Some("idle-client") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(idle_client_main(
            &args[1],
            &args[2],
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
            args[5].parse().unwrap(),
        ));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ok = rt.block_on(run(args));
    std::process::exit(if ok { 0 } else { 1 });
}

async fn run(args: Vec<String>) -> bool {
    util::raise_fd_limit();
    let mut sizes = Sizes::full();
    let mut which: Vec<String> = Vec::new();
    let mut out: Option<String> = None;
    let mut only: Vec<String> = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => sizes.rounds = it.next().unwrap().parse().unwrap(),
            "--out" => out = it.next(),
            // Restrict to some systems (short names: snap2p snap2p-cold snap2p-cold-v1
            // snap2p-ws snap2p-wss libp2p-tcp libp2p-quic libp2p-ws tcp snow), e.g. for
            // profiling one of them.
            "--only" => only.extend(it.next().unwrap().split(',').map(str::to_string)),
            "smoke" => {
                let r = sizes.rounds.min(1);
                sizes = Sizes::smoke();
                sizes.rounds = r.max(1);
                which.push("all".into());
            }
            "-h" | "--help" => {
                println!("snap2p-bench [all|smoke|bulk|small|connect|rtt|streams|many|idle|idle-default|relay|reservations|opens|bindings]... [--rounds N] [--out FILE] [--only snap2p,libp2p-tcp,...]");
                return true;
            }
            w => which.push(w.to_string()),
        }
    }
    if which.is_empty() {
        which.push("all".into());
    }
    let want = |w: &str| which.iter().any(|x| x == "all" || x == w);
    let compare = cfg!(feature = "compare");
    // The wss rows' certificates, made once and removed at the end of the run.
    let tls_dir = std::env::temp_dir().join(format!("snap2p-bench-tls-{}", std::process::id()));
    if (want("bulk") || want("connect"))
        && (only.is_empty() || only.iter().any(|o| o == "snap2p-wss"))
    {
        std::fs::create_dir_all(&tls_dir).expect("temp dir");
        snap::Tls::create(&tls_dir);
        let _ = snap::TLS_DIR.set(tls_dir.clone());
    }
    let lib = |v: &mut Vec<Sys>, quic: bool| {
        if compare {
            v.push(Sys::Libp2pTcp);
            if quic {
                v.push(Sys::Libp2pQuic);
            }
        }
    };
    // The iroh rows (issue 36), with `compare` only: `more` are the variants of a workload
    // (first contact for sessions, iroh's default stream limit for 1,000 streams).
    let iroh = |v: &mut Vec<Sys>, more: &[Sys]| {
        if compare {
            v.push(Sys::Iroh);
            v.extend_from_slice(more);
        }
    };
    // The WebSocket rows (issue 27): snap2p over ws:// against rust-libp2p's /ws.
    let ws = |v: &mut Vec<Sys>| {
        v.push(Sys::SnapWs);
        v.push(Sys::SnapWss);
        if compare {
            v.push(Sys::Libp2pWs);
        }
    };
    let pat = Arc::new(util::pattern());
    let mut res: Results = BTreeMap::new();
    let t_all = Instant::now();
    let (load_before, machine) = machine_info();
    eprintln!("machine: {machine}; load before: {load_before}");

    for r in 0..sizes.rounds {
        // Alternate the order of systems round by round so background load hits all.
        let rot = |v: &mut Vec<Sys>| {
            v.retain(|s| only.is_empty() || only.iter().any(|o| o == short(*s)));
            let k = r % v.len().max(1);
            v.rotate_left(k);
        };
        if want("bulk") {
            let mut v = vec![Sys::Snap, Sys::SnapNoRekey, Sys::Noise, Sys::Tcp];
            lib(&mut v, true);
            iroh(&mut v, &[]);
            ws(&mut v);
            rot(&mut v);
            for s in v {
                let x = bulk(s, pat.clone(), sizes.bulk, 64 * 1024).await;
                eprintln!(
                    "round {r} bulk-64k {}: {:.0} MiB/s ok={}",
                    s.name(),
                    x.value,
                    x.ok
                );
                res.entry(("bulk".into(), s)).or_default().push(x);
            }
        }
        if want("small") {
            let mut v = vec![Sys::Snap, Sys::Noise, Sys::Tcp];
            lib(&mut v, true);
            iroh(&mut v, &[]);
            rot(&mut v);
            for s in v {
                let x = bulk(s, pat.clone(), sizes.small, 1024).await;
                eprintln!(
                    "round {r} bulk-1k {}: {:.0} MiB/s ok={}",
                    s.name(),
                    x.value,
                    x.ok
                );
                res.entry(("small".into(), s)).or_default().push(x);
            }
        }
        if want("connect") {
            for (key, count, inflight) in [
                ("conn1", sizes.connects1, 1),
                ("conn16", sizes.connects16, 16),
            ] {
                let mut v = vec![Sys::Snap, Sys::SnapCold, Sys::SnapColdV1];
                lib(&mut v, true);
                iroh(&mut v, &[Sys::IrohCold]);
                ws(&mut v);
                rot(&mut v);
                for s in v {
                    let x = connect(s, count, inflight).await;
                    eprintln!(
                        "round {r} {key} {}: {:.0}/s p50 {:.2} ms p99 {:.2} ms {}",
                        s.name(),
                        x.value,
                        x.p50,
                        x.p99,
                        x.note
                    );
                    res.entry((key.into(), s)).or_default().push(x);
                }
            }
        }
        if want("rtt") {
            let mut v = vec![Sys::Snap, Sys::SnapCold, Sys::SnapColdV1];
            lib(&mut v, false);
            iroh(&mut v, &[Sys::IrohCold]);
            rot(&mut v);
            for s in v {
                let x = rtt(s, sizes.rtt_dials).await;
                eprintln!(
                    "round {r} rtt {}: p50 {:.1} ms p99 {:.1} ms {}",
                    s.name(),
                    x.p50,
                    x.p99,
                    x.note
                );
                res.entry(("rtt".into(), s)).or_default().push(x);
            }
        }
        if want("streams") {
            let mut v = vec![Sys::Snap];
            lib(&mut v, true);
            iroh(&mut v, &[Sys::IrohDefault]);
            rot(&mut v);
            for s in v {
                let x = streams_batches(
                    s,
                    pat.clone(),
                    sizes.streams,
                    64 * 1024,
                    sizes.streams,
                    sizes.stream_batches,
                    None,
                )
                .await;
                eprintln!(
                    "round {r} streams {}: {:.0} MiB/s {:?}",
                    s.name(),
                    x.value,
                    x.extra
                );
                res.entry(("streams".into(), s)).or_default().push(x);
            }
        }
        if want("many") {
            let mut v = vec![Sys::Snap];
            lib(&mut v, false);
            rot(&mut v);
            for s in v {
                let n = if s.is_libp2p() {
                    sizes.many_libp2p
                } else {
                    sizes.many
                };
                let x = streams(s, pat.clone(), n, 4096, 1000.min(n)).await;
                eprintln!(
                    "round {r} many {}: {:.0} MiB/s {:?}",
                    s.name(),
                    x.value,
                    x.extra
                );
                res.entry(("many".into(), s)).or_default().push(x);
            }
        }
        if want("idle") {
            let mut v = vec![Sys::Snap];
            lib(&mut v, false);
            iroh(&mut v, &[]);
            rot(&mut v);
            for s in v {
                let x = idle(s, sizes.idle, sizes.idle_secs).await;
                eprintln!(
                    "round {r} idle {}: {:.2} KiB/session {:?} {}",
                    s.name(),
                    x.value,
                    x.extra,
                    x.note
                );
                res.entry(("idle".into(), s)).or_default().push(x);
            }
        }
        if want("relay") {
            // Issue 28: the same stream through a relay and dialed directly, alternated.
            let mut v = vec![Sys::Snap, Sys::SnapRelay, Sys::SnapRelayStreams];
            rot(&mut v);
            for s in v {
                let x = bulk(s, pat.clone(), sizes.bulk, 64 * 1024).await;
                eprintln!(
                    "round {r} relay-64k {}: {:.0} MiB/s ok={} {:?}",
                    s.name(),
                    x.value,
                    x.ok,
                    x.extra
                );
                res.entry(("relay".into(), s)).or_default().push(x);
            }
        }
        if want("opens") {
            // Issue 34: labelled stream opens (256 B each, 256 at once), the listener with
            // and without permission rules, alternated.
            let mut v = vec![Sys::Snap, Sys::SnapRules];
            rot(&mut v);
            for s in v {
                let mut x = streams_batches(
                    s,
                    pat.clone(),
                    sizes.opens,
                    256,
                    256,
                    1,
                    Some(snap::OPEN_LABEL),
                )
                .await;
                // The figure: streams per second (each opened, 256 B sent, CRC answered).
                x.value *= (1 << 20) as f64 / 256.0;
                eprintln!(
                    "round {r} opens {}: {:.0} streams/s {:?}",
                    s.name(),
                    x.value,
                    x.extra
                );
                res.entry(("opens".into(), s)).or_default().push(x);
            }
        }
        if want("reservations") {
            let x = reservations(sizes.reservations).await;
            eprintln!(
                "round {r} reservations: {:.2} KiB each {:?} {}",
                x.value, x.extra, x.note
            );
            res.entry(("reservations".into(), Sys::SnapRelay))
                .or_default()
                .push(x);
        }
        if want("idle-default") {
            // Issue 29, "quiet when idle": the default keepalive (30 s), CPU over two of its
            // intervals and a bit, so every session pings at least twice in the window.
            let ka = snap2p::SessionLimits::default().keepalive_interval;
            let secs = if sizes.idle_secs <= 2 {
                3
            } else {
                ka.as_secs() * 2 + 5
            };
            let x = idle_with(Sys::Snap, sizes.idle, secs, ka).await;
            eprintln!(
                "round {r} idle-default snap2p: {:.2} KiB/session {:?} {}",
                x.value, x.extra, x.note
            );
            res.entry(("idle-default".into(), Sys::Snap))
                .or_default()
                .push(x);
        }
    }
    let mut bind_rows = Vec::new();
    let mut native_sender_ok = true;
    if want("bindings") {
        (bind_rows, native_sender_ok) = bindings::run(sizes.bindings, sizes.rounds).await;
    }

    // ---- table
    let mut rows = Vec::new();
    let mut all_ok = true;
    let gib = |b: u64| {
        if b >= 1 << 30 {
            format!("{} GiB", b >> 30)
        } else {
            format!("{} MiB", b >> 20)
        }
    };
    // CPU-seconds per GiB moved, each side (issue 36): /proc/<pid>/stat of the dialing
    // process (this one) and the listener child, around dial + transfer + close.
    let cpu = |s: &[Sample]| {
        let g = |k: &str| med(s, |x| x.extra.get(k).copied().unwrap_or(f64::NAN));
        let (d, dlo, dhi) = g("dialer_cpu_s_per_gib");
        let (l, llo, lhi) = g("listener_cpu_s_per_gib");
        format!("CPU-s/GiB dialer {d:.2} ({dlo:.2}–{dhi:.2}), listener {l:.2} ({llo:.2}–{lhi:.2})")
    };
    let hwm = |s: &[Sample]| {
        let (m, _, hi) = med(s, |x| {
            x.extra.get("server_hwm_mib").copied().unwrap_or(f64::NAN)
        });
        let (c, _, _) = med(s, |x| {
            x.extra.get("client_hwm_mib").copied().unwrap_or(f64::NAN)
        });
        let fails: f64 = s
            .iter()
            .map(|x| {
                x.extra.get("failed").copied().unwrap_or(0.0)
                    + x.extra.get("refused").copied().unwrap_or(0.0)
            })
            .sum();
        let oks: f64 = s
            .iter()
            .map(|x| x.extra.get("ok").copied().unwrap_or(0.0))
            .sum();
        let (blo, _, _) = med(s, |x| x.extra.get("batch_min").copied().unwrap_or(f64::NAN));
        let (bhi, _, _) = med(s, |x| x.extra.get("batch_max").copied().unwrap_or(f64::NAN));
        let batches = if blo.is_nan() || blo == bhi {
            String::new()
        } else {
            format!("; one batch {blo:.0}–{bhi:.0} MiB/s (median round)")
        };
        format!(
            "streams ok {oks:.0}, failed/refused {fails:.0} (all rounds); peak RSS server {m:.0} MiB (max {hi:.0}), client {c:.0} MiB{batches}"
        )
    };
    rows_for(
        &res,
        "bulk",
        &format!("1 stream, {}, 64 KiB writes", gib(sizes.bulk)),
        "MiB/s",
        &[
            (Sys::Snap, Sys::Libp2pTcp, 1.4, "libp2p-tcp"),
            (Sys::Snap, Sys::Iroh, 0.0, "iroh"),
            (Sys::Snap, Sys::Noise, 0.9, "snow"),
            (Sys::Snap, Sys::Tcp, 0.9, "plain TCP (issue 36, next)"),
            (Sys::Iroh, Sys::Tcp, 0.0, "tcp"),
            (Sys::Libp2pTcp, Sys::Tcp, 0.0, "tcp"),
            (Sys::SnapWs, Sys::Snap, 0.85, "snap2p over TCP"),
            (Sys::SnapWs, Sys::Libp2pWs, 2.0, "libp2p-ws"),
            (Sys::SnapWss, Sys::SnapWs, 0.75, "snap2p over ws://"),
            (
                Sys::Snap,
                Sys::SnapNoRekey,
                0.95,
                "rekey off (issue 29: within noise)",
            ),
        ],
        &mut rows,
        &mut all_ok,
        cpu,
    );
    rows_for(
        &res,
        "small",
        &format!("1 stream, {}, 1 KiB writes", gib(sizes.small)),
        "MiB/s",
        &[
            (Sys::Snap, Sys::Libp2pTcp, 3.0, "libp2p-tcp"),
            (Sys::Snap, Sys::Iroh, 0.0, "iroh"),
        ],
        &mut rows,
        &mut all_ok,
        cpu,
    );
    let lat = |s: &[Sample]| {
        let (p50, _, _) = med(s, |x| x.p50);
        let (p99, _, _) = med(s, |x| x.p99);
        let g = |k: &str| med(s, |x| x.extra.get(k).copied().unwrap_or(f64::NAN)).0;
        let (d, l) = (g("dialer_cpu_us"), g("listener_cpu_us"));
        format!(
            "connect→auth latency p50 {p50:.2} ms, p99 {p99:.2} ms; CPU per session dialer {d:.0} µs, listener {l:.0} µs, both {:.0} µs",
            d + l
        )
    };
    for (key, n) in [("conn1", 1), ("conn16", 16)] {
        rows_for(
            &res,
            key,
            &format!("sessions: connect+auth+close, {n} in flight"),
            "conn/s",
            &[
                (Sys::Snap, Sys::Libp2pTcp, 1.2, "libp2p-tcp (verified once)"),
                (Sys::Snap, Sys::Iroh, 0.0, "iroh"),
                (
                    Sys::SnapCold,
                    Sys::Libp2pTcp,
                    0.8,
                    "libp2p-tcp (first contact)",
                ),
                (
                    Sys::SnapCold,
                    Sys::Libp2pTcp,
                    1.5,
                    "libp2p-tcp (first contact; issue 36, next)",
                ),
                (Sys::SnapCold, Sys::IrohCold, 0.0, "iroh first contact"),
                (
                    Sys::SnapCold,
                    Sys::SnapColdV1,
                    0.0,
                    "v1 handshake (hs2 against v1)",
                ),
                (Sys::SnapWs, Sys::Libp2pWs, 1.2, "libp2p-ws (as over TCP)"),
            ],
            &mut rows,
            &mut all_ok,
            lat,
        );
    }
    let round_trips = |s: &[Sample]| {
        let (p50, _, _) = med(s, |x| x.p50);
        let (p99, _, _) = med(s, |x| x.p99);
        let rtt_ms = 2.0 * RTT_ONE_WAY.as_secs_f64() * 1e3;
        format!(
            "{:.2} round trips of {rtt_ms:.0} ms; p99 {p99:.1} ms (a TCP connect to the relay is not delayed; QUIC has none)",
            p50 / rtt_ms
        )
    };
    rows_for(
        &res,
        "rtt",
        &format!(
            "sessions through a link of {} ms each way, 1 at a time: connect→auth, median",
            RTT_ONE_WAY.as_millis()
        ),
        "ms",
        &[(
            Sys::SnapColdV1,
            Sys::SnapCold,
            0.0,
            "hs2 (v1's time over hs2's)",
        )],
        &mut rows,
        &mut all_ok,
        round_trips,
    );
    rows_for(
        &res,
        "streams",
        &format!(
            "{} concurrent streams × 64 KiB, 1 session, {} batches per round",
            sizes.streams, sizes.stream_batches
        ),
        "MiB/s",
        &[
            (Sys::Snap, Sys::Libp2pTcp, 2.0, "libp2p-tcp, 0 lost"),
            (Sys::Snap, Sys::Iroh, 0.0, "iroh"),
            (Sys::Snap, Sys::IrohDefault, 0.0, "iroh-100"),
        ],
        &mut rows,
        &mut all_ok,
        hwm,
    );
    rows_for(
        &res,
        "many",
        &format!(
            "{} streams × 4 KiB, 1 session, 1000 open at once (libp2p: {})",
            sizes.many, sizes.many_libp2p
        ),
        "MiB/s",
        &[],
        &mut rows,
        &mut all_ok,
        hwm,
    );
    if let Some(r) = rows
        .iter_mut()
        .rev()
        .find(|r| r.system == "snap2p" && r.workload.contains("× 4 KiB"))
    {
        r.target = "completes, bounded memory".into();
        let done = res
            .get(&("many".to_string(), Sys::Snap))
            .is_some_and(|s| s.iter().all(|x| x.ok));
        r.met = if done { "yes" } else { "NO" }.into();
    }
    let idle_notes = |s: &[Sample]| {
        let g = |k: &str| med(s, |x| x.extra.get(k).copied().unwrap_or(f64::NAN)).0;
        format!(
            "server {:.2} KiB, client {:.2} KiB per session; idle CPU (keepalive 1 s) server {:.2}%, client {:.2}%",
            g("server_kib"),
            g("client_kib"),
            g("server_cpu_pct"),
            g("client_cpu_pct")
        )
    };
    rows_for(
        &res,
        "idle",
        &format!("{} idle authenticated sessions", sizes.idle),
        "KiB/session (worse side)",
        &[
            (Sys::Snap, Sys::Libp2pTcp, 0.0, "libp2p-tcp"),
            (Sys::Snap, Sys::Iroh, 0.0, "iroh"),
        ],
        &mut rows,
        &mut all_ok,
        idle_notes,
    );
    if let Some(samples) = res.get(&("idle-default".to_string(), Sys::Snap)) {
        let g = |k: &str| med(samples, |x| x.extra.get(k).copied().unwrap_or(f64::NAN));
        let (srv, srv_lo, srv_hi) = g("server_cpu_pct");
        let (cli, cli_lo, cli_hi) = g("client_cpu_pct");
        let worse = srv.max(cli);
        rows.push(Row {
            workload: format!(
                "{} idle authenticated sessions, default keepalive ({} s)",
                sizes.idle,
                snap2p::SessionLimits::default()
                    .keepalive_interval
                    .as_secs()
            ),
            system: Sys::Snap.name().into(),
            median: fmt(worse),
            range: format!(
                "server {}–{}, client {}–{}",
                fmt(srv_lo),
                fmt(srv_hi),
                fmt(cli_lo),
                fmt(cli_hi)
            ),
            unit: "% of one core (worse side)".into(),
            ratio: String::new(),
            target: "≤ 1% per side".into(),
            met: if worse <= 1.0 && samples.iter().all(|x| x.ok) {
                "yes"
            } else {
                "NO"
            }
            .into(),
            notes: format!("server {srv:.2}%, client {cli:.2}% (medians)"),
        });
    }
    if let Some(r) = rows
        .iter_mut()
        .find(|r| r.system == "snap2p" && r.workload.contains("idle"))
    {
        let (m, _, _) = med(&res[&("idle".to_string(), Sys::Snap)], |x| x.value);
        r.target = "≤ 12 KiB per session per side; ≤ 4 KiB (issue 36, next)".into();
        let yn = |ok: bool| if ok { "yes" } else { "NO" };
        r.met = format!("{}; {}", yn(m <= 12.0), yn(m <= 4.0));
    }
    rows_for(
        &res,
        "opens",
        &format!(
            "{} labelled streams × 256 B, 256 open at once, 1 session",
            sizes.opens
        ),
        "streams/s",
        &[(
            Sys::SnapRules,
            Sys::Snap,
            0.9,
            "rules off (issue 34: within 10%)",
        )],
        &mut rows,
        &mut all_ok,
        |s: &[Sample]| {
            let ok: f64 = s
                .iter()
                .map(|x| x.extra.get("ok").copied().unwrap_or(0.0))
                .sum();
            let refused: f64 = s
                .iter()
                .map(|x| x.extra.get("refused").copied().unwrap_or(0.0))
                .sum();
            format!("streams ok {ok:.0}, refused {refused:.0} (all rounds)")
        },
    );
    let relay_cpu = |s: &[Sample]| {
        let (r, lo, hi) = med(s, |x| {
            x.extra
                .get("relay_cpu_s_per_gib")
                .copied()
                .unwrap_or(f64::NAN)
        });
        let relay = if r.is_nan() {
            String::new()
        } else {
            format!("; relay CPU-s per GiB forwarded {r:.2} ({lo:.2}–{hi:.2})")
        };
        format!("{}{relay}", cpu(s))
    };
    rows_for(
        &res,
        "relay",
        &format!(
            "1 stream, {}, 64 KiB writes: through a relay vs direct",
            gib(sizes.bulk)
        ),
        "MiB/s",
        &[
            (Sys::SnapRelay, Sys::Snap, 0.7, "direct (issue 28)"),
            (Sys::SnapRelayStreams, Sys::Snap, 0.0, ""),
        ],
        &mut rows,
        &mut all_ok,
        relay_cpu,
    );
    if let Some(samples) = res.get(&("reservations".to_string(), Sys::SnapRelay)) {
        let (m, lo, hi) = med(samples, |x| x.value);
        let g = |k: &str| med(samples, |x| x.extra.get(k).copied().unwrap_or(f64::NAN)).0;
        let held = samples
            .iter()
            .map(|x| x.extra.get("held").copied().unwrap_or(0.0))
            .fold(f64::INFINITY, f64::min);
        let all = samples.iter().all(|x| x.ok);
        if !all {
            all_ok = false;
        }
        let yn = |ok: bool| if ok { "yes" } else { "NO" };
        rows.push(Row {
            workload: format!("{} idle reservations on one relay", sizes.reservations),
            system: Sys::SnapRelay.name().into(),
            median: fmt(m),
            range: format!("{}–{}", fmt(lo), fmt(hi)),
            unit: "KiB per reservation (relay RSS)".into(),
            ratio: String::new(),
            target: "≤ 16 KiB; ≥ 10,000 held (issue 28)".into(),
            met: format!(
                "{}; {}",
                yn(m <= 16.0 && all),
                yn(held >= 10_000.0 && all)
            ),
            notes: format!(
                "held {held:.0} (fewest of the rounds); taken in {:.1} s ({:.0}/s, 8 at a time from one process); relay idle CPU {:.2}% with all held (keepalive 30 s); a circuit to the last reserved peer {}",
                g("secs"),
                g("per_sec"),
                g("idle_cpu_pct"),
                if samples.iter().all(|x| x.extra.get("echo") == Some(&1.0)) {
                    "echoed"
                } else {
                    "FAILED"
                }
            ),
        });
    }
    rows.extend(bind_rows);
    all_ok &= native_sender_ok;

    let (load_after, _) = machine_info();
    let mut table = String::new();
    table.push_str(&format!(
        "snap2p-bench: {} round(s) per figure (median, min–max), systems alternated round by round; listener in a separate process\nmachine: {machine}\nload average before: {load_before}; after: {load_after}; wall time {:.0} s\n\n",
        sizes.rounds,
        t_all.elapsed().as_secs_f64()
    ));
    table.push_str("| workload | system | median | range | unit | ratio | target | met? | notes |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.workload, r.system, r.median, r.range, r.unit, r.ratio, r.target, r.met, r.notes
        ));
    }
    println!("{table}");
    if let Some(path) = out {
        let _ = std::fs::write(path, &table);
    }
    if !all_ok {
        println!("FAILED: a snap2p row did not complete or a checksum did not match");
    }
    let _ = std::fs::remove_dir_all(&tls_dir);
    all_ok
}

fn machine_info() -> (String, String) {
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0);
    (
        load,
        format!(
            "{} cores ({cpu}), {:.0} GiB RAM, {}",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            mem as f64 / 1048576.0,
            std::env::consts::ARCH
        ),
    )
}
