//! The one host-facing facade the language bindings (uniffi, napi-rs, pyo3) share, so
//! each of them stays a set of attributes and conversions:
//! - [`runtime`]: the process-wide tokio runtime bindings spawn on (sync exports must not
//!   call bare `tokio::spawn`);
//! - [`CallbackSigner`]: turns a host-language signing callback into a [`WalletSigner`];
//! - [`Subscription`]: a handle that stops a background task (event or stream callbacks)
//!   when cancelled or dropped;
//! - [`ErrorInfo`]: the flat form of [`Error`] every binding exposes (`code`, `name`,
//!   `message`), with [`ErrorCode::ALL`], [`Error::reason`] and [`Error::as_failure`];
//! - [`parse_visibility`], [`parse_network`], [`parse_network_filter`] and their names:
//!   one spelling of each option for every binding;
//! - [`run`]: a core future awaited from a host executor, stopped when dropped;
//! - [`poll_or_notify`]: a core signal (`Stream::poll_writable`) turned into one host
//!   callback (a promise settled, a C callback called).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use crate::error::{Error, ErrorCode};
use crate::identity::{
    Network, NetworkFilter, Principal, SignRequest, SignatureForm, WalletSigner,
};
use crate::policy::Visibility;

/// Threads of [`runtime`] alive now (started and not yet stopped).
static RUNTIME_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many threads the shared runtime has now: its two workers and any blocking-pool
/// threads (which tokio stops after 10 s idle). What a host's leak check counts: thread
/// names cannot tell, because a thread the host's own pool starts from one of these (a
/// Dispatch worker started while a completion ran on a runtime thread) inherits the
/// name "snap2p" on Linux, and lives on that pool's schedule.
pub fn runtime_threads() -> usize {
    RUNTIME_THREADS.load(std::sync::atomic::Ordering::SeqCst)
}

/// The runtime shared by all bindings in one process (two worker threads: these machines
/// and phones have few cores; sessions are I/O-bound).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        use std::sync::atomic::Ordering::SeqCst;
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("snap2p")
            .on_thread_start(|| {
                RUNTIME_THREADS.fetch_add(1, SeqCst);
            })
            .on_thread_stop(|| {
                RUNTIME_THREADS.fetch_sub(1, SeqCst);
            })
            .enable_all()
            .build()
            .expect("cannot start the snap2p runtime")
    })
}

/// A future returned by a host signing callback.
pub type SignFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, Error>> + Send>>;

/// A [`WalletSigner`] whose signing is done by the host language: a keychain, a hardware
/// wallet, a browser-extension bridge. The callback must not block the calling thread; it
/// returns a future the core awaits.
pub struct CallbackSigner {
    principal: Principal,
    form: SignatureForm,
    sign: Box<dyn Fn(SignRequest) -> SignFuture + Send + Sync>,
}

impl CallbackSigner {
    pub fn new(
        principal: Principal,
        form: SignatureForm,
        sign: impl Fn(SignRequest) -> SignFuture + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(CallbackSigner {
            principal,
            form,
            sign: Box::new(sign),
        })
    }
}

#[async_trait::async_trait]
impl WalletSigner for CallbackSigner {
    fn principal(&self) -> Principal {
        self.principal.clone()
    }

    fn signature_form(&self) -> SignatureForm {
        self.form
    }

    async fn sign(&self, request: SignRequest) -> Result<Vec<u8>, Error> {
        let sig = (self.sign)(request).await?;
        if sig.len() != 65 {
            return Err(Error::new(
                ErrorCode::AuthInvalid,
                format!(
                    "host signer returned {} bytes; a 65-byte r||s||v signature is required",
                    sig.len()
                ),
            ));
        }
        Ok(sig)
    }
}

/// A running background task (a callback subscription). Dropping or cancelling it stops
/// the task.
///
/// `cancel` is synchronous: when it returns, the task is not running and never runs
/// again, so nothing the source produces afterwards is taken by it (an inbound connection
/// stays queued for `accept`, unread data stays readable). Aborting a tokio task alone is
/// asynchronous: a poll already under way on another worker could still take the next
/// item and hand it to a callback after `cancel` returned.
#[derive(Debug)]
pub struct Subscription {
    task: tokio::task::AbortHandle,
    gate: Arc<Gate>,
}

impl Subscription {
    /// Spawns `fut` on the shared runtime.
    pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> Self {
        let gate = Arc::new(Gate::default());
        let handle = runtime().spawn(Gated {
            gate: gate.clone(),
            fut: Box::pin(fut),
        });
        Subscription {
            task: handle.abort_handle(),
            gate,
        }
    }

    /// Stops the task; returns once no poll of it is in progress (a call from inside the
    /// task itself returns at once). Waits at most one poll, which never blocks: it takes
    /// an item and starts the callback, it does not wait for the callback.
    pub fn cancel(&self) {
        self.gate.close();
        self.task.abort();
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Serialises a subscription's polls with its cancellation.
#[derive(Debug, Default)]
struct Gate {
    state: std::sync::Mutex<GateState>,
    idle: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    /// The thread polling the task right now.
    polling: Option<std::thread::ThreadId>,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn close(&self) {
        let me = std::thread::current().id();
        let mut st = self.lock();
        st.closed = true;
        while st.polling.is_some_and(|t| t != me) {
            st = self.idle.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

struct Gated {
    gate: Arc<Gate>,
    fut: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// Clears the polling mark even if the inner future panics.
struct PollMark<'a>(&'a Gate);

impl Drop for PollMark<'_> {
    fn drop(&mut self) {
        self.0.lock().polling = None;
        self.0.idle.notify_all();
    }
}

impl Future for Gated {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let this = self.get_mut();
        {
            let mut st = this.gate.lock();
            if st.closed {
                return std::task::Poll::Ready(());
            }
            st.polling = Some(std::thread::current().id());
        }
        // The gate's mutex is not held here: cancel() waits on the condvar instead, and
        // the inner poll (which may call into a host language) runs lock-free.
        let _mark = PollMark(&this.gate);
        this.fut.as_mut().poll(cx)
    }
}

// ---------------------------------------------------------------------------------------
// Names of options, one spelling for every binding

/// Parses a visibility as bindings take it: `"public"`, `"private"` or `"stealth"`.
pub fn parse_visibility(s: &str) -> Result<Visibility, Error> {
    s.parse()
}

/// The name [`parse_visibility`] takes back.
pub fn visibility_name(v: Visibility) -> &'static str {
    v.name()
}

/// Parses a wire profile: `"standard"` or `"ts"` (the TypeScript implementation's wire,
/// PROTOCOL.md §12), the spelling of every binding's `compat` option.
pub fn parse_profile(s: &str) -> Result<crate::WireProfile, Error> {
    s.parse()
}

/// Parses a Stacks network: `"mainnet"` or `"testnet"`.
pub fn parse_network(s: &str) -> Result<Network, Error> {
    s.parse()
}

/// The name [`parse_network`] takes back.
pub fn network_name(n: Network) -> &'static str {
    n.as_str()
}

/// Parses which networks remote principals may be on: `"any"`, `"mainnet"` or
/// `"testnet"`.
pub fn parse_network_filter(s: &str) -> Result<NetworkFilter, Error> {
    match s {
        "any" => Ok(NetworkFilter::ANY),
        "mainnet" => Ok(NetworkFilter::MAINNET_ONLY),
        "testnet" => Ok(NetworkFilter::TESTNET_ONLY),
        other => Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("unknown network filter {other:?} (expected any, mainnet or testnet)"),
        )),
    }
}

/// The name [`parse_network_filter`] takes back (`"none"` for a filter that accepts
/// nothing, which it never returns).
pub fn network_filter_name(f: NetworkFilter) -> &'static str {
    match (f.mainnet, f.testnet) {
        (true, true) => "any",
        (true, false) => "mainnet",
        (false, true) => "testnet",
        (false, false) => "none",
    }
}

// ---------------------------------------------------------------------------------------
// Discovery (issue 30): the resolver chain's options, its report, endpoint adverts

/// The resolver chain of [`crate::Peer::resolve`] and the discovery modules behind its
/// steps, as every binding takes them (PROTOCOL.md §35.5): one spelling for all.
#[derive(Clone, Debug, Default)]
pub struct ResolverOptions {
    /// The steps, in order, from `cache`, `px-1`, `mdns`, `dht`, `bns` (None: all five
    /// in that order; a step whose module is not configured is reported `skipped`).
    pub steps: Option<Vec<String>>,
    /// Timeouts of some steps (each a step of the chain, positive).
    pub timeouts: Vec<(String, std::time::Duration)>,
    /// Join the Mainline DHT (implied by `dht_bootstrap`).
    pub dht: bool,
    /// DHT bootstrap nodes, `host:port` (none, with `dht`: the public network's).
    pub dht_bootstrap: Vec<String>,
    /// Publish this peer's advert and announce its principal on the DHT (None: when
    /// Public; `true` on a Private or Stealth peer is refused).
    pub dht_publish: Option<bool>,
    /// File of the durable advert cache (None: memory only).
    pub advert_cache_file: Option<std::path::PathBuf>,
    /// Run mDNS on the LAN: the `mdns` step, and a Public peer announces itself.
    pub mdns: bool,
    /// Stacks API base URLs (Hiro-compatible) that BNS names (`alice.btc`) are resolved
    /// through, every one asked and cross-checked (PROTOCOL.md §37).
    pub bns_providers: Vec<String>,
}

const STEP_NAMES: [&str; 5] = [
    crate::discovery::chain::STEP_CACHE,
    crate::discovery::chain::STEP_PX1,
    crate::discovery::chain::STEP_MDNS,
    crate::discovery::chain::STEP_DHT,
    crate::discovery::chain::STEP_BNS,
];

fn unknown_step(name: &str) -> Error {
    Error::new(
        ErrorCode::InvalidArgument,
        format!(
            "unknown resolver step {name:?} (expected {})",
            STEP_NAMES.join(", ")
        ),
    )
}

impl ResolverOptions {
    /// Sets `config.resolver` (and `config.dht`) from these options.
    pub fn configure(&self, config: &mut crate::PeerConfig) -> Result<(), Error> {
        use crate::discovery::ResolverConfig;
        let mut chain = match &self.steps {
            None => ResolverConfig::default(),
            Some(names) => {
                let mut seen: Vec<&str> = Vec::new();
                for n in names {
                    if !STEP_NAMES.contains(&n.as_str()) {
                        return Err(unknown_step(n));
                    }
                    if seen.contains(&n.as_str()) {
                        return Err(Error::new(
                            ErrorCode::InvalidArgument,
                            format!("resolver step {n:?} given twice"),
                        ));
                    }
                    seen.push(n);
                }
                ResolverConfig::only(&seen)
            }
        };
        for (name, timeout) in &self.timeouts {
            if !STEP_NAMES.contains(&name.as_str()) {
                return Err(unknown_step(name));
            }
            if !chain.steps.iter().any(|s| s.name == *name) {
                return Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!("a timeout for resolver step {name:?}, which is not in the chain"),
                ));
            }
            if timeout.is_zero() {
                return Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!("the timeout of resolver step {name:?} must be positive"),
                ));
            }
            chain = chain.with_timeout(name, *timeout);
        }
        config.resolver = chain;
        if self.dht || !self.dht_bootstrap.is_empty() {
            #[cfg(feature = "dht")]
            {
                let mut d = crate::discovery::DhtConfig::default();
                if !self.dht_bootstrap.is_empty() {
                    d = d.with_bootstrap(self.dht_bootstrap.iter().cloned());
                }
                d.publish = self.dht_publish;
                if let Some(f) = &self.advert_cache_file {
                    d = d.with_cache_path(f);
                }
                config.dht = Some(d);
            }
            #[cfg(not(feature = "dht"))]
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "this build has no DHT (feature `dht`)",
            ));
        }
        Ok(())
    }

    /// Adds the modules these options ask for (mDNS, BNS providers) to `builder`.
    pub fn attach(&self, builder: crate::PeerBuilder) -> Result<crate::PeerBuilder, Error> {
        #[allow(unused_mut)]
        let mut builder = builder;
        if self.mdns {
            #[cfg(feature = "mdns")]
            {
                use crate::discovery::mdns::{Mdns, MdnsConfig};
                builder = builder.mdns(Mdns::start(MdnsConfig::default())?);
            }
            #[cfg(not(feature = "mdns"))]
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "this build has no mDNS (feature `mdns`)",
            ));
        }
        if !self.bns_providers.is_empty() {
            #[cfg(feature = "bns")]
            {
                use crate::discovery::bns::{Bns, BnsConfig};
                let config = BnsConfig::with_providers(self.bns_providers.iter().cloned());
                builder = builder.bns(Arc::new(Bns::http(&config)?));
            }
            #[cfg(not(feature = "bns"))]
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "this build has no BNS resolver (feature `bns`)",
            ));
        }
        Ok(builder)
    }
}

/// One locator of a [`ResolveInfo`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocatorInfo {
    /// The locator (PROTOCOL.md §14).
    pub locator: String,
    /// Listed by a live endpoint advert of the principal whose signature and attestation
    /// were checked; `false`: a hint only the dial's AUTH proves.
    pub verified: bool,
}

/// One step of a [`ResolveInfo`].
#[derive(Clone, Debug, PartialEq)]
pub struct StepInfo {
    pub name: String,
    /// `found`, `not_found`, `timeout`, `error` or `skipped`.
    pub outcome: &'static str,
    pub duration_ms: f64,
    /// Locators it found (0 unless `found`).
    pub count: u32,
    /// Why it failed (`timeout`, `error`).
    pub error: Option<ErrorInfo>,
}

/// The flat form of [`crate::discovery::ResolveReport`] every binding returns.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolveInfo {
    /// `stacks:SP…` (a name's owner when a name was resolved).
    pub principal: String,
    /// The BNS name resolved first, lower-cased.
    pub name: Option<String>,
    /// The step that answered.
    pub answered_by: Option<String>,
    pub locators: Vec<LocatorInfo>,
    pub steps: Vec<StepInfo>,
    pub duration_ms: f64,
}

impl From<&crate::discovery::ResolveReport> for ResolveInfo {
    fn from(r: &crate::discovery::ResolveReport) -> Self {
        use crate::discovery::StepOutcome;
        ResolveInfo {
            principal: r.principal.to_string(),
            name: r.name.clone(),
            answered_by: r.answered_by.clone(),
            locators: r
                .entries()
                .map(|(l, verified)| LocatorInfo {
                    locator: l.to_string(),
                    verified,
                })
                .collect(),
            steps: r
                .steps
                .iter()
                .map(|s| StepInfo {
                    name: s.name.clone(),
                    outcome: s.outcome.as_str(),
                    duration_ms: s.duration.as_secs_f64() * 1000.0,
                    count: match s.outcome {
                        StepOutcome::Found(n) => n as u32,
                        _ => 0,
                    },
                    error: match &s.outcome {
                        StepOutcome::Failed(e) => Some(ErrorInfo::from(e)),
                        _ => None,
                    },
                })
                .collect(),
            duration_ms: r.duration.as_secs_f64() * 1000.0,
        }
    }
}

/// The fields of a signed endpoint advert (PROTOCOL.md §34), as bindings return them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdvertInfo {
    /// The principal its attestation binds the node key to.
    pub principal: String,
    /// The Ed25519 node key that signed it (32 bytes).
    pub node_key: Vec<u8>,
    pub seq: u64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub locators: Vec<String>,
    /// The NodeKeyAttestation's wire bytes.
    pub attestation: Vec<u8>,
    /// The node key's signature (64 bytes) over `signing_input`.
    pub signature: Vec<u8>,
    /// What the node key signs: the domain, a zero byte, the canonical fields.
    pub signing_input: Vec<u8>,
    /// The wire form, re-encoded canonically.
    pub encoded: Vec<u8>,
}

impl From<&crate::discovery::EndpointAdvert> for AdvertInfo {
    fn from(a: &crate::discovery::EndpointAdvert) -> Self {
        AdvertInfo {
            principal: a.principal().to_string(),
            node_key: a.node_key().to_vec(),
            seq: a.seq,
            issued_at: a.issued_at,
            expires_at: a.expires_at,
            locators: a.locators.iter().map(ToString::to_string).collect(),
            attestation: a.attestation_bytes().to_vec(),
            signature: a.sig.to_vec(),
            signing_input: a.signing_input(),
            encoded: a.encode(),
        }
    }
}

/// Decodes an advert's wire bytes without checking signature or time.
pub fn decode_advert(bytes: &[u8]) -> Result<AdvertInfo, Error> {
    Ok(AdvertInfo::from(&crate::discovery::EndpointAdvert::decode(
        bytes,
    )?))
}

/// Decodes and verifies an advert at `now` (unix seconds), under `expected_node_key`
/// and `expected_principal` when given; the error's message starts with the reason
/// (`ADV_TAMPERED`, `ADV_EXPIRED`, …).
pub fn verify_advert(
    bytes: &[u8],
    now: i64,
    expected_node_key: Option<&[u8]>,
    expected_principal: Option<&str>,
) -> Result<AdvertInfo, Error> {
    let key: Option<[u8; 32]> = expected_node_key
        .map(|k| {
            k.try_into()
                .map_err(|_| Error::new(ErrorCode::InvalidArgument, "a node key is 32 bytes"))
        })
        .transpose()?;
    let principal = expected_principal.map(Principal::parse).transpose()?;
    let ad = crate::discovery::EndpointAdvert::decode_and_verify(
        bytes,
        now,
        NetworkFilter::ANY,
        key.as_ref(),
        principal.as_ref(),
    )?;
    Ok(AdvertInfo::from(&ad))
}

/// Issues an advert signed by the node key of `node_seed` (32 bytes), carrying
/// `attestation` (wire bytes attesting that key): its wire bytes.
pub fn issue_advert(
    node_seed: &[u8],
    attestation: &[u8],
    locators: &[String],
    seq: u64,
    issued_at: i64,
    ttl_secs: i64,
) -> Result<Vec<u8>, Error> {
    let seed: [u8; 32] = node_seed
        .try_into()
        .map_err(|_| Error::new(ErrorCode::InvalidArgument, "a node key seed is 32 bytes"))?;
    let locs = locators
        .iter()
        .map(|l| l.parse::<crate::Locator>())
        .collect::<Result<Vec<_>, _>>()?;
    let key = crate::identity::NodeKey::from_seed(seed);
    let ad = crate::discovery::EndpointAdvert::issue(
        &key,
        attestation,
        &locs,
        seq,
        issued_at,
        ttl_secs,
    )?;
    Ok(ad.encode())
}

// ---------------------------------------------------------------------------------------
// Running core work from a host call

/// Runs `fut` on the shared runtime and awaits its result from any executor (a napi
/// async function, a uniffi future polled by Kotlin or Swift). Dropping the returned
/// future (a cancelled coroutine or task) stops the work, as a [`Subscription`] does.
pub fn run<T, F>(fut: F) -> impl Future<Output = Result<T, Error>> + Send + 'static
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = Subscription::spawn(async move {
        let _ = tx.send(fut.await);
    });
    async move {
        let _task = task;
        rx.await.unwrap_or_else(|_| {
            Err(Error::new(
                ErrorCode::Internal,
                "snap2p task failed (panicked or cancelled)",
            ))
        })
    }
}

// ---------------------------------------------------------------------------------------
// Waiting for a core signal from a host callback

/// Polls `poll` once with a waker that hands `value` to `notify` exactly once, later: when
/// the core wakes it, or when the core drops it unwoken (the stream closed, the wait was
/// replaced), so that a host wait always ends; the host then retries and learns the state.
/// Returns the result and `value` back if `poll` is ready now (`notify` is then never
/// called), `None` if the waker holds `value`.
///
/// `notify` runs on a core thread, never inside a core lock: the core wakes after
/// releasing its lock, and a drop (which may happen inside it) is passed to a runtime task
/// instead. It must not block (settle a promise, post to an event loop, call a host
/// function that only schedules work).
pub fn poll_or_notify<T, R>(
    value: T,
    notify: fn(T),
    poll: impl FnOnce(&mut Context<'_>) -> Poll<R>,
) -> Option<(R, T)>
where
    T: Send + 'static,
{
    let once = Arc::new(NotifyOnce {
        slot: std::sync::Mutex::new(Some(value)),
        notify,
    });
    let waker = Waker::from(once.clone());
    match poll(&mut Context::from_waker(&waker)) {
        Poll::Pending => None,
        // Not waiting: a clone the core kept must not notify.
        Poll::Ready(r) => once.take().map(|v| (r, v)),
    }
}

/// The waker of [`poll_or_notify`].
struct NotifyOnce<T: Send + 'static> {
    slot: std::sync::Mutex<Option<T>>,
    notify: fn(T),
}

impl<T: Send + 'static> NotifyOnce<T> {
    fn take(&self) -> Option<T> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn fire(&self) {
        if let Some(v) = self.take() {
            (self.notify)(v);
        }
    }
}

impl<T: Send + 'static> Wake for NotifyOnce<T> {
    fn wake(self: Arc<Self>) {
        self.fire();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fire();
    }
}

impl<T: Send + 'static> Drop for NotifyOnce<T> {
    fn drop(&mut self) {
        let slot = self.slot.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = slot.take() {
            let notify = self.notify;
            drop(runtime().spawn(async move { notify(v) }));
        }
    }
}

/// Flat error for bindings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorInfo {
    /// Numeric wire code (see [`ErrorCode`]).
    pub code: u64,
    /// Symbolic name, e.g. `ERR_NOT_ALLOWED`.
    pub name: &'static str,
    /// `ERR_NAME (code): reason`, the `Display` of [`Error`].
    pub message: String,
    /// The message alone ([`Error::reason`]), for bindings that carry `code` and `name`
    /// in fields of their own.
    pub reason: String,
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        ErrorInfo {
            code: e.code.as_u64(),
            name: e.code.name(),
            message: e.to_string(),
            reason: e.reason().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {

    /// The runtime counts its threads: two workers from the start, plus a blocking-pool
    /// thread while one runs.
    #[test]
    fn runtime_threads_counts_workers_and_blocking_threads() {
        let rt = super::runtime();
        let workers = (0..200)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(5));
                super::runtime_threads()
            })
            .find(|&n| n >= 2);
        assert!(workers.is_some(), "{} threads", super::runtime_threads());
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let job = rt.spawn_blocking(move || {
            tx.send(super::runtime_threads()).unwrap();
            done_rx.recv().unwrap();
        });
        let during = rx.recv().unwrap();
        assert!(during >= 3, "a blocking thread is counted: {during}");
        done_tx.send(()).unwrap();
        rt.block_on(job).unwrap();
    }

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc as sync_mpsc;
    use std::time::Duration;

    /// A worker can be descheduled in the middle of a poll; `cancel` must still mean "no
    /// item produced after I returned is taken".
    #[test]
    fn cancel_waits_for_a_poll_in_progress_and_takes_nothing_after() {
        let (in_poll_tx, in_poll_rx) = sync_mpsc::channel::<()>();
        let (release_tx, release_rx) = sync_mpsc::channel::<()>();
        let (item_tx, item_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let item_rx = Arc::new(tokio::sync::Mutex::new(item_rx));
        let taken = Arc::new(AtomicUsize::new(0));
        let sub = {
            let (item_rx, taken) = (item_rx.clone(), taken.clone());
            Subscription::spawn(async move {
                // Stands for a poll stalled on its worker thread.
                in_poll_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                while item_rx.lock().await.recv().await.is_some() {
                    taken.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        in_poll_rx.recv().unwrap();
        let canceller = std::thread::spawn(move || {
            sub.cancel();
            sub
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(!canceller.is_finished(), "cancel returned during a poll");
        release_tx.send(()).unwrap();
        let sub = canceller.join().unwrap();
        // Produced after cancel returned: stays for whoever reads the source next.
        item_tx.send(7).unwrap();
        for _ in 0..200 {
            if sub.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(sub.is_finished());
        assert_eq!(taken.load(Ordering::SeqCst), 0);
        assert_eq!(item_rx.try_lock().unwrap().try_recv().unwrap(), 7);
    }

    #[test]
    fn cancel_from_inside_the_task_does_not_wait_for_itself() {
        let (tx, rx) = sync_mpsc::channel::<()>();
        let slot: Arc<std::sync::Mutex<Option<Subscription>>> = Arc::default();
        let inner = slot.clone();
        let sub = Subscription::spawn(async move {
            // Wait until the handle is stored, then cancel (and drop) it from the poll.
            loop {
                if let Some(s) = inner.lock().unwrap().take() {
                    s.cancel();
                    drop(s);
                    break;
                }
                tokio::task::yield_now().await;
            }
            tx.send(()).unwrap();
        });
        *slot.lock().unwrap() = Some(sub);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the task deadlocked cancelling itself");
    }

    #[test]
    fn option_names_round_trip() {
        for v in [Visibility::Public, Visibility::Private, Visibility::Stealth] {
            assert_eq!(parse_visibility(visibility_name(v)).unwrap(), v);
        }
        for n in [Network::Mainnet, Network::Testnet] {
            assert_eq!(parse_network(network_name(n)).unwrap(), n);
        }
        for f in [
            NetworkFilter::ANY,
            NetworkFilter::MAINNET_ONLY,
            NetworkFilter::TESTNET_ONLY,
        ] {
            assert_eq!(parse_network_filter(network_filter_name(f)).unwrap(), f);
        }
        for bad in [
            parse_visibility("open").unwrap_err(),
            parse_network("regtest").unwrap_err(),
            parse_network_filter("none").unwrap_err(),
        ] {
            assert_eq!(bad.code, ErrorCode::InvalidArgument);
        }
    }

    #[test]
    fn poll_or_notify_notifies_once_when_woken_or_dropped() {
        static HITS: AtomicUsize = AtomicUsize::new(0);
        fn hit(n: usize) {
            HITS.fetch_add(n, Ordering::SeqCst);
        }
        // Ready now: the value comes back and nothing is notified.
        assert_eq!(poll_or_notify(1, hit, |_| Poll::Ready(7)), Some((7, 1)));
        // Woken twice: notified once.
        let mut kept = None;
        let polled = poll_or_notify(10, hit, |cx| {
            kept = Some(cx.waker().clone());
            Poll::<()>::Pending
        });
        assert!(polled.is_none());
        let waker = kept.take().unwrap();
        waker.wake_by_ref();
        waker.wake();
        assert_eq!(HITS.load(Ordering::SeqCst), 10);
        // Dropped unwoken: notified too (from a runtime task).
        let polled = poll_or_notify(100, hit, |cx| {
            kept = Some(cx.waker().clone());
            Poll::<()>::Pending
        });
        assert!(polled.is_none());
        drop(kept.take());
        for _ in 0..500 {
            if HITS.load(Ordering::SeqCst) == 110 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(HITS.load(Ordering::SeqCst), 110);
    }

    #[test]
    fn run_returns_the_result_and_dropping_it_stops_the_work() {
        let r = futures_lite_block_on(run(async { Ok::<_, Error>(5) }));
        assert_eq!(r.unwrap(), 5);
        let (tx, rx) = sync_mpsc::channel::<()>();
        let fut = run(async move {
            let _tx = tx;
            std::future::pending::<Result<(), Error>>().await
        });
        drop(fut);
        // The task (and the sender it holds) is gone.
        assert!(rx.recv_timeout(Duration::from_secs(10)).is_err());
    }

    /// Drives a future on this thread (a host executor stands for it).
    fn futures_lite_block_on<F: Future>(fut: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }
}
