//! The event kinds of issue 29's second part over real loopback sessions: streams opened,
//! refused and reset, keepalive timeouts, PX-1 queries, rate-limit drops; the frame and
//! stream counters; and peer byte totals that never go down while sessions close.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{next_of, one_shot_proxy, peer, send_and_check, serve_digest};
use snap2p::{px1, Direction, ErrorCode, EventKind, PeerConfig, Visibility};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_opened_refused_and_reset_are_reported_and_counted() {
    timeout(T, async {
        // No PX-1: its own streams would be reported too.
        let server = peer({
            let mut c = PeerConfig::default().with_px1(false);
            c.limits.max_streams = 1;
            c
        })
        .await;
        let client = peer(PeerConfig::default().with_px1(false)).await;
        let mut server_events = server.events();
        let mut client_events = client.events();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let conn = client.dial(&addr.to_string()).await.unwrap();
        let inbound = server.accept().await.unwrap();

        // Opened: both ends, with the label and the session's id.
        let a = conn.open_stream(Some("alpha")).await.unwrap();
        a.write_all(&b"x"[..]).await.unwrap();
        let up = next_of(&mut client_events, EventKind::StreamOpened).await;
        assert_eq!(up.direction, Some(Direction::Outbound), "{up:?}");
        assert_eq!(up.label.as_deref(), Some("alpha"));
        assert_eq!(up.stream, Some(a.id()));
        assert_eq!(up.connection.as_deref(), Some(conn.id().as_str()));
        let down = next_of(&mut server_events, EventKind::StreamOpened).await;
        assert_eq!(down.direction, Some(Direction::Inbound), "{down:?}");
        assert_eq!(down.label.as_deref(), Some("alpha"));
        assert_eq!(down.stream, Some(a.id()));
        assert_eq!(down.connection, up.connection);
        let sa = inbound.accept_stream().await.unwrap();

        // Refused: the server takes one inbound stream at a time.
        let b = conn.open_stream(Some("beta")).await.unwrap();
        // (the refusal may come back before this write returns)
        let _ = b.write_all(&b"y"[..]).await;
        let refused = next_of(&mut server_events, EventKind::StreamRefused).await;
        assert_eq!(refused.label.as_deref(), Some("beta"), "{refused:?}");
        assert_eq!(refused.stream, Some(b.id()));
        assert_eq!(refused.code, Some(ErrorCode::StreamRefused));
        assert_eq!(refused.connection.as_deref(), Some(conn.id().as_str()));
        let reset = next_of(&mut client_events, EventKind::StreamReset).await;
        assert_eq!(reset.direction, Some(Direction::Inbound), "{reset:?}");
        assert_eq!(reset.code, Some(ErrorCode::StreamRefused));
        assert_eq!(reset.stream, Some(b.id()));

        // Reset: by the client, seen at both ends with its code.
        a.reset(ErrorCode::Unspecified);
        let mine = next_of(&mut client_events, EventKind::StreamReset).await;
        assert_eq!(mine.direction, Some(Direction::Outbound), "{mine:?}");
        assert_eq!(mine.code, Some(ErrorCode::Unspecified));
        assert_eq!(mine.stream, Some(a.id()));
        let theirs = next_of(&mut server_events, EventKind::StreamReset).await;
        assert_eq!(theirs.direction, Some(Direction::Inbound), "{theirs:?}");
        assert_eq!(theirs.code, Some(ErrorCode::Unspecified));
        assert_eq!(theirs.label.as_deref(), Some("alpha"));
        drop(sa);

        // Counters: streams opened (the refused one only on the side that opened it),
        // frames each way, equal at both ends once nothing is in flight.
        let st = conn.stats();
        assert_eq!(st.streams_opened, 2, "{st:?}");
        assert_eq!(inbound.stats().streams_opened, 1);
        assert!(
            common::eventually(Duration::from_secs(5), || {
                let (c, s) = (conn.stats(), inbound.stats());
                c.frames_sent == s.frames_received && s.frames_sent == c.frames_received
            })
            .await,
            "{:?} vs {:?}",
            conn.stats(),
            inbound.stats()
        );
        let st = conn.stats();
        // KNOCK-less dial: Noise 1 and 3, then HELLO, AUTH, AUTH_OK and the streams' frames.
        assert!(st.frames_sent >= 4 && st.frames_received >= 3, "{st:?}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_remote_stops_answering_reports_a_keepalive_timeout() {
    timeout(T, async {
        let quick = {
            let mut c = PeerConfig::default();
            c.limits.keepalive_interval = Duration::from_millis(200);
            c.limits.keepalive_timeout = Duration::from_millis(400);
            c
        };
        let server = peer(quick.clone()).await;
        let client = peer(PeerConfig::default()).await;
        let mut events = server.events();
        let mut client_events = client.events();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        // The client's bytes stop reaching the server once `cut` is set: its PONGs too.
        let cut = Arc::new(AtomicBool::new(false));
        let cut2 = cut.clone();
        let via = one_shot_proxy(addr, move |mut from, mut to| async move {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = from.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if !cut2.load(Ordering::Relaxed) && to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        })
        .await;
        let conn = client.dial(&via.to_string()).await.unwrap();
        let up = next_of(&mut events, EventKind::SessionEstablished).await;
        cut.store(true, Ordering::Relaxed);
        let ev = next_of(&mut events, EventKind::KeepaliveTimeout).await;
        assert_eq!(ev.code, Some(ErrorCode::Timeout), "{ev:?}");
        assert_eq!(ev.connection, up.connection);
        assert_eq!(ev.connection.as_deref(), Some(conn.id().as_str()));
        assert_eq!(ev.direction, Some(Direction::Inbound));
        assert!(ev.remote_addr.is_some() && ev.duration.is_some());
        let closed = next_of(&mut events, EventKind::SessionClosed).await;
        assert_eq!(closed.code, Some(ErrorCode::Timeout));
        // The client hears of it in the server's ERROR: a close, not a timeout of its own.
        loop {
            let ev = timeout(Duration::from_secs(10), client_events.next())
                .await
                .unwrap()
                .unwrap();
            assert_ne!(ev.kind, EventKind::KeepaliveTimeout, "{ev:?}");
            if ev.kind == EventKind::SessionClosed {
                assert_eq!(ev.code, Some(ErrorCode::Timeout), "{ev:?}");
                break;
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn px1_queries_asked_and_answered_are_reported_without_principals() {
    timeout(T, async {
        let server = peer(PeerConfig::default().with_px1(true)).await;
        let client = peer(PeerConfig::default().with_px1(true)).await;
        let mut server_events = server.events();
        let mut client_events = client.events();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let conn = client.dial(&addr.to_string()).await.unwrap();

        // Answered: a direct query about the server itself (a Public node hints itself).
        let hints = px1::resolve(&conn, server.principal(), None).await.unwrap();
        let answered = next_of(&mut server_events, EventKind::Px1Query).await;
        assert_eq!(answered.direction, Some(Direction::Inbound), "{answered:?}");
        assert_eq!(answered.count, Some(hints.len() as u64));
        assert_eq!(answered.connection.as_deref(), Some(conn.id().as_str()));
        assert!(answered.remote_principal.is_none() && answered.code.is_none());

        // Asked: dialing a principal nobody knows asks the server.
        let nobody = peer(PeerConfig::default()).await;
        let target = nobody.principal().to_string();
        let c = client.clone();
        let dial = tokio::spawn(async move { c.dial(&target).await });
        let asked = next_of(&mut client_events, EventKind::Px1Query).await;
        assert_eq!(asked.direction, Some(Direction::Outbound), "{asked:?}");
        assert_eq!(asked.count, Some(0));
        assert_eq!(asked.connection.as_deref(), Some(conn.id().as_str()));
        assert!(asked.remote_principal.is_none());
        dial.abort();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_its_failure_budget_is_reported_as_rate_limited() {
    timeout(T, async {
        let server = peer({
            let mut c = PeerConfig::default().with_visibility(Visibility::Private);
            c.preauth_rate_per_min = Some(1);
            c
        })
        .await;
        let mallory = peer({
            let mut c = PeerConfig::default();
            c.connect_timeout = Duration::from_secs(2);
            c
        })
        .await;
        let mut events = server.events();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let e = mallory.dial(&addr.to_string()).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::NotAllowed);
        assert!(
            common::eventually(Duration::from_secs(5), || {
                server.stats().handshakes_failed.get(&4) == Some(&1)
            })
            .await
        );
        // Its one failure a minute is spent: the next try is dropped before any handshake.
        let e = mallory.dial(&addr.to_string()).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited, "{e}");
        let ev = next_of(&mut events, EventKind::RateLimited).await;
        assert_eq!(ev.code, Some(ErrorCode::RateLimited), "{ev:?}");
        assert_eq!(ev.direction, Some(Direction::Inbound));
        assert_eq!(ev.remote_addr.map(|a| a.ip()), Some(addr.ip()));
    })
    .await
    .unwrap();
}

/// Peer byte totals only grow: a reader polling `Peer::stats()` in a tight loop while
/// sessions move data and close never sees a total lower than one it saw before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_byte_totals_never_go_down_while_sessions_close() {
    timeout(T, async {
        let server = peer(PeerConfig::default()).await;
        let client = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        serve_digest(&server);
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = [server.clone(), client.clone()]
            .into_iter()
            .map(|p| {
                let done = done.clone();
                std::thread::spawn(move || {
                    let (mut sent, mut received, mut reads) = (0u64, 0u64, 0u64);
                    // One more read after `done`: the last in the loop may be old.
                    let mut last = false;
                    while !last {
                        last = done.load(Ordering::Relaxed);
                        let s = p.stats();
                        assert!(
                            s.bytes_sent >= sent && s.bytes_received >= received,
                            "went down: sent {sent} -> {}, received {received} -> {}",
                            s.bytes_sent,
                            s.bytes_received
                        );
                        (sent, received) = (s.bytes_sent, s.bytes_received);
                        reads += 1;
                    }
                    (sent, received, reads)
                })
            })
            .collect();
        let mut moved = 0;
        for i in 0..30u32 {
            let conn = client.dial(&addr.to_string()).await.unwrap();
            let s = conn.open_stream(None).await.unwrap();
            send_and_check(&s, 64 * 1024, 8 * 1024, i).await.unwrap();
            conn.close(ErrorCode::Ok, "next");
            conn.closed().await;
            moved += conn.stats().bytes_sent;
        }
        assert_eq!(client.stats().bytes_sent, moved);
        // Every session's bytes are in the totals, and nothing else.
        assert!(
            common::eventually(Duration::from_secs(5), || server.connections().is_empty()).await
        );
        done.store(true, Ordering::Relaxed);
        for r in readers {
            let (sent, received, reads) = r.join().unwrap();
            assert!(
                sent > 30 * 64 * 1024 || received > 30 * 64 * 1024,
                "{sent} {received} {reads}"
            );
            assert!(reads > 100, "{reads} reads");
        }
        // What the server sent after the client's last read of a session (a CLOSE_STREAM
        // behind its reply's FIN) the client reads while its socket drains, after
        // `closed()`: within moments, not never.
        let (c, s) = (client.stats(), server.stats());
        assert_eq!(c.bytes_sent, s.bytes_received, "{c:?} {s:?}");
        let settled = common::eventually(Duration::from_secs(5), || {
            client.stats().bytes_received == server.stats().bytes_sent
        })
        .await;
        let (c, s) = (client.stats(), server.stats());
        assert!(settled, "{c:?} {s:?}");
    })
    .await
    .unwrap();
}
