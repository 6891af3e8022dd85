//! `vectors/adverts.json`: signed endpoint advertisements (PROTOCOL.md §34) recomputed from
//! their inputs, every negative case refused with its code and reason, and the cache's
//! sequence rules; then the durable cache across a reopen, a broken file and a hand-edited
//! entry.

use serde_json::Value as Json;
use snap2p::discovery::{AdvertCache, AdvertReject, EndpointAdvert, Stored};
use snap2p::identity::{
    LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation, Principal, SignatureForm,
};
use snap2p::{ErrorCode, Locator};

fn vectors() -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/adverts.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("adverts.json")
}

fn unhex(v: &Json) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn key32(v: &Json) -> [u8; 32] {
    unhex(v).try_into().unwrap()
}

const MNEMONIC: &str = "seminar surround scheme bottom pizza champion fatal side outer render harsh awake wink lyrics panel flat journey grit target scrap history dove emerge custom";

#[test]
fn valid_adverts_recompute_from_their_inputs() {
    let v = vectors();
    let valid = v["valid"].as_array().unwrap();
    assert!(valid.len() >= 4);
    for c in valid {
        let name = c["name"].as_str().unwrap();
        let form = match c["form"].as_str().unwrap() {
            "digest" => SignatureForm::Digest,
            _ => SignatureForm::StacksMessage,
        };
        let w = LocalWallet::from_mnemonic(
            MNEMONIC,
            c["wallet_account"].as_u64().unwrap() as u32,
            Network::Mainnet,
        )
        .unwrap()
        .with_form(form);
        assert_eq!(w.principal().to_string(), c["principal"].as_str().unwrap());
        let nk = NodeKey::from_seed(key32(&c["node_seed"]));
        assert_eq!(nk.public(), key32(&c["node_key"]), "{name}");
        let att_bytes = unhex(&c["attestation"]);
        let att = NodeKeyAttestation::decode(&att_bytes).unwrap();
        assert_eq!(att.principal, w.principal(), "{name}");
        let locs: Vec<Locator> = c["locators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().parse().unwrap())
            .collect();
        let ad = EndpointAdvert::issue(
            &nk,
            &att_bytes,
            &locs,
            c["seq"].as_u64().unwrap(),
            c["issued_at"].as_i64().unwrap(),
            c["ttl_secs"].as_i64().unwrap(),
        )
        .unwrap();
        assert_eq!(
            hex::encode(ad.signing_input()),
            c["signing_input"].as_str().unwrap(),
            "{name}"
        );
        assert!(ad
            .signing_input()
            .starts_with(b"snap2p-endpoint-advert-v1\0"));
        assert_eq!(
            hex::encode(ad.sig),
            c["signature"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            hex::encode(ad.encode()),
            c["advert"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(ad.expires_at, c["expires_at"].as_i64().unwrap(), "{name}");
        assert!(ad.encode().len() <= snap2p::discovery::MAX_ADVERT_LEN);
        let decoded = EndpointAdvert::decode_and_verify(
            &unhex(&c["advert"]),
            c["verify_at"].as_i64().unwrap(),
            NetworkFilter::ANY,
            Some(&nk.public()),
            Some(&w.principal()),
        )
        .unwrap();
        assert_eq!(decoded, ad, "{name}");
    }
}

#[test]
fn invalid_adverts_are_refused_with_their_code_and_reason() {
    let v = vectors();
    let cases = v["invalid"].as_array().unwrap();
    let mut reasons = std::collections::HashSet::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let key = c.get("expected_node_key").map(key32);
        let principal: Option<Principal> = c
            .get("expected_principal")
            .map(|p| p.as_str().unwrap().parse().unwrap());
        let e = EndpointAdvert::decode_and_verify(
            &unhex(&c["advert"]),
            c["verify_at"].as_i64().unwrap(),
            NetworkFilter::ANY,
            key.as_ref(),
            principal.as_ref(),
        )
        .expect_err(name);
        assert_eq!(e.code.name(), c["error"].as_str().unwrap(), "{name}: {e}");
        let reason = AdvertReject::of(&e).unwrap();
        assert_eq!(reason.name(), c["reason"].as_str().unwrap(), "{name}: {e}");
        reasons.insert(reason);
    }
    for r in [
        AdvertReject::Oversize,
        AdvertReject::Malformed,
        AdvertReject::Tampered,
        AdvertReject::Expired,
        AdvertReject::WrongKey,
        AdvertReject::Attestation,
    ] {
        assert!(reasons.contains(&r), "no vector refused with {r}");
    }
}

#[test]
fn cache_sequence_of_the_vectors() {
    let v = vectors();
    let by_name: std::collections::HashMap<&str, Vec<u8>> = v["valid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), unhex(&c["advert"])))
        .collect();
    let cache = AdvertCache::in_memory(NetworkFilter::ANY);
    let now = 1_700_000_060;
    let mut saw_stale = false;
    for step in v["cache"].as_array().unwrap() {
        let bytes = &by_name[step["insert"].as_str().unwrap()];
        let outcome = match cache.insert(bytes, now, None) {
            Ok((_, Stored::New)) => "new".to_string(),
            Ok((_, Stored::Replaced { .. })) => "replaced".to_string(),
            Err(e) => {
                assert_eq!(e.code, ErrorCode::InvalidMessage);
                saw_stale = true;
                AdvertReject::of(&e).unwrap().name().to_string()
            }
        };
        assert_eq!(outcome, step["outcome"].as_str().unwrap());
        let ad = EndpointAdvert::decode(bytes).unwrap();
        assert_eq!(
            cache.get(&ad.node_key()).unwrap().seq,
            step["held_seq"].as_u64().unwrap()
        );
    }
    assert!(saw_stale);
}

#[test]
fn durable_cache_survives_restarts_and_bad_files() {
    // Fresh adverts: the vectors' are from 2023, past the cache's retention of expired
    // adverts, so a reopened file would (rightly) forget them.
    let now = snap2p::unix_now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let advert = |account: u32, seed: u8, seq: u64| {
        let w = LocalWallet::from_mnemonic(MNEMONIC, account, Network::Mainnet).unwrap();
        let nk = NodeKey::from_seed([seed; 32]);
        let att = rt
            .block_on(NodeKeyAttestation::issue(&w, nk.public(), now, 86_400))
            .unwrap()
            .encode();
        let loc: Locator = "127.0.0.1:9000".parse().unwrap();
        EndpointAdvert::issue(&nk, &att, &[loc], seq, now, 3600)
            .unwrap()
            .encode()
    };
    let older = advert(0, 0x11, 5);
    let newer = advert(0, 0x11, 6);
    let other = advert(1, 0x22, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("adverts.json");
    {
        let c = AdvertCache::open(&path, NetworkFilter::ANY);
        assert!(c.load_problem().is_none());
        c.insert(&newer, now, None).unwrap();
        c.insert(&other, now, None).unwrap();
    }
    // Restart: the newer advert is there, the older one still refused.
    let c = AdvertCache::open(&path, NetworkFilter::ANY);
    assert!(c.load_problem().is_none(), "{:?}", c.load_problem());
    assert_eq!(c.len(), 2);
    let e = c.insert(&older, now, None).unwrap_err();
    assert_eq!(AdvertReject::of(&e), Some(AdvertReject::StaleSeq));
    let held = EndpointAdvert::decode(&newer).unwrap();
    assert_eq!(c.get(&held.node_key()).unwrap(), held);
    assert_eq!(
        c.for_principal(held.principal(), now),
        vec![held.clone()],
        "live adverts of a principal"
    );
    drop(c);
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["adverts.json".to_string()]);

    // A hand-edited entry (one hex digit of the signature changed) is dropped and reported;
    // the other entry stays.
    let text = std::fs::read_to_string(&path).unwrap();
    let sig_hex = hex::encode(held.sig);
    let mut bad_sig = sig_hex.clone().into_bytes();
    bad_sig[0] = if bad_sig[0] == b'0' { b'1' } else { b'0' };
    std::fs::write(
        &path,
        text.replace(&sig_hex, std::str::from_utf8(&bad_sig).unwrap()),
    )
    .unwrap();
    let c = AdvertCache::open(&path, NetworkFilter::ANY);
    let problem = c.load_problem().expect("the edited entry is reported");
    assert!(problem.message.contains("ADV_TAMPERED"), "{problem}");
    assert_eq!(c.len(), 1);
    drop(c);

    // Garbage, a wrong schema, an empty file: an empty cache and a reported problem, never
    // a panic; the bad file is kept aside.
    for bad in [
        &b"\x00\xff garbage"[..],
        br#"{"schema":"something-else","adverts":[]}"#,
        b"",
        br#"{"schema":"snap2p-advert-cache-v1","adverts":"nope"}"#,
    ] {
        std::fs::write(&path, bad).unwrap();
        let c = AdvertCache::open(&path, NetworkFilter::ANY);
        assert!(c.is_empty());
        assert_eq!(c.load_problem().unwrap().code, ErrorCode::InvalidMessage);
        assert!(path.with_file_name("adverts.json.broken").exists());
        // It still works and writes a good file.
        c.insert(&newer, now, None).unwrap();
        assert!(AdvertCache::open(&path, NetworkFilter::ANY)
            .load_problem()
            .is_none());
    }
}

/// The resolver chain's marks (PROTOCOL.md §35.5): a locator is verified only when a live
/// advert of that principal held in the cache lists it; anything else is a hint.
#[test]
fn chain_marks_locators_of_held_adverts_verified_and_the_rest_hints() {
    let now = snap2p::unix_now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let w = LocalWallet::from_mnemonic(MNEMONIC, 0, Network::Mainnet).unwrap();
    let nk = NodeKey::from_seed([0x33; 32]);
    let att = rt
        .block_on(NodeKeyAttestation::issue(&w, nk.public(), now, 86_400))
        .unwrap()
        .encode();
    let listed: Locator = "198.51.100.7:9000".parse().unwrap();
    let hint: Locator = "198.51.100.8:9000".parse().unwrap();
    let cache = AdvertCache::in_memory(NetworkFilter::ANY);
    let principal = w.principal();
    let other = LocalWallet::from_mnemonic(MNEMONIC, 1, Network::Mainnet)
        .unwrap()
        .principal();
    let flags = |p: &Principal| {
        snap2p::discovery::chain::verified_flags(&cache, p, &[listed.clone(), hint.clone()])
    };
    assert_eq!(flags(&principal), [false, false], "nothing held yet");
    let ad = EndpointAdvert::issue(&nk, &att, std::slice::from_ref(&listed), 1, now, 3600).unwrap();
    cache.insert(&ad.encode(), now, None).unwrap();
    assert_eq!(flags(&principal), [true, false]);
    // Another principal's locators are not vouched for by this advert.
    assert_eq!(flags(&other), [false, false]);
    // An advert no longer live vouches for nothing.
    let stale_cache = AdvertCache::in_memory(NetworkFilter::ANY);
    let old = now - 2 * 3600;
    let att_old = rt
        .block_on(NodeKeyAttestation::issue(&w, nk.public(), old, 86_400))
        .unwrap()
        .encode();
    let expired =
        EndpointAdvert::issue(&nk, &att_old, std::slice::from_ref(&listed), 1, old, 600).unwrap();
    stale_cache
        .insert(&expired.encode(), old + 10, None)
        .unwrap();
    assert_eq!(
        snap2p::discovery::chain::verified_flags(
            &stale_cache,
            &principal,
            std::slice::from_ref(&listed)
        ),
        [false]
    );
}
