//! Hostile peers around authentication, over real loopback sockets: garbage after auth
//! (also right behind the last handshake message), a replayed handshake, a relaying man in the middle with its own Noise keys, and
//! protocol versions other than 1 (KNOCK and HELLO).

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use snap2p::identity::NodeKey;
use snap2p::unstable::secure_channel::{NoiseHandshake, NoiseTransport};
use snap2p::unstable::wire::frame;
use snap2p::unstable::wire::message::{caps, Hello, Message, Visibility as WireVis};
use snap2p::{ErrorCode, PeerConfig, Visibility};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_fails_right_after_auth_still_reaches_accept_with_its_code() {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let me = RawIdentity::new().await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut raw = RawSession {
            tcp,
            s: snap2p::unstable::Session::new(me.dialer_config(None), Instant::now()).unwrap(),
            inbuf: BytesMut::new(),
        };
        // Up to our side being established: our AUTH_OK is queued, not sent.
        while !raw.s.is_established() {
            assert!(raw.s.error().is_none(), "{:?}", raw.s.error());
            raw.step(Duration::from_millis(200)).await;
        }
        // AUTH_OK and a forged transport frame in one write: the listener authenticates
        // us and fails the session in the same read, before any task of it has run.
        let mut out = Vec::new();
        raw.s.poll_transmit(Instant::now(), &mut out, 1 << 20);
        out.push(0x20);
        out.extend_from_slice(&[0xAB; 32]);
        raw.tcp.write_all(&out).await.unwrap();
        let conn = timeout(Duration::from_secs(5), server.accept())
            .await
            .expect("an authenticated session that failed at once never reached accept()")
            .expect("the peer is open");
        assert_eq!(conn.remote_principal(), &me.wallet.principal());
        let e = timeout(Duration::from_secs(5), conn.closed())
            .await
            .unwrap();
        assert_eq!(e.code, ErrorCode::InvalidMessage, "{e}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_auth_closes_only_that_session() {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        serve_digest(&server);
        let good = peer(PeerConfig::default())
            .await
            .dial(&addr.to_string())
            .await
            .unwrap();
        let me = RawIdentity::new().await;
        let mut rounds = 0;
        // Several kinds of garbage, each from a freshly authenticated raw client.
        let garbage: Vec<Vec<u8>> = vec![
            vec![0x05, 1, 2, 3, 4, 5],                    // a short frame: fails AEAD
            vec![0xff, 0xff, 0xff, 0x7f],                 // 256 MiB prefix
            vec![0x80, 0x80, 0x80, 0x80, 0x01],           // 5-byte varint
            (0..300u32).map(|i| (i * 7) as u8).collect(), // random-looking bytes
            vec![0x00],                                   // empty frame
        ];
        for g in garbage {
            let mut raw = RawSession::dial(addr, me.dialer_config(None))
                .await
                .unwrap();
            assert!(raw.s.is_established());
            assert!(
                eventually(Duration::from_secs(5), || server.connections().len() == 2).await,
                "server must see the raw client as authenticated"
            );
            raw.tcp.write_all(&g).await.unwrap();
            let started = Instant::now();
            let closed = wait_closed(&mut raw.tcp, Duration::from_secs(5)).await;
            assert!(
                closed.is_some(),
                "garbage {g:02x?} did not close the session"
            );
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "closing took {:?}",
                started.elapsed()
            );
            assert!(
                eventually(Duration::from_secs(5), || server.connections().len() == 1).await,
                "the server kept the broken session"
            );
            // The other session is untouched and carries data intact.
            let s = good.open_stream(None).await.unwrap();
            send_and_check(&s, 50_000, 1000, rounds).await.unwrap();
            rounds += 1;
        }
        assert_eq!(rounds, 5);
    })
    .await
    .unwrap();
}

/// A recording TCP proxy: forwards one connection for as long as it lives and hands over
/// the client's bytes of the first 2 s (the handshake and a little data), in the flights
/// they were read.
async fn recording_proxy(
    target: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Receiver<Vec<Vec<u8>>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let addr = one_shot_proxy(target, move |mut ir, mut ow| async move {
        let mut flights = Vec::new();
        let mut buf = vec![0u8; 65536];
        let started = Instant::now();
        // Record the handshake and the first few flights (about 2 s).
        while started.elapsed() < Duration::from_secs(2) {
            match timeout(Duration::from_millis(200), ir.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    flights.push(buf[..n].to_vec());
                    if ow.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                Err(_) => {}
            }
        }
        let _ = tx.send(flights);
        // Keep relaying: the original session stays up (it is the one legitimate session
        // the listener must still hold at the end of the test).
        while let Ok(n) = ir.read(&mut buf).await {
            if n == 0 || ow.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    })
    .await;
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_handshake_never_authenticates() {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let acc = accepted.clone();
        let s2 = server.clone();
        tokio::spawn(async move {
            while let Some(c) = s2.accept().await {
                acc.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(serve_conn(c));
            }
        });
        let (proxy, recorded) = recording_proxy(addr).await;
        let client = peer(PeerConfig::default()).await;
        let conn = client.dial(&proxy.to_string()).await.unwrap();
        let s = conn.open_stream(None).await.unwrap();
        send_and_check(&s, 10_000, 1000, 1).await.unwrap();
        let flights = recorded.await.unwrap();
        assert!(flights.len() >= 2, "recorded {} flights", flights.len());
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Replay: all at once, then flight by flight with pauses (as the real client did).
        for paced in [false, true] {
            let mut raw = TcpStream::connect(addr).await.unwrap();
            if paced {
                for f in &flights {
                    if raw.write_all(f).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            } else {
                let all: Vec<u8> = flights.concat();
                let _ = raw.write_all(&all).await;
            }
            let got = wait_closed(&mut raw, Duration::from_secs(5)).await;
            let got = got.expect("the listener must close a replayed handshake");
            // Noise message 2 at most (fresh ephemeral; with the listener's HELLO, the
            // replayed message 1 offering hs2), never anything after it.
            let mut rest = BytesMut::from(&got[..]);
            let mut answered = Vec::new();
            while let Ok(Some(f)) = frame::next_frame(&mut rest, frame::MAX_PREAUTH_FRAME) {
                answered.push(f.len());
            }
            assert!(
                answered.len() <= 1 && rest.is_empty(),
                "answered frames of {answered:?} bytes and {} more",
                rest.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            accepted.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "a replayed handshake authenticated"
        );
        // The only session the listener holds is the original one, still working.
        assert_eq!(server.connections().len(), 1);
        let s = conn.open_stream(None).await.unwrap();
        send_and_check(&s, 10_000, 1000, 2).await.unwrap();
    })
    .await
    .unwrap();
}

/// What Mallory does with the dialer's hs2 offer (PROTOCOL.md §5.8).
#[derive(Clone, Copy, Debug)]
enum Offer {
    /// Accepts it and declines in message 2 (an empty payload): v1 goes on.
    Decline,
    /// Closes without a word, as a v1 listener does: the dialer comes again with v1.
    Close,
}

/// Mallory terminates Noise on both sides with her own static keys and relays every
/// decrypted message (HELLO, AUTH, AUTH_OK, ...) unchanged.
async fn mitm(
    listen: TcpListener,
    target: std::net::SocketAddr,
    offer: Offer,
) -> Result<(), String> {
    let (mut d, _) = listen.accept().await.map_err(|e| e.to_string())?;
    let mut l = TcpStream::connect(target)
        .await
        .map_err(|e| e.to_string())?;
    let mk = NodeKey::generate();
    // Dialer side: Mallory is the responder.
    let mut hs_d =
        NoiseHandshake::new(false, &mk.x25519_secret(), &mk.x25519_public(), None).unwrap();
    let mut dbuf = BytesMut::new();
    let mut m1 = read_frame(&mut d, &mut dbuf, Duration::from_secs(5))
        .await
        .ok_or("no msg1")?;
    let offered = m1.len() == snap2p::unstable::secure_channel::XX_MSG1_LEN + 1;
    if !offered {
        return Err(format!("the dialer did not offer hs2 ({} bytes)", m1.len()));
    }
    if let Offer::Close = offer {
        drop(d);
        (d, _) = listen.accept().await.map_err(|e| e.to_string())?;
        dbuf.clear();
        m1 = read_frame(&mut d, &mut dbuf, Duration::from_secs(5))
            .await
            .ok_or("no second msg1")?;
        if m1.len() != snap2p::unstable::secure_channel::XX_MSG1_LEN {
            return Err(format!("the dialer came again with {} bytes", m1.len()));
        }
    }
    // An empty message 2 declines an offer; after v1's message 1 it is v1's message 2.
    hs_d.read_payload(&m1).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    hs_d.write_frame(&mut out).unwrap();
    d.write_all(&out).await.unwrap();
    // Listener side: Mallory is the initiator.
    let mut t_l = raw_noise_dial(&mut l, &mk).await;
    let m3 = read_frame(&mut d, &mut dbuf, Duration::from_secs(5))
        .await
        .ok_or("no msg3")?;
    hs_d.read_message(&m3).map_err(|e| e.to_string())?;
    let mut t_d = hs_d.into_transport().unwrap();
    let mut lbuf = BytesMut::new();
    let mut relayed = 0;
    // Mallory follows the protocol where it can: when both HELLOs she relays list
    // `aes-gcm`, her four directions switch with the peers' (docs/PROTOCOL.md §7.2), so
    // what stops her is the binding, not a cipher she failed to follow.
    let mut hellos: Vec<bool> = Vec::new();
    let mut note_hello = |p: &[u8], t_d: &mut NoiseTransport, t_l: &mut NoiseTransport| {
        if let Ok(Message::Hello(h)) = Message::decode(p) {
            hellos.push(h.capabilities.contains(&caps::AES_GCM));
            if hellos.len() == 2 && hellos.iter().all(|&aes| aes) {
                t_d.switch_to_aes_gcm().unwrap();
                t_l.switch_to_aes_gcm().unwrap();
            }
        }
    };
    // Relay decrypted messages both ways until either side hangs up.
    loop {
        let mut a = [0u8; 65536];
        let mut b = [0u8; 65536];
        tokio::select! {
            r = d.read(&mut a) => {
                let n = r.unwrap_or(0);
                if n == 0 { break; }
                dbuf.extend_from_slice(&a[..n]);
                while let Ok(Some(f)) = frame::next_frame(&mut dbuf, frame::MAX_TRANSPORT_FRAME) {
                    let p = t_d.open_frame(f).map_err(|e| e.to_string())?;
                    let mut o = Vec::new();
                    t_l.encrypt_frame(&p, &mut o).unwrap();
                    note_hello(&p, &mut t_d, &mut t_l);
                    let _ = l.write_all(&o).await;
                    relayed += 1;
                }
            }
            r = l.read(&mut b) => {
                let n = r.unwrap_or(0);
                if n == 0 { break; }
                lbuf.extend_from_slice(&b[..n]);
                while let Ok(Some(f)) = frame::next_frame(&mut lbuf, frame::MAX_TRANSPORT_FRAME) {
                    let p = t_l.open_frame(f).map_err(|e| e.to_string())?;
                    let mut o = Vec::new();
                    t_d.encrypt_frame(&p, &mut o).unwrap();
                    note_hello(&p, &mut t_d, &mut t_l);
                    let _ = d.write_all(&o).await;
                    relayed += 1;
                }
            }
        }
    }
    if relayed < 3 {
        return Err(format!("relayed only {relayed} frames"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaying_mitm_with_own_noise_keys_fails_binding() {
    for offer in [Offer::Decline, Offer::Close] {
        relaying_mitm_fails_binding(offer).await;
    }
}

async fn relaying_mitm_fails_binding(offer: Offer) {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let s2 = server.clone();
        let accepted =
            tokio::spawn(async move { timeout(Duration::from_secs(8), s2.accept()).await });
        let ml = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let maddr = ml.local_addr().unwrap();
        let relay = tokio::spawn(mitm(ml, addr, offer));
        let client = peer(PeerConfig::default()).await;
        let started = Instant::now();
        let e = client.dial(&maddr.to_string()).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthFailed, "dialer ({offer:?}): {e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        relay
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("mallory relayed the handshake ({offer:?}): {e}"));
        assert!(
            accepted.await.unwrap().is_err(),
            "the listener accepted a relayed session"
        );
        assert!(server.connections().is_empty());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaying_mitm_is_caught_by_the_listener_itself() {
    // The listener's own verdict: Mallory relays and we read the listener's AUTH_FAIL
    // from her side of the relay (decrypted with her keys).
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let me = RawIdentity::new().await;
        // Mallory with her own Noise key sends a real peer's HELLO and AUTH (ours).
        let mut l = TcpStream::connect(addr).await.unwrap();
        let mk = NodeKey::generate();
        let mut t = raw_noise_dial(&mut l, &mk).await;
        let hello = Message::Hello(Hello {
            version: 1,
            node_pubkey: &me.node.public(),
            nonce: &[7; 32],
            timestamp: snap2p::unix_now(),
            visibility: Some(WireVis::Public),
            capabilities: vec!["flow-control", "transcript-binding"],
        })
        .to_vec();
        let mut out = Vec::new();
        t.encrypt_frame(&hello, &mut out).unwrap();
        l.write_all(&out).await.unwrap();
        let mut buf = BytesMut::new();
        let f = read_frame(&mut l, &mut buf, Duration::from_secs(5))
            .await
            .unwrap();
        let p = t.open_frame(BytesMut::from(&f[..])).unwrap();
        assert!(matches!(Message::decode(&p).unwrap(), Message::Hello(_)));
        let auth = Message::Auth(snap2p::unstable::wire::message::Auth {
            attestation: &me.att,
            session_nonce: &[0; 64],
            handshake_sig: &[0; 64],
        })
        .to_vec();
        let mut out = Vec::new();
        t.encrypt_frame(&auth, &mut out).unwrap();
        l.write_all(&out).await.unwrap();
        let f = read_frame(&mut l, &mut buf, Duration::from_secs(5))
            .await
            .expect("an AUTH_FAIL");
        let p = t.open_frame(BytesMut::from(&f[..])).unwrap();
        match Message::decode(&p).unwrap() {
            Message::AuthFail { code, .. } => assert_eq!(code, ErrorCode::AuthFailed),
            m => panic!("expected AUTH_FAIL, got {m:?}"),
        }
        assert!(wait_closed(&mut l, Duration::from_secs(5)).await.is_some());
        assert!(server.connections().is_empty());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_version_other_than_1_is_refused() {
    timeout(T, async {
        let stealth = peer({
            let mut c = PeerConfig::default();
            c.visibility = Visibility::Stealth;
            c.allowlist_gate = Some(false);
            c.preauth_rate_per_min = Some(1000);
            c
        })
        .await;
        let public = peer(PeerConfig::default()).await;
        let saddr = stealth.listen("127.0.0.1:0").await.unwrap();
        let paddr = public.listen("127.0.0.1:0").await.unwrap();
        let invite = stealth.create_invite(Some(600), false).unwrap();
        // KNOCK v != 1, to both kinds of listener.
        for (addr, v) in [(saddr, 2u64), (saddr, 0), (saddr, u64::MAX), (paddr, 2)] {
            let mut raw = TcpStream::connect(addr).await.unwrap();
            let knock = Message::Knock {
                version: v,
                nonce: &[1; 16],
                token: &invite.token,
            }
            .to_vec();
            let mut out = Vec::new();
            frame::write_frame(&mut out, &knock);
            raw.write_all(&out).await.unwrap();
            let mut buf = BytesMut::new();
            let f = read_frame(&mut raw, &mut buf, Duration::from_secs(5))
                .await
                .expect("AUTH_FAIL");
            match Message::decode(&f).unwrap() {
                Message::AuthFail { code, .. } => {
                    assert_eq!(code, ErrorCode::VersionUnsupported, "v={v}")
                }
                m => panic!("KNOCK v={v}: {m:?}"),
            }
            assert!(wait_closed(&mut raw, Duration::from_secs(5))
                .await
                .is_some());
        }
        // HELLO v != 1, after a real Noise handshake (public listener, and stealth after
        // a valid KNOCK).
        for (addr, knock) in [(paddr, false), (saddr, true)] {
            let mut raw = TcpStream::connect(addr).await.unwrap();
            let mut buf = BytesMut::new();
            if knock {
                let k = Message::Knock {
                    version: 1,
                    nonce: &[1; 16],
                    token: &invite.token,
                }
                .to_vec();
                let mut out = Vec::new();
                frame::write_frame(&mut out, &k);
                raw.write_all(&out).await.unwrap();
                let f = read_frame(&mut raw, &mut buf, Duration::from_secs(5))
                    .await
                    .unwrap();
                assert_eq!(
                    Message::decode(&f).unwrap(),
                    Message::KnockResponse {
                        accepted: true,
                        hs2: true
                    }
                );
            }
            let key = NodeKey::generate();
            let mut t = raw_noise_dial(&mut raw, &key).await;
            let hello = Message::Hello(Hello {
                version: 2,
                node_pubkey: &key.public(),
                nonce: &[3; 32],
                timestamp: snap2p::unix_now(),
                visibility: None,
                capabilities: vec![],
            })
            .to_vec();
            let mut out = Vec::new();
            t.encrypt_frame(&hello, &mut out).unwrap();
            raw.write_all(&out).await.unwrap();
            let mut code = None;
            for _ in 0..4 {
                let Some(f) = read_frame(&mut raw, &mut buf, Duration::from_secs(5)).await else {
                    break;
                };
                let p = t.open_frame(BytesMut::from(&f[..])).unwrap();
                let mut found = None;
                snap2p::unstable::wire::message::decode_batch(&p, |m| {
                    if let Message::AuthFail { code, .. } = m {
                        found = Some(code);
                    }
                    Ok(())
                })
                .unwrap();
                if found.is_some() {
                    code = found;
                    break;
                }
            }
            assert_eq!(
                code,
                Some(ErrorCode::VersionUnsupported),
                "HELLO v=2 (knock={knock})"
            );
        }
    })
    .await
    .unwrap();
}
