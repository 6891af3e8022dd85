//! PermissionGrant v1: a wallet's signed statement "principal H may open streams of these
//! labels on my nodes until `exp`", and the label patterns rules and grants share.
//!
//! Same structure, canonical CBOR and signature forms as NodeKeyAttestation and AliasCard;
//! byte format and verification rules: docs/PROTOCOL.md §33. Whether a grant is honoured
//! (the issuer is an owner of the node, nothing of it revoked, the presenter is its holder)
//! is the node's decision: `crate::policy::Permissions`.

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::alias_card::is_forbidden;
use super::principal::{NetworkFilter, Principal};
use super::signed::{self, auth_invalid, int_value, Fields};
use super::signer::{verify_principal_signature, SignatureForm, WalletSigner};
use crate::error::{Error, ErrorCode, Result};
use crate::wire::cbor::{self, Value};

/// Most labels one grant or one rule lists.
pub const MAX_GRANT_LABELS: usize = 32;
/// Longest label or label pattern, in UTF-8 bytes (OPEN_STREAM's label bound).
pub const MAX_LABEL_BYTES: usize = 256;
/// Upper bound on an encoded grant: a delegated grant carries its parent (at most
/// [`signed::MAX_ENCODED_LEN`] bytes itself) inside.
pub const MAX_GRANT_LEN: usize = 2 * signed::MAX_ENCODED_LEN + 512;

/// Which stream labels a rule or grant covers. Text form: `*` (every stream, unlabelled
/// ones too), `files*` (every label starting with `files`), `files` (exactly `files`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LabelPattern {
    Any,
    Prefix(String),
    Exact(String),
}

impl LabelPattern {
    /// Parses the text form; `ERR_INVALID_ARGUMENT` for an empty pattern, one over 256
    /// bytes, a `*` anywhere but at the end, or a forbidden character (controls, bidi
    /// controls: PROTOCOL.md §20.1).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("label pattern {s:?}: {why}"),
            )
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() > MAX_LABEL_BYTES {
            return Err(bad("longer than 256 bytes"));
        }
        if s.chars().any(is_forbidden) {
            return Err(bad("contains a forbidden character"));
        }
        let (body, prefix) = match s.strip_suffix('*') {
            Some(body) => (body, true),
            None => (s, false),
        };
        if body.contains('*') {
            return Err(bad("`*` may only end a pattern"));
        }
        Ok(match (prefix, body.is_empty()) {
            (true, true) => LabelPattern::Any,
            (true, false) => LabelPattern::Prefix(body.to_owned()),
            (false, _) => LabelPattern::Exact(body.to_owned()),
        })
    }

    /// Whether a stream with this label (`None`: unlabelled) matches. Only `*` matches an
    /// unlabelled stream.
    pub fn matches(&self, label: Option<&str>) -> bool {
        match (self, label) {
            (LabelPattern::Any, _) => true,
            (LabelPattern::Prefix(p), Some(l)) => l.starts_with(p.as_str()),
            (LabelPattern::Exact(e), Some(l)) => l == e,
            (_, None) => false,
        }
    }

    /// Whether every label `other` matches is matched by `self` (a delegated grant may only
    /// narrow its parent).
    pub fn covers(&self, other: &LabelPattern) -> bool {
        match (self, other) {
            (LabelPattern::Any, _) => true,
            (LabelPattern::Prefix(p), LabelPattern::Prefix(q) | LabelPattern::Exact(q)) => {
                q.starts_with(p.as_str())
            }
            (LabelPattern::Exact(e), LabelPattern::Exact(f)) => e == f,
            _ => false,
        }
    }
}

impl std::fmt::Display for LabelPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelPattern::Any => f.write_str("*"),
            LabelPattern::Prefix(p) => write!(f, "{p}*"),
            LabelPattern::Exact(e) => f.write_str(e),
        }
    }
}

/// A decoded or issued grant. `issuer` signs; `holder` presents it after AUTH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionGrant {
    pub v: u64,
    /// `p`: the principal granting (an owner of the node, or for a delegated grant the
    /// holder of the parent grant).
    pub issuer: Principal,
    /// `h`: the principal the grant is for.
    pub holder: Principal,
    /// `l`: label patterns in text form, byte-wise strictly increasing.
    pub labels: Vec<String>,
    /// `d`: the holder may issue one delegated grant level below this one.
    pub delegable: bool,
    /// `pg`: the wire form of the parent grant (delegated grants only).
    pub parent: Option<Vec<u8>>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub nonce: Vec<u8>,
    pub form: SignatureForm,
    pub sig: Vec<u8>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArgument, msg)
}

/// What to grant: the fields of a grant the issuer chooses.
#[derive(Clone, Debug)]
pub struct GrantRequest {
    pub holder: Principal,
    pub labels: Vec<String>,
    pub delegable: bool,
    /// The wire form of the grant this one is delegated from.
    pub parent: Option<Vec<u8>>,
    pub ttl_secs: i64,
}

impl PermissionGrant {
    pub const DOMAIN: &'static str = "snap2p-permission-grant-v1";
    pub const MESSAGE_TITLE: &'static str = "snap2p permission grant";
    pub const DEFAULT_TTL_SECS: i64 = 30 * 86_400;

    /// Issues a grant signed by `signer` (the issuer) with a fresh 32-byte nonce. Labels
    /// are sorted and deduplicated; they and the rest are checked as a verifier would
    /// (`ERR_INVALID_ARGUMENT`).
    pub async fn issue(signer: &dyn WalletSigner, req: GrantRequest, now: i64) -> Result<Self> {
        let mut nonce = vec![0u8; signed::ISSUED_NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        Self::issue_with_nonce(signer, req, now, nonce).await
    }

    /// [`Self::issue`] with a caller-chosen nonce.
    pub async fn issue_with_nonce(
        signer: &dyn WalletSigner,
        req: GrantRequest,
        now: i64,
        nonce: Vec<u8>,
    ) -> Result<Self> {
        if req.ttl_secs <= 0 {
            return Err(invalid("ttl must be positive"));
        }
        let mut labels = req.labels;
        labels.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        labels.dedup();
        let expires_at = now.checked_add(req.ttl_secs).unwrap_or(i64::MAX);
        let mut grant = PermissionGrant {
            v: 1,
            issuer: signer.principal(),
            holder: req.holder,
            labels,
            delegable: req.delegable,
            parent: req.parent,
            issued_at: now,
            expires_at,
            nonce,
            form: signer.signature_form(),
            sig: Vec::new(),
        };
        grant
            .check_fields()
            .map_err(|e| invalid(format!("grant: {}", e.message)))?;
        signed::check_time_range("grant", now, expires_at).map_err(|e| invalid(e.message))?;
        grant.sign(signer).await?;
        Ok(grant)
    }

    /// (Re)signs the current fields with `signer`, in `self.form`.
    pub async fn sign(&mut self, signer: &dyn WalletSigner) -> Result<()> {
        let bytes = self.signing_bytes();
        let text = self.message_text();
        self.sig =
            signed::request_signature(signer, &self.issuer, self.form, &bytes, &text).await?;
        Ok(())
    }

    fn to_cbor(&self, with_sig: bool) -> Vec<u8> {
        let p = self.issuer.to_string();
        let h = self.holder.to_string();
        let labels: Vec<Value<'_>> = self.labels.iter().map(|l| Value::Text(l)).collect();
        // Keys in byte-wise order: d, domain, exp, h, l, nonce, p, pg, sf, sig, ts, v.
        let mut entries = Vec::with_capacity(12);
        if self.delegable {
            entries.push(("d", Value::Uint(1)));
        }
        entries.push(("domain", Value::Text(Self::DOMAIN)));
        entries.push(("exp", int_value(self.expires_at)));
        entries.push(("h", Value::Text(&h)));
        entries.push(("l", Value::Array(labels)));
        entries.push(("nonce", Value::Bytes(&self.nonce)));
        entries.push(("p", Value::Text(&p)));
        if let Some(parent) = &self.parent {
            entries.push(("pg", Value::Bytes(parent)));
        }
        if self.form == SignatureForm::StacksMessage {
            entries.push(("sf", Value::Uint(self.form.as_u64())));
        }
        if with_sig {
            entries.push(("sig", Value::Bytes(&self.sig)));
        }
        entries.push(("ts", int_value(self.issued_at)));
        entries.push(("v", Value::Uint(self.v)));
        cbor::to_vec(&Value::Map(entries))
    }

    /// Canonical CBOR of every field except `sig`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.to_cbor(false)
    }

    /// The wire form (what the holder presents).
    pub fn encode(&self) -> Vec<u8> {
        self.to_cbor(true)
    }

    /// The grant's id: lowercase hex SHA-256 of its signing bytes. Revocation lists name
    /// grants by it.
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(self.signing_bytes()))
    }

    /// The text a wallet signs in form StacksMessage.
    pub fn message_text(&self) -> String {
        let mut own = vec![format!("holder: {}", self.holder)];
        own.extend(self.labels.iter().map(|l| format!("label: {l}")));
        own.push(format!(
            "delegable: {}",
            if self.delegable { "yes" } else { "no" }
        ));
        own.push(format!(
            "parent: {}",
            self.parent
                .as_ref()
                .map(|p| hex::encode(Sha256::digest(p)))
                .unwrap_or_else(|| "none".into())
        ));
        signed::message_text(
            Self::MESSAGE_TITLE,
            &self.issuer,
            &own.iter()
                .map(|l| l as &dyn std::fmt::Display)
                .collect::<Vec<_>>(),
            self.issued_at,
            self.expires_at,
            &self.nonce,
            self.v,
            Self::DOMAIN,
        )
    }

    /// The 32-byte hash the issuer's wallet key signed.
    pub fn signed_digest(&self) -> [u8; 32] {
        signed::signed_digest(self.form, || self.signing_bytes(), || self.message_text())
    }

    /// Decodes the wire form; unknown keys ignored; failures are `ERR_AUTH_INVALID`. The
    /// parent grant (if any) is kept as bytes and decoded by [`Self::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let f = Fields::decode_limited("grant", bytes, MAX_GRANT_LEN)?;
        f.domain(Self::DOMAIN)?;
        let holder = Principal::parse(f.text("h")?)
            .map_err(|e| auth_invalid(format!("grant holder: {}", e.message)))?;
        let labels = f
            .get("l")
            .and_then(Value::as_array)
            .ok_or_else(|| f.missing_or_wrong("l", "an array"))?
            .iter()
            .map(|v| {
                v.as_text()
                    .map(str::to_owned)
                    .ok_or_else(|| auth_invalid("grant: a label is not text"))
            })
            .collect::<Result<Vec<_>>>()?;
        let delegable = match f.get("d") {
            None => false,
            Some(v) if v.as_u64() == Some(1) => true,
            Some(v) => return Err(auth_invalid(format!("grant: `d` is {v:?}, not 1"))),
        };
        let parent = match f.get("pg") {
            None => None,
            Some(v) => Some(
                v.as_bytes()
                    .ok_or_else(|| f.missing_or_wrong("pg", "bytes"))?
                    .to_vec(),
            ),
        };
        Ok(PermissionGrant {
            v: f.uint("v")?,
            issuer: f.principal()?,
            holder,
            labels,
            delegable,
            parent,
            issued_at: f.int("ts")?,
            expires_at: f.int("exp")?,
            nonce: f.bytes("nonce")?.to_vec(),
            form: f.form()?,
            sig: f.bytes("sig")?.to_vec(),
        })
    }

    /// The label patterns (checked by [`Self::verify`]; here parsed again).
    pub fn patterns(&self) -> Result<Vec<LabelPattern>> {
        self.labels
            .iter()
            .map(|l| {
                LabelPattern::parse(l).map_err(|e| auth_invalid(format!("grant: {}", e.message)))
            })
            .collect()
    }

    /// Labels: 1..=32 valid patterns, byte-wise strictly increasing; a delegated grant is
    /// not itself delegable.
    fn check_fields(&self) -> Result<()> {
        if self.labels.is_empty() || self.labels.len() > MAX_GRANT_LABELS {
            return Err(auth_invalid(format!(
                "grant lists {} labels, must be 1..={MAX_GRANT_LABELS}",
                self.labels.len()
            )));
        }
        self.patterns()?;
        if self
            .labels
            .windows(2)
            .any(|w| w[0].as_bytes() >= w[1].as_bytes())
        {
            return Err(auth_invalid(
                "grant: labels are not in strictly increasing byte-wise order",
            ));
        }
        if self.parent.is_some() && self.delegable {
            return Err(auth_invalid(
                "grant: a delegated grant cannot be delegable (one level of delegation at most)",
            ));
        }
        Ok(())
    }

    /// Verification at `now` (PROTOCOL.md §33.3): the common checks of §19.3 steps 1–6 for
    /// the issuer, the holder's network, the labels; for a delegated grant its parent
    /// (itself verified, delegable, not delegated, held by this grant's issuer, covering
    /// every label, expiring no earlier); then the signature. Returns the parent when there
    /// is one. Whether the node honours it is `crate::policy::Permissions`' decision.
    pub fn verify(&self, now: i64, networks: NetworkFilter) -> Result<Option<PermissionGrant>> {
        signed::check_common(
            "grant",
            self.v,
            &self.nonce,
            self.issued_at,
            self.expires_at,
            &self.issuer,
            now,
            networks,
        )?;
        if !networks.accepts(self.holder.network()) {
            return Err(auth_invalid(format!(
                "grant: holder {} is on a network not accepted here",
                self.holder
            )));
        }
        self.check_fields()?;
        let parent = match &self.parent {
            None => None,
            Some(bytes) => {
                if bytes.len() > signed::MAX_ENCODED_LEN {
                    return Err(auth_invalid("grant: parent grant longer than 2048 bytes"));
                }
                let parent = PermissionGrant::decode(bytes)?;
                if parent.parent.is_some() {
                    return Err(auth_invalid("grant: more than one level of delegation"));
                }
                if !parent.delegable {
                    return Err(auth_invalid("grant: the parent grant is not delegable"));
                }
                if parent.holder != self.issuer {
                    return Err(auth_invalid(
                        "grant: issuer is not the holder of the parent grant",
                    ));
                }
                if self.expires_at > parent.expires_at {
                    return Err(auth_invalid("grant: expires after its parent grant"));
                }
                parent.verify(now, networks)?;
                let parent_patterns = parent.patterns()?;
                for p in self.patterns()? {
                    if !parent_patterns.iter().any(|q| q.covers(&p)) {
                        return Err(auth_invalid(format!(
                            "grant: label {p} is not covered by the parent grant"
                        )));
                    }
                }
                Some(parent)
            }
        };
        verify_principal_signature(&self.signed_digest(), &self.sig, &self.issuer)?;
        Ok(parent)
    }
}
