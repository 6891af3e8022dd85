//! Writes `core/tests/vectors/adverts.json` (test-only tool).
//!
//!     cargo run -p snap2p --example gen_advert_vectors [-- <output path>]
//!
//! Every input is fixed (the mnemonic, node key seeds, nonces, times) and every signature
//! is deterministic (RFC 6979 for the wallet, RFC 8032 for the node key), so the output is
//! identical on every run. `core/tests/discovery_adverts.rs` recomputes the valid adverts
//! from their inputs and checks every negative case's error and reason; regenerate only on
//! a deliberate format change (PROTOCOL.md §34).

use serde_json::{json, Value as Json};
use snap2p::discovery::{AdvertCache, AdvertReject, EndpointAdvert};
use snap2p::identity::{
    LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation, SignatureForm,
};
use snap2p::Locator;

const ISSUED_AT: i64 = 1_700_000_000;
/// The 24-word mnemonic of identity.json (accounts 0 and 1).
const MNEMONIC: &str = "seminar surround scheme bottom pizza champion fatal side outer render harsh awake wink lyrics panel flat journey grit target scrap history dove emerge custom";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn wallet(account: u32, form: SignatureForm) -> LocalWallet {
    LocalWallet::from_mnemonic(MNEMONIC, account, Network::Mainnet)
        .unwrap()
        .with_form(form)
}

fn attestation(w: &LocalWallet, nk: &NodeKey, ttl: i64, nonce_seed: u8) -> Vec<u8> {
    let nonce: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(11).wrapping_add(nonce_seed))
        .collect();
    block_on(NodeKeyAttestation::issue_with_nonce(
        w,
        nk.public(),
        ISSUED_AT,
        ttl,
        nonce,
    ))
    .unwrap()
    .encode()
}

fn locs(list: &[&str]) -> Vec<Locator> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn form_name(f: SignatureForm) -> &'static str {
    match f {
        SignatureForm::Digest => "digest",
        SignatureForm::StacksMessage => "stacks_message",
    }
}

#[allow(clippy::too_many_arguments)]
fn valid(
    name: &str,
    account: u32,
    form: SignatureForm,
    node_seed: u8,
    locators: &[&str],
    seq: u64,
    issued_at: i64,
    ttl: i64,
) -> (Json, EndpointAdvert) {
    let w = wallet(account, form);
    let nk = NodeKey::from_seed([node_seed; 32]);
    let att = attestation(&w, &nk, 86_400, node_seed);
    let ad = EndpointAdvert::issue(&nk, &att, &locs(locators), seq, issued_at, ttl).unwrap();
    let verify_at = issued_at + 60;
    ad.verify(
        verify_at,
        NetworkFilter::ANY,
        Some(&nk.public()),
        Some(&w.principal()),
    )
    .unwrap();
    let j = json!({
        "name": name,
        "wallet_account": account,
        "form": form_name(form),
        "principal": w.principal().to_string(),
        "node_seed": hex::encode([node_seed; 32]),
        "node_key": hex::encode(nk.public()),
        "attestation": hex::encode(&att),
        "locators": locators,
        "seq": seq,
        "issued_at": issued_at,
        "ttl_secs": ttl,
        "expires_at": ad.expires_at,
        "signing_input": hex::encode(ad.signing_input()),
        "signature": hex::encode(ad.sig),
        "advert": hex::encode(ad.encode()),
        "encoded_len": ad.encode().len(),
        "verify_at": verify_at,
    });
    (j, ad)
}

fn invalid(
    name: &str,
    bytes: &[u8],
    verify_at: i64,
    expected_key: Option<[u8; 32]>,
    expected_principal: Option<&str>,
) -> Json {
    let p = expected_principal.map(|s| s.parse().unwrap());
    let e = EndpointAdvert::decode_and_verify(
        bytes,
        verify_at,
        NetworkFilter::ANY,
        expected_key.as_ref(),
        p.as_ref(),
    )
    .expect_err(name);
    let reason = AdvertReject::of(&e).expect("every refusal names its reason");
    let mut j = json!({
        "name": name,
        "advert": hex::encode(bytes),
        "verify_at": verify_at,
        "error": e.code.name(),
        "reason": reason.name(),
    });
    if let Some(k) = expected_key {
        j["expected_node_key"] = json!(hex::encode(k));
    }
    if let Some(p) = expected_principal {
        j["expected_principal"] = json!(p);
    }
    j
}

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/adverts.json").into()
    });
    let (v1, a1) = valid(
        "tcp_and_wss",
        0,
        SignatureForm::Digest,
        0x11,
        &["203.0.113.5:9000", "wss://node.example.org:443/snap2p"],
        1_700_000_000,
        ISSUED_AT,
        3600,
    );
    let (v2, a2) = valid(
        "same_node_higher_seq",
        0,
        SignatureForm::Digest,
        0x11,
        &["203.0.113.5:9001"],
        1_700_000_001,
        ISSUED_AT + 1,
        3600,
    );
    let (v3, _) = valid(
        "stacks_message_form_relay_and_ws",
        1,
        SignatureForm::StacksMessage,
        0x22,
        &[
            "ws://198.51.100.7:8080/snap2p",
            "relay://198.51.100.9:7000/SP21S6DAZN9ZS8EH8NVV2T0HVJ2K7VMKMSCW0596V",
        ],
        42,
        ISSUED_AT,
        600,
    );
    let (v4, _) = valid(
        "expiry_capped_by_the_attestation",
        0,
        SignatureForm::Digest,
        0x33,
        &["[2001:db8::1]:9000"],
        1,
        ISSUED_AT,
        10 * 86_400,
    );
    let (v5, _) = valid(
        "no_locators",
        1,
        SignatureForm::Digest,
        0x44,
        &[],
        7,
        ISSUED_AT,
        3600,
    );
    let p0 = wallet(0, SignatureForm::Digest).principal().to_string();
    let p1 = wallet(1, SignatureForm::Digest).principal().to_string();
    let nk1 = NodeKey::from_seed([0x11; 32]);
    let b1 = a1.encode();
    let at = ISSUED_AT + 60;

    let mut cases = Vec::new();
    // One byte of a locator changed after signing.
    let mut t = b1.clone();
    let i = t.windows(4).position(|w| w == b"9000").unwrap();
    t[i] = b'8';
    cases.push(invalid("tampered_locator", &t, at, None, None));
    // The seq raised after signing.
    let mut t = a1.clone();
    t.seq += 1;
    cases.push(invalid("tampered_seq", &t.encode(), at, None, None));
    cases.push(invalid("expired", &b1, a1.expires_at + 301, None, None));
    cases.push(invalid("not_yet_valid", &b1, ISSUED_AT - 301, None, None));
    cases.push(invalid(
        "wrong_node_key",
        &b1,
        at,
        Some(NodeKey::from_seed([0x55; 32]).public()),
        None,
    ));
    cases.push(invalid("principal_mismatch", &b1, at, None, Some(&p1)));
    // Signed by node key 0x66 but carrying the attestation of 0x11: the signature is
    // checked with the attested key.
    {
        let other = NodeKey::from_seed([0x66; 32]);
        let mut t = a1.clone();
        t.sig = other.sign(&t.signing_input());
        cases.push(invalid(
            "signed_by_another_key_than_attested",
            &t.encode(),
            at,
            None,
            None,
        ));
    }
    // The advert outlives its attestation (made by hand; `issue` caps the expiry).
    {
        let mut t = a1.clone();
        t.expires_at = ISSUED_AT + 3 * 86_400;
        t.sig = nk1.sign(&t.signing_input());
        cases.push(invalid(
            "attestation_expired_inside_a_live_advert",
            &t.encode(),
            ISSUED_AT + 2 * 86_400,
            None,
            None,
        ));
    }
    cases.push(invalid("oversize", &vec![0xa0; 1001], at, None, None));
    // A well-formed map of another domain.
    {
        let mut t = b1.clone();
        let i = t
            .windows(snap2p::discovery::ADVERT_DOMAIN.len())
            .position(|w| w == snap2p::discovery::ADVERT_DOMAIN.as_bytes())
            .unwrap();
        t[i] = b'S';
        cases.push(invalid("wrong_domain", &t, at, None, None));
    }
    cases.push(invalid(
        "not_a_map",
        &[0x83, 0x01, 0x02, 0x03],
        at,
        None,
        None,
    ));
    cases.push(invalid("truncated", &b1[..b1.len() - 1], at, None, None));

    // The cache: the freshest per node key, older and equal seqs refused.
    let cache = AdvertCache::in_memory(NetworkFilter::ANY);
    let mut steps = Vec::new();
    for (label, ad) in [
        ("tcp_and_wss", &a1),
        ("same_node_higher_seq", &a2),
        ("tcp_and_wss", &a1),
        ("same_node_higher_seq", &a2),
    ] {
        let r = cache.insert(&ad.encode(), at, None);
        let outcome = match r {
            Ok((_, snap2p::discovery::Stored::New)) => "new".to_string(),
            Ok((_, snap2p::discovery::Stored::Replaced { .. })) => "replaced".to_string(),
            Err(e) => AdvertReject::of(&e).unwrap().name().to_string(),
        };
        steps.push(json!({ "insert": label, "outcome": outcome, "held_seq": cache.get(&ad.node_key()).unwrap().seq }));
    }

    let doc = json!({
        "description": "Signed endpoint advertisements (docs/PROTOCOL.md §34). 'valid': each advert is issued from its inputs (node key from node_seed, attestation from identity.json's mnemonic account wallet_account in signature form 'form'; seq, issued_at, ttl_secs, locators) to exactly 'advert', signs 'signing_input', and verifies at verify_at under node_key and principal. 'invalid': 'advert' is refused at verify_at (under expected_node_key / expected_principal when given) with 'error' and 'reason'. 'cache': inserts into an empty cache in order, with their outcome and the seq held after. Generated by `cargo run -p snap2p --example gen_advert_vectors`; checked by core/tests/discovery_adverts.rs. Schema: schema/adverts.schema.json.",
        "format_version": 1,
        "domain": snap2p::discovery::ADVERT_DOMAIN,
        "max_len": snap2p::discovery::MAX_ADVERT_LEN,
        "principals": [p0, p1],
        "valid": [v1, v2, v3, v4, v5],
        "invalid": cases,
        "cache": steps,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap();
    text.push('\n');
    std::fs::write(&out, text).unwrap();
    eprintln!("wrote {out}");
}
