//! A TCP relay on loopback that delays data by a fixed time each way: each chunk is
//! written `one_way` after it was read, so round trips cost what they would on a link of
//! that latency. The `rtt` workload dials through it to count a handshake's round trips
//! (docs/proposals/0001-two-round-trip-handshake.md). Only data is delayed: the dialer's
//! TCP connect to the relay is immediate.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Starts the relay in front of `target`; its address. It runs until the runtime ends.
pub async fn relay(target: SocketAddr, one_way: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay bind");
    let addr = listener.local_addr().expect("relay address");
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (ir, iw) = inbound.into_split();
                let (or, ow) = outbound.into_split();
                tokio::spawn(pipe(ir, ow, one_way));
                pipe(or, iw, one_way).await;
            });
        }
    });
    addr
}

/// Copies `from` to `to`, each chunk `delay` after it was read: a reader task stamps the
/// chunks, this task writes each at its time, so chunks keep their spacing (a sleep per
/// chunk in one loop would add the delays up).
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    while let Some((at, bytes)) = rx.recv().await {
        tokio::time::sleep_until(at + delay).await;
        if to.write_all(&bytes).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
