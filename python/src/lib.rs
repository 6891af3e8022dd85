//! Python bindings of snap2p (pyo3 + maturin), imported as `snap2p._snap2p` and re-exported
//! by the `snap2p` package (see `snap2p/__init__.py`).
//!
//! Every network or crypto wait runs as a Rust future on the core's shared tokio runtime
//! (`snap2p::host::runtime`), handed to asyncio as an awaitable; the GIL is not held while
//! it runs. The most frequent wait, `Stream.drain()`, is an asyncio future instead, which a
//! core thread completes by poking its loop (`bridge::LoopWake`) without entering Python. Python code (callbacks, host signers) is only entered from the blocking pool or
//! the event-loop thread, never from a tokio worker and never under a Rust lock; entries from
//! the blocking pool go through `bridge::attach`, which interpreter exit waits for.

use pyo3::prelude::*;

mod bridge;
mod discovery;
mod error;
mod events;
mod grant;
mod identity;
mod peer;
mod relay;
mod session;
mod signer;

#[pymodule]
fn _snap2p(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // One runtime for the core's own tasks and the binding's futures. Fails only if already
    // set (a second import in a sub-interpreter), which is fine.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(snap2p::host::runtime());
    bridge::install(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("PROTOCOL_PREFIX", snap2p::identity::PRINCIPAL_PREFIX)?;
    m.add_class::<peer::Peer>()?;
    m.add_class::<identity::AliasCard>()?;
    m.add_class::<peer::Invite>()?;
    m.add_class::<session::Connection>()?;
    m.add_class::<events::EventSubscription>()?;
    m.add_class::<events::PeerEvent>()?;
    m.add_class::<events::PeerStats>()?;
    m.add_class::<events::ConnectionStats>()?;
    m.add_class::<peer::ConnectionIterator>()?;
    m.add_class::<relay::ReservationInfo>()?;
    m.add_class::<grant::GrantInfo>()?;
    m.add_class::<discovery::ResolveReport>()?;
    m.add_class::<discovery::ResolvedLocator>()?;
    m.add_class::<discovery::ResolveStep>()?;
    m.add_class::<discovery::AdvertInfo>()?;
    m.add_class::<relay::RelayStats>()?;
    m.add_class::<session::StreamIterator>()?;
    m.add_class::<session::Stream>()?;
    m.add_class::<session::Subscription>()?;
    m.add_class::<session::_CancelFlag>()?;
    m.add_class::<bridge::LoopWake>()?;
    m.add_class::<signer::SignRequest>()?;
    m.add_class::<identity::LocalWallet>()?;
    m.add_class::<identity::WalletStore>()?;
    m.add_class::<identity::WalletInfo>()?;
    m.add_function(wrap_pyfunction!(error::error_name, m)?)?;
    m.add_function(wrap_pyfunction!(grant::decode_grant, m)?)?;
    m.add_function(wrap_pyfunction!(discovery::decode_advert, m)?)?;
    m.add_function(wrap_pyfunction!(discovery::verify_advert, m)?)?;
    m.add_function(wrap_pyfunction!(discovery::issue_advert, m)?)?;
    m.add_function(wrap_pyfunction!(grant::verify_grant, m)?)?;
    m.add_function(wrap_pyfunction!(grant::issue_grant, m)?)?;
    m.add_function(wrap_pyfunction!(grant::node_grant_decision, m)?)?;
    m.add_function(wrap_pyfunction!(error::_error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(identity::parse_principal, m)?)?;
    m.add_function(wrap_pyfunction!(identity::principal_from_public_key, m)?)?;
    m.add_function(wrap_pyfunction!(identity::c32_address, m)?)?;
    m.add_function(wrap_pyfunction!(identity::c32_address_decode, m)?)?;
    m.add_function(wrap_pyfunction!(identity::c32_encode, m)?)?;
    m.add_function(wrap_pyfunction!(identity::stacks_message_hash, m)?)?;
    m.add_function(wrap_pyfunction!(identity::verify_signature, m)?)?;
    m.add_function(wrap_pyfunction!(identity::normalize_alias, m)?)?;
    Ok(())
}
