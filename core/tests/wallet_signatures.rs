//! `tests/vectors/wallet-signatures.json`: every shape a wallet's `stx_signMessage` may
//! answer is normalised to r ‖ s ‖ v (v 0..=3) or refused, as the file says; and the host
//! signer's halves (`unsigned` → `sign_request` → `attach_signature`) of attestations and
//! AliasCards take those shapes and keep the wire form.

use serde_json::Value;
use snap2p::identity::{normalize_wallet_signature, stacks_message_hash, ISSUED_NONCE_LEN};
use snap2p::{
    AliasCard, ErrorCode, LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation,
    Principal, SignRequest, SignatureForm,
};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/wallet-signatures.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_case_normalises_or_is_refused() {
    let v = vectors();
    let principal = Principal::parse(v["principal"].as_str().unwrap()).unwrap();
    let wallet = LocalWallet::from_mnemonic(
        v["mnemonic"].as_str().unwrap(),
        v["account"].as_u64().unwrap() as u32,
        Network::Mainnet,
    )
    .unwrap();
    assert_eq!(wallet.principal(), principal);
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let message = c["message"].as_str().unwrap();
        let sig = unhex(c["signature"].as_str().unwrap());
        let got = normalize_wallet_signature(&stacks_message_hash(message), &sig, &principal);
        match c.get("normalized") {
            Some(n) => {
                let want = unhex(n.as_str().unwrap());
                // The wire form is the key's own RFC 6979 signature (recomputed here).
                assert_eq!(want, wallet.sign_message(message).to_vec(), "{name}");
                assert_eq!(got.unwrap(), want, "{name}");
            }
            None => {
                assert_eq!(c["error"], "ERR_AUTH_INVALID", "{name}");
                assert_eq!(got.unwrap_err().code, ErrorCode::AuthInvalid, "{name}");
            }
        }
    }
}

/// r ‖ s ‖ (27 + v): what a bitcoin-style wallet answers.
fn header_27(sig: [u8; 65]) -> Vec<u8> {
    let mut s = sig.to_vec();
    s[64] += 27;
    s
}

fn message_of(req: SignRequest) -> String {
    match req {
        SignRequest::Message(m) => m,
        SignRequest::Digest(_) => panic!("a message-form request"),
    }
}

#[test]
fn host_signer_halves_take_wallet_shapes() {
    let v = vectors();
    let wallet =
        LocalWallet::from_mnemonic(v["mnemonic"].as_str().unwrap(), 0, Network::Mainnet).unwrap();
    let now = snap2p::unix_now();
    let key = NodeKey::generate();
    let mut att = NodeKeyAttestation::unsigned(
        wallet.principal(),
        SignatureForm::StacksMessage,
        key.public(),
        now,
        3600,
        vec![7; 32],
    )
    .unwrap();
    let sig = wallet.sign_message(&message_of(att.sign_request()));
    att.attach_signature(header_27(sig)).unwrap();
    assert_eq!(att.sig, sig.to_vec(), "kept in the wire form");
    NodeKeyAttestation::decode_and_verify(&att.encode(), now, NetworkFilter::ANY).unwrap();

    let mut card = AliasCard::unsigned(
        wallet.principal(),
        SignatureForm::StacksMessage,
        "  Alice ",
        "Alice 🦊",
        now,
        3600,
        vec![9; ISSUED_NONCE_LEN],
    )
    .unwrap();
    assert_eq!(card.alias, "alice");
    let sig = wallet.sign_message(&message_of(card.sign_request()));
    // v ‖ r ‖ s with a header, the older layout.
    let vrs = [&[sig[64] + 27][..], &sig[..64]].concat();
    card.attach_signature(vrs).unwrap();
    assert_eq!(card.sig, sig.to_vec());
    let back = AliasCard::decode_and_verify(&card.encode(), now, NetworkFilter::ANY).unwrap();
    assert_eq!(back.alias, "alice");
    // Someone else's signature is refused, and the card keeps no signature.
    let other =
        LocalWallet::from_mnemonic(v["mnemonic"].as_str().unwrap(), 1, Network::Mainnet).unwrap();
    let mut card2 = AliasCard::unsigned(
        wallet.principal(),
        SignatureForm::StacksMessage,
        "bob",
        "",
        now,
        3600,
        vec![1; ISSUED_NONCE_LEN],
    )
    .unwrap();
    let bad = other.sign_message(&message_of(card2.sign_request()));
    assert_eq!(
        card2.attach_signature(bad.to_vec()).unwrap_err().code,
        ErrorCode::AuthInvalid
    );
    assert!(card2.sig.is_empty());
    // A bad alias is the caller's error before any wallet is asked.
    assert_eq!(
        AliasCard::unsigned(
            wallet.principal(),
            SignatureForm::StacksMessage,
            "a\u{202E}b",
            "",
            now,
            3600,
            vec![1; ISSUED_NONCE_LEN],
        )
        .unwrap_err()
        .code,
        ErrorCode::InvalidArgument
    );
}
