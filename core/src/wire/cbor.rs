//! The small, deterministic CBOR subset every snap2p message uses.
//!
//! Encoding rules (normative, see `docs/PROTOCOL.md` §2):
//! - integers in the shortest form; negative integers only where a field is signed;
//! - byte strings (major 2) and UTF-8 text strings (major 3), definite lengths only;
//! - maps (major 5) whose keys are text strings, sorted in plain byte-wise string order
//!   (the order the existing TypeScript implementation uses, not RFC 8949's length-first);
//! - arrays (major 4), `true`/`false`/`null`.
//!
//! The decoder borrows from its input (no copies of byte strings), rejects indefinite
//! lengths, tags, floats and non-text map keys, bounds nesting depth, and never allocates
//! more than the input could describe, so a hostile length costs nothing.

use std::fmt;

/// Maximum nesting depth the decoder accepts.
pub const MAX_DEPTH: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CborError {
    /// Input ended inside an item.
    Truncated,
    /// A construct outside the subset (tags, floats, indefinite lengths, non-text keys).
    Unsupported(&'static str),
    /// Text that is not UTF-8.
    InvalidUtf8,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Bytes left over after the single expected item.
    TrailingBytes,
}

impl fmt::Display for CborError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CborError::Truncated => write!(f, "truncated CBOR"),
            CborError::Unsupported(what) => write!(f, "unsupported CBOR: {what}"),
            CborError::InvalidUtf8 => write!(f, "CBOR text is not UTF-8"),
            CborError::TooDeep => write!(f, "CBOR nested too deeply"),
            CborError::TrailingBytes => write!(f, "trailing bytes after CBOR item"),
        }
    }
}

impl std::error::Error for CborError {}

/// A decoded CBOR item borrowing from the input buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Uint(u64),
    /// A negative integer `-1 - n`.
    Nint(u64),
    Bytes(&'a [u8]),
    Text(&'a str),
    Array(Vec<Value<'a>>),
    Map(Vec<(&'a str, Value<'a>)>),
    Bool(bool),
    Null,
}

impl<'a> Value<'a> {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Uint(n) => Some(*n),
            _ => None,
        }
    }

    /// Signed view of an integer (timestamps are int64 on the wire).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Uint(n) => i64::try_from(*n).ok(),
            Value::Nint(n) => i64::try_from(*n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&'a str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(&'a str, Value<'a>)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Looks a key up in a map (first occurrence).
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.as_map()?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

// ---------------------------------------------------------------------------------------
// Encoding

fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u8::MAX as u64 {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= u16::MAX as u64 {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u32::MAX as u64 {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Number of bytes `write_head` produces for `n`.
pub fn head_len(n: u64) -> usize {
    if n < 24 {
        1
    } else if n <= u8::MAX as u64 {
        2
    } else if n <= u16::MAX as u64 {
        3
    } else if n <= u32::MAX as u64 {
        5
    } else {
        9
    }
}

pub fn write_uint(out: &mut Vec<u8>, n: u64) {
    write_head(out, 0, n);
}

pub fn write_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        write_head(out, 0, n as u64);
    } else {
        write_head(out, 1, (-1 - n) as u64);
    }
}

pub fn write_bytes_header(out: &mut Vec<u8>, len: usize) {
    write_head(out, 2, len as u64);
}

pub fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_bytes_header(out, b.len());
    out.extend_from_slice(b);
}

pub fn write_text(out: &mut Vec<u8>, s: &str) {
    write_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub fn write_array_header(out: &mut Vec<u8>, len: usize) {
    write_head(out, 4, len as u64);
}

pub fn write_map_header(out: &mut Vec<u8>, len: usize) {
    write_head(out, 5, len as u64);
}

pub fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.push(if b { 0xf5 } else { 0xf4 });
}

/// Encodes a value; map entries are written in sorted key order whatever their order in
/// the value, so the output is always canonical.
pub fn encode_value(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Uint(n) => write_head(out, 0, *n),
        Value::Nint(n) => write_head(out, 1, *n),
        Value::Bytes(b) => write_bytes(out, b),
        Value::Text(s) => write_text(out, s),
        Value::Array(items) => {
            write_array_header(out, items.len());
            for item in items {
                encode_value(out, item);
            }
        }
        Value::Map(entries) => {
            let mut sorted: Vec<&(&str, Value<'_>)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            write_map_header(out, sorted.len());
            for (k, v) in sorted {
                write_text(out, k);
                encode_value(out, v);
            }
        }
        Value::Bool(b) => write_bool(out, *b),
        Value::Null => out.push(0xf6),
    }
}

pub fn to_vec(v: &Value<'_>) -> Vec<u8> {
    // The signed objects this encodes are 200-500 bytes (an attestation ~340): from
    // empty, the buffer grew six times each.
    let mut out = Vec::with_capacity(256);
    encode_value(&mut out, v);
    out
}

// ---------------------------------------------------------------------------------------
// Decoding

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn byte(&mut self) -> Result<u8, CborError> {
        let b = *self.input.get(self.pos).ok_or(CborError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], CborError> {
        let remaining = (self.input.len() - self.pos) as u64;
        if n > remaining {
            return Err(CborError::Truncated);
        }
        let n = n as usize;
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn argument(&mut self, info: u8) -> Result<u64, CborError> {
        Ok(match info {
            0..=23 => info as u64,
            24 => self.byte()? as u64,
            25 => u16::from_be_bytes(self.take(2)?.try_into().unwrap()) as u64,
            26 => u32::from_be_bytes(self.take(4)?.try_into().unwrap()) as u64,
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap()),
            31 => return Err(CborError::Unsupported("indefinite length")),
            _ => return Err(CborError::Unsupported("reserved additional information")),
        })
    }

    /// Count of items a container claims, bounded by what the remaining input could hold
    /// (every item takes at least one byte), so no allocation trusts a hostile length.
    fn container_len(&mut self, info: u8, per_item: u64) -> Result<usize, CborError> {
        let n = self.argument(info)?;
        let remaining = (self.input.len() - self.pos) as u64;
        if n.saturating_mul(per_item) > remaining {
            return Err(CborError::Truncated);
        }
        Ok(n as usize)
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::TooDeep);
        }
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        match major {
            0 => Ok(Value::Uint(self.argument(info)?)),
            1 => Ok(Value::Nint(self.argument(info)?)),
            2 => {
                let n = self.argument(info)?;
                Ok(Value::Bytes(self.take(n)?))
            }
            3 => {
                let n = self.argument(info)?;
                let raw = self.take(n)?;
                std::str::from_utf8(raw)
                    .map(Value::Text)
                    .map_err(|_| CborError::InvalidUtf8)
            }
            4 => {
                let n = self.container_len(info, 1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            5 => {
                let n = self.container_len(info, 2)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = match self.value(depth + 1)? {
                        Value::Text(k) => k,
                        _ => return Err(CborError::Unsupported("non-text map key")),
                    };
                    let v = self.value(depth + 1)?;
                    entries.push((key, v));
                }
                Ok(Value::Map(entries))
            }
            6 => Err(CborError::Unsupported("tag")),
            _ => match info {
                20 => Ok(Value::Bool(false)),
                21 => Ok(Value::Bool(true)),
                22 | 23 => Ok(Value::Null),
                _ => Err(CborError::Unsupported("float or simple value")),
            },
        }
    }
}

/// Decodes one item from the start of `input`; returns it and the number of bytes used.
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, usize), CborError> {
    let mut d = Decoder { input, pos: 0 };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

/// Decodes exactly one item; trailing bytes are an error.
pub fn decode(input: &[u8]) -> Result<Value<'_>, CborError> {
    let (v, used) = decode_prefix(input)?;
    if used != input.len() {
        return Err(CborError::TrailingBytes);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal() {
        for (n, expect) in [
            (0u64, vec![0x00]),
            (23, vec![0x17]),
            (24, vec![0x18, 24]),
            (255, vec![0x18, 0xff]),
            (256, vec![0x19, 1, 0]),
            (65536, vec![0x1a, 0, 1, 0, 0]),
            (
                u64::MAX,
                vec![0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
        ] {
            let mut out = vec![];
            write_uint(&mut out, n);
            assert_eq!(out, expect);
            assert_eq!(head_len(n), expect.len());
            assert_eq!(decode(&out).unwrap(), Value::Uint(n));
        }
        let mut out = vec![];
        write_int(&mut out, -1);
        assert_eq!(out, vec![0x20]);
        assert_eq!(decode(&out).unwrap().as_i64(), Some(-1));
    }

    #[test]
    fn maps_sort_keys_bytewise() {
        let v = Value::Map(vec![
            ("t", Value::Uint(1)),
            ("sid", Value::Uint(2)),
            ("d", Value::Bytes(b"x")),
            ("ab", Value::Bool(true)),
        ]);
        let bytes = to_vec(&v);
        let back = decode(&bytes).unwrap();
        let keys: Vec<&str> = back.as_map().unwrap().iter().map(|e| e.0).collect();
        assert_eq!(keys, ["ab", "d", "sid", "t"]);
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        // A map claiming 2^32 entries with nothing behind it.
        assert_eq!(
            decode(&[0xba, 0xff, 0xff, 0xff, 0xff]),
            Err(CborError::Truncated)
        );
        // A byte string claiming 2^64-1 bytes.
        let mut b = vec![0x5b];
        b.extend_from_slice(&[0xff; 8]);
        assert_eq!(decode(&b), Err(CborError::Truncated));
        // An array claiming u64::MAX entries.
        let mut a = vec![0x9b];
        a.extend_from_slice(&[0xff; 8]);
        assert_eq!(decode(&a), Err(CborError::Truncated));
    }

    #[test]
    fn rejects_outside_subset() {
        assert!(matches!(decode(&[0x5f]), Err(CborError::Unsupported(_))));
        assert!(matches!(
            decode(&[0xc0, 0x00]),
            Err(CborError::Unsupported(_))
        ));
        assert!(matches!(
            decode(&[0xf9, 0, 0]),
            Err(CborError::Unsupported(_))
        ));
        assert!(matches!(
            decode(&[0xa1, 0x01, 0x01]),
            Err(CborError::Unsupported(_))
        ));
        assert_eq!(decode(&[0x62, 0xff, 0xfe]), Err(CborError::InvalidUtf8));
        assert_eq!(decode(&[0x01, 0x02]), Err(CborError::TrailingBytes));
        let deep = [0x81u8; 20];
        assert_eq!(decode(&deep), Err(CborError::TooDeep));
    }
}
