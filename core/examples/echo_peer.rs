//! The plain-Rust peer the language packages' test suites talk to (Node.js, Python,
//! Kotlin and Swift), in its own process. Test-only: the user tool is examples/cli.
//!
//! `echo_peer [--listen ADDR] [--visibility public|private|stealth] [--allow PRINCIPAL]…
//!            [--open-invites] [--compat ts]`
//!
//! Listens on ADDR (default `127.0.0.1:0`) and prints one line,
//! `READY <addr> <principal> <invite hex|->` (an invite only for a stealth listener).
//! `--open-invites` turns the stealth allowlist gate off, so any invited principal gets in.
//! `--compat ts` listens in the TypeScript wire profile (docs/PROTOCOL.md §12).
//! A stream labelled `sha256` gets back the 32-byte SHA-256 of everything sent on it, one
//! labelled `sha256-hex` the same digest as 64 hex characters; any other stream is echoed
//! chunk by chunk. It serves until its standard input closes (the test ends or dies).

use std::io::Write;

use sha2::{Digest, Sha256};
use snap2p::{Connection, Peer, PeerConfig, Stream, Visibility};
use tokio::io::AsyncReadExt;

struct Options {
    listen: String,
    visibility: Visibility,
    allow: Vec<String>,
    open_invites: bool,
    profile: snap2p::WireProfile,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        listen: "127.0.0.1:0".into(),
        visibility: Visibility::Public,
        allow: Vec::new(),
        open_invites: false,
        profile: snap2p::WireProfile::Standard,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--listen" => o.listen = value()?,
            "--visibility" => {
                o.visibility = value()?.parse().map_err(|e| format!("--visibility: {e}"))?
            }
            "--allow" => o.allow.push(value()?),
            "--open-invites" => o.open_invites = true,
            "--compat" => o.profile = value()?.parse().map_err(|e| format!("--compat: {e}"))?,
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    Ok(o)
}

async fn serve_stream(stream: Stream) -> snap2p::Result<()> {
    match stream.label() {
        Some(label @ ("sha256" | "sha256-hex")) => {
            let hex = label == "sha256-hex";
            let mut h = Sha256::new();
            while let Some(chunk) = stream.read_chunk(1 << 20).await? {
                h.update(&chunk);
            }
            let digest = h.finalize();
            if hex {
                stream.write_all(hex::encode(digest).as_bytes()).await?;
            } else {
                stream.write_all(&digest).await?;
            }
        }
        _ => {
            while let Some(chunk) = stream.read_chunk(1 << 20).await? {
                stream.write_all(&chunk).await?;
            }
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = parse_args().unwrap_or_else(|e| {
        eprintln!("echo_peer: {e}\nusage: echo_peer [--listen ADDR] [--visibility V] [--allow P]… [--open-invites] [--compat ts]");
        std::process::exit(2)
    });
    let mut config = PeerConfig::default()
        .with_visibility(o.visibility)
        .with_profile(o.profile);
    for p in &o.allow {
        config.allowlist.push(p.parse()?);
    }
    if o.open_invites {
        config.allowlist_gate = Some(false);
    }
    let peer = Peer::ephemeral(config).await?;
    let addr = peer.listen(&o.listen).await?;
    let invite = match o.visibility {
        Visibility::Stealth => peer.create_invite(None, false)?.token_hex(),
        _ => "-".to_string(),
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "READY {addr} {} {invite}", peer.principal())?;
        out.flush()?;
    }
    let server = peer.clone();
    tokio::spawn(async move {
        while let Some(conn) = server.accept().await {
            tokio::spawn(serve_connection(conn));
        }
    });
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    peer.close().await;
    Ok(())
}
