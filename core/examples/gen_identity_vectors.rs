//! Writes `core/tests/vectors/identity.json` (test-only tool).
//!
//!     cargo run -p snap2p --example gen_identity_vectors [-- <output path>]
//!
//! Every input is fixed (mnemonics, node seeds, nonces, times) and every signature is
//! RFC 6979, so the output is identical on every run. `core/tests/identity_vectors.rs`
//! recomputes everything from the inputs and `ci/oracle/verify.mjs` checks it against
//! stacks.js; regenerate only on a deliberate format change.

use k256::elliptic_curve::ops::Neg;
use k256::elliptic_curve::PrimeField;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use snap2p::identity::{
    c32, ed25519_to_x25519_public, normalize_alias, stacks_message_hash, AliasCard, LocalWallet,
    Network, NetworkFilter, NodeKey, NodeKeyAttestation, Principal, SignatureForm,
};
use snap2p::unstable::wire::cbor::{self, Value};

const ISSUED_AT: i64 = 1_700_000_000;
const TTL: i64 = 86_400;
const VERIFY_NOW: i64 = ISSUED_AT + 60;
const MNEMONIC_12: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
/// RFC 8032 §7.1 test 1 secret key: its public key is a published constant.
const NODE_SEED_A: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

fn sha(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}

fn mnemonic_24() -> String {
    bip39::Mnemonic::from_entropy(&sha("snap2p identity vectors: 24-word mnemonic"))
        .unwrap()
        .to_string()
}

fn node_seed_b() -> [u8; 32] {
    sha("snap2p identity vectors: node seed B")
}

fn nonce(len: usize) -> Vec<u8> {
    (0..len as u8).collect()
}

fn net_name(n: Network) -> &'static str {
    n.as_str()
}

fn form_name(f: SignatureForm) -> &'static str {
    match f {
        SignatureForm::Digest => "digest",
        SignatureForm::StacksMessage => "stacks_message",
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn wallet(m: &str, account: u32, net: Network, form: SignatureForm) -> LocalWallet {
    LocalWallet::from_mnemonic(m, account, net)
        .unwrap()
        .with_form(form)
}

/// s → n − s and the recovery id's parity flipped: the same key recovers, only the low-S
/// rule can reject it.
fn high_s(sig: &[u8]) -> Vec<u8> {
    let s_bytes: [u8; 32] = sig[32..64].try_into().unwrap();
    let s = k256::Scalar::from_repr(s_bytes.into()).unwrap();
    let mut out = sig.to_vec();
    out[32..64].copy_from_slice(&s.neg().to_repr());
    out[64] ^= 1;
    out
}

fn int(n: i64) -> Value<'static> {
    if n >= 0 {
        Value::Uint(n as u64)
    } else {
        Value::Nint((-1 - n) as u64)
    }
}

/// A hand-built attestation map (for malformed negatives), signed over SHA-256 of itself.
fn manual_attestation(w: &LocalWallet, entries: Vec<(&str, Value<'_>)>) -> Vec<u8> {
    let unsigned = cbor::to_vec(&Value::Map(entries.clone()));
    let sig = w.sign_digest(&Sha256::digest(&unsigned).into());
    let mut with_sig = entries;
    with_sig.push(("sig", Value::Bytes(&sig)));
    cbor::to_vec(&Value::Map(with_sig))
}

fn attestation_vector(
    name: &str,
    m: &str,
    account: u32,
    net: Network,
    form: SignatureForm,
    seed: [u8; 32],
    nonce_len: usize,
) -> (Json, NodeKeyAttestation) {
    let w = wallet(m, account, net, form);
    let nk = NodeKey::from_seed(seed);
    let att = block_on(NodeKeyAttestation::issue_with_nonce(
        &w,
        nk.public(),
        ISSUED_AT,
        TTL,
        nonce(nonce_len),
    ))
    .unwrap();
    att.verify(VERIFY_NOW, NetworkFilter::ANY).unwrap();
    let j = json!({
        "name": name,
        "mnemonic": m,
        "account": account,
        "network": net_name(net),
        "form": form_name(form),
        "node_seed": hex::encode(seed),
        "node_pubkey": hex::encode(nk.public()),
        "issued_at": att.issued_at,
        "expires_at": att.expires_at,
        "nonce": hex::encode(&att.nonce),
        "principal": att.principal.to_string(),
        "signing_bytes": hex::encode(att.signing_bytes()),
        "message_text": att.message_text(),
        "signed_hash": hex::encode(att.signed_digest()),
        "sig": hex::encode(&att.sig),
        "wire": hex::encode(att.encode()),
        "verify_now": VERIFY_NOW,
    });
    (j, att)
}

#[allow(clippy::too_many_arguments)]
fn alias_vector(
    name: &str,
    m: &str,
    account: u32,
    net: Network,
    form: SignatureForm,
    alias: &str,
    display_name: &str,
    nonce_len: usize,
) -> (Json, AliasCard) {
    let w = wallet(m, account, net, form);
    let card = block_on(AliasCard::issue_with_nonce(
        &w,
        alias,
        display_name,
        ISSUED_AT,
        AliasCard::DEFAULT_TTL_SECS,
        nonce(nonce_len),
    ))
    .unwrap();
    card.verify(VERIFY_NOW, NetworkFilter::ANY).unwrap();
    let j = json!({
        "name": name,
        "mnemonic": m,
        "account": account,
        "network": net_name(net),
        "form": form_name(form),
        "alias_input": alias,
        "alias": card.alias,
        "display_name": card.display_name,
        "issued_at": card.issued_at,
        "expires_at": card.expires_at,
        "nonce": hex::encode(&card.nonce),
        "principal": card.principal.to_string(),
        "signing_bytes": hex::encode(card.signing_bytes()),
        "message_text": card.message_text(),
        "signed_hash": hex::encode(card.signed_digest()),
        "sig": hex::encode(&card.sig),
        "wire": hex::encode(card.encode()),
        "verify_now": VERIFY_NOW,
    });
    (j, card)
}

fn negative(
    kind: &str,
    name: &str,
    input: &str,
    now: i64,
    networks: &str,
    error: Option<&str>,
) -> Json {
    json!({
        "name": name,
        "type": kind,
        "input": input,
        "now": now,
        "networks": networks,
        "error": error,
    })
}

fn main() {
    let out_path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "core/tests/vectors/identity.json".to_owned());
    let m24 = mnemonic_24();
    let seed_a: [u8; 32] = hex::decode(NODE_SEED_A).unwrap().try_into().unwrap();
    let seed_b = node_seed_b();

    // c32check addresses: the zero hash on every version, plus derived hashes.
    let mut addresses = Vec::new();
    let hashes = [
        [0u8; 20],
        Principal::from_public_key(
            &wallet(&m24, 0, Network::Mainnet, SignatureForm::Digest).public_key(),
            Network::Mainnet,
        )
        .hash160(),
        {
            let mut h = [0u8; 20];
            h[2] = 1;
            h
        },
        [0xff; 20],
    ];
    for h in hashes {
        for version in [22u8, 26, 20, 21] {
            addresses.push(json!({
                "version": version,
                "hash160": hex::encode(h),
                "address": c32::c32_address(version, &h),
            }));
        }
    }
    let c32_raw: Vec<Json> = [
        "",
        "00",
        "0000",
        "01",
        "000001",
        "ff",
        "0102030405",
        "00ff00ff",
        "ffffffffffffffffffffffffffffffffffffffff",
    ]
    .iter()
    .map(|h| json!({ "hex": h, "c32": c32::c32_encode(&hex::decode(h).unwrap()) }))
    .collect();

    let mut mnemonics = Vec::new();
    for m in [m24.as_str(), MNEMONIC_12] {
        let mut accounts = Vec::new();
        for account in [0u32, 1] {
            let w = wallet(m, account, Network::Mainnet, SignatureForm::Digest);
            let t = wallet(m, account, Network::Testnet, SignatureForm::Digest);
            accounts.push(json!({
                "index": account,
                "private_key": w.private_key_hex(),
                "public_key": hex::encode(w.public_key()),
                "mainnet": w.principal().address(),
                "testnet": t.principal().address(),
            }));
        }
        mnemonics
            .push(json!({ "mnemonic": m, "words": m.split(' ').count(), "accounts": accounts }));
    }

    let messages: Vec<Json> = [
        String::new(),
        "hello world".to_owned(),
        "Stacks 🦊 ñ".to_owned(),
        "a".repeat(252),
        "a".repeat(253),
        "line one\nline two".to_owned(),
    ]
    .iter()
    .map(|msg| json!({ "message": msg, "hash": hex::encode(stacks_message_hash(msg)) }))
    .collect();

    let node_keys: Vec<Json> = [seed_a, seed_b, [0u8; 32]]
        .iter()
        .map(|s| {
            let k = NodeKey::from_seed(*s);
            assert_eq!(
                ed25519_to_x25519_public(&k.public()),
                Some(k.x25519_public())
            );
            json!({
                "seed": hex::encode(s),
                "ed25519_public": hex::encode(k.public()),
                "x25519_secret": hex::encode(k.x25519_secret()),
                "x25519_public": hex::encode(k.x25519_public()),
            })
        })
        .collect();

    let (a1, att_digest) = attestation_vector(
        "digest-24w-acct0-mainnet",
        &m24,
        0,
        Network::Mainnet,
        SignatureForm::Digest,
        seed_a,
        32,
    );
    let (a2, att_msg) = attestation_vector(
        "message-24w-acct0-mainnet",
        &m24,
        0,
        Network::Mainnet,
        SignatureForm::StacksMessage,
        seed_a,
        32,
    );
    let (a3, att_testnet) = attestation_vector(
        "digest-12w-acct1-testnet-nonce16",
        MNEMONIC_12,
        1,
        Network::Testnet,
        SignatureForm::Digest,
        seed_b,
        16,
    );
    let (a4, _) = attestation_vector(
        "message-12w-acct0-testnet",
        MNEMONIC_12,
        0,
        Network::Testnet,
        SignatureForm::StacksMessage,
        seed_b,
        24,
    );
    let (c1, card_digest) = alias_vector(
        "digest-24w-mainnet",
        &m24,
        0,
        Network::Mainnet,
        SignatureForm::Digest,
        "  Alice ",
        "Alice 🚀 Liddell",
        32,
    );
    let (c2, card_msg) = alias_vector(
        "message-12w-testnet",
        MNEMONIC_12,
        0,
        Network::Testnet,
        SignatureForm::StacksMessage,
        "ＢＯＢ",
        "Bob Example",
        16,
    );

    let alias_inputs = [
        "Alice",
        "  Bob  ",
        "ＡＬＩＣＥ",
        "Straße",
        "ΟΔΥΣΣΕΥΣ",
        "ﬁsh",
        "Ⅻ",
        "e\u{301}clair",
        "😀 Rocket",
        "\u{a0}alice\u{3000}",
        "İstanbul",
        "",
        "   ",
        "a\u{7}b",
        "a\u{202e}b",
        "a\u{2028}b",
        "a\u{feff}b",
        "\u{feff}alice",
        "alice\n",
        "\u{85}alice",
        &"a".repeat(64),
        &"a".repeat(65),
        &"é".repeat(33),
    ];
    let alias_cases: Vec<Json> = alias_inputs
        .iter()
        .map(|input| match normalize_alias(input) {
            Ok(out) => json!({ "input": input, "output": out }),
            Err(e) => json!({ "input": input, "error": e.code.name() }),
        })
        .collect();

    // Negative (and boundary) cases: decode then verify; `error` null means valid.
    let w24 = wallet(&m24, 0, Network::Mainnet, SignatureForm::Digest);
    let w24_1 = wallet(&m24, 1, Network::Mainnet, SignatureForm::Digest);
    let wire = att_digest.encode();
    fn hx(b: &[u8]) -> String {
        hex::encode(b)
    }
    let exp = att_digest.expires_at;
    let ts = att_digest.issued_at;
    let mut negatives = vec![
        negative("principal", "bad-checksum", "stacks:SP000000000000000000002Q6VF79", 0, "any", Some("ERR_INVALID_ARGUMENT")),
        negative("principal", "bad-version", &format!("stacks:{}", c32::c32_address(1, &[0; 20])), 0, "any", Some("ERR_INVALID_ARGUMENT")),
        negative("principal", "lowercase", "stacks:sp000000000000000000002q6vf78", 0, "any", Some("ERR_INVALID_ARGUMENT")),
        negative("principal", "missing-prefix", "SP000000000000000000002Q6VF78", 0, "any", Some("ERR_INVALID_ARGUMENT")),
        negative("principal", "extra-leading-zero", "stacks:SP0000000000000000000002Q6VF78", 0, "any", Some("ERR_INVALID_ARGUMENT")),
        negative("principal", "short-hash", &format!("stacks:{}", c32::c32_address(22, &[1; 19])), 0, "any", Some("ERR_INVALID_ARGUMENT")),
        negative("mnemonic", "bad-checksum", "abandon ".repeat(12).trim_end(), 0, "any", Some("ERR_INVALID_ARGUMENT")),
        negative("mnemonic", "unknown-word", &format!("{} snap2p", "abandon ".repeat(11).trim_end()), 0, "any", Some("ERR_INVALID_ARGUMENT")),
        negative("mnemonic", "15-words", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon address", 0, "any", Some("ERR_INVALID_ARGUMENT")),
        negative("attestation", "valid", &hx(&wire), VERIFY_NOW, "any", None),
        negative("attestation", "expired", &hx(&wire), exp + 301, "any", Some("ERR_AUTH_EXPIRED")),
        negative("attestation", "expired-at-skew-boundary", &hx(&wire), exp + 300, "any", Some("ERR_AUTH_EXPIRED")),
        negative("attestation", "expired-within-skew", &hx(&wire), exp + 299, "any", None),
        negative("attestation", "issued-in-future", &hx(&wire), ts - 301, "any", Some("ERR_AUTH_EXPIRED")),
        negative("attestation", "issued-in-future-within-skew", &hx(&wire), ts - 300, "any", None),
        negative("attestation", "network-not-accepted", &hx(&wire), VERIFY_NOW, "testnet", Some("ERR_AUTH_INVALID")),
        negative("attestation", "testnet-accepted", &hx(&att_testnet.encode()), VERIFY_NOW, "testnet", None),
        negative("attestation", "truncated", &hx(&wire[..wire.len() - 1]), VERIFY_NOW, "any", Some("ERR_AUTH_INVALID")),
        negative("attestation", "trailing-byte", &(hx(&wire) + "00"), VERIFY_NOW, "any", Some("ERR_AUTH_INVALID")),
        negative("attestation", "empty", "", VERIFY_NOW, "any", Some("ERR_AUTH_INVALID")),
        negative("attestation", "not-a-map", "820102", VERIFY_NOW, "any", Some("ERR_AUTH_INVALID")),
        negative("attestation", "alias-card-bytes", &hx(&card_digest.encode()), VERIFY_NOW, "any", Some("ERR_AUTH_INVALID")),
    ];
    {
        let mut a = att_digest.clone();
        a.sig = high_s(&a.sig);
        negatives.push(negative(
            "attestation",
            "high-s",
            &hx(&a.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
        let mut a = att_digest.clone();
        a.sig[64] ^= 1;
        negatives.push(negative(
            "attestation",
            "wrong-recovery-id",
            &hx(&a.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
        for len in [15usize, 33] {
            let mut a = att_digest.clone();
            a.nonce = nonce(len);
            block_on(a.sign(&w24)).unwrap();
            negatives.push(negative(
                "attestation",
                &format!("nonce-{len}-bytes"),
                &hx(&a.encode()),
                VERIFY_NOW,
                "any",
                Some("ERR_AUTH_INVALID"),
            ));
        }
        // Signed by account 1 but claiming account 0's principal.
        let mut a = att_digest.clone();
        a.sig = w24_1.sign_digest(&a.signed_digest()).to_vec();
        negatives.push(negative(
            "attestation",
            "mismatched-principal",
            &hx(&a.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
        let mut a = att_digest.clone();
        a.node_pubkey = NodeKey::from_seed(seed_b).public();
        negatives.push(negative(
            "attestation",
            "tampered-node-key",
            &hx(&a.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
        // A Digest-form signature relabelled as StacksMessage.
        let mut a = att_digest.clone();
        a.form = SignatureForm::StacksMessage;
        negatives.push(negative(
            "attestation",
            "form-relabelled",
            &hx(&a.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
        let mut a = att_msg.clone();
        a.form = SignatureForm::Digest;
        negatives.push(negative(
            "attestation",
            "form-relabelled-to-digest",
            &hx(&a.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
        let mut a = att_digest.clone();
        a.v = 2;
        block_on(a.sign(&w24)).unwrap();
        negatives.push(negative(
            "attestation",
            "version-2",
            &hx(&a.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
        let mut a = att_digest.clone();
        a.expires_at = a.issued_at;
        block_on(a.sign(&w24)).unwrap();
        negatives.push(negative(
            "attestation",
            "expires-not-after-issued",
            &hx(&a.encode()),
            a.issued_at,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
    }
    // Hand-built maps. Leaking is fine in a one-shot tool and keeps the values 'static.
    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }
    let p24 = leak(w24.principal().to_string());
    let npk = leak(hex::encode(att_digest.node_pubkey));
    let nonce32: &'static [u8] = Box::leak(nonce(32).into_boxed_slice());
    let map =
        |domain: &'static str, npk: &'static str, extra: Vec<(&'static str, Value<'static>)>| {
            let mut e: Vec<(&'static str, Value<'static>)> = vec![
                ("domain", Value::Text(domain)),
                ("exp", int(exp)),
                ("nonce", Value::Bytes(nonce32)),
                ("npk", Value::Text(npk)),
                ("p", Value::Text(p24)),
                ("ts", int(ts)),
                ("v", Value::Uint(1)),
            ];
            for (k, v) in extra {
                e.retain(|(ek, _)| *ek != k);
                e.push((k, v));
            }
            e
        };
    let good = |extra| map(NodeKeyAttestation::DOMAIN, npk, extra);
    negatives.push(negative(
        "attestation",
        "wrong-domain",
        &hx(&manual_attestation(
            &w24,
            map("snap2p-nodekey-attestation-v2", npk, vec![]),
        )),
        VERIFY_NOW,
        "any",
        Some("ERR_AUTH_INVALID"),
    ));
    negatives.push(negative(
        "attestation",
        "uppercase-npk",
        &hx(&manual_attestation(
            &w24,
            map(NodeKeyAttestation::DOMAIN, leak(npk.to_uppercase()), vec![]),
        )),
        VERIFY_NOW,
        "any",
        Some("ERR_AUTH_INVALID"),
    ));
    negatives.push(negative(
        "attestation",
        "reference-map-valid",
        &hx(&manual_attestation(&w24, good(vec![]))),
        VERIFY_NOW,
        "any",
        None,
    ));
    {
        // An extra key outside the signature is ignored by decoding and verification.
        let entries = good(vec![]);
        let unsigned = cbor::to_vec(&Value::Map(entries.clone()));
        let sig = w24.sign_digest(&Sha256::digest(&unsigned).into());
        let mut with = entries;
        with.push(("sig", Value::Bytes(&sig)));
        with.push(("zz-future", Value::Text("ignored")));
        negatives.push(negative(
            "attestation",
            "unknown-key-ignored",
            &hx(&cbor::to_vec(&Value::Map(with))),
            VERIFY_NOW,
            "any",
            None,
        ));
    }
    negatives.push(negative(
        "attestation",
        "sf-2",
        &hx(&manual_attestation(
            &w24,
            good(vec![("sf", Value::Uint(2))]),
        )),
        VERIFY_NOW,
        "any",
        Some("ERR_AUTH_INVALID"),
    ));
    negatives.push(negative(
        "attestation",
        "sf-0-explicit",
        &hx(&manual_attestation(
            &w24,
            good(vec![("sf", Value::Uint(0))]),
        )),
        VERIFY_NOW,
        "any",
        Some("ERR_AUTH_INVALID"),
    ));
    negatives.push(negative(
        "attestation",
        "ts-as-text",
        &hx(&manual_attestation(
            &w24,
            good(vec![("ts", Value::Text("1700000000"))]),
        )),
        VERIFY_NOW,
        "any",
        Some("ERR_AUTH_INVALID"),
    ));
    negatives.push(negative(
        "attestation",
        "missing-nonce",
        &hx(&{
            let mut e = good(vec![]);
            e.retain(|(k, _)| *k != "nonce");
            manual_attestation(&w24, e)
        }),
        VERIFY_NOW,
        "any",
        Some("ERR_AUTH_INVALID"),
    ));
    {
        let multisig = Principal::new(20, w24.principal().hash160())
            .unwrap()
            .to_string();
        let e = good(vec![("p", Value::Text(leak(multisig)))]);
        negatives.push(negative(
            "attestation",
            "multisig-principal",
            &hx(&manual_attestation(&w24, e)),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
    }
    {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let e = good(vec![("npk", Value::Text(leak(hex::encode(identity))))]);
        negatives.push(negative(
            "attestation",
            "small-order-node-key",
            &hx(&manual_attestation(&w24, e)),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
    }
    // Alias cards.
    let cwire = card_digest.encode();
    negatives.push(negative(
        "alias_card",
        "valid",
        &hx(&cwire),
        VERIFY_NOW,
        "any",
        None,
    ));
    negatives.push(negative(
        "alias_card",
        "valid-message-form",
        &hx(&card_msg.encode()),
        VERIFY_NOW,
        "any",
        None,
    ));
    negatives.push(negative(
        "alias_card",
        "expired",
        &hx(&cwire),
        card_digest.expires_at + 301,
        "any",
        Some("ERR_AUTH_EXPIRED"),
    ));
    negatives.push(negative(
        "alias_card",
        "truncated",
        &hx(&cwire[..10]),
        VERIFY_NOW,
        "any",
        Some("ERR_AUTH_INVALID"),
    ));
    negatives.push(negative(
        "alias_card",
        "attestation-bytes",
        &hx(&wire),
        VERIFY_NOW,
        "any",
        Some("ERR_AUTH_INVALID"),
    ));
    {
        let mut c = card_digest.clone();
        c.alias = "Alice".to_owned();
        block_on(c.sign(&w24)).unwrap();
        negatives.push(negative(
            "alias_card",
            "alias-not-normalised",
            &hx(&c.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
        let mut c = card_digest.clone();
        c.display_name = "Alice\nprincipal: stacks:SP000000000000000000002Q6VF78".to_owned();
        block_on(c.sign(&w24)).unwrap();
        negatives.push(negative(
            "alias_card",
            "newline-in-display-name",
            &hx(&c.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
        let mut c = card_digest.clone();
        c.sig = high_s(&c.sig);
        negatives.push(negative(
            "alias_card",
            "high-s",
            &hx(&c.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
        let mut c = card_digest.clone();
        c.display_name.push('!');
        negatives.push(negative(
            "alias_card",
            "tampered-display-name",
            &hx(&c.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
        let mut c = card_digest.clone();
        c.nonce = nonce(15);
        block_on(c.sign(&w24)).unwrap();
        negatives.push(negative(
            "alias_card",
            "nonce-15-bytes",
            &hx(&c.encode()),
            VERIFY_NOW,
            "any",
            Some("ERR_AUTH_INVALID"),
        ));
    }

    let doc = json!({
        "description": "snap2p identity test vectors; see docs/PROTOCOL.md (Part II) (section Test vectors) for every key. Generated by `cargo run -p snap2p --example gen_identity_vectors`; checked by core/tests/identity_vectors.rs and ci/oracle/verify.mjs.",
        "format_version": 1,
        "addresses": addresses,
        "c32_encode": c32_raw,
        "mnemonics": mnemonics,
        "message_hashes": messages,
        "node_keys": node_keys,
        "attestations": [a1, a2, a3, a4],
        "alias_cards": [c1, c2],
        "alias_normalization": alias_cases,
        "negative": negatives,
    });
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    std::fs::write(&out_path, text).unwrap();
    eprintln!("wrote {out_path}");
}
