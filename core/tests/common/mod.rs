//! Helpers shared by the integration tests (loopback sessions, hostile_*, faults_*, soak_*,
//! PX-1 and AliasCards): digest-checked transfers, polling, a raw snap2p client that
//! drives the sans-IO `Session` over a real socket (so a test can misbehave after
//! authenticating), raw Noise helpers, frame I/O, and process resource probes.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sha2::{Digest, Sha256};
use snap2p::identity::{LocalWallet, Network, NodeKey, NodeKeyAttestation};
use snap2p::unstable::secure_channel::{NoiseHandshake, NoiseTransport};
use snap2p::unstable::wire::frame;
use snap2p::unstable::{Clock, Session, SessionConfig};
use snap2p::{Connection, Peer, PeerConfig, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

pub async fn peer(cfg: PeerConfig) -> Peer {
    Peer::ephemeral(cfg).await.unwrap()
}

/// Serves every stream of every inbound session: reads all, answers SHA-256 ‖ count (LE).
pub fn serve_digest(p: &Peer) {
    let p = p.clone();
    tokio::spawn(async move {
        while let Some(conn) = p.accept().await {
            tokio::spawn(serve_conn(conn));
        }
    });
}

pub async fn serve_conn(conn: Connection) {
    while let Ok(stream) = conn.accept_stream().await {
        tokio::spawn(async move {
            let mut h = Sha256::new();
            let mut n = 0u64;
            while let Ok(Some(chunk)) = stream.read_chunk(1 << 20).await {
                n += chunk.len() as u64;
                h.update(&chunk);
            }
            let mut out = h.finalize().to_vec();
            out.extend_from_slice(&n.to_le_bytes());
            let _ = stream.write_all(&out).await;
            let _ = stream.finish();
        });
    }
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn pattern(seed: u32, buf: &mut [u8], x: &mut u32) {
    if *x == 0 {
        *x = seed | 1;
    }
    for b in buf.iter_mut() {
        *x ^= *x << 13;
        *x ^= *x >> 17;
        *x ^= *x << 5;
        *b = *x as u8;
    }
}

/// Sends `total` bytes, finishes, and checks the peer's SHA-256 and byte count.
pub async fn send_and_check(
    stream: &Stream,
    total: u64,
    chunk: usize,
    seed: u32,
) -> Result<(), snap2p::Error> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; chunk];
    let mut x = 0u32;
    let mut sent = 0u64;
    while sent < total {
        let n = ((total - sent) as usize).min(chunk);
        pattern(seed, &mut buf[..n], &mut x);
        h.update(&buf[..n]);
        stream.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    finish_and_check_digest(stream, h, total).await
}

/// Finishes `stream` and checks the [`serve_digest`] reply against what was sent: `h` over
/// its bytes, `total` of them.
pub async fn finish_and_check_digest(
    stream: &Stream,
    h: Sha256,
    total: u64,
) -> Result<(), snap2p::Error> {
    stream.finish()?;
    let reply = stream.read_all(1024).await?;
    assert_eq!(reply.len(), 40, "short digest reply");
    assert_eq!(
        &reply[..32],
        &h.finalize()[..],
        "digest mismatch: data was altered or reordered"
    );
    assert_eq!(u64::from_le_bytes(reply[32..].try_into().unwrap()), total);
    Ok(())
}

/// A listener answering every stream with its digest ([`serve_digest`]) and a client
/// session to it, both with default configs; the peers are returned to keep them alive.
pub async fn session_to_digest_server() -> (Peer, Peer, Connection) {
    let server = peer(PeerConfig::default()).await;
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    serve_digest(&server);
    let client = peer(PeerConfig::default()).await;
    let conn = client.dial(&addr.to_string()).await.unwrap();
    (server, client, conn)
}

/// An identity for raw clients: wallet, node key, attestation valid now.
pub struct RawIdentity {
    pub wallet: LocalWallet,
    pub node: NodeKey,
    pub att: Arc<Vec<u8>>,
}

impl RawIdentity {
    pub async fn new() -> Self {
        let wallet = LocalWallet::generate(Network::Mainnet);
        let node = NodeKey::generate();
        let att = NodeKeyAttestation::issue(&wallet, node.public(), snap2p::unix_now(), 3600)
            .await
            .unwrap()
            .encode();
        RawIdentity {
            wallet,
            node,
            att: Arc::new(att),
        }
    }

    pub fn dialer_config(&self, invite: Option<Vec<u8>>) -> SessionConfig {
        let mut cfg = snap2p::testing::session_config(
            &self.node,
            self.att.clone(),
            self.wallet.principal(),
            true,
            Clock::system(),
        );
        cfg.invite_token = invite;
        cfg
    }
}

/// A session driven by hand over a socket.
pub struct RawSession {
    pub tcp: TcpStream,
    pub s: Session,
    pub inbuf: BytesMut,
}

impl RawSession {
    /// Dials and runs the handshake until established (or fails).
    pub async fn dial(
        addr: std::net::SocketAddr,
        cfg: SessionConfig,
    ) -> Result<RawSession, snap2p::Error> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let s = Session::new(cfg, Instant::now())?;
        let mut r = RawSession {
            tcp,
            s,
            inbuf: BytesMut::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r.s.is_established() {
            if let Some(e) = r.s.error() {
                return Err(e.clone());
            }
            assert!(Instant::now() < deadline, "raw handshake hung");
            r.step(Duration::from_millis(200)).await;
        }
        r.flush().await;
        Ok(r)
    }

    pub async fn flush(&mut self) {
        let mut out = Vec::new();
        self.s.poll_transmit(Instant::now(), &mut out, 1 << 20);
        if !out.is_empty() {
            let _ = self.tcp.write_all(&out).await;
        }
    }

    /// Writes what the session has, then reads once (bounded wait) and feeds it. Returns
    /// false at EOF.
    pub async fn step(&mut self, wait: Duration) -> bool {
        self.flush().await;
        let mut buf = vec![0u8; 65536];
        match timeout(wait, self.tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.s.handle_transport_closed(None);
                false
            }
            Ok(Ok(n)) => {
                self.inbuf.extend_from_slice(&buf[..n]);
                self.s.handle_input(&mut self.inbuf, Instant::now());
                true
            }
            Err(_) => {
                self.s.handle_timeout(Instant::now());
                true
            }
        }
    }
}

/// Reads one frame (bounded wait). None at EOF or timeout.
pub async fn read_frame(
    tcp: &mut TcpStream,
    buf: &mut BytesMut,
    wait: Duration,
) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Ok(Some(f)) = frame::next_frame(buf, frame::MAX_TRANSPORT_FRAME) {
            return Some(f.to_vec());
        }
        let mut tmp = [0u8; 4096];
        match tokio::time::timeout_at(deadline, tcp.read(&mut tmp)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&tmp[..n]),
            _ => return None,
        }
    }
}

/// Waits until the socket is closed by the peer (EOF or reset), discarding what it sends.
/// Returns the bytes received, or None when it stayed open past `wait`.
pub async fn wait_closed(tcp: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut got = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut tmp)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&tmp[..n]),
            Err(_) => return None,
        }
    }
}

/// Runs a Noise XX initiator handshake by hand with `key`; returns the transport.
pub async fn raw_noise_dial(tcp: &mut TcpStream, key: &NodeKey) -> NoiseTransport {
    let mut hs =
        NoiseHandshake::new(true, &key.x25519_secret(), &key.x25519_public(), None).unwrap();
    let mut out = Vec::new();
    hs.write_frame(&mut out).unwrap();
    tcp.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    let m2 = read_frame(tcp, &mut buf, Duration::from_secs(5))
        .await
        .expect("noise message 2");
    hs.read_message(&m2).unwrap();
    let mut out = Vec::new();
    hs.write_frame(&mut out).unwrap();
    tcp.write_all(&out).await.unwrap();
    hs.into_transport().unwrap()
}

/// VmRSS of this process in KiB.
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A TCP proxy to `target` for one connection, for tests that tamper with or record what
/// the client sends: the server-to-client direction is relayed unchanged, the
/// client-to-server direction is `upstream(client's read half, server's write half)`.
pub async fn one_shot_proxy<F, Fut>(
    target: std::net::SocketAddr,
    upstream: F,
) -> std::net::SocketAddr
where
    F: FnOnce(OwnedReadHalf, OwnedWriteHalf) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (inbound, _) = l.accept().await.unwrap();
        let outbound = TcpStream::connect(target).await.unwrap();
        let (ir, mut iw) = inbound.into_split();
        let (mut or, ow) = outbound.into_split();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = or.read(&mut buf).await {
                if n == 0 || iw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
        upstream(ir, ow).await;
    });
    addr
}

/// Polls `f` every 50 ms until it holds or `wait` passes.
pub async fn eventually(wait: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP socket bound to a loopback source address (127.0.0.x) before connecting.
pub async fn connect_from(
    src: std::net::Ipv4Addr,
    to: std::net::SocketAddr,
) -> std::io::Result<TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(std::net::SocketAddr::new(src.into(), 0))?;
    sock.connect(to).await
}

/// Builds (if needed) and returns the path of the testnode example (core/examples), for
/// the tests that run a peer in its own OS process.
pub fn testnode() -> std::path::PathBuf {
    example("testnode")
}

/// Builds (if needed) and returns the path of the example `name` of the core crate
/// (testnode, relaynode, mdnsnode: peers in their own OS processes).
///
/// The nested `cargo build` must not inherit what `cargo test` sets for the running test
/// (CARGO_MANIFEST_DIR, CARGO_PKG_*, ...): build scripts that track those variables (ring
/// does) would see them change and rebuild ring, snow and snap2p on every run.
pub fn example(name: &str) -> std::path::PathBuf {
    use std::process::Command;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", "snap2p", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let set_by_cargo_test = k == "CARGO_MANIFEST_DIR"
            || k == "CARGO_MANIFEST_PATH"
            || k == "CARGO_CRATE_NAME"
            || k == "CARGO_PRIMARY_PACKAGE"
            || k == "CARGO_TARGET_TMPDIR"
            || k == "CARGO_BIN_NAME"
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_EXE_");
        if set_by_cargo_test {
            cmd.env_remove(&k);
        }
    }
    let st = cmd
        .status()
        .unwrap_or_else(|e| panic!("cargo build --example {name}: {e}"));
    assert!(st.success(), "cargo build --example {name} failed");
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap(); // target/<profile>
    let p = dir.join("examples").join(name);
    assert!(p.is_file(), "{p:?}");
    p
}

/// The next event of `kind`, skipping others (each within a few seconds).
pub async fn next_of(events: &mut snap2p::Events, kind: snap2p::EventKind) -> snap2p::PeerEvent {
    loop {
        let ev = timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind:?} event"))
            .expect("the peer is still there");
        if ev.kind == kind {
            return ev;
        }
    }
}
