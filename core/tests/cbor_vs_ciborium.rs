//! What the hand-written codec (`wire::cbor`, `Message::decode`, `NodeKeyAttestation`)
//! and `ciborium` (a dev-dependency only) each do with non-canonical and out-of-subset
//! CBOR: the evidence for docs/ARCHITECTURE.md "Dependencies and why". Every cell of the
//! table is asserted, so the document cannot drift from the code; print it with
//! `cargo test -p snap2p --test cbor_vs_ciborium -- --nocapture`.

use serde::{Deserialize, Deserializer};
use snap2p::unstable::wire::cbor;
use snap2p::unstable::wire::message::Message;
use snap2p::{LocalWallet, Network, NetworkFilter, NodeKey, NodeKeyAttestation};

/// A CBOR byte string for serde (ciborium hands byte strings to `visit_bytes`).
#[derive(Debug)]
struct Bytes(#[allow(dead_code)] Vec<u8>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// STREAM_DATA as a serde struct (what a ciborium-based decoder would use).
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct StreamData {
    d: Bytes,
    #[serde(default)]
    f: Option<bool>,
    sid: u64,
    t: u64,
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn ours_value(b: &[u8]) -> String {
    match cbor::decode(b) {
        Ok(cbor::Value::Map(m)) => format!("accepts ({} entries)", m.len()),
        Ok(_) => "accepts".into(),
        Err(e) => format!("rejects ({e})"),
    }
}

fn ours_message(b: &[u8]) -> String {
    match Message::decode(b) {
        Ok(Message::StreamData { stream_id, .. }) => format!("accepts, sid={stream_id}"),
        Ok(m) => format!("accepts {m:?}"),
        Err(_) => "rejects".into(),
    }
}

fn ciborium_value(b: &[u8]) -> String {
    match ciborium::from_reader::<ciborium::Value, _>(b) {
        Ok(ciborium::Value::Map(m)) => format!("accepts ({} entries)", m.len()),
        Ok(_) => "accepts".into(),
        Err(_) => "rejects".into(),
    }
}

fn ciborium_struct(b: &[u8]) -> String {
    match ciborium::from_reader::<StreamData, _>(b) {
        Ok(s) => format!("accepts, sid={}", s.sid),
        Err(_) => "rejects".into(),
    }
}

/// `[input, hex, cbor::decode, Message::decode, ciborium Value, ciborium struct]`
type Row = [&'static str; 6];

/// STREAM_DATA {d: h'6869', sid: 5, t: 0x12} in every spelling. The canonical bytes are
/// `a3 6164 426869 63736964 05 6174 12`.
const ROWS: &[Row] = &[
    [
        "canonical",
        "a3 6164 426869 63736964 05 6174 12",
        "accepts (3 entries)",
        "accepts, sid=5",
        "accepts (3 entries)",
        "accepts, sid=5",
    ],
    [
        "integer not shortest (sid = 18 05)",
        "a3 6164 426869 63736964 1805 6174 12",
        "accepts (3 entries)",
        "accepts, sid=5",
        "accepts (3 entries)",
        "accepts, sid=5",
    ],
    [
        "integer not shortest (sid = 1b 0000000000000005)",
        "a3 6164 426869 63736964 1b0000000000000005 6174 12",
        "accepts (3 entries)",
        "accepts, sid=5",
        "accepts (3 entries)",
        "accepts, sid=5",
    ],
    [
        "length not shortest (d = 58 02 6869)",
        "a3 6164 58026869 63736964 05 6174 12",
        "accepts (3 entries)",
        "accepts, sid=5",
        "accepts (3 entries)",
        "accepts, sid=5",
    ],
    [
        "keys unsorted (t, d, sid)",
        "a3 6174 12 6164 426869 63736964 05",
        "accepts (3 entries)",
        "accepts, sid=5",
        "accepts (3 entries)",
        "accepts, sid=5",
    ],
    [
        "keys in RFC 8949 length-first order (d, t, sid)",
        "a3 6164 426869 6174 12 63736964 05",
        "accepts (3 entries)",
        "accepts, sid=5",
        "accepts (3 entries)",
        "accepts, sid=5",
    ],
    [
        "duplicate key (sid = 5, then sid = 6)",
        "a4 6164 426869 63736964 05 63736964 06 6174 12",
        "accepts (4 entries)",
        "accepts, sid=5",
        "accepts (4 entries)",
        "rejects",
    ],
    [
        "indefinite-length map (bf … ff)",
        "bf 6164 426869 63736964 05 6174 12 ff",
        "rejects (unsupported CBOR: indefinite length)",
        "rejects",
        "accepts (3 entries)",
        "accepts, sid=5",
    ],
    [
        "indefinite-length byte string (d = 5f 4168 4169 ff)",
        "a3 6164 5f41684169ff 63736964 05 6174 12",
        "rejects (unsupported CBOR: indefinite length)",
        "rejects",
        "accepts (3 entries)",
        "accepts, sid=5",
    ],
    [
        "indefinite-length text key (sid spelled 7f 6173 626964 ff)",
        "a3 6164 426869 7f6173626964ff 05 6174 12",
        "rejects (unsupported CBOR: indefinite length)",
        "rejects",
        "accepts (3 entries)",
        "rejects",
    ],
    [
        "tagged integer (sid = c2 4105, bignum 5)",
        "a3 6164 426869 63736964 c24105 6174 12",
        "rejects (unsupported CBOR: tag)",
        "rejects",
        "accepts (3 entries)",
        "accepts, sid=5",
    ],
    [
        "float for an integer (sid = f9 4500, 5.0)",
        "a3 6164 426869 63736964 f94500 6174 12",
        "rejects (unsupported CBOR: float or simple value)",
        "rejects",
        "accepts (3 entries)",
        "rejects",
    ],
    [
        "integer map key (1: 0 added)",
        "a4 01 00 6164 426869 63736964 05 6174 12",
        "rejects (unsupported CBOR: non-text map key)",
        "rejects",
        "accepts (4 entries)",
        "rejects",
    ],
    [
        "trailing byte (canonical ‖ 00)",
        "a3 6164 426869 63736964 05 6174 12 00",
        "rejects (trailing bytes after CBOR item)",
        "rejects",
        "accepts (3 entries)",
        "accepts, sid=5",
    ],
];

#[test]
fn noncanonical_inputs_table() {
    let mut failures = vec![];
    println!(
        "| input | bytes (hex) | snap2p `cbor::decode` | snap2p `Message::decode` | \
         ciborium → `Value` | ciborium → serde struct |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for row in ROWS {
        let b = h(row[1]);
        let got = [
            ours_value(&b),
            ours_message(&b),
            ciborium_value(&b),
            ciborium_struct(&b),
        ];
        println!(
            "| {} | `{}` | {} | {} | {} | {} |",
            row[0], row[1], got[0], got[1], got[2], got[3]
        );
        for (i, g) in got.iter().enumerate() {
            if g != row[2 + i] {
                failures.push(format!("{}: column {} is {g:?}", row[0], i + 3));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The signed objects refuse what the generic decoder lets through where it matters: a
/// duplicate key is refused, and a non-canonical spelling of a valid attestation still
/// verifies only because the signature covers the canonical re-encoding (PROTOCOL.md
/// §2, §10): the same statement, never different bytes under one signature.
#[test]
fn attestation_duplicates_refused_and_signature_covers_canonical_form() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let wallet = LocalWallet::generate(Network::Mainnet);
    let node = NodeKey::generate();
    let now = snap2p::unix_now();
    let att = rt
        .block_on(NodeKeyAttestation::issue(
            &wallet,
            node.public(),
            now,
            86_400,
        ))
        .unwrap();
    let bytes = att.encode();
    assert_eq!(bytes[0], 0xa8, "8 entries (form Digest)");
    let v_key = h("6176"); // "v"
    assert_eq!(&bytes[bytes.len() - 3..bytes.len() - 1], &v_key[..]);
    assert_eq!(bytes[bytes.len() - 1], 0x01); // v = 1, the last entry

    // Duplicate key: one more `v: 1` entry.
    let mut dup = bytes.clone();
    dup[0] = 0xa9;
    dup.extend_from_slice(&h("6176 01"));
    let err = NodeKeyAttestation::decode(&dup).unwrap_err();
    assert!(err.message.contains("duplicate key"), "{err}");
    // ciborium into a Value takes it; into a map type the last value silently wins.
    let v: ciborium::Value = ciborium::from_reader(&dup[..]).unwrap();
    assert_eq!(v.as_map().unwrap().len(), 9);
    let m: std::collections::BTreeMap<String, ciborium::Value> =
        ciborium::from_reader(&dup[..]).unwrap();
    assert_eq!(m.len(), 8);

    // `v` spelled 18 01 instead of 01: decodes to the same attestation, and verifies
    // because verification re-encodes canonically.
    let mut long = bytes.clone();
    long.pop();
    long.extend_from_slice(&h("1801"));
    let decoded = NodeKeyAttestation::decode(&long).unwrap();
    assert_eq!(decoded, att);
    assert_eq!(decoded.encode(), bytes, "re-encoding is canonical");
    NodeKeyAttestation::decode_and_verify(&long, now, NetworkFilter::ANY).unwrap();
    println!(
        "attestation: duplicate key refused ({err}); non-shortest `v` decodes to the same \
         attestation, re-encodes to the canonical {} bytes and verifies",
        bytes.len()
    );
}

/// ciborium's own "canonical" ordering (`ciborium::value::CanonicalValue`, RFC 7049 /
/// RFC 8949 §4.2.3 length-first) is not the protocol's plain byte-wise order, so even
/// ciborium's canonical mode would write HELLO's keys in another order than the
/// TypeScript reference and snap2p.
#[test]
fn ciborium_canonical_order_is_not_the_wire_order() {
    let wire = ["cap", "n", "pk", "t", "ts", "v", "vis"];
    let mut keys: Vec<ciborium::value::CanonicalValue> = wire
        .iter()
        .map(|k| ciborium::Value::Text(k.to_string()).into())
        .collect();
    keys.sort();
    let sorted: Vec<String> = keys
        .into_iter()
        .map(|k| ciborium::Value::from(k).into_text().unwrap())
        .collect();
    println!("HELLO keys: wire (byte-wise) {wire:?}; ciborium CanonicalValue {sorted:?}");
    assert_eq!(sorted, ["n", "t", "v", "pk", "ts", "cap", "vis"]);
}
