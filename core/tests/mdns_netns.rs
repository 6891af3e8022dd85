//! mDNS on a real link (issue 30): three network namespaces this test creates, each with
//! one veth end on a Linux bridge (in a fourth, "hub" namespace), so multicast goes where it
//! goes on a LAN and nowhere else.
//!
//! ```text
//!   n1 10.79.0.1 (A: Public, announces) ─┐
//!   n2 10.79.0.2 (B: Private)            ├─ br0 (hub)
//!   n3 10.79.0.3 (dialers)               ─┘
//! ```
//!
//! Each peer is its own process (core/examples/mdnsnode: mDNS is its only discovery, PX-1
//! off). From n3 a fresh peer resolves A by principal and dials it: the session must
//! authenticate as A, A must see the dialer's principal, a stream must echo. B (Private)
//! must never be found (spec §10.3), though it listens. From n2, B's side of the link, a
//! peer dials A too. A liar announcing A's principal at its own listener is dialed first
//! and fails AUTH; the dial still ends with A. Then A closes: its mDNS daemon is stopped
//! with it and nobody finds A any more.
//!
//! Needs root and `ip netns`; skips loudly without them (run by ci/steps/79-mdns.sh). Names
//! carry a per-run suffix; every namespace is deleted when the test ends, even on failure.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

struct Bed {
    tag: String,
    ns: Vec<String>,
    kids: Vec<Child>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        for k in &mut self.kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        for n in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

impl Bed {
    fn ns(&self, role: &str) -> String {
        format!("s2p-{role}-{}", self.tag)
    }

    fn build(tag: &str) -> Result<Bed, String> {
        let mut bed = Bed {
            tag: tag.to_string(),
            ns: Vec::new(),
            kids: Vec::new(),
        };
        for role in ["hub", "n1", "n2", "n3"] {
            let n = bed.ns(role);
            run(&["ip", "netns", "add", &n])?;
            bed.ns.push(n);
        }
        let hub = bed.ns("hub");
        run(&["ip", "-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", &hub, "link", "set", "br0", "up"])?;
        for i in 1..=3 {
            let n = bed.ns(&format!("n{i}"));
            let port = format!("p{i}");
            run(&[
                "ip", "-n", &n, "link", "add", "eth0", "type", "veth", "peer", "name", &port,
                "netns", &hub,
            ])?;
            run(&["ip", "-n", &hub, "link", "set", &port, "master", "br0"])?;
            run(&["ip", "-n", &hub, "link", "set", &port, "up"])?;
            run(&["ip", "-n", &n, "link", "set", "lo", "up"])?;
            run(&[
                "ip",
                "-n",
                &n,
                "addr",
                "add",
                &format!("10.79.0.{i}/24"),
                "dev",
                "eth0",
            ])?;
            run(&["ip", "-n", &n, "link", "set", "eth0", "up"])?;
        }
        Ok(bed)
    }

    /// Starts `mdnsnode ARGS` in namespace `role`; its stdout lines come through the
    /// returned channel (read by a thread, so a missing line cannot block the test).
    fn spawn(
        &mut self,
        role: &str,
        bin: &str,
        args: &[&str],
    ) -> (mpsc::Receiver<String>, ChildStdin) {
        let ns = self.ns(role);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns, bin])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        self.kids.push(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (rx, stdin)
    }

    /// Runs `mdnsnode ARGS` in `role` to its end; its stdout.
    fn exec(&self, role: &str, bin: &str, args: &[&str]) -> String {
        let ns = self.ns(role);
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, bin])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

fn line(rx: &mpsc::Receiver<String>, prefix: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with(prefix) => return l,
            Ok(l) => eprintln!("  (other line: {l})"),
            Err(_) => panic!("no `{prefix}` line within {within:?}"),
        }
    }
}

#[test]
#[ignore = "needs root and ip netns; run by ci/steps/79-mdns.sh"]
fn three_peers_on_a_bridge_find_each_other_by_principal() {
    let probe = format!("s2p-probe-{}", std::process::id());
    if run(&["ip", "netns", "add", &probe]).is_err() {
        eprintln!("\n!!!!! SKIPPED: cannot create a network namespace here (not root, or no netns) !!!!!\n");
        return;
    }
    let _ = run(&["ip", "netns", "del", &probe]);
    let bin = common::example("mdnsnode");
    let bin = bin.to_str().unwrap();
    let mut bed = Bed::build(&format!("m{}", std::process::id())).expect("building the bed");

    let (a_out, mut a_in) = bed.spawn("n1", bin, &["listen", "public", "0.0.0.0:4000"]);
    let a_line = line(&a_out, "LISTEN ", Duration::from_secs(10));
    assert!(a_line.ends_with("announcing=true"), "{a_line}");
    let a = a_line.split_whitespace().nth(1).unwrap().to_string();
    let (b_out, _b_in) = bed.spawn("n2", bin, &["listen", "private", "0.0.0.0:4000"]);
    let b_line = line(&b_out, "LISTEN ", Duration::from_secs(10));
    assert!(b_line.ends_with("announcing=false"), "{b_line}");
    let b = b_line.split_whitespace().nth(1).unwrap().to_string();

    // n3 finds A by principal alone, dials it, and the session is A's.
    let t0 = Instant::now();
    let text = bed.exec("n3", bin, &["dial", &a]);
    eprintln!(
        "RESULT n3 dial A ({} ms): {}",
        t0.elapsed().as_millis(),
        text.trim().replace('\n', " | ")
    );
    let resolved = text
        .lines()
        .find(|l| l.starts_with("RESOLVED "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(resolved.contains("locators=10.79.0.1:4000"), "{resolved}");
    assert!(
        text.contains(&format!("CONNECTED principal={a} ")),
        "{text}"
    );
    assert!(text.contains("OK ping over mdns"), "{text}");
    let inbound = line(&a_out, "INBOUND ", Duration::from_secs(5));
    assert_ne!(inbound, format!("INBOUND {a}"));

    // B is Private: it listens, but never announces, so nobody on the link finds it.
    let text = bed.exec("n3", bin, &["resolve", &b]);
    eprintln!("RESULT n3 resolve B (private): {}", text.trim());
    assert!(text.contains("ERROR code=21 ERR_NOT_FOUND"), "{text}");

    // From B's namespace, another peer reaches A the same way.
    let text = bed.exec("n2", bin, &["dial", &a]);
    eprintln!("RESULT n2 dial A: {}", text.trim().replace('\n', " | "));
    assert!(
        text.contains(&format!("CONNECTED principal={a} ")),
        "{text}"
    );
    line(&a_out, "INBOUND ", Duration::from_secs(5));

    // A liar in n2 announces A's principal at its own listener (its instance sorts first,
    // so it is dialed first): the dialer meets a peer that cannot authenticate as A, moves
    // on to A's own announcement, and ends up with A; the liar never gets a session.
    let (liar_out, liar_in) = bed.spawn("n2", bin, &["liar", &a, "0.0.0.0:4001"]);
    let liar_line = line(&liar_out, "LIAR ", Duration::from_secs(10));
    eprintln!("RESULT {liar_line}");
    let text = bed.exec("n3", bin, &["dial", &a, "2"]);
    eprintln!(
        "RESULT n3 dial A with a liar on the link: {}",
        text.trim().replace('\n', " | ")
    );
    let resolved = text
        .lines()
        .find(|l| l.starts_with("RESOLVED "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        resolved.contains("locators=10.79.0.2:4001,10.79.0.1:4000"),
        "the liar's answer first, then A's: {resolved}"
    );
    assert!(
        text.contains(&format!("CONNECTED principal={a} ")),
        "{text}"
    );
    line(&a_out, "INBOUND ", Duration::from_secs(5));
    assert!(
        liar_out.recv_timeout(Duration::from_millis(500)).is_err(),
        "the liar got no authenticated session"
    );
    drop(liar_in); // the liar withdraws and exits

    // A closes: its mDNS module stops with it (announcement withdrawn, daemon shut down).
    writeln!(a_in, "close").unwrap();
    let closed = line(&a_out, "CLOSED ", Duration::from_secs(10));
    eprintln!("RESULT A closed: {closed}");
    assert!(closed.starts_with("CLOSED mdns_stopped=true "), "{closed}");
    let text = bed.exec("n3", bin, &["resolve", &a]);
    eprintln!("RESULT n3 resolve A after close: {}", text.trim());
    assert!(text.contains("ERROR code=21 ERR_NOT_FOUND"), "{text}");
}
