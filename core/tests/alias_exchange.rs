//! AliasCards over real sessions (spec §6): sent after AUTH_OK, pushed to connected peers
//! when changed, refreshed on reconnection, kept per principal after a session ends, and
//! never shown once expired.

mod common;

use std::time::Duration;

use common::eventually;

use snap2p::{Connection, Peer, PeerConfig};

const TTL: i64 = 5;

fn alias_on(conn: &Connection) -> Option<String> {
    conn.remote_alias().map(|c| c.alias)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_refresh_and_expiry_across_reconnects() {
    tokio::time::timeout(Duration::from_secs(60), run())
        .await
        .expect("test timed out");
}

async fn run() {
    let alice = Peer::ephemeral({
        let mut c = PeerConfig::default();
        c.alias = Some(("Alice".into(), "Alice 🌱".into()));
        c.alias_ttl_secs = TTL;
        c
    })
    .await
    .unwrap();
    let addr = alice.listen("127.0.0.1:0").await.unwrap();
    let a2 = alice.clone();
    tokio::spawn(async move { while a2.accept().await.is_some() {} });
    let bob = Peer::ephemeral(PeerConfig::default()).await.unwrap();
    let who = alice.principal().clone();

    // Sent after AUTH_OK; normalised alias, display name as given.
    let conn = bob.dial(&addr.to_string()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || alias_on(&conn).as_deref()
            == Some("alice"))
        .await
    );
    let card = bob.alias_of(&who).expect("current card");
    assert_eq!(card.display_name, "Alice 🌱");
    assert_eq!(card.principal, who);
    assert!(bob.alias_of(bob.principal()).is_none());

    // A new card reaches the already connected peer (issued_at has 1 s granularity:
    // latest issued_at wins, so let a second pass).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = alice.set_alias("alice2", "Alice II").await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || alias_on(&conn).as_deref()
            == Some("alice2"))
        .await,
        "live refresh not received"
    );
    assert_eq!(bob.alias_of(&who).unwrap().alias, "alice2");

    // Kept after the session ends…
    conn.close(snap2p::ErrorCode::Ok, "bye");
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
    assert!(eventually(Duration::from_secs(5), || bob.connections().is_empty()).await);
    assert_eq!(
        bob.alias_of(&who).map(|c| c.alias).as_deref(),
        Some("alice2")
    );

    // …until it expires: never shown as current afterwards, on any path.
    let wait = (second.expires_at - snap2p::unix_now()).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(1100)).await;
    assert!(bob.alias_of(&who).is_none(), "expired card shown");
    assert!(conn.remote_alias().is_none());
    assert!(alice.alias().is_none());

    // Reconnecting while Alice's own card is expired: nothing to show.
    let conn = bob.dial(&addr.to_string()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(conn.remote_alias().is_none());
    assert!(bob.alias_of(&who).is_none());

    // A fresh card on the live session, then refreshed by the next session at AUTH_OK.
    alice.set_alias("alice3", "Alice III").await.unwrap();
    assert!(
        eventually(Duration::from_secs(3), || alias_on(&conn).as_deref()
            == Some("alice3"))
        .await
    );
    conn.close(snap2p::ErrorCode::Ok, "bye");
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
    let conn = bob.dial(&addr.to_string()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(3), || alias_on(&conn).as_deref()
            == Some("alice3"))
        .await,
        "card not sent again on reconnection"
    );
    assert_eq!(bob.alias_of(&who).unwrap().alias, "alice3");

    bob.close().await;
    alice.close().await;
}
