//! A plain Rust snap2p echo server for the Node interop tests: every stream it accepts
//! is echoed back until the peer finishes. It prints its principal and bound address as
//! one JSON line on stdout, then serves until stdin closes.
//!
//! Usage: rust-echo [public|private|stealth|stealth-open]  (stealth-open: stealth with
//! the allowlist gate off, so any invited principal gets in)
use std::io::Read;

use snap2p::{Peer, PeerConfig, Visibility};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let visibility = match mode.as_str() {
        "private" => Visibility::Private,
        "stealth" | "stealth-open" => Visibility::Stealth,
        _ => Visibility::Public,
    };
    let mut config = PeerConfig::default().with_visibility(visibility);
    if mode == "stealth-open" {
        config.allowlist_gate = Some(false);
    }
    let rt = snap2p::host::runtime();
    let peer = rt.block_on(Peer::ephemeral(config)).expect("create peer");
    let addr = rt.block_on(peer.listen("127.0.0.1:0")).expect("listen");
    let invite = (visibility == Visibility::Stealth)
        .then(|| peer.create_invite(None, false).expect("invite").token_hex());
    println!(
        "{{\"principal\":\"{}\",\"addr\":\"{}\",\"invite\":{}}}",
        peer.principal(),
        addr,
        invite.map_or("null".to_string(), |t| format!("\"{t}\""))
    );
    let server = peer.clone();
    rt.spawn(async move {
        while let Some(conn) = server.accept().await {
            tokio::spawn(async move {
                while let Ok(stream) = conn.accept_stream().await {
                    tokio::spawn(async move {
                        let (mut r, mut w) = (stream.clone(), stream);
                        if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                            let _ = w.finish();
                        }
                    });
                }
            });
        }
    });
    // The test harness closes stdin to stop the server.
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    rt.block_on(peer.close());
}
