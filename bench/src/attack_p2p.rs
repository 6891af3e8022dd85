//! The rust-libp2p (0.57) side of `snap2p-attack`: a TCP + noise + yamux listener with the
//! library's defaults everywhere (no `connection_limits` behaviour: libp2p sets no cap on
//! pending or established connections unless the application adds one; the transport
//! upgrade timeout is the builder's 10 s), the bytes its attackers send, and an honest
//! dialer that times dial → `ConnectionEstablished` to the identified peer.

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{dummy, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, oneshot};

/// Library defaults: `tcp::Config::default()`, `noise::Config::new`,
/// `yamux::Config::default()`, the default swarm config, and a behaviour with no protocols.
fn swarm() -> Swarm<dummy::Behaviour> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| dummy::Behaviour)
        .expect("behaviour")
        .build()
}

/// The listener child: prints `ADDR <multiaddr>/p2p/<id>`, runs until stdin closes.
pub async fn serve() {
    let mut sw = swarm();
    let id = *sw.local_peer_id();
    sw.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = sw.select_next_some().await {
            println!("ADDR {address}/p2p/{id}");
            break;
        }
    }
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            _ = sw.select_next_some() => {}
            l = stdin.next_line() => if !matches!(l, Ok(Some(_))) { return },
        }
    }
}

/// The TCP address and peer id of a `/ip4/…/tcp/…/p2p/…` multiaddr.
pub fn parse(addr: &str) -> (Multiaddr, PeerId, std::net::SocketAddr) {
    let ma: Multiaddr = addr.parse().expect("multiaddr");
    let id: PeerId = addr.rsplit('/').next().unwrap().parse().expect("peer id");
    let parts: Vec<&str> = addr.split('/').collect();
    let sock = format!("{}:{}", parts[2], parts[4])
        .parse()
        .expect("ip4/tcp multiaddr");
    (ma, id, sock)
}

/// What a half-open attacker sends: multistream-select's header and a `/noise` proposal
/// (each a uvarint-length-prefixed line), then Noise XX message 1 in libp2p-noise framing
/// (2-byte big-endian length, a 32-byte ephemeral key; libp2p sends no payload in it).
/// Pipelined in one write, as libp2p's own dialers do (multistream-select V1Lazy).
pub fn half_open_hello(ephemeral: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in ["/multistream/1.0.0\n", "/noise\n"] {
        out.push(line.len() as u8);
        out.extend_from_slice(line.as_bytes());
    }
    out.extend_from_slice(&[0, 32]);
    out.extend_from_slice(ephemeral);
    out
}

/// Bytes of the listener's answer before Noise message 2: the two multistream lines echoed.
pub const MULTISTREAM_ECHO: usize = 20 + 8;

enum Cmd {
    Dial(oneshot::Sender<Result<f64, String>>),
}

/// An honest libp2p dialer: a swarm task that dials the listener on request.
pub struct Dialer {
    tx: mpsc::Sender<Cmd>,
}

impl Dialer {
    pub fn new(ma: Multiaddr, peer: PeerId) -> Dialer {
        let (tx, mut rx) = mpsc::channel::<Cmd>(64);
        tokio::spawn(async move {
            let mut sw = swarm();
            type Reply = oneshot::Sender<Result<f64, String>>;
            let mut pending: std::collections::HashMap<
                libp2p::swarm::ConnectionId,
                (Instant, Reply),
            > = Default::default();
            loop {
                tokio::select! {
                    cmd = rx.recv() => match cmd {
                        Some(Cmd::Dial(reply)) => {
                            let opts = DialOpts::peer_id(peer)
                                .addresses(vec![ma.clone()])
                                .condition(PeerCondition::Always)
                                .build();
                            let id = opts.connection_id();
                            match sw.dial(opts) {
                                Ok(()) => { pending.insert(id, (Instant::now(), reply)); }
                                Err(e) => { let _ = reply.send(Err(e.to_string())); }
                            }
                        }
                        None => return,
                    },
                    ev = sw.select_next_some() => match ev {
                        SwarmEvent::ConnectionEstablished { connection_id, .. } => {
                            if let Some((t0, reply)) = pending.remove(&connection_id) {
                                let _ = reply.send(Ok(t0.elapsed().as_secs_f64() * 1e3));
                                sw.close_connection(connection_id);
                            }
                        }
                        SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                            if let Some((_, reply)) = pending.remove(&connection_id) {
                                let _ = reply.send(Err(error.to_string()));
                            }
                        }
                        _ => {}
                    }
                }
            }
        });
        Dialer { tx }
    }

    /// One dial: its time to an established (authenticated, multiplexed) connection.
    pub async fn dial(&self, limit: Duration) -> Result<f64, String> {
        let (r, w) = oneshot::channel();
        self.tx
            .send(Cmd::Dial(r))
            .await
            .map_err(|_| "dialer gone".to_string())?;
        match tokio::time::timeout(limit, w).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("dialer gone".into()),
            Err(_) => Err(format!("no connection within {limit:?}")),
        }
    }
}
