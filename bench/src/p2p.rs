//! rust-libp2p (0.57): TCP + noise + yamux, WebSocket (`/ws` over TCP) + noise + yamux,
//! and QUIC, with raw streams from libp2p-stream.
//!
//! Settings: library defaults except (1) `tcp::Config::default().nodelay(true)` (as snap2p
//! and the ceilings; for WebSocket too, so the transport is libp2p-websocket over that TCP
//! rather than `SwarmBuilder::with_websocket`, whose TCP keeps Nagle on), (2) yamux `max_num_streams` raised from 512 to 4096, the largest the
//! default 1 GiB connection window allows (256 KiB × streams), so the 1,000-stream workload
//! can run at all, and (3) a 300 s idle-connection timeout so sessions without streams stay
//! open (the swarm default closes them at once). No ping/identify behaviours.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::util::{chunk, expected_crc};
use crate::{ConnectResult, ServerOpts, StreamsResult};

const PROTO: StreamProtocol = StreamProtocol::new("/snap2p-bench/1");

fn yamux() -> libp2p::yamux::Config {
    let mut y = libp2p::yamux::Config::default();
    #[allow(deprecated)]
    y.set_max_num_streams(4096);
    y
}

fn swarm() -> Swarm<libp2p_stream::Behaviour> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            yamux,
        )
        .expect("tcp")
        .with_quic()
        .with_other_transport(|key| {
            use libp2p::core::muxing::StreamMuxerBox;
            use libp2p::core::upgrade::Version;
            use libp2p::Transport as _;
            let tcp =
                libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default().nodelay(true));
            Ok(libp2p::websocket::Config::new(tcp)
                .upgrade(Version::V1Lazy)
                .authenticate(libp2p::noise::Config::new(key)?)
                .multiplex(yamux())
                .map(|(p, c), _| (p, StreamMuxerBox::new(c))))
        })
        .expect("websocket")
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build()
}

/// Which of the listener's transports a dialer uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Tcp = 0,
    Quic = 1,
    Ws = 2,
}

/// Listener on TCP, QUIC and WebSocket; returns "tcp quic ws" multiaddrs with /p2p/
/// suffixes, in [`Via`] order.
pub async fn serve(opts: ServerOpts) -> String {
    let mut sw = swarm();
    let id = *sw.local_peer_id();
    for a in [
        "/ip4/127.0.0.1/tcp/0",
        "/ip4/127.0.0.1/udp/0/quic-v1",
        "/ip4/127.0.0.1/tcp/0/ws",
    ] {
        sw.listen_on(a.parse().unwrap()).unwrap();
    }
    let mut incoming = sw.behaviour().new_control().accept(PROTO).unwrap();
    tokio::spawn(async move {
        while let Some((_, mut s)) = incoming.next().await {
            tokio::spawn(async move {
                let mut h = crc32fast::Hasher::new();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => h.update(&buf[..n]),
                        Err(_) => return,
                    }
                }
                let _ = s.write_all(&h.finalize().to_be_bytes()).await;
                let _ = s.close().await;
            });
        }
    });
    let mut addrs: [Option<String>; 3] = [None, None, None];
    while addrs.iter().any(Option::is_none) {
        if let SwarmEvent::NewListenAddr { address, .. } = sw.select_next_some().await {
            let s = address.to_string();
            let via = if s.contains("/quic") {
                Via::Quic
            } else if s.ends_with("/ws") {
                Via::Ws
            } else {
                Via::Tcp
            };
            addrs[via as usize] = Some(s);
        }
    }
    let live = opts.live.clone();
    tokio::spawn(async move {
        loop {
            match sw.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => {
                    live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                SwarmEvent::ConnectionClosed { .. } => {
                    live.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                }
                _ => {}
            }
        }
    });
    addrs
        .iter()
        .map(|a| format!("{}/p2p/{id}", a.as_ref().unwrap()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The address of the chosen transport from the server's "tcp quic ws" line.
pub fn pick(addr: &str, via: Via) -> (Multiaddr, PeerId) {
    let a = addr.split_whitespace().nth(via as usize).unwrap();
    let ma: Multiaddr = a.parse().unwrap();
    let id = a.rsplit('/').next().unwrap().parse().unwrap();
    (ma, id)
}

/// Dials and returns a stream control, with the swarm driven by a background task.
async fn connected(
    addr: &str,
    via: Via,
) -> (libp2p_stream::Control, PeerId, tokio::task::JoinHandle<()>) {
    let (ma, peer) = pick(addr, via);
    let mut sw = swarm();
    sw.dial(ma).unwrap();
    loop {
        match sw.select_next_some().await {
            SwarmEvent::ConnectionEstablished { .. } => break,
            SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dial: {error}"),
            _ => {}
        }
    }
    let control = sw.behaviour().new_control();
    let task = tokio::spawn(async move {
        loop {
            sw.select_next_some().await;
        }
    });
    (control, peer, task)
}

async fn send_stream(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    pat: &[u8],
    seed: usize,
    total: u64,
    size: usize,
) -> std::io::Result<bool> {
    let mut s = control
        .open_stream(peer, PROTO)
        .await
        .map_err(std::io::Error::other)?;
    let n = total.div_ceil(size as u64) as usize;
    for i in 0..n {
        let left = (total - (i * size) as u64).min(size as u64) as usize;
        s.write_all(&chunk(pat, seed, i, size)[..left]).await?;
    }
    s.close().await?;
    let mut r = Vec::new();
    s.read_to_end(&mut r).await?;
    Ok(r.len() == 4
        && u32::from_be_bytes(r[..4].try_into().unwrap()) == expected_crc(pat, seed, total, size))
}

pub async fn bulk(
    addr: &str,
    via: Via,
    pat: Arc<Vec<u8>>,
    total: u64,
    size: usize,
) -> (Duration, bool) {
    let (mut control, peer, task) = connected(addr, via).await;
    let t0 = Instant::now();
    let ok = send_stream(&mut control, peer, &pat, 1, total, size)
        .await
        .unwrap_or(false);
    let dt = t0.elapsed();
    task.abort();
    (dt, ok)
}

pub async fn streams(
    addr: &str,
    via: Via,
    pat: Arc<Vec<u8>>,
    n: usize,
    size: usize,
    concurrency: usize,
) -> StreamsResult {
    let (control, peer, task) = connected(addr, via).await;
    let sem = Arc::new(Semaphore::new(concurrency));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (mut control, pat) = (control.clone(), pat.clone());
        tasks.push(tokio::spawn(async move {
            let r = send_stream(
                &mut control,
                peer,
                &pat,
                i + 2,
                size as u64,
                size.min(64 * 1024),
            )
            .await;
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
    task.abort();
    StreamsResult {
        elapsed: dt,
        ok,
        bad,
        refused: 0,
    }
}

enum Cmd {
    Dial(Multiaddr, oneshot::Sender<Result<f64, String>>),
}

/// A dial in progress: when it started, its latency once established, whom to tell.
type PendingDial = (Instant, Option<f64>, oneshot::Sender<Result<f64, String>>);

/// A swarm task that dials on request; each reply carries the dial→established latency
/// once the connection has been established and closed again (`close`), or left open.
fn dialer(close: bool) -> mpsc::Sender<Cmd> {
    let (tx, mut rx) = mpsc::channel::<Cmd>(1024);
    tokio::spawn(async move {
        let mut sw = swarm();
        let mut pending: std::collections::HashMap<libp2p::swarm::ConnectionId, PendingDial> =
            Default::default();
        let mut open = true;
        loop {
            if !open && pending.is_empty() {
                return;
            }
            tokio::select! {
                cmd = rx.recv(), if open => match cmd {
                    Some(Cmd::Dial(ma, reply)) => {
                        let opts = DialOpts::unknown_peer_id().address(ma).build();
                        let id = opts.connection_id();
                        match sw.dial(opts) {
                            Ok(()) => { pending.insert(id, (Instant::now(), None, reply)); }
                            Err(e) => { let _ = reply.send(Err(e.to_string())); }
                        }
                    }
                    None => open = false,
                },
                ev = sw.select_next_some() => match ev {
                    SwarmEvent::ConnectionEstablished { connection_id, .. } => {
                        if let Some(p) = pending.get_mut(&connection_id) {
                            p.1 = Some(p.0.elapsed().as_secs_f64() * 1e3);
                            if close {
                                sw.close_connection(connection_id);
                            } else if let Some((_, l, reply)) = pending.remove(&connection_id) {
                                let _ = reply.send(Ok(l.unwrap()));
                            }
                        }
                    }
                    SwarmEvent::ConnectionClosed { connection_id, .. } => {
                        if let Some((_, l, reply)) = pending.remove(&connection_id) {
                            let _ = reply.send(l.ok_or_else(|| "closed".to_string()));
                        }
                    }
                    SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                        if let Some((_, _, reply)) = pending.remove(&connection_id) {
                            let _ = reply.send(Err(error.to_string()));
                        }
                    }
                    _ => {}
                }
            }
        }
    });
    tx
}

pub async fn connect(addr: &str, via: Via, count: usize, inflight: usize) -> ConnectResult {
    let (ma, _) = pick(addr, via);
    let tx = dialer(true);
    // Warm-up connection (socket/listener paths), like snap2p's.
    let (r, w) = oneshot::channel();
    tx.send(Cmd::Dial(ma.clone(), r)).await.ok();
    let _ = w.await;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c0 = crate::util::cpu_time();
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..inflight {
        let (tx, ma, next) = (tx.clone(), ma.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let (mut lat, mut fails) = (Vec::new(), 0);
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                let (r, w) = oneshot::channel();
                tx.send(Cmd::Dial(ma.clone(), r)).await.ok();
                match w.await {
                    Ok(Ok(l)) => lat.push(l),
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
    ConnectResult {
        elapsed: t0.elapsed(),
        latencies_ms: lat,
        failures: fails,
        dialer_cpu: crate::util::cpu_time() - c0,
    }
}

pub async fn idle(addr: &str, n: usize) -> (Box<dyn std::any::Any + Send>, usize, u64) {
    let (ma, _) = pick(addr, Via::Tcp);
    let tx = dialer(false);
    let dial = |_| {
        let (tx, ma) = (tx.clone(), ma.clone());
        async move {
            let (r, w) = oneshot::channel();
            tx.send(Cmd::Dial(ma, r)).await.ok();
            matches!(w.await, Ok(Ok(_))).then_some(())
        }
    };
    crate::util::run_bounded(1, 1, &dial).await;
    let r0 = crate::util::rss_kib().0;
    let ok = crate::util::run_bounded(n, 32, &dial).await.len();
    (Box::new(tx), ok, r0)
}
