//! `snap2p dial alice.btc --bns URL,URL` as a user runs it: a listener process, two local
//! Stacks API servers (hyper on loopback, in this test) answering with the recorded response
//! shape of core/tests/fixtures/bns (see its README), and the dialer process.

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use common::*;

const RECORDED: &str =
    include_str!("../../../core/tests/fixtures/bns/get-name-info.response.example.json");

/// Serves the recorded `GET /v1/names/{name}` document with `address` set to `owner` and
/// `_snap2p` locators appended to its zonefile, on a loopback port; returns its base URL.
fn provider(owner: &str, locators: &[&str]) -> String {
    let mut v: serde_json::Value = serde_json::from_str(RECORDED).unwrap();
    v["address"] = owner.into();
    v["blockchain"] = "stacks".into();
    let quoted: Vec<String> = locators.iter().map(|l| format!("\"{l}\"")).collect();
    let zonefile = format!(
        "{}_snap2p IN TXT {}\n",
        v["zonefile"].as_str().unwrap(),
        quoted.join(" ")
    );
    v["zonefile"] = zonefile.into();
    let body = Arc::new(v.to_string());
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    std_listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let ok = req.uri().path() == "/v1/names/alice.btc";
                        let body = body.clone();
                        async move {
                            let (status, b) = if ok {
                                (200, (*body).clone())
                            } else {
                                (404, "{\"error\": \"No such name\"}".to_string())
                            };
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(http_body_util::Full::new(hyper::body::Bytes::from(b)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
    });
    format!("http://{addr}")
}

#[test]
fn dial_a_bns_name_through_two_agreeing_providers() {
    let dir = tempdir();
    let (srv, addr) = listener(dir.path(), &[]);
    let line = srv.out.wait_for("Listening on ");
    let owner = line
        .split(" as stacks:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("principal")
        .to_string();
    let urls = format!(
        "{},{}",
        provider(&owner, &[&addr]),
        provider(&owner, &[&addr])
    );
    let mut c = cmd(dir.path());
    c.args(["dial", "alice.btc", "-m", "hello by name", "--bns", &urls]);
    let out = run(c, "");
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "dial failed\n{so}\n{se}");
    assert_eq!(so.trim(), "hello by name");
    assert!(se.contains(&format!("stacks:{owner}")), "{se}");

    // One provider names someone else: the two disagree, nothing is dialed.
    let other = "SP000000000000000000002Q6VF78";
    let urls = format!(
        "{},{}",
        provider(&owner, &[&addr]),
        provider(other, &[&addr])
    );
    let mut c = cmd(dir.path());
    c.args(["dial", "alice.btc", "-m", "x", "--bns", &urls]);
    let out = run(c, "");
    let se = text(&out.stderr);
    assert!(!out.status.success());
    assert!(se.contains("ERR_PROVIDERS_DISAGREE (26)"), "{se}");

    // A name without --bns is refused as a name.
    let mut c = cmd(dir.path());
    c.args(["dial", "alice.btc", "-m", "x"]);
    let out = run(c, "");
    let se = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        se.contains("ERR_INVALID_ARGUMENT (25)") && se.contains("BNS"),
        "{se}"
    );
}
