//! The README's Rust example, compiled and run by the tests (`cargo run -p snap2p --example echo`).
use snap2p::{Peer, PeerConfig};

#[tokio::main]
async fn main() -> snap2p::Result<()> {
    let server = Peer::ephemeral(PeerConfig::default()).await?;
    let addr = server.listen("127.0.0.1:0").await?;
    tokio::spawn(async move {
        while let Some(conn) = server.accept().await {
            let stream = conn.accept_stream().await.unwrap();
            let msg = stream.read_all(1 << 20).await.unwrap();
            stream.write_all(&msg).await.unwrap(); // echo
            stream.finish().unwrap();
        }
    });
    let client = Peer::ephemeral(PeerConfig::default()).await?;
    let conn = client.dial(&addr.to_string()).await?;
    println!("connected to {}", conn.remote_principal());
    let stream = conn.open_stream(Some("echo")).await?;
    stream.write_all(b"hello").await?;
    stream.finish()?;
    assert_eq!(stream.read_all(1 << 20).await?, b"hello");
    Ok(())
}
