//! Recomputes every value in `tests/vectors/identity.json` from its inputs.
//!
//! The vectors are also checked against stacks.js by `ci/oracle/verify.mjs`; this test
//! makes any drift of the Rust implementation from them fail `cargo test`.

use serde_json::Value as Json;
use snap2p::identity::{
    c32, ed25519_to_x25519_public, normalize_alias, stacks_message_hash, AliasCard, LocalWallet,
    Network, NetworkFilter, NodeKey, NodeKeyAttestation, Principal, SignatureForm,
};
use snap2p::testing::block_on;
use snap2p::Result;

fn vectors() -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/identity.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(v: &Json) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected string, got {v}"))
}

fn i(v: &Json) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("expected integer, got {v}"))
}

fn network(v: &Json) -> Network {
    s(v).parse().unwrap()
}

fn form(v: &Json) -> SignatureForm {
    match s(v) {
        "digest" => SignatureForm::Digest,
        "stacks_message" => SignatureForm::StacksMessage,
        other => panic!("unknown form {other}"),
    }
}

fn filter(v: &Json) -> NetworkFilter {
    match s(v) {
        "any" => NetworkFilter::ANY,
        "mainnet" => NetworkFilter::MAINNET_ONLY,
        "testnet" => NetworkFilter::TESTNET_ONLY,
        other => panic!("unknown network filter {other}"),
    }
}

fn unhex(v: &Json) -> Vec<u8> {
    hex::decode(s(v)).unwrap()
}

fn wallet_for(v: &Json) -> LocalWallet {
    LocalWallet::from_mnemonic(
        s(&v["mnemonic"]),
        i(&v["account"]) as u32,
        network(&v["network"]),
    )
    .unwrap()
    .with_form(form(&v["form"]))
}

#[test]
fn addresses_and_c32() {
    let v = vectors();
    let addrs = v["addresses"].as_array().unwrap();
    assert!(addrs.len() >= 4);
    for a in addrs {
        let version = i(&a["version"]) as u8;
        let hash: [u8; 20] = unhex(&a["hash160"]).try_into().unwrap();
        let addr = s(&a["address"]);
        assert_eq!(c32::c32_address(version, &hash), addr);
        assert_eq!(
            c32::c32_address_decode(addr).unwrap(),
            (version, hash.to_vec())
        );
        let p = Principal::parse(&format!("stacks:{addr}")).unwrap();
        assert_eq!(
            (p.version(), p.hash160(), p.address()),
            (version, hash, addr.to_owned())
        );
        assert_eq!(p.is_single_sig(), matches!(version, 22 | 26));
        assert_eq!(
            p.network(),
            if matches!(version, 22 | 20) {
                Network::Mainnet
            } else {
                Network::Testnet
            }
        );
    }
    // The examples from stacks-facts.md are among them.
    let all: Vec<&str> = addrs.iter().map(|a| s(&a["address"])).collect();
    assert!(all.contains(&"SP000000000000000000002Q6VF78"));
    assert!(all.contains(&"ST000000000000000000002AMW42H"));
    for c in v["c32_encode"].as_array().unwrap() {
        let data = unhex(&c["hex"]);
        assert_eq!(c32::c32_encode(&data), s(&c["c32"]));
        assert_eq!(c32::c32_decode(s(&c["c32"])).unwrap(), data);
    }
}

#[test]
fn mnemonics_derive_stacks_accounts() {
    let v = vectors();
    let ms = v["mnemonics"].as_array().unwrap();
    let word_counts: Vec<i64> = ms.iter().map(|m| i(&m["words"])).collect();
    assert!(word_counts.contains(&12) && word_counts.contains(&24));
    for m in ms {
        for a in m["accounts"].as_array().unwrap() {
            let idx = i(&a["index"]) as u32;
            let main =
                LocalWallet::from_mnemonic(s(&m["mnemonic"]), idx, Network::Mainnet).unwrap();
            let test =
                LocalWallet::from_mnemonic(s(&m["mnemonic"]), idx, Network::Testnet).unwrap();
            assert_eq!(main.private_key_hex(), s(&a["private_key"]));
            assert_eq!(hex::encode(main.public_key()), s(&a["public_key"]));
            assert_eq!(main.principal().address(), s(&a["mainnet"]));
            assert_eq!(test.principal().address(), s(&a["testnet"]));
            assert_eq!(
                Principal::from_public_key(&main.public_key(), Network::Testnet),
                test.principal()
            );
        }
    }
}

#[test]
fn message_hashes() {
    for m in vectors()["message_hashes"].as_array().unwrap() {
        assert_eq!(
            hex::encode(stacks_message_hash(s(&m["message"]))),
            s(&m["hash"])
        );
    }
}

#[test]
fn node_keys() {
    for k in vectors()["node_keys"].as_array().unwrap() {
        let nk = NodeKey::from_seed(unhex(&k["seed"]).try_into().unwrap());
        assert_eq!(hex::encode(nk.public()), s(&k["ed25519_public"]));
        assert_eq!(hex::encode(nk.x25519_secret()), s(&k["x25519_secret"]));
        assert_eq!(hex::encode(nk.x25519_public()), s(&k["x25519_public"]));
        assert_eq!(
            ed25519_to_x25519_public(&nk.public())
                .map(hex::encode)
                .as_deref(),
            Some(s(&k["x25519_public"]))
        );
    }
}

#[test]
fn attestations_recompute() {
    for v in vectors()["attestations"].as_array().unwrap() {
        let w = wallet_for(v);
        let nk = NodeKey::from_seed(unhex(&v["node_seed"]).try_into().unwrap());
        assert_eq!(hex::encode(nk.public()), s(&v["node_pubkey"]));
        let issued = i(&v["issued_at"]);
        let att = block_on(NodeKeyAttestation::issue_with_nonce(
            &w,
            nk.public(),
            issued,
            i(&v["expires_at"]) - issued,
            unhex(&v["nonce"]),
        ))
        .unwrap();
        let name = s(&v["name"]);
        assert_eq!(att.form, form(&v["form"]), "{name}");
        assert_eq!(att.principal.to_string(), s(&v["principal"]), "{name}");
        assert_eq!(
            hex::encode(att.signing_bytes()),
            s(&v["signing_bytes"]),
            "{name}"
        );
        assert_eq!(att.message_text(), s(&v["message_text"]), "{name}");
        assert_eq!(
            hex::encode(att.signed_digest()),
            s(&v["signed_hash"]),
            "{name}"
        );
        assert_eq!(hex::encode(&att.sig), s(&v["sig"]), "{name}");
        assert_eq!(hex::encode(att.encode()), s(&v["wire"]), "{name}");
        let decoded = NodeKeyAttestation::decode(&unhex(&v["wire"])).unwrap();
        assert_eq!(decoded, att, "{name}");
        decoded
            .verify(i(&v["verify_now"]), NetworkFilter::ANY)
            .unwrap();
        // Digest form is the TS reference's 7-entry map (0xa7); message form adds `sf`.
        let expected_entries = if att.form == SignatureForm::Digest {
            0xa7
        } else {
            0xa8
        };
        assert_eq!(att.signing_bytes()[0], expected_entries, "{name}");
    }
}

#[test]
fn alias_cards_recompute() {
    for v in vectors()["alias_cards"].as_array().unwrap() {
        let w = wallet_for(v);
        let issued = i(&v["issued_at"]);
        let card = block_on(AliasCard::issue_with_nonce(
            &w,
            s(&v["alias_input"]),
            s(&v["display_name"]),
            issued,
            i(&v["expires_at"]) - issued,
            unhex(&v["nonce"]),
        ))
        .unwrap();
        let name = s(&v["name"]);
        assert_eq!(card.alias, s(&v["alias"]), "{name}");
        assert_eq!(card.principal.to_string(), s(&v["principal"]), "{name}");
        assert_eq!(
            hex::encode(card.signing_bytes()),
            s(&v["signing_bytes"]),
            "{name}"
        );
        assert_eq!(card.message_text(), s(&v["message_text"]), "{name}");
        assert_eq!(
            hex::encode(card.signed_digest()),
            s(&v["signed_hash"]),
            "{name}"
        );
        assert_eq!(hex::encode(&card.sig), s(&v["sig"]), "{name}");
        assert_eq!(hex::encode(card.encode()), s(&v["wire"]), "{name}");
        let decoded = AliasCard::decode(&unhex(&v["wire"])).unwrap();
        assert_eq!(decoded, card, "{name}");
        decoded
            .verify(i(&v["verify_now"]), NetworkFilter::ANY)
            .unwrap();
    }
}

#[test]
fn alias_normalization() {
    for c in vectors()["alias_normalization"].as_array().unwrap() {
        let got = normalize_alias(s(&c["input"]));
        match (&c["output"], &c["error"]) {
            (Json::String(out), _) => assert_eq!(got.unwrap(), *out, "{c}"),
            (_, Json::String(code)) => assert_eq!(got.unwrap_err().code.name(), code, "{c}"),
            _ => panic!("bad case {c}"),
        }
    }
}

fn outcome(r: Result<()>) -> Option<String> {
    r.err().map(|e| e.code.name().to_owned())
}

#[test]
fn negative_cases() {
    let v = vectors();
    let cases = v["negative"].as_array().unwrap();
    let mut names = Vec::new();
    for n in cases {
        let input = s(&n["input"]);
        let now = i(&n["now"]);
        let got = match s(&n["type"]) {
            "principal" => outcome(Principal::parse(input).map(|_| ())),
            "mnemonic" => {
                outcome(LocalWallet::from_mnemonic(input, 0, Network::Mainnet).map(|_| ()))
            }
            "attestation" => outcome(
                NodeKeyAttestation::decode_and_verify(
                    &hex::decode(input).unwrap(),
                    now,
                    filter(&n["networks"]),
                )
                .map(|_| ()),
            ),
            "alias_card" => outcome(
                AliasCard::decode_and_verify(
                    &hex::decode(input).unwrap(),
                    now,
                    filter(&n["networks"]),
                )
                .map(|_| ()),
            ),
            other => panic!("unknown negative type {other}"),
        };
        let expected = n["error"].as_str().map(str::to_owned);
        assert_eq!(got, expected, "case {} {}", s(&n["type"]), s(&n["name"]));
        names.push(s(&n["name"]).to_owned());
    }
    // The cases the format promises to cover.
    for required in [
        "bad-checksum",
        "high-s",
        "expired",
        "wrong-domain",
        "nonce-15-bytes",
        "nonce-33-bytes",
        "mismatched-principal",
        "truncated",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "missing negative case {required}"
        );
    }
}
