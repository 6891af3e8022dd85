//! A plain-Rust snap2p peer for the Kotlin and Swift interop tests.
//!
//! `snap2p-echo-peer [LISTEN_ADDR]` (default `127.0.0.1:0`) prints one line
//! `READY <addr> <principal>` and serves until its standard input closes. Streams labelled
//! `sha256` get back the 32-byte SHA-256 of everything sent; any other stream is echoed.

use std::io::{BufRead, Write};

use sha2::{Digest, Sha256};
use snap2p::{Peer, PeerConfig, Stream};

async fn serve_stream(stream: Stream) -> snap2p::Result<()> {
    if stream.label() == Some("sha256") {
        let mut h = Sha256::new();
        while let Some(chunk) = stream.read_chunk(1 << 20).await? {
            h.update(&chunk);
        }
        stream.write_all(&h.finalize()).await?;
    } else {
        while let Some(chunk) = stream.read_chunk(1 << 20).await? {
            stream.write_all(&chunk).await?;
        }
    }
    stream.finish()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> snap2p::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let peer = Peer::ephemeral(PeerConfig::default()).await?;
    let bound = peer.listen(&addr).await?;
    println!("READY {bound} {}", peer.principal());
    std::io::stdout().flush()?;
    let server = peer.clone();
    tokio::spawn(async move {
        while let Some(conn) = server.accept().await {
            tokio::spawn(async move {
                while let Ok(stream) = conn.accept_stream().await {
                    tokio::spawn(async move {
                        if let Err(e) = serve_stream(stream.clone()).await {
                            eprintln!("stream {}: {e}", stream.id());
                        }
                    });
                }
            });
        }
    });
    // Runs until the parent test closes our stdin (or dies).
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        let mut stdin = std::io::stdin().lock();
        while stdin.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    })
    .await
    .ok();
    peer.close().await;
    Ok(())
}
