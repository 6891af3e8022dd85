//! A proxy of our own that flips one byte in flight: the receiving session must close with
//! an error code, and no altered byte may reach the application (the digest the server
//! computes over what it delivered is never produced for altered data).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use snap2p::{ErrorCode, PeerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// Forwards one connection; in the client->server direction flips bit `bit` of the byte
/// at offset `at` (counted from the first byte the client sent).
async fn flipping_proxy(target: std::net::SocketAddr, at: u64, bit: u8) -> std::net::SocketAddr {
    one_shot_proxy(target, move |mut ir, mut ow| async move {
        let mut buf = vec![0u8; 65536];
        let mut off = 0u64;
        while let Ok(n) = ir.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if at >= off && at < off + n as u64 {
                buf[(at - off) as usize] ^= 1 << bit;
            }
            off += n as u64;
            if ow.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_closes_the_session_and_delivers_nothing_bad() {
    timeout(Duration::from_secs(120), async {
        // Offsets: inside the Noise handshake, inside the auth messages, and deep in the
        // data stream (several places, several bits).
        let offsets: [(u64, u8); 8] = [
            (5, 0),
            (40, 7),
            (150, 3),
            (400, 1),
            (5_000, 6),
            (100_000, 2),
            (700_000, 0),
            (1_500_000, 5),
        ];
        for (at, bit) in offsets {
            let server = peer(PeerConfig::default()).await;
            let addr = server.listen("127.0.0.1:0").await.unwrap();
            // Count what the application is handed, and check it is the pattern.
            let delivered = Arc::new(AtomicU64::new(0));
            let bad = Arc::new(AtomicU64::new(0));
            let (d2, b2, s2) = (delivered.clone(), bad.clone(), server.clone());
            let mut server_closed = tokio::spawn(async move {
                let conn = s2.accept().await?;
                let st = conn.accept_stream().await.ok();
                if let Some(st) = st {
                    let mut expect = vec![0u8; 0];
                    let mut x = 0u32;
                    while let Ok(Some(c)) = st.read_chunk(1 << 20).await {
                        expect.resize(c.len(), 0);
                        pattern(9, &mut expect, &mut x);
                        if c[..] != expect[..] {
                            b2.fetch_add(1, Ordering::SeqCst);
                        }
                        d2.fetch_add(c.len() as u64, Ordering::SeqCst);
                    }
                }
                Some(conn.closed().await)
            });
            let proxy = flipping_proxy(addr, at, bit).await;
            let client = peer(PeerConfig::default()).await;
            let t0 = Instant::now();
            let mut dialed = false;
            let e: snap2p::Error = match client.dial(&proxy.to_string()).await {
                Err(e) => e,
                Ok(conn) => {
                    dialed = true;
                    let s = conn.open_stream(None).await.unwrap();
                    let r = send_and_check(&s, 2_000_000, 16 * 1024, 9).await;
                    assert!(r.is_err(), "transfer with a flipped byte at {at} succeeded");
                    conn.closed().await
                }
            };
            let took = t0.elapsed();
            // When the handshake itself failed the server never accepts a session: give it
            // a short while, then stop waiting.
            let wait = if dialed { Duration::from_secs(20) } else { Duration::from_secs(2) };
            let server_side = timeout(wait, &mut server_closed).await;
            server_closed.abort();
            let server_code = match server_side {
                Ok(Ok(Some(e))) => Some(e.code),
                _ => None, // the handshake failed before a session existed
            };
            if !dialed {
                assert!(server.connections().is_empty(), "flip at {at}: server kept a session");
            }
            assert_eq!(bad.load(Ordering::SeqCst), 0, "altered bytes reached the application");
            if at >= 5_000 {
                // Inside transport frames: the server's AEAD check fails with a code.
                assert_eq!(server_code, Some(ErrorCode::InvalidMessage), "flip at {at}");
                assert!(delivered.load(Ordering::SeqCst) < 2_000_000);
            }
            assert_ne!(e.code, ErrorCode::Internal, "{e}");
            eprintln!(
                "RESULT bit flip at byte {at} bit {bit}: client saw {:?}, server closed with {:?}, {} good bytes delivered before, {} ms",
                e.code,
                server_code,
                delivered.load(Ordering::SeqCst),
                took.as_millis()
            );
        }
    })
    .await
    .unwrap();
}
