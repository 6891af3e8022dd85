//! The resolver chain behind [`crate::Peer::resolve`]: named steps asked in order, each
//! with its own timeout, until one returns locators; a report says which step answered and
//! what each step did (PROTOCOL.md §35.5).
//!
//! Steps are [`Discovery`] modules matched by [`Discovery::name`]. Built in: `cache` (the
//! live adverts of the durable advert cache: verified, no network), `px-1` (PX-1's cached
//! hints, else the answers of connected peers asked in parallel) and `dht` (feature `dht`).
//! `mdns` and `bns` are modules registered with `PeerBuilder::discovery` under those
//! names; a step whose module is not there is reported as skipped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::advert::AdvertCache;
use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
use crate::locator::Locator;
use crate::protocol::{Discovery, PeerHandle};
use crate::px1::{self, Px1};

/// The step name of the advert cache.
pub const STEP_CACHE: &str = "cache";
/// The step name of PX-1 (its stream label).
pub const STEP_PX1: &str = px1::STREAM_LABEL;
pub const STEP_MDNS: &str = "mdns";
pub const STEP_DHT: &str = "dht";
pub const STEP_BNS: &str = "bns";
/// The report step of a BNS name's lookup ([`crate::Peer::resolve_target`]): the name's
/// owner and zonefile locators, before the chain runs for the owner.
pub const STEP_BNS_NAME: &str = "bns-name";

/// One step of the chain: a module name and how long it may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverStep {
    pub name: String,
    pub timeout: Duration,
}

impl ResolverStep {
    pub fn new(name: impl Into<String>, timeout: Duration) -> Self {
        ResolverStep {
            name: name.into(),
            timeout,
        }
    }
}

/// The chain's steps, in order. The default is cache → px-1 → mdns → dht → bns; drop a
/// step to turn it off, reorder them, change a timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverConfig {
    pub steps: Vec<ResolverStep>,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        // Timeouts: the cache is memory; PX-1 asks peers already connected (its own query
        // timeout is 3 s); mDNS answers on a link within a second or two; a DHT lookup on
        // the real network takes a few seconds (hops ≈ log of nodes, docs/BENCHMARKS.md);
        // BNS is an HTTP API.
        ResolverConfig {
            steps: vec![
                ResolverStep::new(STEP_CACHE, Duration::from_secs(1)),
                ResolverStep::new(STEP_PX1, Duration::from_secs(5)),
                ResolverStep::new(STEP_MDNS, Duration::from_secs(3)),
                ResolverStep::new(STEP_DHT, Duration::from_secs(15)),
                ResolverStep::new(STEP_BNS, Duration::from_secs(10)),
            ],
        }
    }
}

impl ResolverConfig {
    /// Only these steps, in this order, with their default timeouts (unknown names get
    /// 10 s).
    pub fn only(names: &[&str]) -> Self {
        let all = ResolverConfig::default().steps;
        ResolverConfig {
            steps: names
                .iter()
                .map(|n| {
                    all.iter()
                        .find(|s| s.name == *n)
                        .cloned()
                        .unwrap_or_else(|| ResolverStep::new(*n, Duration::from_secs(10)))
                })
                .collect(),
        }
    }

    /// Sets one step's timeout (no effect when the step is not in the chain).
    pub fn with_timeout(mut self, name: &str, timeout: Duration) -> Self {
        for s in &mut self.steps {
            if s.name == name {
                s.timeout = timeout;
            }
        }
        self
    }
}

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// It answered with this many locators (the chain stopped here).
    Found(usize),
    /// It knew nothing (`ERR_NOT_FOUND`, or no locators).
    NotFound,
    /// It failed (timeouts are `ERR_TIMEOUT`).
    Failed(Error),
    /// Not run: no module of that name on this peer.
    Skipped,
}

impl StepOutcome {
    /// `found`, `not_found`, `error`, `timeout` or `skipped`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StepOutcome::Found(_) => "found",
            StepOutcome::NotFound => "not_found",
            StepOutcome::Failed(e) if e.code == ErrorCode::Timeout => "timeout",
            StepOutcome::Failed(_) => "error",
            StepOutcome::Skipped => "skipped",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    pub name: String,
    pub duration: Duration,
    pub outcome: StepOutcome,
}

/// What [`crate::Peer::resolve`] found and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveReport {
    pub principal: Principal,
    /// The BNS name resolved to `principal` first ([`crate::Peer::resolve_target`]).
    pub name: Option<String>,
    /// The answering step's locators (empty when none answered).
    pub locators: Vec<Locator>,
    /// One per locator, same order: `true` when a live endpoint advert of `principal`
    /// held in the advert cache lists it (its node-key signature and attestation were
    /// checked, PROTOCOL.md §34), `false` for a hint (PX-1 answers, mDNS records, BEP5
    /// announces, BNS zonefiles) that only the dial's AUTH will prove.
    pub verified: Vec<bool>,
    /// The step that answered.
    pub answered_by: Option<String>,
    /// Every step run or skipped, in order (the steps after the answering one are not run
    /// and not listed).
    pub steps: Vec<StepReport>,
    pub duration: Duration,
}

impl ResolveReport {
    /// Each locator with whether it is verified (see [`Self::verified`]).
    pub fn entries(&self) -> impl Iterator<Item = (&Locator, bool)> {
        self.locators.iter().zip(
            self.verified
                .iter()
                .copied()
                .chain(std::iter::repeat(false)),
        )
    }

    /// The report as the error a caller that wants locators gets: the last step error
    /// (its code; the message names that step and every step asked, with its outcome),
    /// else `ERR_NOT_FOUND` naming the steps asked. The bindings' `resolve` throws this,
    /// so the per-step story reaches them in the message.
    pub fn error(&self) -> Error {
        let asked = |outcomes: bool| {
            let names: Vec<String> = self
                .steps
                .iter()
                .filter(|s| s.outcome != StepOutcome::Skipped)
                .map(|s| match outcomes {
                    true => format!("{} {}", s.name, s.outcome.as_str()),
                    false => s.name.clone(),
                })
                .collect();
            if names.is_empty() {
                "no step".to_string()
            } else {
                names.join(", ")
            }
        };
        let last = self.steps.iter().rev().find_map(|s| match &s.outcome {
            StepOutcome::Failed(e) => Some((s.name.as_str(), e)),
            _ => None,
        });
        match last {
            Some((step, e)) => Error::new(
                e.code,
                format!("{step}: {} (asked: {})", e.message, asked(true)),
            ),
            None => Error::new(
                ErrorCode::NotFound,
                format!(
                    "no locators for {} (asked: {})",
                    self.principal,
                    asked(false)
                ),
            ),
        }
    }
}

/// Runs `config`'s steps against `modules` (matched by name) until one answers; the
/// answer's locators are marked verified when a live advert of `principal` in `cache`
/// lists them.
pub async fn run(
    config: &ResolverConfig,
    modules: &[Arc<dyn Discovery>],
    cache: &AdvertCache,
    peer: &PeerHandle,
    principal: &Principal,
) -> ResolveReport {
    let t0 = Instant::now();
    let mut report = ResolveReport {
        principal: principal.clone(),
        name: None,
        locators: Vec::new(),
        verified: Vec::new(),
        answered_by: None,
        steps: Vec::new(),
        duration: Duration::ZERO,
    };
    for step in &config.steps {
        let Some(module) = modules.iter().find(|m| m.name() == step.name) else {
            report.steps.push(StepReport {
                name: step.name.clone(),
                duration: Duration::ZERO,
                outcome: StepOutcome::Skipped,
            });
            continue;
        };
        let started = Instant::now();
        let result = tokio::time::timeout(step.timeout, module.resolve(peer, principal)).await;
        let outcome = match result {
            Err(_) => StepOutcome::Failed(Error::new(
                ErrorCode::Timeout,
                format!("{}: no answer within {:?}", step.name, step.timeout),
            )),
            Ok(Ok(locs)) if locs.is_empty() => StepOutcome::NotFound,
            Ok(Ok(locs)) => {
                let n = locs.len();
                report.locators = locs;
                StepOutcome::Found(n)
            }
            Ok(Err(e)) if e.code == ErrorCode::NotFound => StepOutcome::NotFound,
            Ok(Err(e)) => StepOutcome::Failed(e),
        };
        let found = matches!(outcome, StepOutcome::Found(_));
        report.steps.push(StepReport {
            name: step.name.clone(),
            duration: started.elapsed(),
            outcome,
        });
        if found {
            report.answered_by = Some(step.name.clone());
            report.verified = verified_flags(cache, principal, &report.locators);
            break;
        }
    }
    report.duration = t0.elapsed();
    report
}

/// Whether each locator is listed by a live, verified advert of `principal` held in
/// `cache`. The mark depends on what was checked, not on which step answered: the
/// cache step's locators are all verified, the DHT's are when they came from the
/// BEP44 advert (the module verifies and caches it before answering) and not when they
/// are BEP5 hints, and a PX-1 or mDNS hint an advert of the principal also lists is
/// vouched for by that advert's signature.
pub fn verified_flags(
    cache: &AdvertCache,
    principal: &Principal,
    locators: &[Locator],
) -> Vec<bool> {
    let live = cache.for_principal(principal, crate::unix_now());
    locators
        .iter()
        .map(|l| live.iter().any(|ad| ad.locators.contains(l)))
        .collect()
}

/// The `cache` step: locators of the live, verified adverts held for the principal.
pub struct CacheStep(pub Arc<AdvertCache>);

#[async_trait::async_trait]
impl Discovery for CacheStep {
    fn name(&self) -> &str {
        STEP_CACHE
    }

    async fn resolve(
        &self,
        _peer: &PeerHandle,
        principal: &Principal,
    ) -> Result<Vec<Locator>, Error> {
        let mut out: Vec<Locator> = Vec::new();
        for ad in self.0.for_principal(principal, crate::unix_now()) {
            for l in ad.locators {
                if !out.contains(&l) {
                    out.push(l);
                }
            }
        }
        Ok(out)
    }
}

/// The `px-1` step: PX-1's cached hints for the principal, else one round of questions to
/// every connected peer that speaks PX-1, in parallel (friends of friends are for
/// `dial`: resolving dials nobody).
pub struct Px1Step(pub Arc<Px1>);

#[async_trait::async_trait]
impl Discovery for Px1Step {
    fn name(&self) -> &str {
        STEP_PX1
    }

    async fn resolve(
        &self,
        peer: &PeerHandle,
        principal: &Principal,
    ) -> Result<Vec<Locator>, Error> {
        let cached = self.0.cached(principal);
        if !cached.is_empty() {
            return Ok(cached);
        }
        let mut set = tokio::task::JoinSet::new();
        for conn in peer.connections() {
            if conn.remote_principal() == principal
                || !conn.supports(crate::wire::message::caps::PX1)
            {
                continue;
            }
            let target = principal.clone();
            set.spawn(async move { px1::resolve(&conn, &target, None).await });
        }
        let mut out: Vec<Locator> = Vec::new();
        let mut last: Option<Error> = None;
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(locs)) => {
                    for l in locs {
                        if !out.contains(&l) {
                            out.push(l);
                        }
                    }
                }
                Ok(Err(e)) => last = Some(e),
                Err(_) => {}
            }
        }
        if out.is_empty() {
            if let Some(e) = last {
                if e.code != ErrorCode::NotFound {
                    return Err(e);
                }
            }
        }
        Ok(out)
    }
}
