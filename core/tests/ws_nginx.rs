//! snap2p behind a real reverse proxy: Debian's nginx (installed by `ci/setup/nginx.sh`),
//! started here on a loopback port with its own configuration in a temp dir, terminates
//! TLS and proxies the WebSocket upgrade to a snap2p `ws://` listener; a dialer connects
//! with `wss://` through it, checks the listener's principal and streams bytes.
//!
//! Ignored in a plain `cargo test` (it needs nginx): `ci/steps/77-ws-nginx.sh` runs it with
//! `--include-ignored`. `SNAP2P_NGINX` names the binary (default: `nginx` on PATH, else
//! /usr/sbin/nginx).
#![cfg(feature = "wss")]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{send_and_check, serve_digest};
use snap2p::transport::{WsConfig, WsTransport};
use snap2p::{ErrorCode, Peer, PeerConfig};
use tokio::time::timeout;

fn nginx_binary() -> PathBuf {
    if let Ok(p) = std::env::var("SNAP2P_NGINX") {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
        .expect("nginx not found: run ci/setup/nginx.sh (or set SNAP2P_NGINX)")
}

/// A CA (DER) and a leaf for `localhost` and 127.0.0.1 written as PEM into `dir`.
fn certs(dir: &Path) -> Vec<u8> {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
    ca.der().to_vec()
}

/// nginx in the foreground, one process, everything under `dir`; killed on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts nginx terminating TLS on 127.0.0.1:`port` and proxying `/snap2p` (with the
/// WebSocket upgrade) to `upstream`.
async fn start_nginx(dir: &Path, port: u16, upstream: SocketAddr) -> Nginx {
    let d = dir.display();
    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        location /snap2p {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_read_timeout 300s;
            proxy_buffering off;
        }}
    }}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut nginx = Nginx {
        child,
        dir: dir.to_path_buf(),
    };
    let start = Instant::now();
    loop {
        if let Some(st) = nginx.child.try_wait().unwrap() {
            panic!("nginx exited ({st}):\n{}", nginx.log());
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return nginx;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "nginx did not listen on {port}:\n{}",
            nginx.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nginx (ci/setup/nginx.sh); run by ci/steps/77-ws-nginx.sh"]
async fn wss_through_nginx_to_a_ws_listener() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs(dir.path());
    timeout(Duration::from_secs(120), async {
        // The snap2p side: plain ws:// on loopback, TLS is nginx's.
        let server = Peer::ephemeral(PeerConfig::default()).await.unwrap();
        let upstream = server.listen("ws://127.0.0.1:0/snap2p").await.unwrap();
        serve_digest(&server);
        let port = free_port();
        let nginx = start_nginx(dir.path(), port, upstream).await;

        let ws = WsTransport::new(WsConfig::default().with_root_der(ca)).unwrap();
        let client = Peer::builder(PeerConfig::default())
            .transport(Arc::new(ws))
            .build()
            .await
            .unwrap();
        let target = format!("wss://localhost:{port}/snap2p");
        let conn = client.dial(&target).await.unwrap();
        // The listener behind the proxy is who the session authenticated.
        assert_eq!(conn.remote_principal(), server.principal());
        // The listener registers the session once it has processed the dialer's AUTH.
        let listed = || {
            server
                .connections()
                .iter()
                .any(|c| c.remote_principal() == client.principal())
        };
        assert!(common::eventually(Duration::from_secs(5), listed).await);
        let inbound = server
            .connections()
            .into_iter()
            .find(|c| c.remote_principal() == client.principal())
            .expect("the listener has the proxied session");
        // The listener sees nginx's connection, from loopback.
        assert!(inbound.remote_addr().unwrap().ip().is_loopback());
        // Streams through the proxy, checked by SHA-256: several at once, then 32 MiB.
        let mut tasks = Vec::new();
        for i in 0..4u32 {
            let s = conn.open_stream(None).await.unwrap();
            tasks.push(tokio::spawn(async move {
                send_and_check(&s, 1 << 20, 50_000, 40 + i).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let s = conn.open_stream(None).await.unwrap();
        let t0 = Instant::now();
        send_and_check(&s, 32 << 20, 256 * 1024, 77).await.unwrap();
        eprintln!(
            "RESULT ws-nginx: 32 MiB through nginx (wss -> ws) in {} ms",
            t0.elapsed().as_millis()
        );
        conn.close(ErrorCode::Ok, "done");

        // A path nginx does not proxy: its own 404, told to the dialer.
        let e = client
            .dial(&format!("wss://localhost:{port}/elsewhere"))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ConnectionClosed, "{e}");
        assert!(e.message.contains("404"), "{e}");
        let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
        assert!(log.contains("GET /snap2p HTTP/1.1\" 101"), "{log}");
        drop(nginx);
    })
    .await
    .unwrap();
}
