//! The TypeScript listener's framing bug (docs/PROTOCOL.md §12.3): it reads the handshake
//! through its own frame buffer and throws that buffer away when the session starts, so
//! whatever arrived in the same TCP read as the dialer's AUTH_OK is lost, and every later
//! frame fails authentication (the transcript in `vectors/ts-session.json` records it:
//! ~1 TypeScript-to-TypeScript session in 4 over real TCP).
//!
//! `feed_like_ts` reproduces that buffer behaviour on a snap2p listener machine in the
//! TypeScript profile. The first test shows it loses a session exactly as the TypeScript
//! listener does when the dialer writes behind AUTH_OK in one go; the second runs 200
//! sessions of a real snap2p `Peer` (TypeScript profile) against it over TCP and loses none.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use snap2p::testing::{fixed, Side};
use snap2p::unstable::wire::frame::{read_varint, Varint};
use snap2p::unstable::{Clock, ReadOutcome, Session, SessionConfig};
use snap2p::{ErrorCode, Peer, PeerConfig, WireProfile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Feeds one TCP read to `s` the way the TypeScript listener does: frame by frame until the
/// session is established (the dialer's AUTH_OK); the rest of that read stays in the
/// handshake's buffer, which is then discarded. Returns the bytes dropped.
fn feed_like_ts(s: &mut Session, pending: &mut BytesMut, chunk: &[u8], now: Instant) -> usize {
    pending.extend_from_slice(chunk);
    if s.is_established() {
        s.handle_input(pending, now);
        return 0;
    }
    while s.error().is_none() {
        let Ok(Varint::Complete(len, used)) = read_varint(pending) else {
            break;
        };
        let total = used + len as usize;
        if pending.len() < total {
            break;
        }
        let mut one = pending.split_to(total);
        s.handle_input(&mut one, now);
        if s.is_established() {
            let dropped = pending.len();
            pending.clear();
            return dropped;
        }
    }
    0
}

fn ts_config(side: &Side, initiator: bool, clock: Clock) -> SessionConfig {
    let mut cfg = snap2p::testing::session_config(
        &side.node,
        side.att.clone(),
        side.wallet.principal(),
        initiator,
        clock,
    );
    cfg.profile = WireProfile::TypeScript;
    cfg
}

fn out(s: &mut Session, now: Instant) -> Vec<u8> {
    if s.poll_timeout().is_some_and(|t| t <= now) {
        s.handle_timeout(now);
    }
    let mut o = Vec::new();
    s.poll_transmit(now, &mut o, 1 << 20);
    o
}

/// Runs a fixed-randomness pair to the dialer's AUTH_OK. Returns the machines and the
/// AUTH_OK bytes, not yet delivered.
fn to_auth_ok(d: &Side, l: &Side, now: Instant) -> (Session, Session, Vec<u8>) {
    let clock = Clock {
        base: now,
        base_unix: snap2p::testing::T0_UNIX,
    };
    let mut dc = ts_config(d, true, clock);
    dc.fixed = Some(Box::new(fixed(1)));
    let mut lc = ts_config(l, false, clock);
    lc.fixed = Some(Box::new(fixed(2)));
    let (mut a, mut b) = (
        Session::new(dc, now).unwrap(),
        Session::new(lc, now).unwrap(),
    );
    let mut pending = BytesMut::new();
    for _ in 0..8 {
        let x = out(&mut a, now);
        if a.is_established() {
            return (a, b, x);
        }
        feed_like_ts(&mut b, &mut pending, &x, now);
        let y = out(&mut b, now);
        a.handle_input(&mut BytesMut::from(&y[..]), now);
    }
    panic!("no AUTH_OK: {:?} {:?}", a.error(), b.error());
}

/// The reproduction is faithful: a dialer that writes behind AUTH_OK in the same write (as
/// the TypeScript dialer does: PING, OPEN_STREAM, STREAM_DATA in the same tick) loses the
/// session at the buffer-bug listener, which then fails on the next frame (the PONG, sealed
/// under nonce 6 while the listener expects 3), the "invalid tag" of the recording. The
/// same bytes delivered after the listener's first frame, as a snap2p dialer sends them,
/// go through.
#[test]
fn buffer_bug_peer_loses_bytes_written_behind_auth_ok() {
    let (d, l) = (Side::new(1), Side::new(2));
    let now = Instant::now();
    // Run 1, to learn what the dialer writes after AUTH_OK (deterministic: fixed keys,
    // randomness and clock): delivered as a snap2p dialer does, after the listener's PING.
    let (mut a, mut b, auth_ok) = to_auth_ok(&d, &l, now);
    let mut pending = BytesMut::new();
    assert_eq!(feed_like_ts(&mut b, &mut pending, &auth_ok, now), 0);
    assert!(b.is_established());
    let id = a.open_stream(Some("echo")).unwrap();
    a.write(id, b"hello").unwrap();
    assert!(out(&mut a, now).is_empty(), "held behind AUTH_OK");
    let ping = out(&mut b, now);
    a.handle_input(&mut BytesMut::from(&ping[..]), now);
    let behind = out(&mut a, now); // PING, OPEN_STREAM, STREAM_DATA, then PONG
    let mut split = BytesMut::from(&behind[..]);
    let mut frames = Vec::new();
    while let Some(f) = snap2p::unstable::wire::frame::next_frame(&mut split, 1 << 20).unwrap() {
        frames.push(f.len());
    }
    assert_eq!(frames.len(), 4, "{frames:?}");
    assert_eq!(feed_like_ts(&mut b, &mut pending, &behind, now), 0);
    assert!(b.error().is_none(), "{:?}", b.error());
    let sid = b.accept_stream().unwrap();
    assert!(matches!(b.read(sid, 64).unwrap(), ReadOutcome::Data(d) if &d[..] == b"hello"));

    // Run 2, the same session: AUTH_OK and the first three of those frames in one read,
    // as the TypeScript dialer writes them.
    let (_a, mut b, auth_ok2) = to_auth_ok(&d, &l, now);
    assert_eq!(auth_ok2, auth_ok);
    let pong_at = behind.len() - (frames[3] + 1);
    let mut chunk = auth_ok2.clone();
    chunk.extend_from_slice(&behind[..pong_at]);
    let mut pending = BytesMut::new();
    let dropped = feed_like_ts(&mut b, &mut pending, &chunk, now);
    assert_eq!(
        dropped, pong_at,
        "PING, OPEN_STREAM and STREAM_DATA dropped"
    );
    assert!(b.is_established() && b.error().is_none());
    feed_like_ts(&mut b, &mut pending, &behind[pong_at..], now);
    let e = b.error().expect("the next frame fails authentication");
    assert_eq!(e.code, ErrorCode::InvalidMessage, "{e}");
    assert!(e.message.contains("failed authentication"), "{e}");
}

/// One TCP session of the buffer-bug listener: handshake through `feed_like_ts`, then
/// echo every stream (data back, FIN after FIN).
async fn serve_like_ts(mut tcp: TcpStream, cfg: SessionConfig, dropped: Arc<AtomicUsize>) {
    tcp.set_nodelay(true).unwrap();
    let mut s = Session::new(cfg, Instant::now()).unwrap();
    let mut pending = BytesMut::new();
    let mut streams: Vec<u64> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while let Some(id) = s.accept_stream() {
            streams.push(id);
        }
        streams.retain(|&id| loop {
            match s.read(id, 1 << 20) {
                Ok(ReadOutcome::Data(d)) => {
                    s.write(id, &d).unwrap();
                }
                Ok(ReadOutcome::Finished) => {
                    let _ = s.finish(id);
                    break false;
                }
                Ok(ReadOutcome::Blocked) => break true,
                Err(_) => break false,
            }
        });
        let mut o = Vec::new();
        s.poll_transmit(now, &mut o, 1 << 20);
        if !o.is_empty() && tcp.write_all(&o).await.is_err() {
            return;
        }
        if s.is_closed() {
            return;
        }
        let wait = s.poll_timeout().unwrap_or(now + Duration::from_secs(60));
        tokio::select! {
            r = tcp.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let lost = feed_like_ts(&mut s, &mut pending, &buf[..n], Instant::now());
                    dropped.fetch_add(lost, Ordering::SeqCst);
                }
            },
            _ = tokio::time::sleep_until(wait.into()) => {}
        }
    }
}

/// 200 compat sessions back to back, a real snap2p `Peer` in the TypeScript profile
/// dialing the buffer-bug listener over TCP: every echo comes back, not a byte is dropped.
#[test]
fn two_hundred_sessions_against_the_buffer_bug_listener_lose_none() {
    // Attested outside the runtime (the harness signs on a runtime of its own).
    let listener_side = Arc::new(Side::attested(7, snap2p::unix_now() - 60, 3600));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(two_hundred_sessions(listener_side));
}

async fn two_hundred_sessions(listener_side: Arc<Side>) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let served = {
        let (side, dropped) = (listener_side.clone(), dropped.clone());
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = tcp.accept().await else {
                    return;
                };
                let cfg = ts_config(&side, false, Clock::system());
                tokio::spawn(serve_like_ts(conn, cfg, dropped.clone()));
            }
        })
    };
    let dialer = Peer::ephemeral(PeerConfig::default().with_profile(WireProfile::TypeScript))
        .await
        .unwrap();
    let target = addr.to_string();
    for i in 0..200u32 {
        let conn = tokio::time::timeout(Duration::from_secs(10), dialer.dial(&target))
            .await
            .unwrap_or_else(|_| panic!("session {i}: dial timed out"))
            .unwrap_or_else(|e| panic!("session {i}: {e}"));
        let msg = format!("session {i} through the TypeScript listener's buffer");
        let echo = tokio::time::timeout(Duration::from_secs(10), async {
            let stream = conn.open_stream(Some("echo")).await?;
            stream.write_all(msg.as_bytes()).await?;
            stream.finish()?;
            stream.read_all(1 << 16).await
        })
        .await
        .unwrap_or_else(|_| panic!("session {i}: echo timed out"))
        .unwrap_or_else(|e| panic!("session {i}: {e}"));
        assert_eq!(echo, msg.as_bytes(), "session {i}");
        conn.close(ErrorCode::Ok, "done");
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "bytes read with AUTH_OK");
    dialer.close().await;
    served.abort();
}
