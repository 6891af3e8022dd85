//! The `snap2p` command as a user runs it: separate processes over loopback, real keys,
//! pipes and pseudo-terminals.

mod common;

use std::time::Duration;

use common::*;

const PW: &str = "correct horse battery";

#[test]
fn every_command_has_help_with_an_example() {
    let dir = tempdir();
    for args in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["listen", "--help"],
        vec!["chat", "--help"],
        vec!["dial", "--help"],
        vec!["resolve", "--help"],
        vec!["signin", "--help"],
        vec!["wallet", "create", "--help"],
        vec!["wallet", "list", "--help"],
        vec!["wallet", "import", "--help"],
        vec!["wallet", "export", "--help"],
        vec!["wallet", "rename", "--help"],
        vec!["wallet", "delete", "--help"],
        vec!["invite", "create", "--help"],
        vec!["invite", "list", "--help"],
        vec!["invite", "revoke", "--help"],
        vec!["alias", "set", "--help"],
    ] {
        let mut c = cmd(dir.path());
        c.args(&args);
        let out = run(c, "");
        assert!(out.status.success(), "{args:?}");
        let s = text(&out.stdout);
        assert!(
            s.contains("Example"),
            "{args:?} help lacks an example:\n{s}"
        );
    }
}

#[test]
fn listen_and_dial_echo_with_alias() {
    let dir = tempdir();
    let (srv, addr) = listener(dir.path(), &["--alias", "echoserver"]);
    let mut c = cmd(dir.path());
    c.args(["dial", &addr, "-m", "hello snap2p"]);
    let out = run(c, "");
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "dial failed\n{so}\n{se}");
    assert_eq!(so.trim(), "hello snap2p");
    assert!(se.contains("connected to echoserver (stacks:SP"), "{se}");
    // The listener saw the dialer's authenticated principal and the echoed stream.
    let me = announced_principal(&se);
    srv.out.wait_for(&format!("+ {me} connected"));
    srv.out.wait_for("\"echo\" echoed 12 bytes");
}

#[test]
fn dial_json_output_is_machine_readable() {
    let dir = tempdir();
    let (_srv, addr) = listener(dir.path(), &[]);
    let mut c = cmd(dir.path());
    c.args(["--json", "dial", &addr, "-m", "json please"]);
    let out = run(c, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["event"], "echo");
    assert_eq!(v["text"], "json please");
    assert_eq!(v["bytes"], 11);
    assert_eq!(v["matches"], true);
    assert_eq!(v["hs2"], true, "both sides speak hs2 by default");
}

#[test]
fn v1_listener_and_dialer_speak_v1_and_say_so() {
    let dir = tempdir();
    // A listener with --v1 closes on the default dialer's hs2 offer; the dialer comes again
    // with v1 at once, and both say which handshake ran.
    let (srv, addr) = listener(dir.path(), &["--v1"]);
    let mut c = cmd(dir.path());
    c.args(["dial", &addr, "-m", "old node"]);
    let out = run(c, "");
    let se = text(&out.stderr);
    assert!(out.status.success(), "{se}");
    assert!(se.contains(" over tcp (v1)"), "{se}");
    srv.out.wait_for("inbound handshake from 127.0.0.1");
    let me = announced_principal(&se);
    srv.out.wait_for(&format!("+ {me} connected"));
    // A dialer with --v1 to a default listener: v1 too, and nothing failed there.
    let (srv2, addr2) = listener(dir.path(), &[]);
    let mut c = cmd(dir.path());
    c.args(["--json", "dial", &addr2, "-m", "x", "--v1"]);
    let out = run(c, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(
        (&v["event"], &v["hs2"]),
        (&"echo".into(), &false.into()),
        "{v}"
    );
    srv2.out.wait_for("\"echo\" echoed 1 bytes");
    assert!(
        !srv2.out.get().contains("inbound handshake"),
        "{}",
        srv2.out.get()
    );
}

#[test]
fn dial_nobody_fails_with_code() {
    let dir = tempdir();
    // Bind then drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = cmd(dir.path());
    c.args(["dial", &format!("127.0.0.1:{port}"), "-m", "x"]);
    let out = run(c, "");
    assert!(!out.status.success());
    let se = text(&out.stderr);
    assert!(se.contains("ERR_CONNECTION_CLOSED (12)"), "{se}");
}

#[test]
fn chat_over_pipes_both_ways() {
    let dir = tempdir();
    let (mut srv, addr) = listener(dir.path(), &["--alias", "host"]);
    let mut c = cmd(dir.path());
    c.args(["chat", &addr, "--alias", "guest"]);
    let mut chat = Bg::spawn(c);
    chat.err.wait_for("chatting with host");
    srv.out.wait_for("guest (stacks:");
    chat.send_line("hello from the pipe");
    srv.out.wait_for("guest: hello from the pipe");
    srv.send_line("hello back");
    chat.out.wait_for("host: hello back");
    // EOF on stdin ends the chat cleanly.
    drop(chat.stdin.take());
    assert!(chat.wait().success(), "{}", chat.err.get());
    srv.out.wait_for("disconnected");
}

#[test]
fn stealth_listener_and_invite_file() {
    let dir = tempdir();
    let invites = dir.path().join("invites.json");
    let inv = invites.to_str().unwrap();
    let (srv, addr) = listener(
        dir.path(),
        &["--visibility", "stealth", "--invites-file", inv],
    );
    let first = srv.out.wait_for("Invite ");
    let first_token = first
        .split("--invite ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();

    let dial = |extra: &[&str]| {
        let mut c = cmd(dir.path());
        c.args(["dial", &addr, "-m", "psst"]).args(extra);
        run(c, "")
    };
    let out = dial(&[]);
    assert!(!out.status.success());
    let se = text(&out.stderr);
    assert!(se.contains("ERR_INVITE_REQUIRED (18)"), "{se}");
    assert!(se.contains("invite token"), "a sentence for people: {se}");

    let out = dial(&["--invite", &"ab".repeat(32)]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("ERR_INVITE_INVALID (5)"));

    let out = dial(&["--invite", &first_token]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "psst");

    // A token made by `invite create` against the listener's file is accepted…
    let mut c = cmd(dir.path());
    c.args([
        "--json",
        "invite",
        "create",
        "--invites-file",
        inv,
        "--ttl",
        "600",
    ]);
    let out = run(c, "");
    assert!(out.status.success());
    let rec: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    let (id, token) = (
        rec["id"].as_str().unwrap().to_string(),
        rec["token"].as_str().unwrap().to_string(),
    );
    let mut c = cmd(dir.path());
    c.args(["invite", "list", "--invites-file", inv]);
    assert!(text(&run(c, "").stdout).contains(&id));
    std::thread::sleep(Duration::from_millis(1500)); // the listener re-reads every second
    let out = dial(&["--invite", &token]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // …and refused once revoked.
    let mut c = cmd(dir.path());
    c.args(["invite", "revoke", &id, "--invites-file", inv]);
    assert!(run(c, "").status.success());
    std::thread::sleep(Duration::from_millis(1500));
    let out = dial(&["--invite", &token]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("ERR_INVITE_INVALID (5)"));
}

#[test]
fn private_listener_enforces_allow() {
    let dir = tempdir();
    let mut c = cmd(dir.path());
    c.env("SNAP2P_PASSWORD", PW)
        .args(["wallet", "create", "--name", "friend"]);
    let out = run(c, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let friend = text(&out.stdout)
        .split("address: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (srv, addr) = listener(dir.path(), &["--visibility", "private", "--allow", &friend]);
    // A stranger (ephemeral identity) is refused after authentication…
    let mut c = cmd(dir.path());
    c.args(["dial", &addr, "-m", "hi"]);
    let out = run(c, "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("ERR_NOT_ALLOWED (4)"));
    // …and the listener says so (an operator sees who could not get in, and why).
    let line = srv.out.wait_for("inbound handshake from 127.0.0.1:");
    assert!(line.contains("ERR_NOT_ALLOWED (4)"), "{line}");
    // …the allowed wallet gets in, and the listener shows its address.
    let mut c = cmd(dir.path());
    c.env("SNAP2P_PASSWORD", PW)
        .args(["dial", &addr, "-m", "hi", "-w", "friend"]);
    let out = run(c, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    srv.out.wait_for(&format!("stacks:{friend}"));
}

#[test]
fn wallet_lifecycle_and_errors() {
    let dir = tempdir();
    let w = |args: &[&str], pw: Option<&str>| {
        let mut c = cmd(dir.path());
        if let Some(pw) = pw {
            c.env("SNAP2P_PASSWORD", pw);
        }
        c.args(args);
        run(c, "")
    };
    // Too short a password is refused, naming the minimum.
    let out = w(&["wallet", "create", "--name", "a"], Some("short"));
    assert!(!out.status.success());
    let se = text(&out.stderr);
    assert!(
        se.contains("ERR_WALLET (24)") && se.contains("at least 8"),
        "{se}"
    );

    let out = w(&["wallet", "create", "--name", "a"], Some(PW));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let so = text(&out.stdout);
    assert!(so.contains("Created wallet \"a\""), "{so}");
    let address = so
        .split("address: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(address.starts_with("SP"));

    let out = w(&["--json", "wallet", "list"], None);
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["name"], "a");
    assert_eq!(v["address"], address.as_str());

    let out = w(&["wallet", "export", "a"], Some(PW));
    assert!(out.status.success());
    let phrase = text(&out.stdout).trim().to_string();
    assert_eq!(phrase.split(' ').count(), 24);

    // Wrong password: the protocol's wallet code and a sentence, non-zero exit.
    let out = w(&["wallet", "export", "a"], Some("not the password"));
    assert!(!out.status.success());
    let se = text(&out.stderr);
    assert!(
        se.contains("ERR_WALLET (24)") && se.contains("wrong password"),
        "{se}"
    );

    // Import the phrase under another name on testnet: same key, ST address.
    let mut c = cmd(dir.path());
    c.env("SNAP2P_PASSWORD", PW)
        .env("SNAP2P_MNEMONIC", &phrase)
        .args(["--testnet", "wallet", "import", "--name", "b"]);
    let out = run(c, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("address: ST"));

    let out = w(&["wallet", "rename", "b", "c"], None);
    assert!(out.status.success());
    let out = w(&["wallet", "delete", "c"], None);
    assert!(
        !out.status.success(),
        "no --yes and no terminal must not delete"
    );
    let out = w(&["wallet", "delete", "c", "--yes"], None);
    assert!(out.status.success());
    let out = w(&["wallet", "list"], None);
    let so = text(&out.stdout);
    assert!(so.contains(&address) && !so.contains(" c "), "{so}");

    // -w with the wrong password stops a networking command before it starts.
    let out = w(
        &["dial", "127.0.0.1:1", "-m", "x", "-w", "a"],
        Some("wrong password!"),
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("ERR_WALLET (24)"));
}

#[test]
fn alias_set_is_used_by_listen() {
    let dir = tempdir();
    let mut c = cmd(dir.path());
    c.args(["alias", "set", "Zed", "--display-name", "Zed the Listener"]);
    let out = run(c, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_srv, addr) = listener(dir.path(), &[]);
    let mut c = cmd(dir.path());
    c.args(["dial", &addr, "-m", "who are you"]);
    let out = run(c, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Aliases are normalised by the core (lower case).
    assert!(
        text(&out.stderr).contains("connected to zed (stacks:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn typescript_wallet_files_open() {
    let raw = std::fs::read_to_string(vectors_dir().join("wallet-ts-format.json"))
        .expect("wallet vector");
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let dir = tempdir();
    for w in v["wallets"].as_array().unwrap() {
        std::fs::write(
            dir.path().join(w["file_name"].as_str().unwrap()),
            w["file_text"].as_str().unwrap(),
        )
        .unwrap();
    }
    if let Some(reg) = v["registry_text"].as_str() {
        std::fs::write(dir.path().join("registry.json"), reg).unwrap();
    }
    let mut c = cmd(dir.path());
    c.args(["wallet", "list"]);
    let listed = text(&run(c, "").stdout);
    for w in v["wallets"].as_array().unwrap() {
        let (id, pw, addr) = (
            w["id"].as_str().unwrap(),
            w["password"].as_str().unwrap(),
            w["address"].as_str().unwrap(),
        );
        assert!(listed.contains(addr), "{listed}");
        let mut c = cmd(dir.path());
        c.env("SNAP2P_PASSWORD", pw).args(["wallet", "export", id]);
        let out = run(c, "");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), w["mnemonic"].as_str().unwrap());
    }
    // And it works as a network identity: a listener run with it shows its principal.
    let first = &v["wallets"][0];
    let mut c = cmd(dir.path());
    c.env("SNAP2P_PASSWORD", first["password"].as_str().unwrap())
        .args(["listen", "127.0.0.1:0", "-w", first["id"].as_str().unwrap()]);
    let bg = Bg::spawn(c);
    bg.out
        .wait_for(&format!("as stacks:{}", first["address"].as_str().unwrap()));
}

#[test]
fn wallet_create_on_a_terminal_does_not_echo_the_password() {
    let dir = tempdir();
    let mut c = cmd(dir.path());
    c.args(["wallet", "create", "--name", "tty"]);
    let mut p = Pty::spawn(c);
    p.out.wait_for("at least 8 characters");
    p.send("pty-secret-pw\r");
    p.out.wait_for("Repeat password");
    p.send("pty-secret-pw\r");
    let all = p.out.wait_for("Recovery phrase");
    assert!(p.wait().success());
    assert!(
        !all.contains("pty-secret-pw"),
        "password was echoed:\n{all}"
    );
}

#[test]
fn signin_unlocks_a_saved_wallet_on_a_terminal() {
    let dir = tempdir();
    let mut c = cmd(dir.path());
    c.env("SNAP2P_PASSWORD", PW)
        .args(["wallet", "create", "--name", "mine"]);
    assert!(run(c, "").status.success());

    // Wrong password first: non-zero exit with the wallet error.
    let mut c = cmd(dir.path());
    c.arg("signin");
    let mut p = Pty::spawn(c);
    p.out.wait_for("Choice: ");
    p.send("1\r");
    p.out.wait_for("Password for wallet \"mine\"");
    p.send("not-it-at-all\r");
    let all = p.out.wait_for("ERR_WALLET (24)");
    assert!(!p.wait().success());
    assert!(!all.contains("not-it-at-all"));

    let mut c = cmd(dir.path());
    c.arg("signin");
    let mut p = Pty::spawn(c);
    p.out.wait_for("Choice: ");
    p.send("1\r");
    p.out.wait_for("Password for wallet");
    p.send(&format!("{PW}\r"));
    p.out.wait_for("Signed in as \"mine\"");
    assert!(p.wait().success());
}

#[test]
fn chat_in_a_terminal_and_ctrl_d_leaves() {
    let dir = tempdir();
    let (mut srv, addr) = listener(dir.path(), &["--alias", "host"]);
    let mut c = cmd(dir.path());
    c.args(["chat", &addr]);
    let mut p = Pty::spawn(c);
    p.out.wait_for("chatting with host (stacks:");
    p.send("typed in a tty\r");
    srv.out.wait_for(": typed in a tty");
    srv.send_line("seen it");
    p.out.wait_for("host: seen it");
    p.send("\x04"); // Ctrl+D
    assert!(p.wait().success(), "{}", p.out.get());
    srv.out.wait_for("disconnected");
}

#[test]
fn chat_in_a_terminal_ctrl_c_leaves_cleanly() {
    let dir = tempdir();
    let (_srv, addr) = listener(dir.path(), &[]);
    let mut c = cmd(dir.path());
    c.args(["chat", &addr]);
    let mut p = Pty::spawn(c);
    p.out.wait_for("chatting with");
    p.out.wait_for("> ");
    p.send("\x03"); // Ctrl+C
    assert!(p.wait().success(), "{}", p.out.get());
    let _ = p.fd();
}

#[test]
fn demo_runs_and_reports_json() {
    let dir = tempdir();
    let mut c = cmd(dir.path());
    c.args(["demo", "--json"]);
    let out = run(c, "");
    let so = text(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(so.trim()).expect("one JSON document");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 7, "{so}");
    for s in steps {
        assert_eq!(s["ok"], true, "step failed: {s}");
    }
    assert!(out.status.success());
    assert_eq!(v["ok"], true);
}

#[test]
fn listen_advertises_external_locators_and_refuses_bad_ones() {
    let dir = tempdir();
    let (srv, _addr) = listener(
        dir.path(),
        &["--advertise", "wss://node.example.org:443/snap2p"],
    );
    srv.out
        .wait_for("Advertising wss://node.example.org:443/snap2p");
    let mut c = cmd(dir.path());
    c.args(["listen", "127.0.0.1:0", "--advertise", "node.example.org"]);
    let out = run(c, "");
    assert!(!out.status.success());
    let se = text(&out.stderr);
    assert!(se.contains("ERR_INVALID_ARGUMENT (25)"), "{se}");
    assert!(se.contains("invalid locator 'node.example.org'"), "{se}");
}

/// `--compat ts` on both ends (docs/PROTOCOL.md §12): the echo goes through; a dialer
/// without it is told the listener speaks the TypeScript profile, with code 8.
#[test]
fn compat_ts_listen_and_dial_and_mismatch_named() {
    let dir = tempdir();
    let (srv, addr) = listener(dir.path(), &["--compat", "ts"]);
    let mut c = cmd(dir.path());
    c.args(["dial", &addr, "--compat", "ts", "-m", "hello typescript"]);
    let out = run(c, "");
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "dial failed\n{so}\n{se}");
    assert_eq!(so.trim(), "hello typescript");
    srv.out.wait_for("\"echo\" echoed 16 bytes");
    let mut c = cmd(dir.path());
    c.args(["--json", "dial", &addr, "-m", "standard"]);
    let out = run(c, "");
    assert!(!out.status.success());
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("this peer speaks the TypeScript profile"),
        "{all}"
    );
    assert!(all.contains("ERR_HANDSHAKE_FAILED"), "{all}");
}
