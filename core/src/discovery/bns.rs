//! BNS names (issue 30; docs/PROTOCOL.md "BNS names"): `dial("alice.btc")` resolves the
//! name to its owner principal and the snap2p locators its zonefile carries, through one or
//! more [`ChainProvider`]s, and every provider must give the same answer.
//!
//! The chain is the authority on who owns a name; a provider (a Stacks API node) only
//! reports it. One provider can lie or lag, so [`Bns::resolve`] asks all of them at once and
//! refuses ([`ErrorCode::ProvidersDisagree`]) when any two answers differ, in owner or in
//! locators, or when one knows the name and another does not. There is no majority vote: a
//! single dissenting provider is enough to refuse. The owner principal then has to prove
//! itself in AUTH like any dialed principal; the zonefile's locators are hints.
//!
//! The other way round, [`Bns`] is also the resolver chain's `bns` step (a [`Discovery`]
//! module): for a principal, the names it owns (`names_of`, cross-checked the same way),
//! then each name's record; the zonefile locators of the names still owned by the
//! principal are its answer (hints: AUTH proves the principal).
//!
//! [`HttpProvider`] speaks the Stacks API's `GET /v1/names/{name}` and
//! `GET /v1/addresses/stacks/{address}` (Hiro's stacks-blockchain-api and compatible
//! servers) over hyper, HTTPS by rustls with ring. Each
//! request is bounded in time ([`BnsConfig::timeout`], connect to last byte) and size
//! ([`BnsConfig::max_response_bytes`]).

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
use crate::locator::Locator;
use crate::protocol::{Discovery, PeerHandle};

/// The largest provider response read, by default. A BNS zonefile is at most 40 KiB on
/// chain (Stacks BNS attachments), the JSON around it a few hundred bytes.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How long one provider may take, by default (connect, TLS, headers and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most locators taken from one zonefile.
pub const MAX_ZONEFILE_LOCATORS: usize = 16;
/// The most names of one principal taken from a provider's answer (sorted, deduplicated).
pub const MAX_NAMES_OWNED: usize = 16;
/// The most of a principal's names whose records the `bns` step fetches.
pub const MAX_NAMES_RESOLVED: usize = 4;
/// The owner name of the zonefile TXT records that carry snap2p locators.
pub const ZONEFILE_LABEL: &str = "_snap2p";

/// What a name resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameRecord {
    /// The name, lower-cased (`alice.btc`).
    pub name: String,
    /// The owner: the principal a session to this name must authenticate as.
    pub owner: Principal,
    /// The zonefile's snap2p locators (`_snap2p TXT`), in zonefile order, deduplicated.
    pub locators: Vec<Locator>,
}

/// A source of BNS name records (a Stacks API node, a local chain state).
#[async_trait::async_trait]
pub trait ChainProvider: Send + Sync + 'static {
    /// Names the provider in errors (its base URL).
    fn name(&self) -> &str;

    /// The record of `name` (valid and lower-case: [`normalize_name`]);
    /// `Err(ERR_NOT_FOUND)` when the provider says there is no such name.
    async fn resolve_name(&self, name: &str) -> Result<NameRecord, Error>;

    /// The names `principal` owns (valid, lower-case, sorted, deduplicated, at most
    /// [`MAX_NAMES_OWNED`]); `Err(ERR_NOT_FOUND)` when it owns none.
    async fn names_of(&self, principal: &Principal) -> Result<Vec<String>, Error>;
}

/// Whether `s` has the shape of a BNS name (`name.namespace` or `sub.name.namespace`): what
/// [`crate::Peer::dial`] sends to the BNS resolver instead of parsing as a locator. Checked
/// without allocating: every dial asks it of its target (an address, usually).
pub fn is_bns_name(s: &str) -> bool {
    not_a_name(s.trim()).is_none()
}

/// `s` lower-cased when it is a BNS name: two or three labels of `a-z 0-9 - _`, a namespace
/// of at most 20 bytes, a name of at most 48 (the BNS contract's buffer sizes), a subdomain
/// label of at most 63. `ERR_INVALID_ARGUMENT` otherwise.
pub fn normalize_name(s: &str) -> Result<String, Error> {
    let trimmed = s.trim();
    match not_a_name(trimmed) {
        None => Ok(trimmed.to_ascii_lowercase()),
        Some(why) => Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("'{s}' is not a BNS name: {why}"),
        )),
    }
}

/// Why `s` (trimmed, any case) is not a BNS name, or `None` when it is one.
fn not_a_name(s: &str) -> Option<&'static str> {
    let n = s.split('.').count();
    if !(2..=3).contains(&n) {
        return Some("expected name.namespace or sub.name.namespace");
    }
    // Upper case is allowed here: names are lower-cased after the check.
    let ok_chars = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !s.split('.').all(ok_chars) {
        return Some("labels are a-z, 0-9, '-' and '_'");
    }
    let mut labels = s.rsplit('.');
    let (Some(namespace), Some(name)) = (labels.next(), labels.next()) else {
        return Some("expected name.namespace or sub.name.namespace");
    };
    if namespace.len() > 20 {
        return Some("namespace longer than 20 bytes");
    }
    if name.len() > 48 {
        return Some("name longer than 48 bytes");
    }
    if labels.next().is_some_and(|sub| sub.len() > 63) {
        return Some("subdomain longer than 63 bytes");
    }
    // A namespace is never all digits (and `1.2` would read as a number, not a name).
    if namespace.bytes().all(|b| b.is_ascii_digit()) {
        return Some("namespace is all digits");
    }
    None
}

/// The snap2p locators of a zonefile: every TXT record owned by `_snap2p` (relative, or
/// `_snap2p.<name>.` absolute), optionally with a TTL and class `IN`, one locator per quoted
/// string, e.g. `_snap2p IN TXT "203.0.113.7:4000" "wss://alice.example:443/snap2p"`.
/// Strings that are not locators are skipped; at most [`MAX_ZONEFILE_LOCATORS`] are kept.
pub fn zonefile_locators(zonefile: &str, name: &str) -> Vec<Locator> {
    let absolute = format!("{ZONEFILE_LABEL}.{name}.");
    let mut out = Vec::new();
    for line in zonefile.lines() {
        // Comments end a line (a ';' inside quotes is not expected in a locator).
        let line = line.split(';').next().unwrap_or("");
        let mut rest = line.trim_start();
        let owner = match rest.split_whitespace().next() {
            Some(o) => o,
            None => continue,
        };
        if !(owner.eq_ignore_ascii_case(ZONEFILE_LABEL) || owner.eq_ignore_ascii_case(&absolute)) {
            continue;
        }
        rest = rest[owner.len()..].trim_start();
        // [TTL] [IN] TXT, in either order of TTL and class (RFC 1035 §5.1).
        let mut is_txt = false;
        for _ in 0..3 {
            let tok = rest.split_whitespace().next().unwrap_or("");
            let skip = tok.eq_ignore_ascii_case("IN") || tok.bytes().all(|b| b.is_ascii_digit());
            if tok.eq_ignore_ascii_case("TXT") {
                rest = rest[tok.len()..].trim_start();
                is_txt = true;
                break;
            }
            if !skip || tok.is_empty() {
                break;
            }
            rest = rest[tok.len()..].trim_start();
        }
        if !is_txt {
            continue;
        }
        // The quoted character-strings.
        let mut parts = rest.split('"');
        parts.next();
        while let Some(s) = parts.next() {
            if out.len() == MAX_ZONEFILE_LOCATORS {
                return out;
            }
            if let Ok(l) = s.parse::<Locator>() {
                if !out.contains(&l) {
                    out.push(l);
                }
            }
            // Skip what lies between this string's closing quote and the next opening one.
            parts.next();
        }
    }
    out
}

/// The Stacks API's answer to `GET /v1/names/{name}` (stacks-blockchain-api's
/// `BnsGetNameInfoResponse`; unknown fields are ignored).
#[derive(serde::Deserialize)]
struct NameInfo {
    address: String,
    #[serde(default)]
    zonefile: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// Reads a `GET /v1/names/{name}` body into a record (`ERR_INVALID_MESSAGE` for anything
/// that is not such an answer; a revoked name is `ERR_NOT_FOUND`).
pub fn parse_name_info(name: &str, body: &[u8], source: &str) -> Result<NameRecord, Error> {
    let info: NameInfo = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorCode::InvalidMessage,
            format!("bns provider {source}: malformed answer for {name}: {e}"),
        )
    })?;
    if info.status.as_deref() == Some("revoked") {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!("bns provider {source}: {name} is revoked"),
        ));
    }
    let owner = Principal::from_address(&info.address).map_err(|_| {
        Error::new(
            ErrorCode::InvalidMessage,
            format!(
                "bns provider {source}: {name} is owned by '{}', not a Stacks address",
                info.address
            ),
        )
    })?;
    if !owner.is_single_sig() {
        return Err(Error::new(
            ErrorCode::InvalidMessage,
            format!("bns provider {source}: {name} is owned by a multi-signature address, which cannot run a node"),
        ));
    }
    let locators = info
        .zonefile
        .as_deref()
        .map(|z| zonefile_locators(z, name))
        .unwrap_or_default();
    Ok(NameRecord {
        name: name.to_string(),
        owner,
        locators,
    })
}

/// The Stacks API's answer to `GET /v1/addresses/stacks/{address}`
/// (`BnsNamesOwnByAddressResponse`).
#[derive(serde::Deserialize)]
struct NamesOwned {
    #[serde(default)]
    names: Vec<String>,
}

/// Reads a `GET /v1/addresses/stacks/{address}` body: the valid names in it, lower-cased,
/// sorted, deduplicated, at most [`MAX_NAMES_OWNED`] (`ERR_INVALID_MESSAGE` when it is not
/// such an answer, `ERR_NOT_FOUND` when it lists no valid name). Entries that are not BNS
/// names are left out rather than failing the answer: the API's schema allows a wider
/// pattern (`[a-z0-9-_.+]{3,37}`) than names snap2p can dial.
pub fn parse_names_owned(
    principal: &Principal,
    body: &[u8],
    source: &str,
) -> Result<Vec<String>, Error> {
    let owned: NamesOwned = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorCode::InvalidMessage,
            format!("bns provider {source}: malformed answer for the names of {principal}: {e}"),
        )
    })?;
    let mut names: Vec<String> = owned
        .names
        .iter()
        .filter_map(|n| normalize_name(n).ok())
        .collect();
    names.sort();
    names.dedup();
    names.truncate(MAX_NAMES_OWNED);
    if names.is_empty() {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!("bns provider {source}: {principal} owns no name"),
        ));
    }
    Ok(names)
}

/// How [`Bns::http`] builds its providers.
#[derive(Clone, Debug)]
pub struct BnsConfig {
    /// The providers' base URLs (`https://api.hiro.so`, `http://127.0.0.1:3999`); every one
    /// is asked, every one must agree.
    pub providers: Vec<String>,
    /// The most one provider may take (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// The largest answer read (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub max_response_bytes: usize,
}

impl Default for BnsConfig {
    fn default() -> Self {
        BnsConfig {
            providers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl BnsConfig {
    /// The given provider base URLs with default limits.
    pub fn with_providers<I: IntoIterator<Item = S>, S: Into<String>>(providers: I) -> Self {
        BnsConfig {
            providers: providers.into_iter().map(Into::into).collect(),
            ..BnsConfig::default()
        }
    }
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

/// A Stacks API node as a [`ChainProvider`]: `GET {base}/v1/names/{name}`.
pub struct HttpProvider {
    base: String,
    client: HttpClient,
    timeout: Duration,
    max_bytes: usize,
}

impl std::fmt::Debug for HttpProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProvider")
            .field("base", &self.base)
            .finish()
    }
}

impl HttpProvider {
    /// A provider at `base_url` (`http://` or `https://`, no query), with `config`'s limits.
    pub fn new(base_url: &str, config: &BnsConfig) -> Result<HttpProvider, Error> {
        let base = base_url.trim().trim_end_matches('/').to_string();
        let uri: hyper::Uri = base.parse().map_err(|e| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("bns provider URL '{base_url}': {e}"),
            )
        })?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http") | Some("https"));
        if !scheme_ok || uri.host().is_none() || uri.query().is_some() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("bns provider URL '{base_url}': expected http(s)://host[:port][/path]"),
            ));
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|e| Error::new(ErrorCode::Internal, format!("bns TLS setup: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(HttpProvider {
            base,
            client,
            timeout: config.timeout,
            max_bytes: config.max_response_bytes,
        })
    }

    async fn get(&self, url: &str) -> Result<(u16, Vec<u8>), Error> {
        use http_body_util::BodyExt;
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| Error::new(ErrorCode::InvalidArgument, format!("bad URL {url}: {e}")))?;
        let req = hyper::Request::get(uri)
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, "snap2p")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| Error::new(ErrorCode::Internal, format!("request: {e}")))?;
        let resp = self.client.request(req).await.map_err(|e| {
            Error::new(
                ErrorCode::ConnectionClosed,
                format!("bns provider {}: {e}", self.base),
            )
        })?;
        let status = resp.status().as_u16();
        let too_large = || {
            Error::new(
                ErrorCode::MessageTooLarge,
                format!(
                    "bns provider {}: answer larger than {} bytes",
                    self.base, self.max_bytes
                ),
            )
        };
        if let Some(len) = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > self.max_bytes as u64 {
                return Err(too_large());
            }
        }
        let body = http_body_util::Limited::new(resp.into_body(), self.max_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    Error::new(
                        ErrorCode::ConnectionClosed,
                        format!("bns provider {}: reading the answer: {e}", self.base),
                    )
                }
            })?
            .to_bytes();
        Ok((status, body.to_vec()))
    }
}

#[async_trait::async_trait]
impl ChainProvider for HttpProvider {
    fn name(&self) -> &str {
        &self.base
    }

    async fn resolve_name(&self, name: &str) -> Result<NameRecord, Error> {
        let name = normalize_name(name)?;
        let url = format!("{}/v1/names/{name}", self.base);
        match self.get_timed(&url, &name).await? {
            (200, body) => parse_name_info(&name, &body, &self.base),
            (404, _) => Err(Error::new(
                ErrorCode::NotFound,
                format!("bns provider {}: no such name {name}", self.base),
            )),
            (s, _) => Err(Error::new(
                ErrorCode::Unspecified,
                format!("bns provider {}: HTTP {s} for {name}", self.base),
            )),
        }
    }

    async fn names_of(&self, principal: &Principal) -> Result<Vec<String>, Error> {
        let what = format!("the names of {principal}");
        let url = format!("{}/v1/addresses/stacks/{}", self.base, principal.address());
        match self.get_timed(&url, &what).await? {
            (200, body) => parse_names_owned(principal, &body, &self.base),
            (404, _) => Err(Error::new(
                ErrorCode::NotFound,
                format!("bns provider {}: {principal} owns no name", self.base),
            )),
            (s, _) => Err(Error::new(
                ErrorCode::Unspecified,
                format!("bns provider {}: HTTP {s} for {what}", self.base),
            )),
        }
    }
}

impl HttpProvider {
    /// [`HttpProvider::get`] within the provider's timeout (`ERR_TIMEOUT` naming `what`).
    async fn get_timed(&self, url: &str, what: &str) -> Result<(u16, Vec<u8>), Error> {
        tokio::time::timeout(self.timeout, self.get(url))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorCode::Timeout,
                    format!(
                        "bns provider {}: no complete answer for {what} within {} ms",
                        self.base,
                        self.timeout.as_millis()
                    ),
                )
            })?
    }
}

/// The BNS resolver: chain providers, all asked, all required to agree.
pub struct Bns {
    providers: Vec<Arc<dyn ChainProvider>>,
}

impl std::fmt::Debug for Bns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.providers.iter().map(|p| p.name()).collect();
        f.debug_struct("Bns").field("providers", &names).finish()
    }
}

impl Bns {
    /// A resolver over `providers` (at least one).
    pub fn new(providers: Vec<Arc<dyn ChainProvider>>) -> Result<Bns, Error> {
        if providers.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "bns: at least one chain provider is needed",
            ));
        }
        Ok(Bns { providers })
    }

    /// A resolver over Stacks API nodes at `config.providers`.
    pub fn http(config: &BnsConfig) -> Result<Bns, Error> {
        let providers = config
            .providers
            .iter()
            .map(|u| HttpProvider::new(u, config).map(|p| Arc::new(p) as Arc<dyn ChainProvider>))
            .collect::<Result<Vec<_>, Error>>()?;
        Bns::new(providers)
    }

    pub fn providers(&self) -> Vec<String> {
        self.providers
            .iter()
            .map(|p| p.name().to_string())
            .collect()
    }

    /// Asks every provider at once. Fails with `ERR_PROVIDERS_DISAGREE` when two answers
    /// differ (owner, or the set of locators, or found against not found); else with the
    /// first provider failure (timeout, malformed or oversized answer, unreachable), every
    /// provider's named in the message; `ERR_NOT_FOUND` when all say there is no such name.
    pub async fn resolve(&self, name: &str) -> Result<NameRecord, Error> {
        let name = normalize_name(name)?;
        let n = name.clone();
        let results = self
            .ask_all(move |p| {
                let n = n.clone();
                async move { p.resolve_name(&n).await }
            })
            .await?;
        cross_check(&name, results)
    }

    /// The names `principal` owns, asked of every provider at once under the rules of
    /// [`Bns::resolve`]: the lists must be equal, a single dissent fails the lookup.
    pub async fn names_of(&self, principal: &Principal) -> Result<Vec<String>, Error> {
        let p = principal.clone();
        let results = self
            .ask_all(move |prov| {
                let p = p.clone();
                async move { prov.names_of(&p).await }
            })
            .await?;
        agree(
            &format!("the names of {principal}"),
            results,
            |names| names.clone(),
            |names| match names {
                None => "no name".to_string(),
                Some(n) => format!("[{}]", n.join(", ")),
            },
        )
    }

    /// Runs `ask` against every provider at once; the results in provider order.
    async fn ask_all<T, F, Fut>(&self, ask: F) -> Result<Vec<(String, Result<T, Error>)>, Error>
    where
        T: Send + 'static,
        F: Fn(Arc<dyn ChainProvider>) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>> + Send + 'static,
    {
        let mut set = tokio::task::JoinSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let fut = ask(p.clone());
            set.spawn(async move { (i, fut.await) });
        }
        let mut results: Vec<Option<Result<T, Error>>> =
            (0..self.providers.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, r)) => results[i] = Some(r),
                Err(e) => {
                    return Err(Error::new(
                        ErrorCode::Internal,
                        format!("bns: a provider task failed: {e}"),
                    ))
                }
            }
        }
        Ok(self
            .providers
            .iter()
            .zip(results)
            .map(|(p, r)| (p.name().to_string(), r.expect("every task reported")))
            .collect())
    }
}

/// The `bns` step of the resolver chain: the zonefile locators of the names `principal`
/// owns. Hints, like every zonefile locator: the session must still authenticate as the
/// principal.
#[async_trait::async_trait]
impl Discovery for Bns {
    fn name(&self) -> &str {
        super::chain::STEP_BNS
    }

    /// `ERR_NOT_FOUND` when the principal owns no name or its names carry no locators;
    /// `ERR_PROVIDERS_DISAGREE` (or a provider failure) as [`Bns::resolve`] says. A name
    /// whose record names another owner (sold between the two questions) is left out.
    async fn resolve(
        &self,
        _peer: &PeerHandle,
        principal: &Principal,
    ) -> Result<Vec<Locator>, Error> {
        let names = self.names_of(principal).await?;
        let mut out: Vec<Locator> = Vec::new();
        // The names at once (each already asks every provider at once): one after the
        // other, four names cost four provider round trips.
        let records = join_all(
            names
                .iter()
                .take(MAX_NAMES_RESOLVED)
                .map(|name| Bns::resolve(self, name))
                .collect(),
        )
        .await;
        for record in records {
            match record {
                Ok(rec) if rec.owner == *principal => {
                    for l in rec.locators {
                        if !out.contains(&l) {
                            out.push(l);
                        }
                    }
                }
                Ok(_) => {}
                Err(e) if e.code == ErrorCode::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if out.is_empty() {
            return Err(Error::new(
                ErrorCode::NotFound,
                format!(
                    "bns: the names of {principal} ({}) carry no snap2p locators",
                    names.join(", ")
                ),
            ));
        }
        Ok(out)
    }
}

/// Every future of `futs` driven at once on the caller's task; the outputs in order.
async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// The cross-check rules of [`Bns::resolve`] over each provider's result, in provider
/// order (public for tests and for other resolvers over the same rules).
pub fn cross_check(
    name: &str,
    results: Vec<(String, Result<NameRecord, Error>)>,
) -> Result<NameRecord, Error> {
    // What two answers must share: the owner and the set of locators.
    agree(
        name,
        results,
        |rec| {
            let mut locs = rec.locators.clone();
            locs.sort();
            locs.dedup();
            (rec.owner.clone(), locs)
        },
        |a| match a {
            None => "no such name".to_string(),
            Some((o, l)) => {
                let l: Vec<String> = l.iter().map(|l| l.to_string()).collect();
                format!("owner {o}, locators [{}]", l.join(", "))
            }
        },
    )
}

/// The rules every BNS answer passes: each provider's answer reduced by `key` (None for
/// `ERR_NOT_FOUND`) must be equal (`ERR_PROVIDERS_DISAGREE` otherwise, each described);
/// then any provider failure fails the whole (all must answer); then the first answer,
/// or `ERR_NOT_FOUND` when all said there is none.
fn agree<T, K: PartialEq>(
    subject: &str,
    results: Vec<(String, Result<T, Error>)>,
    key: impl Fn(&T) -> K,
    describe: impl Fn(&Option<K>) -> String,
) -> Result<T, Error> {
    let mut answers: Vec<(&str, Option<K>)> = Vec::new();
    let mut failures: Vec<(&str, &Error)> = Vec::new();
    for (p, r) in &results {
        match r {
            Ok(v) => answers.push((p, Some(key(v)))),
            Err(e) if e.code == ErrorCode::NotFound => answers.push((p, None)),
            Err(e) => failures.push((p, e)),
        }
    }
    if answers.windows(2).any(|w| w[0].1 != w[1].1) {
        let each: Vec<String> = answers
            .iter()
            .map(|(p, a)| format!("{p}: {}", describe(a)))
            .collect();
        return Err(Error::new(
            ErrorCode::ProvidersDisagree,
            format!("bns: providers disagree on {subject}: {}", each.join("; ")),
        ));
    }
    if let Some((_, first)) = failures.first() {
        let each: Vec<String> = failures
            .iter()
            .map(|(p, e)| format!("{p}: {} {}", e.code.name(), e.message))
            .collect();
        return Err(Error::new(
            first.code,
            format!(
                "bns: {} of {} providers failed for {subject} (all must answer): {}",
                failures.len(),
                results.len(),
                each.join("; ")
            ),
        ));
    }
    match results.into_iter().next() {
        Some((_, Ok(v))) => Ok(v),
        _ => Err(Error::new(
            ErrorCode::NotFound,
            format!("bns: nothing found for {subject}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "alice.btc",
            "Alice.BTC",
            "a_b-1.id",
            "sub.alice.btc",
            format!("{}.btc", "n".repeat(48)).as_str(),
            format!("{}.alice.btc", "s".repeat(63)).as_str(),
        ] {
            assert!(is_bns_name(ok), "{ok}");
        }
        for bad in [
            "alice",
            "alice.",
            ".btc",
            "a.b.c.d",
            "alice.btc:4000",
            "1.2",
            "stacks:SP000000000000000000002Q6VF78",
            "al ice.btc",
            "alice.namespacewaytoolong12",
            "127.0.0.1",
            format!("{}.btc", "n".repeat(49)).as_str(),
            format!("{}.alice.btc", "s".repeat(64)).as_str(),
        ] {
            assert!(!is_bns_name(bad), "{bad}");
        }
        assert_eq!(normalize_name(" Alice.BTC ").unwrap(), "alice.btc");
    }

    #[test]
    fn zonefile_convention() {
        let z = "$ORIGIN alice.btc\n$TTL 3600\n\
                 _http._tcp IN URI 10 1 \"https://gaia.example/hub/x/profile.json\"\n\
                 _snap2p IN TXT \"203.0.113.7:4000\" \"wss://alice.example:443/snap2p\"\n\
                 _snap2p.alice.btc. 300 IN TXT \"relay://198.51.100.1:4001/SP000000000000000000002Q6VF78\" ; a relay\n\
                 _snap2p TXT \"not a locator\" \"203.0.113.7:4000\"\n\
                 other IN TXT \"192.0.2.1:1\"\n";
        let got: Vec<String> = zonefile_locators(z, "alice.btc")
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "203.0.113.7:4000",
                "wss://alice.example:443/snap2p",
                "relay://198.51.100.1:4001/SP000000000000000000002Q6VF78"
            ]
        );
        let many: String = (1..100)
            .map(|i| format!("_snap2p TXT \"10.0.0.{i}:1\"\n"))
            .collect();
        assert_eq!(zonefile_locators(&many, "a.b").len(), MAX_ZONEFILE_LOCATORS);
    }

    #[test]
    fn name_info_answers() {
        let ok = br#"{"address":"SP000000000000000000002Q6VF78","blockchain":"stacks","status":"name-register","zonefile":"_snap2p TXT \"10.0.0.1:9\"","zonefile_hash":"00"}"#;
        let r = parse_name_info("alice.btc", ok, "p").unwrap();
        assert_eq!(r.owner.address(), "SP000000000000000000002Q6VF78");
        assert_eq!(r.locators.len(), 1);
        for (body, code) in [
            (&b"not json"[..], ErrorCode::InvalidMessage),
            (br#"{"zonefile":""}"#, ErrorCode::InvalidMessage),
            (
                br#"{"address":"1J3PUxY5uDShUnHRrMyU6yKtoHEUPhKULs"}"#,
                ErrorCode::InvalidMessage,
            ),
            (
                br#"{"address":"SP000000000000000000002Q6VF78","status":"revoked"}"#,
                ErrorCode::NotFound,
            ),
        ] {
            assert_eq!(
                parse_name_info("alice.btc", body, "p").unwrap_err().code,
                code
            );
        }
    }

    #[test]
    fn names_owned_answers() {
        let p = Principal::from_address("SP000000000000000000002Q6VF78").unwrap();
        let ok = br#"{"names":["Zed.btc","alice.btc","alice.btc","not a name","x.y.z.w"]}"#;
        assert_eq!(
            parse_names_owned(&p, ok, "s").unwrap(),
            ["alice.btc", "zed.btc"]
        );
        for (body, code) in [
            (&b"not json"[..], ErrorCode::InvalidMessage),
            (br#"{"names":"alice.btc"}"#, ErrorCode::InvalidMessage),
            (br#"{"names":[]}"#, ErrorCode::NotFound),
            (br#"{}"#, ErrorCode::NotFound),
            (br#"{"names":["no"]}"#, ErrorCode::NotFound),
        ] {
            assert_eq!(parse_names_owned(&p, body, "s").unwrap_err().code, code);
        }
        let many: Vec<String> = (0..40).map(|i| format!("n{i:02}.btc")).collect();
        let body = serde_json::json!({ "names": many }).to_string();
        assert_eq!(
            parse_names_owned(&p, body.as_bytes(), "s").unwrap().len(),
            MAX_NAMES_OWNED
        );
    }

    #[test]
    fn cross_check_rules() {
        let rec = |addr: &str, locs: &[&str]| NameRecord {
            name: "alice.btc".into(),
            owner: Principal::from_address(addr).unwrap(),
            locators: locs.iter().map(|l| l.parse().unwrap()).collect(),
        };
        let a = "SP000000000000000000002Q6VF78";
        let b = "SP1P72Z3704VMT3DMHPP2CB8TGQWGDBHD3RPR9GZS";
        let nf = || Err(Error::new(ErrorCode::NotFound, "none"));
        let to = || Err(Error::new(ErrorCode::Timeout, "slow"));
        // Same answer, locators in another order: agreed.
        let r = cross_check(
            "alice.btc",
            vec![
                ("p1".into(), Ok(rec(a, &["10.0.0.1:1", "10.0.0.2:2"]))),
                ("p2".into(), Ok(rec(a, &["10.0.0.2:2", "10.0.0.1:1"]))),
            ],
        )
        .unwrap();
        assert_eq!(r.locators[0].to_string(), "10.0.0.1:1");
        for results in [
            vec![
                ("p1".into(), Ok(rec(a, &[]))),
                ("p2".into(), Ok(rec(b, &[]))),
            ],
            vec![
                ("p1".into(), Ok(rec(a, &["10.0.0.1:1"]))),
                ("p2".into(), Ok(rec(a, &[]))),
            ],
            vec![("p1".into(), Ok(rec(a, &[]))), ("p2".into(), nf())],
            vec![
                ("p1".into(), Ok(rec(a, &[]))),
                ("p2".into(), to()),
                ("p3".into(), Ok(rec(b, &[]))),
            ],
        ] {
            let e = cross_check("alice.btc", results).unwrap_err();
            assert_eq!(e.code, ErrorCode::ProvidersDisagree, "{e}");
        }
        let e = cross_check(
            "alice.btc",
            vec![("p1".into(), Ok(rec(a, &[]))), ("p2".into(), to())],
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Timeout);
        assert!(e.message.contains("p2"), "{e}");
        let e =
            cross_check("alice.btc", vec![("p1".into(), nf()), ("p2".into(), nf())]).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
    }
}
