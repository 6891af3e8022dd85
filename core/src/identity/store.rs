//! The encrypted wallet store, file-compatible with the TypeScript reference.
//!
//! Layout of the directory (default `~/.snap2p/wallets`, `SNAP2P_WALLET_DIR` overrides):
//! - `<id>.wallet.json`: `{version, network, address, displayName, createdAt, crypto:
//!   {salt, iv, tag, ciphertext, kdf: "scrypt"}}`, binary fields base64; the plaintext is
//!   the mnemonic, AES-256-GCM under scrypt(password, salt, N=2^17, r=8, p=1, 32 bytes);
//! - `registry.json`: `{version: 1, accounts: [{id, address, displayName, createdAt,
//!   lastUsed}], currentAccountId}`.
//!
//! The wallet files are the source of truth for [`WalletStore::list`]; the registry is
//! kept up to date for the TS implementation. Every write goes to a temporary file in
//! the same directory, is fsynced, then renamed over the target, so a crash never leaves
//! a half-written wallet.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::principal::Network;
use super::signed::iso8601_millis;
use super::wallet::LocalWallet;
use crate::error::{Error, ErrorCode, Result};

/// Shortest password accepted by [`WalletStore::create`] and [`WalletStore::restore`]
/// (in Unicode scalar values).
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest wallet display name, in characters.
pub const MAX_WALLET_NAME_LEN: usize = 64;
/// Environment variable overriding the default wallet directory.
pub const WALLET_DIR_ENV: &str = "SNAP2P_WALLET_DIR";

const WALLET_FILE_VERSION: u32 = 1;
const REGISTRY_FILE: &str = "registry.json";
const WALLET_SUFFIX: &str = ".wallet.json";
const SALT_LEN: usize = 16;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// scrypt cost parameters. The file format does not record them, so a store only reads
/// files written with the same parameters; anything meant to interoperate uses
/// [`ScryptParams::DEFAULT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScryptParams {
    pub log_n: u8,
    pub r: u32,
    pub p: u32,
}

impl ScryptParams {
    /// N = 2^17, r = 8, p = 1: the TS reference's parameters (128 MiB, ~0.5 s).
    pub const DEFAULT: ScryptParams = ScryptParams {
        log_n: 17,
        r: 8,
        p: 1,
    };
}

impl Default for ScryptParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A `*.wallet.json` file [`WalletStore::scan`] could not read. The store reports it and
/// never modifies or deletes it: it may be the only copy of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableWallet {
    /// The id its file name carries.
    pub id: String,
    pub path: PathBuf,
    /// What is wrong with it (truncated JSON, a missing field, an unknown network…).
    pub problem: String,
}

impl std::fmt::Display for UnreadableWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// What [`WalletStore::scan`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalletScan {
    /// The readable wallets, oldest first.
    pub wallets: Vec<WalletInfo>,
    /// The wallet files that could not be read, by path.
    pub unreadable: Vec<UnreadableWallet>,
}

/// What [`WalletStore::list`] shows about a wallet without unlocking it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletInfo {
    /// 32 lowercase hex characters; the file is `<id>.wallet.json`.
    pub id: String,
    /// The display name (`displayName`).
    pub name: String,
    /// The account-0 address (`SP…`/`ST…`).
    pub address: String,
    pub network: Network,
    /// ISO 8601 creation time as written by JavaScript's `Date.toISOString()`.
    pub created_at: String,
}

#[derive(Serialize, Deserialize)]
struct CryptoSection {
    salt: String,
    iv: String,
    tag: String,
    ciphertext: String,
    kdf: String,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WalletFile {
    version: u32,
    network: String,
    address: String,
    display_name: String,
    created_at: String,
    crypto: CryptoSection,
    // Unknown fields written by other implementations survive a rename.
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct RegistryAccount {
    id: String,
    address: String,
    display_name: String,
    created_at: String,
    last_used: String,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Registry {
    version: u32,
    accounts: Vec<RegistryAccount>,
    current_account_id: Option<String>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            version: 1,
            accounts: Vec::new(),
            current_account_id: None,
            extra: serde_json::Map::new(),
        }
    }
}

fn wallet_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::WalletError, msg)
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    wallet_err(format!("{what} {}: {e}", path.display()))
}

fn now_iso() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    iso8601_millis(ms)
}

fn is_wallet_id(id: &str) -> bool {
    // Ids name files: restricting them keeps every path inside the store directory.
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn validate_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            "wallet name is empty",
        ));
    }
    if name.chars().count() > MAX_WALLET_NAME_LEN {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("wallet name is longer than {MAX_WALLET_NAME_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            "wallet name contains control characters",
        ));
    }
    Ok(())
}

fn validate_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("password must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

/// A directory of encrypted wallets.
#[derive(Clone, Debug)]
pub struct WalletStore {
    dir: PathBuf,
    scrypt: ScryptParams,
}

impl WalletStore {
    /// `$SNAP2P_WALLET_DIR` if set, else `$HOME/.snap2p/wallets`.
    pub fn default_dir() -> Result<PathBuf> {
        if let Some(dir) = std::env::var_os(WALLET_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| wallet_err("cannot find the home directory (HOME is not set)"))?;
        Ok(PathBuf::from(home).join(".snap2p").join("wallets"))
    }

    pub fn open_default() -> Result<Self> {
        Self::open(Self::default_dir()?)
    }

    /// Opens (creating it, mode 0700, if needed) the store at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&dir)
            .map_err(|e| io_err("cannot create wallet directory", &dir, e))?;
        Ok(WalletStore {
            dir,
            scrypt: ScryptParams::DEFAULT,
        })
    }

    /// The same store using other scrypt parameters (tests; see [`ScryptParams`]).
    pub fn with_scrypt_params(mut self, params: ScryptParams) -> Self {
        self.scrypt = params;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn scrypt_params(&self) -> ScryptParams {
        self.scrypt
    }

    /// Creates a wallet with a fresh 24-word mnemonic.
    pub fn create(
        &self,
        name: &str,
        password: &str,
        network: Network,
    ) -> Result<(WalletInfo, LocalWallet)> {
        validate_name(name)?;
        validate_password(password)?;
        let wallet = LocalWallet::generate(network);
        let info = self.save_new(name, password, &wallet)?;
        Ok((info, wallet))
    }

    /// Stores an existing 12- or 24-word mnemonic (account 0).
    pub fn restore(
        &self,
        name: &str,
        mnemonic: &str,
        password: &str,
        network: Network,
    ) -> Result<(WalletInfo, LocalWallet)> {
        validate_name(name)?;
        validate_password(password)?;
        let wallet = LocalWallet::from_mnemonic(mnemonic, 0, network)?;
        let info = self.save_new(name, password, &wallet)?;
        Ok((info, wallet))
    }

    fn save_new(&self, name: &str, password: &str, wallet: &LocalWallet) -> Result<WalletInfo> {
        if self.list()?.iter().any(|w| w.name == name) {
            return Err(wallet_err(format!(
                "a wallet named {name:?} already exists"
            )));
        }
        let mut id_bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id_bytes);
        let id = hex::encode(id_bytes);
        let network = wallet.network();
        let address = wallet.principal().address();
        let created_at = now_iso();
        let mnemonic = Zeroizing::new(wallet.mnemonic());
        // The registry first: one that cannot be read fails the command before any file
        // is written (never half a wallet), and is never overwritten.
        let mut reg = self.read_registry()?;
        let file = WalletFile {
            version: WALLET_FILE_VERSION,
            network: network.as_str().to_owned(),
            address: address.clone(),
            display_name: name.to_owned(),
            created_at: created_at.clone(),
            crypto: self.encrypt(password, mnemonic.as_bytes())?,
            extra: serde_json::Map::new(),
        };
        self.write_json(&format!("{id}{WALLET_SUFFIX}"), &file)?;
        reg.accounts.push(RegistryAccount {
            id: id.clone(),
            address: address.clone(),
            display_name: name.to_owned(),
            created_at: created_at.clone(),
            last_used: created_at.clone(),
            extra: serde_json::Map::new(),
        });
        reg.current_account_id = Some(id.clone());
        self.write_json(REGISTRY_FILE, &reg)?;
        Ok(WalletInfo {
            id,
            name: name.to_owned(),
            address,
            network,
            created_at,
        })
    }

    /// Every readable wallet file in the directory, oldest first. Files that cannot be read
    /// are left out (and left alone): [`WalletStore::scan`] names them.
    pub fn list(&self) -> Result<Vec<WalletInfo>> {
        Ok(self.scan()?.wallets)
    }

    /// Every `*.wallet.json` in the directory: the wallets (oldest first) and the files
    /// that could not be read, each with its problem (sorted by path). One bad file never
    /// hides the others, and the store never modifies or deletes it.
    pub fn scan(&self) -> Result<WalletScan> {
        let entries = fs::read_dir(&self.dir).map_err(|e| io_err("cannot read", &self.dir, e))?;
        let mut out = WalletScan::default();
        for entry in entries {
            let entry = entry.map_err(|e| io_err("cannot read", &self.dir, e))?;
            let file_name = entry.file_name();
            let Some(id) = file_name
                .to_str()
                .and_then(|n| n.strip_suffix(WALLET_SUFFIX))
                .filter(|id| is_wallet_id(id))
            else {
                continue;
            };
            match self
                .parse_wallet_file(id)
                .and_then(|file| info_of(id, &file))
            {
                Ok(info) => out.wallets.push(info),
                Err(problem) => out.unreadable.push(UnreadableWallet {
                    id: id.to_owned(),
                    path: self.wallet_path(id),
                    problem,
                }),
            }
        }
        out.wallets
            .sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        out.unreadable.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Finds a wallet by id, else by display name (which must then be unique).
    pub fn find(&self, name_or_id: &str) -> Result<WalletInfo> {
        let WalletScan {
            wallets,
            unreadable,
        } = self.scan()?;
        if let Some(w) = wallets.iter().find(|w| w.id == name_or_id) {
            return Ok(w.clone());
        }
        if let Some(bad) = unreadable.iter().find(|b| b.id == name_or_id) {
            return Err(wallet_err(format!("{bad} (the file is left as it is)")));
        }
        let mut named = wallets.into_iter().filter(|w| w.name == name_or_id);
        match (named.next(), named.next()) {
            (Some(w), None) => Ok(w),
            (Some(_), Some(_)) => Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("several wallets are named {name_or_id:?}; use the id"),
            )),
            (None, _) if unreadable.is_empty() => {
                Err(wallet_err(format!("no wallet named {name_or_id:?}")))
            }
            (None, _) => {
                let bad: Vec<String> = unreadable.iter().map(|b| b.to_string()).collect();
                Err(wallet_err(format!(
                    "no wallet named {name_or_id:?} among the readable ones; {} cannot be \
                     read (left as is): {}",
                    if bad.len() == 1 {
                        "one file"
                    } else {
                        "some files"
                    },
                    bad.join("; ")
                )))
            }
        }
    }

    /// Decrypts a wallet. A wrong password is `ERR_WALLET` "wrong password".
    pub fn unlock(&self, name_or_id: &str, password: &str) -> Result<LocalWallet> {
        let info = self.find(name_or_id)?;
        let file = self.read_wallet_file(&info.id)?;
        let plaintext = self.decrypt(password, &file.crypto)?;
        let phrase = std::str::from_utf8(&plaintext)
            .map_err(|_| wallet_err("decrypted secret is not a mnemonic"))?;
        let wallet = LocalWallet::from_mnemonic(phrase, 0, info.network).map_err(|e| {
            wallet_err(format!("decrypted secret is not a mnemonic: {}", e.message))
        })?;
        if wallet.principal().address() != file.address {
            return Err(wallet_err(format!(
                "wallet file address {} does not match its mnemonic ({})",
                file.address,
                wallet.principal().address()
            )));
        }
        // Registry bookkeeping (lastUsed, currentAccountId) is metadata for the TS tool;
        // failing to write it must not stop an unlock that already succeeded.
        let _ = self.touch_registry(&info);
        Ok(wallet)
    }

    /// Renames a wallet (display name in the wallet file and the registry).
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> Result<WalletInfo> {
        validate_name(new_name)?;
        let info = self.find(name_or_id)?;
        if self
            .list()?
            .iter()
            .any(|w| w.name == new_name && w.id != info.id)
        {
            return Err(wallet_err(format!(
                "a wallet named {new_name:?} already exists"
            )));
        }
        let mut reg = self.read_registry()?;
        let mut file = self.read_wallet_file(&info.id)?;
        file.display_name = new_name.to_owned();
        self.write_json(&format!("{}{WALLET_SUFFIX}", info.id), &file)?;
        match reg.accounts.iter_mut().find(|a| a.id == info.id) {
            Some(a) => a.display_name = new_name.to_owned(),
            None => reg.accounts.push(RegistryAccount {
                id: info.id.clone(),
                address: info.address.clone(),
                display_name: new_name.to_owned(),
                created_at: info.created_at.clone(),
                last_used: info.created_at.clone(),
                extra: serde_json::Map::new(),
            }),
        }
        self.write_json(REGISTRY_FILE, &reg)?;
        Ok(WalletInfo {
            name: new_name.to_owned(),
            ..info
        })
    }

    /// Deletes a wallet file and its registry entry.
    pub fn delete(&self, name_or_id: &str) -> Result<()> {
        let info = self.find(name_or_id)?;
        let mut reg = self.read_registry()?;
        let path = self.wallet_path(&info.id);
        fs::remove_file(&path).map_err(|e| io_err("cannot delete", &path, e))?;
        reg.accounts.retain(|a| a.id != info.id);
        if reg.current_account_id.as_deref() == Some(info.id.as_str()) {
            reg.current_account_id = reg.accounts.first().map(|a| a.id.clone());
        }
        self.write_json(REGISTRY_FILE, &reg)?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// The mnemonic of a wallet (password required).
    pub fn export_mnemonic(&self, name_or_id: &str, password: &str) -> Result<String> {
        Ok(self.unlock(name_or_id, password)?.mnemonic())
    }

    fn touch_registry(&self, info: &WalletInfo) -> Result<()> {
        let mut reg = self.read_registry()?;
        let now = now_iso();
        if let Some(a) = reg.accounts.iter_mut().find(|a| a.id == info.id) {
            a.last_used = now;
        }
        reg.current_account_id = Some(info.id.clone());
        self.write_json(REGISTRY_FILE, &reg)
    }

    fn derive_key(&self, password: &str, salt: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        let params = scrypt::Params::new(self.scrypt.log_n, self.scrypt.r, self.scrypt.p, KEY_LEN)
            .map_err(|e| wallet_err(format!("invalid scrypt parameters: {e}")))?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        scrypt::scrypt(password.as_bytes(), salt, &params, &mut key[..])
            .map_err(|e| wallet_err(format!("scrypt failed: {e}")))?;
        Ok(key)
    }

    fn encrypt(&self, password: &str, plaintext: &[u8]) -> Result<CryptoSection> {
        let mut salt = [0u8; SALT_LEN];
        let mut iv = [0u8; IV_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let key = self.derive_key(password, &salt)?;
        let cipher = Aes256Gcm::new_from_slice(&key[..]).expect("32-byte AES-256 key");
        let mut sealed = cipher
            .encrypt(Nonce::from_slice(&iv), plaintext)
            .map_err(|_| wallet_err("encryption failed"))?;
        // aes-gcm appends the tag; the file keeps it separately, as Node's getAuthTag().
        let tag = sealed.split_off(sealed.len() - TAG_LEN);
        Ok(CryptoSection {
            salt: B64.encode(salt),
            iv: B64.encode(iv),
            tag: B64.encode(tag),
            ciphertext: B64.encode(&sealed),
            kdf: "scrypt".to_owned(),
            extra: serde_json::Map::new(),
        })
    }

    fn decrypt(&self, password: &str, c: &CryptoSection) -> Result<Zeroizing<Vec<u8>>> {
        if c.kdf != "scrypt" {
            return Err(wallet_err(format!("unsupported kdf {:?}", c.kdf)));
        }
        let field = |name: &str, v: &str| {
            B64.decode(v)
                .map_err(|_| wallet_err(format!("wallet file field crypto.{name} is not base64")))
        };
        let salt = field("salt", &c.salt)?;
        let iv = field("iv", &c.iv)?;
        let tag = field("tag", &c.tag)?;
        let mut sealed = field("ciphertext", &c.ciphertext)?;
        if iv.len() != IV_LEN || tag.len() != TAG_LEN {
            return Err(wallet_err(format!(
                "unsupported iv/tag length {}/{} (expected {IV_LEN}/{TAG_LEN})",
                iv.len(),
                tag.len()
            )));
        }
        sealed.extend_from_slice(&tag);
        let key = self.derive_key(password, &salt)?;
        let cipher = Aes256Gcm::new_from_slice(&key[..]).expect("32-byte AES-256 key");
        cipher
            .decrypt(Nonce::from_slice(&iv), sealed.as_slice())
            .map(Zeroizing::new)
            .map_err(|_| wallet_err("wrong password (or corrupted wallet file)"))
    }

    fn wallet_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{WALLET_SUFFIX}"))
    }

    fn read_wallet_file(&self, id: &str) -> Result<WalletFile> {
        self.parse_wallet_file(id).map_err(|problem| {
            wallet_err(format!(
                "wallet file {}: {problem}",
                self.wallet_path(id).display()
            ))
        })
    }

    /// A wallet file, or what is wrong with it (without the path).
    fn parse_wallet_file(&self, id: &str) -> std::result::Result<WalletFile, String> {
        let path = self.wallet_path(id);
        let bytes = fs::read(&path).map_err(|e| format!("cannot read it: {e}"))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err("the file is empty".into());
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 text".to_string())?;
        serde_json::from_str(text).map_err(|e| format!("malformed wallet file: {e}"))
    }

    fn read_registry(&self) -> Result<Registry> {
        let path = self.dir.join(REGISTRY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| wallet_err(format!("malformed {}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
            Err(e) => Err(io_err("cannot read", &path, e)),
        }
    }

    /// Pretty JSON (2-space indent, as `JSON.stringify(v, null, 2)`), written atomically.
    fn write_json<T: Serialize>(&self, file_name: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| wallet_err(format!("cannot serialise {file_name}: {e}")))?;
        write_atomic(&self.dir, file_name, text.as_bytes())
    }
}

fn info_of(id: &str, file: &WalletFile) -> std::result::Result<WalletInfo, String> {
    let network: Network = file
        .network
        .parse()
        .map_err(|_| format!("unknown network {:?}", file.network))?;
    Ok(WalletInfo {
        id: id.to_owned(),
        name: file.display_name.clone(),
        address: file.address.clone(),
        network,
        created_at: file.created_at.clone(),
    })
}

/// Temp file (mode 0600) in the same directory → write → fsync → rename → fsync dir.
fn write_atomic(dir: &Path, file_name: &str, contents: &[u8]) -> Result<()> {
    let mut suffix = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    let tmp = dir.join(format!(".{file_name}.{}.tmp", hex::encode(suffix)));
    let target = dir.join(file_name);
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .map_err(|e| io_err("cannot create", &tmp, e))?;
        f.write_all(contents)
            .and_then(|_| f.sync_all())
            .map_err(|e| io_err("cannot write", &tmp, e))?;
        drop(f);
        fs::rename(&tmp, &target).map_err(|e| io_err("cannot replace", &target, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir);
    Ok(())
}

/// Makes a rename durable. Best effort: not every platform can fsync a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
