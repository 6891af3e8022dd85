//! Wire profiles: which dialect of SNaP2P a session speaks (docs/PROTOCOL.md §12).
//!
//! [`WireProfile::Standard`] is snap2p's protocol (standard Noise, capabilities). The
//! opt-in [`WireProfile::TypeScript`] speaks the wire of the TypeScript SNaP2P
//! implementation (`alexrudloff/SNaP2P` 0.1.0, read at commit e09e1e8), whose Noise key
//! derivation is not the Noise specification's, so that a snap2p node and a TypeScript
//! node can authenticate each other. The profile is a parameter of the one session
//! machine, never a second implementation: what it changes is listed on the variant.

use crate::error::{Error, ErrorCode};

/// Largest frame payload the TypeScript implementation accepts and may send (16 MiB).
pub const TS_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The dialect a session speaks. Chosen per listener and per dial; never negotiated (a
/// listener cannot tell the two apart before it must answer, PROTOCOL.md §12.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireProfile {
    /// snap2p's protocol: Noise XX as specified, capabilities (flow control, transcript
    /// binding, batching, aliases, PX-1, rekey), 64 KiB transport frames.
    #[default]
    Standard,
    /// The TypeScript implementation's wire (CLI `--compat ts`), PROTOCOL.md §12.1:
    /// its HKDF variant in Noise (`HKDF(ikm = ck, salt = empty, info = dh)`), transport
    /// frames up to 16 MiB once authenticated, no capabilities (HELLO `cap: []`, `vis`
    /// always present), one control message per frame, KNOCK `{it}` only, PING `seq`
    /// from 0 and PONG `ts` from the sender's clock, CLOSE_STREAM once both directions of
    /// a stream ended, digest-form attestations of the local network only, and a dialer
    /// that sends nothing behind its AUTH_OK until the listener's first frame arrived
    /// (the TypeScript listener drops bytes read together with AUTH_OK).
    TypeScript,
}

impl WireProfile {
    /// The name used by the CLI and the language packages: `standard` or `ts`.
    pub fn name(self) -> &'static str {
        match self {
            WireProfile::Standard => "standard",
            WireProfile::TypeScript => "ts",
        }
    }

    /// How an operator reads it in an error message.
    pub fn describe(self) -> &'static str {
        match self {
            WireProfile::Standard => "the standard snap2p profile",
            WireProfile::TypeScript => "the TypeScript profile (--compat ts)",
        }
    }

    /// The profile a mismatch with this one would be: the other one.
    pub fn other(self) -> WireProfile {
        match self {
            WireProfile::Standard => WireProfile::TypeScript,
            WireProfile::TypeScript => WireProfile::Standard,
        }
    }

    pub fn is_typescript(self) -> bool {
        self == WireProfile::TypeScript
    }
}

impl std::fmt::Display for WireProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for WireProfile {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "standard" | "snap2p" | "" => Ok(WireProfile::Standard),
            "ts" | "typescript" => Ok(WireProfile::TypeScript),
            other => Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("unknown wire profile '{other}' (standard or ts)"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for p in [WireProfile::Standard, WireProfile::TypeScript] {
            assert_eq!(p.name().parse::<WireProfile>().unwrap(), p);
            assert_eq!(p.other().other(), p);
        }
        assert_eq!(
            "TypeScript".parse::<WireProfile>().unwrap(),
            WireProfile::TypeScript
        );
        assert_eq!(
            "tls".parse::<WireProfile>().unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
}
