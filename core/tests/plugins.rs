//! The two plug-in seams of the peer, used from outside the crate as an application would:
//! protocol handlers by stream label (and dial-by-principal discovery), and transports by
//! locator scheme.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use snap2p::locator::Scheme;
use snap2p::transport::{BoxFuture, Connected, Incoming, Io, Listener, Transport};
use snap2p::{
    Connection, DialOptions, Discovery, Error, ErrorCode, Locator, Peer, PeerConfig, PeerHandle,
    Principal, ProtocolHandler, Stream,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(30);

/// Upper-cases what it reads; refuses input containing `!` with ERR_INVALID_ARGUMENT.
struct Upper {
    sessions: AtomicUsize,
    me: Mutex<Option<Principal>>,
}

#[async_trait::async_trait]
impl ProtocolHandler for Upper {
    async fn accept(
        &self,
        peer: PeerHandle,
        conn: Connection,
        stream: Stream,
    ) -> Result<(), Error> {
        *self.me.lock().unwrap() = peer.principal();
        assert!(peer
            .connections()
            .iter()
            .any(|c| c.remote_principal() == conn.remote_principal()));
        let input = stream.read_all(1 << 16).await?;
        if input.contains(&b'!') {
            return Err(Error::new(ErrorCode::InvalidArgument, "no shouting"));
        }
        stream.write_all(&input.to_ascii_uppercase()).await?;
        stream.finish()
    }

    fn on_session(&self, _peer: &PeerHandle, _conn: &Connection) {
        self.sessions.fetch_add(1, Ordering::SeqCst);
    }
}

async fn ask(conn: &Connection, label: &str, msg: &[u8]) -> Result<Vec<u8>, Error> {
    let s = conn.open_stream(Some(label)).await?;
    s.write_all(msg).await?;
    s.finish()?;
    s.read_all(1 << 20).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_serves_its_label_and_the_app_keeps_the_rest() {
    timeout(T, async {
        let upper = Arc::new(Upper {
            sessions: AtomicUsize::new(0),
            me: Mutex::new(None),
        });
        let server = Peer::builder(PeerConfig::default())
            .protocol("upper", upper.clone())
            .build()
            .await
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::ephemeral(PeerConfig::default()).await.unwrap();
        let conn = client.dial(&addr.to_string()).await.unwrap();
        let accepted = server.accept().await.unwrap();

        assert_eq!(ask(&conn, "upper", b"hello").await.unwrap(), b"HELLO");
        assert_eq!(upper.me.lock().unwrap().as_ref(), Some(server.principal()));
        assert_eq!(upper.sessions.load(Ordering::SeqCst), 1);

        // The handler's error resets the stream with its code.
        let err = ask(&conn, "upper", b"hello!").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument, "{err}");

        // Other labels, and no label, reach the application as before.
        for label in [Some("echo"), None] {
            let s = conn.open_stream(label).await.unwrap();
            s.write_all(b"x").await.unwrap();
            s.finish().unwrap();
            let got = accepted.accept_stream().await.unwrap();
            assert_eq!(got.label(), label);
            assert_eq!(got.read_all(16).await.unwrap(), b"x");
        }
        // PX-1 is itself a handler: its streams never reach the application.
        let px = snap2p::px1::resolve(&conn, server.principal(), None)
            .await
            .unwrap();
        assert!(!px.is_empty(), "a Public peer answers about itself");
    })
    .await
    .unwrap();
}

/// A directory of principals, as a discovery module an application might plug in.
struct Directory(Mutex<HashMap<Principal, Locator>>);

#[async_trait::async_trait]
impl Discovery for Directory {
    fn name(&self) -> &str {
        "directory"
    }

    async fn dial_principal(
        &self,
        peer: &PeerHandle,
        principal: &Principal,
        mut opts: DialOptions,
    ) -> Result<Connection, Error> {
        let loc = self.0.lock().unwrap().get(principal).cloned();
        let loc = loc.ok_or_else(|| Error::new(ErrorCode::NotFound, "not in the directory"))?;
        opts.expect = Some(principal.clone());
        peer.dial_locator(&loc, opts).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_module_dials_by_principal() {
    timeout(T, async {
        let server = Peer::ephemeral(PeerConfig::default()).await.unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let unknown = Peer::ephemeral(PeerConfig::default()).await.unwrap();
        let dir = Arc::new(Directory(Mutex::new(HashMap::new())));
        dir.0
            .lock()
            .unwrap()
            .insert(server.principal().clone(), Locator::tcp(addr));
        let client = Peer::builder(PeerConfig::default().with_px1(false))
            .discovery(dir)
            .build()
            .await
            .unwrap();
        let conn = client.dial(&server.principal().to_string()).await.unwrap();
        assert_eq!(conn.remote_principal(), server.principal());
        let err = client
            .dial(&unknown.principal().to_string())
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound, "{err}");
    })
    .await
    .unwrap();
}

/// An in-memory transport (`mem://`): a listener per port, tokio duplex pipes as streams.
#[derive(Default, Clone)]
struct Mem {
    ports: Arc<Mutex<HashMap<u16, mpsc::UnboundedSender<tokio::io::DuplexStream>>>>,
}

fn mem_scheme() -> Scheme {
    "mem://127.0.0.1:1"
        .parse::<Locator>()
        .unwrap()
        .scheme()
        .clone()
}

struct MemTransport {
    mem: Mem,
    schemes: Vec<Scheme>,
}

impl Transport for MemTransport {
    fn schemes(&self) -> &[Scheme] {
        &self.schemes
    }

    fn dial(&self, locator: &Locator) -> BoxFuture<Result<Connected, Error>> {
        let tx = self.mem.ports.lock().unwrap().get(&locator.port()).cloned();
        Box::pin(async move {
            let tx = tx.ok_or_else(|| Error::new(ErrorCode::ConnectionClosed, "nobody there"))?;
            let (a, b) = tokio::io::duplex(64 * 1024);
            tx.send(b)
                .map_err(|_| Error::new(ErrorCode::ConnectionClosed, "listener gone"))?;
            Ok(Connected {
                io: Box::new(a),
                remote: None,
                local: None,
            })
        })
    }

    fn listen(&self, locator: &Locator) -> BoxFuture<Result<Box<dyn Listener>, Error>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.mem.ports.lock().unwrap().insert(locator.port(), tx);
        let local = locator.clone();
        Box::pin(async move { Ok(Box::new(MemListener { rx, local }) as Box<dyn Listener>) })
    }
}

struct MemListener {
    rx: mpsc::UnboundedReceiver<tokio::io::DuplexStream>,
    local: Locator,
}

impl Listener for MemListener {
    fn local_locator(&self) -> Locator {
        self.local.clone()
    }

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, Error>> {
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Pending,
            Poll::Ready(Some(pipe)) => {
                let io: Box<dyn Io> = Box::new(pipe);
                let remote: SocketAddr = "127.0.0.7:1".parse().unwrap();
                Poll::Ready(Ok(Incoming {
                    remote,
                    local: None,
                    upgrade: Box::pin(std::future::ready(Ok(io))),
                    transport: None, // reported as the listener's scheme
                }))
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_carries_the_whole_session() {
    timeout(T, async {
        let mem = Mem::default();
        let transport = || {
            Arc::new(MemTransport {
                mem: mem.clone(),
                schemes: vec![mem_scheme()],
            })
        };
        let server = Peer::builder(PeerConfig::default())
            .transport(transport())
            .build()
            .await
            .unwrap();
        server.listen("mem://127.0.0.1:7").await.unwrap();
        assert_eq!(
            server
                .listen_locators()
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>(),
            vec!["mem://127.0.0.1:7"]
        );
        let s2 = server.clone();
        tokio::spawn(async move {
            while let Some(conn) = s2.accept().await {
                tokio::spawn(async move {
                    while let Ok(s) = conn.accept_stream().await {
                        let msg = s.read_all(1 << 20).await.unwrap();
                        s.write_all(&msg).await.unwrap();
                        s.finish().unwrap();
                    }
                });
            }
        });
        let client = Peer::builder(PeerConfig::default())
            .transport(transport())
            .build()
            .await
            .unwrap();
        let conn = client.dial("mem://127.0.0.1:7").await.unwrap();
        assert_eq!(conn.remote_principal(), server.principal());
        let payload: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        assert_eq!(ask(&conn, "echo", &payload).await.unwrap(), payload);

        // A peer without the transport says so, and which ones it has.
        let plain = Peer::ephemeral(PeerConfig::default()).await.unwrap();
        let err = plain.dial("mem://127.0.0.1:7").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument, "{err}");
        assert!(
            err.message.contains("'mem'") && err.message.contains("tcp"),
            "{err}"
        );
        let err = plain.listen("quic://127.0.0.1:0").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument, "{err}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_locators_with_a_scheme_dial_and_listen() {
    timeout(T, async {
        let server = Peer::ephemeral(PeerConfig::default()).await.unwrap();
        let addr = server.listen("tcp://127.0.0.1:0").await.unwrap();
        assert_eq!(server.listen_locators(), vec![Locator::tcp(addr)]);
        let client = Peer::ephemeral(PeerConfig::default()).await.unwrap();
        let conn = client.dial(&format!("tcp://{addr}")).await.unwrap();
        assert_eq!(conn.remote_principal(), server.principal());
    })
    .await
    .unwrap();
}
