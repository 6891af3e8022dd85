//! The core's `tracing` output over a real session: a `session` span per session (with
//! its connection id once authenticated), a `handshake` span and a debug event per
//! handshake step, and no principal anywhere in what is logged. A minimal subscriber
//! (the library installs none) records every span and event as text.

mod common;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{peer, send_and_check, serve_digest};
use snap2p::{ErrorCode, PeerConfig};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Writes every span (name and fields), field record and event into one text.
struct Recorder {
    text: Arc<Mutex<String>>,
    next: AtomicU64,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut t = self.text.lock().unwrap();
        let _ = write!(t, "\nspan {}:", span.metadata().name());
        span.record(&mut Fields(&mut t));
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut t = self.text.lock().unwrap();
        t.push_str("\nrecord:");
        values.record(&mut Fields(&mut t));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut t = self.text.lock().unwrap();
        t.push_str("\nevent:");
        event.record(&mut Fields(&mut t));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_traced_by_connection_id_never_by_principal() {
    let text = Arc::new(Mutex::new(String::new()));
    tracing::subscriber::set_global_default(Recorder {
        text: text.clone(),
        next: AtomicU64::new(0),
    })
    .unwrap();
    tokio::time::timeout(Duration::from_secs(60), async {
        let server = peer(PeerConfig::default()).await;
        let client = peer(PeerConfig::default()).await;
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        serve_digest(&server);
        let conn = client.dial(&addr.to_string()).await.unwrap();
        let s = conn.open_stream(None).await.unwrap();
        send_and_check(&s, 64 * 1024, 8 * 1024, 1).await.unwrap();
        conn.close(ErrorCode::Ok, "done");
        conn.closed().await;
        tokio::time::sleep(Duration::from_millis(200)).await;

        let t = text.lock().unwrap().clone();
        assert!(t.contains("span session:"), "{t}");
        assert!(t.contains("direction=\"outbound\""), "{t}");
        assert!(t.contains("direction=\"inbound\""), "{t}");
        assert!(t.contains("transport=\"tcp\""), "{t}");
        assert!(t.contains("span handshake:"), "{t}");
        assert!(t.contains("step=\"established\""), "{t}");
        assert!(t.contains("session ended"), "{t}");
        let id = conn.id();
        assert!(t.contains(&format!("connection={id:?}")), "{id} in {t}");
        for p in [client.principal(), server.principal()] {
            let p = p.to_string();
            assert!(!t.contains(&p), "{p} logged: {t}");
            // Nor its hash part alone.
            let tail = p.rsplit(':').next().unwrap();
            assert!(!t.contains(tail), "{tail} logged: {t}");
        }
    })
    .await
    .unwrap();
}
