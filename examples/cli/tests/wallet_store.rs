//! `snap2p wallet …` with a malformed `*.wallet.json` beside good ones (issue 26): every
//! command still works on the good wallets, the bad file is named with its problem and
//! left byte for byte as it was; `wallet list` keeps its columns aligned for names with
//! wide characters (CJK, emoji).

mod common;

use common::*;

const PW: &str = "correct horse battery";
const BAD_EMPTY_OBJECT: &str = "0123456789abcdef0123456789abcdef";
const BAD_TRUNCATED: &str = "fedcba9876543210fedcba9876543210";

/// Terminal cells of the names used here: every char from U+1100 up is wide in them.
fn cells(s: &str) -> usize {
    s.chars()
        .map(|c| if c as u32 >= 0x1100 { 2 } else { 1 })
        .sum()
}

#[test]
fn a_malformed_wallet_file_locks_nobody_out() {
    let dir = tempdir();
    let w = |args: &[&str], pw: Option<&str>| {
        let mut c = cmd(dir.path());
        if let Some(pw) = pw {
            c.env("SNAP2P_PASSWORD", pw);
        }
        c.args(args);
        run(c, "")
    };
    let names = ["alice", "日本語のウォレット", "rocket 🚀 wallet"];
    for n in names {
        let out = w(&["wallet", "create", "--name", n], Some(PW));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let bad = [
        (BAD_EMPTY_OBJECT, "{}".to_string(), "missing field"),
        (
            BAD_TRUNCATED,
            "{\n  \"version\": 1,\n  \"network\": \"main".to_string(),
            "EOF while parsing",
        ),
    ];
    for (id, body, _) in &bad {
        std::fs::write(dir.path().join(format!("{id}.wallet.json")), body).unwrap();
    }

    // list: every good wallet on stdout, each bad file on stderr with its problem.
    let out = w(&["wallet", "list"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    for (id, _, problem) in &bad {
        let line = se
            .lines()
            .find(|l| l.contains(&format!("{id}.wallet.json")))
            .unwrap_or_else(|| panic!("{id} not named: {se}"));
        assert!(line.contains(problem), "{line}");
    }
    // Aligned: the address column starts at the same terminal column on every line.
    let rows: Vec<&str> = so.lines().filter(|l| l.contains(" SP")).collect();
    assert_eq!(rows.len(), names.len(), "{so}");
    let columns: Vec<usize> = rows
        .iter()
        .map(|l| cells(&l[..l.find(" SP").unwrap()]))
        .collect();
    assert!(
        columns.windows(2).all(|p| p[0] == p[1]),
        "{columns:?}\n{so}"
    );
    for n in names {
        assert!(so.contains(n), "{so}");
    }

    // --json: the good wallets and one wallet_unreadable event per bad file.
    let out = w(&["--json", "wallet", "list"], None);
    assert!(out.status.success());
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.iter().filter(|e| e["event"] == "wallet").count(), 3);
    let unreadable: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "wallet_unreadable")
        .collect();
    assert_eq!(unreadable.len(), 2, "{events:?}");
    assert!(unreadable.iter().any(|e| e["id"] == BAD_EMPTY_OBJECT));

    // The good wallets open: export by name (also a wide one), rename.
    for n in names {
        let out = w(&["wallet", "export", n], Some(PW));
        assert!(out.status.success(), "{n}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).split_whitespace().count(), 24);
    }
    let out = w(&["wallet", "rename", "alice", "alice-2"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A bad file by id: ERR_WALLET naming the file and its problem; never deleted.
    let out = w(&["wallet", "export", BAD_EMPTY_OBJECT], Some(PW));
    assert!(!out.status.success());
    let se = text(&out.stderr);
    assert!(se.contains("ERR_WALLET (24)"), "{se}");
    assert!(
        se.contains(&format!("{BAD_EMPTY_OBJECT}.wallet.json")),
        "{se}"
    );
    assert!(se.contains("missing field"), "{se}");
    let out = w(&["wallet", "delete", BAD_TRUNCATED, "--yes"], None);
    assert!(!out.status.success());
    for (id, body, _) in &bad {
        let now = std::fs::read_to_string(dir.path().join(format!("{id}.wallet.json"))).unwrap();
        assert_eq!(&now, body, "{id} was modified");
    }
}
