//! WebSocket (RFC 6455) and WebSocket over TLS: locators `ws://host:port[/path]` and
//! `wss://host:port[/path]` (docs/PROTOCOL.md §15).
//!
//! The whole snap2p session (KNOCK, Noise XX, AUTH, streams) runs unchanged inside the
//! WebSocket: this module turns binary messages into the byte stream ([`Io`]) the session
//! driver reads and writes, and nothing else. The framing and the HTTP/1.1 upgrade are
//! `tokio-tungstenite`'s; TLS (`wss`, cargo feature `wss`, on by default) is rustls with
//! ring's provider, WebPKI's hostname check against Mozilla's roots plus any roots the
//! [`WsConfig`] adds, and no session resumption.
//!
//! What this layer enforces, so that the pre-auth limits hold on this transport too:
//!
//! - binary messages only: a text message ends the connection with
//!   `ERR_INVALID_MESSAGE`, a message over [`MAX_MESSAGE`] with `ERR_MESSAGE_TOO_LARGE`
//!   (tungstenite refuses it while reading its header, before buffering the payload);
//! - the upgrade request is at most 64 KiB (tungstenite's own cap) and, with the TLS
//!   handshake, must finish within [`WsConfig::upgrade_timeout`] (the peer's accept loop
//!   also counts it against the handshake deadline);
//! - a request for another path than the listener's gets `HTTP/1.1 404 Not Found`;
//! - **silent until spoken**: until the session above has written its first byte, this
//!   layer writes nothing either: no close frame, no pong. A stealth listener's session
//!   writes nothing without a valid KNOCK, so a scanner sees the `101 Switching Protocols`
//!   response and then silence, and a violation before that point closes the TCP
//!   connection without a word. Once the session has spoken, violations are answered
//!   with a close frame (1003 for text, 1009 for size, 1002 for other protocol errors).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_core::Stream as _;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{
    self,
    handshake::server::{ErrorResponse, Request, Response},
    http::{header, HeaderValue, StatusCode},
    protocol::{frame::coding::CloseCode, CloseFrame, WebSocketConfig},
    Message,
};
use tokio_tungstenite::WebSocketStream;

use super::{BoxFuture, Connected, Incoming, Io, Listener, TcpTransport, Transport};
use crate::error::{Error, ErrorCode};
use crate::locator::{Locator, Scheme};

/// Largest WebSocket message, sent or received (payload bytes).
///
/// Why 64 KiB: it is what the session driver reads from a socket at once (`READ_CHUNK`)
/// and one maximal session frame (65,535 bytes and its length prefix) nearly fits, so a
/// peer can make a listener hold at most 64 KiB of one unfinished message per connection
/// (what TCP's kernel buffer holds anyway), and a writer's 256 KiB batch goes out as four
/// messages of 14 header bytes each (0.02 % overhead). A receiver refuses larger messages
/// (close 1009, `ERR_MESSAGE_TOO_LARGE`).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Bytes tungstenite reads from the socket at once; allocated per connection.
const READ_BUFFER: usize = 64 * 1024;

/// Most bytes one `poll_write` takes (as messages of at most [`MAX_MESSAGE`]), flushed to
/// the socket together: the session driver's own output batch. Flushing each 64 KiB message
/// on its own took a syscall per message; one stream, 2 GiB over loopback, ws:// ran at
/// 0.84× snap2p over TCP that way (docs/BENCHMARKS.md, "WebSocket").
const WRITE_BATCH: usize = 256 * 1024;

/// What a WebSocket transport is set up with. `WsConfig::default()` dials `ws://` and
/// `wss://` (Mozilla's roots) and listens on `ws://`; a `wss://` listener needs a
/// certificate ([`WsConfig::with_tls_identity_pem_files`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct WsConfig {
    /// Time allowed for the TCP connect of one resolved address.
    pub connect_timeout: Duration,
    /// Time allowed for the TLS handshake and the HTTP upgrade, dialing or accepting.
    pub upgrade_timeout: Duration,
    /// Trust Mozilla's root certificates (webpki-roots) when dialing `wss://`.
    #[cfg(feature = "wss")]
    pub webpki_roots: bool,
    /// More trusted roots (DER), for private deployments and tests.
    #[cfg(feature = "wss")]
    pub extra_roots: Vec<Vec<u8>>,
    /// A `wss://` listener's certificate chain (DER, leaf first) and private key (DER).
    #[cfg(feature = "wss")]
    identity: Option<(Vec<Vec<u8>>, Vec<u8>)>,
}

impl std::fmt::Debug for WsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("WsConfig");
        d.field("connect_timeout", &self.connect_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout);
        #[cfg(feature = "wss")]
        d.field("webpki_roots", &self.webpki_roots)
            .field("extra_roots", &self.extra_roots.len())
            .field("identity", &self.identity.is_some());
        d.finish()
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            connect_timeout: Duration::from_secs(10),
            upgrade_timeout: Duration::from_secs(10),
            #[cfg(feature = "wss")]
            webpki_roots: true,
            #[cfg(feature = "wss")]
            extra_roots: Vec::new(),
            #[cfg(feature = "wss")]
            identity: None,
        }
    }
}

impl WsConfig {
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    pub fn with_upgrade_timeout(mut self, t: Duration) -> Self {
        self.upgrade_timeout = t;
        self
    }
}

#[cfg(feature = "wss")]
impl WsConfig {
    /// Also trusts the root certificate `der` (DER) when dialing `wss://`.
    pub fn with_root_der(mut self, der: Vec<u8>) -> Self {
        self.extra_roots.push(der);
        self
    }

    /// Also trusts every certificate of the PEM file `path` when dialing `wss://`.
    pub fn with_root_pem_file(mut self, path: &std::path::Path) -> Result<Self, Error> {
        let certs = tls::read_certs(path)?;
        self.extra_roots.extend(certs);
        Ok(self)
    }

    /// Trusts only the added roots, not Mozilla's (a private deployment).
    pub fn without_webpki_roots(mut self) -> Self {
        self.webpki_roots = false;
        self
    }

    /// The certificate chain (PEM, leaf first) and private key (PEM: PKCS#8, PKCS#1 or
    /// SEC1) a `wss://` listener presents.
    pub fn with_tls_identity_pem_files(
        mut self,
        cert_chain: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<Self, Error> {
        let chain = tls::read_certs(cert_chain)?;
        let key = tls::read_key(key)?;
        self.identity = Some((chain, key));
        Ok(self)
    }

    /// The same from DER: chain (leaf first) and private key (PKCS#8).
    pub fn with_tls_identity_der(mut self, cert_chain: Vec<Vec<u8>>, key_pkcs8: Vec<u8>) -> Self {
        self.identity = Some((cert_chain, key_pkcs8));
        self
    }

    /// The configuration for TLS files as the CLI and the language packages take them: a
    /// `wss://` listener's certificate chain and key (both or neither) and roots trusted
    /// when dialing `wss://`. None when no file is given (the peer's built-in WebSocket
    /// transport serves); a certificate without its key, or a key without its
    /// certificate, is `ERR_INVALID_ARGUMENT`.
    pub fn from_pem_files(
        cert_chain: Option<&std::path::Path>,
        key: Option<&std::path::Path>,
        roots: &[&std::path::Path],
    ) -> Result<Option<Self>, Error> {
        let mut ws = WsConfig::default();
        match (cert_chain, key) {
            (Some(cert), Some(key)) => ws = ws.with_tls_identity_pem_files(cert, key)?,
            (None, None) if roots.is_empty() => return Ok(None),
            (None, None) => {}
            _ => {
                return Err(Error::new(
                    crate::error::ErrorCode::InvalidArgument,
                    "a TLS certificate file and its key file go together",
                ))
            }
        }
        for root in roots {
            ws = ws.with_root_pem_file(root)?;
        }
        Ok(Some(ws))
    }
}

/// Dials and listens on `ws://` (and `wss://` with feature `wss`) locators.
#[derive(Clone)]
pub struct WsTransport {
    tcp: TcpTransport,
    upgrade_timeout: Duration,
    #[cfg(feature = "wss")]
    tls: tls::Tls,
}

impl std::fmt::Debug for WsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsTransport")
            .field("schemes", &self.schemes())
            .finish()
    }
}

impl WsTransport {
    /// Builds the transport (and, with feature `wss`, its TLS configurations: a bad
    /// certificate, key or root fails here with `ERR_INVALID_ARGUMENT`).
    pub fn new(config: WsConfig) -> Result<WsTransport, Error> {
        Ok(WsTransport {
            tcp: TcpTransport {
                connect_timeout: config.connect_timeout,
                ..TcpTransport::default()
            },
            upgrade_timeout: config.upgrade_timeout,
            #[cfg(feature = "wss")]
            tls: tls::Tls::new(&config)?,
        })
    }
}

#[cfg(feature = "wss")]
const SCHEMES: &[Scheme] = &[Scheme::Ws, Scheme::Wss];
#[cfg(not(feature = "wss"))]
const SCHEMES: &[Scheme] = &[Scheme::Ws];

fn ws_config() -> WebSocketConfig {
    // A write's messages are queued and flushed together (see `WsIo::poll_write`): the
    // write buffer holds one batch; reads and messages capped as above.
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BATCH + 64)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// The path a listener serves and a dialer asks for (`/` when the locator has none).
fn path_of(locator: &Locator) -> &str {
    locator.path().unwrap_or("/")
}

fn timeout_err(what: &str, t: Duration) -> Error {
    Error::new(
        ErrorCode::Timeout,
        format!("{what} did not finish within {} ms", t.as_millis()),
    )
}

impl Transport for WsTransport {
    fn schemes(&self) -> &[Scheme] {
        SCHEMES
    }

    fn dial(&self, locator: &Locator) -> BoxFuture<Result<Connected, Error>> {
        let this = self.clone();
        let locator = locator.clone();
        Box::pin(async move {
            let tcp = this.tcp.connect(&locator).await?;
            let remote = tcp.peer_addr().ok();
            let local = tcp.local_addr().ok();
            let t = this.upgrade_timeout;
            let io = tokio::time::timeout(t, this.client_upgrade(tcp, &locator))
                .await
                .map_err(|_| timeout_err(&format!("the WebSocket upgrade with {locator}"), t))??;
            Ok(Connected { io, remote, local })
        })
    }

    fn listen(&self, locator: &Locator) -> BoxFuture<Result<Box<dyn Listener>, Error>> {
        let this = self.clone();
        let locator = locator.clone();
        Box::pin(async move {
            let addr = locator.socket_addr().ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!("cannot listen on {locator}: a listen address needs an IP address"),
                )
            })?;
            #[cfg(feature = "wss")]
            let tls = match locator.scheme() {
                Scheme::Wss => Some(this.tls.acceptor(&locator)?),
                _ => None,
            };
            let listener = TcpTransport::bind(addr).await?;
            let bound = listener.local_addr()?;
            Ok(Box::new(WsListen {
                listener,
                locator: locator.with_addr(bound),
                path: Arc::from(path_of(&locator).split('?').next().unwrap_or("/")),
                upgrade_timeout: this.upgrade_timeout,
                #[cfg(feature = "wss")]
                tls,
            }) as Box<dyn Listener>)
        })
    }
}

impl WsTransport {
    async fn client_upgrade(
        &self,
        tcp: TcpStream,
        locator: &Locator,
    ) -> Result<Box<dyn Io>, Error> {
        let uri = format!(
            "{}://{}:{}{}",
            locator.scheme(),
            locator.host(),
            locator.port(),
            path_of(locator)
        );
        match locator.scheme() {
            #[cfg(feature = "wss")]
            Scheme::Wss => {
                let tls = self.tls.connect(tcp, locator).await?;
                client_ws(uri, tls, locator).await
            }
            Scheme::Ws => client_ws(uri, tcp, locator).await,
            other => Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("the WebSocket transport does not dial '{other}' locators"),
            )),
        }
    }
}

async fn client_ws<S>(uri: String, stream: S, locator: &Locator) -> Result<Box<dyn Io>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match tokio_tungstenite::client_async_with_config(uri, stream, Some(ws_config())).await {
        Ok((ws, _response)) => Ok(Box::new(WsIo::new(ws, true))),
        Err(tungstenite::Error::Http(resp)) => Err(Error::new(
            ErrorCode::ConnectionClosed,
            format!(
                "{locator} refused the WebSocket upgrade: HTTP {}",
                resp.status()
            ),
        )),
        Err(tungstenite::Error::Io(e)) => Err(Error::new(
            ErrorCode::ConnectionClosed,
            format!("WebSocket upgrade with {locator} failed: {e}"),
        )),
        Err(e) => Err(Error::new(
            ErrorCode::InvalidMessage,
            format!("{locator} did not answer with a WebSocket upgrade: {e}"),
        )),
    }
}

struct WsListen {
    listener: TcpListener,
    locator: Locator,
    /// The path served (without a query); other paths get 404.
    path: Arc<str>,
    upgrade_timeout: Duration,
    #[cfg(feature = "wss")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Listener for WsListen {
    fn local_locator(&self) -> Locator {
        self.locator.clone()
    }

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, Error>> {
        let (tcp, remote) = match ready!(self.listener.poll_accept(cx)) {
            Ok(x) => x,
            Err(e) => return Poll::Ready(Err(e.into())),
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().ok();
        let path = self.path.clone();
        let t = self.upgrade_timeout;
        #[cfg(feature = "wss")]
        let tls = self.tls.clone();
        // The TLS handshake and the HTTP upgrade run here, behind the peer's admission.
        let upgrade = async move {
            let work = async move {
                #[cfg(feature = "wss")]
                if let Some(acceptor) = tls {
                    let tcp = tokio::io::BufReader::with_capacity(tls::READ_BUFFER, tcp);
                    let tls = acceptor.accept(tcp).await.map_err(|e| {
                        Error::new(
                            ErrorCode::HandshakeFailed,
                            format!("TLS handshake with {remote} failed: {e}"),
                        )
                    })?;
                    return server_ws(tls, &path, remote).await;
                }
                server_ws(tcp, &path, remote).await
            };
            tokio::time::timeout(t, work)
                .await
                .map_err(|_| timeout_err(&format!("the WebSocket upgrade from {remote}"), t))?
        };
        Poll::Ready(Ok(Incoming {
            remote,
            local,
            upgrade: Box::pin(upgrade),
            transport: None,
        }))
    }
}

async fn server_ws<S>(stream: S, path: &str, remote: SocketAddr) -> Result<Box<dyn Io>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let served = path.to_string();
    // The callback's types are tungstenite's (its `Callback` trait), large error and all.
    #[allow(clippy::result_large_err)]
    let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == served {
            return Ok(resp);
        }
        let mut not_found = ErrorResponse::new(None);
        *not_found.status_mut() = StatusCode::NOT_FOUND;
        let h = not_found.headers_mut();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        Err(not_found)
    };
    match tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config())).await
    {
        Ok(ws) => Ok(Box::new(WsIo::new(ws, false))),
        Err(tungstenite::Error::Http(resp)) => Err(Error::new(
            ErrorCode::InvalidMessage,
            format!(
                "WebSocket upgrade from {remote} for another path than {path}: answered HTTP {}",
                resp.status()
            ),
        )),
        Err(tungstenite::Error::AttackAttempt) => Err(Error::new(
            ErrorCode::MessageTooLarge,
            format!("WebSocket upgrade request from {remote} over 64 KiB (or in tiny pieces)"),
        )),
        Err(tungstenite::Error::Io(e)) => Err(Error::new(
            ErrorCode::ConnectionClosed,
            format!("WebSocket upgrade from {remote} failed: {e}"),
        )),
        Err(e) => Err(Error::new(
            ErrorCode::InvalidMessage,
            format!("not a WebSocket upgrade from {remote}: {e}"),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Binary messages as a byte stream

/// A WebSocket as the byte stream a session runs over: each `poll_write` sends up to
/// `WRITE_BATCH` bytes of the buffer as binary messages of at most [`MAX_MESSAGE`], each
/// binary message received is read out in order.
///
/// A write is reported done once its messages are flushed to the socket (for `wss`,
/// through TLS): the session driver never calls `poll_flush`, so a message left in a buffer
/// would wait for the next write. Until then `poll_write` returns `Pending` and must be
/// called again with the same bytes first (what the driver, `write_all` and `copy` do).
struct WsIo<S> {
    ws: WebSocketStream<S>,
    /// The unread rest of the current binary message.
    rbuf: Bytes,
    /// Length of the message sent but not yet flushed (0: none).
    unflushed: usize,
    /// Whether the session above has written a byte (see the module comment).
    spoken: bool,
    /// The read side ended (close frame, EOF or error).
    read_done: bool,
    /// What to tell the remote in the close frame at shutdown.
    close: Option<CloseFrame>,
    /// The close frame was queued.
    closing: bool,
}

impl<S> WsIo<S> {
    fn new(ws: WebSocketStream<S>, dialer: bool) -> Self {
        WsIo {
            ws,
            rbuf: Bytes::new(),
            unflushed: 0,
            // A dialer speaks first anyway (KNOCK or the first Noise message).
            spoken: dialer,
            read_done: false,
            close: None,
            closing: false,
        }
    }
}

/// An `io::Error` carrying a snap2p error (see `From<io::Error> for Error`).
fn io_err(code: ErrorCode, msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Error::new(code, msg))
}

/// A tungstenite error as the session should see it, with the close code to send (when
/// the session has spoken); `None`: the connection just ended.
fn classify(e: tungstenite::Error) -> Option<(io::Error, CloseCode)> {
    use tungstenite::error::ProtocolError as P;
    use tungstenite::Error as E;
    Some(match e {
        E::ConnectionClosed | E::AlreadyClosed => return None,
        E::Protocol(P::ResetWithoutClosingHandshake) => return None,
        E::Io(e) => (e, CloseCode::Error),
        E::Capacity(c) => (
            io_err(
                ErrorCode::MessageTooLarge,
                format!("WebSocket message over {MAX_MESSAGE} bytes ({c})"),
            ),
            CloseCode::Size,
        ),
        E::Utf8(m) => (
            io_err(ErrorCode::InvalidMessage, format!("WebSocket: {m}")),
            CloseCode::Invalid,
        ),
        E::Protocol(p) => (
            io_err(
                ErrorCode::InvalidMessage,
                format!("WebSocket protocol error: {p}"),
            ),
            CloseCode::Protocol,
        ),
        other => (
            io_err(ErrorCode::ConnectionClosed, format!("WebSocket: {other}")),
            CloseCode::Error,
        ),
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsIo<S> {
    fn fail(&mut self, e: io::Error, code: CloseCode) -> Poll<io::Result<()>> {
        self.read_done = true;
        if self.spoken && code != CloseCode::Error {
            let mut text = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<Error>())
                .map(|x| x.reason().to_string())
                .unwrap_or_default();
            // A close frame's reason is at most 123 bytes.
            while text.len() > 120 {
                text.pop();
            }
            self.close = Some(CloseFrame {
                code,
                reason: text.into(),
            });
        }
        Poll::Ready(Err(e))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.rbuf.is_empty() {
                let n = this.rbuf.len().min(buf.remaining());
                buf.put_slice(&this.rbuf[..n]);
                this.rbuf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.read_done {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => {
                    this.read_done = true;
                    return Poll::Ready(Ok(()));
                }
                Some(Ok(Message::Binary(b))) => this.rbuf = b,
                Some(Ok(Message::Text(_))) => {
                    return this.fail(
                        io_err(
                            ErrorCode::InvalidMessage,
                            "WebSocket text message: snap2p sends binary messages only",
                        ),
                        CloseCode::Unsupported,
                    )
                }
                // A pong was queued for a ping (RFC 6455); before the session spoke it is
                // never sent (nothing more is read or written), so a stealth listener
                // stays silent. snap2p itself sends no pings.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) if !this.spoken => {
                    return this.fail(
                        io_err(
                            ErrorCode::InvalidMessage,
                            "WebSocket control frame before the session started",
                        ),
                        CloseCode::Protocol,
                    )
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => match classify(e) {
                    None => {
                        this.read_done = true;
                        return Poll::Ready(Ok(()));
                    }
                    Some((e, code)) => return this.fail(e, code),
                },
            }
        }
    }
}

fn write_err(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket closed")
        }
        other => io_err(ErrorCode::ConnectionClosed, format!("WebSocket: {other}")),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.unflushed == 0 {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            // Up to WRITE_BATCH bytes as messages of at most MAX_MESSAGE, queued in
            // tungstenite's write buffer and flushed below in one go.
            let total = buf.len().min(WRITE_BATCH);
            let mut queued = 0;
            while queued < total {
                match Pin::new(&mut this.ws).poll_ready(cx) {
                    Poll::Ready(r) => r.map_err(write_err)?,
                    Poll::Pending if queued == 0 => return Poll::Pending,
                    Poll::Pending => break,
                }
                let n = (total - queued).min(MAX_MESSAGE);
                // The caller's bytes copied into the message; tungstenite copies them once
                // more into its write buffer as it frames them (masking them, for a client).
                let msg = Message::Binary(Bytes::copy_from_slice(&buf[queued..queued + n]));
                Pin::new(&mut this.ws).start_send(msg).map_err(write_err)?;
                queued += n;
            }
            this.unflushed = queued;
            this.spoken = true;
        }
        ready!(Pin::new(&mut this.ws).poll_flush(cx)).map_err(write_err)?;
        Poll::Ready(Ok(std::mem::take(&mut this.unflushed)))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(write_err)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.spoken {
            if !this.closing {
                this.closing = true;
                let frame = this.close.take().or(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                }));
                // Fails when the remote closed first: its close was answered already.
                let _ = Pin::new(&mut this.ws).start_send(Message::Close(frame));
            }
            // Best effort: a remote that is gone fails this, and the socket closes anyway.
            let _ = ready!(Pin::new(&mut this.ws).poll_flush(cx));
        }
        // Silent until spoken: no close frame, just the transport's own close.
        Pin::new(this.ws.get_mut()).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------
// TLS for wss

#[cfg(feature = "wss")]
mod tls {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::BufReader;
    use tokio::net::TcpStream;
    use tokio_rustls::{client::TlsStream, TlsAcceptor, TlsConnector};

    use super::WsConfig;
    use crate::error::{Error, ErrorCode};
    use crate::locator::{Host, Locator};

    fn invalid(msg: String) -> Error {
        Error::new(ErrorCode::InvalidArgument, msg)
    }

    /// Bytes read from the TCP socket at once under TLS. rustls asks its socket for at
    /// most 4 KiB per read (rustls 0.23, `DeframerVecBuffer::prepare_read`), so a 16 KiB
    /// record took five `read` calls; behind this buffer one call brings several records
    /// and rustls' reads are copies from it.
    pub(super) const READ_BUFFER: usize = 64 * 1024;

    pub(super) fn read_certs(path: &std::path::Path) -> Result<Vec<Vec<u8>>, Error> {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| {
                invalid(format!(
                    "cannot read certificates from {}: {e}",
                    path.display()
                ))
            })?
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("bad certificate in {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(invalid(format!("no certificate in {}", path.display())));
        }
        Ok(certs)
    }

    pub(super) fn read_key(path: &std::path::Path) -> Result<Vec<u8>, Error> {
        let key = PrivateKeyDer::from_pem_file(path).map_err(|e| {
            invalid(format!(
                "cannot read a private key from {}: {e}",
                path.display()
            ))
        })?;
        Ok(key.secret_der().to_vec())
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        // Explicit, not the process default: another crate of the same program may have
        // installed (or compiled in) a different one.
        let mut p = rustls::crypto::ring::default_provider();
        // AES-128-GCM first (ring lists AES-256 first), as browsers do: the session inside
        // is already end-to-end encrypted by Noise, TLS here is for the path (proxies,
        // port 443), and the lighter cipher is the faster one on every CPU with AES
        // instructions.
        p.cipher_suites
            .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        Arc::new(p)
    }

    #[derive(Clone)]
    pub(super) struct Tls {
        client: Arc<rustls::ClientConfig>,
        server: Option<Arc<rustls::ServerConfig>>,
    }

    impl Tls {
        pub(super) fn new(config: &WsConfig) -> Result<Tls, Error> {
            let mut roots = rustls::RootCertStore::empty();
            if config.webpki_roots {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            for der in &config.extra_roots {
                roots
                    .add(CertificateDer::from(der.clone()))
                    .map_err(|e| invalid(format!("bad root certificate: {e}")))?;
            }
            let mut client = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::new(ErrorCode::Internal, format!("TLS setup: {e}")))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            // Every connection is a full handshake: no tickets or session ids kept, so
            // reconnects cannot be linked by a resumption token (seed 003).
            client.resumption = rustls::client::Resumption::disabled();
            client.alpn_protocols = vec![b"http/1.1".to_vec()];
            let server = match &config.identity {
                None => None,
                Some((chain, key)) => {
                    let chain: Vec<CertificateDer<'static>> = chain
                        .iter()
                        .map(|c| CertificateDer::from(c.clone()))
                        .collect();
                    let key = PrivateKeyDer::try_from(key.clone())
                        .map_err(|e| invalid(format!("bad private key: {e}")))?;
                    let mut server = rustls::ServerConfig::builder_with_provider(provider())
                        .with_safe_default_protocol_versions()
                        .map_err(|e| Error::new(ErrorCode::Internal, format!("TLS setup: {e}")))?
                        .with_no_client_auth()
                        .with_single_cert(chain, key)
                        .map_err(|e| invalid(format!("TLS certificate and key: {e}")))?;
                    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
                    server.send_tls13_tickets = 0;
                    server.alpn_protocols = vec![b"http/1.1".to_vec()];
                    Some(Arc::new(server))
                }
            };
            Ok(Tls {
                client: Arc::new(client),
                server,
            })
        }

        pub(super) fn acceptor(&self, locator: &Locator) -> Result<TlsAcceptor, Error> {
            match &self.server {
                Some(s) => Ok(TlsAcceptor::from(s.clone())),
                None => Err(invalid(format!(
                    "cannot listen on {locator}: a wss listener needs a certificate and key \
                     (WsConfig::with_tls_identity_pem_files; snap2p listen --tls-cert --tls-key)"
                ))),
            }
        }

        /// The TLS handshake of a dial, checking the certificate against the locator's
        /// host (a DNS name or an IP address).
        pub(super) async fn connect(
            &self,
            tcp: TcpStream,
            locator: &Locator,
        ) -> Result<TlsStream<BufReader<TcpStream>>, Error> {
            let name: ServerName<'static> = match locator.host() {
                Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
                Host::Name(n) => ServerName::try_from(n.clone())
                    .map_err(|e| invalid(format!("{n} is not a TLS server name: {e}")))?,
            };
            TlsConnector::from(self.client.clone())
                .connect(name, BufReader::with_capacity(READ_BUFFER, tcp))
                .await
                .map_err(|e| {
                    Error::new(
                        ErrorCode::HandshakeFailed,
                        format!("TLS handshake with {locator} failed: {e}"),
                    )
                })
        }
    }
    #[cfg(test)]
    mod tests {
        use super::*;
        use rustls::HandshakeKind;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpListener;

        /// A CA (DER) and a leaf for `localhost` with its key (DER).
        fn pki() -> (Vec<u8>, Vec<Vec<u8>>, Vec<u8>) {
            let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let ca = ca.self_signed(&ca_key).unwrap();
            let key = rcgen::KeyPair::generate().unwrap();
            let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
                .unwrap()
                .signed_by(&key, &ca, &ca_key)
                .unwrap();
            (
                ca.der().to_vec(),
                vec![leaf.der().to_vec()],
                key.serialize_der(),
            )
        }

        /// Two connections from one client configuration to one server configuration:
        /// each one's handshake kind, after a byte each way (TLS 1.3 tickets arrive after
        /// the handshake; the client has read them by then).
        async fn two_handshakes(
            client: Arc<rustls::ClientConfig>,
            server: Arc<rustls::ServerConfig>,
        ) -> Vec<Option<HandshakeKind>> {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let acceptor = TlsAcceptor::from(server);
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        if let Ok(mut s) = acceptor.accept(tcp).await {
                            let mut b = [0u8; 1];
                            let _ = s.read_exact(&mut b).await;
                            let _ = s.write_all(b"x").await;
                            let _ = s.shutdown().await;
                        }
                    });
                }
            });
            let mut kinds = Vec::new();
            for _ in 0..2 {
                let tcp = TcpStream::connect(addr).await.unwrap();
                let name = ServerName::try_from("localhost").unwrap();
                let mut tls = TlsConnector::from(client.clone())
                    .connect(name, tcp)
                    .await
                    .unwrap();
                tls.write_all(b"y").await.unwrap();
                let mut b = [0u8; 1];
                tls.read_exact(&mut b).await.unwrap();
                kinds.push(tls.get_ref().1.handshake_kind());
            }
            kinds
        }

        #[tokio::test]
        async fn reconnects_are_full_handshakes_never_resumed() {
            let (ca, chain, key) = pki();
            // Control: rustls' defaults (client session cache, server tickets) do resume,
            // so the check below can see a resumption when there is one.
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(ca.clone())).unwrap();
            let client = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let server = rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    chain
                        .iter()
                        .map(|c| CertificateDer::from(c.clone()))
                        .collect(),
                    PrivateKeyDer::try_from(key.clone()).unwrap(),
                )
                .unwrap();
            let kinds = two_handshakes(Arc::new(client), Arc::new(server)).await;
            assert_eq!(
                kinds,
                vec![Some(HandshakeKind::Full), Some(HandshakeKind::Resumed)]
            );

            // The transport's configurations: a full handshake every time.
            let cfg = WsConfig::default()
                .without_webpki_roots()
                .with_root_der(ca)
                .with_tls_identity_der(chain, key);
            let tls = Tls::new(&cfg).unwrap();
            let server = tls.server.clone().unwrap();
            let kinds = two_handshakes(tls.client.clone(), server).await;
            assert_eq!(kinds, vec![Some(HandshakeKind::Full); 2]);
        }
    }
}
