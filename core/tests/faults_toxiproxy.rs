//! Faults injected by Toxiproxy (a real proxy the test starts itself, on loopback) between
//! two peers: latency with jitter plus a bandwidth cap, sliced writes, a stall (keepalive
//! must notice), and resets mid-stream (an error, never a hang). Every transfer is checked
//! with SHA-256.
//!
//! Needs `toxiproxy-server` (ci/setup/toxiproxy.sh builds it from the Go module proxy into
//! $SNAP2P_CACHE/bin). Run by ci/steps/75-hostile.sh:
//!   cargo test -p snap2p --test faults_toxiproxy -- --include-ignored

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use snap2p::{ErrorCode, PeerConfig, SessionLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

fn toxiproxy_bin() -> Option<std::path::PathBuf> {
    let mut c: Vec<std::path::PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("SNAP2P_TOXIPROXY") {
        c.push(p.into());
    }
    let cache = std::env::var("SNAP2P_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/snap2p",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    c.push(format!("{cache}/bin/toxiproxy-server").into());
    if let Ok(path) = std::env::var("PATH") {
        for d in path.split(':') {
            c.push(format!("{d}/toxiproxy-server").into());
        }
    }
    c.into_iter().find(|p| p.is_file())
}

struct Toxiproxy {
    child: Child,
    api: std::net::SocketAddr,
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn try_http(
    api: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(api).await?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: toxiproxy\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut resp = String::new();
    timeout(Duration::from_secs(10), s.read_to_string(&mut resp))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "toxiproxy API"))??;
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, resp))
}

async fn http(api: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    try_http(api, method, path, body)
        .await
        .unwrap_or_else(|e| panic!("toxiproxy API {method} {path} at {api}: {e}"))
}

impl Toxiproxy {
    /// Starts a private toxiproxy-server. The API port is picked before the server binds it,
    /// so another process (or a parallel test's server) can take it in between: the server is
    /// started with a config holding a uniquely named marker proxy, and it counts as ours only
    /// when the API that answers on the port knows that marker. Otherwise retry on a new port.
    async fn start() -> Option<Toxiproxy> {
        let Some(bin) = toxiproxy_bin() else {
            eprintln!(
                "\n!!!!! SKIPPED: toxiproxy-server not found (run ci/setup/toxiproxy.sh) !!!!!\n"
            );
            return None;
        };
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let marker = format!("owner-{}-{nonce}", std::process::id());
        let config = std::env::temp_dir().join(format!("snap2p-{marker}.json"));
        std::fs::write(
            &config,
            format!(r#"[{{"name":"{marker}","listen":"127.0.0.1:0","upstream":"127.0.0.1:9","enabled":false}}]"#),
        )
        .unwrap();
        let mut last = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["-host", "127.0.0.1", "-port", &port.to_string()])
                .arg("-config")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start toxiproxy-server");
            let api: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut ours = false;
            for _ in 0..200 {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("toxiproxy-server on port {port} exited: {status}");
                    break;
                }
                if let Ok((code, _)) = try_http(api, "GET", &format!("/proxies/{marker}"), "").await
                {
                    if code == 200 {
                        ours = true;
                        break;
                    }
                    // Another server answers on this port (404 for our marker), or ours has
                    // not loaded its config yet: keep polling until ours exits or answers.
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            if ours {
                let _ = std::fs::remove_file(&config);
                return Some(Toxiproxy { child, api });
            }
            let _ = child.kill();
            let _ = child.wait();
            if last.is_empty() {
                last = format!("toxiproxy-server on port {port} never answered for {marker}");
            }
        }
        let _ = std::fs::remove_file(&config);
        panic!("toxiproxy-server did not come up: {last}");
    }

    /// A proxy to `upstream`; returns its listen address. The proxy listens on port 0 and
    /// the API reports the port it got, so no port is guessed.
    async fn proxy(&self, name: &str, upstream: std::net::SocketAddr) -> std::net::SocketAddr {
        let body = format!(
            r#"{{"name":"{name}","listen":"127.0.0.1:0","upstream":"{upstream}","enabled":true}}"#
        );
        let (code, resp) = http(self.api, "POST", "/proxies", &body).await;
        assert!(code == 201 || code == 200, "create proxy: {resp}");
        let listen = resp
            .split("\"listen\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no listen address in {resp}"));
        listen
            .parse()
            .unwrap_or_else(|e| panic!("listen {listen}: {e}"))
    }

    async fn toxic(&self, proxy: &str, name: &str, kind: &str, stream: &str, attrs: &str) {
        let body = format!(
            r#"{{"name":"{name}","type":"{kind}","stream":"{stream}","toxicity":1.0,"attributes":{attrs}}}"#
        );
        let (code, resp) = http(self.api, "POST", &format!("/proxies/{proxy}/toxics"), &body).await;
        assert!(code == 200 || code == 201, "add toxic {name}: {resp}");
    }

    async fn remove(&self, proxy: &str, name: &str) {
        let (code, resp) = http(
            self.api,
            "DELETE",
            &format!("/proxies/{proxy}/toxics/{name}"),
            "",
        )
        .await;
        assert!(code == 204 || code == 200, "remove toxic {name}: {resp}");
    }
}

async fn server_and_client(
    server_limits: SessionLimits,
    limits: SessionLimits,
) -> (snap2p::Peer, std::net::SocketAddr, snap2p::Peer) {
    let server = peer({
        let mut c = PeerConfig::default();
        c.limits = server_limits;
        c
    })
    .await;
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    serve_digest(&server);
    let client = peer({
        let mut c = PeerConfig::default();
        c.limits = limits;
        c
    })
    .await;
    (server, addr, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs toxiproxy-server; run by ci/steps/75-hostile.sh"]
async fn slow_jittery_capped_link_delivers_intact() {
    let Some(tp) = Toxiproxy::start().await else {
        return;
    };
    timeout(Duration::from_secs(120), async {
        let (_server, addr, client) = server_and_client(SessionLimits::default(), SessionLimits::default()).await;
        let p = tp.proxy("slow", addr).await;
        tp.toxic("slow", "lat_up", "latency", "upstream", r#"{"latency":40,"jitter":30}"#).await;
        tp.toxic("slow", "lat_down", "latency", "downstream", r#"{"latency":40,"jitter":30}"#).await;
        tp.toxic("slow", "bw_up", "bandwidth", "upstream", r#"{"rate":2048}"#).await; // KB/s
        let t0 = Instant::now();
        let conn = client.dial(&p.to_string()).await.unwrap();
        let hs = t0.elapsed();
        let mut tasks = Vec::new();
        for i in 0..4u32 {
            let conn = conn.clone();
            tasks.push(tokio::spawn(async move {
                let s = conn.open_stream(None).await.unwrap();
                send_and_check(&s, 1 << 20, 16 * 1024, 100 + i).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        eprintln!(
            "RESULT toxiproxy latency 40±30 ms each way + 2 MB/s: handshake {} ms, 4 streams x 1 MiB intact (SHA-256) in {} ms",
            hs.as_millis(),
            t0.elapsed().as_millis()
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs toxiproxy-server; run by ci/steps/75-hostile.sh"]
async fn sliced_writes_deliver_intact() {
    let Some(tp) = Toxiproxy::start().await else {
        return;
    };
    timeout(Duration::from_secs(120), async {
        let (_server, addr, client) =
            server_and_client(SessionLimits::default(), SessionLimits::default()).await;
        let p = tp.proxy("sliced", addr).await;
        tp.toxic(
            "sliced",
            "sl_up",
            "slicer",
            "upstream",
            r#"{"average_size":7,"size_variation":6,"delay":0}"#,
        )
        .await;
        tp.toxic(
            "sliced",
            "sl_down",
            "slicer",
            "downstream",
            r#"{"average_size":3,"size_variation":2,"delay":0}"#,
        )
        .await;
        let t0 = Instant::now();
        let conn = client.dial(&p.to_string()).await.unwrap();
        let s = conn.open_stream(None).await.unwrap();
        send_and_check(&s, 512 * 1024, 7000, 5).await.unwrap();
        eprintln!(
            "RESULT toxiproxy slicer (3-13 byte writes): handshake + 512 KiB intact in {} ms",
            t0.elapsed().as_millis()
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs toxiproxy-server; run by ci/steps/75-hostile.sh"]
async fn stalled_link_is_detected_by_keepalive_and_recovers() {
    let Some(tp) = Toxiproxy::start().await else {
        return;
    };
    timeout(Duration::from_secs(120), async {
        let limits = {
            let mut c = SessionLimits::default();
            c.keepalive_interval = Duration::from_millis(300);
            c.keepalive_timeout = Duration::from_millis(500);
            c
        };
        // The server's keepalive waits longer, so the client's fires first: a server that
        // gave up first would close its socket, Toxiproxy would pass the close on, and the
        // client would see ConnectionClosed instead of its own keepalive timeout.
        let server_limits = {
            let mut c = limits.clone();
            c.keepalive_timeout = Duration::from_millis(2000);
            c
        };
        let (server, addr, client) = server_and_client(server_limits, limits).await;
        let p = tp.proxy("stall", addr).await;
        let conn = client.dial(&p.to_string()).await.unwrap();
        let s = conn.open_stream(None).await.unwrap();
        send_and_check(&s, 100_000, 1000, 1).await.unwrap();
        let open = conn.open_stream(None).await.unwrap();
        // timeout toxic with timeout=0: data stops, connections stay open.
        tp.toxic("stall", "stall_up", "timeout", "upstream", r#"{"timeout":0}"#).await;
        tp.toxic("stall", "stall_down", "timeout", "downstream", r#"{"timeout":0}"#).await;
        let t0 = Instant::now();
        let why = timeout(Duration::from_secs(5), conn.closed()).await.expect("keepalive missed the stall");
        let detect = t0.elapsed();
        assert_eq!(why.code, ErrorCode::Timeout, "{why}");
        assert!(detect < Duration::from_secs(3), "{detect:?}");
        let e = timeout(Duration::from_secs(2), open.read_chunk(10)).await.unwrap().unwrap_err();
        assert_eq!(e.code, ErrorCode::Timeout);
        // The server side notices too.
        assert!(
            eventually(Duration::from_secs(5), || server.connections().is_empty()).await,
            "the server kept the stalled session"
        );
        tp.remove("stall", "stall_up").await;
        tp.remove("stall", "stall_down").await;
        let t1 = Instant::now();
        let conn = client.dial(&p.to_string()).await.unwrap();
        let s = conn.open_stream(None).await.unwrap();
        send_and_check(&s, 100_000, 1000, 2).await.unwrap();
        eprintln!(
            "RESULT toxiproxy stall: keepalive (300+500 ms) detected it in {} ms (code Timeout); redial + 100 kB intact {} ms after the stall ended",
            detect.as_millis(),
            t1.elapsed().as_millis()
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs toxiproxy-server; run by ci/steps/75-hostile.sh"]
async fn reset_mid_stream_gives_an_error_not_a_hang() {
    let Some(tp) = Toxiproxy::start().await else {
        return;
    };
    timeout(Duration::from_secs(120), async {
        let (server, addr, client) = server_and_client(SessionLimits::default(), SessionLimits::default()).await;
        let p = tp.proxy("reset", addr).await;
        let mut worst = Duration::ZERO;
        for round in 0..5u32 {
            let conn = client.dial(&p.to_string()).await.unwrap();
            let s = conn.open_stream(None).await.unwrap();
            let writer = tokio::spawn(async move {
                let chunk = vec![7u8; 32 * 1024];
                let mut sent = 0u64;
                loop {
                    if let Err(e) = s.write_all(&chunk).await {
                        return (sent, e);
                    }
                    sent += chunk.len() as u64;
                    if sent > 1 << 30 {
                        panic!("writes never failed");
                    }
                }
            });
            tokio::time::sleep(Duration::from_millis(200 + 50 * round as u64)).await;
            tp.toxic("reset", "rst", "reset_peer", if round % 2 == 0 { "upstream" } else { "downstream" }, r#"{"timeout":0}"#).await;
            let t0 = Instant::now();
            let (sent, e) = timeout(Duration::from_secs(10), writer).await.expect("writer hung after a reset").unwrap();
            let took = t0.elapsed();
            worst = worst.max(took);
            assert!(
                matches!(e.code, ErrorCode::ConnectionClosed | ErrorCode::StreamClosed | ErrorCode::Ok | ErrorCode::Timeout),
                "{e}"
            );
            assert!(sent > 0);
            let why = timeout(Duration::from_secs(5), conn.closed()).await.expect("session not closed");
            eprintln!("RESULT toxiproxy reset_peer round {round}: writer failed after {} ms with {:?}; session closed with {:?}", took.as_millis(), e.code, why.code);
            tp.remove("reset", "rst").await;
        }
        assert!(eventually(Duration::from_secs(5), || server.connections().is_empty()).await);
        assert!(worst < Duration::from_secs(5));
    })
    .await
    .unwrap();
}
