//! Admission under attack (issue 35), over real loopback sockets: the attacker's sockets are
//! bound to 127.0.0.2, honest dialers come from 127.0.0.1 (and, for the stealth cases, from
//! 127.0.0.2 too: a NAT shared with the attacker). Three attacks, each reopening every
//! connection the listener cuts:
//!
//! - a reconnecting slowloris: 1,000 connections that send one byte and stall;
//! - a half-open Noise flood: 1,000 connections that send a well-formed Noise XX message 1,
//!   read message 2 and stall;
//! - a KNOCK flood with invalid invite tokens against a stealth listener (and a slowloris
//!   against one).
//!
//! During each (once every attacking connection has been opened once), 100 honest dials:
//! at least 99% must authenticate, with a p99 time to authenticated under 1 s (the
//! issue's acceptance criteria, not a speed target). Then the attacker stops reopening and
//! leaves its last connections stalled: the listener must cut them (its table of pending
//! handshakes drains, descriptors come back) and still serve honest dials.
//!
//! The listener runs on its own tokio runtime and the attacker on another, so the OS splits
//! the two cores between them, the test's honest dialers and the listener as it would
//! between processes; one runtime would let 1,000 attacker tasks queue ahead of the
//! listener's. The tests of this file measure process-wide descriptors, so they run one at
//! a time.

mod common;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::{connect_from, fd_count, read_frame, rss_kib, wait_closed};
use snap2p::transport::TcpTransport;
use snap2p::unstable::wire::frame;
use snap2p::unstable::wire::message::Message;
use snap2p::{Connection, DialOptions, Error, ErrorCode, Peer, PeerConfig, Visibility};
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::timeout;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Attacking connections held (and reopened) at once.
const WORKERS: usize = 1000;
const HONEST_DIALS: usize = 100;
const HONEST_CONCURRENCY: usize = 4;
/// The deadline of a handshake's first frame and of each further step
/// (`SessionLimits::first_frame_timeout` and `handshake_step_timeout`, 3 s by default).
const STEP_DEADLINE: Duration = Duration::from_secs(3);
/// Slack on a deadline for a loaded 2-core machine (timers are late when the CPU is busy;
/// the whole-handshake timeout, 10 s, stays well outside deadline + slack).
const SLACK: Duration = Duration::from_secs(3);

fn runtime(slot: &'static OnceLock<Runtime>, name: &str) -> &'static Runtime {
    slot.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The listener's runtime (kept for the whole test binary: a runtime cannot be dropped
/// from async code).
fn listener_rt() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    runtime(&RT, "listener")
}

fn attacker_rt() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    runtime(&RT, "attacker")
}

/// A listening peer on 127.0.0.1 on the listener runtime that accepts every session.
async fn listener(cfg: PeerConfig) -> (Peer, SocketAddr) {
    listener_on(cfg, "127.0.0.1:0").await
}

/// A listener on `locator` (`127.0.0.1:0`, or `ws://127.0.0.1:0/…` for the WebSocket
/// transport, which sits behind the same admission).
async fn listener_on(cfg: PeerConfig, locator: &'static str) -> (Peer, SocketAddr) {
    listener_rt()
        .spawn(async move {
            let peer = Peer::ephemeral(cfg).await.unwrap();
            let addr = peer.listen(locator).await.unwrap();
            let p = peer.clone();
            tokio::spawn(async move {
                while let Some(conn) = p.accept().await {
                    // Authenticated sessions are the dialer's to close.
                    tokio::spawn(async move {
                        conn.closed().await;
                    });
                }
            });
            (peer, addr)
        })
        .await
        .unwrap()
}

/// Closes a listener on its runtime (its accept task holds a clone).
async fn close(server: Peer) {
    listener_rt()
        .spawn(async move { server.close().await })
        .await
        .unwrap();
}

fn stealth_config() -> PeerConfig {
    let mut c = PeerConfig::default();
    c.visibility = Visibility::Stealth;
    // Any invite holder may in (no allowlist): the test is about admission.
    c.allowlist_gate = Some(false);
    c
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// One byte (a frame length announcing 32 bytes), then nothing.
    Slowloris,
    /// Noise XX message 1 (a random 32-byte ephemeral), read message 2, then nothing.
    NoiseHalfOpen,
    /// A KNOCK with a random (invalid) invite token, then nothing.
    Knock,
    /// To a WebSocket listener: the start of an HTTP upgrade request, then nothing.
    WsSlowloris,
}

#[derive(Default)]
struct Counters {
    opened: AtomicUsize,
    connect_failed: AtomicUsize,
    /// Connections the listener closed (EOF or reset).
    cut: AtomicUsize,
    /// Noise message 2 received (the listener did the DH work for the attacker).
    msg2: AtomicUsize,
    /// Connections still open after `HOLD_BOUND`.
    never_cut: AtomicUsize,
    /// Longest a connection was held open, connect to cut (ms).
    max_hold_ms: AtomicUsize,
    /// Workers that opened their first connection.
    ramped: AtomicUsize,
}

/// The longest an attacking connection waits to be cut before it counts as never cut.
const HOLD_BOUND: Duration = Duration::from_secs(20);

struct Attack {
    kind: Kind,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    ramped: Arc<Notify>,
    workers: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Attack {
    /// Starts `WORKERS` attacking loops from 127.0.0.2 on the attacker runtime.
    fn start(kind: Kind, target: SocketAddr) -> Attack {
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = watch::channel(false);
        let ramped = Arc::new(Notify::new());
        let workers = (0..WORKERS)
            .map(|_| {
                let (c, rx, ramped) = (counters.clone(), stop_rx.clone(), ramped.clone());
                attacker_rt().spawn(attack_loop(kind, target, c, rx, ramped))
            })
            .collect();
        Attack {
            kind,
            counters,
            stop,
            ramped,
            workers,
            started: Instant::now(),
        }
    }

    /// Waits until every worker has opened its first connection (bounded).
    async fn ramp_up(&self) {
        let ramped = timeout(Duration::from_secs(20), self.ramped.notified()).await;
        assert!(
            ramped.is_ok(),
            "{:?}: only {} of {WORKERS} attacking connections opened in 20 s",
            self.kind,
            self.counters.ramped.load(Ordering::Relaxed)
        );
    }

    /// Stops reopening; the last connections stay stalled until the listener cuts them.
    /// Returns how long the listener took to cut them all.
    async fn stop_and_drain(self) -> (Duration, Arc<Counters>) {
        self.stop.send_replace(true);
        let t0 = Instant::now();
        for w in self.workers {
            // Each worker ends once its last connection is cut, or after HOLD_BOUND.
            timeout(HOLD_BOUND + Duration::from_secs(10), w)
                .await
                .expect("an attack worker did not end")
                .unwrap();
        }
        (t0.elapsed(), self.counters)
    }
}

async fn attack_loop(
    kind: Kind,
    target: SocketAddr,
    c: Arc<Counters>,
    stop: watch::Receiver<bool>,
    ramped: Arc<Notify>,
) {
    let mut first = true;
    // Bounded in time: the whole test file is a minute.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !*stop.borrow() && Instant::now() < deadline {
        let mut s = match timeout(Duration::from_secs(5), connect_from(ATTACKER, target)).await {
            Ok(Ok(s)) => s,
            _ => {
                c.connect_failed.fetch_add(1, Ordering::Relaxed);
                // The attacker's pacing when the listener's accept queue is full.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let t0 = Instant::now();
        c.opened.fetch_add(1, Ordering::Relaxed);
        if first {
            first = false;
            if c.ramped.fetch_add(1, Ordering::Relaxed) + 1 == WORKERS {
                ramped.notify_one();
            }
        }
        let mut out = Vec::new();
        match kind {
            Kind::Slowloris => out.push(0x20),
            Kind::WsSlowloris => {
                out.extend_from_slice(b"GET /snap2p HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            }
            Kind::NoiseHalfOpen => frame::write_frame(&mut out, &rand::random::<[u8; 32]>()),
            Kind::Knock => {
                let token = rand::random::<[u8; 32]>();
                let nonce = rand::random::<[u8; 16]>();
                let knock = Message::Knock {
                    version: 1,
                    nonce: &nonce,
                    token: &token,
                }
                .to_vec();
                frame::write_frame(&mut out, &knock);
            }
        }
        if s.write_all(&out).await.is_err() {
            c.cut.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if kind == Kind::NoiseHalfOpen {
            let mut buf = bytes::BytesMut::new();
            match read_frame(&mut s, &mut buf, HOLD_BOUND).await {
                Some(m2) if m2.len() == 96 => {
                    c.msg2.fetch_add(1, Ordering::Relaxed);
                }
                // A refusal (AUTH_FAIL) or a cut: wait for the close below.
                _ => {}
            }
        }
        match wait_closed(&mut s, HOLD_BOUND.saturating_sub(t0.elapsed())).await {
            Some(_) => {
                c.cut.fetch_add(1, Ordering::Relaxed);
                let held = t0.elapsed().as_millis() as usize;
                c.max_hold_ms.fetch_max(held, Ordering::Relaxed);
            }
            None => {
                c.never_cut.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

type DialFn = Arc<
    dyn Fn(usize) -> Pin<Box<dyn Future<Output = Result<Connection, Error>> + Send>> + Send + Sync,
>;

struct Honest {
    ok: usize,
    failed: usize,
    /// Failure codes seen, with counts.
    codes: Vec<(String, usize)>,
    /// Each successful dial's milliseconds and source label.
    lat_ms: Vec<(f64, &'static str)>,
    /// Successful dials per source label.
    by_source: Vec<(&'static str, usize, usize)>,
}

impl Honest {
    fn rate(&self) -> f64 {
        self.ok as f64 / (self.ok + self.failed) as f64 * 100.0
    }

    fn pct(&self, p: f64) -> f64 {
        let mut v: Vec<f64> = self.lat_ms.iter().map(|(ms, _)| *ms).collect();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[(((p / 100.0) * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)]
    }
}

/// `n` honest dials, `HONEST_CONCURRENCY` at a time; dial `i` comes from `source(i)`. A
/// failed dial counts as a failure, not as a latency.
async fn honest_dials(n: usize, dial: DialFn, source: fn(usize) -> &'static str) -> Honest {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..HONEST_CONCURRENCY {
        let (next, dial) = (next.clone(), dial.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return out;
                }
                let t0 = Instant::now();
                let r = match timeout(Duration::from_secs(15), dial(i)).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::new(ErrorCode::Timeout, "test: dial took > 15 s")),
                };
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                if let Ok(conn) = &r {
                    conn.close(ErrorCode::Ok, "done");
                }
                out.push((i, r.map(|_| ms)));
            }
        }));
    }
    let mut h = Honest {
        ok: 0,
        failed: 0,
        codes: Vec::new(),
        lat_ms: Vec::new(),
        by_source: Vec::new(),
    };
    for t in tasks {
        for (i, r) in t.await.unwrap() {
            let src = source(i);
            let slot = match h.by_source.iter().position(|(s, _, _)| *s == src) {
                Some(p) => p,
                None => {
                    h.by_source.push((src, 0, 0));
                    h.by_source.len() - 1
                }
            };
            match r {
                Ok(ms) => {
                    h.ok += 1;
                    h.by_source[slot].1 += 1;
                    h.lat_ms.push((ms, src));
                }
                Err(e) => {
                    h.failed += 1;
                    h.by_source[slot].2 += 1;
                    let key = e.to_string();
                    match h.codes.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, c)) => *c += 1,
                        None => h.codes.push((key, 1)),
                    }
                }
            }
        }
    }
    h
}

/// A peer whose dials leave from the attacker's address (a NAT it shares with the
/// attacker), through the product's own dial path: `TcpTransport::local_ip` picks the
/// source, and `Peer::dial_with` retries a listener that sheds load, as every language's
/// dial does.
async fn nat_client() -> Peer {
    let tcp = TcpTransport::default().with_local_ip(ATTACKER.into());
    Peer::builder(PeerConfig::default())
        .transport(Arc::new(tcp))
        .build()
        .await
        .unwrap()
}

/// One attack against `server`: ramp up, honest dials, stop, drain, honest dials again.
async fn run_case(
    name: &str,
    kind: Kind,
    server: SocketAddr,
    dial: DialFn,
    source: fn(usize) -> &'static str,
) {
    // Warm-up dial (and the baseline after it): the first dial pays for lazily built state.
    let warm = dial(usize::MAX)
        .await
        .expect("warm-up dial before the attack");
    warm.close(ErrorCode::Ok, "done");
    let _ = timeout(Duration::from_secs(2), warm.closed()).await;
    let (fd0, rss0) = (fd_count(), rss_kib());

    let overflows0 = listen_overflows();
    let attack = Attack::start(kind, server);
    attack.ramp_up().await;
    let ramp = attack.started.elapsed();
    let during = honest_dials(HONEST_DIALS, dial.clone(), source).await;
    let opened_during = attack.counters.opened.load(Ordering::Relaxed);
    let attack_secs = attack.started.elapsed().as_secs_f64();
    let rss_peak = rss_kib();
    let (drain, c) = attack.stop_and_drain().await;
    let overflows = listen_overflows().saturating_sub(overflows0);
    // Every attacking socket is closed now (its worker ended); the listener's side of each
    // pending handshake must be gone too. No signal exists for a descriptor count: poll.
    let fds_back = eventually(Duration::from_secs(5), || fd_count() <= fd0 + 16).await;
    let fd1 = fd_count();
    let after = honest_dials(10, dial.clone(), source).await;

    let by_source: Vec<String> = during
        .by_source
        .iter()
        .map(|(s, ok, bad)| format!("{s} {ok}/{}", ok + bad))
        .collect();
    eprintln!(
        "RESULT {name}: honest {}/{} ({:.1}%) [{}], p50 {:.1} ms, p99 {:.1} ms; attacker opened {} connections ({:.0}/s over {:.1} s, ramp {} ms), {} connect failures, {} cut, {} Noise msg2 answered, longest held {} ms, {} never cut; drained {} ms after the attack stopped; fds {fd0} -> {fd1}, VmRSS {rss0} -> {rss_peak} KiB at peak (listener and attacker in one process); after: {}/{} honest dials",
        during.ok,
        HONEST_DIALS,
        during.rate(),
        by_source.join(", "),
        during.pct(50.0),
        during.pct(99.0),
        opened_during,
        opened_during as f64 / attack_secs,
        attack_secs,
        ramp.as_millis(),
        c.connect_failed.load(Ordering::Relaxed),
        c.cut.load(Ordering::Relaxed),
        c.msg2.load(Ordering::Relaxed),
        c.max_hold_ms.load(Ordering::Relaxed),
        c.never_cut.load(Ordering::Relaxed),
        drain.as_millis(),
        after.ok,
        after.ok + after.failed,
    );
    let mut slowest = during.lat_ms.clone();
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    let slowest: Vec<String> = slowest
        .iter()
        .take(3)
        .map(|(ms, s)| format!("{ms:.1} ms from {s}"))
        .collect();
    eprintln!(
        "RESULT {name}: slowest honest dials: {}; SYNs dropped by full accept queues (TcpExtListenOverflows, host-wide): {overflows}",
        slowest.join(", ")
    );
    if !during.codes.is_empty() {
        eprintln!("RESULT {name}: honest failures: {:?}", during.codes);
    }
    assert!(
        during.ok * 100 >= HONEST_DIALS * 99,
        "{name}: only {}/{HONEST_DIALS} honest dials authenticated during the attack: {:?}",
        during.ok,
        during.codes
    );
    for (s, ok, bad) in &during.by_source {
        assert!(
            *bad == 0 || (*ok * 100 >= (ok + bad) * 99),
            "{name}: dials from {s}: {ok} of {} in",
            ok + bad
        );
    }
    let p99 = during.pct(99.0);
    assert!(
        p99 < 1000.0,
        "{name}: p99 time to authenticated {p99:.0} ms during the attack"
    );
    assert_eq!(
        c.never_cut.load(Ordering::Relaxed),
        0,
        "{name}: stalled connections never cut"
    );
    if kind != Kind::Knock {
        // A stalled handshake holds a slot for the first-frame or step deadline, not the
        // whole handshake timeout (10 s).
        let held = Duration::from_millis(c.max_hold_ms.load(Ordering::Relaxed) as u64);
        assert!(
            held <= STEP_DEADLINE + SLACK,
            "{name}: a stalled connection was held {held:?} (deadline {STEP_DEADLINE:?})"
        );
    }
    assert!(
        fds_back,
        "{name}: descriptors {fd0} -> {fd1} after the attack drained"
    );
    assert_eq!(
        after.failed, 0,
        "{name}: after the attack: {:?}",
        after.codes
    );
}

/// `TcpExtListenOverflows` of /proc/net/netstat: connections the kernel dropped because a
/// listener's accept queue was full (the dialer's SYN is retransmitted after 1 s). Host-wide;
/// 0 where the file is missing.
fn listen_overflows() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "ListenOverflows")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

async fn eventually(wait: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn from_honest(_: usize) -> &'static str {
    "127.0.0.1"
}

/// Even dials from 127.0.0.1, odd ones from the attacker's 127.0.0.2.
fn alternate(i: usize) -> &'static str {
    if i % 2 == 1 {
        "127.0.0.2"
    } else {
        "127.0.0.1"
    }
}

async fn honest_client() -> Peer {
    Peer::ephemeral(PeerConfig::default()).await.unwrap()
}

fn public_dial(client: Peer, addr: SocketAddr) -> DialFn {
    Arc::new(move |_| {
        let client = client.clone();
        Box::pin(async move { client.dial(&addr.to_string()).await })
    })
}

/// Invited dials to a stealth listener, alternating 127.0.0.1 and 127.0.0.2 (the
/// attacker's address: `nat` dials from there).
fn invited_dial(client: Peer, nat: Peer, addr: SocketAddr, token: Vec<u8>) -> DialFn {
    Arc::new(move |i| {
        let from_nat = i != usize::MAX && alternate(i) == "127.0.0.2";
        let client = if from_nat {
            nat.clone()
        } else {
            client.clone()
        };
        let opts = DialOptions::default().invite(token.clone());
        Box::pin(async move { client.dial_with(&addr.to_string(), opts).await })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_slowloris_of_1000_from_one_address_leaves_honest_peers_in() {
    let _g = SERIAL.lock().await;
    let (server, addr) = listener(PeerConfig::default()).await;
    let client = honest_client().await;
    run_case(
        "slowloris (public)",
        Kind::Slowloris,
        addr,
        public_dial(client, addr),
        from_honest,
    )
    .await;
    close(server).await;
}

/// The WebSocket transport's upgrade runs inside the peer's admission (one implementation
/// for every transport): a slowloris of half-sent HTTP upgrade requests is cut at the
/// first-bytes deadline and honest `ws://` dials get in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_slowloris_leaves_honest_ws_peers_in() {
    let _g = SERIAL.lock().await;
    let (server, addr) = listener_on(PeerConfig::default(), "ws://127.0.0.1:0/snap2p").await;
    let client = honest_client().await;
    let locator = format!("ws://{addr}/snap2p");
    let dial: DialFn = Arc::new(move |_| {
        let (client, locator) = (client.clone(), locator.clone());
        Box::pin(async move { client.dial(&locator).await })
    });
    run_case(
        "slowloris on the WebSocket upgrade (public)",
        Kind::WsSlowloris,
        addr,
        dial,
        from_honest,
    )
    .await;
    close(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_noise_flood_leaves_honest_peers_in() {
    let _g = SERIAL.lock().await;
    let (server, addr) = listener(PeerConfig::default()).await;
    let client = honest_client().await;
    run_case(
        "half-open Noise (public)",
        Kind::NoiseHalfOpen,
        addr,
        public_dial(client, addr),
        from_honest,
    )
    .await;
    close(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knock_flood_on_stealth_lets_invitees_in_even_from_the_attackers_address() {
    let _g = SERIAL.lock().await;
    let (server, addr) = listener(stealth_config()).await;
    let token = server.create_invite(Some(600), false).unwrap().token;
    let client = honest_client().await;
    run_case(
        "KNOCK flood (stealth)",
        Kind::Knock,
        addr,
        invited_dial(client, nat_client().await, addr, token),
        alternate,
    )
    .await;
    close(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_on_stealth_lets_invitees_in_even_from_the_attackers_address() {
    let _g = SERIAL.lock().await;
    let (server, addr) = listener(stealth_config()).await;
    let token = server.create_invite(Some(600), false).unwrap().token;
    let client = honest_client().await;
    run_case(
        "slowloris (stealth)",
        Kind::Slowloris,
        addr,
        invited_dial(client, nat_client().await, addr, token),
        alternate,
    )
    .await;
    close(server).await;
}
