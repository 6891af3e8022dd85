//! Signers, the wallet store and principals.

use std::sync::Arc;

use snap2p::host::{CallbackSigner, SignFuture};
use snap2p::identity::{self as core_id, PRINCIPAL_PREFIX};
use snap2p::{ErrorCode, LocalWallet, WalletSigner};

use crate::error::{Result, Snap2pError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Network {
    Mainnet,
    Testnet,
}

impl From<Network> for snap2p::Network {
    fn from(n: Network) -> Self {
        match n {
            Network::Mainnet => snap2p::Network::Mainnet,
            Network::Testnet => snap2p::Network::Testnet,
        }
    }
}

impl From<snap2p::Network> for Network {
    fn from(n: snap2p::Network) -> Self {
        match n {
            snap2p::Network::Mainnet => Network::Mainnet,
            snap2p::Network::Testnet => Network::Testnet,
        }
    }
}

/// What a wallet signature covers (recorded on the wire as `sf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SignatureForm {
    /// secp256k1 over a 32-byte SHA-256 digest, no prefix.
    Digest,
    /// A wallet "sign message" over text; the signer applies the Stacks message prefix.
    StacksMessage,
}

impl From<SignatureForm> for snap2p::SignatureForm {
    fn from(f: SignatureForm) -> Self {
        match f {
            SignatureForm::Digest => snap2p::SignatureForm::Digest,
            SignatureForm::StacksMessage => snap2p::SignatureForm::StacksMessage,
        }
    }
}

impl From<snap2p::SignatureForm> for SignatureForm {
    fn from(f: snap2p::SignatureForm) -> Self {
        match f {
            snap2p::SignatureForm::Digest => SignatureForm::Digest,
            snap2p::SignatureForm::StacksMessage => SignatureForm::StacksMessage,
        }
    }
}

/// What a signer is asked to sign.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SignRequest {
    /// Sign exactly this 32-byte hash.
    Digest { digest: Vec<u8> },
    /// Sign this text as a wallet message (apply the Stacks message prefix).
    Message { text: String },
}

impl From<snap2p::SignRequest> for SignRequest {
    fn from(r: snap2p::SignRequest) -> Self {
        match r {
            snap2p::SignRequest::Digest(d) => SignRequest::Digest { digest: d.to_vec() },
            snap2p::SignRequest::Message(text) => SignRequest::Message { text },
        }
    }
}

impl TryFrom<SignRequest> for snap2p::SignRequest {
    type Error = Snap2pError;
    fn try_from(r: SignRequest) -> Result<Self> {
        Ok(match r {
            SignRequest::Digest { digest } => {
                snap2p::SignRequest::Digest(digest.as_slice().try_into().map_err(|_| {
                    Snap2pError::new(ErrorCode::InvalidArgument, "a digest is 32 bytes")
                })?)
            }
            SignRequest::Message { text } => snap2p::SignRequest::Message(text),
        })
    }
}

/// A wallet living in the host application (keychain, hardware or browser wallet) that
/// signs for the peer's principal. Implemented in Kotlin (`suspend fun sign`) or Swift
/// (`func sign(request:) async throws`). It must return a 65-byte recoverable signature
/// r ‖ s ‖ v; anything it throws reaches the peer as a typed `Snap2pError`.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait HostSigner: Send + Sync {
    async fn sign(&self, request: SignRequest) -> Result<Vec<u8>>;
}

/// Signs attestations and AliasCards for one Stacks principal.
#[derive(uniffi::Object)]
pub struct Signer {
    pub(crate) inner: Arc<dyn WalletSigner>,
}

impl Signer {
    fn local(wallet: LocalWallet) -> Arc<Self> {
        Arc::new(Signer {
            inner: Arc::new(wallet),
        })
    }
}

#[uniffi::export]
impl Signer {
    /// A fresh random wallet (24-word mnemonic, account 0).
    #[uniffi::constructor]
    pub fn generate(network: Network) -> Arc<Self> {
        Self::local(LocalWallet::generate(network.into()))
    }

    /// The wallet of a BIP-39 mnemonic (Stacks derivation path, `account_index`).
    #[uniffi::constructor(default(account_index = 0))]
    pub fn from_mnemonic(
        mnemonic: String,
        account_index: u32,
        network: Network,
    ) -> Result<Arc<Self>> {
        Ok(Self::local(LocalWallet::from_mnemonic(
            &mnemonic,
            account_index,
            network.into(),
        )?))
    }

    /// [`Self::from_mnemonic`] signing in `form` (the default is `Digest`).
    #[uniffi::constructor]
    pub fn from_mnemonic_with_form(
        mnemonic: String,
        account_index: u32,
        network: Network,
        form: SignatureForm,
    ) -> Result<Arc<Self>> {
        Ok(Self::local(
            LocalWallet::from_mnemonic(&mnemonic, account_index, network.into())?
                .with_form(form.into()),
        ))
    }

    /// A signer backed by the host application. `principal` is `stacks:SP…` or a bare
    /// single-sig address; signatures that do not match it are rejected by every peer.
    #[uniffi::constructor]
    pub fn from_host(
        principal: String,
        form: SignatureForm,
        host: Arc<dyn HostSigner>,
    ) -> Result<Arc<Self>> {
        let principal = parse(&principal)?;
        let signer = CallbackSigner::new(principal, form.into(), move |request| -> SignFuture {
            let host = host.clone();
            Box::pin(async move { host.sign(request.into()).await.map_err(snap2p::Error::from) })
        });
        Ok(Arc::new(Signer { inner: signer }))
    }

    /// `stacks:SP…`
    pub fn principal(&self) -> String {
        self.inner.principal().to_string()
    }

    /// The bare address `SP…`.
    pub fn address(&self) -> String {
        self.inner.principal().address()
    }

    pub fn signature_form(&self) -> SignatureForm {
        self.inner.signature_form().into()
    }

    /// Signs a PermissionGrant (docs/PROTOCOL.md §33) in this signer's form: `holder`
    /// may open `labels` (`x`, `x*`, `*`) on nodes owned by this principal for `ttl_secs`;
    /// `parent`: the grant this one is delegated from. Returns the wire bytes the holder
    /// presents with `Connection.presentGrant`.
    #[uniffi::method(default(delegable = false, parent = None))]
    pub async fn issue_grant(
        &self,
        holder: String,
        labels: Vec<String>,
        ttl_secs: i64,
        delegable: bool,
        parent: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let signer = self.inner.clone();
        let req = core_id::GrantRequest {
            holder: parse_principal_arg(&holder)?,
            labels,
            delegable,
            parent,
            ttl_secs,
        };
        crate::rt::on_runtime(async move {
            core_id::PermissionGrant::issue(signer.as_ref(), req, snap2p::unix_now())
                .await
                .map(|g| g.encode())
        })
        .await
    }

    /// [`Self::issue_grant`] at `issued_at` with a 32-byte `nonce`: the same inputs give
    /// the same wire bytes (deterministic signatures), so shared vectors can be re-issued.
    #[uniffi::method(default(delegable = false, parent = None))]
    #[allow(clippy::too_many_arguments)]
    pub async fn issue_grant_with_nonce(
        &self,
        holder: String,
        labels: Vec<String>,
        issued_at: i64,
        ttl_secs: i64,
        nonce: Vec<u8>,
        delegable: bool,
        parent: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let signer = self.inner.clone();
        let req = core_id::GrantRequest {
            holder: parse_principal_arg(&holder)?,
            labels,
            delegable,
            parent,
            ttl_secs,
        };
        crate::rt::on_runtime(async move {
            core_id::PermissionGrant::issue_with_nonce(signer.as_ref(), req, issued_at, nonce)
                .await
                .map(|g| g.encode())
        })
        .await
    }

    /// Signs through this signer (the host signer is awaited like the core would).
    pub async fn sign(&self, request: SignRequest) -> Result<Vec<u8>> {
        let signer = self.inner.clone();
        let request = snap2p::SignRequest::try_from(request)?;
        crate::rt::on_runtime(async move { signer.sign(request).await }).await
    }
}

fn parse(text: &str) -> Result<snap2p::Principal> {
    let text = text.trim();
    Ok(if text.starts_with(PRINCIPAL_PREFIX) {
        snap2p::Principal::parse(text)?
    } else {
        snap2p::Principal::from_address(text)?
    })
}

pub(crate) fn parse_principal_arg(text: &str) -> Result<snap2p::Principal> {
    parse(text)
}

/// A decoded Stacks principal.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PrincipalInfo {
    /// `stacks:SP…`
    pub principal: String,
    /// `SP…`
    pub address: String,
    pub version: u8,
    pub hash160: Vec<u8>,
    pub network: Network,
    pub single_sig: bool,
}

fn info(p: snap2p::Principal) -> PrincipalInfo {
    PrincipalInfo {
        principal: p.to_string(),
        address: p.address(),
        version: p.version(),
        hash160: p.hash160().to_vec(),
        network: p.network().into(),
        single_sig: p.is_single_sig(),
    }
}

/// Parses the strict `stacks:SP…` form (checksum verified, canonical spelling);
/// ERR_INVALID_ARGUMENT (25) otherwise. (Arguments elsewhere also take bare addresses.)
#[uniffi::export]
pub fn parse_principal(text: String) -> Result<PrincipalInfo> {
    Ok(info(snap2p::Principal::parse(&text)?))
}

/// Parses a bare address (`SP…`, `ST…`, `SM…`, `SN…`), checksum verified.
#[uniffi::export]
pub fn parse_address(address: String) -> Result<PrincipalInfo> {
    Ok(info(snap2p::Principal::from_address(&address)?))
}

/// The c32check address of a version byte and a 20-byte hash.
#[uniffi::export]
pub fn principal_from_hash160(version: u8, hash160: Vec<u8>) -> Result<String> {
    let hash: [u8; 20] = hash160
        .as_slice()
        .try_into()
        .map_err(|_| Snap2pError::new(ErrorCode::InvalidArgument, "hash160 is 20 bytes"))?;
    Ok(snap2p::Principal::new(version, hash)?.address())
}

/// SHA-256 of the Stacks-prefixed wallet message (what `SignRequest.Message` signs).
#[uniffi::export]
pub fn stacks_message_hash(message: String) -> Vec<u8> {
    core_id::stacks_message_hash(&message).to_vec()
}

/// Whether `signature` (65 bytes r ‖ s ‖ v) over `digest` was made by `principal`.
#[uniffi::export]
pub fn verify_signature(digest: Vec<u8>, signature: Vec<u8>, principal: String) -> Result<bool> {
    let principal = parse(&principal)?;
    let digest: [u8; 32] = digest
        .as_slice()
        .try_into()
        .map_err(|_| Snap2pError::new(ErrorCode::InvalidArgument, "a digest is 32 bytes"))?;
    Ok(
        core_id::recover_principal(&digest, &signature, principal.network())
            .map(|p| p == principal)
            .unwrap_or(false),
    )
}

/// A wallet in the store, as listed without unlocking it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WalletInfo {
    pub id: String,
    pub name: String,
    pub address: String,
    pub network: Network,
    pub created_at: String,
}

impl From<core_id::WalletInfo> for WalletInfo {
    fn from(w: core_id::WalletInfo) -> Self {
        WalletInfo {
            id: w.id,
            name: w.name,
            address: w.address,
            network: w.network.into(),
            created_at: w.created_at,
        }
    }
}

/// The encrypted wallet store (`~/.snap2p/wallets`, the TypeScript reference's format).
/// Calls run scrypt (about half a second): call them off the UI thread.
#[derive(uniffi::Object)]
pub struct WalletStore(core_id::WalletStore);

#[uniffi::export]
impl WalletStore {
    /// Opens (creating it if needed) the store in `dir`.
    #[uniffi::constructor]
    pub fn open(dir: String) -> Result<Arc<Self>> {
        Ok(Arc::new(WalletStore(core_id::WalletStore::open(dir)?)))
    }

    /// `$SNAP2P_WALLET_DIR`, else `$HOME/.snap2p/wallets`.
    #[uniffi::constructor]
    pub fn open_default() -> Result<Arc<Self>> {
        Ok(Arc::new(WalletStore(core_id::WalletStore::open_default()?)))
    }

    pub fn dir(&self) -> String {
        self.0.dir().display().to_string()
    }

    pub fn list(&self) -> Result<Vec<WalletInfo>> {
        Ok(self.0.list()?.into_iter().map(Into::into).collect())
    }

    pub fn create(&self, name: String, password: String, network: Network) -> Result<WalletInfo> {
        Ok(self.0.create(&name, &password, network.into())?.0.into())
    }

    pub fn restore(
        &self,
        name: String,
        mnemonic: String,
        password: String,
        network: Network,
    ) -> Result<WalletInfo> {
        Ok(self
            .0
            .restore(&name, &mnemonic, &password, network.into())?
            .0
            .into())
    }

    /// The wallet's signer; ERR_WALLET (24) on a wrong password or unknown wallet.
    pub fn unlock(&self, name_or_id: String, password: String) -> Result<Arc<Signer>> {
        Ok(Signer::local(self.0.unlock(&name_or_id, &password)?))
    }

    pub fn rename(&self, name_or_id: String, new_name: String) -> Result<WalletInfo> {
        Ok(self.0.rename(&name_or_id, &new_name)?.into())
    }

    pub fn delete(&self, name_or_id: String) -> Result<()> {
        Ok(self.0.delete(&name_or_id)?)
    }
}
