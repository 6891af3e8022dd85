//! Wallets, the encrypted wallet store and principal helpers.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use snap2p::identity::{self, c32, ScryptParams};
use snap2p::{LocalWallet as CoreWallet, Network, Principal, WalletStore as CoreStore};

use crate::error::{invalid, to_py};

pub fn parse_network(s: &str) -> PyResult<Network> {
    snap2p::host::parse_network(s).map_err(to_py)
}

/// Accepts `stacks:SP…` or a bare `SP…` address.
pub fn parse_principal_any(s: &str) -> PyResult<Principal> {
    let s = s.trim();
    if s.starts_with(identity::PRINCIPAL_PREFIX) {
        Principal::parse(s).map_err(to_py)
    } else {
        Principal::from_address(s).map_err(to_py)
    }
}

fn digest32(digest: &[u8]) -> PyResult<[u8; 32]> {
    digest
        .try_into()
        .map_err(|_| invalid(format!("digest must be 32 bytes, not {}", digest.len())))
}

/// A Stacks wallet whose key lives in this process (BIP39 mnemonic, account path
/// ``m/44'/5757'/0'/0/<index>``). Pass it to ``Peer.create(wallet=…)``.
#[pyclass(frozen, module = "snap2p")]
pub struct LocalWallet {
    pub(crate) inner: CoreWallet,
}

#[pymethods]
impl LocalWallet {
    /// A new wallet with a fresh 24-word mnemonic.
    #[staticmethod]
    #[pyo3(signature = (network = "mainnet"))]
    fn generate(network: &str) -> PyResult<Self> {
        Ok(LocalWallet {
            inner: CoreWallet::generate(parse_network(network)?),
        })
    }

    /// Restores account ``account_index`` of a 12- or 24-word English mnemonic.
    #[staticmethod]
    #[pyo3(signature = (mnemonic, account_index = 0, network = "mainnet"))]
    fn from_mnemonic(mnemonic: &str, account_index: u32, network: &str) -> PyResult<Self> {
        let network = parse_network(network)?;
        Ok(LocalWallet {
            inner: CoreWallet::from_mnemonic(mnemonic, account_index, network).map_err(to_py)?,
        })
    }

    /// Signs a PermissionGrant (docs/PROTOCOL.md §33): ``holder`` may open ``labels``
    /// (``x``, ``x*``, ``*``) on nodes owned by this wallet's principal; ``form`` is
    /// ``"message"`` (readable text) or ``"digest"``. Awaitable; returns the wire bytes the
    /// holder presents with ``Connection.present_grant``.
    #[pyo3(signature = (holder, labels, ttl_secs = 2_592_000, delegable = false, parent = None, form = "message"))]
    #[allow(clippy::too_many_arguments)]
    fn issue_grant<'py>(
        &self,
        py: Python<'py>,
        holder: &str,
        labels: Vec<String>,
        ttl_secs: i64,
        delegable: bool,
        parent: Option<Vec<u8>>,
        form: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (wallet, req) = self.grant_parts(form, holder, labels, ttl_secs, delegable, parent)?;
        crate::bridge::future_into_py(py, async move {
            let g = identity::PermissionGrant::issue(&wallet, req, snap2p::unix_now())
                .await
                .map_err(to_py)?;
            Ok(g.encode())
        })
    }

    /// ``issue_grant`` at a given ``issued_at`` with a given 32-byte ``nonce``: the same
    /// inputs give the same wire bytes (deterministic signatures), so shared vectors can be
    /// re-issued.
    #[pyo3(signature = (holder, labels, issued_at, ttl_secs, nonce, delegable = false, parent = None, form = "message"))]
    #[allow(clippy::too_many_arguments)]
    fn issue_grant_with_nonce<'py>(
        &self,
        py: Python<'py>,
        holder: &str,
        labels: Vec<String>,
        issued_at: i64,
        ttl_secs: i64,
        nonce: Vec<u8>,
        delegable: bool,
        parent: Option<Vec<u8>>,
        form: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (wallet, req) = self.grant_parts(form, holder, labels, ttl_secs, delegable, parent)?;
        crate::bridge::future_into_py(py, async move {
            let g = identity::PermissionGrant::issue_with_nonce(&wallet, req, issued_at, nonce)
                .await
                .map_err(to_py)?;
            Ok(g.encode())
        })
    }

    /// ``stacks:SP…``
    #[getter]
    fn principal(&self) -> String {
        self.inner.principal().to_string()
    }

    /// The bare address (``SP…`` / ``ST…``).
    #[getter]
    fn address(&self) -> String {
        self.inner.principal().address()
    }

    #[getter]
    fn network(&self) -> &'static str {
        snap2p::host::network_name(self.inner.network())
    }

    #[getter]
    fn account_index(&self) -> u32 {
        self.inner.account_index()
    }

    /// The 33-byte compressed secp256k1 public key.
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.public_key())
    }

    /// The mnemonic phrase (a secret: never log it).
    fn mnemonic(&self) -> String {
        self.inner.mnemonic()
    }

    /// A 65-byte recoverable signature (r ‖ s ‖ v) over a 32-byte digest.
    fn sign_digest<'py>(&self, py: Python<'py>, digest: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let d = digest32(digest)?;
        let sig = py.detach(|| self.inner.sign_digest(&d));
        Ok(PyBytes::new(py, &sig))
    }

    /// A 65-byte signature over a text with the Stacks message prefix applied.
    fn sign_message<'py>(&self, py: Python<'py>, message: &str) -> Bound<'py, PyBytes> {
        let sig = py.detach(|| self.inner.sign_message(message));
        PyBytes::new(py, &sig)
    }

    fn __repr__(&self) -> String {
        format!(
            "LocalWallet(principal={:?})",
            self.inner.principal().to_string()
        )
    }
}

/// What a wallet store lists (no secret in it).
#[pyclass(frozen, get_all, module = "snap2p")]
pub struct WalletInfo {
    /// 32 hex characters; the file is ``<id>.wallet.json``.
    id: String,
    name: String,
    address: String,
    network: &'static str,
    created_at: String,
}

#[pymethods]
impl WalletInfo {
    fn __repr__(&self) -> String {
        format!(
            "WalletInfo(id={:?}, name={:?}, address={:?}, network={:?})",
            self.id, self.name, self.address, self.network
        )
    }
}

impl From<identity::WalletInfo> for WalletInfo {
    fn from(w: identity::WalletInfo) -> Self {
        WalletInfo {
            id: w.id,
            name: w.name,
            address: w.address,
            network: snap2p::host::network_name(w.network),
            created_at: w.created_at,
        }
    }
}

/// A directory of password-encrypted wallets (the TypeScript tool's format).
///
/// Methods are synchronous (local files) but release the GIL: key derivation (scrypt) takes
/// about half a second; in asyncio code call them through ``asyncio.to_thread``.
#[pyclass(frozen, module = "snap2p")]
pub struct WalletStore {
    inner: CoreStore,
}

#[pymethods]
impl WalletStore {
    /// Opens (creating it if needed) the store at ``path``; by default
    /// ``$SNAP2P_WALLET_DIR`` or ``~/.snap2p/wallets``. ``scrypt_log_n`` lowers the key
    /// derivation cost for tests (default 17, as the TypeScript tool).
    #[new]
    #[pyo3(signature = (path = None, *, scrypt_log_n = None))]
    fn new(py: Python<'_>, path: Option<PathBuf>, scrypt_log_n: Option<u8>) -> PyResult<Self> {
        let store = py
            .detach(|| match path {
                Some(p) => CoreStore::open(p),
                None => CoreStore::open_default(),
            })
            .map_err(to_py)?;
        let store = match scrypt_log_n {
            Some(log_n) if !(1..=24).contains(&log_n) => {
                return Err(invalid("scrypt_log_n must be between 1 and 24"))
            }
            Some(log_n) => store.with_scrypt_params(ScryptParams {
                log_n,
                ..ScryptParams::DEFAULT
            }),
            None => store,
        };
        Ok(WalletStore { inner: store })
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.dir().to_path_buf()
    }

    /// Creates a wallet with a fresh mnemonic; returns ``(info, wallet)``.
    #[pyo3(signature = (name, password, network = "mainnet"))]
    fn create(
        &self,
        py: Python<'_>,
        name: &str,
        password: &str,
        network: &str,
    ) -> PyResult<(WalletInfo, LocalWallet)> {
        let network = parse_network(network)?;
        let (info, wallet) = py
            .detach(|| self.inner.create(name, password, network))
            .map_err(to_py)?;
        Ok((info.into(), LocalWallet { inner: wallet }))
    }

    /// Stores an existing mnemonic (account 0); returns ``(info, wallet)``.
    #[pyo3(signature = (name, mnemonic, password, network = "mainnet"))]
    fn restore(
        &self,
        py: Python<'_>,
        name: &str,
        mnemonic: &str,
        password: &str,
        network: &str,
    ) -> PyResult<(WalletInfo, LocalWallet)> {
        let network = parse_network(network)?;
        let (info, wallet) = py
            .detach(|| self.inner.restore(name, mnemonic, password, network))
            .map_err(to_py)?;
        Ok((info.into(), LocalWallet { inner: wallet }))
    }

    /// Every wallet, oldest first.
    fn list(&self, py: Python<'_>) -> PyResult<Vec<WalletInfo>> {
        let all = py.detach(|| self.inner.list()).map_err(to_py)?;
        Ok(all.into_iter().map(Into::into).collect())
    }

    /// Decrypts a wallet (by id or name). A wrong password raises code 24 (ERR_WALLET).
    fn unlock(&self, py: Python<'_>, name_or_id: &str, password: &str) -> PyResult<LocalWallet> {
        let wallet = py
            .detach(|| self.inner.unlock(name_or_id, password))
            .map_err(to_py)?;
        Ok(LocalWallet { inner: wallet })
    }

    fn rename(&self, py: Python<'_>, name_or_id: &str, new_name: &str) -> PyResult<WalletInfo> {
        let info = py
            .detach(|| self.inner.rename(name_or_id, new_name))
            .map_err(to_py)?;
        Ok(info.into())
    }

    fn delete(&self, py: Python<'_>, name_or_id: &str) -> PyResult<()> {
        py.detach(|| self.inner.delete(name_or_id)).map_err(to_py)
    }

    /// The mnemonic of a wallet (password required).
    fn export(&self, py: Python<'_>, name_or_id: &str, password: &str) -> PyResult<String> {
        py.detach(|| self.inner.export_mnemonic(name_or_id, password))
            .map_err(to_py)
    }

    fn __repr__(&self) -> String {
        format!("WalletStore({:?})", self.inner.dir())
    }
}

/// Validates a principal in its canonical ``stacks:<address>`` form (as the protocol
/// carries it) and returns it; raises code 25 if the prefix, checksum, version or
/// characters are wrong. (Arguments such as ``allowlist`` also take bare addresses.)
#[pyfunction]
pub fn parse_principal(principal: &str) -> PyResult<String> {
    Ok(Principal::parse(principal).map_err(to_py)?.to_string())
}

/// The single-sig principal of a 33-byte compressed public key.
#[pyfunction]
#[pyo3(signature = (public_key, network = "mainnet"))]
pub fn principal_from_public_key(public_key: &[u8], network: &str) -> PyResult<String> {
    let pk: [u8; 33] = public_key
        .try_into()
        .map_err(|_| invalid("public key must be 33 bytes (compressed SEC1)"))?;
    Ok(Principal::from_public_key(&pk, parse_network(network)?).to_string())
}

/// The c32check address of a version byte and a 20-byte hash160.
#[pyfunction]
pub fn c32_address(version: u8, hash160: &[u8]) -> PyResult<String> {
    if hash160.len() != 20 {
        return Err(invalid("hash160 must be 20 bytes"));
    }
    Ok(
        Principal::new(version, hash160.try_into().expect("20 bytes"))
            .map_err(to_py)?
            .address(),
    )
}

/// ``(version, hash160)`` of a c32check address.
#[pyfunction]
pub fn c32_address_decode<'py>(
    py: Python<'py>,
    address: &str,
) -> PyResult<(u8, Bound<'py, PyBytes>)> {
    let (version, hash) = c32::c32_address_decode(address).map_err(to_py)?;
    Ok((version, PyBytes::new(py, &hash)))
}

/// Plain c32 (Crockford base32 as Stacks uses it) of some bytes.
#[pyfunction]
pub fn c32_encode(data: &[u8]) -> String {
    c32::c32_encode(data)
}

/// SHA-256 of a text with the Stacks message prefix: what ``sign_message`` signs.
#[pyfunction]
pub fn stacks_message_hash<'py>(py: Python<'py>, message: &str) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &identity::stacks_message_hash(message))
}

/// Checks that a 65-byte signature over ``digest`` was made by ``principal``'s key;
/// raises code 6 (ERR_AUTH_INVALID) otherwise.
#[pyfunction]
pub fn verify_signature(
    py: Python<'_>,
    digest: &[u8],
    signature: &[u8],
    principal: &str,
) -> PyResult<()> {
    let d = digest32(digest)?;
    let p = parse_principal_any(principal)?;
    py.detach(|| identity::verify_principal_signature(&d, signature, &p))
        .map_err(to_py)
}

/// Normalises an alias as AliasCards do (NFKC, lowercase, trimmed); raises code 25 if it
/// is empty, too long or has forbidden characters.
#[pyfunction]
pub fn normalize_alias(alias: &str) -> PyResult<String> {
    identity::normalize_alias(alias).map_err(to_py)
}

/// A signed, self-asserted handle and display name of a principal.
#[pyclass(frozen, get_all, module = "snap2p")]
pub struct AliasCard {
    /// ``stacks:SP…`` that signed the card.
    principal: String,
    /// Normalised alias (NFKC, lowercase).
    alias: String,
    display_name: String,
    issued_at: i64,
    expires_at: i64,
}

impl From<snap2p::AliasCard> for AliasCard {
    fn from(c: snap2p::AliasCard) -> Self {
        AliasCard {
            principal: c.principal.to_string(),
            alias: c.alias,
            display_name: c.display_name,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
        }
    }
}

#[pymethods]
impl AliasCard {
    fn __repr__(&self) -> String {
        format!(
            "AliasCard(alias={:?}, display_name={:?}, principal={:?})",
            self.alias, self.display_name, self.principal
        )
    }
}

impl LocalWallet {
    /// This wallet signing in `form` ("message" or "digest") and the core's grant request:
    /// what `issue_grant` and `issue_grant_with_nonce` both sign.
    fn grant_parts(
        &self,
        form: &str,
        holder: &str,
        labels: Vec<String>,
        ttl_secs: i64,
        delegable: bool,
        parent: Option<Vec<u8>>,
    ) -> PyResult<(CoreWallet, identity::GrantRequest)> {
        let form: snap2p::SignatureForm = form.parse().map_err(to_py)?;
        let req = identity::GrantRequest {
            holder: parse_principal_any(holder)?,
            labels,
            delegable,
            parent,
            ttl_secs,
        };
        Ok((self.inner.clone().with_form(form), req))
    }
}
