//! Stacks principals (`stacks:<address>`) and the c32check address encoding.

use std::fmt;
use std::str::FromStr;

use ripemd::Ripemd160;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};

/// Address version bytes (stacks.js `AddressVersion`).
pub const VERSION_MAINNET_SINGLE_SIG: u8 = 22;
pub const VERSION_MAINNET_MULTI_SIG: u8 = 20;
pub const VERSION_TESTNET_SINGLE_SIG: u8 = 26;
pub const VERSION_TESTNET_MULTI_SIG: u8 = 21;

/// The scheme prefix of a principal string.
pub const PRINCIPAL_PREFIX: &str = "stacks:";

/// Which Stacks network an address belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    Mainnet,
    Testnet,
}

impl Network {
    /// Version byte of a single-sig (p2pkh) address on this network.
    pub fn single_sig_version(self) -> u8 {
        match self {
            Network::Mainnet => VERSION_MAINNET_SINGLE_SIG,
            Network::Testnet => VERSION_TESTNET_SINGLE_SIG,
        }
    }

    /// The lowercase name used in wallet files and vectors (`mainnet` / `testnet`).
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Network {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mainnet" => Ok(Network::Mainnet),
            "testnet" => Ok(Network::Testnet),
            other => Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("unknown network {other:?} (expected mainnet or testnet)"),
            )),
        }
    }
}

/// Which networks a verifier accepts principals from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkFilter {
    pub mainnet: bool,
    pub testnet: bool,
}

impl NetworkFilter {
    pub const ANY: NetworkFilter = NetworkFilter {
        mainnet: true,
        testnet: true,
    };
    pub const MAINNET_ONLY: NetworkFilter = NetworkFilter {
        mainnet: true,
        testnet: false,
    };
    pub const TESTNET_ONLY: NetworkFilter = NetworkFilter {
        mainnet: false,
        testnet: true,
    };

    pub fn accepts(self, network: Network) -> bool {
        match network {
            Network::Mainnet => self.mainnet,
            Network::Testnet => self.testnet,
        }
    }
}

impl Default for NetworkFilter {
    /// Accepts both networks: a filter that accepts nothing is never a useful default.
    fn default() -> Self {
        NetworkFilter::ANY
    }
}

/// A Stacks principal: an address version byte and the 20-byte hash160 it commits to.
///
/// Its canonical text form is `stacks:<c32check address>`; parsing accepts only that
/// canonical form so one principal has exactly one spelling.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    version: u8,
    hash160: [u8; 20],
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArgument, msg)
}

impl Principal {
    /// A principal from its parts; the version must be one of 22, 26, 20, 21.
    pub fn new(version: u8, hash160: [u8; 20]) -> Result<Principal> {
        match version {
            VERSION_MAINNET_SINGLE_SIG
            | VERSION_MAINNET_MULTI_SIG
            | VERSION_TESTNET_SINGLE_SIG
            | VERSION_TESTNET_MULTI_SIG => Ok(Principal { version, hash160 }),
            v => Err(invalid(format!("unsupported Stacks address version {v}"))),
        }
    }

    /// Parses the strict `stacks:<address>` form (checksum verified, canonical spelling).
    pub fn parse(s: &str) -> Result<Principal> {
        let addr = s
            .strip_prefix(PRINCIPAL_PREFIX)
            .ok_or_else(|| invalid(format!("principal must start with {PRINCIPAL_PREFIX:?}")))?;
        Principal::from_address(addr)
    }

    /// Parses a bare address (`SP…`, `ST…`, `SM…`, `SN…`), checksum verified.
    ///
    /// Only the canonical upper-case spelling is accepted (c32 decoders elsewhere map
    /// `o`/`i`/`l` and lower case), so that equal principals always compare equal as text.
    pub fn from_address(addr: &str) -> Result<Principal> {
        let mut buf = [0u8; c32::MAX_ADDRESS_LEN];
        let (version, data) = c32::address_decode_into(addr, &mut buf)?;
        let hash160: [u8; 20] = data
            .try_into()
            .map_err(|_| invalid(format!("address payload is {} bytes, not 20", data.len())))?;
        let p = Principal::new(version, hash160)?;
        if p.text().address() != addr {
            return Err(invalid(format!(
                "address {addr:?} is not in canonical form"
            )));
        }
        Ok(p)
    }

    /// The single-sig (p2pkh) principal of a compressed secp256k1 public key.
    pub fn from_public_key(compressed_sec1: &[u8; 33], network: Network) -> Principal {
        Principal {
            version: network.single_sig_version(),
            hash160: hash160(compressed_sec1),
        }
    }

    /// The c32check address (`SP…`).
    pub fn address(&self) -> String {
        self.text().address().to_owned()
    }

    /// The canonical text, `stacks:<address>`, spelled on the stack: printing, encoding
    /// or comparing a principal's text allocates nothing. (Before, one `Display` made six
    /// allocations, ~46 per first contact on the dialer: docs/BENCHMARKS.md.)
    pub fn text(&self) -> PrincipalText {
        let mut payload = [0u8; 24];
        payload[..20].copy_from_slice(&self.hash160);
        payload[20..].copy_from_slice(&c32::checksum(self.version, &self.hash160));
        let mut buf = [0u8; PrincipalText::CAPACITY];
        let prefix = PRINCIPAL_PREFIX.len();
        buf[..prefix].copy_from_slice(PRINCIPAL_PREFIX.as_bytes());
        buf[prefix] = b'S';
        // `new` admits only versions below 32, one c32 digit.
        buf[prefix + 1] = c32::ALPHABET[usize::from(self.version & 31)];
        let n = c32::encode_into(&payload, &mut buf[prefix + 2..]);
        PrincipalText {
            buf,
            len: (prefix + 2 + n) as u8,
        }
    }

    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn hash160(&self) -> [u8; 20] {
        self.hash160
    }

    pub fn network(&self) -> Network {
        match self.version {
            VERSION_MAINNET_SINGLE_SIG | VERSION_MAINNET_MULTI_SIG => Network::Mainnet,
            _ => Network::Testnet,
        }
    }

    pub fn is_single_sig(&self) -> bool {
        matches!(
            self.version,
            VERSION_MAINNET_SINGLE_SIG | VERSION_TESTNET_SINGLE_SIG
        )
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// A principal's canonical text on the stack ([`Principal::text`]).
#[derive(Clone, Copy)]
pub struct PrincipalText {
    buf: [u8; PrincipalText::CAPACITY],
    len: u8,
}

impl PrincipalText {
    /// `stacks:`, `S`, the version digit and at most 39 digits of c32(hash160 ‖ checksum).
    const CAPACITY: usize = PRINCIPAL_PREFIX.len() + 2 + 39;

    /// `stacks:<address>`.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written (the prefix and c32 digits).
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or_default()
    }

    /// The address alone (`SP…`).
    pub fn address(&self) -> &str {
        &self.as_str()[PRINCIPAL_PREFIX.len()..]
    }
}

impl fmt::Debug for PrincipalText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl FromStr for Principal {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Principal::parse(s)
    }
}

/// RIPEMD-160(SHA-256(data)).
pub fn hash160(data: &[u8]) -> [u8; 20] {
    Ripemd160::digest(Sha256::digest(data)).into()
}

/// Crockford-style base32 as Stacks uses it, and c32check (version + 4-byte checksum).
pub mod c32 {
    use super::invalid;
    use crate::error::Result;
    use sha2::{Digest, Sha256};

    /// The c32 alphabet.
    pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    fn digit_value(c: char) -> Option<u8> {
        // Decoders are lenient like stacks.js: lower case, O→0, I/L→1.
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        ALPHABET
            .iter()
            .position(|&a| a as char == c)
            .map(|p| p as u8)
    }

    /// Writes c32(`data`) at the start of `out` and returns its length: each leading zero
    /// byte becomes one `0`, the rest is the base-32 representation of the remaining
    /// big-endian number (as stacks.js `c32encode`). `out` holds at least
    /// `data.len() * 8 / 5 + 1` bytes.
    pub(crate) fn encode_into(data: &[u8], out: &mut [u8]) -> usize {
        let zeros = data.iter().take_while(|&&b| b == 0).count();
        out[..zeros].fill(b'0');
        // Base 32 is a power of two: digits are 5-bit groups read from the low end,
        // written after the zeros low digit first and turned round at the end.
        let digits = &mut out[zeros..];
        let mut n = 0;
        let mut acc: u32 = 0;
        let mut bits = 0;
        for &b in data[zeros..].iter().rev() {
            acc |= (b as u32) << bits;
            bits += 8;
            while bits >= 5 {
                digits[n] = ALPHABET[(acc & 31) as usize];
                n += 1;
                acc >>= 5;
                bits -= 5;
            }
        }
        if bits > 0 {
            digits[n] = ALPHABET[(acc & 31) as usize];
            n += 1;
        }
        while n > 0 && digits[n - 1] == b'0' {
            n -= 1;
        }
        digits[..n].reverse();
        zeros + n
    }

    fn ascii(mut bytes: Vec<u8>, len: usize) -> String {
        bytes.truncate(len);
        // Only c32 digits were written.
        String::from_utf8(bytes).unwrap_or_default()
    }

    /// Encodes bytes: each leading zero byte becomes one `0`, the rest is the base-32
    /// representation of the remaining big-endian number (as stacks.js `c32encode`).
    pub fn c32_encode(data: &[u8]) -> String {
        let mut out = vec![0u8; data.len() * 8 / 5 + 1];
        let n = encode_into(data, &mut out);
        ascii(out, n)
    }

    /// Decodes c32 into the start of `out` (at least `s.len()` bytes) and returns the
    /// length: each leading `0` becomes one zero byte, the rest is the minimal big-endian
    /// representation of the number the remaining digits spell.
    fn decode_into(s: &str, out: &mut [u8]) -> Result<usize> {
        if let Some(c) = s.chars().find(|&c| digit_value(c).is_none()) {
            return Err(invalid(format!("invalid c32 character {c:?}")));
        }
        // Every character is an ASCII digit now.
        let value = |c: &u8| digit_value(*c as char).unwrap_or(0);
        let s = s.as_bytes();
        let zeros = s.iter().take_while(|c| value(c) == 0).count();
        out[..zeros].fill(0);
        let bytes = &mut out[zeros..];
        let mut n = 0;
        let mut acc: u32 = 0;
        let mut bits = 0;
        for c in s[zeros..].iter().rev() {
            acc |= (value(c) as u32) << bits;
            bits += 5;
            if bits >= 8 {
                bytes[n] = (acc & 0xff) as u8;
                n += 1;
                acc >>= 8;
                bits -= 8;
            }
        }
        if bits > 0 {
            bytes[n] = acc as u8;
            n += 1;
        }
        while n > 0 && bytes[n - 1] == 0 {
            n -= 1;
        }
        bytes[..n].reverse();
        Ok(zeros + n)
    }

    /// Decodes c32: each leading `0` becomes one zero byte, the rest is the minimal
    /// big-endian representation of the number the remaining digits spell.
    pub fn c32_decode(s: &str) -> Result<Vec<u8>> {
        let mut out = vec![0u8; s.len()];
        let n = decode_into(s, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    pub(crate) fn checksum(version: u8, data: &[u8]) -> [u8; 4] {
        let mut h = Sha256::new();
        h.update([version]);
        h.update(data);
        let once = h.finalize();
        let twice = Sha256::digest(once);
        [twice[0], twice[1], twice[2], twice[3]]
    }

    /// `c32[version]` followed by c32(data ‖ checksum).
    ///
    /// # Panics
    /// If `version >= 32` (it must be one c32 digit).
    pub fn c32check_encode(version: u8, data: &[u8]) -> String {
        assert!(version < 32, "c32check version must be < 32");
        let mut payload = Vec::with_capacity(data.len() + 4);
        payload.extend_from_slice(data);
        payload.extend_from_slice(&checksum(version, data));
        let mut out = vec![0u8; 1 + payload.len() * 8 / 5 + 1];
        out[0] = ALPHABET[version as usize];
        let n = encode_into(&payload, &mut out[1..]);
        ascii(out, 1 + n)
    }

    /// Decodes `s` into `out` (at least `s.len()` bytes) and verifies the checksum:
    /// the version and the payload without its checksum.
    fn check_decode_into<'a>(s: &str, out: &'a mut [u8]) -> Result<(u8, &'a [u8])> {
        let mut chars = s.chars();
        let first = chars
            .next()
            .ok_or_else(|| invalid("empty c32check string"))?;
        let version = digit_value(first)
            .ok_or_else(|| invalid(format!("invalid c32 character {first:?}")))?;
        let n = decode_into(chars.as_str(), out)?;
        if n < 4 {
            return Err(invalid("c32check string too short for a checksum"));
        }
        let (payload, sum) = out[..n].split_at(n - 4);
        if sum != checksum(version, payload) {
            return Err(invalid("c32check checksum mismatch"));
        }
        Ok((version, payload))
    }

    /// Inverse of [`c32check_encode`]; verifies the checksum.
    pub fn c32check_decode(s: &str) -> Result<(u8, Vec<u8>)> {
        let mut out = vec![0u8; s.len()];
        let (version, payload) = check_decode_into(s, &mut out)?;
        Ok((version, payload.to_vec()))
    }

    /// A Stacks address: `S` + c32check(version, hash160).
    pub fn c32_address(version: u8, hash160: &[u8]) -> String {
        format!("S{}", c32check_encode(version, hash160))
    }

    /// The longest address [`c32_address_decode`] reads.
    pub(crate) const MAX_ADDRESS_LEN: usize = 64;

    /// [`c32_address_decode`] into a caller's buffer.
    pub(crate) fn address_decode_into<'a>(
        addr: &str,
        out: &'a mut [u8; MAX_ADDRESS_LEN],
    ) -> Result<(u8, &'a [u8])> {
        // Bounded so hostile input costs nothing: a 20-byte address is at most 41 chars.
        if addr.len() <= 5 || addr.len() > MAX_ADDRESS_LEN {
            return Err(invalid(format!(
                "invalid Stacks address length {}",
                addr.len()
            )));
        }
        let rest = addr
            .strip_prefix('S')
            .ok_or_else(|| invalid("Stacks address must start with 'S'"))?;
        check_decode_into(rest, out)
    }

    /// Decodes a Stacks address into (version, payload), checksum verified.
    pub fn c32_address_decode(addr: &str) -> Result<(u8, Vec<u8>)> {
        let mut out = [0u8; MAX_ADDRESS_LEN];
        let (version, payload) = address_decode_into(addr, &mut out)?;
        Ok((version, payload.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_hash_addresses() {
        let p = Principal::new(22, [0; 20]).unwrap();
        assert_eq!(p.address(), "SP000000000000000000002Q6VF78");
        let t = Principal::new(26, [0; 20]).unwrap();
        assert_eq!(t.address(), "ST000000000000000000002AMW42H");
        assert_eq!(Principal::parse(&p.to_string()).unwrap(), p);
    }

    #[test]
    fn c32_round_trips() {
        for data in [
            &[][..],
            &[0],
            &[0, 0, 1],
            &[1, 2, 3, 4, 5],
            &[0xff; 21],
            &[0, 0xff, 0, 0x10],
        ] {
            assert_eq!(c32::c32_decode(&c32::c32_encode(data)).unwrap(), data);
        }
    }

    #[test]
    fn rejects_noncanonical_and_bad_input() {
        let p = Principal::new(22, [7; 20]).unwrap();
        let lower = format!("stacks:{}", p.address().to_lowercase());
        assert_eq!(
            Principal::parse(&lower).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        for bad in [
            "",
            "stacks:",
            "SP",
            "stacks:SPXYZ",
            "stacks:SP000000000000000000002Q6VF79",
            "stacks:SP0000000000000000000002Q6VF78",
            "bitcoin:SP000000000000000000002Q6VF78",
            "stacks:SP000000000000000000002Q6VF7€",
        ] {
            assert_eq!(
                Principal::parse(bad).unwrap_err().code,
                ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
        // Unsupported version byte with a valid checksum.
        let addr = c32::c32_address(1, &[0; 20]);
        assert!(Principal::from_address(&addr).is_err());
    }

    /// The encoder and decoder as they were before they wrote into buffers (each a few
    /// allocations per call): the reference the buffer versions must match.
    mod reference {
        use super::c32::ALPHABET;

        pub fn encode(data: &[u8]) -> String {
            let zeros = data.iter().take_while(|&&b| b == 0).count();
            let mut digits = Vec::new();
            let (mut acc, mut bits) = (0u32, 0);
            for &b in data[zeros..].iter().rev() {
                acc |= (b as u32) << bits;
                bits += 8;
                while bits >= 5 {
                    digits.push(ALPHABET[(acc & 31) as usize]);
                    acc >>= 5;
                    bits -= 5;
                }
            }
            if bits > 0 {
                digits.push(ALPHABET[(acc & 31) as usize]);
            }
            while digits.last() == Some(&b'0') {
                digits.pop();
            }
            let mut out = "0".repeat(zeros);
            out.extend(digits.iter().rev().map(|&d| d as char));
            out
        }

        pub fn decode(s: &str) -> Vec<u8> {
            let values: Vec<u8> = s
                .bytes()
                .map(|c| ALPHABET.iter().position(|&a| a == c).unwrap() as u8)
                .collect();
            let zeros = values.iter().take_while(|&&v| v == 0).count();
            let mut bytes = Vec::new();
            let (mut acc, mut bits) = (0u32, 0);
            for &v in values[zeros..].iter().rev() {
                acc |= (v as u32) << bits;
                bits += 5;
                if bits >= 8 {
                    bytes.push((acc & 0xff) as u8);
                    acc >>= 8;
                    bits -= 8;
                }
            }
            if bits > 0 {
                bytes.push(acc as u8);
            }
            while bytes.last() == Some(&0) {
                bytes.pop();
            }
            let mut out = vec![0u8; zeros];
            out.extend(bytes.iter().rev());
            out
        }
    }

    #[test]
    fn buffer_codecs_match_the_reference_on_random_and_edge_inputs() {
        use rand::{Rng, RngCore};
        let mut rng = rand::thread_rng();
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0; 24], vec![0xff; 24], vec![0, 0, 1]];
        for _ in 0..2000 {
            let mut data = vec![0u8; rng.gen_range(0..40)];
            rng.fill_bytes(&mut data);
            // Leading zero bytes, the case c32 spells specially.
            let zeros = rng.gen_range(0..4).min(data.len());
            data[..zeros].fill(0);
            inputs.push(data);
        }
        for data in &inputs {
            let text = c32::c32_encode(data);
            assert_eq!(text, reference::encode(data), "{data:?}");
            assert_eq!(c32::c32_decode(&text).unwrap(), reference::decode(&text));
            assert_eq!(&c32::c32_decode(&text).unwrap(), data);
        }
        // Every principal's text, printed and parsed, against the old spelling.
        for _ in 0..2000 {
            let mut hash = [0u8; 20];
            rng.fill_bytes(&mut hash);
            hash[..rng.gen_range(0..3)].fill(0);
            for version in [22, 26, 20, 21] {
                let p = Principal::new(version, hash).unwrap();
                let mut payload = hash.to_vec();
                payload.extend_from_slice(&c32::checksum(version, &hash));
                let old = format!(
                    "stacks:S{}{}",
                    c32::ALPHABET[version as usize] as char,
                    reference::encode(&payload)
                );
                assert_eq!(p.to_string(), old);
                assert_eq!(p.text().address(), &old["stacks:".len()..]);
                assert_eq!(p.address(), c32::c32_address(version, &hash));
                assert_eq!(Principal::parse(&old).unwrap(), p);
            }
        }
    }
}
