//! `snap2p relay`, `listen --relay` and `dial --relay` as separate processes on loopback:
//! the listener keeps a reservation, the dialer reaches its principal through the relay
//! and gets its echo back.

mod common;

use common::*;

#[test]
fn dial_a_principal_through_a_relay() {
    let dir = tempdir();
    let mut c = cmd(dir.path());
    c.args(["relay", "127.0.0.1:0"]);
    let relay = Bg::spawn(c);
    let line = relay.out.wait_for("Relay on ");
    let raddr = line
        .split("Relay on ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("relay address")
        .to_string();
    let mut c = cmd(dir.path());
    c.args(["listen", "--relay", &raddr]);
    let srv = Bg::spawn(c);
    let out = srv.out.wait_for("Listening on relay://");
    let principal = out
        .split(" as ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("principal")
        .to_string();
    let mut c = cmd(dir.path());
    c.args([
        "dial",
        &principal,
        "--relay",
        &raddr,
        "-m",
        "hello via relay",
    ]);
    let out = run(c, "");
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "dial failed\n{so}\n{se}");
    assert_eq!(so.trim(), "hello via relay");
    assert!(se.contains(" over relay"), "{se}");
    srv.out.wait_for("\"echo\" echoed 15 bytes");
    // Help has an example.
    let mut c = cmd(dir.path());
    c.args(["relay", "--help"]);
    let help = text(&run(c, "").stdout);
    assert!(help.contains("Example"), "{help}");
}

/// The same through a relay that serves WebSocket only (`snap2p relay --ws`): `--relay
/// ws://…` on both peers, the session named `relay+ws`.
#[test]
fn dial_a_principal_through_a_websocket_relay() {
    let dir = tempdir();
    let mut c = cmd(dir.path());
    c.args(["relay", "--ws", "127.0.0.1:0", "--ws-path", "/relay"]);
    let relay = Bg::spawn(c);
    let line = relay.out.wait_for("Relay on ");
    let raddr = line
        .split("Relay on ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("relay locator")
        .to_string();
    assert!(
        raddr.starts_with("ws://127.0.0.1:") && raddr.ends_with("/relay"),
        "{line}"
    );
    let mut c = cmd(dir.path());
    c.args(["listen", "--relay", &raddr]);
    let srv = Bg::spawn(c);
    let out = srv.out.wait_for("Listening on relay+ws://");
    let principal = out
        .split(" as ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("principal")
        .to_string();
    let mut c = cmd(dir.path());
    c.args([
        "dial",
        &principal,
        "--relay",
        &raddr,
        "-m",
        "hello via ws relay",
    ]);
    let out = run(c, "");
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "dial failed\n{so}\n{se}");
    assert_eq!(so.trim(), "hello via ws relay");
    assert!(se.contains(" over relay+ws"), "{se}");
    srv.out.wait_for("\"echo\" echoed 18 bytes");
}
