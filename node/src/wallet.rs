//! Wallets: the local wallet (BIP39), the encrypted wallet store, and the host-side
//! signer (any JavaScript object with `principal` and an async `sign`).

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;
use snap2p::host::CallbackSigner;
use snap2p::identity::{ScryptParams, WalletInfo};
use snap2p::{
    Error, ErrorCode, LocalWallet, SignRequest, SignatureForm, WalletSigner, WalletStore,
};

use crate::error::{invalid, ResultExt};
use crate::peer::{create_with_signer, NativePeer, PeerOptions};
use crate::util::{network_name, on_core, parse_network, parse_principal};

/// A BIP39 wallet held in memory (account `accountIndex` of its mnemonic).
#[napi]
pub struct NativeWallet {
    inner: Arc<LocalWallet>,
}

#[napi]
impl NativeWallet {
    #[napi(factory)]
    pub fn generate(network: Option<String>) -> napi::Result<Self> {
        let network = parse_network(network.as_deref())?;
        Ok(NativeWallet {
            inner: Arc::new(LocalWallet::generate(network)),
        })
    }

    #[napi(factory)]
    pub fn from_mnemonic(
        mnemonic: String,
        account_index: Option<u32>,
        network: Option<String>,
    ) -> napi::Result<Self> {
        let network = parse_network(network.as_deref())?;
        let w = LocalWallet::from_mnemonic(&mnemonic, account_index.unwrap_or(0), network).js()?;
        Ok(NativeWallet { inner: Arc::new(w) })
    }

    #[napi(getter)]
    pub fn principal(&self) -> String {
        self.inner.principal().to_string()
    }

    #[napi(getter)]
    pub fn address(&self) -> String {
        self.inner.principal().address()
    }

    #[napi(getter)]
    pub fn network(&self) -> String {
        network_name(self.inner.network())
    }

    #[napi(getter)]
    pub fn account_index(&self) -> u32 {
        self.inner.account_index()
    }

    #[napi(getter)]
    pub fn public_key(&self) -> Buffer {
        self.inner.public_key().to_vec().into()
    }

    /// The 24 words. Secret: show it to the user only when they ask for a backup.
    #[napi]
    pub fn mnemonic(&self) -> String {
        self.inner.mnemonic()
    }

    /// A 65-byte recoverable signature (r ‖ s ‖ v) over a 32-byte digest.
    #[napi]
    pub fn sign_digest(&self, digest: Buffer) -> napi::Result<Buffer> {
        let digest: [u8; 32] = digest
            .as_ref()
            .try_into()
            .map_err(|_| invalid(format!("digest is {} bytes, not 32", digest.len())))?;
        Ok(self.inner.sign_digest(&digest).to_vec().into())
    }

    /// A 65-byte signature over `message` with the Stacks message prefix applied.
    #[napi]
    pub fn sign_message(&self, message: String) -> Buffer {
        self.inner.sign_message(&message).to_vec().into()
    }

    /// Signs a PermissionGrant (docs/PROTOCOL.md §33): `holder` may open `labels` on nodes
    /// owned by this wallet's principal; `form`: "message" (default) or "digest". Resolves
    /// with the wire bytes the holder presents with `connection.presentGrant`.
    #[napi]
    pub async fn issue_grant(
        &self,
        holder: String,
        labels: Vec<String>,
        ttl_secs: Option<i64>,
        delegable: Option<bool>,
        parent: Option<Buffer>,
        form: Option<String>,
    ) -> napi::Result<Buffer> {
        let wallet = self.grant_wallet(form)?;
        let req = grant_request(holder, labels, ttl_secs, delegable, parent)?;
        let bytes = on_core(async move {
            snap2p::identity::PermissionGrant::issue(&wallet, req, snap2p::unix_now())
                .await
                .map(|g| g.encode())
        })
        .await?;
        Ok(bytes.into())
    }

    /// [`Self::issue_grant`] at a given `issued_at` with a given 32-byte `nonce`: the same
    /// inputs give the same wire bytes (deterministic signatures), so shared vectors can be
    /// re-issued. Resolves with the wire bytes.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub async fn issue_grant_with_nonce(
        &self,
        holder: String,
        labels: Vec<String>,
        issued_at: i64,
        ttl_secs: i64,
        nonce: Buffer,
        delegable: Option<bool>,
        parent: Option<Buffer>,
        form: Option<String>,
    ) -> napi::Result<Buffer> {
        let wallet = self.grant_wallet(form)?;
        let req = grant_request(holder, labels, Some(ttl_secs), delegable, parent)?;
        let nonce = nonce.to_vec();
        let bytes = on_core(async move {
            snap2p::identity::PermissionGrant::issue_with_nonce(&wallet, req, issued_at, nonce)
                .await
                .map(|g| g.encode())
        })
        .await?;
        Ok(bytes.into())
    }

    /// Creates a peer whose attestations this wallet signs.
    #[napi]
    pub async fn create_peer(&self, options: Option<PeerOptions>) -> napi::Result<NativePeer> {
        let signer: Arc<dyn WalletSigner> = self.inner.clone();
        create_with_signer(signer, options.unwrap_or_default()).await
    }
}

/// What the store shows about a wallet without unlocking it.
#[napi(object)]
pub struct WalletInfoJs {
    pub id: String,
    pub name: String,
    pub address: String,
    pub principal: String,
    pub network: String,
    pub created_at: String,
}

impl From<WalletInfo> for WalletInfoJs {
    fn from(w: WalletInfo) -> Self {
        WalletInfoJs {
            principal: format!("{}{}", snap2p::identity::PRINCIPAL_PREFIX, w.address),
            id: w.id,
            name: w.name,
            address: w.address,
            network: network_name(w.network),
            created_at: w.created_at,
        }
    }
}

/// The encrypted wallet store (`~/.snap2p/wallets`, the TypeScript implementation's
/// format). Key derivation (scrypt) is slow by design, so every operation runs on the
/// core runtime's blocking pool and returns a Promise.
#[napi]
pub struct NativeWalletStore {
    inner: Arc<WalletStore>,
}

/// Runs blocking store work (file I/O, scrypt) off the JavaScript thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> napi::Result<T> {
    on_core(async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::new(ErrorCode::Internal, format!("wallet task failed: {e}")))?
    })
    .await
}

#[napi]
impl NativeWalletStore {
    /// Opens (creating it if needed) the store at `dir`, or the default directory
    /// (`$SNAP2P_WALLET_DIR`, else `~/.snap2p/wallets`). `scryptLogN` lowers the key
    /// derivation cost for tests only.
    #[napi(factory)]
    pub fn open(dir: Option<String>, scrypt_log_n: Option<u32>) -> napi::Result<Self> {
        let mut store = match dir {
            Some(d) => WalletStore::open(d),
            None => WalletStore::open_default(),
        }
        .js()?;
        if let Some(log_n) = scrypt_log_n {
            let log_n = u8::try_from(log_n)
                .ok()
                .filter(|n| (10..=20).contains(n))
                .ok_or_else(|| invalid("scryptLogN must be between 10 and 20"))?;
            store = store.with_scrypt_params(ScryptParams {
                log_n,
                ..ScryptParams::DEFAULT
            });
        }
        Ok(NativeWalletStore {
            inner: Arc::new(store),
        })
    }

    #[napi(getter)]
    pub fn dir(&self) -> String {
        self.inner.dir().display().to_string()
    }

    #[napi]
    pub async fn list(&self) -> napi::Result<Vec<WalletInfoJs>> {
        let s = self.inner.clone();
        let list = blocking(move || s.list()).await?;
        Ok(list.into_iter().map(Into::into).collect())
    }

    #[napi]
    pub async fn find(&self, name_or_id: String) -> napi::Result<WalletInfoJs> {
        let s = self.inner.clone();
        Ok(blocking(move || s.find(&name_or_id)).await?.into())
    }

    #[napi]
    pub async fn create(
        &self,
        name: String,
        password: String,
        network: Option<String>,
    ) -> napi::Result<NativeWallet> {
        let network = parse_network(network.as_deref())?;
        let s = self.inner.clone();
        let (_, w) = blocking(move || s.create(&name, &password, network)).await?;
        Ok(NativeWallet { inner: Arc::new(w) })
    }

    #[napi]
    pub async fn restore(
        &self,
        name: String,
        mnemonic: String,
        password: String,
        network: Option<String>,
    ) -> napi::Result<NativeWallet> {
        let network = parse_network(network.as_deref())?;
        let s = self.inner.clone();
        let (_, w) = blocking(move || s.restore(&name, &mnemonic, &password, network)).await?;
        Ok(NativeWallet { inner: Arc::new(w) })
    }

    #[napi]
    pub async fn unlock(&self, name_or_id: String, password: String) -> napi::Result<NativeWallet> {
        let s = self.inner.clone();
        let w = blocking(move || s.unlock(&name_or_id, &password)).await?;
        Ok(NativeWallet { inner: Arc::new(w) })
    }

    #[napi]
    pub async fn rename(&self, name_or_id: String, new_name: String) -> napi::Result<WalletInfoJs> {
        let s = self.inner.clone();
        Ok(blocking(move || s.rename(&name_or_id, &new_name))
            .await?
            .into())
    }

    #[napi]
    pub async fn delete(&self, name_or_id: String) -> napi::Result<()> {
        let s = self.inner.clone();
        blocking(move || s.delete(&name_or_id)).await
    }

    #[napi]
    pub async fn export_mnemonic(
        &self,
        name_or_id: String,
        password: String,
    ) -> napi::Result<String> {
        let s = self.inner.clone();
        blocking(move || s.export_mnemonic(&name_or_id, &password)).await
    }
}

/// What a host signer is asked to sign: `{kind: 'digest', digest}` or
/// `{kind: 'message', message}`.
#[napi(object)]
pub struct SignRequestJs {
    pub kind: String,
    pub digest: Option<Buffer>,
    pub message: Option<String>,
}

/// The JavaScript signing function: `(request) => Promise<Buffer>`. Weak (the last
/// const parameter) so that holding a signer never keeps the process alive; while a
/// signature is awaited, the pending operation's own Promise does.
pub type SignFn =
    ThreadsafeFunction<SignRequestJs, Promise<Buffer>, SignRequestJs, Status, false, true>;

/// Creates a peer whose attestations and AliasCards are signed by JavaScript (a browser
/// extension bridge, a hardware wallet). `form` is `"digest"` (default) or `"message"`
/// (the signer applies the Stacks message prefix, as wallet "sign message" APIs do).
#[napi]
pub async fn create_peer_with_signer(
    principal: String,
    form: Option<String>,
    sign: SignFn,
    options: Option<PeerOptions>,
) -> napi::Result<NativePeer> {
    let signer = js_signer(&principal, form, sign)?;
    create_with_signer(signer, options.unwrap_or_default()).await
}

impl NativeWallet {
    /// This wallet signing grants in `form` ("message", the default, or "digest").
    fn grant_wallet(&self, form: Option<String>) -> napi::Result<snap2p::identity::LocalWallet> {
        let form: snap2p::SignatureForm = form.as_deref().unwrap_or("message").parse().js()?;
        Ok((*self.inner).clone().with_form(form))
    }
}

/// The core's grant request from the JavaScript arguments (ttl default: the core's).
fn grant_request(
    holder: String,
    labels: Vec<String>,
    ttl_secs: Option<i64>,
    delegable: Option<bool>,
    parent: Option<Buffer>,
) -> napi::Result<snap2p::identity::GrantRequest> {
    Ok(snap2p::identity::GrantRequest {
        holder: parse_principal(&holder)?,
        labels,
        delegable: delegable.unwrap_or(false),
        parent: parent.map(|p| p.to_vec()),
        ttl_secs: ttl_secs.unwrap_or(snap2p::identity::PermissionGrant::DEFAULT_TTL_SECS),
    })
}

/// Signs a PermissionGrant (docs/PROTOCOL.md §33) with a JavaScript signer, as
/// [`create_peer_with_signer`] takes it: a phone or browser wallet grants `holder` the
/// `labels` on its nodes. Resolves with the wire bytes.
#[napi]
#[allow(clippy::too_many_arguments)]
pub async fn issue_grant_with_signer(
    principal: String,
    form: Option<String>,
    sign: SignFn,
    holder: String,
    labels: Vec<String>,
    ttl_secs: Option<i64>,
    delegable: Option<bool>,
    parent: Option<Buffer>,
) -> napi::Result<Buffer> {
    let signer = js_signer(&principal, form, sign)?;
    let req = grant_request(holder, labels, ttl_secs, delegable, parent)?;
    let bytes = on_core(async move {
        snap2p::identity::PermissionGrant::issue(signer.as_ref(), req, snap2p::unix_now())
            .await
            .map(|g| g.encode())
    })
    .await?;
    Ok(bytes.into())
}

/// The core's host signer around a JavaScript signing function.
fn js_signer(
    principal: &str,
    form: Option<String>,
    sign: SignFn,
) -> napi::Result<Arc<CallbackSigner>> {
    let principal = parse_principal(principal)?;
    let form: SignatureForm = form.as_deref().unwrap_or("digest").parse().js()?;
    let sign = Arc::new(sign);
    let signer = CallbackSigner::new(principal, form, move |req| {
        let sign = sign.clone();
        Box::pin(async move {
            let req = match req {
                SignRequest::Digest(d) => SignRequestJs {
                    kind: "digest".into(),
                    digest: Some(d.to_vec().into()),
                    message: None,
                },
                SignRequest::Message(m) => SignRequestJs {
                    kind: "message".into(),
                    digest: None,
                    message: Some(m),
                },
            };
            // `call_async_catch`: a throwing signer must become an error, not a crash.
            let host_err = |e: napi::Error| {
                Error::new(
                    ErrorCode::WalletError,
                    format!("host signer failed: {}", e.reason),
                )
            };
            let promise = sign.call_async_catch(req).await.map_err(host_err)?;
            let sig = promise.await.map_err(host_err)?;
            Ok(sig.to_vec())
        })
    });
    Ok(signer)
}
