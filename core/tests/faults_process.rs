//! A peer in a separate OS process (core/examples/testnode.rs) killed with SIGKILL in the
//! middle of a transfer, in both directions: the surviving side gets an error promptly,
//! never a hang and never a clean end of stream.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use snap2p::{ErrorCode, PeerConfig};
use tokio::time::timeout;

struct Node(Child);
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn first_line_with(child: &mut Child, prefix: &str) -> String {
    let out = child.stdout.take().unwrap();
    let mut r = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "testnode exited");
        if line.starts_with(prefix) {
            // Keep draining in the background so the child never blocks on stdout.
            std::thread::spawn(move || {
                let mut s = String::new();
                while r.read_line(&mut s).unwrap_or(0) > 0 {
                    s.clear();
                }
            });
            return line.trim().to_string();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_process_killed_mid_transfer() {
    let bin = testnode();
    timeout(Duration::from_secs(120), async {
        let mut node = Node(Command::new(&bin).args(["listen", "127.0.0.1:0"]).stdout(Stdio::piped()).spawn().unwrap());
        let line = first_line_with(&mut node.0, "LISTEN ");
        let addr = line.trim_start_matches("LISTEN ").to_string();
        let client = peer(PeerConfig::default()).await;
        let conn = client.dial(&addr).await.unwrap();
        let s = conn.open_stream(None).await.unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let s2 = sent.clone();
        let writer = tokio::spawn(async move {
            let chunk = vec![3u8; 64 * 1024];
            loop {
                if let Err(e) = s.write_all(&chunk).await {
                    return e;
                }
                s2.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        });
        while sent.load(Ordering::SeqCst) < 8 << 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pid = node.0.id();
        node.0.kill().unwrap(); // SIGKILL
        let t0 = Instant::now();
        let e = timeout(Duration::from_secs(10), writer).await.expect("writer hung after the peer died").unwrap();
        let why = timeout(Duration::from_secs(10), conn.closed()).await.expect("session hung");
        eprintln!(
            "RESULT kill -9 listener process {pid} after {} MiB: writer error {:?} in {} ms, session closed {:?}",
            sent.load(Ordering::SeqCst) >> 20,
            e.code,
            t0.elapsed().as_millis(),
            why.code
        );
        assert!(matches!(e.code, ErrorCode::ConnectionClosed | ErrorCode::StreamClosed | ErrorCode::Ok), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_process_killed_mid_transfer_is_not_a_clean_end() {
    let bin = testnode();
    timeout(Duration::from_secs(120), async {
        let server = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let mut node = Node(
            Command::new(&bin)
                .args(["send", &addr.to_string(), &(1u64 << 34).to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let conn = timeout(Duration::from_secs(10), server.accept())
            .await
            .unwrap()
            .unwrap();
        let st = conn.accept_stream().await.unwrap();
        let mut got = 0u64;
        let outcome = loop {
            match timeout(Duration::from_secs(10), st.read_chunk(1 << 20))
                .await
                .expect("read hung")
            {
                Ok(Some(c)) => {
                    got += c.len() as u64;
                    if got >= 8 << 20 && node.0.try_wait().unwrap().is_none() {
                        node.0.kill().unwrap();
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let e = outcome.expect_err("a killed sender looked like a clean FIN");
        eprintln!(
            "RESULT kill -9 sender process after {} MiB received: reader error {:?}",
            got >> 20,
            e.code
        );
        assert!(
            matches!(
                e.code,
                ErrorCode::ConnectionClosed | ErrorCode::Ok | ErrorCode::StreamClosed
            ),
            "{e}"
        );
        assert!(eventually(Duration::from_secs(5), || server.connections().is_empty()).await);
    })
    .await
    .unwrap();
}
