//! NodeKeyAttestation and AliasCard behaviour: both signature forms, host signers that only
//! "sign message", misbehaving signers, hostile bytes, and the alias book.

use k256::elliptic_curve::ops::Neg;
use k256::elliptic_curve::PrimeField;
use rand::{Rng, RngCore, SeedableRng};
use snap2p::identity::{
    recover_principal, stacks_message_hash, AliasBook, AliasCard, LocalWallet, Network,
    NetworkFilter, NodeKey, NodeKeyAttestation, Principal, SignRequest, SignatureForm,
    WalletSigner,
};
use snap2p::{Error, ErrorCode, Result};

const NOW: i64 = 1_750_000_000;
const MNEMONIC: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

fn wallet(form: SignatureForm) -> LocalWallet {
    LocalWallet::from_mnemonic(MNEMONIC, 0, Network::Mainnet)
        .unwrap()
        .with_form(form)
}

/// A browser/mobile wallet stand-in: refuses raw digests, signs messages with the prefix.
struct MessageOnlyWallet(LocalWallet);

#[async_trait::async_trait]
impl WalletSigner for MessageOnlyWallet {
    fn principal(&self) -> Principal {
        self.0.principal()
    }
    fn signature_form(&self) -> SignatureForm {
        SignatureForm::StacksMessage
    }
    async fn sign(&self, request: SignRequest) -> Result<Vec<u8>> {
        match request {
            SignRequest::Message(m) => Ok(self.0.sign_message(&m).to_vec()),
            SignRequest::Digest(_) => Err(Error::new(
                ErrorCode::WalletError,
                "digest signing unsupported",
            )),
        }
    }
}

/// Returns a signature made by another key (or garbage) for the right principal.
struct LyingWallet {
    claims: LocalWallet,
    signs_with: Option<LocalWallet>,
}

#[async_trait::async_trait]
impl WalletSigner for LyingWallet {
    fn principal(&self) -> Principal {
        self.claims.principal()
    }
    async fn sign(&self, request: SignRequest) -> Result<Vec<u8>> {
        match &self.signs_with {
            Some(w) => w.sign(request).await,
            None => Ok(vec![7; 65]),
        }
    }
}

#[tokio::test]
async fn both_forms_issue_encode_decode_verify() {
    let node = NodeKey::generate();
    for form in [SignatureForm::Digest, SignatureForm::StacksMessage] {
        let w = wallet(form);
        let att =
            NodeKeyAttestation::issue(&w, node.public(), NOW, NodeKeyAttestation::DEFAULT_TTL_SECS)
                .await
                .unwrap();
        assert_eq!(att.form, form);
        assert_eq!(att.nonce.len(), 32);
        assert_eq!(att.expires_at, NOW + 86_400);
        let back =
            NodeKeyAttestation::decode_and_verify(&att.encode(), NOW, NetworkFilter::MAINNET_ONLY)
                .unwrap();
        assert_eq!(back, att);
        assert_eq!(
            att.verify(NOW, NetworkFilter::TESTNET_ONLY)
                .unwrap_err()
                .code,
            ErrorCode::AuthInvalid
        );

        let card = AliasCard::issue(&w, " Alice ", "Alice 🚀", NOW, AliasCard::DEFAULT_TTL_SECS)
            .await
            .unwrap();
        assert_eq!(card.alias, "alice");
        assert_eq!(card.expires_at, NOW + 7 * 86_400);
        assert_eq!(
            AliasCard::decode_and_verify(&card.encode(), NOW, NetworkFilter::ANY).unwrap(),
            card
        );
    }
}

#[tokio::test]
async fn message_only_host_wallet_works() {
    let host = MessageOnlyWallet(wallet(SignatureForm::Digest));
    let node = NodeKey::generate();
    let att = NodeKeyAttestation::issue(&host, node.public(), NOW, 3600)
        .await
        .unwrap();
    assert_eq!(att.form, SignatureForm::StacksMessage);
    att.verify(NOW, NetworkFilter::ANY).unwrap();
    // The signature is over the prefixed text, not over the CBOR digest.
    let by_text = recover_principal(
        &stacks_message_hash(&att.message_text()),
        &att.sig,
        Network::Mainnet,
    )
    .unwrap();
    assert_eq!(by_text, host.principal());
    assert!(att.message_text().contains(&hex::encode(node.public())));
    let card = AliasCard::issue(&host, "bob", "Bob", NOW, 3600)
        .await
        .unwrap();
    card.verify(NOW, NetworkFilter::ANY).unwrap();
}

#[tokio::test]
async fn misbehaving_signers_are_caught_at_issue() {
    let node = NodeKey::generate();
    let other = LocalWallet::from_mnemonic(MNEMONIC, 1, Network::Mainnet).unwrap();
    for signs_with in [Some(other), None] {
        let liar = LyingWallet {
            claims: wallet(SignatureForm::Digest),
            signs_with,
        };
        let e = NodeKeyAttestation::issue(&liar, node.public(), NOW, 60)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthInvalid, "{e}");
        let e = AliasCard::issue(&liar, "x", "", NOW, 60).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthInvalid, "{e}");
    }
    // A Digest-form request to a message-only wallet surfaces the wallet's error.
    let mut att = NodeKeyAttestation::issue(&wallet(SignatureForm::Digest), node.public(), NOW, 60)
        .await
        .unwrap();
    let host = MessageOnlyWallet(wallet(SignatureForm::Digest));
    assert_eq!(
        att.sign(&host).await.unwrap_err().code,
        ErrorCode::WalletError
    );
    // Signing for someone else's principal is refused before asking the wallet.
    att.principal = Principal::new(22, [1; 20]).unwrap();
    assert_eq!(
        att.sign(&wallet(SignatureForm::Digest))
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
}

#[tokio::test]
async fn issue_rejects_bad_arguments() {
    let w = wallet(SignatureForm::Digest);
    let node = NodeKey::generate();
    for ttl in [0, -5] {
        assert_eq!(
            NodeKeyAttestation::issue(&w, node.public(), NOW, ttl)
                .await
                .unwrap_err()
                .code,
            ErrorCode::InvalidArgument
        );
    }
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        NodeKeyAttestation::issue(&w, identity, NOW, 60)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        NodeKeyAttestation::issue(&w, node.public(), -1, 60)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        NodeKeyAttestation::issue(&w, node.public(), i64::MAX - 10, 60)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        AliasCard::issue(&w, "  ", "x", NOW, 60)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        AliasCard::issue(&w, "ok", "bad\u{202e}name", NOW, 60)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        AliasCard::issue(&w, "ok", &"n".repeat(129), NOW, 60)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
}

#[tokio::test]
async fn high_s_twin_is_rejected() {
    let w = wallet(SignatureForm::Digest);
    let att = NodeKeyAttestation::issue(&w, NodeKey::generate().public(), NOW, 60)
        .await
        .unwrap();
    let digest = att.signed_digest();
    let mut sig = att.sig.clone();
    let s = k256::Scalar::from_repr(<[u8; 32]>::try_from(&sig[32..64]).unwrap().into()).unwrap();
    sig[32..64].copy_from_slice(&s.neg().to_repr());
    sig[64] ^= 1;
    // (r, n - s) with the parity flipped is the malleated twin of a valid signature.
    assert_eq!(
        recover_principal(&digest, &sig, Network::Mainnet)
            .unwrap_err()
            .code,
        ErrorCode::AuthInvalid
    );
    assert_eq!(
        recover_principal(&digest, &att.sig, Network::Mainnet).unwrap(),
        w.principal()
    );
}

#[tokio::test]
async fn hostile_bytes_never_panic_and_never_verify() {
    let w = wallet(SignatureForm::Digest);
    let att = NodeKeyAttestation::issue(&w, NodeKey::generate().public(), NOW, 600)
        .await
        .unwrap();
    let card = AliasCard::issue(
        &w.clone().with_form(SignatureForm::StacksMessage),
        "zoë",
        "Zoë",
        NOW,
        600,
    )
    .await
    .unwrap();
    for (kind, wire) in [("att", att.encode()), ("card", card.encode())] {
        let check = |bytes: &[u8]| -> Result<()> {
            if kind == "att" {
                NodeKeyAttestation::decode_and_verify(bytes, NOW, NetworkFilter::ANY).map(|_| ())
            } else {
                AliasCard::decode_and_verify(bytes, NOW, NetworkFilter::ANY).map(|_| ())
            }
        };
        check(&wire).unwrap();
        for len in 0..wire.len() {
            assert!(check(&wire[..len]).is_err(), "{kind} truncated to {len}");
        }
        // Every single-byte change is detected (structure, field or signature).
        for pos in 0..wire.len() {
            for delta in [1u8, 0x80] {
                let mut m = wire.clone();
                m[pos] ^= delta;
                let e = check(&m).expect_err(&format!("{kind} byte {pos} ^ {delta:#x} accepted"));
                assert!(
                    matches!(e.code, ErrorCode::AuthInvalid | ErrorCode::AuthExpired),
                    "{e}"
                );
            }
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..5000 {
        let len = rng.gen_range(0..300);
        let mut b = vec![0u8; len];
        rng.fill_bytes(&mut b);
        if rng.gen_bool(0.5) && !b.is_empty() {
            b[0] = 0xa0 | (b[0] & 0x0f); // make it look like a map
        }
        assert_eq!(
            NodeKeyAttestation::decode(&b).unwrap_err().code,
            ErrorCode::AuthInvalid
        );
        assert_eq!(
            AliasCard::decode(&b).unwrap_err().code,
            ErrorCode::AuthInvalid
        );
    }
    // Oversized input is refused before decoding.
    assert_eq!(
        NodeKeyAttestation::decode(&vec![0xa0; 4096])
            .unwrap_err()
            .code,
        ErrorCode::AuthInvalid
    );
}

#[tokio::test]
async fn alias_book_keeps_latest_current_card() {
    let w = wallet(SignatureForm::Digest);
    let p = w.principal();
    let mut book = AliasBook::new();
    let old = AliasCard::issue(&w, "old", "Old", NOW, 1000).await.unwrap();
    let new = AliasCard::issue(&w, "new", "New", NOW + 10, 1000)
        .await
        .unwrap();
    assert!(book.insert(old.clone(), NOW + 20).unwrap());
    assert!(book.insert(new.clone(), NOW + 20).unwrap());
    // Older or same-time cards never replace the latest.
    assert!(!book.insert(old.clone(), NOW + 20).unwrap());
    let same_time = AliasCard::issue(&w, "same", "Same", NOW + 10, 1000)
        .await
        .unwrap();
    assert!(!book.insert(same_time, NOW + 20).unwrap());
    assert_eq!(book.current(&p, NOW + 20).unwrap().alias, "new");
    // Expired: not current even inside the verification skew window.
    assert!(book.current(&p, NOW + 10 + 1000).is_none());
    assert!(!new.is_current(NOW + 1010) && new.is_current(NOW + 1009));
    // Expired and forged cards are refused.
    assert_eq!(
        book.insert(old.clone(), NOW + 2000).unwrap_err().code,
        ErrorCode::AuthExpired
    );
    let mut forged = new.clone();
    forged.display_name = "Mallory".into();
    forged.issued_at += 1;
    assert_eq!(
        book.insert(forged, NOW + 20).unwrap_err().code,
        ErrorCode::AuthInvalid
    );
    assert_eq!(book.len(), 1);
    book.prune(NOW + 5000);
    assert!(book.is_empty());
    let mut testnet_only = AliasBook::with_networks(NetworkFilter::TESTNET_ONLY);
    assert_eq!(
        testnet_only.insert(new, NOW + 20).unwrap_err().code,
        ErrorCode::AuthInvalid
    );
    assert!(book
        .current(&Principal::new(22, [9; 20]).unwrap(), NOW)
        .is_none());
}

#[test]
fn principal_text_forms() {
    let p: Principal = "stacks:SP000000000000000000002Q6VF78".parse().unwrap();
    assert_eq!(p.to_string(), "stacks:SP000000000000000000002Q6VF78");
    assert_eq!(
        Principal::from_address("SP000000000000000000002Q6VF78").unwrap(),
        p
    );
    assert_eq!(p.network(), Network::Mainnet);
    assert!(p.is_single_sig());
    assert_eq!(NetworkFilter::default(), NetworkFilter::ANY);
    assert!(!NetworkFilter::MAINNET_ONLY.accepts(Network::Testnet));
}
