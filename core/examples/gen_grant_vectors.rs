//! Writes `core/tests/vectors/grants.json` (test-only tool).
//!
//!     cargo run -p snap2p --example gen_grant_vectors [-- <output path>]
//!
//! Every input is fixed (the mnemonic, nonces, times) and every signature is RFC 6979, so
//! the output is identical on every run. `core/tests/permissions.rs` recomputes the valid
//! grants from their inputs and checks every negative case's error; regenerate only on a
//! deliberate format change (PROTOCOL.md §33).

use serde_json::{json, Value as Json};
use snap2p::identity::{
    GrantRequest, LocalWallet, Network, PermissionGrant, Principal, SignatureForm,
};

const ISSUED_AT: i64 = 1_700_000_000;
const TTL: i64 = 30 * 86_400;
const VERIFY_NOW: i64 = ISSUED_AT + 60;
/// The 24-word mnemonic of identity.json (accounts 0, 1, 2).
const MNEMONIC: &str = "seminar surround scheme bottom pizza champion fatal side outer render harsh awake wink lyrics panel flat journey grit target scrap history dove emerge custom";

fn wallet(account: u32, form: SignatureForm) -> LocalWallet {
    LocalWallet::from_mnemonic(MNEMONIC, account, Network::Mainnet)
        .unwrap()
        .with_form(form)
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

fn nonce(seed: u8) -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(seed))
        .collect()
}

struct Made {
    json: Json,
    grant: PermissionGrant,
}

#[allow(clippy::too_many_arguments)]
fn issue(
    name: &str,
    issuer: u32,
    form: SignatureForm,
    holder: &Principal,
    labels: &[&str],
    delegable: bool,
    parent: Option<&PermissionGrant>,
    seed: u8,
) -> Made {
    let w = wallet(issuer, form);
    let req = GrantRequest {
        holder: holder.clone(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        delegable,
        parent: parent.map(|p| p.encode()),
        ttl_secs: if parent.is_some() { TTL / 2 } else { TTL },
    };
    let g = block_on(PermissionGrant::issue_with_nonce(
        &w,
        req,
        ISSUED_AT,
        nonce(seed),
    ))
    .unwrap();
    let json = json!({
        "name": name,
        "issuer_account": issuer,
        "form": form_name(form),
        "issuer": g.issuer.to_string(),
        "holder": g.holder.to_string(),
        "labels": g.labels,
        "delegable": g.delegable,
        "parent_hex": g.parent.as_ref().map(hex::encode).unwrap_or_default(),
        "issued_at": g.issued_at,
        "expires_at": g.expires_at,
        "nonce_hex": hex::encode(&g.nonce),
        "signing_bytes_hex": hex::encode(g.signing_bytes()),
        "message_text": g.message_text(),
        "signed_digest_hex": hex::encode(g.signed_digest()),
        "id": g.id(),
        "wire_hex": hex::encode(g.encode()),
        "verify_now": VERIFY_NOW,
    });
    Made { json, grant: g }
}

/// Re-signs `g` as is with `w` (fields a verifier must refuse, signed properly).
fn resign(mut g: PermissionGrant, w: &LocalWallet) -> Vec<u8> {
    block_on(g.sign(w)).unwrap();
    g.encode()
}

fn negative(name: &str, wire: Vec<u8>, now: i64, error: &str) -> Json {
    json!({ "name": name, "wire_hex": hex::encode(wire), "now": now, "error": error })
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "core/tests/vectors/grants.json".into());
    let owner = wallet(0, SignatureForm::Digest).principal();
    let member = wallet(1, SignatureForm::Digest).principal();
    let device = wallet(2, SignatureForm::Digest).principal();

    let files = issue(
        "owner-grants-member-digest",
        0,
        SignatureForm::Digest,
        &member,
        &["files", "chat*"],
        false,
        None,
        1,
    );
    let admin = issue(
        "owner-grants-member-message",
        0,
        SignatureForm::StacksMessage,
        &member,
        &["admin"],
        false,
        None,
        2,
    );
    let team = issue(
        "owner-grants-member-delegable",
        0,
        SignatureForm::Digest,
        &member,
        &["files/*", "team"],
        true,
        None,
        3,
    );
    let device_grant = issue(
        "member-delegates-to-device-message",
        1,
        SignatureForm::StacksMessage,
        &device,
        &["files/photos"],
        false,
        Some(&team.grant),
        4,
    );

    let mut neg = Vec::new();
    let g = &files.grant;
    neg.push(negative(
        "expired",
        g.encode(),
        g.expires_at + 301,
        "ERR_AUTH_EXPIRED",
    ));
    neg.push(negative(
        "not-yet-valid",
        g.encode(),
        g.issued_at - 301,
        "ERR_AUTH_EXPIRED",
    ));
    let mut t = g.clone();
    t.labels = vec!["*".into()];
    neg.push(negative(
        "tampered-labels",
        t.encode(),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));
    let mut t = admin.grant.clone();
    t.holder = owner.clone();
    neg.push(negative(
        "tampered-holder-message-form",
        t.encode(),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));
    let mut t = g.clone();
    t.labels = vec!["files".into(), "chat*".into()];
    neg.push(negative(
        "labels-not-sorted",
        resign(t, &wallet(0, SignatureForm::Digest)),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));
    let mut t = g.clone();
    t.labels = vec![];
    neg.push(negative(
        "no-labels",
        resign(t, &wallet(0, SignatureForm::Digest)),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));
    let mut t = g.clone();
    t.labels = vec!["a*b".into()];
    neg.push(negative(
        "star-inside-label",
        resign(t, &wallet(0, SignatureForm::Digest)),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));
    // Two levels: the device re-delegates its (delegated) grant.
    let mut t = device_grant.grant.clone();
    t.issuer = device.clone();
    t.holder = owner.clone();
    t.parent = Some(device_grant.grant.encode());
    t.form = SignatureForm::Digest;
    neg.push(negative(
        "two-levels-of-delegation",
        resign(t, &wallet(2, SignatureForm::Digest)),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));
    // Delegated from a grant that is not delegable.
    let mut t = device_grant.grant.clone();
    t.parent = Some(files.grant.encode());
    t.labels = vec!["files".into()];
    neg.push(negative(
        "parent-not-delegable",
        resign(t, &wallet(1, SignatureForm::StacksMessage)),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));
    let mut t = device_grant.grant.clone();
    t.labels = vec!["admin".into()];
    neg.push(negative(
        "label-not-covered-by-parent",
        resign(t, &wallet(1, SignatureForm::StacksMessage)),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));
    let mut t = device_grant.grant.clone();
    t.expires_at = team.grant.expires_at + 1;
    neg.push(negative(
        "outlives-parent",
        resign(t, &wallet(1, SignatureForm::StacksMessage)),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));
    let mut t = device_grant.grant.clone();
    t.delegable = true;
    neg.push(negative(
        "delegated-and-delegable",
        resign(t, &wallet(1, SignatureForm::StacksMessage)),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));
    // Signed by the owner instead of the parent's holder.
    let mut t = device_grant.grant.clone();
    t.issuer = owner.clone();
    neg.push(negative(
        "delegated-by-someone-else",
        resign(t, &wallet(0, SignatureForm::StacksMessage)),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));
    // The attestation's bytes are not a grant.
    neg.push(negative(
        "truncated",
        g.encode()[..40].to_vec(),
        VERIFY_NOW,
        "ERR_AUTH_INVALID",
    ));

    // What a node with owner = account 0 decides when `presenter` presents a grant.
    let node = vec![
        json!({"name": "holder-presents", "grant": files.json["name"], "presenter": member.to_string(),
               "owners": [owner.to_string()], "revoked": [], "now": VERIFY_NOW, "error": null}),
        json!({"name": "delegate-presents", "grant": device_grant.json["name"], "presenter": device.to_string(),
               "owners": [owner.to_string()], "revoked": [], "now": VERIFY_NOW, "error": null}),
        json!({"name": "not-the-holder", "grant": files.json["name"], "presenter": device.to_string(),
               "owners": [owner.to_string()], "revoked": [], "now": VERIFY_NOW, "error": "ERR_NOT_ALLOWED"}),
        json!({"name": "wrong-owner", "grant": files.json["name"], "presenter": member.to_string(),
               "owners": [device.to_string()], "revoked": [], "now": VERIFY_NOW, "error": "ERR_NOT_ALLOWED"}),
        json!({"name": "delegate-is-not-an-owner", "grant": device_grant.json["name"], "presenter": device.to_string(),
               "owners": [member.to_string()], "revoked": [], "now": VERIFY_NOW, "error": "ERR_NOT_ALLOWED"}),
        json!({"name": "revoked-by-id", "grant": files.json["name"], "presenter": member.to_string(),
               "owners": [owner.to_string()], "revoked": [files.grant.id()], "now": VERIFY_NOW, "error": "ERR_NOT_ALLOWED"}),
        json!({"name": "parent-revoked", "grant": device_grant.json["name"], "presenter": device.to_string(),
               "owners": [owner.to_string()], "revoked": [team.grant.id()], "now": VERIFY_NOW, "error": "ERR_NOT_ALLOWED"}),
        json!({"name": "delegate-principal-revoked", "grant": device_grant.json["name"], "presenter": device.to_string(),
               "owners": [owner.to_string()], "revoked": [member.to_string()], "now": VERIFY_NOW, "error": "ERR_NOT_ALLOWED"}),
    ];

    let doc = json!({
        "description": "snap2p PermissionGrant v1 vectors (docs/PROTOCOL.md §33). Generated by `cargo run -p snap2p --example gen_grant_vectors`; checked by core/tests/permissions.rs. Wallet accounts are of the 24-word mnemonic in identity.json.",
        "format_version": 1,
        "mnemonic": MNEMONIC,
        "grants": [files.json, admin.json, team.json, device_grant.json],
        "negative": neg,
        "node": node,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    eprintln!("wrote {out}");
}
