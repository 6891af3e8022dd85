//! BNS names end to end (issue 30): local Stacks API servers (hyper, loopback, started by the
//! test) answer `GET /v1/names/{name}` with the recorded response shapes of
//! tests/fixtures/bns (see its README), and a peer dials `alice.btc`.
//!
//! Two providers that agree: the dial reaches the real listener the zonefile names and the
//! session authenticates as the owner. Providers that disagree (owner, locators, found
//! against not found): ERR_PROVIDERS_DISAGREE. Malformed, oversized (with and without a
//! Content-Length), never-ending, legacy-owner, error-status and unreachable answers: each
//! its clear code, within the configured timeout.
#![cfg(feature = "bns")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame};
use snap2p::discovery::bns::{Bns, BnsConfig};
use snap2p::{DialOptions, ErrorCode, Peer, PeerConfig};

const RECORDED: &str = include_str!("fixtures/bns/get-name-info.response.example.json");
const NO_SUCH_NAME: &str = include_str!("fixtures/bns/bns-no-such-name.example.json");
const NAMES_OWNED: &str = include_str!("fixtures/bns/get-names-owned-by-address.example.json");
/// The name the `Owner` providers say their owner holds (reverse lookups).
const OWNED_NAME: &str = "alice.btc";

/// What one test provider answers.
#[derive(Clone)]
enum Answer {
    /// HTTP 200, the recorded document with this owner and these `_snap2p` locators.
    Owner(String, Vec<String>),
    /// HTTP 200, the recorded document as recorded (a BNS v1 Bitcoin-address owner).
    Recorded,
    /// HTTP 404 with the recorded "No such name" body.
    NoSuchName,
    /// This status and body.
    Raw(u16, String),
    /// 1 MiB with a Content-Length.
    Oversized,
    /// Chunks of 16 KiB forever, no Content-Length.
    Endless,
    /// Headers, then a body that never comes.
    Stall,
}

/// The recorded 200 document for a name owned by `address`, `locators` in its zonefile.
fn document(address: &str, locators: &[String]) -> String {
    let mut v: serde_json::Value = serde_json::from_str(RECORDED).unwrap();
    v["address"] = address.into();
    v["blockchain"] = "stacks".into();
    let mut zonefile = v["zonefile"].as_str().unwrap().to_string();
    if !locators.is_empty() {
        let quoted: Vec<String> = locators.iter().map(|l| format!("\"{l}\"")).collect();
        zonefile.push_str(&format!("_snap2p IN TXT {}\n", quoted.join(" ")));
    }
    v["zonefile"] = zonefile.into();
    v.to_string()
}

/// The recorded `GET /v1/addresses/stacks/{address}` document: `alice.btc` when `address`
/// is `owner`'s, no name otherwise.
fn names_document(owner: &str, address: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(NAMES_OWNED).unwrap();
    let names: Vec<&str> = if owner == address {
        vec![OWNED_NAME]
    } else {
        vec![]
    };
    v["names"] = names.into();
    v.to_string()
}

enum TestBody {
    Full(Option<Bytes>),
    Endless,
    Stall,
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            TestBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            TestBody::Endless => {
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b' '; 16 << 10])))))
            }
            TestBody::Stall => Poll::Pending,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            TestBody::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            TestBody::Full(None) => hyper::body::SizeHint::with_exact(0),
            _ => hyper::body::SizeHint::default(),
        }
    }
}

/// A Stacks API server on loopback answering every `GET /v1/names/{name}` and
/// `GET /v1/addresses/stacks/{address}` with `answer` (other paths: 404). Runs until the test's runtime ends.
async fn provider(answer: Answer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let answer = answer.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let owned_by = path.strip_prefix("/v1/addresses/stacks/");
                            let named = req.method() == hyper::Method::GET
                                && (path.starts_with("/v1/names/") || owned_by.is_some());
                            let (status, body) = match (named, &*answer) {
                                (false, _) => (404, TestBody::Full(Some(NO_SUCH_NAME.into()))),
                                (_, Answer::Owner(a, _)) if owned_by.is_some() => (
                                    200,
                                    TestBody::Full(Some(
                                        names_document(a, owned_by.unwrap_or("")).into(),
                                    )),
                                ),
                                (_, Answer::Owner(a, l)) => {
                                    (200, TestBody::Full(Some(document(a, l).into())))
                                }
                                (_, Answer::Recorded) => {
                                    (200, TestBody::Full(Some(RECORDED.into())))
                                }
                                (_, Answer::NoSuchName) => {
                                    (404, TestBody::Full(Some(NO_SUCH_NAME.into())))
                                }
                                (_, Answer::Raw(s, b)) => {
                                    (*s, TestBody::Full(Some(b.clone().into())))
                                }
                                (_, Answer::Oversized) => {
                                    (200, TestBody::Full(Some(Bytes::from(vec![b' '; 1 << 20]))))
                                }
                                (_, Answer::Endless) => (200, TestBody::Endless),
                                (_, Answer::Stall) => (200, TestBody::Stall),
                            };
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(body)
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn bns(urls: &[String], timeout: Duration) -> Arc<Bns> {
    let mut cfg = BnsConfig::with_providers(urls.iter().cloned());
    cfg.timeout = timeout;
    Arc::new(Bns::http(&cfg).unwrap())
}

/// A dialer with BNS only (PX-1 off: no other way to find anyone).
async fn dialer(bns: Arc<Bns>) -> Peer {
    let mut cfg = PeerConfig::default();
    cfg.px1 = Some(false);
    Peer::builder(cfg).bns(bns).build().await.unwrap()
}

async fn listener() -> (Peer, String) {
    let p = Peer::ephemeral(PeerConfig::default()).await.unwrap();
    let addr = p.listen("127.0.0.1:0").await.unwrap();
    (p, addr.to_string())
}

#[tokio::test]
async fn two_agreeing_providers_dial_the_owner_end_to_end() {
    let (alice, at) = listener().await;
    let owner = alice.principal().address();
    // Same record; the second lists a locator nobody listens on first, then Alice's:
    // the same set, another order.
    let dead = "127.0.0.1:1".to_string();
    let p1 = provider(Answer::Owner(owner.clone(), vec![at.clone(), dead.clone()])).await;
    let p2 = provider(Answer::Owner(owner.clone(), vec![dead, at.clone()])).await;
    let resolver = bns(&[p1, p2], Duration::from_secs(5));
    let rec = resolver.resolve("Alice.BTC").await.unwrap();
    assert_eq!(rec.owner, *alice.principal());
    assert_eq!(rec.name, "alice.btc");
    assert_eq!(rec.locators[0].to_string(), at);

    let bob = dialer(resolver).await;
    let t0 = Instant::now();
    let conn = bob.dial("alice.btc").await.unwrap();
    eprintln!("RESULT bns dial alice.btc: {} ms", t0.elapsed().as_millis());
    assert_eq!(conn.remote_principal(), alice.principal());
    let inbound = alice.accept().await.unwrap();
    assert_eq!(inbound.remote_principal(), bob.principal());
    let s = conn.open_stream(None).await.unwrap();
    s.write_all(b"hi alice.btc").await.unwrap();
    s.finish().unwrap();
    let r = inbound.accept_stream().await.unwrap();
    assert_eq!(r.read_all(64).await.unwrap(), b"hi alice.btc");
    // A second dial reuses the session.
    let again = bob.dial("alice.btc").await.unwrap();
    assert_eq!(again.remote_principal(), alice.principal());
    // The caller expected someone else: refused before any dial.
    let other = Peer::ephemeral(PeerConfig::default()).await.unwrap();
    let e = bob
        .dial_with(
            "alice.btc",
            DialOptions::default().expect(other.principal().clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::PrincipalMismatch, "{e}");
}

#[tokio::test]
async fn the_chain_finds_a_principal_through_the_names_it_owns() {
    // The resolver chain's `bns` step, the other way round from a name: the principal's
    // names (GET /v1/addresses/stacks/{address}), then their zonefiles.
    let (alice, at) = listener().await;
    let owner = alice.principal().address();
    let p1 = provider(Answer::Owner(owner.clone(), vec![at.clone()])).await;
    let p2 = provider(Answer::Owner(owner.clone(), vec![at.clone()])).await;
    let resolver = bns(&[p1.clone(), p2], Duration::from_secs(5));
    assert_eq!(
        resolver.names_of(alice.principal()).await.unwrap(),
        [OWNED_NAME]
    );
    let bob = dialer(resolver.clone()).await;
    let report = bob.resolve(alice.principal()).await;
    eprintln!(
        "RESULT chain bns step: answered_by={:?} in {} ms",
        report.answered_by,
        report.duration.as_millis()
    );
    assert_eq!(report.answered_by.as_deref(), Some("bns"), "{report:?}");
    let got: Vec<String> = report.locators.iter().map(|l| l.to_string()).collect();
    assert_eq!(got, std::slice::from_ref(&at));
    // Dial by principal: PX-1 is off, so BNS is the module that finds her.
    let conn = bob.dial(&alice.principal().to_string()).await.unwrap();
    assert_eq!(conn.remote_principal(), alice.principal());

    // Someone who owns no name: not found, every provider asked.
    let nobody = Peer::ephemeral(PeerConfig::default()).await.unwrap();
    let report = bob.resolve(nobody.principal()).await;
    assert!(report.answered_by.is_none());
    assert_eq!(report.error().code, ErrorCode::NotFound, "{report:?}");

    // One provider says Alice owns alice.btc, another that she owns nothing.
    let liar = provider(Answer::Owner(nobody.principal().address(), vec![at])).await;
    let split = dialer(bns(&[p1, liar], Duration::from_secs(5))).await;
    let report = split.resolve(alice.principal()).await;
    let e = report.error();
    eprintln!(
        "RESULT chain bns step, providers split: {} {}",
        e.code, e.message
    );
    assert_eq!(e.code, ErrorCode::ProvidersDisagree, "{e}");
    // The message names the failing step and every step asked, with its outcome (what a
    // binding's `resolve` throws).
    assert!(e.message.starts_with("bns: "), "{e}");
    assert!(
        e.message.ends_with("(asked: cache not_found, bns error)"),
        "{e}"
    );
}

#[tokio::test]
async fn a_zonefile_pointing_at_someone_else_fails_auth() {
    // The chain says the name is Carol's; its zonefile points at Alice's listener. Alice
    // cannot authenticate as Carol: the dial fails, no session to the wrong peer.
    let (alice, at) = listener().await;
    let carol = Peer::ephemeral(PeerConfig::default()).await.unwrap();
    let p1 = provider(Answer::Owner(carol.principal().address(), vec![at.clone()])).await;
    let p2 = provider(Answer::Owner(carol.principal().address(), vec![at])).await;
    let bob = dialer(bns(&[p1, p2], Duration::from_secs(5))).await;
    let e = bob.dial("carol.btc").await.unwrap_err();
    eprintln!("RESULT zonefile to the wrong peer: {e}");
    assert_eq!(e.code, ErrorCode::PrincipalMismatch, "{e}");
    assert!(bob.connections().is_empty());
    drop(alice);
}

#[tokio::test]
async fn disagreeing_providers_are_refused() {
    let (alice, at) = listener().await;
    let mallory = Peer::ephemeral(PeerConfig::default()).await.unwrap();
    let a = alice.principal().address();
    let m = mallory.principal().address();
    let cases = [
        (
            "owner",
            Answer::Owner(a.clone(), vec![at.clone()]),
            Answer::Owner(m.clone(), vec![at.clone()]),
        ),
        (
            "locators",
            Answer::Owner(a.clone(), vec![at.clone()]),
            Answer::Owner(a.clone(), vec!["127.0.0.1:2".into()]),
        ),
        (
            "found/not found",
            Answer::Owner(a.clone(), vec![at.clone()]),
            Answer::NoSuchName,
        ),
    ];
    for (what, x, y) in cases {
        let urls = [provider(x).await, provider(y).await];
        let bob = dialer(bns(&urls, Duration::from_secs(5))).await;
        let e = bob.dial("alice.btc").await.unwrap_err();
        eprintln!("RESULT disagree on {what}: {} {}", e.code, e.message);
        assert_eq!(e.code, ErrorCode::ProvidersDisagree, "{what}: {e}");
        assert_eq!(e.code.as_u64(), 26);
        assert_eq!(e.code.name(), "ERR_PROVIDERS_DISAGREE");
        assert!(
            e.message.contains(&urls[0]) && e.message.contains(&urls[1]),
            "{e}"
        );
        assert!(bob.connections().is_empty(), "{what}");
    }
}

#[tokio::test]
async fn bad_answers_get_clear_codes_and_never_hang() {
    let (alice, at) = listener().await;
    let good = provider(Answer::Owner(alice.principal().address(), vec![at])).await;
    let timeout = Duration::from_millis(800);
    let dead = {
        // A port that refuses connections: bound, then closed.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let cases = [
        (
            "malformed JSON",
            Answer::Raw(200, "{\"address\": ".into()),
            ErrorCode::InvalidMessage,
        ),
        (
            "wrong shape",
            Answer::Raw(200, "[1,2,3]".into()),
            ErrorCode::InvalidMessage,
        ),
        (
            "legacy owner (recorded example)",
            Answer::Recorded,
            ErrorCode::InvalidMessage,
        ),
        (
            "oversized, Content-Length",
            Answer::Oversized,
            ErrorCode::MessageTooLarge,
        ),
        (
            "oversized, chunked",
            Answer::Endless,
            ErrorCode::MessageTooLarge,
        ),
        ("never-ending body", Answer::Stall, ErrorCode::Timeout),
        (
            "HTTP 500",
            Answer::Raw(500, "{\"error\":\"boom\"}".into()),
            ErrorCode::Unspecified,
        ),
    ];
    for (what, answer, code) in cases {
        let bad = provider(answer).await;
        let bob = dialer(bns(&[good.clone(), bad.clone()], timeout)).await;
        let t0 = Instant::now();
        let e = bob.dial("alice.btc").await.unwrap_err();
        let took = t0.elapsed();
        eprintln!("RESULT {what}: {} in {} ms", e.code, took.as_millis());
        assert_eq!(e.code, code, "{what}: {e}");
        assert!(
            e.message.contains(&bad),
            "{what}: the failing provider is named: {e}"
        );
        assert!(
            took < timeout + Duration::from_secs(2),
            "{what}: took {took:?}"
        );
        assert!(bob.connections().is_empty(), "{what}");
    }
    // Unreachable provider.
    let bob = dialer(bns(&[good.clone(), dead], timeout)).await;
    let e = bob.dial("alice.btc").await.unwrap_err();
    eprintln!("RESULT unreachable provider: {}", e.code);
    assert_eq!(e.code, ErrorCode::ConnectionClosed, "{e}");
    // Every provider says there is no such name.
    let urls = [
        provider(Answer::NoSuchName).await,
        provider(Answer::NoSuchName).await,
    ];
    let bob = dialer(bns(&urls, timeout)).await;
    let e = bob.dial("nobody.btc").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound, "{e}");
    // No BNS configured: a name is refused as such, not misread as a host.
    let plain = Peer::ephemeral(PeerConfig::default()).await.unwrap();
    let e = plain.dial("alice.btc").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert!(e.message.contains("BNS"), "{e}");
    // Provider URLs are checked when configured.
    for bad in ["ftp://x", "not a url", "http://h/?q=1"] {
        let e = Bns::http(&BnsConfig::with_providers([bad])).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad}");
    }
    assert_eq!(
        Bns::http(&BnsConfig::default()).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
}
