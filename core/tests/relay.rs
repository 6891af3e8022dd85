//! RELAY-1 on loopback (docs/PROTOCOL.md §32): a relayed session is an ordinary snap2p
//! session end to end (mutual authentication, streams checked by SHA-256); a relay that
//! flips or replays bytes breaks the session with an error and never delivers altered
//! data; a receiver that never reads slows only its own circuit; reservation and circuit
//! floods are refused with the documented codes; byte and duration limits end circuits.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{send_and_check, serve_digest};
use snap2p::relay::codec::{self, RelayMessage};
use snap2p::relay::{Relay, RelayAdmission, RelayConfig, RelayLimits};
use snap2p::{
    Connection, Error, ErrorCode, Peer, PeerConfig, PeerHandle, Principal, ProtocolHandler, Stream,
};
use tokio::time::timeout;

async fn relay_node(config: RelayConfig) -> (Peer, Arc<Relay>, String) {
    let relay = Relay::new(config);
    let p = Peer::builder(PeerConfig::default())
        .relay(relay.clone())
        .build()
        .await
        .unwrap();
    let addr = p.listen("127.0.0.1:0").await.unwrap();
    (p, relay, addr.to_string())
}

/// A peer with a relay client (not serving).
async fn client() -> (Peer, Arc<Relay>) {
    let relay = Relay::new(RelayConfig::default());
    let p = Peer::builder(PeerConfig::default())
        .relay(relay.clone())
        .build()
        .await
        .unwrap();
    (p, relay)
}

/// A peer reserved on `relay_addr`, its relay locator, serving digests.
async fn reserved(relay_addr: &str) -> (Peer, Arc<Relay>, String) {
    let (p, r) = client().await;
    p.listen(&format!("relay://{relay_addr}")).await.unwrap();
    let loc = p
        .listen_locators()
        .into_iter()
        .find(|l| l.scheme().as_str() == "relay")
        .unwrap()
        .to_string();
    (p, r, loc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_session_authenticates_both_and_carries_streams_intact() {
    let (_rp, relay, raddr) = relay_node(RelayConfig::server()).await;
    let (b, b_relay, b_loc) = reserved(&raddr).await;
    assert!(b_loc.ends_with(&b.principal().address()), "{b_loc}");
    let res = b_relay.reservations();
    assert_eq!(res.len(), 1);
    assert!(res[0].active);
    assert!(res[0].observed.is_some(), "the relay tells B its address");
    assert_eq!(relay.stats().reservations, 1);
    let b_accepted = {
        let b = b.clone();
        tokio::spawn(async move {
            let conn = b.accept().await.unwrap();
            let who = conn.remote_principal().clone();
            let transport = conn.stats().transport.to_string();
            tokio::spawn(common::serve_conn(conn));
            (who, transport)
        })
    };
    let (a, _) = client().await;
    let conn = a.dial(&b_loc).await.unwrap();
    assert_eq!(conn.remote_principal(), b.principal());
    assert_eq!(conn.stats().transport.as_str(), "relay");
    let (who, transport) = b_accepted.await.unwrap();
    assert_eq!(&who, a.principal(), "B authenticated A through the relay");
    assert_eq!(transport, "relay");
    // Three streams at once, 2 MiB each, digests checked end to end.
    let mut tasks = Vec::new();
    for seed in 1..=3u32 {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            let s = conn.open_stream(Some("data")).await?;
            send_and_check(&s, 2 << 20, 16 * 1024, seed).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let st = relay.stats();
    assert!(st.bytes_forwarded > 6 << 20, "{st:?}");
    assert_eq!(st.circuits, 1);
    assert_eq!(st.spliced_total, 1, "both sides splice by default (§32.3)");
    // The relay's own sessions are with A and B, not a session between them.
    assert!(_rp
        .connections()
        .iter()
        .all(|c| c.remote_principal() == a.principal() || c.remote_principal() == b.principal()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialing_a_relay_locator_checks_the_named_principal() {
    let (_rp, _relay, raddr) = relay_node(RelayConfig::server()).await;
    let (_b, _, _b_loc) = reserved(&raddr).await;
    let (a, _) = client().await;
    // A principal with no reservation on the relay: refused with ERR_STREAM_REFUSED (20).
    let nobody = snap2p::identity::LocalWallet::generate(snap2p::identity::Network::Mainnet);
    let loc = format!("relay://{raddr}/{}", nobody.principal().address());
    let err = a.dial(&loc).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::StreamRefused, "{err}");
    // A relay locator without a principal is not dialable.
    let err = a.dial(&format!("relay://{raddr}")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument, "{err}");
    // A node that does not serve refuses RESERVE with 20.
    let (plain, _) = client().await;
    let paddr = plain.listen("127.0.0.1:0").await.unwrap();
    let (c, _) = client().await;
    let err = c.listen(&format!("relay://{paddr}")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::StreamRefused, "{err}");
}

// ---------------------------------------------------------------------------------------
// A relay that lies: the real protocol, but it alters the circuit's bytes.

#[derive(Clone, Copy)]
enum Lie {
    /// Flip one bit of the byte at this offset (dialer → target).
    Flip(u64),
    /// Send the chunk that crosses this offset twice (dialer → target).
    Replay(u64),
}

struct LyingRelay {
    lie: Lie,
    reservations: Mutex<HashMap<Principal, Connection>>,
}

#[async_trait::async_trait]
impl ProtocolHandler for LyingRelay {
    async fn accept(
        &self,
        _peer: PeerHandle,
        conn: Connection,
        stream: Stream,
    ) -> Result<(), Error> {
        match codec::read_message(&stream).await? {
            Some(RelayMessage::Reserve) => {
                self.reservations
                    .lock()
                    .unwrap()
                    .insert(conn.remote_principal().clone(), conn.clone());
                let ok = RelayMessage::Status {
                    code: 0,
                    observed: conn.remote_addr(),
                    splice: None,
                };
                codec::write_message(&stream, &ok).await?;
                stream.finish()?;
                while let Ok(Some(_)) = stream.read_chunk(4096).await {}
                Ok(())
            }
            // A relay of streams only: it never offers a splice token, so the circuit
            // stays on the streams it can read and alter (the spliced kind is tested
            // with a tampering proxy below).
            Some(RelayMessage::Connect { target, .. }) => {
                let t = self
                    .reservations
                    .lock()
                    .unwrap()
                    .get(&target)
                    .cloned()
                    .unwrap();
                let out = t.open_stream(Some("relay-1")).await?;
                let inc = RelayMessage::Incoming {
                    source: conn.remote_principal().clone(),
                    observed: None,
                    splice: None,
                };
                codec::write_message(&out, &inc).await?;
                let _ = codec::read_message(&out).await?;
                let ok = RelayMessage::Status {
                    code: 0,
                    observed: None,
                    splice: None,
                };
                codec::write_message(&stream, &ok).await?;
                let lie = self.lie;
                let back = async {
                    while let Ok(Some(c)) = out.read_chunk(65536).await {
                        if stream.write_all(c).await.is_err() {
                            break;
                        }
                    }
                };
                let forth = async {
                    let mut at = 0u64;
                    while let Ok(Some(c)) = stream.read_chunk(4096).await {
                        let n = c.len() as u64;
                        let mut v = c.to_vec();
                        match lie {
                            Lie::Flip(off) if at <= off && off < at + n => {
                                v[(off - at) as usize] ^= 0x01;
                            }
                            Lie::Replay(off) if at <= off && off < at + n => {
                                // The chunk twice; the second write below.
                                let _ = out.write_all(&v).await;
                            }
                            _ => {}
                        }
                        at += n;
                        if out.write_all(v).await.is_err() {
                            break;
                        }
                    }
                };
                // Like a relay, it ends the circuit when either side ends it.
                tokio::select! {
                    _ = back => {}
                    _ = forth => {}
                }
                stream.reset(ErrorCode::ConnectionClosed);
                out.reset(ErrorCode::ConnectionClosed);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

async fn lying_relay_breaks_the_session(lie: Lie) {
    let liar = Arc::new(LyingRelay {
        lie,
        reservations: Mutex::new(HashMap::new()),
    });
    let rp = Peer::builder(PeerConfig::default())
        .protocol("relay-1", liar)
        .build()
        .await
        .unwrap();
    let raddr = rp.listen("127.0.0.1:0").await.unwrap().to_string();
    let (b, _, b_loc) = reserved(&raddr).await;
    altered_circuit_breaks_the_session(b, &b_loc).await;
}

/// A dials B at `b_loc` through a relay path that alters A's bytes: B's stream must end
/// with an error after receiving only an intact prefix, and A's session must end too.
async fn altered_circuit_breaks_the_session(b: Peer, b_loc: &str) {
    // B records what it received; any data that reached B must be exactly what A sent.
    let b_err = {
        let b = b.clone();
        tokio::spawn(async move {
            let conn = b.accept().await.unwrap();
            let s = conn.accept_stream().await.unwrap();
            let mut got = Vec::new();
            let end = loop {
                match s.read_chunk(1 << 20).await {
                    Ok(Some(c)) => got.extend_from_slice(&c),
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            (got, end, conn.closed().await)
        })
    };
    let (a, _) = client().await;
    let conn = a.dial(b_loc).await.unwrap();
    let s = conn.open_stream(Some("data")).await.unwrap();
    let mut sent = Vec::new();
    let mut x = 0u32;
    let mut buf = vec![0u8; 16 * 1024];
    let write_result = async {
        for _ in 0..64 {
            common::pattern(7, &mut buf, &mut x);
            sent.extend_from_slice(&buf);
            s.write_all(&buf[..]).await?;
        }
        s.finish()?;
        Ok::<(), Error>(())
    }
    .await;
    let (got, end, closed) = timeout(Duration::from_secs(20), b_err)
        .await
        .expect("B saw the session end")
        .unwrap();
    assert!(
        end.is_some(),
        "B's stream must end with an error, not a clean finish ({} bytes)",
        got.len()
    );
    assert!(got.len() < sent.len(), "not everything can have arrived");
    assert_eq!(&got[..], &sent[..got.len()], "B received altered data");
    assert_ne!(closed.code, ErrorCode::Ok, "{closed}");
    // A's session ends with an error too (the write or the session).
    let a_closed = timeout(Duration::from_secs(20), conn.closed())
        .await
        .unwrap();
    assert!(
        write_result.is_err() || a_closed.code != ErrorCode::Ok,
        "{a_closed}"
    );
    eprintln!(
        "B got {} of {} bytes intact, then: {closed}; A: {a_closed}",
        got.len(),
        sent.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_flipping_a_byte_breaks_the_session() {
    lying_relay_breaks_the_session(Lie::Flip(200_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_replaying_bytes_breaks_the_session() {
    lying_relay_breaks_the_session(Lie::Replay(200_000)).await;
}

/// A TCP proxy in front of a real relay that alters the spliced connections: every
/// connection after the first `honest` ones gets `lie` applied to its client→relay bytes.
async fn tampering_proxy(relay: &str, honest: usize, lie: Lie) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let relay = relay.to_string();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((client, _)) = l.accept().await else {
                return;
            };
            let server = tokio::net::TcpStream::connect(&relay).await.unwrap();
            let lie = (n >= honest).then_some(lie);
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 4096];
                    let mut at = 0u64;
                    while let Ok(k) = cr.read(&mut buf).await {
                        if k == 0 {
                            break;
                        }
                        let chunk = &mut buf[..k];
                        let end = at + k as u64;
                        match lie {
                            Some(Lie::Flip(off)) if at <= off && off < end => {
                                chunk[(off - at) as usize] ^= 0x01;
                            }
                            Some(Lie::Replay(off)) if at <= off && off < end => {
                                let _ = sw.write_all(chunk).await;
                            }
                            _ => {}
                        }
                        at = end;
                        if sw.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    addr
}

/// The spliced kind of circuit (§32.3): the relay copies raw bytes, so a path that flips
/// or replays them must break the end-to-end session the same way.
async fn altered_splice_breaks_the_session(lie: Lie) {
    let (_rp, relay, raddr) = relay_node(RelayConfig::server()).await;
    // Through the proxy: B's reservation session and A's session to the relay stay
    // honest; the two spliced connections that follow are altered.
    let proxy = tampering_proxy(&raddr, 2, lie).await;
    let (b, _, b_loc) = reserved(&proxy).await;
    altered_circuit_breaks_the_session(b, &b_loc).await;
    assert_eq!(relay.stats().spliced_total, 1, "the circuit was spliced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipping_a_byte_of_a_spliced_circuit_breaks_the_session() {
    altered_splice_breaks_the_session(Lie::Flip(200_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_bytes_of_a_spliced_circuit_breaks_the_session() {
    altered_splice_breaks_the_session(Lie::Replay(200_000)).await;
}

/// Circuits stay on the streams when the relay, the dialer or the target does not splice
/// (an older node, or `RelayConfig::splice` off), and carry data intact either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuits_fall_back_to_streams_when_a_side_does_not_splice() {
    let no_splice = || RelayConfig {
        splice: false,
        ..RelayConfig::default()
    };
    for (relay_splices, dialer_splices, target_splices) in [
        (false, true, true),
        (true, false, true),
        (true, true, false),
        (true, true, true),
    ] {
        let (_rp, relay, raddr) = relay_node(RelayConfig {
            splice: relay_splices,
            ..RelayConfig::server()
        })
        .await;
        let b_relay = Relay::new(if target_splices {
            RelayConfig::default()
        } else {
            no_splice()
        });
        let b = Peer::builder(PeerConfig::default())
            .relay(b_relay)
            .build()
            .await
            .unwrap();
        b.listen(&format!("relay://{raddr}")).await.unwrap();
        serve_digest(&b);
        let a = Peer::builder(PeerConfig::default())
            .relay(Relay::new(if dialer_splices {
                RelayConfig::default()
            } else {
                no_splice()
            }))
            .build()
            .await
            .unwrap();
        let loc = format!("relay://{raddr}/{}", b.principal().address());
        let conn = a.dial(&loc).await.unwrap();
        assert_eq!(conn.stats().transport.as_str(), "relay");
        let s = conn.open_stream(Some("data")).await.unwrap();
        send_and_check(&s, 1 << 20, 16 * 1024, 5).await.unwrap();
        let st = relay.stats();
        let spliced = relay_splices && dialer_splices && target_splices;
        assert_eq!(st.spliced_total, spliced as u64, "{st:?}");
        assert_eq!(st.circuits_total, 1, "{st:?}");
    }
}

/// A SPLICE frame with a token the relay never handed out (a scanner, a replayed token)
/// gets silence and a close, like any first frame that is neither (§5.2), and nothing
/// is forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_splice_with_an_unknown_token_gets_silence() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_rp, relay, raddr) = relay_node(RelayConfig::server()).await;
    for token in [[0u8; 16], rand::random()] {
        let mut tcp = tokio::net::TcpStream::connect(&raddr).await.unwrap();
        tcp.write_all(&codec::encode_splice(&token)).await.unwrap();
        tcp.write_all(b"some bytes for nobody").await.unwrap();
        let mut buf = [0u8; 64];
        let n = timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("closed, not left hanging")
            .unwrap_or(0);
        assert_eq!(n, 0, "no answer: {:?}", &buf[..n]);
    }
    let st = relay.stats();
    assert_eq!((st.bytes_forwarded, st.spliced_total), (0, 0), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_reads_slows_only_its_own_circuit() {
    let (_rp, relay, raddr) = relay_node(RelayConfig::server()).await;
    let (b, _, b_loc) = reserved(&raddr).await;
    let (stuck, _) = client().await;
    let (fine, _) = client().await;
    let stuck_p = stuck.principal().clone();
    {
        let b = b.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(conn) = b.accept().await {
                if *conn.remote_principal() == stuck_p {
                    // Accept its stream and never read it.
                    let s = conn.accept_stream().await.unwrap();
                    held.push((conn, s));
                } else {
                    tokio::spawn(common::serve_conn(conn));
                }
            }
        });
    }
    let c1 = stuck.dial(&b_loc).await.unwrap();
    let s1 = c1.open_stream(Some("never-read")).await.unwrap();
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let written = written.clone();
        tokio::spawn(async move {
            let buf = vec![0x5au8; 64 * 1024];
            while s1.write_all(&buf[..]).await.is_ok() {
                written.fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    // Let the stuck circuit fill every window on the way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stuck_at = written.load(std::sync::atomic::Ordering::Relaxed);
    // The other circuit through the same relay, to the same B, moves 16 MiB.
    let c2 = fine.dial(&b_loc).await.unwrap();
    let t0 = Instant::now();
    let s2 = c2.open_stream(Some("data")).await.unwrap();
    timeout(
        Duration::from_secs(60),
        send_and_check(&s2, 16 << 20, 64 * 1024, 3),
    )
    .await
    .expect("the second circuit kept moving")
    .unwrap();
    let took = t0.elapsed();
    let stuck_now = written.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "stuck writer: {stuck_at} bytes after 2 s, {stuck_now} at the end; other circuit: 16 MiB in {took:?}; relay {:?}",
        relay.stats()
    );
    assert!(
        stuck_now < 8 << 20,
        "a writer whose reader never reads stays bounded by flow control: {stuck_now}"
    );
    assert!(!c1.is_closed(), "the stuck circuit is slow, not broken");
    writer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservation_floods_and_admission_are_refused_with_their_codes() {
    let limits = RelayLimits {
        max_reservations: 2,
        ..RelayLimits::default()
    };
    let (_rp, relay, raddr) = relay_node(RelayConfig {
        serve: true,
        limits,
        ..RelayConfig::default()
    })
    .await;
    let (_b1, _, _) = reserved(&raddr).await;
    let (_b2, _, _) = reserved(&raddr).await;
    let (b3, _) = client().await;
    let err = b3.listen(&format!("relay://{raddr}")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceExhausted, "{err}");
    assert_eq!(relay.stats().reservations, 2);
    assert!(relay.stats().refused >= 1);

    // Allowlist admission: only the listed principal may reserve.
    let (ok_peer, _) = client().await;
    let (_ap, _, aaddr) = relay_node(RelayConfig {
        serve: true,
        admission: RelayAdmission::Allowlist(vec![ok_peer.principal().clone()]),
        ..RelayConfig::default()
    })
    .await;
    ok_peer.listen(&format!("relay://{aaddr}")).await.unwrap();
    let (other, _) = client().await;
    let err = other.listen(&format!("relay://{aaddr}")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotAllowed, "{err}");

    // Rate: 3 requests per minute per principal; the 4th is ERR_RATE_LIMITED.
    let (_qp, _, qaddr) = relay_node(RelayConfig {
        serve: true,
        limits: RelayLimits {
            requests_per_min: 3,
            ..RelayLimits::default()
        },
        ..RelayConfig::default()
    })
    .await;
    let (_t, _, t_loc) = reserved(&qaddr).await;
    let (flooder, _) = client().await;
    let nobody = snap2p::identity::LocalWallet::generate(snap2p::identity::Network::Mainnet);
    let mut codes = Vec::new();
    for _ in 0..4 {
        let loc = format!("relay://{qaddr}/{}", nobody.principal().address());
        codes.push(flooder.dial(&loc).await.unwrap_err().code);
    }
    assert_eq!(
        codes,
        [
            ErrorCode::StreamRefused,
            ErrorCode::StreamRefused,
            ErrorCode::StreamRefused,
            ErrorCode::RateLimited
        ]
    );
    let _ = t_loc;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_floods_and_limits_end_circuits() {
    let limits = RelayLimits {
        max_circuits_per_peer: 2,
        circuit_max_bytes: 1 << 20,
        circuit_max_duration: Duration::from_secs(3),
        ..RelayLimits::default()
    };
    let (_rp, relay, raddr) = relay_node(RelayConfig {
        serve: true,
        limits,
        ..RelayConfig::default()
    })
    .await;
    let (b, _, b_loc) = reserved(&raddr).await;
    serve_digest(&b);
    // Circuit count: each dial of a relay locator is a new circuit (over the one session
    // to the relay); the same principal's third at once is refused with 16.
    let (a, _) = client().await;
    let c1 = a
        .dial_locator(&b_loc.parse().unwrap(), Default::default())
        .await
        .unwrap();
    let c2 = a
        .dial_locator(&b_loc.parse().unwrap(), Default::default())
        .await
        .unwrap();
    let err = a
        .dial_locator(&b_loc.parse().unwrap(), Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceExhausted, "{err}");
    assert_eq!(relay.stats().circuits, 2);
    // Bytes: 1 MiB per circuit; sending 4 MiB breaks the circuit with an error.
    let s = c1.open_stream(Some("data")).await.unwrap();
    let r = timeout(
        Duration::from_secs(20),
        send_and_check(&s, 4 << 20, 64 * 1024, 9),
    )
    .await;
    assert!(
        matches!(r, Ok(Err(_))),
        "over its byte limit the circuit ends"
    );
    timeout(Duration::from_secs(10), c1.closed()).await.unwrap();
    // Duration: 3 s; c2, idle, is closed by the relay's reset shortly after.
    let t0 = Instant::now();
    let why = timeout(Duration::from_secs(15), c2.closed()).await.unwrap();
    eprintln!("c2 closed after {:?} more: {why}", t0.elapsed());
    // Both slots are free again: a new circuit gets in and carries data.
    assert!(common::eventually(Duration::from_secs(5), || relay.stats().circuits == 0).await);
    let c3 = a
        .dial_locator(&b_loc.parse().unwrap(), Default::default())
        .await
        .unwrap();
    let s = c3.open_stream(Some("data")).await.unwrap();
    send_and_check(&s, 256 * 1024, 16 * 1024, 4).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn px1_carries_the_relay_locator_and_dial_by_principal_uses_it() {
    // The relay is an ordinary Public peer (PX-1 on); B reserves on it and pushes its
    // locators, the relay one among them; A asks the relay by principal.
    let (rp, _relay, raddr) = relay_node(RelayConfig::server()).await;
    let (b, _, b_loc) = reserved(&raddr).await;
    serve_digest(&b);
    // B's session to the relay began before its relay listener existed, so its first push
    // named no locator: B pushes again now (PX-1 does not re-push when listeners change).
    let to_relay = b.connections().into_iter().next().unwrap();
    let mine = b.reachable_locators();
    assert!(mine.iter().any(|l| l.to_string() == b_loc), "{mine:?}");
    b.px1()
        .unwrap()
        .push(&to_relay, b.principal(), &mine, 3600)
        .await
        .unwrap();
    let (a, _) = client().await;
    a.dial(&raddr).await.unwrap();
    let target = b.principal().to_string();
    // PX-1 hints arrive asynchronously: retry the dial by principal for a few seconds.
    let mut last = None;
    let mut conn = None;
    for _ in 0..20 {
        match a.dial(&target).await {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let conn = conn.unwrap_or_else(|| panic!("dial by principal failed: {last:?} ({b_loc})"));
    assert_eq!(conn.remote_principal(), b.principal());
    assert_eq!(
        conn.stats().transport.as_str(),
        "relay",
        "reached through the relay"
    );
    let s = conn.open_stream(Some("data")).await.unwrap();
    send_and_check(&s, 1 << 20, 16 * 1024, 11).await.unwrap();
    drop(rp);
}

/// Every peer has a RELAY-1 module from `PeerConfig::relay` (no builder call): a serving
/// one for the relay, client ones for the others; `Peer::relay` shows reservations and
/// counts, and `Peer::hole_punch` replaces the relayed session by a direct one on loopback,
/// named `punch` on both ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_get_a_relay_module_from_their_config_and_punch_through_it() {
    let mut cfg = PeerConfig::default();
    cfg.relay = RelayConfig::server();
    let rp = Peer::builder(cfg).build().await.unwrap();
    let raddr = rp.listen("127.0.0.1:0").await.unwrap();
    let b = Peer::builder(PeerConfig::default()).build().await.unwrap();
    b.listen(&format!("relay://{raddr}")).await.unwrap();
    let res = b.relay().reservations();
    assert_eq!(res.len(), 1);
    assert!(res[0].active);
    assert_eq!(res[0].relay.to_string(), format!("relay://{raddr}"));
    assert_eq!(rp.relay().stats().reservations, 1);
    let a = Peer::builder(PeerConfig::default()).build().await.unwrap();
    // A client module does not serve: RESERVE on A is refused.
    assert_eq!(a.relay().stats(), Default::default());
    let b_side = {
        let b = b.clone();
        tokio::spawn(async move {
            let mut transports = Vec::new();
            for _ in 0..2 {
                let conn = b.accept().await.unwrap();
                transports.push(conn.stats().transport.to_string());
                tokio::spawn(common::serve_conn(conn));
            }
            transports
        })
    };
    let relayed = a
        .dial(&format!("relay://{raddr}/{}", b.principal().address()))
        .await
        .unwrap();
    assert_eq!(relayed.stats().transport.as_str(), "relay");
    let direct = timeout(Duration::from_secs(20), a.hole_punch(&relayed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(direct.stats().transport.as_str(), "punch");
    assert_eq!(direct.remote_principal(), b.principal());
    assert!(!relayed.is_closed(), "the relayed session stays open");
    let s = direct.open_stream(Some("data")).await.unwrap();
    send_and_check(&s, 1 << 20, 16 * 1024, 7).await.unwrap();
    let s = relayed.open_stream(Some("data")).await.unwrap();
    send_and_check(&s, 1 << 20, 16 * 1024, 8).await.unwrap();
    assert_eq!(b_side.await.unwrap(), vec!["relay", "punch"]);
    assert_eq!(rp.relay().stats().circuits_total, 1);
}

/// A relay reached over WebSocket (`relay+ws://host:port/path/SP…`, PROTOCOL.md §32.1):
/// reservation and circuit go through the relay's `ws://` listener, both ends name the
/// session `relay+ws`, and a hole punch still works.
async fn relay_over(relay_peer: Peer, listen: &str, b: Peer, a: Peer, scheme: &str) {
    relay_peer.listen(listen).await.unwrap();
    let ws = relay_peer
        .listen_locators()
        .into_iter()
        .find(|l| l.path() == Some("/relay"))
        .unwrap();
    let base = format!(
        "{scheme}://{}:{}/relay",
        if scheme == "relay+wss" {
            "localhost".to_string()
        } else {
            ws.host().to_string()
        },
        ws.port()
    );
    b.listen(&base).await.unwrap();
    let b_loc = b
        .listen_locators()
        .into_iter()
        .find(|l| l.scheme().as_str() == scheme)
        .unwrap()
        .to_string();
    assert_eq!(b_loc, format!("{base}/{}", b.principal().address()));
    let res = b.relay().reservations();
    assert_eq!(res.len(), 1);
    assert_eq!(res[0].relay.to_string(), base);
    assert!(res[0].active && res[0].observed.is_some(), "{res:?}");
    let b_side = {
        let b = b.clone();
        tokio::spawn(async move {
            let mut transports = Vec::new();
            for _ in 0..2 {
                let conn = b.accept().await.unwrap();
                transports.push(conn.stats().transport.to_string());
                tokio::spawn(common::serve_conn(conn));
            }
            transports
        })
    };
    let relayed = a.dial(&b_loc).await.unwrap();
    assert_eq!(relayed.remote_principal(), b.principal());
    assert_eq!(relayed.stats().transport.as_str(), scheme);
    assert!(snap2p::relay::is_relayed(&relayed.stats().transport));
    let s = relayed.open_stream(Some("data")).await.unwrap();
    send_and_check(&s, 1 << 20, 16 * 1024, 3).await.unwrap();
    assert_eq!(relay_peer.relay().stats().circuits, 1);
    let direct = timeout(Duration::from_secs(20), a.hole_punch(&relayed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(direct.stats().transport.as_str(), "punch");
    let s = direct.open_stream(Some("data")).await.unwrap();
    send_and_check(&s, 1 << 20, 16 * 1024, 4).await.unwrap();
    assert_eq!(b_side.await.unwrap(), vec![scheme, "punch"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_reached_over_websocket() {
    let mut cfg = PeerConfig::default();
    cfg.relay = RelayConfig::server();
    let rp = Peer::builder(cfg).build().await.unwrap();
    let b = Peer::builder(PeerConfig::default()).build().await.unwrap();
    let a = Peer::builder(PeerConfig::default()).build().await.unwrap();
    relay_over(rp, "ws://127.0.0.1:0/relay", b, a, "relay+ws").await;
}

#[cfg(feature = "wss")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_reached_over_wss_checks_its_certificate() {
    use snap2p::transport::{WsConfig, WsTransport};
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let server_ws = WsConfig::default()
        .with_tls_identity_der(vec![leaf.der().to_vec()], leaf_key.serialize_der());
    let mut cfg = PeerConfig::default();
    cfg.relay = RelayConfig::server();
    let rp = Peer::builder(cfg)
        .transport(Arc::new(WsTransport::new(server_ws).unwrap()))
        .build()
        .await
        .unwrap();
    let client = || async {
        let ws = WsConfig::default().with_root_der(ca.der().to_vec());
        Peer::builder(PeerConfig::default())
            .transport(Arc::new(WsTransport::new(ws).unwrap()))
            .build()
            .await
            .unwrap()
    };
    // A peer that does not trust the relay's CA cannot reserve there.
    let stranger = Peer::builder(PeerConfig::default()).build().await.unwrap();
    let (b, a) = (client().await, client().await);
    rp.listen("wss://127.0.0.1:0/relay").await.unwrap();
    let port = rp.listen_locators()[0].port();
    let err = stranger
        .listen(&format!("relay+wss://localhost:{port}/relay"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::HandshakeFailed, "{err}");
    relay_over(rp, "127.0.0.1:0", b, a, "relay+wss").await;
}

/// A spliced relayed session has the relay's address as its remote address too: the
/// next circuit, after the session with the relay itself is gone, must dial the relay
/// again, not send its CONNECT to the peer at the other end of the spliced session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_circuit_goes_to_the_relay_not_to_a_relayed_peer() {
    let (rp, relay, raddr) = relay_node(RelayConfig::server()).await;
    let (b, _, b_loc) = reserved(&raddr).await;
    let (c, _, c_loc) = reserved(&raddr).await;
    serve_digest(&b);
    serve_digest(&c);
    let (a, _) = client().await;
    let to_b = a.dial(&b_loc).await.unwrap();
    assert_eq!(relay.stats().spliced_total, 1);
    // A's session with the relay goes; the spliced session with B, on a connection of its
    // own, stays.
    let raddr_sock: std::net::SocketAddr = raddr.parse().unwrap();
    for conn in a.connections() {
        if conn.stats().transport.as_str() == "tcp" && conn.remote_addr() == Some(raddr_sock) {
            conn.close(ErrorCode::Ok, "gone");
            timeout(Duration::from_secs(10), conn.closed())
                .await
                .unwrap();
        }
    }
    assert!(!to_b.is_closed());
    assert_eq!(
        to_b.remote_addr(),
        Some(raddr_sock),
        "the premise: same remote address"
    );
    let to_c = timeout(Duration::from_secs(20), a.dial(&c_loc))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(to_c.remote_principal(), c.principal());
    assert_eq!(relay.stats().circuits_total, 2);
    let s = to_c.open_stream(Some("data")).await.unwrap();
    send_and_check(&s, 256 * 1024, 16 * 1024, 5).await.unwrap();
    drop(rp);
}
