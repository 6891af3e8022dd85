//! Dropping a stream whose peer is still sending: what this side wrote before the drop
//! still arrives whole (PROTOCOL.md §6.2), and the peer's writer gets a clear end instead
//! of hanging. Before, the drop reset the stream at once, and the reset overtook (and made
//! the peer discard) a reply written and finished just before it.

mod common;

use std::time::Duration;

use common::{pattern, peer};
use snap2p::{ErrorCode, PeerConfig};
use tokio::time::timeout;

fn bytes(seed: u32, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    let mut x = 0;
    pattern(seed, &mut v, &mut x);
    v
}

/// A server that reads only the first chunk of each stream, answers `reply` bytes,
/// finishes and drops the stream (a request parser that saw enough, say).
async fn half_reading_server(reply: usize) -> (snap2p::Peer, std::net::SocketAddr) {
    let server = peer(PeerConfig::default()).await;
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    let s = server.clone();
    tokio::spawn(async move {
        while let Some(conn) = s.accept().await {
            tokio::spawn(async move {
                while let Ok(stream) = conn.accept_stream().await {
                    tokio::spawn(async move {
                        let _first = stream.read_chunk(1024).await;
                        stream.write_all(&bytes(7, reply)[..]).await.unwrap();
                        stream.finish().unwrap();
                        drop(stream);
                    });
                }
            });
        }
    });
    (server, addr)
}

async fn exchange(reply: usize, request: usize) {
    let (_server, addr) = half_reading_server(reply).await;
    let client = peer(PeerConfig::default()).await;
    let conn = client.dial(&addr.to_string()).await.unwrap();
    let stream = conn.open_stream(Some("req")).await.unwrap();
    let writer = {
        let stream = stream.clone();
        tokio::spawn(async move {
            let body = bytes(3, request);
            let r = stream.write_all(&body[..]).await;
            let _ = stream.finish();
            r
        })
    };
    let got = timeout(Duration::from_secs(20), stream.read_all(64 << 20))
        .await
        .expect("the reply never ended")
        .expect("the reply was cut by a reset");
    assert_eq!(got.len(), reply, "reply length");
    assert!(got == bytes(7, reply), "reply bytes differ");
    // The request's writer ends: every byte taken, or told the stream is closed.
    let w = timeout(Duration::from_secs(20), writer)
        .await
        .expect("the writer hung")
        .unwrap();
    if let Err(e) = w {
        assert_eq!(e.code, ErrorCode::StreamClosed, "{e}");
    }
    // The session is still fine for the next stream.
    let s2 = conn.open_stream(Some("req")).await.unwrap();
    s2.write_all(&b"x"[..]).await.unwrap();
    s2.finish().unwrap();
    let again = timeout(Duration::from_secs(20), s2.read_all(64 << 20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.len(), reply);
}

#[tokio::test]
async fn a_small_reply_written_before_the_drop_arrives_whole() {
    exchange(10_000, 4 << 20).await;
}

#[tokio::test]
async fn a_reply_larger_than_the_window_arrives_whole() {
    // 1 MiB: more than one stream window (256 KiB), so part of it is still queued at
    // the drop and must be sent after it.
    exchange(1 << 20, 4 << 20).await;
}

#[tokio::test]
async fn a_short_request_and_a_reply_also_work() {
    // The request fits the first chunk: the server's side of the stream may or may not
    // have seen the FIN when it drops; either way the reply arrives.
    exchange(100_000, 100).await;
}
