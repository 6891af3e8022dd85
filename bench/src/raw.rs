//! The two ceilings: plain TCP, and snow Noise (`Noise_XX_25519_ChaChaPoly_SHA256`, snow with
//! `ring-accelerated`) over TCP with no multiplexer, 65535-byte Noise messages with a
//! 2-byte length prefix (the Noise spec's framing). One connection carries one stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::util::{chunk, expected_crc};

const PARAMS: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
const MAX_MSG: usize = 65535;
const MAX_PAYLOAD: usize = MAX_MSG - 16;

pub async fn serve(noise: bool) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                if noise {
                    let _ = serve_noise(s).await;
                } else {
                    let _ = serve_plain(s).await;
                }
            });
        }
    });
    addr
}

async fn serve_plain(mut s: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut h = crc32fast::Hasher::new();
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    s.write_all(&h.finalize().to_be_bytes()).await?;
    s.shutdown().await
}

async fn read_msg<R: AsyncReadExt + Unpin>(
    r: &mut R,
    buf: &mut [u8],
) -> std::io::Result<Option<usize>> {
    let mut len = [0u8; 2];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = u16::from_be_bytes(len) as usize;
    r.read_exact(&mut buf[..n]).await?;
    Ok(Some(n))
}

async fn write_msg(w: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
    w.write_all(&out).await
}

fn io_err(e: snow::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

async fn serve_noise(s: TcpStream) -> std::io::Result<()> {
    let key = snow::Builder::new(PARAMS.parse().unwrap())
        .generate_keypair()
        .map_err(io_err)?;
    let mut hs = snow::Builder::new(PARAMS.parse().unwrap())
        .local_private_key(&key.private)
        .map_err(io_err)?
        .build_responder()
        .map_err(io_err)?;
    let (rd, mut wr) = (s.try_clone_std()?, s);
    let mut rd = BufReader::with_capacity(256 * 1024, TcpStream::from_std(rd)?);
    let mut msg = vec![0u8; MAX_MSG];
    let mut plain = vec![0u8; MAX_MSG];
    let n = read_msg(&mut rd, &mut msg).await?.unwrap_or(0);
    hs.read_message(&msg[..n], &mut plain).map_err(io_err)?;
    let n = hs.write_message(&[], &mut msg).map_err(io_err)?;
    write_msg(&mut wr, &msg[..n]).await?;
    let n = read_msg(&mut rd, &mut msg).await?.unwrap_or(0);
    hs.read_message(&msg[..n], &mut plain).map_err(io_err)?;
    let mut tr = hs.into_transport_mode().map_err(io_err)?;
    let mut h = crc32fast::Hasher::new();
    while let Some(n) = read_msg(&mut rd, &mut msg).await? {
        let p = tr.read_message(&msg[..n], &mut plain).map_err(io_err)?;
        h.update(&plain[..p]);
    }
    let n = tr
        .write_message(&h.finalize().to_be_bytes(), &mut msg)
        .map_err(io_err)?;
    write_msg(&mut wr, &msg[..n]).await?;
    wr.shutdown().await
}

trait TryCloneStd {
    fn try_clone_std(&self) -> std::io::Result<std::net::TcpStream>;
}

impl TryCloneStd for TcpStream {
    fn try_clone_std(&self) -> std::io::Result<std::net::TcpStream> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: dup() gives an owned descriptor of the same socket.
        let fd = unsafe { libc::dup(self.as_raw_fd()) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let s = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        s.set_nonblocking(true)?;
        Ok(s)
    }
}

/// Plain TCP: every application write is one `write` call (no user-space buffering).
pub async fn bulk_tcp(addr: &str, pat: Arc<Vec<u8>>, total: u64, size: usize) -> (Duration, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let want = expected_crc(&pat, 1, total, size);
    let t0 = Instant::now();
    let n = total.div_ceil(size as u64) as usize;
    for i in 0..n {
        let left = (total - (i * size) as u64).min(size as u64) as usize;
        s.write_all(&chunk(&pat, 1, i, size)[..left]).await.unwrap();
    }
    s.shutdown().await.unwrap();
    let mut r = [0u8; 4];
    let ok = s.read_exact(&mut r).await.is_ok() && u32::from_be_bytes(r) == want;
    (t0.elapsed(), ok)
}

/// snow over TCP: application writes are gathered into full 65519-byte payloads (65535-byte
/// Noise messages), each sealed and written as it fills.
pub async fn bulk_noise(
    addr: &str,
    pat: Arc<Vec<u8>>,
    total: u64,
    size: usize,
) -> (Duration, bool) {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let key = snow::Builder::new(PARAMS.parse().unwrap())
        .generate_keypair()
        .unwrap();
    let mut hs = snow::Builder::new(PARAMS.parse().unwrap())
        .local_private_key(&key.private)
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut rd = BufReader::new(TcpStream::from_std(s.try_clone_std().unwrap()).unwrap());
    let mut wr = s;
    let mut msg = vec![0u8; MAX_MSG];
    let mut plain = vec![0u8; MAX_MSG];
    let n = hs.write_message(&[], &mut msg).unwrap();
    write_msg(&mut wr, &msg[..n]).await.unwrap();
    let n = read_msg(&mut rd, &mut msg).await.unwrap().unwrap();
    hs.read_message(&msg[..n], &mut plain).unwrap();
    let n = hs.write_message(&[], &mut msg).unwrap();
    write_msg(&mut wr, &msg[..n]).await.unwrap();
    let mut tr = hs.into_transport_mode().unwrap();
    let want = expected_crc(&pat, 1, total, size);

    let t0 = Instant::now();
    let mut pending: Vec<u8> = Vec::with_capacity(MAX_PAYLOAD);
    let mut out = vec![0u8; MAX_MSG + 2];
    let nwrites = total.div_ceil(size as u64) as usize;
    for i in 0..nwrites {
        let left = (total - (i * size) as u64).min(size as u64) as usize;
        let mut data = &chunk(&pat, 1, i, size)[..left];
        while !data.is_empty() {
            let take = (MAX_PAYLOAD - pending.len()).min(data.len());
            pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if pending.len() == MAX_PAYLOAD {
                let n = tr.write_message(&pending, &mut out[2..]).unwrap();
                out[..2].copy_from_slice(&(n as u16).to_be_bytes());
                wr.write_all(&out[..n + 2]).await.unwrap();
                pending.clear();
            }
        }
    }
    if !pending.is_empty() {
        let n = tr.write_message(&pending, &mut out[2..]).unwrap();
        out[..2].copy_from_slice(&(n as u16).to_be_bytes());
        wr.write_all(&out[..n + 2]).await.unwrap();
    }
    wr.shutdown().await.unwrap();
    let ok = match read_msg(&mut rd, &mut msg).await {
        Ok(Some(n)) => {
            let p = tr.read_message(&msg[..n], &mut plain).unwrap();
            p == 4 && u32::from_be_bytes(plain[..4].try_into().unwrap()) == want
        }
        _ => false,
    };
    (t0.elapsed(), ok)
}
