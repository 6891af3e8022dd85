//! What NodeKeyAttestation and AliasCard share: field decoding, validity windows,
//! the two signature forms, and UTC time formatting for the human-readable texts.

use std::fmt;

use sha2::{Digest, Sha256};

use super::principal::{NetworkFilter, Principal};
use super::signer::{
    normalize_wallet_signature, stacks_message_hash, SignRequest, SignatureForm, WalletSigner,
};
use crate::error::{Error, ErrorCode, Result};
use crate::wire::cbor::{self, Value};

/// Allowed clock skew when checking issued_at / expires_at (spec §2.6).
pub const CLOCK_SKEW_SECS: i64 = 300;
/// Nonce length bounds (spec §2.3.1) and the length this implementation issues.
pub const MIN_NONCE_LEN: usize = 16;
pub const MAX_NONCE_LEN: usize = 32;
pub const ISSUED_NONCE_LEN: usize = 32;
/// Latest timestamp accepted: 9999-12-31T23:59:59Z, so the texts always have a
/// four-digit year and every implementation formats them identically.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;
/// Upper bound on an encoded attestation or card; anything larger is rejected unread.
pub const MAX_ENCODED_LEN: usize = 2048;

pub(crate) fn auth_invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::AuthInvalid, msg)
}

/// A signed timestamp as a CBOR integer value.
pub(crate) fn int_value(n: i64) -> Value<'static> {
    if n >= 0 {
        Value::Uint(n as u64)
    } else {
        Value::Nint((-1 - n) as u64)
    }
}

/// Decoded map of a signed object; every failure is `ERR_AUTH_INVALID`.
pub(crate) struct Fields<'a> {
    what: &'static str,
    entries: Vec<(&'a str, Value<'a>)>,
}

impl<'a> Fields<'a> {
    pub(crate) fn decode(what: &'static str, bytes: &'a [u8]) -> Result<Fields<'a>> {
        Self::decode_limited(what, bytes, MAX_ENCODED_LEN)
    }

    /// [`Fields::decode`] with another bound on the input (a delegated grant carries its
    /// parent grant, so it may be twice as long).
    pub(crate) fn decode_limited(
        what: &'static str,
        bytes: &'a [u8],
        max_len: usize,
    ) -> Result<Fields<'a>> {
        if bytes.len() > max_len {
            return Err(auth_invalid(format!(
                "{what} is {} bytes, more than {max_len}",
                bytes.len()
            )));
        }
        let value = cbor::decode(bytes).map_err(|e| auth_invalid(format!("{what}: {e}")))?;
        let Value::Map(entries) = value else {
            return Err(auth_invalid(format!("{what} is not a CBOR map")));
        };
        for (i, (k, _)) in entries.iter().enumerate() {
            if entries[..i].iter().any(|(other, _)| other == k) {
                return Err(auth_invalid(format!("{what}: duplicate key {k:?}")));
            }
        }
        Ok(Fields { what, entries })
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub(crate) fn missing_or_wrong(&self, key: &str, ty: &str) -> Error {
        auth_invalid(format!("{}: field {key:?} missing or not {ty}", self.what))
    }

    pub(crate) fn text(&self, key: &str) -> Result<&'a str> {
        self.get(key)
            .and_then(Value::as_text)
            .ok_or_else(|| self.missing_or_wrong(key, "text"))
    }

    pub(crate) fn bytes(&self, key: &str) -> Result<&'a [u8]> {
        self.get(key)
            .and_then(Value::as_bytes)
            .ok_or_else(|| self.missing_or_wrong(key, "bytes"))
    }

    pub(crate) fn uint(&self, key: &str) -> Result<u64> {
        self.get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.missing_or_wrong(key, "an unsigned integer"))
    }

    pub(crate) fn int(&self, key: &str) -> Result<i64> {
        self.get(key)
            .and_then(Value::as_i64)
            .ok_or_else(|| self.missing_or_wrong(key, "an int64"))
    }

    /// `domain` must be exactly the expected string (also stops cross-type confusion).
    pub(crate) fn domain(&self, expected: &str) -> Result<()> {
        let d = self.text("domain")?;
        if d != expected {
            return Err(auth_invalid(format!(
                "{}: domain {d:?}, expected {expected:?}",
                self.what
            )));
        }
        Ok(())
    }

    pub(crate) fn principal(&self) -> Result<Principal> {
        Principal::parse(self.text("p")?)
            .map_err(|e| auth_invalid(format!("{}: {}", self.what, e.message)))
    }

    /// `sf`: absent = Digest; 1 = StacksMessage; anything else (including an explicit 0,
    /// which the canonical form never writes) is rejected.
    pub(crate) fn form(&self) -> Result<SignatureForm> {
        match self.get("sf") {
            None => Ok(SignatureForm::Digest),
            Some(v) => match v.as_u64() {
                Some(1) => Ok(SignatureForm::StacksMessage),
                _ => Err(auth_invalid(format!(
                    "{}: unsupported signature form {v:?}",
                    self.what
                ))),
            },
        }
    }
}

/// Appends the fields every signed object has to a map under construction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn common_entries<'a>(
    entries: &mut Vec<(&'a str, Value<'a>)>,
    domain: &'a str,
    principal: &'a str,
    v: u64,
    issued_at: i64,
    expires_at: i64,
    nonce: &'a [u8],
    form: SignatureForm,
    sig: Option<&'a [u8]>,
) {
    entries.push(("domain", Value::Text(domain)));
    entries.push(("exp", int_value(expires_at)));
    entries.push(("nonce", Value::Bytes(nonce)));
    entries.push(("p", Value::Text(principal)));
    if form == SignatureForm::StacksMessage {
        entries.push(("sf", Value::Uint(form.as_u64())));
    }
    if let Some(sig) = sig {
        entries.push(("sig", Value::Bytes(sig)));
    }
    entries.push(("ts", int_value(issued_at)));
    entries.push(("v", Value::Uint(v)));
}

/// The text a wallet signs in form StacksMessage: the title, the principal, the object's
/// own lines, then the fields every signed object has (lines joined by `\n`, no trailing
/// newline). Written into one string: the attestation's text is made at every first
/// contact, and its lines as separate strings were ~33 allocations of the dialer's ~227
/// (docs/BENCHMARKS.md).
#[allow(clippy::too_many_arguments)]
pub(crate) fn message_text(
    title: &str,
    principal: &Principal,
    own_lines: &[&dyn fmt::Display],
    issued_at: i64,
    expires_at: i64,
    nonce: &[u8],
    v: u64,
    domain: &str,
) -> String {
    use fmt::Write;
    let mut text = String::with_capacity(512);
    // Writing into a String cannot fail.
    let _ = write!(text, "{title}\nprincipal: {principal}");
    for line in own_lines {
        let _ = write!(text, "\n{line}");
    }
    let _ = write!(
        text,
        "\nissued: {} ({issued_at})\nexpires: {} ({expires_at})\nnonce: {}\nversion: {v}\ndomain: {domain}",
        Utc::seconds(issued_at),
        Utc::seconds(expires_at),
        LowerHex(nonce),
    );
    text
}

/// Bytes as lowercase hex, written without allocating.
pub(crate) struct LowerHex<'a>(pub &'a [u8]);

impl fmt::Display for LowerHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        for chunk in self.0.chunks(buf.len() / 2) {
            let out = &mut buf[..chunk.len() * 2];
            // The output is exactly twice the chunk: this cannot fail.
            let _ = hex::encode_to_slice(chunk, out);
            f.write_str(std::str::from_utf8(out).unwrap_or_default())?;
        }
        Ok(())
    }
}

/// Checks v, nonce length, timestamp range and validity window, and the principal.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_common(
    what: &str,
    v: u64,
    nonce: &[u8],
    issued_at: i64,
    expires_at: i64,
    principal: &Principal,
    now: i64,
    networks: NetworkFilter,
) -> Result<()> {
    if v != 1 {
        return Err(auth_invalid(format!("{what}: unsupported version {v}")));
    }
    if !(MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce.len()) {
        return Err(auth_invalid(format!(
            "{what}: nonce is {} bytes, must be {MIN_NONCE_LEN}..={MAX_NONCE_LEN}",
            nonce.len()
        )));
    }
    check_time_range(what, issued_at, expires_at)?;
    if issued_at > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(Error::new(
            ErrorCode::AuthExpired,
            format!("{what} is not valid yet (issued at {issued_at}, now {now})"),
        ));
    }
    if expires_at <= now.saturating_sub(CLOCK_SKEW_SECS) {
        return Err(Error::new(
            ErrorCode::AuthExpired,
            format!("{what} expired at {expires_at} (now {now})"),
        ));
    }
    if !principal.is_single_sig() {
        return Err(auth_invalid(format!(
            "{what}: {principal} is not a single-sig principal"
        )));
    }
    if !networks.accepts(principal.network()) {
        return Err(auth_invalid(format!(
            "{what}: {} principals are not accepted here",
            principal.network()
        )));
    }
    Ok(())
}

pub(crate) fn check_time_range(what: &str, issued_at: i64, expires_at: i64) -> Result<()> {
    for t in [issued_at, expires_at] {
        if !(0..=MAX_TIMESTAMP).contains(&t) {
            return Err(auth_invalid(format!("{what}: timestamp {t} out of range")));
        }
    }
    if expires_at <= issued_at {
        return Err(auth_invalid(format!(
            "{what}: expires_at {expires_at} is not after issued_at {issued_at}"
        )));
    }
    Ok(())
}

/// The 32-byte hash the wallet key signs for a given form. Only the input the form hashes
/// is made: a verifier of a StacksMessage signature needs no CBOR, one of a Digest
/// signature no text.
pub(crate) fn signed_digest<B: AsRef<[u8]>, T: AsRef<str>>(
    form: SignatureForm,
    signing_bytes: impl FnOnce() -> B,
    text: impl FnOnce() -> T,
) -> [u8; 32] {
    match form {
        SignatureForm::Digest => Sha256::digest(signing_bytes()).into(),
        SignatureForm::StacksMessage => stacks_message_hash(text().as_ref()),
    }
}

/// Asks the signer for a signature of the right form and checks it before returning it,
/// so a misbehaving host signer fails here rather than at the remote peer.
pub(crate) async fn request_signature(
    signer: &dyn WalletSigner,
    principal: &Principal,
    form: SignatureForm,
    signing_bytes: &[u8],
    text: &str,
) -> Result<Vec<u8>> {
    if &signer.principal() != principal {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            "the signer's principal differs from the object's principal",
        ));
    }
    let sig = signer.sign(sign_request(form, signing_bytes, text)).await?;
    check_signature(principal, form, signing_bytes, text, &sig)
}

/// What a signer of `form` is asked to sign for an object with these signing bytes and text.
pub(crate) fn sign_request(form: SignatureForm, signing_bytes: &[u8], text: &str) -> SignRequest {
    match form {
        SignatureForm::Digest => SignRequest::Digest(Sha256::digest(signing_bytes).into()),
        SignatureForm::StacksMessage => SignRequest::Message(text.to_owned()),
    }
}

/// The check [`request_signature`] makes of what a signer returned: the signature in its
/// wire form (r ‖ s ‖ v, v 0..=3; [`normalize_wallet_signature`] takes a wallet's other
/// layouts) when it is the principal's.
pub(crate) fn check_signature(
    principal: &Principal,
    form: SignatureForm,
    signing_bytes: &[u8],
    text: &str,
    sig: &[u8],
) -> Result<Vec<u8>> {
    normalize_wallet_signature(
        &signed_digest(form, || signing_bytes, || text),
        sig,
        principal,
    )
    .map_err(|e| auth_invalid(format!("signer returned a bad signature: {}", e.message)))
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A UTC time as RFC 3339 text, with or without milliseconds, written without allocating.
struct Utc {
    secs: i64,
    millis: Option<u32>,
}

impl Utc {
    fn seconds(secs: i64) -> Utc {
        Utc { secs, millis: None }
    }
}

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, mo, d) = civil_from_days(days);
        // Years outside 0000..=9999 never pass verification; print them plainly.
        if (0..=9999).contains(&y) {
            write!(f, "{y:04}")?;
        } else {
            write!(f, "{y:+}")?;
        }
        write!(
            f,
            "-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )?;
        if let Some(ms) = self.millis {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

/// RFC 3339 UTC with whole seconds: `2024-01-01T00:00:00Z`.
pub fn rfc3339(secs: i64) -> String {
    Utc::seconds(secs).to_string()
}

/// JavaScript `Date.toISOString()` form: `2024-01-01T00:00:00.000Z`.
pub fn iso8601_millis(unix_millis: i64) -> String {
    Utc {
        secs: unix_millis.div_euclid(1000),
        millis: Some(unix_millis.rem_euclid(1000) as u32),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_704_067_199), "2023-12-31T23:59:59Z");
        assert_eq!(rfc3339(MAX_TIMESTAMP), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            iso8601_millis(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        // Extremes format without panicking.
        let _ = rfc3339(i64::MAX);
        let _ = rfc3339(i64::MIN);
    }
}
