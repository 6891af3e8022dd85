//! The WebSocket transport over loopback: `ws://` and `wss://` sessions end to end (mutual
//! auth, streams checked by SHA-256), TCP and WS listeners on one peer, PX-1 carrying ws
//! locators, stealth silence behind the HTTP upgrade, and hostile clients (text and
//! oversized messages, garbage instead of an upgrade, a stalled upgrade, a wrong path, a
//! wrong TLS host name).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{peer, send_and_check, serve_digest};
use futures_util::{SinkExt, StreamExt};
use snap2p::locator::Scheme;
use snap2p::transport::ws::MAX_MESSAGE;
use snap2p::transport::{Io, Listener, Transport, WsConfig, WsTransport};
use snap2p::{DialOptions, Error, ErrorCode, Locator, PeerConfig, Visibility};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(60);

/// Opens `n` streams at once, sends `bytes` on each and checks the digests.
async fn streams_intact(conn: &snap2p::Connection, n: u32, bytes: u64) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let s = conn.open_stream(None).await.unwrap();
        tasks.push(tokio::spawn(async move {
            send_and_check(&s, bytes, 16 * 1024 + 7, 100 + i).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_session_mutual_auth_streams_and_tcp_listener_beside_it() {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let tcp = server.listen("127.0.0.1:0").await.unwrap();
        let ws = server.listen("ws://127.0.0.1:0/snap2p").await.unwrap();
        assert_ne!(tcp, ws);
        serve_digest(&server);
        let locs: Vec<String> = server
            .listen_locators()
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(
            locs,
            vec![tcp.to_string(), format!("ws://{ws}/snap2p")],
            "listen_locators reports each transport's locator"
        );

        let client = peer(PeerConfig::default()).await;
        let conn = client.dial(&format!("ws://{ws}/snap2p")).await.unwrap();
        // Mutual authentication: each side sees the other's principal.
        assert_eq!(conn.remote_principal(), server.principal());
        assert_eq!(conn.remote_addr(), Some(ws));
        // The listener registers the session once it has processed the dialer's AUTH.
        let listed = || {
            server
                .connections()
                .iter()
                .any(|c| c.remote_principal() == client.principal())
        };
        assert!(common::eventually(Duration::from_secs(5), listed).await);
        let inbound = server
            .connections()
            .into_iter()
            .find(|c| c.remote_principal() == client.principal())
            .expect("the server has the session");
        assert_eq!(inbound.local_addr().map(|a| a.port()), Some(ws.port()));
        // Streams: several at once, then one large enough to need many messages.
        streams_intact(&conn, 8, 256 * 1024).await;
        let s = conn.open_stream(None).await.unwrap();
        send_and_check(&s, 16 << 20, 256 * 1024, 7).await.unwrap();
        // The TCP listener of the same peer still serves.
        let conn2 = client.dial(&tcp.to_string()).await.unwrap();
        assert_eq!(conn2.remote_principal(), server.principal());
        streams_intact(&conn2, 2, 64 * 1024).await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_schemes_are_skipped_and_px1_carries_ws_locators() {
    timeout(T, async {
        let target = peer(PeerConfig::default()).await;
        target.listen("127.0.0.1:0").await.unwrap();
        let ws = target.listen("ws://0.0.0.0:0/p2p").await.unwrap();
        serve_digest(&target);

        // A locator of a transport nobody has fails alone, with the transports named.
        let client = peer(PeerConfig::default()).await;
        let e = client.dial("quic://127.0.0.1:4433").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");
        assert!(e.message.contains("ws") && e.message.contains("tcp"), "{e}");

        // PX-1: the target answers with both its locators; the wildcard listener is named
        // by the address the asker reached it on.
        let conn = client
            .dial(&format!("ws://127.0.0.1:{}/p2p", ws.port()))
            .await
            .unwrap();
        let answer = snap2p::px1::resolve(&conn, target.principal(), None)
            .await
            .unwrap();
        let want_ws: Locator = format!("ws://127.0.0.1:{}/p2p", ws.port()).parse().unwrap();
        assert!(answer.contains(&want_ws), "{answer:?}");
        assert!(
            answer.iter().any(|l| *l.scheme() == Scheme::Tcp),
            "{answer:?}"
        );
        conn.close(ErrorCode::Ok, "done");

        // A dialer handed several hints skips what it cannot dial and takes the ws one.
        let dialer = peer(PeerConfig::default()).await;
        let hints: Vec<Locator> = vec![
            "quic://127.0.0.1:4433".parse().unwrap(),
            "foo+bar://127.0.0.1:1/x".parse().unwrap(),
            want_ws.clone(),
        ];
        dialer
            .px1()
            .expect("PX-1 on")
            .add_hint(target.principal(), &hints, 600);
        let conn = dialer.dial(&target.principal().to_string()).await.unwrap();
        assert_eq!(conn.remote_principal(), target.principal());
        assert_eq!(conn.remote_addr().map(|a| a.port()), Some(ws.port()));
        streams_intact(&conn, 1, 10_000).await;
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// wss

#[cfg(feature = "wss")]
mod wss {
    use super::*;
    use snap2p::Peer;
    use std::sync::Arc;

    fn ws_locator(p: &Peer, scheme: Scheme) -> Locator {
        p.listen_locators()
            .into_iter()
            .find(|l| *l.scheme() == scheme)
            .expect("a listener of that scheme")
    }

    struct Pki {
        ca_der: Vec<u8>,
        ca_pem: String,
        /// Leaf for `names`, signed by the CA.
        chain: Vec<Vec<u8>>,
        chain_pem: String,
        key_der: Vec<u8>,
        key_pem: String,
    }

    fn pki(names: &[&str]) -> Pki {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "snap2p test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        Pki {
            ca_der: ca.der().to_vec(),
            ca_pem: ca.pem(),
            chain: vec![leaf.der().to_vec()],
            chain_pem: leaf.pem(),
            key_der: leaf_key.serialize_der(),
            key_pem: leaf_key.serialize_pem(),
        }
    }

    /// A peer whose WebSocket transport presents `pki`'s leaf on `wss://` listeners.
    async fn wss_server(pki: &Pki, cfg: PeerConfig) -> Peer {
        let ws = WsTransport::new(
            WsConfig::default().with_tls_identity_der(pki.chain.clone(), pki.key_der.clone()),
        )
        .unwrap();
        Peer::builder(cfg)
            .transport(Arc::new(ws))
            .build()
            .await
            .unwrap()
    }

    /// A peer that trusts `pki`'s CA (besides Mozilla's roots).
    async fn wss_client(pki: &Pki) -> Peer {
        let ws = WsTransport::new(WsConfig::default().with_root_der(pki.ca_der.clone())).unwrap();
        Peer::builder(PeerConfig::default())
            .transport(Arc::new(ws))
            .build()
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wss_session_with_a_custom_root_by_name_and_by_ip() {
        timeout(T, async {
            let pki = pki(&["localhost", "127.0.0.1"]);
            // The listener reads its certificate and key from PEM files, as the CLI does.
            let dir = tempfile::tempdir().unwrap();
            let (cert, key, root) = (
                dir.path().join("cert.pem"),
                dir.path().join("key.pem"),
                dir.path().join("root.pem"),
            );
            std::fs::write(&cert, &pki.chain_pem).unwrap();
            std::fs::write(&key, &pki.key_pem).unwrap();
            std::fs::write(&root, &pki.ca_pem).unwrap();
            let ws = WsTransport::new(
                WsConfig::default()
                    .with_tls_identity_pem_files(&cert, &key)
                    .unwrap(),
            )
            .unwrap();
            let server = Peer::builder(PeerConfig::default())
                .transport(Arc::new(ws))
                .build()
                .await
                .unwrap();
            let addr = server.listen("wss://127.0.0.1:0/s").await.unwrap();
            assert_eq!(
                ws_locator(&server, Scheme::Wss).to_string(),
                format!("wss://{addr}/s")
            );
            serve_digest(&server);

            let client_ws = WsTransport::new(
                WsConfig::default()
                    .with_root_pem_file(&root)
                    .unwrap()
                    .without_webpki_roots(),
            )
            .unwrap();
            let client = Peer::builder(PeerConfig::default())
                .transport(Arc::new(client_ws))
                .build()
                .await
                .unwrap();
            for target in [
                format!("wss://localhost:{}/s", addr.port()),
                format!("wss://127.0.0.1:{}/s", addr.port()),
            ] {
                let conn = client.dial(&target).await.unwrap();
                assert_eq!(conn.remote_principal(), server.principal(), "{target}");
                streams_intact(&conn, 4, 200_000).await;
                let s = conn.open_stream(None).await.unwrap();
                send_and_check(&s, 4 << 20, 100_000, 9).await.unwrap();
                conn.close(ErrorCode::Ok, "next");
            }
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wss_refuses_a_wrong_host_name_and_an_unknown_root() {
        timeout(T, async {
            let pki = pki(&["snap2p.test"]);
            let server = wss_server(&pki, PeerConfig::default()).await;
            let addr = server.listen("wss://127.0.0.1:0").await.unwrap();
            serve_digest(&server);

            // The certificate names snap2p.test, the dialer asked for 127.0.0.1 / localhost.
            let client = wss_client(&pki).await;
            for target in [
                format!("wss://127.0.0.1:{}", addr.port()),
                format!("wss://localhost:{}", addr.port()),
            ] {
                let e = client.dial(&target).await.unwrap_err();
                assert_eq!(e.code, ErrorCode::HandshakeFailed, "{target}: {e}");
                assert!(e.message.contains("TLS"), "{e}");
                assert!(e.message.contains("not valid for name"), "{e}");
            }

            // The default transport trusts Mozilla's roots only: the test CA is unknown.
            let stranger = peer(PeerConfig::default()).await;
            let e = stranger
                .dial(&format!("wss://127.0.0.1:{}", addr.port()))
                .await
                .unwrap_err();
            assert_eq!(e.code, ErrorCode::HandshakeFailed, "{e}");
            assert!(e.message.contains("UnknownIssuer"), "{e}");
            eprintln!("unknown root: {e}");

            // A wss listener without a certificate is refused at listen time.
            let e = stranger.listen("wss://127.0.0.1:0").await.unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");

            // Nothing of the failed dials reached the session layer.
            assert!(server.connections().is_empty());
        })
        .await
        .unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Stealth

/// Sends a WebSocket upgrade request for `path` over raw TCP and returns the socket and
/// the response head (through the blank line).
async fn raw_upgrade(addr: SocketAddr, path: &str) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tcp.read(&mut b).await.unwrap();
        assert_eq!(n, 1, "closed before the end of the response head: {head:?}");
        head.push(b[0]);
    }
    (tcp, String::from_utf8(head).unwrap())
}

/// Reads until EOF (or `limit`), returning what arrived and how long it took.
async fn drain(tcp: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration, bool) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match timeout(limit.saturating_sub(start.elapsed()), tcp.read(&mut buf)).await {
            Err(_) => return (got, start.elapsed(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, start.elapsed(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A masked client frame (RFC 6455 §5.2) with a zero mask: opcode, payload.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Splits what a server sent after the upgrade into its binary payload (concatenated) and
/// the close codes it sent; panics on any other frame.
fn server_frames(mut b: &[u8]) -> (Vec<u8>, Vec<u16>) {
    let (mut data, mut closes) = (Vec::new(), Vec::new());
    while !b.is_empty() {
        assert!(b.len() >= 2, "truncated frame {b:?}");
        let (op, len7) = (b[0] & 0x0f, (b[1] & 0x7f) as usize);
        assert_eq!(b[1] & 0x80, 0, "a server frame is not masked");
        let (len, head) = match len7 {
            126 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n, 2),
        };
        let payload = &b[head..head + len];
        match op {
            0x2 => data.extend_from_slice(payload),
            0x8 => closes.push(u16::from_be_bytes([payload[0], payload[1]])),
            other => panic!("unexpected frame opcode {other:#x}"),
        }
        b = &b[head + len..];
    }
    (data, closes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stealth_ws_listener_answers_the_upgrade_then_what_tcp_would() {
    timeout(T, async {
        let stealth = peer({
            let mut c = PeerConfig::default();
            c.visibility = Visibility::Stealth;
            c.allowlist_gate = Some(false);
            // Every case below is a failed handshake from 127.0.0.1: keep the source's
            // budget out of the comparison, and silence short.
            c.preauth_rate_per_min = Some(10_000);
            c.limits.handshake_timeout = Duration::from_secs(4);
            c
        })
        .await;
        let tcp_addr = stealth.listen("127.0.0.1:0").await.unwrap();
        let addr = stealth.listen("ws://127.0.0.1:0/hidden").await.unwrap();
        serve_digest(&stealth);
        let limit = Duration::from_secs(15);

        // A scanner gets the 101 (with the RFC 6455 accept for the sample key), then
        // exactly what the same bytes get over TCP (PROTOCOL.md §5.2): nothing for bytes
        // that are not snap2p frames or a frame that is neither a KNOCK nor a Noise message
        // 1, AUTH_FAIL{18} for a Noise message 1 without a KNOCK, and
        // nothing for silence; the WebSocket layer adds no frame of its own before the
        // session speaks.
        let mut noise1 = vec![32u8];
        noise1.extend_from_slice(&[0x5a; 32]);
        let mut oversized = vec![0xff, 0xff, 0xff, 0x0f];
        oversized.extend_from_slice(&[0x11; 40]);
        let cases: [(&str, Vec<u8>); 4] = [
            ("not snap2p (a frame over the pre-auth limit)", oversized),
            (
                "an HTTP request inside the WebSocket",
                b"GET / HTTP/1.1\r\n\r\n".repeat(8),
            ),
            ("a Noise message 1 without a KNOCK", noise1),
            ("silence", Vec::new()),
        ];
        for (what, junk) in cases {
            let mut tcp = TcpStream::connect(tcp_addr).await.unwrap();
            tcp.write_all(&junk).await.unwrap();
            let (over_tcp, _, closed) = drain(&mut tcp, limit).await;
            assert!(closed, "{what}: TCP left open");

            let (mut ws, head) = raw_upgrade(addr, "/hidden").await;
            assert!(
                head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
                "{head}"
            );
            assert!(
                head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
                "{head}"
            );
            if !junk.is_empty() {
                ws.write_all(&client_frame(0x2, &junk)).await.unwrap();
            }
            let (raw, _, closed) = drain(&mut ws, limit).await;
            assert!(closed, "{what}: WS left open");
            let (data, closes) = server_frames(&raw);
            eprintln!("stealth, {what}: TCP answer {over_tcp:02x?}; WS frames {raw:02x?}");
            assert_eq!(data, over_tcp, "{what}: WS and TCP answers differ");
            if over_tcp.is_empty() {
                assert!(
                    raw.is_empty(),
                    "{what}: a WS frame from a silent session {raw:?}"
                );
            } else {
                assert_eq!(closes, vec![1000], "{what}");
            }
        }

        // WebSocket-only junk before the session spoke: a ping (a pong would be an
        // answer), a text message. Closed without a byte.
        for junk in [client_frame(0x9, b"ping?"), client_frame(0x1, b"hello")] {
            let (mut ws, _) = raw_upgrade(addr, "/hidden").await;
            ws.write_all(&junk).await.unwrap();
            let (raw, took, closed) = drain(&mut ws, limit).await;
            assert!(closed && raw.is_empty(), "{raw:?} after {took:?}");
            assert!(took < Duration::from_secs(1), "{took:?}");
        }

        // A snap2p dialer without an invite gets no session; with one it does.
        let alice = peer(PeerConfig::default()).await;
        let target = format!("ws://{addr}/hidden");
        let e = alice.dial(&target).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InviteRequired, "{e}");
        let invite = stealth.create_invite(Some(600), false).unwrap();
        let conn = alice
            .dial_with(&target, DialOptions::default().invite(invite.token.clone()))
            .await
            .unwrap();
        assert_eq!(conn.remote_principal(), stealth.principal());
        streams_intact(&conn, 2, 100_000).await;
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Hostile clients, at the transport (error codes) and against a peer (closed in time)

/// A bare WebSocket listener (no peer) and its locator.
async fn bare_listener(cfg: WsConfig) -> (Box<dyn Listener>, Locator) {
    let t = WsTransport::new(cfg).unwrap();
    let l = t
        .listen(&Locator::parse_listen("ws://127.0.0.1:0/x").unwrap())
        .await
        .unwrap();
    let loc = l.local_locator();
    (l, loc)
}

async fn accept_upgrade(l: &mut Box<dyn Listener>) -> Result<Box<dyn Io>, Error> {
    let inc = std::future::poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
    inc.upgrade.await
}

async fn upgrade_err(l: &mut Box<dyn Listener>) -> Error {
    match accept_upgrade(l).await {
        Ok(_) => panic!("the upgrade succeeded"),
        Err(e) => e,
    }
}

fn big_client() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_oversized_messages_get_a_close_frame_and_an_error_code() {
    timeout(T, async {
        let (mut l, loc) = bare_listener(WsConfig::default()).await;
        let url = loc.to_string();
        for (msg, code, close) in [
            (
                Message::Text("hi".into()),
                ErrorCode::InvalidMessage,
                CloseCode::Unsupported,
            ),
            (
                Message::Binary(vec![7u8; MAX_MESSAGE + 1].into()),
                ErrorCode::MessageTooLarge,
                CloseCode::Size,
            ),
        ] {
            let client = tokio::spawn({
                let url = url.clone();
                async move {
                    let tcp =
                        TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches("/x"))
                            .await
                            .unwrap();
                    let (mut ws, _) =
                        tokio_tungstenite::client_async_with_config(url, tcp, Some(big_client()))
                            .await
                            .unwrap();
                    // The server speaks first here (as a listener's session does after
                    // the dialer's first message): then violations get a close frame.
                    let first = ws.next().await.unwrap().unwrap();
                    assert_eq!(first, Message::Binary(b"hello".to_vec().into()));
                    ws.send(msg).await.unwrap();
                    let mut closes = Vec::new();
                    while let Some(Ok(m)) = ws.next().await {
                        if let Message::Close(Some(f)) = m {
                            closes.push((f.code, f.reason.to_string()));
                        }
                    }
                    closes
                }
            });
            let mut io = accept_upgrade(&mut l).await.unwrap();
            io.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 16];
            let e = Error::from(io.read(&mut buf).await.unwrap_err());
            assert_eq!(e.code, code, "{e}");
            io.shutdown().await.unwrap();
            drop(io);
            let closes = client.await.unwrap();
            assert_eq!(closes.len(), 1, "{closes:?}");
            assert_eq!(closes[0].0, close, "{closes:?}");
            assert!(!closes[0].1.is_empty(), "the close frame says why");
        }

        // A message of exactly the cap passes, and is read out whole.
        let client = tokio::spawn({
            let url = url.clone();
            async move {
                let tcp =
                    TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches("/x"))
                        .await
                        .unwrap();
                let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
                ws.send(Message::Binary(vec![3u8; MAX_MESSAGE].into()))
                    .await
                    .unwrap();
                ws.close(None).await.unwrap();
                while ws.next().await.is_some() {}
            }
        });
        let mut io = accept_upgrade(&mut l).await.unwrap();
        let mut all = Vec::new();
        io.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, vec![3u8; MAX_MESSAGE]);
        drop(io);
        client.await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_upgrades_fail_with_codes_and_close() {
    timeout(T, async {
        let (mut l, loc) =
            bare_listener(WsConfig::default().with_upgrade_timeout(Duration::from_millis(800)))
                .await;
        let addr = loc.socket_addr().unwrap();

        // Garbage instead of an HTTP request: closed without a byte.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"\x16\x03\x01\x02\x00 not http\r\n\r\n")
            .await
            .unwrap();
        let e = upgrade_err(&mut l).await;
        assert_eq!(e.code, ErrorCode::InvalidMessage, "{e}");
        let (got, _, closed) = drain(&mut tcp, Duration::from_secs(5)).await;
        assert!(got.is_empty() && closed, "{got:?}");

        // A plain HTTP GET, no upgrade: also closed without a byte.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let e = upgrade_err(&mut l).await;
        assert_eq!(e.code, ErrorCode::InvalidMessage, "{e}");
        let (got, _, closed) = drain(&mut tcp, Duration::from_secs(5)).await;
        assert!(got.is_empty() && closed, "{got:?}");

        // Another path: 404, then closed.
        let accept = tokio::spawn(async move {
            let r = accept_upgrade(&mut l).await.map(|_| ());
            (l, r)
        });
        let (mut tcp, head) = raw_upgrade(addr, "/other").await;
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
        let (got, _, closed) = drain(&mut tcp, Duration::from_secs(5)).await;
        assert!(got.is_empty() && closed, "{got:?}");
        let (mut l, r) = accept.await.unwrap();
        assert_eq!(r.unwrap_err().code, ErrorCode::InvalidMessage);

        // A request head that never ends: refused past 64 KiB.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let writer = tokio::spawn(async move {
            let _ = tcp.write_all(b"GET /x HTTP/1.1\r\n").await;
            let line = format!("X-Pad: {}\r\n", "a".repeat(1000));
            for _ in 0..100 {
                if tcp.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let e = upgrade_err(&mut l).await;
        assert_eq!(e.code, ErrorCode::MessageTooLarge, "{e}");
        writer.await.unwrap();

        // A slow upgrade that stalls half way: ERR_TIMEOUT at the upgrade deadline.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        let start = Instant::now();
        let e = upgrade_err(&mut l).await;
        assert_eq!(e.code, ErrorCode::Timeout, "{e}");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(700) && took < Duration::from_secs(3),
            "{took:?}"
        );
        let (got, _, closed) = drain(&mut tcp, Duration::from_secs(5)).await;
        assert!(got.is_empty() && closed, "{got:?}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_against_a_peer_are_closed_within_the_deadline() {
    timeout(T, async {
        let server = peer({
            let mut c = PeerConfig::default();
            c.limits.handshake_timeout = Duration::from_secs(2);
            c
        })
        .await;
        let addr = server.listen("ws://127.0.0.1:0/x").await.unwrap();
        serve_digest(&server);
        let deadline = Duration::from_secs(6);

        // Stalled upgrade.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        let (got, took, closed) = drain(&mut tcp, deadline).await;
        assert!(closed && got.is_empty(), "{got:?} after {took:?}");
        assert!(took >= Duration::from_millis(1500), "{took:?}");

        // Upgraded, then silent: the session's deadline closes it; a public listener says
        // why (AUTH_FAIL{13} in a binary message), then closes the WebSocket (1000).
        let (mut tcp, _) = raw_upgrade(addr, "/x").await;
        let (got, took, closed) = drain(&mut tcp, deadline).await;
        assert!(closed, "left open after {took:?}");
        let (data, closes) = server_frames(&got);
        assert!(!data.is_empty() && closes == vec![1000], "{got:?}");
        let reason = String::from_utf8_lossy(&data);
        assert!(reason.contains("in time"), "{reason}");

        // Text, oversized, garbage frames as the first message: closed at once.
        for junk in [
            client_frame(0x1, b"text"),
            client_frame(0x2, &vec![0u8; MAX_MESSAGE + 1]),
            vec![0xff; 32],
        ] {
            let (mut tcp, _) = raw_upgrade(addr, "/x").await;
            let _ = tcp.write_all(&junk).await;
            let (got, took, closed) = drain(&mut tcp, deadline).await;
            assert!(closed && got.is_empty(), "{got:?} after {took:?}");
            assert!(took < Duration::from_secs(1), "{took:?}");
        }

        // Wrong path: the dialer is told HTTP 404.
        let client = peer(PeerConfig::default()).await;
        let e = client
            .dial(&format!("ws://{addr}/elsewhere"))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ConnectionClosed, "{e}");
        assert!(e.message.contains("404"), "{e}");
        // A ws:// dial of a plain TCP snap2p listener: not a WebSocket server.
        let tcp_only = peer(PeerConfig::default()).await;
        let taddr = tcp_only.listen("127.0.0.1:0").await.unwrap();
        let e = client.dial(&format!("ws://{taddr}")).await.unwrap_err();
        assert!(
            matches!(
                e.code,
                ErrorCode::InvalidMessage | ErrorCode::ConnectionClosed
            ),
            "{e}"
        );

        // After all that, an honest dialer still gets in.
        let conn = client.dial(&format!("ws://{addr}/x")).await.unwrap();
        assert_eq!(conn.remote_principal(), server.principal());
        streams_intact(&conn, 2, 50_000).await;
    })
    .await
    .unwrap();
}
