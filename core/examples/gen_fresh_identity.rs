//! Prints fresh random identity material as JSON for `ci/oracle/verify.mjs --fresh`.
//!
//!     cargo run -p snap2p --example gen_fresh_identity [-- <wallet count>]
//!
//! Random wallets (12- and 24-word, both networks) each issue attestations and alias cards
//! in both signature forms; one wallet file is written by `WalletStore` with the default
//! scrypt parameters. The oracle re-derives and re-verifies all of it with stacks.js and
//! node:crypto, so this exercises the signing and encryption paths on new keys every run.

use serde_json::json;
use snap2p::identity::{
    AliasCard, LocalWallet, Network, NodeKey, NodeKeyAttestation, SignatureForm, WalletStore,
};

fn form_name(f: SignatureForm) -> &'static str {
    match f {
        SignatureForm::Digest => "digest",
        SignatureForm::StacksMessage => "stacks_message",
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(4);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;

    let mut wallets = Vec::new();
    for i in 0..count {
        let network = if i % 2 == 0 {
            Network::Mainnet
        } else {
            Network::Testnet
        };
        let base = if i % 3 == 2 {
            let m = bip39::Mnemonic::generate(12)?;
            LocalWallet::from_mnemonic(&m.to_string(), 0, network)?
        } else {
            LocalWallet::generate(network)
        };
        let mut signed = Vec::new();
        for form in [SignatureForm::Digest, SignatureForm::StacksMessage] {
            let w = base.clone().with_form(form);
            let node = NodeKey::generate();
            let att = NodeKeyAttestation::issue(
                &w,
                node.public(),
                now,
                NodeKeyAttestation::DEFAULT_TTL_SECS,
            )
            .await?;
            signed.push(json!({
                "type": "attestation",
                "form": form_name(form),
                "wire": hex::encode(att.encode()),
                "now": now,
                "expires_at": att.expires_at,
            }));
            let alias = format!("User-{}", &hex::encode(node.public())[..8]);
            let card = AliasCard::issue(
                &w,
                &alias,
                &format!("Fresh {i} 🛰"),
                now,
                AliasCard::DEFAULT_TTL_SECS,
            )
            .await?;
            signed.push(json!({
                "type": "alias_card",
                "form": form_name(form),
                "wire": hex::encode(card.encode()),
                "now": now,
                "expires_at": card.expires_at,
            }));
        }
        wallets.push(json!({
            "mnemonic": base.mnemonic(),
            "account": base.account_index(),
            "network": network.as_str(),
            "private_key": base.private_key_hex(),
            "public_key": hex::encode(base.public_key()),
            "address": base.principal().address(),
            "signed": signed,
        }));
    }

    // One wallet file written by the store, default (reference) scrypt parameters.
    let dir = tempfile::tempdir()?;
    let store = WalletStore::open(dir.path())?;
    let password = format!("pw-{}", hex::encode(rand::random::<[u8; 6]>()));
    let (info, wallet) = store.create("fresh", &password, Network::Testnet)?;
    let file_text = std::fs::read_to_string(dir.path().join(format!("{}.wallet.json", info.id)))?;
    let wallet_files = vec![json!({
        "password": password,
        "mnemonic": wallet.mnemonic(),
        "wallet_file": serde_json::from_str::<serde_json::Value>(&file_text)?,
    })];

    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "wallets": wallets, "wallet_files": wallet_files }))?
    );
    Ok(())
}
