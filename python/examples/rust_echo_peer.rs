//! A Rust snap2p peer the Python tests talk to (cross-language interop).
//!
//! `rust_echo_peer [public|private|stealth] [allowed principal ...]` listens on
//! 127.0.0.1:<free port> and prints one line: `READY <addr> <principal> <invite hex|->`.
//! Streams labelled `sha256` get back the hex SHA-256 of everything received; any other
//! stream is echoed chunk by chunk. It exits when its standard input closes.

use sha2::{Digest, Sha256};
use snap2p::{Connection, Peer, PeerConfig, Stream, Visibility};
use tokio::io::AsyncReadExt;

async fn serve_stream(stream: Stream) -> snap2p::Result<()> {
    if stream.label() == Some("sha256") {
        let mut hash = Sha256::new();
        while let Some(chunk) = stream.read_chunk(1 << 20).await? {
            hash.update(&chunk);
        }
        stream
            .write_all(hex::encode(hash.finalize()).as_bytes())
            .await?;
    } else {
        while let Some(chunk) = stream.read_chunk(1 << 20).await? {
            stream.write_all(&chunk).await?;
        }
    }
    stream.finish()
}

async fn serve_connection(conn: Connection) {
    while let Ok(stream) = conn.accept_stream().await {
        tokio::spawn(async move {
            if let Err(e) = serve_stream(stream.clone()).await {
                eprintln!("stream {}: {e}", stream.id());
            }
        });
    }
}

#[tokio::main]
async fn main() -> snap2p::Result<()> {
    let mut args = std::env::args().skip(1);
    let visibility: Visibility = args.next().as_deref().unwrap_or("public").parse()?;
    let mut config = PeerConfig::default().with_visibility(visibility);
    for p in args {
        config.allowlist.push(p.parse()?);
    }
    let peer = Peer::ephemeral(config).await?;
    let addr = peer.listen("127.0.0.1:0").await?;
    let invite = match visibility {
        Visibility::Stealth => peer.create_invite(None, false)?.token_hex(),
        _ => "-".to_string(),
    };
    println!("READY {addr} {} {invite}", peer.principal());
    let server = peer.clone();
    tokio::spawn(async move {
        while let Some(conn) = server.accept().await {
            tokio::spawn(serve_connection(conn));
        }
    });
    // Runs until the test closes our stdin (or dies, which closes it too).
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    peer.close().await;
    Ok(())
}
