use snap2p::unstable::secure_channel;
use snap2p::unstable::wire::message::caps;
use snap2p::{Peer, PeerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_over_loopback() {
    let server = Peer::ephemeral(PeerConfig::default()).await.unwrap();
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    let server_principal = server.principal().clone();
    let s2 = server.clone();
    tokio::spawn(async move {
        while let Some(conn) = s2.accept().await {
            tokio::spawn(async move {
                while let Ok(stream) = conn.accept_stream().await {
                    tokio::spawn(async move {
                        let msg = stream.read_all(1 << 20).await.unwrap();
                        stream.write_all(&msg).await.unwrap();
                        stream.finish().unwrap();
                    });
                }
            });
        }
    });
    let client = Peer::ephemeral(PeerConfig::default()).await.unwrap();
    let conn = client.dial(&addr.to_string()).await.unwrap();
    assert_eq!(conn.remote_principal(), &server_principal);
    // Two default peers on one machine: AES-256-GCM after the HELLOs exactly when this CPU
    // has AES instructions (docs/PROTOCOL.md §7.2), ChaChaPoly otherwise.
    assert_eq!(
        conn.supports(caps::AES_GCM),
        secure_channel::aes_gcm_accelerated()
    );
    let stream = conn.open_stream(Some("echo")).await.unwrap();
    stream.write_all(b"hello").await.unwrap();
    stream.finish().unwrap();
    assert_eq!(stream.read_all(1 << 20).await.unwrap(), b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced() {
    use snap2p::{ErrorCode, Role};
    let dialer = Peer::ephemeral({
        let mut c = PeerConfig::default();
        c.role = Role::DialerOnly;
        c
    })
    .await
    .unwrap();
    assert_eq!(
        dialer.listen("127.0.0.1:0").await.unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    let listener = Peer::ephemeral({
        let mut c = PeerConfig::default();
        c.role = Role::ListenerOnly;
        c
    })
    .await
    .unwrap();
    let addr = listener.listen("127.0.0.1:0").await.unwrap();
    assert_eq!(
        listener.dial("127.0.0.1:9").await.unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    let conn = dialer.dial(&addr.to_string()).await.unwrap();
    assert_eq!(conn.remote_principal(), listener.principal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_alias_is_known_when_dial_returns() {
    let server = Peer::ephemeral({
        let mut c = PeerConfig::default();
        c.alias = Some(("echo-server".into(), "Echo".into()));
        c
    })
    .await
    .unwrap();
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    for _ in 0..20 {
        let client = Peer::ephemeral(PeerConfig::default()).await.unwrap();
        let conn = client.dial(&addr.to_string()).await.unwrap();
        // The card travels with the listener's AUTH_OK: no waiting needed.
        assert_eq!(
            conn.remote_alias().map(|c| c.alias).as_deref(),
            Some("echo-server")
        );
        client.close().await;
    }
}
