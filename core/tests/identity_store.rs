//! Wallet store: lifecycle, errors, permissions, atomic writes, and compatibility with a
//! wallet directory written by the TS reference's algorithm (`vectors/wallet-ts-format.json`,
//! produced by `ci/oracle/make-wallet-vector.mjs` with node:crypto and stacks.js).

use snap2p::identity::{Network, ScryptParams, WalletStore, MIN_PASSWORD_LEN};
use snap2p::ErrorCode;

/// Cheap parameters for tests that do not check compatibility (2^10 instead of 2^17).
const FAST: ScryptParams = ScryptParams {
    log_n: 10,
    r: 8,
    p: 1,
};

fn store() -> (tempfile::TempDir, WalletStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = WalletStore::open(dir.path().join("wallets"))
        .unwrap()
        .with_scrypt_params(FAST);
    (dir, store)
}

fn dir_names(store: &WalletStore) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn lifecycle() {
    let (_tmp, store) = store();
    assert!(store.list().unwrap().is_empty());
    let (info, wallet) = store
        .create("alice", "password-1", Network::Mainnet)
        .unwrap();
    assert_eq!(wallet.mnemonic().split(' ').count(), 24);
    assert_eq!(info.address, wallet.principal().address());
    assert_eq!(info.network, Network::Mainnet);
    assert_eq!(info.id.len(), 32);
    assert!(
        info.created_at.ends_with('Z') && info.created_at.len() == 24,
        "{}",
        info.created_at
    );

    let abandon = "abandon ".repeat(11) + "about";
    let (info2, w2) = store
        .restore("bob", &abandon, "password-2", Network::Testnet)
        .unwrap();
    assert!(w2.principal().address().starts_with("ST"));

    let list = store.list().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.contains(&info) && list.contains(&info2));

    // By name and by id.
    let u = store.unlock("alice", "password-1").unwrap();
    assert_eq!(u.private_key_hex(), wallet.private_key_hex());
    let u2 = store.unlock(&info2.id, "password-2").unwrap();
    assert_eq!(u2.mnemonic(), abandon);
    assert_eq!(
        store.export_mnemonic("alice", "password-1").unwrap(),
        wallet.mnemonic()
    );

    let renamed = store.rename("alice", "alice-main").unwrap();
    assert_eq!(renamed.name, "alice-main");
    assert_eq!(store.find(&info.id).unwrap().name, "alice-main");
    assert_eq!(
        store.unlock("alice", "password-1").unwrap_err().code,
        ErrorCode::WalletError
    );
    store.unlock("alice-main", "password-1").unwrap();

    // Registry mirrors the files, in the reference's shape.
    let reg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(store.dir().join("registry.json")).unwrap())
            .unwrap();
    assert_eq!(reg["version"], 1);
    assert_eq!(reg["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(reg["currentAccountId"], info.id.as_str());
    assert_eq!(reg["accounts"][0]["displayName"], "alice-main");
    for key in ["id", "address", "displayName", "createdAt", "lastUsed"] {
        assert!(reg["accounts"][1].get(key).is_some(), "{key}");
    }

    store.delete("bob").unwrap();
    assert_eq!(store.list().unwrap(), vec![renamed]);
    assert_eq!(
        store.unlock("bob", "password-2").unwrap_err().code,
        ErrorCode::WalletError
    );
    assert!(!store
        .dir()
        .join(format!("{}.wallet.json", info2.id))
        .exists());
    let reg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(store.dir().join("registry.json")).unwrap())
            .unwrap();
    assert_eq!(reg["accounts"].as_array().unwrap().len(), 1);
}

#[test]
fn wallet_file_format() {
    let (_tmp, store) = store();
    let (info, _) = store.create("w", "password-1", Network::Testnet).unwrap();
    let text =
        std::fs::read_to_string(store.dir().join(format!("{}.wallet.json", info.id))).unwrap();
    let f: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Same key order as the reference's object literal.
    let order = [
        "\"version\"",
        "\"network\"",
        "\"address\"",
        "\"displayName\"",
        "\"createdAt\"",
        "\"crypto\"",
        "\"salt\"",
        "\"iv\"",
        "\"tag\"",
        "\"ciphertext\"",
        "\"kdf\"",
    ];
    let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(f.as_object().unwrap().len(), 6);
    assert_eq!(f["version"], 1);
    assert_eq!(f["network"], "testnet");
    assert_eq!(f["crypto"]["kdf"], "scrypt");
    use base64::Engine;
    let b64 = |k: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(f["crypto"][k].as_str().unwrap())
            .unwrap()
    };
    assert_eq!(b64("salt").len(), 16);
    assert_eq!(b64("iv").len(), 12);
    assert_eq!(b64("tag").len(), 16);
    assert!(!b64("ciphertext").is_empty());
    // Pretty-printed with two spaces, like JSON.stringify(v, null, 2).
    assert!(text.starts_with("{\n  \"version\": 1,"));
}

#[test]
fn wrong_password_and_bad_input() {
    let (_tmp, store) = store();
    store.create("w", "password-1", Network::Mainnet).unwrap();
    let e = store.unlock("w", "password-2").unwrap_err();
    assert_eq!(e.code, ErrorCode::WalletError);
    assert!(e.message.contains("wrong password"), "{}", e.message);
    assert_eq!(
        store.export_mnemonic("w", "nope-nope").unwrap_err().code,
        ErrorCode::WalletError
    );

    let short = "x".repeat(MIN_PASSWORD_LEN - 1);
    assert_eq!(
        store
            .create("v", &short, Network::Mainnet)
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    let abandon = "abandon ".repeat(11) + "about";
    assert_eq!(
        store
            .restore("v", &abandon, &short, Network::Mainnet)
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        store
            .restore("v", "abandon abandon", "password-1", Network::Mainnet)
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    for bad_name in ["", "   ", "a\nb", &"n".repeat(65)] {
        assert_eq!(
            store
                .create(bad_name, "password-1", Network::Mainnet)
                .unwrap_err()
                .code,
            ErrorCode::InvalidArgument,
            "{bad_name:?}"
        );
    }
    // Names stay unique so they can be used to address wallets.
    assert_eq!(
        store
            .create("w", "password-1", Network::Mainnet)
            .unwrap_err()
            .code,
        ErrorCode::WalletError
    );
    store.create("x", "password-1", Network::Mainnet).unwrap();
    assert_eq!(
        store.rename("x", "w").unwrap_err().code,
        ErrorCode::WalletError
    );
    assert_eq!(
        store.delete("nobody").unwrap_err().code,
        ErrorCode::WalletError
    );
    assert_eq!(
        store.rename("nobody", "z").unwrap_err().code,
        ErrorCode::WalletError
    );
}

#[test]
fn tampered_files_are_rejected() {
    let (_tmp, store) = store();
    let (info, _) = store.create("w", "password-1", Network::Mainnet).unwrap();
    let path = store.dir().join(format!("{}.wallet.json", info.id));
    let original = std::fs::read_to_string(&path).unwrap();
    let mut f: serde_json::Value = serde_json::from_str(&original).unwrap();

    // An address that is not the mnemonic's: detected after decryption.
    f["address"] = "SP000000000000000000002Q6VF78".into();
    std::fs::write(&path, f.to_string()).unwrap();
    let e = store.unlock(&info.id, "password-1").unwrap_err();
    assert_eq!(e.code, ErrorCode::WalletError);
    assert!(e.message.contains("does not match"), "{}", e.message);

    // A flipped ciphertext bit fails authentication.
    let mut f: serde_json::Value = serde_json::from_str(&original).unwrap();
    let ct = f["crypto"]["ciphertext"].as_str().unwrap().to_owned();
    let flipped = if ct.starts_with('A') {
        ct.replacen('A', "B", 1)
    } else {
        format!("A{}", &ct[1..])
    };
    f["crypto"]["ciphertext"] = flipped.into();
    std::fs::write(&path, f.to_string()).unwrap();
    assert_eq!(
        store.unlock(&info.id, "password-1").unwrap_err().code,
        ErrorCode::WalletError
    );

    // Garbage JSON is a typed error, not a panic; the listing leaves the file out and
    // names it (core/tests/wallet_store_bad_files.rs).
    std::fs::write(&path, "{not json").unwrap();
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.scan().unwrap().unreadable.len(), 1);
    std::fs::write(&path, r#"{"version":1}"#).unwrap();
    assert_eq!(
        store.unlock(&info.id, "password-1").unwrap_err().code,
        ErrorCode::WalletError
    );
}

#[cfg(unix)]
#[test]
fn permissions_and_atomic_writes() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, store) = store();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(store.dir()), 0o700);
    let (info, _) = store.create("w", "password-1", Network::Mainnet).unwrap();
    store.create("v", "password-1", Network::Testnet).unwrap();
    store.rename("v", "v2").unwrap();
    store.unlock("w", "password-1").unwrap();
    store.delete("v2").unwrap();
    let names = dir_names(&store);
    // Exactly the wallet and the registry: no temporary files left behind.
    assert_eq!(
        names,
        vec![
            format!("{}.wallet.json", info.id),
            "registry.json".to_owned()
        ]
    );
    for n in &names {
        assert_eq!(mode(&store.dir().join(n)), 0o600, "{n}");
    }
}

#[test]
fn default_dir_honours_env() {
    // The only test touching this variable, so no other test observes the change.
    let tmp = tempfile::tempdir().unwrap();
    std::env::set_var("SNAP2P_WALLET_DIR", tmp.path().join("custom"));
    let dir = WalletStore::default_dir().unwrap();
    std::env::remove_var("SNAP2P_WALLET_DIR");
    assert_eq!(dir, tmp.path().join("custom"));
    let home_default = WalletStore::default_dir().unwrap();
    assert!(
        home_default.ends_with(".snap2p/wallets"),
        "{}",
        home_default.display()
    );
}

#[test]
fn opens_wallets_written_by_the_reference_algorithm() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/wallet-ts-format.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // Default parameters: N = 2^17 as the reference.
    let store = WalletStore::open(tmp.path()).unwrap();
    assert_eq!(store.scrypt_params(), ScryptParams::DEFAULT);
    let wallets = v["wallets"].as_array().unwrap();
    for w in wallets {
        std::fs::write(
            tmp.path().join(w["file_name"].as_str().unwrap()),
            w["file_text"].as_str().unwrap(),
        )
        .unwrap();
    }
    std::fs::write(
        tmp.path().join("registry.json"),
        v["registry_text"].as_str().unwrap(),
    )
    .unwrap();

    let list = store.list().unwrap();
    assert_eq!(list.len(), wallets.len());
    for w in wallets {
        let id = w["id"].as_str().unwrap();
        let info = list.iter().find(|i| i.id == id).unwrap();
        assert_eq!(info.name, w["display_name"].as_str().unwrap());
        assert_eq!(info.address, w["address"].as_str().unwrap());
        assert_eq!(info.network.as_str(), w["network"].as_str().unwrap());
        let password = w["password"].as_str().unwrap();
        let wallet = store.unlock(id, password).unwrap();
        assert_eq!(wallet.mnemonic(), w["mnemonic"].as_str().unwrap());
        assert_eq!(wallet.principal().address(), w["address"].as_str().unwrap());
        let wrong = store.unlock(id, "not the password").unwrap_err();
        assert_eq!(wrong.code, ErrorCode::WalletError);
        assert!(wrong.message.contains("wrong password"));
    }
    // Renaming keeps the file readable by the reference: same keys, same crypto section.
    let first = wallets[0]["id"].as_str().unwrap();
    store.rename(first, "renamed").unwrap();
    let text = std::fs::read_to_string(tmp.path().join(format!("{first}.wallet.json"))).unwrap();
    let before: serde_json::Value =
        serde_json::from_str(wallets[0]["file_text"].as_str().unwrap()).unwrap();
    let after: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(after["crypto"], before["crypto"]);
    assert_eq!(after["displayName"], "renamed");
    store
        .unlock("renamed", wallets[0]["password"].as_str().unwrap())
        .unwrap();
}
