//! Writes `core/tests/vectors/wallet-signatures.json` (test-only tool).
//!
//!     cargo run -p snap2p --example gen_wallet_signature_vectors [-- <output path>]
//!
//! The shapes a Stacks wallet's `stx_signMessage` answer takes (r ‖ s ‖ v or v ‖ r ‖ s, v a
//! recovery id or a bitcoin-style header 27..=34) and the one wire form snap2p keeps
//! (`identity::normalize_wallet_signature`). Every signature is RFC 6979 over a fixed
//! message, so the output is identical on every run; `core/tests/wallet_signatures.rs`
//! and the browser suite (browser/test) check every case.

use serde_json::json;
use snap2p::identity::{LocalWallet, Network};

/// The 24-word mnemonic of identity.json (account 0 signs; account 1 is "someone else").
const MNEMONIC: &str = "seminar surround scheme bottom pizza champion fatal side outer render harsh awake wink lyrics panel flat journey grit target scrap history dove emerge custom";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn in_range(v: u8) -> bool {
    matches!(v, 0..=3 | 27..=34)
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "core/tests/vectors/wallet-signatures.json".to_owned());
    let w = LocalWallet::from_mnemonic(MNEMONIC, 0, Network::Mainnet).unwrap();
    let other = LocalWallet::from_mnemonic(MNEMONIC, 1, Network::Mainnet).unwrap();
    let mut cases = Vec::new();
    let mut case = |name: &str, message: &str, sig: Vec<u8>, ok: Option<[u8; 65]>| {
        let mut c = json!({
            "name": name,
            "message": message,
            "signature": hex(&sig),
        });
        match ok {
            Some(n) => c["normalized"] = hex(&n).into(),
            None => c["error"] = "ERR_AUTH_INVALID".into(),
        }
        cases.push(c);
    };
    let msg = "snap2p wallet signature vectors";
    let rsv = w.sign_message(msg);
    let (rs, v) = (&rsv[..64], rsv[64]);
    case("rsv_recovery_id", msg, rsv.to_vec(), Some(rsv));
    case("rsv_header_27", msg, [rs, &[v + 27]].concat(), Some(rsv));
    case(
        "rsv_header_31_compressed",
        msg,
        [rs, &[v + 31]].concat(),
        Some(rsv),
    );
    case("vrs_recovery_id", msg, [&[v][..], rs].concat(), Some(rsv));
    case(
        "vrs_header_27",
        msg,
        [&[v + 27][..], rs].concat(),
        Some(rsv),
    );
    // Both ends look like a recovery id: each layout is tried, the one that recovers the
    // principal wins. Messages found by counting until the bytes fall that way.
    let find = |want: &dyn Fn(&[u8; 65]) -> bool| {
        (0..)
            .map(|i| format!("{msg} #{i}"))
            .find(|m| want(&w.sign_message(m)))
            .unwrap()
    };
    let m = find(&|s| in_range(s[0]));
    let s = w.sign_message(&m);
    case("rsv_whose_r_starts_like_a_header", &m, s.to_vec(), Some(s));
    let m = find(&|s| in_range(s[63]));
    let s = w.sign_message(&m);
    case(
        "vrs_whose_s_ends_like_a_header",
        &m,
        [&[s[64] + 27][..], &s[..64]].concat(),
        Some(s),
    );
    // Refused: another key's signature, a v that is no header, a truncated signature.
    case(
        "another_principals_signature",
        msg,
        other.sign_message(msg).to_vec(),
        None,
    );
    let mut bad_v = rsv;
    bad_v[64] = 35;
    if in_range(bad_v[0]) {
        bad_v[0] = 0x80;
    }
    case("v_35_is_no_header", msg, bad_v.to_vec(), None);
    case("64_bytes", msg, rs.to_vec(), None);
    let doc = json!({
        "description": "Wallet signature shapes (docs/PROTOCOL.md Part II, \"Wallet signatures\"): what a Stacks wallet's stx_signMessage may answer for 'message' (signed as its Stacks message hash by the 'principal''s key), and 'normalized', the r ‖ s ‖ v (v 0..3) form snap2p attaches, or 'error' when it must be refused. Schema: schema/wallet-signatures.schema.json.",
        "format_version": 1,
        "principal": w.principal().to_string(),
        "mnemonic": MNEMONIC,
        "account": 0,
        "cases": cases,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    eprintln!("wrote {out}");
}
