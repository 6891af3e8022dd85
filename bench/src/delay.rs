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

#[cfg(feature = "compare")]
/// The same for UDP (the iroh rows: QUIC): datagrams from each client go to `target` from a
/// socket of their own, `one_way` later, and the answers come back to the client as late.
pub async fn udp_relay(target: SocketAddr, one_way: Duration) -> SocketAddr {
    use std::collections::hash_map::{Entry, HashMap};
    use std::sync::Arc;
    use tokio::net::UdpSocket;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

    type Delayed = UnboundedSender<(Instant, Vec<u8>)>;
    /// Sends each datagram on `sock` (to `to`, or where it is connected) `one_way` after
    /// it was stamped, in order.
    fn sender(sock: Arc<UdpSocket>, to: Option<SocketAddr>, one_way: Duration) -> Delayed {
        let (tx, mut rx) = unbounded_channel::<(Instant, Vec<u8>)>();
        tokio::spawn(async move {
            while let Some((at, bytes)) = rx.recv().await {
                tokio::time::sleep_until(at + one_way).await;
                let _ = match to {
                    Some(to) => sock.send_to(&bytes, to).await,
                    None => sock.send(&bytes).await,
                };
            }
        });
        tx
    }

    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("relay bind"));
    let addr = front.local_addr().expect("relay address");
    tokio::spawn(async move {
        let mut clients: HashMap<SocketAddr, Delayed> = HashMap::new();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok((n, from)) = front.recv_from(&mut buf).await {
            let tx = match clients.entry(from) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let Ok(up) = UdpSocket::bind("127.0.0.1:0").await else {
                        continue;
                    };
                    if up.connect(target).await.is_err() {
                        continue;
                    }
                    let up = Arc::new(up);
                    let to_target = sender(up.clone(), None, one_way);
                    let to_client = sender(front.clone(), Some(from), one_way);
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = up.recv(&mut buf).await {
                            if to_client.send((Instant::now(), buf[..n].to_vec())).is_err() {
                                break;
                            }
                        }
                    });
                    e.insert(to_target)
                }
            };
            let _ = tx.send((Instant::now(), buf[..n].to_vec()));
        }
    });
    addr
}
