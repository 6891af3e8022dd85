//! mDNS on the LAN (issue 30; docs/PROTOCOL.md "mDNS records"): Public peers announce
//! themselves as DNS-SD instances of `_snap2p._tcp.local.`, and any peer finds a principal
//! on its link with no internet at all.
//!
//! An answer is a *hint*: anyone on the link can announce any principal. The dialer still
//! runs the whole handshake and accepts only a session that authenticates as the principal
//! it asked for ([`crate::protocol::dial_hints`] dials with `expect`), so a lying answer
//! costs one failed dial, never a wrong peer.
//!
//! The daemon is `mdns-sd`'s: its own thread and UDP socket (port 5353), reached over flume
//! channels. This module only receives on those channels with `recv_async`, so no tokio
//! worker ever blocks on it. [`Mdns::stop`] (called by [`crate::Peer::close`]) withdraws the
//! announcement, ends the browse task and shuts the daemon down.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mdns_sd::{HostnameResolutionEvent, ServiceDaemon, ServiceEvent, ServiceInfo};

use crate::error::{Error, ErrorCode};
use crate::identity::Principal;
use crate::locator::{Host, Locator};
use crate::policy::Visibility;
use crate::protocol::{Discovery, PeerHandle};

/// The DNS-SD service type snap2p peers announce.
pub const SERVICE_TYPE: &str = "_snap2p._tcp.local.";
/// The record layout version (`v=` in TXT).
pub const TXT_VERSION: &str = "1";
/// The most locators one announcement carries (`l0`…`l7`).
pub const MAX_LOCATORS: usize = 8;
/// The largest TXT record this module announces or accepts, in bytes of its wire form (each
/// string with its length byte). RFC 6763 §6.2: up to 1300 bytes still fits, with the rest
/// of the answer, in one packet on an Ethernet link; every string is at most 255 bytes.
pub const MAX_TXT_BYTES: usize = 1300;

fn mdns_err(e: mdns_sd::Error) -> Error {
    Error::new(ErrorCode::Internal, format!("mdns: {e}"))
}

/// How an [`Mdns`] module behaves.
#[derive(Clone, Debug)]
pub struct MdnsConfig {
    /// The service type (default [`SERVICE_TYPE`]); two groups of peers on one link that
    /// must not see each other can use two types.
    pub service_type: String,
    /// Whether a Public peer announces itself (default true). Private and Stealth peers
    /// never announce, whatever this says (spec §4.1.2, §10.3).
    pub announce: bool,
    /// How long [`Discovery::resolve`] waits for an answer (default 3 s).
    pub resolve_timeout: Duration,
    /// The most announcements remembered (default 1024); more are dropped until some go.
    pub max_entries: usize,
}

impl Default for MdnsConfig {
    fn default() -> Self {
        MdnsConfig {
            service_type: SERVICE_TYPE.to_string(),
            announce: true,
            // mdns-sd asks again 1 s after its first query; 3 s covers the first query, a
            // repeat and a late responder on a busy link.
            resolve_timeout: Duration::from_secs(3),
            max_entries: 1024,
        }
    }
}

/// TXT properties, key and value, in record order.
pub type Txt = Vec<(String, String)>;

/// One announcement heard on the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdnsEntry {
    /// The DNS-SD instance's full name.
    pub fullname: String,
    /// The principal it claims (a hint: AUTH proves it).
    pub principal: Principal,
    /// Its locators, with unspecified hosts replaced by the instance's addresses.
    pub locators: Vec<Locator>,
}

#[derive(Default)]
struct Found {
    entries: Mutex<HashMap<String, MdnsEntry>>,
    changed: tokio::sync::Notify,
}

/// One resolved DNS-SD instance as the daemon reported it.
#[derive(Clone)]
struct Heard {
    fullname: String,
    txt: Txt,
    addrs: Vec<IpAddr>,
}

impl Heard {
    /// Whether a locator of the TXT needs an address of a family the daemon gave none of
    /// (`0.0.0.0:port` and no IPv4 address).
    fn lacks_addresses(&self) -> bool {
        let usable: Vec<IpAddr> = self.addrs.iter().copied().filter(usable_addr).collect();
        unspecified_locators(&self.txt)
            .any(|ip| !usable.iter().any(|a| ip.is_ipv6() || a.is_ipv4()))
    }
}

impl Found {
    /// Records what was heard of an instance; `only_if` = the entry this update builds
    /// on (an address lookup's), which a newer announcement may have replaced since.
    /// Returns the entry recorded.
    fn record(&self, heard: &Heard, max: usize, only_if: Option<&MdnsEntry>) -> Option<MdnsEntry> {
        let entry = match parse_txt(&heard.fullname, &heard.txt, &heard.addrs) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::debug!("mdns: ignoring {}: {e}", heard.fullname);
                return None;
            }
        };
        let mut m = self.entries.lock().unwrap();
        if let Some(before) = only_if {
            if m.get(&entry.fullname) != Some(before) {
                return None;
            }
        }
        if m.len() < max || m.contains_key(&entry.fullname) {
            m.insert(entry.fullname.clone(), entry.clone());
        }
        drop(m);
        self.changed.notify_waiters();
        Some(entry)
    }
}

/// How long an address lookup of an instance's host asks.
const ADDRESS_LOOKUP_MS: u64 = 3000;

/// Address lookups of instances' hosts ([`Lookups::start`]), one per host at a time and no
/// more than `max` at once.
struct Lookups {
    daemon: ServiceDaemon,
    runtime: tokio::runtime::Handle,
    found: Arc<Found>,
    hosts: Mutex<std::collections::HashSet<String>>,
    max: usize,
}

impl Lookups {
    /// Asks the link for the addresses of an instance's host, when what the daemon
    /// reported lacks a family one of its locators needs, and updates the entry with them.
    /// Why: a responder answers a query that came over IPv6 with AAAA records only, so a
    /// querier that first hears an instance that way knows no IPv4 address for its
    /// `0.0.0.0:port` locator; its later queries list the instance as a known answer, so
    /// the responder never sends more, and the instance stayed without a locator until its
    /// records expired (75 min). In the mDNS test bed one dial in four heard its peer first
    /// over IPv6 and could not reach it for the 10 s it waited. An A/AAAA query for the
    /// host is not suppressed.
    fn start(self: &Arc<Self>, host: &str, heard: Heard, entry: MdnsEntry) {
        {
            let mut hosts = self.hosts.lock().unwrap();
            if hosts.len() >= self.max || !hosts.insert(host.to_string()) {
                return;
            }
        }
        let rx = match self.daemon.resolve_hostname(host, Some(ADDRESS_LOOKUP_MS)) {
            Ok(rx) => rx,
            Err(e) => {
                tracing::debug!("mdns: no address lookup of {host}: {e}");
                self.hosts.lock().unwrap().remove(host);
                return;
            }
        };
        let (this, host) = (self.clone(), host.to_string());
        self.runtime.spawn(async move {
            let (mut heard, mut entry) = (heard, entry);
            // Ends with the lookup's timeout, or the daemon's shutdown (the channel closes).
            while let Ok(ev) = rx.recv_async().await {
                match ev {
                    HostnameResolutionEvent::AddressesFound(_, addrs) => {
                        for a in addrs.iter().map(|a| a.to_ip_addr()) {
                            if !heard.addrs.contains(&a) {
                                heard.addrs.push(a);
                            }
                        }
                        match this.found.record(&heard, usize::MAX, Some(&entry)) {
                            Some(e) => entry = e,
                            None => break,
                        }
                        if !heard.lacks_addresses() {
                            break;
                        }
                    }
                    HostnameResolutionEvent::SearchTimeout(_)
                    | HostnameResolutionEvent::SearchStopped(_) => break,
                    _ => {}
                }
            }
            let _ = this.daemon.stop_resolve_hostname(&host);
            this.hosts.lock().unwrap().remove(&host);
        });
    }
}

/// The mDNS discovery module: browses from [`Mdns::start`] on, announces the peer it is
/// attached to (when Public, see [`crate::PeerBuilder::mdns`]), answers
/// [`Discovery::resolve`] from what it heard.
pub struct Mdns {
    daemon: ServiceDaemon,
    config: MdnsConfig,
    found: Arc<Found>,
    browse: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The full name and TXT of our announcement, if any.
    announced: Mutex<Option<(String, Txt)>>,
    stopped: AtomicBool,
}

impl std::fmt::Debug for Mdns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mdns")
            .field("config", &self.config)
            .finish()
    }
}

impl Mdns {
    /// Starts the daemon and the browse task (inside a tokio runtime).
    pub fn start(config: MdnsConfig) -> Result<Arc<Mdns>, Error> {
        if !config.service_type.ends_with("._tcp.local.") {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "mdns service type '{}' must end with '._tcp.local.'",
                    config.service_type
                ),
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::new(
                ErrorCode::InvalidArgument,
                "mdns: Mdns::start needs a tokio runtime (its browse task runs there)",
            )
        })?;
        let daemon = ServiceDaemon::new().map_err(mdns_err)?;
        let events = daemon.browse(&config.service_type).map_err(mdns_err)?;
        let found = Arc::new(Found::default());
        let f = found.clone();
        let max = config.max_entries;
        let ty = config.service_type.clone();
        let lookups = Arc::new(Lookups {
            daemon: daemon.clone(),
            runtime: runtime.clone(),
            found: found.clone(),
            hosts: Mutex::default(),
            max,
        });
        let browse = runtime.spawn(async move {
            while let Ok(ev) = events.recv_async().await {
                match ev {
                    ServiceEvent::ServiceResolved(svc) => {
                        if svc.ty_domain != ty {
                            continue;
                        }
                        let addrs: Vec<IpAddr> =
                            svc.addresses.iter().map(|a| a.to_ip_addr()).collect();
                        let txt: Txt = svc
                            .txt_properties
                            .iter()
                            .map(|p| (p.key().to_string(), p.val_str().to_string()))
                            .collect();
                        let heard = Heard {
                            fullname: svc.fullname.clone(),
                            txt,
                            addrs,
                        };
                        if let Some(entry) = f.record(&heard, max, None) {
                            if heard.lacks_addresses() {
                                lookups.start(&svc.host, heard, entry);
                            }
                        }
                    }
                    ServiceEvent::ServiceRemoved(_, fullname) => {
                        f.entries.lock().unwrap().remove(&fullname);
                    }
                    _ => {}
                }
            }
        });
        Ok(Arc::new(Mdns {
            daemon,
            config,
            found,
            browse: Mutex::new(Some(browse)),
            announced: Mutex::new(None),
            stopped: AtomicBool::new(false),
        }))
    }

    pub fn config(&self) -> &MdnsConfig {
        &self.config
    }

    /// Every announcement heard and not withdrawn.
    pub fn entries(&self) -> Vec<MdnsEntry> {
        let mut v: Vec<MdnsEntry> = self
            .found
            .entries
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.fullname.cmp(&b.fullname));
        v
    }

    /// What is known of `principal` now (no waiting).
    pub fn known(&self, principal: &Principal) -> Vec<Locator> {
        let m = self.found.entries.lock().unwrap();
        let mut names: Vec<&String> = m.keys().filter(|k| m[*k].principal == *principal).collect();
        names.sort();
        let mut out = Vec::new();
        for n in names {
            for l in &m[n].locators {
                if !out.contains(l) {
                    out.push(l.clone());
                }
            }
        }
        out
    }

    /// Announces (or re-announces, when they changed) `peer`'s reachable locators, when
    /// `peer` is Public and [`MdnsConfig::announce`] is on; withdraws the announcement
    /// otherwise. The peer calls this when its listeners change.
    pub fn refresh(&self, peer: &PeerHandle, node_key: &[u8; 32]) -> Result<(), Error> {
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        let (Some(principal), Some(visibility)) = (peer.principal(), peer.visibility()) else {
            return Ok(());
        };
        if visibility != Visibility::Public || !self.config.announce {
            self.withdraw();
            return Ok(());
        }
        self.announce(&principal, node_key, &peer.reachable_locators())
    }

    /// Announces `principal` at `locators` as given, replacing any earlier announcement of
    /// this module. [`Mdns::refresh`] is what a peer uses (it checks visibility); this is
    /// the record layer alone, e.g. for a test's lying announcer: nothing stops anyone on
    /// the link from announcing any principal, which is why answers are only hints.
    pub fn announce(
        &self,
        principal: &Principal,
        node_key: &[u8; 32],
        locators: &[Locator],
    ) -> Result<(), Error> {
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        let txt = build_txt(principal, locators);
        if !txt.iter().any(|(k, _)| k.starts_with('l')) {
            // Nothing a LAN peer could dial (no listener, or only loopback ones).
            self.withdraw();
            return Ok(());
        }
        let instance = instance_name(principal, node_key);
        let fullname = format!("{instance}.{}", self.config.service_type);
        if let Some((name, old)) = &*self.announced.lock().unwrap() {
            if *name == fullname && *old == txt {
                return Ok(());
            }
            if *name != fullname {
                let _ = self.daemon.unregister(name);
            }
        }
        // The SRV port: the first TCP locator's (informational; TXT carries the locators).
        let port = locators
            .iter()
            .find(|l| l.scheme().as_str() == "tcp" && !l.is_loopback())
            .map(|l| l.port())
            .unwrap_or(9);
        let props: Vec<(&str, &str)> = txt.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let info = ServiceInfo::new(
            &self.config.service_type,
            &instance,
            &format!("{instance}.local."),
            (),
            port,
            &props[..],
        )
        .map_err(mdns_err)?
        .enable_addr_auto();
        // Registering the same full name again replaces the service (the daemon keeps one
        // per full name) and announces it anew.
        self.daemon.register(info).map_err(mdns_err)?;
        *self.announced.lock().unwrap() = Some((fullname, txt));
        Ok(())
    }

    /// Withdraws our announcement (a goodbye packet, TTL 0), if any.
    pub fn withdraw(&self) {
        if let Some((name, _)) = self.announced.lock().unwrap().take() {
            // The status receiver is dropped: the daemon sends the goodbye either way.
            let _ = self.daemon.unregister(&name);
        }
    }

    /// Whether this module announces a peer now.
    pub fn is_announcing(&self) -> bool {
        self.announced.lock().unwrap().is_some()
    }

    /// Withdraws the announcement, ends the browse and shuts the daemon down. Idempotent.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.withdraw();
        let _ = self.daemon.stop_browse(&self.config.service_type);
        if let Some(t) = self.browse.lock().unwrap().take() {
            t.abort();
        }
        // The daemon thread sends the goodbye queued above before it exits.
        let _ = self.daemon.shutdown();
        self.found.changed.notify_waiters();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

impl Drop for Mdns {
    fn drop(&mut self) {
        self.stop();
    }
}

#[async_trait::async_trait]
impl Discovery for Mdns {
    fn name(&self) -> &str {
        "mdns"
    }

    /// What the link says of `principal`, waiting up to [`MdnsConfig::resolve_timeout`]
    /// for a first answer.
    async fn resolve(
        &self,
        _peer: &PeerHandle,
        principal: &Principal,
    ) -> Result<Vec<Locator>, Error> {
        let deadline = tokio::time::Instant::now() + self.config.resolve_timeout;
        loop {
            let changed = self.found.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let known = self.known(principal);
            if !known.is_empty() {
                return Ok(known);
            }
            if self.is_stopped() || tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    format!(
                        "mdns: no announcement of {principal} on the link within {} ms",
                        self.config.resolve_timeout.as_millis()
                    ),
                ));
            }
        }
    }
}

/// The DNS-SD instance label: the principal's address and the first 4 bytes of the node
/// key in hex (`SP…-0a1b2c3d`), at most 63 bytes; one principal may run several nodes.
pub fn instance_name(principal: &Principal, node_key: &[u8; 32]) -> String {
    format!("{}-{}", principal.address(), hex::encode(&node_key[..4]))
}

/// The TXT properties announcing `principal` at `locators` (docs/PROTOCOL.md "mDNS
/// records"): `v=1`, `p=<stacks:…>`, then `l0`, `l1`, … one locator each, loopback ones
/// left out, as many as fit in [`MAX_LOCATORS`] and [`MAX_TXT_BYTES`]. A listener bound to
/// an unspecified address (`0.0.0.0`, `[::]`) is announced as such: it means "at each
/// address of this instance".
pub fn build_txt(principal: &Principal, locators: &[Locator]) -> Txt {
    let mut txt = vec![
        ("v".to_string(), TXT_VERSION.to_string()),
        ("p".to_string(), principal.to_string()),
    ];
    let mut size: usize = txt.iter().map(|(k, v)| 2 + k.len() + v.len()).sum();
    let mut n = 0;
    for l in locators {
        if n == MAX_LOCATORS {
            break;
        }
        if l.is_loopback() {
            continue;
        }
        let key = format!("l{n}");
        let val = l.to_string();
        let len = key.len() + 1 + val.len();
        if len > 255 || size + 1 + len > MAX_TXT_BYTES {
            continue;
        }
        size += 1 + len;
        txt.push((key, val));
        n += 1;
    }
    txt
}

/// Reads an announcement's TXT properties: `v` must be 1, `p` a principal; each `l<n>` that
/// parses as a locator and is not loopback is kept, an unspecified host expanded to each
/// of `addrs` (IPv6 link-local addresses left out: a locator has no scope id).
pub fn parse_txt(
    fullname: &str,
    txt: &[(String, String)],
    addrs: &[IpAddr],
) -> Result<MdnsEntry, Error> {
    let bad = |why: String| Error::new(ErrorCode::InvalidMessage, format!("mdns: {why}"));
    let size: usize = txt.iter().map(|(k, v)| 2 + k.len() + v.len()).sum();
    if size > MAX_TXT_BYTES {
        return Err(bad(format!("TXT of {size} bytes (limit {MAX_TXT_BYTES})")));
    }
    let get = |key: &str| {
        txt.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    };
    if get("v") != Some(TXT_VERSION) {
        return Err(bad(format!("record version {:?}, expected 1", get("v"))));
    }
    let principal = Principal::parse(get("p").unwrap_or(""))
        .map_err(|e| bad(format!("bad principal: {}", e.message)))?;
    let mut addrs: Vec<IpAddr> = addrs.iter().copied().filter(usable_addr).collect();
    addrs.sort();
    let mut locators = Vec::new();
    for n in 0..MAX_LOCATORS {
        let Some(v) = get(&format!("l{n}")) else {
            continue;
        };
        let Ok(l) = v.parse::<Locator>() else {
            continue;
        };
        let expanded: Vec<Locator> = match l.host() {
            Host::Ip(ip) if ip.is_unspecified() => addrs
                .iter()
                .filter(|a| ip.is_ipv6() || a.is_ipv4())
                .map(|a| l.with_addr(SocketAddr::new(*a, l.port())))
                .collect(),
            _ => vec![l],
        };
        for l in expanded {
            if !l.is_loopback() && !locators.contains(&l) {
                locators.push(l);
            }
        }
    }
    Ok(MdnsEntry {
        fullname: fullname.to_string(),
        principal,
        locators,
    })
}

/// An instance address a LAN peer can dial: not loopback, not unspecified, not IPv6
/// link-local (it needs a scope the locator cannot carry).
fn usable_addr(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

/// The unspecified hosts (`0.0.0.0`, `::`) of the TXT's locators.
fn unspecified_locators(txt: &Txt) -> impl Iterator<Item = IpAddr> + '_ {
    txt.iter()
        .filter(|(k, _)| k.starts_with('l'))
        .filter_map(|(_, v)| v.parse::<Locator>().ok())
        .filter_map(|l| match l.host() {
            Host::Ip(ip) if ip.is_unspecified() => Some(*ip),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Principal {
        Principal::parse("stacks:SP000000000000000000002Q6VF78").unwrap()
    }

    #[test]
    fn txt_round_trip_expands_unspecified_hosts() {
        let locs: Vec<Locator> = vec![
            Locator::parse_listen("0.0.0.0:4000").unwrap(),
            "127.0.0.1:4001".parse().unwrap(),
            "ws://198.51.100.7:8080/snap2p".parse().unwrap(),
        ];
        let txt = build_txt(&alice(), &locs);
        assert_eq!(txt[0], ("v".into(), "1".into()));
        assert_eq!(txt[1].1, "stacks:SP000000000000000000002Q6VF78");
        assert_eq!(txt.len(), 4, "loopback left out: {txt:?}");
        let addrs = [
            "10.0.0.5".parse().unwrap(),
            "fe80::1".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        ];
        let e = parse_txt("x._snap2p._tcp.local.", &txt, &addrs).unwrap();
        assert_eq!(e.principal, alice());
        let got: Vec<String> = e.locators.iter().map(|l| l.to_string()).collect();
        assert_eq!(got, ["10.0.0.5:4000", "ws://198.51.100.7:8080/snap2p"]);
    }

    #[test]
    fn txt_limits_hold() {
        let many: Vec<Locator> = (1..40)
            .map(|i| {
                format!("ws://host-{i}.example:443/{}", "p".repeat(200))
                    .parse()
                    .unwrap()
            })
            .collect();
        let txt = build_txt(&alice(), &many);
        let size: usize = txt.iter().map(|(k, v)| 2 + k.len() + v.len()).sum();
        assert!(size <= MAX_TXT_BYTES, "{size}");
        assert!(txt.iter().all(|(k, v)| k.len() + 1 + v.len() <= 255));
        assert!(txt.len() - 2 <= MAX_LOCATORS);
    }

    #[test]
    fn bad_records_are_refused() {
        let addrs = ["10.0.0.5".parse().unwrap()];
        let t = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        for bad in [
            t(&[("p", "stacks:SP000000000000000000002Q6VF78")]),
            t(&[("v", "2"), ("p", "stacks:SP000000000000000000002Q6VF78")]),
            t(&[("v", "1"), ("p", "SP000000000000000000002Q6VF78")]),
            t(&[("v", "1"), ("p", "stacks:SP000000000000000000002Q6VF79")]),
            t(&[
                ("v", "1"),
                ("p", "stacks:SP000000000000000000002Q6VF78"),
                ("l0", &"x".repeat(1400)),
            ]),
        ] {
            let e = parse_txt("x", &bad, &addrs).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidMessage, "{bad:?}");
        }
        // Unparsable and loopback locators are dropped, the record kept.
        let e = parse_txt(
            "x",
            &t(&[
                ("v", "1"),
                ("p", "stacks:SP000000000000000000002Q6VF78"),
                ("l0", "not a locator"),
                ("l1", "127.0.0.1:80"),
                ("l2", "10.1.2.3:9"),
            ]),
            &addrs,
        )
        .unwrap();
        assert_eq!(e.locators, vec!["10.1.2.3:9".parse::<Locator>().unwrap()]);
    }

    #[test]
    fn start_outside_a_runtime_is_an_error_not_a_panic() {
        let e = Mdns::start(MdnsConfig::default()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        let bad = MdnsConfig {
            service_type: "_snap2p._udp.local.".into(),
            ..MdnsConfig::default()
        };
        assert_eq!(
            Mdns::start(bad).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }

    /// An IPv4 `0.0.0.0:port` locator with only IPv6 addresses heard (an answer that came
    /// over IPv6) needs an address lookup; any other mix does not.
    #[test]
    fn an_unspecified_ipv4_locator_without_an_ipv4_address_lacks_addresses() {
        let heard = |l: &str, addrs: &[&str]| Heard {
            fullname: "x._snap2p._tcp.local.".into(),
            txt: vec![
                ("v".into(), "1".into()),
                ("p".into(), alice().to_string()),
                ("l0".into(), l.into()),
            ],
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        };
        assert!(heard("0.0.0.0:4000", &["fe80::1"]).lacks_addresses());
        assert!(heard("0.0.0.0:4000", &["fe80::1", "2001:db8::1"]).lacks_addresses());
        assert!(heard("0.0.0.0:4000", &["127.0.0.1"]).lacks_addresses());
        assert!(heard("0.0.0.0:4000", &[]).lacks_addresses());
        assert!(!heard("0.0.0.0:4000", &["fe80::1", "10.79.0.1"]).lacks_addresses());
        assert!(!heard("[::]:4000", &["2001:db8::1"]).lacks_addresses());
        assert!(!heard("[::]:4000", &["10.79.0.1"]).lacks_addresses());
        assert!(heard("[::]:4000", &["fe80::1"]).lacks_addresses());
        assert!(!heard("10.79.0.5:4000", &[]).lacks_addresses());
        // The entry built once the lookup found the IPv4 address has the locator.
        let h = heard("0.0.0.0:4000", &["fe80::1", "10.79.0.1"]);
        let e = parse_txt(&h.fullname, &h.txt, &h.addrs).unwrap();
        assert_eq!(
            e.locators,
            vec!["10.79.0.1:4000".parse::<Locator>().unwrap()]
        );
    }

    #[test]
    fn instance_names_fit_a_dns_label() {
        let n = instance_name(&alice(), &[0xab; 32]);
        assert_eq!(n, "SP000000000000000000002Q6VF78-abababab");
        assert!(n.len() <= 63);
    }
}
