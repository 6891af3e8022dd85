//! `snap2p listen --metrics`: the Prometheus exposition, `/health` and `/ready`, read over
//! HTTP as a scraper would; and (ignored in a plain `cargo test`, run by
//! ci/steps/78-metrics.sh after ci/setup/prometheus.sh) a real Prometheus server scraping
//! a listener while peers connect, its HTTP API showing the counters move.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cmd, listener, run, tempdir, text, Bg};

/// GET `path` from `addr`; (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let body = resp
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

/// The value of the sample line starting with `series` (exactly that series).
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn metrics_addr(srv: &Bg) -> String {
    let out = srv.out.wait_for("Metrics on http://");
    out.split("Metrics on http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("metrics address")
        .to_string()
}

#[test]
fn metrics_health_and_ready_over_http() {
    let dir = tempdir();
    let (srv, addr) = listener(dir.path(), &["--metrics", "127.0.0.1:0"]);
    let m = metrics_addr(&srv);
    assert_eq!(get(&m, "/health"), (200, "ok\n".into()));
    assert_eq!(get(&m, "/ready").0, 200);
    assert_eq!(get(&m, "/nothing").0, 404);
    let (status, before) = get(&m, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        sample(&before, "snap2p_sessions_open"),
        Some(0.0),
        "{before}"
    );
    assert_eq!(
        sample(&before, "snap2p_sessions_total{direction=\"inbound\"}"),
        Some(0.0)
    );
    // Three peers dial in, the last with the v1 handshake only; the counters move.
    for extra in [None, None, Some("--v1")] {
        let mut c = cmd(dir.path());
        c.args(["dial", &addr, "-m", "hello metrics"]).args(extra);
        let out = run(c, "");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let (_, body) = get(&m, "/metrics");
        if sample(&body, "snap2p_sessions_total{direction=\"inbound\"}") == Some(3.0) {
            break body;
        }
        assert!(Instant::now() < deadline, "sessions never counted:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        sample(&after, "snap2p_bytes_received_total").unwrap() > 0.0,
        "{after}"
    );
    assert!(
        sample(&after, "snap2p_bytes_sent_total").unwrap() > 0.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "snap2p_sessions_hs2_total"),
        Some(2.0),
        "{after}"
    );
    assert!(
        after.contains("# TYPE snap2p_handshakes_failed counter"),
        "{after}"
    );
    assert!(after.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
#[ignore = "needs the prometheus binary (ci/setup/prometheus.sh); run by ci/steps/78-metrics.sh"]
fn a_real_prometheus_scrapes_a_listener_while_peers_connect() {
    let prometheus = std::env::var("SNAP2P_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    let dir = tempdir();
    let (srv, addr) = listener(dir.path(), &["--metrics", "127.0.0.1:0"]);
    let m = metrics_addr(&srv);
    let web = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: snap2p\n    static_configs:\n      - targets: ['{m}']\n"
        ),
    )
    .unwrap();
    let mut prom = Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {prometheus}: {e}"));
    // Prometheus' own API: the value of `query` now (None while it has no sample).
    let query = |q: &str| -> Option<f64> {
        let path = format!(
            "/api/v1/query?query={}",
            q.replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22")
        );
        let mut s = TcpStream::connect(&web).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let body = resp.split("\r\n\r\n").nth(1)?;
        let v: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let wait_for = |q: &str, ok: &dyn Fn(f64) -> bool| -> f64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = query(q) {
                if ok(v) {
                    return v;
                }
            }
            assert!(Instant::now() < deadline, "Prometheus never saw {q} move");
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    // Scraped before any peer came: zero sessions.
    wait_for("up{job=\"snap2p\"}", &|v| v == 1.0);
    wait_for("snap2p_sessions_total{direction=\"inbound\"}", &|v| {
        v == 0.0
    });
    let bytes0 = wait_for("snap2p_bytes_received_total", &|_| true);
    // Peers connect: a chat that stays open, and three one-message dials.
    let mut chat = cmd(dir.path());
    chat.args(["chat", &addr]);
    let mut chat = Bg::spawn(chat);
    chat.send_line("a line for the listener");
    for _ in 0..3 {
        let mut c = cmd(dir.path());
        c.args(["dial", &addr, "-m", "hello prometheus"]);
        assert!(run(c, "").status.success());
    }
    let sessions = wait_for("snap2p_sessions_total{direction=\"inbound\"}", &|v| {
        v >= 4.0
    });
    let open = wait_for("snap2p_sessions_open", &|v| v >= 1.0);
    let bytes1 = wait_for("snap2p_bytes_received_total", &|v| v > bytes0);
    eprintln!(
        "RESULT prometheus: sessions_total{{inbound}} {sessions}, sessions_open {open}, bytes_received {bytes0} -> {bytes1}"
    );
    drop(chat);
    let _ = prom.kill();
    let _ = prom.wait();
}
