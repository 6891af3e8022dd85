//! TCP: the v0.1 transport. Locators `ip:port`, `[ipv6]:port`, `host:port` (or `tcp://…`).

use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::{BoxFuture, Connected, Incoming, Io, Listener, Transport};
use crate::error::{Error, ErrorCode};
use crate::locator::{Locator, Scheme};

/// Dials and listens over TCP (`TCP_NODELAY` on: the session coalesces its own writes).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TcpTransport {
    /// Time allowed for the connect of one resolved address.
    pub connect_timeout: Duration,
    /// The local address dials leave from (None: the system picks). On a multi-homed host
    /// this chooses the interface; addresses of the other IP family are skipped.
    pub local_ip: Option<IpAddr>,
}

impl Default for TcpTransport {
    fn default() -> Self {
        TcpTransport {
            connect_timeout: Duration::from_secs(10),
            local_ip: None,
        }
    }
}

impl TcpTransport {
    /// Dials leave from `ip` (see [`TcpTransport::local_ip`]).
    pub fn with_local_ip(mut self, ip: IpAddr) -> Self {
        self.local_ip = Some(ip);
        self
    }

    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects to the first of the locator's addresses that answers, in resolver order
    /// (Nagle off on the stream it returns).
    pub async fn connect(&self, locator: &Locator) -> Result<TcpStream, Error> {
        let addrs = locator.resolve().await?;
        let mut last = None;
        for addr in addrs {
            let connect = async {
                let Some(local) = self.local_ip else {
                    return TcpStream::connect(addr).await;
                };
                let socket = match local {
                    IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                    IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
                };
                socket.bind(SocketAddr::new(local, 0))?;
                socket.connect(addr).await
            };
            if self.local_ip.is_some_and(|l| l.is_ipv4() != addr.is_ipv4()) {
                continue;
            }
            match tokio::time::timeout(self.connect_timeout, connect).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Ok(Err(e)) => {
                    last = Some(Error::new(
                        ErrorCode::ConnectionClosed,
                        format!("cannot connect to {addr}: {e}"),
                    ))
                }
                Err(_) => {
                    last = Some(Error::new(
                        ErrorCode::Timeout,
                        format!("connecting to {addr} timed out"),
                    ))
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::new(ErrorCode::ConnectionClosed, "no address")))
    }

    /// Binds a TCP listener with a deep accept queue ([`LISTEN_BACKLOG`]).
    pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
        let fail = |e: std::io::Error| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("cannot listen on {addr}: {e}"),
            )
        };
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(fail)?;
        // As tokio's own `TcpListener::bind` does on Unix: rebinding a port whose old
        // connections sit in TIME_WAIT must work.
        #[cfg(unix)]
        socket.set_reuseaddr(true).map_err(fail)?;
        socket.bind(addr).map_err(fail)?;
        socket.listen(LISTEN_BACKLOG).map_err(fail)
    }
}

/// The kernel's accept queue for a listener (capped by `net.core.somaxconn`, 4096 on
/// current Linux). Why deeper than tokio's 1024: under a reconnecting flood of ~1,000
/// connections from one address (issue 35), a 1024-deep queue overflowed, the kernel
/// dropped honest SYNs, and their retransmit one second later put the honest p99 time to
/// authenticated at 1.24 s although admission let every one of them in.
pub const LISTEN_BACKLOG: u32 = 4096;

/// The `Connected` form of a TCP stream (Nagle off, as on every snap2p socket).
pub fn connected(tcp: TcpStream) -> Connected {
    let _ = tcp.set_nodelay(true);
    wrap(tcp)
}

/// [`connected`] for a stream [`TcpTransport::connect`] made: Nagle is already off (one
/// `setsockopt` per dial fewer; strace of a `snap2p-bench connect` run counted three
/// TCP_NODELAY calls per session, one of them this repeat).
fn wrap(tcp: TcpStream) -> Connected {
    Connected {
        remote: tcp.peer_addr().ok(),
        local: tcp.local_addr().ok(),
        io: Box::new(tcp),
    }
}

const TCP: &[Scheme] = &[Scheme::Tcp];

impl Transport for TcpTransport {
    fn schemes(&self) -> &[Scheme] {
        TCP
    }

    fn dial(&self, locator: &Locator) -> BoxFuture<Result<Connected, Error>> {
        let this = self.clone();
        let locator = locator.clone();
        Box::pin(async move { this.connect(&locator).await.map(wrap) })
    }

    fn listen(&self, locator: &Locator) -> BoxFuture<Result<Box<dyn Listener>, Error>> {
        let addr = locator.socket_addr();
        let shown = locator.to_string();
        Box::pin(async move {
            let addr = addr.ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!("cannot listen on {shown}: a listen address needs an IP address"),
                )
            })?;
            let listener = TcpTransport::bind(addr).await?;
            let local = listener.local_addr()?;
            Ok(Box::new(TcpListen { listener, local }) as Box<dyn Listener>)
        })
    }
}

struct TcpListen {
    listener: TcpListener,
    local: SocketAddr,
}

impl Listener for TcpListen {
    fn local_locator(&self) -> Locator {
        Locator::tcp(self.local)
    }

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, Error>> {
        match self.listener.poll_accept(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Ready(Ok((tcp, remote))) => {
                let _ = tcp.set_nodelay(true);
                let local = tcp.local_addr().ok();
                let io: Box<dyn Io> = Box::new(tcp);
                Poll::Ready(Ok(Incoming {
                    remote,
                    local,
                    upgrade: Box::pin(std::future::ready(Ok(io))),
                    transport: None,
                }))
            }
        }
    }
}
