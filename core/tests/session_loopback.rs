//! Sessions between real peers over loopback TCP sockets, with real crypto.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{
    finish_and_check_digest, peer, send_and_check, serve_digest, session_to_digest_server,
};
use snap2p::{DialOptions, ErrorCode, PeerConfig, SessionLimits, Visibility};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_transfer_with_matching_sha256() {
    timeout(Duration::from_secs(300), async {
        let (_server, _client, conn) = session_to_digest_server().await;
        let stream = conn.open_stream(Some("bulk")).await.unwrap();
        send_and_check(&stream, 1 << 30, 64 * 1024, 7)
            .await
            .unwrap();
    })
    .await
    .unwrap();
}

/// Owned writes are queued without a copy, borrowed ones copied; mixed on one stream, in
/// sizes on both sides of the copy threshold and past the send buffer, and through
/// `try_write_owned`, the peer still receives every byte in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_and_borrowed_writes_interleave_in_order() {
    use sha2::{Digest, Sha256};
    timeout(T, async {
        let (_server, _client, conn) = session_to_digest_server().await;
        let stream = conn.open_stream(None).await.unwrap();
        let (mut h, mut total, mut x) = (Sha256::new(), 0u64, 0u32);
        let sizes = [1usize, 4095, 4096, 65_536, 3 << 20, 17, 200_000, 1, 1 << 20];
        for round in 0..12 {
            for (i, &n) in sizes.iter().enumerate() {
                let mut buf = vec![0u8; n];
                common::pattern(9, &mut buf, &mut x);
                h.update(&buf);
                total += n as u64;
                match (round + i) % 3 {
                    0 => stream.write_all(&buf).await.unwrap(),
                    1 => stream.write_all(bytes::Bytes::from(buf)).await.unwrap(),
                    _ => {
                        let mut rest = bytes::Bytes::from(buf);
                        while !rest.is_empty() {
                            stream.writable().await.unwrap();
                            let k = stream.try_write(rest.clone()).unwrap();
                            let _ = rest.split_to(k);
                        }
                    }
                }
            }
        }
        finish_and_check_digest(&stream, h, total).await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_streams_each_intact() {
    timeout(T, async {
        let (_server, _client, conn) = session_to_digest_server().await;
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let conn = conn.clone();
            tasks.push(tokio::spawn(async move {
                let s = conn.open_stream(None).await.unwrap();
                send_and_check(&s, 64 * 1024 + i as u64, 4096, i)
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_and_async_read_write() {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let addr = match server.listen("[::1]:0").await {
            Ok(a) => a,
            Err(_) => return, // no IPv6 on this host
        };
        serve_digest(&server);
        let client = peer(PeerConfig::default()).await;
        let conn = client
            .dial(&format!("[::1]:{}", addr.port()))
            .await
            .unwrap();
        let mut s = conn.open_stream(None).await.unwrap();
        s.write_all(b"tokio io traits").await.unwrap();
        s.shutdown().await.unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply.len(), 40);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visibility_modes_over_sockets() {
    timeout(T, async {
        // Private: allowlist gate after auth.
        let alice = peer(PeerConfig::default()).await;
        let mallory = peer(PeerConfig::default()).await;
        let private = peer({
            let mut c = PeerConfig::default();
            c.visibility = Visibility::Private;
            c.allowlist = vec![alice.principal().clone()];
            c
        })
        .await;
        let paddr = private.listen("127.0.0.1:0").await.unwrap().to_string();
        serve_digest(&private);
        let e = mallory.dial(&paddr).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::NotAllowed, "{e}");
        let conn = alice.dial(&paddr).await.unwrap();
        assert_eq!(conn.remote_principal(), private.principal());

        // Stealth: KNOCK with an invite before anything else.
        let stealth = peer({
            let mut c = PeerConfig::default();
            c.visibility = Visibility::Stealth;
            c.allowlist_gate = Some(false);
            c
        })
        .await;
        let saddr = stealth.listen("127.0.0.1:0").await.unwrap().to_string();
        serve_digest(&stealth);
        let invite = stealth.create_invite(Some(600), false).unwrap();
        let e = alice.dial(&saddr).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InviteRequired, "{e}");
        let bad = {
            let mut c = DialOptions::default();
            c.invite = Some(vec![9; 32]);
            c
        };
        let e = alice.dial_with(&saddr, bad).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InviteInvalid, "{e}");
        let good = DialOptions::default().invite(invite.token.clone());
        let conn = alice.dial_with(&saddr, good.clone()).await.unwrap();
        let s = conn.open_stream(None).await.unwrap();
        send_and_check(&s, 1000, 100, 3).await.unwrap();
        // Revoked: refused again.
        assert!(stealth.revoke_invite(&invite.id));
        let e = mallory.dial_with(&saddr, good).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InviteInvalid, "{e}");

        // Dialing with an expected principal that does not match.
        let public = peer(PeerConfig::default()).await;
        let addr = public.listen("127.0.0.1:0").await.unwrap().to_string();
        let wrong = DialOptions::default().expect(alice.principal().clone());
        let e = mallory.dial_with(&addr, wrong).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::PrincipalMismatch, "{e}");
    })
    .await
    .unwrap();
}

/// A TCP connection from `from` (a second loopback address), as a transport would hand it
/// to the handshake.
async fn connected_from(from: &str, to: std::net::SocketAddr) -> snap2p::transport::Connected {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let tcp = sock.connect(to).await.unwrap();
    snap2p::transport::Connected {
        remote: tcp.peer_addr().ok(),
        local: tcp.local_addr().ok(),
        io: Box::new(tcp),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stealth_scanners_never_lock_out_an_invitee_behind_their_address() {
    timeout(T, async {
        let stealth = peer({
            let mut c = PeerConfig::default();
            c.visibility = Visibility::Stealth;
            c.allowlist_gate = Some(false);
            c.preauth_rate_per_min = Some(3);
            c
        })
        .await;
        let addr = stealth.listen("127.0.0.1:0").await.unwrap();
        // A scanner from 127.0.0.2 fails ten times (its budget is 3): closed at once each
        // time, never kept waiting, never a Noise answer.
        for _ in 0..10 {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            let mut s = sock.connect(addr).await.unwrap();
            let _ = s.write_all(&[0, 32]).await;
            let _ = s.write_all(&[7; 32]).await;
            let mut buf = Vec::new();
            match timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await {
                Ok(_) => assert!(buf.len() < 64, "a scanner got {} bytes", buf.len()),
                Err(_) => panic!("listener kept a scanner waiting"),
            }
        }
        // An invitee behind the same address still gets in: a KNOCK is checked, not
        // refused for the scanner's failures.
        let invite = stealth.create_invite(None, false).unwrap();
        let alice = peer(PeerConfig::default()).await;
        let conn = alice
            .handshake_outbound(
                connected_from("127.0.0.2", addr).await,
                DialOptions::default().invite(invite.token),
            )
            .await
            .unwrap();
        assert_eq!(conn.remote_principal(), stealth.principal());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_listener_charges_only_failures_and_then_says_rate_limited() {
    timeout(T, async {
        let alice = peer(PeerConfig::default()).await;
        let private = peer({
            let mut c = PeerConfig::default().with_visibility(Visibility::Private);
            c.allowlist = vec![alice.principal().clone()];
            c.preauth_rate_per_min = Some(3);
            c
        })
        .await;
        let addr = private.listen("127.0.0.1:0").await.unwrap();
        // Successes cost nothing: more of them than the budget.
        for _ in 0..5 {
            let c = alice
                .handshake_outbound(
                    connected_from("127.0.0.3", addr).await,
                    DialOptions::default(),
                )
                .await
                .unwrap();
            c.close(ErrorCode::Ok, "done");
        }
        // A stranger from the same address fails three times (not on the allowlist); the
        // listener charges each failure as its session ends, which can lag the dialer's
        // next attempt by a task switch: allow it a few more tries to see the refusal.
        let mallory = peer(PeerConfig::default()).await;
        let mut codes = Vec::new();
        for _ in 0..6 {
            let e = mallory
                .handshake_outbound(
                    connected_from("127.0.0.3", addr).await,
                    DialOptions::default(),
                )
                .await
                .unwrap_err();
            codes.push(e.code);
            if e.code == ErrorCode::RateLimited {
                break;
            }
        }
        assert_eq!(&codes[..3], &[ErrorCode::NotAllowed; 3], "{codes:?}");
        assert_eq!(codes.last(), Some(&ErrorCode::RateLimited), "{codes:?}");
        // ...and from then on the address is told why, before any handshake.
        let e = alice
            .handshake_outbound(
                connected_from("127.0.0.3", addr).await,
                DialOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited, "{e}");
        // Other sources are not affected.
        alice
            .handshake_outbound(
                connected_from("127.0.0.4", addr).await,
                DialOptions::default(),
            )
            .await
            .unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_only_that_session_and_silent_clients_time_out() {
    timeout(T, async {
        let limits = {
            let mut c = SessionLimits::default();
            c.handshake_timeout = Duration::from_millis(500);
            c
        };
        let server = peer({
            let mut c = PeerConfig::default();
            c.limits = limits;
            c
        })
        .await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        serve_digest(&server);
        let client = peer(PeerConfig::default()).await;
        let good = client.dial(&addr.to_string()).await.unwrap();

        // Garbage: an oversized length prefix.
        let mut raw = TcpStream::connect(addr).await.unwrap();
        raw.write_all(&[0xff, 0xff, 0xff, 0x7f, 1, 2, 3])
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = timeout(Duration::from_secs(5), raw.read(&mut buf))
            .await
            .expect("garbage must be closed promptly")
            .unwrap_or(0);
        assert_eq!(n, 0, "no answer to unframed garbage");

        // Silence: closed after the handshake timeout.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let started = std::time::Instant::now();
        let n = timeout(Duration::from_secs(5), idle.read(&mut buf))
            .await
            .expect("silent client must be timed out")
            .unwrap_or(0);
        let _ = n;
        assert!(started.elapsed() >= Duration::from_millis(400));

        // The established session is untouched.
        let s = good.open_stream(None).await.unwrap();
        send_and_check(&s, 100_000, 1000, 5).await.unwrap();
    })
    .await
    .unwrap();
}

/// A TCP relay that can be frozen: bytes stop flowing both ways while the sockets stay
/// open (what a network partition looks like to both ends).
async fn freezable_relay(target: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<AtomicBool>) {
    async fn copy_dir(
        mut r: tokio::net::tcp::OwnedReadHalf,
        mut w: tokio::net::tcp::OwnedWriteHalf,
        frozen: Arc<AtomicBool>,
    ) {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            while frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if w.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
    let frozen = Arc::new(AtomicBool::new(false));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let f = frozen.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = l.accept().await {
            let Ok(outbound) = TcpStream::connect(target).await else {
                continue;
            };
            let (ir, iw) = inbound.into_split();
            let (or, ow) = outbound.into_split();
            tokio::spawn(copy_dir(ir, ow, f.clone()));
            tokio::spawn(copy_dir(or, iw, f.clone()));
        }
    });
    (addr, frozen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_detects_a_partition() {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        serve_digest(&server);
        let (relay, frozen) = freezable_relay(addr).await;
        let limits = {
            let mut c = SessionLimits::default();
            c.keepalive_interval = Duration::from_millis(300);
            c.keepalive_timeout = Duration::from_millis(500);
            c
        };
        let client = peer({
            let mut c = PeerConfig::default();
            c.limits = limits;
            c
        })
        .await;
        let conn = client.dial(&relay.to_string()).await.unwrap();
        let s = conn.open_stream(None).await.unwrap();
        send_and_check(&s, 10_000, 1000, 1).await.unwrap();
        let open = conn.open_stream(None).await.unwrap();
        frozen.store(true, Ordering::SeqCst);
        let started = std::time::Instant::now();
        let why = timeout(Duration::from_secs(5), conn.closed())
            .await
            .expect("keepalive must notice the partition");
        assert_eq!(why.code, ErrorCode::Timeout, "{why}");
        // Interval + timeout, with scheduling slack.
        assert!(started.elapsed() < Duration::from_secs(3));
        // A pending read on the dead session ends with an error, not a hang.
        let e = timeout(Duration::from_secs(2), open.read_chunk(10))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Timeout, "{e}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_killed_mid_transfer_gives_an_error() {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let s2 = server.clone();
        let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let r2 = received.clone();
        tokio::spawn(async move {
            let conn = s2.accept().await.unwrap();
            let st = conn.accept_stream().await.unwrap();
            while let Ok(Some(c)) = st.read_chunk(1 << 16).await {
                r2.fetch_add(c.len() as u64, Ordering::SeqCst);
                if r2.load(Ordering::SeqCst) > 4 << 20 {
                    // The server dies abruptly.
                    s2.close().await;
                    return;
                }
            }
        });
        let client = peer(PeerConfig::default()).await;
        let conn = client.dial(&addr.to_string()).await.unwrap();
        let s = conn.open_stream(None).await.unwrap();
        let chunk = vec![1u8; 65536];
        let mut err = None;
        for _ in 0..100_000 {
            if let Err(e) = s.write_all(&chunk).await {
                err = Some(e);
                break;
            }
        }
        let e = err.expect("writes must fail once the peer is gone");
        assert!(
            matches!(
                e.code,
                ErrorCode::Ok | ErrorCode::ConnectionClosed | ErrorCode::StreamClosed
            ),
            "{e}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writable_waits_for_room_then_try_write_takes_bytes() {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = peer(PeerConfig::default()).await;
        let conn = client.dial(&addr.to_string()).await.unwrap();
        let s = conn.open_stream(Some("slow")).await.unwrap();
        // The server does not read yet: fill the peer's window and our send buffer.
        let block = vec![7u8; 64 * 1024];
        let mut queued = 0usize;
        let filled = timeout(Duration::from_secs(10), async {
            loop {
                let n = s.try_write(&block).unwrap();
                queued += n;
                if n == 0 {
                    // Full now; the driver may still move bytes into the window, so
                    // wait until writable() stays pending.
                    if timeout(Duration::from_millis(300), s.writable())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        })
        .await;
        assert!(filled.is_ok(), "the send buffer never filled");
        assert!(queued >= 256 * 1024, "{queued}");
        // Reading on the far side frees the window, then our buffer: writable() returns
        // and try_write takes bytes again.
        let remote = server.accept().await.unwrap();
        let rs = remote.accept_stream().await.unwrap();
        let reader = tokio::spawn(async move {
            let mut n = 0usize;
            while let Some(c) = rs.read_chunk(1 << 20).await.unwrap() {
                n += c.len();
            }
            n
        });
        timeout(Duration::from_secs(10), s.writable())
            .await
            .expect("writable() after the peer read")
            .unwrap();
        let more = s.try_write(&block).unwrap();
        assert!(more > 0);
        s.finish().unwrap();
        // A finished stream is not writable: an error, not a wait.
        let e = s.writable().await.unwrap_err();
        assert_eq!(e.code, ErrorCode::StreamClosed, "{e}");
        assert_eq!(reader.await.unwrap(), queued + more);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_ends_within_the_linger_when_the_peer_stops_reading() {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        // Accepts the stream and never reads it: no credit comes back.
        let (held_tx, held_rx) = tokio::sync::oneshot::channel();
        let srv = server.clone();
        tokio::spawn(async move {
            let conn = srv.accept().await.unwrap();
            let s = conn.accept_stream().await.unwrap();
            let _ = held_tx.send((conn, s));
            std::future::pending::<()>().await;
        });
        let linger = Duration::from_millis(300);
        let client = peer({
            let mut c = PeerConfig::default();
            c.limits = {
                let mut c = SessionLimits::default();
                c.close_linger = linger;
                c
            };
            c
        })
        .await;
        let conn = client.dial(&addr.to_string()).await.unwrap();
        let s = conn.open_stream(Some("stalled")).await.unwrap();
        // Write until a write is left waiting for credit.
        let chunk = vec![9u8; 64 * 1024];
        let writer = {
            let s = s.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(e) = s.write_all(&chunk).await {
                        return e;
                    }
                }
            })
        };
        let (_server_conn, _server_stream) = held_rx.await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!writer.is_finished(), "the writer waits for credit");

        let started = std::time::Instant::now();
        conn.close(ErrorCode::Ok, "done");
        let why = timeout(Duration::from_secs(5), conn.closed())
            .await
            .expect("close must not wait for a peer that never reads");
        assert_eq!(why.code, ErrorCode::Ok);
        assert!(
            started.elapsed() >= linger,
            "queued data had the linger to drain"
        );
        let e = timeout(Duration::from_secs(5), writer)
            .await
            .expect("the waiting writer is released")
            .unwrap();
        assert_eq!(e.code, ErrorCode::ConnectionClosed);
    })
    .await
    .unwrap();
}

/// A session closed while its peer is still sending ends its socket with a FIN, never a
/// RST: Linux resets a socket closed with unread bytes (or that receives bytes after its
/// close), and a reset throws away what of our last bytes the peer has not acknowledged.
/// A relay between the peers sees how the closing side's socket ends; the listener writes
/// to the dialer without pause, so its bytes are always in flight at the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_while_the_peer_still_sends_ends_with_fin_not_reset() {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let srv = server.clone();
        let (why_tx, mut why_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(conn) = srv.accept().await {
                let why_tx = why_tx.clone();
                tokio::spawn(async move {
                    let s = conn.open_stream(Some("chatter")).await.unwrap();
                    let chunk = vec![0xc4u8; 16 * 1024];
                    while s.write_all(&chunk[..]).await.is_ok() {}
                    let _ = why_tx.send(conn.closed().await.code);
                });
            }
        });
        // The relay: reports, per session, how the dialer's side of it ended.
        let relay = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_addr = relay.local_addr().unwrap();
        let (end_tx, mut end_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((dialer, _)) = relay.accept().await {
                let end_tx = end_tx.clone();
                tokio::spawn(async move {
                    let listener = TcpStream::connect(addr).await.unwrap();
                    let (mut dr, mut dw) = dialer.into_split();
                    let (mut lr, mut lw) = listener.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        let end = loop {
                            match dr.read(&mut buf).await {
                                Ok(0) => break Ok(()),
                                Ok(n) => {
                                    if lw.write_all(&buf[..n]).await.is_err() {
                                        break Ok(());
                                    }
                                }
                                Err(e) => break Err(e.kind()),
                            }
                        };
                        let _ = lw.shutdown().await;
                        end
                    };
                    let down = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match lr.read(&mut buf).await {
                                Ok(0) | Err(_) => break Ok(()),
                                Ok(n) => {
                                    if let Err(e) = dw.write_all(&buf[..n]).await {
                                        break Err(e.kind());
                                    }
                                }
                            }
                        }
                    };
                    let (up, down) = tokio::join!(up, down);
                    let _ = end_tx.send(up.and(down));
                });
            }
        });
        let client = peer(PeerConfig::default()).await;
        for i in 0..30 {
            let conn = client.dial(&relay_addr.to_string()).await.unwrap();
            let s = conn.accept_stream().await.unwrap();
            let reader = tokio::spawn(async move {
                let mut n = 0usize;
                while let Ok(Some(c)) = s.read_chunk(1 << 20).await {
                    n += c.len();
                }
                n
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            conn.close(ErrorCode::Ok, "done");
            assert_eq!(conn.closed().await.code, ErrorCode::Ok);
            assert!(
                reader.await.unwrap() > 0,
                "session {i}: the chatter arrived"
            );
            let end = timeout(Duration::from_secs(5), end_rx.recv())
                .await
                .expect("the dialer's socket ends")
                .unwrap();
            assert_eq!(end, Ok(()), "session {i}: the dialer's socket was reset");
            assert_eq!(why_rx.recv().await.unwrap(), ErrorCode::Ok, "session {i}");
        }
    })
    .await
    .unwrap();
}
