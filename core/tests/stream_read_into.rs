//! Reading into a host's buffer without waiting (`Stream::try_read_into`) and waiting
//! without reading (`Stream::poll_readable`): the raw read paths of the bindings. Bytes
//! come across the chunks they arrived in, in order and whole; the end comes only after
//! every byte and is reported once the bytes are taken; an error behind bytes waits for
//! the next call; a wait for readability takes nothing.

mod common;

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use common::{pattern, peer};
use snap2p::{ErrorCode, PeerConfig, ReadInto, Stream};
use tokio::time::timeout;

async fn pair() -> (snap2p::Peer, snap2p::Peer, Stream, Stream) {
    let server = peer(PeerConfig::default()).await;
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    let client = peer(PeerConfig::default()).await;
    let conn = client.dial(&addr.to_string()).await.unwrap();
    let inbound = timeout(Duration::from_secs(10), server.accept())
        .await
        .unwrap()
        .unwrap();
    let local = conn.open_stream(Some("into")).await.unwrap();
    local.write_all(&b"x"[..]).await.unwrap();
    let remote = timeout(Duration::from_secs(10), inbound.accept_stream())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(remote.read_chunk(1).await.unwrap().unwrap(), &b"x"[..]);
    (server, client, local, remote)
}

/// Waits (bounded) until a read would answer.
async fn readable(s: &Stream) {
    timeout(Duration::from_secs(10), poll_fn(|cx| s.poll_readable(cx)))
        .await
        .expect("never readable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_come_whole_and_in_order_then_the_end() {
    let (_s, _c, local, remote) = pair().await;
    // Nothing yet: no bytes, no end, and the wait is pending.
    let mut buf = Vec::new();
    assert_eq!(
        remote.try_read_into(&mut buf, 1024).unwrap(),
        ReadInto::Nothing
    );
    let pending = poll_fn(|cx| Poll::Ready(remote.poll_readable(cx))).await;
    assert!(pending.is_pending());

    // 3 MiB in 64 KiB writes (a frame carries at most 65,502 bytes), read in
    // 100,000-byte reads that span chunks.
    let mut sent = vec![0u8; 3 << 20];
    let mut x = 0;
    pattern(9, &mut sent, &mut x);
    let writer = {
        let (local, sent) = (local.clone(), sent.clone());
        tokio::spawn(async move {
            for c in sent.chunks(64 * 1024) {
                local.write_all(c).await.unwrap();
            }
            local.finish().unwrap();
        })
    };
    let mut got = Vec::new();
    let mut spanning = 0;
    loop {
        readable(&remote).await;
        let before = got.len();
        // Bytes only grow while this task is the reader: a read takes at least what
        // `readable_len` counted (up to its limit).
        let counted = remote.readable_len();
        match remote.try_read_into(&mut got, 100_000).unwrap() {
            ReadInto::Bytes(n) => {
                assert_eq!(got.len() - before, n);
                assert!(n >= counted.min(100_000), "{n} < {counted}");
                assert!(n <= 100_000);
                if n > 64 * 1024 {
                    spanning += 1;
                }
            }
            ReadInto::End => break,
            ReadInto::Nothing => panic!("readable, yet nothing to read"),
        }
    }
    writer.await.unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the bytes differ");
    assert!(spanning > 0, "no read spanned two chunks");
    // After the end: still the end (the stream may be gone from the session by now).
    readable(&remote).await;
    let mut more = Vec::new();
    assert_eq!(remote.try_read_into(&mut more, 10).unwrap(), ReadInto::End);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_takes_nothing_and_a_small_buffer_takes_only_its_size() {
    let (_s, _c, local, remote) = pair().await;
    local.write_all(&b"hello world"[..]).await.unwrap();
    local.finish().unwrap();
    readable(&remote).await;
    // Readable again at once: the first wait took nothing.
    readable(&remote).await;
    // What a read would take now, for a host sizing its buffer: all eleven bytes (they
    // came in one write; `readable_len` counts across chunks too, see below).
    assert_eq!(remote.readable_len(), 11);
    let mut a = [0u8; 5];
    let mut slice = &mut a[..];
    assert_eq!(
        remote.try_read_into(&mut slice, 100).unwrap(),
        ReadInto::Bytes(5)
    );
    assert_eq!(&a, b"hello");
    let mut rest = Vec::new();
    assert_eq!(
        remote.try_read_into(&mut rest, 100).unwrap(),
        ReadInto::Bytes(6)
    );
    assert_eq!(rest, b" world");
    readable(&remote).await;
    // At the end: nothing to size a buffer for; the read says it is the end.
    assert_eq!(remote.readable_len(), 0);
    assert_eq!(remote.try_read_into(&mut rest, 100).unwrap(), ReadInto::End);
    // A zero-byte read asks for nothing and gets nothing.
    assert_eq!(
        remote.try_read_into(&mut rest, 0).unwrap(),
        ReadInto::Nothing
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_behind_bytes_is_reported_after_them() {
    let (_s, _c, local, remote) = pair().await;
    local.write_all(&b"last words"[..]).await.unwrap();
    local.reset(ErrorCode::from_u64(42));
    // The bytes that came before the reset, if the reset left them (a reset may discard
    // what is unread), then the peer's code; a wait is over at once from then on.
    let mut got = Vec::new();
    let err = loop {
        readable(&remote).await;
        match remote.try_read_into(&mut got, 1024) {
            Ok(ReadInto::Bytes(_)) => continue,
            Ok(other) => panic!("{other:?} instead of the reset"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code, ErrorCode::from_u64(42), "{err}");
    assert!(got.is_empty() || got == b"last words", "{got:?}");
    readable(&remote).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_after_the_end_of_a_finished_stream_stay_at_the_end() {
    use tokio::io::AsyncReadExt;
    let (_s, _c, local, mut remote) = pair().await;
    // Both directions end: the remote finishes its side, the local its own.
    remote.finish().unwrap();
    local.write_all(&b"bye"[..]).await.unwrap();
    local.finish().unwrap();
    let mut got = Vec::new();
    timeout(Duration::from_secs(10), remote.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"bye");
    // Let the session see both ends (and forget the stream if it does).
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let mut buf = [0u8; 16];
        let n = timeout(Duration::from_secs(10), remote.read(&mut buf))
            .await
            .unwrap()
            .expect("a read after the end");
        assert_eq!(n, 0);
        assert_eq!(remote.read_chunk(16).await.unwrap(), None);
        let mut v = Vec::new();
        assert_eq!(remote.try_read_into(&mut v, 16).unwrap(), ReadInto::End);
    }
}
