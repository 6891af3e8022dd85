//! Node policy: visibility, invite tokens, allowlists, pre-auth rate limits (spec §4) and
//! permissions: which stream labels an admitted principal may open (PROTOCOL.md §33).
//!
//! Everything here is checked before expensive work: a stealth listener looks an invite
//! token up (one hash, one map lookup) before any Noise or secp256k1 operation, and the
//! per-address rate limiter runs before a single byte is read.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use web_time::Instant;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode};
use crate::identity::{LabelPattern, NetworkFilter, PermissionGrant, Principal, MAX_GRANT_LABELS};
use crate::rate::TokenBucket;
pub use crate::wire::message::Visibility;

/// Invite tokens are 128–256 bits (spec §4.2.1).
pub const MIN_TOKEN_LEN: usize = 16;
pub const MAX_TOKEN_LEN: usize = 32;
/// Default invite validity: 24 hours, reusable (spec §4.2.2 v0.1 default).
pub const DEFAULT_INVITE_TTL_SECS: i64 = 24 * 3600;
/// Most tokens one node keeps (a bound on what `invite create` can make memory do).
pub const MAX_INVITES: usize = 10_000;

/// An invite token as shown to the host: the token itself only at creation time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The token bytes (shared out of band, e.g. as hex).
    pub token: Vec<u8>,
    /// First 8 hex characters of SHA-256(token): how `list`/`revoke` name a token.
    pub id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub one_time: bool,
    pub uses: u64,
}

impl Invite {
    /// The token as lowercase hex, the form users paste into `--invite`.
    pub fn token_hex(&self) -> String {
        hex::encode(&self.token)
    }
}

fn token_key(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

fn token_id(key: &[u8; 32]) -> String {
    hex::encode(&key[..4])
}

/// Parses an invite token given as hex (what `Invite::token_hex` prints).
pub fn parse_invite_token(s: &str) -> Result<Vec<u8>, Error> {
    let bytes = hex::decode(s.trim()).map_err(|_| {
        Error::new(
            ErrorCode::InvalidArgument,
            "invite token must be hex (32 to 64 hex characters)",
        )
    })?;
    if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&bytes.len()) {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            "invite token must be 16 to 32 bytes",
        ));
    }
    Ok(bytes)
}

/// The set of invite tokens a stealth node accepts. Tokens are stored by their SHA-256, so
/// lookups do not compare secret bytes in variable time.
#[derive(Debug, Default)]
pub struct InviteBook {
    tokens: Mutex<HashMap<[u8; 32], Invite>>,
}

impl InviteBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a fresh random 256-bit token.
    pub fn create(&self, ttl_secs: i64, one_time: bool, now: i64) -> Result<Invite, Error> {
        let mut token = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut token);
        self.add(token, now + ttl_secs, one_time, now)
    }

    /// Adds a token made elsewhere (16–32 bytes).
    pub fn add(
        &self,
        token: Vec<u8>,
        expires_at: i64,
        one_time: bool,
        now: i64,
    ) -> Result<Invite, Error> {
        if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len()) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "invite token must be 16 to 32 bytes",
            ));
        }
        if expires_at <= now {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "invite expiry must be in the future",
            ));
        }
        let key = token_key(&token);
        let invite = Invite {
            id: token_id(&key),
            token,
            created_at: now,
            expires_at,
            one_time,
            uses: 0,
        };
        let mut tokens = self.tokens.lock().unwrap();
        tokens.retain(|_, i| i.expires_at > now);
        if tokens.len() >= MAX_INVITES {
            return Err(Error::new(
                ErrorCode::ResourceExhausted,
                "too many invite tokens",
            ));
        }
        tokens.insert(key, invite.clone());
        Ok(invite)
    }

    /// Revokes by token bytes, hex token or id prefix; returns whether one was removed.
    pub fn revoke(&self, token_or_id: &str) -> bool {
        let mut tokens = self.tokens.lock().unwrap();
        let needle = token_or_id.trim().to_ascii_lowercase();
        let key = hex::decode(&needle).ok().map(|t| token_key(&t));
        let before = tokens.len();
        tokens.retain(|k, i| Some(*k) != key && !(needle.len() >= 4 && i.id.starts_with(&needle)));
        tokens.len() != before
    }

    /// Tokens still valid at `now` (token bytes omitted: they are secrets).
    pub fn list(&self, now: i64) -> Vec<Invite> {
        let tokens = self.tokens.lock().unwrap();
        let mut out: Vec<Invite> = tokens
            .values()
            .filter(|i| i.expires_at > now)
            .map(|i| Invite {
                token: Vec::new(),
                ..i.clone()
            })
            .collect();
        out.sort_by_key(|i| i.created_at);
        out
    }

    /// Whether a token would be accepted at `now`, without using it (admission control
    /// looks before the session redeems).
    pub fn is_valid(&self, token: &[u8], now: i64) -> bool {
        !token.is_empty()
            && self
                .tokens
                .lock()
                .unwrap()
                .get(&token_key(token))
                .is_some_and(|i| i.expires_at > now)
    }

    /// Checks a presented token; one-time tokens are consumed.
    pub fn redeem(&self, token: &[u8], now: i64) -> Result<(), Error> {
        if token.is_empty() {
            return Err(Error::new(ErrorCode::InviteRequired, "no invite token"));
        }
        let key = token_key(token);
        let mut tokens = self.tokens.lock().unwrap();
        match tokens.get_mut(&key) {
            Some(i) if i.expires_at > now => {
                i.uses += 1;
                if i.one_time {
                    tokens.remove(&key);
                }
                Ok(())
            }
            Some(_) => {
                tokens.remove(&key);
                Err(Error::new(ErrorCode::InviteInvalid, "invite token expired"))
            }
            None => Err(Error::new(ErrorCode::InviteInvalid, "unknown invite token")),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.lock().unwrap().is_empty()
    }
}

/// Principals allowed in after authentication (Private and Stealth modes).
#[derive(Debug, Default)]
pub struct Allowlist {
    set: RwLock<HashSet<Principal>>,
}

impl Allowlist {
    pub fn new(principals: impl IntoIterator<Item = Principal>) -> Self {
        Allowlist {
            set: RwLock::new(principals.into_iter().collect()),
        }
    }
    pub fn allow(&self, p: Principal) -> bool {
        self.set.write().unwrap().insert(p)
    }
    pub fn disallow(&self, p: &Principal) -> bool {
        self.set.write().unwrap().remove(p)
    }
    pub fn contains(&self, p: &Principal) -> bool {
        self.set.read().unwrap().contains(p)
    }
    pub fn list(&self) -> Vec<Principal> {
        let mut v: Vec<Principal> = self.set.read().unwrap().iter().cloned().collect();
        v.sort();
        v
    }
    pub fn is_empty(&self) -> bool {
        self.set.read().unwrap().is_empty()
    }
}

/// The source a connection is counted under by admission control and the pre-auth rate
/// limit: an IPv4 address (also when it arrives IPv4-mapped), or an IPv6 /64, the prefix
/// one subscriber, host or container gets (one address per connection is free for them).
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
    }
}

/// A per-source budget of failed unauthenticated handshakes (a token bucket per source,
/// [`source_of`]). Only failures are charged: a peer that authenticates costs its source
/// nothing, so scanners sharing an address (a NAT, a campus, a carrier NAT) with honest
/// peers use up only their own failures' worth.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
    max_sources: usize,
}

impl RateLimiter {
    /// `per_minute` failures per source, with a burst of the same size (0: no limit).
    pub fn new(per_minute: u32) -> Self {
        Self::with_capacity(per_minute, 65_536)
    }

    /// A limiter tracking at most `max_sources` sources at once.
    pub fn with_capacity(per_minute: u32, max_sources: usize) -> Self {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
            max_sources: max_sources.max(1),
        }
    }

    /// Whether `ip`'s source has failures left in its budget (nothing is taken).
    pub fn has_budget(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap();
        match buckets.get_mut(&source_of(ip)) {
            Some(b) => b.available(now) >= 1.0,
            None => true,
        }
    }

    /// Charges one failed handshake to `ip`'s source.
    pub fn charge(&self, ip: IpAddr, now: Instant) {
        if self.per_minute == 0 {
            return;
        }
        let source = source_of(ip);
        let cap = self.per_minute as f64;
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.len() >= self.max_sources && !buckets.contains_key(&source) {
            // Bound the table: forget sources that have refilled completely.
            buckets.retain(|_, b| !b.is_full_at(now));
            if buckets.len() >= self.max_sources {
                // Still full (a scanner with many addresses): forget the source seen least
                // recently rather than growing.
                if let Some(oldest) = buckets
                    .iter()
                    .min_by_key(|(_, b)| b.last_used())
                    .map(|(k, _)| *k)
                {
                    buckets.remove(&oldest);
                }
            }
        }
        buckets
            .entry(source)
            .or_insert_with(|| TokenBucket::new(cap / 60.0, cap))
            .take(1.0, now);
    }
}

/// Default unauthenticated-handshake rates per source address (the reference's values).
pub fn default_preauth_rate(visibility: Visibility) -> u32 {
    match visibility {
        Visibility::Public => 0,
        Visibility::Private => 30,
        Visibility::Stealth => 5,
    }
}

/// Everything a listener consults before and after authentication.
#[derive(Debug)]
pub struct NodePolicy {
    pub visibility: Visibility,
    pub invites: InviteBook,
    pub allowlist: Allowlist,
    /// Enforce the allowlist after auth (default: Private and Stealth).
    pub allowlist_gate: bool,
    /// Which Stacks networks a remote principal may be on.
    pub networks: NetworkFilter,
    pub preauth_limiter: RateLimiter,
    /// Cap on handshakes in progress at once (all sources).
    pub max_pending_handshakes: usize,
    /// Time allowed from TCP accept to AUTH_OK.
    pub handshake_timeout: Duration,
}

impl NodePolicy {
    pub fn new(visibility: Visibility) -> Self {
        NodePolicy {
            visibility,
            invites: InviteBook::new(),
            allowlist: Allowlist::default(),
            allowlist_gate: visibility != Visibility::Public,
            networks: NetworkFilter::ANY,
            preauth_limiter: RateLimiter::new(default_preauth_rate(visibility)),
            max_pending_handshakes: 256,
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// Stealth listeners answer nothing before a valid KNOCK.
    pub fn knock_required(&self) -> bool {
        self.visibility == Visibility::Stealth
    }

    /// The post-auth gate (spec §4.3 step 5).
    pub fn check_principal(&self, p: &Principal) -> Result<(), Error> {
        if !self.networks.accepts(p.network()) {
            return Err(Error::new(
                ErrorCode::NotAllowed,
                format!("{p} is on a network this node does not accept"),
            ));
        }
        if self.allowlist_gate && !self.allowlist.contains(p) {
            return Err(Error::new(
                ErrorCode::NotAllowed,
                format!("{p} is not on the allowlist"),
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Permissions: which stream labels an admitted principal may open (PROTOCOL.md §33)

/// The stream label a holder presents a [`PermissionGrant`] on (PROTOCOL.md §33.4).
pub const GRANT_LABEL: &str = "snap2p-grant";
/// Labels the core serves itself, never subject to rules: PX-1 (its own policy, §28) and
/// grant presentation (a holder must reach it to be granted anything).
pub const BUILTIN_LABELS: [&str; 2] = [crate::wire::message::caps::PX1, GRANT_LABEL];
/// Grants one session holds at most; more are refused with `ERR_RESOURCE_EXHAUSTED`.
pub const MAX_GRANTS_PER_SESSION: usize = 16;
/// Principals one rules table names at most.
pub const MAX_RULES: usize = 10_000;

fn bad_rule(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArgument, msg)
}

/// What one principal (or every authenticated principal, `*`) may open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PermissionRule {
    /// Label patterns it may open.
    pub labels: Vec<LabelPattern>,
    /// Inbound streams it may have open at once on one session (None: only the session
    /// limit).
    pub max_streams: Option<usize>,
    /// Bytes per second this node sends on each of its sessions (None: the session's own
    /// rate).
    pub send_rate: Option<u64>,
}

/// A node's rules: per principal and for `*`. A principal may open a label when its own
/// rule, the `*` rule or a grant it presented on the session matches it. Limits: its own
/// rule's, else `*`'s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PermissionRules {
    pub any: Option<PermissionRule>,
    pub by_principal: HashMap<Principal, PermissionRule>,
}

impl PermissionRules {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds labels for `who` (None: `*`), merging with what it has.
    pub fn permit(
        &mut self,
        who: Option<Principal>,
        labels: &[LabelPattern],
    ) -> &mut PermissionRule {
        let rule = match who {
            None => self.any.get_or_insert_with(Default::default),
            Some(p) => self.by_principal.entry(p).or_default(),
        };
        for l in labels {
            if !rule.labels.contains(l) {
                rule.labels.push(l.clone());
            }
        }
        rule
    }

    /// Parses one rule in the text form of `--permit` and rules files:
    /// `PRINCIPAL:LABEL[,LABEL…] [streams=N] [rate=BYTES_PER_SEC]`, PRINCIPAL being
    /// `stacks:…` or `*`; labels are patterns (`files`, `chat*`, `*`). Merged into `self`.
    pub fn add_line(&mut self, line: &str) -> Result<(), Error> {
        let mut words = line.split_whitespace();
        let head = words.next().ok_or_else(|| bad_rule("empty rule"))?;
        let (who, labels) = if let Some(rest) = head.strip_prefix("*:") {
            (None, rest)
        } else {
            let after = head
                .strip_prefix(crate::identity::PRINCIPAL_PREFIX)
                .ok_or_else(|| bad_rule(format!("rule {head:?}: expected PRINCIPAL:LABELS")))?;
            let colon = after
                .find(':')
                .ok_or_else(|| bad_rule(format!("rule {head:?}: no ':' before the labels")))?;
            let p = Principal::parse(&head[..crate::identity::PRINCIPAL_PREFIX.len() + colon])?;
            (Some(p), &after[colon + 1..])
        };
        let labels = labels
            .split(',')
            .map(LabelPattern::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if labels.len() > MAX_GRANT_LABELS {
            return Err(bad_rule(format!(
                "rule {head:?}: more than {MAX_GRANT_LABELS} labels"
            )));
        }
        let mut max_streams = None;
        let mut send_rate = None;
        for w in words {
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| bad_rule(format!("rule option {w:?}: not a number")))
            };
            if let Some(v) = w.strip_prefix("streams=") {
                max_streams = Some(num(v)? as usize);
            } else if let Some(v) = w.strip_prefix("rate=") {
                send_rate = Some(num(v)?);
            } else {
                return Err(bad_rule(format!(
                    "rule option {w:?}: expected streams=N or rate=BYTES_PER_SEC"
                )));
            }
        }
        if who
            .as_ref()
            .is_some_and(|p| !self.by_principal.contains_key(p))
            && self.by_principal.len() >= MAX_RULES
        {
            return Err(bad_rule(format!(
                "more than {MAX_RULES} principals in the rules"
            )));
        }
        let rule = self.permit(who, &labels);
        if rule.labels.len() > 4 * MAX_GRANT_LABELS {
            return Err(bad_rule(format!(
                "rule {head:?}: too many labels for one principal"
            )));
        }
        if max_streams.is_some() {
            rule.max_streams = max_streams;
        }
        if send_rate.is_some() {
            rule.send_rate = send_rate;
        }
        Ok(())
    }

    /// Parses a rules file: one rule per line (as [`Self::add_line`]); blank lines and
    /// lines starting with `#` are skipped. Errors name the line.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut rules = Self::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            rules
                .add_line(line)
                .map_err(|e| bad_rule(format!("line {}: {}", n + 1, e.message)))?;
        }
        Ok(rules)
    }

    fn limit<T>(&self, p: &Principal, f: impl Fn(&PermissionRule) -> Option<T>) -> Option<T> {
        self.by_principal
            .get(p)
            .and_then(&f)
            .or_else(|| self.any.as_ref().and_then(&f))
    }

    fn permits(&self, p: &Principal, label: Option<&str>) -> bool {
        let hit = |r: &PermissionRule| r.labels.iter().any(|l| l.matches(label));
        self.by_principal.get(p).is_some_and(hit) || self.any.as_ref().is_some_and(hit)
    }
}

/// A grant a session's remote presented and the node accepted: what the stream-open check
/// needs of it. Expiry, revocation and the owner list are checked again at each open, so
/// revoking a grant or removing an owner takes effect at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveGrant {
    /// Ids of the grant and, when delegated, of its parent.
    pub ids: Vec<String>,
    /// The owner the chain starts from, and the delegate when there is one.
    pub issuers: Vec<Principal>,
    pub labels: Vec<LabelPattern>,
    /// The earliest expiry of the chain.
    pub expires_at: i64,
}

/// A node's permissions: the rules table (swapped whole at run time: sessions keep going
/// and the next stream open sees the new table), the owners whose grants it honours and the
/// revocation list. No rules set: every label is allowed, as before permissions existed.
#[derive(Debug, Default)]
pub struct Permissions {
    rules: RwLock<Option<Arc<PermissionRules>>>,
    owners: RwLock<HashSet<Principal>>,
    /// Grant ids (64 hex) and principals (`stacks:…`): a revoked principal's grants, as
    /// issuer or holder, are all void.
    revoked: RwLock<HashSet<String>>,
    /// Bumped at every change of the rules, so sessions re-apply their send rate.
    generation: AtomicU64,
}

impl Permissions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the rules (None: everything allowed). Live sessions are kept; their next
    /// stream open is checked against the new table.
    pub fn set_rules(&self, rules: Option<PermissionRules>) {
        *self.rules.write().unwrap() = rules.map(Arc::new);
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rules(&self) -> Option<Arc<PermissionRules>> {
        self.rules.read().unwrap().clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    pub fn add_owner(&self, p: Principal) {
        self.owners.write().unwrap().insert(p);
    }

    pub fn remove_owner(&self, p: &Principal) -> bool {
        self.owners.write().unwrap().remove(p)
    }

    pub fn owners(&self) -> Vec<Principal> {
        let mut v: Vec<_> = self.owners.read().unwrap().iter().cloned().collect();
        v.sort();
        v
    }

    /// Revokes a grant (by [`PermissionGrant::id`]) or every grant a principal issued or
    /// holds (`stacks:…`). `ERR_INVALID_ARGUMENT` for anything else.
    pub fn revoke(&self, id_or_principal: &str) -> Result<(), Error> {
        let s = id_or_principal.trim();
        let key = if s.starts_with(crate::identity::PRINCIPAL_PREFIX) {
            Principal::parse(s)?.to_string()
        } else if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            s.to_ascii_lowercase()
        } else {
            return Err(bad_rule(format!(
                "{s:?} is neither a grant id (64 hex characters) nor a principal"
            )));
        };
        self.revoked.write().unwrap().insert(key);
        Ok(())
    }

    /// Replaces the revocation list (what a re-read rules file says).
    pub fn set_revoked(&self, list: &[String]) -> Result<(), Error> {
        let fresh = Permissions::new();
        for s in list {
            fresh.revoke(s)?;
        }
        *self.revoked.write().unwrap() = fresh.revoked.into_inner().unwrap();
        Ok(())
    }

    pub fn is_revoked(&self, id_or_principal: &str) -> bool {
        self.revoked.read().unwrap().contains(id_or_principal)
    }

    /// Decodes and verifies a grant presented by `presenter` at `now` (PROTOCOL.md §33.3
    /// and §33.4): the grant itself (`ERR_AUTH_INVALID`, `ERR_AUTH_EXPIRED`), then the
    /// node's trust (`ERR_NOT_ALLOWED`): the presenter is its holder, the chain starts at an
    /// owner of this node, nothing of it is revoked.
    pub fn verify_grant(
        &self,
        bytes: &[u8],
        presenter: &Principal,
        now: i64,
        networks: NetworkFilter,
    ) -> Result<ActiveGrant, Error> {
        let grant = PermissionGrant::decode(bytes)?;
        let parent = grant.verify(now, networks)?;
        let not_allowed = |m: String| Error::new(ErrorCode::NotAllowed, m);
        if &grant.holder != presenter {
            return Err(not_allowed(format!(
                "the grant is for {}, not {presenter}",
                grant.holder
            )));
        }
        let mut ids = vec![grant.id()];
        let mut issuers = vec![grant.issuer.clone()];
        let mut expires_at = grant.expires_at;
        if let Some(parent) = &parent {
            ids.insert(0, parent.id());
            issuers.insert(0, parent.issuer.clone());
            expires_at = expires_at.min(parent.expires_at);
        }
        let active = ActiveGrant {
            ids,
            issuers,
            labels: grant.patterns()?,
            expires_at,
        };
        self.still_valid(&active, presenter, now)
            .map_err(not_allowed)?;
        Ok(active)
    }

    /// Why a grant accepted earlier no longer counts, if it does not.
    fn still_valid(&self, g: &ActiveGrant, holder: &Principal, now: i64) -> Result<(), String> {
        if g.expires_at <= now {
            return Err(format!("the grant expired at {}", g.expires_at));
        }
        if !self.owners.read().unwrap().contains(&g.issuers[0]) {
            return Err(format!(
                "{} is not an owner of this node: its grants are not honoured here",
                g.issuers[0]
            ));
        }
        let revoked = self.revoked.read().unwrap();
        if let Some(id) = g.ids.iter().find(|id| revoked.contains(id.as_str())) {
            return Err(format!("grant {id} is revoked"));
        }
        for p in g.issuers.iter().chain(std::iter::once(holder)) {
            if revoked.contains(&p.to_string()) {
                return Err(format!("the grants of {p} are revoked"));
            }
        }
        Ok(())
    }

    /// The stream-open check (PROTOCOL.md §33.1): may `principal`, with `inbound_open`
    /// inbound streams open on this session and these grants, open a stream labelled
    /// `label` at `now`? `Err` is the reason for the refusal (ERR_STREAM_REFUSED).
    pub fn check_open(
        &self,
        principal: &Principal,
        label: Option<&str>,
        grants: &[ActiveGrant],
        inbound_open: usize,
        now: i64,
    ) -> Result<(), String> {
        if label.is_some_and(|l| BUILTIN_LABELS.contains(&l)) {
            return Ok(());
        }
        let Some(rules) = self.rules() else {
            return Ok(());
        };
        let permitted = rules.permits(principal, label)
            || grants.iter().any(|g| {
                g.labels.iter().any(|l| l.matches(label))
                    && self.still_valid(g, principal, now).is_ok()
            });
        if !permitted {
            return Err(format!(
                "{principal} may not open streams labelled {:?} here",
                label.unwrap_or("")
            ));
        }
        if let Some(max) = rules.limit(principal, |r| r.max_streams) {
            if inbound_open >= max {
                return Err(format!(
                    "{principal} has {inbound_open} streams open, its limit"
                ));
            }
        }
        Ok(())
    }

    /// The send rate the rules set for `principal`'s sessions, if any.
    pub fn send_rate(&self, principal: &Principal) -> Option<u64> {
        self.rules()?.limit(principal, |r| r.send_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invites_expire_revoke_and_one_time() {
        let book = InviteBook::new();
        let reusable = book.create(60, false, 1000).unwrap();
        let once = book.create(60, true, 1000).unwrap();
        assert!(book.redeem(&reusable.token, 1001).is_ok());
        assert!(book.redeem(&reusable.token, 1002).is_ok());
        assert!(book.redeem(&once.token, 1001).is_ok());
        assert_eq!(
            book.redeem(&once.token, 1002).unwrap_err().code,
            ErrorCode::InviteInvalid
        );
        assert_eq!(
            book.redeem(&reusable.token, 1061).unwrap_err().code,
            ErrorCode::InviteInvalid
        );
        assert_eq!(
            book.redeem(b"", 1000).unwrap_err().code,
            ErrorCode::InviteRequired
        );
        let t = book.create(60, false, 2000).unwrap();
        assert_eq!(book.list(2000).len(), 1);
        assert!(
            book.list(2000)[0].token.is_empty(),
            "list never shows secrets"
        );
        assert!(book.revoke(&t.id));
        assert_eq!(
            book.redeem(&t.token, 2001).unwrap_err().code,
            ErrorCode::InviteInvalid
        );
        assert!(book.add(vec![1; 15], 3000, false, 2000).is_err());
        assert!(book.add(vec![1; 33], 3000, false, 2000).is_err());
        assert_eq!(parse_invite_token(&t.token_hex()).unwrap(), t.token);
    }

    #[test]
    fn rate_limiter_charges_failures_and_refills() {
        let rl = RateLimiter::new(5);
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let t0 = Instant::now();
        // Looking costs nothing.
        for _ in 0..20 {
            assert!(rl.has_budget(ip, t0));
        }
        for _ in 0..5 {
            assert!(rl.has_budget(ip, t0));
            rl.charge(ip, t0);
        }
        assert!(!rl.has_budget(ip, t0));
        assert!(rl.has_budget("127.0.0.10".parse().unwrap(), t0));
        // 5 per minute: one failure's worth back after 12 s.
        assert!(rl.has_budget(ip, t0 + Duration::from_secs(13)));
        let none = RateLimiter::new(0);
        none.charge(ip, t0);
        assert!(none.has_budget(ip, t0));
    }

    #[test]
    fn ipv6_sources_share_a_budget_per_64() {
        let rl = RateLimiter::new(1);
        let t0 = Instant::now();
        rl.charge("2001:db8:0:1::5".parse().unwrap(), t0);
        assert!(!rl.has_budget("2001:db8:0:1:abcd::1".parse().unwrap(), t0));
        assert!(rl.has_budget("2001:db8:0:2::5".parse().unwrap(), t0));
        rl.charge("10.1.2.3".parse().unwrap(), t0);
        assert!(!rl.has_budget("::ffff:10.1.2.3".parse().unwrap(), t0));
    }

    #[test]
    fn a_full_table_never_locks_newcomers_out() {
        let rl = RateLimiter::with_capacity(2, 64);
        let t0 = Instant::now();
        // A scanner with many addresses exhausts each one's budget and fills the table.
        for i in 0..200u32 {
            let ip = IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
            rl.charge(ip, t0);
            rl.charge(ip, t0);
            assert!(!rl.has_budget(ip, t0));
        }
        // A new legitimate address still has its budget.
        let newcomer: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(rl.has_budget(newcomer, t0));
        assert!(rl.buckets.lock().unwrap().len() <= 64);
    }
}
