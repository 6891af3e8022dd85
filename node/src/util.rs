//! Conversions and the bridge from napi's async functions to the core runtime.

use std::future::Future;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use snap2p::identity::c32;
use snap2p::{host, Error, Network, Principal};

use crate::error::{invalid, ResultExt};

/// Runs `fut` on the core's shared runtime (`host::run`), where every snap2p task lives,
/// and awaits it from napi's side. napi resolves the JavaScript Promise when this returns;
/// the JavaScript thread is never blocked.
pub async fn on_core<T, F>(fut: F) -> napi::Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
{
    host::run(fut).await.js()
}

/// `"mainnet"` (the default) or `"testnet"`.
pub fn parse_network(s: Option<&str>) -> napi::Result<Network> {
    host::parse_network(s.unwrap_or("mainnet")).js()
}

pub fn network_name(n: Network) -> String {
    host::network_name(n).to_string()
}

pub fn parse_principal(s: &str) -> napi::Result<Principal> {
    Principal::parse(s).js()
}

/// The parts of a Stacks principal.
#[napi(object)]
pub struct PrincipalInfo {
    /// Canonical `stacks:<address>`.
    pub principal: String,
    pub address: String,
    pub version: u32,
    pub hash160: Buffer,
    pub network: String,
    pub single_sig: bool,
}

fn info(p: &Principal) -> PrincipalInfo {
    PrincipalInfo {
        principal: p.to_string(),
        address: p.address(),
        version: p.version() as u32,
        hash160: p.hash160().to_vec().into(),
        network: network_name(p.network()),
        single_sig: p.is_single_sig(),
    }
}

/// Strictly parses `stacks:<address>` (checksum verified, canonical spelling).
#[napi]
pub fn parse_principal_info(principal: String) -> napi::Result<PrincipalInfo> {
    Ok(info(&parse_principal(&principal)?))
}

/// The principal of an address version and hash160.
#[napi]
pub fn principal_from_parts(version: u32, hash160: Buffer) -> napi::Result<PrincipalInfo> {
    let version = u8::try_from(version).map_err(|_| invalid("version must be 0..=255"))?;
    let hash: [u8; 20] = hash160
        .as_ref()
        .try_into()
        .map_err(|_| invalid(format!("hash160 is {} bytes, not 20", hash160.len())))?;
    Ok(info(&Principal::new(version, hash).js()?))
}

/// Crockford-style base32 of Stacks (no checksum).
#[napi]
pub fn c32_encode(data: Buffer) -> String {
    c32::c32_encode(&data)
}

#[napi]
pub fn c32_decode(text: String) -> napi::Result<Buffer> {
    Ok(c32::c32_decode(&text).js()?.into())
}

/// SHA-256 of the Stacks signed-message prefix and `message` (what wallets sign).
#[napi]
pub fn stacks_message_hash(message: String) -> Buffer {
    snap2p::identity::stacks_message_hash(&message)
        .to_vec()
        .into()
}

/// Normalises an alias the way AliasCards do (NFKC, lower case, forbidden characters).
#[napi]
pub fn normalize_alias(alias: String) -> napi::Result<String> {
    snap2p::identity::normalize_alias(&alias).js()
}

/// Recovers the principal that made a 65-byte signature over a 32-byte digest.
#[napi]
pub fn recover_principal(
    digest: Buffer,
    signature: Buffer,
    network: Option<String>,
) -> napi::Result<String> {
    let digest: [u8; 32] = digest
        .as_ref()
        .try_into()
        .map_err(|_| invalid(format!("digest is {} bytes, not 32", digest.len())))?;
    let network = parse_network(network.as_deref())?;
    Ok(
        snap2p::identity::recover_principal(&digest, &signature, network)
            .js()?
            .to_string(),
    )
}
