//! Locators (spec §0): where a peer can be dialed, and over which transport.
//!
//! The grammar (docs/PROTOCOL.md §14):
//!
//! ```text
//! locator   = authority                          ; TCP, the v0.1 form
//!           / scheme "://" authority [ path ]
//! authority = host ":" port                      ; port 1-65535
//! host      = IPv4 / "[" IPv6 "]" / dns-name
//! scheme    = lower-case letter *( letter / digit / "+" / "-" / "." )
//! path      = "/" *( printable ASCII but space )
//! ```
//!
//! `ip:port`, `[ipv6]:port` and `host:port` keep meaning TCP, and that bare form is the
//! canonical spelling of a TCP locator (so peers of v0.1, which know no schemes, read it);
//! `tcp://…` is accepted as input. `ws://` and `wss://` name the WebSocket transports; any
//! other scheme is parsed and kept, so PX-1 can carry locators of transports this peer does
//! not know, and a dial of one fails with a clear reason. A TCP locator has no path; a lone
//! `/` path is the same as none. Host names are lower-cased. Display and parse round-trip.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::error::{Error, ErrorCode};

/// Longest host name accepted (RFC 1035 limit).
const MAX_HOST_LEN: usize = 253;
/// Longest scheme accepted.
const MAX_SCHEME_LEN: usize = 16;
/// Longest path accepted.
const MAX_PATH_LEN: usize = 256;

/// The transport a locator names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scheme {
    Tcp,
    Ws,
    Wss,
    /// A scheme this version knows no transport for (kept, so it can be carried on).
    Other(String),
}

impl Scheme {
    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Tcp => "tcp",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
            Scheme::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Option<Scheme> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
        if !first_ok || !rest_ok || s.len() > MAX_SCHEME_LEN {
            return None;
        }
        Some(match s {
            "tcp" => Scheme::Tcp,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            other => Scheme::Other(other.to_string()),
        })
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The host part of a locator.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    Ip(IpAddr),
    /// A DNS name, lower-cased.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A dialable endpoint: transport, host, port and (for WebSocket) a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Locator {
    scheme: Scheme,
    host: Host,
    port: u16,
    path: Option<String>,
}

fn bad(s: &str, why: &str) -> Error {
    Error::new(
        ErrorCode::InvalidArgument,
        format!(
            "invalid locator '{s}': {why} (expected ip:port, [ipv6]:port, host:port or \
             scheme://host:port[/path])"
        ),
    )
}

fn valid_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_HOST_LEN
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Parses `host:port` (port 0 only when `allow_port0`).
fn parse_authority(s: &str, whole: &str, allow_port0: bool) -> Result<(Host, u16), Error> {
    // The port: 1 to 5 decimal digits, no leading zero (one spelling per locator).
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad(whole, "no port"))?;
    let digits_only = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || port.len() > 5 || (port.len() > 1 && port.starts_with('0')) {
        return Err(bad(whole, "port is not 1-65535 (decimal, no leading zero)"));
    }
    // A host of digits and dots is an IPv4 address or nothing: no leading zeros in its
    // parts (01.2.3.4 is neither 1.2.3.4 nor a DNS name; RFC 1123 §2.1).
    if !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && host.parse::<std::net::Ipv4Addr>().is_err()
    {
        return Err(bad(
            whole,
            "not an IPv4 address (four parts 0-255, no leading zeros)",
        ));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        if addr.port() == 0 && !allow_port0 {
            return Err(bad(whole, "port 0"));
        }
        return Ok((Host::Ip(addr.ip()), addr.port()));
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad(whole, "no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad(whole, "port is not 1-65535"))?;
    if port == 0 && !allow_port0 {
        return Err(bad(whole, "port 0"));
    }
    if host.parse::<IpAddr>().is_ok() || host.contains(['[', ']']) {
        return Err(bad(whole, "IPv6 addresses need brackets"));
    }
    if !valid_host_name(host) {
        return Err(bad(whole, "not a valid host name"));
    }
    Ok((Host::Name(host.to_ascii_lowercase()), port))
}

impl Locator {
    /// A TCP locator for a socket address.
    pub fn tcp(addr: SocketAddr) -> Locator {
        Locator {
            scheme: Scheme::Tcp,
            host: Host::Ip(addr.ip()),
            port: addr.port(),
            path: None,
        }
    }

    fn parse_with(s: &str, allow_port0: bool) -> Result<Locator, Error> {
        let s = s.trim();
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (
                Scheme::parse(scheme).ok_or_else(|| bad(s, "not a valid scheme"))?,
                rest,
            ),
            None => (Scheme::Tcp, s),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let path = match path {
            None | Some("/") => None,
            Some(p) => {
                if p.len() > MAX_PATH_LEN || !p.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(bad(s, "path must be printable ASCII without spaces"));
                }
                Some(p.to_string())
            }
        };
        if scheme == Scheme::Tcp && path.is_some() {
            return Err(bad(s, "a TCP locator has no path"));
        }
        let (host, port) = parse_authority(authority, s, allow_port0)?;
        Ok(Locator {
            scheme,
            host,
            port,
            path,
        })
    }

    /// Parses a listen address: a locator whose port may be 0 (any free port), or a bare
    /// port meaning all IPv4 interfaces over TCP.
    pub fn parse_listen(s: &str) -> Result<Locator, Error> {
        let s = s.trim();
        if let Ok(port) = s.parse::<u16>() {
            return Ok(Locator::tcp(SocketAddr::from(([0, 0, 0, 0], port))));
        }
        Locator::parse_with(s, true).map_err(|_| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "invalid listen address '{s}' (expected a port, ip:port, [ipv6]:port or \
                     scheme://ip:port[/path])"
                ),
            )
        })
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path (WebSocket), if any.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The socket address, when the host is an IP address.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Name(_) => None,
        }
    }

    /// The same locator with another host IP and port (a listener bound to `0.0.0.0:0`
    /// as it is reached).
    pub fn with_addr(&self, addr: SocketAddr) -> Locator {
        Locator {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
            ..self.clone()
        }
    }

    /// Resolves the host to socket addresses, in the order they should be tried.
    #[cfg(feature = "runtime")]
    pub async fn resolve(&self) -> Result<Vec<SocketAddr>, Error> {
        match &self.host {
            Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, self.port)]),
            Host::Name(host) => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), self.port))
                    .await
                    .map_err(|e| {
                        Error::new(
                            ErrorCode::ConnectionClosed,
                            format!("cannot resolve {host}: {e}"),
                        )
                    })?
                    .collect();
                if addrs.is_empty() {
                    return Err(Error::new(
                        ErrorCode::ConnectionClosed,
                        format!("{host} has no addresses"),
                    ));
                }
                Ok(addrs)
            }
        }
    }

    /// Whether the locator names a loopback address (PX-1 hands such hints only to peers on
    /// the same host).
    pub fn is_loopback(&self) -> bool {
        match &self.host {
            Host::Ip(ip) => ip.to_canonical().is_loopback(),
            Host::Name(host) => host == "localhost",
        }
    }
}

impl FromStr for Locator {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Locator::parse_with(s, false)
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scheme != Scheme::Tcp {
            write!(f, "{}://", self.scheme)?;
        }
        write!(f, "{}:{}", self.host, self.port)?;
        if let Some(p) = &self.path {
            f.write_str(p)?;
        }
        Ok(())
    }
}

impl From<SocketAddr> for Locator {
    fn from(addr: SocketAddr) -> Self {
        Locator::tcp(addr)
    }
}

/// Parses a TCP listen address (a bare port means all IPv4 interfaces).
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, Error> {
    let loc = Locator::parse_listen(s)?;
    match (loc.scheme(), loc.socket_addr()) {
        (Scheme::Tcp, Some(addr)) => Ok(addr),
        _ => Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("invalid listen address '{s}' (expected a port, ip:port or [ipv6]:port)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        assert_eq!(
            "127.0.0.1:9000".parse::<Locator>().unwrap(),
            Locator::tcp("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(
            "[::1]:9000".parse::<Locator>().unwrap().to_string(),
            "[::1]:9000"
        );
        let dns = "Node.Example.com:443".parse::<Locator>().unwrap();
        assert_eq!(dns.host(), &Host::Name("node.example.com".into()));
        assert_eq!(dns.port(), 443);
        assert_eq!(dns.scheme(), &Scheme::Tcp);
        for bad in [
            "",
            "9000",
            "host",
            "host:0",
            "host:70000",
            "::1:9000",
            "-bad-:1",
            "a..b:1",
            "1.2.3.4:0",
            "exa mple:1",
            "tcp://1.2.3.4:1/path",
            "WS://h:1",
            "1ws://h:1",
            "ws://h:1/a b",
            "ws://:1",
            "ws://h",
            "://h:1",
        ] {
            assert!(bad.parse::<Locator>().is_err(), "{bad} should fail");
        }
        assert_eq!(
            parse_listen_addr("9000").unwrap(),
            "0.0.0.0:9000".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("[::]:0").unwrap(),
            "[::]:0".parse().unwrap()
        );
        assert!(parse_listen_addr("ws://0.0.0.0:0").is_err());
        assert_eq!(
            Locator::parse_listen("ws://0.0.0.0:0/snap2p")
                .unwrap()
                .to_string(),
            "ws://0.0.0.0:0/snap2p"
        );
    }

    #[test]
    fn schemes_round_trip() {
        let cases = [
            ("tcp://1.2.3.4:9000", "1.2.3.4:9000"),
            ("tcp://[::1]:9000", "[::1]:9000"),
            ("tcp://Example.org:9", "example.org:9"),
            ("ws://1.2.3.4:80", "ws://1.2.3.4:80"),
            ("ws://1.2.3.4:80/", "ws://1.2.3.4:80"),
            (
                "wss://Node.Example.org:443/snap2p",
                "wss://node.example.org:443/snap2p",
            ),
            (
                "wss://[2001:db8::1]:443/a/b?c=d",
                "wss://[2001:db8::1]:443/a/b?c=d",
            ),
            ("quic://1.2.3.4:4433", "quic://1.2.3.4:4433"),
            ("relay+tcp://r.example:7/x", "relay+tcp://r.example:7/x"),
        ];
        for (input, canonical) in cases {
            let loc: Locator = input.parse().unwrap();
            assert_eq!(loc.to_string(), canonical, "{input}");
            let again: Locator = canonical.parse().unwrap();
            assert_eq!(again, loc, "{input} round-trips");
            assert_eq!(again.to_string(), canonical);
        }
        let q: Locator = "quic://1.2.3.4:4433".parse().unwrap();
        assert_eq!(q.scheme(), &Scheme::Other("quic".into()));
        let w: Locator = "wss://h.example:443/p".parse().unwrap();
        assert_eq!(w.scheme(), &Scheme::Wss);
        assert_eq!(w.path(), Some("/p"));
        assert_eq!(w.socket_addr(), None);
    }
}
