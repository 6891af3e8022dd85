//! Discovery over the Mainline DHT with `snap2p` in separate processes (issue 30): a local
//! DHT of 50 nodes on 127.0.0.1 (mainline's `Testnet`, in this test process; nothing
//! leaves loopback), a Public `listen` that publishes, a Private one that does not, and
//! `resolve` / `dial` processes that find the Public one by principal alone, dial and
//! authenticate it. The durable advert cache answers the next run; a tampered cache file
//! is reported and the bad entry dropped. Record-level rejections (tampered, expired,
//! replayed adverts in the DHT) are in core/tests/discovery_dht.rs.

mod common;

use std::path::Path;
use std::process::Command;

use common::{cmd, run, tempdir, text, Bg};
use serde_json::Value;
use snap2p::discovery::dht::mainline::Testnet;

fn events(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn find<'a>(evs: &'a [Value], kind: &str) -> &'a Value {
    evs.iter()
        .find(|e| e["event"] == kind)
        .unwrap_or_else(|| panic!("no {kind:?} event in {evs:#?}"))
}

fn with_dht(mut c: Command, boot: &str) -> Command {
    c.args(["--dht-bootstrap", boot]);
    c
}

fn resolve(
    dir: &Path,
    boot: &str,
    principal: &str,
    cache: &Path,
    extra: &[&str],
) -> (bool, Vec<Value>, String) {
    let mut c = cmd(dir);
    c.args([
        "--json",
        "resolve",
        principal,
        "--steps",
        "cache,px-1,dht",
        "--advert-cache",
    ])
    .arg(cache)
    .args(extra);
    let out = run(with_dht(c, boot), "");
    (
        out.status.success(),
        events(&text(&out.stdout)),
        text(&out.stderr),
    )
}

#[test]
#[ignore = "starts a local DHT of 50 nodes: ci/steps/79-discovery.sh runs it"]
fn publish_resolve_dial_across_processes() {
    let testnet = Testnet::builder(50).build().expect("testnet");
    let boot = testnet.bootstrap.join(",");
    let dir = tempdir();

    // A Public listener publishes its advert and announces its principal.
    let mut c = cmd(dir.path());
    c.args(["--json", "listen", "127.0.0.1:0"]);
    let alice = Bg::spawn(with_dht(c, &boot));
    let out = alice.out.wait_for("\"dht_published\"");
    let evs = events(&out);
    let listening = find(&evs, "listening");
    let principal = listening["principal"].as_str().unwrap().to_string();
    let addr = listening["addr"].as_str().unwrap().to_string();
    let published = find(&evs, "dht_published");
    assert!(published["stored_at"].as_u64().unwrap() > 0, "{published}");
    assert_eq!(published["announced"], true);
    assert!(published["bytes"].as_u64().unwrap() <= 1000);

    // A Private listener on the same DHT never publishes.
    let mut c = cmd(dir.path());
    c.args(["--json", "listen", "127.0.0.1:0", "--visibility", "private"]);
    let hidden = Bg::spawn(with_dht(c, &boot));
    let out = hidden.out.wait_for("\"dht_not_publishing\"");
    let hidden_principal = find(&events(&out), "listening")["principal"]
        .as_str()
        .unwrap()
        .to_string();

    // A stranger resolves alice by principal alone: the dht step answers (a BEP5 hint),
    // the dial authenticates her, her signed advert lands in the cache file.
    let cache = dir.path().join("adverts.json");
    let (ok, evs, err) = resolve(dir.path(), &boot, &principal, &cache, &[]);
    assert!(ok, "{evs:#?}\n{err}");
    let r = find(&evs, "resolve");
    assert_eq!(r["answered_by"], "dht", "{r}");
    assert!(
        r["locators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == addr.as_str()),
        "{r}"
    );
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["cache", "px-1", "dht"]);
    assert_eq!(r["steps"][0]["outcome"], "not_found");
    assert_eq!(r["steps"][2]["outcome"], "found");
    assert!(r["steps"][2]["ms"].as_f64().unwrap() > 0.0);
    // A BEP5 announce is only a hint: no advert of alice is held yet.
    for f in r["found"].as_array().unwrap() {
        assert_eq!(f["verified"], false, "{r}");
    }
    let resolved = find(&evs, "resolved");
    assert_eq!(resolved["verified"], true);
    assert_eq!(resolved["principal"], principal.as_str());
    let advert = find(&evs, "advert");
    assert_eq!(advert["locators"][0], addr.as_str(), "{advert}");
    assert_eq!(advert["node_key"], published["node_key"]);

    // Next run (a new process, the same cache file): the cache step answers, verified.
    let (ok, evs, err) = resolve(dir.path(), &boot, &principal, &cache, &["--no-dial"]);
    assert!(ok, "{evs:#?}\n{err}");
    let r = find(&evs, "resolve");
    assert_eq!(r["answered_by"], "cache", "{r}");
    assert_eq!(r["steps"].as_array().unwrap().len(), 1);
    // From her signed advert: every locator verified.
    let found = r["found"].as_array().unwrap();
    assert!(!found.is_empty(), "{r}");
    assert!(found.iter().all(|f| f["verified"] == true), "{r}");

    // dial by principal through the DHT: an echo from alice.
    let mut c = cmd(dir.path());
    c.args(["--json", "dial", &principal, "-m", "hello over the DHT"]);
    let out = run(with_dht(c, &boot), "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let echo = events(&text(&out.stdout));
    let echo = find(&echo, "echo");
    assert_eq!(echo["text"], "hello over the DHT");
    assert_eq!(echo["principal"], principal.as_str());

    // Nobody finds the Private listener.
    let (ok, evs, _) = resolve(
        dir.path(),
        &boot,
        &hidden_principal,
        &dir.path().join("other.json"),
        &["--no-dial"],
    );
    assert!(!ok);
    assert_eq!(find(&evs, "resolve")["answered_by"], Value::Null);
    assert_eq!(find(&evs, "error")["error"]["name"], "ERR_NOT_FOUND");

    // A hand-edited cache file: the bad entry is dropped and reported, the DHT answers.
    let file = std::fs::read_to_string(&cache).unwrap();
    let sig_at = file.find("\"a8").expect("an advert entry"); // a map of 8 keys
    let mut bytes = file.into_bytes();
    let i = sig_at + 40;
    bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
    std::fs::write(&cache, bytes).unwrap();
    let (ok, evs, err) = resolve(dir.path(), &boot, &principal, &cache, &["--no-dial"]);
    assert!(ok, "{evs:#?}\n{err}");
    let problem = find(&evs, "advert_cache_problem");
    assert_eq!(problem["error"]["name"], "ERR_INVALID_MESSAGE", "{problem}");
    assert_eq!(find(&evs, "resolve")["answered_by"], "dht");

    drop(alice);
    drop(hidden);
}
