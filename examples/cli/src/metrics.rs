//! `snap2p listen --metrics ADDR`: `/metrics` (Prometheus text exposition, from
//! `Peer::stats()` at each scrape, through `prometheus-client`), `/health` (the process
//! answers) and `/ready` (the peer is open and listening). HTTP/1.1 by `hyper`.
//!
//! The metrics are the CLI's, not the library's: snap2p's public API exposes plain
//! counters (`PeerStats`, `ConnectionStats`) and any exporter can be built on them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use snap2p::{ErrorCode, Peer};

use crate::out::{err, R};

/// Reads the peer's counters at each scrape.
#[derive(Debug)]
struct PeerCollector {
    /// Its byte totals only grow (the core counts bytes as they move), so they are
    /// exported as they are.
    peer: Peer,
}

impl Collector for PeerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.peer.stats();
        let (sent, received) = (s.bytes_sent, s.bytes_received);
        let gauge = |enc: &mut DescriptorEncoder, name: &str, help: &str, v: i64| {
            let g = ConstGauge::new(v);
            g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
        };
        gauge(
            &mut enc,
            "snap2p_sessions_open",
            "Authenticated sessions open now",
            s.sessions_open as i64,
        )?;
        gauge(
            &mut enc,
            "snap2p_pending_handshakes",
            "Inbound connections in admission (waiting for first bytes or handshaking)",
            s.pending_handshakes as i64,
        )?;
        let c = ConstCounter::new(0u64);
        let mut m = enc.encode_descriptor(
            "snap2p_sessions",
            "Sessions authenticated since start, by direction",
            None,
            c.metric_type(),
        )?;
        for (dir, n) in [
            ("inbound", s.sessions_inbound),
            ("outbound", s.sessions_outbound),
        ] {
            ConstCounter::new(n).encode(m.encode_family(&[("direction", dir)])?)?;
        }
        for (name, help, v) in [
            (
                "snap2p_sessions_hs2",
                "Of the sessions authenticated since start, those whose handshake was hs2 \
                 (PROTOCOL.md 5.8); the others ran v1",
                s.sessions_hs2,
            ),
            (
                "snap2p_bytes_sent",
                "Session bytes written to transports (framed, encrypted)",
                sent,
            ),
            (
                "snap2p_bytes_received",
                "Session bytes read from transports (framed, encrypted)",
                received,
            ),
        ] {
            let c = ConstCounter::new(v);
            c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        for (name, help, by_code) in [
            (
                "snap2p_handshakes_failed",
                "Handshakes that failed, by error code (either direction)",
                &s.handshakes_failed,
            ),
            (
                "snap2p_inbound_refused",
                "Inbound connections turned away before any handshake, by error code",
                &s.inbound_refused,
            ),
        ] {
            let mut m = enc.encode_descriptor(name, help, None, c.metric_type())?;
            for (code, n) in by_code {
                let label = [
                    ("code", code.to_string()),
                    ("name", ErrorCode::from_u64(*code).name().to_string()),
                ];
                ConstCounter::new(*n).encode(m.encode_family(&label)?)?;
            }
        }
        Ok(())
    }
}

/// Serves the endpoints on `addr` until the peer closes; returns the bound address.
pub async fn serve(peer: Peer, addr: &str) -> R<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| err(ErrorCode::InvalidArgument, format!("--metrics {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(PeerCollector { peer: peer.clone() }));
    let registry = Arc::new(registry);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            if peer.is_closed() {
                return;
            }
            let (peer, registry) = (peer.clone(), registry.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let reply = answer(&peer, &registry, &req);
                    async move { Ok::<_, Infallible>(reply) }
                });
                let io = hyper_util::rt::TokioIo::new(tcp);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(bound)
}

fn answer<B>(peer: &Peer, registry: &Registry, req: &Request<B>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, ctype: &'static str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    match req.uri().path() {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => reply(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    body,
                ),
                Err(_) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "encoding failed\n".into(),
                ),
            }
        }
        "/health" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/ready" => {
            if !peer.is_closed() && !peer.listen_locators().is_empty() {
                reply(StatusCode::OK, "text/plain", "ready\n".into())
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "not listening\n".into(),
                )
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}
