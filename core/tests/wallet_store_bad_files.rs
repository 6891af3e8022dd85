//! One malformed `*.wallet.json` must not lock the user out of every wallet (issue 26):
//! the store lists and opens the good wallets, names each bad file with its problem, and
//! never modifies or deletes it.

use snap2p::identity::{Network, ScryptParams, WalletStore};
use snap2p::ErrorCode;

const FAST: ScryptParams = ScryptParams {
    log_n: 10,
    r: 8,
    p: 1,
};

const BAD_ID: &str = "0123456789abcdef0123456789abcdef";
const PW: &str = "password-1";

fn bad_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        ("a stray {}", b"{}".to_vec(), "missing field"),
        (
            "a truncated file",
            br#"{ "version": 1, "network": "mainnet", "addr"#.to_vec(),
            "EOF while parsing",
        ),
        ("an empty file", Vec::new(), "empty"),
        ("not UTF-8", vec![0xff, 0xfe, b'{', b'}'], "UTF-8"),
        (
            "an unknown network",
            br#"{"version":1,"network":"moonnet","address":"SP1","displayName":"x",
               "createdAt":"2024-01-01T00:00:00.000Z","crypto":{"salt":"","iv":"","tag":"",
               "ciphertext":"","kdf":"scrypt"}}"#
                .to_vec(),
            "unknown network",
        ),
    ]
}

#[test]
fn a_malformed_wallet_file_hides_nothing_and_is_left_alone() {
    for (what, bytes, problem) in bad_cases() {
        let tmp = tempfile::tempdir().unwrap();
        let store = WalletStore::open(tmp.path().join("w"))
            .unwrap()
            .with_scrypt_params(FAST);
        let (alice, _) = store.create("alice", PW, Network::Mainnet).unwrap();
        let (bob, bob_wallet) = store.create("bob", PW, Network::Testnet).unwrap();
        let bad = store.dir().join(format!("{BAD_ID}.wallet.json"));
        std::fs::write(&bad, &bytes).unwrap();
        let before = std::fs::metadata(&bad).unwrap().modified().unwrap();

        // list: the good wallets; scan: and the bad file with its problem.
        let names: Vec<String> = store.list().unwrap().into_iter().map(|w| w.name).collect();
        assert_eq!(names, ["alice", "bob"], "{what}");
        let scan = store.scan().unwrap();
        assert_eq!(scan.wallets.len(), 2, "{what}");
        assert_eq!(scan.unreadable.len(), 1, "{what}");
        let u = &scan.unreadable[0];
        assert_eq!(u.id, BAD_ID);
        assert_eq!(u.path, bad);
        assert!(u.problem.contains(problem), "{what}: {}", u.problem);
        assert!(
            u.to_string().contains(&format!("{BAD_ID}.wallet.json")),
            "{u}"
        );

        // The good ones open, by name and by id; export, rename and create still work.
        assert_eq!(store.find("bob").unwrap().id, bob.id);
        let w = store.unlock("bob", PW).unwrap();
        assert_eq!(w.principal(), bob_wallet.principal());
        assert!(store.export_mnemonic(&alice.id, PW).is_ok(), "{what}");
        store.rename("alice", "alice2").unwrap();
        store.create("carol", PW, Network::Mainnet).unwrap();

        // The bad file by id: ERR_WALLET naming it and its problem.
        let e = store.unlock(BAD_ID, PW).unwrap_err();
        assert_eq!(e.code, ErrorCode::WalletError);
        assert!(
            e.message.contains(&format!("{BAD_ID}.wallet.json")),
            "{}",
            e.message
        );
        assert!(e.message.contains(problem), "{what}: {}", e.message);
        assert_eq!(
            store.delete(BAD_ID).unwrap_err().code,
            ErrorCode::WalletError
        );
        assert!(store.rename(BAD_ID, "fixed").is_err());
        // A name that is nowhere: the error mentions the unreadable file too.
        let e = store.find("dave").unwrap_err();
        assert_eq!(e.code, ErrorCode::WalletError);
        assert!(
            e.message.contains(&format!("{BAD_ID}.wallet.json")),
            "{}",
            e.message
        );

        // Never modified, never deleted.
        assert_eq!(std::fs::read(&bad).unwrap(), bytes, "{what}");
        assert_eq!(std::fs::metadata(&bad).unwrap().modified().unwrap(), before);
    }
}

#[test]
fn without_bad_files_errors_read_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let store = WalletStore::open(tmp.path().join("w"))
        .unwrap()
        .with_scrypt_params(FAST);
    assert!(store.scan().unwrap().unreadable.is_empty());
    let e = store.find("nobody").unwrap_err();
    assert_eq!(e.code, ErrorCode::WalletError);
    assert_eq!(e.message, "no wallet named \"nobody\"");
}

/// A malformed `registry.json` (the TypeScript tool's index): reading and unlocking still
/// work; create, rename and delete fail with ERR_WALLET naming it before touching any
/// file (no half-made wallet, no renamed file with a stale index), and it is never
/// overwritten.
#[test]
fn a_malformed_registry_stops_writes_before_any_file_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = WalletStore::open(tmp.path().join("w"))
        .unwrap()
        .with_scrypt_params(FAST);
    let (alice, _) = store.create("alice", PW, Network::Mainnet).unwrap();
    let registry = store.dir().join("registry.json");
    std::fs::write(&registry, b"{ \"version\": 1, \"acc").unwrap();
    let files = |s: &WalletStore| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(s.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = files(&store);

    assert_eq!(store.list().unwrap().len(), 1);
    assert!(store.unlock("alice", PW).is_ok());
    for (what, r) in [
        (
            "create",
            store.create("bob", PW, Network::Mainnet).map(|_| ()),
        ),
        ("rename", store.rename("alice", "carol").map(|_| ())),
        ("delete", store.delete(&alice.id)),
    ] {
        let e = r.expect_err(what);
        assert_eq!(e.code, ErrorCode::WalletError, "{what}: {e}");
        assert!(e.to_string().contains("registry.json"), "{what}: {e}");
        assert_eq!(files(&store), before, "{what} changed a file");
    }
}
