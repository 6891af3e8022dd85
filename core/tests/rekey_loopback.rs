//! Rekey (capability `rekey`, docs/PROTOCOL.md §7.1) between real peers over loopback TCP:
//! small thresholds, so 64 MiB each way go through hundreds of key switches per direction,
//! every byte checked by SHA-256; and an older peer without the capability, which never
//! gets a REKEY and keeps working.

mod common;

use std::time::{Duration, Instant};

use common::{pattern, peer, send_and_check, RawIdentity, RawSession};
use sha2::{Digest, Sha256};
use snap2p::unstable::wire::message::caps;
use snap2p::unstable::ReadOutcome;
use snap2p::{Connection, PeerConfig, SessionLimits};
use tokio::sync::mpsc;
use tokio::time::timeout;

const MIB: u64 = 1024 * 1024;

fn small_rekey_limits() -> SessionLimits {
    let mut l = SessionLimits::default();
    l.rekey_after_bytes = 256 * 1024;
    l.rekey_after_frames = 64;
    l.rekey_interval = Some(Duration::from_millis(100));
    l
}

/// Serves each stream: label `pull` reads an 8-byte little-endian length and sends that
/// many pattern bytes (seed 77); any other label is read to its end and answered with
/// SHA-256 ‖ byte count.
async fn serve(conn: Connection) {
    while let Ok(stream) = conn.accept_stream().await {
        tokio::spawn(async move {
            if stream.label() == Some("pull") {
                let req = stream.read_all(8).await.unwrap();
                let total = u64::from_le_bytes(req[..8].try_into().unwrap());
                let (mut buf, mut x, mut sent) = (vec![0u8; 64 * 1024], 0u32, 0u64);
                while sent < total {
                    let n = ((total - sent) as usize).min(buf.len());
                    pattern(77, &mut buf[..n], &mut x);
                    stream.write_all(&buf[..n]).await.unwrap();
                    sent += n as u64;
                }
                stream.finish().unwrap();
                return;
            }
            let (mut h, mut n) = (Sha256::new(), 0u64);
            while let Ok(Some(chunk)) = stream.read_chunk(1 << 20).await {
                n += chunk.len() as u64;
                h.update(&chunk);
            }
            let mut out = h.finalize().to_vec();
            out.extend_from_slice(&n.to_le_bytes());
            let _ = stream.write_all(&out).await;
            let _ = stream.finish();
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_rekeys_each_way_over_tcp_with_matching_sha256() {
    timeout(Duration::from_secs(300), async {
        let cfg = PeerConfig::default().with_limits(small_rekey_limits());
        let server = peer(cfg.clone()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = server.clone();
        tokio::spawn(async move {
            while let Some(conn) = s.accept().await {
                let _ = tx.send(conn.clone());
                tokio::spawn(serve(conn));
            }
        });
        let client = peer(cfg).await;
        let conn = client.dial(&addr.to_string()).await.unwrap();
        let total = 64 * MIB;
        // Client → server: 64 MiB, SHA-256 checked by the server's reply.
        let push = {
            let conn = conn.clone();
            tokio::spawn(async move {
                let s = conn.open_stream(Some("push")).await.unwrap();
                send_and_check(&s, total, 64 * 1024, 5).await.unwrap();
            })
        };
        // Server → client at the same time: 64 MiB, SHA-256 checked here.
        let s = conn.open_stream(Some("pull")).await.unwrap();
        s.write_all(&total.to_le_bytes()).await.unwrap();
        s.finish().unwrap();
        let (mut expect, mut got) = (Sha256::new(), Sha256::new());
        let (mut buf, mut x, mut n) = (vec![0u8; 1 << 20], 0u32, 0u64);
        while let Some(chunk) = s.read_chunk(1 << 20).await.unwrap() {
            got.update(&chunk);
            pattern(77, &mut buf[..chunk.len()], &mut x);
            expect.update(&buf[..chunk.len()]);
            n += chunk.len() as u64;
        }
        assert_eq!(n, total);
        assert_eq!(got.finalize(), expect.finalize(), "pulled bytes altered");
        push.await.unwrap();
        let ci = conn.info();
        let server_conn = rx.recv().await.unwrap();
        let si = server_conn.info();
        println!(
            "client rekeys sent {} received {}; server sent {} received {}",
            ci.rekeys_sent, ci.rekeys_received, si.rekeys_sent, si.rekeys_received
        );
        // A key seals under 256 KiB + one 64 KiB frame: 64 MiB need at least 204 keys.
        assert!(ci.rekeys_sent >= 204, "{ci:?}");
        assert!(si.rekeys_sent >= 204, "{si:?}");
        // Every REKEY sent has been heard (nothing is in flight after both replies).
        assert_eq!(ci.rekeys_sent, si.rekeys_received);
        assert_eq!(si.rekeys_sent, ci.rekeys_received);
        assert!(conn
            .info()
            .remote_capabilities
            .iter()
            .any(|c| c == caps::REKEY));
    })
    .await
    .unwrap();
}

/// A dialer that does not list `rekey` (an older snap2p): the listener, on thresholds it
/// would cross many times over, never sends it a REKEY (the dialer would fail the session
/// with ERR_INVALID_MESSAGE if it did), and 4 MiB arrive intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_peer_without_the_capability_never_gets_rekey_over_tcp() {
    timeout(Duration::from_secs(120), async {
        let mut limits = SessionLimits::default();
        limits.rekey_after_bytes = 4096;
        limits.rekey_after_frames = 2;
        limits.rekey_interval = Some(Duration::from_millis(10));
        let server = peer(PeerConfig::default().with_limits(limits.clone())).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = server.clone();
        tokio::spawn(async move {
            while let Some(conn) = s.accept().await {
                let _ = tx.send(conn.clone());
                tokio::spawn(serve(conn));
            }
        });
        let id = RawIdentity::new().await;
        let mut cfg = id.dialer_config(None);
        cfg.capabilities.retain(|c| c != caps::REKEY);
        cfg.limits = std::sync::Arc::new(limits);
        let mut raw = RawSession::dial(addr, cfg).await.unwrap();
        let sid = raw.s.open_stream(Some("push")).unwrap();
        let (total, mut sent, mut x) = (4 * MIB as usize, 0usize, 0u32);
        let mut h = Sha256::new();
        let mut chunk = vec![0u8; 32 * 1024];
        let mut pending = 0usize;
        let deadline = Instant::now() + Duration::from_secs(60);
        while sent < total {
            assert!(Instant::now() < deadline, "raw transfer stalled");
            if pending == 0 {
                pending = chunk.len().min(total - sent);
                pattern(3, &mut chunk[..pending], &mut x);
                h.update(&chunk[..pending]);
            }
            let off = chunk.len().min(total - sent) - pending;
            let n = raw.s.write(sid, &chunk[off..off + pending]).unwrap();
            pending -= n;
            sent += n;
            raw.step(Duration::from_millis(5)).await;
            assert!(raw.s.error().is_none(), "{:?}", raw.s.error());
        }
        raw.s.finish(sid).unwrap();
        let mut reply = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "no digest reply");
            raw.step(Duration::from_millis(20)).await;
            assert!(raw.s.error().is_none(), "{:?}", raw.s.error());
            match raw.s.read(sid, 1024).unwrap() {
                ReadOutcome::Data(d) => reply.extend_from_slice(&d),
                ReadOutcome::Finished => break,
                ReadOutcome::Blocked => {}
            }
        }
        assert_eq!(&reply[..32], &h.finalize()[..]);
        assert_eq!(
            u64::from_le_bytes(reply[32..40].try_into().unwrap()),
            total as u64
        );
        let server_conn = rx.recv().await.unwrap();
        let si = server_conn.info();
        assert_eq!((si.rekeys_sent, si.rekeys_received), (0, 0), "{si:?}");
        let ri = raw.s.info();
        assert_eq!((ri.rekeys_sent, ri.rekeys_received), (0, 0));
    })
    .await
    .unwrap();
}
