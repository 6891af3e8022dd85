//! hs2, the two-round-trip handshake (docs/PROTOCOL.md §5.8), between real peers over
//! loopback: each side with and without it, the fallback of an hs2 dialer to a listener
//! that speaks v1 only (how a node released before hs2 answers the offer), and its memory.

mod common;

use std::time::Duration;

use common::{next_of, peer, send_and_check, serve_digest};
use snap2p::{DialOptions, ErrorCode, EventKind, Peer, PeerConfig, Visibility};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(60);

fn config(hs2: bool) -> PeerConfig {
    let mut c = PeerConfig::default();
    c.hs2 = hs2;
    c
}

fn failed(p: &Peer) -> u64 {
    p.stats().handshakes_failed.values().sum()
}

/// Dials `addr` and checks a stream both ways. Returns whether the session's handshake was
/// hs2.
async fn dial_and_check(client: &Peer, addr: &str, opts: DialOptions, seed: u32) -> bool {
    let conn = client.dial_with(addr, opts).await.unwrap();
    let hs2 = conn.stats().hs2;
    let s = conn.open_stream(None).await.unwrap();
    send_and_check(&s, 100_000, 4096, seed).await.unwrap();
    conn.close(ErrorCode::Ok, "done");
    conn.closed().await;
    hs2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pairing_of_hs2_and_v1_authenticates() {
    timeout(T, async {
        for (dialer, listener) in [(true, true), (false, true), (false, false)] {
            let server = peer(config(listener)).await;
            let addr = server.listen("127.0.0.1:0").await.unwrap().to_string();
            serve_digest(&server);
            let client = peer(config(dialer)).await;
            let (mut client_events, mut server_events) = (client.events(), server.events());
            let hs2 = dial_and_check(&client, &addr, DialOptions::default(), 1).await;
            assert_eq!(hs2, dialer && listener);
            // Each side's session_established says which handshake ran.
            for events in [&mut client_events, &mut server_events] {
                let up = next_of(events, EventKind::SessionEstablished).await;
                assert_eq!(up.hs2, Some(hs2), "{dialer} {listener}");
            }
            // Both peers count the session, and whether it ran hs2 (PeerStats::sessions_hs2).
            let counts = |p: &Peer| {
                (
                    p.stats().sessions_inbound + p.stats().sessions_outbound,
                    p.stats().sessions_hs2,
                )
            };
            assert_eq!(counts(&client), (1, u64::from(hs2)), "{dialer} {listener}");
            assert_eq!(counts(&server), (1, u64::from(hs2)), "{dialer} {listener}");
            // No failed attempt on either side: nothing to fall back from.
            assert_eq!(
                (failed(&client), failed(&server)),
                (0, 0),
                "{dialer} {listener}"
            );
        }
    })
    .await
    .unwrap();
}

/// A listener without hs2 closes on the offer without a word, as a v1 node does. The
/// dialer comes again at once with v1, and dials that locator with v1 from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hs2_dialer_falls_back_to_a_v1_listener_and_remembers_it() {
    timeout(T, async {
        let server = peer(config(false)).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap().to_string();
        serve_digest(&server);
        let client = peer(config(true)).await;
        let t0 = std::time::Instant::now();
        assert!(!dial_and_check(&client, &addr, DialOptions::default(), 2).await);
        // The offer's connection failed on both sides; no backoff pause before the v1 dial
        // (a listener shedding load would get 25–50 ms).
        assert_eq!((failed(&client), failed(&server)), (1, 1));
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        for seed in 3..6 {
            dial_and_check(&client, &addr, DialOptions::default(), seed).await;
        }
        assert_eq!(
            (failed(&client), failed(&server)),
            (1, 1),
            "later dials went straight to v1"
        );
        // Four sessions, none of them hs2, on either side.
        let (c, s) = (client.stats(), server.stats());
        assert_eq!((c.sessions_outbound, c.sessions_hs2), (4, 0));
        assert_eq!((s.sessions_inbound, s.sessions_hs2), (4, 0));
        // Another peer has no such memory: its first dial falls back too.
        let other = peer(config(true)).await;
        dial_and_check(&other, &addr, DialOptions::default(), 6).await;
        assert_eq!((failed(&other), failed(&server)), (1, 2));
    })
    .await
    .unwrap();
}

/// A stealth listener: the KNOCK first, then the offer, only if its KNOCK_RESPONSE says
/// `h2` (a fallback would KNOCK again, and a one-time invite is spent by the first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stealth_listeners_with_and_without_hs2() {
    timeout(T, async {
        for listener in [true, false] {
            let mut c = config(listener);
            c.visibility = Visibility::Stealth;
            c.allowlist_gate = Some(false);
            let server = peer(c).await;
            let addr = server.listen("127.0.0.1:0").await.unwrap().to_string();
            serve_digest(&server);
            let invite = server.create_invite(Some(600), true).unwrap();
            let client = peer(config(true)).await;
            let opts = DialOptions::default().invite(invite.token.clone());
            let hs2 = dial_and_check(&client, &addr, opts, 7).await;
            assert_eq!(hs2, listener);
            assert_eq!(failed(&client), 0, "listener hs2 {listener}");
        }
    })
    .await
    .unwrap();
}

/// A listener of the TypeScript profile (PROTOCOL.md §12) speaks v1 only and closes on the
/// offer; the standard dialer falls back to v1 and then names the profile mismatch, as a
/// v1 dialer did (§12.4), instead of a bare close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_profile_listener_gets_v1_and_the_mismatch_is_named() {
    timeout(T, async {
        let server = peer(config(true)).await;
        let addr = server
            .listen_with_profile("127.0.0.1:0", snap2p::WireProfile::TypeScript)
            .await
            .unwrap()
            .to_string();
        let client = peer(config(true)).await;
        let e = client.dial(&addr).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::HandshakeFailed, "{e}");
        assert!(e.message.contains("TypeScript profile"), "{e}");
        // The offer's connection, then v1's.
        assert_eq!(failed(&client), 2);
    })
    .await
    .unwrap();
}
