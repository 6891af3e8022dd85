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
        let (version, data) = c32::c32_address_decode(addr)?;
        let hash160: [u8; 20] = data
            .as_slice()
            .try_into()
            .map_err(|_| invalid(format!("address payload is {} bytes, not 20", data.len())))?;
        let p = Principal::new(version, hash160)?;
        if p.address() != addr {
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
        c32::c32_address(self.version, &self.hash160)
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
        write!(f, "{PRINCIPAL_PREFIX}{}", self.address())
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

    /// Encodes bytes: each leading zero byte becomes one `0`, the rest is the base-32
    /// representation of the remaining big-endian number (as stacks.js `c32encode`).
    pub fn c32_encode(data: &[u8]) -> String {
        let zeros = data.iter().take_while(|&&b| b == 0).count();
        let rest = &data[zeros..];
        // Base 32 is a power of two: digits are 5-bit groups read from the low end.
        let mut digits = Vec::with_capacity(rest.len() * 8 / 5 + 1);
        let mut acc: u32 = 0;
        let mut bits = 0;
        for &b in rest.iter().rev() {
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
        let mut out = String::with_capacity(zeros + digits.len());
        out.push_str(&"0".repeat(zeros));
        out.extend(digits.iter().rev().map(|&d| d as char));
        out
    }

    /// Decodes c32: each leading `0` becomes one zero byte, the rest is the minimal
    /// big-endian representation of the number the remaining digits spell.
    pub fn c32_decode(s: &str) -> Result<Vec<u8>> {
        let values: Vec<u8> = s
            .chars()
            .map(|c| digit_value(c).ok_or_else(|| invalid(format!("invalid c32 character {c:?}"))))
            .collect::<Result<_>>()?;
        let zeros = values.iter().take_while(|&&v| v == 0).count();
        let mut bytes = Vec::with_capacity(values.len() * 5 / 8 + 1);
        let mut acc: u32 = 0;
        let mut bits = 0;
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
        Ok(out)
    }

    fn checksum(version: u8, data: &[u8]) -> [u8; 4] {
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
        let mut payload = data.to_vec();
        payload.extend_from_slice(&checksum(version, data));
        let mut out = String::new();
        out.push(ALPHABET[version as usize] as char);
        out.push_str(&c32_encode(&payload));
        out
    }

    /// Inverse of [`c32check_encode`]; verifies the checksum.
    pub fn c32check_decode(s: &str) -> Result<(u8, Vec<u8>)> {
        let mut chars = s.chars();
        let first = chars
            .next()
            .ok_or_else(|| invalid("empty c32check string"))?;
        let version = digit_value(first)
            .ok_or_else(|| invalid(format!("invalid c32 character {first:?}")))?;
        let mut payload = c32_decode(chars.as_str())?;
        if payload.len() < 4 {
            return Err(invalid("c32check string too short for a checksum"));
        }
        let sum = payload.split_off(payload.len() - 4);
        if sum != checksum(version, &payload) {
            return Err(invalid("c32check checksum mismatch"));
        }
        Ok((version, payload))
    }

    /// A Stacks address: `S` + c32check(version, hash160).
    pub fn c32_address(version: u8, hash160: &[u8]) -> String {
        format!("S{}", c32check_encode(version, hash160))
    }

    /// Decodes a Stacks address into (version, payload), checksum verified.
    pub fn c32_address_decode(addr: &str) -> Result<(u8, Vec<u8>)> {
        // Bounded so hostile input costs nothing: a 20-byte address is at most 41 chars.
        if addr.len() <= 5 || addr.len() > 64 {
            return Err(invalid(format!(
                "invalid Stacks address length {}",
                addr.len()
            )));
        }
        let rest = addr
            .strip_prefix('S')
            .ok_or_else(|| invalid("Stacks address must start with 'S'"))?;
        c32check_decode(rest)
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
}
