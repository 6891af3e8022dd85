//! A test-only peer with mDNS discovery and nothing else (PX-1 off), in its own OS process,
//! for the mDNS test bed (core/tests/mdns_netns.rs runs it in network namespaces on one
//! bridge). Not a user tool: see `snap2p listen --mdns` in examples/cli.
//!
//!   mdnsnode listen public|private ADDR   listen on ADDR, announce when public, echo streams;
//!                                         a line `close` on stdin closes the peer
//!   mdnsnode liar PRINCIPAL ADDR          a peer of its own listening on ADDR that announces
//!                                         PRINCIPAL (someone else's) at its own locator,
//!                                         until its stdin closes
//!   mdnsnode dial PRINCIPAL [N]           resolve PRINCIPAL on the link (waiting until N
//!                                         locators are known, default 1), dial it, echo a ping
//!   mdnsnode resolve PRINCIPAL            resolve only
//!
//! Prints one line per event on stdout (`LISTEN principal`, `INBOUND principal`,
//! `RESOLVED ms=T locators=a,b`, `CONNECTED principal=P ms=T`, `OK echo`, `CLOSED … ms=T`,
//! `ERROR code=N name msg`) and exits by itself after at most 60 s. With `SNAP2P_MDNS_LOG`
//! set, the mDNS daemon logs to a file (`init_log`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use snap2p::discovery::mdns::{Mdns, MdnsConfig};
use snap2p::{Discovery, Peer, PeerConfig, Principal, Visibility};

fn out(s: String) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{s}");
    let _ = o.flush();
}

/// `SNAP2P_MDNS_LOG=debug|trace`: the mDNS daemon's own log, each line stamped with the
/// time since start, in `$SNAP2P_MDNS_LOG_DIR/<pid>-<mode>.log` (default the temp dir), for
/// a test bed step that went wrong.
struct FileLog {
    file: std::sync::Mutex<std::fs::File>,
    t0: Instant,
}

impl log::Log for FileLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.target().starts_with("mdns_sd")
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            use std::io::Write;
            let line = format!(
                "[{:>7.3} {}] {}\n",
                self.t0.elapsed().as_secs_f64(),
                r.level(),
                r.args()
            );
            let _ = self.file.lock().unwrap().write_all(line.as_bytes());
        }
    }
    fn flush(&self) {}
}

fn init_log(mode: &str) {
    let Ok(level) = std::env::var("SNAP2P_MDNS_LOG") else {
        return;
    };
    let dir = std::env::var_os("SNAP2P_MDNS_LOG_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("{}-{mode}.log", std::process::id()));
    let Ok(file) = std::fs::File::create(&path) else {
        return;
    };
    let logger = Box::new(FileLog {
        file: std::sync::Mutex::new(file),
        t0: Instant::now(),
    });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level.parse().unwrap_or(log::LevelFilter::Debug));
    }
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

async fn node(vis: Visibility) -> (Peer, Arc<Mdns>) {
    let mdns = Mdns::start(MdnsConfig::default()).unwrap_or_else(|e| fail(e));
    let mut cfg = PeerConfig::default().with_visibility(vis);
    // mDNS alone: no PX-1, no allowlist gate (a Private peer gates on its allowlist by
    // default; this one lets anyone in).
    cfg.px1 = Some(false);
    cfg.allowlist_gate = Some(false);
    let p = Peer::builder(cfg)
        .mdns(mdns.clone())
        .build()
        .await
        .unwrap_or_else(|e| fail(e));
    (p, mdns)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    init_log(mode);
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        out("ERROR code=13 ERR_TIMEOUT mdnsnode ran for 60 s".into());
        std::process::exit(2);
    });
    match mode {
        "listen" => {
            let vis = match args.get(2).map(String::as_str) {
                Some("public") => Visibility::Public,
                _ => Visibility::Private,
            };
            let (p, mdns) = node(vis).await;
            p.listen(args.get(3).map(String::as_str).unwrap_or("0.0.0.0:0"))
                .await
                .unwrap_or_else(|e| fail(e));
            out(format!(
                "LISTEN {} announcing={}",
                p.principal(),
                mdns.is_announcing()
            ));
            // `close` on stdin: the peer is closed on this runtime, where its tasks run (a
            // runtime of the stdin thread's own would have to wait on them from outside).
            let (close_tx, mut close_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
            std::thread::spawn(move || {
                let mut line = String::new();
                while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {
                    if line.trim() == "close" {
                        let _ = close_tx.send(());
                        return;
                    }
                    line.clear();
                }
            });
            loop {
                let conn = tokio::select! {
                    c = p.accept() => match c {
                        Some(c) => c,
                        None => break,
                    },
                    Some(()) = close_rx.recv() => {
                        let t0 = Instant::now();
                        p.close().await;
                        out(format!(
                            "CLOSED mdns_stopped={} ms={}",
                            mdns.is_stopped(),
                            t0.elapsed().as_millis()
                        ));
                        std::process::exit(0);
                    }
                };
                out(format!("INBOUND {}", conn.remote_principal()));
                tokio::spawn(async move {
                    while let Ok(s) = conn.accept_stream().await {
                        tokio::spawn(async move {
                            if let Ok(b) = s.read_all(1024).await {
                                let _ = s.write_all(&b).await;
                                let _ = s.finish();
                            }
                        });
                    }
                });
            }
        }
        "liar" => {
            let victim = Principal::parse(args.get(2).map(String::as_str).unwrap_or(""))
                .unwrap_or_else(|e| fail(e));
            let (p, mdns) = node(Visibility::Private).await;
            let addr = p
                .listen(args.get(3).map(String::as_str).unwrap_or("0.0.0.0:0"))
                .await
                .unwrap_or_else(|e| fail(e));
            // Node key 0…0: its instance sorts first, so a dialer tries it first.
            mdns.announce(&victim, &[0; 32], &p.listen_locators())
                .unwrap_or_else(|e| fail(e));
            out(format!("LIAR {} claims {victim} at {addr}", p.principal()));
            // Stdin closed: withdraw (goodbye) and exit.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while std::io::stdin().read_line(&mut sink).unwrap_or(0) > 0 {}
                mdns.stop();
                std::thread::sleep(Duration::from_millis(300));
                std::process::exit(0);
            });
            while let Some(conn) = p.accept().await {
                out(format!("INBOUND {}", conn.remote_principal()));
            }
        }
        "dial" | "resolve" => {
            let target: Principal = args
                .get(2)
                .map(|s| Principal::parse(s).unwrap_or_else(|e| fail(e)))
                .unwrap_or_else(|| {
                    fail(snap2p::Error::new(
                        snap2p::ErrorCode::InvalidArgument,
                        "principal?",
                    ))
                });
            let (p, mdns) = node(Visibility::Private).await;
            let want: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
            let t0 = Instant::now();
            let mut locs = mdns
                .resolve(&p.handle(), &target)
                .await
                .unwrap_or_else(|e| fail(e));
            while locs.len() < want && t0.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                locs = mdns.known(&target);
            }
            let l: Vec<String> = locs.iter().map(|l| l.to_string()).collect();
            out(format!(
                "RESOLVED ms={} locators={}",
                t0.elapsed().as_millis(),
                l.join(",")
            ));
            if mode == "dial" {
                let t0 = Instant::now();
                let conn = p
                    .dial(&target.to_string())
                    .await
                    .unwrap_or_else(|e| fail(e));
                out(format!(
                    "CONNECTED principal={} ms={}",
                    conn.remote_principal(),
                    t0.elapsed().as_millis()
                ));
                let s = conn.open_stream(None).await.unwrap_or_else(|e| fail(e));
                s.write_all(b"ping over mdns")
                    .await
                    .unwrap_or_else(|e| fail(e));
                s.finish().unwrap_or_else(|e| fail(e));
                let echo = s.read_all(1024).await.unwrap_or_else(|e| fail(e));
                out(format!("OK {}", String::from_utf8_lossy(&echo)));
            }
            p.close().await;
        }
        _ => {
            out("ERROR code=25 ERR_INVALID_ARGUMENT usage: mdnsnode listen|dial|resolve".into());
            std::process::exit(1);
        }
    }
}
