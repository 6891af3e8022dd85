//! Locators (spec §0): where a peer can be dialed. `ip:port`, `[ipv6]:port` or
//! `dns:port` (a host name and a port).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::error::{Error, ErrorCode};

/// Longest host name accepted (RFC 1035 limit).
const MAX_HOST_LEN: usize = 253;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Locator {
    Ip(SocketAddr),
    Dns { host: String, port: u16 },
}

fn bad(s: &str, why: &str) -> Error {
    Error::new(
        ErrorCode::InvalidArgument,
        format!("invalid locator '{s}': {why} (expected ip:port, [ipv6]:port or host:port)"),
    )
}

impl FromStr for Locator {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if let Ok(addr) = s.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(bad(s, "port 0"));
            }
            return Ok(Locator::Ip(addr));
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad(s, "no port"))?;
        let port: u16 = port.parse().map_err(|_| bad(s, "port is not 1-65535"))?;
        if port == 0 {
            return Err(bad(s, "port 0"));
        }
        if host.parse::<IpAddr>().is_ok() || host.contains(['[', ']']) {
            return Err(bad(s, "IPv6 addresses need brackets"));
        }
        if host.is_empty() || host.len() > MAX_HOST_LEN {
            return Err(bad(s, "host name length"));
        }
        let valid = host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
        if !valid {
            return Err(bad(s, "not a valid host name"));
        }
        Ok(Locator::Dns {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locator::Ip(addr) => write!(f, "{addr}"),
            Locator::Dns { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl Locator {
    /// Resolves to socket addresses, in the order they should be tried.
    pub async fn resolve(&self) -> Result<Vec<SocketAddr>, Error> {
        match self {
            Locator::Ip(a) => Ok(vec![*a]),
            Locator::Dns { host, port } => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
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

    /// Whether the locator names a loopback, private or otherwise non-global address
    /// (PX-1 uses this to decide what is worth advertising).
    pub fn is_loopback(&self) -> bool {
        match self {
            Locator::Ip(a) => a.ip().is_loopback(),
            Locator::Dns { host, .. } => host == "localhost",
        }
    }
}

/// Parses a listen address: a bare port means all IPv4 interfaces.
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, Error> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        Error::new(
            ErrorCode::InvalidArgument,
            format!("invalid listen address '{s}' (expected a port, ip:port or [ipv6]:port)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        assert_eq!(
            "127.0.0.1:9000".parse::<Locator>().unwrap(),
            Locator::Ip("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(
            "[::1]:9000".parse::<Locator>().unwrap().to_string(),
            "[::1]:9000"
        );
        assert_eq!(
            "Node.Example.com:443".parse::<Locator>().unwrap(),
            Locator::Dns {
                host: "node.example.com".into(),
                port: 443
            }
        );
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
    }
}
