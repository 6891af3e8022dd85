//! Node policy: visibility, invite tokens, allowlists and pre-auth rate limits (spec §4).
//!
//! Everything here is checked before expensive work: a stealth listener looks an invite
//! token up (one hash, one map lookup) before any Noise or secp256k1 operation, and the
//! per-address rate limiter runs before a single byte is read.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode};
use crate::identity::{NetworkFilter, Principal};
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
