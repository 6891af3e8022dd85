//! `snap2p listen --ws/--wss` and dials of `ws://` and `wss://` locators, as separate
//! processes over loopback (certificates made here with rcgen, trusted with `--tls-root`).

mod common;

use common::*;

/// A CA and a leaf for `localhost` and 127.0.0.1, written as PEM files into `dir`:
/// (root, cert, key).
fn certs(dir: &std::path::Path) -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let path = |n: &str| dir.join(n).to_string_lossy().into_owned();
    std::fs::write(path("root.pem"), ca.pem()).unwrap();
    std::fs::write(path("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(path("key.pem"), leaf_key.serialize_pem()).unwrap();
    (path("root.pem"), path("cert.pem"), path("key.pem"))
}

#[test]
fn listen_on_tcp_ws_and_wss_at_once_and_dial_each() {
    let dir = tempdir();
    let (root, cert, key) = certs(dir.path());
    let mut c = cmd(dir.path());
    c.args([
        "listen",
        "127.0.0.1:0",
        "--ws",
        "127.0.0.1:0",
        "--wss",
        "127.0.0.1:0",
        "--ws-path",
        "/snap2p",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--alias",
        "wsnode",
    ]);
    let srv = Bg::spawn(c);
    let out = srv.out.wait_for("Listening on wss://");
    let locators: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Listening on "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert_eq!(locators.len(), 3, "{out}");
    assert!(!locators[0].contains("://"), "{locators:?}");
    assert!(
        locators[1].starts_with("ws://127.0.0.1:") && locators[1].ends_with("/snap2p"),
        "{locators:?}"
    );
    assert!(
        locators[2].starts_with("wss://127.0.0.1:") && locators[2].ends_with("/snap2p"),
        "{locators:?}"
    );
    // Every listener is the same peer: each dial authenticates the same principal.
    let principal = out
        .lines()
        .next()
        .and_then(|l| l.split(" as ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let wss_by_name = locators[2].replace("127.0.0.1", "localhost");
    for target in [&locators[0], &locators[1], &locators[2], &wss_by_name] {
        let mut d = cmd(dir.path());
        d.args([
            "dial",
            target,
            "-m",
            "over every transport",
            "--tls-root",
            &root,
        ]);
        let o = run(d, "");
        let (so, se) = (text(&o.stdout), text(&o.stderr));
        assert!(o.status.success(), "{target}\n{so}\n{se}");
        assert_eq!(so.trim(), "over every transport", "{target}");
        assert!(
            se.contains(&format!("connected to wsnode ({principal})")),
            "{target}: {se}"
        );
    }
    // Without the test root, the certificate is refused before any snap2p byte.
    let mut d = cmd(dir.path());
    d.args(["dial", &locators[2], "-m", "x"]);
    let o = run(d, "");
    let se = text(&o.stderr);
    assert!(!o.status.success());
    assert!(se.contains("ERR_HANDSHAKE_FAILED (8)"), "{se}");
    assert!(se.contains("UnknownIssuer"), "{se}");
    // Another path: the listener answers 404.
    let mut d = cmd(dir.path());
    let other = locators[1].replace("/snap2p", "/other");
    d.args(["dial", &other, "-m", "x"]);
    let o = run(d, "");
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("HTTP 404"), "{}", text(&o.stderr));
}

#[test]
fn wss_needs_a_certificate_and_a_ws_port_alone_is_enough() {
    let dir = tempdir();
    let mut c = cmd(dir.path());
    c.args(["listen", "--wss", "0"]);
    let o = run(c, "");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("--tls-cert"),
        "{}",
        text(&o.stderr)
    );

    let mut c = cmd(dir.path());
    c.args(["listen", "--ws", "127.0.0.1:0"]);
    let srv = Bg::spawn(c);
    let out = srv.out.wait_for("Listening on ws://");
    let loc = out
        .split("Listening on ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(
        loc.starts_with("ws://127.0.0.1:") && !loc.ends_with('/'),
        "{loc}"
    );
    let mut d = cmd(dir.path());
    d.args(["dial", &loc, "-m", "ws only"]);
    let o = run(d, "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "ws only");
}
