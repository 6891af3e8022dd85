//! TCP: the v0.1 transport. Locators `ip:port`, `[ipv6]:port`, `host:port` (or `tcp://…`).

use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::{BoxFuture, Connected, Incoming, Io, Listener, Transport};
use crate::error::{Error, ErrorCode};
use crate::locator::{Locator, Scheme};

/// Dials and listens over TCP (`TCP_NODELAY` on: the session coalesces its own writes).
#[derive(Clone, Debug)]
pub struct TcpTransport {
    /// Time allowed for the connect of one resolved address.
    pub connect_timeout: Duration,
}

impl Default for TcpTransport {
    fn default() -> Self {
        TcpTransport {
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl TcpTransport {
    /// Connects to the first of the locator's addresses that answers, in resolver order.
    pub async fn connect(&self, locator: &Locator) -> Result<TcpStream, Error> {
        let addrs = locator.resolve().await?;
        let mut last = None;
        for addr in addrs {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
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

    /// Binds a TCP listener.
    pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
        TcpListener::bind(addr).await.map_err(|e| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("cannot listen on {addr}: {e}"),
            )
        })
    }
}

/// The `Connected` form of a TCP stream.
pub fn connected(tcp: TcpStream) -> Connected {
    let _ = tcp.set_nodelay(true);
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
        Box::pin(async move { this.connect(&locator).await.map(connected) })
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
                }))
            }
        }
    }
}
